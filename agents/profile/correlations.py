"""Pairwise correlations for the profile: Pearson and Spearman between numeric columns, Cramér's V between
categorical ones, and the strongest pairs (near-duplicate columns raise an alert).

Conventions:

- *Pairwise-complete rows*, like pandas ``DataFrame.corr()``: a pair is computed over the rows where both
  columns have a value. Nulls, NaN and infinities of a numeric column count as missing.
- Pearson is the sample correlation of the values; Spearman the Pearson correlation of their average ranks
  (ties share the mean of the ranks they span), ranked within each pair's complete rows, as pandas
  ``corr("spearman")`` and ``scipy.stats.spearmanr`` do.
- Cramér's V is the bias-uncorrected one, ``sqrt(chi2 / (n * (min(r, c) - 1)))``, from the contingency table of
  the pair's complete rows (``r`` and ``c`` the levels seen in those rows; chi-squared without continuity
  correction), as ``scipy.stats.contingency.association(method="cramer")``. ``cramers_v_corrected`` holds
  Bergsma's (2013) bias-corrected V: ``phi2 = max(0, chi2/n - (r-1)(c-1)/(n-1))``, ``r~ = r - (r-1)^2/(n-1)``,
  ``c~ = c - (c-1)^2/(n-1)``, ``V = sqrt(phi2 / min(r~-1, c~-1))``.
- A value is ``None`` where it is undefined: fewer than 2 complete rows, or a column constant over them. The
  diagonal is 1.0, ``None`` for a column with fewer than 2 distinct values. Values are rounded to
  :data:`DECIMALS` decimals.
- Above ``max_rows`` rows an evenly spaced sample (every k-th row) is used, and ``sampled`` says so; so it is
  when the estimated work exceeds ``work_budget`` (:data:`WORK_BUDGET`): the rows are then thinned further.
  ``rows_used`` is the number of rows the matrices come from.
- At most :data:`MAX_NUMERIC_COLUMNS` numeric and :data:`MAX_CATEGORICAL_COLUMNS` categorical columns, those
  with the most non-null values; ``skipped`` names every requested column left out of a matrix (over the cap,
  not numeric, too many levels) or kept in it with ``None`` everywhere (constant, fewer than 2 values).

How it stays cheap: each numeric column is coded once by its distinct values (an offset for integers of a
small range, a scaled offset for decimals of few digits and a small range, its dense rank from one sort
otherwise; the work estimate below counts a sort for every float column all the same). The pairs are grouped
by the rows they are complete on (the columns' null masks and their intersections, few in real data), and each
group of rows is handled once: the average rank of every code over those rows follows from one ``bincount``
and a cumulative sum (no sort per pair), and every Pearson and Spearman value of the group comes from one
matrix product of the centred values and ranks (only the rows of a few columns that take part in every pair of
the group). A contingency table is one ``bincount`` over a pair's joint codes, with null as code 0, whose row
and column are then dropped. The numeric and categorical matrices are computed side by side, and within them
the columns' codes and each group's columns (NumPy releases the GIL in its loops over rows); one group's rows
are held at a time. Flights (336,776 rows, 14 numeric and 3 categorical columns) takes about 0.15 s on two
cores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl

from agents.profile.column_stats import WORKERS

MAX_NUMERIC_COLUMNS = 50
MAX_CATEGORICAL_COLUMNS = 30
MAX_CATEGORIES = 100
DECIMALS = 6
METHODS = ("pearson", "spearman", "cramers_v")
METHOD_LABELS = {"pearson": "Pearson", "spearman": "Spearman", "cramers_v": "Cramér's V"}
MIN_NEAR_DUPLICATE_ROWS = 30  # fewer shared rows than this never make a near-duplicate alert (two points line up)
"""The methods compared for the strongest pairs; on a tie a pair keeps the earlier one."""
CHUNK_CELLS = 16_000_000
"""The centred values and ranks go through the matrix product in blocks of rows of about this many cells."""
WORK_BUDGET = 40_000_000
"""Above this estimate of the work, counted in column passes over a row (each column of each group of
pair-complete rows one, a sort :data:`SORT_PASSES`, a contingency table a quarter), the rows are thinned
further, evenly as for ``max_rows``, so that many rows of float columns or nulls scattered over many columns
(each pair then complete on its own rows) stay cheap: about half a second of one core. Flights (336,776
rows, 14 numeric and 3 categorical columns) needs about 14 million."""
SORT_PASSES = 8
OFFSET_CODES_MIN_RANGE = 1 << 16
"""An integer column whose range spans fewer than this many values, or four times its rows, is coded by its
offset from its minimum instead of by its dense rank (which takes a sort)."""
MAX_CODE_DECIMALS = 6
"""A float column whose values all have at most this many decimals, in a range as compact as an offset-coded
integer column's once scaled, is coded by its scaled offset (:func:`_decimal_codes`), without a sort."""
DECIMALS_SAMPLE = 1_000
"""The first values of a column that choose the decimals to check all its values with."""

Matrix = list[list[float | None]]
Plan = list[tuple[np.ndarray | None, list[tuple[int, int]]]]
"""Groups of pairs of numeric columns (by index), each with the rows all its pairs are complete on (``None``:
every row)."""


@dataclass
class _NumericColumn:
    values: np.ndarray  # float64, NaN where missing
    valid: np.ndarray | None  # None when the column has a value in every row
    count: int  # rows with a value
    varies: bool  # at least two distinct values
    offset_coded: bool


def correlations(
    frame: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    max_rows: int = 1_000_000,
    threshold: float = 0.9,
    top: int = 20,
    work_budget: float = WORK_BUDGET,
) -> dict[str, Any]:
    """Pearson, Spearman and Cramér's V matrices, the strongest pairs and the near duplicates (|value| >=
    ``threshold``) of the given columns; see the module docstring for the conventions and ``work_budget``."""
    skipped: dict[str, str] = {}
    schema = frame.schema
    numeric_columns = _of_kind(schema, numeric, _is_numeric, "not numeric", skipped)
    categorical_columns = _of_kind(schema, categorical, _is_categorical, "unsupported type", skipped)
    numeric_columns = _capped(frame, numeric_columns, MAX_NUMERIC_COLUMNS, "numeric", skipped)
    categorical_columns = _capped(frame, categorical_columns, MAX_CATEGORICAL_COLUMNS, "categorical", skipped)

    used = frame.select(list(dict.fromkeys([*numeric_columns, *categorical_columns])))
    step = math.ceil(used.height / max(max_rows, 1))
    if step > 1:
        used = used.gather_every(step)
    values = _float_values(used, numeric_columns)
    numeric_data, plan = _numeric_plan(used, numeric_columns, values)
    work = _work(used.height, numeric_data, plan, len(categorical_columns))
    if work > work_budget:
        thinning = math.ceil(work / work_budget)
        used = used.gather_every(thinning)
        step = max(step, 1) * thinning
        # The thinned rows' values are every thinning-th of those at hand: no second cast of the columns.
        values = [np.ascontiguousarray(column[::thinning]) for column in values]
        numeric_data, plan = _numeric_plan(used, numeric_columns, values)

    # The numeric and categorical matrices side by side (NumPy releases the GIL in its loops over the
    # rows); each records its skipped columns apart, replayed in the sequential order.
    numeric_skips: list[tuple[str, str]] = []
    categorical_skips: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        categorical_found = pool.submit(_categorical_matrices, used, categorical_columns, categorical_skips)
        pearson, spearman, numeric_rows = _numeric_matrices(numeric_columns, numeric_data, plan, numeric_skips, pool)
        cramers_v, cramers_v_corrected, categorical_rows, categorical_columns = categorical_found.result()
    for column, reason in numeric_skips + categorical_skips:
        _skip(skipped, column, reason)
    best = _best_pairs(
        [
            ("pearson", numeric_columns, pearson, numeric_rows),
            ("spearman", numeric_columns, spearman, numeric_rows),
            ("cramers_v", categorical_columns, cramers_v, categorical_rows),
        ]
    )
    return {
        "rows_used": used.height,
        "sampled": step > 1,
        "pearson": {"columns": numeric_columns, "matrix": pearson},
        "spearman": {"columns": numeric_columns, "matrix": spearman},
        "cramers_v": {"columns": categorical_columns, "matrix": cramers_v},
        "cramers_v_corrected": {"columns": categorical_columns, "matrix": cramers_v_corrected},
        "strongest_pairs": best[: max(top, 0)],
        "near_duplicates": [
            pair for pair in best if abs(pair["value"]) >= threshold and pair["rows"] >= MIN_NEAR_DUPLICATE_ROWS
        ],
        "threshold": threshold,
        "skipped": skipped,
    }


def _skip(skipped: dict[str, str], column: str, reason: str) -> None:
    """Record why a column has no correlations (a column in both lists may have two reasons)."""
    if column not in skipped:
        skipped[column] = reason
    elif reason not in skipped[column]:
        skipped[column] = f"{skipped[column]}; {reason}"


def _capped(frame: pl.DataFrame, unique: list[str], cap: int, kind: str, skipped: dict[str, str]) -> list[str]:
    """The columns in their given order, at most ``cap`` of them: those with the most non-null values, the
    earlier on a tie."""
    if len(unique) <= cap:
        return unique
    null_counts = frame.select(unique).null_count().row(0)
    ranked = sorted(range(len(unique)), key=lambda index: (null_counts[index], index))
    kept = set(ranked[:cap])
    for index in ranked[cap:]:
        _skip(skipped, unique[index], f"over the cap of {cap} {kind} columns (fewer non-null values)")
    return [column for index, column in enumerate(unique) if index in kept]


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def _is_categorical(dtype: pl.DataType) -> bool:
    return (
        dtype.is_numeric()
        or dtype.is_temporal()
        or isinstance(dtype, pl.String | pl.Boolean | pl.Categorical | pl.Enum)
    )


def _of_kind(
    schema: pl.Schema,
    columns: Sequence[str],
    accepts: Callable[[pl.DataType], bool],
    reason: str,
    skipped: dict[str, str],
) -> list[str]:
    """The distinct columns, in their given order, whose type ``accepts`` takes."""
    kept = []
    for column in dict.fromkeys(columns):
        if accepts(schema[column]):
            kept.append(column)
        else:
            _skip(skipped, column, reason)
    return kept


def _empty_matrix(size: int) -> Matrix:
    return [[None] * size for _ in range(size)]


def _rounded(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    return round(min(1.0, max(-1.0, value)), DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


# Numeric columns: Pearson and Spearman


def _numeric_plan(
    frame: pl.DataFrame, columns: list[str], values: list[np.ndarray]
) -> tuple[list[_NumericColumn], Plan]:
    """The columns' values (:func:`_float_values`) and the pairs to compute, grouped by the rows they are
    complete on."""
    data = _numeric_columns(frame, columns, values)
    return data, _pairs_by_rows(data, [index for index, column in enumerate(data) if _defined(column)])


def _defined(column: _NumericColumn) -> bool:
    return column.count >= 2 and column.varies


def _work(
    rows: int,
    numeric: list[_NumericColumn],
    plan: Plan,
    categorical_columns: int,
) -> float:
    """The estimate of the work that :data:`WORK_BUDGET` bounds, in column passes over the rows."""
    sorts = sum(1 for column in numeric if _defined(column) and not column.offset_coded)
    passes = sum(len({index for pair in pairs for index in pair}) for _, pairs in plan)
    return rows * (SORT_PASSES * sorts + passes + categorical_columns * (categorical_columns - 1) / 8)


def _numeric_matrices(
    columns: list[str],
    data: list[_NumericColumn],
    plan: Plan,
    skipped: list[tuple[str, str]],
    pool: ThreadPoolExecutor,
) -> tuple[Matrix, Matrix, list[list[int]]]:
    """The Pearson and Spearman matrices and the complete rows of each pair; ``skipped`` gets the columns
    kept with ``None`` everywhere. The columns' codes, then the groups of pairs, are computed in ``pool``."""
    size = len(columns)
    pearson, spearman = _empty_matrix(size), _empty_matrix(size)
    rows = [[0] * size for _ in range(size)]
    coded: list[int] = []
    for index, (column, column_data) in enumerate(zip(columns, data, strict=True)):
        rows[index][index] = column_data.count
        if column_data.count < 2:
            skipped.append((column, "fewer than 2 non-null values"))
        elif not column_data.varies:
            skipped.append((column, "constant"))
        else:
            pearson[index][index] = spearman[index][index] = 1.0
            coded.append(index)
    codes = dict(zip(coded, pool.map(lambda index: _codes(data[index]), coded), strict=True))

    # One group of pairs at a time, its columns side by side, each group's centred values and ranks in the
    # same scratch memory (a fresh matrix of tens of megabytes costs its page faults every time).
    groups = [(mask, pairs, sorted({index for pair in pairs for index in pair})) for mask, pairs in plan]
    scratch = np.empty(max((_scratch_cells(data, mask, len(members)) for mask, _, members in groups), default=0))
    for mask, pairs, members in groups:
        position = {index: offset for offset, index in enumerate(members)}
        cover = _cover([(position[first], position[second]) for first, second in pairs])
        values, ranks, varying, count = _subset_correlations(
            [data[index].values for index in members], [codes[index] for index in members], mask, cover, pool, scratch
        )
        for first, second in pairs:
            a, b = position[first], position[second]
            rows[first][second] = rows[second][first] = count
            if count >= 2 and varying[a] and varying[b]:
                pearson[first][second] = pearson[second][first] = _rounded(values[a, b])
                spearman[first][second] = spearman[second][first] = _rounded(ranks[a, b])
    return pearson, spearman, rows


def _scratch_cells(data: list[_NumericColumn], mask: np.ndarray | None, size: int) -> int:
    """The float64 cells :func:`_subset_correlations` centres ``size`` columns in over the rows of ``mask``."""
    count = data[0].values.shape[0] if mask is None else int(np.count_nonzero(mask))
    return 2 * size * min(count, max(1, CHUNK_CELLS // (2 * size)))


def _float_values(frame: pl.DataFrame, columns: list[str]) -> list[np.ndarray]:
    """Each column's values as float64, NaN where missing (nulls, NaN and infinities)."""
    as_float = frame.select(pl.col(column).cast(pl.Float64).fill_null(math.nan) for column in columns)
    found = []
    for column in columns:
        values = as_float.get_column(column).to_numpy()
        if not frame.schema[column].is_integer():  # only floats and decimals hold infinities
            values = np.where(np.isfinite(values), values, np.nan)
        found.append(values)
    return found


def _numeric_columns(frame: pl.DataFrame, columns: list[str], values: list[np.ndarray]) -> list[_NumericColumn]:
    """Each column's values (:func:`_float_values` of ``frame``) and what the plan needs."""
    data = []
    for column, column_values in zip(columns, values, strict=True):
        valid = ~np.isnan(column_values)
        count = int(np.count_nonzero(valid))
        present = column_values if count == column_values.shape[0] else column_values[valid]
        varies = bool(count and present.min() < present.max())
        data.append(
            _NumericColumn(
                column_values,
                None if count == column_values.shape[0] else valid,
                count,
                varies,
                _offset_coded(frame[column]),
            )
        )
    return data


def _offset_coded(series: pl.Series) -> bool:
    """Whether an integer column spans so few values that its offsets from its minimum are compact codes."""
    if not series.dtype.is_integer() or series.null_count() == series.len():
        return False
    low, high = series.min(), series.max()
    assert isinstance(low, int) and isinstance(high, int)
    return high - low < max(OFFSET_CODES_MIN_RANGE, 4 * series.len())


def _codes(column: _NumericColumn) -> np.ndarray:
    """Codes from 1, increasing with the value (equal values, equal codes), 0 where the value is missing:
    offsets from the minimum (integers; decimals scaled to integers, :func:`_decimal_codes`), or dense ranks
    from one sort."""
    present = column.values if column.valid is None else column.values[column.valid]
    scaled = None if column.offset_coded else _decimal_codes(present)
    if column.offset_coded:
        present_codes = (present - present.min()).astype(np.int64) + 1
    elif scaled is not None:  # the sort below costs ~0.1 s per million values
        present_codes = scaled
    else:
        order = np.argsort(present)
        ordered = present[order]
        starts = np.empty(ordered.shape[0], dtype=bool)
        starts[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        present_codes = np.empty(ordered.shape[0], dtype=np.int64)
        present_codes[order] = np.cumsum(starts)
    if column.valid is None:
        return present_codes
    codes = np.zeros(column.values.shape[0], dtype=np.int64)
    codes[column.valid] = present_codes
    return codes


def _decimal_codes(present: np.ndarray) -> np.ndarray | None:
    """Codes from 1 of finite values that are all written with at most :data:`MAX_CODE_DECIMALS` decimals
    (each the double nearest to ``k / 10**d`` for an integer ``k``), else None (the codes then take a sort of
    the floats). ``k`` increases with the value, and equal values give equal ``k``: in a compact range (as for
    :func:`_offset_coded`) ``k`` less its minimum is the code (a bincount of such codes gives the same average
    ranks as dense ranks would: a code that no value takes counts zero); otherwise the dense rank of ``k``,
    from one sort of integers that hold ``k`` and the row together (several times faster than an argsort)."""
    if present.shape[0] == 0:
        return None
    low, high = float(present.min()), float(present.max())
    limit = max(OFFSET_CODES_MIN_RANGE, 4 * present.shape[0])
    row_bits = (present.shape[0] - 1).bit_length()
    head = present[:DECIMALS_SAMPLE]
    for decimals in range(MAX_CODE_DECIMALS + 1):
        scale = 10.0**decimals
        if max(abs(low), abs(high)) * scale >= 2.0**53 or (high - low) * scale >= 2.0 ** (62 - row_bits):
            return None  # more decimals only widen the range
        if not np.array_equal(np.rint(head * scale) / scale, head):
            continue
        scaled = np.rint(present * scale)
        if not np.array_equal(scaled / scale, present):
            continue
        codes = scaled.astype(np.int64)
        codes -= codes.min()
        if (high - low) * scale < limit:
            return codes + 1
        return _dense_ranks(codes, row_bits)
    return None


def _dense_ranks(offsets: np.ndarray, row_bits: int) -> np.ndarray:
    """The dense ranks from 1 of non-negative integers below ``2 ** (63 - row_bits)``: each shifted left by
    ``row_bits`` and joined with its row number, sorted once (Polars' sort of integers), and read back."""
    keys = (offsets << row_bits) | np.arange(offsets.shape[0], dtype=np.int64)
    ordered = pl.Series(keys).sort().to_numpy()
    rows = ordered & ((1 << row_bits) - 1)
    values = ordered >> row_bits
    starts = np.empty(values.shape[0], dtype=bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    ranks = np.empty(values.shape[0], dtype=np.int64)
    ranks[rows] = np.cumsum(starts)
    return ranks


def _pairs_by_rows(prepared: list[_NumericColumn], defined: list[int]) -> Plan:
    """The pairs of ``defined`` columns grouped by the rows both columns have a value in (``None``: all rows).
    Columns with identical null masks share one mask; intersections equal to a known mask reuse it."""
    group_of: dict[int, int] = {}
    masks: list[np.ndarray | None] = [None]
    mask_keys: dict[bytes, int] = {}
    for index in defined:
        valid = prepared[index].valid
        if valid is None:
            group_of[index] = 0
            continue
        key = np.packbits(valid).tobytes()
        if key not in mask_keys:
            mask_keys[key] = len(masks)
            masks.append(valid)
        group_of[index] = mask_keys[key]

    rowset_of: dict[tuple[int, int], int] = {}
    grouped: dict[int, list[tuple[int, int]]] = {}
    for first, second in combinations(defined, 2):
        low, high = sorted((group_of[first], group_of[second]))
        if (low, high) not in rowset_of:
            if low == 0 or low == high:
                rowset_of[low, high] = high
            else:
                both = masks[low] & masks[high]  # type: ignore[operator]
                key = np.packbits(both).tobytes()
                if key not in mask_keys:
                    mask_keys[key] = len(masks)
                    masks.append(both)
                rowset_of[low, high] = mask_keys[key]
        grouped.setdefault(rowset_of[low, high], []).append((first, second))
    return [(masks[rowset], pairs) for rowset, pairs in grouped.items()]


def _cover(pairs: list[tuple[int, int]]) -> list[int]:
    """A few columns that take part in every pair (greedily: the one in most pairs not yet covered first), so
    that only their rows of the correlation matrices need computing."""
    uncovered = set(pairs)
    cover = []
    while uncovered:
        degree: dict[int, int] = {}
        for pair in uncovered:
            for index in pair:
                degree[index] = degree.get(index, 0) + 1
        chosen = max(sorted(degree), key=degree.__getitem__)
        cover.append(chosen)
        uncovered = {pair for pair in uncovered if chosen not in pair}
    return sorted(cover)


def _subset_correlations(
    values: list[np.ndarray],
    codes: list[np.ndarray],
    mask: np.ndarray | None,
    cover: list[int],
    pool: ThreadPoolExecutor,
    scratch: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[bool], int]:
    """Pearson and Spearman matrices of the columns (their values and codes) over the rows of ``mask`` (all
    rows if ``None``), whether each column varies over those rows, and their count. Every column has a value
    in each of those rows. Only the rows and columns of the matrices in ``cover`` are computed (the rest stays
    NaN). The columns are gathered and centred side by side in ``pool`` (each into its own row), in
    ``scratch`` when it is given (float64, at least :func:`_scratch_cells` of them)."""
    positions = None if mask is None else np.flatnonzero(mask)
    count = values[0].shape[0] if positions is None else positions.shape[0]
    size = len(values)
    block = max(1, CHUNK_CELLS // (2 * size))
    one_block = count <= block
    cells = size * min(count, block)
    if scratch is None or scratch.shape[0] < 2 * cells:
        scratch = np.empty(2 * cells)
    centred_values = scratch[:cells].reshape(size, min(count, block))
    centred_ranks = scratch[cells : 2 * cells].reshape(size, min(count, block))
    value_gram = np.zeros((len(cover), size))
    rank_gram = np.zeros((len(cover), size))
    value_squares = np.zeros(size)
    rank_squares = np.zeros(size)
    middle_rank = (count + 1) / 2.0

    def prepare(offset: int) -> tuple[float, np.ndarray, bool]:
        """The column's mean and centred average rank of each code over the rows, and whether it varies."""
        column_values, column_codes = values[offset], codes[offset]
        subset_codes = column_codes if positions is None else column_codes[positions]
        counts = np.bincount(subset_codes)
        rank_table = np.cumsum(counts) - (counts - 1) / 2.0 - middle_rank  # each code's centred average rank
        if one_block and positions is not None:  # gathered into the column's row, then centred there
            subset_values = np.take(column_values, positions, out=centred_values[offset])
        else:
            subset_values = column_values if positions is None else column_values[positions]
        mean = float(subset_values.mean()) if count else 0.0
        if one_block:  # the rows are at hand: centre them now rather than gather them again
            np.subtract(subset_values, mean, out=centred_values[offset])
            np.take(rank_table, subset_codes, out=centred_ranks[offset], mode="clip")
        return mean, rank_table, bool(np.count_nonzero(counts) > 1)

    prepared = list(pool.map(prepare, range(size)))
    varying = [column_varies for _, _, column_varies in prepared]
    for start in range(0, count, block):
        stop = min(start + block, count)
        if not one_block:
            rows = slice(start, stop) if positions is None else positions[start:stop]

            def centre(offset: int, rows: slice | np.ndarray = rows, width: int = stop - start) -> None:
                mean, rank_table, _ = prepared[offset]
                np.subtract(values[offset][rows], mean, out=centred_values[offset, :width])
                np.take(rank_table, codes[offset][rows], out=centred_ranks[offset, :width], mode="clip")

            list(pool.map(centre, range(size)))
        value_block, rank_block = centred_values[:, : stop - start], centred_ranks[:, : stop - start]
        value_gram += value_block[cover] @ value_block.T
        rank_gram += rank_block[cover] @ rank_block.T
        value_squares += np.einsum("ij,ij->i", value_block, value_block)
        rank_squares += np.einsum("ij,ij->i", rank_block, rank_block)
    return (
        _normalised(value_gram, value_squares, cover),
        _normalised(rank_gram, rank_squares, cover),
        varying,
        count,
    )


def _normalised(gram_rows: np.ndarray, squares: np.ndarray, cover: list[int]) -> np.ndarray:
    """The symmetric correlation matrix whose ``cover`` rows are ``gram_rows`` over the norms' products."""
    scale = np.sqrt(squares)
    with np.errstate(divide="ignore", invalid="ignore"):
        rows = gram_rows / np.outer(scale[cover], scale)
    matrix = np.full((squares.shape[0], squares.shape[0]), np.nan)
    matrix[:, cover] = rows.T
    matrix[cover, :] = rows
    return matrix


# Categorical columns: Cramér's V


def _categorical_matrices(
    frame: pl.DataFrame, columns: list[str], skipped: list[tuple[str, str]]
) -> tuple[Matrix, Matrix, list[list[int]], list[str]]:
    """Cramér's V (uncorrected and Bergsma-corrected), the complete rows of each pair and the columns kept
    (those with more than :data:`MAX_CATEGORIES` levels are skipped); ``skipped`` gets each column left out
    or kept with ``None`` everywhere, and why."""
    kept: list[str] = []
    codes: list[np.ndarray] = []
    level_counts: list[int] = []
    for column in columns:
        coded = _level_codes(frame[column])
        if coded is None:
            skipped.append((column, f"more than {MAX_CATEGORIES} distinct values"))
            continue
        kept.append(column)
        codes.append(coded[0])
        level_counts.append(coded[1])
    size = len(kept)
    uncorrected, corrected = _empty_matrix(size), _empty_matrix(size)
    rows = [[0] * size for _ in range(size)]
    for index, column in enumerate(kept):
        rows[index][index] = int(np.count_nonzero(codes[index]))
        if rows[index][index] < 2:
            skipped.append((column, "fewer than 2 non-null values"))
        elif level_counts[index] < 2:
            skipped.append((column, "constant"))
        else:
            uncorrected[index][index] = corrected[index][index] = 1.0
    defined = [index for index in range(size) if uncorrected[index][index] is not None]
    for first, second in combinations(defined, 2):
        width = level_counts[second] + 1
        joint = codes[first] * width + codes[second]
        table = np.bincount(joint, minlength=(level_counts[first] + 1) * width).reshape(-1, width)[1:, 1:]
        count = int(table.sum())
        rows[first][second] = rows[second][first] = count
        plain, bias_corrected = _cramers_v(table)
        uncorrected[first][second] = uncorrected[second][first] = plain
        corrected[first][second] = corrected[second][first] = bias_corrected
    return uncorrected, corrected, rows, kept


def _level_codes(series: pl.Series) -> tuple[np.ndarray, int] | None:
    """Each row's level as a code from 1 (0 where null; NaN counts as null) and the number of levels, or
    ``None`` above :data:`MAX_CATEGORIES` levels. Numbers, booleans and temporals are coded by their rank
    among their sorted levels (a lookup table indexed by the offset from the minimum for integers of a
    small range, else a binary search), text by a cast to an ``Enum`` of its levels."""
    if series.dtype.is_float():
        series = series.fill_nan(None)
    wide = series.dtype in (pl.Int128, pl.UInt128)  # NumPy has no 128-bit integers: coded as text, exactly
    if (series.dtype.is_numeric() and not wide) or series.dtype.is_temporal() or series.dtype == pl.Boolean:
        physical = series.cast(pl.Float64) if isinstance(series.dtype, pl.Decimal) else series.to_physical()
        if physical.dtype == pl.Boolean:
            physical = physical.cast(pl.UInt8)
        levels = physical.drop_nulls().unique()
        if levels.len() > MAX_CATEGORIES:
            return None
        sorted_levels = levels.sort().to_numpy()
        codes = _ranks(physical, sorted_levels)
        if physical.null_count():
            codes[physical.is_null().to_numpy()] = 0
        return codes, sorted_levels.shape[0]
    text = series.cast(pl.String)
    text_levels = text.drop_nulls().unique()
    if text_levels.len() > MAX_CATEGORIES:
        return None
    coded = text.cast(pl.Enum(text_levels)).to_physical().cast(pl.Int64) + 1
    return coded.fill_null(0).to_numpy(), text_levels.len()


def _ranks(physical: pl.Series, sorted_levels: np.ndarray) -> np.ndarray:
    """Each value's 1-based position among ``sorted_levels`` (the distinct values; anything where null)."""
    if not sorted_levels.shape[0]:
        return np.ones(physical.len(), dtype=np.int64)
    if physical.dtype.is_integer():
        low, high = int(sorted_levels[0]), int(sorted_levels[-1])
        if high - low < OFFSET_CODES_MIN_RANGE and -(2**63) <= low and high < 2**63:
            table = np.zeros(high - low + 1, dtype=np.int64)
            table[sorted_levels.astype(np.int64) - low] = np.arange(1, sorted_levels.shape[0] + 1)
            return table[physical.fill_null(low).cast(pl.Int64).to_numpy() - low]
    return np.searchsorted(sorted_levels, physical.fill_null(0).to_numpy()).astype(np.int64) + 1


def _cramers_v(table: np.ndarray) -> tuple[float | None, float | None]:
    """Uncorrected and Bergsma-corrected Cramér's V of a contingency table (empty rows and columns ignored)."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0].astype(np.float64)
    count = table.sum()
    levels_a, levels_b = table.shape
    if count < 2 or min(levels_a, levels_b) < 2:
        return None, None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / count
    chi2 = float(((table - expected) ** 2 / expected).sum())
    plain = _rounded(math.sqrt(chi2 / (count * (min(levels_a, levels_b) - 1))))
    phi2 = max(0.0, chi2 / count - (levels_a - 1) * (levels_b - 1) / (count - 1))
    corrected_a = levels_a - (levels_a - 1) ** 2 / (count - 1)
    corrected_b = levels_b - (levels_b - 1) ** 2 / (count - 1)
    denominator = min(corrected_a, corrected_b) - 1
    bias_corrected = _rounded(math.sqrt(phi2 / denominator)) if denominator > 0 else None
    return plain, bias_corrected


# The strongest pairs


def _best_pairs(results: list[tuple[str, list[str], Matrix, list[list[int]]]]) -> list[dict[str, Any]]:
    """Each pair of columns once, by its strongest method, strongest |value| first (then by names)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for method, columns, matrix, rows in results:
        for first, second in combinations(range(len(columns)), 2):
            value = matrix[first][second]
            if value is None:
                continue
            key = (min(columns[first], columns[second]), max(columns[first], columns[second]))
            current = best.get(key)
            if current is None or abs(value) > abs(current["value"]):
                best[key] = {
                    "column_a": columns[first],
                    "column_b": columns[second],
                    "method": method,
                    "value": value,
                    "rows": rows[first][second],
                }
    return sorted(
        best.values(),
        key=lambda pair: (-abs(pair["value"]), pair["column_a"], pair["column_b"], METHODS.index(pair["method"])),
    )
