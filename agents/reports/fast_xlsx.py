"""xlsxwriter's workbook and worksheet with faster paths for what the reports write most: rows of plain
cells and their shared strings.

A small report workbook holds thousands of cells, and xlsxwriter spends most of its time on each one:
``write_row`` dispatches every value through ``write()`` (type checks, the string-to-number/formula/URL
sniffing the reports turn off, a bounds and dimension check per cell), and ``_write_rows`` writes every
cell's XML through generic attribute lists that it escapes one by one. :class:`FastWorksheet` does the
same for text, finite numbers and booleans, in shared-string mode (the reports never use
``constant_memory``), with one dimension check per row and the cells' XML written straight from
per-sheet lookups; everything else (a row written with a format, a date, an out-of-bounds row, a string
longer than half Excel's limit, a row format, ``constant_memory``, the sniffing of text) goes to
xlsxwriter's own code.
:class:`FastWorkbook` writes the shared strings that need no escaping (nearly all) in one pass, through
the packager hook xlsxwriter provides (``Workbook._get_packager``), and zips the parts faster
(agents.reports.xlsx_zip: the same entries, deflated at a lower level). Its charts
(:class:`FastChart`) write their cached points straight, and they and the worksheets skip xlsxwriter's
escaping of numbers (:class:`NumberEscapes`). ``write_again`` gives a table's cell a format of its own
without a second trip through ``write()``; ``write_column`` stores a column as ``write_rows`` stores rows.

The XML parts and the cell table are byte for byte xlsxwriter's (tests/agents/test_report_fast_xlsx.py
writes the same cells through both and compares the parts; tests/agents/test_report_xlsx_zip.py the
zip). These overrides use xlsxwriter's internals as of 3.3 (``table``, the cell tuples, ``row_info``,
``col_info``, ``row_spans``, the packager's, the shared strings' and the charts' writers, the steps of
``Workbook._store_workbook``): the tests fail if a new version changes them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from math import isfinite
from typing import Any

from xlsxwriter.chart import Chart
from xlsxwriter.chart_bar import ChartBar
from xlsxwriter.chart_column import ChartColumn
from xlsxwriter.chart_line import ChartLine
from xlsxwriter.format import Format
from xlsxwriter.packager import Packager
from xlsxwriter.sharedstrings import SharedStrings
from xlsxwriter.utility import xl_col_to_name
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import CellBooleanTuple, CellNumberTuple, CellStringTuple, Worksheet, convert_cell_args
from xlsxwriter.xmlwriter import XMLwriter

from agents.reports.xlsx_zip import write_zip

# What makes xlsxwriter write a shared string other than as ``<si><t>text</t></si>``: XML's special
# characters, control characters and the _xHHHH_ escapes it escapes, leading or trailing whitespace
# (xml:space="preserve"), and Excel's non-characters.
NEEDS_ESCAPING = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9a-fA-F]{4}_|^\s|\s$")


class NumberEscapes(XMLwriter):
    """xlsxwriter's escaping of attributes and text, without its work on a number: it tries a regular
    expression on it and returns the number unchanged from the ``TypeError`` (a chart's points, row and
    column numbers, sizes, indices: most of what it escapes)."""

    def _escape_attributes(self, attribute: Any) -> Any:
        if isinstance(attribute, int | float):
            return attribute
        return super()._escape_attributes(attribute)

    def _escape_data(self, data: Any) -> Any:
        if isinstance(data, int | float):
            return data
        return super()._escape_data(data)

    @staticmethod
    def _escape_control_characters(data: Any) -> Any:
        if isinstance(data, int | float):
            return data
        return XMLwriter._escape_control_characters(data)


class FastChart(NumberEscapes, Chart):
    """A chart whose cached points are written straight (what ``_write_pt`` writes, without its generic
    tag writers)."""

    def _write_pt(self, idx: int, value: Any) -> None:
        if value is None:
            return
        value = self._escape_control_characters(self._escape_data(value))
        self.fh.write(f'<c:pt idx="{self._escape_attributes(idx)}"><c:v>{value}</c:v></c:pt>')


class FastChartBar(FastChart, ChartBar):
    pass


class FastChartColumn(FastChart, ChartColumn):
    pass


class FastChartLine(FastChart, ChartLine):
    pass


FAST_CHARTS: dict[str, type[Chart]] = {"bar": FastChartBar, "column": FastChartColumn, "line": FastChartLine}


class FastWorkbook(Workbook):
    """A workbook whose shared strings are written by :class:`FastSharedStrings` and whose parts are zipped
    by :func:`agents.reports.xlsx_zip.write_zip`."""

    def _get_packager(self) -> Packager:
        return _FastPackager()

    def add_chart(self, options: dict[str, Any]) -> Any:
        """As ``Workbook.add_chart``, with a :class:`FastChart` of the types the reports draw."""
        chart_class = FAST_CHARTS.get(str(options.get("type")))
        if chart_class is None:
            return super().add_chart(options)
        chart = chart_class(options)
        if "name" in options:
            chart.chart_name = options["name"]
        chart.embedded = True
        chart.date_1904 = self.date_1904
        chart.remove_timezone = self.remove_timezone
        self.charts.append(chart)
        return chart

    def _store_workbook(self) -> None:
        """As ``Workbook._store_workbook``, with the parts zipped by ``write_zip``: for an in-memory workbook
        written to a path without ZIP64 (the reports'); any other through xlsxwriter's own."""
        if not self.in_memory or self.allow_zip64 or not isinstance(self.filename, str | os.PathLike):
            super()._store_workbook()
            return
        packager = self._get_packager()
        if not self.worksheets():
            self.add_worksheet()
        if self.worksheet_meta.activesheet == 0:
            self.worksheets_objs[0].selected = 1
            self.worksheets_objs[0].hidden = 0
        for sheet in self.worksheets():
            if sheet.index == self.worksheet_meta.activesheet:
                sheet.active = 1
        if self.vba_project:
            for sheet in self.worksheets():
                if sheet.vba_codename is None:
                    sheet.set_vba_name()
        self._prepare_sst_string_data()
        self._prepare_vml()
        self._prepare_defined_names()
        self._prepare_drawings()
        self._add_chart_data()
        self._prepare_tables()
        self._prepare_metadata()
        packager._add_workbook(self)
        packager._set_tmpdir(self.tmpdir)
        packager._set_in_memory(self.in_memory)
        parts = packager._create_package()  # (in-memory file, name in the archive, whether binary)
        write_zip(
            self.filename,
            ((name, file.getvalue() if binary else file.getvalue().encode("utf-8")) for file, name, binary in parts),
        )


class _FastPackager(Packager):
    def _write_shared_strings_file(self) -> None:
        # as Packager._write_shared_strings_file, with FastSharedStrings
        if not self.workbook.str_table.count:
            return
        sst = FastSharedStrings()
        sst.string_table = self.workbook.str_table
        sst._set_xml_writer(self._filename("xl/sharedStrings.xml"))
        sst._assemble_xml_file()


class FastSharedStrings(SharedStrings):
    def _write_sst_strings(self) -> None:
        """Plain strings written as they are, the others by xlsxwriter's ``_write_si``."""
        write, needs_escaping, write_si = self.fh.write, NEEDS_ESCAPING.search, self._write_si
        for string in self.string_table.string_array:
            if needs_escaping(string):
                write_si(string)
            else:
                write(f"<si><t>{string}</t></si>")


class FastWorksheet(NumberEscapes, Worksheet):
    """A worksheet whose plain rows are stored and written without xlsxwriter's per-cell dispatch."""

    def __init__(self) -> None:
        super().__init__()
        # the stored cell of each unformatted text written here (a report repeats its agents, severities and
        # column names thousands of times): one immutable tuple each, shared by its cells
        self._string_cells: dict[str, Any] = {}

    @convert_cell_args  # "B2" as well as (row, col), as Worksheet.write_row takes them
    def write_row(  # type: ignore[override]
        self, row: int, col: int, data: Sequence[Any], cell_format: Format | None = None
    ) -> int:
        """As ``Worksheet.write_row``: text, numbers, booleans and None stored directly, other values (and
        any row xlsxwriter would treat differently) through ``write()``; stops at the first error as it does."""
        if cell_format is not None or data.__class__ is not list or not self._plain_block(row, col, len(data), 1):
            return int(super().write_row(row, col, data, cell_format))
        return self._store_row(row, col, data, {})

    def write_again(self, row: int, col: int, value: Any, cell_format: Format) -> None:
        """As ``write(row, col, value, cell_format)`` over the same text, number or boolean already stored there
        (a table's cell given a format of its own): the stored cell with the format, its shared string counted
        once more (xlsxwriter counts every write). Any other value, or cell, through ``write()``."""
        cells = None if self.constant_memory else self.table.get(row)
        cell: Any = cells.get(col) if cells else None
        kind, value_kind = cell.__class__, value.__class__
        if kind is CellStringTuple:
            same = value_kind is str and self.str_table.string_table.get(value) == cell.string
        elif kind is CellNumberTuple:
            same = (value_kind is int or value_kind is float) and cell.number.__class__ is value_kind
            same = same and cell.number == value
        else:
            same = kind is CellBooleanTuple and value_kind is bool and cell.boolean == (1 if value else 0)
        if not same or cells is None:
            self.write(row, col, value, cell_format)
            return
        if kind is CellStringTuple:
            self.str_table.count += 1
        cells[col] = tuple.__new__(kind, (cell[0], cell_format))

    def _plain_block(self, row: Any, col: Any, width: int, height: int) -> bool:
        """Whether ``height`` rows of ``width`` cells from (row, col) are within the sheet and stored as
        xlsxwriter would store them here (shared strings, no sniffing of text, no handler of its own)."""
        return not (
            self.constant_memory
            or self.write_handlers
            or self.strings_to_numbers
            or self.strings_to_formulas
            or self.strings_to_urls
            or row.__class__ is not int
            or col.__class__ is not int
            or row < 0
            or row + height > self.xls_rowmax
            or col < 0
            or col + width > self.xls_colmax
        )

    def _store_row(self, row: int, col: int, data: list[Any], number_formats: Mapping[int, Format]) -> int:
        cells: dict[int, Any] | None = None  # the row's entry, made when a first cell is stored (as xlsxwriter)
        new = tuple.__new__  # the cell tuples without their namedtuple constructor's Python frame
        str_table = self.str_table
        known = str_table.string_table  # text already shared: its index, counted here (one more use)
        shared_index = str_table._get_shared_string_index
        longest = self.xls_strmax // 2  # a longer string may need truncating: xlsxwriter decides
        first = last = -1
        uses = error = 0
        string_cells = self._string_cells
        for column, value in enumerate(data, start=col):
            kind = value.__class__
            if kind is str and 0 < len(value) <= longest:
                cell: Any = string_cells.get(value)
                if cell is not None:
                    uses += 1
                else:
                    index = known.get(value)
                    if index is None:
                        index = shared_index(value)
                    else:
                        uses += 1
                    cell = string_cells[value] = new(CellStringTuple, (index, None))
            elif (kind is int or kind is float) and isfinite(value):
                cell = new(CellNumberTuple, (value, number_formats.get(column)))
            elif kind is bool:
                cell = new(CellBooleanTuple, (1 if value else 0, None))
            elif value is None or kind is str and not value:
                continue  # a blank cell without a format: xlsxwriter stores nothing
            else:
                fmt = number_formats.get(column)
                if fmt is not None and _is_number(value):  # a subclass of int or float: as write_number
                    error = self._write_number(row, column, value, fmt)
                else:
                    error = self._write(row, column, value, None)
                if error:  # write_row stops here; write_rows' formatted numbers after it are written all the same
                    self._write_numbers_after(row, column, col, data, number_formats)
                    break
                continue
            if cells is None:
                cells = self.table[row]
            cells[column] = cell
            if first < 0:
                first = column
            last = column
        str_table.count += uses
        if first >= 0:
            self._check_dimensions(row, first)
            self._check_dimensions(row, last)
        return int(error)

    def _write_numbers_after(
        self, row: int, stopped: int, col: int, data: list[Any], number_formats: Mapping[int, Format]
    ) -> None:
        """The numbers of ``number_formats``' columns after column ``stopped``, with their formats, as
        ``_write_row_then_numbers`` writes them after a ``write_row`` that stopped (a string xlsxwriter
        truncated)."""
        for column, fmt in number_formats.items():
            index = column - col
            if column > stopped and index < len(data) and _is_number(data[index]):
                self._write_number(row, column, data[index], fmt)

    def _calculate_spans(self) -> None:
        """The ``spans`` of each block of 16 rows, as xlsxwriter computes them, from each row's own columns
        rather than a scan of the sheet's whole width."""
        if self.dim_rowmin is None or self.dim_colmin is None:
            super()._calculate_spans()
            return
        spans: dict[int, str] = {}
        low, high = self.dim_colmin, self.dim_colmax
        span_min: int | None = None
        span_max = -1
        table, comments = self.table, self.comments
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            for source in (table, comments):
                columns = source[row_num] if row_num in source else None
                if columns:
                    least, most = min(columns), max(columns)
                    if least < low or most > high:  # never for cells written through the worksheet
                        inside = [column for column in columns if low <= column <= high]
                        if not inside:
                            continue
                        least, most = min(inside), max(inside)
                    span_min = least if span_min is None else min(span_min, least)
                    span_max = max(span_max, most)
            if (row_num + 1) % 16 == 0 or row_num == self.dim_rowmax:
                if span_min is not None:
                    spans[row_num // 16] = f"{span_min + 1}:{span_max + 1}"
                    span_min, span_max = None, -1
        self.row_spans = spans

    def _write_rows(self) -> None:
        """The ``<row>`` and ``<c>`` elements as xlsxwriter writes them; a row with a row format, and every
        cell but text, numbers and booleans, through xlsxwriter's own methods."""
        if self.constant_memory or self.dim_rowmin is None:
            super()._write_rows()
            return
        self._calculate_spans()
        write = self.fh.write
        table, row_info, comments, spans = self.table, self.row_info, self.comments, self.row_spans
        low, high = self.dim_colmin, self.dim_colmax
        names = {column: xl_col_to_name(column) for column in range(low, high + 1)} if low is not None else {}
        formatted = {column: info.column_format for column, info in self.col_info.items() if info.column_format}
        styles = _Styles()  # each format's s attribute
        column_styles = {column: styles[formatted[column]] if column in formatted else "" for column in names}
        # a row without its own settings: xlsxwriter writes only its number and spans unless the sheet's
        # default height was changed or the file targets Excel 2010
        plain_rows = self.default_row_height == self.original_row_height and self.excel_version != 2010
        for row_num in range(self.dim_rowmin, self.dim_rowmax + 1):
            info = row_info.get(row_num)
            cells = table[row_num]  # xlsxwriter indexes its defaultdict here too
            if not (info is not None or row_num in comments or cells):
                continue
            span = spans.get(row_num // 16)
            if not cells:
                self._write_empty_row(row_num, span, info)
                continue
            number = str(row_num + 1)
            if info is None and plain_rows:
                write(f'<row r="{number}" spans="{span}">' if span else f'<row r="{number}">')
            elif plain_rows and not (info.row_format or info.hidden or info.level or info.collapsed):
                # a row with a height only (wrapped text): the attributes _write_row writes for it
                span_attribute = f' spans="{span}"' if span else ""
                height = self.default_row_height if info.height is None else info.height
                custom = "" if height == self.original_row_height else f' ht="{height * 0.75:.16g}" customHeight="1"'
                write(f'<row r="{number}"{span_attribute}{custom}>')
            else:
                self._write_row(row_num, span, info)
            if info is not None and info.row_format:
                for column in range(low, high + 1):
                    if column in cells:
                        self._write_cell(row_num, column, cells[column])
                self._xml_end_tag("row")
                continue
            columns = sorted(cells)
            if columns[0] < low or columns[-1] > high:  # never for cells written through the worksheet
                columns = [column for column in columns if low <= column <= high]
            for column in columns:
                cell = cells[column]
                kind = cell.__class__
                if kind is CellStringTuple:
                    value, fmt = cell
                    style = styles[fmt] if fmt else column_styles[column]
                    write(f'<c r="{names[column]}{number}"{style} t="s"><v>{value}</v></c>')
                elif kind is CellNumberTuple:
                    value, fmt = cell
                    style = styles[fmt] if fmt else column_styles[column]
                    write(f'<c r="{names[column]}{number}"{style}><v>{value:.16G}</v></c>')
                elif kind is CellBooleanTuple:
                    value, fmt = cell
                    style = styles[fmt] if fmt else column_styles[column]
                    write(f'<c r="{names[column]}{number}"{style} t="b"><v>{value}</v></c>')
                else:
                    self._write_cell(row_num, column, cell)
            write("</row>")

    def _prepare_formula(self, formula: str, expand_future_functions: bool = False) -> str:
        """A formula without a function call (a conditional format's ``"high"`` or ``TRUE``) has nothing to
        expand: xlsxwriter's hundred regular expressions each look for a name followed by ``(``."""
        if "(" in formula:
            return str(super()._prepare_formula(formula, expand_future_functions))
        if formula.startswith("{"):
            formula = formula[1:]
        if formula.startswith("="):
            formula = formula[1:]
        if formula.endswith("}"):
            formula = formula[:-1]
        return formula


class _Styles(dict[Format, str]):
    """The ``s`` attribute of each format's cells, made when first asked for."""

    def __missing__(self, fmt: Format) -> str:
        style = self[fmt] = f' s="{fmt._get_xf_index()}"'
        return style


def write_rows(sheet: Worksheet, first_row: int, rows: list[list[Any]], number_formats: Mapping[int, Format]) -> None:
    """Each of ``rows`` from column A down from ``first_row`` with ``write_row``, then each number in a
    column of ``number_formats`` again with ``write_number`` and that format (write_row leaves those
    cells blank). On a :class:`FastWorksheet`, the same cells stored in one pass."""
    width = max(map(len, rows), default=0)
    if isinstance(sheet, FastWorksheet) and sheet._plain_block(first_row, 0, width, len(rows)):
        for index, row in enumerate(rows, start=first_row):
            if row.__class__ is list:
                sheet._store_row(index, 0, row, number_formats)
            else:
                _write_row_then_numbers(sheet, index, row, number_formats)
        return
    for index, row in enumerate(rows, start=first_row):
        _write_row_then_numbers(sheet, index, row, number_formats)


def write_column(sheet: Worksheet, first_row: int, col: int, values: list[Any]) -> None:
    """As ``sheet.write_column(first_row, col, values)`` (which stops at the first cell it cannot write
    whole); on a :class:`FastWorksheet`, each cell stored directly."""
    if not (isinstance(sheet, FastWorksheet) and sheet._plain_block(first_row, col, 1, len(values))):
        sheet.write_column(first_row, col, values)
        return
    for row, value in enumerate(values, start=first_row):
        if sheet._store_row(row, col, [value], {}):
            return


def _write_row_then_numbers(
    sheet: Worksheet, index: int, row: Sequence[Any], number_formats: Mapping[int, Format]
) -> None:
    numbered = [
        (column, row[column], fmt)
        for column, fmt in number_formats.items()
        if column < len(row) and _is_number(row[column])
    ]
    plain = list(row)
    for column, _, _ in numbered:
        plain[column] = None
    sheet.write_row(index, 0, plain)
    for column, value, fmt in numbered:
        sheet.write_number(index, column, value, fmt)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
