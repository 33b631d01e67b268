"""The key-identifier's parameters (Agensium's names and defaults, reference/agents.md §1.6)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from agents.params.common import EffectivenessParams

TableName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ReferenceValue = Annotated[str, StringConstraints(max_length=1000)] | int | float


class KeyIdentifierParams(EffectivenessParams):
    """Which columns (or combinations) identify a row, an entity, or point into a reference table."""

    model_config = ConfigDict(extra="forbid", strict=True, title="key-identifier parameters")

    pk_uniqueness_threshold: float = Field(
        99.0,
        ge=0,
        le=100,
        description="Primary key candidate: at least this percentage of the non-null values are distinct (a "
        "combination of columns: of the rows)",
    )
    pk_null_threshold: float = Field(
        0.0, ge=0, le=100, description="Primary key candidate: at most this percentage of the rows are null"
    )
    entity_key_uniqueness_min: float = Field(
        50.0, ge=0, le=100, description="Entity key candidate: at least this percentage of the values distinct"
    )
    entity_key_uniqueness_max: float = Field(
        99.0,
        ge=0,
        le=100,
        description="Entity key candidate: below this percentage distinct (an entity appears on several rows)",
    )
    fk_overlap_threshold: float = Field(
        70.0,
        ge=0,
        le=100,
        description="Foreign key candidate: at least this percentage of the column's distinct values are in a "
        "reference table",
    )
    reference_tables: dict[TableName, list[ReferenceValue]] = Field(
        default_factory=dict,
        max_length=100,
        description="table name -> its key values; values are compared as trimmed text (1 and '1' match). "
        "{} = no foreign key analysis",
    )
    analyze_composite_keys: bool = Field(
        True, description="Look for combinations of columns that identify a row when no single column does"
    )
    max_composite_key_columns: int = Field(3, ge=2, le=5, description="Most columns in a composite key")
    max_composite_combinations: int = Field(
        200,
        ge=1,
        le=10_000,
        description="Ours: most column combinations tried for composite keys (the most distinct columns "
        "first); the report says when the cap was reached",
    )
    uniqueness_weight: float = Field(0.4, ge=0, le=1, description="Weight of the distinct share in the key score")
    completeness_weight: float = Field(0.3, ge=0, le=1, description="Weight of the non-null share in the key score")
    pattern_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of the key-like name or values (UUIDs, sequences) in the key score"
    )

    @model_validator(mode="after")
    def _entity_range_ordered(self) -> Any:
        if self.entity_key_uniqueness_min > self.entity_key_uniqueness_max:
            raise ValueError("entity_key_uniqueness_min must not exceed entity_key_uniqueness_max")
        return self

    @model_validator(mode="after")
    def _reference_tables_bounded(self) -> Any:
        total = sum(len(values) for values in self.reference_tables.values())
        if total > 1_000_000:
            raise ValueError(f"reference_tables hold {total:,} values; at most 1,000,000 in all")
        return self
