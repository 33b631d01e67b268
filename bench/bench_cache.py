"""Result-cache hit latency: from `POST /tasks/{id}/process` to the task's `done` event, against a `GET /tasks/{id}`
on the same server, over HTTP only (issue 12: a hit's p95 <= 50 ms and <= 5x the GET's).

With an API and one worker running (started here against the local PostgreSQL/Redis/S3 unless --url is given),
for each of two kinds of task:
- "uploaded": the tiny CSV uploaded through the presigned PUT (`process` then HEADs it in the store, as it always
  verifies uploads, and its ETag is part of the key);
- "chained": `source_task_id` of a completed task, nothing uploaded (how a search runs on a dataset version);
  1. one task is run to completion by the worker: the original;
  2. N identical tasks are created (and uploaded);
  3. for each, one after another: its SSE stream is opened and its initial `status` event read (the stream is
     live), the time taken, `process` POSTed, and the time taken again when the `done` event arrives; every one
     must be COMPLETED with `cached: true`.
  4. it waits until every hit has its own copies of the outputs (a worker's copy job makes them, due
     COPY_JOB_DEFER after the hit: the hit's downloads then point under its own outputs/cache-*/ prefix), so that
     the next phase does not compete with them, and reports how long after the last hit that took.
Then N `GET /tasks/{id}` of one task, one after another, on the same client. Reports p50/p95/p99 of each and the
ratios. Prints a table; writes bench/results/cache-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack, aclosing
from pathlib import Path
from typing import Any

from harness import (
    add_service_arguments,
    api_and_worker,
    check_service_arguments,
    machine_info,
    percentile,
    write_results,
)
from rich.console import Console
from rich.table import Table

from service.client import AgensiumClient

TARGET_P95_MS = 50.0
TARGET_RATIO = 5.0
TINY_CSV = "id,name,score\n1,alpha,0.5\n2,beta,0.75\n"
PREPARE_CONCURRENCY = 8


async def prepare_task(
    client: AgensiumClient, csv_path: Path, tool: str, agents: list[str] | None, source: str | None
) -> str:
    """A task ready to process: chained on `source`, else with its input uploaded through the presigned PUT."""
    if source is not None:
        return str((await client.create_task(tool, agents=agents, source_task_id=source))["task_id"])
    task = await client.create_task(tool, agents=agents)
    uploads = await client.upload_urls(
        task["task_id"], [{"name": "primary.csv", "content_type": "text/csv", "size": len(TINY_CSV)}], False
    )
    await client.upload_presigned(uploads[0], csv_path)
    return str(task["task_id"])


async def measure_hits(
    client: AgensiumClient, csv_path: Path, args: argparse.Namespace, agents: list[str] | None, source: str | None
) -> tuple[str, list[float], list[str]]:
    """(the original task, ms of each measured hit, every hit) for tasks chained on `source`, or uploaded ones."""
    original = await prepare_task(client, csv_path, args.tool, agents, source)
    _, done = await process_until_done(client, original, args.worker_start_timeout)
    if done.get("status") != "COMPLETED":
        raise RuntimeError(f"the original task ended {done.get('status')}: {done.get('error')}")
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def prepared() -> str:
        async with gate:
            return await prepare_task(client, csv_path, args.tool, agents, source)

    task_ids = list(await asyncio.gather(*(prepared() for _ in range(args.warmup + args.tasks))))
    hits: list[float] = []
    for index, task_id in enumerate(task_ids):
        elapsed, done = await process_until_done(client, task_id, args.timeout)
        if (done.get("status"), done.get("cached")) != ("COMPLETED", True):
            raise RuntimeError(f"task {task_id} was no cache hit: {done.get('status')}, cached {done.get('cached')}")
        if index >= args.warmup:
            hits.append(elapsed)
    return original, hits, task_ids


async def process_until_done(client: AgensiumClient, task_id: str, timeout_s: float) -> tuple[float, dict[str, Any]]:
    """(ms from POST process to the done event, the task the done event carries)."""
    async with asyncio.timeout(timeout_s), aclosing(client.events(task_id)) as stream:
        first = await anext(stream)
        if first.event != "status":
            raise RuntimeError(f"task {task_id}: first event is {first.event!r}, expected the initial status")
        started = time.perf_counter()
        process_call = asyncio.create_task(client.process(task_id))
        async for event in stream:
            if event.event == "done":
                done_at = time.perf_counter()
                await process_call
                return (done_at - started) * 1000, dict(event.json())
    raise RuntimeError(f"task {task_id}: the stream ended without a done event")


async def get_latencies(client: AgensiumClient, task_id: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await client.get_task(task_id)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def own_copies_after(client: AgensiumClient, task_ids: list[str], timeout_s: float) -> dict[str, Any]:
    """How many of the hits had their own copies within `timeout_s`, and the seconds from now until the last of them
    had: the hits are checked one after another, each until its downloads point at its own copies or time is up."""
    started = time.perf_counter()
    deadline = started + timeout_s
    made = 0
    for task_id in task_ids:
        while True:
            files = await client.downloads(task_id)
            if all(f"/tasks/{task_id}/outputs/cache-" in f["url"] for f in files):
                made += 1
                break
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.1)
    return {"hits": len(task_ids), "made": made, "seconds_after_the_hits": round(time.perf_counter() - started, 2)}


def stats(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


def summarise(hits: dict[str, list[float]], gets: list[float], copies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    get = stats(gets)
    kinds = {}
    for kind, samples in hits.items():
        hit = stats(samples)
        ratio_p95 = round(hit["p95_ms"] / get["p95_ms"], 2)
        kinds[kind] = {
            "hits": len(samples),
            "cache_hit_to_done": hit,
            "ratio_p50": round(hit["p50_ms"] / get["p50_ms"], 2),
            "ratio_p95": ratio_p95,
            "p95_met": hit["p95_ms"] <= TARGET_P95_MS,
            "ratio_met": ratio_p95 <= TARGET_RATIO,
            "own_copies": copies[kind],
        }
    return {
        "get_task": get,
        "kinds": kinds,
        "targets": {"p95_ms": TARGET_P95_MS, "ratio": TARGET_RATIO},
    }


def print_summary(summary: dict[str, Any], console: Console) -> None:
    table = Table(title="result-cache hits: POST process -> done event, and GET /tasks/{id} (ms)")
    for column in ("measure", "n", "p50", "p95", "p99", "max", "mean", "p50 / GET", "p95 / GET"):
        table.add_column(column, justify="right")
    fields = ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
    for kind, row in summary["kinds"].items():
        hit = row["cache_hit_to_done"]
        ratios = (f"{row['ratio_p50']}x", f"{row['ratio_p95']}x")
        table.add_row(f"hit ({kind})", str(row["hits"]), *(f"{hit[k]:.1f}" for k in fields), *ratios)
    get = summary["get_task"]
    table.add_row("GET /tasks/{id}", "", *(f"{get[k]:.1f}" for k in fields), "", "")
    console.print(table)
    for kind, row in summary["kinds"].items():
        copies = row["own_copies"]
        console.print(
            f"{kind}: {copies['made']} of {copies['hits']} hits had their own copies of the outputs "
            f"{copies['seconds_after_the_hits']:.1f} s after the last hit"
        )
        verdict = "[green]met" if row["p95_met"] and row["ratio_met"] else "[red]not met"
        console.print(
            f"{kind}: hit p95 <= {TARGET_P95_MS:.0f} ms ({'yes' if row['p95_met'] else 'no'}) and <= "
            f"{TARGET_RATIO:.0f}x the GET's p95 ({'yes' if row['ratio_met'] else 'no'}): {verdict}"
        )


async def run(args: argparse.Namespace) -> int:
    console = Console()
    agents = [a for a in args.agents.split(",") if a] if args.agents else None
    async with AsyncExitStack() as stack:
        url, api_key = await api_and_worker(stack, args, console.print)
        client = await stack.enter_async_context(AgensiumClient(url, api_key, timeout=args.timeout))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cache-")))
        csv_path = scratch / "tiny.csv"
        csv_path.write_text(TINY_CSV)

        console.print("uploaded tasks: the original (also waits for the worker to be up), then the hits ...")
        original, uploaded, task_ids = await measure_hits(client, csv_path, args, agents, None)
        console.print("waiting for their own copies of the outputs ...")
        copies = {"uploaded": await own_copies_after(client, task_ids, args.timeout)}
        console.print("chained tasks (source_task_id of the original): the original, then the hits ...")
        _, chained, task_ids = await measure_hits(client, csv_path, args, agents, original)
        console.print("waiting for their own copies of the outputs ...")
        copies["chained"] = await own_copies_after(client, task_ids, args.timeout)
        await get_latencies(client, original, args.warmup)
        gets = await get_latencies(client, original, args.tasks)
        hits = {"uploaded": uploaded, "chained": chained}
        summary = summarise(hits, gets, copies)

    print_summary(summary, console)
    path = write_results(
        "cache",
        {
            "machine": machine_info(),
            "url": url if args.url else "(started by the benchmark)",
            "tool": args.tool,
            "agents": agents,
            "summary": summary,
            "samples": {"cache_hit_to_done_ms": hits, "get_task_ms": gets},
        },
    )
    console.print(f"results: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_cache.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_service_arguments(parser, "use this running API (with a worker behind it) instead of starting both")
    parser.add_argument("--tasks", type=int, default=200, help="cache hits measured one by one (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured hits (and GETs) first (default: %(default)s)")
    parser.add_argument("--tool", default="profile-my-data", help="tool of the tasks (default: %(default)s)")
    parser.add_argument("--agents", metavar="A,B", help="agent chain of the tasks (default: the tool's)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per task (default: 60)")
    parser.add_argument(
        "--worker-start-timeout", type=float, default=120.0, help="seconds allowed for the original (default: 120)"
    )
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    if args.tasks < 1 or args.warmup < 1:
        parser.error("--tasks and --warmup must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
