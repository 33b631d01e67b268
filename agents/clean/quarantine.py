"""The ``quarantine-agent``: rows failing the configured rules leave the data, each with every reason.

Checks (each switched by its ``detect_*`` flag), in the order their reasons are joined ("; "):
- broken records: every data field is empty (null, blank text or NaN);
- missing required fields: a ``required_fields`` column is null, blank text or NaN;
- type mismatches: a non-empty value that does not fit ``expected_schema``. Text is read as type-fixer
  reads it (agents.values: "$1,234" is numeric, "yes" is boolean, "01/31/2024" is a date), so what the
  type fixer can repair is not quarantined. Typed columns: integer accepts integer columns and whole
  floats; float/numeric any numeric column; boolean a Boolean column or integers 0/1; date a Date column
  or datetimes at midnight; datetime Date or Datetime; string anything. A column of another type fails
  on every non-empty value;
- out of range: a value below ``min`` or above ``max`` (inclusive bounds); text values that read as
  numbers are compared, the others are the type check's business;
- invalid formats: a non-empty value (as text) that does not match the whole of its regular expression
  (Rust ``regex`` syntax) or named format (``NAMED_FORMATS``; "date" = reads with a date format).
Schema mismatches (expected_schema columns missing from the data, data columns not in it) are reported
as issues and remove no rows; the type check skips missing columns.

Every failing cell is one row-level issue (``issue_type`` = the rule, ``row_index`` = the input file's
row); a broken record is one issue with no column. Naming a column that does not exist in
``required_fields``, ``range_constraints`` or ``format_constraints``, giving a range for a column that is
neither numeric nor text, or an invalid regular expression, is an InvalidParametersError.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.clean.common import clean_result, effectiveness, no_removed_rows, removed_rows
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
from agents.layouts import TextLayout, as_text
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.values import (
    DATE_FORMATS,
    NAMED_FORMATS,
    TEMPORAL_FORMATS,
    distinct_counts,
    is_missing,
    parse_boolean,
    parse_integer,
    parse_number,
    reads_as_temporal,
)

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
    """What one run found: the input, its checks, the quarantined rows, the failures by rule (cells and rows)
    and by column, and the expected_schema columns missing from the data and data columns not in it."""

    frame: pl.DataFrame
    checks: list[Check]
    removed: pl.DataFrame
    quarantined: int
    by_rule: dict[str, dict[str, int]]
    by_column: dict[str, dict[str, int]]
    missing_columns: list[str]
    unexpected_columns: list[str]


def run(inputs: AgentInputs, params: QuarantineAgentParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    _validate(frame, params)
    progress(0.0, f"Checking {frame.height:,} rows")
    checks = _checks(frame, params, inputs.text_layouts)
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
    outcome = Outcome(frame, checks, removed, quarantined, by_rule, by_column, missing_columns, unexpected_columns)
    schema_issues = _schema_issues(missing_columns, unexpected_columns)
    score = _score(outcome, params)
    summary_metrics = _summary_metrics(outcome, row_issues.height + len(schema_issues))
    alerts, recommendations = _findings(summary_metrics, by_rule, missing_columns)
    cards = _cards(outcome, summary_metrics, score)
    progress(1.0, "Quarantine done")
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=summary_metrics,
        data=_data(outcome, score, params),
        frame=clean,
        removed=removed,
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
    return collect_row_issues(
        [
            issues_where(
                work,
                pl.col(check.flag),
                column=check.column,
                issue_type=check.rule,
                severity=RULE_SEVERITY[check.rule],
                message=_expr(check.message),
                value=None if check.column is None else pl.col(check.column),
            )
            for check in checks
            if counts[check.flag]
        ]
    )


def _failures(
    work: pl.DataFrame, checks: list[Check], counts: dict[str, Any]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The failing cells and rows per rule, and the failing cells per column and rule."""
    by_rule: dict[str, dict[str, int]] = {}
    by_column: dict[str, dict[str, int]] = {}
    for check in checks:
        cells = int(counts[check.flag] or 0)
        by_rule.setdefault(check.rule, {"cells": 0})["cells"] += cells
        if check.column is not None and cells:
            by_column.setdefault(check.column, {})[check.rule] = cells
    if checks:
        rule_rows = work.select(
            [
                pl.any_horizontal([pl.col(check.flag) for check in checks if check.rule == rule]).sum().alias(rule)
                for rule in by_rule
            ]
        ).row(0, named=True)
        for rule, rows in rule_rows.items():
            by_rule[rule]["rows"] = int(rows or 0)
    return by_rule, by_column


def _score(outcome: Outcome, params: QuarantineAgentParams) -> dict[str, Any]:
    quarantined, total = outcome.quarantined, outcome.frame.height
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
    quarantined, total = outcome.quarantined, outcome.frame.height
    return {
        "total_rows_processed": total,
        "quarantined_records": quarantined,
        "clean_records": total - quarantined,
        "quarantine_percentage": round(pct(quarantined, total), 2),
        "quarantine_issues_found": issues_found,
    }


def _data(outcome: Outcome, score: dict[str, Any], params: QuarantineAgentParams) -> dict[str, Any]:
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
        "proposals": _proposals(outcome.frame, params),
    }


def _cards(outcome: Outcome, summary_metrics: dict[str, Any], score: dict[str, Any]) -> list[SummaryCard]:
    quarantined, total = outcome.quarantined, outcome.frame.height
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
    empty = pl.all_horizontal([is_missing(pl.col(name), schema[name]) for name in columns])
    rows = int(frame.select(empty.sum()).item())
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


def _checks(
    frame: pl.DataFrame, params: QuarantineAgentParams, layouts: Mapping[str, TextLayout] | None = None
) -> list[Check]:
    """``layouts``: the input's dates read from text, which format checks see as written."""
    schema = frame.schema
    columns = data_columns(frame)
    checks: list[Check] = []
    if params.detect_broken_records and columns:
        checks.append(
            Check(
                "broken_record",
                None,
                pl.all_horizontal([is_missing(pl.col(name), schema[name]) for name in columns]),
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
            mismatch = _type_mismatch(frame, name, expected)
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
            value = parse_number(pl.col(name)) if is_text(schema[name]) else pl.col(name).cast(pl.Float64)
            below = value < bounds.min if bounds.min is not None else pl.lit(False)
            above = value > bounds.max if bounds.max is not None else pl.lit(False)
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
            mismatch = _format_mismatch(frame, name, pattern, (layouts or {}).get(name))
            if mismatch is None:
                continue
            label = f"the {pattern} format" if pattern in NAMED_FORMATS or pattern == "date" else f"/{pattern}/"
            text = pl.concat_str(pl.lit(f"'{name}' value '"), shown(pl.col(name)), pl.lit(f"' does not match {label}"))
            checks.append(
                Check("invalid_format", name, ~is_missing(pl.col(name), schema[name]) & mismatch, text, text, label)
            )
    return checks


def _type_mismatch(frame: pl.DataFrame, name: str, expected: str) -> pl.Expr | None:
    """True where a non-empty value does not fit ``expected``; None when every value of the column fits."""
    dtype = frame[name].dtype
    x = pl.col(name)
    if expected == "string":
        return None
    if is_text(dtype):
        return _text_mismatch(frame, name, expected)
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


def _text_mismatch(frame: pl.DataFrame, name: str, expected: str) -> pl.Expr:
    """Decided once per distinct value (dates need ~20 parses each), then looked up for every row."""
    values = distinct_counts(frame, name)
    value = pl.col("value")
    fits = {
        "integer": lambda: parse_integer(value).is_not_null(),
        "float": lambda: parse_number(value).is_not_null(),
        "numeric": lambda: parse_number(value).is_not_null(),
        "boolean": lambda: parse_boolean(value).is_not_null(),
        "date": lambda: reads_as_temporal(value, DATE_FORMATS),
        "datetime": lambda: reads_as_temporal(value, TEMPORAL_FORMATS),
    }[expected]()
    bad = values.filter(~fits)["value"]
    return pl.col(name).cast(pl.String).str.strip_chars().is_in(bad.implode())


def _format_mismatch(frame: pl.DataFrame, name: str, pattern: str, layout: TextLayout | None) -> pl.Expr | None:
    """Values that do not match ``pattern``, checked on the text as the file holds it (``layout``)."""
    dtype = frame[name].dtype
    text = as_text(name, dtype, layout)
    if pattern == "date":
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            return None
        return _text_mismatch(frame, name, "date")
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
