"""The ``readiness-rater``: completeness, consistency and schema health, a readiness score and status.

Components (Agensium's formulas, reference/agents.md §1.4, on the typed frame parsed once — §1.7 #1):

- **completeness** = 100 × non-null cells / cells. A text cell that does not parse as a number is a parse
  failure (consistency), never a missing cell: nothing was coerced to null when the file was read;
- **consistency** = 100 − 20 × (text columns of numbers with parse failures) / (all columns). A text
  column "holds numbers" when at least 70 % of its non-null values (trimmed) parse as numbers — the
  profiler's and type-fixer's threshold; each of its other cells (blank ones included) is a parse failure;
- **schema health** = 100 − 15 per all-null column − 8 per generated name (blank, ``Unnamed*`` from pandas,
  ``column_<n>`` given to a blank header by the reader or Polars, ``<name>_duplicated_<n>`` from Polars; a
  repeated header the reader renamed ``<name>_2`` cannot be told from a real name and is not counted)
  − 5 per mixed column, floored at 0. A
  text column is mixed when 30–70 % of its non-null values parse as numbers (Agensium: any share under
  30 %, which flags free text that merely contains a few numbers);
- **readiness** = weighted mean of the three (weights normalised by their sum). Status ``ready`` at or
  above ``ready_threshold``, ``needs_review`` at or above ``needs_review_threshold``, else ``not_ready``.

Deductions (Agensium's rules and amounts; they explain the findings and are *not* subtracted again from
the score): per column > 10 % missing (min(missing % / 5, 25)); unparseable values in text columns whose
name marks a date (min(unparseable % / 10, 12), the profiler's date formats); > 5 % IQR outliers of a
numeric column (1.5 × IQR, linear quantiles; min(outlier % / 20, 8)); duplicate rows (min(% / 10, 15)).

Row-level issues: numeric parse failures, unparseable dates, and each row that repeats an earlier row.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.columns import is_text, narrow, normalised_name, with_row_index
from agents.envelope import (
    ROW_INDEX_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    Severity,
    SummaryCard,
    data_columns,
)
from agents.findings import Findings, collect_row_issues, issues_where, score_status
from agents.formatting import pct
from agents.params.readiness_rater import ReadinessRaterParams
from agents.profile.pii import sample_rows
from agents.quality.report import (
    parsed_dates,
    quality_result,
    weighted_score,
)

AGENT_ID = "readiness-rater"
AGENT_NAME = "Readiness Rater"
NUMERIC_COLUMN_SHARE = 0.7
MIXED_COLUMN_SHARE = 0.3
ALL_NULL_PENALTY = 15
UNNAMED_PENALTY = 8
MIXED_PENALTY = 5
CONSISTENCY_PENALTY = 20
IQR_MULTIPLIER = 1.5
NUMERIC_SCREEN_ROWS = 10_000
NUMERIC_SCREEN_SHARE = 0.2
UNNAMED = re.compile(r"^\s*$|^Unnamed|_duplicated_\d+$|^column_\d+$")
DATE_NAME = re.compile(r"(^|_)(date|time|timestamp|datetime|created|updated|modified|dob|birthday)(_|$)|_at$")


@dataclass(frozen=True)
class _Kinds:
    """The data columns by what the components look at."""

    columns: list[str]
    text: list[str]
    numeric: list[str]
    dates: list[str]  # text columns whose name marks a date


@dataclass(frozen=True)
class _Consistency:
    parse: dict[str, dict[str, Any]]  # text columns that hold numbers, or partly
    numeric_text: list[str]  # text columns of numbers with parse failures
    mixed: list[str]
    score: float
    parse_failures: int


@dataclass(frozen=True)
class _SchemaHealth:
    all_null: list[str]
    unnamed: list[str]
    score: float


@dataclass(frozen=True)
class _Rating:
    cells: int
    missing_cells: int
    completeness: float
    consistency: _Consistency
    schema_health: _SchemaHealth
    effective_weights: dict[str, float]
    overall: float
    status: str

    @property
    def components(self) -> dict[str, float]:
        return {
            "completeness": self.completeness,
            "consistency": self.consistency.score,
            "schema_health": self.schema_health.score,
        }


@dataclass(frozen=True)
class _RowCounts:
    parse_failures: int
    unparseable_dates: int
    duplicate_rows: int

    @property
    def total(self) -> int:
        return self.parse_failures + self.unparseable_dates + self.duplicate_rows


def run(inputs: AgentInputs, params: ReadinessRaterParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = inputs.primary
    columns = data_columns(frame)
    rows = frame.height
    progress(0.0, f"Rating readiness of {len(columns)} columns x {rows:,} rows")
    kinds = _column_kinds(frame, columns)
    stats, bad_dates = _gather_stats(frame, kinds)
    progress(0.5, "Scoring components and deductions")
    rating = _rate(stats, kinds, rows, params)
    counts = _RowCounts(
        parse_failures=rating.consistency.parse_failures,
        unparseable_dates=sum(stats[f"{name}:non_null"] - stats[f"{name}:dates"] for name in kinds.dates),
        duplicate_rows=rows - stats["distinct_rows"] if columns else 0,
    )
    deductions = _deductions(frame, stats, columns, kinds.numeric, kinds.dates, counts.duplicate_rows)

    progress(0.8, "Listing row-level findings")
    row_issues = _row_issues(frame, columns, rating.consistency.numeric_text, bad_dates, counts.duplicate_rows, params)
    component_scores = _component_scores(rating)
    findings = _findings(rating, deductions)
    progress(1.0, "Readiness rating complete")
    return quality_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(rating, component_scores, counts, rows, len(columns), len(deductions)),
        data=_data(rating, component_scores, deductions),
        findings=findings,
        cards=_cards(
            rating.overall,
            rating.status,
            rating.completeness,
            rating.consistency.score,
            rating.schema_health.score,
            len(deductions),
        ),
        row_issues=row_issues,
        row_issues_total=counts.total,
    )


def _column_kinds(frame: pl.DataFrame, columns: list[str]) -> _Kinds:
    schema = frame.schema
    text_columns = [name for name in columns if is_text(schema[name])]
    return _Kinds(
        columns=columns,
        text=text_columns,
        numeric=[name for name in columns if schema[name].is_numeric()],
        dates=[name for name in text_columns if DATE_NAME.search(normalised_name(name))],
    )


def _gather_stats(frame: pl.DataFrame, kinds: _Kinds) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """The column statistics (with ``<name>:dates``, the values of a date-named column that parse as dates)
    and, per date-named column, its distinct values that do not."""
    candidates = _numeric_candidates(frame, kinds.text)
    stats = _column_stats(frame, kinds.columns, kinds.text, candidates, kinds.numeric)
    bad_dates = {name: _unparseable_date_counts(frame, name) for name in kinds.dates}
    for name, counts in bad_dates.items():
        stats[f"{name}:dates"] = stats[f"{name}:non_null"] - int(counts["len"].sum())
    return stats, bad_dates


def _rate(stats: dict[str, Any], kinds: _Kinds, rows: int, params: ReadinessRaterParams) -> _Rating:
    columns = kinds.columns
    cells = rows * len(columns)
    missing_cells = sum(stats[f"{name}:nulls"] for name in columns)
    completeness = round(100.0 * (cells - missing_cells) / cells, 4) if cells else 0.0
    consistency = _consistency(stats, kinds)
    schema_health = _schema_health(stats, columns, rows, consistency.mixed)
    components = {"completeness": completeness, "consistency": consistency.score, "schema_health": schema_health.score}
    weights = {
        "completeness": params.completeness_weight,
        "consistency": params.consistency_weight,
        "schema_health": params.schema_health_weight,
    }
    score, effective = weighted_score(components, weights)
    overall = score if score is not None else 0.0
    return _Rating(
        cells=cells,
        missing_cells=missing_cells,
        completeness=completeness,
        consistency=consistency,
        schema_health=schema_health,
        effective_weights=effective,
        overall=overall,
        status=readiness_status(overall, params),
    )


def _consistency(stats: dict[str, Any], kinds: _Kinds) -> _Consistency:
    """Which text columns hold numbers (with parse failures) or are mixed, and the consistency score."""
    parse: dict[str, dict[str, Any]] = {}
    numeric_text, mixed = [], []
    for name in kinds.text:
        non_null, parsed = stats[f"{name}:non_null"], stats[f"{name}:parsed"]
        share = parsed / non_null if non_null else 0.0
        if share >= NUMERIC_COLUMN_SHARE and parsed < non_null:
            numeric_text.append(name)
        elif MIXED_COLUMN_SHARE <= share < NUMERIC_COLUMN_SHARE:
            mixed.append(name)
        if share >= MIXED_COLUMN_SHARE:
            parse[name] = {
                "field_name": name,
                "non_null": non_null,
                "parsed_as_number": parsed,
                "parse_failures": non_null - parsed,
                "numeric_share": round(share, 4),
                "kind": "numeric_with_failures" if name in numeric_text else "mixed" if name in mixed else "numeric",
            }
    return _Consistency(
        parse=parse,
        numeric_text=numeric_text,
        mixed=mixed,
        score=max(0.0, 100.0 - CONSISTENCY_PENALTY * len(numeric_text) / max(len(kinds.columns), 1)),
        parse_failures=sum(parse[name]["parse_failures"] for name in numeric_text),
    )


def _schema_health(stats: dict[str, Any], columns: list[str], rows: int, mixed: list[str]) -> _SchemaHealth:
    all_null = [name for name in columns if rows and stats[f"{name}:nulls"] == rows]
    unnamed = [name for name in columns if UNNAMED.search(name)]
    score = max(
        0.0,
        100.0 - ALL_NULL_PENALTY * len(all_null) - UNNAMED_PENALTY * len(unnamed) - MIXED_PENALTY * len(mixed),
    )
    return _SchemaHealth(all_null=all_null, unnamed=unnamed, score=score)


def _row_issues(
    frame: pl.DataFrame,
    columns: list[str],
    numeric_text: list[str],
    bad_dates: dict[str, pl.DataFrame],
    duplicate_rows: int,
    params: ReadinessRaterParams,
) -> pl.DataFrame:
    """Numeric parse failures, unparseable dates and repeated rows, up to the stored cap."""
    numbered = with_row_index(frame)
    lazy = numbered.lazy()
    queries = [_parse_failure_query(narrow(numbered, [ROW_INDEX_COLUMN, name]), name) for name in numeric_text]
    queries += [
        _date_failure_query(narrow(numbered, [ROW_INDEX_COLUMN, name]), name, counts)
        for name, counts in bad_dates.items()
        if counts.height
    ]
    if duplicate_rows:
        queries.append(
            issues_where(
                lazy,
                ~pl.struct(columns).is_first_distinct(),
                column=None,
                issue_type="duplicate_row",
                severity="info",
                message="Row repeats an earlier row exactly",
                value=None,
            )
        )
    return collect_row_issues(queries, limit=params.max_stored_row_level_issues)


def _component_scores(rating: _Rating) -> list[dict[str, Any]]:
    effective = rating.effective_weights
    return [
        _component("completeness", rating.completeness, effective, "Share of cells that are not null"),
        _component(
            "consistency", rating.consistency.score, effective, "Text columns of numbers without parse failures"
        ),
        _component("schema_health", rating.schema_health.score, effective, "No empty, unnamed or mixed-type columns"),
    ]


def _summary_metrics(
    rating: _Rating,
    component_scores: list[dict[str, Any]],
    counts: _RowCounts,
    rows: int,
    width: int,
    deductions_count: int,
) -> dict[str, Any]:
    return {
        "readiness_score": rating.overall,
        "readiness_status": rating.status,
        "components_ready": sum(item["score"] >= 80 for item in component_scores),
        "components_needs_review": sum(60 <= item["score"] < 80 for item in component_scores),
        "components_not_ready": sum(item["score"] < 60 for item in component_scores),
        "total_rows": rows,
        "total_columns": width,
        "missing_cells": rating.missing_cells,
        "numeric_parse_failures": counts.parse_failures,
        "unparseable_dates": counts.unparseable_dates,
        "duplicate_rows": counts.duplicate_rows,
        "deductions_count": deductions_count,
        "row_level_issues_total": counts.total,
    }


def _data(rating: _Rating, component_scores: list[dict[str, Any]], deductions: list[dict[str, Any]]) -> dict[str, Any]:
    consistency, schema_health = rating.consistency, rating.schema_health
    return {
        "readiness_score": {
            "overall": rating.overall,
            **{name: round(value, 4) for name, value in rating.components.items()},
        },
        "readiness_assessment": _assessment(rating.overall, rating.status),
        "component_scores": component_scores,
        "effective_weights": rating.effective_weights,
        "deductions": deductions,
        "total_deduction_points": round(sum(item["deduction_amount"] for item in deductions), 2),
        "consistency_details": {
            "numeric_text_columns": consistency.numeric_text,
            "parse_failures": consistency.parse_failures,
            "columns": list(consistency.parse.values()),
        },
        "schema_health_details": {
            "all_null_columns": schema_health.all_null,
            "unnamed_columns": schema_health.unnamed,
            "mixed_columns": consistency.mixed,
            "penalties": {"all_null": ALL_NULL_PENALTY, "unnamed": UNNAMED_PENALTY, "mixed": MIXED_PENALTY},
        },
        "completeness_details": {"cells": rating.cells, "missing_cells": rating.missing_cells},
        "conventions": {
            "completeness": "100 x non-null cells / cells; text that fails to parse is never counted as missing",
            "numeric_text_column": f"text column with >= {NUMERIC_COLUMN_SHARE:.0%} of non-null values numeric",
            "mixed_column": f"text column with {MIXED_COLUMN_SHARE:.0%}-{NUMERIC_COLUMN_SHARE:.0%} numeric values",
            "deductions": "Agensium's impact points per finding; informational, not subtracted from the score",
            "outliers": "values outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR], linear quantiles over non-null, non-NaN values",
        },
    }


def readiness_status(score: float, params: ReadinessRaterParams) -> str:
    if score >= params.ready_threshold:
        return "ready"
    if score >= params.needs_review_threshold:
        return "needs_review"
    return "not_ready"


def _numbers(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _numeric_candidates(frame: pl.DataFrame, text_columns: list[str]) -> set[str]:
    """Text columns worth parsing in full: on a large frame, those of which at least
    ``NUMERIC_SCREEN_SHARE`` of an evenly spaced sample parse as numbers (well under the 30 % at which a
    column starts to count as mixed); on a small frame, all of them."""
    if frame.height <= NUMERIC_SCREEN_ROWS or not text_columns:
        return set(text_columns)
    sample = sample_rows(frame.select(text_columns), NUMERIC_SCREEN_ROWS)
    shares = sample.select(
        (_numbers(name).is_not_null().sum() / pl.col(name).is_not_null().sum().clip(lower_bound=1)).alias(name)
        for name in text_columns
    ).row(0, named=True)
    return {name for name, share in shares.items() if (share or 0.0) >= NUMERIC_SCREEN_SHARE}


def _column_stats(
    frame: pl.DataFrame,
    columns: list[str],
    text_columns: list[str],
    candidates: set[str],
    numeric_columns: list[str],
) -> dict[str, Any]:
    """Every count the components and deductions need, in one query. A text column that is not a numeric
    candidate counts as parsing no number (its sampled share is under ``NUMERIC_SCREEN_SHARE``)."""
    expressions: list[pl.Expr] = [pl.col(name).null_count().alias(f"{name}:nulls") for name in columns]
    for name in text_columns:
        expressions.append(pl.col(name).is_not_null().sum().alias(f"{name}:non_null"))
        parsed = _numbers(name).is_not_null().sum() if name in candidates else pl.lit(0, dtype=pl.UInt32)
        expressions.append(parsed.alias(f"{name}:parsed"))
    for name in numeric_columns:
        values = pl.col(name).cast(pl.Float64).drop_nulls().drop_nans()
        # both quartiles of one selection and sort (two ``quantile`` calls select and sort twice)
        expressions.append(values.quantile([0.25, 0.75], "linear").alias(f"{name}:quartiles"))
        expressions.append(values.len().alias(f"{name}:finite"))
    # Eager (the in-memory engine): the streaming engine, lazy's default, plans a select of thousands of
    # expressions in quadratic time (minutes for a 10,000-column file).
    stats = frame.select(expressions or [pl.len()]).row(0, named=True)
    if columns:
        # distinct row hashes (hash_rows: half the time of hashing a struct); equal rows hash alike, so as many
        # as rows means no duplicate, and fewer (or a collision) is confirmed exactly
        stats["distinct_rows"] = frame.select(columns).hash_rows().n_unique()
        if stats["distinct_rows"] < frame.height:
            stats["distinct_rows"] = frame.select(pl.struct(columns).n_unique()).item()
    if numeric_columns:
        outliers = frame.select(_outside_fences(name, stats) for name in numeric_columns).row(0, named=True)
        stats.update(outliers)
    return stats


def _outside_fences(name: str, stats: dict[str, Any]) -> pl.Expr:
    """The count of ``name``'s non-null, non-NaN values outside [Q1 - 1.5 IQR, Q3 + 1.5 IQR], the quartiles
    in ``stats``: a second pass with the fences as numbers (fences as expressions of the quartiles repeat
    the quartiles' selection for every comparison: three times the time). Python computes the fences with
    the same float operations Polars would; NaN is left out explicitly (Polars orders it above all)."""
    q1, q3 = stats.pop(f"{name}:quartiles")
    if q1 is None or q3 is None:  # no value to compare
        return pl.lit(0, dtype=pl.UInt32).alias(f"{name}:outliers")
    iqr = q3 - q1
    values = pl.col(name).cast(pl.Float64)
    outside = (values < q1 - IQR_MULTIPLIER * iqr) | (values > q3 + IQR_MULTIPLIER * iqr)
    return (outside & values.is_not_nan()).sum().alias(f"{name}:outliers")


def _unparseable_date_counts(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """The distinct non-null values of a date-named text column that are no date, with their counts
    (dates repeat: parsing each distinct value once is much cheaper than parsing every cell)."""
    values = pl.col(name).cast(pl.String).str.strip_chars()
    failing = pl.col(name).is_not_null() & parsed_dates(values).is_null()
    return narrow(frame, [name]).group_by(name).len().filter(failing).collect()


def _deductions(
    frame: pl.DataFrame,
    stats: dict[str, Any],
    columns: list[str],
    numeric_columns: list[str],
    date_columns: list[str],
    duplicate_rows: int,
) -> list[dict[str, Any]]:
    rows = frame.height
    deductions: list[dict[str, Any]] = []
    for name in columns:
        missing = pct(stats[f"{name}:nulls"], rows)
        if missing > 10:
            deductions.append(
                _deduction(
                    "missing_values",
                    [name],
                    min(missing / 5, 25),
                    "critical" if missing > 80 else "high" if missing > 50 else "medium" if missing > 25 else "low",
                    f"'{name}' is missing in {missing:.1f}% of rows: impute or drop (Clean My Data: null-handler)",
                    missing_percentage=missing,
                )
            )
    for name in date_columns:
        non_null = stats[f"{name}:non_null"]
        unparseable = non_null - stats[f"{name}:dates"]
        share = pct(unparseable, non_null)
        if unparseable:
            deductions.append(
                _deduction(
                    "format_inconsistency",
                    [name],
                    min(share / 10, 12),
                    "high" if share > 25 else "medium" if share > 10 else "low",
                    f"Standardise the dates of '{name}': {share:.1f}% of values are not in a recognised date format",
                    unparseable_values=unparseable,
                    unparseable_percentage=share,
                )
            )
    for name in numeric_columns:
        share = pct(stats[f"{name}:outliers"], stats[f"{name}:finite"])
        if share > 5:
            deductions.append(
                _deduction(
                    "potential_outliers",
                    [name],
                    min(share / 20, 8),
                    "medium" if share > 15 else "low",
                    f"Review the {share:.1f}% of '{name}' outside 1.5 IQR (Clean My Data: outlier-remover)",
                    outliers=int(stats[f"{name}:outliers"]),
                    outlier_percentage=share,
                )
            )
    if duplicate_rows:
        share = pct(duplicate_rows, rows)
        deductions.append(
            _deduction(
                "duplicate_rows",
                [],
                min(share / 10, 15),
                "high" if share > 10 else "medium" if share > 5 else "low",
                f"{duplicate_rows:,} rows ({share:.1f}%) repeat an earlier row: remove them "
                "(Clean My Data: duplicate-resolver)",
                duplicate_rows=duplicate_rows,
                duplicate_percentage=share,
            )
        )
    return deductions


def _deduction(
    reason: str, fields: list[str], amount: float, severity: Severity, remediation: str, **details: Any
) -> dict[str, Any]:
    return {
        "deduction_reason": reason,
        "fields_affected": fields,
        "deduction_amount": round(amount, 2),
        "severity": severity,
        "remediation": remediation,
        **details,
    }


def _parse_failure_query(lazy: pl.LazyFrame, name: str) -> pl.LazyFrame:
    return issues_where(
        lazy,
        pl.col(name).is_not_null() & _numbers(name).is_null(),
        column=name,
        issue_type="numeric_parse_failure",
        severity="warning",
        message=f"Not a number in '{name}', a column of numbers",
        value=pl.col(name),
    )


def _date_failure_query(lazy: pl.LazyFrame, name: str, failing: pl.DataFrame) -> pl.LazyFrame:
    return issues_where(
        lazy,
        pl.col(name).is_in(failing[name].implode()),
        column=name,
        issue_type="unparseable_date",
        severity="warning",
        message=f"Not a recognised date in '{name}'",
        value=pl.col(name),
    )


def _component(name: str, score: float, weights: dict[str, float], description: str) -> dict[str, Any]:
    return {
        "component": name,
        "weight": weights[name],
        "score": round(score, 2),
        "status": "excellent" if score >= 95 else "good" if score >= 80 else "fair" if score >= 60 else "poor",
        "description": description,
    }


def _assessment(score: float, status: str) -> dict[str, Any]:
    text = {
        "ready": ("Suitable for analytics and ML", "Proceed with analysis"),
        "needs_review": ("Needs review and some improvement before use", "Address the findings before production use"),
        "not_ready": ("Needs significant improvement before analysis", "Run Clean My Data on this dataset"),
    }[status]
    return {"overall_score": score, "overall_status": status, "status_description": text[0], "recommendation": text[1]}


def _findings(rating: _Rating, deductions: list[dict[str, Any]]) -> Findings:
    findings = Findings(AGENT_ID)
    _score_alerts(findings, rating.status, rating.overall, rating.completeness)
    _schema_findings(findings, rating.schema_health.all_null, rating.schema_health.unnamed)
    _type_findings(findings, rating.consistency)
    _deduction_findings(findings, deductions)
    return findings


def _score_alerts(findings: Findings, status: str, score: float, completeness: float) -> None:
    if status != "ready":
        findings.alert(
            "readiness",
            "critical" if status == "not_ready" else "high",
            f"Readiness {score:.1f}/100: {status.replace('_', ' ')}",
            "Run Clean My Data, then rate readiness again",
            affected=0,
            recommend=True,
        )
    if completeness < 80:
        findings.alert(
            "completeness",
            "critical" if completeness < 60 else "high",
            f"Only {completeness:.1f}% of cells hold a value",
            "Impute or drop missing values (Clean My Data: null-handler)",
            affected=0,
            recommend=False,
        )


def _schema_findings(findings: Findings, all_null: list[str], unnamed: list[str]) -> None:
    """Columns empty in every row, and columns without a proper name."""
    for name in all_null:
        findings.alert(
            "all_null_column",
            "high",
            f"'{name}' is empty in every row",
            f"Drop '{name}'",
            field_name=name,
            recommend=True,
        )
        findings.issue("all_null_column", "high", f"'{name}' is empty in every row", field_name=name)
    for name in unnamed:
        findings.alert(
            "unnamed_column",
            "medium",
            f"Column {name!r} has a blank, generated or repeated header",
            "Give every column a unique, meaningful name",
            field_name=name,
            recommend=True,
        )
        findings.issue("unnamed_column", "medium", f"Column {name!r} has no proper name", field_name=name)


def _type_findings(findings: Findings, consistency: _Consistency) -> None:
    """Text columns that mix numbers and text, and text columns of numbers with values that do not parse."""
    parse = consistency.parse
    for name in consistency.mixed:
        share = parse[name]["numeric_share"]
        findings.alert(
            "mixed_types",
            "medium",
            f"'{name}' mixes numbers ({share:.0%}) and text",
            f"Split or standardise '{name}' so that it holds one kind of value",
            field_name=name,
            recommend=True,
        )
        findings.issue(
            "mixed_types",
            "medium",
            f"'{name}' mixes numbers and text",
            field_name=name,
            details={"numeric_share": share},
        )
    for name in consistency.numeric_text:
        failures = parse[name]["parse_failures"]
        findings.alert(
            "numeric_parse_failures",
            "medium",
            f"'{name}' holds numbers as text, {failures:,} value(s) of which do not parse",
            f"Fix the non-numeric values of '{name}' and convert it (Clean My Data: type-fixer)",
            field_name=name,
            recommend=True,
        )
        findings.issue(
            "numeric_parse_failures", "medium", f"{failures:,} values of '{name}' are not numbers", field_name=name
        )


def _deduction_findings(findings: Findings, deductions: list[dict[str, Any]]) -> None:
    for deduction in deductions:
        field_name = deduction["fields_affected"][0] if deduction["fields_affected"] else None
        findings.alert(
            deduction["deduction_reason"],
            deduction["severity"],
            deduction["remediation"],
            deduction["remediation"],
            field_name=field_name,
            recommend=True,
        )
        findings.issue(
            deduction["deduction_reason"],
            deduction["severity"],
            deduction["remediation"],
            field_name=field_name,
            details={"deduction_amount": deduction["deduction_amount"]},
        )


def _cards(
    score: float, status: str, completeness: float, consistency: float, schema: float, deductions: int
) -> list[SummaryCard]:
    return [
        SummaryCard(
            "readiness",
            "Readiness",
            f"{score:.1f} ({status.upper().replace('_', ' ')})",
            "excellent"
            if status == "ready" and score >= 90
            else "good"
            if status == "ready"
            else score_status(min(score, 74)),
            "Weighted completeness, consistency and schema health",
        ),
        SummaryCard(
            "completeness", "Completeness", f"{completeness:.1f}%", score_status(completeness), "Non-null cells"
        ),
        SummaryCard(
            "consistency",
            "Consistency",
            f"{consistency:.1f}",
            score_status(consistency),
            "Numbers stored as text that parse",
        ),
        SummaryCard(
            "schema-health", "Schema health", f"{schema:.1f}", score_status(schema), "Empty, unnamed and mixed columns"
        ),
        SummaryCard(
            "deductions",
            "Deductions",
            str(deductions),
            "good" if deductions == 0 else "warning",
            "Findings with Agensium's impact points",
        ),
    ]
