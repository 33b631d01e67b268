"""Parameters of ``quarantine-agent`` (Agensium names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import AgentParams, EffectivenessParams, NumberBound

ExpectedType = Literal["integer", "float", "numeric", "string", "boolean", "date", "datetime"]


class RangeConstraint(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="range constraint")

    min: NumberBound | None = Field(None, description="Smallest allowed value (inclusive); none: no lower bound")
    max: NumberBound | None = Field(None, description="Largest allowed value (inclusive); none: no upper bound")

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class QuarantineAgentParams(EffectivenessParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="quarantine-agent parameters")

    detect_missing_fields: bool = Field(
        True, description="Quarantine rows where a required field is null, empty or whitespace (or NaN)"
    )
    detect_type_mismatches: bool = Field(
        True, description="Quarantine rows whose values do not fit expected_schema (nulls are not mismatches)"
    )
    detect_out_of_range: bool = Field(True, description="Quarantine rows with values outside range_constraints")
    detect_invalid_formats: bool = Field(
        True, description="Quarantine rows whose values do not fully match format_constraints"
    )
    detect_broken_records: bool = Field(
        False,
        description="Quarantine rows where every field is empty. Ours: false by default (Agensium: true): such rows "
        "are counted and proposed (several of them are exact duplicates, which duplicate-resolver removes)",
    )
    detect_schema_mismatches: bool = Field(
        True,
        description="Report expected_schema columns missing from the data (and columns not in it) as issues; "
        "this removes no rows",
    )
    required_fields: list[str] = Field(default_factory=list, description="Columns that must have a value")
    range_constraints: dict[str, RangeConstraint] = Field(
        default_factory=dict,
        description="column -> {min, max} (inclusive); for text columns the values that read as numbers are "
        "checked, the others are left to the type check; a text column none of whose values reads as a number "
        "is refused (INVALID_PARAMETERS)",
    )
    format_constraints: dict[str, str] = Field(
        default_factory=dict,
        description="column -> regular expression (Rust regex syntax) that the whole value must match, or a "
        "named format: email, phone, url, uuid, zip (US ZIP / ZIP+4) or date",
    )
    expected_schema: dict[str, ExpectedType] = Field(
        default_factory=dict,
        description="column -> integer, float, numeric, string, boolean, date or datetime; text values are read "
        "as type-fixer converts them by default (e.g. '1,234' is numeric, 'yes' is boolean; '$12' and '5%' are "
        "not numbers: type-fixer only proposes converting currency and percentages)",
    )
    quarantine_reduction_weight: float = Field(
        0.5, ge=0, le=1, description="Weight of invalid rows kept out of the clean data in the score"
    )
    data_integrity_weight: float = Field(0.3, ge=0, le=1, description="Weight of the clean-row share in the score")
    processing_efficiency_weight: float = Field(
        0.2, ge=0, le=1, description="Weight of processing efficiency (100 if < 50 % quarantined, else 50)"
    )
