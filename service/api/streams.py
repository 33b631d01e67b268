"""Event streams: Server-Sent Events per task and per user, and the same per-user events over a
WebSocket, all resumable from the last event id the client saw.

Each stream subscribes to the process's event hub FIRST, then replays what it missed from the
`task_events` table, then forwards live events, skipping ids it already sent. Events of one user
commit and publish in id order (TaskStore), so this gives every event once, in order, no gap.

A live event is encoded once per process (service/events.py) and every stream writes those same bytes.
A client that falls more than `sse_buffer_events` events behind keeps its connection: its stream drops
the live events it holds and re-reads the table after the last event it sent (as after a lost Redis
subscription), so nothing is lost or repeated and the process holds no backlog for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as HttpToolsCycle

from service import lifecycle
from service.api.auth import authenticate_stream, user_from_token
from service.api.http import JSON
from service.api.tokens import make_token
from service.errors import ServiceError
from service.events import SSE_PING, EncodedEvent, EventHub, Subscription, sse_frame
from service.models import TaskStatus, iso_utc, task_view
from service.store import DATABASE_UNAVAILABLE, Event, TaskStore

log = logging.getLogger("agensium.streams")
REPLAY_PAGE = 1000
MAX_EVENT_ID = 2**63 - 1  # event ids are PostgreSQL bigints
_EVENT_ID = re.compile(r"[0-9]{1,19}")


def _bad_event_id() -> ServiceError:
    return ServiceError(
        "VALIDATION_ERROR", "Last-Event-ID must be an event id this API sent.", {"field": "last_event_id"}
    )


def parse_event_id(raw: object) -> int:
    """An event id a client sends back (header, query or WebSocket frame): a bigint of ASCII digits, or 422
    before any stream opens -- never an error from the database once it has."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise _bad_event_id()
    if isinstance(raw, str):
        if not _EVENT_ID.fullmatch(raw):
            raise _bad_event_id()
        raw = int(raw)
    if not 0 <= raw <= MAX_EVENT_ID:
        raise _bad_event_id()
    return raw


_HEADER_EVENT_ID = re.compile(r"[0-9]{1,18}")  # the header's documented pattern (ids stay far below 10**18)


def _last_event_id(request: HTTPConnection) -> int | None:
    """Where a stream resumes: the Last-Event-ID header, else `?last_event_id=`; each is checked when sent."""
    header = request.headers.get("last-event-id")
    query = request.query_params.get("last_event_id")
    from_query = parse_event_id(query) if query is not None else None
    if header is not None:
        if not _HEADER_EVENT_ID.fullmatch(header):
            raise _bad_event_id()
        return int(header)
    return from_query


SERVER_SEND = "agensium.server_send"
"""The scope key under which the request middleware leaves the server's own `send` for the stream routes
(service/api/app.py), whose `__self__` is uvicorn's request cycle: see `EventStream.write_live`."""


def _uvicorn_cycle(scope: Scope) -> HttpToolsCycle | None:
    """uvicorn's request cycle of this response (its httptools protocol, which `agensium api` runs) once its chunked
    body has started; None under another server or protocol."""
    cycle = getattr(scope.get(SERVER_SEND), "__self__", None)
    return cycle if isinstance(cycle, HttpToolsCycle) and getattr(cycle, "chunked_encoding", None) is True else None


class EventStream:
    """A `text/event-stream` response: the frames of `frames` as they come, and nothing else per stream but
    one task that notices the client leaving (which ends the subscription, so the frames end).

    Under uvicorn, a live event that finds the stream's task waiting for one is written to the connection by the
    hub itself (`write_live`): 10,000 streams then cost 10,000 socket writes, not also 10,000 task wake-ups, each
    through the generators, the middleware's `send` and uvicorn's."""

    HEADERS = [
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"connection", b"keep-alive"),
        (b"content-type", b"text/event-stream; charset=utf-8"),
    ]

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        sub: Subscription,
        replayer: _Replayer | None = None,
        ends_at_done: bool = False,
    ) -> None:
        self.frames = frames
        self.sub = sub
        self.replayer = replayer  # whose `last_id` a live write moves on; None: every frame comes from `frames`
        self.ends_at_done = ends_at_done  # a task's stream: its `done` (or deletion) goes through `frames`
        self.cycle: HttpToolsCycle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(self.HEADERS)})
            if scope["method"] == "HEAD":  # the headers of a GET, no stream
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            watcher = asyncio.create_task(self._until_disconnect(receive))
            if self.replayer is not None:
                self.cycle = _uvicorn_cycle(scope)
                if self.cycle is not None:
                    self.sub.writer = self
            try:
                async for chunk in self.frames:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                watcher.cancel()
        finally:
            self.sub.writer, self.cycle = None, None
            self.sub.close()
            with contextlib.suppress(Exception):
                await self.frames.aclose()

    def write_live(self, item: EncodedEvent) -> bool:
        """Called by the hub while this stream's task waits for live events with nothing else due: writes the
        event's chunk as uvicorn's `send` would (the bytes are shared by every stream) and moves the stream's last
        id on, as the task would have done. False leaves the event to the task: when the client reads too slowly
        (uvicorn then waits for the socket to drain) or is leaving, and for an event that may end a task's stream.
        It never raises: a failed write is the task's to meet, as before, not the hub's (every stream's)."""
        cycle, replayer, event = self.cycle, self.replayer, item.event
        assert cycle is not None and replayer is not None
        if self.ends_at_done and (event.type == "done" or event.payload.get("deleted")):
            return False
        if event.id <= replayer.last_id:
            return True  # sent from the table already (as `_Replayer._fresh` skips it)
        try:  # uvicorn's request cycle, as its httptools protocol keeps it (a release that changes it: the task)
            transport = cycle.transport
            if cycle.disconnected or cycle.flow.write_paused or cycle.response_complete or transport.is_closing():
                return False
            transport.write(item.sse_chunk)
        except Exception:  # noqa: BLE001 - the task's `send` meets the same and ends this stream alone
            return False
        replayer.last_id = event.id
        return True

    async def _until_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.sub.end()


def _joined(batch: list[EncodedEvent]) -> bytes:
    """One write for the events a stream has waiting (the shared bytes themselves when there is one)."""
    return batch[0].sse if len(batch) == 1 else b"".join(item.sse for item in batch)


class _Replayer:
    """Events from the table after `last_id`, then live events from the subscription, in batches; the
    table again whenever live delivery broke off (the subscription overflowed or Redis was lost)."""

    def __init__(self, store: TaskStore, sub: Subscription, last_id: int, task_id: str | None) -> None:
        self.store = store
        self.sub = sub
        self.last_id = last_id
        self.task_id = task_id

    async def _from_table(self) -> list[Event]:
        if self.task_id is not None:
            return await self.store.task_events_after(self.task_id, self.last_id, REPLAY_PAGE)
        return await self.store.user_events_after(self.sub.user_id, self.last_id, REPLAY_PAGE)

    def _fresh(self, items: list[EncodedEvent]) -> list[EncodedEvent]:
        """The live events this stream has not sent yet, its task's only for a task stream."""
        batch = []
        for item in items:
            event = item.event
            if event.id <= self.last_id or (self.task_id is not None and event.task_id != self.task_id):
                continue
            self.last_id = event.id
            batch.append(item)
        return batch

    async def batches(self) -> AsyncIterator[list[EncodedEvent]]:
        sub = self.sub
        while not sub.closed:
            # Catch up from the durable log (at start, and whenever live delivery was interrupted), page by page
            # while the client is there.
            while not sub.closed:
                sub.overflowed = False
                page = await self._from_table()
                if page:
                    self.last_id = page[-1].id
                    yield [EncodedEvent(event) for event in page]
                if len(page) < REPLAY_PAGE:
                    break
            while not (sub.overflowed or sub.closed):
                await sub.wait()
                batch = self._fresh(sub.take())
                if batch or sub.ping_due:
                    sub.ping_due = False
                    yield batch  # empty: a ping is due (the subscription's `ping_s`)


def _subscribe(request: HTTPConnection, user_id: str, kind: str = "sse", task_id: str | None = None) -> Subscription:
    """A subscription for a stream (of one task's events, with `task_id`); SSE ones ping every `sse_ping_s` (a
    WebSocket has its own pings)."""
    hub: EventHub = request.app.state.hub
    settings = request.app.state.settings
    ping_s = settings.sse_ping_s if kind == "sse" else None
    return hub.subscribe(user_id, kind, limit=settings.sse_buffer_events, ping_s=ping_s, task_id=task_id)


async def task_events(request: Request) -> EventStream | Response:
    user = await authenticate_stream(request)
    core = request.app.state.core
    task_id = request.path_params["task_id"]
    last_id = _last_event_id(request)
    sub = _subscribe(request, user.user_id, task_id=task_id)
    snapshot = b""
    finished = False
    try:
        task = await lifecycle.get_task_view(core, user.user_id, task_id)
        ids = await core.store.task_snapshot_event_ids(task_id)
        # Finished: its latest done follows its latest status (a retry's status comes after the old done).
        done_id = ids["done_id"] if ids["done_id"] is not None and ids["done_id"] > ids["last_status_id"] else None
        if last_id is None:
            view = task_view(task)
            finished = done_id is not None
            if done_id is not None:
                snapshot = sse_frame(ids["last_status_id"], "status", view) + sse_frame(done_id, "done", view)
            else:
                snapshot = sse_frame(ids["last_id"] or 0, "status", view)
            last_id = ids["last_id"] or 0
        elif done_id is not None and last_id >= done_id and task["status"] == TaskStatus.COMPLETED:
            # The client has the done of a task that cannot be retried: nothing follows. 204, not an empty 200, so that
            # a browser's EventSource stops reconnecting (HTML's rule). After a FAILED (CANCELLED, EXPIRED) task's
            # done, the stream waits for a retry's events (README).
            sub.close()
            return Response(status_code=204)
    except BaseException:
        sub.close()
        raise
    replayer = _Replayer(core.store, sub, last_id, task_id)

    async def frames() -> AsyncGenerator[bytes, None]:
        if snapshot:
            yield snapshot
        if finished:
            return
        async for batch in replayer.batches():
            if not batch:
                yield SSE_PING
                continue
            for end, item in enumerate(batch, 1):
                if await _ends_task_stream(core.store, item.event):
                    yield _joined(batch[:end])
                    return
            yield _joined(batch)

    return EventStream(frames(), sub, replayer, ends_at_done=True)


async def _ends_task_stream(store: TaskStore, event: Event) -> bool:
    if event.payload.get("deleted"):
        return True  # the task was deleted (TaskStore.delete_task): nothing follows
    return event.type == "done" and await _is_last_done(store, event)


async def _is_last_done(store: TaskStore, done: Event) -> bool:
    """Whether a `done` event ends its task's stream: it does unless the task was retried since, which its next
    event (the status of the task queued again) shows. A replay of a retried task so goes on through every
    attempt to the latest done. (A deleted task's last event is a status too, marked `deleted`.)"""
    following = await store.task_events_after(done.task_id, done.id, 1)
    return not following or following[0].type != "status" or bool(following[0].payload.get("deleted"))


async def user_events(request: Request) -> EventStream:
    user = await authenticate_stream(request)
    core = request.app.state.core
    last_id = _last_event_id(request)
    sub = _subscribe(request, user.user_id)
    if last_id is None:
        # A fresh connection follows from now on; the task list gives the current state.
        try:
            last_id = await core.store.latest_user_event_id(user.user_id)
        except BaseException:  # the database is away (503): the subscription must not outlive the request
            sub.close()
            raise

    replayer = _Replayer(core.store, sub, last_id, None)

    async def frames() -> AsyncGenerator[bytes, None]:
        async for batch in replayer.batches():
            yield _joined(batch) if batch else SSE_PING

    return EventStream(frames(), sub, replayer)


async def events_token(request: Request) -> JSON:
    """A short-lived token for `?token=` on the stream routes (and nowhere else)."""
    user = await request.app.state.auth.authenticate(request)
    ttl = request.app.state.settings.events_token_ttl_s
    token, expires = make_token(request.app.state.token_key, user.user_id, ttl)
    expires_at = iso_utc(datetime.fromtimestamp(expires, UTC))
    return JSON({"token": token, "expires_at": expires_at, "expires_in": ttl}, status_code=201)


WS_UNAUTHORIZED = 4401
WS_BAD_REQUEST = 4400
WS_TRY_AGAIN_LATER = 1013  # RFC 6455: a dependency is down
WS_INTERNAL_ERROR = 1011
WS_SERVICE_RESTART = 1012  # RFC 6455 registry: the server is restarting (its streams end on shutdown)
WS_RATE_LIMITED = 4429  # over the caller's request rate: reconnect after the reason's Retry-After
WS_CLOSE_CODES = {
    "UNAUTHORIZED": WS_UNAUTHORIZED,
    "SERVICE_UNAVAILABLE": WS_TRY_AGAIN_LATER,
    "RATE_LIMITED": WS_RATE_LIMITED,
}
WS_FIRST_FRAME_WAIT_S = 1.0
# What closes an event WebSocket with a reason: a refused request, or the database being away.
_REFUSALS: tuple[type[Exception], ...] = (ServiceError, *DATABASE_UNAVAILABLE)


async def user_events_ws(websocket: WebSocket) -> None:
    """`/api/v1/ws`: the caller's events as JSON text frames `{"id", "event", "data"}`, as on
    /api/v1/events. Resumes after `?last_event_id=N`, or after the id of a first frame
    `{"last_event_id": N}` sent within a second of connecting; otherwise starts from now.

    A refusal is a close frame with a reason, never a silent socket: 4401 for a missing, unknown or expired
    key or token, 4400 for a bad request (an event id that is not one), 4429 over the request rate, 1013 while a
    dependency is down."""
    await websocket.accept()
    try:
        token = websocket.query_params.get("token")
        if token is not None:
            user = await user_from_token(websocket, token)
        else:
            user = await websocket.app.state.auth.authenticate(websocket)
        last_id = _last_event_id(websocket)
    except _REFUSALS as exc:
        await _refuse(websocket, exc)
        return
    core = websocket.app.state.core
    sub = _subscribe(websocket, user.user_id, kind="websocket")
    try:
        if last_id is None:
            # "Now" is taken before waiting for an optional first frame: what happens meanwhile is sent.
            now = await core.store.latest_user_event_id(user.user_id)
            last_id = await _first_frame_last_id(websocket)
            if last_id is None:
                last_id = now
        await _follow(websocket, _Replayer(core.store, sub, last_id, None))
    except WebSocketDisconnect:
        pass
    except _REFUSALS as exc:
        await _refuse(websocket, exc)
    finally:
        sub.close()


async def _refuse(websocket: WebSocket, exc: BaseException) -> None:
    """Close with the code and reason of what went wrong (the reason fits a close frame's 123 bytes)."""
    if isinstance(exc, ServiceError):
        code = WS_CLOSE_CODES.get(exc.code, WS_BAD_REQUEST)
        reason = f"{exc.code}: {exc.message}"
    else:
        code, reason = WS_TRY_AGAIN_LATER, "SERVICE_UNAVAILABLE: a dependency is down; try again."
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.close(code=code, reason=reason.encode()[:123].decode(errors="ignore"))


async def _follow(websocket: WebSocket, replayer: _Replayer) -> None:
    """Send events until the client leaves; when sending fails (the database went away) close with its
    reason instead of leaving a socket that says nothing."""
    sender = asyncio.create_task(_send_events(websocket, replayer))
    receiver = asyncio.create_task(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    error = sender.exception() if sender in done and receiver not in done else None
    if sender in done and receiver not in done and error is None:  # the events ended: the server is shutting down
        with contextlib.suppress(Exception):
            await websocket.close(code=WS_SERVICE_RESTART, reason="The server is restarting; reconnect.")
        return
    if error is not None and not isinstance(error, WebSocketDisconnect):
        log.warning("event WebSocket stopped: %r", error)
        if isinstance(error, _REFUSALS):
            await _refuse(websocket, error)
        else:
            with contextlib.suppress(Exception):
                await websocket.close(code=WS_INTERNAL_ERROR, reason="INTERNAL_ERROR: the stream failed; reconnect.")


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass  # nothing else is expected from the client; its frames are ignored


async def _first_frame_last_id(websocket: WebSocket) -> int | None:
    """The id in a first frame `{"last_event_id": N}`; None when no frame comes in time or it names none.
    A frame naming an id that is not one is refused (ServiceError)."""
    try:
        message = await asyncio.wait_for(websocket.receive(), WS_FIRST_FRAME_WAIT_S)
    except TimeoutError:
        return None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    try:
        frame = json.loads(message.get("text") or message.get("bytes") or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(frame, dict) or frame.get("last_event_id") is None:
        return None
    return parse_event_id(frame["last_event_id"])


async def _send_events(websocket: WebSocket, replayer: _Replayer) -> None:
    async for batch in replayer.batches():
        for item in batch:
            await websocket.send_text(item.ws_text)
