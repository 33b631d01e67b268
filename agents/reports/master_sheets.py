"""The master chain's own report content, each part written only when its envelope holds the key it shows:

- on golden-record-builder's sheet (a curated renderer of ``agents.reports.agent_sheets``): the cluster size
  histogram (``data.cluster_size_histogram``) as a table and a column chart; the matching
  (``data.matching``: method, thresholds, candidate pairs, links, clusters, the chain guard, the model's
  prior and iterations); the compared columns with their roles; the blocking keys with their candidate
  pairs; the giant blocks skipped; the Fellegi–Sunter model's m, u and weight per comparison level; the
  survivorship rule and conflicts per column (``data.survivorship``);
- a "Merged Clusters" sheet (:func:`master_sheets`, after the builder's sheet): the sample of merged
  clusters (``data.merged_cluster_samples``) side by side, one table per cluster: the golden record on
  the first row, the rows it was built from under it (source, row in its file, match probability, rule),
  one column per data column; a member's value that did not survive is highlighted in the columns whose
  rows disagreed;
- on stewardship-flagger's sheet: the review queue's summary (tasks by type with a column chart, by
  severity, by column) and its first tasks (``data.task_list``; every task is in stewardship_queue.csv).

Shapes: ``agents.master.golden`` (``_data``), ``agents.master.matching`` (``Resolution.stats``),
``agents.master.er.blocking`` (blocking stats) and ``agents.master.stewardship``. The data's own column
names are shown as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

from agents.reports.overview import as_dict, as_dicts
from agents.reports.sheets import ReportBook, SheetWriter, cell_value

GOLDEN_AGENT = "golden-record-builder"
STEWARDSHIP_AGENT = "stewardship-flagger"
MERGED_CLUSTERS = "Merged Clusters"
MAX_HISTOGRAM_BARS = 30  # larger cluster sizes share the last bar
MAX_SAMPLE_COLUMNS = 100  # data columns shown per merged cluster (the JSON report has them all)
MAX_LISTED = 500  # blocking keys, skipped blocks, columns, queue tasks
LOG_SCALE_RATIO = 50  # a chart whose tallest bar is this many times its shortest non-empty one: log axis
CHART_WIDTH, CHART_HEIGHT, CHART_ROWS = 520, 300, 16
MEMBER_FIELDS = ("Record", "Source", "Row", "Match probability", "Rule")


# ---------------------------------------------------------------------------------------------- golden records


def golden_record_builder(writer: SheetWriter, data: dict[str, Any]) -> set[str]:
    """The builder's curated sections; returns the ``data`` keys they show."""
    consumed: set[str] = set()
    histogram = as_dicts(data.get("cluster_size_histogram"))
    if histogram:
        _cluster_sizes(writer, histogram)
        consumed.add("cluster_size_histogram")
    samples = as_dicts(data.get("merged_cluster_samples"))
    if "merged_cluster_samples" in data:
        if samples:
            shown = f"The {len(samples):,} largest merged clusters are side by side on the sheet"
            writer.note(f"{shown} '{MERGED_CLUSTERS}'")
        consumed.add("merged_cluster_samples")
    matching = as_dict(data.get("matching"))
    if matching:
        _matching(writer, matching)
        consumed.add("matching")
    survivorship = as_dict(data.get("survivorship"))
    if survivorship:
        _survivorship(writer, survivorship)
        consumed.add("survivorship")
    return consumed


def _cluster_sizes(writer: SheetWriter, histogram: list[dict[str, Any]]) -> None:
    sizes: list[tuple[int, int]] = [
        (size, count)
        for item in histogram
        if _whole(size := item.get("size")) and _whole(count := item.get("clusters"))
    ]
    rows = [[size, count, size * count] for size, count in sizes]
    writer.table(
        ["Records in the cluster", "Clusters", "Rows"],
        rows,
        title="Cluster sizes (a cluster of 1 is a record no other row matched)",
        numbers=["int", "int", "int"],
    )
    if not sizes:
        return
    shown = sizes[: MAX_HISTOGRAM_BARS - 1] if len(sizes) > MAX_HISTOGRAM_BARS else sizes
    labels = [str(size) for size, _ in shown]
    counts = [count for _, count in shown]
    if len(shown) < len(sizes):
        rest = sizes[len(shown) :]
        labels.append(f"{rest[0][0]}+")
        counts.append(sum(count for _, count in rest))
    column_chart(writer, "Clusters by size (records in the cluster)", labels, counts, "clusters", "#4472C4")
    writer.skip(CHART_ROWS + 1)


def _matching(writer: SheetWriter, matching: Mapping[str, Any]) -> None:
    stats = as_dict(matching.get("stats"))
    blocking, model = as_dict(stats.get("blocking")), as_dict(stats.get("model"))
    guard = as_dict(stats.get("chain_guard"))
    overview: list[tuple[str, Any]] = [
        ("Method", matching.get("method")),
        ("Fuzzy matching", matching.get("fuzzy_matching_enabled")),
        ("Roles detected by", matching.get("roles_source")),
        ("Link type", stats.get("link_type")),
        ("Rows", stats.get("rows")),
        ("Candidate pairs scored", stats.get("candidate_pairs")),
        ("Pairs of identical rows", blocking.get("identical_pairs")),
        ("Pairs equal on every match key", blocking.get("same_match_key_pairs")),
        ("Giant blocks skipped", blocking.get("skipped_block_count")),
        ("Random pairs (u estimate)", stats.get("random_pairs")),
        ("Match threshold (probability)", stats.get("threshold")),
        ("Review band from (probability)", stats.get("review_band")),
        ("Strong link (chain guard)", stats.get("strong_threshold")),
        ("Links", stats.get("links")),
        ("Borderline pairs for review", stats.get("review_pairs")),
        ("Loose clusters guarded", guard.get("loose_components")),
        ("Weak links dropped by the guard", guard.get("dropped_links")),
        ("Clusters", stats.get("clusters")),
        ("Clusters of two or more rows", stats.get("multi_row_clusters")),
        ("Largest cluster (rows)", stats.get("largest_cluster")),
        ("Prior match probability (EM)", model.get("prior")),
        ("Expected matches (EM)", model.get("expected_matches")),
        ("EM iterations", model.get("iterations")),
        ("EM converged", model.get("converged")),
    ]
    writer.key_values("Matching", [(key, value) for key, value in overview if value is not None])
    _compared_columns(writer, matching, stats)
    keys = as_dicts(blocking.get("keys"))
    if keys:
        writer.table(
            ["Blocking key", "Candidate pairs", "New pairs", "Blocks", "Blocks skipped", "Rows in skipped blocks"],
            [
                [key.get("name"), key.get("pairs"), key.get("new_pairs"), key.get("blocks")]
                + [key.get("skipped_blocks"), key.get("skipped_rows")]
                for key in keys[:MAX_LISTED]
            ],
            title="Blocking keys (new pairs: not found by a key above)",
            numbers=[None, "int", "int", "int", "int", "int"],
        )
    if "skipped_blocks" in blocking:
        skipped = as_dicts(blocking.get("skipped_blocks"))
        count = blocking.get("skipped_block_count")
        title = "Giant blocks skipped (too many rows share the key)"
        if _whole(count) and count > len(skipped):
            title += f": the {len(skipped):,} largest of {count:,}"
        writer.table(
            ["Blocking key", "Value", "Rows"],
            [[item.get("key"), item.get("value"), item.get("size")] for item in skipped[:MAX_LISTED]],
            title=title,
            numbers=[None, None, "int"],
            empty_text="no block was too large",
        )
    comparisons = as_dict(model.get("comparisons"))
    if comparisons:
        _weights(writer, comparisons)


def _compared_columns(writer: SheetWriter, matching: Mapping[str, Any], stats: Mapping[str, Any]) -> None:
    compared = as_dict(stats.get("compared_columns"))
    roles = as_dict(matching.get("roles"))
    names = list(compared) or [str(name) for name in matching.get("match_key_columns") or []]
    rows: list[list[Any]] = [[name, compared.get(name) or roles.get(name), "compared"] for name in names]
    rows += [[name, roles.get(name), why] for name, why in as_dict(stats.get("skipped_columns")).items()]
    if rows:
        writer.table(["Column", "Role", "Matching"], rows[:MAX_LISTED], title="Columns matched on", toned=())


def _weights(writer: SheetWriter, comparisons: Mapping[str, Any]) -> None:
    rows = []
    for name, comparison in comparisons.items():
        comparison = as_dict(comparison)
        columns = ", ".join(str(column) for column in comparison.get("columns") or [name])
        for level in as_dicts(comparison.get("levels")):
            rows.append(
                [
                    name,
                    columns,
                    comparison.get("role"),
                    level.get("level"),
                    level.get("m"),
                    level.get("u"),
                    level.get("weight"),
                    comparison.get("term_frequency"),
                ]
            )
    writer.table(
        ["Comparison", "Columns", "Role", "Level", "m", "u", "Weight (log2 m/u)", "Term frequency adjusted"],
        rows,
        title="Fellegi–Sunter model: m = P(level | match), u = P(level | non-match), per comparison level",
        numbers=[None, None, None, None, "prec", "prec", "dec", None],
        toned=(),
    )


def _survivorship(writer: SheetWriter, survivorship: Mapping[str, Any]) -> None:
    rules = as_dict(survivorship.get("rules"))
    conflicts = as_dict(survivorship.get("conflicts_by_column"))
    names = list(rules) or list(conflicts)
    if not names:
        return
    writer.table(
        ["Column", "Survivorship rule", "Golden records whose rows disagreed"],
        [[name, rules.get(name, survivorship.get("default_rule")), conflicts.get(name, 0)] for name in names],
        title=f"Survivorship (default rule: {survivorship.get('default_rule')})",
        numbers=[None, None, "int"],
    )


# ---------------------------------------------------------------------------------------------- merged clusters


def master_sheets(book: ReportBook, data: Mapping[str, Any]) -> list[str]:
    """The "Merged Clusters" sheet when golden-record-builder's ``data`` holds merged cluster samples; returns
    the names of the sheets written. A shape it does not expect is said in place of what it could not show."""
    samples = as_dicts(data.get("merged_cluster_samples"))
    if not samples:
        return []
    writer = book.sheet(MERGED_CLUSTERS)
    try:
        _merged_clusters(writer, samples)
    except Exception as error:  # noqa: BLE001 - a report must not fail over one view's unexpected shape
        writer.note(f"{MERGED_CLUSTERS} unavailable ({type(error).__name__}: {error})", tone="warn")
    writer.finish()
    return [writer.name]


def _merged_clusters(writer: SheetWriter, samples: list[dict[str, Any]]) -> None:
    writer.title(
        "Merged clusters",
        f"The {len(samples):,} largest clusters of two or more rows: the golden record on the first row, the rows "
        "it was built from below it. Highlighted: a value that did not survive, in a column whose rows disagreed",
    )
    writer.sheet.freeze_panes(3, 0)
    for sample in samples:
        golden = as_dict(sample.get("golden"))
        members = as_dicts(sample.get("members"))
        columns = list(golden) or list(as_dict(members[0].get("values")) if members else {})
        heading = (
            f"{sample.get('golden_id')}: {_count(sample.get('record_count'), 'row')} from "
            f"{_count(sample.get('source_count'), 'source')}, trust score {_number(sample.get('trust_score'))}"
        )
        conflicting = [str(name) for name in sample.get("conflicting_columns") or []]
        if conflicting:
            heading += "; rows disagree on " + ", ".join(conflicting)
        shown = columns[:MAX_SAMPLE_COLUMNS]
        rows: list[list[Any]] = [["golden record", None, None, None, None, *(golden.get(name) for name in shown)]]
        for member in members:
            values = as_dict(member.get("values"))
            rows.append(
                [
                    "member",
                    member.get("source"),
                    member.get("source_row"),
                    member.get("match_probability"),
                    member.get("rule"),
                    *(values.get(name) for name in shown),
                ]
            )
        record_count = sample.get("record_count")
        if _whole(record_count) and record_count > len(members):
            heading += f" (the first {len(members):,} rows shown)"
        if len(columns) > len(shown):
            heading += f" (the first {len(shown):,} of {len(columns):,} columns)"
        top, _ = writer.table(
            [*MEMBER_FIELDS, *shown],
            rows,
            title=heading,
            numbers=[None, None, "int", "prec", *([None] * len(shown))],
            toned=(),
            gap=1,
        )
        _highlight_lost_values(writer, top, rows, [shown.index(name) for name in conflicting if name in shown])


def _highlight_lost_values(writer: SheetWriter, top: int, rows: list[list[Any]], conflicting: Sequence[int]) -> None:
    """Re-write, highlighted, each member's value of a conflicting column that differs from the golden one."""
    offset = len(MEMBER_FIELDS)
    tone = writer.formats.tone["warn"]
    golden = rows[0]
    for position in conflicting:
        column = offset + position
        survived = cell_value(golden[column])
        for index, row in enumerate(rows[1:], start=top + 2):
            value = cell_value(row[column])
            if value is not None and value != survived:
                writer.sheet.write(index, column, value, tone)


# ---------------------------------------------------------------------------------------------- stewardship


QUEUE_COLUMNS = (
    ("Task", "task_id"),
    ("Severity", "severity"),
    ("Reason", "reason"),
    ("Source", "source"),
    ("Row", "source_row"),
    ("Golden id", "golden_id"),
    ("Column", "column"),
    ("Value", "value"),
    ("Action", "action"),
)


def stewardship_flagger(writer: SheetWriter, data: dict[str, Any]) -> set[str]:
    """The review queue's summary and its first tasks; returns the ``data`` keys shown."""
    consumed: set[str] = set()
    total = as_dict(data.get("outputs")).get("stewardship_queue.csv")
    if _whole(total):
        writer.key_values("Review queue", [("Tasks in stewardship_queue.csv", total)])
        consumed.add("outputs")
    by_type = {str(kind): count for kind, count in as_dict(data.get("tasks_by_type")).items() if _whole(count)}
    if "tasks_by_type" in data:
        tasks = sum(by_type.values())
        rows = [
            [writer.label(kind), count, round(100.0 * count / tasks, 2) if tasks else None]
            for kind, count in sorted(by_type.items(), key=lambda item: -item[1])
        ]
        writer.table(
            ["Kind of task", "Tasks", "Share (%)"],
            rows,
            title="Tasks by kind",
            numbers=[None, "int", "dec"],
            empty_text="nothing to review",
        )
        if rows:
            labels, counts = [str(row[0]) for row in rows], [row[1] for row in rows]
            column_chart(writer, "Review tasks by kind", labels, counts, "tasks", "#ED7D31")
            writer.skip(CHART_ROWS + 1)
        consumed.add("tasks_by_type")
    by_severity = as_dict(data.get("tasks_by_severity"))
    if by_severity:
        writer.table(["Severity", "Tasks"], list(by_severity.items()), title="Tasks by severity", numbers=[None, "int"])
        consumed.add("tasks_by_severity")
    if "tasks_by_column" in data:
        by_column = as_dict(data.get("tasks_by_column"))
        ordered = sorted(by_column.items(), key=lambda item: -item[1] if _whole(item[1]) else 0)
        writer.table(
            ["Column", "Tasks"],
            ordered[:MAX_LISTED],
            title="Tasks by column",
            numbers=[None, "int"],
            empty_text="no task names a column",
        )
        consumed.add("tasks_by_column")
    if "task_list" in data:
        listed = as_dicts(data.get("task_list"))[:MAX_LISTED]
        title = "Tasks, most severe first"
        if _whole(total) and total > len(listed):
            title += f": the first {len(listed):,} of {total:,} (all in stewardship_queue.csv)"
        writer.table(
            [header for header, _ in QUEUE_COLUMNS],
            [[task.get(key) for _, key in QUEUE_COLUMNS] for task in listed],
            title=title,
            numbers=[None, None, None, None, "int", None, None, None, None],
            empty_text="nothing to review",
        )
        consumed.add("task_list")
    return consumed


MASTER_RENDERERS: dict[str, Callable[[SheetWriter, dict[str, Any]], set[str]]] = {
    GOLDEN_AGENT: golden_record_builder,
    STEWARDSHIP_AGENT: stewardship_flagger,
}
"""The master agents' curated renderers, for ``agents.reports.agent_sheets.CURATED``."""


# ---------------------------------------------------------------------------------------------- helpers


def column_chart(writer: SheetWriter, title: str, labels: list[str], values: list[Any], unit: str, colour: str) -> None:
    """A column chart at the current row (the caller skips ``CHART_ROWS`` below it); a log axis when the
    tallest bar is ``LOG_SCALE_RATIO`` times the shortest non-empty one (many singletons, few large clusters)."""
    categories, series = writer.book.chart_data([labels, values])
    chart = writer.book.workbook.add_chart({"type": "column"})
    assert chart is not None
    chart.add_series({"categories": categories, "values": series, "gap": 40, "fill": {"color": colour}})
    present = [value for value in values if _whole(value) and value > 0]
    log = bool(present) and max(present) >= LOG_SCALE_RATIO * min(present)
    axis: dict[str, Any] = {
        "name": f"{unit} (log scale)" if log else unit,
        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
    }
    axis.update({"log_base": 10, "min": 1} if log else {"min": 0})
    chart.set_title({"name": title, "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    chart.set_x_axis({"num_font": {"size": 8}})
    chart.set_y_axis(axis)
    chart.set_size({"width": CHART_WIDTH, "height": CHART_HEIGHT})
    writer.sheet.insert_chart(writer.row, 0, chart, {"object_position": 3})


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and math.isfinite(value) else "n/a"


def _count(value: Any, noun: str) -> str:
    return f"{value:,} {noun}{'' if value == 1 else 's'}" if _whole(value) else f"? {noun}s"
