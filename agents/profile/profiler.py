"""The ``unified-profiler`` agent: per-column statistics, PII, quality scores, alerts and row-level issues.

Parameters and output field names follow Agensium's profiler (reference/agents.md §1.4); the metric set is
the merged one of §2.5. Conventions, also stated in ``data.conventions`` of the envelope:

- percentages are 0..100; ``null_percentage`` is of all rows, ``unique_percentage`` of non-null values,
  top-value ``percentage`` of all rows;
- ``std``/``variance`` use ddof=1; skewness and kurtosis are the bias-corrected sample estimates
  (pandas / ``scipy.stats.skew(bias=False)``, ``kurtosis(fisher=True, bias=False)``);
  quantiles use linear interpolation (NumPy's default) over the non-NaN values;
- the histogram is ``numpy.histogram(values, bins)`` of the finite values (equal-width bins from min to
  max, each [a, b) except the last, closed one); NaN is one distinct value but no outlier;
- top values are ordered by count, ties going to the smaller value (for high-cardinality text, the
  smaller value hash); when fewer than N values repeat, values seen once complete the list;
- ``entropy`` is the Shannon entropy in bits of the non-null value distribution; ``imbalance`` is
  ``1 - entropy / log2(distinct)`` (ydata-profiling);
- missing values are empty fields and the ``null_tokens`` (``NA``, ``N/A``, ``NULL``, ... after trimming;
  a float NaN counts as ``NaN``): ``null_count`` counts all of them and ``null_tokens`` says which tokens
  and how often; a column that was text only because of its tokens is typed as its other values are;
- ``row_index`` of a row-level issue is the 1-based data row of the input file: the header is line 1,
  so data row ``r`` is line ``r + 1`` when no quoted field spans lines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import polars as pl

from agents.decimal_comma import parse_decimal_comma
from agents.envelope import (
    AgentInputs,
    AgentResult,
    Envelope,
    Progress,
    build_issue_summary,
    inline_row_level_issues,
)
from agents.params.common import parameter_objects
from agents.profile.column_stats import (
    NUMERIC_KINDS,
    ColumnStats,
    ProfileStats,
    Source,
    StatsSettings,
    compute_source_stats,
    text_number_stats,
)
from agents.profile.findings import AGENT_ID, build_findings, summary_cards
from agents.profile.params import AGENT_NAME, ProfilerParams
from agents.profile.pii import (
    NUMBER_PARAMETERS,
    SAMPLED_KINDS,
    SENSITIVITY,
    TextSignals,
    pii_type_by_name,
    sample_rows,
    value_signals,
)
from agents.profile.semantic import ColumnEvidence, SemanticType, whitespace_share
from agents.profile.semantic import semantic_type as semantic_type_of
from agents.profile.views import EarlyViews, profile_views
from agents.values import MissingTokens, normalize_missing


def run(inputs: AgentInputs, params: ProfilerParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame, missing = inputs.primary, inputs.primary_missing
    if missing is None or list(missing.tokens) != params.null_tokens:  # not read by the chain with these tokens
        frame, missing = normalize_missing(frame, params.null_tokens)
    progress(0.0, f"Profiling {frame.width} columns of {frame.height:,} rows")
    early = EarlyViews(frame)  # computed beside the statistics, which they do not need
    source = Source.of_frame(frame)
    stats = compute_source_stats(
        source, stats_settings(params), lambda: progress(0.6, "Computing outliers, histograms and row issues")
    )
    progress(0.85, "Detecting personal data and scoring quality")
    sampled = [column.name for column in stats.columns if column.kind in SAMPLED_KINDS]
    sample = sample_rows(frame.select(sampled), params.pii_sample_size)

    def views(fields: list[dict[str, Any]]) -> dict[str, Any]:
        return profile_views(frame, fields, stats.dataset.duplicate_rows, early)

    return profile_result(stats, sample, params, int(frame.estimated_size()), started, progress, missing, views, source)


def stats_settings(params: ProfilerParams) -> StatsSettings:
    return StatsSettings(
        top_n_values=params.top_n_values,
        histogram_bins=params.histogram_bins,
        outlier_iqr_multiplier=params.outlier_iqr_multiplier,
        zscore_threshold=params.zscore_threshold,
        max_stored_row_level_issues=params.max_stored_row_level_issues,
    )


def profile_result(
    stats: ProfileStats,
    sample: pl.DataFrame,
    params: ProfilerParams,
    memory_bytes: int,
    started: float,
    progress: Progress,
    missing: MissingTokens | None = None,
    views: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    source: Source | None = None,
) -> AgentResult:
    """The envelope from the column statistics and an evenly spaced sample of the text and integer columns
    (SAMPLED_KINDS: for PII and semantic types; card numbers read as integers); shared by the in-memory agent
    and the streaming path for large files. ``views``: the profile's views (agents.profile.views) from the
    fields, which it may complete (datetime profiles). ``source``: what the statistics were computed over, from
    which the numbers of text columns written with a decimal comma are profiled (:func:`_text_numbers`)."""
    string_columns = [column.name for column in stats.columns if column.kind == "string"]
    integer_columns = [column.name for column in stats.columns if column.kind == "integer"]
    signals = value_signals(sample, string_columns, integer_columns)
    missing = missing or MissingTokens(tokens=tuple(params.null_tokens))
    fields = [_field_profile(column, signals.get(column.name), params, missing) for column in stats.columns]
    if source is not None:
        _text_numbers(fields, source, stats_settings(params))

    dataset = _dataset_summary(stats.dataset.__dict__, fields, memory_bytes)
    progress(0.9, "Computing correlations, missing-value patterns and samples")
    extra = views(fields) if views is not None else {}
    findings = build_findings(fields, dataset, params, extra)
    quality = _quality_summary(fields, dataset, findings.alerts, params)
    summary_metrics = {
        "total_rows": dataset["rows"],
        "total_columns": dataset["columns"],
        "total_fields_profiled": len(fields),
        "missing_cells": dataset["missing_cells"],
        "missing_cells_percentage": dataset["missing_cells_percentage"],
        "duplicate_rows": dataset["duplicate_rows"],
        "overall_quality_score": quality["overall_quality_score"],
        "quality_grade": quality["quality_grade"],
        "pii_fields": sum(bool(field["properties"]["estimated_pii_type"]) for field in fields),
        "fields_requiring_attention": len(quality["fields_requiring_attention"]),
        "alerts_total": len(findings.alerts),
        "critical_alerts": quality["critical_issues"],
        "row_level_issues_total": stats.dataset.row_level_issues_total,
    }
    row_issues = stats.row_level_issues
    data = {
        "dataset": dataset,
        "fields": fields,
        "quality_summary": quality,
        "row_index_base": 1,
        "row_index_meaning": "1-based data row of the input file (header = line 1, so file line = row_index + 1)",
        "row_level_issues_total": stats.dataset.row_level_issues_total,
        "row_level_issues_by_type": stats.dataset.row_level_issues_by_type,
        "missing_tokens": missing.describe(),
        "row_level_issues_stored": row_issues.height,
        "row_level_issues_truncated": row_issues.height < stats.dataset.row_level_issues_total,
        **extra,
        "conventions": {
            "null_percentage": "of all rows",
            "null_count": "empty fields and missing-value tokens (null_tokens); null_tokens per field says which",
            "unique_percentage": "of non-null values",
            "top_values.percentage": "of all rows",
            "std_ddof": 1,
            "skew_kurtosis": "bias-corrected sample estimates; kurtosis is excess (Fisher)",
            "quantile_interpolation": "linear, over the non-NaN values",
            "histogram": "numpy.histogram of the finite values: equal-width bins, [a, b) except the last",
            "top_values.order": "count descending, ties to the smaller value",
            "entropy": "Shannon entropy in bits of the non-null values",
        },
        **parameter_objects(params),
    }
    envelope = Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        execution_time_ms=0,
        summary_metrics=summary_metrics,
        data=data,
        alerts=findings.alerts,
        issues=findings.issues,
        row_level_issues=inline_row_level_issues(row_issues),
        issue_summary=build_issue_summary(findings.issues, row_issues),
        recommendations=findings.recommendations,
        executive_summary=summary_cards(summary_metrics, quality, findings.alerts),
    )
    # The stored list may be capped; the summary counts every issue.
    envelope.issue_summary["total_issues"] = len(findings.issues) + stats.dataset.row_level_issues_total
    envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, "Profile complete")
    return AgentResult(envelope=envelope, row_level_issues=row_issues)


def _field_profile(
    column: ColumnStats, signals: TextSignals | None, params: ProfilerParams, missing: MissingTokens
) -> dict[str, Any]:
    rows, non_null = column.rows, column.non_null_count
    unique = column.unique_count
    unique_pct = _pct(unique, non_null) if unique is not None else None
    value_pii = _pii_by_value(signals, params.pii_match_threshold)
    name_pii = pii_type_by_name(column.name)
    pii_type = value_pii or name_pii
    method = "name+value" if value_pii and name_pii else "value" if value_pii else "name" if name_pii else None
    semantic = _semantic_type(column, signals, value_pii, params)
    semantic_type = semantic.name

    statistics = _statistics(column, non_null)
    completeness = 100.0 - _pct(column.null_count, rows)
    validity = _validity(column, statistics, signals, semantic, non_null)
    consistency = 0.0 if non_null == 0 else 100.0 if (unique or 0) > 1 else 50.0
    quality_score = round((completeness + validity + consistency) / 3, 2)
    entropy = column.entropy_bits
    imbalance = None
    if entropy is not None and unique and unique > 1:
        imbalance = round(max(0.0, 1 - entropy / math.log2(unique)), 6)
    return {
        "field_name": column.name,
        "data_type": column.kind,
        "polars_dtype": column.dtype,
        "semantic_type": semantic_type,
        "properties": {
            "row_count": rows,
            "non_null_count": non_null,
            "null_count": column.null_count,
            "null_percentage": _pct(column.null_count, rows),
            "null_tokens": missing.counts.get(column.name, {}),
            "retyped_from_text": missing.retyped.get(column.name),
            "unique_count": unique,
            "unique_percentage": unique_pct,
            "values_seen_once": column.unique_once_count,
            # one value is constant, not unique (as the findings' alerts say): distinct in every row needs two rows
            "is_unique": bool(unique is not None and non_null > 1 and unique == non_null),
            "is_constant": unique == 1,
            "is_categorical": semantic.is_categorical,
            "semantic_reason": semantic.reason,
            **({"decimal_mark": ","} if semantic.decimal_comma else {}),
            **_conversion_parameters(semantic, signals),
            "estimated_pii_type": pii_type,
            "estimated_sensitivity_level": SENSITIVITY.get(pii_type, "low") if pii_type else "none",
            "pii_detection": {
                "by_name": name_pii,
                "by_value": value_pii,
                "method": method,
                "value_match_shares": _rounded(signals.pattern_shares) if signals else None,
                "sample_size": signals.sample_size if signals else None,
            },
        },
        "quality_score": quality_score,
        "quality_indicators": {
            "completeness": round(completeness, 2),
            "uniqueness": round(unique_pct or 0.0, 2),
            "validity": round(validity, 2),
            "consistency": consistency,
        },
        "statistics": statistics,
        "distribution": {
            "top_values": column.top_values,
            "histogram": column.histogram,
            "entropy": entropy,
            "imbalance": imbalance,
        },
    }


def _statistics(column: ColumnStats, non_null: int) -> dict[str, Any]:
    statistics: dict[str, Any] = {"count": non_null, "entropy": column.entropy_bits}
    if column.entropy_bits is not None and column.unique_count and column.unique_count > 1:
        statistics["entropy_normalized"] = round(column.entropy_bits / math.log2(column.unique_count), 6)
    if column.kind in NUMERIC_KINDS and column.numeric:
        statistics.update(_numeric_statistics(column.numeric, non_null))
    elif column.kind == "string":
        statistics.update(column.lengths)
    elif column.temporal:
        statistics.update(column.temporal)
    elif column.kind == "boolean" and column.true_count is not None:
        statistics["true_count"] = column.true_count
        statistics["false_count"] = non_null - column.true_count
        statistics["true_percentage"] = _pct(column.true_count, non_null)
    return statistics


def _numeric_statistics(found: dict[str, Any], non_null: int) -> dict[str, Any]:
    """A numeric column's statistics (``ColumnStats.numeric`` of its ``non_null`` values) as the field gives them."""
    numeric = dict(found)
    quantiles = numeric.pop("quantiles")
    minimum, maximum, mean, std = numeric["min"], numeric["max"], numeric["mean"], numeric["std"]
    statistics: dict[str, Any] = {**numeric, **quantiles}
    statistics["median"] = quantiles["p50"]
    statistics["quantiles"] = quantiles
    statistics["range"] = None if minimum is None or maximum is None else maximum - minimum
    statistics["coefficient_of_variation"] = std / mean if std is not None and mean else None
    statistics["zeros_percentage"] = _pct(numeric["zeros_count"], non_null)
    statistics["negatives_percentage"] = _pct(numeric["negatives_count"], non_null)
    statistics["outlier_count"] = numeric.get("outlier_count", 0)
    statistics["outlier_percentage"] = _pct(numeric.get("outlier_count", 0), non_null)
    statistics["outlier_lower_bound"] = numeric.get("outlier_lower_bound")
    statistics["outlier_upper_bound"] = numeric.get("outlier_upper_bound")
    return statistics


DECIMAL_COMMA_READING = {"decimal_mark": ",", "thousands_separator": "."}
"""How a ``numeric_string`` column written with a decimal comma is read to be profiled as numbers
(agents.decimal_comma.parse_decimal_comma: ``1.234,56`` is 1234.56), as the type-fixer converts it."""


def _text_numbers(fields: list[dict[str, Any]], source: Source, settings: StatsSettings) -> None:
    """Each ``numeric_string`` field written with a decimal comma profiled as numbers, in place: the numeric
    statistics of a float column (min, max, mean, median, std, quantiles, IQR and z-score outlier counts and
    bounds, extremes) added to its ``statistics`` beside the string lengths, its ``distribution.histogram`` that
    of the numbers, and ``statistics.read_from_text`` saying how they were read and how many values read (the
    percentages are of those). The type stays ``numeric_string`` (the file holds text); the outliers are counted,
    not listed as row-level issues."""
    read = [
        field
        for field in fields
        if field["semantic_type"] == "numeric_string" and field["properties"].get("decimal_mark") == ","
    ]
    jobs: list[Callable[[], tuple[ColumnStats, int]]] = [
        partial(text_number_stats, source, name, parse_decimal_comma(pl.col(name)), settings)
        for name in (field["field_name"] for field in read)
    ]
    for field, (column, values_read) in zip(read, source.run(jobs), strict=True):
        if not values_read:
            continue
        statistics = field["statistics"]
        statistics.update(_numeric_statistics(column.numeric, values_read))
        statistics["read_from_text"] = {
            **DECIMAL_COMMA_READING,
            "values_read": values_read,
            "values_not_read": field["properties"]["non_null_count"] - values_read,
        }
        field["distribution"]["histogram"] = column.histogram


def _pii_by_value(signals: TextSignals | None, threshold: float) -> str | None:
    if not signals or not signals.sample_size:
        return None
    pii_type, share = max(signals.pattern_shares.items(), key=lambda item: item[1])
    return pii_type if share >= threshold else None


def _semantic_type(
    column: ColumnStats, signals: TextSignals | None, value_pii: str | None, params: ProfilerParams
) -> SemanticType:
    """The column's evidence handed to the one rule, :func:`agents.profile.semantic.semantic_type`."""
    numeric = column.numeric if column.kind in NUMERIC_KINDS else {}
    evidence = ColumnEvidence(
        name=column.name,
        kind=column.kind,
        rows=column.rows,
        non_null=column.non_null_count,
        distinct=column.unique_count,
        seen_once=column.unique_once_count,
        minimum=numeric.get("min"),
        maximum=numeric.get("max"),
        integer_valued=column.kind == "integer",
        dtype=column.dtype,
        min_length=column.lengths.get("min_length"),
        max_length=column.lengths.get("max_length"),
        whitespace_share=whitespace_share(item["value"] for item in column.top_values)
        if column.kind == "string"
        else None,
        value_pii=value_pii,
        value_pii_share=signals.pattern_shares.get(value_pii, 0.0) if signals and value_pii else 0.0,
        numeric_share=signals.numeric_share if signals else 0.0,
        decimal_comma_share=signals.decimal_comma_share if signals else 0.0,
        date_share=signals.date_share if signals else 0.0,
        boolean_share=signals.boolean_share if signals else 0.0,
    )
    return semantic_type_of(
        evidence,
        categorical_threshold=params.categorical_threshold,
        categorical_ratio_threshold=params.categorical_ratio_threshold,
    )


def _conversion_parameters(semantic: SemanticType, signals: TextSignals | None) -> dict[str, Any]:
    """A numeric_string's ``conversion_parameters``: the type-fixer parameters its numbers need to be converted
    (a currency symbol, a percent sign or a code's leading zero in the sample: agents.profile.pii.NUMBER_PARAMETERS);
    or ``beyond_double_precision`` when a sampled number has more digits than a float holds (the type-fixer keeps
    such a column text: no parameter converts it)."""
    if semantic.name != "numeric_string" or semantic.decimal_comma or signals is None:
        return {}
    if signals.beyond_double_share > 0:  # a float would change a value: kept as text, no parameter converts it
        return {"beyond_double_precision": True}
    needed = [parameter for share, parameter in NUMBER_PARAMETERS.items() if getattr(signals, share) > 0]
    return {"conversion_parameters": needed} if needed else {}


def _validity(
    column: ColumnStats,
    statistics: dict[str, Any],
    signals: TextSignals | None,
    semantic: SemanticType,
    non_null: int,
) -> float:
    """Share of values that fit the column's type: numeric 100 - min(outlier %, 20) - infinite %; a text
    column with a dominant pattern (e-mail, number, date, ...) the share of sampled values matching it (numbers
    written with a decimal comma for a ``decimal_comma`` column)."""
    if non_null == 0:
        return 0.0
    if column.kind in NUMERIC_KINDS:
        infinite = _pct(statistics.get("infinite_count", 0), non_null)
        return max(0.0, 100.0 - min(statistics.get("outlier_percentage", 0.0), 20.0) - infinite)
    if signals is None:
        return 100.0
    share = signals.pattern_shares.get(semantic.name)
    if share is None:
        share = {
            "numeric_string": signals.decimal_comma_share if semantic.decimal_comma else signals.numeric_share,
            "date_string": signals.date_share,
            "boolean_string": signals.boolean_share,
        }.get(semantic.name, 1.0)
    return 100.0 * share


def _dataset_summary(stats: dict[str, Any], fields: list[dict[str, Any]], memory_bytes: int) -> dict[str, Any]:
    rows, columns = stats["rows"], stats["columns"]
    type_counts: dict[str, int] = {}
    semantic_counts: dict[str, int] = {}
    for field in fields:
        type_counts[field["data_type"]] = type_counts.get(field["data_type"], 0) + 1
        semantic_counts[field["semantic_type"]] = semantic_counts.get(field["semantic_type"], 0) + 1
    return {
        "rows": rows,
        "columns": columns,
        "cells": rows * columns,
        "missing_cells": stats["missing_cells"],
        "missing_cells_percentage": _pct(stats["missing_cells"], rows * columns),
        "columns_with_missing": sum(field["properties"]["null_count"] > 0 for field in fields),
        "columns_all_missing": sum(field["properties"]["non_null_count"] == 0 for field in fields),
        "duplicate_rows": stats["duplicate_rows"],
        "duplicate_rows_percentage": _pct(stats["duplicate_rows"], rows),
        "type_counts": type_counts,
        "semantic_type_counts": semantic_counts,
        "memory_bytes": memory_bytes,
    }


def _quality_summary(
    fields: list[dict[str, Any]], dataset: dict[str, Any], alerts: list[Any], params: ProfilerParams
) -> dict[str, Any]:
    def mean_of(key: str) -> float:
        values = [field["quality_indicators"][key] for field in fields]
        return round(sum(values) / len(values), 2) if values else 0.0

    overall = round(sum(field["quality_score"] for field in fields) / len(fields), 2) if fields else 0.0
    return {
        "overall_quality_score": overall,
        "quality_grade": quality_grade(overall),
        "completeness_score": mean_of("completeness"),
        "validity_score": mean_of("validity"),
        "consistency_score": mean_of("consistency"),
        "uniqueness_score": mean_of("uniqueness"),
        "accuracy_score": round(100.0 - dataset["duplicate_rows_percentage"], 2),
        "accuracy_meaning": "share of rows that are not exact duplicates of an earlier row",
        "fields_requiring_attention": [
            field["field_name"] for field in fields if field["quality_score"] < params.quality_alert_threshold
        ],
        "critical_issues": sum(alert.severity == "critical" for alert in alerts),
        "warnings": sum(alert.severity in {"high", "medium"} for alert in alerts),
        "grading": {"A": ">= 90", "B": ">= 80", "C": ">= 70", "D": ">= 60", "F": "< 60"},
    }


def quality_grade(score: float) -> str:
    for grade, floor in (("A", 90), ("B", 80), ("C", 70), ("D", 60)):
        if score >= floor:
            return grade
    return "F"


def _pct(part: int | float | None, whole: int) -> float:
    return round(100.0 * (part or 0) / whole, 4) if whole else 0.0


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in shares.items()}
