"""The aggregator's parameters (tool ``search-my-data``): groups of the selected rows with their metrics, sorted and
paged, ready for a chart.

Rows are selected as the searcher selects them (agents.params.searcher.RowSelection: its own ``filters``,
``keywords``, ``keyword_columns``, ``time_ranges``, ``ranges``, over the whole input). Group keys: ``group_by``
columns, then ``bucket`` (a date or date-time column truncated to its day, week (from Monday), month or year; the key
keeps the column's name and is an ISO date). Neither given: one group of every selected row.

Metrics: ``count`` (rows; with a column: its non-empty cells), ``sum``/``mean`` (numeric columns), ``min``/``max``
(numbers, text, dates), ``distinct`` (distinct non-empty values). A metric is named ``count`` or ``<fn>_<column>``
(``sum_amount``) after the exact column name; ``sort`` names group keys or metric names (default: the first metric,
descending; ties by the group keys ascending, empty last). ``top``: only the first N groups in that order are kept.

Free of Polars (the API validates with it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from agents.params.searcher import MAX_PAGE, MAX_PAGE_SIZE, MAX_SORT_KEYS, Column, RowSelection, SortKey, StrictParams

MAX_GROUP_COLUMNS = 10
MAX_METRICS = 20
MAX_TOP = 10_000

MetricFunction = Literal["count", "sum", "mean", "min", "max", "distinct"]


class Bucket(StrictParams):
    column: Column
    unit: Literal["day", "week", "month", "year"]


class Metric(StrictParams):
    fn: MetricFunction
    column: Column | None = Field(None, description="null only for count (rows)")

    @model_validator(mode="after")
    def _column_given(self) -> Any:
        if self.column is None and self.fn != "count":
            raise ValueError(f"{self.fn} needs a column")
        return self


def _rows() -> list[Metric]:
    return [Metric(fn="count")]


class AggregatorParams(RowSelection):
    model_config = ConfigDict(extra="forbid", strict=True, title="aggregator parameters")

    group_by: Annotated[list[Column], Field(max_length=MAX_GROUP_COLUMNS)] = Field(
        default_factory=list, description="Group key columns; none (and no bucket): one group of every selected row"
    )
    bucket: Bucket | None = Field(None, description="A date column truncated to day/week/month/year: a group key")
    metrics: Annotated[list[Metric], Field(min_length=1, max_length=MAX_METRICS)] = Field(
        default_factory=_rows, description='Default [{"fn": "count"}]'
    )
    sort: Annotated[list[SortKey], Field(max_length=MAX_SORT_KEYS)] = Field(
        default_factory=list, description="Group keys or metric names (sum_amount); none: the first metric descending"
    )
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    top: int | None = Field(None, ge=1, le=MAX_TOP, description="Only the first N groups (for a chart)")
