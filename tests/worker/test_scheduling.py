"""Scheduling with a real worker process: an urgent task jumps the queue, a waiting low task ages past
newer normal ones, one user's backlog does not hold another user back, and a cancelled QUEUED task
never starts and frees its user's slot.

One worker with two slots serves the module, on its own database and arq queue. Slots are held busy
by long sleepers ("blockers") while a backlog builds, then freed by cancelling the blockers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from service import lifecycle
from service.config import Settings
from service.dev import ChildProcess
from service.lifecycle import Core
from service.storage import Storage
from tests.support import sleeper, submit, wait_registered
from tests.worker.scheduling_support import (
    assert_outputs_stored,
    cancel_unfinished,
    cancel_waiting,
    get_task,
    new_user,
    open_core,
    private_settings,
    start_worker,
    status_events,
    submit_many,
    wait_finished,
    wait_status,
    with_settings,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

HEAD_START_S = {"low": 0.0, "normal": 1.0, "high": 1800.0, "urgent": 86400.0}
BLOCKER = sleeper(60.0)


@pytest.fixture(scope="module")
def scheduling_settings(settings: Settings) -> Iterator[Settings]:
    with private_settings(
        settings,
        "scheduling",
        worker_concurrency=2,
        agent_processes=2,
        user_max_active_tasks=2,
        priority_head_start_s=HEAD_START_S,
    ) as private:
        yield private


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(scheduling_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(scheduling_settings.redis_url))
    await pool.delete(scheduling_settings.arq_queue_name)
    yield pool
    await pool.delete(scheduling_settings.arq_queue_name)
    await pool.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(scheduling_settings: Settings, storage: Storage, redis: ArqRedis) -> AsyncIterator[Core]:
    async with open_core(scheduling_settings, redis) as opened:
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker(core: Core) -> AsyncIterator[ChildProcess]:
    started: list[ChildProcess] = []
    try:
        child = start_worker(core.settings, started)
        await wait_registered(core.store, started)
        yield child
    finally:
        for child in started:
            await asyncio.to_thread(child.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def idle(core: Core, worker: ChildProcess) -> AsyncIterator[ChildProcess]:
    """The module's worker; what a test leaves under way is cancelled after it."""
    yield worker
    await cancel_unfinished(core)


async def hold_slots(core: Core) -> tuple[str, list[str]]:
    """Both worker slots busy with long sleepers of a user of their own: (user id, task ids)."""
    user_id = await new_user(core, "blocker")
    blockers = [await submit(core, user_id, parameters=BLOCKER) for _ in range(2)]
    for task_id in blockers:
        await wait_status(core, task_id, ("PROCESSING",))
    return user_id, blockers


async def test_an_urgent_task_starts_before_a_normal_backlog(core: Core, idle: ChildProcess) -> None:
    blocker_user, blockers = await hold_slots(core)
    users = [await new_user(core) for _ in range(50)]
    normals = await submit_many(core, users * 2)  # two each: all within the user cap, so all in Redis
    for task in [await get_task(core, t) for t in normals]:
        assert task["status"] == "QUEUED" and task["job_id"] is not None
    urgent = await submit(core, await new_user(core), priority="urgent")

    # One slot frees: the urgent task, queued last, is the next to start.
    await lifecycle.cancel_task(core, blocker_user, blockers[0])
    await wait_status(core, urgent, ("PROCESSING", "COMPLETED"))
    await lifecycle.cancel_task(core, blocker_user, blockers[1])
    done = await wait_status(core, urgent, ("COMPLETED",))
    await cancel_waiting(core, normals)
    finished = await wait_finished(core, normals)

    started = [t for t in finished if t["started_at"] is not None]
    assert all(t["queued_at"] < done["queued_at"] for t in finished)
    assert all(done["started_at"] < t["started_at"] for t in started), [t["started_at"] for t in started]
    assert all(t["status"] in ("COMPLETED", "CANCELLED") for t in finished), [t["error"] for t in finished]
    await assert_outputs_stored(core, [done, *started])  # a task that never started stored nothing


async def test_a_waiting_low_task_ages_past_newer_normal_tasks(core: Core, redis: ArqRedis, idle: ChildProcess) -> None:
    """A normal task has a head start of 1 s over a low one: it goes first when queued less than 1 s after
    it, later otherwise, so a steady stream of normal tasks never starves a low task."""
    blocker_user, blockers = await hold_slots(core)
    stream = with_settings(core, redis, user_max_active_tasks=10_000)  # each task straight to the Redis queue
    streamer = await new_user(core, "stream")
    low_user = await new_user(core, "low")
    loop = asyncio.get_running_loop()
    start, normals, low = loop.time(), [], ""
    while not low or (await get_task(core, low))["started_at"] is None:
        assert loop.time() < start + 60, "the low task never started"
        normals.append(await submit(stream, streamer))
        if len(normals) == 3:
            low = await submit(stream, low_user, priority="low")
        if blockers and loop.time() > start + 2.0:  # a backlog is waiting: free the slots
            for task_id in blockers:
                await lifecycle.cancel_task(core, blocker_user, task_id)
            blockers = []
        await asyncio.sleep(0.1)  # a steady stream of some 7 tasks a second, more than two slots run
    done = await wait_status(core, low, ("COMPLETED",))
    await cancel_waiting(core, normals)
    finished = await wait_finished(core, normals)

    assert all(t["status"] in ("COMPLETED", "CANCELLED") for t in finished), [t["error"] for t in finished]
    later = [t for t in finished if (t["queued_at"] - done["queued_at"]).total_seconds() > 0]
    ahead = [t for t in later if t["started_at"] is not None and t["started_at"] < done["started_at"]]
    # Normal tasks queued after it within their head start went first (a FIFO queue would run the low task first)...
    assert ahead, "no normal task queued after the low one started before it"
    # ...but none queued more than the head start after it.
    late = [(t["queued_at"] - done["queued_at"]).total_seconds() for t in ahead]
    assert max(late) < HEAD_START_S["normal"] + 0.1, late
    assert any((t["queued_at"] - done["queued_at"]).total_seconds() > 1.5 for t in later), "the stream stopped early"
    await assert_outputs_stored(core, [done, *(t for t in finished if t["started_at"] is not None)])


async def test_one_users_backlog_does_not_hold_back_another_user(core: Core, idle: ChildProcess) -> None:
    """Only `user_max_active_tasks` (2) of a user's tasks are in the Redis queue or running; the rest wait in
    PostgreSQL, so another user's task is next once a slot frees."""
    backlog_user, other_user = await new_user(core, "a"), await new_user(core, "b")
    blocker_user, blockers = await hold_slots(core)  # the CPUs go to building the backlog
    backlog = await submit_many(core, [backlog_user] * 500)
    for task_id in blockers:
        await lifecycle.cancel_task(core, blocker_user, task_id)
    await wait_status(core, backlog[2], ("COMPLETED",))  # the backlog is running, two at a time
    other = await submit(core, other_user)
    done = await wait_status(core, other, ("COMPLETED",))
    await cancel_waiting(core, backlog)
    finished = await wait_finished(core, backlog)

    started = [t for t in finished if t["started_at"] is not None]
    between = [t for t in started if done["queued_at"] < t["started_at"] < done["started_at"]]
    assert len(between) <= 2, [t["started_at"] for t in between]
    after = [t for t in finished if t["started_at"] is None or t["started_at"] > done["started_at"]]
    assert len(after) > 400, "the backlog was not waiting when the other user's task came: nothing was shown"
    assert all(t["status"] in ("COMPLETED", "CANCELLED") for t in finished), [t["error"] for t in finished]
    await assert_outputs_stored(core, [done, *started])


async def test_a_cancelled_queued_task_never_starts_and_frees_its_slot(
    core: Core, redis: ArqRedis, idle: ChildProcess
) -> None:
    blocker_user, blockers = await hold_slots(core)
    user_id = await new_user(core)
    first, second, third = [await submit(core, user_id) for _ in range(3)]
    queued = [await get_task(core, t) for t in (first, second, third)]
    # The user's cap is 2: the first two wait in the Redis queue, the third in PostgreSQL.
    assert [t["job_id"] is not None for t in queued] == [True, True, False]

    await lifecycle.cancel_task(core, user_id, first)
    moved = await get_task(core, third)
    assert moved["status"] == "QUEUED" and moved["job_id"] is not None  # took the freed place at once
    for task_id in blockers:
        await lifecycle.cancel_task(core, blocker_user, task_id)
    done = await wait_finished(core, [second, third])

    assert [t["status"] for t in done] == ["COMPLETED", "COMPLETED"], [t["error"] for t in done]
    # The cancelled task's job came up before theirs and claimed nothing.
    assert await redis.zscore(core.settings.arq_queue_name, queued[0]["job_id"]) is None
    cancelled = await get_task(core, first)
    assert cancelled["status"] == "CANCELLED" and cancelled["started_at"] is None and cancelled["attempts"] == 0
    assert [s["status"] for s in await status_events(core, first)] == ["UPLOADING", "QUEUED", "CANCELLED"]
    await assert_outputs_stored(core, [cancelled, *done])
