"""The end of a run's dispatch (migration 014): `dispatch_waiting` gives jobs to the same tasks as migration 013's
`dispatch_user` (which read every waiting task of the user), and a completion with `dispatch` releases the user's
event lock and dispatches in one statement (service/store.py `transition`)."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.store import Event, TaskStore
from tests.support import task_spec

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.usefixtures("no_background_recovery")]

HEAD_START_S = {"low": 0.0, "normal": 300.0, "high": 3600.0, "urgent": 86400.0}
PRIORITIES = ["low", "normal", "high", "urgent"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, *events: Event) -> None:
        self.events.extend(events)


async def _picked(store: TaskStore, function: str, user_id: str, cap: int) -> list[str]:
    """The tasks `function` gives jobs to, in the order it returns them, undone after."""
    async with store.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            rows = await conn.fetch(
                f"SELECT task_id FROM {function}($1, $2, $3)", uuid.UUID(user_id), cap, HEAD_START_S
            )
        finally:
            await tx.rollback()
    return [str(r["task_id"]) for r in rows]


async def test_dispatch_waiting_picks_what_dispatch_user_picked(store: TaskStore) -> None:
    user_id, _ = await store.create_user("dispatch-by-index")
    draw = random.Random(14)
    waiting: list[tuple[float, str, str]] = []  # (head-start order, priority, task id)
    now = datetime.now(UTC)
    for index in range(60):
        row, _ = await store.insert_task(task_spec(user_id))
        priority = draw.choice(PRIORITIES)
        age_s = draw.choice([0.0, 10.0, 299.0, 301.0, 3500.0, 4000.0, 90000.0]) + index / 1000
        await store.pool.execute(
            "UPDATE tasks SET status = 'QUEUED', priority = $2, queued_at = $3 WHERE id = $1",
            row["id"],
            priority,
            now - timedelta(seconds=age_s),
        )
        waiting.append((-age_s - HEAD_START_S[priority], priority, str(row["id"])))
    active, _ = await store.insert_task(task_spec(user_id))  # one task of the user runs: the cap counts it
    await store.pool.execute("UPDATE tasks SET status = 'PROCESSING' WHERE id = $1", active["id"])
    expected = [task_id for _, _, task_id in sorted(waiting)]

    for cap in (0, 1, 2, 5, 30, 100):
        new = await _picked(store, "dispatch_waiting", user_id, cap)
        old = await _picked(store, "dispatch_user", user_id, cap)
        room = max(0, min(cap - 1, len(expected)))
        assert sorted(new) == sorted(old) == sorted(expected[:room]), f"cap {cap}"


async def test_a_completion_releases_the_event_lock_and_dispatches_in_one_statement(store: TaskStore) -> None:
    user_id, _ = await store.create_user("complete-and-dispatch")
    running, _ = await store.insert_task(task_spec(user_id))
    waiting, _ = await store.insert_task(task_spec(user_id, priority="high"))
    for row in (running, waiting):
        await store.pool.execute("UPDATE tasks SET status = 'QUEUED', queued_at = now() WHERE id = $1", row["id"])
    [(first, job_id, _)] = await store.dispatch_user(user_id, 1, HEAD_START_S)
    assert first == str(waiting["id"]), "the high one goes first"
    rec = Recorder()
    assert (await store.transition("claim_job", first, ["w1", job_id], rec)).row is not None

    done = await store.transition(
        "complete_task", first, [[], {"status": "success"}, "Completed", job_id, None], rec, dispatch=(1, HEAD_START_S)
    )

    assert done.row is not None and done.row["status"] == "COMPLETED"
    [(picked, picked_job, priority)] = done.dispatched or []
    assert (picked, priority) == (str(running["id"]), "normal")
    assert await store.pool.fetchval("SELECT job_id FROM tasks WHERE id = $1", running["id"]) == picked_job
    assert [e.type for e in rec.events] == ["status", "status", "done"]
    assert [e.payload["status"] for e in rec.events] == ["PROCESSING", "COMPLETED", "COMPLETED"]
    async with store.pool.acquire() as conn:  # the user's event lock is free again
        key = "SELECT hashtextextended($1::uuid::text, 0)"
        assert await conn.fetchval(f"SELECT pg_try_advisory_lock(({key}))", uuid.UUID(user_id))
        assert await conn.fetchval(f"SELECT pg_advisory_unlock(({key}))", uuid.UUID(user_id))

    refused = await store.transition(
        "complete_task", first, [[], {}, "Completed", job_id, None], rec, dispatch=(1, HEAD_START_S)
    )
    assert refused.row is None and refused.current_status == "COMPLETED" and refused.dispatched is None
