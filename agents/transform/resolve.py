"""Resolution of the transformer's operations against the data's columns, before anything runs.

``resolve(params, schema)`` takes the validated parameters (JSON ``operations``, then English ``commands`` parsed by
``agents.transform.commands``) and the data's schema (column name -> Polars dtype as ``str(dtype)`` gives it, in
column order), and returns the recipe: every operation with exact column names, literals typed by their column,
``columns: None`` of trim/case made explicit and derive expressions in canonical text. The schema evolves through
the operations, so a later operation sees the columns an earlier one renamed, added, dropped or retyped; the final
schema is ``Resolved.schema_after`` and the executor produces exactly those dtypes.

Nothing is guessed silently: a column name resolves exactly, then ignoring case, then ignoring case and separators
(spaces, ``_``, ``-``, ``.``), then to the one close spelling that no other column comes near (Damerau-Levenshtein:
one edit in names of 4 to 9 characters, two from 10, none below 4; the numbers in the name must be the same) when
every edit is a typing slip (``typo_edits``: two letters swapped, or a letter missing or added inside a name of 5
characters or more, or doubled; never a replaced letter, nor one at either end: ``name`` is not ``game``); every
inexact reading is written to ``Resolved.notes``. An operation that removes rows or columns (filter, drop_columns,
keep_columns, deduplicate) reads no close spelling (``resolve_column(exact=True)``): it is refused with the
suggestion. An ordering of a text column against a number is refused (``_refuse_text_numbers``), as one against a
date is. Anything else is refused with an
``InvalidParametersError`` whose details carry ``field``, ``command``, ``position``, ``reason`` and
``suggestions``.

Dtypes this module decides (the executor casts its results to them):
- cast ``integer`` -> ``Int64``; ``float`` -> ``Float64``; ``number`` -> ``Int64`` from an integer or boolean column,
  else ``Float64`` (whether every value is whole is only known at run time; the schema says ``Float64``); a
  ``Decimal`` column keeps its dtype (a decimal stays a decimal, exactly);
  ``text`` -> ``String``; ``date`` -> ``Date``; ``datetime`` -> ``Datetime(time_unit='us', time_zone=None)`` (a
  datetime column keeps its own dtype); ``boolean`` -> ``Boolean``;
- derive: ``+ - * %`` and ``neg`` give ``Int64`` when every operand is an integer, else ``Float64``, but ``+ -``,
  ``neg`` and ``abs`` of Decimal columns (with whole numbers) give ``Decimal(38, s)``, exactly (``s`` the largest
  scale; ``exact_decimal_scale``), and any other operation reads a decimal as Float64; ``/`` gives
  ``Float64``; ``round``/``floor``/``ceil``/``abs`` keep ``Int64`` or ``Float64``; ``lower``/``upper``/``title``/
  ``trim``/``concat`` give ``String``; ``length`` and ``year``/``month``/``day`` give ``Int64``;
  ``coalesce`` the arguments' common dtype (``Int64``/``Float64`` for numbers);
- fill ``mean``/``median`` of an integer column -> ``Float64`` (the statistic as it is, as pandas' ``fillna`` gives;
  whether it fills a cell with a fraction is only known at run time: a whole-number statistic, or a column without
  an empty cell, keeps the column's own dtype, as ``number`` may give ``Int64``).

Categorical and Enum columns (clean-my-data's type-fixer makes low-cardinality text categorical) are text for
every text operation, comparison and function: ``contains``/``starts_with``/``ends_with``, ordering (as text, not by
category order), casts from text, ``trim``/``case``/``replace``/``fill_nulls`` and ``lower``/``upper``/``title``/
``trim``/``length``; a column such an operation writes, and a derived column of their values, is ``String`` (what the
same data read from its CSV gives).

Literal typing: integer columns take whole numbers (``"18"`` -> 18; in a comparison ``17.5`` stays a float),
float columns floats, decimal columns exact decimals (``_typed_decimal``), boolean columns ``true/false/yes/no/1/0``,
date and datetime columns ISO 8601 text (returned normalised), text columns the text as written (a number given as
JSON becomes its text). A constant that types
differently for the columns of one fill or replace splits it into one operation per column.

Free of Polars (the API resolves commands before it queues a task).
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeGuard

from pydantic import TypeAdapter, ValidationError
from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from agents.errors import InvalidParametersError
from agents.params.common import is_column_pattern
from agents.params.transformer import (
    MAX_COMMAND_CHARS,
    AllOf,
    AnyOf,
    CastColumns,
    ChangeCase,
    Comparison,
    Condition,
    Deduplicate,
    DeriveColumn,
    DropColumns,
    FillNulls,
    FilterRows,
    KeepColumns,
    NotOf,
    Operation,
    RenameColumns,
    ReorderColumns,
    ReplaceValues,
    SortRows,
    TransformerParams,
    TrimText,
)
from agents.transform import expressions

Schema = dict[str, str]
"""Column name -> Polars dtype text (``str(dtype)``), in column order."""

AGENT_ID = "transformer"
DATETIME_DTYPE = "Datetime(time_unit='us', time_zone=None)"

_OPERATION: TypeAdapter[Any] = TypeAdapter(Operation)


@dataclass(frozen=True)
class Resolved:
    operations: list[dict[str, Any]]
    """The recipe: each operation as the model's JSON, exact and typed."""
    origins: list[str]
    """Per operation: the command it came from, or ``operations[3]``."""
    notes: list[list[str]]
    """Per operation: what resolution read (``column 'emial' read as 'email'``)."""
    schema_after: Schema


class Refusal(Exception):
    """Why an operation cannot be resolved. ``path`` locates the offending field inside the operation
    (``where.all[1].column``); ``span`` the key of the command's position table when it differs from ``path``;
    ``offset`` a position inside that field (an expression's token); ``located`` the message without the "at
    position N" that ends it (a command's refusal says the position in the whole command instead)."""

    def __init__(
        self,
        message: str,
        reason: str,
        path: str = "",
        suggestions: Iterable[str] = (),
        *,
        span: str | None = None,
        offset: int = 0,
        located: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.path = path
        self.suggestions = list(suggestions)
        self.span = span
        self.offset = offset
        self.located = located


# ---------------------------------------------------------------------------------------------------- dtypes


def kind_of(dtype: str) -> str:
    """The family of a Polars dtype text: int, float, text, category, bool, date, datetime or other."""
    if dtype.startswith(("Int", "UInt")):
        return "int"
    if dtype.startswith(("Float", "Decimal")):
        return "float"
    if dtype in ("String", "Utf8"):
        return "text"
    if dtype.startswith(("Categorical", "Enum")):
        return "category"
    if dtype == "Boolean":
        return "bool"
    if dtype == "Date":
        return "date"
    if dtype.startswith("Datetime"):
        return "datetime"
    return "other"


_NUMERIC = ("int", "float")
_TEXTUAL = ("text", "category")
_ORDERED = ("int", "float", "text", "category", "date", "datetime")  # categories are ordered as text
_KIND_WORDS = {
    "int": "whole numbers",
    "float": "numbers",
    "text": "text",
    "category": "text categories",
    "bool": "true/false values",
    "date": "dates (YYYY-MM-DD)",
    "datetime": "date-times (ISO 8601)",
    "other": "values of a type that cannot be compared with a value",
}
_INT_RANGES = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
}
_ANY_INT = (-(2**63), 2**64 - 1)
_INT_TEXT = re.compile(r"[+-]?\d+")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


# ---------------------------------------------------------------------------------------------------- context


@dataclass
class ResolutionContext:
    """The schema as it stands before the operation being resolved, and that operation's notes."""

    schema: Schema
    notes: list[str] = field(default_factory=list)

    def dtype(self, column: str) -> str:
        return self.schema[column]

    def kind(self, column: str) -> str:
        return kind_of(self.schema[column])


# ---------------------------------------------------------------------------------------------------- columns


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.casefold())


def _allowed_distance(length: int) -> int:
    """Edits a typo may carry and still be read: none in very short names, where any edit makes another word."""
    if length <= 3:
        return 0
    return 1 if length <= 9 else 2


MIN_INDEL_LENGTH = 5
"""A letter missing or added is read as a typo only in names of at least this many characters (``adress``); in a
shorter one it too often makes another word (``page``/``age``)."""


def typo_edits(written: str, name: str) -> float:
    """The edits that make ``written`` into ``name`` when each is one a typing slip makes: two neighbouring letters
    swapped (``emial``/``email``) or, in names of ``MIN_INDEL_LENGTH`` characters or more, a letter missing or added
    inside the name or next to the same letter (``adress``/``address``, ``quantiy``/``quantity``). A substituted
    letter (``name``/``game``, ``state``/``stage``, ``date``/``data``) or a letter added or dropped at either end
    (``page``/``age``, ``years``/``year``) makes another word, not a typo: ``math.inf``. The case and separators
    are the caller's to remove (``_key``)."""
    a, b = written, name
    indels = min(len(a), len(b)) >= MIN_INDEL_LENGTH - 1 and max(len(a), len(b)) >= MIN_INDEL_LENGTH

    def slip(text: str, i: int) -> bool:  # text[i] may be dropped or added as a typo
        if not indels:
            return False
        inside = 0 < i < len(text) - 1
        doubled = (i > 0 and text[i - 1] == text[i]) or (i + 1 < len(text) and text[i + 1] == text[i])
        return inside or doubled

    inf = math.inf
    d = [[inf] * (len(b) + 1) for _ in range(len(a) + 1)]
    d[0][0] = 0
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            here = d[i][j]
            if i and j and a[i - 1] == b[j - 1]:
                here = min(here, d[i - 1][j - 1])
            if i and slip(a, i - 1):  # a letter added
                here = min(here, d[i - 1][j] + 1)
            if j and slip(b, j - 1):  # a letter missing
                here = min(here, d[i][j - 1] + 1)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1] and a[i - 1] != a[i - 2]:
                here = min(here, d[i - 2][j - 2] + 1)
            d[i][j] = here
    return d[len(a)][len(b)]


def _typo(written: str, name: str, distance: int) -> bool:
    """Whether ``written``, ``distance`` edits from ``name`` (Damerau-Levenshtein), is a typo of it: the same
    number of edits, every one a typing slip (``typo_edits``; a letter replaced by a missing and an added one is
    still a replaced letter: ``customer_game`` is no typo of ``customer_name``)."""
    return typo_edits(written, name) == distance


def _suggestions(name: str, columns: list[str]) -> list[str]:
    found = process.extract(name, columns, scorer=fuzz.WRatio, processor=str.casefold, limit=3, score_cutoff=60)
    return [match[0] for match in found]


def _quoted(names: Iterable[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


EXACT_ONLY = "a command that removes rows or columns needs the exact name; only case and separators may differ"
"""Why a close spelling is refused in such a command (``exact``)."""


def _plural_of(singular: str, plural: str) -> bool:
    """Whether ``plural`` is ``singular`` with its English plural ending (``emails``, ``prices``, ``addresses``):
    a plural is the same column to a command (README, "How commands read"), even one that removes rows."""
    if singular == "":
        return False
    return plural == singular + ("es" if singular.endswith(("s", "x", "z", "ch", "sh")) else "s")


def resolve_column(
    ctx: ResolutionContext,
    name: str,
    path: str,
    *,
    span: str | None = None,
    offset: int = 0,
    exact: bool = False,
) -> str:
    """The exact column ``name`` refers to (see the module docstring for the order of readings). ``exact``: the
    command removes rows or columns (a filter, a drop, keep or deduplicate, a search's selection), so it reads no
    close spelling: one is refused with the suggestion (``did you mean 'game'?``)."""
    if name in ctx.schema:
        return name
    columns = list(ctx.schema)

    def refuse(message: str, reason: str, suggestions: list[str]) -> Refusal:
        return Refusal(message, reason, path, suggestions, span=span, offset=offset)

    for reading, same in (
        ("ignoring case", lambda c: c.casefold() == name.casefold()),
        ("ignoring case and separators", lambda c: _key(c) == _key(name) != ""),
    ):
        matches = [c for c in columns if same(c)]
        if len(matches) == 1:
            ctx.notes.append(f"column '{name}' read as '{matches[0]}' ({reading})")
            return matches[0]
        if len(matches) > 1:
            raise refuse(
                f"column '{name}' could be {_quoted(matches[:3])}; name it exactly",
                "ambiguous_column",
                matches[:3],
            )
    key = _key(name)
    digits = re.findall(r"\d+", key)
    scored = sorted(
        (DamerauLevenshtein.distance(key, _key(c)), i)
        for i, c in enumerate(columns)
        if re.findall(r"\d+", _key(c)) == digits  # 'item2' is never a typo of 'item1'
    )
    allowed = _allowed_distance(len(key))
    plurals = [c for c in columns if len(_key(c)) >= 3 and _plural_of(_key(c), key)]  # the name plural, not the column
    if len(plurals) == 1:  # the same word (README: plurals do not matter), unless another column is as close
        others = [columns[i] for distance, i in scored if distance <= allowed and columns[i] != plurals[0]]
        if not others:
            ctx.notes.append(f"column '{name}' read as '{plurals[0]}' (ignoring a plural ending)")
            return plurals[0]
    closest: list[str] = []
    if scored and scored[0][0] <= allowed:
        best = scored[0][0]
        near = [columns[i] for distance, i in scored if distance < best + 2]
        if len(near) > 1:
            raise refuse(f"column '{name}' could be {_quoted(near[:3])}; name it exactly", "ambiguous_column", near[:3])
        closest = near
        if not exact and _typo(key, _key(near[0]), best):
            ctx.notes.append(f"column '{name}' read as '{near[0]}' (closest spelling)")
            return near[0]
    suggestions = list(dict.fromkeys([*closest, *_suggestions(name, columns)]))[:3]
    if suggestions:
        return_message = f"no column '{name}'; did you mean {_quoted(suggestions)}?"
        if exact and closest and _typo(key, _key(closest[0]), scored[0][0]):
            return_message += f" ({EXACT_ONLY})"
    else:
        shown = ", ".join(f"'{c}'" for c in columns[:10]) + (", ..." if len(columns) > 10 else "")
        return_message = f"no column '{name}' (the columns are {shown})" if columns else f"no column '{name}'"
    raise refuse(return_message, "unknown_column", suggestions)


def _resolve_columns(
    ctx: ResolutionContext, names: list[str], path: str = "columns", *, exact: bool = False
) -> list[str]:
    """Each name resolved (``exact``: see ``resolve_column``); a column named twice is kept once (noted)."""
    resolved: list[str] = []
    for i, name in enumerate(names):
        column = resolve_column(ctx, name, f"{path}[{i}]", exact=exact)
        if column in resolved:
            ctx.notes.append(f"column '{column}' named twice; used once")
            continue
        resolved.append(column)
    return resolved


# ---------------------------------------------------------------------------------------------------- literals


def _mismatch(value: Any, column: str, dtype: str, path: str, detail: str = "") -> Refusal:
    words = _KIND_WORDS[kind_of(dtype)]
    shown = f"'{value}'" if isinstance(value, str) else repr(value)
    return Refusal(f"column '{column}' holds {words} ({dtype}); {shown} is not one{detail}", "type_mismatch", path)


def typed_literal(value: Any, column: str, dtype: str, path: str, *, assign: bool) -> Any:
    """``value`` as the column's type wants it. ``assign``: the value goes into the column (fill, replace's new
    value), so it must fit the dtype exactly; otherwise it is compared with the column's values."""
    kind = kind_of(dtype)
    if kind == "int":
        return _typed_int(value, column, dtype, path, assign)
    if kind == "float" and dtype.startswith("Decimal"):
        return _typed_decimal(value, column, dtype, path, assign)
    if kind == "float":
        number = _as_number(value)
        if number is None:
            raise _mismatch(value, column, dtype, path)
        return float(number)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().casefold() if isinstance(value, str | int) else ""
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _mismatch(value, column, dtype, path)
    if kind in _TEXTUAL:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if kind == "date" and isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise _mismatch(value, column, dtype, path, ": no such date") from None
    if kind == "datetime" and isinstance(value, str) and _DATETIME_TEXT.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise _mismatch(value, column, dtype, path, ": no such date-time") from None
    raise _mismatch(value, column, dtype, path)


_DECIMAL_DTYPE = re.compile(r"Decimal\(precision=(\d+|None), scale=(\d+|None)\)")
_DECIMAL_CONTEXT = decimal.Context(prec=100, traps=[decimal.InvalidOperation])


def _typed_decimal(value: Any, column: str, dtype: str, path: str, assign: bool) -> int | float | str:
    """A value for a Decimal column (Parquet DECIMAL), exact: read from its text (``"5.000000000000000005"`` is not
    the float 5.0) and given back as the whole number, the float that is exactly it, or else its text (the recipe
    is JSON; the executor reads each back exactly, agents.values.exact_decimal). A value written into the column
    (``assign``) must fit it: no more decimals than its scale, no more whole digits than it holds. A compared one
    may have more decimals: the comparison is decided exactly (agents.values.decimal_comparison)."""
    number = _as_number(value)
    if number is None:
        raise _mismatch(value, column, dtype, path)
    exact = decimal.Decimal(value.strip() if isinstance(value, str) else repr(number))
    match = _DECIMAL_DTYPE.fullmatch(dtype)
    written = match.groups() if match else ("None", "None")
    precision, scale = (
        int(text) if text.isdigit() else default for text, default in zip(written, (38, 0), strict=True)
    )
    if assign:  # the range first: quantizing a value far past it (1e300) needs more digits than the context holds
        if abs(exact) >= decimal.Decimal(10) ** (precision - scale):
            raise _mismatch(value, column, dtype, path, f" (out of {dtype}'s range)")
        if exact != exact.quantize(decimal.Decimal(1).scaleb(-scale), context=_DECIMAL_CONTEXT):
            raise _mismatch(value, column, dtype, path, f" (more than {scale} decimals)")
    if exact == exact.to_integral_value():
        return int(exact)
    if decimal.Decimal(repr(float(exact))) == exact:
        return float(exact)
    return format(exact.normalize(context=_DECIMAL_CONTEXT), "f")


def _as_number(value: Any) -> int | float | None:
    """A finite int or float from a JSON number or its text; None when it is neither (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            return int(text)
        if _FLOAT_TEXT.fullmatch(text):
            number = float(text)
            return number if math.isfinite(number) else None
    return None


def _typed_int(value: Any, column: str, dtype: str, path: str, assign: bool) -> int | float:
    number = _as_number(value)
    if number is None:
        raise _mismatch(value, column, dtype, path)
    if isinstance(number, float):
        if not number.is_integer():
            if assign:
                raise _mismatch(value, column, dtype, path, " (not a whole number)")
            return number
        number = int(number)
    low, high = _INT_RANGES.get(dtype, _ANY_INT) if assign else _ANY_INT
    if not low <= number <= high:
        raise _mismatch(value, column, dtype, path, f" (out of {dtype}'s range)")
    return number


# ---------------------------------------------------------------------------------------------------- conditions


_SCALAR_CMPS = ("==", "!=", "<", "<=", ">", ">=")
_TEXT_CMPS = ("contains", "starts_with", "ends_with")


def _condition(ctx: ResolutionContext, condition: Condition, path: str) -> dict[str, Any]:
    if isinstance(condition, AllOf):
        return {"all": [_condition(ctx, c, f"{path}.all[{i}]") for i, c in enumerate(condition.all)]}
    if isinstance(condition, AnyOf):
        return {"any": [_condition(ctx, c, f"{path}.any[{i}]") for i, c in enumerate(condition.any)]}
    if isinstance(condition, NotOf):
        return {"not": _condition(ctx, condition.not_, f"{path}.not")}
    return _comparison(ctx, condition, path)


def _comparison(ctx: ResolutionContext, comparison: Comparison, path: str) -> dict[str, Any]:
    column = resolve_column(ctx, comparison.column, f"{path}.column", exact=True)
    kind = ctx.kind(column)
    cmp, value = comparison.cmp, comparison.value
    out: dict[str, Any] = {
        "column": column,
        "cmp": cmp,
        "value": None,
        "value_column": None,
        "case_sensitive": comparison.case_sensitive or kind not in _TEXTUAL,
    }
    if cmp in ("is_null", "is_not_null"):
        if value is not None or comparison.value_column is not None:
            raise Refusal(f"'{cmp}' takes no value", "invalid_value", f"{path}.value")
        return out
    if comparison.value_column is not None:
        out["value_column"] = _value_column(ctx, comparison, column, path)
        return out
    _check_comparable(ctx, column, cmp, path)
    if cmp in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise Refusal(f"'{cmp}' needs a list of values, like in (US, CA)", "invalid_value", f"{path}.value")
        out["value"] = [_typed_item(ctx, column, v, f"{path}.value[{i}]") for i, v in enumerate(value)]
    elif cmp == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise Refusal("'between' needs two values, a low and a high end", "invalid_value", f"{path}.value")
        out["value"] = [_typed_item(ctx, column, v, f"{path}.value[{i}]") for i, v in enumerate(value)]
        if kind == "datetime":  # a date-only end kept so: the high one takes the whole day in
            out["value"] = [_day(v) if _is_day(v) else typed for v, typed in zip(value, out["value"], strict=True)]
    else:
        if isinstance(value, list):
            raise Refusal(f"'{cmp}' compares with one value, not a list", "invalid_value", f"{path}.value")
        out["value"] = _typed_item(ctx, column, value, f"{path}.value", text=cmp in _TEXT_CMPS)
        if kind == "datetime" and cmp in ("<=", ">") and _is_day(value):
            out["value"] = _day(value)
    _refuse_text_dates(kind, column, cmp, out["value"], path)
    _refuse_text_numbers(kind, column, cmp, value, path)
    return out


def _is_day(value: Any) -> TypeGuard[str]:
    """A date without a time (``2024-03-01``)."""
    return isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()) is not None


def _day(value: str) -> str:
    """A date-only end of a date-time comparison kept so (checked by ``typed_literal`` first): ``<= 2024-03-01``
    and ``between ... and 2024-03-01`` take the whole day in, ``> 2024-03-01`` starts after it (as search's
    ``time_ranges`` do; the executor compares with the next midnight). ``<``, ``>=`` and between's low end mean
    the day's start, midnight, as before (``<`` and ``>=`` are typed to it: ``2024-03-01T00:00:00``)."""
    return date.fromisoformat(value.strip()).isoformat()


_ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _refuse_text_dates(kind: str, column: str, cmp: str, value: Any, path: str) -> None:
    """An ordering of a text column against a date (``keep rows where date > 2008-01-01`` on "Jan 1 2000", ...)
    would order the texts, not the dates, silently: refused, saying how to convert the column first."""
    values = value if isinstance(value, list) else [value]
    if kind not in _TEXTUAL or cmp not in ("<", "<=", ">", ">=", "between"):
        return
    if any(isinstance(item, str) and _ISO_DATE_START.match(item) for item in values):
        raise Refusal(
            f"column '{column}' holds text, so '{cmp}' would compare its values as text, not as dates; convert it "
            f'first: convert {column} to date using format "..." (its layout, e.g. "%b %d %Y" for Jan 1 2000)',
            "type_mismatch",
            f"{path}.column",
        )


TEXT_NUMBERS = "text_numbers"
"""The reason of the refusal of ``_refuse_text_numbers``: the transformer adds how many values are no number."""


def _refuse_text_numbers(kind: str, column: str, cmp: str, value: Any, path: str) -> None:
    """An ordering of a text column against a number (``keep rows where n > 9`` on a column that is text because
    one value is ``unknown``, or after ``cast n to text``) would order the texts, not the numbers (``"10" < "9"``,
    ``"unknown" > "9"``), silently: refused, saying how to convert the column first (as a text column of dates is,
    and as search's ranges refuse a text column). Text against text (``name > m``) is an ordering of texts, as
    asked; ``=``, ``!=`` and ``in`` compare whole values (``zip = 02134`` stays text)."""
    values = value if isinstance(value, list) else [value]
    if kind not in _TEXTUAL or cmp not in ("<", "<=", ">", ">=", "between"):
        return
    if any(_as_number(item) is not None for item in values):
        written = column if re.fullmatch(r"\w+", column) else f"`{column}`"
        raise Refusal(
            f"column '{column}' holds text, so '{cmp}' would compare its values as text, not as numbers "
            f'("10" comes before "9"); convert it first: cast {written} to number and set invalid values to empty '
            "(a value that is no number becomes empty and matches no comparison)",
            TEXT_NUMBERS,
            f"{path}.column",
        )


def _check_comparable(ctx: ResolutionContext, column: str, cmp: str, path: str) -> None:
    kind, dtype = ctx.kind(column), ctx.dtype(column)
    if kind == "other":
        raise Refusal(
            f"column '{column}' ({dtype}) can only be tested for being empty", "type_mismatch", f"{path}.column"
        )
    if cmp in _TEXT_CMPS and kind not in _TEXTUAL:
        raise Refusal(
            f"'{cmp.replace('_', ' ')}' works on text; column '{column}' holds {_KIND_WORDS[kind]} ({dtype})",
            "type_mismatch",
            f"{path}.column",
        )
    if cmp in ("<", "<=", ">", ">=", "between") and kind not in _ORDERED:
        raise Refusal(
            f"column '{column}' holds {_KIND_WORDS[kind]} ({dtype}), which have no order for '{cmp}'",
            "type_mismatch",
            f"{path}.column",
        )


def _typed_item(ctx: ResolutionContext, column: str, value: Any, path: str, *, text: bool = False) -> Any:
    if value is None:
        raise Refusal("an empty value matches nothing here; test for it with is_null", "invalid_value", path)
    if text:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _mismatch(value, column, ctx.dtype(column), path)
        return value if isinstance(value, str) else str(value)
    return typed_literal(value, column, ctx.dtype(column), path, assign=False)


def _value_column(ctx: ResolutionContext, comparison: Comparison, column: str, path: str) -> str:
    if comparison.value is not None:
        raise Refusal("give a value or a value_column, not both", "invalid_value", f"{path}.value")
    if comparison.cmp not in _SCALAR_CMPS:
        raise Refusal(
            f"'{comparison.cmp}' compares with values, not with another column", "invalid_value", f"{path}.cmp"
        )
    other = resolve_column(ctx, comparison.value_column or "", f"{path}.value_column", exact=True)
    kinds = {ctx.kind(column), ctx.kind(other)}
    comparable = kinds <= set(_NUMERIC) or kinds <= set(_TEXTUAL) or len(kinds) == 1
    if not comparable or "other" in kinds or (comparison.cmp not in ("==", "!=") and not kinds <= set(_ORDERED)):
        raise Refusal(
            f"columns '{column}' ({ctx.dtype(column)}) and '{other}' ({ctx.dtype(other)}) cannot be compared "
            f"with '{comparison.cmp}'",
            "type_mismatch",
            f"{path}.value_column",
        )
    return other


# ---------------------------------------------------------------------------------------------------- operations


MAX_CONDITION_DEPTH = 64
"""Deepest nesting of all/any/not accepted (the walks below recurse)."""


def _check_depth(condition: Condition) -> None:
    stack: list[tuple[Condition, int]] = [(condition, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_CONDITION_DEPTH:
            raise Refusal(f"the condition nests deeper than {MAX_CONDITION_DEPTH} levels", "too_deep", "where")
        children = node.all if isinstance(node, AllOf) else node.any if isinstance(node, AnyOf) else []
        if isinstance(node, NotOf):
            children = [node.not_]
        stack.extend((child, depth + 1) for child in children)


def _filter(ctx: ResolutionContext, op: FilterRows) -> list[dict[str, Any]]:
    _check_depth(op.where)
    return [{"op": "filter", "action": op.action, "where": _condition(ctx, op.where, "where")}]


def _drop(ctx: ResolutionContext, op: DropColumns) -> list[dict[str, Any]]:
    columns = _resolve_columns(ctx, op.columns, exact=True)
    if len(columns) == len(ctx.schema):
        raise Refusal("that would drop every column; keep at least one", "no_columns_left", "columns")
    for column in columns:
        del ctx.schema[column]
    return [{"op": "drop_columns", "columns": columns}]


def _keep(ctx: ResolutionContext, op: KeepColumns) -> list[dict[str, Any]]:
    columns = _resolve_columns(ctx, op.columns, exact=True)
    ctx.schema = {c: d for c, d in ctx.schema.items() if c in columns}
    return [{"op": "keep_columns", "columns": columns}]


def _rename(ctx: ResolutionContext, op: RenameColumns) -> list[dict[str, Any]]:
    mapping: dict[str, str] = {}
    written: dict[str, str] = {}  # resolved column -> the key as written (for the error's path)
    for old, new in op.mapping.items():
        path = f"mapping.{old}"
        column = resolve_column(ctx, old, path, span=f"{path}.key")
        if column in mapping:
            raise Refusal(f"column '{column}' is renamed twice", "duplicate_column", path, span=f"{path}.key")
        _check_new_name(new, path)
        mapping[column] = new
        written[column] = old
    final = [mapping.get(c, c) for c in ctx.schema]
    for column, new in mapping.items():
        if final.count(new) > 1:
            raise Refusal(
                f"there is already a column '{new}'; choose another name or drop it first",
                "column_exists",
                f"mapping.{written[column]}",
            )
    ctx.schema = {mapping.get(c, c): d for c, d in ctx.schema.items()}
    return [{"op": "rename", "mapping": mapping}]


def _check_new_name(name: str, path: str) -> None:
    """A name a column is given: not blank, nor one Polars reads as a pattern (``*``, ``^…$``), which would
    address other columns (agents.params.common.is_column_pattern)."""
    if not name.strip():
        raise Refusal("a column name cannot be blank", "invalid_value", path)
    if is_column_pattern(name):
        raise Refusal(
            f"'{name}' cannot name a column: '*' and '^…$' are patterns of column names", "invalid_value", path
        )


def _reorder(ctx: ResolutionContext, op: ReorderColumns) -> list[dict[str, Any]]:
    columns = _resolve_columns(ctx, op.columns)
    ctx.schema = {**{c: ctx.schema[c] for c in columns}, **{c: d for c, d in ctx.schema.items() if c not in columns}}
    return [{"op": "reorder", "columns": columns}]


_CAST_SOURCES = {
    "number": ("int", "float", "text", "category", "bool"),
    "integer": ("int", "float", "text", "category", "bool"),
    "float": ("int", "float", "text", "category", "bool"),
    "text": ("int", "float", "text", "category", "bool", "date", "datetime"),
    "date": ("text", "category", "date", "datetime"),
    "datetime": ("text", "category", "date", "datetime"),
    "boolean": ("text", "category", "bool", "int"),
}
_FORMAT_DIRECTIVE = re.compile(r"%(-|_|0|\^|#)?(\.?\d?[A-Za-z]|[%+:][A-Za-z]?)")


def _cast_dtype(target: str, dtype: str) -> str:
    kind = kind_of(dtype)
    if target == "number":
        if dtype.startswith("Decimal"):
            return dtype  # a decimal stays a decimal, exactly
        return "Int64" if kind in ("int", "bool") else "Float64"
    if target == "datetime" and kind == "datetime":
        return dtype
    return {
        "integer": "Int64",
        "float": "Float64",
        "text": "String",
        "date": "Date",
        "datetime": DATETIME_DTYPE,
        "boolean": "Boolean",
    }[target]


def _cast(ctx: ResolutionContext, op: CastColumns) -> list[dict[str, Any]]:
    columns = _resolve_columns(ctx, op.columns)
    for i, column in enumerate(columns):
        kind = ctx.kind(column)
        if kind not in _CAST_SOURCES[op.to]:
            raise Refusal(
                f"column '{column}' ({ctx.dtype(column)}) cannot be converted to {op.to}",
                "unsupported_cast",
                f"columns[{i}]",
            )
        if op.format is not None and not (
            (op.to in ("date", "datetime") and kind in _TEXTUAL) or (op.to == "text" and kind in ("date", "datetime"))
        ):
            raise Refusal(
                "a format applies only to text read as a date or date-time, or to dates written as text "
                f"(column '{column}' is {ctx.dtype(column)})",
                "format_not_applicable",
                "format",
            )
    if op.format is not None and (
        not _FORMAT_DIRECTIVE.search(op.format) or re.search(r"%(?![-_0^#]?(\.?\d?[A-Za-z]|[%+:]))", op.format)
    ):
        raise Refusal(
            f"'{op.format}' is not a strftime format (like '%d/%m/%Y')", "invalid_format", "format", ["%d/%m/%Y"]
        )
    for column in columns:
        ctx.schema[column] = _cast_dtype(op.to, ctx.dtype(column))
    return [{"op": "cast", "columns": columns, "to": op.to, "format": op.format, "on_invalid": op.on_invalid}]


def _split_by_value(
    columns: list[str], values: list[Any], build: Callable[[list[str], Any], dict[str, Any]]
) -> list[dict[str, Any]]:
    """One operation when the value types the same for every column, else one per column."""
    if all(_same(v, values[0]) for v in values):
        return [build(columns, values[0])]
    return [build([c], v) for c, v in zip(columns, values, strict=True)]


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types (0 and 0.0 differ: they fill different dtypes)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _fill(ctx: ResolutionContext, op: FillNulls) -> list[dict[str, Any]]:
    columns = _resolve_columns(ctx, op.columns)
    if op.strategy != "constant":
        if op.value is not None:
            raise Refusal(f"'{op.strategy}' computes the value; give none", "invalid_value", "value")
        if op.strategy in ("mean", "median"):
            for i, column in enumerate(columns):
                if ctx.kind(column) not in _NUMERIC:
                    raise Refusal(
                        f"the {op.strategy} needs numbers; column '{column}' holds "
                        f"{_KIND_WORDS[ctx.kind(column)]} ({ctx.dtype(column)})",
                        "type_mismatch",
                        f"columns[{i}]",
                    )
                if ctx.kind(column) == "int":  # may be filled with the statistic as it is (34.333..., not 34)
                    ctx.schema[column] = "Float64"
        _written_as_text(ctx, columns)
        return [{"op": "fill_nulls", "columns": columns, "strategy": op.strategy, "value": None}]
    if op.value is None:
        raise Refusal("fill with which value? give one, or a strategy such as median", "invalid_value", "value")
    values = [typed_literal(op.value, c, ctx.dtype(c), "value", assign=True) for c in columns]
    _written_as_text(ctx, columns)
    return _split_by_value(
        columns, values, lambda cs, v: {"op": "fill_nulls", "columns": cs, "strategy": "constant", "value": v}
    )


def _deduplicate(ctx: ResolutionContext, op: Deduplicate) -> list[dict[str, Any]]:
    columns = None if op.columns is None else _resolve_columns(ctx, op.columns, exact=True)
    return [{"op": "deduplicate", "columns": columns, "keep": op.keep}]


def _sort(ctx: ResolutionContext, op: SortRows) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    for i, key in enumerate(op.by):
        column = resolve_column(ctx, key.column, f"by[{i}].column")
        if any(k["column"] == column for k in keys):
            ctx.notes.append(f"column '{column}' named twice in the sort; the first is used")
            continue
        keys.append({"column": column, "descending": key.descending})
    return [{"op": "sort", "by": keys, "nulls_last": op.nulls_last}]


def _written_as_text(ctx: ResolutionContext, columns: list[str]) -> None:
    """Categorical columns that an operation writes come out as text (the executor casts them: a category list
    cannot take a new value)."""
    for column in columns:
        if ctx.kind(column) == "category":
            ctx.schema[column] = "String"


def _text_columns(ctx: ResolutionContext, columns: list[str] | None, done: str) -> list[str]:
    """The columns of a text operation (``done``: what it does, "trimmed"), categorical ones included (they become
    text); None: every text column."""
    if columns is None:
        found = [c for c in ctx.schema if ctx.kind(c) in _TEXTUAL]
        if not found:
            raise Refusal(f"there is no text column to be {done}", "no_text_columns", "columns")
        _written_as_text(ctx, found)
        return found
    resolved = _resolve_columns(ctx, columns)
    for i, column in enumerate(resolved):
        if ctx.kind(column) not in _TEXTUAL:
            raise Refusal(
                f"only text can be {done}; column '{column}' holds {_KIND_WORDS[ctx.kind(column)]} "
                f"({ctx.dtype(column)})",
                "type_mismatch",
                f"columns[{i}]",
            )
    _written_as_text(ctx, resolved)
    return resolved


def _trim(ctx: ResolutionContext, op: TrimText) -> list[dict[str, Any]]:
    return [{"op": "trim", "columns": _text_columns(ctx, op.columns, "trimmed")}]


def _case(ctx: ResolutionContext, op: ChangeCase) -> list[dict[str, Any]]:
    return [{"op": "case", "columns": _text_columns(ctx, op.columns, f"{op.to}-cased"), "to": op.to}]


def _replace(ctx: ResolutionContext, op: ReplaceValues) -> list[dict[str, Any]]:
    if not op.whole_value:
        columns = _text_columns(ctx, op.columns, "searched for a piece of text")
        if op.old is None or isinstance(op.old, bool) or op.old == "":
            raise Refusal("replace which text? give a non-empty piece of text", "invalid_value", "old")
        if isinstance(op.new, bool):
            raise Refusal("the replacement of a piece of text must be text", "type_mismatch", "new")
        old, new = str(op.old), "" if op.new is None else str(op.new)
        return [{"op": "replace", "columns": columns, "old": old, "new": new, "whole_value": False}]
    columns = _resolve_columns(ctx, op.columns)
    if op.old is None:
        raise Refusal("to replace empty cells, fill them: fill missing ... with ...", "invalid_value", "old")
    pairs: list[tuple[Any, Any]] = []
    for i, column in enumerate(columns):
        if ctx.kind(column) == "other":
            raise Refusal(
                f"values of column '{column}' ({ctx.dtype(column)}) cannot be replaced",
                "type_mismatch",
                f"columns[{i}]",
            )
        dtype = ctx.dtype(column)
        old_value = typed_literal(op.old, column, dtype, "old", assign=False)
        new_value = None if op.new is None else typed_literal(op.new, column, dtype, "new", assign=True)
        pairs.append((old_value, new_value))
    _written_as_text(ctx, columns)
    return _split_by_value(
        columns,
        pairs,
        lambda cs, p: {"op": "replace", "columns": cs, "old": p[0], "new": p[1], "whole_value": True},
    )


def _derive(ctx: ResolutionContext, op: DeriveColumn) -> list[dict[str, Any]]:
    _check_new_name(op.column, "column")
    if op.column in ctx.schema:
        raise Refusal(
            f"there is already a column '{op.column}'; derive a new name (or drop it first)", "column_exists", "column"
        )
    try:
        node, positions = expressions.parse_expression_located(op.expression)
    except expressions.ExpressionError as error:
        raise Refusal(
            error.message, error.reason, "expression", error.suggestions, offset=error.position, located=error.located
        ) from None
    node, dtype = _typed_expression(ctx, node, positions)
    if kind_of(dtype) == "category":  # a copy of categorical values is their text
        dtype = "String"
    if dtype == "Null":
        raise Refusal("the expression is always empty", "invalid_value", "expression")
    ctx.schema[op.column] = dtype
    return [{"op": "derive", "column": op.column, "expression": expressions.render(node)}]


def _typed_expression(
    ctx: ResolutionContext, node: expressions.Node, positions: dict[int, int]
) -> tuple[expressions.Node, str]:
    """The tree with exact column names, and its dtype; refuses operands of the wrong type."""
    position = positions.get(id(node), 0)

    def refuse(message: str) -> Refusal:
        return Refusal(message, "type_mismatch", "expression", offset=position)

    if "col" in node:
        column = resolve_column(ctx, node["col"], "expression", offset=position)
        return {"col": column}, ctx.dtype(column)
    if "lit" in node:
        value = node["lit"]
        dtype = {bool: "Boolean", int: "Int64", float: "Float64", str: "String"}.get(type(value), "Null")
        return {"lit": value}, dtype
    typed = [_typed_expression(ctx, arg, positions) for arg in node["args"]]
    args = [a for a, _ in typed]
    kinds = ["null" if d == "Null" else kind_of(d) for _, d in typed]
    name = node.get("fn") or node["op"]
    rebuilt = {"fn": name, "args": args} if "fn" in node else {"op": name, "args": args}
    return rebuilt, _result_dtype(name, kinds, [d for _, d in typed], refuse)


def _result_dtype(name: str, kinds: list[str], dtypes: list[str], refuse: Callable[[str], Refusal]) -> str:
    def numeric_result() -> str:
        return "Int64" if all(k in ("int", "null") for k in kinds) else "Float64"

    def need(allowed: tuple[str, ...], what: str) -> None:
        for kind, dtype in zip(kinds, dtypes, strict=True):
            if kind not in (*allowed, "null"):
                raise refuse(f"{name} needs {what}; got {dtype}")

    if name in ("+", "-", "*", "%", "neg", "abs", "floor", "ceil", "round"):
        need(_NUMERIC, "numbers" + ("; join text with concat()" if name == "+" else ""))
        scale = exact_decimal_scale(name, dtypes)
        return numeric_result() if scale is None else f"Decimal(precision=38, scale={scale})"
    if name == "/":
        need(_NUMERIC, "numbers")
        return "Float64"
    if name in ("lower", "upper", "title", "trim", "length"):
        need(_TEXTUAL, "text")
        return "Int64" if name == "length" else "String"
    if name in ("year", "month", "day"):
        need(("date", "datetime"), "a date or date-time")
        return "Int64"
    if name == "concat":
        need(("int", "float", "text", "category", "bool", "date", "datetime"), "values that have a text form")
        return "String"
    return _coalesce_dtype(kinds, dtypes, refuse)


EXACT_DECIMAL_OPERATIONS = frozenset({"+", "-", "neg", "abs"})
"""The operations computed exactly on Decimal operands (with whole numbers); any other reads a decimal as Float64."""


def exact_decimal_scale(name: str, dtypes: list[str]) -> int | None:
    """The scale of an exact decimal result, Decimal(38, scale): ``+ - neg abs`` of Decimal columns (and whole
    numbers), at the largest scale of the decimals; None when the operation gives Int64 or Float64 (``* / %``,
    rounding, or a float operand: a decimal is then read as Float64)."""
    decimals = [_DECIMAL_DTYPE.fullmatch(dtype) for dtype in dtypes if dtype.startswith("Decimal")]
    if name not in EXACT_DECIMAL_OPERATIONS or not decimals:
        return None
    if any(kind_of(dtype) != "int" for dtype in dtypes if not dtype.startswith("Decimal") and dtype != "Null"):
        return None
    return max(int(match.group(2)) if match and match.group(2).isdigit() else 0 for match in decimals)


def _coalesce_dtype(kinds: list[str], dtypes: list[str], refuse: Callable[[str], Refusal]) -> str:
    present = [(k, d) for k, d in zip(kinds, dtypes, strict=True) if k != "null"]
    if not present:
        return "Null"
    present_kinds = {k for k, _ in present}
    if present_kinds <= set(_NUMERIC):
        return "Int64" if present_kinds == {"int"} else "Float64"
    if present_kinds <= set(_TEXTUAL):
        return "String"
    if len({d for _, d in present}) == 1 and "other" not in present_kinds:
        return present[0][1]
    raise refuse(f"coalesce needs arguments of one type; got {', '.join(d for _, d in present)}")


_RESOLVERS: dict[type, Callable[[ResolutionContext, Any], list[dict[str, Any]]]] = {
    FilterRows: _filter,
    DropColumns: _drop,
    KeepColumns: _keep,
    RenameColumns: _rename,
    ReorderColumns: _reorder,
    CastColumns: _cast,
    FillNulls: _fill,
    Deduplicate: _deduplicate,
    SortRows: _sort,
    DeriveColumn: _derive,
    TrimText: _trim,
    ChangeCase: _case,
    ReplaceValues: _replace,
}


def resolve_operation(operation: Any, schema: Schema) -> tuple[list[dict[str, Any]], list[str], Schema]:
    """One validated operation against ``schema``: the resolved operations (one, or one per column when a constant
    types differently per column), the notes, and the schema after it. Raises Refusal."""
    ctx = ResolutionContext(dict(schema))
    resolved = _RESOLVERS[type(operation)](ctx, operation)
    canonical = [_OPERATION.dump_python(_OPERATION.validate_python(o), by_alias=True, mode="json") for o in resolved]
    return canonical, ctx.notes, ctx.schema


# ---------------------------------------------------------------------------------------------------- entry point


def resolve(params: TransformerParams, schema: Schema) -> Resolved:
    """The recipe of ``params`` on data of ``schema``; raises InvalidParametersError (see the module docstring)."""
    operations: list[dict[str, Any]] = []
    origins: list[str] = []
    notes: list[list[str]] = []
    current = dict(schema)
    for i, operation in enumerate(params.operations):
        try:
            resolved, read, current = resolve_operation(operation, current)
        except Refusal as refusal:
            field_path = f"operations[{i}]" + (f".{refusal.path}" if refusal.path else "")
            raise _error(refusal, field_path, None, None) from None
        operations += resolved
        origins += [f"operations[{i}]"] * len(resolved)
        notes += [list(read) for _ in resolved]
    for j, command in enumerate(params.commands):
        resolved, read, current = _resolve_command(command, j, current)
        operations += resolved
        origins += [command] * len(resolved)
        notes += [list(read) for _ in resolved]
    return Resolved(operations=operations, origins=origins, notes=notes, schema_after=current)


def _resolve_command(text: str, index: int, schema: Schema) -> tuple[list[dict[str, Any]], list[str], Schema]:
    from agents.transform import commands  # imported here: commands builds on this module's vocabulary

    field_path = f"commands[{index}]"
    if len(text) > MAX_COMMAND_CHARS:
        refusal = Refusal(f"a command has at most {MAX_COMMAND_CHARS} characters", "too_long")
        raise _error(refusal, field_path, text, MAX_COMMAND_CHARS)
    try:
        parsed = commands.parse_command(text)
    except commands.CommandError as error:
        refusal = Refusal(error.message, error.reason, suggestions=error.suggestions)
        raise _error(refusal, field_path, text, error.position) from None
    try:
        operation = _OPERATION.validate_python(parsed.operation)
        resolved, notes, schema_after = resolve_operation(operation, schema)
        return resolved, [*parsed.notes, *notes], schema_after
    except ValidationError as invalid:
        problem = invalid.errors()[0]
        refusal = Refusal(f"the command does not make a valid operation: {problem['msg']}", "invalid_value")
        raise _error(refusal, field_path, text, 0) from None
    except Refusal as refusal:
        position = parsed.position_of(refusal.span or refusal.path) + refusal.offset
        if refusal.located is not None:  # "at position N" counted in the command, as its details say
            refusal.message = f"{refusal.located} at position {position}"
        correction = _keyword_correction(text, schema) if refusal.reason in _CORRECTABLE else None
        if correction is not None:  # "sort by id descnding": no column 'id descnding', but a misspelled keyword
            refusal.message = correction.advice(refusal.message, at_refusal=False)
            refusal.suggestions = [correction.keyword]
            position = correction.position
        raise _error(refusal, field_path, text, position) from None


_CORRECTABLE = ("unknown_column", "type_mismatch")
"""Refusals of a command that a misspelled keyword may cause: its words read as a column name (``sort by id
descnding``) or as a value (``fill missing price with medain``)."""


def _keyword_correction(text: str, schema: Schema) -> Any:
    """The first correction of a misspelled keyword (agents.transform.commands.corrections) that makes the command
    resolve on ``schema``, or None."""
    from agents.transform import commands

    for correction in commands.corrections(text):
        try:
            operation = _OPERATION.validate_python(commands.parse_command(correction.text).operation)
            resolve_operation(operation, schema)
        except (commands.CommandError, ValidationError, Refusal):
            continue
        return correction
    return None


def _error(refusal: Refusal, field_path: str, command: str | None, position: int | None) -> InvalidParametersError:
    return InvalidParametersError(
        refusal.message,
        {
            "command": command,
            "position": position,
            "reason": refusal.reason,
            "suggestions": refusal.suggestions,
        },
        agent_id=AGENT_ID,
        field=field_path,
    )
