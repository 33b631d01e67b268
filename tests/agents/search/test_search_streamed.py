"""search-my-data on a primary too large for memory (issue 15): read into a typed Parquet spill (agents.spill) and
searched and aggregated by scanning it, it writes what the in-memory run writes: the same search_result.csv bytes,
the same search_result.json, the same envelopes and dataset. With a keep directory the spill is the kept dataset, and
a later search scans it instead of reading it whole."""

from __future__ import annotations

import importlib.util
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents import external
from agents.chain import run_tool
from agents.envelope import AgentResult
from agents.options import RunOptions
from agents.params.searcher import SearcherParams
from agents.search import kept, searcher
from agents.transform import execute
from tests.agents.search.support import CITIES, SCHEMA, polars_frame, tables
from tests.agents.search.test_kept import SEARCHER, _rows, ignore
from tests.agents.streamed_support import run_in_memory, run_streamed, untimed

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


# ---------------------------------------------------------------------------------------------------------
# sorted searches: sorted in buckets (agents.external), forced by a small bucket size

BUCKET_BYTES = 16_000  # the 3,000-row file fills about a dozen buckets; a selection of a few hundred rows, several
SORTED: dict[str, dict[str, Any]] = {
    "ties on a key of four values, then a descending key with empty values": {
        "sort": [{"column": "city"}, {"column": "amount", "descending": True}],
        "page": 2,
        "page_size": 40,
    },
    "descending with empty values, the last page": {
        "sort": [{"column": "seen_at", "descending": True}],
        "page": 120,
        "page_size": 25,
    },
    "skew: five values, each a bucket of its own; projected without the key": {
        "sort": [{"column": "note"}],
        "columns": ["id", "city"],
        "page": 7,
    },
    "selected, multi-key, a page beyond the last": {
        "keywords": ["road"],
        "sort": [{"column": "amount"}, {"column": "code", "descending": True}],
        "page": 999,
    },
    "a key named twice, projected in another order": {
        "sort": [
            {"column": "signed", "descending": True},
            {"column": "City", "descending": True},
            {"column": "signed"},
        ],
        "columns": ["signed", "id", "amount"],
        "page_size": 1000,
    },
    "filtered to one city, text key with leading zeros": {"filters": {"city": ["Lyon"]}, "sort": [{"column": "code"}]},
}


@pytest.fixture
def bucketed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[pl.LazyFrame, int] | None]:
    """What the searcher's external sorts returned (None: the matches fitted one bucket and Polars sorted)."""
    monkeypatch.setattr(external, "BUCKET_BYTES", BUCKET_BYTES)
    sorts: list[tuple[pl.LazyFrame, int] | None] = []

    def sort(*args: Any) -> tuple[pl.LazyFrame, int] | None:
        sorts.append(external.sort_external(*args))
        return sorts[-1]

    monkeypatch.setattr(searcher, "sort_external", sort)
    return sorts


@pytest.mark.parametrize("name", list(SORTED))
def test_a_streamed_sorted_search_writes_what_the_in_memory_one_writes(
    tmp_path: Path, csv: Path, name: str, bucketed: list[tuple[pl.LazyFrame, int] | None]
) -> None:
    parameters = {"searcher": SORTED[name]}
    runs = {}
    for label, options in (("memory", RunOptions()), ("streamed", RunOptions(streaming_threshold_bytes=0))):
        out = tmp_path / label
        result = run_tool(TOOL, ["searcher"], {"primary.csv": csv}, parameters, out, ignore, run_options=options)
        runs[label] = (result, out)
    (memory, memory_out), (streamed, streamed_out) = runs["memory"], runs["streamed"]
    assert memory["status"] == "success"
    assert len(bucketed) == 1 and bucketed[0] is not None  # sorted in buckets, not by Polars
    assert _without_times(streamed) == _without_times(memory)
    for output in ("search_result.csv", "search_result.json"):
        assert (streamed_out / output).read_bytes() == (memory_out / output).read_bytes(), output
    assert not list(tmp_path.glob(".spill-*"))  # the sorted buckets are gone with the run's spill


def test_a_later_sorted_search_of_a_large_kept_dataset_sorts_in_buckets_too(
    tmp_path: Path, csv: Path, bucketed: list[tuple[pl.LazyFrame, int] | None]
) -> None:
    """The kept dataset of a file too large for memory is scanned by later searches: their sort works in files
    (before, Polars sorted every match in memory to write search_result.csv)."""
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(streaming_threshold_bytes=0, keep_dir=keep)
    parameters = {"searcher": SORTED[next(iter(SORTED))]}
    first_out = tmp_path / "first" / "out"
    first = run_tool(TOOL, ["searcher"], {"primary.csv": csv}, parameters, first_out, ignore, run_options=options)
    later_out = tmp_path / "later" / "out"
    later = run_tool(
        TOOL,
        ["searcher"],
        {},
        {"searcher": {**parameters["searcher"], "page": 3}},
        later_out,
        ignore,
        run_options=options,
    )
    assert later["summary"]["inputs"]["primary"]["kept"] == "dataset"
    assert len(bucketed) == 2 and all(sort is not None for sort in bucketed)
    assert (later_out / "search_result.csv").read_bytes() == (first_out / "search_result.csv").read_bytes()
    first_page, later_page = first["agents"]["searcher"]["data"], later["agents"]["searcher"]["data"]
    assert later_page["total_rows"] == first_page["total_rows"] and later_page["page"] == 3
    assert not list((tmp_path / "later").glob(".spill-*"))


def test_a_skewed_key_is_copied_in_order_not_sorted_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucketed: list[tuple[pl.LazyFrame, int] | None]
) -> None:
    """One value in nine rows of ten: its bucket holds only it and is written in its order, in a streaming pass;
    the buckets sorted in memory hold the other rows."""
    rows = 4_000
    frame = pl.DataFrame(
        {
            "id": range(rows),
            "kind": ["common" if i % 10 else f"rare{i % 7}" for i in range(rows)],
            "amount": [None if i % 13 == 0 else (i * 7919) % 101 for i in range(rows)],
        }
    )
    sorted_sizes: list[int] = []
    sort_bucket = external._sort_bucket

    def recorded(files: list[Path], *args: Any) -> tuple[int, int]:
        found = sort_bucket(files, *args)
        sorted_sizes.append(found[0])
        return found

    monkeypatch.setattr(external, "_sort_bucket", recorded)
    monkeypatch.setattr(external, "BUCKET_BYTES", math.ceil(frame.estimated_size() / 6))
    params = SearcherParams.model_validate({"sort": [{"column": "kind", "descending": True}], "page": 3})
    result = _assert_same_search(frame, params, tmp_path)
    assert bucketed[0] is not None
    assert sum(sorted_sizes) == rows // 10  # the 3,600 "common" rows were never sorted, nor held
    assert result.scan is not None
    common = result.scan.filter(pl.col("kind") == "common").collect()
    assert common["id"].to_list() == [i for i in range(rows) if i % 10]


def test_without_a_work_directory_polars_sorts_and_the_page_is_a_head(tmp_path: Path) -> None:
    """The kept dataset of a streamed search gives no work directory: the page is a bounded head of the sort, with
    the rows' positions as the last key (the stable order), and the plan sorts with Polars."""
    frame = polars_frame([{"id": i + 1, **row} for i, row in enumerate(_tied_rows(500))])
    params = SearcherParams.model_validate({"sort": [{"column": "city"}, {"column": "qty", "descending": True}],
                                            "page": 4, "page_size": 30})  # fmt: skip
    result = _assert_same_search(frame, params, tmp_path, row_group=64, spills=False)
    assert result.scan is not None and "SORT" in result.scan.explain()


def _tied_rows(count: int) -> list[dict[str, Any]]:
    cities = [*CITIES, None]
    return [
        {"name": None, "city": cities[i % 5], "qty": None if i % 9 == 0 else i % 4, "price": float(i % 3),
         "day": None, "flag": i % 2 == 0}
        for i in range(count)
    ]  # fmt: skip


KEYS = st.lists(st.tuples(st.sampled_from(list(SCHEMA)), st.booleans()), min_size=1, max_size=3)


@given(
    rows=tables(max_rows=120).filter(lambda rows: len(rows) >= 10),
    keys=KEYS,
    page=st.integers(1, 6),
    page_size=st.integers(1, 40),
    projected=st.none() | st.lists(st.sampled_from(list(SCHEMA)), min_size=1, max_size=4),
    buckets=st.integers(2, 9),
    work=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_a_streamed_sort_is_the_in_memory_one(
    rows: list[dict[str, Any]],
    keys: list[tuple[str, bool]],
    page: int,
    page_size: int,
    projected: list[str] | None,
    buckets: int,
    work: bool,
) -> None:
    """Whatever the keys (ties, empty values, repeated keys), the page and the projection: the streamed search, in
    buckets (with a work directory) or by Polars with a bounded head (without), returns the in-memory rows in the
    in-memory order."""
    frame = polars_frame(rows)
    params = SearcherParams.model_validate(
        {
            "sort": [{"column": column, "descending": descending} for column, descending in keys],
            "columns": projected,
            "page": page,
            "page_size": page_size,
        }
    )
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
        patch.setattr(external, "BUCKET_BYTES", max(1, math.ceil(frame.estimated_size() / buckets)))
        _assert_same_search(frame, params, Path(folder), row_group=16, spills=work)


def _assert_same_search(
    frame: pl.DataFrame, params: SearcherParams, folder: Path, row_group: int | None = None, *, spills: bool = True
) -> AgentResult:
    """The streamed search (``spills``: with a work directory) returns the in-memory envelope, and its plan reads
    files and gives the in-memory frame."""
    memory = run_in_memory(searcher.run, frame, params)
    result = run_streamed(searcher.run, frame, params, folder, row_group, spills=spills)
    assert memory.frame is not None and result.frame is None and result.scan is not None
    assert untimed(result) == untimed(memory)
    assert "DF [" not in result.scan.explain()
    assert_frame_equal(result.scan.collect(), memory.frame, check_exact=True)
    assert result.rows == memory.frame.height
    return result


def test_the_searcher_and_the_transformer_share_one_external_sort() -> None:
    """The external sort is the agents' shared toolkit (agents.external), not the transformer's."""
    assert importlib.util.find_spec("agents.transform.external") is None
    assert searcher.sort_external is external.sort_external
    assert (
        execute.sort_external is external.sort_external and execute.duplicates_external is external.duplicates_external
    )
