"""The report worksheet's shortened table bookkeeping still refuses overlapping merges and tables, like
xlsxwriter's own worksheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xlsxwriter.exceptions import OverlappingRange
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from agents.reports.sheets import _ReportSheet

OPTIONS = {"columns": [{"header": f"h{index}"} for index in range(4)], "style": "Table Style Light 9"}
"""A table of four columns A:D as the reports declare them (header row, no data, no total row)."""


def _sheet(tmp_path: Path, worksheet_class: type[Worksheet]) -> tuple[Workbook, Any]:
    book = Workbook(str(tmp_path / "book.xlsx"))
    sheet = book.add_worksheet("Sheet", worksheet_class=worksheet_class)
    # rows 0-49, columns A:D: a table whose cells below its first data row are not registered one by one
    assert sheet.add_table(0, 0, 49, 3, dict(OPTIONS)) == 0
    return book, sheet


@pytest.mark.parametrize("worksheet_class", [_ReportSheet, Worksheet])
@pytest.mark.parametrize(
    "merge",
    [
        (30, 1, 31, 2),  # inside the table, below its first data row
        (49, 3, 50, 4),  # the table's last cell
        (48, 4, 60, 0),  # corners given the other way round
        (0, 0, 0, 1),  # the header
        "B20:C21",  # A1 notation
    ],
)
def test_overlapping_merge_refused(tmp_path: Path, worksheet_class: type[Worksheet], merge: Any) -> None:
    book, sheet = _sheet(tmp_path, worksheet_class)
    arguments = (merge, "text") if isinstance(merge, str) else (*merge, "text")
    with pytest.raises(OverlappingRange, match="^Merge range .* overlaps previous table range"):
        sheet.merge_range(*arguments)
    book.close()


@pytest.mark.parametrize("worksheet_class", [_ReportSheet, Worksheet])
@pytest.mark.parametrize(
    "table",
    [
        (40, 2, 60, 5),  # across the table's lower right part
        (10, 0, 12, 3),  # inside: a table too short to be shortened itself
        (49, 3, 49, 3),  # one cell: the table's last
        (60, 3, 20, 1),  # corners given the other way round
        "A45:D70",  # A1 notation
    ],
)
def test_overlapping_table_refused(tmp_path: Path, worksheet_class: type[Worksheet], table: Any) -> None:
    book, sheet = _sheet(tmp_path, worksheet_class)
    arguments = (table, dict(OPTIONS)) if isinstance(table, str) else (*table, dict(OPTIONS))
    with pytest.raises(OverlappingRange, match="^Table range .* overlaps previous table range"):
        sheet.add_table(*arguments)
    book.close()


def test_whole_table_range_in_the_message(tmp_path: Path) -> None:
    book, sheet = _sheet(tmp_path, _ReportSheet)
    with pytest.raises(OverlappingRange, match=r"^Merge range 'B31:C32' overlaps previous table range 'A1:D50'\.$"):
        sheet.merge_range(30, 1, 31, 2, "text")
    book.close()


@pytest.mark.parametrize("worksheet_class", [_ReportSheet, Worksheet])
def test_neighbouring_merges_and_tables_accepted(tmp_path: Path, worksheet_class: type[Worksheet]) -> None:
    book, sheet = _sheet(tmp_path, worksheet_class)
    assert sheet.merge_range(50, 0, 51, 3, "below") == 0
    assert sheet.merge_range(10, 4, 30, 5, "beside") == 0
    assert sheet.merge_range("P1:Q2", "A1 notation") == 0
    assert sheet.add_table(52, 0, 99, 3, dict(OPTIONS)) == 0  # right below: shortened in its turn
    assert sheet.add_table(0, 6, 40, 9, dict(OPTIONS)) == 0
    assert sheet.add_table("K1:N60", dict(OPTIONS)) == 0
    # the later tables are guarded too
    with pytest.raises(OverlappingRange):
        sheet.merge_range(80, 2, 81, 2, "inside the second table")
    with pytest.raises(OverlappingRange):
        sheet.add_table(35, 9, 45, 10, dict(OPTIONS))
    book.close()
    assert [table["range"] for table in sheet.tables] == ["A1:D50", "A53:D100", "G1:J41", "K1:N60"]


def test_out_of_bounds_ranges_left_to_xlsxwriter(tmp_path: Path) -> None:
    book, sheet = _sheet(tmp_path, _ReportSheet)
    with pytest.warns(UserWarning):
        assert sheet.merge_range(3, 1, 3, 1, "one cell") == -1  # xlsxwriter's own refusal: no merge of one cell
    assert sheet.merge_range(40, 0, 1_048_576, 0, "past the last row") == -1
    assert sheet.add_table(40, 0, 1_048_576, 3, dict(OPTIONS)) == -1
    book.close()
