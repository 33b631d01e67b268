"""Entity resolution (agents.master.matching and agents.master.er): each step against an independent
computation on data with known answers, and the whole on a generated person file with planted duplicates."""

from __future__ import annotations

import datetime as dt
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import jellyfish
import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN
from agents.master.er import normalise as normalise_module
from agents.master.er.blocking import BlockingKey, candidate_pairs, identical_pairs
from agents.master.er.cluster import cluster
from agents.master.er.compare import LEVELS, Comparison, build_comparisons, comparison_levels, encode
from agents.master.er.normalise import GIVEN, SURNAME, normalise
from agents.master.er.scoring import agreement, estimate, level_shares, probabilities, tf_adjustment, with_exact_u
from agents.master.matching import MatchSettings, Resolution, block, pair_budget, resolve
from tests.agents.master.people import ROLES as PEOPLE_ROLES
from tests.agents.master.people import people, true_pairs

# ---------------------------------------------------------------------------------------------------------
# normalise


def test_phone_layouts_normalise_to_the_same_digits() -> None:
    frame = pl.DataFrame({"phone": ["(02) 9876-5432", "0298765432", "+61 2 9876 5432", "02 9876 5432", "12", None]})
    assert normalise(frame, {"phone": "phone"})["phone"].to_list() == ["298765432"] * 4 + [None, None]


def test_values_normalise_by_role() -> None:
    frame = pl.DataFrame(
        {
            "name": ["Zoë O'Brien-Smith", "  JOSÉ   da Silva ", "n/a", ""],
            "email": [" John.Smith@Example.COM ", "not an e-mail", None, "a@b.c"],
            "born": ["1956-04-09", "09/04/1956", "19560409", "yesterday"],
            "zip": [2119.0, 800.0, None, 3000.0],
            "street": ["12 Smith St.", "Long Rd", "Ocean Avenue", "Stanley Street"],
            "gender": ["Female", "m", "F", None],
        }
    )
    roles = {"name": "full_name", "email": "email", "born": "date_of_birth", "zip": "postcode", "street": "address"}
    normalised = normalise(frame, {**roles, "gender": "gender"})
    assert normalised["name"].to_list() == ["zoe obrien smith", "jose da silva", None, None]
    assert normalised["email"].to_list() == ["john.smith@example.com", None, None, "a@b.c"]
    assert normalised["born"].to_list() == ["19560409", "19560409", "19560409", None]
    assert normalised["zip"].to_list() == ["2119", "800", None, "3000"]
    assert normalised["street"].to_list() == ["12 smith street", "long road", "ocean avenue", "stanley street"]
    assert normalised["gender"].to_list() == ["f", "m", "f", None]
    # name parts from the full name: first and last token
    assert normalised[GIVEN].to_list() == ["zoe", "jose", None, None]
    assert normalised[SURNAME].to_list() == ["smith", "silva", None, None]


def test_dates_typed_as_dates_normalise_too() -> None:
    frame = pl.DataFrame({"born": [dt.date(1956, 4, 9), None]})
    assert normalise(frame, {"born": "date_of_birth"})["born"].to_list() == ["19560409", None]


def test_phonetic_codes_are_computed_once_per_distinct_value(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = jellyfish.metaphone

    def counting(value: str) -> str:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(normalise_module.jellyfish, "metaphone", counting)
    frame = pl.DataFrame({"given": ["Anna", "Anne", "Bob"] * 1000, "surname": ["Smith", "Smyth"] * 1500})
    normalised = normalise(frame, {"given": "given_name", "surname": "surname"})
    assert sorted(calls) == ["anna", "anne", "bob", "smith", "smyth"]
    assert normalised["__surname_metaphone__"].to_list()[:2] == [real("smith"), real("smyth")]


# ---------------------------------------------------------------------------------------------------------
# blocking


def test_block_pairs_match_an_independent_count_and_giant_blocks_are_reported() -> None:
    rng = np.random.default_rng(3)
    keys = rng.choice(np.array(["a", "b", "c", "d", None], dtype=object), 400, p=[0.05, 0.1, 0.2, 0.15, 0.5]).tolist()
    keys[:60] = ["giant"] * 60
    frame = pl.DataFrame({"key": keys})
    pairs, stats = candidate_pairs(frame, [BlockingKey("key", pl.col("key"))], max_block_size=50)
    sizes = pd.Series(keys).dropna().value_counts()
    expected = sum(size * (size - 1) // 2 for size in sizes if size <= 50)
    assert pairs.height == expected
    assert (pairs["left"] < pairs["right"]).all()
    values = np.array(keys, dtype=object)
    assert (values[pairs["left"].to_numpy()] == values[pairs["right"].to_numpy()]).all()
    giants = sizes[sizes > 50].sort_values(ascending=False)
    assert len(giants) == 2
    expected_giants = [
        {"key": "key", "value": value, "size": size, "reason": "max_block_size"} for value, size in giants.items()
    ]
    assert stats["skipped_blocks"] == expected_giants
    assert stats["keys"][0]["skipped_rows"] == giants.sum()


def test_sorted_neighbourhood_pairs_each_row_with_the_next_ones() -> None:
    frame = pl.DataFrame({"name": [f"name{index:03d}" for index in range(50)][::-1]})
    key = BlockingKey("sorted", pl.col("name"), window=4)
    pairs, _ = candidate_pairs(frame, [key], max_block_size=500)
    assert pairs.height == 49 + 48 + 47
    positions = set(zip(pairs["left"].to_list(), pairs["right"].to_list(), strict=True))
    # row i holds name (49 - i): sorted neighbours are adjacent positions
    assert positions == {(low, high) for low in range(50) for high in range(low + 1, min(low + 4, 50))}


def test_link_types_keep_pairs_across_or_within_sources() -> None:
    frame = pl.DataFrame({"key": ["x"] * 6})
    sources = pl.Series(["a", "a", "b", "b", "c", "c"])
    key = [BlockingKey("key", pl.col("key"))]
    across, _ = candidate_pairs(frame, key, max_block_size=10, sources=sources, link_type="link_only")
    within, _ = candidate_pairs(frame, key, max_block_size=10, sources=sources, link_type="dedupe_only")
    labels = sources.to_numpy()
    assert across.height == 12 and within.height == 3
    assert (labels[across["left"].to_numpy()] != labels[across["right"].to_numpy()]).all()
    assert (labels[within["left"].to_numpy()] == labels[within["right"].to_numpy()]).all()


def test_identical_rows_pair_as_a_star_whatever_the_group_size() -> None:
    frame = pl.DataFrame({"a": ["x"] * 1000 + ["y", None, None], "b": [1] * 1000 + [2, None, None]})
    pairs, skipped = identical_pairs(frame, ["a", "b"], "identical")
    assert pairs.height == 999 + 1 and skipped == []
    assert set(pairs["left"].to_list()) == {0, 1001}
    capped, skipped = identical_pairs(frame, ["a", "b"], "same", max_group_size=500)
    assert capped.height == 1 and set(capped["left"].to_list()) == {1001}
    assert skipped == [{"key": "same", "value": "x | 1", "size": 1000, "reason": "max_block_size"}]


# ---------------------------------------------------------------------------------------------------------
# compare


def test_name_levels_follow_jaro_winkler_thresholds() -> None:
    rng = np.random.default_rng(5)
    names = ["anna", "anne", "annabel", "hannah", "john", "jon", "johan", "smith", "smyth", "x", "zoe", "joanna"]
    frame = pl.DataFrame({"given": rng.choice(names, 300).tolist()})
    encoded = {"given": encode(frame["given"])}
    left, right = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    levels = comparison_levels(encoded, [Comparison("given", "given_name", "name")], left, right)[:, 0]
    values = frame["given"].to_list()
    expected = []
    for a, b in zip(left, right, strict=True):
        first, second = values[a], values[b]
        similarity = jellyfish.jaro_winkler_similarity(first, second)
        if first == second:
            expected.append(1)
        else:
            expected.append(2 if similarity >= 0.92 else 3 if similarity >= 0.88 else 4 if similarity >= 0.7 else 5)
    assert levels.tolist() == expected


def _levels_of(frame: pl.DataFrame, roles: dict[str, str], left: list[int], right: list[int]) -> dict[str, list[str]]:
    normalised = normalise(frame, roles)
    comparisons = build_comparisons(roles, term_frequency=True)
    encoded = {name: encode(normalised[name]) for name in [*roles, GIVEN, SURNAME]}
    levels = comparison_levels(encoded, comparisons, np.array(left), np.array(right))
    return {
        comparison.name: [comparison.levels[level] for level in levels[:, index]]
        for index, comparison in enumerate(comparisons)
    }


def test_special_levels_swaps_dates_emails_and_location() -> None:
    frame = pl.DataFrame(
        {
            "given": ["John", "Smith", "Anne", "Anne"],
            "surname": ["Smith", "Jon", "Lee", "Lee"],
            "born": ["1980-02-03", "1980-03-02", "1980-02-08", None],
            "email": ["john.smith@a.com", "john.smith@b.org", "jon.smith@a.com", None],
            "street": ["12 Ocean Street", "12 ocean st", "Ocean Street", "Pine Road"],
            "city": ["Manly", "Manly", "Manly", "Manly"],
            "postcode": ["2095", "2095", "2095", "2096"],
        }
    )
    roles = {"given": "given_name", "surname": "surname", "born": "date_of_birth", "email": "email"}
    roles |= {"street": "address", "city": "city", "postcode": "postcode"}
    levels = _levels_of(frame, roles, [0, 0, 2], [1, 2, 3])
    # full swap (with a typo): counted once, on the surname; the given name abstains
    assert levels["surname"][0] == "swapped" and levels["given"][0] == "null"
    assert levels["born"] == ["day_month_swapped", "one_edit", "null"]
    assert levels["email"] == ["same_user", "one_edit", "null"]
    # "st" is spelt out; the house number inside the street text counts as part of it
    assert levels["location"] == ["same_address", "similar_address", "same_area"]
    assert [comparison.name for comparison in build_comparisons(roles, term_frequency=True)] == [
        "given",
        "surname",
        "born",
        "email",
        "location",
    ]


# ---------------------------------------------------------------------------------------------------------
# scoring


def test_em_recovers_known_m_and_prior_with_u_fixed() -> None:
    """All pairs of a file drawn from a known model, then blocked on the levels (a pair is a candidate when
    it agrees exactly on something): EM over the candidates alone finds m and the matches again."""
    rng = np.random.default_rng(11)
    m = [np.array([1.0, 0.8, 0.15, 0.05]), np.array([1.0, 0.7, 0.2, 0.1]), np.array([1.0, 0.9, 0.05, 0.05])]
    u = [np.array([1.0, 0.01, 0.09, 0.9]), np.array([1.0, 0.02, 0.08, 0.9]), np.array([1.0, 0.005, 0.045, 0.95])]
    matches, non_matches = 20_000, 2_000_000
    levels = np.zeros((matches + non_matches, 3), dtype=np.int8)
    for column in range(3):
        levels[:matches, column] = rng.choice(4, matches, p=np.r_[0.0, m[column][1:]])
        levels[matches:, column] = rng.choice(4, non_matches, p=np.r_[0.0, u[column][1:]])
    levels[rng.random(levels.shape) < 0.05] = 0  # missing values: no evidence either way
    candidate = (levels == 1).any(axis=1)
    model = estimate(levels[candidate], [4, 4, 4], u, float(len(levels)), max_iterations=500, tolerance=1e-7)
    assert model.converged
    blocked_matches = int(candidate[:matches].sum())
    for column in range(3):
        among_candidates = np.bincount(levels[:matches][candidate[:matches], column], minlength=4)[1:]
        np.testing.assert_allclose(model.m[column][1:], among_candidates / among_candidates.sum(), atol=0.02)
        np.testing.assert_allclose(model.m[column][1:], m[column][1:], atol=0.03)
    assert model.expected_matches == pytest.approx(blocked_matches, rel=0.05)
    assert model.prior == pytest.approx(blocked_matches / len(levels), rel=0.05)


def test_level_shares_are_the_non_null_shares() -> None:
    levels = np.array([[0], [1], [1], [2], [3], [3], [3], [3]], dtype=np.int8)
    shares = level_shares(levels, [4])[0]
    counts = pd.Series(levels[:, 0]).value_counts()
    expected = [(counts.get(level, 0) + 0.5) / (7 + 1.5) for level in (1, 2, 3)]
    np.testing.assert_allclose(shares[1:], expected)


def test_tf_adjustment_weighs_rare_values_more() -> None:
    values = ["smith"] * 50 + ["jones"] * 30 + ["zabrinski"] * 2 + [None] * 18
    codes = encode(pl.Series(values)).codes
    left = np.array([0, 50, 80, 0])
    exact = np.array([True, True, True, False])
    adjustment = tf_adjustment(codes, left, exact)
    frequency = pd.Series(values).value_counts(normalize=True)
    agreement = float((frequency**2).sum())
    expected = [np.log2(agreement / frequency[name]) for name in ("smith", "jones", "zabrinski")] + [0.0]
    np.testing.assert_allclose(adjustment, expected)
    assert adjustment[2] > 0 > adjustment[0]


def test_probability_is_the_sigmoid_of_weight_plus_prior() -> None:
    weights = np.array([-10.0, 0.0, 3.5, 40.0])
    prior = 0.001
    odds = 2.0 ** (weights + np.log2(prior / (1 - prior)))
    np.testing.assert_allclose(probabilities(weights, prior), odds / (1 + odds))


# ---------------------------------------------------------------------------------------------------------
# clustering


def _groups(labels: np.ndarray) -> list[set[int]]:
    groups: dict[int, set[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(row)
    return sorted((group for group in groups.values() if len(group) > 1), key=min)


def test_chain_of_weak_links_is_broken() -> None:
    rows = 12
    left, right = np.arange(rows - 1), np.arange(1, rows)
    clustering = cluster(
        rows, left, right, np.full(rows - 1, 0.95), strong_threshold=0.999, guard_size=8, guard_density=0.5
    )
    # every inner row is pulled two ways and stays alone; the two ends attach to their neighbour
    assert _groups(clustering.labels) == [{0, 1}, {10, 11}]
    assert clustering.loose_components == 1
    assert int(clustering.kept.sum()) == 2
    # the same chain of strong links is one cluster
    strong = cluster(
        rows, left, right, np.full(rows - 1, 0.9999), strong_threshold=0.999, guard_size=8, guard_density=0.5
    )
    assert _groups(strong.labels) == [set(range(rows))]


def test_star_of_weak_links_stays_and_weak_bridge_between_groups_is_dropped() -> None:
    star = cluster(
        12,
        np.zeros(11, dtype=int),
        np.arange(1, 12),
        np.full(11, 0.95),
        strong_threshold=0.999,
        guard_size=8,
        guard_density=0.5,
    )
    assert _groups(star.labels) == [set(range(12))]
    # two strong cliques of 5 joined by one weak link: a loose component of 10, split in two
    first, second = list(combinations(range(5), 2)), list(combinations(range(5, 10), 2))
    pairs = np.array([*first, *second, (4, 5)])
    probability = np.r_[np.full(len(first) + len(second), 0.9999), 0.95]
    bridged = cluster(
        10, pairs[:, 0], pairs[:, 1], probability, strong_threshold=0.999, guard_size=8, guard_density=0.4
    )
    assert bridged.loose_components == 0  # 21 links of 45 possible: dense enough for a density of 0.4
    assert _groups(bridged.labels) == [set(range(10))]
    sparse = cluster(10, pairs[:, 0], pairs[:, 1], probability, strong_threshold=0.999, guard_size=8, guard_density=0.5)
    assert _groups(sparse.labels) == [set(range(5)), set(range(5, 10))]
    assert sparse.kept.tolist() == [True] * (len(pairs) - 1) + [False]


# ---------------------------------------------------------------------------------------------------------
# resolve


@pytest.fixture(scope="module")
def person_file() -> pl.DataFrame:
    return people(2000, seed=4).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))


@pytest.fixture(scope="module")
def person_resolution(person_file: pl.DataFrame) -> Resolution:
    return resolve(person_file.drop("entity", "corruptions"), PEOPLE_ROLES, MatchSettings())


def test_generated_person_file_f1_and_every_corruption(
    person_file: pl.DataFrame, person_resolution: Resolution
) -> None:
    truth = true_pairs(person_file)
    members = person_file.select(ROW_INDEX_COLUMN).join(person_resolution.clusters, on=ROW_INDEX_COLUMN)
    found = true_pairs(members, key="cluster")
    true_positives = len(found & truth)
    precision, recall = true_positives / len(found), true_positives / len(truth)
    f1 = 2 * precision * recall / (precision + recall)
    print(f"\ngenerated people ({person_file.height} rows): precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    assert f1 >= 0.97
    # each duplicate with its original, per kind of corruption
    rows = person_file.join(person_resolution.clusters, on=ROW_INDEX_COLUMN)
    originals = rows.filter(pl.col("corruptions") == "").select("entity", pl.col("cluster").alias("original"))
    duplicates = rows.filter(pl.col("corruptions") != "").join(originals, on="entity")
    for corruption in ("typo_given", "typo_surname", "swap_names", "missing", "swap_day_month", "abbreviate"):
        planted = duplicates.filter(pl.col("corruptions").str.contains(corruption))
        joined = float((planted["cluster"] == planted["original"]).mean())  # type: ignore[arg-type]
        print(f"  {corruption}: {planted.height} duplicates, {joined:.3f} with their original")
        assert planted.height > 50
        assert joined >= 0.9, corruption


@pytest.mark.parametrize(
    "columns",
    [
        # people sharing streets and names, a tenth of the duplicates with another phone: the case where
        # EM with u learnt on the candidates took "same phone" for "same person"
        ["given_name", "surname", "address", "city", "postcode", "phone"],
        ["given_name", "surname", "city", "date_of_birth"],
    ],
)
def test_generated_person_file_with_fewer_columns(person_file: pl.DataFrame, columns: list[str]) -> None:
    roles = {name: PEOPLE_ROLES[name] for name in columns}
    resolution = resolve(person_file.select(ROW_INDEX_COLUMN, *columns), roles, MatchSettings())
    members = person_file.select(ROW_INDEX_COLUMN).join(resolution.clusters, on=ROW_INDEX_COLUMN)
    truth, found = true_pairs(person_file), true_pairs(members, key="cluster")
    precision, recall = len(found & truth) / len(found), len(found & truth) / len(truth)
    f1 = 2 * precision * recall / (precision + recall)
    print(f"\n{columns}: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    assert precision >= 0.99
    assert f1 >= 0.95


def test_formatted_phones_and_swapped_names_match() -> None:
    base = people(300, seed=9, duplicate_weights=(1.0,)).drop("entity", "corruptions")
    planted = pl.DataFrame(
        {
            "given_name": ["olivia", "karlsson", "olivia"],
            "surname": ["karlsson", "olivia", "karlson"],
            "email": ["olivia.karlsson@mail.com", None, None],
            "phone": ["(02) 9876-5432", "0298765432", "+61 2 9876 5432"],
            "date_of_birth": ["1980-02-01", "01/02/1980", None],
            "street_number": ["7", "7", None],
            "address": ["wallaby place", "wallaby pl", None],
            "city": ["cleveland", "cleveland", None],
            "postcode": ["2119", "2119", None],
            "national_id": [None, None, None],
        }
    )
    frame = pl.concat([base, planted.cast(base.schema)]).with_columns(  # type: ignore[arg-type]
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN)
    )
    clusters = resolve(frame, PEOPLE_ROLES, MatchSettings()).clusters
    planted_rows = clusters.tail(3)
    assert planted_rows["cluster"].n_unique() == 1
    assert clusters.filter(pl.col("cluster") == planted_rows["cluster"][0]).height == 3


def test_resolution_shapes(person_file: pl.DataFrame, person_resolution: Resolution) -> None:
    settings = MatchSettings()
    clusters, pairs, review = person_resolution.clusters, person_resolution.pairs, person_resolution.review
    assert clusters.schema == pl.Schema(
        {ROW_INDEX_COLUMN: pl.Int64, "cluster": pl.Int64, "match_probability": pl.Float64, "rule": pl.String}
    )
    assert clusters[ROW_INDEX_COLUMN].to_list() == person_file[ROW_INDEX_COLUMN].to_list()
    smallest = clusters.group_by("cluster").agg(pl.col(ROW_INDEX_COLUMN).min(), pl.len())
    assert (smallest["cluster"] == smallest[ROW_INDEX_COLUMN]).all()
    singletons = clusters.join(smallest.filter(pl.col("len") == 1).select("cluster"), on="cluster")
    assert singletons["match_probability"].null_count() == singletons.height
    joined = clusters.join(smallest.filter(pl.col("len") > 1).select("cluster"), on="cluster")
    assert joined["match_probability"].min() >= settings.threshold  # type: ignore[operator]
    assert list(pairs.columns) == ["left", "right", "probability", "weight", "rule"]
    assert (pairs["left"] < pairs["right"]).all() and (pairs["probability"] >= settings.review_band).all()
    assert list(review.columns) == ["left", "right", "probability", "reason"]
    borderline = review.filter(pl.col("reason").str.starts_with("borderline"))
    assert (
        (borderline["probability"] >= settings.review_band) & (borderline["probability"] < settings.threshold)
    ).all()
    stats = person_resolution.stats
    assert stats["rows"] == person_file.height and stats["model"]["converged"]
    assert (
        stats["links"] + stats["chain_guard"]["dropped_links"]
        == pairs.filter(pl.col("probability") >= settings.threshold).height
    )
    assert {level["level"] for level in stats["model"]["comparisons"]["surname"]["levels"]} == set(
        LEVELS["surname"][1:]
    )


def test_identical_rows_always_share_a_cluster() -> None:
    frame = pl.DataFrame(
        {
            "note": ["a", "a", "b", None, None, "c"],
            "name": [None, None, "x y", None, None, "p q"],
        }
    )
    clusters = resolve(frame, {"name": "full_name"}, MatchSettings()).clusters
    assert clusters["cluster"].to_list() == [1, 1, 3, 4, 4, 6]
    assert clusters["rule"].to_list()[:2] == ["identical", "identical"]


def test_equal_match_keys_link_even_in_a_tiny_file() -> None:
    frame = pl.DataFrame(
        {
            "name": ["John Smith", "john  SMITH", "Jane Doe", None],
            "email": ["JS@mail.com", "js@mail.com ", "jd@mail.com", None],
            "row": [1, 2, 3, 4],
        }
    )
    resolution = resolve(frame, {"name": "full_name", "email": "email"}, MatchSettings())
    assert resolution.clusters["cluster"].to_list() == [1, 1, 3, 4]
    assert resolution.clusters["rule"][0] == "same_match_keys"
    # forced, yet with the model's probability (at least the threshold): the chain guard sees it as any link
    assert MatchSettings().threshold <= resolution.clusters["match_probability"][0] < 1.0


def test_one_equal_compared_value_forces_no_link() -> None:
    # a single compared column: equal values are evidence to score, not a forced link
    frame = pl.DataFrame({"name": ["John Smith", "john  SMITH", "Jane Doe", None], "row": [1, 2, 3, 4]})
    resolution = resolve(frame, {"name": "full_name"}, MatchSettings())
    assert resolution.stats["blocking"]["same_match_key_pairs"] == 0
    assert "same_match_keys" not in resolution.pairs["rule"].to_list()


def test_match_key_columns_and_weights() -> None:
    frame = people(200, seed=2).drop("entity", "corruptions")
    only_email = resolve(frame, PEOPLE_ROLES, MatchSettings(match_key_columns=["email"]))
    assert only_email.stats["compared_columns"] == {"email": "email"}
    without_phone = resolve(frame, PEOPLE_ROLES, MatchSettings(match_key_weights={"phone": 0}))
    assert "phone" not in without_phone.stats["compared_columns"]
    assert without_phone.stats["skipped_columns"] == {"phone": "match_key_weights is 0"}
    halved = resolve(frame, PEOPLE_ROLES, MatchSettings(match_key_weights={"email": 50}))
    assert halved.stats["model"]["comparisons"]["email"]["scale"] == 0.5
    with pytest.raises(ValueError, match="notes"):
        resolve(frame, PEOPLE_ROLES, MatchSettings(match_key_columns=["notes"]))


def test_a_unique_id_column_is_a_record_key_not_compared() -> None:
    frame = people(200, seed=2).drop("entity", "corruptions").with_row_index("customer_id")
    resolution = resolve(frame, {**PEOPLE_ROLES, "customer_id": "id"}, MatchSettings())
    assert "customer_id" not in resolution.stats["compared_columns"]
    assert "customer_id" in resolution.stats["skipped_columns"]


def test_progress_is_reported_in_order() -> None:
    seen: list[tuple[float, str]] = []
    resolve(
        people(100, seed=1).drop("entity", "corruptions"),
        PEOPLE_ROLES,
        MatchSettings(),
        lambda f, m: seen.append((f, m)),
    )
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 5


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_single_row_frames(rows: int) -> None:
    frame = people(5, seed=1).drop("entity", "corruptions").head(rows)
    resolution = resolve(frame, PEOPLE_ROLES, MatchSettings())
    assert resolution.clusters.height == rows
    assert resolution.pairs.height == 0 and resolution.review.height == 0


def test_sources_in_link_only_never_pair_within_a_source() -> None:
    frame = people(300, seed=6).drop("entity", "corruptions")
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("crm")).otherwise(pl.lit("shop")).alias(SOURCE_COLUMN)
    )
    resolution = resolve(frame, PEOPLE_ROLES, MatchSettings(link_type="link_only"))
    sources = frame[SOURCE_COLUMN].to_numpy()
    pairs = resolution.pairs.filter(pl.col("rule") != "identical")
    assert pairs.height > 0
    assert (sources[pairs["left"].to_numpy() - 1] != sources[pairs["right"].to_numpy() - 1]).all()


def test_roles_may_be_role_objects() -> None:
    frame = people(100, seed=3).drop("entity", "corruptions")
    objects = {name: SimpleNamespace(role=role, confidence=1.0, method="name") for name, role in PEOPLE_ROLES.items()}
    by_object = resolve(frame, objects, MatchSettings())
    by_name = resolve(frame, PEOPLE_ROLES, MatchSettings())
    assert by_object.stats["compared_columns"] == by_name.stats["compared_columns"]
    assert by_object.clusters.equals(by_name.clusters)


# ---------------------------------------------------------------------------------------------------------
# defects found in review: each test failed before its fix


def _orders(rows: int, duplicated: int) -> pl.DataFrame:
    """An order table (no entity column): distinct rows, the last one a copy of row ``duplicated``."""
    frame = pl.DataFrame(
        {
            "order": list(range(1, rows)),
            "amount": [round(10.0 + 3.5 * index, 2) for index in range(1, rows)],
            "sku": [f"SKU-{index % 7}" for index in range(1, rows)],
        }
    )
    return pl.concat([frame, frame.slice(duplicated - 1, 1)])


def test_a_table_without_entity_columns_links_only_its_identical_rows() -> None:
    frame = _orders(5, duplicated=3).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    resolution = resolve(frame, {}, MatchSettings())
    assert resolution.clusters["cluster"].to_list() == [1, 2, 3, 4, 3]
    assert resolution.stats["compared_columns"] == {}
    assert resolution.pairs.select("left", "right").rows() == [(3, 5)]


def test_the_chain_finishes_on_a_table_without_entity_columns(tmp_path: Path) -> None:
    from agents.chain import run_tool

    frame = _orders(9, duplicated=4)
    frame.write_csv(tmp_path / "primary.csv")
    result = run_tool("master-my-data", [], {"primary.csv": tmp_path / "primary.csv"}, {}, tmp_path / "out", print)
    assert result["status"] == "success", {agent: e.get("error") for agent, e in result["agents"].items()}
    crosswalk = pl.read_csv(tmp_path / "out" / "crosswalk.csv").sort("source_row")
    golden = pl.read_csv(tmp_path / "out" / "master_data.csv")
    # every row its own golden record, except the copy of row 4 (row 9)
    assert golden.height == frame.height - 1 == crosswalk["golden_id"].n_unique()
    ids = crosswalk["golden_id"].to_list()
    assert ids[3] == ids[8] and len(set(ids[:8])) == 8


def test_non_latin_text_is_kept_and_folded_only_for_diacritics() -> None:
    frame = pl.DataFrame(
        {
            "name": ["王小明", "Иван Петров", "Γιώργος", "محمد علي", "Straße", "Zoë O'Brien", "राम कुमार", "ΓΙΏΡΓΟΣ"],
            "code": ["Б-7", "ß1", "é-2", "١٢", "x", "y", "z", "w"],
        }
    )
    normalised = normalise(frame, {"name": "full_name", "code": "postcode"})
    assert normalised["name"].to_list()[:6] == ["王小明", "иван петров", "γιωργοσ", "محمد علي", "strasse", "zoe obrien"]
    # Indic vowel signs are parts of the letters: kept (decomposed), never turned into blanks
    indic = normalised["name"][6]
    assert indic.replace(" ", "") == "रामकुमार" and indic.count(" ") == 1
    assert normalised["name"][7] == normalised["name"][2]  # upper case, accents and final sigma fold alike
    assert normalised["code"].to_list()[:4] == ["б7", "ss1", "e2", "١٢"]
    assert normalised[GIVEN].to_list()[1:3] == ["иван", "γιωργοσ"]


def test_non_latin_names_link_and_stay_apart_by_their_evidence() -> None:
    frame = pl.DataFrame(
        {
            "name": ["Иван Петров", "ИВАН  ПЕТРОВ", "Γιώργος Παπαδόπουλος", "王小明", "王小明"],
            "email": ["ivan.petrov@mail.ru", "Ivan.Petrov@mail.ru", "g.papa@mail.gr", "wxm@mail.cn", "wang@qq.cn"],
            "phone": ["+7 495 123 4567", "8 495 123 45 67", "+30 21 0987 6543", "010 1234 5678", "021 8765 4321"],
        }
    )
    roles = {"name": "full_name", "email": "email", "phone": "phone"}
    resolution = resolve(frame, roles, MatchSettings())
    assert resolution.clusters["cluster"].to_list() == [1, 1, 3, 4, 5]
    assert resolution.stats["compared_columns"] == roles


def _shared_phones(rows: int = 5000, placeholders: int = 2000, switchboard: int = 1000) -> pl.DataFrame:
    """``rows`` orders with a phone (the only entity column): ``placeholders`` rows "0000000000", ``switchboard``
    rows one real-looking number, the others distinct numbers, every tenth of those written twice."""
    rng = np.random.default_rng(11)
    own = rows - placeholders - switchboard
    numbers = rng.choice(np.arange(10_000_000, 99_999_999), own // 2, replace=False)
    distinct = [f"03{number}" for number in numbers]
    phones = ["0000000000"] * placeholders + ["(02) 9123-4567"] * switchboard
    phones += (distinct + [f"+61 3 {str(number)[:4]} {str(number)[4:]}" for number in numbers])[:own]
    return pl.DataFrame({"phone": phones, "order": rng.permutation(rows), ROW_INDEX_COLUMN: np.arange(1, rows + 1)})


def test_a_shared_placeholder_phone_makes_no_giant_cluster() -> None:
    frame = _shared_phones()
    settings = MatchSettings()
    resolution = resolve(frame, {"phone": "phone"}, settings)
    sizes = resolution.clusters.group_by("cluster").len()
    assert sizes["len"].max() <= 2  # type: ignore[operator]
    assert resolution.stats["largest_cluster"] <= 2
    # the placeholder is no phone at all; the shared switchboard number is a skipped block, reported
    placeholder = resolution.clusters.head(2000)
    assert placeholder["cluster"].to_list() == placeholder[ROW_INDEX_COLUMN].to_list()
    skipped = resolution.stats["blocking"]["skipped_blocks"]
    assert {"key": "phone", "value": "291234567", "size": 1000, "reason": "shared_identifier"} in skipped
    # the numbers written twice (two layouts) are candidates, scored on their own evidence
    assert resolution.stats["candidate_pairs"] == (5000 - 3000) // 2


def test_forced_links_keep_to_the_block_cap() -> None:
    # 60 rows equal on both compared values (cap 50): no group of forced links larger than max_block_size
    frame = pl.DataFrame(
        {
            "name": ["John Smith"] * 60 + ["Ann Lee"] * 2 + [f"Person {index}" for index in range(40)],
            "city": ["Sydney"] * 62 + [f"Town {index}" for index in range(40)],
            "order": list(range(102)),
        }
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    resolution = resolve(frame, {"name": "full_name", "city": "city"}, MatchSettings(max_block_size=50))
    blocking = resolution.stats["blocking"]
    assert blocking["same_match_key_pairs"] == 1
    giant = {"key": "same_match_keys", "value": "john smith | sydney", "size": 60, "reason": "max_block_size"}
    assert giant in blocking["skipped_blocks"]
    assert resolution.stats["largest_cluster"] < 60


def test_blocks_beyond_a_keys_pair_budget_are_skipped_smallest_kept_first() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.integers(2, 60, 40)
    keys = np.repeat([f"k{index:02d}" for index in range(40)], sizes)
    frame = pl.DataFrame({"key": rng.permutation(keys)})
    budget = 5_000
    pairs, stats = candidate_pairs(frame, [BlockingKey("key", pl.col("key"))], max_block_size=50, pair_budget=budget)
    table = pd.Series(keys).value_counts().rename("size").reset_index()
    table.columns = ["key", "size"]
    fitting = table[table["size"] <= 50].sort_values(["size", "key"])
    cumulative = (fitting["size"] * (fitting["size"] - 1) // 2).cumsum()
    kept = fitting[cumulative <= budget]
    assert pairs.height == int((kept["size"] * (kept["size"] - 1) // 2).sum()) <= budget
    over_budget = {item["value"] for item in stats["skipped_blocks"] if item["reason"] == "pair_budget"}
    assert stats["skipped_block_count"] == len(table) - len(kept)
    assert over_budget | set(kept["key"]) == set(fitting["key"]) or stats["skipped_block_count"] > 20


def test_company_blocks_with_name_prefixes_and_every_key_keeps_to_its_budget() -> None:
    rng = np.random.default_rng(8)
    rows = 20_000
    frame = pl.DataFrame(
        {
            "company": rng.permutation(np.repeat([f"company {index}" for index in range(40)], rows // 40)),
            "email": [f"person{index}@mail.com" for index in range(rows)],
            ROW_INDEX_COLUMN: np.arange(1, rows + 1),
        }
    )
    settings = MatchSettings()
    budget = pair_budget(rows, settings)
    assert budget == 20 * rows
    pairs, stats = block(frame, {"company": "company", "email": "email"}, settings)
    by_key = {key["name"]: key for key in stats["keys"]}
    assert all(key["pairs"] <= budget for key in stats["keys"])
    assert pairs.height <= budget + rows * (settings.window - 1) and by_key["company"]["pairs"] > 0
    assert stats["skipped_block_count"] == by_key["company"]["skipped_blocks"] > 0
    assert {item["reason"] for item in stats["skipped_blocks"]} == {"pair_budget"}
    # with person names, the company blocks only together with the names' prefixes
    named = frame.with_columns(pl.format("name{}", pl.col(ROW_INDEX_COLUMN) % 997).alias("name"))
    _, named_stats = block(named, {"company": "company", "email": "email", "name": "full_name"}, settings)
    assert "company" not in {key["name"] for key in named_stats["keys"]}
    assert "company+name_prefixes" in {key["name"] for key in named_stats["keys"]}


@pytest.mark.parametrize("entities", [3, 10, 30])
def test_small_files_link_their_obvious_duplicates(entities: int) -> None:
    true_positives = found_pairs = truth_pairs = 0
    for seed in range(8):
        frame = people(entities, seed=seed, duplicate_weights=(0.0, 0.5, 0.3, 0.2)).with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN)
        )
        resolution = resolve(frame.drop("entity", "corruptions"), PEOPLE_ROLES, MatchSettings())
        truth = true_pairs(frame)
        found = true_pairs(frame.select(ROW_INDEX_COLUMN).join(resolution.clusters, on=ROW_INDEX_COLUMN), key="cluster")
        true_positives += len(found & truth)
        found_pairs += len(found)
        truth_pairs += len(truth)
    print(f"\n{entities} people: recall {true_positives / truth_pairs:.3f} over {truth_pairs} pairs")
    assert true_positives == found_pairs  # precision 1
    assert true_positives >= 0.9 * truth_pairs


def test_a_tiny_file_links_an_obvious_duplicate_and_no_namesake() -> None:
    frame = pl.DataFrame(
        {
            "name": ["John Smith", "Jon Smith", "John Smith", "Mary Jones", "Ahmed Khan"],
            "email": ["john.smith@mail.com", "john.smith@mail.com", "jsmith77@post.net", "mj@post.net", "ak@mail.com"],
            "phone": ["0298765432", "(02) 9876-5432", "0733334444", "0387654321", "0712345678"],
        }
    )
    clusters = resolve(frame, {"name": "full_name", "email": "email", "phone": "phone"}, MatchSettings()).clusters
    assert clusters["cluster"].to_list() == [1, 1, 3, 4, 5]


@pytest.mark.parametrize("people_count", [3, 10, 30])
def test_namesakes_with_their_own_email_and_phone_stay_apart(people_count: int) -> None:
    # the population prior on e-mail and phone must not make a file of namesakes one person
    rng = np.random.default_rng(people_count)
    frame = pl.DataFrame(
        {
            "given_name": ["john"] * people_count,
            "surname": ["smith"] * people_count,
            "email": [f"js{index}@mail{index}.com" for index in range(people_count)],
            "phone": [f"04{number}" for number in rng.integers(10_000_000, 99_999_999, people_count)],
        }
    )
    roles = {name: name for name in frame.columns}
    assert resolve(frame, roles, MatchSettings()).stats["largest_cluster"] == 1


def test_exact_u_is_the_agreement_share_of_the_values_blended_with_the_prior() -> None:
    codes = np.array([0, 0, 0, 1, 1, 2, -1, -1])
    agreeing, pairs = agreement(codes)
    values = pd.Series(codes[codes >= 0])
    independent = sum(count * (count - 1) / 2 for count in values.value_counts())
    assert (agreeing, pairs) == (independent, 6 * 5 / 2)
    shares = np.array([1.0, 0.3, 0.2, 0.5])
    u = with_exact_u(shares, agreeing, pairs, 1e-5, prior_pairs=1000)
    assert u[1] == pytest.approx((4 + 1000 * 1e-5) / (15 + 1000))
    assert u[1:].sum() == pytest.approx(1.0) and u[2] / u[3] == pytest.approx(0.2 / 0.5) and u[0] == 1.0
    assert with_exact_u(shares, agreeing, pairs, None)[1] == pytest.approx(4.5 / 16)


def test_random_pairs_scale_with_the_file() -> None:
    frame = people(100, seed=1).drop("entity", "corruptions")
    resolution = resolve(frame, PEOPLE_ROLES, MatchSettings())
    assert 0 < resolution.stats["random_pairs"] <= MatchSettings().random_pairs_per_row * frame.height
