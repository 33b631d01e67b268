"""search-my-data through agents.chain.run_tool: the outputs, search_result.csv equal to a pandas filter of the file
(values written back as they came: dates in their layout; missing-value tokens are nulls, written as empty fields,
unless ``inputs.primary.null_tokens`` says otherwise), search_result.json, the
dataset version the summary describes, and refusals that fail the task before anything is written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents import registry
from agents.chain import run_tool
from agents.errors import InvalidParametersError

TOOL = "search-my-data"
INPUT = """\
id,city,contractor,amount,signed,seen_at,note
1,Paris,ACME,12.5,2024-01-05,2024-01-05T10:00:00Z,road works
2,Lyon,Bolt,,2024-02-01,2024-02-01T08:30:00Z,NA
3,Paris,Bolt,7.25,2023-12-31,,Road sign
4,,ACME,3.5,2024-03-01,2024-03-01T00:00:00Z,n/a
5,Paris,ACME,100.5,2024-02-29,2024-02-29T23:59:59Z,bridge
6,paris,Cole,,2024-02-10,2024-02-10T12:00:00Z,ROADSIDE
7,Paris,Cole,12.5,2024-01-20,2024-01-20T09:15:00Z,
"""


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def run(tmp_path: Path, parameters: dict[str, Any], agents: list[str] | None = None) -> dict[str, Any]:
    primary = tmp_path / "primary.csv"
    primary.write_text(INPUT, encoding="utf-8")
    result = run_tool(TOOL, agents or [], {"primary.csv": primary}, parameters, tmp_path / "out", ignore)
    json.dumps(result, allow_nan=False)
    return result


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_outputs_and_the_csv_equal_a_pandas_filter(tmp_path: Path) -> None:
    parameters = {
        "searcher": {
            "filters": {"City": ["Paris"]},
            "keywords": ["road"],
            "time_ranges": [{"column": "signed", "from": "2024-01-01"}],
            "sort": [{"column": "amount", "descending": True}],
            "page_size": 1,
            "columns": ["id", "signed", "seen_at", "amount", "note"],
        },
        "aggregator": {"group_by": ["contractor"], "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]},
    }
    result = run(tmp_path, parameters)
    out = tmp_path / "out"
    names = [output["name"] for output in result["outputs"]]
    assert set(names) == set(registry.tool_spec(TOOL).outputs)
    assert all((out / name).exists() for name in names)
    assert result["status"] == "success"

    frame = pd.read_csv(io.StringIO(INPUT), dtype=str, keep_default_na=False)
    amount = pd.to_numeric(frame["amount"].replace("", None))
    text = frame[["city", "contractor", "note"]].apply(lambda column: column.str.lower().str.contains("road"))
    chosen = frame[(frame["city"] == "Paris") & text.any(axis=1) & (frame["signed"] >= "2024-01-01")]
    chosen = chosen.assign(_amount=amount[chosen.index]).sort_values(
        "_amount", ascending=False, kind="stable", na_position="last"
    )
    expected = [["id", "signed", "seen_at", "amount", "note"]]
    expected += chosen[expected[0]].to_numpy().tolist()
    assert csv_rows((out / "search_result.csv").read_text(encoding="utf-8")) == expected

    document = json.loads((out / "search_result.json").read_text(encoding="utf-8"))
    assert document["search"]["total_rows"] == len(chosen) == 1
    assert document["search"]["rows"] == [
        {"id": 1, "signed": "2024-01-05", "seen_at": "2024-01-05T10:00:00Z", "amount": 12.5, "note": "road works"}
    ]
    assert document["aggregate"]["groups"][0] == {"contractor": "ACME", "count": 3, "sum_amount": 116.5}
    assert document["aggregate"]["chart"]["labels"] == ["ACME", "Bolt", "Cole"]
    dataset = result["summary"]["dataset"]
    assert (dataset["name"], dataset["rows"]) == ("search_result.csv", 1)
    assert [c["name"] for c in dataset["columns"]] == expected[0]
    assert (result["summary"]["rows_matched"], result["summary"]["total_groups"]) == (1, 3)


def test_every_row_as_written_without_parameters(tmp_path: Path) -> None:
    """No selection: search_result.csv is the input, its missing-value tokens nulls (empty fields, PRODUCT.md
    "Missing values"); with ``null_tokens`` [] they are values, written as they came."""
    result = run(tmp_path, {})
    nulled = INPUT.replace(",NA\n", ",\n").replace(",n/a\n", ",\n")
    assert (tmp_path / "out" / "search_result.csv").read_text(encoding="utf-8") == nulled
    assert result["summary"]["inputs"]["primary"]["missing_tokens"]["by_column"] == {"note": {"NA": 1, "n/a": 1}}
    (tmp_path / "as_written").mkdir()
    run(tmp_path / "as_written", {"inputs": {"primary": {"null_tokens": []}}})
    assert (tmp_path / "as_written" / "out" / "search_result.csv").read_text(encoding="utf-8") == INPUT
    document = json.loads((tmp_path / "out" / "search_result.json").read_text(encoding="utf-8"))
    assert (document["search"]["total_rows"], document["search"]["pages"]) == (7, 1)
    assert document["aggregate"]["groups"] == [{"count": 7}]
    assert result["summary"]["dataset"]["rows"] == 7


def test_the_aggregator_alone_writes_no_csv(tmp_path: Path) -> None:
    result = run(tmp_path, {"aggregator": {"bucket": {"column": "seen_at", "unit": "month"}}}, ["aggregator"])
    names = [output["name"] for output in result["outputs"]]
    assert "search_result.csv" not in names
    document = json.loads((tmp_path / "out" / "search_result.json").read_text(encoding="utf-8"))
    assert document["search"] is None
    assert document["aggregate"]["groups"][0] == {"seen_at": "2024-02-01", "count": 3}
    assert result["summary"]["dataset"]["name"] == "primary.csv"


def test_a_refusal_fails_the_task_before_any_output(tmp_path: Path) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        run(tmp_path, {"searcher": {"filters": {"amount": ["a lot"]}}})
    assert (caught.value.agent_id, caught.value.field) == ("searcher", "filters.amount[0]")
    assert not (tmp_path / "out" / "search_result.csv").exists()


def test_credits_and_cache_form() -> None:
    assert registry.chain_cost(["searcher", "aggregator"]) == 20
    searcher = registry.parse_parameters("searcher", {"filters": {"b": [2, "x", 1.0, "x"]}, "keywords": ["Road", "a"]})
    same = registry.parse_parameters("searcher", {"keywords": ["A", "road", "ROAD"], "filters": {"b": ["x", 1, 2]}})
    assert searcher.cache_form() == same.cache_form()
    moved = registry.parse_parameters("searcher", {"sort": [{"column": "a"}, {"column": "b"}]})
    back = registry.parse_parameters("searcher", {"sort": [{"column": "b"}, {"column": "a"}]})
    assert moved.cache_form() != back.cache_form()
    ranges = [{"column": "b", "min": 1}, {"column": "a", "max": 2}]
    one = registry.parse_parameters(
        "aggregator", {"ranges": ranges, "time_ranges": [{"column": "t", "from": "2024-01-01"}]}
    )
    two = registry.parse_parameters(
        "aggregator", {"ranges": ranges[::-1], "time_ranges": [{"column": "t", "from": "2024-01-01"}]}
    )
    assert one.cache_form() == two.cache_form()
    assert one.cache_form()["time_ranges"] == [{"column": "t", "from": "2024-01-01", "to": None}]


def test_zoned_date_times_filter_by_instant_and_by_day(tmp_path: Path) -> None:
    """seen_at is read as UTC date-times: a filter value with or without its zone means the same instant; a date
    ``to`` includes that whole day; the rows come back in the file's layout."""
    parameters = {
        "searcher": {
            "filters": {"seen_at": ["2024-01-05T10:00:00Z", "2024-02-01T08:30:00"]},
            "columns": ["id", "seen_at"],
        },
        "aggregator": {"time_ranges": [{"column": "seen_at", "from": "2024-02-01", "to": "2024-02-29"}]},
    }
    run(tmp_path, parameters)
    out = tmp_path / "out"
    assert csv_rows((out / "search_result.csv").read_text(encoding="utf-8")) == [
        ["id", "seen_at"], ["1", "2024-01-05T10:00:00Z"], ["2", "2024-02-01T08:30:00Z"],
    ]  # fmt: skip
    document = json.loads((out / "search_result.json").read_text(encoding="utf-8"))
    assert document["search"]["filters_understood"]["filters"]["seen_at"] == [
        "2024-01-05T10:00:00+00:00", "2024-02-01T08:30:00+00:00",
    ]  # fmt: skip
    assert document["aggregate"]["groups"] == [{"count": 3}]  # ids 2, 5 (23:59:59 on the 29th) and 6
