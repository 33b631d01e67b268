"""The ``drift-detector`` agent: distribution drift of every common column and schema drift of the primary
input (the *current* data) against the baseline.

Per common column (reference/agents.md §1.4, §3):

- the column's type: ``numeric`` (integers, floats, decimals, durations in seconds), ``datetime`` (dates,
  datetimes and times, compared as epoch seconds / seconds since midnight with the numeric tests),
  ``boolean``, ``categorical`` (strings whose distinct values, both files together, number at most
  max(20, 5 % of the non-null values of both files) — any string column when ``statistical_test`` is
  ``chi2`` or ``jensen_shannon``) or ``text`` (the other strings: listed in ``fields`` with summary deltas
  and new/missing value counts, ``test`` null and ``drift_detected`` false, never in the drift share); a text
  column of numbers written with a decimal comma in both files (``1.234,56``) is ``numeric``, read as the profile
  reads it, its field saying ``read_from_text`` (``_parse_decimal_comma_text``);
- the test that decides ``drift_detected`` (``statistical_test``; ``auto`` picks per column as Evidently
  does, and numeric-only tests fall back to chi-square / Jensen–Shannon for categorical columns, saying so
  in ``test_reason``); p-value tests drift when p < ``significance_level``, distance tests when the
  distance >= ``method_threshold``;
- always PSI and Jensen–Shannon (baseline-quantile bins or categories) and, for numeric and datetime
  columns, the normed Wasserstein distance, whatever the test (p-values alone over-flag at our sizes);
- severity grades a *detected* drift by PSI: ``high`` PSI > 0.25, ``medium`` PSI > 0.1, else ``low``; a
  column without drift is ``none``.

Agensium's default ``statistical_test`` (``kolmogorov_smirnov``) stays the default so its users' files keep
their meaning, although a p-value test flags trivial shifts on large files (reference/agents.md §3); the
effect sizes reported beside it, and ``auto``, are the answer to that. ``psi`` is an extra test name beyond
the shared contract's list (``statistical_test = "psi"``).

Columns with fewer than ``min_sample_size`` non-null values on either side, of a type we cannot compare
(lists, structs, binary) or whose type family changed (e.g. numbers became text) go to ``skipped_fields``.
The dataset drifts when drifted / tested columns >= ``drift_share``. Row-level issues: current values of a
drifted numeric column with |z| > ``zscore_threshold`` against the baseline mean and std (ddof=1), and
current values of a categorical or boolean column that the baseline never had (at most
``max_new_category_issues`` per column); ``row_index`` is the 1-based data row of the current file.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from agents.columns import narrow
from agents.decimal_comma import DECIMAL_COMMA_NUMBER_PATTERN, DECIMAL_COMMA_PATTERN, parse_decimal_comma
from agents.drift import stats
from agents.envelope import (
    AgentInputs,
    AgentResult,
    Envelope,
    Progress,
    Severity,
    SummaryCard,
    build_issue_summary,
    data_columns,
    empty_row_level_issues,
    format_text,
    inline_row_level_issues,
    row_numbers,
)
from agents.findings import Findings
from agents.params.common import parameter_objects
from agents.params.drift_detector import AGENT_ID, AGENT_NAME, DriftDetectorParams

ColumnType = Literal["numeric", "categorical", "boolean", "datetime", "text"]
DriftSeverity = Literal["high", "medium", "low", "none"]

PSI_HIGH = 0.25
PSI_MEDIUM = 0.1
CATEGORICAL_MIN_DISTINCT = 20
CATEGORICAL_SHARE = 0.05
AUTO_FEW_VALUES = 5  # Evidently: numeric columns with at most 5 distinct values are tested as categories
AUTO_BINARY = 2
MEAN_SHIFT_ISSUE = 0.1
P_VALUE_TESTS = {"ks", "chi2", "z"}
TEST_NAMES = {
    "ks": "Kolmogorov-Smirnov",
    "chi2": "chi-square",
    "z": "z-test for proportions",
    "wasserstein": "normed Wasserstein distance",
    "jensen_shannon": "Jensen-Shannon distance",
    "psi": "PSI",
}
REQUESTED_TESTS = {
    "kolmogorov_smirnov": "ks",
    "chi2": "chi2",
    "wasserstein": "wasserstein",
    "psi": "psi",
    "jensen_shannon": "jensen_shannon",
}
ROW_KEY = "__drift_row_index__"
# Column types whose numeric view NumPy computes from the column's memory (``_plain_values``).
PLAIN_NUMBERS = frozenset(
    {pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64, pl.Float32, pl.Float64}
)
VIEWS_AT_ONCE_CELLS = 2_000_000  # numeric views of a file this small (rows x numeric columns) come in one query
ALERT_LEVELS: dict[str, Severity] = {"high": "high", "medium": "medium", "low": "low"}
COLUMN_TYPES: dict[str, ColumnType] = {
    "numeric": "numeric",
    "duration": "numeric",
    "datetime": "datetime",
    "time": "datetime",
    "boolean": "boolean",
    "string": "categorical",  # until its cardinality says text
}

CONVENTIONS = {
    "change_in_*": "current minus baseline (signed); change_in_variance compares variances (ddof=1)",
    "null_percentage": "of all rows, 0..100; non-finite numbers (NaN, inf) count as missing",
    "null_percentage_change": "current minus baseline, in percentage points",
    "std": "ddof=1 in the statistics; the Wasserstein norm uses the baseline std with ddof=0 (Evidently)",
    "datetime": "compared as epoch seconds (dates, datetimes; UTC) or seconds since midnight (times)",
    "numeric_bins": "inner edges at the baseline's i/psi_bins quantiles (numpy linear), duplicates merged, "
    "outer bins open-ended, each bin [a, b); at most psi_bins distinct values (both files): one bin per value",
    "psi": "sum((q - p) * ln(q / p)) over bin/category shares, each share floored at psi_floor",
    "js_divergence": "Jensen-Shannon divergence in bits (0..1); js_distance is its square root",
    "chi2": "scipy.stats.chi2_contingency on the 2 x k table of counts (Yates' correction when k = 2)",
    "z": "two-proportion z-test of the first (sorted) category's share, pooled, two-sided",
    "drift_decision": "p-value tests: p < significance_level; distance tests: statistic >= method_threshold",
    "severity": "for a detected drift: high PSI > 0.25, medium PSI > 0.1, else low; no drift: none",
    "drift_share": "drifted / tested columns (text and skipped columns are not tested)",
    "overall_drift_score": "drifted / common columns (Agensium's definition)",
    "dataset_stability": "drifted when dataset_drift; warning when a column drifted or columns were added, removed "
    "or retyped; else stable",
    "reference_size": "a column's non-null baseline values, compared with reference_size_threshold",
    "row_level_issues": "distribution_shift: current values of a drifted numeric column with |z| > zscore_threshold "
    "(baseline mean and std), severity warning beyond twice the threshold, else info; new_category: values of a "
    "categorical or boolean column absent from the baseline, the first max_new_category_issues rows per column",
}


@dataclass
class ColumnPlan:
    """How one common column is compared: its family decides the views both files are read through."""

    name: str
    family: str  # numeric, duration, datetime, time, boolean, string
    column_type: ColumnType
    baseline_dtype: pl.DataType
    current_dtype: pl.DataType
    value_unit: str | None = None

    @property
    def is_numeric(self) -> bool:
        return self.family in {"numeric", "duration", "datetime", "time"}

    def numeric_view(self) -> pl.Expr | None:
        column = pl.col(self.name)
        if self.family == "numeric":
            number = column.cast(pl.Float64)
            return pl.when(number.is_finite()).then(number)
        if self.family == "datetime":
            return column.dt.epoch("us").cast(pl.Float64) / 1e6
        if self.family == "time":
            return column.to_physical().cast(pl.Float64) / 1e9
        if self.family == "duration":
            return column.dt.total_microseconds().cast(pl.Float64) / 1e6
        if self.family == "boolean":
            return column.cast(pl.Float64)
        return None

    def category_view(self) -> pl.Expr:
        return pl.col(self.name).cast(pl.String)


@dataclass
class SideStats:
    count: int
    null_count: int
    null_percentage: float
    distinct: int
    mean: float | None = None
    median: float | None = None
    std: float | None = None
    variance: float | None = None
    min: float | None = None
    max: float | None = None
    population_std: float | None = None  # ddof=0, the Wasserstein norm's (not published)

    def public(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "null_count": self.null_count,
            "null_percentage": self.null_percentage,
            "distinct": self.distinct,
            "mean": self.mean,
            "median": self.median,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }


@dataclass
class Distribution:
    """The counts a column's tests run on: bins (numeric) or categories, aligned across the two files."""

    baseline: np.ndarray
    current: np.ndarray
    edges: list[float]  # numeric bins at baseline quantiles; empty when one bin per value or category
    per_value: bool
    union_distinct: int | None  # None: more than the low-cardinality limit (numeric only)


@dataclass
class ColumnResult:
    plan: ColumnPlan
    baseline: SideStats
    current: SideStats
    analysis: dict[str, Any]
    interpretation: str
    baseline_values: pl.Series | None = None  # categorical: the baseline's categories, for row issues

    @property
    def drifted(self) -> bool:
        return bool(self.analysis["drift_detected"])

    @property
    def tested(self) -> bool:
        return self.analysis["test"] is not None


class DriftFindings(Findings):
    """The drift detector's findings (``agents.findings`` ids): every alert carries its recommendation."""

    def add(
        self, category: str, level: Severity, name: str | None, message: str, advice: str, affected: int = 1
    ) -> None:
        """An alert and, with the same advice, a recommendation."""
        self.alert(category, level, message, advice, field_name=name, affected=affected, recommend=True)

    def column_issue(self, name: str | None, issue_type: str, level: Severity, message: str, **details: Any) -> None:
        self.issue(issue_type, level, message, field_name=name, details=details)


def run(inputs: AgentInputs, params: DriftDetectorParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    if inputs.baseline is None:
        progress(1.0, "No baseline: drift detection skipped")
        return _skipped_result(params, started, "No baseline file was provided; upload baseline.* to detect drift")
    baseline, current = _parse_temporal_text(inputs.baseline, inputs.primary)
    baseline, current, comma_numbers = _parse_decimal_comma_text(baseline, current)
    progress(0.0, f"Comparing {current.width} columns against the baseline")
    schema = _schema_drift(baseline, current)
    in_baseline = set(data_columns(baseline))
    common = [name for name in data_columns(current) if name in in_baseline]
    plans: list[ColumnPlan] = []
    skipped: list[dict[str, Any]] = []
    baseline_schema, current_schema = baseline.schema, current.schema  # each .schema builds a new mapping
    for name in common:
        plan = _plan(name, baseline_schema[name], current_schema[name])
        if isinstance(plan, str):
            skipped.append({"field_name": name, "reason": plan})
        else:
            plans.append(plan)

    progress(0.1, "Counting and sorting the values of each column")
    compared = _compare_columns(baseline, current, plans, params, progress)
    results = [outcome for outcome in compared if isinstance(outcome, ColumnResult)]
    skipped += [outcome for outcome in compared if not isinstance(outcome, ColumnResult)]
    progress(0.8, "Collecting row-level issues")
    row_issues, row_issue_totals = _row_level_issues(current, results, params)
    position = {name: index for index, name in enumerate(common)}
    skipped.sort(key=lambda item: position[item["field_name"]])

    fields = [_field_output(result, comma_numbers) for result in results]
    summary = _drift_summary(results, len(common), schema, params)
    summary_metrics = {
        "fields_analyzed": summary["fields_analyzed"],
        "drift_detected_count": summary["drifted_fields"],
        "drift_severity_high": sum(r.analysis["severity"] == "high" for r in results),
        "drift_severity_medium": sum(r.analysis["severity"] == "medium" for r in results),
        "drift_severity_low": sum(r.analysis["severity"] == "low" for r in results),
        "average_psi_score": summary["average_psi_score"],
        "dataset_drift": summary["dataset_drift"],
        "drift_share": summary["drift_share"],
        "fields_skipped": len(skipped),
        "schema_changes": _schema_change_count(schema),
        "row_level_issues_total": sum(row_issue_totals.values()),
    }
    findings = _findings(results, schema, summary)
    data = {
        "skipped": False,
        "skip_reason": None,
        "baseline_rows": baseline.height,
        "current_rows": current.height,
        "fields": fields,
        "skipped_fields": skipped,
        "schema_drift": schema,
        "drift_summary": summary,
        "row_index_base": 1,
        "row_index_meaning": "1-based data row of the current (primary) file",
        "row_level_issues_total": sum(row_issue_totals.values()),
        "row_level_issues_by_type": {key: value for key, value in row_issue_totals.items() if value},
        "row_level_issues_stored": row_issues.height,
        "conventions": CONVENTIONS,
        **parameter_objects(params),
    }
    envelope = Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        summary_metrics=summary_metrics,
        data=data,
        alerts=findings.alerts,
        issues=findings.issues,
        row_level_issues=inline_row_level_issues(row_issues),
        issue_summary=build_issue_summary(findings.issues, row_issues),
        recommendations=findings.recommendations,
        executive_summary=_summary_cards(summary, schema),
    )
    envelope.issue_summary["total_issues"] = len(findings.issues) + sum(row_issue_totals.values())
    envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, "Drift detection complete")
    return AgentResult(envelope=envelope, row_level_issues=row_issues)


# --- plans and schema -------------------------------------------------------------------------------------


TEMPORAL_TEXT_SHARE = 0.95  # share of values that must parse for a text column to be compared as dates
TEMPORAL_SAMPLE = 10_000
# Fixed-width ISO 8601 shapes (whitespace around them is stripped before parsing): a column whose every value
# has one parses with that format exactly as with Polars' format inference, which tries a family of formats
# on each value and is about 7x slower.
ISO_TEXT_FORMATS = (
    (r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$", "%Y-%m-%d"),
    (r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\s*$", "%Y-%m-%dT%H:%M:%S"),
    (r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\s*$", "%Y-%m-%d %H:%M:%S"),
)


def _parse_temporal_text(baseline: pl.DataFrame, current: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Text columns holding ISO 8601 dates or timestamps in both files (CSV has no date type) are compared
    as datetimes, by value, not as thousands of categories: a category test on distinct days flags noise.
    A column qualifies when at least 95 % of the non-null values among its first 10,000 parse in each file;
    each file's column is then parsed once, in full, both files in one parallel Polars pass."""
    baseline_schema = baseline.schema
    names = [
        name
        for name, dtype in current.schema.items()
        if dtype == pl.String
        and baseline_schema.get(name) == pl.String
        and all(_mostly_temporal(frame.get_column(name).head(TEMPORAL_SAMPLE)) for frame in (baseline, current))
    ]
    if not names:
        return baseline, current
    frames = (baseline, current)
    formats = [{name: _iso_format(frame.get_column(name).head(TEMPORAL_SAMPLE)) for name in names} for frame in frames]
    queries: list[pl.LazyFrame] = []
    for frame, chosen in zip(frames, formats, strict=True):
        queries.append(
            frame.lazy().with_columns(
                _explicit_datetime(name, iso[1]) if (iso := chosen[name]) else _inferred_datetime(name)
                for name in names
            )
        )
        shape_checks = [
            (pl.col(name).is_null() | pl.col(name).str.contains(iso[0])).all().alias(name)
            for name, iso in chosen.items()
            if iso
        ]
        queries.append(frame.lazy().select(pl.lit(True).alias("__all__"), *shape_checks))
    results = pl.collect_all(queries)
    parsed: list[pl.DataFrame] = []
    for index, (frame, chosen) in enumerate(zip(frames, formats, strict=True)):
        converted, shapes = results[2 * index], results[2 * index + 1].row(0, named=True)
        misfits = [name for name, iso in chosen.items() if iso and not shapes[name]]
        if misfits:  # some value is not of the sample's shape: parse the column as inference does
            converted = converted.with_columns(frame.select(_inferred_datetime(name) for name in misfits))
        parsed.append(converted)
    return parsed[0], parsed[1]


DECIMAL_COMMA_READING = {"decimal_mark": ",", "thousands_separator": "."}


def _parse_decimal_comma_text(
    baseline: pl.DataFrame, current: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, frozenset[str]]:
    """Text columns holding numbers written with a decimal comma in both files (``1.234,56``, ``99,90``, with ``7``
    or ``1.500`` among them: agents.decimal_comma) are compared as numbers, read as the profile and the type-fixer
    read them (``1.234,56`` is 1234.56), not as categories. A column qualifies when at least 95 % of the non-blank
    values of each file (and of their first 10,000) are such numbers and a value among the first 10,000 of either file
    has a comma that can only be a decimal mark (``12,99``; ``1,500`` alone reads both ways); the values that are
    not become missing. Returns both files with
    those columns as Float64, and their names (the fields say ``read_from_text``)."""
    baseline_schema = baseline.schema
    names = [
        name for name, dtype in current.schema.items() if dtype == pl.String and baseline_schema.get(name) == pl.String
    ]
    if not names:
        return baseline, current, frozenset()

    def qualified(names: list[str], rows: int | None) -> list[str]:
        """The columns of ``names`` that qualify over the first ``rows`` rows (None: all) of both files."""
        found: list[dict[str, Any]] = []
        for frame in (baseline, current):
            checks: list[pl.Expr] = []
            for index, name in enumerate(names):
                text = pl.col(name).str.strip_chars()
                present = text.is_not_null() & (text != "")
                checks += [
                    (text.str.contains(DECIMAL_COMMA_NUMBER_PATTERN).sum() / present.sum()).alias(f"share_{index}"),
                    text.str.contains(DECIMAL_COMMA_PATTERN).any().alias(f"decimal_{index}"),
                ]
            lazy = narrow(frame, names)
            found.append((lazy if rows is None else lazy.head(rows)).select(checks).collect().row(0, named=True))
        return [
            name
            for index, name in enumerate(names)
            if all((row[f"share_{index}"] or 0.0) >= TEMPORAL_TEXT_SHARE for row in found)
            and any(row[f"decimal_{index}"] for row in found)
        ]

    sampled = qualified(names, TEMPORAL_SAMPLE)  # a cheap look first: most text columns hold no numbers
    chosen = qualified(sampled, None) if sampled else []
    if not chosen:
        return baseline, current, frozenset()
    read = [parse_decimal_comma(pl.col(name)).alias(name) for name in chosen]
    return baseline.with_columns(read), current.with_columns(read), frozenset(chosen)


def _inferred_datetime(name: str) -> pl.Expr:
    return pl.col(name).str.strip_chars().str.to_datetime(strict=False, time_unit="us")


def _explicit_datetime(name: str, fmt: str) -> pl.Expr:
    return pl.col(name).str.strip_chars().str.to_datetime(fmt, strict=False, time_unit="us")


def _mostly_temporal(sample: pl.Series) -> bool:
    frame = sample.to_frame()
    name = sample.name
    present = pl.col(name).is_not_null().sum()
    # Every format Polars infers starts with a digit: a sample where too few values do cannot qualify, and
    # inferring a format for names or e-mails is slow.
    digits = frame.select(pl.col(name).str.strip_chars().str.contains(r"^\d").sum() / present).item()
    if digits is None or not digits >= TEMPORAL_TEXT_SHARE:
        return False
    try:
        share = frame.select(_inferred_datetime(name).is_not_null().sum() / present).item()
    except pl.exceptions.ComputeError:  # no date format fits the first value
        return False
    return share is not None and share >= TEMPORAL_TEXT_SHARE


def _iso_format(sample: pl.Series) -> tuple[str, str] | None:
    """The ISO shape and format that parse the sample exactly as inference does, if one does."""
    frame = sample.to_frame()
    inferred = frame.select(_inferred_datetime(sample.name)).to_series()
    for pattern, fmt in ISO_TEXT_FORMATS:
        explicit = frame.select(_explicit_datetime(sample.name, fmt)).to_series()
        if explicit.equals(inferred, check_dtypes=True, check_names=True, null_equal=True):
            return pattern, fmt
    return None


def _family(dtype: pl.DataType) -> str | None:
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.Date, pl.Datetime):
        return "datetime"
    if dtype == pl.Time:
        return "time"
    if dtype == pl.Duration:
        return "duration"
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return "string"
    return None


def _plan(name: str, baseline_dtype: pl.DataType, current_dtype: pl.DataType) -> ColumnPlan | str:
    """The column's comparison plan, or the reason it cannot be compared."""
    family, other = _family(baseline_dtype), _family(current_dtype)
    if family is None or other is None:
        unsupported = baseline_dtype if family is None else current_dtype
        return f"type {unsupported} is not supported for drift detection"
    if family != other:
        return f"type changed from {baseline_dtype} to {current_dtype}; values are not comparable"
    unit = {"datetime": "epoch_seconds", "time": "seconds_since_midnight", "duration": "seconds"}.get(family)
    return ColumnPlan(name, family, COLUMN_TYPES[family], baseline_dtype, current_dtype, unit)


def _schema_drift(baseline: pl.DataFrame, current: pl.DataFrame) -> dict[str, Any]:
    baseline_columns, current_columns = data_columns(baseline), data_columns(current)
    in_baseline, in_current = set(baseline_columns), set(current_columns)
    common_in_baseline = [name for name in baseline_columns if name in in_current]
    common_in_current = [name for name in current_columns if name in in_baseline]
    baseline_schema, current_schema = baseline.schema, current.schema
    retyped = [
        {
            "field_name": name,
            "baseline_type": str(baseline_schema[name]),
            "current_type": str(current_schema[name]),
        }
        for name in common_in_current
        if baseline_schema[name] != current_schema[name]
    ]
    return {
        "added_columns": [name for name in current_columns if name not in in_baseline],
        "removed_columns": [name for name in baseline_columns if name not in in_current],
        "retyped_columns": retyped,
        "order_changed": common_in_baseline != common_in_current,
    }


def _schema_change_count(schema: dict[str, Any]) -> int:
    changes = len(schema["added_columns"]) + len(schema["removed_columns"]) + len(schema["retyped_columns"])
    return changes + int(schema["order_changed"])


# --- statistics -------------------------------------------------------------------------------------------


def _compare_columns(
    baseline: pl.DataFrame,
    current: pl.DataFrame,
    plans: list[ColumnPlan],
    params: DriftDetectorParams,
    progress: Progress,
) -> list[ColumnResult | dict[str, Any]]:
    """Each column's result, or its ``skipped_fields`` entry when a side has fewer than ``min_sample_size``
    values, one column at a time per worker: string and boolean columns are counted by value in both files
    (one Polars query; a boolean's statistics read its counts, see ``_boolean_values``); numeric and temporal
    columns are sorted once per file and everything about them is read off the two sorted arrays, which are
    released when the column is done. On short files every column's numeric view is computed first, in one
    query per file (see ``_numeric_views``)."""
    b_views, c_views = _numeric_views(baseline, plans), _numeric_views(current, plans)

    def compare(plan: ColumnPlan) -> ColumnResult | dict[str, Any]:
        b_values = c_values = table = None
        if plan.family in {"string", "boolean"}:
            table = _category_table(baseline, current, plan)
        if table is not None and plan.family == "boolean":
            b_values, c_values = _boolean_values(table, "baseline"), _boolean_values(table, "current")
        elif plan.is_numeric:
            b_values, c_values = _sorted_values(baseline, plan, b_views), _sorted_values(current, plan, c_views)
        if b_values is not None and c_values is not None:
            b_stats, c_stats = _values_stats(b_values, baseline.height), _values_stats(c_values, current.height)
        else:
            assert table is not None
            b_stats = _counts_stats(table["baseline"], baseline.height)
            c_stats = _counts_stats(table["current"], current.height)
        if min(b_stats.count, c_stats.count) < params.min_sample_size:
            reason = f"fewer than min_sample_size ({params.min_sample_size}) non-null finite values "
            return {
                "field_name": plan.name,
                "reason": reason + f"(baseline {b_stats.count:,}, current {c_stats.count:,})",
            }
        if b_values is not None and c_values is not None and plan.is_numeric:
            return _numeric_result(plan, b_stats, c_stats, b_values, c_values, params)
        assert table is not None
        return _categorical_result(plan, b_stats, c_stats, table, params)

    # NumPy's sorts and merges, and Polars, release the GIL: two columns at a time use both cores, and only
    # the columns in progress hold their sorted copies or value counts. String columns go first: a free-text
    # column's counts are the largest single job.
    outcomes: dict[str, ColumnResult | dict[str, Any]] = {}
    order = sorted(plans, key=lambda plan: plan.family != "string")
    with ThreadPoolExecutor(max_workers=max(1, min(len(plans), os.cpu_count() or 1))) as pool:
        futures = {pool.submit(compare, plan): plan.name for plan in order}
        for done, future in enumerate(as_completed(futures), start=1):
            outcomes[futures[future]] = future.result()
            progress(0.1 + 0.7 * done / len(plans), f"Compared '{futures[future]}'")
    return [outcomes[plan.name] for plan in plans]


def _category_table(baseline: pl.DataFrame, current: pl.DataFrame, plan: ColumnPlan) -> pl.DataFrame:
    """``stats.category_counts`` of a string or boolean column. A boolean column's table is built from each
    file's number of trues and of non-null values, its values written as casting them to text writes them
    (``false``, ``true``), without grouping a million values."""
    if plan.family == "boolean":
        sides = [frame.get_column(plan.name) for frame in (baseline, current)]
        trues = [int(column.sum()) for column in sides]
        falses = [column.len() - column.null_count() - true for column, true in zip(sides, trues, strict=True)]
        rows = [("false", *falses), ("true", *trues)]
        schema = {"value": pl.String, "baseline": pl.Int64, "current": pl.Int64}
        return pl.DataFrame([row for row in rows if row[1] or row[2]], schema=schema, orient="row")
    counts = stats.category_counts(narrow(baseline, [plan.name]), narrow(current, [plan.name]), plan.category_view())
    return counts.collect(engine="streaming")  # half the time and memory of in-memory on free text


def _boolean_values(table: pl.DataFrame, side: str) -> np.ndarray:
    """A boolean column's sorted numeric view (false 0, true 1, nulls dropped) rebuilt from its counts: the
    zeros, then the ones."""
    counts = dict(zip(table["value"].to_list(), table[side].to_list(), strict=True))
    false, true = counts.get("false", 0), counts.get("true", 0)
    values = np.zeros(false + true)
    values[false:] = 1.0
    return values


def _numeric_views(frame: pl.DataFrame, plans: list[ColumnPlan]) -> pl.DataFrame | None:
    """Every plan's numeric view in one query, when the frame is short enough for all of them to be held at
    once (``VIEWS_AT_ONCE_CELLS``): a query per column costs ~0.4 ms, seconds for 10,000 columns. None for
    a taller frame, whose columns are converted one at a time (bounded memory). Plain integer and float
    columns count towards the cells but need no query (``_plain_values``); booleans neither
    (``_boolean_values``)."""
    numeric = [plan for plan in plans if plan.is_numeric]
    if not numeric or frame.height * len(numeric) > VIEWS_AT_ONCE_CELLS:
        return None
    schema = frame.schema
    viewed = [plan for plan in numeric if schema[plan.name] not in PLAIN_NUMBERS]
    return frame.select(_numbers(plan).alias(plan.name) for plan in viewed) if viewed else None


def _sorted_values(frame: pl.DataFrame, plan: ColumnPlan, views: pl.DataFrame | None = None) -> np.ndarray:
    """The view's non-null values, sorted: the moments, median, distinct count, bins and both tests come
    from it. ``views``: the frame's views computed together (``_numeric_views``), if they were."""
    column = frame.get_column(plan.name)
    if column.dtype in PLAIN_NUMBERS:
        return _plain_values(column)
    if views is not None:
        view = views.get_column(plan.name).drop_nulls()
    else:
        view = column.to_frame().select(_numbers(plan).alias(plan.name)).to_series().drop_nulls()
    return np.sort(view.to_numpy())


def _plain_values(column: pl.Series) -> np.ndarray:
    """An integer or float column's numeric view, sorted, in NumPy: its non-null values, the non-finite
    dropped, as float64 (the same conversion as Polars' cast), from the column's own memory where it has no
    nulls, with one copy, the one the sort works in (Polars' view would make two more)."""
    values = column.drop_nulls().to_numpy()
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            values = values[finite]  # a copy, sorted in place below
        elif values.dtype == np.float64:
            return np.sort(values)
        del finite
    values = values.astype(np.float64, copy=False)  # a copy but for the float64 one made above
    values.sort()
    return values


def _values_stats(values: np.ndarray, rows: int) -> SideStats:
    count = int(values.size)
    distinct = int(np.count_nonzero(values[1:] != values[:-1])) + 1 if count else 0
    result = SideStats(count, rows - count, _pct(rows - count, rows), distinct)
    if count == 0:
        return result
    moments = stats.moments(values)
    result.mean = _finite(moments.mean)
    result.median = _finite((values[(count - 1) // 2] + values[count // 2]) / 2)
    result.min, result.max = _finite(values[0]), _finite(values[-1])
    result.population_std = moments.population_std
    if moments.variance is not None:
        result.variance = _finite(moments.variance)
        result.std = _finite(math.sqrt(moments.variance))  # what np.std computes: the root of np.var
    return result


def _counts_stats(counts: pl.Series, rows: int) -> SideStats:
    count = int(counts.sum())
    return SideStats(count, rows - count, _pct(rows - count, rows), int((counts > 0).sum()))


def _numeric_distribution(
    b_stats: SideStats, c_stats: SideStats, b_values: np.ndarray, c_values: np.ndarray, params: DriftDetectorParams
) -> Distribution:
    """Few distinct values: one bin per value (their counts), else bins at the baseline's quantiles. Counting
    up to 5 values also tells auto's table (3-5 distinct: chi-square) the exact number when psi_bins < 5;
    the union of the values may still exceed psi_bins when each file has few."""
    table = None
    if max(b_stats.distinct, c_stats.distinct) <= max(params.psi_bins, AUTO_FEW_VALUES):
        table = stats.value_counts(b_values, c_values)
        if table.height <= params.psi_bins:
            return Distribution(table["baseline"].to_numpy(), table["current"].to_numpy(), [], True, table.height)
    edges = stats.quantile_edges(b_values, params.psi_bins)
    return Distribution(
        stats.bin_counts(stats.below_edge_counts(b_values, edges), b_stats.count),
        stats.bin_counts(stats.below_edge_counts(c_values, edges), c_stats.count),
        [float(edge) for edge in edges],
        per_value=False,
        union_distinct=table.height if table is not None else None,
    )


def _numbers(plan: ColumnPlan) -> pl.Expr:
    view = plan.numeric_view()
    if view is None:
        raise TypeError(f"column {plan.name!r} has no numeric view")
    return view


def choose_test(
    requested: str, column_type: ColumnType, baseline_count: int, union_distinct: int | None, threshold: int
) -> tuple[str, str]:
    """The test for one column and why (Evidently's table for ``auto``; reference/agents.md §3)."""
    numeric = column_type in {"numeric", "datetime"}
    small = baseline_count <= threshold
    size = f"the baseline has {baseline_count:,} values ({'<=' if small else '>'} {threshold:,})"
    distinct = (
        "more than 5 distinct values" if union_distinct is None else f"{union_distinct} distinct values in both files"
    )
    many = union_distinct is None or union_distinct > AUTO_FEW_VALUES
    binary = union_distinct is not None and union_distinct <= AUTO_BINARY
    if requested == "auto":
        if numeric and small:
            test = "ks" if many else "z" if binary else "chi2"
        elif numeric:
            test = "wasserstein" if many else "jensen_shannon"
        elif small:
            test = "z" if binary else "chi2"
        else:
            test = "jensen_shannon"
        return test, f"auto (Evidently): {column_type} column, {size}, {distinct}: {TEST_NAMES[test]}"
    if requested in {"kolmogorov_smirnov", "wasserstein"} and not numeric:
        test = "chi2" if small else "jensen_shannon"
        return test, f"{requested} applies to numeric columns only; {column_type} column and {size}: {TEST_NAMES[test]}"
    test = REQUESTED_TESTS[requested]
    return test, f"statistical_test = {requested}: {TEST_NAMES[test]}"


def _numeric_result(
    plan: ColumnPlan,
    b_stats: SideStats,
    c_stats: SideStats,
    baseline_values: np.ndarray,
    current_values: np.ndarray,
    params: DriftDetectorParams,
) -> ColumnResult:
    distribution = _numeric_distribution(b_stats, c_stats, baseline_values, current_values, params)
    test, reason = choose_test(
        params.statistical_test,
        plan.column_type,
        b_stats.count,
        distribution.union_distinct,
        params.reference_size_threshold,
    )
    psi = stats.psi(distribution.baseline, distribution.current, params.psi_floor)
    js_divergence, js_distance = stats.jensen_shannon(distribution.baseline, distribution.current)
    ks, distance = stats.compare_samples(
        baseline_values, current_values, ks=test == "ks", distinct=b_stats.distinct + c_stats.distinct
    )
    assert b_stats.population_std is not None  # a compared column has values
    normed = stats.wasserstein_normed(distance, b_stats.population_std)
    if ks is not None:
        outcome = ks
    elif test == "wasserstein":
        outcome = stats.TestResult(normed, None)
    else:
        outcome = _count_test(test, distribution, psi, js_distance)
    analysis = _analysis(test, reason, outcome, psi, params)
    analysis.update(
        psi_bins=len(distribution.baseline),
        bins_per_value=distribution.per_value,
        bin_edges=None if distribution.per_value else distribution.edges,
        js_divergence=js_divergence,
        js_distance=js_distance,
        wasserstein_distance=distance,
        wasserstein_normed=normed,
        **_deltas(b_stats, c_stats),
        new_categories=[],
        missing_categories=[],
        new_category_count=0,
        missing_category_count=0,
        new_category_rows=0,
    )
    return ColumnResult(plan, b_stats, c_stats, analysis, _interpretation(plan, analysis, b_stats, c_stats))


def _categorical_result(
    plan: ColumnPlan, b_stats: SideStats, c_stats: SideStats, table: pl.DataFrame, params: DriftDetectorParams
) -> ColumnResult:
    union = table.height
    limit = max(CATEGORICAL_MIN_DISTINCT, CATEGORICAL_SHARE * (b_stats.count + c_stats.count))
    is_text = plan.family == "string" and union > limit and params.statistical_test not in {"chi2", "jensen_shannon"}
    if is_text:
        plan.column_type = "text"
    else:
        table = table.sort("value")  # a handful of categories; the z-test reads the first
    cap = params.max_new_category_issues
    new = table.filter(pl.col("baseline") == 0)
    missing = table.filter(pl.col("current") == 0)
    categories = {
        "new_categories": _most_frequent(new, "current", cap),
        "missing_categories": _most_frequent(missing, "baseline", cap),
        "new_category_count": new.height,
        "missing_category_count": missing.height,
        "new_category_rows": int(new["current"].sum()),
    }
    deltas = _deltas(b_stats, c_stats)
    if is_text:
        analysis: dict[str, Any] = {
            "test": None,
            "test_reason": f"text column ({union:,} distinct values > {limit:,.0f}): summary deltas and new/missing "
            "values only, no test",
            "statistic": None,
            "p_value": None,
            "threshold": None,
            "drift_detected": False,
            "severity": "none",
            "psi_score": None,
            "psi_bins": None,
            "bins_per_value": None,
            "bin_edges": None,
            "js_divergence": None,
            "js_distance": None,
            "wasserstein_distance": None,
            "wasserstein_normed": None,
            **deltas,
            **categories,
        }
        return ColumnResult(plan, b_stats, c_stats, analysis, _interpretation(plan, analysis, b_stats, c_stats))

    distribution = Distribution(
        table["baseline"].to_numpy(), table["current"].to_numpy(), [], per_value=True, union_distinct=union
    )
    test, reason = choose_test(
        params.statistical_test, plan.column_type, b_stats.count, union, params.reference_size_threshold
    )
    psi = stats.psi(distribution.baseline, distribution.current, params.psi_floor)
    js_divergence, js_distance = stats.jensen_shannon(distribution.baseline, distribution.current)
    outcome = _count_test(test, distribution, psi, js_distance)
    analysis = _analysis(test, reason, outcome, psi, params)
    analysis.update(
        psi_bins=union,
        bins_per_value=True,
        bin_edges=None,
        js_divergence=js_divergence,
        js_distance=js_distance,
        wasserstein_distance=None,
        wasserstein_normed=None,
        **deltas,
        **categories,
    )
    baseline_categories = table.filter(pl.col("baseline") > 0)["value"]
    return ColumnResult(
        plan, b_stats, c_stats, analysis, _interpretation(plan, analysis, b_stats, c_stats), baseline_categories
    )


def _most_frequent(table: pl.DataFrame, count: str, limit: int) -> list[str]:
    """The ``limit`` values with the highest ``count``, ties by value, without sorting every value (a free
    text column has a million, most of them counted once): the values above the limit-th count, sorted,
    then the smallest of the values tied at it."""
    if limit == 0 or table.height == 0:
        return []
    threshold = table[count].top_k(limit).min()
    above = table.filter(pl.col(count) > threshold).sort(count, "value", descending=[True, False])
    tied = table.filter(pl.col(count) == threshold)["value"].bottom_k(limit - above.height).sort()
    return [str(value) for value in above["value"]] + [str(value) for value in tied]


def _count_test(test: str, distribution: Distribution, psi: float, js_distance: float) -> stats.TestResult:
    if test == "chi2":
        return stats.chi_square(distribution.baseline, distribution.current)
    if test == "z":
        return stats.z_test_proportions(distribution.baseline, distribution.current)
    if test == "psi":
        return stats.TestResult(psi, None)
    if test == "jensen_shannon":
        return stats.TestResult(js_distance, None)
    raise ValueError(f"{test} does not run on counts")


def _analysis(
    test: str, reason: str, outcome: stats.TestResult, psi: float, params: DriftDetectorParams
) -> dict[str, Any]:
    if test in P_VALUE_TESTS:
        threshold = params.significance_level
        drifted = outcome.p_value is not None and outcome.p_value < threshold
    else:
        threshold = params.method_threshold
        drifted = outcome.statistic >= threshold
    return {
        "test": test,
        "test_reason": reason,
        "statistic": _finite(outcome.statistic),
        "p_value": _finite(outcome.p_value),
        "threshold": threshold,
        "drift_detected": bool(drifted),
        "severity": severity(psi, drifted),
        "psi_score": _finite(psi),
    }


def severity(psi: float | None, drifted: bool) -> DriftSeverity:
    if not drifted:
        return "none"
    if psi is not None and psi > PSI_HIGH:
        return "high"
    if psi is not None and psi > PSI_MEDIUM:
        return "medium"
    return "low"


def _deltas(baseline: SideStats, current: SideStats) -> dict[str, Any]:
    def change(before: float | None, after: float | None) -> float | None:
        return None if before is None or after is None else _finite(after - before)

    return {
        "change_in_mean": change(baseline.mean, current.mean),
        "change_in_median": change(baseline.median, current.median),
        "change_in_variance": change(baseline.variance, current.variance),
        "null_percentage_change": round(current.null_percentage - baseline.null_percentage, 4),
        "distinct_change": current.distinct - baseline.distinct,
    }


def _interpretation(plan: ColumnPlan, analysis: dict[str, Any], baseline: SideStats, current: SideStats) -> str:
    name = plan.name
    if analysis["test"] is None:
        new = analysis["new_category_count"]
        return (
            f"'{name}' is free text: not tested; {new:,} values are new and "
            f"{analysis['missing_category_count']:,} baseline values no longer appear."
        )
    test = TEST_NAMES[analysis["test"]]
    if analysis["p_value"] is not None:
        evidence = f"{test} p = {analysis['p_value']:.3g} {'<' if analysis['drift_detected'] else '>='} "
        evidence += f"{analysis['threshold']:g}"
    else:
        evidence = f"{test} {analysis['statistic']:.3g} {'>=' if analysis['drift_detected'] else '<'} "
        evidence += f"{analysis['threshold']:g}"
    if analysis["test"] != "psi":
        evidence += f"; PSI {analysis['psi_score']:.3f}"
    if analysis["drift_detected"]:
        verdict = f"'{name}' drifted ({analysis['severity']} severity: {evidence})"
    else:
        verdict = f"'{name}' is stable ({evidence})"
    if plan.column_type in {"numeric", "datetime"} and baseline.mean is not None and current.mean is not None:
        unit = f" {plan.value_unit}" if plan.value_unit else ""
        verdict += f"; mean {baseline.mean:.6g} -> {current.mean:.6g}{unit}"
    elif analysis["new_category_count"]:
        verdict += f"; {analysis['new_category_count']:,} value(s) absent from the baseline"
    return verdict + "."


def _field_output(result: ColumnResult, comma_numbers: frozenset[str] = frozenset()) -> dict[str, Any]:
    read = result.plan.name in comma_numbers  # text read as numbers (_parse_decimal_comma_text)
    return {
        "field_name": result.plan.name,
        "column_type": result.plan.column_type,
        "baseline_type": "String" if read else str(result.plan.baseline_dtype),
        "current_type": "String" if read else str(result.plan.current_dtype),
        "value_unit": result.plan.value_unit,
        **({"read_from_text": DECIMAL_COMMA_READING} if read else {}),
        "baseline_statistics": result.baseline.public(),
        "current_statistics": result.current.public(),
        "drift_analysis": result.analysis,
        "drift_interpretation": result.interpretation,
    }


def _drift_summary(
    results: list[ColumnResult], common: int, schema: dict[str, Any], params: DriftDetectorParams
) -> dict[str, Any]:
    tested = [result for result in results if result.tested]
    drifted = sum(result.drifted for result in tested)
    share = drifted / len(tested) if tested else 0.0
    dataset_drift = bool(tested) and share >= params.drift_share
    psi_scores = [result.analysis["psi_score"] for result in tested if result.analysis["psi_score"] is not None]
    changed = bool(schema["added_columns"] or schema["removed_columns"] or schema["retyped_columns"])
    return {
        "fields_analyzed": len(tested),
        "fields_not_tested": len(results) - len(tested),
        "drifted_fields": drifted,
        "drifted_field_names": [result.plan.name for result in tested if result.drifted],
        "drift_share": round(share, 6),
        "drift_share_threshold": params.drift_share,
        "dataset_drift": dataset_drift,
        "overall_drift_score": round(drifted / common, 6) if common else 0.0,
        "dataset_stability": "drifted" if dataset_drift else "warning" if drifted or changed else "stable",
        "average_psi_score": round(sum(psi_scores) / len(psi_scores), 6) if psi_scores else 0.0,
    }


# --- row-level issues -------------------------------------------------------------------------------------


def _row_level_issues(
    current: pl.DataFrame, results: list[ColumnResult], params: DriftDetectorParams
) -> tuple[pl.DataFrame, dict[str, int]]:
    numbers = row_numbers(current).alias(ROW_KEY)
    queries: list[pl.LazyFrame] = []
    total_queries: list[pl.Expr] = []
    totals = {"distribution_shift": 0, "new_category": 0}
    for result in results:
        name = result.plan.name
        lazy = pl.DataFrame([numbers, current.get_column(name)]).lazy()  # the column alone: see narrow()
        original = pl.col(name).cast(pl.String)
        if result.plan.column_type == "numeric" and result.drifted:
            mean, std = result.baseline.mean, result.baseline.std
            view = result.plan.numeric_view()
            if mean is None or not std or view is None:
                continue
            z = (view - mean) / std
            outside = z.abs() > params.zscore_threshold
            total_queries.append(outside.sum().alias(name))
            message = format_text(
                "Value {} is {} baseline standard deviations from the baseline mean {} (|z| > {})",
                original,
                z.round(2),
                pl.lit(f"{mean:.6g}"),
                pl.lit(f"{params.zscore_threshold:g}"),
            )
            severity_expr = (
                pl.when(z.abs() > 2 * params.zscore_threshold).then(pl.lit("warning")).otherwise(pl.lit("info"))
            )
            queries.append(
                _issue_frame(lazy.filter(outside), name, "distribution_shift", severity_expr, message, original)
            )
        elif (
            result.baseline_values is not None
            and result.analysis["new_category_count"]
            and params.max_new_category_issues
        ):
            is_new = original.is_not_null() & ~original.is_in(result.baseline_values.implode())
            message = format_text("Value '{}' does not occur in the baseline", original)
            frame = lazy.filter(is_new).head(params.max_new_category_issues)
            queries.append(_issue_frame(frame, name, "new_category", pl.lit("warning"), message, original))
            totals["new_category"] += min(result.analysis["new_category_rows"], params.max_new_category_issues)
    if total_queries:
        counted = current.select(total_queries).row(0)  # eager: the streaming engine plans wide selects slowly
        totals["distribution_shift"] = int(sum(value or 0 for value in counted))
    if not queries:
        return empty_row_level_issues(), totals
    issues = pl.concat(queries).head(params.max_stored_row_level_issues).collect()
    return issues, totals


def _issue_frame(
    rows: pl.LazyFrame, column: str, issue_type: str, severity_expr: pl.Expr, message: pl.Expr, value: pl.Expr
) -> pl.LazyFrame:
    return rows.select(
        pl.col(ROW_KEY).cast(pl.Int64).alias("row_index"),
        pl.lit(column, pl.String).alias("column"),
        pl.lit(issue_type, pl.String).alias("issue_type"),
        severity_expr.cast(pl.String).alias("severity"),
        message.cast(pl.String).alias("message"),
        value.cast(pl.String).alias("value"),
    )


# --- findings ---------------------------------------------------------------------------------------------


def _findings(results: list[ColumnResult], schema: dict[str, Any], summary: dict[str, Any]) -> DriftFindings:
    findings = DriftFindings(AGENT_ID)
    _dataset_drift_alert(findings, summary)
    for result in results:
        _column_findings(findings, result)
    _schema_findings(findings, schema)
    return findings


def _dataset_drift_alert(findings: DriftFindings, summary: dict[str, Any]) -> None:
    if summary["dataset_drift"]:
        findings.add(
            "dataset_drift",
            "high",
            None,
            f"Dataset drift: {summary['drifted_fields']} of {summary['fields_analyzed']} tested columns drifted "
            f"({summary['drift_share']:.0%} >= {summary['drift_share_threshold']:.0%})",
            "Investigate the source of the current data; retrain or recalibrate models built on the baseline",
            affected=summary["drifted_fields"],
        )


def _column_findings(findings: DriftFindings, result: ColumnResult) -> None:
    """A column's drift (alert, issue, mean shift) and the categories absent from the baseline."""
    name, analysis = result.plan.name, result.analysis
    if result.drifted:
        level = ALERT_LEVELS[analysis["severity"]]
        findings.add(
            "distribution_drift",
            level,
            name,
            result.interpretation,
            f"Review what changed in '{name}' (source, collection, business rules) before using models or "
            "reports built on the baseline",
        )
        findings.column_issue(
            name,
            "distribution_drift",
            level,
            result.interpretation,
            test=analysis["test"],
            statistic=analysis["statistic"],
            p_value=analysis["p_value"],
            psi_score=analysis["psi_score"],
        )
        _shift_issue(result, findings.column_issue)
    if result.plan.column_type in {"categorical", "boolean"} and analysis["new_category_count"]:
        count = analysis["new_category_count"]
        examples = ", ".join(repr(value) for value in analysis["new_categories"][:5])
        findings.column_issue(
            name,
            "new_categories",
            "low",
            f"'{name}' has {count:,} values absent from the baseline (e.g. {examples})",
            new_categories=analysis["new_categories"],
            rows=analysis["new_category_rows"],
        )


def _schema_findings(findings: DriftFindings, schema: dict[str, Any]) -> None:
    """Columns removed, added or retyped since the baseline, and a changed column order."""
    removed, added = schema["removed_columns"], schema["added_columns"]
    if removed:
        findings.add(
            "schema_removed_columns",
            "critical",
            None,
            f"{len(removed)} baseline column(s) missing from the current data: {_names(removed)}",
            "Restore the missing columns in the pipeline or update the baseline if they were dropped on purpose",
            affected=len(removed),
        )
        for name in removed:
            findings.column_issue(
                name, "missing_column", "critical", f"Column '{name}' is in the baseline but not in the current data"
            )
    if added:
        findings.add(
            "schema_added_columns",
            "medium",
            None,
            f"{len(added)} new column(s) in the current data: {_names(added)}",
            "Confirm the new columns are intended and add them to the baseline",
            affected=len(added),
        )
        for name in added:
            findings.column_issue(
                name, "new_column", "medium", f"Column '{name}' is in the current data but not in the baseline"
            )
    _retyped_findings(findings, schema["retyped_columns"])
    if schema["order_changed"]:
        findings.add(
            "schema_column_order",
            "low",
            None,
            "The common columns are in a different order than in the baseline",
            "Select columns by name, not by position, in downstream consumers",
            affected=0,
        )


def _retyped_findings(findings: DriftFindings, retyped: list[dict[str, Any]]) -> None:
    if retyped:
        findings.add(
            "schema_type_change",
            "high",
            None,
            f"{len(retyped)} column(s) changed type: "
            + ", ".join(
                f"{item['field_name']} ({item['baseline_type']} -> {item['current_type']})" for item in retyped[:5]
            ),
            "Fix the producer or the parsing so each column keeps its type (Clean My Data: type-fixer)",
            affected=len(retyped),
        )
        for item in retyped:
            findings.column_issue(
                item["field_name"],
                "type_change",
                "high",
                f"Column '{item['field_name']}' was {item['baseline_type']} in the baseline and is "
                f"{item['current_type']} now",
                baseline_type=item["baseline_type"],
                current_type=item["current_type"],
            )


def _shift_issue(result: ColumnResult, issue: Any) -> None:
    """A mean shift of more than 10 % of the baseline std (numeric columns), as Agensium's mean_shift."""
    baseline, current = result.baseline, result.current
    if result.plan.column_type != "numeric" or baseline.mean is None or current.mean is None or not baseline.std:
        return
    shift = (current.mean - baseline.mean) / baseline.std
    if abs(shift) > MEAN_SHIFT_ISSUE:
        level = "high" if abs(shift) > 1 else "medium" if abs(shift) > 0.5 else "low"
        issue(
            result.plan.name,
            "mean_shift",
            level,
            f"Mean of '{result.plan.name}' moved by {shift:+.2f} baseline standard deviations "
            f"({baseline.mean:.6g} -> {current.mean:.6g})",
            shift_in_std=round(shift, 6),
        )


def _summary_cards(summary: dict[str, Any], schema: dict[str, Any]) -> list[SummaryCard]:
    share, drifted, tested = summary["drift_share"], summary["drifted_fields"], summary["fields_analyzed"]
    changes = _schema_change_count(schema)
    psi = summary["average_psi_score"]
    return [
        SummaryCard(
            "drift-share",
            "Drift share",
            f"{share:.0%}",
            "critical" if summary["dataset_drift"] else "warning" if drifted else "good",
            f"Dataset drift when >= {summary['drift_share_threshold']:.0%} of tested columns drift",
        ),
        SummaryCard(
            "drifted-columns",
            "Drifted columns",
            f"{drifted} of {tested}",
            "warning" if drifted else "good",
            ", ".join(summary["drifted_field_names"][:5]) or "No tested column drifted",
        ),
        SummaryCard(
            "schema-changes",
            "Schema changes",
            f"{changes}",
            "critical" if schema["removed_columns"] else "warning" if changes else "good",
            f"{len(schema['added_columns'])} added, {len(schema['removed_columns'])} removed, "
            f"{len(schema['retyped_columns'])} retyped, order {'changed' if schema['order_changed'] else 'kept'}",
        ),
        SummaryCard(
            "average-psi",
            "Average PSI",
            f"{psi:.3f}",
            "critical" if psi > PSI_HIGH else "warning" if psi > PSI_MEDIUM else "good",
            "< 0.1 stable, 0.1-0.25 moderate, > 0.25 major change",
        ),
    ]


def _skipped_result(params: DriftDetectorParams, started: float, reason: str) -> AgentResult:
    summary = {
        "fields_analyzed": 0,
        "fields_not_tested": 0,
        "drifted_fields": 0,
        "drifted_field_names": [],
        "drift_share": 0.0,
        "drift_share_threshold": params.drift_share,
        "dataset_drift": False,
        "overall_drift_score": 0.0,
        "dataset_stability": "stable",
        "average_psi_score": 0.0,
    }
    data = {
        "skipped": True,
        "skip_reason": reason,
        "fields": [],
        "skipped_fields": [],
        "schema_drift": {"added_columns": [], "removed_columns": [], "retyped_columns": [], "order_changed": False},
        "drift_summary": summary,
        "conventions": CONVENTIONS,
        **parameter_objects(params),
    }
    envelope = Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        execution_time_ms=round((time.perf_counter() - started) * 1000),
        summary_metrics={
            "fields_analyzed": 0,
            "drift_detected_count": 0,
            "drift_severity_high": 0,
            "drift_severity_medium": 0,
            "drift_severity_low": 0,
            "average_psi_score": 0.0,
            "dataset_drift": False,
            "drift_share": 0.0,
        },
        data=data,
        issue_summary=build_issue_summary([], empty_row_level_issues()),
        executive_summary=[SummaryCard("drift-skipped", "Drift detection", "skipped", "info", reason)],
    )
    return AgentResult(envelope=envelope)


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0
