"""clean-my-data and transform-my-data on a primary too large for memory (issue 15): through agents.chain.run_tool with
a streaming threshold of 0, the agents that stream (agents.streamed.STREAMED_AGENTS) give the task the in-memory run of
the same agents gives: the same envelopes, step records, summary, cleaned_data.csv and quarantine.csv bytes (and the
transform's outputs); the agents that do not stream say why and are not charged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import agents.chain
from agents import registry
from agents.chain import run_tool
from agents.options import RunOptions
from agents.streamed import STREAMED_AGENTS

ROWS = 1_200


def _line(i: int) -> str:
    name = ["  Ann ", "ann", "BOB", "Bob  Smith", "NA", "", "Zoë"][i % 7]
    amount = ["12", "7.5", "N/A", "", '"1,200"', "x"][i % 6] if i % 50 else "3"
    code = f"{i % 40:03d}"
    day = f"2024-02-{i % 28 + 1:02d}" if i % 9 else "null"
    email = ["a@x.org", "A@X.org", "b@y.com", "", "c@z.net"][i % 5]
    flag = ["yes", "no", "Y", "n"][i % 4]
    return f"{i % 300},{name},{amount},{code},{day},{email},{flag}"


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "primary.csv"
    lines = ["id,name,amount,code,day,email,flag", *(_line(i) for i in range(ROWS))]
    lines += lines[5:60]  # exact duplicate rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(tool: str, agents: list[str], csv: Path, parameters: dict[str, Any], out: Path, threshold: int | None) -> Any:
    started: list[str] = []
    result = run_tool(
        tool,
        agents,
        {"primary.csv": csv},
        parameters,
        out,
        lambda *_: None,
        run_options=RunOptions(streaming_threshold_bytes=threshold),
        on_agent_start=started.append,
    )
    json.dumps(result, allow_nan=False)
    return result, started


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    agents = {
        agent_id: {key: value for key, value in envelope.items() if key != "execution_time_ms"}
        for agent_id, envelope in result["agents"].items()
    }
    manifest = agents.get("cleanse-writeback", {}).get("data", {}).get("manifest")
    if manifest is not None:  # when it was written and how long each step took
        manifest.pop("generated_at")
        for transformation in manifest["transformations"]:
            transformation.pop("duration_ms")
    steps = [{key: value for key, value in step.items() if key != "duration_ms"} for step in result["steps"]]
    summary = {key: value for key, value in result["summary"].items() if key != "inputs"}
    return {
        "status": result["status"],
        "agents": agents,
        "steps": steps,
        "summary": summary,
        "outputs": result["outputs"],
    }


CLEAN_RUNS: list[tuple[list[str], dict[str, Any]]] = [
    (["type-fixer", "field-standardization", "duplicate-resolver"], {}),
    (
        ["type-fixer", "field-standardization", "duplicate-resolver"],
        {
            "field-standardization": {"case_strategy": "lowercase"},
            "duplicate-resolver": {"detection_types": ["exact", "case_variations", "email_case", "missing_values"]},
        },
    ),
    (["type-fixer"], {"type-fixer": {"preserve_mixed_types": False}}),
    (
        ["type-fixer", "field-standardization", "duplicate-resolver", "null-handler", "outlier-remover"],
        {},
    ),
    (
        ["type-fixer", "null-handler", "outlier-remover"],
        {
            "null-handler": {"global_strategy": "drop_rows"},
            "outlier-remover": {"detection_method": "iqr", "removal_strategy": "remove"},
        },
    ),
    (["duplicate-resolver"], {}),
]


@pytest.mark.parametrize("index", range(len(CLEAN_RUNS)))
def test_a_streamed_clean_gives_what_the_in_memory_one_gives(tmp_path: Path, csv: Path, index: int) -> None:
    agents, parameters = CLEAN_RUNS[index]
    agents = [agent for agent in agents if agent in STREAMED_AGENTS]
    if not agents:
        pytest.skip("none of these agents streams yet")
    registry.validate_parameters("clean-my-data", agents, parameters)
    memory, memory_started = _run("clean-my-data", agents, csv, parameters, tmp_path / "memory", None)
    streamed, streamed_started = _run("clean-my-data", agents, csv, parameters, tmp_path / "streamed", 0)
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    assert memory["summary"]["inputs"]["primary"].get("streamed") is None
    assert _comparable(streamed) == _comparable(memory)
    assert streamed_started == memory_started == agents
    for name in ("cleaned_data.csv", "quarantine.csv"):
        streamed_bytes = (tmp_path / "streamed" / name).read_bytes()
        assert streamed_bytes == (tmp_path / "memory" / name).read_bytes(), name


def test_the_default_clean_chain_streams_whole(tmp_path: Path, csv: Path) -> None:
    """Every agent of clean-my-data's default chain streams: the same task as in memory, every agent charged."""
    chain = registry.resolve_chain("clean-my-data", None)
    assert set(chain) <= STREAMED_AGENTS
    memory, memory_started = _run("clean-my-data", [], csv, {}, tmp_path / "memory", None)
    streamed, streamed_started = _run("clean-my-data", [], csv, {}, tmp_path / "streamed", 0)
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    assert _comparable(streamed) == _comparable(memory)
    assert streamed_started == memory_started == chain
    assert memory["summary"]["rows_quarantined"] == 55  # the exact duplicates
    for name in ("cleaned_data.csv", "quarantine.csv"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name


def test_agents_that_do_not_stream_say_so_and_cost_nothing(
    tmp_path: Path, csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = registry.resolve_chain("clean-my-data", None)
    not_streaming = {"cleanse-previewer", "null-handler"}
    monkeypatch.setattr(agents.chain, "STREAMED_AGENTS", STREAMED_AGENTS - not_streaming)
    result, started = _run("clean-my-data", [], csv, {}, tmp_path / "out", 0)
    assert result["status"] == "partial"
    assert started == [agent for agent in chain if agent not in not_streaming]
    for agent in not_streaming:
        envelope = result["agents"][agent]
        assert envelope["status"] == "error" and "above the in-memory limit" in envelope["error"]
    assert [step["agent_id"] for step in result["steps"]] == chain
    written = pl.read_csv(tmp_path / "out" / "cleaned_data.csv", infer_schema=False)
    assert written.height == result["summary"]["rows_out"] == ROWS + 55 - result["summary"]["rows_quarantined"]


TRANSFORMS: list[dict[str, Any]] = [
    {"commands": ["remove rows where email is null", "sort by id descending"]},
    {
        "operations": [
            {"op": "cast", "columns": ["amount"], "to": "number", "on_invalid": "null"},
            {"op": "fill_nulls", "columns": ["amount"], "strategy": "median"},
            {"op": "deduplicate"},
            {"op": "rename", "mapping": {"name": "full_name"}},
        ]
    },
]


@pytest.mark.parametrize("index", range(len(TRANSFORMS)))
def test_a_streamed_transform_gives_what_the_in_memory_one_gives(tmp_path: Path, csv: Path, index: int) -> None:
    if "transformer" not in STREAMED_AGENTS:
        pytest.skip("the transformer does not stream yet")
    parameters = {"transformer": TRANSFORMS[index]}
    registry.validate_parameters("transform-my-data", ["transformer"], parameters)
    memory, _ = _run("transform-my-data", [], csv, parameters, tmp_path / "memory", None)
    streamed, _ = _run("transform-my-data", [], csv, parameters, tmp_path / "streamed", 0)
    assert streamed["summary"]["inputs"]["primary"]["streamed"] is True
    assert memory["status"] == "success"
    assert _comparable(streamed) == _comparable(memory)
    for name in ("transformed_data.csv", "recipe.json"):
        assert (tmp_path / "streamed" / name).read_bytes() == (tmp_path / "memory" / name).read_bytes(), name
    assert pl.read_parquet(tmp_path / "streamed" / "transformed_data.parquet").equals(
        pl.read_parquet(tmp_path / "memory" / "transformed_data.parquet")
    )
