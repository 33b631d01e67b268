"""The stored JSON report: every agent's full envelope, with *all* of its row-level issues.

Row-level issues can run into millions, so they are never turned into Python dicts here: Polars
serialises the frame straight into the file, between the envelope's other fields, without holding the GIL
for the encoding (the Excel report is written alongside) and without a Python string of the whole list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from io import BufferedWriter
from pathlib import Path
from typing import Any

import polars as pl

from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA

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
    with path.open("wb") as sink:
        sink.write(_dumps(header)[:-1].encode())
        sink.write(b', "agents": [')
        for position, envelope in enumerate(envelopes):
            if position:
                sink.write(b", ")
            _write_envelope(sink, envelope, by_agent[envelope["agent_id"]])
        sink.write(b"]}\n")


def _write_envelope(sink: BufferedWriter, envelope: dict[str, Any], issues: pl.DataFrame) -> None:
    body = {key: value for key, value in envelope.items() if key != "row_level_issues"}
    sink.write(_dumps(body)[:-1].encode())
    sink.write(b', "row_level_issues": ')
    sink.flush()
    issues.select(list(ROW_LEVEL_ISSUE_SCHEMA)).write_json(sink)  # a JSON array of row objects
    sink.write(b"}")


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
