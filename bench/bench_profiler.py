"""Benchmark: ``profile-my-data`` (``unified-profiler``) against a bare ``polars.read_csv`` of the same file.

    python bench/bench_profiler.py [--rows 1000000] [--path /tmp/agensium_bench_1m.csv] [--repeat 3]

Each measurement runs in a fresh child process (alternating read / tool, so both see the same machine
load); a child times only the operation itself (imports excluded) and reports its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``). Prints best-of-N times, their ratio (target <= 3x) and peak RSS
against the file size (target < 1.5x).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(mode: str, path: Path) -> None:
    import polars as pl

    sys.path.insert(0, str(ROOT))
    from agents.chain import run_tool

    timings: dict[str, int] = {}
    started = time.perf_counter()
    if mode == "read":
        frame = pl.read_csv(path)
        rows = frame.height
    else:
        with tempfile.TemporaryDirectory() as out_dir:
            result = run_tool(
                "profile-my-data", ["unified-profiler"], {"primary.csv": path}, {}, Path(out_dir), lambda *_: None
            )
            rows = result["summary"]["rows"]
            timings = result["timings_ms"]
    elapsed = time.perf_counter() - started
    peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "peak_rss": peak_rss_bytes, "rows": rows, "timings_ms": timings}))


def measure(mode: str, path: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--path", type=Path, default=Path(tempfile.gettempdir()) / "agensium_bench_1m.csv")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    if not args.path.exists():
        sys.path.insert(0, str(ROOT / "bench"))
        from gen_csv import generate

        generate(args.rows).write_csv(args.path, datetime_format="%Y-%m-%dT%H:%M:%S")
    size = args.path.stat().st_size
    print(f"file: {args.path} ({size / 1e6:.1f} MB)")
    reads, tools = [], []
    for attempt in range(args.repeat):
        reads.append(measure("read", args.path))
        tools.append(measure("tool", args.path))
        print(
            f"  run {attempt + 1}: read_csv {reads[-1]['seconds']:.3f} s, "
            f"profile-my-data {tools[-1]['seconds']:.3f} s {tools[-1]['timings_ms']}"
        )
    best_read = min(run["seconds"] for run in reads)
    best_tool = min(tools, key=lambda run: run["seconds"])
    read_rss = max(run["peak_rss"] for run in reads)
    tool_rss = max(run["peak_rss"] for run in tools)
    print(f"rows: {best_tool['rows']:,}")
    print(f"bare polars.read_csv   best of {args.repeat}: {best_read:.3f} s   peak RSS {read_rss / 1e6:.0f} MB")
    print(
        f"profile-my-data        best of {args.repeat}: {best_tool['seconds']:.3f} s   peak RSS {tool_rss / 1e6:.0f} MB"
    )
    print(f"ratio tool / read_csv: {best_tool['seconds'] / best_read:.2f}x (target <= 3x)")
    print(f"tool peak RSS / file size: {tool_rss / size:.2f}x (target < 1.5x)")
    print(f"best tool run timings: {best_tool['timings_ms']}")


if __name__ == "__main__":
    main()
