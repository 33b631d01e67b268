"""XLSX workbooks written by a program (QA: a formula without a computed value was read as an empty cell and nothing
said so; a profile then reported missing values that are not missing) and workbooks whose first sheet is hidden
(QA: the hidden sheet was read)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from agents import readers
from agents.chain import run_tool
from agents.errors import InvalidFileError
from agents.readers import read_table, read_table_with_report


def ignore(*_: object) -> None:
    return None


def _totals(path: Path, *, values: list[int | None] | None = None) -> Path:
    """A sheet "Sales" of quantities, prices and a formula total per row; ``values``: each total's stored value (None:
    xlsxwriter's default, its placeholder 0)."""
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Sales")
        sheet.write_row(0, 0, ["item", "qty", "price", "total"])
        for row in range(1, 4):
            sheet.write_row(row, 0, [f"it{row}", row, 10 * row])
            value = None if values is None else values[row - 1]
            if value is None:
                sheet.write_formula(row, 3, f"=B{row + 1}*C{row + 1}")
            else:
                sheet.write_formula(row, 3, f"=B{row + 1}*C{row + 1}", None, value)
    return path


def _as_openpyxl_writes(path: Path, *, extra_cell: str = "") -> Path:
    """The workbook rewritten as openpyxl writes formulas: ``<f>...</f><v></v>`` (no value), no ``fullCalcOnLoad``;
    ``extra_cell``: a cell added at the end of the sheet's second row."""
    with zipfile.ZipFile(path) as archive:
        parts = {member: archive.read(member) for member in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert sheet.count("</f><v>0</v>") == 3
    sheet = sheet.replace("</f><v>0</v>", "</f><v></v>")
    second = sheet.index("</row>", sheet.index("</row>") + 1)
    parts["xl/worksheets/sheet1.xml"] = (sheet[:second] + extra_cell + sheet[second:]).encode()
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in parts.items():
            archive.writestr(member, content)
    return path


def test_formulas_without_values_are_listed_in_the_read_report(tmp_path: Path) -> None:
    path = _as_openpyxl_writes(_totals(tmp_path / "primary.xlsx"))
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert frame["total"].to_list() == [None, None, None]  # the workbook holds no value: nothing is made up
    assert frame["qty"].to_list() == [1, 2, 3]
    assert report["formulas_without_values"] == {
        "total": {"cells": 3, "first_cell": "D2", "formula": "=B2*C2", "read_as": "empty"}
    }


def test_xlsxwriters_placeholder_zero_is_listed_too(tmp_path: Path) -> None:
    """xlsxwriter stores 0 for a formula given no value and asks Excel to compute every formula on opening."""
    frame, report = read_table_with_report(_totals(tmp_path / "primary.xlsx"), "primary.xlsx")
    assert frame["total"].to_list() == [0, 0, 0]
    assert report["formulas_without_values"]["total"] == {
        "cells": 3,
        "first_cell": "D2",
        "formula": "=B2*C2",
        "read_as": "0",
    }


def test_formulas_with_computed_values_say_nothing(tmp_path: Path) -> None:
    frame, report = read_table_with_report(_totals(tmp_path / "primary.xlsx", values=[10, 40, 90]), "primary.xlsx")
    assert frame["total"].to_list() == [10, 40, 90]
    assert "formulas_without_values" not in report
    plain = tmp_path / "plain.xlsx"
    with xlsxwriter.Workbook(plain) as book:
        book.add_worksheet("S").write_column(0, 0, ["a", 1, 2])
    assert "formulas_without_values" not in read_table_with_report(plain, "primary.xlsx")[1]


def test_a_formula_column_outside_the_columns_read_is_named_by_its_letter(tmp_path: Path) -> None:
    """A formula without a value and without a header right of the data: calamine reads no such column."""
    path = _as_openpyxl_writes(_totals(tmp_path / "primary.xlsx"), extra_cell='<c r="F3"><f>D3*2</f></c>')
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert frame.columns == ["item", "qty", "price", "total"]
    assert report["formulas_without_values"]["column F"] == {
        "cells": 1,
        "first_cell": "F3",
        "formula": "=D3*2",
        "read_as": "empty",
    }


def test_a_formula_column_left_of_the_columns_read_is_named_by_its_letter(tmp_path: Path) -> None:
    """calamine's columns start at the first column holding a value: a formula column without one left of them."""
    path = _totals(tmp_path / "primary.xlsx")
    with zipfile.ZipFile(path) as archive:
        parts = {member: archive.read(member) for member in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    for letter, moved in (("D", "E"), ("C", "D"), ("B", "C"), ("A", "B")):  # every cell one column right
        sheet = sheet.replace(f'<c r="{letter}', f'<c r="{moved}')
    second = sheet.index("</row>", sheet.index("</row>") + 1)
    parts["xl/worksheets/sheet1.xml"] = (sheet[:second] + '<c r="A3"><f>1+1</f></c>' + sheet[second:]).encode()
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b' fullCalcOnLoad="1"', b"")
    with zipfile.ZipFile(path, "w") as archive:
        for member, content in parts.items():
            archive.writestr(member, content)
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert frame.columns == ["item", "qty", "price", "total"]
    assert report["formulas_without_values"] == {
        "column A": {"cells": 1, "first_cell": "A3", "formula": "=1+1", "read_as": "empty"}
    }


@pytest.mark.parametrize("chunk", [64, 1000])
def test_the_sheet_is_read_in_chunks_of_whole_rows(tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "_SHEET_CHUNK_BYTES", chunk)
    path = tmp_path / "primary.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("S")
        sheet.write_row(0, 0, ["n", "twice", "label"])
        for row in range(1, 200):
            sheet.write(row, 0, row)
            if row > 50:
                sheet.write_formula(row, 1, f"=A{row + 1}*2")
            else:
                sheet.write_formula(row, 1, f"=A{row + 1}*2", None, 2 * row)
            sheet.write(row, 2, f"r{row}")
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert frame.height == 199
    assert report["formulas_without_values"] == {
        "twice": {"cells": 149, "first_cell": "B52", "formula": "=A52*2", "read_as": "0"}
    }


def test_the_envelope_carries_the_list(tmp_path: Path) -> None:
    path = _as_openpyxl_writes(_totals(tmp_path / "primary.xlsx"))
    result = run_tool("profile-my-data", ["unified-profiler"], {"primary.xlsx": path}, {}, tmp_path / "out", ignore)
    assert result["summary"]["inputs"]["primary"]["formulas_without_values"]["total"]["cells"] == 3


def _hidden_first(path: Path, *, visible_empty: bool = False) -> Path:
    with xlsxwriter.Workbook(path) as book:
        lookup = book.add_worksheet("Lookup")
        lookup.write_row(0, 0, ["code", "label"])
        lookup.write_row(1, 0, ["a", "Alpha"])
        data = book.add_worksheet("Data")
        if not visible_empty:
            data.write_row(0, 0, ["region", "amount"])
            data.write_row(1, 0, ["north", 10])
            data.write_row(2, 0, ["south", 20])
        data.activate()
        lookup.hide()
    return path


def test_a_hidden_first_sheet_is_skipped(tmp_path: Path) -> None:
    path = _hidden_first(tmp_path / "primary.xlsx")
    frame, report = read_table_with_report(path, "primary.xlsx")
    assert report["sheet"] == "Data"
    assert frame.columns == ["region", "amount"] and frame.height == 2


def test_a_hidden_sheet_named_or_by_position_is_read(tmp_path: Path) -> None:
    path = _hidden_first(tmp_path / "primary.xlsx")
    assert read_table(path, "primary.xlsx", sheet="Lookup").columns == ["code", "label"]
    assert read_table(path, "primary.xlsx", sheet=0).columns == ["code", "label"]


def test_an_empty_visible_sheet_names_the_hidden_sheets_with_data(tmp_path: Path) -> None:
    path = _hidden_first(tmp_path / "primary.xlsx", visible_empty=True)
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.xlsx")
    assert raised.value.message.startswith(
        "primary.xlsx: the sheet 'Data' is empty; the hidden sheets with data are 'Lookup'"
    )
    assert raised.value.details["sheets_with_data"] == ["Lookup"]


def test_an_empty_visible_sheet_names_only_the_visible_sheets_with_data_when_there_are(tmp_path: Path) -> None:
    path = tmp_path / "primary.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Intro").write(0, 0, "Quarterly sales")
        secret = book.add_worksheet("Secret")
        secret.write_column(0, 0, ["x", 1])
        book.add_worksheet("Sales").write_column(0, 0, ["amount", 10])
        secret.hide()
    with pytest.raises(InvalidFileError) as raised:
        read_table(path, "primary.xlsx")
    assert raised.value.details["sheets_with_data"] == ["Sales"]
