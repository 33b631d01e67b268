"""What an agent reports besides its data: alerts, issues and recommendations (one builder, one id scheme),
row-level issues (one builder for every agent), proposals of the judgment calls it did not make, and the
status words of its summary cards.

Ids: an alert's is ``<kind>:<field>`` (``<kind>`` without a field), its kind being the category unless one
is given; an issue's ``<issue_type>:<field>``; a recommendation's ``rec:<kind>:<field>``. A repeated id gets
``-2``, ``-3``... in the order the items were added, so ids are stable for the same data and unique within
an agent's envelope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    Alert,
    Issue,
    Recommendation,
    Severity,
    empty_row_level_issues,
)

CardStatus = Literal["excellent", "good", "warning", "critical", "info"]
TIMELINE: dict[str, str] = {"critical": "immediate", "high": "1 week", "medium": "2 weeks", "low": "1 month"}
EFFORT_HOURS: dict[str, float] = {"critical": 4.0, "high": 3.0, "medium": 2.0, "low": 1.0}
PARALLEL_PARTS = 16


@dataclass
class Findings:
    """An agent's alerts, issues and recommendations, with ids of the module's one scheme."""

    agent_id: str
    alerts: list[Alert] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set, repr=False)

    def alert(
        self,
        category: str,
        severity: Severity,
        message: str,
        recommendation: str,
        *,
        field_name: str | None = None,
        affected: int = 1,
        kind: str | None = None,
        recommend: bool = False,
    ) -> None:
        """An alert; with ``recommend`` its recommendation is also listed as a recommendation."""
        alert_id = self._new_id(kind or category, field_name)
        self.alerts.append(Alert(alert_id, severity, category, message, affected, recommendation, field_name))
        if recommend:
            self.recommend(recommendation, severity, field_name=field_name, kind=kind or category)

    def issue(
        self,
        issue_type: str,
        severity: Severity,
        message: str,
        *,
        field_name: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        issue_id = self._new_id(issue_type, field_name)
        self.issues.append(Issue(issue_id, self.agent_id, field_name, issue_type, severity, message, details or {}))

    def recommend(
        self,
        text: str,
        priority: Severity,
        *,
        field_name: str | None = None,
        kind: str = "general",
        owner: str = "data_steward",
    ) -> None:
        self.recommendations.append(
            Recommendation(
                recommendation_id=self._new_id(f"rec:{kind}", field_name),
                agent_id=self.agent_id,
                field_name=field_name,
                priority=priority,
                recommendation=text,
                timeline=TIMELINE[priority],
                estimated_effort_hours=EFFORT_HOURS[priority],
                owner=owner,
            )
        )

    def _new_id(self, kind: str, field_name: str | None) -> str:
        base = f"{kind}:{field_name}" if field_name else kind
        candidate, number = base, 1
        while candidate in self._ids:
            number += 1
            candidate = f"{base}-{number}"
        self._ids.add(candidate)
        return candidate


def proposal(
    agent_id: str,
    action: str,
    description: str,
    parameters: dict[str, Any],
    *,
    columns: list[str] | None = None,
    rows_affected: int = 0,
    cells_affected: int = 0,
) -> dict[str, Any]:
    """A judgment call the agent did not make (PRODUCT.md "Defaults that never destroy data"): what it would
    change, and the parameters (keyed by agent id, as in parameters.json) that apply it."""
    return {
        "proposal_id": f"{agent_id}:{action}",
        "agent_id": agent_id,
        "action": action,
        "description": description,
        "columns": columns or [],
        "rows_affected": rows_affected,
        "cells_affected": cells_affected,
        "apply": {agent_id: parameters},
    }


# ---------------------------------------------------------------------------------------------------------
# row-level issues


def issues_where(
    frame: pl.DataFrame | pl.LazyFrame,
    mask: pl.Expr,
    *,
    column: str | pl.Expr | None,
    issue_type: str | pl.Expr,
    severity: str | pl.Expr,
    message: str | pl.Expr,
    value: pl.Expr | None = None,
) -> pl.LazyFrame:
    """Row-level issues (``ROW_LEVEL_ISSUE_SCHEMA``) for the rows of ``frame`` where ``mask`` holds (a null
    mask is false); ``frame`` must carry ``ROW_INDEX_COLUMN``. Strings are constants, expressions per row."""

    def constant_or(item: str | pl.Expr | None) -> pl.Expr:
        return item if isinstance(item, pl.Expr) else pl.lit(item, dtype=pl.String)

    value_expr = pl.lit(None, dtype=pl.String) if value is None else value.cast(pl.String)
    return (
        frame.lazy()
        .filter(mask.fill_null(False))
        .select(
            pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
            constant_or(column).cast(pl.String).alias("column"),
            constant_or(issue_type).cast(pl.String).alias("issue_type"),
            constant_or(severity).cast(pl.String).alias("severity"),
            constant_or(message).cast(pl.String).alias("message"),
            value_expr.alias("value"),
        )
    )


def collect_row_issues(
    parts: Sequence[pl.LazyFrame], *, in_file_order: bool = False, limit: int | None = None
) -> pl.DataFrame:
    """The parts' issues in one frame: in the parts' order, or ``in_file_order`` (row, then column); at
    most ``limit`` of them when given."""
    if not parts or (limit is not None and limit <= 0):
        return empty_row_level_issues()
    if limit is not None:
        return pl.concat(parts, how="vertical").head(limit).collect().cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]
    # collect_all hands each query to a thread (~10 ms each): a wide frame's thousands of parts go in turn.
    frames = pl.collect_all(list(parts)) if len(parts) <= PARALLEL_PARTS else [part.collect() for part in parts]
    combined = pl.concat([frame.cast(ROW_LEVEL_ISSUE_SCHEMA) for frame in frames], how="vertical")  # type: ignore[arg-type]
    return combined.sort("row_index", "column", maintain_order=True) if in_file_order else combined


def names_where(flags: Sequence[tuple[str, pl.Expr]], separator: str = ", ") -> pl.Expr:
    """Per row, the names whose flag is true, joined (empty string when none)."""
    if not flags:
        return pl.lit("", dtype=pl.String)
    return pl.concat_str(
        [pl.when(flag).then(pl.lit(name)) for name, flag in flags], separator=separator, ignore_nulls=True
    ).fill_null("")


# ---------------------------------------------------------------------------------------------------------
# summary cards


def card_status(status: str) -> CardStatus:
    """An executive-summary card's status for an effectiveness status (excellent / good / other)."""
    if status == "excellent":
        return "excellent"
    if status == "good":
        return "good"
    return "warning"


def score_status(score: float) -> CardStatus:
    """A 0..100 score as a summary-card status."""
    if score >= 90:
        return "excellent"
    if score >= 75:
        return "good"
    if score >= 50:
        return "warning"
    return "critical"
