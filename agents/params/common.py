"""What parameter models share: strict validation and Agensium's effectiveness weights and thresholds."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AgentParams(BaseModel):
    """Strict: an unknown key or a value of the wrong type is an error naming the field, never ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class EffectivenessParams(AgentParams):
    """Agensium's clean agents score their own effectiveness 0..100 from three weighted components and
    grade it ``excellent`` (>= excellent_threshold), ``good`` (>= good_threshold) or ``needs_improvement``.
    Subclasses override the defaults where Agensium's differ (e.g. cleanse-writeback 0.4/0.3/0.3, 95/85)."""

    excellent_threshold: float = Field(90.0, ge=0, le=100, description="Score at or above which: excellent")
    good_threshold: float = Field(75.0, ge=0, le=100, description="Score at or above which: good")

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Any:
        if self.good_threshold > self.excellent_threshold:
            raise ValueError("good_threshold must not exceed excellent_threshold")
        return self


def effectiveness_status(score: float, params: EffectivenessParams) -> str:
    if score >= params.excellent_threshold:
        return "excellent"
    if score >= params.good_threshold:
        return "good"
    return "needs_improvement"


def parameter_objects(params: BaseModel) -> dict[str, dict[str, Any]]:
    """Agensium's three-object pattern for ``data``: defaults, the user's overrides (null where not given),
    and the merged parameters actually used."""
    defaults = type(params)().model_dump()
    used = params.model_dump()
    overrides = {key: (used[key] if key in params.model_fields_set else None) for key in defaults}
    return {"defaults": defaults, "overrides": overrides, "parameters": used}
