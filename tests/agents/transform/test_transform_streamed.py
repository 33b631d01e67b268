"""The transformer on a primary too large for memory: the chain gives a lazy scan of a Parquet spill (``inputs.scan``)
and a work directory, and the agent must return what the in-memory run returns on the same data (the envelope, the
step records, the recipe, the row-level issues, the layouts), its new data as a lazy plan over its own spills under
the work directory (``result.scan``, ``result.rows``) instead of a frame, and without holding the data in a cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from agents import external
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult, Progress
from agents.errors import InvalidParametersError
from agents.layouts import TextLayout
from agents.params.transformer import TransformerParams
from agents.transform import execute, transformer
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


# ---------------------------------------------------------------------------------------------------------
# sort and deduplicate in buckets (agents.external), forced by a tiny bucket size


BUCKETS = 7


@dataclasses.dataclass
class Bucketed:
    """What the external sort and deduplicate returned (None: the data fitted one bucket and Polars ran it)."""

    sorts: list[tuple[pl.LazyFrame, int] | None] = dataclasses.field(default_factory=list)
    duplicates: list[pl.Series | None] = dataclasses.field(default_factory=list)


@pytest.fixture
def bucketed(monkeypatch: pytest.MonkeyPatch) -> Callable[[pl.DataFrame], Bucketed]:
    """Sets the bucket size so that ``frame``'s data fills about ``BUCKETS`` buckets, and records what the external
    operations return."""

    def arm(frame: pl.DataFrame) -> Bucketed:
        monkeypatch.setattr(external, "BUCKET_BYTES", math.ceil(frame.estimated_size() / BUCKETS))
        seen = Bucketed()

        def sort(*args: Any) -> tuple[pl.LazyFrame, int] | None:
            seen.sorts.append(external.sort_external(*args))
            return seen.sorts[-1]

        def duplicates(*args: Any) -> pl.Series | None:
            seen.duplicates.append(external.duplicates_external(*args))
            return seen.duplicates[-1]

        monkeypatch.setattr(execute, "sort_external", sort)
        monkeypatch.setattr(execute, "duplicates_external", duplicates)
        return seen

    return arm


def keyed(rows: int = 2000) -> pl.DataFrame:
    """Sort and dedupe keys of every comparable kind with few distinct values (ties), empty values in each, text
    beyond ASCII and the empty text, NaN and both zeros; the row index with gaps and out of order."""
    rng = np.random.default_rng(7)

    def pick(values: list[Any]) -> list[Any]:
        return [values[i] for i in rng.integers(0, len(values), rows)]

    day = dt.date(2024, 2, 28)
    moment = dt.datetime(2024, 3, 1, 12, 30)
    frame = pl.DataFrame(
        {
            "n": pick([3, -1, 0, 7, None, 3, 12]),
            "f": pick([0.5, -0.0, 0.0, float("nan"), None, -2.25, 1e9]),
            "s": pick(["b", "a", "", "Ä", "é", "ab", None, "B", "a "]),
            "d": pick([day, day + dt.timedelta(days=2), None, dt.date(1999, 12, 31)]),
            "t": pick([moment, None, moment + dt.timedelta(microseconds=1), dt.datetime(2000, 1, 1)]),
            "b": pick([True, False, None]),
            "u": [int(v) for v in rng.integers(0, 10**6, rows)],
        },
        schema_overrides={"n": pl.Int32, "t": pl.Datetime("us")},
    )
    index = rng.permutation(rows) * 3 + 1
    return frame.with_columns(pl.Series(ROW, index, dtype=pl.Int64))


SORTS: dict[str, dict[str, Any]] = {
    "number then text descending": {"by": [{"column": "n"}, {"column": "s", "descending": True}]},
    "text, date descending, boolean; empty first": {
        "by": [{"column": "s"}, {"column": "d", "descending": True}, {"column": "b"}],
        "nulls_last": False,
    },
    "boolean descending, datetime, float descending": {
        "by": [{"column": "b", "descending": True}, {"column": "t"}, {"column": "f", "descending": True}]
    },
    "float with NaN and both zeros": {"by": [{"column": "f"}]},
    "float descending, empty first": {"by": [{"column": "f", "descending": True}], "nulls_last": False},
    "date descending then number": {"by": [{"column": "d", "descending": True}, {"column": "n"}]},
    "all keys descending, empty first": {
        "by": [{"column": name, "descending": True} for name in ("b", "d", "s", "n")],
        "nulls_last": False,
    },
    "unique key": {"by": [{"column": "u", "descending": True}]},
}


@pytest.mark.parametrize("name", list(SORTS))
def test_sort_in_buckets_as_in_memory(name: str, tmp_path: Path, bucketed: Callable[[pl.DataFrame], Bucketed]) -> None:
    frame = keyed()
    seen = bucketed(frame)
    result = assert_same_run(frame, [{"op": "sort", **SORTS[name]}], tmp_path)
    assert len(seen.sorts) == 1 and seen.sorts[0] is not None  # sorted in buckets, not by Polars
    assert result.envelope.data["steps"][0]["details"]["rows_moved"] == seen.sorts[0][1] > 0
    buckets = list((tmp_path / "work" / transformer.SPILL_FOLDER / "spill1").glob("*.parquet"))
    assert len(buckets) > 2  # the step's spill: a folder of sorted buckets


def test_sort_of_equal_keys_keeps_the_order(tmp_path: Path, bucketed: Callable[[pl.DataFrame], Bucketed]) -> None:
    """Skew: one key value for every row puts every row in one bucket, sorted in memory; the order is kept."""
    frame = keyed().with_columns(pl.lit("same").alias("s"))
    seen = bucketed(frame)
    result = assert_same_run(frame, [{"op": "sort", "by": [{"column": "s"}]}], tmp_path)
    assert seen.sorts[0] is not None and seen.sorts[0][1] == 0
    assert result.scan is not None and result.scan.collect()[ROW].to_list() == frame[ROW].to_list()


DEDUPLICATIONS: dict[str, dict[str, Any]] = {
    "first on one column": {"columns": ["s"]},
    "last on one column": {"columns": ["s"], "keep": "last"},
    "last on a float column (NaN, both zeros)": {"columns": ["f"], "keep": "last"},
    "first on several columns": {"columns": ["n", "f", "b"]},
    "last on several columns": {"columns": ["d", "t", "b", "s"], "keep": "last"},
    "first on every column": {},
    "last on every column": {"keep": "last"},
}


@pytest.mark.parametrize("name", list(DEDUPLICATIONS))
def test_deduplicate_in_buckets_as_in_memory(
    name: str, tmp_path: Path, bucketed: Callable[[pl.DataFrame], Bucketed]
) -> None:
    """After a sort (rows no longer in row-index order) and on keys with empty values, NaN and both zeros."""
    frame = keyed().drop("u")
    frame = pl.concat([frame, frame.head(500), frame.tail(300)])  # whole rows repeated
    frame = frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(ROW))
    seen = bucketed(frame.select(DEDUPLICATIONS[name].get("columns") or frame.drop(ROW).columns))
    operations = [{"op": "sort", "by": [{"column": "f"}]}, {"op": "deduplicate", **DEDUPLICATIONS[name]}]
    result = assert_same_run(frame, operations, tmp_path)
    assert len(seen.duplicates) == 1 and seen.duplicates[0] is not None  # deduplicated in buckets
    removed = result.envelope.data["steps"][1]["rows_removed"]
    assert removed == seen.duplicates[0].len() > 0


def test_recipe_in_buckets_as_in_memory(tmp_path: Path, bucketed: Callable[[pl.DataFrame], Bucketed]) -> None:
    """Steps before and after the bucketed ones, on the shared test data; no partition left behind."""
    seen = bucketed(generated())
    operations: list[dict[str, Any]] = [
        {"op": "filter", "action": "remove", "where": {"column": "country", "cmp": "is_null"}},
        {"op": "deduplicate", "columns": ["email"], "keep": "last"},
        {"op": "sort", "by": [{"column": "country"}, {"column": "age", "descending": True}], "nulls_last": False},
        {"op": "fill_nulls", "columns": ["email"], "strategy": "previous"},
        {"op": "sort", "by": [{"column": "signup", "descending": True}, {"column": "active"}]},
        {"op": "deduplicate"},
        {"op": "derive", "column": "total", "expression": "round(price * qty, 2)"},
    ]
    assert_same_run(generated(), operations, tmp_path)
    assert len(seen.sorts) == 2 and all(found is not None for found in seen.sorts)
    assert len(seen.duplicates) == 2 and all(found is not None for found in seen.duplicates)
    left = {path.name for path in (tmp_path / "work" / transformer.SPILL_FOLDER).iterdir()}
    assert left == {"spill7.parquet"}  # the derive's spill only: the sorted buckets and the partitions are gone


def test_sort_by_a_key_without_literal_order_is_left_to_polars(
    tmp_path: Path, bucketed: Callable[[pl.DataFrame], Bucketed]
) -> None:
    """A categorical key (or a column named twice) is not cut into ranges: Polars sorts it, as before."""
    frame = keyed().with_columns(pl.col("s").cast(pl.Categorical).alias("c"))
    seen = bucketed(frame)
    operations = [{"op": "sort", "by": [{"column": "c"}, {"column": "n", "descending": True}]}]
    assert_same_run(frame, operations, tmp_path)
    assert seen.sorts == [None]
