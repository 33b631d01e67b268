"""null-handler on a primary too large for memory: the chain gives a lazy scan of a Parquet spill (``inputs.scan``),
and the agent must return what its in-memory run returns on the same data (envelope, removed rows, row-level issues)
with its output as a lazy plan over the scan (``result.scan``, ``result.rows``) holding no data in memory.
knn_imputation does not stream: refused, unless the in-memory run would fall back to the median as well."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from agents.clean import nulls
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.params.null_handler import NullHandlerParams
from tests.agents.clean_support import ROW, SHORT_PROPERTY_SETTINGS, indexed, messy_frames
from tests.agents.streamed_support import (
    assert_same_streamed_run,
    ignore,
    run_in_memory,
    run_streamed,
    untimed,
)


def in_memory(frame: pl.DataFrame, params: NullHandlerParams) -> AgentResult:
    return run_in_memory(nulls.run, frame, params)


def streamed(frame: pl.DataFrame, params: NullHandlerParams, tmp_path: Path, row_group: int | None = 3) -> AgentResult:
    return run_streamed(nulls.run, frame, params, tmp_path, row_group)


def assert_same_run(frame: pl.DataFrame, params: NullHandlerParams, tmp_path: Path) -> AgentResult:
    return assert_same_streamed_run(nulls.run, frame, params, tmp_path, 3)


VALUES = [3.0, None, 7.5, 1.0, None, 12.0, 4.0]
COUNTS = [1, None, 2, 2, 8, None, 3]
STRATEGIES = indexed(
    {
        "mean_col": VALUES,
        "median_col": VALUES,
        "int_mean": COUNTS,
        "int_median": COUNTS,
        "mode_col": ["b", "a", None, "b", "a", None, "c"],
        "ffill": [None, 1.0, None, None, 4.0, None, 2.0],
        "bfill": [None, 1.0, None, None, 4.0, None, 2.0],
        "const": [None, "x", None, "y", "z", "w", "v"],
        "when": [None, "2024-01-02", None, "2024-01-04", None, "2024-01-06", "2024-01-07"],
        "complete": [1, 2, 3, 4, 5, 6, 7],
    },
    [10, 11, 15, 16, 30, 31, 40],
).with_columns(pl.col("when").str.to_date())
EVERY_FILL = {
    "column_strategies": {
        "mean_col": "mean",
        "median_col": "median",
        "int_mean": "mean",
        "int_median": "median",
        "mode_col": "mode",
        "ffill": "forward_fill",
        "bfill": "backward_fill",
        "const": "constant",
        "when": "constant",
    },
    "fill_values": {"const": "missing", "when": "2023-05-06"},
}
N = 20
SUGGESTED = indexed(
    {
        "mostly_empty": [1.0] * 5 + [None] * 15,
        "half_empty": [float(i) for i in range(9)] + [None] * 11,
        "half_text": ["a"] * 9 + [None] * 11,
        "skewed": [1.0] * 10 + [10.0] * 8 + [None, None],
        "symmetric": [float(i) for i in range(18)] + [None, None],
        "text": ["u", "v", "v"] + [None] + ["w"] * 16,
        "when": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 1, 20), eager=True).scatter([0, 4], None),
        "flag": [True, None] + [False] * 18,
        "email": [f"user{i}@example.com" for i in range(17)] + [None] * 3,
        "complete": list(range(N)),
    },
    list(range(1, 3 * N, 3)),
)
DROPS = indexed(
    {"a": [1, None, 3, None, 5], "b": ["x", None, "z", "w", None], "c": [1.0, 2.0, float("nan"), 4.0, None]},
    [3, 5, 8, 13, 21],
)
IDENTIFIERS = indexed(
    {
        "email": [f"user{i}@x.com" for i in range(12)] + ["user1@x.com", "user2@x.com", None, None],
        "code": ["a", "b"] * 7 + [None, "a"],
    },
    list(range(2, 34, 2)),
)
CLEAN = indexed({"a": [1, 2, 3], "b": ["x", "y", "z"]}, [1, 2, 3])
CASES: list[tuple[pl.DataFrame, dict[str, Any]]] = [
    (STRATEGIES, {}),  # the default: nothing filled, the suggestions proposed
    (STRATEGIES, EVERY_FILL),
    (STRATEGIES, {**EVERY_FILL, "column_strategies": {"ffill": "drop_rows", "mode_col": "drop_column"}}),
    (STRATEGIES, {"global_strategy": "drop_rows"}),
    (SUGGESTED, {}),
    (SUGGESTED, {"apply_suggested_strategies": True, "knn_max_imputed_rows": 1}),  # knn falls back to the median
    (SUGGESTED, {"column_strategies": {"text": "mean", "flag": "median", "when": "backward_fill"}}),
    (DROPS, {}),
    (DROPS, {"global_strategy": "drop_rows"}),
    (DROPS, {"column_strategies": {"b": "drop_rows", "a": "median", "c": "mean"}}),
    (DROPS, {"column_strategies": {"a": "drop_rows", "b": "drop_rows", "c": "drop_column"}}),
    (IDENTIFIERS, {}),
    (IDENTIFIERS, {"apply_suggested_strategies": True}),
    (CLEAN, {"global_strategy": "drop_rows"}),
    (STRATEGIES.head(1), EVERY_FILL),
    (STRATEGIES.clear(), EVERY_FILL),
    (STRATEGIES.select(ROW), {}),
]


@pytest.mark.parametrize(("frame", "params"), CASES)
def test_streamed_run_returns_the_in_memory_result(frame: pl.DataFrame, params: dict[str, Any], tmp_path: Path) -> None:
    assert_same_run(frame, NullHandlerParams.model_validate(params), tmp_path)


def test_streamed_run_fills_and_drops_as_in_memory(tmp_path: Path) -> None:
    """The cases above do change the data: every fill strategy, and rows and columns dropped."""
    filled = assert_same_run(STRATEGIES, NullHandlerParams.model_validate(EVERY_FILL), tmp_path / "fill")
    assert filled.scan is not None
    output = filled.scan.collect()
    assert output["bfill"].to_list() == [1.0, 1.0, 4.0, 4.0, 4.0, 2.0, 2.0]
    assert output["ffill"].to_list() == [None, 1.0, 1.0, 1.0, 4.0, 4.0, 2.0]
    assert output["int_median"].to_list() == [1, 2, 2, 2, 8, 2, 3]
    assert filled.envelope.summary_metrics["remaining_nulls"] == 1
    assert filled.row_level_issues["issue_type"].unique().to_list() == ["null_imputed"]
    dropped = assert_same_run(DROPS, NullHandlerParams(global_strategy="drop_rows"), tmp_path / "drop")
    assert dropped.removed is not None and dropped.removed.to_dicts() == [
        {ROW: 5, "reason": "row has missing values in: a, b"},
        {ROW: 13, "reason": "row has missing values in: a"},
        {ROW: 21, "reason": "row has missing values in: b, c"},
    ]
    assert dropped.rows == 2


def test_default_run_changes_nothing(tmp_path: Path) -> None:
    result = assert_same_run(SUGGESTED, NullHandlerParams(), tmp_path)
    assert result.scan is not None
    assert_frame_equal(result.scan.collect(), SUGGESTED)
    assert result.removed is not None and result.removed.is_empty() and result.row_level_issues.is_empty()
    assert result.envelope.data["proposals"]


def test_streamed_run_numbers_a_scan_without_row_index(tmp_path: Path) -> None:
    frame = indexed({"a": [1.0, None, 3.0]}, [1, 2, 3])
    spill = tmp_path / "plain.parquet"
    frame.drop(ROW).write_parquet(spill)
    params = NullHandlerParams(column_strategies={"a": "mean"})
    inputs = AgentInputs(frame.drop(ROW).clear(), "primary.csv", scan=pl.scan_parquet(spill))  # rows counted
    result = nulls.run(inputs, params, ignore)
    memory = in_memory(frame.drop(ROW), params)
    assert untimed(result) == untimed(memory) and result.scan is not None and memory.frame is not None
    assert_frame_equal(result.scan.collect(), memory.frame)
    assert result.scan.collect_schema()[ROW_INDEX_COLUMN] == pl.Int64


@pytest.mark.parametrize(
    "values",
    [
        [f"user{i}@x.com" for i in range(12)] + ["user1@x.com", "user2@x.com", None],  # mostly distinct, some twice
        ["a", "b", "a", "b", "a", None, None],  # mostly repeated
        [f"v{i}" for i in range(9)] + [None],  # all distinct
        [None, None],
    ],
)
def test_distinct_counts_of_a_scan_are_n_unique(values: list[str | None], tmp_path: Path) -> None:
    """The identifier-like test reads the distinct ratio: counted by hash on a scan, as ``n_unique``."""
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    frame.write_parquet(tmp_path / "t.parquet", row_group_size=4)
    scan = pl.scan_parquet(tmp_path / "t.parquet")
    non_null = frame.height - frame["t"].null_count()
    assert nulls._streamed_distinct_count(scan, "t", pl.String(), non_null) == frame["t"].n_unique()


def chunked_frame() -> pl.DataFrame:
    """A float column with gaps in 12 chunks, whose mean and deviation differ in the last bit from those of the
    same values in one chunk (as a CSV is parsed by several threads)."""
    rng = np.random.default_rng(3)
    values = pl.Series("x", rng.normal(1000, 300, 3000) * rng.choice([1e-3, 1, 1e3], 3000)).scatter([5, 700], None)
    parts = [values[start : start + 250] for start in range(0, 3000, 250)]
    return (
        pl.DataFrame([pl.concat(parts, rechunk=False)])
        .with_row_index(ROW, offset=1)
        .with_columns(pl.col(ROW).cast(pl.Int64))
    )


def test_moments_do_not_depend_on_the_chunks(tmp_path: Path) -> None:
    frame = chunked_frame()
    moments = [pl.col("x").mean(), pl.col("x").std().alias("s")]
    assert frame.select(moments).row(0) != frame.rechunk().select(moments).row(0)  # the data shows the difference
    assert_same_run(frame, NullHandlerParams(column_strategies={"x": "mean"}), tmp_path)


def test_knn_imputation_is_refused_when_streamed(tmp_path: Path) -> None:
    params = NullHandlerParams(column_strategies={"half_empty": "knn_imputation"})
    assert in_memory(SUGGESTED, params).envelope.data["knn"]["method"] == "exact"
    with pytest.raises(InvalidParametersError, match="knn_imputation needs the whole data in memory; this file is"):
        streamed(SUGGESTED, params, tmp_path)
    suggested = NullHandlerParams(apply_suggested_strategies=True)
    with pytest.raises(InvalidParametersError) as caught:
        streamed(SUGGESTED, suggested, tmp_path / "suggested")
    assert caught.value.agent_id == "null-handler"
    # Without a usable feature the in-memory run takes the median as well, so the streamed run can.
    infinite = SUGGESTED.with_columns(SUGGESTED["half_empty"].fill_null(float("inf")).scatter(12, None))
    assert_same_run(infinite, params, tmp_path / "infinite")


@SHORT_PROPERTY_SETTINGS
@given(
    frame=messy_frames(),
    strategy=st.sampled_from(["column_specific", "drop_rows"]),
    per_column=st.dictionaries(
        st.sampled_from(["id", "name", "email", "amount"]),
        st.sampled_from(
            ["mean", "median", "mode", "forward_fill", "backward_fill", "drop_rows", "drop_column", "knn_imputation"]
        ),
    ),
    suggested=st.booleans(),
)
def test_streamed_run_matches_in_memory_on_messy_frames(
    frame: pl.DataFrame, strategy: str, per_column: dict[str, str], suggested: bool
) -> None:
    params = NullHandlerParams(
        global_strategy=strategy,  # type: ignore[arg-type]
        column_strategies=per_column,  # type: ignore[arg-type]
        apply_suggested_strategies=suggested,
    )
    with tempfile.TemporaryDirectory() as folder:
        try:
            assert_same_run(frame, params, Path(folder))
        except InvalidParametersError as error:
            assert "knn_imputation needs the whole data in memory" in str(error)
            assert in_memory(frame, params).envelope.data["knn"]["method"] in {"exact", "sampled"}
