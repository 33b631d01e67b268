"""transform-my-data benchmark: a 10-step recipe through ``agents.chain.run_tool`` against a bare
``pl.read_csv`` + ``write_csv`` of the same file, in the same run (issue 11: goal <= 3x at 1,000,000 rows).

    python bench/bench_transform.py [--rows 1000000] [--repeat 3]

The file is bench/gen_csv.py's generated CSV (15 mixed columns; ~137 MB at 1M rows), written once to
``$TMPDIR/agensium-bench-data``. The recipe touches every kind of work the executor does: a filter, a rename, a
cast with a format, a median fill, a deduplication, a sort, a derived column, a case change, a replacement and a
dropped column (``RECIPE``).

Every measurement runs in a fresh child process that first imports what the worker's agent process imports
(Polars, agents.chain, the agents: ``registry.preload()``), then times only the operation; memory is the child's
peak RSS (VmHWM) and the peak anonymous RSS polled every 5 ms (bench_tools.PeakPoller). Modes, alternated
``--repeat`` times:

  read_write   pl.read_csv(path) then frame.write_csv(out)          the baseline
  transform    run_tool("transform-my-data", ["transformer"], ...) with RECIPE: read, plan, run, write
               transformed_data.csv/.parquet, recipe.json and the JSON/Excel reports

Reported: the best time of each, the ratio transform / read_write, peak RSS of each (and above the idle process,
as a multiple of the input size), and the chain's own timings (read, transformer, reports).
Results: bench/results/transform-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DATA_DIR = Path(tempfile.gettempdir()) / "agensium-bench-data"
TARGET_RATIO = 3.0
MODES = ("read_write", "transform")

RECIPE: list[dict[str, Any]] = [
    {"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}},
    {"op": "rename", "mapping": {"quantity": "qty"}},
    {"op": "cast", "columns": ["signup_date"], "to": "text", "format": "%d/%m/%Y"},
    {"op": "fill_nulls", "columns": ["income"], "strategy": "median"},
    {"op": "deduplicate", "columns": ["email"], "keep": "first"},
    {"op": "sort", "by": [{"column": "last_login", "descending": True}]},
    {"op": "derive", "column": "total", "expression": "round(balance * qty, 2)"},
    {"op": "case", "columns": ["full_name"], "to": "lower"},
    {"op": "replace", "columns": ["status"], "old": "pending", "new": "waiting"},
    {"op": "drop_columns", "columns": ["score"]},
]


# ----------------------------------------------------------------------------------------------- child


def _child(mode: str, primary: Path) -> None:
    """Runs in the child: import, note the idle RSS, time one operation, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    import polars as pl
    from bench_tools import proc_status

    import agents.chain
    from agents import registry

    registry.preload()  # as the worker's agent processes start: the agents imported
    idle = proc_status()
    detail: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agensium-bench-") as out_dir:
        started = time.perf_counter()
        if mode == "read_write":
            frame = pl.read_csv(primary)
            frame.write_csv(Path(out_dir) / "copy.csv")
            rows = frame.height
        else:
            result = agents.chain.run_tool(
                "transform-my-data",
                ["transformer"],
                {"primary.csv": primary},
                {"transformer": {"operations": RECIPE}},
                Path(out_dir),
                lambda *_: None,
            )
            rows = result["summary"]["rows_out"]
            envelope = result["agents"]["transformer"]
            detail = {
                "status": result["status"],
                "timings_ms": result["timings_ms"],
                "rows_in": result["summary"]["rows"],
                "transformations": result["summary"].get("transformations"),
                "error": envelope.get("error"),
            }
        seconds = time.perf_counter() - started
    peak = proc_status().get("VmHWM", 0)
    print(
        "RESULT "
        + json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak, "idle_rss": idle.get("VmRSS", 0), **detail})
    )


# ---------------------------------------------------------------------------------------------- parent


@dataclass
class Measurement:
    mode: str
    seconds: float | None = None
    rows: int | None = None
    peak_rss: int | None = None
    idle_rss: int | None = None
    polled_peak_anon: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_child(mode: str, primary: Path) -> Measurement:
    from bench_tools import PeakPoller, error_line

    command = [sys.executable, __file__, "--child", mode, str(primary)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    poller = PeakPoller(process.pid)
    stdout, stderr = process.communicate()
    poller.stop()
    measurement = Measurement(mode, polled_peak_anon=poller.peak_anon)
    line = next((x for x in reversed(stdout.splitlines()) if x.startswith("RESULT ")), None)
    if process.returncode != 0 or line is None:
        measurement.error = error_line(stderr, process.returncode)
        return measurement
    result = json.loads(line.removeprefix("RESULT "))
    measurement.seconds = result.pop("seconds")
    measurement.rows = result.pop("rows")
    measurement.peak_rss = result.pop("peak_rss")
    measurement.idle_rss = result.pop("idle_rss")
    measurement.detail = result
    return measurement


def best(runs: list[Measurement]) -> Measurement | None:
    done = [run for run in runs if run.seconds is not None]
    return min(done, key=lambda run: run.seconds or 0.0) if done else None


def summarise(runs: dict[str, list[Measurement]], input_bytes: int) -> list[dict[str, Any]]:
    base, ours = best(runs["read_write"]), best(runs["transform"])
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        measured = best(runs[mode])
        if measured is None:
            errors = [run.error for run in runs[mode] if run.error]
            rows.append({"what": mode, "measured": f"failed: {errors[:1]}"})
            continue
        done = [run for run in runs[mode] if run.seconds is not None]
        peak = max(run.peak_rss or 0 for run in done)
        above = max((run.peak_rss or 0) - (run.idle_rss or 0) for run in done)
        rows.append({"what": f"{mode} time", "measured": f"{measured.seconds:.3f} s ({measured.rows:,} rows out)"})
        rows.append(
            {
                "what": f"{mode} peak RSS",
                "measured": f"{peak / 1e6:,.0f} MB; above the idle process {above / 1e6:,.0f} MB "
                f"({above / input_bytes:.2f}x input)",
            }
        )
    if base is not None and ours is not None and base.seconds and ours.seconds:
        ratio = ours.seconds / base.seconds
        rows.append(
            {
                "what": "transform / read_write",
                "measured": f"{ratio:.2f}x",
                "target": f"<= {TARGET_RATIO:g}x (at 1M rows)",
                "met": ratio <= TARGET_RATIO,
            }
        )
        rows.append({"what": "transform timings (ms)", "measured": json.dumps(ours.detail.get("timings_ms"))})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="transform-my-data benchmark")
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
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    from gen_csv import write_csv
    from harness import machine_info, write_results

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    primary = DATA_DIR / f"generated_{args.rows}.csv"
    if not primary.exists():
        write_csv(primary, args.rows)
    size = primary.stat().st_size
    print(f"{primary} ({size / 1e6:,.1f} MB, {args.rows:,} rows)", flush=True)
    runs: dict[str, list[Measurement]] = {mode: [] for mode in MODES}
    for attempt in range(args.repeat):
        for mode in MODES:
            measured = run_child(mode, primary)
            runs[mode].append(measured)
            shown = f"{measured.seconds:.3f} s" if measured.seconds is not None else f"FAILED {measured.error}"
            peak = f"{(measured.peak_rss or 0) / 1e6:,.0f} MB"
            print(f"  run {attempt + 1} {mode:10s} {shown}  peak RSS {peak}", flush=True)
    rows = summarise(runs, size)
    print_table(rows)
    path = write_results(
        "transform",
        {
            "machine": machine_info(),
            "rows": args.rows,
            "input_bytes": size,
            "recipe": RECIPE,
            "summary": rows,
            "runs": [asdict(run) for mode in MODES for run in runs[mode]],
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
