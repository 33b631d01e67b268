"""Column statistics for the profiler, computed with Polars expressions over whole columns.

Two rounds of queries, each round collected concurrently, do all the work:

1. one ``select`` with every moment, quantile, count and length of every column, run in parallel with one
   hash ``group_by`` per column (distinct count, values seen once, entropy and the top-N counts come from
   that single aggregation — hashing first makes high-cardinality string columns ~3x cheaper) and a row
   hash for duplicate rows;
2. one ``select`` with what needs round 1 (IQR and z-score outlier counts, histograms with fixed bins,
   the original values behind the top-N hashes) and the row-level issue frames.

No Python loop touches rows; loops over columns only build expressions.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from agents.envelope import empty_row_level_issues

QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
NUMERIC_KINDS = {"integer", "float"}
CARDINALITY_SAMPLE_ROWS = 10_000
LOW_CARDINALITY_SAMPLE_SHARE = 0.2
HASHABLE_KINDS = {"integer", "float", "boolean", "string", "date", "datetime", "time", "duration"}


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


def compute_stats(
    frame: pl.DataFrame, settings: StatsSettings, on_first_round: Callable[[], None] | None = None
) -> ProfileStats:
    kinds = {name: column_kind(dtype) for name, dtype in frame.schema.items()}
    columns = [
        ColumnStats(name, kinds[name], str(dtype), frame.height, 0, top_n=settings.top_n_values)
        for name, dtype in frame.schema.items()
    ]
    lazy = frame.lazy()

    string_lengths = [
        pl.col(name).cast(pl.String).str.len_chars().alias(_length_column(index))
        for index, name in enumerate(frame.columns)
        if kinds[name] == "string"
    ]
    # Lengths are materialised once (a select with min/mean/max of the same expression computes it thrice).
    first_round = [lazy.with_columns(string_lengths).select(_first_round_expressions(frame, kinds) or [pl.len()])]
    grouped_columns = [index for index, column in enumerate(columns) if column.kind in HASHABLE_KINDS]
    low_cardinality = _low_cardinality_columns(frame, [columns[index].name for index in grouped_columns])
    unique_columns = _unique_integer_columns(frame, kinds, low_cardinality)
    for index in [index for index in grouped_columns if columns[index].name in unique_columns]:
        grouped_columns.remove(index)
        _fill_all_distinct(columns[index], frame)
    first_round += [
        _value_count_query(lazy, columns[index].name, settings.top_n_values, columns[index].name in low_cardinality)
        for index in grouped_columns
    ]
    results = collect_concurrently(first_round)
    scalars = results[0].row(0, named=True)
    value_counts = dict(zip(grouped_columns, results[1 : 1 + len(grouped_columns)], strict=True))
    distinct_row_hashes = _distinct_row_hashes(frame)

    top_hashes: dict[int, list[int]] = {}
    for index, column in enumerate(columns):
        _fill_first_round(column, index, scalars)
        if index in value_counts:
            top_hashes[index] = _fill_value_counts(column, value_counts[index].row(0, named=True))

    if on_first_round is not None:
        on_first_round()
    # One query per column: a single select with histograms and filters runs nearly single-threaded.
    per_column: dict[str, list[pl.Expr]] = {}
    for expression in _second_round_expressions(columns, top_hashes, settings):
        per_column.setdefault(expression.meta.output_name().split(":")[0], []).append(expression)
    second_round = [lazy.select(expressions) for expressions in per_column.values()]
    issue_queries = _row_issue_queries(lazy, columns, settings)
    if issue_queries:
        second_round.append(pl.concat(issue_queries).head(settings.max_stored_row_level_issues))
    second = collect_concurrently(second_round)
    selected = second[: len(per_column)]
    merged = pl.concat(selected, how="horizontal") if selected else pl.DataFrame()
    second_scalars = merged.row(0, named=True) if merged.width else {}
    for index, column in enumerate(columns):
        _fill_second_round(column, index, second_scalars, merged, settings)

    row_issues = second[-1] if issue_queries else empty_row_level_issues()
    duplicate_rows = frame.height - distinct_row_hashes
    if duplicate_rows > 0:  # a row-hash collision would overcount: confirm exactly, only when it matters
        duplicate_rows = frame.height - frame.n_unique()
    by_type = _row_issue_totals(columns)
    dataset = DatasetStats(
        rows=frame.height,
        columns=frame.width,
        missing_cells=sum(column.null_count for column in columns),
        duplicate_rows=duplicate_rows,
        row_level_issues_total=sum(by_type.values()),
        row_level_issues_by_type=by_type,
    )
    return ProfileStats(columns=columns, dataset=dataset, row_level_issues=row_issues)


def _distinct_row_hashes(frame: pl.DataFrame) -> int:
    if frame.height == 0 or frame.width == 0:
        return frame.height
    run_ids = frame.hash_rows().sort().rle_id()
    return int(run_ids.max()) + 1  # type: ignore[arg-type]


def _key(index: int, metric: str) -> str:
    return f"{index}:{metric}"


def _first_round_expressions(frame: pl.DataFrame, kinds: dict[str, str]) -> list[pl.Expr]:
    expressions: list[pl.Expr] = []
    for index, name in enumerate(frame.columns):
        kind = kinds[name]
        column = pl.col(name)
        expressions.append(column.null_count().alias(_key(index, "nulls")))
        if kind in NUMERIC_KINDS:
            values = column.cast(pl.Float64) if frame.schema[name].is_decimal() else column
            expressions += [
                values.min().cast(pl.Float64).alias(_key(index, "min")),
                values.max().cast(pl.Float64).alias(_key(index, "max")),
                values.mean().alias(_key(index, "mean")),
                values.std(ddof=1).alias(_key(index, "std")),
                values.var(ddof=1).alias(_key(index, "var")),
                values.sum().cast(pl.Float64).alias(_key(index, "sum")),
                values.skew(bias=False).alias(_key(index, "skew")),
                values.kurtosis(fisher=True, bias=False).alias(_key(index, "kurtosis")),
                values.quantile(list(QUANTILES.values()), "linear").alias(_key(index, "quantiles")),
                (values == 0).sum().alias(_key(index, "zeros")),
                (values < 0).sum().alias(_key(index, "negatives")),
            ]
            if kind == "float":
                expressions.append(values.is_infinite().sum().alias(_key(index, "infinite")))
                expressions.append(values.is_nan().sum().alias(_key(index, "nan")))
        elif kind == "string":
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


def collect_concurrently(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """Collect independent queries from a few threads (Polars releases the GIL). ``pl.collect_all`` runs
    them one after another here, and many of these small queries keep only one core busy."""
    if len(queries) <= 1:
        return [query.collect() for query in queries]
    with ThreadPoolExecutor(max_workers=min(len(queries), max(2, os.cpu_count() or 2))) as pool:
        return list(pool.map(lambda query: query.collect(), queries))


def _length_column(index: int) -> str:
    return f"__agensium_length_{index}"


def _unique_integer_columns(frame: pl.DataFrame, kinds: dict[str, str], low_cardinality: set[str]) -> set[str]:
    """Integer keys are common and Polars counts distinct integers very cheaply: a column whose values
    are all distinct needs no group_by at all."""
    candidates = [name for name in frame.columns if kinds[name] == "integer" and name not in low_cardinality]
    if not candidates:
        return set()
    row = frame.select(
        (pl.col(name).drop_nulls().n_unique() == pl.col(name).count()).alias(name) for name in candidates
    ).row(0, named=True)
    return {name for name, unique in row.items() if unique}


def _fill_all_distinct(column: ColumnStats, frame: pl.DataFrame) -> None:
    non_null = frame.height - frame[column.name].null_count()
    column.unique_count = non_null
    column.unique_once_count = non_null
    column.entropy_bits = math.log2(non_null) if non_null else None
    column.top_values = []
    column.top_fill = min(column.top_n, non_null)


def _low_cardinality_columns(frame: pl.DataFrame, names: list[str]) -> set[str]:
    """Columns whose evenly spaced sample has few distinct values: grouping them by value is cheap (the
    hash table stays in cache) and yields the top values directly. The choice only affects speed."""
    if not names or frame.height == 0:
        return set()
    step = max(1, frame.height // CARDINALITY_SAMPLE_ROWS)
    sample = frame.select(names).gather_every(step)
    ratios = sample.select(
        (pl.col(name).drop_nulls().n_unique() / pl.max_horizontal(pl.col(name).count(), 1)).alias(name)
        for name in names
    ).row(0, named=True)
    return {name for name, ratio in ratios.items() if ratio <= LOW_CARDINALITY_SAMPLE_SHARE}


def _value_count_query(lazy: pl.LazyFrame, name: str, top_n: int, low_cardinality: bool) -> pl.LazyFrame:
    """Distinct count, values seen once, entropy and the top-N counts from one group_by: by value for
    low-cardinality columns, by value hash otherwise (about 3x cheaper for long strings); the original
    values behind top hashes are looked up in the second round. Count ties go to the smaller key."""
    column = pl.col(name)
    counts = pl.col("count")
    if low_cardinality:
        grouped = lazy.select(column.alias("key")).drop_nulls()
        top = pl.struct("key", "count").top_k_by(["count", "key"], top_n, reverse=[False, True])
    else:
        grouped = lazy.select(pl.when(column.is_not_null()).then(column.hash()).alias("key")).drop_nulls()
        # Only repeated values compete (a top_k over a million single-count groups is the expensive part);
        # when fewer than N values repeat, the second round fills in with values seen once.
        repeated = counts > 1
        top = (
            pl.struct("key", "count")
            .filter(repeated)
            .top_k_by([counts.filter(repeated), pl.col("key").filter(repeated)], top_n, reverse=[False, True])
        )
    return (
        grouped.group_by("key")
        .len("count")
        .select(
            pl.len().alias("distinct"),
            (counts == 1).sum().alias("once"),
            counts.entropy(base=2).alias("entropy"),
            top.implode().alias("top"),
            pl.lit(low_cardinality).alias("by_value"),
        )
    )


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _fill_first_round(column: ColumnStats, index: int, row: dict[str, Any]) -> None:
    column.null_count = int(row[_key(index, "nulls")])
    if column.kind in NUMERIC_KINDS:
        quantiles = row[_key(index, "quantiles")] or [None] * len(QUANTILES)
        column.numeric = {
            "min": _finite(row[_key(index, "min")]),
            "max": _finite(row[_key(index, "max")]),
            "mean": _finite(row[_key(index, "mean")]),
            "std": _finite(row[_key(index, "std")]),
            "variance": _finite(row[_key(index, "var")]),
            "sum": _finite(row[_key(index, "sum")]),
            "skewness": _finite(row[_key(index, "skew")]),
            "kurtosis": _finite(row[_key(index, "kurtosis")]),
            "quantiles": {label: _finite(value) for label, value in zip(QUANTILES, quantiles, strict=True)},
            "zeros_count": int(row[_key(index, "zeros")] or 0),
            "negatives_count": int(row[_key(index, "negatives")] or 0),
            "infinite_count": int(row.get(_key(index, "infinite")) or 0),
            "nan_count": int(row.get(_key(index, "nan")) or 0),
        }
    elif column.kind == "string":
        column.lengths = {
            "min_length": row[_key(index, "len_min")],
            "mean_length": _finite(row[_key(index, "len_mean")]),
            "max_length": row[_key(index, "len_max")],
        }
    elif column.kind in {"date", "datetime", "time", "duration"}:
        column.temporal = {"min": _jsonable(row[_key(index, "min")]), "max": _jsonable(row[_key(index, "max")])}
    elif column.kind == "boolean":
        column.true_count = int(row[_key(index, "true")] or 0)


def _fill_value_counts(column: ColumnStats, row: dict[str, Any]) -> list[int]:
    column.unique_count = int(row["distinct"])
    column.unique_once_count = int(row["once"] or 0)
    column.entropy_bits = _finite(row["entropy"]) if column.unique_count else None
    if column.unique_count == 1:
        column.entropy_bits = 0.0
    top = row["top"] or []
    if row["by_value"]:
        column.top_values = [_top_value(column, item["key"], int(item["count"])) for item in top]
        return []
    column.top_values = [{"hash": item["key"], "count": int(item["count"])} for item in top]
    column.top_fill = min(column.unique_once_count, column.top_n - len(top)) if len(top) < column.top_n else 0
    return [item["key"] for item in top]


def _top_value(column: ColumnStats, value: Any, count: int) -> dict[str, Any]:
    return {
        "value": value if column.kind in NUMERIC_KINDS | {"boolean"} else _jsonable(value),
        "count": count,
        "percentage": _percentage(count, column.rows),
    }


def _second_round_expressions(
    columns: list[ColumnStats], top_hashes: dict[int, list[int]], settings: StatsSettings
) -> list[pl.Expr]:
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
        numeric = stats.numeric
        if stats.kind not in NUMERIC_KINDS or stats.non_null_count == 0 or numeric["min"] is None:
            continue
        values = column.cast(pl.Float64)
        lower, upper = _iqr_bounds(numeric, settings.outlier_iqr_multiplier)
        if lower is not None and upper is not None:
            expressions.append(((values < lower) | (values > upper)).sum().alias(_key(index, "outliers")))
        mean, std = numeric["mean"], numeric["std"]
        if mean is not None and std:
            is_z_outlier = (values - mean).abs() > settings.zscore_threshold * std
            expressions.append(is_z_outlier.sum().alias(_key(index, "zscore")))
            if lower is not None and upper is not None:
                only_z = is_z_outlier & (values >= lower) & (values <= upper)
                expressions.append(only_z.sum().alias(_key(index, "zscore_only")))
        if numeric["max"] is not None and numeric["max"] > numeric["min"]:
            expressions.append(
                values.filter(values.is_finite())
                .hist(bin_count=settings.histogram_bins, include_breakpoint=True)
                .implode()
                .alias(_key(index, "histogram"))
            )
    return expressions


def _iqr_bounds(numeric: dict[str, Any], multiplier: float) -> tuple[float | None, float | None]:
    q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
    if q1 is None or q3 is None:
        return None, None
    iqr = q3 - q1
    return q1 - multiplier * iqr, q3 + multiplier * iqr


def _fill_second_round(
    column: ColumnStats,
    index: int,
    row: dict[str, Any],
    result: pl.DataFrame,
    settings: StatsSettings,
) -> None:
    key = _key(index, "top")
    if key in result.columns:
        originals: pl.Series = result.get_column(key)[0]
        by_hash = dict(zip(originals.hash().to_list(), originals.to_list(), strict=True))
        column.top_values = [_top_value(column, by_hash.get(item["hash"]), item["count"]) for item in column.top_values]
    fill_key = _key(index, "top_fill")
    if fill_key in result.columns:
        column.top_values += [_top_value(column, value, 1) for value in result.get_column(fill_key)[0].to_list()]
    if column.kind not in NUMERIC_KINDS or not column.numeric:
        return
    numeric = column.numeric
    lower, upper = _iqr_bounds(numeric, settings.outlier_iqr_multiplier)
    q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
    numeric["iqr"] = None if q1 is None or q3 is None else q3 - q1
    numeric["outlier_lower_bound"] = lower
    numeric["outlier_upper_bound"] = upper
    numeric["outlier_count"] = int(row.get(_key(index, "outliers")) or 0)
    numeric["zscore_outlier_count"] = int(row.get(_key(index, "zscore")) or 0)
    numeric["zscore_only_outlier_count"] = int(row.get(_key(index, "zscore_only")) or 0)
    histogram = row.get(_key(index, "histogram"))
    if histogram is not None:
        bins = histogram
        column.histogram = {
            "bin_edges": [numeric["min"]] + [item["breakpoint"] for item in bins],
            "counts": [int(item["count"]) for item in bins],
        }
    elif numeric["min"] is not None:
        column.histogram = {"bin_edges": [numeric["min"], numeric["max"]], "counts": [column.non_null_count]}


def _row_issue_queries(lazy: pl.LazyFrame, columns: list[ColumnStats], settings: StatsSettings) -> list[pl.LazyFrame]:
    """Row-level issues as frames: missing values, IQR outliers and |z| outliers, row_index 1-based."""
    cap = settings.max_stored_row_level_issues
    if cap == 0:
        return []
    indexed = lazy.with_row_index("row_index", offset=1).with_columns(pl.col("row_index").cast(pl.Int64))
    queries: list[pl.LazyFrame] = []
    for stats in columns:
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
        if stats.kind not in NUMERIC_KINDS or not numeric or numeric.get("mean") is None:
            continue
        values = column.cast(pl.Float64)
        lower, upper = _iqr_bounds(numeric, settings.outlier_iqr_multiplier)
        is_iqr_outlier = (values < lower) | (values > upper) if lower is not None else pl.lit(False)
        q1, q3 = numeric["quantiles"]["p25"], numeric["quantiles"]["p75"]
        extreme = (values < q1 - 3 * (q3 - q1)) | (values > q3 + 3 * (q3 - q1)) if q1 is not None else pl.lit(False)
        as_text = column.cast(pl.String)
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
        if std:
            is_z_outlier = (values - mean).abs() > settings.zscore_threshold * std
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
