"""What the clean agents share: the envelope they build, their effectiveness score, and row bookkeeping."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from agents.envelope import (
    REMOVED_ROWS_SCHEMA,
    ROW_INDEX_COLUMN,
    AgentResult,
    Alert,
    Envelope,
    Issue,
    Recommendation,
    SummaryCard,
    build_issue_summary,
    empty_row_level_issues,
    inline_row_level_issues,
)
from agents.params.common import EffectivenessParams, effectiveness_status, parameter_objects


def effectiveness(
    components: dict[str, float], weights: dict[str, float], params: EffectivenessParams
) -> dict[str, Any]:
    """Agensium's weighted 0..100 score: ``components`` are 0..100, ``weights`` sum to 1 (normalised if not)."""
    total_weight = sum(weights.values()) or 1.0
    score = sum(components[name] * weight for name, weight in weights.items()) / total_weight
    score = round(max(0.0, min(100.0, score)), 2)
    return {
        "score": score,
        "status": effectiveness_status(score, params),
        "components": {name: round(value, 2) for name, value in components.items()},
        "weights": weights,
    }


def retention(rows_before: int, rows_after: int, columns_before: int, columns_after: int) -> tuple[float, float]:
    """Row and column retention in percent (100 when there was nothing to keep)."""
    rows = 100.0 * rows_after / rows_before if rows_before else 100.0
    columns = 100.0 * columns_after / columns_before if columns_before else 100.0
    return rows, columns


def removed_rows(frame: pl.DataFrame, mask: pl.Series | pl.Expr, reason: str | pl.Expr) -> pl.DataFrame:
    """``REMOVED_ROWS_SCHEMA`` rows for the rows of ``frame`` where ``mask`` is true."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    return (
        frame.lazy()
        .filter(mask)
        .select(pl.col(ROW_INDEX_COLUMN).cast(pl.Int64), reason_expr.cast(pl.String).alias("reason"))
        .collect()
    )


IDENTIFIER_CANDIDATES = 2  # integer columns checked for distinct values: an identifier usually comes first


def has_identifier(frame: pl.DataFrame, columns: list[str], *, nulls_allowed: bool = True) -> bool:
    """Whether one of the first ``IDENTIFIER_CANDIDATES`` integer columns among ``columns`` holds as many
    distinct values as ``frame`` has rows (null counted as one value; with ``nulls_allowed`` false it must hold
    no null): no two rows are then equal on it. Counting that is cheaper than hashing whole rows, and it
    settles the usual case of a file with an id column."""
    schema = frame.schema
    integers = [name for name in columns if schema[name].is_integer()][:IDENTIFIER_CANDIDATES]
    if not integers or frame.height < 2:
        return False
    exprs = [pl.col(name).n_unique().alias(f"d{index}") for index, name in enumerate(integers)]
    exprs += [pl.col(name).null_count().alias(f"n{index}") for index, name in enumerate(integers)]
    row = frame.select(exprs).row(0, named=True)
    return any(
        row[f"d{index}"] == frame.height and (nulls_allowed or not row[f"n{index}"]) for index in range(len(integers))
    )


def repeat_candidates(frame: pl.DataFrame, keys: Sequence[str | pl.Expr]) -> pl.Series | None:
    """Which rows of ``frame`` may equal another on ``keys`` (columns, or expressions with distinct names): those
    whose row hash of the keys another row shares (``DataFrame.hash_rows``: equal rows hash equally, nulls
    alike, -0.0 as 0.0, every NaN alike; several times cheaper than hashing a struct or comparing rows). None
    when no two rows can be equal: no hash repeats, or a key column is an identifier (``has_identifier``)."""
    names = [key for key in keys if isinstance(key, str)]
    if frame.height < 2 or has_identifier(frame, names):  # noqa: PLR2004 - one row repeats nothing
        return None
    hashes = frame.select(keys).hash_rows(seed=0)
    if hashes.n_unique() == hashes.len():  # the usual case, counted in about half the time of the mask
        return None
    return hashes.is_duplicated()


def quantile_pairs(
    frame: pl.DataFrame, values: Sequence[pl.Expr], low: float, high: float, extra: Sequence[pl.Expr] = ()
) -> tuple[list[tuple[Any, Any]], dict[str, Any]]:
    """Per expression of ``values`` over ``frame``, its ``low`` and ``high`` linear quantiles, as two
    ``quantile(q, "linear")`` find them; with the aggregates ``extra`` (named) computed in the same query.

    One list quantile per expression orders its values once instead of once per quantile (a third less time for a
    frame's numeric columns) and finds the same numbers to the last bit, but for the sign of a zero: among equal
    values -0.0 and 0.0 it may take the other. So a pair holding a zero is computed again the single way."""
    if not values:
        return [], frame.select(extra).row(0, named=True) if extra else {}
    listed = [
        value.quantile([low, high], "linear").alias(f"__quantiles_{index}__") for index, value in enumerate(values)
    ]
    row = frame.select(*listed, *extra).row(0, named=True)
    pairs = [tuple(row.pop(f"__quantiles_{index}__") or (None, None)) for index in range(len(values))]
    zeros = [index for index, pair in enumerate(pairs) if 0 in pair]
    if zeros:
        single = frame.select(
            quantile
            for index in zeros
            for quantile in (
                values[index].quantile(low, "linear").alias(f"__low_{index}__"),
                values[index].quantile(high, "linear").alias(f"__high_{index}__"),
            )
        ).row(0, named=True)
        for index in zeros:
            pairs[index] = (single[f"__low_{index}__"], single[f"__high_{index}__"])
    return [(first, second) for first, second in pairs], row


QUARTILES_ARTIFACT = "column_quartiles"  # AgentResult.artifacts: column name -> Quartiles (cleanse-previewer)


@dataclass(frozen=True)
class Quartiles:
    """A numeric column's 0.25 and 0.75 linear quantiles (``quantile_pairs``) over its values that are not NaN
    (null when it has none), and the column they were computed on."""

    column: pl.Series
    low: Any
    high: Any


def known_quartiles(frame: pl.DataFrame, names: Sequence[str], shared: Any) -> dict[str, tuple[float, float]]:
    """The quartiles of the columns of ``names`` over their *finite* values that an earlier agent computed
    (``shared``: ``QUARTILES_ARTIFACT``'s mapping, or None) on the very values ``frame`` holds: the same numbers to
    the last bit as ``quantile_pairs`` of them here, since a quantile depends only on the values. Taken only when
    certain: the column equal (dtype, values, nulls), no infinity (not a finite value: only the earlier agent
    ranked it), and neither quartile a zero (whose sign is the one thing an ordering may settle either way)."""
    if not isinstance(shared, Mapping):
        return {}
    known: dict[str, tuple[float, float]] = {}
    for name in names:
        entry = shared.get(name)
        if not isinstance(entry, Quartiles) or entry.low is None or entry.high is None:
            continue
        if entry.low == 0 or entry.high == 0:
            continue
        column = frame.get_column(name)
        if column.dtype != entry.column.dtype or column.len() != entry.column.len():
            continue
        if column.dtype.is_float() and column.is_infinite().any():
            continue
        if column.equals(entry.column, check_dtypes=True, null_equal=True):
            known[name] = (entry.low, entry.high)
    return known


DISTINCT_TEXTS_ARTIFACT = "distinct_texts"  # AgentResult.artifacts: column name -> DistinctTexts (type-fixer)


@dataclass(frozen=True)
class DistinctTexts:
    """A String column's distinct values as written (``raw``, null among them when there is one) with their row
    counts (``count``, Int64), and the column they were counted on."""

    column: pl.Series
    values: pl.DataFrame


def known_distinct_texts(frame: pl.DataFrame, name: str, shared: Any) -> pl.DataFrame | None:
    """The distinct values with their counts (``DistinctTexts.values``) that an earlier agent found
    (``shared``: ``DISTINCT_TEXTS_ARTIFACT``'s mapping, or None) for the String column ``name`` of ``frame``, when
    it counted them on the very values ``frame`` holds (dtype, length, values and nulls equal): the same groups and
    counts a ``group_by`` here finds. None otherwise."""
    if not isinstance(shared, Mapping):
        return None
    entry = shared.get(name)
    if not isinstance(entry, DistinctTexts):
        return None
    column = frame.get_column(name)
    if column.dtype != pl.String or entry.column.dtype != pl.String or column.len() != entry.column.len():
        return None
    return entry.values if column.equals(entry.column, check_dtypes=True, null_equal=True) else None


def no_removed_rows() -> pl.DataFrame:
    return pl.DataFrame(schema=REMOVED_ROWS_SCHEMA)


def clean_result(
    *,
    agent_id: str,
    agent_name: str,
    started: float,
    params: EffectivenessParams,
    summary_metrics: dict[str, Any],
    data: dict[str, Any],
    frame: pl.DataFrame | None,
    removed: pl.DataFrame | None = None,
    alerts: list[Alert] | None = None,
    issues: list[Issue] | None = None,
    recommendations: list[Recommendation] | None = None,
    cards: list[SummaryCard] | None = None,
    row_level_issues: pl.DataFrame | None = None,
) -> AgentResult:
    """The envelope every clean agent returns, with Agensium's three-object parameter pattern in ``data``."""
    issues = issues or []
    row_issues = row_level_issues if row_level_issues is not None else empty_row_level_issues()
    envelope = Envelope(
        status="success",
        agent_id=agent_id,
        agent_name=agent_name,
        execution_time_ms=round((time.perf_counter() - started) * 1000),
        summary_metrics=summary_metrics,
        data={**data, "row_level_issues_total": row_issues.height, **parameter_objects(params)},
        alerts=alerts or [],
        issues=issues,
        row_level_issues=inline_row_level_issues(row_issues),
        issue_summary=build_issue_summary(issues, row_issues),
        recommendations=recommendations or [],
        executive_summary=cards or [],
    )
    return AgentResult(envelope=envelope, row_level_issues=row_issues, frame=frame, removed=removed)
