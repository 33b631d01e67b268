"""The hostile-user cases of issue 13 that have a size or a rate, replayed against a real `agensium api` with its
default limits (not the benchmarks' relaxed rate limit), from a non-admin key:

- one 1.5 GB `POST /api/v1/tasks` body, streamed in 64 KiB chunks: the answer, and the API process's peak RSS
  growth (psutil, every 10 ms) — the hostile test saw 3.08 GB before a 413;
- 300 creates from one user as fast as one client sends them (the hostile test: 300 x 201 in 2.8 s);
- `upload-urls` declaring 20 files, then 10 files, of 5 GiB each (the hostile test: 12,800 part URLs, 3.5 s of
  blocked event loop): the answer, its time, the part URLs signed, and the slowest `/healthz` answered meanwhile;
- one 15 MB label value and 11 MiB of inline parameters.

Prints a table; writes bench/results/hostile-<time>.json. Not part of CI: the tests assert the behaviour
(tests/service/test_hostile_inputs.py, test_ratelimit.py), this reports the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psutil
from harness import (
    LOCALHOST,
    LocalService,
    agensium_command,
    default_data_dir,
    free_port,
    machine_info,
    wait_until_http_ok,
    write_results,
)
from rich.console import Console
from rich.table import Table

MB = 1000**2
GiB = 1024**3
DEFAULT_LIMITS = {"AGENSIUM_RATE_LIMIT_PER_S": "20", "AGENSIUM_RATE_LIMIT_BURST": "100"}


class PeakRss:
    """The peak RSS of a process, sampled in a thread while the block runs."""

    def __init__(self, pid: int, interval_s: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval_s = interval_s
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


async def zeros(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    block = b" " * chunk
    sent = 0
    while sent < total:
        yield block[: min(chunk, total - sent)]
        sent += chunk


async def big_body(http: httpx.AsyncClient, pid: int, size: int) -> dict[str, Any]:
    with PeakRss(pid) as rss:
        started = time.perf_counter()
        try:
            response = await http.post(
                "/api/v1/tasks", content=zeros(size), headers={"Content-Type": "application/json"}
            )
            outcome = f"{response.status_code} {response.json()['error']['code']}"
        except httpx.HTTPError as error:  # the API may close the connection once it has refused the body
            outcome = f"connection closed ({type(error).__name__})"
        elapsed = time.perf_counter() - started
    return {"outcome": outcome, "seconds": elapsed, "rss_growth_mb": (rss.peak - rss.start) / MB}


async def burst_of_creates(http: httpx.AsyncClient, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    statuses: Counter[int] = Counter()
    retry_after = set()
    for _ in range(count):
        response = await http.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})
        statuses[response.status_code] += 1
        if response.status_code == 429:
            retry_after.add(response.headers.get("retry-after"))
    return {"seconds": time.perf_counter() - started, "statuses": dict(statuses), "retry_after": sorted(retry_after)}


async def slowest_healthz(url: str, stop: asyncio.Event) -> float:
    slowest = 0.0
    async with httpx.AsyncClient(base_url=url, timeout=30) as probe:
        while not stop.is_set():
            started = time.perf_counter()
            await probe.get("/healthz")
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.005)
    return slowest


async def declared_files(http: httpx.AsyncClient, url: str, names: list[str]) -> dict[str, Any]:
    task = (await http.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).json()
    body = {"files": [{"name": name, "content_type": "text/csv", "size": 5 * GiB} for name in names]}
    stop = asyncio.Event()
    probe = asyncio.create_task(slowest_healthz(url, stop))
    started = time.perf_counter()
    response = await http.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json=body)
    elapsed = time.perf_counter() - started
    stop.set()
    slowest = await probe
    document = response.json()
    parts = sum(len(u.get("parts") or []) for u in document.get("uploads", []))
    outcome = str(response.status_code) + ("" if response.status_code == 200 else f" {document['error']['code']}")
    return {"outcome": outcome, "seconds": elapsed, "part_urls": parts, "slowest_healthz_s": slowest}


async def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    async with LocalService(args.data_dir, args.embedded, DEFAULT_LIMITS) as service:
        api_key = await service.create_user("hostile")
        port = free_port()
        api = service.start("api", [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port)])
        url = f"http://{LOCALHOST}:{port}"
        await wait_until_http_ok(f"{url}/healthz", api)
        headers = {"Authorization": f"Bearer {api_key}"}
        results: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
            results["body_1_5_gb"] = await big_body(http, api.popen.pid, int(1.5e9))
            results["creates_300"] = await burst_of_creates(http, 300)
        # Fresh keys: the burst above spent this user's bucket.
        cases = {
            "upload_urls_20_files": [f"primary{n}.csv" for n in range(20)],
            "upload_urls_primary_and_baseline": ["primary.csv", "baseline.csv"],
        }
        for name, names in cases.items():
            key = await service.create_user(f"hostile-{name}")
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as h:
                results[name] = await declared_files(h, url, names)
        key = await service.create_user("hostile-sizes")
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as h:
            label = await h.post(
                "/api/v1/tasks", json={"tool_id": "profile-my-data", "labels": {"x": "y" * 15_000_000}}
            )
            results["label_15_mb"] = f"{label.status_code} {label.json()['error']['code']}"
            params = {"unified-profiler": {"padding": "a" * (11 * 1024**2)}}
            inline = await h.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "parameters": params})
            results["inline_parameters_11_mib"] = f"{inline.status_code} {inline.json()['error']['code']}"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=default_data_dir(), help="where embedded services keep their data")
    parser.add_argument("--embedded", action="store_true", help="force embedded PostgreSQL/Redis/S3")
    args = parser.parse_args()
    console = Console()
    results = asyncio.run(run(args, console))
    table = Table(title="hostile-user cases, one agensium api, default limits")
    table.add_column("case")
    table.add_column("result")
    body = results["body_1_5_gb"]
    table.add_row(
        "1.5 GB create body", f"{body['outcome']} in {body['seconds']:.2f} s, API RSS +{body['rss_growth_mb']:.1f} MB"
    )
    burst = results["creates_300"]
    table.add_row(
        "300 creates, one user", f"{burst['statuses']} in {burst['seconds']:.2f} s, Retry-After {burst['retry_after']}"
    )
    for name in ("upload_urls_20_files", "upload_urls_primary_and_baseline"):
        case = results[name]
        table.add_row(
            name.replace("_", " ") + " of 5 GiB",
            f"{case['outcome']} in {case['seconds'] * 1000:.0f} ms, {case['part_urls']} part URLs, "
            f"slowest /healthz meanwhile {case['slowest_healthz_s'] * 1000:.0f} ms",
        )
    table.add_row("15 MB label value", results["label_15_mb"])
    table.add_row("11 MiB inline parameters", results["inline_parameters_11_mib"])
    console.print(table)
    path = write_results("hostile", {"machine": machine_info(), "results": results})
    console.print(f"results: {path}")


if __name__ == "__main__":
    main()
