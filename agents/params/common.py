"""What parameter models share: strict validation and Agensium's effectiveness weights and thresholds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

DEFAULT_NULL_TOKENS: tuple[str, ...] = (
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "-NaN",
    "NULL",
    "null",
    "None",
    "<NA>",
    "#N/A",
    "#NA",
    "#N/A N/A",
    "-nan",
    "-1.#IND",
    "1.#IND",
    "-1.#QNAN",
    "1.#QNAN",
)
"""Missing-value tokens (PRODUCT.md "Missing values"): pandas' default ``na_values`` minus the empty string
(always missing). Here, free of Polars, for the parameter models; ``agents.values`` applies them."""


def null_tokens_field() -> Any:
    """The ``null_tokens`` parameter of the agents that read text (one definition for all of them)."""
    return Field(
        default_factory=lambda: list(DEFAULT_NULL_TOKENS),
        max_length=1000,
        description="Text values (exactly, after trimming) that are missing values, like an empty field "
        '(pandas\' default list; a float NaN counts as the token NaN, an empty or blank text as ""); [] = '
        "Polars' rule: only fields with nothing in them are missing",
    )


NullToken = Annotated[str, Field(max_length=64)]


def is_column_pattern(name: str) -> bool:
    """Polars reads ``*`` and ``^…$`` given as a column name as patterns (every column; a regular expression): the
    readers rename such columns of the data (agents.readers), and no parameter may give a column such a name."""
    return name == "*" or (name.startswith("^") and name.endswith("$"))


def plain_column_name(name: str) -> str:
    """``name`` when a column may take it; refused when Polars would read it as a pattern (see above)."""
    if is_column_pattern(name):
        raise ValueError(f"'{name}' cannot name a column: Polars reads '*' and '^…$' as patterns of column names")
    return name


NewColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(plain_column_name)]
"""The name a parameter gives a column (a rename's target)."""


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


def _within_a_double(value: int | float) -> int | float:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_DOUBLE_INTEGER:
        raise ValueError("a bound past a double's range (about 1.8e308) bounds nothing: leave it out")
    return value


MAX_DOUBLE_INTEGER = int(1.7976931348623157e308)
NumberBound = Annotated[int | Annotated[float, Field(allow_inf_nan=False)], AfterValidator(_within_a_double)]
"""A range bound: a JSON integer stays an integer (compared exactly with an integer column: agents.bounds), up to a
double's range, past which no number column could be compared with it; a decimal bound is finite."""
