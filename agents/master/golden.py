"""The ``golden-record-builder`` agent: matches the rows that describe one entity, across every source, and
builds one golden record per cluster (reference/agents.md §1.6; PRODUCT.md master-my-data).

- **Roles.** Each data column's role comes from semantic-mapper (``semantic_roles`` artifact) when it ran,
  else from ``agents.master.roles.detect_roles``.
- **Clusters.** With ``enable_fuzzy_matching`` (ours: on by default) ``agents.master.matching.resolve``
  blocks, scores candidate pairs and forms clusters; ``fuzzy_threshold``, when given, is its match
  probability threshold in percent. Without: rows equal on every normalised match key column form a
  cluster (``survivorship.exact_clusters``: placeholders such as "N/A" or "unknown" are no key, and a key
  value shared by more than ``survivorship.MAX_KEY_GROUP`` rows is skipped and reported); rows without a
  usable key (or all rows, when no keys are given or detected) merge only with rows identical in every
  data column.
- **Golden records.** ``survivorship.survive`` per cluster and column (rules, confidences, trust score
  and ``golden_id`` as documented there). The columns of one role group (a person's given name and surname;
  an address's parts) survive together from one record (``survivorship.column_groups``): the report lists
  each group with its reason (``data.survivorship.column_groups``), the provenance names the columns a value
  survived with (``together_with``), and the clusters whose records hold the given name and surname swapped
  are counted and reported (an issue ``swapped_name_parts``).
- **Outputs** (``AgentResult.outputs``): ``master_data.csv`` = ``golden_id``, the survived data columns,
  ``trust_score``, ``source_count`` (distinct sources), ``record_count``; ``crosswalk.csv`` = every input row
  exactly once, in file order: ``source``, ``source_row``, ``golden_id``, ``match_probability`` (the best
  link that joined the row; null for a row alone), ``rule``. **Artifacts** for later agents:
  ``resolution`` (the matcher's ``Resolution``; in exact mode one of the exact clusters, with no pairs),
  ``golden_records`` (the master data), ``crosswalk`` (with
  ``ROW_INDEX_COLUMN``) and ``provenance`` (``survivorship.PROVENANCE_SCHEMA``, for the golden records of two
  or more rows: a single row's values come from it with confidence 1.0). The data goes on unchanged (no ``frame``).

Summary metrics (Agensium's names): ``input_records``; ``golden_records_created``; ``clusters_formed`` = the
clusters of two or more records (ours: Agensium counts every cluster, i.e. the golden records again);
``compression_ratio`` = input records / golden records; ``conflicts_resolved`` = golden values whose cluster
held two or more distinct values; ``values_survived`` = filled cells of the golden records (ours: Agensium
counts every cell); ``average_trust_score``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from agents.clean.common import clean_result, effectiveness
from agents.envelope import (
    REMOVED_ROWS_ARTIFACT,
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.errors import InvalidParametersError
from agents.findings import Findings, card_status, score_status
from agents.formatting import plain_value
from agents.master import survivorship
from agents.master.matching import CLUSTERS_SCHEMA, PAIRS_SCHEMA, REVIEW_SCHEMA, MatchSettings, Resolution, resolve
from agents.master.survivorship import GOLDEN_ID, MEMBER_GOLDEN_ID, canonical_rule
from agents.params.golden_record_builder import GoldenRecordBuilderParams

AGENT_ID = "golden-record-builder"
AGENT_NAME = "Golden Record Builder"
MASTER_DATA = "master_data.csv"
CROSSWALK = "crosswalk.csv"
SAMPLE_MEMBERS = 10
LOW_COMPRESSION = 1.5
LOW_TRUST_SHARE = 0.1
CROSSWALK_COLUMNS = ("source", "source_row", GOLDEN_ID, "match_probability", "rule")


@dataclass
class Clustering:
    """How the rows were clustered: the clusters frame (``Resolution.clusters``' shape), the ``Resolution``,
    the method (fuzzy or exact), the columns matched on and the matcher's statistics."""

    clusters: pl.DataFrame
    resolution: Resolution
    method: str
    key_columns: list[str]
    stats: dict[str, Any]


@dataclass
class Built:
    frame: pl.DataFrame
    roles: dict[str, str]
    roles_source: str
    clustering: Clustering
    members: pl.DataFrame
    golden: pl.DataFrame
    provenance: pl.DataFrame  # clusters of two or more records only
    crosswalk: pl.DataFrame  # with ROW_INDEX_COLUMN
    groups: dict[str, list[str]] = field(default_factory=dict)  # survivorship.column_groups
    swapped: int = 0  # clusters whose records hold the given name and surname swapped

    @property
    def merged_clusters(self) -> int:
        return int(self.golden.filter(pl.col("record_count") > 1).height)

    @property
    def conflicts(self) -> int:
        return int(self.provenance["conflict"].sum()) if self.provenance.height else 0


def run(inputs: AgentInputs, params: GoldenRecordBuilderParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = survivorship.with_bookkeeping(inputs.primary)
    _validate(frame, params)
    progress(0.0, f"Building golden records from {frame.height:,} rows")
    roles, roles_source = survivorship.column_roles(frame, inputs.artifacts)
    progress(0.05, "Matching rows that describe the same entity")
    clustering = _cluster(frame, roles, params, lambda fraction, message: progress(0.05 + 0.6 * fraction, message))
    progress(0.7, "Choosing the surviving value of every field")
    members = survivorship.cluster_members(frame, clustering.clusters)
    golden, provenance = survivorship.survive(
        frame,
        clustering.clusters,
        params.survivorship_rules,
        params.default_survivorship_rule,
        params.source_priority,
        params.timestamp_column,
        roles=roles,
        source_column=params.source_column,
        singleton_provenance=False,
        members=members,
    )
    progress(0.9, "Writing the crosswalk and the report")
    crosswalk = _crosswalk(members, clustering.clusters, inputs.artifacts.get(REMOVED_ROWS_ARTIFACT))
    columns = data_columns(frame)
    rules = {
        name: canonical_rule(params.survivorship_rules.get(name, params.default_survivorship_rule)) for name in columns
    }
    groups = survivorship.column_groups(columns, roles, rules)
    swapped = survivorship.swapped_name_clusters(members, roles) if "person_name" in groups else 0
    built = Built(frame, roles, roles_source, clustering, members, golden, provenance, crosswalk, groups, swapped)
    result = _result(built, params, started)
    result.outputs = {MASTER_DATA: golden, CROSSWALK: crosswalk.select(CROSSWALK_COLUMNS)}
    result.artifacts = {
        "resolution": clustering.resolution,
        "golden_records": golden,
        "crosswalk": crosswalk,
        "provenance": provenance,
    }
    progress(1.0, f"{golden.height:,} golden records from {frame.height:,} rows")
    return result


def _validate(frame: pl.DataFrame, params: GoldenRecordBuilderParams) -> None:
    survivorship.require_named_columns(frame, params, AGENT_ID, match_key_weights=list(params.match_key_weights))
    if params.match_key_weights and not params.enable_fuzzy_matching:
        raise InvalidParametersError(
            f"{AGENT_ID}.match_key_weights: weights apply to fuzzy matching; set enable_fuzzy_matching to true",
            agent_id=AGENT_ID,
            field="match_key_weights",
        )


# ---------------------------------------------------------------------------------------------------------
# clustering


def _cluster(
    frame: pl.DataFrame,
    roles: dict[str, str],
    params: GoldenRecordBuilderParams,
    progress: Callable[[float, str], None],
) -> Clustering:
    if params.enable_fuzzy_matching:
        settings = match_settings(params)
        resolution = resolve(frame, roles, settings, progress)
        stats = dict(resolution.stats or {})
        keys = [str(name) for name in stats.get("compared_columns") or settings.match_key_columns]
        return Clustering(resolution.clusters, resolution, "fuzzy", keys, stats)
    keys = list(params.match_key_columns) or survivorship.entity_key_columns(roles)
    clusters, skipped = survivorship.exact_clusters(frame, keys, roles)
    stats = {"method": "exact", "key_columns": keys, "skipped_keys": skipped.to_dicts()}
    progress(1.0, "Matched rows with equal keys")
    return Clustering(clusters, _exact_resolution(clusters, stats), "exact", keys, stats)


def match_settings(params: GoldenRecordBuilderParams) -> MatchSettings:
    """The matcher's settings from the parameters: match key columns and weights as given, and the
    threshold (``fuzzy_threshold`` / 100) only when the user gave one; everything else the matcher's
    calibrated defaults."""
    settings = MatchSettings(
        match_key_columns=list(params.match_key_columns), match_key_weights=dict(params.match_key_weights)
    )
    if "fuzzy_threshold" in params.model_fields_set:
        settings.threshold = params.fuzzy_threshold / 100.0
        settings.review_band = min(settings.review_band, settings.threshold)
    return settings


def _exact_resolution(clusters: pl.DataFrame, stats: dict[str, Any]) -> Resolution:
    """A ``Resolution`` of exact clusters: no pairs scored, nothing borderline."""
    return Resolution(
        clusters=clusters.cast(CLUSTERS_SCHEMA),  # type: ignore[arg-type]
        pairs=pl.DataFrame(schema=PAIRS_SCHEMA),
        review=pl.DataFrame(schema=REVIEW_SCHEMA),
        stats=stats,
    )


def _crosswalk(members: pl.DataFrame, clusters: pl.DataFrame, removed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every input row once, in file order: ``ROW_INDEX_COLUMN``, source, source_row, golden_id,
    match_probability, rule; rows an earlier agent removed (``removed``, on the user's request) with no
    golden record and the rule "removed by <agent>"."""
    links = clusters.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("rule").cast(pl.String),
    )
    kept = members.select(
        ROW_INDEX_COLUMN,
        pl.col(SOURCE_COLUMN).alias("source"),
        pl.col(SOURCE_ROW_COLUMN).alias("source_row"),
        pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID),
    ).join(links, on=ROW_INDEX_COLUMN, how="left", maintain_order="left")
    if removed is None or removed.height == 0:
        return kept
    gone = removed.select(
        pl.col(ROW_INDEX_COLUMN).cast(pl.Int64),
        pl.col(SOURCE_COLUMN).alias("source"),
        pl.col(SOURCE_ROW_COLUMN).alias("source_row"),
        pl.lit(None, pl.String).alias(GOLDEN_ID),
        pl.lit(None, pl.Float64).alias("match_probability"),
        pl.concat_str(pl.lit("removed by "), pl.col("agent_id")).alias("rule"),
    )
    return pl.concat([kept, gone.select(kept.columns)], how="vertical_relaxed").sort(ROW_INDEX_COLUMN)


# ---------------------------------------------------------------------------------------------------------
# the envelope


def _result(built: Built, params: GoldenRecordBuilderParams, started: float) -> AgentResult:
    metrics = _summary_metrics(built)
    score = effectiveness(
        {
            "trust": 100.0 * metrics["average_trust_score"],
            "compression": min(100.0, 20.0 * metrics["compression_ratio"]),
            "conflict_resolution": 100.0,
        },
        {"trust": 0.4, "compression": 0.3, "conflict_resolution": 0.3},
        params,
    )
    low_trust = built.golden.filter(pl.col("trust_score") < params.min_trust_score)
    findings = _findings(built, params, low_trust)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=metrics,
        data=_data(built, params, score, low_trust.height),
        frame=None,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(built, metrics, score),
        row_level_issues=_row_issues(built, low_trust, params),
    )


def _summary_metrics(built: Built) -> dict[str, Any]:
    rows, golden = built.frame.height, built.golden.height
    columns = list(survivorship.golden_names(data_columns(built.frame)).values())
    filled = int(built.golden.select(pl.sum_horizontal(pl.col(columns).count())).item()) if columns and golden else 0
    trust = built.golden["trust_score"].mean() if golden else None
    return {
        "input_records": rows,
        "golden_records_created": golden,
        "clusters_formed": built.merged_clusters,
        "compression_ratio": round(rows / golden, 4) if golden else 1.0,
        "conflicts_resolved": built.conflicts,
        "values_survived": filled,
        "average_trust_score": round(float(trust), 4) if trust is not None else 1.0,  # type: ignore[arg-type]
    }


def _data(built: Built, params: GoldenRecordBuilderParams, score: dict[str, Any], low_trust: int) -> dict[str, Any]:
    clustering, provenance = built.clustering, built.provenance
    conflicts = provenance.filter(pl.col("conflict"))
    by_column = dict(conflicts.group_by("column", maintain_order=True).len().iter_rows())
    by_rule = dict(conflicts.group_by("rule", maintain_order=True).len().iter_rows())
    columns = data_columns(built.frame)
    return {
        "golden_score": score["score"],
        "quality_status": score["status"],
        "effectiveness": score,
        "matching": {
            "method": clustering.method,
            "fuzzy_matching_enabled": params.enable_fuzzy_matching,
            "match_key_columns": clustering.key_columns,
            "roles": built.roles,
            "roles_source": built.roles_source,
            "stats": survivorship.jsonable(clustering.stats),
        },
        "cluster_size_histogram": _histogram(built.golden),
        "survivorship": {
            "default_rule": canonical_rule(params.default_survivorship_rule),
            "rules": {
                name: canonical_rule(params.survivorship_rules.get(name, params.default_survivorship_rule))
                for name in columns
            },
            "conflicts_by_column": {str(key): int(value) for key, value in by_column.items()},
            "conflicts_by_rule": {str(key): int(value) for key, value in by_rule.items()},
            "column_groups": [
                {
                    "group": group,
                    "columns": names,
                    "rule": canonical_rule(params.survivorship_rules.get(names[0], params.default_survivorship_rule)),
                    "reason": survivorship.GROUP_REASONS[group],
                    **({"swapped_name_clusters": built.swapped} if group == "person_name" else {}),
                }
                for group, names in built.groups.items()
            ],
        },
        "low_trust_records": low_trust,
        "min_trust_score": params.min_trust_score,
        "merged_cluster_samples": _samples(built, params.sample_clusters),
        "outputs": {MASTER_DATA: built.golden.height, CROSSWALK: built.crosswalk.height},
    }


def _histogram(golden: pl.DataFrame) -> list[dict[str, int]]:
    """Clusters per size (records in the cluster), smallest size first."""
    counts = golden.group_by("record_count").len().sort("record_count")
    return [{"size": int(size), "clusters": int(count)} for size, count in counts.iter_rows()]


def _samples(built: Built, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` largest merged clusters (ties: file order), golden record and members side by side."""
    if limit <= 0:
        return []
    columns = data_columns(built.frame)
    names = survivorship.golden_names(columns)
    chosen = (
        built.golden.with_row_index("__order__")
        .filter(pl.col("record_count") > 1)
        .sort(["record_count", "__order__"], descending=[True, False])
        .head(limit)
    )
    if not chosen.height:
        return []
    ids = chosen[GOLDEN_ID]
    members = (
        built.members.filter(pl.col(MEMBER_GOLDEN_ID).is_in(ids.implode()))
        .join(built.crosswalk.select(ROW_INDEX_COLUMN, "match_probability", "rule"), on=ROW_INDEX_COLUMN, how="left")
        .sort(ROW_INDEX_COLUMN)
    )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in members.to_dicts():
        items = grouped.setdefault(row[MEMBER_GOLDEN_ID], [])
        if len(items) < SAMPLE_MEMBERS:
            items.append(
                {
                    "source": row[SOURCE_COLUMN],
                    "source_row": row[SOURCE_ROW_COLUMN],
                    "match_probability": plain_value(row["match_probability"]),
                    "rule": row["rule"],
                    "values": {name: plain_value(row[name]) for name in columns},
                }
            )
    conflicting = (
        built.provenance.filter(pl.col("conflict") & pl.col(GOLDEN_ID).is_in(ids.implode()))
        .group_by(GOLDEN_ID)
        .agg(pl.col("column"))
    )
    conflict_columns = {golden_id: names for golden_id, names in conflicting.iter_rows()}
    samples = []
    for record in chosen.to_dicts():
        golden_id = record[GOLDEN_ID]
        samples.append(
            {
                "golden_id": golden_id,
                "record_count": record["record_count"],
                "source_count": record["source_count"],
                "trust_score": plain_value(record["trust_score"]),
                "conflicting_columns": conflict_columns.get(golden_id, []),
                "golden": {name: plain_value(record[names[name]]) for name in columns},
                "members": grouped.get(golden_id, []),
            }
        )
    return samples


def _findings(built: Built, params: GoldenRecordBuilderParams, low_trust: pl.DataFrame) -> Findings:
    findings = Findings(AGENT_ID)
    rows, golden = built.frame.height, built.golden.height
    clustering = built.clustering
    if not clustering.key_columns:
        findings.alert(
            "configuration",
            "medium",
            "No column identifies the entity (no e-mail, phone, national id or name with date of birth was "
            "detected): only rows identical in every column were merged",
            "Set match_key_columns to the columns that identify a record",
            kind="no_match_keys",
            affected=0,
            recommend=True,
        )
    elif golden and rows > 10 and rows / golden < LOW_COMPRESSION:
        findings.alert(
            "deduplication",
            "low",
            f"Few rows matched: {golden:,} golden records from {rows:,} rows ({rows / golden:.2f}x)",
            "The data may hold few duplicates; check the match keys if you expected more",
            kind="low_compression",
            affected=0,
        )
    if low_trust.height:
        share = low_trust.height / golden
        findings.alert(
            "data_quality",
            "high" if share > LOW_TRUST_SHARE else "medium",
            f"{low_trust.height:,} golden records ({100 * share:.1f}%) have a trust score below "
            f"{params.min_trust_score}",
            "Review them (stewardship-flagger queues them) or set survivorship rules for their conflicting fields",
            kind="low_trust",
            affected=low_trust.height,
        )
        findings.issue(
            "low_trust_score",
            "medium",
            f"{low_trust.height:,} golden records have a trust score below {params.min_trust_score}",
            details={"golden_records": low_trust.height, "min_trust_score": params.min_trust_score},
        )
        findings.recommend(
            f"Review the {low_trust.height:,} golden records with a low trust score", "high", kind="low_trust"
        )
    _skipped_blocks(findings, clustering.stats)
    survivorship.report_skipped_keys(findings, clustering.stats.get("skipped_keys") or [])
    if built.swapped:
        given, surname = built.groups["person_name"]
        findings.issue(
            "swapped_name_parts",
            "low",
            f"{built.swapped:,} golden records were built from records holding '{given}' and '{surname}' swapped: "
            "both name parts come from one record, the orientation the rest of the data uses (else the first "
            "record in content order)",
            field_name=given,
            details={"golden_records": built.swapped, "columns": [given, surname]},
        )
    conflicts = built.provenance.filter(pl.col("conflict")).group_by("column", maintain_order=True).len()
    for name, count in conflicts.iter_rows():
        findings.issue(
            "conflicting_values",
            "low",
            f"{count:,} golden records were built from rows holding different values in '{name}'",
            field_name=str(name),
            details={"golden_records": int(count)},
        )
    if conflicts.height and not params.survivorship_rules:
        findings.recommend(
            "Set survivorship_rules for the columns whose values conflict (e.g. most_recent with a "
            "timestamp_column, or source_priority)",
            "medium",
            kind="survivorship_rules",
        )
    sources = built.frame[SOURCE_COLUMN].n_unique()
    if sources > 1 and not params.source_priority:
        findings.recommend(
            f"Rank the {sources} sources (source_priority) so that the most trusted one wins conflicts",
            "medium",
            kind="source_priority",
        )
    return findings


def _skipped_blocks(findings: Findings, stats: Mapping[str, Any]) -> None:
    blocking = stats.get("blocking")
    count = int(blocking.get("skipped_block_count") or 0) if isinstance(blocking, Mapping) else 0
    if not count:
        return
    findings.alert(
        "matching",
        "medium",
        f"{count:,} blocks of candidate rows were too large to compare and were skipped",
        "Check the values those blocks share (e.g. placeholders such as 'unknown'), or choose more telling "
        "match_key_columns",
        kind="skipped_blocks",
        affected=0,
    )


def _row_issues(built: Built, low_trust: pl.DataFrame, params: GoldenRecordBuilderParams) -> pl.DataFrame:
    """One issue per golden record with a low trust score, at its cluster's first row."""
    if not low_trust.height:
        return pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    first_rows = built.members.group_by(pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID)).agg(pl.col(ROW_INDEX_COLUMN).min())
    return (
        low_trust.lazy()
        .select(GOLDEN_ID, "trust_score", "record_count")
        .join(first_rows.lazy(), on=GOLDEN_ID, how="left")
        .select(
            pl.col(ROW_INDEX_COLUMN).cast(pl.Int64).alias("row_index"),
            pl.lit("trust_score").alias("column"),
            pl.lit("low_trust_score").alias("issue_type"),
            pl.lit("warning").alias("severity"),
            format_text(
                "golden record {} ({} rows) has trust score {} (below {})",
                pl.col(GOLDEN_ID),
                pl.col("record_count"),
                pl.col("trust_score").round(3),
                pl.lit(params.min_trust_score),
            ).alias("message"),
            pl.col("trust_score").round(4).cast(pl.String).alias("value"),
        )
        .sort("row_index")
        .collect()
        .cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]
    )


def _cards(built: Built, metrics: dict[str, Any], score: dict[str, Any]) -> list[SummaryCard]:
    rows, golden = metrics["input_records"], metrics["golden_records_created"]
    return [
        SummaryCard(
            "exec_golden_records",
            "Golden Records",
            f"{golden:,}",
            card_status(score["status"]),
            f"{golden:,} golden records from {rows:,} rows ({metrics['compression_ratio']:.2f}x); "
            f"{built.merged_clusters:,} clusters merged two or more rows; "
            f"{metrics['conflicts_resolved']:,} conflicting values resolved",
        ),
        SummaryCard(
            "exec_golden_trust",
            "Average Trust Score",
            f"{metrics['average_trust_score']:.2f}",
            score_status(100.0 * metrics["average_trust_score"]),
            "Mean confidence of the surviving values (1.0 where the rows agreed)",
        ),
    ]
