"""Catalog, caller, stats and operational routes: tools, me, stats, healthz, readyz, metrics, openapi."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from agents import registry
from service.api.http import JSON
from service.config import Settings
from service.errors import ServiceError
from service.models import iso_utc


async def list_tools(request: Request) -> JSON:
    await request.app.state.auth.authenticate(request)
    return JSON(request.app.state.catalog)


async def me(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await request.app.state.core.store.get_user(user.user_id)
    if row is None:
        raise ServiceError("UNAUTHORIZED", "Unknown API key.")
    return JSON({"user_id": user.user_id, "name": row["name"], "credits": row["credits"], "is_admin": row["is_admin"]})


async def stats(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    store = request.app.state.core.store
    body: dict[str, Any] = {"tasks_by_status": await store.counts_by_status(user.user_id)}
    if user.is_admin:
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
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSON:
    return JSON(request.app.state.openapi)


def catalog(settings: Settings) -> dict[str, Any]:
    return registry.catalog(diagnostics=settings.diagnostics)
