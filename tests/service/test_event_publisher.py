"""The events' publisher against the real Redis: a transaction's events go out in one round trip and arrive in order."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from redis.asyncio import Redis

from service.config import Settings
from service.events import EventPublisher
from service.store import Event

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_transactions_events_arrive_in_order_with_their_commit_time(settings: Settings) -> None:
    channel = f"{settings.events_channel_prefix}publisher-test-{uuid.uuid4().hex}"
    redis = Redis.from_url(settings.redis_url)
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel)
        task_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
        events = [Event(100 + i, task_id, user_id, kind, {"n": i}) for i, kind in enumerate(("status", "done"))]
        publish = EventPublisher(redis, channel)
        await publish(*events)
        await publish(Event(200, task_id, user_id, "progress", {"n": 2}))

        received: list[dict[str, object]] = []
        async with asyncio.timeout(10):
            while len(received) < 3:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    received.append(json.loads(message["data"]))
        assert [(m["id"], m["type"]) for m in received] == [(100, "status"), (101, "done"), (200, "progress")]
        assert received[0]["committed_at"] == received[1]["committed_at"]  # one commit, one time
    finally:
        await pubsub.aclose()
        await redis.aclose()
