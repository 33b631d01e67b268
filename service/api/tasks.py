"""Task routes of API.md: create, upload URLs, streamed inputs, process, status, result, downloads,
list, cancel, retry, delete, and the dataset versions' transform and lineage. Each validates, calls one
lifecycle operation and renders the result."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from service import lifecycle
from service.api.http import JSON, bad_cursor, parse_body, query_int, reject_nul, reject_unknown_params
from service.errors import ServiceError
from service.models import (
    CompleteUploadRequest,
    CreateTaskRequest,
    TaskStatus,
    TransformRequest,
    UploadUrlsRequest,
    is_upload_id,
    task_view,
)


async def create_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, CreateTaskRequest)
    _check_inline_parameters(body.parameters, request.app.state.settings.max_parameters_bytes)
    create: dict[str, Any] = {
        "tool_id": body.tool_id,
        "agents": body.agents,
        "priority": body.priority,
        "parameters": body.parameters,
        "source_task_id": body.source_task_id,
        "labels": body.labels,
        "idempotency_key": _idempotency_key(request),
    }
    core = request.app.state.core
    if body.process:
        row, created = await lifecycle.create_and_process(core, user.user_id, use_cache=_use_cache(request), **create)
        if created:
            _count_cache_hit(request, row)
    else:
        row, created = await lifecycle.create_task(core, user.user_id, **create)
    return JSON(task_view(row), status_code=201 if created else 200)


def _use_cache(request: Request) -> bool:
    """False when the request says `Cache-Control: no-cache`: run the task even if the result cache holds it."""
    directives = request.headers.get("cache-control", "").lower().split(",")
    return "no-cache" not in {directive.strip() for directive in directives}


def _count_cache_hit(request: Request, row: Any) -> None:
    if row["cached"] and row["status"] == TaskStatus.COMPLETED:
        request.app.state.metrics.cache_hits.inc()


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ServiceError("VALIDATION_ERROR", "Idempotency-Key must be 1-200 characters.")
    return key


async def transform_task(request: Request) -> JSON:
    """A transform-my-data task on this task's dataset version, queued: 202, or 200 with the same task for an
    Idempotency-Key replay (as create answers one)."""
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, TransformRequest)
    transformer = body.transformer_parameters()
    _check_inline_parameters(transformer, request.app.state.settings.max_parameters_bytes)
    row, created = await lifecycle.transform_task(
        request.app.state.core,
        user.user_id,
        request.path_params["task_id"],
        transformer,
        priority=body.priority,
        labels=body.labels,
        idempotency_key=_idempotency_key(request),
    )
    return JSON(task_view(row), status_code=202 if created else 200)


async def task_lineage(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    return JSON(await lifecycle.task_lineage(request.app.state.core, user.user_id, request.path_params["task_id"]))


def _check_inline_parameters(parameters: dict[str, Any] | None, limit: int) -> None:
    """Inline parameters count against the same limit as an uploaded parameters.json (their JSON size)."""
    size = len(to_json(parameters)) if parameters else 0
    if size > limit:
        raise ServiceError(
            "INPUT_TOO_LARGE",
            f"parameters are {size} bytes as JSON; the limit is {limit}.",
            {"name": "parameters", "limit": limit},
        )


PART_URLS_PER_REQUEST = 50  # an upload-urls call counts as one request more per this many part URLs it signs


async def upload_urls(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, UploadUrlsRequest)
    auth = request.app.state.auth

    async def admit_parts(parts: int) -> None:  # signing part URLs is CPU: they count against the request rate
        await auth.charge(user, parts // PART_URLS_PER_REQUEST)

    _, uploads = await lifecycle.request_upload_urls(
        request.app.state.core, user.user_id, request.path_params["task_id"], body, admit_parts
    )
    return JSON({"uploads": uploads})


async def put_input(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    length = request.headers.get("content-length")
    stored = await lifecycle.stream_input(
        request.app.state.core,
        user.user_id,
        request.path_params["task_id"],
        request.path_params["name"],
        request.headers.get("content-type", "application/octet-stream"),
        int(length) if length and length.isdigit() else None,
        request.stream(),
    )
    return JSON(stored, status_code=201)


async def process_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await lifecycle.process_task(
        request.app.state.core, user.user_id, request.path_params["task_id"], use_cache=_use_cache(request)
    )
    _count_cache_hit(request, row)
    return JSON(task_view(row), status_code=202)


async def get_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await lifecycle.get_task_view(request.app.state.core, user.user_id, request.path_params["task_id"])
    return JSON(task_view(row))


async def task_result(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    return JSON(await lifecycle.task_result(request.app.state.core, user.user_id, request.path_params["task_id"]))


async def task_downloads(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    files = await lifecycle.task_downloads(request.app.state.core, user.user_id, request.path_params["task_id"])
    return JSON({"files": files})


TASK_CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{32}$"  # OpenAPI documents it: every string it admits is a cursor
_TASK_CURSOR = re.compile(TASK_CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(created_at: datetime, task_id: str) -> str:
    """The last task of a page: its creation time (microseconds since 1970) and id."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{uuid.UUID(task_id).hex}"


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, task id) of the last task of the previous page; anything else is a 422, never a query."""
    match = _TASK_CURSOR.fullmatch(cursor)
    if match is None:
        raise bad_cursor()
    micros, task_hex = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), str(uuid.UUID(task_hex))


async def list_tasks(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    params = request.query_params
    reject_unknown_params(request, {"status", "tool_id", "label", "limit", "cursor"})
    reject_nul({name: params.getlist(name) for name in params})
    statuses = [s for value in params.getlist("status") for s in value.split(",") if s] or None
    if statuses and not set(statuses) <= set(TaskStatus):
        raise ServiceError("VALIDATION_ERROR", f"status must be among {[s.value for s in TaskStatus]}.")
    labels: dict[str, str] = {}
    for label in params.getlist("label"):
        name, sep, value = label.partition(":")
        if not sep or not name:
            raise ServiceError("VALIDATION_ERROR", "label filters look like label=name:value.")
        labels[name] = value
    limit = query_int(request, "limit", 50, 1, 200)
    cursor = params.get("cursor")
    rows = await request.app.state.core.store.list_tasks(
        user.user_id,
        statuses=statuses,
        tool_id=params.get("tool_id"),
        labels=labels or None,
        after=_decode_cursor(cursor) if cursor is not None else None,
        limit=limit + 1,
    )
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = _encode_cursor(last["created_at"], str(last["id"])) if last is not None else None
    return JSON({"items": [task_view(r) for r in rows[:limit]], "next_cursor": next_cursor})


async def cancel_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await lifecycle.cancel_task(request.app.state.core, user.user_id, request.path_params["task_id"])
    return JSON(task_view(row), status_code=202)


async def retry_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    row = await lifecycle.retry_task(request.app.state.core, user.user_id, request.path_params["task_id"])
    return JSON(task_view(row), status_code=202)


async def delete_task(request: Request) -> Response:
    user = await request.app.state.auth.authenticate(request)
    await lifecycle.delete_task(request.app.state.core, user.user_id, request.path_params["task_id"])
    return Response(status_code=204)


async def input_parts(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    upload_id = request.query_params.get("upload_id")
    if not upload_id:
        raise ServiceError("VALIDATION_ERROR", "Pass the multipart upload's id as ?upload_id=.")
    if not is_upload_id(upload_id):
        raise ServiceError("VALIDATION_ERROR", "upload_id is not one upload-urls returned.", {"field": "upload_id"})
    parts = await lifecycle.uploaded_parts(
        request.app.state.core, user.user_id, request.path_params["task_id"], request.path_params["name"], upload_id
    )
    return JSON({"parts": parts})


async def complete_input(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, CompleteUploadRequest)
    stored = await lifecycle.complete_upload(
        request.app.state.core,
        user.user_id,
        request.path_params["task_id"],
        request.path_params["name"],
        body.upload_id,
        [(p.part_number, p.etag) for p in body.parts],
    )
    return JSON(stored)
