"""The ``score-risk`` agent's parameters (Agensium's six, same names and defaults, plus ours)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from agents.params.common import AgentParams


class ScoreRiskParams(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True, title="score-risk parameters")

    pii_sample_size: int = Field(
        100, ge=10, le=100_000, description="Evenly spaced rows whose values are matched against the PII patterns"
    )
    high_risk_threshold: float = Field(70.0, ge=0, le=100, description="Field risk score at or above which: high")
    medium_risk_threshold: float = Field(40.0, ge=0, le=100, description="Field risk score at or above which: medium")
    pii_detection_enabled: bool = Field(
        True, description="Match sampled values against PII patterns (e-mail, phone, SSN, card, IBAN, IP): +80"
    )
    sensitive_field_detection_enabled: bool = Field(
        True, description="Flag columns whose name marks personal data or secrets (email, ssn, password, ...): +60"
    )
    governance_check_enabled: bool = Field(
        True,
        description="Map risky fields to compliance frameworks (GDPR, CCPA, HIPAA, PCI-DSS) and report governance "
        "gaps (sensitive values stored in clear text)",
    )
    pii_match_threshold: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="Ours: share of sampled non-null values that must match one PII pattern (strictly more than "
        "this) for the column to count as PII by value; Agensium uses 0.5",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Any:
        if self.medium_risk_threshold > self.high_risk_threshold:
            raise ValueError("medium_risk_threshold must not exceed high_risk_threshold")
        return self
