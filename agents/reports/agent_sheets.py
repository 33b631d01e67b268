"""One sheet per agent. Every agent gets the generic layout: title, error (if any), summary metrics, every
list of records found in ``data`` as a flattened table, the remaining details and the parameters used.
The profiler and the drift detector also get curated per-column tables and native Excel charts, and
golden-record-builder and stewardship-flagger their own sections (agents.reports.master_sheets); their
curated keys are then left out of the generic part.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from agents.reports.master_sheets import MASTER_RENDERERS
from agents.reports.overview import as_dict, as_dicts, dig
from agents.reports.sheets import (
    Column,
    ReportBook,
    SheetWriter,
    find_tables,
    is_keyed_table,
    keyed_records,
    records_table,
    scalar_details,
)

SHEET_TITLES = {
    "unified-profiler": "Profiler",
    "drift-detector": "Drift Detection",
    "score-risk": "Risk Assessment",
    "test-coverage-agent": "Test Coverage",
    "readiness-rater": "Readiness",
    "governance-checker": "Governance",
    "cleanse-previewer": "Cleanse Preview",
    "quarantine-agent": "Quarantine",
    "type-fixer": "Type Fixes",
    "field-standardization": "Standardization",
    "duplicate-resolver": "Duplicates",
    "null-handler": "Null Handling",
    "outlier-remover": "Outliers",
    "cleanse-writeback": "Writeback",
}
PARAMETER_KEYS = ("defaults", "overrides", "parameters")
PROFILE_VIEW_KEYS = ("correlations", "missing_patterns", "samples", "duplicate_rows_sample")
"""The profiler's ``data`` keys shown on sheets of their own (agents.reports.profile_sheets)."""
MAX_TABLE_ROWS = 5_000
MAX_CHARTED_COLUMNS = 30
MAX_PSI_BARS = 50
MAX_TOP_VALUES_DISTINCT_PERCENT = 50
LOG_SCALE_RATIO = 50  # a histogram whose tallest bar is this many times its shortest non-empty one: log axis
PSI_LINES = ((0.1, "PSI 0.1 (moderate)", "#ED7D31"), (0.25, "PSI 0.25 (significant)", "#C00000"))
CHART_WIDTH, CHART_HEIGHT, CHART_ROWS = 520, 300, 16

PROFILER_COLUMNS = [
    Column("Field", ("field_name",)),
    Column("Type", ("data_type",)),
    Column("Semantic type", ("semantic_type",)),
    Column("Quality score", ("quality_score",), "dec"),
    Column("Null %", ("properties", "null_percentage"), "dec"),
    Column("Distinct %", ("properties", "unique_percentage"), "dec"),
    Column("Mean", ("statistics", "mean")),
    Column("Std", ("statistics", "std")),
    Column("Min", ("statistics", "min")),
    Column("Max", ("statistics", "max")),
    Column("Median", ("statistics", "median")),
    Column("PII type", ("properties", "estimated_pii_type")),
    Column("Sensitivity", ("properties", "estimated_sensitivity_level")),
    Column("Nulls", ("properties", "null_count"), "int"),
    Column("Distinct", ("properties", "unique_count"), "int"),
    Column("Completeness", ("quality_indicators", "completeness"), "dec"),
    Column("Uniqueness", ("quality_indicators", "uniqueness"), "dec"),
    Column("Validity", ("quality_indicators", "validity"), "dec"),
    Column("Consistency", ("quality_indicators", "consistency"), "dec"),
    Column("P5", ("statistics", "p5")),
    Column("P25", ("statistics", "p25")),
    Column("P75", ("statistics", "p75")),
    Column("P95", ("statistics", "p95")),
    Column("Skewness", ("statistics", "skewness"), "prec"),
    Column("Kurtosis", ("statistics", "kurtosis"), "prec"),
    Column("Outliers", ("statistics", "outlier_count"), "int"),
    Column("Outlier %", ("statistics", "outlier_percentage"), "dec"),
    Column("Zeros", ("statistics", "zeros_count"), "int"),
    Column("Negatives", ("statistics", "negatives_count"), "int"),
    Column("Min length", ("statistics", "min_length")),
    Column("Mean length", ("statistics", "mean_length"), "dec"),
    Column("Max length", ("statistics", "max_length")),
    Column("Entropy (bits)", ("statistics", "entropy"), "prec"),
    Column("Polars dtype", ("polars_dtype",)),
]

DRIFT_COLUMNS = [
    Column("Field", ("field_name",)),
    Column("Type", ("column_type",)),
    Column("Test", ("drift_analysis", "test")),
    Column("Statistic", ("drift_analysis", "statistic"), "prec"),
    Column("p-value", ("drift_analysis", "p_value"), "sci"),
    Column("Threshold", ("drift_analysis", "threshold")),
    Column("PSI", ("drift_analysis", "psi_score"), "prec"),
    Column("JS divergence", ("drift_analysis", "js_divergence"), "prec"),
    Column("Wasserstein (normed)", ("drift_analysis", "wasserstein_normed"), "prec"),
    Column("Drifted", ("drift_analysis", "drift_detected")),
    Column("Severity", ("drift_analysis", "severity")),
    Column("Change in mean", ("drift_analysis", "change_in_mean")),
    Column("Change in median", ("drift_analysis", "change_in_median")),
    Column("Change in variance", ("drift_analysis", "change_in_variance")),
    Column("Null % change", ("drift_analysis", "null_percentage_change"), "dec"),
    Column("Distinct change", ("drift_analysis", "distinct_change")),
    Column("New categories", ("drift_analysis", "new_categories")),
    Column("Missing categories", ("drift_analysis", "missing_categories")),
    Column("Baseline mean", ("baseline_statistics", "mean")),
    Column("Current mean", ("current_statistics", "mean")),
    Column("Baseline null %", ("baseline_statistics", "null_percentage"), "dec"),
    Column("Current null %", ("current_statistics", "null_percentage"), "dec"),
    Column("Test reason", ("drift_analysis", "test_reason")),
    Column("Interpretation", ("drift_interpretation",)),
]

Renderer = Callable[[SheetWriter, dict[str, Any]], set[str]]
"""Writes an agent's curated sections; returns the ``data`` paths it consumed."""


def agent_sheet(book: ReportBook, envelope: dict[str, Any], agent_id: str) -> SheetWriter:
    name = str(envelope.get("agent_name") or agent_id)
    writer = book.sheet(SHEET_TITLES.get(agent_id) or name)
    status = str(envelope.get("status") or "unknown")
    writer.title(name, f"{agent_id} · {status} · {envelope.get('execution_time_ms') or 0:,} ms")
    writer.sheet.freeze_panes(1, 0)
    if envelope.get("error") or status == "error":
        writer.note(f"Error: {envelope.get('error') or 'the agent failed'}", tone="bad")
    metrics = as_dict(envelope.get("summary_metrics"))
    writer.key_values("Summary metrics", writer.labelled(scalar_details(metrics)))
    data = as_dict(envelope.get("data"))
    consumed = _guarded(writer, CURATED.get(agent_id), data) or set()
    for path, records in find_tables(data, skip=(*consumed, *PARAMETER_KEYS)):
        headers, rows = records_table(records[:MAX_TABLE_ROWS])
        title = writer.label(path)
        if len(records) > MAX_TABLE_ROWS:
            title += f" (first {MAX_TABLE_ROWS:,} of {len(records):,}; all in the JSON report)"
        writer.table([writer.label(header) for header in headers], rows, title=title)
    skipped = {*consumed, *PARAMETER_KEYS}
    for key, value in data.items():
        if key in skipped or not isinstance(value, Mapping) or not value:
            continue
        if is_keyed_table(value):
            records = keyed_records(value)
            headers, rows = records_table(records[:MAX_TABLE_ROWS])
            writer.table([writer.label(header) for header in headers], rows, title=writer.label(key))
        else:
            writer.key_values(writer.label(key), writer.labelled(scalar_details(value)), ("Key", "Value"))
        skipped.add(key)
    writer.key_values("Details", writer.labelled(scalar_details(data, skip=skipped)), ("Key", "Value"))
    _parameters(writer, data)
    _guarded(writer, CHARTS.get(agent_id), data)
    writer.finish()
    return writer


def _guarded(
    writer: SheetWriter, render: Callable[[SheetWriter, dict[str, Any]], Any] | None, data: dict[str, Any]
) -> Any:
    """Run a curated renderer; an envelope it does not expect leaves a note and the generic layout."""
    if render is None:
        return None
    try:
        return render(writer, data)
    except Exception as error:  # noqa: BLE001 - a report must not fail over one agent's unexpected shape
        writer.skip()
        writer.note(f"Detailed view unavailable ({type(error).__name__}: {error}); generic view below", tone="warn")
        return None


def _parameters(writer: SheetWriter, data: dict[str, Any]) -> None:
    used = as_dict(data.get("parameters"))
    overrides = as_dict(data.get("overrides"))
    defaults = as_dict(data.get("defaults"))
    rows = [
        [key, value, defaults.get(key), overrides.get(key) is not None] for key, value in (used or defaults).items()
    ]
    if rows:
        writer.table(["Parameter", "Value used", "Default", "Set by the user"], rows, title="Parameters", toned=())


def _profiler(writer: SheetWriter, data: dict[str, Any]) -> set[str]:
    fields = as_dicts(data.get("fields"))
    if not fields:
        return set()
    top, last = writer.table(
        [column.header for column in PROFILER_COLUMNS],
        [[column.value(field) for column in PROFILER_COLUMNS] for field in fields],
        title="Column profiles",
        numbers=[column.number for column in PROFILER_COLUMNS],
    )
    sheet = writer.sheet
    quality_column = next(i for i, c in enumerate(PROFILER_COLUMNS) if c.header == "Quality score")
    null_column = next(i for i, c in enumerate(PROFILER_COLUMNS) if c.header == "Null %")
    sheet.conditional_format(
        top + 1,
        quality_column,
        last,
        quality_column,
        {
            "type": "3_color_scale",
            "min_type": "num",
            "min_value": 50,
            "min_color": "#F8696B",
            "mid_type": "num",
            "mid_value": 75,
            "mid_color": "#FFEB84",
            "max_type": "num",
            "max_value": 100,
            "max_color": "#63BE7B",
        },
    )
    sheet.conditional_format(
        top + 1,
        null_column,
        last,
        null_column,
        {
            "type": "data_bar",
            "bar_color": "#F4B183",
            "min_type": "num",
            "min_value": 0,
            "max_type": "num",
            "max_value": 100,
        },
    )
    extremes = []
    for field in fields:
        found = as_dict(dig(field, "statistics", "extremes"))
        if found.get("lowest") or found.get("highest"):
            extremes.append(
                [field.get("field_name"), extremes_text(found.get("lowest")), extremes_text(found.get("highest"))]
            )
    if extremes:
        writer.table(["Field", "Lowest values (rows)", "Highest values (rows)"], extremes, title="Extreme values")
    consumed = {"fields", *PROFILE_VIEW_KEYS}
    for key, title in (("quality_summary", "Dataset quality"), ("dataset", "Dataset")):
        section = as_dict(data.get(key))
        if section:
            writer.key_values(title, writer.labelled(scalar_details(section)))
            consumed.add(key)
    return consumed


def _distribution_charts(writer: SheetWriter, data: dict[str, Any]) -> None:
    fields = as_dicts(data.get("fields"))
    charted = 0
    started = False
    for field in fields:
        if charted >= MAX_CHARTED_COLUMNS:
            break
        name = str(field.get("field_name"))
        histogram = _histogram(dig(field, "distribution", "histogram"))
        top_values = [item for item in as_dicts(dig(field, "distribution", "top_values")) if _count(item) is not None]
        repeated = bool(top_values) and max(_count(item) or 0 for item in top_values) > 1 and _categorical(field)
        if histogram is None and not repeated:
            continue
        if not started:
            shown = min(MAX_CHARTED_COLUMNS, len(fields))
            writer.heading(f"Distributions (histograms and top values; up to {shown} columns)")
            writer.skip()
            started = True
        offset = 0
        if histogram is not None:
            labels, counts = histogram
            insert_column_chart(writer, f"{name}: histogram", labels, counts, offset, gap=0, colour="#4472C4")
            offset += CHART_WIDTH + 20
        if repeated:
            labels = [_label(item.get("value")) for item in top_values]
            counts = [_count(item) for item in top_values]
            _insert_bar_chart(writer, f"{name}: top values", labels, counts, offset)
        writer.skip(CHART_ROWS)
        charted += 1
    if started:
        writer.skip()


def _categorical(field: Mapping[str, Any]) -> bool:
    """Top values say something only when values repeat: not for an id, an amount or free text (at most
    ``MAX_TOP_VALUES_DISTINCT_PERCENT`` % of the non-null values distinct; kept when the share is unknown)."""
    distinct = dig(field, "properties", "unique_percentage")
    return not _finite_number(distinct) or distinct <= MAX_TOP_VALUES_DISTINCT_PERCENT


def _histogram(histogram: Any) -> tuple[list[str], list[Any]] | None:
    edges, counts = dig(histogram, "bin_edges"), dig(histogram, "counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or len(edges) != len(counts) + 1 or not counts:
        return None
    if not all(_finite_number(value) for value in [*edges, *counts]) or not sum(counts):
        return None
    return [f"{_short(edges[i])} – {_short(edges[i + 1])}" for i in range(len(counts))], counts


def insert_column_chart(
    writer: SheetWriter, title: str, labels: list[str], values: list[Any], offset: int, gap: int, colour: str
) -> None:
    categories, series = writer.book.chart_data([labels, values])
    chart = writer.book.workbook.add_chart({"type": "column"})
    assert chart is not None
    chart.add_series(
        {
            "categories": categories,
            "values": series,
            "gap": gap,
            "fill": {"color": colour},
            "border": {"color": "#FFFFFF"},
        }
    )
    present = [value for value in values if _finite_number(value) and value > 0]
    log = bool(present) and max(present) >= LOG_SCALE_RATIO * min(present)
    y_axis: dict[str, Any] = {
        "name": "rows (log scale)" if log else "rows",
        "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
    }
    y_axis.update({"log_base": 10, "min": 1} if log else {"min": 0})
    chart.set_title({"name": title, "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    chart.set_x_axis({"num_font": {"rotation": -45, "size": 8}})
    chart.set_y_axis(y_axis)
    chart.set_size({"width": CHART_WIDTH, "height": CHART_HEIGHT})
    writer.sheet.insert_chart(writer.row, 0, chart, {"x_offset": offset, "object_position": 3})


def _insert_bar_chart(writer: SheetWriter, title: str, labels: list[str], values: list[Any], offset: int) -> None:
    categories, series = writer.book.chart_data([labels, values])
    chart = writer.book.workbook.add_chart({"type": "bar"})
    assert chart is not None
    chart.add_series({"categories": categories, "values": series, "fill": {"color": "#70AD47"}, "gap": 60})
    chart.set_title({"name": title, "name_font": {"size": 11}})
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True, "num_font": {"size": 8}})  # the category axis: most frequent on top
    chart.set_x_axis({"name": "rows", "min": 0, "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_size({"width": CHART_WIDTH, "height": CHART_HEIGHT})
    writer.sheet.insert_chart(writer.row, 0, chart, {"x_offset": offset, "object_position": 3})


def _drift(writer: SheetWriter, data: dict[str, Any]) -> set[str]:
    consumed = {"skipped", "skip_reason"}
    if data.get("skipped"):
        writer.note(f"Drift analysis skipped: {data.get('skip_reason') or 'no baseline'}", tone="neutral")
    summary = as_dict(data.get("drift_summary"))
    if summary:
        writer.key_values("Dataset drift", writer.labelled(summary.items()))
        consumed.add("drift_summary")
    fields = as_dicts(data.get("fields"))
    if fields:
        writer.table(
            [column.header for column in DRIFT_COLUMNS],
            [[column.value(field) for column in DRIFT_COLUMNS] for field in fields],
            title="Drift per column",
            numbers=[column.number for column in DRIFT_COLUMNS],
        )
        _psi_chart(writer, fields)
        consumed.add("fields")
    schema = data.get("schema_drift")
    if isinstance(schema, Mapping):
        writer.table(
            ["Change", "Column", "Baseline type", "Current type"],
            _schema_rows(schema),
            title="Schema drift",
            empty_text="no schema changes",
        )
        consumed.add("schema_drift")
    return consumed


def _schema_rows(schema: Mapping[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for change, key in (("added", "added_columns"), ("removed", "removed_columns")):
        names = schema.get(key)
        rows += [[change, name, None, None] for name in names] if isinstance(names, list) else []
    for item in as_dicts(schema.get("retyped_columns")):
        rows.append(["retyped", item.get("field_name"), item.get("baseline_type"), item.get("current_type")])
    if schema.get("order_changed"):
        rows.append(["column order changed", None, None, None])
    return rows


def _psi_chart(writer: SheetWriter, fields: list[dict[str, Any]]) -> None:
    scored = [
        (str(field.get("field_name")), psi)
        for field in fields
        if _finite_number(psi := dig(field, "drift_analysis", "psi_score"))
    ]
    if not scored:
        return
    scored = sorted(scored, key=lambda item: -item[1])[:MAX_PSI_BARS]
    names = [name for name, _ in scored]
    columns: list[list[Any]] = [names, [psi for _, psi in scored]]
    columns += [[level] * len(scored) for level, _, _ in PSI_LINES]
    categories, values, *levels = writer.book.chart_data(columns)
    workbook = writer.book.workbook
    chart = workbook.add_chart({"type": "column"})
    lines = workbook.add_chart({"type": "line"})
    assert chart is not None and lines is not None
    chart.add_series({"name": "PSI", "categories": categories, "values": values, "fill": {"color": "#4472C4"}})
    for (_, label, colour), level in zip(PSI_LINES, levels, strict=True):
        lines.add_series(
            {
                "name": label,
                "categories": categories,
                "values": level,
                "line": {"color": colour, "dash_type": "dash", "width": 1.5},
                "marker": {"type": "none"},
            }
        )
    chart.combine(lines)
    chart.set_title({"name": "Population stability index by column", "name_font": {"size": 11}})
    chart.set_x_axis({"num_font": {"rotation": -45, "size": 8}})
    chart.set_y_axis({"name": "PSI", "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}}})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": max(CHART_WIDTH, 40 * len(scored) + 160), "height": CHART_HEIGHT + 40})
    writer.heading("PSI by column (lines: 0.1 moderate, 0.25 significant drift)")
    writer.sheet.insert_chart(writer.row, 0, chart, {"object_position": 3})
    writer.skip(CHART_ROWS + 4)


CURATED: dict[str, Renderer] = {"unified-profiler": _profiler, "drift-detector": _drift, **MASTER_RENDERERS}
CHARTS: dict[str, Callable[[SheetWriter, dict[str, Any]], None]] = {"unified-profiler": _distribution_charts}
"""Charts drawn at the end of an agent's sheet, below its tables."""


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(item: Mapping[str, Any]) -> int | float | None:
    count = item.get("count")
    return count if _finite_number(count) else None


def extremes_text(items: Any) -> str | None:
    """Extreme values as ``value (rows)``, in order: ``-43 (1); -33 (1); -32 (2)``."""
    return "; ".join(f"{_label(item.get('value'))} ({item.get('count')})" for item in as_dicts(items)) or None


def _label(value: Any) -> str:
    text = "(null)" if value is None else f"{value:.10g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else f"{text[:39]}…"


def _short(value: float) -> str:
    return f"{value:.4g}"
