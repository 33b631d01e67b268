"""cleanse-previewer, quarantine-agent, type-fixer and field-standardization: known answers on small
generated frames (with the chain's row index, starting at 1 and with gaps), statistics against NumPy/SciPy,
parameter errors, and Hypothesis properties (no rows added, rows kept + removed = rows in, idempotence)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from scipy import stats

from agents import values as value_readers
from agents.clean import previewer, quarantine, standardization, type_fixer
from agents.envelope import REMOVED_ROWS_SCHEMA, ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.params.field_standardization import FieldStandardizationParams
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.params.type_fixer import TypeFixerParams

ROWS = [1, 2, 5, 6, 9, 10]  # the input file's rows: gaps where an earlier agent removed rows


def framed(columns: dict[str, list[Any]], rows: list[int] | None = None, **dtypes: Any) -> pl.DataFrame:
    index = rows or list(range(3, 3 + 2 * len(next(iter(columns.values()))), 2))
    return pl.DataFrame({ROW_INDEX_COLUMN: index, **columns}, schema_overrides={ROW_INDEX_COLUMN: pl.Int64, **dtypes})


def run_agent(module: Any, frame: pl.DataFrame, params: BaseModel) -> AgentResult:
    fractions: list[float] = []
    result: AgentResult = module.run(AgentInputs(frame, "primary.csv"), params, lambda f, _m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success"
    assert dict(result.row_level_issues.schema) == ROW_LEVEL_ISSUE_SCHEMA
    assert envelope["issue_summary"]["total_issues"] == len(envelope["issues"]) + result.row_level_issues.height
    assert envelope["data"]["parameters"] == params.model_dump()
    assert result.frame is not None and result.removed is not None
    assert dict(result.removed.schema) == REMOVED_ROWS_SCHEMA
    return result


def issues_of(result: AgentResult, issue_type: str) -> list[tuple[int, str | None, str | None]]:
    rows = result.row_level_issues.filter(pl.col("issue_type") == issue_type).sort("row_index", "column")
    return list(zip(rows["row_index"], rows["column"], rows["value"], strict=True))


# ---------------------------------------------------------------------------------------------------------
# type-fixer


def test_type_fixer_converts_numbers_dates_booleans_and_reports_unparseable_cells() -> None:
    frame = framed(
        {
            "price": ["1,234.50", "$12", "abc", " 7.25 ", None, "(3)"],
            "signup": ["2024-01-05", "01/31/2024", "2024-02-29", "12/25/2024", "garbage", ""],
            "active": ["yes", "No", "TRUE", "n", "1", None],
            "count": [1.0, 2.0, None, 4.0, -5.0, 6.0],
            "ratio": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
            "zip": ["02134", "10001", "94105", "00501", "60601", "73301"],
        },
        ROWS,
    )
    result = run_agent(type_fixer, frame, TypeFixerParams(preserve_mixed_types=False))  # Agensium's default
    out = result.frame
    assert out is not None
    assert out[ROW_INDEX_COLUMN].to_list() == ROWS
    assert out.schema["price"] == pl.Float64
    assert out["price"].to_list() == [1234.5, 12.0, None, 7.25, None, -3.0]
    assert out.schema["signup"] == pl.Date
    assert out["signup"].to_list() == [
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
        dt.date(2024, 12, 25),
        None,
        None,
    ]
    assert out["active"].to_list() == [True, False, True, False, True, None]
    assert out.schema["count"] == pl.Int64 and out["count"].to_list() == [1, 2, None, 4, -5, 6]
    assert out.schema["ratio"] == pl.Float64  # not all whole
    assert out["zip"].to_list() == frame["zip"].to_list()  # leading zeros: a code, not a number
    assert issues_of(result, "unparseable_value") == [(5, "price", "abc"), (9, "signup", "garbage")]
    log = {entry["column"]: entry for entry in result.envelope.data["fix_log"]}
    assert (log["price"]["converted"], log["price"]["failed"], log["price"]["to_type"]) == (4, 1, "Float64")
    assert log["price"]["examples"] == [{"row_index": 5, "value": "abc"}]
    assert (log["signup"]["failed"], log["signup"]["blank_values_emptied"]) == (1, 0)
    assert result.envelope.data["missing_tokens"]["by_column"]["signup"] == {"": 1}  # nulled before conversion
    assert {item["format"] for item in log["signup"]["date_formats"]} >= {"%Y-%m-%d", "%m/%d/%Y"}
    metrics = result.envelope.summary_metrics
    assert metrics["original_type_issues"] == 5 and metrics["type_issues_fixed"] == 4
    assert metrics["remaining_type_issues"] == 1 and metrics["values_unparseable"] == 2


def test_type_fixer_measures_every_value_not_a_sample() -> None:
    values = [str(i) for i in range(100)] + [f"word{i}" for i in range(300)]
    result = run_agent(type_fixer, framed({"mixed": values}), TypeFixerParams(auto_convert_category=False))
    assert result.frame is not None and result.frame.schema["mixed"] == pl.String
    analysis = result.envelope.data["type_analysis"]["columns"][0]
    assert analysis["shares"]["numeric"] == pytest.approx(0.25)
    assert analysis["type_issue"] and not analysis["converted"]  # 25 % numeric: mixed, not converted
    assert result.row_level_issues.height == 0


def test_type_fixer_threshold_and_preserve_mixed_types() -> None:
    column = {"amount": ["1", "2", "3", "4", "x"]}  # 80 % numeric
    mixed = TypeFixerParams(preserve_mixed_types=False)
    assert run_agent(type_fixer, framed(column), mixed).frame.schema["amount"] == pl.Int64  # type: ignore[union-attr]
    preserved = run_agent(type_fixer, framed(column), TypeFixerParams())  # the default keeps every value
    assert preserved.frame is not None and preserved.frame.schema["amount"] == pl.String
    assert preserved.frame["amount"].to_list() == column["amount"]
    (proposed,) = preserved.envelope.data["proposals"]
    assert proposed["apply"] == {"type-fixer": {"preserve_mixed_types": False}}
    assert (proposed["columns"], proposed["cells_affected"]) == (["amount"], 1)
    strict = run_agent(
        type_fixer, framed(column), TypeFixerParams(preserve_mixed_types=False, conversion_threshold=0.9)
    )
    assert strict.frame is not None and strict.frame.schema["amount"] == pl.String
    off = run_agent(type_fixer, framed(column), TypeFixerParams(auto_convert_numeric=False))
    assert off.frame is not None and off.frame.schema["amount"] == pl.String
    assert off.envelope.summary_metrics["remaining_type_issues"] == 1


def test_type_fixer_reports_ambiguous_day_month_and_uses_the_order_that_reads_more() -> None:
    dates = framed({"d": ["03/04/2024", "05/06/2024", "01/02/2024"]})
    guessed = run_agent(type_fixer, dates, TypeFixerParams())
    assert guessed.frame is not None and guessed.frame["d"].to_list() == dates["d"].to_list()  # not a guess
    assert guessed.envelope.data["proposals"][0]["apply"] == {"type-fixer": {"convert_ambiguous_dates": True}}
    tie = run_agent(type_fixer, dates, TypeFixerParams(convert_ambiguous_dates=True))
    assert tie.frame is not None and tie.frame["d"].to_list()[0] == dt.date(2024, 3, 4)  # month/day on a tie
    [entry] = tie.envelope.data["fix_log"]
    [ambiguity] = entry["ambiguous_day_month"]
    assert ambiguity["chosen_format"] == "%m/%d/%Y" and ambiguity["ambiguous_values"] == 3
    assert "tie" in ambiguity["decided_by"]
    assert any(issue.issue_type == "ambiguous_date_format" for issue in tie.envelope.issues)
    day_first = run_agent(type_fixer, framed({"d": ["03/04/2024", "25/12/2024", "31/01/2024"]}), TypeFixerParams())
    assert day_first.frame is not None
    assert day_first.frame["d"].to_list() == [dt.date(2024, 4, 3), dt.date(2024, 12, 25), dt.date(2024, 1, 31)]


def test_type_fixer_nulls_missing_tokens_and_counts_them() -> None:
    frame = framed(
        {
            "age": ["31", "NA", " N/A ", "40", "null", "22"],
            "name": ["Ann", "None", "Bo", "#N/A", "Cy", "NULL"],
            "score": [1.5, float("nan"), 2.5, None, 3.5, 4.5],
        },
        ROWS,
    )
    result = run_agent(type_fixer, frame, TypeFixerParams(auto_convert_category=False))
    out = result.frame
    assert out is not None
    assert out.schema["age"] == pl.Int64 and out["age"].to_list() == [31, None, None, 40, None, 22]
    assert out["name"].to_list() == ["Ann", None, "Bo", None, "Cy", None]
    assert out["score"].to_list() == [1.5, None, 2.5, None, 3.5, 4.5]
    missing = result.envelope.data["missing_tokens"]
    assert missing["by_column"] == {
        "age": {"N/A": 1, "NA": 1, "null": 1},
        "name": {"#N/A": 1, "NULL": 1, "None": 1},
        "score": {"NaN": 1},
    }
    assert result.envelope.summary_metrics["missing_tokens_nulled"] == 7
    assert result.envelope.summary_metrics["values_unparseable"] == 0  # tokens are not failed conversions
    untouched = run_agent(type_fixer, frame, TypeFixerParams(null_tokens=[], auto_convert_category=False))
    assert untouched.frame is not None and untouched.frame["name"].to_list() == frame["name"].to_list()
    assert untouched.frame.schema["age"] == pl.String  # "NA" is a value now: the column is mixed


def test_type_fixer_keeps_utc_timestamps_as_written() -> None:
    stamps = framed({"at": ["2013-01-01T05:00:00Z", "2013-01-01T06:00:00Z"] * 3})
    result = run_agent(type_fixer, stamps, TypeFixerParams(auto_convert_category=False))
    assert result.frame is not None and result.frame["at"].to_list() == stamps["at"].to_list()
    (analysis,) = result.envelope.data["type_analysis"]["columns"]
    assert not analysis["converted"] and "UTC" in analysis["reason"]


def test_type_fixer_datetimes_and_categories() -> None:
    frame = framed(
        {
            "at": ["2024-01-05 10:30:00", "2024-01-06T11:00:00", "2024-01-07", None] * 25,
            "tier": ["gold", "silver"] * 50,
        }
    )
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None
    assert result.frame.schema["at"] == pl.Datetime("us")
    assert result.frame["at"].to_list()[:3] == [
        dt.datetime(2024, 1, 5, 10, 30),
        dt.datetime(2024, 1, 6, 11, 0),
        dt.datetime(2024, 1, 7),
    ]
    assert result.frame.schema["tier"] == pl.Categorical
    assert result.frame["tier"].cast(pl.String).to_list() == frame["tier"].to_list()
    kept = run_agent(type_fixer, frame, TypeFixerParams(auto_convert_category=False))
    assert kept.frame is not None and kept.frame.schema["tier"] == pl.String


# ---------------------------------------------------------------------------------------------------------
# quarantine-agent


def quarantine_frame() -> pl.DataFrame:
    return framed(
        {
            "email": ["a@b.com", "  ", "bad", "c@d.org", None, "e@f.io"],
            "age": ["30", "150", "x", "$40", None, "12"],
            "joined": ["2024-01-05", "01/31/2024", "nope", None, None, "2024-02-30"],
        },
        ROWS,
    )


def test_quarantine_removes_failing_rows_with_every_reason() -> None:
    params = QuarantineAgentParams.model_validate(
        {
            "detect_broken_records": True,
            "required_fields": ["email"],
            "range_constraints": {"age": {"min": 18, "max": 120}},
            "format_constraints": {"email": "email"},
            "expected_schema": {"age": "integer", "joined": "date", "missing_col": "string"},
        }
    )
    result = run_agent(quarantine, quarantine_frame(), params)
    assert result.frame is not None and result.removed is not None
    assert result.frame[ROW_INDEX_COLUMN].to_list() == [1, 6]  # "$40" is an integer the type fixer can read
    reasons = dict(zip(result.removed[ROW_INDEX_COLUMN], result.removed["reason"], strict=True))
    assert reasons == {
        2: "required field 'email' is missing; 'age' value 150 is above the maximum 120",
        5: "'age' value 'x' is not an integer; 'joined' value 'nope' is not a date; "
        "'email' value 'bad' does not match the email format",
        9: "every field is empty; required field 'email' is missing",
        10: "'joined' value '2024-02-30' is not a date; 'age' value 12 is below the minimum 18",
    }
    assert issues_of(result, "missing_required_field") == [(2, "email", "  "), (9, "email", None)]
    assert issues_of(result, "type_mismatch") == [(5, "age", "x"), (5, "joined", "nope"), (10, "joined", "2024-02-30")]
    assert issues_of(result, "out_of_range") == [(2, "age", "150"), (10, "age", "12")]
    assert issues_of(result, "invalid_format") == [(5, "email", "bad")]
    assert issues_of(result, "broken_record") == [(9, None, None)]
    metrics = result.envelope.summary_metrics
    assert metrics == {
        "total_rows_processed": 6,
        "quarantined_records": 4,
        "clean_records": 2,
        "quarantine_percentage": round(100 * 4 / 6, 2),
        "quarantine_issues_found": 9 + 2,  # 9 failing cells + missing column + unexpected column
    }
    schema = result.envelope.data["quarantine_analysis"]["schema_mismatches"]
    assert schema == {"missing_columns": ["missing_col"], "unexpected_columns": ["email"]}


def test_quarantine_defaults_remove_nothing_and_flags_switch_checks_on_and_off() -> None:
    frame = quarantine_frame()
    result = run_agent(quarantine, frame, QuarantineAgentParams())
    assert result.removed is not None and result.removed.height == 0
    (proposed,) = result.envelope.data["proposals"]
    assert (proposed["rows_affected"], proposed["apply"]) == (1, {"quarantine-agent": {"detect_broken_records": True}})
    broken = run_agent(quarantine, frame, QuarantineAgentParams(detect_broken_records=True))
    assert broken.removed is not None and broken.removed[ROW_INDEX_COLUMN].to_list() == [9]
    off = run_agent(quarantine, frame, QuarantineAgentParams(required_fields=["email"]))
    assert off.removed is not None and off.removed[ROW_INDEX_COLUMN].to_list() == [2, 9]
    assert off.removed["reason"].to_list() == ["required field 'email' is missing"] * 2


def test_quarantine_treats_missing_value_tokens_as_missing() -> None:
    frame = framed(
        {"email": ["a@b.com", "NA", " n/a ", "NULL", "b@c.org", "#N/A"], "age": ["1", "NA", "2", "3", "4", "5"]}
    )
    params = QuarantineAgentParams.model_validate(
        {"required_fields": ["email"], "format_constraints": {"email": "email"}, "expected_schema": {"age": "integer"}}
    )
    result = run_agent(quarantine, frame, params)
    assert result.removed is not None
    assert result.removed["reason"].to_list() == ["required field 'email' is missing"] * 4  # not "bad format"
    assert issues_of(result, "type_mismatch") == []  # "NA" is a missing age, not a wrong type


def test_quarantine_typed_columns_and_regex_formats() -> None:
    frame = framed(
        {
            "n": [1.0, 2.5, float("nan"), 4.0, None, 7.0],
            "flag": [0, 1, 2, 1, 0, None],
            "code": ["AB-12", "ab-12", "AB-1", "XY-99", "", "ZZ-00"],
        },
        ROWS,
    )
    params = QuarantineAgentParams.model_validate(
        {
            "expected_schema": {"n": "integer", "flag": "boolean"},
            "format_constraints": {"code": r"[A-Z]{2}-\d{2}"},
            "range_constraints": {"n": {"max": 5}},
        }
    )
    result = run_agent(quarantine, frame, params)
    assert issues_of(result, "type_mismatch") == [(2, "n", "2.5"), (5, "flag", "2")]
    assert issues_of(result, "invalid_format") == [(2, "code", "ab-12"), (5, "code", "AB-1")]
    assert issues_of(result, "out_of_range") == [(10, "n", "7.0")]  # NaN counts as missing, not out of range
    assert result.frame is not None and result.frame[ROW_INDEX_COLUMN].to_list() == [1, 6, 9]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"required_fields": ["nope"]}, "required_fields"),
        ({"range_constraints": {"nope": {"min": 1}}}, "range_constraints"),
        ({"format_constraints": {"nope": "email"}}, "format_constraints"),
        ({"format_constraints": {"email": "[unclosed"}}, "format_constraints.email"),
        ({"range_constraints": {"joined": {"min": 1}}}, None),  # text: allowed
    ],
)
def test_quarantine_parameter_errors_name_the_field(raw: dict[str, Any], field: str | None) -> None:
    params = QuarantineAgentParams.model_validate(raw)
    frame = quarantine_frame().with_columns(pl.col("joined").str.to_date(strict=False).alias("when"))
    if field is None:
        run_agent(quarantine, frame, params)
        with pytest.raises(InvalidParametersError) as typed:
            quarantine.run(
                AgentInputs(frame, "p.csv"),
                QuarantineAgentParams.model_validate({"range_constraints": {"when": {"min": 1}}}),
                lambda *_: None,
            )
        assert typed.value.field == "range_constraints.when"
        return
    with pytest.raises(InvalidParametersError) as error:
        quarantine.run(AgentInputs(frame, "p.csv"), params, lambda *_: None)
    assert error.value.field == field and error.value.agent_id == "quarantine-agent"


def test_quarantine_parameter_model_rejects_bad_values() -> None:
    cases: list[dict[str, Any]] = [
        {"range_constraints": {"age": {"min": 5, "max": 1}}},
        {"range_constraints": {"age": {}}},
        {"expected_schema": {"age": "number"}},
        {"required_fields": "email"},
        {"unknown": True},
        {"good_threshold": 95, "excellent_threshold": 90},
    ]
    for raw in cases:
        with pytest.raises(ValidationError):
            QuarantineAgentParams.model_validate(raw)


# ---------------------------------------------------------------------------------------------------------
# field-standardization


def test_standardization_synonyms_case_whitespace_and_counts() -> None:
    frame = framed(
        {
            "city": ["  New   York ", "new york", "NYC", "Boston", None, "boston "],
            "status": ["Active", "ACTIVE", "y", "inactive", "N", "active"],
            "id": [1, 2, 3, 4, 5, 6],
        },
        ROWS,
    )
    params = FieldStandardizationParams.model_validate(
        {
            "case_strategy": "lowercase",  # Agensium's default
            "synonym_mappings": {
                "city": {"NYC": "New York", "ny": "New York"},
                "status": {"Y": "Active", "N": "Inactive"},
            },
        }
    )
    result = run_agent(standardization, frame, params)
    out = result.frame
    assert out is not None and out[ROW_INDEX_COLUMN].to_list() == ROWS
    assert out["city"].to_list() == ["New York", "New York", "New York", "boston", None, "boston"]
    assert out["status"].to_list() == ["Active", "Active", "Active", "Inactive", "Inactive", "Active"]
    assert out["id"].to_list() == frame["id"].to_list()
    reports = {report["field_name"]: report for report in result.envelope.data["columns"]}
    city = reports["city"]
    assert (city["distinct_before"], city["distinct_after"]) == (5, 2)
    assert (city["case_variant_groups_before"], city["case_variant_groups_after"]) == (2, 0)
    assert (city["whitespace_issues_before"], city["whitespace_issues_after"]) == (2, 0)
    assert city["values_changed"] == 5 and city["changes_by_rule"]["synonym"] == 3
    assert result.envelope.summary_metrics["columns_standardized"] == 2
    assert result.envelope.summary_metrics["values_changed"] == 5 + 5
    assert result.envelope.summary_metrics["variations_reduced"] == (5 - 2) + (6 - 2)
    changed = result.row_level_issues.filter(pl.col("column") == "city")
    assert changed["row_index"].to_list() == [1, 2, 5, 6, 10]
    assert changed["value"].to_list()[0] == "  New   York "


def test_standardization_case_strategies_preserve_and_target_columns() -> None:
    frame = framed({"a": [" Mixed  Case ", "x"], "b": ["Keep ME", "y"]}, [4, 8])
    upper = run_agent(standardization, frame, FieldStandardizationParams(case_strategy="uppercase"))
    assert upper.frame is not None and upper.frame["a"].to_list() == ["MIXED CASE", "X"]
    title = run_agent(
        standardization, frame, FieldStandardizationParams(case_strategy="titlecase", preserve_columns=["b"])
    )
    assert title.frame is not None and title.frame["a"].to_list() == ["Mixed Case", "X"]
    assert title.frame["b"].to_list() == ["Keep ME", "y"]
    only_b = run_agent(
        standardization,
        frame,
        FieldStandardizationParams(target_columns=["b"], trim_whitespace=False, case_strategy="lowercase"),
    )
    assert only_b.frame is not None and only_b.frame["a"].to_list() == [" Mixed  Case ", "x"]
    assert only_b.frame["b"].to_list() == ["keep me", "y"]
    untouched = run_agent(
        standardization,
        frame,
        FieldStandardizationParams(case_strategy="none", trim_whitespace=False, normalize_internal_spacing=False),
    )
    assert untouched.frame is not None and untouched.frame.equals(frame)
    assert untouched.envelope.summary_metrics["values_changed"] == 0


def test_standardization_keeps_case_by_default_and_proposes_lowercase() -> None:
    frame = framed({"city": ["  New   York ", "new york", "Boston", "UA", "JFK", None]}, ROWS)
    result = run_agent(standardization, frame, FieldStandardizationParams())
    assert result.frame is not None
    assert result.frame["city"].to_list() == ["New York", "new york", "Boston", "UA", "JFK", None]  # only spaces fixed
    assert result.envelope.summary_metrics["values_changed"] == 1
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["apply"] == {"field-standardization": {"case_strategy": "lowercase"}}
    assert proposed["columns"] == ["city"]
    lowered = run_agent(standardization, frame, FieldStandardizationParams(case_strategy="lowercase"))
    assert lowered.frame is not None
    changed_by_case = sum(
        a != b for a, b in zip(result.frame["city"].to_list(), lowered.frame["city"].to_list(), strict=True)
    )
    assert proposed["cells_affected"] == changed_by_case == 4


def test_standardization_does_not_rewrite_dates_whose_day_month_order_is_a_guess() -> None:
    guess = framed({"when": ["01/02/2024", "03/04/2024", "05/06/2024", "07/08/2024", "x", "11/12/2024"]}, ROWS)
    result = run_agent(standardization, guess, FieldStandardizationParams())
    assert result.frame is not None and result.frame["when"].to_list() == guess["when"].to_list()
    assert "ambiguous_date_order" in {issue.issue_type for issue in result.envelope.issues}
    decided = guess.with_columns(pl.col("when").replace("x", "31/12/2024"))  # a day > 12: day first
    rewritten = run_agent(standardization, decided, FieldStandardizationParams())
    assert rewritten.frame is not None and rewritten.frame["when"].to_list()[:2] == ["2024-02-01", "2024-04-03"]


def test_standardization_dates_units_and_types() -> None:
    frame = framed(
        {
            "day": ["2024-01-05", "01/31/2024", "Jan 5, 2024", "2024-01-05 10:00", "nope", "05.02.2024"],
            "weight": ["12 kg", "5 LBS", "3kg", "x", "", None],
            "typed": [dt.date(2024, 1, d) for d in range(1, 7)],
            "tag": ["A", "b", "A", "b", "A", "b"],
        },
        ROWS,
        tag=pl.Categorical,
    )
    params = FieldStandardizationParams.model_validate(
        {
            "case_strategy": "lowercase",
            "target_date_format": "%d/%m/%Y",
            "unit_standardization": True,
            "unit_mappings": {"weight": {"kg": {"factor": 2.20462, "target_unit": "lbs"}}},
        }
    )
    result = run_agent(standardization, frame, params)
    out = result.frame
    assert out is not None
    assert out["day"].to_list() == ["05/01/2024", "31/01/2024", "05/01/2024", "2024-01-05 10:00", "nope", "05/02/2024"]
    assert out["weight"].to_list() == ["26.45544 lbs", "5 lbs", "6.61386 lbs", "x", "", None]
    assert out["typed"].to_list() == frame["typed"].to_list() and out.schema["typed"] == pl.Date
    assert out.schema["tag"] == pl.Categorical and out["tag"].cast(pl.String).to_list() == ["a", "b"] * 3
    assert issues_of(result, "unparseable_date") == [(9, "day", "nope")]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"target_columns": ["nope"]}, "target_columns"),
        ({"preserve_columns": ["nope"]}, "preserve_columns"),
        ({"synonym_mappings": {"nope": {"a": "b"}}}, "synonym_mappings"),
        ({"unit_mappings": {"nope": {"kg": {"factor": 1.0, "target_unit": "g"}}}}, "unit_mappings"),
        ({"synonym_mappings": {"city": {"a": "B", "b": "C"}}}, "synonym_mappings.city"),
        (
            {
                "unit_mappings": {
                    "city": {"kg": {"factor": 2.0, "target_unit": "g"}, "g": {"factor": 3.0, "target_unit": "mg"}}
                }
            },
            "unit_mappings.city",
        ),
        ({"target_date_format": "%Y-%m"}, "target_date_format"),
        ({"target_date_format": "%H:%M"}, "target_date_format"),
    ],
)
def test_standardization_parameter_errors(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParametersError) as error:
        standardization.run(
            AgentInputs(framed({"city": ["x"]}), "p.csv"),
            FieldStandardizationParams.model_validate(raw),
            lambda *_: None,
        )
    assert error.value.field == field


def test_standardization_parameter_model_rejects_bad_values() -> None:
    for raw in (
        {"case_strategy": "camel"},
        {"unit_mappings": {"w": {"kg": {"factor": 0, "target_unit": "g"}}}},
        {"unit_mappings": {"w": {"kg": {"factor": 1}}}},
        {"synonym_mappings": {"w": {"a": 1}}},
    ):
        with pytest.raises(ValidationError):
            FieldStandardizationParams.model_validate(raw)


# ---------------------------------------------------------------------------------------------------------
# cleanse-previewer


def previewer_frame(rng: np.random.Generator, n: int = 400) -> pl.DataFrame:
    x = rng.normal(50.0, 10.0, n)
    x[[3, n // 2, n - 1]] = [400.0, -300.0, 500.0]
    nulls = set(rng.choice(n, 40, replace=False).tolist())
    rows = np.sort(rng.choice(np.arange(1, 5 * n), n, replace=False)).tolist()
    frame = framed(
        {
            "x": [None if i in nulls else float(v) for i, v in enumerate(x)],
            "group": [["a", "b", "c"][i % 3] if i % 7 else None for i in range(n)],
            "amount": [f"{v:.2f}" if i % 20 else "unknown" for i, v in enumerate(rng.uniform(0, 100, n))],
        },
        rows,
    )
    duplicate = frame.head(5).with_columns(pl.Series(ROW_INDEX_COLUMN, [5 * n + i for i in range(5)], pl.Int64))
    return pl.concat([frame, duplicate])


def rule_result(result: AgentResult, rule_id: str) -> dict[str, Any]:
    return next(item for item in result.envelope.data["simulated_results"] if item["rule_id"] == rule_id)


def test_previewer_statistics_match_numpy_and_scipy_and_data_is_unchanged() -> None:
    frame = previewer_frame(np.random.default_rng(11))
    snapshot = frame.clone()
    params = CleansePreviewerParams.model_validate(
        {
            "preview_rules": [
                {"rule_id": "mean", "type": "impute_nulls", "target_columns": ["x"], "strategy": "mean"},
                {"rule_id": "iqr", "type": "remove_outliers", "target_columns": ["x"], "method": "iqr"},
                {
                    "rule_id": "z",
                    "type": "remove_outliers",
                    "target_columns": ["x"],
                    "method": "zscore",
                    "threshold": 2.5,
                },
                {"rule_id": "dups", "type": "drop_duplicates"},
                {"rule_id": "nulls", "type": "drop_nulls", "target_columns": ["group"]},
                {"rule_id": "convert", "type": "convert_types", "target_columns": ["amount"], "target_type": "float"},
                {"rule_id": "drop", "type": "drop_columns", "target_columns": ["group"]},
            ]
        }
    )
    result = run_agent(previewer, frame, params)
    assert result.frame is frame and frame.equals(snapshot)
    assert result.removed is not None and result.removed.height == 0

    x = frame["x"].drop_nulls().to_numpy()
    filled = frame["x"].fill_null(x.mean()).to_numpy()
    change = rule_result(result, "mean")["changes"]["column_level_changes"]["x"]
    assert change["mean_before"] == pytest.approx(x.mean()) and change["mean_after"] == pytest.approx(filled.mean())
    assert change["std_before"] == pytest.approx(x.std(ddof=1)) and change["std_after"] == pytest.approx(
        filled.std(ddof=1)
    )
    assert change["skewness_before"] == pytest.approx(stats.skew(x, bias=False), rel=1e-6)
    assert change["kurtosis_after"] == pytest.approx(stats.kurtosis(filled, bias=False), rel=1e-6)
    assert change["null_count_change"] == -40
    assert rule_result(result, "mean")["rows_affected"] == 40

    q1, q3 = np.quantile(x, [0.25, 0.75])
    iqr_outliers = int(((x < q1 - 1.5 * (q3 - q1)) | (x > q3 + 1.5 * (q3 - q1))).sum())
    iqr = rule_result(result, "iqr")
    assert iqr["rows_affected"] == iqr_outliers >= 3 and iqr["changes"]["row_change"] == -iqr_outliers
    z_outliers = int((np.abs(x - x.mean()) / x.std(ddof=1) > 2.5).sum())
    assert rule_result(result, "z")["rows_affected"] == z_outliers
    assert rule_result(result, "dups")["rows_affected"] == 5
    assert rule_result(result, "nulls")["rows_affected"] == frame["group"].null_count()
    convert = rule_result(result, "convert")
    not_numbers = int((frame["amount"] == "unknown").sum())
    assert not_numbers >= 20
    assert convert["changes"]["column_level_changes"]["amount"]["conversion_failures"] == not_numbers
    assert convert["changes"]["column_level_changes"]["amount"]["dtype_after"] == "Float64"
    failures = result.row_level_issues.filter(pl.col("issue_type") == "preview_conversion_failure")
    expected_rows = frame.filter(pl.col("amount") == "unknown")[ROW_INDEX_COLUMN].to_list()
    assert sorted(failures["row_index"].to_list()) == expected_rows

    drop = rule_result(result, "drop")
    assert drop["impact_level"] == "high" and drop["risk_assessment"]["is_risky"]
    metrics = result.envelope.summary_metrics
    assert metrics["total_rules_previewed"] == 7 and metrics["safe_to_execute"] is False
    levels = [item["impact_level"] for item in result.envelope.data["simulated_results"]]
    assert metrics["high_impact_rules"] == levels.count("high")
    assert metrics["medium_impact_rules"] + metrics["low_impact_rules"] == 7 - levels.count("high")


def test_previewer_impact_levels_follow_thresholds() -> None:
    frame = framed({"v": [float(i) for i in range(100)]}, list(range(1, 101)))
    frame = frame.with_columns(pl.when(pl.col(ROW_INDEX_COLUMN) <= 7).then(None).otherwise(pl.col("v")).alias("v"))
    rule = {"rule_id": "drop", "type": "drop_nulls", "target_columns": ["v"]}  # removes 7 % of the rows
    for high, medium, level in ((10, 5, "medium"), (6, 5, "high"), (20, 10, "low")):
        params = CleansePreviewerParams.model_validate(
            {"preview_rules": [rule], "impact_threshold_high": high, "impact_threshold_medium": medium}
        )
        result = run_agent(previewer, frame, params)
        assert rule_result(result, "drop")["impact_level"] == level
        assert result.envelope.summary_metrics["safe_to_execute"] is True  # 7 % < 20 % row loss


def test_previewer_default_rules_and_rule_errors() -> None:
    frame = previewer_frame(np.random.default_rng(3), 60)
    result = run_agent(previewer, frame, CleansePreviewerParams())
    data = result.envelope.data
    assert data["rules_source"] == "default" and "default" in data["note"]
    assert [item["rule_type"] for item in data["simulated_results"]] == [
        "drop_duplicates",
        "impute_nulls",
        "impute_nulls",
    ]
    assert [item["target_columns"] for item in data["simulated_results"][1:]] == [["x"], ["group"]]
    bad = CleansePreviewerParams.model_validate(
        {"preview_rules": [{"type": "impute_nulls", "target_columns": ["group"], "strategy": "median"}]}
    )
    failed = run_agent(previewer, frame, bad)
    assert failed.envelope.data["simulated_results"][0]["status"] == "error"
    assert failed.envelope.summary_metrics["failed_simulations"] == 1


def test_previewer_parameter_errors() -> None:
    frame = framed({"v": [1.0, 2.0]})
    params = CleansePreviewerParams.model_validate(
        {"preview_rules": [{"type": "drop_nulls", "target_columns": ["nope"]}]}
    )
    with pytest.raises(InvalidParametersError) as error:
        previewer.run(AgentInputs(frame, "p.csv"), params, lambda *_: None)
    assert error.value.field == "preview_rules.0.target_columns"
    for raw in (
        {"preview_rules": [{"type": "explode"}]},
        {"preview_rules": [{"type": "drop_columns"}]},
        {"preview_rules": [{"type": "impute_nulls", "strategy": "constant"}]},
        {"impact_threshold_high": 3, "impact_threshold_medium": 5},
        {"confidence_level": 0.5},
    ):
        with pytest.raises(ValidationError):
            CleansePreviewerParams.model_validate(raw)


# ---------------------------------------------------------------------------------------------------------
# properties

TOKENS = [
    "1",
    "2.5",
    "$12",
    "1,234.50",
    "(7)",
    "15%",
    "007",
    "abc",
    "Yes",
    "no",
    "TRUE",
    "2024-01-05",
    "01/31/2024",
    "03/04/2024",
    "Jan 5, 2024",
    "2024-01-05 10:00",
    "  New   York ",
    "new york",
    "NYC",
    "",
    "  ",
    "12 kg",
    "5 LBS",
    "x@y.com",
]
cells = st.one_of(st.none(), st.sampled_from(TOKENS), st.text(max_size=6))
numbers = st.one_of(st.none(), st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False, width=32))


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 25))
    rows = sorted(draw(st.sets(st.integers(1, 10_000), min_size=n, max_size=n)))
    return (
        framed(
            {
                "a": draw(st.lists(cells, min_size=n, max_size=n)),
                "b": draw(st.lists(cells, min_size=n, max_size=n)),
                "x": draw(st.lists(numbers, min_size=n, max_size=n)),
            },
            rows,
            a=pl.String,
            b=pl.String,
            x=pl.Float64,
        )
        if n
        else pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64, "a": pl.String, "b": pl.String, "x": pl.Float64})
    )


def params_for(module: Any, data: st.DataObject) -> BaseModel:
    if module is quarantine:
        return QuarantineAgentParams.model_validate(
            {
                "required_fields": data.draw(st.sampled_from([[], ["a"], ["a", "x"]])),
                "range_constraints": data.draw(st.sampled_from([{}, {"x": {"min": -1, "max": 1}}, {"b": {"min": 0}}])),
                "format_constraints": data.draw(st.sampled_from([{}, {"b": "email"}, {"a": r"\d+"}, {"a": "date"}])),
                "expected_schema": {
                    "a": data.draw(st.sampled_from(["integer", "float", "boolean", "date", "datetime"]))
                },
            }
        )
    if module is previewer:
        return CleansePreviewerParams()
    if module is type_fixer:
        return TypeFixerParams(preserve_mixed_types=data.draw(st.booleans()))
    return standardization_params(data)


def standardization_params(data: st.DataObject) -> FieldStandardizationParams:
    return FieldStandardizationParams.model_validate(
        {
            "case_strategy": data.draw(st.sampled_from(["lowercase", "uppercase", "titlecase", "none"])),
            "target_date_format": data.draw(st.sampled_from(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d %B %Y"])),
            "synonym_mappings": {"a": {"NYC": "New York", "ny": "New York", "Yes": "Y"}},
            "unit_standardization": True,
            "unit_mappings": {"b": {"kg": {"factor": 2.20462, "target_unit": "lbs"}}},
        }
    )


PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("module", [previewer, quarantine, type_fixer, standardization], ids=lambda m: m.AGENT_ID)
@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_no_agent_adds_or_loses_rows(module: Any, frame: pl.DataFrame, data: st.DataObject) -> None:
    result = run_agent(module, frame, params_for(module, data))
    out, removed = result.frame, result.removed
    assert out is not None and removed is not None
    assert out.height <= frame.height and out.height + removed.height == frame.height
    kept, dropped = out[ROW_INDEX_COLUMN].to_list(), removed[ROW_INDEX_COLUMN].to_list()
    assert not set(kept) & set(dropped)
    assert sorted(kept + dropped) == frame[ROW_INDEX_COLUMN].to_list()
    assert kept == [row for row in frame[ROW_INDEX_COLUMN].to_list() if row not in set(dropped)]  # order kept
    assert removed["reason"].null_count() == 0 and (removed["reason"].str.len_chars() > 0).all()
    assert out.columns == frame.columns
    assert set(result.row_level_issues["row_index"].to_list()) <= set(frame[ROW_INDEX_COLUMN].to_list())


@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_type_fixer_is_idempotent(frame: pl.DataFrame, data: st.DataObject) -> None:
    params = params_for(type_fixer, data)
    first = run_agent(type_fixer, frame, params)
    assert first.frame is not None
    second = run_agent(type_fixer, first.frame, params)
    assert second.envelope.data["fix_log"] == []
    assert second.envelope.summary_metrics["type_issues_fixed"] == 0
    assert second.frame is not None and second.frame.equals(first.frame)


@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_standardization_is_idempotent(frame: pl.DataFrame, data: st.DataObject) -> None:
    params = standardization_params(data)
    first = run_agent(standardization, frame, params)
    assert first.frame is not None
    second = run_agent(standardization, first.frame, params)
    assert second.envelope.summary_metrics["values_changed"] == 0
    assert second.frame is not None and second.frame.equals(first.frame)


# ---------------------------------------------------------------------------------------------------------
# date planning: the character pre-filter changes no count


def _brute_force_counts(values: pl.DataFrame, formats: list[value_readers.TemporalFormat]) -> dict[str, int]:
    """Every format tried on every date-like value, one at a time (the definition the plan must match)."""
    readable = values.filter(value_readers.date_like(pl.col("value")))
    return {
        fmt.pattern: int(
            readable.filter(value_readers.parse_temporal(pl.col("value"), fmt).is_not_null())["count"].sum() or 0
        )
        for fmt in formats
    }


DATE_PIECES = ["2024", "0999", "1000", "24", "1", "02", "12", "13", "31", "Mar", "march", "OCT", "Sept"]
DATE_SEPARATORS = ["-", "/", ".", " ", "T", ":", ", ", "Z", "", "+", "_", "é", ".5"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(DATE_PIECES), st.sampled_from(DATE_SEPARATORS)), min_size=2, max_size=7),
        min_size=1,
        max_size=60,
    )
)
def test_plan_dates_counts_match_trying_every_format_on_every_value(pieces: list[list[tuple[str, str]]]) -> None:
    texts = ["".join(piece + separator for piece, separator in value)[:-1] for value in pieces]
    texts += [
        "2024-01-05",
        "01/02/2024",
        "5 Mar 2024",
        "5 OCT 2024",
        "OCT 5, 2024",
        "31-Oct-2024",
        "2024-01-05T10:00:00.5",
        "2024-01-05 10:00",
        "0999-01-01",
    ]
    values = value_readers.distinct_counts(pl.DataFrame({"x": texts}), "x")
    custom = value_readers.TemporalFormat("%A %d %B %Y", "date")  # a directive the pre-filter does not know
    formats = [*value_readers.TEMPORAL_FORMATS, custom]
    plan = value_readers.plan_dates(values, "x", formats)
    expected = _brute_force_counts(values, formats)
    assert dict((fmt.pattern, count) for fmt, count in plan.formats) == {k: v for k, v in expected.items() if v}
    readable = values.filter(value_readers.date_like(pl.col("value")))
    union = pl.any_horizontal([value_readers.parse_temporal(pl.col("value"), fmt).is_not_null() for fmt in formats])
    assert plan.parsed == int(readable.filter(union)["count"].sum() or 0)


def test_parse_temporal_keeps_year_1000_and_empties_earlier_four_digit_years() -> None:
    frame = pl.DataFrame({"x": ["1000-01-01", "0999-12-31", " 2024-02-29 ", "0024-01-01", None]})
    date = value_readers.TemporalFormat("%Y-%m-%d", "date")
    assert frame.select(value_readers.parse_temporal(pl.col("x"), date)).to_series().to_list() == [
        dt.date(1000, 1, 1),
        None,
        dt.date(2024, 2, 29),
        None,
        None,
    ]
    stamps = pl.DataFrame({"x": ["0999-12-31T23:59:59.999999", "1000-01-01T00:00:00"]})
    fmt = value_readers.TemporalFormat("%Y-%m-%dT%H:%M:%S%.f", "datetime")
    assert stamps.select(value_readers.parse_temporal(pl.col("x"), fmt)).to_series().to_list() == [
        None,
        dt.datetime(1000, 1, 1),
    ]
