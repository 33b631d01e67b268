"""Entity resolution for master-my-data: which rows of the stacked frame are the same entity.

``resolve(frame, roles, settings)`` runs the steps of ``agents.master.er``:

1. *normalise* each compared column by its semantic role (names folded and lowercased, company names also
   without their legal form, phones as their last 9 digits, dates as YYYYMMDD, ...) and derive name parts
   with phonetic codes;
2. *block*: candidate pairs from several keys (exact e-mail, phone, national id; phonetic names;
   date of birth, postcode and address with name prefixes; a company's name, alone and by its first letters
   with the postcode; sorted neighbourhoods on names, address and e-mail), giant blocks skipped and reported;
3. *compare* every candidate pair into ordered levels per comparison (exact, fuzzy bands, else; street,
   number, city and postcode as one location comparison, the street's own house number standing for a
   missing street number column);
4. *score* with Fellegi–Sunter: u from random pairs, m and the prior by EM over the candidate pairs,
   exact name agreement adjusted for the value's frequency; probability = sigmoid of the summed log2(m/u)
   weights plus the prior's log-odds (``agents.master.er.scoring`` has the maths);
5. *check*: a link whose rows disagree on more of their data columns (compared or not: a code, a state,
   coordinates, amounts) than they agree on is withheld and sent to review, unless they share a strong
   identifier (``agents.master.er.contradiction``): on a file without duplicates EM learns a "match" class
   of look-alikes (airports named after their town), and the columns it does not compare are no evidence
   to it;
6. *cluster*: connected components over pairs with probability ≥ ``threshold``, with a guard that keeps
   weak links from chaining large components.

Row identity is ``ROW_INDEX_COLUMN`` (1-based, unique); a cluster's id is the smallest row index in it.
Every step orders ties by content, never by position, so shuffling the rows (each keeping its row index)
gives the same clusters. Pairs are reported with ``left`` < ``right`` as row indexes; a pair's ``rule``
is the blocking key that found it, or "identical" (rows equal in every data column, whatever the link
type: probability 1, so identical rows always share a cluster) or "same_match_keys" (equal on every
compared value, at least two of them present: they link whatever their score, at least at ``threshold``,
but as any other pair only within groups of at most ``max_block_size`` rows, only when the values are rare
enough together that strangers would not share them (rows × the product of the values' shares below
``SELECTIVE_PARTNERS``: a state and a loan amount are not), and with their model probability, so the chain
guard treats them like the others). A value shared by one compared column alone
forces nothing: 50,000 rows sharing one placeholder phone are not one person. An identifier (e-mail,
phone, national id, id) held by more than ``max_block_size`` rows is a placeholder ("info@" of a shop, a
switchboard): it is compared as missing and reported with the skipped blocks.

Defaults (``MatchSettings``) reach pairwise F1 ≥ 0.95 on FEBRL3 and ≥ 0.97 on FEBRL4 with no
configuration (tests/agents/master/test_febrl.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from agents.envelope import BOOKKEEPING_COLUMNS, ROW_INDEX_COLUMN, SOURCE_COLUMN
from agents.master.er.blocking import (
    MAX_REPORTED_BLOCKS,
    LinkType,
    candidate_pairs,
    column_keys,
    default_keys,
    filter_sources,
    identical_pairs,
)
from agents.master.er.cluster import cluster
from agents.master.er.compare import (
    EXACT_LEVEL,
    ROLE_COMPARISONS,
    Comparison,
    Encoded,
    build_comparisons,
    comparison_levels,
    encode_columns,
)
from agents.master.er.contradiction import STRONG_ROLES, contradicted
from agents.master.er.normalise import CONTENT_HASH, GIVEN, SURNAME, normalise
from agents.master.er.scoring import (
    EXACT_U_PRIOR,
    FellegiSunter,
    agreement,
    estimate,
    level_shares,
    match_weights,
    probabilities,
    tf_adjustment,
    with_exact_u,
)

Progress = Callable[[float, str], None]
ENTITY_ROLES = frozenset(ROLE_COMPARISONS) - {"other"}
IDENTICAL_RULE = "identical"
SAME_KEYS_RULE = "same_match_keys"
GUARD_RULE = "chain_guard"
MIN_PAIR_BUDGET = 20_000
SHARED_IDENTIFIER_ROLES = frozenset({"email", "phone", "national_id", "id"})
SELECTIVE_PARTNERS = 1.0
"""A combination of match key values that rows of this size would share by chance with at least this many
other rows (rows × the product of the values' shares) does not say "same entity" on its own."""

CLUSTERS_SCHEMA = {
    ROW_INDEX_COLUMN: pl.Int64,
    "cluster": pl.Int64,
    "match_probability": pl.Float64,
    "rule": pl.String,
}
PAIRS_SCHEMA = {"left": pl.Int64, "right": pl.Int64, "probability": pl.Float64, "weight": pl.Float64, "rule": pl.String}
REVIEW_SCHEMA = {"left": pl.Int64, "right": pl.Int64, "probability": pl.Float64, "reason": pl.String}


@dataclass
class MatchSettings:
    """How rows are matched. Defaults need no configuration.

    - ``match_key_columns``: the columns to compare; empty = every column with an entity role in ``roles``
      (an "id" column unique on every row is a record key, not an entity key, and is left out);
    - ``match_key_weights``: {column: 0–100}, multiplies that column's weights by weight/100 (0 leaves the
      column out); others count fully;
    - ``threshold``: match probability from which a pair is a link (0.9);
    - ``review_band``: lower bound of the borderline band [review_band, threshold) sent to review (0.5);
    - ``strong_threshold``: inside a loose component only links from this probability bridge groups
      (0.999; see ``agents.master.er.cluster``), ``guard_size`` (8 rows) and ``guard_density`` (0.5) say
      which components are loose;
    - ``max_block_size``: blocks with more rows are skipped and reported (500); ``max_name_block_size``
      the same for the key on names alone (50: a name shared by more rows identifies nobody);
    - ``pairs_per_row``: each exact blocking key gives at most ``pairs_per_row`` × rows pairs (20; at
      least ``MIN_PAIR_BUDGET``), its smallest blocks first, the others skipped and reported;
    - ``window``: sorted-neighbourhood window (4; 0 or 1 turns those keys off);
    - ``link_type``: "dedupe_and_link" (pairs within and across sources), "link_only" (across sources
      only), "dedupe_only" (within a source only);
    - ``term_frequency``: adjust exact name agreement by the name's frequency (True);
    - ``random_pairs``: the most random pairs drawn for u of the inexact levels (50,000; at most
      ``random_pairs_per_row`` × rows: 4), ``seed`` for that draw (0); u of exact agreement comes from the
      values' frequencies (``agents.master.er.scoring.with_exact_u``);
    - ``max_em_iterations`` (100), ``em_tolerance`` (1e-5);
    - ``contradiction_check``: withhold links whose rows disagree on more of their data columns (compared
      or not) than they agree on (``agents.master.er.contradiction``) (True);
    - ``workers``: threads running the blocking keys and the comparisons side by side (2); a comparison of more
      than ``compare.PARALLEL_PAIRS`` pairs also hands rapidfuzz that many threads, so up to ``workers``² may run
      at once.
    """

    match_key_columns: list[str] = field(default_factory=list)
    match_key_weights: dict[str, float] = field(default_factory=dict)
    threshold: float = 0.9
    review_band: float = 0.5
    strong_threshold: float = 0.999
    guard_size: int = 8
    guard_density: float = 0.5
    max_block_size: int = 500
    max_name_block_size: int = 50
    pairs_per_row: float = 20.0
    window: int = 4
    link_type: LinkType = "dedupe_and_link"
    term_frequency: bool = True
    random_pairs: int = 50_000
    random_pairs_per_row: int = 4
    seed: int = 0
    max_em_iterations: int = 100
    em_tolerance: float = 1e-5
    workers: int = 2
    contradiction_check: bool = True


@dataclass
class Resolution:
    """The outcome of :func:`resolve`.

    - ``clusters``: one row per input row, in input order: ``ROW_INDEX_COLUMN``, ``cluster`` (Int64, the
      smallest row index in the cluster; a singleton's own), ``match_probability`` (the best link that
      joined the row; null for singletons), ``rule`` (that link's rule, see the module docstring);
    - ``pairs``: scored candidate pairs with probability ≥ review_band: ``left`` < ``right`` (row indexes),
      ``probability``, ``weight`` (summed log2 weight, without the prior), ``rule``;
    - ``review``: borderline pairs (review_band ≤ probability < threshold) and links the chain guard
      dropped: ``left``, ``right``, ``probability``, ``reason``;
    - ``stats``: compared columns, blocking (keys with their pairs, skipped giant blocks with their
      sizes), candidate pairs, the model (prior, iterations, m/u/weight per comparison level), thresholds,
      links, clusters and timings in seconds.
    """

    clusters: pl.DataFrame
    pairs: pl.DataFrame
    review: pl.DataFrame
    stats: dict[str, Any]


def resolve(
    frame: pl.DataFrame,
    roles: Mapping[str, Any],
    settings: MatchSettings,
    progress: Progress | None = None,
) -> Resolution:
    """Cluster the rows of ``frame`` that are the same entity; ``roles`` maps columns to semantic roles
    (role names, or ``agents.master.roles.ColumnRole`` objects). See the module docstring."""
    report = progress or (lambda fraction, message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 4)
        clock = now

    row_index = _row_indexes(frame)
    size = frame.height
    report(0.05, "normalising match keys")
    plan = _plan(frame, roles, settings)
    normalised, compared = plan.normalised, plan.compared
    comparisons = build_comparisons(compared, term_frequency=settings.term_frequency)
    lap("normalise")

    report(0.2, "blocking")
    candidates, blocking_stats = _blocked(frame, plan, settings)
    lap("blocking")

    report(0.4, "comparing candidate pairs")
    encoded = encode_columns(normalised, [*compared, GIVEN, SURNAME])
    left, right = candidates["left"].to_numpy(), candidates["right"].to_numpy()
    levels = comparison_levels(encoded, comparisons, left, right, workers=settings.workers)
    random_count = min(settings.random_pairs, settings.random_pairs_per_row * size)
    random_left, random_right = _random_pairs(normalised, random_count, settings.seed)
    random_levels = comparison_levels(encoded, comparisons, random_left, random_right, workers=settings.workers)
    lap("compare")

    report(0.6, "estimating the Fellegi-Sunter model")
    level_counts = [len(comparison.levels) for comparison in comparisons]
    model = estimate(
        levels,
        level_counts,
        _u(comparisons, encoded, level_shares(random_levels, level_counts)),
        _total_pairs(size, _sources(frame), settings.link_type),
        max_iterations=settings.max_em_iterations,
        tolerance=settings.em_tolerance,
    )
    scales = [
        float(np.mean([settings.match_key_weights.get(column, 100.0) for column in comparison.columns])) / 100.0
        for comparison in comparisons
    ]
    weight = match_weights(model, levels, scales=scales)
    for index, comparison in enumerate(comparisons):
        if comparison.tf:
            exact = levels[:, index] == EXACT_LEVEL
            weight += scales[index] * tf_adjustment(encoded[comparison.name].codes, left, exact)
    modelled = pl.Series(probabilities(weight, model.prior))
    selective = pl.Series(_selective(encoded, list(compared), left, size))
    scored = candidates.with_columns(
        pl.when(pl.col("rule") == IDENTICAL_RULE)
        .then(1.0)
        .when((pl.col("rule") == SAME_KEYS_RULE) & selective)
        .then(pl.max_horizontal(modelled, pl.lit(settings.threshold)))
        .otherwise(modelled)
        .alias("probability"),
        pl.Series("weight", weight),
    )
    lap("score")

    report(0.8, "clustering")
    links = scored.filter(pl.col("probability") >= settings.threshold)
    vetoed = _contradicted_links(frame, plan, encoded, links, settings)
    contradicted_links, links = links.filter(vetoed), links.filter(~vetoed)
    clustering = cluster(
        size,
        links["left"].to_numpy(),
        links["right"].to_numpy(),
        links["probability"].to_numpy(),
        strong_threshold=settings.strong_threshold,
        guard_size=settings.guard_size,
        guard_density=settings.guard_density,
    )
    kept_links = links.filter(pl.Series(clustering.kept))
    dropped_links = links.filter(~pl.Series(clustering.kept))
    clusters = _clusters_frame(row_index, clustering.labels, kept_links)
    pairs = _as_row_pairs(scored.filter(pl.col("probability") >= settings.review_band), row_index)
    pairs = pairs.select(list(PAIRS_SCHEMA)).cast(PAIRS_SCHEMA).sort("left", "right")  # type: ignore[arg-type]
    review = _review(scored, dropped_links, contradicted_links, row_index, settings)
    lap("cluster")
    report(1.0, "resolved")

    cluster_sizes = clusters.group_by("cluster").len()["len"]
    stats: dict[str, Any] = {
        "rows": size,
        "compared_columns": dict(compared),
        "skipped_columns": plan.skipped,
        "link_type": settings.link_type,
        "blocking": blocking_stats,
        "candidate_pairs": candidates.height,
        "random_pairs": len(random_left),
        "model": _model_stats(model, comparisons, scales),
        "threshold": settings.threshold,
        "review_band": settings.review_band,
        "strong_threshold": settings.strong_threshold,
        "links": kept_links.height,
        "review_pairs": review.height,
        "chain_guard": {"loose_components": clustering.loose_components, "dropped_links": dropped_links.height},
        "contradicted_links": contradicted_links.height,
        "clusters": cluster_sizes.len(),
        "multi_row_clusters": int((cluster_sizes > 1).sum()),
        "largest_cluster": int(cluster_sizes.max() or 0),  # type: ignore[arg-type]
        "timings": timings,
    }
    return Resolution(clusters, pairs, review, stats)


def block(
    frame: pl.DataFrame, roles: Mapping[str, str], settings: MatchSettings
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The blocking step of :func:`resolve` alone: every candidate pair ``left`` < ``right`` (row indexes)
    with its ``rule`` (identical rows included), and the blocking stats."""
    pairs, stats = _blocked(frame, _plan(frame, roles, settings), settings)
    return _as_row_pairs(pairs, _row_indexes(frame)).with_columns(pl.col("rule").cast(pl.String)).sort(
        "left", "right"
    ), stats


@dataclass(frozen=True)
class _Plan:
    compared: dict[str, str]
    skipped: dict[str, str]
    normalised: pl.DataFrame
    shared_values: list[dict[str, Any]]


def _plan(frame: pl.DataFrame, roles: Mapping[str, Any], settings: MatchSettings) -> _Plan:
    # a ColumnRole (agents.master.roles) is taken for its role name
    names = {column: str(getattr(role, "role", role)) for column, role in roles.items()}
    compared, skipped = _compared_columns(frame, names, settings)
    normalised, shared = _without_shared_identifiers(normalise(frame, compared), compared, settings.max_block_size)
    return _Plan(compared, skipped, normalised, shared)


def _without_shared_identifiers(
    normalised: pl.DataFrame, compared: Mapping[str, str], max_block_size: int
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """The normalised frame with identifier values (``SHARED_IDENTIFIER_ROLES``) held by more than
    ``max_block_size`` rows set to null — a switchboard phone, "info@" of a shop: placeholders that
    identify nobody, neither for blocking nor as evidence — and those values as skipped blocks
    ``{"key": column, "value", "size", "reason": "shared_identifier"}``."""
    columns = [name for name, role in compared.items() if role in SHARED_IDENTIFIER_ROLES]
    skipped: list[dict[str, Any]] = []
    replacements = []
    for name in columns:
        counts = normalised.get_column(name).drop_nulls().value_counts(name="size")
        shared = counts.filter(pl.col("size") > max_block_size).sort("size", name, descending=[True, False])
        if shared.height:
            skipped += [
                {"key": name, "value": value, "size": int(size), "reason": "shared_identifier"}
                for value, size in shared.iter_rows()
            ]
            replacements.append(pl.when(~pl.col(name).is_in(shared[name].implode())).then(pl.col(name)).alias(name))
    return (normalised.with_columns(replacements) if replacements else normalised), skipped


def _blocked(frame: pl.DataFrame, plan: _Plan, settings: MatchSettings) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every pair to score (positions ``left`` < ``right``, ``rule``): rows identical in every data column
    (whatever the link type), rows equal on every compared value (at least two of them non-null, in groups
    of at most ``max_block_size`` rows), then the blocking keys' candidates (each within its pair budget);
    and the blocking stats."""
    by_role: dict[str, str] = {}
    for name, role in plan.compared.items():
        by_role.setdefault(role, name)
    keys = default_keys(by_role, settings.window, settings.max_name_block_size)
    keys += column_keys([name for name, role in plan.compared.items() if role not in ENTITY_ROLES], settings.window)
    sources = _sources(frame)
    identical, _ = identical_pairs(
        frame, [name for name in frame.columns if name not in BOOKKEEPING_COLUMNS], IDENTICAL_RULE
    )
    compared = list(plan.compared)
    present = (
        pl.sum_horizontal([pl.col(name).is_not_null().cast(pl.Int32) for name in compared]) if compared else pl.lit(0)
    )
    same_keys, same_giants = identical_pairs(
        plan.normalised, compared, SAME_KEYS_RULE, present >= 2, max_group_size=settings.max_block_size
    )
    same_keys = filter_sources(same_keys, sources, settings.link_type)
    pairs, stats = candidate_pairs(
        plan.normalised,
        keys,
        max_block_size=settings.max_block_size,
        sources=sources,
        link_type=settings.link_type,
        first={IDENTICAL_RULE: identical, SAME_KEYS_RULE: same_keys},
        pair_budget=pair_budget(frame.height, settings),
        rows=frame.height,
        workers=settings.workers,
    )
    extra = plan.shared_values + same_giants
    if extra:
        skipped = sorted(extra + stats["skipped_blocks"], key=lambda item: -int(item["size"]))
        stats["skipped_blocks"] = skipped[:MAX_REPORTED_BLOCKS]
        stats["skipped_block_count"] += len(extra)
    stats["identical_pairs"] = identical.height
    stats["same_match_key_pairs"] = pairs.filter(pl.col("rule") == SAME_KEYS_RULE).height
    return pairs, stats


def pair_budget(rows: int, settings: MatchSettings) -> int:
    """The most pairs one exact blocking key may give: ``pairs_per_row`` × rows, at least
    ``MIN_PAIR_BUDGET`` (a small file can afford its blocks whole)."""
    return max(int(settings.pairs_per_row * rows), MIN_PAIR_BUDGET)


def _sources(frame: pl.DataFrame) -> pl.Series | None:
    return frame.get_column(SOURCE_COLUMN).cast(pl.String) if SOURCE_COLUMN in frame.columns else None


def _row_indexes(frame: pl.DataFrame) -> np.ndarray:
    if ROW_INDEX_COLUMN in frame.columns:
        return frame.get_column(ROW_INDEX_COLUMN).cast(pl.Int64).to_numpy()
    return np.arange(1, frame.height + 1, dtype=np.int64)


def _compared_columns(
    frame: pl.DataFrame, roles: Mapping[str, str], settings: MatchSettings
) -> tuple[dict[str, str], dict[str, str]]:
    """The compared columns with their roles, and the columns left out with the reason."""
    data = [name for name in frame.columns if name not in BOOKKEEPING_COLUMNS]
    skipped: dict[str, str] = {}
    if settings.match_key_columns:
        missing = [name for name in settings.match_key_columns if name not in data]
        if missing:
            raise ValueError(f"match_key_columns not in the data: {missing}")
        chosen = {name: roles.get(name, "other") for name in settings.match_key_columns}
    else:
        chosen = {name: roles[name] for name in data if roles.get(name, "other") in ENTITY_ROLES}
        for name, role in list(chosen.items()):
            column = frame.get_column(name)
            if role == "id" and column.null_count() < frame.height and column.n_unique() >= frame.height:
                skipped[name] = "unique on every row: a record key, not an entity key"
                del chosen[name]
    for name in list(chosen):
        if settings.match_key_weights.get(name, 100.0) <= 0:
            skipped[name] = "match_key_weights is 0"
            del chosen[name]
    return chosen, skipped


def _total_pairs(size: int, sources: pl.Series | None, link_type: LinkType) -> float:
    """How many pairs the link type allows: all pairs, or only those across sources, or within one."""
    everything = size * (size - 1) / 2.0
    if sources is None or link_type == "dedupe_and_link":
        return everything
    counts = sources.value_counts()["count"].to_numpy().astype(np.float64)
    within = float((counts * (counts - 1) / 2.0).sum())
    return everything - within if link_type == "link_only" else within


def _u(comparisons: list[Comparison], encoded: Mapping[str, Encoded], shares: list[np.ndarray]) -> list[np.ndarray]:
    """u per comparison: exact agreement from the values' frequencies blended with the population prior,
    the other levels as the random pairs share them (``agents.master.er.scoring``)."""
    u = []
    for comparison, share in zip(comparisons, shares, strict=True):
        if comparison.parts:  # several columns: the random pairs' shares
            u.append(share)
            continue
        agreeing, pairs = agreement(encoded[comparison.name].codes)
        u.append(with_exact_u(share, agreeing, pairs, EXACT_U_PRIOR.get(comparison.role)))
    return u


def _random_pairs(normalised: pl.DataFrame, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random pairs of distinct rows, drawn over the rows in content order (so the draw does not
    depend on the row order)."""
    size = normalised.height
    if size < 2 or count <= 0 or CONTENT_HASH not in normalised.columns:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(normalised.get_column(CONTENT_HASH).to_numpy(), kind="stable")
    generator = np.random.default_rng(seed)
    count = min(count, size * (size - 1) // 2)
    first = generator.integers(0, size, count)
    second = generator.integers(0, size, count)
    distinct = first != second
    return order[first[distinct]], order[second[distinct]]


def _as_row_pairs(pairs: pl.DataFrame, row_index: np.ndarray) -> pl.DataFrame:
    rows_left = row_index[pairs["left"].to_numpy()]
    rows_right = row_index[pairs["right"].to_numpy()]
    return pairs.with_columns(
        pl.Series("left", np.minimum(rows_left, rows_right), dtype=pl.Int64),
        pl.Series("right", np.maximum(rows_left, rows_right), dtype=pl.Int64),
    )


def _clusters_frame(row_index: np.ndarray, labels: np.ndarray, kept_links: pl.DataFrame) -> pl.DataFrame:
    rows = pl.Series(ROW_INDEX_COLUMN, row_index, dtype=pl.Int64)
    frame = pl.DataFrame([rows, pl.Series("label", labels)])
    frame = frame.with_columns(pl.col(ROW_INDEX_COLUMN).min().over("label").alias("cluster"))
    ends = pl.concat(
        [
            kept_links.select(pl.col("left").alias("position"), "probability", "rule"),
            kept_links.select(pl.col("right").alias("position"), "probability", "rule"),
        ]
    )
    best = ends.sort(["position", "probability", "rule"], descending=[False, True, False]).unique(
        "position", keep="first"
    )
    frame = frame.with_row_index("position").with_columns(pl.col("position").cast(pl.Int64))
    frame = frame.join(best, on="position", how="left", maintain_order="left")
    return frame.select(
        pl.col(ROW_INDEX_COLUMN),
        pl.col("cluster"),
        pl.col("probability").alias("match_probability"),
        pl.col("rule"),
    ).cast(CLUSTERS_SCHEMA)  # type: ignore[arg-type]


def _selective(encoded: Mapping[str, Encoded], compared: list[str], left: np.ndarray, rows: int) -> np.ndarray:
    """Per pair: whether the values of its ``left`` row on the compared columns (for a pair equal on all of
    them, the pair's values) are rare enough together that rows of this size would not share them by chance:
    rows × Π share of each value below ``SELECTIVE_PARTNERS`` (independence taken; a null counts as shared by
    everyone). A state and a loan amount are not: many strangers share both."""
    log_chance = np.full(len(left), np.log(max(rows, 1)), dtype=np.float64)
    for name in compared:
        codes = encoded[name].codes
        present = codes[codes >= 0]
        if present.size == 0:
            continue
        shares = np.bincount(present).astype(np.float64) / present.size
        at = codes[left]
        known = at >= 0
        log_chance[known] += np.log(shares[at[known]])
    return log_chance < np.log(SELECTIVE_PARTNERS)


def _contradicted_links(
    frame: pl.DataFrame, plan: _Plan, encoded: Mapping[str, Encoded], links: pl.DataFrame, settings: MatchSettings
) -> pl.Series:
    """Per link: whether the rows' data columns say they are different records
    (``agents.master.er.contradiction``); rows identical in every data column never are."""
    checked = links.filter(pl.col("rule") != IDENTICAL_RULE) if settings.contradiction_check else links.clear()
    data = [name for name in frame.columns if name not in BOOKKEEPING_COLUMNS]
    strong = {name: encoded[name].codes for name, role in plan.compared.items() if role in STRONG_ROLES}
    left, right = checked["left"].to_numpy(), checked["right"].to_numpy()
    # each compared column on its own (no location comparison): which of them agree, which do not
    columns = [Comparison(name, role, ROLE_COMPARISONS.get(role, "text")) for name, role in plan.compared.items()]
    levels = comparison_levels(encoded, columns, left, right, workers=settings.workers)
    compared = {
        column.name: (levels[:, index], _near_levels(column), len(column.levels) - 1)
        for index, column in enumerate(columns)
    }
    vetoed = contradicted(frame, data, compared, strong, left, right)
    found = checked.filter(pl.Series(vetoed)).select("left", "right").with_columns(pl.lit(True).alias("vetoed"))
    marked = links.join(found, on=["left", "right"], how="left", maintain_order="left")
    return marked.get_column("vetoed").fill_null(False)


def _near_levels(comparison: Comparison) -> tuple[int, ...]:
    """The levels just short of exact agreement (the closest fuzzy level, a name swap); none for categories."""
    labels = comparison.levels
    near = tuple(index for index, label in enumerate(labels) if label == "swapped")
    return near + ((EXACT_LEVEL + 1,) if len(labels) > EXACT_LEVEL + 2 else ())


def _review(
    scored: pl.DataFrame,
    dropped_links: pl.DataFrame,
    contradicted_links: pl.DataFrame,
    row_index: np.ndarray,
    settings: MatchSettings,
) -> pl.DataFrame:
    borderline = scored.filter(
        (pl.col("probability") >= settings.review_band) & (pl.col("probability") < settings.threshold)
    ).with_columns(
        pl.format(
            "borderline match probability: between the review band {} and the threshold {}",
            pl.lit(settings.review_band),
            pl.lit(settings.threshold),
        ).alias("reason")
    )
    guarded = dropped_links.with_columns(
        pl.lit("link dropped by the chain guard: a weak link bridging two groups of a loose cluster").alias("reason")
    )
    contradicted_pairs = contradicted_links.with_columns(
        pl.lit("link withheld: the rows disagree on more of their columns than they agree on").alias("reason")
    )
    review = pl.concat(
        [
            _as_row_pairs(frame.select(list(REVIEW_SCHEMA)), row_index)
            for frame in (borderline, guarded, contradicted_pairs)
        ]
    )
    return review.cast(REVIEW_SCHEMA).sort("left", "right")  # type: ignore[arg-type]


def _model_stats(model: FellegiSunter, comparisons: list[Comparison], scales: list[float]) -> dict[str, Any]:
    weights = model.level_weights()
    per_comparison: dict[str, Any] = {}
    for index, comparison in enumerate(comparisons):
        per_comparison[comparison.name] = {
            "columns": list(comparison.columns),
            "role": comparison.role,
            "kind": comparison.kind,
            "term_frequency": comparison.tf,
            "scale": scales[index],
            "levels": [
                {
                    "level": label,
                    "m": round(float(model.m[index][level]), 6),
                    "u": round(float(model.u[index][level]), 6),
                    "weight": round(float(weights[index][level]), 4),
                }
                for level, label in enumerate(comparison.levels)
                if level > 0
            ],
        }
    return {
        "prior": model.prior,
        "expected_matches": round(model.expected_matches, 1),
        "iterations": model.iterations,
        "converged": model.converged,
        "comparisons": per_comparison,
    }
