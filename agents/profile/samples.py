"""Rows to look at: the first, the last and a fixed random few, and the rows that repeat an earlier row.

Conventions:

- A row is a dict ``{"row_index": <1-based data row>, <column>: <value>, ...}`` of the first ``max_columns``
  columns, in the frame's order. A data column itself named ``row_index`` is left out (its name is the
  row position's), which ``columns_truncated`` then reports.
- Values are JSON-able: dates, datetimes and times as ISO 8601 text (``agents.profile.datetimes.iso_text``:
  a tz-aware datetime with its offset, UTC as ``Z``), durations in seconds, NaN and infinities as None,
  decimals as floats, categoricals as text, binary as hex text, lists, arrays and structs as JSON text.
- The random rows are drawn without replacement by NumPy's ``default_rng(seed)``, so a file always gives
  the same sample, and listed in row order. A frame of fewer than ``n`` rows gives all its rows in each part.
- Duplicate rows are exact: rows are hashed, and only the rows whose hash repeats are grouped by value
  (a hash collision cannot merge two different rows; a frame without repeated hashes costs one hash).
  Nulls equal nulls, NaN equals NaN, as in Polars' ``is_duplicated``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from agents.profile.datetimes import duration_seconds, iso_text

SAMPLE_ROWS = 10
SAMPLE_SEED = 0
MAX_COLUMNS = 100
DUPLICATE_GROUPS = 10
INDEXES_PER_GROUP = 5
ROW_INDEX = "row_index"
_INDEX = "__agensium_row__"
_ROW = "__agensium_values__"


def jsonable(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """``expr`` (of ``dtype``) as values JSON can hold (see the module's conventions)."""
    if dtype in (pl.Date, pl.Datetime, pl.Time):
        return iso_text(expr, dtype)
    if dtype == pl.Duration:
        return duration_seconds(expr, dtype)
    if dtype.is_float():
        return pl.when(expr.is_finite()).then(expr)
    if dtype.is_decimal():
        return expr.cast(pl.Float64)
    if dtype.is_nested():
        encoded = pl.struct(expr.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
        return pl.when(expr.is_not_null()).then(encoded)
    if dtype == pl.Binary:
        return expr.bin.encode("hex")
    if dtype == pl.Boolean or dtype == pl.String or dtype == pl.Null or dtype.is_integer():
        return expr
    return expr.cast(pl.String)


def row_samples(
    frame: pl.DataFrame, *, n: int = SAMPLE_ROWS, seed: int = SAMPLE_SEED, max_columns: int = MAX_COLUMNS
) -> dict[str, Any]:
    """The first ``n``, last ``n`` and ``n`` random rows of ``frame``:
    ``{"head": [row], "tail": [row], "random": [row], "seed", "columns": [shown], "columns_truncated"}``."""
    shown = _shown_columns(frame, max_columns)
    height = frame.height
    count = max(0, min(n, height))
    head = np.arange(count)
    tail = np.arange(height - count, height)
    drawn = np.sort(np.random.default_rng(seed).choice(height, size=count, replace=False))
    rows = _rows(frame, shown, np.concatenate([head, tail, drawn]))
    return {
        "head": rows[:count],
        "tail": rows[count : 2 * count],
        "random": rows[2 * count :],
        "seed": seed,
        "columns": shown,
        "columns_truncated": len(shown) < frame.width,
    }


def duplicate_rows_sample(
    frame: pl.DataFrame,
    *,
    groups: int = DUPLICATE_GROUPS,
    indexes_per_group: int = INDEXES_PER_GROUP,
    max_columns: int = MAX_COLUMNS,
) -> dict[str, Any]:
    """Rows equal to an earlier row, in groups of equal rows (all columns compared):
    ``{"duplicate_rows": rows that repeat an earlier row, "groups_total": groups of two or more rows,
    "groups": [{"count", "row_indexes": first few 1-based, "row": {column: value}}]}``, the largest groups
    first (ties: the group seen first)."""
    found: dict[str, Any] = {"duplicate_rows": 0, "groups_total": 0, "groups": []}
    if frame.height < 2 or frame.width == 0:
        return found
    suspects = frame.hash_rows().is_duplicated()
    if not suspects.any():
        return found
    positions = pl.Series(_INDEX, np.flatnonzero(suspects.to_numpy()), dtype=pl.Int64)
    index = pl.col(_INDEX)
    grouped = (
        frame.filter(suspects)
        .select(pl.struct(pl.all()).alias(_ROW))
        .with_columns(positions)
        .group_by(_ROW)
        .agg(pl.len().alias("count"), index.sort().head(indexes_per_group).alias("indexes"), index.min().alias("first"))
        .filter(pl.col("count") > 1)
        .select("count", "indexes", "first")
        .sort(["count", "first"], descending=[True, False])
    )
    found["duplicate_rows"] = int(grouped["count"].sum()) - grouped.height
    found["groups_total"] = grouped.height
    top = grouped.head(groups)
    shown = _shown_columns(frame, max_columns)
    rows = _rows(frame, shown, top["first"].to_numpy())
    found["groups"] = [
        {"count": int(count), "row_indexes": [position + 1 for position in indexes], "row": _without_index(row)}
        for count, indexes, row in zip(top["count"].to_list(), top["indexes"].to_list(), rows, strict=True)
    ]
    return found


def _shown_columns(frame: pl.DataFrame, max_columns: int) -> list[str]:
    return [name for name in frame.columns if name != ROW_INDEX][: max(0, max_columns)]


def _rows(frame: pl.DataFrame, shown: list[str], positions: np.ndarray) -> list[dict[str, Any]]:
    """The rows at 0-based ``positions`` (in that order) of the columns ``shown``, JSON-able, each with its
    1-based ``row_index`` first."""
    taken = pl.Series(positions, dtype=pl.Int64)
    rows = pl.DataFrame([(taken + 1).alias(ROW_INDEX), *(frame.get_column(name).gather(taken) for name in shown)])
    return rows.select(
        pl.col(ROW_INDEX), *(jsonable(pl.col(name), rows.schema[name]).alias(name) for name in shown)
    ).to_dicts()


def _without_index(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != ROW_INDEX}
