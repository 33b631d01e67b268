"""The transformer on Decimal columns (Parquet DECIMAL: decimal128(10, 2) money, decimal128(38, 18) amounts, the
types databases and Spark write): casts, conditions, replace and fill values and derived columns are exact, never
read through a float, in memory and streamed alike. A decimal stays a decimal (``number``); ``integer`` refuses the
values that are not whole, as it does for a float column; ``+ - neg abs`` are exact decimals, the other operations
Float64, with the division-by-zero and overflow counts of any decimal number."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.errors import InvalidParametersError
from agents.options import RunOptions
from agents.params.transformer import TransformerParams
from agents.transform import transformer
from tests.agents.transform.test_transform_streamed import streamed_inputs

D = decimal.Decimal
TOOL = "transform-my-data"
MODES = ["memory", "streamed"]
PRICES = [D("0.50"), D("2.50"), None, D("3.00"), D("0.10"), D("100.00")]
AMOUNTS = [D("5.000000000000000005"), D("5"), D("1"), None, D("-3.5"), D("60000000000000000000")]


def ignore(fraction: float, message: str) -> None:
    pass


def quiet(percent: float, agent_id: str | None, message: str) -> None:
    pass


def money() -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW_INDEX_COLUMN: list(range(1, len(PRICES) + 1)),
            "price": pl.Series(PRICES, dtype=pl.Decimal(10, 2)),
            "amt": pl.Series(AMOUNTS, dtype=pl.Decimal(38, 18)),
            "n": [1, 2, 3, 4, 5, 6],
        },
        schema_overrides={ROW_INDEX_COLUMN: pl.Int64},
    )


def run(commands: list[str], mode: str, tmp_path: Path, frame: pl.DataFrame | None = None) -> AgentResult:
    frame = money() if frame is None else frame
    params = TransformerParams.model_validate({"commands": commands})
    inputs = AgentInputs(frame, "primary.csv") if mode == "memory" else streamed_inputs(frame, tmp_path)
    return transformer.run(inputs, params, ignore)


def output(result: AgentResult) -> pl.DataFrame:
    assert result.envelope.status == "success", result.envelope.error
    data = result.envelope.data
    assert data["schema_after"] == data["schema_expected"]  # resolution said the dtypes the run gives
    frame = result.frame if result.frame is not None else result.scan.collect() if result.scan is not None else None
    assert frame is not None
    return frame


@pytest.mark.parametrize("mode", MODES)
def test_cast_to_number_keeps_a_decimal_exactly(mode: str, tmp_path: Path) -> None:
    """It truncated 0.50 to 0 (Int64): a decimal stays the same decimal."""
    frame = output(run(["cast price to number", "cast amt to number"], mode, tmp_path))
    assert frame.schema["price"] == pl.Decimal(10, 2) and frame.schema["amt"] == pl.Decimal(38, 18)
    assert frame["price"].to_list() == PRICES
    assert frame["amt"].to_list() == AMOUNTS


@pytest.mark.parametrize("mode", MODES)
def test_cast_to_integer_refuses_fractions_as_for_a_float_column(mode: str, tmp_path: Path) -> None:
    """It truncated 0.50 and 2.50 and completed; a float column of the same values fails, and so does a decimal."""
    floats = money().with_columns(pl.col("price").cast(pl.Float64))
    for folder, frame, examples in (
        ("float", floats, '"0.5", "2.5", "0.1"'),
        ("decimal", money(), '"0.50", "2.50", "0.10"'),
    ):
        with pytest.raises(InvalidParametersError) as raised:
            run(["cast price to integer"], mode, tmp_path / folder, frame)
        assert str(raised.value).startswith(
            f"3 values of 'price' cannot be converted to integer (for example {examples})"
        )


@pytest.mark.parametrize("mode", MODES)
def test_cast_to_integer_empties_fractions_on_request_and_keeps_whole_values(mode: str, tmp_path: Path) -> None:
    frame = output(run(["convert price to integer and set invalid values to empty"], mode, tmp_path))
    assert frame.schema["price"] == pl.Int64
    assert frame["price"].to_list() == [None, None, None, 3, None, 100]
    whole = money().with_columns(pl.Series("amt", [D(v) for v in (1, 2, -3, 4, 5, 9223372036854775807)],
                                           dtype=pl.Decimal(38, 18)))  # fmt: skip
    assert output(run(["cast amt to integer"], mode, tmp_path / "whole", whole))["amt"].to_list() == [
        1, 2, -3, 4, 5, 9223372036854775807
    ]  # fmt: skip
    beyond = whole.with_columns(pl.Series("amt", [D(2**63)] * 6, dtype=pl.Decimal(38, 0)))
    with pytest.raises(InvalidParametersError, match="6 values of 'amt' cannot be converted to integer"):
        run(["cast amt to integer"], mode, tmp_path / "beyond", beyond)


CONDITIONS: list[tuple[str, list[int]]] = [
    ("keep rows where price between 0.5 and 3", [1, 2, 4]),
    ("keep rows where price between 0.11 and 2.999", [1, 2]),
    ("keep rows where price > 0.5", [2, 4, 6]),
    ("keep rows where price >= 0.505", [2, 4, 6]),
    ("keep rows where price < 0.505", [1, 5]),
    ("keep rows where price <= 0.1", [5]),
    ("keep rows where price == 2.5", [2]),
    ("keep rows where price == 2.505", []),
    ("keep rows where price != 2.505", [1, 2, 4, 5, 6]),
    ("keep rows where price in (0.5, 2.505, 100)", [1, 6]),
    ("remove rows where price not in (0.5, 100)", [1, 3, 6]),
    ("keep rows where price < 1e20", [1, 2, 4, 5, 6]),
    ("keep rows where price > 1e20", []),
    ("keep rows where amt > 5", [1, 6]),
    ("keep rows where amt == 5.000000000000000005", [1]),
    ("keep rows where amt <= 5.0000000000000000049", [2, 3, 5]),
    ("keep rows where amt >= 5.0000000000000000041", [1, 6]),
    # far past every cell, and past what a 100-digit context quantizes (it raised InvalidOperation)
    ("keep rows where price > 1e300", []),
    ("keep rows where price < 1e300", [1, 2, 4, 5, 6]),
    ("keep rows where price > -1e300", [1, 2, 4, 5, 6]),
    ("keep rows where price == 1e300", []),
    ("keep rows where price in (1e300, 0.5)", [1]),
]


@pytest.mark.parametrize("mode", MODES)
def test_conditions_on_decimals_are_exact(mode: str, tmp_path: Path) -> None:
    """They failed: "5.0 does not fit a column of type Decimal(...)"; a value is read exactly (5.000000000000000005
    is not 5), and one with more decimals than the column's scale is decided exactly between its two neighbours."""
    for i, (command, rows) in enumerate(CONDITIONS):
        frame = output(run([command], mode, tmp_path / str(i)))
        assert frame[ROW_INDEX_COLUMN].to_list() == rows, command
        assert frame.schema["price"] == pl.Decimal(10, 2)


@pytest.mark.parametrize("mode", MODES)
def test_replace_and_fill_write_exact_decimals(mode: str, tmp_path: Path) -> None:
    frame = output(run(["replace 100.00 with 0 in price", "fill missing price with 1.25"], mode, tmp_path))
    assert frame["price"].to_list() == [D("0.50"), D("2.50"), D("1.25"), D("3.00"), D("0.10"), D("0.00")]
    frame = output(run(["replace 5.000000000000000005 with 0.000000000000000001 in amt"], mode, tmp_path / "amt"))
    assert frame["amt"].to_list() == [D("0.000000000000000001"), *AMOUNTS[1:]]
    for command in ("fill missing price with 1.255", "replace 0.5 with 0.125 in price"):
        with pytest.raises(InvalidParametersError, match=r"\(more than 2 decimals\)"):
            run([command], mode, tmp_path / "refused")
    for command in ("fill missing price with 1e300", "replace 0.5 with 1e300 in price"):
        with pytest.raises(InvalidParametersError, match=r"out of .*range"):
            run([command], mode, tmp_path / "too-large")


@pytest.mark.parametrize("mode", MODES)
def test_addition_and_subtraction_of_decimals_are_exact_decimals(mode: str, tmp_path: Path) -> None:
    """``price + 1`` failed the transformer (``is_infinite`` on a decimal)."""
    commands = ["add column p2 = price + 1", "add column s = amt - price + n", "add column m = -abs(price)"]
    frame = output(run(commands, mode, tmp_path))
    assert frame.schema["p2"] == pl.Decimal(38, 2) and frame.schema["s"] == pl.Decimal(38, 18)
    assert frame["p2"].to_list() == [None if p is None else p + 1 for p in PRICES]
    expected = [
        None if a is None or p is None else a - p + n for a, p, n in zip(AMOUNTS, PRICES, range(1, 7), strict=True)
    ]
    assert frame["s"].to_list() == expected
    assert frame["s"][0] == D("5.500000000000000005")  # not rounded through a float
    assert frame["m"].to_list() == [None if p is None else -abs(p) for p in PRICES]


@pytest.mark.parametrize("mode", MODES)
def test_other_operations_on_decimals_give_float64_with_their_alerts(mode: str, tmp_path: Path) -> None:
    """``* / %`` and the functions read a decimal as Float64; a division by zero is empty and counted; a sum beyond
    Decimal(38, 18) (it would fail the whole run in Polars) is empty and counted as a Float64 overflow is."""
    commands = ["add column t = price * 2", "add column r = price / (n - 1)", "add column big = amt + amt"]
    result = run(commands, mode, tmp_path)
    frame = output(result)
    assert frame.schema["t"] == pl.Float64 and frame.schema["r"] == pl.Float64
    assert frame["t"].to_list() == [1.0, 5.0, None, 6.0, 0.2, 200.0]
    assert frame["r"].to_list() == [None, 2.5, None, 1.0, 0.025, 20.0]
    assert frame["big"].to_list() == [*(a + a if a is not None else None for a in AMOUNTS[:5]), None]
    steps = result.envelope.data["steps"]
    assert steps[1]["details"]["divisions_by_zero"] == 1
    assert (
        steps[2]["details"]["overflows_to_infinity"] == 1 and "too large for a decimal number" in steps[2]["sentence"]
    )
    categories = {alert.category for alert in result.envelope.alerts}
    assert "division_by_zero" in categories


def _parquet(path: Path) -> Path:
    table = pa.table(
        {
            "id": list(range(10)),
            "amt": pa.array([D(f"{i}.{i:018d}") for i in range(10)], pa.decimal128(38, 18)),
            "price": pa.array([D(f"{i}.50") for i in range(10)], pa.decimal128(10, 2)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


COMMANDS: list[tuple[str, list[str]]] = [
    ("keep rows where price between 5 and 7", ["5,5.000000000000000005,5.50", "6,6.000000000000000006,6.50"]),
    ("keep rows where amt > 5", [f"{i},{i}.{i:018d},{i}.50" for i in range(5, 10)]),
    ("keep rows where amt == 3.000000000000000003", ["3,3.000000000000000003,3.50"]),
    ("add column p2 = price + 1", [f"{i},{i}.{i:018d},{i}.50,{i + 1}.50" for i in range(10)]),
    ("cast price to number", [f"{i},{i}.{i:018d},{i}.50" for i in range(10)]),
]


@pytest.mark.parametrize("streamed", [False, True])
def test_parquet_decimals_through_the_chain(streamed: bool, tmp_path: Path) -> None:
    """The QA cases on an uploaded Parquet file, read whole and streamed (a spill): each completes with the exact
    rows, and ``cast price to integer`` fails with the float column's message."""
    primary = _parquet(tmp_path / "primary.parquet")
    options = RunOptions(streaming_threshold_bytes=0) if streamed else RunOptions()
    for i, (command, rows) in enumerate(COMMANDS):
        out = tmp_path / f"out{i}"
        parameters: dict[str, Any] = {"transformer": {"commands": [command]}}
        result = run_tool(TOOL, [], {"primary.parquet": primary}, parameters, out, quiet, run_options=options)
        assert result["status"] == "success", (command, result["agents"]["transformer"].get("error"))
        assert (out / "transformed_data.csv").read_text().splitlines()[1:] == rows, command
    with pytest.raises(InvalidParametersError, match="10 values of 'price' cannot be converted to integer"):
        run_tool(TOOL, [], {"primary.parquet": primary}, {"transformer": {"commands": ["cast price to integer"]}},
                 tmp_path / "integer", quiet, run_options=options)  # fmt: skip
