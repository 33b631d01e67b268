"""master-my-data against Splink 5 (DuckDB backend) on one generated person file with known duplicates.

    python bench/bench_master.py [--rows 1000000] [--seed 42] [--skip-splink] [--splink-memory-limit 4GB]
                                 [--output PATH]

The file: ``tests/agents/master/people.py``'s generator (FEBRL4 names and places, 0-3 corrupted duplicates per
person: typos, swapped names, missing fields, phone layouts, abbreviated street types, day/month swaps), cut to
``--rows`` rows and written as CSV without its truth; the truth (``entity`` per data row) is kept aside in a
Parquet file. Both are cached under ``$TMPDIR/agensium-bench-data/``.

Each tool runs in a fresh child process under ``/usr/bin/time -v`` (wall time and peak RSS of the whole
process, interpreter start and imports included); the child also reports the time of the work alone (and,
for ours, the peak RSS of each step of the chain, sampled every 10 ms):

  ours    agents.chain.run_tool("master-my-data", <default chain>, {"primary.csv": file}, {}, out_dir), with
          every agent imported first (as an agent process does). Pairs scored = golden-record-builder's
          data.matching.stats.candidate_pairs.
  splink  Splink 5 in .venv-bench (the ``bench`` extra; created on first use), configured as its
          documentation's deduplication example (docs/demos/examples/duckdb/deduplicate_50k_synthetic: its
          ten blocking rules, its training steps and its clustering threshold 0.95), with the comparisons of
          its examples for our columns (ForenameSurnameComparison, DateOfBirthComparison, EmailComparison,
          ExactMatch with term frequencies for postcode/city/street number as in the FEBRL3 example,
          DamerauLevenshteinAtThresholds for the national id, JaroWinklerAtThresholds for the address, ExactMatch
          for the phone) and the light preparation those examples assume, done in DuckDB inside the timed work:
          dates to ISO, phones to digits, e-mail lower-cased, a forename-surname column. Pairs scored = rows of
          ``predict()`` without a threshold (every blocked pair, as the example calls it). DuckDB keeps its
          default memory limit (80 % of the machine's memory, which it fills before spilling) unless
          ``--splink-memory-limit`` (e.g. 4GB) sets one.

Accuracy, for both, from the clusters each returns (ours: crosswalk.csv's golden_id per source_row; Splink: its
cluster_id per unique_id = data row) against the truth: pairwise precision, recall and F1, from counts only
(pairs within predicted clusters, within true entities, and within both, by group_by; no pair list is built).

Reported side by side: wall time, work time, peak RSS, pairs scored, clusters, precision, recall, F1, and the
ratios (Splink / ours). Issue 10's goals, shown, never asserted: >= 2x Splink's speed at equal or better F1, the
1M-row file under 4 GB peak RSS, 100,000 rows end to end under 30 s. Timings are comparable only within one run
and on an idle machine: the load average before and after each child is stored.
Results: bench/results/master-<UTC time>.json (or --output).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
DATA_DIR = Path(tempfile.gettempdir()) / "agensium-bench-data"
TIME = "/usr/bin/time"
ROWS_PER_ENTITY = 1.6  # people()'s default duplicate weights: 1 + 0.25 + 2 x 0.1 + 3 x 0.05
SPLINK_THRESHOLD = 0.95  # the clustering threshold of Splink's deduplication example
TARGET_SPEEDUP = 2.0
TARGET_PEAK_RSS_1M = 4 * 1024**3
TARGET_100K_SECONDS = 30.0


# ------------------------------------------------------------------------------------------------ the file


def write_people(directory: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """``people_<rows>_<seed>.csv`` (the data columns, shuffled) and ``..._truth.parquet`` [row (1-based data
    row of the CSV), entity]; written once."""
    csv, truth = directory / f"people_{rows}_{seed}.csv", directory / f"people_{rows}_{seed}_truth.parquet"
    if csv.exists() and truth.exists():
        return csv, truth
    import polars as pl

    sys.path.insert(0, str(ROOT))
    from tests.agents.master.people import people

    # enough entities for ``rows`` rows (their row count is random), then the first ``rows`` of the shuffled
    # frame: a few entities lose a duplicate, which the truth column records as it is
    entities = math.ceil(rows / ROWS_PER_ENTITY * 1.02) + 10
    frame = people(entities, seed=seed).head(rows)
    if frame.height < rows:
        raise SystemExit(f"the generator gave {frame.height} rows, fewer than {rows}")
    frame.select(pl.int_range(1, rows + 1, dtype=pl.Int64).alias("row"), "entity").write_parquet(truth)
    frame.drop("entity", "corruptions").write_csv(csv)
    return csv, truth


# ---------------------------------------------------------------------------------------------- the children


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    return 0


class StepMemory:
    """Peak RSS per step of the chain, sampled every 10 ms from /proc/self/status: a step runs from its
    agent's start to the next one's (the first is the reading, the last includes the reports)."""

    def __init__(self) -> None:
        self.step = "read_primary"
        self.peaks: dict[str, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def start(self, agent_id: str) -> None:
        self.step = agent_id

    def _run(self) -> None:
        while not self._done.wait(0.01):
            step, rss = self.step, _status_bytes("VmRSS")
            self.peaks[step] = max(self.peaks.get(step, 0), rss)

    def stop(self) -> dict[str, int]:
        self._done.set()
        self._thread.join()
        return self.peaks


def _child_ours(primary: Path, out_dir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import agents.chain
    from agents import registry

    registry.preload()
    agent_ids = registry.existing_agents(registry.TOOLS["master-my-data"].default_chain)
    memory = StepMemory()
    started = time.perf_counter()
    result = agents.chain.run_tool(
        "master-my-data", agent_ids, {"primary.csv": primary}, {}, out_dir, _quiet, on_agent_start=memory.start
    )
    seconds = time.perf_counter() - started
    peaks = memory.stop()
    golden = result["agents"].get("golden-record-builder", {})
    stats = (golden.get("data") or {}).get("matching", {}).get("stats", {})
    return {
        "seconds": seconds,
        "status": result["status"],
        "agents": agent_ids,
        "agent_status": {agent_id: envelope["status"] for agent_id, envelope in result["agents"].items()},
        "timings_ms": result["timings_ms"],
        "peak_rss_by_step": peaks,
        "pairs_scored": stats.get("candidate_pairs"),
        "matching": {
            key: stats.get(key)
            for key in ("links", "review_pairs", "clusters", "multi_row_clusters", "largest_cluster", "timings")
        },
        "blocking_keys": [
            {key: entry.get(key) for key in ("name", "pairs", "new_pairs", "skipped_blocks")}
            for entry in (stats.get("blocking") or {}).get("keys", [])
        ],
    }


def _quiet(*_: Any) -> None:
    return None


# The preparation Splink's examples assume (its library compares values as they are): one layout per field.
SPLINK_PREPARE = """
    unique_id,
    given_name,
    surname,
    given_name || ' ' || surname as given_name_surname,
    strftime(coalesce(try_strptime(date_of_birth, '%Y-%m-%d'), try_strptime(date_of_birth, '%d/%m/%Y')),
             '%Y-%m-%d') as date_of_birth,
    lower(email) as email,
    regexp_replace(regexp_replace(phone, '[^0-9]', '', 'g'), '^61', '0') as phone,
    street_number,
    address,
    city,
    postcode,
    national_id
"""


def _child_splink(primary: Path, out_dir: Path, threshold: float, memory_limit: str | None) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import splink
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    laps: dict[str, float] = {}
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        laps[name] = round(now - last, 3)
        last = now

    with primary.open() as handle:
        names = handle.readline().strip().split(",")
    table = pacsv.read_csv(
        primary, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    )
    table = table.append_column("unique_id", pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    db_api = DuckDBAPI()
    if memory_limit:  # DuckDB's default is 80 % of the machine's memory, which it fills before spilling
        db_api.duckdb_con.execute(f"SET memory_limit = '{memory_limit}'")
    frame = db_api.register(db_api.duckdb_con.from_arrow(table).project(SPLINK_PREPARE))
    lap("read_prepare")

    blocking_rules = [  # the example's rules; its birth_place is our city
        block_on("substr(given_name,1,3)", "substr(surname,1,4)"),
        block_on("surname", "date_of_birth"),
        block_on("given_name", "date_of_birth"),
        block_on("postcode", "given_name"),
        block_on("postcode", "surname"),
        block_on("date_of_birth", "city"),
        block_on("substr(postcode,1,3)", "date_of_birth"),
        block_on("substr(postcode,1,3)", "given_name"),
        block_on("substr(postcode,1,3)", "surname"),
        block_on("substr(given_name,1,2)", "substr(surname,1,2)", "substr(date_of_birth,1,4)"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking_rules,
        comparisons=[
            cl.ForenameSurnameComparison(
                "given_name", "surname", forename_surname_concat_col_name="given_name_surname"
            ),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("national_id", [2]),
        ],
    )
    linker = Linker(frame, settings)
    lap("settings")
    linker.training.estimate_probability_two_random_records_match(
        [
            block_on("given_name", "surname", "date_of_birth"),
            block_on("substr(given_name,1,2)", "surname", "substr(postcode,1,2)"),
            block_on("date_of_birth", "postcode"),
        ],
        recall=0.6,
    )
    lap("estimate_lambda")
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7)
    lap("estimate_u")
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "surname"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("date_of_birth"), estimate_without_term_frequencies=True
    )
    lap("estimate_m_em")
    predictions = linker.inference.predict()
    lap("predict")
    ((pairs,),) = predictions.as_duckdbpyrelation().aggregate("count(*)").fetchall()
    lap("count_pairs")
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=threshold
    )
    lap("cluster")
    clusters.as_duckdbpyrelation().select("unique_id, cluster_id").write_parquet(str(out_dir / "clusters.parquet"))
    lap("write_clusters")
    return {
        "seconds": time.perf_counter() - started,
        "splink_version": splink.__version__,
        "pairs_scored": int(pairs),
        "phases_s": laps,
        "threshold": threshold,
        "memory_limit": db_api.duckdb_con.sql("select current_setting('memory_limit')").fetchall()[0][0],
    }


def _child(mode: str, primary: Path, out_dir: Path, threshold: float, memory_limit: str | None) -> None:
    """Runs in the child: the work, then one ``RESULT {json}`` line on stdout."""
    detail = (
        _child_ours(primary, out_dir) if mode == "ours" else _child_splink(primary, out_dir, threshold, memory_limit)
    )
    print("RESULT " + json.dumps({**detail, "vm_hwm": _status_bytes("VmHWM")}, default=str), flush=True)


# ------------------------------------------------------------------------------------------------ the parent


@dataclass
class Run:
    tool: str
    wall_s: float | None = None  # /usr/bin/time: the whole child process
    peak_rss: int | None = None  # /usr/bin/time: maximum resident set size
    user_s: float | None = None
    system_s: float | None = None
    cpu_percent: str | None = None
    work_s: float | None = None  # the child's own clock around the work alone
    pairs_scored: int | None = None
    accuracy: dict[str, Any] = field(default_factory=dict)
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    command: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def parse_time_v(text: str) -> dict[str, Any]:
    """The figures of GNU time's ``-v`` report we keep."""
    fields = dict(line.strip().rsplit(": ", 1) for line in text.splitlines() if ": " in line)
    clock = fields.get("Elapsed (wall clock) time (h:mm:ss or m:ss)", "")
    parts = [float(part) for part in clock.split(":")] if clock else []
    wall = sum(part * 60**power for power, part in enumerate(reversed(parts))) if parts else None
    rss = fields.get("Maximum resident set size (kbytes)")
    return {
        "wall_s": wall,
        "peak_rss": int(rss) * 1024 if rss else None,
        "user_s": float(fields["User time (seconds)"]) if "User time (seconds)" in fields else None,
        "system_s": float(fields["System time (seconds)"]) if "System time (seconds)" in fields else None,
        "cpu_percent": fields.get("Percent of CPU this job got"),
    }


def run_timed(tool: str, python: Path, primary: Path, out_dir: Path, child_options: list[str]) -> Run:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    time_file = out_dir.parent / f"{tool}.time"
    command = [
        TIME,
        "-v",
        "-o",
        str(time_file),
        str(python),
        __file__,
        "--child",
        tool,
        str(primary),
        str(out_dir),
        *child_options,
    ]
    run = Run(tool, command=command, load_before=os.getloadavg())
    with (out_dir.parent / f"{tool}.log").open("w") as log:
        process = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
        )
    run.load_after = os.getloadavg()
    measured = parse_time_v(time_file.read_text()) if time_file.exists() else {}
    for key, value in measured.items():
        setattr(run, key, value)
    line = next((x for x in reversed(process.stdout.splitlines()) if x.startswith("RESULT ")), None)
    if process.returncode != 0 or line is None:
        sys.path.insert(0, str(BENCH_DIR))
        from bench_tools import error_line

        run.error = error_line((out_dir.parent / f"{tool}.log").read_text(), process.returncode)
        return run
    detail = json.loads(line.removeprefix("RESULT "))
    run.work_s = detail.pop("seconds")
    run.pairs_scored = detail.pop("pairs_scored")
    run.detail = detail
    return run


def git_state() -> dict[str, Any]:
    """The commit and the files under agents/ that differ from it when the run starts."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return completed.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "changed": git("status", "--porcelain", "agents").splitlines()}


def ensure_splink_python() -> Path:
    """.venv-bench, made by bench_tools' helper from the ``bench`` extra; a venv made before Splink joined the
    extra gets the extra installed again."""
    sys.path.insert(0, str(BENCH_DIR))
    from bench_tools import bench_requirements, ensure_bench_venv

    python = ensure_bench_venv()
    if subprocess.run([str(python), "-c", "import splink, duckdb"], capture_output=True).returncode != 0:
        print(f"installing {bench_requirements()} into {python.parent.parent} ...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *bench_requirements()], check=True)
    return python


def pairwise_accuracy(labels: Any) -> dict[str, Any]:
    """Pairwise precision/recall/F1 of a clustering from a frame [row, predicted, entity] with one row per input
    row: pairs within predicted clusters, within true entities and within both, counted by group_by."""
    import polars as pl

    def pairs(*keys: str) -> int:
        sizes = labels.group_by(*keys).len()
        return int(sizes.select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item())

    predicted, true, both = pairs("predicted"), pairs("entity"), pairs("predicted", "entity")
    precision = both / predicted if predicted else 1.0
    recall = both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "predicted_pairs": predicted,
        "true_pairs": true,
        "true_positive_pairs": both,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "clusters": labels["predicted"].n_unique(),
        "entities": labels["entity"].n_unique(),
    }


def labels_of(tool: str, out_dir: Path, truth: Path) -> Any:
    """[row, predicted, entity], one row per data row; a row the tool left out is a cluster of its own."""
    import polars as pl

    if tool == "ours":
        clusters = pl.read_csv(out_dir / "crosswalk.csv", columns=["source_row", "golden_id"]).select(
            pl.col("source_row").cast(pl.Int64).alias("row"), pl.col("golden_id").alias("predicted")
        )
    else:
        clusters = pl.read_parquet(out_dir / "clusters.parquet").select(
            pl.col("unique_id").cast(pl.Int64).alias("row"), pl.col("cluster_id").cast(pl.String).alias("predicted")
        )
    return (
        pl.read_parquet(truth)
        .join(clusters, on="row", how="left")
        .with_columns(pl.col("predicted").fill_null(pl.format("alone-{}", pl.col("row"))))
    )


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.0f} MB"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "-" if not numerator or not denominator else f"{numerator / denominator:.2f}x"


def summary_rows(rows: int, ours: Run, splink: Run | None) -> list[list[str]]:
    """what | ours | Splink | Splink / ours (or Splink - ours) | goal."""
    other = splink or Run("splink")

    def figure(run: Run, key: str) -> float | None:
        return run.accuracy.get(key)

    def fmt(value: float | None, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    def count(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    speed_goal = f">= {TARGET_SPEEDUP:.0f}x"
    time_goal = f"< {TARGET_100K_SECONDS:.0f} s (100k rows)" if rows == 100_000 else ""
    rss_goal = f"< {TARGET_PEAK_RSS_1M / 1024**3:.0f} GiB (1M rows)" if rows == 1_000_000 else ""
    f1_ours, f1_splink = figure(ours, "f1"), figure(other, "f1")
    f1_difference = "-" if f1_ours is None or f1_splink is None else f"{f1_splink - f1_ours:+.4f}"
    pairs = (ours.pairs_scored, other.pairs_scored)
    clusters = (figure(ours, "clusters"), figure(other, "clusters"))
    table = [
        ["wall time (/usr/bin/time)", _s(ours.wall_s), _s(other.wall_s), _ratio(other.wall_s, ours.wall_s), time_goal],
        ["work time (in the child)", _s(ours.work_s), _s(other.work_s), _ratio(other.work_s, ours.work_s), speed_goal],
        ["peak RSS", _mb(ours.peak_rss), _mb(other.peak_rss), _ratio(other.peak_rss, ours.peak_rss), rss_goal],
        ["pairs scored", count(pairs[0]), count(pairs[1]), _ratio(pairs[1], pairs[0]), ""],
        [
            "clusters",
            count(clusters[0]),
            count(clusters[1]),
            "",
            f"true: {count(figure(ours, 'entities') or figure(other, 'entities'))}",
        ],
        ["precision", fmt(figure(ours, "precision")), fmt(figure(other, "precision")), "", ""],
        ["recall", fmt(figure(ours, "recall")), fmt(figure(other, "recall")), "", ""],
        ["F1", fmt(f1_ours), fmt(f1_splink), f1_difference, "ours >= Splink"],
    ]
    return table


def print_table(rows: int, table: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"master-my-data vs Splink 5 (DuckDB), {rows:,} rows")
    for column in ("what", "ours", "Splink", "Splink / ours", "goal"):
        view.add_column(column)
    for row in table:
        view.add_row(*row)
    Console(width=160).print(view)


def _show(run: Run) -> str:
    if run.error:
        return f"FAILED: {run.error}"
    return f"wall {_s(run.wall_s)}, work {_s(run.work_s)}, peak RSS {_mb(run.peak_rss)}, pairs {run.pairs_scored:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument(
        "--splink-threshold", type=float, default=SPLINK_THRESHOLD, help="Splink's clustering threshold"
    )
    parser.add_argument(
        "--splink-memory-limit",
        metavar="SIZE",
        help="DuckDB's memory_limit for Splink, e.g. 4GB (default: DuckDB's, 80%% of the machine's memory)",
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="the file, its truth and both tools' outputs")
    parser.add_argument("--output", type=Path, help="results JSON (default bench/results/master-<time>.json)")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "FILE", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, primary, out_dir = args.child
        _child(tool, Path(primary), Path(out_dir), args.splink_threshold, args.splink_memory_limit)
        return
    if not Path(TIME).exists():
        raise SystemExit(f"{TIME} is missing: apt-get install -y time")

    sys.path.insert(0, str(BENCH_DIR))
    from harness import machine_info, write_results

    splink_python = None if args.skip_splink else ensure_splink_python()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    primary, truth = write_people(args.data_dir, args.rows, args.seed)
    print(f"file: {primary} ({primary.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows; "
          f"written or found in {time.perf_counter() - started:.1f} s)", flush=True)  # fmt: skip
    work_dir = args.data_dir / f"master-{args.rows}-{args.seed}"

    code_state = git_state()  # the checkout is shared: what the children imported, as far as git tells
    runs: dict[str, Run] = {}
    child_options = ["--splink-threshold", str(args.splink_threshold)]
    if args.splink_memory_limit:
        child_options += ["--splink-memory-limit", args.splink_memory_limit]
    tools = [("ours", Path(sys.executable))] + ([("splink", splink_python)] if splink_python else [])
    for tool, python in tools:
        print(f"{tool}: running (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
        run = run_timed(tool, python, primary, work_dir / tool, child_options)
        if run.error is None:
            run.accuracy = pairwise_accuracy(labels_of(tool, work_dir / tool, truth))
        runs[tool] = run
        print(f"{tool}: {_show(run)}", flush=True)

    table = summary_rows(args.rows, runs["ours"], runs.get("splink"))
    print_table(args.rows, table)
    ours = runs["ours"]
    if ours.error is None:
        slowest = sorted(
            ((name, ms) for name, ms in ours.detail["timings_ms"].items() if name != "total"), key=lambda x: -x[1]
        )
        print("ours, timings_ms: " + ", ".join(f"{name} {ms:,}" for name, ms in slowest))
        print(f"ours, matching phases (s): {ours.detail['matching'].get('timings')}")
        peaks = ours.detail["peak_rss_by_step"].items()
        print("ours, peak RSS by step: " + ", ".join(f"{step} {_mb(rss)}" for step, rss in peaks))
    if "splink" in runs and runs["splink"].error is None:
        print(f"Splink, phases (s): {runs['splink'].detail['phases_s']}")
    document = {
        "machine": machine_info(),
        "code": code_state,
        "rows": args.rows,
        "seed": args.seed,
        "file": str(primary),
        "file_bytes": primary.stat().st_size,
        "table": [dict(zip(("what", "ours", "splink", "ratio", "goal"), row, strict=True)) for row in table],
        "runs": {tool: asdict(run) for tool, run in runs.items()},
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"benchmark": "master", **document}, indent=2, default=str) + "\n")
        path = args.output
    else:
        path = write_results("master", document)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
