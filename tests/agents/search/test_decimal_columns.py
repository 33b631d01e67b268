"""search-my-data on Decimal columns (Parquet DECIMAL: decimal128(10, 2) money, decimal128(38, 18) amounts): a filter
value is read as a decimal, exactly (``"5.000000000000000005"`` is not 5.0); one with more decimals than the
column's scale equals no value, and a note says so; a range is exact on decimals (it failed the searcher with
Polars' ``is_not_nan``). In memory and streamed, for the searcher and the aggregator's row selection alike."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.chain import run_tool
from agents.options import RunOptions

D = decimal.Decimal
TOOL = "search-my-data"


def quiet(percent: float, agent_id: str | None, message: str) -> None:
    pass


def _parquet(path: Path) -> Path:
    table = pa.table(
        {
            "id": list(range(10)),
            "amt": pa.array([D(f"{i}.{i:018d}") for i in range(10)], pa.decimal128(38, 18)),
            "price": pa.array([D(f"{i}.50") for i in range(10)], pa.decimal128(10, 2)),
        }
    )
    pq.write_table(table, path)
    return path


SEARCHES: list[tuple[dict[str, Any], list[int]]] = [
    ({"filters": {"amt": ["5.000000000000000005"]}}, [5]),
    ({"filters": {"amt": ["5.000000000000000005", 7.000000000000000007, "5"]}}, [5]),  # the JSON float is 7.0
    ({"filters": {"amt": [0, "9.000000000000000009"]}}, [0, 9]),
    ({"filters": {"price": [2.5, "3.50", "4.505", 1e30]}}, [2, 3]),
    ({"ranges": [{"column": "price", "min": 5, "max": 7}]}, [5, 6]),
    ({"ranges": [{"column": "price", "min": 0.1, "max": 1.5}]}, [0, 1]),
    ({"ranges": [{"column": "price", "min": 2.501, "max": 4.499}]}, [3]),
    ({"ranges": [{"column": "amt", "min": 5}]}, [5, 6, 7, 8, 9]),
    ({"ranges": [{"column": "amt", "max": 1e30}]}, list(range(10))),
    ({"ranges": [{"column": "amt", "min": 1e30}]}, []),
    ({"ranges": [{"column": "amt", "min": 2, "max": 3}], "filters": {"price": ["2.5"]}}, [2]),
    # far past what any cell holds (and than a 100-digit context quantizes: it raised InvalidOperation)
    ({"filters": {"price": [1e300, "-1e300"]}}, []),
    ({"ranges": [{"column": "price", "min": -1e300, "max": 1e300}]}, list(range(10))),
    ({"ranges": [{"column": "amt", "min": 1e300}]}, []),
]


@pytest.mark.parametrize("streamed", [False, True])
def test_filters_and_ranges_on_decimals_are_exact(streamed: bool, tmp_path: Path) -> None:
    primary = _parquet(tmp_path / "primary.parquet")
    options = RunOptions(streaming_threshold_bytes=0) if streamed else RunOptions()
    for i, (selection, ids) in enumerate(SEARCHES):
        parameters = {"searcher": {**selection, "sort": [{"column": "id"}]}, "aggregator": {**selection,
                      "metrics": [{"fn": "count"}, {"fn": "sum", "column": "amt"}]}}  # fmt: skip
        out = tmp_path / f"out{i}"
        result = run_tool(TOOL, [], {"primary.parquet": primary}, parameters, out, quiet, run_options=options)
        assert result["status"] == "success", (selection, result["agents"]["searcher"].get("error"))
        searcher = result["agents"]["searcher"]["data"]
        assert searcher["total_rows"] == len(ids), selection
        found = pl.read_csv(out / "search_result.csv", schema_overrides={"amt": pl.String, "price": pl.String})
        assert found["id"].to_list() == ids, selection
        groups = result["agents"]["aggregator"]["data"]["groups"]
        assert [group["count"] for group in groups] in ([len(ids)], [] if not ids else [len(ids)]), selection
        total = sum((D(f"{i}.{i:018d}") for i in ids), D(0))
        sums = [D(group["sum_amt"] or 0) for group in groups]
        assert sums in ([total], [] if not ids else [total]), (selection, groups)  # exact, as the values are


def test_a_filter_value_with_more_decimals_than_the_column_is_noted(tmp_path: Path) -> None:
    primary = _parquet(tmp_path / "primary.parquet")
    parameters = {"searcher": {"filters": {"price": ["4.505", "4.50", "4.5000000000000000001"]}}}
    result = run_tool(TOOL, ["searcher"], {"primary.parquet": primary}, parameters, tmp_path / "out", quiet)
    data = result["agents"]["searcher"]["data"]
    assert data["total_rows"] == 1
    assert data["filters_understood"]["filters"] == {
        "price": ["4.5000000000000000001", 4.5, 4.505]
    }  # sorted by their text
    notes = data["filters_understood"]["notes"]
    shown = "4.505, '4.5000000000000000001' cannot equal a value of 'price' (Decimal(precision=10, scale=2): 2 decimals"
    assert any(note.startswith(f"filters.price: {shown}") and "matches no row" in note for note in notes), notes
