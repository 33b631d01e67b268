"""A delimited file too large for memory, read as :func:`agents.readers.read_table_with_report` reads it, into a
typed Parquet file (the *spill*) that agents scan lazily, with bounded memory whatever the file's size.

The reader's rules, each kept (the tests compare the two readers on the same files):
- the dialect (encoding, separator, quote) sniffed from the first 64 KiB; a header wider than ``max_columns``
  refused before anything is parsed; a file that is not UTF-8 (cp1252, Latin-1, UTF-16) read through a UTF-8 copy
  written a chunk at a time, as is one whose first non-UTF-8 byte comes after the sniff window;
- the schema inferred from the first 10,000 rows; a column whose later value does not fit its inferred type is
  widened (to Float64, else text) and the file parsed again;
- integer columns parsed as text, then typed only when every value converts and none is written otherwise (a
  leading zero, ``-0``, ``+5``: a code stays text), else Float64 when every value is a number, else text;
  decimal columns parsed as text too, then Float64 when every value converts, with the layout of their text when
  Polars would write it otherwise (``41``, ``12.50``: ``agents.layouts.number_layouts``);
- a short row (a missing trailing field) refused with its line number, as are quoting errors;
- blank-named columns without a value dropped, blank and repeated names made unique, the renames reported;
- text columns of ISO dates and timestamps typed when every value reads back as written (agents.layouts).

How: Polars' streaming engine parses the file once into a first Parquet file (numbers still text), one streaming
query decides every number column and the short-row check, the date layouts are found by another
(``find_layouts`` on the streaming engine), and a last streaming pass writes the typed spill; the first file is
then removed. Memory is bounded by a few batches of rows and the per-column aggregates, not by the file.

A Parquet or NDJSON file (:func:`spill_file` chooses by the upload name's extension) is read as the reader reads it
too: the same checks first (PAR1 markers, the schema's width and depth; for NDJSON a binary or UTF-16 file, the
depth of the JSON text), then the columns tidied as ``agents.readers._tidy_columns`` tidies them (struct columns
flattened one level, lists and deeper structs as JSON text, Null columns as text, blank-named columns without a
value dropped, names made unique) and ISO date text typed, every pass a lazy query on the streaming engine. A
Parquet file is scanned where it is; an NDJSON file (its schema inferred from every line, as the reader does: the
inference keeps per-field types, not the values) is first parsed into an intermediate Parquet file, as a CSV is
(its BOM, which Polars does not skip, dropped in a copy first). When Polars cannot read it because a field mixes
JSON kinds (``agents.readers.mixed_fields``), the lines are read again a line at a time, the fields found, and
a copy with those fields as text parsed instead. A file holding numbers Polars does not read back as written
(``agents.readers.exact_numbers_kind``: ``1.123456789012345678``, ``1e-400``, integers past 128 bits) is found by
streaming queries over its number texts, and such fields are taken, as the reader takes them, from a copy whose long
numbers are strings (``_spill_quoted_ndjson``), else from one the json module writes a line at a time. The JSON
array (``.json``) and XLSX formats have no spill: the readers load them whole.

A failure of the system while a file is written or read (the disk full, a quota, an I/O error: an ``OSError``, or
a Polars error wrapping one, ``... (os error 28)``) is raised as the ``OSError`` it is, never as an
``InvalidFileError``: it says nothing of the user's file, and the worker retries such a fault later.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import mmap
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
import pyarrow.parquet as pq

from agents.as_read import (
    AS_READ_KEY,
    AS_READ_SUFFIX,
    NOTHING,
    AsRead,
    cells_query,
    covered,
    hidden_name,
    otherwise_text,
    sunk,
)
from agents.errors import InvalidFileError
from agents.layouts import (
    BEYOND_DOUBLE,
    Layout,
    apply_layouts,
    beyond_double,
    beyond_double_columns,
    boolean_layouts,
    find_layouts,
    long_number,
    maybe_beyond_double,
    number_layouts,
)
from agents.layouts import describe as describe_layouts
from agents.options import DEFAULT_MAX_COLUMNS
from agents.readers import (
    _DOUBLE_INTEGERS,
    _FIRST_TOKENS,
    _MARK,
    _QUOTED_NUMBER,
    _READ_ERRORS,
    _SMALLEST_NORMAL,
    _UTF8_BOM,
    BEYOND_INT128,
    FORMATS,
    INFER_SCHEMA_LENGTH,
    MAX_NESTING_DEPTH,
    TEXT_FORMATS,
    TRANSCODE_CHUNK_BYTES,
    CsvDialect,
    Format,
    NotUtf8,
    ReadReport,
    _check_json_depth,
    _check_not_empty,
    _every_line_full,
    _find_ragged_row,
    _first_line,
    _json_lines,
    _may_have_short_rows,
    _nesting_depth,
    _number_tokens,
    _past_int128,
    _raise_if_control_characters,
    _reject_binary_json,
    _unique_names,
    _written_otherwise,
    blank_line_rows,
    check_column_count,
    check_header_width,
    may_hold_long_numbers,
    mixed_ndjson_fields,
    ndjson_unreadable,
    numbers_no_double_holds,
    parquet_schema,
    parse_widening,
    sniff_dialect,
    tidy_plan,
    transcoded_to_utf8,
    write_exact_text,
    write_ndjson_as_text,
)

SPILL_COMPRESSION: Final = "lz4"  # fast to write and to scan (agents.search.kept measures it against snappy)
ROW_GROUP_ROWS: Final = 100_000  # row groups with statistics: a filter skips those it excludes
SIZE_SAMPLE_ROWS: Final = 1_000  # rows of a Parquet file read to estimate its size in memory (parquet_data_bytes)
_OS_ERROR: Final = re.compile(r"(?P<reason>[^:]*) \(os error (?P<errno>\d+)\)")  # a Rust io::Error from the OS


@dataclass(frozen=True)
class Spilled:
    """A typed spill: the Parquet file, the read report (as the in-memory reader's) and the number of rows."""

    path: Path
    report: ReadReport
    rows: int
    as_read: AsRead = NOTHING  # the cells its layouts write otherwise, in a file beside it (agents.as_read)

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)


MetadataOf = Callable[[ReadReport], Mapping[str, str]]
SPILLED_FORMATS: Final = frozenset({"csv", "parquet", "ndjson"})  # agents.readers.FORMATS' formats with a spill


def spill_file(
    path: Path,
    name: str,
    target: Path,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    metadata: MetadataOf | None = None,
    as_read: bool = False,
    hidden_as_read: bool = False,
) -> Spilled:
    """Read the file at ``path`` (upload name ``name``, whose extension selects the format as
    :func:`agents.readers.read_table_with_report`'s does) into the typed Parquet file ``target``: :func:`spill_csv`,
    :func:`spill_parquet` or :func:`spill_ndjson`. Raises ValueError for a format without a spill (JSON, XLSX).
    ``as_read``: a delimited file's cells its layouts write otherwise are kept (:attr:`Spilled.as_read`);
    ``hidden_as_read``: they are kept in the spill itself, as hidden columns named in its metadata (a search's kept
    dataset: agents.as_read.AS_READ_KEY)."""
    file_format = FORMATS.get(Path(name).suffix.lower())
    if file_format not in SPILLED_FORMATS:
        raise ValueError(f"{name}: no spill for this format (only {', '.join(sorted(SPILLED_FORMATS))})")
    try:
        if file_format == "parquet":
            return spill_parquet(path, name, target, max_columns=max_columns, metadata=metadata)
        if file_format == "ndjson":
            return spill_ndjson(path, name, target, max_columns=max_columns, metadata=metadata)
        return spill_csv(
            path,
            name,
            target,
            max_columns=max_columns,
            metadata=metadata,
            as_read=as_read,
            hidden_as_read=hidden_as_read,
        )
    except RecursionError as error:  # as read_table_with_report maps them
        raise InvalidFileError(f"{name}: nested too deeply to be read", {"file": name}) from error
    except NotImplementedError as error:
        raise InvalidFileError(f"{name}: cannot be read: {error or 'unsupported content'}", {"file": name}) from error


def check_columns(path: Path, name: str, max_columns: int) -> None:
    """The checks of a file to spill that need no pass over its data, made before any agent runs: a delimited
    file's header wider than ``max_columns``; a Parquet file's markers, its schema's width and depth; an NDJSON
    file empty or binary (its columns are known only once every line is read)."""
    file_format = FORMATS.get(Path(name).suffix.lower())
    if file_format == "csv":
        dialect = sniff_dialect(path, name, default_separator=TEXT_FORMATS[Path(name).suffix.lower()])
        check_header_width(path, name, dialect, max_columns)
    elif file_format == "parquet":
        parquet_schema(path, name, max_columns)
    elif file_format == "ndjson":
        _reject_binary_json(_check_not_empty(path, name), name)


def parquet_data_bytes(path: Path) -> int | None:
    """What a Parquet file's data is likely to take once read, several times its size on disk: the larger of the
    uncompressed size its footer declares (the sum of its row groups' ``total_byte_size``) and the size in memory
    of its first :data:`SIZE_SAMPLE_ROWS` rows scaled to all of its rows (the footer's sizes are those of the encoded
    data: a dictionary-encoded text column of long repeated values declares little more than its dictionary). None
    when the footer cannot be read (not Parquet: the reader says so). No row is read from a file wider than
    DEFAULT_MAX_COLUMNS or nested deeper than MAX_NESTING_DEPTH (Polars' reader would overflow its stack on a few
    hundred levels): the spill refuses those."""
    try:
        footer = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - whatever pyarrow raises on a file that is not Parquet
        return None
    declared = sum(footer.row_group(index).total_byte_size for index in range(footer.num_row_groups))
    try:
        schema = pl.read_parquet_schema(path)
        if (
            len(schema) > DEFAULT_MAX_COLUMNS
            or max(map(_nesting_depth, schema.values()), default=0) > MAX_NESTING_DEPTH
        ):
            return declared
        sample = pl.scan_parquet(path).head(SIZE_SAMPLE_ROWS).collect()
    except _READ_ERRORS:
        return declared
    sampled = sample.estimated_size() * footer.num_rows // max(sample.height, 1)
    return max(declared, sampled)


def spill_csv(
    path: Path,
    name: str,
    target: Path,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    metadata: MetadataOf | None = None,
    as_read: bool = False,
    hidden_as_read: bool = False,
) -> Spilled:
    """Read the CSV/TSV at ``path`` (upload name ``name``) into the typed Parquet file ``target`` (its directory
    also holds the intermediate files while this runs), with ``metadata(read report)`` in its footer; ``as_read``:
    with the cells its layouts write otherwise, in a file beside it (:func:`as_read_path`); ``hidden_as_read``: in
    hidden columns of the spill (:func:`spill_file`)."""
    options = (as_read, hidden_as_read)
    dialect = sniff_dialect(path, name, default_separator=TEXT_FORMATS.get(Path(name).suffix.lower(), ","))
    check_header_width(path, name, dialect, max_columns)
    raw = target.with_name(f".{target.name}.text")
    try:
        if dialect.encoding == "utf-8":
            try:
                return _spill_utf8(path, name, dialect, raw, target, max_columns, metadata, *options)
            except NotUtf8:
                # A non-UTF-8 byte after the sniff window: the header read as UTF-8 may not be what cp1252 gives.
                dialect = CsvDialect(dialect.separator, "cp1252", dialect.quote_char, header=None)
        with transcoded_to_utf8(path, dialect.encoding, target.parent) as utf8_copy:
            return _spill_utf8(utf8_copy, name, dialect, raw, target, max_columns, metadata, *options)
    finally:
        raw.unlink(missing_ok=True)


def _spill_utf8(
    path: Path,
    name: str,
    dialect: CsvDialect,
    raw: Path,
    target: Path,
    max_columns: int,
    metadata: MetadataOf | None,
    as_read: bool = False,
    hidden_as_read: bool = False,
) -> Spilled:
    integers, floats, booleans = _parse_to_parquet(path, name, dialect, raw)
    text = pl.scan_parquet(raw)
    if len(text.collect_schema()) > 1:  # blank lines hold no record (readers.blank_line_rows)
        counts = text.select(pl.len(), pl.all_horizontal(pl.all().is_null()).any()).collect(engine="streaming")
        if counts.item(0, 1):
            blank = blank_line_rows(path, dialect, int(counts.item(0, 0)))
            if blank:
                names = text.collect_schema().names()
                row = "".join(names) + "_row"  # a name no column has
                text = (
                    text.with_row_index(row).filter(~pl.col(row).is_in(blank)).select(pl.nth(range(1, len(names) + 1)))
                )
    rows = int(text.select(pl.len()).collect(engine="streaming").item())
    if rows == 0:
        raise InvalidFileError(f"{name}: the file has a header but no data rows", {"file": name})
    schema = text.collect_schema()
    facts = _column_facts(text, schema, integers, floats, booleans)
    typed = _typed_numbers(integers, floats, booleans, facts)
    # a value no double gives back keeps its column text (agents.readers._typed_numbers): a second pass, only over
    # the decimal columns whose values the first pass saw written otherwise and long enough to need it
    longs = [column for column, dtype in typed.items() if dtype == pl.Float64 and facts.get(f"long:{column}")]
    kept_as_text = beyond_double_columns(text, longs, engine="streaming")
    typed = {column: dtype for column, dtype in typed.items() if column not in kept_as_text}
    last = list(schema)[-1]
    if (
        len(schema) > 1
        and facts[f"nulls:{last}"] > 0
        and not _every_line_full(path, dialect, len(schema), rows)
        and _may_have_short_rows(path, dialect.separator, len(schema))
    ):
        ragged = _find_ragged_row(path, name, dialect)
        if ragged is not None:
            raise ragged
    header = dialect.header
    original = list(header) if header is not None and len(header) == len(schema) else list(schema)
    # Columns are addressed by position: a name such as "*" or "^a$" means something else to pl.col.
    dropped = [
        index + 1
        for index, blank in enumerate(original)
        if not blank.strip() and facts[f"nulls:{list(schema)[index]}"] == rows
    ]
    planned: list[tuple[int, str, pl.Expr]] = []
    for index, (column, dtype) in enumerate(schema.items()):
        if index + 1 in dropped:
            continue
        expression = pl.nth(index)
        if column in typed and typed[column] == pl.Boolean:  # Polars casts no text to Boolean
            expression = expression.str.to_lowercase() == "true"
        elif column in typed:
            expression = expression.cast(typed[column])
        elif dtype == pl.Null:
            expression = expression.cast(pl.String)
        planned.append((index + 1, original[index], expression))
    if not planned:
        raise InvalidFileError(f"{name}: the file has no named column and no values", {"file": name})
    check_column_count(len(planned), name, max_columns)
    final_names, renamed = _unique_names([(position, proposed) for position, proposed, _ in planned])
    columns_out = [expression.alias(final) for (_, _, expression), final in zip(planned, final_names, strict=True)]
    lazy = text.select(columns_out)
    layouts = find_layouts(lazy, engine="streaming")
    final = {list(schema)[position - 1]: name for (position, _, _), name in zip(planned, final_names, strict=True)}
    decimals = [column for column, dtype in typed.items() if dtype == pl.Float64]
    by_source: dict[str, Layout] = {
        **number_layouts(
            text,
            decimals,
            engine="streaming",
            counted=True,
            polars_otherwise={column: facts[f"otherwise:{column}"] for column in floats},
        )
    }
    numbers = {final[column]: layout for column, layout in by_source.items()}
    truths = [column for column, dtype in typed.items() if dtype == pl.Boolean]
    spelled_by_source = boolean_layouts(text, truths, engine="streaming")
    spelled = {final[column]: layout for column, layout in spelled_by_source.items()}
    by_source.update(spelled_by_source)
    positions = {list(schema)[position - 1]: position - 1 for position, _, _ in planned}
    typed_as = {list(schema)[position - 1]: expression for position, _, expression in planned}
    cells = _as_read_cells(text, positions, typed_as, by_source, target).renamed(final) if as_read else NOTHING
    hidden: dict[str, str] = {}
    texts_as_read: list[pl.Expr] = []
    if hidden_as_read:  # the cells' texts in hidden columns of the spill, null where the layout gives the text back
        for column, key in covered(by_source, [c for c in positions if c in typed_as]).items():
            hidden[final[column]] = hidden_name(key, final_names)
            text_of_cell = otherwise_text(pl.nth(positions[column]), typed_as[column], typed[column], by_source[column])
            texts_as_read.append(text_of_cell.alias(hidden[final[column]]))
    report: ReadReport = {
        "format": "csv",
        "encoding": dialect.encoding,
        "separator": dialect.separator,
        "quote_char": dialect.quote_char,
        "sheet": None,
        "rows": rows,
        "columns": len(planned),
        "renamed_columns": renamed,
        "dropped_empty_columns": dropped,
        "flattened_columns": [],
        "json_encoded_columns": [],
        "temporal_columns": describe_layouts(layouts),
        "number_columns": describe_layouts(numbers),
        "boolean_columns": describe_layouts(spelled),
    }
    if kept_as_text:
        report["numbers_kept_as_text"] = {final[column]: item for column, item in kept_as_text.items()}
    if texts_as_read:  # after the data's columns (find_layouts above looked at those only)
        lazy = text.select(*columns_out, *texts_as_read)
    extra = {AS_READ_KEY: json.dumps(hidden)} if hidden else {}
    spilled = _write_spill(apply_layouts(lazy, layouts), report, target, metadata, extra)
    return dataclasses.replace(spilled, as_read=cells)


def as_read_path(target: Path) -> Path:
    """The file of a spill's cells its layouts write otherwise, beside the spill ``target``."""
    return target.with_name(f"{target.name}.{AS_READ_SUFFIX}")


def _as_read_cells(
    text: pl.LazyFrame,
    positions: Mapping[str, int],
    typed_as: Mapping[str, pl.Expr],
    layouts: Mapping[str, Layout],
    target: Path,
) -> AsRead:
    """The :class:`agents.as_read.AsRead` of the spilled columns (named as in ``text``, at ``positions``, typed by
    ``typed_as``) whose ``layouts`` write some value otherwise: one streaming pass over them, sunk to
    :func:`as_read_path` (NOTHING, and no file, when there is no such cell)."""
    columns = covered(layouts, [name for name in positions if name in typed_as])
    if not columns:
        return NOTHING
    pairs = text.select(
        *(pl.nth(positions[name]).alias(f"t{key}") for name, key in columns.items()),
        *(typed_as[name].alias(f"v{key}") for name, key in columns.items()),
    )
    try:
        return sunk(cells_query(pairs, columns, layouts), columns, as_read_path(target))
    except pl.exceptions.PolarsError as error:
        _raise_system_error(error)
        raise


def _write_spill(
    typed: pl.LazyFrame,
    report: ReadReport,
    target: Path,
    metadata: MetadataOf | None,
    extra: Mapping[str, str] | None = None,
) -> Spilled:
    """The typed plan sunk to the spill ``target`` (row groups with statistics, ``metadata(report)`` and ``extra``
    in its footer) on the streaming engine."""
    footer = {**(metadata(report) if metadata is not None else {}), **(extra or {})}
    _sink(typed, target, row_group_size=ROW_GROUP_ROWS, metadata=footer or None)
    return Spilled(target, report, report["rows"])


def _sink(lazy: pl.LazyFrame, target: Path, **options: Any) -> None:
    """``lazy`` written to the Parquet file ``target`` on the streaming engine; a failure of the system (the disk
    full...) raised as the OSError it is, even when Polars wraps it in one of its own errors."""
    try:
        lazy.sink_parquet(target, compression=SPILL_COMPRESSION, engine="streaming", **options)
    except pl.exceptions.PolarsError as error:
        _raise_system_error(error)
        raise


def _raise_system_error(error: BaseException) -> None:
    """Raise the OSError behind ``error`` (:func:`system_error`), if there is one."""
    system = system_error(error)
    if system is error:
        raise error
    if system is not None:
        raise system from error


def system_error(error: BaseException) -> OSError | None:
    """The operating system's error behind ``error`` (an OSError with an errno, or a Polars error whose message
    ends with one: ``... underlying IO error: No space left on device (os error 28)``), else None: a fault of the
    machine (the disk full, a quota, an I/O error), never one of the file being read."""
    if isinstance(error, OSError):
        return error if error.errno is not None else None
    found = _OS_ERROR.search(str(error))
    if found is None:
        return None
    code = int(found["errno"])
    return OSError(code, found["reason"].strip() or errno.errorcode.get(code, "system error"))


def _parse_to_parquet(
    path: Path, name: str, dialect: CsvDialect, raw: Path
) -> tuple[dict[str, pl.DataType], list[str], list[str]]:
    """The UTF-8 file at ``path`` parsed into the Parquet file ``raw``, number and boolean columns as text (the
    integer ones with their inferred types, the decimal ones and the boolean ones are returned), a column widened
    for each value that does not fit its inferred type."""
    scan = partial(pl.scan_csv, path, separator=dialect.separator, quote_char=dialect.quote_char, raise_if_empty=True)

    def parse(overrides: dict[str, pl.DataType]) -> tuple[dict[str, pl.DataType], list[str], list[str]]:
        schema = scan(infer_schema_length=INFER_SCHEMA_LENGTH).collect_schema()
        integers = {c: dtype for c, dtype in schema.items() if dtype.is_integer() and c not in overrides}
        floats = [c for c, dtype in {**schema, **overrides}.items() if dtype == pl.Float64]
        booleans = [c for c, dtype in {**schema, **overrides}.items() if dtype == pl.Boolean]
        as_text = dict.fromkeys([*integers, *floats, *booleans], pl.String())
        _sink(scan(schema={**schema, **overrides, **as_text}), raw)
        return integers, floats, booleans

    return parse_widening(path, name, dialect, parse)


def _column_facts(
    text: pl.LazyFrame,
    schema: Mapping[str, pl.DataType],
    integers: Mapping[str, pl.DataType],
    floats: list[str],
    booleans: list[str],
) -> dict[str, Any]:
    """One streaming pass: every column's null count, per integer column read as text whether every value
    converts to its type, whether one is written otherwise than the integer writes it, and whether one is not a
    number, per decimal column read as text whether one is not a number and how many values Polars writes otherwise
    (``1e3`` -> ``1000.0``), and per boolean one whether one is no ``true``/``false`` in any case."""
    exprs: list[pl.Expr] = []
    for index, column in enumerate(schema):
        value = pl.nth(index)  # by position: a name such as "*" or "^a$" means something else to pl.col
        exprs.append(value.null_count().alias(f"nulls:{column}"))
        if column in integers:
            not_number = value.cast(pl.Float64, strict=False).is_null() & value.is_not_null()
            exprs += [
                value.cast(integers[column], strict=False).null_count().alias(f"cast:{column}"),
                _written_otherwise(value).any().alias(f"code:{column}"),
                not_number.any().alias(f"float:{column}"),
                # a value that may be one no double holds, should the column become Float64 (not an Int64)
                (long_number(value) & (value.cast(pl.Float64, strict=False).cast(pl.String) != value))
                .any()
                .alias(f"long:{column}"),
            ]
        elif column in floats:
            parsed = value.cast(pl.Float64, strict=False)
            not_number = parsed.is_null() & value.is_not_null()
            exprs.append(not_number.any().alias(f"float:{column}"))
            # the values Polars writes otherwise (agents.layouts.number_layouts' count), in this pass; and whether one
            # of them may be a value no double holds (agents.layouts.maybe_beyond_double)
            otherwise = parsed.cast(pl.String) != value
            exprs.append(otherwise.sum().alias(f"otherwise:{column}"))
            exprs.append((otherwise & long_number(value)).any().alias(f"long:{column}"))
        elif column in booleans:
            exprs.append((~value.str.to_lowercase().is_in(["true", "false"])).any().alias(f"bool:{column}"))
    return text.select(exprs).collect(engine="streaming").row(0, named=True)


def _typed_numbers(
    integers: Mapping[str, pl.DataType], floats: list[str], booleans: list[str], facts: Mapping[str, Any]
) -> dict[str, pl.DataType]:
    """The type each number or boolean column read as text takes (agents.readers._typed_numbers' rules); text ones
    absent."""
    typed: dict[str, pl.DataType] = {column: pl.Float64() for column in floats if not facts[f"float:{column}"]}
    typed.update((column, pl.Boolean()) for column in booleans if not facts[f"bool:{column}"])
    for column, dtype in integers.items():
        if facts[f"code:{column}"]:
            continue
        if facts[f"cast:{column}"] == facts[f"nulls:{column}"]:
            typed[column] = dtype
        elif not facts[f"float:{column}"]:
            typed[column] = pl.Float64()
    return typed


def spill_parquet(
    path: Path,
    name: str,
    target: Path,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    metadata: MetadataOf | None = None,
) -> Spilled:
    """Read the Parquet file at ``path`` (upload name ``name``) as the reader does into the typed Parquet file
    ``target``, with ``metadata(read report)`` in its footer; the file is scanned where it is, a row group at a
    time."""
    schema = parquet_schema(path, name, max_columns)
    if not schema:
        raise InvalidFileError(f"{name}: the Parquet file has no columns", {"file": name})
    try:
        return _spill_tidied(pl.scan_parquet(path), name, "parquet", {}, target, max_columns, metadata)
    except _READ_ERRORS as error:  # a corrupt page shows only when it is read
        _raise_system_error(error)
        raise InvalidFileError(
            f"{name}: could not be read as Parquet ({_first_line(error)})", {"file": name}
        ) from error


def spill_ndjson(
    path: Path,
    name: str,
    target: Path,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    metadata: MetadataOf | None = None,
) -> Spilled:
    """Read the NDJSON file at ``path`` (upload name ``name``) as the reader does into the typed Parquet file
    ``target``, with ``metadata(read report)`` in its footer. The schema is inferred from every line, as the reader
    infers it (Polars keeps each field's types while it reads, not the values); the lines are then parsed into an
    intermediate Parquet file next to ``target``, removed afterwards, as is the BOM-less copy of a file with a BOM.
    A file holding numbers Polars does not read back as written is read as the reader reads it too
    (:func:`_spill_exact_ndjson`)."""
    head = _check_not_empty(path, name)
    _reject_binary_json(head, name)
    _check_json_depth(path, name)
    raw = target.with_name(f".{target.name}.raw")
    bomless = target.with_name(f".{target.name}.ndjson")
    texts = target.with_name(f".{target.name}.text.ndjson")
    try:
        source = path
        if head.startswith(_UTF8_BOM):  # Polars' NDJSON reader does not skip a BOM
            with path.open("rb") as handle, bomless.open("wb") as copy:
                handle.seek(len(_UTF8_BOM))
                shutil.copyfileobj(handle, copy, TRANSCODE_CHUNK_BYTES)
            source = bomless
        # the reader's test of numbers no double holds (agents.readers._read_ndjson), in bounded memory
        scanned = may_hold_long_numbers(path)
        kind = _exact_numbers_kind(path) if scanned else None
        original = True  # whether raw is the file as Polars parses it (else a copy with mixed fields as text)
        try:
            schema = _parse_ndjson(source, raw)
        except _READ_ERRORS as error:
            _raise_system_error(error)
            if kind or _exact_numbers_kind(path):  # 1e400, or an integer past 128 bits: the reader's slow path
                return _spill_exact_ndjson(path, name, target, max_columns, metadata, None)
            fields = mixed_ndjson_fields(path, name, error)  # or the reader's error for the file
            with texts.open("wb") as sink:
                write_ndjson_as_text(path, fields, sink)
            try:
                schema = _parse_ndjson(texts, raw)
            except _READ_ERRORS as again:
                _raise_system_error(again)
                raise ndjson_unreadable(name, again) from again
            original = False
        if schema and not scanned and _may_have_underflowed(path, pl.scan_parquet(raw)):
            kind = _exact_numbers_kind(path)
        if kind == "numbers" or (kind == "integers" and schema and _wide_floats(pl.scan_parquet(raw))):
            parsed = raw if schema and original else None
            return _spill_exact_ndjson(path, name, target, max_columns, metadata, parsed)
        if not schema:  # the reader's frame of no columns: one row per record, none when there is no record
            if not _has_content(source):
                raise InvalidFileError(f"{name}: the file has no data rows", {"file": name})
            raise InvalidFileError(f"{name}: the records have no fields", {"file": name})
        return _spill_tidied(pl.scan_parquet(raw), name, "ndjson", {"encoding": "utf-8"}, target, max_columns, metadata)
    finally:
        raw.unlink(missing_ok=True)
        bomless.unlink(missing_ok=True)
        texts.unlink(missing_ok=True)


def _exact_numbers_kind(path: Path) -> Literal["numbers", "integers"] | None:
    """:func:`agents.readers.exact_numbers_kind` in bounded memory: aggregates over the candidate number texts
    (:func:`agents.readers._number_tokens`) on the streaming engine, not the texts collected."""
    token, integer = pl.col("token"), pl.col("integer")
    try:
        candidates = _number_tokens(path)
        past, integers = (
            candidates.select(
                (integer & token.cast(pl.Int128, strict=False).is_null()).any().alias("past"),
                integer.any().alias("integers"),
            )
            .collect(engine="streaming")
            .row(0)
        )
        if past:
            return "numbers"
        decimals = candidates.filter(~integer & maybe_beyond_double(token))  # the others read back
        for part in (decimals.head(_FIRST_TOKENS), decimals):  # a file holds such numbers in most of its rows, or none
            if part.select(beyond_double(token).any()).collect(engine="streaming").item():
                return "numbers"
    except _READ_ERRORS as error:
        _raise_system_error(error)
        return None
    return "integers" if integers else None


def _float_values(scan: pl.LazyFrame) -> list[pl.Expr]:
    """The Float64 columns of ``scan`` and the Float64 fields of its struct columns (the reader's test sites)."""
    schema = scan.collect_schema()
    floats = [pl.nth(index) for index, dtype in enumerate(schema.values()) if dtype == pl.Float64]
    for index, dtype in enumerate(schema.values()):
        if isinstance(dtype, pl.Struct):
            floats += [pl.nth(index).struct.field(child.name) for child in dtype.fields if child.dtype == pl.Float64]
    return floats


def _wide_floats(scan: pl.LazyFrame) -> bool:
    """agents.readers._wide_floats over a scan, on the streaming engine."""
    floats = _float_values(scan)
    if not floats:
        return False
    found = scan.select(pl.any_horizontal((value.abs() >= _DOUBLE_INTEGERS).any() for value in floats))
    return bool(found.collect(engine="streaming").item())


def _may_have_underflowed(path: Path, scan: pl.LazyFrame) -> bool:
    """agents.readers._may_have_underflowed over a scan, on the streaming engine."""
    floats = _float_values(scan)
    if not floats:
        return False
    small = scan.select(pl.any_horizontal((value.abs() < _SMALLEST_NORMAL).any() for value in floats))
    if not small.collect(engine="streaming").item():
        return False
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"e-") >= 0 or data.find(b"E-") >= 0


def _spill_exact_ndjson(
    path: Path, name: str, target: Path, max_columns: int, metadata: MetadataOf | None, raw: Path | None
) -> Spilled:
    """The NDJSON file holding numbers Polars does not read back as written, spilled as the reader reads it
    (agents.readers._read_exactly): the fields holding such numbers as text, the numbers as written, listed in the
    read report's ``numbers_kept_as_text``. ``raw``: the file as Polars parsed it, when it could. The fast path
    (:func:`_spill_quoted_ndjson`, Polars only) first, else agents.readers.write_exact_text's copy, a line at a
    time. Intermediate files next to ``target``, removed afterwards."""
    quoted = target.with_name(f".{target.name}.quoted.ndjson")
    quoted_raw = target.with_name(f".{target.name}.quoted.raw")
    exact = target.with_name(f".{target.name}.exact.ndjson")
    exact_raw = target.with_name(f".{target.name}.exact.raw")
    try:
        found = _spill_quoted_ndjson(path, raw, quoted, quoted_raw) if raw is not None else None
        if found is not None:
            lazy, fields = found
        else:
            with exact.open("wb") as sink:
                fields = write_exact_text(path, name, numbers_no_double_holds(path), sink, ndjson=True)
            try:
                schema = _parse_ndjson(exact, exact_raw)
            except _READ_ERRORS as error:
                _raise_system_error(error)
                raise ndjson_unreadable(name, error) from error
            if not schema:
                if not _has_content(exact):
                    raise InvalidFileError(f"{name}: the file has no data rows", {"file": name})
                raise InvalidFileError(f"{name}: the records have no fields", {"file": name})
            lazy = pl.scan_parquet(exact_raw)
        return _spill_tidied(
            lazy, name, "ndjson", {"encoding": "utf-8"}, target, max_columns, metadata, exact_fields=fields
        )
    finally:
        for intermediate in (quoted, quoted_raw, exact, exact_raw):
            intermediate.unlink(missing_ok=True)


def _spill_quoted_ndjson(
    path: Path, raw: Path, quoted: Path, quoted_raw: Path
) -> tuple[pl.LazyFrame, dict[tuple[str, str | None], dict[str, Any]]] | None:
    """agents.readers._read_quoted_json for a spill: a copy of the lines with their long numbers after a ``:`` as
    marked strings written and parsed (``quoted``, ``quoted_raw``) on the streaming engine, the fields holding a
    number Polars did not read back as written found by one streaming query, and the parsed file (``raw``) with
    those fields taken from the copy (a horizontal concatenation of the two scans: a row of one is the row of the
    other). None where the reader's fast path gives up (its slow path reads the file then)."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"\\u001e") >= 0 or data.find(b"\\u001E") >= 0:
            return None
    try:
        lines = _json_lines(path).select(pl.col("line").str.replace_all(*_QUOTED_NUMBER).fill_null(""))
        _sink_lines(lines, quoted)
        if not _parse_ndjson(quoted, quoted_raw):
            return None
    except _READ_ERRORS as error:
        _raise_system_error(error)
        return None
    frame, copy = pl.scan_parquet(raw), pl.scan_parquet(quoted_raw)
    read, texts = frame.collect_schema(), copy.collect_schema()
    heights = pl.concat([frame.select(pl.len()), copy.select(pl.len())]).collect(engine="streaming")
    if texts.names() != read.names() or heights.item(0, 0) != heights.item(1, 0):
        return None
    # (field, field of its objects or None), the copy's text, whether Polars read the field as Float64
    candidates: list[tuple[tuple[str, str | None], pl.Expr, bool]] = []
    read_types = list(read.values())
    for index, (field_name, dtype) in enumerate(texts.items()):
        was = read_types[index]
        if dtype == pl.String:
            candidates.append(((field_name, None), pl.nth(index), was == pl.Float64))
        elif isinstance(dtype, pl.Struct) and isinstance(was, pl.Struct):
            floats = {child.name for child in was.fields if child.dtype == pl.Float64}
            candidates.extend(
                ((field_name, child.name), pl.nth(index).struct.field(child.name), child.name in floats)
                for child in dtype.fields
                if child.dtype == pl.String
            )
    if not candidates:
        return frame, {}
    # per row and candidate: the number text when marked (t), whether no double gives it back (d), whether it is an
    # integer past 128 bits (w); then the aggregates (each flag computed once: beyond_double is costly)
    rows = copy.select(
        pl.when(value.str.starts_with(_MARK)).then(value.str.strip_prefix(_MARK)).alias(f"t{key}")
        for key, (_, value, _) in enumerate(candidates)
    )
    flags: list[pl.Expr] = []
    for key, (_, _, read_float) in enumerate(candidates):
        token = pl.col(f"t{key}")
        integer = token.str.contains(r"^-?[0-9]+$")
        # Polars reads an integer exactly unless its field holds decimals too (Float64), or it is past 128 bits
        wide = _past_int128(token)
        beyond = (beyond_double(token) if read_float else ~integer & beyond_double(token)) & ~wide
        flags += [beyond.fill_null(False).alias(f"d{key}"), wide.fill_null(False).alias(f"w{key}")]
    rows = rows.with_columns(flags)
    aggregates: list[pl.Expr] = []
    for key in range(len(candidates)):
        token, double = pl.col(f"t{key}"), pl.col(f"d{key}")
        held = double | pl.col(f"w{key}")
        aggregates += [
            held.sum().alias(f"n{key}"),
            double.any().alias(f"d{key}"),
            token.filter(double).first().alias(f"e{key}"),
            token.filter(held).first().alias(f"a{key}"),
        ]
    counts = rows.select(aggregates).collect(engine="streaming").row(0, named=True)
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    replaced: dict[str, list[tuple[str | None, int]]] = {}
    for key, (field_key, _, _) in enumerate(candidates):
        if not counts[f"n{key}"]:
            continue
        imprecise = bool(counts[f"d{key}"])
        found[field_key] = {
            "reason": BEYOND_DOUBLE if imprecise else BEYOND_INT128,
            "values": int(counts[f"n{key}"]),
            "example": counts[f"e{key}"] if imprecise else counts[f"a{key}"],
        }
        replaced.setdefault(field_key[0], []).append((field_key[1], key))
    if not found:
        return frame, {}
    # Both scans' columns renamed by position (r0, r1... and t0, t1...): no clash, whatever the fields' names.
    names = read.names()
    kept = [key for children in replaced.values() for _, key in children]
    taken = copy.select(candidates[key][1].str.strip_prefix(_MARK).alias(f"t{key}") for key in kept)
    joined = pl.concat([frame.select(pl.nth(index).alias(f"r{index}") for index in range(len(names))), taken],
                       how="horizontal")  # fmt: skip
    columns: list[pl.Expr] = []
    for index, field_name in enumerate(names):
        column = pl.col(f"r{index}")
        children = replaced.get(field_name, [])
        whole = next((key for child, key in children if child is None), None)
        if whole is not None:
            column = pl.col(f"t{whole}")
        elif children:
            column = column.struct.with_fields(pl.col(f"t{key}").alias(str(child)) for child, key in children)
        columns.append(column.alias(field_name))
    return joined.select(columns), found


def _sink_lines(lines: pl.LazyFrame, target: Path) -> None:
    """The one text column of ``lines`` written to ``target`` as they are, a line each (no header, no quoting), on
    the streaming engine; a failure of the system raised as the OSError it is."""
    try:
        lines.sink_csv(target, include_header=False, quote_style="never", engine="streaming")
    except pl.exceptions.PolarsError as error:
        _raise_system_error(error)
        raise


def _parse_ndjson(source: Path, raw: Path) -> pl.Schema:
    """The NDJSON file ``source`` parsed into the Parquet file ``raw`` (not written when it has no column): its
    schema, inferred from every line (a sample would drop late keys)."""
    scan = pl.scan_ndjson(source, infer_schema_length=None)
    schema = scan.collect_schema()
    if schema:
        _sink(scan, raw)
    return schema


def _has_content(path: Path) -> bool:
    """Whether the file holds anything but whitespace, read a chunk at a time."""
    with path.open("rb") as handle:
        while chunk := handle.read(TRANSCODE_CHUNK_BYTES):
            if chunk.strip():
                return True
    return False


def _spill_tidied(
    parsed: pl.LazyFrame,
    name: str,
    file_format: Format,
    facts: Mapping[str, str],
    target: Path,
    max_columns: int,
    metadata: MetadataOf | None,
    *,
    exact_fields: Mapping[tuple[str, str | None], dict[str, Any]] | None = None,
) -> Spilled:
    """The parsed file's columns tidied as agents.readers._tidy_columns tidies a frame (the same plan, over a lazy
    scan: one streaming query counts the rows and the blank-named columns' nulls), its ISO date text typed, written
    to ``target``. ``exact_fields``: the JSON fields kept as text for their numbers (the reader's
    ``numbers_kept_as_text``, named as the columns out)."""
    schema = parsed.collect_schema()
    names = list(schema)
    # Columns are addressed by position: a name such as "*" or "^a$" means something else to pl.col.
    blank = [index for index, original in enumerate(names) if not original.strip()]
    counts = parsed.select(pl.len().alias("rows"), *(pl.nth(index).null_count().alias(str(index)) for index in blank))
    rows, *null_counts = counts.collect(engine="streaming").row(0)
    if rows == 0:
        what = "a header (a schema) but no data rows" if file_format == "parquet" else "no data rows"
        raise InvalidFileError(f"{name}: the file has {what}", {"file": name})
    dropped = [index + 1 for index, nulls in zip(blank, null_counts, strict=True) if nulls == rows]
    plan = tidy_plan(list(schema.items()), dropped, name)
    check_column_count(len(plan.columns), name, max_columns)
    lazy = parsed.select(plan.columns)
    _raise_if_control_characters(lazy, name, engine="streaming")  # as the reader refuses them
    layouts = find_layouts(lazy, engine="streaming")
    report: ReadReport = {
        "format": file_format,
        "encoding": facts.get("encoding"),
        "separator": None,
        "quote_char": None,
        "sheet": None,
        "rows": rows,
        "columns": len(plan.columns),
        "renamed_columns": plan.renamed,
        "dropped_empty_columns": dropped,
        "flattened_columns": plan.flattened,
        "json_encoded_columns": plan.encoded,
        "temporal_columns": describe_layouts(layouts),
        "number_columns": {},
        "boolean_columns": {},
    }
    if exact_fields:  # as _tidy_columns names them: each column out comes from a field or from a field of an object
        sources = [(names[index], child) for index, child in plan.sources]
        report["numbers_kept_as_text"] = {
            final: exact_fields[source]
            for source, final in zip(sources, lazy.collect_schema().names(), strict=True)
            if source in exact_fields
        }
    return _write_spill(apply_layouts(lazy, layouts), report, target, metadata)
