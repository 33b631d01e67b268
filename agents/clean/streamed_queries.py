"""The queries the null-handler and the outlier-remover run on a primary too large for memory (``AgentInputs.scan``):
each on Polars' streaming engine, so that memory holds per-column aggregates and the results, never the data."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from agents.clean.common import IDENTIFIER_CANDIDATES
from agents.envelope import ROW_INDEX_COLUMN, ROW_LEVEL_ISSUE_SCHEMA, empty_row_level_issues


def numbered(scan: pl.LazyFrame) -> pl.LazyFrame:
    """The scan with ``ROW_INDEX_COLUMN`` (as ``agents.columns.with_row_index`` numbers a frame: 1-based, last)
    when it has none yet; the chain's scans have it."""
    names = scan.collect_schema().names()
    if ROW_INDEX_COLUMN in names:
        return scan
    return scan.with_row_index(ROW_INDEX_COLUMN, offset=1).select(*names, pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))


def streamed_row(query: pl.LazyFrame, exprs: Sequence[pl.Expr]) -> dict[str, Any]:
    """The one row of aggregates ``exprs`` over ``query``, computed on the streaming engine."""
    return query.select(exprs).collect(engine="streaming").row(0, named=True)


def collect_streamed_issues(parts: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """``agents.findings.collect_row_issues(parts, in_file_order=True)`` on the streaming engine: the parts'
    issues in one frame, sorted by row then column (ties in the parts' order)."""
    if not parts:
        return empty_row_level_issues()
    frames = pl.collect_all(list(parts), engine="streaming")
    combined = pl.concat([frame.cast(ROW_LEVEL_ISSUE_SCHEMA) for frame in frames], how="vertical")  # type: ignore[arg-type]
    return combined.sort("row_index", "column", maintain_order=True)


def column_aggregates(query: pl.LazyFrame, names: Sequence[str], exprs: Sequence[pl.Expr]) -> dict[str, Any]:
    """The aggregates ``exprs`` over the columns ``names`` of ``query``, computed as in memory: the columns read
    on the streaming engine into one chunk, then ``exprs`` over them. A float sum (a mean, a standard deviation)
    depends on how the values are split into chunks, and the streaming engine splits them into morsels: so the
    in-memory run's value is reproduced to the last bit. Memory holds these columns, as a median needs anyway."""
    columns = query.select(names).collect(engine="streaming").rechunk()
    return columns.select(exprs).row(0, named=True)


def scanned_rows(rows: int | None, scan: pl.LazyFrame) -> int:
    """The scan's row count: ``AgentInputs.rows`` as the chain gives it, else counted on the streaming engine."""
    return rows if rows is not None else int(scan.select(pl.len()).collect(engine="streaming").item())


def repeated_hash_rows(
    scan: pl.LazyFrame, keys: Sequence[str | pl.Expr], rows: int, spill_dir: Path, *, max_grouped_rows: int
) -> pl.DataFrame:
    """The rows of ``scan`` (``ROW_INDEX_COLUMN`` and their ``"__hash__"``) whose 64-bit hash of ``keys``
    (``pl.struct(keys).hash(seed=0)``: equal keys hash equally, nulls alike, -0.0 as 0.0, every NaN alike) another
    row shares: every group of rows equal on ``keys`` is among them whole. The hashes are sunk to a spill under
    ``spill_dir`` once; a streaming group_by holds an entry per distinct hash, so they are grouped in parts by
    hash of at most ``max_grouped_rows`` rows each."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / f"row-hashes-{uuid.uuid4().hex}.parquet"
    scan.select(ROW_INDEX_COLUMN, pl.struct(list(keys)).hash(seed=0).alias("__hash__")).sink_parquet(path)
    hashed = pl.scan_parquet(path)
    parts = max(1, -(-rows // max_grouped_rows))
    found = []
    for part in range(parts):
        share = hashed.filter(pl.col("__hash__") % parts == part)
        repeated = share.group_by("__hash__").agg(pl.len().alias("__rows__")).filter(pl.col("__rows__") > 1)
        shared = repeated.collect(engine="streaming")["__hash__"]
        if shared.len():
            found.append(share.filter(pl.col("__hash__").is_in(shared.implode())).collect(engine="streaming"))
    path.unlink()
    if not found:
        return pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64, "__hash__": pl.UInt64})
    return pl.concat(found, how="vertical").sort(ROW_INDEX_COLUMN)


def spilled_rows(scan: pl.LazyFrame, row_indices: pl.Series, spill_dir: Path) -> pl.DataFrame:
    """The rows of ``scan`` with these ``ROW_INDEX_COLUMN`` values, in its order. Sunk to a spill and read back: a
    frame collected from a scan keeps alive every page of text its rows were read from (string views), which for
    rows spread through the file is all of its text."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    path = spill_dir / f"rows-{uuid.uuid4().hex}.parquet"
    scan.filter(pl.col(ROW_INDEX_COLUMN).is_in(row_indices.implode())).sink_parquet(path)
    frame = pl.read_parquet(path)
    path.unlink()
    return frame


def collect_issues_in_order(parts: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """``agents.findings.collect_row_issues(parts)`` on the streaming engine: the parts' issues in one frame, in
    the parts' order (each part's rows in its order)."""
    if not parts:
        return empty_row_level_issues()
    frames = pl.collect_all(list(parts), engine="streaming")
    return pl.concat([frame.cast(ROW_LEVEL_ISSUE_SCHEMA) for frame in frames], how="vertical")  # type: ignore[arg-type]


GROUP_VALUES = 2_000_000  # distinct values a streaming group_by holds at a time (~340 MB of e-mail addresses)


def _trimmed_text(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars()


def distinct_text_estimates(scan: pl.LazyFrame, names: Sequence[str]) -> dict[str, int]:
    """The number of distinct trimmed text values of each column of ``names`` (HyperLogLog: kilobytes a column),
    in one streaming query."""
    if not names:
        return {}
    exprs = [_trimmed_text(name).approx_n_unique().alias(name) for name in dict.fromkeys(names)]
    return {name: int(count) for name, count in streamed_row(scan, exprs).items()}


def distinct_text_parts(scan: pl.LazyFrame, name: str, estimate: int) -> Iterator[pl.LazyFrame]:
    """``agents.values.distinct_counts`` of the column ``name`` of a scan (its distinct non-blank trimmed text,
    ``value``, with ``count``) as queries for the streaming engine, in parts by the values' hash (each value in
    one part) of at most about ``GROUP_VALUES`` distinct values (``estimate``: ``distinct_text_estimates``): a
    streaming group_by holds about 170 bytes per distinct value."""
    values = scan.select(_trimmed_text(name).alias("value")).filter(
        pl.col("value").is_not_null() & (pl.col("value") != "")
    )
    parts = max(1, math.ceil(estimate / GROUP_VALUES))
    for part in range(parts):
        chosen = values if parts == 1 else values.filter(pl.col("value").hash() % parts == part)
        yield chosen.group_by("value").agg(pl.len().cast(pl.Int64).alias("count"))


def streamed_has_identifier(scan: pl.LazyFrame, columns: Sequence[str], rows: int, *, max_grouped_rows: int) -> bool:
    """``agents.clean.common.has_identifier`` (nulls allowed) over a scan: whether one of the first
    ``IDENTIFIER_CANDIDATES`` integer columns among ``columns`` holds as many distinct values (null counted as one)
    as the scan has rows. The distinct values are counted on the streaming engine in parts by hash of at most
    ``max_grouped_rows`` rows (equal values, and every null, fall in the same part), one part's held at a time."""
    schema = scan.collect_schema()
    integers = [name for name in columns if schema[name].is_integer()][:IDENTIFIER_CANDIDATES]
    if not integers or rows < 2:  # noqa: PLR2004 - one row repeats nothing
        return False
    parts = max(1, -(-rows // max_grouped_rows))
    queries = [
        scan.select(pl.col(name).filter(pl.col(name).hash(seed=0) % parts == part).n_unique() for name in integers)
        for part in range(parts)
    ]
    distinct = dict.fromkeys(integers, 0)
    for query in queries:
        counts = query.collect(engine="streaming").row(0, named=True)
        for name in integers:
            distinct[name] += int(counts[name])
    return any(count == rows for count in distinct.values())
