"""The stored JSON report: ``{report_version, tool_id, generated_at, summary, steps (clean chains),
row_level_issues_total, row_index_base, row_level_issues_files, row_level_issues_note, agents: [...]}``.
NaN and infinities become null.

Each agent is its envelope as the agent returned it, whose ``row_level_issues`` holds at most
``INLINE_ROW_LEVEL_ISSUES`` (the first in file order), plus ``row_level_issues_total`` (all of the
agent's row-level issues), ``row_level_issues_by_type`` (their count per issue type, over all of them)
and ``row_level_issues_truncated`` (true when the inline list is not all of them). Every one of them is in
``row_level_issues_files`` (agents.reports.row_issues): the report stays small whatever the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.envelope import INLINE_ROW_LEVEL_ISSUES
from agents.reports.overview import REPORT_VERSION, agent_id_of, report_summary
from agents.reports.row_issues import RowIssueCounts, counts_from_envelopes, row_level_issue_files
from agents.reports.sheets import json_text


def write_json_report(
    path: Path,
    tool_id: str,
    envelopes: list[dict[str, Any]],
    row_issue_counts: Mapping[str, RowIssueCounts] | None = None,
    *,
    steps: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """``row_issue_counts``: per agent id, the counts of all its row-level issues (default: of the inline
    ones); ``steps``: the clean chain's step records (written when given); ``summary``: the chain's overall
    summary (derived from the envelopes when not given)."""
    counts = row_issue_counts if row_issue_counts is not None else counts_from_envelopes(envelopes)
    agents = []
    for position, envelope in enumerate(envelopes):
        agent_counts = counts.get(agent_id_of(envelope, position), RowIssueCounts())
        inline = (envelope.get("row_level_issues") or [])[:INLINE_ROW_LEVEL_ISSUES]
        agents.append(
            {
                **envelope,
                "row_level_issues": inline,
                "row_level_issues_total": agent_counts.total,
                "row_level_issues_by_type": agent_counts.by_type,
                "row_level_issues_truncated": len(inline) < agent_counts.total,
            }
        )
    total = sum(item.total for item in counts.values())
    files = row_level_issue_files(total)
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "tool_id": tool_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "summary": summary if summary is not None else report_summary(tool_id, envelopes, None, steps),
    }
    if steps is not None:
        report["steps"] = steps
    report.update(
        row_level_issues_total=total,
        row_index_base=1,
        row_level_issues_files=files,
        row_level_issues_note=(
            f"Each agent lists at most its first {INLINE_ROW_LEVEL_ISSUES:,} row-level issues here (file order); "
            f"all {total:,} are in {' and '.join(files)}"
        ),
        agents=agents,
    )
    path.write_text(json_text(report) + "\n", encoding="utf-8")
