"""transformed_data.parquet is readable by pyarrow (hence pandas, Spark, DuckDB): integers of 20 to 39 digits, which
Polars reads as 128-bit integers and pyarrow refuses in Parquet, are written as 38-digit decimals, or as text when a
value has 39 digits; in memory and streamed, with the values unchanged (QA: a 20-digit id column made the file
unreadable by pyarrow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from agents.chain import portable_parquet, run_tool
from agents.options import RunOptions

IDS = [12345678901234567890, 98765432109876543210, 5]
OPTIONS = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}


def ignore(*_: Any) -> None:
    """No progress to show."""


@pytest.mark.parametrize("mode", list(OPTIONS))
def test_a_transformed_file_of_twenty_digit_ids_reads_in_pyarrow_with_its_values(tmp_path: Path, mode: str) -> None:
    primary = tmp_path / "primary.csv"
    primary.write_text("big_id,huge,n\n" + "".join(f"{i},{i * 10**18},{k}\n" for k, i in enumerate(IDS)))
    params = {"transformer": {"operations": [{"op": "sort", "by": [{"column": "n", "descending": True}]}]}}
    result = run_tool(
        "transform-my-data", [], {"primary.csv": primary}, params, tmp_path / "out", ignore, run_options=OPTIONS[mode]
    )
    assert result["status"] == "success"
    table = pq.read_table(tmp_path / "out" / "transformed_data.parquet")  # refused Int128 before
    assert str(table.schema.field("big_id").type) == "decimal128(38, 0)"
    assert table.column("big_id").to_pylist() == [int(i) for i in reversed(IDS)]
    # 98765432109876543210 * 10**18 has 38 digits; 12345678901234567890 * 10**18 has 38 too: both fit
    assert [int(v) for v in table.column("huge").to_pylist()] == [i * 10**18 for i in reversed(IDS)]
    assert table.column("n").to_pylist() == [2, 1, 0]
    text = (tmp_path / "out" / "transformed_data.csv").read_text().splitlines()
    assert text[1:] == [f"{i},{i * 10**18},{k}" for k, i in reversed(list(enumerate(IDS)))]  # the CSV as written


def test_a_39_digit_value_keeps_its_column_as_text_and_other_columns_as_they_are() -> None:
    frame = pl.DataFrame(
        {
            "wide": pl.Series([2**127 - 1, -(2**127), None], dtype=pl.Int128),
            "fits": pl.Series([10**38 - 1, -(10**38 - 1), None], dtype=pl.Int128),
            "unsigned": pl.Series([10**38, 0, 1], dtype=pl.UInt128),
            "plain": [1, 2, 3],
        }
    )
    for portable in (portable_parquet(frame), portable_parquet(frame.lazy()).collect()):
        assert portable.schema == {
            "wide": pl.String,
            "fits": pl.Decimal(38, 0),
            "unsigned": pl.String,
            "plain": pl.Int64,
        }
        assert portable["wide"].to_list() == [str(2**127 - 1), str(-(2**127)), None]
        assert [int(v) if v is not None else None for v in portable["fits"].to_list()] == [
            10**38 - 1,
            -(10**38 - 1),
            None,
        ]
        assert portable["unsigned"].to_list() == [str(10**38), "0", "1"]
