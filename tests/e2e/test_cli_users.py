"""`agensium users list|grant|rotate-key|disable|enable` as subprocesses against the test database, checked
through the live API: a grant is a ledger line, a rotated key replaces the old one, a disabled user's key and
stream tokens are refused; a name several users share is refused with their ids."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest

from service.store import TaskStore
from tests.conftest import ApiServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Each API process caches a key's user this long (service/api/auth.py); a rotated or disabled key is refused
# once the entry expires.
AUTH_CACHE_S = 10.0


async def users_cli(api: ApiServer, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": api.settings.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "users",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def as_user(api: ApiServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = AUTH_CACHE_S + 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def test_users_list_shows_every_user_in_a_table_and_as_json(api: ApiServer, store: TaskStore) -> None:
    name = unique("lister")
    user_id, _ = await store.create_user(name, is_admin=True, credits=42)
    code, out, err = await users_cli(api, "list", "--json")
    assert code == 0, err
    listed = {u["user_id"]: u for u in json.loads(out)}
    assert listed[user_id]["name"] == name and listed[user_id]["credits"] == 42
    assert listed[user_id]["is_admin"] is True and listed[user_id]["disabled_at"] is None
    assert listed[user_id]["created_at"]
    code, out, err = await users_cli(api, "list")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split() == ["NAME", "ID", "ADMIN", "CREDITS", "DISABLED", "CREATED"]
    row = next(line for line in lines if user_id in line).split()
    assert row[:5] == [name, user_id, "yes", "42", "no"]


async def test_users_grant_adds_credits_with_a_grant_line_in_the_ledger(api: ApiServer, store: TaskStore) -> None:
    name = unique("granted")
    _, key = await store.create_user(name, credits=10)
    code, out, err = await users_cli(api, "grant", name, "250", "--reason", "grant: pilot")
    assert code == 0, err
    assert json.loads(out)["credits"] == 260
    async with as_user(api, key) as client:
        assert (await client.get("/api/v1/me")).json()["credits"] == 260
        newest = (await client.get("/api/v1/me/ledger")).json()["items"][0]
    assert (newest["kind"], newest["amount"], newest["balance_after"]) == ("grant", 250, 260)
    assert newest["reason"] == "grant: pilot"
    code, _, err = await users_cli(api, "grant", name, "0")
    assert code == 2 and "greater than 0" in err


async def test_a_name_several_users_share_is_refused_and_an_id_picks_one(api: ApiServer, store: TaskStore) -> None:
    name = unique("twin")
    first, _ = await store.create_user(name)
    second, _ = await store.create_user(name)
    code, out, err = await users_cli(api, "grant", name, "5")
    assert code == 1 and out == ""
    assert "2 users are named" in err and first in err and second in err and "by its id" in err
    code, out, err = await users_cli(api, "grant", second, "5")
    assert code == 0, err
    assert json.loads(out)["user_id"] == second
    credits = {u["id"]: u["credits"] for u in await store.find_users(name)}
    assert credits == {uuid.UUID(first): 0, uuid.UUID(second): 5}
    code, _, err = await users_cli(api, "disable", unique("nobody"))
    assert code == 1 and "no user is named" in err


async def test_rotate_key_prints_a_key_that_works_and_the_old_one_is_refused(api: ApiServer, store: TaskStore) -> None:
    name = unique("rotated")
    user_id, old_key = await store.create_user(name, credits=1)
    async with as_user(api, old_key) as old:
        assert (await old.get("/api/v1/me")).status_code == 200  # the old key is in the API's auth cache now
        code, out, err = await users_cli(api, "rotate-key", name)
        assert code == 0, err
        rotated = json.loads(out)
        assert rotated["user_id"] == user_id and rotated["api_key"] != old_key
        async with as_user(api, rotated["api_key"]) as new:
            me = await new.get("/api/v1/me")
            assert me.status_code == 200 and me.json()["user_id"] == user_id  # at once

        async def old_key_refused() -> bool:
            r = await old.get("/api/v1/me")
            return r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"

        await eventually(old_key_refused, "the old key to be refused")  # once its cache entry expires
    assert await store.user_by_api_key(old_key) is None


async def test_disable_refuses_the_key_and_stream_tokens_and_enable_undoes_it(api: ApiServer, store: TaskStore) -> None:
    name = unique("disabled")
    user_id, key = await store.create_user(name, credits=1)
    async with as_user(api, key) as client, httpx.AsyncClient(base_url=api.url, timeout=30) as anonymous:
        token = (await client.post("/api/v1/events/token")).json()["token"]
        code, out, err = await users_cli(api, "disable", user_id)
        assert code == 0, err
        assert json.loads(out) == {"user_id": user_id, "name": name, "state": "disabled"}
        for path in ("/api/v1/events", f"/api/v1/tasks/{uuid.uuid4()}/events"):  # tokens: at once
            r = await anonymous.get(path, params={"token": token})
            assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED", (path, r.text)

        async def key_refused() -> bool:  # a route that reads nothing of the user but its key
            return (await client.get("/api/v1/tasks")).status_code == 401

        await eventually(key_refused, "the disabled user's key to be refused")
        assert (await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).status_code == 401
        listed = json.loads((await users_cli(api, "list", "--json"))[1])
        assert next(u for u in listed if u["user_id"] == user_id)["disabled_at"]

        code, _, err = await users_cli(api, "enable", name)
        assert code == 0, err
        assert (await client.get("/api/v1/me")).status_code == 200  # refusals are not cached
        async with anonymous.stream("GET", "/api/v1/events", params={"token": token}) as stream:
            assert stream.status_code == 200
