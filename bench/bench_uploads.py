"""Concurrent streamed uploads through the API: `PUT /api/v1/tasks/{id}/inputs/primary.csv`.

Creates N tasks (`POST /api/v1/tasks`), then streams N generated bodies of SIZE bytes each, all at
once, through the API (httpx, an async generator body with Content-Length set, so the client holds
one 64 KiB chunk per upload). Every body is distinct (its own header line, then slices of a 4 MiB
random pool at an upload-specific rotation) and its sha256 is computed client-side before the run.
While the uploads run, the API process's RSS (with its children's) is sampled every 50 ms (psutil).

Checks: every answer is 201 with the expected size and sha256; when the benchmark started the
service, every stored object is HEADed for its size and a few are downloaded and hashed again.
Reports wall time, MB/s, peak API RSS against PRODUCT.md's target (200 concurrent 20 MB uploads
with API RSS < 300 MB and every stored object's sha256 correct). Objects are deleted afterwards
(their key prefix is the benchmark's own) unless --keep-objects.

With --url/--api-key a running API is used instead; give --api-pid to sample its RSS.

Prints a table; writes bench/results/uploads-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil
from harness import (
    LOCALHOST,
    LocalService,
    add_service_arguments,
    agensium_command,
    check_service_arguments,
    free_port,
    machine_info,
    parse_env_pairs,
    percentile,
    wait_until_http_ok,
    write_results,
)
from rich.console import Console
from rich.table import Table

from service.config import Settings
from service.storage import Storage

MB = 1000**2
MiB = 1024**2
TARGET_RSS_BYTES = 300 * MB
INPUT_NAME = "primary.csv"
CHUNK_BYTES = 64 * 1024
POOL_BYTES = 4 * MiB
SAMPLE_INTERVAL_S = 0.05
CREATE_CONCURRENCY = 16


class GeneratedBodies:
    """Distinct, reproducible bodies of `size` bytes: a header line, then a rotated random pool."""

    def __init__(self, size: int, seed: int = 20240601) -> None:
        self.size = size
        self._pool = memoryview(hashlib.shake_256(seed.to_bytes(8, "big")).digest(POOL_BYTES))

    def chunks(self, index: int) -> Iterator[bytes]:
        header = f"upload,{index}\n".encode()[: self.size]
        yield header
        remaining = self.size - len(header)
        offset = (index * 7919 * 64) % POOL_BYTES
        while remaining > 0:
            length = min(CHUNK_BYTES, remaining, POOL_BYTES - offset)
            yield bytes(self._pool[offset : offset + length])
            remaining -= length
            offset = (offset + length) % POOL_BYTES

    def sha256(self, index: int) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks(index):
            digest.update(chunk)
        return digest.hexdigest()

    async def stream(self, index: int, sent: list[int]) -> AsyncIterator[bytes]:
        for chunk in self.chunks(index):
            sent[index] += len(chunk)
            yield chunk


@dataclass
class RssSampler:
    """Samples the RSS of a process and its children from a thread every `interval_s`."""

    pid: int
    interval_s: float = SAMPLE_INTERVAL_S
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, main RSS, tree RSS)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def sample(self) -> tuple[int, int]:
        process = psutil.Process(self.pid)
        main = process.memory_info().rss
        tree = main
        for child in process.children(recursive=True):
            try:
                tree += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return main, tree

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            try:
                main, tree = self.sample()
            except psutil.NoSuchProcess:
                return
            self.samples.append((time.perf_counter() - started, main, tree))
            self._stop.wait(self.interval_s)

    @property
    def peak_main(self) -> int:
        return max((s[1] for s in self.samples), default=0)

    @property
    def peak_tree(self) -> int:
        return max((s[2] for s in self.samples), default=0)


@dataclass
class UploadOutcome:
    index: int
    task_id: str
    status: int
    seconds: float
    bytes_sent: int
    size_ok: bool
    sha256_ok: bool
    error: str = ""


async def create_tasks(http: httpx.AsyncClient, count: int) -> list[str]:
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def create_one() -> str:
        async with gate:
            response = await http.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/tasks answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["task_id"])

    return list(await asyncio.gather(*(create_one() for _ in range(count))))


async def upload_one(
    http: httpx.AsyncClient, bodies: GeneratedBodies, index: int, task_id: str, expected_sha256: str, sent: list[int]
) -> UploadOutcome:
    started = time.perf_counter()
    headers = {"Content-Type": "text/csv", "Content-Length": str(bodies.size)}
    try:
        response = await http.put(
            f"/api/v1/tasks/{task_id}/inputs/{INPUT_NAME}", content=bodies.stream(index, sent), headers=headers
        )
    except httpx.HTTPError as exc:
        return UploadOutcome(index, task_id, 0, time.perf_counter() - started, sent[index], False, False, repr(exc))
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        return UploadOutcome(
            index, task_id, response.status_code, seconds, sent[index], False, False, response.text[:300]
        )
    answer = response.json()
    return UploadOutcome(
        index,
        task_id,
        response.status_code,
        seconds,
        sent[index],
        size_ok=answer.get("size") == bodies.size,
        sha256_ok=answer.get("sha256") == expected_sha256,
    )


async def verify_stored(
    service: LocalService,
    http: httpx.AsyncClient,
    bodies: GeneratedBodies,
    task_ids: list[str],
    digests: list[str],
    downloads: int,
) -> dict[str, Any]:
    """HEAD every stored object for its size; download `downloads` of them and hash them again."""
    settings = service_settings(service)
    user_id = str((await http.get("/api/v1/me")).raise_for_status().json()["user_id"])
    keys = [f"{settings.object_prefix(user_id, task_id)}inputs/{INPUT_NAME}" for task_id in task_ids]
    async with Storage(settings) as storage:
        heads = await asyncio.gather(*(storage.head(key) for key in keys))
        wrong_size = [key for key, head in zip(keys, heads, strict=True) if head is None or head.size != bodies.size]
        step = max(1, len(keys) // max(1, downloads))
        checked = list(range(0, len(keys), step))[:downloads]
        wrong_sha256 = []
        for index in checked:
            digest = hashlib.sha256()
            response = await storage.client.get_object(Bucket=storage.bucket, Key=keys[index])
            body = response["Body"]
            async with body:  # releases the connection (entering yields the raw aiohttp response)
                while chunk := await body.read(MiB):
                    digest.update(chunk)
            if digest.hexdigest() != digests[index]:
                wrong_sha256.append(keys[index])
    return {
        "headed": len(keys),
        "wrong_size": wrong_size,
        "downloaded_and_hashed": len(checked),
        "wrong_sha256": wrong_sha256,
    }


async def delete_objects(service: LocalService) -> int:
    settings = service_settings(service)
    async with Storage(settings) as storage:
        return await storage.delete_prefix(settings.key_prefix)


def service_settings(service: LocalService) -> Settings:
    """The resolved settings the API runs with (harness keeps them on its service stack)."""
    settings: Settings = service._services.settings
    return settings


def summarize(outcomes: list[UploadOutcome], wall_s: float, sampler: RssSampler | None, size: int) -> dict[str, Any]:
    ok = [o for o in outcomes if o.status == 201 and o.size_ok and o.sha256_ok]
    stored_bytes = size * len(ok)
    durations = [o.seconds for o in outcomes]
    return {
        "uploads": len(outcomes),
        "ok": len(ok),
        "failed": [asdict(o) for o in outcomes if o not in ok][:20],
        "wall_s": round(wall_s, 3),
        "mb_per_s": round(stored_bytes / MB / wall_s, 1) if wall_s else 0.0,
        "upload_s_p50": round(percentile(durations, 50), 3),
        "upload_s_max": round(max(durations, default=0.0), 3),
        "rss_samples": len(sampler.samples) if sampler else 0,
        "rss_before_mb": round(sampler.samples[0][1] / MB, 1) if sampler and sampler.samples else None,
        "peak_rss_mb": round(sampler.peak_main / MB, 1) if sampler else None,
        "peak_rss_tree_mb": round(sampler.peak_tree / MB, 1) if sampler else None,
        "target_rss_mb": TARGET_RSS_BYTES / MB,
        "rss_met": (sampler.peak_tree < TARGET_RSS_BYTES) if sampler and sampler.samples else None,
    }


def print_table(summary: dict[str, Any], args: argparse.Namespace, console: Console) -> None:
    table = Table(title=f"{args.uploads} concurrent streamed uploads of {args.size_mb} MB through the API")
    for column in ("ok", "wall", "MB/s", "upload p50", "upload max", "API RSS before", "peak API RSS",
                   "target", "stored objects"):  # fmt: skip
        table.add_column(column, justify="right")
    peak = summary["peak_rss_tree_mb"]
    rss_met = summary["rss_met"]
    stored = summary.get("stored")
    stored_text = (
        "-"
        if stored is None
        else (
            "[green]ok"
            if not stored["wrong_size"] and not stored["wrong_sha256"]
            else f"[red]{len(stored['wrong_size'])} size, {len(stored['wrong_sha256'])} sha256 wrong"
        )
    )
    table.add_row(
        ("[green]" if summary["ok"] == summary["uploads"] else "[red]") + f"{summary['ok']}/{summary['uploads']}",
        f"{summary['wall_s']:.1f} s",
        f"{summary['mb_per_s']:.0f}",
        f"{summary['upload_s_p50']:.1f} s",
        f"{summary['upload_s_max']:.1f} s",
        "-" if summary["rss_before_mb"] is None else f"{summary['rss_before_mb']:.0f} MB",
        "-" if peak is None else ("[green]" if rss_met else "[red]") + f"{peak:.0f} MB",
        f"< {summary['target_rss_mb']:.0f} MB",
        stored_text,
    )
    console.print(table)


async def run(args: argparse.Namespace) -> int:
    console = Console(width=max(Console().width, 120))  # the table is wide; keep it readable in logs
    bodies = GeneratedBodies(args.size_mb * MB)
    console.print(f"hashing {args.uploads} generated bodies of {args.size_mb} MB client-side ...")
    digests = await asyncio.to_thread(lambda: [bodies.sha256(i) for i in range(args.uploads)])
    async with AsyncExitStack() as stack:
        service: LocalService | None = None
        url, api_key, api_pid = args.url, args.api_key, args.api_pid
        if url is None:
            service = await stack.enter_async_context(
                LocalService(args.data_dir, args.embedded, parse_env_pairs(args.env))
            )
            api_key = await service.create_user()
            port = free_port()
            api = service.start(
                "api", [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port), "--workers", "1"]
            )
            url = f"http://{LOCALHOST}:{port}"
            await wait_until_http_ok(f"{url}/healthz", api)
            api_pid = api.popen.pid
            console.print(f"API {url} (pid {api_pid}) started; logs in {service.log_dir}")
        limits = httpx.Limits(max_connections=args.uploads + 8, max_keepalive_connections=args.uploads + 8)
        http = await stack.enter_async_context(
            httpx.AsyncClient(
                base_url=url,
                headers={"Authorization": f"Bearer {api_key}"},
                timeout=httpx.Timeout(args.timeout, connect=30.0),
                limits=limits,
            )
        )
        task_ids = await create_tasks(http, args.uploads)
        console.print(f"{len(task_ids)} tasks created; streaming {args.uploads} x {args.size_mb} MB ...")

        sampler = RssSampler(api_pid) if api_pid else None
        sent = [0] * args.uploads
        if sampler is not None:
            sampler.start()
        started = time.perf_counter()
        try:
            outcomes = await asyncio.gather(
                *(upload_one(http, bodies, i, task_ids[i], digests[i], sent) for i in range(args.uploads))
            )
        finally:
            wall_s = time.perf_counter() - started
            if sampler is not None:
                sampler.stop()
        summary = summarize(list(outcomes), wall_s, sampler, bodies.size)
        if service is not None:
            console.print("checking the stored objects ...")
            summary["stored"] = await verify_stored(service, http, bodies, task_ids, digests, args.verify_downloads)
            if not args.keep_objects:
                summary["deleted_objects"] = await delete_objects(service)
    print_table(summary, args, console)
    for failure in summary["failed"][:5]:
        console.print(f"[red]upload {failure['index']} failed[/red]: {failure}")
    path = write_results(
        "uploads",
        {
            "machine": machine_info(),
            "parameters": {
                "uploads": args.uploads,
                "size_bytes": bodies.size,
                "chunk_bytes": CHUNK_BYTES,
                "rss_sample_interval_s": SAMPLE_INTERVAL_S,
                "api": "started by the benchmark" if args.url is None else args.url,
                "env": parse_env_pairs(args.env),
            },
            "summary": summary,
            "rss_samples_mb": [
                [round(t, 3), round(main / MB, 1), round(tree / MB, 1)] for t, main, tree in sampler.samples
            ]
            if sampler
            else [],
        },
    )
    console.print(f"results: {path}")
    stored = summary.get("stored") or {}
    all_good = summary["ok"] == summary["uploads"] and not stored.get("wrong_size") and not stored.get("wrong_sha256")
    return 0 if all_good else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_uploads.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=200, help="concurrent uploads (default: %(default)s)")
    parser.add_argument("--size-mb", type=int, default=20, help="MB (10^6 bytes) per upload (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per upload (default: %(default)s)")
    parser.add_argument(
        "--verify-downloads", type=int, default=5, help="stored objects downloaded and hashed (default: %(default)s)"
    )
    parser.add_argument("--keep-objects", action="store_true", help="leave the uploaded objects in the store")
    add_service_arguments(parser, "use this running API instead of starting one (needs --api-key)")
    parser.add_argument("--api-pid", type=int, help="PID of the --url API, to sample its RSS")
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    if args.uploads < 1 or args.size_mb < 1:
        parser.error("--uploads and --size-mb must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
