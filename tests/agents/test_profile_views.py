"""The profile's views (agents.profile.views) through the real chain: which columns take part, the alerts
they raise, and the same views whether the file is profiled in memory or by streaming."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from agents.chain import run_tool
from agents.options import RunOptions

ROWS = 3_000


def _frame() -> pl.DataFrame:
    rng = np.random.default_rng(16)
    x = rng.normal(0, 1, ROWS)
    cancelled = rng.random(ROWS) < 0.05
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "id": np.arange(1, ROWS + 1),
            "x": x,
            "x_again": x * 2.5 + rng.normal(0, 0.01, ROWS),  # a near duplicate of x
            "noise": rng.normal(0, 1, ROWS),
            "group": rng.choice(["a", "b", "c"], ROWS),
            "dep": rng.integers(0, 100, ROWS),
            "arr": rng.integers(0, 100, ROWS),
            "at": [(start + dt.timedelta(hours=index)).strftime("%Y-%m-%dT%H:%M:%SZ") for index in range(ROWS)],
            "day": [
                (dt.date(2024, 1, 1) + dt.timedelta(days=index % 90)).strftime("%m/%d/%Y") for index in range(ROWS)
            ],
        }
    ).with_columns(
        pl.when(pl.Series(cancelled)).then(None).otherwise(pl.col(name)).alias(name) for name in ("dep", "arr")
    )


def _profile(tmp_path: Path, name: str, **options: Any) -> dict[str, Any]:
    source = tmp_path / "primary.csv"
    if not source.exists():
        _frame().write_csv(source)
    result = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": source},
        {},
        tmp_path / name,
        lambda *_: None,
        run_options=RunOptions(**options),
    )
    return result["agents"]["unified-profiler"]


@pytest.fixture(scope="module")
def in_memory(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _profile(tmp_path_factory.mktemp("views"), "memory")


def test_columns_take_part_by_their_type(in_memory: dict[str, Any]) -> None:
    correlations = in_memory["data"]["correlations"]
    assert "id" not in correlations["pearson"]["columns"]  # an identifier correlates with nothing of interest
    assert {"x", "x_again", "noise", "dep", "arr"} <= set(correlations["pearson"]["columns"])
    assert "group" in correlations["cramers_v"]["columns"]
    pair = correlations["near_duplicates"][0]
    assert {pair["column_a"], pair["column_b"]} == {"x", "x_again"}
    alerts = {(alert["category"], alert["field_name"]) for alert in in_memory["alerts"]}
    assert ("high_correlation", "x") in alerts
    assert not [
        alert
        for alert in in_memory["alerts"]
        if alert["category"] == "high_correlation" and "noise" in alert["message"]
    ]


def test_columns_missing_together_are_one_alert(in_memory: dict[str, Any]) -> None:
    frame = _frame()
    together = frame.filter(pl.col("dep").is_null() & pl.col("arr").is_null()).height
    patterns = in_memory["data"]["missing_patterns"]["patterns"]
    assert patterns[0]["columns"] == ["dep", "arr"] and patterns[0]["rows"] == together
    co_missing = [alert for alert in in_memory["alerts"] if alert["category"] == "co_missing"]
    assert len(co_missing) == 1 and co_missing[0]["message"].startswith(f"{together:,} rows")


def test_dates_typed_or_written_as_text_get_a_datetime_profile(in_memory: dict[str, Any]) -> None:
    fields = {field["field_name"]: field for field in in_memory["data"]["fields"]}
    at = fields["at"]["datetime_profile"]
    assert (at["min"], at["time_zone"], at["step"]["median_seconds"]) == ("2024-01-01T00:00:00Z", "UTC", 3600.0)
    assert sum(item["count"] for item in at["counts_by_hour"]) == ROWS
    day = fields["day"]
    assert day["data_type"] == "string" and day["semantic_type"] == "date_string"
    assert day["datetime_profile"]["read_from_text"]["formats"][0]["format"] == "%m/%d/%Y"
    assert (day["datetime_profile"]["min"], day["datetime_profile"]["max"]) == ("2024-01-01", "2024-03-30")


def test_samples_are_the_files_rows(in_memory: dict[str, Any]) -> None:
    frame = _frame()
    samples = in_memory["data"]["samples"]
    assert [row["row_index"] for row in samples["head"]] == list(range(1, 11))
    assert [row["row_index"] for row in samples["tail"]] == list(range(ROWS - 9, ROWS + 1))
    for row in samples["random"]:
        assert row["id"] == frame["id"][row["row_index"] - 1]
        assert row["at"] == frame["at"][row["row_index"] - 1]  # written as the file writes it


def test_streaming_gives_the_same_views(tmp_path: Path, in_memory: dict[str, Any]) -> None:
    streamed = _profile(tmp_path, "streamed", streaming_threshold_bytes=1)
    assert streamed["data"]["dataset"]["memory_bytes"] != in_memory["data"]["dataset"]["memory_bytes"]  # it did stream
    for key in ("correlations", "missing_patterns"):
        left = {k: v for k, v in streamed["data"][key].items() if k != "sampled_rows"}
        assert left == in_memory["data"][key], key
        assert streamed["data"][key]["sampled_rows"] == {"rows": ROWS, "of": ROWS, "every": 1}
    assert streamed["data"]["samples"] == in_memory["data"]["samples"]
    for left, right in zip(streamed["data"]["fields"], in_memory["data"]["fields"], strict=True):
        assert left.get("datetime_profile") == right.get("datetime_profile"), left["field_name"]


def test_streaming_a_short_file_with_a_column_named_like_the_sample_index(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    pl.DataFrame({"__row": [5, 4, 3, 2, 1], "row_index": ["a", "b", "c", "d", "e"]}).write_csv(source)
    result = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": source},
        {},
        tmp_path / "out",
        lambda *_: None,
        run_options=RunOptions(streaming_threshold_bytes=1),
    )
    profiler = result["agents"]["unified-profiler"]
    assert profiler["status"] == "success", profiler.get("error")
    samples = profiler["data"]["samples"]
    assert [row["row_index"] for row in samples["tail"]] == [1, 2, 3, 4, 5]
    assert [row["__row"] for row in samples["head"]] == [5, 4, 3, 2, 1]
