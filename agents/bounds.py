"""Numeric bounds (a range rule's ``min`` and ``max``) compared with a column exactly: an integer column against
whole bounds in integers, never through a double, so that 64-bit ids past 2^53 (``1234567890123456804``) fall on
the right side of a bound next to them."""

from __future__ import annotations

import math

import polars as pl

Bound = int | float
_LARGEST_LITERAL = 2**127  # past this an integer literal has no Polars type; every integer column lies inside it


def integer_bounds(low: Bound | None, high: Bound | None) -> tuple[int | None, int | None]:
    """The whole bounds an integer value satisfies exactly when it satisfies ``low`` and ``high``: ``v >= 2.5`` is
    ``v >= 3``, ``v <= 2.5`` is ``v <= 2``; None for no bound (an infinite one included)."""
    whole_low = low if isinstance(low, int) or low is None or not math.isfinite(low) else math.ceil(low)
    whole_high = high if isinstance(high, int) or high is None or not math.isfinite(high) else math.floor(high)
    return (
        None if whole_low is None or isinstance(whole_low, float) else int(whole_low),
        None if whole_high is None or isinstance(whole_high, float) else int(whole_high),
    )


def below_and_above(
    column: pl.Expr, dtype: pl.DataType, low: Bound | None, high: Bound | None
) -> tuple[pl.Expr, pl.Expr]:
    """Whether each value of ``column`` (of ``dtype``) lies below ``low`` and above ``high`` (inclusive bounds, None:
    none): integers compared in integers, any other number as a double. Null where the value is null."""
    if dtype.is_integer():
        whole_low, whole_high = integer_bounds(low, high)
        return _beyond(column, whole_low, "below", low), _beyond(column, whole_high, "above", high)
    number = column.cast(pl.Float64)
    below = number < _double(low) if low is not None else pl.lit(False)
    above = number > _double(high) if high is not None else pl.lit(False)
    return below, above


def _double(bound: Bound) -> float:
    """A bound as a double: an integer past a double's range (a JSON ``1e400`` written in digits) is an infinity,
    which no Polars literal of an integer could hold."""
    try:
        return float(bound)
    except OverflowError:
        return math.inf if bound > 0 else -math.inf


def _beyond(column: pl.Expr, whole: int | None, side: str, given: Bound | None) -> pl.Expr:
    if given is None or (isinstance(given, float) and math.isnan(given)):
        return pl.lit(False)
    if whole is None:  # an infinite bound: -inf below nothing, inf above nothing; the other way round everything
        infinite_low = side == "below" and isinstance(given, float) and given < 0
        infinite_high = side == "above" and isinstance(given, float) and given > 0
        return pl.when(column.is_not_null()).then(pl.lit(not (infinite_low or infinite_high)))
    if abs(whole) >= _LARGEST_LITERAL:  # past every integer type: the answer is the bound's side
        outside = (side == "below") == (whole > 0)
        return pl.when(column.is_not_null()).then(pl.lit(outside))
    return column < whole if side == "below" else column > whole
