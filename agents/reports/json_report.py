"""The stored JSON report: every agent's full envelope, with *all* of its row-level issues.

Row-level issues can run into millions, so they are never turned into Python dicts here: the frame is
serialised by Polars in slices and streamed into the file between the envelope's other fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA

SLICE_ROWS = 100_000
RowLevelIssues = pl.DataFrame | Mapping[str, pl.DataFrame] | Sequence[Mapping[str, Any]]


def write_json_report(
    path: Path, tool_id: str, envelopes: list[dict[str, Any]], row_level_issues: RowLevelIssues
) -> None:
    """``row_level_issues``: every agent's issues — a frame (or list of dicts) with an ``agent_id`` column,
    or frames keyed by agent id; each envelope's inline ``row_level_issues`` is replaced by its agent's
    complete list."""
    by_agent = _by_agent(row_level_issues, [envelope["agent_id"] for envelope in envelopes])
    header = {
        "tool_id": tool_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "row_level_issues_total": sum(frame.height for frame in by_agent.values()),
        "row_index_base": 1,
    }
    with path.open("w", encoding="utf-8") as sink:
        sink.write(_dumps(header)[:-1])
        sink.write(', "agents": [')
        for position, envelope in enumerate(envelopes):
            if position:
                sink.write(", ")
            _write_envelope(sink, envelope, by_agent[envelope["agent_id"]])
        sink.write("]}\n")


def _write_envelope(sink: IO[str], envelope: dict[str, Any], issues: pl.DataFrame) -> None:
    body = {key: value for key, value in envelope.items() if key != "row_level_issues"}
    sink.write(_dumps(body)[:-1])
    sink.write(', "row_level_issues": [')
    for offset in range(0, issues.height, SLICE_ROWS):
        # Encoded inside a lazy query: Polars releases the GIL there, so the Excel writer runs alongside.
        rows = (
            issues.lazy()
            .slice(offset, SLICE_ROWS)
            .select(pl.struct(pl.all()).struct.json_encode().str.join(", "))
            .collect()
            .item()
        )
        if offset:
            sink.write(", ")
        sink.write(rows)
    sink.write("]}")


def _by_agent(row_level_issues: RowLevelIssues, agent_ids: list[str]) -> dict[str, pl.DataFrame]:
    if isinstance(row_level_issues, Mapping):
        frames = {agent_id: frame.drop("agent_id", strict=False) for agent_id, frame in row_level_issues.items()}
    else:
        issues = _as_frame(row_level_issues)
        frames = {agent_id: issues.filter(pl.col("agent_id") == agent_id).drop("agent_id") for agent_id in agent_ids}
    empty = pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    return {agent_id: frames.get(agent_id, empty) for agent_id in agent_ids}


def _as_frame(row_level_issues: pl.DataFrame | Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    schema = {"agent_id": pl.String(), **ROW_LEVEL_ISSUE_SCHEMA}
    if isinstance(row_level_issues, pl.DataFrame):
        frame = row_level_issues
    elif row_level_issues:
        frame = pl.DataFrame([dict(row) for row in row_level_issues], infer_schema_length=None)
        frame = frame.with_columns(pl.col("value").cast(pl.String)) if "value" in frame.columns else frame
    else:
        frame = pl.DataFrame(schema=schema)
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _dumps(value: Any) -> str:
    return json.dumps(finite(value), ensure_ascii=False, default=str, allow_nan=False)


def finite(value: Any) -> Any:
    """A copy with NaN and infinities replaced by null: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value
