"""Task routes of API.md: create, upload URLs, streamed inputs, process, status, result, downloads,
list, cancel, retry, delete. Each validates, calls one lifecycle operation and renders the result."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from service import lifecycle
from service.api.http import JSON, parse_body, query_int
from service.errors import ServiceError
from service.models import CompleteUploadRequest, CreateTaskRequest, TaskStatus, UploadUrlsRequest, task_view


async def create_task(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, CreateTaskRequest)
    key = request.headers.get("idempotency-key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ServiceError("VALIDATION_ERROR", "Idempotency-Key must be 1-200 characters.")
    row, created = await lifecycle.create_task(
        request.app.state.core,
        user.user_id,
        tool_id=body.tool_id,
        agents=body.agents,
        priority=body.priority,
        parameters=body.parameters,
        source_task_id=body.source_task_id,
        labels=body.labels,
        idempotency_key=key,
    )
    return JSON(task_view(row), status_code=201 if created else 200)


async def upload_urls(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    body = await parse_body(request, UploadUrlsRequest)
    _, uploads = await lifecycle.request_upload_urls(
        request.app.state.core, user.user_id, request.path_params["task_id"], body
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
    row = await lifecycle.process_task(request.app.state.core, user.user_id, request.path_params["task_id"])
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


def _encode_cursor(created_at: datetime, task_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), task_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, task_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(task_id)
    except (ValueError, TypeError):
        raise ServiceError("VALIDATION_ERROR", "cursor is not one this API returned.", {"field": "cursor"}) from None


async def list_tasks(request: Request) -> JSON:
    user = await request.app.state.auth.authenticate(request)
    params = request.query_params
    unknown = set(params) - {"status", "tool_id", "label", "limit", "cursor"}
    if unknown:
        raise ServiceError("VALIDATION_ERROR", f"Unknown query parameter(s): {', '.join(sorted(unknown))}.")
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
        after=_decode_cursor(cursor) if cursor else None,
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
