"""The transformer on a primary too large for memory: the chain gives a lazy scan of a Parquet spill (``inputs.scan``)
and a work directory, and the agent must return what the in-memory run returns on the same data (the envelope, the
step records, the recipe, the row-level issues, the layouts), its new data as a lazy plan over its own spills under
the work directory (``result.scan``, ``result.rows``) instead of a frame, and without holding the data in a cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult, Progress
from agents.errors import InvalidParametersError
from agents.layouts import TextLayout
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from tests.agents.transform.test_transformer import RECIPES, SINGLE_OPERATIONS, generated

ROW = ROW_INDEX_COLUMN


def ignore(fraction: float, message: str) -> None:
    pass


def in_memory(
    frame: pl.DataFrame, operations: list[dict[str, Any]], layouts: dict[str, TextLayout] | None = None
) -> AgentResult:
    params = TransformerParams.model_validate({"operations": operations})
    return transformer.run(AgentInputs(frame, "primary.csv", text_layouts=layouts or {}), params, ignore)


def streamed_inputs(frame: pl.DataFrame, tmp_path: Path, layouts: dict[str, TextLayout] | None = None) -> AgentInputs:
    """As the chain gives a large primary: an empty frame of its schema (without the row index), a scan of the data
    written to Parquet, its rows, and a work directory."""
    spill = tmp_path / "spill.parquet"
    frame.write_parquet(spill, mkdir=True)
    return AgentInputs(
        primary=frame.drop(ROW, strict=False).clear(),
        primary_name="primary.csv",
        scan=pl.scan_parquet(spill),
        rows=frame.height,
        work_dir=tmp_path / "work",
        text_layouts=layouts or {},
    )


def streamed(
    frame: pl.DataFrame,
    operations: list[dict[str, Any]],
    tmp_path: Path,
    progress: Progress = ignore,
    layouts: dict[str, TextLayout] | None = None,
) -> AgentResult:
    params = TransformerParams.model_validate({"operations": operations})
    return transformer.run(streamed_inputs(frame, tmp_path, layouts), params, progress)


def envelope_of(result: AgentResult) -> dict[str, Any]:
    envelope = result.envelope.to_dict()
    envelope.pop("execution_time_ms")
    return envelope


def assert_same_run(
    frame: pl.DataFrame,
    operations: list[dict[str, Any]],
    tmp_path: Path,
    layouts: dict[str, TextLayout] | None = None,
) -> AgentResult:
    memory = in_memory(frame, operations, layouts)
    result = streamed(frame, operations, tmp_path, layouts=layouts)
    assert memory.frame is not None and memory.scan is None and memory.rows is None
    assert result.frame is None and result.scan is not None
    assert result.rows == memory.frame.height
    assert_frame_equal(result.scan.collect(), memory.frame)
    assert envelope_of(result) == envelope_of(memory)
    assert json.dumps(envelope_of(result), allow_nan=False)
    assert_frame_equal(result.row_level_issues, memory.row_level_issues)
    assert result.artifacts == memory.artifacts
    return result


@pytest.mark.parametrize("name", list(SINGLE_OPERATIONS))
def test_each_operation_streamed_as_in_memory(name: str, tmp_path: Path) -> None:
    assert_same_run(generated(), [SINGLE_OPERATIONS[name]], tmp_path)


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipes_streamed_as_in_memory(name: str, tmp_path: Path) -> None:
    assert_same_run(generated(), RECIPES[name], tmp_path)


def test_every_kind_of_step_in_one_recipe(tmp_path: Path) -> None:
    operations: list[dict[str, Any]] = [
        {
            "op": "filter",
            "action": "remove",
            "where": {"not": {"column": "country", "cmp": "in", "value": ["US", "CA", "us"]}},
        },
        {"op": "trim", "columns": ["note", "email", "counts"]},
        {"op": "case", "columns": ["country"], "to": "upper"},
        {"op": "replace", "columns": ["note"], "old": "fine", "new": "good"},
        {"op": "cast", "columns": ["counts", "amount", "price"], "to": "number", "on_invalid": "null"},
        {"op": "fill_nulls", "columns": ["age"], "strategy": "mean"},
        {"op": "fill_nulls", "columns": ["price"], "strategy": "median"},
        {"op": "fill_nulls", "columns": ["country", "signup", "active"], "strategy": "mode"},
        {"op": "fill_nulls", "columns": ["email"], "strategy": "previous"},
        {"op": "fill_nulls", "columns": ["amount"], "strategy": "next"},
        {"op": "fill_nulls", "columns": ["note"], "strategy": "constant", "value": "none"},
        {"op": "deduplicate", "columns": ["email"], "keep": "last"},
        {"op": "sort", "by": [{"column": "country"}, {"column": "age", "descending": True}], "nulls_last": False},
        {"op": "derive", "column": "total", "expression": "round(price * qty, 2)"},
        {"op": "rename", "mapping": {"qty": "quantity"}},
        {"op": "drop_columns", "columns": ["flag_text"]},
        {"op": "keep_columns", "columns": ["total", "quantity", "country", "email", "counts", "amount", "age"]},
        {"op": "reorder", "columns": ["total"]},
    ]
    result = assert_same_run(generated(), operations, tmp_path)
    steps = result.envelope.data["steps"]
    by_column = steps[4]["details"]["by_column"]
    assert [by_column[name]["target"] for name in ("counts", "amount", "price")] == ["integer", "float", "float"]
    assert by_column["amount"]["values_not_converted"] > 0 and result.row_level_issues.height > 0
    assert steps[0]["rows_removed"] > 0 and steps[11]["rows_removed"] > 0 and steps[12]["details"]["rows_moved"] > 0


def test_filters_follow_three_valued_logic_streamed(tmp_path: Path) -> None:
    frame = pl.DataFrame({"country": ["US", None, "CA", "us", None], "n": [1, None, 3, 4, 5]})
    conditions = [
        {"op": "filter", "action": "remove", "where": {"column": "country", "cmp": "!=", "value": "US"}},
        {"op": "filter", "action": "keep", "where": {"not": {"column": "n", "cmp": ">", "value": 2}}},
    ]
    for position, operation in enumerate(conditions):
        result = assert_same_run(frame, [operation], tmp_path / str(position))
        assert result.scan is not None
        kept = result.scan.collect()[ROW].to_list()
        assert kept == ([1, 2, 5] if position == 0 else [1])  # an undecided row is neither removed nor kept


def test_row_index_is_numbered_as_in_memory(tmp_path: Path) -> None:
    """Without a row index in the scan, the rows are numbered 1..n (Int64, last column) as ``with_row_index`` does."""
    frame = generated().drop(ROW)
    result = assert_same_run(frame, [{"op": "sort", "by": [{"column": "price"}]}], tmp_path)
    assert result.scan is not None
    output = result.scan.collect()
    assert output.columns[-1] == ROW and output.schema[ROW] == pl.Int64
    assert sorted(output[ROW].to_list()) == list(range(1, frame.height + 1))


def test_cast_number_decides_on_the_streamed_data(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": ["1", "2,000", " 3 "], "b": ["1", "2.5", "NA"], "c": [1.0, 2.0, None]})
    result = assert_same_run(frame, [{"op": "cast", "columns": ["a", "b", "c"], "to": "number"}], tmp_path)
    assert result.scan is not None
    schema = result.scan.collect_schema()
    assert (schema["a"], schema["b"], schema["c"]) == (pl.Int64, pl.Float64, pl.Int64)


def test_fill_mode_ties_to_the_smallest_and_empty_statistics(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "word": ["b", "a", None, "b", "a", None],
            "empty": pl.Series([None] * 6, dtype=pl.Float64),
            "n": [3, 1, None, 1, 3, None],
        }
    )
    operations: list[dict[str, Any]] = [
        {"op": "fill_nulls", "columns": ["word", "n"], "strategy": "mode"},
        {"op": "fill_nulls", "columns": ["empty"], "strategy": "mean"},
    ]
    result = assert_same_run(frame, operations, tmp_path)
    assert result.scan is not None
    output = result.scan.collect()
    assert output["word"].to_list() == ["b", "a", "a", "b", "a", "a"] and output["n"].null_count() == 0
    assert output["empty"].null_count() == 6


def test_dates_read_from_text_keep_their_layout(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"day": [dt.date(2024, 1, 5), None, dt.date(2023, 12, 31)], "other": [dt.date(2020, 2, 29), None, None]}
    )
    layouts = {"day": TextLayout("%d/%m/%Y", "date"), "other": TextLayout("%d.%m.%Y", "date")}
    operations: list[dict[str, Any]] = [
        {"op": "filter", "action": "keep", "where": {"column": "day", "cmp": ">", "value": "2024-01-01"}},
        {"op": "rename", "mapping": {"day": "when"}},
        {"op": "derive", "column": "label", "expression": "concat('on ', when)"},
        {"op": "cast", "columns": ["other"], "to": "text"},
    ]
    result = assert_same_run(frame, operations, tmp_path, layouts)
    assert result.scan is not None and result.scan.collect()["label"].to_list() == ["on 05/01/2024"]
    assert result.artifacts[transformer.TEXT_LAYOUTS_ARTIFACT] == {"when": layouts["day"]}


def test_cast_that_fails_fails_the_streamed_run_the_same_way(tmp_path: Path) -> None:
    operations: list[dict[str, Any]] = [
        {"op": "drop_columns", "columns": ["note"]},
        {"op": "cast", "columns": ["amount"], "to": "number"},
    ]
    with pytest.raises(InvalidParametersError) as memory:
        in_memory(generated(), operations)
    with pytest.raises(InvalidParametersError) as caught:
        streamed(generated(), operations, tmp_path)
    assert caught.value.message == memory.value.message and caught.value.details == memory.value.details


def test_no_row_left(tmp_path: Path) -> None:
    operations = [{"op": "filter", "action": "keep", "where": {"column": "age", "cmp": ">", "value": 1000}}]
    result = assert_same_run(generated(), operations, tmp_path)
    assert result.rows == 0 and result.envelope.alerts[-1].alert_id == "transform-no-rows-left"


def test_steps_write_spills_under_the_work_dir_and_no_cache(tmp_path: Path) -> None:
    """Each step that computes writes a spill under the work directory while the run goes on, and the result is a
    plan over the last one: nothing is held in a cache node, and the input is no longer read."""
    work = tmp_path / "work"
    seen: list[tuple[str, list[str]]] = []

    def progress(fraction: float, message: str) -> None:
        spills = sorted(path.name for path in work.rglob("*.parquet")) if work.exists() else []
        seen.append((message, spills))

    operations: list[dict[str, Any]] = [
        {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
        {"op": "trim", "columns": ["note"]},
        {"op": "sort", "by": [{"column": "age"}]},
        {"op": "rename", "mapping": {"qty": "quantity"}},
    ]
    result = streamed(generated(), operations, tmp_path, progress)
    running = [spills for message, spills in seen if message.startswith("Running step")]
    # a spill per step that computes, written as it runs; the one before it deleted (its queries were collected)
    assert running == [[], ["spill1.parquet"], ["spill2.parquet"], ["spill3.parquet"]]
    assert result.scan is not None
    plan = result.scan.explain()
    assert "CACHE" not in plan.upper() and str(work / transformer.SPILL_FOLDER) in plan
    assert str(tmp_path / "spill.parquet") not in plan  # the output no longer reads the input
    assert result.rows == result.scan.collect().height


def test_a_streamed_primary_needs_a_work_dir(tmp_path: Path) -> None:
    inputs = dataclasses.replace(streamed_inputs(generated(), tmp_path), work_dir=None)
    params = TransformerParams.model_validate({"operations": [{"op": "trim"}]})
    with pytest.raises(ValueError, match="work directory"):
        transformer.run(inputs, params, ignore)
