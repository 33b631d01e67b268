"""The per-user request rate (service/ratelimit.py) on real APIs and real Redis: a burst over the limit gets
429 RATE_LIMITED with Retry-After, admins are never limited, API processes share one bucket, and with the
limiter's Redis gone requests pass."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from service import embedded
from service.config import Settings
from service.embedded import EmbeddedServer
from service.store import TaskStore
from tests.conftest import Account, serve_api

pytestmark = pytest.mark.asyncio(loop_scope="session")

BURST = 5
# One request per 1000 s: the bucket never refills within a test, however slow the machine.
SLOW_RATE = 0.001


def limited(settings: Settings, **updates: object) -> Settings:
    return settings.model_copy(update={"rate_limit_per_s": SLOW_RATE, "rate_limit_burst": BURST, **updates})


async def get_me(url: str, account: Account) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, headers=account.headers, timeout=30) as client:
        return await client.get("/api/v1/me")


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "RATE_LIMITED" and error["message"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    assert error["details"]["retry_after_s"] == int(retry_after)
    assert error["details"]["limit"] == SLOW_RATE and error["details"]["burst"] == BURST


def rate_limited_count(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "agensium_rate_limited_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    raise AssertionError("agensium_rate_limited_requests is not exported")


async def test_a_burst_over_the_limit_gets_429_with_retry_after(settings: Settings, account: Account) -> None:
    async with serve_api(limited(settings)) as api:
        for _ in range(BURST):
            assert (await get_me(api.url, account)).status_code == 200
        refused = await get_me(api.url, account)
        assert_rate_limited(refused)
        # Every authenticated route counts, not only creates.
        async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
            assert_rate_limited(await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"}))
            metrics = await client.get("/metrics")  # unauthenticated: never limited
        assert metrics.status_code == 200 and rate_limited_count(metrics.text) == 2


async def test_a_websocket_over_the_limit_is_closed_4429(settings: Settings, account: Account) -> None:
    async with serve_api(limited(settings)) as api:
        for _ in range(BURST):
            assert (await get_me(api.url, account)).status_code == 200
        url = api.url.replace("http://", "ws://") + "/api/v1/ws"
        with pytest.raises(ConnectionClosed) as closed:
            async with websockets.connect(url, additional_headers=account.headers) as ws:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert closed.value.rcvd.code == 4429 and closed.value.rcvd.reason.startswith("RATE_LIMITED:")


async def test_signing_many_part_urls_counts_against_the_rate(settings: Settings, account: Account) -> None:
    """upload-urls counts as one request more per 50 part URLs it signs: two calls of ~1,000 part URLs (two 5 GiB
    files each) overrun a burst of 30 that 30 plain requests would not."""
    five_gib = 5 * 1024**3
    files = [{"name": n, "content_type": "text/csv", "size": five_gib} for n in ("primary.csv", "baseline.csv")]
    async with serve_api(limited(settings, rate_limit_burst=30)) as api:
        async with httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=60) as client:
            tasks = [(await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).json() for _ in range(2)]
            first = await client.post(f"/api/v1/tasks/{tasks[0]['task_id']}/upload-urls", json={"files": files})
            assert first.status_code == 200, first.text
            parts = sum(len(u["parts"]) for u in first.json()["uploads"])
            assert 950 <= parts <= 1_000
            second = await client.post(f"/api/v1/tasks/{tasks[1]['task_id']}/upload-urls", json={"files": files})
            error = second.json()["error"]
            assert second.status_code == 429 and error["code"] == "RATE_LIMITED", second.text
            # Nothing was signed or recorded for the refused call: the task still takes uploads as it was.
            assert (await client.get(f"/api/v1/tasks/{tasks[1]['task_id']}")).status_code in (200, 429)


async def test_an_admin_is_never_limited(settings: Settings, store: TaskStore) -> None:
    user_id, key = await store.create_user(f"admin-{uuid.uuid4().hex[:6]}", is_admin=True)
    admin = Account(user_id, key)
    async with serve_api(limited(settings)) as api:
        for _ in range(BURST * 4):
            assert (await get_me(api.url, admin)).status_code == 200


async def test_two_api_processes_share_one_bucket(settings: Settings, account: Account, other_account: Account) -> None:
    async with serve_api(limited(settings)) as first, serve_api(limited(settings)) as second:
        apis = [first.url, second.url]
        for n in range(BURST):
            assert (await get_me(apis[n % 2], account)).status_code == 200
        assert_rate_limited(await get_me(first.url, account))
        assert_rate_limited(await get_me(second.url, account))
        # One user's bucket is not another's.
        assert (await get_me(second.url, other_account)).status_code == 200


@pytest.fixture(scope="module")
def private_valkey() -> Iterator[EmbeddedServer]:
    """A Valkey of this module's own, to stop under a running API (started from the main thread: it dies
    with the thread that started it)."""
    data_dir = Path(tempfile.mkdtemp(prefix="agensium-ratelimit-"))
    server = embedded.start_valkey(data_dir, embedded.find_free_port(), ephemeral=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def test_requests_pass_while_the_limiters_redis_is_down(
    settings: Settings, account: Account, private_valkey: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    own = limited(settings, redis_url=private_valkey.url, key_prefix=f"{settings.key_prefix}ratelimit-down/")
    async with serve_api(own) as api:
        for _ in range(BURST):
            assert (await get_me(api.url, account)).status_code == 200
        assert_rate_limited(await get_me(api.url, account))  # the limiter works on this Redis

        private_valkey.stop()
        with caplog.at_level(logging.WARNING, logger="service.ratelimit"):
            for _ in range(BURST * 2):
                response = await get_me(api.url, account)
                assert response.status_code == 200, response.text
        warnings = [r for r in caplog.records if r.name == "service.ratelimit"]
        # Logged, but not once per request: an outage must not flood the logs.
        assert 1 <= len(warnings) < BURST * 2
        assert "Redis unavailable" in warnings[0].getMessage()
