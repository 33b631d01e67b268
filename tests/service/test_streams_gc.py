"""The API's garbage collector policy (service/api/gc_policy.py): what outlives a full collection is frozen, so a
fan-out to thousands of open streams never waits for a walk over all their objects. What it must keep: a closed
stream's objects are freed all the same (by reference counting: nothing of a stream waits for the cycle
collector), and cyclic garbage among frozen objects is collected once the heap has grown enough."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import socket
import sys
import threading
import weakref
from collections import Counter
from collections.abc import AsyncIterator

import pytest
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as HttpToolsCycle

from service.api import streams
from service.api.gc_policy import FreezingCollector, resident_bytes
from service.config import Settings
from service.events import Subscription
from service.store import TaskStore
from tests.conftest import Account, ApiServer, serve_api
from tests.service.test_sse_fanout import hub_of, publisher, running_task, unlimited
from tests.support import DEADLINE_S, poll

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Node:
    """A container that can hold itself: a reference cycle."""

    def __init__(self) -> None:
        self.self: Node | None = None


async def test_a_full_collection_freezes_its_survivors_and_stop_hands_them_back() -> None:
    collector = FreezingCollector()
    collector.start()
    try:
        assert collector.complete_collections == 1, "start-up's objects are collected once, then frozen"
        survivors = [[index] for index in range(5000)]  # tracked containers, alive through the collection
        frozen = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() >= frozen + len(survivors)
        assert all(not gc.is_finalized(item) for item in survivors)
    finally:
        collector.stop()
    assert gc.get_freeze_count() == 0, "the collector's ordinary care again"
    assert collector._after_collection not in gc.callbacks


async def test_frozen_cyclic_garbage_is_collected_once_the_heap_reaches_the_threshold() -> None:
    """A cycle that became garbage after it was frozen outlives ordinary collections; the complete collection that
    the heap's growth calls for frees it."""
    # no heap is that large: none yet
    collector = FreezingCollector(growth=0, min_complete_at=sys.maxsize, min_complete_resident=sys.maxsize)
    collector.start()
    try:
        node = Node()
        node.self = node
        alive = weakref.ref(node)
        gc.collect()  # the node survives it: frozen
        del node
        gc.collect()
        await asyncio.sleep(0)
        assert alive() is not None, "frozen: no ordinary collection looks at it"
        assert collector.complete_collections == 1

        collector.min_complete_at = sys.getallocatedblocks() // 2  # the heap has grown past the threshold
        gc.collect()

        async def freed() -> bool:
            return alive() is None

        await poll(freed, "the complete collection to free the frozen cycle")
        assert collector.complete_collections == 2
        assert collector.reference_blocks > 0
    finally:
        collector.stop()


async def test_frozen_cyclic_garbage_holding_a_large_buffer_is_collected_once_resident_memory_doubles() -> None:
    """A cycle holding one large buffer barely moves the block count: resident memory calls for the collection."""
    collector = FreezingCollector(growth=0, min_complete_at=sys.maxsize, min_complete_resident=sys.maxsize)
    collector.start()
    try:
        node = Node()
        node.self = node
        node.buffer = bytearray(64 * 1024**2)  # type: ignore[attr-defined]
        node.buffer[::4096] = b"x" * len(node.buffer[::4096])  # type: ignore[attr-defined]  # resident
        alive = weakref.ref(node)
        gc.collect()  # frozen
        del node
        gc.collect()
        assert alive() is not None and collector.complete_collections == 1

        collector.min_complete_resident = resident_bytes() // 2
        gc.collect()

        async def freed() -> bool:
            return alive() is None

        await poll(freed, "the complete collection to free the frozen cycle and its buffer")
        assert collector.complete_collections == 2 and collector.reference_resident > 0
    finally:
        collector.stop()


async def test_a_collection_scheduled_before_stop_does_not_run_after_it() -> None:
    collector = FreezingCollector(growth=0, min_complete_at=0)  # every full collection calls for a complete one
    collector.start()
    gc.collect()  # schedules one on the loop
    assert collector._scheduled
    collector.stop()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert collector.complete_collections == 1 and gc.get_freeze_count() == 0


async def test_the_threshold_follows_the_heap_down() -> None:
    """Twice the heap after the last complete collection, or after its low point since (a heap that shrank
    cannot hold twice its old size in garbage before a complete collection)."""
    collector = FreezingCollector(growth=2.0, min_complete_at=10)
    collector.reference_blocks = 1000
    assert collector.complete_at == 2000
    collector.reference_blocks = 3
    assert collector.complete_at == 10


async def _open_plain_stream(url: str, api_key: str) -> socket.socket:
    """A user-wide stream on a bare socket (no client-side asyncio objects to hold on to), past its headers."""
    host, port = url.removeprefix("http://").split(":")
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, int(port)))
    request = f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n\r\n"
    await loop.sock_sendall(sock, request.encode())
    head = b""
    async with asyncio.timeout(DEADLINE_S):
        while b"\r\n\r\n" not in head:
            head += await loop.sock_recv(sock, 65536)
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock


async def _read_until(sock: socket.socket, marker: bytes) -> None:
    loop, body = asyncio.get_running_loop(), b""
    async with asyncio.timeout(DEADLINE_S):
        while marker not in body:
            body += await loop.sock_recv(sock, 65536)


def stream_objects(server: ApiServer) -> Counter[str]:
    """The objects of `server`'s streams and connections among all the collector tracks, frozen ones included
    (they are unfrozen to be seen; the policy freezes what survives its next full collection again)."""
    assert server.server is not None
    state, hub = server.server.server_state, hub_of(server)
    host, port = server.url.removeprefix("http://").split(":")
    gc.unfreeze()
    found: Counter[str] = Counter()
    for obj in gc.get_objects():
        if isinstance(obj, HttpToolsProtocol) and obj.server_state is state:
            found["uvicorn protocol"] += 1
        elif isinstance(obj, HttpToolsCycle) and obj.scope.get("server") == (host, int(port)):
            found["uvicorn request cycle"] += 1
        elif isinstance(obj, Subscription) and obj.hub is hub:
            found["subscription"] += 1
        elif isinstance(obj, streams.EventStream) and obj.sub.hub is hub:
            found["event stream"] += 1
    return found


@contextlib.asynccontextmanager
async def api_on_uvloop(settings: Settings) -> AsyncIterator[ApiServer]:
    """The real API served as `agensium api` serves it, by uvicorn on uvloop (asyncio's own socket transports hold
    a bound method of themselves: each closed connection is a cycle there), in a thread with its own loop."""
    started: concurrent.futures.Future[tuple[ApiServer, asyncio.AbstractEventLoop, asyncio.Event]]
    started = concurrent.futures.Future()

    async def serve() -> None:
        stop = asyncio.Event()
        async with serve_api(settings) as server:
            started.set_result((server, asyncio.get_running_loop(), stop))
            await stop.wait()

    def run() -> None:
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve())
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    thread = threading.Thread(target=run, name="api-on-uvloop")
    thread.start()
    try:
        server, loop, stop = await asyncio.wrap_future(started)
        try:
            yield server
        finally:
            loop.call_soon_threadsafe(stop.set)
    finally:
        await asyncio.to_thread(thread.join)


async def test_closed_streams_leave_nothing_frozen_behind(
    settings: Settings, account: Account, store: TaskStore
) -> None:
    """200 streams are frozen by a full collection while open (~75 objects each: uvicorn's connection, the
    stream's tasks and generators) and get an event; once their clients left, none of their objects is left,
    frozen or not, before any complete collection: a closed stream's objects go by reference counting."""
    count = 200
    async with api_on_uvloop(unlimited(settings)) as server, publisher(settings) as publish:
        hub, uvicorn_server = hub_of(server), server.server
        assert uvicorn_server is not None
        task_id = await running_task(store, account.user_id, publish)
        socks = [await _open_plain_stream(server.url, account.api_key) for _ in range(count)]
        try:
            assert await store.set_progress(task_id, 1, "a", "step 1", publish)
            await asyncio.gather(*(_read_until(sock, b"step 1") for sock in socks))
            frozen = gc.get_freeze_count()
            gc.collect()  # a full collection while they are open: the policy freezes them
            assert gc.get_freeze_count() - frozen > 50 * count, "the open streams' objects were frozen"
            assert stream_objects(server) == dict.fromkeys(
                ("uvicorn protocol", "uvicorn request cycle", "subscription", "event stream"), count
            )
        finally:
            for sock in socks:
                sock.close()
        gc.collect()  # they are frozen again while they close

        async def all_gone() -> bool:
            return hub.subscriber_count == 0 and not uvicorn_server.server_state.connections

        await poll(all_gone, "the server to see every client leave")
        assert stream_objects(server) == {}
