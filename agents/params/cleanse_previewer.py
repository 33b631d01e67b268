"""Parameters of ``cleanse-previewer`` (Agensium names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agents.params.common import AgentParams, EffectivenessParams

RuleType = Literal["drop_nulls", "impute_nulls", "remove_outliers", "drop_duplicates", "drop_columns", "convert_types"]


class PreviewRule(AgentParams):
    """One cleaning rule to simulate (Agensium's rule object)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="preview rule")

    type: RuleType = Field(..., description="What the rule does")
    target_columns: list[str] = Field(
        default_factory=list,
        description="Columns the rule applies to; empty: every column (drop_nulls, drop_duplicates), every column "
        "with nulls (impute_nulls), every numeric column (remove_outliers); required for drop_columns and "
        "convert_types",
    )
    rule_id: str | None = Field(None, description="Name of the rule in the report (default rule_<n>)")
    description: str | None = Field(None, description="What the rule is for, shown in the report")
    strategy: Literal["mean", "median", "mode", "constant"] = Field(
        "mean", description="impute_nulls: fill value; mean and median need numeric columns"
    )
    fill_value: str | int | float | bool | None = Field(None, description="impute_nulls with constant: the value")
    method: Literal["iqr", "zscore", "z_score"] = Field("iqr", description="remove_outliers: detection method")
    threshold: float | None = Field(
        None, gt=0, description="remove_outliers: the IQR multiplier or z threshold (overrides the two below)"
    )
    iqr_multiplier: float = Field(1.5, gt=0, description="remove_outliers iqr: outside [Q1 - k IQR, Q3 + k IQR]")
    z_threshold: float = Field(3.0, gt=0, description="remove_outliers zscore: |x - mean| / std (ddof 1) above this")
    target_type: Literal["numeric", "float", "integer", "boolean", "date", "datetime", "string"] = Field(
        "float", description="convert_types: the type to convert to (numeric = float); text is read as type-fixer does"
    )

    @field_validator("target_columns")
    @classmethod
    def _each_once(cls, columns: list[str]) -> list[str]:
        """A column named twice is a target once (it would otherwise be two outputs of one name)."""
        return list(dict.fromkeys(columns))

    @model_validator(mode="after")
    def _complete(self) -> Any:
        if self.type == "impute_nulls" and self.strategy == "constant" and self.fill_value is None:
            raise ValueError("impute_nulls with strategy constant needs fill_value")
        if self.type in ("drop_columns", "convert_types") and not self.target_columns:
            raise ValueError(f"{self.type} needs target_columns")
        return self


class CleansePreviewerParams(EffectivenessParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="cleanse-previewer parameters")

    preview_rules: list[PreviewRule] = Field(
        default_factory=list,
        description="Rules to simulate, each on the unchanged input; empty: a default set derived from the data "
        "(drop exact duplicate rows; impute nulls with the median for numeric columns, the mode for others)",
    )
    impact_threshold_high: float = Field(
        10.0, ge=0, le=100, description="% change (rows, nulls, mean, std) at or above which a rule is high impact"
    )
    impact_threshold_medium: float = Field(
        5.0, ge=0, le=100, description="% change at or above which a rule is medium impact"
    )
    confidence_level: float = Field(
        0.95,
        ge=0.8,
        le=0.99,
        description="Confidence level of the test whether a rule shifts a column's mean (normal approximation)",
    )
    calculate_distributions: bool = Field(True, description="Compare skewness and kurtosis")
    compare_statistics: bool = Field(True, description="Compare mean, median, std, min and max")
    analyze_correlations: bool = Field(
        False, description="Compare Pearson correlations between numeric columns (first 20 numeric columns)"
    )
    accuracy_weight: float = Field(0.4, ge=0, le=1, description="Weight of rules simulated without error")
    safety_weight: float = Field(0.3, ge=0, le=1, description="Weight of safety (100 - 15/high - 5/medium - 20 unsafe)")
    completeness_weight: float = Field(0.3, ge=0, le=1, description="Weight of completeness (100 if any rule ran)")

    @model_validator(mode="after")
    def _impact_ordered(self) -> Any:
        if self.impact_threshold_medium > self.impact_threshold_high:
            raise ValueError("impact_threshold_medium must not exceed impact_threshold_high")
        return self
