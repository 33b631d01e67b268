"""A date column whose values contradict each other on day/month order (some read only month/day, others only
day/month) has its values that read both ways guessed: a default run keeps it as written and proposes the
conversion, as for a tie (QA pass 4, #12; PRODUCT.md "Defaults that never destroy data"). Evidence one way only
still decides, in memory and streamed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from agents.chain import run_tool
from agents.clean import type_fixer
from agents.params.type_fixer import TypeFixerParams
from tests.agents.clean_support import framed, run_agent
from tests.agents.test_type_fixer_streamed import assert_streamed_as_in_memory

# 03/15, 04/20, 12/31 read only month/day; 13/05 only day/month; 05/06 both ways.
MIXED = ["03/15/2024", "04/20/2024", "13/05/2024", "05/06/2024", "12/31/2024"]


def test_contradicted_order_is_kept_as_written_and_proposed() -> None:
    frame = framed({"us": MIXED})
    result = run_agent(type_fixer, frame, TypeFixerParams())
    assert result.frame is not None and result.frame["us"].to_list() == MIXED
    proposals = [
        p for p in result.envelope.data["proposals"] if p["apply"] == {"type-fixer": {"convert_ambiguous_dates": True}}
    ]
    assert proposals and proposals[0]["columns"] == ["us"], result.envelope.data["proposals"]
    [decision] = [d for d in result.envelope.data["type_analysis"]["columns"] if d["field_name"] == "us"]
    assert "some dates read only month/day, others only day/month" in decision["reason"], decision
    # Asked for, it converts: each value that reads one way only as that way, the others as most values read.
    applied = run_agent(type_fixer, frame, TypeFixerParams(convert_ambiguous_dates=True))
    assert applied.frame is not None
    assert applied.frame["us"].to_list() == [
        dt.date(2024, 3, 15), dt.date(2024, 4, 20), dt.date(2024, 5, 13), dt.date(2024, 5, 6), dt.date(2024, 12, 31)
    ]  # fmt: skip


def test_evidence_one_way_only_still_decides() -> None:
    values = ["03/15/2024", "04/20/2024", "05/06/2024", "12/31/2024"]  # month/day only, or both: not a guess
    result = run_agent(type_fixer, framed({"d": values}), TypeFixerParams())
    assert result.frame is not None
    expected = [dt.date(2024, 3, 15), dt.date(2024, 4, 20), dt.date(2024, 5, 6), dt.date(2024, 12, 31)]
    assert result.frame["d"].to_list() == expected
    # Every value reads one way only (none both ways): nothing is guessed, each is read as it can only be.
    one_way = ["03/15/2024", "13/05/2024"]
    result = run_agent(type_fixer, framed({"d": one_way}), TypeFixerParams())
    assert result.frame is not None and result.frame["d"].to_list() == [dt.date(2024, 3, 15), dt.date(2024, 5, 13)]


def test_streamed_as_in_memory(tmp_path: Path) -> None:
    streamed = assert_streamed_as_in_memory(framed({"us": MIXED}), TypeFixerParams(), tmp_path)
    assert streamed.scan is not None and streamed.scan.collect()["us"].to_list() == MIXED


def test_the_default_clean_chain_writes_the_column_as_written(tmp_path: Path) -> None:
    # field-standardization, after the type-fixer, must not rewrite it either.
    source = tmp_path / "primary.csv"
    source.write_text("id,us\n" + "".join(f"{n},{value}\n" for n, value in enumerate(MIXED, 1)))
    out = tmp_path / "out"
    out.mkdir()
    result = run_tool("clean-my-data", [], {"primary.csv": source}, {}, out, lambda *_: None)
    assert result["status"] == "success"
    assert pl.read_csv(out / "cleaned_data.csv", infer_schema=False)["us"].to_list() == MIXED
    skipped = result["agents"]["field-standardization"]
    assert "3 values read only as the first and 1 only as the second" in str(skipped), skipped
