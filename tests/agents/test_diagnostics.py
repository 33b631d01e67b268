"""The hidden diagnostics tool and its sleeper agent, and the chain's soft time limit (which the sleeper,
reporting progress every step, makes easy to reach)."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import polars as pl
import pytest

from agents import registry
from agents.chain import SOFT_LIMIT_MESSAGE, run_tool
from agents.errors import InvalidParametersError, UnknownToolError
from agents.options import RunOptions


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str | None, str]] = []

    def __call__(self, percent: int, agent: str | None, message: str) -> None:
        self.events.append((percent, agent, message))


DIAGNOSTICS = RunOptions(diagnostics=True)  # what a worker whose settings enable the tool sends with the job


@pytest.fixture
def primary(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    pl.DataFrame({"id": [1, 2, 3, 4], "name": ["a", "b", None, "d"]}).write_csv(path)
    return path


@pytest.mark.parametrize("variable", [None, "1"])
def test_hidden_and_refused_unless_enabled(
    monkeypatch: pytest.MonkeyPatch, primary: Path, tmp_path: Path, variable: str | None
) -> None:
    # Only the caller enables it (the service's settings): the environment of the agent process plays no part.
    if variable is None:
        monkeypatch.delenv("AGENSIUM_DIAGNOSTICS", raising=False)
    else:
        monkeypatch.setenv("AGENSIUM_DIAGNOSTICS", variable)
    assert "diagnostics" not in [tool["tool_id"] for tool in registry.catalog()["tools"]]
    for agents in (None, ["sleeper"]):
        with pytest.raises(UnknownToolError) as raised:
            registry.resolve_chain("diagnostics", agents)
        assert raised.value.code == "UNKNOWN_TOOL" and "diagnostics" not in raised.value.details["available"]
    with pytest.raises(UnknownToolError):
        registry.validate_parameters("diagnostics", ["sleeper"], {})
    with pytest.raises(UnknownToolError):
        run_tool("diagnostics", [], {"primary.csv": primary}, {"sleeper": {"seconds": 0}}, tmp_path, Recorder())


def test_listed_when_enabled() -> None:
    tools = {tool["tool_id"]: tool for tool in registry.catalog(diagnostics=True)["tools"]}
    assert list(tools)[:2] == ["profile-my-data", "clean-my-data"]
    tool = tools["diagnostics"]
    assert tool["default_chain"] == ["sleeper"] and tool["default_chain_credits"] == 5
    # readiness-rater may follow the sleeper: an agent that a stop in the sleeper never starts (nor charges).
    sleeper, readiness = tool["agents"]
    assert sleeper["credits"] == 5 and readiness["agent_id"] == "readiness-rater"
    assert not readiness["in_default_chain"]
    schema = sleeper["parameters_schema"]
    assert schema["additionalProperties"] is False
    assert {name: field["default"] for name, field in schema["properties"].items()} == {
        "seconds": 1.0, "step_s": 0.1, "runaway": False, "fail": False, "noop": False,
    }  # fmt: skip
    assert [(o["name"], o["content_type"]) for o in tool["outputs"]] == [
        ("diagnostics.json", "application/json"),
        ("diagnostics.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("row_level_issues.parquet", "application/vnd.apache.parquet"),
        ("row_level_issues.csv", "text/csv"),
    ]
    assert registry.resolve_chain("diagnostics", None, diagnostics=True) == ["sleeper"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"seconds": "1"}, "seconds"), ({"seconds": -1}, "seconds"), ({"step_s": 0}, "step_s"), ({"nap": 1}, "nap")],
)
def test_parameters_are_strict(params: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParametersError) as raised:
        registry.validate_parameters("diagnostics", ["sleeper"], {"sleeper": params}, diagnostics=True)
    assert raised.value.agent_id == "sleeper" and raised.value.field == field


def test_sleeper_sleeps_reports_progress_and_writes_its_report(primary: Path, tmp_path: Path) -> None:
    progress = Recorder()
    started = time.monotonic()
    result = run_tool(
        "diagnostics",
        [],
        {"primary.csv": primary},
        {"sleeper": {"seconds": 0.3, "step_s": 0.05}},
        tmp_path,
        progress,
        run_options=DIAGNOSTICS,
    )
    assert time.monotonic() - started >= 0.3
    assert result["status"] == "success"
    data = result["agents"]["sleeper"]["data"]
    assert data["rows"] == 4 and data["seconds_slept"] >= 0.3 and data["pid"] == os.getpid()
    sleeper_messages = [message for _, agent, message in progress.events if agent == "sleeper"]
    assert len(sleeper_messages) >= 6 and f"in process {os.getpid()}" in sleeper_messages[1]
    percents = [percent for percent, _, _ in progress.events]
    assert percents == sorted(percents) and percents[-1] == 100
    assert [o["name"] for o in result["outputs"]] == [
        "diagnostics.json", "diagnostics.xlsx", "row_level_issues.parquet", "row_level_issues.csv",
    ]  # fmt: skip
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert {key: report["agents"][0]["data"][key] for key in ("rows", "pid")} == {"rows": 4, "pid": os.getpid()}


def test_sleeper_reads_any_format(tmp_path: Path) -> None:
    path = tmp_path / "primary.parquet"
    pl.DataFrame({"x": range(7)}).write_parquet(path)
    params = {"sleeper": {"seconds": 0}}
    inputs = {"primary.parquet": path}
    result = run_tool("diagnostics", [], inputs, params, tmp_path, Recorder(), run_options=DIAGNOSTICS)
    assert result["agents"]["sleeper"]["data"]["rows"] == 7


def test_failing_sleeper_makes_the_result_partial(primary: Path, tmp_path: Path) -> None:
    params = {"sleeper": {"seconds": 0, "fail": True}}
    inputs = {"primary.csv": primary}
    result = run_tool("diagnostics", [], inputs, params, tmp_path, Recorder(), run_options=DIAGNOSTICS)
    assert result["status"] == "partial"
    envelope = result["agents"]["sleeper"]
    assert envelope["status"] == "error" and "failed on purpose" in envelope["error"]


def test_runaway_sleeper_ignores_the_soft_limit(primary: Path, tmp_path: Path) -> None:
    progress = Recorder()
    params = {"sleeper": {"seconds": 0.5, "runaway": True}}
    result = run_tool(
        "diagnostics",
        [],
        {"primary.csv": primary},
        params,
        tmp_path,
        progress,
        soft_deadline=time.time() + 0.1,
        run_options=DIAGNOSTICS,
    )
    assert result["status"] == "success" and result["agents"]["sleeper"]["data"]["seconds_slept"] >= 0.5
    assert all("Slept" not in message for _, _, message in progress.events)  # never a word from it


def test_soft_limit_stops_the_running_agent_and_skips_the_rest(
    primary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = registry.TOOLS["diagnostics"]
    monkeypatch.setitem(registry.TOOLS, "diagnostics", dataclasses.replace(spec, optional_agents=("unified-profiler",)))
    started = time.monotonic()
    result = run_tool(
        "diagnostics",
        ["sleeper", "unified-profiler"],
        {"primary.csv": primary},
        {"sleeper": {"seconds": 30, "step_s": 0.05}},
        tmp_path,
        Recorder(),
        soft_deadline=time.time() + 0.3,
        run_options=DIAGNOSTICS,
    )
    assert time.monotonic() - started < 10
    assert result["status"] == "partial" and result["summary"]["agents_failed"] == 2
    sleeper, profiler = result["agents"]["sleeper"], result["agents"]["unified-profiler"]
    assert sleeper["error"] == f"Sleeper stopped: {SOFT_LIMIT_MESSAGE}"
    assert profiler["error"] == f"Unified Profiler did not run: {SOFT_LIMIT_MESSAGE}"
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert [agent["error"] for agent in report["agents"]] == [sleeper["error"], profiler["error"]]
    assert (tmp_path / "diagnostics.xlsx").stat().st_size > 0


def test_soft_limit_in_the_clean_chain_still_writes_the_data(primary: Path, tmp_path: Path) -> None:
    result = run_tool("clean-my-data", [], {"primary.csv": primary}, {}, tmp_path, Recorder(), soft_deadline=0.0)
    assert result["status"] == "partial" and result["steps"] == []
    assert all(SOFT_LIMIT_MESSAGE in envelope["error"] for envelope in result["agents"].values())
    assert pl.read_csv(tmp_path / "cleaned_data.csv").equals(pl.read_csv(primary))
    assert {o["name"] for o in result["outputs"]} >= {"cleaned_data.csv", "quarantine.csv", "cleaning_report.json"}


def test_soft_limit_stops_the_streaming_profiler(primary: Path, tmp_path: Path) -> None:
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "readiness-rater"],
        {"primary.csv": primary},
        {},
        tmp_path / "out",
        Recorder(),
        soft_deadline=time.time(),
        run_options=RunOptions(streaming_threshold_bytes=1),  # every file is "large": streamed
    )
    assert result["status"] == "partial" and result["summary"]["inputs"]["primary"]["streamed"]
    assert result["agents"]["unified-profiler"]["error"].endswith(SOFT_LIMIT_MESSAGE)
    assert "in-memory limit" in result["agents"]["readiness-rater"]["error"]
    assert (tmp_path / "out" / "data_profile_report.json").exists()
