"""Live events written by the hub itself (service/api/streams.py `EventStream.write_live`): a stream whose task
waits for events gets each one written to its connection at once, the bytes its task would have sent, in order,
and its task stays asleep; an event that may end a task's stream still goes through the task."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from service.api import streams
from service.config import Settings
from service.events import EncodedEvent, EventHub
from service.store import Event, TaskStore
from tests.conftest import Account, serve_api
from tests.service.test_sse_fanout import (
    RawStream,
    hub_of,
    logged_events,
    parse_frames,
    publisher,
    raw_streams,
    running_task,
    unlimited,
)
from tests.support import DEADLINE_S, poll

pytestmark = pytest.mark.asyncio(loop_scope="session")


class WriteLog:
    """What `EventStream.write_live` answered, by event type."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.written: list[str] = []
        self.declined: list[str] = []
        write_live = streams.EventStream.write_live

        def counted(stream: streams.EventStream, item: EncodedEvent) -> bool:
            done = write_live(stream, item)
            (self.written if done else self.declined).append(item.event.type)
            return done

        monkeypatch.setattr(streams.EventStream, "write_live", counted)


async def waiting(hub: EventHub, user_id: str, count: int) -> None:
    """Until `count` streams of the user wait for live events (past their start and table read)."""

    async def all_waiting() -> bool:
        subs = hub.subscriptions(user_id)
        return len(subs) == count and all(sub._idle() for sub in subs)

    await poll(all_waiting, f"{count} streams waiting for live events")


async def test_a_live_written_stream_gets_the_bytes_of_one_its_task_sends(
    settings: Settings, account: Account, store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two streams of one user, one writing live and one whose task sends every frame (as under another server):
    the same chunks, byte for byte, every event once and in order."""
    log = WriteLog(monkeypatch)
    async with serve_api(unlimited(settings)) as server, publisher(settings) as publish:
        hub = hub_of(server)
        async with raw_streams(server.url, account.api_key, 1) as [live]:
            await waiting(hub, account.user_id, 1)
            monkeypatch.setattr(streams, "_uvicorn_cycle", lambda scope: None)
            async with raw_streams(server.url, account.api_key, 1) as [sent]:
                await waiting(hub, account.user_id, 2)
                assert sorted(sub.writer is not None for sub in hub.subscriptions(account.user_id)) == [False, True]
                task_id = await running_task(store, account.user_id, publish)
                for step in range(1, 6):
                    assert await store.set_progress(task_id, step, "a", f"step {step} caf\u00e9", publish)
                expected = await logged_events(store, account.user_id)
                await asyncio.gather(live.read_until(expected), sent.read_until(expected))
                assert live.frames() == sent.frames()
    assert len(log.written) >= len(expected), "the live stream's events were written by the hub"
    assert not log.declined


async def _open_task_stream(url: str, api_key: str, task_id: str) -> RawStream:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = f"GET /api/v1/tasks/{task_id}/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n\r\n"
    writer.write(request.encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE_S)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return RawStream(reader, writer)


async def test_a_task_stream_writes_live_and_its_task_ends_it_at_done(
    settings: Settings, account: Account, store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task's stream: its snapshot, then the cancel's `status` written live, then the `done` that ends the
    stream sent by the stream's task (which looks whether the task was retried since), and the body's end."""
    log = WriteLog(monkeypatch)
    async with (
        serve_api(unlimited(settings)) as server,
        httpx.AsyncClient(base_url=server.url, headers=account.headers, timeout=30) as client,
    ):
        created = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})
        created.raise_for_status()
        task_id = created.json()["task_id"]
        stream = await _open_task_stream(server.url, account.api_key, task_id)
        try:
            await waiting(hub_of(server), account.user_id, 1)
            (await client.post(f"/api/v1/tasks/{task_id}/cancel")).raise_for_status()
            async with asyncio.timeout(DEADLINE_S):
                while True:  # to the body's last chunk
                    size = int((await stream.reader.readuntil(b"\r\n")).strip(), 16)
                    if size == 0:
                        assert await stream.reader.readexactly(2) == b"\r\n"
                        break
                    stream.body += await stream.reader.readexactly(size)
                    assert await stream.reader.readexactly(2) == b"\r\n"
        finally:
            stream.close()
    events = await store.task_events_after(task_id, 0, 100)
    frames = parse_frames(stream.frames())
    assert [(event_id, kind) for event_id, kind, _ in frames[1:]] == [(e.id, e.type) for e in events[-2:]]
    assert [kind for _, kind, _ in frames] == ["status", "status", "done"]
    assert log.written == ["status"] and log.declined == ["done"]


class FakeWriter:
    """A subscription's writer that takes every event."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def write_live(self, item: EncodedEvent) -> bool:
        self.ids.append(item.event.id)
        return True


async def test_the_hub_writes_only_to_a_stream_waiting_with_nothing_due(settings: Settings) -> None:
    """An event goes to the writer only while the stream's task waits and holds nothing: after an event it holds,
    or with a ping due, the next ones queue behind (their order kept) for the task."""
    hub = EventHub(Redis.from_url(settings.redis_url), "unused")  # not started: dispatch is called directly
    sub, writer = hub.subscribe("u"), FakeWriter()
    sub.writer = writer
    await hub.dispatch(Event(1, "t", "u", "progress", {}))
    assert writer.ids == [] and [item.event.id for item in sub.take()] == [1], "its task is not waiting"

    waiting = asyncio.create_task(sub.wait())
    await asyncio.sleep(0)  # the task is in `wait` now
    await hub.dispatch(Event(2, "t", "u", "progress", {}))
    assert writer.ids == [2] and not waiting.done(), "written; its task sleeps on"

    sub.ping_due = True
    await hub.dispatch(Event(3, "t", "u", "progress", {}))
    await hub.dispatch(Event(4, "t", "u", "progress", {}))
    assert writer.ids == [2] and [item.event.id for item in sub.pending] == [3, 4]
    await asyncio.wait_for(waiting, 5)


def _stream(task_stream: bool = False, **state: Any) -> tuple[streams.EventStream, list[bytes]]:
    """An EventStream on a fake uvicorn cycle (`state`: paused, disconnected, closing, write), `last_id` 10; returns
    it and what its transport got."""
    written: list[bytes] = []
    write = state.get("write", written.append)
    transport = SimpleNamespace(write=write, is_closing=lambda: state.get("closing", False))
    cycle = SimpleNamespace(
        disconnected=state.get("disconnected", False),
        response_complete=False,
        flow=SimpleNamespace(write_paused=state.get("paused", False)),
        transport=transport,
    )
    replayer = SimpleNamespace(last_id=10)
    stream = streams.EventStream(None, None, replayer, ends_at_done=task_stream)  # type: ignore[arg-type]
    stream.cycle = cycle  # type: ignore[assignment]
    return stream, written


async def test_write_live_writes_the_chunk_or_leaves_the_event_to_the_task() -> None:
    progress = EncodedEvent(Event(11, "t", "u", "progress", {"message": "caf\u00e9"}))
    stream, written = _stream()
    assert stream.write_live(progress) and written == [progress.sse_chunk]
    assert stream.replayer is not None and stream.replayer.last_id == 11
    assert progress.sse_chunk == b"%x\r\n" % len(progress.sse) + progress.sse + b"\r\n"
    assert stream.write_live(EncodedEvent(Event(9, "t", "u", "progress", {}))), "sent already: skipped"
    assert written == [progress.sse_chunk]

    for state in ({"paused": True}, {"disconnected": True}, {"closing": True}):
        stream, written = _stream(**state)
        assert not stream.write_live(progress) and written == [], state
        assert stream.replayer is not None and stream.replayer.last_id == 10

    done = EncodedEvent(Event(12, "t", "u", "done", {}))
    deleted = EncodedEvent(Event(12, "t", "u", "status", {"deleted": True}))
    stream, written = _stream(task_stream=True)
    assert not stream.write_live(done) and not stream.write_live(deleted) and written == []
    stream, written = _stream()
    assert stream.write_live(done) and written == [done.sse_chunk], "a user's stream does not end at a done"


async def test_a_failed_write_is_left_to_the_stream_task() -> None:
    """The hub writes to every stream: one connection's error must not reach it."""

    def refuse(data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

    stream, _ = _stream(write=refuse)
    assert not stream.write_live(EncodedEvent(Event(11, "t", "u", "progress", {})))
    assert stream.replayer is not None and stream.replayer.last_id == 10
