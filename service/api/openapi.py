"""OpenAPI 3.1 document built from the same pydantic models and route table the app serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service import models as m


@dataclass(frozen=True)
class RouteDoc:
    method: str
    path: str
    summary: str
    ok_status: int
    response: type[BaseModel] | None = None
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = (401,)
    auth: bool = True
    media_type: str = "application/json"
    parameters: list[dict[str, Any]] = field(default_factory=list)
    raw_body: str | None = None  # content type of a raw (non-JSON) body


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


STREAM_PARAMETERS = [
    _q("token", {"type": "string"}, "a token from POST /api/v1/events/token, for clients that cannot send headers"),
    _q("last_event_id", {"type": "integer"}, "resume after this event id (as the Last-Event-ID header does)"),
]


TASK_ERRORS = (401, 404)
ROUTES: list[RouteDoc] = [
    RouteDoc(
        "post",
        "/api/v1/tasks",
        "Create a task",
        201,
        m.Task,
        m.CreateTaskRequest,
        (401, 422),
        parameters=[{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
    ),
    RouteDoc(
        "get",
        "/api/v1/tasks",
        "List the caller's tasks, newest first",
        200,
        m.TaskList,
        None,
        (401, 422),
        parameters=[
            _q("status", {"type": "string"}, "comma-separated statuses"),
            _q("tool_id", {"type": "string"}, "tool id"),
            _q("label", {"type": "string"}, "name:value"),
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
            _q("cursor", {"type": "string"}, "opaque cursor from next_cursor"),
        ],
    ),
    RouteDoc(
        "post",
        "/api/v1/tasks/{task_id}/upload-urls",
        "Presigned upload URLs",
        200,
        m.UploadUrlsResponse,
        m.UploadUrlsRequest,
        (401, 404, 409, 413, 415, 422),
    ),
    RouteDoc(
        "put",
        "/api/v1/tasks/{task_id}/inputs/{name}",
        "Stream one input through the API",
        201,
        m.StoredInput,
        None,
        (401, 404, 409, 413, 415, 422),
        raw_body="application/octet-stream",
    ),
    RouteDoc(
        "get",
        "/api/v1/tasks/{task_id}/inputs/{name}/parts",
        "Parts the store has of a multipart upload (to resume it)",
        200,
        m.UploadedParts,
        None,
        (401, 404, 409, 422),
        parameters=[_q("upload_id", {"type": "string"}, "the multipart upload's id from upload-urls")],
    ),
    RouteDoc(
        "post",
        "/api/v1/tasks/{task_id}/inputs/{name}/complete",
        "Assemble a multipart upload from its parts",
        200,
        m.CompletedUpload,
        m.CompleteUploadRequest,
        (401, 404, 409, 422),
    ),
    RouteDoc(
        "post", "/api/v1/tasks/{task_id}/process", "Verify inputs and queue", 202, m.Task, None, (401, 404, 409, 422)
    ),
    RouteDoc("get", "/api/v1/tasks/{task_id}", "Task status", 200, m.Task, None, TASK_ERRORS),
    RouteDoc(
        "delete", "/api/v1/tasks/{task_id}", "Delete a terminal task and its files", 204, None, None, (401, 404, 409)
    ),
    RouteDoc(
        "get",
        "/api/v1/tasks/{task_id}/events",
        "Server-Sent Events of one task",
        200,
        None,
        None,
        TASK_ERRORS,
        media_type="text/event-stream",
        parameters=STREAM_PARAMETERS,
    ),
    RouteDoc(
        "get",
        "/api/v1/events",
        "Server-Sent Events of all the caller's tasks",
        200,
        None,
        None,
        (401,),
        media_type="text/event-stream",
        parameters=STREAM_PARAMETERS,
    ),
    RouteDoc("get", "/api/v1/tasks/{task_id}/result", "The task's JSON result", 200, None, None, (401, 404, 409)),
    RouteDoc(
        "get",
        "/api/v1/tasks/{task_id}/downloads",
        "Presigned download links",
        200,
        m.DownloadsResponse,
        None,
        TASK_ERRORS,
    ),
    RouteDoc("post", "/api/v1/tasks/{task_id}/cancel", "Cancel a task", 202, m.Task, None, (401, 404, 409)),
    RouteDoc(
        "post",
        "/api/v1/tasks/{task_id}/retry",
        "Re-queue a failed, cancelled or expired task",
        202,
        m.Task,
        None,
        (401, 404, 409, 422),
    ),
    RouteDoc(
        "post",
        "/api/v1/events/token",
        "A short-lived token for ?token= on the event streams (EventSource and WebSocket send no headers)",
        201,
        m.EventsToken,
        None,
        (401,),
    ),
    RouteDoc("get", "/api/v1/tools", "The tool catalog", 200, None, None, (401,)),
    RouteDoc("get", "/api/v1/me", "The caller", 200, m.Me, None, (401,)),
    RouteDoc("get", "/api/v1/stats", "Task counts; global figures for admins", 200, None, None, (401,)),
    RouteDoc("get", "/healthz", "Liveness", 200, None, None, (), auth=False),
    RouteDoc("get", "/readyz", "Readiness of database, Redis and object store", 200, None, None, (503,), auth=False),
    RouteDoc("get", "/metrics", "Prometheus metrics", 200, None, None, (), auth=False, media_type="text/plain"),
    RouteDoc("get", "/openapi.json", "This document", 200, None, None, (), auth=False),
]


def build_openapi(version: str = "0.1.0") -> dict[str, Any]:
    named: list[type[BaseModel]] = [
        m.Task,
        m.TaskList,
        m.CreateTaskRequest,
        m.UploadUrlsRequest,
        m.UploadUrlsResponse,
        m.StoredInput,
        m.UploadedParts,
        m.CompletedUpload,
        m.CompleteUploadRequest,
        m.EventsToken,
        m.DownloadsResponse,
        m.Me,
        m.ErrorBody,
    ]
    _, defs = models_json_schema(
        [(model, "validation") for model in named], ref_template="#/components/schemas/{model}"
    )
    schemas = defs.get("$defs", {})
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    paths: dict[str, Any] = {}
    for r in ROUTES:
        operation_id = re.sub(r"[^A-Za-z0-9]+", "_", f"{r.method}_{r.path}").strip("_")
        op: dict[str, Any] = {"summary": r.summary, "operationId": operation_id}
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in ("task_id", "name")
            if "{" + p + "}" in r.path
        ]
        op["parameters"] = params + r.parameters
        if r.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{r.request.__name__}"}}},
            }
        elif r.raw_body:
            op["requestBody"] = {
                "required": True,
                "content": {r.raw_body: {"schema": {"type": "string", "format": "binary"}}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if r.ok_status != 204:
            schema: dict[str, Any] = (
                {"$ref": f"#/components/schemas/{r.response.__name__}"}
                if r.response
                else ({"type": "string"} if r.media_type != "application/json" else {"type": "object"})
            )
            ok["content"] = {r.media_type: {"schema": schema}}
        responses: dict[str, Any] = {str(r.ok_status): ok}
        for status in sorted({*r.errors, 500, 503} if r.auth else set(r.errors)):
            responses[str(status)] = {"description": "Error", "content": {"application/json": {"schema": error_ref}}}
        op["responses"] = responses
        if r.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Agensium",
            "version": version,
            "description": "Tracked, resumable background data tasks (see API.md).",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
