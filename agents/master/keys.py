"""The ``key-identifier`` agent: which columns identify a row, an entity, or point into a reference table.

Per data column (bookkeeping columns never count): ``null_percentage`` = null cells / rows, and
``uniqueness_percentage`` = distinct non-null values / non-null values (nulls are judged by the null
threshold, not counted as a value). Float and Boolean columns (measurements, flags) and nested types are
not key columns: they are listed with ``eligible`` false.

- **Primary key candidates**: uniqueness >= ``pk_uniqueness_threshold`` and nulls <= ``pk_null_threshold``.
- **Entity key candidates**: ``entity_key_uniqueness_min`` <= uniqueness < ``entity_key_uniqueness_max``
  and not a primary key candidate: a value shared by a few rows (the same customer in several records).
- **Composite key candidates** (``analyze_composite_keys``, only when no single column is a primary key
  candidate): combinations of 2..``max_composite_key_columns`` eligible columns with nulls <=
  ``pk_null_threshold`` whose distinct combinations are at least ``pk_uniqueness_threshold`` % of the rows
  (counted with one ``n_unique`` over a struct of the columns per combination, in batches). Columns are
  tried most distinct first; a combination is skipped without counting when the product of its columns'
  distinct counts cannot reach the threshold; the search stops after the first size that yields keys (so
  every key found is minimal) or after ``max_composite_combinations`` counted combinations (reported).
- **Foreign key candidates** (with ``reference_tables``): columns of which at least
  ``fk_overlap_threshold`` % of the distinct values (as trimmed text) are in a reference table.
- **Patterns**: a key-like name (``id``, ``uuid``, ``key``, ``*_id``: 100; e-mail, national id, phone: 80;
  ``code``, ``number``, ``ref``: 60) or key-like values (UUIDs in more than 80 % of a sample of 1,000:
  100; integers forming one unbroken sequence, auto-increment: 100); the pattern score is the larger.

Key score = (``uniqueness_weight`` x uniqueness + ``completeness_weight`` x (100 - null %) +
``pattern_weight`` x pattern) / the sum of the weights (0.4 / 0.3 / 0.3: Agensium's). The effectiveness
score is the best key's (a primary key candidate's, else any eligible column's).

The data is not changed (no frame). Rows whose value repeats in a primary key candidate that is not fully
unique are row-level issues (``duplicate_key_value``). ``artifacts["key_candidates"]``:
``{"primary_keys": [...], "entity_keys": [...], "composite_keys": [[...]], "foreign_keys": [{column,
table, overlap_percentage}]}``, best first.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from agents.clean.common import clean_result, effectiveness
from agents.columns import narrow, normalised_name, with_row_index
from agents.envelope import AgentInputs, AgentResult, Progress, SummaryCard, data_columns
from agents.findings import Findings, card_status, collect_row_issues, issues_where
from agents.formatting import pct, shown
from agents.layouts import text_of
from agents.master.roles import UUID, sample_values
from agents.params.key_identifier import KeyIdentifierParams

AGENT_ID = "key-identifier"
AGENT_NAME = "Key Identifier"
CREDITS = 45
UUID_SHARE: Final = 0.8
COMPOSITE_BATCH: Final = 50
NAME_PATTERNS: Final[tuple[tuple[re.Pattern[str], float, str], ...]] = (
    (re.compile(r"^(?:id|uuid|guid|pk|key)$|(?:^|_)(?:id|uuid|guid|pk|key)$|^(?:id|pk)_"), 100.0, "identifier name"),
    (
        re.compile(r"(?:^|_)(?:e_?mail|ssn|nin|national_id|soc_sec(?:_id)?|passport|tax_id|phone|mobile)(?:_|$)"),
        80.0,
        "natural key name",
    ),
    (re.compile(r"(?:^|_)(?:code|number|no|num|nr|ref|reference|sku|account)(?:_|$)"), 60.0, "code name"),
)


@dataclass
class ColumnKeyStats:
    column: str
    dtype: str
    eligible: bool
    nulls: int
    non_null: int
    distinct: int
    null_percentage: float
    uniqueness_percentage: float
    name_pattern: str | None = None
    name_score: float = 0.0
    value_pattern: str | None = None
    value_score: float = 0.0
    key_score: float = 0.0
    kinds: list[str] = field(default_factory=list)

    @property
    def pattern_score(self) -> float:
        return max(self.name_score, self.value_score)

    def report(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "dtype": self.dtype,
            "eligible": self.eligible,
            "null_percentage": self.null_percentage,
            "uniqueness_percentage": self.uniqueness_percentage,
            "distinct_values": self.distinct,
            "name_pattern": self.name_pattern,
            "value_pattern": self.value_pattern,
            "pattern_score": self.pattern_score,
            "key_score": self.key_score,
            "candidate_types": self.kinds,
        }


@dataclass
class CompositeSearch:
    keys: list[dict[str, Any]] = field(default_factory=list)
    candidate_columns: list[str] = field(default_factory=list)
    tried: int = 0
    pruned: int = 0
    capped: bool = False
    largest_size: int = 0
    note: str | None = None

    def report(self) -> dict[str, Any]:
        return {
            "candidate_columns": self.candidate_columns,
            "combinations_tried": self.tried,
            "combinations_pruned": self.pruned,
            "capped": self.capped,
            "largest_size_tried": self.largest_size,
            "note": self.note,
        }


@dataclass
class Outcome:
    frame: pl.DataFrame
    stats: list[ColumnKeyStats]
    primary: list[ColumnKeyStats]
    entity: list[ColumnKeyStats]
    composite: CompositeSearch
    foreign: list[dict[str, Any]]
    foreign_note: str | None


def run(inputs: AgentInputs, params: KeyIdentifierParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    frame = with_row_index(inputs.primary)
    columns = data_columns(frame)
    progress(0.0, f"Measuring {len(columns):,} columns as keys")
    stats = column_key_stats(frame, columns, params)
    primary = sorted(
        (item for item in stats if item.eligible and _is_primary(item, params)), key=lambda item: -item.key_score
    )
    chosen = {item.column for item in primary}  # a set: `item not in primary` compared every field, per column
    entity = sorted(
        (item for item in stats if item.eligible and item.column not in chosen and _is_entity(item, params)),
        key=lambda item: -item.key_score,
    )
    for item in primary:
        item.kinds.append("primary_key")
    for item in entity:
        item.kinds.append("entity_key")

    progress(0.4, "Looking for composite keys")
    if not params.analyze_composite_keys:
        composite = CompositeSearch(note="analyze_composite_keys is false")
    elif primary:
        composite = CompositeSearch(note="not needed: a single column is a primary key candidate")
    else:
        composite = _composite_keys(frame, stats, params)

    progress(0.7, "Comparing columns with the reference tables")
    foreign, foreign_note = _foreign_keys(frame, stats, params)
    for item in stats:
        if any(link["column"] == item.column for link in foreign):
            item.kinds.append("foreign_key")

    progress(0.9, "Building the report")
    outcome = Outcome(frame, stats, primary, entity, composite, foreign, foreign_note)
    result = _result(outcome, params, started)
    result.artifacts = {"key_candidates": key_candidates(outcome)}
    progress(1.0, f"{len(primary):,} primary, {len(entity):,} entity, {len(composite.keys):,} composite key candidates")
    return result


def _is_primary(item: ColumnKeyStats, params: KeyIdentifierParams) -> bool:
    return (
        item.non_null > 0
        and item.uniqueness_percentage >= params.pk_uniqueness_threshold
        and item.null_percentage <= params.pk_null_threshold
    )


def _is_entity(item: ColumnKeyStats, params: KeyIdentifierParams) -> bool:
    return (
        item.non_null > 0
        and params.entity_key_uniqueness_min <= item.uniqueness_percentage < params.entity_key_uniqueness_max
    )


def _eligible(dtype: pl.DataType) -> bool:
    if dtype == pl.Boolean or dtype.is_float() or dtype.is_nested() or dtype == pl.Null:
        return False
    return bool(dtype == pl.String or dtype.is_integer() or dtype.is_temporal() or dtype.is_decimal()) or isinstance(
        dtype, pl.Categorical | pl.Enum
    )


def column_key_stats(frame: pl.DataFrame, columns: list[str], params: KeyIdentifierParams) -> list[ColumnKeyStats]:
    """Nulls, distinct values, patterns and the key score of each column (module docstring)."""
    if not columns:
        return []
    schema = frame.schema
    exprs: list[pl.Expr] = []
    for index, name in enumerate(columns):
        exprs += [pl.col(name).null_count().alias(f"nulls_{index}"), pl.col(name).n_unique().alias(f"unique_{index}")]
        if schema[name].is_integer():
            exprs += [
                pl.col(name).min().cast(pl.Int64, strict=False).alias(f"min_{index}"),  # None beyond Int64
                pl.col(name).max().cast(pl.Int64, strict=False).alias(f"max_{index}"),
            ]
    # in memory: the streaming engine (polars' default) takes time in the square of a query's expressions
    row = narrow(frame, columns).select(exprs).collect(engine="in-memory").row(0, named=True)
    text = [name for name in columns if schema[name] == pl.String]
    uuid_shares = _uuid_shares(frame, text)
    rows = frame.height
    stats: list[ColumnKeyStats] = []
    for index, name in enumerate(columns):
        nulls = int(row[f"nulls_{index}"])
        non_null = rows - nulls
        distinct = int(row[f"unique_{index}"]) - (1 if nulls else 0)
        item = ColumnKeyStats(
            column=name,
            dtype=str(schema[name]),
            eligible=_eligible(schema[name]),
            nulls=nulls,
            non_null=non_null,
            distinct=distinct,
            null_percentage=pct(nulls, rows),
            uniqueness_percentage=pct(distinct, non_null),
        )
        normalised = normalised_name(name)
        for pattern, score, label in NAME_PATTERNS:
            if pattern.search(normalised):
                item.name_pattern, item.name_score = label, score
                break
        if uuid_shares.get(name, 0.0) > UUID_SHARE:
            item.value_pattern, item.value_score = "uuid", 100.0
        elif f"min_{index}" in row and non_null > 1 and distinct == non_null:
            low, high = row[f"min_{index}"], row[f"max_{index}"]
            if low is not None and high is not None and high - low + 1 == non_null:
                item.value_pattern, item.value_score = "auto_increment", 100.0
        item.key_score = _key_score(item, params)
        stats.append(item)
    return stats


def _uuid_shares(frame: pl.DataFrame, columns: list[str]) -> dict[str, float]:
    if not columns:
        return {}
    sample = sample_values(frame, columns)
    shares = sample.group_by("column").agg(pl.col("value").str.contains(UUID).mean().alias("share"))
    return dict(zip(shares["column"].to_list(), shares["share"].to_list(), strict=True))


def _key_score(item: ColumnKeyStats, params: KeyIdentifierParams) -> float:
    weights = params.uniqueness_weight + params.completeness_weight + params.pattern_weight or 1.0
    score = (
        params.uniqueness_weight * item.uniqueness_percentage
        + params.completeness_weight * (100.0 - item.null_percentage)
        + params.pattern_weight * item.pattern_score
    ) / weights
    return round(score, 2)


def _composite_keys(frame: pl.DataFrame, stats: list[ColumnKeyStats], params: KeyIdentifierParams) -> CompositeSearch:
    """Minimal combinations of columns that identify the rows (module docstring)."""
    candidates = sorted(
        (
            item
            for item in stats
            if item.eligible and item.null_percentage <= params.pk_null_threshold and item.distinct >= 2
        ),
        key=lambda item: -item.distinct,
    )
    search = CompositeSearch(candidate_columns=[item.column for item in candidates])
    if len(candidates) < 2:
        search.note = "fewer than two columns qualify (eligible, with nulls within pk_null_threshold)"
        return search
    rows = frame.height
    needed = rows * params.pk_uniqueness_threshold / 100.0
    distinct = {item.column: item.distinct for item in candidates}
    names = [item.column for item in candidates]
    for size in range(2, params.max_composite_key_columns + 1):
        if size > len(names):
            break
        search.largest_size = size
        batch: list[tuple[str, ...]] = []
        for combination in itertools.combinations(names, size):
            if math.prod(distinct[name] for name in combination) < needed:
                search.pruned += 1
                continue
            if search.tried + len(batch) >= params.max_composite_combinations:
                search.capped = True
                break
            batch.append(combination)
            if len(batch) == COMPOSITE_BATCH:
                _count_combinations(frame, batch, needed, search)
                batch = []
        if batch:
            _count_combinations(frame, batch, needed, search)
        if search.keys or search.capped:
            break
    if search.capped:
        search.note = (
            f"stopped after {search.tried:,} combinations (max_composite_combinations); raise it to search further"
        )
    return search


def _count_combinations(
    frame: pl.DataFrame, batch: list[tuple[str, ...]], needed: float, search: CompositeSearch
) -> None:
    columns = list(dict.fromkeys(name for combination in batch for name in combination))
    counts = (
        narrow(frame, columns)
        .select(pl.struct(list(combination)).n_unique().alias(str(index)) for index, combination in enumerate(batch))
        .collect(engine="in-memory")
        .row(0)
    )
    search.tried += len(batch)
    for combination, count in zip(batch, counts, strict=True):
        if count >= needed:
            search.keys.append(
                {"columns": list(combination), "uniqueness_percentage": pct(count, frame.height), "distinct": count}
            )


def _foreign_keys(
    frame: pl.DataFrame, stats: list[ColumnKeyStats], params: KeyIdentifierParams
) -> tuple[list[dict[str, Any]], str | None]:
    if not params.reference_tables:
        return [], "no reference_tables given: foreign keys not analysed"
    columns = [item.column for item in stats if item.eligible and item.non_null]
    if not columns:
        return [], "no eligible columns"
    found: list[dict[str, Any]] = []
    for table, values in params.reference_tables.items():
        reference = pl.Series("reference", [_reference_text(value) for value in values], dtype=pl.String).unique()
        schema = frame.schema
        exprs = []
        for index, name in enumerate(columns):
            distinct = text_of(pl.col(name), schema[name]).str.strip_chars().drop_nulls().unique()
            exprs += [
                distinct.is_in(reference.implode()).sum().alias(f"hits_{index}"),
                distinct.len().alias(f"distinct_{index}"),
            ]
        row = narrow(frame, columns).select(exprs).collect(engine="in-memory").row(0, named=True)
        for index, name in enumerate(columns):
            hits, distinct_count = int(row[f"hits_{index}"]), int(row[f"distinct_{index}"])
            overlap = pct(hits, distinct_count)
            if distinct_count and overlap >= params.fk_overlap_threshold:
                found.append(
                    {
                        "column": name,
                        "table": table,
                        "overlap_percentage": overlap,
                        "matched_values": hits,
                        "distinct_values": distinct_count,
                    }
                )
    found.sort(key=lambda link: (-link["overlap_percentage"], link["column"], link["table"]))
    return found, None


def _reference_text(value: str | int | float) -> str:
    """A reference value as the text a column's value is compared with (2.0 -> "2", " a " -> "a")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def key_candidates(outcome: Outcome) -> dict[str, Any]:
    """The artifact later agents read (module docstring)."""
    return {
        "primary_keys": [item.column for item in outcome.primary],
        "entity_keys": [item.column for item in outcome.entity],
        "composite_keys": [key["columns"] for key in outcome.composite.keys],
        "foreign_keys": [
            {"column": link["column"], "table": link["table"], "overlap_percentage": link["overlap_percentage"]}
            for link in outcome.foreign
        ],
    }


def _row_issues(outcome: Outcome) -> pl.DataFrame:
    """Every row whose value repeats in a primary key candidate that is not fully unique."""
    parts = []
    for item in outcome.primary:
        if item.distinct == item.non_null:
            continue
        value = pl.col(item.column)
        parts.append(
            issues_where(
                outcome.frame,
                value.is_not_null() & value.is_duplicated(),
                column=item.column,
                issue_type="duplicate_key_value",
                severity="warning",
                message=pl.concat_str(
                    pl.lit(f"'{item.column}' value '"),
                    shown(value),
                    pl.lit(f"' repeats in a primary key candidate ({item.uniqueness_percentage:g} % distinct)"),
                ),
                value=value,
            )
        )
    return collect_row_issues(parts, in_file_order=True)


def _result(outcome: Outcome, params: KeyIdentifierParams, started: float) -> AgentResult:
    score = _score(outcome, params)
    findings = _findings(outcome)
    return clean_result(
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        started=started,
        params=params,
        summary_metrics=_summary_metrics(outcome),
        data=_data(outcome, score),
        frame=None,
        alerts=findings.alerts,
        issues=findings.issues,
        recommendations=findings.recommendations,
        cards=_cards(outcome, score),
        row_level_issues=_row_issues(outcome),
    )


def _best(outcome: Outcome) -> ColumnKeyStats | None:
    pool = outcome.primary or [item for item in outcome.stats if item.eligible]
    return max(pool, key=lambda item: item.key_score, default=None)


def _score(outcome: Outcome, params: KeyIdentifierParams) -> dict[str, Any]:
    best = _best(outcome)
    components = {
        "uniqueness": best.uniqueness_percentage if best else 0.0,
        "completeness": 100.0 - best.null_percentage if best else 0.0,
        "pattern": best.pattern_score if best else 0.0,
    }
    weights = {
        "uniqueness": params.uniqueness_weight,
        "completeness": params.completeness_weight,
        "pattern": params.pattern_weight,
    }
    return effectiveness(components, weights, params)


def _summary_metrics(outcome: Outcome) -> dict[str, Any]:
    return {
        "primary_key_candidates": len(outcome.primary),
        "foreign_key_candidates": len(outcome.foreign),
        "entity_key_candidates": len(outcome.entity),
        "composite_key_candidates": len(outcome.composite.keys),
    }


def _candidate(item: ColumnKeyStats) -> dict[str, Any]:
    return {
        "column": item.column,
        "key_score": item.key_score,
        "uniqueness_percentage": item.uniqueness_percentage,
        "null_percentage": item.null_percentage,
        "pattern": item.value_pattern or item.name_pattern,
    }


def _data(outcome: Outcome, score: dict[str, Any]) -> dict[str, Any]:
    best = _best(outcome)
    return {
        "rows_analyzed": outcome.frame.height,
        "columns": [item.report() for item in outcome.stats],
        "primary_key_candidates": [_candidate(item) for item in outcome.primary],
        "entity_key_candidates": [_candidate(item) for item in outcome.entity],
        "composite_key_candidates": outcome.composite.keys,
        "composite_search": outcome.composite.report(),
        "foreign_key_candidates": outcome.foreign,
        "foreign_key_note": outcome.foreign_note,
        "best_key": _candidate(best) if best else None,
        "effectiveness": score,
        "quality_status": score["status"],
    }


def _findings(outcome: Outcome) -> Findings:
    findings = Findings(AGENT_ID)
    if not outcome.primary and not outcome.composite.keys and outcome.frame.height:
        findings.alert(
            "data_integrity",
            "medium",
            "No column or combination of columns identifies the rows",
            "Add a surrogate key at the source, or declare the record's key in a data contract",
            kind="no_primary_key",
            affected=len(outcome.stats),
            recommend=True,
        )
    for item in outcome.primary:
        repeats = item.non_null - item.distinct
        if repeats:
            findings.issue(
                "duplicate_key_values",
                "medium",
                f"Primary key candidate '{item.column}' has {repeats:,} repeated values "
                f"({item.uniqueness_percentage:g} % distinct)",
                field_name=item.column,
                details={"repeated_values": repeats},
            )
    if outcome.composite.capped:
        findings.alert(
            "detection_coverage",
            "low",
            outcome.composite.note or "composite key search capped",
            "Raise max_composite_combinations",
            kind="composite_search_capped",
            affected=len(outcome.composite.candidate_columns),
        )
    return findings


def _cards(outcome: Outcome, score: dict[str, Any]) -> list[SummaryCard]:
    best = _best(outcome)
    return [
        SummaryCard(
            "exec_key_candidates",
            "Key Candidates",
            f"{len(outcome.primary):,} primary, {len(outcome.composite.keys):,} composite",
            "good" if outcome.primary or outcome.composite.keys else "warning",
            f"{len(outcome.entity):,} entity keys, {len(outcome.foreign):,} foreign keys; best key: "
            + (f"'{best.column}' (score {best.key_score:g})" if best else "none"),
        ),
        SummaryCard(
            "exec_key_quality",
            "Key Quality",
            f"{score['score']:.1f}",
            card_status(score["status"]),
            f"Quality: {score['status']}",
        ),
    ]
