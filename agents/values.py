"""Values written as text: missing-value tokens, numbers, booleans and dates, as every agent reads them.

One rule for the whole product, so that a value the profiler counts as missing is one the type fixer nulls
and the quarantine treats as empty, and a number the quarantine accepts is one the type fixer converts.

Missing values (PRODUCT.md "Missing values"): null, an empty or whitespace-only text, and the tokens of
:data:`DEFAULT_NULL_TOKENS` (exactly, after trimming: pandas' default ``na_values``), configurable per agent
with ``null_tokens`` (an empty list: only empty fields). A float NaN is a missing value too, counted under
the token ``NaN``, unless the token list is empty (then NaN is a value, as in Polars).
Everything here builds Polars expressions over whole columns; nothing loops over rows.

Numbers (``number_text``): leading/trailing whitespace is ignored; one currency symbol ``$ € £ ¥ ₹ ¢``
before or after the sign or after the number is ignored ("$12", "-$1,000", "12€"); a trailing ``%`` is
removed and the number kept as written ("15%" -> 15, not 0.15); thousands separators are removed only
when the grouping is well formed ("1,234.5" -> 1234.5, "1,23" is not a number); an accounting negative
in parentheses is negated ("(12)" -> -12, "(-12)" is not a number); plain and scientific notation are
accepted; "nan", "inf" and European decimal commas ("1.234,5") are not numbers.

Booleans: ``true/false/yes/no/y/n/1/0`` in any case, whitespace ignored.

Dates: a fixed list of formats (``TEMPORAL_FORMATS``) is tried with ``str.to_date/str.to_datetime``
(``strict=False``, whole value). Four-digit-year formats only accept years 1000..9999 (chrono would read
"01/05/24" with ``%Y`` as the year 24). A column's formats are ranked by how many of its values they
read; values are read by the first format in that order that can read them, so where a value reads
both as day/month and month/day, the order that reads more of the column wins (a tie goes to
month/day, Agensium's ``MM/DD/YYYY``), and each such pair is reported (``ambiguity``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import polars as pl

from agents.columns import is_text, narrow
from agents.layouts import (
    Layout,
    apply_layouts,
    beyond_double_columns,
    boolean_layouts,
    find_layouts,
    maybe_beyond_double,
    number_layouts,
)
from agents.params.common import DEFAULT_NULL_TOKENS
from agents.readers import _written_otherwise as written_otherwise  # the reader's rule for number-like codes

NAN_TOKEN = "NaN"  # what a float NaN is counted as
EMPTY_TEXT = ""  # what an empty or whitespace-only text (a quoted empty field: "") is counted as


TemporalKind = Literal["date", "datetime"]

CURRENCY_SIGN = r"[$€£¥₹¢]"  # the symbols a number may be written with (convert_currency)
CURRENCY = rf"(?:{CURRENCY_SIGN}\s*)?"
DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"  # thousands well grouped, or none
PLAIN_NUMBER_PATTERN = r"^\s*" + CURRENCY + r"[+-]?\s*" + CURRENCY + DIGITS + r"\s*" + CURRENCY + r"%?\s*$"
ACCOUNTING_NEGATIVE_PATTERN = r"^\s*\(\s*" + CURRENCY + DIGITS + r"\s*" + CURRENCY + r"%?\s*\)\s*$"
LEADING_ZERO_PATTERN = r"^[+-]?0\d+$"
BOOLEAN_TRUE = ("true", "yes", "y", "1")
BOOLEAN_FALSE = ("false", "no", "n", "0")
BOOLEAN_WORDS = ("true", "false", "yes", "no", "y", "n")
MIN_YEAR = 1000
BELOW_MIN_DATE = dt.date(MIN_YEAR - 1, 12, 31)  # the last day and microsecond before MIN_YEAR
BELOW_MIN_DATETIME = dt.datetime(MIN_YEAR, 1, 1) - dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class TemporalFormat:
    pattern: str
    kind: TemporalKind
    swapped: str | None = None  # the same layout with day and month exchanged
    four_digit_year: bool = True
    zoned: bool = False  # the values carry a UTC offset or Z (``%#z``): read as UTC instants


def _formats() -> tuple[TemporalFormat, ...]:
    date: TemporalKind = "date"
    dt: TemporalKind = "datetime"
    return (
        TemporalFormat("%Y-%m-%d", date),
        TemporalFormat("%Y/%m/%d", date),
        TemporalFormat("%m/%d/%Y", date, "%d/%m/%Y"),
        TemporalFormat("%d/%m/%Y", date, "%m/%d/%Y"),
        TemporalFormat("%m-%d-%Y", date, "%d-%m-%Y"),
        TemporalFormat("%d-%m-%Y", date, "%m-%d-%Y"),
        TemporalFormat("%d.%m.%Y", date),
        TemporalFormat("%m/%d/%y", date, "%d/%m/%y", four_digit_year=False),
        TemporalFormat("%d/%m/%y", date, "%m/%d/%y", four_digit_year=False),
        TemporalFormat("%d %b %Y", date),
        TemporalFormat("%d-%b-%Y", date),
        TemporalFormat("%b %d, %Y", date),
        TemporalFormat("%b %d %Y", date),  # R's and JavaScript's "Jan 1 2000"
        TemporalFormat("%d %B %Y", date),
        TemporalFormat("%B %d, %Y", date),
        TemporalFormat("%B %d %Y", date),
        TemporalFormat("%Y-%m-%d %H:%M:%S%.f", dt),
        TemporalFormat("%Y-%m-%dT%H:%M:%S%.f", dt),
        TemporalFormat("%Y-%m-%dT%H:%M:%S%.fZ", dt),
        TemporalFormat("%Y-%m-%d %H:%M", dt),
        TemporalFormat("%Y-%m-%dT%H:%M", dt),
        TemporalFormat("%m/%d/%Y %H:%M:%S", dt, "%d/%m/%Y %H:%M:%S"),
        TemporalFormat("%d/%m/%Y %H:%M:%S", dt, "%m/%d/%Y %H:%M:%S"),
        TemporalFormat("%m/%d/%Y %H:%M", dt, "%d/%m/%Y %H:%M"),
        TemporalFormat("%d/%m/%Y %H:%M", dt, "%m/%d/%Y %H:%M"),
    )


TEMPORAL_FORMATS: tuple[TemporalFormat, ...] = _formats()
DATE_LIKE_PATTERN = (
    r"^\s*(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}[ -][A-Za-z]{3,9}\.?[ -]\d{4}|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})"
)
"""What every value of ``TEMPORAL_FORMATS`` starts like: one cheap match decides which values are parsed."""
DATE_FORMATS = tuple(item for item in TEMPORAL_FORMATS if item.kind == "date")
OFFSET_FORMATS: tuple[TemporalFormat, ...] = tuple(
    TemporalFormat(f"%Y-%m-%d{separator}%H:%M{seconds}%#z", "datetime", zoned=True)
    for seconds in (":%S%.f", "")
    for separator in ("T", " ")
)
"""RFC 3339 / ISO 8601 timestamps with a UTC offset or ``Z`` (``2024-03-01T10:00:00+02:00``, ``...-0500``,
``...Z``), each value with its own offset: read as UTC instants (``Datetime("us", "UTC")``). Not among
``TEMPORAL_FORMATS``: the agents that write dates back (clean) keep such a column as text, as written; the tools
that only read dates (profile, search, transform's cast) use :data:`READ_FORMATS`."""
READ_FORMATS = TEMPORAL_FORMATS + OFFSET_FORMATS
TWO_DIGIT_YEAR_RULE = "a 2-digit year 00-69 read as 2000-2069, 70-99 as 1970-1999"
"""How a 2-digit year (``%y``) is read (chrono's, as Polars parses it; Python's strptime pivots at 69 instead): the
century is a guess, so a date plan that reads such values says so (:attr:`DatePlan.two_digit_years`) and the agents
that write dates back do not convert them by default (``convert_ambiguous_dates``)."""
ZONE_SUFFIX_PATTERN = r":\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"  # how every value they read ends

NAMED_FORMATS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    "phone": r"\+?[0-9(][0-9 ().-]{5,18}[0-9]",
    "url": r"(?i)https?://[^\s/$.?#][^\s]*",
    "uuid": r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "zip": r"[0-9]{5}(?:-[0-9]{4})?",
}
"""Named formats of ``format_constraints``; "date" is also a name, checked by parsing (``DATE_FORMATS``)."""


# ---------------------------------------------------------------------------------------------------------
# missing values


def is_missing_token(expr: pl.Expr, tokens: Sequence[str] = DEFAULT_NULL_TOKENS) -> pl.Expr:
    """True where a text value is one of ``tokens`` or empty, after trimming (false for nulls; always false
    without tokens: then nothing but a null is missing, Polars' rule)."""
    if not tokens:
        return pl.lit(False)
    return expr.cast(pl.String).str.strip_chars().is_in([*tokens, EMPTY_TEXT]).fill_null(False)


def is_missing(expr: pl.Expr, dtype: pl.DataType, tokens: Sequence[str] = DEFAULT_NULL_TOKENS) -> pl.Expr:
    """The product's missing value: null; for text also blank or a token; for floats NaN (when ``tokens``
    is not empty)."""
    if is_text(dtype):
        text = expr.cast(pl.String).str.strip_chars()
        blank = expr.is_null() | (text == "")
        return blank | text.is_in(list(tokens)) if tokens else blank
    if dtype.is_float() and tokens:
        return expr.is_null() | expr.is_nan()
    return expr.is_null()


@dataclass
class MissingTokens:
    """Which missing-value tokens a frame held and what became of them.

    ``counts``: per column with any, the tokens found and how often (``{"NA": 12}``; a float NaN counts as
    ``NaN``, an empty or whitespace-only text, e.g. a quoted empty field, as ``""``); ``retyped``: columns
    that were text only because of their tokens, with the dtype they now have (``{"age": "Int64"}``);
    ``layouts``: those of them now dates, timestamps, decimals or booleans, with the layout they were written in
    (to write them back as they were)."""

    tokens: tuple[str, ...] = DEFAULT_NULL_TOKENS
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    retyped: dict[str, str] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(found.values()) for found in self.counts.values())

    def describe(self) -> dict[str, Any]:
        return {
            "tokens": list(self.tokens),
            "values_nulled": self.total,
            "by_column": self.counts,
            "retyped_columns": self.retyped,
        }


def count_missing_tokens(
    frame: pl.DataFrame | pl.LazyFrame,
    tokens: Sequence[str] = DEFAULT_NULL_TOKENS,
    *,
    engine: Literal["auto", "streaming"] = "auto",
) -> dict[str, dict[str, int]]:
    """Per column, the tokens it holds with their counts (columns without any are left out). One query: each
    text column's token values counted (a short list per column), each float column's NaNs."""
    if not tokens:
        return {}
    missing = list(dict.fromkeys([*tokens, EMPTY_TEXT]))
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    exprs: list[pl.Expr] = []
    # On the streaming engine each token is counted by a sum of matches: a filter inside a select gathers the whole
    # column first (7.3M rows: the streamed profile's peak went from 0.8 to 2.0 GB).
    streamed = engine == "streaming"
    maybe_token = _maybe_token_pattern(missing)
    for index, (name, dtype) in enumerate(schema.items()):
        if is_text(dtype):
            raw = pl.col(name).cast(pl.String)
            if streamed:
                text = raw.str.strip_chars()
                exprs += [(text == token).sum().alias(f"t{index}:{k}") for k, token in enumerate(missing)]
            else:
                # The values the pattern lets through (the tokens, and rarely a few others), counted below:
                # trimming every value of a text column to compare it costs several times the pattern's pass.
                exprs.append(raw.filter(raw.str.contains(maybe_token)).implode().alias(f"t{index}"))
        elif dtype.is_float():
            exprs.append(pl.col(name).is_nan().sum().alias(f"n{index}"))
    if not exprs:
        return {}
    found_values = frame.lazy().select(exprs).collect(engine=engine)
    row = found_values.row(0, named=True)
    by_key = {} if streamed else _token_counts(found_values, missing)
    counts: dict[str, dict[str, int]] = {}
    for index, name in enumerate(schema.names()):
        found: list[tuple[str, int]]
        if streamed:
            found = [(token, int(row.get(f"t{index}:{k}") or 0)) for k, token in enumerate(missing)]
        else:
            found = by_key.get(f"t{index}", [])
        pairs = sorted((pair for pair in found if pair[1]), key=lambda pair: (-pair[1], pair[0]))
        if pairs:
            counts[name] = dict(pairs)
        nans = row.get(f"n{index}")
        if nans:
            counts[name] = {NAN_TOKEN: int(nans)}
    return counts


def _token_counts(found_values: pl.DataFrame, missing: Sequence[str]) -> dict[str, list[tuple[str, int]]]:
    """Per list column ``t{index}`` of ``found_values`` (one row: each text column's values the pattern let
    through), those that are one of ``missing`` once trimmed, trimmed and counted. One query over the lists
    stacked: an expression per column costs Polars time in the number of columns (10,000 columns: 6 s)."""
    lists = [name for name in found_values.columns if name.startswith("t")]
    if not lists:
        return {}
    text = pl.col("value").str.strip_chars()
    counted = (
        found_values.select(lists)
        .unpivot(variable_name="key", value_name="value")
        .explode("value")
        .filter(text.is_in(missing))
        .group_by("key", text.alias("token"))
        .len()
    )
    by_key: dict[str, list[tuple[str, int]]] = {}
    for key, token, count in counted.iter_rows():
        by_key.setdefault(key, []).append((token, int(count)))
    return by_key


def _maybe_token_pattern(missing: Sequence[str]) -> str:
    """A pattern matched by every text whose trimmed value is one of ``missing`` (and by a few others: a token
    that itself starts or ends with whitespace); ``\\s`` is Unicode whitespace, what ``strip_chars`` trims."""
    return r"^\s*(?:" + "|".join(pl.escape_regex(token) for token in missing if token) + r")?\s*$"


def null_missing_tokens(
    frame: pl.LazyFrame, counts: Mapping[str, Mapping[str, int]], tokens: Sequence[str]
) -> pl.LazyFrame:
    """``frame`` with the counted tokens (and NaNs) of each column in ``counts`` turned into nulls."""
    schema = frame.collect_schema()
    exprs = []
    for name in counts:
        column = pl.col(name)
        if schema[name].is_float():
            exprs.append(column.fill_nan(None))
        else:
            exprs.append(pl.when(is_missing_token(column, tokens)).then(None).otherwise(column).alias(name))
    return frame.with_columns(exprs) if exprs else frame


def inferred_types(
    frame: pl.LazyFrame, columns: Sequence[str], *, engine: Literal["auto", "streaming"] = "auto"
) -> dict[str, pl.DataType]:
    """For String ``columns``, the type a CSV reader would have inferred had they held no token: Int64, Int128
    (integers past 64 bits: a Float64 would round them), Float64 or Boolean (``true``/``false``, any case) when every
    non-null value casts; the others are left out (dates
    and timestamps are :func:`agents.layouts.find_layouts`' part). A number that a number would not write back
    as it is (``007``, ``+5``, ``-0``) makes the column a code, kept as text, as the reader keeps it; so does, for
    Float64, a value with more digits than a double holds (``1.123456789012345678``:
    :func:`agents.layouts.beyond_double_columns`)."""
    schema = frame.collect_schema()  # once: each call builds the whole schema
    candidates = [name for name in columns if schema[name] == pl.String]
    if not candidates:
        return {}
    exprs = []
    for index, name in enumerate(candidates):
        column = pl.col(name)
        exprs += [
            column.count().alias(f"n{index}"),
            column.cast(pl.Int64, strict=False).count().alias(f"i{index}"),
            column.cast(pl.Int128, strict=False).count().alias(f"w{index}"),
            column.cast(pl.Float64, strict=False).count().alias(f"f{index}"),
            column.str.to_lowercase().is_in(["true", "false"]).sum().alias(f"b{index}"),
            written_otherwise(column).any().alias(f"c{index}"),
            maybe_beyond_double(column).any().alias(f"l{index}"),
        ]
    row = frame.select(exprs).collect(engine=engine).row(0, named=True)
    found: dict[str, pl.DataType] = {}
    for index, name in enumerate(candidates):
        present = row[f"n{index}"]
        if not present:
            continue
        numbers = () if row[f"c{index}"] else (("i", pl.Int64()), ("w", pl.Int128()), ("f", pl.Float64()))
        for key, dtype in (*numbers, ("b", pl.Boolean())):
            if row[f"{key}{index}"] == present:
                found[name] = dtype
                break
    longs = [name for index, name in enumerate(candidates) if found.get(name) == pl.Float64 and row[f"l{index}"]]
    for name in beyond_double_columns(frame, longs, engine=engine):  # a float would change a value: text
        del found[name]
    return found


def _typed(name: str, dtype: pl.DataType) -> pl.Expr:
    """The text column ``name`` as ``dtype`` (inferred_types'): Polars casts no text to Boolean."""
    column = pl.col(name)
    return (column.str.to_lowercase() == "true").alias(name) if dtype == pl.Boolean else column.cast(dtype)


def normalize_missing(
    frame: pl.DataFrame, tokens: Sequence[str] = DEFAULT_NULL_TOKENS
) -> tuple[pl.DataFrame, MissingTokens]:
    """``frame`` with every missing-value token a real null, and the columns that were text only because of
    them typed as a reader would have typed them; with the report of what was found and done."""
    lazy, report = normalize_missing_lazy(frame.lazy(), tokens)
    return (lazy.collect() if report.counts else frame), report


def normalize_missing_lazy(
    frame: pl.LazyFrame, tokens: Sequence[str] = DEFAULT_NULL_TOKENS, *, engine: Literal["auto", "streaming"] = "auto"
) -> tuple[pl.LazyFrame, MissingTokens]:
    """:func:`normalize_missing` as a query (scans of the data: the counts, the retyping check, then the layouts
    of the columns retyped: dates, decimals and booleans as they were written)."""
    counts = count_missing_tokens(frame, tokens, engine=engine)
    report = MissingTokens(tokens=tuple(tokens), counts=counts)
    if not counts:
        return frame, report
    nulled = null_missing_tokens(frame, counts, tokens)
    retyped = inferred_types(nulled, list(counts), engine=engine)
    decimals = [name for name, dtype in retyped.items() if dtype == pl.Float64]
    numbers: dict[str, Layout] = {**(number_layouts(nulled, decimals, engine=engine, counted=True) if decimals else {})}
    truths = [name for name, dtype in retyped.items() if dtype == pl.Boolean]
    numbers.update(boolean_layouts(nulled, truths, engine=engine) if truths else {})
    if retyped:
        nulled = nulled.with_columns(_typed(name, dtype) for name, dtype in retyped.items())
    layouts = find_layouts(nulled, [name for name in counts if name not in retyped], engine=engine)
    nulled = apply_layouts(nulled, layouts)
    report.retyped = {name: str(dtype) for name, dtype in retyped.items()}
    report.layouts = {**layouts, **numbers}
    if layouts:
        schema = nulled.collect_schema()
        report.retyped.update({name: str(schema[name]) for name in layouts})
    return nulled, report


# ---------------------------------------------------------------------------------------------------------
# numbers and booleans


def number_text(expr: pl.Expr) -> pl.Expr:
    """The value as a plain number literal ("-1234.5"), or null when it is not a number (module docstring).

    Two whole-value matches (no capture groups: Rust regex answers those with its fast engines) decide;
    the literal is the value without anything but digits, sign, point and exponent."""
    text = expr.cast(pl.String)
    literal = text.str.replace_all(r"[^0-9eE+.\-]", "")
    return (
        pl.when(text.str.contains(PLAIN_NUMBER_PATTERN))
        .then(literal)
        .when(text.str.contains(ACCOUNTING_NEGATIVE_PATTERN))
        .then(pl.concat_str(pl.lit("-"), literal))
    )


def parse_number(expr: pl.Expr) -> pl.Expr:
    """Float64 of a text value read by :func:`number_text` (null when it is not a number)."""
    return number_text(expr).cast(pl.Float64, strict=False)


def parse_integer(expr: pl.Expr) -> pl.Expr:
    """Int64 of a text value that is a whole number written without exponent ("1,234", "12.0"), cast
    exactly (not through a float); null otherwise or when it does not fit in 64 bits."""
    return integer_of_number_text(number_text(expr))


def integer_of_number_text(literal: pl.Expr) -> pl.Expr:
    """:func:`parse_integer` of a value already read by :func:`number_text`."""
    return literal.str.replace(r"\.0*$", "").cast(pl.Int64, strict=False)


def round_half_away(value: float) -> int:
    """Nearest integer, halves away from zero (2.5 -> 3, -2.5 -> -3): how integer columns take a mean."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def parse_boolean(expr: pl.Expr) -> pl.Expr:
    token = expr.cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(token.is_in(BOOLEAN_TRUE)).then(True).when(token.is_in(BOOLEAN_FALSE)).then(False)


# ---------------------------------------------------------------------------------------------------------
# dates


def parse_temporal(expr: pl.Expr, fmt: TemporalFormat) -> pl.Expr:
    """The value read with one format (Date or Datetime[us]); null when it does not read."""
    text = expr.cast(pl.String).str.strip_chars()
    if fmt.kind == "date":
        parsed = text.str.to_date(fmt.pattern, strict=False)
        below = pl.lit(BELOW_MIN_DATE, pl.Date)
    else:
        parsed = text.str.to_datetime(fmt.pattern, time_unit="us", strict=False)
        below = pl.lit(BELOW_MIN_DATETIME, pl.Datetime("us"))
        if fmt.zoned:
            below = below.dt.replace_time_zone("UTC")
    if fmt.four_digit_year:
        # Earlier than MIN_YEAR -> null, with ``parsed`` evaluated once (a when/then would parse twice).
        parsed = parsed.clip(lower_bound=below).replace(below, None)
    return parsed


@dataclass
class DatePlan:
    """How a text column's dates are read: formats in order of use, with the values each reads."""

    column: str
    non_null: int
    formats: list[tuple[TemporalFormat, int]] = field(default_factory=list)
    parsed: int = 0
    kind: TemporalKind = "date"
    ambiguity: list[dict[str, Any]] = field(default_factory=list)
    two_digit_years: dict[str, Any] | None = None
    """The values read with a 2-digit year (``%y``), whose century is a guess: ``values`` (rows), ``rule``
    (:data:`TWO_DIGIT_YEAR_RULE`), and the ``earliest`` and ``latest`` of them as read (ISO); None without any."""

    @property
    def share(self) -> float:
        return self.parsed / self.non_null if self.non_null else 0.0

    @property
    def zoned(self) -> bool:
        """Whether the plan reads values with a UTC offset (:data:`OFFSET_FORMATS`: then only such values)."""
        return any(fmt.zoned for fmt, _ in self.formats)

    @property
    def dtype(self) -> pl.DataType:
        """What :meth:`expression` gives: Date, Datetime[us], or Datetime[us, UTC] when :attr:`zoned`."""
        if self.kind == "date":
            return pl.Date()
        return pl.Datetime("us", "UTC") if self.zoned else pl.Datetime("us")

    def expression(self, expr: pl.Expr) -> pl.Expr:
        """Every value read by the first format of the plan that reads it, as the plan's kind."""
        parts: list[pl.Expr] = []
        for fmt, _ in self.formats:
            parsed = parse_temporal(expr, fmt)
            if self.kind == "datetime" and fmt.kind == "date":
                parsed = parsed.cast(pl.Datetime("us"))
            parts.append(parsed)
        if not parts:
            return pl.lit(None, self.dtype)
        return pl.when(date_like(expr)).then(pl.coalesce(parts) if len(parts) > 1 else parts[0])

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values_read": self.parsed,
            "non_null_values": self.non_null,
            "share": round(self.share, 6),
            "formats": [{"format": fmt.pattern, "values": count} for fmt, count in self.formats],
            "ambiguous_day_month": self.ambiguity,
            **({"two_digit_years": self.two_digit_years} if self.two_digit_years else {}),
            **({"time_zone": "UTC"} if self.zoned else {}),
        }

    def century_note(self) -> str | None:
        """What reading the plan's 2-digit years guesses (None without any): how many, the rule, the span."""
        years = self.two_digit_years
        if not years:
            return None
        return (
            f"{years['values']:,} dates have a 2-digit year whose century is a guess ({years['rule']}: they would "
            f"run from {years['earliest']} to {years['latest']})"
        )


def distinct_counts(frame: pl.DataFrame, column: str, *, strip: bool = True) -> pl.DataFrame:
    """The column's distinct non-blank text values (``value``) with their row counts (``count``)."""
    value = pl.col(column).cast(pl.String)
    if strip:
        value = value.str.strip_chars()
    return (
        narrow(frame, [column])
        .select(value.alias("value"))
        .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
        .group_by("value")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .collect()
    )


def plan_dates(
    values: pl.DataFrame,
    column: str,
    formats: Iterable[TemporalFormat] = TEMPORAL_FORMATS,
    preferred: TemporalFormat | None = None,
) -> DatePlan:
    """Rank ``formats`` by the rows they read in ``values`` (from :func:`distinct_counts`), keep those
    that read any, and report day/month ambiguity. ``preferred`` (if given) goes first on ties.

    Each format is tried only on the values whose characters it could read (``_character_groups``): the
    counts are those of trying every format on every value, at a fraction of the parsing.

    Zoned formats (:data:`OFFSET_FORMATS`) are not mixed with the others: a value without an offset in a column
    of instants would be a guess of its zone. They make the plan when they read more values than the others do
    (the values without an offset then do not read)."""
    candidates = list(formats)
    if preferred is not None:
        candidates = [preferred, *(fmt for fmt in candidates if fmt.pattern != preferred.pattern)]
    non_null = int(values["count"].sum()) if values.height else 0
    values = values.filter(date_like(pl.col("value")))
    naive = [fmt for fmt in candidates if not fmt.zoned]
    plan = _ranked_plan(values, column, non_null, naive)
    zoned = [fmt for fmt in candidates if fmt.zoned]
    if zoned and plan.parsed < non_null:
        offsets = values.filter(pl.col("value").str.contains(ZONE_SUFFIX_PATTERN))
        instants = _ranked_plan(offsets, column, non_null, zoned)
        if instants.parsed > plan.parsed:
            return instants
    return plan


def _ranked_plan(values: pl.DataFrame, column: str, non_null: int, candidates: list[TemporalFormat]) -> DatePlan:
    """:func:`plan_dates` with ``candidates`` over the date-like ``values``."""
    plan = DatePlan(column=column, non_null=non_null)
    if not values.height or not candidates:
        return plan
    groups = _character_groups(values, candidates)
    counts, plan.parsed = _format_counts(groups, candidates)
    ranked = sorted(
        ((fmt, counts[fmt.pattern]) for fmt in candidates),
        key=lambda item: -item[1],  # stable: ties keep the list order (month/day before day/month)
    )
    plan.formats = [(fmt, count) for fmt, count in ranked if count > 0]
    if not plan.formats:
        return plan
    plan.kind = "datetime" if any(fmt.kind == "datetime" for fmt, _ in plan.formats) else "date"
    plan.ambiguity = _ambiguity(groups, _ambiguous_pairs(plan, candidates))
    plan.two_digit_years = _two_digit_years(values, plan)
    return plan


def _two_digit_years(values: pl.DataFrame, plan: DatePlan) -> dict[str, Any] | None:
    """:attr:`DatePlan.two_digit_years` of the plan over its date-like ``values`` (no four-digit-year format reads
    a value with a 2-digit year: the plan reads them with its 2-digit-year formats, in its order)."""
    short = [fmt for fmt, _ in plan.formats if not fmt.four_digit_year]
    if not short:
        return None
    value, weight = pl.col("value"), pl.col("count")
    read = (
        pl.coalesce([parse_temporal(value, fmt) for fmt in short])
        if len(short) > 1
        else parse_temporal(value, short[0])
    )
    row = (
        values.lazy()
        .select(read.alias("read"), weight)
        .select(
            weight.filter(pl.col("read").is_not_null()).sum().alias("values"),
            pl.col("read").min().alias("earliest"),
            pl.col("read").max().alias("latest"),
        )
        .collect()
        .row(0, named=True)
    )
    if not row["values"]:
        return None
    return {
        "values": int(row["values"]),
        "rule": TWO_DIGIT_YEAR_RULE,
        "earliest": row["earliest"].isoformat(),
        "latest": row["latest"].isoformat(),
    }


def _format_counts(
    groups: list[tuple[pl.DataFrame, list[TemporalFormat]]], candidates: list[TemporalFormat]
) -> tuple[dict[str, int], int]:
    """The rows each format reads (by pattern), and the rows any of them reads."""
    value, weight = pl.col("value"), pl.col("count")
    counts = dict.fromkeys((fmt.pattern for fmt in candidates), 0)
    parsed = 0
    for group, readers in groups:
        flags = [f"__reads_{index}__" for index in range(len(readers))]
        row = (
            group.lazy()
            .select(
                weight,
                *(
                    parse_temporal(value, fmt).is_not_null().alias(flag)
                    for fmt, flag in zip(readers, flags, strict=True)
                ),
            )
            .select(
                *(
                    weight.filter(pl.col(flag)).sum().alias(fmt.pattern)
                    for fmt, flag in zip(readers, flags, strict=True)
                ),
                weight.filter(pl.any_horizontal(flags)).sum().alias("__parsed__"),
            )
            .collect()
            .row(0, named=True)
        )
        for fmt in readers:
            counts[fmt.pattern] += int(row[fmt.pattern] or 0)
        # Formats that read no value anywhere are not in the plan, so its union is this one.
        parsed += int(row["__parsed__"] or 0)
    return counts, parsed


def _ambiguity(
    groups: list[tuple[pl.DataFrame, list[TemporalFormat]]], pairs: list[tuple[TemporalFormat, TemporalFormat]]
) -> list[dict[str, Any]]:
    """For each (used first, its day/month swap) pair with values that read both ways, or values that only
    one of them reads on each side: the counts, and what decided the order."""
    totals = _swap_counts(groups, pairs)
    ambiguity: list[dict[str, Any]] = []
    for index, (first, second) in enumerate(pairs):
        both, only_first, only_second = (totals[f"{key}_{index}"] for key in ("both", "first", "second"))
        if not both and not (only_first and only_second):
            continue
        if only_first > only_second:
            decided = f"{only_first} values only read as {first.pattern}"
        else:
            decided = "tie: month/day order assumed"
        ambiguity.append(
            {
                "chosen_format": first.pattern,
                "alternative_format": second.pattern,
                "ambiguous_values": both,
                "values_only_valid_as_chosen": only_first,
                "values_only_valid_as_alternative": only_second,
                "decided_by": decided,
            }
        )
    return ambiguity


def guessed_orders(ambiguity: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of a plan's ``ambiguity`` whose day/month order, for the values that read both ways, is a guess: a
    tie (no value decides), or contradicted (some values read only as the chosen order, others only as its swap:
    the column mixes both orders, so which one a ``05/06/2024`` follows is not known)."""
    return [
        item
        for item in ambiguity
        if item["ambiguous_values"]
        and (item["decided_by"].startswith("tie") or item["values_only_valid_as_alternative"])
    ]


def _swap_counts(
    groups: list[tuple[pl.DataFrame, list[TemporalFormat]]], pairs: list[tuple[TemporalFormat, TemporalFormat]]
) -> dict[str, int]:
    """Per pair (by position): the rows both formats read as different dates (``both_``), and the rows only
    the first (``first_``) or only the second (``second_``) reads."""
    value, weight = pl.col("value"), pl.col("count")
    totals = {f"{key}_{index}": 0 for index in range(len(pairs)) for key in ("both", "first", "second")}
    for group, readers in groups if pairs else []:
        patterns = {fmt.pattern for fmt in readers}
        checks: list[pl.Expr] = []
        for index, (first, second) in enumerate(pairs):
            if first.pattern not in patterns and second.pattern not in patterns:
                continue  # neither reads a value of this group: no contribution
            a = parse_temporal(value, first) if first.pattern in patterns else pl.lit(None, _dtype(first))
            b = parse_temporal(value, second) if second.pattern in patterns else pl.lit(None, _dtype(second))
            checks += [
                weight.filter(a.is_not_null() & b.is_not_null() & (a != b)).sum().alias(f"both_{index}"),
                weight.filter(a.is_not_null() & b.is_null()).sum().alias(f"first_{index}"),
                weight.filter(a.is_null() & b.is_not_null()).sum().alias(f"second_{index}"),
            ]
        if checks:
            for key, count in group.lazy().select(checks).collect().row(0, named=True).items():
                totals[key] += int(count or 0)
    return totals


COUNTED_CHARACTERS = ("/", ".", ":", ",", "T", "Z")
"""Characters counted per value (0, 1, 2, or 3 for three or more): each format reads a fixed number."""
LETTERS_PATTERN = "[A-SU-Ya-z]"  # a letter other than T and Z
OTHER_PATTERN = r"[^0-9\s+\-/.:,A-Za-z]"  # what no digit, sign, whitespace, counted character or letter is
SAFE_DIRECTIVES = frozenset({"Y", "m", "d", "H", "M", "S", "y", "b", "B"})
MONTH_NAMES = frozenset({"b", "B"})
MANY = 3


@dataclass(frozen=True)
class _Readable:
    """What a value read by one format holds: per counted character, the range of its count (``None``: no
    upper bound); whether it may and must hold other letters, and other characters."""

    counts: dict[str, tuple[int, int | None]]
    letters: tuple[bool, bool]  # (may, must)
    other: tuple[bool, bool]

    def admits(self, counts: dict[str, int], letters: bool, other: bool) -> bool:
        """Whether a value with these counts (``MANY``: that many or more) and classes may read."""
        for char, (low, high) in self.counts.items():
            count = counts[char]
            fits = high is None or high >= MANY if count >= MANY else low <= count and (high is None or count <= high)
            if not fits:
                return False
        return all(
            (may or not held) and (held or not must)
            for held, (may, must) in ((letters, self.letters), (other, self.other))
        )


def _readable(fmt: TemporalFormat) -> _Readable | None:
    """What the values ``fmt`` reads may hold (see ``_character_groups``); None when the format has a
    directive other than the plain numeric ones, month names and ``%.f`` (every value is then tried)."""
    literal = dict.fromkeys(COUNTED_CHARACTERS, 0)
    fractions = 0
    month_name = letters = other = False
    pattern, position = fmt.pattern, 0
    while position < len(pattern):
        char = pattern[position]
        if char == "%":
            if pattern.startswith("%.f", position):
                fractions += 1
                position += 3
                continue
            directive = pattern[position + 1 : position + 2]
            if directive not in SAFE_DIRECTIVES:
                return None
            month_name = month_name or directive in MONTH_NAMES
            position += 2
            continue
        if char in literal:
            literal[char] += 1
        elif char.isascii() and char.isalpha():
            letters = True
        elif not (char.isspace() or char.isdigit() or char in "+-"):
            other = True
        position += 1
    counts: dict[str, tuple[int, int | None]] = {char: (count, count) for char, count in literal.items()}
    counts["."] = (literal["."], literal["."] + fractions)
    if month_name:  # month names are ASCII letters in any case: T and Z among them
        counts["T"], counts["Z"] = (literal["T"], None), (literal["Z"], None)
    return _Readable(counts, (letters or month_name, letters or month_name), (other, other))


def _character_groups(
    values: pl.DataFrame, formats: list[TemporalFormat]
) -> list[tuple[pl.DataFrame, list[TemporalFormat]]]:
    """``values`` split by the characters they hold, each part with the formats that could read any of its
    values (in ``formats`` order). A format reads a whole value (``exact``), consuming only its literals,
    digits, signs, whitespace, month names (ASCII letters) and ``%.f``'s point: a value holding another
    character, or a literal character more or fewer times, does not read, so skipping it changes no count."""
    value = pl.col("value").cast(pl.String)
    parts = [
        value.str.count_matches(char, literal=True).clip(upper_bound=MANY).cast(pl.UInt32) * (4**bit)
        for bit, char in enumerate(COUNTED_CHARACTERS)
    ]
    parts.append(value.str.contains(LETTERS_PATTERN).cast(pl.UInt32) * (4 ** len(COUNTED_CHARACTERS)))
    parts.append(value.str.contains(OTHER_PATTERN).cast(pl.UInt32) * (2 * 4 ** len(COUNTED_CHARACTERS)))
    marked = values.with_columns(pl.sum_horizontal(parts).alias("__signature__"))
    rules = [_readable(fmt) for fmt in formats]
    by_readers: dict[tuple[int, ...], list[int]] = {}
    for code in marked["__signature__"].unique().sort().to_list():
        counts = {char: code // 4**bit % 4 for bit, char in enumerate(COUNTED_CHARACTERS)}
        letters = bool(code // 4 ** len(COUNTED_CHARACTERS) & 1)
        other = bool(code // 4 ** len(COUNTED_CHARACTERS) & 2)
        readers = tuple(
            position for position, rule in enumerate(rules) if rule is None or rule.admits(counts, letters, other)
        )
        if readers:
            by_readers.setdefault(readers, []).append(code)
    groups: list[tuple[pl.DataFrame, list[TemporalFormat]]] = []
    for readers, codes in by_readers.items():
        part = marked.filter(pl.col("__signature__").is_in(codes)).drop("__signature__")
        groups.append((part, [formats[position] for position in readers]))
    return groups


def _dtype(fmt: TemporalFormat) -> pl.DataType:
    if fmt.kind == "date":
        return pl.Date()
    return pl.Datetime("us", "UTC") if fmt.zoned else pl.Datetime("us")


def _ambiguous_pairs(plan: DatePlan, candidates: list[TemporalFormat]) -> list[tuple[TemporalFormat, TemporalFormat]]:
    """(used first, its day/month swap) for each swap pair the plan uses; the plan's order puts the
    format reading more values first."""
    by_pattern = {fmt.pattern: fmt for fmt in candidates}
    pairs: list[tuple[TemporalFormat, TemporalFormat]] = []
    seen: set[str] = set()
    for fmt, _ in plan.formats:
        if fmt.swapped is None or fmt.pattern in seen or fmt.swapped not in by_pattern:
            continue
        seen.update({fmt.pattern, fmt.swapped})
        pairs.append((fmt, by_pattern[fmt.swapped]))
    return pairs


def reads_as_temporal(expr: pl.Expr, formats: Iterable[TemporalFormat]) -> pl.Expr:
    """True where some format reads the value (no ranking: for validation, not conversion)."""
    return date_like(expr) & pl.any_horizontal([parse_temporal(expr, fmt).is_not_null() for fmt in formats])


def date_like(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.contains(DATE_LIKE_PATTERN)


# ---------------------------------------------------------------------------------------------------------
# decimal columns (Parquet DECIMAL: money, exact amounts)
#
# A value compared with, or written into, a Decimal column is read exactly as a decimal (never through a float:
# "5.000000000000000005" stays that number); a JSON float is read as its shortest text (0.1 is 0.1). A column of
# scale ``s`` holds multiples of 10**-s only: a comparison with a value of more decimals is decided exactly by the
# nearest multiples (``price > 2.505`` is ``price >= 2.51``; ``==`` matches nothing), see :func:`decimal_comparison`.

DECIMAL_CONTEXT: Final = decimal.Context(prec=100, traps=[decimal.InvalidOperation])
"""Exact for every value these helpers meet: 38 digits of a column and a value's own digits."""
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?")


def exact_decimal(value: Any) -> decimal.Decimal | None:
    """An int, a float (its shortest text: ``0.1`` is 0.1) or the text of a number as an exact decimal; None for
    anything else (booleans, words, ``nan``, ``inf``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return decimal.Decimal(value)
    if isinstance(value, float):
        return decimal.Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        return decimal.Decimal(value.strip())
    return None


def decimal_fits(value: decimal.Decimal, precision: int, scale: int) -> bool:
    """Whether a Decimal(precision, scale) column can hold ``value`` exactly (no more decimals than ``scale``, no
    more whole digits than ``precision - scale``)."""
    step = decimal.Decimal(1).scaleb(-scale)
    # The range first: quantizing a value far past it (1e300) needs more digits than the context holds.
    return abs(value) < decimal.Decimal(10) ** (precision - scale) and value == value.quantize(
        step, context=DECIMAL_CONTEXT
    )


def decimal_comparison(cmp: str, subject: pl.Expr, value: decimal.Decimal, dtype: pl.Decimal) -> pl.Expr:
    """``subject cmp value`` (``== != < <= > >=``) decided exactly on a column of ``dtype``: ``value`` rounded to
    the column's scale the way that keeps the answer (``> 2.505`` is ``>= 2.51``), a value no cell can equal is
    never ``==``, and one beyond every value the column can hold decides every cell at once. Null where the cell is
    empty (as a comparison is)."""
    scale = dtype.scale or 0
    precision = dtype.precision or 38
    step = decimal.Decimal(1).scaleb(-scale)
    limit = decimal.Decimal(10) ** (precision - scale)  # every cell is strictly inside (-limit, limit)

    def constant(holds: bool) -> pl.Expr:
        return pl.when(subject.is_not_null()).then(pl.lit(holds))

    if abs(value) >= limit:  # past every cell (and too far to quantize, 1e300): decided at once
        above = value > 0
        return constant(cmp == "!=" or (cmp in ("<", "<=") and above) or (cmp in (">", ">=") and not above))
    exact = value == value.quantize(step, context=DECIMAL_CONTEXT)
    if cmp in ("==", "!="):
        if not exact or abs(value) >= limit:
            return constant(cmp == "!=")
        bound = value
    elif cmp in ("<", "<="):  # below a value that falls between two multiples: at most the lower one
        bound = value.quantize(step, rounding=decimal.ROUND_FLOOR, context=DECIMAL_CONTEXT)
        cmp = cmp if exact else "<="
    else:  # above such a value: at least the upper one
        bound = value.quantize(step, rounding=decimal.ROUND_CEILING, context=DECIMAL_CONTEXT)
        cmp = cmp if exact else ">="
    if bound >= limit:
        return constant(cmp in ("<", "<="))
    if bound <= -limit:
        return constant(cmp in (">", ">="))
    literal = pl.lit(bound, dtype=pl.Decimal(precision, scale))
    operators = {
        "==": subject == literal, "!=": subject != literal, "<": subject < literal,
        "<=": subject <= literal, ">": subject > literal, ">=": subject >= literal,
    }  # fmt: skip
    return operators[cmp]
