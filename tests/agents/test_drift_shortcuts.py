"""The drift-detector's shortcuts give, to the last bit, what the longer way gives: quantiles read off the
sorted values (NumPy's copy and partition skipped), Wasserstein and KS from per-value counts (the merge
skipped), a plain number column's sorted values in NumPy (Polars' view skipped), a boolean column's table
and values from its counts (the grouping skipped), one grouping of both files' categories (a grouping per
file and a join skipped), and the mean, variance and std from one pass of NumPy's steps (three skipped)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from agents.columns import narrow
from agents.drift import stats as drift_stats
from agents.drift.detector import _boolean_values, _category_table, _numbers, _plain_values, _plan

finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


def same_bits(first: np.ndarray | np.floating[Any] | float, second: np.ndarray | np.floating[Any] | float) -> bool:
    return bool(np.asarray(first, dtype=np.float64).tobytes() == np.asarray(second, dtype=np.float64).tobytes())


@settings(max_examples=200, deadline=None)
@given(st.lists(finite | st.integers(-3, 3).map(float), min_size=1, max_size=300), st.integers(2, 100))
def test_sorted_quantiles_are_numpys_to_the_bit(values: list[float], bins: int) -> None:
    array = np.sort(np.array(values))
    quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    assert same_bits(drift_stats.sorted_quantiles(array, quantiles), np.quantile(array, quantiles))


@pytest.mark.parametrize("size", [1, 2, 3, 10, 1_000, 100_003])
def test_sorted_quantiles_of_wide_and_tied_values(size: int) -> None:
    rng = np.random.default_rng(size)
    for values in (rng.normal(0, 1e300, size), rng.integers(-2, 3, size) * 1e-300, rng.normal(1e9, 1, size).round(3)):
        array = np.sort(values)
        for bins in (2, 10, 99):
            quantiles = np.linspace(0.0, 1.0, bins + 1)[1:-1]
            assert same_bits(drift_stats.sorted_quantiles(array, quantiles), np.quantile(array, quantiles))


def _samples(kind: str, sizes: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    first: np.ndarray
    second: np.ndarray
    if kind == "integers":
        first, second = rng.integers(0, 40, sizes[0]), rng.integers(-3, 41, sizes[1])
    elif kind == "two values":
        first, second = rng.integers(0, 2, sizes[0]), rng.integers(0, 2, sizes[1]) * 3
    elif kind == "rounded":
        first, second = rng.normal(0, 1, sizes[0]).round(2), rng.normal(0.05, 1, sizes[1]).round(2)
    else:  # zeros of both signs take the merge
        first = np.where(rng.random(sizes[0]) < 0.5, -0.0, 0.0)
        second = np.where(rng.random(sizes[1]) < 0.5, -0.0, 1.0)
    return np.sort(first.astype(np.float64)), np.sort(second.astype(np.float64))


@pytest.mark.parametrize("kind", ["integers", "two values", "rounded", "signed zeros"])
@pytest.mark.parametrize("sizes", [(300, 200), (12_000, 15_000), (200_000, 150_001)])
def test_counts_give_the_merges_ks_and_wasserstein(kind: str, sizes: tuple[int, int]) -> None:
    """``distinct=0`` takes the per-value counts, a distinct count above the sizes the merge: the same
    statistic, p-value and distance, bit for bit, and SciPy's numbers."""
    baseline, current = _samples(kind, sizes, np.random.default_rng(sizes[0]))
    by_counts = drift_stats.compare_samples(baseline, current, ks=True, distinct=0)
    by_merge = drift_stats.compare_samples(baseline, current, ks=True, distinct=sum(sizes) + 1)
    unhinted = drift_stats.compare_samples(baseline, current, ks=True)
    assert by_merge[0] is not None
    for test, distance in (by_counts, unhinted):
        assert test is not None
        assert same_bits(distance, by_merge[1])
        assert same_bits(test.statistic, by_merge[0].statistic)
        assert test.p_value == by_merge[0].p_value
    assert by_counts[0] is not None
    expected = stats.ks_2samp(baseline, current)
    assert by_counts[0].statistic == pytest.approx(expected.statistic, rel=1e-12, abs=0)
    assert by_counts[0].p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert by_counts[1] == pytest.approx(stats.wasserstein_distance(baseline, current), rel=1e-12)
    assert drift_stats.compare_samples(baseline, current, ks=False, distinct=0) == (None, by_counts[1])


def _polars_view(frame: pl.DataFrame, name: str) -> np.ndarray:
    dtype = frame.schema[name]
    plan = _plan(name, dtype, dtype)
    assert not isinstance(plan, str)
    return np.sort(
        frame.get_column(name).to_frame().select(_numbers(plan).alias(name)).to_series().drop_nulls().to_numpy()
    )


def test_plain_number_columns_sort_as_polars_views_them() -> None:
    rng = np.random.default_rng(3)
    n = 5_000
    special = rng.random(n)
    columns = {
        "int8": pl.Series(rng.integers(-100, 100, n), dtype=pl.Int8),
        "uint64": pl.Series(rng.integers(0, 2**63, n, dtype=np.uint64) * 2 + 1, dtype=pl.UInt64),
        "int64": pl.Series(rng.integers(-(2**62), 2**62, n), dtype=pl.Int64),
        "float32": pl.Series(rng.normal(0, 1, n).astype(np.float32)),
        "float64": pl.Series(np.where(special < 0.1, np.nan, np.where(special > 0.95, np.inf, rng.normal(0, 1, n)))),
        "float32_inf": pl.Series(np.where(special < 0.1, -np.inf, rng.normal(0, 1, n)).astype(np.float32)),
        "zeros": pl.Series(np.where(special < 0.5, -0.0, 0.0)),
    }
    frame = pl.DataFrame(columns)
    nulls = pl.Series(rng.random(n) < 0.2)
    frame = frame.with_columns(
        pl.when(nulls).then(None).otherwise(pl.col(name)).alias(f"{name}_null") for name in columns
    )
    frame = pl.concat([frame, frame.head(7)], rechunk=False)  # two chunks
    for name in frame.columns:
        values = _plain_values(frame.get_column(name))
        assert values.dtype == np.float64 and values.flags.writeable
        assert values.tobytes() == _polars_view(frame, name).tobytes(), name


@pytest.mark.parametrize(
    ("baseline", "current"),
    [
        ([True, False, None, True], [True, True]),
        ([True, True, None], [True, None]),
        ([False], [None, None]),
        ([None], [None]),
        ([True, False], [False, True, False]),
    ],
)
def test_boolean_tables_and_values_come_from_counts(baseline: list[bool | None], current: list[bool | None]) -> None:
    frames = [pl.DataFrame({"x": pl.Series(values, dtype=pl.Boolean)}) for values in (baseline, current)]
    plan = _plan("x", pl.Boolean(), pl.Boolean())
    assert not isinstance(plan, str)
    table = _category_table(frames[0], frames[1], plan)
    grouped = drift_stats.category_counts(narrow(frames[0], ["x"]), narrow(frames[1], ["x"]), plan.category_view())
    assert table.sort("value").equals(grouped.collect().sort("value"))
    assert table.schema == {"value": pl.String, "baseline": pl.Int64, "current": pl.Int64}
    for frame, side in zip(frames, ("baseline", "current"), strict=True):
        assert _boolean_values(table, side).tobytes() == _polars_view(frame, "x").tobytes()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", "d", None]), max_size=40),
    st.lists(st.sampled_from(["b", "c", "e", None]), max_size=40),
)
def test_one_grouping_counts_as_a_grouping_per_file_and_a_join(
    first: list[str | None], second: list[str | None]
) -> None:
    baseline = pl.LazyFrame({"v": pl.Series(first, dtype=pl.String)})
    current = pl.LazyFrame({"v": pl.Series(second, dtype=pl.String)})

    def counts(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
        return frame.drop_nulls().group_by(pl.col("v").alias("value")).agg(pl.len().cast(pl.Int64).alias(name))

    joined = counts(baseline, "baseline").join(counts(current, "current"), on="value", how="full", coalesce=True)
    expected = joined.with_columns(pl.col("baseline", "current").fill_null(0)).collect().sort("value")
    table = drift_stats.category_counts(baseline, current, pl.col("v")).collect(engine="streaming").sort("value")
    assert table.equals(expected)
    assert table.schema == {"value": pl.String, "baseline": pl.Int64, "current": pl.Int64}


@pytest.mark.parametrize("size", [1, 2, 3, 128, 129, 4_097, 100_003])
def test_moments_are_numpys_mean_var_and_std_to_the_bit(size: int) -> None:
    rng = np.random.default_rng(size)
    samples = (rng.normal(0, 1, size), rng.integers(0, 5, size) * 1.0, rng.normal(1e9, 1, size), np.zeros(size))
    for values in samples:
        moments = drift_stats.moments(np.sort(values))
        assert same_bits(moments.mean, np.mean(np.sort(values)))
        assert same_bits(moments.population_std, np.std(np.sort(values)))
        if size > 1:
            assert moments.variance is not None
            assert same_bits(moments.variance, np.var(np.sort(values), ddof=1))
        else:
            assert moments.variance is None
