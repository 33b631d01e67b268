"""A sort by a text column of dates in another layout than ISO 8601 (QA: ``sort: [{"column": "date", "descending":
true}]`` put ``12/01/2023`` after ``03/15/2024``): the rows are ordered by the dates, read as a time range reads
them, and keep their text; a column that cannot be read so is sorted as text, and the result says why. Expected
orders come from the Python dates the files were written from, sorted by pandas."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from agents import external
from agents.chain import run_tool
from agents.options import RunOptions
from agents.search import kept, searcher
from tests.agents.search.test_kept import _fetch_like_the_worker, store_csv
from tests.agents.search.test_search_text_dates import MODES, dated, ignore, search

LAYOUTS = {"US": "%m/%d/%Y", "day first": "%d/%m/%Y", "dotted": "%d.%m.%Y", "month name": "%b %d %Y",
           "day first with a time": "%d/%m/%Y %H:%M"}  # fmt: skip
READ_AS_WRITTEN = "'when' is text: its dates were read as written"


def expected_ids(frame: pd.DataFrame, keys: list[tuple[str, bool]]) -> list[int]:
    """The ids in the order of ``keys`` over the Python values (dates, not text): stable, empty values last."""
    ordered = frame.assign(when=pd.to_datetime(frame["when"]))
    for column, descending in reversed(keys):
        ordered = ordered.sort_values(column, ascending=not descending, kind="stable", na_position="last")
    return [int(i) for i in ordered["id"]]


def written(frame: pd.DataFrame, layout: str) -> dict[int, str | None]:
    """Each id's date as the file holds it (None: empty)."""
    return {
        int(i): None if pd.isna(day) else day.strftime(layout)
        for i, day in zip(frame["id"], frame["when"], strict=True)
    }


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def notes(found: dict[str, Any]) -> list[str]:
    notes: list[str] = found["filters_understood"]["notes"]
    return notes


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_rows_sort_by_their_text_dates_and_keep_their_text(
    tmp_path: Path, layout: str, descending: bool, mode: str
) -> None:
    path, frame = dated(tmp_path, LAYOUTS[layout])  # 400 rows over two years: equal dates, and empty ones
    sort = [{"column": "when", "descending": descending}]
    document = search(tmp_path, path, {"searcher": {"sort": sort, "page_size": 1000}}, mode)
    found = document["search"]
    want = expected_ids(frame, [("when", descending)])
    assert [row["id"] for row in found["rows"]] == want
    text = written(frame, LAYOUTS[layout])
    assert [row["when"] for row in found["rows"]] == [text[i] for i in want]  # the text, unchanged
    assert found["rows"][-1]["when"] is None  # empty values last, whatever the direction
    assert any(note.startswith(READ_AS_WRITTEN) for note in notes(found))
    out = max(tmp_path.glob("out-*"))
    rows = csv_rows(out / "search_result.csv")
    assert [int(row["id"]) for row in rows] == want
    assert [row["when"] or None for row in rows] == [text[i] for i in want]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_text_date_key_among_others_and_projected_away(tmp_path: Path, mode: str) -> None:
    path, frame = dated(tmp_path, "%d.%m.%Y")
    sort = [{"column": "amount"}, {"column": "When", "descending": True}]  # inexact name: a note too
    parameters = {"sort": sort, "columns": ["id", "amount"], "page": 2, "page_size": 30}
    found = search(tmp_path, path, {"searcher": parameters}, mode)["search"]
    want = expected_ids(frame, [("amount", False), ("when", True)])
    assert [row["id"] for row in found["rows"]] == want[30:60]
    assert all(set(row) == {"id", "amount"} for row in found["rows"])  # no temporary key left
    assert found["columns"] == ["id", "amount"]
    assert found["filters_understood"]["sort"] == [
        {"column": "amount", "descending": False},
        {"column": "when", "descending": True},
    ]


@pytest.fixture
def bucketed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the searcher's external sorts returned, with buckets small enough that 400 rows fill several."""
    monkeypatch.setattr(external, "BUCKET_BYTES", 2_000)
    sorts: list[Any] = []

    def sort(*args: Any) -> Any:
        sorts.append(external.sort_external(*args))
        return sorts[-1]

    monkeypatch.setattr(searcher, "sort_external", sort)
    return sorts


@pytest.mark.parametrize("descending", [True, False])
def test_a_streamed_search_sorts_text_dates_in_buckets(tmp_path: Path, descending: bool, bucketed: list[Any]) -> None:
    path, frame = dated(tmp_path, "%m/%d/%Y")
    parameters = {"sort": [{"column": "when", "descending": descending}], "page": 3, "page_size": 50}
    found = search(tmp_path, path, {"searcher": parameters}, "streamed")["search"]
    assert len(bucketed) == 1 and bucketed[0] is not None  # sorted in buckets, by the dates
    want = expected_ids(frame, [("when", descending)])
    assert [row["id"] for row in found["rows"]] == want[100:150]
    assert [int(row["id"]) for row in csv_rows(max(tmp_path.glob("out-*")) / "search_result.csv")] == want


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("text", "why"),
    [
        (["03/04/2024", "05/06/2024", "01/02/2024", "12/01/2023", ""], "whether day or month comes first is a guess"),
        (["03/15/2024", "soon", "12/01/2023", "", "01/02/2024"], "1 of its 4 values do not read as dates"),
    ],
)
def test_a_text_column_that_does_not_read_as_dates_sorts_as_text_and_says_why(
    tmp_path: Path, mode: str, text: list[str], why: str
) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("id,when\n" + "".join(f"{i},{value}\n" for i, value in enumerate(text, 1)), encoding="utf-8")
    parameters = {
        "searcher": {"sort": [{"column": "when", "descending": True}]},
        "aggregator": {"group_by": ["when"], "metrics": [{"fn": "count"}], "sort": [{"column": "when"}]},
    }
    document = search(tmp_path, path, parameters, mode)
    found, groups = document["search"], document["aggregate"]
    values = [value for value in text if value]
    assert [row["when"] for row in found["rows"]] == [*sorted(values, reverse=True), None]
    assert [group["when"] for group in groups["groups"]] == [*sorted(values), None]
    for result in (found, groups):
        said = [note for note in notes(result) if note.startswith("sort: 'when' is text")]
        assert len(said) == 1 and why in said[0] and "sorted as text" in said[0], notes(result)


@pytest.mark.parametrize("mode", list(MODES))
def test_text_that_is_not_dates_or_is_iso_sorts_as_text_without_a_note(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "primary.csv"
    names = ["Zoe", "adam", "Bob", "", "Émile", "bob"]
    iso = ["2024-03-15", "soon", "2023-12-01", "", "2024-01-05 10:00", "2024-01-05"]
    path.write_text(
        "id,name,when\n" + "".join(f"{i},{n},{w}\n" for i, (n, w) in enumerate(zip(names, iso, strict=True), 1)),
        encoding="utf-8",
    )
    for column, values in (("name", names), ("when", iso)):
        parameters = {"searcher": {"sort": [{"column": column, "descending": True}]}}
        found = search(tmp_path, path, parameters, mode)["search"]
        present = [value for value in values if value]
        assert [row[column] for row in found["rows"]] == [*sorted(present, reverse=True), None]
        assert notes(found) == []


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("descending", [True, False])
def test_groups_sort_by_a_text_date_key_and_by_a_bucket(tmp_path: Path, mode: str, descending: bool) -> None:
    path, frame = dated(tmp_path, "%d/%m/%Y", rows=300)
    metrics = [{"fn": "count"}, {"fn": "sum", "column": "amount"}]
    sort = [{"column": "when", "descending": descending}]
    by_day = {"group_by": ["when"], "metrics": metrics, "sort": sort, "page": 2, "page_size": 40}
    by_month = {"bucket": {"column": "when", "unit": "month"}, "metrics": metrics, "sort": sort}
    days = frame.assign(when=pd.to_datetime(frame["when"]))
    expected_days = (
        days.groupby("when", dropna=False)
        .agg(count=("id", "size"), sum_amount=("amount", "sum"))
        .reset_index()
        .sort_values("when", ascending=not descending, na_position="last")
    )
    text = expected_days["when"].map(lambda day: None if pd.isna(day) else day.strftime("%d/%m/%Y"))
    expected = [
        {"when": when, "count": int(count), "sum_amount": int(total)}
        for when, count, total in zip(text, expected_days["count"], expected_days["sum_amount"], strict=True)
    ]
    groups = search(tmp_path, path, {"aggregator": by_day}, mode)["aggregate"]
    assert groups["total_groups"] == len(expected)
    assert groups["groups"] == expected[40:80]
    assert groups["chart"]["labels"] == [group["when"] or "(empty)" for group in expected[40:80]]
    assert any(note.startswith(READ_AS_WRITTEN) for note in notes(groups))
    if not descending:
        last = search(tmp_path, path, {"aggregator": {**by_day, "page": groups["pages"]}}, mode)["aggregate"]
        assert last["groups"][-1]["when"] is None  # the empty key last

    months = days.dropna(subset=["when"]).assign(when=lambda f: f["when"].dt.to_period("M").dt.start_time)
    counts = months.groupby("when")["id"].size().sort_index(ascending=not descending)
    got = search(tmp_path, path, {"aggregator": by_month}, mode)["aggregate"]["groups"]
    assert [(group["when"], group["count"]) for group in got if group["when"]] == [
        (day.date().isoformat(), int(count)) for day, count in counts.items()
    ]


def test_later_pages_from_the_kept_matches_follow_the_dates(tmp_path: Path) -> None:
    """An in-memory first page keeps its matches, sorted by the dates; later pages are read from them."""
    path, frame = dated(tmp_path, "%b %d %Y")
    keep = tmp_path / "keep"
    keep.mkdir()
    parameters = {"searcher": {"sort": [{"column": "when", "descending": True}], "page_size": 60}}
    first_out = tmp_path / "first"
    options = RunOptions(keep_dir=keep)
    first = run_tool("search-my-data", ["searcher"], {"primary.csv": path}, parameters, first_out, ignore,
                     run_options=options)  # fmt: skip
    store_csv(keep, first, first_out)
    want = expected_ids(frame, [("when", True)])
    text = written(frame, "%b %d %Y")
    for page in (2, 7):
        later = {"searcher": {**parameters["searcher"], "page": page}}
        fetched = _fetch_like_the_worker(keep, tmp_path / f"fetched{page}", later)
        out = tmp_path / f"page{page}"
        result = run_tool(
            "search-my-data", ["searcher"], {}, later, out, ignore, run_options=RunOptions(keep_dir=fetched)
        )
        assert "reuse" in result["kept"]  # read from the kept matches
        found = json.loads((out / "search_result.json").read_text(encoding="utf-8"))["search"]
        ids = want[(page - 1) * 60 : page * 60]
        assert [row["id"] for row in found["rows"]] == ids
        assert [row["when"] for row in found["rows"]] == [text[i] for i in ids]
        assert any(note.startswith(READ_AS_WRITTEN) for note in notes(found))
        shutil.rmtree(fetched)


def test_a_later_search_of_a_streamed_kept_dataset_follows_the_dates(tmp_path: Path) -> None:
    """A file too large for memory is kept as a dataset that later pages scan again: the same dates order."""
    path, frame = dated(tmp_path, "%d.%m.%Y")
    keep = tmp_path / "keep"
    keep.mkdir()
    options = RunOptions(streaming_threshold_bytes=0, keep_dir=keep)
    parameters = {"searcher": {"sort": [{"column": "when"}], "page_size": 45}}
    run_tool("search-my-data", ["searcher"], {"primary.csv": path}, parameters, tmp_path / "first", ignore,
             run_options=options)  # fmt: skip
    assert (keep / kept.DATASET_NAME).is_file()
    want = expected_ids(frame, [("when", False)])
    out = tmp_path / "later"
    later = {"searcher": {**parameters["searcher"], "page": 4}}
    result = run_tool("search-my-data", ["searcher"], {}, later, out, ignore, run_options=options)
    assert result["summary"]["inputs"]["primary"]["kept"] == "dataset"
    found = json.loads((out / "search_result.json").read_text(encoding="utf-8"))["search"]
    assert [row["id"] for row in found["rows"]] == want[135:180]
    assert [int(row["id"]) for row in csv_rows(out / "search_result.csv")] == want


@pytest.mark.parametrize("mode", list(MODES))
def test_groups_whose_texts_read_as_one_date_keep_one_order(tmp_path: Path, mode: str) -> None:
    """Two texts of the same day ("3/5/2024", "03/05/2024") are two groups tied on the date: their text decides, so a
    page never depends on the order rows came in (review)."""
    texts = ["3/5/2024", "03/05/2024", "12/3/2024", "12/03/2024", "25/12/2024"]  # 25/12: day first
    expected = ["12/03/2024", "12/3/2024", "03/05/2024", "3/5/2024", "25/12/2024"]
    by_day = {"group_by": ["when"], "metrics": [{"fn": "count"}], "sort": [{"column": "when"}]}
    for order in (texts, list(reversed(texts)), texts[2:] + texts[:2]):
        path = tmp_path / "primary.csv"
        path.write_text("id,when\n" + "".join(f"{i},{text}\n" for i, text in enumerate(order, 1)), encoding="utf-8")
        groups = search(tmp_path, path, {"aggregator": by_day}, mode)["aggregate"]["groups"]
        assert [group["when"] for group in groups] == expected
