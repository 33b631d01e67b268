"""score-risk, test-coverage-agent, readiness-rater and governance-checker against answers computed here
independently (plain Python / NumPy) on generated frames with known content."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents import registry
from agents.chain import run_tool
from agents.envelope import AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params import test_coverage as coverage_params
from agents.params.governance_checker import GovernanceCheckerParams
from agents.params.readiness_rater import ReadinessRaterParams
from agents.params.score_risk import ScoreRiskParams
from agents.quality import coverage, governance, readiness, risk

CoverageParams = coverage_params.TestCoverageParams
QUICK = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run_agent(module: Any, frame: pl.DataFrame, params: Any) -> AgentResult:
    progress: list[float] = []
    result: AgentResult = module.run(AgentInputs(frame, "primary.csv"), params, lambda f, m: progress.append(f))
    assert progress == sorted(progress) and progress[-1] == 1.0
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    return result


def parse(agent_id: str, raw: dict[str, Any]) -> Any:
    return registry.parse_parameters(agent_id, raw)


def sampled_positions(rows: int, size: int) -> list[int]:
    """0-based rows of the evenly spaced sample: every (rows // size)-th row, at most ``size`` of them."""
    step = max(1, rows // size)
    return list(range(0, rows, step))[:size]


# ---------------------------------------------------------------- score-risk


RISK_ROWS = 1000
EMAIL_NOTE_ROWS = {i for i in range(RISK_ROWS) if (i // 10) % 7 == 0}  # 15 % of notes are bare e-mail addresses


def risk_frame() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    return pl.DataFrame(
        {
            "email": [f"person{i}@example.com" for i in range(RISK_ROWS)],
            "contact": [f"c{i}@mail.org" if (i // 10) % 4 else "unknown" for i in range(RISK_ROWS)],  # 75 % e-mails
            "customer_name": [f"Name {i}" for i in range(RISK_ROWS)],
            "api_key": [f"k{i:08x}" for i in range(RISK_ROWS)],
            "payment_ref": [
                f"4111 1111 1111 {i % 10000:04d}" if (i // 10) % 5 else "pending" for i in range(RISK_ROWS)
            ],  # 80 % card numbers
            "amount": rng.normal(100, 5, RISK_ROWS),
            "notes": [f"n{i}@x.io" if i in EMAIL_NOTE_ROWS else "no contact" for i in range(RISK_ROWS)],
        }
    )


def assessment(result: AgentResult, name: str) -> dict[str, Any]:
    return next(item for item in result.envelope.data["field_risk_assessments"] if item["field_name"] == name)


def test_risk_scores_levels_and_frameworks_known_answers() -> None:
    result = run_agent(risk, risk_frame(), ScoreRiskParams())
    expected = {
        "email": (100, "high"),  # name 60 + value 80, capped
        "contact": (80, "high"),  # values only
        "customer_name": (60, "medium"),  # name only
        "api_key": (60, "medium"),  # secret by name
        "payment_ref": (80, "high"),  # card numbers by value
        "amount": (0, "low"),
        "notes": (0, "low"),  # 15 % e-mails: under the 50 % rule
    }
    for name, (score, level) in expected.items():
        item = assessment(result, name)
        assert (item["risk_score"], item["risk_level"]) == (score, level), name
    assert assessment(result, "contact")["detection"]["value_match_share"] == pytest.approx(0.75, abs=0.01)
    assert assessment(result, "email")["pii_type"] == "email"
    assert assessment(result, "payment_ref")["compliance_frameworks"] == ["CCPA", "GDPR", "PCI-DSS"]
    assert assessment(result, "api_key")["compliance_frameworks"] == []
    assert assessment(result, "api_key")["sensitive_type"] == "secret"

    summary = result.envelope.data["risk_summary"]
    scores = [score for score, _ in expected.values()]
    assert summary["overall_risk_score"] == pytest.approx(sum(scores) / len(scores), abs=0.005)
    assert summary["overall_risk_level"] == "medium"  # 380 / 7 = 54.3
    assert (summary["high_risk_fields"], summary["medium_risk_fields"], summary["low_risk_fields"]) == (3, 2, 2)
    assert summary["pii_fields_detected"] == 4  # email, contact, customer_name, payment_ref
    assert summary["compliance_frameworks_impacted"] == ["CCPA", "GDPR", "PCI-DSS"]
    metrics = result.envelope.summary_metrics
    assert metrics["fields_with_high_risk"] == 3 and metrics["sensitive_fields_detected"] == 3
    assert {a.category for a in result.envelope.alerts} >= {"pii_detected", "compliance_pci_dss", "sensitive_data"}
    assert result.envelope.data["defaults"]["pii_sample_size"] == 100


def test_risk_overall_level_follows_thresholds() -> None:
    frame = risk_frame().select("email", "contact")
    assert run_agent(risk, frame, ScoreRiskParams()).envelope.data["risk_summary"]["overall_risk_level"] == "high"
    strict = ScoreRiskParams(high_risk_threshold=95, medium_risk_threshold=85)
    summary = run_agent(risk, frame, strict).envelope.data["risk_summary"]
    assert summary["overall_risk_score"] == 90.0 and summary["overall_risk_level"] == "medium"
    assert (summary["high_risk_fields"], summary["medium_risk_fields"], summary["low_risk_fields"]) == (1, 0, 1)


def test_risk_row_issues_are_sampled_pii_values_in_unlabelled_columns() -> None:
    frame = risk_frame()
    result = run_agent(risk, frame, ScoreRiskParams())
    issues = result.row_level_issues
    sample = sampled_positions(RISK_ROWS, 100)
    expected_notes = sorted(i + 1 for i in sample if i in EMAIL_NOTE_ROWS)
    expected_contact = sorted(i + 1 for i in sample if (i // 10) % 4)
    expected_cards = sorted(i + 1 for i in sample if (i // 10) % 5)
    by_column = {c: sorted(issues.filter(pl.col("column") == c)["row_index"].to_list()) for c in issues["column"]}
    assert by_column == {"notes": expected_notes, "contact": expected_contact, "payment_ref": expected_cards}
    assert set(issues["severity"]) == {"info"} and set(issues["issue_type"]) == {"pii_in_unlabelled_column"}
    first = issues.filter(pl.col("column") == "notes").sort("row_index").row(0, named=True)
    assert first["value"] == "n0***"  # masked
    assert result.envelope.summary_metrics["unlabelled_pii_values"] == issues.height


def test_risk_enabled_flags_switch_their_part_off() -> None:
    frame = risk_frame()
    no_values = run_agent(risk, frame, ScoreRiskParams(pii_detection_enabled=False))
    assert assessment(no_values, "email")["risk_score"] == 60
    assert assessment(no_values, "contact")["risk_score"] == 0
    assert no_values.row_level_issues.height == 0
    no_names = run_agent(risk, frame, ScoreRiskParams(sensitive_field_detection_enabled=False))
    assert assessment(no_names, "email")["risk_score"] == 80
    assert assessment(no_names, "customer_name")["risk_score"] == 0
    assert no_names.envelope.data["risk_summary"]["sensitive_fields_detected"] == 0
    no_governance = run_agent(risk, frame, ScoreRiskParams(governance_check_enabled=False))
    summary = no_governance.envelope.data["risk_summary"]
    assert summary["compliance_frameworks_impacted"] == [] and summary["governance_gaps"] == 0
    assert assessment(no_governance, "email")["risk_score"] == 100


def test_risk_hipaa_applies_to_personal_data_next_to_health_data() -> None:
    frame = pl.DataFrame(
        {"email": ["a@b.com", "c@d.org"], "diagnosis": ["flu", "cold"], "encrypted_email": ["x1", "x2"]}
    )
    result = run_agent(risk, frame, ScoreRiskParams())
    assert assessment(result, "email")["compliance_frameworks"] == ["CCPA", "GDPR", "HIPAA"]
    assert assessment(result, "diagnosis")["sensitive_type"] == "health"
    assert "HIPAA" in assessment(result, "diagnosis")["compliance_frameworks"]
    assert assessment(result, "encrypted_email")["governance_gap"] is False  # named as protected
    assert assessment(result, "email")["governance_gap"] is True


def test_risk_invalid_parameters_raise() -> None:
    with pytest.raises(InvalidParametersError) as error:
        parse("score-risk", {"medium_risk_threshold": 80, "high_risk_threshold": 70})
    assert error.value.agent_id == "score-risk"
    with pytest.raises(InvalidParametersError) as error:
        parse("score-risk", {"pii_sample_size": 5})
    assert error.value.field == "pii_sample_size"
    with pytest.raises(InvalidParametersError):
        parse("score-risk", {"pii_detection_enabled": "yes"})
    assert isinstance(parse("score-risk", {"high_risk_threshold": 75}), ScoreRiskParams)


COLUMN_KINDS = {
    "email_named": ("user_email", lambda i: f"u{i}@example.com", 100),
    "email_unnamed": ("misc", lambda i: f"u{i}@example.com", 80),
    "name_only": ("phone", lambda i: f"call me {i}", 60),
    "plain": ("misc", lambda i: f"word{i}", 0),
    "numbers": ("misc", lambda i: i * 1.5, 0),
}


@QUICK
@given(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), min_size=1, max_size=6), st.integers(5, 60))
def test_risk_property_scores_and_mean(kinds: list[str], rows: int) -> None:
    columns = {}
    expected = []
    for index, kind in enumerate(kinds):
        name, make, score = COLUMN_KINDS[kind]
        columns[f"{name}_{index}"] = [make(i) for i in range(rows)]
        expected.append(score)
    result = run_agent(risk, pl.DataFrame(columns), ScoreRiskParams())
    scores = [item["risk_score"] for item in result.envelope.data["field_risk_assessments"]]
    assert scores == expected
    summary = result.envelope.data["risk_summary"]
    assert 0 <= summary["overall_risk_score"] <= 100
    assert summary["overall_risk_score"] == pytest.approx(sum(expected) / len(expected), abs=0.005)
    levels = Counter("high" if s >= 70 else "medium" if s >= 40 else "low" for s in expected)
    assert (summary["high_risk_fields"], summary["medium_risk_fields"], summary["low_risk_fields"]) == (
        levels["high"],
        levels["medium"],
        levels["low"],
    )


# ---------------------------------------------------------------- test-coverage-agent


COVERAGE_ROWS = 1000


def coverage_frame() -> pl.DataFrame:
    rng = np.random.default_rng(5)
    ids = list(range(COVERAGE_ROWS))
    for row in (10, 20, 30):  # three ids repeated: six failing occurrences
        ids[row + 500] = ids[row]
    age = rng.integers(0, 100, COVERAGE_ROWS).tolist()
    for row in (3, 4, 5):
        age[row] = 150
    age[6] = -1
    ages: list[int | None] = list(age)
    ages[7] = None
    codes = [f"AB-{i:04d}" for i in range(COVERAGE_ROWS)]
    codes[1] = "AB-0001x"  # passes a start-anchored match, fails a full match
    codes[2] = "ab-0002"
    codes[9] = "XAB-0009"
    price = [f"{i * 0.5:.1f}" for i in range(COVERAGE_ROWS)]
    price[100] = "n/a"
    price[101] = "2000"
    return pl.DataFrame({"id": ids, "age": ages, "code": codes, "price_text": price})


COVERAGE_PARAMS = {
    "unique_columns": ["id"],
    "range_tests": {"age": {"min": 0, "max": 120}, "price_text": {"max": 1000}},
    "format_tests": {"code": {"pattern": r"AB-\d{4}", "description": "product code"}},
}


def test_coverage_scores_and_violations_known_answers() -> None:
    frame = coverage_frame()
    params = parse("test-coverage-agent", COVERAGE_PARAMS)
    result = run_agent(coverage, frame, params)
    ids = frame["id"].to_list()
    id_counts = Counter(ids)
    unique_fail = [i + 1 for i, v in enumerate(ids) if id_counts[v] > 1]
    ages = frame["age"].to_list()
    age_fail = [i + 1 for i, v in enumerate(ages) if v is not None and not 0 <= v <= 120]
    prices = frame["price_text"].to_list()

    def bad_price(value: str) -> bool:
        try:
            return float(value) > 1000
        except ValueError:
            return True

    price_fail = [i + 1 for i, v in enumerate(prices) if bad_price(v)]
    codes = frame["code"].to_list()
    code_fail = [i + 1 for i, v in enumerate(codes) if not re.fullmatch(r"AB-\d{4}", v)]
    assert (len(unique_fail), len(age_fail), len(price_fail), len(code_fail)) == (6, 4, 2, 3)

    tests = {t["test_id"]: t for t in result.envelope.data["tests"]}
    age_checked = sum(v is not None for v in ages)
    rates = {
        "uniqueness:id": 100 * (COVERAGE_ROWS - 6) / COVERAGE_ROWS,
        "range:age": 100 * (age_checked - 4) / age_checked,
        "range:price_text": 100 * (COVERAGE_ROWS - 2) / COVERAGE_ROWS,
        "format:code": 100 * (COVERAGE_ROWS - 3) / COVERAGE_ROWS,
    }
    for test_id, rate in rates.items():
        assert tests[test_id]["pass_rate"] == pytest.approx(rate, abs=1e-4), test_id
        assert tests[test_id]["passed"] is False
    uniqueness, ranges, formats = (
        rates["uniqueness:id"],
        (rates["range:age"] + rates["range:price_text"]) / 2,
        rates["format:code"],
    )
    expected_score = 0.4 * uniqueness + 0.3 * ranges + 0.3 * formats
    scores = result.envelope.data["test_coverage_scores"]
    assert scores["overall"] == pytest.approx(expected_score, abs=0.005)
    assert scores["range"] == pytest.approx(ranges, abs=1e-4)
    assert result.envelope.summary_metrics["coverage_status"] == "excellent"  # ~99.6

    issues = result.row_level_issues
    got = {
        kind: sorted(issues.filter(pl.col("issue_type") == kind)["row_index"].to_list())
        for kind in ("uniqueness_violation", "range_violation", "format_violation")
    }
    assert got["uniqueness_violation"] == unique_fail
    assert got["range_violation"] == sorted(age_fail + price_fail)
    assert got["format_violation"] == code_fail
    age_row = issues.filter((pl.col("column") == "age") & (pl.col("row_index") == 4)).row(0, named=True)
    assert "[0, 120]" in age_row["message"] and age_row["value"] == "150"
    price_row = issues.filter((pl.col("column") == "price_text") & (pl.col("row_index") == 101)).row(0, named=True)
    assert price_row["message"].startswith("Not a number") and "[-inf, 1000]" in price_row["message"]
    metrics = result.envelope.summary_metrics
    # 15 failing values, and row 8 (age null) has 1 of 4 cells null: more than 20 %
    assert issues.filter(pl.col("issue_type") == "high_null_row")["row_index"].to_list() == [8]
    assert (metrics["tests_declared"], metrics["tests_passed"], metrics["row_level_issues_total"]) == (4, 0, 16)
    assert result.envelope.issue_summary["total_issues"] == 16 + len(result.envelope.issues)


def test_coverage_status_thresholds_and_weight_redistribution() -> None:
    frame = coverage_frame()
    only_format = parse("test-coverage-agent", {"format_tests": {"code": r"AB-\d{4}"}})
    result = run_agent(coverage, frame, only_format)
    data = result.envelope.data
    assert data["effective_weights"] == {"uniqueness": 0.0, "range": 0.0, "format": 1.0}
    assert data["test_coverage_scores"]["overall"] == pytest.approx(100 * 997 / 1000, abs=0.005)
    assert data["test_coverage_scores"]["uniqueness"] is None
    strict = parse("test-coverage-agent", {**COVERAGE_PARAMS, "excellent_threshold": 99.9, "good_threshold": 99.7})
    assert run_agent(coverage, frame, strict).envelope.summary_metrics["coverage_status"] == "needs_improvement"
    two = parse("test-coverage-agent", {"unique_columns": ["code"], "range_tests": {"age": {"min": 0, "max": 120}}})
    result = run_agent(coverage, frame, two)
    age_rate = 100 * (999 - 4) / 999
    assert result.envelope.data["test_coverage_scores"]["overall"] == pytest.approx(
        (0.4 * 100 + 0.3 * age_rate) / 0.7, abs=0.005
    )


def test_coverage_without_tests_scores_zero_and_says_so() -> None:
    result = run_agent(coverage, coverage_frame(), CoverageParams())
    assert result.envelope.summary_metrics["test_coverage_score"] == 0.0
    assert result.envelope.summary_metrics["coverage_status"] == "needs_improvement"
    assert [a.category for a in result.envelope.alerts] == ["no_tests_declared", "high_null_rows"]


def test_coverage_rows_mostly_null() -> None:
    rows = 50
    frame = pl.DataFrame(
        {
            f"c{j}": [None if (i * (j + 1)) % 7 == 0 or (i % 5 == 0 and j < 2) else i for i in range(rows)]
            for j in range(5)
        }
    )
    values = frame.rows()
    expected = [i + 1 for i, row in enumerate(values) if 100 * sum(v is None for v in row) / 5 > 20]
    result = run_agent(coverage, frame, CoverageParams())
    flagged = result.row_level_issues.filter(pl.col("issue_type") == "high_null_row")
    assert flagged["row_index"].to_list() == expected and len(expected) > 0
    assert result.envelope.summary_metrics["high_null_rows"] == len(expected)
    result = run_agent(coverage, frame, CoverageParams(row_null_threshold=40))
    expected_40 = [i + 1 for i, row in enumerate(values) if 100 * sum(v is None for v in row) / 5 > 40]
    assert result.envelope.summary_metrics["high_null_rows"] == len(expected_40) < len(expected)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"unique_columns": ["nope"]}, "unique_columns"),
        ({"range_tests": {"nope": {"min": 1}}}, "range_tests.nope"),
        ({"format_tests": {"nope": "x"}}, "format_tests.nope"),
        ({"format_tests": {"code": "(?=AB)AB.*"}}, "format_tests.code"),
        ({"format_tests": {"code": {"pattern": "[a-", "description": "bad"}}}, "format_tests.code"),
        ({"range_tests": {"flag": {"min": 0}}}, "range_tests.flag"),
        ({"unique_columns": ["id"], "uniqueness_weight": 0.0}, "uniqueness_weight"),
    ],
)
def test_coverage_parameters_that_do_not_fit_the_data_raise(raw: dict[str, Any], field: str) -> None:
    frame = coverage_frame().with_columns(flag=pl.lit(True))
    with pytest.raises(InvalidParametersError) as error:
        coverage.run(AgentInputs(frame, "primary.csv"), parse("test-coverage-agent", raw), lambda f, m: None)
    assert error.value.field == field and error.value.agent_id == "test-coverage-agent"
    assert error.value.code == "INVALID_PARAMETERS"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"uniqueness_weight": 1.5}, "uniqueness_weight"),
        ({"range_weight": -0.1}, "range_weight"),
        ({"range_tests": {"age": {"min": 5, "max": 1}}}, "range_tests.age"),
        ({"range_tests": {"age": {}}}, "range_tests.age"),
        ({"format_tests": {"code": {"pattern": ""}}}, "format_tests.code"),
        ({"unique_columns": "id"}, "unique_columns"),
        ({"unknown_option": 1}, "unknown_option"),
    ],
)
def test_coverage_schema_rejects_bad_values(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParametersError) as error:
        parse("test-coverage-agent", raw)
    assert error.value.field is not None and error.value.field.startswith(field)


@QUICK
@given(
    st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=1, max_size=60),
    st.integers(-5, 5),
    st.integers(0, 6),
)
def test_coverage_property_score_in_range_and_matches_counts(values: list[int | None], low: int, width: int) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Int64})
    params = CoverageParams.model_validate(
        {"unique_columns": ["v"], "range_tests": {"v": {"min": low, "max": low + width}}}
    )
    result = run_agent(coverage, frame, params)
    present = [v for v in values if v is not None]
    counts = Counter(present)
    duplicates = sum(c for c in counts.values() if c > 1)
    outside = sum(not low <= v <= low + width for v in present)
    unique_rate = 100 * (len(present) - duplicates) / len(present) if present else 100.0
    range_rate = 100 * (len(present) - outside) / len(present) if present else 100.0
    score = result.envelope.summary_metrics["test_coverage_score"]
    assert 0 <= score <= 100
    assert score == pytest.approx((0.4 * unique_rate + 0.3 * range_rate) / 0.7, abs=0.006)
    assert result.envelope.summary_metrics["uniqueness_violations"] == duplicates
    assert result.envelope.summary_metrics["range_violations"] == outside


# ---------------------------------------------------------------- readiness-rater


READINESS_ROWS = 400


def readiness_frame() -> pl.DataFrame:
    rng = np.random.default_rng(17)
    n = READINESS_ROWS - 20
    measure: list[float | None] = rng.normal(50, 5, n).tolist()
    for row in range(40):
        measure[row] = 1000.0 + row
    for row in range(100, 160):
        measure[row] = None
    base = pl.DataFrame(
        {
            "measure": measure,
            "amount_text": [f"{i}.25" if i % 8 else "n/a" for i in range(n)],
            "mixed": [str(i) if i % 2 else f"w{i}" for i in range(n)],
            "empty": [None] * n,
            "column_5": [f"x{i}" for i in range(n)],  # the reader's name for a blank header
            "signup_date": [f"2024-0{1 + i % 9}-1{i % 10}" if i % 10 else "someday" for i in range(n)],
            "group": rng.choice(["a", "b", "c"], n).tolist(),
        },
        schema_overrides={"empty": pl.String},
    )
    return pl.concat([base, base.head(20)])  # the last 20 rows repeat the first 20


def test_readiness_components_score_and_status_known_answers() -> None:
    frame = readiness_frame()
    result = run_agent(readiness, frame, ReadinessRaterParams())
    rows = frame.rows()
    cells = len(rows) * frame.width
    non_null = sum(v is not None for row in rows for v in row)
    completeness = 100 * non_null / cells

    def is_number(value: str) -> bool:
        try:
            float(value.strip())
            return True
        except ValueError:
            return False

    failures = sum(not is_number(v) for v in frame["amount_text"].to_list())
    consistency = 100 - 20 * 1 / frame.width  # amount_text is the only text column of numbers
    schema = 100 - 15 * 1 - 8 * 1 - 5 * 1  # empty, column_5, mixed
    overall = 0.3 * completeness + 0.3 * consistency + 0.4 * schema
    score = result.envelope.data["readiness_score"]
    assert score["completeness"] == pytest.approx(completeness, abs=1e-4)
    assert score["consistency"] == pytest.approx(consistency)
    assert score["schema_health"] == pytest.approx(schema)
    assert score["overall"] == pytest.approx(overall, abs=0.005)
    assert result.envelope.summary_metrics["readiness_status"] == "ready"  # ~83.0
    metrics = result.envelope.summary_metrics
    assert (metrics["components_ready"], metrics["components_needs_review"], metrics["components_not_ready"]) == (
        2,
        1,
        0,
    )  # completeness ~83.6 and consistency ~97.1 are >= 80; schema health 72 is in [60, 80)
    assert result.envelope.summary_metrics["numeric_parse_failures"] == failures > 0
    assert result.envelope.summary_metrics["missing_cells"] == cells - non_null  # "n/a" is not missing
    details = result.envelope.data["schema_health_details"]
    assert (details["all_null_columns"], details["unnamed_columns"], details["mixed_columns"]) == (
        ["empty"],
        ["column_5"],
        ["mixed"],
    )
    review = run_agent(readiness, frame, ReadinessRaterParams(ready_threshold=85, needs_review_threshold=60))
    assert review.envelope.summary_metrics["readiness_status"] == "needs_review"
    harsh = run_agent(readiness, frame, ReadinessRaterParams(ready_threshold=95, needs_review_threshold=90))
    assert harsh.envelope.summary_metrics["readiness_status"] == "not_ready"


def test_readiness_deductions_known_answers() -> None:
    frame = readiness_frame()
    result = run_agent(readiness, frame, ReadinessRaterParams())
    deductions = {(d["deduction_reason"], tuple(d["fields_affected"])): d for d in result.envelope.data["deductions"]}
    n = frame.height
    measure_missing = 100 * frame["measure"].null_count() / n
    assert deductions[("missing_values", ("measure",))]["deduction_amount"] == round(min(measure_missing / 5, 25), 2)
    assert deductions[("missing_values", ("empty",))]["deduction_amount"] == 20.0  # min(100 / 5, 25)
    assert deductions[("missing_values", ("empty",))]["severity"] == "critical"

    dates = frame["signup_date"].to_list()

    def is_date(value: str) -> bool:
        try:
            datetime.strptime(value, "%Y-%m-%d")
            return True
        except ValueError:
            return False

    bad_dates = sum(not is_date(v) for v in dates)
    date_share = 100 * bad_dates / len(dates)
    date_deduction = deductions[("format_inconsistency", ("signup_date",))]
    assert date_deduction["unparseable_values"] == bad_dates
    assert date_deduction["deduction_amount"] == round(min(date_share / 10, 12), 2)

    x = frame["measure"].drop_nulls().to_numpy()
    q1, q3 = np.quantile(x, [0.25, 0.75])
    outliers = int(((x < q1 - 1.5 * (q3 - q1)) | (x > q3 + 1.5 * (q3 - q1))).sum())
    outlier_share = 100 * outliers / len(x)
    assert outlier_share > 5
    outlier_deduction = deductions[("potential_outliers", ("measure",))]
    assert outlier_deduction["outliers"] == outliers
    assert outlier_deduction["deduction_amount"] == round(min(outlier_share / 20, 8), 2)

    duplicates = n - len(set(frame.rows()))
    assert duplicates == 20
    assert deductions[("duplicate_rows", ())]["deduction_amount"] == round(min(100 * duplicates / n / 10, 15), 2)
    assert len(deductions) == 5

    issues = result.row_level_issues
    duplicate_rows = sorted(issues.filter(pl.col("issue_type") == "duplicate_row")["row_index"].to_list())
    assert duplicate_rows == list(range(n - 19, n + 1))
    parse_rows = issues.filter(pl.col("issue_type") == "numeric_parse_failure")["row_index"].to_list()
    amounts = frame["amount_text"].to_list()
    assert sorted(parse_rows) == [i + 1 for i, v in enumerate(amounts) if v == "n/a"]
    date_rows = issues.filter(pl.col("issue_type") == "unparseable_date")["row_index"].to_list()
    assert sorted(date_rows) == [i + 1 for i, v in enumerate(dates) if not is_date(v)]
    failures = amounts.count("n/a")
    assert result.envelope.data["row_level_issues_total"] == issues.height == 20 + failures + bad_dates


def test_readiness_generated_column_names_lower_schema_health() -> None:
    frame = pl.DataFrame({"a": [1, 2], "": [1, 2], "Unnamed: 0": [1, 2], "x_duplicated_0": [3, 4], "b": [5, 6]})
    result = run_agent(readiness, frame, ReadinessRaterParams())
    details = result.envelope.data["schema_health_details"]
    assert details["unnamed_columns"] == ["", "Unnamed: 0", "x_duplicated_0"]
    assert result.envelope.data["readiness_score"]["schema_health"] == 100 - 3 * 8


def test_readiness_on_a_large_frame_counts_every_parse_failure() -> None:
    rows = 30_000  # above the 10,000-row screening sample
    amounts = [f"{i}" if i % 9 else "?" for i in range(rows)]
    words = [f"word{i}" for i in range(rows)]
    codes = [str(i) if i % 2 else f"c{i}" for i in range(rows)]  # 50 %: mixed
    stamps = [f"2023-0{1 + i % 9}-0{1 + i % 9}" if i % 1000 else "31/31/2023" for i in range(rows)]
    frame = pl.DataFrame({"amount": amounts, "word": words, "code": codes, "updated_at": stamps})
    result = run_agent(readiness, frame, ReadinessRaterParams())
    metrics = result.envelope.summary_metrics
    assert metrics["numeric_parse_failures"] == amounts.count("?") == rows // 9 + 1
    assert metrics["unparseable_dates"] == stamps.count("31/31/2023") == rows // 1000
    assert result.envelope.data["schema_health_details"]["mixed_columns"] == ["code"]
    assert result.envelope.data["consistency_details"]["numeric_text_columns"] == ["amount"]
    issues = result.row_level_issues
    assert sorted(issues.filter(pl.col("column") == "updated_at")["row_index"].to_list()) == [
        i + 1 for i in range(0, rows, 1000)
    ]


def test_readiness_invalid_parameters_raise() -> None:
    for raw, field in (
        ({"completeness_weight": 1.2}, "completeness_weight"),
        ({"schema_health_weight": -1.0}, "schema_health_weight"),
        ({"ready_threshold": 101}, "ready_threshold"),
    ):
        with pytest.raises(InvalidParametersError) as error:
            parse("readiness-rater", raw)
        assert error.value.field == field
    with pytest.raises(InvalidParametersError):
        parse("readiness-rater", {"ready_threshold": 40, "needs_review_threshold": 60})
    with pytest.raises(InvalidParametersError):
        parse("readiness-rater", {"completeness_weight": 0, "consistency_weight": 0, "schema_health_weight": 0})
    weights = parse("readiness-rater", {"completeness_weight": 1, "consistency_weight": 1, "schema_health_weight": 0})
    result = run_agent(readiness, pl.DataFrame({"a": [1, None], "b": ["x", "y"]}), weights)
    assert result.envelope.data["readiness_score"]["overall"] == pytest.approx((75 + 100) / 2)


@QUICK
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=8, max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_readiness_property_completeness_is_non_null_share(columns: list[list[int | None]]) -> None:
    frame = pl.DataFrame(
        {f"c{j}": values for j, values in enumerate(columns)}, schema={f"c{j}": pl.Int64 for j in range(len(columns))}
    )
    result = run_agent(readiness, frame, ReadinessRaterParams())
    non_null = sum(v is not None for values in columns for v in values)
    completeness = result.envelope.data["readiness_score"]["completeness"]
    assert completeness == pytest.approx(100 * non_null / (8 * len(columns)), abs=1e-4)
    assert 0 <= result.envelope.summary_metrics["readiness_score"] <= 100


# ---------------------------------------------------------------- governance-checker


GOVERNANCE_ROWS = 500


def governance_frame() -> pl.DataFrame:
    n = GOVERNANCE_ROWS
    source: list[str | None] = ["crm" if i % 2 else "erp" for i in range(n)]
    for i in range(40):
        source[i] = None
    for i in range(40, 50):
        source[i] = "  "
    status: list[str | None] = [["Granted", "denied", " withdrawn ", "PENDING"][i % 4] for i in range(n)]
    for i in range(100, 125):
        status[i] = "maybe"
    for i in range(125, 150):
        status[i] = None
    opt_in: list[bool | None] = [i % 3 == 0 for i in range(n)]
    for i in range(200, 300):
        opt_in[i] = None
    return pl.DataFrame(
        {
            "source_system": source,
            "consent_status": status,
            "opt_in": opt_in,
            "data_classification": ["internal"] * n,
            "email": [f"p{i}@example.com" for i in range(n)],
            "amount": [float(i) for i in range(n)],
        }
    )


def test_governance_named_fields_scores_known_answers() -> None:
    params = parse(
        "governance-checker",
        {
            "required_lineage_fields": ["source_system", "ingest_batch"],
            "required_consent_fields": ["consent_status", "opt_in"],
            "required_classification_fields": ["data_classification"],
        },
    )
    result = run_agent(governance, governance_frame(), params)
    n = GOVERNANCE_ROWS
    lineage = (100 * (n - 50) / n + 0) / 2  # ingest_batch is not in the data
    consent = (100 * (n - 50) / n + 100 * (n - 100) / n) / 2
    classification = 100.0
    overall = 0.3 * lineage + 0.4 * consent + 0.3 * classification
    scores = result.envelope.data["governance_scores"]
    assert (scores["lineage"], scores["consent"], scores["classification"]) == (
        pytest.approx(lineage),
        pytest.approx(consent),
        pytest.approx(classification),
    )
    assert scores["overall"] == pytest.approx(overall, abs=0.005)
    assert result.envelope.summary_metrics["compliance_status"] == "partially_compliant"  # 77.5
    assert result.envelope.summary_metrics["missing_required_fields"] == 1
    types = {issue["type"] for issue in result.envelope.data["governance_issues"]}
    assert {"missing_lineage_field", "incomplete_lineage_field", "incomplete_consent_field"} <= types
    assert "pii_without_classification" not in types  # classification is complete
    issues = result.row_level_issues
    assert sorted(issues.filter(pl.col("column") == "source_system")["row_index"].to_list()) == list(range(1, 51))
    assert sorted(issues.filter(pl.col("column") == "consent_status")["row_index"].to_list()) == list(range(101, 151))
    assert issues.filter(pl.col("column") == "opt_in").height == 100
    assert result.envelope.data["row_level_issues_total"] == 200
    lenient = params.model_copy(update={"compliance_threshold": 70.0})
    lenient_result = run_agent(governance, governance_frame(), lenient)
    assert lenient_result.envelope.summary_metrics["compliance_status"] == "compliant"
    assert lenient_result.envelope.data["status_cutoffs"]["compliant"] == ">= 70"


def test_governance_detects_fields_by_name_and_says_so() -> None:
    result = run_agent(governance, governance_frame(), GovernanceCheckerParams())
    categories = result.envelope.data["categories"]
    assert [f["field_name"] for f in categories["lineage"]["fields"]] == ["source_system"]
    assert [f["field_name"] for f in categories["consent"]["fields"]] == ["consent_status", "opt_in"]
    assert [f["field_name"] for f in categories["classification"]["fields"]] == ["data_classification"]
    assert {categories[c]["source"] for c in categories} == {"detected"}
    detected_alerts = {a.category for a in result.envelope.alerts if a.category.endswith("_fields_detected")}
    assert detected_alerts == {"lineage_fields_detected", "consent_fields_detected", "classification_fields_detected"}
    n = GOVERNANCE_ROWS
    expected = 0.3 * 100 * (n - 50) / n + 0.4 * (100 * (n - 50) / n + 100 * (n - 100) / n) / 2 + 0.3 * 100
    assert result.envelope.summary_metrics["governance_score"] == pytest.approx(expected, abs=0.005)
    assert result.envelope.summary_metrics["compliance_status"] == "compliant"


def test_governance_without_any_governance_field_is_non_compliant() -> None:
    frame = governance_frame().select("email", "amount")
    result = run_agent(governance, frame, GovernanceCheckerParams())
    assert result.envelope.summary_metrics["governance_score"] == 0.0
    assert result.envelope.summary_metrics["compliance_status"] == "non_compliant"
    types = {issue.issue_type for issue in result.envelope.issues}
    assert {"no_lineage_fields", "no_consent_fields", "no_classification_fields", "pii_without_classification"} <= types
    assert result.envelope.data["pii_fields"] == [
        {"field_name": "email", "pii_type": "email", "by_name": "email", "by_value": "email"}
    ]
    off = run_agent(governance, governance_frame(), GovernanceCheckerParams(detect_fields_by_name=False))
    assert off.envelope.summary_metrics["governance_score"] == 0.0


def test_governance_invalid_parameters_raise() -> None:
    for raw, field in (
        ({"consent_weight": 2.0}, "consent_weight"),
        ({"required_consent_fields": "consent"}, "required_consent_fields"),
        ({"lineage_weight": "0.3"}, "lineage_weight"),
    ):
        with pytest.raises(InvalidParametersError) as error:
            parse("governance-checker", raw)
        assert error.value.field == field
    with pytest.raises(InvalidParametersError):
        parse("governance-checker", {"compliance_threshold": 50, "needs_review_threshold": 60})


@QUICK
@given(st.lists(st.booleans(), min_size=1, max_size=80), st.lists(st.booleans(), min_size=1, max_size=80))
def test_governance_property_score_is_weighted_completeness(lineage_null: list[bool], consent_null: list[bool]) -> None:
    rows = min(len(lineage_null), len(consent_null))
    frame = pl.DataFrame(
        {
            "src": [None if lineage_null[i] else "s" for i in range(rows)],
            "consent": [None if consent_null[i] else True for i in range(rows)],
        },
        schema={"src": pl.String, "consent": pl.Boolean},
    )
    params = GovernanceCheckerParams(required_lineage_fields=["src"], required_consent_fields=["consent"])
    result = run_agent(governance, frame, params)
    lineage = 100 * sum(not lineage_null[i] for i in range(rows)) / rows
    consent = 100 * sum(not consent_null[i] for i in range(rows)) / rows
    score = result.envelope.summary_metrics["governance_score"]
    assert 0 <= score <= 100
    assert score == pytest.approx(0.3 * lineage + 0.4 * consent, abs=0.006)  # no classification field: 0
    missing = sum(lineage_null[i] for i in range(rows)) + sum(consent_null[i] for i in range(rows))
    assert result.envelope.data["row_level_issues_total"] == missing == result.row_level_issues.height


# ---------------------------------------------------------------- the chain


def test_quality_agents_run_in_the_profile_chain(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    coverage_frame().with_columns(email=pl.format("u{}@example.com", pl.col("id"))).write_csv(path)
    agents = ["score-risk", "test-coverage-agent", "readiness-rater", "governance-checker"]
    result = run_tool(
        "profile-my-data",
        agents,
        {"primary.csv": path},
        {"test-coverage-agent": {**COVERAGE_PARAMS, "row_null_threshold": 10}},
        tmp_path / "out",
        lambda percent, agent, message: None,
    )
    assert result["status"] == "success"
    assert set(result["agents"]) == set(agents)
    # 15 failing values and row 8, whose only null (age) is 1 of 5 cells: more than 10 %
    assert result["agents"]["test-coverage-agent"]["summary_metrics"]["row_level_issues_total"] == 16
    stored = (tmp_path / "out" / "data_profile_report.json").read_text()
    assert "high_null_row" in stored and "uniqueness_violation" in stored
    assert (tmp_path / "out" / "data_profile_report.xlsx").stat().st_size > 0
    for agent_id in agents:
        assert registry.agent(agent_id).exists


def test_coverage_without_declared_tests_suggests_tests_the_data_passes() -> None:
    from agents.quality import coverage

    frame = pl.DataFrame(
        {
            "id": list(range(1, 201)),
            "amount": [float(i % 37) - 3.5 for i in range(200)],
            "email": [f"u{i}@example.org" for i in range(200)],
            "city": ["Paris", "Lyon"] * 100,
            "joined": [f"2024-01-{1 + i % 28:02d}" for i in range(200)],
        }
    )
    inputs = AgentInputs(frame, "primary.csv")
    result = coverage.run(inputs, coverage_params.TestCoverageParams(), lambda *a: None)
    suggested = result.envelope.data["suggested_tests"]
    assert suggested["unique_columns"] == ["id", "email"]
    assert suggested["range_tests"] == {"id": {"min": 1, "max": 200}, "amount": {"min": -3.5, "max": 32.5}}
    assert set(suggested["format_tests"]) == {"email", "joined"}
    card = result.envelope.executive_summary[0]
    assert (card.value, card.status) == ("no tests", "info")
    # The suggestions are valid parameters, and the data passes every one of them.
    params = coverage_params.TestCoverageParams.model_validate(json.loads(json.dumps(suggested)))
    again = coverage.run(inputs, params, lambda *a: None)
    assert again.envelope.summary_metrics["tests_declared"] == 6
    assert again.envelope.summary_metrics["tests_failed"] == 0
    assert again.envelope.summary_metrics["test_coverage_score"] == 100.0
    assert "suggested_tests" not in again.envelope.data
