"""The faster paths of entity resolution and survivorship give exactly what the plain ones give: threads and
chunk sizes change no comparison level, the union of the blocking keys and the EM's patterns match numpy's
stable ``unique``, normalising once per distinct value matches normalising row by row, and survivorship's
per-column passes match its single ``group_by`` (which test_survivorship checks against an independent
computation)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.master import survivorship
from agents.master.er import blocking, compare, normalise, scoring
from agents.master.er.blocking import candidate_pairs, default_keys
from agents.master.er.compare import build_comparisons, comparison_levels, encode_columns
from agents.master.er.normalise import GIVEN, SURNAME
from agents.master.survivorship import RULES, survive
from tests.agents.master.people import ROLES as PEOPLE_ROLES
from tests.agents.master.people import people
from tests.agents.master.test_survivorship import random_case


@pytest.fixture(scope="module")
def person_frame() -> pl.DataFrame:
    return people(400, seed=3).drop("entity", "corruptions")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("seed", [0, 1])
def test_survivorship_per_column_passes_match_the_single_group_by(
    rule: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, clusters = random_case(seed)

    def golden() -> tuple[pl.DataFrame, pl.DataFrame]:
        ranks = {"crm": 1, "primary": 2}
        return survive(frame, clusters, {}, rule, ranks, "updated", roles={"email": "email", "name": "given_name"})

    monkeypatch.setattr(survivorship, "TOGETHER_ROWS", 10**9)
    together = golden()
    monkeypatch.setattr(survivorship, "TOGETHER_ROWS", 0)
    per_column = golden()
    assert_frame_equal(together[0], per_column[0])
    assert_frame_equal(together[1], per_column[1])


def test_without_singletons_only_the_merged_clusters_are_left() -> None:
    frame, clusters = random_case(0)
    golden, provenance = survive(frame, clusters, {}, "quality_score", {}, None, singleton_provenance=False)
    merged, merged_provenance = survive(
        frame, clusters, {}, "quality_score", {}, None, singleton_provenance=False, singletons=False
    )
    assert_frame_equal(merged, golden.filter(pl.col("record_count") > 1))
    assert_frame_equal(merged_provenance, provenance)


def test_golden_ids_in_batches_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    frame, clusters = random_case(1)
    whole = survivorship.cluster_members(frame, clusters)
    monkeypatch.setattr(survivorship, "ID_BATCH_ROWS", 3)
    assert_frame_equal(survivorship.cluster_members(frame, clusters), whole)


def test_normalising_by_distinct_value_matches_row_by_row(
    person_frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed = pl.DataFrame(
        {
            "name": ["Zoë O'Brien-Smith", "  JOSÉ   da Silva ", "n/a", "", None, "Zoë O'Brien-Smith"],
            "born": ["1956-04-09", "09/04/1956", "19560409", "yesterday", None, "1956-04-09"],
            "zip": [2119.0, 800.0, None, 3000.0, float("nan"), 2119.0],
            "number": [12, -3, None, 12, 0, 7],
            "street": ["12 Smith St.", "Long Rd", "Ocean Avenue", None, "st st rd", "Long Rd"],
        }
    )
    cases = [
        (person_frame, PEOPLE_ROLES),
        (mixed, {"name": "full_name", "born": "date_of_birth", "zip": "postcode", "number": "street_number"}),
        (mixed, {"street": "address", "name": "city"}),
    ]
    for frame, roles in cases:
        monkeypatch.setattr(normalise, "BY_VALUE_MIN_ROWS", 10**9)
        row_by_row = normalise.normalise(frame, roles)
        monkeypatch.setattr(normalise, "BY_VALUE_MIN_ROWS", 0)
        assert_frame_equal(normalise.normalise(frame, roles), row_by_row)


def test_the_union_of_the_keys_keeps_each_pairs_first_rule() -> None:
    generator = np.random.default_rng(5)
    codes = [generator.integers(0, 400, size) for size in (0, 50, 300, 7, 300)]
    origins = [0, 1, 2, 1, 3]  # a rule may come back later
    expected_codes, first = np.unique(np.concatenate(codes), return_index=True)
    expected_rules = np.repeat(np.array(origins), [len(part) for part in codes])[first]
    distinct, rules = blocking._first_seen(codes, origins)
    assert np.array_equal(distinct, expected_codes)
    assert np.array_equal(rules, expected_rules)
    huge = [part + (1 << 60) for part in codes]  # no room for the tag: the exact fallback
    distinct, rules = blocking._first_seen(huge, origins)
    assert np.array_equal(distinct, expected_codes + (1 << 60))
    assert np.array_equal(rules, expected_rules)


def test_em_patterns_match_numpys_unique() -> None:
    generator = np.random.default_rng(2)
    for rows, columns in ((0, 4), (1, 3), (5_000, 11)):
        levels = generator.integers(0, 7, (rows, columns)).astype(np.int8)
        patterns, counts = scoring._patterns(levels)
        expected, expected_counts = np.unique(levels, axis=0, return_counts=True)
        assert patterns.dtype == np.int64 and counts.dtype == np.float64
        found = {tuple(pattern): count for pattern, count in zip(patterns.tolist(), counts.tolist(), strict=True)}
        assert len(found) == len(patterns)
        assert found == {tuple(row): float(n) for row, n in zip(expected.tolist(), expected_counts, strict=True)}


def test_threads_and_chunks_change_no_level_nor_pair(
    person_frame: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    normalised = normalise.normalise(person_frame, PEOPLE_ROLES)
    keys = default_keys({role: name for name, role in PEOPLE_ROLES.items()}, 4, 50)
    pairs, stats = candidate_pairs(normalised, keys, max_block_size=500, pair_budget=20_000)
    threaded = candidate_pairs(normalised, keys, max_block_size=500, pair_budget=20_000, workers=2)
    assert_frame_equal(threaded[0], pairs)
    assert threaded[1] == stats
    comparisons = build_comparisons(PEOPLE_ROLES, term_frequency=True)
    encoded = encode_columns(normalised, [*PEOPLE_ROLES, GIVEN, SURNAME])
    left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
    plain = comparison_levels(encoded, comparisons, left, right, workers=1)
    monkeypatch.setattr(compare, "CHUNK_PAIRS", 97)
    monkeypatch.setattr(compare, "PARALLEL_PAIRS", 0)  # rapidfuzz's own threads on every call
    assert np.array_equal(comparison_levels(encoded, comparisons, left, right, workers=2), plain)
    for name, column in encoded.items():
        alone = compare.encode(normalised.get_column(name))
        assert np.array_equal(alone.codes, column.codes) and alone.series.equals(column.series)
