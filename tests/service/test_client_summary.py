"""`submit --follow`'s closing summary, the checks of a submit against the server's catalog, and `watch`'s count:
the client's pure parts (the same against the live service: tests/e2e/test_cli_first_run.py)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agents import registry
from service.cli import command_path
from service.client import (
    SseEvent,
    ToolCatalog,
    UsageError,
    WatchBoard,
    add_submit_parser,
    format_submit_summary,
    plan_submit,
)

CATALOG = ToolCatalog.from_api(registry.catalog())  # what GET /tools serves


def submit_plan(tmp_path: Path, file_name: str, *extra: str) -> Any:
    path = tmp_path / file_name
    path.write_text("a,b\n1,2\n")
    parser = argparse.ArgumentParser()
    add_submit_parser(parser.add_subparsers(dest="command"))
    return plan_submit(parser.parse_args(["submit", str(path), *extra]))


# --- the catalog's checks -----------------------------------------------------------------------


def test_an_unknown_tool_names_the_valid_ones_and_the_closest() -> None:
    with pytest.raises(UsageError) as raised:
        CATALOG.tool("clean-my-dta")
    message = str(raised.value)
    assert "did you mean 'clean-my-data'?" in message
    assert all(tool_id in message for tool_id in registry.listed_tools())
    with pytest.raises(UsageError, match="valid: ") as raised:
        CATALOG.tool("zzz")
    assert "did you mean" not in str(raised.value)


def test_an_agent_outside_the_tool_names_the_tools_agents(tmp_path: Path) -> None:
    plan = submit_plan(tmp_path, "data.csv", "--agents", "type-fixer,quarantine-agnt")
    with pytest.raises(UsageError) as raised:
        CATALOG.check(plan, "clean-my-data")
    message = str(raised.value)
    assert "unknown clean-my-data agent 'quarantine-agnt' (did you mean 'quarantine-agent'?)" in message
    assert "null-handler" in message
    plan = submit_plan(tmp_path, "data.csv", "--agents", "unified-profiler")  # another tool's
    with pytest.raises(UsageError, match="unknown clean-my-data agent 'unified-profiler'; valid: cleanse-"):
        CATALOG.check(plan, "clean-my-data")


@pytest.mark.parametrize("extension", sorted(registry.DATA_CONTENT_TYPES))
def test_every_extension_the_server_reads_is_accepted(tmp_path: Path, extension: str) -> None:
    plan = CATALOG.check(submit_plan(tmp_path, f"data{extension.upper()}"), "profile-my-data")
    (declared,) = plan.declared
    assert declared["name"] == f"primary{extension}"
    assert declared["content_type"] in registry.accepted_content_types(declared["name"])


def test_an_extension_the_server_does_not_read_lists_those_it_does(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unsupported file type '.pdf'; accepted: ") as raised:
        CATALOG.check(submit_plan(tmp_path, "report.pdf"), "profile-my-data")
    listed = str(raised.value).rsplit("accepted: ", 1)[1].split(", ")
    assert set(listed) == set(registry.DATA_CONTENT_TYPES) >= {".txt", ".jsonl", ".ndjson", ".tsv"}


def test_a_guessed_type_the_server_refuses_becomes_octet_stream(tmp_path: Path) -> None:
    tools = {"tools": [{"tool_id": "t", "agents": [], "inputs": [{"role": "primary", "content_types": {
        "csv": ["application/octet-stream", "text/x-csv"]}}]}]}  # fmt: skip
    (declared,) = ToolCatalog.from_api(tools).check(submit_plan(tmp_path, "data.csv"), "t").declared
    assert declared["content_type"] == "application/octet-stream"


# --- the summary --------------------------------------------------------------------------------


def clean_result(alerts: int) -> dict[str, Any]:
    severities = ("critical", "high", "medium", "low")
    envelope = {
        "status": "success",
        "summary_metrics": {},
        "alerts": [{"severity": severities[i % 4], "message": f"alert {i} " + "x" * 300} for i in range(alerts)],
    }
    return {
        "status": "success",
        "agents": {"quarantine-agent": envelope, "type-fixer": {"status": "partial", "alerts": []}},
        "summary": {
            "primary": "orders.csv",
            "rows": 337_412,
            "columns": 18,
            "rows_out": 337_400,
            "columns_out": 18,
            "rows_quarantined": 12,
            "cells_changed": 85,
            "alerts_by_severity": {s: sum(i % 4 == n for i in range(alerts)) for n, s in enumerate(severities)},
            "quality_grade": None,
            "data_ready_for_pipeline": True,
        },
    }


TASK = {
    "task_id": "0d5c0000-0000-4000-8000-000000000001",
    "tool_id": "clean-my-data",
    "status": "COMPLETED",
    "started_at": "2026-12-06T10:00:00.000000Z",
    "finished_at": "2026-12-06T10:00:04.250000Z",
}
FILES = [
    {"name": "cleaned_data.csv", "size": 1_234_567, "url": "http://store/a?X-Amz-Signature=1"},
    {"name": "quarantine.csv", "size": 900, "url": "http://store/b?X-Amz-Signature=2"},
]


def test_the_summary_says_what_happened_in_a_few_lines() -> None:
    text = format_submit_summary(TASK, clean_result(alerts=3000), FILES)
    lines = text.splitlines()
    assert len(lines) <= 20
    assert lines[0] == f"COMPLETED: clean-my-data on orders.csv in 4.2 s, task {TASK['task_id']}"
    assert "rows: 337,412 in → 337,400 out (12 quarantined, 85 cells changed)" in lines
    assert "outcome: ready for the pipeline: yes" in lines
    assert "agents: 1 of 2 succeeded; not: type-fixer" in lines
    assert "alerts: 750 critical, 750 high, 750 medium, 750 low" in lines
    assert sum(line.startswith("  critical") for line in lines) == 5  # the most severe first
    assert "  … 2995 more in the reports" in lines
    assert all(len(line) < 200 for line in lines)
    assert f"download {TASK['task_id']} DIR" in text and command_path() in text
    assert "  cleaned_data.csv  1.2 MB" in lines and "X-Amz-Signature" not in text


def test_the_summary_of_saved_outputs_says_where() -> None:
    saved = [{"name": f["name"], "path": f"out/{f['name']}", "size": f["size"]} for f in FILES]
    text = format_submit_summary(TASK, clean_result(alerts=0), FILES, Path("out"), saved)
    assert "alerts: none" in text.splitlines()
    assert "saved in out/:\n  cleaned_data.csv  1.2 MB\n  quarantine.csv    900 bytes\n" in text


def test_a_profile_summary_has_its_grade_and_shape() -> None:
    result = {
        "agents": {"readiness-rater": {"status": "success", "summary_metrics": {
            "readiness_status": "Needs Review", "readiness_score": 71.5}}},
        "summary": {"rows": 4, "columns": 3, "quality_grade": "B", "quality_score": 82.4,
                    "alerts_by_severity": {"critical": 0, "high": 1, "medium": 0, "low": 0}},
    }  # fmt: skip
    lines = format_submit_summary({**TASK, "tool_id": "profile-my-data"}, result, []).splitlines()
    assert lines[1:4] == [
        "rows: 4 × 3 columns",
        "outcome: grade B (quality 82.4/100); readiness Needs Review (71.5/100)",
        "alerts: 0 critical, 1 high, 0 medium, 0 low",
    ]
    assert lines[-1] == "outputs: none"


# --- watch --------------------------------------------------------------------------------------


def rendered(board: WatchBoard) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(board.render())
    return console.export_text()


def test_watch_counts_the_tasks_it_shows_running() -> None:
    """A task that starts after the list was read is counted as it appears, and no longer once it ends."""
    board = WatchBoard()
    assert "watching 0 running task(s)" in rendered(board)
    task = {"task_id": "t-1", "tool_id": "profile-my-data", "status": "QUEUED", "progress": 0}
    board.apply(SseEvent("status", json.dumps(task), "1"))
    board.apply(SseEvent("status", json.dumps({**task, "status": "PROCESSING"}), "2"))
    assert "watching 1 running task(s)" in rendered(board)
    board.apply(SseEvent("done", json.dumps({**task, "status": "COMPLETED", "progress": 100}), "3"))
    text = rendered(board)
    assert "watching 0 running task(s)" in text and "COMPLETED" in text
