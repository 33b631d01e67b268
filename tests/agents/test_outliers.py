"""outlier-remover against independent answers: bounds from NumPy/SciPy, flagging by default, median
imputation, parameter errors, frames of several chunks, and a Hypothesis property."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from agents.clean import outliers
from agents.envelope import AgentResult
from agents.errors import InvalidParametersError
from agents.params.outlier_remover import OutlierRemoverParams
from tests.agents.clean_support import (
    ROW,
    SHORT_PROPERTY_SETTINGS,
    assert_bookkeeping,
    indexed,
    reasons,
    run,
)


def remove_outliers(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default treatment (remove), unless the test asks for another."""
    return run(outliers.run, frame, OutlierRemoverParams(**{"removal_strategy": "remove", **params}))


def outlier_frame(n: int = 302) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(5)
    value = rng.normal(50, 5, n)
    value[[7, 120, 250]] = [150.0, -80.0, 95.0]
    value[30] = np.nan
    value[31] = np.inf
    count = rng.integers(10, 20, n)
    count[[2, 9]] = [300, -100]
    frame = indexed(
        {"value": value, "count": count, "label": ["k"] * n, "flag": [True] * n}, list(range(10, 10 + 5 * n, 5))
    ).with_columns(pl.when(pl.col(ROW) == 15).then(None).otherwise(pl.col("value")).alias("value"))
    return frame, value


def numpy_outliers(values: np.ndarray, method: str) -> tuple[float, float, np.ndarray]:
    """Independent bounds and outlier flags: finite values only; NaN is never an outlier, +-inf always."""
    finite = values[np.isfinite(values)]
    if method == "z_score":
        mean, std = finite.mean(), finite.std(ddof=1)
        lower, upper = mean - 3 * std, mean + 3 * std
        assert set(np.flatnonzero(np.abs(stats.zscore(finite, ddof=1)) > 3)) == set(
            np.flatnonzero((finite < lower) | (finite > upper))
        )
    elif method == "iqr":
        q1, q3 = np.quantile(finite, [0.25, 0.75])
        lower, upper = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    else:
        lower, upper = np.percentile(finite, [1, 99])
    with np.errstate(invalid="ignore"):
        flagged = (values < lower) | (values > upper)
    return float(lower), float(upper), flagged


@pytest.mark.parametrize("method", ["z_score", "iqr", "percentile"])
def test_outlier_bounds_match_numpy(method: str) -> None:
    frame, _ = outlier_frame()
    result = remove_outliers(frame, detection_method=method)
    summary = result.envelope.data["outlier_summary"]
    assert set(summary) == {"value", "count"}  # booleans and text are not analysed
    expected_removed: set[int] = set()
    for name in ("value", "count"):
        lower, upper, flagged = numpy_outliers(frame[name].cast(pl.Float64).to_numpy(), method)
        assert summary[name]["lower_bound"] == pytest.approx(lower, rel=1e-12)
        assert summary[name]["upper_bound"] == pytest.approx(upper, rel=1e-12)
        rows = set(frame.filter(pl.Series(flagged))[ROW].to_list())
        issues = result.row_level_issues.filter(pl.col("column") == name)
        assert set(issues["row_index"].to_list()) == rows
        assert summary[name]["outlier_count"] == len(rows)
        expected_removed |= rows
    value_rows = set(result.row_level_issues.filter(pl.col("column") == "value")["row_index"].to_list())
    assert 10 + 5 * 31 in value_rows and 10 + 5 * 30 not in value_rows  # inf is an outlier, NaN is not
    removed = reasons(result)
    assert set(removed) == expected_removed
    assert "outlier in value: 150.0 outside [" in removed[10 + 5 * 7]
    assert result.envelope.summary_metrics["original_outliers"] == result.row_level_issues.height
    assert result.envelope.summary_metrics["remaining_outliers"] == 0
    assert_bookkeeping(frame, result)


def test_outliers_are_flagged_not_removed_by_default() -> None:
    frame, _ = outlier_frame()
    result = run(outliers.run, frame, OutlierRemoverParams())
    removed = remove_outliers(frame)
    assert result.frame is not None and result.frame.equals(frame)  # no row removed, no value changed
    assert result.removed is not None and result.removed.height == 0
    metrics = result.envelope.summary_metrics
    assert metrics["rows_removed"] == 0 and metrics["outliers_handled"] == 0
    assert (
        metrics["outliers_flagged"]
        == metrics["original_outliers"]
        == removed.envelope.summary_metrics["original_outliers"]
    )
    assert result.row_level_issues["row_index"].to_list() == removed.row_level_issues["row_index"].to_list()
    assert result.row_level_issues["message"].str.contains("kept (flagged)", literal=True).all()
    proposals = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert removed.removed is not None
    assert proposals["remove_outlier_rows"]["rows_affected"] == removed.removed.height
    assert proposals["remove_outlier_rows"]["apply"] == {"outlier-remover": {"removal_strategy": "remove"}}
    assert proposals["impute_outliers_median"]["cells_affected"] == metrics["original_outliers"]
    assert removed.envelope.data["proposals"] == []  # applied, not proposed


def test_impute_median_uses_the_non_outliers_and_keeps_integers() -> None:
    frame, _ = outlier_frame()
    values = frame["value"].to_numpy()
    result = remove_outliers(frame, removal_strategy="impute_median")
    assert result.frame is not None and result.frame.height == frame.height
    assert result.removed is not None and result.removed.height == 0
    summary = result.envelope.data["outlier_summary"]
    lower, upper = summary["value"]["lower_bound"], summary["value"]["upper_bound"]
    finite = values[np.isfinite(values)]
    inliers = finite[(finite >= lower) & (finite <= upper)]
    assert summary["value"]["replacement_value"] == pytest.approx(np.median(inliers))
    counts = frame["count"].to_numpy()
    count_lower, count_upper = summary["count"]["lower_bound"], summary["count"]["upper_bound"]
    count_inliers = counts[(counts >= count_lower) & (counts <= count_upper)]
    median = np.median(count_inliers)
    assert result.frame["count"].dtype == frame["count"].dtype
    assert result.frame["count"].to_list()[2] == int(np.floor(median + 0.5))
    assert result.frame["value"].to_list()[7] == pytest.approx(np.median(inliers))
    assert np.isnan(result.frame["value"].to_list()[30])  # NaN is not an outlier: left alone
    assert result.envelope.summary_metrics["remaining_outliers"] == 0


@pytest.mark.parametrize("strategy", ["flag", "remove", "impute_median"])
def test_a_column_named_twice_is_analysed_once(strategy: str) -> None:
    """Before, `columns: ["value", "value"]` failed the agent (Polars: a duplicate output name)."""
    frame, _ = outlier_frame()
    twice = remove_outliers(frame, columns=["count", "value", "count"], removal_strategy=strategy)
    once = remove_outliers(frame, columns=["count", "value"], removal_strategy=strategy)
    assert twice.envelope.status == once.envelope.status == "success"
    assert twice.frame is not None and once.frame is not None and twice.frame.equals(once.frame)
    assert twice.row_level_issues.equals(once.row_level_issues)
    assert twice.envelope.data == once.envelope.data
    assert OutlierRemoverParams(columns=["b", "a", "b"]).columns == ["b", "a"]


def test_outlier_remover_rejects_bad_parameters() -> None:
    frame, _ = outlier_frame()
    for columns in (["nope"], ["label"]):
        with pytest.raises(InvalidParametersError) as caught:
            remove_outliers(frame, columns=columns)
        assert caught.value.agent_id == "outlier-remover" and caught.value.field == "columns"
    with pytest.raises(ValidationError):
        OutlierRemoverParams(lower_percentile=90, upper_percentile=10)
    only = remove_outliers(frame, columns=["count"])
    assert list(only.envelope.data["outlier_summary"]) == ["count"]


@SHORT_PROPERTY_SETTINGS
@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([float("inf"), float("nan")]), st.none()),
        max_size=40,
    ),
    method=st.sampled_from(["z_score", "iqr", "percentile"]),
)
def test_removed_outliers_stay_out_under_the_original_bounds(values: list[float | None], method: str) -> None:
    """Semantics: a second run recomputes bounds from the data it gets (after a removal they are narrower and
    may flag new values); what must hold is that no kept value lies outside the ORIGINAL bounds."""
    frame = indexed({"v": values}, [3 * i + 7 for i in range(len(values))], {"v": pl.Float64})
    result = remove_outliers(frame, detection_method=method)
    assert_bookkeeping(frame, result)
    assert result.frame is not None
    entry = result.envelope.data["outlier_summary"]["v"]
    if entry["analysed"]:
        kept = result.frame["v"].drop_nulls().to_numpy()
        kept = kept[~np.isnan(kept)]
        assert ((kept >= entry["lower_bound"]) & (kept <= entry["upper_bound"])).all()
    assert result.envelope.summary_metrics["remaining_outliers"] == 0


def test_agents_accept_frames_of_several_chunks() -> None:
    """Polars 2.1's native pl.format panics in a streaming query over a filtered frame of several chunks
    (what earlier lazy agents hand on); the agents' messages are built with concat_str instead."""
    head = indexed({"id": [1, 2, 3, 4, 5], "price": [0.0] * 5}, [1, 2, 3, 4, 5])
    tail = indexed({"id": [6, 7, 8], "price": [0.0, 0.01, 0.01]}, [6, 7, 8])
    frame = pl.concat([head, tail], rechunk=False)
    assert frame["price"].n_chunks() == 2
    result = run(outliers.run, frame, OutlierRemoverParams(removal_strategy="remove"))
    assert result.removed is not None and result.removed[ROW].to_list() == [7, 8]
    assert result.row_level_issues["message"].str.starts_with("0.01 outside").all()


BIG = 2**60  # integers this large are not all floats: a median taken as a float is off by up to 128


@pytest.mark.parametrize(
    ("inliers", "median"),
    [
        ([BIG + i for i in range(1, 8)], BIG + 4),  # an odd count: the middle value
        ([BIG + i for i in range(1, 9)], BIG + 5),  # an even count: BIG + 4.5, half away from zero
        ([-BIG - i for i in range(1, 9)], -BIG - 5),  # -BIG - 4.5, half away from zero
    ],
)
def test_impute_median_of_large_integers_is_exact(inliers: list[int], median: int) -> None:
    outlier = -(inliers[0] // 2) if inliers[0] > 0 else -inliers[0]
    values = [*inliers, outlier]
    frame = indexed({"n": values}, list(range(2, 2 * len(values) + 1, 2)), {"n": pl.Int64})
    result = remove_outliers(frame, removal_strategy="impute_median", columns=["n"])
    assert result.frame is not None
    assert result.envelope.data["outlier_summary"]["n"]["replacement_value"] == median
    assert result.frame["n"].to_list() == [*inliers, median]


# Q1 = 7.64, Q3 = 10.19: the upper IQR bound is 14.014999999999999, which 10 significant digits print as 14.015
ON_THE_BOUND = indexed({"v": [7.0, 7.5, 7.64, 8.0, 9.0, 9.5, 10.19, 10.5, 14.015]}, list(range(2, 20, 2)))


def test_an_outlier_never_reads_as_on_its_bound() -> None:
    """QA5 D3: "24.16638 outside [-3.45234, 24.16638]". A bound that rounding would print equal to (or beyond) an
    outlier is printed exactly; the others stay rounded."""
    result = remove_outliers(ON_THE_BOUND)
    assert reasons(result) == {18: "outlier in v: 14.015 outside [3.815, 14.014999999999999] (iqr)"}
    (message,) = result.row_level_issues["message"].to_list()
    assert message.startswith("14.015 outside [3.815, 14.014999999999999] (iqr bounds)")
    below = remove_outliers(ON_THE_BOUND.with_columns(-pl.col("v")))  # the same on the lower bound
    assert reasons(below) == {18: "outlier in v: -14.015 outside [-14.014999999999999, -3.815] (iqr)"}
    rounded = remove_outliers(ON_THE_BOUND.with_columns(pl.col("v").replace(14.015, 14.5)))
    assert reasons(rounded) == {18: "outlier in v: 14.5 outside [3.815, 14.015] (iqr)"}  # nothing on the bound
