"""Recovery with real processes and servers: a SIGKILLed worker's task runs again elsewhere, tasks
whose arq jobs vanish from Redis are enqueued again, and racing reapers/reconcilers act once.

These tests run in their own database and key prefix (so their own arq queue): the session's
in-loop worker neither takes their jobs nor reaps their tasks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl
import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix

from agents import registry
from service import lifecycle
from service.config import Settings
from service.dev import ChildProcess, settings_environment, start_child
from service.events import EventPublisher
from service.lifecycle import Core
from service.queueing import make_enqueue
from service.storage import Storage
from service.store import TaskStore
from tests.conftest import private_database
from tests.support import poll, stored_keys, submit, wait_registered
from worker import recovery

pytestmark = pytest.mark.asyncio(loop_scope="session")

CREDITS = 100_000


@pytest.fixture(scope="module")
def recovery_settings(settings: Settings) -> Iterator[Settings]:
    """A database and key prefix of their own, with intervals short enough for tests."""
    with private_database(settings, "recovery") as url:
        yield settings.model_copy(
            update={
                "database_url": url,
                "key_prefix": f"{settings.key_prefix}recovery/",
                "worker_concurrency": 2,
                "agent_processes": 1,
                # 16 missed beats before a task counts as lost: worker event loops stall for a second or
                # more on a 2-CPU machine while agent processes import Polars and SciPy.
                "heartbeat_interval_s": 0.25,
                "stale_after_s": 4.0,
                "reaper_interval_s": 0.25,
                "reconcile_after_s": 1.0,
                "max_attempts": 3,
                "user_max_active_tasks": 100,  # every task reaches Redis: these tests are about losing jobs there
            }
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(recovery_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(recovery_settings.redis_url))
    yield pool
    await pool.delete(recovery_settings.arq_queue_name)
    await pool.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(recovery_settings: Settings, storage: Storage, redis: ArqRedis) -> AsyncIterator[Core]:
    settings = recovery_settings
    store = await TaskStore.connect(settings.database_url, 1, 8)

    enqueue = make_enqueue(redis, settings, swallow_errors=False)
    async with Storage(settings) as own_storage:
        publish = EventPublisher(redis, settings.events_channel_prefix + "all")
        yield Core(settings, store, own_storage, publish, enqueue)
    await store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def user_id(core: Core) -> str:
    uid, _ = await core.store.create_user(f"recovery-{uuid.uuid4().hex[:6]}", credits=CREDITS)
    return uid


@pytest_asyncio.fixture(loop_scope="session")
async def empty_queue(core: Core, redis: ArqRedis) -> AsyncIterator[None]:
    """No job of an earlier test in the queue, before or after."""
    await redis.delete(core.settings.arq_queue_name)
    yield
    await redis.delete(core.settings.arq_queue_name)


@pytest.fixture
def workers() -> Iterator[list[ChildProcess]]:
    """Worker subprocesses a test starts; stopped (SIGTERM) at its end if still running."""
    started: list[ChildProcess] = []
    yield started
    for child in started:
        child.stop()


def start_worker(settings: Settings, started: list[ChildProcess]) -> ChildProcess:
    child = start_child(f"worker-{len(started)}", ["worker"], settings_environment(settings))
    started.append(child)
    return child


async def submit_profile(core: Core, user_id: str, path: Path) -> str:
    """A profile of `path` submitted as the API does it (tests.support.submit)."""
    return await submit(core, user_id, tool_id="profile-my-data", data=await asyncio.to_thread(path.read_bytes))


def write_csv(path: Path, rows: int, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    pl.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "amount": rng.normal(100, 15, rows).round(3),
            "qty": rng.integers(0, 50, rows),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], rows),
        }
    ).write_csv(path)
    return path


async def status_events(core: Core, task_id: str) -> list[dict]:
    return [e.payload for e in await core.store.task_events_after(task_id, 0) if e.type == "status"]


async def forget_jobs(redis: ArqRedis, queue_name: str, task_ids: list[str]) -> None:
    """What a Redis flush does to these tasks (the shared test Redis holds other runs' keys)."""
    await redis.delete(queue_name)
    for task_id in task_ids:
        keys = [k async for k in redis.scan_iter(match=f"{job_key_prefix}task:{task_id}:*")]
        keys += [k async for k in redis.scan_iter(match=f"{in_progress_key_prefix}task:{task_id}:*")]
        if keys:
            await redis.delete(*keys)


async def test_sigkilled_workers_task_completes_on_another_worker(
    core: Core, user_id: str, empty_queue: None, workers: list[ChildProcess], tmp_path: Path
) -> None:
    settings = core.settings
    first, second = start_worker(settings, workers), start_worker(settings, workers)
    await wait_registered(core.store, [first, second])
    data = await asyncio.to_thread(write_csv, tmp_path / "primary.csv", 300_000)
    task_id = await submit_profile(core, user_id, data)

    async def running() -> asyncpg.Record | None:
        task = await core.store.get_task(task_id)
        assert task is not None and task["status"] in ("QUEUED", "PROCESSING"), task and task["status"]
        return task if task["status"] == "PROCESSING" else None

    task = await poll(running, "the task to start")
    victim = next(c for c in (first, second) if f":{c.process.pid}:" in task["worker_id"])
    survivor = second if victim is first else first
    os.killpg(victim.process.pid, signal.SIGKILL)  # the worker and its agent processes, mid-task
    killed_at = datetime.now(UTC)
    await asyncio.to_thread(victim.process.wait, 10)

    async def finished() -> asyncpg.Record | None:
        task = await core.store.get_task(task_id)
        assert task is not None
        return task if task["status"] in lifecycle.TERMINAL else None

    done = await poll(finished, "the task to finish on the surviving worker")
    assert done["status"] == "COMPLETED", done["error"]
    assert done["attempts"] == 2
    assert f":{survivor.process.pid}:" in done["worker_id"]
    # Running again within one stale interval plus one reaper tick (the defaults: 20 + 5 s), with a margin
    # for the survivor to claim it on this loaded 2-core machine.
    restarted_after = (done["started_at"] - killed_at).total_seconds()
    assert restarted_after <= settings.stale_after_s + settings.reaper_interval_s + 3.0, restarted_after

    statuses = await status_events(core, task_id)
    assert [s["status"] for s in statuses] == ["UPLOADING", "QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "COMPLETED"]
    requeue = statuses[3]
    assert "stopped responding" in requeue["message"] and "attempt 2 of 3" in requeue["message"]
    assert [s["attempts"] for s in statuses[2:]] == [1, 1, 2, 2]

    # Every output once, from the second attempt; the user is charged for one run.
    prefix = lifecycle.outputs_prefix(settings, user_id, task_id)
    stored = await stored_keys(core.storage, prefix)
    assert stored == sorted(prefix + "2/" + o["name"] for o in done["outputs"])
    assert sorted(o["key"] for o in done["outputs"]) == stored
    manifest = json.loads(await core.storage.get_bytes(prefix + "2/manifest.json", 1 << 20))
    assert manifest["attempt"] == 2 and manifest["worker_id"] == done["worker_id"]
    user = await core.store.get_user(user_id)
    assert user is not None and user["credits"] == CREDITS - registry.chain_cost(done["agents"])

    # The dead worker leaves the registry; the survivor stays in it.
    async def forgotten() -> bool:
        return {r["pid"] for r in await core.store.list_workers()} == {survivor.process.pid}

    await poll(forgotten, "the dead worker to leave the registry")


async def test_tasks_whose_jobs_vanished_from_redis_all_complete(
    core: Core, user_id: str, redis: ArqRedis, empty_queue: None, workers: list[ChildProcess], csv_file: Path
) -> None:
    settings = core.settings
    task_ids = [await submit_profile(core, user_id, csv_file) for _ in range(5)]
    await forget_jobs(redis, settings.arq_queue_name, task_ids)
    # Two workers: two reconcilers racing over the same lost tasks.
    started = [start_worker(settings, workers), start_worker(settings, workers)]
    await wait_registered(core.store, started)

    async def all_finished() -> list[asyncpg.Record] | None:
        tasks = [await core.store.get_task(t) for t in task_ids]
        return tasks if all(t is not None and t["status"] in lifecycle.TERMINAL for t in tasks) else None

    for task in await poll(all_finished, "the 5 tasks to finish"):
        assert task["status"] == "COMPLETED", task["error"]
        assert task["attempts"] == 1
        statuses = await status_events(core, str(task["id"]))
        lost = [s for s in statuses if "job was lost" in (s["message"] or "")]
        assert len(lost) == 1, statuses  # one reconciler enqueued it again, not both
        assert [s["status"] for s in statuses][-2:] == ["PROCESSING", "COMPLETED"]

    # A clean shutdown leaves the registry.
    for child in started:
        child.stop()
        assert child.process.returncode == 0
    assert await core.store.list_workers() == []


async def test_racing_reapers_requeue_once_then_fail_after_the_attempt_limit(
    core: Core, user_id: str, redis: ArqRedis, empty_queue: None, csv_file: Path
) -> None:
    task_id = await submit_profile(core, user_id, csv_file)
    stale_now = Core(
        core.settings.model_copy(update={"stale_after_s": 0.0}), core.store, core.storage, core.publish, core.enqueue
    )
    for attempt in range(1, 4):
        task = await core.store.get_task(task_id)
        assert task is not None
        claimed = await lifecycle.claim_task(core, task_id, "ghost:1:worker", task["job_id"])
        assert claimed is not None and claimed["attempts"] == attempt
        # A job of an earlier queueing claims nothing.
        assert await lifecycle.claim_task(core, task_id, "ghost:1:worker", "task:stale") is None
        reaped = await asyncio.gather(*(recovery.reap_stale_tasks(stale_now) for _ in range(4)))
        assert sum(reaped) == 1
        after = await core.store.get_task(task_id)
        assert after is not None
        if attempt < 3:
            assert after["status"] == "QUEUED" and after["job_id"] != task["job_id"]
            assert after["worker_id"] is None and after["attempts"] == attempt
            assert await redis.zscore(core.settings.arq_queue_name, after["job_id"]) is not None
        else:
            assert after["status"] == "FAILED" and after["error"]["code"] == "AGENT_FAILED"
            assert "3 attempts" in after["error"]["message"]
    statuses = [s["status"] for s in await status_events(core, task_id)]
    assert statuses == ["UPLOADING", "QUEUED"] + ["PROCESSING", "QUEUED"] * 2 + ["PROCESSING", "FAILED"]

    # The user's retry starts a fresh budget: a lost run after it is re-queued, not failed at once.
    task = await lifecycle.retry_task(core, user_id, task_id)
    retried = await core.store.get_task(task_id)
    assert retried is not None and retried["status"] == "QUEUED" and retried["job_id"] is not None
    assert await lifecycle.claim_task(core, task_id, "ghost:1:worker", retried["job_id"]) is not None
    assert sum(await asyncio.gather(*(recovery.reap_stale_tasks(stale_now) for _ in range(2)))) == 1
    after = await core.store.get_task(task_id)
    assert after is not None and after["status"] == "QUEUED" and after["attempts"] == 4
    assert "attempt 2 of 3" in (after["message"] or "")
    await lifecycle.cancel_task(core, user_id, task_id)


async def test_racing_reconcilers_enqueue_a_lost_job_once(
    core: Core, user_id: str, redis: ArqRedis, empty_queue: None, csv_file: Path
) -> None:
    settings = core.settings.model_copy(update={"reconcile_after_s": 0.0})
    now = Core(settings, core.store, core.storage, core.publish, core.enqueue)
    task_id = await submit_profile(core, user_id, csv_file)
    try:
        assert await recovery.reconcile_queue(now, redis) == 0  # its job is there
        old = await core.store.get_task(task_id)
        assert old is not None
        await forget_jobs(redis, settings.arq_queue_name, [task_id])
        replaced = await asyncio.gather(*(recovery.reconcile_queue(now, redis) for _ in range(4)))
        assert sum(replaced) == 1
        new = await core.store.get_task(task_id)
        assert new is not None and new["status"] == "QUEUED" and new["job_id"] != old["job_id"]
        assert await redis.zscore(settings.arq_queue_name, new["job_id"]) is not None
        assert await redis.exists(job_key_prefix + new["job_id"])
        assert await recovery.reconcile_queue(now, redis) == 0
    finally:
        await lifecycle.cancel_task(core, user_id, task_id)


async def test_a_run_that_lost_its_task_changes_nothing(
    core: Core, user_id: str, redis: ArqRedis, empty_queue: None, csv_file: Path
) -> None:
    """A slow but live worker whose task was re-queued meanwhile: its progress, completion and failure
    name its old job and are refused; the new run's state stands."""
    task_id = await submit_profile(core, user_id, csv_file)
    stale_now = Core(
        core.settings.model_copy(update={"stale_after_s": 0.0}), core.store, core.storage, core.publish, core.enqueue
    )
    queued = await core.store.get_task(task_id)
    assert queued is not None
    old_job = queued["job_id"]
    assert await lifecycle.claim_task(core, task_id, "slow:1:worker", old_job) is not None
    assert await recovery.reap_stale_tasks(stale_now) == 1
    requeued = await core.store.get_task(task_id)
    assert requeued is not None and requeued["status"] == "QUEUED" and requeued["job_id"] != old_job
    assert await lifecycle.claim_task(core, task_id, "fast:2:worker", requeued["job_id"]) is not None

    assert not await lifecycle.report_progress(core, task_id, 90, "unified-profiler", "late", old_job)
    assert await lifecycle.complete_task(core, task_id, [], {}, "late", old_job) is None
    assert await lifecycle.fail_task(core, task_id, "AGENT_FAILED", "late", None, old_job) is None
    now = await core.store.get_task(task_id)
    assert now is not None and now["status"] == "PROCESSING" and now["worker_id"] == "fast:2:worker"
    assert now["progress"] < 90
    assert await lifecycle.complete_task(core, task_id, [], {}, "done", requeued["job_id"]) is not None


async def test_a_failure_message_of_any_length_is_stored_cut(
    core: Core, user_id: str, redis: ArqRedis, empty_queue: None, csv_file: Path
) -> None:
    """An agent error echoing a user's input at length (200,000 unknown column names made a 2 MB message and a
    4 MB task GET) is stored cut at MAX_ERROR_MESSAGE_CHARS, saying how long it was."""
    task_id = await submit_profile(core, user_id, csv_file)
    queued = await core.store.get_task(task_id)
    assert queued is not None
    assert await lifecycle.claim_task(core, task_id, "w:1", queued["job_id"]) is not None
    message = "transformer.columns: unknown column(s) " + ", ".join(f"'c{i}'" for i in range(200_000))
    failed = await lifecycle.fail_task(core, task_id, "INVALID_PARAMETERS", message, None, queued["job_id"])
    assert failed is not None and failed["status"] == "FAILED"
    stored = failed["error"]["message"]
    assert stored.startswith(message[: lifecycle.MAX_ERROR_MESSAGE_CHARS])
    assert stored.endswith(f"(cut at 2,000 of {len(message):,} characters)")
    assert len(stored) < lifecycle.MAX_ERROR_MESSAGE_CHARS + 60
    assert lifecycle.capped_message("short") == "short"
