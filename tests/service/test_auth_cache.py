"""A rotated key or a disabled user is refused by a running API at once, not after its auth cache's TTL: the store
notifies every API process (PostgreSQL NOTIFY in the changing transaction) and each drops the user from its cache.

The test API keeps checked keys for an hour, so only the notification can make the old key fail in time."""

from __future__ import annotations

import uuid

import httpx

from service.store import TaskStore
from tests.conftest import ApiServer, serve_api
from tests.support import poll


async def _status(client: httpx.AsyncClient, key: str) -> int:
    response = await client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


async def test_a_rotated_key_and_a_disabled_user_are_refused_at_once(api: ApiServer, store: TaskStore) -> None:
    settings = api.settings.model_copy(update={"auth_cache_ttl_s": 3600.0})
    async with serve_api(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        user_id, key = await store.create_user(f"rotated-{uuid.uuid4().hex[:6]}")
        assert await _status(client, key) == 200  # checked once: now cached for an hour
        old_token = await _stream_token(client, key)
        assert await _stream_status(client, old_token) == 200
        new_key = await store.rotate_api_key(user_id)
        assert new_key is not None
        await poll(lambda: _refused(client, key), "the old key refused")
        assert await _status(client, new_key) == 200
        # A stream token issued before the rotation dies with the old key; one issued after works.
        assert await _stream_status(client, old_token) == 401
        assert await _stream_status(client, await _stream_token(client, new_key)) == 200

        other_id, other_key = await store.create_user(f"disabled-{uuid.uuid4().hex[:6]}")
        assert await _status(client, other_key) == 200
        assert await store.set_disabled(other_id, True)
        await poll(lambda: _refused(client, other_key), "the disabled user's key refused")
        assert await _status(client, key) == 401 and await _status(client, new_key) == 200  # nobody else moved
        assert await store.set_disabled(other_id, False)
        await poll(lambda: _accepted(client, other_key), "the enabled user's key accepted again")


async def test_a_missed_notification_is_covered_by_the_cache_ttl(api: ApiServer, store: TaskStore) -> None:
    """A key changed without the notification (as when an API process's listening connection was down) is
    refused once the cache entry's TTL has run out."""
    settings = api.settings.model_copy(update={"auth_cache_ttl_s": 1.0})
    async with serve_api(settings) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        user_id, key = await store.create_user(f"unnotified-{uuid.uuid4().hex[:6]}")
        assert await _status(client, key) == 200  # cached for a second
        await store.pool.execute(
            "UPDATE users SET api_key_hash = $2 WHERE id = $1", uuid.UUID(user_id), b"\x00" * 32
        )  # no NOTIFY
        await poll(lambda: _refused(client, key), "the key refused after the cache TTL")


async def _refused(client: httpx.AsyncClient, key: str) -> bool | None:
    return True if await _status(client, key) == 401 else None


async def _accepted(client: httpx.AsyncClient, key: str) -> bool | None:
    return True if await _status(client, key) == 200 else None


async def _stream_token(client: httpx.AsyncClient, key: str) -> str:
    response = await client.post("/api/v1/events/token", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def _stream_status(client: httpx.AsyncClient, token: str) -> int:
    async with client.stream("GET", "/api/v1/events", params={"token": token}) as response:
        return response.status_code
