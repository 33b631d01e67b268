"""Numbers written with a decimal comma ("39,81", "-0,5", "1.234,56"), as the type fixer and the profiler read them.

``agents.values`` reads numbers the English way: a comma groups thousands and a point marks the decimals
("1,234.5"); "39,81" and "1.234,5" are not numbers there. A European file writes them the other way round.
A value's comma is a decimal mark for certain when it is not followed by exactly three digits ("39,81",
"0,5", "1,2345") or follows thousands grouped with points ("1.234,5"): :data:`DECIMAL_COMMA_PATTERN`. A value
like "1,500" (1500 or 1.5?) or "1.234" (1234 or 1.234?) reads both ways: which one a column means is decided
by its other values and the rest of the file (``agents.clean.type_fixer``), never by the value alone.

(A helper of ``agents.values``' kind, kept in its own module while that one is being changed.)
"""

from __future__ import annotations

import polars as pl

# a comma that can only be a decimal mark: "12,99", "0,5", "1,2345", "1.234,5"
DECIMAL_COMMA_PATTERN = r"^[+-]?(?:\d+,(?:\d{1,2}|\d{4,})|[1-9]\d{0,2}(?:\.\d{3})+,\d+)$"
# a number as a file with decimal commas writes it: digits, thousands grouped with points (no leading zero group:
# "0.125" is no 125) or not grouped, an optional decimal comma ("7", "39,81", "1.234", "1.234,56", "1,500")
DECIMAL_COMMA_NUMBER_PATTERN = r"^[+-]?(?:\d+|[1-9]\d{0,2}(?:\.\d{3})+)(?:,\d+)?$"
# a value that reads both ways: one comma before three digits ("1,500"), or points grouping three digits ("1.234")
EITHER_WAY_PATTERN = r"^[+-]?(?:\d{1,3},\d{3}|[1-9]\d{0,2}(?:\.\d{3})+)$"


def decimal_comma_text(expr: pl.Expr) -> pl.Expr:
    """The value as a plain number literal ("1.234,5" -> "1234.5"), read with a decimal comma; null when it is
    not a number written that way (:data:`DECIMAL_COMMA_NUMBER_PATTERN`, whitespace at the ends ignored)."""
    text = expr.cast(pl.String).str.strip_chars()
    literal = text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    return pl.when(text.str.contains(DECIMAL_COMMA_NUMBER_PATTERN)).then(literal)


def parse_decimal_comma(expr: pl.Expr) -> pl.Expr:
    """Float64 of a value read by :func:`decimal_comma_text` (null when it is not such a number)."""
    return decimal_comma_text(expr).cast(pl.Float64, strict=False)
