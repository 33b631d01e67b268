"""The bytes the hot routes answer, pinned: the lean request path (issue 14: one round trip, direct JSON,
merged middleware, local rate allowance) must answer exactly what the API answered before it. Each response is
compared byte for byte with its golden copy once the values that differ per run (ids, times, the Date header)
are replaced by placeholders; the goldens were recorded from the API before the change."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.conftest import Account, ApiServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def normalised(response: httpx.Response, ids: dict[str, str]) -> str:
    """Status, headers (in order; Date and the request id's value masked, Allow's methods sorted) and body, with
    every uuid replaced by its name in `ids` (or <uuid>) and every timestamp by <time>."""
    lines = [str(response.status_code)]
    for name, value in response.headers.multi_items():
        if name in ("date", "x-request-id"):
            value = f"<{name}>"
        elif name == "allow":  # Starlette keeps a route's methods in a set: their order varies per process
            value = ", ".join(sorted(value.split(", ")))
        lines.append(f"{name}: {value}")
    body = response.text
    for value, name in ids.items():
        body = body.replace(value, f"<{name}>")
    lines.append(_TIME.sub("<time>", _UUID.sub("<uuid>", body)))
    return "\n".join(lines)


# Recorded from the API before issue 14's changes (see the module's docstring).
GOLDEN = {
    "CREATED": (
        "201\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 546\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"task_id":"<task>","tool_id":"profile-my-data","agents":["unified-profiler","drift-detector","score'
        '-risk","test-coverage-agent","readiness-rater"],"status":"CREATED","priority":"high","progress":0,"c'
        'urrent_agent":null,"message":"Waiting for uploads","error":null,"attempts":0,"cached":false,"source_'
        'task_id":null,"labels":{"team":"data"},"inputs":[],"created_at":"<time>","upload_started_at":null,"q'
        'ueued_at":null,"started_at":null,"finished_at":null,"expires_at":"<time>"}'
    ),
    "REPLAYED": (
        "200\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 546\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"task_id":"<task>","tool_id":"profile-my-data","agents":["unified-profiler","drift-detector","score'
        '-risk","test-coverage-agent","readiness-rater"],"status":"CREATED","priority":"high","progress":0,"c'
        'urrent_agent":null,"message":"Waiting for uploads","error":null,"attempts":0,"cached":false,"source_'
        'task_id":null,"labels":{"team":"data"},"inputs":[],"created_at":"<time>","upload_started_at":null,"q'
        'ueued_at":null,"started_at":null,"finished_at":null,"expires_at":"<time>"}'
    ),
    "FETCHED": (
        "200\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 558\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"task_id":"<task>","tool_id":"profile-my-data","agents":["unified-profiler","drift-detector","score'
        '-risk","test-coverage-agent","readiness-rater"],"status":"CREATED","priority":"high","progress":0,"c'
        'urrent_agent":null,"message":"Waiting for uploads","error":null,"attempts":0,"cached":false,"source_'
        'task_id":null,"labels":{"team":"data"},"inputs":[],"created_at":"<time>","upload_started_at":null,"q'
        'ueued_at":null,"started_at":null,"finished_at":null,"expires_at":"<time>","credits":0}'
    ),
    "NOT_FOUND": (
        "404\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 61\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"TASK_NOT_FOUND","message":"No such task."}}'
    ),
    "INVALID_BODY": (
        "422\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 237\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"VALIDATION_ERROR","message":"tool_id: Field required","details":{"errors":[{"loc":'
        '["tool_id"],"msg":"Field required","type":"missing"},{"loc":["tool"],"msg":"Extra inputs are not per'
        'mitted","type":"extra_forbidden"}]}}}'
    ),
    "NOT_QUEUABLE": (
        "422\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 129\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"INPUT_MISSING","message":"Request upload URLs and upload the inputs first.","detai'
        'ls":{"missing":["primary"]}}}'
    ),
    "WRONG_METHOD": (
        "405\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "allow: DELETE, GET, HEAD\n"
        "content-length: 70\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"METHOD_NOT_ALLOWED","message":"Method Not Allowed"}}'
    ),
    "NO_ROUTE": (
        "404\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 52\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"NOT_FOUND","message":"Not Found"}}'
    ),
    "CONFLICT": (
        "409\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 258\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"IDEMPOTENCY_CONFLICT","message":"This Idempotency-Key was used with a different re'
        'quest body; use a new key for a new task.","details":{"idempotency_key":"<key>","task_id":"<task>"}}'
        "}"
    ),
    "UNAUTHORIZED": (
        "401\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 97\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"UNAUTHORIZED","message":"Send your API key as \'Authorization: Bearer <key>\'."}}'
    ),
    "UNKNOWN_KEY": (
        "401\n"
        "date: <date>\n"
        "server: uvicorn\n"
        "content-length: 62\n"
        "content-type: application/json\n"
        "x-request-id: <x-request-id>\n"
        '{"error":{"code":"UNAUTHORIZED","message":"Unknown API key."}}'
    ),
}


async def test_create_and_get_answer_the_same_bytes(api: ApiServer, account: Account) -> None:
    body = {"tool_id": "profile-my-data", "priority": "high", "labels": {"team": "data"}}
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        key = uuid.uuid4().hex
        created = await client.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
        ids = {created.json()["task_id"]: "task", key: "key"}
        assert normalised(created, ids) == GOLDEN["CREATED"]
        replayed = await client.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
        assert normalised(replayed, ids) == GOLDEN["REPLAYED"]
        fetched = await client.get(f"/api/v1/tasks/{created.json()['task_id']}")
        assert normalised(fetched, ids) == GOLDEN["FETCHED"]
        assert {**created.json(), "credits": 0} == fetched.json()
        other = await client.post(
            "/api/v1/tasks", json={"tool_id": "profile-my-data"}, headers={"Idempotency-Key": key}
        )
        assert normalised(other, ids) == GOLDEN["CONFLICT"]


async def test_errors_answer_the_same_bytes(api: ApiServer, account: Account) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        assert normalised(await client.get(f"/api/v1/tasks/{uuid.uuid4()}"), {}) == GOLDEN["NOT_FOUND"]
        assert normalised(await client.get("/api/v1/tasks/not-a-uuid"), {}) == GOLDEN["NOT_FOUND"]
        invalid = await client.post("/api/v1/tasks", json={"tool": "profile-my-data"})
        assert normalised(invalid, {}) == GOLDEN["INVALID_BODY"]
        task = (await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).json()["task_id"]
        assert normalised(await client.post(f"/api/v1/tasks/{task}/process"), {}) == GOLDEN["NOT_QUEUABLE"]
        assert normalised(await client.put(f"/api/v1/tasks/{task}"), {}) == GOLDEN["WRONG_METHOD"]
        assert normalised(await client.get("/api/v1/nowhere"), {}) == GOLDEN["NO_ROUTE"]
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        assert normalised(await anonymous.get(f"/api/v1/tasks/{task}"), {}) == GOLDEN["UNAUTHORIZED"]
        unknown = await anonymous.get(f"/api/v1/tasks/{task}", headers={"Authorization": "Bearer agk_nobody"})
        assert normalised(unknown, {}) == GOLDEN["UNKNOWN_KEY"]


async def test_the_request_id_sent_is_echoed(api: ApiServer, account: Account) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        sent = await client.get(f"/api/v1/tasks/{uuid.uuid4()}", headers={"X-Request-ID": "trace-42"})
        made = await client.get(f"/api/v1/tasks/{uuid.uuid4()}")
    assert sent.headers.get_list("x-request-id") == ["trace-42"]
    assert re.fullmatch(r"[0-9a-f]{24}", made.headers["x-request-id"])
