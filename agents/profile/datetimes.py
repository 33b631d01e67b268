"""The profile of a date or datetime column: its span, steps and gaps, and its counts by calendar period.

Conventions:

- Values are written as ISO 8601 text (:func:`iso_text`), as Python's ``isoformat`` writes them: a date
  ``2013-01-01``; a datetime ``2013-01-01T05:00:00``, with 6 digits of a second when it has a fraction (9
  when it has nanoseconds); a tz-aware datetime with its offset in the column's zone
  (``2013-03-31T03:00:00+02:00``), a UTC one with ``Z`` (``2013-01-01T10:00:00Z``).
- Every calendar period (year, month, weekday, hour) is that of the value in the column's own time zone.
  The month, weekday and hour lists hold every period, zero counts included, so a chart needs no filling;
  weekdays are ISO (1 = Monday); hours are given for datetimes only (``None`` for dates).
- Years run from the first to the last year present. Over more than :data:`MAX_YEAR_PERIODS` periods they
  are counted by decade, then by century or millennium (``years_per_period``): a period is the first year
  of its span (1990 stands for 1990-1999).
- Steps and gaps are between consecutive *distinct* values. A gap is a step longer than
  :data:`GAP_FACTOR` times the median step; the :data:`MAX_GAPS` longest are listed, longest first (ties:
  earliest first), and ``gaps_total`` counts them all.
- ``future_count``: values later than ``now`` (default: the current time). A naive datetime is compared
  with ``now`` in UTC (its zone is unknown); a date is later than ``now``'s date in UTC.

All the work is one sort of the values into their distinct values with their counts; everything else is
computed over those (a few thousand rows for a year of hourly timestamps), the calendar counts of a naive
or UTC datetime over those summed by hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from agents.values import READ_FORMATS, distinct_counts, plan_dates

EXTREMES = 5
MAX_GAPS = 5
GAP_FACTOR = 3.0
MAX_YEAR_PERIODS = 200
YEAR_SPANS = (1, 10, 100, 1000)
TEXT_DATE_SHARE = 0.7
"""A text column is profiled as dates when at least this share of its non-blank values read as one."""
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SECONDS_PER_UNIT = {"ns": 1e9, "us": 1e6, "ms": 1e3}


def iso_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A date, datetime or time as ISO 8601 text (see the module's conventions). Each value is written
    up to three times (a layout per fraction length): meant for the few values shown, not whole columns."""
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if dtype == pl.Time:
        layout = "%H:%M:%S"
    else:
        zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
        layout = "%Y-%m-%dT%H:%M:%S" + ("" if zone is None else "Z" if zone in UTC_ZONES else "%:z")
    nanoseconds = expr.dt.nanosecond()

    def written(fraction: str) -> pl.Expr:
        return expr.dt.to_string(layout.replace("%S", "%S" + fraction))

    return (
        pl.when(nanoseconds % 1000 != 0)
        .then(written("%.9f"))
        .when(nanoseconds != 0)
        .then(written("%.6f"))
        .otherwise(written(""))
    )


def duration_seconds(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A duration as seconds (Float64), to its column's precision."""
    unit = dtype.time_unit if isinstance(dtype, pl.Duration) else "us"
    return expr.cast(pl.Int64) / SECONDS_PER_UNIT[unit]


def _seconds(expr: pl.Expr) -> pl.Expr:
    """A difference of two dates or datetimes as seconds, to the microsecond."""
    return expr.dt.total_microseconds() / 1e6


def duration_text(seconds: float | None) -> str | None:
    """``seconds`` written as pandas writes a Timedelta, with a singular day: ``364 days 23:00:00``,
    ``1 day 00:00:00.500000``, ``0 days 00:00:05``."""
    if seconds is None:
        return None
    sign = "-" if seconds < 0 else ""
    micros = round(abs(seconds) * 1e6)
    days, micros = divmod(micros, 86_400 * 10**6)
    whole, fraction = divmod(micros, 10**6)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}" + (f".{fraction:06d}" if fraction else "")
    return f"{sign}{days} {'day' if days == 1 else 'days'} {clock}"


def datetime_profile(column: pl.Series, *, now: datetime | None = None) -> dict[str, Any]:
    """The profile of a Date or Datetime series (naive or tz-aware); see the module's conventions.

    Keys: ``min``, ``max``, ``time_zone``, ``range_seconds``, ``range``, ``distinct``, ``future_count``,
    ``extremes`` ({``lowest``, ``highest``}: up to 5 ``{value, count}``), ``step`` ({``median_seconds``,
    ``most_common_seconds``}), ``gaps`` (``{after, before, seconds, text}``), ``gaps_total``,
    ``gap_threshold_seconds``, ``counts_by_year``, ``years_per_period``, ``counts_by_month``,
    ``counts_by_weekday``, ``counts_by_hour`` (lists of ``{period, [label], count}``)."""
    dtype = column.dtype
    if not (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        raise TypeError(f"datetime_profile takes a Date or Datetime series, not {dtype}")
    value = pl.col("value")
    # One sort and its runs of equal values: the distinct values in order with their counts (a hash
    # group_by then a sort of the groups costs several times more for mostly distinct timestamps).
    runs = (
        column.drop_nulls()
        .sort()
        .rle()
        .struct.unnest()
        .select(value, pl.col("len").cast(pl.Int64).alias("count"))
        .with_columns(_seconds(value.diff()).alias("step"))
    )
    steps = _steps(runs, dtype)
    zone = dtype.time_zone if isinstance(dtype, pl.Datetime) else None
    summary = runs.select(
        value.first().alias("min"),
        value.last().alias("max"),
        _seconds(value.last() - value.first()).alias("range_seconds"),
        iso_text(value.first(), dtype).alias("min_text"),
        iso_text(value.last(), dtype).alias("max_text"),
        pl.col("count").filter(value > _now_literal(dtype, now)).sum().alias("future"),
    ).row(0, named=True)
    range_seconds = summary["range_seconds"]
    hours = _by_hour(runs, dtype)
    return {
        "min": summary["min_text"],
        "max": summary["max_text"],
        "time_zone": zone,
        "range_seconds": range_seconds,
        "range": duration_text(range_seconds),
        "distinct": runs.height,
        "future_count": int(summary["future"] or 0),
        "extremes": {
            "lowest": _value_counts(runs.head(EXTREMES), dtype),
            "highest": _value_counts(runs.tail(EXTREMES).reverse(), dtype),
        },
        "step": steps["step"],
        "gaps": steps["gaps"],
        "gaps_total": steps["gaps_total"],
        "gap_threshold_seconds": steps["gap_threshold_seconds"],
        **_counts_by_year(hours, summary["min"], summary["max"]),
        "counts_by_month": _counts_by_period(hours, value.dt.month(), range(1, 13), MONTHS),
        "counts_by_weekday": _counts_by_period(hours, value.dt.weekday(), range(1, 8), WEEKDAYS),
        "counts_by_hour": _counts_by_period(hours, value.dt.hour(), range(24)) if dtype != pl.Date else None,
    }


def text_datetime_profile(values: pl.Series) -> tuple[pl.Series, dict[str, Any]] | None:
    """A text series read as dates with the product's layouts (``agents.values``: the formats that read
    most of its values, in that order) and the plan that read it (``DatePlan.describe()``); None when the
    series is not text or fewer than :data:`TEXT_DATE_SHARE` of its non-blank values read as dates.
    The parsed series has the input's name and length, unread values null: Date, or Datetime[us], in UTC
    when every format of the plan ends in ``Z`` (``2013-01-01T10:00:00Z``) or reads a UTC offset
    (``2024-03-01T10:00:00+02:00``, each value with its own: ``agents.values.OFFSET_FORMATS``), else naive.
    Values with a 2-digit year (``13/04/55``) are read by ``agents.values.TWO_DIGIT_YEAR_RULE`` (00-69 as 2000-2069):
    a guess of their century, which the plan states (``two_digit_years``)."""
    if values.dtype not in (pl.String, pl.Categorical, pl.Enum):
        return None
    name = values.name
    frame = values.to_frame()
    plan = plan_dates(distinct_counts(frame, name), name, READ_FORMATS)
    if not plan.non_null or plan.share < TEXT_DATE_SHARE:
        return None
    parsed = frame.select(plan.expression(pl.col(name)).alias(name)).to_series()
    if not plan.zoned and all(fmt.pattern.endswith("Z") for fmt, _ in plan.formats):  # "...Z" is UTC: keep it
        parsed = parsed.dt.replace_time_zone("UTC")
    return parsed, plan.describe()


def _now_literal(dtype: pl.DataType, now: datetime | None) -> pl.Expr:
    """``now`` (naive: taken as UTC) as a literal comparable with values of ``dtype``."""
    moment = now or datetime.now(UTC)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if not isinstance(dtype, pl.Datetime):
        return pl.lit(moment.date(), pl.Date)
    instant = pl.lit(moment.replace(tzinfo=None), pl.Datetime(dtype.time_unit))
    if dtype.time_zone is None:
        return instant
    return instant.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)


def _value_counts(runs: pl.DataFrame, dtype: pl.DataType) -> list[dict[str, Any]]:
    return runs.select(iso_text(pl.col("value"), dtype).alias("value"), "count").to_dicts()


def _steps(runs: pl.DataFrame, dtype: pl.DataType) -> dict[str, Any]:
    """Median and most common step between consecutive distinct values (a tie: the shortest), and the
    longest gaps (steps over :data:`GAP_FACTOR` x the median)."""
    steps = runs.select(
        pl.col("value").shift(1).alias("after"), pl.col("value").alias("before"), pl.col("step").alias("seconds")
    ).drop_nulls("seconds")
    if not steps.height:
        return {
            "step": {"median_seconds": None, "most_common_seconds": None},
            "gaps": [],
            "gaps_total": 0,
            "gap_threshold_seconds": None,
        }
    seconds = pl.col("seconds")
    median = float(steps.select(seconds.median()).item())
    most_common = float(
        steps.group_by("seconds").len().sort(["len", "seconds"], descending=[True, False]).item(0, "seconds")
    )
    threshold = GAP_FACTOR * median
    gaps = steps.filter(seconds > threshold)
    # the longest first, ties earliest first: a top-k of the gaps, then its few rows sorted (not all gaps)
    ranked = ["seconds", "order"]
    longest = (
        gaps.with_row_index("order")
        .top_k(MAX_GAPS, by=ranked, reverse=[False, True])
        .sort(ranked, descending=[True, False])
    )
    return {
        "step": {"median_seconds": median, "most_common_seconds": most_common},
        "gaps": [
            {**gap, "text": duration_text(gap["seconds"])}
            for gap in longest.select(
                iso_text(pl.col("after"), dtype), iso_text(pl.col("before"), dtype), "seconds"
            ).to_dicts()
        ],
        "gaps_total": gaps.height,
        "gap_threshold_seconds": threshold,
    }


def _by_hour(runs: pl.DataFrame, dtype: pl.DataType) -> pl.DataFrame:
    """``runs`` (ascending ``value`` and ``count``) summed by the hour they fall in, each hour's value its
    start, where that changes no calendar period: a naive or UTC datetime (whose hours start at whole
    multiples of an hour since the epoch); otherwise (dates, other zones) ``runs`` itself. Counting periods
    over a mostly distinct column then takes a row per hour, not per value."""
    if not isinstance(dtype, pl.Datetime) or (dtype.time_zone is not None and dtype.time_zone not in UTC_ZONES):
        return runs
    per_hour = int(3600 * SECONDS_PER_UNIT[dtype.time_unit])
    if runs.height and runs.get_column("value").to_physical()[0] < per_hour - 2**63:
        return runs  # an hour's start before the earliest datetime the type holds
    value = pl.col("value")
    hour = (value.to_physical() // per_hour).rle_id().alias("hour")
    return (
        runs.select(hour, value, "count")
        .group_by("hour", maintain_order=True)
        .agg((value.first().to_physical() // per_hour * per_hour).cast(dtype).alias("value"), pl.col("count").sum())
        .drop("hour")
    )


def _counts_by_year(runs: pl.DataFrame, first: Any, last: Any) -> dict[str, Any]:
    """Counts per year from the first year to the last, or per decade (century, millennium) when there
    would be more than :data:`MAX_YEAR_PERIODS` periods; ``years_per_period`` says which."""
    if first is None:
        return {"counts_by_year": [], "years_per_period": 1}
    low, high = first.year, last.year
    span = next(
        (size for size in YEAR_SPANS if high // size - low // size < MAX_YEAR_PERIODS),
        YEAR_SPANS[-1],
    )
    periods = range(low // span * span, high // span * span + 1, span)
    year = pl.col("value").dt.year()
    return {"counts_by_year": _counts_by_period(runs, year // span * span, periods), "years_per_period": span}


def _counts_by_period(
    runs: pl.DataFrame, period: pl.Expr, periods: range, labels: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """The count of values per ``period`` of ``runs``' values, for every one of ``periods`` (zeros too),
    each with its label (``labels[i]`` for the i-th period) when ``labels`` is given."""
    every = pl.DataFrame({"period": pl.Series(periods, dtype=pl.Int64)})
    if labels is not None:
        every = every.with_columns(label=pl.Series(labels))
    counts = runs.group_by(period.cast(pl.Int64).alias("period")).agg(pl.col("count").sum())
    return (
        every.join(counts, on="period", how="left", maintain_order="left")
        .with_columns(pl.col("count").fill_null(0))
        .to_dicts()
    )
