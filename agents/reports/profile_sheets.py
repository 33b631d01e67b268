"""The profiler's own sheets, each written only when its envelope holds the key it shows:

- "Correlations" (``data.correlations``): the strongest pairs, near-duplicate columns, then the Pearson,
  Spearman and Cramér's V matrices with a colour scale (−1 blue, 0 white, +1 red; Cramér's V 0 to 1);
- "Missing values" (``data.missing_patterns``): rows with and without gaps, per-column nullity, the
  patterns of columns missing together, the nullity correlation matrix;
- "Samples" (``data.samples``, ``data.duplicate_rows_sample``): the first, last and random rows, and
  groups of duplicate rows;
- "Dates" (each field's ``datetime_profile``): per temporal column its range, steps, largest gaps and
  counts per year, month, weekday and hour, with column charts.

Shapes: agents/profile (correlations.py, missing_patterns.py, samples.py, datetimes.py). The data's own
column names are shown as they are; ``row_index`` is the 1-based data row of the input file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents.profile.correlations import METHOD_LABELS
from agents.reports.agent_sheets import CHART_ROWS, CHART_WIDTH, extremes_text, insert_column_chart
from agents.reports.overview import as_dict, as_dicts
from agents.reports.sheets import ReportBook, SheetWriter, cell_value, records_table

MAX_MATRIX_COLUMNS = 60  # a wider matrix shows its first columns (the JSON report has all of it)
MAX_LISTED = 200  # pairs, patterns, gaps, duplicate groups
MAX_DATE_COLUMNS = 20  # date columns shown in the Dates sheet (the JSON report has every one)
DIVERGING = {"min_color": "#5A8AC6", "mid_color": "#FFFFFF", "max_color": "#F8696B"}
COUNT_SERIES = (
    ("counts_by_year", "year"),
    ("counts_by_month", "month"),
    ("counts_by_weekday", "weekday"),
    ("counts_by_hour", "hour"),
)


def profile_sheets(book: ReportBook, data: Mapping[str, Any]) -> list[str]:
    """Write the sheets whose key ``data`` (the profiler's envelope ``data``) holds, not empty; returns their
    names. A sheet that meets a shape it does not expect says so in place of what it could not show."""
    written = []
    fields = as_dicts(data.get("fields"))
    temporal = [field for field in fields if isinstance(field.get("datetime_profile"), Mapping)]
    correlations, missing = as_dict(data.get("correlations")), as_dict(data.get("missing_patterns"))
    samples, duplicates = as_dict(data.get("samples")), as_dict(data.get("duplicate_rows_sample"))
    views: list[tuple[str, Callable[[SheetWriter], None], bool]] = [
        ("Correlations", lambda w: _correlations(w, correlations), bool(correlations)),
        ("Missing values", lambda w: _missing(w, missing), bool(missing)),
        ("Samples", lambda w: _samples(w, samples, duplicates), bool(samples or duplicates)),
        ("Dates", lambda w: _dates(w, temporal), bool(temporal)),
    ]
    for title, render, present in views:
        if not present:
            continue
        writer = book.sheet(title)
        try:
            render(writer)
        except Exception as error:  # noqa: BLE001 - a report must not fail over one view's unexpected shape
            writer.note(f"{title} unavailable ({type(error).__name__}: {error})", tone="warn")
        writer.finish()
        written.append(writer.name)
    return written


# ---------------------------------------------------------------------------------------------- correlations


def _correlations(writer: SheetWriter, correlations: Mapping[str, Any]) -> None:
    rows_used = correlations.get("rows_used")
    subtitle = f"Over {rows_used:,} rows" if isinstance(rows_used, int) else None
    if subtitle and correlations.get("sampled"):
        subtitle += " (an evenly spaced sample of the data)"
    writer.title("Correlations", subtitle)
    pairs = as_dicts(correlations.get("strongest_pairs"))[:MAX_LISTED]
    top, last = writer.table(
        ["Column A", "Column B", "Method", "Value", "Rows"],
        [
            [
                pair.get("column_a"),
                pair.get("column_b"),
                _method(pair.get("method")),
                pair.get("value"),
                pair.get("rows"),
            ]
            for pair in pairs
        ],
        title="Strongest pairs",
        numbers=[None, None, None, "prec", "int"],
        empty_text="no pair of columns is associated",
    )
    if pairs:
        _colour_scale(writer, top + 1, 3, last, 3, low=-1.0)
    near = as_dicts(correlations.get("near_duplicates"))[:MAX_LISTED]
    if near:
        threshold = correlations.get("threshold")
        title = "Near-duplicate columns" + (f" (|value| ≥ {threshold})" if _number(threshold) else "")
        headers, rows = records_table(near)
        rows = [
            [_method(value) if header == "method" else value for header, value in zip(headers, row, strict=True)]
            for row in rows
        ]
        writer.table([writer.label(header) for header in headers], rows, title=title, toned=())
    for method in ("pearson", "spearman", "cramers_v"):
        matrix = as_dict(correlations.get(method))
        if matrix:
            low = 0.0 if method == "cramers_v" else -1.0
            _matrix(writer, f"{METHOD_LABELS[method]} matrix", matrix, low)
    skipped = as_dict(correlations.get("skipped"))
    if skipped:
        writer.table(["Column", "Why it is left out"], list(skipped.items()), title="Columns left out", toned=())


def _method(method: Any) -> Any:
    return METHOD_LABELS.get(method, method) if isinstance(method, str) else method


def _matrix(writer: SheetWriter, title: str, matrix: Mapping[str, Any], low: float) -> None:
    """A square matrix of coefficients: names down column A and along the header row, a colour scale from
    ``low`` (blue when −1) through 0 (white) to 1 (red)."""
    names = [str(name) for name in matrix.get("columns") or []]
    values = matrix.get("matrix") or []
    shown = names[:MAX_MATRIX_COLUMNS]
    if not shown or not isinstance(values, list):
        return
    writer.heading(title)
    sheet, formats = writer.sheet, writer.formats
    top = writer.row
    sheet.set_row(top, min(6 * max(len(name) for name in shown) + 12, 150))
    sheet.write_blank(top, 0, None, formats.rotated_header)
    for column, name in enumerate(shown, start=1):
        sheet.write_string(top, column, name, formats.rotated_header)
        writer.widths[column] = max(writer.widths.get(column, 0), 7)
    for offset, name in enumerate(shown, start=1):
        row = values[offset - 1] if offset - 1 < len(values) and isinstance(values[offset - 1], list) else []
        sheet.write_string(top + offset, 0, name, formats.label)
        for column, value in enumerate(row[: len(shown)], start=1):
            number = cell_value(value)
            if isinstance(number, int | float) and not isinstance(number, bool):
                sheet.write_number(top + offset, column, number, formats.coefficient)
    writer.widths[0] = max(writer.widths.get(0, 0), min(max(len(name) for name in shown) + 2, 40))
    last = top + len(shown)
    _colour_scale(writer, top + 1, 1, last, len(shown), low=low)
    writer.row = last + 1
    if len(names) > len(shown):
        writer.note(f"The first {len(shown)} of {len(names):,} columns; the JSON report has the whole matrix")
    else:
        writer.skip()


def _colour_scale(
    writer: SheetWriter, first_row: int, first_col: int, last_row: int, last_col: int, low: float
) -> None:
    scale = {"type": "3_color_scale", "min_type": "num", "min_value": low, "mid_type": "num", "max_type": "num"}
    scale |= {"mid_value": 0.0 if low < 0 else 0.5, "max_value": 1.0, **DIVERGING}
    if low >= 0:
        scale["min_color"], scale["mid_color"] = "#FFFFFF", "#FBC8C9"
    writer.sheet.conditional_format(first_row, first_col, last_row, last_col, scale)


# --------------------------------------------------------------------------------------------- missing values


def _missing(writer: SheetWriter, missing: Mapping[str, Any]) -> None:
    writer.title("Missing values", "Empty cells and missing-value tokens, per column and per row")
    writer.key_values(
        "Rows",
        [
            ("Rows", missing.get("rows")),
            ("Rows with a missing value", missing.get("rows_with_missing")),
            ("Complete rows", missing.get("rows_complete")),
            ("Rows entirely missing", missing.get("rows_all_missing")),
            ("Distinct patterns of missing columns", missing.get("distinct_patterns")),
        ],
    )
    columns = as_dicts(missing.get("columns"))
    top, last = writer.table(
        ["Column", "Missing", "Missing (%)"],
        [[item.get("column"), item.get("null_count"), item.get("null_percentage")] for item in columns],
        title="Missing per column",
        numbers=[None, "int", "dec"],
        toned=(),
    )
    if columns:
        bar = {"type": "data_bar", "bar_color": "#F4B183", "min_type": "num", "min_value": 0}
        writer.sheet.conditional_format(top + 1, 2, last, 2, bar | {"max_type": "num", "max_value": 100})
    patterns = as_dicts(missing.get("patterns"))[:MAX_LISTED]
    writer.table(
        ["Columns missing together", "Rows", "Rows (%)"],
        [[_names(item.get("columns")), item.get("rows"), item.get("percentage")] for item in patterns],
        title="Patterns (the columns missing in the same rows)",
        numbers=[None, "int", "dec"],
        empty_text="no missing values",
        toned=(),
    )
    nullity = as_dict(missing.get("nullity_correlation"))
    if nullity:
        _matrix(writer, "Nullity correlation (1: always missing together, −1: never)", nullity, -1.0)


def _names(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "(none)"
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------------------------------- samples


def _samples(writer: SheetWriter, samples: Mapping[str, Any], duplicates: Mapping[str, Any]) -> None:
    writer.title("Samples", "Rows as read from the file; Row = the data row of the input file (1 = first)")
    columns = [str(name) for name in samples.get("columns") or []] or _row_columns(samples)
    if samples.get("columns_truncated"):
        writer.note(f"The first {len(columns):,} columns are shown", tone="neutral")
    seed = samples.get("seed")
    random_title = "Random rows" + (f" (seed {seed})" if seed is not None else "")
    for key, title in (("head", "First rows"), ("tail", "Last rows"), ("random", random_title)):
        rows = as_dicts(samples.get(key))
        if key in samples:
            _rows_table(
                writer, title, columns, [[row.get("row_index"), *(row.get(c) for c in columns)] for row in rows]
            )
    if duplicates:
        _duplicates(writer, duplicates, columns)


def _row_columns(samples: Mapping[str, Any]) -> list[str]:
    """The columns of the sample rows, when the sample does not list them."""
    names: dict[str, None] = {}
    for key in ("head", "tail", "random"):
        for row in as_dicts(samples.get(key)):
            names.update(dict.fromkeys(name for name in row if name != "row_index"))
    return list(names)


def _duplicates(writer: SheetWriter, duplicates: Mapping[str, Any], columns: list[str]) -> None:
    groups = as_dicts(duplicates.get("groups"))[:MAX_LISTED]
    if not columns:
        columns = list(dict.fromkeys(name for group in groups for name in as_dict(group.get("row"))))
    total, rows = duplicates.get("duplicate_rows"), duplicates.get("groups_total")
    title = "Duplicate rows"
    if isinstance(total, int) and isinstance(rows, int):
        title += f": {total:,} rows repeat an earlier one, in {rows:,} groups"
        if rows > len(groups):
            title += f" (the first {len(groups):,} shown)"
    table = [
        [group.get("count"), _names(group.get("row_indexes")), *(as_dict(group.get("row")).get(c) for c in columns)]
        for group in groups
    ]
    headers = ["Copies", "Rows", *columns]
    writer.table(headers, table, title=title, numbers=["int"], empty_text="no duplicate rows", toned=())


def _rows_table(writer: SheetWriter, title: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
    writer.table(["Row", *columns], rows, title=title, numbers=["int"], empty_text="no rows", toned=())


# ------------------------------------------------------------------------------------------------------ dates


def _dates(writer: SheetWriter, fields: list[dict[str, Any]]) -> None:
    shown = f"; the first {MAX_DATE_COLUMNS} of {len(fields)}" if len(fields) > MAX_DATE_COLUMNS else ""
    writer.title("Dates", f"Per date or time column: range, steps, gaps and counts per period{shown}")
    for field in fields[:MAX_DATE_COLUMNS]:
        name = str(field.get("field_name"))
        profile = as_dict(field.get("datetime_profile"))
        writer.heading(name)
        writer.skip()
        step = as_dict(profile.get("step"))
        extremes = as_dict(profile.get("extremes"))
        writer.key_values(
            None,
            [
                ("First", profile.get("min")),
                ("Last", profile.get("max")),
                ("Time zone", profile.get("time_zone")),
                ("Range", profile.get("range")),
                ("Distinct values", profile.get("distinct")),
                ("Values in the future", profile.get("future_count")),
                ("Median step (s)", step.get("median_seconds")),
                ("Most common step (s)", step.get("most_common_seconds")),
                ("Earliest values", extremes_text(extremes.get("lowest"))),
                ("Latest values", extremes_text(extremes.get("highest"))),
            ],
        )
        gaps = as_dicts(profile.get("gaps"))[:MAX_LISTED]
        if gaps:
            writer.table(
                ["After", "Before", "Gap", "Seconds"],
                [[gap.get("after"), gap.get("before"), gap.get("text"), gap.get("seconds")] for gap in gaps],
                title=f"{name}: largest gaps",
                numbers=[None, None, None, "int"],
                toned=(),
            )
        _period_counts(writer, name, profile)


def _period_counts(writer: SheetWriter, name: str, profile: Mapping[str, Any]) -> None:
    """Counts per year, month, weekday and hour: one table each, then their charts side by side."""
    charts = []
    for key, period in COUNT_SERIES:
        counts = as_dicts(profile.get(key))
        if not counts:
            continue
        labels = [str(item.get("label") or item.get("period")) for item in counts]
        values = [item.get("count") for item in counts]
        writer.table(
            [period.capitalize(), "Rows"],
            list(zip(labels, values, strict=True)),
            title=f"{name}: rows per {period}",
            numbers=[None, "int"],
            toned=(),
        )
        if len(counts) > 1:
            charts.append((f"{name}: rows per {period}", labels, values))
    for position, (title, labels, values) in enumerate(charts):
        insert_column_chart(writer, title, labels, values, position * (CHART_WIDTH + 20), gap=40, colour="#4472C4")
    if charts:
        writer.skip(CHART_ROWS + 1)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
