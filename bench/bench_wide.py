"""Wide files through whole chains (issue 9): the default profile-my-data chain on 2,000 x 20 and
10,000 x 20 CSVs, as an agent process runs it (agents imported first, ``run_tool`` timed).

    python bench/bench_wide.py                                  # 2000x20 and 10000x20, profile-my-data
    python bench/bench_wide.py --shapes 10000x20 --baseline     # with a baseline: drift-detector runs too
    python bench/bench_wide.py --tool clean-my-data --shapes 2000x20

The files have five kinds of columns in turn (integers, decimals, words, ISO dates, e-mail addresses), about
5 % of the cells empty; a baseline is the same shape from another seed. Reported per shape: the whole
chain's seconds (best of ``--repeat``) and each step's (reading, every agent, the reports). Targets: the
default profile chain under 15 s on 2,000 x 20 and under 60 s on 10,000 x 20 on the 2-core development
machine. Figures go to bench/results/wide-<UTC time>.json as well.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from harness import machine_info, write_results  # noqa: E402

from agents import registry  # noqa: E402
from agents.chain import run_tool  # noqa: E402

TARGETS_S = {(2_000, 20): 15.0, (10_000, 20): 60.0}
WORDS = np.array(["alpha", "beta", "gamma", "delta", "Ann Lee", "x y"])


def write_wide_csv(path: Path, columns: int, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    series = []
    for index in range(columns):
        kind = index % 5
        if kind == 0:
            values = pl.Series(f"int_{index}", rng.integers(-100, 1000, rows))
        elif kind == 1:
            values = pl.Series(f"float_{index}", rng.uniform(-1000, 1000, rows).round(3))
        elif kind == 2:
            values = pl.Series(f"text_{index}", rng.choice(WORDS, rows))
        elif kind == 3:
            days = rng.integers(0, 365, rows).tolist()
            values = pl.Series(f"date_{index}", [f"2023-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}" for day in days])
        else:
            values = pl.Series(f"email_{index}", [f"user{n}@example.com" for n in rng.integers(1, 1000, rows)])
        missing = pl.Series(rng.random(rows) < 0.05)
        series.append(pl.select(pl.when(missing).then(None).otherwise(values).alias(values.name)).to_series())
    pl.DataFrame(series).write_csv(path)
    return path


def measure(tool: str, columns: int, rows: int, baseline: bool, repeat: int, directory: Path) -> dict[str, Any]:
    primary = write_wide_csv(directory / f"primary_{columns}x{rows}.csv", columns, rows, seed=1)
    inputs = {"primary.csv": primary}
    if baseline:
        inputs["baseline.csv"] = write_wide_csv(directory / f"baseline_{columns}x{rows}.csv", columns, rows, seed=2)
    runs = []
    for attempt in range(repeat):
        out_dir = directory / f"out_{tool}_{columns}x{rows}_{attempt}"
        started = time.perf_counter()
        result = run_tool(tool, [], inputs, {}, out_dir, lambda *_: None)
        seconds = time.perf_counter() - started
        failed = {
            agent: envelope.get("error")
            for agent, envelope in result["agents"].items()
            if envelope["status"] != "success"
        }
        runs.append(
            {
                "seconds": round(seconds, 2),
                "timings_ms": result["timings_ms"],
                "status": result["status"],
                "failed": failed,
            }
        )
    best = min(runs, key=lambda run: run["seconds"])
    return {
        "tool": tool,
        "columns": columns,
        "rows": rows,
        "baseline": baseline,
        "bytes": primary.stat().st_size,
        "best_s": best["seconds"],
        "best_timings_ms": best["timings_ms"],
        "target_s": TARGETS_S.get((columns, rows)) if tool == "profile-my-data" else None,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["2000x20", "10000x20"], help="COLUMNSxROWS")
    parser.add_argument("--tool", default="profile-my-data", choices=["profile-my-data", "clean-my-data"])
    parser.add_argument("--baseline", action="store_true", help="add a baseline file (profile-my-data: drift)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    registry.preload()  # an agent process imports every agent before its first run
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-wide-") as temporary:
        for shape in args.shapes:
            columns, rows = (int(part) for part in shape.lower().split("x"))
            figure = measure(args.tool, columns, rows, args.baseline, args.repeat, Path(temporary))
            figures.append(figure)
            steps = ", ".join(
                f"{step} {ms / 1000:.1f}" for step, ms in figure["best_timings_ms"].items() if step != "total"
            )
            target = f" (target < {figure['target_s']:g} s)" if figure["target_s"] else ""
            label = f"{args.tool} {columns:,} x {rows}{' + baseline' if args.baseline else ''}"
            print(f"{label}: {figure['best_s']:.1f} s{target}")
            print(f"    {steps}")
            for run in figure["runs"]:
                if run["failed"]:
                    print(f"    agents failed: {run['failed']}")
    path = write_results("wide", {"machine": machine_info(), "arguments": vars(args), "figures": figures})
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
