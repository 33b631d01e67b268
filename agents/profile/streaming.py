"""The ``unified-profiler`` for a file larger than the memory of the agent process (a prototype).

The in-memory agent needs the whole parsed frame: ~1.7x the CSV's size for text-heavy data (Polars keeps
a 16-byte view per string plus its bytes), before any work. Here the CSV is converted once to a Parquet
file next to it by Polars' streaming engine (``sink_parquet``: bounded memory, whatever the file's size),
and every statistic is a query over ``scan_parquet`` collected on the streaming engine, one query at a
time: each reads only its columns, and memory is bounded by one column's work (the sort of a numeric
column, the hash table of a text column), not by the file. The statistics, the envelope and its numbers
are those of the in-memory agent (the same ``column_stats`` code over a lazy source), except that a
duplicate-row count comes from 64-bit row hashes without the exact confirmation the in-memory agent does
(a collision among n rows has probability about n^2 / 2^65), and ``dataset.memory_bytes`` is the size of
the input file (nothing is held in memory).

The file is parsed as the chain's reader parses it: the dialect (separator, quote, encoding) is sniffed
by :func:`agents.readers.sniff_dialect`, the schema is inferred from the first 10,000 rows, and a column
whose later value does not fit its inferred integer type is widened (to Float64, else String) and the
conversion retried. A file that is not UTF-8 (cp1252, Latin-1, UTF-16) is transcoded first, as the reader
does it, to a UTF-8 copy in the work directory, a chunk at a time (bounded memory); a file whose header
has more than ``max_columns`` fields is refused before anything is converted.
"""

from __future__ import annotations

import re
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Final

import polars as pl

from agents.envelope import AgentResult, Progress
from agents.errors import InvalidFileError
from agents.layouts import apply_layouts, find_layouts
from agents.options import DEFAULT_MAX_COLUMNS
from agents.profile.column_stats import Source, compute_source_stats
from agents.profile.params import ProfilerParams
from agents.profile.profiler import profile_result, stats_settings
from agents.profile.views import streamed_views
from agents.readers import INFER_SCHEMA_LENGTH, CsvDialect, check_header_width, sniff_dialect, transcoded_to_utf8
from agents.values import normalize_missing_lazy

PARQUET_COMPRESSION: Final = "lz4"  # fast to write and to scan; the file lives only while the profile runs
_PARSE_ERROR = re.compile(r"could not parse `(?P<value>.*?)` as dtype `(?P<dtype>[^`]+)` at column '(?P<column>.*)' ")


def profile_large(
    path: Path,
    params: ProfilerParams,
    progress: Progress,
    name: str = "primary.csv",
    work_dir: Path | None = None,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> AgentResult:
    """Profile the CSV/TSV at ``path`` (upload name ``name``) with bounded memory; the temporary Parquet
    file (and a UTF-8 copy of a file in another encoding) goes to ``work_dir`` (default: the input's
    directory) and is removed afterwards."""
    started = time.perf_counter()
    progress(0.0, f"Converting {name} to a columnar file")
    with tempfile.TemporaryDirectory(prefix=".profile-", dir=work_dir or path.parent) as temporary:
        parquet = Path(temporary) / "primary.parquet"
        csv_to_parquet(path, name, parquet, max_columns=max_columns)
        progress(0.3, "Computing column statistics")
        scan = pl.scan_parquet(parquet)
        scan = apply_layouts(scan, find_layouts(scan, engine="streaming"))  # ISO dates typed, as the reader does
        scan, missing = normalize_missing_lazy(scan, params.null_tokens, engine="streaming")
        source = Source.of_lazy(scan)
        if source.height == 0:
            raise InvalidFileError(f"{name}: the file has a header but no data rows", {"file": name})
        stats = compute_source_stats(
            source, stats_settings(params), lambda: progress(0.7, "Computing outliers and row issues")
        )
        progress(0.85, "Detecting personal data and scoring quality")
        string_columns = [column.name for column in stats.columns if column.kind == "string"]
        step = max(1, source.height // max(params.pii_sample_size, 1))
        sample = source.every(string_columns, step).head(params.pii_sample_size)

        def views(fields: list[dict[str, Any]]) -> dict[str, Any]:
            return streamed_views(scan, source.height, fields, stats.dataset.duplicate_rows)

        return profile_result(stats, sample, params, path.stat().st_size, started, progress, missing, views)


def csv_to_parquet(path: Path, name: str, target: Path, *, max_columns: int = DEFAULT_MAX_COLUMNS) -> None:
    """Stream the CSV into ``target`` (never holding more than a few batches), typed as the reader types it:
    a file in another encoding than UTF-8 through a UTF-8 copy next to ``target``, as is one whose first
    non-UTF-8 byte comes after the 64 KiB the encoding is sniffed from."""
    dialect = sniff_dialect(path, name, default_separator="\t" if path.suffix.lower() == ".tsv" else ",")
    check_header_width(path, name, dialect, max_columns)
    try:
        _convert_as_utf8(path, name, dialect, target)
    except _NotUtf8:
        _convert_as_utf8(path, name, CsvDialect(dialect.separator, "cp1252", dialect.quote_char), target)


class _NotUtf8(Exception):
    pass


def _convert_as_utf8(path: Path, name: str, dialect: CsvDialect, target: Path) -> None:
    if dialect.encoding == "utf-8":
        _convert(path, name, dialect, target)
        return
    with transcoded_to_utf8(path, dialect.encoding, target.parent) as utf8_copy:
        _convert(utf8_copy, name, dialect, target)


def _convert(path: Path, name: str, dialect: CsvDialect, target: Path) -> None:
    """``csv_to_parquet`` of a UTF-8 file (``dialect.encoding``: what the original file is in)."""
    scan = partial(pl.scan_csv, path, separator=dialect.separator, quote_char=dialect.quote_char, raise_if_empty=True)
    try:
        schema = scan(infer_schema_length=INFER_SCHEMA_LENGTH).collect_schema()
    except pl.exceptions.NoDataError as error:
        raise InvalidFileError(f"{name}: the file is empty", {"file": name}) from error
    overrides: dict[str, pl.DataType] = {}
    while True:
        try:
            scan(schema={**schema, **overrides}).sink_parquet(
                target, compression=PARQUET_COMPRESSION, engine="streaming"
            )
            return
        except pl.exceptions.ComputeError as error:
            if "invalid utf-8" in str(error) and dialect.encoding == "utf-8":
                raise _NotUtf8 from error
            retype = _PARSE_ERROR.search(str(error))
            if retype is None or retype["column"] in overrides:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise InvalidFileError(f"{name}: could not be parsed as CSV ({first})", {"file": name}) from error
            overrides[retype["column"]] = _wider_dtype(retype["value"], retype["dtype"])


def _wider_dtype(value: str, dtype: str) -> pl.DataType:
    if dtype.startswith(("i", "u")):
        try:
            float(value)
            return pl.Float64()
        except ValueError:
            pass
    return pl.String()
