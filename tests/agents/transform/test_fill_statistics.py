"""``fill ... with mean`` / ``median`` fill the statistic as it is (QA pass 3, #4): on an integer column the mean of
1, 2 and 100 is 34.333..., not 34, and the median of an even count may be x.5. The column then becomes Float64, as
pandas' ``fillna`` of the statistic and Polars' ``fill_null`` make it; resolution predicts it, the sentence says it,
and clean-my-data's null-handler follows the same rule (tests/agents/test_nulls.py). A whole-number statistic, or a
column without an empty cell, keeps the integer column (QA pass 7: test_fill_keeps_integers.py). ``with constant X``
and ``with value X`` fill X (QA #10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from agents.transform.resolve import resolve
from tests.agents.transform.test_transform_streamed import assert_same_run

ROW = ROW_INDEX_COLUMN


def numbers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW: [1, 2, 3, 4, 5],
            "q": [1, 2, None, 100, None],
            "even": [1, 2, None, 3, 4],
            "small": pl.Series([7, None, 8, 8, None], dtype=pl.Int16),
            "name": ["a", None, "c", None, "e"],
        }
    )


def run_commands(frame: pl.DataFrame, *commands: str) -> AgentResult:
    params = TransformerParams.model_validate({"commands": list(commands)})
    return transformer.run(AgentInputs(frame, "primary.csv"), params, lambda fraction, message: None)


def operations_of(*commands: str) -> list[dict[str, Any]]:
    schema = {name: str(dtype) for name, dtype in numbers().schema.items() if name != ROW}
    return resolve(TransformerParams.model_validate({"commands": list(commands)}), schema).operations


def pandas_filled(values: list[Any], strategy: str) -> list[float]:
    series = pd.Series(values, dtype="float64")
    return series.fillna(series.mean() if strategy == "mean" else series.median()).tolist()


def test_the_mean_of_an_integer_column_is_filled_as_it_is() -> None:
    result = run_commands(numbers(), "fill missing q with mean")
    frame = result.frame
    assert frame is not None
    assert frame["q"].dtype == pl.Float64
    assert frame["q"].to_list() == pytest.approx(pandas_filled([1, 2, None, 100, None], "mean"))
    assert frame["q"][2] == pytest.approx(34.333333333333336)  # was 34
    step = result.envelope.data["steps"][0]
    assert step["sentence"] == (
        "Filled 2 missing q values with the mean (34.33333333); q is now a decimal column (whole numbers written 1.0)"
    )
    assert step["columns_retyped"] == {"q": {"before": "Int64", "after": "Float64"}}
    assert step["rows_affected"] == 2 and step["details"]["values_filled"] == 2
    assert step["cells_changed"] == 5  # the 2 filled, and 1, 2, 100 now written 1.0, 2.0, 100.0
    assert step["details"]["fill_values"] == {"q": pytest.approx(103 / 3)}
    assert step["details"]["columns_made_decimal"] == ["q"]


def test_the_median_of_an_even_count_keeps_its_half() -> None:
    frame = run_commands(numbers(), "fill missing even with the median", "fill missing small with median").frame
    assert frame is not None
    assert frame["even"].to_list() == pandas_filled([1, 2, None, 3, 4], "median") == [1.0, 2.0, 2.5, 3.0, 4.0]
    # a whole median (8) fills as a whole number: the column stays Int16 (QA pass 7, test_fill_keeps_integers.py)
    assert frame["small"].dtype == pl.Int16 and frame["small"].to_list() == [7, 8, 8, 8, 8]


def test_resolution_predicts_the_decimal_column() -> None:
    schema = {"q": "Int64", "price": "Float64", "n": "UInt8"}
    params = TransformerParams.model_validate(
        {"commands": ["fill missing q, n with mean", "fill missing price with median"]}
    )
    assert resolve(params, schema).schema_after == {"q": "Float64", "price": "Float64", "n": "Float64"}
    result = run_commands(numbers(), "fill missing q with mean")
    expected = result.envelope.data["schema_expected"]
    assert expected == result.envelope.data["schema_after"]


def test_mode_previous_and_constants_keep_the_integer_column() -> None:
    frame = run_commands(
        numbers(), "fill missing q with the most frequent value", "fill missing even with 0", "forward fill small"
    ).frame
    assert frame is not None
    assert frame["q"].dtype == frame["even"].dtype == pl.Int64 and frame["small"].dtype == pl.Int16
    assert frame["q"].to_list() == [1, 2, 1, 100, 1]


def test_streamed_fills_the_same_decimal_values(tmp_path: Path) -> None:
    operations = operations_of("fill missing q, even with mean", "fill missing small with median")
    result = assert_same_run(numbers(), operations, tmp_path)
    assert result.scan is not None
    assert result.scan.collect()["q"].to_list() == pytest.approx(pandas_filled([1, 2, None, 100, None], "mean"))


@pytest.mark.parametrize(
    "command",
    [
        "fill missing name with constant Unknown",
        "fill missing name with value Unknown",
        "fill missing name with the value of Unknown",
    ],
)
def test_with_constant_fills_the_value_not_the_phrase(command: str) -> None:
    result = run_commands(numbers(), command)
    assert result.frame is not None and result.frame["name"].to_list() == ["a", "Unknown", "c", "Unknown", "e"]
    assert result.envelope.data["steps"][0]["sentence"] == "Filled 2 missing name values with Unknown"


def test_with_constant_fills_numbers_and_a_quoted_phrase_stays_text() -> None:
    frame = run_commands(numbers(), "fill missing q with constant 0", "fill missing name with 'value Unknown'").frame
    assert frame is not None
    assert frame["q"].to_list() == [1, 2, 0, 100, 0] and frame["q"].dtype == pl.Int64
    assert frame["name"].to_list() == ["a", "value Unknown", "c", "value Unknown", "e"]
