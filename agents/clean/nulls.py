"""The ``null-handler`` agent: drops rows or fills each column's missing values by a strategy.

Parameters and summary metrics follow Agensium (reference/agents.md §1.5). What it does, precisely:

- ``global_strategy = drop_rows``: every row with a missing value in any data column is removed (reason
  "row has missing values in: a, b"); column strategies are then moot.
- ``column_specific``: each column *with missing values* gets its strategy from ``column_strategies``, else
  nothing: by default no value is invented (PRODUCT.md "Defaults that never destroy data"); the suggestion
  for each column is reported and proposed (``data.proposals``). With ``apply_suggested_strategies`` the
  column gets Agensium's suggestion: > 70 % missing drop_column; > 50 % knn_imputation
  for numeric columns, mode otherwise; numeric median when |mean - median| / std > 0.5, else mean; date and
  datetime forward_fill; text, boolean and anything else mode, except identifier-like text (more than half
  of the values distinct, e.g. e-mails), which is left as is. Columns without missing values are never
  touched. The steps run in this order: drop_column, drop_rows (reason names the drop_rows columns empty in
  the row), then the fills, each computed on the rows left after the drops:
  mean / median of the finite values, as they are: an integer column filled so becomes Float64 (as pandas'
  ``fillna`` and Polars' ``fill_null`` of the statistic make it, and as transform-my-data's fill does), and its
  log message says so. mode: the most frequent value, ties to the smallest. forward_fill / backward_fill copy the
  previous / next value in file order; a leading / trailing gap stays empty. constant: ``fill_values``.
  knn_imputation: scikit-learn ``KNNImputer(n_neighbors=knn_neighbors)`` over every numeric column with
  finite values (the data as it came in: values imputed by this agent are not features); an integer target
  becomes Float64 as with mean and median. The neighbour search is bounded: the fit cap is ``knn_max_rows``, lowered
  so that rows to impute x rows fitted stays within ``KNN_PAIR_BUDGET`` (2e7, but at least 1,000 rows
  fitted). A frame within the cap is exactly ``fit_transform`` on all rows; a larger one is fitted on a
  random sample (seed 0) of that many complete rows (all rows if fewer than k are complete) and the rows
  with gaps are imputed in chunks; with more than ``knn_max_imputed_rows`` rows to impute it falls back to
  the median and says so (``data.knn``). mean, median and knn_imputation on a non-numeric column use mode
  instead (logged).
- Rows are never added; the row index column is never changed.
- A primary too large for memory (``inputs.scan``) gets the same result, its output as a lazy plan over the scan
  (``AgentResult.scan``): the counts on Polars' streaming engine, a mean, median or standard deviation from the
  one column's values (so that the float sums are the in-memory run's, to the last bit), a mode or a count of
  distinct values from a streaming group_by. knn_imputation is refused there (it needs the whole data in memory),
  unless the in-memory run would fall back to the median too (more rows to impute than ``knn_max_imputed_rows``,
  or no usable feature).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from agents.clean.common import clean_result, effectiveness, no_removed_rows, removed_rows, retention
from agents.clean.streamed_queries import (
    collect_streamed_issues,
    column_aggregates,
    numbered,
    scanned_rows,
    streamed_row,
)
from agents.columns import (
    is_date_like,
    is_numeric,
    require_columns,
    with_row_index,
)
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    ROW_INDEX_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.errors import InvalidParametersError
from agents.findings import (
    Findings,
    card_status,
    collect_row_issues,
    issues_where,
    names_where,
    proposal,
)
from agents.formatting import (
    format_number,
    pct,
    plain_number,
    plain_value,
)
from agents.params.null_handler import NullHandlerParams

AGENT_ID = "null-handler"
AGENT_NAME = "Null Handler"
DROP_COLUMN_PERCENT = 70.0
KNN_PERCENT = 50.0
SKEW_RATIO = 0.5
KNN_CHUNK_ROWS = 10_000
KNN_PAIR_BUDGET = 20_000_000  # rows to impute x rows fitted: a few seconds of nan-euclidean search
KNN_MIN_FIT_ROWS = 1_000
STATISTIC_STRATEGIES = {"mean", "median", "mode"}
IDENTIFIER_DISTINCT_RATIO = 0.5  # text columns more distinct than this are not filled by suggestion
NUMERIC_ONLY = {"mean", "median", "knn_imputation"}
COMPUTED_STRATEGIES = NUMERIC_ONLY  # their fill value is computed, not a value of the column: an integer one
# becomes Float64 (its mean 34.333... is written as it is, not rounded to 34)


@dataclass
class Plan:
    column: str
    strategy: str
    source: str  # explicit | suggested | global | none
    note: str | None = None
    fill_value: Any = None
    made_decimal: bool = False  # an integer column filled with a computed value, now Float64


def run(inputs: AgentInputs, params: NullHandlerParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        return _run_streamed(inputs, inputs.scan, params, progress)
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    columns = data_columns(frame)
    constants = _fill_constants(frame, params)
    progress(0.0, f"Analysing missing values in {len(columns)} columns")

    null_counts: dict[str, int] = frame.select(pl.col(columns).null_count()).row(0, named=True) if columns else {}
    original_nulls = int(sum(null_counts.values()))
    with_nulls = [name for name in columns if null_counts[name]]
    analysis = _null_analysis(frame, with_nulls, null_counts)
    if params.global_strategy == "drop_rows":
        plans = [Plan(name, "drop_rows", "global") for name in with_nulls]
    else:
        plans = [_plan(name, frame[name].dtype, analysis[name], params) for name in with_nulls]

    progress(0.2, "Dropping columns and rows")
    work, removed, row_issues = _drop(frame, plans)

    fill_plans = [plan for plan in plans if plan.strategy not in {"drop_column", "drop_rows", "none"}]
    progress(0.35, f"Filling missing values in {len(fill_plans)} columns")
    knn_values, knn_info = _knn_or_median(work, fill_plans, params)
    statistics = _fill_statistics(work, [plan for plan in fill_plans if plan.strategy in STATISTIC_STRATEGIES])
    progress(0.8, "Writing the filled columns")
    fills = _fill_exprs(work.schema, fill_plans, statistics, constants, knn_values)
    was_null = {name: f"__was_null_{index}__" for index, name in enumerate(fills)}
    flagged = work.with_columns(pl.col(name).is_null().alias(flag) for name, flag in was_null.items())
    flagged = flagged.with_columns(**fills)
    # nothing dropped or filled: the input goes on as it came (the chain then compares no cell)
    output = (
        frame
        if not fills and not removed.height and work.width == frame.width
        else flagged.drop(list(was_null.values()))
    )
    row_issues += [_imputed_issues(flagged, plan, was_null[plan.column], params) for plan in fill_plans]

    after_counts = _null_counts(output)
    log = _imputation_log(frame, flagged, after_counts, removed, plans, analysis, was_null, params)
    progress(0.95, "Building the report")
    outcome = Outcome(
        rows_before=frame.height,
        rows_after=output.height,
        columns_before=columns,
        columns_after=data_columns(output),
        removed=removed,
        plans=plans,
        log=log,
        analysis=analysis,
        original_nulls=original_nulls,
        remaining=int(sum(after_counts.values())),
        knn_info=knn_info,
    )
    result = _result(outcome, collect_row_issues(row_issues, in_file_order=True), params, output)
    result.envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, "Missing values handled")
    return result


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, params: NullHandlerParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory (``inputs.scan``): the same plans, counts and fill values, each
    a query on the streaming engine (a median or a mode one column at a time: it holds that column's values or
    value counts); the result's ``scan`` is the plan of the output over ``source`` (columns and rows dropped,
    gaps filled). knn_imputation cannot stream: it is refused unless it falls back to the median as in memory
    (more rows to impute than ``knn_max_imputed_rows``, or no usable feature)."""
    started = time.perf_counter()
    scan = numbered(source)
    schema = scan.collect_schema()
    empty = pl.DataFrame(schema=schema)
    columns = data_columns(empty)
    rows = scanned_rows(inputs.rows, scan)
    constants = _fill_constants(empty, params)
    progress(0.0, f"Analysing missing values in {len(columns)} columns over {rows:,} rows")

    null_counts = streamed_row(scan, [pl.col(columns).null_count()]) if columns else {}
    original_nulls = int(sum(null_counts.values()))
    with_nulls = [name for name in columns if null_counts[name]]
    analysis = _streamed_null_analysis(scan, schema, rows, with_nulls, null_counts)
    if params.global_strategy == "drop_rows":
        plans = [Plan(name, "drop_rows", "global") for name in with_nulls]
    else:
        plans = [_plan(name, schema[name], analysis[name], params) for name in with_nulls]

    progress(0.2, "Dropping columns and rows")
    work, removed, row_issues, dropped_by_column = _streamed_drop(scan, plans)
    work_schema = work.collect_schema()
    fill_plans = [plan for plan in plans if plan.strategy not in {"drop_column", "drop_rows", "none"}]
    progress(0.35, f"Filling missing values in {len(fill_plans)} columns")
    knn_info = _streamed_knn_fallback(work, work_schema, fill_plans, params)
    statistics = {
        plan.column: _streamed_statistic(work, plan) for plan in fill_plans if plan.strategy in STATISTIC_STRATEGIES
    }
    progress(0.6, "Counting the filled values")
    fills = _fill_exprs(work_schema, fill_plans, statistics, constants, {})
    was_null = {name: f"__was_null_{index}__" for index, name in enumerate(fills)}
    flagged = work.with_columns(pl.col(name).is_null().alias(flag) for name, flag in was_null.items())
    flagged = flagged.with_columns(**fills)
    output = flagged.drop(list(was_null.values()))
    row_issues += [_imputed_issues(flagged, plan, was_null[plan.column], params) for plan in fill_plans]
    columns_after = [name for name in work_schema if name not in BOOKKEEPING_COLUMNS]
    counted = (
        streamed_row(
            flagged,
            [
                *_filled_exprs(was_null, "filled:"),
                *(pl.col(name).null_count().alias(f"after:{name}") for name in columns_after),
            ],
        )
        if was_null or columns_after
        else {}
    )
    filled_counts = {name: counted[f"filled:{name}"] for name in was_null}
    after_counts = {name: counted[f"after:{name}"] for name in columns_after}
    log = [
        _log_entry(plan, analysis[plan.column], filled_counts, after_counts, dropped_by_column, params)
        for plan in plans
    ]
    progress(0.8, "Collecting the row-level issues")
    issues = collect_streamed_issues(row_issues)
    progress(0.95, "Building the report")
    outcome = Outcome(
        rows_before=rows,
        rows_after=rows - removed.height,
        columns_before=columns,
        columns_after=columns_after,
        removed=removed,
        plans=plans,
        log=log,
        analysis=analysis,
        original_nulls=original_nulls,
        remaining=int(sum(after_counts.values())),
        knn_info=knn_info,
    )
    result = _result(outcome, issues, params, None)
    result.scan, result.rows = output, outcome.rows_after
    result.envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, "Missing values handled")
    return result


def _streamed_null_analysis(
    scan: pl.LazyFrame, schema: pl.Schema, rows: int, with_nulls: list[str], null_counts: dict[str, int]
) -> dict[str, Any]:
    """``_null_analysis`` of a scan, one column at a time: a numeric column's moments from its values
    (``column_aggregates``: as in memory to the last bit), a text column's distinct values counted by a
    streaming group_by."""
    numeric, text = _analysed_columns(schema, with_nulls)
    moments: dict[str, Any] = {}
    for index, name in enumerate(numeric):
        statistics = ("mean", "median", "std")
        moments.update(column_aggregates(scan, [name], [_moment(name, s).alias(f"{s}_{index}") for s in statistics]))
    distinct = {name: _streamed_distinct_count(scan, name, schema[name], rows - null_counts[name]) for name in text}
    return _analysis_entries(schema, rows, with_nulls, null_counts, moments, distinct)


def _streamed_distinct_count(scan: pl.LazyFrame, name: str, dtype: pl.DataType, non_null: int) -> int:
    """``_distinct_counts`` of one column of a scan (a column with missing values: null counted as one value).
    A String column is counted by hash as there: a streaming group_by of the values' 8-byte hashes holds
    far less than one of the texts (an e-mail address: about 190 bytes per distinct value, its hash 80)."""
    column = pl.col(name)
    if dtype != pl.String:
        return int(streamed_row(scan, [column.n_unique()])[name])
    hashes = scan.select(column.drop_nulls().hash(seed=0).alias("__hash__"))
    counted = hashes.group_by("__hash__").agg(pl.len().alias("__rows__")).collect(engine="streaming")
    alone = int((counted["__rows__"] == 1).sum())
    if 2 * alone < non_null:  # mostly repeated values: grouping them is cheap
        return int(streamed_row(scan, [column.n_unique()])[name])
    shared = counted.filter(pl.col("__rows__") > 1)["__hash__"]
    del counted
    together = 0
    if shared.len():
        repeated = scan.select(column.filter(column.is_not_null() & column.hash(seed=0).is_in(shared.implode())))
        together = int(streamed_row(repeated, [column.n_unique()])[name])
    return alone + together + 1


def _streamed_statistic(work: pl.LazyFrame, plan: Plan) -> Any:
    """A mean, median or mode plan's fill value over a scan: a mode from the streaming engine's value counts,
    a mean or median from the column's values (``column_aggregates``)."""
    if plan.strategy == "mode":
        return streamed_row(work, [_statistic(plan)])[plan.column]
    return column_aggregates(work, [plan.column], [_statistic(plan)])[plan.column]


def _streamed_drop(
    scan: pl.LazyFrame, plans: list[Plan]
) -> tuple[pl.LazyFrame, pl.DataFrame, list[pl.LazyFrame], dict[str, int]]:
    """``_drop`` of a scan: the plan without the dropped columns and rows, the removed rows, their row-level
    issues (plans), and per drop_rows column its missing values among the removed rows."""
    drop_columns = [plan.column for plan in plans if plan.strategy == "drop_column"]
    drop_row_columns = [plan.column for plan in plans if plan.strategy == "drop_rows"]
    work = scan.drop(drop_columns)
    if not drop_row_columns:
        return work, no_removed_rows(), [], {}
    empty = [(name, pl.col(name).is_null()) for name in drop_row_columns]
    mask = pl.any_horizontal([flag for _, flag in empty])
    reason = format_text("row has missing values in: {}", names_where(empty))
    gone = work.filter(mask)
    removed_query = gone.select(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), reason.cast(pl.String).alias("reason"))
    removed, dropped = pl.collect_all(
        [removed_query, gone.select(pl.col(drop_row_columns).null_count())], engine="streaming"
    )
    row_issues = _dropped_row_issues(work, empty)
    dropped_by_column: dict[str, int] = dropped.row(0, named=True) if removed.height else {}
    return work.filter(~mask), removed, row_issues, dropped_by_column


def _streamed_knn_fallback(
    work: pl.LazyFrame, schema: pl.Schema, fill_plans: list[Plan], params: NullHandlerParams
) -> dict[str, Any]:
    """``_knn_or_median`` of a scan, where KNN imputation cannot run (it needs the whole data in memory): the
    knn_imputation plans become median plans when the in-memory run would fall back to the median too, else
    an InvalidParametersError."""
    knn_plans = [plan for plan in fill_plans if plan.strategy == "knn_imputation"]
    info = _knn_info()
    if not knn_plans:
        return info
    numeric = _knn_candidates(schema)
    features, fitted = _knn_columns(
        numeric, streamed_row(work, _knn_usable(numeric)), [p.column for p in knn_plans], info
    )
    if fitted:
        as_float = [pl.col(name).cast(pl.Float64) for name in fitted]
        missing = pl.any_horizontal([value.is_null() | value.is_nan() for value in as_float]).sum().alias("missing")
        if not _knn_over_budget(int(streamed_row(work, [missing])["missing"]), features, fitted, params, info):
            raise InvalidParametersError(
                f"{AGENT_ID}.column_strategies: knn_imputation needs the whole data in memory; this file is "
                f"streamed (columns: {', '.join(fitted)}); choose median, mean or mode",
                {"columns": fitted, "strategy": "knn_imputation"},
                agent_id=AGENT_ID,
                field="column_strategies",
            )
    for plan in knn_plans:
        plan.strategy = "median"
        plan.note = info["fallback_reason"].get(plan.column)
    return info


def _fill_constants(frame: pl.DataFrame, params: NullHandlerParams) -> dict[str, Any]:
    """The fill values converted to their columns' types, after checking that the parameters name columns
    of the data and that every column with the constant strategy has a fill value."""
    require_columns(frame, params.column_strategies, agent_id=AGENT_ID, field="column_strategies")
    require_columns(frame, params.fill_values, agent_id=AGENT_ID, field="fill_values")
    constants = {name: _constant(name, value, frame[name].dtype) for name, value in params.fill_values.items()}
    for name, strategy in params.column_strategies.items():
        if strategy == "constant" and name not in constants:
            raise InvalidParametersError(
                f"{AGENT_ID}.fill_values: column '{name}' uses the constant strategy but has no fill value",
                {"column": name},
                agent_id=AGENT_ID,
                field="fill_values",
            )
    return constants


def _drop(frame: pl.DataFrame, plans: list[Plan]) -> tuple[pl.DataFrame, pl.DataFrame, list[pl.LazyFrame]]:
    """The frame without the drop_column columns and the rows empty in a drop_rows column; the removed rows
    (the reason names the drop_rows columns empty in the row) and a row-level issue per empty cell."""
    drop_columns = [plan.column for plan in plans if plan.strategy == "drop_column"]
    drop_row_columns = [plan.column for plan in plans if plan.strategy == "drop_rows"]
    work = frame.drop(drop_columns)
    if not drop_row_columns:
        return work, no_removed_rows(), []
    empty = [(name, pl.col(name).is_null()) for name in drop_row_columns]
    mask = pl.any_horizontal([flag for _, flag in empty])
    removed = removed_rows(work, mask, format_text("row has missing values in: {}", names_where(empty)))
    row_issues = _dropped_row_issues(work, empty)
    return work.filter(~mask), removed, row_issues


def _dropped_row_issues(work: pl.DataFrame | pl.LazyFrame, empty: list[tuple[str, pl.Expr]]) -> list[pl.LazyFrame]:
    """A row-level issue per empty cell of a drop_rows column (``empty``: each column with its emptiness flag)."""
    return [
        issues_where(
            work,
            flag,
            column=name,
            issue_type="row_dropped_missing_value",
            severity="warning",
            message=pl.lit(f"row removed: missing value in '{name}'"),
            value=None,
        )
        for name, flag in empty
    ]


def _knn_or_median(
    work: pl.DataFrame, fill_plans: list[Plan], params: NullHandlerParams
) -> tuple[dict[str, pl.Series], dict[str, Any]]:
    """The KNN-imputed columns and what was done; a knn_imputation plan that could not be imputed becomes
    median, with the reason as its note."""
    knn_plans = [plan for plan in fill_plans if plan.strategy == "knn_imputation"]
    knn_values, knn_info = _knn_impute(work, [plan.column for plan in knn_plans], params)
    for plan in knn_plans:
        if plan.column not in knn_values:
            plan.strategy = "median"
            plan.note = knn_info["fallback_reason"].get(plan.column)
    return knn_values, knn_info


def _fill_exprs(
    schema: pl.Schema,
    fill_plans: list[Plan],
    statistics: dict[str, Any],
    constants: dict[str, Any],
    knn_values: dict[str, pl.Series],
) -> dict[str, pl.Expr]:
    """Each filled column's expression; a plan's ``fill_value`` is set to the value it fills with."""
    fills: dict[str, pl.Expr] = {}
    for plan in fill_plans:
        dtype = schema[plan.column]
        column = pl.col(plan.column)
        value = statistics.get(plan.column) if plan.strategy in STATISTIC_STRATEGIES else None
        if plan.strategy in COMPUTED_STRATEGIES and dtype.is_integer():
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # a whole mean or median: the column stays integer, as pandas' fillna keeps it
            else:  # a fraction, or KNN's per-row values
                plan.made_decimal = True
                column, dtype = column.cast(pl.Float64), pl.Float64()
        if plan.strategy in STATISTIC_STRATEGIES:
            plan.fill_value = value
            fills[plan.column] = column if value is None else column.fill_null(pl.lit(value).cast(dtype))
        elif plan.strategy == "constant":
            plan.fill_value = constants[plan.column]
            fills[plan.column] = column.fill_null(pl.lit(constants[plan.column], dtype=dtype))
        elif plan.strategy == "forward_fill":
            fills[plan.column] = column.forward_fill()
        elif plan.strategy == "backward_fill":
            fills[plan.column] = column.backward_fill()
        elif plan.strategy == "knn_imputation":
            fills[plan.column] = pl.coalesce(column, pl.lit(knn_values[plan.column]).cast(dtype))
    return fills


def _imputed_issues(
    flagged: pl.DataFrame | pl.LazyFrame, plan: Plan, was_null: str, params: NullHandlerParams
) -> pl.LazyFrame:
    return issues_where(
        flagged,
        pl.col(was_null) & pl.col(plan.column).is_not_null(),
        column=plan.column,
        issue_type="null_imputed",
        severity="info",
        message=pl.lit(f"missing value filled by {_describe(plan, params)}"),
        value=pl.col(plan.column),
    )


def _null_counts(frame: pl.DataFrame) -> dict[str, int]:
    """Each data column's missing values."""
    columns = data_columns(frame)
    return frame.select(pl.col(columns).null_count()).row(0, named=True) if columns else {}


def _filled_exprs(was_null: dict[str, str], prefix: str = "") -> list[pl.Expr]:
    """Per filled column, the cells that were empty and are not any more (named ``prefix`` + the column)."""
    return [(pl.col(flag) & pl.col(name).is_not_null()).sum().alias(prefix + name) for name, flag in was_null.items()]


def _imputation_log(
    frame: pl.DataFrame,
    flagged: pl.DataFrame,
    after_counts: dict[str, int],
    removed: pl.DataFrame,
    plans: list[Plan],
    analysis: dict[str, Any],
    was_null: dict[str, str],
    params: NullHandlerParams,
) -> list[dict[str, Any]]:
    """One entry per column with missing values: cells filled, nulls left (``after_counts``), rows dropped."""
    filled_counts: dict[str, int] = flagged.select(_filled_exprs(was_null)).row(0, named=True) if was_null else {}
    drop_row_columns = [plan.column for plan in plans if plan.strategy == "drop_rows"]
    dropped_by_column: dict[str, int] = (
        frame.filter(pl.col(ROW_INDEX_COLUMN).is_in(removed[ROW_INDEX_COLUMN].implode()))
        .select(pl.col(drop_row_columns).null_count())
        .row(0, named=True)
        if drop_row_columns and removed.height
        else {}
    )
    return [
        _log_entry(plan, analysis[plan.column], filled_counts, after_counts, dropped_by_column, params)
        for plan in plans
    ]


def _constant(name: str, value: str | int | float | bool, dtype: pl.DataType) -> Any:
    """The fill value converted to the column's type, or an InvalidParametersError naming the column."""

    def invalid(why: str) -> InvalidParametersError:
        return InvalidParametersError(
            f"{AGENT_ID}.fill_values.{name}: {value!r} does not fit column '{name}' of type {dtype} ({why})",
            {"column": name, "value": value, "dtype": str(dtype)},
            agent_id=AGENT_ID,
            field=f"fill_values.{name}",
        )

    try:
        if isinstance(dtype, pl.Date) and isinstance(value, str):
            converted = pl.Series([value]).str.to_date()
        elif isinstance(dtype, pl.Datetime) and isinstance(value, str):
            converted = pl.Series([value]).str.to_datetime(time_unit=dtype.time_unit, time_zone=dtype.time_zone)
        else:
            converted = pl.Series([value]).cast(dtype, strict=True)
    except Exception as error:  # noqa: BLE001 - any conversion failure is the user's value not fitting
        raise invalid(str(error).splitlines()[0]) from None
    result = converted[0]
    if result is None:
        raise invalid("it converts to an empty value")
    if is_numeric(dtype) and not isinstance(value, str) and float(result) != float(value):
        raise invalid(f"it would become {result}")
    return result


def _null_analysis(frame: pl.DataFrame, with_nulls: list[str], null_counts: dict[str, int]) -> dict[str, Any]:
    numeric, text = _analysed_columns(frame.schema, with_nulls)
    moments: dict[str, Any] = {}
    if numeric:
        exprs = []
        for index, name in enumerate(numeric):
            exprs += [
                _moment(name, "mean").alias(f"mean_{index}"),
                _moment(name, "median").alias(f"median_{index}"),
                _moment(name, "std").alias(f"std_{index}"),
            ]
        # In one chunk: a float sum depends on how the values are split (a file's parse threads), and the
        # streamed run (agents.clean.streamed_queries.column_aggregates) must find the same moments.
        moments = frame.select(numeric).rechunk().select(exprs).row(0, named=True)
    distinct = _distinct_counts(frame, text)
    return _analysis_entries(frame.schema, frame.height, with_nulls, null_counts, moments, distinct)


def _analysed_columns(schema: pl.Schema, with_nulls: list[str]) -> tuple[list[str], list[str]]:
    """The columns with missing values whose moments are measured (numeric), and those whose distinct values
    are counted (neither numeric nor dates)."""
    numeric = [name for name in with_nulls if is_numeric(schema[name])]
    text = [name for name in with_nulls if not is_numeric(schema[name]) and not is_date_like(schema[name])]
    return numeric, text


def _moment(name: str, statistic: str) -> pl.Expr:
    values = _finite(name)
    return values.mean() if statistic == "mean" else values.median() if statistic == "median" else values.std()


def _analysis_entries(
    schema: pl.Schema,
    height: int,
    with_nulls: list[str],
    null_counts: dict[str, int],
    moments: dict[str, Any],
    distinct: dict[str, int],
) -> dict[str, Any]:
    """Per column with missing values, its counts, moments (``moments``: ``mean_<i>``, ``median_<i>``,
    ``std_<i>`` of the i-th numeric column), distinct ratio and suggested strategy."""
    numeric, _ = _analysed_columns(schema, with_nulls)
    analysis: dict[str, Any] = {}
    for name in with_nulls:
        dtype = schema[name]
        percent = pct(null_counts[name], height)
        entry: dict[str, Any] = {
            "null_count": null_counts[name],
            "null_percentage": percent,
            "non_null_count": height - null_counts[name],
            "data_type": str(dtype),
        }
        if name in numeric:
            index = numeric.index(name)
            entry.update(
                mean=plain_number(moments[f"mean_{index}"]),
                median=plain_number(moments[f"median_{index}"]),
                std=plain_number(moments[f"std_{index}"]),
            )
        if name in distinct:
            non_null = height - null_counts[name]
            # n_unique counts null as one value
            entry["distinct_ratio"] = round((distinct[name] - 1) / non_null, 6) if non_null else 0.0
        entry["suggested_strategy"] = suggest_strategy(
            dtype, percent, entry.get("mean"), entry.get("median"), entry.get("std"), entry.get("distinct_ratio")
        )
        analysis[name] = entry
    return analysis


BY_HASH_ROWS = 100_000  # from this height, String columns' distinct values are counted by hash first


def _distinct_counts(frame: pl.DataFrame, names: list[str]) -> dict[str, int]:
    """``n_unique()`` of each column (null counted as one value). The String columns of a large frame are
    counted by hash: values with a hash no other value has are distinct, and only the rows of the hashes
    several rows share are compared by value (a few, when most values are distinct: then cheaper than
    grouping every text; when they are not, the column is grouped after all)."""
    schema = frame.schema
    by_hash = [name for name in names if schema[name] == pl.String] if frame.height >= BY_HASH_ROWS else []
    plain = [name for name in names if name not in by_hash]
    counts = frame.select(pl.col(plain).n_unique()).row(0, named=True) if plain else {}
    for name in by_hash:
        text = pl.col(name)
        hashes = frame.lazy().select(text.drop_nulls().hash(seed=0).alias("__hash__"))
        counted = hashes.group_by("__hash__").agg(pl.len().alias("__rows__")).collect()
        alone = int((counted["__rows__"] == 1).sum())
        if 2 * alone < frame.height - frame[name].null_count():  # mostly repeated values: grouping them is cheap
            counts[name] = int(frame.select(text.n_unique()).item())
            continue
        shared = counted.filter(pl.col("__rows__") > 1)["__hash__"]
        together = 0
        if shared.len():
            rows = frame.lazy().select(text.filter(text.is_not_null() & text.hash(seed=0).is_in(shared.implode())))
            together = int(rows.select(text.n_unique()).collect().item())
        counts[name] = alone + together + (1 if frame[name].null_count() else 0)
    return {name: counts[name] for name in names}


def suggest_strategy(
    dtype: pl.DataType,
    null_percentage: float,
    mean: float | None,
    median: float | None,
    std: float | None,
    distinct_ratio: float | None = None,
) -> str:
    """Agensium's suggestion for a column with missing values (see the module docstring), except that an
    identifier-like text column (more than half of its values distinct: e-mails, names, codes) is left as
    is: its mode would fabricate duplicates of one person's e-mail."""
    if null_percentage > DROP_COLUMN_PERCENT:
        return "drop_column"
    if distinct_ratio is not None and distinct_ratio > IDENTIFIER_DISTINCT_RATIO:
        return "none"
    if null_percentage > KNN_PERCENT:
        return "knn_imputation" if is_numeric(dtype) else "mode"
    if is_numeric(dtype):
        if mean is not None and median is not None and std and abs((mean - median) / std) > SKEW_RATIO:
            return "median"
        return "mean"
    if is_date_like(dtype):
        return "forward_fill"
    return "mode"


def _plan(name: str, dtype: pl.DataType, analysis: dict[str, Any], params: NullHandlerParams) -> Plan:
    if name in params.column_strategies:
        plan = Plan(name, params.column_strategies[name], "explicit")
    elif params.apply_suggested_strategies and analysis["suggested_strategy"] == "none":
        return Plan(
            name,
            "none",
            "suggested",
            note="identifier-like text (most values distinct): not filled, so no value is invented",
        )
    elif params.apply_suggested_strategies:
        plan = Plan(name, analysis["suggested_strategy"], "suggested")
    else:
        suggested = analysis["suggested_strategy"]
        return Plan(name, "none", "none", note=f"no strategy given; left as is (suggested: {suggested})")
    if plan.strategy in NUMERIC_ONLY and not is_numeric(dtype):
        plan.note = f"{plan.strategy} needs a numeric column ('{name}' is {dtype}); mode used instead"
        plan.strategy = "mode"
    return plan


def _finite(name: str) -> pl.Expr:
    """The column's finite values, the others null (aggregations skip them; a ``filter`` inside thousands of
    aggregations makes Polars' planner quadratic)."""
    values = pl.col(name).cast(pl.Float64)
    return pl.when(values.is_finite()).then(values)


def _fill_statistics(work: pl.DataFrame, plans: list[Plan]) -> dict[str, Any]:
    if not plans:
        return {}
    columns = list(dict.fromkeys(plan.column for plan in plans))
    return work.select(columns).rechunk().select(_statistic(plan) for plan in plans).row(0, named=True)  # see moments


def _statistic(plan: Plan) -> pl.Expr:
    """The value a mean, median or mode plan fills with."""
    if plan.strategy == "mean":
        return _finite(plan.column).mean().alias(plan.column)
    if plan.strategy == "median":
        return _finite(plan.column).median().alias(plan.column)
    return pl.col(plan.column).drop_nulls().mode().sort().first().alias(plan.column)


def _knn_impute(
    work: pl.DataFrame, targets: list[str], params: NullHandlerParams
) -> tuple[dict[str, pl.Series], dict[str, Any]]:
    """Imputed full columns for ``targets`` (only their empty cells are used), and what was done."""
    info = _knn_info()
    if not targets:
        return {}, info
    numeric = _knn_candidates(work.schema)
    usable = work.select(_knn_usable(numeric)).row(0, named=True)
    features, fitted = _knn_columns(numeric, usable, targets, info)
    if not fitted:
        return {}, info

    from sklearn.impute import KNNImputer

    matrix = work.select(pl.col(features).cast(pl.Float64)).to_numpy()
    positions = [features.index(name) for name in fitted]
    missing_rows = np.flatnonzero(np.isnan(matrix[:, positions]).any(axis=1))
    if _knn_over_budget(int(missing_rows.size), features, fitted, params, info):
        return {}, info
    imputer = KNNImputer(n_neighbors=params.knn_neighbors, keep_empty_features=True)
    fit_cap = min(params.knn_max_rows, max(KNN_MIN_FIT_ROWS, KNN_PAIR_BUDGET // max(1, int(missing_rows.size))))
    info["fit_cap"] = fit_cap
    if work.height <= fit_cap:
        imputed = imputer.fit_transform(matrix)
        info.update(method="exact", fit_rows=work.height)
    else:
        complete = np.flatnonzero(~np.isnan(matrix).any(axis=1))
        pool = complete if complete.size >= params.knn_neighbors else np.arange(work.height)
        rng = np.random.default_rng(0)
        sample = np.sort(rng.choice(pool, size=min(pool.size, fit_cap), replace=False))
        imputer.fit(matrix[sample])
        imputed = matrix.copy()
        chunks = max(1, math.ceil(missing_rows.size / KNN_CHUNK_ROWS))
        for chunk in np.array_split(missing_rows, chunks):
            if chunk.size:
                imputed[chunk] = imputer.transform(matrix[chunk])
        info.update(
            method="sampled", fit_rows=int(sample.size), sample_of="complete rows" if pool is complete else "rows"
        )
    values: dict[str, pl.Series] = {}
    for name, position in zip(fitted, positions, strict=True):
        values[name] = pl.Series(name, imputed[:, position], dtype=pl.Float64)  # as _fill_exprs fills it
    return values, info


def _knn_info() -> dict[str, Any]:
    return {"method": None, "features": [], "fit_rows": 0, "imputed_rows": 0, "fallback_reason": {}}


def _knn_candidates(schema: pl.Schema) -> list[str]:
    return [name for name in schema if name not in BOOKKEEPING_COLUMNS and is_numeric(schema[name])]


def _knn_usable(numeric: list[str]) -> list[pl.Expr]:
    """Per numeric column, whether it can be a KNN feature: some finite value and no infinity."""
    return [
        ((_finite(name).count() > 0) & ~pl.col(name).cast(pl.Float64).is_infinite().any()).alias(name)
        for name in numeric
    ]


def _knn_columns(
    numeric: list[str], usable: dict[str, bool], targets: list[str], info: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """The KNN features and the targets imputed; the other targets' fallback reasons go to ``info``."""
    features = [name for name in numeric if usable[name]]
    fitted = [name for name in targets if name in features]
    for name in targets:
        if name not in fitted:
            info["fallback_reason"][name] = "knn_imputation needs finite values without infinities; median used"
    return features, fitted


def _knn_over_budget(
    missing_rows: int, features: list[str], fitted: list[str], params: NullHandlerParams, info: dict[str, Any]
) -> bool:
    """Records the rows to impute in ``info``; whether they are too many (the targets then take the median)."""
    info.update(features=features, imputed_rows=missing_rows, neighbors=params.knn_neighbors)
    if missing_rows <= params.knn_max_imputed_rows:
        return False
    reason = (
        f"{missing_rows:,} rows to impute exceed knn_max_imputed_rows ({params.knn_max_imputed_rows:,}); median used"
    )
    info["fallback_reason"].update({name: reason for name in fitted})
    info["method"] = "median_fallback"
    return True


def _describe(plan: Plan, params: NullHandlerParams) -> str:
    if plan.strategy in {"mean", "median", "mode", "constant"}:
        shown = format_number(plan.fill_value) if isinstance(plan.fill_value, (int, float)) else plan.fill_value
        return f"{plan.strategy} ({shown})"
    if plan.strategy == "forward_fill":
        return "forward_fill (value of the previous row)"
    if plan.strategy == "backward_fill":
        return "backward_fill (value of the next row)"
    return f"knn_imputation (mean of the {params.knn_neighbors} nearest rows)"


def _log_entry(
    plan: Plan,
    analysis: dict[str, Any],
    filled: dict[str, int],
    after: dict[str, int],
    dropped: dict[str, int],
    params: NullHandlerParams,
) -> dict[str, Any]:
    before = analysis["null_count"]
    entry: dict[str, Any] = {
        "column": plan.column,
        "strategy": plan.strategy,
        "source": plan.source,
        "data_type": analysis["data_type"],
        "null_count_before": before,
        "null_percentage": analysis["null_percentage"],
        "nulls_filled": int(filled.get(plan.column, 0)),
        "null_count_after": after.get(plan.column),
        "rows_dropped": int(dropped.get(plan.column, 0)),
        "column_dropped": plan.strategy == "drop_column",
        "fill_value": plain_value(plan.fill_value),
        "note": plan.note,
    }
    if plan.strategy == "drop_column":
        entry["message"] = f"Dropped column '{plan.column}' ({before:,} missing values)"
    elif plan.strategy == "drop_rows":
        entry["message"] = f"Dropped {entry['rows_dropped']:,} rows with a missing '{plan.column}'"
    elif plan.strategy == "none":
        entry["message"] = f"Left {before:,} missing values in '{plan.column}'"
    else:
        entry["message"] = (
            f"Filled {entry['nulls_filled']:,} of {before:,} missing values in '{plan.column}' by "
            + _describe(plan, params)
        )
        if plan.made_decimal:
            entry["message"] += f"; '{plan.column}' held whole numbers and is now a decimal column"
    return entry


def _proposals(plans: list[Plan], analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns left with their gaps and a suggested strategy: what applying the suggestions would do."""
    untreated = [plan.column for plan in plans if plan.source == "none"]
    suggested = {name: analysis[name]["suggested_strategy"] for name in untreated}
    suggested = {name: strategy for name, strategy in suggested.items() if strategy != "none"}
    if not suggested:
        return []
    filled = [name for name, strategy in suggested.items() if strategy != "drop_column"]
    dropped = [name for name, strategy in suggested.items() if strategy == "drop_column"]
    cells = sum(int(analysis[name]["null_count"]) for name in filled)
    described = ", ".join(f"{name}: {strategy}" for name, strategy in list(suggested.items())[:8])
    return [
        proposal(
            AGENT_ID,
            "apply_suggested_strategies",
            f"Fill {cells:,} missing values in {len(filled)} column(s) with invented values"
            + (f" and drop {len(dropped)} mostly empty column(s)" if dropped else "")
            + f" ({described}{', …' if len(suggested) > 8 else ''})",
            {"column_strategies": suggested},
            columns=list(suggested),
            cells_affected=cells,
        )
    ]


@dataclass
class Outcome:
    """What one run found and did: the rows and data columns before and after, the removed rows, the plan and
    log per column with missing values, their analysis, the missing values left and what KNN imputation did."""

    rows_before: int
    rows_after: int
    columns_before: list[str]
    columns_after: list[str]
    removed: pl.DataFrame
    plans: list[Plan]
    log: list[dict[str, Any]]
    analysis: dict[str, Any]
    original_nulls: int
    remaining: int  # missing values left in the output
    knn_info: dict[str, Any]

    @property
    def dropped_columns(self) -> list[str]:
        return [plan.column for plan in self.plans if plan.strategy == "drop_column"]

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after


def _result(
    outcome: Outcome, row_issues: pl.DataFrame, params: NullHandlerParams, output: pl.DataFrame | None
) -> AgentResult:
    score = _score(outcome, params)
    findings = _findings(outcome, params)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=time.perf_counter(),
        params=params,
        summary_metrics=_summary_metrics(outcome),
        data=_data(outcome, score, params),
        frame=output,
        removed=outcome.removed,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, score),
        row_level_issues=row_issues,
    )


def _score(outcome: Outcome, params: NullHandlerParams) -> dict[str, Any]:
    original_nulls = outcome.original_nulls
    rows, columns = retention(
        outcome.rows_before, outcome.rows_after, len(outcome.columns_before), len(outcome.columns_after)
    )
    return effectiveness(
        {
            "null_reduction": 100.0 * (original_nulls - outcome.remaining) / original_nulls
            if original_nulls
            else 100.0,
            "data_retention": rows,
            "column_retention": columns,
        },
        {
            "null_reduction": params.null_reduction_weight,
            "data_retention": params.data_retention_weight,
            "column_retention": params.column_retention_weight,
        },
        params,
    )


def _findings(outcome: Outcome, params: NullHandlerParams) -> Findings:
    findings = Findings(AGENT_ID)
    _alert_volume_and_loss(findings, outcome)
    _alert_strategies(findings, outcome, params)
    for entry in outcome.log:
        findings.issue(
            "missing_values",
            "high" if entry["null_percentage"] > 50 else "medium" if entry["null_percentage"] > 10 else "low",
            f"'{entry['column']}' had {entry['null_count_before']:,} missing values "
            f"({entry['null_percentage']:.2f}%): {entry['strategy']}",
            field_name=entry["column"],
            details={"strategy": entry["strategy"], "source": entry["source"]},
        )
        if entry["null_percentage"] > 20 and entry["strategy"] != "drop_column":
            findings.recommend(
                f"'{entry['column']}' is {entry['null_percentage']:.1f}% empty: check the imputed values, or "
                "collect the field at the source",
                "medium",
                field_name=entry["column"],
                kind="advanced_imputation",
            )
    if outcome.original_nulls:
        findings.recommend(
            "Make critical fields required at data entry to prevent missing values",
            "low",
            field_name=None,
            kind="validation",
        )
    return findings


def _alert_volume_and_loss(findings: Findings, outcome: Outcome) -> None:
    """Alerts on how much was missing, and on the rows and columns dropped."""
    analysis, original_nulls = outcome.analysis, outcome.original_nulls
    columns_before = outcome.columns_before
    cells = outcome.rows_before * len(columns_before)
    if cells and original_nulls > 0.3 * cells:
        findings.alert(
            "missing_data",
            "critical",
            f"High null volume: {original_nulls:,} missing values ({pct(original_nulls, cells):.1f}% of cells)",
            "Review how the data is collected; the source is largely incomplete",
            kind="high_volume",
            affected=len(analysis),
        )
    mostly_empty = [name for name, entry in analysis.items() if entry["null_percentage"] > 50]
    if mostly_empty:
        findings.alert(
            "column_quality",
            "high",
            f"{len(mostly_empty)} column(s) are more than 50% empty: {', '.join(mostly_empty[:5])}",
            "Consider dropping these columns or collecting them properly",
            kind="column_critical",
            affected=len(mostly_empty),
        )
    row_retention, _ = retention(outcome.rows_before, outcome.rows_after, 1, 1)
    if row_retention < 90:
        findings.alert(
            "data_retention",
            "high",
            f"{outcome.rows_removed:,} rows removed: {row_retention:.1f}% of the rows kept",
            "Fill missing values instead of dropping rows where the rest of the row matters",
            kind="data_loss",
            affected=len(columns_before),
        )
    dropped_columns = outcome.dropped_columns
    if dropped_columns:
        findings.alert(
            "column_retention",
            "medium",
            f"{len(dropped_columns)} column(s) dropped: {', '.join(dropped_columns)}",
            "Set a strategy in column_strategies to keep a column",
            kind="columns_dropped",
            affected=len(dropped_columns),
        )


def _alert_strategies(findings: Findings, outcome: Outcome, params: NullHandlerParams) -> None:
    """Alerts on strategies changed for a column's type, and on gaps the chosen strategies left."""
    for plan in outcome.plans:
        if plan.note and plan.strategy != "none":
            findings.alert(
                "configuration",
                "medium",
                f"'{plan.column}': {plan.note}",
                "Choose a strategy that fits the column's type",
                kind="strategy_changed",
                field_name=plan.column,
            )
    treated = {plan.column for plan in outcome.plans if plan.strategy != "none"}
    left = {
        entry["column"]: entry["null_count_after"]
        for entry in outcome.log
        if entry.get("null_count_after") and entry["column"] in treated
    }
    if left and params.global_strategy == "column_specific":
        findings.alert(
            "missing_data",
            "low",
            f"{outcome.remaining:,} missing values remain ({', '.join(left)})",
            "Forward/backward fill cannot fill a leading/trailing gap; add a strategy or a fill value",
            kind="nulls_remaining",
            affected=len(left),
        )


def _summary_metrics(outcome: Outcome) -> dict[str, Any]:
    remaining = outcome.remaining
    return {
        "nulls_handled": outcome.original_nulls - remaining,
        "original_nulls": outcome.original_nulls,
        "remaining_nulls": remaining,
        "total_rows_processed": outcome.rows_before,
        "rows_removed": outcome.rows_removed,
        "columns_dropped": len(outcome.dropped_columns),
        "columns_imputed": sum(entry["nulls_filled"] > 0 for entry in outcome.log),
    }


def _data(outcome: Outcome, score: dict[str, Any], params: NullHandlerParams) -> dict[str, Any]:
    analysis = outcome.analysis
    return {
        "null_analysis": {
            "total_rows": outcome.rows_before,
            "total_columns": len(outcome.columns_before),
            "columns_with_nulls": list(analysis),
            "total_nulls_detected": outcome.original_nulls,
            "null_summary": analysis,
        },
        "imputation_log": outcome.log,
        "knn": outcome.knn_info,
        "global_strategy": params.global_strategy,
        "rows_before": outcome.rows_before,
        "rows_after": outcome.rows_after,
        "columns_dropped": outcome.dropped_columns,
        "proposals": _proposals(outcome.plans, analysis),
        "effectiveness": score,
        "quality_status": score["status"],
    }


def _cards(outcome: Outcome, score: dict[str, Any]) -> list[SummaryCard]:
    original_nulls, remaining = outcome.original_nulls, outcome.remaining
    return [
        SummaryCard(
            "exec_null_handling",
            "Null Handling",
            f"{original_nulls - remaining:,} of {original_nulls:,} handled",
            "info" if not original_nulls else "good" if not remaining else "warning",
            f"{len(outcome.analysis)} columns had missing values; {remaining:,} remain; {outcome.rows_removed:,} "
            f"rows and {len(outcome.dropped_columns)} columns dropped",
        ),
        SummaryCard(
            "exec_null_effectiveness",
            "Null Handling Effectiveness",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
