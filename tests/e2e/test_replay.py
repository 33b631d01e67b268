"""A retried task's event stream, over HTTP with a real worker: a replay streams every attempt's events in
order and ends only at the task's latest `done`, a fresh connection to a retried task does not stop at the
old `done`, a client resuming after the first attempt's `done` waits across the retry, and one resuming after a
COMPLETED task's `done` gets 204 at once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from service.store import TaskStore
from tests.conftest import ApiServer
from tests.support import SseEvent, run_to_completion, sse_events

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def whole_stream(client: httpx.AsyncClient, url: str, last_event_id: int | None = None) -> list[SseEvent]:
    """Every event of a per-task stream, read until the server ends it (not at the first `done` seen)."""

    async def read() -> list[SseEvent]:
        return [event async for event in sse_events(client, url, last_event_id)]

    return await asyncio.wait_for(read(), 120)


async def test_a_retried_task_replays_every_attempt_to_its_latest_done(
    api: ApiServer, store: TaskStore, worker: None, csv_file: Path
) -> None:
    # Attempt 1 fails for want of credits; attempt 2, after a grant, completes.
    user_id, key = await store.create_user(f"retry-{uuid.uuid4().hex[:6]}", credits=5)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        failed = await run_to_completion(c, {"primary.csv": csv_file})
        assert failed["status"] == "FAILED", failed
        task_id = failed["task_id"]
        url = f"/api/v1/tasks/{task_id}/events"
        first = await whole_stream(c, url, last_event_id=0)
        assert [e.data["status"] for e in first if e.event == "done"] == ["FAILED"]

        # A client that saw the first attempt end, and resumes after its `done`, waits for what comes next.
        resumed = asyncio.create_task(whole_stream(c, url, last_event_id=first[-1].id))
        assert await store.grant_credits(user_id, 100_000) is not None
        r = await c.post(f"/api/v1/tasks/{task_id}/retry")
        assert r.status_code == 202 and r.json()["status"] == "QUEUED", r.text
        # A fresh connection while the retry is under way follows it; it never ends at the old done.
        fresh = await whole_stream(c, url)
        second = await resumed
        replay = await whole_stream(c, url, last_event_id=0)

    assert [e.data["status"] for e in fresh if e.event == "done"] == ["COMPLETED"] and fresh[-1].event == "done"
    assert second[-1].event == "done" and second[-1].data["status"] == "COMPLETED", second[-1]
    assert second[0].event == "status" and second[0].data["status"] == "QUEUED"
    # The replay: both attempts, in order, each event once, the old done in the middle, the latest at the end.
    assert [(e.id, e.event, e.data) for e in replay] == [(e.id, e.event, e.data) for e in first + second]
    ids = [e.id for e in replay]
    assert ids == sorted(set(ids))
    assert [e.data["status"] for e in replay if e.event == "done"] == ["FAILED", "COMPLETED"]
    assert replay[-1].data["attempts"] == 2


async def test_resuming_a_completed_task_after_its_done_answers_204_at_once(
    api: ApiServer, store: TaskStore, worker: None, csv_file: Path
) -> None:
    user_id, key = await store.create_user(f"resume-{uuid.uuid4().hex[:6]}", credits=100_000)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        task = await run_to_completion(c, {"primary.csv": csv_file})
        assert task["status"] == "COMPLETED", task
        url = f"/api/v1/tasks/{task['task_id']}/events"
        events = await whole_stream(c, url, last_event_id=0)
        done = events[-1]
        assert done.event == "done" and done.id is not None
        # The done itself, or any later id: nothing can follow a COMPLETED task (it cannot be retried), so the
        # stream does not open; 204 tells a browser's EventSource not to reconnect.
        for last in (done.id, done.id + 1, 10**15):
            r = await asyncio.wait_for(c.get(url, headers={"Last-Event-ID": str(last)}), 10)
            assert r.status_code == 204 and r.content == b"", (last, r.status_code, r.text)
        # One before the done: the done again, and the stream ends.
        again = await whole_stream(c, url, last_event_id=done.id - 1)
        assert [(e.id, e.event) for e in again] == [(done.id, "done")]
