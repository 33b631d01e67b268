"""Alerts, issues, recommendations and executive-summary cards from the profiled fields.

Alert rules follow ydata-profiling's alert set and Agensium's thresholds (reference/agents.md §1.4, §2.5);
each alert names one field (``affected_fields_count`` 1) except the dataset-level ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agents.envelope import Alert, Severity, SummaryCard
from agents.findings import Findings
from agents.profile.correlations import METHOD_LABELS
from agents.profile.semantic import DISCRETE_MAX_DISTINCT

if TYPE_CHECKING:
    from agents.profile.params import ProfilerParams

AGENT_ID = "unified-profiler"
HIGH_SENSITIVITY = {"ssn", "credit_card", "iban", "passport", "tax_id"}
CO_MISSING_MIN_PERCENTAGE = 1.0  # a set of columns missing together in at least this % of rows is alerted
DISTINCT_BY_NATURE = {"continuous", "text", "date", "datetime", "time", "duration"}  # all distinct is normal


def build_findings(
    fields: list[dict[str, Any]],
    dataset: dict[str, Any],
    params: ProfilerParams,
    views: dict[str, Any] | None = None,
) -> Findings:
    """``views``: the profile's correlations and missing patterns (agents.profile.views), when computed."""
    alerts: list[Alert] = []
    rows = dataset["rows"]
    if rows == 0:
        alerts.append(_alert("empty_dataset", "critical", None, "The dataset has no rows", "Upload a file with data"))
    duplicates = dataset["duplicate_rows"]
    if duplicates:
        share = dataset["duplicate_rows_percentage"]
        alerts.append(
            _alert(
                "duplicate_rows",
                "high" if share > 10 else "medium",
                None,
                f"{duplicates:,} duplicate rows ({share:.2f}% of rows repeat an earlier row)",
                "Remove exact duplicate rows (Clean My Data: duplicate-resolver)",
                affected=dataset["columns"],
            )
        )
    for profile in fields:
        alerts += _field_alerts(profile, params)
    alerts += _view_alerts(views or {})
    # The toolkit's ids; every alert recommends. ``issues`` stays empty: the profiler's findings about a
    # column are its alerts (not repeated as issues), and its row-level findings are row-level issues.
    findings = Findings(AGENT_ID)
    for alert in alerts:
        findings.alert(
            alert.category,
            alert.severity,
            alert.message,
            alert.recommendation,
            field_name=alert.field_name,
            affected=alert.affected_fields_count,
            recommend=True,
        )
    return findings


def _view_alerts(views: dict[str, Any]) -> list[Alert]:
    """A near-duplicate pair of columns (|correlation| or Cramér's V at or above the threshold: ydata's
    ``high_correlation``), and a set of columns missing together in many rows (one cause, e.g. cancelled
    records, rather than separate gaps)."""
    alerts: list[Alert] = []
    for pair in (views.get("correlations") or {}).get("near_duplicates", []):
        a, b, method, value = pair["column_a"], pair["column_b"], pair["method"], pair["value"]
        label = METHOD_LABELS.get(method, method)  # Pearson, Spearman, Cramér's V
        alerts.append(
            _alert(
                "high_correlation",
                "medium",
                a,
                f"'{a}' and '{b}' are nearly redundant ({label} {value:+.3f} over {pair['rows']:,} rows)",
                f"Check whether '{a}' and '{b}' carry the same information; keep one for modelling",
                affected=2,
            )
        )
    patterns = views.get("missing_patterns") or {}
    alerted: list[set[str]] = []
    # The widest sets first: a subset of a set already told (its columns missing together in those rows,
    # and maybe in a few more) is not told again.
    for pattern in sorted(patterns.get("patterns", []), key=lambda item: -len(item["columns"])):
        columns, count = pattern["columns"], pattern.get("rows_including", pattern["rows"])
        share = pattern.get("percentage_including", pattern["percentage"])
        if len(columns) < 2 or share < CO_MISSING_MIN_PERCENTAGE or any(set(columns) <= done for done in alerted):
            continue
        alerted.append(set(columns))
        listed = ", ".join(f"'{name}'" for name in columns)
        alerts.append(
            _alert(
                "co_missing",
                "low",
                None,
                f"{count:,} rows ({share:.2f}%) miss {listed} together",
                "Find what these rows share (a status such as cancelled, or a source); "
                "treat them as one group rather than filling each column",
                affected=len(columns),
            )
        )
    return alerts


def _field_alerts(profile: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    name = profile["field_name"]
    if profile["properties"]["non_null_count"] == 0:
        return [_alert("all_missing", "critical", name, f"'{name}' is empty in every row", f"Drop '{name}' or fill it")]
    alerts = _missing_alerts(name, profile["properties"]["null_percentage"], params)
    alerts += _cardinality_alerts(profile, params)
    alerts += _imbalance_alerts(profile, params)
    alerts += _numeric_alerts(name, profile["statistics"], params)
    alerts += _text_alerts(name, profile, params)
    alerts += _quality_alerts(profile, params)
    return alerts


def _missing_alerts(name: str, null_pct: float, params: ProfilerParams) -> list[Alert]:
    if null_pct > params.null_alert_threshold:
        return [_missing_alert(name, null_pct, "critical")]
    if null_pct > params.missing_warning_threshold:
        return [_missing_alert(name, null_pct, "high")]
    if null_pct > 1:
        return [_missing_alert(name, null_pct, "low")]
    return []


def _cardinality_alerts(profile: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    """What the number of distinct values says beyond the semantic type (agents.profile.semantic), never what
    the type already says: a constant column; every value distinct where values should repeat (not in
    continuous measurements or free text); a text code distinct in nearly every row (a key with repeats?);
    a continuous column of few distinct values (rounded or binned?). Categorical codes are few-valued by
    definition and raise nothing."""
    name, properties = profile["field_name"], profile["properties"]
    semantic = profile["semantic_type"]
    non_null, unique = properties["non_null_count"], properties["unique_count"]
    alerts: list[Alert] = []
    if unique == 1:
        alerts.append(
            _alert(
                "constant",
                "medium",
                name,
                f"'{name}' has a single distinct value",
                f"Drop '{name}'; it carries no information",
            )
        )
    elif unique is not None and unique == non_null and non_null > 1 and semantic not in DISTINCT_BY_NATURE:
        key = semantic == "identifier"
        alerts.append(
            _alert(
                "unique",
                "low",
                name,
                f"'{name}' has a distinct value in every row" + (" (an identifier)" if key else ""),
                f"Use '{name}' as a key; exclude it from statistical analysis"
                if key
                else f"Check whether '{name}' is a key of the table",
            )
        )
    elif (
        semantic == "code"
        and properties["unique_percentage"] > params.high_cardinality_threshold
        and properties["null_percentage"] < 10
    ):
        alerts.append(
            _alert(
                "high_cardinality",
                "low",
                name,
                f"'{name}' has {unique:,} distinct values ({properties['unique_percentage']:.1f}% of values)",
                f"Check whether '{name}' is an identifier with repeated values before grouping by it",
            )
        )
    if (
        semantic == "continuous"
        and unique is not None
        and unique <= DISCRETE_MAX_DISTINCT
        and unique <= params.categorical_ratio_threshold * non_null
    ):
        alerts.append(
            _alert(
                "low_cardinality",
                "low",
                name,
                f"Numeric '{name}' has only {unique} distinct values among {non_null:,}",
                f"Check whether '{name}' was rounded or binned",
            )
        )
    return alerts


def _imbalance_alerts(profile: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    name, properties = profile["field_name"], profile["properties"]
    alerts: list[Alert] = []
    imbalance = profile["distribution"].get("imbalance")
    if properties["is_categorical"] and imbalance is not None and imbalance > params.imbalance_threshold:
        alerts.append(
            _alert(
                "imbalance",
                "low",
                name,
                f"'{name}' is highly imbalanced (imbalance {imbalance:.2f})",
                f"Account for the imbalance of '{name}' when sampling or modelling",
            )
        )
    return alerts


def _quality_alerts(profile: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    name = profile["field_name"]
    alerts: list[Alert] = []
    quality = profile["quality_score"]
    if quality < params.quality_alert_threshold:
        alerts.append(
            _alert(
                "low_quality",
                "high" if quality < 60 else "medium",
                name,
                f"'{name}' has a quality score of {quality:.1f}",
                f"Review completeness and validity of '{name}'",
            )
        )
    return alerts


def _numeric_alerts(name: str, statistics: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    if "outlier_percentage" not in statistics:
        return []
    alerts: list[Alert] = []
    skew = statistics.get("skewness")
    if skew is not None and abs(skew) > params.skewness_threshold:
        alerts.append(
            _alert(
                "skewed",
                "medium" if abs(skew) > 2 * params.skewness_threshold else "low",
                name,
                f"'{name}' is skewed (skewness {skew:.2f})",
                f"Consider a log or power transform of '{name}'",
            )
        )
    if statistics["zeros_percentage"] > params.zeros_alert_threshold:
        alerts.append(
            _alert(
                "zeros",
                "low",
                name,
                f"'{name}' is zero in {statistics['zeros_percentage']:.1f}% of rows",
                f"Check whether zeros in '{name}' mean 'missing'",
            )
        )
    if statistics.get("infinite_count"):
        alerts.append(
            _alert(
                "infinite",
                "medium",
                name,
                f"'{name}' has {statistics['infinite_count']:,} infinite values",
                f"Replace infinite values in '{name}'",
            )
        )
    outliers = statistics["outlier_percentage"]
    if outliers > params.outlier_alert_threshold:
        alerts.append(
            _alert(
                "outliers",
                "high" if outliers > 2 * params.outlier_alert_threshold else "medium",
                name,
                f"'{name}' has {statistics['outlier_count']:,} IQR outliers ({outliers:.2f}%)",
                f"Review outliers of '{name}' (Clean My Data: outlier-remover)",
            )
        )
    return alerts


def _text_alerts(name: str, profile: dict[str, Any], params: ProfilerParams) -> list[Alert]:
    alerts: list[Alert] = []
    properties, statistics = profile["properties"], profile["statistics"]
    pii = properties["estimated_pii_type"]
    if pii:
        severity: Severity = "critical" if pii in HIGH_SENSITIVITY else "high"
        how = properties["pii_detection"]["method"]
        alerts.append(
            _alert(
                "pii_detected",
                severity,
                name,
                f"'{name}' looks like personal data ({pii}, by {how})",
                f"Mask, tokenise or restrict access to '{name}'",
            )
        )
    if profile["data_type"] != "string":
        return alerts
    semantic = profile["semantic_type"]
    if semantic == "numeric_string" and profile["properties"].get("decimal_mark") == ",":
        alerts.append(
            _alert(
                "numeric_in_string",
                "medium",
                name,
                f"'{name}' holds numbers written with a decimal comma ('39,81'), stored as text",
                f"Convert '{name}' to a numeric type reading the comma as the decimal mark (Clean My Data: "
                "type-fixer does by default when no column of the file groups thousands with commas)",
            )
        )
    elif semantic == "numeric_string" and profile["properties"].get("beyond_double_precision"):
        alerts.append(
            _alert(
                "numeric_in_string",
                "low",
                name,
                f"'{name}' holds numbers with more digits than a float holds, kept as text so that each is kept "
                "as written",
                f"Keep '{name}' as text: a float would round its numbers (compute with a decimal type if needed)",
            )
        )
    elif semantic == "numeric_string":
        parameters = profile["properties"].get("conversion_parameters") or []
        how = f" with {' and '.join(f'{parameter}: true' for parameter in parameters)}" if parameters else ""
        alerts.append(
            _alert(
                "numeric_in_string",
                "medium",
                name,
                f"'{name}' holds numbers stored as text",
                f"Convert '{name}' to a numeric type (Clean My Data: type-fixer{how})",
            )
        )
    elif semantic == "date_string":
        # 13/04/55: the datetime profile reads it with a century rule (agents.values.TWO_DIGIT_YEAR_RULE), and says so
        years = (profile.get("datetime_profile") or {}).get("read_from_text", {}).get("two_digit_years")
        alerts.append(
            _alert(
                "type_date",
                "low",
                name,
                f"'{name}' holds dates stored as text"
                + (
                    f", {years['values']:,} of them with a 2-digit year whose century is a guess (profiled with "
                    f"{years['rule']}: {years['earliest']} to {years['latest']})"
                    if years
                    else ""
                ),
                f"Parse '{name}' as a date (Clean My Data: type-fixer"
                + (", with convert_ambiguous_dates: true once the century rule is right for it)" if years else ")"),
            )
        )
    elif semantic == "boolean_string":
        alerts.append(
            _alert(
                "boolean_in_string",
                "low",
                name,
                f"'{name}' holds booleans stored as text",
                f"Convert '{name}' to a boolean",
            )
        )
    unique = properties["unique_count"] or 0
    if unique > 1 and statistics.get("min_length") is not None and statistics["min_length"] == statistics["max_length"]:
        alerts.append(
            _alert(
                "constant_length",
                "low",
                name,
                f"Every value of '{name}' has {statistics['min_length']} characters",
                f"'{name}' may be a code or identifier; validate its format",
            )
        )
    return alerts


def _missing_alert(name: str, null_pct: float, severity: Severity) -> Alert:
    return _alert(
        "high_missing" if severity != "low" else "missing",
        severity,
        name,
        f"'{name}' is missing in {null_pct:.2f}% of rows",
        f"Impute or drop missing values of '{name}' (Clean My Data: null-handler)",
    )


def _alert(
    category: str, severity: Severity, field: str | None, message: str, recommendation: str, affected: int = 1
) -> Alert:
    return Alert(
        alert_id="",  # given by agents.findings.Findings when the alert is recorded
        severity=severity,
        category=category,
        message=message,
        affected_fields_count=affected if field is None else 1,
        recommendation=recommendation,
        field_name=field,
    )


def summary_cards(summary_metrics: dict[str, Any], quality: dict[str, Any], alerts: list[Alert]) -> list[SummaryCard]:
    score, grade = quality["overall_quality_score"], quality["quality_grade"]
    critical = sum(alert.severity == "critical" for alert in alerts)
    high = sum(alert.severity == "high" for alert in alerts)
    completeness = quality["completeness_score"]
    duplicates = summary_metrics["duplicate_rows"]
    pii = summary_metrics["pii_fields"]
    return [
        SummaryCard(
            "overall-quality",
            "Overall quality",
            f"{score:.1f} ({grade})",
            _status_for_grade(grade),
            f"Mean field quality over {summary_metrics['total_columns']} columns",
        ),
        SummaryCard(
            "dataset-size",
            "Dataset size",
            f"{summary_metrics['total_rows']:,} rows x {summary_metrics['total_columns']} columns",
            "info",
            "Rows and columns profiled",
        ),
        SummaryCard(
            "completeness",
            "Completeness",
            f"{completeness:.1f}%",
            "excellent" if completeness >= 95 else "good" if completeness >= 80 else "warning",
            f"{summary_metrics['missing_cells']:,} missing cells",
        ),
        SummaryCard(
            "duplicates",
            "Duplicate rows",
            f"{duplicates:,}",
            "good" if duplicates == 0 else "warning",
            "Rows that repeat an earlier row exactly",
        ),
        SummaryCard(
            "alerts",
            "Alerts",
            f"{len(alerts)}",
            "critical" if critical else "warning" if high else "good",
            f"{critical} critical, {high} high",
        ),
        SummaryCard(
            "pii",
            "Fields with personal data",
            f"{pii}",
            "warning" if pii else "good",
            "Detected by column name or by value patterns",
        ),
    ]


def _status_for_grade(grade: str) -> Any:
    return {"A": "excellent", "B": "good", "C": "warning", "D": "warning"}.get(grade, "critical")
