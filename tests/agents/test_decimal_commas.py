"""QA D4: numbers written with a decimal comma ("39,81", "-0,5", "1.234,56") in a European file (";" separated)
are numbers: the type fixer converts them by default when nothing in the file says otherwise and proposes them
when something does; the profile types them ``numeric_string`` and says they use a decimal comma."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from agents.chain import RunOptions, run_tool
from agents.clean import type_fixer
from agents.decimal_comma import parse_decimal_comma
from agents.envelope import AgentInputs, AgentResult, Alert
from agents.params.type_fixer import TypeFixerParams
from agents.profile.pii import text_signals
from agents.profile.profiler import ProfilerParams
from agents.profile.profiler import run as profile
from tests.agents.clean_support import framed, run_agent
from tests.agents.test_type_fixer_streamed import FIXED_FRAMES, assert_streamed_as_in_memory

STOCKS = "symbol;date;price;volume_k\n" + "".join(
    f"S{i % 3};2024-01-{i % 28 + 1:02d};{30 + i * 0.37:.2f};{1000 + i}\n".replace(".", ",") for i in range(40)
)


def test_parse_decimal_comma_reads_the_european_way() -> None:
    values = ["39,81", "-0,5", " 1.234,56 ", "7", "1,500", "1.234", "+1,5", "1,2,3", "1.23,4", "abc", "1,234.5"]
    parsed = pl.DataFrame({"v": values}).select(parse_decimal_comma(pl.col("v"))).to_series().to_list()
    assert parsed == [39.81, -0.5, 1234.56, 7.0, 1.5, 1234.0, 1.5, None, None, None, None]


def test_type_fixer_converts_a_column_of_decimal_commas_by_default() -> None:
    frame = framed({"price": ["39,81", "-0,5", "1.234,56", "7", "1,500"], "name": ["a", "b", "c", "d", "e"]})
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None and result.frame["price"].to_list() == [39.81, -0.5, 1234.56, 7.0, 1.5]
    assert result.envelope.data["proposals"] == []
    (entry,) = result.envelope.data["fix_log"]
    assert (entry["column"], entry["to_type"], entry["failed"]) == ("price", "Float64", 0)
    assert entry["sample_conversions"][0] == {"from": "39,81", "to": "39.81"}
    assert "decimal comma" in entry["reason"]
    second = run_agent(type_fixer, result.frame, TypeFixerParams())  # nothing left to convert
    assert second.envelope.data["fix_log"] == [] and second.frame is not None and second.frame.equals(result.frame)


def test_whole_numbers_with_a_decimal_comma_become_integers() -> None:
    """As "12.0" does: every value whole."""
    result = run_agent(type_fixer, framed({"n": ["30,00", "31,0", "1.200,00"]}), TypeFixerParams())
    assert result.frame is not None and result.frame["n"].to_list() == [30, 31, 1200]
    assert result.frame.schema["n"] == pl.Int64


@pytest.mark.parametrize(
    "columns",
    [
        {"n": ["1,500", "2,250"]},  # no comma that can only be a decimal mark
        {"n": ["1.5", "2,75"]},  # one of each way: mixed
        {"n": ["39,81", "$4"]},  # a currency symbol: not read with a decimal comma
        {"n": ["1,234.5", "2,5"]},
    ],
)
def test_type_fixer_leaves_columns_without_a_decimal_comma_reading(columns: dict[str, list[str]]) -> None:
    result = run_agent(type_fixer, framed(columns), TypeFixerParams())
    assert result.frame is not None and result.frame["n"].to_list() == columns["n"]


def test_a_decimal_comma_in_a_file_that_groups_thousands_with_commas_is_proposed() -> None:
    frame = framed({"e": ["39,81", "1,5"], "m": ["1,234,567", "12"]})
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None and result.frame["e"].to_list() == ["39,81", "1,5"]
    (proposed,) = result.envelope.data["proposals"]
    assert proposed["apply"] == {"type-fixer": {"convert_decimal_commas": True}}
    assert (proposed["columns"], proposed["cells_affected"]) == (["e"], 2)
    analysis = {column["field_name"]: column for column in result.envelope.data["type_analysis"]["columns"]}
    assert analysis["e"]["proposed_with"] == {"convert_decimal_commas": True}
    applied = run_agent(type_fixer, frame, TypeFixerParams(convert_decimal_commas=True))
    assert applied.frame is not None and applied.frame["e"].to_list() == [39.81, 1.5]
    assert applied.frame["m"].to_list() == [1234567, 12]


def test_mixed_and_code_columns_of_decimal_commas_are_proposed() -> None:
    frame = FIXED_FRAMES["decimal_comma_numbers"]
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None
    assert result.frame["price"].to_list() == [39.81, -0.5, 1234.56, 7.0, None, 1.5]
    for name in ("mixed", "code"):
        assert result.frame[name].to_list() == frame[name].to_list()
    proposed = {item["action"]: item for item in result.envelope.data["proposals"]}
    assert proposed["convert_mixed_columns"]["columns"] == ["mixed"]
    assert proposed["convert_codes"]["columns"] == ["code"] and "'007,5'" in proposed["convert_codes"]["description"]
    applied = run_agent(type_fixer, frame, TypeFixerParams(preserve_mixed_types=False, convert_codes=True))
    assert applied.frame is not None
    assert applied.frame["mixed"].to_list() == [1.5, 2.25, 3.75, 4.5, None, 6.0]
    assert applied.frame["code"].to_list() == [7.5, 1.25, 2.5, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "params",
    [TypeFixerParams(), TypeFixerParams(convert_decimal_commas=True), TypeFixerParams(preserve_mixed_types=False)],
)
def test_streamed_type_fixer_reads_decimal_commas_as_in_memory(params: TypeFixerParams, tmp_path: Path) -> None:
    streamed = assert_streamed_as_in_memory(FIXED_FRAMES["decimal_comma_numbers"], params, tmp_path)
    assert streamed.scan is not None
    assert streamed.scan.collect()["price"].to_list() == [39.81, -0.5, 1234.56, 7.0, None, 1.5]


def test_both_readings_of_an_ambiguous_comma_cannot_be_asked_at_once() -> None:
    with pytest.raises(ValidationError, match="convert_decimal_commas"):
        TypeFixerParams(convert_ambiguous_thousands=True, convert_decimal_commas=True)


@pytest.mark.parametrize("threshold", [None, 0], ids=["in_memory", "streamed"])
def test_the_clean_chain_converts_a_european_file(tmp_path: Path, threshold: int | None) -> None:
    """The QA D4 repro: the prices become numbers, written with their two decimals ("30,00" -> "30.00")."""
    source = tmp_path / "stocks.csv"
    source.write_text(STOCKS, encoding="utf-8")
    out = tmp_path / "out"
    options = RunOptions(streaming_threshold_bytes=threshold)
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, _ignore, run_options=options)
    assert result["status"] == "success"
    assert not [item for item in result["summary"]["proposals"] if item["agent_id"] == "type-fixer"]
    cleaned = (out / "cleaned_data.csv").read_text(encoding="utf-8").splitlines()
    assert cleaned[:3] == ["symbol,date,price,volume_k", "S0,2024-01-01,30.00,1000", "S1,2024-01-02,30.37,1001"]


def _ignore(percent: int, agent: str | None, message: str) -> None:
    pass


def _profiled(frame: pl.DataFrame) -> tuple[dict[str, dict[str, Any]], list[Alert]]:
    result: AgentResult = profile(AgentInputs(frame, "primary.csv"), ProfilerParams(), lambda _f, _m: None)
    return {field["field_name"]: field for field in result.envelope.data["fields"]}, result.envelope.alerts


def test_the_profile_types_decimal_commas_as_numbers_stored_as_text() -> None:
    frame = pl.DataFrame(
        {
            "price": [f"{30 + i * 0.37:.2f}".replace(".", ",") for i in range(40)],
            "ambiguous": ["1,500", "2,250"] * 20,  # no comma that can only be a decimal mark
            "sku": [f"A{i:03d}" for i in range(40)],
        }
    )
    fields, alerts = _profiled(frame)
    price = fields["price"]
    assert price["semantic_type"] == "numeric_string"
    assert "decimal comma" in price["properties"]["semantic_reason"]
    assert price["properties"]["decimal_mark"] == ","
    assert price["quality_indicators"]["validity"] == 100.0
    (alert,) = [alert for alert in alerts if alert.category == "numeric_in_string"]
    assert alert.field_name == "price" and "decimal comma" in alert.message and "decimal mark" in alert.recommendation
    for name in ("ambiguous", "sku"):
        assert fields[name]["semantic_type"] != "numeric_string"
        assert "decimal_mark" not in fields[name]["properties"]


def test_text_signals_count_decimal_commas_only_where_one_must_be() -> None:
    sample = pl.DataFrame(
        {"eu": ["39,81", "7", "1.234,5", "x"], "us": ["1,500", "7", "1.5", "2"], "word": ["a", "b", "c", "d"]}
    )
    signals = text_signals(sample, ["eu", "us", "word"])
    assert signals["eu"].decimal_comma_share == 0.75
    assert signals["us"].decimal_comma_share == 0.0 and signals["word"].decimal_comma_share == 0.0
    assert signals["eu"].numeric_share == 0.25  # the plain reading is unchanged


def test_a_point_after_a_leading_zero_groups_no_thousands() -> None:
    """Review: "0.125" read as 125 (a leading 0 taken for a group of thousands), so a default clean of a column of
    0.125, 0.250, 1,5 wrote 125.0, 250.0, 1.5."""
    values = pl.Series(["0.125", "0.250", "1,5", "0.375", "1.234,5"])
    assert pl.select(parse_decimal_comma(pl.lit(values))).to_series().to_list() == [None, None, 1.5, None, 1234.5]
