"""Column statistics for the profiler, computed with Polars expressions over whole columns.

Two rounds of queries, each round collected concurrently, do all the work:

1. one ``select`` with every moment, count and length of every column; one sort per numeric column (its
   non-null values, sorted once, give the quantiles, the distinct count, values seen once, entropy, top-N
   values, IQR and z-score outlier counts and an exact NumPy-style histogram, by binary search and run
   lengths); one hash ``group_by`` per text or temporal column (distinct count, values seen once, entropy
   and the top-N counts from that single aggregation — hashing first makes high-cardinality string columns
   ~3x cheaper); the distinct row hashes for duplicate rows, when an evenly spaced sample shows that no
   column can be a key (else they wait for round 2, which a key spares);
2. what needs round 1: the original values behind the top-N hashes, and the row-level issue frames.

Boolean columns need no grouping: their distribution follows from the true and null counts.
No Python loop touches rows; loops over columns only build expressions.

A *wide* frame (more than :data:`WIDE_COLUMNS` columns) of few rows would spend its time on the overhead of
tens of thousands of tiny queries, each planned over the whole width: its columns are taken in chunks of
about :data:`CHUNK_CELLS` cells, and the per-column queries of a chunk become one query over those columns
alone (each column's sorted runs of equal values as one list; their summaries from one ``group_by`` over
those lists in long form). A wide and tall frame keeps one query per column, over that column alone. The
numbers are those of a narrow frame, but for the last bits of sums (moments, entropy) taken in another
order (tests/agents/test_wide_files.py).

The same code runs over a :class:`Source`: an in-memory frame (the agent), or a lazy scan of a file
(``agents.profile.streaming``), whose queries run one at a time on the streaming engine, with the few
steps that engine would not stream (evenly spaced samples, filters inside a select, a capped
concatenation) rewritten as frame-level filters. Both give the same numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from agents.columns import narrow
from agents.envelope import empty_row_level_issues

QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
NUMERIC_KINDS = {"integer", "float"}
CARDINALITY_SAMPLE_ROWS = 10_000
LOW_CARDINALITY_SAMPLE_SHARE = 0.2
GROUPED_KINDS = {"string", "date", "datetime", "time", "duration"}
SAMPLE_INDEX = "__agensium_sample_index"
MAYBE_KEYS = "__agensium_maybe_keys"
WIDE_COLUMNS = 100
"""Above this many columns an in-memory frame is *wide*: its queries run on the in-memory engine (the
streaming engine, Polars' default, plans a query in time quadratic in its number of expressions), each over
the columns it reads only, and its per-column queries are grouped in chunks."""
CHUNK_CELLS = 200_000
"""A wide frame's per-column queries cover as many columns as hold about this many cells (at least one):
a 20-row file with 10,000 columns takes a few queries, one of 100,000 rows or more one per column."""
WORKERS = max(2, os.cpu_count() or 2)


T = TypeVar("T")


@dataclass(frozen=True)
class StatsSettings:
    top_n_values: int
    histogram_bins: int
    outlier_iqr_multiplier: float
    zscore_threshold: float
    max_stored_row_level_issues: int


@dataclass
class ColumnStats:
    name: str
    kind: str
    dtype: str
    rows: int
    null_count: int
    unique_count: int | None = None
    unique_once_count: int | None = None
    entropy_bits: float | None = None
    top_values: list[dict[str, Any]] = field(default_factory=list)
    numeric: dict[str, Any] = field(default_factory=dict)
    lengths: dict[str, Any] = field(default_factory=dict)
    temporal: dict[str, Any] = field(default_factory=dict)
    true_count: int | None = None
    histogram: dict[str, list[Any]] | None = None
    top_n: int = 10
    top_fill: int = 0  # values seen once that complete the top-N of a high-cardinality column

    @property
    def non_null_count(self) -> int:
        return self.rows - self.null_count


@dataclass
class DatasetStats:
    rows: int
    columns: int
    missing_cells: int
    duplicate_rows: int
    row_level_issues_total: int
    row_level_issues_by_type: dict[str, int]


@dataclass
class ProfileStats:
    columns: list[ColumnStats]
    dataset: DatasetStats
    row_level_issues: pl.DataFrame


def column_kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Datetime:
        return "datetime"
    if dtype == pl.Time:
        return "time"
    if dtype == pl.Duration:
        return "duration"
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return "string"
    return "other"


@dataclass(frozen=True)
class Source:
    """What the statistics are computed over. An in-memory frame: its queries run concurrently on the
    default engine. A lazy scan of a file (``streaming``): its queries run one at a time on the streaming
    engine, so memory stays bounded by one column's work (a sort or a hash table), not the file's size."""

    lazy: pl.LazyFrame
    schema: pl.Schema
    height: int
    frame: pl.DataFrame | None = None

    @classmethod
    def of_frame(cls, frame: pl.DataFrame) -> Source:
        return cls(frame.lazy(), frame.schema, frame.height, frame)

    @classmethod
    def of_lazy(cls, lazy: pl.LazyFrame) -> Source:
        height = int(lazy.select(pl.len()).collect(engine="streaming").item())
        return cls(lazy, lazy.collect_schema(), height)

    @property
    def streaming(self) -> bool:
        return self.frame is None

    @property
    def wide(self) -> bool:
        """An in-memory frame of more than :data:`WIDE_COLUMNS` columns."""
        return self.frame is not None and len(self.schema) > WIDE_COLUMNS

    @property
    def engine(self) -> Literal["streaming", "in-memory", "auto"]:
        if self.streaming:
            return "streaming"
        return "in-memory" if self.wide else "auto"

    def collect(self, query: pl.LazyFrame) -> pl.DataFrame:
        return query.collect(engine=self.engine)

    def columns(self, names: Sequence[str]) -> pl.LazyFrame:
        """The source for a query of the columns ``names``: a wide frame narrowed to them (planning a query
        over a frame takes time in its width, however few columns the query reads), else all of it."""
        if self.frame is None or not self.wide:
            return self.lazy
        return narrow(self.frame, names)

    def chunks(self, items: Sequence[T]) -> list[list[T]]:
        """``items`` (columns) grouped as one query takes them: on a wide frame about :data:`CHUNK_CELLS`
        cells' worth (at least one column), in at least two chunks per core; elsewhere one per query."""
        size = max(1, CHUNK_CELLS // max(self.height, 1)) if self.wide else 1
        size = min(size, max(1, math.ceil(len(items) / (2 * WORKERS))))
        return [list(items[start : start + size]) for start in range(0, len(items), size)]

    def collector(self, query: pl.LazyFrame) -> Callable[[], pl.DataFrame]:
        return partial(self.collect, query)

    def run(self, jobs: list[Callable[[], T]]) -> list[T]:
        return [job() for job in jobs] if self.streaming else run_concurrently(jobs)

    def every(self, columns: list[str], step: int) -> pl.DataFrame:
        """Every ``step``-th row of ``columns``, from the first (``gather_every``). On a scan this is a
        filter on the row number: ``gather_every`` is not streamed and would load the whole columns."""
        if self.frame is not None:
            return self.frame.select(columns).gather_every(step)
        numbered = self.lazy.select(columns).with_row_index(SAMPLE_INDEX)
        return self.collect(numbered.filter(pl.col(SAMPLE_INDEX) % step == 0).drop(SAMPLE_INDEX))


def compute_stats(
    frame: pl.DataFrame, settings: StatsSettings, on_first_round: Callable[[], None] | None = None
) -> ProfileStats:
    return compute_source_stats(Source.of_frame(frame), settings, on_first_round)


def compute_source_stats(
    source: Source, settings: StatsSettings, on_first_round: Callable[[], None] | None = None
) -> ProfileStats:
    columns = [
        ColumnStats(name, column_kind(dtype), str(dtype), source.height, 0, top_n=settings.top_n_values)
        for name, dtype in source.schema.items()
    ]
    top_hashes, distinct_row_hashes = _first_round(source, columns, settings)
    if on_first_round is not None:
        on_first_round()
    row_issues, distinct_row_hashes = _second_round(source, columns, top_hashes, settings, distinct_row_hashes)
    dataset = _dataset_stats(source, columns, distinct_row_hashes)
    return ProfileStats(columns=columns, dataset=dataset, row_level_issues=row_issues)


@dataclass(frozen=True)
class _FirstRoundJobs:
    jobs: list[Callable[[], Any]]  # the scalars query, [the row hashes,] the numeric chunks, the grouped chunks
    numeric_chunks: int
    grouped_columns: list[int]  # indexes of the columns whose values are counted
    row_hashes: bool  # whether the distinct row hashes are counted in this round


def _first_round(
    source: Source, columns: list[ColumnStats], settings: StatsSettings
) -> tuple[dict[int, list[int]], int | None]:
    """Scalars, numeric profiles and value counts, filled into ``columns``; returns the hashes of each
    grouped column's top values, which the second round looks up, and the distinct row hashes when they
    were counted in this round (None: left to the second)."""
    planned = _first_round_jobs(source, columns, settings)
    results = source.run(planned.jobs)
    scalars = results[0].row(0, named=True)
    distinct_row_hashes = results.pop(1) if planned.row_hashes else None
    grouped_rows = [row for rows in results[1 + planned.numeric_chunks :] for row in rows]
    value_counts = dict(zip(planned.grouped_columns, grouped_rows, strict=True))

    top_hashes: dict[int, list[int]] = {}
    for index, column in enumerate(columns):
        _fill_first_round(column, index, scalars)
        if index in value_counts:
            top_hashes[index] = _fill_value_counts(column, value_counts[index])
        elif column.kind == "boolean":
            _fill_boolean(column)
    return top_hashes, distinct_row_hashes


def _first_round_jobs(source: Source, columns: list[ColumnStats], settings: StatsSettings) -> _FirstRoundJobs:
    schema, lazy = source.schema, source.lazy
    kinds = {column.name: column.kind for column in columns}
    numeric_columns = [index for index, column in enumerate(columns) if column.kind in NUMERIC_KINDS]
    grouped_columns = [index for index, column in enumerate(columns) if column.kind in GROUPED_KINDS]
    low_cardinality, maybe_keys = _sampled_columns(
        source, [columns[index].name for index in numeric_columns + grouped_columns]
    )
    # With no column that may hold a distinct value in every row (a key, which makes every row distinct:
    # see _second_round), the rows are hashed now, beside the other queries, instead of after them.
    # The sample leaves booleans out, and a boolean column can be a key only in a file of at most two rows.
    row_hashes = not maybe_keys and not (source.height <= 2 and any(column.kind == "boolean" for column in columns))
    # String lengths of a low-cardinality column come from its groups; the others' are measured here,
    # materialised once (a select with min/mean/max of the same expression computes it thrice).
    measured = {name for name, kind in kinds.items() if kind == "string" and name not in low_cardinality}
    string_lengths = [
        pl.col(name).cast(pl.String).str.len_chars().alias(_length_column(index))
        for index, name in enumerate(schema)
        if name in measured
    ]
    jobs: list[Callable[[], Any]] = [
        source.collector(
            lazy.with_columns(string_lengths).select(_first_round_expressions(schema, kinds, measured) or [pl.len()])
        )
    ]
    if row_hashes:
        jobs.append(partial(_distinct_row_hashes, source))
    numeric_chunks = source.chunks([columns[index] for index in numeric_columns])
    for chunk in numeric_chunks:
        dtypes = [schema[column.name] for column in chunk]
        if len(chunk) == 1:
            low = chunk[0].name in low_cardinality
            jobs.append(partial(_profile_numeric, source, chunk[0], dtypes[0], settings, low))
        else:
            jobs.append(partial(_profile_numeric_chunk, source, chunk, dtypes, settings))
    jobs += [
        partial(_value_counts, source, chunk, settings.top_n_values, low_cardinality)
        for chunk in source.chunks([columns[index].name for index in grouped_columns])
    ]
    return _FirstRoundJobs(jobs, len(numeric_chunks), grouped_columns, row_hashes)


def _second_round(
    source: Source,
    columns: list[ColumnStats],
    top_hashes: dict[int, list[int]],
    settings: StatsSettings,
    distinct_row_hashes: int | None,
) -> tuple[pl.DataFrame, int]:
    """Top values' counts filled into ``columns``; returns the row-level issues and the distinct rows
    (``distinct_row_hashes`` when the first round counted them)."""
    # One query per column: a single select with filters over many columns runs nearly single-threaded.
    per_column: dict[str, list[pl.Expr]] = {}
    for expression in _second_round_expressions(columns, top_hashes):
        per_column.setdefault(expression.meta.output_name().split(":")[0], []).append(expression)
    issue_queries = _row_issue_queries(source, columns, settings)
    second_jobs = _lookup_jobs(source, columns, top_hashes, per_column)
    lookups = len(second_jobs)
    if issue_queries:
        if source.streaming:
            second_jobs.append(partial(_capped_issues, source, issue_queries, settings.max_stored_row_level_issues))
        else:
            second_jobs.append(source.collector(pl.concat(issue_queries).head(settings.max_stored_row_level_issues)))
    # A column whose values are all present and distinct (a key) means no two rows are equal.
    has_key = any(column.null_count == 0 and column.unique_count == source.height for column in columns)
    count_hashes = not has_key and distinct_row_hashes is None
    if count_hashes:
        second_jobs.append(partial(_distinct_row_hashes, source))
    second = source.run(second_jobs)
    if count_hashes:
        distinct_row_hashes = second.pop()
    elif has_key:
        distinct_row_hashes = source.height
    assert distinct_row_hashes is not None
    selected = second[:lookups]
    merged = pl.concat(selected, how="horizontal") if selected else pl.DataFrame()
    looked_up = set(merged.columns)
    for column_index, column in enumerate(columns):
        _fill_top_values(column, column_index, merged, looked_up)
    row_issues = second[-1] if issue_queries else empty_row_level_issues()
    return row_issues, distinct_row_hashes


def _lookup_jobs(
    source: Source,
    columns: list[ColumnStats],
    top_hashes: dict[int, list[int]],
    per_column: dict[str, list[pl.Expr]],
) -> list[Callable[[], Any]]:
    """The top-value lookups: one job per column when streaming, else per chunk of columns."""
    if source.streaming:
        return [partial(_top_value_lookups, source, columns, top_hashes, int(key)) for key in per_column]
    names = {key: columns[int(key)].name for key in per_column}
    return [
        partial(_select_chunk, source, [names[key] for key in keys], [e for key in keys for e in per_column[key]])
        for keys in source.chunks(list(per_column))
    ]


def _dataset_stats(source: Source, columns: list[ColumnStats], distinct_row_hashes: int) -> DatasetStats:
    height = source.height
    duplicate_rows = height - distinct_row_hashes
    # A row-hash collision would overcount: confirm exactly, only when it matters, and only in memory
    # (a distinct-rows table of a file larger than memory is what streaming avoids; with 64-bit hashes a
    # collision among n rows has probability about n^2 / 2^65).
    if duplicate_rows > 0 and source.frame is not None:
        duplicate_rows = height - source.frame.n_unique()
    by_type = _row_issue_totals(columns)
    return DatasetStats(
        rows=height,
        columns=len(source.schema),
        missing_cells=sum(column.null_count for column in columns),
        duplicate_rows=duplicate_rows,
        row_level_issues_total=sum(by_type.values()),
        row_level_issues_by_type=by_type,
    )


def _top_value_lookups(
    source: Source, columns: list[ColumnStats], top_hashes: dict[int, list[int]], index: int
) -> pl.DataFrame:
    """On a scan: what ``_second_round_expressions`` computes for column ``index``, as frame-level filters
    (which the streaming engine streams; a filter inside a select would load the whole column)."""
    stats = columns[index]
    name, column = stats.name, pl.col(stats.name)
    hashes = top_hashes.get(index)
    result: dict[str, pl.Series] = {}
    if hashes:
        repeated = source.collect(source.lazy.select(column).filter(column.hash().is_in(hashes)).unique(name))
        result[_key(index, "top")] = pl.Series([repeated.get_column(name)])
    if stats.top_fill:
        keep = column.is_not_null() & ~column.hash().is_in(hashes) if hashes else column.is_not_null()
        seen_once = source.collect(source.lazy.select(column).filter(keep).head(stats.top_fill))
        result[_key(index, "top_fill")] = pl.Series([seen_once.get_column(name)])
    return pl.DataFrame(result)


def _capped_issues(source: Source, queries: list[pl.LazyFrame], cap: int) -> pl.DataFrame:
    """On a scan: the row-issue queries one at a time, each limited to what the cap leaves (their
    concatenation under one ``head`` would buffer up to the cap from every query at once)."""
    frames: list[pl.DataFrame] = []
    remaining = cap
    for query in queries:
        if remaining <= 0:
            break
        frames.append(source.collect(query.head(remaining)))
        remaining -= frames[-1].height
    return pl.concat(frames) if frames else empty_row_level_issues()


def _distinct_row_hashes(source: Source) -> int:
    if source.height == 0 or not source.schema:
        return source.height
    if source.frame is not None:
        run_ids = source.frame.hash_rows().sort().rle_id()
        return int(run_ids.max()) + 1  # type: ignore[arg-type]
    hashes = source.lazy.select(pl.struct(pl.all()).hash().alias("hash"))
    return int(source.collect(hashes.select(pl.col("hash").n_unique())).item())


def _key(index: int, metric: str) -> str:
    return f"{index}:{metric}"


def _select_chunk(source: Source, names: list[str], expressions: list[pl.Expr]) -> pl.DataFrame:
    """One select over the columns ``names`` only; a chunk of several (a short frame) on the in-memory
    engine, which takes a select of thousands of expressions in its stride."""
    query = source.columns(names).select(expressions)
    return query.collect(engine="in-memory") if len(names) > 1 else source.collect(query)


def _split_row(row: dict[str, Any], count: int) -> Iterator[dict[str, Any]]:
    """The per-column dicts of a chunk's one-row result, whose keys are ``<position>:<metric>``."""
    parts: list[dict[str, Any]] = [{} for _ in range(count)]
    for key, value in row.items():
        position, _, metric = key.partition(":")
        parts[int(position)][metric] = value
    return iter(parts)


def _first_round_expressions(schema: pl.Schema, kinds: dict[str, str], measured: set[str]) -> list[pl.Expr]:
    expressions: list[pl.Expr] = []
    for index, name in enumerate(schema):
        kind = kinds[name]
        column = pl.col(name)
        expressions.append(column.null_count().alias(_key(index, "nulls")))
        if name in measured:
            lengths = pl.col(_length_column(index))
            expressions += [
                lengths.min().alias(_key(index, "len_min")),
                lengths.mean().alias(_key(index, "len_mean")),
                lengths.max().alias(_key(index, "len_max")),
            ]
        elif kind in {"date", "datetime", "time", "duration"}:
            expressions += [column.min().alias(_key(index, "min")), column.max().alias(_key(index, "max"))]
        elif kind == "boolean":
            expressions.append(column.sum().alias(_key(index, "true")))
    return expressions


def run_concurrently(jobs: list[Callable[[], T]]) -> list[T]:
    """Run independent jobs (query collects, mostly) from a few threads: Polars releases the GIL while it
    computes. ``pl.collect_all`` runs them one after another here, and many of these small queries keep
    only one core busy."""
    if len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=min(len(jobs), max(2, os.cpu_count() or 2))) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _length_column(index: int) -> str:
    return f"__agensium_length_{index}"


def _sampled_columns(source: Source, names: list[str]) -> tuple[set[str], bool]:
    """From an evenly spaced sample: the columns with few distinct values, for which grouping by value is
    cheap (the hash table stays in cache) and yields the top values directly, and whether any column may
    be a key (its sample holds no null and no repeated value; a key's would not). Both choices only affect
    speed."""
    if not names or source.height == 0:
        return set(), bool(names)
    sample = source.every(names, max(1, source.height // CARDINALITY_SAMPLE_ROWS))
    found = sample.select(
        *(
            (pl.col(name).drop_nulls().n_unique() / pl.max_horizontal(pl.col(name).count(), 1)).alias(name)
            for name in names
        ),
        pl.any_horizontal(
            (pl.col(name).null_count() == 0) & (pl.col(name).n_unique() == pl.len()) for name in names
        ).alias(MAYBE_KEYS),
    ).row(0, named=True)
    maybe_keys = bool(found.pop(MAYBE_KEYS))
    return {name for name, ratio in found.items() if ratio <= LOW_CARDINALITY_SAMPLE_SHARE}, maybe_keys


def _value_counts(source: Source, names: list[str], top_n: int, low_cardinality: set[str]) -> list[dict[str, Any]]:
    """The group summaries of text or temporal columns (:func:`_value_count_query`): one query for one
    column; for a chunk of several, one query for all their runs of equal values (sorted, which groups
    them as the group_by does) and one for all their summaries."""
    lazy = source.columns(names)
    schema = lazy.collect_schema()
    if len(names) == 1:
        query = _value_count_query(lazy, names[0], top_n, names[0] in low_cardinality)
        return [source.collect(query).row(0, named=True)]
    runs = []
    for name in names:
        column = pl.col(name)
        keys = column if name in low_cardinality else pl.when(column.is_not_null()).then(column.hash())
        runs.append(keys.drop_nulls().sort().rle().implode().alias(name))
    lists = lazy.select(runs).collect(engine="in-memory")
    return _runs_summaries(
        lists,
        top_n,
        lambda name, counts, values: _group_extra(counts, values, name in low_cardinality, schema[name]),
    )


def _value_count_query(lazy: pl.LazyFrame, name: str, top_n: int, low_cardinality: bool) -> pl.LazyFrame:
    """Distinct count, values seen once, entropy and the top-N counts from one group_by: by value for
    low-cardinality columns (with the string lengths, from the groups), by value hash otherwise (about 3x
    cheaper for long strings); the original values behind top hashes are looked up in the second round."""
    column = pl.col(name)
    if low_cardinality:
        runs = lazy.select(column.alias("value")).drop_nulls().group_by("value").len("len").sort("value")
    else:
        hashes = pl.when(column.is_not_null()).then(column.hash())
        runs = lazy.select(hashes.alias("value")).drop_nulls().group_by("value").len("len")
    extra = _group_extra(pl.col("len"), pl.col("value"), low_cardinality, lazy.collect_schema()[name])
    return _runs_summary_query(runs, top_n, extra)


def _group_extra(counts: pl.Expr, values: pl.Expr, by_value: bool, dtype: pl.DataType) -> list[pl.Expr]:
    """Whether the groups are by value, and for text grouped by value the string lengths."""
    extra = [pl.lit(by_value).alias("by_value")]
    if by_value and dtype in (pl.String, pl.Categorical, pl.Enum):
        lengths = values.cast(pl.String).str.len_chars()
        extra += [
            lengths.min().alias("len_min"),
            ((lengths * counts).sum() / counts.sum()).alias("len_mean"),
            lengths.max().alias("len_max"),
        ]
    return extra


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _lengths(minimum: Any, mean: Any, maximum: Any) -> dict[str, Any]:
    return {"min_length": minimum, "mean_length": _finite(mean), "max_length": maximum}


def _sqrt(variance: Any) -> float | None:
    value = _finite(variance)
    return math.sqrt(value) if value is not None and value >= 0 else None


def _fill_first_round(column: ColumnStats, index: int, row: dict[str, Any]) -> None:
    column.null_count = int(row[_key(index, "nulls")])
    if _key(index, "len_min") in row:
        column.lengths = _lengths(
            row[_key(index, "len_min")], row[_key(index, "len_mean")], row[_key(index, "len_max")]
        )
    elif column.kind in {"date", "datetime", "time", "duration"}:
        column.temporal = {"min": _jsonable(row[_key(index, "min")]), "max": _jsonable(row[_key(index, "max")])}
    elif column.kind == "boolean":
        column.true_count = int(row[_key(index, "true")] or 0)


def _fill_value_counts(column: ColumnStats, row: dict[str, Any]) -> list[int]:
    """Fill from a text or temporal column's group summary; returns the top-N hashes whose values the
    second round looks up (none when grouped by value)."""
    if row["by_value"]:
        _fill_distribution(column, row)
        if "len_min" in row:
            column.lengths = _lengths(row["len_min"], row["len_mean"], row["len_max"])
        return []
    _fill_distribution(column, {**row, "top": [], "top_ties": [], "fill": []})
    top = _ranked_top(row, column.top_n, fill=False)
    column.top_values = [{"hash": value, "count": count} for value, count in top]
    column.top_fill = min(column.unique_once_count or 0, column.top_n - len(top))
    return [value for value, _ in top]


def _top_value(column: ColumnStats, value: Any, count: int) -> dict[str, Any]:
    return {
        "value": value if column.kind in NUMERIC_KINDS | {"boolean"} else _jsonable(value),
        "count": count,
        "percentage": _percentage(count, column.rows),
    }


def _second_round_expressions(columns: list[ColumnStats], top_hashes: dict[int, list[int]]) -> list[pl.Expr]:
    """The original values behind the top-N hashes of text and temporal columns, and the fill-ins."""
    expressions: list[pl.Expr] = []
    for index, stats in enumerate(columns):
        column = pl.col(stats.name)
        hashes = top_hashes.get(index)
        if hashes:
            repeated = column.filter(column.hash().is_in(hashes)).unique(maintain_order=True)
            expressions.append(repeated.implode().alias(_key(index, "top")))
        if stats.top_fill:
            seen_once = (
                column.filter(column.is_not_null() & ~column.hash().is_in(hashes)) if hashes else column.drop_nulls()
            )
            expressions.append(seen_once.head(stats.top_fill).implode().alias(_key(index, "top_fill")))
    return expressions


def _fill_top_values(column: ColumnStats, index: int, result: pl.DataFrame, available: set[str]) -> None:
    key = _key(index, "top")
    if key in available:
        originals: pl.Series = result.get_column(key)[0]
        by_hash = dict(zip(originals.hash().to_list(), originals.to_list(), strict=True))
        column.top_values = [_top_value(column, by_hash.get(item["hash"]), item["count"]) for item in column.top_values]
    fill_key = _key(index, "top_fill")
    if fill_key in available:
        column.top_values += [_top_value(column, value, 1) for value in result.get_column(fill_key)[0].to_list()]


def _profile_numeric(
    source: Source, column: ColumnStats, dtype: pl.DataType, settings: StatsSettings, low_cardinality: bool
) -> None:
    """Everything about a numeric column but its null count, in one worker thread: the moments, then its
    distinct non-null values in ascending order with their counts, from which every order statistic
    follows (quantiles, distinct/once/entropy/top-N, outlier counts, histogram) without touching the rows
    again. A low-cardinality column is grouped by value (cheap: the hash table stays in cache); any other
    is sorted once and run-length encoded. NaN sorts last and counts as one distinct value."""
    lazy = source.columns([column.name])
    values = _numeric_values(column.name, dtype)
    moments = lazy.select(_moments(values, dtype))
    if low_cardinality:
        query = lazy.select(values.alias("value")).group_by("value").len("len").sort("value")
    else:
        query = lazy.select(values.sort().rle().alias("runs")).unnest("runs")
    queries = [moments, query.select(pl.col("value"), pl.col("len").cast(pl.Int64))]
    if source.streaming:  # one at a time: the sort's memory is not added to another query's
        row, runs = (source.collect(query) for query in queries)
    else:
        row, runs = pl.collect_all(queries)
    summary = _runs_summary(runs.lazy(), settings.top_n_values)
    _fill_numeric(column, row.row(0, named=True), runs, summary, settings)


def text_number_stats(source: Source, name: str, numbers: pl.Expr, settings: StatsSettings) -> tuple[ColumnStats, int]:
    """The numeric statistics (``numeric``, ``histogram``) of a text column's numbers as ``numbers`` reads them
    (a Float64 expression of the column, null where a value is no such number: a decimal comma's,
    agents.decimal_comma.parse_decimal_comma), and how many values read; computed as a float column's are, over
    the whole column (one query over the read values, on the source's engine)."""
    read = source.columns([name]).select(numbers.cast(pl.Float64).alias(name))
    if source.frame is not None:
        one = Source.of_frame(read.collect())
    else:
        one = Source(read, pl.Schema({name: pl.Float64()}), source.height)
    column = ColumnStats(name, "float", "Float64", source.height, 0, top_n=settings.top_n_values)
    _profile_numeric(one, column, pl.Float64(), settings, low_cardinality=False)
    counted = int(one.collect(one.lazy.select(pl.col(name).count())).item())
    column.null_count = source.height - counted
    return column, counted


def _numeric_values(name: str, dtype: pl.DataType) -> pl.Expr:
    return (pl.col(name).cast(pl.Float64) if dtype.is_decimal() else pl.col(name)).drop_nulls()


def _moments(values: pl.Expr, dtype: pl.DataType) -> list[pl.Expr]:
    """The moments of a column's non-null ``values`` (of ``dtype``); integers summed exactly, in 128 bits (an Int64
    sum wraps around past 9223372036854775807)."""
    return [
        values.mean().alias("mean"),
        values.var(ddof=1).alias("var"),
        (values.cast(pl.Int128).sum() if dtype.is_integer() else values.sum().cast(pl.Float64)).alias("sum"),
        values.skew(bias=False).alias("skew"),
        values.kurtosis(fisher=True, bias=False).alias("kurtosis"),
    ]


def _profile_numeric_chunk(
    source: Source, chunk: list[ColumnStats], dtypes: list[pl.DataType], settings: StatsSettings
) -> None:
    """:func:`_profile_numeric` for a chunk of columns of a short frame: one query for all their moments
    and runs of equal values (sorted, a list per column), one for all their runs summaries."""
    expressions: list[pl.Expr] = []
    for position, (column, dtype) in enumerate(zip(chunk, dtypes, strict=True)):
        values = _numeric_values(column.name, dtype)
        expressions += [moment.name.prefix(f"{position}:") for moment in _moments(values, dtype)]
        expressions.append(values.sort().rle().implode().alias(str(position)))
    result = source.columns([column.name for column in chunk]).select(expressions).collect(engine="in-memory")
    lists = result.select(str(position) for position in range(len(chunk)))
    summaries = _runs_summaries(lists, settings.top_n_values, lambda _name, _counts, _values: [], int_counts=True)
    moments = _split_row(result.drop(lists.columns).row(0, named=True), len(chunk))
    for position, (column, moment, summary) in enumerate(zip(chunk, moments, summaries, strict=True)):
        runs = result.get_column(str(position))[0].struct.unnest()
        _fill_numeric(column, moment, runs.select("value", pl.col("len").cast(pl.Int64)), summary, settings)


def _fill_numeric(
    column: ColumnStats, moment: dict[str, Any], runs: pl.DataFrame, summary: dict[str, Any], settings: StatsSettings
) -> None:
    column.numeric = {
        "min": None,
        "max": None,
        "mean": _finite(moment["mean"]),
        "std": _sqrt(moment["var"]),  # what Polars' std computes, without another pass
        "variance": _finite(moment["var"]),
        "sum": moment["sum"] if isinstance(moment["sum"], int) else _finite(moment["sum"]),  # an integer's exactly
        "skewness": _finite(moment["skew"]),
        "kurtosis": _finite(moment["kurtosis"]),
        "quantiles": dict.fromkeys(QUANTILES),
        "zeros_count": 0,
        "negatives_count": 0,
        "infinite_count": 0,
        "nan_count": 0,
    }
    _fill_from_runs(column, runs, summary, settings)


def _runs_summary(runs: pl.LazyFrame, top_n: int) -> dict[str, Any]:
    return _runs_summary_query(runs, top_n).collect().row(0, named=True)


def _runs_summaries(
    lists: pl.DataFrame,
    top_n: int,
    extra: Callable[[str, pl.Expr, pl.Expr], list[pl.Expr]],
    *,
    int_counts: bool = False,
) -> list[dict[str, Any]]:
    """:func:`_runs_summary_query` of each column of ``lists``, a one-row frame holding a list of runs
    (``rle`` structs) per column: the lists of one dtype in long form, one ``group_by`` by column (a dozen
    expressions however many columns). ``extra(name, counts, values)`` adds metrics; the columns of one
    dtype must take the same (true of the callers: whether values are hashed shows in their dtype)."""
    by_dtype: dict[pl.DataType, list[str]] = {}
    for name, dtype in lists.schema.items():
        by_dtype.setdefault(dtype, []).append(name)
    summaries: dict[str, dict[str, Any]] = {}
    for names in by_dtype.values():
        runs = lists.select(names).unpivot(variable_name="column", value_name="runs").explode("runs").unnest("runs")
        counts, values = pl.col("len").cast(pl.Int64) if int_counts else pl.col("len"), pl.col("value")
        metrics = _runs_summary_expressions(counts, values, top_n, grouped=True) + extra(names[0], counts, values)
        grouped = runs.drop_nulls("len").group_by("column", maintain_order=True).agg(metrics)
        for row in grouped.iter_rows(named=True):
            summaries[row.pop("column")] = row
        if any(name not in summaries for name in names):  # a column without values (empty lists) has no group
            empty = runs.clear().select(
                _runs_summary_expressions(counts, values, top_n) + extra(names[0], counts, values)
            )
            for name in names:
                summaries.setdefault(name, empty.row(0, named=True))
    return [summaries[name] for name in lists.columns]


def _runs_summary_query(runs: pl.LazyFrame, top_n: int, extra: Sequence[pl.Expr] = ()) -> pl.LazyFrame:
    """Distinct count, values seen once, entropy and top-N of a frame of per-value counts (``len``) and
    values (``value``; ascending where values seen once complete the top): count ties go to the smaller
    value, and when fewer than N values repeat, the smallest values seen once complete the list. Entropy
    is log2(n) - sum(c * log2(c)) / n, where only repeated values contribute to the sum (no logarithm per
    value of a mostly distinct column)."""
    return runs.select(*_runs_summary_expressions(pl.col("len"), pl.col("value"), top_n), *extra)


def _runs_summary_expressions(counts: pl.Expr, values: pl.Expr, top_n: int, *, grouped: bool = False) -> list[pl.Expr]:
    """The expressions of :func:`_runs_summary_query`; ``grouped``: for ``group_by().agg`` (where a list
    result needs no ``implode``)."""

    def as_list(expression: pl.Expr) -> pl.Expr:
        return expression if grouped else expression.implode()

    repeated = counts > 1
    repeated_counts = counts.filter(repeated).cast(pl.Float64)
    kth = counts.filter(repeated).top_k(top_n).min()
    ties = counts == kth
    runs = pl.struct(counts.alias("len"), values.alias("value"))
    return [
        counts.len().alias("distinct"),
        (counts == 1).sum().alias("once"),
        counts.sum().cast(pl.Int64).alias("total"),
        (repeated_counts * repeated_counts.log(2)).sum().alias("spread"),
        # The N-th largest count: every run above it is in the top, and the smallest values among the
        # runs equal to it complete it: exact, and far cheaper than a top-k over two keys.
        as_list(runs.filter(counts > kth)).alias("top"),
        as_list(runs.filter(ties).bottom_k_by(values.filter(ties), top_n)).alias("top_ties"),
        as_list(values.filter(counts == 1).head(top_n)).alias("fill"),
    ]


def _fill_from_runs(column: ColumnStats, runs: pl.DataFrame, summary: dict[str, Any], settings: StatsSettings) -> None:
    """Everything order-based of a numeric column from its runs of equal values (ascending), each value
    weighted by its count; quantiles, outliers and the histogram are of the non-NaN values."""
    numeric = column.numeric
    _fill_distribution(column, summary)
    # NumPy arrays: the same IEEE arithmetic as Polars, at a few microseconds per operation instead of tens
    # (a file of 10,000 short columns makes that the profiler's cost).
    values = runs["value"].cast(pl.Float64).to_numpy()
    counts = runs["len"].cast(pl.Int64).to_numpy()
    if len(values) and math.isnan(values[-1]):  # NaN sorts last, as one run
        numeric["nan_count"] = int(counts[-1])
        values, counts = values[:-1], counts[:-1]
    if len(values):
        numeric["min"], numeric["max"] = _finite(values[0]), _finite(values[-1])
    numeric["zeros_count"] = int(counts[values == 0].sum())
    numeric["negatives_count"] = int(counts[values < 0].sum())
    numeric["infinite_count"] = int(counts[np.isinf(values)].sum())
    ends = np.cumsum(counts)  # ends[i]: how many values are <= values[i]
    numeric["quantiles"] = {label: _weighted_quantile(values, ends, q) for label, q in QUANTILES.items()}
    lower, upper = _iqr_bounds(numeric, settings.outlier_iqr_multiplier)
    q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
    numeric["iqr"] = None if q1 is None or q3 is None else q3 - q1
    numeric["outlier_lower_bound"] = lower
    numeric["outlier_upper_bound"] = upper
    is_iqr_outlier = (values < lower) | (values > upper) if lower is not None and upper is not None else None
    numeric["outlier_count"] = int(counts[is_iqr_outlier].sum()) if is_iqr_outlier is not None else 0
    mean, std = numeric["mean"], numeric["std"]
    numeric["zscore_outlier_count"] = numeric["zscore_only_outlier_count"] = 0
    if mean is not None and std:
        is_z_outlier = np.abs(values - mean) > settings.zscore_threshold * std
        numeric["zscore_outlier_count"] = int(counts[is_z_outlier].sum())
        only_z = is_z_outlier & ~is_iqr_outlier if is_iqr_outlier is not None else is_z_outlier
        numeric["zscore_only_outlier_count"] = int(counts[only_z].sum())
    column.histogram = _weighted_histogram(values, counts, settings.histogram_bins)
    numeric["extremes"] = _extremes(runs["value"], values, counts, column.kind == "integer")
    if column.kind == "integer" and len(values) and max(-values[0], values[-1]) >= FLOAT_EXACT_INTEGERS:
        _exact_integer_order_statistics(numeric, runs["value"], ends)


FLOAT_EXACT_INTEGERS = 2.0**53
"""Integers up to this magnitude are exact as doubles; an integer column reaching it (snowflake ids, 19-digit order
numbers) gets its min, max and quantiles from the integers themselves."""


def _exact_integer_order_statistics(numeric: dict[str, Any], original: pl.Series, ends: np.ndarray) -> None:
    """An integer column's min, max and quantiles as exact ints, from ``original`` (its ascending runs) where the
    doubles above lose digits: the same ranks and linear interpolation, in integer arithmetic (a fractional
    interpolation rounds to the nearest double, as before)."""
    numeric["min"], numeric["max"] = int(original[0]), int(original[len(original) - 1])
    total = int(ends[-1])
    quantiles = numeric["quantiles"]
    for label, quantile in QUANTILES.items():
        position = quantile * (total - 1)  # the ranks of _weighted_quantile
        below = math.floor(position)
        low_index, high_index = np.searchsorted(ends, [below, min(below + 1, total - 1)], side="right").tolist()
        low, high = int(original[low_index]), int(original[high_index])
        value = low + (high - low) * Fraction(position - below)
        quantiles[label] = int(value) if value.denominator == 1 else float(value)
    numeric["iqr"] = quantiles["p75"] - quantiles["p25"]


EXTREMES = 5


def _extremes(original: pl.Series, values: np.ndarray, counts: np.ndarray, integer: bool) -> dict[str, Any]:
    """The :data:`EXTREMES` lowest and highest finite values of ascending runs with their counts (highest
    first); an integer column's values as ints, read from ``original`` (a float loses digits past 2**53)."""
    finite = np.flatnonzero(np.isfinite(values))
    picks = {"lowest": finite[:EXTREMES], "highest": finite[::-1][:EXTREMES]}
    return {
        end: [
            {"value": int(original[i]) if integer else float(values[i]), "count": int(counts[i])}
            for i in indexes.tolist()
        ]
        for end, indexes in picks.items()
    }


def _fill_distribution(column: ColumnStats, runs: dict[str, Any]) -> None:
    column.unique_count = int(runs["distinct"])
    column.unique_once_count = int(runs["once"] or 0)
    total = int(runs["total"] or 0)
    spread = float(runs["spread"] or 0.0)
    column.entropy_bits = max(0.0, math.log2(total) - spread / total) if total else None
    column.top_values = [_top_value(column, value, count) for value, count in _ranked_top(runs, column.top_n)]


def _ranked_top(runs: dict[str, Any], top_n: int, fill: bool = True) -> list[tuple[Any, int]]:
    ranked = sorted(runs["top"] or [], key=_by_count_then_value) + sorted(runs["top_ties"] or [], key=_by_value)
    top = [(item["value"], int(item["len"])) for item in ranked[:top_n]]
    if fill:
        top += [(value, 1) for value in (runs["fill"] or [])[: top_n - len(top)]]
    return top


def _by_value(item: dict[str, Any]) -> Any:
    return item["value"]


def _by_count_then_value(item: dict[str, Any]) -> tuple[int, Any]:
    return -int(item["len"]), item["value"]


def _weighted_quantile(values: np.ndarray, ends: np.ndarray, quantile: float) -> float | None:
    """Linear interpolation between the two nearest ranks (NumPy's default) of the values the runs
    stand for: the value of 0-based rank k is that of the first run whose end exceeds k."""
    if len(values) == 0:
        return None
    total = int(ends[-1])
    position = quantile * (total - 1)
    below = math.floor(position)
    low_index, high_index = np.searchsorted(ends, [below, min(below + 1, total - 1)], side="right").tolist()
    low, high = float(values[low_index]), float(values[high_index])
    fraction = position - below
    value = low if fraction == 0 or high == low else low + (high - low) * fraction
    return _finite(value)


def _weighted_histogram(values: np.ndarray, counts: np.ndarray, bins: int) -> dict[str, list[Any]] | None:
    """``numpy.histogram(values, bins)`` of the finite values: equal-width bins from min to max, each
    half-open [a, b) except the last; bin boundaries found by binary search on the ascending runs."""
    if len(values) and not np.isfinite(values).all():
        finite = np.isfinite(values)
        values, counts = values[finite], counts[finite]
    if len(values) == 0:
        return None
    total = int(counts.sum())
    minimum, maximum = float(values[0]), float(values[-1])
    if maximum == minimum:
        return {"bin_edges": [minimum, maximum], "counts": [total]}
    step = (maximum - minimum) / bins
    edges = [minimum + position * step for position in range(bins)] + [maximum]
    inner = np.searchsorted(values, np.array(edges[1:-1], dtype=np.float64), side="left")
    before = np.concatenate([[0], np.cumsum(counts)])  # before[i]: values below run i
    bounds = [0, *before[inner].tolist(), total]
    return {"bin_edges": edges, "counts": [bounds[i + 1] - bounds[i] for i in range(bins)]}


def _fill_boolean(column: ColumnStats) -> None:
    true_count = column.true_count or 0
    counts = {False: column.non_null_count - true_count, True: true_count}
    present = {value: count for value, count in counts.items() if count}
    runs = pl.LazyFrame(
        {"len": list(present.values()), "value": list(present.keys())}, schema={"len": pl.UInt32, "value": pl.Boolean}
    )
    _fill_distribution(column, _runs_summary(runs, column.top_n))


def _iqr_bounds(numeric: dict[str, Any], multiplier: float) -> tuple[float | None, float | None]:
    q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
    if q1 is None or q3 is None:
        return None, None
    iqr = q3 - q1
    return q1 - multiplier * iqr, q3 + multiplier * iqr


def _row_issue_queries(source: Source, columns: list[ColumnStats], settings: StatsSettings) -> list[pl.LazyFrame]:
    """Row-level issues as frames: missing values, IQR outliers and |z| outliers, row_index 1-based."""
    cap = settings.max_stored_row_level_issues
    if cap == 0:
        return []
    queries: list[pl.LazyFrame] = []
    row_index = pl.int_range(1, source.height + 1, dtype=pl.Int64, eager=True) if source.wide else None
    for stats in columns:
        indexed = _indexed(source, stats.name, row_index)
        column = pl.col(stats.name)
        if stats.null_count:
            queries.append(
                _issue_frame(
                    indexed.filter(column.is_null()),
                    stats.name,
                    "missing_value",
                    pl.lit("warning"),
                    pl.lit(f"'{stats.name}' is missing"),
                    pl.lit(None, pl.String),
                    cap,
                )
            )
        numeric = stats.numeric
        # The counts are known: a query runs only for a kind of outlier that exists.
        if (
            stats.kind not in NUMERIC_KINDS
            or not numeric
            or not numeric["outlier_count"] + numeric["zscore_outlier_count"]
        ):
            continue
        values = column.cast(pl.Float64)
        lower, upper = _iqr_bounds(numeric, settings.outlier_iqr_multiplier)
        is_iqr_outlier = (values < lower) | (values > upper) if lower is not None else pl.lit(False)
        if numeric["nan_count"]:  # Polars orders NaN above every number: NaN is no outlier, as in the counts
            is_iqr_outlier = is_iqr_outlier & values.is_not_nan()
        q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
        extreme = (values < q1 - 3 * (q3 - q1)) | (values > q3 + 3 * (q3 - q1)) if q1 is not None else pl.lit(False)
        as_text = column.cast(pl.String)
        if numeric["outlier_count"]:
            queries.append(
                _issue_frame(
                    indexed.filter(is_iqr_outlier),
                    stats.name,
                    "outlier_iqr",
                    pl.when(extreme).then(pl.lit("critical")).otherwise(pl.lit("warning")),
                    pl.concat_str(
                        pl.lit(f"'{stats.name}' = "),
                        as_text,
                        pl.lit(f" is outside the IQR fences [{_short(lower)}, {_short(upper)}]"),
                    ),
                    as_text,
                    cap,
                )
            )
        std, mean = numeric["std"], numeric["mean"]
        if numeric["zscore_only_outlier_count"] and mean is not None and std:
            is_z_outlier = (values - mean).abs() > settings.zscore_threshold * std
            if numeric["nan_count"]:
                is_z_outlier = is_z_outlier & values.is_not_nan()
            queries.append(
                _issue_frame(
                    indexed.filter(is_z_outlier & ~is_iqr_outlier),
                    stats.name,
                    "outlier_zscore",
                    pl.lit("info"),
                    pl.concat_str(
                        pl.lit(f"'{stats.name}' = "),
                        as_text,
                        pl.lit(f" is more than {settings.zscore_threshold:g} standard deviations from the mean"),
                    ),
                    as_text,
                    cap,
                )
            )
    return queries


def _indexed(source: Source, name: str, row_index: pl.Series | None) -> pl.LazyFrame:
    """The column ``name`` with ``row_index`` (1-based): alone for a wide frame (see ``Source.columns``),
    else the whole source."""
    if source.frame is None or row_index is None:
        return source.lazy.with_row_index("row_index", offset=1).with_columns(pl.col("row_index").cast(pl.Int64))
    return pl.DataFrame([row_index.alias("row_index"), source.frame.get_column(name)]).lazy()


def _issue_frame(
    rows: pl.LazyFrame, column: str, issue_type: str, severity: pl.Expr, message: pl.Expr, value: pl.Expr, cap: int
) -> pl.LazyFrame:
    return rows.head(cap).select(
        pl.col("row_index"),
        pl.lit(column, pl.String).alias("column"),
        pl.lit(issue_type, pl.String).alias("issue_type"),
        severity.cast(pl.String).alias("severity"),
        message.cast(pl.String).alias("message"),
        value.cast(pl.String).alias("value"),
    )


def _row_issue_totals(columns: list[ColumnStats]) -> dict[str, int]:
    """True totals from the counts, independent of the storage cap."""
    missing = sum(column.null_count for column in columns)
    iqr = sum(column.numeric.get("outlier_count", 0) for column in columns if column.numeric)
    zscore = sum(column.numeric.get("zscore_only_outlier_count", 0) for column in columns if column.numeric)
    totals = {"missing_value": missing, "outlier_iqr": iqr, "outlier_zscore": zscore}
    return {issue_type: count for issue_type, count in totals.items() if count}


def _short(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _percentage(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
