"""The queries the null-handler and the outlier-remover run on a primary too large for memory (``AgentInputs.scan``):
each on Polars' streaming engine, so that memory holds per-column aggregates and the results, never the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, empty_row_level_issues


def numbered(scan: pl.LazyFrame) -> pl.LazyFrame:
    """The scan with ``ROW_INDEX_COLUMN`` (as ``agents.columns.with_row_index`` numbers a frame: 1-based, last)
    when it has none yet; the chain's scans have it."""
    names = scan.collect_schema().names()
    if ROW_INDEX_COLUMN in names:
        return scan
    return scan.with_row_index(ROW_INDEX_COLUMN, offset=1).select(*names, pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


def streamed_row(query: pl.LazyFrame, exprs: Sequence[pl.Expr]) -> dict[str, Any]:
    """The one row of aggregates ``exprs`` over ``query``, computed on the streaming engine."""
    return query.select(exprs).collect(engine="streaming").row(0, named=True)


def collect_streamed_issues(parts: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """``agents.findings.collect_row_issues(parts, in_file_order=True)`` on the streaming engine: the parts'
    issues in one frame, sorted by row then column (ties in the parts' order)."""
    if not parts:
        return empty_row_level_issues()
    frames = pl.collect_all(list(parts), engine="streaming")
    combined = pl.concat([frame.cast(ROW_LEVEL_ISSUE_SCHEMA) for frame in frames], how="vertical")  # type: ignore[arg-type]
    return combined.sort("row_index", "column", maintain_order=True)


def column_aggregates(query: pl.LazyFrame, names: Sequence[str], exprs: Sequence[pl.Expr]) -> dict[str, Any]:
    """The aggregates ``exprs`` over the columns ``names`` of ``query``, computed as in memory: the columns read
    on the streaming engine into one chunk, then ``exprs`` over them. A float sum (a mean, a standard deviation)
    depends on how the values are split into chunks, and the streaming engine splits them into morsels: so the
    in-memory run's value is reproduced to the last bit. Memory holds these columns, as a median needs anyway."""
    columns = query.select(names).collect(engine="streaming").rechunk()
    return columns.select(exprs).row(0, named=True)


def scanned_rows(rows: int | None, scan: pl.LazyFrame) -> int:
    """The scan's row count: ``AgentInputs.rows`` as the chain gives it, else counted on the streaming engine."""
    return rows if rows is not None else int(scan.select(pl.len()).collect(engine="streaming").item())
