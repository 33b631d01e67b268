"""What both reports say about a run as a whole: the overall summary and, for a cleaning chain, its outcome.

The chain passes its own summary; anything it leaves out (or a caller that passes none) is derived from
the envelopes and the step records, so the writers never depend on a key being present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REPORT_VERSION = "2"
TOOL_TITLES = {
    "profile-my-data": "Data Profile Report",
    "clean-my-data": "Data Cleaning Report",
    "master-my-data": "Master Data Report",
}
ALERT_SEVERITIES = ("critical", "high", "medium", "low")
WRITEBACK_AGENT = "cleanse-writeback"
QUARANTINE_AGENT = "quarantine-agent"


def tool_title(tool_id: str) -> str:
    return TOOL_TITLES.get(tool_id, f"{tool_id} report")


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty dict: reports read envelopes they did not build."""
    return dict(value) if isinstance(value, Mapping) else {}


def as_dicts(value: Any) -> list[dict[str, Any]]:
    """The mappings in ``value`` when it is a list, else nothing."""
    return [dict(item) for item in value if isinstance(item, Mapping)] if isinstance(value, list | tuple) else []


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def agent_id_of(envelope: Mapping[str, Any], position: int) -> str:
    return str(envelope.get("agent_id") or f"agent-{position + 1}")


def report_summary(
    tool_id: str,
    envelopes: list[dict[str, Any]],
    summary: Mapping[str, Any] | None = None,
    steps: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The chain's summary, completed with what can be derived where a key is missing or null."""
    derived = _derived_summary(tool_id, envelopes, steps or [])
    given = {key: value for key, value in (summary or {}).items() if value is not None}
    return {**derived, **given}


def _derived_summary(tool_id: str, envelopes: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    alerts_by_severity = dict.fromkeys(ALERT_SEVERITIES, 0)
    for envelope in envelopes:
        for alert in as_dicts(envelope.get("alerts")):
            severity = str(alert.get("severity") or "unknown")
            alerts_by_severity[severity] = alerts_by_severity.get(severity, 0) + 1
    succeeded = sum(envelope.get("status") == "success" for envelope in envelopes)
    summary: dict[str, Any] = {
        "tool_id": tool_id,
        "status": "success" if succeeded == len(envelopes) else "partial",
        "agents_succeeded": succeeded,
        "agents_failed": len(envelopes) - succeeded,
        "alerts": sum(alerts_by_severity.values()),
        "alerts_by_severity": alerts_by_severity,
        "row_level_issues_total": sum(row_issue_total(envelope) for envelope in envelopes),
        "quality_score": None,
        "quality_grade": None,
    }
    for envelope in envelopes:
        quality = dig(envelope, "data", "quality_summary")
        if isinstance(quality, Mapping):
            summary["quality_score"] = quality.get("overall_quality_score")
            summary["quality_grade"] = quality.get("quality_grade")
        dataset = dig(envelope, "data", "dataset")
        if isinstance(dataset, Mapping) and "rows" not in summary:
            summary["rows"], summary["columns"] = dataset.get("rows"), dataset.get("columns")
    if steps:
        first = steps[0]
        summary.setdefault("rows", first.get("rows_before"))
        summary.setdefault("columns", len(first.get("columns_before") or []))
    return summary


def row_issue_total(envelope: Mapping[str, Any]) -> int:
    total = dig(envelope, "data", "row_level_issues_total")
    if isinstance(total, int):
        return total
    inline = envelope.get("row_level_issues")
    return len(inline) if isinstance(inline, list) else 0


def cleaning_outcome(
    envelopes: list[dict[str, Any]], steps: list[dict[str, Any]] | None, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """Rows in and out, retention, quarantined rows, cells changed and the writeback verdict of a cleaning
    chain: from the chain's summary first, then its step records, then the writeback manifest's lineage."""
    steps = steps or []
    writeback = next((e for e in envelopes if e.get("agent_id") == WRITEBACK_AGENT), None)
    lineage = as_dict(dig(writeback, "data", "manifest", "lineage"))
    rows_in = _first(summary.get("rows"), steps[0].get("rows_before") if steps else None, lineage.get("original_rows"))
    rows_out = _first(
        summary.get("rows_out"), steps[-1].get("rows_after") if steps else None, lineage.get("final_rows")
    )
    removed = sum(int(step.get("rows_removed") or 0) for step in steps) if steps else None
    retention = summary.get("retention_percentage")
    if retention is None and isinstance(rows_in, int | float) and isinstance(rows_out, int | float):
        retention = round(100.0 * rows_out / rows_in, 2) if rows_in else 100.0
    quarantine = next((e for e in envelopes if e.get("agent_id") == QUARANTINE_AGENT), None)
    checks = as_dicts(dig(writeback, "data", "integrity_checks"))
    metrics = as_dict(dig(writeback, "summary_metrics"))
    ready = summary.get("data_ready_for_pipeline")
    if ready is None and writeback is not None and writeback.get("status") == "success":
        ready = metrics.get("data_ready_for_pipeline")
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "retention_percentage": _first(retention, lineage.get("retention_percentage")),
        "rows_quarantined": _first(summary.get("rows_quarantined"), removed, lineage.get("rows_removed_total")),
        "quarantine_agent_records": dig(quarantine, "summary_metrics", "quarantined_records"),
        "columns_in": _first(summary.get("columns"), len(steps[0].get("columns_before") or []) if steps else None),
        "columns_out": _first(summary.get("columns_out"), len(steps[-1].get("columns_after") or []) if steps else None),
        "cells_changed": _first(
            summary.get("cells_changed"),
            sum(int(step.get("cells_changed_total") or 0) for step in steps) if steps else None,
        ),
        "values_invented": summary.get("values_invented"),
        "integrity_checks_passed": _first(
            metrics.get("integrity_checks_passed"), sum(bool(c.get("passed")) for c in checks) if checks else None
        ),
        "integrity_checks_failed": _first(
            metrics.get("integrity_checks_failed"), sum(not c.get("passed") for c in checks) if checks else None
        ),
        "writeback_ran": writeback is not None,
        "data_ready_for_pipeline": ready if isinstance(ready, bool) else None,
    }


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)
