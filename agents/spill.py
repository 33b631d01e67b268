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
- a short row (a missing trailing field) refused with its line number, as are quoting errors;
- blank-named columns without a value dropped, blank and repeated names made unique, the renames reported;
- text columns of ISO dates and timestamps typed when every value reads back as written (agents.layouts).

How: Polars' streaming engine parses the file once into a first Parquet file (integers still text), one streaming
query decides every integer column and the short-row check, the date layouts are found by another
(``find_layouts`` on the streaming engine), and a last streaming pass writes the typed spill; the first file is
then removed. Memory is bounded by a few batches of rows and the per-column aggregates, not by the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final

import polars as pl

from agents.errors import InvalidFileError
from agents.layouts import apply_layouts, find_layouts
from agents.layouts import describe as describe_layouts
from agents.options import DEFAULT_MAX_COLUMNS
from agents.readers import (
    INFER_SCHEMA_LENGTH,
    TEXT_FORMATS,
    CsvDialect,
    NotUtf8,
    ReadReport,
    _every_line_full,
    _find_ragged_row,
    _may_have_short_rows,
    _unique_names,
    _written_otherwise,
    blank_line_rows,
    check_column_count,
    check_header_width,
    parse_widening,
    sniff_dialect,
    transcoded_to_utf8,
)

SPILL_COMPRESSION: Final = "lz4"  # fast to write and to scan (agents.search.kept measures it against snappy)
ROW_GROUP_ROWS: Final = 100_000  # row groups with statistics: a filter skips those it excludes


@dataclass(frozen=True)
class Spilled:
    """A typed spill: the Parquet file, the read report (as the in-memory reader's) and the number of rows."""

    path: Path
    report: ReadReport
    rows: int

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.path)


def spill_csv(
    path: Path,
    name: str,
    target: Path,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    metadata: Callable[[ReadReport], Mapping[str, str]] | None = None,
) -> Spilled:
    """Read the CSV/TSV at ``path`` (upload name ``name``) into the typed Parquet file ``target`` (its directory
    also holds the intermediate files while this runs), with ``metadata(read report)`` in its footer."""
    dialect = sniff_dialect(path, name, default_separator=TEXT_FORMATS.get(Path(name).suffix.lower(), ","))
    check_header_width(path, name, dialect, max_columns)
    raw = target.with_name(f".{target.name}.text")
    try:
        if dialect.encoding == "utf-8":
            try:
                return _spill_utf8(path, name, dialect, raw, target, max_columns, metadata)
            except NotUtf8:
                # A non-UTF-8 byte after the sniff window: the header read as UTF-8 may not be what cp1252 gives.
                dialect = CsvDialect(dialect.separator, "cp1252", dialect.quote_char, header=None)
        with transcoded_to_utf8(path, dialect.encoding, target.parent) as utf8_copy:
            return _spill_utf8(utf8_copy, name, dialect, raw, target, max_columns, metadata)
    finally:
        raw.unlink(missing_ok=True)


def _spill_utf8(
    path: Path,
    name: str,
    dialect: CsvDialect,
    raw: Path,
    target: Path,
    max_columns: int,
    metadata: Callable[[ReadReport], Mapping[str, str]] | None,
) -> Spilled:
    integers = _parse_to_parquet(path, name, dialect, raw)
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
    facts = _column_facts(text, schema, integers)
    typed = _typed_integers(integers, facts)
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
        if column in typed:
            expression = expression.cast(typed[column])
        elif dtype == pl.Null:
            expression = expression.cast(pl.String)
        planned.append((index + 1, original[index], expression))
    if not planned:
        raise InvalidFileError(f"{name}: the file has no named column and no values", {"file": name})
    check_column_count(len(planned), name, max_columns)
    final_names, renamed = _unique_names([(position, proposed) for position, proposed, _ in planned])
    lazy = text.select(expression.alias(final) for (_, _, expression), final in zip(planned, final_names, strict=True))
    layouts = find_layouts(lazy, engine="streaming")
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
    }
    apply_layouts(lazy, layouts).sink_parquet(
        target,
        compression=SPILL_COMPRESSION,
        row_group_size=ROW_GROUP_ROWS,
        metadata=dict(metadata(report)) if metadata is not None else None,
        engine="streaming",
    )
    return Spilled(target, report, rows)


def _parse_to_parquet(path: Path, name: str, dialect: CsvDialect, raw: Path) -> dict[str, pl.DataType]:
    """The UTF-8 file at ``path`` parsed into the Parquet file ``raw``, integer columns as text (their inferred
    types are returned), a column widened for each value that does not fit its inferred type."""
    scan = partial(pl.scan_csv, path, separator=dialect.separator, quote_char=dialect.quote_char, raise_if_empty=True)

    def parse(overrides: dict[str, pl.DataType]) -> dict[str, pl.DataType]:
        schema = scan(infer_schema_length=INFER_SCHEMA_LENGTH).collect_schema()
        integers = {c: dtype for c, dtype in schema.items() if dtype.is_integer() and c not in overrides}
        scan(schema={**schema, **overrides, **dict.fromkeys(integers, pl.String())}).sink_parquet(
            raw, compression=SPILL_COMPRESSION, engine="streaming"
        )
        return integers

    return parse_widening(path, name, dialect, parse)


def _column_facts(
    text: pl.LazyFrame, schema: Mapping[str, pl.DataType], integers: Mapping[str, pl.DataType]
) -> dict[str, Any]:
    """One streaming pass: every column's null count, and per integer column read as text whether every value
    converts to its type, whether one is written otherwise than the integer writes it, and whether one is not a
    number."""
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
            ]
    return text.select(exprs).collect(engine="streaming").row(0, named=True)


def _typed_integers(integers: Mapping[str, pl.DataType], facts: Mapping[str, Any]) -> dict[str, pl.DataType]:
    """The type each integer column read as text takes (agents.readers._typed_integers' rules); text ones absent."""
    typed: dict[str, pl.DataType] = {}
    for column, dtype in integers.items():
        if facts[f"code:{column}"]:
            continue
        if facts[f"cast:{column}"] == facts[f"nulls:{column}"]:
            typed[column] = dtype
        elif not facts[f"float:{column}"]:
            typed[column] = pl.Float64()
    return typed
