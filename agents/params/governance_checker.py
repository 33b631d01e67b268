"""The ``governance-checker``'s parameters (Agensium's, same names and defaults, plus ours)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import AgentParams


class GovernanceCheckerParams(AgentParams):
    """Governance = weighted mean of lineage, consent and classification scores; each is the mean, over the
    category's required fields, of the share of rows holding a usable value (0 for a missing field).
    Weights that do not sum to 1 are normalised by their sum."""

    model_config = ConfigDict(extra="forbid", strict=True, title="governance-checker parameters")

    lineage_weight: float = Field(0.3, ge=0, le=1, description="Weight of the lineage score")
    consent_weight: float = Field(0.4, ge=0, le=1, description="Weight of the consent score")
    classification_weight: float = Field(0.3, ge=0, le=1, description="Weight of the classification score")
    compliance_threshold: float = Field(
        80.0, ge=0, le=100, description="Governance score at or above which the status is compliant"
    )
    needs_review_threshold: float = Field(
        60.0,
        ge=0,
        le=100,
        description="Governance score at or above which the status is partially_compliant (below: non_compliant)",
    )
    required_lineage_fields: list[str] = Field(
        default_factory=list, description="Columns that must record where each row came from (e.g. source_system)"
    )
    required_consent_fields: list[str] = Field(
        default_factory=list, description="Columns that must record consent (e.g. consent_status, opt_in)"
    )
    required_classification_fields: list[str] = Field(
        default_factory=list,
        description="Ours (Agensium reads it but does not publish it): columns that must record each row's data "
        "classification or sensitivity",
    )
    valid_consent_statuses: list[str] = Field(
        default_factory=lambda: ["granted", "denied", "withdrawn", "pending"],
        description="Allowed values (case-insensitive) of consent fields whose name contains 'status'",
    )
    detect_fields_by_name: bool = Field(
        True,
        description="Ours: for a category with no required fields named, use the columns whose names look like "
        "lineage / consent / classification fields (reported as detected)",
    )
    pii_sample_size: int = Field(
        100, ge=10, le=100_000, description="Ours: evenly spaced rows checked for PII to flag unclassified PII"
    )
    max_stored_row_level_issues: int = Field(
        1_000_000, ge=0, le=10_000_000, description="Ours: row-level issues kept for the stored report (all counted)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.needs_review_threshold > self.compliance_threshold:
            raise ValueError("needs_review_threshold must not exceed compliance_threshold")
        if self.lineage_weight + self.consent_weight + self.classification_weight <= 0:
            raise ValueError("at least one of lineage_weight, consent_weight, classification_weight must be positive")
        return self
