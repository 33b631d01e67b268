"""The text comparison's and the name-swap check's shortcuts equal the formulas they replace.

- text: the token-sort ratio is computed only where Jaro-Winkler is below the first threshold, and between
  single words (no space on either side) the plain ratio stands in for it;
- swap: the backward Jaro-Winkler only where the forward one reaches ``SWAP_SIMILARITY``.

The single-word stand-in holds because a normalised value holds no character that rapidfuzz splits tokens
on other than the space (checked over every code point); a raw tab would break it (shown below).
"""

from __future__ import annotations

import random

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz, process
from rapidfuzz.distance import JaroWinkler

from agents.master.er.compare import (
    ROLE_COMPARISONS,
    SWAP_SIMILARITY,
    TEXT_THRESHOLDS,
    Encoded,
    _fuzzy_levels,
    _strings,
    _swapped,
    _thresholds,
    encode,
)
from agents.master.er.normalise import ROLE_KINDS, clean_text

LETTERS = "aabcdeeilmnorst"
"""Few letters, so that random words are often alike (every level gets pairs)."""
ODD_LETTERS = "aeéñøßσиж王ाि0123"
"""Letters, marks (Devanagari vowel signs) and digits a normalised value can hold."""


def _old_text_levels(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The text levels as defined before the shortcuts (cdf2380): both scores for every pair."""
    similarity = np.maximum(
        np.asarray(process.cpdist(first, second, scorer=JaroWinkler.normalized_similarity)),
        np.asarray(process.cpdist(first, second, scorer=fuzz.token_sort_ratio)) / 100.0,
    )
    return _thresholds(similarity, TEXT_THRESHOLDS, first_level=2)


def _distinct_pairs(column: Encoded, count: int, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """Distinct unordered pairs of unequal codes, as ``_levels`` hands them over (low code first)."""
    size = len(column.values)
    pairs = {tuple(sorted(rng.sample(range(size), 2))) for _ in range(count)} if size >= 2 else set()
    ordered = sorted(pairs)
    return (
        np.array([low for low, _ in ordered], dtype=np.int64),
        np.array([high for _, high in ordered], dtype=np.int64),
    )


def _assert_text_levels_equal(values: list[str], pairs: int, seed: int, workers: int = 1) -> np.ndarray:
    column = encode(pl.Series("text", values, dtype=pl.String))
    first, second = _distinct_pairs(column, pairs, random.Random(seed))
    new = _fuzzy_levels("text", column, first, second, workers)
    old = _old_text_levels(column.values[first], column.values[second])
    np.testing.assert_array_equal(new, old)
    return new


def _word(rng: random.Random, alphabet: str = LETTERS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))


def _phrase(rng: random.Random, separator: str = " ") -> str:
    return separator.join(_word(rng) for _ in range(rng.randint(2, 4)))


def test_single_words_equal_old_formula() -> None:
    rng = random.Random(1)
    levels = _assert_text_levels_equal([_word(rng) for _ in range(400)], pairs=20_000, seed=2)
    assert set(levels.tolist()) == {2, 3, 4, 5}  # every level reached


def test_several_words_equal_old_formula() -> None:
    rng = random.Random(3)
    phrases = [_phrase(rng) for _ in range(200)]
    # the same words in another order, and one letter changed: close pairs in every level
    phrases += [" ".join(rng.sample(phrase.split(" "), phrase.count(" ") + 1)) for phrase in phrases[:100]]
    phrases += [phrase[:-1] + "z" for phrase in phrases[100:200]]
    levels = _assert_text_levels_equal(phrases, pairs=20_000, seed=4)
    assert set(levels.tolist()) == {2, 3, 4, 5}


def test_mixed_words_and_odd_letters_equal_old_formula() -> None:
    rng = random.Random(5)
    values = [_word(rng) for _ in range(150)] + [_phrase(rng) for _ in range(150)]
    values += [" ".join(_word(rng, ODD_LETTERS) for _ in range(rng.randint(1, 3))) for _ in range(150)]
    # word order exchanged: token-sort 1.0 where Jaro-Winkler is low (single word against its pieces too)
    values += [" ".join(reversed(value.split(" "))) for value in values[150:300]]
    values += ["".join(value.split(" ")) for value in values[150:200]]
    _assert_text_levels_equal(values, pairs=30_000, seed=6)


def test_repeated_and_edge_spacing_equal_old_formula() -> None:
    # normalisation gives single spaces, trimmed; other spacing must still take the token-sort path
    rng = random.Random(7)
    words = [_word(rng) for _ in range(200)]
    values = words + [
        rng.choice(["", " ", "  "]) + rng.choice([" ", "  ", "   "]).join(rng.sample(words, 2)) + rng.choice(["", " "])
        for _ in range(300)
    ]
    values += [" " + word for word in words[:50]] + [word + "  " for word in words[50:100]]
    _assert_text_levels_equal(values, pairs=30_000, seed=8)


def test_every_pair_above_first_threshold() -> None:
    # Jaro-Winkler ≥ 0.92 for every pair: no token-sort computed at all (empty "below" set)
    values = ["abcdefghijklmnop" + suffix for suffix in ("", "q", "r", "qr", "rq", "s", "st")]
    values += ["abcdefghij klmnop" + suffix for suffix in ("", "q", "r", "s")]
    column = encode(pl.Series("text", values, dtype=pl.String))
    size = len(column.values)
    first, second = np.triu_indices(size, 1)
    jaro = np.asarray(
        process.cpdist(column.values[first], column.values[second], scorer=JaroWinkler.normalized_similarity)
    )
    assert (jaro >= TEXT_THRESHOLDS[0]).all()
    new = _fuzzy_levels("text", column, first.astype(np.int64), second.astype(np.int64), 1)
    np.testing.assert_array_equal(new, _old_text_levels(column.values[first], column.values[second]))
    assert (new == 2).all()


def test_threaded_pairs_equal_old_formula() -> None:
    # from PARALLEL_PAIRS pairs on rapidfuzz uses its own threads
    rng = random.Random(9)
    values = [_word(rng) for _ in range(300)] + [_phrase(rng) for _ in range(300)]
    _assert_text_levels_equal(values, pairs=60_000, seed=10, workers=2)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.lists(st.text(alphabet=LETTERS + "é王ा", min_size=1, max_size=8), min_size=1, max_size=3).map(" ".join),
        min_size=2,
        max_size=30,
        unique=True,
    ),
    st.integers(0, 2**16),
)
def test_text_levels_equal_old_formula_property(values: list[str], seed: int) -> None:
    _assert_text_levels_equal(values, pairs=200, seed=seed)


def test_normalised_text_holds_no_other_token_separator() -> None:
    """Every text-kind role is normalised by ``clean_text``, whose output holds no character that rapidfuzz
    splits tokens on except the space: so a value without a space is one token, and ``fuzz.ratio`` equals
    ``fuzz.token_sort_ratio`` between two of them."""
    text_roles = [role for role, kind in ROLE_COMPARISONS.items() if kind == "text"]
    # company: clean_text, then words dropped (a leading "the", legal forms): still spaces only between tokens
    assert all(ROLE_KINDS.get(role, "name") in ("name", "address", "company") for role in [*text_roles, "unknown role"])
    points = [point for point in range(0x110000) if not 0xD800 <= point <= 0xDFFF]
    # a separator splits "b?a" into two tokens, which sort like those of "a?b"
    scores = process.cpdist(
        ["b" + chr(point) + "a" for point in points],
        ["a" + chr(point) + "b" for point in points],
        scorer=fuzz.token_sort_ratio,
    )
    separators = {chr(points[index]) for index in np.flatnonzero(np.asarray(scores) == 100)}
    assert {" ", "\t", "\n", "\u3000"} <= separators
    cleaned = pl.select(clean_text(pl.lit(pl.Series(["x" + chr(point) + "y" for point in points])))).to_series()
    kept = set("".join(cleaned.drop_nulls().to_list()))
    assert kept & separators == {" "}


def test_raw_tab_would_break_single_word_shortcut() -> None:
    """Why the check above matters: a tab is no space for ``_spaced``, so two tab-separated values would be
    scored by the plain ratio, where the old formula's token-sort sees two words in either order."""
    values = ["smith\tjohn", "john\tsmith"]
    column = encode(pl.Series("text", values, dtype=pl.String))
    first, second = np.array([0], dtype=np.int64), np.array([1], dtype=np.int64)
    assert fuzz.token_sort_ratio(*values) == 100
    assert fuzz.ratio(*values) < 60
    assert _old_text_levels(column.values[first], column.values[second]).tolist() == [2]
    assert _fuzzy_levels("text", column, first, second, 1).tolist() != [2]
    # normalisation turns the tab into a space, and the shortcut then agrees
    spaced = pl.select(clean_text(pl.lit(pl.Series(values)))).to_series().to_list()
    assert spaced == ["smith john", "john smith"]
    _assert_text_levels_equal(spaced, pairs=1, seed=0)


def _old_swapped(own: Encoded, other: Encoded, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The swap check as defined before the shortcut (cdf2380): both ways for every pair."""
    forward = np.asarray(
        process.cpdist(_strings(own, left), _strings(other, right), scorer=JaroWinkler.normalized_similarity)
    )
    backward = np.asarray(
        process.cpdist(_strings(own, right), _strings(other, left), scorer=JaroWinkler.normalized_similarity)
    )
    return (forward >= SWAP_SIMILARITY) & (backward >= SWAP_SIMILARITY)


def _name_parts(rng: random.Random, rows: int, names: list[str]) -> tuple[Encoded, Encoded]:
    given = [rng.choice(names) if rng.random() > 0.1 else None for _ in range(rows)]
    surname = [rng.choice(names) if rng.random() > 0.1 else None for _ in range(rows)]
    # a tenth of the rows: the previous row's parts exchanged, sometimes with a typo
    for row in range(1, rows):
        if rng.random() < 0.1:
            given[row], surname[row] = surname[row - 1], given[row - 1]
            exchanged = given[row]
            if exchanged is not None and rng.random() < 0.5:
                given[row] = exchanged[:-1] + "x"
    return encode(pl.Series("given", given, dtype=pl.String)), encode(pl.Series("surname", surname, dtype=pl.String))


def _assert_swapped_equal(given: Encoded, surname: Encoded, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``_swapped`` equals the old check from both comparisons' sides; the given name's result."""
    results = []
    for own, other in ((given, surname), (surname, given)):
        results.append(_swapped(own, other, left, right, 1))
        np.testing.assert_array_equal(results[-1], _old_swapped(own, other, left, right))
    return results[0]


def test_swapped_equals_old_formula() -> None:
    rng = random.Random(11)
    names = [_word(rng) + "son" for _ in range(60)] + ["".join(rng.sample("katherine", 9)) for _ in range(60)]
    given, surname = _name_parts(rng, 3_000, names)
    rows = np.arange(3_000)
    left = np.concatenate([rows[1:], rng.choices(range(3_000), k=20_000)])
    right = np.concatenate([rows[:-1], rng.choices(range(3_000), k=20_000)])
    swapped = _assert_swapped_equal(given, surname, np.asarray(left), np.asarray(right))
    assert 0 < swapped.sum() < len(swapped)
    forward = process.cpdist(_strings(given, left), _strings(surname, right), scorer=JaroWinkler.normalized_similarity)
    # forward alone passes for pairs that are not swaps: the backward check decides
    assert (np.asarray(forward) >= SWAP_SIMILARITY).sum() > swapped.sum()


def test_swapped_no_forward_and_every_forward() -> None:
    given = encode(pl.Series("given", ["anna", "bob", None, "anna"], dtype=pl.String))
    surname = encode(pl.Series("surname", ["zed", "anna", "bob", "yves"], dtype=pl.String))
    # no pair passes forward (empty "maybe" set), including nulls ("" strings)
    left, right = np.array([0, 2, 3]), np.array([2, 0, 0])
    assert not _assert_swapped_equal(given, surname, left, right).any()
    # every pair passes forward (given name like the other row's surname); the last fails backward
    given = encode(pl.Series("given", ["anna", "bob", "bob", "anna"], dtype=pl.String))
    surname = encode(pl.Series("surname", ["bob", "anna", "anna", "carl"], dtype=pl.String))
    left, right = np.array([0, 1, 0, 3]), np.array([1, 0, 2, 1])
    assert _assert_swapped_equal(given, surname, left[:3], right[:3]).tolist() == [True, True, True]
    assert _swapped(given, surname, left, right, 1).tolist() == [True, True, True, False]
    np.testing.assert_array_equal(_swapped(given, surname, left, right, 1), _old_swapped(given, surname, left, right))
    # empty input
    empty = np.array([], dtype=np.int64)
    assert _assert_swapped_equal(given, surname, empty, empty).size == 0


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.text(alphabet="abnoe", min_size=1, max_size=6)),
            st.one_of(st.none(), st.text(alphabet="abnoe", min_size=1, max_size=6)),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(0, 2**16),
)
def test_swapped_equals_old_formula_property(rows: list[tuple[str | None, str | None]], seed: int) -> None:
    given = encode(pl.Series("given", [row[0] for row in rows], dtype=pl.String))
    surname = encode(pl.Series("surname", [row[1] for row in rows], dtype=pl.String))
    rng = random.Random(seed)
    left = np.array([rng.randrange(len(rows)) for _ in range(60)])
    right = np.array([rng.randrange(len(rows)) for _ in range(60)])
    _assert_swapped_equal(given, surname, left, right)
