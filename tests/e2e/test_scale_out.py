"""Scale-out: two API servers and two workers sharing one PostgreSQL/Redis/S3 (one database and key prefix of
this module's own, so no other test's worker takes its jobs).

Events reach every API process through Redis: a stream opened on API A (the task's SSE stream, the user's SSE
stream and the user's WebSocket) carries every event of a task created, uploaded and processed through API B,
in order and once each. Two workers share one queue: tasks queued through API B are run by both, each exactly
once (one run, one `done`), none lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from service.config import Settings
from service.storage import Storage
from service.store import Event, TaskStore
from tests.conftest import Account, ApiServer, running_worker, serve_api
from tests.support import (
    SLEEPER_CSV,
    SseEvent,
    collect_until_done,
    create_task,
    sleeper,
    sse_events,
    upload_inputs,
)
from tests.worker.scheduling_support import private_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

TINY_PROFILE = {"tool_id": "profile-my-data", "agents": ["unified-profiler"], "parameters": {"cache": False}}
SLOTS_PER_WORKER = 2
SHARED_TASKS = 3 * SLOTS_PER_WORKER  # more than one worker's slots: the second worker's poll finds some waiting
HOLD_S = 0.5  # a sleeper keeps its slot this long, so that one worker cannot drain the queue alone


@pytest.fixture(scope="module")
def shared_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    work_dir = tmp_path_factory.mktemp("scale-out-work")
    updates = {"worker_concurrency": SLOTS_PER_WORKER, "agent_processes": 1, "work_dir": work_dir}
    with private_settings(settings, "scaleout", **updates) as private:
        yield private


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_store(shared_settings: Settings, storage: Storage) -> AsyncIterator[TaskStore]:
    store = await TaskStore.connect(shared_settings.database_url, 1, 4)
    yield store
    await store.close()
    await storage.delete_prefix(shared_settings.key_prefix)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api_a(shared_settings: Settings, shared_store: TaskStore) -> AsyncIterator[ApiServer]:
    async with serve_api(shared_settings) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api_b(shared_settings: Settings, shared_store: TaskStore) -> AsyncIterator[ApiServer]:
    async with serve_api(shared_settings) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def workers(shared_settings: Settings, shared_store: TaskStore) -> AsyncIterator[list[str]]:
    """Two arq workers on the module's queue, each with its own agent processes; yields their worker ids."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_worker(shared_settings)) for _ in range(2)]


@pytest_asyncio.fixture(loop_scope="session")
async def shared_account(shared_store: TaskStore) -> Account:
    user_id, key = await shared_store.create_user(f"scale-{uuid.uuid4().hex[:6]}", credits=100_000)
    return Account(user_id, key)


@contextlib.asynccontextmanager
async def client_of(api: ApiServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=30) as client:
        yield client


async def user_stream_until_done(
    client: httpx.AsyncClient, connected: asyncio.Event, until: int = 1, timeout_s: float = 60
) -> list[SseEvent]:
    """The user's stream (`GET /api/v1/events`, from now on) until `until` `done` events have come."""
    events: list[SseEvent] = []

    async def follow() -> None:
        async with contextlib.aclosing(sse_events(client, "/api/v1/events", connected=connected)) as stream:
            async for event in stream:
                events.append(event)
                if sum(e.event == "done" for e in events) == until:
                    return

    await asyncio.wait_for(follow(), timeout_s)
    return events


async def websocket_until_done(url: str, token: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    """The user's WebSocket frames from the start of its log until the first `done` (the test's user is new and
    has one task, so the frames come live, and a frame sent before the subscription took is replayed)."""
    frames: list[dict[str, Any]] = []
    ws_url = url.replace("http://", "ws://") + f"/api/v1/ws?token={token}&last_event_id=0"
    async with asyncio.timeout(timeout_s), websockets.connect(ws_url) as ws:
        while not frames or frames[-1]["event"] != "done":
            frames.append(json.loads(await ws.recv()))
    return frames


def identities(events: list[SseEvent]) -> list[tuple[int | None, str, str]]:
    return [(e.id, e.event, json.dumps(e.data, sort_keys=True)) for e in events]


def logged(events: list[Event]) -> list[tuple[int | None, str, str]]:
    return [(e.id, e.type, json.dumps(e.payload, sort_keys=True)) for e in events]


async def test_a_stream_on_one_api_carries_every_event_of_a_task_run_through_another(
    api_a: ApiServer,
    api_b: ApiServer,
    workers: list[str],
    shared_store: TaskStore,
    shared_account: Account,
    csv_file: Path,
) -> None:
    async with client_of(api_a, shared_account) as on_a, client_of(api_b, shared_account) as on_b:
        token = (await on_a.post("/api/v1/events/token")).json()["token"]
        ws = asyncio.create_task(websocket_until_done(api_a.url, token))
        user_live = asyncio.Event()
        user = asyncio.create_task(user_stream_until_done(on_a, user_live))
        await asyncio.wait_for(user_live.wait(), 30)
        task = await create_task(on_b, **TINY_PROFILE)
        tid = task["task_id"]
        await upload_inputs(on_b, tid, {"primary.csv": csv_file})
        task_live = asyncio.Event()
        task_stream = asyncio.create_task(collect_until_done(on_a, f"/api/v1/tasks/{tid}/events", connected=task_live))
        await asyncio.wait_for(task_live.wait(), 30)
        queued = await on_b.post(f"/api/v1/tasks/{tid}/process")
        assert queued.status_code == 202, queued.text
        on_task_stream, on_user_stream, on_ws = await asyncio.gather(task_stream, user, ws)

    log = await shared_store.task_events_after(tid, 0)
    assert log[-1].type == "done" and log[-1].payload["status"] == "COMPLETED", log[-1]
    statuses = [e.payload["status"] for e in log if e.type == "status"]
    assert {"QUEUED", "PROCESSING"} <= set(statuses), statuses
    assert any(e.type == "progress" for e in log), "a progress event at least"

    # The task stream: its snapshot, then every logged event after it, in order, once.
    snapshot, *changes = on_task_stream
    assert snapshot.event == "status" and snapshot.data["status"] == "UPLOADING"
    assert identities(changes) == logged([e for e in log if e.id > (snapshot.id or 0)])
    assert {"QUEUED", "PROCESSING"} <= {e.data["status"] for e in changes if e.event == "status"}

    # The user stream (opened before the task existed) and the WebSocket: the whole log of the task.
    assert identities([e for e in on_user_stream if e.data["task_id"] == tid]) == logged(log)
    assert [(f["id"], f["event"], json.dumps(f["data"], sort_keys=True)) for f in on_ws] == logged(log)


async def test_two_workers_share_the_queue_and_run_each_task_once(
    api_a: ApiServer, api_b: ApiServer, workers: list[str], shared_store: TaskStore, shared_account: Account
) -> None:
    body = {"tool_id": "diagnostics", "parameters": {**sleeper(HOLD_S), "cache": False}}
    async with client_of(api_a, shared_account) as on_a, client_of(api_b, shared_account) as on_b:
        ready = [str((await create_task(on_b, **body))["task_id"]) for _ in range(SHARED_TASKS)]
        for tid in ready:
            put = await on_b.put(
                f"/api/v1/tasks/{tid}/inputs/primary.csv", content=SLEEPER_CSV, headers={"Content-Type": "text/csv"}
            )
            assert put.status_code == 201, put.text
        live = asyncio.Event()
        stream = asyncio.create_task(user_stream_until_done(on_a, live, until=SHARED_TASKS))
        await asyncio.wait_for(live.wait(), 30)
        answers = await asyncio.gather(*(on_b.post(f"/api/v1/tasks/{tid}/process") for tid in ready))
        assert [a.status_code for a in answers] == [202] * SHARED_TASKS, [a.text for a in answers]
        events = await stream

    dones = [e.data["task_id"] for e in events if e.event == "done"]
    assert sorted(dones) == sorted(ready), "one done per task on the stream of API A, none missing"
    runs = [e.data["task_id"] for e in events if e.event == "status" and e.data["status"] == "PROCESSING"]
    assert sorted(runs) == sorted(ready), "each task started once"

    tasks = [await shared_store.get_task(tid) for tid in ready]
    assert [t["status"] for t in tasks if t is not None] == ["COMPLETED"] * SHARED_TASKS
    assert [t["attempts"] for t in tasks if t is not None] == [1] * SHARED_TASKS, "none run twice"
    ran_on = {str(t["worker_id"]) for t in tasks if t is not None}
    assert ran_on == set(workers), f"both workers ran tasks: {ran_on} of {workers}"
