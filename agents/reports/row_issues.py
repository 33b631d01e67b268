"""Every row-level issue of every agent, in files of their own: ``row_level_issues.parquet`` always (an empty
file with the schema when there is none) and ``row_level_issues.csv`` as well when there are at most
``MAX_CSV_ROW_LEVEL_ISSUES`` of them. The reports carry only the first ``INLINE_ROW_LEVEL_ISSUES`` of an
agent's (its envelope's inline list) and the counts, and say where the rest are.

Columns: ``agent_id`` then ``ROW_LEVEL_ISSUE_SCHEMA`` (row_index, column, issue_type, severity, message,
value); rows by agent in chain order, then by row_index and column (an agent's own order for ties). Polars
writes the files straight from the agents' frames: millions of issues never become Python objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA
from agents.registry import MAX_CSV_ROW_LEVEL_ISSUES, ROW_LEVEL_ISSUES_CSV, ROW_LEVEL_ISSUES_PARQUET
from agents.reports.overview import agent_id_of, as_dicts

ROW_LEVEL_ISSUE_FILE_SCHEMA: dict[str, pl.DataType] = {"agent_id": pl.String(), **ROW_LEVEL_ISSUE_SCHEMA}


@dataclass(frozen=True)
class RowIssueCounts:
    """An agent's row-level issues: how many there are in all (in the files) and how many of each type."""

    total: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def count_row_level_issues(frames: Mapping[str, pl.DataFrame]) -> dict[str, RowIssueCounts]:
    """Per agent, the total and the count per issue type (most frequent first, ties by name)."""
    counts = {}
    for agent_id, frame in frames.items():
        by_type = (
            frame.group_by("issue_type").len().sort(["len", "issue_type"], descending=[True, False], nulls_last=True)
            if frame.height
            else None
        )
        counts[agent_id] = RowIssueCounts(
            total=frame.height,
            by_type={str(kind): int(count) for kind, count in by_type.iter_rows()} if by_type is not None else {},
        )
    return counts


def counts_from_envelopes(envelopes: list[dict[str, Any]]) -> dict[str, RowIssueCounts]:
    """The counts of the inline issues only: for callers that have no frames (the reports' own tests)."""
    counts = {}
    for position, envelope in enumerate(envelopes):
        inline = as_dicts(envelope.get("row_level_issues"))
        by_type = Counter(str(issue.get("issue_type")) for issue in inline)
        counts[agent_id_of(envelope, position)] = RowIssueCounts(len(inline), dict(by_type.most_common()))
    return counts


def row_level_issue_files(total: int) -> list[str]:
    """The files holding ``total`` row-level issues: the Parquet file, and the CSV file up to the limit."""
    if total <= MAX_CSV_ROW_LEVEL_ISSUES:
        return [ROW_LEVEL_ISSUES_PARQUET, ROW_LEVEL_ISSUES_CSV]
    return [ROW_LEVEL_ISSUES_PARQUET]


def row_level_issue_table(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """All agents' issues in one frame (``ROW_LEVEL_ISSUE_FILE_SCHEMA``), ``frames`` taken in chain order."""
    parts = [
        _conform(frame)
        .lazy()
        .with_columns(pl.lit(agent_id, pl.String).alias("agent_id"), pl.lit(position).alias("_at"))
        for position, (agent_id, frame) in enumerate(frames.items())
        if frame.height
    ]
    if not parts:
        return pl.DataFrame(schema=ROW_LEVEL_ISSUE_FILE_SCHEMA)
    ordered = pl.concat(parts).sort("_at", "row_index", "column", maintain_order=True)  # as the inline lists
    return ordered.select(list(ROW_LEVEL_ISSUE_FILE_SCHEMA)).collect()


def write_row_level_issues(out_dir: Path, frames: Mapping[str, pl.DataFrame]) -> list[str]:
    """Write the files (see the module doc) into ``out_dir``; returns their names."""
    table = row_level_issue_table(frames)
    names = row_level_issue_files(table.height)
    table.write_parquet(out_dir / ROW_LEVEL_ISSUES_PARQUET)
    if ROW_LEVEL_ISSUES_CSV in names:
        table.write_csv(out_dir / ROW_LEVEL_ISSUES_CSV)
    return names


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in ``ROW_LEVEL_ISSUE_SCHEMA``: a missing column null, the others cast."""
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in ROW_LEVEL_ISSUE_SCHEMA.items()
    )
