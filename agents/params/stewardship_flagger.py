"""The stewardship-flagger's parameters (Agensium's names and defaults, reference/agents.md §1.6)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.params.common import EffectivenessParams, NumberBound
from agents.params.survivorship_resolver import ColumnName, FieldValidationRule

TaskSeverity = Literal["critical", "high", "medium", "low"]
Operator = Literal["eq", "ne", "gt", "lt", "contains"]


class Bounds(BaseModel):
    """Inclusive bounds; either may be left out."""

    model_config = ConfigDict(extra="forbid", strict=True, title="bounds")

    min: NumberBound | None = Field(None, description="Smallest expected value (inclusive)")
    max: NumberBound | None = Field(None, description="Largest expected value (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        if self.min is None and self.max is None:
            raise ValueError("bounds need min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class Condition(BaseModel):
    """When a row needs review: ``column operator value``. eq/ne compare numbers as numbers, booleans as
    booleans and anything else as trimmed text; gt/lt compare numbers (text columns are read as numbers) or,
    on a date/datetime column, dates written as text (2024-01-31); contains looks for the text as it is
    (not a pattern). An empty cell never meets a condition."""

    model_config = ConfigDict(extra="forbid", strict=True, title="business rule condition")

    column: ColumnName = Field(..., description="The column tested")
    operator: Operator = Field(..., description="eq, ne, gt, lt or contains")
    value: str | int | float | bool = Field(..., description="The value compared with")


class BusinessRule(BaseModel):
    """A row meeting the condition becomes a review task of this severity with this action."""

    model_config = ConfigDict(extra="forbid", strict=True, title="business rule")

    name: str = Field("custom_rule", min_length=1, max_length=200, description="The rule's name, shown in tasks")
    condition: Condition
    severity: TaskSeverity = Field("medium", description="critical, high, medium or low")
    action: str = Field("Review required", max_length=1000, description="What the steward should do")


class SeverityWeights(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, title="severity weights")

    critical: float = Field(4.0, ge=0, description="Weight of a critical task in the stewardship score")
    high: float = Field(3.0, ge=0, description="Weight of a high-severity task")
    medium: float = Field(2.0, ge=0, description="Weight of a medium-severity task")
    low: float = Field(1.0, ge=0, description="Weight of a low-severity task")


def _default_outlier_thresholds() -> dict[str, Bounds]:
    return {"age": Bounds(min=0, max=120), "percentage": Bounds(min=0, max=100)}


class StewardshipFlaggerParams(EffectivenessParams):
    """Every finding is a task in the review queue (stewardship_queue.csv) with its severity, reason and
    action; the data goes on unchanged."""

    model_config = ConfigDict(extra="forbid", strict=True, title="stewardship-flagger parameters")

    required_columns: list[ColumnName] = Field(
        default_factory=list,
        description="Columns every row must fill (an empty or blank cell is a high-severity task; a column "
        "missing from the data a critical one)",
    )
    confidence_threshold: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Golden records (from golden-record-builder earlier in the chain) whose trust score is "
        "below it are tasks (high below 0.3, else medium)",
    )
    field_validation_rules: dict[ColumnName, FieldValidationRule] = Field(
        default_factory=dict,
        description="Column -> {pattern, min_length, allowed_values}; a filled value failing any is a "
        "medium-severity task",
    )
    outlier_thresholds: dict[str, Bounds] = Field(
        default_factory=_default_outlier_thresholds,
        description="Column name -> {min, max}: applies to the columns of that name (compared case- and "
        "punctuation-insensitively: Age, AGE); a number outside is a medium-severity task, text that is not a "
        "number is left alone",
    )
    duplicate_key_columns: list[ColumnName] = Field(
        default_factory=list,
        description="Rows equal on all of these columns (none empty) are high-severity tasks, each naming "
        "the group's first row",
    )
    business_rules: list[BusinessRule] = Field(
        default_factory=list,
        max_length=1000,
        description="[{name, condition: {column, operator eq/ne/gt/lt/contains, value}, severity, action}]: a "
        "row meeting the condition is a task",
    )
    severity_weights: SeverityWeights = Field(
        default_factory=SeverityWeights, description="Weights of the severities in the stewardship score"
    )
    check_role_formats: bool = Field(
        True,
        description="Ours: filled values of e-mail and phone columns (by detected role) with an invalid format "
        "are medium-severity tasks, unless field_validation_rules covers the column",
    )
