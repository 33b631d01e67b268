"""Pages of a result, and a frame's rows as JSON objects.

``pages`` is the number of pages of ``total`` rows (0 when there is none); a page beyond the last is empty, not an
error. Rows as JSON: numbers, text, booleans and nulls as they are; what JSON has no type for as text: dates read
from text in their layout (as the CSV output writes them), other dates and date-times in ISO 8601, non-finite
numbers (``NaN``, ``inf``), decimals, durations, nested values (JSON text) and bytes (base64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from agents.layouts import Layout, as_text


def page_count(total: int, page_size: int) -> int:
    return -(-total // page_size)


def page_of(frame: pl.DataFrame, page: int, page_size: int) -> pl.DataFrame:
    return frame.slice((page - 1) * page_size, page_size)


def json_rows(frame: pl.DataFrame, layouts: Mapping[str, Layout]) -> list[dict[str, Any]]:
    schema = frame.schema
    texts = [
        as_text(name, dtype, layouts.get(name))
        for name, dtype in schema.items()
        if dtype.is_temporal() or dtype.is_nested() or dtype.is_decimal() or dtype == pl.Binary
    ]
    rows = (frame.with_columns(texts) if texts else frame).to_dicts()
    floats = [name for name, dtype in schema.items() if dtype.is_float()]
    for row in rows:
        for name in floats:
            value = row[name]
            if value is not None and not math.isfinite(value):
                row[name] = str(value)
    return rows
