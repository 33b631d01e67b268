"""The searcher's parameters (tool ``search-my-data``), and the row selection it shares with the aggregator.

A row is selected when it passes every one of these (absent: no condition):

- ``filters`` ``{column: [values]}``: the row's value is one of the listed values (a ``null`` in the list selects the
  empty cells). Values are typed by the column like transform literals: text as written (exact, case-sensitive),
  numbers, ISO dates or date-times, true/false;
- ``keywords``: every keyword appears, case-insensitively and as a literal substring (never a pattern), in at least
  one of ``keyword_columns`` (default: every text column);
- ``time_ranges`` ``[{column, from, to}]``: ISO dates or date-times, both ends included, either may be null (a date
  ``to`` on a date-time column includes that whole day);
- ``ranges`` ``[{column, min, max}]``: numbers, both ends included, either may be null (NaN is in no range).

Column names resolve like transform's (exact, case-insensitive, separators, one close spelling; else refused with
suggestions). ``cache_form`` is the parameters with equivalent lists in one order (the result cache's key).

Free of Polars (the API validates with it).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from agents.params.common import AgentParams, NumberBound

MAX_PAGE_SIZE = 1000
MAX_PAGE = 2**53
"""The largest whole number JSON carries exactly; its rows' offset, at most ``MAX_PAGE * MAX_PAGE_SIZE``, fits the
64-bit offset Polars slices at (a larger page failed the agent with an OverflowError)."""
MAX_FILTER_COLUMNS = 100
MAX_FILTER_VALUES = 1000
MAX_KEYWORDS = 20
MAX_RANGES = 50
MAX_SORT_KEYS = 20

Column = Annotated[str, Field(min_length=1, max_length=256)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
FilterValue = str | int | Finite | bool | None
"""A value a cell may equal: typed by its column (``"18"`` on an integer column is 18); null: an empty cell."""
FilterValues = Annotated[list[FilterValue], Field(min_length=1, max_length=MAX_FILTER_VALUES)]
Keyword = Annotated[str, Field(min_length=1, max_length=200)]
_ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?")


class StrictParams(AgentParams):
    model_config = ConfigDict(extra="forbid", strict=True)


class TimeRange(StrictParams):
    """Rows whose ``column`` (a date or date-time column) lies between ``from`` and ``to``, both included."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    column: Column
    from_: str | None = Field(None, alias="from", description="ISO 8601 date or date-time; null: no lower end")
    to: str | None = Field(None, description="ISO 8601 date or date-time; null: no upper end")

    @field_validator("from_", "to")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None and not _ISO_MOMENT.fullmatch(value.strip()):
            raise ValueError(f"'{value}' is not an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM:SS)")
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _an_end(self) -> Any:
        if self.from_ is None and self.to is None:
            raise ValueError("give from, to or both")
        return self


class NumericRange(StrictParams):
    """Rows whose ``column`` (a numeric column) lies between ``min`` and ``max``, both included."""

    column: Column
    min: NumberBound | None = None  # an integer stays one: a bound next to a 64-bit id is compared exactly
    max: NumberBound | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class SortKey(StrictParams):
    column: Column
    descending: bool = False


class RowSelection(StrictParams):
    """What selects rows; the searcher and the aggregator share it."""

    filters: Annotated[dict[Column, FilterValues], Field(max_length=MAX_FILTER_COLUMNS)] = Field(
        default_factory=dict, description="{column: [values]}: the row's value is one of them"
    )
    keywords: Annotated[list[Keyword], Field(max_length=MAX_KEYWORDS)] = Field(
        default_factory=list, description="Every keyword appears (case-insensitive) in one of keyword_columns"
    )
    keyword_columns: Annotated[list[Column], Field(min_length=1, max_length=10_000)] | None = Field(
        None, description="The columns keywords are looked for in; null: every text column"
    )
    time_ranges: Annotated[list[TimeRange], Field(max_length=MAX_RANGES)] = Field(default_factory=list)
    ranges: Annotated[list[NumericRange], Field(max_length=MAX_RANGES)] = Field(default_factory=list)

    def cache_form(self) -> dict[str, Any]:
        """The parameters as JSON with equivalent lists in one order: each filter's values deduplicated and sorted
        by their JSON text, keywords lowercased, deduplicated and sorted, keyword columns deduplicated and sorted,
        ranges sorted by column (then by their JSON text). Sort keys and projected columns keep their order."""
        form = self.model_dump(mode="json", by_alias=True)
        form["filters"] = {
            column: sorted({_json(value): value for value in values}.values(), key=_json)
            for column, values in form["filters"].items()
        }
        form["keywords"] = sorted({keyword.lower() for keyword in form["keywords"]})
        if form["keyword_columns"] is not None:
            form["keyword_columns"] = sorted(set(form["keyword_columns"]))
        for key in ("time_ranges", "ranges"):
            form[key] = sorted(form[key], key=lambda item: (item["column"], _json(item)))
        return form


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class SearcherParams(RowSelection):
    """The selected rows, sorted (stable, empty values last) and paged; ``columns`` projects the page and
    ``search_result.csv`` (every selected row)."""

    model_config = ConfigDict(extra="forbid", strict=True, title="searcher parameters")

    sort: Annotated[list[SortKey], Field(max_length=MAX_SORT_KEYS)] = Field(
        default_factory=list, description="Sort keys in order; none: the data's order"
    )
    page: int = Field(1, ge=1, le=MAX_PAGE, description="1-based; a page beyond the last is empty")
    page_size: int = Field(50, ge=1, le=MAX_PAGE_SIZE)
    columns: Annotated[list[Column], Field(min_length=1, max_length=10_000)] | None = Field(
        None, description="The columns of the page and of search_result.csv, in this order; null: all"
    )
