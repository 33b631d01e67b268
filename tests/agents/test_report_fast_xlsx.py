"""The report writer's faster paths (agents.reports.fast_xlsx and the cell helpers of agents.reports.sheets)
write the same workbook as xlsxwriter's own code: every part of the file byte for byte, for odd cells
written directly and for whole reports (made-up envelopes and the envelopes of real chains)."""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet
from xlsxwriter.xmlwriter import XMLwriter

import agents.chain
from agents.chain import run_tool
from agents.reports import fast_xlsx, sheets
from agents.reports.excel import write_excel_report
from agents.reports.fast_xlsx import FastWorkbook, FastWorksheet, write_rows
from agents.reports.sheets import cell_row, cell_value
from tests.agents.test_reports import CLEAN_STEPS, CLEAN_SUMMARY, clean_envelopes, profile_run, unknown_envelope

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TIMESTAMPS = re.compile(rb"<dcterms:(created|modified)[^<]*<|generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")
TEXTS = [
    "plain",
    "",
    " leading space",
    "trailing space ",
    "tab\tinside",
    "line\nbreak",
    "ends with a newline\n",
    "a & b < c > d \" e ' f",
    "control \x01\x02\x1f characters",
    "_x0041_ looks like an escape",
    "_X00ff_ in capitals",
    "non-characters \ufffe \uffff",
    "<r>not rich text</r>",
    '=HYPERLINK("http://example.com")',
    "http://example.com",
    "123",
    "1e5",
    "émoji 🎉 and ünïcode",
    "x" * 20_000,  # longer than half Excel's limit: xlsxwriter's own path
    "🎉" * 17_000,  # over 32,767 UTF-16 units: truncated by xlsxwriter, the row stops there
]
NUMBERS = [0, 1, -7, 2**53, 10**20, 0.1, -1.5e-12, 1e300, 3.141592653589793]
# the report's options (agents.reports.sheets.ReportBook): without them the fast paths hand over to xlsxwriter
REPORT_OPTIONS = {
    "strings_to_numbers": False,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "in_memory": True,
}


def parts(path: Path) -> dict[str, bytes]:
    """Every part of the file, with its creation time and the Summary's generation minute masked."""
    with zipfile.ZipFile(path) as archive:
        return {name: TIMESTAMPS.sub(b"<masked>", archive.read(name)) for name in archive.namelist()}


@pytest.fixture
def stock(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make the fast workbook and worksheet behave as xlsxwriter's own (their overrides
    removed, every block of rows written through ``write_row``)."""

    def use_stock() -> None:
        for name in ("write_row", "_write_rows", "_calculate_spans", "_prepare_formula"):
            monkeypatch.setattr(FastWorksheet, name, getattr(Worksheet, name))
        monkeypatch.setattr(FastWorksheet, "_plain_block", lambda *_: False)
        monkeypatch.setattr(FastWorkbook, "_get_packager", Workbook._get_packager)
        monkeypatch.setattr(FastWorkbook, "_store_workbook", Workbook._store_workbook)
        monkeypatch.setattr(FastWorksheet, "write_again", Worksheet.write)
        monkeypatch.setattr(FastWorkbook, "add_chart", Workbook.add_chart)
        for name in ("_escape_attributes", "_escape_data"):
            monkeypatch.setattr(fast_xlsx.NumberEscapes, name, getattr(XMLwriter, name))
        escape_control = staticmethod(XMLwriter._escape_control_characters)
        monkeypatch.setattr(fast_xlsx.NumberEscapes, "_escape_control_characters", escape_control)

    return use_stock


# ---------------------------------------------------------------- odd cells, one sheet


def fill(book: Workbook, worksheet_class: type[Worksheet] | None) -> None:
    """The same calls on a sheet of either class: rows of odd values, formats, heights, merges, comments."""
    book.set_properties({"created": CREATED})
    sheet = book.add_worksheet("Odd", worksheet_class=worksheet_class)
    bold = book.add_format({"bold": True})
    number = book.add_format({"num_format": "#,##0"})
    sheet.set_column(0, 2, 20, bold)
    sheet.set_column(5, 5, 12)
    sheet.set_row(3, 40)
    sheet.set_row(4, None, number)  # a row format: its unformatted cells take it
    sheet.set_row(60, 30)  # a row with a height only, no cells
    sheet.set_row(5, 15)  # the default height set explicitly
    sheet.set_row(6, 20, None, {"hidden": True})
    sheet.set_row(7, 20, None, {"level": 1, "collapsed": True})
    for index, text in enumerate(TEXTS):
        sheet.write_row(index, 0, [text, index, None, text.upper(), True, False])
    sheet.write_row(30, 2, NUMBERS)
    sheet.write_row(
        31, 0, [np.int64(5), np.float64(2.5), Decimal("1.25"), date(2026, 1, 2), datetime(2026, 1, 2, 3, 4)]
    )
    sheet.write_row(32, 0, ("a tuple", 1))
    sheet.write_row(33, 1, ["with a format", 2], number)
    sheet.write_row(34, 16_382, ["last columns", "past the last column", "not written"])
    sheet.write_row(1_048_575, 0, ["the last row"])
    sheet.write_row(1_048_576, 0, ["past the last row"])
    sheet.write_row(-1, 0, ["before the first row"])
    sheet.write_row(35, 0, [])
    sheet.write_row(36, 0, [None, "", None])  # nothing stored
    sheet.write_row(37, 40, ["far right", 1.5])
    sheet.write_number(38, 3, 42, number)
    sheet.write_string(39, 1, "", bold)
    sheet.write_blank(40, 2, None, bold)
    sheet.merge_range(41, 0, 42, 3, "merged", bold)
    sheet.write_comment(50, 1, "a comment on an empty row")
    sheet.write_comment(0, 1, "a comment on a written row")
    sheet.conditional_format(0, 0, 20, 0, {"type": "cell", "criteria": "equal to", "value": '"plain"', "format": bold})
    sheet.conditional_format(0, 4, 20, 4, {"type": "cell", "criteria": "equal to", "value": "TRUE", "format": bold})
    sheet.conditional_format(0, 1, 20, 1, {"type": "formula", "criteria": "=ISNUMBER(B1)", "format": bold})
    sheet.conditional_format(0, 1, 20, 1, {"type": "formula", "criteria": "=XLOOKUP(1,B1:B2,B1:B2)", "format": bold})
    with pytest.raises(TypeError):
        sheet.write_row(45, 0, ["before", math.nan, "after"])
    book.close()


@pytest.mark.parametrize("options", [REPORT_OPTIONS, {}], ids=["report options", "xlsxwriter defaults"])
def test_odd_cells_written_as_xlsxwriter_writes_them(tmp_path: Path, options: dict[str, Any]) -> None:
    fill(FastWorkbook(str(tmp_path / "fast.xlsx"), options), FastWorksheet)
    fill(Workbook(str(tmp_path / "stock.xlsx"), options), None)
    ours, theirs = parts(tmp_path / "fast.xlsx"), parts(tmp_path / "stock.xlsx")
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert ours[name] == theirs[name], name


def test_a_row_stopped_by_a_truncated_string_keeps_its_formatted_numbers_after_it(tmp_path: Path) -> None:
    """A string over Excel's limit (xlsxwriter truncates it and write_row stops there): the formatted numbers after
    it are still written, as write_row then write_number wrote them."""
    row = ["🎉" * 16_500, 5, "after", 2.5]  # over 32,767 UTF-16 units
    book = FastWorkbook(str(tmp_path / "long.xlsx"), REPORT_OPTIONS)
    decimal = book.add_format({"num_format": "0.00"})
    fast, reference = book.add_worksheet("fast", FastWorksheet), book.add_worksheet("reference", Worksheet)
    write_rows(fast, 0, [row], {1: decimal, 3: decimal})
    reference.write_row(0, 0, [row[0], None, row[2], None])
    reference.write_number(0, 1, row[1], decimal)
    reference.write_number(0, 3, row[3], decimal)
    assert dict(fast.table[0]) == dict(reference.table[0])
    assert set(fast.table[0]) == {0, 1, 3}  # "after" is not written: write_row stopped before it
    book.close()


@pytest.mark.parametrize("worksheet_class", [FastWorksheet, Worksheet])
def test_write_rows_as_write_row_then_write_number(tmp_path: Path, worksheet_class: type[Worksheet]) -> None:
    """``write_rows`` with number formats: the cells write_row and write_number store, on either sheet."""
    rows: list[list[Any]] = [
        [f"agent{index % 3}", index, index * 0.5, "high" if index % 2 else None, index % 3 == 0, TEXTS[index % 12]]
        for index in range(40)
    ] + [["short row"], [], [None, "text in a number column", True, 1.5], ["odd numbers", np.float64(2.5), Level.HIGH]]
    book = FastWorkbook(str(tmp_path / "rows.xlsx"), REPORT_OPTIONS)
    number, decimal = book.add_format({"num_format": "#,##0"}), book.add_format({"num_format": "0.00"})
    formats = {1: number, 2: decimal}
    fast, reference = book.add_worksheet("fast", worksheet_class), book.add_worksheet("reference", Worksheet)
    write_rows(fast, 3, rows, formats)
    for index, row in enumerate(rows, start=3):
        reference.write_row(
            index, 0, [None if c in formats and fast_xlsx._is_number(v) else v for c, v in enumerate(row)]
        )
        for column, fmt in formats.items():
            if column < len(row) and fast_xlsx._is_number(row[column]):
                reference.write_number(index, column, row[column], fmt)
    assert {row: dict(cells) for row, cells in fast.table.items() if cells} == {
        row: dict(cells) for row, cells in reference.table.items() if cells
    }
    assert (fast.dim_rowmin, fast.dim_rowmax, fast.dim_colmin, fast.dim_colmax) == (
        reference.dim_rowmin,
        reference.dim_rowmax,
        reference.dim_colmin,
        reference.dim_colmax,
    )
    assert book.str_table.count == 2 * sum(isinstance(v, str) and v != "" for row in rows for v in row)
    book.close()


@pytest.mark.parametrize("first_row", [0, 5, 1_048_570, -1])
def test_write_column_as_xlsxwriter_writes_it(tmp_path: Path, first_row: int) -> None:
    """Text, numbers, booleans, blanks, a string xlsxwriter truncates (the column stops there, as
    ``write_column`` stops), rows past the last: the same cells and shared string counts."""
    values = ["label", 3, 2.5, None, True, "", "label", "🎉" * 17_000, "after"] + [f"tail {i}" for i in range(8)]
    book = FastWorkbook(str(tmp_path / "column.xlsx"), REPORT_OPTIONS)
    fast, reference = book.add_worksheet("fast", FastWorksheet), book.add_worksheet("reference", Worksheet)
    counts = []
    for sheet in (fast, reference):
        before = book.str_table.count
        if sheet is fast:
            fast_xlsx.write_column(fast, first_row, 2, values)
        else:
            reference.write_column(first_row, 2, values)
        counts.append(book.str_table.count - before)
    assert {row: dict(cells) for row, cells in fast.table.items() if cells} == {
        row: dict(cells) for row, cells in reference.table.items() if cells
    }
    assert (fast.dim_rowmin, fast.dim_rowmax, fast.dim_colmin, fast.dim_colmax) == (
        reference.dim_rowmin,
        reference.dim_rowmax,
        reference.dim_colmin,
        reference.dim_colmax,
    )
    assert counts[0] == counts[1]
    book.close()


AGAIN = [
    ("text", "text"),
    ("text", "other text"),
    ("x" * 20_000, "x" * 20_000),  # stored through xlsxwriter's own path
    ("🎉" * 17_000, "🎉" * 17_000),  # truncated when stored: not the same text
    (5, 5),
    (5, 5.0),  # equal, but a float: written as write() writes it
    (5, 6),
    (2.5, 2.5),
    (True, True),
    (True, False),
    (1, True),
    (None, "text"),  # nothing stored there
    ("", 3),
    ("text", None),
    ("text", date(2026, 1, 2)),
]


@pytest.mark.parametrize(("stored", "again"), AGAIN, ids=range(len(AGAIN)))
@pytest.mark.parametrize("options", [REPORT_OPTIONS, {**REPORT_OPTIONS, "constant_memory": True}], ids=["", "cm"])
def test_write_again_as_write(tmp_path: Path, stored: Any, again: Any, options: dict[str, Any]) -> None:
    """``write_again`` over a stored cell: the cells and shared string counts that ``write`` leaves."""
    book = FastWorkbook(str(tmp_path / "again.xlsx"), options)
    fmt = book.add_format({"bold": True})
    fast, reference = book.add_worksheet("fast", FastWorksheet), book.add_worksheet("reference", Worksheet)
    counts = []
    for sheet in (fast, reference):
        before = book.str_table.count
        sheet.write_row(2, 0, ["left", stored, "right"])
        if sheet is fast:
            fast.write_again(2, 1, again, fmt)
        else:
            reference.write(2, 1, again, fmt)
        counts.append(book.str_table.count - before)
    assert dict(fast.table[2]) == dict(reference.table[2])
    assert counts[0] == counts[1]
    book.close()


@pytest.mark.parametrize(
    "formula",
    [
        '"high"',
        "TRUE",
        "=FALSE",
        "{=1}",
        "0",
        "_xlfn.X",
        "=SUM(A1:A2)",
        "=XLOOKUP(1,A:A,B:B)",
        "=ACOT(1)",
        "{=SORT(A1:A3)}",
    ],
)
@pytest.mark.parametrize("expand", [True, False])
def test_prepare_formula(formula: str, expand: bool) -> None:
    assert FastWorksheet()._prepare_formula(formula, expand) == Worksheet()._prepare_formula(formula, expand)


# ---------------------------------------------------------------- the cell helpers


class Level(IntEnum):
    """A subclass of int: written through xlsxwriter's own code, with its column's number format."""

    HIGH = 3


class Text(str):
    """A subclass of str: handled by cell_value, not by cell_row's fast cases."""


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        ["x" * 32_001, Text("sub"), np.int32(3), np.float64(math.inf), date(2026, 1, 2), [1, "a"], {"k": 1}]
    ),
)


@given(st.lists(VALUES, max_size=12), st.integers(min_value=0, max_value=14))
@settings(max_examples=300, deadline=None)
def test_cell_row_is_cell_value_per_cell(values: list[Any], width: int) -> None:
    expected = [cell_value(value) for value in values[:width]] + [None] * (width - len(values[:width]))
    got = cell_row(values, width)
    assert len(got) == width
    for left, right in zip(got, expected, strict=True):
        assert type(left) is type(right) and left == right


@given(st.lists(VALUES, max_size=12))
@settings(max_examples=300, deadline=None)
def test_longest_is_the_largest_display_length(values: list[Any]) -> None:
    cells = [cell_value(value) for value in values]
    assert sheets._longest(cells) == max((sheets._display_length(value) for value in cells), default=0)


# ---------------------------------------------------------------- whole reports


def report_cases() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    envelopes, _, counts = profile_run()
    yield "profile-my-data", envelopes, {"row_issue_counts": counts}
    yield "clean-my-data", clean_envelopes(), {"steps": CLEAN_STEPS, "summary": CLEAN_SUMMARY}
    yield "unknown-tool", [unknown_envelope(), {"agent_id": "broken", "data": {"fields": [{"x": math.nan}]}}], {}


@pytest.mark.parametrize("case", list(report_cases()), ids=lambda case: case[0])
def test_reports_as_xlsxwriter_writes_them(
    tmp_path: Path, stock: Callable[[], None], case: tuple[str, list[dict[str, Any]], dict[str, Any]]
) -> None:
    tool_id, envelopes, options = case
    write_excel_report(tmp_path / "fast.xlsx", tool_id, envelopes, **options)
    stock()
    write_excel_report(tmp_path / "stock.xlsx", tool_id, envelopes, **options)
    assert parts(tmp_path / "fast.xlsx") == parts(tmp_path / "stock.xlsx")


def chain_csv(path: Path) -> Path:
    """A small file of mixed columns whose values need XML escaping, with nulls, repeats and outliers."""
    lines = ["id,name,city,amount,joined,flag,note"]
    for index in range(300):
        name = ["Ann & Bob", " Carl", "Dee <x>", "_x0041_", "Émile", ""][index % 6]
        amount = "" if index % 17 == 0 else str(index * 1.5 if index % 50 else 1e6)
        note = '"said ""hi"", left"' if index % 9 == 0 else f"note {index % 4}"
        lines.append(
            f"{index % 280},{name},City {index % 7},{amount},2026-01-{index % 28 + 1:02d},{index % 2 == 0},{note}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("tool_id", ["profile-my-data", "clean-my-data", "master-my-data"])
def test_chain_reports_as_xlsxwriter_writes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stock: Callable[[], None], tool_id: str
) -> None:
    """The envelopes of a real chain, written again through xlsxwriter's own code: the same file."""
    calls: list[tuple[Any, ...]] = []

    def keep(path: Path, *args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))
        write_excel_report(path, *args, **kwargs)

    monkeypatch.setattr(agents.chain, "write_excel_report", keep)
    primary = chain_csv(tmp_path / "primary.csv")
    inputs = (
        {"primary.csv": primary, "baseline.csv": primary} if tool_id == "profile-my-data" else {"primary.csv": primary}
    )
    run_tool(tool_id, [], inputs, {}, tmp_path / "out", lambda *_: None)
    [(args, kwargs)] = calls
    written = next((tmp_path / "out").glob("*.xlsx"))
    stock()
    write_excel_report(tmp_path / "stock.xlsx", *args, **kwargs)
    assert parts(written) == parts(tmp_path / "stock.xlsx")


def test_fast_module_is_used(tmp_path: Path) -> None:
    """The report's sheets are fast worksheets and its charts fast charts (else the tests above compare
    xlsxwriter with itself)."""
    assert issubclass(sheets._ReportSheet, FastWorksheet)
    assert sheets.write_rows is fast_xlsx.write_rows
    book = sheets.ReportBook.create(tmp_path / "book.xlsx", ())
    for kind in ("bar", "column", "line"):
        assert isinstance(book.workbook.add_chart({"type": kind}), fast_xlsx.FastChart)


ESCAPED = [
    0,
    7,
    -1,
    2.5,
    math.nan,
    True,
    np.float64(1.5),
    np.int64(3),
    None,
    "",
    "plain",
    'a & "b" <c>\n',
    "x\x01_x0041_\ufffe",
]


@pytest.mark.parametrize("value", ESCAPED, ids=range(len(ESCAPED)))
def test_number_escapes_as_xlsxwriter_escapes(value: Any) -> None:
    fast = FastWorksheet()
    for name in ("_escape_attributes", "_escape_data", "_escape_control_characters"):
        ours, theirs = getattr(fast, name)(value), getattr(Worksheet(), name)(value)
        assert type(ours) is type(theirs) and (ours == theirs or ours is theirs), name
