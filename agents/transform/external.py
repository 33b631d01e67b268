"""``sort`` and ``deduplicate`` of data larger than memory, in bounded memory, with the in-memory semantics.

Polars' streaming engine holds all the data it sorts (about 2.6 times the frame) and a hash table of every distinct
key it deduplicates. Here the data is cut into buckets of about ``BUCKET_BYTES`` (estimated in memory from a sample
of rows), written in one streaming pass (``sink_parquet`` to ``pl.PartitionBy`` a bucket expression), and each
bucket is then handled in memory on its own:

- ``sort_external``: range partitioning. The sample's sort keys, sorted by the same spec, give K - 1 boundary tuples;
  a row's bucket is the number of boundaries that sort strictly before its key tuple (a comparison built per key
  that follows ``descending`` and where empty values go), so every row of bucket i sorts before every row of bucket
  i + 1, and equal key tuples share a bucket. Each bucket, in its rows' former order, is sorted with
  ``maintain_order`` (stable), the rows moved are counted there, and the result is a scan of the sorted buckets in
  order. Skew: a key tuple is never split, so a bucket holding many equal keys can be bigger than ``BUCKET_BYTES``
  (all the data when every row has the same key); it is still sorted in memory on its own.
- ``duplicates_external``: hash partitioning of the key columns and each row's position. Equal keys hash equally, so
  they share a bucket; in a bucket only the rows whose hash repeats can be duplicates, and ``unique`` compares their
  real values (a hash collision costs nothing but a comparison). It gives the positions of the rows to drop; the
  caller filters them out in a streaming pass, in order.

When the data fits one bucket (K = 1) both return None and the caller uses Polars' own streaming operation. The
partitioned sink holds a buffer per bucket (about 12 MB each for 15 columns): K stays in the tens for a few GB.
Measured on 36.5M rows x 15 columns (a 5 GB CSV; bench_tools' recipe), the transformer peaked at 1.35 GB.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl

BUCKET_BYTES: Final = 256 * 2**20  # estimated in-memory size of a bucket (tests set it small to force many buckets)
SAMPLE_ROWS: Final = 200_000  # rows of sort keys sampled (every k-th) to pick the boundaries
SIZE_SAMPLE_ROWS: Final = 20_000  # rows sampled (every k-th) to estimate the data's size in memory
POSITION: Final = "__external_position__"  # a row's position before the operation
BUCKET: Final = "__external_bucket__"
COMPRESSION: Final = "lz4"
HASH_SEED: Final = 0x5EED


def sort_external(
    lazy: pl.LazyFrame, by: Sequence[str], descending: Sequence[bool], nulls_last: bool, target: Path
) -> tuple[pl.LazyFrame, int] | None:
    """``lazy`` sorted as ``lazy.sort(by, descending=descending, nulls_last=nulls_last, maintain_order=True)``: a
    scan of its sorted buckets written under the new directory ``target``, and the number of rows whose position
    changed. None when the data fits one bucket or a key cannot be compared with a literal (then Polars sorts)."""
    schema = lazy.collect_schema()
    if len(set(by)) < len(by) or not all(_comparable(schema[name]) for name in by):
        return None
    rows = _rows(lazy)
    buckets = _buckets(_sample(lazy, rows, SIZE_SAMPLE_ROWS), rows)
    if buckets <= 1:
        return None
    keys = _sample(lazy.select(by), rows, SAMPLE_ROWS).sort(
        by, descending=list(descending), nulls_last=nulls_last, maintain_order=True
    )
    step = keys.height / buckets
    boundaries = list(dict.fromkeys(keys.row(int(step * i)) for i in range(1, buckets)))
    dtypes = [schema[name] for name in by]
    bucket_of = pl.sum_horizontal(
        pl.lit(0, dtype=pl.UInt32),
        *(_before(boundary, by, dtypes, descending, nulls_last).cast(pl.UInt32) for boundary in boundaries),
    )
    parts = target.with_name(f"{target.name}.parts")
    _partition(lazy, bucket_of, parts)
    target.mkdir(parents=True)
    written, offset, moved = [], 0, 0
    for bucket in range(len(boundaries) + 1):
        frame = _read_bucket(parts, bucket)
        if frame is None:
            continue
        frame = frame.sort(by, descending=list(descending), nulls_last=nulls_last, maintain_order=True)
        after = pl.int_range(offset, offset + pl.len(), dtype=pl.Int64)
        moved += int(frame.select((pl.col(POSITION).cast(pl.Int64) != after).sum()).item())
        offset += frame.height
        path = target / f"{bucket:05d}.parquet"
        frame.drop(POSITION).write_parquet(path, compression=COMPRESSION)
        written.append(path)
        del frame
        shutil.rmtree(parts / f"{BUCKET}={bucket}")
    shutil.rmtree(parts, ignore_errors=True)
    return pl.scan_parquet(written), moved


def duplicates_external(
    lazy: pl.LazyFrame, subset: Sequence[str], keep: Literal["first", "last"], work: Path
) -> pl.Series | None:
    """The positions (``lazy.with_row_index(POSITION)``) of the rows that ``lazy.unique(subset, keep=keep,
    maintain_order=True)`` drops, found bucket by bucket with the partitions under the new directory ``work``
    (deleted after). None when the key columns fit one bucket (then Polars deduplicates)."""
    keys = lazy.select(subset)
    rows = _rows(keys)
    buckets = _buckets(_sample(keys, rows, SIZE_SAMPLE_ROWS), rows)
    if buckets <= 1:
        return None
    bucket_of = (pl.struct(list(subset)).hash(HASH_SEED) % buckets).cast(pl.UInt32)
    _partition(keys, bucket_of, work)
    dropped = []
    for bucket in range(buckets):
        frame = _read_bucket(work, bucket)
        if frame is None:
            continue
        dropped.append(_dropped_in(frame, subset, keep))
        del frame
    shutil.rmtree(work, ignore_errors=True)
    return pl.concat(dropped) if dropped else None


def _dropped_in(frame: pl.DataFrame, subset: Sequence[str], keep: Literal["first", "last"]) -> pl.Series:
    """The positions of the rows of a bucket (in their order) that ``unique`` drops. Only the rows whose key hash
    repeats in the bucket can be duplicates: ``unique`` compares their values (a third of the memory of ``unique``
    on the whole bucket: 0.6 instead of 1.4 GB for 9M e-mail addresses)."""
    candidates = frame.filter(pl.struct(list(subset)).hash(HASH_SEED).is_duplicated())
    positions = candidates.get_column(POSITION)
    kept = candidates.unique(list(subset), keep=keep, maintain_order=True).get_column(POSITION)
    return positions.filter(~positions.is_in(kept.implode()))


def _comparable(dtype: pl.DataType) -> bool:
    """A key whose literal comparisons order values as ``sort`` does (NaN last among numbers, text by bytes)."""
    return dtype.is_numeric() or isinstance(dtype, pl.String | pl.Boolean | pl.Date | pl.Datetime | pl.Time)


def _rows(lazy: pl.LazyFrame) -> int:
    return int(lazy.select(pl.len()).collect(engine="streaming").item())


def _sample(lazy: pl.LazyFrame, rows: int, limit: int) -> pl.DataFrame:
    """Every k-th row, ``limit`` at most, in one streaming pass."""
    every = max(1, math.ceil(rows / limit))
    index = "__external_sample__"
    sampled = lazy.with_row_index(index).filter(pl.col(index) % every == 0).drop(index)
    return sampled.collect(engine="streaming").rechunk()


def _buckets(sample: pl.DataFrame, rows: int) -> int:
    """K such that a bucket holds about ``BUCKET_BYTES`` of the data in memory (1 at least)."""
    if not sample.height:
        return 1
    estimated = sample.estimated_size() * rows / sample.height
    return max(1, math.ceil(estimated / BUCKET_BYTES))


def _before(
    boundary: tuple[Any, ...],
    by: Sequence[str],
    dtypes: Sequence[pl.DataType],
    descending: Sequence[bool],
    nulls_last: bool,
) -> pl.Expr:
    """Whether ``boundary`` sorts strictly before the row's key tuple (never null): lexicographic, built from the
    last key to the first as ``before_k | (equal_k & rest)``."""
    result = pl.lit(False)
    for name, dtype, down, value in reversed(list(zip(by, dtypes, descending, boundary, strict=True))):
        column = pl.col(name)
        if value is None:
            before = column.is_not_null() if not nulls_last else pl.lit(False)
            equal = column.is_null()
        else:
            literal = pl.lit(value, dtype=dtype)
            before = (column < literal if down else column > literal).fill_null(nulls_last)
            equal = (column == literal).fill_null(False)
        result = before | (equal & result)
    return result


def _partition(lazy: pl.LazyFrame, bucket_of: pl.Expr, directory: Path) -> None:
    """``lazy`` with each row's position, written in one streaming pass as a folder per bucket under ``directory``
    (``{BUCKET}={i}/``; an empty bucket has none)."""
    numbered = lazy.with_row_index(POSITION)
    target = pl.PartitionBy(directory, key={BUCKET: bucket_of}, include_key=False, approximate_bytes_per_file=None)
    numbered.sink_parquet(target, compression=COMPRESSION, engine="streaming", mkdir=True)


def _read_bucket(directory: Path, bucket: int) -> pl.DataFrame | None:
    """A bucket's rows in their order before the operation (the partitioned sink keeps it; checked, as ``sort`` and
    ``unique`` need it for ties)."""
    files = sorted((directory / f"{BUCKET}={bucket}").glob("*.parquet"))
    if not files:
        return None
    frame = pl.read_parquet(files, hive_partitioning=False)
    return frame if frame.get_column(POSITION).is_sorted() else frame.sort(POSITION)
