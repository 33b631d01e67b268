"""The ``quarantine-agent``: rows failing the configured rules leave the data, each with every reason.

Checks (each switched by its ``detect_*`` flag), in the order their reasons are joined ("; "):
- broken records: every data field is empty (null, blank text or NaN);
- missing required fields: a ``required_fields`` column is null, blank text or NaN;
- type mismatches: a non-empty value that does not fit ``expected_schema``. Text is read as type-fixer
  reads it (agents.values: "1,234" is numeric, "yes" is boolean, "01/31/2024" is a date), so what the
  type fixer can repair is not quarantined. A number written with a currency symbol ("$12"), a percent
  sign ("5%") or in parentheses ("(12)") is not a number here: the type fixer leaves it as text by default and
  only proposes converting it (``convert_currency``, ``convert_percentages``, ``convert_accounting_negatives``:
  the unit would be lost, "5%" may mean 5 or 0.05, "(212)" may be an area code), so a column declared numeric
  would still hold it after the chain. Typed columns: integer accepts integer
  columns and whole floats; float/numeric any numeric column; boolean a Boolean column or integers 0/1; date
  a Date column or datetimes at midnight; datetime Date or Datetime; string anything. A column of another
  type fails on every non-empty value;
- out of range: a value below ``min`` or above ``max`` (inclusive bounds); text values that read as
  numbers (as the type check reads them: not "$12", "5%" or "(12)") are compared, the others are the type check's
  business;
- invalid formats: a non-empty value (as text) that does not match the whole of its regular expression
  (Rust ``regex`` syntax) or named format (``NAMED_FORMATS``; "date" = reads with a date format).
Schema mismatches (expected_schema columns missing from the data, data columns not in it) are reported
as issues and remove no rows; the type check skips missing columns.

Every failing cell is one row-level issue (``issue_type`` = the rule, ``row_index`` = the input file's
row); a broken record is one issue with no column. Naming a column that does not exist in
``required_fields``, ``range_constraints`` or ``format_constraints``, giving a range for a column that is
neither numeric nor text or for a text column none of whose values reads as a number (names: the range would check
nothing), or an invalid regular expression, is an InvalidParametersError.

A primary too large for memory (``inputs.scan``) gets the same checks and results: a text column's values that
do not read as their type are found among its distinct values (a streaming group_by, in hash parts), the failing
rows are sunk once to the run's ``work_dir`` (the checks evaluated in one pass) and the counts, removed rows and
row-level issues read from that spill; the result's ``scan`` is the scan without the removed rows (by row index).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from agents.bounds import below_and_above
from agents.clean.common import clean_result, effectiveness, no_removed_rows, removed_rows
from agents.clean.streamed_queries import (
    collect_issues_in_order,
    distinct_text_estimates,
    distinct_text_parts,
    numbered,
    scanned_rows,
    streamed_row,
)
from agents.columns import (
    check_regex,
    is_text,
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
    empty_row_level_issues,
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
    number_label,
    pct,
    shown,
)
from agents.layouts import Layout, as_text
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.values import (
    ACCOUNTING_NEGATIVE_PATTERN,
    CURRENCY_SIGN,
    DATE_FORMATS,
    NAMED_FORMATS,
    READ_FORMATS,
    distinct_counts,
    is_missing,
    parse_boolean,
    parse_integer,
    parse_number,
    reads_as_temporal,
)

BadValues = Callable[[str, str], pl.Series]

AGENT_ID = "quarantine-agent"
AGENT_NAME = "Quarantine Agent"
SAMPLE_ROWS = 20
RULE_SEVERITY = {
    "broken_record": "critical",
    "missing_required_field": "critical",
    "type_mismatch": "critical",
    "out_of_range": "warning",
    "invalid_format": "warning",
}


@dataclass
class Check:
    rule: str
    column: str | None
    mask: pl.Expr  # true where the row fails
    reason: pl.Expr | str  # for the quarantine file
    message: pl.Expr | str  # for the row-level issue
    detail: str
    flag: str = ""  # the work frame's column holding ``mask``


@dataclass
class Outcome:
    """What one run found: the input's row count, its checks, the quarantined rows, the failures by rule (cells
    and rows) and by column, the expected_schema columns missing from the data and data columns not in it, and
    the proposals."""

    rows: int
    checks: list[Check]
    removed: pl.DataFrame
    quarantined: int
    by_rule: dict[str, dict[str, int]]
    by_column: dict[str, dict[str, int]]
    missing_columns: list[str]
    unexpected_columns: list[str]
    proposals: list[dict[str, Any]]


def run(inputs: AgentInputs, params: QuarantineAgentParams, progress: Progress) -> AgentResult:
    if inputs.scan is not None:
        return _run_streamed(inputs, inputs.scan, params, progress)
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    _validate(frame, params)
    _validate_text_ranges(frame.lazy(), params, engine="auto")
    progress(0.0, f"Checking {frame.height:,} rows")
    checks = _checks(frame, params, inputs.text_layouts, lambda name, expected: _bad_values(frame, name, expected))
    missing_columns, unexpected_columns = _schema_mismatches(frame, params)

    progress(0.3, f"Evaluating {len(checks)} checks")
    work, counts = _evaluate(frame, checks)
    quarantined = int(counts["__failing__"] or 0)
    progress(0.6, f"{quarantined:,} rows to quarantine")

    failing = _failing(checks)
    removed = removed_rows(work, failing, _reason(checks)) if quarantined else no_removed_rows()
    clean = work.filter(~failing).select(frame.columns) if quarantined else frame
    row_issues = _row_issues(work, checks, counts)
    progress(0.9, "Summarising")

    by_rule, by_column = _failures(work, checks, counts)
    outcome = Outcome(
        frame.height,
        checks,
        removed,
        quarantined,
        by_rule,
        by_column,
        missing_columns,
        unexpected_columns,
        _proposals(frame, params),
    )
    return _result(outcome, row_issues, params, started, progress, frame=clean)


def _result(
    outcome: Outcome,
    row_issues: pl.DataFrame,
    params: QuarantineAgentParams,
    started: float,
    progress: Progress,
    *,
    frame: pl.DataFrame | None,
) -> AgentResult:
    """The envelope of a run (in memory, or streamed with ``frame`` None) from what it found."""
    schema_issues = _schema_issues(outcome.missing_columns, outcome.unexpected_columns)
    score = _score(outcome, params)
    summary_metrics = _summary_metrics(outcome, row_issues.height + len(schema_issues))
    alerts, recommendations = _findings(summary_metrics, outcome.by_rule, outcome.missing_columns)
    cards = _cards(outcome, summary_metrics, score)
    progress(1.0, "Quarantine done")
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=_data(outcome, score),
        frame=frame,
        removed=outcome.removed,
        alerts=alerts,
        issues=schema_issues,
        recommendations=recommendations,
        cards=cards,
        row_level_issues=row_issues,
    )


def _evaluate(frame: pl.DataFrame, checks: list[Check]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The frame with one column per check (named by the check's ``flag``), true where the row fails it,
    and the failing cells per check and failing rows (``__failing__``)."""
    for index, check in enumerate(checks):
        check.flag = f"__quarantine_{index}__"
    flags = [check.flag for check in checks]
    work = frame.with_columns([check.mask.fill_null(False).alias(check.flag) for check in checks])
    counts = work.select(
        [pl.col(flag).sum().alias(flag) for flag in flags] + [_failing(checks).sum().alias("__failing__")]
    ).row(0, named=True)
    return work, counts


def _failing(checks: list[Check]) -> pl.Expr:
    """True where the row fails any check."""
    return pl.any_horizontal([pl.col(check.flag) for check in checks]) if checks else pl.lit(False)


def _reason(checks: list[Check]) -> pl.Expr:
    """The reasons of every check the row fails, in the checks' order."""
    return pl.concat_str(
        [pl.when(pl.col(check.flag)).then(_expr(check.reason)) for check in checks],
        separator="; ",
        ignore_nulls=True,
    )


def _row_issues(work: pl.DataFrame, checks: list[Check], counts: dict[str, Any]) -> pl.DataFrame:
    """One row-level issue per failing cell (a broken record: one per row, with no column)."""
    return collect_row_issues([_issues_of(work, check) for check in checks if counts[check.flag]])


def _issues_of(work: pl.DataFrame | pl.LazyFrame, check: Check) -> pl.LazyFrame:
    """The row-level issues of the cells failing ``check``."""
    return issues_where(
        work,
        pl.col(check.flag),
        column=check.column,
        issue_type=check.rule,
        severity=RULE_SEVERITY[check.rule],
        message=_expr(check.message),
        value=None if check.column is None else pl.col(check.column),
    )


def _failures(
    work: pl.DataFrame, checks: list[Check], counts: dict[str, Any]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The failing cells and rows per rule, and the failing cells per column and rule."""
    rules = list(dict.fromkeys(check.rule for check in checks))
    rule_rows = work.select(_rule_rows(checks, rules)).row(0, named=True) if checks else {}
    return _tally(checks, counts, rule_rows)


def _tally(
    checks: list[Check], counts: dict[str, Any], rule_rows: dict[str, Any]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """``_failures`` from the failing cells per check (``counts``) and the failing rows per rule."""
    by_rule: dict[str, dict[str, int]] = {}
    by_column: dict[str, dict[str, int]] = {}
    for check in checks:
        cells = int(counts[check.flag] or 0)
        by_rule.setdefault(check.rule, {"cells": 0})["cells"] += cells
        if check.column is not None and cells:
            by_column.setdefault(check.column, {})[check.rule] = cells
    for rule, rows in rule_rows.items():
        by_rule[rule]["rows"] = int(rows or 0)
    return by_rule, by_column


def _rule_rows(checks: list[Check], rules: list[str], prefix: str = "") -> list[pl.Expr]:
    """Per rule of ``rules``, the rows failing any of its checks (named ``prefix`` + the rule)."""
    return [
        pl.any_horizontal([pl.col(check.flag) for check in checks if check.rule == rule]).sum().alias(prefix + rule)
        for rule in rules
    ]


def _score(outcome: Outcome, params: QuarantineAgentParams) -> dict[str, Any]:
    quarantined, total = outcome.quarantined, outcome.rows
    return effectiveness(
        {
            "quarantine_reduction": 100.0,
            "data_integrity": 100.0 - pct(quarantined, total),
            "processing_efficiency": 100.0 if quarantined < 0.5 * total or total == 0 else 50.0,
        },
        {
            "quarantine_reduction": params.quarantine_reduction_weight,
            "data_integrity": params.data_integrity_weight,
            "processing_efficiency": params.processing_efficiency_weight,
        },
        params,
    )


def _summary_metrics(outcome: Outcome, issues_found: int) -> dict[str, Any]:
    quarantined, total = outcome.quarantined, outcome.rows
    return {
        "total_rows_processed": total,
        "quarantined_records": quarantined,
        "clean_records": total - quarantined,
        "quarantine_percentage": round(pct(quarantined, total), 2),
        "quarantine_issues_found": issues_found,
    }


def _data(outcome: Outcome, score: dict[str, Any]) -> dict[str, Any]:
    return {
        "quarantine_score": score,
        "quality_status": score["status"],
        "quarantine_analysis": {
            "checks": [
                {"rule": check.rule, "column": check.column, "detail": check.detail} for check in outcome.checks
            ],
            "by_rule": outcome.by_rule,
            "by_column": outcome.by_column,
            "schema_mismatches": {
                "missing_columns": outcome.missing_columns,
                "unexpected_columns": outcome.unexpected_columns,
            },
        },
        "quarantined_sample": outcome.removed.sort(ROW_INDEX_COLUMN)
        .head(SAMPLE_ROWS)
        .rename({ROW_INDEX_COLUMN: "row_index"})
        .to_dicts(),
        "conventions": {
            "missing": "null, empty or whitespace-only text, a missing-value token (NA, N/A, NULL...), or NaN",
            "range_bounds": "inclusive",
            "formats": "the whole value must match (Rust regex syntax)",
            "text_values": "read as type-fixer reads them",
            "row_index": "1-based data row of the input file",
        },
        "proposals": outcome.proposals,
    }


def _cards(outcome: Outcome, summary_metrics: dict[str, Any], score: dict[str, Any]) -> list[SummaryCard]:
    quarantined, total = outcome.quarantined, outcome.rows
    return [
        SummaryCard(
            "quarantine_records",
            "Rows failing the quarantine rules",
            f"{quarantined:,}",
            "excellent" if not quarantined else "warning" if pct(quarantined, total) <= 10 else "critical",
            f"{quarantined:,} of {total:,} rows ({summary_metrics['quarantine_percentage']}%) failed "
            f"{len(outcome.checks)} checks; quarantine.csv holds them with the rows other agents removed",
        ),
        SummaryCard(
            "quarantine_score",
            "Quarantine score",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"{total - quarantined:,} clean rows continue down the chain",
        ),
    ]


def _proposals(frame: pl.DataFrame, params: QuarantineAgentParams) -> list[dict[str, Any]]:
    """Rows with no value at all, kept by default: quarantining them is proposed."""
    columns = data_columns(frame)
    if params.detect_broken_records or not columns:
        return []
    schema = frame.schema
    # A column that is neither text nor float is missing only where null: one without a null (its count is
    # known without a pass) leaves no row empty.
    plain = [name for name in columns if not is_text(schema[name]) and not schema[name].is_float()]
    if plain and not all(frame.select(pl.col(plain).null_count()).row(0)):
        return []
    rows = int(frame.select(_every_field_empty(schema, columns).sum()).item())
    return _empty_rows_proposal(rows)


def _every_field_empty(schema: pl.Schema, columns: list[str]) -> pl.Expr:
    return pl.all_horizontal([is_missing(pl.col(name), schema[name]) for name in columns])


def _empty_rows_proposal(rows: int) -> list[dict[str, Any]]:
    if not rows:
        return []
    return [
        proposal(
            AGENT_ID,
            "quarantine_empty_rows",
            f"Quarantine the {rows:,} rows whose every field is empty",
            {"detect_broken_records": True},
            rows_affected=rows,
        )
    ]


def _expr(value: pl.Expr | str) -> pl.Expr:
    return pl.lit(value) if isinstance(value, str) else value


def _validate(frame: pl.DataFrame, params: QuarantineAgentParams) -> None:
    require_columns(frame, params.required_fields, agent_id=AGENT_ID, field="required_fields")
    require_columns(frame, params.range_constraints, agent_id=AGENT_ID, field="range_constraints")
    require_columns(frame, params.format_constraints, agent_id=AGENT_ID, field="format_constraints")
    for column in params.range_constraints:
        dtype = frame[column].dtype
        if not (dtype.is_numeric() or is_text(dtype)):
            raise InvalidParametersError(
                f"{AGENT_ID}.range_constraints.{column}: '{column}' is {dtype}, not a numeric or text column",
                agent_id=AGENT_ID,
                field=f"range_constraints.{column}",
            )
    for column, pattern in params.format_constraints.items():
        if pattern not in NAMED_FORMATS and pattern != "date":
            check_regex(pattern, agent_id=AGENT_ID, field=f"format_constraints.{column}")


def _validate_text_ranges(
    lazy: pl.LazyFrame, params: QuarantineAgentParams, *, engine: Literal["auto", "streaming"]
) -> None:
    """Refuse a range for a text column none of whose values reads as a number (names, codes: the range would
    check nothing). A text column of numbers is checked as numbers, its values that do not read as one left to the
    type check; an all-empty column has nothing to check either way. One query over those columns."""
    schema = lazy.collect_schema()
    texts = [name for name in params.range_constraints if is_text(schema[name])]
    if not texts:
        return
    found = lazy.select(
        expr
        for place, name in enumerate(texts)
        for expr in (
            (~is_missing(pl.col(name), schema[name])).any().alias(f"filled{place}"),
            _number(pl.col(name)).is_not_null().any().alias(f"number{place}"),
        )
    ).collect(engine=engine)
    for place, name in enumerate(texts):
        if found.item(0, f"filled{place}") and not found.item(0, f"number{place}"):
            raise InvalidParametersError(
                f"{AGENT_ID}.range_constraints.{name}: column '{name}' holds {schema[name]} values and none of "
                "them reads as a number; a numeric range needs a numeric column",
                agent_id=AGENT_ID,
                field=f"range_constraints.{name}",
            )


def _checks(
    frame: pl.DataFrame,
    params: QuarantineAgentParams,
    layouts: Mapping[str, Layout] | None,
    bad_values: BadValues,
) -> list[Check]:
    """``layouts``: the input's dates read from text, which format checks see as written; ``bad_values``: a text
    column's distinct values (trimmed) that do not read as a type (``_bad_values``). ``frame`` may be empty: only
    its schema is read."""
    schema = frame.schema
    columns = data_columns(frame)
    checks: list[Check] = []
    if params.detect_broken_records and columns:
        checks.append(
            Check(
                "broken_record",
                None,
                _every_field_empty(schema, columns),
                "every field is empty",
                "every field of the row is empty",
                "all data fields empty",
            )
        )
    if params.detect_missing_fields:
        for name in params.required_fields:
            missing = f"required field '{name}' is missing"
            checks.append(
                Check(
                    "missing_required_field", name, is_missing(pl.col(name), schema[name]), missing, missing, "required"
                )
            )
    if params.detect_type_mismatches:
        for name, expected in params.expected_schema.items():
            if name not in schema or name == ROW_INDEX_COLUMN:
                continue
            mismatch = _type_mismatch(frame, name, expected, bad_values)
            if mismatch is None:
                continue
            article = "an" if expected[0] in "aeiou" else "a"
            text = pl.concat_str(
                pl.lit(f"'{name}' value '"), shown(pl.col(name)), pl.lit(f"' is not {article} {expected}")
            )
            checks.append(
                Check(
                    "type_mismatch",
                    name,
                    ~is_missing(pl.col(name), schema[name]) & mismatch,
                    text,
                    text,
                    f"expected {expected} ({schema[name]} column)",
                )
            )
    if params.detect_out_of_range:
        for name, bounds in params.range_constraints.items():
            value = _number(pl.col(name)) if is_text(schema[name]) else pl.col(name)
            below, above = below_and_above(
                value, pl.Float64() if is_text(schema[name]) else schema[name], bounds.min, bounds.max
            )
            low = number_label(bounds.min) if bounds.min is not None else "-inf"
            high = number_label(bounds.max) if bounds.max is not None else "inf"
            side = (
                pl.when(below)
                .then(pl.lit(f" is below the minimum {low}"))
                .otherwise(pl.lit(f" is above the maximum {high}"))
            )
            text = pl.concat_str(pl.lit(f"'{name}' value "), shown(pl.col(name)), side)
            detail = f"[{low}, {high}]"
            # NaN counts as missing (Polars orders NaN above every number)
            checks.append(Check("out_of_range", name, (below | above) & value.is_not_nan(), text, text, detail))
    if params.detect_invalid_formats:
        for name, pattern in params.format_constraints.items():
            mismatch = _format_mismatch(frame, name, pattern, (layouts or {}).get(name), bad_values)
            if mismatch is None:
                continue
            label = f"the {pattern} format" if pattern in NAMED_FORMATS or pattern == "date" else f"/{pattern}/"
            text = pl.concat_str(pl.lit(f"'{name}' value '"), shown(pl.col(name)), pl.lit(f"' does not match {label}"))
            checks.append(
                Check("invalid_format", name, ~is_missing(pl.col(name), schema[name]) & mismatch, text, text, label)
            )
    return checks


def _type_mismatch(frame: pl.DataFrame, name: str, expected: str, bad_values: BadValues) -> pl.Expr | None:
    """True where a non-empty value does not fit ``expected``; None when every value of the column fits."""
    dtype = frame[name].dtype
    x = pl.col(name)
    if expected == "string":
        return None
    if is_text(dtype):
        return _text_mismatch(name, bad_values(name, expected))
    if expected == "integer":
        if dtype.is_integer():
            return None
        if dtype.is_float():
            return ~(x.is_finite() & (x == x.round(0)))
    elif expected in ("float", "numeric"):
        if dtype.is_numeric():
            return None
    elif expected == "boolean":
        if dtype == pl.Boolean:
            return None
        if dtype.is_integer():
            return ~x.is_in([0, 1])
    elif expected == "date":
        if dtype == pl.Date:
            return None
        if isinstance(dtype, pl.Datetime):
            return x != x.dt.truncate("1d")
    elif expected == "datetime" and (dtype == pl.Date or isinstance(dtype, pl.Datetime)):
        return None
    return pl.lit(True)


def _bad_values(frame: pl.DataFrame, name: str, expected: str) -> pl.Series:
    """Decided once per distinct value (dates need ~20 parses each), then looked up for every row."""
    return distinct_counts(frame, name).filter(~_fits("value", expected))["value"]


def _fits(column: str, expected: str) -> pl.Expr:
    """True where the text of ``column`` reads as ``expected``."""
    value = pl.col(column)
    return {
        "integer": lambda: parse_integer(value).is_not_null() & _plain(value),
        "float": lambda: _number(value).is_not_null(),
        "numeric": lambda: _number(value).is_not_null(),
        "boolean": lambda: parse_boolean(value).is_not_null(),
        "date": lambda: reads_as_temporal(value, DATE_FORMATS),
        "datetime": lambda: reads_as_temporal(value, READ_FORMATS),  # offsets too: read as UTC instants
    }[expected]()


def _number(text: pl.Expr) -> pl.Expr:
    """Float64 of a text the type fixer converts to a number by default (agents.values ``parse_number``, without
    a currency symbol, a percent sign or parentheses: converting those is a judgement call it only proposes); else
    null."""
    return pl.when(_plain(text)).then(parse_number(text))


def _plain(text: pl.Expr) -> pl.Expr:
    """Whether a text is written without a currency symbol, a percent sign or accounting parentheses ("(12)")
    (type_fixer ``JUDGEMENT_CALLS``)."""
    text = text.cast(pl.String)
    return (
        ~text.str.contains(CURRENCY_SIGN)
        & ~text.str.contains("%", literal=True)
        & ~text.str.contains(ACCOUNTING_NEGATIVE_PATTERN)
    )


def _text_mismatch(name: str, bad: pl.Series) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars().is_in(bad.implode())


def _format_mismatch(
    frame: pl.DataFrame, name: str, pattern: str, layout: Layout | None, bad_values: BadValues
) -> pl.Expr | None:
    """Values that do not match ``pattern``, checked on the text as the file holds it (``layout``)."""
    dtype = frame[name].dtype
    text = as_text(name, dtype, layout)
    if pattern == "date":
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            return None
        return _text_mismatch(name, bad_values(name, "date"))
    regex = NAMED_FORMATS.get(pattern, pattern)
    return ~text.str.contains(f"^(?:{regex})$")


def _schema_mismatches(frame: pl.DataFrame, params: QuarantineAgentParams) -> tuple[list[str], list[str]]:
    if not params.detect_schema_mismatches or not params.expected_schema:
        return [], []
    present = data_columns(frame)
    missing = [name for name in params.expected_schema if name not in present]
    unexpected = [name for name in present if name not in params.expected_schema]
    return missing, unexpected


def _schema_issues(missing: list[str], unexpected: list[str]) -> list[Issue]:
    findings = Findings(AGENT_ID)
    for name in missing:
        message = f"expected column '{name}' is missing from the data (no rows removed)"
        findings.issue("schema_mismatch", "high", message, field_name=name)
    if unexpected:
        findings.issue(
            "unexpected_columns",
            "low",
            f"{len(unexpected)} column(s) are not in expected_schema: {', '.join(unexpected[:10])}",
            details={"columns": unexpected},
        )
    return findings.issues


def _findings(
    metrics: dict[str, Any], by_rule: dict[str, dict[str, int]], missing: list[str]
) -> tuple[list[Alert], list[Recommendation]]:
    findings = Findings(AGENT_ID)
    quarantined, share = metrics["quarantined_records"], metrics["quarantine_percentage"]
    if quarantined:
        findings.alert(
            "data_quality",
            "high" if share > 10 else "medium",
            f"{quarantined:,} rows ({share}%) failed validation and were quarantined",
            "Review quarantine.csv: every row carries the reasons it failed",
            affected=len([rule for rule, counts in by_rule.items() if counts.get("rows")]),
        )
    if missing:
        findings.alert(
            "schema",
            "high",
            f"{len(missing)} expected column(s) are missing: {', '.join(missing[:5])}",
            "Check that the file matches expected_schema",
            affected=len(missing),
        )
    advice = {
        "broken_record": "Find why empty rows reach the file (export or ingestion fault)",
        "missing_required_field": "Make the required fields mandatory where the data is entered",
        "type_mismatch": "Validate value types where the data is entered",
        "out_of_range": "Check the out-of-range values and the configured limits",
        "invalid_format": "Validate formats (e-mail, phone, codes) where the data is entered",
    }
    for rule, counts in by_rule.items():
        if counts.get("rows"):
            findings.recommend(
                f"{advice[rule]} ({counts['rows']:,} rows, {counts['cells']:,} values)",
                "high" if RULE_SEVERITY[rule] == "critical" else "medium",
                field_name=None,
            )
    return findings.alerts, findings.recommendations


def _run_streamed(
    inputs: AgentInputs, source: pl.LazyFrame, params: QuarantineAgentParams, progress: Progress
) -> AgentResult:
    """``run`` on a primary too large for memory (``inputs.scan``): the same checks, a text column's values
    that do not read as their type found among its distinct values (a streaming group_by, in hash parts), the
    counts, the quarantined rows and the row-level issues on the streaming engine; the result's ``scan`` is the
    plan of the rows passing every check over ``source``."""
    started = time.perf_counter()
    scan = numbered(source)
    schema = scan.collect_schema()
    empty = pl.DataFrame(schema=schema)
    _validate(empty, params)
    _validate_text_ranges(scan, params, engine="streaming")
    rows = scanned_rows(inputs.rows, scan)
    progress(0.0, f"Checking {rows:,} rows")
    named = dict.fromkeys([*params.expected_schema, *params.format_constraints])
    texts = [name for name in named if name in schema and is_text(schema[name])]
    estimates: dict[str, int] = {}

    def bad_values(name: str, expected: str) -> pl.Series:
        if name not in estimates:  # the text columns checked, in one pass (with ``name``: a date format's)
            wanted = [text for text in texts if text not in estimates]
            estimates.update(distinct_text_estimates(scan, [*wanted, name]))
        return _scanned_bad_values(scan, name, expected, estimates[name])

    checks = _checks(empty, params, inputs.text_layouts, bad_values)
    missing_columns, unexpected_columns = _schema_mismatches(empty, params)

    progress(0.3, f"Evaluating {len(checks)} checks")
    for index, check in enumerate(checks):
        check.flag = f"__quarantine_{index}__"
    rules = list(dict.fromkeys(check.rule for check in checks))
    counts: dict[str, Any] = {"__failing__": 0}
    removed, row_issues = no_removed_rows(), empty_row_level_issues()
    if checks:
        with _failing_rows(scan, checks, inputs.work_dir) as failed:
            exprs = [pl.col(check.flag).sum().alias(check.flag) for check in checks]
            counts = streamed_row(failed, [*exprs, pl.len().alias("__failing__"), *_rule_rows(checks, rules, "rows:")])
            progress(0.6, f"{counts['__failing__']:,} rows to quarantine")
            if counts["__failing__"]:
                removed, row_issues = _quarantined(failed, checks, counts)
    quarantined = int(counts["__failing__"] or 0)
    progress(0.9, "Summarising")

    by_rule, by_column = _tally(checks, counts, {rule: counts[f"rows:{rule}"] for rule in rules})
    proposals = _streamed_proposals(scan, schema, params)
    outcome = Outcome(
        rows, checks, removed, quarantined, by_rule, by_column, missing_columns, unexpected_columns, proposals
    )
    result = _result(outcome, row_issues, params, started, progress, frame=None)
    # the kept rows by row index: the checks (regular expressions, parsing) are not evaluated a second time
    gone = removed[ROW_INDEX_COLUMN].implode()
    result.scan = scan.filter(~pl.col(ROW_INDEX_COLUMN).is_in(gone)) if quarantined else scan
    result.rows = rows - quarantined
    return result


@contextmanager
def _failing_rows(scan: pl.LazyFrame, checks: list[Check], work_dir: Path | None) -> Iterator[pl.LazyFrame]:
    """The rows of a scan failing any check: their row index, checked columns and the checks' flags. With a
    ``work_dir`` they are sunk there in one pass (the checks evaluated once) and scanned, the spill deleted on
    leaving; the issues' values then keep alive pages of the failing rows only. Without, a plan over ``scan``."""
    checked = list(dict.fromkeys(check.column for check in checks if check.column is not None))
    flags = [check.flag for check in checks]
    work = scan.with_columns([check.mask.fill_null(False).alias(check.flag) for check in checks])
    failed = work.filter(_failing(checks)).select(ROW_INDEX_COLUMN, *checked, *flags)
    if work_dir is None:
        yield failed
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    spill = work_dir / f"{AGENT_ID}-failing-{uuid.uuid4().hex}.parquet"
    try:
        failed.sink_parquet(spill)
        yield pl.scan_parquet(spill)
    finally:
        spill.unlink(missing_ok=True)


def _quarantined(
    failed: pl.LazyFrame, checks: list[Check], counts: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The removed rows with their reasons and the row-level issues, from the failing rows (``_failing_rows``)."""
    removed_query = failed.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), _reason(checks).cast(pl.String).alias("reason")
    )
    parts = [_issues_of(failed, check) for check in checks if counts[check.flag]]
    return removed_query.collect(engine="streaming"), collect_issues_in_order(parts)


def _scanned_bad_values(scan: pl.LazyFrame, name: str, expected: str, estimate: int) -> pl.Series:
    """``_bad_values`` of a scan: its distinct values decided one hash part at a time, only the bad kept."""
    fits = _fits("value", expected)
    parts = [part.filter(~fits).select("value") for part in distinct_text_parts(scan, name, estimate)]
    found = [frame["value"] for frame in (query.collect(engine="streaming") for query in parts)]
    return pl.concat(found) if found else pl.Series("value", [], pl.String)


def _streamed_proposals(scan: pl.LazyFrame, schema: pl.Schema, params: QuarantineAgentParams) -> list[dict[str, Any]]:
    """``_proposals`` of a scan: the empty rows counted on the streaming engine."""
    columns = data_columns(pl.DataFrame(schema=schema))
    if params.detect_broken_records or not columns:
        return []
    return _empty_rows_proposal(
        int(streamed_row(scan, [_every_field_empty(schema, columns).sum().alias("rows")])["rows"])
    )
