"""Benchmark and memory study of ``unified-profiler``, each measurement in a fresh child process.

    python bench/bench_profiler.py [--rows 1000000] [--repeat 3]          # speed: profiler vs read_csv
    python bench/bench_profiler.py --memory [--repeat 1]                   # where the memory goes
    python bench/bench_profiler.py --large-gb 5 --cap-gb 4                 # a 5 GB CSV under a 4 GB cap

Speed (default): ``run_tool("profile-my-data", ["unified-profiler"], ...)`` against a bare
``pl.read_csv`` of the same file, alternating, best of N; ratio target <= 3x; peak RSS of the child
against the file size, target <= 1.5x.

``--memory``: the same file read and profiled in several ways, each under three settings of Polars'
allocator (jemalloc: the default, which keeps freed pages for ~10 s, ``dirty_decay_ms:100`` and
``dirty_decay_ms:0``, via ``_RJEM_MALLOC_CONF``): ``pl.read_csv``, ``read_csv(low_memory=True)``,
``scan_csv().collect(engine="streaming")``, the chain's reader (``agents.readers.read_table``),
CSV -> Arrow IPC with ``sink_ipc`` then ``read_ipc`` (Polars 2 memory-maps it: RSS counts the mapped
file pages, so RssAnon is reported too), the in-memory profiler (reader + ``profiler.run``) and the
streaming one (``agents.profile.streaming.profile_large``). Reported: seconds, peak RSS (the child's
VmHWM), peak RssAnon and RssFile polled from /proc/<pid>/status every 5 ms.

``--large-gb N --cap-gb M``: writes an N GB CSV (bench/gen_csv.py in 1M-row chunks) to $TMPDIR, runs the chain's
in-memory profiler and the streaming one on it, then the other tools' streamed paths through ``run_tool`` with a
streaming threshold of 0 (``search_streaming``: bench_tools' search and aggregate; ``transform_streaming``: its
recipe; ``clean_streaming``: the clean agents that stream), each under a cap of M GiB, and deletes the file
(``--large-modes`` picks the runs; ``--large-format parquet`` or ``ndjson`` uploads it in that format, converted
from the CSV by Polars' streaming engine). The cap: a watchdog that kills the child when its anonymous resident memory
(RssAnon) passes the cap: a cgroup without swap OOM-kills then, while it would reclaim clean file pages (page
cache, mapped files) instead. ``--rlimit-data`` adds ``RLIMIT_DATA`` (private writable *address space*: jemalloc
and the thread stacks reserve more than they touch, so allocations fail with RssAnon still ~40 % below the cap: 5
GB CSV, 4 GiB, streaming path failed at 2.3 GB RssAnon). There is no systemd (``systemd-run --scope -p MemoryMax``
needs a bus), the cgroup hierarchy is the sandbox's, and ``RLIMIT_AS`` fails Polars long before its RSS reaches the
limit (jemalloc and the thread pools reserve address space: read_csv of 137 MB fails under ``--as=1G``), so it is
not used. Results: bench/results/profiler-<UTC time>.json."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_tools import SEARCHES, TRANSFORM_RECIPES, error_line, proc_status

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
ALLOCATOR_SETTINGS = {
    "default": "",
    "decay-100ms": "dirty_decay_ms:100,muzzy_decay_ms:0",
    "decay-0": "dirty_decay_ms:0,muzzy_decay_ms:0",
}
MEMORY_MODES = (  # --memory
    "read_csv",
    "read_csv_low_memory",
    "scan_streaming",
    "read_table",
    "ipc",
    "profiler",
    "profiler_streaming",
    "tool_streaming",
)
STREAMED_TOOL_MODES: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "search_streaming": ("search-my-data", ["searcher", "aggregator"], SEARCHES["generated"]),
    "transform_streaming": (
        "transform-my-data",
        ["transformer"],
        {"transformer": {"operations": TRANSFORM_RECIPES["generated"]}},
    ),
    "clean_streaming": ("clean-my-data", [], {}),  # the default chain's agents that stream (set in the child)
}
LARGE_MODES = ("profiler", "profiler_streaming", "tool_streaming", *STREAMED_TOOL_MODES)
BYTES_PER_ROW = 137  # of bench/gen_csv.py's 15 columns
TARGET_READ_RATIO = 3.0
TARGET_RSS_RATIO = 1.5


def child(mode: str, path: Path) -> None:
    """Runs in the child: imports first, then times ``mode`` on ``path``; prints one RESULT line."""
    import polars as pl

    sys.path.insert(0, str(ROOT))
    from agents.chain import run_tool
    from agents.envelope import AgentInputs
    from agents.options import RunOptions
    from agents.profile.params import ProfilerParams
    from agents.profile.profiler import run
    from agents.profile.streaming import profile_large
    from agents.readers import read_table

    name = f"primary{path.suffix}"  # the upload name: a large run of another format (--large-format) keeps its suffix
    detail: dict[str, Any] = {}
    started = time.perf_counter()
    if mode == "read_csv":
        rows = pl.read_csv(path).height
    elif mode == "read_csv_low_memory":
        rows = pl.read_csv(path, low_memory=True).height
    elif mode == "scan_streaming":
        rows = pl.scan_csv(path).collect(engine="streaming").height
    elif mode == "read_table":
        rows = read_table(path, name).height
    elif mode == "ipc":
        with tempfile.TemporaryDirectory(dir=path.parent) as directory:
            target = Path(directory) / "primary.arrow"
            pl.scan_csv(path).sink_ipc(target)
            detail["converted_s"] = time.perf_counter() - started
            frame = pl.read_ipc(target)
            frame.select(pl.all().null_count())  # touch every column
            rows = frame.height
            detail["ipc_bytes"] = target.stat().st_size
            del frame
    elif mode == "profiler":  # what the chain does for unified-profiler alone: read_table + run
        frame = read_table(path, name)
        detail["read_s"] = time.perf_counter() - started
        rows = frame.height
        run(AgentInputs(frame, name), ProfilerParams(), lambda *_: None)
    elif mode == "profiler_streaming":
        result = profile_large(path, ProfilerParams(), lambda *_: None, name)
        rows = result.envelope.summary_metrics["total_rows"]
    elif mode == "tool_streaming":  # the production path: the chain routes a file above the threshold
        with tempfile.TemporaryDirectory(dir=path.parent) as out_dir:
            outcome = run_tool(
                "profile-my-data",
                ["unified-profiler"],
                {name: path},
                {},
                Path(out_dir),
                lambda *_: None,
                run_options=RunOptions(streaming_threshold_bytes=0),
            )
        assert outcome["summary"]["inputs"]["primary"].get("streamed"), "the chain did not stream"
        rows = outcome["summary"]["rows"]
        detail["timings_ms"] = outcome["timings_ms"]
    elif mode in STREAMED_TOOL_MODES:  # another tool's production path above the threshold
        tool_id, agent_ids, parameters = STREAMED_TOOL_MODES[mode]
        if not agent_ids:
            from agents import registry
            from agents.streamed import STREAMED_AGENTS

            agent_ids = [agent for agent in registry.resolve_chain(tool_id, None) if agent in STREAMED_AGENTS]
            detail["agents"] = agent_ids
        with tempfile.TemporaryDirectory(dir=path.parent) as out_dir:
            outcome = run_tool(
                tool_id,
                agent_ids,
                {name: path},
                parameters,
                Path(out_dir) / "out",
                lambda *_: None,
                run_options=RunOptions(streaming_threshold_bytes=0),
            )
            detail["outputs_bytes"] = {p.name: p.stat().st_size for p in (Path(out_dir) / "out").iterdir()}
        assert outcome["summary"]["inputs"]["primary"].get("streamed"), "the chain did not stream"
        assert outcome["status"] == "success", [e.get("error") for e in outcome["agents"].values()]
        rows = outcome["summary"]["rows"]
        detail["timings_ms"] = outcome["timings_ms"]
    elif mode == "tool":
        with tempfile.TemporaryDirectory() as out_dir:
            result = run_tool("profile-my-data", ["unified-profiler"], {name: path}, {}, Path(out_dir), lambda *_: None)
        rows = result["summary"]["rows"]
        detail["timings_ms"] = result["timings_ms"]
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - started
    # VmHWM, the high-water mark of this process image: ru_maxrss would also count the parent's RSS at fork
    peak = proc_status().get("VmHWM", 0)
    print("RESULT " + json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak, **detail}), flush=True)


class Watch:
    """Polls a child's /proc status: peak VmRSS, RssAnon, RssFile; kills it when its anonymous memory passes
    ``cap`` (what a cgroup without swap cannot reclaim; clean file pages it would drop instead)."""

    def __init__(self, pid: int, cap: int | None) -> None:
        self._status = proc_status
        self.pid, self.cap = pid, cap
        self.peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self.killed = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            status = self._status(self.pid)
            if not status:
                return
            for key in self.peak:
                self.peak[key] = max(self.peak[key], status.get(key, 0))
            if self.cap is not None and status.get("RssAnon", 0) > self.cap:
                self.killed = True
                os.kill(self.pid, signal.SIGKILL)
                return
            time.sleep(0.005)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def measure(
    mode: str, path: Path, malloc_conf: str = "", cap: int | None = None, rlimit_data: bool = False
) -> dict[str, Any]:
    env = {**os.environ, "_RJEM_MALLOC_CONF": malloc_conf} if malloc_conf else dict(os.environ)

    def limit() -> None:
        if cap is not None and rlimit_data:
            resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=limit,
    )
    watch = Watch(process.pid, cap)
    started = time.perf_counter()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    watch.stop()
    line = next((x for x in reversed(stdout.splitlines()) if x.startswith("RESULT ")), None)
    figures: dict[str, Any] = {
        "mode": mode,
        "malloc_conf": malloc_conf,
        "cap": cap,
        "wall_s": wall,
        "peak_anon": watch.peak["RssAnon"],
        "peak_file": watch.peak["RssFile"],
        "polled_peak_rss": watch.peak["VmRSS"],
    }
    if line is None:
        reason = (
            "killed by the watchdog: anonymous memory over the cap"
            if watch.killed
            else error_line(stderr, process.returncode)
        )
        return {**figures, "error": reason}
    return {**figures, **json.loads(line.removeprefix("RESULT "))}


def ensure_file(path: Path, rows: int) -> None:
    if not path.exists():
        sys.path.insert(0, str(BENCH_DIR))
        from gen_csv import write_csv

        write_csv(path, rows)


def speed(path: Path, repeat: int) -> dict[str, Any]:
    size = path.stat().st_size
    print(f"file: {path} ({size / 1e6:.1f} MB)")
    reads, tools = [], []
    for attempt in range(repeat):
        reads.append(measure("read_csv", path))
        tools.append(measure("tool", path))
        print(
            f"  run {attempt + 1}: read_csv {reads[-1]['seconds']:.3f} s, "
            f"profile-my-data {tools[-1]['seconds']:.3f} s {tools[-1]['timings_ms']}"
        )
    best_read = min(run["seconds"] for run in reads)
    best_tool = min(tools, key=lambda run: run["seconds"])
    read_rss = max(run["peak_rss"] for run in reads)
    tool_rss = max(run["peak_rss"] for run in tools)
    ratio = best_tool["seconds"] / best_read
    print(f"bare polars.read_csv   best of {repeat}: {best_read:.3f} s   peak RSS {read_rss / 1e6:.0f} MB")
    print(f"profile-my-data        best of {repeat}: {best_tool['seconds']:.3f} s   peak RSS {tool_rss / 1e6:.0f} MB")
    print(f"ratio tool / read_csv: {ratio:.2f}x (target <= {TARGET_READ_RATIO}x)")
    print(f"tool peak RSS / file size: {tool_rss / size:.2f}x (target <= {TARGET_RSS_RATIO}x)")
    return {"file_bytes": size, "reads": reads, "tools": tools, "ratio": ratio, "rss_ratio": tool_rss / size}


def memory(path: Path, repeat: int, modes: list[str]) -> dict[str, Any]:
    size = path.stat().st_size
    print(f"file: {path} ({size / 1e6:.1f} MB)")
    print(f"{'mode':22s} {'allocator':12s} {'seconds':>8s} {'peak RSS':>9s} {'x file':>7s} {'anon':>7s} {'file':>7s}")
    runs = []
    for mode in modes:
        for setting, conf in ALLOCATOR_SETTINGS.items():
            samples = [measure(mode, path, conf) for _ in range(repeat)]
            ok = [sample for sample in samples if "error" not in sample]
            runs += samples
            if not ok:
                print(f"{mode:22s} {setting:12s} FAILED {samples[-1]['error']}")
                continue
            best = min(ok, key=lambda sample: sample["seconds"])
            peak = max(sample["peak_rss"] for sample in ok)
            print(
                f"{mode:22s} {setting:12s} {best['seconds']:8.3f} {peak / 1e6:8.0f}M {peak / size:6.2f}x "
                f"{max(s['peak_anon'] for s in ok) / 1e6:6.0f}M {max(s['peak_file'] for s in ok) / 1e6:6.0f}M"
            )
    return {"file_bytes": size, "runs": runs}


def converted(csv: Path, file_format: str) -> Path:
    """The large CSV as a Parquet or NDJSON upload (Polars' streaming engine, its own type inference: what a user
    exporting the data would upload), written beside it once."""
    import polars as pl

    target = csv.with_suffix(f".{file_format}")
    if not target.exists():
        started = time.perf_counter()
        partial = target.with_suffix(target.suffix + ".partial")
        scan = pl.scan_csv(csv, infer_schema_length=10_000)
        if file_format == "parquet":
            scan.sink_parquet(partial)
        else:
            scan.sink_ndjson(partial)
        partial.rename(target)
        print(f"wrote {target} ({target.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    return target


def large(
    size_gb: float,
    cap_gb: float,
    keep: bool,
    directory: Path,
    rlimit_data: bool,
    modes: list[str],
    file_format: str = "csv",
) -> dict[str, Any]:
    free = shutil.disk_usage(directory).free
    needed = size_gb * 1e9 * 1.6  # the CSV and the streaming path's Parquet copy
    if free < needed:
        raise SystemExit(f"{directory}: {free / 1e9:.1f} GB free, {needed / 1e9:.1f} GB needed")
    path = directory / f"agensium_bench_{size_gb:g}gb.csv"
    rows = int(size_gb * 1e9 / BYTES_PER_ROW)
    cap = int(cap_gb * 2**30)
    try:
        if not path.exists():
            started = time.perf_counter()
            ensure_file(path, rows)
            print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
        source = path if file_format == "csv" else converted(path, file_format)
        size = source.stat().st_size
        results = []
        for mode in modes:
            conf = "" if mode in ("profiler", "profiler_streaming") else "decay-100ms"
            figures = measure(mode, source, ALLOCATOR_SETTINGS.get(conf, ""), cap, rlimit_data)
            results.append(figures)
            outcome = figures.get("error") or f"{figures['seconds']:.1f} s, {figures['rows']:,} rows"
            print(
                f"{mode:20s} {conf or 'default':12s} cap {cap_gb:g} GiB: {outcome}; peak RSS "
                f"{max(figures.get('peak_rss', 0), figures['polled_peak_rss']) / 1e9:.2f} GB "
                f"(anon {figures['peak_anon'] / 1e9:.2f} GB, file {figures['peak_file'] / 1e9:.2f} GB)",
                flush=True,
            )
        return {"file_bytes": size, "format": file_format, "rows": rows, "cap": cap, "runs": results}
    finally:
        if not keep:
            path.unlink(missing_ok=True)
            path.with_suffix(f".{file_format}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--path", type=Path, help="default: $TMPDIR/agensium-bench-data/generated_<rows>.csv")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="the memory study")
    parser.add_argument("--modes", nargs="+", choices=MEMORY_MODES, default=list(MEMORY_MODES))
    parser.add_argument("--large-gb", type=float, help="size of the large CSV (written to --large-dir)")
    parser.add_argument("--cap-gb", type=float, default=4.0, help="memory cap of the large run, GiB")
    parser.add_argument("--large-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the large CSV")
    parser.add_argument(
        "--large-format",
        choices=["csv", "parquet", "ndjson"],
        default="csv",
        help="upload the large file as this format (converted from the CSV once, kept with --keep)",
    )
    parser.add_argument("--large-modes", nargs="+", choices=LARGE_MODES, default=list(LARGE_MODES))
    parser.add_argument(
        "--rlimit-data", action="store_true", help="also cap with RLIMIT_DATA (virtual: fails below the cap in RSS)"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    sys.path.insert(0, str(BENCH_DIR))
    from harness import machine_info, write_results

    if args.large_gb:
        document = {
            "large": large(
                args.large_gb,
                args.cap_gb,
                args.keep,
                args.large_dir,
                args.rlimit_data,
                args.large_modes,
                args.large_format,
            )
        }
    else:
        args.path = args.path or Path(tempfile.gettempdir()) / "agensium-bench-data" / f"generated_{args.rows}.csv"
        args.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_file(args.path, args.rows)
        document = memory(args.path, args.repeat, args.modes) if args.memory else speed(args.path, args.repeat)
    print(f"results: {write_results('profiler', {'machine': machine_info(), **document})}")


if __name__ == "__main__":
    main()
