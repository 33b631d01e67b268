"""The ``field-standardization`` agent: trim, spacing, synonyms, dates, units and case for text columns.

Agensium's version applied synonyms and units with ``map_elements`` (a Python call per value; ~64 s of
its 100,000-row clean chain). Here each column is one expression, run once per distinct value (the counts
below are weighted by each value's rows, and the column is rewritten through its changed values). Per text
value, after trimming and collapsing whitespace (when switched on), the first rule that applies gives the
result:

1. synonyms: the value, ignoring case, is a variant or a standard value of ``synonym_mappings`` -> the
   standard value exactly as configured (variants and targets are trimmed/collapsed like the data);
2. dates (text columns where >= 70 % of the values read as dates or datetimes, agents.values formats and
   day/month rules; the target format goes first on ties): a date -> ``target_date_format``; a value with
   a time of day is left as it is, apart from whitespace (a date format would drop the time);
3. units: "<number> <unit>" with a unit of ``unit_mappings`` (ignoring case) -> "<number * factor>
   <target_unit>", the number rounded to 6 decimals and written without a trailing ".0"; a value already
   in a target unit is rewritten the same way with factor 1;
4. otherwise ("text") ``case_strategy``; the default ``preserve`` keeps the case as written (changing it is
   a judgment call: the columns whose values differ only in case are proposed for ``lowercase``, with the
   cells it would change).

A date column whose day/month order is a guess (every date reads both ways, e.g. all days <= 12; or some read only
month/day and others only day/month), or with dates written with a 2-digit year (``13/04/55``: its century is a
guess; unless the target format writes a 2-digit year too), is not rewritten: which date a value means is not
known; it is reported instead.
Nulls stay null, blank text stays "" (null-handler decides about it). Date/Datetime columns stay typed
and are not touched; Categorical columns are standardized as text and stay Categorical.

Because every rule's output is a fixed point of the rules (a standard value maps to itself, a formatted
date reads with the target format, a converted unit is in a target unit, case is idempotent), running the
agent on its own output changes nothing. Parameters that would break this are rejected: a synonym that
is also a standard value mapped elsewhere, a target unit that is also converted to another unit, and a
``target_date_format`` that does not read back the day it wrote.

Counts per column: distinct values ("variants") before/after, case-variant groups (distinct values
equal ignoring case and whitespace) and whitespace issues (leading/trailing or repeated
whitespace) before/after, cells changed per rule. Every changed cell is counted; the first 1,000 per
column are kept as ``value_standardized`` row-level issues, and every value of a date column that is not
a date as ``unparseable_date``.

A primary too large for memory (``inputs.scan``) gives the same envelope, issues and data, every query on the
streaming engine, the new data as a plan over the scan (``AgentResult.scan``). A column with up to
``DISTINCT_TABLE_MAX`` distinct values goes through its distinct values as above (counted by a streaming
group_by); one with more has the rules run on every row and its counts taken as streaming aggregates, one after
another (a table of its values and the rules' columns over it would each hold a copy of the values). In the plans
over the scan nothing gathers a whole column (Polars' streaming engine does for ``replace`` and
``replace_strict``): changed values are mapped by a left join, synonyms and units looked up by joins with tables
of the parameters, and dates read without ``replace``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import polars as pl

from agents.clean.common import (
    DISTINCT_TEXTS_ARTIFACT,
    clean_result,
    effectiveness,
    known_distinct_texts,
    no_removed_rows,
)
from agents.columns import (
    collect_each,
    counted_values,
    is_text,
    narrow,
    require_columns,
    with_row_index,
)
from agents.envelope import (
    ROW_INDEX_COLUMN,
    AgentInputs,
    AgentResult,
    Alert,
    Issue,
    Progress,
    Recommendation,
    SummaryCard,
    data_columns,
)
from agents.errors import InvalidParametersError
from agents.findings import (
    Findings,
    card_status,
    collect_row_issues,
    issues_where,
    proposal,
)
from agents.formatting import shown
from agents.params.field_standardization import FieldStandardizationParams
from agents.values import (
    BELOW_MIN_DATE,
    BELOW_MIN_DATETIME,
    TEMPORAL_FORMATS,
    DatePlan,
    TemporalFormat,
    date_like,
    guessed_orders,
    parse_temporal,
    plan_dates,
)

AGENT_ID = "field-standardization"
AGENT_NAME = "Field Standardization"
DATE_COLUMN_SHARE = 0.7
EXAMPLES_PER_COLUMN = 1000
UNIT_VALUE_PATTERN = r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*)$"
MAX_INTEGER_RENDER = 1e15
NOT_DATES = ["synonym", "unit", "text"]
RULES = ("synonym", "date", "datetime_kept", "unit", "text")
# Characters that show nothing and mean nothing in a value (zero-width space, word joiner, a byte-order mark inside
# text): removed anywhere with the whitespace (trim_whitespace). Zero-width joiners stay: emoji and scripts use them.
INVISIBLE = "[\u200b\u2060\ufeff]"
_DROP_INVISIBLE = str.maketrans(dict.fromkeys("\u200b\u2060\ufeff"))
# normalize_internal_spacing: a run of spaces and tabs becomes one space, and the spaces around a line break go; the
# line breaks of a multi-line value (an address, a comment) stay.
AROUND_BREAK, SPACES = r"[^\S\r\n]*(\r\n|\r|\n)[^\S\r\n]*", r"[^\S\r\n]+"
_AROUND_BREAK, _SPACES = re.compile(AROUND_BREAK), re.compile(SPACES)
# A variant the whitespace rules change: whitespace at an end, spaces repeated or beside a line break, whitespace other
# than a space or a line break (a tab, a no-break space), invisible characters.
WHITESPACE_ISSUE = r"^\s|\s$|[^\S\r\n]\s|[\r\n][^\S\r\n]|[^\S \r\n]|" + INVISIBLE


@dataclass
class ColumnPlan:
    column: str
    categorical: bool
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-case variant -> standard value
    units: dict[str, tuple[float, str]] = field(default_factory=dict)  # lower-case unit -> (factor, target)
    dates: DatePlan | None = None
    dates_skipped: str | None = None  # why a date column is not rewritten


def run(inputs: AgentInputs, params: FieldStandardizationParams, progress: Progress) -> AgentResult:
    """Standardize ``inputs.primary``, or (a primary too large for memory) ``inputs.scan``: the same rules and
    counts, taken on the streaming engine (``_streamed``), and the new data returned as a plan over the scan
    (``AgentResult.scan``)."""
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    target_format = _validate(frame, params)
    columns, skipped = _select_columns(frame, params)
    rows = frame.height if inputs.scan is None else inputs.row_count
    progress(0.0, f"Standardizing {len(columns)} text columns of {rows:,} rows")

    standardized: pl.DataFrame | None = None
    standardized_scan: pl.LazyFrame | None = None
    if inputs.scan is None:
        shared = inputs.artifacts.get(DISTINCT_TEXTS_ARTIFACT)
        column_reports, row_issues, standardized = _in_memory(frame, columns, params, target_format, progress, shared)
    else:
        scan = _numbered(inputs.scan)
        column_reports, row_issues, standardized_scan = _streamed(
            scan, frame.schema, rows, columns, params, target_format, progress
        )
    progress(0.9, "Scoring")

    totals = Totals.of(column_reports)
    score = _score(totals, params)
    summary_metrics = {
        "columns_standardized": totals.columns_changed,
        "values_changed": totals.values_changed,
        "variations_reduced": totals.variations_reduced,
        "columns_processed": len(columns),
        "total_rows_processed": rows,
    }
    data = _data(column_reports, skipped, totals, score, params)
    alerts, issues, recommendations = _findings(column_reports, params)
    cards = _cards(totals, len(columns), score)
    progress(1.0, "Standardization done")
    result = clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=data,
        frame=standardized,
        removed=no_removed_rows(),
        alerts=alerts,
        issues=issues,
        recommendations=recommendations,
        cards=cards,
        row_level_issues=row_issues,
    )
    if standardized_scan is not None:
        result.scan, result.rows = standardized_scan, rows
    if DISTINCT_TEXTS_ARTIFACT in inputs.artifacts:
        result.artifacts[DISTINCT_TEXTS_ARTIFACT] = {}  # used: the chain holds them no longer
    return result


def _in_memory(
    frame: pl.DataFrame,
    columns: list[str],
    params: FieldStandardizationParams,
    target_format: TemporalFormat,
    progress: Progress,
    shared: Any = None,
) -> tuple[list[dict[str, Any]], pl.DataFrame, pl.DataFrame]:
    """The column reports, the row-level issues and the new data of a frame. ``shared``: the distinct values an
    earlier agent counted (``DISTINCT_TEXTS_ARTIFACT``), taken for the columns it counted as they are here."""
    distinct = _distinct_values(frame, columns, params, shared)
    plans, tables, column_reports = _ruled(distinct, columns, frame.schema, params, target_format, progress)
    row_issues = collect_row_issues(_issue_parts(frame, tables, plans, column_reports))
    if not any(report["values_changed"] for report in column_reports):
        return column_reports, row_issues, frame
    return column_reports, row_issues, _standardized(frame, tables, plans, column_reports, params)


COUNT = "__standardized_count__"
TEXT = "__standardized_text__"
LOWER = "__standardized_lower__"  # TEXT lowercased
KEPT_CASE = ("preserve", "none")
REPLACE_SHARE = 8  # a column is rewritten through a mapping of its changed values up to 1/8 of its rows


def _distinct_values(
    frame: pl.DataFrame, columns: list[str], params: FieldStandardizationParams, shared: Any = None
) -> list[pl.DataFrame]:
    """Per column, its distinct values as text (under the column's name; null among them when there is one)
    with their row counts (``COUNT``) and their trimmed/collapsed text (``TEXT``). Every rule reads a value
    alone, so the rules run and the counts are taken once per distinct value, not once per row (a
    Categorical's values are found before they are turned into text). ``shared``: distinct values an earlier
    agent counted (``known_distinct_texts``: a million e-mail addresses are not grouped twice)."""
    queries = []
    for column in columns:
        known = known_distinct_texts(frame, column, shared)
        counted = (
            counted_values(frame, column, COUNT)
            if known is None
            else known.lazy().select(pl.col("raw").alias(column), pl.col("count").alias(COUNT))
        )
        queries.append(
            counted.select(pl.col(column).cast(pl.String), COUNT).with_columns(
                _normalized(pl.col(column), params).alias(TEXT)
            )
        )
    return collect_each(queries, frame.height)


def _ruled(
    distinct: list[pl.DataFrame],
    columns: list[str],
    schema: pl.Schema,
    params: FieldStandardizationParams,
    target_format: TemporalFormat,
    progress: Progress,
) -> tuple[list[ColumnPlan], list[pl.DataFrame], list[dict[str, Any]]]:
    """Each column's plan from its ``distinct`` values, the rules applied to them (one table per column) and the
    column reports: the in-memory and the streamed runs' shared part. Empties ``distinct`` (the tables replace it)."""
    plans = [
        _plan(values, column, schema[column], params, target_format)
        for column, values in zip(columns, distinct, strict=True)
    ]
    progress(0.3, "Applying the rules")
    tables = _apply_rules(distinct, plans, params)
    distinct.clear()
    progress(0.6, "Counting variants")
    return plans, tables, _column_reports(tables, plans, params)


def _apply_rules(
    distinct: list[pl.DataFrame], plans: list[ColumnPlan], params: FieldStandardizationParams
) -> list[pl.DataFrame]:
    """Per planned column, its distinct values with their counts, normalized text (``TEXT``, and lowercased
    ``LOWER``), standardized text (``_new``) and the rule that gave it (``_rule``)."""
    queries = []
    lower = [pl.col(TEXT).str.to_lowercase().alias(LOWER)] if _needs_lower(params) else []
    for index, (values, plan) in enumerate(zip(distinct, plans, strict=True)):
        second, third = _stages(index, plan, params)
        queries.append(
            values.lazy()
            .with_columns(second)
            .with_columns(third)
            .select(plan.column, COUNT, TEXT, _new(index), _rule(index), *lower)
        )
    return collect_each(queries, max((values.height for values in distinct), default=0))


def _same_key(params: FieldStandardizationParams) -> bool:
    """Whether TEXT is trimmed and collapsed as a variant's key (``_variants``) is: LOWER is then the key."""
    return params.normalize_internal_spacing and params.trim_whitespace


def _needs_lower(params: FieldStandardizationParams) -> bool:
    """Whether LOWER is used: as the variants' key, or as a kept-case text value lowercased."""
    return _same_key(params) or params.case_strategy in KEPT_CASE


def _changed(index: int, plan: ColumnPlan) -> pl.Expr:
    return (pl.col(plan.column) != pl.col(_new(index))).fill_null(False)


def _rewrites(
    schema: pl.Schema,
    rows: int,
    tables: list[pl.DataFrame],
    plans: list[ColumnPlan],
    reports: list[dict[str, Any]],
) -> tuple[dict[str, tuple[int, ColumnPlan, pl.DataFrame | None]], list[tuple[int, ColumnPlan]]]:
    """How each planned column of ``rows`` rows is rewritten: a column with few changed distinct values through
    those values (mapped: the column, its index and plan, and its changed values, or None for an Enum only cast
    to Categorical); one with many (a mapping as long as the column would cost more than the rules) by running
    the rules on every row (listed); an unchanged String or Categorical column is kept as it is."""
    mapped: dict[str, tuple[int, ColumnPlan, pl.DataFrame | None]] = {}
    per_row: list[tuple[int, ColumnPlan]] = []
    for index, (table, plan, report) in enumerate(zip(tables, plans, reports, strict=True)):
        if report["values_changed"]:
            changes = table.filter(_changed(index, plan)).select(plan.column, _new(index))
            if changes.height * REPLACE_SHARE > rows:
                per_row.append((index, plan))
            else:
                mapped[plan.column] = (index, plan, changes)
        elif schema[plan.column] != pl.String() and schema[plan.column] != pl.Categorical():
            mapped[plan.column] = (index, plan, None)
    return mapped, per_row


def _standardized(
    frame: pl.DataFrame,
    tables: list[pl.DataFrame],
    plans: list[ColumnPlan],
    reports: list[dict[str, Any]],
    params: FieldStandardizationParams,
) -> pl.DataFrame:
    """The input's columns, the planned ones replaced by their standardized values (Categorical kept), as
    ``_rewrites`` decides."""
    mapped, per_row = _rewrites(frame.schema, frame.height, tables, plans, reports)
    replaced: dict[str, pl.Expr | pl.Series] = {}
    for column, (index, plan, changes) in mapped.items():
        text = pl.col(column).cast(pl.String)
        expr = text if changes is None else text.replace(changes[column], changes[_new(index)])
        replaced[column] = _restore(expr, plan).alias(column)
    queries = []
    for index, plan in per_row:
        second, third = _stages(index, plan, params)
        queries.append(
            narrow(frame, [plan.column])
            .select(_normalized(pl.col(plan.column).cast(pl.String), params).alias(TEXT))
            .with_columns(second)
            .with_columns(third)
            .select(_restore(pl.col(_new(index)), plan).alias(plan.column))
        )
    for result in collect_each(queries, frame.height):
        replaced[result.columns[0]] = result.to_series()
    if not replaced:
        return frame
    return frame.with_columns(replaced.values())


@dataclass
class Totals:
    """The column reports summed: columns and values changed, variants removed, and the case and whitespace
    variations before and after."""

    columns_changed: int
    values_changed: int
    variations_reduced: int
    variations_before: int
    variations_after: int

    @classmethod
    def of(cls, reports: list[dict[str, Any]]) -> Totals:
        return cls(
            columns_changed=sum(1 for report in reports if report["values_changed"]),
            values_changed=sum(report["values_changed"] for report in reports),
            variations_reduced=sum(report["distinct_before"] - report["distinct_after"] for report in reports),
            variations_before=sum(
                report["case_variant_groups_before"] + report["whitespace_issues_before"] for report in reports
            ),
            variations_after=sum(
                report["case_variant_groups_after"] + report["whitespace_issues_after"] for report in reports
            ),
        )


def _score(totals: Totals, params: FieldStandardizationParams) -> dict[str, Any]:
    before, after = totals.variations_before, totals.variations_after
    return effectiveness(
        {
            "standardization_effectiveness": 100.0 * (before - after) / before if before else 100.0,
            "data_retention": 100.0,
            "column_retention": 100.0,
        },
        {
            "standardization_effectiveness": params.standardization_effectiveness_weight,
            "data_retention": params.data_retention_weight,
            "column_retention": params.column_retention_weight,
        },
        params,
    )


def _data(
    column_reports: list[dict[str, Any]],
    skipped: list[dict[str, str]],
    totals: Totals,
    score: dict[str, Any],
    params: FieldStandardizationParams,
) -> dict[str, Any]:
    return {
        "standardization_score": score,
        "quality_status": score["status"],
        "columns": column_reports,
        "skipped_columns": skipped,
        "variations": {"before": totals.variations_before, "after": totals.variations_after},
        "proposals": _proposals(column_reports, params),
        "conventions": {
            "variants": "distinct non-null values",
            "case_variant_groups": "groups of distinct values equal ignoring case and whitespace",
            "whitespace_issues": "distinct values with leading/trailing or repeated whitespace",
            "rule_order": "synonym, date, unit, case (first that applies)",
            "date_column_share": DATE_COLUMN_SHARE,
            "row_level_examples_per_column": EXAMPLES_PER_COLUMN,
            "row_index": "1-based data row of the input file",
        },
    }


def _cards(totals: Totals, columns: int, score: dict[str, Any]) -> list[SummaryCard]:
    return [
        SummaryCard(
            "standardization_values",
            "Values standardized",
            f"{totals.values_changed:,}",
            "info",
            f"{totals.values_changed:,} values changed in {totals.columns_changed} of {columns} text columns; "
            f"{totals.variations_reduced:,} variants removed",
        ),
        SummaryCard(
            "standardization_score",
            "Standardization score",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Case and whitespace variations: {totals.variations_before:,} before, {totals.variations_after:,} after",
        ),
    ]


def _new(index: int) -> str:
    return f"__standardized_{index}__"


def _rule(index: int) -> str:
    return f"__standardized_rule_{index}__"


def _restore(expr: pl.Expr, plan: ColumnPlan) -> pl.Expr:
    return expr.cast(pl.Categorical) if plan.categorical else expr


# ---------------------------------------------------------------------------------------------------------
# parameters


def _validate(frame: pl.DataFrame, params: FieldStandardizationParams) -> TemporalFormat:
    require_columns(frame, params.target_columns, agent_id=AGENT_ID, field="target_columns")
    require_columns(frame, params.preserve_columns, agent_id=AGENT_ID, field="preserve_columns")
    require_columns(frame, params.synonym_mappings, agent_id=AGENT_ID, field="synonym_mappings")
    require_columns(frame, params.unit_mappings, agent_id=AGENT_ID, field="unit_mappings")
    for column in params.synonym_mappings:
        _synonym_lookup(params, column)
    for column in params.unit_mappings:
        _unit_lookup(params, column)
    return _target_format(params.target_date_format)


def _target_format(pattern: str) -> TemporalFormat:
    """The target format as a date format; it must write a date that reads back as the same day."""
    sample = dt.date(2024, 1, 31)
    try:
        written = pl.Series([sample]).dt.to_string(pattern)
        known = next((fmt for fmt in TEMPORAL_FORMATS if fmt.pattern == pattern), None)
        fmt = known or TemporalFormat(pattern, "date", four_digit_year="%Y" in pattern)
        value = pl.col("value")
        read = written.to_frame("value").select(pl.when(date_like(value)).then(parse_temporal(value, fmt)))
        back = read.to_series().to_list()
    except pl.exceptions.PolarsError:
        back = []
    if back != [sample] or fmt.kind != "date":
        raise InvalidParametersError(
            f"{AGENT_ID}.target_date_format: {pattern!r} is not a date format that writes year, month and day "
            "in a layout the agent reads back (e.g. %Y-%m-%d, %d/%m/%Y, %d %B %Y, %B %d, %Y)",
            agent_id=AGENT_ID,
            field="target_date_format",
        )
    return fmt


def _normalize_text(value: str, params: FieldStandardizationParams) -> str:
    if params.trim_whitespace:
        value = value.translate(_DROP_INVISIBLE)
    if params.normalize_internal_spacing:
        value = _SPACES.sub(" ", _AROUND_BREAK.sub(r"\1", value))
    if params.trim_whitespace:
        value = value.strip()
    return value


def _synonym_lookup(params: FieldStandardizationParams, column: str) -> dict[str, str]:
    """lower-case variant or standard value -> standard value; conflicts are parameter errors."""
    lookup: dict[str, str] = {}
    where = f"synonym_mappings.{column}"
    mapping = params.synonym_mappings[column]
    for target in mapping.values():
        standard = _normalize_text(target, params)
        known = lookup.setdefault(standard.lower(), standard)
        if known != standard:
            _conflict(where, f"standard values '{known}' and '{standard}' differ only in case")
    for variant, target in mapping.items():
        key, standard = _normalize_text(variant, params).lower(), _normalize_text(target, params)
        known = lookup.setdefault(key, standard)
        if known != standard:
            _conflict(where, f"'{variant}' maps to '{standard}' but is also the standard value '{known}'")
    return lookup


def _unit_lookup(params: FieldStandardizationParams, column: str) -> dict[str, tuple[float, str]]:
    lookup: dict[str, tuple[float, str]] = {}
    where = f"unit_mappings.{column}"
    mapping = params.unit_mappings[column]
    for conversion in mapping.values():
        target = _normalize_text(conversion.target_unit, params)
        known = lookup.setdefault(target.lower(), (1.0, target))
        if known != (1.0, target):
            _conflict(where, f"target units '{known[1]}' and '{target}' differ only in case")
    for unit, conversion in mapping.items():
        key, target = _normalize_text(unit, params).lower(), _normalize_text(conversion.target_unit, params)
        if not key:
            _conflict(where, "a unit must not be empty")
        known = lookup.setdefault(key, (conversion.factor, target))
        if known != (conversion.factor, target):
            _conflict(where, f"'{unit}' is converted to '{target}' but is also a target unit")
    return lookup


def _conflict(where: str, message: str) -> None:
    raise InvalidParametersError(f"{AGENT_ID}.{where}: {message}", agent_id=AGENT_ID, field=where)


def _select_columns(frame: pl.DataFrame, params: FieldStandardizationParams) -> tuple[list[str], list[dict[str, str]]]:
    schema = frame.schema
    preserved = set(params.preserve_columns)
    requested = params.target_columns or [name for name in data_columns(frame) if is_text(schema[name])]
    columns: list[str] = []
    skipped: list[dict[str, str]] = []
    for name in dict.fromkeys(requested):
        if name in preserved:
            skipped.append({"field_name": name, "reason": "in preserve_columns"})
        elif not is_text(schema[name]):
            skipped.append({"field_name": name, "reason": f"{schema[name]} column, not text: left typed"})
        else:
            columns.append(name)
    for name in [*params.synonym_mappings, *params.unit_mappings]:
        if name not in columns and not any(item["field_name"] == name for item in skipped):
            skipped.append({"field_name": name, "reason": "has mappings but is not a target column"})
    return columns, skipped


# ---------------------------------------------------------------------------------------------------------
# expressions


# What every whitespace rule needs in a value to change it: whitespace (regex \s and strip_chars() alike mean Unicode
# White_Space) or an invisible character.
_NORMALIZABLE = r"[\s\u200b\u2060\ufeff]"


def _normalized(expr: pl.Expr, params: FieldStandardizationParams) -> pl.Expr:
    """``expr`` trimmed and collapsed as the parameters say. Only values holding whitespace or an invisible
    character go through the rules (the others come out as they went in): a million e-mail addresses are one
    match each instead of three replacements and a strip (50 ms instead of 230)."""
    if not (params.trim_whitespace or params.normalize_internal_spacing):
        return expr
    rewritten = expr
    if params.trim_whitespace:
        rewritten = rewritten.str.replace_all(INVISIBLE, "")
    if params.normalize_internal_spacing:
        rewritten = rewritten.str.replace_all(AROUND_BREAK, "${1}").str.replace_all(SPACES, " ")
    if params.trim_whitespace:
        rewritten = rewritten.str.strip_chars()
    return pl.when(expr.str.contains(_NORMALIZABLE)).then(rewritten).otherwise(expr)


def _plan(
    distinct: pl.DataFrame,
    column: str,
    dtype: pl.DataType,
    params: FieldStandardizationParams,
    target: TemporalFormat,
) -> ColumnPlan:
    """The rules for one column; ``distinct`` holds its distinct values and their counts
    (``_distinct_values``)."""
    plan = _configured_plan(column, dtype, params)
    if params.date_standardization:
        # agents.values.distinct_counts of the normalized text, from the distinct values: grouped again only
        # when normalizing merged some of them
        values = distinct.select(pl.col(TEXT).alias("value"), pl.col(COUNT).alias("count")).filter(
            pl.col("value").is_not_null() & (pl.col("value") != "")
        )
        if distinct.select((pl.col(TEXT) != pl.col(column)).any()).item():
            values = values.group_by("value").agg(pl.col("count").sum())
        if values.height and values["value"].str.contains(r"\d").any():
            _plan_dates(plan, values, target)
    return plan


def _configured_plan(column: str, dtype: pl.DataType, params: FieldStandardizationParams) -> ColumnPlan:
    """A column's rules that come from the parameters alone: its synonyms and units."""
    plan = ColumnPlan(column=column, categorical=dtype != pl.String)
    if params.apply_synonyms and column in params.synonym_mappings:
        plan.synonyms = _synonym_lookup(params, column)
    if params.unit_standardization and column in params.unit_mappings:
        plan.units = _unit_lookup(params, column)
    return plan


def _plan_dates(plan: ColumnPlan, values: pl.DataFrame, target: TemporalFormat) -> None:
    """The column's dates, planned from its distinct non-blank normalized values (``value``) and their rows
    (``count``): rewritten when enough of them are dates and their day/month order is not a guess."""
    dates = plan_dates(values, plan.column, TEMPORAL_FORMATS, preferred=target)
    guessed = guessed_orders(dates.ambiguity)
    if dates.share >= DATE_COLUMN_SHARE and guessed:
        item = guessed[0]
        why = (
            "no value decides"
            if item["decided_by"].startswith("tie")
            else f"{item['values_only_valid_as_chosen']:,} values read only as the first and "
            f"{item['values_only_valid_as_alternative']:,} only as the second"
        )
        plan.dates_skipped = (
            f"{item['ambiguous_values']:,} dates read both as {item['chosen_format']} and "
            f"{item['alternative_format']} and {why}: not rewritten"
        )
    elif dates.share >= DATE_COLUMN_SHARE and dates.two_digit_years and target.four_digit_year:
        plan.dates_skipped = f"{dates.century_note()}: not rewritten"  # a 2-digit target keeps the century unsaid
    elif dates.share >= DATE_COLUMN_SHARE:
        plan.dates = dates


def _stages(
    index: int, plan: ColumnPlan, params: FieldStandardizationParams, *, row_by_row: bool = False
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Two rounds of columns over the distinct values, whose normalized text is ``TEXT``: each rule's
    candidate value (read from that text); the standardized value (``_new``) and the rule that produced it
    (``_rule``; null for null values). The second round reads the first one's columns, so no expression is
    evaluated twice. ``row_by_row``: over the rows of a scan, with expressions the streaming engine runs batch
    by batch: the synonyms and units looked up are columns joined beforehand (``_with_lookups``), and the dates
    are read by ``_read_dates``."""
    text = pl.col(TEXT)
    second: list[pl.Expr] = []
    branches: list[tuple[str, pl.Expr, pl.Expr]] = []  # (rule, applies, value)
    if plan.synonyms:
        name = f"__standardized_synonym_{index}__"
        looked_up = (
            pl.col(_looked_up("synonym", index))
            if row_by_row
            else _lookup(text.str.to_lowercase(), plan.synonyms, pl.String())
        )
        second.append(looked_up.alias(name))
        branches.append(("synonym", pl.col(name).is_not_null(), pl.col(name)))
    if plan.dates is not None:
        date_name, time_name = f"__standardized_date_{index}__", f"__standardized_time_{index}__"
        date_formats = [(fmt, n) for fmt, n in plan.dates.formats if fmt.kind == "date"]
        time_formats = [(fmt, n) for fmt, n in plan.dates.formats if fmt.kind == "datetime"]
        dates = DatePlan(plan.column, plan.dates.non_null, date_formats, kind="date")
        times = DatePlan(plan.column, plan.dates.non_null, time_formats, kind="datetime")
        second += [
            _read_dates(dates, text, row_by_row).alias(date_name),
            _read_dates(times, text, row_by_row).is_not_null().alias(time_name),
        ]
        branches.append(
            ("date", pl.col(date_name).is_not_null(), pl.col(date_name).dt.to_string(params.target_date_format))
        )
        branches.append(("datetime_kept", pl.col(time_name), text))
    if plan.units:
        name = f"__standardized_unit_{index}__"
        parts = text.str.extract_groups(UNIT_VALUE_PATTERN)
        unit = parts.struct.field("2").str.to_lowercase()
        if row_by_row:
            factor, target = pl.col(_looked_up("factor", index)), pl.col(_looked_up("target", index))
        else:
            factor = _lookup(unit, {key: item[0] for key, item in plan.units.items()}, pl.Float64())
            target = _lookup(unit, {key: item[1] for key, item in plan.units.items()}, pl.String())
        value = parts.struct.field("1").cast(pl.Float64, strict=False) * factor
        converted = pl.when(value.is_finite()).then(pl.concat_str(_render_number(value), pl.lit(" "), target))
        second.append(converted.alias(name))
        branches.append(("unit", pl.col(name).is_not_null(), pl.col(name)))
    cased = {
        "lowercase": text.str.to_lowercase(),
        "uppercase": text.str.to_uppercase(),
        "titlecase": text.str.to_titlecase(),
        "none": text,
        "preserve": text,
    }[params.case_strategy]
    result: pl.Expr = cased
    rule: pl.Expr = pl.when(text.is_not_null()).then(pl.lit("text"))
    for name, applies, value in reversed(branches):
        result = pl.when(applies).then(value).otherwise(result)
        rule = pl.when(applies).then(pl.lit(name)).otherwise(rule)
    return second, [result.alias(_new(index)), rule.cast(pl.Enum(RULES)).alias(_rule(index))]


def _lookup(expr: pl.Expr, mapping: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    """``mapping``'s value for ``expr``, null for a value not in it."""
    return expr.replace_strict(list(mapping), list(mapping.values()), default=None, return_dtype=dtype)


def _looked_up(kind: str, index: int) -> str:
    return f"__standardized_{kind}_lookup_{index}__"


def _with_lookups(rows: pl.LazyFrame, index: int, plan: ColumnPlan) -> tuple[pl.LazyFrame, list[str]]:
    """The rows (with ``TEXT``) with the column's synonym and unit lookups as columns (``_looked_up``), joined
    in row order from tables of the parameters: what ``_lookup`` gives, but run batch by batch by the streaming
    engine (which gathers the whole column first for ``replace_strict``); and the names of those columns."""
    lookups: list[tuple[pl.Expr, list[str], dict[str, pl.Series]]] = []  # (key, its values, looked-up columns)
    if plan.synonyms:
        synonym = _looked_up("synonym", index)
        values = pl.Series(synonym, list(plan.synonyms.values()), dtype=pl.String)
        lookups.append((pl.col(TEXT).str.to_lowercase(), list(plan.synonyms), {synonym: values}))
    if plan.units:
        unit = pl.col(TEXT).str.extract_groups(UNIT_VALUE_PATTERN).struct.field("2").str.to_lowercase()
        factor, target = _looked_up("factor", index), _looked_up("target", index)
        conversions = list(plan.units.values())
        columns = {
            factor: pl.Series(factor, [item[0] for item in conversions], dtype=pl.Float64),
            target: pl.Series(target, [item[1] for item in conversions], dtype=pl.String),
        }
        lookups.append((unit, list(plan.units), columns))
    added: list[str] = []
    key = f"__standardized_key_{index}__"
    for expr, keys, columns in lookups:
        table = pl.DataFrame([pl.Series(key, keys, dtype=pl.String), *columns.values()])
        rows = (
            rows.with_columns(expr.alias(key)).join(table.lazy(), on=key, how="left", maintain_order="left").drop(key)
        )
        added += list(columns)
    return rows, added


def _read_dates(plan: DatePlan, expr: pl.Expr, row_by_row: bool) -> pl.Expr:
    """``plan.expression(expr)``, or (``row_by_row``) the same dates read without ``replace`` (which makes the
    streaming engine gather the whole column): a four-digit-year format's date before ``MIN_YEAR`` is null by
    a when/then instead of ``clip(...).replace(below, None)`` (``agents.values.parse_temporal``)."""
    if not row_by_row:
        return plan.expression(expr)
    parts: list[pl.Expr] = []
    for fmt, _ in plan.formats:
        text = expr.cast(pl.String).str.strip_chars()
        if fmt.kind == "date":
            parsed, below = text.str.to_date(fmt.pattern, strict=False), pl.lit(BELOW_MIN_DATE, pl.Date)
        else:
            parsed = text.str.to_datetime(fmt.pattern, time_unit="us", strict=False)
            below = pl.lit(BELOW_MIN_DATETIME, pl.Datetime("us"))
        if fmt.four_digit_year:
            parsed = pl.when(parsed > below).then(parsed)
        if plan.kind == "datetime" and fmt.kind == "date":
            parsed = parsed.cast(pl.Datetime("us"))
        parts.append(parsed)
    if not parts:
        return pl.lit(None, pl.Date() if plan.kind == "date" else pl.Datetime("us"))
    return pl.when(date_like(expr)).then(pl.coalesce(parts) if len(parts) > 1 else parts[0])


def _render_number(value: pl.Expr) -> pl.Expr:
    rounded = value.round(6)
    whole = (rounded == rounded.round(0)) & (rounded.abs() < MAX_INTEGER_RENDER)
    return pl.when(whole).then(rounded.cast(pl.Int64).cast(pl.String)).otherwise(rounded.cast(pl.String))


# ---------------------------------------------------------------------------------------------------------
# counts, issues, findings


def _column_reports(
    tables: list[pl.DataFrame], plans: list[ColumnPlan], params: FieldStandardizationParams
) -> list[dict[str, Any]]:
    """Per column, from its distinct values: cells changed (each value weighted by its rows), by rule, not
    dates, and that lowercasing would change; variants before and after."""
    if not plans:
        return []
    weight = pl.col(COUNT)
    same_key = _same_key(params)
    queries: list[pl.LazyFrame] = []
    for index, (table, plan) in enumerate(zip(tables, plans, strict=True)):
        after = pl.col(_new(index))
        changed = _changed(index, plan)
        exprs = [weight.filter(changed).sum().alias("changed")]
        if plan.dates is not None:
            exprs.append(weight.filter(_not_a_date(index).fill_null(False)).sum().alias("undated"))
        as_text = pl.col(_rule(index)) == "text"
        # With the case kept a text value is its TEXT, whose lowercase is LOWER.
        lowered = pl.col(LOWER) if params.case_strategy in KEPT_CASE else after.str.to_lowercase()
        exprs.append(weight.filter((as_text & (after != lowered)).fill_null(False)).sum().alias("lowercase"))
        queries.append(table.lazy().select(exprs))
    rows = [result.row(0, named=True) for result in collect_each(queries, max(table.height for table in tables))]
    counted: list[dict[str, int]] = []
    after_of: dict[int, dict[str, int]] = {}
    for index, (table, plan) in enumerate(zip(tables, plans, strict=True)):
        by_rule = dict.fromkeys(RULES, 0)
        if rows[index]["changed"]:  # the changed values are usually few: counted by rule among them alone
            changed_rules = table.filter(_changed(index, plan)).group_by(_rule(index)).agg(pl.col(COUNT).sum())
            by_rule.update((str(rule), int(count)) for rule, count in changed_rules.iter_rows())
        rows[index].update(by_rule)
        present = table.filter(pl.col(plan.column).is_not_null())
        counted.append(_variants(present[plan.column], present[LOWER] if same_key else None))
        if rows[index]["changed"]:
            after_of[index] = _variants(present[_new(index)].unique())
    return [
        _report(plan, rows[index], counted[index], after_of.get(index, counted[index]))
        for index, plan in enumerate(plans)
    ]


def _report(
    plan: ColumnPlan, sums: dict[str, Any], variants_before: dict[str, int], variants_after: dict[str, int]
) -> dict[str, Any]:
    """A column's report from its cells counted (``sums``: changed, by rule, undated, lowercase) and its variants
    before and after (``_variants``)."""
    report: dict[str, Any] = {
        "field_name": plan.column,
        "values_changed": int(sums["changed"]),
        "distinct_before": variants_before["distinct"],
        "distinct_after": variants_after["distinct"],
        "case_variant_groups_before": variants_before["case_groups"],
        "case_variant_groups_after": variants_after["case_groups"],
        "whitespace_issues_before": variants_before["whitespace"],
        "whitespace_issues_after": variants_after["whitespace"],
        "changes_by_rule": {name: int(sums[name] or 0) for name in RULES},
        "synonyms_configured": len(plan.synonyms),
        "units_configured": len(plan.units),
        "date_column": plan.dates is not None,
        "date_rewrite_skipped": plan.dates_skipped,
        "cells_lowercase_would_change": int(sums["lowercase"] or 0),
    }
    report["variants_reduced"] = report["distinct_before"] - report["distinct_after"]
    if plan.dates is not None:
        report["dates"] = plan.dates.describe()
        report["values_not_dates"] = int(sums["undated"] or 0)
    return report


def _not_a_date(index: int) -> pl.Expr:
    """In a date column: a non-blank value that no rule read as a date or datetime."""
    return pl.col(_rule(index)).is_in(NOT_DATES) & (pl.col(_new(index)).str.strip_chars() != "")


def _variant_key() -> pl.Expr:
    """A variant's key (of column ``value``): without invisible characters, trimmed, collapsed and lowercased."""
    value = pl.col("value").str.replace_all(INVISIBLE, "")
    return value.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


def _variants(values: pl.Series, keys: pl.Series | None = None) -> dict[str, int]:
    """Over distinct non-null ``values``: how many, how many with whitespace issues, and how many groups of
    more than one are equal ignoring case and whitespace. ``keys``: each value trimmed, collapsed and
    lowercased, when known.

    Only a value that is not its own key can have a whitespace issue or share its key with another value
    (two values that are their own key differ), so the rest is looked at only through those values."""
    key = _variant_key()
    frame = pl.DataFrame({"value": values, "key": keys}) if keys is not None else pl.DataFrame({"value": values})
    if keys is None:
        frame = frame.with_columns(key.alias("key"))
    moved = frame.filter(pl.col("key") != pl.col("value"))
    groups = 0
    if moved.height:
        moved_keys = moved["key"]
        fixed = frame.filter(pl.col("value").is_in(moved_keys.unique().implode()) & (pl.col("key") == pl.col("value")))[
            "key"
        ]
        groups = int((pl.concat([moved_keys, fixed]).unique_counts() > 1).sum())
    return {
        "distinct": frame.height,
        "whitespace": int(moved["value"].str.contains(WHITESPACE_ISSUE).sum()),
        "case_groups": groups,
    }


def _issue_parts(
    frame: pl.DataFrame | pl.LazyFrame,
    tables: list[pl.DataFrame],
    plans: list[ColumnPlan],
    reports: list[dict[str, Any]],
) -> list[pl.LazyFrame]:
    """The rows of each issue, in row order: the rows whose value is one of the distinct values at issue,
    joined with its standardized value and rule. ``frame``: the data, or a scan of it."""
    parts: list[pl.LazyFrame] = []
    for index, (table, plan, report) in enumerate(zip(tables, plans, reports, strict=True)):
        parts += _column_issues(partial(_joined, frame, table, plan), index, plan, report)
    return parts


def _joined(frame: pl.DataFrame | pl.LazyFrame, table: pl.DataFrame, plan: ColumnPlan, mask: pl.Expr) -> pl.LazyFrame:
    """The rows (row index, value as text) whose value is one of the distinct values of ``table`` where ``mask``
    holds, with their standardized value and rule."""
    keys = table.lazy().filter(mask).drop(COUNT, TEXT, LOWER, strict=False)
    return (
        _narrowed(frame, [ROW_INDEX_COLUMN, plan.column])
        .with_columns(pl.col(plan.column).cast(pl.String))
        .join(keys, on=plan.column, how="inner", maintain_order="left")
    )


def _column_issues(
    rows_of: Callable[[pl.Expr], pl.LazyFrame], index: int, plan: ColumnPlan, report: dict[str, Any]
) -> list[pl.LazyFrame]:
    """A column's issues: its first changed cells, and every value of a date column that is not a date.
    ``rows_of(mask)``: the rows where ``mask`` holds, with the value as text, ``_new`` and ``_rule``."""
    before, after = pl.col(plan.column), pl.col(_new(index))
    parts: list[pl.LazyFrame] = []
    if report["values_changed"]:
        parts.append(
            issues_where(
                rows_of(_changed(index, plan)),
                pl.lit(True),
                column=plan.column,
                issue_type="value_standardized",
                severity="info",
                message=pl.concat_str(pl.lit("'"), shown(before), pl.lit("' → '"), shown(after), pl.lit("'")),
                value=before,
            ).head(EXAMPLES_PER_COLUMN)
        )
    if report.get("values_not_dates"):
        parts.append(
            issues_where(
                rows_of(_not_a_date(index).fill_null(False)),
                pl.lit(True),
                column=plan.column,
                issue_type="unparseable_date",
                severity="warning",
                message=pl.concat_str(
                    pl.lit("'"), shown(before), pl.lit(f"' in date column '{plan.column}' is not a date")
                ),
                value=before,
            )
        )
    return parts


def _narrowed(frame: pl.DataFrame | pl.LazyFrame, names: list[str]) -> pl.LazyFrame:
    return narrow(frame, names) if isinstance(frame, pl.DataFrame) else frame.select(names)


def _proposals(reports: list[dict[str, Any]], params: FieldStandardizationParams) -> list[dict[str, Any]]:
    """With the case kept: lowercasing the columns whose values differ only in case."""
    if params.case_strategy not in ("preserve", "none"):
        return []
    varying = [report for report in reports if report["case_variant_groups_after"]]
    if not varying:
        return []
    groups = sum(report["case_variant_groups_after"] for report in varying)
    return [
        proposal(
            AGENT_ID,
            "lowercase_text",
            f"Lowercase text to merge {groups:,} groups of values that differ only in case "
            f"({len(varying)} column(s)); changes every text value with a capital letter",
            {"case_strategy": "lowercase"},
            columns=[report["field_name"] for report in varying],
            cells_affected=sum(report["cells_lowercase_would_change"] for report in reports),
        )
    ]


def _findings(
    reports: list[dict[str, Any]], params: FieldStandardizationParams
) -> tuple[list[Alert], list[Issue], list[Recommendation]]:
    findings = Findings(AGENT_ID)
    pass
    remaining = [report for report in reports if report["case_variant_groups_after"]]
    if remaining:
        findings.alert(
            "field_consistency",
            "medium",
            f"{len(remaining)} column(s) still hold values that differ only in case",
            "Choose a case_strategy (lowercase, uppercase or titlecase) or add synonym_mappings",
            affected=len(remaining),
        )
        for report in remaining:
            findings.issue(
                "case_variation_remaining",
                "medium",
                f"'{report['field_name']}' has {report['case_variant_groups_after']} groups of values that differ "
                "only in case",
                field_name=report["field_name"],
            )
        if params.case_strategy in ("none", "preserve"):
            findings.recommend(
                "Enable case normalization to merge values that differ only in case", "medium", field_name=None
            )
    for report in reports:
        dates = report.get("dates")
        if report["date_rewrite_skipped"]:
            findings.issue(
                "ambiguous_date_order",
                "medium",
                f"'{report['field_name']}': {report['date_rewrite_skipped']}",
                field_name=report["field_name"],
            )
        if report.get("values_not_dates"):
            findings.issue(
                "unparseable_date",
                "medium",
                f"{report['values_not_dates']:,} values of date column '{report['field_name']}' are not dates "
                "and were not reformatted",
                field_name=report["field_name"],
            )
        for item in (dates or {}).get("ambiguous_day_month", []):
            if item["ambiguous_values"]:
                findings.issue(
                    "ambiguous_date_format",
                    "medium",
                    f"{item['ambiguous_values']:,} dates of '{report['field_name']}' read both as "
                    f"{item['chosen_format']} and {item['alternative_format']}; {item['chosen_format']} used "
                    f"({item['decided_by']})",
                    field_name=report["field_name"],
                    details={"ambiguity": item},
                )
    undated = [issue for issue in findings.issues if issue.issue_type == "unparseable_date"]
    if undated:
        findings.alert(
            "date_format",
            "medium",
            f"{len(undated)} date column(s) hold values that are not dates",
            "Review the unparseable_date row-level issues",
            affected=len(undated),
        )
    return findings.alerts, findings.issues, findings.recommendations


# ---------------------------------------------------------------------------------------------------------
# a primary too large for memory

DISTINCT_TABLE_MAX = 500_000  # a streamed column with more distinct values (estimated) is counted row by row
DISTINCT_PER_PASS = 4_000_000  # distinct values a wide column's variants are counted among at a time


def _streamed(
    scan: pl.LazyFrame,
    schema: pl.Schema,
    rows: int,
    columns: list[str],
    params: FieldStandardizationParams,
    target_format: TemporalFormat,
    progress: Progress,
) -> tuple[list[dict[str, Any]], pl.DataFrame, pl.LazyFrame]:
    """``_in_memory`` of a scan, every query on the streaming engine. A column with few distinct values goes
    the in-memory way, through the table of its distinct values (counted by a streaming group_by); a column
    with many (``_wide_columns``), whose table and the rules' columns over it would each hold a copy of its
    values, has the rules run on every row and its counts taken as streaming aggregates (``_wide_report``),
    one query after another, so that at most one set of its distinct values is held at a time."""
    wide = _wide_columns(scan, columns)  # column -> its distinct values, estimated
    by_table = [column for column in columns if column not in wide]
    distinct = _distinct_values_streamed(scan, by_table, params)
    plans, tables, table_reports = _ruled(distinct, by_table, schema, params, target_format, progress)
    reports = dict(zip(by_table, table_reports, strict=True))
    # a wide column's stage columns are numbered after the table columns'
    wide_plans = {
        column: (len(by_table) + number, _plan_streamed(scan, column, schema[column], params, target_format))
        for number, column in enumerate(column for column in columns if column in wide)
    }
    for column, (index, plan) in wide_plans.items():
        passes = max(1, -(-wide[column] // DISTINCT_PER_PASS))
        reports[column] = _wide_report(scan, index, plan, params, passes)

    parts: list[pl.LazyFrame] = []
    for column in columns:
        if column in wide_plans:
            index, plan = wide_plans[column]
            parts += _column_issues(partial(_ruled_rows, scan, index, plan, params), index, plan, reports[column])
        else:
            index = by_table.index(column)
            rows_of = partial(_joined, scan, tables[index], plans[index])
            parts += _column_issues(rows_of, index, plans[index], reports[column])
    row_issues = _collect_streamed(parts)
    column_reports = [reports[column] for column in columns]
    if not any(report["values_changed"] for report in column_reports):
        return column_reports, row_issues, scan
    standardized = _standardized_scan(scan, schema, rows, tables, plans, table_reports, params)
    for column, (index, plan) in wide_plans.items():
        if reports[column]["values_changed"]:
            standardized = _rewritten_per_row(standardized, index, plan, params)
        elif schema[column] != pl.String() and schema[column] != pl.Categorical():
            standardized = standardized.with_columns(_restore(pl.col(column).cast(pl.String), plan).alias(column))
    return column_reports, row_issues, standardized


def _wide_columns(scan: pl.LazyFrame, columns: list[str]) -> dict[str, int]:
    """The columns with more than ``DISTINCT_TABLE_MAX`` distinct values (estimated: HyperLogLog), with that
    estimate."""
    if not columns:
        return {}
    estimates = scan.select(pl.col(column).approx_n_unique() for column in columns).collect(engine="streaming")
    return {
        column: int(estimate)
        for column, estimate in estimates.row(0, named=True).items()
        if estimate > DISTINCT_TABLE_MAX
    }


def _distinct_values_streamed(
    scan: pl.LazyFrame, columns: list[str], params: FieldStandardizationParams
) -> list[pl.DataFrame]:
    """``_distinct_values`` of a scan: each column's value counts by a group_by on the streaming engine, the
    queries run together (memory: the columns' distinct values, never the rows)."""
    queries = [
        scan.select(column)
        .group_by(column)
        .agg(pl.len().cast(pl.Int64).alias(COUNT))
        .select(pl.col(column).cast(pl.String), COUNT)
        .with_columns(_normalized(pl.col(column), params).alias(TEXT))
        for column in columns
    ]
    return pl.collect_all(queries, engine="streaming") if queries else []


def _plan_streamed(
    scan: pl.LazyFrame, column: str, dtype: pl.DataType, params: FieldStandardizationParams, target: TemporalFormat
) -> ColumnPlan:
    """``_plan`` of a wide column, from aggregates: ``plan_dates`` reads the rows of all values but only the
    date-like values themselves (it drops the others first), so the others are given as one blank value (not
    date-like) holding their rows."""
    plan = _configured_plan(column, dtype, params)
    if not params.date_standardization:
        return plan
    value = pl.col("value")
    text = scan.select(_normalized(pl.col(column).cast(pl.String), params).alias("value")).filter(
        value.is_not_null() & (value != "")
    )
    totals, dated = pl.collect_all(
        [
            text.select(pl.len().alias("rows"), value.str.contains(r"\d").any().alias("digits")),
            text.filter(date_like(value)).group_by("value").agg(pl.len().cast(pl.Int64).alias("count")),
        ],
        engine="streaming",
    )
    non_blank, digits = totals.row(0)
    if non_blank and digits:
        others = pl.DataFrame({"value": [""], "count": [non_blank - int(dated["count"].sum())]}, schema=dated.schema)
        _plan_dates(plan, pl.concat([dated, others]), target)
    return plan


def _ruled_rows(
    scan: pl.LazyFrame, index: int, plan: ColumnPlan, params: FieldStandardizationParams, mask: pl.Expr | None = None
) -> pl.LazyFrame:
    """Per row (where ``mask`` holds, when given): the row index, the column's value as text, its normalized
    text (``TEXT``) and the rules' stages (``_new``, ``_rule`` among them)."""
    second, third = _stages(index, plan, params, row_by_row=True)
    normalized = scan.select(ROW_INDEX_COLUMN, pl.col(plan.column).cast(pl.String)).with_columns(
        _normalized(pl.col(plan.column), params).alias(TEXT)
    )
    ruled = _with_lookups(normalized, index, plan)[0].with_columns(second).with_columns(third)
    return ruled if mask is None else ruled.filter(mask)


def _wide_report(
    scan: pl.LazyFrame, index: int, plan: ColumnPlan, params: FieldStandardizationParams, passes: int
) -> dict[str, Any]:
    """``_column_reports`` of a wide column, its cells counted row by row (the sums ``_column_reports``
    weights by each value's rows) and its variants by ``_variants_streamed`` in ``passes`` passes."""
    ruled = _ruled_rows(scan, index, plan, params)
    changed, rule, after = _changed(index, plan), pl.col(_rule(index)), pl.col(_new(index))
    lowered = pl.col(TEXT).str.to_lowercase() if params.case_strategy in KEPT_CASE else after.str.to_lowercase()
    exprs = [
        changed.sum().alias("changed"),
        *((changed & (rule == name)).fill_null(False).sum().alias(name) for name in RULES),
        ((rule == "text") & (after != lowered)).fill_null(False).sum().alias("lowercase"),
    ]
    if plan.dates is not None:
        exprs.append(_not_a_date(index).fill_null(False).sum().alias("undated"))
    sums = ruled.select(exprs).collect(engine="streaming").row(0, named=True)
    present = ruled.filter(pl.col(plan.column).is_not_null())
    before = _variants_streamed(present.select(pl.col(plan.column).alias("value")), passes)
    after_variants = _variants_streamed(present.select(after.alias("value")), passes) if sums["changed"] else before
    return _report(plan, sums, before, after_variants)


def _variants_streamed(values: pl.LazyFrame, passes: int) -> dict[str, int]:
    """``_variants`` of the distinct values of ``values`` (a scan of non-null ``value``), summed over ``passes``
    disjoint parts of them (by the hash of their key: values that share a key are in the same part), so that a
    part's distinct values are held at a time, not the column's."""
    key = _variant_key()
    keyed = values.with_columns(key.alias("key"))
    totals = dict.fromkeys(("distinct", "whitespace", "case_groups"), 0)
    for part in range(passes):
        subset = keyed if passes == 1 else keyed.filter(pl.col("key").hash(seed=0) % passes == part)
        for name, count in _variants_of_part(subset).items():
            totals[name] += count
    return totals


def _variants_of_part(keyed: pl.LazyFrame) -> dict[str, int]:
    """``_variants`` of the distinct values of ``keyed`` (non-null ``value`` with its ``key``), by streaming
    queries run in turn: the distinct values and those with whitespace issues counted; the values that are not
    their own key grouped by key (``moved``); then, among the values that are their own key, those that are one
    of those keys. A key groups more than one value when it has two moved values, or one and is itself a value."""
    value, key = pl.col("value"), pl.col("key")
    counts = keyed.select(
        value.n_unique().alias("distinct"),
        value.filter(value.str.contains(WHITESPACE_ISSUE)).n_unique().alias("whitespace"),
    ).collect(engine="streaming")
    moved = keyed.filter(key != value).group_by("key").agg(value.n_unique().alias("moved")).collect(engine="streaming")
    groups = 0
    if moved.height:
        fixed = (
            keyed.filter(value.is_in(moved["key"].implode()) & (key == value))
            .unique("value")
            .collect(engine="streaming")["value"]
        )
        groups = int(
            moved.select((pl.col("moved") + pl.col("key").is_in(fixed.implode()).cast(pl.UInt32) > 1).sum()).item()
        )
    distinct, whitespace = counts.row(0)
    return {"distinct": int(distinct), "whitespace": int(whitespace), "case_groups": groups}


def _standardized_scan(
    scan: pl.LazyFrame,
    schema: pl.Schema,
    rows: int,
    tables: list[pl.DataFrame],
    plans: list[ColumnPlan],
    reports: list[dict[str, Any]],
    params: FieldStandardizationParams,
) -> pl.LazyFrame:
    """``_standardized`` as a plan over the scan that the streaming engine runs batch by batch: a mapped column
    through a left join with its changed values (``replace`` would gather the whole column), the others
    by the rules run on every row, one column at a time (the stages' names are per column, ``TEXT`` shared)."""
    mapped, per_row = _rewrites(schema, rows, tables, plans, reports)
    result = scan
    for column, (index, plan, changes) in mapped.items():
        text = pl.col(column).cast(pl.String)
        if changes is None:
            result = result.with_columns(_restore(text, plan).alias(column))
            continue
        key, new = f"__standardized_key_{index}__", _new(index)
        result = (
            result.with_columns(text.alias(key))
            .join(changes.lazy().rename({column: key}), on=key, how="left", maintain_order="left")
            .with_columns(_restore(pl.coalesce(pl.col(new), text), plan).alias(column))
            .drop(key, new)
        )
    for index, plan in per_row:
        result = _rewritten_per_row(result, index, plan, params)
    return result


def _rewritten_per_row(
    scan: pl.LazyFrame, index: int, plan: ColumnPlan, params: FieldStandardizationParams
) -> pl.LazyFrame:
    """The scan with the column rewritten by the rules run on every row: their stages as columns, read into
    the column, then dropped."""
    second, third = _stages(index, plan, params, row_by_row=True)
    normalized = scan.with_columns(_normalized(pl.col(plan.column).cast(pl.String), params).alias(TEXT))
    looked_up, lookups = _with_lookups(normalized, index, plan)
    helpers = [TEXT, *lookups, *(expr.meta.output_name() for expr in [*second, *third])]
    return (
        looked_up.with_columns(second)
        .with_columns(third)
        .with_columns(_restore(pl.col(_new(index)), plan).alias(plan.column))
        .drop(helpers)
    )


def _collect_streamed(parts: list[pl.LazyFrame]) -> pl.DataFrame:
    """``collect_row_issues`` of parts that scan the data: each collected on the streaming engine."""
    frames = pl.collect_all(parts, engine="streaming") if parts else []
    return collect_row_issues([frame.lazy() for frame in frames])


def _numbered(scan: pl.LazyFrame) -> pl.LazyFrame:
    """The scan with ``ROW_INDEX_COLUMN`` (the chain gives it; a scan without one is numbered 1..n, last, as
    ``with_row_index`` numbers a frame)."""
    names = scan.collect_schema().names()
    if ROW_INDEX_COLUMN in names:
        return scan
    numbered = scan.with_row_index(ROW_INDEX_COLUMN, offset=1)
    return numbered.select(*names, pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
