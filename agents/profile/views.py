"""The views a data person looks at first, beyond each column's statistics (ydata-profiling's overview):
correlations, missing-value patterns, sample rows, duplicate-row groups, and a datetime profile per date
column. Each is computed by its own module over the parsed frame; this one chooses the columns and runs
them side by side (Polars releases the GIL while it computes).

Which columns take part (by the field's ``semantic_type``, :mod:`agents.profile.semantic`):

- Pearson and Spearman: numeric columns, except identifiers and constants (a row number correlates with
  nothing a person cares about);
- Cramér's V: categorical columns (text codes, booleans, low-cardinality integer codes) with at most
  :data:`~agents.profile.correlations.MAX_CATEGORIES` distinct values;
- a datetime profile: every Date/Datetime column, and every text column whose values are dates in one of
  the product's layouts (``date_string``: read as the type fixer would read them, the plan reported as
  ``read_from_text``). Dates written with a 2-digit year (``13/04/55``) are read 00-69 as 2000-2069, 70-99 as
  1970-1999 (agents.values.TWO_DIGIT_YEAR_RULE): a guess of the century, which ``read_from_text.two_digit_years``
  states (with the earliest and latest such date, and ``future_count`` counting the dates it puts after today)
  and the field's ``type_date`` alert repeats; the type-fixer does not convert them by default.

A file profiled by streaming (larger than the agent's memory) gets the views of an evenly spaced sample of
at most :data:`STREAMED_SAMPLE_ROWS` rows and :data:`STREAMED_SAMPLE_CELLS` cells (``sampled`` says so;
row numbers are those of the file), and its first and last rows from the file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from agents.profile.column_stats import column_kind, run_concurrently
from agents.profile.correlations import MAX_CATEGORIES, correlations
from agents.profile.datetimes import datetime_profile, text_datetime_profile
from agents.profile.missing_patterns import missing_patterns
from agents.profile.samples import SAMPLE_ROWS, duplicate_rows_sample, row_samples

STREAMED_SAMPLE_ROWS = 200_000
STREAMED_SAMPLE_CELLS = 10_000_000
UNCORRELATED_TYPES = frozenset({"identifier", "constant", "empty", "credit_card"})  # card numbers: codes
ASSOCIATED_TYPES = frozenset({"categorical", "boolean", "boolean_string", "code"})  # Cramér's V takes part
TEMPORAL_KINDS = frozenset({"date", "datetime"})


class EarlyViews:
    """The views that need no column statistics (missing-value patterns, sample rows, the profile of each
    Date/Datetime column), started in a thread of their own as soon as the frame is at hand, so that they
    fill the cores' idle moments while the statistics are computed. If the statistics fail, these run to their
    end unread (time only: the agent fails with the statistics' error)."""

    def __init__(self, frame: pl.DataFrame) -> None:
        pool = ThreadPoolExecutor(max_workers=1)
        self.missing_patterns = pool.submit(missing_patterns, frame)
        self.samples = pool.submit(row_samples, frame)
        self.temporal = {
            name: pool.submit(datetime_profile, frame.get_column(name))
            for name, dtype in frame.schema.items()
            if column_kind(dtype) in TEMPORAL_KINDS
        }
        pool.shutdown(wait=False)


def profile_views(
    frame: pl.DataFrame, fields: list[dict[str, Any]], duplicate_rows: int, early: EarlyViews | None = None
) -> dict[str, Any]:
    """``{"correlations", "missing_patterns", "samples", "duplicate_rows_sample"}`` of ``frame`` (missing
    values already null), and each temporal field's ``datetime_profile`` added to ``fields`` in place;
    ``early``: those of them already started (:class:`EarlyViews` of ``frame``)."""
    numeric = [
        field["field_name"]
        for field in fields
        if field["data_type"] in {"integer", "float"} and field["semantic_type"] not in UNCORRELATED_TYPES
    ]
    categorical = [
        field["field_name"]
        for field in fields
        if field["semantic_type"] in ASSOCIATED_TYPES and (field["properties"]["unique_count"] or 0) <= MAX_CATEGORIES
    ]
    dated = [field for field in fields if _dated(field)]
    early_temporal = early.temporal if early is not None else {}
    jobs: list[Callable[[], Any]] = [
        lambda: correlations(frame, numeric, categorical),
        early.missing_patterns.result if early is not None else lambda: missing_patterns(frame),
        early.samples.result if early is not None else lambda: row_samples(frame),
        lambda: duplicate_rows_sample(frame) if duplicate_rows else _no_duplicates(),
        *(
            early_temporal[field["field_name"]].result
            if field["field_name"] in early_temporal
            else _datetime_job(frame.get_column(field["field_name"]))
            for field in dated
        ),
    ]
    found = run_concurrently(jobs)
    for field, profile in zip(dated, found[4:], strict=True):
        if profile is not None:
            field["datetime_profile"] = profile
    return {
        "correlations": found[0],
        "missing_patterns": found[1],
        "samples": found[2],
        "duplicate_rows_sample": found[3],
    }


def streamed_views(
    lazy: pl.LazyFrame, height: int, fields: list[dict[str, Any]], duplicate_rows: int
) -> dict[str, Any]:
    """:func:`profile_views` of a file too large for memory: over an evenly spaced sample of its rows (at
    most :data:`STREAMED_SAMPLE_ROWS`, and :data:`STREAMED_SAMPLE_CELLS` cells: a wide file gets fewer
    rows), with its true first and last rows; duplicate-row groups are not listed (a sample would miss most)."""
    width = max(1, len(lazy.collect_schema()))
    rows = max(1, min(STREAMED_SAMPLE_ROWS, STREAMED_SAMPLE_CELLS // width))
    step = max(1, -(-height // rows))
    number = _free_name(lazy, "__row")
    sample = lazy.with_row_index(number).filter(pl.col(number) % step == 0).drop(number).collect(engine="streaming")
    views = profile_views(sample, fields, 0)
    samples = views["samples"]
    samples["random"] = [{**row, "row_index": (row["row_index"] - 1) * step + 1} for row in samples["random"]]
    if height > 2 * SAMPLE_ROWS:  # the file's own first and last rows (a short file's are all in the sample)
        edges = pl.concat([lazy.head(SAMPLE_ROWS), lazy.tail(SAMPLE_ROWS)]).collect(engine="streaming")
        ends = row_samples(edges, n=SAMPLE_ROWS)
        samples["head"] = ends["head"]
        samples["tail"] = [{**row, "row_index": height - 2 * SAMPLE_ROWS + row["row_index"]} for row in ends["tail"]]
    sampled = {"rows": sample.height, "of": height, "every": step}
    for key in ("correlations", "missing_patterns"):
        views[key]["sampled_rows"] = sampled
    views["duplicate_rows_sample"] = {
        **_no_duplicates(),
        "duplicate_rows": duplicate_rows,
        "note": "not listed for a file profiled by streaming",
    }
    return views


def _free_name(lazy: pl.LazyFrame, base: str) -> str:
    """``base``, with underscores added until no column of ``lazy`` has that name."""
    names = set(lazy.collect_schema().names())
    while base in names:
        base += "_"
    return base


def _dated(field: dict[str, Any]) -> bool:
    return field["data_type"] in TEMPORAL_KINDS or field["semantic_type"] == "date_string"


def _datetime_job(column: pl.Series) -> Callable[[], dict[str, Any] | None]:
    def job() -> dict[str, Any] | None:
        if column.dtype.is_temporal():
            return datetime_profile(column)
        parsed = text_datetime_profile(column)
        if parsed is None:
            return None
        values, plan = parsed
        return {**datetime_profile(values), "read_from_text": plan}

    return job


def _no_duplicates() -> dict[str, Any]:
    return {"duplicate_rows": 0, "groups_total": 0, "groups": []}
