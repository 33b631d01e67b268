"""field-standardization: synonyms, case, whitespace, dates and units on small generated frames, parameter
errors, and idempotence (a Hypothesis property)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agents.clean import standardization
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs
from agents.errors import InvalidParametersError
from agents.params.field_standardization import FieldStandardizationParams
from tests.agents.clean_support import (
    PROPERTY_SETTINGS,
    ROWS,
    framed,
    frames,
    issues_of,
    run_agent,
    standardization_params,
)


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


INVISIBLE_CASES = {
    "Ann\u200b": "Ann",  # zero-width space
    "\ufeffZed": "Zed",  # a byte-order mark inside the data
    "Jo\u2060 Ann ": "Jo Ann",  # word joiner, then the whitespace rules
    "Zoe\u200d\U0001f469": "Zoe\u200d\U0001f469",  # a zero-width joiner is meant (emoji, scripts): kept
    "plain": "plain",
}


def multi_line_frame() -> pl.DataFrame:
    return framed({"address": list(MULTI_LINE_CASES), "id": list(range(len(MULTI_LINE_CASES)))}, ROWS[:5])


def invisible_frame() -> pl.DataFrame:
    return framed(
        {"name": list(INVISIBLE_CASES), "id": list(range(len(INVISIBLE_CASES)))}, ROWS[: len(INVISIBLE_CASES)]
    )


def test_invisible_characters_are_removed_and_counted_by_default() -> None:
    """PRODUCT.md: whitespace and invisible characters are unambiguous fixes. Each changed cell is counted and
    listed with its value before."""
    frame = invisible_frame()
    result = run_agent(standardization, frame, FieldStandardizationParams())
    assert result.frame is not None and result.frame["name"].to_list() == list(INVISIBLE_CASES.values())
    report = next(item for item in result.envelope.data["columns"] if item["field_name"] == "name")
    assert report["values_changed"] == 3
    assert report["whitespace_issues_before"] == 3 and report["whitespace_issues_after"] == 0
    changed = result.row_level_issues.filter(pl.col("column") == "name")
    assert changed["value"].to_list() == ["Ann\u200b", "\ufeffZed", "Jo\u2060 Ann "]
    kept = run_agent(standardization, frame, FieldStandardizationParams(trim_whitespace=False))
    assert kept.frame is not None and kept.frame["name"].to_list()[:2] == ["Ann\u200b", "\ufeffZed"]


MULTI_LINE_CASES = {
    "12 Main St\nApt 4": "12 Main St\nApt 4",  # a multi-line value keeps its line breaks
    "12 Main St \n  Apt 4": "12 Main St\nApt 4",  # the spaces around a break go
    "first\r\n\r\nthird": "first\r\n\r\nthird",
    "  a \t b  ": "a b",
    "tab\tonly": "tab only",
}


def test_whitespace_rules_keep_the_line_breaks_of_a_multi_line_value() -> None:
    """Before, `normalize_internal_spacing` collapsed every line break into a space: an address written on two
    lines became one line by default."""
    frame = framed({"address": list(MULTI_LINE_CASES), "id": list(range(5))}, ROWS[:5])
    result = run_agent(standardization, frame, FieldStandardizationParams())
    assert result.frame is not None and result.frame["address"].to_list() == list(MULTI_LINE_CASES.values())
    report = next(item for item in result.envelope.data["columns"] if item["field_name"] == "address")
    assert report["values_changed"] == 3
    assert report["whitespace_issues_before"] == 3 and report["whitespace_issues_after"] == 0  # a tab is one too
    synonyms = FieldStandardizationParams(synonym_mappings={"address": {"12 main st\napt 4": "HQ"}})
    mapped = run_agent(standardization, frame, synonyms)
    assert mapped.frame is not None and mapped.frame["address"].to_list()[:2] == ["HQ", "HQ"]


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


@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_standardization_is_idempotent(frame: pl.DataFrame, data: st.DataObject) -> None:
    params = standardization_params(data)
    first = run_agent(standardization, frame, params)
    assert first.frame is not None
    second = run_agent(standardization, first.frame, params)
    assert second.envelope.summary_metrics["values_changed"] == 0
    assert second.frame is not None and second.frame.equals(first.frame)
