"""What search-my-data keeps with a dataset (agents.search.kept) through agents.chain.run_tool: a search of the kept
Parquet conversion writes the very bytes a search of the file writes; a later page read from the kept matches is
the page a full search gives, and needs neither the file nor the conversion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from agents import registry
from agents.chain import run_tool
from agents.options import RunOptions
from agents.params.searcher import SearcherParams
from agents.search import kept

TOOL = "search-my-data"
# Dates in two layouts, an id with leading zeros (text), missing-value tokens kept as written, a zone.
HEADER = "id,code,city,amount,signed,seen_at,note\n"
CITIES = ["Paris", "Lyon", "paris", ""]


def _rows(count: int) -> str:
    lines = []
    for i in range(count):
        signed = f"{(i % 28) + 1:02d}/0{(i % 9) + 1}/2024"
        seen = f"2024-03-{(i % 28) + 1:02d}T10:{i % 60:02d}:00+02:00" if i % 7 else ""
        amount = "" if i % 11 == 0 else f"{(i * 37) % 1000 / 4}"
        note = ["road works", "NA", "n/a", "Bridge", ""][i % 5]
        lines.append(f"{i},{i % 50:04d},{CITIES[i % 4]},{amount},{signed},{seen},{note}\n")
    return HEADER + "".join(lines)


def ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def run(
    directory: Path, parameters: dict[str, Any], *, csv: str | None, keep: Path | None, agents: list[str]
) -> dict[str, Any]:
    inputs = {}
    if csv is not None:
        (directory / "primary.csv").write_text(csv, encoding="utf-8")
        inputs["primary.csv"] = directory / "primary.csv"
    result = run_tool(
        TOOL, agents, inputs, parameters, directory / "out", ignore, run_options=RunOptions(keep_dir=keep)
    )
    json.dumps(result, allow_nan=False)
    return result


def store_csv(keep: Path, result: dict[str, Any], out: Path) -> None:
    """What the worker does after a first search: the kept search_result.csv and its identity in meta.json."""
    directory = keep / result["kept"]["matches"]
    shutil.copy(out / "search_result.csv", directory / kept.CSV_NAME)
    meta = json.loads((directory / kept.META_NAME).read_text())
    meta["csv"] = {"size": (out / "search_result.csv").stat().st_size, "sha256": "0" * 64}
    (directory / kept.META_NAME).write_text(json.dumps(meta))


SEARCHER = {
    "filters": {"city": ["Paris", "paris"]},
    "keywords": ["road"],
    "sort": [{"column": "signed", "descending": True}, {"column": "amount"}],
    "columns": ["id", "code", "signed", "seen_at", "amount", "note"],
}


def test_a_search_of_the_kept_conversion_writes_what_a_search_of_the_file_writes(tmp_path: Path) -> None:
    csv = _rows(2_500)
    keep = tmp_path / "keep"
    keep.mkdir()
    (tmp_path / "first").mkdir()
    first = run(tmp_path / "first", {"searcher": SEARCHER}, csv=csv, keep=keep, agents=["searcher", "aggregator"])
    assert first["kept"] == {"written": [kept.DATASET_NAME]}  # with the aggregator: no matches are kept
    assert (keep / kept.DATASET_NAME).is_file()

    other = {**SEARCHER, "filters": {"code": ["0040", "0008"]}, "page": 2, "page_size": 10}
    aggregator = {"group_by": ["city"], "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amount"}]}
    parameters = {"searcher": other, "aggregator": aggregator}
    both = ["searcher", "aggregator"]
    (tmp_path / "file").mkdir()
    from_file = run(tmp_path / "file", parameters, csv=csv, keep=None, agents=both)
    (tmp_path / "kept").mkdir()
    from_kept = run(tmp_path / "kept", parameters, csv=None, keep=keep, agents=both)
    assert from_kept["summary"]["inputs"]["primary"]["kept"] == "dataset"
    assert from_kept["kept"] == {"written": []}  # the conversion is not written again
    for output in ("search_result.csv", "search_result.json"):
        assert (tmp_path / "kept" / "out" / output).read_bytes() == (tmp_path / "file" / "out" / output).read_bytes()
    assert from_kept["summary"]["dataset"] == from_file["summary"]["dataset"]
    assert from_kept["summary"]["rows"] == from_file["summary"]["rows"] == 2_500
    assert from_kept["summary"]["primary"] == "primary.csv"
    assert from_file["summary"]["rows_matched"] > 0
    assert '"0040"' in (tmp_path / "kept" / "out" / "search_result.json").read_text()  # leading zeros kept


@pytest.mark.parametrize("page_size", [7, 1_000])
def test_later_pages_from_the_kept_matches_equal_a_full_search(tmp_path: Path, page_size: int) -> None:
    csv = _rows(25_000)  # matches over several parts: a page may straddle two
    full = tmp_path / "keep"
    full.mkdir()
    searcher = {**SEARCHER, "keywords": [], "page_size": page_size}
    (tmp_path / "first").mkdir()
    first = run(tmp_path / "first", {"searcher": searcher}, csv=csv, keep=full, agents=["searcher"])
    matches = kept.matches_dir(SearcherParams.model_validate(searcher))
    assert first["kept"]["matches"] == matches
    assert f"{matches}/{kept.META_NAME}" in first["kept"]["written"]
    total = first["summary"]["rows_matched"]
    assert total > kept.PART_ROWS  # more than one part
    store_csv(full, first, tmp_path / "first" / "out")

    last = -(-total // page_size)
    straddling = kept.PART_ROWS // page_size + 1  # the page holding row 10,000 (a part's end)
    for page in sorted({2, straddling, last, last + 1}):
        parameters = {"searcher": {**searcher, "page": page}}
        directory = tmp_path / f"page{page}"
        directory.mkdir()
        expected = run(directory, parameters, csv=csv, keep=None, agents=["searcher"])
        fetched = _fetch_like_the_worker(full, directory / "keep", parameters)
        (directory / "again").mkdir()
        got = run(directory / "again", parameters, csv=None, keep=fetched, agents=["searcher"])
        assert got["kept"]["reuse"]["search_result.csv"]["path"] == f"{matches}/{kept.CSV_NAME}"
        assert "search_result.csv" in [output["name"] for output in got["outputs"]]
        assert not (directory / "again" / "out" / "search_result.csv").exists()  # the worker copies the kept one
        want = json.loads((directory / "out" / "search_result.json").read_text())
        have = json.loads((directory / "again" / "out" / "search_result.json").read_text())
        assert have == want
        assert len(have["search"]["rows"]) == (0 if page > last else min(page_size, total - (page - 1) * page_size))
        assert got["summary"]["dataset"] == expected["summary"]["dataset"]
        assert (got["summary"]["rows"], got["summary"]["columns"]) == (25_000, 7)
        assert got["agents"]["searcher"]["summary_metrics"] == expected["agents"]["searcher"]["summary_metrics"]


def _fetch_like_the_worker(full: Path, fetched: Path, parameters: dict[str, Any]) -> Path:
    """The keep directory the worker gives a later page: the selection's meta.json and only the page's parts."""
    params = registry.parse_parameters("searcher", parameters["searcher"])
    assert isinstance(params, SearcherParams)
    directory = kept.matches_dir(params)
    (fetched / directory).mkdir(parents=True)
    shutil.copy(full / directory / kept.META_NAME, fetched / directory / kept.META_NAME)
    meta = json.loads((full / directory / kept.META_NAME).read_text())
    for index in kept.page_parts(params, meta["parts"]):
        shutil.copy(full / directory / kept.part_name(index), fetched / directory / kept.part_name(index))
    return fetched


def test_a_meta_without_its_csv_is_not_a_kept_selection(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (tmp_path / "first").mkdir()
    searcher = {**SEARCHER, "page_size": 5}
    run(tmp_path / "first", {"searcher": searcher}, csv=_rows(300), keep=keep, agents=["searcher"])
    (tmp_path / "second").mkdir()  # the worker never stored its search_result.csv: the search runs again
    again = run(tmp_path / "second", {"searcher": {**searcher, "page": 2}}, csv=None, keep=keep, agents=["searcher"])
    assert "reuse" not in again["kept"]
    assert (tmp_path / "second" / "out" / "search_result.csv").is_file()
    assert again["summary"]["inputs"]["primary"]["kept"] == "dataset"  # from the conversion


def test_a_keep_that_cannot_be_written_costs_the_next_search_not_this_one(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "keep"
    not_a_directory.write_text("a file where the keep directory should be")
    (tmp_path / "run").mkdir()
    result = run(tmp_path / "run", {"searcher": SEARCHER}, csv=_rows(50), keep=not_a_directory, agents=["searcher"])
    assert result["status"] == "success" and result["kept"] == {"written": []}
    assert (tmp_path / "run" / "out" / "search_result.csv").is_file()
