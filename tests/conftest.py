"""Fixtures that start and share the real services of a test run.

One run = one fresh PostgreSQL database, one key prefix for Redis and the object store, one
SeaweedFS: the configured or locally reachable PostgreSQL/Redis are used when present, embedded
servers from pip packages otherwise (service.dev.resolve_services).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from arq.worker import Worker

from service.config import Settings
from service.dev import ServiceStack, resolve_services
from service.storage import Storage
from service.store import TaskStore, apply_migrations
from tests.support import poll

RUN_ID = uuid.uuid4().hex[:8]
NO_PREFERRED_PORTS = {"postgres": 0, "valkey": 0, "seaweedfs": 0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def service_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceStack]:
    data_dir = tmp_path_factory.mktemp("services")
    # AGENSIUM_TEST_EMBEDDED=1 runs the suite as on a fresh machine, on embedded servers only.
    force_embedded = os.environ.get("AGENSIUM_TEST_EMBEDDED") == "1"
    stack = resolve_services(Settings(), data_dir, force_embedded, ephemeral=True, preferred_ports=NO_PREFERRED_PORTS)
    try:
        yield stack
    finally:
        stack.close()


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


@contextlib.contextmanager
def private_database(settings: Settings, name: str) -> Iterator[str]:
    """A migrated database of this run named `name`, dropped afterwards; yields its URL."""
    database = f"agensium_test_{RUN_ID}" + (f"_{name}" if name else "")
    admin_url = _with_database(settings.database_url, "postgres")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    url = _with_database(settings.database_url, database)
    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        asyncio.run(apply_migrations(url))
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(service_stack: ServiceStack) -> Iterator[Settings]:
    base = service_stack.settings
    with private_database(base, "") as url:
        yield base.model_copy(
            update={
                "database_url": url,
                "key_prefix": f"test-{RUN_ID}/",
                "progress_min_interval_s": 0.05,
                "agent_processes": 2,
                "worker_concurrency": 4,
                "sse_ping_s": 1.0,
                # The API refuses to start without one (service/api/tokens.py): each run has its own.
                "secret_key": secrets.token_urlsafe(32),
            }
        )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    async with Storage(settings) as storage:
        await storage.ensure_bucket()
        yield storage
        await storage.delete_prefix(settings.key_prefix)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def store(settings: Settings) -> AsyncIterator[TaskStore]:
    store = await TaskStore.connect(settings.database_url, 1, 10)
    yield store
    await store.close()


@dataclass
class ApiServer:
    url: str
    settings: Settings
    server: uvicorn.Server | None = field(default=None, repr=False)


@contextlib.asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[ApiServer]:
    """The real API on a real port, served by uvicorn in the running loop."""
    from service.api.app import KEEP_ALIVE_S, create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 30
    while not server.started:
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("API did not start")
        await asyncio.sleep(0.02)
    try:
        yield ApiServer(f"http://127.0.0.1:{port}", settings, server)
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def api(settings: Settings, storage: Storage) -> AsyncIterator[ApiServer]:
    async with serve_api(settings) as server:
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def worker(settings: Settings, storage: Storage) -> AsyncIterator[None]:
    """A real arq worker with its agent process pool, in the test loop. It runs the hidden diagnostics tool
    too, for the tests whose API offers it (tests/browser); the session's API does not."""
    async with running_worker(settings.model_copy(update={"diagnostics": True})):
        yield


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[str]:
    """A real arq worker in the test loop; yields its worker id once its start-up (database, store, agent
    processes) is done, and lets the jobs in flight finish their arq bookkeeping when it stops (our task states
    are final before arq's are)."""
    from worker.settings import build_worker

    w: Worker = build_worker(settings, handle_signals=False)
    task = asyncio.create_task(w.async_run())

    async def started() -> str | None:
        if task.done():
            task.result()  # a failed start-up fails the test with its own error
        return w.ctx.get("worker_id")

    try:
        yield await poll(started, "a worker to start")
    finally:
        in_flight = [job for job in w.tasks.values() if not job.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=30)
        with contextlib.suppress(asyncio.CancelledError):
            await w.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


@dataclass
class Account:
    user_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest_asyncio.fixture(loop_scope="session")
async def account(store: TaskStore) -> Account:
    user_id, key = await store.create_user(f"user-{uuid.uuid4().hex[:6]}", credits=100_000)
    return Account(user_id, key)


@pytest_asyncio.fixture(loop_scope="session")
async def other_account(store: TaskStore) -> Account:
    user_id, key = await store.create_user(f"other-{uuid.uuid4().hex[:6]}", credits=100_000)
    return Account(user_id, key)


@pytest_asyncio.fixture(loop_scope="session")
async def client(api: ApiServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=30) as c:
        yield c


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "primary.csv"
    path.write_text("id,name,amount\n1,alice,10.5\n2,bob,\n3,carol,7.25\n4,dave,3\n")
    return path


@pytest.fixture
def no_background_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's worker (`worker` above, running in this loop once a test has started it) runs its recovery pass
    every few seconds: it dispatches every user's waiting tasks and re-enqueues lost jobs. A test that queues tasks in
    the store by hand and dispatches them itself turns it off for its own duration."""
    import worker.recovery

    async def skipped(*_: object) -> None:
        return None

    monkeypatch.setattr(worker.recovery, "_recover", skipped)
