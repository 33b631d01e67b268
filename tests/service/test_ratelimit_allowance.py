"""The rate limiter's local allowance (service/ratelimit.py) on real Redis: a process takes a batch of tokens from the
user's shared bucket and spends them without asking Redis again, and however the requests are spread over
processes no more are admitted than the shared bucket holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from service.config import Settings
from service.ratelimit import RateLimiter

pytestmark = pytest.mark.asyncio(loop_scope="session")

SLOW_RATE = 0.001  # one token per 1000 s: the bucket never refills within a test
INTERVAL_S = 1 / SLOW_RATE


@pytest_asyncio.fixture(loop_scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def limiter(redis: Redis, prefix: str, burst: int) -> RateLimiter:
    return RateLimiter(redis, prefix, SLOW_RATE, burst, timeout_s=5.0)


async def tokens_taken(redis: Redis, prefix: str, user_id: str) -> int:
    """How many tokens the shared bucket has given out: its theoretical arrival time is that many intervals ahead."""
    tat = await redis.get(f"{prefix}agensium:ratelimit:{user_id}")
    seconds, micros = await redis.time()
    return 0 if tat is None else round((float(tat) - (seconds + micros / 1e6)) / INTERVAL_S)


async def test_a_process_takes_a_batch_and_spends_it_locally(redis: Redis) -> None:
    prefix, user = f"test-{uuid.uuid4().hex[:8]}/", str(uuid.uuid4())
    process = limiter(redis, prefix, burst=100)
    assert process.batch == 10
    asked = 0
    script = process._script

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal asked
        asked += 1
        return await script(*args, **kwargs)

    process._script = counted  # type: ignore[method-assign]
    assert (await process.check(user)).allowed
    assert await tokens_taken(redis, prefix, user) == 10  # one request took a batch from the shared bucket
    for _ in range(49):
        assert (await process.check(user)).allowed
    # Redis was asked once per half batch at most (the top-ups), and never gave more than a batch ahead.
    assert asked <= 50 // (process.batch // 2) + 1
    assert 50 <= await tokens_taken(redis, prefix, user) <= 50 + process.batch


async def test_processes_never_admit_more_than_the_shared_bucket(redis: Redis) -> None:
    prefix, user = f"test-{uuid.uuid4().hex[:8]}/", str(uuid.uuid4())
    processes = [limiter(redis, prefix, burst=100) for _ in range(3)]
    admitted = 0
    for n in range(200):  # interleaved, with costly calls among them
        decision = await processes[n % 3].check(user, cost=7 if n % 5 == 0 else 1)
        admitted += (7 if n % 5 == 0 else 1) if decision.allowed else 0
        if not decision.allowed:
            assert decision.retry_after_s >= 1
    assert admitted <= 100
    assert admitted >= 100 - 3 * processes[0].batch  # at most a batch less per process: the documented slack
    assert await tokens_taken(redis, prefix, user) == 100


async def test_a_small_burst_asks_redis_for_every_request(redis: Redis) -> None:
    """Below a burst of 10 the batch is one token: the exact shared limit of a single check per request."""
    prefix, user = f"test-{uuid.uuid4().hex[:8]}/", str(uuid.uuid4())
    first, second = limiter(redis, prefix, burst=5), limiter(redis, prefix, burst=5)
    assert first.batch == 1
    results = [(await (first if n % 2 else second).check(user)).allowed for n in range(5)]
    assert results == [True] * 5
    assert not (await first.check(user)).allowed and not (await second.check(user)).allowed


async def test_concurrent_first_requests_share_one_take(redis: Redis) -> None:
    """Twenty requests at once, none of them with tokens at hand: one takes a batch, the others wait for it and
    spend it (or take the next), instead of taking a batch each and being refused for it."""
    prefix, user = f"test-{uuid.uuid4().hex[:8]}/", str(uuid.uuid4())
    process = limiter(redis, prefix, burst=100)
    decisions = await asyncio.gather(*(process.check(user) for _ in range(20)))
    assert all(d.allowed for d in decisions)
    assert 20 <= await tokens_taken(redis, prefix, user) <= 20 + process.batch  # batches of ten, not twenty
