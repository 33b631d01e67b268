"""The event fan-out of an API process (service/events.py, service/api/streams.py): each live event encoded
once and the same bytes written to every stream; many streams get every event once, in order; a client
that stops reading is dropped to a re-read of the table and resumes without a gap or a repeat; the SSE
bytes are those clients got before (sse-starlette's framing with "\\n")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from service import events as events_module
from service.config import Settings
from service.events import SSE_PING, EncodedEvent, EventHub, EventPublisher, sse_frame
from service.store import Event, TaskStore
from tests.conftest import Account, ApiServer, serve_api
from tests.support import DEADLINE_S, poll, task_spec

pytestmark = pytest.mark.asyncio(loop_scope="session")

# What sse-starlette 3.7 wrote for ServerSentEvent(data=to_json(payload).decode(), event=..., id=..., sep="\n")
# before the streams wrote their own frames (taken from the old `_sse` of service/api/streams.py).
OLD_FRAMES = [
    (
        (41, "status", {"task_id": "t-1", "status": "QUEUED", "progress": 0, "labels": {}}),
        b'id: 41\nevent: status\ndata: {"task_id":"t-1","status":"QUEUED","progress":0,"labels":{}}\n\n',
    ),
    (
        (7, "progress", {"message": "caf\u00e9 \u2028 line\nbreak", "at": None, "ratio": 0.5}),
        b'id: 7\nevent: progress\ndata: {"message":"caf\xc3\xa9 \xe2\x80\xa8 line\\nbreak","at":null,"ratio":0.5}\n\n',
    ),
    ((0, "done", {}), b"id: 0\nevent: done\ndata: {}\n\n"),
]


async def test_sse_frame_is_the_old_framing() -> None:
    for (event_id, event_type, payload), golden in OLD_FRAMES:
        assert sse_frame(event_id, event_type, payload) == golden
    assert SSE_PING == b": ping\n\n"


async def test_hub_encodes_an_event_once_for_every_subscriber(settings: Settings) -> None:
    hub = EventHub(Redis.from_url(settings.redis_url), "unused")  # not started: dispatch is called directly
    first, second = hub.subscribe("u-1"), hub.subscribe("u-1", kind="websocket")
    other = hub.subscribe("u-2")
    await hub.dispatch(Event(5, "t-1", "u-1", "status", {"status": "QUEUED"}))
    [a], [b] = first.take(), second.take()
    assert a is b and a.sse is b.sse, "one encoded event, the same bytes object for both streams"
    assert a.sse == b'id: 5\nevent: status\ndata: {"status":"QUEUED"}\n\n'
    assert a.ws_text is b.ws_text and a.ws_text == '{"id":5,"event":"status","data":{"status":"QUEUED"}}'
    assert other.take() == [], "another user's stream gets nothing"


async def test_websocket_text_is_only_built_when_asked() -> None:
    item = EncodedEvent(Event(9, "t", "u", "done", {"ok": True}))
    assert item.sse.startswith(b"id: 9\n")
    assert item._ws is None
    assert item.ws_text == '{"id":9,"event":"done","data":{"ok":true}}'


async def test_a_full_subscription_drops_its_events_and_asks_for_a_reread(settings: Settings) -> None:
    hub = EventHub(Redis.from_url(settings.redis_url), "unused", buffer_size=2)
    sub = hub.subscribe("u")
    for event_id in (1, 2, 3, 4):
        await hub.dispatch(Event(event_id, "t", "u", "progress", {}))
    assert sub.overflowed and sub.take() == [], "no backlog is kept for a client that fell behind"
    sub.overflowed = False  # what the stream does before it re-reads the table
    await hub.dispatch(Event(5, "t", "u", "progress", {}))
    assert [item.event.id for item in sub.take()] == [5]


async def test_a_task_stream_holds_its_task_events_only(settings: Settings) -> None:
    """The user's other tasks' events never take a task stream's room: a burst of them overflows nothing."""
    hub = EventHub(Redis.from_url(settings.redis_url), "unused", buffer_size=2)
    task_sub, user_sub = hub.subscribe("u", task_id="mine"), hub.subscribe("u")
    for event_id in range(1, 6):
        await hub.dispatch(Event(event_id, "other", "u", "progress", {}))
    await hub.dispatch(Event(6, "mine", "u", "progress", {}))
    assert not task_sub.overflowed and [item.event.id for item in task_sub.take()] == [6]
    assert user_sub.overflowed  # the user-wide stream holds them all: it fell behind


async def test_streams_re_read_the_table_once_the_lost_subscription_is_back(settings: Settings) -> None:
    """After a lost Redis subscription every stream re-reads the table twice: when it is lost, and again once
    live delivery is back (an event committed between its first re-read and the new SUBSCRIBE was published to
    no one)."""
    name = f"test-resubscribe-{uuid.uuid4().hex[:12]}"
    redis, admin = Redis.from_url(settings.redis_url, client_name=name), Redis.from_url(settings.redis_url)
    hub = EventHub(redis, name)
    await hub.start()
    try:
        sub = hub.subscribe("u")
        await hub.dispatch(Event(1, "t", "u", "progress", {}))
        assert not sub.overflowed
        ours = [c["id"] for c in await admin.client_list(_type="pubsub") if c.get("name") == name]
        assert len(ours) == 1
        interruptions = []
        interrupt_all = hub._interrupt_all

        def counted() -> None:
            interruptions.append(hub.connected)
            interrupt_all()

        hub._interrupt_all = counted  # type: ignore[method-assign]
        await admin.client_kill_filter(_id=ours[0])  # this hub's subscription only (Redis is shared)

        async def told_twice() -> bool:
            return len(interruptions) >= 2

        await poll(told_twice, "the streams told when the subscription was lost, and again once it is back")
        assert interruptions[:2] == [False, True]  # lost (not connected), then back (connected)
        assert sub.overflowed
    finally:
        await hub.stop()
        await redis.aclose()
        await admin.aclose()


# --- over HTTP, with the real API ---------------------------------------------------------------


class RawStream:
    """A user-wide SSE stream on a bare socket: its body bytes, de-chunked, as the server wrote them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.body = bytearray()

    @classmethod
    async def open(cls, url: str, api_key: str, receive_buffer: int | None = None) -> RawStream:
        host, port = url.removeprefix("http://").split(":")
        sock = socket.socket()
        if receive_buffer is not None:  # before connecting: the TCP window follows it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        # A slow client's reader stops taking bytes from the socket too (above twice its limit) until read.
        limit = 2**20 if receive_buffer is None else 1024
        reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        writer.write(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S)
        assert head.startswith(b"HTTP/1.1 200 "), head
        headers = head.lower()
        for expected in (
            b"content-type: text/event-stream",
            b"cache-control: no-cache",
            b"x-accel-buffering: no",
            b"transfer-encoding: chunked",
        ):
            assert expected in headers, head
        return cls(reader, writer)

    async def read_chunk(self) -> None:
        size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
        assert size, "an event stream does not end by itself"
        self.body += await self.reader.readexactly(size)
        assert await self.reader.readexactly(2) == b"\r\n"

    def frames(self) -> bytes:
        return bytes(self.body).replace(SSE_PING, b"")

    async def read_until(self, expected: list[Event]) -> None:
        """Read until the body holds as many events as `expected`, then they must be exactly those."""
        async with asyncio.timeout(DEADLINE_S):
            while self.frames().count(b"\n\n") < len(expected):
                await self.read_chunk()
        assert parse_frames(self.frames()) == [(e.id, e.type, e.payload) for e in expected]

    def close(self) -> None:
        self.writer.close()


FRAME = re.compile(rb"id: ([0-9]+)\nevent: ([a-z_]+)\ndata: ([^\n]+)")


def parse_frames(body: bytes) -> list[tuple[int, str, object]]:
    """The events of a stream's body, each frame exactly `id`/`event`/`data` lines (a payload's keys may come
    in another order live, from Redis, than from the table's jsonb: the JSON is compared, not its bytes)."""
    frames = body.split(b"\n\n")
    assert frames[-1] == b"", "the body ends with a whole frame"
    parsed = []
    for frame in frames[:-1]:
        match = FRAME.fullmatch(frame)
        assert match is not None, frame
        parsed.append((int(match[1]), match[2].decode(), json.loads(match[3])))
    return parsed


@contextlib.asynccontextmanager
async def raw_streams(url: str, api_key: str, count: int, **options: int) -> AsyncIterator[list[RawStream]]:
    streams = await asyncio.gather(*(RawStream.open(url, api_key, **options) for _ in range(count)))
    try:
        yield list(streams)
    finally:
        for stream in streams:
            stream.close()


@contextlib.asynccontextmanager
async def publisher(settings: Settings) -> AsyncIterator[EventPublisher]:
    redis = Redis.from_url(settings.redis_url)
    try:
        yield EventPublisher(redis, settings.events_channel_prefix + "all")
    finally:
        await redis.aclose()


async def running_task(store: TaskStore, user_id: str, publish: EventPublisher) -> str:
    """A PROCESSING task driven through the store as a worker would (no queue: nothing else claims it)."""
    row, _ = await store.insert_task(task_spec(user_id))
    task_id = str(row["id"])
    inputs = [{"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 3}]
    await store.transition("mark_uploading", task_id, [inputs, False, ["CREATED", "UPLOADING"]], publish, user_id)
    await store.transition("mark_queued", task_id, [["UPLOADING"], None, None, None], publish, user_id)
    jobs = {task: job for task, job, _ in await store.dispatch_user(user_id, 100, {})}
    claim = await store.transition("claim_job", task_id, ["test-worker", jobs[task_id]], publish)
    assert claim.row is not None and claim.row["status"] == "PROCESSING"
    return task_id


async def logged_events(store: TaskStore, user_id: str) -> list[Event]:
    """Every event of the user in the log: what each of its streams opened before them must show."""
    logged = await store.user_events_after(user_id, 0, 100_000)
    assert logged, "the test wrote events"
    return logged


def hub_of(server: ApiServer) -> EventHub:
    assert server.server is not None
    hub: EventHub = server.server.config.app.state.hub
    return hub


def unlimited(settings: Settings, **updates: object) -> Settings:
    """The test settings without the request-rate limit: the tests open dozens of streams at once."""
    return settings.model_copy(update={"rate_limit_per_s": 0, **updates})


async def test_many_streams_get_every_event_once_in_order(
    settings: Settings, account: Account, store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """60 streams of one user, handed out 7 at a time (several slices per event), while three tasks report
    progress at once: every stream shows the user's log, each event once and in id order."""
    monkeypatch.setattr(events_module, "FANOUT_SLICE", 7)
    async with (
        serve_api(unlimited(settings)) as api,
        raw_streams(api.url, account.api_key, 60) as streams,
        publisher(settings) as publish,
    ):

        async def report(task_id: str) -> None:
            for step in range(15):
                assert await store.set_progress(task_id, step, "a", f"step {step}", publish)

        task_ids = [await running_task(store, account.user_id, publish) for _ in range(3)]
        await asyncio.gather(*(report(task_id) for task_id in task_ids))
        expected = await logged_events(store, account.user_id)
        await asyncio.gather(*(stream.read_until(expected) for stream in streams))


async def test_a_client_that_stops_reading_resumes_without_gap_or_repeat(
    settings: Settings, account: Account, store: TaskStore
) -> None:
    """A stream whose client reads nothing (a tiny TCP window) fills its buffer of 2 events and is dropped
    from live delivery; once the client reads again the stream re-reads the log: every event once, in order,
    while a stream that kept reading saw the same bytes."""
    async with serve_api(unlimited(settings, sse_buffer_events=2)) as server:
        hub = hub_of(server)
        async with (
            raw_streams(server.url, account.api_key, 1, receive_buffer=4096) as [slow],
            raw_streams(server.url, account.api_key, 1) as [reader],
            publisher(settings) as publish,
        ):
            expected_soon: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()

            async def keep_reading() -> None:  # until it has all the log holds (pings wake it each second)
                while not (expected_soon.done() and reader.frames().count(b"\n\n") >= len(expected_soon.result())):
                    await reader.read_chunk()

            reading = asyncio.create_task(keep_reading())
            task_id = await running_task(store, account.user_id, publish)
            message = "x" * 100_000  # big events fill the socket buffers sooner

            async def overflowed() -> bool | None:
                assert await store.set_progress(task_id, 1, "a", message, publish)
                return any(sub.overflowed for sub in hub.subscriptions(account.user_id)) or None

            await poll(overflowed, "the slow stream's buffer to overflow")
            for _ in range(5):  # and more after the drop: they come from the log too
                assert await store.set_progress(task_id, 2, "a", "after", publish)
            expected = await logged_events(store, account.user_id)
            expected_soon.set_result(expected)
            await slow.read_until(expected)
            await asyncio.wait_for(reading, DEADLINE_S)
            assert parse_frames(reader.frames()) == [(e.id, e.type, e.payload) for e in expected]


@pytest.mark.asyncio(loop_scope="session")
async def test_the_stream_routes_served_without_the_router_answer_as_routed_ones(
    api: ApiServer, client: httpx.AsyncClient, account: Account
) -> None:
    """service/api/app.STREAM_PATHS: the middleware calls their endpoints itself; errors, other methods, HEAD and
    the request metrics behave as through the router."""
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as anonymous:
        refused = await anonymous.get("/api/v1/events", headers={"X-Request-ID": "direct-401"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"
    assert refused.headers["x-request-id"] == "direct-401"

    unknown = await client.get(f"/api/v1/tasks/{uuid.uuid4()}/events")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "TASK_NOT_FOUND"

    wrong_method = await client.post("/api/v1/events")
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["allow"]

    head = await client.head("/api/v1/events")
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""

    async with client.stream("GET", "/api/v1/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["x-request-id"]

    async def counted() -> bool:
        text = (await client.get("/metrics")).text
        return 'route="/api/v1/events",status="401"' in text and 'route="/api/v1/events",status="200"' in text

    await poll(counted, "the direct routes' requests in the metrics")
