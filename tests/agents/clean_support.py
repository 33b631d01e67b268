"""What the clean agents' tests share: frames with the chain's row index (starting at 1, with gaps, as after an
earlier agent removed rows), runners that check every envelope's bookkeeping, and the Hypothesis settings and
strategies of the property tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agents.clean import previewer, quarantine, type_fixer
from agents.envelope import (
    REMOVED_ROWS_SCHEMA,
    ROW_INDEX_COLUMN,
    ROW_LEVEL_ISSUE_SCHEMA,
    AgentInputs,
    AgentResult,
    ChainContext,
)
from agents.params.cleanse_previewer import CleansePreviewerParams
from agents.params.field_standardization import FieldStandardizationParams
from agents.params.quarantine_agent import QuarantineAgentParams
from agents.params.type_fixer import TypeFixerParams

ROWS = [1, 2, 5, 6, 9, 10]  # the input file's rows: gaps where an earlier agent removed rows
ROW = ROW_INDEX_COLUMN
Runner = Callable[[AgentInputs, Any, Any], AgentResult]


PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The duplicate, null, outlier and writeback properties run 30 examples each.
SHORT_PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def framed(columns: dict[str, list[Any]], rows: list[int] | None = None, **dtypes: Any) -> pl.DataFrame:
    index = rows or list(range(3, 3 + 2 * len(next(iter(columns.values()))), 2))
    return pl.DataFrame({ROW_INDEX_COLUMN: index, **columns}, schema_overrides={ROW_INDEX_COLUMN: pl.Int64, **dtypes})


def run_agent(module: Any, frame: pl.DataFrame, params: BaseModel) -> AgentResult:
    fractions: list[float] = []
    result: AgentResult = module.run(AgentInputs(frame, "primary.csv"), params, lambda f, _m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    envelope = result.envelope.to_dict()
    json.dumps(envelope, allow_nan=False)
    assert envelope["status"] == "success"
    assert dict(result.row_level_issues.schema) == ROW_LEVEL_ISSUE_SCHEMA
    assert envelope["issue_summary"]["total_issues"] == len(envelope["issues"]) + result.row_level_issues.height
    assert envelope["data"]["parameters"] == params.model_dump()
    assert result.frame is not None and result.removed is not None
    assert dict(result.removed.schema) == REMOVED_ROWS_SCHEMA
    return result


def issues_of(result: AgentResult, issue_type: str) -> list[tuple[int, str | None, str | None]]:
    rows = result.row_level_issues.filter(pl.col("issue_type") == issue_type).sort("row_index", "column")
    return list(zip(rows["row_index"], rows["column"], rows["value"], strict=True))


def indexed(data: dict[str, Any], rows: list[int], schema: dict[str, Any] | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(data, schema_overrides=schema or {})
    return frame.insert_column(0, pl.Series(ROW, rows, dtype=pl.Int64))


def run(runner: Runner, frame: pl.DataFrame, params: BaseModel, context: ChainContext | None = None) -> AgentResult:
    seen: list[float] = []
    inputs = AgentInputs(frame, "primary.csv", context=context or ChainContext())
    result = runner(inputs, params, lambda fraction, message: seen.append(fraction))
    assert seen == sorted(seen) and seen[-1] == 1.0
    json.dumps(result.envelope.to_dict(), allow_nan=False)
    assert result.row_level_issues.schema == pl.Schema(ROW_LEVEL_ISSUE_SCHEMA)
    assert result.envelope.data["row_level_issues_total"] == result.row_level_issues.height
    return result


def assert_bookkeeping(before: pl.DataFrame, result: AgentResult) -> None:
    """No rows added; kept and removed rows partition the input's row indices; order and columns kept."""
    assert result.frame is not None and result.removed is not None
    kept = result.frame[ROW].to_list()
    removed = result.removed[ROW].to_list()
    assert result.frame.height <= before.height
    assert set(kept).isdisjoint(removed)
    assert sorted(kept + removed) == sorted(before[ROW].to_list())
    assert kept == [row for row in before[ROW].to_list() if row in set(kept)]
    assert result.frame.schema[ROW] == pl.Int64
    assert result.removed["reason"].null_count() == 0


def reasons(result: AgentResult) -> dict[int, str]:
    assert result.removed is not None
    return dict(result.removed.iter_rows())


TOKENS = [
    "1",
    "2.5",
    "$12",
    "1,234.50",
    "(7)",
    "15%",
    "007",
    "abc",
    "Yes",
    "no",
    "TRUE",
    "2024-01-05",
    "01/31/2024",
    "03/04/2024",
    "Jan 5, 2024",
    "2024-01-05 10:00",
    "  New   York ",
    "new york",
    "NYC",
    "",
    "  ",
    "12 kg",
    "5 LBS",
    "x@y.com",
]
cells = st.one_of(st.none(), st.sampled_from(TOKENS), st.text(max_size=6))
numbers = st.one_of(st.none(), st.integers(-5, 5).map(float), st.floats(-1e6, 1e6, allow_nan=False, width=32))


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    n = draw(st.integers(0, 25))
    rows = sorted(draw(st.sets(st.integers(1, 10_000), min_size=n, max_size=n)))
    return (
        framed(
            {
                "a": draw(st.lists(cells, min_size=n, max_size=n)),
                "b": draw(st.lists(cells, min_size=n, max_size=n)),
                "x": draw(st.lists(numbers, min_size=n, max_size=n)),
            },
            rows,
            a=pl.String,
            b=pl.String,
            x=pl.Float64,
        )
        if n
        else pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64, "a": pl.String, "b": pl.String, "x": pl.Float64})
    )


def params_for(module: Any, data: st.DataObject) -> BaseModel:
    if module is quarantine:
        return QuarantineAgentParams.model_validate(
            {
                "required_fields": data.draw(st.sampled_from([[], ["a"], ["a", "x"]])),
                "range_constraints": data.draw(st.sampled_from([{}, {"x": {"min": -1, "max": 1}}, {"b": {"min": 0}}])),
                "format_constraints": data.draw(st.sampled_from([{}, {"b": "email"}, {"a": r"\d+"}, {"a": "date"}])),
                "expected_schema": {
                    "a": data.draw(st.sampled_from(["integer", "float", "boolean", "date", "datetime"]))
                },
            }
        )
    if module is previewer:
        return CleansePreviewerParams()
    if module is type_fixer:
        return TypeFixerParams(preserve_mixed_types=data.draw(st.booleans()))
    return standardization_params(data)


def standardization_params(data: st.DataObject) -> FieldStandardizationParams:
    return FieldStandardizationParams.model_validate(
        {
            "case_strategy": data.draw(st.sampled_from(["lowercase", "uppercase", "titlecase", "none"])),
            "target_date_format": data.draw(st.sampled_from(["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d %B %Y"])),
            "synonym_mappings": {"a": {"NYC": "New York", "ny": "New York", "Yes": "Y"}},
            "unit_standardization": True,
            "unit_mappings": {"b": {"kg": {"factor": 2.20462, "target_unit": "lbs"}}},
        }
    )


names = st.sampled_from(["Ann", "ann", " ann ", "Bob", "BOB", None])
emails = st.sampled_from(["a@x.com", "A@X.com", "b@y.org", "b@y.org ", None])
ids = st.sampled_from([1, 2, 3, None])
amounts = st.sampled_from([1.0, 2.5, 100.0, -3.0, None])


@st.composite
def messy_frames(draw: st.DrawFn) -> pl.DataFrame:
    rows = draw(st.lists(st.tuples(ids, names, emails, amounts), max_size=24))
    gaps = draw(st.lists(st.integers(1, 4), min_size=len(rows), max_size=len(rows)))
    index = [int(value) for value in np.cumsum(gaps) + 9] if rows else []
    columns: list[list[Any]] = [[row[position] for row in rows] for position in range(4)]
    return indexed(
        {"id": columns[0], "name": columns[1], "email": columns[2], "amount": columns[3]},
        index,
        {"id": pl.Int64, "name": pl.String, "email": pl.String, "amount": pl.Float64},
    )
