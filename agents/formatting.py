"""Numbers and values as reports and messages write them: JSON-safe statistics, percentages, bounds in a
sentence, and values shortened for a message."""

from __future__ import annotations

import math
import numbers
from typing import Any

import polars as pl

MESSAGE_VALUE_CHARS = 80
MAX_EXACT_FLOAT_INTEGER = 2**53


def pct(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole`` (0 when ``whole`` is 0), rounded to 4 decimals."""
    return round(100.0 * part / whole, 4) if whole else 0.0


def plain(value: Any) -> Any:
    """A statistic as JSON-ready Python: None for NaN/inf, floats rounded to 10 significant digits."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.10g}")
    return str(value)


def plain_number(value: Any) -> float | int | None:
    """A JSON-safe number: numpy scalars become Python ones, NaN and infinities become None."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def plain_value(value: Any) -> Any:
    """A JSON-safe scalar for reports: numbers via :func:`plain_number`, dates and other objects as text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        return plain_number(value)
    return str(value)


def format_number(value: float | int | None) -> str:
    """A number for a sentence, with up to 10 significant digits ("null" for None)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.10g}"


def number_label(value: float) -> str:
    """A bound or factor for a sentence: 120.0 -> "120", 0.5 -> "0.5", an integer whole (1234567890123456804)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return str(int(value)) if float(value).is_integer() and abs(value) < MAX_EXACT_FLOAT_INTEGER else f"{value:g}"


def shown(expr: pl.Expr) -> pl.Expr:
    """A value as text for a message, shortened to ``MESSAGE_VALUE_CHARS`` characters."""
    text = expr.cast(pl.String)
    return (
        pl.when(text.str.len_chars() > MESSAGE_VALUE_CHARS)
        .then(pl.concat_str(text.str.slice(0, MESSAGE_VALUE_CHARS), pl.lit("…")))
        .otherwise(text)
    )
