"""A job's start in one round trip (worker/settings.py START_JOB_SCRIPT) against a real Redis: a due job starts with
its try counted, as arq's own start does, without a Redis transaction; a job another worker holds, or one not due
yet, does not start and gives its slot back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import func

from service.config import Settings
from service.queueing import JobQueue
from worker.settings import build_worker

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def start_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_prefix": f"{settings.key_prefix}start-{uuid.uuid4().hex[:8]}/"})


@pytest_asyncio.fixture(loop_scope="session")
async def redis(start_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(start_settings.redis_url))
    yield pool
    await pool.delete(start_settings.arq_queue_name)
    await pool.aclose()


async def test_a_due_job_starts_in_one_round_trip_and_the_others_give_their_slot_back(
    start_settings: Settings, redis: ArqRedis
) -> None:
    transactions: list[bool] = []  # every Redis pipeline the worker opens, until the job runs
    opened = redis.pipeline

    def counted(transaction: bool = True, **kwargs: Any) -> Any:
        transactions.append(transaction)
        return opened(transaction=transaction, **kwargs)

    seen: list[tuple[int, list[bool]]] = []

    async def probe(ctx: dict[str, Any], argument: str) -> str:
        seen.append((ctx["job_try"], list(transactions)))
        return argument

    queue = JobQueue(redis, start_settings, swallow_errors=False)
    due, held, later = (f"probe:{uuid.uuid4()}" for _ in range(3))
    assert await queue.enqueue_job("probe", "a", due, timestamp_ms() - 1000)
    assert await queue.enqueue_job("probe", "b", held, timestamp_ms() - 1000)
    assert await queue.enqueue_job("probe", "c", later, timestamp_ms() + 3_600_000)
    await redis.set(in_progress_key_prefix + held, b"1", px=60_000)  # another worker runs it
    worker = build_worker(
        start_settings, redis_pool=redis, handle_signals=False, max_jobs=4, functions=[func(probe, name="probe")]
    )
    redis.pipeline = counted  # type: ignore[method-assign,assignment]
    try:
        await worker.start_jobs([held.encode(), later.encode(), due.encode()])

        assert set(worker.tasks) == {due}, "only the due job that no one holds starts"
        await asyncio.wait_for(worker.tasks[due], 30)
        assert seen == [(1, [])], "its first try, started without a Redis transaction of the worker's"
        assert worker.job_counter == 0 and not worker.sem.locked(), "every slot is free again"
        assert await redis.exists(in_progress_key_prefix + held), "the holder's key is left alone"
        assert not await redis.exists(in_progress_key_prefix + later)
        assert not await redis.exists(retry_key_prefix + due), "its end cleared its try, as arq's does"
    finally:
        del redis.pipeline
        keys = [key_prefix + job for job in (due, held, later) for key_prefix in (job_key_prefix, retry_key_prefix)]
        await redis.delete(*keys, in_progress_key_prefix + held)
