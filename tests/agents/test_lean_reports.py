"""Lean reports: the row-level issue files (every issue, written by Polars), the JSON report's inline cap and
counts, the Excel report's one Findings list and human labels, and the profiler's own sheets
(Correlations, Missing values, Samples, Dates) built from a hand-made envelope holding their keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import polars as pl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from agents import registry
from agents.chain import run_tool
from agents.envelope import ROW_LEVEL_ISSUE_SCHEMA
from agents.reports import row_issues
from agents.reports.excel import write_excel_report
from agents.reports.labels import label
from agents.reports.row_issues import (
    ROW_LEVEL_ISSUE_FILE_SCHEMA,
    count_row_level_issues,
    write_row_level_issues,
)

# ---------------------------------------------------------------- row-level issue files


def issues_frame(rows: list[int], column: str, issue_type: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row_index": rows,
            "column": [column] * len(rows),
            "issue_type": [issue_type] * len(rows),
            "severity": ["warning"] * len(rows),
            "message": [f"{column} at {row}" for row in rows],
            "value": [str(row * 10) for row in rows],
        },
        schema=ROW_LEVEL_ISSUE_SCHEMA,
    )


def test_the_files_hold_every_issue_by_agent_in_chain_order_then_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    later = pl.concat(
        [issues_frame(rng.permutation(50).tolist(), "b", "outlier"), issues_frame([3, 1], "a", "missing_value")]
    )
    first = issues_frame([9, 2, 5], "c", "format")
    frames = {"zeta-agent": first, "alpha-agent": later, "quiet-agent": issues_frame([], "x", "t")}
    names = write_row_level_issues(tmp_path, frames)
    assert names == ["row_level_issues.parquet", "row_level_issues.csv"]

    stored = pl.read_parquet(tmp_path / "row_level_issues.parquet")
    assert stored.schema == pl.Schema(ROW_LEVEL_ISSUE_FILE_SCHEMA)
    # independently: pandas, the agents in chain order (not alphabetical), then row, then column
    expected = pd.concat(
        [
            frame.to_pandas().assign(agent_id=agent, at=position)
            for position, (agent, frame) in enumerate(frames.items())
        ]
    )
    expected = expected.sort_values(["at", "row_index", "column"], kind="stable")[list(ROW_LEVEL_ISSUE_FILE_SCHEMA)]
    assert stored.to_pandas().reset_index(drop=True).equals(expected.reset_index(drop=True))
    assert stored["agent_id"].unique(maintain_order=True).to_list() == ["zeta-agent", "alpha-agent"]
    csv = pl.read_csv(tmp_path / "row_level_issues.csv", schema=ROW_LEVEL_ISSUE_FILE_SCHEMA)
    assert csv.equals(stored)


def test_no_issue_still_writes_the_files_with_their_schema(tmp_path: Path) -> None:
    names = write_row_level_issues(tmp_path, {"a": pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)})
    assert names == ["row_level_issues.parquet", "row_level_issues.csv"]
    stored = pl.read_parquet(tmp_path / "row_level_issues.parquet")
    assert stored.height == 0 and stored.columns == list(ROW_LEVEL_ISSUE_FILE_SCHEMA)
    assert (tmp_path / "row_level_issues.csv").read_text().strip() == ",".join(ROW_LEVEL_ISSUE_FILE_SCHEMA)


def test_above_the_csv_limit_only_the_parquet_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_issues, "MAX_CSV_ROW_LEVEL_ISSUES", 4)
    frames = {"a": issues_frame([1, 2, 3], "x", "t"), "b": issues_frame([1, 2], "y", "t")}
    assert write_row_level_issues(tmp_path, frames) == ["row_level_issues.parquet"]
    assert pl.read_parquet(tmp_path / "row_level_issues.parquet").height == 5
    assert not (tmp_path / "row_level_issues.csv").exists()
    assert registry.MAX_CSV_ROW_LEVEL_ISSUES == 100_000  # the documented limit


def test_counts_per_type_over_all_issues() -> None:
    rng = np.random.default_rng(1)
    kinds = rng.choice(["missing_value", "outlier_iqr", "format"], size=5_000, p=[0.6, 0.3, 0.1])
    frame = pl.DataFrame(
        {"row_index": np.arange(5_000), "column": "c", "issue_type": kinds, "severity": "low", "message": "m"}
    ).with_columns(pl.lit(None, pl.String).alias("value"))
    counts = count_row_level_issues({"a": frame, "b": frame.clear()})
    values, numbers = np.unique(kinds, return_counts=True)
    assert counts["a"].total == 5_000 and counts["a"].by_type == dict(zip(values, numbers.tolist(), strict=True))
    assert list(counts["a"].by_type) == ["missing_value", "outlier_iqr", "format"]  # most frequent first
    assert (counts["b"].total, counts["b"].by_type) == (0, {})


# ---------------------------------------------------------------- the chain's outputs


def test_the_chain_writes_the_files_and_keeps_the_reports_lean(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = 3_000
    amount = rng.normal(100, 10, rows)
    amount[rng.random(rows) < 0.5] = np.nan  # ~1,500 missing values: more than an agent lists inline
    primary = tmp_path / "primary.csv"
    pl.DataFrame({"id": np.arange(rows), "amount": amount}).write_csv(primary)
    out = tmp_path / "out"
    result = run_tool("profile-my-data", [], {"primary.csv": primary}, {}, out, lambda p, a, m: None)

    outputs = {o["name"]: o["content_type"] for o in result["outputs"]}
    assert outputs["row_level_issues.parquet"] == "application/vnd.apache.parquet"
    assert outputs["row_level_issues.csv"] == "text/csv"
    assert list(outputs) == list(registry.tool_spec("profile-my-data").outputs)
    stored = pl.read_parquet(out / "row_level_issues.parquet")
    report = json.loads((out / "data_profile_report.json").read_text())
    assert report["row_level_issues_total"] == stored.height
    assert report["row_level_issues_files"] == ["row_level_issues.parquet", "row_level_issues.csv"]
    for agent in report["agents"]:
        mine = stored.filter(pl.col("agent_id") == agent["agent_id"])
        assert len(agent["row_level_issues"]) == min(mine.height, 1000)
        assert agent["row_level_issues_total"] == mine.height
        assert agent["row_level_issues_truncated"] == (mine.height > 1000)
        assert agent["row_level_issues_by_type"] == dict(mine["issue_type"].value_counts().iter_rows())
        # the inline ones are the first of the file's, in file order
        first = mine.head(len(agent["row_level_issues"])).drop("agent_id").to_dicts()
        assert agent["row_level_issues"] == first
    profiler = next(a for a in report["agents"] if a["agent_id"] == "unified-profiler")
    missing = int(np.isnan(amount).sum())
    assert profiler["row_level_issues_by_type"]["missing_value"] == missing > 1000
    assert profiler["row_level_issues_truncated"] is True


def test_every_tool_lists_the_issue_files_and_parquet_has_a_content_type() -> None:
    for tool_id in ("profile-my-data", "clean-my-data", "master-my-data"):
        assert registry.tool_spec(tool_id).outputs[-2:] == ("row_level_issues.parquet", "row_level_issues.csv")
    assert registry.output_content_type("row_level_issues.parquet") == "application/vnd.apache.parquet"


# ---------------------------------------------------------------- labels and findings


def test_labels_read_as_words_and_leave_column_names_alone() -> None:
    assert label("missing_cells_percentage") == "Missing cells (%)"
    assert label("execution_time_ms") == "Time (ms)"
    assert label("estimated_pii_type") == "PII type"
    assert label("fields_with_high_risk") == "Fields with high risk"  # the fallback
    assert label("duplicate_rows_percentage") == "Duplicate rows (%)"
    assert label("details.pii.type") == "Details › PII › Type"
    assert label("dep_delay", keep={"dep_delay"}) == "dep_delay"
    assert label("missing_tokens.by_column.dep_delay", keep={"dep_delay"}) == "Missing tokens › By column › dep_delay"
    assert label("Already words") == "Already words" and label("change_in_*") == "change_in_*"


def envelope(agent_id: str, **parts: Any) -> dict[str, Any]:
    return {"status": "success", "agent_id": agent_id, "agent_name": agent_id.title(), **parts}


def sheet_rows(sheet: Worksheet) -> list[dict[str, Any]]:
    cells = list(sheet.iter_rows(values_only=True))
    return [dict(zip(cells[0], row, strict=True)) for row in cells[1:] if row[1] is not None]


def test_findings_list_each_thing_once_with_its_recommendation(tmp_path: Path) -> None:
    said = {"severity": "medium", "category": "missing", "affected_fields_count": 1, "field_name": "amount"}
    alerts = [
        {"alert_id": "missing:amount", "message": "amount is 40% missing", "recommendation": "impute", **said},
        {**said, "alert_id": "skewed:amount", "category": "skewed", "severity": "high", "message": "skewed"}
        | {"recommendation": "log"},
    ]
    issues = [
        {"issue_id": "missing:amount-2", "field_name": "amount", "issue_type": "missing", "severity": "medium"}
        | {"message": "amount is 40% missing"},  # the first alert again
        {"issue_id": "x", "field_name": "amount", "issue_type": "other", "severity": "low", "message": "skewed"},
        {"issue_id": "y", "field_name": "city", "issue_type": "mixed_case", "severity": "low", "message": "mixed"},
    ]
    recommendations = [
        {"recommendation_id": "rec:missing:amount", "field_name": "amount", "priority": "medium"}
        | {"recommendation": "impute"},  # the first alert's
        {"recommendation_id": "rec:declare_tests", "field_name": None, "priority": "critical"}
        | {"recommendation": "declare tests"},
    ]
    envelopes = [envelope("agent-a", alerts=alerts, issues=issues, recommendations=recommendations)]
    path = tmp_path / "r.xlsx"
    write_excel_report(path, "t", envelopes)
    rows = sheet_rows(openpyxl.load_workbook(path)["Findings"])
    listed = [(r["Severity"], r["Field"], r["Category"], r["Reported as"], r["Recommendation"]) for r in rows]
    assert listed == [
        ("critical", None, "Declare tests", "recommendation", "declare tests"),
        ("high", "amount", "Skewed", "alert", "log"),
        ("medium", "amount", "Missing", "alert", "impute"),
        ("low", "city", "Mixed case", "issue", None),
    ]


def test_summary_says_where_every_issue_is_and_shows_the_users_file_names(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    summary = {"primary": "flights 2013.csv", "baseline": "flights 2012.csv", "row_level_issues_total": 200_000}
    counts = {"agent-a": row_issues.RowIssueCounts(200_000, {"t": 200_000})}
    write_excel_report(path, "profile-my-data", [envelope("agent-a")], counts, summary=summary)
    cells = {r[0]: r[1] for r in openpyxl.load_workbook(path)["Summary"].iter_rows(values_only=True) if r[0]}
    assert (cells["File"], cells["Baseline"]) == ("flights 2013.csv", "flights 2012.csv")
    assert cells["All row-level issues in"] == "row_level_issues.parquet"  # above the CSV limit


# ---------------------------------------------------------------- the profiler's own sheets

COLUMNS = ["dep_delay", "arr_delay", "carrier"]
PEARSON = [[1.0, 0.91, None], [0.91, 1.0, None], [None, None, None]]


def views_data() -> dict[str, Any]:
    """The profiler's ``data`` with every key the views show, in the shapes of agents/profile."""
    sample_rows = [{"row_index": i, "dep_delay": i * 2, "arr_delay": -i, "carrier": "UA"} for i in (1, 2, 3)]
    return {
        "fields": [
            {
                "field_name": "dep_delay",
                "data_type": "integer",
                "statistics": {
                    "min": -43,
                    "max": 1301,
                    "extremes": {
                        "lowest": [{"value": -43, "count": 1}, {"value": -33, "count": 2}],
                        "highest": [{"value": 1301, "count": 1}],
                    },
                },
            },
            {
                "field_name": "time_hour",
                "data_type": "datetime",
                "statistics": {},
                "datetime_profile": {
                    "min": "2013-01-01T05:00:00",
                    "max": "2013-12-31T23:00:00",
                    "time_zone": "UTC",
                    "range": "364 days 18:00:00",
                    "range_seconds": 31_514_400,
                    "distinct": 6_936,
                    "future_count": 0,
                    "extremes": {"lowest": [{"value": "2013-01-01T05:00:00", "count": 4}], "highest": []},
                    "step": {"median_seconds": 3600, "most_common_seconds": 3600},
                    "gaps": [
                        {
                            "after": "2013-01-01T23:00:00",
                            "before": "2013-01-02T05:00:00",
                            "seconds": 21_600,
                            "text": "6 hours",
                        }
                    ],
                    "counts_by_year": [{"period": 2013, "count": 336_776}],
                    "counts_by_month": [
                        {"period": "2013-01", "label": "Jan 2013", "count": 27_004},
                        {"period": "2013-02", "label": "Feb 2013", "count": 24_951},
                    ],
                    "counts_by_weekday": [{"period": "Mon", "count": 50_690}, {"period": "Tue", "count": 50_422}],
                    "counts_by_hour": [{"period": hour, "count": 100 + hour} for hour in range(24)],
                },
            },
        ],
        "correlations": {
            "rows_used": 100_000,
            "sampled": True,
            "pearson": {"columns": COLUMNS[:2] + ["carrier"], "matrix": PEARSON},
            "spearman": {"columns": COLUMNS[:2], "matrix": [[1.0, 0.88], [0.88, 1.0]]},
            "cramers_v": {"columns": ["carrier", "origin"], "matrix": [[1.0, 0.3], [0.3, 1.0]]},
            "strongest_pairs": [
                {"column_a": "dep_delay", "column_b": "arr_delay", "method": "pearson", "value": 0.91, "rows": 9}
                | {"rows": 327_346},
                {"column_a": "carrier", "column_b": "origin", "method": "cramers_v", "value": 0.3, "rows": 336_776},
            ],
            "near_duplicates": [{"column_a": "dep_delay", "column_b": "arr_delay", "method": "pearson", "value": 0.91}],
            "threshold": 0.9,
            "skipped": {"tailnum": "more than 1,000 distinct values"},
        },
        "missing_patterns": {
            "columns": [
                {"column": "dep_delay", "null_count": 8_255, "null_percentage": 2.45},
                {"column": "arr_delay", "null_count": 9_430, "null_percentage": 2.8},
            ],
            "rows": 336_776,
            "rows_with_missing": 9_430,
            "rows_complete": 327_346,
            "rows_all_missing": 0,
            "patterns": [
                {"columns": ["dep_delay", "arr_delay"], "rows": 8_255, "percentage": 2.45},
                {"columns": ["arr_delay"], "rows": 1_175, "percentage": 0.35},
            ],
            "distinct_patterns": 3,
            "nullity_correlation": {"columns": ["dep_delay", "arr_delay"], "matrix": [[1.0, 0.93], [0.93, 1.0]]},
        },
        "samples": {
            "head": sample_rows,
            "tail": [{**sample_rows[0], "row_index": 336_776}],
            "random": sample_rows[1:],
            "seed": 0,
            "columns": ["dep_delay", "arr_delay", "carrier"],
            "columns_truncated": False,
        },
        "duplicate_rows_sample": {
            "duplicate_rows": 5,
            "groups_total": 2,
            "groups": [
                {"count": 4, "row_indexes": [7, 19, 40, 41], "row": {"dep_delay": 1, "arr_delay": 2, "carrier": "AA"}},
            ],
        },
    }


def write_views(tmp_path: Path, data: dict[str, Any]) -> openpyxl.Workbook:
    path = tmp_path / "views.xlsx"
    write_excel_report(path, "profile-my-data", [envelope("unified-profiler", data=data)])
    return openpyxl.load_workbook(path)


def find(sheet: Worksheet, value: Any) -> tuple[int, int]:
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value == value:
                return cell.row, cell.column
    raise AssertionError(f"{value!r} not on {sheet.title}")


def table_under(sheet: Worksheet, title: str) -> list[dict[str, Any]]:
    row, _ = find(sheet, title)
    [table] = [t for t in sheet.tables.values() if t.ref.startswith(f"A{row + 1}:")]
    cells = [[cell.value for cell in line] for line in sheet[table.ref]]
    return [dict(zip(cells[0], line, strict=True)) for line in cells[1:]]


def colour_scales(sheet: Worksheet) -> dict[str, list[float]]:
    return {
        str(cf.sqref): [float(v.val) for v in rule.colorScale.cfvo]
        for cf in sheet.conditional_formatting
        for rule in cf.rules
        if rule.type == "colorScale"
    }


def test_the_views_are_written_after_the_profiler_sheet(tmp_path: Path) -> None:
    workbook = write_views(tmp_path, views_data())
    names = workbook.sheetnames
    assert names[:6] == ["Summary", "Profiler", "Correlations", "Missing values", "Samples", "Dates"]
    profiler = workbook["Profiler"]
    assert table_under(profiler, "Extreme values") == [
        {"Field": "dep_delay", "Lowest values (rows)": "-43 (1); -33 (2)", "Highest values (rows)": "1301 (1)"}
    ]
    # the views' keys are not repeated in the profiler's generic part
    assert all(cell.value != "Correlations › Strongest pairs" for cell in profiler["A"])


def test_correlations_sheet(tmp_path: Path) -> None:
    sheet = write_views(tmp_path, views_data())["Correlations"]
    assert sheet["A2"].value == "Over 100,000 rows (an evenly spaced sample of the data)"
    pairs = table_under(sheet, "Strongest pairs")
    assert [(p["Column A"], p["Method"], p["Value"], p["Rows"]) for p in pairs] == [
        ("dep_delay", "Pearson", 0.91, 327_346),
        ("carrier", "Cramér's V", 0.3, 336_776),
    ]
    near = table_under(sheet, "Near-duplicate columns (|value| ≥ 0.9)")
    assert [(n["Column A"], n["Column B"], n["Method"]) for n in near] == [("dep_delay", "arr_delay", "Pearson")]
    top, _ = find(sheet, "Pearson matrix")
    header = top + 1
    assert [sheet.cell(header, c).value for c in range(2, 5)] == COLUMNS
    grid = [[sheet.cell(header + r, c).value for c in range(2, 5)] for r in range(1, 4)]
    assert grid == PEARSON  # a missing coefficient stays an empty cell
    assert [sheet.cell(header + r, 1).value for r in range(1, 4)] == COLUMNS
    scales = colour_scales(sheet)
    assert scales[f"B{header + 1}:D{header + 3}"] == [-1.0, 0.0, 1.0]
    cramer, _ = find(sheet, "Cramér's V matrix")
    assert scales[f"B{cramer + 2}:C{cramer + 3}"][0] == 0.0  # Cramér's V runs from 0
    assert table_under(sheet, "Columns left out") == [
        {"Column": "tailnum", "Why it is left out": "more than 1,000 distinct values"}
    ]


def test_missing_values_sheet(tmp_path: Path) -> None:
    sheet = write_views(tmp_path, views_data())["Missing values"]
    rows = {r["Metric"]: r["Value"] for r in table_under(sheet, "Rows")}
    assert rows["Complete rows"] == 327_346 and rows["Distinct patterns of missing columns"] == 3
    per_column = table_under(sheet, "Missing per column")
    assert per_column[1] == {"Column": "arr_delay", "Missing": 9_430, "Missing (%)": 2.8}
    patterns = table_under(sheet, "Patterns (the columns missing in the same rows)")
    assert patterns[0] == {"Columns missing together": "dep_delay, arr_delay", "Rows": 8_255, "Rows (%)": 2.45}
    top, _ = find(sheet, "Nullity correlation (1: always missing together, −1: never)")
    assert sheet.cell(top + 2, 3).value == 0.93


def test_samples_sheet(tmp_path: Path) -> None:
    sheet = write_views(tmp_path, views_data())["Samples"]
    head = table_under(sheet, "First rows")
    assert head[2] == {"Row": 3, "dep_delay": 6, "arr_delay": -3, "carrier": "UA"}
    assert table_under(sheet, "Last rows")[0]["Row"] == 336_776
    assert [r["Row"] for r in table_under(sheet, "Random rows (seed 0)")] == [2, 3]
    title = "Duplicate rows: 5 rows repeat an earlier one, in 2 groups (the first 1 shown)"
    assert table_under(sheet, title) == [
        {"Copies": 4, "Rows": "7, 19, 40, 41", "dep_delay": 1, "arr_delay": 2, "carrier": "AA"}
    ]


def test_dates_sheet(tmp_path: Path) -> None:
    sheet = write_views(tmp_path, views_data())["Dates"]
    find(sheet, "time_hour")
    facts = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row[0]}
    assert facts["First"] == "2013-01-01T05:00:00" and facts["Distinct values"] == 6_936
    assert facts["Median step (s)"] == 3600 and facts["Earliest values"] == "2013-01-01T05:00:00 (4)"
    assert table_under(sheet, "time_hour: largest gaps")[0]["Gap"] == "6 hours"
    months = table_under(sheet, "time_hour: rows per month")
    assert months == [{"Month": "Jan 2013", "Rows": 27_004}, {"Month": "Feb 2013", "Rows": 24_951}]
    hours = table_under(sheet, "time_hour: rows per hour")
    assert [h["Rows"] for h in hours] == [100 + hour for hour in range(24)]
    assert len(sheet._charts) == 3  # month, weekday, hour (a single year is no chart)


def test_no_view_without_its_key_and_a_bad_shape_is_said(tmp_path: Path) -> None:
    data = views_data()
    plain = {"fields": [{"field_name": "x", "statistics": {}}]}
    assert write_views(tmp_path, plain).sheetnames == ["Summary", "Profiler", "Findings", "Row-Level Issues"]
    broken = {"fields": data["fields"], "correlations": {"strongest_pairs": "not a list", "pearson": {"columns": 3}}}
    workbook = write_views(tmp_path, broken)
    assert "Correlations" in workbook.sheetnames and "Missing values" not in workbook.sheetnames
    notes = [c.value for c in workbook["Correlations"]["A"] if isinstance(c.value, str)]
    assert any(note.startswith("Correlations unavailable (TypeError") for note in notes)
