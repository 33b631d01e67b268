"""What the profile-my-data quality agents share: findings with ids, weighted scores, row-level issue
frames, parameter checks against the data, column-name helpers and the PII sample.

PII patterns, the sample and the value signals come from ``agents.profile.pii`` (one definition for the
profiler and these agents).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel

from agents.envelope import (
    ROW_INDEX_COLUMN,
    AgentResult,
    Alert,
    Envelope,
    Issue,
    Recommendation,
    RowSeverity,
    Severity,
    SummaryCard,
    build_issue_summary,
    data_columns,
    empty_row_level_issues,
    inline_row_level_issues,
    row_numbers,
)
from agents.errors import InvalidParametersError
from agents.params.common import parameter_objects
from agents.profile.pii import DATE_FORMATS, DATETIME_FORMATS, TextSignals, sample_rows, text_signals

TIMELINE: dict[str, str] = {"critical": "immediate", "high": "1 week", "medium": "2 weeks", "low": "1 month"}
EFFORT_HOURS: dict[str, float] = {"critical": 4.0, "high": 3.0, "medium": 2.0, "low": 1.0}
TEXT_DTYPES = (pl.String, pl.Categorical, pl.Enum)
CardStatus = Literal["excellent", "good", "warning", "critical", "info"]


def pct(part: float, whole: float) -> float:
    """``part`` as a percentage of ``whole`` (0 when ``whole`` is 0), rounded to 4 decimals."""
    return round(100.0 * part / whole, 4) if whole else 0.0


def weighted_score(
    components: Mapping[str, float | None], weights: Mapping[str, float]
) -> tuple[float | None, dict[str, float]]:
    """Weighted mean of the components that were measured (``None`` = not measured).

    The weights of the measured components are normalised to sum to 1, so an unmeasured component's
    weight goes to the others in proportion to theirs. Returns ``(None, zeros)`` when nothing was measured
    or the measured components all weigh 0."""
    measured = {name: weight for name, weight in weights.items() if components.get(name) is not None}
    total = sum(measured.values())
    if not measured or total <= 0:
        return None, {name: 0.0 for name in weights}
    effective = {name: round(measured.get(name, 0.0) / total, 6) for name in weights}
    score = sum(float(components[name] or 0.0) * weight / total for name, weight in measured.items())
    return round(min(100.0, max(0.0, score)), 2), effective


def normalised_name(column: str) -> str:
    """Lower-case snake form of a column name (``createdAt`` -> ``created_at``, ``E-Mail`` -> ``e_mail``)."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", column)
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


def is_text(dtype: pl.DataType) -> bool:
    return isinstance(dtype, TEXT_DTYPES)


def with_row_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with ``ROW_INDEX_COLUMN`` (the input file's 1-based data row), added when absent."""
    if ROW_INDEX_COLUMN in frame.columns:
        return frame
    return frame.with_columns(row_numbers(frame))


def require_columns(frame: pl.DataFrame, names: Iterable[str], agent_id: str, field_name: str) -> None:
    """Raise ``InvalidParametersError`` naming ``field_name`` for the first name that is not a data column."""
    available = data_columns(frame)
    known = set(available)
    for name in names:
        if name not in known:
            shown = ", ".join(repr(column) for column in available[:20])
            more = f" and {len(available) - 20} more" if len(available) > 20 else ""
            raise InvalidParametersError(
                f"{agent_id}.{field_name}: column {name!r} is not in the data (columns: {shown}{more})",
                {"column": name},
                agent_id=agent_id,
                field=field_name,
            )


def parsed_dates(values: pl.Expr) -> pl.Expr:
    """Date of each text value in one of the profiler's date or date-time formats, else null."""
    attempts = [values.str.to_date(fmt, strict=False) for fmt in DATE_FORMATS] + [
        values.str.to_datetime(fmt, strict=False).dt.date() for fmt in DATETIME_FORMATS
    ]
    return pl.coalesce(attempts)


def row_issue_query(
    lazy: pl.LazyFrame,
    mask: pl.Expr,
    *,
    column: str | None,
    issue_type: str,
    severity: RowSeverity,
    message: str | pl.Expr,
    value: pl.Expr | None,
) -> pl.LazyFrame:
    """Row-level issues (``ROW_LEVEL_ISSUE_SCHEMA``) for the rows of ``lazy`` where ``mask`` holds.
    ``lazy`` must carry ``ROW_INDEX_COLUMN``."""
    message_expr = pl.lit(message) if isinstance(message, str) else message
    value_expr = pl.lit(None, dtype=pl.String) if value is None else value.cast(pl.String)
    return lazy.filter(mask).select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
        pl.lit(column, dtype=pl.String).alias("column"),
        pl.lit(issue_type, dtype=pl.String).alias("issue_type"),
        pl.lit(severity, dtype=pl.String).alias("severity"),
        message_expr.cast(pl.String).alias("message"),
        value_expr.alias("value"),
    )


def collect_row_issues(queries: list[pl.LazyFrame], limit: int) -> pl.DataFrame:
    """The first ``limit`` issues of the queries, in query order."""
    if not queries or limit <= 0:
        return empty_row_level_issues()
    return pl.concat(queries).head(limit).collect()


@dataclass(frozen=True)
class PiiScan:
    """Text columns' PII signals on an evenly spaced sample of rows (``sample`` keeps ``ROW_INDEX_COLUMN``)."""

    sample: pl.DataFrame
    signals: dict[str, TextSignals]


def scan_pii(frame: pl.DataFrame, sample_size: int) -> PiiScan:
    schema = frame.schema
    columns = [name for name in data_columns(frame) if is_text(schema[name])]
    sample = sample_rows(with_row_numbers(frame).select(ROW_INDEX_COLUMN, *columns), sample_size)
    return PiiScan(sample=sample, signals=text_signals(sample, columns))


def dominant_pattern(signals: TextSignals | None) -> tuple[str | None, float]:
    """The PII pattern matched by the largest share of sampled values, and that share."""
    if signals is None or not signals.sample_size or not signals.pattern_shares:
        return None, 0.0
    pii_type, share = max(signals.pattern_shares.items(), key=lambda item: item[1])
    return pii_type, share


@dataclass
class Findings:
    """Alerts, issues and recommendations of one agent, numbered as they are added."""

    agent_id: str
    alerts: list[Alert] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)

    def alert(
        self,
        category: str,
        severity: Severity,
        message: str,
        recommendation: str,
        *,
        field_name: str | None = None,
        affected: int = 1,
        recommend: bool = True,
    ) -> None:
        alert_id = f"{category}:{field_name}" if field_name else category
        self.alerts.append(Alert(alert_id, severity, category, message, affected, recommendation, field_name))
        if recommend:
            self.recommend(field_name, severity, recommendation)

    def issue(self, field_name: str | None, issue_type: str, severity: Severity, message: str, **details: Any) -> None:
        issue_id = f"issue-{len(self.issues) + 1}"
        self.issues.append(Issue(issue_id, self.agent_id, field_name, issue_type, severity, message, details))

    def recommend(self, field_name: str | None, priority: Severity, text: str, owner: str = "data_steward") -> None:
        self.recommendations.append(
            Recommendation(
                recommendation_id=f"rec-{len(self.recommendations) + 1}",
                agent_id=self.agent_id,
                field_name=field_name,
                priority=priority,
                recommendation=text,
                timeline=TIMELINE[priority],
                estimated_effort_hours=EFFORT_HOURS[priority],
                owner=owner,
            )
        )


def quality_result(
    *,
    agent_id: str,
    agent_name: str,
    started: float,
    params: BaseModel,
    summary_metrics: dict[str, Any],
    data: dict[str, Any],
    findings: Findings,
    cards: list[SummaryCard],
    row_issues: pl.DataFrame | None = None,
    row_issues_total: int | None = None,
) -> AgentResult:
    """The envelope: ``data`` gains the row-issue totals and Agensium's three parameter objects; the issue
    summary counts every row-level issue, also those beyond the stored cap."""
    stored = row_issues if row_issues is not None else empty_row_level_issues()
    total = stored.height if row_issues_total is None else max(row_issues_total, stored.height)
    envelope = Envelope(
        status="success",
        agent_id=agent_id,
        agent_name=agent_name,
        summary_metrics=summary_metrics,
        data={
            **data,
            "row_index_base": 1,
            "row_level_issues_total": total,
            "row_level_issues_stored": stored.height,
            "row_level_issues_truncated": stored.height < total,
            **parameter_objects(params),
        },
        alerts=findings.alerts,
        issues=findings.issues,
        row_level_issues=inline_row_level_issues(stored),
        issue_summary=build_issue_summary(findings.issues, stored),
        recommendations=findings.recommendations,
        executive_summary=cards,
    )
    envelope.issue_summary["total_issues"] = len(findings.issues) + total
    envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    return AgentResult(envelope=envelope, row_level_issues=stored)


def score_status(score: float) -> CardStatus:
    """A 0..100 score as a summary-card status."""
    if score >= 90:
        return "excellent"
    if score >= 75:
        return "good"
    if score >= 50:
        return "warning"
    return "critical"
