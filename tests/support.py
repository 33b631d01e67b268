"""What tests share: helpers that drive the service over HTTP only, as a user would; tasks submitted the way
the API does it (lifecycle, in-process); waits with deadlines; what the object store holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from service import lifecycle
from service.dev import ChildProcess
from service.lifecycle import Core
from service.storage import Storage
from service.store import NewTask, TaskStore

T = TypeVar("T")

DEADLINE_S = 60.0
SLEEPER_CSV = b"id,value\n1,10\n2,20\n3,30\n"

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/jsonl",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".yaml": "application/yaml",  # schema.yaml, master-my-data's data contract
    ".yml": "application/yaml",
}


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: Any


async def sse_events(
    client: httpx.AsyncClient,
    url: str,
    last_event_id: int | None = None,
    timeout: float = 60,
    connected: asyncio.Event | None = None,
) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream as a browser would (comments skipped, multi-line data joined).

    `connected` is set once the response headers arrived: a stream route subscribes to live events and
    fixes where it starts before it answers, so from then on no event of the stream can be missed."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    async with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        if connected is not None:
            connected.set()
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if data:
                    yield SseEvent(
                        int(fields["id"]) if "id" in fields else None,
                        fields.get("event", "message"),
                        json.loads("\n".join(data)),
                    )
                fields, data = {}, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


async def collect_until_done(
    client: httpx.AsyncClient,
    url: str,
    last_event_id: int | None = None,
    timeout: float = 120,
    connected: asyncio.Event | None = None,
) -> list[SseEvent]:
    events: list[SseEvent] = []

    async def run() -> None:
        async for event in sse_events(client, url, last_event_id, timeout, connected):
            events.append(event)
            if event.event == "done":
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def create_task(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("tool_id", "profile-my-data")
    r = await client.post("/api/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def upload_inputs(
    client: httpx.AsyncClient, task_id: str, files: dict[str, Path], parameters: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """upload-urls, then a presigned PUT of each file straight to the object store."""
    specs = [
        {"name": name, "content_type": CONTENT_TYPES[Path(name).suffix], "size": path.stat().st_size}
        for name, path in files.items()
    ]
    params_bytes = json.dumps(parameters).encode() if parameters is not None else None
    body: dict[str, Any] = {"files": specs, "has_parameters": parameters is not None}
    if params_bytes is not None:
        body["parameters_size"] = len(params_bytes)
    r = await client.post(f"/api/v1/tasks/{task_id}/upload-urls", json=body)
    assert r.status_code == 200, r.text
    uploads = r.json()["uploads"]
    async with httpx.AsyncClient(timeout=60) as s3:
        for up in uploads:
            content = params_bytes if up["name"] == "parameters.json" else files[up["name"]].read_bytes()
            put = await s3.request(up["method"], up["url"], headers=up["headers"], content=content)
            assert put.status_code in (200, 201, 204), put.text
    return uploads


async def wait_for_status(
    client: httpx.AsyncClient, task_id: str, statuses: set[str], timeout: float = 120
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task = (await client.get(f"/api/v1/tasks/{task_id}")).json()
        if task["status"] in statuses:
            return task
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"task {task_id} still {task['status']}")
        await asyncio.sleep(0.05)


async def run_to_completion(client: httpx.AsyncClient, files: dict[str, Path], **body: Any) -> dict[str, Any]:
    task = await create_task(client, **body)
    await upload_inputs(client, task["task_id"], files)
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/process")
    assert r.status_code == 202, r.text
    return await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED", "CANCELLED"})


# --- waits with deadlines ---------------------------------------------------------------------------


async def poll(condition: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = DEADLINE_S) -> T:
    """Await `condition()` until it returns something truthy, and return that; fail after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_registered(store: TaskStore, children: Sequence[ChildProcess]) -> None:
    """Until every worker of `children` is in the registry (its heartbeat and recovery loops run); fails at
    once when one of them exited."""
    pids = {child.process.pid for child in children}

    async def registered() -> bool:
        for child in children:
            assert child.process.poll() is None, f"{child.name} exited with {child.process.returncode}"
        return pids <= {row["pid"] for row in await store.list_workers()}

    await poll(registered, f"workers {sorted(pids)} to register")


# --- tasks submitted as the API does it -------------------------------------------------------------


def sleeper(seconds: float = 0.05, step_s: float = 0.1, runaway: bool = False, fail: bool = False) -> dict[str, Any]:
    """Inline parameters of the hidden `diagnostics` tool's sleeper agent."""
    return {"sleeper": {"seconds": seconds, "step_s": step_s, "runaway": runaway, "fail": fail}}


async def submit(
    core: Core,
    user_id: str,
    *,
    tool_id: str = "diagnostics",
    parameters: dict[str, Any] | None = None,
    priority: str = "normal",
    data: bytes = SLEEPER_CSV,
) -> str:
    """create -> primary.csv streamed -> process, through lifecycle as the API does it; returns the task id.
    A quick diagnostics sleeper unless told otherwise."""
    if parameters is None and tool_id == "diagnostics":
        parameters = sleeper()
    task, _ = await lifecycle.create_task(
        core,
        user_id,
        tool_id=tool_id,
        agents=None,
        priority=priority,
        parameters=parameters,
        source_task_id=None,
        labels={},
        idempotency_key=None,
    )
    task_id = str(task["id"])

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    await lifecycle.stream_input(core, user_id, task_id, "primary.csv", "text/csv", len(data), body())
    await lifecycle.process_task(core, user_id, task_id)
    return task_id


async def submit_over_http(http: httpx.AsyncClient, body: dict[str, Any], data: bytes) -> str:
    """create `body` -> primary.csv streamed through the API -> process, as a client without object-store
    access does; returns the id of the QUEUED task."""
    created = await http.post("/api/v1/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = str(created.json()["task_id"])
    uploaded = await http.put(
        f"/api/v1/tasks/{task_id}/inputs/primary.csv", content=data, headers={"Content-Type": "text/csv"}
    )
    assert uploaded.status_code == 201, uploaded.text
    queued = await http.post(f"/api/v1/tasks/{task_id}/process")
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "QUEUED"
    return task_id


# --- what the object store holds --------------------------------------------------------------------


async def stored_keys(storage: Storage, prefix: str, page_size: int = 1000) -> list[str]:
    """The keys of every object under `prefix` (all pages), sorted."""
    paginator = storage.client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=storage.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    return sorted([item["Key"] async for page in pages for item in page.get("Contents", [])])


def task_spec(user_id: str, **fields: Any) -> NewTask:
    """A profile-my-data task for TaskStore.insert_task, with `fields` over its defaults."""
    defaults: dict[str, Any] = {
        "tool_id": "profile-my-data",
        "agents": ["unified-profiler"],
        "priority": "normal",
        "parameters": None,
        "source_task_id": None,
        "labels": {},
        "idempotency_key": None,
        "upload_ttl_s": 60,
    }
    return NewTask(user_id=user_id, **{**defaults, **fields})
