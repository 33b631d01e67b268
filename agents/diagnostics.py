"""The ``sleeper``, the one agent of the hidden ``diagnostics`` tool: it takes the time it is told to,
reporting progress (or, ``runaway``, spinning without a word), so that tests and operators can produce
long-running, runaway and failing tasks on purpose and watch limits, cancellation and progress act on them.

Its first progress message names its process id (tests kill that process). Its envelope's ``data`` (in
the tool's ``diagnostics.json`` report) holds ``rows`` (of the primary input, read as any other agent's),
``seconds_slept`` and ``pid``, the agent process it ran in."""

from __future__ import annotations

import os
import time

from agents.envelope import AgentInputs, AgentResult, Envelope, Progress
from agents.errors import AgentError
from agents.params.common import parameter_objects
from agents.params.diagnostics import SleeperParams

AGENT_ID = "sleeper"
AGENT_NAME = "Sleeper"


def run(inputs: AgentInputs, params: SleeperParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    end = started + (0.0 if params.noop else params.seconds)
    if params.runaway:
        while time.perf_counter() < end:  # pure Python, no progress: nothing but a kill interrupts it
            pass
    else:
        progress(0.0, f"Sleeping {params.seconds:g} s on {inputs.row_count:,} rows in process {os.getpid()}")
        while (left := end - time.perf_counter()) > 0:
            time.sleep(min(params.step_s, left))
            slept = time.perf_counter() - started
            progress(slept / params.seconds, f"Slept {slept:.1f} of {params.seconds:g} s")
    slept = round(time.perf_counter() - started, 3)
    if params.fail:
        raise AgentError(f"sleeper failed on purpose after {slept} s (fail=true)")
    metrics = {"rows": inputs.row_count, "seconds_slept": slept, "pid": os.getpid()}
    envelope = Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        execution_time_ms=round(slept * 1000),
        summary_metrics=metrics,
        data={**metrics, **parameter_objects(params)},
    )
    return AgentResult(envelope=envelope)
