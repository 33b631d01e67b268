"""Load benchmark (issue 4): large concurrent tasks, then 1,000 small ones with a worker killed halfway.

Everything runs on this machine: a fresh PostgreSQL database (created, migrated with
`store.apply_migrations`, dropped at the end), the local Redis under a key prefix of the run's own, a
private SeaweedFS (`service.dev.resolve_services(..., ephemeral=True)`), one `agensium api` process and
`--workers` `agensium worker` processes, restarted for each phase. The benchmark talks to the service
over HTTP only (httpx: create -> upload -> process); it reads the database and the object store only to
check what the service did, and to see when tasks end without loading the API with polls.

Phase 1 (`--tasks` 10): each task is `clean-my-data` (default chain) on its own upload of a ~`--file-mb`
MB CSV (bench/gen_csv.py: 15 mixed columns, ~137 bytes a row; one file, uploaded once per task) and a
~1 MB parameters.json (a field-standardization synonym table: legacy codes and spellings of the
category/country/status values), both streamed from disk through presigned PUTs (`--upload api`:
through `PUT /api/v1/tasks/{id}/inputs/{name}`). One user per task, so the per-user cap
(`user_max_active_tasks`) does not serialise them. Measured: upload time, time until every task is
terminal, each task's status and attempts, peak RSS of the API and of each worker (with its agent
processes), and that every output object exists once: the listing of the task's outputs prefix equals
the keys of its row's `outputs`, and `GET /downloads` names them.

Phase 2 (`--users` 20 x `--tasks-per-user` 50): tiny CSV tasks, `profile-my-data` with only
`unified-profiler` (`--small-tool sleeper`: the hidden `diagnostics` tool's `sleeper` for `--sleep-s`,
with AGENSIUM_DIAGNOSTICS=1), submitted by `--concurrency` (32) concurrent submitters. When half of them
are terminal, one worker's process group is SIGKILLed (its agent processes die with it). Measured: time
until all are terminal, attempts, tasks lost (not terminal by `--deadline-s`), tasks not COMPLETED,
duplicated work (more than one COMPLETED status event or `done` event per task in `task_events`, and
the same over SSE, `Last-Event-ID: 0`, for up to 100 tasks: those running on the killed worker, those
retried, then the first submitted; output objects beyond the row's outputs), and credits charged once
(each user's balance = start - cost of their COMPLETED tasks; per task, the ledger's net charge = its
cost if COMPLETED, else 0). The WARNING/ERROR lines of the children's logs are counted by kind, and
the tasks they name are checked like the others (with the time of the warning against `finished_at`).

In phase 2 the recovery intervals are shortened so that the killed worker's tasks come back in seconds;
they are passed to the children through Settings and stored in the results: heartbeat_interval_s=1,
stale_after_s=10, reaper_interval_s=2. Phase 1 runs with the defaults (5 / 20 / 10 s).

    .venv/bin/python bench/bench_load.py [--phase 1|2|all] [--tasks 10] [--file-mb 100] [--users 20]
                                         [--tasks-per-user 50] [--workers 2] [--json-out PATH]

Prints a table; writes bench/results/load-<UTC time>.json (or --json-out). Child logs stay in
$TMPDIR/agensium-load-<run>/logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import psutil
from harness import (
    LOCALHOST,
    RESULTS_DIR,
    ChildProcess,
    free_port,
    machine_info,
    percentile,
    start_child,
    wait_until_http_ok,
)
from rich.console import Console
from rich.table import Table

from service.config import Settings
from service.dev import resolve_services, settings_environment, settings_variable_names
from service.lifecycle import output_key, outputs_prefix
from service.storage import Storage
from service.store import TaskStore, apply_migrations

MB = 1000**2
BYTES_PER_ROW = 137  # gen_csv.py's 15-column layout
DATA_DIR = Path(tempfile.gettempdir()) / "agensium-bench-data"
RECOVERY = {"heartbeat_interval_s": 1.0, "stale_after_s": 10.0, "reaper_interval_s": 2.0}
NO_PREFERRED_PORTS = {"postgres": 0, "valkey": 0, "seaweedfs": 0}
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"})
START_CREDITS = 10_000_000
CHUNK_BYTES = 1024 * 1024
POLL_S = 0.25
RSS_INTERVAL_S = 0.25
VERIFY_CONCURRENCY = 16
SSE_SAMPLE = 100  # tasks whose event log is also replayed over SSE in phase 2


# --- services -----------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, name: str) -> AsyncIterator[str]:
    """A database of the run's own, migrated; dropped (connections forced out) on the way out."""
    admin_url = with_database(server_url, "postgres")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        url = with_database(server_url, name)
        await apply_migrations(url)
        yield url
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


class RssSampler:
    """Peak RSS of each child (its own, and with its descendants: a worker's agent processes), sampled
    from a thread every RSS_INTERVAL_S."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak_main: dict[str, int] = dict.fromkeys(pids, 0)
        self.peak_tree: dict[str, int] = dict.fromkeys(pids, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    process = psutil.Process(pid)
                    main = process.memory_info().rss
                    tree = main
                    for child in process.children(recursive=True):
                        with contextlib.suppress(psutil.NoSuchProcess):
                            tree += child.memory_info().rss
                except psutil.NoSuchProcess:  # e.g. the worker killed on purpose
                    continue
                self.peak_main[name] = max(self.peak_main[name], main)
                self.peak_tree[name] = max(self.peak_tree[name], tree)
            self.samples += 1
            self._stop.wait(RSS_INTERVAL_S)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "peak_rss_mb": round(self.peak_main[name] / MB, 1),
                "peak_tree_rss_mb": round(self.peak_tree[name] / MB, 1),
            }
            for name in self.pids
        }


@dataclass
class Service:
    """The API and the workers of one phase, as child processes in their own process groups (os.killpg takes
    a worker's agent processes with it). harness.start_child rather than service.dev.start_child: the same
    `python -m service.cli` in its own session that dies with its parent, but with its output in a log file
    (1,000 tasks' worker logs would bury the table)."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    url: str = ""
    api: ChildProcess | None = None
    workers: list[ChildProcess] = field(default_factory=list)

    @property
    def children(self) -> list[ChildProcess]:
        return ([self.api] if self.api else []) + self.workers

    async def start(self, workers: int, pool: asyncpg.Pool) -> None:
        port = free_port()
        self.url = f"http://{LOCALHOST}:{port}"
        command = [sys.executable, "-m", "service.cli"]
        self.api = start_child(
            "api", [*command, "api", "--host", LOCALHOST, "--port", str(port), "--workers", "1"], self.env, self.log_dir
        )
        for index in range(workers):
            self.workers.append(start_child(f"worker-{index}", [*command, "worker"], self.env, self.log_dir))
        await wait_until_http_ok(f"{self.url}/healthz", self.api)
        await self.wait_workers_registered(pool)

    async def wait_workers_registered(self, pool: asyncpg.Pool, timeout_s: float = 120.0) -> None:
        """Until every worker has written its heartbeat row (it is then consuming the queue)."""
        deadline = time.monotonic() + timeout_s
        pids = {child.popen.pid for child in self.workers}
        while True:
            for child in self.children:
                child.check_alive()
            registered = {row["pid"] for row in await pool.fetch("SELECT pid FROM workers")}
            if pids <= registered:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers {sorted(pids - registered)} did not register in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    def rss_pids(self) -> dict[str, int]:
        return {child.name: child.popen.pid for child in self.children}

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def child_environment(settings: Settings, extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any setting variable, plus the resolved settings."""
    names = settings_variable_names()
    base = {key: value for key, value in os.environ.items() if key not in names}
    return {**base, **settings_environment(settings), **extra}


# --- HTTP ---------------------------------------------------------------------------------------


class ApiFailure(RuntimeError):
    pass


@dataclass
class User:
    user_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def call(
    http: httpx.AsyncClient, method: str, path: str, user: User, expected: Iterable[int], **kwargs: Any
) -> Any:
    response = await http.request(
        method, f"/api/v1{path}", headers={**user.headers, **kwargs.pop("headers", {})}, **kwargs
    )
    if response.status_code not in set(expected):
        raise ApiFailure(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json() if response.content else None


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(CHUNK_BYTES):
            yield chunk


async def put_presigned(s3: httpx.AsyncClient, upload: dict[str, Any], path: Path) -> None:
    """Stream `path` to a presigned PUT (Content-Length set: S3 refuses a chunked body)."""
    headers = {k: v for k, v in upload["headers"].items() if k.lower() != "content-length"}
    headers["Content-Length"] = str(path.stat().st_size)
    response = await s3.request(upload["method"], upload["url"], content=file_chunks(path), headers=headers)
    if response.is_error:
        raise ApiFailure(f"presigned {upload['method']} {upload['name']}: {response.status_code} {response.text[:300]}")


async def upload_inputs(
    http: httpx.AsyncClient, s3: httpx.AsyncClient, user: User, task_id: str, files: dict[str, Path], mode: str
) -> None:
    """Each input, streamed from disk: presigned PUTs to the store, or PUT /inputs/{name} through the API."""
    if mode == "api":
        for name, path in files.items():
            content_type = "application/json" if name.endswith(".json") else "text/csv"
            headers = {"Content-Type": content_type, "Content-Length": str(path.stat().st_size)}
            await call(
                http, "PUT", f"/tasks/{task_id}/inputs/{name}", user, [201], content=file_chunks(path), headers=headers
            )
        return
    data = {name: path for name, path in files.items() if name != "parameters.json"}
    body: dict[str, Any] = {
        "files": [
            {"name": name, "content_type": "text/csv", "size": path.stat().st_size} for name, path in data.items()
        ],
        "has_parameters": "parameters.json" in files,
    }
    if "parameters.json" in files:
        body["parameters_size"] = files["parameters.json"].stat().st_size
    answer = await call(http, "POST", f"/tasks/{task_id}/upload-urls", user, [200], json=body)
    await asyncio.gather(*(put_presigned(s3, upload, files[upload["name"]]) for upload in answer["uploads"]))


def chain_cost(catalog: dict[str, Any], tool_id: str, agents: list[str]) -> int:
    tool = next(t for t in catalog["tools"] if t["tool_id"] == tool_id)
    credits = {agent["agent_id"]: agent["credits"] for agent in tool["agents"]}
    return sum(credits[agent] for agent in agents)


# --- progress -----------------------------------------------------------------------------------


class Monitor:
    """Polls the run's database for the status of the phase's tasks: when each was first seen terminal."""

    def __init__(self, pool: asyncpg.Pool, user_ids: list[str], started: float) -> None:
        self.pool = pool
        self.user_ids = [uuid.UUID(u) for u in user_ids]
        self.started = started
        self.status: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.terminal_at: dict[str, float] = {}  # seconds since `started`
        self.timeline: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def poll(self) -> None:
        rows = await self.pool.fetch(
            "SELECT id::text AS id, status, attempts FROM tasks WHERE user_id = ANY($1::uuid[])", self.user_ids
        )
        now = time.perf_counter() - self.started
        for row in rows:
            self.status[row["id"]] = row["status"]
            self.attempts[row["id"]] = row["attempts"]
            if row["status"] in TERMINAL and row["id"] not in self.terminal_at:
                self.terminal_at[row["id"]] = now
        counts = Counter(self.status.values())
        if not self.timeline or now - self.timeline[-1]["t"] >= 1.0:
            self.timeline.append({"t": round(now, 2), **counts})
        self.changed.set()

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(POLL_S)

    def terminal(self, task_ids: Iterable[str]) -> int:
        return sum(1 for task_id in task_ids if task_id in self.terminal_at)

    async def wait(self, condition: Any, deadline: float) -> bool:
        """True once condition() holds, False at the perf_counter deadline."""
        while not condition():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 2.0))
        return True


# --- checks -------------------------------------------------------------------------------------


@dataclass
class Submitted:
    task_id: str
    user: User
    tool_id: str
    agents: list[str]
    created_s: float = 0.0
    uploaded_s: float = 0.0  # upload time of this task's inputs
    queued_s: float = 0.0  # since the phase started, when `process` answered


async def verify(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    storage: Storage,
    settings: Settings,
    catalog: dict[str, Any],
    tasks: list[Submitted],
    users: list[User],
    sse_ids: set[str],
) -> dict[str, Any]:
    """What the service says (HTTP), what it stored (rows, objects, events, ledger), and whether they agree."""
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
    rows = {
        str(row["id"]): row
        for row in await pool.fetch(
            "SELECT id, user_id, status, attempts, outputs, error, finished_at FROM tasks WHERE id = ANY($1::uuid[])",
            [uuid.UUID(t.task_id) for t in tasks],
        )
    }
    events = {
        row["task_id"]: row
        for row in await pool.fetch(
            """SELECT task_id::text AS task_id,
                      count(*) FILTER (WHERE type = 'status' AND payload->>'status' = 'COMPLETED') AS completed,
                      count(*) FILTER (WHERE type = 'done') AS done
               FROM task_events WHERE task_id = ANY($1::uuid[]) GROUP BY task_id""",
            [uuid.UUID(t.task_id) for t in tasks],
        )
    }
    ledger = {
        row["task_id"]: row
        for row in await pool.fetch(
            """SELECT task_id::text AS task_id, count(*) FILTER (WHERE reason = 'agent run') AS debits,
                      COALESCE(sum(amount), 0)::bigint AS net
               FROM credit_ledger WHERE task_id = ANY($1::uuid[]) GROUP BY task_id""",
            [uuid.UUID(t.task_id) for t in tasks],
        )
    }

    async def one(task: Submitted) -> dict[str, Any]:
        async with gate:
            view = await call(http, "GET", f"/tasks/{task.task_id}", task.user, [200])
            row = rows[task.task_id]
            user_id = str(row["user_id"])
            outputs = json.loads(row["outputs"]) if isinstance(row["outputs"], str) else list(row["outputs"] or [])
            keys = [output_key(settings, user_id, task.task_id, o) for o in outputs]
            listed = await stored_keys(storage, outputs_prefix(settings, user_id, task.task_id))
            downloads: list[str] = []
            if view["status"] == "COMPLETED":
                answer = await call(http, "GET", f"/tasks/{task.task_id}/downloads", task.user, [200])
                downloads = [f["name"] for f in answer["files"]]
            sse = await replay_events(http, task) if task.task_id in sse_ids else None
        event = events.get(task.task_id)
        charge = ledger.get(task.task_id)
        cost = chain_cost(catalog, task.tool_id, task.agents)
        net = -int(charge["net"]) if charge else 0
        return {
            "task_id": task.task_id,
            "status": view["status"],
            "db_status": row["status"],
            "attempts": view["attempts"],
            "error": view["error"],
            "outputs": len(keys),
            "outputs_ok": sorted(keys) == sorted(listed) and len(set(keys)) == len(keys),
            "extra_objects": sorted(set(listed) - set(keys)),
            "missing_objects": sorted(set(keys) - set(listed)),
            "downloads_ok": view["status"] != "COMPLETED" or sorted(downloads) == sorted(o["name"] for o in outputs),
            "completed_events": int(event["completed"]) if event else 0,
            "done_events": int(event["done"]) if event else 0,
            "sse": sse,
            "runs_charged": (int(charge["debits"]) // max(1, len(task.agents))) if charge else 0,
            "charged": net,
            "charge_ok": net == (cost if view["status"] == "COMPLETED" else 0),
            "finished_at": row["finished_at"],
        }

    checked = list(await asyncio.gather(*(one(task) for task in tasks)))
    by_user: dict[str, int] = Counter()
    for task, result in zip(tasks, checked, strict=True):
        if result["status"] == "COMPLETED":
            by_user[task.user.user_id] += chain_cost(catalog, task.tool_id, task.agents)
    balances = []
    for user in users:
        me = await call(http, "GET", "/me", user, [200])
        expected = START_CREDITS - by_user.get(user.user_id, 0)
        balances.append({"user_id": user.user_id, "credits": me["credits"], "expected": expected})
    return {"tasks": checked, "balances": balances}


async def stored_keys(storage: Storage, prefix: str) -> list[str]:
    """The keys of every object under `prefix` (all pages)."""
    pages = storage.client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket, Prefix=prefix)
    return [item["Key"] async for page in pages for item in page.get("Contents", [])]


async def replay_events(http: httpx.AsyncClient, task: Submitted) -> dict[str, int]:
    """The task's whole event log over SSE (Last-Event-ID: 0); the stream ends at the first `done`."""
    counts = {"completed_status": 0, "done": 0, "events": 0}
    headers = {**task.user.headers, "Last-Event-ID": "0", "Accept": "text/event-stream"}
    event_name, data = "", ""
    async with http.stream("GET", f"/api/v1/tasks/{task.task_id}/events", headers=headers, timeout=30) as response:
        if response.status_code != 200:
            raise ApiFailure(f"events of {task.task_id}: {response.status_code}")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event_name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data = line.partition(":")[2].strip()
            elif line == "" and event_name:
                counts["events"] += 1
                if event_name == "status" and json.loads(data).get("status") == "COMPLETED":
                    counts["completed_status"] += 1
                if event_name == "done":
                    counts["done"] += 1
                    break
                event_name, data = "", ""
    return counts


def check_summary(verified: dict[str, Any]) -> dict[str, Any]:
    tasks = verified["tasks"]
    return {
        "by_status": dict(Counter(t["status"] for t in tasks)),
        "api_db_status_mismatch": [t["task_id"] for t in tasks if t["status"] != t["db_status"]],
        "attempts": {str(k): v for k, v in sorted(Counter(t["attempts"] for t in tasks).items())},
        "runs_charged": {str(k): v for k, v in sorted(Counter(t["runs_charged"] for t in tasks).items())},
        "outputs_ok": sum(t["outputs_ok"] for t in tasks if t["status"] == "COMPLETED"),
        "completed": sum(t["status"] == "COMPLETED" for t in tasks),
        "outputs_not_ok": [t["task_id"] for t in tasks if not t["outputs_ok"]],
        "extra_objects": [key for t in tasks for key in t["extra_objects"]],
        "downloads_not_ok": [t["task_id"] for t in tasks if not t["downloads_ok"]],
        "duplicate_completed_events": [
            t["task_id"] for t in tasks if t["completed_events"] > 1 or t["done_events"] > 1
        ],
        "completed_without_event": [
            t["task_id"]
            for t in tasks
            if t["status"] == "COMPLETED" and (t["completed_events"], t["done_events"]) != (1, 1)
        ],
        "sse_checked": sum(1 for t in tasks if t["sse"] is not None),
        "sse_disagrees": [
            t["task_id"]
            for t in tasks
            if t["sse"] is not None and t["sse"]["completed_status"] != min(t["completed_events"], 1)
        ],
        "charge_not_ok": [t["task_id"] for t in tasks if not t["charge_ok"]],
        "balances_not_ok": [b for b in verified["balances"] if b["credits"] != b["expected"]],
        "users": len(verified["balances"]),
        "errors": dict(Counter(t["error"]["code"] for t in tasks if t["error"])),
    }


# --- inputs -------------------------------------------------------------------------------------


def big_csv(file_mb: int) -> Path:
    """The phase 1 primary, generated once per size and kept in DATA_DIR."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen_csv import write_csv

    rows = round(file_mb * MB / BYTES_PER_ROW)
    path = DATA_DIR / f"load_{rows}.csv"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        write_csv(partial, rows)
        partial.rename(path)
    return path


def synonym_parameters(target_bytes: int) -> dict[str, Any]:
    """A field-standardization synonym table of about `target_bytes`: common spellings of the generated
    category/country/status values, then legacy system codes for them until the size is reached."""
    from gen_csv import CATEGORIES, COUNTRIES, STATUSES

    spellings = {
        column: dict(pair.split("=") for pair in pairs.split(", "))
        for column, pairs in (
            ("country", "usa=US, united states=US, u.s.=US, united kingdom=GB, uk=GB, great britain=GB, germany=DE, "
             "deutschland=DE, france=FR, india=IN, brazil=BR, brasil=BR, japan=JP, canada=CA, australia=AU, "
             "spain=ES, españa=ES, italy=IT, italia=IT, netherlands=NL, holland=NL"),
            ("category", "electronic=electronics, book=books, toy=toys, sport=sports, food=grocery"),
            ("status", "enabled=active, open=active, waiting=pending, closed out=closed"),
        )
    }  # fmt: skip
    standards = {"category": CATEGORIES, "country": COUNTRIES, "status": STATUSES}
    mappings: dict[str, dict[str, str]] = {column: dict(values) for column, values in spellings.items()}
    systems = ("SAP", "ORA", "CRM", "POS", "EDI", "WEB", "ERP", "MDM")
    size, number = len(json.dumps(mappings)), 0
    while size < target_bytes:
        number += 1
        for column, values in standards.items():
            for value in values:
                code = f"{systems[number % len(systems)]}-{column[:3].upper()}-{value[:4].upper()}-{number:06d}"
                mappings[column][code] = value
                size += len(code) + len(value) + 6
    return {"field-standardization": {"synonym_mappings": mappings}}


# --- phases -------------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    settings: Settings
    pool: asyncpg.Pool
    storage: Storage
    store: TaskStore
    log_dir: Path
    scratch: Path
    console: Console


async def start_service(
    ctx: Context, stack: AsyncExitStack, phase: str, extra_env: dict[str, str], overrides: dict[str, Any]
) -> Service:
    settings = ctx.settings.model_copy(update=overrides)
    service = Service(settings, child_environment(settings, extra_env), ctx.log_dir / phase)
    stack.callback(service.stop)
    await service.start(ctx.args.workers, ctx.pool)
    return service


async def new_users(ctx: Context, name: str, count: int) -> list[User]:
    users = []
    for index in range(count):
        user_id, api_key = await ctx.store.create_user(f"{name}-{index}", credits=START_CREDITS)
        users.append(User(user_id, api_key))
    return users


async def clients(
    stack: AsyncExitStack, url: str, connections: int, timeout_s: float
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """The API's client and the object store's (presigned URLs carry their own signature, no API key)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(timeout_s, connect=30.0)
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits))
    s3 = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout, limits=limits))
    return http, s3


async def phase_big(ctx: Context) -> dict[str, Any]:
    args, console = ctx.args, ctx.console
    started_gen = time.perf_counter()
    primary = await asyncio.to_thread(big_csv, args.file_mb)
    parameters_path = ctx.scratch / "parameters.json"
    parameters_path.write_text(json.dumps(synonym_parameters(args.params_kb * 1000)))
    files = {"primary.csv": primary, "parameters.json": parameters_path}
    console.print(
        f"phase 1: {args.tasks} x clean-my-data on {primary.stat().st_size / MB:.1f} MB + "
        f"{parameters_path.stat().st_size / MB:.2f} MB parameters.json (inputs ready in "
        f"{time.perf_counter() - started_gen:.1f} s)"
    )
    async with AsyncExitStack() as stack:
        service = await start_service(ctx, stack, "phase1", {}, {})
        users = await new_users(ctx, "load-big", args.tasks)
        http, s3 = await clients(stack, service.url, args.tasks * 2 + 8, 900.0)
        catalog = await call(http, "GET", "/tools", users[0], [200])
        agents = next(t for t in catalog["tools"] if t["tool_id"] == "clean-my-data")["default_chain"]
        sampler = stack.enter_context(RssSampler(service.rss_pids()))
        started = time.perf_counter()
        monitor = Monitor(ctx.pool, [u.user_id for u in users], started)
        watcher = asyncio.create_task(monitor.run())
        stack.callback(watcher.cancel)

        async def submit(user: User) -> Submitted:
            task = await call(http, "POST", "/tasks", user, [201], json={"tool_id": "clean-my-data"})
            submitted = Submitted(task["task_id"], user, "clean-my-data", agents, time.perf_counter() - started)
            began = time.perf_counter()
            await upload_inputs(http, s3, user, task["task_id"], files, args.upload)
            submitted.uploaded_s = time.perf_counter() - began
            await call(http, "POST", f"/tasks/{task['task_id']}/process", user, [202])
            submitted.queued_s = time.perf_counter() - started
            return submitted

        tasks = list(await asyncio.gather(*(submit(user) for user in users)))
        uploads_done = time.perf_counter() - started
        console.print(f"  {len(tasks)} uploads done in {uploads_done:.1f} s; waiting for the tasks ...")
        ids = [t.task_id for t in tasks]
        deadline = started + args.big_deadline_s
        finished = await monitor.wait(lambda: monitor.terminal(ids) == len(ids), deadline)
        all_terminal = max(monitor.terminal_at.values(), default=0.0) if finished else None
        watcher.cancel()
        rss = sampler.summary()
        verified = await verify(http, ctx.pool, ctx.storage, ctx.settings, catalog, tasks, users, set())
    uploaded_bytes = sum(path.stat().st_size for path in files.values()) * len(tasks)
    per_task = [
        {
            "task_id": t.task_id,
            "upload_s": round(t.uploaded_s, 2),
            "queued_at_s": round(t.queued_s, 2),
            "terminal_at_s": round(monitor.terminal_at[t.task_id], 2) if t.task_id in monitor.terminal_at else None,
            **{k: v for k, v in check.items() if k in ("status", "attempts", "error", "outputs", "outputs_ok",
                                                      "extra_objects", "runs_charged", "charged")},
        }
        for t, check in zip(tasks, verified["tasks"], strict=True)
    ]  # fmt: skip
    return {
        "tasks": len(tasks),
        "tool": "clean-my-data",
        "agents": agents,
        "upload": args.upload,
        "primary_bytes": primary.stat().st_size,
        "parameters_bytes": parameters_path.stat().st_size,
        "uploads_all_s": round(uploads_done, 2),
        "upload_s_p50": round(percentile([t.uploaded_s for t in tasks], 50), 2),
        "upload_s_max": round(max(t.uploaded_s for t in tasks), 2),
        "upload_mb_per_s": round(uploaded_bytes / MB / uploads_done, 1),
        "all_terminal_s": round(all_terminal, 2) if all_terminal is not None else None,
        "lost": [i for i in ids if i not in monitor.terminal_at],
        "rss": rss,
        "log_warnings": log_warnings(ctx.log_dir / "phase1"),
        "checks": check_summary(verified),
        "per_task": per_task,
        "balances": verified["balances"],
        "timeline": monitor.timeline,
    }


async def phase_small(ctx: Context) -> dict[str, Any]:
    args, console = ctx.args, ctx.console
    tiny = ctx.scratch / "tiny.csv"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen_csv import generate

    generate(args.tiny_rows, seed=7).write_csv(tiny)
    if args.small_tool == "sleeper":
        tool_id, agents = "diagnostics", ["sleeper"]
        body: dict[str, Any] = {
            "tool_id": tool_id,
            "agents": agents,
            "parameters": {"sleeper": {"seconds": args.sleep_s}},
        }
        extra_env = {"AGENSIUM_DIAGNOSTICS": "1"}
    else:
        tool_id, agents = "profile-my-data", ["unified-profiler"]
        body, extra_env = {"tool_id": tool_id, "agents": agents}, {}
    total = args.users * args.tasks_per_user
    half = total // 2
    console.print(
        f"phase 2: {args.users} users x {args.tasks_per_user} tasks = {total} x {tool_id} {agents} on a "
        f"{tiny.stat().st_size:,}-byte CSV, {args.concurrency} submitters, {args.workers} workers; "
        f"SIGKILL of worker-0's process group at {half} terminal"
    )
    async with AsyncExitStack() as stack:
        service = await start_service(ctx, stack, "phase2", extra_env, RECOVERY)
        users = await new_users(ctx, "load-small", args.users)
        http, s3 = await clients(stack, service.url, args.concurrency + 16, 60.0)
        catalog = await call(http, "GET", "/tools", users[0], [200])
        sampler = stack.enter_context(RssSampler(service.rss_pids()))
        started = time.perf_counter()
        monitor = Monitor(ctx.pool, [u.user_id for u in users], started)
        watcher = asyncio.create_task(monitor.run())
        stack.callback(watcher.cancel)
        gate = asyncio.Semaphore(args.concurrency)
        tasks: list[Submitted] = []
        failures: list[str] = []

        async def submit(user: User) -> None:
            async with gate:
                try:
                    task = await call(http, "POST", "/tasks", user, [201], json=body)
                    submitted = Submitted(task["task_id"], user, tool_id, agents, time.perf_counter() - started)
                    began = time.perf_counter()
                    await upload_inputs(http, s3, user, task["task_id"], {"primary.csv": tiny}, "presigned")
                    submitted.uploaded_s = time.perf_counter() - began
                    await call(http, "POST", f"/tasks/{task['task_id']}/process", user, [202])
                    submitted.queued_s = time.perf_counter() - started
                    tasks.append(submitted)
                except (ApiFailure, httpx.HTTPError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}"[:300])

        order = [users[i % args.users] for i in range(total)]  # round robin: every user's tasks interleave
        submitting = asyncio.gather(*(submit(user) for user in order))

        async def kill_at_half() -> dict[str, Any]:
            await monitor.wait(lambda: len(monitor.terminal_at) >= half, float("inf"))
            return await kill_worker(
                ctx.pool, service.workers[0], time.perf_counter() - started, len(monitor.terminal_at)
            )

        killer = asyncio.create_task(kill_at_half())
        stack.callback(killer.cancel)
        await submitting
        submitted_all = time.perf_counter() - started
        console.print(f"  {len(tasks)} tasks queued in {submitted_all:.1f} s ({len(failures)} submissions failed)")
        deadline = started + args.deadline_s
        ids = [t.task_id for t in tasks]
        finished = await monitor.wait(lambda: monitor.terminal(ids) == len(ids), deadline)
        await asyncio.wait({killer}, timeout=30 if finished else 0)  # a kill under way completes
        kill = killer.result() if killer.done() else None
        all_terminal = max(monitor.terminal_at.values(), default=0.0) if finished else None
        watcher.cancel()
        await monitor.poll()
        rss = sampler.summary()
        console.print(f"  all terminal: {'NOT' if all_terminal is None else f'{all_terminal:.1f} s'}; verifying ...")
        in_flight = set(kill["in_flight"]) if kill else set()
        retried = {t.task_id for t in tasks if monitor.attempts.get(t.task_id, 0) > 1}
        sse_ids = set(sorted(in_flight | retried)[:SSE_SAMPLE])
        sse_ids |= {t.task_id for t in tasks[: max(0, SSE_SAMPLE - len(sse_ids))]}
        verified = await verify(http, ctx.pool, ctx.storage, ctx.settings, catalog, tasks, users, sse_ids)
    checks = check_summary(verified)
    by_id = {check["task_id"]: check for check in verified["tasks"]}
    if kill:
        recovered = [monitor.terminal_at.get(task_id) for task_id in kill["in_flight"]]
        kill["in_flight_outcome"] = dict(
            Counter(by_id[task_id]["status"] for task_id in kill["in_flight"] if task_id in by_id)
        )
        kill["in_flight_attempts"] = dict(Counter(str(by_id[t]["attempts"]) for t in kill["in_flight"] if t in by_id))
        kill["in_flight_terminal_after_kill_s_max"] = (
            round(max(r for r in recovered if r is not None) - kill["at_s"], 2)
            if recovered and all(r is not None for r in recovered)
            else None
        )
    return {
        "tasks_planned": total,
        "tasks_queued": len(tasks),
        "submit_failures": failures[:20],
        "submit_failures_count": len(failures),
        "tool": tool_id,
        "agents": agents,
        "sleep_s": args.sleep_s if args.small_tool == "sleeper" else None,
        "tiny_csv_bytes": tiny.stat().st_size,
        "concurrency": args.concurrency,
        "submit_all_s": round(submitted_all, 2),
        "all_terminal_s": round(all_terminal, 2) if all_terminal is not None else None,
        "tasks_per_s": round(len(tasks) / all_terminal, 1) if all_terminal else None,
        "kill": kill,
        "lost": [i for i in ids if i not in monitor.terminal_at],
        "not_completed": {
            t["task_id"]: {"status": t["status"], "error": t["error"]}
            for t in verified["tasks"]
            if t["status"] != "COMPLETED"
        },
        "rss": rss,
        "log_warnings": log_warnings(ctx.log_dir / "phase2"),
        "checks": checks,
        "warned_tasks": [
            {
                **{k: by_id[t][k] for k in ("task_id", "status", "attempts", "outputs_ok", "completed_events")},
                "warned_after_finished_s": round((at - by_id[t]["finished_at"]).total_seconds(), 3)
                if by_id[t]["finished_at"]
                else None,
            }
            for t, at in sorted(warned_tasks(ctx.log_dir / "phase2").items())
            if t in by_id
        ],
        "retried_tasks": [
            {
                k: by_id[t][k]
                for k in ("task_id", "status", "attempts", "runs_charged", "charged", "completed_events", "sse")
            }
            for t in sorted(retried | in_flight)
            if t in by_id
        ],
        "balances_sample": verified["balances"][:3],
        "timeline": monitor.timeline,
    }


async def kill_worker(pool: asyncpg.Pool, worker: ChildProcess, at_s: float, terminal: int) -> dict[str, Any]:
    """SIGKILL the worker's process group; what it was running is what recovery must bring back."""
    pid = worker.popen.pid
    os.killpg(pid, signal.SIGKILL)
    await asyncio.to_thread(worker.popen.wait)
    worker_ids = [row["worker_id"] for row in await pool.fetch("SELECT worker_id FROM workers WHERE pid = $1", pid)]
    rows = await pool.fetch(
        "SELECT id::text AS id FROM tasks WHERE status = 'PROCESSING' AND worker_id = ANY($1::text[])", worker_ids
    )
    return {
        "worker": worker.name,
        "pid": pid,
        "worker_ids": worker_ids,
        "at_s": round(at_s, 2),
        "terminal_at_kill": terminal,
        "in_flight": [row["id"] for row in rows],
    }


def log_warnings(log_dir: Path) -> dict[str, int]:
    """WARNING/ERROR lines of the phase's child logs by kind (ids and numbers masked), most frequent first."""
    kinds: Counter[str] = Counter()
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            level = next((level for level in (" WARNING ", " ERROR ", " CRITICAL ") if level in line), None)
            if level is not None:
                message = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+(\.\d+)?", "#", line.partition(level)[2])
                kinds[f"{path.stem}:{level.rstrip()} {message[:140]}"] += 1
    return dict(kinds.most_common(20))


def warned_tasks(log_dir: Path) -> dict[str, datetime]:
    """Tasks named in the WARNING lines of the phase's worker logs (to show what became of them), with the
    time of their first warning (the logs' local time)."""
    warned: dict[str, datetime] = {}
    for path in log_dir.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if " WARNING " in line:
                at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone()
                for task_id in re.findall(r"task ([0-9a-f]{8}-[0-9a-f-]{27})", line):
                    warned[task_id] = min(at, warned.get(task_id, at))
    return warned


# --- output -------------------------------------------------------------------------------------


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def add(what: str, measured: str, ok: bool | None = None) -> None:
        rows.append((what, measured, "" if ok is None else ("[green]ok" if ok else "[red]NO")))

    if big := results.get("phase1"):
        c = big["checks"]
        done = big["all_terminal_s"]
        add("1: tasks", f"{big['tasks']} x {big['tool']} ({len(big['agents'])} agents), upload {big['upload']}")
        add(
            "1: inputs per task",
            f"{big['primary_bytes'] / MB:.1f} MB CSV + {big['parameters_bytes'] / MB:.2f} MB parameters.json",
        )
        add(
            "1: uploads (all at once)",
            f"{big['uploads_all_s']:.1f} s, {big['upload_mb_per_s']:.0f} MB/s; "
            f"per task p50 {big['upload_s_p50']:.1f} s, max {big['upload_s_max']:.1f} s",
        )
        add("1: all terminal after", f"{done} s" if done is not None else f"NOT ({len(big['lost'])} lost)", bool(done))
        add("1: statuses / attempts", f"{c['by_status']} / {c['attempts']}", c["completed"] == big["tasks"])
        add(
            "1: outputs stored once",
            f"{c['outputs_ok']}/{c['completed']} (extra objects {len(c['extra_objects'])}, "
            f"downloads mismatches {len(c['downloads_not_ok'])})",
            c["outputs_ok"] == c["completed"] and not c["extra_objects"] and not c["downloads_not_ok"],
        )
        add(
            "1: events / credits",
            f"duplicate COMPLETED {len(c['duplicate_completed_events'])}, charge mismatches "
            f"{len(c['charge_not_ok'])}, balances wrong {len(c['balances_not_ok'])}",
            not c["duplicate_completed_events"] and not c["charge_not_ok"] and not c["balances_not_ok"],
        )
        add("1: peak RSS (own / with children)", rss_text(big["rss"]))
        add("1: warnings in child logs", warnings_text(big["log_warnings"]))
    if small := results.get("phase2"):
        c = small["checks"]
        kill = small["kill"]
        done = small["all_terminal_s"]
        add(
            "2: tasks",
            f"{small['tasks_queued']}/{small['tasks_planned']} queued ({small['tool']} {small['agents']}), "
            f"{small['submit_failures_count']} submissions failed",
            small["tasks_queued"] == small["tasks_planned"],
        )
        add("2: submitted in", f"{small['submit_all_s']:.1f} s ({small['concurrency']} submitters)")
        if kill:
            add(
                "2: worker killed",
                f"{kill['worker']} at {kill['at_s']} s ({kill['terminal_at_kill']} terminal); "
                f"{len(kill['in_flight'])} of its tasks PROCESSING -> {kill.get('in_flight_outcome')}, "
                f"all terminal {kill.get('in_flight_terminal_after_kill_s_max')} s after the kill",
                True,
            )
        else:
            add("2: worker killed", "NOT killed", False)
        add("2: all terminal after", f"{done} s = {small['tasks_per_s']} tasks/s" if done else "NOT", bool(done))
        add(
            "2: lost / not COMPLETED",
            f"{len(small['lost'])} / {len(small['not_completed'])} {c['errors'] or ''}",
            not small["lost"] and not small["not_completed"],
        )
        add("2: attempts", f"{c['attempts']} (runs charged {c['runs_charged']})")
        add(
            "2: duplicated work",
            f"{len(c['duplicate_completed_events'])} tasks with >1 COMPLETED/done event, "
            f"{len(c['extra_objects'])} extra output objects; SSE replay of {c['sse_checked']} tasks "
            f"disagrees on {len(c['sse_disagrees'])}",
            not c["duplicate_completed_events"] and not c["extra_objects"] and not c["sse_disagrees"],
        )
        add(
            "2: outputs stored once",
            f"{c['outputs_ok']}/{c['completed']} (missing/extra on {len(c['outputs_not_ok'])} tasks)",
            not c["outputs_not_ok"] and not c["downloads_not_ok"],
        )
        add(
            "2: credits charged once",
            f"{c['users'] - len(c['balances_not_ok'])}/{c['users']} balances = start - cost of COMPLETED; "
            f"{len(c['charge_not_ok'])} task ledgers off",
            not c["balances_not_ok"] and not c["charge_not_ok"],
        )
        add("2: peak RSS (own / with children)", rss_text(small["rss"]))
        add("2: warnings in child logs", warnings_text(small["log_warnings"]))
        warned = small["warned_tasks"]
        add(
            "2: tasks named in those warnings",
            f"{len(warned)}: {dict(Counter(t['status'] for t in warned))}, outputs ok "
            f"{sum(t['outputs_ok'] for t in warned)}, "
            f"COMPLETED events {dict(Counter(t['completed_events'] for t in warned))}; warned "
            f"{min_max([t['warned_after_finished_s'] for t in warned])} s after the task's finished_at",
        )
    return rows


def min_max(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):+.2f}..{max(known):+.2f}" if known else "-"


def rss_text(rss: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {v['peak_rss_mb']:.0f}/{v['peak_tree_rss_mb']:.0f} MB" for name, v in rss.items())


def warnings_text(kinds: dict[str, int]) -> str:
    if not kinds:
        return "none"
    top = "; ".join(f"{count} x {kind}" for kind, count in list(kinds.items())[:3])
    return f"{sum(kinds.values())} ({top})"


def print_table(console: Console, results: dict[str, Any]) -> None:
    table = Table(title="load benchmark (issue 4)")
    for column in ("what", "measured", "ok"):
        table.add_column(column)
    for row in table_rows(results):
        table.add_row(*row)
    console.print(table)


# --- main ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, base: Settings, run_id: str, work: Path, console: Console) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(fresh_database(base.database_url, f"agensium_load_{run_id}"))
        settings = base.model_copy(update={"database_url": database_url, "key_prefix": f"bench-load-{run_id}/"})
        storage = await stack.enter_async_context(Storage(settings))
        await storage.ensure_bucket()
        stack.push_async_callback(storage.delete_prefix, settings.key_prefix)
        store = await TaskStore.connect(database_url, 1, 4)
        stack.push_async_callback(store.close)
        scratch = work / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        ctx = Context(args, settings, store.pool, storage, store, work / "logs", scratch, console)
        if args.phase in ("1", "all"):
            began = time.perf_counter()
            results["phase1"] = await phase_big(ctx)
            results["phase1"]["wall_s"] = round(time.perf_counter() - began, 1)
        if args.phase in ("2", "all"):
            began = time.perf_counter()
            results["phase2"] = await phase_small(ctx)
            results["phase2"]["wall_s"] = round(time.perf_counter() - began, 1)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_load.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", choices=("1", "2", "all"), default="all")
    parser.add_argument("--tasks", type=int, default=10, help="phase 1: concurrent large tasks (%(default)s)")
    parser.add_argument("--file-mb", type=int, default=100, help="phase 1: CSV size in MB (%(default)s)")
    parser.add_argument("--params-kb", type=int, default=1000, help="phase 1: parameters.json size (%(default)s kB)")
    parser.add_argument("--upload", choices=("presigned", "api"), default="presigned", help="phase 1 upload route")
    parser.add_argument("--users", type=int, default=20, help="phase 2: users (%(default)s)")
    parser.add_argument("--tasks-per-user", type=int, default=50, help="phase 2: tasks per user (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=32, help="phase 2: concurrent submitters (%(default)s)")
    parser.add_argument("--small-tool", choices=("profiler", "sleeper"), default="profiler", help="phase 2 task")
    parser.add_argument("--sleep-s", type=float, default=0.2, help="phase 2 sleeper seconds (%(default)s)")
    parser.add_argument("--tiny-rows", type=int, default=20, help="phase 2: rows of the tiny CSV (%(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (%(default)s)")
    parser.add_argument(
        "--big-deadline-s", type=float, default=3600.0, help="phase 1: seconds from its start (%(default)s)"
    )
    parser.add_argument(
        "--deadline-s", type=float, default=600.0, help="phase 2: a task not terminal by then is lost (%(default)s)"
    )
    parser.add_argument("--json-out", type=Path, help="results file (default bench/results/load-<UTC time>.json)")
    args = parser.parse_args(argv)
    if args.workers < 1 or (args.phase in ("2", "all") and args.workers < 2):
        parser.error("phase 2 kills one worker: --workers must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=max(Console().width, 160))
    run_id = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix=f"agensium-load-{run_id}-"))
    began = time.perf_counter()
    load_at_start = os.getloadavg()
    # Embedded servers die with the thread that started them: resolve in the main thread, outside the loop.
    # A secret of this run (the API refuses to start without one); the rate limiter never refuses the load.
    base = Settings(secret_key=secrets.token_urlsafe(32), rate_limit_per_s=1e9, rate_limit_burst=10**9)
    services = resolve_services(base, work / "services", ephemeral=True, preferred_ports=NO_PREFERRED_PORTS)
    try:
        for line in services.describe():
            console.print(f"  {line}")
        results = asyncio.run(run(args, services.settings, run_id, work, console))
    finally:
        services.close()
        shutil.rmtree(work / "services", ignore_errors=True)
        shutil.rmtree(work / "scratch", ignore_errors=True)
    wall_s = time.perf_counter() - began
    print_table(console, results)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.json_out or RESULTS_DIR / f"load-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "load",
        "finished_at": stamp,
        "wall_s": round(wall_s, 1),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_average_at_start": load_at_start,
        "child_settings": {
            "phase2_recovery": RECOVERY,
            "phase1_recovery": {name: getattr(services.settings, name) for name in RECOVERY},
            "worker_concurrency": services.settings.worker_concurrency,
            "agent_processes": services.settings.agent_processes,
            "user_max_active_tasks": services.settings.user_max_active_tasks,
            "max_attempts": services.settings.max_attempts,
        },
        "services": services.describe(),
        "logs": str(work / "logs"),
        **results,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    console.print(f"wall time {wall_s:.0f} s; results: {path}; child logs: {work / 'logs'}")
    return 0 if all_ok(results) else 1


def all_ok(results: dict[str, Any]) -> bool:
    return all("[red]" not in row[2] for row in table_rows(results))


if __name__ == "__main__":
    sys.exit(main())
