"""The Excel and JSON reports, built from hand-made envelopes of both tools (plus the finished profiler's
real envelope): sheet layout, Summary cells, charts and their data, conditional formats, the Cleaning
Steps sheet, generic rendering of unknown agents, NaN handling and the JSON report's round trip."""

from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import polars as pl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from agents.envelope import AgentInputs
from agents.profile.profiler import ProfilerParams, run
from agents.reports import agent_sheets
from agents.reports.agent_sheets import MAX_CHARTED_COLUMNS, PROFILER_COLUMNS
from agents.reports.excel import write_excel_report
from agents.reports.json_report import write_json_report
from agents.reports.row_issues import RowIssueCounts, count_row_level_issues
from agents.reports.sheets import (
    KEY_VALUE_WIDTH,
    MAX_LIST_ITEMS,
    WRAP_WIDTH,
    cell_value,
    unique_headers,
    varying_mappings,
)

X_VALUES = [1.0, None, 3.0, 400.0, 7.5, 7.5]


# ---------------------------------------------------------------- envelopes


def envelope(agent_id: str, name: str, **parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "success",
        "agent_id": agent_id,
        "agent_name": name,
        "execution_time_ms": 12,
        "summary_metrics": {},
        "data": {},
        "alerts": [],
        "issues": [],
        "row_level_issues": [],
        "issue_summary": {},
        "recommendations": [],
        "executive_summary": [],
    }
    return {**base, **parts}


def card(agent_id: str, title: str, value: str, status: str) -> dict[str, Any]:
    return {"summary_id": f"{agent_id}-{title}", "title": title, "value": value, "status": status, "description": "d"}


def alert(number: int, severity: str) -> dict[str, Any]:
    return {
        "alert_id": f"a{number}",
        "severity": severity,
        "category": "quality",
        "message": f"alert {number}",
        "affected_fields_count": 1,
        "recommendation": "fix it",
        "field_name": "amount",
    }


def row_issue(agent_id: str, row: int, severity: str) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "row_index": row,
        "column": "amount",
        "issue_type": "t",
        "severity": severity,
        "message": "m",
        "value": "=HYPERLINK(1)",  # user text: must stay text
    }


def profiler_envelope() -> tuple[dict[str, Any], pl.DataFrame]:
    frame = pl.DataFrame({"x": X_VALUES * 400, "name": ["a", "b", None, "d", "a", "a"] * 400, "id": range(2400)})
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    issues = result.row_level_issues.select(pl.lit("unified-profiler").alias("agent_id"), pl.all())
    return result.envelope.to_dict(), issues


def drift_field(name: str, kind: str, psi: float | None, severity: str, drifted: bool, test: str) -> dict[str, Any]:
    stats = {"count": 100, "null_count": 0, "null_percentage": 0.0, "distinct": 10, "mean": 1.0, "std": 1.0}
    return {
        "field_name": name,
        "column_type": kind,
        "baseline_statistics": stats,
        "current_statistics": {**stats, "mean": 2.0},
        "drift_analysis": {
            "test": test,
            "test_reason": "size",
            "statistic": 0.31,
            "p_value": 1e-12 if test == "ks" else None,
            "threshold": 0.05,
            "drift_detected": drifted,
            "severity": severity,
            "psi_score": psi,
            "psi_bins": 10,
            "js_divergence": 0.2,
            "js_distance": 0.44,
            "wasserstein_distance": 3.2,
            "wasserstein_normed": 0.3,
            "change_in_mean": 1.0,
            "change_in_median": 1.0,
            "change_in_variance": 0.0,
            "null_percentage_change": 0.0,
            "distinct_change": 0,
            "new_categories": ["Oslo"] if kind == "categorical" else [],
            "missing_categories": [],
        },
        "drift_interpretation": f"{name} drifted" if drifted else f"{name} is stable",
    }


DRIFT_FIELDS = [
    drift_field("amount", "numeric", 0.42, "high", True, "ks"),
    drift_field("city", "categorical", 0.12, "medium", True, "chi2"),
    drift_field("score", "numeric", 0.01, "none", False, "wasserstein"),
    drift_field("empty", "numeric", float("nan"), "none", False, "ks"),
]


def drift_envelope() -> dict[str, Any]:
    return envelope(
        "drift-detector",
        "Drift Detector",
        summary_metrics={"fields_analyzed": 4, "drift_detected_count": 2, "average_psi_score": float("nan")},
        data={
            "skipped": False,
            "skip_reason": None,
            "fields": DRIFT_FIELDS,
            "skipped_fields": [{"field_name": "tiny", "reason": "fewer than 100 non-null values"}],
            "schema_drift": {
                "added_columns": ["new_col"],
                "removed_columns": ["old_col"],
                "retyped_columns": [{"field_name": "zip", "baseline_type": "integer", "current_type": "string"}],
                "order_changed": True,
            },
            "drift_summary": {"fields_analyzed": 4, "drifted_fields": 2, "dataset_drift": True},
        },
        alerts=[alert(10, "high"), alert(11, "medium")],
        executive_summary=[card("drift-detector", "Dataset drift", "2 of 4 columns", "critical")],
    )


def risk_envelope() -> dict[str, Any]:
    return envelope(
        "score-risk",
        "Risk Scorer",
        summary_metrics={"overall_risk_score": 55.5},
        data={
            "field_risk_assessments": [
                {
                    "field_name": "email",
                    "risk_score": 80,
                    "risk_level": "high",
                    "risk_factors": ["pii_email", "name"],
                    "details": {"pii": {"type": "email", "share": 0.98}},
                },
                {"field_name": "amount", "risk_score": 5, "risk_level": "low", "risk_factors": []},
            ],
            "risk_summary": {"overall_risk_score": 55.5, "compliance_frameworks_impacted": ["GDPR"]},
        },
        alerts=[alert(20, "critical"), alert(21, "low")],
        issues=[
            {
                "issue_id": "i1",
                "agent_id": "score-risk",
                "field_name": "email",
                "issue_type": "pii",
                "severity": "high",
                "message": "PII",
                "details": {"k": 1},
            }
        ],
        recommendations=[
            {
                "recommendation_id": "r1",
                "agent_id": "score-risk",
                "field_name": "email",
                "priority": "critical",
                "recommendation": "mask",
                "timeline": "now",
                "estimated_effort_hours": 2.0,
                "owner": "data_steward",
            }
        ],
        executive_summary=[card("score-risk", "Risk", "55.5", "warning")],
    )


def profile_run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, RowIssueCounts]]:
    """The envelopes, their inline row-level issues (with ``agent_id``) and the counts of all the issues."""
    profiler, profiler_issues = profiler_envelope()
    envelopes = [profiler, drift_envelope(), risk_envelope()]
    inline = [{"agent_id": e["agent_id"], **issue} for e in envelopes for issue in e["row_level_issues"]]
    counts = count_row_level_issues({"unified-profiler": profiler_issues.drop("agent_id")})
    return envelopes, inline, counts


CLEAN_SUMMARY = {
    "status": "partial",
    "rows": 10,
    "columns": 3,
    "primary": "primary.csv",
    "rows_out": 8,
    "columns_out": 2,
    "rows_quarantined": 2,
    "retention_percentage": 80.0,
    "cells_changed": 10,
    "data_ready_for_pipeline": True,
    "agents_succeeded": 4,
    "agents_failed": 1,
    "alerts_by_severity": {"critical": 0, "high": 1, "medium": 0, "low": 0},
    "quality_score": None,
    "quality_grade": None,
}


def column(
    dtype_before: str | None,
    dtype_after: str | None,
    nulls_before: int | None,
    nulls_after: int | None,
    changed: int | None,
) -> dict[str, Any]:
    return {
        "dtype_before": dtype_before,
        "dtype_after": dtype_after,
        "nulls_before": nulls_before,
        "nulls_after": nulls_after,
        "cells_changed": changed,
    }


def step(
    number: int, agent_id: str, rows: tuple[int, int], columns: dict[str, dict[str, Any]], after: list[str]
) -> dict[str, Any]:
    before = [name for name, c in columns.items() if c["dtype_before"] is not None]
    return {
        "step": number,
        "agent_id": agent_id,
        "agent_name": agent_id.title(),
        "status": "success",
        "rows_before": rows[0],
        "rows_after": rows[1],
        "rows_removed": rows[0] - rows[1],
        "columns_before": before,
        "columns_after": after,
        "columns": columns,
        "cells_changed_total": sum(c["cells_changed"] or 0 for c in columns.values()),
        "duration_ms": 5 * number,
        "summary_metrics": {"n": number},
    }


CLEAN_STEPS = [
    step(
        1,
        "quarantine-agent",
        (10, 8),
        {
            "amount": column("String", "String", 1, 1, 0),
            "city": column("String", "String", 2, 2, 0),
            "notes": column("String", "String", 5, 4, 0),
        },
        ["amount", "city", "notes"],
    ),
    step(
        2,
        "type-fixer",
        (8, 8),
        {
            "amount": column("String", "Float64", 1, 1, 7),
            "city": column("String", "String", 2, 2, 0),
            "notes": column("String", "String", 4, 4, 0),
        },
        ["amount", "city", "notes"],
    ),
    step(
        3,
        "null-handler",
        (8, 8),
        {
            "amount": column("Float64", "Float64", 1, 0, 1),
            "city": column("String", "String", 2, 0, 2),
            "notes": column("String", None, 4, None, None),
        },
        ["amount", "city"],
    ),
    step(
        4,
        "cleanse-writeback",
        (8, 8),
        {"amount": column("Float64", "Float64", 0, 0, 0), "city": column("String", "String", 0, 0, 0)},
        ["amount", "city"],
    ),
]


def clean_envelopes() -> list[dict[str, Any]]:
    return [
        envelope(
            "quarantine-agent",
            "Quarantine Agent",
            summary_metrics={"total_rows_processed": 10, "quarantined_records": 2, "clean_records": 8},
            data={"quarantine_reasons": [{"reason": "missing required field", "count": 2}]},
            row_level_issues=[
                {k: v for k, v in row_issue("q", r, "critical").items() if k != "agent_id"} for r in (3, 9)
            ],
            alerts=[alert(1, "high")],
            executive_summary=[card("quarantine-agent", "Quarantined", "2 rows", "warning")],
        ),
        envelope(
            "type-fixer",
            "Type Fixer",
            summary_metrics={"type_issues_fixed": 1},
            data={
                "fix_log": [
                    {"column": "amount", "from_type": "String", "to_type": "Float64", "values_converted": 7},
                ]
            },
        ),
        envelope(
            "null-handler",
            "Null Handler",
            status="error",
            error="Null Handler failed: ValueError: boom",
            executive_summary=[card("null-handler", "Null Handler failed", "error", "critical")],
        ),
        envelope(
            "cleanse-writeback",
            "Cleanse Writeback",
            summary_metrics={
                "integrity_checks_passed": 4,
                "integrity_checks_failed": 1,
                "data_ready_for_pipeline": True,
            },
            data={
                "integrity_checks": [
                    {"check": "no_new_nulls", "passed": True, "severity": "info", "message": "ok", "details": {}},
                    {"check": "retention", "passed": False, "severity": "high", "message": "low", "details": {"r": 80}},
                ],
                "manifest": {
                    "pipeline": ["quarantine-agent", "type-fixer", "null-handler"],
                    "transformations": [{"agent_id": "type-fixer", "operation": "cast"}],
                    "lineage": {"original_rows": 10, "final_rows": 8, "retention_percentage": 80.0},
                    "generated_at": "2024-01-01T00:00:00Z",
                },
            },
            executive_summary=[card("cleanse-writeback", "Ready", "yes", "excellent")],
        ),
        unknown_envelope(),
    ]


def unknown_envelope() -> dict[str, Any]:
    """An agent the writers know nothing about, with awkward values."""
    return envelope(
        "mystery-agent",
        "A Mystery Agent With A Very Long Name: [v2]",
        summary_metrics={"ratio": float("nan"), "total": 3, "big": 2**70, "nested": {"a": 1, "b": [1, 2]}},
        data={
            "findings": [
                {"row": 1, "details": {"reason": "odd", "score": float("inf")}, "tags": ["x", "y"]},
                {"row": 2, "details": {"reason": "even"}, "extra": None, "Row": "dup header"},
            ],
            "scalars": [1, 2, 3],
            "nested": {"deep": {"deeper": {"deepest": {"leaf": 1}}}},
            "note": "=1+1",
        },
    )


# ---------------------------------------------------------------- helpers


def write_profile(tmp_path: Path, **kwargs: Any) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    envelopes, inline, counts = profile_run()
    path = tmp_path / "data_profile_report.xlsx"
    write_excel_report(path, "profile-my-data", envelopes, counts, **kwargs)
    return path, envelopes, inline


def write_clean(tmp_path: Path, summary: dict[str, Any] | None = CLEAN_SUMMARY) -> tuple[Path, list[dict[str, Any]]]:
    envelopes = clean_envelopes()
    path = tmp_path / "cleaning_report.xlsx"
    write_excel_report(path, "clean-my-data", envelopes, steps=CLEAN_STEPS, summary=summary)
    return path, envelopes


def find(sheet: Worksheet, value: Any, column: int | None = None) -> tuple[int, int]:
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value == value and (column is None or cell.column == column):
                return cell.row, cell.column
    raise AssertionError(f"{value!r} not on {sheet.title}")


def table_rows(sheet: Worksheet, title: str) -> list[dict[str, Any]]:
    """The rows of the Excel table whose heading (the row above its header) is ``title``."""
    heading_row, _ = find(sheet, title, column=1)
    table = next(t for t in sheet.tables.values() if re.match(rf"A{heading_row + 1}:", t.ref))
    cells = [[cell.value for cell in row] for row in sheet[table.ref]]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[1:]]


def cf_rules(sheet: Worksheet) -> dict[str, list[str]]:
    """Conditional format ranges and the values of their ``cell == value`` rules."""
    return {
        str(cf.sqref): [formula for rule in cf.rules for formula in (rule.formula or [])]
        for cf in sheet.conditional_formatting
    }


def chart_xml(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        return [archive.read(name).decode() for name in names]


def categories(series: Any) -> str:
    """A chart series' category range (text labels that look like numbers are cached as numbers)."""
    return str((series.cat.strRef or series.cat.numRef).f)


def chart_data(workbook: openpyxl.Workbook, reference: str) -> list[Any]:
    sheet_name, cells = reference.rsplit("!", 1)
    sheet = workbook[sheet_name.strip("'")]
    return [row[0].value for row in sheet[cells.replace("$", "")]]


# ---------------------------------------------------------------- profile-my-data


def test_profile_workbook_sheets_properties_and_summary(tmp_path: Path) -> None:
    path, envelopes, inline = write_profile(tmp_path)
    workbook = openpyxl.load_workbook(path)
    data = envelopes[0]["data"]
    views = [  # the profiler's own sheets, when its envelope has their keys (tests/agents/test_lean_reports.py)
        title
        for title, present in (
            ("Correlations", "correlations" in data),
            ("Missing values", "missing_patterns" in data),
            ("Samples", "samples" in data or "duplicate_rows_sample" in data),
            ("Dates", any("datetime_profile" in field for field in data["fields"])),
        )
        if present
    ]
    assert workbook.sheetnames == [
        "Summary",
        "Profiler",
        *views,
        "Drift Detection",
        "Risk Assessment",
        "Findings",
        "Row-Level Issues",
        "Chart Data",
    ]
    assert workbook["Chart Data"].sheet_state == "hidden"
    assert workbook.properties.creator == "Agensium" and workbook.properties.title == "Data Profile Report"

    summary = workbook["Summary"]
    quality = envelopes[0]["data"]["quality_summary"]
    row, column = find(summary, "Dataset grade")
    assert summary.cell(row + 1, column).value == quality["quality_grade"]
    assert f"{quality['overall_quality_score']:.2f}" in summary.cell(row + 5, column).value
    assert summary.cell(*_right_of(summary, "Status")).value == "success"  # derived: every agent succeeded
    assert summary.cell(*_right_of(summary, "Rows")).value == 2400

    cards = table_rows(summary, "Executive summary")
    expected = [(e["agent_id"], c["title"], c["status"]) for e in envelopes for c in e["executive_summary"]]
    assert [(c["Agent"], c["Card"], c["Status"]) for c in cards] == expected
    by_severity = {r["Severity"]: r["Alerts"] for r in table_rows(summary, "Alerts by severity")}
    for severity in ("critical", "high", "medium", "low"):
        assert by_severity[severity] == sum(a["severity"] == severity for e in envelopes for a in e["alerts"])
    agents = table_rows(summary, "Agents")
    assert [a["Agent"] for a in agents] == ["unified-profiler", "drift-detector", "score-risk"]
    assert "sheet 'Drift Detection'" in agents[1]["Notes"]
    assert cf_rules(summary)  # statuses coloured


def _right_of(sheet: Worksheet, label: str) -> tuple[int, int]:
    row, column = find(sheet, label, column=1)
    return row, column + 1


def test_summary_uses_the_chains_summary(tmp_path: Path) -> None:
    given = {
        "status": "partial",
        "rows": 123,
        "columns": 4,
        "primary": "primary.csv",
        "quality_grade": "D",
        "quality_score": 61.0,
    }
    path, _, _ = write_profile(tmp_path, summary=given)
    summary = openpyxl.load_workbook(path)["Summary"]
    assert summary.cell(*_right_of(summary, "Status")).value == "partial"
    assert summary.cell(*_right_of(summary, "Rows")).value == 123
    assert summary.cell(*_right_of(summary, "File")).value == "primary.csv"
    row, column = find(summary, "Dataset grade")
    assert summary.cell(row + 1, column).value == "D"
    assert summary.cell(row + 1, column).fill.fgColor.rgb.endswith("FFC7CE")  # D is red


def test_profiler_sheet_columns_and_distribution_charts(tmp_path: Path) -> None:
    path, envelopes, _ = write_profile(tmp_path)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Profiler"]
    rows = table_rows(sheet, "Column profiles")
    assert list(rows[0]) == [c.header for c in PROFILER_COLUMNS]
    assert [r["Field"] for r in rows] == ["x", "name", "id"]
    x = np.array([v for v in X_VALUES * 400 if v is not None])
    assert rows[0]["Null %"] == pytest.approx(100 / 6, abs=1e-3)
    assert rows[0]["Mean"] == pytest.approx(x.mean()) and rows[0]["Std"] == pytest.approx(x.std(ddof=1))
    assert (rows[0]["Min"], rows[0]["Max"]) == (1.0, 400.0)
    assert rows[0]["Type"] == "float" and rows[1]["Type"] == "string"
    assert rows[1]["PII type"] == envelopes[0]["data"]["fields"][1]["properties"]["estimated_pii_type"]

    # x: histogram + top values; name: top values; id: a histogram but no repeated value.
    charts = sheet._charts
    assert len(charts) == 4
    histogram = charts[0]
    counts = chart_data(workbook, histogram.series[0].val.numRef.f)
    expected, _ = np.histogram(x, bins=ProfilerParams().histogram_bins)
    assert counts == expected.tolist()
    top = chart_data(workbook, charts[1].series[0].val.numRef.f)
    labels = chart_data(workbook, categories(charts[1].series[0]))
    assert labels[0] == "7.5" and top[0] == int((x == 7.5).sum())
    assert sheet.freeze_panes == "A2"
    assert {"Summary metrics", "Dataset quality", "Parameters"} <= {c.value for c in sheet["A"]}


def test_profiler_charts_are_capped(tmp_path: Path) -> None:
    frame = pl.DataFrame({f"c{i}": [1, 2, 2, 3] * 5 for i in range(MAX_CHARTED_COLUMNS + 5)})
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "profile-my-data", [result.envelope.to_dict()])
    assert len(chart_xml(path)) == 2 * MAX_CHARTED_COLUMNS


def test_drift_sheet_table_psi_chart_and_schema_drift(tmp_path: Path) -> None:
    path, _, _ = write_profile(tmp_path)
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Drift Detection"]
    rows = table_rows(sheet, "Drift per column")
    assert [r["Field"] for r in rows] == ["amount", "city", "score", "empty"]
    assert [r["PSI"] for r in rows] == [0.42, 0.12, 0.01, None]  # NaN written as an empty cell
    assert [r["Severity"] for r in rows] == ["high", "medium", "none", "none"]
    assert rows[0]["p-value"] == 1e-12 and rows[1]["p-value"] is None
    assert rows[0]["Drifted"] is True and rows[1]["New categories"] == "Oslo"
    header_row, _ = find(sheet, "Field", column=1)
    rules = cf_rules(sheet)
    severity = f"K{header_row + 1}:K{header_row + 4}"
    assert set(rules[severity]) == {'"high"', '"medium"', '"none"'}
    assert rules[f"J{header_row + 1}:J{header_row + 4}"] == ["TRUE", "FALSE"]

    schema = table_rows(sheet, "Schema drift")
    assert [(r["Change"], r["Column"]) for r in schema] == [
        ("added", "new_col"),
        ("removed", "old_col"),
        ("retyped", "zip"),
        ("column order changed", None),
    ]
    assert schema[2]["Current type"] == "string"
    assert table_rows(sheet, "Skipped fields")[0]["Field"] == "tiny"

    [psi_chart] = [xml for xml in chart_xml(path) if "PSI" in xml]
    assert "<c:barChart>" in psi_chart and psi_chart.count("<c:ser>") == 3 and "<c:lineChart>" in psi_chart
    [chart] = sheet._charts
    values = chart_data(workbook, chart.series[0].val.numRef.f)
    names = chart_data(workbook, categories(chart.series[0]))
    assert names == ["amount", "city", "score"] and values == [0.42, 0.12, 0.01]  # by PSI, NaN left out


def test_findings_and_row_level_issue_sheets(tmp_path: Path) -> None:
    path, envelopes, inline = write_profile(tmp_path)
    workbook = openpyxl.load_workbook(path)
    findings = workbook["Findings"]
    cells = list(findings.iter_rows(values_only=True))
    rows = [dict(zip(cells[0], row, strict=True)) for row in cells[1:]]
    headers = ["Severity", "Agent", "Field", "Category", "Finding", "Recommendation", "Fields affected", "Reported as"]
    assert [c.value for c in findings[1]] == headers and findings.freeze_panes == "A2"
    alerts = [(e["agent_id"], a["alert_id"]) for e in envelopes for a in e["alerts"]]
    assert sum(r["Reported as"] == "alert" for r in rows) == len(alerts)
    # the risk agent's issue and recommendation say what no alert of it says: both listed
    assert ("score-risk", "issue", "PII", None) in [
        (r["Agent"], r["Reported as"], r["Finding"], r["Recommendation"]) for r in rows
    ]
    assert ("score-risk", "recommendation", "mask") in [
        (r["Agent"], r["Reported as"], r["Recommendation"]) for r in rows
    ]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    ranks = [order[r["Severity"]] for r in rows]
    assert ranks == sorted(ranks)  # most severe first
    rules = cf_rules(findings)
    assert {'"critical"', '"high"', '"medium"', '"low"'} <= set(rules[f"A2:A{len(rows) + 1}"])

    issues = workbook["Row-Level Issues"]
    total = count_row_level_issues({"x": profiler_envelope()[1]})["x"].total
    more = f"{total - 1000:,} more in row_level_issues.parquet"
    assert issues["A1"].value == f"unified-profiler: the first 1,000 of {total:,} are listed here; {more}"
    header_row, _ = find(issues, "Agent", column=1)
    assert [c.value for c in issues[header_row]] == [
        "Agent",
        "Row",
        "Column",
        "Issue type",
        "Severity",
        "Message",
        "Value",
    ]
    assert issues.max_row == header_row + len(inline) == header_row + 1000
    assert issues.freeze_panes == f"A{header_row + 1}"
    first = [c.value for c in issues[header_row + 1]]
    assert first[1] == 2 and first[2] == "x"  # first issue: row 2 of the data, x is missing
    assert first[3] == "Missing value"  # a raw issue type reads as words
    assert cf_rules(issues)[f"E{header_row + 1}:E{header_row + len(inline)}"]
    for sheet in (findings, issues):
        [table] = sheet.tables.values()
        assert table.autoFilter is not None


def test_known_agent_renders_its_lists_generically(tmp_path: Path) -> None:
    path, _, _ = write_profile(tmp_path)
    sheet = openpyxl.load_workbook(path)["Risk Assessment"]
    rows = table_rows(sheet, "Field risk assessments")
    assert list(rows[0])[:4] == ["Field", "Risk score", "Risk level", "Risk factors"]
    assert rows[0]["Details › PII › Type"] == "email" and rows[0]["Risk factors"] == "pii_email, name"
    assert rows[1]["Details › PII › Type"] is None
    summary = table_rows(sheet, "Risk summary")
    assert summary == [
        {"Key": "Overall risk score", "Value": 55.5},
        {"Key": "Compliance frameworks impacted", "Value": "GDPR"},
    ]
    assert table_rows(sheet, "Summary metrics") == [{"Metric": "Overall risk score", "Value": 55.5}]


# ---------------------------------------------------------------- clean-my-data


def test_clean_workbook_summary_outcome(tmp_path: Path) -> None:
    path, envelopes = write_clean(tmp_path)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == [
        "Summary",
        "Cleaning Steps",
        "Quarantine",
        "Type Fixes",
        "Null Handling",
        "Writeback",
        "A Mystery Agent With A Very Lon",
        "Findings",
        "Row-Level Issues",
    ]
    assert workbook.properties.title == "Data Cleaning Report"
    summary = workbook["Summary"]
    outcome = {r["Metric"]: r["Value"] for r in table_rows(summary, "Cleaning outcome")}
    assert outcome["Rows in"] == 10 and outcome["Rows out (cleaned_data.csv)"] == 8
    assert outcome["Retention %"] == 80.0 and outcome["Rows quarantined (quarantine.csv)"] == 2
    assert outcome["Records flagged by quarantine-agent"] == 2
    assert (outcome["Integrity checks passed"], outcome["Integrity checks failed"]) == (4, 1)
    row, column = find(summary, "Data ready for the pipeline")
    assert summary.cell(row + 1, column).value == "READY"
    find(summary, "Data ready for pipeline: yes")
    assert summary.cell(*_right_of(summary, "Status")).value == "partial"
    cards = table_rows(summary, "Executive summary")
    assert ("null-handler", "critical") in [(c["Agent"], c["Status"]) for c in cards]


def test_clean_summary_derived_without_the_chains_summary(tmp_path: Path) -> None:
    path, _ = write_clean(tmp_path, summary=None)
    summary = openpyxl.load_workbook(path)["Summary"]
    outcome = {r["Metric"]: r["Value"] for r in table_rows(summary, "Cleaning outcome")}
    assert (outcome["Rows in"], outcome["Rows out (cleaned_data.csv)"], outcome["Retention %"]) == (10, 8, 80.0)
    assert outcome["Rows quarantined (quarantine.csv)"] == 2
    assert outcome["Cells changed"] == sum(s["cells_changed_total"] for s in CLEAN_STEPS) == 10
    assert outcome["Columns out"] == 2
    assert summary.cell(*_right_of(summary, "Status")).value == "partial"  # one agent failed


def test_cleaning_steps_sheet(tmp_path: Path) -> None:
    path, _ = write_clean(tmp_path)
    sheet = openpyxl.load_workbook(path)["Cleaning Steps"]
    steps = table_rows(sheet, "Steps")
    assert [s["Agent"] for s in steps] == [s["agent_id"] for s in CLEAN_STEPS]
    assert [(s["Rows before"], s["Rows after"], s["Rows removed"]) for s in steps][0] == (10, 8, 2)
    assert steps[0]["Retention %"] == 80.0 and steps[1]["Cells changed"] == 7
    assert steps[2]["Columns removed"] == "notes" and steps[2]["Columns added"] is None

    journeys = {r["Column"]: r for r in table_rows(sheet, "Columns: original → final")}
    assert journeys["amount"]["Dtype (original)"] == "String" and journeys["amount"]["Dtype (final)"] == "Float64"
    assert journeys["amount"]["Cells changed"] == 8 and journeys["amount"]["Changed by"] == "type-fixer, null-handler"
    assert (
        journeys["city"]["Nulls (original)"],
        journeys["city"]["Nulls (final)"],
        journeys["city"]["Null change"],
    ) == (2, 0, -2)
    assert journeys["notes"]["Outcome"] == "removed by null-handler"
    assert journeys["notes"]["Changed by"] == "null-handler"  # nulls fell with step 1's removed rows only

    changes = table_rows(sheet, "Changes per step (columns whose type, nulls or cells changed)")
    assert [(c["Step"], c["Column"]) for c in changes] == [
        (1, "notes"),
        (2, "amount"),
        (3, "amount"),
        (3, "city"),
        (3, "notes"),
    ]
    assert changes[1]["Dtype after"] == "Float64" and changes[3]["Null change"] == -2


def test_known_clean_agents_and_writeback_checks(tmp_path: Path) -> None:
    path, _ = write_clean(tmp_path)
    workbook = openpyxl.load_workbook(path)
    fixes = table_rows(workbook["Type Fixes"], "Fix log")
    assert fixes == [{"Column": "amount", "From type": "String", "To type": "Float64", "Values converted": 7}]
    writeback = workbook["Writeback"]
    checks = table_rows(writeback, "Integrity checks")
    assert [c["Passed"] for c in checks] == [True, False] and checks[1]["Details › R"] == 80
    assert list(checks[0]) == ["Check", "Passed", "Severity", "Message", "Details › R"]  # empty details: no column
    header_row, _ = find(writeback, "Check", column=1)
    assert cf_rules(writeback)[f"B{header_row + 1}:B{header_row + 2}"] == ["TRUE", "FALSE"]
    assert table_rows(writeback, "Manifest › Transformations")[0]["Operation"] == "cast"
    lineage = {r["Key"]: r["Value"] for r in table_rows(writeback, "Manifest")}
    assert lineage["Lineage › Final rows"] == 8
    failed = workbook["Null Handling"]
    error_row, _ = find(failed, "Error: Null Handler failed: ValueError: boom")
    assert failed.cell(error_row, 1).fill.fgColor.rgb.endswith("FFC7CE")


def test_unknown_agent_renders_generically_and_nan_does_not_crash(tmp_path: Path) -> None:
    path, _ = write_clean(tmp_path)
    sheet = openpyxl.load_workbook(path)["A Mystery Agent With A Very Lon"]
    assert sheet["A1"].value == "A Mystery Agent With A Very Long Name: [v2]"
    metrics = {r["Metric"]: r["Value"] for r in table_rows(sheet, "Summary metrics")}
    assert metrics == {"Ratio": None, "Total": 3, "Big": str(2**70), "Nested › A": 1, "Nested › B": "1, 2"}
    findings = table_rows(sheet, "Findings")
    assert list(findings[0]) == ["Row", "Details › Reason", "Details › Score", "Tags", "Extra", "Row (2)"]
    assert findings[0]["Details › Score"] is None and findings[0]["Tags"] == "x, y"
    assert findings[1]["Row (2)"] == "dup header"
    details = {r["Key"]: r["Value"] for r in table_rows(sheet, "Details")}
    assert details["Scalars"] == "1, 2, 3" and details["Note"] == "=1+1"  # text, never a formula
    nested = {r["Key"]: r["Value"] for r in table_rows(sheet, "Nested")}
    assert nested == {"Deep › Deeper › Deepest › Leaf": 1}


def test_malformed_envelopes_do_not_crash(tmp_path: Path) -> None:
    envelopes: list[dict[str, Any]] = [
        {"agent_id": "x"},
        {"status": "error"},
        {"agent_id": "unified-profiler", "data": {"fields": [{"field_name": "a"}, "junk"]}, "alerts": ["junk"]},
        {
            "agent_id": "drift-detector",
            "data": {"fields": [{}], "schema_drift": {"added_columns": None}, "skipped": True},
        },
        {"agent_id": "y", "data": "not a dict", "summary_metrics": None, "executive_summary": [None]},
        {"agent_id": "z", "row_level_issues": [{"row_index": 1}, "junk"], "issues": [None, {"issue_id": 3}]},
    ]
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "unknown-tool", envelopes, steps=[{"columns": None}])
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames[:3] == ["Summary", "Cleaning Steps", "x"]
    assert "Drift analysis skipped: no baseline" in [c.value for c in workbook["Drift Detection"]["A"]]


def test_a_failing_curated_view_falls_back_to_the_generic_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(writer: Any, data: dict[str, Any]) -> set[str]:
        raise KeyError("psi_score")

    monkeypatch.setitem(agent_sheets.CURATED, "drift-detector", broken)
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "profile-my-data", [drift_envelope()])
    sheet = openpyxl.load_workbook(path)["Drift Detection"]
    find(sheet, "Detailed view unavailable (KeyError: 'psi_score'); generic view below")
    assert [r["Field"] for r in table_rows(sheet, "Fields")] == [f["field_name"] for f in DRIFT_FIELDS]


def test_agent_sheet_names_are_valid_and_unique(tmp_path: Path) -> None:
    names = ["Findings", "a/b:c*?[d]", "Same", "Same", "History", "x" * 40, "x" * 40]
    envelopes = [envelope(f"agent-{i}", name) for i, name in enumerate(names)]
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "t", envelopes)
    sheets = openpyxl.load_workbook(path).sheetnames
    assert sheets[1:8] == ["Findings 2", "a_b_c___d_", "Same", "Same 2", "History 2", "x" * 31, "x" * 29 + " 2"]
    assert sheets[8:] == ["Findings", "Row-Level Issues"]


def test_sheet_names_and_headers_are_made_valid() -> None:
    assert unique_headers(["a", "A", "", None, "x" * 300, "a"]) == [
        "a",
        "A (2)",
        "Column 3",
        "Column 4",
        "x" * 255,
        "a (3)",
    ]


# ---------------------------------------------------------------- JSON report


def test_json_report_round_trips_envelopes_steps_and_summary(tmp_path: Path) -> None:
    envelopes = clean_envelopes()
    path = tmp_path / "cleaning_report.json"
    write_json_report(path, "clean-my-data", envelopes, steps=CLEAN_STEPS, summary=CLEAN_SUMMARY)
    with path.open() as handle:
        report = json.load(handle)
    assert report["report_version"] == "2" and report["tool_id"] == "clean-my-data"
    assert report["steps"] == CLEAN_STEPS and report["summary"] == CLEAN_SUMMARY
    assert [a["agent_id"] for a in report["agents"]] == [e["agent_id"] for e in envelopes]
    added = {"row_level_issues_total", "row_level_issues_by_type", "row_level_issues_truncated"}
    for stored, original in zip(report["agents"], envelopes, strict=True):
        assert {k: v for k, v in stored.items() if k not in added} == _json_ready(original)
    mystery = report["agents"][-1]
    assert mystery["summary_metrics"]["ratio"] is None
    assert mystery["data"]["findings"][0]["details"]["score"] is None
    assert report["row_level_issues_total"] == 2  # without counts: the inline issues
    assert report["agents"][0]["row_level_issues_by_type"] == {"t": 2}
    assert report["row_level_issues_files"] == ["row_level_issues.parquet", "row_level_issues.csv"]


def _json_ready(value: Any) -> Any:
    """What the report should hold: NaN and infinities as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def test_json_report_without_summary_derives_one(tmp_path: Path) -> None:
    envelopes, _, counts = profile_run()
    path = tmp_path / "data_profile_report.json"
    write_json_report(path, "profile-my-data", envelopes, counts)
    report = json.loads(path.read_text())
    assert "steps" not in report
    quality = envelopes[0]["data"]["quality_summary"]
    assert report["summary"]["quality_grade"] == quality["quality_grade"]
    assert report["summary"]["alerts_by_severity"]["critical"] == 1
    assert report["summary"]["status"] == "success" and report["summary"]["rows"] == 2400


def test_json_report_holds_the_inline_issues_and_counts_them_all(tmp_path: Path) -> None:
    envelope, issues = profiler_envelope()
    envelopes = [envelope, drift_envelope()]
    counts = count_row_level_issues({"unified-profiler": issues.drop("agent_id"), "drift-detector": issues.clear()})
    path = tmp_path / "data_profile_report.json"
    write_json_report(path, "profile-my-data", envelopes, counts)
    report = json.loads(path.read_text())
    stored = report["agents"][0]
    assert stored["agent_id"] == "unified-profiler"
    assert stored["row_level_issues"] == envelope["row_level_issues"] and len(stored["row_level_issues"]) == 1000
    assert stored["row_level_issues_total"] == issues.height == report["row_level_issues_total"] > 1000
    expected = issues.to_pandas()["issue_type"].value_counts().to_dict()
    assert stored["row_level_issues_by_type"] == expected and stored["row_level_issues_truncated"] is True
    assert stored["data"]["fields"] == json.loads(json.dumps(envelope["data"]["fields"]))
    drift = report["agents"][1]
    assert (drift["row_level_issues"], drift["row_level_issues_total"], drift["row_level_issues_truncated"]) == (
        [],
        0,
        False,
    )
    assert "row_level_issues.parquet" in report["row_level_issues_note"]


# ---------------------------------------------------------------- how the sheets read


def test_nested_values_read_as_text_not_reprs() -> None:
    assert cell_value([]) is None and cell_value({}) is None
    assert cell_value(["a", 1, 2.5, None, True]) == "a, 1, 2.5, null, true"
    assert cell_value({"rows": 3, "share": 0.123456789}) == "rows: 3; share: 0.123457"
    assert cell_value([{"a": 1}]) == '[{"a": 1}]'  # nested: JSON text
    many = cell_value(list(range(MAX_LIST_ITEMS + 7)))
    assert many.startswith("0, 1, 2") and many.endswith("… (7 more)")
    assert cell_value(float("nan")) is None and cell_value([float("inf")]) == "null"


def test_sparse_nested_mappings_stay_one_column_and_keyed_mappings_become_tables(tmp_path: Path) -> None:
    checks = [
        {"check": "a", "passed": True, "details": {f"k{i}": i for i in range(3)}},
        {"check": "b", "passed": False, "details": {f"m{i}": i for i in range(3)}},
    ]
    assert varying_mappings(checks) == {"details"}
    assert varying_mappings([{"d": {"x": 1}}, {"d": {"y": 2}}]) == frozenset()  # few keys: flattened
    per_column = {"amount": {"q1": 1.0, "q3": 3.0}, "price": {"q1": 2.0, "q3": 5.0}}
    unknown = envelope("checker-x", "Checker X", data={"checks": checks, "per_column": per_column})
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "t", [unknown])
    sheet = openpyxl.load_workbook(path)["Checker X"]
    rows = table_rows(sheet, "Checks")
    assert list(rows[0]) == ["Check", "Passed", "Details"]
    assert rows[0]["Details"] == "k0: 0; k1: 1; k2: 2" and rows[1]["Passed"] is False
    assert table_rows(sheet, "Per column") == [
        {"Key": "amount", "Q1": 1.0, "Q3": 3.0},
        {"Key": "price", "Q1": 2.0, "Q3": 5.0},
    ]


def test_print_setup_header_formats_and_flags(tmp_path: Path) -> None:
    path, _ = write_clean(tmp_path)
    workbook = openpyxl.load_workbook(path)
    for sheet in workbook.worksheets:
        if sheet.sheet_state == "visible":
            assert sheet.page_setup.orientation == "landscape", sheet.title
    summary, steps = workbook["Summary"], workbook["Cleaning Steps"]
    assert summary.sheet_properties.pageSetUpPr.fitToPage and summary.page_setup.fitToHeight == 0
    header = summary.cell(*find(summary, "Severity", column=1))
    assert header.font.b and header.fill.fgColor.rgb.endswith("1F4E78")  # not left to the table style
    assert summary.column_dimensions["C"].width == pytest.approx(24, abs=1)
    # a boolean keeps a TRUE/FALSE display format (LibreOffice shows a bare style's boolean as 1/0)
    checks = workbook["Writeback"]
    row, column = find(checks, "Passed")
    assert checks.cell(row + 1, column).value is True
    assert "TRUE" in checks.cell(row + 1, column).number_format
    assert steps.freeze_panes == "A2"


def test_key_values_and_wrapped_text(tmp_path: Path) -> None:
    long_text = "a long explanation of a metric " * 6
    unknown = envelope(
        "agent-y",
        "Agent Y",
        summary_metrics={"rows": 1_234_567},
        data={"notes": {"meaning": long_text}, "log": [{"step": 1, "agent": "x", "message": long_text}]},
    )
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "t", [unknown])
    sheet = openpyxl.load_workbook(path)["Agent Y"]
    row, _ = find(sheet, "Rows", column=1)
    assert sheet.cell(row, 2).value == 1_234_567 and sheet.cell(row, 2).number_format == "#,##0"
    row, _ = find(sheet, "Meaning", column=1)
    assert sheet.cell(row, 2).alignment.wrap_text and sheet.row_dimensions[row].height > 15
    assert sheet.column_dimensions["B"].width <= KEY_VALUE_WIDTH + 3
    row, _ = find(sheet, long_text, column=3)
    assert sheet.row_dimensions[row].height > 15  # a wrapped table cell grows its row
    assert sheet.column_dimensions["C"].width <= WRAP_WIDTH + 1 and sheet.column_dimensions["C"].alignment.wrap_text


def test_top_values_only_for_repeating_columns_and_log_scale_for_skewed_histograms(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    amounts = np.concatenate([rng.normal(100, 5, 4000), [1e6] * 3])
    frame = pl.DataFrame({"amount": amounts, "city": rng.choice(["Oslo", "Rome"], amounts.size)})
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "profile-my-data", [result.envelope.to_dict()])
    charts = chart_xml(path)
    titles = [re.findall(r"<a:t>([^<]*)</a:t>", xml)[0] for xml in charts]
    assert titles == ["amount: histogram", "city: top values"]  # amount: nearly all distinct, no top values
    assert "<c:logBase" in charts[0] and "<c:logBase" not in charts[1]
