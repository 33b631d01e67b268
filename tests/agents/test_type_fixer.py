"""type-fixer: numbers, dates, booleans and categories converted on small generated frames with the chain's row
index, missing-value tokens, ambiguous day/month order, and idempotence (a Hypothesis property)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clean import type_fixer
from agents.envelope import ROW_INDEX_COLUMN
from agents.params.type_fixer import TypeFixerParams
from tests.agents.clean_support import (
    PROPERTY_SETTINGS,
    ROWS,
    framed,
    frames,
    issues_of,
    params_for,
    run_agent,
)


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
    agensium = TypeFixerParams(
        preserve_mixed_types=False, convert_currency=True, convert_yes_no=True, convert_accounting_negatives=True
    )
    result = run_agent(type_fixer, frame, agensium)  # Agensium's default: "$12", "(3)", "yes": judgement calls here
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


def test_type_fixer_proposes_commas_that_may_be_decimal_marks() -> None:
    """QA D3 and D4: "1,500" in a file that writes decimal commas ("12,99") is 1500 or 1.5, a judgement call:
    left as written and proposed read as the file writes its numbers (``convert_decimal_commas``: 1.5), the
    other reading named; ``convert_ambiguous_thousands`` reads it as 1500. "12,99" can only be 12.99."""
    euro = framed({"poids": ["1,500", "2,250", "3,000"], "prix": ["12,99", "5,49", "7,00"]})
    result = run_agent(type_fixer, euro, TypeFixerParams())
    assert result.frame is not None and result.frame["poids"].to_list() == euro["poids"].to_list()
    assert result.frame["prix"].to_list() == [12.99, 5.49, 7.0]
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["proposal_id"] == "type-fixer:convert_decimal_commas"
    assert proposed["apply"] == {"type-fixer": {"convert_decimal_commas": True}}
    assert (proposed["columns"], proposed["cells_affected"]) == (["poids"], 3)
    assert "'1,500' is 1.5 with a decimal comma, 1500 read the English way" in proposed["description"]
    assert "convert_ambiguous_thousands reads '1,500' as 1500" in proposed["description"]
    assert result.envelope.summary_metrics["columns_converted"] == 1
    (poids, _) = result.envelope.data["type_analysis"]["columns"]
    assert (poids["suggested_type"], poids["proposed_with"]) == ("float", {"convert_decimal_commas": True})
    decimal = run_agent(type_fixer, euro, TypeFixerParams(convert_decimal_commas=True))
    assert decimal.frame is not None and decimal.frame["poids"].to_list() == [1.5, 2.25, 3.0]
    assert decimal.frame["prix"].to_list() == [12.99, 5.49, 7.0]
    assert decimal.envelope.data["proposals"] == []
    applied = run_agent(type_fixer, euro, TypeFixerParams(convert_ambiguous_thousands=True))
    assert applied.frame is not None and applied.frame["poids"].to_list() == [1500, 2250, 3000]
    assert applied.frame["prix"].to_list() == [12.99, 5.49, 7.0]
    assert applied.envelope.data["proposals"] == []
    alone = run_agent(type_fixer, framed({"n": ["1,500", "7"]}), TypeFixerParams())  # no evidence either way
    assert alone.frame is not None and alone.frame["n"].to_list() == ["1,500", "7"]
    assert [item["action"] for item in alone.envelope.data["proposals"]] == ["convert_ambiguous_thousands"]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        ({"n": ["1,234,567", "1,500"]}, [1234567, 1500]),  # the column groups thousands
        ({"n": ["1,500.25", "2,000"]}, [1500.25, 2000.0]),
        ({"n": ["1,500", "2.5"]}, [1500.0, 2.5]),  # a decimal point: the comma groups thousands
        ({"n": ["1,500", "2,250"], "m": ["1,234,567", "12"]}, [1500, 2250]),  # another column of the file does
        ({"n": ["1,500", "2,250"], "m": ["$1,200.50", "$3"]}, [1500, 2250]),
    ],
)
def test_type_fixer_reads_commas_the_data_shows_group_thousands(
    columns: dict[str, list[str]], expected: list[object]
) -> None:
    result = run_agent(type_fixer, framed(columns), TypeFixerParams())
    assert result.frame is not None and result.frame["n"].to_list() == expected
    assert "convert_ambiguous_thousands" not in [item["action"] for item in result.envelope.data["proposals"]]


def test_type_fixer_weighs_decimal_commas_elsewhere_in_the_file() -> None:
    """A file that groups thousands in one column and writes decimal commas in another gives no answer: both
    the ambiguous commas and the decimal commas are proposed, each with the parameter that reads them."""
    frame = framed({"n": ["1,500", "2,250"], "m": ["1,234,567", "12"], "e": ["12,99", "1,5"]})
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None and result.frame["n"].to_list() == ["1,500", "2,250"]
    assert result.frame["m"].to_list() == [1234567, 12]
    assert result.frame["e"].to_list() == ["12,99", "1,5"]
    thousands, decimal = result.envelope.data["proposals"]
    assert thousands["columns"] == ["n"] and "decimal commas (e)" in thousands["description"]
    assert thousands["apply"] == {"type-fixer": {"convert_ambiguous_thousands": True}}
    assert decimal["columns"] == ["e"] and decimal["apply"] == {"type-fixer": {"convert_decimal_commas": True}}
    assert "'1,5' would become 1.5" in decimal["description"]
    assert "thousands with commas too (m)" in decimal["description"]
    applied = run_agent(type_fixer, frame, TypeFixerParams(convert_decimal_commas=True))
    assert applied.frame is not None and applied.frame["e"].to_list() == [12.99, 1.5]
    assert applied.frame["n"].to_list() == [1.5, 2.25]  # the parameter reads every comma as a decimal mark


JUDGEMENT_FRAME = {
    "pct": ["5%", "10%", "15%"],
    "amount": ["$1,200.50", "$3.00", "$4"],
    "yn": ["Y", "N", "Y"],
    "w": ["+5", "-0", "007.5"],  # written as codes: the file reader keeps them as text
    "zip": ["02134", "10001", "00501"],
    "plain": ["12", " 3.5 ", "7"],
    "flag": ["true", "FALSE", "1"],
    "qty": ["1,234,567", "2,000", "9"],
    "neg": ["(12)", "-3", "4"],
}


def test_type_fixer_proposes_percentages_currency_codes_and_yes_no() -> None:
    """QA D8: numbers written plainly as text (and booleans written true/false) are converted; a percent sign,
    a currency symbol, an accounting negative "(12)" (QA5 D1: "(212)" may be an area code), a number written as a
    code and yes/no values are judgement calls: left as written, each proposed with the parameter that applies
    it."""
    frame = framed(JUDGEMENT_FRAME)
    result = run_agent(type_fixer, frame, TypeFixerParams())
    out = result.frame
    assert out is not None
    for name in ("pct", "amount", "yn", "w", "zip", "neg"):
        assert out[name].to_list() == frame[name].to_list(), name
    assert out["plain"].to_list() == [12.0, 3.5, 7.0]
    assert out["flag"].to_list() == [True, False, True]
    assert out["qty"].to_list() == [1234567, 2000, 9]
    proposed = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert {action: item["apply"] for action, item in proposed.items()} == {
        action: {"type-fixer": {action: True}}
        for action in (
            "convert_currency",
            "convert_percentages",
            "convert_accounting_negatives",
            "convert_codes",
            "convert_yes_no",
        )
    }
    assert proposed["convert_accounting_negatives"]["columns"] == ["neg"]
    assert "neg: '(12)' would become -12" in proposed["convert_accounting_negatives"]["description"]
    assert proposed["convert_codes"]["columns"] == ["w", "zip"]
    assert proposed["convert_percentages"]["cells_affected"] == 3
    assert "'10%' would become 10 (not 0.1)" in proposed["convert_percentages"]["description"]
    assert "'$1,200.50' would become 1200.5" in proposed["convert_currency"]["description"]
    assert "'+5' is written as a code" in proposed["convert_codes"]["description"]
    assert "'N' may be a code" in proposed["convert_yes_no"]["description"]
    metrics = result.envelope.summary_metrics
    assert (metrics["columns_converted"], metrics["remaining_type_issues"]) == (3, 6)
    analysis = {item["field_name"]: item for item in result.envelope.data["type_analysis"]["columns"]}
    assert analysis["pct"]["proposed_with"] == {"convert_percentages": True}
    for name, column, expected in [
        ("convert_percentages", "pct", [5, 10, 15]),
        ("convert_currency", "amount", [1200.5, 3.0, 4.0]),
        ("convert_yes_no", "yn", [True, False, True]),
        ("convert_codes", "w", [5.0, -0.0, 7.5]),
        ("convert_codes", "zip", [2134, 10001, 501]),
        ("convert_accounting_negatives", "neg", [-12, -3, 4]),
    ]:
        applied = run_agent(type_fixer, frame, TypeFixerParams.model_validate({name: True}))
        assert applied.frame is not None and applied.frame[column].to_list() == expected, name
    off = run_agent(type_fixer, frame, TypeFixerParams(auto_convert_numeric=False, auto_convert_boolean=False))
    assert off.envelope.data["proposals"] == []  # a conversion switched off is not proposed


def test_type_fixer_proposes_a_mixed_column_with_every_parameter_it_needs() -> None:
    column = {"amount": ["$1", "$2", "$3", "x"]}
    result = run_agent(type_fixer, framed(column), TypeFixerParams())
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["action"] == "convert_mixed_columns"
    assert proposed["apply"] == {"type-fixer": {"preserve_mixed_types": False, "convert_currency": True}}
    mixed = run_agent(type_fixer, framed(column), TypeFixerParams(preserve_mixed_types=False))
    assert mixed.frame is not None and mixed.frame["amount"].to_list() == column["amount"]  # still a call
    assert [item["action"] for item in mixed.envelope.data["proposals"]] == ["convert_currency"]
    applied = run_agent(type_fixer, framed(column), TypeFixerParams(preserve_mixed_types=False, convert_currency=True))
    assert applied.frame is not None and applied.frame["amount"].to_list() == [1, 2, 3, None]


def test_type_fixer_decides_commas_on_its_own_output_as_on_the_input() -> None:
    """A column of decimal commas stays text (not a Categorical), so the file's evidence is the same when the
    fixer runs on its own output: "1,500" is not converted the second time either."""
    frame = framed({"n": ["1,500", "2,250"] * 20, "m": ["$1,234,567", "$12"] * 20, "e": ["12,99", "1,5"] * 20})
    first = run_agent(type_fixer, frame, TypeFixerParams())
    assert first.frame is not None and first.frame.schema["e"] == pl.String
    assert first.frame["n"].to_list() == frame["n"].to_list()
    second = run_agent(type_fixer, first.frame, TypeFixerParams())
    assert second.envelope.data["fix_log"] == []
    assert second.frame is not None and second.frame.equals(first.frame)
