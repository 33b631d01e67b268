"""quarantine-agent: failing rows removed with every reason, the checks switched on and off by parameters, and
parameter errors that name the field."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from agents.clean import quarantine
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs
from agents.errors import InvalidParametersError
from agents.params.quarantine_agent import QuarantineAgentParams
from tests.agents.clean_support import (
    ROWS,
    framed,
    issues_of,
    run_agent,
)


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
    # "$40" is not an integer: the type fixer only proposes converting currency, so 'age' would stay text
    assert result.frame[ROW_INDEX_COLUMN].to_list() == [1]
    reasons = dict(zip(result.removed[ROW_INDEX_COLUMN], result.removed["reason"], strict=True))
    assert reasons == {
        2: "required field 'email' is missing; 'age' value 150 is above the maximum 120",
        5: "'age' value 'x' is not an integer; 'joined' value 'nope' is not a date; "
        "'email' value 'bad' does not match the email format",
        6: "'age' value '$40' is not an integer",
        9: "every field is empty; required field 'email' is missing",
        10: "'joined' value '2024-02-30' is not a date; 'age' value 12 is below the minimum 18",
    }
    assert issues_of(result, "missing_required_field") == [(2, "email", "  "), (9, "email", None)]
    assert issues_of(result, "type_mismatch") == [
        (5, "age", "x"),
        (5, "joined", "nope"),
        (6, "age", "$40"),
        (10, "joined", "2024-02-30"),
    ]
    assert issues_of(result, "out_of_range") == [(2, "age", "150"), (10, "age", "12")]
    assert issues_of(result, "invalid_format") == [(5, "email", "bad")]
    assert issues_of(result, "broken_record") == [(9, None, None)]
    metrics = result.envelope.summary_metrics
    assert metrics == {
        "total_rows_processed": 6,
        "quarantined_records": 5,
        "clean_records": 1,
        "quarantine_percentage": round(100 * 5 / 6, 2),
        "quarantine_issues_found": 10 + 2,  # 10 failing cells + missing column + unexpected column
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


def test_quarantine_reads_numbers_as_the_type_fixer_converts_them_by_default() -> None:
    """A number written with a currency symbol, a percent sign or in parentheses is text the type fixer keeps by
    default (it proposes ``convert_currency`` / ``convert_percentages`` / ``convert_accounting_negatives``): not a
    number for a numeric rule either."""
    frame = framed(
        {
            "price": ["12", "$12", "1,234.50", "12 €", "(7)", "5%"],
            "share": ["5", "5%", " 12.5 % ", "0.5", "-3", "$1"],
        },
        ROWS,
    )
    declared = {"expected_schema": {"price": "numeric", "share": "float"}}
    result = run_agent(quarantine, frame, QuarantineAgentParams.model_validate(declared))
    assert issues_of(result, "type_mismatch") == [
        (2, "price", "$12"),
        (2, "share", "5%"),
        (5, "share", " 12.5 % "),
        (6, "price", "12 €"),
        (9, "price", "(7)"),
        (10, "price", "5%"),
        (10, "share", "$1"),
    ]
    integers = run_agent(
        quarantine, frame, QuarantineAgentParams.model_validate({"expected_schema": {"price": "integer"}})
    )
    assert [row for row, _, _ in issues_of(integers, "type_mismatch")] == [2, 5, 6, 9, 10]  # "1,234.50": no integer
    # a range compares the values read as numbers; "$500", "(500)" and "500%" are left to the type check
    ranged = {"range_constraints": {"price": {"max": 100, "min": 0}, "share": {"max": 100}}}
    bounded = frame.with_columns(pl.Series("price", ["500", "$500", "50", "500%", "(500)", "2"]))
    result = run_agent(quarantine, bounded, QuarantineAgentParams.model_validate(ranged))
    assert issues_of(result, "out_of_range") == [(1, "price", "500")]
    # declaring no rule removes nothing, whatever the values
    default = run_agent(quarantine, frame, QuarantineAgentParams())
    assert default.removed is not None and default.removed.height == 0


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"required_fields": ["nope"]}, "required_fields"),
        ({"range_constraints": {"nope": {"min": 1}}}, "range_constraints"),
        ({"format_constraints": {"nope": "email"}}, "format_constraints"),
        ({"format_constraints": {"email": "[unclosed"}}, "format_constraints.email"),
        ({"range_constraints": {"joined": {"min": 1}}}, "range_constraints.joined"),  # dates as text: no number
        ({"range_constraints": {"age": {"min": 1}}}, None),  # numbers: allowed
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
