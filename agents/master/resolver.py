"""The ``survivorship-resolver`` agent: groups the rows that share a match key, finds the fields whose values
conflict within a group, and picks each field's winner by its rule (reference/agents.md §1.6).

- **Groups.** Rows equal on every normalised ``match_key_columns`` value form a cluster
  (``survivorship.exact_clusters``: e-mail lowercased without whitespace, phone digits only, national id
  letters and digits, other text trimmed and lowercased; placeholders such as "N/A" or "unknown", e-mails
  without "@" and phones under 7 digits are no key, and a key value shared by more than
  ``survivorship.MAX_KEY_GROUP`` rows is skipped and reported; a row without a usable key merges only with
  rows identical in every data column). Without
  ``match_key_columns``: the detected entity key (``survivorship.entity_key_columns``: an e-mail column,
  else phone, else national id, else given name + surname + date of birth, else full name + date of birth),
  roles from semantic-mapper when it ran, else detected.
- **Winners.** ``survivorship.survive`` with the rules, ``default_rule`` (Agensium's: quality_score) and
  ``field_validation_rules`` feeding the value quality. A *conflict* is a (cluster, column) whose rows hold
  two or more distinct values; it is *resolved* when the winner's confidence reaches
  ``min_confidence_threshold``, else it is *unresolved* and reported (a row-level issue at the cluster's
  first row). The data goes on unchanged.

Summary metrics (Agensium's names): ``clusters_analyzed`` = clusters of two or more rows (the only ones that
can conflict; Agensium counts single rows too); ``conflicts_detected``; ``conflicts_resolved``;
``values_survived`` = filled values of those clusters' golden records (ours); ``unresolved_conflicts`` =
detected - resolved (Agensium: only those below confidence 0.3); ``resolution_rate`` = resolved / detected in
percent (100 without conflicts); ``average_confidence`` = mean winner confidence over the conflicts (1.0
without).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.clean.common import clean_result, effectiveness
from agents.columns import check_regex
from agents.envelope import (
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    AgentInputs,
    AgentResult,
    Progress,
    SummaryCard,
    data_columns,
    format_text,
)
from agents.findings import Findings, card_status
from agents.formatting import plain_value
from agents.master import survivorship
from agents.master.survivorship import GOLDEN_ID, MEMBER_GOLDEN_ID, canonical_rule
from agents.params.survivorship_resolver import SurvivorshipResolverParams

AGENT_ID = "survivorship-resolver"
AGENT_NAME = "Survivorship Resolver"
COMPETING_VALUES = 5
UNRESOLVED_BAR = 0.3  # Agensium's "could not resolve" confidence, for the coverage component of the score


@dataclass
class Resolved:
    frame: pl.DataFrame
    roles: dict[str, str]
    roles_source: str
    key_columns: list[str]
    key_source: str
    members: pl.DataFrame
    golden: pl.DataFrame  # clusters of two or more rows
    conflicts: pl.DataFrame  # provenance rows with a conflict, plus "resolved" and the cluster's first row
    skipped_keys: pl.DataFrame  # survivorship.SKIPPED_KEYS_SCHEMA


def run(inputs: AgentInputs, params: SurvivorshipResolverParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = survivorship.with_bookkeeping(inputs.primary)
    _validate(frame, params)
    progress(0.0, f"Grouping {frame.height:,} rows by their match keys")
    roles, roles_source = survivorship.column_roles(frame, inputs.artifacts)
    keys = list(params.match_key_columns) or survivorship.entity_key_columns(roles)
    clusters, skipped = survivorship.exact_clusters(frame, keys, roles)
    members = survivorship.cluster_members(frame, clusters)
    progress(0.4, "Resolving conflicting values")
    golden, provenance = survivorship.survive(
        frame,
        clusters,
        params.survivorship_rules,
        params.default_rule,
        params.source_priority,
        params.timestamp_column,
        roles=roles,
        validation_rules={name: rule.model_dump() for name, rule in params.field_validation_rules.items()},
        source_column=params.source_column,
        singleton_provenance=False,
        members=members,
        singletons=False,
    )
    first_rows = members.group_by(pl.col(MEMBER_GOLDEN_ID).alias(GOLDEN_ID)).agg(
        pl.col(ROW_INDEX_COLUMN).min().alias("first_row")
    )
    conflicts = (
        provenance.filter(pl.col("conflict"))
        .with_columns((pl.col("confidence") >= params.min_confidence_threshold).alias("resolved"))
        .join(first_rows, on=GOLDEN_ID, how="left", maintain_order="left")
    )
    key_source = "parameter" if params.match_key_columns else "detected"
    merged = golden.filter(pl.col("record_count") > 1)
    resolved = Resolved(frame, roles, roles_source, keys, key_source, members, merged, conflicts, skipped)
    progress(0.85, "Building the report")
    result = _result(resolved, params, started)
    progress(1.0, f"{conflicts.height:,} conflicts in {merged.height:,} clusters")
    return result


def _validate(frame: pl.DataFrame, params: SurvivorshipResolverParams) -> None:
    survivorship.require_named_columns(
        frame, params, AGENT_ID, field_validation_rules=list(params.field_validation_rules)
    )
    for name, rule in params.field_validation_rules.items():
        if rule.pattern:
            check_regex(survivorship.anchored(rule.pattern), agent_id=AGENT_ID, field=f"field_validation_rules.{name}")


def _result(resolved: Resolved, params: SurvivorshipResolverParams, started: float) -> AgentResult:
    metrics = _summary_metrics(resolved)
    conflicts = resolved.conflicts
    detected = conflicts.height
    covered = conflicts.filter(pl.col("confidence") >= UNRESOLVED_BAR).height
    score = effectiveness(
        {
            "resolution": metrics["resolution_rate"],
            "confidence": 100.0 * metrics["average_confidence"],
            "coverage": 100.0 * covered / detected if detected else 100.0,
        },
        {"resolution": 0.5, "confidence": 0.35, "coverage": 0.15},
        params,
    )
    findings = _findings(resolved, params, metrics)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=metrics,
        data=_data(resolved, params, score),
        frame=None,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=[
            SummaryCard(
                "exec_survivorship_resolver",
                "Survivorship Resolution",
                f"{metrics['resolution_rate']:.1f}%",
                card_status(score["status"]),
                f"{metrics['conflicts_resolved']:,}/{metrics['conflicts_detected']:,} conflicts resolved in "
                f"{metrics['clusters_analyzed']:,} clusters; average confidence {metrics['average_confidence']:.2f}",
            )
        ],
        row_level_issues=_row_issues(resolved, params),
    )


def _summary_metrics(resolved: Resolved) -> dict[str, Any]:
    conflicts, golden = resolved.conflicts, resolved.golden
    detected = conflicts.height
    done = int(conflicts["resolved"].sum()) if detected else 0
    columns = list(survivorship.golden_names(data_columns(resolved.frame)).values())
    filled = int(golden.select(pl.sum_horizontal(pl.col(columns).count())).item()) if columns and golden.height else 0
    confidence = conflicts["confidence"].mean() if detected else None
    return {
        "clusters_analyzed": golden.height,
        "conflicts_detected": detected,
        "conflicts_resolved": done,
        "values_survived": filled,
        "unresolved_conflicts": detected - done,
        "resolution_rate": round(100.0 * done / detected, 2) if detected else 100.0,
        "average_confidence": round(float(confidence), 4) if confidence is not None else 1.0,  # type: ignore[arg-type]
    }


def _data(resolved: Resolved, params: SurvivorshipResolverParams, score: dict[str, Any]) -> dict[str, Any]:
    conflicts = resolved.conflicts
    columns = data_columns(resolved.frame)
    by_field = (
        conflicts.group_by("column", maintain_order=True)
        .agg(
            pl.len().alias("conflicts"),
            pl.col("resolved").sum().alias("resolved"),
            (~pl.col("resolved")).sum().alias("unresolved"),
            pl.col("confidence").mean().round(4).alias("average_confidence"),
        )
        .to_dicts()
    )
    by_rule = dict(conflicts.group_by("rule", maintain_order=True).len().iter_rows())
    sizes = resolved.golden["record_count"]
    return {
        "survivorship_score": score["score"],
        "quality_status": score["status"],
        "effectiveness": score,
        "match_key_columns": resolved.key_columns,
        "match_key_source": resolved.key_source,
        "skipped_key_values": survivorship.jsonable(resolved.skipped_keys),
        "roles": resolved.roles,
        "roles_source": resolved.roles_source,
        "clusters": {
            "rows": resolved.frame.height,
            "clusters_with_two_or_more_rows": resolved.golden.height,
            "rows_in_those_clusters": int(sizes.sum()) if sizes.len() else 0,
            "largest_cluster": int(sizes.max()) if sizes.len() else 0,  # type: ignore[arg-type]
        },
        "rules": {name: canonical_rule(params.survivorship_rules.get(name, params.default_rule)) for name in columns},
        "rules_applied": {str(rule): int(count) for rule, count in by_rule.items()},
        "resolution_by_field": {
            str(item.pop("column")): {key: plain_value(value) for key, value in item.items()} for item in by_field
        },
        "resolved_fields": _resolved_fields(resolved, params.max_reported_conflicts),
    }


def _resolved_fields(resolved: Resolved, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` conflicts (file order of the clusters), with up to ``COMPETING_VALUES`` of the
    values that competed."""
    shown = resolved.conflicts.sort("first_row", maintain_order=True).head(limit)
    if not shown.height:
        return []
    ids = shown[GOLDEN_ID].unique()
    members = resolved.members.filter(pl.col(MEMBER_GOLDEN_ID).is_in(ids.implode()))
    competing: dict[tuple[str, str], list[Any]] = {}
    for name in shown["column"].unique(maintain_order=True).to_list():
        values = members.group_by(MEMBER_GOLDEN_ID).agg(
            pl.col(name).drop_nulls().unique(maintain_order=True).head(COMPETING_VALUES).alias("values")
        )
        for golden_id, items in values.iter_rows():
            competing[(golden_id, name)] = [plain_value(item) for item in items]
    return [
        {
            "golden_id": row[GOLDEN_ID],
            "first_row": row["first_row"],
            "column": row["column"],
            "competing_values": competing.get((row[GOLDEN_ID], row["column"]), []),
            "distinct_values": row["distinct_values"],
            "winner": row["value"],
            "source": row["source"],
            "source_row": row["source_row"],
            "rule_applied": row["rule"],
            "confidence": plain_value(row["confidence"]),
            "resolved": row["resolved"],
        }
        for row in shown.to_dicts()
    ]


def _findings(resolved: Resolved, params: SurvivorshipResolverParams, metrics: dict[str, Any]) -> Findings:
    findings = Findings(AGENT_ID)
    detected, unresolved = metrics["conflicts_detected"], metrics["unresolved_conflicts"]
    if not resolved.key_columns:
        findings.alert(
            "configuration",
            "medium",
            "No column identifies the entity (no e-mail, phone, national id or name with date of birth was "
            "detected): only rows identical in every column were grouped",
            "Set match_key_columns to the columns that identify a record",
            kind="no_match_keys",
            affected=0,
            recommend=True,
        )
    elif not detected and resolved.golden.height:
        findings.alert(
            "configuration",
            "low",
            f"No conflicts: the {resolved.golden.height:,} groups of rows sharing a match key agree on every field",
            "Nothing to resolve; check match_key_columns if you expected conflicts",
            kind="no_conflicts",
            affected=0,
        )
    survivorship.report_skipped_keys(findings, resolved.skipped_keys.to_dicts())
    if unresolved:
        findings.alert(
            "conflict_resolution",
            "high" if unresolved > 0.2 * detected else "medium",
            f"{unresolved:,} of {detected:,} conflicts could not be resolved with confidence "
            f"{params.min_confidence_threshold} or more",
            "Send them to stewardship review, or set survivorship_rules / source_priority for those fields",
            kind="unresolved",
            affected=unresolved,
            recommend=True,
        )
        low = resolved.conflicts.filter(~pl.col("resolved")).group_by("column", maintain_order=True).len()
        for name, count in low.iter_rows():
            findings.issue(
                "low_confidence_resolution",
                "medium",
                f"{count:,} conflicts in '{name}' were resolved with confidence below "
                f"{params.min_confidence_threshold}",
                field_name=str(name),
                details={"conflicts": int(count)},
            )
    if detected and not params.survivorship_rules:
        findings.recommend(
            "Set survivorship_rules for the fields that conflict (e.g. most_recent with a timestamp_column, "
            "or source_priority)",
            "medium",
            kind="survivorship_rules",
        )
    return findings


def _row_issues(resolved: Resolved, params: SurvivorshipResolverParams) -> pl.DataFrame:
    """One issue per unresolved conflict, at its cluster's first row."""
    unresolved = resolved.conflicts.filter(~pl.col("resolved"))
    if not unresolved.height:
        return pl.DataFrame(schema=ROW_LEVEL_ISSUE_SCHEMA)
    return (
        unresolved.lazy()
        .select(
            pl.col("first_row").cast(pl.Int64).alias("row_index"),
            pl.col("column"),
            pl.lit("unresolved_conflict").alias("issue_type"),
            pl.lit("warning").alias("severity"),
            format_text(
                "{} different values in the rows of {}; {} chose {} with confidence {} (below {})",
                pl.col("distinct_values"),
                pl.col(GOLDEN_ID),
                pl.col("rule"),
                pl.col("value").fill_null("(empty)"),
                pl.col("confidence").round(3),
                pl.lit(params.min_confidence_threshold),
            ).alias("message"),
            pl.col("value"),
        )
        .sort("row_index", "column", maintain_order=True)
        .collect()
        .cast(ROW_LEVEL_ISSUE_SCHEMA)  # type: ignore[arg-type]
    )
