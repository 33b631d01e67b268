"""The ``readiness-rater``'s parameters (Agensium's five, same names and defaults, plus ours)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import AgentParams


class ReadinessRaterParams(AgentParams):
    """Readiness = weighted mean of completeness, consistency and schema health; weights that do not sum
    to 1 are normalised by their sum."""

    model_config = ConfigDict(extra="forbid", strict=True, title="readiness-rater parameters")

    ready_threshold: float = Field(80.0, ge=0, le=100, description="Readiness score at or above which: ready")
    needs_review_threshold: float = Field(
        50.0, ge=0, le=100, description="Readiness score at or above which: needs_review (below: not_ready)"
    )
    completeness_weight: float = Field(0.3, ge=0, le=1, description="Weight of completeness (non-null cells %)")
    consistency_weight: float = Field(
        0.3, ge=0, le=1, description="Weight of consistency (text columns of numbers that fail to parse)"
    )
    schema_health_weight: float = Field(
        0.4, ge=0, le=1, description="Weight of schema health (empty, unnamed and mixed-type columns)"
    )
    max_stored_row_level_issues: int = Field(
        1_000_000, ge=0, le=10_000_000, description="Ours: row-level issues kept for the stored report (all counted)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.needs_review_threshold > self.ready_threshold:
            raise ValueError("needs_review_threshold must not exceed ready_threshold")
        if self.completeness_weight + self.consistency_weight + self.schema_health_weight <= 0:
            raise ValueError("at least one component weight must be positive")
        return self
