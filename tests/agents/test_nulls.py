"""null-handler against independent answers (NumPy, scikit-learn's KNNImputer): column strategies, the
suggested strategies, dropped rows and columns, parameter errors, and a Hypothesis property."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.impute import KNNImputer

from agents import registry
from agents.clean import nulls
from agents.envelope import AgentResult
from agents.errors import InvalidParametersError
from agents.params.null_handler import NullHandlerParams
from tests.agents.clean_support import (
    ROW,
    SHORT_PROPERTY_SETTINGS,
    assert_bookkeeping,
    indexed,
    messy_frames,
    reasons,
    run,
)


def handle_nulls(frame: pl.DataFrame, **params: Any) -> AgentResult:
    """Agensium's default (its suggestions applied), unless the test asks otherwise."""
    return run(nulls.run, frame, NullHandlerParams(**{"apply_suggested_strategies": True, **params}))


def test_column_strategies_fill_with_independent_values() -> None:
    values = [3.0, None, 7.5, 1.0, None, 12.0, 4.0]
    counts = [1, None, 2, 2, 8, None, 3]
    frame = indexed(
        {
            "mean_col": values,
            "median_col": values,
            "int_mean": counts,
            "mode_col": ["b", "a", None, "b", "a", None, "c"],
            "ffill": [None, 1.0, None, None, 4.0, None, 2.0],
            "bfill": [None, 1.0, None, None, 4.0, None, 2.0],
            "const": [None, "x", None, "y", "z", "w", "v"],
        },
        [10, 11, 15, 16, 30, 31, 40],
    )
    strategies = {
        "mean_col": "mean",
        "median_col": "median",
        "int_mean": "mean",
        "mode_col": "mode",
        "ffill": "forward_fill",
        "bfill": "backward_fill",
        "const": "constant",
    }
    result = handle_nulls(frame, column_strategies=strategies, fill_values={"const": "missing"})
    out = result.frame
    assert out is not None and out[ROW].to_list() == frame[ROW].to_list()
    present = np.array([v for v in values if v is not None])
    assert out["mean_col"].to_list() == [v if v is not None else pytest.approx(present.mean()) for v in values]
    assert out["median_col"].to_list() == [v if v is not None else np.median(present) for v in values]
    int_mean = np.mean([c for c in counts if c is not None])  # 3.2, as pandas fills it (was rounded to 3)
    assert out["int_mean"].dtype == pl.Float64
    assert out["int_mean"].to_list() == [c if c is not None else pytest.approx(int_mean) for c in counts]
    # Ties between "a" and "b" (two each) go to the smallest.
    mode = min(value for value, count in Counter(["b", "a", "b", "a", "c"]).items() if count == 2)
    assert out["mode_col"].to_list() == ["b", "a", mode, "b", "a", mode, "c"]
    assert out["ffill"].to_list() == [None, 1.0, 1.0, 1.0, 4.0, 4.0, 2.0]
    assert out["bfill"].to_list() == [1.0, 1.0, 4.0, 4.0, 4.0, 2.0, 2.0]
    assert out["const"].to_list() == ["missing", "x", "missing", "y", "z", "w", "v"]

    metrics = result.envelope.summary_metrics
    original = sum(frame[name].null_count() for name in strategies)
    assert metrics["original_nulls"] == original
    assert metrics["remaining_nulls"] == 1 == out.null_count().sum_horizontal().item()  # leading ffill gap
    assert metrics["nulls_handled"] == original - 1
    log = {entry["column"]: entry for entry in result.envelope.data["imputation_log"]}
    assert log["median_col"]["fill_value"] == np.median(present)
    assert log["int_mean"]["fill_value"] == pytest.approx(3.2)
    assert log["int_mean"]["message"].endswith("'int_mean' held whole numbers and is now a decimal column")
    assert "decimal" not in log["mean_col"]["message"]
    assert log["ffill"]["null_count_after"] == 1
    imputed = result.row_level_issues.filter(pl.col("column") == "const")
    assert imputed["row_index"].to_list() == [10, 15] and imputed["value"].to_list() == ["missing", "missing"]
    assert_bookkeeping(frame, result)


def test_knn_imputation_matches_scikit_learn() -> None:
    rng = np.random.default_rng(11)
    n = 60
    x = rng.normal(0, 1, n)
    y = 2 * x + rng.normal(0, 0.1, n)
    z = rng.normal(5, 2, n)
    y[[3, 17, 40]] = np.nan
    z[[5, 17]] = np.nan
    frame = indexed(
        {"x": x, "y": y, "z": z, "label": ["p"] * n},
        list(range(100, 100 + 2 * n, 2)),
    ).with_columns(pl.col("y").fill_nan(None), pl.col("z").fill_nan(None))
    result = handle_nulls(frame, column_strategies={"y": "knn_imputation"}, knn_neighbors=3)
    expected = KNNImputer(n_neighbors=3).fit_transform(np.column_stack([x, y, z]))[:, 1]
    assert result.frame is not None
    np.testing.assert_allclose(result.frame["y"].to_numpy(), expected, rtol=1e-12)
    assert result.envelope.data["knn"]["method"] == "exact"
    assert result.envelope.data["knn"]["features"] == ["x", "y", "z"]
    # z has no explicit strategy: suggested mean (symmetric), of the values as they came in.
    assert result.frame["z"].to_list()[5] == pytest.approx(np.nanmean(z))


def test_suggested_strategies_follow_agensium() -> None:
    n = 20
    skewed = [1.0] * 10 + [10.0] * 8 + [None, None]
    frame = indexed(
        {
            "mostly_empty": [1.0] * 5 + [None] * 15,
            "half_empty": [float(i) for i in range(9)] + [None] * 11,
            "half_text": ["a"] * 9 + [None] * 11,
            "skewed": skewed,
            "symmetric": [float(i) for i in range(18)] + [None, None],
            "text": ["u", "v", "v"] + [None] + ["w"] * 16,
            "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 20), eager=True).scatter([0, 4], None),
            "flag": [True, None] + [False] * 18,
            "email": [f"user{i}@example.com" for i in range(17)] + [None] * 3,
            "complete": list(range(n)),
        },
        list(range(1, 3 * n, 3)),
    )
    result = handle_nulls(frame)
    log = {entry["column"]: entry["strategy"] for entry in result.envelope.data["imputation_log"]}
    assert log == {
        "mostly_empty": "drop_column",
        "half_empty": "knn_imputation",
        "half_text": "mode",
        "skewed": "median",
        "symmetric": "mean",
        "text": "mode",
        "when": "forward_fill",
        "flag": "mode",
        "email": "none",  # identifier-like: its mode would invent a duplicate e-mail
    }
    present = np.array([v for v in skewed if v is not None])
    assert abs((present.mean() - np.median(present)) / present.std(ddof=1)) > 0.5
    assert result.frame is not None and "mostly_empty" not in result.frame.columns
    assert result.frame["email"].null_count() == 3
    filled_dates = result.frame["when"].to_list()
    assert filled_dates[0] is None and filled_dates[4] == frame["when"].to_list()[3]  # leading gap stays
    assert result.frame.height == n and result.removed is not None and result.removed.height == 0
    assert result.envelope.summary_metrics["columns_dropped"] == 1
    untouched = handle_nulls(frame, apply_suggested_strategies=False)
    assert untouched.frame is not None and untouched.frame.equals(frame)


def test_null_handler_fills_nothing_by_default_and_proposes_its_suggestions() -> None:
    frame = indexed(
        {
            "price": [1.0, None, 3.0, 4.0, 5.0, 6.0],
            "city": ["a", None, "a", "b", "a", "a"],
            "empty": [None, None, None, None, None, 1],
        },
        [2, 4, 6, 8, 10, 12],
    )
    result = run(nulls.run, frame, NullHandlerParams())
    assert result.frame is not None and result.frame.equals(frame)
    assert result.envelope.summary_metrics["nulls_handled"] == 0
    assert not [alert for alert in result.envelope.alerts if "remain" in alert.message]
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["apply"] == {
        "null-handler": {"column_strategies": {"price": "mean", "city": "mode", "empty": "drop_column"}}
    }
    assert proposed["cells_affected"] == 2
    applied = run(nulls.run, frame, NullHandlerParams.model_validate(proposed["apply"]["null-handler"]))
    assert applied.envelope.summary_metrics["columns_imputed"] == 2
    assert applied.envelope.summary_metrics["columns_dropped"] == 1


def test_drop_rows_names_the_empty_columns() -> None:
    frame = indexed({"a": [1, None, 3, None], "b": ["x", None, "z", "w"], "c": [1.0, 2.0, 3.0, 4.0]}, [3, 5, 8, 13])
    result = handle_nulls(frame, global_strategy="drop_rows")
    assert reasons(result) == {5: "row has missing values in: a, b", 13: "row has missing values in: a"}
    assert result.frame is not None and result.frame[ROW].to_list() == [3, 8]
    per_column = handle_nulls(frame, column_strategies={"b": "drop_rows", "a": "median"})
    assert reasons(per_column) == {5: "row has missing values in: b"}
    assert per_column.frame is not None and per_column.frame["a"].to_list() == [1, 3, 2]  # median of 1, 3
    assert_bookkeeping(frame, result)


def test_median_of_integers_is_filled_as_it_is() -> None:
    """QA #4: an integer column's median of an even count (2.5) was rounded to 3; the column becomes decimal, as
    pandas' fillna and transform-my-data's fill make it."""
    frame = indexed({"a": [1, 2, None, 3, 4]}, [1, 2, 3, 4, 5])
    result = handle_nulls(frame, column_strategies={"a": "median"})
    assert result.frame is not None and result.frame["a"].to_list() == [1.0, 2.0, 2.5, 3.0, 4.0]
    assert result.frame["a"].dtype == pl.Float64
    expected = pd.Series([1, 2, None, 3, 4], dtype="Int64").astype("float64")
    assert result.frame["a"].to_list() == expected.fillna(expected.median()).tolist()


def test_integer_mean_and_knn_are_not_rounded() -> None:
    """QA #4: the mean of 1, 2, 100 is 34.333..., not 34 (nor is a KNN mean of neighbours rounded); a column
    filled by mode keeps its integers."""
    frame = indexed(
        {"q": [1, 2, None, 100, None], "k": [10, None, 11, 12, 13], "m": [5, 5, None, 7, 8]}, list(range(5))
    )
    result = handle_nulls(frame, column_strategies={"q": "mean", "k": "knn_imputation", "m": "mode"}, knn_neighbors=2)
    out = result.frame
    assert out is not None
    assert out["q"].dtype == pl.Float64 and out["q"].to_list() == [
        1.0,
        2.0,
        pytest.approx(103 / 3),
        100.0,
        pytest.approx(103 / 3),
    ]
    expected = pd.Series([1, 2, None, 100, None], dtype="Int64").astype("float64")
    assert out["q"].to_list() == pytest.approx(expected.fillna(expected.mean()).tolist())
    knn = KNNImputer(n_neighbors=2).fit_transform(frame.drop(ROW).to_numpy().astype(float))[:, 1]
    assert out["k"].dtype == pl.Float64
    np.testing.assert_allclose(out["k"].to_numpy(), knn, rtol=1e-12)
    assert out["m"].dtype == pl.Int64 and out["m"].to_list() == [5, 5, 5, 7, 8]
    log = {entry["column"]: entry for entry in result.envelope.data["imputation_log"]}
    assert log["q"]["fill_value"] == pytest.approx(103 / 3)
    assert "mean (34.33333333)" in log["q"]["message"] and "now a decimal column" in log["q"]["message"]
    assert "decimal" not in log["m"]["message"]


def test_null_handler_rejects_bad_parameters() -> None:
    frame = indexed({"a": [1, None], "when": [None, "2024-01-01"]}, [1, 2]).with_columns(pl.col("when").str.to_date())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"column_strategies": {"nope": "mean"}}, "column_strategies"),
        ({"fill_values": {"nope": 1}}, "fill_values"),
        ({"column_strategies": {"a": "constant"}}, "fill_values"),
        ({"column_strategies": {"a": "constant"}, "fill_values": {"a": "abc"}}, "fill_values.a"),
        ({"column_strategies": {"a": "constant"}, "fill_values": {"a": 1.5}}, "fill_values.a"),
    ]
    for params, field in cases:
        with pytest.raises(InvalidParametersError) as caught:
            handle_nulls(frame, **params)
        assert caught.value.agent_id == "null-handler" and caught.value.field == field, params
    filled = handle_nulls(frame, column_strategies={"when": "constant"}, fill_values={"when": "2023-05-06"})
    assert filled.frame is not None and str(filled.frame["when"][0]) == "2023-05-06"
    with pytest.raises(InvalidParametersError):
        registry.parse_parameters("null-handler", {"column_strategies": {"a": "interpolate"}})


@SHORT_PROPERTY_SETTINGS
@given(
    frame=messy_frames(),
    strategy=st.sampled_from(["column_specific", "drop_rows"]),
    per_column=st.dictionaries(
        st.sampled_from(["id", "name", "email", "amount"]),
        st.sampled_from(["mode", "forward_fill", "backward_fill", "drop_rows", "drop_column", "knn_imputation"]),
    ),
)
def test_null_handler_never_adds_rows(frame: pl.DataFrame, strategy: str, per_column: dict[str, str]) -> None:
    result = handle_nulls(frame, global_strategy=strategy, column_strategies=per_column)
    assert_bookkeeping(frame, result)
    assert result.frame is not None
    remaining = sum(result.frame[name].null_count() for name in result.frame.columns if name != ROW)
    assert result.envelope.summary_metrics["remaining_nulls"] == remaining
    if strategy == "drop_rows":
        assert remaining == 0
    if "drop_rows" not in per_column.values() and strategy == "column_specific":
        assert result.frame.height == frame.height
