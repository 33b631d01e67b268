"""What the scheduling and stop tests share: a private database and key prefix (so their own arq
queue), worker subprocesses running the hidden `diagnostics` tool, and waits on task states (the
submit, poll and wait_registered helpers are tests.support's)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import psutil
from arq.connections import ArqRedis

from service import lifecycle
from service.config import Settings
from service.dev import ChildProcess, settings_environment, start_child
from service.errors import ServiceError
from service.events import EventPublisher
from service.lifecycle import Core
from service.queueing import make_enqueue
from service.storage import Storage
from service.store import TaskStore
from tests.conftest import private_database
from tests.support import DEADLINE_S, poll, stored_keys, submit

CREDITS = 1_000_000


@contextmanager
def private_settings(settings: Settings, name: str, **updates: Any) -> Iterator[Settings]:
    """`settings` on a database and key prefix of their own, with the diagnostics tool enabled (task creation
    checks it; the workers get it through worker_environment)."""
    with private_database(settings, name) as url:
        yield settings.model_copy(
            update={"database_url": url, "key_prefix": f"{settings.key_prefix}{name}/", "diagnostics": True, **updates}
        )


@asynccontextmanager
async def open_core(settings: Settings, redis: ArqRedis) -> AsyncIterator[Core]:
    """The API's Core: cancels reach the workers at once through the control channel."""
    store = await TaskStore.connect(settings.database_url, 1, 8)

    async def control(message: str) -> None:
        await redis.publish(settings.control_channel, message)

    try:
        async with Storage(settings) as storage:
            publish = EventPublisher(redis, settings.events_channel_prefix + "all")
            yield Core(settings, store, storage, publish, make_enqueue(redis, settings, swallow_errors=False), control)
    finally:
        await store.close()


def with_settings(core: Core, redis: ArqRedis, **updates: Any) -> Core:
    """`core` with other scheduling settings (the user cap, head starts) for this process's dispatches."""
    settings = core.settings.model_copy(update=updates)
    return Core(
        settings,
        core.store,
        core.storage,
        core.publish,
        make_enqueue(redis, settings, swallow_errors=False),
        core.control,
    )


def worker_environment(settings: Settings) -> dict[str, str]:
    return {**settings_environment(settings), "AGENSIUM_DIAGNOSTICS": "1"}


def start_worker(settings: Settings, started: list[ChildProcess]) -> ChildProcess:
    child = start_child(f"worker-{len(started)}", ["worker"], worker_environment(settings))
    started.append(child)
    return child


async def new_user(core: Core, name: str = "sched") -> str:
    user_id, _ = await core.store.create_user(f"{name}-{uuid.uuid4().hex[:6]}", credits=CREDITS)
    return user_id


async def submit_many(core: Core, user_ids: list[str], concurrency: int = 8, **options: Any) -> list[str]:
    """One task per entry of `user_ids`, `concurrency` at a time; ids in the order given."""
    ids: list[str] = []
    for start in range(0, len(user_ids), concurrency):
        batch = user_ids[start : start + concurrency]
        ids += await asyncio.gather(*(submit(core, user_id, **options) for user_id in batch))
    return ids


async def get_task(core: Core, task_id: str) -> asyncpg.Record:
    task = await core.store.get_task(task_id)
    assert task is not None, task_id
    return task


async def runs_since_queued(core: Core, task_id: str) -> int:
    """The runs the attempt limit counts: those since the user last queued the task."""
    return int(
        await core.store.pool.fetchval("SELECT attempts - attempt_base FROM tasks WHERE id = $1", uuid.UUID(task_id))
    )


async def wait_status(
    core: Core, task_id: str, statuses: Sequence[str], timeout_s: float = DEADLINE_S
) -> asyncpg.Record:
    async def reached() -> asyncpg.Record | None:
        task = await get_task(core, task_id)
        return task if task["status"] in statuses else None

    return await poll(reached, f"task {task_id} to be {'/'.join(statuses)}", timeout_s)


async def wait_finished(core: Core, task_ids: list[str], timeout_s: float = DEADLINE_S) -> list[asyncpg.Record]:
    async def finished() -> list[asyncpg.Record] | None:
        tasks = [await get_task(core, t) for t in task_ids]
        return tasks if all(t["status"] in lifecycle.TERMINAL for t in tasks) else None

    return await poll(finished, f"{len(task_ids)} tasks to finish", timeout_s)


async def cancel(core: Core, tasks: list[asyncpg.Record], concurrency: int = 8) -> None:
    """Cancel `tasks` (those that ended meanwhile stay as they are)."""

    async def one(task: asyncpg.Record) -> None:
        try:
            await lifecycle.cancel_task(core, str(task["user_id"]), str(task["id"]))
        except ServiceError as exc:
            assert exc.code == "INVALID_STATE", exc

    for start in range(0, len(tasks), concurrency):
        await asyncio.gather(*(one(t) for t in tasks[start : start + concurrency]))


async def cancel_waiting(core: Core, task_ids: list[str]) -> None:
    """Cancel those of `task_ids` that have not started: cancelling a QUEUED task is one UPDATE."""
    await cancel(core, [t for t in [await get_task(core, t) for t in task_ids] if t["status"] == "QUEUED"])


async def cancel_unfinished(core: Core) -> None:
    """Cancel every task of the private database still under way: what a test leaves does not hold up the next."""
    await cancel(
        core,
        await core.store.pool.fetch(
            "SELECT id, user_id FROM tasks WHERE status::text <> ALL($1::text[])", [str(s) for s in lifecycle.TERMINAL]
        ),
    )


async def status_events(core: Core, task_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in await core.store.task_events_after(task_id, 0) if e.type == "status"]


async def assert_outputs_stored(core: Core, tasks: list[asyncpg.Record], concurrency: int = 16) -> None:
    """The objects under each task's outputs prefix are exactly its recorded outputs (none when it has none)."""

    async def one(task: asyncpg.Record) -> None:
        prefix = lifecycle.outputs_prefix(core.settings, str(task["user_id"]), str(task["id"]))
        stored = await stored_keys(core.storage, prefix)
        assert stored == sorted(o["key"] for o in task["outputs"] or []), (str(task["id"]), task["status"], stored)

    for start in range(0, len(tasks), concurrency):
        await asyncio.gather(*(one(t) for t in tasks[start : start + concurrency]))


def agent_pids(worker: ChildProcess) -> set[int]:
    """The worker's live agent processes (multiprocessing spawn children)."""
    pids = set()
    for child in psutil.Process(worker.process.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return pids


class FlakyProxy:
    """A TCP proxy to `target` ("host:port") that can be taken down: while down it closes each connection
    as it comes, and going down closes the open ones (what an object store outage looks like to a client)."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.up = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> FlakyProxy:
        self._server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def set_up(self, up: bool) -> None:
        self.up = up
        if not up:
            for writer in list(self._writers):
                writer.close()

    async def close(self) -> None:
        self.set_up(False)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, target_writer}
        try:
            await asyncio.gather(self._pipe(reader, target_writer), self._pipe(target_reader, writer))
        finally:
            self._writers -= {writer, target_writer}
            writer.close()
            target_writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
