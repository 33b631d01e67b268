"""The Core's job queue (service/queueing.py) against a real Redis: its one-round-trip enqueue leaves what arq's own
enqueue_job leaves, and refuses a job id arq still holds, as arq does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import Job, JobStatus

from service.config import Settings
from service.queueing import JOB_EXPIRES, JOB_FUNCTION, JobQueue, job_score_ms

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def queue_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_prefix": f"{settings.key_prefix}queueing-{uuid.uuid4().hex[:8]}/"})


@pytest_asyncio.fixture(loop_scope="session")
async def redis(queue_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(queue_settings.redis_url))
    yield pool
    await pool.delete(queue_settings.arq_queue_name)
    await pool.aclose()


async def test_a_job_is_enqueued_as_arq_enqueues_it(queue_settings: Settings, redis: ArqRedis) -> None:
    queue = JobQueue(redis, queue_settings, swallow_errors=False)
    name = queue_settings.arq_queue_name
    task_id = str(uuid.uuid4())
    ours, arqs = f"task:{task_id}:{uuid.uuid4().hex[:12]}", f"task:{task_id}:{uuid.uuid4().hex[:12]}"
    score = job_score_ms(queue_settings, "high")

    await queue(task_id, ours, "high")  # its score: now minus the head start, as job_score_ms gives it
    await redis.enqueue_job(
        JOB_FUNCTION,
        task_id,
        _job_id=arqs,
        _queue_name=name,
        _defer_until=datetime.fromtimestamp(score / 1000, UTC),
        _expires=JOB_EXPIRES,
    )

    mine, theirs = await Job(ours, redis, _queue_name=name).info(), await Job(arqs, redis, _queue_name=name).info()
    assert mine is not None and theirs is not None
    assert (mine.function, mine.args, mine.kwargs, mine.job_try) == (theirs.function, theirs.args, theirs.kwargs, None)
    assert mine.args == (task_id,) and mine.function == JOB_FUNCTION
    assert await Job(ours, redis, _queue_name=name).status() == JobStatus.queued
    our_score = await redis.zscore(name, ours)
    assert our_score is not None and our_score <= job_score_ms(queue_settings, "high")
    assert our_score < job_score_ms(queue_settings, "normal") - 1000, "the priority's head start is in the score"
    ttl = await redis.pttl(job_key_prefix + ours)
    assert 0 < ttl <= JOB_EXPIRES.total_seconds() * 1000


async def test_a_job_id_arq_still_holds_is_not_enqueued_again(queue_settings: Settings, redis: ArqRedis) -> None:
    queue = JobQueue(redis, queue_settings, swallow_errors=False)
    name = queue_settings.arq_queue_name
    task_id = str(uuid.uuid4())
    queued, finished = f"task:{task_id}:aaaaaaaaaaaa", f"task:{task_id}:bbbbbbbbbbbb"
    assert await queue.enqueue_job(JOB_FUNCTION, task_id, queued, 1000)
    assert not await queue.enqueue_job(JOB_FUNCTION, task_id, queued, 2000), "queued already"
    assert await redis.zscore(name, queued) == 1000

    await redis.set(result_key_prefix + finished, b"kept result")
    assert not await queue.enqueue_job(JOB_FUNCTION, task_id, finished, 1000), "its result is kept"
    assert await redis.zscore(name, finished) is None and not await redis.exists(job_key_prefix + finished)
