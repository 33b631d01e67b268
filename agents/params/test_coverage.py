"""The ``test-coverage-agent``'s parameters (Agensium's eight, same names and defaults, plus ours)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.params.common import EffectivenessParams, NumberBound


class RangeRule(BaseModel):
    """Inclusive bounds for a numeric column; either may be left out."""

    model_config = ConfigDict(extra="forbid", strict=True, title="range test")

    min: NumberBound | None = Field(None, description="Smallest allowed value (inclusive)")
    max: NumberBound | None = Field(None, description="Largest allowed value (inclusive)")

    @model_validator(mode="after")
    def _bounds(self) -> Any:
        if self.min is None and self.max is None:
            raise ValueError("a range test needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class FormatRule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, title="format test")

    pattern: str = Field(..., min_length=1, description="Regular expression (Rust regex syntax) every value matches")
    description: str = Field("format", description="What the pattern means, for messages (e.g. 'Valid e-mail')")


class TestCoverageParams(EffectivenessParams):
    """Scores are the pass rates of the declared tests, weighted per test type; a test type with no test
    declared gives its weight to the declared ones (in proportion to their weights)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="test-coverage-agent parameters")
    __test__ = False  # not a pytest test class, despite its name

    uniqueness_weight: float = Field(0.4, ge=0, le=1, description="Weight of the uniqueness tests' pass rate")
    range_weight: float = Field(0.3, ge=0, le=1, description="Weight of the range tests' pass rate")
    format_weight: float = Field(0.3, ge=0, le=1, description="Weight of the format tests' pass rate")
    unique_columns: list[str] = Field(
        default_factory=list,
        description="Columns whose non-null values must all be distinct (nulls are not duplicates, as in SQL UNIQUE)",
    )
    range_tests: dict[str, RangeRule] = Field(
        default_factory=dict,
        description="Column -> {min, max}: inclusive bounds for a numeric column (a text column is parsed as "
        "numbers; a value that is not a number fails the test)",
    )
    format_tests: dict[str, str | FormatRule] = Field(
        default_factory=dict,
        description="Column -> regex or {pattern, description}. The WHOLE value must match: the pattern is "
        "anchored at both ends (Agensium anchors only at the start). Rust regex syntax: no look-around, "
        "no back-references",
    )
    row_null_threshold: float = Field(
        20.0, ge=0, le=100, description="Ours: a row with more than this % of null cells is reported (info)"
    )
    max_stored_row_level_issues: int = Field(
        1_000_000, ge=0, le=10_000_000, description="Ours: row-level issues kept for the stored report (all counted)"
    )

    @model_validator(mode="after")
    def _some_weight(self) -> Any:
        if self.uniqueness_weight + self.range_weight + self.format_weight <= 0:
            raise ValueError("at least one of uniqueness_weight, range_weight, format_weight must be positive")
        return self
