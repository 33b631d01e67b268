"""``sort`` and ``deduplicate`` of data larger than memory, in bounded memory, with the in-memory semantics (used by
the transformer, agents.transform.execute, and the searcher, agents.search.searcher).

Polars' streaming engine holds all the data it sorts (about 2.6 times the frame) and a hash table of every distinct
key it deduplicates. Here the data is cut into buckets of about ``BUCKET_BYTES`` (estimated in memory from a sample
of rows), written in one streaming pass (``sink_parquet`` to ``pl.PartitionBy`` a bucket expression), and each
bucket is then handled in memory on its own:

- ``sort_external``: range partitioning. The sample's sort keys, sorted by the same spec, give K - 1 cut tuples; a
  row's bucket is the number of cuts it is past (a cut sorts strictly before its key tuple: a comparison built per
  key that follows ``descending`` and where empty values go), so every row of bucket i sorts before every row of
  bucket i + 1, and equal key tuples share a bucket. Each bucket, in its rows' former order, is sorted with
  ``maintain_order`` (stable), the rows moved are counted there, and the result is a scan of the sorted buckets in
  order. Skew: a key tuple is never split, so a tuple that fills a bucket's share of the sample or more gets a
  bucket of its own (a cut that it is past too, before it): that bucket's rows are equal, their former order is the
  sorted one, and they are copied in one streaming pass instead of sorted in memory. The other buckets hold about
  ``BUCKET_BYTES`` (less than twice that, as far as the sample tells).
- ``duplicates_external``: hash partitioning of the key columns and each row's position. Equal keys hash equally, so
  they share a bucket; in a bucket only the rows whose hash repeats can be duplicates, and ``unique`` compares their
  real values (a hash collision costs nothing but a comparison). It gives the positions of the rows to drop; the
  caller filters them out in a streaming pass, in order.

When the data fits one bucket (K = 1) both return None and the caller uses Polars' own streaming operation. The
partitioned sink holds a buffer per bucket (about 12 MB each for 15 columns): K stays in the tens for a few GB (a
sort's heavy tuples add up to two buckets each, and there are K of them at most).
Measured on 36.5M rows x 15 columns (a 5 GB CSV; bench_tools' recipe), the transformer peaked at 1.35 GB.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

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
    cuts = _cuts(keys, buckets)
    dtypes = [schema[name] for name in by]
    bucket_of = pl.sum_horizontal(
        pl.lit(0, dtype=pl.UInt32),
        *(_past(cut, by, dtypes, descending, nulls_last).cast(pl.UInt32) for cut in cuts),
    )
    parts = target.with_name(f"{target.name}.parts")
    _partition(lazy, bucket_of, parts)
    target.mkdir(parents=True)
    written, offset, moved = [], 0, 0
    for bucket in range(len(cuts) + 1):
        files = _bucket_files(parts, bucket)
        if not files:
            continue
        path = target / f"{bucket:05d}.parquet"
        copied = _copy_in_order(files, offset, path) if bucket and cuts[bucket - 1].inclusive else None
        if copied is None:
            copied = _sort_bucket(files, by, descending, nulls_last, offset, path)
        offset += copied[0]
        moved += copied[1]
        written.append(path)
        shutil.rmtree(parts / f"{BUCKET}={bucket}")
    shutil.rmtree(parts, ignore_errors=True)
    return pl.scan_parquet(written), moved


class _Cut(NamedTuple):
    """A key tuple that splits the sorted rows: a row is past it when it sorts strictly before the row's key tuple,
    or (``inclusive``) is equal to it."""

    key: tuple[Any, ...]
    inclusive: bool


def _cuts(keys: pl.DataFrame, buckets: int) -> list[_Cut]:
    """The cuts of ``buckets`` buckets from the sorted sample ``keys``: after the tuple at each K-quantile, and
    around each tuple that fills a bucket's share of the sample (or more), whose bucket then holds only it."""
    step = keys.height / buckets
    run = keys.select(pl.struct(keys.columns).rle_id()).to_series()  # equal tuples are adjacent once sorted
    starts = run.arg_unique().to_list()
    heavy = set(run.unique(maintain_order=True).filter(run.unique_counts() >= max(2, step)).to_list())
    split = {run[int(step * i)] for i in range(1, buckets)}
    cuts = []
    for tuple_run in sorted(split | heavy):
        key = keys.row(starts[tuple_run])
        if tuple_run in heavy:
            cuts.append(_Cut(key, inclusive=True))
        cuts.append(_Cut(key, inclusive=False))
    return cuts


def _copy_in_order(files: list[Path], offset: int, path: Path) -> tuple[int, int] | None:
    """A bucket whose rows have equal keys, already in the sorted order (their former one), written to ``path`` in
    one streaming pass, never held: its rows and the rows moved (their position is not ``offset`` on). None when
    the partitioned sink did not keep the order (then it is sorted as the others are)."""
    scan = pl.scan_parquet(files, hive_partitioning=False)
    after = "__external_after__"
    position = pl.col(POSITION).cast(pl.Int64)
    stats = (
        scan.with_row_index(after, offset=offset)
        .select(
            pl.len().alias("rows"),
            (position.diff() <= 0).any().alias("unordered"),
            (position != pl.col(after).cast(pl.Int64)).sum().alias("moved"),
        )
        .collect(engine="streaming")
    )
    if stats["unordered"].item():
        return None
    scan.drop(POSITION).sink_parquet(path, compression=COMPRESSION, engine="streaming")
    return int(stats["rows"].item()), int(stats["moved"].item())


def _sort_bucket(
    files: list[Path], by: Sequence[str], descending: Sequence[bool], nulls_last: bool, offset: int, path: Path
) -> tuple[int, int]:
    """A bucket sorted in memory (stable: its rows in their former order first), written to ``path``: its rows and
    the rows moved (their position is not ``offset`` on)."""
    frame = _read_bucket(files).sort(by, descending=list(descending), nulls_last=nulls_last, maintain_order=True)
    after = pl.int_range(offset, offset + pl.len(), dtype=pl.Int64)
    moved = int(frame.select((pl.col(POSITION).cast(pl.Int64) != after).sum()).item())
    frame.drop(POSITION).write_parquet(path, compression=COMPRESSION)
    return frame.height, moved


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
        files = _bucket_files(work, bucket)
        if files:
            dropped.append(_dropped_in(_read_bucket(files), subset, keep))
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


def _past(
    cut: _Cut,
    by: Sequence[str],
    dtypes: Sequence[pl.DataType],
    descending: Sequence[bool],
    nulls_last: bool,
) -> pl.Expr:
    """Whether the row's key tuple is past ``cut`` (never null): lexicographic, built from the last key to the first
    as ``before_k | (equal_k & rest)``, where equal tuples are past an inclusive cut only."""
    result = pl.lit(cut.inclusive)
    for name, dtype, down, value in reversed(list(zip(by, dtypes, descending, cut.key, strict=True))):
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


def _bucket_files(directory: Path, bucket: int) -> list[Path]:
    return sorted((directory / f"{BUCKET}={bucket}").glob("*.parquet"))


def _read_bucket(files: list[Path]) -> pl.DataFrame:
    """A bucket's rows in their order before the operation (the partitioned sink keeps it; checked, as ``sort`` and
    ``unique`` need it for ties)."""
    frame = pl.read_parquet(files, hive_partitioning=False)
    return frame if frame.get_column(POSITION).is_sorted() else frame.sort(POSITION)
