"""type-fixer on a primary too large for memory (``inputs.scan``, a Parquet scan with the chain's row index)
against its in-memory run on the same data: the same envelope (but the timing), row-level issues and removed
rows, and its ``scan`` collects to the in-memory ``frame``. Covered: the in-memory tests' frames (numbers,
dates, booleans, codes, tokens, UTC stamps, ambiguous day/month, categories), the speed-path frames (Categorical
and Enum text, floats), text columns grouped in parts by hash, a Hypothesis property, a scan without the row
index, and every query that reads the scan running on the streaming engine, with no cached data in the plan
handed on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.clean import type_fixer
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult
from agents.params.type_fixer import TypeFixerParams
from tests.agents.clean_support import PROPERTY_SETTINGS, ROWS, framed, frames, params_for
from tests.agents.test_clean_speed_paths import FRAMES, assert_same, speed_frame
from tests.agents.test_type_fixer import JUDGEMENT_FRAME

SETTINGS = [
    TypeFixerParams(),
    TypeFixerParams(preserve_mixed_types=False),  # converts mixed columns: cells emptied, row-level issues
    TypeFixerParams(preserve_mixed_types=False, convert_ambiguous_dates=True, conversion_threshold=0.5),
    TypeFixerParams(auto_convert_category=False, auto_convert_numeric=False),
    TypeFixerParams.model_validate({"null_tokens": []}),
    TypeFixerParams(  # every judgement call applied
        preserve_mixed_types=False,
        convert_ambiguous_thousands=True,
        convert_currency=True,
        convert_percentages=True,
        convert_accounting_negatives=True,
        convert_codes=True,
        convert_yes_no=True,
    ),
]
FIXED_FRAMES = {
    "mixed": framed(
        {
            "price": ["1,234.50", "$12", "abc", " 7.25 ", None, "(3)"],
            "signup": ["2024-01-05", "01/31/2024", "2024-02-29", "12/25/2024", "garbage", ""],
            "active": ["yes", "No", "TRUE", "n", "1", None],
            "count": [1.0, 2.0, None, 4.0, -5.0, 6.0],
            "ratio": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
            "zip": ["02134", "10001", "94105", "00501", "60601", "73301"],
        },
        ROWS,
    ),
    "tokens": framed(
        {
            "age": ["31", "NA", " N/A ", "40", "null", "22"],
            "name": ["Ann", "None", "Bo", "#N/A", "Cy", "NULL"],
            "score": [1.5, float("nan"), 2.5, None, 3.5, 4.5],
        },
        ROWS,
    ),
    "utc": framed({"at": ["2013-01-01T05:00:00Z", "2013-01-01T06:00:00Z"] * 3}),
    "ambiguous": framed({"d": ["03/04/2024", "05/06/2024", "01/02/2024", "x"]}),
    "datetimes_and_categories": framed(
        {
            "at": ["2024-01-05 10:30:00", "2024-01-06T11:00:00", "2024-01-07", None] * 25,
            "tier": ["gold", "silver"] * 50,
            "amount": [str(i) for i in range(96)] + ["n/a", "", "  ", "x"],
        }
    ),
    "empty": pl.DataFrame(schema={ROW_INDEX_COLUMN: pl.Int64, "a": pl.String, "x": pl.Float64}),
    "judgement_calls": framed(JUDGEMENT_FRAME),
    "decimal_commas": framed({"poids": ["1,500", "2,250", "3,000"], "prix": ["12,99", "5,49", "7,00"]}),
    "grouped_commas": framed({"n": ["1,500", "2,250", None], "m": ["1,234,567", "12", "$4"], "x": ["1", "2", "3"]}),
    # QA D4: numbers written with a decimal comma, one column mixed, one written as codes
    "decimal_comma_numbers": framed(
        {
            "price": ["39,81", "-0,5", " 1.234,56 ", "7", None, "1,500"],
            "mixed": ["1,5", "2,25", "3,75", "4,5", "x", "6,0"],
            "code": ["007,5", "1,25", "2,5", "3", "4", "5"],
        },
        ROWS,
    ),
}


def streamed_inputs(frame: pl.DataFrame, directory: Path) -> AgentInputs:
    path = directory / "in.parquet"
    frame.write_parquet(path)
    return AgentInputs(
        frame.clear(), "primary.csv", scan=pl.scan_parquet(path), rows=frame.height, work_dir=directory / "work"
    )


def assert_streamed_as_in_memory(frame: pl.DataFrame, params: TypeFixerParams, directory: Path) -> AgentResult:
    """Both runs on ``frame``: identical results, the streamed ``scan`` collecting to the in-memory ``frame``."""
    in_memory = type_fixer.run(AgentInputs(frame, "primary.csv"), params, lambda _f, _m: None)
    fractions: list[float] = []
    streamed = type_fixer.run(streamed_inputs(frame, directory), params, lambda f, _m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert streamed.frame is None and streamed.scan is not None and streamed.rows == frame.height
    assert "CACHE" not in streamed.scan.explain()
    assert in_memory.frame is not None
    assert_same(dataclasses.replace(streamed, frame=streamed.scan.collect()), in_memory)
    return streamed


@pytest.mark.parametrize("params", SETTINGS)
@pytest.mark.parametrize("name", list(FIXED_FRAMES))
def test_streamed_type_fixer_matches_in_memory(name: str, params: TypeFixerParams, tmp_path: Path) -> None:
    assert_streamed_as_in_memory(FIXED_FRAMES[name], params, tmp_path)


def test_streamed_type_fixer_converts_and_reports_emptied_cells(tmp_path: Path) -> None:
    streamed = assert_streamed_as_in_memory(
        FIXED_FRAMES["mixed"],
        TypeFixerParams(preserve_mixed_types=False, convert_currency=True, convert_accounting_negatives=True),
        tmp_path,
    )
    issues = streamed.row_level_issues.select("row_index", "column", "value").rows()
    assert issues == [(5, "price", "abc"), (9, "signup", "garbage")]
    log = {entry["column"]: entry for entry in streamed.envelope.data["fix_log"]}
    assert log["price"]["examples"] == [{"row_index": 5, "value": "abc"}]
    assert log["price"]["sample_conversions"][0] == {"from": "1,234.50", "to": "1234.5"}
    assert streamed.scan is not None
    assert str(tmp_path / "work") in streamed.scan.explain()  # the parsed values, spilled once, are read
    out = streamed.scan.collect()
    assert out.schema["price"] == pl.Float64 and out.schema["count"] == pl.Int64
    assert out[ROW_INDEX_COLUMN].to_list() == ROWS


@pytest.mark.parametrize("params", SETTINGS[:3])
@pytest.mark.parametrize(("seed", "id_kind"), FRAMES)
def test_streamed_type_fixer_on_speed_frames(seed: int, id_kind: str, params: TypeFixerParams, tmp_path: Path) -> None:
    frame = speed_frame(seed, id_kind).with_columns(
        pl.col("amount").cast(pl.String).alias("amount_text"),
        pl.col("tie").replace({"a": "yes", "b": "no", "c": "N/A"}).alias("flag"),
        pl.col("code").str.pad_start(5).alias("padded"),
        pl.when(pl.col("amount") > 50).then(pl.col("amount").round(0)).otherwise(float("nan")).alias("whole"),
    )
    assert_streamed_as_in_memory(frame, params, tmp_path)


@pytest.mark.parametrize("params", SETTINGS[:3])
@pytest.mark.parametrize("name", ["mixed", "tokens", "datetimes_and_categories", "speed"])
def test_streamed_type_fixer_groups_a_column_in_parts(
    name: str, params: TypeFixerParams, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column of many distinct values is grouped in parts by hash (type_fixer.GROUP_VALUES): same results."""
    frame = speed_frame(1, "null") if name == "speed" else FIXED_FRAMES[name]
    monkeypatch.setattr(type_fixer, "GROUP_VALUES", 2)
    parts: list[int] = []
    grouped = type_fixer._scanned_written_values

    def counting(scan: pl.LazyFrame, column: str, count: int) -> pl.DataFrame:
        parts.append(count)
        return grouped(scan, column, count)

    monkeypatch.setattr(type_fixer, "_scanned_written_values", counting)
    assert_streamed_as_in_memory(frame, params, tmp_path)
    assert max(parts) > 1


@PROPERTY_SETTINGS
@given(frame=frames(), data=st.data())
def test_streamed_type_fixer_property(
    frame: pl.DataFrame, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    params = params_for(type_fixer, data)
    assert isinstance(params, TypeFixerParams)
    assert_streamed_as_in_memory(frame, params, tmp_path_factory.mktemp("property"))


def test_streamed_type_fixer_numbers_rows_of_a_scan_without_row_index(tmp_path: Path) -> None:
    frame = FIXED_FRAMES["mixed"].drop(ROW_INDEX_COLUMN)
    # "$12" and "(3)": judgement calls
    params = TypeFixerParams(preserve_mixed_types=False, convert_currency=True, convert_accounting_negatives=True)
    in_memory = type_fixer.run(AgentInputs(frame, "primary.csv"), params, print)
    streamed = type_fixer.run(streamed_inputs(frame, tmp_path), params, print)
    assert in_memory.frame is not None and streamed.scan is not None
    assert_same(dataclasses.replace(streamed, frame=streamed.scan.collect()), in_memory)
    assert streamed.row_level_issues["row_index"].to_list() == [3, 5]


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    """The engine of every collect of a plan that reads a Parquet file, and whether it held a cache."""
    seen: list[tuple[str, bool]] = []
    collect, collect_all = pl.LazyFrame.collect, pl.collect_all

    def note(query: pl.LazyFrame, engine: Any) -> None:
        plan = query.explain()
        if "Parquet SCAN" in plan:
            seen.append((str(engine), "CACHE" in plan))

    def collecting(self: pl.LazyFrame, *args: Any, **kwargs: Any) -> pl.DataFrame:
        note(self, kwargs.get("engine", "auto"))
        return collect(self, *args, **kwargs)

    def collecting_all(queries: Any, *args: Any, **kwargs: Any) -> list[pl.DataFrame]:
        queries = list(queries)
        for query in queries:
            note(query, kwargs.get("engine", "auto"))
        return collect_all(queries, *args, **kwargs)

    monkeypatch.setattr(pl.LazyFrame, "collect", collecting)
    monkeypatch.setattr(pl, "collect_all", collecting_all)
    yield seen


@pytest.mark.parametrize("params", SETTINGS[:2])
def test_streamed_type_fixer_reads_the_scan_on_the_streaming_engine_only(
    params: TypeFixerParams, tmp_path: Path, engines: list[tuple[str, bool]]
) -> None:
    frame = speed_frame(0, "unique").with_columns(pl.col("amount").cast(pl.String).alias("amount_text"))
    inputs = streamed_inputs(frame, tmp_path)
    result = type_fixer.run(inputs, params, lambda _f, _m: None)
    assert result.envelope.summary_metrics["columns_converted"] > 0
    assert engines and all(engine == "streaming" and not cached for engine, cached in engines), engines


def test_streamed_type_fixer_proposes_the_judgement_calls(tmp_path: Path) -> None:
    """QA D3 and D8 streamed: the same values left as written and the same proposals as in memory."""
    for name in ("euro", "calls", "applied", "grouped"):
        (tmp_path / name).mkdir()
    euro = assert_streamed_as_in_memory(FIXED_FRAMES["decimal_commas"], TypeFixerParams(), tmp_path / "euro")
    assert euro.scan is not None and euro.scan.collect()["poids"].to_list() == ["1,500", "2,250", "3,000"]
    assert euro.scan.collect()["prix"].to_list() == [12.99, 5.49, 7.0]
    assert [item["action"] for item in euro.envelope.data["proposals"]] == ["convert_decimal_commas"]
    calls = assert_streamed_as_in_memory(FIXED_FRAMES["judgement_calls"], TypeFixerParams(), tmp_path / "calls")
    assert calls.scan is not None
    out = calls.scan.collect()
    for name in ("pct", "amount", "yn", "w", "zip", "neg"):
        assert out[name].to_list() == FIXED_FRAMES["judgement_calls"][name].to_list(), name
    assert out["plain"].to_list() == [12.0, 3.5, 7.0] and out["qty"].to_list() == [1234567, 2000, 9]
    assert [item["action"] for item in calls.envelope.data["proposals"]] == [
        "convert_currency",
        "convert_percentages",
        "convert_accounting_negatives",
        "convert_codes",
        "convert_yes_no",
    ]
    applied = assert_streamed_as_in_memory(
        FIXED_FRAMES["decimal_commas"], TypeFixerParams(convert_ambiguous_thousands=True), tmp_path / "applied"
    )
    assert applied.scan is not None and applied.scan.collect()["poids"].to_list() == [1500, 2250, 3000]
    grouped = assert_streamed_as_in_memory(FIXED_FRAMES["grouped_commas"], TypeFixerParams(), tmp_path / "grouped")
    assert grouped.scan is not None and grouped.scan.collect()["n"].to_list() == [1500, 2250, None]
