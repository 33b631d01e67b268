"""RFC 3339 / ISO 8601 timestamps whose values carry different UTC offsets (QA: ``+00:00``, ``+02:00`` and ``-05:00``
in one column were "text" to the profile, "no value reads as a date" to search, and failed transform's cast): read
as UTC instants by the tools that read dates (agents.values.OFFSET_FORMATS), and written back as they came by the
ones that write the data (clean's default run)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.options import RunOptions
from agents.values import READ_FORMATS, distinct_counts, plan_dates

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
MIXED = """\
id,ts,amount
1,2024-03-01T10:00:00+00:00,1
2,2024-03-01T10:00:00+02:00,2
3,2024-03-02T08:30:00-05:00,4
4,2024-03-01T23:30:00.250Z,8
5,,16
"""
# the same instants in UTC, by id
INSTANTS = {
    1: "2024-03-01T10:00:00Z",
    2: "2024-03-01T08:00:00Z",
    3: "2024-03-02T13:30:00Z",
    4: "2024-03-01T23:30:00.25Z",
}


def ignore(*_: object) -> None:
    return None


def primary(tmp_path: Path, text: str = MIXED) -> Path:
    path = tmp_path / "primary.csv"
    path.write_text(text, encoding="utf-8")
    return path


def run(tmp_path: Path, tool: str, parameters: dict[str, Any], agents: list[str], mode: str = "in_memory") -> Path:
    out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
    result = run_tool(
        tool, agents, {"primary.csv": primary(tmp_path)}, parameters, out, ignore, run_options=MODES[mode]
    )
    assert result["status"] == "success"
    return out


def test_a_plan_reads_each_offset_as_a_utc_instant() -> None:
    frame = pl.DataFrame({"ts": MIXED.splitlines()[1:]}).select(pl.col("ts").str.split(",").list.get(1))
    plan = plan_dates(distinct_counts(frame, "ts"), "ts", READ_FORMATS)
    assert (plan.parsed, plan.non_null, plan.dtype) == (4, 4, pl.Datetime("us", "UTC"))
    read = frame.select(plan.expression(pl.col("ts")))["ts"].to_list()
    assert read == [*(dt.datetime.fromisoformat(value) for value in INSTANTS.values()), None]


def test_values_without_an_offset_are_not_given_a_zone() -> None:
    values = pl.DataFrame({"ts": ["2024-03-01T10:00:00+02:00", "2024-03-01T11:00:00-01:00", "2024-03-01T10:00:00"]})
    plan = plan_dates(distinct_counts(values, "ts"), "ts", READ_FORMATS)
    assert plan.zoned and (plan.parsed, plan.non_null) == (2, 3)
    naive = pl.DataFrame({"ts": ["2024-03-01T10:00:00", "2024-03-01T11:00:00", "2024-03-01T10:00:00+02:00"]})
    plan = plan_dates(distinct_counts(naive, "ts"), "ts", READ_FORMATS)
    assert not plan.zoned and plan.dtype == pl.Datetime("us") and plan.parsed == 2


def test_the_profile_reads_them_as_dates(tmp_path: Path) -> None:
    out = run(tmp_path, "profile-my-data", {}, ["unified-profiler"])
    report = json.loads((out / "data_profile_report.json").read_text(encoding="utf-8"))
    field = next(item for item in report["agents"][0]["data"]["fields"] if item["field_name"] == "ts")
    profile = field["datetime_profile"]
    assert profile["time_zone"] == "UTC"
    assert (profile["min"], profile["max"]) == ("2024-03-01T08:00:00Z", "2024-03-02T13:30:00Z")
    assert profile["read_from_text"]["values_read"] == 4


@pytest.mark.parametrize("mode", list(MODES))
def test_a_time_range_a_sort_and_a_bucket_use_the_instants(tmp_path: Path, mode: str) -> None:
    parameters = {
        "searcher": {
            "time_ranges": [{"column": "ts", "from": "2024-03-01T09:00:00Z", "to": "2024-03-02"}],
            "sort": [{"column": "ts"}],
        },
        "aggregator": {"bucket": {"column": "ts", "unit": "day"}, "metrics": [{"fn": "sum", "column": "amount"}]},
    }
    out = run(tmp_path, "search-my-data", parameters, [], mode)
    document = json.loads((out / "search_result.json").read_text(encoding="utf-8"))
    found = document["search"]
    # id 2 is 08:00 UTC (before the range); the rows keep their text; sorted by instant
    assert [row["id"] for row in found["rows"]] == [1, 4, 3]
    assert [row["ts"] for row in found["rows"]][0] == "2024-03-01T10:00:00+00:00"
    assert any("UTC instants" in note for note in found["filters_understood"]["notes"])
    sums = {str(group["ts"])[:10]: group["sum_amount"] for group in document["aggregate"]["groups"] if group["ts"]}
    assert sums == {"2024-03-01": 1 + 2 + 8, "2024-03-02": 4}  # the aggregator takes every row


def test_transform_casts_them_to_utc_datetimes(tmp_path: Path) -> None:
    out = run(tmp_path, "transform-my-data", {"transformer": {"commands": ["cast ts to datetime"]}}, [])
    written = pl.read_csv(out / "transformed_data.csv", infer_schema=False)["ts"].to_list()
    assert written == [
        "2024-03-01T10:00:00+00:00",
        "2024-03-01T08:00:00+00:00",
        "2024-03-02T13:30:00+00:00",
        "2024-03-01T23:30:00.250+00:00",
        None,
    ]


def test_clean_writes_them_back_as_they_came(tmp_path: Path) -> None:
    out = run(tmp_path, "clean-my-data", {}, [])
    written = pl.read_csv(out / "cleaned_data.csv", infer_schema=False)["ts"].to_list()
    assert written == [line.split(",")[1] or None for line in MIXED.splitlines()[1:]]
