"""What the streamed clean agents' tests share: an agent run as the chain runs it on a primary too large for memory
(agents.streamed: an empty frame of the schema, a scan of the data written to Parquet, its rows and a work
directory), and the check that it returns what the in-memory run returns without holding data in its plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from agents.envelope import AgentInputs, AgentResult

Run = Callable[[AgentInputs, Any, Any], AgentResult]


def ignore(fraction: float, message: str) -> None:
    pass


def run_in_memory(run: Run, frame: pl.DataFrame, params: Any, **extra: Any) -> AgentResult:
    """``extra``: other ``AgentInputs`` fields (a context, artifacts)."""
    return run(AgentInputs(frame, "primary.csv", **extra), params, ignore)


def run_streamed(
    run: Run,
    frame: pl.DataFrame,
    params: Any,
    folder: Path,
    row_group: int | None = None,
    *,
    spills: bool = True,
    **extra: Any,
) -> AgentResult:
    """``row_group``: small row groups make the streaming engine read the file in several morsels; ``spills``: a
    work directory is given (``folder/work``)."""
    spill = folder / "in.parquet"
    frame.write_parquet(spill, mkdir=True, row_group_size=row_group)
    inputs = AgentInputs(
        frame.clear(),
        "primary.csv",
        scan=pl.scan_parquet(spill),
        rows=frame.height,
        work_dir=folder / "work" if spills else None,
        **extra,
    )
    fractions: list[float] = []
    result = run(inputs, params, lambda fraction, _message: fractions.append(fraction))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    return result


def untimed(result: AgentResult) -> dict[str, Any]:
    envelope = result.envelope.to_dict()
    envelope.pop("execution_time_ms")
    return envelope


def assert_same_streamed_run(
    run: Run,
    frame: pl.DataFrame,
    params: Any,
    folder: Path,
    row_group: int | None = None,
    *,
    spills: bool = True,
    **extra: Any,
) -> AgentResult:
    """The streamed run returns what the in-memory run returns (envelope but its time, data, removed rows, row-level
    issues, artifacts), and its plan reads files, not a frame held in memory."""
    memory = run_in_memory(run, frame, params, **extra)
    result = run_streamed(run, frame, params, folder, row_group, spills=spills, **extra)
    assert memory.frame is not None and memory.scan is None
    assert result.frame is None and result.scan is not None
    assert untimed(result) == untimed(memory)
    plan = result.scan.explain()
    assert "CACHE" not in plan and "DF [" not in plan
    output = result.scan.collect()
    assert_frame_equal(output, memory.frame, check_exact=True)
    assert result.rows == output.height
    for name in ("removed", "row_level_issues"):
        assert_frame_equal(getattr(result, name), getattr(memory, name), check_exact=True)
    assert result.artifacts == memory.artifacts
    return result
