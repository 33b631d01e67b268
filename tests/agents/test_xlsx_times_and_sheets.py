"""XLSX cells holding only a time of day (QA: Excel shows ``09:30:00``, the output said ``1899-12-31T09:30:00``) and a
workbook whose first sheet is empty (QA: the error named neither the sheets with data nor the reading option)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.readers import read_table


def ignore(*_: object) -> None:
    return None


def _book(path: Path, *, empty_first: bool = False) -> Path:
    workbook = xlsxwriter.Workbook(path)
    if empty_first:
        workbook.add_worksheet("Empty")
    sheet = workbook.add_worksheet("Data")
    clock = workbook.add_format({"num_format": "hh:mm:ss"})
    stamp = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(0, 0, ["item", "at", "stamp"])
    times = [dt.time(9, 30), dt.time(0, 0), dt.time(23, 59, 59, 500000)]
    for row, moment in enumerate(times, start=1):
        sheet.write(row, 0, f"it{row}")
        sheet.write_datetime(row, 1, dt.datetime.combine(dt.date(1899, 12, 31), moment), clock)
        sheet.write_datetime(row, 2, dt.datetime(2024, 3, row, 10, 15), stamp)
    workbook.add_worksheet("Blank")
    workbook.close()
    return path


def test_time_only_cells_read_as_times_of_day(tmp_path: Path) -> None:
    frame = read_table(_book(tmp_path / "primary.xlsx"), "primary.xlsx")
    assert frame.schema["at"] == pl.Time
    assert frame["at"].to_list() == [dt.time(9, 30), dt.time(0, 0), dt.time(23, 59, 59, 500000)]
    assert isinstance(frame.schema["stamp"], pl.Datetime)  # a real date-time keeps its date


def test_the_cleaned_data_writes_them_as_excel_shows_them(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_tool("clean-my-data", [], {"primary.xlsx": _book(tmp_path / "primary.xlsx")}, {}, out, ignore)
    assert result["status"] == "success"
    written = pl.read_csv(out / "cleaned_data.csv", infer_schema=False)
    assert written["at"].to_list() == ["09:30:00", "00:00:00", "23:59:59.500"]
    assert written["stamp"].to_list()[0] == "2024-03-01T10:15:00"


def test_an_empty_first_sheet_names_the_sheets_with_data_and_the_option(tmp_path: Path) -> None:
    path = _book(tmp_path / "primary.xlsx", empty_first=True)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.xlsx")
    message = raised.value.message
    assert message.startswith("primary.xlsx: the sheet 'Empty' is empty; the sheets with data are 'Data'")
    assert "inputs.primary.sheet" in message and json.dumps({"inputs": {"primary": {"sheet": "Data"}}}) in message
    assert raised.value.details["sheets_with_data"] == ["Data"]
    assert read_table(path, "primary.xlsx", sheet="Data").height == 3  # the option it names reads the data


def test_an_empty_baseline_sheet_names_the_baseline_option(tmp_path: Path) -> None:
    path = _book(tmp_path / "baseline.xlsx", empty_first=True)
    with pytest.raises(InvalidFileError, match=r"inputs\.baseline\.sheet"):
        read_table(path, "baseline.xlsx", sheet="Blank")


def test_a_cover_sheet_with_a_header_alone_names_the_sheets_with_data(tmp_path: Path) -> None:
    """A cover sheet ("Intro" with a title row and nothing under it) first: the error names the sheets with data and
    the option, as for an empty sheet (QA pass 4, #11)."""
    path = tmp_path / "primary.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Intro").write_row(0, 0, ["Quarterly sales", "see the Sales sheet"])
        sales = book.add_worksheet("Sales")
        sales.write_row(0, 0, ["region", "amount"])
        sales.write_row(1, 0, ["north", 10])
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.xlsx")
    assert raised.value.message.startswith(
        "primary.xlsx: the sheet 'Intro' has a header but no data rows; the sheets with data are 'Sales'"
    )
    assert raised.value.details["sheets_with_data"] == ["Sales"]
