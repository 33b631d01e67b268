"""The profiler's shortcuts against plain computations: the lookup-table level codes of Cramér's V, the
hour-summed calendar counts of a datetime profile, and the duplicate rows counted beside the first round
of statistics (or after it, when a column may be a key)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from agents.profile.column_stats import StatsSettings, compute_stats
from agents.profile.correlations import _level_codes
from agents.profile.datetimes import datetime_profile

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SETTINGS = StatsSettings(
    top_n_values=10, histogram_bins=10, outlier_iqr_multiplier=1.5, zscore_threshold=3.0, max_stored_row_level_issues=0
)


@pytest.mark.parametrize(
    "series",
    [
        pl.Series([5, None, -3, 5, 70_000, -3], dtype=pl.Int64),  # a small range: the lookup table
        pl.Series([2**62, -(2**62), None, 7], dtype=pl.Int64),  # a wide range: the binary search
        pl.Series([250, 3, None, 3], dtype=pl.UInt8),
        pl.Series([1.5, float("nan"), None, -2.0, 1.5]),
        pl.Series([True, None, False, True]),
        pl.Series([None, None], dtype=pl.Int32),
        pl.Series([datetime(2020, 1, 1), None, datetime(2019, 5, 1)]).cast(pl.Date),
    ],
)
def test_level_codes_are_ranks_among_the_sorted_levels(series: pl.Series) -> None:
    found = _level_codes(series)
    assert found is not None
    codes, levels = found
    values = series.fill_nan(None) if series.dtype.is_float() else series
    present = values.to_list()
    distinct = sorted({value for value in present if value is not None})
    assert levels == len(distinct)
    assert codes.tolist() == [0 if value is None else distinct.index(value) + 1 for value in present]


def test_level_codes_refuse_too_many_levels() -> None:
    assert _level_codes(pl.Series(range(500))) is None
    assert _level_codes(pl.Series([str(value) for value in range(500)])) is None


def _stamps(zone: str | None, unit: str) -> pl.Series:
    rng = np.random.default_rng(11)
    seconds = rng.integers(-2_000_000_000, 2_000_000_000, 3000)  # before and after 1970
    seconds[:500] = seconds[500:1000]  # repeated values
    naive = pl.Series(seconds * 1_000_000).cast(pl.Datetime("us")).cast(pl.Datetime(unit))  # type: ignore[arg-type]
    return naive if zone is None else naive.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)


@pytest.mark.parametrize(
    ("zone", "unit"), [(None, "us"), (None, "ns"), ("UTC", "ms"), ("Asia/Kathmandu", "us"), ("America/New_York", "us")]
)
def test_calendar_counts_equal_counts_of_every_value(zone: str | None, unit: str) -> None:
    stamps = _stamps(zone, unit)
    profile = datetime_profile(stamps, now=NOW)
    values = [value for value in stamps.to_list() if value is not None]
    months, weekdays, hours = (
        Counter(value.month for value in values),
        Counter(value.isoweekday() for value in values),
        Counter(value.hour for value in values),
    )
    assert [item["count"] for item in profile["counts_by_month"]] == [months[month] for month in range(1, 13)]
    assert [item["count"] for item in profile["counts_by_weekday"]] == [weekdays[day] for day in range(1, 8)]
    assert [item["count"] for item in profile["counts_by_hour"]] == [hours[hour] for hour in range(24)]
    span = profile["years_per_period"]
    years = Counter(value.year // span * span for value in values)
    assert {item["period"]: item["count"] for item in profile["counts_by_year"] if item["count"]} == dict(years)
    assert profile["distinct"] == len(set(values))


def test_a_datetime_profile_counts_nulls_out() -> None:
    start = datetime(2024, 3, 1, 23, 30)
    stamps = pl.Series([start, None, start + timedelta(hours=1), start, None])
    profile = datetime_profile(stamps, now=NOW)
    assert profile["distinct"] == 2
    assert sum(item["count"] for item in profile["counts_by_hour"]) == 3
    assert [item["count"] for item in profile["counts_by_hour"] if item["count"]] == [1, 2]  # 00:30, then 23:30


def _duplicates(frame: pl.DataFrame) -> int:
    return frame.height - frame.n_unique()


@pytest.mark.parametrize("kind", ["no key", "key", "distinct in the sample only"])
def test_duplicate_rows_whenever_the_rows_are_hashed(kind: str) -> None:
    rows = 30_000  # a sample of every third row
    numbers = np.arange(rows) % 1000
    frame = pl.DataFrame({"group": numbers, "label": [f"x{value % 7}" for value in numbers]})
    if kind == "key":
        frame = frame.with_columns(pl.Series("id", np.arange(rows)))
    elif kind == "distinct in the sample only":  # distinct on every sampled row, repeated on an unsampled one
        values = np.arange(rows)
        values[1] = values[0]
        frame = frame.with_columns(pl.Series("almost", values))
    stats = compute_stats(frame, SETTINGS)
    assert stats.dataset.duplicate_rows == _duplicates(frame)
