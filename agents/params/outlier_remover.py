"""The outlier-remover's parameters (Agensium's names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agents.params.common import EffectivenessParams


class OutlierRemoverParams(EffectivenessParams):
    """Per numeric column: bounds from the finite values, cells outside them removed (whole row) or
    replaced."""

    model_config = ConfigDict(extra="forbid", strict=True, title="outlier-remover parameters")

    detection_method: Literal["z_score", "iqr", "percentile"] = Field(
        "iqr",
        description="iqr: [Q1 - k*IQR, Q3 + k*IQR] with linear-interpolated quartiles; z_score: mean +- "
        "z_threshold * std (ddof=1); percentile: [lower_percentile, upper_percentile] quantiles (linear)",
    )
    removal_strategy: Literal["flag", "remove", "impute_mean", "impute_median"] = Field(
        "flag",
        description="flag (ours, the default: Agensium's is remove): keep every row and value, report each outlier "
        "as a row-level issue with its bounds and propose the treatments; remove: drop every row with an outlier "
        "in any analysed column; impute_mean / impute_median: replace the outlier by the mean / median of the "
        "column's non-outlier finite values (integer columns: rounded half away from zero)",
    )
    z_threshold: float = Field(3.0, gt=0, le=100, description="|z| above which a value is an outlier")
    iqr_multiplier: float = Field(1.5, ge=0, le=100, description="IQR fence multiplier k")
    lower_percentile: float = Field(1.0, ge=0, le=100, description="Percentile below which a value is an outlier")
    upper_percentile: float = Field(99.0, ge=0, le=100, description="Percentile above which a value is an outlier")
    columns: list[str] = Field(
        default_factory=list,
        description="Ours: the numeric columns to analyse; [] = every numeric data column",
    )
    outlier_reduction_weight: float = Field(0.5, ge=0, le=1, description="Weight of outliers handled / found")
    data_retention_weight: float = Field(0.3, ge=0, le=1, description="Weight of the share of rows kept")
    column_retention_weight: float = Field(0.2, ge=0, le=1, description="Weight of the share of columns kept")

    @field_validator("columns")
    @classmethod
    def _each_once(cls, columns: list[str]) -> list[str]:
        """A column named twice is analysed once (it would otherwise be two outputs of one name)."""
        return list(dict.fromkeys(columns))

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> Any:
        if self.lower_percentile >= self.upper_percentile:
            raise ValueError("lower_percentile must be below upper_percentile")
        return self
