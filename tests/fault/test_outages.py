"""Never lose a task (issue 4): Redis flushed or restarted, Redis down while users submit, PostgreSQL
restarted, all while the API and workers run as they do in production. Every task reaches its terminal
state on its own, and a COMPLETED task's stored outputs are exactly the ones it lists."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from service.config import Settings
from service.storage import Storage
from service.store import TaskStore
from tests.fault.conftest import (
    RestartableServer,
    Workers,
    assert_outputs_exact,
    queued_job_ids,
    redis_command,
    status_events,
    submit,
    wait_all_finished,
)
from tests.support import poll

pytestmark = pytest.mark.asyncio(loop_scope="session")

JOB_LOST = "its job was lost"
OUTAGE_S = 2.0


async def test_flushed_queue_every_task_runs_once(
    fault_settings: Settings,
    fault_store: TaskStore,
    fault_storage: Storage,
    http: httpx.AsyncClient,
    valkey: RestartableServer,
    workers: Workers,
) -> None:
    task_ids = [await submit(http, "flushall") for _ in range(50)]
    jobs = set()
    for task_id in task_ids:
        row = await fault_store.get_task(task_id)
        assert row is not None and row["status"] == "QUEUED"
        jobs.add(row["job_id"])
    assert jobs <= await queued_job_ids(valkey.url, fault_settings.arq_queue_name)
    assert await redis_command(valkey.url, "FLUSHALL")
    assert not await queued_job_ids(valkey.url, fault_settings.arq_queue_name)

    await workers.start(2)
    rows = await wait_all_finished(fault_store, task_ids)
    for row in rows:
        assert row["status"] == "COMPLETED", (row["id"], row["status"], row["error"])
        assert row["attempts"] == 1, (row["id"], row["attempts"])
        statuses = await status_events(fault_store, str(row["id"]))
        assert [s["status"] for s in statuses].count("PROCESSING") == 1, statuses
        # The job was enqueued again once, by one of the two racing reconcilers.
        assert sum(JOB_LOST in (s["message"] or "") for s in statuses) == 1, statuses
    await assert_outputs_exact(fault_settings, fault_storage, rows)


async def test_redis_restart_while_tasks_run(
    fault_settings: Settings,
    fault_store: TaskStore,
    fault_storage: Storage,
    http: httpx.AsyncClient,
    valkey: RestartableServer,
    workers: Workers,
) -> None:
    await workers.start(2)
    task_ids = [await submit(http, "redis-restart", seconds=1.0) for _ in range(8)]
    await poll(lambda: running(fault_store, task_ids, 2), "two tasks' agents to run")

    async def probe() -> None:
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503, not_ready.text
        checks = not_ready.json()["checks"]
        assert checks["redis"].startswith("down") and checks["database"] == "ok", checks
        for task_id in task_ids:  # status polling needs PostgreSQL only
            got = await http.get(f"/api/v1/tasks/{task_id}")
            assert got.status_code == 200, got.text
        listed = await http.get("/api/v1/tasks", params={"label": "scenario:redis-restart", "limit": 50})
        assert listed.status_code == 200, listed.text
        assert sorted(t["task_id"] for t in listed.json()["items"]) == sorted(task_ids)

    valkey.stop()
    try:
        await keep_probing(probe)
    finally:
        valkey.start()
    await poll(lambda: readiness(http, 200), "/readyz to report ready again", timeout_s=20)

    rows = await wait_all_finished(fault_store, task_ids)
    assert [(str(r["id"]), r["status"], r["error"]) for r in rows if r["status"] != "COMPLETED"] == []
    await assert_outputs_exact(fault_settings, fault_storage, rows)
    workers.assert_alive()


async def test_submissions_while_redis_is_down_run_once_it_returns(
    fault_settings: Settings,
    fault_store: TaskStore,
    fault_storage: Storage,
    http: httpx.AsyncClient,
    valkey: RestartableServer,
    workers: Workers,
) -> None:
    await workers.start(1)
    valkey.stop()
    try:
        task_id = await submit(http, "redis-down")  # create 201, upload 201, process 202 QUEUED
        got = await http.get(f"/api/v1/tasks/{task_id}")
        assert got.status_code == 200 and got.json()["status"] == "QUEUED", got.text
    finally:
        valkey.start()

    [row] = await wait_all_finished(fault_store, [task_id])
    assert row["status"] == "COMPLETED", row["error"]
    assert row["attempts"] == 1
    statuses = await status_events(fault_store, task_id)
    # The API's enqueue failed: a worker's reconciler found the task without a job and enqueued it.
    assert sum(JOB_LOST in (s["message"] or "") for s in statuses) == 1, statuses
    await assert_outputs_exact(fault_settings, fault_storage, [row])
    workers.assert_alive()


async def test_postgres_restart_while_tasks_run(
    fault_settings: Settings,
    fault_store: TaskStore,
    fault_storage: Storage,
    http: httpx.AsyncClient,
    postgres: RestartableServer,
    workers: Workers,
) -> None:
    # One job at a time each: with more slots than its one agent process, the worker that polls first can take all
    # four jobs and run them one after the other, while the other waits with none.
    await workers.start(2, concurrency=1)
    task_ids = [await submit(http, "postgres-restart", seconds=1.5) for _ in range(4)]
    await poll(lambda: running(fault_store, task_ids, 2), "two tasks' agents to run")
    create = {"tool_id": "diagnostics", "labels": {"scenario": "postgres-restart"}}

    async def probe() -> None:
        for method, url, body in [
            ("GET", f"/api/v1/tasks/{task_ids[0]}", None),
            ("GET", "/api/v1/tasks", None),
            ("POST", "/api/v1/tasks", create),
            ("GET", "/api/v1/me", None),
        ]:
            answer = await http.request(method, url, json=body)
            assert answer.status_code == 503, (method, url, answer.status_code, answer.text)
            assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE", answer.text
            assert "Retry-After" in answer.headers, (method, url, dict(answer.headers))
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("down"), ready.text
        # The WebSocket says so with its close code: 1013, try again later.
        ws_url = str(http.base_url).rstrip("/").replace("http://", "ws://") + "/api/v1/ws"
        key = {"Authorization": http.headers["authorization"]}
        with pytest.raises(ConnectionClosed) as closed:
            async with websockets.connect(ws_url, additional_headers=key) as ws:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
        assert closed.value.rcvd.reason.startswith("SERVICE_UNAVAILABLE"), closed.value.rcvd.reason

    postgres.stop()
    try:
        await keep_probing(probe)
    finally:
        postgres.start()
    await poll(lambda: readiness(http, 200), "/readyz to report ready again", timeout_s=20)
    for task_id in task_ids:
        got = await http.get(f"/api/v1/tasks/{task_id}")
        assert got.status_code == 200, got.text

    rows = await wait_all_finished(fault_store, task_ids)
    assert [(str(r["id"]), r["status"], r["error"]) for r in rows if r["status"] != "COMPLETED"] == []
    await assert_outputs_exact(fault_settings, fault_storage, rows)
    # Nothing was created during the outage and nothing is lost: this scenario's tasks are these.
    listed = await http.get("/api/v1/tasks", params={"label": "scenario:postgres-restart", "limit": 50})
    assert sorted(t["task_id"] for t in listed.json()["items"]) == sorted(task_ids)
    workers.assert_alive()


async def running(store: TaskStore, task_ids: list[str], at_least: int) -> bool:
    """At least `at_least` of the tasks have their agent running (claimed is not enough: a worker's agent
    process may still be starting)."""
    rows = [await store.get_task(task_id) for task_id in task_ids]
    return sum(row is not None and row["current_agent"] == "sleeper" for row in rows) >= at_least


async def keep_probing(probe: Callable[[], Awaitable[None]]) -> None:
    """Run `probe` against the API for OUTAGE_S, the length of the outage: long enough for running tasks
    to finish (and write their outcome) while the server is away."""
    deadline = asyncio.get_running_loop().time() + OUTAGE_S
    await probe()
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        await probe()


async def readiness(http: httpx.AsyncClient, status: int) -> dict[str, Any] | None:
    """/readyz's body when it answers `status`, None otherwise."""
    answer = await http.get("/readyz")
    return answer.json() if answer.status_code == status else None
