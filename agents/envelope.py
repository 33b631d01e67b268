"""The envelope every agent returns (PRODUCT.md, "Every agent returns the same envelope").

Report writers and the API only ever see this shape, so they stay generic over agents. Row-level issues
are kept as a Polars frame on :class:`AgentResult` (there can be millions); the envelope carries at most
``INLINE_ROW_LEVEL_ISSUES`` of them, as does the stored JSON report; every one of them is in the chain's
``row_level_issues.parquet`` (agents.reports.row_issues).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

if TYPE_CHECKING:
    from pathlib import Path

    from agents.layouts import Layout
    from agents.values import MissingTokens


Progress = Callable[[float, str], None]
"""Agent progress: fraction 0..1 of this agent's own work, and a message for the user."""

Severity = Literal["critical", "high", "medium", "low"]
INLINE_ROW_LEVEL_ISSUES = 1000

ROW_LEVEL_ISSUE_SCHEMA: dict[str, pl.DataType] = {
    "row_index": pl.Int64(),
    "column": pl.String(),
    "issue_type": pl.String(),
    "severity": pl.String(),
    "message": pl.String(),
    "value": pl.String(),
}


ROW_INDEX_COLUMN = "__row_index__"
"""In the clean chain's frames: the 1-based data row of the input file (Int64). Agents keep it through
every filter, never change it, and leave it out of their analysis (:func:`data_columns`). In the master
chain's frames (every source stacked): the 1-based row of the stacked frame, the row's identity."""
TEXT_LAYOUTS_ARTIFACT = "text_layouts"
"""An agent's artifact: the layouts (agents.layouts) of its output's columns read from text, every one of them
(the transformer's renames and new columns, the type-fixer's new decimal and boolean columns), for the writers of
the data."""
AS_READ_ARTIFACT = "as_read"
"""An agent's artifact: the cells of the columns it typed from text that their layouts write otherwise, with the text
each was read from (agents.as_read.AsRead, the type-fixer's): the writers of the data give them back as they were."""
RECIPE_ARTIFACT = "recipe"
"""The transformer's artifact: its resolved operations (recipe.json), renames among them."""
SOURCE_COLUMN = "__source__"
"""In the master chain's frames: the row's source label (``primary``, or ``crm`` for ``source_crm.csv``)."""
SOURCE_ROW_COLUMN = "__source_row__"
"""In the master chain's frames: the row's 1-based data row in its own file (Int64)."""
REMOVAL_REASON = "__removal_reason__"
"""The chain's name for the reason a row was removed, once the agent's removed rows (``reason``) are taken: a data
column may be called ``reason``."""
BOOKKEEPING_COLUMNS = frozenset({ROW_INDEX_COLUMN, SOURCE_COLUMN, SOURCE_ROW_COLUMN, REMOVAL_REASON})


def data_columns(frame: pl.DataFrame) -> list[str]:
    """The frame's columns without the chain's bookkeeping columns (:data:`BOOKKEEPING_COLUMNS`)."""
    return [name for name in frame.columns if name not in BOOKKEEPING_COLUMNS]


def row_numbers(frame: pl.DataFrame) -> pl.Series:
    """The input file's 1-based data row of each row of ``frame``."""
    if ROW_INDEX_COLUMN in frame.columns:
        return frame[ROW_INDEX_COLUMN]
    return pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True).alias(ROW_INDEX_COLUMN)


@dataclass(frozen=True)
class ChainContext:
    """What a chain knows when an agent starts: the original input's shape and every earlier step's record
    (see ``agents.chain``: ``{"step", "agent_id", "agent_name", "status", "rows_before", "rows_after",
    "rows_removed", "columns": {name: {"dtype_before", "dtype_after", "nulls_before", "nulls_after",
    "cells_changed"}}, "summary_metrics", "duration_ms"}``)."""

    tool_id: str = ""
    original_rows: int = 0
    original_columns: list[str] = field(default_factory=list)
    original_dtypes: dict[str, str] = field(default_factory=dict)
    original_null_counts: dict[str, int] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class AgentInputs:
    """What an agent gets: typed frames parsed once by the chain, never the raw files.

    In the clean chain ``primary`` is the output of the previous agent (types kept) and carries
    ``ROW_INDEX_COLUMN``; ``context`` holds the original input's shape and the earlier steps."""

    primary: pl.DataFrame
    primary_name: str
    baseline: pl.DataFrame | None = None
    baseline_name: str | None = None
    context: ChainContext = field(default_factory=ChainContext)
    primary_missing: MissingTokens | None = None  # tokens the chain already turned into nulls (profile tools)
    baseline_missing: MissingTokens | None = None
    contract: dict[str, Any] | None = None  # master-my-data: the parsed schema.json / schema.yaml
    text_layouts: Mapping[str, Layout] = field(default_factory=dict)  # primary's dates, numbers, booleans as written
    artifacts: Mapping[str, Any] = field(default_factory=dict)  # earlier agents' AgentResult.artifacts, merged
    # A primary too large for memory (agents.spill): ``primary`` is an empty frame of its schema, ``scan`` reads
    # it from a Parquet spill (with ``ROW_INDEX_COLUMN`` in a data tool), ``rows`` counts it, and an agent writes
    # its own spills under ``work_dir``.
    scan: pl.LazyFrame | None = None
    rows: int | None = None
    work_dir: Path | None = None

    @property
    def row_count(self) -> int:
        return self.rows if self.rows is not None else self.primary.height


@dataclass
class Alert:
    alert_id: str
    severity: Severity
    category: str
    message: str
    affected_fields_count: int
    recommendation: str
    field_name: str | None = None


@dataclass
class Issue:
    issue_id: str
    agent_id: str
    field_name: str | None
    issue_type: str
    severity: Severity
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recommendation:
    recommendation_id: str
    agent_id: str
    field_name: str | None
    priority: Severity
    recommendation: str
    timeline: str
    estimated_effort_hours: float
    owner: str = "data_steward"


@dataclass
class SummaryCard:
    summary_id: str
    title: str
    value: str
    status: Literal["excellent", "good", "warning", "critical", "info"]
    description: str


@dataclass
class Envelope:
    status: Literal["success", "error"]
    agent_id: str
    agent_name: str
    execution_time_ms: int = 0
    summary_metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    row_level_issues: list[dict[str, Any]] = field(default_factory=list)
    issue_summary: dict[str, Any] = field(default_factory=dict)
    recommendations: list[Recommendation] = field(default_factory=list)
    executive_summary: list[SummaryCard] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data. ``data`` and ``summary_metrics`` are shared, not deep-copied (they can be
        large and are already plain dicts)."""
        result: dict[str, Any] = {
            "status": self.status,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "execution_time_ms": self.execution_time_ms,
            "summary_metrics": self.summary_metrics,
            "data": self.data,
            # dict(vars(...)): the fields, shallow (``asdict`` deep-copies every detail: seconds for 10,000 columns)
            "alerts": [dict(vars(alert)) for alert in self.alerts],
            "issues": [dict(vars(issue)) for issue in self.issues],
            "row_level_issues": self.row_level_issues,
            "issue_summary": self.issue_summary,
            "recommendations": [dict(vars(item)) for item in self.recommendations],
            "executive_summary": [dict(vars(card)) for card in self.executive_summary],
        }
        if self.error is not None:
            result["error"] = self.error
        return result


REMOVED_ROWS_SCHEMA: dict[str, pl.DataType] = {ROW_INDEX_COLUMN: pl.Int64(), "reason": pl.String()}
REMOVED_ROWS_ARTIFACT = "removed_rows"
"""In the master chain, the artifact listing every row an agent removed: ``ROW_INDEX_COLUMN``,
``SOURCE_COLUMN``, ``SOURCE_ROW_COLUMN``, ``agent_id``, ``reason`` (the crosswalk still accounts for them)."""


@dataclass
class AgentResult:
    """An agent's envelope plus its complete row-level issues (a frame of ``ROW_LEVEL_ISSUE_SCHEMA``).

    Clean agents that change the data also return ``frame``: the new data, same ``ROW_INDEX_COLUMN``
    values minus the rows removed; it becomes the next agent's ``primary``. Every row they remove is
    listed in ``removed`` (``REMOVED_ROWS_SCHEMA``: the row index and a reason a person can read); the
    chain writes those rows, with their values before this agent, to ``quarantine.csv``. Nothing is lost.

    ``artifacts``: in-process results later agents of the chain read (``AgentInputs.artifacts``: e.g. the
    master chain's ``semantic_roles``, ``key_candidates``, ``resolution``); ``outputs``: named tables the
    chain writes as CSV outputs of the task (``master_data.csv``, ``crosswalk.csv``, ...).
    """

    envelope: Envelope
    row_level_issues: pl.DataFrame = field(default_factory=lambda: empty_row_level_issues())
    frame: pl.DataFrame | None = None
    removed: pl.DataFrame | None = None
    artifacts: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, pl.DataFrame] = field(default_factory=dict)
    scan: pl.LazyFrame | None = None  # a streamed run's new data (a plan over its spills), ``rows`` rows
    rows: int | None = None


def empty_row_level_issues() -> pl.DataFrame:
    return pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)


def error_envelope(agent_id: str, agent_name: str, message: str, execution_time_ms: int = 0) -> Envelope:
    return Envelope(
        status="error",
        agent_id=agent_id,
        agent_name=agent_name,
        execution_time_ms=execution_time_ms,
        error=message,
        issue_summary=build_issue_summary([], empty_row_level_issues()),
        executive_summary=[SummaryCard(f"{agent_id}-error", f"{agent_name} failed", "error", "critical", message)],
    )


def build_issue_summary(issues: Iterable[Issue | Mapping[str, Any]], row_level_issues: pl.DataFrame) -> dict[str, Any]:
    """Counts by type and severity over the issues and *all* row-level issues (not only the inline ones)."""
    issue_rows = [asdict(issue) if isinstance(issue, Issue) else dict(issue) for issue in issues]
    by_type: Counter[str] = Counter(str(row["issue_type"]) for row in issue_rows)
    by_severity: Counter[str] = Counter(str(row["severity"]) for row in issue_rows)
    affected_columns = {str(row["field_name"]) for row in issue_rows if row.get("field_name")}
    affected_rows = 0
    if row_level_issues.height:
        for column, counter in (("issue_type", by_type), ("severity", by_severity)):
            # In the values' order: value_counts' own order changes from run to run, and so would the report's.
            for value, count in row_level_issues[column].value_counts().sort(column).iter_rows():
                counter[str(value)] += int(count)
        affected_rows = row_level_issues["row_index"].n_unique()
        affected_columns.update(str(column) for column in row_level_issues["column"].unique().drop_nulls())
    return {
        "total_issues": len(issue_rows) + row_level_issues.height,
        "by_type": dict(by_type),
        "by_severity": dict(by_severity),
        "affected_rows": affected_rows,
        "affected_columns": sorted(affected_columns),
    }


def inline_row_level_issues(frame: pl.DataFrame, limit: int = INLINE_ROW_LEVEL_ISSUES) -> list[dict[str, Any]]:
    """The first ``limit`` issues in file order (the stored frame may be grouped by column)."""
    if frame.height > limit:
        frame = frame.bottom_k(limit, by=["row_index", "column"])
    return frame.sort("row_index", "column", maintain_order=True).to_dicts()


def format_text(template: str, *args: pl.Expr) -> pl.Expr:
    """``pl.format(template, *args)`` built with ``concat_str`` (null when an argument is null). Polars 2.1's
    native ``pl.format`` panics in a streaming query over a filtered frame of several chunks (the frames
    an agent receives usually are: they come from earlier lazy queries)."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"{template!r} has {len(pieces) - 1} placeholders for {len(args)} arguments")
    parts: list[pl.Expr] = []
    for index, piece in enumerate(pieces):
        if piece:
            parts.append(pl.lit(piece))
        if index < len(args):
            parts.append(args[index].cast(pl.String))
    return pl.concat_str(parts)
