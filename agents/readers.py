"""Parse an uploaded input file into a typed Polars frame, strictly.

The extension of the upload name chooses the format:

- ``.csv``, ``.tsv``, ``.txt``: delimited text. Only the first 64 KiB are read into Python to sniff the
  encoding (UTF-8 with or without BOM, UTF-16 with BOM, or without one when every other byte is NUL, else
  cp1252 with Latin-1 for its five undefined bytes), the separator (``,`` ``;`` tab ``|``) and the quote
  character (``"`` or ``'``); Polars parses the file (a non-UTF-8 file is first transcoded to a UTF-8
  temporary file in chunks). A blank line of a file of several columns is no record (:func:`blank_line_rows`).
- ``.xlsx``: the first visible worksheet (a hidden one is skipped), or the one named by ``sheet`` (name or
  0-based position, hidden or not), read by calamine through ``pl.read_excel``; cell types come from the
  workbook (dates stay dates, whole numbers become integers, a column of time-only cells is times of day:
  ``09:30:00``, not calamine's ``1899-12-31T09:30:00``). An empty sheet is refused naming the sheets with data.
  The header is the sheet's first row holding a value, or the 1-based row ``header_row``, or the row found below
  a title (:func:`_header_below_title`); the report's ``header_row`` says which and what was skipped.
  A formula cell without a computed value (a workbook written by a program that does not compute formulas:
  openpyxl, or xlsxwriter's placeholder 0) is read as stored and listed in the report's
  ``formulas_without_values`` (:func:`_formulas_without_values`). The ZIP container is checked first against
  decompression bombs (see :data:`XLSX_MAX_UNCOMPRESSED_BYTES`).
- ``.parquet``: read as stored.
- ``.json``: an array of objects, one record each. ``.ndjson`` / ``.jsonl``: one object per line, blank
  lines ignored. A field whose values are of several JSON kinds (a number in one record, text, a boolean, an
  object or an array in another) is a text column: a string is its text, a number as Polars writes it, a
  boolean ``true`` or ``false``, an object or an array its JSON text (:func:`mixed_fields`); integers and
  floats together are Float64.

In every format, a text column whose values are all ISO 8601 dates or timestamps in one layout that reads
back unchanged (``2013-01-01``, ``2013-01-01T10:00:00Z``, ``2013-01-01 10:00:00.123+02:00``) is typed
``Date`` or ``Datetime`` with its time zone (:mod:`agents.layouts`); the report's ``temporal_columns`` keeps
each layout, and agents that write data write those columns back in it. Other date layouts stay text.

Every column's type is inferred from all of its values, never from a sample: a value that does not fit
widens the column (integer → Float64 → String) instead of becoming null. Nothing is silently dropped or
coerced; what the reader did change is listed in the report of :func:`read_table_with_report`:

- nested JSON/Parquet values: a struct column is flattened one level into ``parent.child`` columns, and
  lists (and structs nested deeper than one level) become their JSON text, so every column holds a
  scalar that string operations can handle; columns of only nulls become String;
- a column with a blank header and no value at all (trailing separators, formatted but empty spreadsheet
  columns) is dropped;
- blank, duplicate and reserved (:data:`~agents.envelope.BOOKKEEPING_COLUMNS`) column names are renamed
  deterministically: a blank one to ``column_<position>``, a repeated one to ``<name>_2``, ``<name>_3``…
  (skipping any name already in the file).

A file that cannot be read raises :class:`InvalidFileError` with a sentence naming the problem; its
details carry ``file`` and, when known, the 1-based ``line`` and ``column`` (character position within
the line) of the fault. So does a file of more than ``max_columns`` columns (a CSV's header is counted
before anything is parsed, a Parquet file's schema before its data), and a JSON, NDJSON or Parquet file
nested deeper than :data:`MAX_NESTING_DEPTH` levels (checked before Polars reads it: its readers overflow
their stack, killing the process, on a few hundred levels).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import html
import io
import json
import mmap
import os
import posixpath
import re
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, NotRequired, TypedDict, TypeVar
from xml.etree import ElementTree

import fastexcel
import numpy as np
import polars as pl

from agents.as_read import NOTHING, AsRead, cells_as_read
from agents.envelope import BOOKKEEPING_COLUMNS
from agents.errors import InvalidFileError
from agents.layouts import (
    BEYOND_DOUBLE,
    BooleanLayout,
    NumberLayout,
    beyond_double,
    beyond_double_columns,
    boolean_layout_of,
    json_text,
    long_number,
    maybe_beyond_double,
    number_layouts,
    record_layouts,
    type_temporal_text,
)
from agents.layouts import describe as describe_layouts
from agents.options import DEFAULT_MAX_COLUMNS

ValueLayout = NumberLayout | BooleanLayout  # how a column of numbers or booleans read from text was written

Format = Literal["csv", "xlsx", "parquet", "json", "ndjson"]
FORMATS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
SNIFF_BYTES = 64 * 1024
INFER_SCHEMA_LENGTH = 10_000
CANDIDATE_SEPARATORS = (",", ";", "\t", "|")
CANDIDATE_QUOTES = ('"', "'")
TEXT_FORMATS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
TRANSCODE_CHUNK_BYTES = 1024 * 1024
XLSX_MAX_UNCOMPRESSED_BYTES = 1 << 30
"""An XLSX workbook whose parts expand to more than this many bytes (1 GiB) *and* to more than
:data:`XLSX_MAX_COMPRESSION_RATIO` times the file's size is refused as a likely decompression bomb. The
sizes are those the ZIP central directory declares; real workbooks compress 5-20×."""
XLSX_MAX_COMPRESSION_RATIO = 100
MAX_NESTING_DEPTH = 100
"""JSON, NDJSON and Parquet inputs nested deeper than this many levels (brackets of a JSON text, struct and
list levels of a Parquet schema) are refused before Polars reads them: deeper than any table needs, and
well short of the depths at which Polars' readers overflow their stack and kill the process (about 400
levels of Parquet structs, 600 of NDJSON objects)."""
JSON_SCAN_CHUNK_BYTES = 1024 * 1024
_UTF8_BOM = codecs.BOM_UTF8
_NEWLINE = ord("\n")
_LINE_SCAN_CHUNK_BYTES = 1024 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_MAGIC_NUMBERS = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook?)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "a legacy Office document (XLS, or a password-protected workbook?)",
}
_PARSE_ERROR = re.compile(r"could not parse `(?P<value>.*?)` as dtype `(?P<dtype>[^`]+)` at column '(?P<column>.*)' ")
_CALAMINE_UNNAMED = re.compile(r"__UNNAMED__\d+")
_NUMBERED_NAME = re.compile(r"(?P<base>.*)_\d+")
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LEGACY_ERROR_HANDLER = "agensium-latin1-fallback"
_READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,  # a corrupt file can make a Rust reader panic
    OSError,
)
_XLSX_READ_ERRORS: tuple[type[BaseException], ...] = (*_READ_ERRORS, fastexcel.FastExcelError, ValueError)
_NESTED_TYPES = (pl.Struct, pl.List, pl.Array)


class RenamedColumn(TypedDict):
    position: int  # 1-based position of the column in the file
    original: str
    renamed_to: str


class ReadReport(TypedDict):
    """What :func:`read_table_with_report` found and did; plain JSON-serialisable values."""

    format: Format  # "csv" is any delimited text: ``separator`` tells CSV from TSV
    encoding: str | None  # text formats: "utf-8", "utf-16" (with a BOM), "utf-16-le"/"utf-16-be" or "cp1252"
    separator: str | None
    quote_char: str | None
    sheet: str | None  # XLSX: the name of the worksheet read
    rows: int
    columns: int
    renamed_columns: list[RenamedColumn]
    dropped_empty_columns: list[int]  # 1-based positions of blank-named columns without any value
    flattened_columns: list[str]  # struct columns split into ``parent.child`` columns
    json_encoded_columns: list[str]  # columns (after flattening) whose values are now JSON text
    temporal_columns: dict[str, dict[str, Any]]  # text columns typed as dates: agents.layouts (written back so)
    number_columns: dict[str, dict[str, Any]]  # numbers written otherwise than Polars writes them (agents.layouts)
    boolean_columns: dict[str, dict[str, Any]]  # booleans spelled otherwise than true/false (agents.layouts)
    # number columns kept as text so that every value comes back as written: agents.layouts.beyond_double_columns
    # (a value with more digits than a double holds); present when there is one
    numbers_kept_as_text: NotRequired[dict[str, dict[str, Any]]]
    # XLSX: formula cells whose value the workbook does not hold (:func:`_formulas_without_values`), by column;
    # present when there is one
    formulas_without_values: NotRequired[dict[str, dict[str, Any]]]
    # XLSX: the header read below the sheet's first row (the reading option header_row, or found below a title:
    # :func:`_header_below_title`), with the rows skipped; or a header suspected below a title but not read
    # (``possible_header_row``); present when there is one
    header_row: NotRequired[dict[str, Any]]


@dataclass(frozen=True)
class CsvDialect:
    separator: str
    encoding: str  # "utf-8" (BOM or not: Polars skips it), "utf-16", "utf-16-le", "utf-16-be" or "cp1252"
    quote_char: str = '"'
    header: tuple[str, ...] | None = None  # the header record, when the sniff window holds all of it


@dataclass
class _Parsed:
    """A format reader's result: the frame, the file's own column names (aligned with the frame's
    columns, which Polars or calamine may have renamed) and the format facts for the report."""

    frame: pl.DataFrame
    original_names: list[str]
    facts: Mapping[str, str | None] = field(default_factory=dict)
    numbers: Mapping[int, ValueLayout] = field(default_factory=dict)  # numbers' and booleans' layouts, by position
    kept_as_text: Mapping[int, dict[str, Any]] = field(default_factory=dict)  # numbers_kept_as_text, by position
    # JSON: numbers_kept_as_text by (field, child field of an object or None): :func:`_read_exact_json`
    exact_fields: Mapping[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)
    # XLSX: formulas_without_values by position, and those of cells outside the columns read (by "column D")
    formulas: Mapping[int, dict[str, Any]] = field(default_factory=dict)
    formulas_outside: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    header_row: dict[str, Any] | None = None  # XLSX: the read report's header_row
    # delimited text: the cells of numbers and booleans their layout writes otherwise, columns named "c{position}"
    as_read: AsRead = NOTHING


def read_table(
    path: Path,
    name: str,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> pl.DataFrame:
    """Parse the file at ``path``; ``name`` is its upload name, whose extension selects the format."""
    return read_table_with_report(path, name, sheet=sheet, header_row=header_row, max_columns=max_columns)[0]


def read_table_with_report(
    path: Path,
    name: str,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> tuple[pl.DataFrame, ReadReport]:
    """Parse the file at ``path`` and report its format facts and every column renamed, dropped,
    flattened or JSON-encoded. ``sheet`` (XLSX only) is a worksheet name or 0-based position, ``header_row``
    (XLSX only) the 1-based row of the sheet holding the column names; a file of more than ``max_columns``
    columns is refused."""
    frame, report, _ = _read_table(path, name, sheet, header_row, max_columns, as_read=False)
    return frame, report


def read_table_as_read(
    path: Path,
    name: str,
    *,
    sheet: str | int | None = None,
    header_row: int | None = None,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> tuple[pl.DataFrame, ReadReport, AsRead]:
    """:func:`read_table_with_report`, with the cells of its numbers and booleans that their layouts write otherwise
    (:mod:`agents.as_read`): what a writer needs to give every cell back as the file had it."""
    return _read_table(path, name, sheet, header_row, max_columns, as_read=True)


def _read_table(
    path: Path, name: str, sheet: str | int | None, header_row: int | None, max_columns: int, *, as_read: bool
) -> tuple[pl.DataFrame, ReadReport, AsRead]:
    """The readers' work: ``as_read``, whether the cells written otherwise are kept (NOTHING when not: a tool that
    writes no rows has no use for them)."""
    extension = Path(name).suffix.lower()
    file_format = FORMATS.get(extension)
    if file_format is None:
        supported = ", ".join(FORMATS)
        raise InvalidFileError(
            f"{name}: unsupported format {extension or '(no extension)'}; upload one of {supported}",
            {"file": name},
        )
    if sheet is not None and file_format != "xlsx":
        raise InvalidFileError(
            f"{name}: the 'sheet' option applies to .xlsx workbooks only", {"file": name, "sheet": sheet}
        )
    if header_row is not None and file_format != "xlsx":
        raise InvalidFileError(
            f"{name}: the 'header_row' option applies to .xlsx workbooks only",
            {"file": name, "header_row": header_row},
        )
    try:
        if file_format == "csv":
            parsed = _read_delimited(path, name, TEXT_FORMATS[extension], max_columns, as_read=as_read)
        elif file_format == "xlsx":
            parsed = _read_xlsx(path, name, sheet, header_row)
        elif file_format == "parquet":
            parsed = _read_parquet(path, name, max_columns)
        elif file_format == "json":
            parsed = _read_json(path, name)
        else:
            parsed = _read_ndjson(path, name)
        frame, report, cells = _tidy_columns(parsed, name, file_format)
        if file_format in CONTROL_CHECKED_FORMATS:
            _raise_if_control_characters(frame.lazy(), name, engine="auto")
        frame, layouts = type_temporal_text(frame)
        report["temporal_columns"] = describe_layouts(layouts)
    except RecursionError as error:  # whatever the format: a structure deeper than Python follows
        raise InvalidFileError(f"{name}: nested too deeply to be read", {"file": name}) from error
    except NotImplementedError as error:  # a feature of the file no reader handles
        raise InvalidFileError(f"{name}: cannot be read: {error or 'unsupported content'}", {"file": name}) from error
    check_column_count(frame.width, name, max_columns)
    return frame, report, cells


# The C0 control characters _reject_binary counts against a CSV (all but tab, line feed, vertical tab, form feed,
# carriage return and ESC), as a regular expression class. JSON escapes them ("\u0000"; Polars reads a lone surrogate
# escape such as "\ud800" as NUL) and Parquet stores them; written raw to a CSV output they made the version
# unreadable ("the file is not text"), so such a file is refused when it is read.
CONTROL_CHARACTERS: Final = "[\x00-\x08\x0e-\x1a\x1c-\x1f]"
CONTROL_CHECKED_FORMATS: Final = frozenset({"json", "ndjson", "parquet"})


def _raise_if_control_characters(lazy: pl.LazyFrame, name: str, *, engine: Literal["auto", "streaming"]) -> None:
    """Refuse (INVALID_FILE naming the column and the 1-based data row) a tidied frame whose text columns hold a
    character of :data:`CONTROL_CHARACTERS`. One query over the text columns, stopping at the first such row."""
    schema = lazy.collect_schema()
    positions = [index for index, dtype in enumerate(schema.values()) if dtype == pl.String]
    if not positions:
        return
    # The text columns renamed by position ("c0", "c1"...): no clash with the row index, whatever their names.
    first = (
        lazy.select(pl.nth(index).alias(f"c{place}") for place, index in enumerate(positions))
        .with_row_index("row")
        .filter(
            pl.any_horizontal(
                pl.col(f"c{place}").str.contains(CONTROL_CHARACTERS).fill_null(False) for place in range(len(positions))
            )
        )
        .head(1)
        .collect(engine=engine)
    )
    if first.height == 0:
        return
    names = list(schema)
    column, code = next(
        (names[index], f"U+{ord(found.group()):04X}")
        for index, value in zip(positions, first.row(0)[1:], strict=True)
        if value is not None and (found := re.search(CONTROL_CHARACTERS, value)) is not None
    )
    number = first.item(0, 0) + 1
    nul = ", NUL: in JSON also a lone surrogate escape such as \\ud800" if code == "U+0000" else ""
    raise InvalidFileError(
        f"{name}: column '{column}', row {number:,} holds a control character ({code}"
        f"{nul}) that a text file cannot carry; remove it and upload the file again",
        {"file": name, "column": column, "row": number, "character": code},
    )


def check_column_count(columns: int, name: str, max_columns: int, *, at_least: bool = False) -> None:
    """Refuse a file of more than ``max_columns`` columns; ``at_least``: ``columns`` is where counting stopped."""
    if columns <= max_columns:
        return
    found = f"more than {max_columns:,}" if at_least else f"{columns:,}"
    raise InvalidFileError(
        f"{name}: {found} columns; the limit is {max_columns:,} columns per file",
        {"file": name, "columns": columns, "max_columns": max_columns},
    )


# --- Columns: nested values, empty unnamed columns, names -------------------------------------------------


def _tidy_columns(parsed: _Parsed, name: str, file_format: Format) -> tuple[pl.DataFrame, ReadReport, AsRead]:
    frame = parsed.frame
    # Columns are addressed by position: a name such as "*" or "^a$" means something else to pl.col.
    blank = [index for index, original in enumerate(parsed.original_names) if not original.strip()]
    null_counts = frame.select(pl.nth(index).null_count().alias(str(index)) for index in blank).row(0) if blank else ()
    dropped = [index + 1 for index, nulls in zip(blank, null_counts, strict=True) if nulls == frame.height]
    plan = tidy_plan(list(zip(parsed.original_names, frame.dtypes, strict=True)), dropped, name)
    tidy = frame.select(plan.columns)
    report: ReadReport = {
        "format": file_format,
        "encoding": parsed.facts.get("encoding"),
        "separator": parsed.facts.get("separator"),
        "quote_char": parsed.facts.get("quote_char"),
        "sheet": parsed.facts.get("sheet"),
        "rows": tidy.height,
        "columns": tidy.width,
        "renamed_columns": plan.renamed,
        "dropped_empty_columns": dropped,
        "flattened_columns": plan.flattened,
        "json_encoded_columns": plan.encoded,
        "temporal_columns": {},
        "number_columns": {},
        "boolean_columns": {},
    }
    as_read = NOTHING
    if parsed.numbers:  # delimited text and workbooks: one column out for each column kept, in order
        kept = [index for index in range(frame.width) if index + 1 not in dropped]
        if len(kept) == tidy.width:
            final = dict(zip(kept, tidy.columns, strict=True))
            record_layouts(report, {final[index]: layout for index, layout in parsed.numbers.items()})
            as_read = parsed.as_read.renamed({f"c{index}": column for index, column in final.items()})
    if parsed.kept_as_text:  # delimited text: one column out for each column kept, in order
        kept = [index for index in range(frame.width) if index + 1 not in dropped]
        if len(kept) == tidy.width:
            final = dict(zip(kept, tidy.columns, strict=True))
            report["numbers_kept_as_text"] = {final[index]: item for index, item in parsed.kept_as_text.items()}
    if parsed.formulas or parsed.formulas_outside:  # workbooks: a column kept is named as it is out, else its letter
        kept = [index for index in range(frame.width) if index + 1 not in dropped]
        final = dict(zip(kept, tidy.columns, strict=True)) if len(kept) == tidy.width else {}
        report["formulas_without_values"] = {
            **{
                final.get(index, f"column {item['first_cell'].rstrip('0123456789')}"): item
                for index, item in parsed.formulas.items()
            },
            **parsed.formulas_outside,
        }
    if parsed.header_row is not None:
        report["header_row"] = parsed.header_row
    if parsed.exact_fields:  # JSON: each column out comes from a field or from a field of an object
        sources = [(frame.columns[index], child) for index, child in plan.sources]
        report["numbers_kept_as_text"] = {
            final: parsed.exact_fields[source]
            for source, final in zip(sources, tidy.columns, strict=True)
            if source in parsed.exact_fields
        }
    return tidy, report, as_read


@dataclass(frozen=True)
class TidyPlan:
    """How a parsed table's columns become the agents' (:func:`tidy_plan`): ``columns``, one expression per column
    named as it will be; the renames, the struct columns flattened and the columns now JSON text; ``sources``, where
    each column comes from: (0-based position of the parsed column, the struct field's name or None)."""

    columns: list[pl.Expr]
    renamed: list[RenamedColumn]
    flattened: list[str]
    encoded: list[str]
    sources: list[tuple[int, str | None]] = field(default_factory=list)


def tidy_plan(columns: Sequence[tuple[str, pl.DataType]], dropped: Collection[int], name: str) -> TidyPlan:
    """The plan for a table whose columns are ``columns`` ((name as parsed, dtype), in file order) without those at
    the 1-based positions ``dropped`` (blank-named and empty): struct columns flattened one level (lists and deeper
    structs as JSON text), lists as JSON text, Null columns as text, names made unique. Used for a frame
    (:func:`_tidy_columns`) and for a lazy scan (agents.spill). Columns are addressed by position: a name such as
    "*" or "^a$" means something else to pl.col."""
    flattened: list[str] = []
    encoded: list[str] = []
    planned: list[tuple[int, str, pl.Expr]] = []  # (1-based file position, proposed name, expression)
    sources: list[tuple[int, str | None]] = []
    for index, (original, dtype) in enumerate(columns):
        position, column = index + 1, pl.nth(index)
        if position in dropped:
            continue
        if isinstance(dtype, pl.Struct) and dtype.fields:
            flattened.append(original)
            for struct_field in dtype.fields:
                child = f"{original}.{struct_field.name}"
                expression = column.struct.field(struct_field.name)
                if isinstance(struct_field.dtype, _NESTED_TYPES):
                    encoded.append(child)
                    expression = json_text(expression, struct_field.dtype)
                planned.append((position, child, expression))
                sources.append((index, struct_field.name))
            continue
        if isinstance(dtype, _NESTED_TYPES):
            encoded.append(original)
            planned.append((position, original, json_text(column, dtype)))
        elif dtype == pl.Null:
            planned.append((position, original, column.cast(pl.String)))
        else:
            planned.append((position, original, column))
        sources.append((index, None))
    if not planned:
        raise InvalidFileError(f"{name}: the file has no named column and no values", {"file": name})
    final_names, renamed = _unique_names([(position, proposed) for position, proposed, _ in planned])
    aliased = [expression.alias(final) for (_, _, expression), final in zip(planned, final_names, strict=True)]
    return TidyPlan(aliased, renamed, flattened, encoded, sources)


def _unique_names(columns: Sequence[tuple[int, str]]) -> tuple[list[str], list[RenamedColumn]]:
    """Blank → ``column_<position>``, as is a name Polars reads as a selector (``*``, ``^…$``: a regular
    expression); the second ``x`` → ``x_2``, the third → ``x_3``; never a name that another column of the file
    already has, nor the chain's reserved row-index column."""
    taken = {name for _, name in columns if name.strip()} | BOOKKEEPING_COLUMNS
    seen: set[str] = set()
    final: list[str] = []
    renamed: list[RenamedColumn] = []
    for position, name in columns:
        selector = name == "*" or (name.startswith("^") and name.endswith("$"))
        if name.strip() and not selector and name not in seen and name not in BOOKKEEPING_COLUMNS:
            seen.add(name)
            final.append(name)
            continue
        base, counter = (f"column_{position}", 1) if selector or not name.strip() else (name, 2)
        candidate = base if counter == 1 else f"{base}_{counter}"
        while candidate in taken:
            counter += 1
            candidate = f"{base}_{counter}"
        taken.add(candidate)
        final.append(candidate)
        renamed.append({"position": position, "original": name, "renamed_to": candidate})
    return final, renamed


def _check_not_empty(path: Path, name: str) -> bytes:
    """Reject an empty (or blank) file; return its first bytes."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.removeprefix(_UTF8_BOM).strip() and path.stat().st_size <= SNIFF_BYTES:
        raise InvalidFileError(f"{name}: the file is empty", {"file": name})
    return head


def _describe_magic(head: bytes) -> str | None:
    return next((description for magic, description in _MAGIC_NUMBERS.items() if head.startswith(magic)), None)


def _first_line(error: BaseException) -> str:
    message = str(error).strip()
    return message.splitlines()[0] if message else type(error).__name__


# --- Delimited text ---------------------------------------------------------------------------------------


def _read_delimited(path: Path, name: str, default_separator: str, max_columns: int, *, as_read: bool) -> _Parsed:
    dialect = sniff_dialect(path, name, default_separator=default_separator)
    check_header_width(path, name, dialect, max_columns)
    kept_as_text: dict[int, dict[str, Any]] = {}
    if dialect.encoding == "utf-8":
        try:
            frame, numbers, cells = _read_csv(path, name, dialect, kept_as_text, as_read=as_read)
        except NotUtf8:
            # A non-UTF-8 byte after the sniff window: the header read as UTF-8 may not be what cp1252 gives.
            dialect = CsvDialect(dialect.separator, "cp1252", dialect.quote_char, header=None)
    if dialect.encoding != "utf-8":
        with transcoded_to_utf8(path, dialect.encoding) as utf8_path:
            frame, numbers, cells = _read_csv(utf8_path, name, dialect, kept_as_text, as_read=as_read)
    header = dialect.header
    original = list(header) if header is not None and len(header) == frame.width else frame.columns
    facts = {"encoding": dialect.encoding, "separator": dialect.separator, "quote_char": dialect.quote_char}
    return _Parsed(frame, original, facts, numbers, kept_as_text, as_read=cells)


def sniff_dialect(path: Path, name: str, default_separator: str = ",") -> CsvDialect:
    """Look at the first 64 KiB only: reject empty and binary files, detect encoding, separator, quote."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.removeprefix(_UTF8_BOM).strip():
        raise InvalidFileError(f"{name}: the file is empty", {"file": name})
    bomless = None if head.startswith(_UTF16_BOMS) or _describe_magic(head) else _bomless_utf16(head)
    if head.startswith(_UTF16_BOMS):
        encoding = "utf-16"
        text = head.decode("utf-16", errors="ignore")
    elif bomless is not None:
        encoding = bomless
        text = head.decode(bomless, errors="ignore")
    else:
        _reject_binary(head, name)
        encoding, text = _decode_head(head)
    text = text.removeprefix("\ufeff")
    if "\r" in text and "\n" not in text:
        raise InvalidFileError(
            f"{name}: its lines end with a carriage return alone (classic Mac OS); save it with LF or CRLF line "
            "endings",
            {"file": name},
        )
    separator, quote_char = _sniff_separator(text, default_separator)
    header = _header_record(text, separator, quote_char, whole_file=len(head) < SNIFF_BYTES)
    return CsvDialect(separator=separator, encoding=encoding, quote_char=quote_char, header=header)


def check_header_width(path: Path, name: str, dialect: CsvDialect, max_columns: int) -> None:
    """Refuse a delimited file whose header has more than ``max_columns`` fields, before it is parsed: the
    sniffed header when the first 64 KiB hold it, else the first record counted as text, up to the limit
    (a header of a million fields costs no more than one of ``max_columns``)."""
    if dialect.header is not None:
        check_column_count(len(dialect.header), name, max_columns)
        return
    fields = _header_fields(path, dialect, max_columns + 1)
    check_column_count(fields, name, max_columns, at_least=True)


def _header_fields(path: Path, dialect: CsvDialect, limit: int) -> int:
    """Fields of the first record (separators outside quotes, until the first line end outside quotes),
    counting no further than ``limit``."""
    separator, quote = dialect.separator, dialect.quote_char
    tokens = re.compile("|".join(re.escape(token) for token in (separator, quote, "\r", "\n")))
    encoding = "utf-8-sig" if dialect.encoding == "utf-8" else dialect.encoding
    fields, quoted, started = 1, False, False
    with path.open("r", encoding=encoding, errors="replace", newline="") as handle:
        while chunk := handle.read(SNIFF_BYTES):
            if not started:  # blank lines before the header, as the csv module skips them
                chunk = chunk.lstrip("\ufeff\r\n")
                started = bool(chunk)
            for token in tokens.finditer(chunk):
                if token.group() == quote:
                    quoted = not quoted
                elif quoted:
                    continue
                elif token.group() == separator:
                    fields += 1
                    if fields >= limit:
                        return fields
                else:
                    return fields
    return fields


def _bomless_utf16(head: bytes) -> str | None:
    """ "utf-16-le" or "utf-16-be" when ``head`` is UTF-16 text without a byte-order mark: a delimited file is mostly
    ASCII, so most high bytes of its characters are NUL and hardly any low byte is (a binary file has NULs
    anywhere), and the bytes decode as UTF-16 (but for a surrogate pair the sniff window cut)."""
    even = len(head) // 2 * 2
    if even < 4:
        return None
    for encoding, high, low in (
        ("utf-16-le", head[1:even:2], head[:even:2]),
        ("utf-16-be", head[:even:2], head[1:even:2]),
    ):
        if high.count(0) >= 0.5 * len(high) and low.count(0) <= 0.1 * len(low):
            for end in (even, even - 2):
                try:
                    text = head[:end].decode(encoding)
                except UnicodeDecodeError:
                    continue
                # Text, not 16-bit binary values: lines, and control characters as rare as _reject_binary wants.
                control = sum(1 for character in text if ord(character) < 32 and character not in "\t\r\n\x1b")
                return encoding if "\n" in text and control <= len(text) // 100 else None
    return None


def _reject_binary(head: bytes, name: str) -> None:
    description = _describe_magic(head)
    if description is not None:
        raise InvalidFileError(f"{name}: this is {description}, not a text CSV/TSV file", {"file": name})
    control = sum(head.count(bytes([code])) for code in (*range(0, 9), *range(14, 32)) if code != 27)
    if b"\x00" in head or control > len(head) // 100:
        raise InvalidFileError(
            f"{name}: the file is not text (it contains binary bytes such as NUL); upload a CSV or TSV file",
            {"file": name},
        )


def _decode_head(head: bytes) -> tuple[str, str]:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # final=False: a multi-byte character cut by the 64 KiB boundary is not an error.
        return "utf-8", decoder.decode(head, final=False)
    except UnicodeDecodeError:
        _register_legacy_error_handler()
        return "cp1252", head.decode("cp1252", errors=_LEGACY_ERROR_HANDLER)


def _sniff_separator(text: str, default: str) -> tuple[str, str]:
    """The separator whose records have the most consistent width (then the widest, then the default),
    each parsed with the quote character that suits it best; a one-column file keeps the defaults."""
    lines = text.splitlines()
    if len(text) >= SNIFF_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short by the sniff window
    sample = "\n".join(lines[:50])
    best, best_quote, best_score = default, '"', (0, 0, False)
    for separator in CANDIDATE_SEPARATORS:
        sniffed = _sniff_quote(sample, separator)
        if sniffed is None:
            continue
        quote, consistent, width = sniffed
        score = (consistent, width, separator == default)
        if score > best_score:
            best, best_quote, best_score = separator, quote, score
    return best, best_quote


def _sniff_quote(sample: str, separator: str) -> tuple[str, int, int] | None:
    """For one separator: the quote character giving the most records of the header's width, then the
    one that opens more fields, then ``"``; ``'`` only if it opens a field. Returns (quote, consistent
    records, header width), or None when the separator does not split the header."""
    best: tuple[tuple[int, int, bool], str, int] | None = None
    for quote in CANDIDATE_QUOTES:
        try:
            records = csv.reader(io.StringIO(sample), delimiter=separator, quotechar=quote)
            widths = [len(record) for record in records if record]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        opened = len(re.findall(f"(?:^|{re.escape(separator)}) *{re.escape(quote)}", sample, flags=re.MULTILINE))
        if quote != '"' and opened == 0:
            continue  # "'" must quote something to be chosen; a stray '"' is an error, not a hint
        score = (sum(width == widths[0] for width in widths), opened, quote == '"')
        if best is None or score > best[0]:
            best = (score, quote, widths[0])
    return None if best is None else (best[1], best[0][0], best[2])


def _header_record(text: str, separator: str, quote_char: str, *, whole_file: bool) -> tuple[str, ...] | None:
    """The first record as the csv module reads it (Polars renames blank and repeated names), or None
    when the sniff window may have cut it."""
    records = csv.reader(io.StringIO(text), delimiter=separator, quotechar=quote_char)
    try:
        header = next((record for record in records if record), None)
        complete = whole_file or next(records, None) is not None
    except csv.Error:
        return None
    return tuple(header) if header is not None and complete else None


class NotUtf8(Exception):
    """The file holds a byte that is not UTF-8 past the sniff window: read it again as cp1252."""


ParsedT = TypeVar("ParsedT")


def parse_widening(
    path: Path, name: str, dialect: CsvDialect, parse: Callable[[dict[str, pl.DataType]], ParsedT]
) -> ParsedT:
    """``parse(overrides)`` until it succeeds: a column whose later value does not fit its inferred type is widened
    (to Float64, else text) and the file parsed again; any other failure is an ``InvalidFileError`` saying what and
    where (a short or long row, a quoting error), or ``NotUtf8``."""
    overrides: dict[str, pl.DataType] = {}
    while True:
        try:
            return parse(overrides)
        except pl.exceptions.NoDataError as error:
            raise InvalidFileError(f"{name}: the file is empty", {"file": name}) from error
        except pl.exceptions.DuplicateError as error:
            raise duplicate_header_error(name, error) from error
        except pl.exceptions.ComputeError as error:
            message = str(error)
            retype = _PARSE_ERROR.search(message)
            if retype and retype["column"] not in overrides:
                overrides[retype["column"]] = _wider_dtype(retype["value"], retype["dtype"])
                continue
            if "invalid utf-8" in message:
                raise NotUtf8 from error
            if "more fields than defined" in message:
                raise _ragged_row_error(path, name, dialect) from error
            quoting = _find_quote_problem(path, name, dialect)
            raise quoting or InvalidFileError(
                f"{name}: could not be parsed as CSV ({_first_line(error)})", {"file": name}
            ) from error


def _read_csv(
    path: Path,
    name: str,
    dialect: CsvDialect,
    kept_as_text: dict[int, dict[str, Any]] | None = None,
    *,
    as_read: bool = True,
) -> tuple[pl.DataFrame, dict[int, ValueLayout], AsRead]:
    """The frame, the layouts of its numbers and booleans (agents.layouts) by column position and the cells they
    write otherwise (:mod:`agents.as_read`); ``kept_as_text`` receives the number columns kept as text, by position
    (:func:`_typed_numbers`); ``as_read``: whether those cells are kept (else NOTHING)."""
    separator, quote_char = dialect.separator, dialect.quote_char

    def parse(overrides: dict[str, pl.DataType]) -> tuple[pl.DataFrame, dict[str, pl.DataType], list[str], list[str]]:
        # The schema is inferred by a scan (it reads only the first rows): read_csv with
        # infer_schema_length=10_000 parses ~10 % slower than with a schema given.
        schema = pl.scan_csv(
            path,
            separator=separator,
            quote_char=quote_char,
            infer_schema_length=INFER_SCHEMA_LENGTH,
            raise_if_empty=True,
        ).collect_schema()
        # Numbers are parsed as text and typed below: a code written with a leading zero ("007", "02134")
        # stays text, which a parse as integers would lose, and decimals keep how they were written ("41", "12.50");
        # so are booleans ("True", "FALSE").
        integers = {c: dtype for c, dtype in schema.items() if dtype.is_integer() and c not in overrides}
        floats = [c for c, dtype in {**schema, **overrides}.items() if dtype == pl.Float64]
        booleans = [c for c, dtype in {**schema, **overrides}.items() if dtype == pl.Boolean]
        raw = pl.read_csv(
            path,
            separator=separator,
            quote_char=quote_char,
            schema={**schema, **overrides, **dict.fromkeys([*integers, *floats, *booleans], pl.String())},
            raise_if_empty=True,
        )
        return raw, integers, floats, booleans

    raw, integers, floats, booleans = parse_widening(path, name, dialect, parse)
    if raw.width > 1 and raw.select(pl.all_horizontal(pl.all().is_null()).any()).item():
        raw = raw.filter(~pl.int_range(pl.len()).is_in(blank_line_rows(path, dialect, raw.height)))
    if raw.height == 0:
        raise InvalidFileError(f"{name}: the file has a header but no data rows", {"file": name})
    frame, numbers, cells = _typed_numbers(raw, integers, floats, booleans, kept_as_text=kept_as_text, as_read=as_read)
    if (
        frame.width > 1
        and frame[:, -1].null_count() > 0
        and not _every_line_full(path, dialect, frame.width, frame.height)
        and _may_have_short_rows(path, separator, frame.width)
    ):
        ragged = _find_ragged_row(path, name, dialect)
        if ragged is not None:
            raise ragged
    return frame, numbers, cells


def duplicate_header_error(name: str, error: pl.exceptions.DuplicateError) -> InvalidFileError:
    """A header that repeats a name and also holds the name Polars would give the repeat (``a,a_duplicated_0,a``)."""
    return InvalidFileError(
        f"{name}: the header repeats a column name in a way that cannot be told apart ({_first_line(error)}); "
        "rename the repeated columns",
        {"file": name},
    )


def _typed_numbers(
    frame: pl.DataFrame,
    integers: dict[str, pl.DataType],
    floats: Sequence[str],
    booleans: Sequence[str] = (),
    *,
    kept_as_text: dict[int, dict[str, Any]] | None = None,
    as_read: bool = True,
) -> tuple[pl.DataFrame, dict[int, ValueLayout], AsRead]:
    """The columns the schema scan took for numbers or booleans, read as text, typed; with the layouts (by position)
    of the decimal and boolean ones that Polars would write otherwise (``41``, ``12.50``, ``True``:
    :func:`agents.layouts.number_layouts`, :func:`agents.layouts.boolean_layouts`), and the cells of theirs that
    no layout gives back (``1.10`` beside ``1.2``: :func:`agents.as_read.cells_as_read`, columns ``c{position}``).

    An integer column becomes its integer type when every value converts and none would be written otherwise (a
    leading zero, ``007``, ``-0``, or a ``+``: a code, it stays text); else Float64 when every value is a number
    (a decimal past the scanned rows); else text. A decimal column becomes Float64 when every value converts,
    else text (a value past the scanned rows that is no number). A column that would become Float64 stays text when
    a value holds more digits than a double gives back (``1.123456789012345678``, an 18-decimal amount:
    :func:`agents.layouts.beyond_double_columns`): so every value comes back as written; ``kept_as_text``, when
    given, receives what the read report says of each such column, by position.

    A boolean column (``true``/``false`` in any case, as Polars reads them) becomes Boolean when every value is one,
    else text.

    A value that does not convert is a null its text lacks. When every value of an Int64 column converts, the
    sums of the values' widths tell whether any is written otherwise (:func:`_written_as_integers`); else each
    value's text is looked at."""
    if not integers and not floats and not booleans:
        return frame, {}, NOTHING
    # Worked on under positional names: a column named "*" or "^a$" means something else to pl.col.
    safe = {f"c{frame.get_column_index(name)}": name for name in [*integers, *floats, *booleans]}
    work = frame.select(pl.nth(frame.get_column_index(name)).alias(key) for key, name in safe.items())
    keys = {name: key for key, name in safe.items()}
    beyond: dict[str, dict[str, Any]] = {}
    typed = _typed_number_columns(
        work, {keys[name]: dtype for name, dtype in integers.items()}, [keys[name] for name in floats], beyond
    )
    if kept_as_text is not None:
        kept_as_text.update({int(key[1:]): item for key, item in beyond.items()})
    truths = _typed_booleans(work, [keys[name] for name in booleans]) if booleans else {}
    typed += [column for column, _ in truths.values()]
    decimals = pl.DataFrame([column for column in typed if column.dtype == pl.Float64])
    found: dict[str, ValueLayout] = {**number_layouts(work, decimals.columns, parsed=decimals, counted=True)}
    found.update({key: layout for key, (_, layout) in truths.items() if layout is not None})
    layouts = {int(key[1:]): layout for key, layout in found.items()}
    cells = cells_as_read(work, pl.DataFrame(typed), found) if typed and as_read else NOTHING
    typed_frame = frame.with_columns(column.alias(safe[column.name]) for column in typed) if typed else frame
    return typed_frame, layouts, cells


def _typed_booleans(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, tuple[pl.Series, BooleanLayout | None]]:
    """The text columns ``names`` whose every value is ``true`` or ``false`` in any case, typed Boolean, with
    their layout (:func:`agents.layouts.boolean_layout_of`, as :func:`agents.layouts.boolean_layouts` finds it).
    One count of each column's distinct texts (a handful): which are boolean words, which spell true, and the
    layout follow from them, without lowering every value."""
    counted = frame.select(pl.col(name).drop_nulls().value_counts(name="n").implode() for name in names)
    found: dict[str, tuple[pl.Series, BooleanLayout | None]] = {}
    for name in names:
        pairs = [(item[name], int(item["n"])) for item in counted[name][0]]
        texts = pl.Series([text for text, _ in pairs], dtype=pl.String)
        words = texts.str.to_lowercase().to_list()
        if all(word in ("true", "false") for word in words):
            trues = texts.filter(pl.Series(words, dtype=pl.String) == "true")
            column = frame.select(pl.when(pl.col(name).is_not_null()).then(pl.col(name).is_in(trues.implode())))
            found[name] = (column.to_series().alias(name), boolean_layout_of(pairs))
    return found


def _typed_number_columns(
    frame: pl.DataFrame,
    integers: dict[str, pl.DataType],
    floats: Sequence[str],
    beyond: dict[str, dict[str, Any]] | None = None,
) -> list[pl.Series]:
    """:func:`_typed_numbers` of a frame whose names are plain: the columns typed; ``beyond`` receives the number
    columns kept as text because a value has more digits than a double holds."""
    names = list(integers)
    cast = frame.select(pl.col(name).cast(integers[name], strict=False) for name in names)
    converted = [name for name in names if cast[name].null_count() == frame[name].null_count()]
    plain = _written_as_integers(frame, cast, [name for name in converted if integers[name] == pl.Int64])
    looked_at = [name for name in names if name not in plain]
    codes = frame.select(_written_otherwise(pl.col(name)).any() for name in looked_at).row(0) if looked_at else ()
    code = dict(zip(looked_at, codes, strict=True)) | dict.fromkeys(plain, False)
    typed = [cast[name] for name in converted if not code[name]]
    decimals = [*(name for name in names if name not in converted and not code[name]), *floats]
    if decimals:  # each a number, or the column stays text
        parsed = frame.select(pl.col(name).cast(pl.Float64, strict=False) for name in decimals)
        numbers = [name for name in decimals if parsed[name].null_count() == frame[name].null_count()]
        # Only a long value or one with an exponent may hold more than a double (long_number, of the text before its
        # spaces are trimmed: never shorter): the other columns are not looked at value by value.
        longs = frame.select(long_number(pl.col(name)).any() for name in numbers).row(0) if numbers else ()
        looked = [name for name, long in zip(numbers, longs, strict=True) if long]
        exact = beyond_double_columns(frame, looked)  # a value no double gives back: the column stays text
        if beyond is not None:
            beyond.update(exact)
        typed += [parsed[name] for name in numbers if name not in exact]
    return typed


_INT64_DIGITS = 19  # of the largest Int64, 9223372036854775807


def _written_as_integers(text: pl.DataFrame, cast: pl.DataFrame, names: list[str]) -> list[str]:
    """The ``names`` whose every value (text whose every value converted to Int64 in ``cast``) is written as
    the integer writes it: the text's bytes add up to the integers' own widths (sign and digits, counted from
    comparisons with powers of ten). Each value's text is never shorter than that width (a ``+``, ``-0`` or
    leading zero only adds to it), so equal sums mean no value is written otherwise."""
    if not names:
        return []
    # streaming: the byte counts are summed a morsel at a time, never held for a whole column
    widths = (
        text.lazy()
        .select(pl.col(name).str.len_bytes().cast(pl.Int64).sum() for name in names)
        .collect(engine="streaming")
        .row(0)
    )
    bounds = cast.select(
        *(pl.col(name).min().alias(f"a{i}") for i, name in enumerate(names)),
        *(pl.col(name).max().alias(f"b{i}") for i, name in enumerate(names)),
    ).row(0)
    sums: list[pl.Expr] = []
    for index, name in enumerate(names):
        low, high = bounds[index], bounds[len(names) + index]
        digits = max(len(str(abs(low))), len(str(abs(high)))) if low is not None and high is not None else 1
        column = pl.col(name)
        width = column.count().cast(pl.Int64) + (column < 0).sum().cast(pl.Int64)
        for power in range(1, min(digits, _INT64_DIGITS)):
            width = width + (column >= 10**power).sum().cast(pl.Int64) + (column <= -(10**power)).sum().cast(pl.Int64)
        sums.append(width.alias(name))
    own = cast.select(sums).row(0)
    return [name for name, written, width in zip(names, widths, own, strict=True) if written == width]


def _written_otherwise(text: pl.Expr) -> pl.Expr:
    """Number text that a number would not write back as it is: ``007``, ``-0``/``-07``, ``+5`` (a code). A
    decimal such as ``0.5`` or ``-0.25`` is written as a float writes it: not a code."""
    return text.str.contains(r"^(?:\+|-?0[0-9]|-0$)")


def _wider_dtype(value: str, dtype: str) -> pl.DataType:
    if dtype.startswith(("i", "u")):
        try:
            float(value)
            return pl.Float64()
        except ValueError:
            pass
    return pl.String()


def _every_line_full(path: Path, dialect: CsvDialect, width: int, height: int) -> bool:
    """Whether the file's bytes alone show that no row is short: no quote character anywhere (so no field
    holds a separator or spans lines), one line per record (the header and ``height`` rows, none blank), and
    exactly ``width - 1`` separators a line on average; as no line has more (Polars refuses extra fields),
    every line has them all. One pass over the bytes, a chunk at a time; False when any of it does not hold."""
    separator, quote = ord(dialect.separator), dialect.quote_char.encode()
    separators = newlines = 0
    last = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_LINE_SCAN_CHUNK_BYTES):
            if quote in chunk:
                return False
            data = np.frombuffer(chunk, dtype=np.uint8)
            separators += int(np.count_nonzero(data == separator))
            newlines += int(np.count_nonzero(data == _NEWLINE))
            last = chunk[-1:]
    lines = newlines + (last not in (b"\n", b""))
    return lines == height + 1 and separators == lines * (width - 1)


def _may_have_short_rows(path: Path, separator: str, width: int) -> bool:
    """Polars fills missing trailing fields with nulls; a line with fewer separators than the header needs
    a closer look (it is a short row, or part of a quoted field spanning lines). One cheap streaming scan."""
    counts = (
        pl.scan_csv(
            path,
            has_header=False,
            separator="\x1f" if separator != "\x1f" else "\x1e",
            quote_char=None,
            schema={"line": pl.String},
            truncate_ragged_lines=True,
            skip_rows=1,
        )
        .filter(pl.col("line").str.count_matches(separator, literal=True) < width - 1)
        .select(pl.len())
        .collect(engine="streaming")
    )
    return bool(counts.item())


def _ragged_row_error(path: Path, name: str, dialect: CsvDialect) -> InvalidFileError:
    found = _find_ragged_row(path, name, dialect)
    return found or InvalidFileError(f"{name}: a row has more fields than the header", {"file": name})


def _find_ragged_row(path: Path, name: str, dialect: CsvDialect) -> InvalidFileError | None:
    """Slow path, only after a problem was seen: walk the records with the csv module to name the line."""
    header_width = 0
    for line_number, record in _records_with_line_numbers(path, dialect):
        if not record:
            continue
        if header_width == 0:
            header_width = len(record)
            continue
        if len(record) != header_width:
            return InvalidFileError(
                f"{name}: line {line_number} has {len(record)} fields, the header has {header_width}",
                {"file": name, "line": line_number, "fields": len(record), "header_fields": header_width},
            )
    return None


def _find_quote_problem(path: Path, name: str, dialect: CsvDialect) -> InvalidFileError | None:
    """Slow path, after Polars failed without naming a cause: find the first quote character inside an
    unquoted field, text after a closing quote, or a quoted field that never closes (RFC 4180 rules,
    with the sniffed separator and quote)."""
    separator, quote = dialect.separator, dialect.quote_char
    opened_at: tuple[int, int] | None = None  # (line, column) of the quote opening the current field
    line_number = 0
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        for line_number, text in enumerate(handle, 1):
            line = text.rstrip("\r\n")
            position = 0
            while position <= len(line):
                if opened_at is not None:  # inside a quoted field, possibly continued from earlier lines
                    closing = line.find(quote, position)
                    if closing < 0:
                        break
                    if line.startswith(quote, closing + 1):  # a doubled quote stands for one quote
                        position = closing + 2
                        continue
                    opened_at, position = None, closing + 1
                    if position < len(line) and not line.startswith(separator, position):
                        return _quote_error(name, line_number, position + 1, f"text follows the closing {quote}")
                    position += len(separator)
                elif line.startswith(quote, position):
                    opened_at, position = (line_number, position + 1), position + 1
                else:
                    end = line.find(separator, position)
                    end = len(line) if end < 0 else end
                    stray = line.find(quote, position, end)
                    if stray >= 0:
                        return _quote_error(
                            name, line_number, stray + 1, f"a {quote} inside an unquoted field (quote the field)"
                        )
                    position = end + len(separator)
    if opened_at is not None:
        return _quote_error(name, *opened_at, f"the {quote} opening a field is never closed")
    return None


def _quote_error(name: str, line: int, column: int, problem: str) -> InvalidFileError:
    return InvalidFileError(
        f"{name}: line {line}, column {column}: {problem}", {"file": name, "line": line, "column": column}
    )


def _records_with_line_numbers(path: Path, dialect: CsvDialect) -> Iterator[tuple[int, list[str]]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=dialect.separator, quotechar=dialect.quote_char, strict=False)
        start_line = 1
        for record in reader:
            yield start_line, record
            start_line = reader.line_num + 1


def blank_line_rows(path: Path, dialect: CsvDialect, rows: int) -> list[int]:
    """The 0-based rows (of the ``rows`` Polars parsed) that are blank lines of the UTF-8 delimited file at ``path``:
    Polars reads each as a row of nulls, but a blank line of a file of several columns holds no record (pandas and
    R skip it too; a line of empty fields, ``,,``, is a record and stays). One pass of the csv module, made only
    when a row of nulls exists; none when its records do not line up with Polars' rows."""
    if not _has_empty_line(path):  # a row of nulls is then a line of empty fields (",,"), no blank line
        return []
    blank: list[int] = []
    data = -1  # rows after the header: blank lines before it are skipped, by Polars too
    for _, record in _records_with_line_numbers(path, dialect):
        if data < 0:
            data = 0 if record else -1
            continue
        if not record:
            blank.append(data)
        data += 1
    return blank if data == rows else []


def _has_empty_line(path: Path) -> bool:
    """Whether the file holds an empty line (two line ends in a row, or one first): one pass over its bytes, a
    chunk at a time, before the csv module's pass is paid for."""
    previous = b"\n"  # a line end first is an empty first line
    with path.open("rb") as handle:
        while chunk := handle.read(_LINE_SCAN_CHUNK_BYTES):
            joined = previous + chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if b"\n\n" in joined:
                return True
            previous = joined[-1:]
    return False


def _register_legacy_error_handler() -> None:
    """cp1252 leaves five bytes undefined; decode those as Latin-1 so every byte maps to a character."""

    def latin1_fallback(error: UnicodeError) -> tuple[str, int]:
        assert isinstance(error, UnicodeDecodeError)
        chunk = error.object[error.start : error.end]
        return bytes(chunk).decode("latin-1"), error.end

    codecs.register_error(_LEGACY_ERROR_HANDLER, latin1_fallback)


class transcoded_to_utf8:  # noqa: N801 - used as a function: with transcoded_to_utf8(path, encoding) as copy
    """Context manager: a UTF-8 copy of ``path`` in ``directory`` (default: the same directory), written in
    1 MiB chunks (bounded memory), removed on exit."""

    def __init__(self, path: Path, encoding: str, directory: Path | None = None) -> None:
        self.path = path
        self.encoding = encoding
        self.directory = directory or path.parent
        self.target: Path | None = None

    def __enter__(self) -> Path:
        _register_legacy_error_handler()
        errors = _LEGACY_ERROR_HANDLER if self.encoding == "cp1252" else "replace"
        decoder = codecs.getincrementaldecoder(self.encoding)(errors=errors)
        descriptor, target = tempfile.mkstemp(prefix=".utf8-", suffix=".csv", dir=self.directory)
        self.target = Path(target)
        with self.path.open("rb") as source, os.fdopen(descriptor, "wb") as sink:
            while chunk := source.read(TRANSCODE_CHUNK_BYTES):
                sink.write(decoder.decode(chunk).encode("utf-8"))
            sink.write(decoder.decode(b"", final=True).encode("utf-8"))
        return self.target

    def __exit__(self, *exc_info: object) -> None:
        if self.target is not None:
            self.target.unlink(missing_ok=True)


# --- XLSX -------------------------------------------------------------------------------------------------


def _read_xlsx(path: Path, name: str, sheet: str | int | None, header_row: int | None = None) -> _Parsed:
    head = _check_not_empty(path, name)
    _check_xlsx_container(path, name, head)
    try:
        workbook = fastexcel.read_excel(path)
    except _XLSX_READ_ERRORS as error:
        raise InvalidFileError(
            f"{name}: could not be read as an XLSX workbook ({_first_line(error)})", {"file": name}
        ) from error
    sheets = _workbook_sheets(path)
    names = list(workbook.sheet_names)
    if [found.name for found in sheets] != names:  # not as calamine reads it: every sheet visible, no formula check
        sheets = [_WorkbookSheet(sheet_name, False, None) for sheet_name in names]
    hidden = [found.name for found in sheets if found.hidden]
    sheet_name = _resolve_sheet(sheet, names, name, hidden)
    details: dict[str, Any] = {"file": name, "sheet": sheet_name}
    if header_row is not None:
        details["header_row"] = header_row
    try:
        frame = _read_sheet(path, sheet_name, None if header_row is None else header_row - 1)
    except pl.exceptions.NoDataError as error:
        if header_row is not None and _sheet_rows(workbook, sheet_name):
            raise _header_row_error(workbook, sheet_name, name, details, header_row) from error
        raise _empty_sheet(workbook, sheet_name, name, details, hidden=hidden) from error
    except _XLSX_READ_ERRORS as error:
        raise InvalidFileError(
            f"{name}: the sheet {sheet_name!r} could not be read ({_first_line(error)})", details
        ) from error
    header: dict[str, Any] | None = None
    if header_row is not None:
        if frame.height == 0 or all(_CALAMINE_UNNAMED.fullmatch(column) for column in frame.columns):
            raise _header_row_error(workbook, sheet_name, name, details, header_row, empty=frame.height > 0)
        header = {
            "row": header_row,
            "skipped": _row_texts(workbook, sheet_name, header_row - 1),
            "reason": "the reading option header_row",
        }
    else:
        if frame.height == 0:
            raise _empty_sheet(workbook, sheet_name, name, details, "has a header but no data rows", hidden=hidden)
        found = _header_below_title(path, workbook, sheet_name, frame)
        if found is not None:
            frame, header = found
    row = None if header is None or "skipped" not in header else header["row"] - 1
    original = _xlsx_header(workbook, sheet_name, frame.columns, row)
    formulas, outside = _formulas_without_values(path, next(found for found in sheets if found.name == sheet_name))
    return _Parsed(
        _times_of_day(frame),
        original,
        {"sheet": sheet_name},
        _whole_numbers_bare(frame),
        formulas=formulas,
        formulas_outside=outside,
        header_row=header,
    )


def _read_sheet(path: Path, sheet_name: str, header_row: int | None) -> pl.DataFrame:
    """The sheet as calamine types it, its header the 0-based row ``header_row`` of the sheet (None: the first
    row holding a value), the rows above it skipped."""
    return pl.read_excel(
        path,
        sheet_name=sheet_name,
        engine="calamine",
        infer_schema_length=None,  # every cell decides the type: a late text cell widens, not nulls
        drop_empty_cols=False,  # Polars would also drop unnamed columns of zeros; _tidy_columns decides
        raise_if_empty=True,
        # skip_rows 0: header_row counts from the sheet's row 1, even when calamine's range starts below it
        read_options=None if header_row is None else {"header_row": header_row, "skip_rows": 0},
    )


# A header found below a title (:func:`_header_below_title`) is looked for in the sheet's first rows.
XLSX_TITLE_WINDOW_ROWS: Final = 10
_SKIPPED_LISTED: Final = 10  # the read report's header_row lists the first rows skipped that hold a value


def _top_rows(workbook: fastexcel.ExcelReader, sheet_name: str, rows: int) -> list[list[str]]:
    """The first ``rows`` rows of the sheet (from its row 1, empty ones included), each cell as text, an empty one
    ``""``; the columns are those calamine reads (from the sheet's first column holding a value)."""
    if rows <= 0:
        return []
    top = workbook.load_sheet(sheet_name, header_row=None, skip_rows=0, n_rows=rows).to_polars()
    if top.width == 0:
        return []
    text = top.select(pl.all().cast(pl.String).str.strip_chars().fill_null(""))
    return [list(row) for row in text.rows()]


def _row_texts(workbook: fastexcel.ExcelReader, sheet_name: str, rows: int) -> list[str]:
    """The first :data:`_SKIPPED_LISTED` of the sheet's first ``rows`` rows that hold a value, each as its cells'
    text joined by `` | ``."""
    found = [" | ".join(cell for cell in row if cell) for row in _top_rows(workbook, sheet_name, rows)]
    return [row for row in found if row][:_SKIPPED_LISTED]


def _sheet_rows(workbook: fastexcel.ExcelReader, sheet_name: str) -> int:
    """The number of the sheet's last row holding a value (0: none)."""
    return int(workbook.load_sheet(sheet_name, header_row=None, skip_rows=0, n_rows=1).total_height)


def _header_row_error(
    workbook: fastexcel.ExcelReader,
    sheet_name: str,
    name: str,
    details: dict[str, Any],
    header_row: int,
    *,
    empty: bool = False,
) -> InvalidFileError:
    """The error of a reading option ``header_row`` naming an empty row, or no row above data rows."""
    last = _sheet_rows(workbook, sheet_name)
    if empty:
        problem = f"row {header_row:,} is empty: the header row names the columns"
    elif header_row >= last:
        problem = f"its last row is row {last:,}: no data rows below row {header_row:,}"
    else:
        problem = f"no data rows below row {header_row:,}"
    return InvalidFileError(
        f"{name}: the sheet {sheet_name!r} cannot be read with the header on row {header_row:,}: {problem}; "
        "name another row with the reading option header_row",
        {**details, "last_row": last},
    )


def _header_below_title(
    path: Path, workbook: fastexcel.ExcelReader, sheet_name: str, frame: pl.DataFrame
) -> tuple[pl.DataFrame, dict[str, Any]] | None:
    """A sheet whose first rows are a title (a report exported with a heading): each of the rows above its header
    holds at most one cell (some one), and the header, the first row within the first
    :data:`XLSX_TITLE_WINDOW_ROWS` holding several, names every column holding a value below it with distinct text
    (a letter in each name). When a column below it is typed (numbers, dates, booleans: not a data row then), the
    sheet read from that row and the read report's ``header_row`` (the row, the rows skipped, why); when none is,
    the frame is kept and ``header_row`` says which row may be the header (``possible_header_row``). None when the
    layout is not so: a row of several cells is never skipped. ``frame``: the sheet read from its first row."""
    if frame.width < 2 or sum(1 for column in frame.columns if not _CALAMINE_UNNAMED.fullmatch(column)) != 1:
        return None  # its first row holding a value has several (a header) or none: not a title
    rows = _top_rows(workbook, sheet_name, XLSX_TITLE_WINDOW_ROWS)
    index = next((number for number, row in enumerate(rows) if sum(1 for cell in row if cell) > 1), None)
    if index is None:
        return None
    skipped = [cell for row in rows[:index] for cell in row if cell]  # one cell a row at most
    if not skipped:
        return None
    names = rows[index]
    filled = [cell for cell in names if cell]
    if len(set(filled)) != len(filled) or not all(any(char.isalpha() for char in cell) for cell in filled):
        return None
    try:
        below = _read_sheet(path, sheet_name, index)
    except pl.exceptions.NoDataError:
        return None
    except _XLSX_READ_ERRORS:
        return None
    if below.height == 0 or below.width != len(names):
        return None
    counts = below.select(pl.all().count()).row(0)
    if any(not cell and count for cell, count in zip(names, counts, strict=True)):
        return None  # a column holding values below it without a name: not the header
    first = next(number for number, row in enumerate(rows, start=1) if any(row))
    typed = any(
        cell and count and dtype not in (pl.String, pl.Null)
        for cell, count, dtype in zip(names, counts, below.dtypes, strict=True)
    )
    if not typed:
        return frame, {
            "row": first,
            "possible_header_row": index + 1,
            "reason": f"row {first} holds a single cell (a title?) and row {index + 1} names every column, but no "
            f"column below it holds numbers, dates or booleans to tell it from data: the header is read from row "
            f"{first}; name the header row with the reading option header_row",
        }
    return below, {
        "row": index + 1,
        "skipped": skipped,
        "reason": f"the rows above row {index + 1} hold a single cell each (a title) and row {index + 1} names "
        "every column above typed values: read as the header (the reading option header_row names another)",
    }


@dataclass(frozen=True)
class _WorkbookSheet:
    """A worksheet as the workbook lists it (``xl/workbook.xml``): its name, whether it is hidden (``state`` hidden
    or veryHidden: Excel does not show its tab), its XML part in the archive (None when unknown) and whether the
    workbook asks to compute every formula when it is opened (``fullCalcOnLoad``: xlsxwriter's, whose formula
    cells hold a placeholder 0)."""

    name: str
    hidden: bool
    part: str | None
    computed_on_load: bool = False


_XML_NAMESPACE = re.compile(r"^\{[^}]*\}")
_RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _local(tag: str) -> str:
    return _XML_NAMESPACE.sub("", tag)


def _workbook_sheets(path: Path) -> list[_WorkbookSheet]:
    """The workbook's worksheets in order, from its ``workbook.xml`` and that part's relationships (both small;
    the archive was checked against bombs); empty when they cannot be read (calamine says what is wrong, or reads
    the sheets without these facts)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist())
            book = "xl/workbook.xml"
            if "_rels/.rels" in members:
                for relation in ElementTree.fromstring(archive.read("_rels/.rels")):
                    if relation.get("Type", "").endswith("/officeDocument"):
                        book = posixpath.normpath(relation.get("Target", book).lstrip("/"))
            folder, base = posixpath.split(book)
            rels = posixpath.join(folder, "_rels", f"{base}.rels")
            targets: dict[str, str] = {}
            if rels in members:
                for relation in ElementTree.fromstring(archive.read(rels)):
                    target = relation.get("Target", "")
                    part = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
                    targets[relation.get("Id", "")] = posixpath.normpath(part)
            root = ElementTree.fromstring(archive.read(book))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile, ElementTree.ParseError):
        return []
    on_load = any(
        _local(element.tag) == "calcPr" and element.get("fullCalcOnLoad") in ("1", "true") for element in root.iter()
    )
    parts = {key: target for key, target in targets.items() if target in members}
    return [
        _WorkbookSheet(
            element.get("name", ""),
            element.get("state") in ("hidden", "veryHidden"),
            parts.get(element.get(_RELATIONSHIP_ID, "")),
            on_load,
        )
        for element in root.iter()
        if _local(element.tag) == "sheet"
    ]


EXCEL_DAY_ZERO = dt.date(1899, 12, 31)
"""The day calamine gives a cell holding only a time of day (an Excel serial below 1: ``09:30:00`` is 0.395...)."""


def _times_of_day(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its datetime columns whose every value falls on :data:`EXCEL_DAY_ZERO` (time-only cells, shown
    ``09:30:00`` by Excel) as times of day: the date is not in the workbook."""
    stamps = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    if not stamps:
        return frame
    on_day_zero = frame.select(
        ((pl.col(name).dt.date() == EXCEL_DAY_ZERO).all() & pl.col(name).is_not_null().any()).alias(name)
        for name in stamps
    ).row(0, named=True)
    times = [name for name in stamps if on_day_zero[name]]
    return frame.with_columns(pl.col(name).dt.time() for name in times) if times else frame


_FORMULA_MARKS = (b"<f>", b"<f ", b"<f/>", b":f>", b":f ")  # a formula element, its namespace prefix or not
_SHEET_CHUNK_BYTES = 8 * 1024 * 1024
_TEXT_RESULTS = ["str", "inlineStr", "s"]  # cell types whose empty <v> is a value: the empty text
_PREFIX = r"(?:[A-Za-z_][\w.-]*:)?"  # an element's namespace prefix, if any
_CELL = rf"(?s)<{_PREFIX}c[\s>/][^>]*?(?:/>|>.*?</{_PREFIX}c>)"  # a <c> element, whole
_CELL_START = r"^(<[^>]*>)"
_CELL_COLUMN = r'\sr="\$?([A-Za-z]{1,3})\$?[0-9]+"'
_CELL_ROW = r'\sr="\$?[A-Za-z]{1,3}\$?([0-9]+)"'
_CELL_TYPE = r'\st="([^"]*)"'
_CELL_FORMULA = rf"<{_PREFIX}f[\s/>]"
_CELL_FORMULA_TEXT = rf"<{_PREFIX}f(?:\s[^>]*)?>([^<]*)<"
_CELL_VALUE = rf"<{_PREFIX}v>([^<]*)</{_PREFIX}v>"
_CELL_INLINE = rf"<{_PREFIX}is[\s>]"


def _formulas_without_values(
    path: Path, sheet: _WorkbookSheet
) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The sheet's formula cells that hold no value computed by a spreadsheet application, counted by column: a
    formula without a stored value (``<v>`` absent, or empty but for a text result: openpyxl writes them so), which
    calamine reads as empty; in a workbook that asks to compute every formula when opened (``fullCalcOnLoad``),
    one whose stored value is the number 0 (xlsxwriter's placeholder, read as 0). Each column's item says how many
    cells, the first one (``D2``), its formula and how it was read (``read_as``: ``"empty"`` or ``"0"``); by the
    position of the column in the frame read (calamine's columns start at the sheet's first column holding a
    value), and by ``"column D"`` for a column outside it (a formula column without a header or any value). The
    sheet's XML is first searched for a formula element a chunk at a time; only a sheet holding one is looked at,
    by Polars, a chunk of whole rows at a time (:func:`_sheet_cells`). Empty when the sheet's part is unknown or
    cannot be read (calamine read it: nothing more is said)."""
    if sheet.part is None:
        return {}, {}
    found: dict[str, dict[str, Any]] = {}
    first_column: int | None = None
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open(sheet.part) as member:
                tail = b""
                while chunk := member.read(_SHEET_CHUNK_BYTES):
                    if any(mark in tail + chunk[:8] or mark in chunk for mark in _FORMULA_MARKS):
                        break
                    tail = chunk[-4:]
                else:
                    return {}, {}
            with archive.open(sheet.part) as member:
                carried = b""
                while True:
                    chunk = member.read(_SHEET_CHUNK_BYTES)
                    data = carried + chunk
                    cut = data.rfind(b"row>") + len(b"row>") if chunk else len(data)  # whole rows, whole cells
                    if cut < len(b"row>"):
                        carried = data
                        continue
                    text, carried = data[:cut].decode("utf-8", errors="replace"), data[cut:]
                    stored, missing = _sheet_cells(text, sheet.computed_on_load, stored_columns=first_column != 1)
                    if stored:
                        least = min(map(_column_number, stored))
                        first_column = least if first_column is None else min(first_column, least)
                    for column, cells_found, cell, formula, read_as in missing.iter_rows():
                        item = found.setdefault(column, {"cells": 0, "first_cell": cell})
                        item["cells"] += cells_found
                        if formula and "formula" not in item:
                            item["formula"] = f"={html.unescape(formula)}"
                        item.setdefault("read_as", read_as)
                    if not chunk:
                        break
    except (KeyError, OSError, ValueError, zipfile.BadZipFile, pl.exceptions.PolarsError):
        return {}, {}
    start = first_column or 1
    numbered = {_column_number(column): item for column, item in found.items()}
    inside = {column - start: item for column, item in sorted(numbered.items()) if column >= start}
    outside = {f"column {_column_letters(column)}": item for column, item in sorted(numbered.items()) if column < start}
    return inside, outside


def _sheet_cells(text: str, computed_on_load: bool, *, stored_columns: bool) -> tuple[list[str], pl.DataFrame]:
    """The cells of a run of whole rows of a sheet's XML (:func:`_formulas_without_values`): the letters of the
    columns holding a stored value (when ``stored_columns``, else none: the first column holds one already), and per
    column of formula cells without a computed value (in the order of their first cell) their number, the first
    one, its formula text (the first one written: a shared formula's other cells hold none) and how it was read."""
    cell, start = pl.col("cell"), pl.col("cell").str.extract(_CELL_START)
    value, kind = pl.col("value"), pl.col("type")
    stored = pl.col("inline") | (value.is_not_null() & ((value != "") | kind.is_in(_TEXT_RESULTS))).fill_null(False)
    facts = [
        start.str.extract(_CELL_COLUMN).str.to_uppercase().alias("column"),
        start.str.extract(_CELL_TYPE).fill_null("n").alias("type"),
        cell.str.extract(_CELL_VALUE).alias("value"),
        cell.str.contains(_CELL_INLINE).alias("inline"),
    ]
    cells = pl.DataFrame({"cell": [text]}).select(cell.str.extract_all(_CELL).explode()).drop_nulls()
    letters: list[str] = []
    if stored_columns:
        held = cells.select(facts).filter(stored).drop_nulls("column")  # "r" is optional: no column known, no word
        letters = held["column"].unique().to_list()
    placeholder = pl.lit(computed_on_load) & (kind == "n") & (value == "0")
    read_as = pl.when(~stored).then(pl.lit("empty")).when(placeholder).then(pl.lit("0"))
    missing = (
        cells.filter(cell.str.contains(_CELL_FORMULA))
        .select(*facts, start.str.extract(_CELL_ROW).alias("row"), cell.str.extract(_CELL_FORMULA_TEXT).alias("text"))
        .drop_nulls("column")
        .with_columns(read_as.alias("read_as"))
        .drop_nulls("read_as")
        .group_by("column", maintain_order=True)
        .agg(
            pl.len().alias("cells"),
            (pl.col("column") + pl.col("row")).first().alias("first_cell"),
            pl.col("text").filter(pl.col("text") != "").first().alias("text"),
            pl.col("read_as").first(),
        )
    )
    return letters, missing


def _column_number(letters: str) -> int:
    """A spreadsheet column's 1-based number: ``A`` 1, ``Z`` 26, ``AA`` 27."""
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _column_letters(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _empty_sheet(
    workbook: fastexcel.ExcelReader,
    sheet_name: str,
    name: str,
    details: dict[str, Any],
    what: str = "is empty",
    *,
    hidden: Collection[str] = (),
) -> InvalidFileError:
    """The error of a sheet without data (empty, or a header alone: a cover sheet), naming the workbook's visible
    sheets with data (a header and a row at least), else its hidden ones, and the reading option that reads one."""

    def with_data(candidates: Iterable[str]) -> list[str]:
        return [
            other
            for other in candidates
            if other != sheet_name and workbook.load_sheet(other, header_row=None, n_rows=2).height == 2
        ]

    others = with_data(other for other in workbook.sheet_names if other not in hidden)
    kind = "sheets"
    if not others and hidden:
        others, kind = with_data(other for other in workbook.sheet_names if other in hidden), "hidden sheets"
    message = f"{name}: the sheet {sheet_name!r} {what}"
    if not others:
        return InvalidFileError(message, details)
    role = name.split(".", 1)[0]
    listed = ", ".join(repr(other) for other in others)
    option = json.dumps({"inputs": {role: {"sheet": others[0]}}}) if role in ("primary", "baseline") else None
    message += f"; the {kind} with data are {listed}" + (
        f": pick one with the reading option inputs.{role}.sheet, e.g. {option}" if option else ""
    )
    return InvalidFileError(message, {**details, "sheets_with_data": others})


def _whole_numbers_bare(frame: pl.DataFrame) -> dict[int, ValueLayout]:
    """A workbook's decimal columns holding whole numbers: written as Excel shows them (``90000``, not Polars'
    ``90000.0``; the cells' own number formats are not read), by position."""
    floats = [index for index, dtype in enumerate(frame.dtypes) if dtype == pl.Float64]
    if not floats:
        return {}
    whole = frame.select((pl.nth(index) == pl.nth(index).floor()).any() for index in floats).row(0)
    return {index: NumberLayout(None, True) for index, found in zip(floats, whole, strict=True) if found}


def _check_xlsx_container(path: Path, name: str, head: bytes) -> None:
    """An XLSX workbook is a ZIP archive; refuse one that declares far more content than it could hold."""
    try:
        with zipfile.ZipFile(path) as archive:
            uncompressed = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        description = _describe_magic(head) if not head.startswith(b"PK") else None
        reason = f"this is {description}" if description else "it is not a valid ZIP archive"
        raise InvalidFileError(f"{name}: not an XLSX workbook ({reason})", {"file": name}) from error
    compressed = max(path.stat().st_size, 1)
    if uncompressed > XLSX_MAX_UNCOMPRESSED_BYTES and uncompressed > XLSX_MAX_COMPRESSION_RATIO * compressed:
        raise InvalidFileError(
            f"{name}: refused as a likely decompression bomb: the workbook's {compressed:,} bytes expand to "
            f"{uncompressed:,} bytes (limit: {XLSX_MAX_UNCOMPRESSED_BYTES:,} bytes, or "
            f"{XLSX_MAX_COMPRESSION_RATIO}× the file's size)",
            {"file": name, "compressed_bytes": compressed, "uncompressed_bytes": uncompressed},
        )


def _resolve_sheet(sheet: str | int | None, sheet_names: list[str], name: str, hidden: Collection[str] = ()) -> str:
    """The sheet to read: ``sheet`` (a name, matched case-insensitively when unique, or a 0-based position among
    all the sheets, hidden ones included), else the first sheet not ``hidden`` (the first one when all are)."""
    if not sheet_names:
        raise InvalidFileError(f"{name}: the workbook has no worksheet", {"file": name})
    if sheet is None:
        return next((candidate for candidate in sheet_names if candidate not in hidden), sheet_names[0])
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if 0 <= sheet < len(sheet_names):
            return sheet_names[sheet]
        problem = f"there is no sheet at position {sheet} (0-based)"
    else:
        if sheet in sheet_names:
            return str(sheet)
        folded = [candidate for candidate in sheet_names if candidate.casefold() == str(sheet).casefold()]
        if len(folded) == 1:
            return folded[0]
        problem = f"there is no sheet named {sheet!r}"
    available = ", ".join(repr(candidate) for candidate in sheet_names)
    raise InvalidFileError(
        f"{name}: {problem}; the workbook's sheets are {available}",
        {"file": name, "sheet": sheet, "available_sheets": sheet_names},
    )


def _xlsx_header(
    workbook: fastexcel.ExcelReader, sheet_name: str, columns: list[str], row: int | None = None
) -> list[str]:
    """The header cells behind calamine's names: ``__UNNAMED__<n>`` was blank; ``x_1`` after an ``x`` may
    have been a repeated ``x`` (or really ``x_1``): only then is the header row (the 0-based ``row`` of the sheet,
    None: its first row holding a value) read again to tell."""
    original = ["" if _CALAMINE_UNNAMED.fullmatch(column) else column for column in columns]
    ambiguous = any(
        (match := _NUMBERED_NAME.fullmatch(column)) is not None and match["base"] in columns[:position]
        for position, column in enumerate(columns)
    )
    if not ambiguous:
        return original
    header_row = workbook.load_sheet(sheet_name, header_row=None, skip_rows=row, n_rows=1).to_polars()
    if header_row.width != len(columns) or header_row.height != 1:
        return original
    cells = header_row.select(pl.all().cast(pl.String)).row(0)
    return [
        cell if cell is not None and re.fullmatch(re.escape(cell) + r"_\d+", column) else known
        for known, column, cell in zip(original, columns, cells, strict=True)
    ]


# --- Parquet ----------------------------------------------------------------------------------------------


def parquet_schema(path: Path, name: str, max_columns: int) -> dict[str, pl.DataType]:
    """The checks of a Parquet file made before its data is read (by the reader, and by agents.spill for a file
    larger than memory): its PAR1 markers, a readable schema of at most ``max_columns`` columns nested at most
    MAX_NESTING_DEPTH levels; the schema."""
    head = _check_not_empty(path, name)
    with path.open("rb") as handle:
        handle.seek(max(path.stat().st_size - 4, 0))
        tail = handle.read(4)
    if head.startswith(b"PAR1") and tail != b"PAR1":
        raise InvalidFileError(
            f"{name}: a Parquet file cut short or damaged (it lacks the closing PAR1 marker); upload it again",
            {"file": name},
        )
    if not head.startswith(b"PAR1"):
        description = _describe_magic(head)
        reason = f"this is {description}" if description else "it lacks the PAR1 markers"
        raise InvalidFileError(f"{name}: not a Parquet file ({reason})", {"file": name})
    try:
        schema = pl.read_parquet_schema(path)
    except _READ_ERRORS as error:
        raise InvalidFileError(
            f"{name}: could not be read as Parquet ({_first_line(error)})", {"file": name}
        ) from error
    check_column_count(len(schema), name, max_columns)
    deepest = max((_nesting_depth(dtype) for dtype in schema.values()), default=0)
    if deepest > MAX_NESTING_DEPTH:
        raise _too_deep(name, {"levels": deepest})
    return schema


def _read_parquet(path: Path, name: str, max_columns: int) -> _Parsed:
    parquet_schema(path, name, max_columns)
    try:
        frame = pl.read_parquet(path)
    except _READ_ERRORS as error:
        raise InvalidFileError(
            f"{name}: could not be read as Parquet ({_first_line(error)})", {"file": name}
        ) from error
    if frame.width == 0:
        raise InvalidFileError(f"{name}: the Parquet file has no columns", {"file": name})
    if frame.height == 0:
        raise InvalidFileError(f"{name}: the file has a header (a schema) but no data rows", {"file": name})
    return _Parsed(frame, frame.columns)


def _nesting_depth(dtype: pl.DataType) -> int:
    """Struct and list levels of a dtype (0 for a scalar), walked without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(dtype, 0)]  # DataType instances and classes alike
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(current, pl.Struct):
            pending += [(struct_field.dtype, depth + 1) for struct_field in current.fields]
        elif isinstance(current, pl.List | pl.Array):
            pending.append((current.inner, depth + 1))
    return deepest


def _too_deep(name: str, details: dict[str, Any]) -> InvalidFileError:
    where = f" (line {details['line']})" if "line" in details else ""
    return InvalidFileError(
        f"{name}: nested deeper than {MAX_NESTING_DEPTH} levels{where}; flatten the records before uploading",
        {"file": name, "max_depth": MAX_NESTING_DEPTH, **details},
    )


# --- JSON and NDJSON --------------------------------------------------------------------------------------


def _read_json(path: Path, name: str) -> _Parsed:
    head = _check_not_empty(path, name)
    _reject_binary_json(head, name)
    _check_json_depth(path, name)
    start = head.removeprefix(_UTF8_BOM).lstrip()[:1]
    if start == b"{":
        _raise_if_malformed_object(path, name)
        raise InvalidFileError(
            f"{name}: found a JSON object, expected an array of records ([{{...}}, {{...}}]); "
            "for one object per line, name the file .ndjson",
            {"file": name, "line": 1 + head[: head.index(b"{")].count(b"\n")},
        )
    scanned = may_hold_long_numbers(path)
    kind = exact_numbers_kind(path) if scanned else None
    if kind == "numbers":
        return _read_exactly(path, name, ndjson=False)
    try:
        frame = pl.read_json(path, infer_schema_length=None)
    except _READ_ERRORS as error:
        if kind or exact_numbers_kind(path):  # 1e400, or an integer past 128 bits: Polars refuses the file
            return _read_exact_json(path, name, numbers_no_double_holds(path), ndjson=False)
        texts = _read_json_as_text(path, name)
        if texts is None:
            raise _json_unreadable(name, error) from error
        frame = texts
    else:
        texts = _read_json_as_text(path, name) if _booleans_read_as_numbers(path, frame) else None
        frame = frame if texts is None else texts
    if not scanned and _may_have_underflowed(path, frame):
        kind = exact_numbers_kind(path)
    if kind == "numbers" or (kind == "integers" and _wide_floats(frame)):  # integers among decimals: Float64
        return _read_exactly(path, name, ndjson=False)
    if frame.height == 0:
        raise InvalidFileError(f"{name}: the JSON array is empty: no data rows", {"file": name})
    if frame.width == 0:
        raise InvalidFileError(f"{name}: the records have no fields", {"file": name})
    return _Parsed(frame, frame.columns, {"encoding": "utf-8"})


def _json_text(path: Path, name: str) -> str:
    """A JSON file's text for the json module (its error paths only): UTF-8, a BOM aside; else the error saying
    where the file is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(name, raw, error) from None


def _raise_if_malformed_object(path: Path, name: str) -> None:
    """A .json file starting with "{" is refused: as the malformed JSON it is (line, column) when its first value
    is not a whole JSON object (``{not json``, a truncated ``{"a": 1``); else the caller asks for an array (one
    object, or one per line: NDJSON). Parsed by the json module, on this error path only."""
    text = _json_text(path, name)
    try:
        _DECODER.raw_decode(text, len(text) - len(text.lstrip()))
    except json.JSONDecodeError as error:
        raise InvalidFileError(
            f"{name}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            {"file": name, "line": error.lineno, "column": error.colno},
        ) from None
    except _NonStandardJson as error:
        raise InvalidFileError(f"{name}: {error}", {"file": name}) from None


def _read_ndjson(path: Path, name: str) -> _Parsed:
    head = _check_not_empty(path, name)
    _reject_binary_json(head, name)
    _check_json_depth(path, name)
    source: Path | io.BytesIO = path
    if head.startswith(_UTF8_BOM):  # Polars' NDJSON reader does not skip a BOM
        source = io.BytesIO(path.read_bytes()[len(_UTF8_BOM) :])
    scanned = may_hold_long_numbers(path)
    kind = exact_numbers_kind(path) if scanned else None
    if kind == "numbers":
        return _read_exactly(path, name, ndjson=True)
    try:
        frame = pl.read_ndjson(source, infer_schema_length=None)  # a sample would drop late keys
    except _READ_ERRORS as error:
        if kind or exact_numbers_kind(path):  # 1e400, or an integer past 128 bits: Polars refuses the file
            return _read_exact_json(path, name, numbers_no_double_holds(path), ndjson=True)
        fields = mixed_ndjson_fields(path, name, error)
        texts = io.BytesIO()
        write_ndjson_as_text(path, fields, texts)
        texts.seek(0)
        try:
            frame = pl.read_ndjson(texts, infer_schema_length=None)
        except _READ_ERRORS as again:
            raise ndjson_unreadable(name, again) from again
    if not scanned and _may_have_underflowed(path, frame):
        kind = exact_numbers_kind(path)
    if kind == "numbers" or (kind == "integers" and _wide_floats(frame)):  # integers among decimals: Float64
        return _read_exactly(path, name, ndjson=True)
    if frame.height == 0:
        raise InvalidFileError(f"{name}: the file has no data rows", {"file": name})
    if frame.width == 0:
        raise InvalidFileError(f"{name}: the records have no fields", {"file": name})
    return _Parsed(frame, frame.columns, {"encoding": "utf-8"})


def _read_exactly(path: Path, name: str, *, ndjson: bool) -> _Parsed:
    """A JSON or NDJSON file holding numbers Polars may not read back as written (:func:`exact_numbers_kind`): read
    by :func:`_read_quoted_json`, else by :func:`_read_exact_json`."""
    quoted = _read_quoted_json(path, name, ndjson=ndjson)
    return quoted or _read_exact_json(path, name, numbers_no_double_holds(path), ndjson=ndjson)


_JSON_KINDS: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def mixed_fields(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The fields (in order of first appearance) whose non-null values are of more than one JSON kind: object,
    array, string, boolean or number (an integer and a float are both numbers: Polars reads them as Float64).
    Polars refuses most such fields (``failed to determine supertype``, ``cannot parse 'true' (bool) as Int64``),
    and its JSON array reader reads a boolean among numbers as 1 or 0; they are read as text instead
    (:func:`_as_text`)."""
    kinds: dict[str, set[str]] = {}
    for record in records:
        for key, value in record.items():
            kinds.setdefault(key, set()).add(_JSON_KINDS[type(value)])
    return [key for key, found in kinds.items() if len(found - {"null"}) > 1]


_TEXTED_KINDS = (bool, dict, list)


# --- JSON numbers no double holds ---------------------------------------------------------------------------


class _NumberText(str):
    """A JSON number as written, where the json module would give its float or int (``exact`` records)."""


_FieldKey = tuple[str, str | None]  # a field, or (a field, a field of its objects)
_JSON_KINDS[_NumberText] = "number"
_BYTES_7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_BYTES_8 = np.uint64(0x8080808080808080)
_FROM_POINT = np.uint64(0x5252525252525252)  # + 0x52 sets a byte's top bit from "." (0x2E) up
_PAST_NINE = np.uint64(0x4646464646464646)  # + 0x46 sets it from ":" (0x3A, after "9") up
_NUMBER_TOKEN = (  # a JSON value that may be a number no double holds: long, or with an exponent
    r"(?:^|[:,\[])[ \t\r]*-?[0-9](?:[0-9.]{14,}(?:[eE][+-]?[0-9]+)?|[0-9.]*[eE][+-]?[0-9]+)"
)
BEYOND_INT128 = "beyond_128_bit_integer"
"""Why a read report's ``numbers_kept_as_text`` lists a JSON field: an integer past 128 bits (Polars reads it as
null or refuses the file), none of its values beyond a double's precision (:data:`agents.layouts.BEYOND_DOUBLE`)."""


def may_hold_long_numbers(path: Path) -> bool:
    """The cheap first test of :func:`exact_numbers_kind` (one pass over the bytes with NumPy, a chunk at a time):
    whether the file holds 8 bytes at an offset that is a multiple of 8 each a digit, ``.`` or ``/`` (a number a
    double may not give back has 16 digits or more: its run of digits and point holds such 8 bytes). A short one
    past a double's range is found otherwise: ``1e400`` fails Polars' read, ``1e-400`` reads as 0
    (:func:`_may_have_underflowed`)."""
    with path.open("rb") as handle:
        while chunk := handle.read(JSON_SCAN_CHUNK_BYTES):  # a multiple of 8 bytes, but the last
            words = np.frombuffer(chunk, dtype="<u8", count=len(chunk) // 8)
            found = words & _BYTES_7
            np.bitwise_and(found + _FROM_POINT, ~(found + _PAST_NINE), out=found)  # in place: one chunk's array
            np.bitwise_and(found, ~words, out=found)
            np.bitwise_and(found, _BYTES_8, out=found)
            if (found == _BYTES_8).any():
                return True
    return False


_SMALLEST_NORMAL = 2.2250738585072014e-308


def _may_have_underflowed(path: Path, frame: pl.DataFrame) -> bool:
    """Whether a number of the file may have been read as 0 or a subnormal double though written otherwise
    (``1e-400``): a Float64 column (or field of a struct column) holds such a value and the file the bytes ``e-`` or
    ``E-``."""
    floats = [pl.nth(index) for index, dtype in enumerate(frame.dtypes) if dtype == pl.Float64]
    for index, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pl.Struct):
            floats += [pl.nth(index).struct.field(child.name) for child in dtype.fields if child.dtype == pl.Float64]
    if not floats or not frame.select(pl.any_horizontal((x.abs() < _SMALLEST_NORMAL).any() for x in floats)).item():
        return False
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"e-") >= 0 or data.find(b"E-") >= 0


def _json_lines(path: Path) -> pl.LazyFrame:
    """The lines of a JSON or NDJSON file as text (``line``, null for an empty one; the BOM and a CR dropped; a byte
    that is not UTF-8 replaced: the JSON reader says what is wrong with such a file)."""
    return pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",  # a control character: never raw in JSON text
        quote_char=None,
        new_columns=["line"],
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
    )


def _no_double_holds(token: pl.Expr, double: pl.Expr | None = None) -> pl.Expr:
    """Per number text: whether Polars would not read it back as written: no double gives it back
    (:func:`agents.layouts.beyond_double`, or ``double`` when computed already), or an integer past 128 bits
    (:func:`_past_int128`)."""
    return (beyond_double(token) if double is None else double) | _past_int128(token)


def _past_int128(token: pl.Expr) -> pl.Expr:
    """Per number text: whether it is an integer past 128 bits (Polars reads it as null, or refuses the file)."""
    return token.str.contains(r"^-?[0-9]+$") & token.cast(pl.Int128, strict=False).is_null()


def _number_tokens(path: Path) -> pl.LazyFrame:
    """The values of the JSON text that may be a number Polars does not read back as written (``token``): long, or
    with an exponent, after ``:``, ``,`` or ``[``; ``integer``, whether it is written as an integer."""
    token = pl.col("token")
    return (
        _json_lines(path)
        .select(pl.col("line").str.extract_all(_NUMBER_TOKEN).explode().alias("token"))
        .select(token.str.strip_chars_start(":,[ \t\r"))
        .drop_nulls()
        .with_columns(token.str.contains(r"^-?[0-9]+$").alias("integer"))
    )


_FIRST_TOKENS = 1_000


def exact_numbers_kind(path: Path) -> Literal["numbers", "integers"] | None:
    """Whether the JSON or NDJSON file holds a number Polars may not read back as written: ``"numbers"`` when a
    decimal no double gives back (:func:`agents.layouts.beyond_double`: ``1.123456789012345678``, ``1e-400``) or an
    integer past 128 bits (Polars reads it as null, or refuses the file); ``"integers"`` when only integers of 16
    digits or more (Polars reads them exactly, as Int64 or Int128, unless their field also holds decimals: Float64,
    :func:`_wide_floats`); None when there is none, or when the file is no UTF-8 text (the JSON reader says what is
    wrong). Polars scans the lines for the values that may be one (:func:`_number_tokens`); the first few decimals are
    looked at first (a file holds such numbers in most of its rows, or none)."""
    token = pl.col("token")
    try:
        candidates = _number_tokens(path).collect()
        integers = candidates.filter(pl.col("integer"))
        if integers.select(token.cast(pl.Int128, strict=False).is_null().any()).item():
            return "numbers"
        decimals = candidates.filter(~pl.col("integer") & maybe_beyond_double(token))  # the others read back
        for part in (decimals.head(_FIRST_TOKENS), decimals[_FIRST_TOKENS:]):
            if part.height and part.select(beyond_double(token).any()).item():
                return "numbers"
    except _READ_ERRORS:
        return None
    return "integers" if integers.height else None


_DOUBLE_INTEGERS = 2.0**53  # every integer of smaller magnitude is a double


def _wide_floats(frame: pl.DataFrame) -> bool:
    """Whether a Float64 column (or field of a struct column) holds a value of magnitude 2**53 or more: where a JSON
    integer a double does not hold may have been read (:func:`exact_numbers_kind`)."""
    floats = [pl.nth(index) for index, dtype in enumerate(frame.dtypes) if dtype == pl.Float64]
    for index, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pl.Struct):
            floats += [pl.nth(index).struct.field(child.name) for child in dtype.fields if child.dtype == pl.Float64]
    if not floats:
        return False
    return bool(frame.select(pl.any_horizontal((column.abs() >= _DOUBLE_INTEGERS).any() for column in floats)).item())


def numbers_no_double_holds(path: Path) -> dict[str, str]:
    """The number texts of the JSON or NDJSON file that Polars would not read back as written
    (:func:`_no_double_holds`), each with why: :data:`agents.layouts.BEYOND_DOUBLE` or :data:`BEYOND_INT128`; empty
    when there is none, or when the file is no UTF-8 text."""
    token = pl.col("token")
    try:
        found = (
            _number_tokens(path)
            .filter(maybe_beyond_double(token))
            .filter(_no_double_holds(token))
            .unique("token")
            .select(token, _past_int128(token).alias("past"))
            .collect()
        )
    except _READ_ERRORS:
        return {}
    return {text: BEYOND_INT128 if past else BEYOND_DOUBLE for text, past in found.iter_rows()}


_MARK = "\x1e"  # before each long number made a string by _read_quoted_json: never raw in JSON text
_QUOTED_NUMBER = (  # an object's value that may be a number no double holds (as _NUMBER_TOKEN), made a string
    r"(:[ \t\r]*)(-?[0-9](?:[0-9.]{14,}(?:[eE][+-]?[0-9]+)?|[0-9.]*[eE][+-]?[0-9]+))",
    r'${1}"\u001e${2}"',
)


def _read_quoted_json(path: Path, name: str, *, ndjson: bool) -> _Parsed | None:
    """Fast path of :func:`_read_exact_json`, Polars only: the file read as Polars reads it, and once more from a copy
    of its lines whose long numbers after a ``:`` (an object's value) are strings (:data:`_QUOTED_NUMBER`, marked);
    a field, or a field of an object, holding a number Polars did not read back as written (:func:`_no_double_holds`;
    an integer a double does not hold only when Polars read its field as Float64) is then taken from the copy: text,
    such numbers as written, the other values as Polars writes them in a text column (``2.50`` → ``2.5``). None when
    Polars cannot read the file or the copy (a field of several JSON kinds, a number past 128 bits, a ``:`` before a
    long number inside a string) or when the file holds the escaped mark: :func:`_read_exact_json` reads it then. A
    number in a list, or on the line after its ``:``, stays as Polars reads it."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"\\u001e") >= 0 or data.find(b"\\u001E") >= 0:
            return None
    try:
        if ndjson:
            source: Path | io.BytesIO = path
            if path.open("rb").read(len(_UTF8_BOM)) == _UTF8_BOM:
                source = io.BytesIO(path.read_bytes()[len(_UTF8_BOM) :])
            frame = pl.read_ndjson(source, infer_schema_length=None)
        else:
            frame = pl.read_json(path, infer_schema_length=None)
            if _booleans_read_as_numbers(path, frame):
                return None
        lines = _json_lines(path).select(pl.col("line").str.replace_all(*_QUOTED_NUMBER).fill_null(""))
        copy = io.BytesIO("\n".join(lines.collect()["line"].to_list()).encode())
        quoted = (
            pl.read_ndjson(copy, infer_schema_length=None) if ndjson else pl.read_json(copy, infer_schema_length=None)
        )
    except _READ_ERRORS:
        return None
    if quoted.columns != frame.columns or quoted.height != frame.height:
        return None
    # (field, field of its objects or None), the copy's text, whether Polars read the field as Float64
    candidates: list[tuple[_FieldKey, pl.Expr, bool]] = []
    for index, (field_name, dtype) in enumerate(quoted.schema.items()):
        read = frame.dtypes[index]
        if dtype == pl.String:
            candidates.append(((field_name, None), pl.nth(index), read == pl.Float64))
        elif isinstance(dtype, pl.Struct) and isinstance(read, pl.Struct):
            floats = {child.name for child in read.fields if child.dtype == pl.Float64}
            candidates.extend(
                ((field_name, child.name), pl.nth(index).struct.field(child.name), child.name in floats)
                for child in dtype.fields
                if child.dtype == pl.String
            )
    values = quoted.select(value.alias(str(key)) for key, (_, value, _) in enumerate(candidates))
    found: dict[_FieldKey, dict[str, Any]] = {}
    for key, (field_key, _, read_float) in enumerate(candidates):
        column = values.to_series(key)
        marked = column.str.starts_with(_MARK).fill_null(False)
        if not marked.any():
            continue
        tokens = column.filter(marked).str.strip_prefix(_MARK).to_frame("token")
        token, integer = pl.col("token"), pl.col("token").str.contains(r"^-?[0-9]+$")
        # Polars reads an integer exactly unless its field holds decimals too (Float64), or it is past 128 bits
        beyond = (beyond_double(token) if read_float else ~integer & beyond_double(token)) & ~_past_int128(token)
        why = tokens.with_columns(beyond.alias("double")).select(
            _no_double_holds(token, pl.col("double")).alias("any"), "double"
        )
        if not why["any"].any():
            continue
        double = bool(why["double"].any())
        example = tokens["token"].filter(why["double"] if double else why["any"])[0]
        found[field_key] = {
            "reason": BEYOND_DOUBLE if double else BEYOND_INT128,
            "values": int(why["any"].sum()),
            "example": example,
        }
        text = column.str.strip_prefix(_MARK)
        parent, child = field_key
        if child is None:
            frame = frame.with_columns(text.alias(parent))
        else:
            children = frame.get_column(parent).struct.unnest().with_columns(text.alias(child))
            frame = frame.with_columns(children.to_struct(parent))
    return _Parsed(frame, frame.columns, {"encoding": "utf-8"}, exact_fields=found)


def _read_exact_json(path: Path, name: str, exact: Mapping[str, str], *, ndjson: bool) -> _Parsed:
    """The JSON array or NDJSON file read as Polars reads it, but for each field (or field of an object, which
    becomes a ``parent.child`` column) holding a number of ``exact`` (:func:`numbers_no_double_holds`): that field is
    text, those numbers as written, as a delimited file's reader keeps such a column
    (:func:`agents.layouts.beyond_double_columns`), its other values as in a field of several JSON kinds
    (:func:`_as_text`: a number as Polars writes it, ``2.50`` → ``2.5``). The json module parses the records (twice
    for NDJSON, a line at a time: the fields, then a copy written with those numbers as JSON strings, which Polars
    reads); the other fields of several JSON kinds are made text as :func:`_as_text` makes them. Numbers deeper than a
    field of an object (in a list) stay as Polars reads them. The slow path of :func:`_read_quoted_json`, which reads
    such files alike."""
    texts = io.BytesIO()
    found = write_exact_text(path, name, exact, texts, ndjson=ndjson)
    texts.seek(0)
    try:
        frame = pl.read_ndjson(texts, infer_schema_length=None)
    except _READ_ERRORS as error:
        raise (ndjson_unreadable(name, error) if ndjson else _json_unreadable(name, error)) from error
    if frame.height == 0:
        raise InvalidFileError(f"{name}: the file has no data rows", {"file": name})
    if frame.width == 0:
        raise InvalidFileError(f"{name}: the records have no fields", {"file": name})
    return _Parsed(frame, frame.columns, {"encoding": "utf-8"}, exact_fields=found)


def write_exact_text(
    path: Path, name: str, exact: Mapping[str, str], sink: BinaryIO, *, ndjson: bool
) -> dict[_FieldKey, dict[str, Any]]:
    """The records of :func:`_read_exact_json` written to ``sink`` as NDJSON for Polars (the fields holding a number
    of ``exact`` as text, those numbers as written); what its read report's ``numbers_kept_as_text`` says of them,
    by field. An NDJSON file is read a line at a time (twice), in bounded memory but for the records' fields and
    ``exact`` (agents.spill writes its copy so)."""

    def records() -> Iterable[dict[str, Any]]:
        return _ndjson_records(path, name, exact=True) if ndjson else _json_records(path, name, exact=True)

    found: dict[_FieldKey, dict[str, Any]] = {}
    # integers a double does not hold: Polars reads them exactly (Int64, Int128, or text among strings), but as Float64
    # in a field of numbers that holds decimals too
    wide: dict[_FieldKey, dict[str, Any]] = {}
    decimals: set[_FieldKey] = set()
    others: set[_FieldKey] = set()  # fields of objects holding a string, a boolean, an object or an array
    types: defaultdict[str, set[type]] = defaultdict(set)  # of each field's values: mixed_fields, in one pass

    def noted(text: str, key: _FieldKey) -> None:
        integer = not ("." in text or "e" in text or "E" in text)
        if not integer:
            decimals.add(key)
        if text in exact:
            why = exact[text]
            _note(wide if integer and why == BEYOND_DOUBLE else found, key, text, why)

    loaded = records()
    if not ndjson:
        loaded = list(loaded)
    for record in loaded:
        for key, value in record.items():
            kind = type(value)
            types[key].add(kind)
            if kind is _NumberText:
                noted(value, (key, None))
            elif kind is dict:
                for child, inner in value.items():
                    if type(inner) is _NumberText:
                        noted(inner, (key, child))
                    elif inner is not None:
                        others.add((key, child))
    for (key, child), item in wide.items():
        other = (key, child) in others if child is not None else bool(types[key] - {_NumberText, type(None)})
        if (key, child) in decimals and not other:
            found.setdefault((key, child), {**item, "values": 0})["values"] += item["values"]
    mixed = {key for key, seen in types.items() if len({_JSON_KINDS[kind] for kind in seen} - {"null"}) > 1}
    kept = {key for key, child in found if child is None}
    children: dict[str, set[str]] = {}
    for key, child in found:
        if child is not None:
            children.setdefault(key, set()).add(child)
    for record in loaded if not ndjson else records():
        texted: dict[str, Any] = {}
        for key, value in record.items():
            if key in kept or (key in mixed and isinstance(value, _TEXTED_KINDS)):
                value = _exact_text(value, exact)
            elif key in children and isinstance(value, dict):
                value = {
                    child: _exact_text(inner, exact) if child in children[key] else _plain(inner)
                    for child, inner in value.items()
                }
            else:
                value = _plain(value)
            texted[key] = value
        sink.write(json.dumps(texted).encode())
        sink.write(b"\n")
    return found


def _note(found: dict[_FieldKey, dict[str, Any]], key: _FieldKey, text: str, why: str) -> None:
    item = found.setdefault(key, {"reason": why, "values": 0, "example": str(text)})
    item["values"] += 1
    if why == BEYOND_DOUBLE and item["reason"] != BEYOND_DOUBLE:  # the first value a double does not give back
        item.update(reason=why, example=str(text))


def _exact_text(value: Any, exact: Collection[str]) -> Any:
    """A value of a field made text (:func:`_read_exact_json`): a number of ``exact`` as written (another one stays a
    number, which Polars writes in a text column), a string as it is, a boolean ``true``/``false``, an object or an
    array its JSON text as :func:`_as_text` writes it (the numbers of ``exact`` as written, the others as the json
    module writes them), null null."""
    if value is None or isinstance(value, str) and not isinstance(value, _NumberText):
        return value
    if isinstance(value, _NumberText):
        return str(value) if value in exact else _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _raw_json(value, exact)


def _plain(value: Any) -> Any:
    """A value of ``exact`` records (:func:`_json_records`) as the json module would have parsed it."""
    if isinstance(value, _NumberText):
        return float(value) if "." in value or "e" in value or "E" in value else int(value)
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_plain(inner) for inner in value]
    return value


def _raw_json(value: Any, exact: Collection[str]) -> str:
    """The JSON text of a value of ``exact`` records, as :func:`_as_text` writes it (``json.dumps``' separators): a
    number of ``exact`` as written, the others as the json module writes their value (``2.50`` → ``2.5``)."""
    if isinstance(value, _NumberText):
        return str(value) if value in exact else json.dumps(_plain(value))
    if isinstance(value, dict):
        items = (f"{json.dumps(key, ensure_ascii=False)}: {_raw_json(inner, exact)}" for key, inner in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_raw_json(inner, exact) for inner in value) + "]"
    return json.dumps(value, ensure_ascii=False)


_MAY_HOLD_TEXTED = re.compile(rb"\[|true|false")  # with a second "{": a line that may hold a value _as_text changes


def _as_text(record: Mapping[str, Any], fields: Collection[str]) -> dict[str, Any] | None:
    """The record with each of ``fields`` made text for Polars, or None when it has nothing to change: a boolean
    ``true``/``false``, an object or an array its JSON text (written as Polars writes an object it reads as text:
    ``{"b": 1, "c": [1, 2]}``). Strings and numbers stay as they are: Polars reads a field of strings and numbers as
    text, a number as it writes it (``1.0`` → ``1``), as it does when no other kind is mixed in."""
    if not any(isinstance(record.get(key), _TEXTED_KINDS) for key in fields):
        return None
    texts = dict(record)
    for key in fields:
        value = texts.get(key)
        if isinstance(value, bool):
            texts[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            texts[key] = json.dumps(value, ensure_ascii=False)
    return texts


def _read_json_as_text(path: Path, name: str) -> pl.DataFrame | None:
    """The JSON array read again with its :func:`mixed_fields` as text, None when no field mixes kinds; an
    InvalidFileError saying what and where when it is no valid array of objects (:func:`_json_records`). The file is
    loaded whole, as Polars' reader loads it."""
    records = _json_records(path, name)
    fields = mixed_fields(records)
    if not fields:
        return None
    texts = io.BytesIO()
    texts.write(b"[")
    for index, record in enumerate(records):
        texted = _as_text(record, fields)
        texts.write(b",\n" if index else b"\n")
        texts.write(json.dumps(record if texted is None else texted).encode())
    texts.write(b"\n]")
    del records
    texts.seek(0)
    try:
        return pl.read_json(texts, infer_schema_length=None)
    except _READ_ERRORS as error:
        raise _json_unreadable(name, error) from error


def _booleans_read_as_numbers(path: Path, frame: pl.DataFrame) -> bool:
    """Whether Polars' JSON array reader read a boolean as a number (``[{"a": true}, {"a": 2}]``: 1 and 2; its
    NDJSON reader refuses it): a number column holding a 1 or a 0 holds ``true`` or ``false`` when read as text
    (only those columns are read again, when the file holds the bytes ``true`` or ``false`` at all)."""
    numbers = [index for index, dtype in enumerate(frame.dtypes) if dtype.is_numeric()]
    if not numbers:
        return False
    ones = frame.select(((pl.nth(numbers) == 0) | (pl.nth(numbers) == 1)).any()).row(0)
    suspects = [frame.columns[index] for index, found in zip(numbers, ones, strict=True) if found]
    if not suspects:
        return False
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"true") < 0 and data.find(b"false") < 0:
            return False
    texts = pl.read_json(path, schema=dict.fromkeys(suspects, pl.String()))  # those columns only
    return any(texts.select(pl.all().is_in(["true", "false"]).any()).row(0))


def mixed_ndjson_fields(path: Path, name: str, polars_error: BaseException) -> list[str]:
    """After Polars failed to read the NDJSON file: its :func:`mixed_fields`, read a line at a time (bounded
    memory), or the :func:`_ndjson_error` when a line is no JSON object or when no field mixes kinds."""
    fields = mixed_fields(_ndjson_records(path, name))
    if not fields:
        raise _ndjson_error(path, name, polars_error)
    return fields


def write_ndjson_as_text(path: Path, fields: Collection[str], sink: BinaryIO) -> None:
    """The NDJSON file's records (every line a JSON object: :func:`mixed_ndjson_fields` checked them) written to
    ``sink`` a line at a time with ``fields`` as text (:func:`_as_text`). A line with nothing to change is copied as
    it is; one without a boolean, an array or a nested object is not even parsed."""
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, 1):
            line = (raw.removeprefix(_UTF8_BOM) if line_number == 1 else raw).rstrip(b"\r\n")
            if not line.strip():
                continue
            if line.count(b"{") > 1 or _MAY_HOLD_TEXTED.search(line):
                texts = _as_text(json.loads(line), fields)
                if texts is not None:
                    line = json.dumps(texts).encode()
            sink.write(line)
            sink.write(b"\n")


def _reject_binary_json(head: bytes, name: str) -> None:
    description = _describe_magic(head)
    if description is not None or head.startswith(_UTF16_BOMS):
        what = description or "UTF-16 text"
        raise InvalidFileError(f"{name}: this is {what}, not UTF-8 JSON", {"file": name})


_BRACKET_STEP = np.zeros(256, dtype=np.int8)
_BRACKET_STEP[[ord("{"), ord("[")]], _BRACKET_STEP[[ord("}"), ord("]")]] = 1, -1
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def _check_json_depth(path: Path, name: str) -> None:
    """Refuse JSON text nested deeper than :data:`MAX_NESTING_DEPTH`: the brackets outside strings are
    counted in one pass over the bytes, a chunk at a time, with NumPy (no Python loop over characters)."""
    depth, in_string, backslashes, line = 0, False, 0, 1
    with path.open("rb") as handle:
        while chunk := handle.read(JSON_SCAN_CHUNK_BYTES):
            data = np.frombuffer(chunk, dtype=np.uint8)
            quotes = np.flatnonzero(data == _QUOTE)
            if quotes.size:
                quotes = quotes[~_escaped(data, quotes, backslashes)]
            steps = _BRACKET_STEP[data]
            brackets = np.flatnonzero(steps)
            # a bracket is inside a string when an odd number of string quotes comes before it (in the file)
            brackets = brackets[(np.searchsorted(quotes, brackets) + in_string) % 2 == 0]
            if brackets.size:
                levels = depth + np.cumsum(steps[brackets], dtype=np.int64)
                if levels.max() > MAX_NESTING_DEPTH:
                    position = int(brackets[np.argmax(levels > MAX_NESTING_DEPTH)])
                    raise _too_deep(name, {"line": line + chunk.count(b"\n", 0, position)})
                depth = int(levels[-1])
            in_string = (in_string + quotes.size) % 2 == 1
            trailing = len(chunk) - len(chunk.rstrip(b"\\"))
            backslashes = backslashes + trailing if trailing == len(chunk) else trailing
            line += chunk.count(b"\n")


def _escaped(data: np.ndarray, quotes: np.ndarray, carried: int) -> np.ndarray:
    """Which of the quote positions follow an odd run of backslashes (``carried``: the run that ended the
    previous chunk). Backslashes are rare: only the quotes right after one are looked at."""
    runs = np.zeros(quotes.size, dtype=np.int64)
    runs[quotes == 0] = carried
    after = np.flatnonzero((quotes > 0) & (data[np.maximum(quotes - 1, 0)] == _BACKSLASH))
    if after.size:
        backslash = np.flatnonzero(data == _BACKSLASH)
        starts = backslash[np.concatenate(([True], np.diff(backslash) != 1))]  # first of each run
        ends = quotes[after]
        first = starts[np.searchsorted(starts, ends - 1, side="right") - 1]
        runs[after] = ends - first + np.where(first == 0, carried, 0)
    return runs % 2 == 1


def _json_unreadable(name: str, polars_error: BaseException) -> InvalidFileError:
    return InvalidFileError(f"{name}: could not be read as JSON records ({_first_line(polars_error)})", {"file": name})


def _json_records(path: Path, name: str, *, exact: bool = False) -> list[dict[str, Any]]:
    """Slow path, only after Polars failed (or read a boolean as a number): the records of the JSON array, parsed
    by the json module; an InvalidFileError saying what and where when the file is not UTF-8, not standard JSON or
    not an array of objects. ``exact``: each number is its text as written (:class:`_NumberText`)."""
    text = _json_text(path, name)
    try:
        document = (_EXACT_DECODER if exact else _DECODER).decode(text)
    except json.JSONDecodeError as error:
        raise InvalidFileError(
            f"{name}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            {"file": name, "line": error.lineno, "column": error.colno},
        ) from None
    except _NonStandardJson as error:
        raise InvalidFileError(f"{name}: {error}", {"file": name}) from None
    if not isinstance(document, list):
        raise InvalidFileError(
            f"{name}: found {_json_kind(document)}, expected an array of records", {"file": name, "line": 1}
        )
    if not all(isinstance(value, dict) for value in document):
        for index, (offset, value) in enumerate(_array_elements(text)):
            if not isinstance(value, dict):
                line = text.count("\n", 0, offset) + 1
                column = offset - text.rfind("\n", 0, offset)
                raise InvalidFileError(
                    f"{name}: element {index + 1} of the array (line {line}, column {column}) is "
                    f"{_json_kind(value)}, not an object: expected an array of records",
                    {"file": name, "line": line, "column": column, "element": index + 1},
                )
    return document


def _ndjson_error(path: Path, name: str, polars_error: BaseException) -> InvalidFileError:
    """Slow path, only after Polars failed: check line by line to name the first bad line."""
    try:
        seen_record = any(True for _ in _ndjson_records(path, name))
    except InvalidFileError as error:
        return error
    if not seen_record:
        return InvalidFileError(f"{name}: the file is empty", {"file": name})
    return ndjson_unreadable(name, polars_error)


def ndjson_unreadable(name: str, polars_error: BaseException) -> InvalidFileError:
    return InvalidFileError(f"{name}: could not be read as NDJSON ({_first_line(polars_error)})", {"file": name})


def _ndjson_records(path: Path, name: str, *, exact: bool = False) -> Iterator[dict[str, Any]]:
    """The records of the NDJSON file, parsed by the json module a line at a time (blank lines skipped); an
    InvalidFileError naming the first line that is not UTF-8, not standard JSON or not an object. ``exact``: each
    number is its text as written (:class:`_NumberText`)."""
    decoder = _EXACT_DECODER if exact else _DECODER
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, 1):
            if line_number == 1:
                raw = raw.removeprefix(_UTF8_BOM)
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_utf8(name, raw, error, line_offset=line_number - 1) from None
            try:
                value = decoder.decode(line)
            except json.JSONDecodeError as error:
                raise InvalidFileError(
                    f"{name}: malformed JSON at line {line_number}, column {error.colno}: {error.msg}",
                    {"file": name, "line": line_number, "column": error.colno},
                ) from None
            except _NonStandardJson as error:
                raise InvalidFileError(
                    f"{name}: line {line_number}: {error}", {"file": name, "line": line_number}
                ) from None
            if not isinstance(value, dict):
                raise InvalidFileError(
                    f"{name}: line {line_number} holds {_json_kind(value)}, not an object "
                    "(NDJSON has one JSON object per line)",
                    {"file": name, "line": line_number, "column": 1},
                )
            yield value


def _array_elements(text: str) -> Iterator[tuple[int, Any]]:
    """(character offset, value) of each element of the valid JSON array ``text``."""
    decoder = json.JSONDecoder()
    index = _JSON_WHITESPACE.match(text, 0).end() + 1  # type: ignore[union-attr]
    while True:
        index = _JSON_WHITESPACE.match(text, index).end()  # type: ignore[union-attr]
        if text[index] == "]":
            return
        value, end = decoder.raw_decode(text, index)
        yield index, value
        index = _JSON_WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
        if text[index] == ",":
            index += 1


def _not_utf8(name: str, raw: bytes, error: UnicodeDecodeError, *, line_offset: int = 0) -> InvalidFileError:
    line = raw.count(b"\n", 0, error.start) + 1 + line_offset
    column = error.start - raw.rfind(b"\n", 0, error.start)
    return InvalidFileError(
        f"{name}: not UTF-8 text (byte 0x{raw[error.start]:02x} at line {line}, column {column}); JSON must be UTF-8",
        {"file": name, "line": line, "column": column},
    )


class _NonStandardJson(ValueError):
    pass


def _reject_constant(constant: str) -> None:
    raise _NonStandardJson(f"{constant} is not valid JSON (write null or a number)")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_EXACT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_NumberText, parse_int=_NumberText)


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, _NumberText):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
