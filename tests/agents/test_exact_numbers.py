"""Numbers come back as they were written and are summed exactly (QA pass 6, #1, #2, #11).

- #1: a decimal column holding a value no double gives back (``1.123456789012345678``, an 18-decimal crypto amount)
  is read as text, in memory and streamed, by every tool: the data comes back as written, the read report says why
  (``numbers_kept_as_text``), the type-fixer does not convert it, the profile does not propose to;
- #2: integer sums (the aggregator's ``sum``, the profile's ``statistics.sum``) do not wrap around at the Int64 limit;
- #11: the reading option ``inputs.primary.null_tokens`` holds in clean-my-data and profile-my-data too."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.chain import run_tool
from agents.layouts import beyond_double
from agents.options import RunOptions
from agents.readers import read_table_with_report
from agents.spill import spill_file
from agents.values import normalize_missing
from tests.agents.test_readers_typing import beyond_a_double

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
PRECISION = (
    "tx,amount_eth,price\n"
    "1,1.123456789012345678,2.50\n"
    "2,0.000000000000000001,3.75\n"
    "3,12345678901234567.5,4.00\n"
    "4,2.5,5.25\n"
)
KEPT = {"amount_eth": {"reason": "beyond_double_precision", "values": 2, "example": "1.123456789012345678"}}


def ignore_progress(*_: object) -> None:
    return None


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _run(tmp_path: Path, tool: str, text: str, parameters: dict[str, Any], mode: str, agents: list[str] | None = None):
    source = tmp_path / "primary.csv"
    source.write_text(text, encoding="utf-8")
    out = tmp_path / f"out-{tool}-{mode}"
    result = run_tool(tool, agents or [], {"primary.csv": source}, parameters, out, ignore_progress,
                      run_options=MODES[mode])  # fmt: skip
    assert result["status"] == "success"
    return result, out


# --- #1: values no double holds --------------------------------------------------------------------------------


DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=25)


@st.composite
def number_texts(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(DIGITS)
    fraction = draw(st.one_of(st.just(""), DIGITS))
    exponent = draw(st.one_of(st.just(""), st.integers(-330, 330).map(lambda e: f"e{e:+d}")))
    return f"{sign}{whole}{'.' + fraction if fraction else ''}{exponent}"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(number_texts(), st.floats(allow_nan=False, allow_infinity=False).map(repr)), max_size=20))
def test_beyond_double_is_the_decimal_definition(texts: list[str]) -> None:
    """Each value: not the value of its double's shortest text, nor of the double rounded to its own digits."""
    found = pl.select(beyond_double(pl.lit(pl.Series(texts, dtype=pl.String)))).to_series().to_list()
    assert found == [beyond_a_double(text) for text in texts]


def test_beyond_double_of_known_values() -> None:
    values = {
        "1.123456789012345678": True,  # 19 digits
        "12345678901234567.5": True,
        "9007199254740993": True,  # 2**53 + 1
        "1.0000000000000001": True,
        "1e400": True,  # past a double's range
        "1e-400": True,
        "0.000000000000000001": False,  # 1e-18: the same value
        "1.50": False,  # a layout
        "1e3": False,
        "48.053808600000004": False,  # %.17g of 48.0538086
        "1.000000000000000056e-01": False,  # numpy's %.18e of 0.1
        "inf": False,
        "NaN": False,
    }
    texts = pl.Series(list(values), dtype=pl.String)
    assert pl.select(beyond_double(pl.lit(texts))).to_series().to_list() == list(values.values())


def test_the_reader_and_the_spill_keep_such_a_column_text(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.write_text(PRECISION, encoding="utf-8")
    frame, report = read_table_with_report(source, source.name)
    assert frame.schema["amount_eth"] == pl.String and frame.schema["price"] == pl.Float64
    assert frame["amount_eth"].to_list() == [
        "1.123456789012345678",
        "0.000000000000000001",
        "12345678901234567.5",
        "2.5",
    ]
    assert report.get("numbers_kept_as_text") == KEPT
    spilled = spill_file(source, source.name, tmp_path / "spill.parquet")
    assert spilled.scan().collect().equals(frame)
    assert spilled.report == report
    # an integer column past 128 bits is no Float64 either: 45 digits no double holds
    source.write_text(f"id,big\n1,{'9' * 45}\n2,5\n", encoding="utf-8")
    frame, report = read_table_with_report(source, source.name)
    assert frame["big"].to_list() == ["9" * 45, "5"]
    assert spill_file(source, source.name, tmp_path / "spill2.parquet").scan().collect().equals(frame)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_tool_writes_such_numbers_back_as_written(tmp_path: Path, mode: str) -> None:
    """QA 6 #1: clean wrote 1.123456789012345678 as 1.1234567890123457 (cells_changed 0); so did transform's and
    search's outputs."""
    rows = _cells_of(PRECISION)
    result, out = _run(tmp_path, "clean-my-data", PRECISION, {}, mode)
    assert _cells(out / "cleaned_data.csv") == rows
    assert result["summary"]["cells_changed"] == 0
    assert result["summary"]["inputs"]["primary"]["numbers_kept_as_text"] == KEPT
    fixer = result["agents"]["type-fixer"]["data"]
    assert fixer["type_issues_fixed"] == 0 if "type_issues_fixed" in fixer else True
    _, out = _run(tmp_path, "transform-my-data", PRECISION, {"transformer": {"commands": ["sort by tx descending"]}},
                  mode)  # fmt: skip
    assert _cells(out / "transformed_data.csv") == [rows[0], *rows[:0:-1]]
    _, out = _run(tmp_path, "search-my-data", PRECISION, {}, mode, ["searcher"])
    assert _cells(out / "search_result.csv") == rows


def _cells_of(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines()]


@pytest.mark.parametrize("mode", list(MODES))
def test_such_a_column_with_missing_tokens_stays_text(tmp_path: Path, mode: str) -> None:
    """The type-fixer (clean) and the token reading (search) would have made it Float64 once NA is a null."""
    text = "id,amount\n1,1.123456789012345678\n2,NA\n3,2.5\n"
    _, out = _run(tmp_path, "clean-my-data", text, {}, mode)
    assert [row[1] for row in _cells(out / "cleaned_data.csv")] == ["amount", "1.123456789012345678", "", "2.5"]
    _, out = _run(tmp_path, "search-my-data", text, {}, mode, ["searcher"])
    assert [row[1] for row in _cells(out / "search_result.csv")] == ["amount", "1.123456789012345678", "", "2.5"]
    frame, report = normalize_missing(pl.DataFrame({"amount": ["1.123456789012345678", "NA", "2.5"]}))
    assert frame.schema["amount"] == pl.String and report.retyped == {}


@pytest.mark.parametrize("mode", list(MODES))
def test_the_profile_does_not_propose_to_convert_them(tmp_path: Path, mode: str) -> None:
    result, _ = _run(tmp_path, "profile-my-data", PRECISION, {}, mode, ["unified-profiler"])
    profile = result["agents"]["unified-profiler"]
    field = next(field for field in profile["data"]["fields"] if field["field_name"] == "amount_eth")
    assert field["semantic_type"] == "numeric_string"
    assert field["properties"]["beyond_double_precision"] is True
    assert "conversion_parameters" not in field["properties"]
    advice = [item["recommendation"] for item in profile["recommendations"] if item.get("field_name") == "amount_eth"]
    assert not any("Convert" in text for text in advice)


# --- #2: integer sums ------------------------------------------------------------------------------------------


BIGINT = "id,x,g\n1,9223372036854775807,a\n2,9223372036854775000,a\n3,5,b\n4,-9223372036854775808,b\n"


@pytest.mark.parametrize("mode", list(MODES))
def test_the_aggregator_sums_integers_without_wrapping_around(tmp_path: Path, mode: str) -> None:
    """QA 6 #2: sum_x of group a was -809."""
    parameters = {"aggregator": {"group_by": ["g"], "metrics": [{"fn": "sum", "column": "x"}]}}
    result, _ = _run(tmp_path, "search-my-data", BIGINT, parameters, mode, ["aggregator"])
    groups = {group["g"]: group["sum_x"] for group in result["agents"]["aggregator"]["data"]["groups"]}
    assert groups == {"a": 9223372036854775807 + 9223372036854775000, "b": 5 - 9223372036854775808}
    assert all(isinstance(value, int) for value in groups.values())


@pytest.mark.parametrize("mode", list(MODES))
def test_the_profile_sums_integers_exactly(tmp_path: Path, mode: str) -> None:
    """QA 6 #2: statistics.sum of [9e18, 9e18, 1] was -446744073709551600."""
    text = "x\n9000000000000000000\n9000000000000000000\n1\n"
    result, _ = _run(tmp_path, "profile-my-data", text, {}, mode, ["unified-profiler"])
    statistics = result["agents"]["unified-profiler"]["data"]["fields"][0]["statistics"]
    assert statistics["sum"] == 18000000000000000001
    assert statistics["mean"] == pytest.approx(6e18)


# --- #11: inputs.primary.null_tokens ---------------------------------------------------------------------------


NAMIBIA = "country,name,n\nNA,Namibia,1\nFR,France,2\nNA,Namibia,3\nNone,Nowhere,4\n"
ONLY_EMPTY: dict[str, Any] = {"inputs": {"primary": {"null_tokens": []}}}


@pytest.mark.parametrize("mode", list(MODES))
def test_clean_and_profile_take_the_reading_option_null_tokens(tmp_path: Path, mode: str) -> None:
    """QA 6 #11: clean emptied NA (Namibia) and None, the profile counted 3 nulls, as if the option were not given."""
    _, out = _run(tmp_path, "clean-my-data", NAMIBIA, ONLY_EMPTY, mode)
    assert _cells(out / "cleaned_data.csv") == _cells_of(NAMIBIA)
    result, _ = _run(tmp_path, "profile-my-data", NAMIBIA, ONLY_EMPTY, mode, ["unified-profiler"])
    fields = result["agents"]["unified-profiler"]["data"]["fields"]
    assert {field["field_name"]: field["properties"]["null_count"] for field in fields} == {
        "country": 0,
        "name": 0,
        "n": 0,
    }
    # an agent's own null_tokens still wins over the reading option
    parameters = {**ONLY_EMPTY, "type-fixer": {"null_tokens": ["None"]}}
    _, out = _run(tmp_path, "clean-my-data", NAMIBIA, parameters, mode)
    assert [row[0] for row in _cells(out / "cleaned_data.csv")] == ["country", "NA", "FR", "NA", ""]
    # without the option: the default tokens, as before
    _, out = _run(tmp_path, "clean-my-data", NAMIBIA, {}, mode)
    assert [row[0] for row in _cells(out / "cleaned_data.csv")] == ["country", "", "FR", "", ""]
