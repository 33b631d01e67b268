"""GET /metrics needs no key, so its database gauges (tasks by tool and status, queue depth) are read at most
once per `metrics_db_refresh_s` by one read that concurrent scrapes share: a scrape loop from anyone cannot
fill the API's database pool. Real APIs in the test loop on the run's PostgreSQL; the reads are counted
through `ApiMetrics.db_refreshes`, and their effect is seen in the gauges themselves."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from service.api.meta import ApiMetrics
from service.config import Settings
from service.storage import Storage
from service.store import apply_migrations
from tests.conftest import RUN_ID, Account, ApiServer, serve_api
from tests.support import create_task, poll

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCRAPES = 50
TASKS = "agensium_tasks"


def api_metrics(api: ApiServer) -> ApiMetrics:
    assert api.server is not None
    app = api.server.config.app
    assert isinstance(app, Starlette)
    metrics: ApiMetrics = app.state.metrics
    return metrics


def samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
    }


def label_set(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def created_profiles(page: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    """The gauge of CREATED profile-my-data tasks (absent while there is none)."""
    return page.get((TASKS, label_set(tool_id="profile-my-data", status="CREATED")), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return samples(response.text)


async def scrape_all_at_once(client: httpx.AsyncClient) -> list[dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    return await asyncio.gather(*(scrape(client) for _ in range(SCRAPES)))


async def test_concurrent_scrapes_share_one_database_read(
    settings: Settings, storage: Storage, account: Account
) -> None:
    async with serve_api(settings.model_copy(update={"metrics_db_refresh_s": 3600.0})) as api:
        metrics = api_metrics(api)
        assert metrics.db_refreshes == 0
        async with httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=60) as client:
            pages = await scrape_all_at_once(client)
            assert metrics.db_refreshes == 1
            # Every scrape got the gauges of that one read.
            assert all(("agensium_queue_depth", label_set(priority="normal")) in page for page in pages)
            before = created_profiles(pages[0])
            assert {created_profiles(page) for page in pages} == {before}

            # Within the window a new task does not reach the database gauges: the last read is reused...
            await create_task(client)
            pages = await scrape_all_at_once(client)
            assert metrics.db_refreshes == 1
            assert {created_profiles(page) for page in pages} == {before}


async def test_a_scrape_after_the_window_reads_again(settings: Settings, storage: Storage, account: Account) -> None:
    async with serve_api(settings.model_copy(update={"metrics_db_refresh_s": 0.2})) as api:
        metrics = api_metrics(api)
        async with httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=60) as client:
            before = created_profiles(await scrape(client))
            reads = metrics.db_refreshes
            assert reads == 1
            await create_task(client)

            async def counted() -> bool:
                return created_profiles(await scrape(client)) == before + 1

            await poll(counted, "the new task in agensium_tasks")
            assert metrics.db_refreshes > reads


async def admin_execute(settings: Settings, sql: str) -> None:
    base, _, _ = settings.database_url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_with_the_database_gone_scrapes_answer_without_its_gauges(settings: Settings, storage: Storage) -> None:
    """One failed read serves every scrape of the window too: a scrape loop does not hammer a database that
    is down, and each scrape still answers 200 with the task and queue series left out (unknown is not 0)."""
    database = f"agensium_test_{RUN_ID}_metrics_{uuid.uuid4().hex[:6]}"
    base, _, _ = settings.database_url.rpartition("/")
    await admin_execute(settings, f'CREATE DATABASE "{database}"')
    try:
        await apply_migrations(f"{base}/{database}")
        own = settings.model_copy(update={"database_url": f"{base}/{database}", "metrics_db_refresh_s": 3600.0})
        async with serve_api(own) as api:
            await admin_execute(settings, f'DROP DATABASE "{database}" WITH (FORCE)')
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                pages = await scrape_all_at_once(client)
            assert api_metrics(api).db_refreshes == 1
            for page in pages:
                names = {name for name, _ in page}
                assert TASKS not in names and "agensium_queue_depth" not in names
                assert ("agensium_open_streams", label_set(kind="sse")) in page
    finally:
        await admin_execute(settings, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
