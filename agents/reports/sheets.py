"""The workbook's building blocks: formats, unique sheet names, Excel tables with severity colouring,
key/value blocks, flattening of nested records, and the hidden sheet that holds the charts' data.

Every table is a native Excel table (filter buttons on its header, banded rows); a severity-like column
(severity, priority, status, risk level, ...) gets conditional formats, one ``cell == value`` rule per
value it holds, so colours follow the data when someone sorts, filters or edits the sheet. Cells are
written as ``write_row`` writes them: the workbook options turn off xlsxwriter's number/formula/URL
sniffing, so user text is always stored as text (no formula injection from a CSV value such as
``=HYPERLINK(...)``). The workbook and its sheets are agents.reports.fast_xlsx's: xlsxwriter's, with
faster paths for plain rows that write the same file.

Layout rules (checked by rendering the reports with LibreOffice): headers carry their own format (not
every application draws table styles); a long-text column is capped at ``WRAP_WIDTH`` and wraps, with
explicit row heights; a key/value block's value column stays narrow (it shares column B with the sheet's
wide tables); lists and flat mappings in a cell read as ``a, b`` and ``key: value``, not JSON; booleans
keep a TRUE/FALSE display format; every sheet prints landscape (narrow ones one page across).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from xlsxwriter.exceptions import OverlappingRange
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_range
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet, convert_range_args

from agents.reports.fast_xlsx import FastWorkbook, FastWorksheet, write_column, write_rows
from agents.reports.labels import label

WRAP_WIDTH = 50  # a text column wider than this is capped here and its text wraps
KEY_VALUE_WIDTH = 32  # the value column of a key/value block (it shares its column with wide tables)
NUMBER_WIDTH = 12  # Excel's General format shows fewer decimals rather than overflow a narrow column
LINE_HEIGHT = 15  # points per line of 11-point text
MAX_WRAP_LINES = 8
TEXT_CHARS_PER_WIDTH = 1.1  # a width unit is one digit; text averages narrower characters
MIN_COLUMN_WIDTH = 6
WIDTH_SAMPLE_ROWS = 500
MAX_CELL_CHARS = 32_000
MAX_HEADER_CHARS = 255
MAX_SPARSE_KEYS = 4
MAX_LIST_ITEMS = 20  # a list in one cell: its first items (the JSON report has them all)
EXACT_INTEGER = 2**53
TABLE_STYLE = "Table Style Medium 2"
FIT_WIDTH_CHARS = 260  # printing: a sheet up to this wide is scaled to one page across
CHART_DATA_SHEET = "Chart Data"
SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")

TONE_COLOURS = {  # (fill, font): Excel's own "light red fill with dark red text" family
    "bad": ("#FFC7CE", "#9C0006"),
    "warn": ("#FFEB9C", "#9C5700"),
    "good": ("#C6EFCE", "#006100"),
    "neutral": ("#EDEDED", "#404040"),
}
VALUE_TONES = {
    "critical": "bad",
    "high": "bad",
    "error": "bad",
    "failed": "bad",
    "fail": "bad",
    "not_ready": "bad",
    "drifted": "bad",
    "medium": "warn",
    "warning": "warn",
    "needs_review": "warn",
    "needs_improvement": "warn",
    "partial": "warn",
    "moderate": "warn",
    "low": "good",
    "excellent": "good",
    "good": "good",
    "success": "good",
    "ready": "good",
    "stable": "good",
    "passed": "good",
    "pass": "good",
    "compliant": "good",
    "info": "neutral",
    "none": "neutral",
}
# A low severity or priority is still a finding (grey), where a low risk level is good news (green).
SEVERITY_HEADERS = {"severity", "priority", "impact", "impact_level"}
SEVERITY_TONES = {"low": "neutral"}
TONED_HEADERS = {
    "severity",
    "priority",
    "status",
    "risk_level",
    "level",
    "impact",
    "impact_level",
    "sensitivity",
    "compliance_status",
    "readiness_status",
    "dataset_stability",
    "effectiveness_status",
}
GOOD_WHEN_TRUE = {"passed", "safe_to_execute", "data_ready_for_pipeline", "is_valid", "valid", "ready"}
BAD_WHEN_TRUE = {"drift_detected", "drifted", "dataset_drift", "failed", "quarantined", "is_pii", "pii"}


def header_key(header: str) -> str:
    """The last dotted part of a header, lower-case with underscores: ``drift_analysis.severity`` and
    ``Severity`` both give ``severity``."""
    return header.rsplit(".", 1)[-1].strip().lower().replace(" ", "_").replace("-", "_")


def cell_value(value: Any) -> Any:
    """A value xlsxwriter writes as-is: finite numbers, booleans and text; nested values as JSON text."""
    if value is None or isinstance(value, bool | str):
        return value[:MAX_CELL_CHARS] if isinstance(value, str) else value
    if isinstance(value, numbers.Integral):
        return int(value) if abs(int(value)) <= EXACT_INTEGER else str(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | set):
        return _nested_text(value)
    return str(value)[:MAX_CELL_CHARS]


def cell_row(values: Sequence[Any], width: int) -> list[Any]:
    """``cell_value`` of each of the first ``width`` values, padded with None to ``width``: the same
    values, with plain text, numbers, booleans and None handled here rather than one call per cell."""
    row: list[Any] = []
    append = row.append
    for value in values[:width]:
        kind = value.__class__
        if kind is str:
            append(value if len(value) <= MAX_CELL_CHARS else value[:MAX_CELL_CHARS])
        elif value is None or kind is bool:
            append(value)
        elif kind is float:
            append(value if math.isfinite(value) else None)
        elif kind is int:
            append(value if -EXACT_INTEGER <= value <= EXACT_INTEGER else str(value))
        else:
            append(cell_value(value))
    if len(row) < width:
        row += [None] * (width - len(row))
    return row


def _nested_text(value: Mapping[str, Any] | list[Any] | tuple[Any, ...] | set[Any]) -> str | None:
    """A list or mapping in one cell, as a reader would write it: nothing when empty, ``a, b, c`` for a
    list of scalars, ``key: value; key: value`` for a flat mapping, JSON text for anything nested."""
    if not value:
        return None
    if isinstance(value, Mapping):
        if all(_is_scalar(item) for item in value.values()):
            return "; ".join(f"{key}: {_scalar_text(item)}" for key, item in value.items())[:MAX_CELL_CHARS]
    elif all(_is_scalar(item) for item in value):
        items = list(value)
        text = ", ".join(_scalar_text(item) for item in items[:MAX_LIST_ITEMS])
        more = len(items) - MAX_LIST_ITEMS
        return (f"{text}, … ({more:,} more)" if more > 0 else text)[:MAX_CELL_CHARS]
    return json_text(value)[:MAX_CELL_CHARS]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | numbers.Number | datetime | date | time)


def _scalar_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else "null"
    return str(value)


def json_text(value: Any) -> str:
    """``value`` as JSON text, NaN and infinities as null. The C encoder takes the whole value at once; only
    the parts holding a non-finite number (or a key it cannot encode) are walked in Python: a profile of
    10,000 columns is millions of values."""
    try:
        return _dumps(value)
    except (ValueError, TypeError):
        pass
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_dumps(str(key))}: {json_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(json_text(item) for item in value) + "]"
    return _dumps(finite(value))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_jsonable, allow_nan=False)


def _jsonable(value: Any) -> Any:
    """What the encoder writes for a value it does not know: a mapping as an object, a set as a list."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def finite(value: Any) -> Any:
    """A copy with NaN and infinities replaced by None, recursively (JSON has no spelling for them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [finite(item) for item in value]
    return value


def flatten(
    record: Mapping[str, Any], max_depth: int = 3, max_keys: int = 20, whole: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Nested mappings become dotted keys (``a.b.c``); lists, mappings deeper than ``max_depth`` or wider
    than ``max_keys``, and the mappings at the dotted paths in ``whole`` stay whole (one text cell)."""
    flat: dict[str, Any] = {}

    def visit(value: Mapping[str, Any], prefix: str, depth: int) -> None:
        for key, item in value.items():
            name = f"{prefix}{key}"
            if isinstance(item, Mapping) and not item:
                continue  # an empty mapping: nothing to show, no column
            if isinstance(item, Mapping) and depth < max_depth and len(item) <= max_keys and name not in whole:
                visit(item, f"{name}.", depth + 1)
            else:
                flat[name] = item

    visit(record, "", 1)
    return flat


def varying_mappings(records: Sequence[Any], max_depth: int = 3) -> frozenset[str]:
    """The dotted paths whose mappings have different keys in different records, more than
    ``MAX_SPARSE_KEYS`` in all (e.g. each integrity check's own ``details``): flattened they would spread
    over many mostly empty columns, so they stay one cell."""
    keys: dict[str, set[frozenset[str]]] = {}

    def visit(value: Mapping[str, Any], prefix: str, depth: int) -> None:
        for key, item in value.items():
            if isinstance(item, Mapping) and item and depth < max_depth:
                name = f"{prefix}{key}"
                keys.setdefault(name, set()).add(frozenset(map(str, item)))
                visit(item, f"{name}.", depth + 1)

    for record in records:
        if isinstance(record, Mapping):
            visit(record, "", 1)
    return frozenset(
        name for name, shapes in keys.items() if len(shapes) > 1 and len(frozenset().union(*shapes)) > MAX_SPARSE_KEYS
    )


def is_keyed_table(value: Any) -> bool:
    """A mapping of two or more mappings (e.g. statistics keyed by column name): rendered as a table with
    the key in its first column."""
    return (
        isinstance(value, Mapping)
        and len(value) >= 2
        and all(isinstance(item, Mapping) and item for item in value.values())
    )


def keyed_records(value: Mapping[str, Any], key_header: str = "key") -> list[dict[str, Any]]:
    return [{key_header: key, **item} for key, item in value.items()]


def is_table(value: Any) -> bool:
    """A non-empty list whose items are all mappings: rendered as a table."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def find_tables(data: Mapping[str, Any], skip: Iterable[str] = (), max_depth: int = 3) -> list[tuple[str, list[Any]]]:
    """Every list of mappings in ``data`` (also inside nested mappings), as (dotted path, list)."""
    skipped = set(skip)
    found: list[tuple[str, list[Any]]] = []

    def visit(value: Mapping[str, Any], prefix: str, depth: int) -> None:
        for key, item in value.items():
            path = f"{prefix}{key}"
            if path in skipped:
                continue
            if is_table(item):
                found.append((path, item))
            elif isinstance(item, Mapping) and depth < max_depth:
                visit(item, f"{path}.", depth + 1)

    visit(data, "", 1)
    return found


def scalar_details(data: Mapping[str, Any], skip: Iterable[str] = ()) -> list[tuple[str, Any]]:
    """``data`` flattened to (dotted key, value) pairs, without the tables and the skipped paths."""
    skipped = set(skip)
    pairs: list[tuple[str, Any]] = []

    def visit(value: Mapping[str, Any], prefix: str, depth: int) -> None:
        for key, item in value.items():
            path = f"{prefix}{key}"
            if path in skipped or is_table(item):
                continue
            if isinstance(item, Mapping) and item and depth < 4 and len(item) <= 40:
                visit(item, f"{path}.", depth + 1)
            else:
                pairs.append((path, item))

    visit(data, "", 1)
    return pairs


def records_table(records: Sequence[Any], max_columns: int = 150) -> tuple[list[str], list[list[Any]]]:
    """Headers (union of the flattened keys, in first-seen order) and rows of a list of mappings."""
    whole = varying_mappings(records)
    flat = [flatten(record, whole=whole) if isinstance(record, Mapping) else {"value": record} for record in records]
    headers: dict[str, None] = {}
    for row in flat:
        headers.update(dict.fromkeys(row))
    names = list(headers)[:max_columns]
    return names, [[row.get(name) for name in names] for row in flat]


def unique_headers(headers: Sequence[Any]) -> list[str]:
    """Excel table headers: text without control characters, at most 255 characters, non-empty and unique
    ignoring case (Excel repairs a workbook whose table has two columns ``A`` and ``a``)."""
    seen: set[str] = set()
    result: list[str] = []
    for position, header in enumerate(headers, start=1):
        base = CONTROL_CHARACTERS.sub(" ", str(header if header is not None else "")).strip()
        base = base[:MAX_HEADER_CHARS] or f"Column {position}"
        name, suffix = base, 2
        while name.lower() in seen:
            name = f"{base[: MAX_HEADER_CHARS - 8]} ({suffix})"
            suffix += 1
        seen.add(name.lower())
        result.append(name)
    return result


class Formats:
    def __init__(self, workbook: Workbook) -> None:
        add = workbook.add_format
        self.title = add({"bold": True, "font_size": 18, "font_color": "#1F4E78"})
        self.subtitle = add({"italic": True, "font_color": "#595959"})
        self.heading = add(
            {"bold": True, "font_size": 12, "font_color": "#1F4E78", "bottom": 2, "bottom_color": "#1F4E78"}
        )
        self.label = add({"bold": True, "font_color": "#1F4E78"})
        self.header = add(
            {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "text_wrap": True, "valign": "top"}
        )
        self.wrap = add({"text_wrap": True, "valign": "top"})
        # a matrix: its column names run upwards, its coefficients two decimals centred
        self.rotated_header = add(
            {"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "rotation": 90, "align": "center"}
        )
        self.coefficient = add({"num_format": "0.00", "align": "center"})
        self.left = add({"align": "left", "valign": "top"})
        self.top = add({"valign": "top"})
        self.flag = add({"valign": "top", "num_format": '"TRUE";"TRUE";"FALSE"'})
        self.left_integer = add({"align": "left", "valign": "top", "num_format": "#,##0"})
        self.note = add({"italic": True, "font_color": "#595959"})
        # top-aligned like wrapped text, so that a row grown for a long message still reads across
        self.integer = add({"num_format": "#,##0", "valign": "top"})
        self.decimal = add({"num_format": "#,##0.00", "valign": "top"})
        self.precise = add({"num_format": "0.0000", "valign": "top"})
        self.scientific = add({"num_format": "0.00E+00", "valign": "top"})
        self.tone = {tone: add({"bg_color": fill, "font_color": font}) for tone, (fill, font) in TONE_COLOURS.items()}
        # a conditional format's style replaces the boolean display in LibreOffice (TRUE shows as 1)
        self.tone_flag = {
            tone: add({"bg_color": fill, "font_color": font, "num_format": '"TRUE";"TRUE";"FALSE"'})
            for tone, (fill, font) in TONE_COLOURS.items()
        }
        self.tone_note = {
            tone: add({"bg_color": fill, "font_color": font, "bold": True})
            for tone, (fill, font) in TONE_COLOURS.items()
        }
        self.big = {
            tone: add(
                {
                    "bold": True,
                    "font_size": 36,
                    "align": "center",
                    "valign": "vcenter",
                    "bg_color": fill,
                    "font_color": font,
                    "border": 1,
                }
            )
            for tone, (fill, font) in TONE_COLOURS.items()
        }

    def number(self, kind: str | None) -> Format | None:
        return {"int": self.integer, "dec": self.decimal, "prec": self.precise, "sci": self.scientific}.get(kind or "")


@dataclass
class _ChartBlock:
    columns: list[list[Any]]
    first_row: int


@dataclass
class ReportBook:
    """The workbook, its formats, the sheet names in use and the chart data written to a hidden sheet last."""

    workbook: Workbook
    formats: Formats
    used_names: set[str] = field(default_factory=set)
    column_names: frozenset[str] = frozenset()  # the data's own names: never relabelled (agents.reports.labels)
    chart_blocks: list[_ChartBlock] = field(default_factory=list)
    chart_rows: int = 0

    @classmethod
    def create(cls, path: Path, reserved: Iterable[str]) -> ReportBook:
        # Not constant_memory: charts need the data kept, and the shared string table deduplicates the
        # repeated texts of the issue sheets (faster than constant_memory's inline strings). in_memory:
        # no temporary file per sheet.
        workbook = FastWorkbook(
            str(path),
            {
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "nan_inf_to_errors": False,
                "in_memory": True,
            },
        )
        book = cls(workbook, Formats(workbook))
        book.used_names.update(name.lower() for name in (*reserved, CHART_DATA_SHEET, "history"))
        return book

    def sheet(self, title: str, reserved: bool = False) -> SheetWriter:
        """A new sheet named ``title`` (a reserved name is taken as is; others are made valid and unique)."""
        name = title if reserved else self._unique_name(title)
        return SheetWriter(self, self.workbook.add_worksheet(name, worksheet_class=_ReportSheet))

    def chart_data(self, columns: list[list[Any]]) -> list[list[Any]]:
        """Reserve rows on the hidden chart-data sheet for ``columns`` (equal lengths); returns a range per
        column for a chart series (``[sheet, first_row, col, last_row, col]``)."""
        length = max((len(column) for column in columns), default=0)
        block = _ChartBlock(columns, self.chart_rows)
        self.chart_blocks.append(block)
        self.chart_rows += length + 1
        last = block.first_row + max(length, 1) - 1
        return [[CHART_DATA_SHEET, block.first_row, index, last, index] for index in range(len(columns))]

    def close(self) -> None:
        if self.chart_blocks:
            sheet = self.workbook.add_worksheet(CHART_DATA_SHEET, worksheet_class=FastWorksheet)
            for block in self.chart_blocks:
                for index, column in enumerate(block.columns):
                    write_column(sheet, block.first_row, index, [cell_value(value) for value in column])
            sheet.hide()
        self.workbook.close()

    def _unique_name(self, title: str) -> str:
        base = SHEET_NAME_FORBIDDEN.sub("_", CONTROL_CHARACTERS.sub(" ", title)).strip().strip("'")[:31].strip()
        base = base or "Sheet"
        name, suffix = base, 2
        while name.lower() in self.used_names:
            name = f"{base[: 31 - len(str(suffix)) - 1].rstrip()} {suffix}"
            suffix += 1
        self.used_names.add(name.lower())
        return name


EXCEL_MAX_ROW = 1_048_575
EXCEL_MAX_COL = 16_383


class _ReportSheet(FastWorksheet):
    """A worksheet whose tables are declared without xlsxwriter's overlap bookkeeping, which registers every
    cell of a table one by one (a 2,000-row issue table: 14,000 dictionary entries, about a tenth of
    the workbook's time): the report's tables never overlap (each starts below the last one written). The
    table is declared over its header and first row, then given its whole range: the same table part.
    Such a table's whole range is kept (``short_tables``) and checked by ``merge_range`` and ``add_table``,
    which refuse a range overlapping it with xlsxwriter's own ``OverlappingRange``, as xlsxwriter would."""

    def __init__(self) -> None:
        super().__init__()
        self.short_tables: list[tuple[int, int, int, int]] = []

    @convert_range_args
    def merge_range(  # type: ignore[override]
        self,
        first_row: int,
        first_col: int,
        last_row: int,
        last_col: int,
        data: Any,
        cell_format: Format | None = None,
    ) -> int:
        if self.short_tables and (first_row, first_col) != (last_row, last_col):
            self._refuse_overlap("Merge range", first_row, first_col, last_row, last_col)
        return int(super().merge_range(first_row, first_col, last_row, last_col, data, cell_format))

    @convert_range_args
    def add_table(  # type: ignore[override]
        self, first_row: int, first_col: int, last_row: int, last_col: int, options: dict[str, Any] | None = None
    ) -> int:
        if self.short_tables:
            self._refuse_overlap("Table range", first_row, first_col, last_row, last_col)
        options = options or {}
        plain = not ({"data", "total_row"} & options.keys()) and options.get("header_row", True)
        if not plain or last_row - first_row < 2 or last_row > EXCEL_MAX_ROW or first_row > last_row:
            return int(super().add_table(first_row, first_col, last_row, last_col, options))
        declared = int(super().add_table(first_row, first_col, first_row + 1, last_col, options))
        if declared == 0:
            table = self.tables[-1]
            table["range"] = table["a_range"] = xl_range(first_row, first_col, last_row, last_col)
            if "autofilter" in table:
                table["autofilter"] = table["a_range"]
            self.short_tables.append((first_row, min(first_col, last_col), last_row, max(first_col, last_col)))
        return declared

    def _refuse_overlap(self, what: str, first_row: int, first_col: int, last_row: int, last_col: int) -> None:
        """Raise ``OverlappingRange`` when the range (either corner first) overlaps a table of
        ``short_tables``; a range out of the sheet's bounds is left to xlsxwriter (which returns -1)."""
        top, bottom = sorted((first_row, last_row))
        left, right = sorted((first_col, last_col))
        if top < 0 or left < 0 or bottom > EXCEL_MAX_ROW or right > EXCEL_MAX_COL:
            return
        for table_top, table_left, table_bottom, table_right in self.short_tables:
            if top <= table_bottom and table_top <= bottom and left <= table_right and table_left <= right:
                raise OverlappingRange(
                    f"{what} '{xl_range(top, left, bottom, right)}' overlaps previous table range "
                    f"'{xl_range(table_top, table_left, table_bottom, table_right)}'."
                )


@dataclass
class Column:
    """A curated table column: header, how to get its value from a record, and a number format kind
    (``int``, ``dec``, ``prec``, ``sci`` or None for Excel's General)."""

    header: str
    path: tuple[str, ...]
    number: str | None = None

    def value(self, record: Mapping[str, Any]) -> Any:
        value: Any = record
        for key in self.path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value


class SheetWriter:
    """Writes sections top to bottom on one sheet and fits the column widths to what it wrote."""

    def __init__(self, book: ReportBook, sheet: Worksheet) -> None:
        self.book = book
        self.formats = book.formats
        self.sheet = sheet
        self.row = 0
        self.widths: dict[int, float] = {}
        self.fixed_widths: dict[int, float] = {}
        self.wrapped: set[int] = set()

    @property
    def name(self) -> str:
        return str(self.sheet.name)

    def label(self, key: str) -> str:
        """What a reader sees for a raw key (the data's column names stay as they are)."""
        return label(key, self.book.column_names)

    def labelled(self, pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
        return [(self.label(key), value) for key, value in pairs]

    def title(self, text: str, subtitle: str | None = None) -> None:
        self.sheet.write_string(self.row, 0, text, self.formats.title)
        self.sheet.set_row(self.row, 26)
        self.row += 1
        if subtitle:
            self.sheet.write_string(self.row, 0, subtitle, self.formats.subtitle)
            self.row += 1
        self.row += 1

    def heading(self, text: str) -> None:
        self.sheet.write_string(self.row, 0, text, self.formats.heading)
        self.row += 1

    def note(self, text: str, tone: str | None = None) -> None:
        fmt = self.formats.tone_note[tone] if tone else self.formats.note
        self.sheet.write_string(self.row, 0, text[:MAX_CELL_CHARS], fmt)
        self.row += 2

    def skip(self, rows: int = 1) -> None:
        self.row += rows

    def key_values(
        self, title: str | None, pairs: Sequence[tuple[str, Any]], headers: Sequence[str] = ("Metric", "Value")
    ) -> tuple[int, int] | None:
        """A two-column table; whole numbers get thousands separators, and a long value wraps within
        ``KEY_VALUE_WIDTH`` rather than widening its column (which the sheet's wide tables share)."""
        if not pairs:
            return None
        rows = [[key, value] for key, value in pairs]
        top, last = self.table(list(headers), rows, title=title, fit=False)
        names = unique_headers(headers)
        self._fit(names[:1], [row[:1] for row in rows])
        longest = 0
        formats, sheet = self.formats, self.sheet
        write_again = _writer_again(sheet)
        for index, (_, value) in enumerate(pairs, start=top + 1):
            value = cell_value(value)
            if isinstance(value, bool):
                write_again(index, 1, value, formats.left)
            elif isinstance(value, int):
                write_again(index, 1, value, formats.left_integer)
            elif isinstance(value, float):
                write_again(index, 1, value, formats.left)
            elif isinstance(value, str) and len(value) > KEY_VALUE_WIDTH:
                write_again(index, 1, value, formats.wrap)
                write_again(index, 0, rows[index - top - 1][0], formats.top)
                sheet.set_row(index, LINE_HEIGHT * _lines(len(value), KEY_VALUE_WIDTH + 2))
            longest = max(longest, min(_display_length(value), KEY_VALUE_WIDTH))
        width = max(len(names[1]) + 3, longest + 2, MIN_COLUMN_WIDTH)
        self.widths[1] = max(self.widths.get(1, 0), width)
        return top, last

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str | None = None,
        numbers: Sequence[str | None] | None = None,
        toned: Iterable[int] | None = None,
        empty_text: str = "(none)",
        gap: int = 2,
        fit: bool = True,
    ) -> tuple[int, int]:
        """An Excel table at the current row; returns its (header row, last row). ``toned``: the columns to
        colour by value (default: those whose header is severity-like or a known pass/fail flag)."""
        if title:
            self.heading(title)
        names = unique_headers(headers)
        width = len(names)
        cells = [cell_row(row, width) for row in rows]
        if not cells:
            cells = [[empty_text] + [None] * (width - 1)]
        top = self.row
        formats = [self.formats.number(kind) for kind in numbers[:width]] if numbers else []
        write_rows(self.sheet, top + 1, cells, {column: fmt for column, fmt in enumerate(formats) if fmt is not None})
        self._write_flags(top, cells)
        last = top + len(cells)
        header = self.formats.header  # explicit: LibreOffice and some viewers ignore table styles
        self.sheet.add_table(
            top,
            0,
            last,
            width - 1,
            {"columns": [{"header": name, "header_format": header} for name in names], "style": TABLE_STYLE},
        )
        if toned is None:
            toned = [index for index, name in enumerate(names) if _tone_kind(name) is not None]
        for column in toned:
            self._tone_column(names[column], [row[column] for row in cells], top + 1, last, column)
        if fit:
            wrapped = self._fit(names, cells)
            self._row_heights(top, names, cells, wrapped)
        self.row = last + 1 + gap
        return top, last

    def _write_flags(self, top: int, cells: Sequence[Sequence[Any]]) -> None:
        """Booleans again with an explicit format: under a column format LibreOffice shows them as 1/0."""
        sample = zip(*cells[:WIDTH_SAMPLE_ROWS], strict=True)
        columns = [c for c, values in enumerate(sample) if bool in set(map(type, values))]
        if not columns:
            return
        write, flag = _writer_again(self.sheet), self.formats.flag
        for index, row in enumerate(cells, start=top + 1):
            for column in columns:
                if isinstance(value := row[column], bool):
                    write(index, column, value, flag)

    def _tone_column(self, header: str, values: list[Any], first: int, last: int, column: int) -> None:
        kind = _tone_kind(header)
        tones = {**VALUE_TONES, **SEVERITY_TONES} if header_key(header) in SEVERITY_HEADERS else VALUE_TONES
        present = {value.strip().lower() for value in values if isinstance(value, str)}
        for value in sorted(present & tones.keys()):
            self.sheet.conditional_format(
                first,
                column,
                last,
                column,
                {
                    "type": "cell",
                    "criteria": "equal to",
                    "value": f'"{value}"',
                    "format": self.formats.tone[tones[value]],
                },
            )
        if kind in {"good_when_true", "bad_when_true"}:
            for flag in (True, False):
                if not any(value is flag for value in values):
                    continue
                tone = "good" if flag == (kind == "good_when_true") else "bad"
                self.sheet.conditional_format(
                    first,
                    column,
                    last,
                    column,
                    {
                        "type": "cell",
                        "criteria": "equal to",
                        "value": "TRUE" if flag else "FALSE",
                        "format": self.formats.tone_flag[tone],
                    },
                )

    def _fit(self, headers: Sequence[str], cells: Sequence[Sequence[Any]]) -> set[int]:
        """Widths from the header and the first ``WIDTH_SAMPLE_ROWS`` rows: numbers count at most
        ``NUMBER_WIDTH`` characters, and a column of longer text is capped at ``WRAP_WIDTH`` and wraps
        (returned: the columns that wrap)."""
        sample = list(zip(*cells[:WIDTH_SAMPLE_ROWS], strict=True)) or [()] * len(headers)
        wrapped = set()
        for column, header in enumerate(headers):
            longest = _longest(sample[column])
            if longest > WRAP_WIDTH:
                wrapped.add(column)
            # a header wraps too (the header format wraps): two lines of a long header are fine
            longest_word = max((len(word) for word in header.split()), default=0)
            header_width = min(len(header) + 3, max(longest + 2, 14, longest_word + 3))
            width = min(max(header_width, longest + 2, MIN_COLUMN_WIDTH), WRAP_WIDTH)
            self.widths[column] = max(self.widths.get(column, 0), width)
        self.wrapped |= wrapped
        return wrapped

    def _row_heights(self, top: int, headers: Sequence[str], cells: Sequence[Sequence[Any]], wrapped: set[int]) -> None:
        """Explicit heights for the rows whose text wraps (the header, long texts in ``wrapped`` columns):
        not every application grows a row to fit wrapped text when it opens the file."""
        widths = {**self.widths, **self.fixed_widths}
        lines = max(_lines(len(header) + 2, widths[column]) for column, header in enumerate(headers))
        if lines > 1:
            self.sheet.set_row(top, LINE_HEIGHT * lines)
        if not wrapped:
            return
        columns = [(column, widths[column]) for column in sorted(wrapped)]
        for index, row in enumerate(cells, start=top + 1):
            lines = max(
                (_lines(len(value), width) for column, width in columns if isinstance(value := row[column], str)),
                default=1,
            )
            if lines > 1:
                self.sheet.set_row(index, LINE_HEIGHT * lines)

    def set_width(self, column: int, width: float) -> None:
        self.fixed_widths[column] = width

    def finish(self) -> None:
        widths = {**self.widths, **self.fixed_widths}
        for column, width in widths.items():
            # unformatted cells: top-aligned (rows grow for wrapped text), wrapping in the long-text columns
            wrap = column in self.wrapped and column not in self.fixed_widths
            self.sheet.set_column(column, column, width, self.formats.wrap if wrap else self.formats.top)
        self._page_setup(sum(widths.values()))

    def _page_setup(self, total_width: float) -> None:
        """Printing (and PDF export): landscape with narrow margins; a sheet up to ``FIT_WIDTH_CHARS``
        wide is scaled to one page across, a wider one keeps column A (the field names) on every page."""
        sheet = self.sheet
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
        sheet.set_footer("&L&A&RPage &P of &N")
        if total_width <= FIT_WIDTH_CHARS:
            sheet.fit_to_pages(1, 0)
        else:
            sheet.repeat_columns(0)


def _writer_again(sheet: Worksheet) -> Callable[[int, int, Any, Format], Any]:
    """What writes a value again, with a format, over the same value stored by a table: the fast sheet's
    ``write_again``, else ``write``."""
    return sheet.write_again if isinstance(sheet, FastWorksheet) else sheet.write


def _lines(length: int, width: float) -> int:
    """Lines a text of ``length`` characters takes in a wrapping column ``width`` characters wide."""
    return min(max(1, math.ceil(length / max(width * TEXT_CHARS_PER_WIDTH, 1))), MAX_WRAP_LINES)


def _longest(values: Iterable[Any]) -> int:
    """The largest ``_display_length`` of ``values`` (0 when there are none); text measured here."""
    longest = 0
    for value in values:
        if value.__class__ is str:
            length = len(value)
        elif value is None:
            continue
        else:
            length = _display_length(value)
        if length > longest:
            longest = length
    return longest


def _display_length(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, float):
        return min(len(f"{value:,.6g}"), NUMBER_WIDTH)
    if isinstance(value, int) and not isinstance(value, bool):
        return len(f"{value:,}")
    return len(value) if isinstance(value, str) else len(str(value))


def _tone_kind(header: str) -> str | None:
    key = header_key(header)
    if key in TONED_HEADERS:
        return "value"
    if key in GOOD_WHEN_TRUE:
        return "good_when_true"
    if key in BAD_WHEN_TRUE:
        return "bad_when_true"
    return None
