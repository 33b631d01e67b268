"""Parameters of ``field-standardization`` (Agensium names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from agents.params.common import AgentParams, EffectivenessParams


class UnitConversion(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="unit conversion")

    factor: float = Field(..., gt=0, description="Multiplier from this unit to target_unit (no offsets)")
    target_unit: str = Field(..., min_length=1, description="Unit written after the converted number")


class FieldStandardizationParams(EffectivenessParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="field-standardization parameters")

    case_strategy: Literal["preserve", "lowercase", "uppercase", "titlecase", "none"] = Field(
        "preserve",
        description="Case applied to text values (not to synonym targets, converted units or formatted dates, "
        "which are written as configured). preserve (ours, the default: Agensium's is lowercase) and none keep "
        "the case as written; columns with values differing only in case are then proposed for lowercase",
    )
    trim_whitespace: bool = Field(
        True,
        description="Remove leading and trailing whitespace, and invisible characters (zero-width spaces, word "
        "joiners, byte-order marks) anywhere",
    )
    normalize_internal_spacing: bool = Field(
        True,
        description="Collapse runs of spaces and tabs into one space and drop the spaces around a line break; a "
        "multi-line value keeps its line breaks",
    )
    apply_synonyms: bool = Field(True, description="Apply synonym_mappings")
    synonym_mappings: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="column -> {variant: standard value}; whole values, matched ignoring case (after trimming); "
        "a standard value in another case is also rewritten to it",
    )
    unit_standardization: bool = Field(False, description="Apply unit_mappings")
    unit_mappings: dict[str, dict[str, UnitConversion]] = Field(
        default_factory=dict,
        description="column -> {unit: {factor, target_unit}}: a value '<number> <unit>' (unit matched ignoring "
        "case) becomes '<number * factor> <target_unit>' (rounded to 6 decimals); the column stays text",
    )
    date_standardization: bool = Field(
        True,
        description="Rewrite the dates of text date columns (>= 70 % of values read as dates) in target_date_format; "
        "Date/Datetime columns are left typed, values with a time of day are left as they are",
    )
    target_date_format: str = Field(
        "%Y-%m-%d", min_length=2, description="strftime format of standardized dates (year, month and day)"
    )
    target_columns: list[str] = Field(
        default_factory=list, description="Columns to standardize (empty: every text column)"
    )
    preserve_columns: list[str] = Field(default_factory=list, description="Columns never changed")
    standardization_effectiveness_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of the reduction in distinct-value variants in the score"
    )
    data_retention_weight: float = Field(0.3, ge=0, le=1, description="Weight of rows kept in the score")
    column_retention_weight: float = Field(0.2, ge=0, le=1, description="Weight of columns kept in the score")
