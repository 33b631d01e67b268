"""QA pass 7, #7: ``fill missing id with median`` on an integer column without an empty cell filled nothing yet made
it Float64, rewriting every value (1 -> 1.0: cells_changed = rows), and a whole-number median (11) did the same to a
column with an empty cell (10 -> 10.0). A fill that fills no cell now changes nothing (dtype and values kept,
cells_changed 0), a whole-number mean or median fills an integer column as a whole number in its own dtype, and only a
fraction that fills at least one cell makes the column Float64 (tests/agents/transform/test_fill_statistics.py), as
pandas' ``fillna`` leaves an int64 column without NaN as it is. In memory, streamed and through the chain's CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.options import RunOptions
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from agents.transform.resolve import resolve
from tests.agents.transform.test_transform_streamed import assert_same_run

ROW = ROW_INDEX_COLUMN
TOOL = "transform-my-data"
CSV = "id,v\n1,10\n2,\n3,11\n4,12\n"
OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def numbers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW: [1, 2, 3, 4, 5],
            "id": [1, 2, 3, 4, 6],  # no empty cell; median 3, mean 3.2
            "v": [10, None, 11, 12, None],  # median 11, mean 11
            "odd": pl.Series([7, None, 8, 9, 9], dtype=pl.Int16),  # median 8.5
            "small": pl.Series([7, None, 8, 8, None], dtype=pl.UInt8),  # median 8
            "empty": pl.Series([None] * 5, dtype=pl.Int32),
        }
    )


def run_commands(frame: pl.DataFrame, *commands: str) -> AgentResult:
    params = TransformerParams.model_validate({"commands": list(commands)})
    return transformer.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, message: None)


def pandas_statistic(values: list[Any], strategy: str) -> float:
    series = pd.Series(values, dtype="float64")
    return float(series.mean() if strategy == "mean" else series.median())


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_a_fill_that_fills_nothing_changes_nothing(strategy: str) -> None:
    result = run_commands(numbers(), f"fill missing id with {strategy}")
    assert result.frame is not None
    assert result.frame.schema["id"] == pl.Int64 and result.frame["id"].to_list() == [1, 2, 3, 4, 6]
    step = result.envelope.data["steps"][0]
    statistic = pandas_statistic([1, 2, 3, 4, 6], strategy)
    assert step["cells_changed"] == step["rows_affected"] == step["details"]["values_filled"] == 0
    assert step["columns_retyped"] == {} and "columns_made_decimal" not in step["details"]
    assert "decimal" not in step["sentence"] and step["sentence"].startswith("Filled 0 missing id values with the")
    assert step["details"]["fill_values"] == {"id": statistic}
    assert result.envelope.summary_metrics["cells_changed"] == 0


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_a_whole_statistic_keeps_the_integer_column(strategy: str) -> None:
    result = run_commands(numbers(), f"fill missing v with {strategy}", "fill missing small with median")
    frame = result.frame
    assert frame is not None
    value = pandas_statistic([10, None, 11, 12, None], strategy)
    assert value == 11 and frame.schema["v"] == pl.Int64
    assert frame["v"].to_list() == [10, 11, 11, 12, 11]
    assert frame.schema["small"] == pl.UInt8 and frame["small"].to_list() == [7, 8, 8, 8, 8]
    first, second = result.envelope.data["steps"]
    assert first["sentence"] == f"Filled 2 missing v values with the {strategy} (11)"
    assert first["cells_changed"] == first["rows_affected"] == 2 and first["columns_retyped"] == {}
    assert first["details"]["fill_values"] == {"v": 11} and isinstance(first["details"]["fill_values"]["v"], int)
    assert second["sentence"] == "Filled 2 missing small values with the median (8)" and second["cells_changed"] == 2


def test_only_a_fraction_that_fills_a_cell_makes_the_column_decimal() -> None:
    result = run_commands(numbers(), "fill missing odd, id, empty with median")
    frame = result.frame
    assert frame is not None
    assert frame.schema["odd"] == pl.Float64 and frame["odd"].to_list() == [7.0, 8.5, 8.0, 9.0, 9.0]
    assert frame.schema["id"] == pl.Int64 and frame["id"].to_list() == [1, 2, 3, 4, 6]
    assert frame.schema["empty"] == pl.Int32 and frame["empty"].null_count() == 5  # no value to fill with
    step = result.envelope.data["steps"][0]
    assert step["sentence"] == (
        "Filled 1 missing odd value with the median (8.5); 0 missing id values with the median (3); "
        "0 missing empty values with the median (empty); odd is now a decimal column (whole numbers written 1.0)"
    )
    assert step["details"]["columns_made_decimal"] == ["odd"]
    assert step["columns_retyped"] == {"odd": {"before": "Int16", "after": "Float64"}}
    assert step["cells_changed"] == 5 and step["rows_affected"] == 1  # the 1 filled, and 7, 8, 9, 9 written 7.0...


def test_resolution_predicts_at_most_a_decimal_column() -> None:
    """Resolution does not see the data: it says Float64, what the fill may make (as ``number`` says Float64)."""
    schema = {name: str(dtype) for name, dtype in numbers().schema.items() if name != ROW}
    params = TransformerParams.model_validate({"commands": ["fill missing v with median"]})
    assert resolve(params, schema).schema_after["v"] == "Float64"
    expected = run_commands(numbers(), "fill missing v with median").envelope.data["schema_after"]
    assert {item["name"]: item["dtype"] for item in expected}["v"] == "Int64"


def test_streamed_keeps_the_integer_columns_as_in_memory(tmp_path: Path) -> None:
    commands = ["fill missing id, v with median", "fill missing odd, small with median", "fill missing v with mean"]
    schema = {name: str(dtype) for name, dtype in numbers().schema.items() if name != ROW}
    operations = resolve(TransformerParams.model_validate({"commands": commands}), schema).operations
    result = assert_same_run(numbers(), operations, tmp_path)
    assert result.scan is not None
    written = result.scan.collect()
    assert written.schema["id"] == written.schema["v"] == pl.Int64 and written.schema["small"] == pl.UInt8
    assert written.schema["odd"] == pl.Float64


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_the_written_csv_keeps_every_integer_as_written(tmp_path: Path, mode: str) -> None:
    """The QA case: the CSV a transform writes."""
    primary = tmp_path / "primary.csv"
    primary.write_text(CSV, encoding="utf-8")
    written = {}
    for command in ("fill missing id with median", "fill missing v with median"):
        out = tmp_path / command.split()[2]
        parameters = {"transformer": {"commands": [command]}}
        result = run_tool(
            TOOL, [], {"primary.csv": primary}, parameters, out, lambda *a: None, run_options=OPTIONS[mode]
        )
        json.dumps(result, allow_nan=False)
        assert result["status"] == "success", result["agents"]
        step = result["agents"]["transformer"]["data"]["steps"][0]
        written[command] = ((out / "transformed_data.csv").read_text(encoding="utf-8"), step["cells_changed"])
    assert written["fill missing id with median"] == (CSV, 0)
    assert written["fill missing v with median"] == ("id,v\n1,10\n2,11\n3,11\n4,12\n", 1)
