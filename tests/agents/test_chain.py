from __future__ import annotations

import dataclasses
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict

from agents import registry
from agents.chain import run_tool
from agents.envelope import ROW_INDEX_COLUMN, AgentInputs, AgentResult, Envelope, Progress
from agents.errors import InvalidFileError, InvalidParametersError
from agents.options import RunOptions


def write_csv(tmp_path: Path, rows: int = 1500) -> Path:
    path = tmp_path / "primary.csv"
    pl.DataFrame(
        {
            "id": range(rows),
            "value": [None if i % 4 == 0 else i * 0.5 for i in range(rows)],
            "tag": ["a", "b", "c"] * (rows // 3),
        }
    ).write_csv(path)
    return path


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str | None, str]] = []

    def __call__(self, percent: int, agent: str | None, message: str) -> None:
        self.events.append((percent, agent, message))


def ignore_progress(percent: int, agent: str | None, message: str) -> None:
    pass


def test_profile_tool_end_to_end(tmp_path: Path) -> None:
    progress = Recorder()
    out_dir = tmp_path / "out"
    result = run_tool(
        "profile-my-data",
        ["unified-profiler"],
        {"primary.csv": write_csv(tmp_path)},
        {"unified-profiler": {"top_n_values": 3}},
        out_dir,
        progress,
    )
    json.dumps(result)
    assert result["status"] == "success" and result["tool_id"] == "profile-my-data"
    assert [o["name"] for o in result["outputs"]] == [
        "data_profile_report.json", "data_profile_report.xlsx", "row_level_issues.parquet", "row_level_issues.csv",
    ]  # fmt: skip
    assert all((out_dir / o["name"]).stat().st_size > 0 for o in result["outputs"])
    envelope = result["agents"]["unified-profiler"]
    assert envelope["data"]["parameters"]["top_n_values"] == 3
    assert len(envelope["row_level_issues"]) == 375 == envelope["data"]["row_level_issues_total"]
    assert result["summary"]["rows"] == 1500 and result["summary"]["columns"] == 3
    assert result["summary"]["quality_grade"] in {"A", "B", "C", "D", "F"}
    assert {"read_primary", "unified-profiler", "reports", "total"} <= set(result["timings_ms"])
    percents = [event[0] for event in progress.events]
    assert percents == sorted(percents) and percents[-1] == 100 and 0 <= percents[0] <= 5
    assert progress.events[0][2] == "Reading primary.csv"
    assert any(agent == "unified-profiler" for _, agent, _ in progress.events)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def fake_risk(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    progress(0.5, "scoring")
    return AgentResult(
        Envelope(status="success", agent_id="score-risk", agent_name="Risk", summary_metrics={"rows": inputs.row_count})
    )


def exploding(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    progress(0.3, "about to fail")
    raise RuntimeError("kaboom")


def panicking(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    raise pl.exceptions.PanicException("assertion failed: i < self.len()")  # a Polars panic: a BaseException


@pytest.mark.parametrize("failure", [exploding, panicking])
def test_failing_agent_makes_the_result_partial_and_the_chain_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Any
) -> None:
    profiler = registry.AGENTS["unified-profiler"]
    monkeypatch.setitem(registry.AGENTS, "unified-profiler", dataclasses.replace(profiler, run=failure))
    monkeypatch.setitem(
        registry.AGENTS,
        "score-risk",
        dataclasses.replace(registry.AGENTS["score-risk"], parameters_model=NoParams, run=fake_risk),
    )
    progress = Recorder()
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "score-risk"],
        {"primary.csv": write_csv(tmp_path)},
        {},
        tmp_path / "out",
        progress,
    )
    assert result["status"] == "partial"
    failed = result["agents"]["unified-profiler"]
    assert failed["status"] == "error" and ("kaboom" in failed["error"] or "i < self.len()" in failed["error"])
    assert result["agents"]["score-risk"]["status"] == "success"
    assert result["agents"]["score-risk"]["summary_metrics"] == {"rows": 1500}
    assert result["summary"]["agents_failed"] == 1
    percents = [event[0] for event in progress.events]
    assert percents == sorted(percents) and percents[-1] == 100
    assert (tmp_path / "out" / "data_profile_report.xlsx").exists()


def test_input_error_raised_by_an_agent_propagates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_input(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
        raise InvalidFileError("primary.csv: column x is unusable")

    monkeypatch.setitem(
        registry.AGENTS, "unified-profiler", dataclasses.replace(registry.AGENTS["unified-profiler"], run=bad_input)
    )
    with pytest.raises(InvalidFileError, match="unusable"):
        run_tool(
            "profile-my-data", ["unified-profiler"], {"primary.csv": write_csv(tmp_path)}, {}, tmp_path, ignore_progress
        )


def test_parameters_are_validated_before_anything_is_read(tmp_path: Path) -> None:
    progress = Recorder()
    with pytest.raises(InvalidParametersError) as raised:
        run_tool(
            "profile-my-data",
            ["unified-profiler"],
            {"primary.csv": tmp_path / "does-not-exist.csv"},
            {"unified-profiler": {"top_n_values": -1}},
            tmp_path,
            progress,
        )
    assert (raised.value.agent_id, raised.value.field) == ("unified-profiler", "top_n_values")
    assert progress.events == []


def test_malformed_input_fails_with_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "primary.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InvalidFileError, match="line 3 has 3 fields"):
        run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, tmp_path / "out", ignore_progress)


def test_runs_in_a_process_pool_and_errors_cross_it(tmp_path: Path) -> None:
    # "spawn" (or "forkserver"), never "fork": a forked child inherits Polars' thread pool locks and can hang.
    empty = tmp_path / "empty" / "primary.csv"
    empty.parent.mkdir()
    empty.write_text("")
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        good = pool.submit(
            run_tool,
            "profile-my-data",
            ["unified-profiler"],
            {"primary.csv": write_csv(tmp_path)},
            {},
            tmp_path / "out",
            ignore_progress,
        ).result(timeout=120)
        bad = pool.submit(
            run_tool,
            "profile-my-data",
            ["unified-profiler"],
            {"primary.csv": empty},
            {},
            tmp_path / "out2",
            ignore_progress,
        )
        with pytest.raises(InvalidFileError) as raised:
            bad.result(timeout=120)
    assert good["status"] == "success"
    assert raised.value.code == "INVALID_FILE" and "the file is empty" in raised.value.message


def drop_even_ids(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    """Removes rows with an even id, listing only half of them; doubles `value`."""
    frame = inputs.primary
    keep = frame.filter(pl.col("id") % 2 == 1).with_columns(pl.col("value") * 2)
    listed = frame.filter(pl.col("id") % 4 == 0).select(ROW_INDEX_COLUMN, pl.lit("id divisible by 4").alias("reason"))
    return AgentResult(Envelope(status="success", agent_id="a", agent_name="A"), frame=keep, removed=listed)


def cast_tag(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    assert inputs.context.original_rows == 1500 and len(inputs.context.steps) == 1
    frame = inputs.primary.with_columns(pl.col("tag").replace({"a": "A"}))
    return AgentResult(Envelope(status="success", agent_id="b", agent_name="B"), frame=frame)


def test_clean_chain_passes_frames_records_steps_and_quarantines_removed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for agent_id, run in (("cleanse-previewer", drop_even_ids), ("quarantine-agent", cast_tag)):
        monkeypatch.setitem(
            registry.AGENTS,
            agent_id,
            dataclasses.replace(registry.AGENTS[agent_id], parameters_model=NoParams, run=run),
        )
    out = tmp_path / "out"
    result = run_tool(
        "clean-my-data",
        ["cleanse-previewer", "quarantine-agent"],
        {"primary.csv": write_csv(tmp_path)},
        {},
        out,
        ignore_progress,
    )
    assert result["status"] == "success"
    cleaned = pl.read_csv(out / "cleaned_data.csv")
    quarantine = pl.read_csv(out / "quarantine.csv")
    assert cleaned.columns == ["id", "value", "tag"]  # the row index stays internal
    assert cleaned.height == 750 and cleaned["id"].to_list() == list(range(1, 1500, 2))
    assert quarantine.columns[:3] == ["row_index", "agent_id", "reason"]
    assert quarantine.height == 750 and quarantine["row_index"].to_list() == list(range(1, 1501, 2))
    # Data row r of the file has id r - 1; the removed rows keep their values from before the agent.
    assert (quarantine["id"] == quarantine["row_index"] - 1).all()
    reasons = dict(zip(quarantine["id"].to_list(), quarantine["reason"].to_list(), strict=True))
    assert reasons[4] == "id divisible by 4" and reasons[2] == "removed by cleanse-previewer"
    first, second = result["steps"]
    assert (first["rows_before"], first["rows_after"], first["rows_removed"]) == (1500, 750, 750)
    # Kept rows have odd ids, whose values are never null or zero: doubling changes every one of them.
    assert first["columns"]["value"]["cells_changed"] == 750 and first["columns"]["id"]["cells_changed"] == 0
    assert second["columns"]["tag"]["cells_changed"] == sum(1 for i in range(1, 1500, 2) if i % 3 == 0)
    assert second["columns"]["tag"]["dtype_after"] == "String"
    assert result["summary"]["rows_out"] == 750 and result["summary"]["rows_quarantined"] == 750


def test_a_primary_above_the_streaming_threshold_is_profiled_by_streaming(tmp_path: Path) -> None:
    path = write_csv(tmp_path)
    in_memory = run_tool(
        "profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, tmp_path / "a", ignore_progress
    )
    progress = Recorder()
    result = run_tool(
        "profile-my-data",
        ["unified-profiler", "score-risk"],
        {"primary.csv": path},
        {},
        tmp_path / "b",
        progress,
        run_options=RunOptions(streaming_threshold_bytes=1000),
    )
    assert result["summary"]["inputs"]["primary"]["streamed"] is True
    assert (result["summary"]["rows"], result["summary"]["columns"]) == (1500, 3)
    streamed, reference = result["agents"]["unified-profiler"], in_memory["agents"]["unified-profiler"]
    assert streamed["status"] == "success"
    assert streamed["data"]["fields"] == reference["data"]["fields"]
    # The agents that need the whole frame say why they did not run.
    assert result["status"] == "partial" and "in-memory limit" in result["agents"]["score-risk"]["error"]
    percents = [event[0] for event in progress.events]
    assert percents == sorted(percents) and percents[-1] == 100
    assert (tmp_path / "b" / "data_profile_report.xlsx").exists()


def drops_the_row_index(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
    """A faulty agent: its frame lost the row index the chain accounts rows by."""
    frame = inputs.primary.drop(ROW_INDEX_COLUMN).head(10)
    return AgentResult(Envelope(status="success", agent_id="a", agent_name="A"), frame=frame)


@pytest.mark.parametrize("threshold", [None, 0], ids=["in_memory", "streamed"])
def test_an_agent_output_the_chain_cannot_take_is_that_agents_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int | None
) -> None:
    """Before: in memory, the chain's own check raised out of run_tool (the task ended INTERNAL_ERROR)."""
    spec = registry.AGENTS["cleanse-previewer"]
    monkeypatch.setitem(registry.AGENTS, "cleanse-previewer", dataclasses.replace(spec, run=drops_the_row_index))
    source = write_csv(tmp_path)
    out = tmp_path / "out"
    options = RunOptions(streaming_threshold_bytes=threshold)
    if threshold == 0:  # the streamed flow runs the agent on a scan: the same faulty frame, as a plan

        def drops_lazily(inputs: AgentInputs, params: BaseModel, progress: Progress) -> AgentResult:
            assert inputs.scan is not None
            result = AgentResult(Envelope(status="success", agent_id="a", agent_name="A"))
            result.scan = inputs.scan.drop(ROW_INDEX_COLUMN)
            return result

        monkeypatch.setitem(registry.AGENTS, "cleanse-previewer", dataclasses.replace(spec, run=drops_lazily))
    result = run_tool(
        "clean-my-data", ["cleanse-previewer", "null-handler"], {"primary.csv": source}, {}, out, ignore_progress,
        run_options=options,
    )  # fmt: skip
    assert result["status"] == "partial"
    failed = result["agents"]["cleanse-previewer"]
    assert failed["status"] == "error" and "dropped the row index column" in failed["error"]
    assert result["agents"]["null-handler"]["status"] == "success"
    assert pl.read_csv(out / "cleaned_data.csv").height == 1500  # the data as it was before the faulty agent


def test_an_output_the_flow_cannot_compare_leaves_no_trace() -> None:
    """Review: the flow quarantined the removed row and took the agent's artifacts and layouts before the step
    record failed; the chain then kept the old frame, so the row was both cleaned and quarantined."""
    from agents.chain import _DataFlow
    from agents.envelope import TEXT_LAYOUTS_ARTIFACT, error_envelope
    from agents.layouts import NumberLayout

    flow = _DataFlow(pl.DataFrame({ROW_INDEX_COLUMN: [1, 2, 3], "a": [1, 2, 3]}))
    uncomparable = pl.DataFrame({ROW_INDEX_COLUMN: [1, 2], "a": pl.Series([object(), object()], dtype=pl.Object)})
    result = AgentResult(
        envelope=error_envelope("x", "X", "m", 0),
        frame=uncomparable,
        artifacts={"seen": 1, TEXT_LAYOUTS_ARTIFACT: {"a": NumberLayout(2, False)}},
    )
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever Polars raises on an Object column
        flow.accept("x", "X", result, 0)
    assert (flow.frame.height, flow.rows_quarantined, flow.artifacts, flow.layouts, flow.steps) == (3, 0, {}, {}, [])
