"""Run a tool's chain of agents on local input files: the one entry point a worker runs in its process pool.

Order of work: validate parameters (nothing is read before they are known to be good), parse each input
once, run the agents in order, write the reports. An input or parameter error propagates (the task
fails); any other failure of an agent becomes that agent's ``error`` envelope and the result is
``partial``, and the chain goes on. Everything returned is plain JSON-serialisable data, and every
exception raised pickles, so both cross the process boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from agents import registry
from agents.envelope import AgentInputs, AgentResult, error_envelope
from agents.errors import InvalidFileError, InvalidParametersError
from agents.readers import read_table
from agents.reports.excel import write_excel_report
from agents.reports.json_report import write_json_report

ChainProgress = Callable[[int, str | None, str], None]
"""Overall progress: percent 0..100 (never decreasing), the running agent (None between agents), message."""

READ_END = 10  # percent reached when every input is parsed
AGENTS_END = 90  # percent reached when the last agent is done; reports fill the rest


class _MonotonicProgress:
    def __init__(self, sink: ChainProgress) -> None:
        self.sink = sink
        self.percent = 0

    def __call__(self, percent: float, agent_id: str | None, message: str) -> None:
        self.percent = max(self.percent, min(100, int(percent)))
        self.sink(self.percent, agent_id, message)


def run_tool(
    tool_id: str,
    agent_ids: list[str],
    inputs: dict[str, Path],
    parameters: dict[str, Any],
    out_dir: Path,
    progress: ChainProgress,
) -> dict[str, Any]:
    started = time.perf_counter()
    report = _MonotonicProgress(progress)
    chain = registry.resolve_chain(tool_id, agent_ids or None)
    registry.validate_parameters(tool_id, chain, parameters)
    agent_params = {agent_id: registry.parse_parameters(agent_id, parameters.get(agent_id)) for agent_id in chain}
    timings: dict[str, int] = {}

    agent_inputs = _read_inputs(tool_id, inputs, report, timings)
    results: dict[str, AgentResult] = {}
    span = (AGENTS_END - READ_END) / len(chain)
    for position, agent_id in enumerate(chain):
        spec = registry.agent(agent_id)
        base = READ_END + position * span
        report(base, agent_id, f"Running {spec.name}")

        def agent_progress(fraction: float, message: str, base: float = base, agent_id: str = agent_id) -> None:
            report(base + span * min(max(fraction, 0.0), 1.0), agent_id, message)

        agent_started = time.perf_counter()
        try:
            run = registry.load_run(spec)
            results[agent_id] = run(agent_inputs, agent_params[agent_id], agent_progress)
        except (InvalidFileError, InvalidParametersError):
            raise
        except Exception as error:  # noqa: BLE001 - one failing agent must not stop the chain
            elapsed = round((time.perf_counter() - agent_started) * 1000)
            message = f"{spec.name} failed: {type(error).__name__}: {error}"
            results[agent_id] = AgentResult(envelope=error_envelope(agent_id, spec.name, message, elapsed))
        timings[agent_id] = round((time.perf_counter() - agent_started) * 1000)
        report(base + span, None, f"{spec.name} done")

    report(AGENTS_END, None, "Writing reports")
    reports_started = time.perf_counter()
    envelopes = [results[agent_id].envelope.to_dict() for agent_id in chain]
    outputs = _write_reports(tool_id, chain, results, envelopes, out_dir)
    timings["reports"] = round((time.perf_counter() - reports_started) * 1000)
    timings["total"] = round((time.perf_counter() - started) * 1000)
    report(100, None, "Done")
    status = "success" if all(envelope["status"] == "success" for envelope in envelopes) else "partial"
    return {
        "status": status,
        "tool_id": tool_id,
        "agents": {envelope["agent_id"]: envelope for envelope in envelopes},
        "summary": _summary(agent_inputs, envelopes),
        "outputs": [{"name": name, "content_type": registry.output_content_type(name)} for name in outputs],
        "timings_ms": timings,
    }


def _read_inputs(
    tool_id: str, inputs: dict[str, Path], report: _MonotonicProgress, timings: dict[str, int]
) -> AgentInputs:
    by_role: dict[str, tuple[str, Path]] = {}
    for name, path in inputs.items():
        role = registry.input_role(name, tool_id)
        if role is None:
            raise InvalidFileError(f"{name}: not an input of tool '{tool_id}'", {"file": name})
        if role in by_role:
            raise InvalidFileError(f"{name}: more than one {role} input", {"file": name})
        if role != "parameters":
            by_role[role] = (name, path)
    if "primary" not in by_role:
        raise InvalidFileError("the primary input (primary.csv, primary.tsv or primary.txt) is missing")
    frames: dict[str, pl.DataFrame] = {}
    for index, role in enumerate(("primary", "baseline")):
        if role not in by_role:
            continue
        name, path = by_role[role]
        report(1 + index * 5, None, f"Reading {name}")
        read_started = time.perf_counter()
        frames[role] = read_table(path, name)
        timings[f"read_{role}"] = round((time.perf_counter() - read_started) * 1000)
    report(READ_END, None, "Inputs parsed")
    baseline = by_role.get("baseline")
    return AgentInputs(
        primary=frames["primary"],
        primary_name=by_role["primary"][0],
        baseline=frames.get("baseline"),
        baseline_name=baseline[0] if baseline else None,
    )


def _write_reports(
    tool_id: str,
    chain: list[str],
    results: dict[str, AgentResult],
    envelopes: list[dict[str, Any]],
    out_dir: Path,
) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    basename = registry.tool(tool_id).report_basename
    all_issues = {agent_id: results[agent_id].row_level_issues for agent_id in chain}
    inline_issues = [
        {"agent_id": envelope["agent_id"], **issue} for envelope in envelopes for issue in envelope["row_level_issues"]
    ]
    json_name, excel_name = f"{basename}.json", f"{basename}.xlsx"
    # Polars serialises the JSON report's row-level issues without the GIL, so the two overlap.
    with ThreadPoolExecutor(max_workers=1) as pool:
        json_written = pool.submit(write_json_report, out_dir / json_name, tool_id, envelopes, all_issues)
        write_excel_report(out_dir / excel_name, tool_id, envelopes, inline_issues)
        json_written.result()
    return [json_name, excel_name]


def _summary(inputs: AgentInputs, envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    alerts_by_severity = {"critical": 0, "high": 0, "medium": 0, "low": 0}
    for envelope in envelopes:
        for alert in envelope.get("alerts", []):
            alerts_by_severity[alert["severity"]] = alerts_by_severity.get(alert["severity"], 0) + 1
    summary: dict[str, Any] = {
        "rows": inputs.primary.height,
        "columns": inputs.primary.width,
        "primary": inputs.primary_name,
        "baseline": inputs.baseline_name,
        "agents_succeeded": sum(envelope["status"] == "success" for envelope in envelopes),
        "agents_failed": sum(envelope["status"] != "success" for envelope in envelopes),
        "alerts": sum(alerts_by_severity.values()),
        "alerts_by_severity": alerts_by_severity,
        "row_level_issues_total": sum(
            envelope.get("data", {}).get("row_level_issues_total", len(envelope.get("row_level_issues", [])))
            for envelope in envelopes
        ),
        "quality_score": None,
        "quality_grade": None,
    }
    for envelope in envelopes:
        quality = envelope.get("data", {}).get("quality_summary")
        if quality:
            summary["quality_score"] = quality["overall_quality_score"]
            summary["quality_grade"] = quality["quality_grade"]
    return summary
