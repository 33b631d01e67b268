"""Bookkeeping shared by cleanse-previewer, quarantine-agent, type-fixer and field-standardization: column
and regex checks, row-level issue frames and numbers for messages. Values are read by ``agents.values``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, data_columns
from agents.errors import InvalidParametersError
from agents.values import MAX_EXACT_FLOAT_INTEGER

MESSAGE_VALUE_CHARS = 80


def is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


# ---------------------------------------------------------------------------------------------------------
# frames, parameters and row-level issues


def with_row_index(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``ROW_INDEX_COLUMN`` (added as 1..n when an agent runs outside the clean chain)."""
    if ROW_INDEX_COLUMN in frame.columns:
        return frame
    return frame.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


def check_columns(frame: pl.DataFrame, names: Iterable[str], *, agent_id: str, field_name: str) -> None:
    """InvalidParametersError naming the first of ``names`` that is not a data column of ``frame``."""
    available = set(data_columns(frame))
    missing = [name for name in names if name not in available]
    if missing:
        raise InvalidParametersError(
            f"{agent_id}.{field_name}: column '{missing[0]}' does not exist "
            f"(columns: {', '.join(sorted(available)[:50])})",
            {"missing_columns": missing},
            agent_id=agent_id,
            field=field_name,
        )


def check_regex(pattern: str, *, agent_id: str, field_name: str) -> None:
    """InvalidParametersError when Polars (Rust ``regex`` syntax: no look-around, no back-references)
    cannot compile ``pattern``."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:6] if line.strip())
        raise InvalidParametersError(
            f"{agent_id}.{field_name}: invalid regular expression {pattern!r} ({detail})",
            agent_id=agent_id,
            field=field_name,
        ) from None


def shown(expr: pl.Expr) -> pl.Expr:
    """A value as text for a message, shortened to ``MESSAGE_VALUE_CHARS`` characters."""
    text = expr.cast(pl.String)
    return (
        pl.when(text.str.len_chars() > MESSAGE_VALUE_CHARS)
        .then(pl.concat_str(text.str.slice(0, MESSAGE_VALUE_CHARS), pl.lit("…")))
        .otherwise(text)
    )


def issue_rows(
    frame: pl.DataFrame | pl.LazyFrame,
    mask: pl.Expr,
    *,
    column: str | None,
    issue_type: str,
    severity: str,
    message: pl.Expr | str,
    value: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Row-level issues (``ROW_LEVEL_ISSUE_SCHEMA``) for the rows of ``frame`` where ``mask`` holds."""
    message_expr = pl.lit(message) if isinstance(message, str) else message
    value_expr = pl.lit(None, pl.String) if value is None else value.cast(pl.String)
    return (
        frame.lazy()
        .filter(mask.fill_null(False))
        .select(
            pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
            pl.lit(column, pl.String).alias("column"),
            pl.lit(issue_type, pl.String).alias("issue_type"),
            pl.lit(severity, pl.String).alias("severity"),
            message_expr.cast(pl.String).alias("message"),
            value_expr.alias("value"),
        )
    )


def collect_issues(parts: list[pl.LazyFrame]) -> pl.DataFrame:
    if not parts:
        return pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    return pl.concat(parts, how="vertical").collect().cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def number_label(value: float) -> str:
    """A bound or factor for a sentence: 120.0 -> "120", 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() and abs(value) < MAX_EXACT_FLOAT_INTEGER else f"{value:g}"


def plain(value: Any) -> Any:
    """A statistic as JSON-ready Python: None for NaN/inf, floats rounded to 10 significant digits."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return float(f"{value:.10g}")
    return str(value)
