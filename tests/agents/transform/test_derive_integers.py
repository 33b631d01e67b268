"""``derive``'s whole-number arithmetic is exact: ``+ - * neg abs`` never wrap around (Polars computes in the
operands' width: ``9223372036854775807 * 2`` was -2). A result that fits Int64 is the exact value, whatever the
operands' widths; one that does not fails the run naming the column, in memory and streamed alike. Division and
``%`` keep their semantics, but for a zero divisor: ``/ 0`` and ``% 0`` give an empty value (``/ 0`` gave
infinities), counted in the step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.envelope import ROW_INDEX_COLUMN
from agents.errors import InvalidParametersError
from tests.agents.transform.test_transform_streamed import assert_same_run, in_memory, streamed

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def numbers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW_INDEX_COLUMN: [1, 2, 3, 4],
            "big": [INT64_MAX, INT64_MIN, 7, None],
            "small": pl.Series([2**31 - 1, -(2**31), 3, 4], dtype=pl.Int32),
            "wide": pl.Series([2**64 - 1, 2**63, 5, None], dtype=pl.UInt64),
            "one": [1, -1, 0, 2],
        }
    )


def derive(expression: str) -> list[dict[str, Any]]:
    return [{"op": "derive", "column": "result", "expression": expression}]


def derived(expression: str) -> pl.Series:
    frame = in_memory(numbers(), derive(expression)).frame
    assert frame is not None
    return frame["result"]


OVERFLOWS = {
    "big * 2": 2,  # was [-2, 0, 14, None]
    "big + 1": 1,
    "big + one": 2,  # INT64_MIN + -1 wraps too
    "big - 1": 1,
    "-big": 1,  # the minimum's negation was the minimum
    "abs(big)": 1,  # and its absolute value negative
    "coalesce(big * 2, 0)": 2,  # an empty intermediate result is not a way round
    "(big + 1) % 7": 1,
    "wide * wide": 2,  # beyond Int128 too
    "wide": 2,  # a UInt64 value Int64 cannot hold
    "wide - 1": 1,  # 2**63 - 1 fits
}


@pytest.mark.parametrize("expression", list(OVERFLOWS))
def test_overflow_fails_the_run_naming_the_column(expression: str, tmp_path: Path) -> None:
    operations = derive(expression)
    for run in (lambda: in_memory(numbers(), operations), lambda: streamed(numbers(), operations, tmp_path)):
        with pytest.raises(InvalidParametersError) as caught:
            run()
        error = caught.value
        assert error.code == "INVALID_PARAMETERS"
        assert error.details["reason"] == "integer_overflow" and error.details["field"] == "operations[0]"
        assert error.details["column"] == "result" and error.details["invalid_count"] == OVERFLOWS[expression]
        assert f"of 'result' ({expression})" in error.message and "not fit a whole number" in error.message


def test_results_that_fit_are_exact_int64() -> None:
    assert derived("small * small").to_list() == [(2**31 - 1) ** 2, 2**62, 9, 16]  # was wrapped in Int32
    assert derived("small * small").dtype == pl.Int64
    assert derived("big - one").to_list() == [INT64_MAX - 1, INT64_MIN + 1, 7, None]
    assert derived("-(big - one) + 0").to_list() == [-(INT64_MAX - 1), INT64_MAX, -7, None]
    assert derived("abs(one) * 3 - 4").to_list() == [-1, -1, -4, 2]
    assert derived("wide - wide + one").to_list() == [1, -1, 0, None]
    assert derived("-one").to_list() == [-1, 1, 0, -2]


def test_division_and_remainder_keep_their_semantics() -> None:
    assert derived("big / 0").to_list() == [None, None, None, None]  # was [inf, -inf, inf, None]
    assert derived("one / 0").dtype == pl.Float64
    assert derived("big % 0").to_list() == [None, None, None, None]
    assert derived("big % -1").to_list() == [0, 0, 0, None]
    assert derived("big % 10").to_list() == [INT64_MAX % 10, INT64_MIN % 10, 7, None]
    assert derived("big / 2").to_list() == [INT64_MAX / 2, INT64_MIN / 2, 3.5, None]
    assert derived("big * 2.0").to_list() == [INT64_MAX * 2.0, INT64_MIN * 2.0, 14.0, None]


def test_exact_results_streamed_as_in_memory(tmp_path: Path) -> None:
    operations = [
        *derive("small * small - big % 3"),
        {"op": "derive", "column": "negated", "expression": "-(big - one)"},
        {"op": "derive", "column": "quotient", "expression": "big / 0"},
    ]
    result = assert_same_run(numbers(), operations, tmp_path)
    assert result.scan is not None
    assert result.scan.collect()["negated"].to_list() == [-(INT64_MAX - 1), INT64_MAX, -7, None]


def ratios() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW_INDEX_COLUMN: [1, 2, 3, 4, 5],
            "n": [1, 0, None, 5, -2],
            "d": [0, 0, 0, 2, None],
            "x": [1.5, 0.0, None, -2.0, 3.0],
        }
    )


@pytest.mark.parametrize(
    ("expression", "values", "by_zero"),
    [
        ("n / d", [None, None, None, 2.5, None], 2),  # was [inf, NaN, None, 2.5, None]
        ("n % d", [None, None, None, 1, None], 2),  # already empty: now counted
        ("x / (d * 0.0)", [None, None, None, None, None], 3),  # was [inf, NaN, None, -inf, None]
        ("x % 0.0", [None, None, None, None, None], 4),  # was NaN
        ("n / (n - n)", [None, None, None, None, None], 4),  # the QA report's: was inf and NaN, "0 empty values"
        ("coalesce(n / d, 0)", [0.0, 0.0, 0.0, 2.5, 0.0], 0),  # what the alert recommends: none left empty
        ("n / 2", [0.5, 0.0, None, 2.5, -1.0], 0),
    ],
)
def test_a_division_by_zero_is_an_empty_value_and_is_counted(
    expression: str, values: list[Any], by_zero: int, tmp_path: Path
) -> None:
    result = assert_same_run(ratios(), derive(expression), tmp_path)
    assert result.scan is not None
    assert result.scan.collect()["result"].to_list() == values
    step = result.envelope.data["steps"][0]
    assert step["details"]["divisions_by_zero"] == by_zero
    empty = sum(value is None for value in values)
    assert step["details"]["empty_values"] == empty and step["rows_affected"] == len(values) - empty
    alerts = [alert for alert in result.envelope.alerts if alert.category == "division_by_zero"]
    if by_zero:
        plural = "s" if empty != 1 else ""
        cases = "division" if by_zero == 1 else "divisions"
        assert (
            step["sentence"]
            == f"Added column result = {expression} ({empty} empty value{plural}, {by_zero} of them {cases} by zero)"
        )
        assert [(alert.alert_id, alert.severity, alert.field_name) for alert in alerts] == [
            ("transform-step1-division-by-zero", "medium", "result")
        ]
        assert (
            alerts[0].message == f"Step 1: {by_zero} rows of 'result' ({expression}) divide by zero and were left empty"
        )
    else:
        assert "by zero" not in step["sentence"] and alerts == []


def test_an_expression_without_division_reports_none() -> None:
    step = in_memory(ratios(), derive("n * 2")).envelope.data["steps"][0]
    assert "divisions_by_zero" not in step["details"]
