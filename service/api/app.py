"""The Starlette application: lifespan (pools and clients), routes, middleware, error handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from arq import create_pool
from arq.connections import RedisSettings
from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from service import logs
from service.api import account, meta, streams, tasks
from service.api.auth import Authenticator
from service.api.gc_policy import FreezingCollector
from service.api.http import error_response
from service.api.openapi import ROUTES, build_openapi
from service.api.tokens import signing_key
from service.config import Settings
from service.errors import ServiceError
from service.events import EventHub, EventPublisher
from service.lifecycle import Core
from service.queueing import make_enqueue
from service.ratelimit import RateLimiter
from service.storage import Storage, StorageUnavailable
from service.store import DATABASE_UNAVAILABLE, TaskStore, listen_user_changes

log = logging.getLogger("agensium.api")
access_log = logging.getLogger("agensium.access")

ENDPOINTS = {
    ("post", "/api/v1/tasks"): tasks.create_task,
    ("get", "/api/v1/tasks"): tasks.list_tasks,
    ("post", "/api/v1/tasks/{task_id}/upload-urls"): tasks.upload_urls,
    ("put", "/api/v1/tasks/{task_id}/inputs/{name}"): tasks.put_input,
    ("get", "/api/v1/tasks/{task_id}/inputs/{name}/parts"): tasks.input_parts,
    ("post", "/api/v1/tasks/{task_id}/inputs/{name}/complete"): tasks.complete_input,
    ("post", "/api/v1/events/token"): streams.events_token,
    ("post", "/api/v1/tasks/{task_id}/process"): tasks.process_task,
    ("get", "/api/v1/tasks/{task_id}"): tasks.get_task,
    ("delete", "/api/v1/tasks/{task_id}"): tasks.delete_task,
    ("get", "/api/v1/tasks/{task_id}/events"): streams.task_events,
    ("get", "/api/v1/events"): streams.user_events,
    ("get", "/api/v1/tasks/{task_id}/result"): tasks.task_result,
    ("get", "/api/v1/tasks/{task_id}/downloads"): tasks.task_downloads,
    ("post", "/api/v1/tasks/{task_id}/transform"): tasks.transform_task,
    ("get", "/api/v1/tasks/{task_id}/lineage"): tasks.task_lineage,
    ("post", "/api/v1/tasks/{task_id}/cancel"): tasks.cancel_task,
    ("post", "/api/v1/tasks/{task_id}/retry"): tasks.retry_task,
    ("get", "/api/v1/tools"): meta.list_tools,
    ("get", "/api/v1/me"): meta.me,
    ("get", "/api/v1/me/ledger"): account.ledger,
    ("get", "/api/v1/stats"): meta.stats,
    ("get", "/healthz"): meta.healthz,
    ("get", "/readyz"): meta.readyz,
    ("get", "/metrics"): meta.metrics,
    ("get", "/openapi.json"): meta.openapi,
}


STREAM_PATHS = ("/api/v1/events", "/api/v1/tasks/{task_id}/events")
"""Routes RequestContextMiddleware serves itself, without the router: their responses stay open for hours, and each
layer of Starlette's routing (the router, the route, request_response and its exception wrapper) would keep a
suspended frame and a closure per open stream, ~2.5 KB of an idle stream's ~18 KB."""

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
# How long uvicorn keeps an idle connection open: longer than clients keep theirs (httpx and browsers: 5 s or
# more), so that a client never sends a request on a connection the server is closing (a ReadError for it).
KEEP_ALIVE_S = 75


async def web_page(request: Request) -> FileResponse:
    """The browser page (service/web/index.html); its assets are under /static/."""
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def build_routes() -> list[BaseRoute]:
    """The routes OpenAPI documents (service/api/openapi.py ROUTES): one Route per path, so that a method
    the path does not serve is answered 405 with an `Allow` header naming every method it does."""
    by_path: dict[str, dict[str, Any]] = {}
    for doc in ROUTES:
        by_path.setdefault(doc.path, {})[doc.method.upper()] = ENDPOINTS[(doc.method, doc.path)]
    return [Route(path, _by_method(methods), methods=list(methods), name=path) for path, methods in by_path.items()]


def _by_method(endpoints: dict[str, Any]) -> Any:
    """One endpoint for the methods of a path (HEAD answers as GET, as Starlette does)."""
    if len(endpoints) == 1:
        return next(iter(endpoints.values()))

    async def endpoint(request: Request) -> Any:
        method = "GET" if request.method == "HEAD" else request.method
        return await endpoints[method](request)

    return endpoint


def browser_routes() -> list[BaseRoute]:
    """What OpenAPI does not describe: the WebSocket event stream and the page with its assets."""
    return [
        WebSocketRoute("/api/v1/ws", streams.user_events_ws, name="ws /api/v1/ws"),
        Route("/", web_page, methods=["GET"], name="get /"),
        Mount("/static", StaticFiles(directory=WEB_DIR, check_dir=False), name="static"),
    ]


class RequestContextMiddleware:
    """X-Request-ID on every response (echoed when sent), request metrics, one access log line per request, and
    the exception handlers (`handlers`, by exception class) for what escapes the routes (404, 405), as plain ASGI
    so streaming responses pass straight through. The request id is bound to every log line of the request
    (structlog contextvars; authentication adds the user id).

    It is the whole middleware stack of the API (see `Api`): Starlette's ServerErrorMiddleware and
    ExceptionMiddleware each wrapped every request and its `send` again for what this class does already (an
    unexpected error becomes one INTERNAL_ERROR body here; the routes' own errors are handled where they are
    raised, with the handlers it puts in the scope as ExceptionMiddleware did). The `direct` routes (the event
    streams, STREAM_PATHS) it calls itself for the methods they serve; their errors go to the same handlers."""

    def __init__(
        self,
        app: ASGIApp,
        requests: Counter,
        latency: Histogram,
        access_log: bool = True,
        handlers: Mapping[Any, ExceptionHandler] | None = None,
        direct: Sequence[Route] = (),
    ) -> None:
        self.app = app
        self._direct = tuple(direct)
        self.requests = requests
        self.latency = latency
        self.access_log = access_log
        # labels() costs a few microseconds per call: keep the children per (method, route, status).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # WebSockets keep Starlette's ExceptionMiddleware (it closes them on a WebSocketException).
        self._websocket = ExceptionMiddleware(app, handlers=dict(handlers or {}))
        self._handlers: dict[Any, Any] = dict(self._websocket._exception_handlers)
        # What request_response reads to handle a route's own errors (ExceptionMiddleware put the same).
        self._scope_handlers: tuple[dict[Any, Any], dict[int, Any]] = (self._handlers, {})
        self._write_access: Callable[[str], None] | None = None
        self._access_checked = False

    def _observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, path, str(status)), self.latency.labels(method, path))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
                break
        request_id = request_id or os.urandom(12).hex()
        state = scope.get("state")
        if state is None:
            scope["state"] = {"request_id": request_id}
        else:
            state["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            else:
                scope["starlette.exception_handlers"] = self._scope_handlers
                await self._http(scope, receive, send, request_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "user_id")

    async def _http(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        started = time.perf_counter()
        status = 500
        status_sent = False
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        try:
            route = self._direct_route(scope) if self._direct and scope["path"].endswith("/events") else None
            if route is None:
                await self.app(scope, receive, send_with_id)
            else:
                scope[streams.SERVER_SEND] = send  # an event stream writes its live events itself under uvicorn
                response = await route.endpoint(Request(scope, receive, send_with_id))
                await response(scope, receive, send_with_id)
        except Exception as exc:
            if status_sent:
                log.exception("unhandled error on %s (request %s)", scope.get("path"), request_id, exc_info=exc)
                raise
            response = await self._handled(scope, receive, send, exc, request_id)
            await response(scope, receive, send_with_id)
        finally:
            scope.pop(streams.SERVER_SEND, None)  # the server's request cycle holds the scope: no cycle back to it
            self._finish(scope, status, time.perf_counter() - started)

    def _direct_route(self, scope: Scope) -> Route | None:
        """The direct route serving this request (its path parameters put in the scope, as the router does)."""
        for route in self._direct:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                return route
        return None

    async def _handled(self, scope: Scope, receive: Receive, send: Send, exc: Exception, request_id: str) -> Any:
        """The response of an exception that escaped the routes: its handler's (a 404 or 405 of the router), or one
        INTERNAL_ERROR body for an unexpected error, logged."""
        for cls in type(exc).__mro__:
            handler = self._handlers.get(cls)
            if handler is not None:
                exc.__traceback__ = None  # a reused exception instance would pile up tracebacks
                return await handler(Request(scope, receive, send), exc)
        log.exception("unhandled error on %s (request %s)", scope.get("path"), request_id, exc_info=exc)
        return error_response(ServiceError("INTERNAL_ERROR", "Unexpected server error; it has been logged."))

    def _finish(self, scope: Scope, status: int, seconds: float) -> None:
        """The request's metrics and access line."""
        route = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        self._observe(method, route, status, seconds)
        if not self.access_log or not access_log.isEnabledFor(logging.INFO):
            return
        if not self._access_checked:  # the handlers are set up once the process serves: look at them once
            self._write_access, self._access_checked = logs.json_line_writer(access_log), True
        duration_ms = seconds * 1000
        if self._write_access is not None:
            self._write_access(logs.access_line(method, scope["path"], route, status, duration_ms))
            return
        access_log.info(
            "%s %s %d %.1f ms",
            method,
            scope["path"],
            status,
            duration_ms,
            extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
        )


class Api(Starlette):
    """The Starlette application with one middleware, RequestContextMiddleware, around the router."""

    def __init__(self, *, requests: Counter, latency: Histogram, access_log: bool, **options: Any) -> None:
        self._requests, self._latency, self._access_log = requests, latency, access_log
        super().__init__(**options)

    def build_middleware_stack(self) -> ASGIApp:
        streams = [r for r in self.router.routes if isinstance(r, Route) and r.path in STREAM_PATHS]
        assert len(streams) == len(STREAM_PATHS), "a stream route was renamed: update STREAM_PATHS"
        app: ASGIApp = RequestContextMiddleware(
            self.router,
            self._requests,
            self._latency,
            self._access_log,
            handlers=self.exception_handlers,
            direct=streams,
        )
        for cls, args, kwargs in reversed(self.user_middleware):  # any added with add_middleware, outside it
            app = cls(app, *args, **kwargs)
        return app


async def _service_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "VALIDATION_ERROR")
    error = ServiceError(code, str(exc.detail))
    response = error_response(error, headers=dict(exc.headers or {}))  # a 405 keeps its Allow header
    response.status_code = exc.status_code
    return response


async def _unavailable(request: Request, exc: Exception) -> Any:
    log.warning("dependency unavailable on %s: %r", request.url.path, exc)
    return error_response(
        ServiceError("SERVICE_UNAVAILABLE", "A dependency is unavailable; nothing was lost, try again."),
        headers={"Retry-After": "2"},
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = meta.ApiMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        token_key = signing_key(settings)  # no secret key, no start: before any connection is opened
        store = await TaskStore.connect(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        redis = await create_pool(
            RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.arq_queue_name
        )
        async with Storage(settings) as storage:
            publish = EventPublisher(redis, settings.events_channel_prefix + "all")
            hub = EventHub(redis, settings.events_channel_prefix + "all", publish_lag=metrics.publish_lag)
            limiter = RateLimiter(
                redis,
                settings.key_prefix,
                settings.rate_limit_per_s,
                settings.rate_limit_burst,
                settings.rate_limit_timeout_s,
                on_refused=metrics.rate_limited.inc,
            )

            # With Redis away `process` still answers: the task stays QUEUED in PostgreSQL until the
            # workers' reconciler enqueues it again.
            enqueue = make_enqueue(redis, settings, swallow_errors=True)

            async def control(message: str) -> None:
                await asyncio.wait_for(redis.publish(settings.control_channel, message), 1.0)

            core = Core(settings, store, storage, publish, enqueue, control)
            app.state.settings = settings
            app.state.core = core
            app.state.redis = redis
            app.state.hub = hub
            app.state.auth = Authenticator(store, ttl_s=settings.auth_cache_ttl_s, limiter=limiter)
            app.state.token_key = token_key
            app.state.catalog = meta.catalog(settings)
            app.state.openapi = build_openapi(diagnostics=settings.diagnostics)
            app.state.metrics = metrics
            await hub.start()
            # A rotated key or a disabled user is refused at once by every API process, not after the cache TTL.
            user_changes = asyncio.create_task(listen_user_changes(settings.database_url, app.state.auth.forget))
            # Start-up objects, and later whatever outlives a full collection (open streams), leave the collector's
            # scans: no full-heap pause in the middle of a fan-out.
            collector = FreezingCollector()
            collector.start()
            try:
                yield
            finally:
                collector.stop()
                user_changes.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await user_changes
                await hub.stop()
                await redis.aclose()
                await store.close()

    return Api(
        routes=build_routes() + browser_routes(),
        lifespan=lifespan,
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            **dict.fromkeys(DATABASE_UNAVAILABLE, _unavailable),
            StorageUnavailable: _unavailable,
        },
        requests=metrics.requests,
        latency=metrics.latency,
        access_log=settings.access_log,
    )
