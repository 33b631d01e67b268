"""QA pass 3, #15. A date-only end compared with a date-time column means what search's ``time_ranges`` make it
mean: ``<= 2024-03-01`` and ``between ... and 2024-03-01`` take that whole day in, ``> 2024-03-01`` starts after it;
``<``, ``>=`` and ``==`` mean its midnight. And a derived decimal beyond Float64 (``1e308 * 10``) is an empty value,
counted and alerted as a division by zero is, not an ``inf`` that no filter can name afterwards."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.params.searcher import SearcherParams
from agents.params.transformer import TransformerParams
from agents.search.selection import Resolver, resolve_selection
from agents.transform import transformer
from agents.transform.resolve import resolve
from tests.agents.transform.test_transform_streamed import assert_same_run, in_memory

ROW = ROW_INDEX_COLUMN


def moments(zone: str | None) -> pl.DataFrame:
    """Two moments on 2024-03-01 (the last one just before midnight on the column's wall clock) and one after."""
    times = [dt.datetime(2024, 3, 1, 8), dt.datetime(2024, 3, 1, 23, 59, 59), dt.datetime(2024, 3, 2, 9)]
    ts = pl.Series("ts", times, dtype=pl.Datetime("us"))
    if zone is not None:
        ts = ts.dt.replace_time_zone(zone)
    return pl.DataFrame({ROW: [1, 2, 3], "ts": ts, "day": [t.date() for t in times]})


def run_commands(frame: pl.DataFrame, *commands: str) -> AgentResult:
    params = TransformerParams.model_validate({"commands": list(commands)})
    return transformer.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, message: None)


def kept(frame: pl.DataFrame, command: str) -> list[int]:
    result = run_commands(frame, command)
    assert result.frame is not None
    return result.frame[ROW].to_list()


CASES = [
    ("keep rows where ts between 2024-03-01 and 2024-03-01", [1, 2]),  # was none: midnight to midnight
    ("keep rows where ts <= 2024-03-01", [1, 2]),  # was none
    ("keep rows where ts > 2024-03-01", [3]),  # was all three
    ("remove rows where ts not between 2024-02-01 and 2024-03-01", [1, 2]),
    ("keep rows where ts < 2024-03-01", []),  # the day's start, as before
    ("keep rows where ts >= 2024-03-01", [1, 2, 3]),
    ("keep rows where ts = 2024-03-01", []),
    ("keep rows where ts between 2024-03-01 12:00 and 2024-03-02", [2, 3]),
    ("keep rows where ts <= 2024-03-01 08:00", [1]),  # a time given: that moment
    ("keep rows where day <= 2024-03-01", [1, 2]),  # a date column: unchanged
]


@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Paris", "America/New_York"])
@pytest.mark.parametrize(("command", "rows"), CASES)
def test_a_date_only_end_takes_the_day_as_search_does(zone: str | None, command: str, rows: list[int]) -> None:
    assert kept(moments(zone), command) == rows


@pytest.mark.parametrize("zone", [None, "Europe/Paris"])
def test_search_keeps_the_same_rows(zone: str | None) -> None:
    frame = moments(zone)
    params = SearcherParams.model_validate(
        {"time_ranges": [{"column": "ts", "from": "2024-03-01", "to": "2024-03-01"}]}
    )
    selection = resolve_selection(Resolver(frame.schema, "searcher", data=frame.lazy()), params)
    searched = selection.apply(frame.lazy()).collect()[ROW].to_list()
    assert searched == kept(frame, "keep rows where ts between 2024-03-01 and 2024-03-01") == [1, 2]


def test_the_sentence_says_which_part_of_the_day() -> None:
    frame = moments("UTC")
    sentences = [
        run_commands(frame, command).envelope.data["steps"][0]["sentence"]
        for command in (
            "keep rows where ts <= 2024-03-01",
            "keep rows where ts > 2024-03-01",
            "keep rows where ts between 2024-02-01 and 2024-03-01",
            "keep rows where day <= 2024-03-01",
            "keep rows where ts >= 2024-03-01",
        )
    ]
    assert sentences == [
        "Kept 2 rows where ts <= 2024-03-01 (to the end of that day) (dropped 1)",
        "Kept 1 row where ts > 2024-03-01 (after that whole day) (dropped 2)",
        "Kept 2 rows where ts between 2024-02-01 and 2024-03-01 (to the end of 2024-03-01) (dropped 1)",
        "Kept 2 rows where day <= 2024-03-01 (dropped 1)",
        "Kept 3 rows where ts >= 2024-03-01T00:00:00 (dropped 0)",
    ]


def test_json_operations_and_streamed_runs_read_the_day_alike(tmp_path: Path) -> None:
    frame = moments("Europe/Paris")
    schema = {name: str(dtype) for name, dtype in frame.schema.items() if name != ROW}
    command = "keep rows where ts between 2024-02-01 and 2024-03-01 or ts > 2024-03-01"
    operations = resolve(TransformerParams(commands=[command]), schema).operations
    assert operations[0]["where"]["any"][0]["value"] == ["2024-02-01", "2024-03-01"]
    json_operation: dict[str, Any] = {
        "op": "filter",
        "action": "keep",
        "where": {"column": "ts", "cmp": "<=", "value": "2024-03-01"},
    }
    result = in_memory(frame, [json_operation])
    assert result.frame is not None and result.frame[ROW].to_list() == [1, 2]
    assert_same_run(frame, operations, tmp_path / "a")
    assert_same_run(frame, [json_operation], tmp_path / "b")


# ---------------------------------------------------------------------------------------------------------
# a decimal beyond Float64


def decimals() -> pl.DataFrame:
    return pl.DataFrame({ROW: [1, 2, 3, 4], "x": [1.0, None, float("inf"), -2.0], "n": [1, 2, 3, 4]})


def derived(expression: str) -> AgentResult:
    return in_memory(decimals(), [{"op": "derive", "column": "r", "expression": expression}])


def test_an_overflow_to_infinity_is_emptied_counted_and_alerted() -> None:
    result = derived("x * 1e308 * 10")
    assert result.frame is not None
    assert result.frame["r"].to_list() == [None, None, float("inf"), None]  # the data's own infinity goes through
    step = result.envelope.data["steps"][0]
    assert step["details"]["overflows_to_infinity"] == 2
    assert (
        step["sentence"]
        == "Added column r = x * 1e+308 * 10 (3 empty values, 2 of them too large for a decimal number)"
    )
    alerts = [alert for alert in result.envelope.alerts if alert.category == "number_overflow"]
    assert [alert.alert_id for alert in alerts] == ["transform-step1-float-overflow"]
    assert "2 rows of 'r'" in alerts[0].message and alerts[0].field_name == "r"


@pytest.mark.parametrize(
    ("expression", "values", "beyond"),
    [
        ("1e308 * 10", [None] * 4, 4),  # literals only: every row counted
        ("n * 1e308 * 10.0 / n", [None] * 4, 4),
        ("1e308 + 1e308 - n", [None] * 4, 4),
        ("-1e308 - 1e308", [None] * 4, 4),
        ("1e308 / 1e-10", [None] * 4, 4),
        ("coalesce(1e308 * 10, 0)", [0.0] * 4, 0),  # a coalesce gives those rows a value: nothing emptied
        ("x * 2", [2.0, None, float("inf"), -4.0], 0),
    ],
)
def test_overflows_of_each_operation(expression: str, values: list[Any], beyond: int) -> None:
    result = derived(expression)
    assert result.frame is not None and result.frame["r"].to_list() == values
    assert result.envelope.data["steps"][0]["details"].get("overflows_to_infinity", 0) == beyond


def test_a_division_by_zero_of_literals_counts_every_row() -> None:
    details = derived("1 / 0").envelope.data["steps"][0]["details"]
    assert details == {"empty_values": 4, "divisions_by_zero": 4}  # counted 1: the literal is one value


def test_an_overflow_then_filters_as_any_empty_value(tmp_path: Path) -> None:
    operations: list[dict[str, Any]] = [
        {"op": "derive", "column": "r", "expression": "x * 1e308 * 10"},
        {"op": "filter", "action": "remove", "where": {"column": "r", "cmp": "is_null"}},
    ]
    result = assert_same_run(decimals(), operations, tmp_path)
    assert result.scan is not None and result.scan.collect()[ROW].to_list() == [3]
