"""Fault injection fixtures: a private Valkey and a private PostgreSQL that tests stop and start again on
the same port, the session's SeaweedFS under a key prefix of this package, and the API and workers as
subprocesses of the `agensium` command, so that an outage hits them as it would in production and never
the servers other test runs share."""

from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import redis.asyncio

from service import embedded, lifecycle
from service.config import Settings
from service.dev import (
    ChildProcess,
    ensure_database,
    run_coroutine,
    settings_environment,
    start_child,
    wait_for_healthz,
)
from service.embedded import EmbeddedServer
from service.storage import Storage
from service.store import TaskStore, apply_migrations
from tests.support import stored_keys, submit_over_http, wait_registered

DEADLINE_S = 60.0
CSV = b"id,name,amount\n1,alice,10.5\n2,bob,\n3,carol,7.25\n"
CREDITS = 1_000_000


class RestartableServer:
    """An embedded server stopped and started again on the same port and data directory, as an operator's
    restart would. Start it from the main thread: an embedded server dies with the thread that started it."""

    def __init__(self, start: Callable[[], EmbeddedServer]) -> None:
        self._start = start
        self.server = start()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        if not self.server.is_running():
            self.server = self._start()


@pytest.fixture(scope="module")
def fault_dir() -> Iterator[Path]:
    """The servers' data, outside pytest's temp root: a pytest run starting meanwhile makes that root
    0700 again, and PostgreSQL (as its own OS user when we are root) could no longer reach its files."""
    path = Path(tempfile.mkdtemp(prefix="agensium-fault-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def valkey(fault_dir: Path) -> Iterator[RestartableServer]:
    server = RestartableServer(
        functools.partial(embedded.start_valkey, fault_dir, embedded.find_free_port(), ephemeral=True)
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres(fault_dir: Path) -> Iterator[RestartableServer]:
    server = RestartableServer(
        functools.partial(embedded.start_postgres, fault_dir, embedded.find_free_port(), ephemeral=True)
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_settings(settings: Settings, valkey: RestartableServer, postgres: RestartableServer) -> Settings:
    """The private servers, the shared object store under a prefix of its own, and intervals short enough
    for recovery to act within a test."""
    database_url = postgres.url.rpartition("/")[0] + "/agensium"
    run_coroutine(ensure_database(database_url))
    run_coroutine(apply_migrations(database_url))
    return settings.model_copy(
        update={
            "database_url": database_url,
            "redis_url": valkey.url,
            "key_prefix": f"{settings.key_prefix}fault-{uuid.uuid4().hex[:6]}/",
            "worker_concurrency": 4,
            "agent_processes": 1,  # two CPUs in CI: more agent processes only cost start-up time
            "progress_min_interval_s": 0.2,
            "heartbeat_interval_s": 0.25,
            "stale_after_s": 4.0,
            "reaper_interval_s": 0.25,
            "reconcile_after_s": 1.0,
            "max_attempts": 3,
            "retry_backoff_s": 0.2,
            "retry_backoff_max_s": 1.0,
            "write_retry_s": 60.0,
            "drain_s": 5.0,
            "user_max_active_tasks": 100,  # every queued task has its job in Redis: an outage loses them all
            "db_pool_min": 1,
            "db_pool_max": 4,
        }
    )


def child_environment(settings: Settings) -> dict[str, str]:
    """The API's and workers' environment: `settings`, and the diagnostics tool for tasks that take a while."""
    return {**settings_environment(settings), "AGENSIUM_DIAGNOSTICS": "1"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fault_store(fault_settings: Settings) -> AsyncIterator[TaskStore]:
    store = await TaskStore.connect(fault_settings.database_url, 1, 4)
    yield store
    await store.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fault_storage(fault_settings: Settings, storage: Storage) -> AsyncIterator[Storage]:
    """The package's view of the object store (the session's `storage` created the bucket)."""
    async with Storage(fault_settings) as own:
        yield own
        await own.delete_prefix(fault_settings.key_prefix)


@dataclass
class FaultAccount:
    user_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fault_account(fault_store: TaskStore) -> FaultAccount:
    user_id, api_key = await fault_store.create_user("fault-admin", is_admin=True, credits=CREDITS)
    return FaultAccount(user_id, api_key)


@dataclass
class ApiProcess:
    url: str
    child: ChildProcess


@pytest.fixture(scope="module")
def api_process(fault_settings: Settings) -> Iterator[ApiProcess]:
    port = embedded.find_free_port()
    url = f"http://{embedded.LOCALHOST}:{port}"
    child = start_child(
        "api", ["api", "--host", embedded.LOCALHOST, "--port", str(port)], child_environment(fault_settings)
    )
    try:
        wait_for_healthz(url, [child], timeout_s=DEADLINE_S)
        yield ApiProcess(url, child)
    finally:
        child.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http(api_process: ApiProcess, fault_account: FaultAccount) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_process.url, headers=fault_account.headers, timeout=15) as client:
        yield client


@dataclass
class Workers:
    """Worker subprocesses a test starts; stopped (SIGTERM) at its end."""

    settings: Settings
    store: TaskStore
    children: list[ChildProcess] = field(default_factory=list)

    async def start(self, count: int, concurrency: int | None = None) -> list[ChildProcess]:
        """`count` more workers, once they are registered (their heartbeat and recovery loops run); `concurrency`:
        how many jobs each takes at once (default: the settings')."""
        environment = child_environment(self.settings)
        if concurrency is not None:
            environment["AGENSIUM_WORKER_CONCURRENCY"] = str(concurrency)
        started = [start_child(f"worker-{len(self.children) + i}", ["worker"], environment) for i in range(count)]
        self.children += started
        await wait_registered(self.store, started)
        return started

    def assert_alive(self) -> None:
        """No worker died on the way (an outage must not end a worker)."""
        assert [(c.name, c.process.poll()) for c in self.children if c.process.poll() is not None] == []

    def stop(self) -> None:
        for child in self.children:
            child.stop()


@pytest.fixture
def workers(fault_settings: Settings, fault_store: TaskStore) -> Iterator[Workers]:
    started = Workers(fault_settings, fault_store)
    yield started
    started.stop()


# --- helpers ----------------------------------------------------------------------------------


async def submit(http: httpx.AsyncClient, scenario: str, seconds: float = 0.0) -> str:
    """A diagnostics sleeper of `seconds` labelled with its scenario, submitted over HTTP with its input
    streamed through the API (tests.support.submit_over_http)."""
    body = {
        "tool_id": "diagnostics",
        "parameters": {"sleeper": {"seconds": seconds, "step_s": 0.1}},
        "labels": {"scenario": scenario},
    }
    return await submit_over_http(http, body, CSV)


async def wait_all_finished(
    store: TaskStore, task_ids: list[str], timeout_s: float = DEADLINE_S
) -> list[asyncpg.Record]:
    """The tasks' rows once every one is terminal; on timeout, the failure says where the others are."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = [await store.get_task(task_id) for task_id in task_ids]
        rows = [row for row in found if row is not None]
        assert len(rows) == len(task_ids), "a task vanished from the database"
        if all(row["status"] in lifecycle.TERMINAL for row in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            stuck = Counter(row["status"] for row in rows if row["status"] not in lifecycle.TERMINAL)
            raise AssertionError(f"after {timeout_s:.0f}s {dict(stuck)} of {len(task_ids)} tasks are not finished")
        await asyncio.sleep(0.1)


async def assert_outputs_exact(settings: Settings, storage: Storage, rows: list[asyncpg.Record]) -> None:
    """Every COMPLETED task's outputs prefix holds exactly the objects its `outputs` name: none missing,
    none twice, nothing left over from another run."""
    for row in rows:
        if row["status"] != "COMPLETED":
            continue
        prefix = lifecycle.outputs_prefix(settings, str(row["user_id"]), str(row["id"]))
        keys = [output["key"] for output in row["outputs"]]
        assert len(keys) == len(set(keys)), f"task {row['id']} lists an output twice: {keys}"
        stored = await stored_keys(storage, prefix)
        assert stored == sorted(keys), f"task {row['id']}: stored {stored}, outputs {sorted(keys)}"


async def status_events(store: TaskStore, task_id: str) -> list[dict[str, Any]]:
    return [event.payload for event in await store.task_events_after(task_id, 0) if event.type == "status"]


async def queued_job_ids(url: str, queue_name: str) -> set[str]:
    """The job ids in the arq queue (a sorted set)."""
    return {job_id.decode() for job_id in await redis_command(url, "ZRANGE", queue_name, 0, -1)}


async def redis_command(url: str, *command: Any) -> Any:
    """One command on a fresh connection (the servers restart under the tests: no pooled connection)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        return await client.execute_command(*command)
    finally:
        await client.aclose()
