"""Text written in either Unicode form (QA: a decomposed ``Köln``, ``o`` + U+0308, was found by neither the keyword
``köln`` nor the filter ``Köln``): keywords and filters match it; the aggregator groups values as stored."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, Literal

import pytest

from agents.chain import run_tool
from agents.options import RunOptions

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
COMPOSED, DECOMPOSED = "K\u00f6ln", "Ko\u0308ln"
CITIES = [COMPOSED, DECOMPOSED, "K\u00d6LN", "Stra\u00dfe", "e\u0301cole", "Koln", f"Gro\u00df-{DECOMPOSED}"]


def ignore(*_: object) -> None:
    return None


def search(tmp_path: Path, parameters: dict[str, Any], mode: str) -> dict[str, Any]:
    primary = tmp_path / "primary.csv"
    primary.write_text("id,city\n" + "".join(f"{i},{city}\n" for i, city in enumerate(CITIES, 1)), encoding="utf-8")
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    result = run_tool("search-my-data", [], {"primary.csv": primary}, parameters, out, ignore, run_options=MODES[mode])
    assert result["status"] == "success"
    return json.loads((out / "search_result.json").read_text(encoding="utf-8"))


def ids(document: dict[str, Any]) -> list[int]:
    return sorted(row["id"] for row in document["search"]["rows"])


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_keyword_finds_both_forms(tmp_path: Path, mode: str, form: Literal["NFC", "NFD"]) -> None:
    keyword = unicodedata.normalize(form, "k\u00f6ln")
    assert ids(search(tmp_path, {"searcher": {"keywords": [keyword]}}, mode)) == [1, 2, 3, 7]
    accent = unicodedata.normalize(form, "\u00e9cole")
    assert ids(search(tmp_path, {"searcher": {"keywords": [accent]}}, mode)) == [5]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("value", [COMPOSED, DECOMPOSED])
def test_a_filter_matches_both_forms_and_keeps_the_text(tmp_path: Path, mode: str, value: str) -> None:
    document = search(tmp_path, {"searcher": {"filters": {"city": [value]}}}, mode)
    assert ids(document) == [1, 2]
    assert [row["city"] for row in sorted(document["search"]["rows"], key=lambda row: row["id"])] == CITIES[:2]


def test_the_aggregator_groups_values_as_stored(tmp_path: Path) -> None:
    document = search(tmp_path, {"aggregator": {"group_by": ["city"]}}, "in_memory")
    groups = {group["city"] for group in document["aggregate"]["groups"]}
    assert {COMPOSED, DECOMPOSED} <= groups  # two spellings in the data: two groups
