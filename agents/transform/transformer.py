"""The ``transformer`` agent (tool ``transform-my-data``): ordered, whitelisted operations on a dataset, given as JSON
or as English commands, resolved against the data's columns and run as one lazy Polars plan.

``run`` resolves the parameters against the data columns' dtypes (agents.transform.resolve: exact names, typed
literals, canonical expressions; a bad command fails the task with ``INVALID_PARAMETERS`` before anything runs),
executes the resolved operations (agents.transform.execute) and returns:

- ``frame``: the new data, ``ROW_INDEX_COLUMN`` kept for the rows that remain, in their new order; for a primary too
  large for memory (``inputs.scan``), ``scan`` and ``rows`` instead: the same data as a lazy plan over the spills the
  run wrote under ``inputs.work_dir`` (the chain reads it before deleting that directory);
- the envelope: one record per step (rows before/after/affected, columns added/removed/renamed/retyped, null counts
  that changed, one sentence: "Dropped 150 rows where email was null"), the sentences in ``data.transformations``,
  the totals in ``summary_metrics``, every inexact column reading as a low alert (nothing is guessed silently), and
  the values a cast emptied as row-level issues;
- ``artifacts``: ``recipe`` (``{"tool_id", "recipe_version", "operations", "source"}``: the resolved operations,
  which applied again to the same data give the same output) and ``text_layouts`` (the output's columns that still
  hold dates read from text, under their current names, for the chain's CSV writer).

Rows removed on the user's command are not quarantined: the user asked for them to go.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import polars as pl

from agents.columns import with_row_index
from agents.envelope import (
    BOOKKEEPING_COLUMNS,
    RECIPE_ARTIFACT,
    ROW_INDEX_COLUMN,
    TEXT_LAYOUTS_ARTIFACT,
    AgentInputs,
    AgentResult,
    Alert,
    Envelope,
    Issue,
    Progress,
    Recommendation,
    SummaryCard,
    build_issue_summary,
    inline_row_level_issues,
)
from agents.errors import InvalidParametersError
from agents.params.transformer import TransformerParams
from agents.transform.execute import AGENT_ID, Execution, execute
from agents.transform.resolve import TEXT_NUMBERS, Resolved, resolve
from agents.values import is_missing_token, parse_number

AGENT_NAME = "Transformer"
TOOL_ID = "transform-my-data"
RECIPE_VERSION = 1
SPILL_FOLDER = "transformer"  # under AgentInputs.work_dir: a streamed run's spills, read by AgentResult.scan


def run(inputs: AgentInputs, params: TransformerParams, progress: Progress) -> AgentResult:
    started = time.perf_counter()
    source, rows_in, spill_dir = _source(inputs)
    schema = {name: str(dtype) for name, dtype in source.collect_schema().items() if name not in BOOKKEEPING_COLUMNS}
    progress(0.0, f"Reading {len(params.operations) + len(params.commands)} operations and commands")
    try:
        resolved = resolve(params, schema)
    except InvalidParametersError as error:
        raise _counted_non_numbers(error, source) from None
    fields = [_field(origin, params) for origin in resolved.origins]

    def step_progress(fraction: float, message: str) -> None:
        progress(0.05 + 0.9 * fraction, message)

    execution = execute(
        source,
        resolved.operations,
        origins=fields,
        layouts=dict(inputs.text_layouts),
        progress=step_progress,
        spill_dir=spill_dir,
    )
    for record, origin, notes in zip(execution.steps, resolved.origins, resolved.notes, strict=True):
        record["command"] = origin if origin in params.commands else None
        record["notes"] = notes
    recipe = {
        "tool_id": TOOL_ID,
        "recipe_version": RECIPE_VERSION,
        "operations": resolved.operations,
        "source": {"name": inputs.primary_name, "rows": rows_in, "columns": _columns(schema)},
    }
    progress(0.97, "Writing the summary")
    envelope = _envelope(rows_in, len(schema), execution, resolved, recipe)
    envelope.execution_time_ms = round((time.perf_counter() - started) * 1000)
    progress(1.0, "Transformations applied")
    return AgentResult(
        envelope=envelope,
        row_level_issues=execution.row_issues,
        frame=execution.frame,
        artifacts={RECIPE_ARTIFACT: recipe, TEXT_LAYOUTS_ARTIFACT: execution.layouts},
        scan=execution.scan,
        rows=execution.rows if execution.scan is not None else None,
    )


_TEXT_COLUMN = re.compile(r"column '(?P<column>.+?)' holds text, so ")
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d{1,3}(\.\d{3})*,\d+\s*|\s*[+-]?\d+,\d+\s*")


def _counted_non_numbers(error: InvalidParametersError, source: pl.DataFrame | pl.LazyFrame) -> Exception:
    """A refused ordering of a text column against a number (agents.transform.resolve.TEXT_NUMBERS) says how many of
    the column's values are no number and shows one (the reason it is text); decimal commas (``10,5``) get their
    own advice, as a conversion to number would empty them. Any other error as it is."""
    found = _TEXT_COLUMN.match(error.message)
    if error.details.get("reason") != TEXT_NUMBERS or found is None:
        return error
    column = found.group("column")
    if column not in source.collect_schema() or source.collect_schema()[column] != pl.String:
        return error  # text only from an earlier operation (a cast to text): nothing to count in the input
    text = pl.col(column)
    present = text.is_not_null() & ~is_missing_token(text)
    no_number = present & parse_number(text).is_null()
    counted = source.lazy().select(
        present.sum().alias("present"),
        no_number.sum().alias("others"),
        text.filter(no_number).first().alias("example"),
    )
    row = counted.collect().row(0, named=True)
    if not row["others"]:
        return error
    example, others, present = str(row["example"])[:40], row["others"], row["present"]
    counted_text = f"{others} of its {present} values {'is' if others == 1 else 'are'} no number, e.g. '{example}'"
    message = error.message.replace(" holds text, so ", f" holds text ({counted_text}), so ", 1)
    if _DECIMAL_COMMA.fullmatch(example):  # a conversion to number would empty them: say how to read them
        message = message.split("; convert it first")[0] + (
            f'; they are written with a decimal comma: convert them first (replace text "," with "." in {column}, '
            f"after removing any thousands separator, then cast {column} to number)"
        )
    return InvalidParametersError(message, dict(error.details))


def _source(inputs: AgentInputs) -> tuple[pl.DataFrame | pl.LazyFrame, int, Path | None]:
    """The data to transform with ``ROW_INDEX_COLUMN``, its rows, and where a streamed run writes its spills: the
    primary frame in memory, or (a primary too large for memory) the chain's scan of it, numbered lazily with the
    values ``with_row_index`` gives, run with spills under ``work_dir``."""
    if inputs.scan is None:
        frame = with_row_index(inputs.primary)
        return frame, frame.height, None
    if inputs.work_dir is None:
        raise ValueError("a streamed primary needs a work directory for the transformer's spills")
    scan = inputs.scan
    names = scan.collect_schema().names()
    if ROW_INDEX_COLUMN not in names:
        numbered = scan.with_row_index(ROW_INDEX_COLUMN, offset=1)
        scan = numbered.select(*names, pl.col(ROW_INDEX_COLUMN).cast(pl.Int64))
    rows = inputs.rows if inputs.rows is not None else int(scan.select(pl.len()).collect(engine="streaming").item())
    return scan, rows, inputs.work_dir / SPILL_FOLDER


def _field(origin: str, params: TransformerParams) -> str:
    """The parameter an operation came from: ``operations[i]`` as resolution names it, or ``commands[i]`` for the
    command text it was parsed from."""
    if origin in params.commands:
        return f"commands[{params.commands.index(origin)}]"
    return origin


def _columns(schema: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "dtype": dtype} for name, dtype in schema.items()]


def _envelope(
    rows_in: int, columns_in: int, execution: Execution, resolved: Resolved, recipe: dict[str, Any]
) -> Envelope:
    steps = execution.steps
    rows_out = execution.rows
    columns_out = [name for name in execution.schema if name not in BOOKKEEPING_COLUMNS]
    sentences = [step["sentence"] for step in steps]
    metrics = {
        "operations_applied": len(steps),
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_removed": rows_in - rows_out,
        "rows_affected": sum(int(step["rows_affected"] or 0) for step in steps),
        "cells_changed": sum(int(step["cells_changed"] or 0) for step in steps),
        "columns_in": columns_in,
        "columns_out": len(columns_out),
        "columns_added": sum(len(step["columns_added"]) for step in steps),
        "columns_removed": sum(len(step["columns_removed"]) for step in steps),
        "columns_renamed": sum(len(step["columns_renamed"]) for step in steps),
        "values_not_converted": sum(int(step["details"].get("values_not_converted") or 0) for step in steps),
    }
    alerts, issues, recommendations = _findings(steps, rows_out)
    data = {
        "transformations": sentences,
        "steps": steps,
        "recipe": recipe,
        "schema_after": _columns({name: str(execution.schema[name]) for name in columns_out}),
        "schema_expected": _columns(resolved.schema_after),
        "row_level_issues_total": execution.row_issues.height,
    }
    return Envelope(
        status="success",
        agent_id=AGENT_ID,
        agent_name=AGENT_NAME,
        summary_metrics=metrics,
        data=data,
        alerts=alerts,
        issues=issues,
        row_level_issues=inline_row_level_issues(execution.row_issues),
        issue_summary=build_issue_summary(issues, execution.row_issues),
        recommendations=recommendations,
        executive_summary=_cards(metrics, sentences),
    )


# A derive's rows left empty by arithmetic, per step detail: (detail key, alert id suffix, kind, what happened, check).
_EMPTIED_BY_ARITHMETIC = (
    ("divisions_by_zero", "division-by-zero", "division_by_zero", "divide by zero", "Check the divisor"),
    (
        "overflows_to_infinity",
        "float-overflow",
        "number_overflow",
        "came out beyond the largest decimal number (about 1.8e308)",
        "Check the scale of the operands",
    ),
)


def _findings(steps: list[dict[str, Any]], rows_out: int) -> tuple[list[Alert], list[Issue], list[Recommendation]]:
    """A low alert per inexact column reading, a medium one per cast that emptied values and per derived column
    whose division by zero left rows empty, a high one when no row is left; an issue and a recommendation for each
    cast that emptied values."""
    alerts: list[Alert] = []
    issues: list[Issue] = []
    recommendations: list[Recommendation] = []
    for step in steps:
        number = step["step"]
        for position, note in enumerate(step.get("notes") or []):
            alerts.append(
                Alert(
                    f"transform-step{number}-reading{position + 1}",
                    "low",
                    "column_resolution",
                    f"Step {number}: {note}",
                    1,
                    "Check that this is the column you meant; the recipe records the exact name",
                )
            )
        for column, found in (step["details"].get("by_column") or {}).items():
            emptied = found.get("values_not_converted") if isinstance(found, dict) else None
            if not emptied:
                continue
            message = f"Step {number}: {emptied:,} values of '{column}' could not be converted and were emptied"
            alerts.append(
                Alert(
                    f"transform-step{number}-emptied-{column}",
                    "medium",
                    "conversion",
                    message,
                    1,
                    "Review them in the row-level issues",
                    column,
                )
            )
            issues.append(
                Issue(
                    f"transform-step{number}-emptied-{column}",
                    AGENT_ID,
                    column,
                    "values_not_converted",
                    "medium",
                    message,
                    {"count": emptied, "examples": found.get("examples", []), "step": number},
                )
            )
            recommendations.append(
                Recommendation(
                    f"transform-step{number}-review-{column}",
                    AGENT_ID,
                    column,
                    "medium",
                    f"Correct the {emptied:,} values of '{column}' that are not {found['target']} values at the "
                    "source, or fill them",
                    "this week",
                    0.5,
                )
            )
        for key, suffix, kind, what, check in _EMPTIED_BY_ARITHMETIC:
            count = step["details"].get(key)
            if not count:
                continue
            column = step["operation"]["column"]
            one = count == 1
            alerts.append(
                Alert(
                    f"transform-step{number}-{suffix}",
                    "medium",
                    kind,
                    f"Step {number}: {count:,} {'row' if one else 'rows'} of '{column}' "
                    f"({step['operation']['expression']}) {what} and {'was' if one else 'were'} left empty",
                    1,
                    f"{check}; to give those rows a value, wrap the expression in coalesce(..., 0)",
                    column,
                )
            )
    if rows_out == 0 and steps:
        alerts.append(
            Alert(
                "transform-no-rows-left",
                "high",
                "rows",
                "No row is left after the transformations",
                0,
                "Check the filter conditions (an empty cell matches only 'is null')",
            )
        )
    return alerts, issues, recommendations


def _cards(metrics: dict[str, Any], sentences: list[str]) -> list[SummaryCard]:
    rows_in, rows_out = metrics["rows_in"], metrics["rows_out"]
    return [
        SummaryCard(
            "transform-operations",
            "Operations applied",
            f"{metrics['operations_applied']:,}",
            "info",
            "; ".join(sentences[:3]) + ("; …" if len(sentences) > 3 else ""),  # noqa: PLR2004
        ),
        SummaryCard(
            "transform-rows",
            "Rows",
            f"{rows_in:,} → {rows_out:,}",
            "warning" if rows_out == 0 and rows_in else "info",
            f"{metrics['rows_removed']:,} rows removed",
        ),
        SummaryCard(
            "transform-cells",
            "Cells changed",
            f"{metrics['cells_changed']:,}",
            "info",
            "values filled, converted, trimmed, recased, replaced or derived",
        ),
        SummaryCard(
            "transform-columns",
            "Columns",
            f"{metrics['columns_in']:,} → {metrics['columns_out']:,}",
            "info",
            f"{metrics['columns_added']:,} added, {metrics['columns_removed']:,} removed, "
            f"{metrics['columns_renamed']:,} renamed",
        ),
    ]
