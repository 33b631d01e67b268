"""The last check before a link: do the two rows' own data say they are different records?

The Fellegi–Sunter model (``agents.master.er.scoring``) sees only the compared columns and learns its m by
EM. On a file without duplicates (airports, countries by year, loans) EM still finds a "match" class — the
pairs alike on the compared names — and learns that they disagree on the state as often as strangers do, so a
disagreement there weighs nothing; the columns with no entity role (an IATA code, coordinates, thirty
numbers) are not compared at all. :func:`contradicted` looks at every data column of the pairs about to be
linked and counts, per column with a value on both rows (a column the model compares by its comparison
level: exact agrees, the closest fuzzy level — one edit, Jaro-Winkler ≥ 0.92 — or a name swap agrees by
half, "else" disagrees; the other columns as follows):

- an agreement (equal after trimming and lowercasing; numbers equal as numbers) weighing what it tells:
  ``1 - Σ f_v²``, the chance that two random rows of the column differ (a country column that is "USA" on
  every row weighs nothing, a name column nearly 1);
- a disagreement (numbers unequal, text less similar than ``SIMILAR``: the larger of Jaro-Winkler and the
  token-sort ratio, so typos and reordered words are neither) weighing 1, or ``KEY_DISAGREEMENT`` on a key
  column: a code unique or nearly unique per row (``KEY_DISTINCT``: an id, an IATA code, a record number),
  whose disagreement says "another record" louder than any attribute.

A pair is contradicted when its disagreements outweigh its agreements, unless it agrees exactly on a strong
identifier (``STRONG_ROLES``: an e-mail, phone, national id, shared id or date of birth compared by the
model): a duplicate customer with the same e-mail whose order columns differ stays a duplicate. Duplicates
agree on most of their columns (FEBRL's differ on their record id and a few typos), so the check leaves them
alone; Burlington IA and Burlington VT agree on name, city and country but not on code, state and
coordinates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Final

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from agents.layouts import text_of
from agents.params.common import DEFAULT_NULL_TOKENS

ComparedLevels = tuple[np.ndarray, tuple[int, ...], int]
"""A compared column's levels for the pairs, the levels that count as near agreement, and its "else" level."""
SIMILAR: Final = 0.8
KEY_DISTINCT: Final = 0.95
KEY_DISAGREEMENT: Final = 1.5
KEY_MAX_LENGTH: Final = 24
WEIGHT_ROWS: Final = 200_000
EXACT: Final = 1
NEAR_AGREEMENT: Final = 0.5
STRONG_ROLES: Final = frozenset({"email", "phone", "national_id", "id", "date_of_birth"})


def contradicted(
    frame: pl.DataFrame,
    columns: Sequence[str],
    compared: Mapping[str, ComparedLevels],
    strong: Mapping[str, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
) -> np.ndarray:
    """Per pair (positions ``left``, ``right`` of ``frame``): whether its data columns ``columns`` say the
    rows are different records (module docstring). ``compared``: the columns the model compares, with the
    pairs' comparison levels (``agents.master.er.compare``: exact agrees, the closest fuzzy level or a name
    swap agrees by half, "else" disagrees); the other columns are compared here. ``strong``: per compared
    strong identifier, its value codes per row (-1 null), from ``agents.master.er.compare.encode_columns``."""
    vetoed = np.zeros(len(left), dtype=bool)
    if len(left) == 0 or not columns:
        return vetoed
    facts = _weights(frame, columns)
    agree = np.zeros(len(left), dtype=np.float64)
    disagree = np.zeros(len(left), dtype=np.float64)
    for name, (levels, near, last) in compared.items():
        if name not in facts:
            continue
        agree += ((levels == EXACT) + NEAR_AGREEMENT * np.isin(levels, near)) * facts[name][0]
        disagree += (levels == last) * facts[name][1]
    rest = [name for name in columns if name not in compared]
    rows = np.unique(np.concatenate([left, right]))
    numbers = {name for name in rest if facts[name][2]}
    taken = frame[rows].select(_compared_values(frame.schema, rest, numbers))  # only the pairs' rows
    where_left, where_right = np.searchsorted(rows, left), np.searchsorted(rows, right)
    for name in rest:
        column = taken.get_column(name)
        a, b = column.gather(where_left), column.gather(where_right)
        present = (a.is_not_null() & b.is_not_null()).to_numpy()
        equal = (a == b).fill_null(False).to_numpy()
        unequal = present & ~equal
        if column.dtype == pl.String and unequal.any():
            at = np.flatnonzero(unequal)
            first, second = a.gather(at).to_numpy(), b.gather(at).to_numpy()
            similarity = np.maximum(
                np.asarray(process.cpdist(first, second, scorer=JaroWinkler.normalized_similarity)),
                np.asarray(process.cpdist(first, second, scorer=fuzz.token_sort_ratio)) / 100.0,
            )
            unequal[at[similarity >= SIMILAR]] = False
        agree += equal * facts[name][0]
        disagree += unequal * facts[name][1]
    vetoed = disagree > agree
    for codes in strong.values():
        same = (codes[left] >= 0) & (codes[left] == codes[right])
        vetoed &= ~same
    return vetoed


def _compared_values(schema: pl.Schema, columns: Sequence[str], numbers: Collection[str] = ()) -> list[pl.Expr]:
    """The columns' values as compared: numbers (and the text columns ``numbers``) as Float64 (NaN null),
    anything else as trimmed lowercase text; blanks and missing tokens null."""
    exprs = []
    for name in columns:
        dtype = schema[name]
        if dtype.is_numeric():
            value = pl.col(name).cast(pl.Float64)
        else:
            text = text_of(pl.col(name), dtype).str.strip_chars().str.to_lowercase()
            missing = (text == "") | text.is_in([token.lower() for token in DEFAULT_NULL_TOKENS])
            value = pl.when(missing).then(None).otherwise(text)
            if name not in numbers:
                exprs.append(value.alias(name))
                continue
            value = value.cast(pl.Float64, strict=False)
        exprs.append(pl.when(value.is_nan()).then(None).otherwise(value).alias(name))
    return exprs


def _weights(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, tuple[float, float, bool]]:
    """Per column (agreement weight, disagreement weight, whether a text column holds numbers only), from at
    most ``WEIGHT_ROWS`` evenly spaced rows."""
    schema = frame.schema
    if frame.height > WEIGHT_ROWS:
        frame = frame[np.linspace(0, frame.height - 1, WEIGHT_ROWS).astype(np.int64)]
    values = frame.select(_compared_values(schema, columns))
    shapes = []
    for index, name in enumerate(columns):
        column = pl.col(name)
        count = column.count()
        counts = column.drop_nulls().value_counts(name="n").struct.field("n").cast(pl.Float64)
        dtype = schema[name]
        distinct = column.drop_nulls().n_unique()
        numbers = (
            (column.cast(pl.Float64, strict=False).count() == count) & (count > 0)
            if dtype == pl.String
            else pl.lit(False)
        )
        if dtype.is_integer():
            code_like = pl.lit(True)
        elif dtype.is_numeric():  # measurements, amounts: no codes
            code_like = pl.lit(False)
        else:
            short = ~column.str.contains(" ", literal=True).any() & (column.str.len_chars().max() <= KEY_MAX_LENGTH)
            code_like = short & ~(numbers & column.str.contains(".", literal=True).any())  # decimals: no codes
        shapes += [
            numbers.alias(f"number_{index}"),
            (1.0 - (counts**2).sum() / pl.max_horizontal(count, 1).cast(pl.Float64) ** 2).alias(f"agree_{index}"),
            (code_like & (distinct >= KEY_DISTINCT * count) & (count > 1)).fill_null(False).alias(f"key_{index}"),
        ]
    row = values.select(shapes).row(0, named=True)
    return {
        name: (
            float(row[f"agree_{index}"] or 0.0),
            KEY_DISAGREEMENT if row[f"key_{index}"] else 1.0,
            bool(row[f"number_{index}"]),
        )
        for index, name in enumerate(columns)
    }
