"""Client-side helpers for tests that drive the service over HTTP only, as a user would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".txt": "text/plain",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/jsonl",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: Any


async def sse_events(
    client: httpx.AsyncClient, url: str, last_event_id: int | None = None, timeout: float = 60
) -> AsyncIterator[SseEvent]:
    """Parse a text/event-stream as a browser would (comments skipped, multi-line data joined)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    async with client.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
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
    client: httpx.AsyncClient, url: str, last_event_id: int | None = None, timeout: float = 120
) -> list[SseEvent]:
    events: list[SseEvent] = []

    async def run() -> None:
        async for event in sse_events(client, url, last_event_id, timeout):
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
