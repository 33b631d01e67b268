"""Row samples, duplicate-row groups and numeric extremes against pandas on generated data."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.profile.column_stats import StatsSettings, compute_stats
from agents.profile.samples import duplicate_rows_sample, row_samples

SETTINGS = StatsSettings(
    top_n_values=10,
    histogram_bins=10,
    outlier_iqr_multiplier=1.5,
    zscore_threshold=3.0,
    max_stored_row_level_issues=100,
)


def _frame(rows: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "category": rng.choice(["a", "b", "c"], size=rows),
        }
    )


def _positions(rows: list[dict[str, Any]]) -> list[int]:
    return [row["row_index"] for row in rows]


# ---------------------------------------------------------------------------------------------------------
# row samples


def test_head_tail_and_random_rows_are_those_pandas_takes() -> None:
    frame = _frame(1000)
    sample = row_samples(frame, n=7, seed=3)
    data = frame.to_pandas()
    assert _positions(sample["head"]) == list(range(1, 8))
    assert _positions(sample["tail"]) == list(range(994, 1001))
    expected = np.sort(np.random.default_rng(3).choice(1000, size=7, replace=False)) + 1
    assert _positions(sample["random"]) == expected.tolist()
    for part in ("head", "tail", "random"):
        for row in sample[part]:
            original = data.iloc[row["row_index"] - 1]
            assert row["id"] == original["id"]
            assert row["x"] == original["x"]
            assert row["category"] == original["category"]
    assert sample["seed"] == 3
    assert sample["columns"] == ["id", "x", "category"]
    assert sample["columns_truncated"] is False


def test_random_rows_are_fixed_by_the_seed_distinct_and_in_row_order() -> None:
    frame = _frame(5000)
    first = _positions(row_samples(frame, seed=0)["random"])
    assert first == _positions(row_samples(frame, seed=0)["random"])
    assert first != _positions(row_samples(frame, seed=1)["random"])
    assert first == sorted(set(first))
    assert len(first) == 10
    assert all(1 <= position <= 5000 for position in first)


def test_a_short_frame_gives_all_its_rows_in_each_part() -> None:
    sample = row_samples(_frame(3), n=10)
    for part in ("head", "tail", "random"):
        assert _positions(sample[part]) == [1, 2, 3]
    empty = row_samples(pl.DataFrame({"a": pl.Series([], dtype=pl.Int64)}))
    assert empty["head"] == empty["tail"] == empty["random"] == []
    assert empty["columns"] == ["a"]


def test_only_the_first_columns_are_shown_on_a_wide_frame() -> None:
    frame = pl.DataFrame({f"c{index}": [index, index + 1] for index in range(150)})
    sample = row_samples(frame, n=1, max_columns=100)
    assert sample["columns"] == [f"c{index}" for index in range(100)]
    assert sample["columns_truncated"] is True
    assert list(sample["head"][0]) == ["row_index", *sample["columns"]]
    assert sample["tail"][0]["c99"] == 100


def test_values_are_json_able_and_written_as_documented() -> None:
    instants = [datetime(2024, 3, 31, 0, 30), datetime(2024, 7, 1, 12, 0, 0, 250000), None]
    frame = pl.DataFrame(
        {
            "day": [date(2024, 1, 2), None, date(1999, 12, 31)],
            "naive": instants,
            "utc": pl.Series(instants).dt.replace_time_zone("UTC"),
            "paris": pl.Series(instants).dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris"),
            "clock": [time(1, 2, 3), time(23, 59, 59, 500000), None],
            "wait": [timedelta(days=1, seconds=1.5), None, timedelta(milliseconds=-20)],
            "ratio": [float("nan"), float("inf"), 1.25],
            "tags": [[1, 2], None, []],
            "point": [{"x": 1.5, "name": "a"}, {"x": None, "name": "b"}, None],
            "flag": [True, None, False],
            "kind": pl.Series(["a", "b", None], dtype=pl.Categorical),
            "amount": pl.Series(["1.50", "2", None]).str.to_decimal(scale=2),
            "blob": [b"\x00\xff", None, b"A"],
            "big": pl.Series([2**63 - 1, 0, None], dtype=pl.Int64),
        }
    )
    rows = row_samples(frame, n=3)["head"]
    json.dumps(rows, allow_nan=False)  # JSON-able, with no NaN or infinity
    data = frame.select("naive", "utc", "paris").to_pandas()
    for index, row in enumerate(rows):
        for name in ("naive", "utc", "paris"):
            stamp = data[name].iloc[index]
            expected = None if pd.isna(stamp) else stamp.isoformat().replace("+00:00", "Z")
            assert row[name] == expected, (name, index)
    assert rows[1]["paris"] == "2024-07-01T14:00:00.250000+02:00"
    assert [row["day"] for row in rows] == ["2024-01-02", None, "1999-12-31"]
    assert [row["clock"] for row in rows] == ["01:02:03", "23:59:59.500000", None]
    assert [row["wait"] for row in rows] == [86401.5, None, -0.02]
    assert [row["ratio"] for row in rows] == [None, None, 1.25]
    assert [None if row["tags"] is None else json.loads(row["tags"]) for row in rows] == [[1, 2], None, []]
    assert json.loads(rows[0]["point"]) == {"x": 1.5, "name": "a"}
    assert json.loads(rows[1]["point"]) == {"x": None, "name": "b"}
    assert rows[2]["point"] is None
    assert [row["flag"] for row in rows] == [True, None, False]
    assert [row["kind"] for row in rows] == ["a", "b", None]
    assert [row["amount"] for row in rows] == [1.5, 2.0, None]
    assert [row["blob"] for row in rows] == ["00ff", None, "41"]
    assert rows[0]["big"] == 2**63 - 1


def test_a_data_column_named_row_index_gives_way_to_the_position() -> None:
    frame = pl.DataFrame({"row_index": [10, 20], "a": [1, 2]})
    sample = row_samples(frame, n=2)
    assert sample["head"] == [{"row_index": 1, "a": 1}, {"row_index": 2, "a": 2}]
    assert sample["columns"] == ["a"]
    assert sample["columns_truncated"] is True


# ---------------------------------------------------------------------------------------------------------
# duplicate rows


def _pandas_groups(frame: pl.DataFrame) -> list[tuple[int, list[int]]]:
    """(count, 1-based rows) of each group of equal rows with two or more, largest first, then by first row."""
    data = frame.to_pandas()
    data["__row__"] = np.arange(1, len(data) + 1)
    keys = [name for name in data.columns if name != "__row__"]
    rows = data.groupby(keys, dropna=False, sort=False)["__row__"].apply(list)
    groups = [(len(members), sorted(members)) for members in rows if len(members) > 1]
    return sorted(groups, key=lambda group: (-group[0], group[1][0]))


def test_duplicate_groups_are_those_pandas_finds() -> None:
    rng = np.random.default_rng(7)
    rows = 4000
    frame = pl.DataFrame(
        {
            "a": rng.integers(0, 6, rows),
            "b": rng.choice(np.array(["x", "y", None], dtype=object), size=rows),
            "c": np.where(rng.random(rows) < 0.1, np.nan, rng.integers(0, 3, rows).astype(float)),
            "d": rng.integers(0, 200, rows),
        }
    )
    found = duplicate_rows_sample(frame, groups=1000, indexes_per_group=1000)
    data = frame.to_pandas()
    assert found["duplicate_rows"] == int(data.duplicated().sum()) > 0
    expected = _pandas_groups(frame)
    assert found["groups_total"] == len(expected)
    assert [(group["count"], group["row_indexes"]) for group in found["groups"]] == expected
    for group in found["groups"][:50]:
        original = data.iloc[group["row_indexes"][0] - 1]
        assert group["row"]["a"] == original["a"]
        assert group["row"]["d"] == original["d"]
        assert group["row"]["b"] == (None if pd.isna(original["b"]) else original["b"])
        assert group["row"]["c"] == (None if math.isnan(original["c"]) else original["c"])


def test_duplicate_groups_are_capped_and_ordered() -> None:
    base = pl.DataFrame({"a": [1, 2, 3, 4], "b": ["p", "q", "r", "s"]})
    # row 1 four times, row 2 three times, rows 3 and 4 twice each (row 3 seen first)
    frame = pl.concat(
        [base, base.head(1), base.head(1), base.head(1), base.slice(1, 1), base.slice(1, 1), base.tail(2)]
    )
    found = duplicate_rows_sample(frame, groups=3, indexes_per_group=2)
    assert found["duplicate_rows"] == int(frame.to_pandas().duplicated().sum()) == 3 + 2 + 1 + 1
    assert found["groups_total"] == 4
    assert [group["count"] for group in found["groups"]] == [4, 3, 2]
    assert [group["row_indexes"] for group in found["groups"]] == [[1, 5], [2, 8], [3, 10]]
    assert found["groups"][2]["row"] == {"a": 3, "b": "r"}


def test_no_duplicates_gives_empty_groups() -> None:
    empty = {"duplicate_rows": 0, "groups_total": 0, "groups": []}
    assert duplicate_rows_sample(_frame(2000)) == empty
    assert duplicate_rows_sample(pl.DataFrame({"a": [1]})) == empty
    assert duplicate_rows_sample(pl.DataFrame()) == empty
    # nulls equal nulls, NaN equals NaN, 0.0 equals -0.0, a null is not NaN: as Polars' n_unique
    # (pandas, which reads a float null as NaN, would also put rows 1-4 in one group)
    special = pl.DataFrame({"a": [None, None, float("nan"), float("nan"), 0.0, -0.0, 1.0]})
    found = duplicate_rows_sample(special)
    assert found["duplicate_rows"] == special.height - special.n_unique() == 3
    assert [group["row_indexes"] for group in found["groups"]] == [[1, 2], [3, 4], [5, 6]]


def test_a_wide_frame_of_few_rows() -> None:
    rng = np.random.default_rng(11)
    values = rng.integers(0, 2, size=(20, 10_000))
    names = [f"c{index}" for index in range(10_000)]
    distinct = pl.DataFrame(values, schema=names, orient="row")
    assert duplicate_rows_sample(distinct)["duplicate_rows"] == 0
    repeated = pl.concat([distinct, distinct.slice(4, 1), distinct.slice(4, 1), distinct.slice(9, 1)])
    found = duplicate_rows_sample(repeated)
    assert found["duplicate_rows"] == int(repeated.to_pandas().duplicated().sum()) == 3
    assert [group["row_indexes"] for group in found["groups"]] == [[5, 21, 22], [10, 23]]
    assert list(found["groups"][0]["row"]) == names[:100]
    assert list(found["groups"][0]["row"].values()) == values[4, :100].tolist()


# ---------------------------------------------------------------------------------------------------------
# numeric extremes (agents/profile/column_stats.py)


def _expected_extremes(values: pd.Series, integer: bool) -> dict[str, list[dict[str, Any]]]:
    finite = values[np.isfinite(values.astype(float))] if not integer else values.dropna()
    counts = finite.value_counts()
    frame = counts.rename_axis("value").reset_index(name="count")
    lowest = frame.nsmallest(5, "value")
    highest = frame.nlargest(5, "value")

    def listed(part: pd.DataFrame) -> list[dict[str, Any]]:
        cast = int if integer else float
        return [
            {"value": cast(value), "count": int(count)}
            for value, count in zip(part["value"], part["count"], strict=True)
        ]

    return {"lowest": listed(lowest), "highest": listed(highest)}


@pytest.mark.parametrize("width", [3, 150])  # 150 columns: a wide frame, its columns profiled in chunks
def test_extremes_are_pandas_nsmallest_and_nlargest_of_the_value_counts(width: int) -> None:
    rng = np.random.default_rng(5)
    rows = 400
    floats = rng.normal(size=rows).round(1)
    floats[:7] = [np.nan, np.inf, -np.inf, np.nan, 9.5, 9.5, -9.5]
    integers = rng.integers(-50, 50, rows)
    integers[:3] = [2**62 + 1, 2**62 + 3, 2**62 + 1]  # beyond a float's 53 bits
    columns: dict[str, Any] = {
        "f": floats,
        "i": integers,
        "n": pl.Series([None if index % 3 else index for index in range(rows)], dtype=pl.Int32),
    }
    columns.update({f"pad{index}": rng.integers(0, 4, rows) for index in range(width - 3)})
    frame = pl.DataFrame(columns)
    stats = {column.name: column for column in compute_stats(frame, SETTINGS).columns}
    data = frame.select("f", "i", "n").to_pandas()
    assert stats["f"].numeric["extremes"] == _expected_extremes(data["f"], integer=False)
    assert stats["i"].numeric["extremes"] == _expected_extremes(data["i"], integer=True)
    assert stats["i"].numeric["extremes"]["highest"][0] == {"value": 2**62 + 3, "count": 1}
    assert stats["n"].numeric["extremes"] == _expected_extremes(data["n"], integer=True)
    assert all(isinstance(item["value"], int) for item in stats["n"].numeric["extremes"]["lowest"])


def test_extremes_of_a_column_without_finite_values_are_empty() -> None:
    frame = pl.DataFrame({"x": [np.nan, np.inf, None], "y": pl.Series([None, None, None], dtype=pl.Float64)})
    stats = compute_stats(frame, SETTINGS).columns
    assert stats[0].numeric["extremes"] == {"lowest": [], "highest": []}
    assert stats[1].numeric["extremes"] == {"lowest": [], "highest": []}


def test_a_frame_whose_only_column_is_named_row_index() -> None:
    samples = row_samples(pl.DataFrame({"row_index": ["x", "y", "z"]}))
    assert samples["head"] == [{"row_index": 1}, {"row_index": 2}, {"row_index": 3}]
    assert samples["columns_truncated"]
