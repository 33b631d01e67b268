"""outlier-remover on a primary too large for memory: the chain gives a lazy scan of a Parquet spill
(``inputs.scan``), and the agent must return what its in-memory run returns on the same data (envelope, removed
rows, row-level issues) with its output as a lazy plan over the scan (``result.scan``, ``result.rows``) holding no
data in memory, for every detection method and treatment."""

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

from agents.clean import outliers
from agents.envelope import AgentResult
from agents.errors import InvalidParametersError
from agents.params.outlier_remover import OutlierRemoverParams
from tests.agents.clean_support import ROW, SHORT_PROPERTY_SETTINGS, indexed
from tests.agents.streamed_support import (
    assert_same_streamed_run,
    run_in_memory,
    run_streamed,
)
from tests.agents.test_nulls_streamed import chunked_frame
from tests.agents.test_outliers import ON_THE_BOUND, outlier_frame


def in_memory(frame: pl.DataFrame, params: OutlierRemoverParams) -> AgentResult:
    return run_in_memory(outliers.run, frame, params)


def streamed(
    frame: pl.DataFrame, params: OutlierRemoverParams, tmp_path: Path, row_group: int | None = 7
) -> AgentResult:
    return run_streamed(outliers.run, frame, params, tmp_path, row_group)


def assert_same_run(frame: pl.DataFrame, params: OutlierRemoverParams, tmp_path: Path) -> AgentResult:
    return assert_same_streamed_run(outliers.run, frame, params, tmp_path, 7)


FRAME, _ = outlier_frame()
METHODS = ["iqr", "z_score", "percentile"]
STRATEGIES = ["flag", "remove", "impute_mean", "impute_median"]
SMALL = indexed(
    {"a": [1, 2, 3, 4, 100, None], "b": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], "c": [None] * 6, "t": list("uvwxyz")},
    [2, 4, 6, 8, 10, 12],
    {"c": pl.Float64},
)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_streamed_run_returns_the_in_memory_result(method: str, strategy: str, tmp_path: Path) -> None:
    params = OutlierRemoverParams(detection_method=method, removal_strategy=strategy)  # type: ignore[arg-type]
    result = assert_same_run(FRAME, params, tmp_path)
    assert result.envelope.summary_metrics["original_outliers"] > 0


@pytest.mark.parametrize(
    ("frame", "params"),
    [
        (SMALL, {}),
        (SMALL, {"removal_strategy": "remove", "detection_method": "z_score", "z_threshold": 1.5}),
        (SMALL, {"removal_strategy": "impute_median", "columns": ["a"]}),
        (FRAME, {"removal_strategy": "remove", "columns": ["count"], "iqr_multiplier": 0.5}),
        (FRAME, {"removal_strategy": "impute_mean", "lower_percentile": 10, "upper_percentile": 60}),
        (SMALL.head(1), {"removal_strategy": "remove"}),
        (SMALL.clear(), {"removal_strategy": "remove"}),
        (SMALL.select(ROW, "t"), {"removal_strategy": "remove"}),
        (ON_THE_BOUND, {"removal_strategy": "remove"}),
        (ON_THE_BOUND.with_columns(-pl.col("v")), {}),
    ],
)
def test_streamed_edge_cases(frame: pl.DataFrame, params: dict[str, Any], tmp_path: Path) -> None:
    assert_same_run(frame, OutlierRemoverParams.model_validate(params), tmp_path)


def test_streamed_outlier_never_reads_as_on_its_bound(tmp_path: Path) -> None:
    """QA5 D3 streamed: the bound rounding would print equal to the outlier is printed exactly."""
    result = assert_same_run(ON_THE_BOUND, OutlierRemoverParams(removal_strategy="remove"), tmp_path)
    assert result.removed is not None
    assert result.removed["reason"].to_list() == ["outlier in v: 14.015 outside [3.815, 14.014999999999999] (iqr)"]


def test_default_flags_and_changes_nothing(tmp_path: Path) -> None:
    result = assert_same_run(FRAME, OutlierRemoverParams(), tmp_path)
    assert result.scan is not None
    assert_frame_equal(result.scan.collect(), FRAME)
    assert result.removed is not None and result.removed.is_empty()
    assert result.row_level_issues.height == result.envelope.summary_metrics["original_outliers"] > 0
    assert {item["action"] for item in result.envelope.data["proposals"]} == {
        "remove_outlier_rows",
        "impute_outliers_median",
    }


def test_streamed_removal_and_imputation_change_the_data(tmp_path: Path) -> None:
    removed = assert_same_run(FRAME, OutlierRemoverParams(removal_strategy="remove"), tmp_path / "remove")
    assert removed.removed is not None and removed.rows == FRAME.height - removed.removed.height
    assert removed.removed.height == removed.envelope.summary_metrics["rows_with_outliers"] > 0
    assert removed.removed["reason"].str.starts_with("outlier in ").all()
    imputed = assert_same_run(FRAME, OutlierRemoverParams(removal_strategy="impute_mean"), tmp_path / "impute")
    assert imputed.scan is not None
    output = imputed.scan.collect()
    assert output.height == FRAME.height and not output.equals(FRAME)
    assert imputed.envelope.summary_metrics["remaining_outliers"] == 0


def test_streamed_run_rejects_bad_columns(tmp_path: Path) -> None:
    for columns in (["nope"], ["label"]):
        with pytest.raises(InvalidParametersError) as caught:
            streamed(FRAME, OutlierRemoverParams(columns=columns), tmp_path / columns[0])
        assert caught.value.field == "columns"


@pytest.mark.parametrize("strategy", ["flag", "impute_mean"])
def test_bounds_do_not_depend_on_the_chunks(strategy: str, tmp_path: Path) -> None:
    """z-score bounds and the mean of the inliers from a frame of many chunks (a CSV parsed by several threads)
    are those of the same values in one chunk: what the streamed run computes."""
    frame = chunked_frame()
    params = OutlierRemoverParams(detection_method="z_score", removal_strategy=strategy, z_threshold=1.0)  # type: ignore[arg-type]
    assert_same_run(frame, params, tmp_path)


@SHORT_PROPERTY_SETTINGS
@given(
    values=st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([float("inf"), float("nan")]), st.none()),
        max_size=60,
    ),
    integers=st.lists(st.integers(-1000, 1000) | st.none(), min_size=60, max_size=60),
    method=st.sampled_from(METHODS),
    strategy=st.sampled_from(STRATEGIES),
)
def test_streamed_run_matches_in_memory_on_any_values(
    values: list[float | None], integers: list[int | None], method: str, strategy: str
) -> None:
    frame = indexed(
        {"v": values, "n": integers[: len(values)]},
        [int(row) for row in np.cumsum([2] * len(values)) + 5],
        {"v": pl.Float64, "n": pl.Int64},
    )
    params = OutlierRemoverParams(detection_method=method, removal_strategy=strategy)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        assert_same_run(frame, params, Path(folder))


def test_streamed_impute_median_of_large_integers_is_exact(tmp_path: Path) -> None:
    big = 2**60  # not every integer this large is a float
    values = [*(big + i for i in range(1, 9)), -big]  # the inliers' median: big + 4.5, half away from zero
    frame = indexed({"n": values}, list(range(1, len(values) + 1)), {"n": pl.Int64})
    params = OutlierRemoverParams(removal_strategy="impute_median", columns=["n"])
    result = assert_same_run(frame, params, tmp_path)
    assert result.envelope.data["outlier_summary"]["n"]["replacement_value"] == big + 5
    assert result.scan is not None
    assert result.scan.collect()["n"].to_list() == [*values[:-1], big + 5]
