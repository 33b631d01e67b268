"""stewardship-flagger: every check flags exactly the rows an independent computation (pandas) says, the
queue's shape and order, the tasks from golden-record-builder's artifacts, and parameter validation."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import polars as pl
import pytest
from pydantic import ValidationError

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.master import golden, stewardship
from agents.master.matching import REVIEW_SCHEMA, Resolution
from agents.params.golden_record_builder import GoldenRecordBuilderParams
from agents.params.stewardship_flagger import StewardshipFlaggerParams

ROW = ROW_INDEX_COLUMN
QUEUE_COLUMNS = ["task_id", "severity", "reason", "source", "source_row", "golden_id", "column", "value", "action"]


def flag(frame: pl.DataFrame, artifacts: dict[str, Any] | None = None, **params: Any) -> AgentResult:
    fractions: list[float] = []
    model = StewardshipFlaggerParams.model_validate(params)
    result = stewardship.run(
        AgentInputs(frame, "primary.csv", artifacts=artifacts or {}), model, lambda f, _m: fractions.append(f)
    )
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success" and result.frame is None
    queue = result.outputs["stewardship_queue.csv"]
    assert queue.columns == QUEUE_COLUMNS
    assert queue["task_id"].to_list() == [f"T-{index:07d}" for index in range(1, queue.height + 1)]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    ranks = [order[severity] for severity in queue["severity"]]
    assert ranks == sorted(ranks)
    assert envelope["summary_metrics"]["tasks_created"] == queue.height
    return result


def people() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "name": ["Ann", "  ", "Bo", None, "Cy", "Dee"],
            "email": ["ann@x.com", "bad-address", "bo@y.org", "bo@y.org", None, "dee@w.io"],
            "Age": [34, 150, -1, 40, None, 25],
            "code": ["AB1", "ab1", "X", "CD2", "EF3", "zz9"],
            "status": ["active", "closed", "active", "ACTIVE", "pending", "active"],
            "balance": ["10.5", "2,000", "n/a", "-5", "7", "0"],
        }
    )


def rows_of(result: AgentResult, issue_type: str) -> list[int]:
    issues = result.row_level_issues
    return sorted(issues.filter(pl.col("issue_type") == issue_type)["row_index"].to_list())


def test_each_check_flags_the_rows_pandas_finds() -> None:
    frame = people()
    source = frame.to_pandas()
    result = flag(
        frame,
        required_columns=["name", "phone"],
        field_validation_rules={
            "code": {"pattern": "[A-Z]{2}[0-9]", "min_length": 3},
            "status": {"allowed_values": ["active", "closed"]},
        },
        duplicate_key_columns=["email"],
        business_rules=[
            {
                "name": "negative",
                "condition": {"column": "balance", "operator": "lt", "value": 0},
                "severity": "critical",
                "action": "Check the ledger",
            },
            {
                "name": "closed",
                "condition": {"column": "status", "operator": "eq", "value": "closed"},
                "severity": "low",
            },
            {"name": "xdomain", "condition": {"column": "email", "operator": "contains", "value": "@x."}},
            {"name": "not34", "condition": {"column": "Age", "operator": "ne", "value": 34}, "severity": "low"},
            {"name": "old", "condition": {"column": "Age", "operator": "gt", "value": 39.5}, "severity": "high"},
        ],
    )
    row = lambda mask: sorted((source.index[mask] + 1).tolist())  # noqa: E731
    name = source["name"].str.strip()
    assert rows_of(result, "missing_required") == row(source["name"].isna() | (name == ""))
    code_bad = ~source["code"].str.fullmatch(r"[A-Z]{2}[0-9]") | (source["code"].str.len() < 3)
    status_bad = ~source["status"].str.lower().isin(["active", "closed"])
    email_bad = source["email"].notna() & ~source["email"].str.fullmatch(
        r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", na=False
    )
    invalid = sorted(row(code_bad) + row(status_bad) + row(email_bad))
    assert rows_of(result, "invalid_format") == invalid
    assert rows_of(result, "outlier_value") == row((source["Age"] < 0) | (source["Age"] > 120))
    duplicated = source["email"].notna() & source["email"].duplicated(keep=False)
    assert rows_of(result, "duplicate_suspected") == row(duplicated)
    balance = pd.to_numeric(source["balance"].str.replace(",", ""), errors="coerce")
    ages = source["Age"]
    expected_rules = sorted(
        row(balance < 0)
        + row(source["status"] == "closed")
        + row(source["email"].str.contains("@x.", regex=False, na=False))
        + row(ages.notna() & (ages != 34))
        + row(ages > 39.5)
    )
    assert rows_of(result, "business_rule_violation") == expected_rules
    queue = result.outputs["stewardship_queue.csv"]
    missing_column = queue.filter(pl.col("column") == "phone").row(0, named=True)
    assert (missing_column["task_id"], missing_column["severity"], missing_column["source"]) == (
        "T-0000001",
        "critical",
        None,
    )
    negative = queue.filter(pl.col("reason").str.contains("'negative'")).row(0, named=True)
    assert (
        negative["severity"],
        negative["source"],
        negative["source_row"],
        negative["value"],
        negative["action"],
    ) == (
        "critical",
        "primary",
        4,
        "-5",
        "Check the ledger",
    )
    metrics = result.envelope.summary_metrics
    flagged = set(result.row_level_issues["row_index"].to_list())
    assert metrics["records_flagged"] == len(flagged)
    assert metrics["clean_data_rate"] == pytest.approx(100 * (6 - len(flagged)) / 6)
    assert metrics["critical_issues"] == queue.filter(pl.col("severity") == "critical").height == 2
    assert metrics["high_priority_tasks"] == queue.filter(pl.col("severity") == "high").height


def test_default_checks_outliers_by_name_and_role_formats() -> None:
    frame = pl.DataFrame(
        {"AGE": ["34", "200", "abc"], "percentage": [5.0, 101.0, None], "mail": ["a@x.com", "nope", None]}
    )
    result = flag(frame)
    queue = result.outputs["stewardship_queue.csv"]
    assert sorted(queue.select("column", "source_row").rows()) == [("AGE", 2), ("mail", 2), ("percentage", 2)]
    assert set(queue["severity"]) == {"medium"}
    off = flag(frame, check_role_formats=False, outlier_thresholds={})
    assert off.outputs["stewardship_queue.csv"].height == 0
    assert off.envelope.summary_metrics == {
        "tasks_created": 0,
        "critical_issues": 0,
        "high_priority_tasks": 0,
        "records_flagged": 0,
        "clean_data_rate": 100.0,
    }


def test_borderline_pairs_and_low_trust_golden_records_from_the_builder() -> None:
    frame = pl.DataFrame(
        {
            ROW: [1, 2, 3, 4],
            SOURCE_COLUMN: ["primary", "primary", "crm", "crm"],
            SOURCE_ROW_COLUMN: [1, 2, 1, 2],
            "email": ["a@x.com", "a@x.com", "b@y.org", "c@z.net"],
            "name": ["Al", "Alan", "Bo", "Cy"],
            "city": ["Rome", "Oslo", "Lima", "Kyiv"],
        }
    )
    built = golden.run(
        AgentInputs(frame, "primary.csv"),
        GoldenRecordBuilderParams(enable_fuzzy_matching=False, default_survivorship_rule="first"),
        lambda _f, _m: None,
    )
    review = pl.DataFrame(
        {"left": [4], "right": [3], "probability": [0.62], "reason": ["borderline"]}, schema=REVIEW_SCHEMA
    )
    resolution = built.artifacts["resolution"]
    artifacts = {
        **built.artifacts,
        "resolution": Resolution(resolution.clusters, resolution.pairs, review, resolution.stats),
    }
    result = flag(frame, artifacts, confidence_threshold=0.9)
    queue = result.outputs["stewardship_queue.csv"]
    crosswalk = built.outputs["crosswalk.csv"]
    pair = queue.filter(pl.col("reason").str.starts_with("borderline match")).row(0, named=True)
    assert pair["reason"] == "borderline match p=0.62 between rows 3 and 4 (crm row 1, crm row 2): borderline"
    assert (pair["source"], pair["source_row"], pair["severity"], pair["value"]) == ("crm", 1, "medium", "0.62")
    assert pair["golden_id"] == crosswalk["golden_id"][2]
    low = queue.filter(pl.col("column") == "trust_score").row(0, named=True)
    master = built.outputs["master_data.csv"]
    assert low["golden_id"] == master.filter(pl.col("record_count") == 2)["golden_id"][0]
    assert (low["source"], low["source_row"], low["value"]) == (None, None, "0.8333")
    assert result.envelope.summary_metrics["records_flagged"] == 2  # both rows of the pair
    assert {alert.alert_id for alert in result.envelope.alerts} >= {"borderline_match", "low_trust_golden_record"}


def test_business_rules_on_dates_and_booleans() -> None:
    frame = pl.DataFrame(
        {
            "joined": pl.Series(["2020-01-01", "2024-06-30", None]).str.to_date(),
            "vip": [True, False, None],
        }
    )
    result = flag(
        frame,
        business_rules=[
            {"name": "recent", "condition": {"column": "joined", "operator": "gt", "value": "2023-01-01"}},
            {"name": "vip", "condition": {"column": "vip", "operator": "eq", "value": True}},
        ],
        outlier_thresholds={},
    )
    queue = result.outputs["stewardship_queue.csv"]
    assert sorted(queue.select("source_row", "column").rows()) == [(1, "vip"), (2, "joined")]


def test_parameters_are_validated() -> None:
    frame = people()
    bad: dict[str, Any]
    for bad in (
        {"confidence_threshold": 1.5},
        {"outlier_thresholds": {"age": {"min": 5, "max": 1}}},
        {"outlier_thresholds": {"age": {}}},
        {"business_rules": [{"condition": {"column": "Age", "operator": "between", "value": 1}}]},
        {"business_rules": [{"condition": {"column": "Age", "operator": "eq", "value": [1]}}]},
        {"business_rules": [{"condition": {"column": "Age", "operator": "eq", "value": 1}, "severity": "urgent"}]},
        {"severity_weights": {"critical": -1}},
        {"unknown": True},
    ):
        with pytest.raises(ValidationError):
            StewardshipFlaggerParams.model_validate(bad)
    with pytest.raises(InvalidParametersError, match="invalid regular expression") as error:
        flag(frame, field_validation_rules={"code": {"pattern": "(?<=a)b"}})
    assert error.value.field == "field_validation_rules.code.pattern"
    with pytest.raises(InvalidParametersError, match="unknown column"):
        flag(frame, duplicate_key_columns=["nope"])
    with pytest.raises(InvalidParametersError, match="unknown column") as error:
        flag(frame, business_rules=[{"condition": {"column": "nope", "operator": "eq", "value": 1}}])
    assert error.value.field == "business_rules[0].condition"
    with pytest.raises(InvalidParametersError, match="gt/lt compare numbers"):
        flag(frame, business_rules=[{"condition": {"column": "name", "operator": "gt", "value": "Bo"}}])
    with pytest.raises(InvalidParametersError, match="not True"):
        flag(frame, business_rules=[{"condition": {"column": "Age", "operator": "lt", "value": True}}])
