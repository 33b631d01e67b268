"""The chain tells its caller each agent that really starts (``on_agent_start``: the worker debits that
agent's cost then): never an agent skipped for the soft limit or the large-file path, nor one that needs a
baseline the inputs lack. And the registry's view of the same rules: which chain a task is queued with,
which agents are charged, and what the catalog says."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from agents import registry
from agents.chain import run_tool
from agents.options import RunOptions

PROFILE_CHAIN = ["unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"]
WITHOUT_DRIFT = [agent for agent in PROFILE_CHAIN if agent != "drift-detector"]


def write_csv(path: Path, rows: int = 300) -> Path:
    tags = [("a", "b", "c")[i % 3] for i in range(rows)]
    pl.DataFrame({"id": range(rows), "amount": [i * 1.5 for i in range(rows)], "tag": tags}).write_csv(path)
    return path


def ignore_progress(percent: int, agent: str | None, message: str) -> None:
    pass


def run_profile(
    tmp_path: Path, inputs: dict[str, Path], soft_deadline: float | None = None, options: RunOptions | None = None
) -> tuple[dict, list[str]]:
    started: list[str] = []
    result = run_tool(
        "profile-my-data",
        PROFILE_CHAIN,
        inputs,
        {},
        tmp_path / "out",
        ignore_progress,
        soft_deadline,
        options,
        on_agent_start=started.append,
    )
    return result, started


def test_every_agent_that_runs_is_reported_before_it_runs(tmp_path: Path) -> None:
    primary = write_csv(tmp_path / "primary.csv")
    baseline = write_csv(tmp_path / "baseline.csv", 600)
    result, started = run_profile(tmp_path, {"primary.csv": primary, "baseline.csv": baseline})
    assert started == PROFILE_CHAIN
    assert result["status"] == "success"
    assert not result["agents"]["drift-detector"]["data"].get("skipped")


def test_an_agent_that_needs_a_missing_baseline_runs_unreported(tmp_path: Path) -> None:
    result, started = run_profile(tmp_path, {"primary.csv": write_csv(tmp_path / "primary.csv")})
    assert started == WITHOUT_DRIFT
    drift = result["agents"]["drift-detector"]
    assert drift["status"] == "success" and drift["data"]["skipped"]  # it says so, free of charge


def test_agents_past_the_soft_limit_are_not_reported(tmp_path: Path) -> None:
    result, started = run_profile(tmp_path, {"primary.csv": write_csv(tmp_path / "primary.csv")}, time.time() - 1)
    assert started == []
    assert result["status"] == "partial"
    assert all("did not run" in envelope["error"] for envelope in result["agents"].values())


def test_the_large_file_path_reports_only_the_streaming_profiler(tmp_path: Path) -> None:
    primary = write_csv(tmp_path / "primary.csv", 3000)
    baseline = write_csv(tmp_path / "baseline.csv")
    options = RunOptions(streaming_threshold_bytes=1000)
    result, started = run_profile(tmp_path, {"primary.csv": primary, "baseline.csv": baseline}, options=options)
    assert started == ["unified-profiler"]
    assert result["status"] == "partial" and result["agents"]["unified-profiler"]["status"] == "success"


def test_a_default_chain_without_baseline_is_queued_without_drift() -> None:
    assert registry.chain_for_inputs("profile-my-data", PROFILE_CHAIN, has_baseline=False) == WITHOUT_DRIFT
    assert registry.chain_for_inputs("profile-my-data", PROFILE_CHAIN, has_baseline=True) == PROFILE_CHAIN
    # A chain the user chose keeps drift-detector: it runs, says "skipped", and is not charged.
    chosen = ["unified-profiler", "drift-detector"]
    assert registry.chain_for_inputs("profile-my-data", chosen, has_baseline=False) == chosen
    assert registry.charged_agents(chosen, has_baseline=False) == ["unified-profiler"]
    assert registry.charged_agents(chosen, has_baseline=True) == chosen


def test_the_catalog_says_drift_joins_only_with_a_baseline() -> None:
    profile = next(t for t in registry.catalog()["tools"] if t["tool_id"] == "profile-my-data")
    assert profile["default_chain"] == PROFILE_CHAIN and profile["default_chain_credits"] == 160
    assert profile["default_chain_without_baseline"] == WITHOUT_DRIFT
    assert profile["default_chain_without_baseline_credits"] == 120
    needs = {agent["agent_id"] for agent in profile["agents"] if agent["needs_baseline"]}
    assert needs == {"drift-detector"}
    drift = next(agent for agent in profile["agents"] if agent["agent_id"] == "drift-detector")
    assert "only when a baseline" in drift["description"]
