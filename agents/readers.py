"""Parse an uploaded input file into a typed Polars frame, strictly.

Only the first 64 KiB are read into Python to sniff the encoding and the delimiter; the file itself is
parsed by Polars (or, for a non-UTF-8 file, first transcoded to a UTF-8 temporary file in chunks).
Nothing is silently coerced: a malformed file raises :class:`InvalidFileError` with a sentence that
names the problem and, for ragged rows, the 1-based line number in the file (the header is line 1).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from agents.errors import InvalidFileError

SNIFF_BYTES = 64 * 1024
INFER_SCHEMA_LENGTH = 10_000
CANDIDATE_SEPARATORS = (",", ";", "\t", "|")
TEXT_FORMATS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
TRANSCODE_CHUNK_BYTES = 1024 * 1024
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_MAGIC_NUMBERS = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook?)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\x1f\x8b": "a gzip archive",
    b"PAR1": "a Parquet file",
    b"\xd0\xcf\x11\xe0": "a legacy Office document (XLS?)",
}
_PARSE_ERROR = re.compile(r"could not parse `(?P<value>.*?)` as dtype `(?P<dtype>[^`]+)` at column '(?P<column>.*)' ")
_LEGACY_ERROR_HANDLER = "agensium-latin1-fallback"


@dataclass(frozen=True)
class CsvDialect:
    separator: str
    encoding: str  # "utf-8" (BOM or not: Polars skips it), "utf-16" or "cp1252"


def read_table(path: Path, name: str) -> pl.DataFrame:
    """Parse the file at ``path``; ``name`` is its upload name, whose extension selects the format."""
    extension = Path(name).suffix.lower()
    if extension not in TEXT_FORMATS:
        raise InvalidFileError(
            f"{name}: unsupported format {extension or '(no extension)'}; upload a .csv, .tsv or .txt file",
            {"file": name},
        )
    dialect = sniff_dialect(path, name, default_separator=TEXT_FORMATS[extension])
    if dialect.encoding == "utf-8":
        try:
            return _read_csv(path, name, dialect.separator)
        except _NotUtf8:
            dialect = CsvDialect(dialect.separator, "cp1252")
    with _transcoded_to_utf8(path, dialect.encoding) as utf8_path:
        return _read_csv(utf8_path, name, dialect.separator)


def sniff_dialect(path: Path, name: str, default_separator: str = ",") -> CsvDialect:
    """Look at the first 64 KiB only: reject empty and binary files, detect encoding and separator."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.removeprefix(_UTF8_BOM).strip():
        raise InvalidFileError(f"{name}: the file is empty", {"file": name})
    if head.startswith(_UTF16_BOMS):
        encoding = "utf-16"
        text = head.decode("utf-16", errors="ignore")
    else:
        _reject_binary(head, name)
        encoding, text = _decode_head(head)
    separator = _sniff_separator(text.removeprefix("\ufeff"), default_separator)
    return CsvDialect(separator=separator, encoding=encoding)


def _reject_binary(head: bytes, name: str) -> None:
    for magic, description in _MAGIC_NUMBERS.items():
        if head.startswith(magic):
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


def _sniff_separator(text: str, default: str) -> str:
    lines = text.splitlines()
    if len(text) >= SNIFF_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short by the sniff window
    sample = "\n".join(lines[:50])
    best, best_score = default, (0, 0, 0)
    for separator in CANDIDATE_SEPARATORS:
        try:
            widths = [len(record) for record in csv.reader(io.StringIO(sample), delimiter=separator) if record]
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        consistent = sum(width == widths[0] for width in widths)
        score = (consistent, widths[0], separator == default)
        if score > best_score:
            best, best_score = separator, score
    return best


class _NotUtf8(Exception):
    pass


def _read_csv(path: Path, name: str, separator: str) -> pl.DataFrame:
    overrides: dict[str, pl.DataType] = {}
    while True:
        try:
            # The schema is inferred by a scan (it reads only the first rows): read_csv with
            # infer_schema_length=10_000 parses ~10 % slower than with a schema given.
            schema = pl.scan_csv(
                path, separator=separator, infer_schema_length=INFER_SCHEMA_LENGTH, raise_if_empty=True
            ).collect_schema()
            frame = pl.read_csv(path, separator=separator, schema={**schema, **overrides}, raise_if_empty=True)
            break
        except pl.exceptions.NoDataError as error:
            raise InvalidFileError(f"{name}: the file is empty", {"file": name}) from error
        except pl.exceptions.ComputeError as error:
            message = str(error)
            retype = _PARSE_ERROR.search(message)
            if retype and retype["column"] not in overrides:
                overrides[retype["column"]] = _wider_dtype(retype["value"], retype["dtype"])
                continue
            if "invalid utf-8" in message:
                raise _NotUtf8 from error
            if "more fields than defined" in message:
                raise _ragged_row_error(path, name, separator) from error
            first_line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
            raise InvalidFileError(f"{name}: could not be parsed as CSV ({first_line})", {"file": name}) from error
    if frame.height == 0:
        raise InvalidFileError(f"{name}: the file has a header but no data rows", {"file": name})
    if frame.width > 1 and frame[:, -1].null_count() > 0 and _may_have_short_rows(path, separator, frame.width):
        ragged = _find_ragged_row(path, name, separator)
        if ragged is not None:
            raise ragged
    return frame


def _wider_dtype(value: str, dtype: str) -> pl.DataType:
    if dtype.startswith(("i", "u")):
        try:
            float(value)
            return pl.Float64()
        except ValueError:
            pass
    return pl.String()


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


def _ragged_row_error(path: Path, name: str, separator: str) -> InvalidFileError:
    found = _find_ragged_row(path, name, separator)
    return found or InvalidFileError(f"{name}: a row has more fields than the header", {"file": name})


def _find_ragged_row(path: Path, name: str, separator: str) -> InvalidFileError | None:
    """Slow path, only after a problem was seen: walk the records with the csv module to name the line."""
    header_width = 0
    for line_number, record in _records_with_line_numbers(path, separator):
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


def _records_with_line_numbers(path: Path, separator: str) -> Iterator[tuple[int, list[str]]]:
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator, strict=False)
        start_line = 1
        for record in reader:
            yield start_line, record
            start_line = reader.line_num + 1


def _register_legacy_error_handler() -> None:
    """cp1252 leaves five bytes undefined; decode those as Latin-1 so every byte maps to a character."""

    def latin1_fallback(error: UnicodeError) -> tuple[str, int]:
        assert isinstance(error, UnicodeDecodeError)
        chunk = error.object[error.start : error.end]
        return bytes(chunk).decode("latin-1"), error.end

    codecs.register_error(_LEGACY_ERROR_HANDLER, latin1_fallback)


class _transcoded_to_utf8:
    """Context manager: a UTF-8 copy of ``path`` in the same directory, written in 1 MiB chunks."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path = path
        self.encoding = encoding
        self.target: Path | None = None

    def __enter__(self) -> Path:
        _register_legacy_error_handler()
        errors = _LEGACY_ERROR_HANDLER if self.encoding == "cp1252" else "replace"
        decoder = codecs.getincrementaldecoder(self.encoding)(errors=errors)
        descriptor, target = tempfile.mkstemp(prefix=".utf8-", suffix=".csv", dir=self.path.parent)
        self.target = Path(target)
        with self.path.open("rb") as source, os.fdopen(descriptor, "wb") as sink:
            while chunk := source.read(TRANSCODE_CHUNK_BYTES):
                sink.write(decoder.decode(chunk).encode("utf-8"))
            sink.write(decoder.decode(b"", final=True).encode("utf-8"))
        return self.target

    def __exit__(self, *exc_info: object) -> None:
        if self.target is not None:
            self.target.unlink(missing_ok=True)
