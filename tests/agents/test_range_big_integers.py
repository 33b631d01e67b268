"""Range bounds next to 64-bit ids (QA pass 8, D16): a bound is compared with an integer column in integers, never
through a double, in search-my-data's ranges (searcher and aggregator), quarantine's range_constraints,
test-coverage's range_tests, master's contract and the stewardship flagger's thresholds. ``1234567890123456804``
as a double is ``1234567890123456768``: compared so, every id of the file is at or above it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.bounds import below_and_above, integer_bounds
from agents.chain import run_tool
from agents.errors import InvalidParametersError
from agents.formatting import number_label
from agents.options import RunOptions

BASE = 1234567890123456789
IDS = [BASE + i for i in range(20)]


def quiet(*_: object) -> None:
    return None


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    pl.DataFrame({"id": IDS, "v": list(range(20))}).write_csv(path)
    return path


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(
    ("low", "high"),
    [
        (BASE + 15, BASE + 16),
        (BASE + 15, None),
        (None, BASE + 2),
        (float(BASE + 15), None),  # a double: 1234567890123456768.0, below every id; Python compares it exactly
        (None, float(BASE + 15)),
        (float(BASE + 15), float(BASE + 15)),  # no id equals that double
    ],
)
def test_search_and_aggregate_ranges_are_exact_on_64_bit_ids(
    tmp_path: Path, streamed: bool, low: Any, high: Any
) -> None:
    expected = [i for i in IDS if (low is None or i >= low) and (high is None or i <= high)]  # Python: exact
    primary = _csv(tmp_path)
    selection = {"ranges": [{"column": "id", "min": low, "max": high}]}
    parameters = {
        "searcher": {**selection, "sort": [{"column": "id"}]},
        "aggregator": {**selection, "metrics": [{"fn": "count"}]},
    }
    options = RunOptions(streaming_threshold_bytes=0) if streamed else RunOptions()
    result = run_tool(
        "search-my-data", [], {"primary.csv": primary}, parameters, tmp_path / "out", quiet, run_options=options
    )
    data = result["agents"]["searcher"]["data"]
    assert data["total_rows"] == len(expected)
    assert pl.read_csv(tmp_path / "out" / "search_result.csv")["id"].to_list() == expected
    assert data["filters_understood"]["ranges"][0]["min"] == low  # as given, never rounded
    groups = result["agents"]["aggregator"]["data"]["groups"]
    assert sum(group["count"] for group in groups) == len(expected)


def test_quarantine_range_constraints_are_exact_on_64_bit_ids(tmp_path: Path) -> None:
    primary = _csv(tmp_path)
    parameters = {"quarantine-agent": {"range_constraints": {"id": {"min": BASE + 15}}}}
    result = run_tool(
        "clean-my-data", ["quarantine-agent"], {"primary.csv": primary}, parameters, tmp_path / "o", quiet
    )
    assert result["summary"]["rows_out"] == 5
    kept = pl.read_csv(tmp_path / "o" / "cleaned_data.csv")["id"].to_list()
    assert kept == IDS[15:]
    issues = result["agents"]["quarantine-agent"]["row_level_issues"]
    assert any(f"below the minimum {BASE + 15}" in issue["message"] for issue in issues), issues[:2]


def test_coverage_range_tests_are_exact_on_64_bit_ids(tmp_path: Path) -> None:
    primary = _csv(tmp_path)
    parameters = {"test-coverage-agent": {"range_tests": {"id": {"min": BASE + 15}}}}
    result = run_tool(
        "profile-my-data", ["test-coverage-agent"], {"primary.csv": primary}, parameters, tmp_path / "o", quiet
    )
    agent = result["agents"]["test-coverage-agent"]
    (test,) = [test for test in agent["data"]["tests"] if test["test_type"] == "range"]
    assert test["violations"] == 15, test
    assert test["bounds"] == f"[{BASE + 15}, inf]"


@pytest.mark.parametrize("dtype", [pl.Int64, pl.UInt64, pl.Int128, pl.Int8])
def test_bounds_on_integer_columns_match_python(dtype: pl.DataType) -> None:
    values = [0, 5, 100, None] if dtype != pl.Int128 else [BASE, BASE + 1, -BASE, None]
    frame = pl.DataFrame({"v": pl.Series(values, dtype=dtype)})
    cases = [
        (-5, 50),
        (2.5, 99.5),
        (BASE, BASE + 0.5),
        (-(2**130), 2**130),
        (float("-inf"), float("inf")),
        (1e300, None),
    ]
    for low, high in cases:
        below, above = below_and_above(pl.col("v"), dtype, low, high)
        got = frame.select(below.alias("b"), above.alias("a")).rows()
        want = [  # a missing value: null beside a bound, False where there is none
            (None if low is not None else False, None if high is not None else False)
            if v is None
            else (low is not None and v < low, high is not None and v > high)
            for v in values
        ]
        assert got == want, (dtype, low, high)


def test_whole_bounds_and_labels() -> None:
    assert integer_bounds(2.5, 7.5) == (3, 7)
    assert integer_bounds(BASE + 4, None) == (BASE + 4, None)
    assert number_label(BASE + 15) == "1234567890123456804"
    assert number_label(120.0) == "120"


@pytest.mark.parametrize("bound", [10**400, -(10**400)])
def test_an_integer_bound_past_a_double_on_a_float_column_is_an_infinity(bound: int) -> None:
    frame = pl.DataFrame({"v": [1.0, 2.0, None]})
    below, above = below_and_above(pl.col("v"), pl.Float64(), bound, None)
    assert frame.select(below.alias("b"))["b"].to_list() == [bound > 0, bound > 0, None]
    assert frame.select(pl.col("v"), above.alias("a"))["a"].to_list() == [False, False, False]


@pytest.mark.parametrize(
    ("tool", "agent", "parameters"),
    [
        ("search-my-data", "searcher", {"ranges": [{"column": "id", "min": 10**400}]}),
        ("clean-my-data", "quarantine-agent", {"range_constraints": {"id": {"max": -(10**400)}}}),
        ("profile-my-data", "test-coverage-agent", {"range_tests": {"id": {"min": 10**400}}}),
    ],
)
def test_an_integer_bound_past_a_double_is_refused_naming_it(
    tmp_path: Path, tool: str, agent: str, parameters: dict[str, Any]
) -> None:
    with pytest.raises(InvalidParametersError) as caught:  # it crashed the agent converting it to a double
        run_tool(tool, [agent], {"primary.csv": _csv(tmp_path)}, {agent: parameters}, tmp_path / "o", quiet)
    assert "past a double's range" in str(caught.value)
