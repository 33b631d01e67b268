"""search-my-data through the service (issue 12): the first search of a dataset, a later search of it, and pages
2…N of a search, end to end over HTTP only (target: pages 2…N p95 <= 100 ms).

With an API and one worker running (started here against the local PostgreSQL/Redis/S3 unless --url is given):
1. bench/gen_csv.py's generated CSV (--rows) is uploaded to a profile-my-data task (agent unified-profiler only) and
   profiled: the dataset version every search below takes (source_task_id);
2. "first search": a searcher-only search of it (page 1), which parses the CSV and keeps the dataset as Parquet and
   its matches (worker/search_keep.py); then the benchmark waits until page 2 is served from the kept matches;
3. "pages": --pages more pages of that search, one after another, each a new task: from the `POST /tasks/{id}/process`
   to its `done` event (SSE), as bench_cache.py measures a hit;
4. "later search": --pages searches with other filters (a different selection each: no kept matches, the kept
   Parquet instead of the CSV), measured the same way.
Reports p50/p95 of each; writes bench/results/pages-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench_cache import process_until_done
from gen_csv import write_csv
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

TARGET_PAGES_P95_MS = 100.0
SEARCH_TOOL = "search-my-data"
SELECTION = {
    "filters": {"category": ["books", "toys"], "country": ["US", "FR", "DE"]},
    "sort": [{"column": "last_login", "descending": True}],
}
COUNTRIES = ["US", "FR", "DE", "GB", "JP", "BR", "IN", "CA", "AU", "ES"]


async def search(client: AgensiumClient, source: str, searcher: dict[str, Any], timeout_s: float) -> tuple[float, dict]:
    """(ms from process to done, the task's result) of one searcher-only search of `source`, run by the worker."""
    # "cache": false: every search runs (a repeated page would be a result-cache hit: bench_cache.py measures those).
    task = await client.create_task(SEARCH_TOOL, agents=["searcher"], parameters={"searcher": searcher, "cache": False},
                                    source_task_id=source)  # fmt: skip
    elapsed, done = await process_until_done(client, str(task["task_id"]), timeout_s)
    if done.get("status") != "COMPLETED":
        raise RuntimeError(f"search {task['task_id']} ended {done.get('status')}: {done.get('error')}")
    return elapsed, await client.result(str(task["task_id"]))


def kept(result: dict[str, Any]) -> str | None:
    return result.get("summary", {}).get("inputs", {}).get("primary", {}).get("kept")


async def run(args: argparse.Namespace) -> int:
    console = Console()
    csv_path = Path(tempfile.gettempdir()) / "agensium-bench-data" / f"generated_{args.rows}.csv"
    if not csv_path.exists():
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(csv_path, args.rows)
    samples: dict[str, list[float]] = {"first search": [], "pages": [], "later search": []}
    async with AsyncExitStack() as stack:
        url, api_key = await api_and_worker(stack, args, console.print)
        client = await stack.enter_async_context(AgensiumClient(url, api_key, timeout=args.timeout))
        console.print(f"profiling {csv_path} ({csv_path.stat().st_size / 1e6:,.0f} MB) as the dataset ...")
        profile = await client.create_task("profile-my-data", agents=["unified-profiler"])
        source = str(profile["task_id"])
        size = csv_path.stat().st_size
        uploads = await client.upload_urls(source, [{"name": "primary.csv", "content_type": "text/csv", "size": size}],
                                           False)  # fmt: skip
        await client.upload_input(source, uploads[0], csv_path)
        _, done = await process_until_done(client, source, args.timeout)
        if done.get("status") != "COMPLETED":
            raise RuntimeError(f"the profile ended {done.get('status')}: {done.get('error')}")

        page_size = args.page_size
        elapsed, first = await search(client, source, {**SELECTION, "page_size": page_size}, args.timeout)
        samples["first search"].append(elapsed)
        pages = first["agents"]["searcher"]["data"]["pages"]
        console.print(f"first search: {elapsed:,.0f} ms, {first['summary']['rows_matched']:,} rows, {pages:,} pages")
        deadline = time.monotonic() + args.timeout
        while True:  # the keep is stored once the first search completed
            _, again = await search(client, source, {**SELECTION, "page_size": page_size, "page": 2}, args.timeout)
            if kept(again) == "matches":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("page 2 was never served from the kept matches")
        chosen = random.Random(7)
        for _ in range(args.pages):
            page = chosen.randint(2, max(2, pages))
            elapsed, result = await search(client, source, {**SELECTION, "page_size": page_size, "page": page},
                                           args.timeout)  # fmt: skip
            if kept(result) != "matches":
                raise RuntimeError(f"page {page} was not served from the kept matches: {kept(result)}")
            samples["pages"].append(elapsed)
        # The kept dataset is uploaded in the background, yielding to the worker's other runs (the pages above) for
        # up to worker.search_keep.YIELD_MAX_SECONDS: probe with searches of new selections until one reads it.
        probes = 0
        while True:
            probes += 1
            probe = {"ranges": [{"column": "income", "min": -probes}], "page_size": page_size}
            if kept((await search(client, source, probe, args.timeout))[1]) == "dataset":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no later search read the kept dataset")
        console.print(f"the kept dataset was read by probe {probes}")
        for index in range(args.pages):
            other = {"filters": {"country": [COUNTRIES[index % len(COUNTRIES)]]},
                     "ranges": [{"column": "income", "min": 1000 * index}], "page_size": page_size}  # fmt: skip
            elapsed, result = await search(client, source, other, args.timeout)
            if kept(result) != "dataset":
                raise RuntimeError(f"a later search did not read the kept dataset: {kept(result)}")
            samples["later search"].append(elapsed)

    summary = {
        name: {"n": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}
        for name, values in samples.items()
    }
    summary["pages"]["target_p95_ms"] = TARGET_PAGES_P95_MS
    summary["pages"]["met"] = summary["pages"]["p95_ms"] <= TARGET_PAGES_P95_MS
    table = Table(title=f"search-my-data end to end, {args.rows:,} rows, page size {args.page_size}")
    for column in ("what", "n", "p50 ms", "p95 ms", "target"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, row in summary.items():
        target = f"p95 <= {TARGET_PAGES_P95_MS:g} ms: {'met' if row['met'] else 'NOT MET'}" if "met" in row else ""
        table.add_row(name, str(row["n"]), f"{row['p50_ms']:,.1f}", f"{row['p95_ms']:,.1f}", target)
    console.print(table)
    path = write_results("pages", {"machine": machine_info(), "rows": args.rows, "page_size": args.page_size,
                                   "selection": SELECTION, "summary": summary, "samples": samples})  # fmt: skip
    console.print(f"results: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_pages.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_service_arguments(parser, "use this running API (with a worker behind it) instead of starting both")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated CSV (default: %(default)s)")
    parser.add_argument("--pages", type=int, default=30, help="pages and later searches measured (default: 30)")
    parser.add_argument("--page-size", type=int, default=50, help="rows per page (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per task (default: 300)")
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
