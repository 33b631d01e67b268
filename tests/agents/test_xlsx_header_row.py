"""D19: a workbook with a title above its header (``Sales report 2024`` in A1, row 2 empty, ``region, amount`` on row
3: a common export layout) was read with the title as the header, the real header a data row and every column
text, silently; and no reading option named the header row. Now the header is found below such a title (and the
read report says so), and ``inputs.<role>.header_row`` names it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter

from agents import registry
from agents.chain import run_tool
from agents.errors import InvalidFileError, InvalidParametersError
from agents.readers import read_table_with_report


def ignore(*_: object) -> None:
    return None


def _book(path: Path, rows: Sequence[Sequence[Any]], *, first_row: int = 0) -> Path:
    """A workbook of one sheet holding ``rows`` from the 0-based ``first_row`` (None: an empty cell)."""
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet("Sales")
    for number, row in enumerate(rows, start=first_row):
        for column, value in enumerate(row):
            if value is not None:
                sheet.write(number, column, value)
    workbook.close()
    return path


TITLED: list[list[Any]] = [["Sales report 2024"], [], ["region", "amount"], ["EU", 10], ["US", 20]]


def test_a_title_above_the_header_is_skipped_and_reported(tmp_path: Path) -> None:
    frame, report = read_table_with_report(_book(tmp_path / "primary.xlsx", TITLED), "primary.xlsx")
    assert frame.columns == ["region", "amount"]
    assert frame.schema["amount"] == pl.Int64
    assert frame.rows() == [("EU", 10), ("US", 20)]
    assert report["rows"] == 2 and report["renamed_columns"] == []
    assert report["header_row"]["row"] == 3
    assert report["header_row"]["skipped"] == ["Sales report 2024"]
    assert "title" in report["header_row"]["reason"]
    _, plain = read_table_with_report(_book(tmp_path / "plain.xlsx", TITLED[2:]), "primary.xlsx")
    assert "header_row" not in plain


@pytest.mark.parametrize(
    "rows",
    [
        [["region", None], ["EU", 10], ["US", 20]],  # a header with a blank name: no title
        [["Sales report 2024"], ["region", "region"], ["EU", 10]],  # repeated names: not a header
        [["Sales report 2024"], ["EU", 10], ["US", 20]],  # the first full row is data (no letter in 10)
        [["Sales report 2024"], ["region", None, None], ["EU", 10, 1]],  # a column with values has no name
    ],
)
def test_no_row_of_several_cells_is_skipped_unless_the_layout_is_clear(tmp_path: Path, rows: list[list[Any]]) -> None:
    """Each workbook beside the titled one: only the titled one is read from its row 3."""
    frame, _ = read_table_with_report(_book(tmp_path / "titled.xlsx", TITLED), "primary.xlsx")
    assert frame.columns == ["region", "amount"]
    _, report = read_table_with_report(_book(tmp_path / "primary.xlsx", rows), "primary.xlsx")
    assert "skipped" not in report.get("header_row", {})


def test_several_title_lines_and_a_sheet_starting_below_row_1(tmp_path: Path) -> None:
    rows: list[list[Any]] = [
        ["Sales report 2024"],
        ["Generated 2024-01-05"],
        [],
        ["region", "amount", "paid"],
        ["EU", 10.5, True],
    ]
    frame, report = read_table_with_report(_book(tmp_path / "primary.xlsx", rows, first_row=1), "primary.xlsx")
    assert frame.columns == ["region", "amount", "paid"]
    assert frame.dtypes == [pl.String, pl.Float64, pl.Boolean]
    assert report["header_row"]["row"] == 5  # 1-based row of the sheet: row 1 is empty
    assert report["header_row"]["skipped"] == ["Sales report 2024", "Generated 2024-01-05"]


def test_a_title_above_text_only_columns_is_kept_but_reported(tmp_path: Path) -> None:
    """No typed column tells the candidate header from a data row: row 1 stays the header, the report says which
    row may be it."""
    rows = [["Customers"], [], ["name", "city"], ["Ann", "Paris"], ["Bob", "Rome"]]
    frame, report = read_table_with_report(_book(tmp_path / "primary.xlsx", rows), "primary.xlsx")
    assert frame.columns == ["Customers", "column_2"]
    assert report["header_row"]["row"] == 1
    assert report["header_row"]["possible_header_row"] == 3
    assert "header_row" in report["header_row"]["reason"]


def test_the_header_row_option_names_the_header(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["Sales report 2024"], ["region", "amount"], ["code", "value"], ["EU", 10]]
    path = _book(tmp_path / "primary.xlsx", rows)
    frame, report = read_table_with_report(path, "primary.xlsx", header_row=3)
    assert frame.columns == ["code", "value"] and frame.rows() == [("EU", 10)]
    assert report["header_row"] == {
        "row": 3,
        "skipped": ["Sales report 2024", "region | amount"],
        "reason": "the reading option header_row",
    }
    frame, _ = read_table_with_report(path, "primary.xlsx", header_row=1)  # row 1 asked for: no detection
    assert frame.columns == ["Sales report 2024", "column_2"]


@pytest.mark.parametrize(("header_row", "problem"), [(2, "row 2 is empty"), (5, "no data rows below row 5")])
def test_a_header_row_without_names_or_data_is_refused(tmp_path: Path, header_row: int, problem: str) -> None:
    with pytest.raises(InvalidFileError) as raised:
        read_table_with_report(_book(tmp_path / "primary.xlsx", TITLED), "primary.xlsx", header_row=header_row)
    assert problem in str(raised.value) and "header_row" in str(raised.value)
    assert raised.value.details["last_row"] == 5


def test_the_header_row_option_is_for_workbooks_only(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("Sales report\nregion,amount\nEU,10\n")
    with pytest.raises(InvalidFileError, match="applies to .xlsx workbooks only"):
        read_table_with_report(path, "primary.csv", header_row=2)


@pytest.mark.parametrize("value", [0, -1, 1_048_577, "3"])
def test_the_header_row_option_is_validated(value: object) -> None:
    assert registry.input_options({"inputs": {"primary": {"header_row": 3}}}).primary.header_row == 3
    with pytest.raises(InvalidParametersError) as raised:
        registry.input_options({"inputs": {"primary": {"header_row": value}}})
    assert raised.value.field == "inputs.primary.header_row"


def test_a_profile_of_the_titled_workbook_and_the_option(tmp_path: Path) -> None:
    path = _book(tmp_path / "primary.xlsx", TITLED)
    result = run_tool("profile-my-data", ["unified-profiler"], {"primary.xlsx": path}, {}, tmp_path / "a", ignore)
    fields = result["agents"]["unified-profiler"]["data"]["fields"]
    assert [field["field_name"] for field in fields] == ["region", "amount"]
    assert result["summary"]["inputs"]["primary"]["header_row"]["row"] == 3
    given = {"inputs": {"primary": {"header_row": 3}}}
    result = run_tool("profile-my-data", ["unified-profiler"], {"primary.xlsx": path}, given, tmp_path / "b", ignore)
    assert result["summary"]["inputs"]["primary"]["header_row"]["reason"] == "the reading option header_row"
