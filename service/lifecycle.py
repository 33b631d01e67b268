"""The task state machine's operations, shared by the API and the workers.

Every transition is one conditional UPDATE in TaskStore with its event row; this module decides
which transition, checks what must hold around it (inputs present, names valid, chain known), and
turns refusals into the error codes of API.md. No transition is written anywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import asyncpg

from agents import registry
from agents.errors import AgentError
from agents.params.transformer import TransformerParams
from agents.reports.overview import dig
from service.cache import CacheKey, task_cache_key, upload_identities
from service.config import Settings
from service.errors import ServiceError, invalid_state, rate_limited, task_not_found
from service.models import (
    INPUT_NAME_PATTERN,
    TERMINAL_STATUSES,
    TaskStatus,
    UploadUrlsRequest,
    iso_utc,
    lineage_entry,
)
from service.queueing import Enqueue
from service.storage import (
    MAX_PART_BYTES,
    InvalidUpload,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    Storage,
    part_size_for,
)
from service.store import NewTask, ProgressUpdate, Publish, TaskStore, Transition

log = logging.getLogger("agensium.lifecycle")
_INPUT_NAME = re.compile(INPUT_NAME_PATTERN)
PARAMETERS_NAME = "parameters.json"
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024**2  # a run's manifest.json: names, sizes and parameters

S = TaskStatus
UPLOADABLE = [S.CREATED, S.UPLOADING]
CANCELLABLE = [S.CREATED, S.UPLOADING, S.QUEUED, S.PROCESSING]
RETRYABLE = [S.FAILED, S.CANCELLED, S.EXPIRED]
TERMINAL = sorted(TERMINAL_STATUSES)
UNFINISHED_CAP_RETRY_AFTER_S = 5  # Retry-After of a create refused by the cap on unfinished tasks

Control = Callable[[str], Awaitable[None]]  # a message to every worker: "cancel <task id>"


async def _no_control(message: str) -> None:
    """Without a control channel workers still notice a cancel through their next heartbeat."""


@dataclass
class Core:
    """What the lifecycle operations need, opened once by the API or worker lifespan."""

    settings: Settings
    store: TaskStore
    storage: Storage
    publish: Publish
    enqueue: Enqueue
    control: Control = _no_control


def inputs_prefix(settings: Settings, user_id: str, task_id: str) -> str:
    return settings.object_prefix(user_id, task_id) + "inputs/"


def outputs_prefix(settings: Settings, user_id: str, task_id: str) -> str:
    return settings.object_prefix(user_id, task_id) + "outputs/"


def attempt_outputs_prefix(settings: Settings, user_id: str, task_id: str, attempt: int) -> str:
    """Where run `attempt` stores its outputs: a run that lost its task (re-queued while it was slow)
    can only ever delete its own objects, never the winner's."""
    return f"{outputs_prefix(settings, user_id, task_id)}{attempt}/"


def output_key(settings: Settings, user_id: str, task_id: str, output: dict[str, Any]) -> str:
    return str(output.get("key") or outputs_prefix(settings, user_id, task_id) + output["name"])


def _check_input_name(name: str) -> None:
    if not _INPUT_NAME.fullmatch(name):
        raise ServiceError(
            "INVALID_FILE_NAME",
            f"Input name {name!r} is not allowed: use 1-128 characters of A-Z a-z 0-9 . _ - without a leading dot.",
            {"name": name},
        )


def _as_service_error(exc: AgentError) -> ServiceError:
    return ServiceError(exc.code, exc.message, exc.details or None)


def _refused(result: Transition, action: str) -> ServiceError:
    if result.current_status is None:
        return task_not_found()
    return invalid_state(result.current_status, action)


# --- create -----------------------------------------------------------------------------------


async def create_task(
    core: Core,
    user_id: str,
    *,
    tool_id: str,
    agents: list[str] | None,
    priority: str,
    parameters: dict[str, Any] | None,
    source_task_id: str | None,
    labels: dict[str, str],
    idempotency_key: str | None,
    process: bool = False,
) -> tuple[asyncpg.Record, bool]:
    """A CREATED task; returns (row, created). With an Idempotency-Key seen before, the earlier task
    (created=False) when the request is the same, 409 IDEMPOTENCY_CONFLICT when it differs. `process`: the
    request asked to process it at once (create_and_process); it is part of the request."""
    body = {
        "tool_id": tool_id,
        "agents": agents,
        "priority": priority,
        "parameters": parameters,
        "source_task_id": source_task_id,
        "labels": labels,
    }
    body_hash = request_hash({**body, "process": True} if process else body)
    # A replay is answered before anything else is checked: the same request keeps its task even once the
    # user is at the cap, or its source task is gone.
    earlier = await core.store.task_by_idempotency_key(user_id, idempotency_key)
    if earlier is not None:
        return _replayed(earlier, body_hash, idempotency_key), False
    try:
        diagnostics = core.settings.diagnostics
        chain = _resolved_chain(tool_id, agents, diagnostics)
        if parameters:
            registry.validate_parameters(tool_id, chain, parameters, diagnostics=diagnostics)
    except AgentError as exc:
        raise _as_service_error(exc) from None
    if source_task_id is not None:
        source = await core.store.task_dataset(source_task_id, user_id)
        if source is None:
            raise ServiceError("TASK_NOT_FOUND", "The source task does not exist.", {"source_task_id": source_task_id})
        if source["status"] != S.COMPLETED:
            raise invalid_state(source["status"], "take inputs from")
        _check_version_has_rows(source_task_id, source, f"for {tool_id} to read")
    task = NewTask(
        user_id=user_id,
        tool_id=tool_id,
        agents=chain,
        priority=priority,
        parameters=parameters,
        source_task_id=source_task_id,
        labels=labels,
        idempotency_key=idempotency_key,
        upload_ttl_s=core.settings.task_upload_ttl_s,
        request_hash=body_hash,
    )
    cap = core.settings.max_unfinished_tasks
    if _take_cap_room(user_id, cap):  # far enough under the cap a moment ago: no count
        row, created = await core.store.insert_task(task)
    else:  # the count and the insert in one round trip
        row, created, unfinished = await core.store.insert_task_under_cap(task, cap)
        if row is None:  # refused at the cap (the exact count for its message), or a rarer case insert_task handles
            await _check_unfinished_cap(core, user_id)
            row, created = await core.store.insert_task(task)
        elif unfinished is not None:
            _keep_cap_room(user_id, cap, unfinished + int(created))
    # A concurrent create with the same key got in first (ON CONFLICT): same rule as above.
    return (row, True) if created else (_replayed(row, body_hash, idempotency_key), False)


_CHAINS: dict[tuple[str, tuple[str, ...] | None, bool], tuple[registry.ToolSpec, list[str]]] = {}


def _resolved_chain(tool_id: str, agents: list[str] | None, diagnostics: bool) -> list[str]:
    """registry.resolve_chain, remembered per (tool, agents asked, diagnostics) while the tool's spec is the same
    object: it looks every agent's modules up on disk (importlib find_spec), a tenth of a create's time. Refusals
    are not remembered (they raise); at most 1,000 chains are (the agents asked are the user's)."""
    key = (tool_id, tuple(agents) if agents is not None else None, diagnostics)
    known = _CHAINS.get(key)
    spec = registry.TOOLS.get(tool_id)
    if known is not None and known[0] is spec:
        return list(known[1])
    chain = registry.resolve_chain(tool_id, agents, diagnostics=diagnostics)
    if spec is not None:
        if len(_CHAINS) >= 1_000:
            _CHAINS.clear()
        _CHAINS[key] = (spec, list(chain))
    return chain


async def create_and_process(
    core: Core,
    user_id: str,
    *,
    use_cache: bool = True,
    **create: Any,
) -> tuple[asyncpg.Record, bool]:
    """`POST /tasks` with `"process": true`: a task taking its primary from `source_task_id` (no upload needed) made
    and processed in one call; returns (task, created): QUEUED, or COMPLETED from the result cache. An
    Idempotency-Key replay returns the earlier task, processing it if its first call stopped before that."""
    if create.get("source_task_id") is None:
        raise ServiceError(
            "VALIDATION_ERROR",
            '"process": true needs a source_task_id: a task whose inputs are uploaded is processed once they are.',
            {"field": "process"},
        )
    # A task processed at once uploads no parameters.json: a transform with nothing to do is refused before it is made.
    _check_something_to_do({"tool_id": create.get("tool_id"), "has_parameters": False, "inputs": [], **create})
    row, created = await create_task(core, user_id, process=True, **create)
    if row["status"] != S.CREATED:  # a replay of a task that was processed
        return row, created
    try:
        return await process_task(core, user_id, str(row["id"]), use_cache=use_cache, source_checked=created), created
    except ServiceError as exc:  # a concurrent replay processed it first
        if created or exc.code != "INVALID_STATE":
            raise
        return await get_task(core, user_id, str(row["id"])), created


def request_hash(body: dict[str, Any]) -> bytes:
    """sha256 of a create request's normalised body (every field, defaults filled, keys sorted at every level):
    how a replay under the same Idempotency-Key is told from a conflicting reuse of the key."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).digest()


def _replayed(earlier: asyncpg.Record, body_hash: bytes, key: str | None) -> asyncpg.Record:
    """The earlier task of a replayed create; 409 when the key came with another body. Tasks created before
    request hashes were stored (request_hash NULL) are taken as the same request."""
    stored = earlier["request_hash"]
    if stored is not None and bytes(stored) != body_hash:
        raise ServiceError(
            "IDEMPOTENCY_CONFLICT",
            "This Idempotency-Key was used with a different request body; use a new key for a new task.",
            {"idempotency_key": key, "task_id": str(earlier["id"])},
        )
    return earlier


# A process that counted a user's unfinished tasks well under the cap skips the count for its next creates: at
# most a tenth of the room it saw (MAX_CAP_ROOM at most), within CAP_ROOM_S. The cap is approximate already
# (concurrent creates pass the count together); this adds at most that tenth per API process, so up to ten
# processes together never create past the room they saw. Under a cap of 10 tasks every create counts.
CAP_ROOM_SHARE = 10
MAX_CAP_ROOM = 100
CAP_ROOM_S = 1.0
_cap_room: dict[tuple[str, int], tuple[int, float]] = {}  # (user, cap) -> (creates left without a count, until)


def _take_cap_room(user_id: str, cap: int) -> bool:
    """Whether this create may skip the count (and take one of the creates left)."""
    room = _cap_room.get((user_id, cap))
    if room is None or room[0] <= 0 or room[1] < time.monotonic():
        return False
    _cap_room[(user_id, cap)] = (room[0] - 1, room[1])
    return True


def _keep_cap_room(user_id: str, cap: int, unfinished: int) -> None:
    """Remember the room under the cap a count just showed (`unfinished` tasks, this create's included)."""
    room = min((cap - unfinished) // CAP_ROOM_SHARE, MAX_CAP_ROOM)
    if room <= 0:
        _cap_room.pop((user_id, cap), None)
        return
    if len(_cap_room) >= 10_000:  # a bound on memory: forgetting only costs a count
        _cap_room.clear()
    _cap_room[(user_id, cap)] = (room, time.monotonic() + CAP_ROOM_S)


async def _check_unfinished_cap(core: Core, user_id: str) -> None:
    """429 when the user already has `max_unfinished_tasks` non-terminal tasks (admins have no cap), checked by
    create and retry. One indexed count; concurrent calls may pass it together, so the cap can be exceeded by
    their number."""
    unfinished = await core.store.unfinished_tasks(user_id)
    limit = core.settings.max_unfinished_tasks
    if unfinished is not None and unfinished >= limit:
        raise rate_limited(
            f"You have {unfinished} unfinished tasks, the limit is {limit}: "
            "process, cancel or wait for some of them, then try again.",
            UNFINISHED_CAP_RETRY_AFTER_S,
            {"limit": limit, "unfinished": unfinished},
        )


# --- dataset versions: transform and lineage (API.md "Dataset versions") ------------------------

TRANSFORM_TOOL = "transform-my-data"
TRANSFORM_AGENT = "transformer"
MAX_LINEAGE_DEPTH = 10_000  # links /lineage follows up from a task: a chain is as long as its user made it


async def transform_task(
    core: Core,
    user_id: str,
    source_task_id: str,
    transformer: dict[str, Any],
    *,
    priority: str,
    labels: dict[str, str],
    idempotency_key: str | None,
) -> tuple[asyncpg.Record, bool]:
    """Seed 003's chat in one call: a transform-my-data task on the dataset version of the user's COMPLETED task
    `source_task_id`, with `transformer` ({"commands": [...]} or {"operations": [...]}) as its parameters, queued
    at once; returns (task, created). Where the source's run recorded its dataset's schema, the commands are
    parsed and their columns resolved first: a bad one is 422 INVALID_PARAMETERS with its position, reason and
    suggestions, and no task is made. An Idempotency-Key replay returns the earlier task, as create does."""
    source_id = _normalised_uuid(source_task_id)
    replay = await core.store.task_by_idempotency_key(user_id, idempotency_key) is not None
    if not replay:  # a replay keeps its task even once the source is gone (create's rule)
        source = await core.store.task_dataset(source_id, user_id)
        if source is None:
            raise task_not_found()
        if source["status"] != S.COMPLETED:
            raise invalid_state(source["status"], "transform")
        if source["artifacts_deleted"]:
            raise ServiceError(
                "INVALID_STATE",
                "The task's stored files were deleted after the retention period: its dataset is gone; run it again.",
                {"status": source["status"], "artifacts_deleted": True},
            )
        _check_version_has_rows(source_id, source, "to transform")
        await asyncio.to_thread(_check_transform, transformer, source["dataset"])
    row, created = await create_task(
        core,
        user_id,
        tool_id=TRANSFORM_TOOL,
        agents=None,
        priority=priority,
        parameters={TRANSFORM_AGENT: transformer},
        source_task_id=source_id,
        labels=labels,
        idempotency_key=idempotency_key,
    )
    if row["status"] != S.CREATED:  # a replay of a task that was queued
        return row, created
    try:
        return await process_task(core, user_id, str(row["id"]), source_checked=created), created
    except ServiceError as exc:  # a concurrent replay queued it first
        if created or exc.code != "INVALID_STATE":
            raise
        return await get_task(core, user_id, str(row["id"])), created


def _normalised_uuid(task_id: str) -> str:
    """The id as the database writes it (an Idempotency-Key replay compares it); 404 when it is no task id."""
    try:
        return str(uuid.UUID(task_id))
    except ValueError:
        raise task_not_found() from None


def version_rows(source: Any) -> int | None:
    """The rows of a task's dataset version as its stored result says (a task_dataset row; /lineage's `rows`: the
    recorded dataset's rows, else rows_out, else the rows it read); None when not recorded."""
    dataset = source["dataset"]
    recorded = dataset.get("rows") if isinstance(dataset, dict) else None
    for rows in (recorded, source["rows_out"], source["rows"]):
        if isinstance(rows, int) and not isinstance(rows, bool):
            return rows
    return None


def _check_version_has_rows(source_id: str, source: Any, purpose: str) -> None:
    """422 INPUT_MISSING when the version a task would take as its primary has no rows (a filter that kept none):
    every tool's reader refuses a file of a header alone, so the task could only fail. INPUT_MISSING, not
    INVALID_PARAMETERS: the parameters are fine, the data rows the task needs are absent."""
    if version_rows(source) == 0:
        raise ServiceError(
            "INPUT_MISSING",
            f"Version {source_id} has no rows: there is nothing {purpose}. Continue from an earlier version "
            "(GET /api/v1/tasks/{id}/lineage lists them).",
            {"source_task_id": source_id, "rows": 0},
        )


def _check_transform(transformer: dict[str, Any], dataset: Any) -> None:
    """The transformer's parameters against its model, then (when `dataset` holds the source's recorded schema)
    the commands parsed and every column resolved: what the worker would refuse, refused before any task is
    made. Pure Python, no Polars: CPU-bound, so the caller runs it in a thread."""
    try:
        params = cast(TransformerParams, registry.parse_parameters(TRANSFORM_AGENT, transformer))
    except AgentError as exc:
        raise _as_service_error(exc) from None
    schema = recorded_schema(dataset)
    if schema is None:  # an older task, or a tool that records none: the worker resolves them
        return
    from agents.transform.resolve import resolve  # the grammar (lark, rapidfuzz): loaded on the first transform

    try:
        resolve(params, schema)
    except AgentError as exc:
        raise _as_service_error(exc) from None


def recorded_schema(dataset: Any) -> dict[str, str] | None:
    """{column: dtype} of a dataset version as its run recorded it (result.summary.dataset: {"name", "rows",
    "columns": [{"name", "dtype"}]}), in column order; None when it is absent or not of that shape."""
    columns = dataset.get("columns") if isinstance(dataset, dict) else None
    if not isinstance(columns, list):
        return None
    schema: dict[str, str] = {}
    for column in columns:
        if not (
            isinstance(column, dict) and isinstance(column.get("name"), str) and isinstance(column.get("dtype"), str)
        ):
            return None
        schema[column["name"]] = column["dtype"]
    return schema


async def task_lineage(core: Core, user_id: str, task_id: str) -> dict[str, Any]:
    """The task's dataset versions: its ancestors through source_task_id (root first), the task itself and its
    children, in two queries (one recursive), every one of them the user's. A deleted ancestor is listed from its
    tombstone (migration 015) as it was, with `"deleted": true`, and the chain goes on above it."""
    chain = await core.store.task_lineage(task_id, user_id, MAX_LINEAGE_DEPTH)
    if not chain or chain[-1]["deleted"]:
        raise task_not_found()
    children = await core.store.task_children(str(chain[-1]["id"]), user_id)
    return {
        "task_id": str(chain[-1]["id"]),
        "task": lineage_entry(chain[-1]),
        "ancestors": [_ancestor(row) for row in chain[:-1]],
        "children": [lineage_entry(row) for row in children],
    }


def _ancestor(row: asyncpg.Record) -> dict[str, Any]:
    """An ancestor's lineage entry; a deleted one's says so (its id, tool, rows and sentences as they were)."""
    entry = lineage_entry(row)
    if row["deleted"]:
        entry["deleted"] = True
    return entry


async def get_task(core: Core, user_id: str, task_id: str) -> asyncpg.Record:
    """The task row with inputs, outputs and parameters (the result summary is read apart)."""
    row = await core.store.get_task(task_id, user_id)
    if row is None:
        raise task_not_found()
    return row


async def get_task_view(core: Core, user_id: str, task_id: str) -> asyncpg.Record:
    """Only the columns of the task object: what status polling and streams need."""
    row = await core.store.get_task_view(task_id, user_id)
    if row is None:
        raise task_not_found()
    return row


# --- uploads ----------------------------------------------------------------------------------


def _check_content_type(name: str, content_type: str) -> None:
    accepted = registry.accepted_content_types(name)
    if content_type.split(";")[0].strip().lower() not in accepted:
        raise ServiceError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"{content_type!r} is not accepted for {name}; use one of {sorted(accepted)}.",
            {"name": name, "accepted": sorted(accepted)},
        )


def _declared_input(
    tool_id: str, name: str, content_type: str, size: int, limit: int, display_name: str | None = None
) -> dict[str, Any]:
    _check_input_name(name)
    role = registry.input_role(name, tool_id)
    if role is None or role == "parameters":
        raise ServiceError(
            "INVALID_FILE_NAME",
            f"{name!r} is not an input of this tool: name files {registry.input_patterns(tool_id)}.",
            {"name": name},
        )
    _check_content_type(name, content_type)
    if size > limit:
        raise ServiceError(
            "INPUT_TOO_LARGE", f"{name} is {size} bytes; the limit is {limit}.", {"name": name, "limit": limit}
        )
    entry = {"name": name, "role": role, "content_type": content_type, "size": size}
    if display_name:
        entry["display_name"] = display_name
    return entry


async def request_upload_urls(
    core: Core,
    user_id: str,
    task_id: str,
    request: UploadUrlsRequest,
    admit_parts: Callable[[int], Awaitable[None]] | None = None,
) -> tuple[asyncpg.Record, list[dict[str, Any]]]:
    """Presigned uploads for the declared files; `admit_parts(n)` is awaited with the number of part URLs to
    sign before any is (the API counts them against the caller's request rate: signing is CPU)."""
    task = await get_task(core, user_id, task_id)
    if task["status"] not in UPLOADABLE:
        raise invalid_state(task["status"], "upload to")
    settings = core.settings
    declared = [
        _declared_input(task["tool_id"], f.name, f.content_type, f.size, settings.max_input_bytes, f.display_name)
        for f in request.files
    ]
    names = [d["name"] for d in declared]
    if len(set(names)) != len(names):
        raise ServiceError("VALIDATION_ERROR", "Each file name may appear once.", {"names": names})
    problem = registry.input_set_problem(names)
    if problem is not None:
        raise ServiceError("INVALID_FILE_NAME", problem, {"names": names})
    if not any(d["role"] == "primary" for d in declared) and task["source_task_id"] is None:
        # A chained task's primary is its source task's data output; it may still upload the other inputs.
        raise ServiceError("INPUT_MISSING", "A primary input (primary.<ext>) is required.")
    if request.parameters_size is not None and request.parameters_size > settings.max_parameters_bytes:
        raise ServiceError(
            "INPUT_TOO_LARGE",
            f"parameters.json may be at most {settings.max_parameters_bytes} bytes.",
            {"name": PARAMETERS_NAME, "limit": settings.max_parameters_bytes},
        )
    multipart_sizes = [d["size"] for d in declared if d["size"] > settings.multipart_threshold_bytes]
    part_bytes = _call_part_size(settings, multipart_sizes)
    if admit_parts is not None:
        await admit_parts(_part_count(multipart_sizes, part_bytes))
    result = await core.store.transition(
        "mark_uploading", task_id, [declared, request.has_parameters, UPLOADABLE], core.publish, user_id
    )
    if result.row is None:
        raise _refused(result, "upload to")
    prefix = inputs_prefix(settings, user_id, task_id)
    uploads = [(d["name"], d["content_type"], d["size"]) for d in declared]
    if request.has_parameters:
        uploads.append((PARAMETERS_NAME, "application/json", request.parameters_size))
    out = await asyncio.gather(
        *(_presign_upload(core, prefix + name, name, ctype, size, part_bytes) for name, ctype, size in uploads)
    )
    return result.row, list(out)


def _part_count(sizes: list[int], part_bytes: int) -> int:
    """How many part URLs files of `sizes` need in parts of `part_bytes`."""
    return sum(max(1, math.ceil(size / part_bytes)) for size in sizes)


def _call_part_size(settings: Settings, sizes: list[int]) -> int:
    """The part size of one upload-urls call's multipart files (`sizes`): the preferred size, raised until their
    parts together fit in `max_upload_parts_per_call` -- big files get big parts, not thousands of URLs.
    413 INPUT_TOO_LARGE when even parts of S3's largest size would not do."""
    cap = settings.max_upload_parts_per_call
    part = part_size_for(max(sizes, default=0), settings.multipart_part_bytes)
    if sizes and cap > len(sizes):
        part = max(part, math.ceil(sum(sizes) / (cap - len(sizes))))
    parts = _part_count(sizes, part)
    if parts > cap or part > MAX_PART_BYTES:
        raise ServiceError(
            "INPUT_TOO_LARGE",
            f"These files would need {parts} upload parts; one upload-urls call signs at most {cap}: "
            "declare fewer or smaller files per call.",
            {"parts": parts, "limit": cap},
        )
    return part


async def _presign_upload(
    core: Core, key: str, name: str, content_type: str, size: int | None, part_bytes: int
) -> dict[str, Any]:
    """One PUT URL, or above the multipart threshold a URL per part (sent part by part, resumable), each signed
    for its exact length. parameters.json without a declared size: a form upload (POST) whose policy caps it
    at the parameters limit. No URL lets the store take more than declared or allowed."""
    settings = core.settings
    if size is None:
        post = await core.storage.presign_post(
            key, content_type, settings.max_parameters_bytes, settings.upload_url_ttl_s
        )
        return {
            "name": name,
            "key": post.key,
            "method": post.method,
            "url": post.url,
            "headers": post.headers,
            "fields": post.fields,
            "expires_at": iso_utc(post.expires_at),
        }
    if size > settings.multipart_threshold_bytes:
        multipart = await core.storage.presign_multipart(key, content_type, size, part_bytes, settings.upload_url_ttl_s)
        return {
            "name": name,
            "key": key,
            "method": "MULTIPART",
            "upload_id": multipart.upload_id,
            "part_size": multipart.part_size,
            "parts": [{"part_number": n, "url": url} for n, url in enumerate(multipart.part_urls, start=1)],
            "headers": {},
            "expires_at": iso_utc(multipart.expires_at),
        }
    p = await core.storage.presign_put(key, content_type, size, settings.upload_url_ttl_s)
    return {
        "name": name,
        "key": p.key,
        "method": p.method,
        "url": p.url,
        "headers": p.headers,
        "expires_at": iso_utc(p.expires_at),
    }


async def _uploadable_input(core: Core, user_id: str, task_id: str, name: str) -> str:
    """The object key of declared input `name` of a task still taking uploads."""
    task = await get_task(core, user_id, task_id)
    if task["status"] not in UPLOADABLE:
        raise invalid_state(task["status"], "upload to")
    if name != PARAMETERS_NAME and name not in {i["name"] for i in task["inputs"]}:
        raise ServiceError("INVALID_FILE_NAME", f"{name!r} was not declared by upload-urls.", {"name": name})
    return inputs_prefix(core.settings, user_id, task_id) + name


async def uploaded_parts(core: Core, user_id: str, task_id: str, name: str, upload_id: str) -> list[dict[str, Any]]:
    """What the store already has of a multipart upload: a client resumes after these parts."""
    key = await _uploadable_input(core, user_id, task_id, name)
    try:
        return await core.storage.uploaded_parts(key, upload_id)
    except ObjectNotFound:
        raise _no_upload(name, upload_id) from None


async def complete_upload(
    core: Core, user_id: str, task_id: str, name: str, upload_id: str, parts: list[tuple[int, str]]
) -> dict[str, Any]:
    """Assemble a multipart upload from its parts; returns the stored object's name and size."""
    key = await _uploadable_input(core, user_id, task_id, name)
    try:
        await core.storage.complete_multipart(key, upload_id, parts)
    except ObjectNotFound:
        raise _no_upload(name, upload_id) from None
    except InvalidUpload as exc:
        raise ServiceError(
            "VALIDATION_ERROR", f"The parts do not make up {name}: {exc}", {"name": name, "upload_id": upload_id}
        ) from None
    head = await core.storage.head(key)
    return {"name": name, "size": head.size if head else None}


def _no_upload(name: str, upload_id: str) -> ServiceError:
    return ServiceError(
        "INPUT_MISSING",
        f"No multipart upload {upload_id!r} in progress for {name}: request upload URLs again.",
        {"name": name, "upload_id": upload_id},
    )


async def stream_input(
    core: Core,
    user_id: str,
    task_id: str,
    name: str,
    content_type: str,
    declared_size: int | None,
    body: AsyncIterator[bytes],
) -> dict[str, Any]:
    task = await get_task(core, user_id, task_id)
    if task["status"] not in UPLOADABLE:
        raise invalid_state(task["status"], "upload to")
    settings = core.settings
    if name == PARAMETERS_NAME:
        _check_content_type(name, content_type)
        limit, entry = settings.max_parameters_bytes, None
        if declared_size is not None and declared_size > limit:
            raise ServiceError("INPUT_TOO_LARGE", f"parameters.json may be at most {limit} bytes.", {"limit": limit})
    else:
        limit = settings.max_input_bytes
        entry = _declared_input(task["tool_id"], name, content_type, declared_size or 0, limit)
    prefix = inputs_prefix(settings, user_id, task_id)
    key = prefix + name
    replaced = [] if entry is None else _replaced_inputs(task["inputs"], name)
    try:
        size, sha256 = await core.storage.upload_stream(key, body, content_type, limit)
    except ObjectTooLarge:
        raise ServiceError(
            "INPUT_TOO_LARGE", f"{name} is larger than the limit of {limit} bytes.", {"name": name, "limit": limit}
        ) from None
    if entry is None:
        record: dict[str, Any] = {"name": name, "role": "parameters", "content_type": content_type, "size": size}
    else:
        record = {**entry, "size": size, "sha256": sha256}
    result = await core.store.transition("record_input", task_id, [record, UPLOADABLE, replaced], core.publish, user_id)
    if result.row is None:
        await core.storage.delete_prefix(key)
        raise _refused(result, "upload to")
    for old in replaced:  # the upload it replaces: gone from the inputs, and from the store
        await core.storage.delete_prefix(prefix + old)
    return {"name": name, "size": size, "sha256": sha256}


def _replaced_inputs(inputs: list[dict[str, Any]], name: str) -> list[str]:
    """The inputs a streamed upload of `name` replaces: those of its role that cannot go with it (README "Uploading
    inputs"): primary.tsv after primary.csv is the user's new primary, not a second one (upload-urls, which declares
    a set at once, refuses such a set instead); the same for baseline.*, schema.* and source_<label>.*."""
    return [
        str(i["name"])
        for i in inputs
        if i["name"] != name and i["role"] != "parameters" and registry.input_set_problem([i["name"], name])
    ]


# --- process / retry --------------------------------------------------------------------------


async def _verify_inputs(core: Core, task: asyncpg.Record) -> dict[str, ObjectInfo]:
    """Every declared input is stored at its declared size; returns what the store says of each, by name. A
    chained task (`source_task_id`) needs no primary upload: it takes its source task's data output (the worker
    fetches it), and may upload the rest."""
    inputs: list[dict[str, Any]] = list(task["inputs"])
    if not any(i["role"] == "primary" for i in inputs) and task["source_task_id"] is None:
        raise ServiceError("INPUT_MISSING", "No primary input was declared or uploaded.", {"missing": ["primary"]})
    prefix = inputs_prefix(core.settings, str(task["user_id"]), str(task["id"]))
    expected: list[tuple[str, int | None]] = [(i["name"], i["size"]) for i in inputs if i["role"] != "parameters"]
    if task["has_parameters"] or any(i["role"] == "parameters" for i in inputs):
        expected.append((PARAMETERS_NAME, None))
    heads = await asyncio.gather(*(core.storage.head(prefix + name) for name, _ in expected))
    missing = [name for (name, _), head in zip(expected, heads, strict=True) if head is None]
    if missing:
        raise ServiceError("INPUT_MISSING", f"Not uploaded yet: {', '.join(missing)}.", {"missing": missing})
    wrong = [
        {"name": name, "declared": size, "stored": head.size}
        for (name, size), head in zip(expected, heads, strict=True)
        if head is not None and size is not None and head.size != size
    ]
    if wrong:
        raise ServiceError(
            "INPUT_MISSING",
            "Stored size differs from the declared size for: " + ", ".join(str(w["name"]) for w in wrong) + ".",
            {"size_mismatch": wrong},
        )
    params_head = heads[-1] if expected and expected[-1][0] == PARAMETERS_NAME else None
    if params_head is not None and params_head.size > core.settings.max_parameters_bytes:
        raise ServiceError(
            "INPUT_TOO_LARGE",
            f"parameters.json is over {core.settings.max_parameters_bytes} bytes.",
            {"name": PARAMETERS_NAME},
        )
    return {name: head for (name, _), head in zip(expected, heads, strict=True) if head is not None}


async def _check_queueable(core: Core, user_id: str, task: asyncpg.Record, source_checked: bool = False) -> None:
    """What process and retry refuse before queueing a task that could only fail: a transform with nothing to do,
    and for a task taking its primary from `source_task_id`, that version deleted (by the user, or its files by
    retention) or of no rows."""
    _check_something_to_do(task)
    source_id = task["source_task_id"]
    if source_id is None or source_checked or any(i["role"] == "primary" for i in task["inputs"]):
        return
    source = await core.store.task_dataset(str(source_id), user_id)
    if source is None:
        raise ServiceError(
            "INPUT_MISSING",
            f"The source version {source_id} was deleted: this task has no dataset to read. Create a new task on "
            "another version, or upload a primary input to this one.",
            {"source_task_id": str(source_id), "missing": ["primary"]},
        )
    if source["artifacts_deleted"]:
        raise ServiceError(
            "INPUT_MISSING",
            f"The stored files of source version {source_id} were deleted after the retention period; run it again "
            "to get its dataset back.",
            {"source_task_id": str(source_id), "missing": ["primary"]},
        )
    _check_version_has_rows(str(source_id), source, f"for {task['tool_id']} to read")


def _check_something_to_do(task: asyncpg.Record | dict[str, Any]) -> None:
    """422 INVALID_PARAMETERS for a transform-my-data task given no parameters.json and no operations or commands
    inline: its run could only say "there is nothing to do"."""
    if task["tool_id"] != TRANSFORM_TOOL or task["has_parameters"]:
        return
    if any(i["role"] == "parameters" for i in task["inputs"]):
        return
    transformer = (task["parameters"] or {}).get(TRANSFORM_AGENT)
    if isinstance(transformer, dict) and (transformer.get("operations") or transformer.get("commands")):
        return
    raise ServiceError(
        "INVALID_PARAMETERS",
        "transformer.commands: give operations or commands: there is nothing to do. Pass them inline "
        '({"transformer": {"commands": ["remove rows where email is null"]}}) or in parameters.json.',
        {"agent": TRANSFORM_AGENT, "field": "commands"},
    )


def new_job_id(task_id: str) -> str:
    """A fresh arq job id for every queueing: arq refuses an id it still holds (queued or a kept
    result), and an `abort()` of an id poisons a later job with the same id."""
    return f"task:{task_id}:{uuid.uuid4().hex[:12]}"


def queued_chain(task: asyncpg.Record) -> list[str]:
    """The chain a task is queued with: a default chain loses the agents that need a baseline when its inputs
    have none (a task chained on an earlier one, `source_task_id`, has none), so they are neither shown nor
    charged; a chain the user chose is kept (such an agent then runs free, saying it was skipped)."""
    return registry.chain_for_inputs(task["tool_id"], list(task["agents"]), has_baseline(task))


def has_baseline(task: asyncpg.Record) -> bool:
    """Whether the task's inputs include a baseline (one chained on an earlier task, `source_task_id`, has none)."""
    return any(i["role"] == "baseline" for i in task["inputs"])


async def _queue(
    core: Core,
    user_id: str,
    task_id: str,
    allowed: list[S],
    action: str,
    agents: list[str],
    key: CacheKey | None,
    heads: dict[str, ObjectInfo],
) -> asyncpg.Record:
    cache_key = key.key if key is not None else None
    args = [allowed, agents, cache_key, upload_identities(heads)]
    result = await core.store.transition("mark_queued", task_id, args, core.publish, user_id)
    if result.row is None:
        raise _refused(result, action)
    await dispatch_user(core, user_id)
    return result.row


async def dispatch_user(core: Core, user_id: str) -> int:
    """Enqueue the user's waiting QUEUED tasks, most urgent first, while fewer than the cap of their tasks
    are active; returns how many. Called whenever a task of theirs is queued or leaves the active set."""
    settings = core.settings
    picked = await core.store.dispatch_user(user_id, settings.user_max_active_tasks, settings.priority_head_start_s)
    for task_id, job_id, priority in picked:
        await core.enqueue(task_id, job_id, priority, 0.0)
    return len(picked)


async def process_task(
    core: Core, user_id: str, task_id: str, *, use_cache: bool = True, source_checked: bool = False
) -> asyncpg.Record:
    """Queue the task, or complete it at once from the result cache (API.md "Result cache") when the user has a
    COMPLETED task of the same key whose files are still stored; `use_cache` False (`Cache-Control: no-cache`)
    or `"cache": false` among its parameters forces a run. Either way the task keeps its key. `source_checked`:
    the caller created the task a moment ago, its source checked (_check_queueable need not read it again)."""
    task = await get_task(core, user_id, task_id)
    allowed = [S.UPLOADING] + ([S.CREATED] if task["source_task_id"] is not None else [])
    if task["status"] not in allowed:
        if task["status"] == S.CREATED:
            raise ServiceError(
                "INPUT_MISSING", "Request upload URLs and upload the inputs first.", {"missing": ["primary"]}
            )
        raise invalid_state(task["status"], "process")
    await _check_queueable(core, user_id, task, source_checked)
    heads = await _verify_inputs(core, task)
    chain = queued_chain(task)
    key = await task_cache_key(core, task, chain, heads)
    if key is not None and key.lookup and use_cache:
        hit = await _complete_from_cache(core, user_id, task_id, allowed, chain, key.key, heads)
        if hit is not None:
            return hit
    return await _queue(core, user_id, task_id, allowed, "process", chain, key, heads)


MAX_ERROR_MESSAGE_CHARS = 2_000  # of a failed task's error.message (fail_task)
CACHE_COPY_PREFIX = "cache-"  # outputs/cache-<hex>/: a cache hit's own copies (a run's are outputs/<attempt>/)


async def _complete_from_cache(
    core: Core, user_id: str, task_id: str, allowed: list[S], chain: list[str], key: str, heads: dict[str, ObjectInfo]
) -> asyncpg.Record | None:
    """The task COMPLETED at once from the user's latest COMPLETED task of the same key, looked up by the completing
    statement itself: its outputs and result, the usual `status` and `done` events, a `cache_hit` ledger line of 0
    credits; None (a miss) when there is no such task. Its outputs are first the stored objects of the task that ran
    (`copy_from`); its own server-side copies are made right after by a worker (its copy job, copy_cache_hit), or by
    the maintenance sweep when that job is lost, and deleting that task makes them first if they are not made yet:
    deleting either task never breaks the other. INVALID_STATE when the task moved on meanwhile (a concurrent
    process or cancel)."""
    result = await core.store.complete_from_cache(
        task_id,
        user_id,
        [allowed, chain, key],
        "Completed from the result cache (same work as task %s)",
        "cache hit: reused task %s",
        upload_identities(heads),
        core.publish,
    )
    if result.row is None:
        if result.current_status in allowed:  # a miss (or the reused task went meanwhile): run this one
            return None
        raise _refused(result, "process")
    await core.enqueue.copies(task_id)
    return result.row


async def copy_cache_hit(core: Core, task_id: str) -> bool:
    """A cache hit's copy job (worker/jobs.py) and the maintenance sweep: make its own copies unless they are made
    already (by an earlier call, or by deleting the task it reused) or it is gone; True when this call made them."""
    hit = await core.store.cache_hit_to_copy(task_id)
    if hit is None:
        return False
    return await make_own_copies(core, str(hit["user_id"]), task_id, str(hit["copy_from"]), list(hit["outputs"]))


async def make_own_copies(
    core: Core, user_id: str, task_id: str, copy_from: str, outputs: list[dict[str, Any]]
) -> bool:
    """Give cache hit `task_id` its own server-side copies of `outputs` (task `copy_from`'s stored objects) under its
    own outputs prefix, all at once; its manifest is written anew, naming it and the task that ran. (A search page
    that borrowed its dataset's kept search_result.csv gets a copy of that one; its other files are its own.) When
    another call made them first, or the task is gone, these copies are deleted again (False); so are they when one
    fails (which raises: the outputs stay as they were)."""
    own = outputs_prefix(core.settings, user_id, task_id)
    prefix = f"{own}{CACHE_COPY_PREFIX}{uuid.uuid4().hex[:12]}/"
    try:
        copies = await asyncio.gather(*(_copy_output(core, output, prefix, task_id, own) for output in outputs))
        made = await core.store.set_own_copies(task_id, copy_from, list(copies))
    except BaseException:
        await asyncio.shield(core.storage.delete_prefix(prefix))
        raise
    if not made:
        await core.storage.delete_prefix(prefix)
    return made


async def _copy_output(core: Core, output: dict[str, Any], prefix: str, task_id: str, own: str) -> dict[str, Any]:
    """`output` as the task's own object: as it is when it is already one (under `own`: a search page's own files
    beside the one it borrowed), else a copy under `prefix`."""
    if output["key"].startswith(own):
        return output
    key = prefix + output["name"]
    if output["name"] != MANIFEST_NAME:
        await core.storage.copy(output["key"], key, output["size"], output["content_type"])
        return {**output, "key": key}
    manifest = json.loads(await core.storage.get_bytes(output["key"], MAX_MANIFEST_BYTES))
    ran = manifest.get("cached_from", manifest.get("task_id"))
    data = json.dumps({**manifest, "task_id": task_id, "cached_from": ran}, indent=2).encode()
    await core.storage.put_bytes(key, data, output["content_type"])
    return {**output, "key": key, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


async def retry_task(core: Core, user_id: str, task_id: str) -> asyncpg.Record:
    task = await get_task(core, user_id, task_id)
    if task["status"] not in RETRYABLE:
        raise invalid_state(task["status"], "retry")
    await _check_unfinished_cap(core, user_id)  # a retried task is unfinished again
    await _check_queueable(core, user_id, task)
    heads = await _verify_inputs(core, task)
    chain = queued_chain(task)
    return await _queue(
        core, user_id, task_id, RETRYABLE, "retry", chain, await task_cache_key(core, task, chain, heads), heads
    )


async def cancel_task(core: Core, user_id: str, task_id: str) -> asyncpg.Record:
    result = await core.store.transition("cancel_task", task_id, [CANCELLABLE], core.publish, user_id)
    if result.row is None:
        raise _refused(result, "cancel")
    if result.row["started_at"] is not None:  # it was running: that run's charges come back (no more are taken:
        # a debit needs the task PROCESSING), whether or not its worker hears of the cancel
        await refund_task_credits(core, user_id, task_id, "refund: cancelled while running", result.row["attempts"])
    # The worker running it stops its agent (at once through the control channel, else at its next
    # heartbeat); the freed slot goes to the user's next waiting task.
    try:
        await core.control(f"cancel {task_id}")
    except Exception as exc:  # noqa: BLE001 - transport only; the heartbeat still tells the worker
        log.warning("cancel notice for %s not sent: %s", task_id, exc)
    await dispatch_user(core, user_id)
    return result.row


async def delete_task(core: Core, user_id: str, task_id: str) -> None:
    """A terminal task, its stored files and its events go; the user's streams get a last `status` event
    of it with `"deleted": true` (TaskStore.delete_task)."""
    task = await get_task(core, user_id, task_id)
    if task["status"] not in TERMINAL:
        raise invalid_state(task["status"], "delete")
    await core.store.claim_for_delete(task_id, user_id)  # no task starts reading its objects from here on
    for hit in await core.store.pending_copies(user_id, task_id):  # tasks still reading its objects
        await make_own_copies(core, user_id, str(hit["id"]), task_id, list(hit["outputs"]))
    await core.storage.delete_prefix(core.settings.object_prefix(user_id, task_id))
    result = await core.store.delete_task(task_id, user_id, TERMINAL, core.publish)
    if result.current_status != "DELETED":
        raise _refused(result, "delete")


EXPIRED_ERROR = {
    "code": "EXPIRED",
    "message": "The task was not submitted for processing before its upload deadline; its uploads were deleted.",
}


async def expire_task(core: Core, task_id: str) -> asyncpg.Record | None:
    """CREATED/UPLOADING past its upload deadline -> EXPIRED, then its uploads are deleted; None when it
    was processed or cancelled in time, or another worker expired it first (only the worker that expired
    it deletes). A worker that dies in between leaves the uploads to retention, which deletes every
    object of a terminal task."""
    result = await core.store.transition("expire_task", task_id, [UPLOADABLE, EXPIRED_ERROR], core.publish)
    if result.row is None:
        return None
    await core.storage.delete_prefix(inputs_prefix(core.settings, str(result.row["user_id"]), task_id))
    return result.row


# --- results ----------------------------------------------------------------------------------


async def task_result(core: Core, user_id: str, task_id: str) -> dict[str, Any]:
    task = await core.store.get_task_result(task_id, user_id)
    if task is None:
        raise task_not_found()
    if task["status"] != S.COMPLETED:
        raise ServiceError(
            "NOT_READY",
            f"The result is available once the task is COMPLETED; it is {task['status']}.",
            {"status": task["status"]},
        )
    return {"task_id": task_id, **in_column_order(task["result"] or {})}


def in_column_order(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with its objects keyed by the data's columns in the columns' order again: PostgreSQL's jsonb, which
    stores the result, orders an object's keys by length (QA saw a search row as {zip, name, agent}). An object whose
    keys are all columns of the dataset or the input (profile samples, a step's columns, per-column findings) in the
    dataset's order, then the input's; a search page's rows in its own ``columns``' order (a projection) and an
    aggregate's groups as ``group_keys`` then ``metrics``. Other keys stay first, as stored. In place."""
    dataset = dig(result, "summary", "dataset", "columns")
    names = [c.get("name") for c in dataset if isinstance(c, dict)] if isinstance(dataset, list) else []
    read = dig(result, "summary", "inputs", "primary", "columns")
    names += read if isinstance(read, list) else []
    ranks: dict[str, int] = {}
    for name in names:
        if isinstance(name, str):
            ranks.setdefault(name, len(ranks))
    if len(ranks) > 1:
        _by_ranks(result, ranks)
    for envelope in (result.get("agents") or {}).values():
        data = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(data, dict):
            continue
        for rows, columns in (
            (data.get("rows"), data.get("columns")),
            (data.get("groups"), [*(data.get("group_keys") or []), *(data.get("metrics") or [])]),
        ):
            if isinstance(rows, list) and isinstance(columns, list) and columns:
                rows[:] = [_ordered(row, columns) for row in rows]
    return result


def _by_ranks(node: Any, ranks: dict[str, int]) -> Any:
    """``node`` with every object of two or more column keys (and nothing else but bookkeeping ones, e.g. row_index)
    in ``ranks``' order, the other keys first; nested objects and lists too."""
    if isinstance(node, list):
        node[:] = [_by_ranks(item, ranks) for item in node]
        return node
    if not isinstance(node, dict):
        return node
    for key, value in node.items():
        if isinstance(value, (dict, list)):
            node[key] = _by_ranks(value, ranks)
    columns = [key for key in node if key in ranks]
    if len(columns) < 2 or len(columns) < len(node) - 2:
        return node
    columns.sort(key=ranks.__getitem__)
    return {**{key: node[key] for key in node if key not in ranks}, **{key: node[key] for key in columns}}


def _ordered(row: Any, columns: list[Any]) -> Any:
    if not isinstance(row, dict) or len(row) != len(columns) or any(c not in row for c in columns):
        return row  # not a row of these columns: as stored
    return {column: row[column] for column in columns}


async def task_downloads(core: Core, user_id: str, task_id: str) -> list[dict[str, Any]]:
    task = await get_task(core, user_id, task_id)
    if task["artifacts_deleted"]:
        raise ServiceError(
            "INVALID_STATE",
            "The task's stored files were deleted after the retention period; run it again to get new ones.",
            {"status": task["status"], "artifacts_deleted": True},
        )
    settings = core.settings
    outputs: list[dict[str, Any]] = list(task["outputs"] or [])
    links = await asyncio.gather(
        *(
            core.storage.presign_get(
                output_key(settings, user_id, task_id, o), o["name"], settings.download_url_ttl_s, o["content_type"]
            )
            for o in outputs
        )
    )
    return [
        {
            "name": o["name"],
            "size": o["size"],
            "content_type": o["content_type"],
            "url": url,
            "expires_at": iso_utc(expires),
        }
        for o, (url, expires) in zip(outputs, links, strict=True)
    ]


# --- worker side ------------------------------------------------------------------------------


async def claim_task(core: Core, task_id: str, worker_id: str, job_id: str) -> asyncpg.Record | None:
    """QUEUED -> PROCESSING for the arq job `job_id`; None when another worker won, the task was cancelled
    meanwhile, or `job_id` is a job of an earlier queueing (re-queued by recovery): that job is a no-op."""
    result = await core.store.transition("claim_job", task_id, [worker_id, job_id], core.publish)
    return result.row


# The worker's writes name the job it runs (`job_id`): once its task was re-queued (its heartbeat went
# stale) or cancelled, they change nothing.


async def report_progress(
    core: Core, task_id: str, progress: int, agent: str | None, message: str, job_id: str | None = None
) -> bool:
    return await core.store.set_progress(task_id, progress, agent, message, core.publish, job_id)


async def complete_task(
    core: Core,
    task_id: str,
    outputs: list[dict[str, Any]],
    result: dict[str, Any],
    message: str,
    job_id: str | None = None,
    copy_from: str | None = None,
    progress: ProgressUpdate | None = None,
) -> asyncpg.Record | None:
    """PROCESSING -> COMPLETED. `copy_from`: the task whose stored objects some `outputs` still are (a later search
    page borrows its dataset's kept search_result.csv): its copy job copies them as a cache hit's (copy_cache_hit);
    None when that task or its files are gone meanwhile, as when this run no longer holds its task. `progress`: the
    run's last progress, not yet written, written first in the same transaction (its event comes before the status
    and done events, as when written alone; one transaction less)."""
    row, _ = await _complete(core, task_id, outputs, result, message, job_id, copy_from, progress, dispatch=False)
    return row


async def complete_and_dispatch(
    core: Core,
    task_id: str,
    outputs: list[dict[str, Any]],
    result: dict[str, Any],
    message: str,
    job_id: str | None = None,
    copy_from: str | None = None,
    progress: ProgressUpdate | None = None,
) -> tuple[asyncpg.Record | None, bool]:
    """complete_task, and then the user's `dispatch_user` (the run left the user's active set) in the statement that
    ends the completion (TaskStore.transition's `dispatch`): (the row, whether the user was dispatched). Not
    dispatched (False) when the completion was refused, or written in a transaction of its own (with `progress`), or
    the dispatch failed: the caller dispatches then."""
    return await _complete(core, task_id, outputs, result, message, job_id, copy_from, progress, dispatch=True)


async def _complete(
    core: Core,
    task_id: str,
    outputs: list[dict[str, Any]],
    result: dict[str, Any],
    message: str,
    job_id: str | None,
    copy_from: str | None,
    progress: ProgressUpdate | None,
    *,
    dispatch: bool,
) -> tuple[asyncpg.Record | None, bool]:
    settings = core.settings
    owner = uuid.UUID(copy_from) if copy_from else None
    transition = await core.store.transition(
        "complete_task",
        task_id,
        [outputs, result, message, job_id, owner],
        core.publish,
        progress=progress,
        dispatch=(settings.user_max_active_tasks, settings.priority_head_start_s) if dispatch else None,
    )
    if transition.row is not None and owner is not None:
        await core.enqueue.copies(task_id)
    for picked_id, picked_job, priority in transition.dispatched or []:
        await core.enqueue(picked_id, picked_job, priority, 0.0)
    return transition.row, transition.dispatched is not None


async def fail_task(
    core: Core,
    task_id: str,
    code: str,
    message: str,
    allowed: list[S] | None = None,
    job_id: str | None = None,
) -> asyncpg.Record | None:
    error = {"code": code, "message": capped_message(message)}  # a task's GET stays small
    transition = await core.store.transition(
        "fail_task", task_id, [error, allowed or [S.PROCESSING, S.QUEUED], job_id], core.publish
    )
    return transition.row


def capped_message(message: str) -> str:
    """A failed task's error message, at most MAX_ERROR_MESSAGE_CHARS of it (one echoing a user's input at length:
    200,000 unknown column names) and how long it was."""
    if len(message) <= MAX_ERROR_MESSAGE_CHARS:
        return message
    return f"{message[:MAX_ERROR_MESSAGE_CHARS]}… (cut at {MAX_ERROR_MESSAGE_CHARS:,} of {len(message):,} characters)"


async def requeue_task(
    core: Core, task_id: str, job_id: str, message: str, *, counts: bool, defer_s: float = 0.0
) -> asyncpg.Record | None:
    """The run holding `job_id` gives its task back to the queue under a fresh job, due in `defer_s`
    (a transient fault's backoff); a run that does not `count` (its worker shut down) is not held
    against the attempt limit. None when the run no longer holds the task."""
    new_job = new_job_id(task_id)
    result = await core.store.transition(
        "requeue_task", task_id, [new_job, job_id, message, not counts, float(defer_s)], core.publish
    )
    row = result.row
    if row is not None:
        await core.enqueue(task_id, new_job, row["priority"], defer_s)
    return row


# --- credits (PRODUCT.md: each agent's cost is debited as it starts) --------------------------


async def credit_balance(core: Core, user_id: str) -> int:
    """The user's balance now (0 for a user who is gone; a disabled user's queued tasks still run)."""
    return await core.store.credits(user_id) or 0


async def debit_agent(core: Core, user_id: str, task_id: str, agent_id: str, cost: int, attempt: int) -> str:
    """Charge one agent of run `attempt` of a task as it starts, with its ledger line, once however often it is
    retried: "debited", "short" (the balance is below its cost) or "gone" (the run no longer holds the task);
    nothing is charged but "debited"."""
    return await core.store.debit_agent(user_id, task_id, agent_id, cost, attempt)


async def refund_agent_credits(core: Core, user_id: str, task_id: str, agent_id: str, reason: str, attempt: int) -> int:
    """Give back what agent `agent_id` of run `attempt` of the task was charged, net of its earlier refunds
    (idempotent): an agent that failed gave the user nothing."""
    return await core.store.refund_agent_credits(user_id, task_id, agent_id, reason, attempt)


async def refund_task_credits(core: Core, user_id: str, task_id: str, reason: str, attempt: int) -> int:
    """Give back what run `attempt` of the task was charged, net of its earlier refunds (idempotent); an earlier
    run's charges stay (it ran). Returns the amount."""
    return await core.store.refund_task_credits(user_id, task_id, reason, attempt)


# --- recovery (worker/recovery.py) ------------------------------------------------------------

WORKER_LOST = "The worker running this task stopped responding"


async def recover_stale_task(core: Core, task_id: str, attempts: int, runs: int) -> asyncpg.Record | None:
    """A PROCESSING task whose worker was lost: QUEUED again under a fresh job (and enqueued), or
    FAILED once it has had `max_attempts` runs. None when the task moved on or another reaper
    took it. What the lost run was charged is given back: the next run charges again."""
    settings = core.settings
    stale_s = float(settings.stale_after_s)
    if runs >= settings.max_attempts:
        message = f"{WORKER_LOST} on each of its {runs} attempts; retry it."
        error = {"code": "AGENT_FAILED", "message": message}
        result = await core.store.transition("fail_stale_task", task_id, [error, stale_s, attempts], core.publish)
    else:
        job_id = new_job_id(task_id)
        message = f"{WORKER_LOST}; queued again (attempt {runs + 1} of {settings.max_attempts})"
        result = await core.store.transition(
            "requeue_stale_task", task_id, [job_id, stale_s, attempts, message], core.publish
        )
    row = result.row
    if row is None:
        return None
    await refund_task_credits(core, str(row["user_id"]), task_id, "refund: worker lost", attempts)
    if row["status"] == S.QUEUED:
        await core.enqueue(task_id, row["job_id"], row["priority"], 0.0)
    else:
        await dispatch_user(core, str(row["user_id"]))
    return row


async def replace_lost_job(core: Core, task_id: str, old_job_id: str | None) -> asyncpg.Record | None:
    """A QUEUED task whose job is missing from Redis (flushed, restarted, failed over, or never
    enqueued) is enqueued again under a fresh job id; None when it moved on or another
    reconciler did it."""
    job_id = new_job_id(task_id)
    message = "Queued (its job was lost and has been queued again)"
    result = await core.store.transition("replace_lost_job", task_id, [job_id, old_job_id, message], core.publish)
    if result.row is None:
        return None
    await core.enqueue(task_id, job_id, result.row["priority"], 0.0)
    return result.row
