"""POST /api/v1/tasks against the real stack: an Idempotency-Key replay is told from a conflicting reuse of the
key (also when the creates race), and the cap on a user's unfinished tasks answers 429 with Retry-After."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from service.config import Settings
from service.store import TaskStore
from tests.conftest import Account, ApiServer, serve_api

pytestmark = pytest.mark.asyncio(loop_scope="session")

CAP = 3


async def create(client: httpx.AsyncClient, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return await client.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key} if key else {})


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code
    return error


# --- idempotency ------------------------------------------------------------------------------


async def test_same_key_same_body_is_the_same_task_and_another_body_is_409(
    client: httpx.AsyncClient, api: ApiServer, other_account: Account
) -> None:
    key = uuid.uuid4().hex
    body: dict[str, Any] = {"tool_id": "profile-my-data", "labels": {"b": "2", "a": "1"}}
    first = await create(client, body, key)
    assert first.status_code == 201, first.text
    task_id = first.json()["task_id"]
    # The same request, however spelled: keys in another order, defaults written out.
    same = {"labels": {"a": "1", "b": "2"}, "priority": "normal", "tool_id": "profile-my-data", "agents": None}
    for replay in (body, same):
        again = await create(client, replay, key)
        assert again.status_code == 200 and again.json()["task_id"] == task_id
    for different in (
        {**body, "priority": "high"},
        {**body, "labels": {"a": "1"}},
        {**body, "agents": ["unified-profiler"]},
        {"tool_id": "clean-my-data"},
    ):
        error = assert_error(await create(client, different, key), 409, "IDEMPOTENCY_CONFLICT")
        assert error["details"]["task_id"] == task_id
    listed = (await client.get("/api/v1/tasks", params={"limit": 200})).json()["items"]
    assert [t["task_id"] for t in listed].count(task_id) == 1 and listed[0]["priority"] == "normal"
    # Keys are per user: another user's same key makes its own task.
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers) as other:
        theirs = await create(other, {"tool_id": "clean-my-data"}, key)
    assert theirs.status_code == 201 and theirs.json()["task_id"] != task_id


async def test_racing_creates_with_one_key_make_one_task(client: httpx.AsyncClient) -> None:
    """Every create misses the first lookup; the unique index settles it (ON CONFLICT): one 201, the same
    body 200 with that task, another body 409."""
    key = uuid.uuid4().hex
    same = {"tool_id": "profile-my-data"}
    other = {"tool_id": "profile-my-data", "priority": "low"}
    answers = await asyncio.gather(*(create(client, same if i % 2 else other, key) for i in range(20)))
    statuses = [r.status_code for r in answers]
    assert statuses.count(201) == 1
    winner = answers[statuses.index(201)]
    winning_body = same if winner.json()["priority"] == "normal" else other
    for i, r in enumerate(answers):
        if r is winner:
            continue
        if (same if i % 2 else other) == winning_body:
            assert r.status_code == 200 and r.json()["task_id"] == winner.json()["task_id"], r.text
        else:
            assert_error(r, 409, "IDEMPOTENCY_CONFLICT")


# --- the cap on unfinished tasks --------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def capped_api(settings: Settings) -> AsyncIterator[ApiServer]:
    async with serve_api(settings.model_copy(update={"max_unfinished_tasks": CAP})) as server:
        yield server


async def test_the_create_over_the_cap_is_429_until_a_task_finishes(capped_api: ApiServer, account: Account) -> None:
    async with httpx.AsyncClient(base_url=capped_api.url, headers=account.headers) as client:
        made = []
        for _ in range(CAP):
            r = await create(client, {"tool_id": "profile-my-data"}, key=uuid.uuid4().hex)
            assert r.status_code == 201, r.text
            made.append(r)
        over = await create(client, {"tool_id": "profile-my-data"})
        error = assert_error(over, 429, "RATE_LIMITED")
        assert error["details"] == {"limit": CAP, "unfinished": CAP}
        assert int(over.headers["Retry-After"]) == 5
        # A replay of a create is not a new task: still answered.
        replay = await create(client, {"tool_id": "profile-my-data"}, key=made[0].request.headers["idempotency-key"])
        assert replay.status_code == 200 and replay.json()["task_id"] == made[0].json()["task_id"]
        # A terminal task no longer counts.
        cancelled = await client.post(f"/api/v1/tasks/{made[0].json()['task_id']}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        assert (await create(client, {"tool_id": "profile-my-data"})).status_code == 201
        assert_error(await create(client, {"tool_id": "profile-my-data"}), 429, "RATE_LIMITED")
        # A retry makes a finished task unfinished again: the cap holds there too.
        retried = await client.post(f"/api/v1/tasks/{made[0].json()['task_id']}/retry")
        assert assert_error(retried, 429, "RATE_LIMITED")["details"] == {"limit": CAP, "unfinished": CAP}


async def test_admins_have_no_cap(capped_api: ApiServer, store: TaskStore) -> None:
    _, key = await store.create_user("capless-admin", is_admin=True)
    async with httpx.AsyncClient(base_url=capped_api.url, headers={"Authorization": f"Bearer {key}"}) as admin:
        answers = [await create(admin, {"tool_id": "profile-my-data"}) for _ in range(CAP + 2)]
    assert [r.status_code for r in answers] == [201] * (CAP + 2)
