"""null-handler's `column_strategies` mean/median on an integer column: a whole statistic fills as an integer and the
column stays integer (pandas' fillna keeps int64 for a whole fill); only a fraction makes it decimal, filled
unrounded (QA pass 4, the clean side of #7). In memory and streamed alike."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from agents.chain import run_tool
from agents.clean import nulls
from agents.options import RunOptions
from agents.params.null_handler import NullHandlerParams
from tests.agents.clean_support import framed, run_agent

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


@pytest.mark.parametrize(
    ("values", "strategy", "expected", "dtype"),
    [
        ([10, None, 11, 12], "median", [10, 11, 11, 12], pl.Int64),
        ([10, None, 11, 12], "mean", [10, 11, 11, 12], pl.Int64),
        ([10, None, 11, 12, 13], "median", [10.0, 11.5, 11.0, 12.0, 13.0], pl.Float64),
        ([1, None, 2, 2], "mean", [1.0, 5 / 3, 2.0, 2.0], pl.Float64),
    ],
)
def test_a_whole_statistic_keeps_the_column_integer(
    values: list[int | None], strategy: str, expected: list[float], dtype: pl.DataType
) -> None:
    result = run_agent(nulls, framed({"v": values}), NullHandlerParams(column_strategies={"v": strategy}))
    assert result.frame is not None
    assert result.frame["v"].dtype == dtype and result.frame["v"].to_list() == expected
    text = str(result.envelope.data)
    assert ("is now a decimal column" in text) == (dtype == pl.Float64), text


@pytest.mark.parametrize("mode", MODES)
def test_the_clean_chain_writes_the_whole_fill_bare(tmp_path: Path, mode: str) -> None:
    source = tmp_path / "primary.csv"
    source.write_text("id,v\n1,10\n2,\n3,11\n4,12\n")
    out = tmp_path / "out"
    out.mkdir()
    parameters = {"null-handler": {"column_strategies": {"v": "median"}}}
    result = run_tool("clean-my-data", [], {"primary.csv": source}, parameters, out, lambda *_: None,
                      run_options=MODES[mode])  # fmt: skip
    assert result["status"] == "success"
    assert (out / "cleaned_data.csv").read_text().splitlines()[1:] == ["1,10", "2,11", "3,11", "4,12"]
