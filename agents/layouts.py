"""ISO 8601 dates and timestamps written as text, typed as dates and written back exactly as they came.

A text column whose every value is an ISO 8601 date or timestamp in one layout becomes a ``Date`` or
``Datetime`` column when it is read (:func:`type_temporal_text`), and every agent that writes data writes
it back in that layout (:func:`as_text`): a file that goes through the clean chain unchanged comes out
byte-identical, ``2013-01-01T10:00:00Z`` included.

The layouts: a date ``YYYY-MM-DD``, optionally followed by ``T`` or a space and ``HH:MM``, ``HH:MM:SS`` or
``HH:MM:SS`` with 1 to 9 fraction digits, optionally followed by a zone: ``Z`` (UTC), ``+HH:MM`` or
``+HHMM``. A zone is kept: ``Z`` gives ``Datetime(time_zone="UTC")``; a single whole-hour offset
(``+02:00``) gives the fixed zone ``Etc/GMT-2`` (Polars' name for it). A column is typed only when the
typing loses nothing:

- every non-null value has the same layout (the same separator, time precision, fraction width and zone
  form) and parses;
- formatting the parsed values with the layout gives back the very same text (``2013-1-1`` or
  ``2013-02-30`` do not: the column stays text, and the profiler reports what it holds);
- an offset column has one offset throughout, a whole number of hours (``+05:30``, or a column mixing
  ``+01:00`` and ``+02:00`` across a daylight-saving change, stays text: one instant per value would keep
  the times but not the text).

Fractions: 3, 6 or 9 digits are written back with the same width; other widths (``.5``) stay text.
Nothing is guessed from a sample: the layout comes from the first values, and every value is checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import polars as pl

SHAPE_SAMPLE = 1_000  # values whose shapes must agree before the whole column is checked
MAX_DECIMALS = 17  # the widest fraction a number layout pads to (a float has at most 17 significant digits)
REPEATS_CACHED = 0.5
"""A column is parsed with Polars' cache of distinct values when at most this share of its first
:data:`SHAPE_SAMPLE` values are distinct (hashing every value costs more than it saves when nearly all differ)."""
ISO_PATTERN = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:(?P<sep>[T ])(?P<hm>\d{2}:\d{2})(?P<sec>:\d{2}(?P<frac>\.\d{1,9})?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}|[+-]\d{4})?$"
)
FRACTION_DIRECTIVES = {3: "%.3f", 6: "%.6f", 9: "%.9f"}
ZONE_SUFFIX = r"(Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class TextLayout:
    """How a column's dates were written: the chrono ``pattern`` that reads and writes them, the ``kind``
    (``date`` or ``datetime``) and the ``time_zone`` kept (None: naive)."""

    pattern: str
    kind: Literal["date", "datetime"]
    time_zone: str | None = None

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> TextLayout:
        """The layout of a :meth:`describe` (kept in a read report)."""
        return cls(description["format"], description["kind"], description.get("time_zone"))

    @property
    def offsets(self) -> bool:
        """Whether the values carry a numeric offset (read as instants, then shown in the fixed zone)."""
        return self.pattern.endswith(("%:z", "%z"))

    @property
    def time_unit(self) -> Literal["us", "ns"]:
        return "ns" if "%.9f" in self.pattern else "us"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "format": self.pattern, "time_zone": self.time_zone}

    def applies_to(self, dtype: pl.DataType) -> bool:
        return dtype.is_temporal()

    def parse(self, expr: pl.Expr, *, cache: bool = True) -> pl.Expr:
        """The text as a Date or Datetime (null where it does not read). ``cache``: Polars converts each
        distinct text once (faster when values repeat, slower when nearly all differ); the result is the same."""
        if self.kind == "date":
            return expr.str.to_date(self.pattern, strict=False, cache=cache)
        parsed = expr.str.to_datetime(self.pattern, time_unit=self.time_unit, strict=False, cache=cache)
        if self.offsets:  # read as UTC instants, shown in the column's fixed zone
            return parsed.dt.convert_time_zone(self.time_zone or "UTC")
        return parsed.dt.replace_time_zone(self.time_zone) if self.time_zone else parsed

    def format(self, expr: pl.Expr) -> pl.Expr:
        """The values as text in this layout."""
        return expr.dt.to_string(self.pattern)


@dataclass(frozen=True)
class NumberLayout:
    """How a column of decimal numbers read from text was written, where Polars would write it otherwise:
    whole numbers without a fraction (``41``, which Polars writes ``41.0``: ``bare_integers``) and every
    fraction with the same number of digits (``12.50``, which Polars writes ``12.5``: ``decimals``). A
    column gets a layout when formatting its parsed values with it gives back more of their texts than
    Polars' own writing does (:func:`number_layouts`); ``written_otherwise`` counts the values it does not
    give back (R writes 1000 ``1e3``: it comes back ``1000``). A value the layout cannot write as it says (a
    mean imputed later, ``1e+20``) is written as Polars writes it.

    ``scientific``: the numbers are written as Python writes a float (pandas' ``to_csv``): Polars' shortest digits,
    in e-notation below 0.0001 and from 10^16 with a signed exponent of at least two digits
    (``7.913883691088233e-05``, which Polars writes ``0.00007913883691088233``; ``1e+20``), plain otherwise. A
    layout without decimals, bare integers or e-notation only counts the values Polars writes otherwise."""

    decimals: int | None = None
    bare_integers: bool = False
    written_otherwise: int = field(default=0, compare=False)
    kind: Literal["number"] = "number"
    scientific: bool = False

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> NumberLayout:
        return cls(
            description.get("decimals"),
            bool(description.get("bare_integers")),
            int(description.get("values_written_otherwise") or 0),
            scientific=description.get("notation") == PYTHON_NOTATION,
        )

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "kind": self.kind,
            "decimals": self.decimals,
            "bare_integers": self.bare_integers,
            "values_written_otherwise": self.written_otherwise,
        }
        if self.scientific:
            described["notation"] = PYTHON_NOTATION
        return described

    def applies_to(self, dtype: pl.DataType) -> bool:
        """Whether the layout writes a column of ``dtype``: a float column, unless the layout only counts the values
        written otherwise (no decimals, no bare integers: written as Polars writes it)."""
        return dtype.is_float() and (bool(self.decimals) or self.bare_integers or self.scientific)

    def format(self, expr: pl.Expr) -> pl.Expr:
        """The values as text in this layout: Polars' own text (the shortest that reads back as the value), whole
        numbers without their ``.0`` when ``bare_integers``, and a fraction shorter than ``decimals`` digits padded
        with zeros (``12.5`` -> ``12.50``). Only zeros are ever added: no digit is made up, so the text always reads
        back as the value; an exponent (``1e+20``), ``inf`` or ``NaN`` stays as Polars writes it."""
        text = expr.cast(pl.String)
        if self.scientific:
            return _python_text(text)
        if self.bare_integers:
            text = text.str.strip_suffix(".0")
        if not self.decimals:
            return text
        digits = text.str.len_bytes() - text.str.find(".", literal=True) - 1  # null without a point
        plain = ~text.str.contains("e", literal=True)
        padded: Any = pl.when(plain & (digits == self.decimals - 1)).then(pl.concat_str(text, pl.lit("0")))
        for missing in range(2, self.decimals):
            padded = padded.when(plain & (digits == self.decimals - missing)).then(
                pl.concat_str(text, pl.lit("0" * missing))
            )
        return cast(pl.Expr, padded.otherwise(text))


PYTHON_NOTATION = "python"  # a NumberLayout's ``notation`` in a read report when it is ``scientific``
PYTHON_EXPONENT = r"e[+-][0-9]{2,3}$"  # Python's exponent: signed, at least two digits (Polars': 1e-7, 1e+20)


def _python_text(text: pl.Expr) -> pl.Expr:
    """Polars' text of a float (``text``) as Python's ``repr`` writes it: the same shortest digits; Python writes
    e-notation below 0.0001 where Polars writes 0.00001 to 0.0001 plain (``0.00007913883691088233`` ->
    ``7.913883691088233e-05``), and pads the exponent to two digits (``1e-7`` -> ``1e-07``)."""
    padded = text.str.replace(r"e([+-])([0-9])$", "e${1}0${2}")
    digits = text.str.extract(r"^-?0\.0000([1-9][0-9]*)$", 1)  # 1e-5 <= |x| < 1e-4, written plain by Polars
    mantissa = (
        pl.when(digits.str.len_bytes() > 1)
        .then(pl.concat_str(digits.str.slice(0, 1), pl.lit("."), digits.str.slice(1)))
        .otherwise(digits)
    )
    sign = pl.when(text.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.when(digits.is_not_null()).then(pl.concat_str(sign, mantissa, pl.lit("e-05"))).otherwise(padded)


@dataclass(frozen=True)
class BooleanLayout:
    """How a column of booleans read from text spelled them, where Polars would write ``true``/``false``:
    ``True``/``False`` (pandas, Python), ``TRUE``/``FALSE`` (R, Excel), ``yes``/``no``, ``Y``/``N``, ``1``/``0``
    (the type-fixer's conversions). Each truth value has the spelling most of its values had;
    ``written_otherwise`` counts the values spelled another way (they are written in the column's spelling)."""

    true: str
    false: str
    written_otherwise: int = field(default=0, compare=False)
    kind: Literal["boolean"] = "boolean"

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> BooleanLayout:
        return cls(
            str(description["true"]), str(description["false"]), int(description.get("values_written_otherwise") or 0)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "true": self.true,
            "false": self.false,
            "values_written_otherwise": self.written_otherwise,
        }

    def applies_to(self, dtype: pl.DataType) -> bool:
        return dtype == pl.Boolean

    def format(self, expr: pl.Expr) -> pl.Expr:
        return pl.when(expr).then(pl.lit(self.true)).when(expr.not_()).then(pl.lit(self.false))


Layout = TextLayout | NumberLayout | BooleanLayout
"""How a typed column was written as text: dates (:class:`TextLayout`), numbers (:class:`NumberLayout`) or
booleans (:class:`BooleanLayout`)."""
TRUE_WORDS = frozenset({"true", "yes", "y", "1", "t"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "f"})


def boolean_layouts(
    frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str], *, engine: Literal["auto", "streaming"] = "auto"
) -> dict[str, BooleanLayout]:
    """The :class:`BooleanLayout` of each text column of ``columns`` (booleans written as words: every value, spaces
    around it aside, one of :data:`TRUE_WORDS`/:data:`FALSE_WORDS` in any case) that does not spell them ``true``/
    ``false``: each truth value's most frequent spelling. One query of every column's distinct values and counts
    (booleans have a handful); a column with another value is left out. The columns are addressed by position."""
    if not columns:
        return {}
    lazy = frame.lazy()
    names = lazy.collect_schema().names()
    counted = lazy.select(
        pl.nth(names.index(name)).str.strip_chars().drop_nulls().value_counts(name="n").implode().alias(str(key))
        for key, name in enumerate(columns)
    ).collect(engine=engine)
    found: dict[str, BooleanLayout] = {}
    for key, name in enumerate(columns):
        pairs = (tuple(item.values()) for item in counted[str(key)][0])  # (the spelling, its count)
        layout = boolean_layout_of(pairs)
        if layout is not None:
            found[name] = layout
    return found


def boolean_layout_of(pairs: Iterable[tuple[str, int]]) -> BooleanLayout | None:
    """:func:`boolean_layouts`' rule for one column from its distinct values (spaces around them trimmed) and
    their counts: the layout, or None (every value spelled ``true``/``false``, or one not a boolean word)."""
    counts = sorted(pairs, key=lambda item: (-item[1], item[0]))
    spellings: dict[bool, list[tuple[str, int]]] = {True: [], False: []}
    for spelling, count in counts:
        word = spelling.lower()
        if word not in TRUE_WORDS and word not in FALSE_WORDS:
            return None
        spellings[word in TRUE_WORDS].append((spelling, count))
    true = spellings[True][0][0] if spellings[True] else _partner(spellings[False], False)
    false = spellings[False][0][0] if spellings[False] else _partner(spellings[True], True)
    if (true, false) == ("true", "false"):
        return None
    others = sum(count for side in spellings.values() for _, count in side[1:])
    return BooleanLayout(true, false, others)


_PARTNERS = {"true": "false", "yes": "no", "y": "n", "1": "0", "t": "f"}


def _partner(seen: list[tuple[str, int]], truth: bool) -> str:
    """The spelling of the truth value a column never holds, matching the other's (``TRUE`` -> ``FALSE``)."""
    if not seen:
        return "true" if not truth else "false"
    spelling = seen[0][0]
    pairs = _PARTNERS if truth else {false: true for true, false in _PARTNERS.items()}
    partner = pairs.get(spelling.lower(), "false" if truth else "true")
    if spelling.isupper():
        return partner.upper()
    if spelling[:1].isupper():
        return partner.capitalize()
    return partner


def number_layouts(
    frame: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[str],
    *,
    parsed: pl.DataFrame | None = None,
    engine: Literal["auto", "streaming"] = "auto",
    counted: bool = False,
    polars_otherwise: Mapping[str, int] | None = None,
) -> dict[str, NumberLayout]:
    """The :class:`NumberLayout` of each text column of ``columns`` (numbers: Float64 casts) written in a
    layout Polars does not write, when the layout writes back more of the values as they are than Polars
    does; columns Polars writes as they are are left out. As for dates, the layout comes from the values
    among the first :data:`SHAPE_SAMPLE` rows (a whole number, the width of the fraction), and every value is
    checked: for the columns a layout may fit, every value is formatted both ways and compared with its text
    (spaces around it aside: trimming them is the cleaning's business)
    (a file on disk is read on ``engine``); ``parsed``, when given, holds the columns already cast under the
    same names. The columns are addressed by position.

    ``counted`` (the readers': a column typed from text must disclose every value it does not write back): every
    column with a value written otherwise than it comes back gets an entry, a column no layout helps a
    :class:`NumberLayout` without decimals or bare integers (written as Polars writes it) counting the values
    Polars writes otherwise (``1e3`` -> ``1000.0``, ``48.053808600000004`` -> ``48.0538086``, digits past a
    double's): every value of such a column is formatted as Polars writes it and compared with its text (one query
    with the layouts' checks), unless ``polars_otherwise`` has its count already (a scan of the caller's)."""
    if not columns:
        return {}
    lazy = frame.lazy()
    names = lazy.collect_schema().names()
    positions = [names.index(name) for name in columns]
    exprs = []
    for key, position in enumerate(positions):
        text = pl.nth(position).str.strip_chars()  # spaces around a number are no part of its layout
        point = text.str.find(".", literal=True)
        digits = text.str.len_bytes() - point - 1
        exprs += [
            (point.null_count() > text.null_count()).alias(f"b{key}"),  # a value without a point: a whole number?
            text.str.contains(PYTHON_EXPONENT).any().alias(f"e{key}"),  # Python's e-notation: 7.9e-05
            digits.min().alias(f"lo{key}"),
            digits.max().alias(f"hi{key}"),
        ]
    shapes = lazy.head(SHAPE_SAMPLE).select(exprs).collect(engine=engine).row(0, named=True)
    candidates: dict[int, list[NumberLayout]] = {}
    for key in range(len(positions)):
        low, high, bare = shapes[f"lo{key}"], shapes[f"hi{key}"], bool(shapes[f"b{key}"])
        # a float holds at most 17 significant digits: a wider fraction is no layout a float can be written in
        decimals = high if low == high and high is not None and 1 < high <= MAX_DECIMALS else None
        if shapes[f"e{key}"] and not bare:  # Python writes no whole number bare, nor a fixed fraction
            candidates[key] = [NumberLayout(scientific=True)]
        elif decimals is not None and bare:  # "4" beside "3.00": whole numbers written either way
            candidates[key] = [NumberLayout(decimals, True), NumberLayout(decimals, False)]
        elif decimals is not None or bare:
            candidates[key] = [NumberLayout(decimals, bare)]
    others = [key for key in range(len(positions)) if key not in candidates] if counted else []
    if not candidates and not others:
        return {}
    # First from the text alone, for fixed decimals (_plain_decimals): when every value of a column is such a plain
    # decimal, the counts are known; the others' values are formatted both ways and compared.
    flags, exprs = [], []
    for key, layouts in candidates.items():
        text = pl.nth(positions[key])
        exprs.append(pl.col(f"n{key}").sum())
        flags.append(text.is_not_null().alias(f"n{key}"))
        if layouts[-1].decimals and not layouts[-1].bare_integers:
            flags.append(_plain_decimals(text, layouts[-1].decimals).alias(f"plain{key}"))
            flags.append(text.str.ends_with("0").alias(f"zero{key}"))
            exprs.append(pl.col(f"plain{key}").sum())
            exprs.append((pl.col(f"plain{key}") & ~pl.col(f"zero{key}")).sum().alias(f"own{key}"))
    counts = lazy.select(flags).select(exprs).collect(engine=engine).row(0, named=True) if candidates else {}
    # the text, and the numbers read from it
    compared = [*candidates, *others]
    pairs = lazy.select(
        # spaces around a number are no part of a layout; a column with such values is no number column to count
        (pl.nth(positions[key]) if key in others else pl.nth(positions[key]).str.strip_chars()).alias(f"t{key}")
        for key in compared
    )
    if parsed is None:
        pairs = pairs.with_columns(
            pl.col(f"t{key}").cast(pl.Float64, strict=False).alias(f"p{key}") for key in compared
        )
    else:
        numbers = parsed.lazy().select(pl.col(columns[key]).alias(f"p{key}") for key in compared)
        pairs = pl.concat([pairs, numbers], how="horizontal")
    exprs = []
    known = polars_otherwise or {}
    for key in others:
        if columns[key] in known:
            counts[f"x{key}"] = known[columns[key]]
        else:
            exprs.append((pl.col(f"p{key}").cast(pl.String) != pl.col(f"t{key}")).sum().alias(f"x{key}"))
    for key, layouts in candidates.items():
        text, number = pl.col(f"t{key}"), pl.col(f"p{key}")
        if counts.get(f"plain{key}") == counts[f"n{key}"]:  # every value a plain decimal: the layout writes it back
            counts[f"d{key}"] = counts[f"own{key}"]
            counts[f"l{key}_{len(layouts) - 1}"] = counts[f"n{key}"]
            layouts = layouts[:-1]
        else:
            exprs.append((number.cast(pl.String) == text).sum().alias(f"d{key}"))
        exprs += [(layout.format(number) == text).sum().alias(f"l{key}_{i}") for i, layout in enumerate(layouts)]
    if exprs:
        counts |= pairs.select(exprs).collect(engine=engine).row(0, named=True)
    found: dict[str, NumberLayout] = {}
    for key, layouts in candidates.items():
        written, best = max((counts[f"l{key}_{i}"], i) for i in range(len(layouts)))
        if written > counts[f"d{key}"]:  # more values come back as they were than Polars' writing gives
            layout = layouts[best]
            found[columns[key]] = NumberLayout(
                layout.decimals, layout.bare_integers, counts[f"n{key}"] - written, scientific=layout.scientific
            )
        elif counted and counts[f"n{key}"] > counts[f"d{key}"]:
            found[columns[key]] = NumberLayout(written_otherwise=counts[f"n{key}"] - counts[f"d{key}"])
    for key in others:
        if counts[f"x{key}"]:
            found[columns[key]] = NumberLayout(written_otherwise=counts[f"x{key}"])
    return found


def _plain_decimals(text: pl.Expr, decimals: int) -> pl.Expr:
    """Whether a value is a plain decimal of exactly ``decimals`` digits, at most 15 significant ones and no run of
    five zeros after ``0.``: such a text reads as the double whose shortest text (Polars' own, without an exponent)
    is the same number without its fraction's trailing zeros, so a layout of ``decimals`` fixed digits writes it
    back, and Polars' writing does unless it ends with a 0."""
    if decimals > DOUBLE_SAFE_DIGITS:
        return pl.lit(False)
    integer_digits = DOUBLE_SAFE_DIGITS - decimals  # besides a lone 0, with the fraction's: at most 15 digits
    integer = rf"0|[1-9]\d{{0,{integer_digits - 1}}}" if integer_digits else "0"
    shape = rf"^-?(?:{integer})\.\d{{{decimals}}}$"
    tiny = text.str.starts_with("0.00000") | text.str.starts_with("-0.00000")  # Polars writes 1e-7
    return (text.str.contains(shape) & ~tiny).fill_null(False)


DOUBLE_SAFE_DIGITS = 15  # significant digits a double always gives back (DBL_DIG)
DOUBLE_SAFE_BYTES = 15
"""A number text of at most this many bytes and no exponent has at most 15 significant digits, which a double always
gives back (``DBL_DIG``): only a longer text, or one with an exponent, may hold a value no double holds."""
_PLAIN_MANTISSA = r"^[+-]?[0-9]*\.?[0-9]*$"  # a number's digits before its exponent, if any


def maybe_beyond_double(text: pl.Expr) -> pl.Expr:
    """Per value of the number text ``text``: whether it may hold a value a double does not give back, the cheap first
    test of :func:`beyond_double` (Polars only): longer than :data:`DOUBLE_SAFE_BYTES` or with an exponent once
    trimmed, and written otherwise by Polars than it is. False for null."""
    trimmed = text.str.strip_chars()
    written = trimmed.cast(pl.Float64, strict=False).cast(pl.String)
    return (long_number(trimmed) & (written != trimmed)).fill_null(False)


def long_number(text: pl.Expr) -> pl.Expr:
    """Whether a number text is longer than :data:`DOUBLE_SAFE_BYTES` or has an exponent: the only texts that may
    hold a value no double gives back (:func:`maybe_beyond_double`)."""
    exponent = text.str.contains("e", literal=True) | text.str.contains("E", literal=True)
    return (text.str.len_bytes() > DOUBLE_SAFE_BYTES) | exponent


def beyond_double(text: pl.Expr) -> pl.Expr:
    """Per value of the number text ``text`` (a String expression; spaces around it aside): whether it holds a value
    that the double it reads as does not give back, whatever the layout: more significant digits than the double
    holds (``1.123456789012345678``, ``12345678901234567.5``, ``9007199254740993``), or a value past its range
    (``1e400``, ``1e-400``). A value is given back when its digits, leading and trailing zeros aside, are those of
    the double's shortest text (``1.50``, ``1e3``: layouts) or of the double correctly rounded to as many digits as
    the text has (``0.10000000000000001``, numpy's ``1.000000000000000056e-01``: a full-precision spelling of the
    double). False for null and for a text that is no decimal number (``inf``, ``NaN``). Elementwise (streams):
    :func:`maybe_beyond_double` picks the few values to look at, whose rounding Python computes exactly."""
    return text.map_batches(_beyond_double, return_dtype=pl.Boolean, is_elementwise=True)


def _beyond_double(texts: pl.Series) -> pl.Series:
    """:func:`beyond_double` of a batch of values."""
    flags = pl.repeat(False, len(texts), dtype=pl.Boolean, eager=True).alias(texts.name)
    frame = pl.DataFrame({"text": texts.cast(pl.String)}).with_row_index("row")
    long = frame.filter(long_number(pl.col("text").str.strip_chars()))
    looked_at = long.filter(maybe_beyond_double(pl.col("text"))) if long.height else long  # few values cast twice
    if looked_at.height == 0:
        return flags
    trimmed = looked_at.select("row", pl.col("text").str.strip_chars())
    number = trimmed.select(pl.col("text").cast(pl.Float64, strict=False).alias("number"))
    mine = _decimal_keys(trimmed["text"])
    shortest = _decimal_keys(number["number"].cast(pl.String))["key"]
    keyed = pl.concat([trimmed.select("row"), number, mine], how="horizontal").filter(
        pl.col("key").is_not_null() & (pl.col("key") != shortest).fill_null(True)
    )
    if keyed.height == 0:
        return flags
    # the double correctly rounded to the text's number of significant digits (Python's formatting is exact)
    rounded = [
        f"{value:.{max(count, 1) - 1}e}"
        for value, count in zip(keyed["number"].to_list(), keyed["digits"].to_list(), strict=True)
    ]
    beyond = (_decimal_keys(pl.Series(rounded, dtype=pl.String))["key"] != keyed["key"]).fill_null(True)
    found = keyed["row"].filter(beyond)
    return flags.scatter(found, True) if len(found) else flags


def beyond_double_columns(
    frame: pl.DataFrame | pl.LazyFrame, columns: Sequence[str], *, engine: Literal["auto", "streaming"] = "auto"
) -> dict[str, dict[str, Any]]:
    """The text ``columns`` of numbers holding a value no double gives back (:func:`beyond_double`), each with what
    a read report says of it (:data:`BEYOND_DOUBLE`, the number of such values, the first one): a reader keeps them
    as text, written back as they came. One query (on ``engine``); the columns are addressed by position."""
    if not columns:
        return {}
    if isinstance(frame, pl.DataFrame) and len(columns) > STACKED_COLUMNS:
        return _beyond_double_stacked(frame, columns)
    lazy = frame.lazy()
    names = lazy.collect_schema().names()
    positions = [names.index(name) for name in columns]
    flagged = lazy.select(
        *(pl.nth(position).alias(f"t{key}") for key, position in enumerate(positions)),
        *(beyond_double(pl.nth(position)).alias(f"b{key}") for key, position in enumerate(positions)),
    )
    counts = (
        flagged.select(
            expr
            for key in range(len(positions))
            for expr in (
                pl.col(f"b{key}").sum().alias(f"n{key}"),
                pl.col(f"t{key}").filter(pl.col(f"b{key}")).first().alias(f"e{key}"),
            )
        )
        .collect(engine=engine)
        .row(0, named=True)
    )
    return {
        name: {"reason": BEYOND_DOUBLE, "values": int(counts[f"n{key}"]), "example": counts[f"e{key}"]}
        for key, name in enumerate(columns)
        if counts[f"n{key}"]
    }


STACKED_COLUMNS = 32
"""Past this many columns an in-memory frame's columns are checked stacked into one (:func:`_beyond_double_stacked`):
Polars plans and runs a query in time that grows with its number of expressions (10,000 columns: seconds)."""
STACKED_CELLS = 4_000_000
"""At most this many cells stacked at a time (a copy of their texts)."""


def _beyond_double_stacked(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`beyond_double_columns` of an in-memory frame's many ``columns``: groups of them stacked into one text
    column (``unpivot``, each column's values in row order), checked in one pass and counted by column."""
    found: dict[str, dict[str, Any]] = {}
    size = max(1, STACKED_CELLS // max(frame.height, 1))
    for start in range(0, len(columns), size):
        names = list(columns[start : start + size])
        flagged = (
            frame.select(pl.col(name).cast(pl.String).alias(str(key)) for key, name in enumerate(names))
            .unpivot(variable_name="key", value_name="text")
            .filter(beyond_double(pl.col("text")))
            .group_by("key", maintain_order=True)
            .agg(pl.len().alias("values"), pl.col("text").first().alias("example"))
        )
        for key, values, example in flagged.iter_rows():
            found[names[int(key)]] = {"reason": BEYOND_DOUBLE, "values": int(values), "example": example}
    return {name: found[name] for name in columns if name in found}


BEYOND_DOUBLE = "beyond_double_precision"
"""Why a read report's ``numbers_kept_as_text`` lists a column: a value with more digits than a double holds."""


def _decimal_keys(texts: pl.Series) -> pl.DataFrame:
    """The value of each decimal number text as one text, ``key`` (its significant digits, its sign and the exponent
    of its last digit: ``1.50`` and ``15e-1`` both ``15e-1``, zero ``0``; null when the text is no such number,
    ``inf``), and its number of significant digits, ``digits``. String slicing, and one match without captures (the
    regular expression engines' fast path), a step at a time (an expression reused in one tree is computed again)."""
    text = pl.col("text")
    at = pl.col("at")
    return (
        pl.DataFrame({"text": texts})
        .with_columns(pl.coalesce(text.str.find("e", literal=True), text.str.find("E", literal=True)).alias("at"))
        .select(
            pl.when(at.is_null()).then(text).otherwise(text.str.slice(0, at)).alias("mantissa"),
            pl.when(at.is_null())
            .then(pl.lit(0, pl.Int64))
            .otherwise(text.str.slice(at + 1).str.strip_prefix("+").cast(pl.Int64, strict=False))
            .alias("exponent"),
        )
        .with_columns(pl.col("mantissa").str.strip_prefix("+").str.strip_prefix("-").alias("body"))
        .with_columns(
            pl.col("body").str.find(".", literal=True).alias("point"),
            pl.col("body").str.replace(".", "", literal=True).str.strip_chars_start("0").alias("all_digits"),
        )
        .with_columns(pl.col("all_digits").str.strip_chars_end("0").alias("significant"))
        .select(
            pl.when(pl.col("mantissa").str.contains(_PLAIN_MANTISSA) & (pl.col("body") != ".") & (pl.col("body") != ""))
            .then(
                pl.when(pl.col("significant") == "")
                .then(pl.lit("0"))
                .otherwise(
                    pl.concat_str(
                        pl.when(pl.col("mantissa").str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit("")),
                        pl.col("significant"),
                        pl.lit("e"),
                        (
                            pl.col("exponent")
                            - pl.col("body").str.len_bytes().cast(pl.Int64)
                            + pl.col("point").cast(pl.Int64)
                            + 1
                        )
                        .fill_null(pl.col("exponent"))  # no point: no fraction
                        .add(pl.col("all_digits").str.len_bytes().cast(pl.Int64))
                        .sub(pl.col("significant").str.len_bytes().cast(pl.Int64))
                        .cast(pl.String),
                    )
                )
            )
            .alias("key"),
            pl.col("significant").str.len_bytes().alias("digits"),
        )
    )


def layout_of(value: str) -> TextLayout | None:
    """The layout of one value, or None when it is not one of the module's ISO 8601 layouts."""
    match = ISO_PATTERN.match(value)
    if match is None:
        return None
    if match["sep"] is None:
        return None if match["zone"] else TextLayout("%Y-%m-%d", "date")
    pattern = f"%Y-%m-%d{match['sep']}%H:%M"
    if match["sec"]:
        pattern += ":%S"
        if match["frac"]:
            directive = FRACTION_DIRECTIVES.get(len(match["frac"]) - 1)
            if directive is None:
                return None
            pattern += directive
    zone = match["zone"]
    if zone is None:
        return TextLayout(pattern, "datetime")
    if zone == "Z":
        return TextLayout(pattern + "Z", "datetime", "UTC")
    directive = "%:z" if ":" in zone else "%z"
    time_zone = _fixed_zone(zone)
    if time_zone is None:
        return None
    return TextLayout(pattern + directive, "datetime", time_zone)


def _fixed_zone(offset: str) -> str | None:
    """Polars' name of a whole-hour fixed offset (``+02:00`` -> ``Etc/GMT-2``: the sign is POSIX's)."""
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if minutes or hours > (14 if offset[0] == "+" else 12):  # Etc/GMT-14 .. Etc/GMT+12 exist, no more
        return None
    if hours == 0:
        return "UTC"
    return f"Etc/GMT{'-' if offset[0] == '+' else '+'}{hours}"


def find_layouts(
    frame: pl.DataFrame | pl.LazyFrame,
    columns: Sequence[str] | None = None,
    *,
    engine: Literal["auto", "streaming"] = "auto",
) -> dict[str, TextLayout]:
    """The text ``columns`` (default: all) whose every non-null value is written in one layout that typing
    loses nothing of (module docstring), with that layout. The layout comes from the column's values among
    the first :data:`SHAPE_SAMPLE` rows (a column without any there stays text); one query then checks every
    value of the candidates (a file on disk is read once, on ``engine``)."""
    lazy = frame.lazy()
    candidates = _candidates(lazy, columns, engine)
    if not candidates:
        return {}
    checks = lazy.select(
        _lossless(pl.col(name), layout.parse(pl.col(name)), layout) for name, layout in candidates.items()
    )
    exact = checks.collect(engine=engine).row(0)
    return {name: layout for (name, layout), ok in zip(candidates.items(), exact, strict=True) if ok}


def _candidates(
    lazy: pl.LazyFrame, columns: Sequence[str] | None, engine: Literal["auto", "streaming"]
) -> dict[str, TextLayout]:
    """The text columns whose values among the first :data:`SHAPE_SAMPLE` rows share one layout, with it."""
    schema = lazy.collect_schema()
    names = [name for name in (schema.names() if columns is None else columns) if schema.get(name) == pl.String]
    if not names:
        return {}
    head = lazy.select(names).head(SHAPE_SAMPLE).collect(engine=engine)
    firsts = head.select(pl.col(name).drop_nulls().first() for name in names).row(0)
    likely = [name for name, first in zip(names, firsts, strict=True) if first is not None and layout_of(first)]
    if not likely:  # one value rules most columns out, cheaply
        return {}
    # The layouts of the head's values from their shapes (every digit a 0, offsets kept): a handful per
    # column, however many values.
    shapes = head.select(_shape(pl.col(name).drop_nulls()).unique().implode() for name in likely).row(0)
    candidates: dict[str, TextLayout] = {}
    for name, column_shapes in zip(likely, shapes, strict=True):
        layouts = {layout_of(shape) for shape in column_shapes}
        layout = layouts.pop() if len(layouts) == 1 else None
        if layout is not None:
            candidates[name] = layout
    return candidates


_FIXED_WIDTH = {
    "%Y": r"\d{4}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"[0-5]\d",
    "%S": r"[0-5]\d",  # not a leap second (:60), which a Datetime cannot hold
    "%.3f": r"\.\d{3}",
    "%.6f": r"\.\d{6}",
    "%.9f": r"\.\d{9}",
}


def _exact_shape(layout: TextLayout) -> str | None:
    """A regular expression that the text of every value this layout writes matches, field by field at its
    fixed width; None for an offset layout (the offset's text depends on the value's own offset)."""
    if layout.offsets:
        return None
    pieces = re.split(r"(%\.\df|%[A-Za-z])", layout.pattern)
    return "^" + "".join(_FIXED_WIDTH.get(piece) or re.escape(piece) for piece in pieces if piece) + "$"


def _lossless(text: pl.Expr, parsed: pl.Expr, layout: TextLayout) -> pl.Expr:
    """Whether every value of ``text`` reads (``parsed``) and writes back the same. A layout of fixed-width
    fields needs only the shape of each value and a successful parse (a value that reads has exactly the
    digits it is written with); an offset layout formats the parsed values back and compares them."""
    shape = _exact_shape(layout)
    if shape is None:
        same = layout.format(parsed) == text
    else:
        same = text.str.contains(shape) & parsed.is_not_null()
    return same.or_(text.is_null()).fill_null(False).all()


def _shape(text: pl.Expr) -> pl.Expr:
    """A value with every digit a 0 but its zone's (which sets the layout's time zone)."""
    zone = text.str.extract(ZONE_SUFFIX).fill_null("")
    return pl.concat_str(text.str.replace(ZONE_SUFFIX, "").str.replace_all(r"\d", "0"), zone)


def type_temporal_text(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, TextLayout]]:
    """``frame`` with its text columns of dates or timestamps typed (:func:`find_layouts`), and the layouts.
    The shape of every value of a candidate column is checked first (one query for all the columns); those
    that keep their layout's shape (and those of an offset layout) are parsed once, with Polars' cache of
    distinct values when their first rows repeat values (:data:`REPEATS_CACHED`). A value that did not read is
    a null the text lacks; an offset layout's parsed values are also formatted back and compared with the text."""
    candidates = _candidates(frame.lazy(), None, "auto")
    shapes = {name: shape for name, layout in candidates.items() if (shape := _exact_shape(layout)) is not None}
    kept = (
        frame.select(
            pl.col(name).str.contains(shape).or_(pl.col(name).is_null()).all() for name, shape in shapes.items()
        ).row(0, named=True)
        if shapes
        else {}
    )
    shaped = {name: layout for name, layout in candidates.items() if layout.offsets or kept[name]}
    if not shaped:
        return frame, {}
    head = frame.head(SHAPE_SAMPLE).select(
        (pl.col(name).drop_nulls().n_unique() / pl.col(name).count()).alias(name) for name in shaped
    )
    parsed = frame.select(
        layout.parse(pl.col(name), cache=head[name][0] <= REPEATS_CACHED).alias(name) for name, layout in shaped.items()
    )
    read = [name for name in shaped if parsed[name].null_count() == frame[name].null_count()]
    offsets = [name for name in read if shaped[name].offsets]
    if offsets:  # the offset's text depends on each value's offset: the parsed values are formatted back
        texts = frame.select(pl.col(name).alias(f"t{index}") for index, name in enumerate(offsets))
        values = parsed.select(pl.col(name).alias(f"p{index}") for index, name in enumerate(offsets))
        written_back = (
            pl.concat([texts, values], how="horizontal")
            .select(
                _lossless(pl.col(f"t{index}"), pl.col(f"p{index}"), shaped[name]) for index, name in enumerate(offsets)
            )
            .row(0)
        )
        read = [name for name in read if name not in offsets or written_back[offsets.index(name)]]
    layouts = {name: shaped[name] for name in read}
    typed = frame.with_columns(parsed[name] for name in layouts) if layouts else frame
    return typed, layouts


FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def apply_layouts(frame: FrameT, layouts: Mapping[str, TextLayout]) -> FrameT:
    """``frame`` with the ``layouts``' columns parsed."""
    if not layouts:
        return frame
    return frame.with_columns(layout.parse(pl.col(name)).alias(name) for name, layout in layouts.items())


ISO_DATETIME = "%Y-%m-%dT%H:%M:%S%.f"  # the fraction only when there is one
"""How a datetime that was never text is written: ISO 8601, with ``%:z`` added when it has a zone."""
ISO_TIME = "%H:%M:%S%.f"
"""How a time of day is written: ``09:30:00``, with its fraction when it has one (Polars' CSV writer adds 9 digits)."""


def as_text(name: str, dtype: pl.DataType, layout: Layout | None = None) -> pl.Expr:
    """The column ``name`` (of ``dtype``) as the text a CSV output holds and text checks see: dates read
    from text in their ``layout`` (``2013-01-01T10:00:00Z`` stays so), numbers read from text in theirs
    (``41``, ``12.50``), other datetimes in ISO 8601 (with
    their offset when they have a zone), durations in ISO 8601 (``PT1M30S``), nested values as JSON text,
    bytes as base64, anything else cast."""
    return text_of(pl.col(name), dtype, layout).alias(name)


def text_of(column: pl.Expr, dtype: pl.DataType, layout: Layout | None = None) -> pl.Expr:
    """:func:`as_text` of any expression of ``dtype`` (a column, a sample of it, ...)."""
    if layout is not None and layout.applies_to(dtype):
        return layout.format(column)
    if isinstance(dtype, pl.Datetime):
        return column.dt.to_string(ISO_DATETIME + "%:z" if dtype.time_zone else ISO_DATETIME)
    if dtype == pl.Time:
        return column.dt.to_string(ISO_TIME)
    if isinstance(dtype, pl.Duration):
        return column.dt.to_string("iso")
    if dtype.is_nested():
        return json_text(column, dtype)
    if dtype == pl.Binary:
        return column.bin.encode("base64")
    return column.cast(pl.String)


def needs_text(dtype: pl.DataType, layout: Layout | None = None) -> bool:
    """Whether a CSV writer needs :func:`as_text` for a column (its own rendering would lose something or
    fail): dates and numbers read from text, zoned datetimes, times of day, durations, nested values and bytes."""
    return (
        (layout is not None and layout.applies_to(dtype))
        or (isinstance(dtype, pl.Datetime) and dtype.time_zone is not None)
        or dtype == pl.Time
        or isinstance(dtype, pl.Duration)
        or dtype.is_nested()
        or dtype == pl.Binary
    )


def json_text(expression: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A nested value as its JSON text (null stays null), computed by Polars for the whole column."""
    if isinstance(dtype, pl.Struct):
        text = expression.struct.json_encode()
    else:
        wrapped = pl.struct(expression.alias("v")).struct.json_encode()  # {"v":[...]}
        text = wrapped.str.slice(len('{"v":')).str.strip_suffix("}")
    return pl.when(expression.is_not_null()).then(text)


def untype_unshared(
    frames: Mapping[str, pl.DataFrame], layouts: Mapping[str, dict[str, TextLayout]]
) -> tuple[dict[str, pl.DataFrame], dict[str, dict[str, TextLayout]]]:
    """Frames compared with each other (a primary and its baseline) with a column typed from text in one but
    left text in the other put back to its text in both: one odd value in a baseline must not read as a
    change of type. ``layouts`` by frame key; returns both, updated."""
    frames, layouts = dict(frames), {key: dict(found) for key, found in layouts.items()}
    for key, found in layouts.items():
        others = [frames[other] for other in frames if other != key]
        back = [
            name for name in found if any(name in other.columns and other.schema[name] == pl.String for other in others)
        ]
        if back:
            frames[key] = frames[key].with_columns(found[name].format(pl.col(name)).alias(name) for name in back)
            for name in back:
                del found[name]
    return frames, layouts


def describe(layouts: Mapping[str, Layout]) -> dict[str, dict[str, Any]]:
    return {name: layout.describe() for name, layout in layouts.items()}


def from_report(described: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Layout]:
    """The layouts of a :func:`describe` (a read report's ``temporal_columns``, ``number_columns`` or
    ``boolean_columns``; a kept dataset's ``layouts``: every kind together)."""
    kinds: dict[str, type[NumberLayout] | type[BooleanLayout]] = {"number": NumberLayout, "boolean": BooleanLayout}
    return {
        name: kinds[item["kind"]].from_description(item)
        if item.get("kind") in kinds
        else TextLayout.from_description(item)
        for name, item in (described or {}).items()
    }


REPORT_KEYS = {TextLayout: "temporal_columns", NumberLayout: "number_columns", BooleanLayout: "boolean_columns"}
"""Where a read report keeps each kind of layout."""


def layouts_of(read_report: Mapping[str, Any]) -> dict[str, Layout]:
    """Every layout a read report keeps: its dates', numbers' and booleans' (:data:`REPORT_KEYS`)."""
    return {name: layout for key in REPORT_KEYS.values() for name, layout in from_report(read_report.get(key)).items()}


def record_layouts(read_report: Any, layouts: Mapping[str, Layout]) -> None:
    """Add ``layouts`` to a read report's, each kind under its key (:data:`REPORT_KEYS`)."""
    for kind, key in REPORT_KEYS.items():
        found = {name: layout.describe() for name, layout in layouts.items() if isinstance(layout, kind)}
        if found:
            read_report[key] = {**(read_report.get(key) or {}), **found}


def dates_only(layouts: Mapping[str, Layout]) -> dict[str, TextLayout]:
    return {name: layout for name, layout in layouts.items() if isinstance(layout, TextLayout)}
