"""agents.streamed.StreamFlow keeps the accounting the in-memory chain keeps (agents.chain._DataFlow): for the same
agent results, given as frames to one and as lazy plans to the other, the same step records (rows, per column dtype,
nulls, cells changed, values invented), the same removed rows with their values before removal, the same data out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.chain import _DataFlow
from agents.envelope import REMOVED_ROWS_SCHEMA, ROW_INDEX_COLUMN, AgentResult, Envelope
from agents.layouts import find_layouts
from agents.streamed import StreamFlow

ROWS = 500


def _frame() -> pl.DataFrame:
    index = pl.int_range(1, ROWS + 1, eager=True, dtype=pl.Int64)
    return pl.DataFrame(
        {
            ROW_INDEX_COLUMN: index,
            "n": pl.Series([None if i % 7 == 0 else i for i in range(ROWS)], dtype=pl.Int64),
            "name": [None if i % 5 == 0 else f" Name{i % 13} " for i in range(ROWS)],
            "day": [f"2024-01-{i % 28 + 1:02d}" for i in range(ROWS)],
            "x": [i / 4 for i in range(ROWS)],
        }
    )


def _envelope(agent_id: str) -> Envelope:
    return Envelope(status="success", agent_id=agent_id, agent_name=agent_id, summary_metrics={"k": 1})


Step = tuple[str, Any, pl.DataFrame | None]  # agent id, the change (frame -> frame), the rows it lists as removed


def _steps(frame: pl.DataFrame) -> list[Step]:
    def removed(rows: list[int], reason: str) -> pl.DataFrame:
        return pl.DataFrame({ROW_INDEX_COLUMN: rows, "reason": [reason] * len(rows)}, schema=REMOVED_ROWS_SCHEMA)

    return [
        ("types", lambda f: f.with_columns(pl.col("n").cast(pl.Float64), pl.col("x").cast(pl.String)), None),
        ("trim", lambda f: f.with_columns(pl.col("name").str.strip_chars()), None),
        ("nothing", None, None),
        (
            "dedupe",
            lambda f: f.filter(pl.col(ROW_INDEX_COLUMN) % 9 != 0),
            removed(list(range(9, ROWS + 1, 9)), "exact duplicate"),
        ),
        # rows removed without being listed: found by their row index
        ("drop", lambda f: f.filter(pl.col(ROW_INDEX_COLUMN) % 11 != 0), removed([11, 22], "listed")),
        # a list that names kept rows and misses removed ones: the rows gone are what counts, as in memory
        ("mislisted", lambda f: f.filter(pl.col(ROW_INDEX_COLUMN) % 13 != 0), removed([14, 27, 9_999], "wrong")),
        ("adds", lambda f: pl.concat([f, _extra_row(f)]), None),
        ("fill", lambda f: f.with_columns(pl.col("n").fill_null(0.0), pl.col("name").fill_null("?")), None),
        ("columns", lambda f: f.drop("x").with_columns(pl.col("n").alias("m")), None),
        # the rows moved: cells are matched by row index, not by position
        ("reorder", lambda f: f.reverse().with_columns(pl.col("name").str.to_uppercase()), None),
    ]


def test_the_streamed_flow_accounts_as_the_in_memory_one(tmp_path: Path) -> None:
    text = _frame()
    layouts = find_layouts(text.drop(ROW_INDEX_COLUMN))
    frame = text.with_columns(layouts["day"].parse(pl.col("day")))
    memory = _DataFlow(frame, layouts=dict(layouts))
    frame.write_parquet(tmp_path / "in.parquet")
    work = tmp_path / "work"
    work.mkdir()
    streamed = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), frame.height, work, layouts)
    assert streamed.original_nulls == {c: frame[c].null_count() for c in frame.columns if c != ROW_INDEX_COLUMN}
    for agent_id, change, listed in _steps(frame):
        before = memory.frame
        after = change(before) if change is not None else None
        memory.accept(agent_id, agent_id, AgentResult(_envelope(agent_id), frame=after, removed=listed), 5)
        plan = change(streamed.current) if change is not None else None
        streamed.accept(agent_id, agent_id, AgentResult(_envelope(agent_id), scan=plan, removed=listed), 5)
        assert streamed.steps[-1] == memory.steps[-1], agent_id
        assert streamed.rows == memory.frame.height
        assert_frame_equal(streamed.current.collect(), memory.frame)
    assert [path.name for path in work.glob("step-*.parquet")] == [f"step-{len(memory.steps)}.parquet"]  # the rest gone
    assert memory.rows_quarantined == streamed.rows_quarantined > 0
    assert any(step["cells_changed_total"] for step in memory.steps)

    columns = [c for c in frame.columns if c != ROW_INDEX_COLUMN]
    memory.quarantine(columns).write_csv(tmp_path / "memory_quarantine.csv")
    streamed.write_quarantine(tmp_path / "streamed_quarantine.csv", columns)
    memory_bytes = (tmp_path / "memory_quarantine.csv").read_bytes()
    assert (tmp_path / "streamed_quarantine.csv").read_bytes() == memory_bytes
    assert b"removed by drop" in memory_bytes and b"2024-01-09" in memory_bytes  # dates as the file wrote them


def _extra_row(frame: Any) -> Any:
    """One row more (a row index the input never had), as a frame or a plan like ``frame``."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    row = pl.DataFrame({name: [None] for name in schema}, schema=schema).with_columns(
        pl.lit(100_000, pl.Int64).alias(ROW_INDEX_COLUMN)
    )
    return row.lazy() if isinstance(frame, pl.LazyFrame) else row


def test_without_audit_the_steps_are_the_agents_own_figures(tmp_path: Path) -> None:
    frame = _frame()
    frame.write_parquet(tmp_path / "in.parquet")
    memory = _DataFlow(frame, audit=False)
    streamed = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), frame.height, tmp_path, {}, audit=False)
    envelope = _envelope("t")
    envelope.summary_metrics = {"cells_changed": 3, "values_filled": 1}
    memory.accept("t", "T", None, 1)  # failed: nothing changed
    streamed.accept("t", "T", None, 1)
    assert streamed.steps[-1] == memory.steps[-1]
    memory.accept("t", "T", AgentResult(envelope, frame=memory.frame.filter(pl.col("n") > 10)), 1)
    streamed.accept("t", "T", AgentResult(envelope, scan=streamed.current.filter(pl.col("n") > 10)), 1)
    assert streamed.steps[-1] == memory.steps[-1]
    assert streamed.steps[-1]["cells_changed_total"] == 3 and streamed.steps[-1]["columns"] == {}
    assert streamed.rows == memory.frame.height < ROWS


def test_a_failed_or_skipped_agent_is_a_step_that_changes_nothing(tmp_path: Path) -> None:
    frame = _frame()
    frame.write_parquet(tmp_path / "in.parquet")
    streamed = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), frame.height, tmp_path, {})
    streamed.accept("skipped", "Skipped", None, 0)
    step = streamed.steps[-1]
    assert step["status"] == "error" and step["rows_removed"] == 0 and step["cells_changed_total"] == 0
    assert step["columns"]["name"]["nulls_before"] == step["columns"]["name"]["nulls_after"] == ROWS // 5
    assert not list(tmp_path.glob("step-*"))  # nothing was written for it


def test_an_agent_that_drops_the_row_index_is_refused(tmp_path: Path) -> None:
    frame = _frame()
    frame.write_parquet(tmp_path / "in.parquet")
    streamed = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), frame.height, tmp_path, {})
    with pytest.raises(RuntimeError, match="row index"):
        streamed.accept("bad", "Bad", AgentResult(_envelope("bad"), scan=streamed.current.drop(ROW_INDEX_COLUMN)), 0)


def test_the_data_is_written_as_the_file_wrote_it(tmp_path: Path) -> None:
    seen = ["2024-01-02T10:00:00Z", "2024-03-04T11:30:00Z"]
    frame = pl.DataFrame({ROW_INDEX_COLUMN: [1, 2], "seen": seen, "at": [dt.datetime(2024, 1, 1)] * 2})
    layouts = find_layouts(frame.drop(ROW_INDEX_COLUMN))
    typed = frame.with_columns(layouts["seen"].parse(pl.col("seen")))
    assert typed.schema["seen"] == pl.Datetime("us", "UTC")
    typed.write_parquet(tmp_path / "in.parquet")
    streamed = StreamFlow(pl.scan_parquet(tmp_path / "in.parquet"), 2, tmp_path, layouts)
    streamed.write_data(tmp_path / "out.csv")
    expected = f"seen,at\n{seen[0]},2024-01-01T00:00:00\n{seen[1]},2024-01-01T00:00:00\n"
    assert (tmp_path / "out.csv").read_text() == expected
