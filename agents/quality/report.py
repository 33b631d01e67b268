"""What the profile-my-data quality agents share besides the toolkit (``agents.columns``, ``agents.findings``,
``agents.formatting``): their envelope with the row-issue totals, weighted scores, and the sample of text
values their PII checks read (patterns from ``agents.profile.pii``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel

from agents.columns import is_text, with_row_index
from agents.envelope import (
    ROW_INDEX_COLUMN,
    AgentResult,
    Envelope,
    SummaryCard,
    build_issue_summary,
    data_columns,
    empty_row_level_issues,
    inline_row_level_issues,
)
from agents.findings import Findings
from agents.params.common import parameter_objects
from agents.profile.pii import DATE_FORMATS, DATETIME_FORMATS, TextSignals, sample_rows, value_signals


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


def parsed_dates(values: pl.Expr) -> pl.Expr:
    """Date of each text value in one of the profiler's date or date-time formats, else null."""
    attempts = [values.str.to_date(fmt, strict=False) for fmt in DATE_FORMATS] + [
        values.str.to_datetime(fmt, strict=False).dt.date() for fmt in DATETIME_FORMATS
    ]
    return pl.coalesce(attempts)


@dataclass(frozen=True)
class PiiScan:
    """Text and integer columns' PII signals on an evenly spaced sample of rows (``sample`` keeps
    ``ROW_INDEX_COLUMN``); ``integers``: the integer columns, matched by the digit rules only (card numbers
    exported unquoted: ``agents.profile.pii.DIGIT_PATTERNS``)."""

    sample: pl.DataFrame
    signals: dict[str, TextSignals]
    integers: frozenset[str] = frozenset()


def scan_pii(frame: pl.DataFrame, sample_size: int) -> PiiScan:
    schema = frame.schema
    columns = [name for name in data_columns(frame) if is_text(schema[name])]
    integers = [name for name in data_columns(frame) if schema[name].is_integer()]
    sample = sample_rows(with_row_index(frame).select(ROW_INDEX_COLUMN, *columns, *integers), sample_size)
    return PiiScan(sample=sample, signals=value_signals(sample, columns, integers), integers=frozenset(integers))


def dominant_pattern(signals: TextSignals | None) -> tuple[str | None, float]:
    """The PII pattern matched by the largest share of sampled values, and that share."""
    if signals is None or not signals.sample_size or not signals.pattern_shares:
        return None, 0.0
    pii_type, share = max(signals.pattern_shares.items(), key=lambda item: item[1])
    return pii_type, share


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
