"""The stored JSON report: ``{report_version, tool_id, generated_at, summary, steps (clean chains),
row_level_issues_total, row_index_base, agents: [every agent's full envelope, with *all* of its
row-level issues]}``. NaN and infinities become null.

Row-level issues can run into millions, so they are never turned into Python dicts here: Polars
serialises the frame straight into the file, between the envelope's other fields, without holding the GIL
for the encoding (the Excel report is written alongside) and without a Python string of the whole list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from io import BufferedWriter
from pathlib import Path
from typing import Any

import polars as pl

from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA
from agents.reports.overview import REPORT_VERSION, agent_id_of, report_summary
from agents.reports.sheets import json_text

RowLevelIssues = pl.DataFrame | Mapping[str, pl.DataFrame] | Sequence[Mapping[str, Any]]


def write_json_report(
    path: Path,
    tool_id: str,
    envelopes: list[dict[str, Any]],
    row_level_issues: RowLevelIssues,
    *,
    steps: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """``row_level_issues``: every agent's issues — a frame (or list of dicts) with an ``agent_id`` column,
    or frames keyed by agent id; each envelope's inline ``row_level_issues`` is replaced by its agent's
    complete list. ``steps``: the clean chain's step records (written when given); ``summary``: the
    chain's overall summary (derived from the envelopes when not given)."""
    agent_ids = [agent_id_of(envelope, position) for position, envelope in enumerate(envelopes)]
    by_agent = _by_agent(row_level_issues, agent_ids)
    header: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "tool_id": tool_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "summary": summary if summary is not None else report_summary(tool_id, envelopes, None, steps),
    }
    if steps is not None:
        header["steps"] = steps
    header["row_level_issues_total"] = sum(frame.height for frame in by_agent.values())
    header["row_index_base"] = 1
    with path.open("wb") as sink:
        sink.write(_dumps(header)[:-1].encode())
        sink.write(b', "agents": [')
        for position, (envelope, agent_id) in enumerate(zip(envelopes, agent_ids, strict=True)):
            if position:
                sink.write(b", ")
            _write_envelope(sink, envelope, by_agent[agent_id])
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
        frames = {agent_id: _conform(frame) for agent_id, frame in row_level_issues.items()}
    else:
        issues = _conform(_as_frame(row_level_issues), with_agent=True)
        frames = {agent_id: issues.filter(pl.col("agent_id") == agent_id).drop("agent_id") for agent_id in agent_ids}
    empty = pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    return {agent_id: frames.get(agent_id, empty) for agent_id in agent_ids}


def _as_frame(row_level_issues: pl.DataFrame | Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    if isinstance(row_level_issues, pl.DataFrame):
        return row_level_issues
    rows = [{**row, "value": _text(row.get("value"))} for row in row_level_issues]
    return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _conform(frame: pl.DataFrame, with_agent: bool = False) -> pl.DataFrame:
    """The frame in ``ROW_LEVEL_ISSUE_SCHEMA`` (plus ``agent_id``): missing columns null, others cast."""
    schema = {"agent_id": pl.String(), **ROW_LEVEL_ISSUE_SCHEMA} if with_agent else ROW_LEVEL_ISSUE_SCHEMA
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
    )


def _text(value: Any) -> str | None:
    """An issue's value as text, the way the agents store it (a non-finite number is null)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _dumps(value: Any) -> str:
    return json_text(value)
