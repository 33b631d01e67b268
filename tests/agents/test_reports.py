from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import polars as pl

from agents.envelope import AgentInputs
from agents.profile.profiler import ProfilerParams, run
from agents.reports.excel import PROFILER_COLUMNS, write_excel_report
from agents.reports.json_report import write_json_report


def _profile() -> tuple[dict, pl.DataFrame]:
    frame = pl.DataFrame({"x": [1.0, None, 3.0, 400.0] * 600, "name": ["a", "b", None, "d"] * 600})
    result = run(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda f, m: None)
    issues = result.row_level_issues.select(pl.lit("unified-profiler").alias("agent_id"), pl.all())
    return result.envelope.to_dict(), issues


def test_excel_report_sheets_headers_and_frozen_panes(tmp_path: Path) -> None:
    envelope, _ = _profile()
    inline = [{"agent_id": "unified-profiler", **issue} for issue in envelope["row_level_issues"]]
    path = tmp_path / "data_profile_report.xlsx"
    write_excel_report(path, "profile-my-data", [envelope], inline)
    workbook = openpyxl.load_workbook(path, read_only=False)
    assert workbook.sheetnames == ["Summary", "Profiler", "Alerts", "Issues", "Recommendations", "Row-Level Issues"]
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes == "A2", sheet.title
        assert sheet.auto_filter.ref is not None, sheet.title
        assert sheet["A1"].font.bold, sheet.title
    profiler = workbook["Profiler"]
    assert [cell.value for cell in profiler[1]] == [header for header, _ in PROFILER_COLUMNS]
    assert [profiler.cell(row=r, column=1).value for r in (2, 3)] == ["x", "name"]
    assert profiler.column_dimensions["A"].width > 5
    rows = workbook["Row-Level Issues"]
    assert [cell.value for cell in rows[1]] == ["Agent", "Row", "Column", "Issue type", "Severity", "Message", "Value"]
    assert rows.max_row == 1 + len(inline) == 1001
    assert rows.cell(row=2, column=2).value == 2  # first issue: row 2 of the data, x is missing
    summary_values = [row[1].value for row in workbook["Summary"].iter_rows(min_row=2)]
    assert "Dataset grade" in summary_values


def test_json_report_holds_every_row_level_issue(tmp_path: Path) -> None:
    envelope, issues = _profile()
    path = tmp_path / "data_profile_report.json"
    write_json_report(path, "profile-my-data", [envelope], issues)
    report = json.loads(path.read_text())
    assert report["tool_id"] == "profile-my-data"
    [stored] = report["agents"]
    assert stored["agent_id"] == "unified-profiler"
    assert len(stored["row_level_issues"]) == issues.height == envelope["data"]["row_level_issues_total"] > 1000
    assert report["row_level_issues_total"] == issues.height
    assert stored["row_level_issues"][0].keys() == {"row_index", "column", "issue_type", "severity", "message", "value"}
    assert stored["data"]["fields"] == json.loads(json.dumps(envelope["data"]["fields"]))


def test_json_report_accepts_a_list_of_dicts(tmp_path: Path) -> None:
    envelope = {"agent_id": "a", "status": "success", "row_level_issues": []}
    issues = [
        {
            "agent_id": "a",
            "row_index": 3,
            "column": "c",
            "issue_type": "t",
            "severity": "info",
            "message": "m",
            "value": 1.5,
        }
    ]
    path = tmp_path / "r.json"
    write_json_report(path, "t", [envelope, {"agent_id": "b", "status": "error"}], issues)
    report = json.loads(path.read_text())
    assert report["agents"][0]["row_level_issues"] == [
        {"row_index": 3, "column": "c", "issue_type": "t", "severity": "info", "message": "m", "value": "1.5"}
    ]
    assert report["agents"][1]["row_level_issues"] == []
