"""search-my-data on a primary too large for memory (issue 15): read into a typed Parquet spill (agents.spill) and
searched and aggregated by scanning it, it writes what the in-memory run writes: the same search_result.csv bytes,
the same search_result.json, the same envelopes and dataset. With a keep directory the spill is the kept dataset, and
a later search scans it instead of reading it whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.options import RunOptions
from agents.search import kept
from tests.agents.search.test_kept import SEARCHER, _rows, ignore

TOOL = "search-my-data"
AGGREGATOR = {"group_by": ["city"], "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]}
PARAMETERS: list[dict[str, Any]] = [
    {"searcher": SEARCHER, "aggregator": AGGREGATOR},
    {"searcher": {"keywords": ["bridge"], "page": 3, "page_size": 7}, "aggregator": {"metrics": [{"fn": "count"}]}},
    {
        "searcher": {"ranges": [{"column": "amount", "min": 100, "max": 200}], "sort": [{"column": "seen_at"}]},
        "aggregator": {"bucket": {"column": "seen_at", "unit": "week"}, "metrics": [{"fn": "max", "column": "amount"}]},
    },
    {"searcher": {"filters": {"city": ["nowhere"]}}, "aggregator": {"metrics": [{"fn": "distinct", "column": "code"}]}},
]


def _run(directory: Path, csv: Path, parameters: dict[str, Any], options: RunOptions) -> tuple[dict[str, Any], Path]:
    out = directory / "out"
    result = run_tool(TOOL, [], {"primary.csv": csv}, parameters, out, ignore, run_options=options)
    json.dumps(result, allow_nan=False)
    return result, out


def _without_times(result: dict[str, Any]) -> dict[str, Any]:
    agents = {
        agent_id: {key: value for key, value in envelope.items() if key != "execution_time_ms"}
        for agent_id, envelope in result["agents"].items()
    }
    summary = {key: value for key, value in result["summary"].items() if key != "inputs"}
    return {"status": result["status"], "agents": agents, "summary": summary, "outputs": result["outputs"]}


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "primary.csv"
    path.write_text(_rows(3_000), encoding="utf-8")
    return path


@pytest.mark.parametrize("index", range(len(PARAMETERS)))
def test_a_streamed_search_writes_what_the_in_memory_one_writes(tmp_path: Path, csv: Path, index: int) -> None:
    parameters = PARAMETERS[index]
    memory, memory_out = _run(tmp_path / "memory", csv, parameters, RunOptions())
    streamed, streamed_out = _run(tmp_path / "streamed", csv, parameters, RunOptions(streaming_threshold_bytes=0))
    assert memory["summary"]["inputs"]["primary"].get("streamed") is None
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    assert _without_times(streamed) == _without_times(memory)
    assert memory["status"] == "success"
    for name in ("search_result.csv", "search_result.json"):
        assert (streamed_out / name).read_bytes() == (memory_out / name).read_bytes(), name
    assert not list(tmp_path.joinpath("streamed").glob(".spill-*"))  # the spill is gone with the run


def test_the_spill_is_the_kept_dataset_and_a_later_search_scans_it(tmp_path: Path, csv: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(streaming_threshold_bytes=0, keep_dir=keep)
    parameters = PARAMETERS[0]
    first, first_out = _run(tmp_path / "first", csv, parameters, options)
    assert first["kept"] == {"written": [kept.DATASET_NAME]}
    dataset = kept.read_dataset(keep)
    assert dataset is not None and dataset.streamed and dataset.source_name == "primary.csv"
    assert dataset.scan().select(pl.len()).collect().item() == 3_000
    assert sorted(path.name for path in keep.iterdir()) == [kept.DATASET_NAME]  # no partial file left

    # The file itself is not needed any more: a later search reads the kept dataset, by scanning it.
    later_out = tmp_path / "later" / "out"
    later = run_tool(TOOL, [], {}, parameters, later_out, ignore, run_options=options)
    assert later["summary"]["inputs"]["primary"]["kept"] == "dataset"
    assert later["summary"]["inputs"]["primary"]["streamed"] is True
    assert later["kept"] == {"written": []}
    assert _without_times(later) == _without_times(first)
    assert (later_out / "search_result.csv").read_bytes() == (first_out / "search_result.csv").read_bytes()


def test_a_searcher_alone_on_a_streamed_file_keeps_no_matches(tmp_path: Path, csv: Path) -> None:
    """The kept matches of a selection are written from matches held in memory; a streamed search's are not held,
    so a later page searches the kept dataset again (by scanning it) instead."""
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(streaming_threshold_bytes=0, keep_dir=keep)
    result = run_tool(TOOL, ["searcher"], {"primary.csv": csv}, {"searcher": SEARCHER}, tmp_path / "out", ignore,
                      run_options=options)  # fmt: skip
    assert result["kept"] == {"written": [kept.DATASET_NAME]}
    assert result["agents"]["searcher"]["summary_metrics"]["rows_matched"] > 0
