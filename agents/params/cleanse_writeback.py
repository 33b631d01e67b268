"""The cleanse-writeback's parameters (Agensium's names and defaults, reference/agents.md §1.5)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from agents.params.common import EffectivenessParams


class CleanseWritebackParams(EffectivenessParams):
    """Final integrity checks on the cleaned frame and the cleansing manifest of the chain."""

    model_config = ConfigDict(extra="forbid", strict=True, title="cleanse-writeback parameters")

    verify_numeric_types: bool = Field(
        True,
        description="Columns numeric in the input (or made numeric by a step) are still numeric, and numeric "
        "columns hold no NaN or infinite values",
    )
    verify_datetime_types: bool = Field(
        True,
        description="Date/datetime columns of the input (or made so by a step) are still temporal, with no "
        "value before year 1000 or after 9999 (a sign of a misparsed date)",
    )
    verify_no_new_nulls: bool = Field(
        True,
        description="No step added missing values to a column, except type-fixer (cells it could not parse "
        "become empty, by design)",
    )
    verify_no_duplicates: bool = Field(True, description="No two rows are equal on every data column")
    verify_data_retention: bool = Field(
        True, description="At least min_retention_percentage of the input's rows are kept"
    )
    generate_comprehensive_manifest: bool = Field(
        True, description="Include each step's transformations (per-column changes) in the manifest"
    )
    include_transformation_summary: bool = Field(
        True, description="Include a summary of the actions by type and a timeline in the manifest"
    )
    agent_manifests: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Manifests of agents run elsewhere, by agent id; merged into the manifest after the "
        "chain's own steps (a step of the same agent gets it attached)",
    )
    original_row_count: int | None = Field(
        None, ge=0, description="Rows of the original input; overrides what the chain knows"
    )
    original_column_count: int | None = Field(
        None, ge=0, description="Columns of the original input; overrides what the chain knows"
    )
    min_retention_percentage: float = Field(
        50.0, ge=0, le=100, description="Ours: the retention check fails below this share of the input's rows"
    )
    integrity_weight: float = Field(0.4, ge=0, le=1, description="Weight of integrity checks passed")
    completeness_weight: float = Field(0.3, ge=0, le=1, description="Weight of steps recorded successfully")
    auditability_weight: float = Field(0.3, ge=0, le=1, description="Weight of the manifest's auditability")
    excellent_threshold: float = Field(95.0, ge=0, le=100, description="Score at or above which: excellent")
    good_threshold: float = Field(85.0, ge=0, le=100, description="Score at or above which: good")
