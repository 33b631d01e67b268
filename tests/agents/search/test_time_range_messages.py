"""QA pass on search-my-data: a time range's value that is no date or date-time, or not one of its column's kind, is
refused naming the parameter (``time_ranges[0].from``) and the value, saying why and which layouts are taken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.chain import run_tool
from agents.errors import InvalidParametersError

TOOL = "search-my-data"
INPUT = """\
id,signed,seen_at,written
1,2024-01-05,2024-01-05T10:00:00,05/01/2024
2,2024-02-01,2024-02-01T08:30:00,13/02/2024
"""
DATE_LAYOUT = "give an ISO 8601 date, YYYY-MM-DD (2024-03-15)"
DATETIME_LAYOUTS = "give an ISO 8601 date, YYYY-MM-DD (2024-03-15: the whole day), or date-time, YYYY-MM-DDTHH:MM"


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def refused(tmp_path: Path, agent: str, time_range: dict[str, Any]) -> InvalidParametersError:
    primary = tmp_path / "primary.csv"
    primary.write_text(INPUT, encoding="utf-8")
    parameters: dict[str, Any] = {"time_ranges": [time_range]}
    if agent == "aggregator":
        parameters["metrics"] = [{"fn": "count"}]
    with pytest.raises(InvalidParametersError) as caught:
        run_tool(TOOL, [agent], {"primary.csv": primary}, {agent: parameters}, tmp_path / "out", ignore)
    return caught.value


@pytest.mark.parametrize("agent", ["searcher", "aggregator"])
@pytest.mark.parametrize(
    ("time_range", "message"),
    [
        (
            {"column": "signed", "from": "2024-13-01"},
            f"time_ranges[0].from: '2024-13-01' is no date (there is no month 13); {DATE_LAYOUT}",
        ),
        (
            {"column": "signed", "to": "2024-02-30"},
            f"time_ranges[0].to: '2024-02-30' is no date (February 2024 has no day 30); {DATE_LAYOUT}",
        ),
        (
            {"column": "signed", "from": "2024-01-01T10:00"},
            f"time_ranges[0].from: '2024-01-01T10:00' has a time of day, but 'signed' holds dates; {DATE_LAYOUT}",
        ),
        (
            {"column": "seen_at", "from": "2024-02-01T25:00"},
            f"time_ranges[0].from: '2024-02-01T25:00' is no date-time (25:00:00 is no time of day); {DATETIME_LAYOUTS}",
        ),
        (
            {"column": "seen_at", "to": "2024-02-01T10:00:00+02:00"},
            "time_ranges[0].to: '2024-02-01T10:00:00+02:00' has a UTC offset, but 'seen_at' holds date-times without a "
            "time zone; give the date-time without the offset",
        ),
        (  # a text column of dates in another layout, read as dates: the value is still ISO 8601
            {"column": "written", "from": "2024-02-30"},
            f"time_ranges[0].from: '2024-02-30' is no date (February 2024 has no day 30); {DATE_LAYOUT}",
        ),
    ],
)
def test_a_time_range_value_is_refused_naming_the_parameter(
    tmp_path: Path, agent: str, time_range: dict[str, Any], message: str
) -> None:
    """QA: the refusal said "column 'signed' holds dates (YYYY-MM-DD) (Date); '2024-13-01' is not one: no such
    date" (transform's wording about commands' values), without the parameter nor the layouts it takes."""
    error = refused(tmp_path, agent, time_range)
    assert error.message.startswith(message), error.message
    assert "command" not in error.message
    end = "from" if "from" in time_range else "to"
    assert error.details["field"] == f"time_ranges[0].{end}"
    assert error.details["reason"] == "type_mismatch"
    assert error.details["agent_id"] == agent
