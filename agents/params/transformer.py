"""The transformer's parameters (tool ``transform-my-data``): an ordered list of whitelisted operations as
JSON, and/or short English commands that a grammar turns into exactly those operations
(agents.transform.commands). Nothing here or downstream executes text: every operation is data, every
expression is parsed by a restricted grammar into a tree of whitelisted nodes.

Column names in operations are resolved against the data before anything runs (agents.transform.resolve):
exact, then case-insensitive, then a close fuzzy match when it is the only one; anything else is refused
with suggestions. Literal values are typed by the column's type (``"18"`` against an integer column is 18;
``"abc"`` is refused). The resolved operations are the task's ``recipe.json``: applied again to the same
parent data they give byte-identical output.

Free of Polars (the API validates with it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator

from agents.params.common import AgentParams

MAX_OPERATIONS = 200
MAX_COMMAND_CHARS = 500
MAX_EXPRESSION_CHARS = 1000

Column = Annotated[str, Field(min_length=1, max_length=256)]
Columns = Annotated[list[Column], Field(min_length=1, max_length=10_000)]
Scalar = str | int | float | bool | None
"""A literal. Text is typed by the column it meets (a number for a numeric column, ISO text for dates)."""

Comparator = Literal[
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "is_null",  # no value: empty (after the reader's missing-value handling)
    "is_not_null",
    "in",  # value: a list
    "not_in",
    "between",  # value: [low, high], both ends included
    "contains",  # text: a literal substring (never a pattern)
    "starts_with",
    "ends_with",
]


class _Strict(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True)


class Comparison(_Strict):
    """``column cmp value`` (or ``column cmp value_column``). As in SQL, a row whose column (or
    ``value_column``) is empty satisfies only ``is_null``: every other comparison, ``!=`` and ``not_in``
    included, cannot be decided and does not hold. Text comparisons are case-sensitive unless
    ``case_sensitive`` is false."""

    column: Column
    cmp: Comparator
    value: Scalar | list[Scalar] = None
    value_column: Column | None = Field(None, description="compare with another column instead of a value")
    case_sensitive: bool = True


class AllOf(_Strict):
    all: Annotated[list[Condition], Field(min_length=1, max_length=100)]


class AnyOf(_Strict):
    any: Annotated[list[Condition], Field(min_length=1, max_length=100)]


class NotOf(_Strict):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


Condition = Comparison | AllOf | AnyOf | NotOf


class FilterRows(_Strict):
    """``remove``: drop the rows where the condition holds; ``keep``: keep only those (a row where it
    cannot be decided, e.g. ``age > 5`` on an empty age, does not hold)."""

    op: Literal["filter"]
    action: Literal["keep", "remove"]
    where: Condition


class DropColumns(_Strict):
    op: Literal["drop_columns"]
    columns: Columns


class KeepColumns(_Strict):
    """Keep only these columns, in the data's order."""

    op: Literal["keep_columns"]
    columns: Columns


class RenameColumns(_Strict):
    op: Literal["rename"]
    mapping: Annotated[dict[Column, Column], Field(min_length=1)]


class ReorderColumns(_Strict):
    """These columns first, in this order; the others after them in their order."""

    op: Literal["reorder"]
    columns: Columns


CastTarget = Literal["number", "integer", "float", "text", "date", "datetime", "boolean"]


class CastColumns(_Strict):
    """``number``: whole numbers when every value is one, else decimals. ``format``: a strftime format for
    ``date``/``datetime`` from text (ISO 8601 when absent), or for ``text`` from a date. ``on_invalid``:
    ``fail`` refuses the whole task when a value does not convert (with examples), ``null`` empties it and
    says how many."""

    op: Literal["cast"]
    columns: Columns
    to: CastTarget
    format: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    on_invalid: Literal["fail", "null"] = "fail"


FillStrategy = Literal["constant", "mean", "median", "mode", "previous", "next"]


class FillNulls(_Strict):
    """Fill empty cells: a ``constant`` (``value``, typed by the column), the column's ``mean``/``median``
    (numeric, filled unrounded: a fraction that fills a cell makes an integer column decimal, as in pandas; a whole
    statistic, or nothing to fill, leaves it as it is), ``mode`` (most frequent, ties to the smallest),
    ``previous``/``next`` (the nearest value above/below in the current row order)."""

    op: Literal["fill_nulls"]
    columns: Columns
    strategy: FillStrategy
    value: Scalar = None


class Deduplicate(_Strict):
    """Rows equal on ``columns`` (all columns when absent) are one: the ``first`` or ``last`` is kept, in the
    current row order."""

    op: Literal["deduplicate"]
    columns: Columns | None = None
    keep: Literal["first", "last"] = "first"


class SortKey(_Strict):
    column: Column
    descending: bool = False


class SortRows(_Strict):
    """Stable: rows equal on every key keep their order. Empty values last unless ``nulls_last`` is false."""

    op: Literal["sort"]
    by: Annotated[list[SortKey], Field(min_length=1, max_length=100)]
    nulls_last: bool = True


class DeriveColumn(_Strict):
    """A new column from an expression of the restricted grammar (agents.transform.expressions): column
    names, numbers, quoted text, ``+ - * / %``, parentheses and a few whitelisted functions. Nothing else."""

    op: Literal["derive"]
    column: Column
    expression: Annotated[str, Field(min_length=1, max_length=MAX_EXPRESSION_CHARS)]


class TrimText(_Strict):
    """Leading and trailing whitespace off text cells (``columns`` absent: every text column)."""

    op: Literal["trim"]
    columns: Columns | None = None


class ChangeCase(_Strict):
    op: Literal["case"]
    columns: Columns | None = None
    to: Literal["lower", "upper", "title"]


class ReplaceValues(_Strict):
    """Cells equal to ``old`` become ``new`` (``whole_value``); or, in text, every occurrence of the literal
    substring ``old`` (never a pattern)."""

    op: Literal["replace"]
    columns: Columns
    old: Scalar
    new: Scalar
    whole_value: bool = True


Operation = Annotated[
    FilterRows
    | DropColumns
    | KeepColumns
    | RenameColumns
    | ReorderColumns
    | CastColumns
    | FillNulls
    | Deduplicate
    | SortRows
    | DeriveColumn
    | TrimText
    | ChangeCase
    | ReplaceValues,
    Field(discriminator="op"),
]


def _not_blank(command: str) -> str:
    if not command.strip():
        raise ValueError("the command is empty")
    return command


Command = Annotated[str, Field(min_length=1, max_length=MAX_COMMAND_CHARS), AfterValidator(_not_blank)]
"""A command: a blank one (spaces only) is refused as an empty one is, when the task is created."""


class TransformerParams(AgentParams):
    """``operations`` run first, then ``commands`` (each parsed into operations), in order."""

    model_config = ConfigDict(extra="forbid", strict=True, title="transformer parameters")

    operations: Annotated[list[Operation], Field(max_length=MAX_OPERATIONS)] = Field(
        default_factory=list, description="Whitelisted operations as JSON, applied in order"
    )
    commands: Annotated[list[Command], Field(max_length=MAX_OPERATIONS)] = Field(
        default_factory=list,
        description='Short English commands, e.g. "remove rows where email is null", "rename column zip to '
        'postcode", "fill missing price with median", "sort by signup_date descending"; applied after '
        "operations",
        validate_default=True,
    )

    @field_validator("commands")
    @classmethod
    def _something_to_do(cls, commands: list[str], info: ValidationInfo) -> list[str]:
        """Checked on ``commands`` (validated after ``operations``, even when absent) so that the error names a
        field: a model-level error has none."""
        if "operations" not in info.data:  # the operations were refused: that error is the one to read
            return commands
        operations = info.data["operations"]
        if not operations and not commands:
            raise ValueError("give operations or commands: there is nothing to do")
        if len(operations) + len(commands) > MAX_OPERATIONS:
            raise ValueError(f"at most {MAX_OPERATIONS} operations and commands together")
        return commands


AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
Comparison.model_rebuild()
