"""The worker's poll (worker/settings.py AgensiumWorker.start_jobs) against a real Redis: the ids of the jobs it runs
itself are passed over without asking Redis, and a job it is not running still starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix

from service.config import Settings
from service.queueing import JOB_FUNCTION, JobQueue
from worker.settings import build_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def poll_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_prefix": f"{settings.key_prefix}polling-{uuid.uuid4().hex[:8]}/"})


@pytest_asyncio.fixture(loop_scope="session")
async def redis(poll_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(poll_settings.redis_url))
    yield pool
    await pool.delete(poll_settings.arq_queue_name)
    await pool.aclose()


async def test_a_job_the_worker_runs_is_passed_over_and_another_starts(
    poll_settings: Settings, redis: ArqRedis
) -> None:
    queue = JobQueue(redis, poll_settings, swallow_errors=False)
    ours, other = f"task:{uuid.uuid4()}:aaaaaaaaaaaa", f"copies:{uuid.uuid4()}"
    assert await queue.enqueue_job(JOB_FUNCTION, str(uuid.uuid4()), ours, 1000)
    # A job id no function of the worker serves: arq starts it, finds no function, and ends it (nothing runs).
    assert await queue.enqueue_job("no_such_function", str(uuid.uuid4()), other, 1000)
    worker = build_worker(poll_settings, redis_pool=redis, handle_signals=False, max_jobs=4)
    running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    worker.tasks[ours] = running  # type: ignore[assignment]  # as arq holds a job it runs: its id -> its task
    try:
        # Its in-progress key is not set here: had the worker asked Redis, it would have started the job again.
        await worker.start_jobs([ours.encode(), other.encode()])

        assert worker.tasks[ours] is running and not await redis.exists(in_progress_key_prefix + ours)
        assert other in worker.tasks, "the other one started"
        await asyncio.wait_for(worker.tasks[other], 30)
        # It ran (to find no function): arq runs a job once it holds its in-progress key, which its end deletes.
        assert worker.jobs_failed == 1 and not await redis.exists(in_progress_key_prefix + other)
    finally:
        running.cancel()
        await redis.delete(job_key_prefix + ours, in_progress_key_prefix + other)
