"""Comparison levels of candidate pairs, computed over whole arrays (rapidfuzz ``cpdist`` in C).

A comparison looks at one normalised column (or, for the location, a few) and puts each pair in one of its
ordered levels: level 0 is "null" (either side missing: no evidence, weight 0), level 1 "exact", then
fuzzy levels from the closest down, the last "else". The first level whose condition holds wins. Kinds
and their levels:
- ``name`` (given name) and ``surname``: exact · Jaro-Winkler ≥ 0.92 · ≥ 0.88 · [surname only: swapped]
  · Jaro-Winkler ≥ 0.7 · else (Splink's ``NameComparison`` thresholds). Swapped = given name and surname
  exchanged (each like the other record's other part, Jaro-Winkler ≥ 0.92 both ways): one piece of
  evidence, so it counts once, on the surname, and the given-name comparison abstains (null level);
- ``text`` (full name, address, city, company, other columns): exact · similarity ≥ 0.92 · ≥ 0.8 · ≥ 0.6
  · else, where similarity is the larger of Jaro-Winkler and token-sort ratio (word order ignored);
- ``date``: exact · one edit (one digit wrong or two adjacent digits swapped, on YYYYMMDD) · day and month
  swapped · same year · else;
- ``code`` (postcode, phone, national id, id, street number): exact · one edit · else;
- ``email``: exact · same user part (another domain) · one edit · else (no looser level: e-mails are
  made of names, so "nicola.white7@" and "nicholas.white4@" are alike without being one person);
- ``category`` (state, country, gender): exact · else;
- ``location``: street, street number, city and postcode together, when at least two of street, city and
  postcode are compared (without a street number column, the numbers the street text holds stand for it:
  "10 main street" and "11 main street" are alike as text but not one address): same address (street
  similarity ≥ 0.92, street number equal or missing, same
  postcode or city similarity ≥ 0.92, or no area) · similar address (street ≥ 0.8 in a similar area:
  postcode within one edit or city ≥ 0.8, or no area) · same area · similar area or similar street · else.
  One comparison rather than four because they are not independent (a postcode names its suburb, people
  share streets): counted apart, one shared street would count three or four times, and EM would take
  "lives in the same street" for "is the same person".

Values are compared once per distinct (left, right) pair of values: the pairs carry integer codes, and
similarities are computed over the distinct code pairs that are neither null nor equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler

from agents.master.er.normalise import GIVEN, SURNAME

ROLE_COMPARISONS: dict[str, str] = {
    "given_name": "name",
    "surname": "surname",
    "full_name": "text",
    "email": "email",
    "phone": "code",
    "street_number": "code",
    "address": "text",
    "address_2": "text",
    "city": "text",
    "state": "category",
    "postcode": "code",
    "country": "category",
    "date_of_birth": "date",
    "national_id": "code",
    "id": "code",
    "company": "text",
    "gender": "category",
    "other": "text",
}

LEVELS: dict[str, tuple[str, ...]] = {
    "name": ("null", "exact", "jaro_winkler>=0.92", "jaro_winkler>=0.88", "jaro_winkler>=0.7", "else"),
    "surname": ("null", "exact", "jaro_winkler>=0.92", "jaro_winkler>=0.88", "swapped", "jaro_winkler>=0.7", "else"),
    "text": ("null", "exact", "similarity>=0.92", "similarity>=0.8", "similarity>=0.6", "else"),
    "date": ("null", "exact", "one_edit", "day_month_swapped", "same_year", "else"),
    "code": ("null", "exact", "one_edit", "else"),
    "email": ("null", "exact", "same_user", "one_edit", "else"),
    "category": ("null", "exact", "else"),
    "location": ("null", "same_address", "similar_address", "same_area", "similar_area", "else"),
}
LOCATION_ROLES = ("address", "street_number", "city", "postcode")
LOCATION = "location"
TF_ROLES = frozenset({"given_name", "surname", "full_name"})
NULL_LEVEL, EXACT_LEVEL = 0, 1
SWAP_SIMILARITY = 0.92
CHUNK_PAIRS = 1_000_000
TEXT_THRESHOLDS = (0.92, 0.8, 0.6)
PARALLEL_PAIRS = 20_000


@dataclass(frozen=True)
class Comparison:
    """One comparison: ``name`` (the normalised column, or "location"), its ``role``, ``kind`` (a key of
    ``LEVELS``), whether exact agreement gets a term-frequency adjustment (``tf``), and for the location
    its ``parts`` (one comparison per column)."""

    name: str
    role: str
    kind: str
    tf: bool = False
    parts: tuple[Comparison, ...] = ()

    @property
    def levels(self) -> tuple[str, ...]:
        return LEVELS[self.kind]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts) if self.parts else (self.name,)


def build_comparisons(compared: Mapping[str, str], *, term_frequency: bool) -> list[Comparison]:
    """One comparison per compared column (column → role), except that the first street, street number,
    city and postcode columns make one location comparison when at least two of street, city and postcode
    are there. Exact names get the term-frequency adjustment when ``term_frequency``."""
    first: dict[str, str] = {}
    for column, role in compared.items():
        first.setdefault(role, column)
    combine = sum(role in first for role in ("address", "city", "postcode")) >= 2
    located = {first[role] for role in LOCATION_ROLES if role in first} if combine else set()
    comparisons: list[Comparison] = []
    for column, role in compared.items():
        if column in located:
            if role == next(role for role in LOCATION_ROLES if role in first):
                parts = tuple(
                    Comparison(first[part], part, ROLE_COMPARISONS[part]) for part in LOCATION_ROLES if part in first
                )
                comparisons.append(Comparison(LOCATION, LOCATION, "location", parts=parts))
            continue
        kind = ROLE_COMPARISONS.get(role, "text")
        comparisons.append(Comparison(column, role, kind, tf=term_frequency and role in TF_ROLES))
    return comparisons


@dataclass(frozen=True)
class Encoded:
    """A normalised column as integer codes (-1 for null) into ``values`` (the sorted distinct values), and
    those values as a Polars series (``series``: text work on them without Python strings)."""

    codes: np.ndarray
    values: np.ndarray
    series: pl.Series


def encode(series: pl.Series) -> Encoded:
    return encode_columns(series.to_frame(), [series.name])[series.name]


def encode_columns(frame: pl.DataFrame, names: Sequence[str]) -> dict[str, Encoded]:
    """:class:`Encoded` of each column ``names`` of ``frame``, the columns in one query (side by side)."""
    codes = frame.select((pl.col(name).rank("dense").fill_null(0).cast(pl.Int32) - 1).alias(name) for name in names)
    distinct = pl.collect_all(frame.lazy().select(pl.col(name).drop_nulls().unique().sort()) for name in names)
    return {
        name: Encoded(codes.get_column(name).to_numpy(), values.to_series().to_numpy(), values.to_series())
        for name, values in zip(names, distinct, strict=True)
    }


def comparison_levels(
    encoded: Mapping[str, Encoded],
    comparisons: Sequence[Comparison],
    left: np.ndarray,
    right: np.ndarray,
    *,
    workers: int = 1,
) -> np.ndarray:
    """The level of every pair (rows of positions ``left``, ``right``) in every comparison: an int8 array of
    shape (pairs, comparisons). ``encoded`` holds each compared column and, for name swaps, ``GIVEN`` and
    ``SURNAME``. Pairs go through in chunks of ``CHUNK_PAIRS``, which bounds the memory of the
    intermediate arrays whatever the number of pairs; each (chunk, comparison) is one task, run on
    ``workers`` threads (rapidfuzz, numpy's sorts and Polars release the GIL), each task writing its own
    cells, so the result does not depend on the order the tasks finish in."""
    levels = np.zeros((len(left), len(comparisons)), dtype=np.int8)

    def fill(task: tuple[int, int]) -> None:
        start, index = task
        chunk = slice(start, start + CHUNK_PAIRS)
        levels[chunk, index] = _levels(encoded, comparisons[index], left[chunk], right[chunk], workers)

    tasks = [(start, index) for start in range(0, len(left), CHUNK_PAIRS) for index in range(len(comparisons))]
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            fill(task)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(fill, tasks):
                pass
    return levels


def _levels(
    encoded: Mapping[str, Encoded], comparison: Comparison, left: np.ndarray, right: np.ndarray, workers: int
) -> np.ndarray:
    if comparison.parts:
        return _location_levels(encoded, comparison, left, right, workers)
    column = encoded[comparison.name]
    left_codes, right_codes = column.codes[left], column.codes[right]
    level = np.full(len(left), len(comparison.levels) - 1, dtype=np.int8)
    null = (left_codes < 0) | (right_codes < 0)
    exact = ~null & (left_codes == right_codes)
    level[null] = NULL_LEVEL
    level[exact] = EXACT_LEVEL
    rest = np.flatnonzero(~null & ~exact)
    if rest.size == 0 or comparison.kind == "category":
        return level
    # distinct unordered value pairs among the rest: similarities are symmetric
    low = np.minimum(left_codes[rest], right_codes[rest])
    high = np.maximum(left_codes[rest], right_codes[rest])
    distinct, inverse = np.unique(low.astype(np.int64) * (len(column.values) + 1) + high, return_inverse=True)
    first = distinct // (len(column.values) + 1)
    second = distinct % (len(column.values) + 1)
    fuzzy = _fuzzy_levels(comparison.kind, column, first, second, workers)[inverse]
    other_part = {"given_name": SURNAME, "surname": GIVEN}.get(comparison.role)
    if comparison.kind in ("name", "surname") and other_part is not None and other_part in encoded:
        # the swap counts once, on the surname comparison; the given-name comparison abstains (null)
        unlike = np.flatnonzero(fuzzy > LEVELS[comparison.kind].index("jaro_winkler>=0.88"))
        swap = _swapped(column, encoded[other_part], left[rest[unlike]], right[rest[unlike]], workers)
        swap_level = LEVELS["surname"].index("swapped") if comparison.kind == "surname" else NULL_LEVEL
        fuzzy[unlike[swap]] = swap_level
    level[rest] = fuzzy
    return level


def _fuzzy_levels(
    kind: str, column: Encoded, first_codes: np.ndarray, second_codes: np.ndarray, workers: int
) -> np.ndarray:
    """Levels (from 2) of distinct value pairs (codes into ``column``'s values) that are neither null nor
    equal."""
    labels = LEVELS[kind]
    first, second = column.values[first_codes], column.values[second_codes]
    if kind == "name":
        similarity = _pairwise(JaroWinkler.normalized_similarity, first, second, workers)
        return _thresholds(similarity, [0.92, 0.88, 0.7], first_level=2)
    if kind == "surname":
        similarity = _pairwise(JaroWinkler.normalized_similarity, first, second, workers)
        return _thresholds(similarity, [0.92, 0.88, 2.0, 0.7], first_level=2)  # 2.0: the swap level, set apart
    if kind == "text":
        similarity = _pairwise(JaroWinkler.normalized_similarity, first, second, workers)
        # the token-sort ratio can only raise a pair below the first threshold; between single words it is
        # the plain ratio (one token sorts as itself), which costs less than half as much
        below = np.flatnonzero(similarity < TEXT_THRESHOLDS[0])
        words = _spaced(column.series, first_codes[below]) | _spaced(column.series, second_codes[below])
        token_sort = np.empty(below.size, dtype=np.float64)
        several, single = below[words], below[~words]
        token_sort[words] = _pairwise(fuzz.token_sort_ratio, first[several], second[several], workers)
        token_sort[~words] = _pairwise(fuzz.ratio, first[single], second[single], workers)
        similarity[below] = np.maximum(similarity[below], token_sort / 100.0)
        return _thresholds(similarity, TEXT_THRESHOLDS, first_level=2)
    if kind == "code":
        edits = _pairwise(OSA.distance, first, second, workers)
        return np.where(edits <= 1, 2, len(labels) - 1).astype(np.int8)
    if kind == "email":
        users_equal = _users(column.series, first_codes) == _users(column.series, second_codes)
        edits = _pairwise(OSA.distance, first, second, workers)
        return np.select([users_equal, edits <= 1], [2, 3], len(labels) - 1).astype(np.int8)
    if kind == "date":
        edits = _pairwise(OSA.distance, first, second, workers)
        dates = column.series.gather(first_codes), column.series.gather(second_codes)
        swapped = _day_month_swapped(*dates)
        same_year = (dates[0].str.slice(0, 4) == dates[1].str.slice(0, 4)).to_numpy()
        return np.select([edits <= 1, swapped, same_year], [2, 3, 4], len(labels) - 1).astype(np.int8)
    raise ValueError(f"unknown comparison kind {kind!r}")


def _location_levels(
    encoded: Mapping[str, Encoded], comparison: Comparison, left: np.ndarray, right: np.ndarray, workers: int
) -> np.ndarray:
    """The location levels of the module docstring from the parts' own levels (a missing part: null)."""
    null = np.zeros(len(left), dtype=np.int8)
    part_levels = {part.role: _levels(encoded, part, left, right, workers) for part in comparison.parts}
    street = part_levels.get("address", null)
    number = part_levels.get("street_number", null)
    if "street_number" not in part_levels and "address" in part_levels:
        address = next(part for part in comparison.parts if part.role == "address")
        number = _house_number_levels(encoded[address.name], left, right)
    city = part_levels.get("city", null)
    postcode = part_levels.get("postcode", null)
    # text levels: 1 exact, 2 ≥ 0.92, 3 ≥ 0.8; code levels: 1 exact, 2 one edit
    street_same = (street == 1) | (street == 2)
    street_close = street_same | (street == 3)
    number_fits = (number == NULL_LEVEL) | (number == EXACT_LEVEL)
    no_area = (city == NULL_LEVEL) & (postcode == NULL_LEVEL)
    area_same = (postcode == EXACT_LEVEL) | (city == 1) | (city == 2)
    area_close = area_same | (postcode == 2) | (city == 3)
    level = np.select(
        [
            (street == NULL_LEVEL) & no_area,
            street_same & number_fits & (area_same | no_area),
            street_close & (area_close | no_area),
            area_same,
            area_close | street_close,
        ],
        [NULL_LEVEL, 1, 2, 3, 4],
        len(comparison.levels) - 1,
    )
    return level.astype(np.int8)


def _house_number_levels(address: Encoded, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """A street number's code levels from the numbers the addresses hold ("10 main street", "flat 2 10 main
    street": their digit runs in order), when no street number column is compared: null when either address
    holds none, exact when they hold the same, else "else" (10 and 11 Main Street are two addresses, however
    alike their text)."""
    numbers = address.series.str.extract_all(r"\d+").list.join(" ").to_numpy()
    left_codes, right_codes = address.codes[left], address.codes[right]
    present = np.append(numbers != "", False)  # code -1 (null): no number
    with_numbers = np.append(numbers, "")
    known = present[left_codes] & present[right_codes]
    same = with_numbers[left_codes] == with_numbers[right_codes]
    code_else = len(LEVELS["code"]) - 1
    return np.where(known, np.where(same, EXACT_LEVEL, code_else), NULL_LEVEL).astype(np.int8)


def _thresholds(similarity: np.ndarray, thresholds: Sequence[float], first_level: int) -> np.ndarray:
    level = np.full(len(similarity), first_level + len(thresholds), dtype=np.int8)
    for offset, threshold in reversed(list(enumerate(thresholds))):
        level[similarity >= threshold] = first_level + offset
    return level


def _pairwise(scorer: Callable[..., float], first: np.ndarray, second: np.ndarray, workers: int) -> np.ndarray:
    # rapidfuzz's own threads only from PARALLEL_PAIRS pairs on: below, starting them costs more than they save
    return np.asarray(
        process.cpdist(first, second, scorer=scorer, workers=workers if len(first) >= PARALLEL_PAIRS else 1)
    )


def _spaced(values: pl.Series, codes: np.ndarray) -> np.ndarray:
    """Whether the values at ``codes`` hold more than one word (normalised text: words one space apart)."""
    return values.gather(codes).str.contains(" ", literal=True).to_numpy()


def _users(values: pl.Series, codes: np.ndarray) -> np.ndarray:
    """The user part (before the "@") of the e-mails at ``codes``."""
    return values.gather(codes).str.split("@").list.first().to_numpy()


def _day_month_swapped(a: pl.Series, b: pl.Series) -> np.ndarray:
    """YYYYMMDD values whose day and month are exchanged (same year)."""
    swapped = (
        (a.str.slice(0, 4) == b.str.slice(0, 4))
        & (a.str.slice(4, 2) == b.str.slice(6, 2))
        & (a.str.slice(6, 2) == b.str.slice(4, 2))
    )
    return swapped.fill_null(False).to_numpy()


def _swapped(own: Encoded, other: Encoded, left: np.ndarray, right: np.ndarray, workers: int) -> np.ndarray:
    """Pairs whose given name and surname are exchanged: each record's name part is like (Jaro-Winkler ≥
    0.92) the other record's other part, both ways round, so one shared word is not a swap."""
    forward = _pairwise(JaroWinkler.normalized_similarity, _strings(own, left), _strings(other, right), workers)
    # the other way round only where this way holds (few pairs)
    maybe = np.flatnonzero(forward >= SWAP_SIMILARITY)
    backward = _pairwise(
        JaroWinkler.normalized_similarity, _strings(own, right[maybe]), _strings(other, left[maybe]), workers
    )
    swapped = np.zeros(len(left), dtype=bool)
    swapped[maybe[backward >= SWAP_SIMILARITY]] = True
    return swapped


def _strings(encoded: Encoded, positions: np.ndarray) -> np.ndarray:
    """The values at ``positions``, "" where null."""
    codes = encoded.codes[positions]
    if len(encoded.values) == 0:
        return np.full(len(positions), "", dtype=object)
    return np.where(codes >= 0, encoded.values[np.maximum(codes, 0)], "").astype(object)
