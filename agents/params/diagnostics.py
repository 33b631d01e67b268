"""The ``sleeper``'s parameters (the hidden ``diagnostics`` tool: not an Agensium agent)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from agents.params.common import AgentParams


class SleeperParams(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="sleeper parameters")

    seconds: float = Field(1.0, ge=0, le=86_400, description="Total time the agent takes")
    step_s: float = Field(0.1, gt=0, le=3600, description="Seconds between progress reports")
    runaway: bool = Field(
        False, description="Busy-loop in Python without reporting progress: only a kill stops it, no soft limit"
    )
    fail: bool = Field(False, description="Raise an agent error once the time is up (the result is partial)")
    noop: bool = Field(
        False,
        description=(
            "Service only: the worker fetches no input, starts no agent and stores no file; the run is the task's "
            "lifecycle alone (claim, debit, events, outcome), to measure the service (in an agent process: 0 s)"
        ),
    )
