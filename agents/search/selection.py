"""The row selection the searcher and the aggregator share (agents.params.searcher.RowSelection), resolved against
the data's columns and turned into one Polars predicate.

Column names resolve as transform's do (agents.transform.resolve.resolve_column: exact, case-insensitive, without
separators, then one close spelling that is a typing slip, never another word; every inexact reading is a note); the
columns that select rows (filters, ranges, time ranges, keyword columns) take no close spelling, as transform's
filters do: ``state`` on a file with ``stage`` is refused, "did you mean 'stage'?"; an unknown or ambiguous name, or
a value that does not fit its column's type, is refused with an ``InvalidParametersError`` naming the field, with
suggestions. Values are typed by transform's rules (agents.transform.resolve.typed_literal) and become Polars
literals of the column's dtype. A filter's null, or its empty value (``""``, or blanks: what ``agensium search
--filter grp=`` sends), selects the missing cells, the product's missing values (PRODUCT.md "Missing values"): the
empty cells, and a text column's blank texts (a quoted empty field read as written); the empty value is understood
as null, with a note. Otherwise a cell that cannot be decided (empty, NaN in a range) is not selected. Nothing is
evaluated from text: a keyword is a literal substring. Text is compared whatever its Unicode form: a keyword or a
filter value matches text written composed (NFC: ``Köln`` with ``ö``) or decomposed (NFD: ``o`` and a combining
diaeresis), the two forms every source writes (:func:`unicode_forms`; normalising every cell would cost more than
the search).

A time range (and the aggregator's time bucket) over a text column of dates written in another layout than ISO 8601
(``03/15/2024``, ``15.03.2024 10:30``) reads them as the type-fixer would (agents.values.plan_dates, from the
column's distinct values): when every value reads, with a day/month order that no tie decides and a 4-digit year
(a 2-digit year's century is a guess); the reading is a note. Otherwise the range is refused, saying how many values
read and why. A sort by such a column orders its rows
by those dates (read for the sort only: the rows keep their text); one that cannot be read so is sorted as text,
with a note saying why. ISO 8601 text sorts as text: its order is the dates', unless each value has its own UTC
offset (``2024-03-01T10:00:00+02:00``, agents.values.OFFSET_FORMATS): such values read as UTC instants.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from agents.bounds import below_and_above
from agents.errors import InvalidParametersError
from agents.layouts import Layout, text_of
from agents.params.searcher import NumericRange, RowSelection, TimeRange
from agents.transform.resolve import Refusal, ResolutionContext, kind_of, resolve_column, typed_literal
from agents.values import (
    READ_FORMATS,
    DatePlan,
    date_like,
    decimal_comparison,
    decimal_fits,
    exact_decimal,
    is_missing,
    plan_dates,
)

TEXT_KINDS = ("text", "category")
DAY = dt.timedelta(days=1)
DATE_LENGTH = len("2024-01-31")
ISO_DATE = "%Y-%m-%d"  # how every ISO 8601 layout of agents.values.TEMPORAL_FORMATS starts


@dataclass
class Resolver:
    """Resolves names and values against one frame's schema for one agent; keeps the notes of inexact readings."""

    schema: Mapping[str, pl.DataType]
    agent_id: str
    layouts: Mapping[str, Layout] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    data: pl.LazyFrame | None = None  # the rows, to read a text column's dates (read on ``engine``)
    engine: Literal["auto", "streaming"] = "auto"
    _dates: dict[str, DatePlan] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._context = ResolutionContext({name: str(dtype) for name, dtype in self.schema.items()})

    def column(self, name: str, path: str, *, narrows: bool = False) -> str:
        """The column ``name`` is; ``narrows``: it selects rows (a filter, range, time range or keyword column), so
        it is read exactly, ignoring case and separators, and a close spelling is refused with the suggestion
        (``state`` is never ``stage``)."""
        try:
            exact = resolve_column(self._context, name, path, exact=narrows)
        except Refusal as refusal:
            raise self.refuse(refusal) from None
        self.notes.extend(self._context.notes)
        self._context.notes.clear()
        return exact

    def columns(self, names: Sequence[str], path: str, *, narrows: bool = False) -> list[str]:
        """Each name resolved, a column named twice kept once."""
        return list(dict.fromkeys(self.column(name, f"{path}[{i}]", narrows=narrows) for i, name in enumerate(names)))

    def kind(self, column: str) -> str:
        return kind_of(str(self.schema[column]))

    def temporal(self, column: str, wanted: str, path: str) -> tuple[pl.Expr, str, pl.DataType]:
        """The column as dates or date-times, its kind (``date``/``datetime``) and dtype: a typed column as it is, a
        text column of dates read by their plan (module docstring); else refused (``wanted`` says what for)."""
        kind = self.kind(column)
        if kind in ("date", "datetime"):
            return pl.col(column), kind, self.schema[column]
        if kind not in TEXT_KINDS or self.data is None:
            raise self.mismatch(column, wanted, path)
        plan = self._date_plan(column, self.data)
        why = _unread(plan)
        if why is not None:
            message = f"{wanted}: '{column}' is text and {why}; convert it first (transform-my-data, or clean-my-data)"
            raise self.refuse(Refusal(message, "type_mismatch", path))
        self._note_reading(column, plan)
        return plan.expression(pl.col(column)), plan.kind, plan.dtype

    def sort_key(self, column: str, wanted: str) -> pl.Expr | None:
        """What a sort orders ``column`` by in place of its values, or None (its values): a text column of dates in
        another layout than ISO 8601 (whose text order is the dates') by its dates, read as ``temporal`` reads them
        (a note). One that some value reads as a date but that cannot be read so is sorted as text, with a note
        saying why (``wanted``: the sort, as the note names it)."""
        if self.kind(column) not in TEXT_KINDS or self.data is None:
            return None
        plan = self._date_plan(column, self.data)
        if not plan.formats or all(fmt.pattern.startswith(ISO_DATE) and not fmt.zoned for fmt, _ in plan.formats):
            return None  # ISO 8601 text sorts in date order, unless each value has its own UTC offset
        why = _unread(plan)
        if why is not None:
            self._note(f"{wanted}: '{column}' is text and {why}, so it is sorted as text; convert it first to sort "
                       "by date (transform-my-data, or clean-my-data)")  # fmt: skip
            return None
        self._note_reading(column, plan)
        return plan.expression(pl.col(column))

    def _date_plan(self, column: str, data: pl.LazyFrame) -> DatePlan:
        """How a text column's dates read (agents.values.plan_dates), computed once per column."""
        plan = self._dates.get(column)
        if plan is None:
            values, non_blank = _date_like_text(data, column, self.engine)
            plan = self._dates[column] = plan_dates(values, column, READ_FORMATS)
            plan.non_null = non_blank  # the values that are not date-like read as none: only their number counts
        return plan

    def _note_reading(self, column: str, plan: DatePlan) -> None:
        first, read = plan.formats[0]
        written = first.pattern if read == plan.parsed else ", then ".join(fmt.pattern for fmt, _ in plan.formats)
        instants = ", as UTC instants" if plan.zoned else ""
        self._note(f"'{column}' is text: its dates were read as written ({written}){instants}")

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def refuse(self, refusal: Refusal) -> InvalidParametersError:
        return InvalidParametersError(
            refusal.message,
            {"reason": refusal.reason, "suggestions": refusal.suggestions},
            agent_id=self.agent_id,
            field=refusal.path or None,
        )

    def mismatch(self, column: str, wanted: str, path: str) -> InvalidParametersError:
        dtype = self.schema[column]
        return self.refuse(Refusal(f"column '{column}' holds {dtype} values; {wanted}", "type_mismatch", path))

    def typed(self, value: Any, column: str, path: str) -> Any:
        """``value`` typed by the column (transform's rules), as a Python value of its dtype."""
        return self.typed_as(value, column, self.schema[column], path)

    def typed_as(self, value: Any, column: str, dtype: pl.DataType, path: str) -> Any:
        """``value`` typed as ``dtype`` (the column's, or the one its text is read as), as Python holds it."""
        try:
            typed = typed_literal(value, column, str(dtype), path, assign=False)
            return python_value(typed, dtype)
        except Refusal as refusal:
            raise self.refuse(refusal) from None
        except ValueError:
            raise self.refuse(Refusal(f"column '{column}' holds {dtype} values; {value!r} is not one",
                                      "type_mismatch", path)) from None  # fmt: skip


def python_value(typed: Any, dtype: pl.DataType) -> Any:
    """A value as ``typed_literal`` gives it (ISO text for dates) as Python holds it for ``dtype``: a naive date-time
    on a zoned column is the zone's wall time; an aware one on a naive column is refused (ValueError)."""
    if isinstance(dtype, pl.Date):
        return dt.date.fromisoformat(typed)
    if isinstance(dtype, pl.Datetime):
        moment = dt.datetime.fromisoformat(typed)
        if dtype.time_zone is None:
            if moment.tzinfo is not None:
                raise ValueError(typed)
            return moment
        zone = ZoneInfo(dtype.time_zone)
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    if isinstance(dtype, pl.Decimal):  # typed_literal gives a whole number, an exact float or the exact text
        number = exact_decimal(typed)
        if number is None:
            raise ValueError(typed)
        return number
    return typed


@dataclass(frozen=True)
class Selection:
    """The predicate (None: every row), the parameters as understood (exact names, typed values as JSON), and the
    keyword columns' lowercased text, computed once per column (not once per keyword) as temporary columns."""

    predicate: pl.Expr | None
    understood: dict[str, Any]
    lowered: list[pl.Expr] = field(default_factory=list)

    def apply(self, query: pl.LazyFrame) -> pl.LazyFrame:
        """The selected rows of ``query``, with its own columns only."""
        if self.predicate is None:
            return query
        if not self.lowered:
            return query.filter(self.predicate)
        return (
            query.with_columns(self.lowered)
            .filter(self.predicate)
            .drop(_temporary(i) for i in range(len(self.lowered)))
        )


def resolve_selection(resolver: Resolver, params: RowSelection) -> Selection:
    parts: list[pl.Expr] = []
    filters: dict[str, list[Any]] = {}
    for name, values in params.filters.items():
        column = resolver.column(name, f"filters.{name}", narrows=True)
        expr, typed = _membership(resolver, column, values, f"filters.{name}")
        parts.append(expr)
        filters[column] = sorted({_show(v): _json_value(v) for v in typed}.values(), key=_show)
    keyword_columns: list[str] = []
    lowered: list[pl.Expr] = []
    if params.keywords:
        keyword_columns = _keyword_columns(resolver, params.keyword_columns)
        lowered = [_lowered(resolver, name).alias(_temporary(i)) for i, name in enumerate(keyword_columns)]
        parts.extend(_keywords(len(keyword_columns), params.keywords))
    time_ranges = [_time_range(resolver, item, f"time_ranges[{i}]") for i, item in enumerate(params.time_ranges)]
    ranges = [_range(resolver, item, f"ranges[{i}]") for i, item in enumerate(params.ranges)]
    parts.extend(expr for expr, _ in time_ranges)
    parts.extend(expr for expr, _ in ranges)
    understood = {
        "filters": filters,
        "keywords": sorted({keyword.lower() for keyword in params.keywords}),
        "keyword_columns": keyword_columns,
        "time_ranges": [shown for _, shown in time_ranges],
        "ranges": [shown for _, shown in ranges],
    }
    predicate = reduce(lambda a, b: a & b, parts) if parts else None
    return Selection(predicate, understood, lowered)


def _membership(resolver: Resolver, column: str, values: list[Any], path: str) -> tuple[pl.Expr, list[Any]]:
    """The cell is one of ``values`` (a null or an empty value among them: or missing, :func:`_missing`). An integer
    column compared with a fraction, or with a whole number out of its range, cannot match it."""
    dtype = resolver.schema[column]
    empty = [value for value in values if _is_empty(value)]
    if empty:
        shown = ", ".join(dict.fromkeys(repr(value) for value in empty))
        resolver._note(f"{path}: {shown} read as the missing (empty) cells, as null")
    typed = [resolver.typed(value, column, f"{path}[{i}]") for i, value in enumerate(values) if not _is_missing(value)]
    kept = typed
    if isinstance(dtype, pl.Decimal):  # exact; a value with more decimals than the column's scale equals no cell
        precision, scale = dtype.precision or 38, dtype.scale or 0
        kept = [v for v in typed if decimal_fits(v, precision, scale)]
        if len(kept) < len(typed):
            shown = ", ".join(dict.fromkeys(_show(v) for v in typed if v not in kept))
            resolver._note(f"{path}: {shown} cannot equal a value of '{column}' ({dtype}: {scale} decimals at most, "
                           f"{precision - scale} whole digits): matches no row")  # fmt: skip
    if dtype.is_integer():
        low, high = _int_bounds(dtype)
        kept = [v for v in typed if not (isinstance(v, float) and not v.is_integer()) and low <= v <= high]
        kept = [int(v) for v in kept]
    subject = pl.col(column)
    if resolver.kind(column) == "category":
        subject, dtype = subject.cast(pl.String), pl.String()
    if dtype == pl.String:
        kept = list(dict.fromkeys(form for value in kept for form in unicode_forms(str(value))))
    member = subject.is_in(pl.Series(kept, dtype=dtype).implode()) if kept else pl.lit(False)
    missing = any(_is_missing(value) for value in values)
    expr = (member.fill_null(False) | _missing(resolver, column)) if missing else member.fill_null(False)
    return expr, typed + ([None] if missing else [])


def _is_empty(value: Any) -> bool:
    """A filter value that is text and empty or blank (``""``, ``" "``): a missing value, as null."""
    return isinstance(value, str) and not value.strip()


def _is_missing(value: Any) -> bool:
    return value is None or _is_empty(value)


def _missing(resolver: Resolver, column: str) -> pl.Expr:
    """The column's missing cells: empty, and for text also blank (agents.values.is_missing without tokens: the
    tokens were read as nulls, or the data was read with none)."""
    return is_missing(pl.col(column), resolver.schema[column], ())


def _int_bounds(dtype: pl.DataType) -> tuple[int, int]:
    """The values an integer dtype holds (``Int8``: -128..127, ``UInt16``: 0..65535)."""
    name = str(dtype)
    bits = int(name.removeprefix("U").removeprefix("Int"))
    return (0, 2**bits - 1) if name.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _keyword_columns(resolver: Resolver, names: list[str] | None) -> list[str]:
    if names is not None:
        return resolver.columns(names, "keyword_columns", narrows=True)
    columns = [name for name in resolver.schema if resolver.kind(name) in TEXT_KINDS]
    if not columns:
        message = "the data has no text column to look for keywords in; name keyword_columns"
        raise resolver.refuse(Refusal(message, "no_text_column", "keywords"))
    return columns


def _temporary(index: int) -> str:
    """The name of a temporary column (a NUL first: no column read from a file is named so)."""
    return f"\x00keyword_text_{index}"


def _lowered(resolver: Resolver, name: str) -> pl.Expr:
    """A keyword column as lowercased text (dates in their layout, numbers as written by Polars)."""
    dtype = resolver.schema[name]
    text = pl.col(name) if resolver.kind(name) == "text" else text_of(pl.col(name), dtype, resolver.layouts.get(name))
    return text.str.to_lowercase()


def _keywords(columns: int, keywords: list[str]) -> list[pl.Expr]:
    """Per keyword: a literal substring, in either Unicode form, of one of the lowercased keyword columns."""
    return [
        pl.any_horizontal(
            pl.col(_temporary(i)).str.contains(form, literal=True).fill_null(False)
            for i in range(columns)
            for form in unicode_forms(keyword)
        )
        for keyword in sorted({keyword.lower() for keyword in keywords})
    ]


def unicode_forms(text: str) -> list[str]:
    """``text`` composed (NFC) and decomposed (NFD): one item when both are the same (``Koln``), two otherwise."""
    return list(dict.fromkeys(unicodedata.normalize(form, text) for form in ("NFC", "NFD")))


def _date_like_text(data: pl.LazyFrame, column: str, engine: Literal["auto", "streaming"]) -> tuple[pl.DataFrame, int]:
    """A text column's distinct non-blank values (stripped) that look like dates (agents.values.date_like) with
    their row counts (``value``, ``count``), and the number of its non-blank values: one pass that hashes only the
    date-like values (a column of names costs a pattern match per row, not a table of every name)."""
    value = pl.col("value")
    counts = (
        data.select(pl.col(column).cast(pl.String).str.strip_chars().alias("value"))
        .filter(value.is_not_null() & (value != ""))
        .group_by(pl.when(date_like(value)).then(value).alias("value"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .collect(engine=engine)
    )
    return counts.filter(value.is_not_null()), int(counts["count"].sum())


def _unread(plan: DatePlan) -> str | None:
    """Why a text column's dates cannot be read by their plan (none reads, some do not, or whether day or month
    comes first, or a 2-digit year's century, is a guess), or None when every value reads."""
    ties = [item for item in plan.ambiguity if item["ambiguous_values"] and item["decided_by"].startswith("tie")]
    if not plan.formats:
        return "no value reads as a date"
    if ties:
        both = ties[0]["ambiguous_values"]
        return f"whether day or month comes first is a guess ({both:,} values read both ways)"
    if plan.two_digit_years:  # 13/04/55: 1955 or 2055?
        return f"its {plan.two_digit_years['values']:,} dates with a 2-digit year have a century that is a guess"
    if plan.parsed < plan.non_null:
        return f"{plan.non_null - plan.parsed:,} of its {plan.non_null:,} values do not read as dates"
    return None


def _time_range(resolver: Resolver, item: TimeRange, path: str) -> tuple[pl.Expr, dict[str, Any]]:
    column = resolver.column(item.column, f"{path}.column", narrows=True)
    subject, kind, dtype = resolver.temporal(column, "a time range needs a date or date-time column", f"{path}.column")
    parts = [subject.is_not_null()]
    for end, text in (("from", item.from_), ("to", item.to)):
        if text is None:
            continue
        whole_day = len(text) == DATE_LENGTH
        value = _range_end(resolver, text, column, kind, dtype, f"{path}.{end}")
        if end == "from":
            parts.append(subject >= pl.lit(value, dtype=dtype))
        elif isinstance(dtype, pl.Datetime) and whole_day:  # the whole last day is in
            parts.append(subject < pl.lit(_next_day(value, dtype), dtype=dtype))
        else:
            parts.append(subject <= pl.lit(value, dtype=dtype))
    shown = {"column": column, "from": item.from_, "to": item.to}
    return reduce(lambda a, b: a & b, parts), shown


_DATE_LAYOUT = "an ISO 8601 date, YYYY-MM-DD (2024-03-15)"
_DATETIME_LAYOUTS = (
    "an ISO 8601 date, YYYY-MM-DD (2024-03-15: the whole day), or date-time, YYYY-MM-DDTHH:MM[:SS[.ffffff]] "
    "(2024-03-15T10:30)"
)


def _range_end(resolver: Resolver, text: str, column: str, kind: str, dtype: pl.DataType, path: str) -> Any:
    """One end of a time range as a Python value of the column's (or its read dates') dtype; a value that is not
    one is refused naming the parameter (``path``, ``time_ranges[0].from``), the value, why, and the layouts the
    parameter takes (the parameter model has already checked the characters' layout)."""
    accepted = _DATE_LAYOUT if kind == "date" else _DATETIME_LAYOUTS

    def refuse(why: str, advice: str | None = None) -> InvalidParametersError:
        message = f"{path}: '{text}' {why}; {advice or f'give {accepted}'}"
        return resolver.refuse(Refusal(message, "type_mismatch", path))

    if kind == "date" and len(text) != DATE_LENGTH:
        raise refuse(f"has a time of day, but '{column}' holds dates")
    problem = _calendar_problem(text)
    if problem is not None:
        raise refuse(f"is no {'date' if len(text) == DATE_LENGTH else 'date-time'} ({problem})")
    try:
        return resolver.typed_as(text, column, dtype, path)
    except InvalidParametersError:
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None and _has_offset(text):
            raise refuse(
                f"has a UTC offset, but '{column}' holds date-times without a time zone",
                "give the date-time without the offset, as the column's clock shows it (2024-03-15T10:30)",
            ) from None
        if "." in text[DATE_LENGTH:]:
            raise refuse("has more than 6 decimals of a second (date-times hold microseconds)") from None
        raise refuse("does not read as a date or date-time") from None


def _calendar_problem(text: str) -> str | None:
    """Why ISO 8601 text names no day or time of day (``month 13``, ``day 30 of February 2024``), or None."""
    try:
        year, month, day = (int(part) for part in text[:DATE_LENGTH].split("-"))
    except ValueError:
        return None  # the parameter model checked the layout: left to typed_literal
    if not 1 <= month <= 12:  # noqa: PLR2004 - months of the year
        return f"there is no month {month}"
    try:
        dt.date(year, month, day)
    except ValueError:
        return f"{dt.date(year, month, 1):%B %Y} has no day {day}"
    clock = text[DATE_LENGTH + 1 : DATE_LENGTH + 9].split(":")
    if len(text) > DATE_LENGTH and len(clock) >= 2 and all(part[:2].isdigit() for part in clock):  # noqa: PLR2004
        hour, minute, second = int(clock[0][:2]), int(clock[1][:2]), int(clock[2][:2]) if len(clock) > 2 else 0  # noqa: PLR2004
        if hour > 23 or minute > 59 or second > 59:  # noqa: PLR2004 - a clock's hours, minutes and seconds
            return f"{hour:02d}:{minute:02d}:{second:02d} is no time of day"
    return None


def _has_offset(text: str) -> bool:
    return text.endswith(("Z", "z")) or re.search(r"[+-]\d{2}:?\d{2}$", text[DATE_LENGTH:]) is not None


def _next_day(moment: dt.datetime, dtype: pl.Datetime) -> dt.datetime:
    """The midnight after ``moment``'s day, on the column's wall clock."""
    following = moment.replace(tzinfo=None) + DAY
    return following if dtype.time_zone is None else following.replace(tzinfo=ZoneInfo(dtype.time_zone))


def _range(resolver: Resolver, item: NumericRange, path: str) -> tuple[pl.Expr, dict[str, Any]]:
    column = resolver.column(item.column, f"{path}.column", narrows=True)
    kind = resolver.kind(column)
    if kind not in ("int", "float"):
        raise resolver.mismatch(column, "a numeric range needs a numeric column", f"{path}.column")
    subject = pl.col(column)
    parts = [subject.is_not_null()]
    dtype = resolver.schema[column]
    if dtype.is_float():
        parts.append(subject.is_not_nan())
    if isinstance(dtype, pl.Decimal):  # exact: the bounds as written (their shortest text), never through a float
        for cmp, bound in ((">=", item.min), ("<=", item.max)):
            number = None if bound is None else exact_decimal(bound)
            if number is not None:
                parts.append(decimal_comparison(cmp, subject, number, dtype))
        return reduce(lambda a, b: a & b, parts), {"column": column, "min": item.min, "max": item.max}
    below, above = below_and_above(subject, dtype, item.min, item.max)  # integers in integers: 64-bit ids exactly
    parts += [~below, ~above]
    return reduce(lambda a, b: a & b, parts), {"column": column, "min": item.min, "max": item.max}


def _json_value(value: Any) -> Any:
    """A typed value as JSON shows it: dates as ISO text, non-finite numbers as text."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, decimal.Decimal):  # as resolution writes it: a whole number, an exact float, else text
        if value == value.to_integral_value():
            return int(value)
        return float(value) if decimal.Decimal(repr(float(value))) == value else format(value.normalize(), "f")
    return value


def _show(value: Any) -> str:
    return repr(_json_value(value))
