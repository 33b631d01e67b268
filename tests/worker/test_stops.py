"""How runs stop, with real worker processes: a cancel kills the agent process mid-run and cleans up, the
hard time limit kills a runaway agent (TIMEOUT) without touching the worker's other run, the soft limit
ends a chain early with a partial result, a SIGTERMed worker gives its task back to the queue, and a
transient object store fault is retried after a backoff while a bad input fails at once.

Each test starts the worker(s) it needs, on the module's own database and arq queue."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from service import lifecycle
from service.config import Settings
from service.dev import ChildProcess
from service.lifecycle import Core
from service.storage import Storage
from tests.support import poll, sleeper, submit, wait_registered
from tests.worker.scheduling_support import (
    FlakyProxy,
    agent_pids,
    assert_outputs_stored,
    cancel_unfinished,
    get_task,
    new_user,
    open_core,
    private_settings,
    runs_since_queued,
    start_worker,
    status_events,
    wait_status,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def stops_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    work_dir = tmp_path_factory.mktemp("stops-work")
    with private_settings(settings, "stops", worker_concurrency=2, agent_processes=2, work_dir=work_dir) as private:
        yield private


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(stops_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(stops_settings.redis_url))
    await pool.delete(stops_settings.arq_queue_name)
    yield pool
    await pool.delete(stops_settings.arq_queue_name)
    await pool.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(stops_settings: Settings, storage: Storage, redis: ArqRedis) -> AsyncIterator[Core]:
    async with open_core(stops_settings, redis) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="session")
async def workers(core: Core) -> AsyncIterator[list[ChildProcess]]:
    """Worker subprocesses a test starts, stopped at its end; what it leaves under way is cancelled."""
    started: list[ChildProcess] = []
    yield started
    await cancel_unfinished(core)
    for child in started:
        await asyncio.to_thread(child.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def user_id(core: Core) -> str:
    return await new_user(core, "stops")


async def ready_worker(core: Core, workers: list[ChildProcess], user_id: str, **updates: Any) -> ChildProcess:
    """A worker with `updates` to the module's settings whose two agent processes have each run a task: the
    timings a test measures hold no process start-up. The warm-up tasks profile, out of reach of the
    diagnostics tool's time limits."""
    child = start_worker(core.settings.model_copy(update=updates), workers)
    await wait_registered(core.store, [child])
    warm_up = [await submit(core, user_id, tool_id="profile-my-data") for _ in range(2)]
    for task_id in warm_up:
        task = await wait_status(core, task_id, lifecycle.TERMINAL)
        assert task["status"] == "COMPLETED", task["error"]
    return child


async def test_cancel_kills_the_agent_process_and_cleans_up(
    core: Core, workers: list[ChildProcess], user_id: str
) -> None:
    worker = await ready_worker(core, workers, user_id)
    before = agent_pids(worker)
    assert len(before) == 2
    task_id = await submit(core, user_id, parameters=sleeper(30.0))

    async def sleeping() -> bool:
        return (await get_task(core, task_id))["progress"] > 0

    await poll(sleeping, "the sleeper to report progress")
    assert core.settings.work_dir is not None
    temp_dirs = list(core.settings.work_dir.glob(f"agensium-{task_id[:8]}-*"))
    assert len(temp_dirs) == 1

    await lifecycle.cancel_task(core, user_id, task_id)

    async def stopped() -> set[int] | None:
        gone = before - agent_pids(worker)
        return gone if gone and not temp_dirs[0].exists() else None

    killed = await poll(stopped, "its agent process to be killed and its temp dir removed", 2.0)
    assert len(killed) == 1  # the other agent process is left alone

    async def replaced() -> set[int] | None:
        now = agent_pids(worker)
        return now if len(now) == 2 else None

    assert len(await poll(replaced, "a replacement agent process") - before) == 1
    cancelled = await get_task(core, task_id)
    assert cancelled["status"] == "CANCELLED" and cancelled["outputs"] in (None, [])
    await assert_outputs_stored(core, [cancelled])

    # The worker goes on with the next task.
    done = await wait_status(core, await submit(core, user_id), lifecycle.TERMINAL)
    assert done["status"] == "COMPLETED", done["error"]
    assert done["worker_id"] == cancelled["worker_id"]
    await assert_outputs_stored(core, [done])


async def test_hard_time_limit_kills_a_runaway_agent_alone(
    core: Core, workers: list[ChildProcess], user_id: str
) -> None:
    """The limits (3 s, soft and hard alike) leave room for another sleeper of 2.5 s that starts well after
    the runaway, so that it is still running when the runaway's agent process is killed."""
    await ready_worker(core, workers, user_id, tool_time_limits_s={"diagnostics": (3.0, 3.0)})
    runaway_id = await submit(core, user_id, parameters=sleeper(60.0, runaway=True))

    async def in_agents() -> bool:
        return (await get_task(core, runaway_id))["progress"] > 0  # its input is read: the sleeper spins

    await poll(in_agents, "the runaway to be in its agent")
    await asyncio.sleep(1.4)  # not a synchronisation: the offset that puts the kill inside the other run
    other_id = await submit(core, user_id, parameters=sleeper(2.5, 0.1))
    runaway = await wait_status(core, runaway_id, lifecycle.TERMINAL)
    assert runaway["status"] == "FAILED" and runaway["error"]["code"] == "TIMEOUT", runaway["error"]
    assert (runaway["finished_at"] - runaway["started_at"]).total_seconds() < 5.0

    other = await wait_status(core, other_id, lifecycle.TERMINAL)
    assert other["status"] == "COMPLETED", other["error"]
    assert (await lifecycle.task_result(core, user_id, other_id))["status"] == "success"
    # It was running when the runaway's agent process was killed.
    assert other["started_at"] < runaway["finished_at"] < other["finished_at"]
    await assert_outputs_stored(core, [runaway, other])


async def test_soft_time_limit_ends_the_chain_with_a_partial_result(
    core: Core, workers: list[ChildProcess], user_id: str
) -> None:
    await ready_worker(core, workers, user_id, tool_time_limits_s={"diagnostics": (1.0, 30.0)})
    task_id = await submit(core, user_id, parameters=sleeper(5.0, 0.1))
    task = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert task["status"] == "COMPLETED", task["error"]
    result = await lifecycle.task_result(core, user_id, task_id)
    assert result["status"] == "partial"
    assert result["duration_ms"] < 5000  # stopped before the sleeper's 5 s were up
    assert task["message"] == "Completed with agent errors (partial result)"
    await assert_outputs_stored(core, [task])


async def test_a_sigtermed_worker_gives_its_task_back_without_using_an_attempt(
    core: Core, workers: list[ChildProcess], user_id: str
) -> None:
    updates = {"drain_s": 1.0, "max_attempts": 1}
    first = await ready_worker(core, workers, user_id, **updates)
    task_id = await submit(core, user_id, parameters=sleeper(3.0))  # cut by the drain of 1 s

    async def sleeping() -> bool:
        return (await get_task(core, task_id))["progress"] > 0

    await poll(sleeping, "the sleeper to report progress")
    loop = asyncio.get_running_loop()
    signalled = loop.time()
    first.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(first.process.wait, 15) == 0
    assert loop.time() - signalled < 8.0  # drain (1 s), the task given back, agent processes stopped
    requeued = await get_task(core, task_id)
    assert requeued["status"] == "QUEUED" and "shut down" in requeued["message"], requeued["message"]
    # Its first run is not held against it: no run since it was queued, of max_attempts=1.
    assert requeued["attempts"] == 1 and await runs_since_queued(core, task_id) == 0

    second = start_worker(core.settings.model_copy(update=updates), workers)
    done = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert done["status"] == "COMPLETED", done["error"]
    assert f":{second.process.pid}:" in done["worker_id"]
    statuses = await status_events(core, task_id)
    assert [s["status"] for s in statuses] == ["UPLOADING", "QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "COMPLETED"]
    assert "shut down" in statuses[3]["message"]
    assert done["attempts"] == 2 and await runs_since_queued(core, task_id) == 1
    prefix = lifecycle.outputs_prefix(core.settings, user_id, task_id)
    assert all(o["key"].startswith(prefix + "2/") for o in done["outputs"])
    await assert_outputs_stored(core, [done])


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(core: Core) -> AsyncIterator[FlakyProxy]:
    assert core.settings.s3_endpoint_url is not None
    flaky = await FlakyProxy(urlsplit(core.settings.s3_endpoint_url).netloc).start()
    yield flaky
    await flaky.close()


async def test_a_transient_storage_fault_is_retried_and_a_bad_input_is_not(
    core: Core, workers: list[ChildProcess], user_id: str, proxy: FlakyProxy
) -> None:
    endpoint = f"http://127.0.0.1:{proxy.port}"
    child = start_worker(
        core.settings.model_copy(update={"s3_endpoint_url": endpoint, "retry_backoff_s": 2.0, "max_attempts": 3}),
        workers,
    )
    await wait_registered(core.store, [child])
    task_id = await submit(core, user_id)  # the test's own Storage reaches the store directly

    async def backing_off() -> dict[str, Any] | None:
        statuses = await status_events(core, task_id)
        return next((s for s in statuses if "transient fault" in (s["message"] or "")), None)

    requeued = await poll(backing_off, "the first attempt to fail and be queued again")
    assert requeued["status"] == "QUEUED" and "retrying in" in requeued["message"], requeued
    proxy.set_up(True)
    done = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert done["status"] == "COMPLETED", done["error"]
    assert done["attempts"] == 2
    statuses = [s["status"] for s in await status_events(core, task_id)]
    assert statuses == ["UPLOADING", "QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "COMPLETED"]
    await assert_outputs_stored(core, [done])

    # A malformed input is the task's own fault: FAILED at the first attempt, never retried.
    bad = await wait_status(core, await submit(core, user_id, data=b"id,value\n"), lifecycle.TERMINAL)
    assert bad["status"] == "FAILED" and bad["error"]["code"] == "INVALID_FILE", bad["error"]
    assert bad["attempts"] == 1
    statuses = [s["status"] for s in await status_events(core, str(bad["id"]))]
    assert statuses == ["UPLOADING", "QUEUED", "PROCESSING", "FAILED"]
    await assert_outputs_stored(core, [bad])
