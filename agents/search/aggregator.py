"""The ``aggregator`` agent (tool ``search-my-data``): groups of the rows its own selection picks (over the whole
input; agents.search.selection), with their metrics, sorted and paged, and a chart of the page, as one lazy Polars
query (agents/params/aggregator.py has the semantics).

Empty key values form a group of their own (sorted last). A group is a value as stored: text written in two Unicode
forms (``Köln`` composed, and ``o`` with a combining diaeresis) makes two groups that look alike, as the data holds
two spellings (a keyword or a filter finds both: agents.search.selection). Without group keys there is one group of
every selected row, even when none is: ``{"total_groups": 1, "groups": [{"count": N}]}``. Sort: the keys given, then
the group keys ascending as ties, so the order is total; default the first metric descending. A group_by column of
text dates in another layout than ISO 8601 that is a sort key given is sorted by its dates (agents.search.selection,
``Resolver.sort_key``); as a tie it is sorted as text.

Returns the envelope's ``data``: ``total_groups`` (after ``top``), ``page``, ``pages``, ``page_size``,
``group_keys``, ``metrics`` (names), ``groups`` (the page: keys and metrics as JSON objects), ``chart``
(``{"labels": [...], "series": [{"name": metric, "values": [...]}]}`` of the page's groups: a label is the keys'
text joined by " / ", "(empty)" for an empty key, "All rows" without keys) and ``filters_understood``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import polars as pl

from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    AgentInputs,
    AgentResult,
    Alert,
    Envelope,
    Progress,
    SummaryCard,
    build_issue_summary,
    empty_row_level_issues,
)
from agents.params.aggregator import AggregatorParams, Metric
from agents.search.paging import json_rows, page_count, page_of
from agents.search.selection import Resolver, resolve_selection
from agents.transform.resolve import Refusal, ResolutionContext, resolve_column

AGENT_ID = "aggregator"
AGENT_NAME = "Aggregator"
TRUNCATE = {"day": "1d", "week": "1w", "month": "1mo", "year": "1y"}
SUMMABLE = ("int", "float")
ORDERED = ("int", "float", "text", "date", "datetime", "bool")
EMPTY_LABEL, ALL_ROWS = "(empty)", "All rows"


def run(inputs: AgentInputs, params: AggregatorParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    # A primary too large for memory is scanned (inputs.scan) and the groups collected on the streaming engine.
    source = inputs.scan if inputs.scan is not None else inputs.primary.lazy()
    engine: Literal["auto", "streaming"] = "streaming" if inputs.scan is not None else "auto"
    schema = source.collect_schema()
    source = source.select(c for c in schema if c not in BOOKKEEPING_COLUMNS)
    progress(0.0, "Reading the aggregation")
    resolver = Resolver(source.collect_schema(), AGENT_ID, inputs.text_layouts, data=source, engine=engine)
    selection = resolve_selection(resolver, params)
    keys, key_exprs = _group_keys(resolver, params)
    metrics = [_metric(resolver, metric, f"metrics[{i}]") for i, metric in enumerate(params.metrics)]
    names = _check_names(resolver, keys, [name for name, _ in metrics])
    sort = _sort(resolver, params, keys, names)
    progress(0.1, "Aggregating")
    query = selection.apply(source)
    exprs = [expr.alias(name) for name, expr in metrics]
    grouped = query.group_by(key_exprs).agg(exprs) if keys else query.select(exprs)
    group_by = keys[: len(keys) - (params.bucket is not None)]  # the bucket is a date already
    ordered = _ordered(grouped, _sort_by(resolver, sort[: len(params.sort)], group_by), sort)
    if params.top is not None:
        ordered = ordered.head(params.top)
    groups = ordered.collect(engine=engine)
    page = page_of(groups, params.page, params.page_size)
    rows = json_rows(page, {})
    understood = {
        **selection.understood,
        "group_by": group_by,
        "bucket": {"column": keys[-1], "unit": params.bucket.unit} if params.bucket is not None else None,
        "metrics": [{"name": name, "fn": m.fn, "column": column} for name, m, column in _described(metrics, params)],
        "sort": [{"column": column, "descending": descending} for column, descending in sort[: len(params.sort) or 1]],
        "top": params.top,
        "notes": list(resolver.notes),
    }
    data = {
        "total_groups": groups.height,
        "page": params.page,
        "pages": page_count(groups.height, params.page_size),
        "page_size": params.page_size,
        "group_keys": keys,
        "metrics": [name for name, _ in metrics],
        "groups": rows,
        "chart": _chart(rows, keys, [name for name, _ in metrics]),
        "filters_understood": understood,
    }
    envelope = _envelope(inputs.row_count, data, resolver.notes)
    envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, f"{groups.height:,} groups")
    return AgentResult(envelope=envelope)


def _group_keys(resolver: Resolver, params: AggregatorParams) -> tuple[list[str], list[pl.Expr]]:
    """The key names (group_by, then the bucket) and their expressions; category keys as text."""
    keys = resolver.columns(params.group_by, "group_by")
    exprs = [pl.col(k).cast(pl.String) if resolver.kind(k) == "category" else pl.col(k) for k in keys]
    if params.bucket is not None:
        column = resolver.column(params.bucket.column, "bucket.column")
        if column in keys:
            raise resolver.refuse(Refusal(f"'{column}' is both in group_by and the bucket; keep one",
                                          "duplicate_key", "bucket.column"))  # fmt: skip
        subject, kind, _ = resolver.temporal(column, "a bucket needs a date or date-time column", "bucket.column")
        truncated = subject.dt.truncate(TRUNCATE[params.bucket.unit])
        exprs.append((truncated.dt.date() if kind == "datetime" else truncated).alias(column))
        keys.append(column)
    return keys, exprs


def _metric(resolver: Resolver, metric: Metric, path: str) -> tuple[str, pl.Expr]:
    if metric.column is None:
        return "count", pl.len().cast(pl.Int64)
    column = resolver.column(metric.column, f"{path}.column")
    kind = resolver.kind(column)
    subject = pl.col(column)
    name = f"{metric.fn}_{column}"
    if metric.fn in ("sum", "mean") and kind not in SUMMABLE:
        raise resolver.mismatch(column, f"{metric.fn} needs a numeric column", f"{path}.column")
    if metric.fn in ("min", "max") and kind not in (*ORDERED, "category"):
        raise resolver.mismatch(column, f"{metric.fn} needs numbers, text or dates", f"{path}.column")
    if kind == "category":
        subject = subject.cast(pl.String)
    # integers summed in 128 bits: an Int64 sum wraps around past 9223372036854775807 (a Python int in the JSON)
    summed = subject.cast(pl.Int128) if kind == "int" else subject
    expressions = {
        "count": lambda: subject.count().cast(pl.Int64),
        "sum": summed.sum,
        "mean": subject.mean,
        "min": subject.min,
        "max": subject.max,
        "distinct": lambda: subject.drop_nulls().n_unique().cast(pl.Int64),
    }
    return name, expressions[metric.fn]()


def _described(metrics: list[tuple[str, pl.Expr]], params: AggregatorParams) -> list[tuple[str, Metric, str | None]]:
    return [
        (name, metric, None if metric.column is None else name.removeprefix(f"{metric.fn}_"))
        for (name, _), metric in zip(metrics, params.metrics, strict=True)
    ]


def _check_names(resolver: Resolver, keys: list[str], metrics: list[str]) -> list[str]:
    """The result's columns: every metric name once, none a group key's."""
    seen: set[str] = set(keys)
    for i, name in enumerate(metrics):
        if name in seen:
            what = "a group key" if name in keys else "another metric"
            raise resolver.refuse(Refusal(f"metric '{name}' is {what} already", "duplicate_metric", f"metrics[{i}]"))
        seen.add(name)
    return [*keys, *metrics]


def _sort(resolver: Resolver, params: AggregatorParams, keys: list[str], names: list[str]) -> list[tuple[str, bool]]:
    """The sort keys (group keys or metric names, resolved like columns), then every group key ascending."""
    context = ResolutionContext(dict.fromkeys(names, "String"))
    sort: list[tuple[str, bool]] = []
    for i, key in enumerate(params.sort):
        try:
            name = resolve_column(context, key.column, f"sort[{i}].column")
        except Refusal as refusal:
            raise resolver.refuse(refusal) from None
        sort.append((name, key.descending))
    resolver.notes.extend(context.notes)
    if not sort:
        sort.append((names[len(keys)], True))
    chosen = {name for name, _ in sort}
    return sort + [(key, False) for key in keys if key not in chosen]


def _sort_by(resolver: Resolver, sort: list[tuple[str, bool]], columns: list[str]) -> dict[str, pl.Expr]:
    """Per sort key given that is a group_by column of text dates (Resolver.sort_key), what it is sorted by: its
    groups' text read as dates (the key keeps its text)."""
    dates = {}
    for name, _ in sort:
        if name in columns and (expr := resolver.sort_key(name, "sort")) is not None:
            dates[name] = expr
    return dates


def _ordered(grouped: pl.LazyFrame, dates: dict[str, pl.Expr], sort: list[tuple[str, bool]]) -> pl.LazyFrame:
    """The groups sorted by ``sort``, a key of ``dates`` by its dates (a temporary column, dropped after), then by its
    text: the order stays total."""
    if not dates:
        return grouped.sort([c for c, _ in sort], descending=[d for _, d in sort], nulls_last=True)
    taken = set(grouped.collect_schema())
    names: dict[str, str] = {}
    for column in dates:
        name = f"__aggregate_sort_key_{len(names)}__"
        while name in taken:
            name = f"_{name}"
        names[column] = name
    temporary = [dates[column].alias(name) for column, name in names.items()]
    # each dated key's text last: groups whose texts read as the same date ("3/5/2024", "03/05/2024") in one order
    by = [*(names.get(column, column) for column, _ in sort), *names]
    descending = [*(d for _, d in sort), *(False for _ in names)]
    ordered = grouped.with_columns(temporary).sort(by, descending=descending, nulls_last=True)
    return ordered.drop(names.values())


def _chart(rows: list[dict[str, Any]], keys: list[str], metrics: list[str]) -> dict[str, Any]:
    labels = [
        " / ".join(EMPTY_LABEL if row[key] is None else str(row[key]) for key in keys) if keys else ALL_ROWS
        for row in rows
    ]
    return {"labels": labels, "series": [{"name": name, "values": [row[name] for row in rows]} for name in metrics]}


def _envelope(rows_in: int, data: dict[str, Any], notes: list[str]) -> Envelope:
    metrics = {
        "rows_in": rows_in,
        "total_groups": data["total_groups"],
        "page": data["page"],
        "pages": data["pages"],
        "groups_on_page": len(data["groups"]),
    }
    alerts = [
        Alert(f"aggregate-reading{i + 1}", "low", "column_resolution", note, 1, "Name the column exactly to be sure")
        for i, note in enumerate(notes)
    ]
    keys = ", ".join(data["group_keys"]) or "no key"
    cards = [
        SummaryCard("aggregate-groups", "Groups", f"{data['total_groups']:,}", "info", f"grouped by {keys}"),
        SummaryCard(
            "aggregate-page",
            "Page",
            f"{data['page']:,} of {data['pages']:,}",
            "info",
            f"{len(data['groups']):,} groups on this page",
        ),  # fmt: skip
    ]
    return Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        summary_metrics=metrics,
        data=data,
        alerts=alerts,
        issue_summary=build_issue_summary([], empty_row_level_issues()),
        executive_summary=cards,
    )
