"""What search-my-data keeps with a dataset version so that later searches of it start fast (issue 12): the dataset
converted once to Parquet, and the matching rows of each searcher selection, so that pages 2…N of a search read only
their own rows.

A keep directory (``RunOptions.keep_dir``) is a local mirror the worker fills before a run with what is kept for the
dataset (only the files the run needs) and uploads after it (the files the run added); the worker keeps it next to
the dataset's own objects, deleted with them. Its layout:

- ``dataset.parquet``: the dataset as the search tool reads it (dates typed from text, missing-value tokens nulls
  and the columns they kept as text typed: agents.values.normalize_missing), in row groups with statistics (filters
  skip row groups), LZ4-compressed (:data:`DATASET_COMPRESSION`), its read report (the dates' text layouts, the
  file's format facts, the tokens applied and what became of them: ``missing_tokens``) and the name of the file it
  came from in the Parquet metadata (one file: the data and how to write it back cannot disagree). A read report
  without ``missing_tokens`` (a dataset kept before the tokens were applied, or one too large for memory) holds
  the values as written: the tokens are applied as it is read (:func:`tokens_applied`). The cells of numbers and
  booleans its layouts write otherwise (agents.as_read: ``1.10`` beside ``1.2``) are in it too, as hidden text
  columns named in its metadata (:data:`AS_READ_KEY`), so that every search writes them back as the file had
  them. A dataset too large for memory is this file too, written by agents.spill while the first search reads it;
  its read report says ``streamed`` and every search of it scans the file instead of reading it whole (no matches
  are kept for it: a later page scans it again);
- ``matches/<selection>/meta.json``: a searcher selection's totals, columns, parameters as understood and the
  identity of its ``search_result.csv`` (``csv``, added by the worker once stored);
- ``matches/<selection>/part-NNNNN.parquet``: its matching rows, sorted and projected, ``PART_ROWS`` a part (a page
  is at most ``MAX_PAGE_SIZE`` rows, so it spans one or two parts);
- ``matches/<selection>/search_result.csv``: every matching row as the first run wrote it (the worker stores it
  there from that run's output; a later page's ``search_result.csv`` is a server-side copy of it).

``<selection>`` is a digest of everything that decides the matching rows (the searcher's parameters in their cache
form without ``page`` and ``page_size``); the worker also keys the directory by the agents' code, so a change of
the search code never reads what an older one kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import polars as pl

from agents.as_read import AS_READ_KEY, NOTHING, AsRead, from_hidden, hidden_name
from agents.envelope import BOOKKEEPING_COLUMNS, ROW_INDEX_COLUMN
from agents.params.searcher import SearcherParams

DATASET_NAME = "dataset.parquet"
MATCHES_DIR = "matches"
META_NAME = "meta.json"
CSV_NAME = "search_result.csv"
PART_ROWS = 10_000
ROW_GROUP_ROWS = 100_000
DATASET_COMPRESSION: Final = "lz4"
"""The kept dataset's codec. At 1M rows × 15 columns (bench/bench_search.py) LZ4 writes as fast as snappy or a
little faster (the write's time is in encoding, dictionaries and statistics more than in compression), and every
later search reads it back about 30 % faster (24 against 34 ms), for a file 1 % larger (49.9 against 49.5 MB);
zstd makes it 20 % smaller but takes 20 % longer to write, on the first search's path."""
READ_REPORT_KEY = "agensium.read_report"
SOURCE_NAME_KEY = "agensium.source_name"
PAGE_FIELDS = ("page", "page_size")
MISSING_KEY = "missing_tokens"  # in a read report: the missing-value tokens applied (MissingTokens.describe)


def tokens_applied(read_report: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The missing-value tokens already nulls in data read as ``read_report`` says; None when none were applied
    (values as written: kept before search read the tokens, or a dataset too large for memory)."""
    missing = read_report.get(MISSING_KEY)
    return tuple(missing["tokens"]) if isinstance(missing, Mapping) and "tokens" in missing else None


def selection_digest(params: SearcherParams) -> str:
    """The digest naming a selection's kept matches: the searcher's parameters in their cache form, minus paging."""
    form = {key: value for key, value in params.cache_form().items() if key not in PAGE_FIELDS}
    return hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()[:32]


def matches_dir(params: SearcherParams) -> str:
    """The selection's directory, relative to the keep directory."""
    return f"{MATCHES_DIR}/{selection_digest(params)}"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def page_parts(params: SearcherParams, parts: int) -> list[int]:
    """The parts holding the rows of ``params``' page; for a page beyond the last, the first (its columns)."""
    first_row = (params.page - 1) * params.page_size
    first, last = first_row // PART_ROWS, (first_row + params.page_size - 1) // PART_ROWS
    return [index for index in range(first, last + 1) if index < parts] or [0]


def write_dataset(
    frame: pl.DataFrame,
    read_report: Mapping[str, Any],
    source_name: str,
    keep_dir: Path,
    as_read: AsRead = NOTHING,
) -> str:
    """The dataset as read (``frame``'s data columns), with its read report and the cells ``as_read`` keeps (hidden
    columns after the data's, by ``frame``'s row index), as ``dataset.parquet``; written under a temporary name and
    renamed, so that a run stopped midway leaves no half file to upload."""
    target = keep_dir / DATASET_NAME
    partial = partial_path(keep_dir)
    data = frame.select(c for c in frame.columns if c not in BOOKKEEPING_COLUMNS)
    metadata = dataset_metadata(read_report, source_name)
    if as_read and ROW_INDEX_COLUMN in frame.columns:
        hidden = {name: hidden_name(key, data.columns) for name, key in as_read.columns.items()}
        texts = (
            frame.select(ROW_INDEX_COLUMN)
            .lazy()
            .join(as_read.cells.lazy(), on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
            .select(pl.col(f"t{as_read.columns[name]}").alias(column) for name, column in hidden.items())
            .collect()
        )
        data = pl.concat([data, texts], how="horizontal")
        metadata[AS_READ_KEY] = json.dumps(hidden)
    data.write_parquet(partial, compression=DATASET_COMPRESSION, row_group_size=ROW_GROUP_ROWS, metadata=metadata)
    partial.rename(target)
    return DATASET_NAME


def partial_path(keep_dir: Path) -> Path:
    """Where ``dataset.parquet`` is written before it is whole (then renamed)."""
    return keep_dir / f"{DATASET_NAME}.partial"


def dataset_metadata(read_report: Mapping[str, Any], source_name: str) -> dict[str, str]:
    """The kept dataset's footer: how it was read, and from which file."""
    return {READ_REPORT_KEY: json.dumps(dict(read_report), default=str), SOURCE_NAME_KEY: source_name}


@dataclass(frozen=True)
class KeptDataset:
    path: Path
    read_report: dict[str, Any]
    source_name: str  # the file the dataset was converted from: primary.csv, ...
    hidden: dict[str, str] = field(default_factory=dict)  # column -> the hidden column of its cells as read

    @property
    def streamed(self) -> bool:
        """Kept from a file too large for memory: searched by scanning it, never read whole."""
        return bool(self.read_report.get("streamed"))

    def reads_with(self, tokens: Sequence[str]) -> bool:
        """Whether it can be read with the missing-value ``tokens``: it holds the values as written (the tokens are
        applied as it is read), or these very tokens are nulls in it already (other tokens cannot be told apart)."""
        applied = tokens_applied(self.read_report)
        return applied is None or applied == tuple(tokens)

    def read(self) -> pl.DataFrame:
        """The data."""
        return self.read_as_read()[0]

    def read_as_read(self) -> tuple[pl.DataFrame, AsRead]:
        """The data, and the cells its layouts write otherwise (agents.as_read)."""
        whole = pl.read_parquet(self.path)
        if not self.hidden:
            return whole, NOTHING
        return whole.drop(list(self.hidden.values())), from_hidden(whole, self.hidden)

    def scan_as_read(self) -> AsRead:
        """The cells its layouts write otherwise, as a plan over the file (one too large for memory)."""
        return from_hidden(pl.scan_parquet(self.path), self.hidden) if self.hidden else NOTHING

    def scan(self) -> pl.LazyFrame:
        """The data as a scan (without the cells as read: a search too large for memory writes its layouts)."""
        scan = pl.scan_parquet(self.path)
        return scan.drop(list(self.hidden.values())) if self.hidden else scan


def read_dataset(keep_dir: Path) -> KeptDataset | None:
    """The kept dataset, or None when there is none (or it is not one this module wrote)."""
    path = keep_dir / DATASET_NAME
    if not path.is_file():
        return None
    metadata = pl.read_parquet_metadata(path)
    if READ_REPORT_KEY not in metadata or SOURCE_NAME_KEY not in metadata:
        return None
    hidden = json.loads(metadata[AS_READ_KEY]) if AS_READ_KEY in metadata else {}
    return KeptDataset(path, json.loads(metadata[READ_REPORT_KEY]), metadata[SOURCE_NAME_KEY], hidden)


def write_matches(frame: pl.DataFrame, meta: dict[str, Any], params: SearcherParams, keep_dir: Path) -> list[str]:
    """A selection's matching rows in parts and its ``meta.json`` (written last: a selection with a meta is whole);
    the paths written, relative to the keep directory."""
    directory = keep_dir / matches_dir(params)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    parts = max(1, -(-frame.height // PART_ROWS))  # an empty selection keeps one empty part: its schema
    for index in range(parts):
        name = f"{matches_dir(params)}/{part_name(index)}"
        frame.slice(index * PART_ROWS, PART_ROWS).write_parquet(keep_dir / name, compression="lz4")
        written.append(name)
    meta_name = f"{matches_dir(params)}/{META_NAME}"
    (keep_dir / meta_name).write_text(json.dumps({**meta, "parts": parts}, default=str), encoding="utf-8")
    return [*written, meta_name]


@dataclass(frozen=True)
class KeptMatches:
    meta: dict[str, Any]
    directory: str  # the selection's, relative to the keep directory
    rows: pl.DataFrame  # the rows of the parts given, from the first part's first row
    first_row: int  # the selection's row number (0-based) of ``rows``'s first row

    def read_with(self, tokens: Sequence[str]) -> bool:
        """Whether they were found in data read with the missing-value ``tokens`` (matches kept before search read
        the tokens were found among the values as written: not these)."""
        return tokens_applied(self.meta["inputs"]["primary"]) == tuple(tokens)


def read_matches(keep_dir: Path, params: SearcherParams) -> KeptMatches | None:
    """The kept matches of the selection with the parts of ``params``' page, or None when they are not all here
    (none kept, or the worker did not fetch them)."""
    directory = keep_dir / matches_dir(params)
    meta_path = directory / META_NAME
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if "csv" not in meta:  # its search_result.csv was never stored: a later page could not have one
        return None
    indices = page_parts(params, meta["parts"])
    paths = [directory / part_name(index) for index in indices]
    if not all(path.is_file() for path in paths):
        return None
    rows = pl.concat([pl.read_parquet(path) for path in paths])
    return KeptMatches(meta, matches_dir(params), rows, indices[0] * PART_ROWS)
