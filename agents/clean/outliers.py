"""The ``outlier-remover`` agent: per numeric column, bounds from the data, cells outside them removed (the
whole row) or replaced.

Parameters and summary metrics follow Agensium (reference/agents.md §1.5). Conventions:

- Columns: every integer / float / decimal data column (or ``columns``); booleans are not numbers. Without
  ``columns``, integer columns that identify or code rows (keys, running numbers, phone numbers, postal codes:
  ``identifier_columns``) are not measurements and are skipped, each named with its reason in
  ``data.identifier_columns_skipped`` and a low alert; naming one in ``columns`` analyses it.
- Statistics use the column's *finite* values (no null, NaN or infinity): ``iqr`` bounds are
  [Q1 - k*IQR, Q3 + k*IQR] with quartiles by linear interpolation (``numpy.quantile``'s default);
  ``z_score`` bounds are mean -+ z_threshold * std with ddof=1 (|z| > threshold exactly); ``percentile``
  bounds are the lower/upper percentiles, linear. A column with no finite value, or (z_score) a std of 0
  or undefined, has no bounds and no outliers.
- A value is an outlier when it is strictly outside its bounds. NaN is never one (it is not a number;
  leave it to the null handling); +-infinity always is (outside any finite bound).
- ``severity`` of a row-level issue is critical when the value lies outside the bounds widened by the same
  margin again (iqr: Q1/Q3 -+ 2k*IQR; z_score: |z| > 2 * z_threshold; percentile: one more bound width),
  or is infinite; warning otherwise.
- ``flag`` (the default; PRODUCT.md "Defaults that never destroy data") changes nothing: each outlier is a
  row-level issue with its bounds, and ``data.proposals`` says what ``remove`` and ``impute_median`` would
  change, each with the one parameter that applies it.
- ``remove`` drops every row with an outlier in any analysed column; the reason lists each outlier with
  its column, value and bounds. ``impute_mean`` / ``impute_median`` replace each outlier by the mean /
  median of the column's finite non-outlier values (integer columns: rounded half away from zero; their
  median is taken on the integers, exact above 2**53 where a float is not).
- ``remaining_outliers`` counts the output's values outside the ORIGINAL bounds (0 after remove or impute,
  all of them after flag).
  Running the agent again recomputes the bounds from the data it is given, which after a removal are
  narrower, so a second run may find new outliers: that is what the methods mean, not a leftover.
- A primary too large for memory (``inputs.scan``) gets the same result, its output as a lazy plan over the scan
  (``AgentResult.scan``): each column's bounds and replacement value from that one column's values (so that a
  mean or deviation is the in-memory run's to the last bit; a quantile needs the values anyway), the counts,
  removed rows and row-level issues on Polars' streaming engine. Every method and treatment streams.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from agents.clean.common import (
    QUARTILES_ARTIFACT,
    clean_result,
    effectiveness,
    known_quartiles,
    no_removed_rows,
    quantile_pairs,
    removed_rows,
    retention,
)
from agents.clean.streamed_queries import (
    collect_streamed_issues,
    column_aggregates,
    numbered,
    scanned_rows,
    streamed_row,
)
from agents.columns import (
    is_numeric,
    require_columns,
    with_row_index,
)
from agents.envelope import (
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
    proposal,
)
from agents.formatting import (
    format_number,
    pct,
    plain_number,
)
from agents.params.outlier_remover import OutlierRemoverParams
from agents.profile.pii import pii_type_by_name
from agents.profile.semantic import IDENTIFIER_NAME_RATIO, ColumnEvidence, semantic_type
from agents.values import round_half_away

AGENT_ID = "outlier-remover"
AGENT_NAME = "Outlier Remover"
ROWS_WITH_OUTLIERS = "__rows_with_outliers__"


@dataclass
class Bounds:
    column: str
    lower: float | None
    upper: float | None
    extreme_lower: float | None
    extreme_upper: float | None
    statistics: dict[str, Any]
    # the outliers nearest to each bound (``nearest_outside``): a bound is printed so that they read outside it
    nearest_below: float | None = None
    nearest_above: float | None = None

    @property
    def defined(self) -> bool:
        return self.lower is not None and self.upper is not None

    @property
    def text(self) -> str:
        """The bounds for a sentence, rounded (``format_number``) unless the rounding would make an outlier read
        as inside or on a bound ("24.16638 outside [0, 24.16638]"): that bound is then printed exactly (its
        shortest repr, which no other float shares)."""
        return f"[{_bound_text(self.lower, self.nearest_below, -1)}, {_bound_text(self.upper, self.nearest_above, 1)}]"


def _bound_text(bound: float | None, nearest: float | None, side: int) -> str:
    """``bound`` rounded, or exact when ``nearest`` (the outlier closest to it, beyond it on ``side``: -1 below,
    1 above) would not read beyond the rounded text."""
    text = format_number(bound)
    if bound is None or nearest is None or math.isinf(bound) or math.isnan(bound):
        return text
    if (float(text) - nearest) * side >= 0:
        return repr(float(bound))
    return text


def nearest_outside(item: Bounds, flag: str, index: int) -> list[pl.Expr]:
    """The outliers of ``item`` (flagged in ``flag``) nearest to its lower and upper bound, as ``__below_i__``,
    ``__above_i__``: what ``Bounds.text`` prints the bounds apart from."""
    values = pl.col(item.column).cast(pl.Float64)
    flagged = pl.col(flag)
    return [
        # when/then, not filter: a filter inside a streamed select gathers the whole column first
        pl.when(flagged & (values < item.lower)).then(values).max().alias(f"__below_{index}__"),
        pl.when(flagged & (values > item.upper)).then(values).min().alias(f"__above_{index}__"),
    ]


def _note_nearest(analysed: list[Bounds], row: dict[str, Any]) -> None:
    """Set each bound's nearest outliers from ``row`` (``nearest_outside``'s columns, taken out of it)."""
    for index, item in enumerate(analysed):
        item.nearest_below = row.pop(f"__below_{index}__", None)
        item.nearest_above = row.pop(f"__above_{index}__", None)


def run(inputs: AgentInputs, params: OutlierRemoverParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        return _run_streamed(inputs, inputs.scan, params, progress)
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    columns = _analysed_columns(frame, params)
    skipped = identifier_columns(frame.schema, columns, params, _InMemoryStats(frame))
    columns = [name for name in columns if name not in skipped]
    progress(0.0, f"Computing {params.detection_method} bounds for {len(columns)} numeric columns")

    bounds = compute_bounds(frame, columns, params, inputs.artifacts.get(QUARTILES_ARTIFACT))
    analysed = [item for item in bounds if item.defined]
    flags = {item.column: f"__outlier_{index}__" for index, item in enumerate(analysed)}
    flagged = frame.with_columns(outlier_mask(item).alias(flags[item.column]) for item in analysed)
    counts: dict[str, int] = {}
    rows_with_outliers = 0
    if flags:
        nearest = [
            expr for index, item in enumerate(analysed) for expr in nearest_outside(item, flags[item.column], index)
        ]
        any_outlier = pl.any_horizontal([pl.col(flag) for flag in flags.values()])
        counts = flagged.select(
            *(pl.col(flag).sum().alias(name) for name, flag in flags.items()),
            *nearest,
            any_outlier.sum().alias(ROWS_WITH_OUTLIERS),
        ).row(0, named=True)
        rows_with_outliers = int(counts.pop(ROWS_WITH_OUTLIERS))
        _note_nearest(analysed, counts)
    original_outliers = int(sum(counts.values()))
    progress(0.5, f"Treating {original_outliers:,} outliers ({params.removal_strategy})")

    row_issues = collect_row_issues(
        [_row_issues(flagged, item, flags[item.column], params) for item in analysed if counts[item.column]],
        in_file_order=True,
    )
    replacements: dict[str, Any]
    if params.removal_strategy == "flag" or not flags:  # nothing changed: the input goes on (the chain compares none)
        output, removed, replacements = frame, no_removed_rows(), {}
    else:
        output, removed, replacements = _treat(flagged, analysed, flags, counts, params)

    progress(0.85, "Checking the result against the original bounds")
    remaining_by_column: dict[str, int]
    if params.removal_strategy == "flag":  # the output holds the values flagged: each column's count again
        remaining_by_column = {item.column: counts[item.column] for item in analysed}
    else:
        remaining_by_column = (
            output.select(outlier_mask(item).sum().alias(item.column) for item in analysed).row(0, named=True)
            if analysed
            else {}
        )
    remaining = int(sum(remaining_by_column.values()))
    summary = _outlier_summary(frame.schema, frame.height, bounds, counts, remaining_by_column, replacements, params)
    outcome = Outcome(
        rows_before=frame.height,
        rows_after=output.height,
        columns_before=len(data_columns(frame)),
        columns_after=len(data_columns(output)),
        removed=removed,
        summary=summary,
        original=original_outliers,
        remaining=remaining,
        rows_with_outliers=rows_with_outliers,
        skipped=skipped,
    )
    result = _result(outcome, row_issues, params, started, output)
    progress(1.0, f"Found {original_outliers:,} outliers; handled {original_outliers - remaining:,}")
    return result


def _analysed_columns(frame: pl.DataFrame, params: OutlierRemoverParams) -> list[str]:
    """The numeric columns to analyse (``columns``, checked, or every numeric data column)."""
    require_columns(frame, params.columns, agent_id=AGENT_ID, field="columns")
    not_numeric = [name for name in params.columns if not is_numeric(frame[name].dtype)]
    if not_numeric:
        raise InvalidParametersError(
            f"{AGENT_ID}.columns: not numeric: {', '.join(not_numeric)}",
            {"columns": not_numeric},
            agent_id=AGENT_ID,
            field="columns",
        )
    return list(params.columns) or [name for name in data_columns(frame) if is_numeric(frame[name].dtype)]


CODE_ROLES = {  # agents.profile.pii.pii_type_by_name roles whose whole numbers are codes, and the least they hold
    "phone": ("a phone number", 10**6),  # 7 digits or more: "phone_minutes" holding 12 is a measurement
    "ssn": ("a social security number", 10**6),
    "credit_card": ("a card number", 10**6),
    "postal_code": ("a postal code", 0),
}
RUNNING_MIN_VALUES = 7  # as agents.profile.semantic: a run 1..n reads as a key from 7 values
RUNNING_STEP_SHARE = 0.9  # share of the steps between a running number's sorted values that are 1


class ColumnStats(Protocol):
    """Aggregates of the primary for :func:`identifier_columns`: in memory or over a scan."""

    def row(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        """One row of cheap aggregates (counts, minima, maxima) over several columns."""
        ...

    def per_column(self, queries: dict[str, list[pl.Expr]]) -> dict[str, Any]:
        """The aggregates of each column (name -> its expressions, distinct aliases), merged into one row."""
        ...


@dataclass(frozen=True)
class _InMemoryStats:
    frame: pl.DataFrame

    def row(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        return self.frame.select(exprs).row(0, named=True)

    def per_column(self, queries: dict[str, list[pl.Expr]]) -> dict[str, Any]:
        exprs = [expr for column in queries.values() for expr in column]
        return self.frame.select(exprs).row(0, named=True) if exprs else {}


@dataclass(frozen=True)
class _StreamedStats:
    scan: pl.LazyFrame

    def row(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        return streamed_row(self.scan, exprs)

    def per_column(self, queries: dict[str, list[pl.Expr]]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name, exprs in queries.items():  # one column in memory at a time, as the bounds
            row.update(column_aggregates(self.scan, [name], exprs))
        return row


def identifier_columns(
    schema: pl.Schema, columns: list[str], params: OutlierRemoverParams, stats: ColumnStats
) -> dict[str, str]:
    """The integer columns among ``columns`` that identify or code rows rather than measure anything, each with
    the reason it is not analysed; none when ``params.columns`` names the columns (the user chose them). An
    identifier's values are labels: a jump in a key (ids 1..50 then 100001..) or an international phone number
    is no outlier, and neither removing its row nor replacing it by a median means anything. A column is one when:

    - its name says what it codes (``agents.profile.pii.pii_type_by_name``: phone, SSN or card numbers holding
      whole numbers of 7 digits or more, postal codes holding no negative number: ``CODE_ROLES``);
    - the profile reads it as an ``identifier`` (``agents.profile.semantic.semantic_type``: a name that says key
      with at least 95 % of the values distinct, or distinct integers that random draws from their span would
      repeat);
    - its values are distinct and at least ``RUNNING_STEP_SHARE`` of the steps between them, sorted, are 1 (a
      running number with jumps, which the profile's span rule misses), from ``RUNNING_MIN_VALUES`` values."""
    if params.columns:
        return {}
    integers = [name for name in columns if schema[name].is_integer()]
    if not integers:
        return {}
    first = stats.row(
        [
            expr
            for index, name in enumerate(integers)
            for expr in (
                pl.col(name).count().alias(f"n_{index}"),
                pl.col(name).min().alias(f"lo_{index}"),
                pl.col(name).max().alias(f"hi_{index}"),
            )
        ]
    )
    found: dict[str, str] = {}
    candidates: dict[str, int] = {}
    for index, name in enumerate(integers):
        count, low, high = int(first[f"n_{index}"]), first[f"lo_{index}"], first[f"hi_{index}"]
        if count < 2:  # noqa: PLR2004 - one value has no outlier
            continue
        role = pii_type_by_name(name)
        if role in CODE_ROLES and low >= CODE_ROLES[role][1]:
            found[name] = f"named as {CODE_ROLES[role][0]} and holding whole numbers: a code, not a measurement"
        elif high - low + 1 >= IDENTIFIER_NAME_RATIO * count:  # else too few possible values to be (nearly) distinct
            candidates[name] = index
    second = stats.per_column(
        {name: [pl.col(name).drop_nulls().n_unique().alias(f"d_{index}")] for name, index in candidates.items()}
    )
    unique: dict[str, int] = {}  # all-distinct columns the profile's rule leaves open: their steps are counted
    for name, index in candidates.items():
        count, low, high = int(first[f"n_{index}"]), first[f"lo_{index}"], first[f"hi_{index}"]
        distinct = int(second[f"d_{index}"])
        evidence = ColumnEvidence(
            name, "integer", count, count, distinct, minimum=float(low), maximum=float(high), integer_valued=True
        )
        decided = semantic_type(evidence)
        if decided.name == "identifier":
            found[name] = f"{decided.reason}, not a measurement"
        elif distinct == count >= RUNNING_MIN_VALUES:
            unique[name] = index
    steps = stats.per_column(
        {
            name: [(pl.col(name).drop_nulls().sort().diff() == 1).sum().alias(f"g_{index}")]
            for name, index in unique.items()
        }
    )
    for name, index in unique.items():
        count, ones = int(first[f"n_{index}"]), int(steps[f"g_{index}"])
        if ones >= RUNNING_STEP_SHARE * (count - 1):
            found[name] = (
                f"{count:,} distinct integers, {ones:,} of the {count - 1:,} steps between them 1: a running number "
                "(an identifier), not a measurement"
            )
    return {name: found[name] for name in integers if name in found}


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, params: OutlierRemoverParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory (``inputs.scan``): the same bounds, counts and treatments, the
    bounds and replacement values computed one column at a time from its values (``column_aggregates``: as in
    memory to the last bit), the counts and the row-level issues on the streaming engine; the result's ``scan``
    is the plan of the output over ``source`` (rows removed or outliers replaced)."""
    started = time.perf_counter()
    scan = numbered(source)
    schema = scan.collect_schema()
    empty = pl.DataFrame(schema=schema)
    columns = _analysed_columns(empty, params)
    skipped = identifier_columns(schema, columns, params, _StreamedStats(scan))
    columns = [name for name in columns if name not in skipped]
    rows = scanned_rows(inputs.rows, scan)
    progress(0.0, f"Computing {params.detection_method} bounds for {len(columns)} numeric columns over {rows:,} rows")

    row = {}
    for index, name in enumerate(columns):
        row.update(column_aggregates(scan, [name], _bound_exprs(index, name, params)))
    bounds = _bounds_of(columns, row, params)
    analysed = [item for item in bounds if item.defined]
    flags = {item.column: f"__outlier_{index}__" for index, item in enumerate(analysed)}
    flagged = scan.with_columns(outlier_mask(item).alias(flags[item.column]) for item in analysed)
    any_outlier = pl.any_horizontal([pl.col(flag) for flag in flags.values()]) if flags else pl.lit(False)
    counts: dict[str, int] = {}
    rows_with_outliers = 0
    if flags:
        exprs = [pl.col(flag).sum().alias(name) for name, flag in flags.items()]
        nearest = [
            expr for index, item in enumerate(analysed) for expr in nearest_outside(item, flags[item.column], index)
        ]
        counts = streamed_row(flagged, [*exprs, *nearest, any_outlier.sum().alias(ROWS_WITH_OUTLIERS)])
        rows_with_outliers = int(counts.pop(ROWS_WITH_OUTLIERS))
        _note_nearest(analysed, counts)
    original_outliers = int(sum(counts.values()))
    progress(0.3, f"Listing {original_outliers:,} outliers")
    row_issues = collect_streamed_issues(
        [_row_issues(flagged, item, flags[item.column], params) for item in analysed if counts[item.column]]
    )
    progress(0.5, f"Treating {original_outliers:,} outliers ({params.removal_strategy})")
    output, removed, replacements = _streamed_treat(flagged, schema, analysed, flags, counts, params)

    progress(0.85, "Checking the result against the original bounds")
    remaining_by_column: dict[str, int] = (
        streamed_row(output, [outlier_mask(item).sum().alias(item.column) for item in analysed]) if analysed else {}
    )
    remaining = int(sum(remaining_by_column.values()))
    summary = _outlier_summary(schema, rows, bounds, counts, remaining_by_column, replacements, params)
    columns_before = len(data_columns(empty))
    outcome = Outcome(
        rows_before=rows,
        rows_after=rows - removed.height,
        columns_before=columns_before,
        columns_after=columns_before,
        removed=removed,
        summary=summary,
        original=original_outliers,
        remaining=remaining,
        rows_with_outliers=rows_with_outliers,
        skipped=skipped,
    )
    result = _result(outcome, row_issues, params, started, None)
    result.scan, result.rows = output, outcome.rows_after
    progress(1.0, f"Found {original_outliers:,} outliers; handled {original_outliers - remaining:,}")
    return result


def _streamed_treat(
    flagged: pl.LazyFrame,
    schema: pl.Schema,
    analysed: list[Bounds],
    flags: dict[str, str],
    counts: dict[str, int],
    params: OutlierRemoverParams,
) -> tuple[pl.LazyFrame, pl.DataFrame, dict[str, Any]]:
    """``_treat`` of a scan: the output plan, the removed rows (streaming engine) and the replacement values."""
    if params.removal_strategy == "flag" or not flags:
        return flagged.drop(list(flags.values())), no_removed_rows(), {}
    if params.removal_strategy == "remove":
        any_outlier = pl.any_horizontal([pl.col(flag) for flag in flags.values()])
        removed = (
            flagged.filter(any_outlier)
            .select(
                pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
                _removal_reason(analysed, flags, params).cast(pl.String).alias("reason"),
            )
            .collect(engine="streaming")
        )
        return flagged.filter(~any_outlier).drop(list(flags.values())), removed, {}
    targets = [item.column for item in analysed if counts[item.column]]
    statistics: dict[str, Any] = {}
    for name in targets:
        exprs = _replacement_exprs(schema, [name], flags, params)
        statistics.update(column_aggregates(flagged, [name, flags[name]], exprs))
    replacements = _replacements(schema, targets, statistics)
    output = flagged.with_columns(_replaced(schema, flags, replacements)).drop(list(flags.values()))
    return output, no_removed_rows(), replacements


@dataclass
class Outcome:
    """What one run found and did: the rows and data columns before and after, the removed rows, the per-column
    summary and the counts."""

    rows_before: int
    rows_after: int
    columns_before: int
    columns_after: int
    removed: pl.DataFrame
    summary: dict[str, Any]
    original: int  # outliers found
    remaining: int  # outliers left in the output (outside the original bounds)
    rows_with_outliers: int
    skipped: dict[str, str] = field(default_factory=dict)  # identifier-like columns not analysed, with the reason

    @property
    def handled(self) -> int:
        return self.original - self.remaining


def _treat(
    flagged: pl.DataFrame,
    analysed: list[Bounds],
    flags: dict[str, str],
    counts: dict[str, int],
    params: OutlierRemoverParams,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """The output frame, the removed rows with reasons, and the replacement value per column."""
    if params.removal_strategy == "flag" or not flags:
        return flagged.drop(list(flags.values())), no_removed_rows(), {}
    if params.removal_strategy == "remove":
        any_outlier = pl.any_horizontal([pl.col(flag) for flag in flags.values()])
        removed = removed_rows(flagged, any_outlier, _removal_reason(analysed, flags, params))
        return flagged.filter(~any_outlier).drop(list(flags.values())), removed, {}
    targets = [item.column for item in analysed if counts[item.column]]
    used = list(dict.fromkeys(name for target in targets for name in (target, flags[target])))
    exprs = _replacement_exprs(flagged.schema, targets, flags, params)
    statistics = flagged.select(used).rechunk().select(exprs).row(0, named=True) if targets else {}  # compute_bounds
    replacements = _replacements(flagged.schema, targets, statistics)
    output = flagged.with_columns(_replaced(flagged.schema, flags, replacements)).drop(list(flags.values()))
    return output, no_removed_rows(), replacements


def _replaced(schema: pl.Schema, flags: dict[str, str], replacements: dict[str, Any]) -> list[pl.Expr]:
    """Each imputed column with its outliers replaced."""
    return [
        pl.when(pl.col(flags[name])).then(pl.lit(value).cast(schema[name])).otherwise(pl.col(name)).alias(name)
        for name, value in replacements.items()
    ]


def _removal_reason(analysed: list[Bounds], flags: dict[str, str], params: OutlierRemoverParams) -> pl.Expr:
    """Per row removed, each of its outliers with its column, value and bounds."""
    return pl.concat_str(
        [
            pl.when(pl.col(flags[item.column])).then(
                format_text(
                    "outlier in {}: {} outside {} ({})",
                    pl.lit(item.column),
                    pl.col(item.column).cast(pl.String),
                    pl.lit(item.text),
                    pl.lit(params.detection_method),
                )
            )
            for item in analysed
        ],
        separator="; ",
        ignore_nulls=True,
    )


def compute_bounds(
    frame: pl.DataFrame, columns: list[str], params: OutlierRemoverParams, shared: Any = None
) -> list[Bounds]:
    """Each column's bounds from its finite values, in one pass over the frame. ``shared``: the quartiles an
    earlier agent found (``QUARTILES_ARTIFACT``): the IQR bounds of a column it saw as it is here start from them
    (``known_quartiles``: the same numbers) instead of ordering its values again."""
    if not columns:
        return []
    # In one chunk: a float sum (a mean, a deviation) depends on how the values are split (a file's parse threads),
    # and the streamed run (agents.clean.streamed_queries.column_aggregates) must find the same bounds.
    work = frame.select(list(dict.fromkeys(columns))).rechunk()
    if params.detection_method == "z_score":
        exprs = [expr for index, name in enumerate(columns) for expr in _bound_exprs(index, name, params)]
        return _bounds_of(columns, work.select(exprs).row(0, named=True), params)
    # The two quantiles of each column as _bound_exprs finds them, the values ordered once for both
    finite = [_finite(name) for name in columns]
    iqr = params.detection_method == "iqr"
    low, high = (0.25, 0.75) if iqr else (params.lower_percentile / 100, params.upper_percentile / 100)
    # an integer column's values are all finite: its count of them is its count of values (no cast to count)
    schema = work.schema
    counts = [
        (pl.col(name).count() if schema[name].is_integer() else values.count()).alias(f"n_{index}")
        for index, (name, values) in enumerate(zip(columns, finite, strict=True))
    ]
    known = known_quartiles(work, columns, shared) if iqr else {}
    ranked = [index for index, name in enumerate(columns) if name not in known]
    found, row = quantile_pairs(work, [finite[index] for index in ranked], low, high, counts)
    pairs = dict(zip(ranked, found, strict=True))
    for index, name in enumerate(columns):
        row[f"a_{index}"], row[f"b_{index}"] = known[name] if name in known else pairs[index]
    return _bounds_of(columns, row, params)


def _finite(name: str) -> pl.Expr:
    """A column's finite values as Float64, null elsewhere (not filter(): see agents.clean.nulls._finite)."""
    values = pl.col(name).cast(pl.Float64)
    return pl.when(values.is_finite()).then(values)


def _bound_exprs(index: int, name: str, params: OutlierRemoverParams) -> list[pl.Expr]:
    """The i-th column's finite values counted (``n_<i>``) and the two statistics its bounds come from."""
    finite = _finite(name)
    count = finite.count().alias(f"n_{index}")
    if params.detection_method == "iqr":
        return [
            count,
            finite.quantile(0.25, "linear").alias(f"a_{index}"),
            finite.quantile(0.75, "linear").alias(f"b_{index}"),
        ]
    if params.detection_method == "z_score":
        return [count, finite.mean().alias(f"a_{index}"), finite.std(ddof=1).alias(f"b_{index}")]
    return [
        count,
        finite.quantile(params.lower_percentile / 100, "linear").alias(f"a_{index}"),
        finite.quantile(params.upper_percentile / 100, "linear").alias(f"b_{index}"),
    ]


def _bounds_of(columns: list[str], row: dict[str, Any], params: OutlierRemoverParams) -> list[Bounds]:
    result = []
    for index, name in enumerate(columns):
        count = int(row[f"n_{index}"])
        first, second = plain_number(row[f"a_{index}"]), plain_number(row[f"b_{index}"])
        result.append(_bounds(name, count, first, second, params))
    return result


def _bounds(name: str, count: int, first: Any, second: Any, params: OutlierRemoverParams) -> Bounds:
    method = params.detection_method
    if count == 0 or first is None or second is None:
        return Bounds(name, None, None, None, None, {"finite_values": count, "reason": "no finite values"})
    if method == "iqr":
        q1, q3 = float(first), float(second)
        iqr = q3 - q1
        margin = params.iqr_multiplier * iqr
        stats = {"finite_values": count, "q1": q1, "q3": q3, "iqr": iqr, "multiplier": params.iqr_multiplier}
        return Bounds(name, q1 - margin, q3 + margin, q1 - 2 * margin, q3 + 2 * margin, stats)
    if method == "z_score":
        mean, std = float(first), float(second)
        stats = {"finite_values": count, "mean": mean, "std": std, "z_threshold": params.z_threshold}
        if std == 0:
            return Bounds(name, None, None, None, None, {**stats, "reason": "standard deviation is 0"})
        margin = params.z_threshold * std
        return Bounds(name, mean - margin, mean + margin, mean - 2 * margin, mean + 2 * margin, stats)
    low, high = float(first), float(second)
    width = high - low
    stats = {
        "finite_values": count,
        "lower_percentile": params.lower_percentile,
        "upper_percentile": params.upper_percentile,
        "lower_value": low,
        "upper_value": high,
    }
    return Bounds(name, low, high, low - width, high + width, stats)


def outlier_mask(item: Bounds) -> pl.Expr:
    """True where the value is strictly outside the bounds (NaN never, +-inf always); false for nulls."""
    values = pl.col(item.column).cast(pl.Float64)
    outside = (values < item.lower) | (values > item.upper)
    return (values.is_not_nan() & outside).fill_null(False)


def _row_issues(
    flagged: pl.DataFrame | pl.LazyFrame, item: Bounds, flag: str, params: OutlierRemoverParams
) -> pl.LazyFrame:
    values = pl.col(item.column).cast(pl.Float64)
    extreme = values.is_infinite() | (values < item.extreme_lower) | (values > item.extreme_upper)
    action = {
        "flag": "kept (flagged); removal_strategy 'remove' or 'impute_median' would treat it",
        "remove": "row removed",
        "impute_mean": "replaced by the mean of the other values",
        "impute_median": "replaced by the median of the other values",
    }[params.removal_strategy]
    return issues_where(
        flagged,
        pl.col(flag),
        column=item.column,
        issue_type=pl.when(extreme).then(pl.lit("extreme_outlier")).otherwise(pl.lit("outlier")),
        severity=pl.when(extreme).then(pl.lit("critical")).otherwise(pl.lit("warning")),
        message=format_text(
            "{} outside {} ({} bounds); {}",
            pl.col(item.column).cast(pl.String),
            pl.lit(item.text),
            pl.lit(params.detection_method),
            pl.lit(action),
        ),
        value=pl.col(item.column),
    )


def _replacement_exprs(
    schema: pl.Schema, targets: list[str], flags: dict[str, str], params: OutlierRemoverParams
) -> list[pl.Expr]:
    """Per column with outliers: the mean or median of its finite non-outlier values. The median of an integer
    column is its two middle values (a struct of ``lo`` and ``hi``, equal for an odd count), taken on the integers:
    as a float it would be rounded above 2**53."""
    exprs = []
    for name in targets:
        if params.removal_strategy == "impute_median" and schema[name].is_integer():
            inliers = pl.col(name).filter(~pl.col(flags[name])).drop_nulls().sort()
            count = inliers.len()
            middle = (inliers.get((count - 1) // 2, null_on_oob=True), inliers.get(count // 2, null_on_oob=True))
            exprs.append(pl.struct(middle[0].alias("lo"), middle[1].alias("hi")).alias(name))
            continue
        values = pl.col(name).cast(pl.Float64)
        inliers = pl.when(values.is_finite() & ~pl.col(flags[name])).then(values)
        statistic = inliers.mean() if params.removal_strategy == "impute_mean" else inliers.median()
        exprs.append(statistic.alias(name))
    return exprs


def _replacements(schema: pl.Schema, targets: list[str], statistics: dict[str, Any]) -> dict[str, Any]:
    """The replacement value per column with outliers (``statistics``: ``_replacement_exprs``); integer columns
    take it rounded half away from zero (a median's two middle values: their exact mean so rounded)."""
    result: dict[str, Any] = {}
    for name in targets:
        statistic = statistics[name]
        if isinstance(statistic, dict):  # an integer column's median: its two middle values
            if statistic["lo"] is not None and statistic["hi"] is not None:
                result[name] = _half_away_midpoint(int(statistic["lo"]), int(statistic["hi"]))
            continue
        value = plain_number(statistic)
        if value is None:
            continue
        result[name] = round_half_away(float(value)) if schema[name].is_integer() else value
    return result


def _half_away_midpoint(low: int, high: int) -> int:
    """``(low + high) / 2`` rounded half away from zero (agents.values.round_half_away), on the integers."""
    total = low + high
    if total % 2 == 0:
        return total // 2
    return (total + 1) // 2 if total > 0 else (total - 1) // 2


def _outlier_summary(
    schema: pl.Schema,
    rows: int,
    bounds: list[Bounds],
    counts: dict[str, int],
    remaining: dict[str, int],
    replacements: dict[str, Any],
    params: OutlierRemoverParams,
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for item in bounds:
        count = counts.get(item.column, 0)
        summary[item.column] = {
            "method_used": params.detection_method,
            "data_type": str(schema[item.column]),
            "analysed": item.defined,
            "lower_bound": plain_number(item.lower),
            "upper_bound": plain_number(item.upper),
            "statistics": {
                key: plain_number(value) if key != "reason" else value for key, value in item.statistics.items()
            },
            "outlier_count": count,
            "outlier_percentage": pct(count, rows),
            "remaining_outliers": remaining.get(item.column, 0),
            "replacement_value": replacements.get(item.column),
        }
    return summary


def _result(
    outcome: Outcome,
    row_issues: pl.DataFrame,
    params: OutlierRemoverParams,
    started: float,
    output: pl.DataFrame | None,
) -> AgentResult:
    summary = outcome.summary
    analysed = [name for name, entry in summary.items() if entry["analysed"]]
    score = _score(outcome, params)
    share = pct(outcome.original, outcome.rows_before * len(analysed))
    summary_metrics = {
        "outliers_handled": outcome.handled,
        "outliers_flagged": outcome.remaining if params.removal_strategy == "flag" else 0,
        "original_outliers": outcome.original,
        "remaining_outliers": outcome.remaining,
        "rows_with_outliers": outcome.rows_with_outliers,
        "total_rows_processed": outcome.rows_before,
        "rows_removed": outcome.rows_before - outcome.rows_after,
        "columns_analyzed": len(analysed),
        "columns_with_outliers": sum(entry["outlier_count"] > 0 for entry in summary.values()),
    }
    data = {
        "detection_method": params.detection_method,
        "removal_strategy": params.removal_strategy,
        "numeric_columns": list(summary),
        "outlier_summary": summary,
        "identifier_columns_skipped": outcome.skipped,
        "removal_log": _removal_log(summary, params),
        "proposals": _proposals(outcome, params),
        "rows_before": outcome.rows_before,
        "rows_after": outcome.rows_after,
        "remaining_outliers_meaning": "output values outside the bounds computed on this agent's input",
        "effectiveness": score,
        "quality_status": score["status"],
    }
    findings = _findings(outcome, analysed, share, params)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=data,
        frame=output,
        removed=outcome.removed,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, analysed, share, score, params),
        row_level_issues=row_issues,
    )


def _score(outcome: Outcome, params: OutlierRemoverParams) -> dict[str, Any]:
    """Agensium's effectiveness; a flagged outlier counts as handled (it is reported for review)."""
    handled = outcome.original if params.removal_strategy == "flag" else outcome.handled
    rows, columns = retention(outcome.rows_before, outcome.rows_after, outcome.columns_before, outcome.columns_after)
    return effectiveness(
        {
            "outlier_reduction": 100.0 * handled / outcome.original if outcome.original else 100.0,
            "data_retention": rows,
            "column_retention": columns,
        },
        {
            "outlier_reduction": params.outlier_reduction_weight,
            "data_retention": params.data_retention_weight,
            "column_retention": params.column_retention_weight,
        },
        params,
    )


def _proposals(outcome: Outcome, params: OutlierRemoverParams) -> list[dict[str, Any]]:
    """With ``flag``: what each treatment would change, and the parameter that applies it."""
    if params.removal_strategy != "flag" or not outcome.original:
        return []
    columns = [name for name, entry in outcome.summary.items() if entry["outlier_count"]]
    return [
        proposal(
            AGENT_ID,
            "remove_outlier_rows",
            f"Remove the {outcome.rows_with_outliers:,} rows with an outlier ({params.detection_method} bounds)",
            {"removal_strategy": "remove"},
            columns=columns,
            rows_affected=outcome.rows_with_outliers,
        ),
        proposal(
            AGENT_ID,
            "impute_outliers_median",
            f"Replace the {outcome.original:,} outliers by their column's median (values invented)",
            {"removal_strategy": "impute_median"},
            columns=columns,
            cells_affected=outcome.original,
        ),
    ]


def _findings(outcome: Outcome, analysed: list[str], share: float, params: OutlierRemoverParams) -> Findings:
    summary = outcome.summary
    findings = Findings(AGENT_ID)
    if share > 20:
        findings.alert(
            "data_distribution",
            "critical",
            f"High outlier volume: {outcome.original:,} outliers ({share:.1f}% of numeric values)",
            "Check for measurement or unit errors before removing this many values",
            kind="high_volume",
            affected=len(analysed),
        )
    elif share > 10:
        findings.alert(
            "data_distribution",
            "high",
            f"Moderate outlier volume: {outcome.original:,} outliers ({share:.1f}% of numeric values)",
            "Tell genuine extremes from data errors before removing them",
            kind="medium_volume",
            affected=len(analysed),
        )
    heavy = [name for name, entry in summary.items() if entry["outlier_percentage"] > 15]
    if heavy:
        findings.alert(
            "column_distribution",
            "high",
            f"{len(heavy)} column(s) have more than 15% outliers: {', '.join(heavy[:5])}",
            "Review how these columns are measured; consider a transformation (log) before detection",
            kind="column_critical",
            affected=len(heavy),
        )
    row_retention, _ = retention(outcome.rows_before, outcome.rows_after, 1, 1)
    if row_retention < 90:
        findings.alert(
            "data_retention",
            "high",
            f"{outcome.rows_before - outcome.rows_after:,} rows removed: {row_retention:.1f}% of the rows kept",
            "Impute outliers (impute_median) or flag them instead of removing whole rows",
            kind="data_loss",
            affected=len(analysed),
        )
    skipped = [name for name, entry in summary.items() if not entry["analysed"]]
    if skipped:
        findings.alert(
            "detection_coverage",
            "low",
            f"{len(skipped)} numeric column(s) had no usable bounds: {', '.join(skipped[:5])}",
            "Nothing to do unless these columns should vary",
            kind="columns_skipped",
            affected=len(skipped),
        )
    if outcome.skipped:
        names = list(outcome.skipped)
        findings.alert(
            "detection_coverage",
            "low",
            f"{len(names)} identifier or code column(s) not checked for outliers: {', '.join(names[:5])}",
            "Name them in the 'columns' parameter to check them as measurements",
            kind="identifier_columns_skipped",
            affected=len(names),
        )
    for name, entry in summary.items():
        if entry["outlier_count"]:
            findings.issue(
                "outliers",
                "high" if entry["outlier_percentage"] > 5 else "medium",
                f"'{name}': {entry['outlier_count']:,} values outside [{format_number(entry['lower_bound'])}, "
                f"{format_number(entry['upper_bound'])}] ({params.detection_method})",
                field_name=name,
                details={"lower_bound": entry["lower_bound"], "upper_bound": entry["upper_bound"]},
            )
    if outcome.original:
        findings.recommend(
            "Document which extreme values are genuine and add range checks at data entry",
            "medium",
            field_name=", ".join((name for name, entry in summary.items() if entry["outlier_count"]))[:200],
            kind="review_outliers",
        )
    return findings


def _removal_log(summary: dict[str, Any], params: OutlierRemoverParams) -> list[dict[str, Any]]:
    verb = {"flag": "Flagged", "remove": "Removed rows with"}.get(params.removal_strategy, "Replaced")
    log = []
    for name, entry in summary.items():
        if not entry["outlier_count"]:
            continue
        bounds = f"[{format_number(entry['lower_bound'])}, {format_number(entry['upper_bound'])}]"
        replaced = entry["replacement_value"] is not None
        log.append(
            {
                "column": name,
                "action": {"flag": "flagged", "remove": "rows_removed"}.get(
                    params.removal_strategy, params.removal_strategy
                ),
                "outliers": entry["outlier_count"],
                "bounds": [entry["lower_bound"], entry["upper_bound"]],
                "replacement_value": entry["replacement_value"],
                "message": f"{verb} {entry['outlier_count']:,} outliers in '{name}' outside {bounds}"
                + (f" by {format_number(entry['replacement_value'])}" if replaced else ""),
            }
        )
    return log


def _cards(
    outcome: Outcome, analysed: list[str], share: float, score: dict[str, Any], params: OutlierRemoverParams
) -> list[SummaryCard]:
    removed = outcome.rows_before - outcome.rows_after
    flagged = params.removal_strategy == "flag"
    return [
        SummaryCard(
            "exec_outlier_removal",
            "Outliers flagged" if flagged else "Outlier Removal",
            f"{outcome.original:,} outliers flagged" if flagged else f"{outcome.handled:,} outliers handled",
            "info" if not outcome.original else "warning" if share > 10 else "good",
            f"{outcome.original:,} outliers in {len(analysed)} numeric columns ({params.detection_method}); "
            + ("nothing changed: see the proposals" if flagged else f"{removed:,} rows removed"),
        ),
        SummaryCard(
            "exec_outlier_effectiveness",
            "Outlier Handling Effectiveness",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
