"""The unified-profiler's parameters: importable without Polars (the API's catalog needs only these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agents.params.common import NullToken, null_tokens_field

AGENT_NAME = "Unified Profiler"
CREDITS = 30


class ProfilerParams(BaseModel):
    """Agensium's six parameters with its defaults, plus ours (documented per field)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="unified-profiler parameters")

    null_alert_threshold: float = Field(50.0, ge=0, le=100, description="Missing % above which an alert is critical")
    categorical_threshold: int = Field(
        20,
        ge=1,
        description="Numbers with at most this many distinct values (and at most categorical_ratio_threshold "
        "of the values distinct) are a categorical code; text is categorical up to max(this, 50) distinct "
        "values that are at most half of its values (agents.profile.semantic)",
    )
    categorical_ratio_threshold: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Distinct/non-null ratio at or below which numbers of at most categorical_threshold "
        "distinct values are categorical (month 1..12 over many rows, not 12 values in 15 rows); also the "
        "ratio under which a continuous column of at most 60 distinct values raises low_cardinality",
    )
    top_n_values: int = Field(10, ge=1, le=100, description="Most frequent values reported per column")
    outlier_iqr_multiplier: float = Field(1.5, gt=0, le=100, description="IQR fence multiplier k")
    outlier_alert_threshold: float = Field(5.0, ge=0, le=100, description="IQR outlier % above which to alert")
    missing_warning_threshold: float = Field(10.0, ge=0, le=100, description="Missing % for a high alert")
    zscore_threshold: float = Field(3.0, gt=0, le=100, description="|z| above which a value is a row-level issue")
    skewness_threshold: float = Field(2.0, gt=0, description="|skewness| above which to alert")
    zeros_alert_threshold: float = Field(10.0, ge=0, le=100, description="Zero % above which to alert")
    high_cardinality_threshold: float = Field(
        95.0, ge=0, le=100, description="Distinct % above which a text column of codes raises high_cardinality"
    )
    imbalance_threshold: float = Field(0.5, ge=0, le=1, description="1 - H/log2(k) above which to alert")
    quality_alert_threshold: float = Field(80.0, ge=0, le=100, description="Field quality below which to alert")
    histogram_bins: int = Field(20, ge=1, le=200, description="Fixed-width histogram bins for numeric columns")
    pii_sample_size: int = Field(1000, ge=10, le=100_000, description="Evenly spaced rows checked by regex")
    pii_match_threshold: float = Field(0.7, gt=0, le=1, description="Share of sampled values matching a pattern")
    null_tokens: list[NullToken] = null_tokens_field()
    max_stored_row_level_issues: int = Field(
        1_000_000, ge=0, le=10_000_000, description="Row-level issues kept for the stored report (total always counted)"
    )
