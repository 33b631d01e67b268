"""The semantic-mapper's parameters (Agensium's names and defaults, reference/agents.md §1.6)."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from agents.params.common import EffectivenessParams, NewColumnName

STANDARD_NAMES: tuple[str, ...] = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "address",
    "city",
    "state",
    "country",
    "zip_code",
    "price",
    "date",
    "birth_date",
    "created_date",
    "updated_date",
    "status",
    "gender",
    "age",
    "quantity",
    "id",
    "customer_id",
    "order_id",
    "product_id",
)
"""Agensium's standard vocabulary of column names."""

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
CellText = Annotated[str, StringConstraints(max_length=1000)]


class SemanticMapperParams(EffectivenessParams):
    """How columns are mapped to the standard vocabulary and values to their standard spelling."""

    model_config = ConfigDict(extra="forbid", strict=True, title="semantic-mapper parameters")

    custom_column_mappings: dict[ColumnName, NewColumnName] = Field(
        default_factory=dict,
        max_length=10_000,
        description="column -> standard name (any name; confidence 1, method custom); takes precedence over "
        "detection. A column that does not exist is an error",
    )
    custom_value_mappings: dict[ColumnName, dict[CellText, CellText]] = Field(
        default_factory=dict,
        max_length=10_000,
        description="column (its name in the data or its standard name) -> {value: replacement}; a value is "
        "replaced when the cell equals it exactly; text columns only",
    )
    confidence_threshold: float = Field(
        0.7, ge=0, le=1, description="Lowest confidence at which a detected mapping counts (and is applied)"
    )
    auto_detect_semantics: bool = Field(
        True,
        description="Detect mappings from column names and values (agents.master.roles); false: only "
        "custom_column_mappings",
    )
    apply_mappings: bool = Field(
        True,
        description="Rename columns to their standard names where the mapping is sure (custom_column_mappings, or "
        "the whole column name is an alias its values agree with) and nothing is lost (a name already taken is "
        "reported, not applied); guesses (from the values alone, or a word of a longer name) are proposed with the "
        "custom_column_mappings that apply them. Also replace values per custom_value_mappings (and the built-in "
        "spellings when apply_builtin_value_mappings is true); false: report and propose only",
    )
    apply_builtin_value_mappings: bool = Field(
        False,
        description="Ours (Agensium applies them with apply_mappings): replace the values of country columns by "
        "their built-in standard spelling (U.S.A, United States -> USA). False: the replacements are proposed, "
        "each spelling with the cells it would change",
    )
    mapping_coverage_weight: float = Field(0.4, ge=0, le=1, description="Weight of the share of columns mapped")
    confidence_weight: float = Field(0.3, ge=0, le=1, description="Weight of the mean confidence of the mappings")
    value_consistency_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of the share of mappable cells in their standard spelling afterwards"
    )
