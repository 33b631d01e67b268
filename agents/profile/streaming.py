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

The file is read into a typed Parquet spill as the chain's reader reads it (agents.spill: for a CSV the dialect,
the encodings, widening, integer codes kept as text, short rows refused; for a Parquet or NDJSON file its structs
flattened and nested values as JSON text; in every format names tidied, ISO dates typed); a file whose header (a
Parquet file's schema) has more than ``max_columns`` fields is refused before anything is converted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from agents.envelope import AgentResult, Progress
from agents.errors import InvalidFileError
from agents.options import DEFAULT_MAX_COLUMNS
from agents.profile.column_stats import Source, compute_source_stats
from agents.profile.params import ProfilerParams
from agents.profile.pii import SAMPLED_KINDS
from agents.profile.profiler import profile_result, stats_settings
from agents.profile.views import streamed_views
from agents.spill import spill_file
from agents.values import normalize_missing_lazy


def profile_large(
    path: Path,
    params: ProfilerParams,
    progress: Progress,
    name: str = "primary.csv",
    work_dir: Path | None = None,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
) -> AgentResult:
    """Profile the CSV/TSV, Parquet or NDJSON file at ``path`` (upload name ``name``) with bounded memory; the
    temporary Parquet file (and a UTF-8 copy of a file in another encoding, a BOM-less copy of an NDJSON file
    with one) goes to ``work_dir`` (default: the input's directory) and is removed afterwards."""
    started = time.perf_counter()
    progress(0.0, f"Converting {name} to a columnar file")
    with tempfile.TemporaryDirectory(prefix=".profile-", dir=work_dir or path.parent) as temporary:
        parquet = Path(temporary) / "primary.parquet"
        scan = spill_file(path, name, parquet, max_columns=max_columns).scan()  # typed as the reader types
        progress(0.3, "Computing column statistics")
        scan, missing = normalize_missing_lazy(scan, params.null_tokens, engine="streaming")
        source = Source.of_lazy(scan)
        if source.height == 0:
            raise InvalidFileError(f"{name}: the file has a header but no data rows", {"file": name})
        stats = compute_source_stats(
            source, stats_settings(params), lambda: progress(0.7, "Computing outliers and row issues")
        )
        progress(0.85, "Detecting personal data and scoring quality")
        sampled = [column.name for column in stats.columns if column.kind in SAMPLED_KINDS]
        step = max(1, source.height // max(params.pii_sample_size, 1))
        sample = source.every(sampled, step).head(params.pii_sample_size)

        def views(fields: list[dict[str, Any]]) -> dict[str, Any]:
            return streamed_views(scan, source.height, fields, stats.dataset.duplicate_rows)

        return profile_result(stats, sample, params, path.stat().st_size, started, progress, missing, views, source)
