"""Every route of API.md against the real API (uvicorn) on real PostgreSQL, Redis and S3:
success codes, error codes, auth, cross-user 404, the error body, X-Request-ID, OpenAPI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service import lifecycle
from service.config import Settings
from service.lifecycle import Core
from service.storage import Storage
from service.store import Event, TaskStore
from tests.conftest import Account, ApiServer, private_database, serve_api
from tests.support import create_task, poll, submit, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


async def test_auth_required_everywhere(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anon:
        some = str(uuid.uuid4())
        for method, path in [
            ("POST", "/api/v1/tasks"),
            ("GET", "/api/v1/tasks"),
            ("GET", f"/api/v1/tasks/{some}"),
            ("GET", "/api/v1/tools"),
            ("GET", "/api/v1/me"),
            ("GET", "/api/v1/stats"),
            ("GET", "/api/v1/events"),
            ("POST", f"/api/v1/tasks/{some}/process"),
        ]:
            assert_error(await anon.request(method, path), 401, "UNAUTHORIZED")
        bad = await anon.get("/api/v1/me", headers={"Authorization": "Bearer agk_nope"})
        assert_error(bad, 401, "UNAUTHORIZED")


async def test_request_id_echoed_and_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/api/v1/tasks/not-a-task")
    assert len(r.headers["x-request-id"]) >= 16
    assert_error(r, 404, "TASK_NOT_FOUND")


async def test_create_validation(client: httpx.AsyncClient) -> None:
    assert_error(
        await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "bogus": 1}), 422, "VALIDATION_ERROR"
    )
    assert_error(await client.post("/api/v1/tasks", content=b"{not json"), 422, "VALIDATION_ERROR")
    assert_error(await client.post("/api/v1/tasks", json={"tool_id": "nope"}), 422, "UNKNOWN_TOOL")
    assert_error(
        await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "agents": ["nope"]}),
        422,
        "UNKNOWN_AGENT",
    )
    err = assert_error(
        await client.post(
            "/api/v1/tasks",
            json={"tool_id": "profile-my-data", "parameters": {"unified-profiler": {"top_n_values": "ten"}}},
        ),
        422,
        "INVALID_PARAMETERS",
    )
    assert "top_n_values" in err["message"]
    assert_error(
        await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "priority": "asap"}),
        422,
        "VALIDATION_ERROR",
    )


async def test_create_returns_task_object(client: httpx.AsyncClient) -> None:
    task = await create_task(client, labels={"project": "apollo"}, priority="high")
    assert task["status"] == "CREATED" and task["progress"] == 0 and task["priority"] == "high"
    assert task["agents"][0] == "unified-profiler" and task["labels"] == {"project": "apollo"}
    for field in (
        "task_id",
        "tool_id",
        "current_agent",
        "message",
        "error",
        "attempts",
        "cached",
        "source_task_id",
        "created_at",
        "upload_started_at",
        "queued_at",
        "started_at",
        "finished_at",
        "expires_at",
    ):
        assert field in task
    assert task["created_at"].endswith("Z")


async def test_idempotent_create(client: httpx.AsyncClient) -> None:
    key = uuid.uuid4().hex
    first = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"}, headers={"Idempotency-Key": key})
    second = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["task_id"] == second.json()["task_id"]


async def test_upload_urls_errors(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    url = f"/api/v1/tasks/{task['task_id']}/upload-urls"
    f = {"name": "primary.csv", "content_type": "text/csv", "size": 10}
    assert_error(await client.post(url, json={"files": [{**f, "name": ".hidden.csv"}]}), 422, "INVALID_FILE_NAME")
    assert_error(await client.post(url, json={"files": [{**f, "name": "../x.csv"}]}), 422, "INVALID_FILE_NAME")
    assert_error(
        await client.post(url, json={"files": [{**f, "content_type": "image/png"}]}), 415, "UNSUPPORTED_MEDIA_TYPE"
    )
    assert_error(await client.post(url, json={"files": [{**f, "size": 10**13}]}), 413, "INPUT_TOO_LARGE")
    assert_error(await client.post(url, json={"files": [{**f, "extra": 1}]}), 422, "VALIDATION_ERROR")
    assert (await client.get(f"/api/v1/tasks/{task['task_id']}")).json()["status"] == "CREATED"
    ok = await client.post(url, json={"files": [f], "has_parameters": True})
    assert ok.status_code == 200
    uploads = ok.json()["uploads"]
    assert {u["name"] for u in uploads} == {"primary.csv", "parameters.json"}
    # parameters.json without a declared size: a form upload whose policy caps its size (hostile-input tests).
    methods = {u["name"]: u["method"] for u in uploads}
    assert methods == {"primary.csv": "PUT", "parameters.json": "POST"}
    assert all(u["url"].startswith("http") and u["expires_at"] for u in uploads)
    primary = next(u for u in uploads if u["name"] == "primary.csv")
    assert primary["headers"]["Content-Type"] == "text/csv"
    assert primary["key"].endswith(f"tasks/{task['task_id']}/inputs/primary.csv")
    got = (await client.get(f"/api/v1/tasks/{task['task_id']}")).json()
    assert got["status"] == "UPLOADING" and got["upload_started_at"]


async def test_process_checks_inputs(client: httpx.AsyncClient, tmp_path: Path) -> None:
    task = await create_task(client)
    tid = task["task_id"]
    assert_error(await client.post(f"/api/v1/tasks/{tid}/process"), 422, "INPUT_MISSING")
    r = await client.post(
        f"/api/v1/tasks/{tid}/upload-urls",
        json={"files": [{"name": "primary.csv", "content_type": "text/csv", "size": 12}]},
    )
    assert r.status_code == 200
    err = assert_error(await client.post(f"/api/v1/tasks/{tid}/process"), 422, "INPUT_MISSING")
    assert err["details"]["missing"] == ["primary.csv"]
    # Stored through the API with another size than declared: refused as a size mismatch.
    put = await client.put(
        f"/api/v1/tasks/{tid}/inputs/primary.csv", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"}
    )
    assert put.status_code == 201
    r = await client.post(
        f"/api/v1/tasks/{tid}/upload-urls",
        json={"files": [{"name": "primary.csv", "content_type": "text/csv", "size": 12}]},
    )
    err = assert_error(await client.post(f"/api/v1/tasks/{tid}/process"), 422, "INPUT_MISSING")
    assert err["details"]["size_mismatch"][0]["stored"] == 8


async def test_streamed_input_returns_sha256(client: httpx.AsyncClient) -> None:
    import hashlib

    task = await create_task(client)
    body = b"x,y\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(50_000))

    async def chunks():
        for i in range(0, len(body), 65_536):
            yield body[i : i + 65_536]

    r = await client.put(
        f"/api/v1/tasks/{task['task_id']}/inputs/primary.csv", content=chunks(), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "primary.csv", "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    bad = await client.put(
        f"/api/v1/tasks/{task['task_id']}/inputs/primary.csv", content=b"x", headers={"Content-Type": "application/zip"}
    )
    assert_error(bad, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(
        await client.put(
            f"/api/v1/tasks/{task['task_id']}/inputs/.env", content=b"x", headers={"Content-Type": "text/csv"}
        ),
        422,
        "INVALID_FILE_NAME",
    )


async def test_state_errors(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    tid = task["task_id"]
    assert_error(await client.get(f"/api/v1/tasks/{tid}/result"), 409, "NOT_READY")
    err = assert_error(await client.post(f"/api/v1/tasks/{tid}/retry"), 409, "INVALID_STATE")
    assert err["details"]["status"] == "CREATED"
    assert_error(await client.delete(f"/api/v1/tasks/{tid}"), 409, "INVALID_STATE")
    r = await client.post(f"/api/v1/tasks/{tid}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "CANCELLED"
    assert r.json()["error"]["code"] == "CANCELLED"
    err = assert_error(await client.post(f"/api/v1/tasks/{tid}/cancel"), 409, "INVALID_STATE")
    assert err["details"]["status"] == "CANCELLED"
    assert_error(await client.post(f"/api/v1/tasks/{tid}/retry"), 422, "INPUT_MISSING")
    assert (await client.delete(f"/api/v1/tasks/{tid}")).status_code == 204
    assert_error(await client.get(f"/api/v1/tasks/{tid}"), 404, "TASK_NOT_FOUND")


async def test_other_users_task_is_404_everywhere(
    api: ApiServer, client: httpx.AsyncClient, other_account: Account
) -> None:
    task = await create_task(client)
    tid = task["task_id"]
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers) as other:
        for method, path in [
            ("GET", f"/api/v1/tasks/{tid}"),
            ("POST", f"/api/v1/tasks/{tid}/upload-urls"),
            ("PUT", f"/api/v1/tasks/{tid}/inputs/primary.csv"),
            ("POST", f"/api/v1/tasks/{tid}/process"),
            ("GET", f"/api/v1/tasks/{tid}/events"),
            ("GET", f"/api/v1/tasks/{tid}/result"),
            ("GET", f"/api/v1/tasks/{tid}/downloads"),
            ("POST", f"/api/v1/tasks/{tid}/cancel"),
            ("POST", f"/api/v1/tasks/{tid}/retry"),
            ("DELETE", f"/api/v1/tasks/{tid}"),
        ]:
            kwargs = {}
            if path.endswith("upload-urls"):
                kwargs["json"] = {"files": [{"name": "primary.csv", "content_type": "text/csv", "size": 1}]}
            if method == "PUT":
                kwargs = {"content": b"a\n1\n", "headers": {"Content-Type": "text/csv"}}
            assert_error(await other.request(method, path, **kwargs), 404, "TASK_NOT_FOUND")
        listed = (await other.get("/api/v1/tasks")).json()["items"]
        assert tid not in {t["task_id"] for t in listed}
    assert (await client.get(f"/api/v1/tasks/{tid}")).json()["status"] == "CREATED"


async def test_list_filters_and_cursor(client: httpx.AsyncClient) -> None:
    label = uuid.uuid4().hex[:8]
    made = [(await create_task(client, labels={"batch": label}))["task_id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"label": f"batch:{label}", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/tasks", params=params)).json()
        seen += [t["task_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]
    assert (await client.get("/api/v1/tasks", params={"status": "COMPLETED", "label": f"batch:{label}"})).json()[
        "items"
    ] == []
    assert_error(await client.get("/api/v1/tasks", params={"limit": 201}), 422, "VALIDATION_ERROR")
    assert_error(await client.get("/api/v1/tasks", params={"status": "DONE"}), 422, "VALIDATION_ERROR")
    assert_error(await client.get("/api/v1/tasks", params={"cursor": "garbage!"}), 422, "VALIDATION_ERROR")


async def test_tools_me_stats(client: httpx.AsyncClient, account: Account) -> None:
    tools = (await client.get("/api/v1/tools")).json()
    profile = next(t for t in tools["tools"] if t["tool_id"] == "profile-my-data")
    agent = next(a for a in profile["agents"] if a["agent_id"] == "unified-profiler")
    assert agent["credits"] == 30 and agent["parameters_schema"]["type"] == "object"
    me = (await client.get("/api/v1/me")).json()
    assert me["user_id"] == account.user_id and me["credits"] == 100_000
    await create_task(client)
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["tasks_by_status"] == {"CREATED": 1} and "global" not in stats  # a fresh account: one task


async def test_admin_stats_lists_the_live_workers(api: ApiServer, store, worker) -> None:
    _, key = await store.create_user("admin", is_admin=True)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}) as admin:

        async def registered() -> dict:
            stats = (await admin.get("/api/v1/stats")).json()
            return stats if stats["global"]["workers"] else {}

        stats = await poll(registered, "the session worker to register its heartbeat", 30.0)
    live = stats["global"]["workers"][0]
    assert {"worker_id", "host", "pid", "started_at", "last_heartbeat", "running_tasks"} <= set(live)
    assert live["pid"] == os.getpid()  # the session's worker runs in the test process


@pytest.fixture(scope="module")
def stats_settings(settings: Settings) -> Iterator[Settings]:
    """A database of its own, whose every task the stats test made: the global counts are exact."""
    with private_database(settings, "stats") as url:
        yield settings.model_copy(
            update={"database_url": url, "key_prefix": f"{settings.key_prefix}stats/", "user_max_active_tasks": 2}
        )


async def test_admin_stats_count_exactly_what_the_database_holds(stats_settings: Settings, storage: Storage) -> None:
    """Two tasks claimed by a worker (one of them with a heartbeat gone stale) and a third, urgent, waiting for
    its user's cap of two running tasks: the global part says exactly that."""

    async def no_queue(*args: object) -> None:
        """No worker serves this database: the jobs stay out of Redis."""

    store = await TaskStore.connect(stats_settings.database_url, 1, 4)
    try:
        core = Core(stats_settings, store, storage, no_publish, no_queue)
        user_id, _ = await store.create_user("stats-user", credits=10_000)
        running = [await submit(core, user_id, tool_id="profile-my-data", data=b"id\n1\n") for _ in range(2)]
        waiting = await submit(core, user_id, tool_id="profile-my-data", priority="urgent", data=b"id\n1\n")
        for task_id in running:
            task = await store.get_task(task_id)
            assert task is not None and task["job_id"] is not None
            assert await lifecycle.claim_task(core, task_id, "stats:1:worker", task["job_id"]) is not None
        assert (await store.get_task(waiting))["job_id"] is None  # over the user's cap: waits in PostgreSQL
        await store.worker_heartbeat("stats:1:worker", "stats-host", 4242, running)
        await store.pool.execute(
            "UPDATE tasks SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", uuid.UUID(running[1])
        )
        _, key = await store.create_user("stats-admin", is_admin=True)
        async with (
            serve_api(stats_settings) as private_api,
            httpx.AsyncClient(base_url=private_api.url, headers={"Authorization": f"Bearer {key}"}) as admin,
        ):
            stats = (await admin.get("/api/v1/stats")).json()
    finally:
        await store.close()
    assert stats["tasks_by_status"] == {}  # the admin's own tasks: none
    body = stats["global"]
    assert body["tasks_by_status"] == {"PROCESSING": 2, "QUEUED": 1}
    assert (body["running"], body["stuck"]) == (2, 1)
    assert body["queued_by_priority"] == {"urgent": 1, "high": 0, "normal": 0, "low": 0}
    assert body["waiting_for_user_cap_by_priority"] == {"urgent": 1, "high": 0, "normal": 0, "low": 0}
    [live] = body["workers"]
    assert (live["worker_id"], live["host"], live["pid"]) == ("stats:1:worker", "stats-host", 4242)
    assert sorted(live["running_tasks"]) == sorted(running)


async def no_publish(*events: Event) -> None:
    """Nobody follows this database's events."""


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "object_store": "ok", "event_hub": "ok"}
    metrics = await client.get("/metrics")
    assert "agensium_http_requests_total" in metrics.text


async def test_openapi_matches_routes(api: ApiServer, client: httpx.AsyncClient) -> None:
    from starlette.routing import Route

    from service.api.app import build_routes

    doc = (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    served = {(m, r.path) for r in build_routes() if isinstance(r, Route) for m in r.methods or () if m != "HEAD"}
    assert documented == served
    assert "Task" in doc["components"]["schemas"] and "ErrorBody" in doc["components"]["schemas"]
    assert_error(await client.get("/api/v1/nothing-here"), 404, "NOT_FOUND")
    refused = await client.patch("/api/v1/tasks")
    assert_error(refused, 405, "METHOD_NOT_ALLOWED")
    assert set(refused.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    refused = await client.put("/api/v1/tasks/6f1c2f0e-1f7a-4a45-9d55-0c1f4b8d7a10")
    assert set(refused.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "DELETE"}


async def test_downloads_empty_until_done(client: httpx.AsyncClient, csv_file: Path, worker) -> None:
    task = await create_task(client)
    await upload_inputs(client, task["task_id"], {"primary.csv": csv_file})
    assert (await client.get(f"/api/v1/tasks/{task['task_id']}/downloads")).json() == {"files": []}
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/process")
    assert r.status_code == 202 and r.json()["status"] == "QUEUED"
    assert_error(await client.post(f"/api/v1/tasks/{task['task_id']}/process"), 409, "INVALID_STATE")
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    names = {f["name"] for f in (await client.get(f"/api/v1/tasks/{task['task_id']}/downloads")).json()["files"]}
    assert {"data_profile_report.json", "data_profile_report.xlsx", "manifest.json"} <= names


async def test_idle_stream_sends_ping_comments(client: httpx.AsyncClient, api: ApiServer) -> None:
    """The test API pings every second (production: 15 s); an idle stream shows ': ping' lines."""
    import asyncio

    task = await create_task(client)

    async def first_ping() -> str:
        async with client.stream("GET", f"/api/v1/tasks/{task['task_id']}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    return line
        return ""

    assert await asyncio.wait_for(first_ping(), 10) == ": ping"


async def test_one_redis_subscription_serves_every_stream(client: httpx.AsyncClient, api: ApiServer) -> None:
    """Twenty open SSE streams, one Redis pub/sub subscriber for the API process."""
    import asyncio

    from redis.asyncio import Redis

    task = await create_task(client)
    opened = asyncio.Event()
    count = 0

    async def hold() -> None:
        nonlocal count
        async with client.stream("GET", f"/api/v1/tasks/{task['task_id']}/events") as response:
            async for line in response.aiter_lines():
                if line.startswith("event: status"):
                    count += 1
                    if count == 20:
                        opened.set()
                    await asyncio.sleep(3600)

    holders = [asyncio.create_task(hold()) for _ in range(20)]
    try:
        await asyncio.wait_for(opened.wait(), 20)
        redis = Redis.from_url(api.settings.redis_url)
        try:
            channel = api.settings.events_channel_prefix + "all"
            [(_, subscribers)] = await redis.pubsub_numsub(channel)
        finally:
            await redis.aclose()
        assert subscribers == 1
    finally:
        for h in holders:
            h.cancel()
        await asyncio.gather(*holders, return_exceptions=True)


async def test_parameters_json_streamed_through_the_api(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    url = f"/api/v1/tasks/{task['task_id']}/inputs/parameters.json"
    assert_error(
        await client.put(url, content=b"{}", headers={"Content-Type": "text/plain"}), 415, "UNSUPPORTED_MEDIA_TYPE"
    )
    r = await client.put(
        url, content=b'{"unified-profiler": {"top_n_values": 3}}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 201 and r.json()["name"] == "parameters.json"
