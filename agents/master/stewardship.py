"""The ``stewardship-flagger`` agent: the review queue a data steward works through (reference/agents.md §1.6).

Each finding is one task of ``stewardship_queue.csv`` (``AgentResult.outputs``): ``task_id``, ``severity``
(critical, high, medium, low), ``reason`` (a sentence), ``source`` and ``source_row`` (the row's upload and
its row there; empty for a task about the data set or a golden record), ``golden_id`` (when
golden-record-builder ran earlier in the chain), ``column``, ``value`` and ``action``. Tasks are ordered by
severity, then row (file order), then column; ``task_id`` is ``T-`` and the position in that order. Checks:

- ``required_columns``: an empty cell (null, blank or a missing-value token) is a high task; a required
  column the data lacks a critical one.
- ``field_validation_rules`` {column: {pattern, min_length, allowed_values}}: a filled value that fails any
  (the pattern matches the whole value; allowed values trimmed and case-insensitive) is a medium task.
  With ``check_role_formats`` e-mail and phone columns (detected role) not covered by a rule are checked for
  a valid format too.
- ``outlier_thresholds`` {name: {min, max}}: on the columns of that name (normalised: ``Age`` = ``age``), a
  number outside is a medium task.
- ``duplicate_key_columns``: rows equal on all of them (none empty) are high tasks naming the group's first
  row.
- ``business_rules``: a row meeting ``condition`` (``parameters.stewardship_flagger.Condition``: eq, ne, gt,
  lt, contains, as Polars expressions; an empty cell never meets one) is a task of the rule's severity and
  action.
- From golden-record-builder's artifacts: each borderline pair of its ``resolution.review`` (a medium task
  at the pair's first row: "borderline match p=0.62 between rows 12 and 40"), and each golden record whose
  trust score is below ``confidence_threshold`` (high below 0.3, else medium).

Summary metrics (Agensium's names): ``tasks_created``; ``critical_issues`` and ``high_priority_tasks`` (tasks of
that severity); ``records_flagged`` = distinct rows a task names (both rows of a borderline pair);
``clean_data_rate`` = the percentage of rows no task names (ours: Agensium scales an issue rate). Every
row-level task is also a row-level issue (critical -> critical, high and medium -> warning, low -> info).
The data goes on unchanged.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.bounds import below_and_above
from agents.clean.common import clean_result, effectiveness
from agents.columns import check_regex, is_date_like, is_numeric, is_text, normalised_name, require_columns
from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.errors import InvalidParametersError
from agents.findings import Findings, card_status, names_where
from agents.formatting import number_label, shown
from agents.layouts import as_text
from agents.master import survivorship
from agents.master.survivorship import GOLDEN_ID, anchored, format_valid
from agents.params.stewardship_flagger import BusinessRule, StewardshipFlaggerParams
from agents.params.survivorship_resolver import FieldValidationRule
from agents.values import is_missing, parse_number

AGENT_ID = "stewardship-flagger"
AGENT_NAME = "Stewardship Flagger"
QUEUE = "stewardship_queue.csv"
SEVERITY_ORDER = ("critical", "high", "medium", "low")
ROW_SEVERITY = {"critical": "critical", "high": "warning", "medium": "warning", "low": "info"}
LOW_TRUST_HIGH = 0.3
TASK_PREVIEW = 200
QUEUE_SCHEMA: dict[str, pl.DataType] = {
    "task_id": pl.String(),
    "severity": pl.String(),
    "reason": pl.String(),
    "source": pl.String(),
    "source_row": pl.Int64(),
    GOLDEN_ID: pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "action": pl.String(),
}
ISSUE = "issue_type"
OTHER_ROW = "__other_row__"
# A task before the queue's bookkeeping: the row (null for data-set and golden-record tasks), its kind.
TASK_SCHEMA: dict[str, pl.DataType] = {
    ROW_INDEX_COLUMN: pl.Int64(),
    OTHER_ROW: pl.Int64(),
    ISSUE: pl.String(),
    "severity": pl.String(),
    "reason": pl.String(),
    GOLDEN_ID: pl.String(),
    "column": pl.String(),
    "value": pl.String(),
    "action": pl.String(),
}
ROLE_FORMATS = {"email": "a valid e-mail address", "phone": "a valid phone number"}


@dataclass
class Flagged:
    frame: pl.DataFrame
    tasks: pl.DataFrame  # TASK_SCHEMA plus source, source_row, task_id, in queue order
    checks: dict[str, int]

    @property
    def rows_named(self) -> pl.Series:
        named = pl.concat([self.tasks[ROW_INDEX_COLUMN], self.tasks[OTHER_ROW]]).drop_nulls().unique()
        return named


def run(inputs: AgentInputs, params: StewardshipFlaggerParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = survivorship.with_bookkeeping(inputs.primary)
    _validate(frame, params)
    progress(0.0, f"Looking for what needs review in {frame.height:,} rows")
    parts: dict[str, pl.LazyFrame] = {}
    parts["missing_required"] = _missing_required(frame, params)
    parts["invalid_format"] = _invalid_values(frame, params, inputs.artifacts)
    progress(0.4, "Checking ranges, duplicates and business rules")
    parts["outlier_value"] = _outliers(frame, params)
    parts["duplicate_suspected"] = _duplicates(frame, params)
    parts["business_rule_violation"] = _business_rules(frame, params)
    progress(0.7, "Collecting borderline matches and low-trust golden records")
    parts["borderline_match"] = _borderline_pairs(frame, inputs.artifacts)
    parts["low_trust_golden_record"] = _low_trust(inputs.artifacts, params)
    tasks = _queue(frame, list(parts.values()), inputs.artifacts)
    counts = dict(tasks.group_by(ISSUE).len().iter_rows()) if tasks.height else {}
    flagged = Flagged(frame, tasks, {name: int(counts.get(name, 0)) for name in parts})
    progress(0.9, "Building the report")
    result = _result(flagged, params, started)
    result.outputs = {QUEUE: tasks.select(list(QUEUE_SCHEMA))}
    progress(1.0, f"{tasks.height:,} review tasks")
    return result


def _validate(frame: pl.DataFrame, params: StewardshipFlaggerParams) -> None:
    require_columns(frame, params.field_validation_rules, agent_id=AGENT_ID, field="field_validation_rules")
    require_columns(frame, params.duplicate_key_columns, agent_id=AGENT_ID, field="duplicate_key_columns")
    for name, validation in params.field_validation_rules.items():
        if validation.pattern:
            check_regex(anchored(validation.pattern), agent_id=AGENT_ID, field=f"field_validation_rules.{name}.pattern")
    for index, rule in enumerate(params.business_rules):
        field = f"business_rules[{index}].condition"
        require_columns(frame, [rule.condition.column], agent_id=AGENT_ID, field=field)
        condition_expression(frame, rule, field)  # raises on a comparison the column cannot make


def _tasks(
    frame: pl.DataFrame,
    mask: pl.Expr,
    *,
    issue_type: str,
    severity: str | pl.Expr,
    reason: pl.Expr,
    column: str | None,
    value: pl.Expr | None,
    action: str | pl.Expr,
) -> pl.LazyFrame:
    """A task for every row of ``frame`` where ``mask`` holds (a null mask is false)."""

    def constant_or(item: str | pl.Expr | None) -> pl.Expr:
        return item if isinstance(item, pl.Expr) else pl.lit(item, pl.String)

    return (
        frame.lazy()
        .filter(mask.fill_null(False))
        .select(
            pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
            pl.lit(None, pl.Int64).alias(OTHER_ROW),
            pl.lit(issue_type, pl.String).alias(ISSUE),
            constant_or(severity).alias("severity"),
            reason.cast(pl.String).alias("reason"),
            pl.lit(None, pl.String).alias(GOLDEN_ID),
            constant_or(column).alias("column"),
            (shown(value) if value is not None else pl.lit(None, pl.String)).alias("value"),
            constant_or(action).alias("action"),
        )
    )


def _missing_required(frame: pl.DataFrame, params: StewardshipFlaggerParams) -> pl.LazyFrame:
    schema = frame.schema
    parts: list[pl.LazyFrame] = []
    absent = [name for name in params.required_columns if name not in schema or name not in data_columns(frame)]
    if absent:
        parts.append(
            pl.LazyFrame(
                {
                    ROW_INDEX_COLUMN: [None] * len(absent),
                    OTHER_ROW: [None] * len(absent),
                    ISSUE: ["missing_required_column"] * len(absent),
                    "severity": ["critical"] * len(absent),
                    "reason": [f"required column '{name}' is not in the data" for name in absent],
                    GOLDEN_ID: [None] * len(absent),
                    "column": absent,
                    "value": [None] * len(absent),
                    "action": [f"Add the column '{name}' to the sources" for name in absent],
                },
                schema=TASK_SCHEMA,
            )
        )
    for name in dict.fromkeys(params.required_columns):
        if name in absent:
            continue
        parts.append(
            _tasks(
                frame,
                is_missing(pl.col(name), schema[name]),
                issue_type="missing_required",
                severity="high",
                reason=pl.lit(f"required field '{name}' is empty"),
                column=name,
                value=None,
                action=f"Fill in '{name}'",
            )
        )
    return _union(parts)


def _invalid_values(
    frame: pl.DataFrame, params: StewardshipFlaggerParams, artifacts: Mapping[str, Any]
) -> pl.LazyFrame:
    schema = frame.schema
    parts = [_rule_failures(frame, name, rule) for name, rule in params.field_validation_rules.items()]
    if params.check_role_formats:
        roles = _roles(frame, artifacts)
        for name, role in roles.items():
            if role not in ROLE_FORMATS or name in params.field_validation_rules:
                continue
            valid = format_valid(name, schema[name], role)
            if valid is None:
                continue
            parts.append(
                _tasks(
                    frame,
                    ~is_missing(pl.col(name), schema[name]) & ~valid,
                    issue_type="invalid_format",
                    severity="medium",
                    reason=pl.lit(f"'{name}' is not {ROLE_FORMATS[role]}"),
                    column=name,
                    value=pl.col(name),
                    action=f"Correct the {role.replace('_', ' ')} in '{name}'",
                )
            )
    return _union(parts)


def _roles(frame: pl.DataFrame, artifacts: Mapping[str, Any]) -> dict[str, str]:
    schema = frame.schema
    if not any(is_text(schema[name]) for name in data_columns(frame)):
        return {}
    roles, _ = survivorship.column_roles(frame, artifacts)
    return roles


def _rule_failures(frame: pl.DataFrame, name: str, rule: FieldValidationRule) -> pl.LazyFrame:
    dtype = frame.schema[name]
    text = as_text(name, dtype).str.strip_chars()
    failures: list[tuple[str, pl.Expr]] = []
    if rule.pattern:
        failures.append((f"does not match {rule.pattern}", ~text.str.contains(anchored(rule.pattern))))
    if rule.min_length is not None:
        failures.append((f"is shorter than {rule.min_length} characters", text.str.len_chars() < rule.min_length))
    if rule.allowed_values is not None:
        allowed = pl.Series([value.strip().lower() for value in rule.allowed_values], dtype=pl.String)
        failures.append(("is not one of the allowed values", ~text.str.to_lowercase().is_in(allowed.implode())))
    if not failures:
        return pl.LazyFrame(schema=TASK_SCHEMA)
    failed = pl.any_horizontal([flag for _, flag in failures])
    return _tasks(
        frame,
        ~is_missing(pl.col(name), dtype) & failed,
        issue_type="invalid_format",
        severity="medium",
        reason=format_text("'{}' {}", pl.lit(name), names_where(failures, separator="; ")),
        column=name,
        value=pl.col(name),
        action=f"Correct the value of '{name}'",
    )


def _outliers(frame: pl.DataFrame, params: StewardshipFlaggerParams) -> pl.LazyFrame:
    bounds = {normalised_name(name): limits for name, limits in params.outlier_thresholds.items()}
    schema = frame.schema
    parts: list[pl.LazyFrame] = []
    for name in data_columns(frame):
        limits = bounds.get(normalised_name(name))
        dtype = schema[name]
        if limits is None or not (is_numeric(dtype) or is_text(dtype)):
            continue
        number = (
            pl.col(name).cast(pl.Float64) if is_numeric(dtype) else parse_number(as_text(name, dtype).str.strip_chars())
        )
        exact = dtype.is_integer()  # integers compared in integers: ids past 2^53 exactly
        below, above = below_and_above(
            pl.col(name) if exact else number, dtype if exact else pl.Float64(), limits.min, limits.max
        )
        outside = pl.lit(False) | below | above
        low = "-inf" if limits.min is None else number_label(limits.min)
        high = "inf" if limits.max is None else number_label(limits.max)
        parts.append(
            _tasks(
                frame,
                outside,
                issue_type="outlier_value",
                severity="medium",
                reason=format_text(
                    "'{}' value {} is outside {}", pl.lit(name), as_text(name, dtype), pl.lit(f"{low}..{high}")
                ),
                column=name,
                value=pl.col(name),
                action=f"Check the value of '{name}' (expected {low}..{high})",
            )
        )
    return _union(parts)


def _duplicates(frame: pl.DataFrame, params: StewardshipFlaggerParams) -> pl.LazyFrame:
    keys = list(dict.fromkeys(params.duplicate_key_columns))
    if not keys:
        return pl.LazyFrame(schema=TASK_SCHEMA)
    schema = frame.schema
    complete = pl.all_horizontal([~is_missing(pl.col(name), schema[name]) for name in keys])
    size = pl.len().over(keys)
    first = pl.col(ROW_INDEX_COLUMN).min().over(keys)
    label = ", ".join(keys)
    value = pl.concat_str([as_text(name, schema[name]) for name in keys], separator=" | ")
    return _tasks(
        frame,
        complete & (size > 1),
        issue_type="duplicate_suspected",
        severity="high",
        reason=format_text("one of {} rows with the same {} (first: row {})", size, pl.lit(label), first),
        column=label,
        value=value,
        action="Merge the duplicate records or tell them apart",
    )


def _business_rules(frame: pl.DataFrame, params: StewardshipFlaggerParams) -> pl.LazyFrame:
    parts = []
    for index, rule in enumerate(params.business_rules):
        condition = rule.condition
        met = condition_expression(frame, rule, f"business_rules[{index}].condition")
        parts.append(
            _tasks(
                frame,
                pl.col(condition.column).is_not_null() & met,
                issue_type="business_rule_violation",
                severity=rule.severity,
                reason=pl.lit(
                    f"business rule '{rule.name}': {condition.column} {condition.operator} {condition.value!r}"
                ),
                column=condition.column,
                value=pl.col(condition.column),
                action=rule.action,
            )
        )
    return _union(parts)


def condition_expression(frame: pl.DataFrame, rule: BusinessRule, field: str) -> pl.Expr:
    """The rule's condition as a Polars expression over whole columns (``Condition``'s docstring), built
    from the five whitelisted operators; ``InvalidParametersError`` for a comparison the column cannot
    make (gt/lt on text that is neither a number nor a date, a boolean compared by size)."""
    condition = rule.condition
    name, operator, value = condition.column, condition.operator, condition.value
    dtype = frame.schema[name]
    column = pl.col(name)
    if operator == "contains":
        return as_text(name, dtype).str.contains(str(value), literal=True)
    if operator in ("eq", "ne"):
        if isinstance(value, bool):
            left: pl.Expr = column if dtype == pl.Boolean else as_text(name, dtype).str.strip_chars().str.to_lowercase()
            right: Any = value if dtype == pl.Boolean else str(value).lower()
        elif isinstance(value, int | float) and is_numeric(dtype):
            left, right = column, value
        else:
            left = as_text(name, dtype).str.strip_chars()
            right = number_label(value) if isinstance(value, float) else str(value).strip()
        return left == right if operator == "eq" else left != right
    bound = _ordered_bound(name, dtype, value, field)
    left = parse_number(as_text(name, dtype).str.strip_chars()) if is_text(dtype) else column
    return left > bound if operator == "gt" else left < bound


def _ordered_bound(name: str, dtype: pl.DataType, value: str | int | float | bool, field: str) -> Any:
    """The value gt/lt compares ``name`` with, in the column's terms."""
    if isinstance(value, bool):
        raise InvalidParametersError(
            f"{AGENT_ID}.{field}: gt/lt compare numbers or dates, not {value!r}", agent_id=AGENT_ID, field=field
        )
    if is_date_like(dtype):
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidParametersError(
                f"{AGENT_ID}.{field}: '{name}' holds dates; compare it with a date like 2024-01-31, not {value!r}",
                agent_id=AGENT_ID,
                field=field,
            ) from None
        return pl.lit(moment.date()) if dtype == pl.Date else pl.lit(moment).cast(dtype)
    if is_numeric(dtype) or is_text(dtype):
        try:
            return float(value)
        except ValueError:
            raise InvalidParametersError(
                f"{AGENT_ID}.{field}: gt/lt compare numbers (or dates on a date column), not {value!r}",
                agent_id=AGENT_ID,
                field=field,
            ) from None
    raise InvalidParametersError(
        f"{AGENT_ID}.{field}: '{name}' ({dtype}) cannot be compared with gt/lt", agent_id=AGENT_ID, field=field
    )


def _borderline_pairs(frame: pl.DataFrame, artifacts: Mapping[str, Any]) -> pl.LazyFrame:
    """A task per borderline pair of golden-record-builder's resolution, at the pair's first row."""
    review = getattr(artifacts.get("resolution"), "review", None)
    if not isinstance(review, pl.DataFrame) or not review.height:
        return pl.LazyFrame(schema=TASK_SCHEMA)
    places = frame.lazy().select(
        pl.col(ROW_INDEX_COLUMN),
        pl.concat_str([pl.col(SOURCE_COLUMN), pl.lit(" row "), pl.col(SOURCE_ROW_COLUMN).cast(pl.String)]).alias(
            "__place__"
        ),
    )
    pairs = review.lazy().select(
        pl.min_horizontal("left", "right").cast(pl.Int64).alias("__left__"),
        pl.max_horizontal("left", "right").cast(pl.Int64).alias("__right__"),
        pl.col("probability").cast(pl.Float64),
        (pl.col("reason").cast(pl.String) if "reason" in review.columns else pl.lit(None, pl.String)).alias("__why__"),
    )
    located = pairs.join(
        places.rename({ROW_INDEX_COLUMN: "__left__", "__place__": "__left_place__"}), on="__left__", how="left"
    ).join(places.rename({ROW_INDEX_COLUMN: "__right__", "__place__": "__right_place__"}), on="__right__", how="left")
    reason = format_text(
        "borderline match p={} between rows {} and {} ({}, {})",
        pl.col("probability").round(2),
        pl.col("__left__"),
        pl.col("__right__"),
        pl.col("__left_place__").fill_null("?"),
        pl.col("__right_place__").fill_null("?"),
    )
    reason = (
        pl.when(pl.col("__why__").is_not_null() & (pl.col("__why__") != ""))
        .then(format_text("{}: {}", reason, pl.col("__why__")))
        .otherwise(reason)
    )
    return located.select(
        pl.col("__left__").alias(ROW_INDEX_COLUMN),
        pl.col("__right__").alias(OTHER_ROW),
        pl.lit("borderline_match").alias(ISSUE),
        pl.lit("medium").alias("severity"),
        reason.alias("reason"),
        pl.lit(None, pl.String).alias(GOLDEN_ID),
        pl.lit(None, pl.String).alias("column"),
        pl.col("probability").round(4).cast(pl.String).alias("value"),
        format_text("Confirm or reject the match of rows {} and {}", pl.col("__left__"), pl.col("__right__")).alias(
            "action"
        ),
    ).cast(TASK_SCHEMA)  # type: ignore[arg-type]


def _low_trust(artifacts: Mapping[str, Any], params: StewardshipFlaggerParams) -> pl.LazyFrame:
    golden = artifacts.get("golden_records")
    if not isinstance(golden, pl.DataFrame) or "trust_score" not in golden.columns or GOLDEN_ID not in golden.columns:
        return pl.LazyFrame(schema=TASK_SCHEMA)
    records = pl.col("record_count") if "record_count" in golden.columns else pl.lit(None, pl.Int64)
    return (
        golden.lazy()
        .filter(pl.col("trust_score") < params.confidence_threshold)
        .select(
            pl.lit(None, pl.Int64).alias(ROW_INDEX_COLUMN),
            pl.lit(None, pl.Int64).alias(OTHER_ROW),
            pl.lit("low_trust_golden_record").alias(ISSUE),
            pl.when(pl.col("trust_score") < LOW_TRUST_HIGH)
            .then(pl.lit("high"))
            .otherwise(pl.lit("medium"))
            .alias("severity"),
            format_text(
                "golden record built from {} rows has trust score {} (below {})",
                records,
                pl.col("trust_score").round(3),
                pl.lit(params.confidence_threshold),
            ).alias("reason"),
            pl.col(GOLDEN_ID).cast(pl.String),
            pl.lit("trust_score").alias("column"),
            pl.col("trust_score").round(4).cast(pl.String).alias("value"),
            pl.lit("Review the golden record's conflicting values").alias("action"),
        )
        .cast(TASK_SCHEMA)  # type: ignore[arg-type]
    )


def _union(parts: list[pl.LazyFrame]) -> pl.LazyFrame:
    if not parts:
        return pl.LazyFrame(schema=TASK_SCHEMA)
    return pl.concat([part.cast(TASK_SCHEMA) for part in parts], how="vertical")  # type: ignore[arg-type]


def _queue(frame: pl.DataFrame, parts: list[pl.LazyFrame], artifacts: Mapping[str, Any]) -> pl.DataFrame:
    """Every task in queue order, with the row's source, source row and golden record, and its id."""
    places = frame.lazy().select(
        ROW_INDEX_COLUMN, pl.col(SOURCE_COLUMN).alias("source"), pl.col(SOURCE_ROW_COLUMN).alias("source_row")
    )
    tasks = _union(parts).join(places, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
    crosswalk = artifacts.get("crosswalk")
    if isinstance(crosswalk, pl.DataFrame) and {ROW_INDEX_COLUMN, GOLDEN_ID} <= set(crosswalk.columns):
        known = crosswalk.lazy().select(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), pl.col(GOLDEN_ID).alias("__known__"))
        tasks = (
            tasks.join(known, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
            .with_columns(pl.coalesce(GOLDEN_ID, "__known__").alias(GOLDEN_ID))
            .drop("__known__")
        )
    rank = pl.col("severity").replace_strict(
        {name: index for index, name in enumerate(SEVERITY_ORDER)}, return_dtype=pl.Int64
    )
    ordered = (
        tasks.sort(
            [rank, pl.col(ROW_INDEX_COLUMN), pl.col("column"), pl.col(ISSUE), pl.col(GOLDEN_ID), pl.col(OTHER_ROW)],
            nulls_last=[False, False, False, False, False, False],
            maintain_order=True,
        )
        .with_row_index("__position__", offset=1)
        .with_columns(format_text("T-{}", pl.col("__position__").cast(pl.String).str.zfill(7)).alias("task_id"))
        .drop("__position__")
        .collect()
    )
    return ordered


# ---------------------------------------------------------------------------------------------------------
# the envelope


def _result(flagged: Flagged, params: StewardshipFlaggerParams, started: float) -> AgentResult:
    tasks, rows = flagged.tasks, flagged.frame.height
    by_severity = dict(tasks.group_by("severity").len().iter_rows()) if tasks.height else {}
    named = flagged.rows_named.len()
    clean_rate = round(100.0 * (rows - named) / rows, 2) if rows else 100.0
    metrics = {
        "tasks_created": tasks.height,
        "critical_issues": int(by_severity.get("critical", 0)),
        "high_priority_tasks": int(by_severity.get("high", 0)),
        "records_flagged": named,
        "clean_data_rate": clean_rate,
    }
    weights = params.severity_weights.model_dump()
    weighted = sum(weights[name] * int(by_severity.get(name, 0)) for name in SEVERITY_ORDER)
    worst = rows * weights["critical"]
    score = effectiveness(
        {"clean_data": clean_rate, "severity": max(0.0, 100.0 - 100.0 * weighted / worst) if worst else 100.0},
        {"clean_data": 0.6, "severity": 0.4},
        params,
    )
    findings = _findings(flagged, metrics)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=metrics,
        data={
            "stewardship_score": score["score"],
            "quality_status": score["status"],
            "effectiveness": score,
            "tasks_by_type": {name: count for name, count in flagged.checks.items() if count},
            "tasks_by_severity": {name: int(by_severity.get(name, 0)) for name in SEVERITY_ORDER},
            "tasks_by_column": _by_column(tasks),
            "task_list": tasks.head(TASK_PREVIEW).select(list(QUEUE_SCHEMA)).to_dicts(),
            "outputs": {QUEUE: tasks.height},
        },
        frame=None,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=[
            SummaryCard(
                "exec_stewardship_flagger",
                "Stewardship Queue",
                f"{tasks.height:,} tasks",
                card_status(score["status"]),
                f"{metrics['critical_issues']:,} critical, {metrics['high_priority_tasks']:,} high; "
                f"{named:,} rows flagged; clean data rate {clean_rate:.1f}%",
            )
        ],
        row_level_issues=_row_issues(tasks),
    )


def _by_column(tasks: pl.DataFrame) -> dict[str, int]:
    if not tasks.height:
        return {}
    counts = tasks.filter(pl.col("column").is_not_null()).group_by("column").len().sort("column")
    return {str(name): int(count) for name, count in counts.iter_rows()}


def _findings(flagged: Flagged, metrics: dict[str, Any]) -> Findings:
    findings = Findings(AGENT_ID)
    checks, rows = flagged.checks, flagged.frame.height
    if metrics["critical_issues"]:
        findings.alert(
            "data_quality",
            "critical",
            f"{metrics['critical_issues']:,} critical tasks need attention before the data is used",
            "Work through the critical tasks of stewardship_queue.csv first",
            kind="critical_tasks",
            affected=metrics["critical_issues"],
            recommend=True,
        )
    if metrics["high_priority_tasks"] > 0.1 * rows:
        findings.alert(
            "data_quality",
            "high",
            f"{metrics['high_priority_tasks']:,} high-severity tasks for {rows:,} rows",
            "Look for a systematic cause in how the data is collected",
            kind="high_volume",
            affected=metrics["high_priority_tasks"],
        )
    labels = {
        "missing_required": ("completeness", "high", "required fields are empty", "Fill in the required fields"),
        "duplicate_suspected": ("integrity", "medium", "rows share their duplicate key", "Merge the duplicates"),
        "borderline_match": (
            "matching",
            "medium",
            "pairs of rows are borderline matches",
            "Confirm or reject them; a confirmed pair can be merged by lowering fuzzy_threshold",
        ),
        "low_trust_golden_record": (
            "data_quality",
            "medium",
            "golden records have a low trust score",
            "Review their conflicting values",
        ),
    }
    for kind, (category, severity, text, advice) in labels.items():
        count = checks.get(kind, 0)
        if count:
            findings.alert(category, severity, f"{count:,} {text}", advice, kind=kind, affected=count)  # type: ignore[arg-type]
    tasks = flagged.tasks
    if tasks.height:
        per_type = tasks.group_by(ISSUE, "column", maintain_order=True).len()
        for issue_type, column, count in per_type.iter_rows():
            if column is None:
                continue
            findings.issue(
                str(issue_type),
                "medium",
                f"{count:,} {str(issue_type).replace('_', ' ')} tasks on '{column}'",
                field_name=str(column),
                details={"tasks": int(count)},
            )
    return findings


def _row_issues(tasks: pl.DataFrame) -> pl.DataFrame:
    rows = tasks.filter(pl.col(ROW_INDEX_COLUMN).is_not_null())
    if not rows.height:
        return pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    return (
        rows.select(
            pl.col(ROW_INDEX_COLUMN).alias("row_index"),
            pl.col("column").fill_null("all"),
            pl.col(ISSUE).alias("issue_type"),
            pl.col("severity").replace_strict(ROW_SEVERITY, return_dtype=pl.String),
            pl.col("reason").alias("message"),
            pl.col("value"),
        )
        .sort("row_index", "column", maintain_order=True)
        .cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]
    )
