"""The survivorship-resolver's parameters (Agensium's names and defaults, reference/agents.md §1.6), and what
the master agents' parameters share: survivorship rule names and field validation rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.params.common import EffectivenessParams

SurvivorshipRule = Literal[
    "most_complete",
    "most_recent",
    "source_priority",
    "most_frequent",
    "min",
    "max",
    "first",
    "last",
    "quality_score",
    "completeness",
    "richness",
    "freshness",
    "recency",
    "frequency",
    "validation",
    "quality",
]
RECENCY_RULES = frozenset({"most_recent", "freshness", "recency"})
RULES_DESCRIPTION = (
    "most_complete (the longest value), most_recent (latest timestamp_column), source_priority (best-ranked "
    "source), most_frequent, min, max, first, last (file order: primary first, then each source), "
    "quality_score (Agensium's value quality: length, format of e-mail/phone/date columns, "
    "field_validation_rules); aliases completeness and richness = most_complete, freshness and recency = "
    "most_recent, frequency = most_frequent, validation and quality = quality_score. Ties go to the smaller "
    "value as text, then to the row whose whole content sorts first (never to a row's position)"
)
ColumnName = Annotated[str, Field(min_length=1, max_length=1000)]


class FieldValidationRule(BaseModel):
    """What a column's values should look like; each part is optional."""

    model_config = ConfigDict(extra="forbid", strict=True, title="field validation rule")

    pattern: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="Regular expression (Rust regex syntax: no look-around, no back-references) the WHOLE "
        "value must match (anchored at both ends; Agensium anchors only at the start)",
    )
    min_length: int | None = Field(None, ge=0, le=1_000_000, description="Fewest characters a value has")
    allowed_values: list[str] | None = Field(
        None, max_length=10_000, description="The values allowed (compared trimmed and case-insensitively)"
    )


def check_rule_needs(
    rules: list[str], timestamp_column: str | None, source_priority: dict[str, int], field_prefix: str
) -> None:
    """``ValueError`` (a parameter error) when a rule cannot work: most_recent without timestamp_column,
    source_priority without ranks."""
    if timestamp_column is None and any(rule in RECENCY_RULES for rule in rules):
        raise ValueError(f"{field_prefix}: the most_recent rule needs timestamp_column")
    if not source_priority and "source_priority" in rules:
        raise ValueError(f"{field_prefix}: the source_priority rule needs source_priority ranks")


class SurvivorshipResolverParams(EffectivenessParams):
    """Rows with equal match keys form a cluster; where a cluster's rows hold different values for a field,
    the field's rule picks the value that survives, with a confidence. The data goes on unchanged."""

    model_config = ConfigDict(extra="forbid", strict=True, title="survivorship-resolver parameters")

    match_key_columns: list[ColumnName] = Field(
        default_factory=list,
        description="Columns whose equal values (e-mail lowercased, phone digits only, text trimmed and "
        "lowercased) put rows in one cluster; [] = the detected entity key: an e-mail column, else phone, "
        "else national id, else given name + surname + date of birth, else full name + date of birth",
    )
    survivorship_rules: dict[ColumnName, SurvivorshipRule] = Field(
        default_factory=dict, description=f"Column -> rule. Rules: {RULES_DESCRIPTION}"
    )
    source_priority: dict[str, int] = Field(
        default_factory=dict,
        description="Source label -> rank for the source_priority rule; the lower rank wins, unranked sources "
        "come last. Labels are those of source_column, else the upload's (primary, or crm for source_crm.csv)",
    )
    source_column: ColumnName | None = Field(
        None, description="A data column naming each row's source; null = the upload the row came from"
    )
    timestamp_column: ColumnName | None = Field(
        None, description="The column most_recent reads (dates, datetimes, numbers or date text)"
    )
    default_rule: SurvivorshipRule = Field("quality_score", description="The rule of columns without one")
    min_confidence_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="A conflict whose winner's confidence is below it is unresolved (reported for review)",
    )
    field_validation_rules: dict[ColumnName, FieldValidationRule] = Field(
        default_factory=dict,
        description="Column -> {pattern, min_length, allowed_values}: they raise or lower a value's quality "
        "score (pattern +0.2/-0.2, min_length +0.1, allowed_values +0.2)",
    )
    max_reported_conflicts: int = Field(
        200, ge=0, le=10_000, description="Ours: conflicts listed in the report with their competing values"
    )

    @model_validator(mode="after")
    def _rules_can_work(self) -> Any:
        check_rule_needs(
            [self.default_rule, *self.survivorship_rules.values()],
            self.timestamp_column,
            self.source_priority,
            "survivorship_rules/default_rule",
        )
        return self
