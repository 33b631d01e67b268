"""Event streams: Server-Sent Events per task and per user, and the same per-user events over a
WebSocket, all resumable from the last event id the client saw.

Each stream subscribes to the process's event hub FIRST, then replays what it missed from the
`task_events` table, then forwards live events, skipping ids it already sent. Events of one user
commit and publish in id order (TaskStore), so this gives every event once, in order, no gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocket

from service import lifecycle
from service.api.auth import authenticate_stream, user_from_token
from service.api.http import JSON
from service.api.tokens import make_token
from service.errors import ServiceError
from service.events import EventHub, Subscription
from service.models import iso_utc, task_view
from service.store import Event, TaskStore

REPLAY_PAGE = 1000


def _last_event_id(request: HTTPConnection) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ServiceError("VALIDATION_ERROR", "Last-Event-ID must be an event id this API sent.")
    return int(raw)


def _sse(event_id: int, event_type: str, payload: Any) -> ServerSentEvent:
    return ServerSentEvent(data=to_json(payload).decode(), event=event_type, id=str(event_id), sep="\n")


def _response(request: Request, stream: AsyncIterator[ServerSentEvent]) -> EventSourceResponse:
    ping = request.app.state.settings.sse_ping_s
    return EventSourceResponse(
        stream,
        ping=ping,
        sep="\n",
        ping_message_factory=lambda: ServerSentEvent(comment="ping", sep="\n"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class _Replayer:
    """Sends events from the table after `last_id`, then live events from the subscription."""

    def __init__(self, store: TaskStore, sub: Subscription, last_id: int, task_id: str | None) -> None:
        self.store = store
        self.sub = sub
        self.last_id = last_id
        self.task_id = task_id

    async def _from_table(self) -> list[Event]:
        if self.task_id is not None:
            return await self.store.task_events_after(self.task_id, self.last_id, REPLAY_PAGE)
        return await self.store.user_events_after(self.sub.user_id, self.last_id, REPLAY_PAGE)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            # Catch up from the durable log (at start, and whenever live delivery was interrupted).
            while True:
                self.sub.overflowed = False
                page = await self._from_table()
                for event in page:
                    self.last_id = event.id
                    yield event
                if len(page) < REPLAY_PAGE:
                    break
            while not self.sub.overflowed:
                live = await self.sub.get()
                if live is None:
                    break
                event = live
                if event.id <= self.last_id or (self.task_id is not None and event.task_id != self.task_id):
                    continue
                self.last_id = event.id
                yield event


async def task_events(request: Request) -> EventSourceResponse:
    user = await authenticate_stream(request)
    core = request.app.state.core
    task_id = request.path_params["task_id"]
    last_id = _last_event_id(request)
    hub: EventHub = request.app.state.hub
    sub = hub.subscribe(user.user_id)
    try:
        task = await lifecycle.get_task_view(core, user.user_id, task_id)
        snapshot: list[ServerSentEvent] = []
        if last_id is None:
            ids = await core.store.task_snapshot_event_ids(task_id)
            view = task_view(task)
            if ids["done_id"] is not None:
                snapshot = [_sse(ids["last_status_id"], "status", view), _sse(ids["done_id"], "done", view)]
            else:
                snapshot = [_sse(ids["last_id"] or 0, "status", view)]
            last_id = ids["last_id"] or 0
    except BaseException:
        sub.close()
        raise

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            for item in snapshot:
                yield item
            if any(item.event == "done" for item in snapshot):
                return
            async for event in _Replayer(core.store, sub, last_id, task_id).events():
                yield _sse(event.id, event.type, event.payload)
                if event.type == "done":
                    return
        finally:
            sub.close()

    return _response(request, stream())


async def user_events(request: Request) -> EventSourceResponse:
    user = await authenticate_stream(request)
    core = request.app.state.core
    last_id = _last_event_id(request)
    hub: EventHub = request.app.state.hub
    sub = hub.subscribe(user.user_id)
    if last_id is None:
        # A fresh connection follows from now on; the task list gives the current state.
        last_id = await core.store.latest_user_event_id(user.user_id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in _Replayer(core.store, sub, last_id, None).events():
                yield _sse(event.id, event.type, event.payload)
        finally:
            sub.close()

    return _response(request, stream())


async def events_token(request: Request) -> JSON:
    """A short-lived token for `?token=` on the stream routes (and nowhere else)."""
    user = await request.app.state.auth.authenticate(request)
    ttl = request.app.state.settings.events_token_ttl_s
    token, expires = make_token(request.app.state.token_key, user.user_id, ttl)
    expires_at = iso_utc(datetime.fromtimestamp(expires, UTC))
    return JSON({"token": token, "expires_at": expires_at, "expires_in": ttl}, status_code=201)


WS_UNAUTHORIZED = 4401
WS_FIRST_FRAME_WAIT_S = 1.0


async def user_events_ws(websocket: WebSocket) -> None:
    """`/api/v1/ws`: the caller's events as JSON text frames `{"id", "event", "data"}`, as on
    /api/v1/events. Resumes after `?last_event_id=N`, or after the id of a first frame
    `{"last_event_id": N}` sent within a second of connecting; otherwise starts from now."""
    await websocket.accept()
    try:
        token = websocket.query_params.get("token")
        if token is not None:
            user = await user_from_token(websocket, token)
        else:
            user = await websocket.app.state.auth.authenticate(websocket)
        last_id = _last_event_id(websocket)
    except ServiceError as exc:
        await websocket.close(code=WS_UNAUTHORIZED if exc.code == "UNAUTHORIZED" else 4400, reason=exc.message[:120])
        return
    core = websocket.app.state.core
    hub: EventHub = websocket.app.state.hub
    sub = hub.subscribe(user.user_id)
    try:
        if last_id is None:
            # "Now" is taken before waiting for an optional first frame: what happens meanwhile is sent.
            now = await core.store.latest_user_event_id(user.user_id)
            last_id = await _first_frame_last_id(websocket)
            if last_id is None:
                last_id = now
        sender = asyncio.create_task(_send_events(websocket, _Replayer(core.store, sub, last_id, None)))
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass  # nothing else is expected from the client; its frames are ignored
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
    finally:
        sub.close()


async def _first_frame_last_id(websocket: WebSocket) -> int | None:
    try:
        message = await asyncio.wait_for(websocket.receive_text(), WS_FIRST_FRAME_WAIT_S)
    except TimeoutError:
        return None
    try:
        value = json.loads(message).get("last_event_id")
    except (ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None


async def _send_events(websocket: WebSocket, replayer: _Replayer) -> None:
    async for event in replayer.events():
        await websocket.send_text(to_json({"id": event.id, "event": event.type, "data": event.payload}).decode())
