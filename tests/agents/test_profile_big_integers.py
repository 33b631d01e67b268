"""An integer column past 2**53 (snowflake ids, 19-digit order numbers) gets its min, max, median, quantiles and IQR
from the integers themselves, not from doubles that lose its last digits (QA pass 4, #2): they agree with the field's
``extremes`` and with an exact computation, in memory and streamed, for CSV and Parquet (Int64, UInt64)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from agents.chain import run_tool
from agents.options import RunOptions

MODES = {"in_memory": RunOptions(), "streamed": RunOptions(streaming_threshold_bytes=0)}
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}


def ignore_progress(*_: object) -> None:
    return None


def exact_quantile(values: list[int], quantile: float) -> int | float:
    """NumPy's default (linear) quantile in exact arithmetic, at the ranks a double computes."""
    ordered = sorted(values)
    position = quantile * (len(ordered) - 1)
    below = math.floor(position)
    low, high = ordered[below], ordered[min(below + 1, len(ordered) - 1)]
    value = low + (high - low) * Fraction(position - below)
    return int(value) if value.denominator == 1 else float(value)


def statistics(path: Path, options: RunOptions) -> dict[str, dict[str, Any]]:
    out = path.parent / "out"
    out.mkdir()
    inputs = {path.name: path}
    result = run_tool("profile-my-data", ["unified-profiler"], inputs, {}, out, ignore_progress, run_options=options)
    assert result["status"] == "success", result["agents"]
    return {f["field_name"]: f["statistics"] for f in result["agents"]["unified-profiler"]["data"]["fields"]}


def check(stats: dict[str, Any], values: list[int]) -> None:
    assert (stats["min"], stats["max"]) == (min(values), max(values))
    assert type(stats["min"]) is int and type(stats["max"]) is int
    for label, quantile in QUANTILES.items():
        assert stats[label] == exact_quantile(values, quantile), label
    assert stats["median"] == stats["p50"]
    assert stats["iqr"] == stats["p75"] - stats["p25"]
    assert stats["extremes"]["lowest"][0]["value"] == stats["min"]
    assert stats["extremes"]["highest"][0]["value"] == stats["max"]
    assert stats["sum"] == sum(values)


@pytest.mark.parametrize("mode", MODES)
def test_ids_past_2_53_in_a_csv(tmp_path: Path, mode: str) -> None:
    ids = [2**53 + n for n in (1, 2, 3, 4, 5, 7, 11, 13, 17, 19, 23)]
    negative = [-(2**62) - n for n in range(1, 8)]
    path = tmp_path / "primary.csv"
    pl.DataFrame({"id": ids, "small": list(range(len(ids)))}).write_csv(path)
    check(statistics(path, MODES[mode])["id"], ids)
    negative_path = tmp_path / "negative" / "primary.csv"
    negative_path.parent.mkdir()
    pl.DataFrame({"debt": negative}).write_csv(negative_path)
    check(statistics(negative_path, MODES[mode])["debt"], negative)


@pytest.mark.parametrize("mode", MODES)
def test_unsigned_64_bit_parquet(tmp_path: Path, mode: str) -> None:
    values = [2**64 - n for n in (1, 2, 3, 5, 8, 30)]
    path = tmp_path / "primary.parquet"
    pl.DataFrame({"serial": pl.Series(values, dtype=pl.UInt64)}).write_parquet(path)
    check(statistics(path, MODES[mode])["serial"], values)


def test_ordinary_integers_keep_their_statistics(tmp_path: Path) -> None:
    # Below 2**53 a double is exact: the statistics stay as they were (doubles), so nothing else moves.
    path = tmp_path / "primary.csv"
    pl.DataFrame({"n": [1, 2, 3, 4, 10]}).write_csv(path)
    stats = statistics(path, RunOptions())["n"]
    assert (stats["min"], stats["max"], stats["p50"], stats["p25"]) == (1.0, 10.0, 3.0, 2.0)
    assert type(stats["min"]) is float
