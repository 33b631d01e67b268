"""Catalog, caller, stats and operational routes: tools, me, stats, healthz, readyz, metrics, openapi."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from agents import registry
from service.api.auth import require_admin
from service.api.http import JSON
from service.config import Settings
from service.errors import ServiceError
from service.events import EventHub
from service.models import iso_utc
from service.store import TaskStore

log = logging.getLogger("agensium.api")


async def list_tools(request: Request) -> JSON:
    await request.app.state.auth.authenticate(request)
    return JSON(request.app.state.catalog)


async def me(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await request.app.state.core.store.get_user(user.user_id)
    if row is None:
        raise ServiceError("UNAUTHORIZED", "Unknown API key.")
    return JSON({"user_id": user.user_id, "name": row["name"], "credits": row["credits"], "is_admin": row["is_admin"]})


STATS_SCOPES = ("own", "global")


async def stats(request: Request) -> JSON:
    """The caller's counts (tasks by status, result-cache hits); with an admin key also the global figures.
    `?scope=own` asks for the caller's alone, `?scope=global` for the global figures, an admin's only: 403
    FORBIDDEN for anyone else."""
    user = await request.app.state.auth.authenticate(request)
    scope = request.query_params.get("scope")
    if scope is not None and scope not in STATS_SCOPES:
        raise ServiceError("VALIDATION_ERROR", "scope must be own or global.", {"field": "scope"})
    if scope == "global":
        require_admin(user)
    store = request.app.state.core.store
    body: dict[str, Any] = {
        "tasks_by_status": await store.counts_by_status(user.user_id),
        "cache_hits": await store.count_cache_hits(user.user_id),
    }
    if user.is_admin and scope != "own":
        settings = request.app.state.settings
        queued = await store.queued_by_priority()
        workers = [
            {
                "worker_id": w["worker_id"],
                "host": w["host"],
                "pid": w["pid"],
                "started_at": iso_utc(w["started_at"]),
                "last_heartbeat": iso_utc(w["last_seen_at"]),
                "running_tasks": list(w["running_tasks"]),
            }
            for w in await store.list_workers()
        ]
        body["global"] = {
            "tasks_by_status": await store.counts_by_status(None),
            "queued_by_priority": {p: queued.get(p, {}).get("queued", 0) for p in PRIORITIES},
            "waiting_for_user_cap_by_priority": {
                p: queued.get(p, {}).get("waiting_for_user_cap", 0) for p in PRIORITIES
            },
            **await store.processing_health(settings.stale_after_s),
            "workers": workers,
        }
    return JSON(body)


PRIORITIES = ("urgent", "high", "normal", "low")


async def healthz(request: Request) -> JSON:
    return JSON({"status": "ok"})


async def _check(name: str, probe: Any) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, 2.0)
        return name, "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return name, f"down: {type(exc).__name__}: {exc}"[:300]


async def readyz(request: Request) -> JSON:
    state = request.app.state
    checks = dict(
        await asyncio.gather(
            _check("database", state.core.store.ping()),
            _check("redis", state.redis.ping()),
            _check("object_store", state.core.storage.ping()),
        )
    )
    checks["event_hub"] = "ok" if state.hub.connected else "down: not subscribed"
    ready = all(v == "ok" for v in checks.values())
    return JSON({"status": "ready" if ready else "not_ready", "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    state = request.app.state
    api_metrics: ApiMetrics = state.metrics
    await api_metrics.refresh(state.core.store, state.hub, state.settings.metrics_db_refresh_s)
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)


# From an event's commit to its delivery by the API's event hub: milliseconds normally, seconds under load.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))
# A scrape waits at most this long for the database's gauges (a busy pool), then answers without them.
METRICS_DB_TIMEOUT_S = 2.0


class ApiMetrics:
    """The API process's Prometheus metrics (GET /metrics), in a registry of its own: a test process runs
    several apps. Task and queue gauges are read from PostgreSQL at most once per `metrics_db_refresh_s`
    (`refresh`: /metrics needs no key, so a scrape loop must not reach the database each time), the open
    streams from the event hub at each scrape; the task and agent durations are the workers' (worker/metrics.py)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("agensium_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram(
            "agensium_http_request_seconds", "HTTP request latency", ["method", "route"], registry=r
        )
        self.rate_limited = Counter(
            "agensium_rate_limited_requests", "Requests refused (429) over the caller's request rate", registry=r
        )
        self.cache_hits = Counter("agensium_cache_hits", "Tasks completed from the result cache", registry=r)
        self.tasks = Gauge("agensium_tasks", "Tasks by tool and status (all users)", ["tool_id", "status"], registry=r)
        self.queue_depth = Gauge("agensium_queue_depth", "QUEUED tasks per priority", ["priority"], registry=r)
        self.open_streams = Gauge(
            "agensium_open_streams", "Open event streams of this API process (SSE, WebSocket)", ["kind"], registry=r
        )
        self.publish_lag = Histogram(
            "agensium_event_publish_lag_seconds",
            "From an event's commit to its delivery by this API process's event hub",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        for priority in PRIORITIES:
            self.queue_depth.labels(priority)
        for kind in ("sse", "websocket"):
            self.open_streams.labels(kind)
        self.db_refreshes = 0  # reads of the database gauges so far (one per window, however many scrapes)
        self._db_lock = asyncio.Lock()
        self._db_read_at: float | None = None  # time.monotonic() of the last read, failed or not

    async def refresh(self, store: TaskStore, hub: EventHub, db_max_age_s: float) -> None:
        """The scrape-time gauges: the open streams now, the database's when older than `db_max_age_s`."""
        for kind, count in {"sse": 0, "websocket": 0, **hub.stream_counts()}.items():
            self.open_streams.labels(kind).set(count)
        if self._db_fresh(db_max_age_s):
            return
        async with self._db_lock:  # single flight: concurrent scrapes wait for one read, then reuse it
            if self._db_fresh(db_max_age_s):
                return
            self.db_refreshes += 1
            await self._read_db_gauges(store)
            self._db_read_at = time.monotonic()

    def _db_fresh(self, max_age_s: float) -> bool:
        return self._db_read_at is not None and time.monotonic() - self._db_read_at < max_age_s

    async def _read_db_gauges(self, store: TaskStore) -> None:
        """With PostgreSQL away or its pool busy the task and queue series are left out until the next read
        (unknown is not zero) and the rest is still served."""
        try:
            async with asyncio.timeout(METRICS_DB_TIMEOUT_S):
                tasks = await store.counts_by_tool_and_status()
                queued = await store.queued_by_priority()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the database
            log.warning("metrics: task counts unavailable: %r", exc)
            self.tasks.clear()
            self.queue_depth.clear()
            return
        self.tasks.clear()  # a tool/status pair with no task left disappears
        for tool_id, status, count in tasks:
            self.tasks.labels(tool_id, status).set(count)
        for priority in PRIORITIES:
            self.queue_depth.labels(priority).set(queued.get(priority, {}).get("queued", 0))


async def openapi(request: Request) -> JSON:
    return JSON(request.app.state.openapi)


def catalog(settings: Settings) -> dict[str, Any]:
    return registry.catalog(diagnostics=settings.diagnostics)
