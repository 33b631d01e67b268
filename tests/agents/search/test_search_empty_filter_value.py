"""QA pass 7, #5: a filter's empty value (``""``, what ``agensium search --filter grp=`` sends) selects the missing
cells, as ``null`` does (PRODUCT.md "Missing values": empty fields are missing values everywhere), in a text column
and in number, date and boolean columns, in memory and streamed, for the searcher and the aggregator (one selection);
``filters_understood`` shows it as ``null`` with a note. It matched no row (text) or was refused (other types).
The expected rows are those pandas reads as missing (``pd.read_csv``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import AgentInputs
from agents.options import RunOptions
from agents.params.aggregator import AggregatorParams
from agents.params.searcher import SearcherParams
from agents.search import aggregator, searcher

TOOL = "search-my-data"
CSV = (
    "id,grp,n,x,day,ok\n"
    "1,A,10,1.5,2024-01-02,true\n"
    "2,,,,,\n"
    "3,B,30,,2024-01-04,false\n"
    "4,,40,4.5,,true\n"
    "5,A,,5.5,2024-01-06,\n"
)
OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore(*args: Any) -> None:
    pass


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("empty") / "primary.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def missing_ids(csv: Path, column: str) -> list[int]:
    frame = pd.read_csv(csv)
    return frame.loc[frame[column].isna(), "id"].tolist()


def run(directory: Path, csv: Path, parameters: dict[str, Any], mode: str) -> tuple[dict[str, Any], Path]:
    out = directory / "out"
    result = run_tool(TOOL, [], {"primary.csv": csv}, parameters, out, ignore, run_options=OPTIONS[mode])
    json.dumps(result, allow_nan=False)
    assert result["status"] == "success", result["agents"]
    return result, out


def written_ids(out: Path) -> list[int]:
    return pd.read_csv(out / "search_result.csv", dtype=str, keep_default_na=False)["id"].astype(int).tolist()


@pytest.mark.parametrize("mode", list(OPTIONS))
@pytest.mark.parametrize("column", ["grp", "n", "x", "day", "ok"])
def test_an_empty_value_selects_the_missing_cells_as_null_does(
    tmp_path: Path, csv: Path, column: str, mode: str
) -> None:
    expected = missing_ids(csv, column)
    assert expected  # the column has empty cells
    found = {}
    for name, value in (("empty", ""), ("null", None)):
        parameters = {"searcher": {"filters": {column: [value]}}}
        result, out = run(tmp_path / name, csv, parameters, mode)
        data = result["agents"]["searcher"]["data"]
        assert data["total_rows"] == len(expected)
        assert [row["id"] for row in data["rows"]] == expected == written_ids(out)
        assert data["filters_understood"]["filters"] == {column: [None]}
        found[name] = data["filters_understood"]["notes"]
    assert found["empty"] == [f"filters.{column}: '' read as the missing (empty) cells, as null"]
    assert found["null"] == []


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_an_empty_value_among_others_and_in_the_aggregators_selection(tmp_path: Path, csv: Path, mode: str) -> None:
    parameters = {
        "searcher": {"filters": {"grp": ["A", ""]}},
        "aggregator": {"filters": {"grp": ["", "B"]}, "group_by": ["ok"], "metrics": [{"fn": "count"}]},
    }
    result, out = run(tmp_path, csv, parameters, mode)
    frame = pd.read_csv(csv)
    chosen = frame[frame["grp"].isna() | (frame["grp"] == "A")]
    assert [row["id"] for row in result["agents"]["searcher"]["data"]["rows"]] == chosen["id"].tolist()
    assert written_ids(out) == chosen["id"].tolist()
    grouped = result["agents"]["aggregator"]["data"]
    kept = frame[frame["grp"].isna() | (frame["grp"] == "B")]
    expected = {(None if pd.isna(k) else bool(k)): len(rows) for k, rows in kept.groupby("ok", dropna=False)}
    assert {group["ok"]: group["count"] for group in grouped["groups"]} == expected
    assert grouped["filters_understood"]["filters"] == {"grp": ["B", None]}
    assert grouped["filters_understood"]["notes"] == ["filters.grp: '' read as the missing (empty) cells, as null"]


def test_a_blank_text_cell_is_missing_for_null_and_empty_filters() -> None:
    """A text column read as written (a quoted empty field, ``null_tokens: []``, a Parquet upload) may hold empty or
    blank texts: missing values too, selected by null, "" and a blank value alike."""
    frame = pl.DataFrame(
        {"id": [1, 2, 3, 4, 5], "grp": ["A", "", None, "  ", "B"], "day": [dt.date(2024, 1, 1), None, None, None, None]}
    )
    frame = frame.with_columns(pl.col("grp").cast(pl.Categorical).alias("cat"))
    for column in ("grp", "cat"):
        for value in (None, "", " "):
            params = SearcherParams.model_validate({"filters": {column: [value]}})
            data = searcher.run(AgentInputs(frame, "primary.csv"), params, ignore).envelope.data
            assert [row["id"] for row in data["rows"]] == [2, 3, 4], (column, value)
    grouping = AggregatorParams.model_validate({"filters": {"grp": [""]}, "group_by": ["day"]})
    data = aggregator.run(AgentInputs(frame, "primary.csv"), grouping, ignore).envelope.data
    assert [(group["day"], group["count"]) for group in data["groups"]] == [(None, 3)]
