"""Task events: Redis publish after the event row is written, and the per-process fan-out.

The durable log is the `task_events` table (TaskStore); Redis pub/sub only carries each new
row to the API processes, where ONE subscription per process feeds every open stream from memory.

Each live event is encoded once per process (EncodedEvent): every SSE stream writes the same bytes,
every WebSocket the same text. A stream holds only references to those, at most `limit` of them:
a client that falls that far behind is dropped to a re-read of the table (see Subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from prometheus_client import Histogram
from pydantic_core import to_json
from redis.asyncio import Redis

from service.store import Event

log = logging.getLogger(__name__)

# How many subscribers get an event before the hub lets the loop run the others' work (their sends,
# other requests): a fan-out to thousands of streams never holds the loop for long.
FANOUT_SLICE = 32
# How often the hub looks whether the server is shutting down (open streams then end, so that it can).
SHUTDOWN_POLL_S = 0.5
SSE_PING = b": ping\n\n"


def sse_frame(event_id: int, event_type: str, payload: Any) -> bytes:
    """An event as a Server-Sent Events frame, lines separated by "\\n": `id`, `event`, then `data`
    (compact JSON, which holds no line break, so one `data` line). The bytes sse-starlette wrote before."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event_type.encode(), to_json(payload))


class EncodedEvent:
    """An event with its wire forms, each encoded on first use and then shared by every stream."""

    __slots__ = ("event", "_sse", "_chunk", "_ws")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._sse: bytes | None = None
        self._chunk: bytes | None = None
        self._ws: str | None = None

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            e = self.event
            self._sse = sse_frame(e.id, e.type, e.payload)
        return self._sse

    @property
    def sse_chunk(self) -> bytes:
        """The SSE frame as one HTTP/1.1 chunk (`size CRLF frame CRLF`), for streams that write to the connection
        themselves (service/api/streams.py `EventStream.write_live`): the bytes uvicorn writes for the frame."""
        if self._chunk is None:
            frame = self.sse
            self._chunk = b"%x\r\n%s\r\n" % (len(frame), frame)
        return self._chunk

    @property
    def ws_text(self) -> str:
        """The WebSocket text frame `{"id", "event", "data"}` (built only if a WebSocket sends it)."""
        if self._ws is None:
            e = self.event
            self._ws = to_json({"id": e.id, "event": e.type, "data": e.payload}).decode()
        return self._ws


class EventPublisher:
    """Publishes event rows on the service's one events channel. A lost publish loses no event:
    streams replay from the table on reconnect."""

    def __init__(self, redis: Redis, channel: str, timeout_s: float = 1.0) -> None:
        self.redis = redis
        self.channel = channel
        self.timeout_s = timeout_s  # the user's event lock is held while publishing: never wait long

    async def __call__(self, *events: Event) -> None:
        """Publish a transaction's events in order, in one round trip (a pipeline on one connection keeps it)."""
        # Called right after the events' COMMIT: the hubs measure the publish lag from this time.
        committed_at = time.time()
        try:
            if len(events) == 1:
                await asyncio.wait_for(
                    self.redis.publish(self.channel, events[0].to_message(committed_at=committed_at)), self.timeout_s
                )
                return
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.publish(self.channel, event.to_message(committed_at=committed_at))
                await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - transport only; the rows are already written
            log.warning("event publish failed (events %s kept in the log): %s", [e.id for e in events], exc)


class LiveWriter(Protocol):
    """What writes a subscription's live events to its client itself (service/api/streams.py `EventStream`)."""

    def write_live(self, item: EncodedEvent) -> bool:
        """Whether the event was dealt with (written, or one the client had); False: the stream's task sends it."""


class Subscription:
    """One open stream's view of the live events of one user: a short list of shared events (a list, not a
    deque: an empty deque alone weighs 600 bytes, and thousands of idle streams each hold one).

    When more than `limit` wait (a slow client, or a lost Redis subscription) the list is dropped and
    `overflowed` set: the stream then re-reads the table after the last event it sent, so the client
    gets every event once and in order, without the process holding a backlog per stream."""

    __slots__ = (
        "hub", "user_id", "kind", "limit", "task_id", "pending", "overflowed", "closed", "ping_due", "writer",
        "_waiter", "_ping",
    )  # fmt: skip

    def __init__(
        self,
        hub: EventHub,
        user_id: str,
        limit: int,
        kind: str = "sse",
        ping_s: float | None = None,
        task_id: str | None = None,
    ) -> None:
        self.hub = hub
        self.user_id = user_id
        self.kind = kind  # "sse" or "websocket": the open-streams gauge counts by kind
        self.limit = limit
        self.task_id = task_id  # a task's stream: the user's other tasks' events never take its room
        self.pending: list[EncodedEvent] = []
        self.overflowed = False
        self.closed = False  # the server is shutting down, or the client left: the stream ends
        self.ping_due = False  # a keep-alive comment is due (every `ping_s`)
        # Writes a live event to the client at once while the stream waits with nothing else due (see `offer`).
        self.writer: LiveWriter | None = None
        self._waiter: asyncio.Future[None] | None = None
        # One timer per stream that re-arms itself, not one per wait: a busy fan-out creates no timers.
        self._ping: asyncio.TimerHandle | None = None
        if ping_s:
            self._ping = asyncio.get_running_loop().call_later(ping_s, self._ping_now, ping_s)

    def offer(self, item: EncodedEvent) -> None:
        if self.overflowed:
            return  # already behind: the table re-read will bring this one too
        if self.task_id is not None and item.event.task_id != self.task_id:
            return
        if self.writer is not None and self._idle() and self.writer.write_live(item):
            return  # written: the stream's task stays asleep
        if len(self.pending) >= self.limit:
            self.interrupt()
            return
        self.pending.append(item)
        self._wake()

    def interrupt(self) -> None:
        """Live delivery broke off (overflow, Redis lost): the stream catches up from the table."""
        self.overflowed = True
        self.pending = []
        self._wake()

    def end(self) -> None:
        self.closed = True
        self._wake()

    def take(self) -> list[EncodedEvent]:
        items, self.pending = self.pending, []
        return items

    async def wait(self) -> None:
        """Until an event waits, the stream is interrupted or ended, or a ping is due."""
        if self.pending or self.overflowed or self.closed or self.ping_due:
            return
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _idle(self) -> bool:
        """The stream waits in `wait` and nothing is due before this event: writing it now keeps the order."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not (self.pending or self.closed or self.ping_due)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ping_now(self, every_s: float) -> None:
        self.ping_due = True
        self._wake()
        self._ping = asyncio.get_running_loop().call_later(every_s, self._ping_now, every_s)

    def close(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
        self.hub.unsubscribe(self)


class EventHub:
    """The process's single Redis subscription, fanned out in memory to every subscriber by user.
    `buffer_size` is a subscription's default `limit`; `publish_lag`, when given, observes each event's
    seconds from its commit to its dispatch here."""

    def __init__(self, redis: Redis, channel: str, buffer_size: int = 64, publish_lag: Histogram | None = None) -> None:
        self.redis = redis
        self.channel = channel
        self.buffer_size = buffer_size
        self.publish_lag = publish_lag
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self._resubscribing = False  # the subscription was lost: interrupt every stream again once it is back
        self.closing = False

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="event-hub")]
        server = _uvicorn_server()  # the lifespan starts inside the server's signal handling: it is ours
        if server is not None:
            self._tasks.append(asyncio.create_task(self._watch_shutdown(server), name="event-hub-shutdown"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        self.end_all()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def subscribe(
        self,
        user_id: str,
        kind: str = "sse",
        limit: int | None = None,
        ping_s: float | None = None,
        task_id: str | None = None,
    ) -> Subscription:
        """A stream's subscription to the user's events (only task `task_id`'s, when given)."""
        sub = Subscription(self, user_id, limit or self.buffer_size, kind, ping_s, task_id)
        if self.closing:
            sub.closed = True
        self._subscribers[user_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscribers[sub.user_id]

    def subscriptions(self, user_id: str) -> tuple[Subscription, ...]:
        return tuple(self._subscribers.get(user_id, ()))

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def stream_counts(self) -> Counter[str]:
        """Open streams by kind (sse, websocket)."""
        return Counter(sub.kind for subs in self._subscribers.values() for sub in subs)

    async def dispatch(self, event: Event) -> None:
        """Hands the event, encoded once, to its user's subscribers, FANOUT_SLICE at a time: between slices
        the loop runs the woken streams' sends and other requests. The next event waits for this one, so
        every stream still gets them in order."""
        subs = self._subscribers.get(event.user_id)
        if not subs:
            return
        item = EncodedEvent(event)
        targets = tuple(subs)
        for start in range(0, len(targets), FANOUT_SLICE):
            if start:
                await asyncio.sleep(0)
            for sub in targets[start : start + FANOUT_SLICE]:
                sub.offer(item)

    def end_all(self) -> None:
        """Ends every open stream (the server is stopping: uvicorn waits for open responses to finish)."""
        self.closing = True
        for subs in tuple(self._subscribers.values()):
            for sub in tuple(subs):
                sub.end()

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                async for event in self._listen():
                    await self.dispatch(event)
                    delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect; streams catch up from the table
                log.warning("event subscription lost: %s; reconnecting", exc)
            self._ready.clear()
            self._resubscribing = True
            # Wake every stream so it re-reads the table for anything published while we were away.
            self._interrupt_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> AsyncIterator[Event]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._ready.set()
            if self._resubscribing:
                # Again now that live delivery is back: a stream that re-read the table during the backoff would
                # otherwise miss an event committed after that read and published while no one listened.
                self._resubscribing = False
                self._interrupt_all()
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

    def _interrupt_all(self) -> None:
        for subs in tuple(self._subscribers.values()):
            for sub in tuple(subs):
                sub.interrupt()

    async def _watch_shutdown(self, server: Any) -> None:
        """uvicorn waits for every open response before it shuts the application down, and an event stream
        never finishes by itself: when the server is told to exit, end the streams."""
        while not server.should_exit:  # noqa: ASYNC110 - a plain attribute of uvicorn's, nothing to await
            await asyncio.sleep(SHUTDOWN_POLL_S)
        self.end_all()


def _uvicorn_server() -> Any:
    """The uvicorn server running this application, if any: uvicorn installs its bound `handle_exit` as the
    SIGTERM handler while it serves (from the main thread), and its `should_exit` turns True on exit."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return server if hasattr(server, "should_exit") else None
