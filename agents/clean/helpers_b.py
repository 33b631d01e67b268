"""Small helpers shared by the duplicate-resolver, null-handler, outlier-remover and cleanse-writeback agents:
parameter checks against the frame, dtype predicates, JSON-safe numbers, row-level issue frames and the
envelope's alert / issue / recommendation items."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import polars as pl

from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    Alert,
    Issue,
    Recommendation,
    Severity,
    data_columns,
    empty_row_level_issues,
)
from agents.errors import InvalidParametersError

CardStatus = Literal["excellent", "good", "warning", "critical", "info"]
TIMELINE: dict[str, str] = {"critical": "immediate", "high": "1 week", "medium": "2 weeks", "low": "1 month"}
EFFORT_HOURS: dict[str, float] = {"critical": 4.0, "high": 3.0, "medium": 2.0, "low": 1.0}


def with_row_index(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``ROW_INDEX_COLUMN``: the chain always provides it; an agent run on its own (a test, a
    notebook) numbers the rows 1..n itself."""
    if ROW_INDEX_COLUMN in frame.columns:
        return frame
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))


def require_columns(frame: pl.DataFrame, names: Iterable[str], *, agent_id: str, field: str) -> None:
    """Every name a parameter gives must be a data column of the frame (not the bookkeeping column)."""
    available = data_columns(frame)
    missing = [name for name in names if name not in available]
    if missing:
        shown = ", ".join(repr(name) for name in missing)
        raise InvalidParametersError(
            f"{agent_id}.{field}: unknown column(s) {shown}; the data has {', '.join(available) or 'no columns'}",
            {"unknown_columns": missing, "available_columns": available},
            agent_id=agent_id,
            field=field,
        )


def is_numeric(dtype: pl.DataType) -> bool:
    """Integers, floats and decimals (booleans are not numbers here)."""
    return bool(dtype.is_numeric())


def is_text(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


def is_date_like(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.Date, pl.Datetime))


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
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        return plain_number(value)
    return str(value)


def round_half_away(value: float) -> int:
    """Nearest integer, halves away from zero (2.5 -> 3, -2.5 -> -3): how integer columns take a mean."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def format_number(value: float | int | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.10g}"


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def names_where(flags: Sequence[tuple[str, pl.Expr]], separator: str = ", ") -> pl.Expr:
    """Per row, the names whose flag is true, joined (empty string when none)."""
    if not flags:
        return pl.lit("", dtype=pl.String)
    return pl.concat_str(
        [pl.when(flag).then(pl.lit(name)) for name, flag in flags], separator=separator, ignore_nulls=True
    ).fill_null("")


def row_issue_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    mask: pl.Expr,
    column: str | pl.Expr,
    issue_type: str | pl.Expr,
    severity: str | pl.Expr,
    message: pl.Expr,
    value: pl.Expr | None,
) -> pl.LazyFrame:
    """A lazy ``ROW_LEVEL_ISSUE_SCHEMA`` frame: one issue per row of ``frame`` where ``mask`` holds."""

    def _expr(item: str | pl.Expr) -> pl.Expr:
        return pl.lit(item) if isinstance(item, str) else item

    value_expr = pl.lit(None, dtype=pl.String) if value is None else value.cast(pl.String)
    return (
        frame.lazy()
        .filter(mask)
        .select(
            pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
            _expr(column).cast(pl.String).alias("column"),
            _expr(issue_type).cast(pl.String).alias("issue_type"),
            _expr(severity).cast(pl.String).alias("severity"),
            message.cast(pl.String).alias("message"),
            value_expr.alias("value"),
        )
    )


def collect_row_issues(parts: list[pl.LazyFrame]) -> pl.DataFrame:
    """All parts in one frame, in file order (row, then column)."""
    if not parts:
        return empty_row_level_issues()
    frames = pl.collect_all(parts)
    combined = pl.concat([frame.cast(ROW_LEVEL_ISSUE_SCHEMA) for frame in frames], how="vertical")  # type: ignore[arg-type]
    return combined.sort("row_index", "column", maintain_order=True)


def card_status(status: str) -> CardStatus:
    """An executive-summary card's status for an effectiveness status."""
    if status == "excellent":
        return "excellent"
    if status == "good":
        return "good"
    return "warning"


def retention(rows_before: int, rows_after: int, columns_before: int, columns_after: int) -> tuple[float, float]:
    """Row and column retention in percent (100 when there was nothing to keep)."""
    rows = 100.0 * rows_after / rows_before if rows_before else 100.0
    columns = 100.0 * columns_after / columns_before if columns_before else 100.0
    return rows, columns


class Findings:
    """Collects an agent's alerts, issues and recommendations with stable, prefixed ids."""

    def __init__(self, agent_id: str, prefix: str) -> None:
        self.agent_id = agent_id
        self.prefix = prefix
        self.alerts: list[Alert] = []
        self.issues: list[Issue] = []
        self.recommendations: list[Recommendation] = []

    def alert(
        self,
        kind: str,
        severity: Severity,
        category: str,
        message: str,
        recommendation: str,
        *,
        affected: int = 1,
        field_name: str | None = None,
    ) -> None:
        self.alerts.append(
            Alert(
                alert_id=f"alert_{self.prefix}_{kind}_{len(self.alerts) + 1}",
                severity=severity,
                category=category,
                message=message,
                affected_fields_count=affected,
                recommendation=recommendation,
                field_name=field_name,
            )
        )

    def issue(
        self,
        kind: str,
        severity: Severity,
        field_name: str | None,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.issues.append(
            Issue(
                issue_id=f"issue_{self.prefix}_{kind}_{len(self.issues) + 1}",
                agent_id=self.agent_id,
                field_name=field_name,
                issue_type=kind,
                severity=severity,
                message=message,
                details=details or {},
            )
        )

    def recommend(self, kind: str, priority: Severity, field_name: str | None, text: str) -> None:
        self.recommendations.append(
            Recommendation(
                recommendation_id=f"rec_{self.prefix}_{kind}_{len(self.recommendations) + 1}",
                agent_id=self.agent_id,
                field_name=field_name,
                priority=priority,
                recommendation=text,
                timeline=TIMELINE[priority],
                estimated_effort_hours=EFFORT_HOURS[priority],
            )
        )
