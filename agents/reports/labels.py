"""What the Excel report shows instead of a raw key: ``missing_cells_percentage`` → "Missing cells (%)".

One map (``LABELS``) for the keys whose words alone read badly, and a fallback for every other key:
underscores become spaces, the first letter is capitalised, known abbreviations are written in capitals
(``pii`` → PII) and a unit at the end goes in brackets (``_percentage`` → "(%)", ``_ms`` → "(ms)"). A
dotted path labels each part: ``details.pii.type`` → "Details › PII › Type".

The user's own column names are never relabelled (``dep_delay`` stays ``dep_delay``): the callers pass the
names to keep. Parameter names are not labelled either: they are what a user writes in parameters.json.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

LABELS: dict[str, str] = {
    "missing_cells_percentage": "Missing cells (%)",
    "null_percentage": "Nulls (%)",
    "null_count": "Nulls",
    "unique_count": "Distinct values",
    "unique_percentage": "Distinct (%)",
    "non_null_count": "Non-null values",
    "total_rows": "Rows",
    "total_columns": "Columns",
    "total_records": "Records",
    "row_count": "Rows",
    "std": "Standard deviation",
    "p5": "5th percentile",
    "p25": "25th percentile",
    "p75": "75th percentile",
    "p95": "95th percentile",
    "iqr": "IQR",
    "skewness": "Skewness",
    "entropy": "Entropy (bits)",
    "polars_dtype": "Polars dtype",
    "data_type": "Type",
    "field_name": "Field",
    "column_a": "Column A",
    "column_b": "Column B",
    "field_id": "Field id",
    "row_index": "Row",
    "row_index_base": "Row numbers start at",
    "row_level_issues_total": "Row-level issues",
    "row_level_issues_stored": "Row-level issues kept",
    "row_level_issues_truncated": "Row-level issues cut short",
    "row_level_issues_by_type": "Row-level issues by type",
    "execution_time_ms": "Time (ms)",
    "memory_bytes": "Memory (bytes)",
    "js_divergence": "Jensen–Shannon divergence",
    "wasserstein_normed": "Wasserstein (normed)",
    "p_value": "p-value",
    "psi": "PSI",
    "psi_score": "PSI",
    "cramers_v": "Cramér's V",
    "pearson": "Pearson",
    "spearman": "Spearman",
    "estimated_pii_type": "PII type",
    "estimated_sensitivity_level": "Sensitivity",
    "quality_grade": "Quality grade",
    "overall_quality_score": "Overall quality score",
    "pass_rate": "Pass rate",
    "alerts_total": "Alerts",
}
ABBREVIATIONS = {
    "pii": "PII",
    "psi": "PSI",
    "iqr": "IQR",
    "id": "id",
    "ks": "KS",
    "js": "JS",
    "csv": "CSV",
    "json": "JSON",
    "url": "URL",
    "gdpr": "GDPR",
    "ccpa": "CCPA",
    "hipaa": "HIPAA",
    "utc": "UTC",
}
UNITS = {"percentage": "%", "percent": "%", "pct": "%", "ms": "ms", "seconds": "s", "bytes": "bytes"}
PATH_SEPARATOR = " › "


def label(key: str, keep: Collection[str] = ()) -> str:
    """The words a reader sees for ``key`` (a dotted path labels each part); names in ``keep`` stay as they are."""
    if key in keep:
        return key
    if "." not in key:
        return _words(key)
    return PATH_SEPARATOR.join(part if part in keep else _words(part) for part in key.split(".") if part)


@lru_cache(maxsize=4096)
def _words(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if not key or " " in key or not key.replace("_", "").replace("-", "").isalnum():
        return key  # already words, or something not snake_case: shown as it is
    words = [word for word in key.split("_") if word]
    if not words:
        return key
    unit = UNITS.get(words[-1].lower()) if len(words) > 1 else None
    if unit:
        words = words[:-1]
    words = [ABBREVIATIONS.get(word.lower(), word) for word in words]
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return f"{text} ({unit})" if unit else text
