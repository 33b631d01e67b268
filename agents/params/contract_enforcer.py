"""The contract-enforcer's parameters and the data contract's shape (Agensium's names, reference/agents.md §1.6).

A contract comes from the uploaded ``schema.json`` / ``schema.yaml`` or from the ``contract`` parameter (the
parameter wins when both are given); both are validated by :class:`DataContract`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from agents.params.common import AgentParams, EffectivenessParams, NewColumnName, NumberBound

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ContractValue = Annotated[str, StringConstraints(max_length=1000)] | bool | int | float
ContractType = Literal[
    "string",
    "str",
    "text",
    "integer",
    "int",
    "int64",
    "float",
    "float64",
    "double",
    "numeric",
    "number",
    "boolean",
    "bool",
    "date",
    "datetime",
    "timestamp",
]
CANONICAL_TYPES: dict[str, str] = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "int64": "integer",
    "float": "float",
    "float64": "float",
    "double": "float",
    "numeric": "float",
    "number": "float",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "datetime": "datetime",
    "timestamp": "datetime",
}
"""Each accepted type name -> the type it means: string, integer, float, boolean, date or datetime."""


class ValueConstraint(AgentParams):
    """What a column's values must be: one of ``allowed_values``, matching ``pattern``, within min..max."""

    model_config = ConfigDict(extra="forbid", strict=True, title="value constraint")

    allowed_values: list[ContractValue] | None = Field(
        None, max_length=10_000, description="The only values allowed (compared as text unless both are numbers)"
    )
    pattern: str | None = Field(
        None,
        max_length=1000,
        description="Regular expression (Rust regex syntax: linear time, no look-around or back-references) "
        "the whole value, as text, must match",
    )
    min: NumberBound | None = Field(None, description="Smallest allowed number (inclusive)")
    max: NumberBound | None = Field(None, description="Largest allowed number (inclusive)")
    default: ContractValue | None = Field(
        None,
        description="Ours: the value that replaces an invalid one under default_value_strategy 'default' "
        "(none: the cell becomes empty)",
    )

    @model_validator(mode="after")
    def _something_to_check(self) -> Any:
        if self.allowed_values is None and self.pattern is None and self.min is None and self.max is None:
            raise ValueError("give allowed_values, pattern, min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class DataContract(AgentParams):
    """Agensium's contract shape; ``name``, ``version``, ``description`` and ``owner`` are accepted as labels."""

    model_config = ConfigDict(extra="forbid", strict=True, title="data contract")

    required_columns: list[ColumnName] = Field(
        default_factory=list, max_length=10_000, description="Columns that must exist (their empty cells are reported)"
    )
    optional_columns: list[ColumnName] = Field(
        default_factory=list, max_length=10_000, description="Columns that may exist"
    )
    column_types: dict[ColumnName, ContractType] = Field(
        default_factory=dict,
        max_length=10_000,
        description="column -> string, integer, float, boolean, date or datetime (aliases: str, text, int, "
        "int64, float64, double, numeric, number, bool, timestamp)",
    )
    column_mappings: dict[ColumnName, NewColumnName] = Field(
        default_factory=dict, max_length=10_000, description="column in the data -> its name in the contract"
    )
    value_constraints: dict[ColumnName, ValueConstraint] = Field(
        default_factory=dict, max_length=10_000, description="column -> {allowed_values | pattern | min / max}"
    )
    uniqueness_constraints: list[ColumnName | list[ColumnName]] = Field(
        default_factory=list,
        max_length=1000,
        description="Columns (or lists of columns, together) whose values must not repeat",
    )
    name: str | None = Field(None, max_length=256, description="A label for the contract")
    version: str | int | float | None = Field(None, description="A label for the contract's version")
    description: str | None = Field(None, max_length=10_000, description="What the contract is about")
    owner: str | None = Field(None, max_length=256, description="Who owns the contract")

    @field_validator("uniqueness_constraints")
    @classmethod
    def _each_column_once_per_key(cls, constraints: list[str | list[str]]) -> list[str | list[str]]:
        """A key of columns names one at least, and a column named twice in it is checked once (twice would be
        two fields of one name)."""
        if any(not item for item in constraints):
            raise ValueError("a uniqueness constraint given as a list names one column at least")
        return [item if isinstance(item, str) else list(dict.fromkeys(item)) for item in constraints]

    @property
    def is_empty(self) -> bool:
        return not (
            self.required_columns
            or self.optional_columns
            or self.column_types
            or self.column_mappings
            or self.value_constraints
            or self.uniqueness_constraints
        )


class ContractEnforcerParams(EffectivenessParams):
    """How the contract is enforced. By default only lossless changes are made (renames, casts where every
    value converts); dropping columns and emptying or removing invalid values are proposed, not applied."""

    model_config = ConfigDict(extra="forbid", strict=True, title="contract-enforcer parameters")

    contract: DataContract = Field(
        default_factory=DataContract,
        description="The data contract; {} = the uploaded schema.json / schema.yaml, if any (the parameter wins "
        "when both are given)",
    )
    auto_transform: bool = Field(
        True, description="Make the changes below; false: validate and report only (every change proposed)"
    )
    strict_mode: bool = Field(
        False,
        description="Columns outside the contract and invalid values count as critical violations (not warnings)",
    )
    drop_extra_columns: bool = Field(
        False,
        description="Drop the data columns the contract does not name. Ours: false by default (Agensium: true): "
        "they are reported and the drop proposed",
    )
    rename_columns: bool = Field(True, description="Rename columns per column_mappings (never onto an existing name)")
    cast_types: bool = Field(
        True,
        description="Cast columns to column_types when every value converts (text read as type-fixer reads "
        "it); a column with values that do not convert is cast only under default_value_strategy null, "
        "default or drop",
    )
    enforce_values: bool = Field(
        True,
        description="Apply default_value_strategy to values breaking value_constraints; false: they are only reported",
    )
    default_value_strategy: Literal["keep", "null", "default", "drop"] = Field(
        "keep",
        description="What happens to an invalid value (breaking value_constraints, or not converting to its "
        "column type). keep (ours, the default: Agensium's is null): reported as a row-level issue and left as "
        "it is, the other strategies proposed with their counts; null: the cell is emptied; default: the "
        "constraint's default (or empty); drop: the row is removed (listed with the reason)",
    )
    schema_compliance_weight: float = Field(
        0.4, ge=0, le=1, description="Weight of the contract columns present with their type"
    )
    value_compliance_weight: float = Field(0.4, ge=0, le=1, description="Weight of the checked cells that are valid")
    transformation_weight: float = Field(
        0.2, ge=0, le=1, description="Weight of the needed transformations that were applied"
    )
    excellent_threshold: float = Field(95.0, ge=0, le=100, description="Score at or above which: excellent")
    good_threshold: float = Field(80.0, ge=0, le=100, description="Score at or above which: good")
