"""The Starlette application: lifespan (pools and clients), routes, middleware, error handling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import meta, streams, tasks
from service.api.auth import Authenticator
from service.api.http import error_response
from service.api.openapi import ROUTES, build_openapi
from service.api.tokens import signing_key
from service.config import Settings
from service.errors import ServiceError
from service.events import EventHub, EventPublisher
from service.lifecycle import Core
from service.queueing import make_enqueue
from service.storage import Storage, StorageUnavailable
from service.store import DATABASE_UNAVAILABLE, TaskStore

log = logging.getLogger("agensium.api")

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
    ("post", "/api/v1/tasks/{task_id}/cancel"): tasks.cancel_task,
    ("post", "/api/v1/tasks/{task_id}/retry"): tasks.retry_task,
    ("get", "/api/v1/tools"): meta.list_tools,
    ("get", "/api/v1/me"): meta.me,
    ("get", "/api/v1/stats"): meta.stats,
    ("get", "/healthz"): meta.healthz,
    ("get", "/readyz"): meta.readyz,
    ("get", "/metrics"): meta.metrics,
    ("get", "/openapi.json"): meta.openapi,
}


WEB_DIR = Path(__file__).resolve().parent.parent / "web"


async def web_page(request: Request) -> FileResponse:
    """The browser page (service/web/index.html); its assets are under /static/."""
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def build_routes() -> list[BaseRoute]:
    """The routes OpenAPI documents (service/api/openapi.py ROUTES)."""
    by_path: dict[str, dict[str, Any]] = {}
    for doc in ROUTES:
        by_path.setdefault(doc.path, {})[doc.method] = ENDPOINTS[(doc.method, doc.path)]
    routes: list[BaseRoute] = []
    for path, methods in by_path.items():
        # One Route per method keeps a 405 answer for the others on the same path.
        for method, endpoint in methods.items():
            routes.append(Route(path, endpoint, methods=[method.upper()], name=f"{method} {path}"))
    return routes


def browser_routes() -> list[BaseRoute]:
    """What OpenAPI does not describe: the WebSocket event stream and the page with its assets."""
    return [
        WebSocketRoute("/api/v1/ws", streams.user_events_ws, name="ws /api/v1/ws"),
        Route("/", web_page, methods=["GET"], name="get /"),
        Mount("/static", StaticFiles(directory=WEB_DIR, check_dir=False), name="static"),
    ]


class RequestContextMiddleware:
    """X-Request-ID on every response (echoed when sent) and request metrics, as plain ASGI so
    streaming responses pass straight through."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        # labels() costs a few microseconds per call: keep the children per (method, route, status).
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method, path, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(method, path, str(status)), self.latency.labels(method, path))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
                break
        request_id = request_id or os.urandom(12).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:  # an unexpected error: one error body, still with the request id
            log.exception("unhandled error on %s (request %s)", scope.get("path"), request_id, exc_info=exc)
            if status_sent:
                raise
            response = error_response(ServiceError("INTERNAL_ERROR", "Unexpected server error; it has been logged."))
            await response(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            self._observe(scope["method"], getattr(route, "path", "unmatched"), status, time.perf_counter() - started)


async def _service_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "VALIDATION_ERROR")
    error = ServiceError(code, str(exc.detail))
    response = error_response(error)
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
    metrics_registry = CollectorRegistry()
    requests = Counter(
        "agensium_http_requests", "HTTP requests", ["method", "route", "status"], registry=metrics_registry
    )
    latency = Histogram(
        "agensium_http_request_seconds", "HTTP request latency", ["method", "route"], registry=metrics_registry
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await TaskStore.connect(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        redis = await create_pool(
            RedisSettings.from_dsn(settings.redis_url), default_queue_name=settings.arq_queue_name
        )
        async with Storage(settings) as storage:
            publish = EventPublisher(redis, settings.events_channel_prefix + "all")
            hub = EventHub(redis, settings.events_channel_prefix + "all")

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
            app.state.auth = Authenticator(store)
            app.state.token_key = signing_key(settings)
            app.state.catalog = meta.catalog(settings)
            app.state.openapi = build_openapi()
            app.state.metrics_registry = metrics_registry
            await hub.start()
            gc.freeze()  # start-up objects (catalog, schemas, modules) leave the GC's scans: shorter pauses
            try:
                yield
            finally:
                await hub.stop()
                await redis.aclose()
                await store.close()

    app = Starlette(
        routes=build_routes() + browser_routes(),
        lifespan=lifespan,
        exception_handlers={
            ServiceError: _service_error,
            HTTPException: _http_error,
            **dict.fromkeys(DATABASE_UNAVAILABLE, _unavailable),
            StorageUnavailable: _unavailable,
        },
    )
    app.add_middleware(RequestContextMiddleware, requests=requests, latency=latency)
    return app
