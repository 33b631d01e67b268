"""OpenAPI 3.1 document built from the same pydantic models and route table the app serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agents import registry
from agents.params.inputs import INPUTS_KEY, InputOptions
from service import models as m
from service.api.account import LEDGER_CURSOR_PATTERN
from service.api.tasks import TASK_CURSOR_PATTERN


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
    description: str | None = None
    replay_ok: bool = False  # an Idempotency-Key replay answers 200 with the same task
    no_content: str | None = None  # when the route may also answer 204: why


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


INT64_MAX = 2**63 - 1
STREAM_PARAMETERS = [
    _q("token", {"type": "string"}, "a token from POST /api/v1/events/token, for clients that cannot send headers"),
    _q(
        "last_event_id",
        {"type": "integer", "minimum": 0, "maximum": INT64_MAX},
        "resume after this event id (as the Last-Event-ID header does)",
    ),
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
        "description": "resume after this event id: every later event is sent, in order, none twice",
    },
]
EVENT_STREAM_FORMAT = (
    "Server-Sent Events (text/event-stream). Each event is `id: <integer, increasing per stream>`, "
    "`event: status|progress|done` and one `data:` line of JSON: `status` and `done` carry the whole task "
    "object (components/schemas/Task), `progress` carries {task_id, progress, current_agent, message}. "
    "A comment line `: ping` is sent at least every 15 s. The per-task stream starts with the current task as a "
    "`status` event and ends after the task's last `done` event. Deleting a task sends a last `status` event of "
    'it with `"deleted": true` (and `message` "Deleted"), replayed like any other; a per-task stream ends with it.'
)

# One event of the stream, as its fields arrive.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": EVENT_STREAM_FORMAT,
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"enum": ["status", "progress", "done"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["id", "event", "data"],
}

_DATA_EXTENSIONS = ", ".join(suffix.lstrip(".") for suffix in registry.DATA_CONTENT_TYPES)
INPUT_NAMES = (
    "An input's role comes from its name: `primary.<ext>` (every tool; required, unless the task takes its primary "
    "from `source_task_id`), `baseline.<ext>` (profile-my-data), `source_<label>.<ext>` (master-my-data: up to "
    f"{registry.MAX_SOURCES} more sources, each label once, of lowercase letters, digits, _ and -, e.g. "
    "`source_crm.csv`) and `schema.json` or `schema.yaml` (master-my-data: the data contract); `<ext>` is one of "
    f"{_DATA_EXTENSIONS}. `parameters.json` is declared with `has_parameters`. A name the task's tool does not "
    "take, or two files of one role or source label, is `422 INVALID_FILE_NAME`; a content type the name does "
    f"not accept `415 UNSUPPORTED_MEDIA_TYPE`. At most {m.MAX_UPLOAD_FILES} files per call."
)

TRANSFORM = (
    "Seed 003's chat in one call: a `transform-my-data` task whose primary input is this task's dataset version "
    "(its main data output: cleaned_data.csv, master_data.csv, transformed_data.csv or search_result.csv; for a "
    "task without one, its own primary input), with `command`, `commands` or `operations` as the transformer's "
    "parameters, queued at once (`202`). The task must be the caller's (`404 TASK_NOT_FOUND`) and COMPLETED "
    "(`409 INVALID_STATE`). Where the source's run recorded its dataset's columns, the commands are parsed and "
    "their columns resolved before answering: a bad one is `422 INVALID_PARAMETERS` with `details.position` "
    "(0-based character offset in `details.command`), `details.reason` and `details.suggestions`; otherwise the "
    "worker resolves them and the task fails the same way. `operations` are the transformer's operations "
    "(components/schemas/TransformerParams); one that does not fit them is `422 INVALID_PARAMETERS`. "
    "Undo is transforming an earlier version again: nothing is copied."
)
LINEAGE = (
    "The dataset versions around this task: `ancestors` the tasks it descends from through `source_task_id`, "
    "root first (the task itself excluded: it is `task`), and `children` the tasks chained on it, each with its "
    "tool, status, `rows` (of its dataset version, null until known) and `transformations` (one sentence per "
    'step, e.g. "Dropped 150 rows where email was null"). An ancestor that was deleted stays in the chain, as it '
    'was, with `"deleted": true`; the tasks chained on it keep its id as their `source_task_id`.'
)


RESULT_CACHE = (
    "When the caller has a COMPLETED task of the same cache key (tool, agents as queued, parameters normalised, "
    "each input's content, the agents' code version) whose files are still stored, the task completes at once: "
    "`cached: true`, its own copies of the outputs, the same result, the usual `status` and `done` events, no "
    'credits charged and a `cache_hit` ledger line naming the reused task. `"cache": false` at the top level of '
    "the parameters, or `Cache-Control: no-cache`, forces a run."
)
CREATE = (
    '`"process": true` processes the task in the same call; only with a `source_task_id` (nothing to upload), '
    "else 422. The answer is then the task QUEUED, or COMPLETED from the result cache. " + RESULT_CACHE
)
STATS = (
    "`tasks_by_status`: the caller's tasks per status; `cache_hits`: how many of the caller's tasks the result "
    "cache completed; `global` (admins): every user's counts, queue depth per priority and live workers."
)
NO_CACHE = {
    "name": "Cache-Control",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "no-cache: run the task even when the result cache holds the same work",
}


def _idempotency_key(what: str) -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": f"a retried {what} with the same key and body returns the same task (200)",
    }


TASK_ERRORS = (401, 404)
ROUTES: list[RouteDoc] = [
    RouteDoc(
        "post",
        "/api/v1/tasks",
        "Create a task",
        201,
        m.Task,
        m.CreateTaskRequest,
        (401, 404, 409, 422),  # 404: source_task_id; 409: its state, or an Idempotency-Key reused
        parameters=[_idempotency_key("create"), NO_CACHE],
        description=CREATE,
        replay_ok=True,
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
            {
                **_q("status", {"type": "array", "items": {"enum": [s.value for s in m.TaskStatus]}}, "statuses"),
                "style": "form",
                "explode": True,
            },
            _q("tool_id", {"type": "string"}, "tool id"),
            {
                **_q("label", {"type": "array", "items": {"type": "string", "pattern": "^[^:]+:"}}, "name:value"),
                "style": "form",
                "explode": True,
            },
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
            _q("cursor", {"type": "string", "pattern": TASK_CURSOR_PATTERN}, "opaque cursor from next_cursor"),
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
        description=INPUT_NAMES,
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
        description=INPUT_NAMES,
    ),
    RouteDoc(
        "get",
        "/api/v1/tasks/{task_id}/inputs/{name}/parts",
        "Parts the store has of a multipart upload (to resume it)",
        200,
        m.UploadedParts,
        None,
        (401, 404, 409, 422),
        parameters=[
            {
                **_q("upload_id", {"type": "string", "minLength": 1}, "the multipart upload's id from upload-urls"),
                "required": True,
            }
        ],
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
        "post",
        "/api/v1/tasks/{task_id}/process",
        "Verify inputs and queue, or complete at once from the result cache",
        202,
        m.Task,
        None,
        (401, 404, 409, 422),
        parameters=[NO_CACHE],
        description=RESULT_CACHE,
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
        (401, 404, 422),  # 422: a Last-Event-ID that is not one
        media_type="text/event-stream",
        parameters=STREAM_PARAMETERS,
        no_content="The task is finished and Last-Event-ID is its latest `done` or later: nothing follows (an "
        "EventSource stops reconnecting)",
    ),
    RouteDoc(
        "get",
        "/api/v1/events",
        "Server-Sent Events of all the caller's tasks",
        200,
        None,
        None,
        (401, 422),  # 422: a Last-Event-ID that is not one
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
    RouteDoc(
        "post",
        "/api/v1/tasks/{task_id}/transform",
        "Transform this task's dataset version: a new transform-my-data task, queued",
        202,
        m.Task,
        m.TransformRequest,
        (401, 404, 409, 422),  # 409: the task is not COMPLETED, or an Idempotency-Key reused
        parameters=[_idempotency_key("transform")],
        description=TRANSFORM,
        replay_ok=True,
    ),
    RouteDoc(
        "get",
        "/api/v1/tasks/{task_id}/lineage",
        "The dataset versions this task descends from, and its children",
        200,
        m.Lineage,
        None,
        TASK_ERRORS,
        description=LINEAGE,
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
    RouteDoc(
        "get",
        "/api/v1/me/ledger",
        "The caller's credit ledger, newest first: debits per agent and task, refunds, grants, cache hits",
        200,
        m.Ledger,
        None,
        (401, 422),
        parameters=[
            _q("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size (50)"),
            _q("cursor", {"type": "string", "pattern": LEDGER_CURSOR_PATTERN}, "opaque cursor from next_cursor"),
        ],
    ),
    RouteDoc(
        "get",
        "/api/v1/stats",
        "Task counts and result-cache hits; global figures for admins",
        200,
        None,
        None,
        (401, 403, 422),
        parameters=[
            _q("scope", {"type": "string", "enum": ["own", "global"]}, "global: admin-only, 403 for others"),
        ],
        description=STATS,
    ),
    RouteDoc("get", "/healthz", "Liveness", 200, None, None, (), auth=False),
    RouteDoc("get", "/readyz", "Readiness of database, Redis and object store", 200, None, None, (503,), auth=False),
    RouteDoc("get", "/metrics", "Prometheus metrics", 200, None, None, (), auth=False, media_type="text/plain"),
    RouteDoc("get", "/openapi.json", "This document", 200, None, None, (), auth=False),
]


def build_openapi(version: str = "0.1.0", *, diagnostics: bool = False) -> dict[str, Any]:
    """The document; `diagnostics`: the hidden diagnostics tool is offered (Settings.diagnostics)."""
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
        m.Ledger,
        m.TransformRequest,
        m.Lineage,
        m.ErrorBody,
    ]
    _, defs = models_json_schema(
        [(model, "validation") for model in named], ref_template="#/components/schemas/{model}"
    )
    schemas = defs.get("$defs", {})
    schemas["CreateTaskRequest"] = _create_task_schema(schemas, diagnostics)
    schemas["TransformRequest"] = _transform_schema(schemas["TransformRequest"])
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    paths: dict[str, Any] = {}
    for r in ROUTES:
        operation_id = re.sub(r"[^A-Za-z0-9]+", "_", f"{r.method}_{r.path}").strip("_")
        op: dict[str, Any] = {"summary": r.summary, "operationId": operation_id}
        if r.description:
            op["description"] = r.description
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
            if r.media_type == "text/event-stream":
                schema = EVENT_SCHEMA
            ok["content"] = {r.media_type: {"schema": schema}}
        responses: dict[str, Any] = {str(r.ok_status): ok}
        if r.replay_ok:  # Idempotency-Key replay: the same task again
            responses["200"] = ok
        if r.no_content:
            responses["204"] = {"description": r.no_content}
        # Every authenticated route may answer 429 (the caller's request rate, service/ratelimit.py).
        # A request body is counted as it arrives and refused at its limit (413).
        body_limit = {413} if r.request is not None or r.raw_body else set()
        for status in sorted({*r.errors, *body_limit, 429, 500, 503} if r.auth else set(r.errors)):
            responses[str(status)] = {"description": "Error", "content": {"application/json": {"schema": error_ref}}}
        op["responses"] = responses
        if r.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method] = op
    _add_links(paths)
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


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from the operations that make a task to those that take its id (and from upload-urls to
    the streamed upload of the name it returns): schemathesis' stateful phase follows them."""
    task_ops = [
        (op["operationId"], "name" in path) for path, ops in paths.items() if "{task_id}" in path for op in ops.values()
    ]
    for status in ("201", "200"):
        paths["/api/v1/tasks"]["post"]["responses"][status]["links"] = {
            operation_id: {"operationId": operation_id, "parameters": {"task_id": "$response.body#/task_id"}}
            for operation_id, takes_name in task_ops
            if not takes_name
        }
    upload_urls = paths["/api/v1/tasks/{task_id}/upload-urls"]["post"]["responses"]["200"]
    upload_urls["links"] = {
        operation_id: {
            "operationId": operation_id,
            "parameters": {"task_id": "$request.path.task_id", "name": "$response.body#/uploads/0/name"},
        }
        for operation_id, takes_name in task_ops
        if takes_name
    }


# `"process": true` is only for a task that needs no upload: one with a source_task_id.
PROCESS_NEEDS_SOURCE = {
    "if": {"properties": {"process": {"const": True}}, "required": ["process"]},
    "then": {"properties": {"source_task_id": {"type": "string"}}, "required": ["source_task_id"]},
}


def _create_task_schema(schemas: dict[str, Any], diagnostics: bool) -> dict[str, Any]:
    """CreateTaskRequest as one variant per offered tool: its `tool_id`, the agents it may run (each once) and
    the parameters of each of them, so that a request the document admits is one the API accepts. The
    parameter models' own definitions join components/schemas."""
    base = schemas["CreateTaskRequest"]
    variants = []
    for tool_id in registry.listed_tools(diagnostics=diagnostics):
        spec = registry.tool_spec(tool_id)
        agents = registry.existing_agents(spec.all_agents)
        models = [registry.AGENTS[agent_id].params_model for agent_id in agents] + [InputOptions]
        _, defs = models_json_schema(
            [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
        )
        schemas.update(defs.get("$defs", {}))
        # null is each one's defaults.
        parameters = {
            agent_id: _or_null(f"#/components/schemas/{registry.AGENTS[agent_id].params_model.__name__}")
            for agent_id in agents
        }
        parameters[INPUTS_KEY] = _or_null(f"#/components/schemas/{InputOptions.__name__}")
        parameters[registry.CACHE_KEY] = {"type": "boolean", "description": "false: run past the result cache"}
        # Keys naming agents of the tool that are not built yet are accepted as they are (Agensium's files).
        parameters.update({agent_id: {} for agent_id in spec.all_agents if agent_id not in agents})
        properties = {
            **base["properties"],
            "tool_id": {"const": tool_id, "type": "string"},
            "agents": {
                "anyOf": [
                    {"type": "array", "items": {"enum": agents}, "minItems": 1, "uniqueItems": True},
                    {"type": "null"},
                ],
                "default": None,
            },
            "parameters": {
                "anyOf": [
                    {"type": "object", "properties": parameters, "additionalProperties": False},
                    {"type": "null"},
                ],
                "default": None,
            },
        }
        variants.append(
            {**base, "title": f"CreateTaskRequest ({tool_id})", "properties": properties, **PROCESS_NEEDS_SOURCE}
        )
    examples = [
        {"tool_id": "profile-my-data"},
        {
            "tool_id": "clean-my-data",
            "priority": "high",
            "labels": {"project": "q3"},
            "parameters": {"null-handler": {"apply_suggested_strategies": False}},
        },
    ]
    return {"oneOf": variants, "title": "CreateTaskRequest", "examples": examples}


def _transform_schema(model: dict[str, Any]) -> dict[str, Any]:
    """TransformRequest as its three shapes: exactly one of `command`, `commands` or `operations` (never null),
    with `priority` and `labels`, as the model's validator admits them."""
    properties = model["properties"]
    shared = {name: schema for name, schema in properties.items() if name not in m.TRANSFORM_ACTIONS}
    variants = []
    for action in m.TRANSFORM_ACTIONS:
        given = next(s for s in properties[action]["anyOf"] if s.get("type") != "null")
        variants.append(
            {
                "type": "object",
                "title": f"TransformRequest ({action})",
                "properties": {action: given, **shared},
                "required": [action],
                "additionalProperties": False,
            }
        )
    return {"oneOf": variants, "title": "TransformRequest", "examples": model.get("examples", [])}


def _or_null(ref: str) -> dict[str, Any]:
    return {"anyOf": [{"$ref": ref}, {"type": "null"}]}
