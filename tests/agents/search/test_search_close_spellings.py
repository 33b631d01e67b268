"""search-my-data's row selection reads no close spelling of a column (QA8 D14: ``{"filters": {"state": ["A"]}}`` on a
file with ``stage`` filtered by ``stage``, with only a note): filters, ranges, time ranges and keyword columns take
the exact name, ignoring case and separators, and refuse anything else with the suggestion; a sort reads a typing
slip (``pirce``), never another word."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from agents.envelope import AgentInputs
from agents.errors import InvalidParametersError
from agents.params.aggregator import AggregatorParams
from agents.params.searcher import SearcherParams
from agents.search import aggregator, searcher

FRAME = pl.DataFrame(
    {
        "stage": ["A", "B", "A"],
        "price": [1.0, 2.0, 3.0],
        "email": ["a@x.org", "b@x.org", "c@x.org"],
        "moment": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
    }
)


def search(**params: Any) -> dict[str, Any]:
    result = searcher.run(AgentInputs(FRAME, "primary.csv"), SearcherParams.model_validate(params), lambda *_: None)
    return result.envelope.data


@pytest.mark.parametrize(
    ("params", "field", "suggestion"),
    [
        ({"filters": {"state": ["A"]}}, "filters.state", "stage"),
        ({"filters": {"emial": ["a@x.org"]}}, "filters.emial", "email"),
        ({"ranges": [{"column": "prize", "min": 2}]}, "ranges[0].column", "price"),
        ({"ranges": [{"column": "pirce", "min": 2}]}, "ranges[0].column", "price"),
        ({"time_ranges": [{"column": "moemnt", "from": "2024-01-02"}]}, "time_ranges[0].column", "moment"),
        ({"keywords": ["x"], "keyword_columns": ["emial"]}, "keyword_columns[0]", "email"),
    ],
)
def test_a_selection_refuses_a_close_spelling(params: dict[str, Any], field: str, suggestion: str) -> None:
    with pytest.raises(InvalidParametersError) as refused:
        search(**params)
    assert refused.value.details["field"] == field
    assert refused.value.details["suggestions"][0] == suggestion
    assert f"did you mean '{suggestion}'" in refused.value.message


def test_case_and_separators_still_select() -> None:
    data = search(filters={"STAGE": ["A"]})
    assert data["total_rows"] == 2 and [row["price"] for row in data["rows"]] == [1.0, 3.0]
    assert data["filters_understood"]["filters"] == {"stage": ["A"]}


def test_a_sort_reads_a_typing_slip_but_no_other_word() -> None:
    data = search(sort=[{"column": "pirce", "descending": True}])
    assert [row["price"] for row in data["rows"]] == [3.0, 2.0, 1.0]
    assert any("'pirce' read as 'price'" in note for note in data["filters_understood"]["notes"])
    with pytest.raises(InvalidParametersError, match="did you mean 'stage'"):
        search(sort=[{"column": "state"}])


def test_the_aggregators_selection_refuses_a_close_spelling_too() -> None:
    params = AggregatorParams.model_validate({"group_by": ["stage"], "filters": {"state": ["A"]}})
    with pytest.raises(InvalidParametersError, match="did you mean 'stage'"):
        aggregator.run(AgentInputs(FRAME, "primary.csv"), params, lambda *_: None)
