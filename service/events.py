"""Task events: Redis publish after the event row is written, and the per-process fan-out.

The durable log is the `task_events` table (TaskStore); Redis pub/sub only carries each new
row to the API processes, where ONE subscription per process feeds every open stream from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

from prometheus_client import Histogram
from redis.asyncio import Redis

from service.store import Event

log = logging.getLogger(__name__)


class EventPublisher:
    """Publishes event rows on the service's one events channel. A lost publish loses no event:
    streams replay from the table on reconnect."""

    def __init__(self, redis: Redis, channel: str, timeout_s: float = 1.0) -> None:
        self.redis = redis
        self.channel = channel
        self.timeout_s = timeout_s  # the user's event lock is held while publishing: never wait long

    async def __call__(self, event: Event) -> None:
        # Called right after the event's COMMIT: the hubs measure the publish lag from this time.
        message = event.to_message(committed_at=time.time())
        try:
            await asyncio.wait_for(self.redis.publish(self.channel, message), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - transport only; the row is already written
            log.warning("event publish failed (event %s kept in the log): %s", event.id, exc)


class Subscription:
    """One open stream's view of the live events of one user."""

    def __init__(self, hub: EventHub, user_id: str, maxsize: int, kind: str = "sse") -> None:
        self.hub = hub
        self.user_id = user_id
        self.kind = kind  # "sse" or "websocket": the open-streams gauge counts by kind
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # A slow client: drop live events and let it catch up from the table.
            self.overflowed = True

    async def get(self) -> Event | None:
        return await self.queue.get()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """The process's single Redis subscription, fanned out in memory to every subscriber by user.
    `publish_lag`, when given, observes each event's seconds from its commit to its dispatch here."""

    def __init__(
        self, redis: Redis, channel: str, queue_size: int = 1000, publish_lag: Histogram | None = None
    ) -> None:
        self.redis = redis
        self.channel = channel
        self.queue_size = queue_size
        self.publish_lag = publish_lag
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def subscribe(self, user_id: str, kind: str = "sse") -> Subscription:
        sub = Subscription(self, user_id, self.queue_size, kind)
        self._subscribers[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.user_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def stream_counts(self) -> Counter[str]:
        """Open streams by kind (sse, websocket)."""
        return Counter(sub.kind for subs in self._subscribers.values() for sub in subs)

    def dispatch(self, event: Event) -> None:
        for sub in tuple(self._subscribers.get(event.user_id, ())):
            sub.offer(event)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async for event in self._listen():
                    self.dispatch(event)
                    delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; streams catch up from the table
                log.warning("event subscription lost: %s; reconnecting", exc)
            self._ready.clear()
            # Wake every stream so it re-reads the table for anything published while we were away.
            for subs in tuple(self._subscribers.values()):
                for sub in tuple(subs):
                    sub.overflowed = True
                    sub.offer(None)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> AsyncIterator[Event]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._ready.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = json.loads(message["data"])
                committed_at = data.get("committed_at")
                if self.publish_lag is not None and isinstance(committed_at, (int, float)):
                    # Wall clocks of two hosts: a skew could make it negative.
                    self.publish_lag.observe(max(0.0, time.time() - committed_at))
                yield Event(data["id"], data["task_id"], data["user_id"], data["type"], data["payload"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
