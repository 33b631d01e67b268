"""GET /api/v1/me/ledger against the real stack: every credit change of a user (grants, a real run's debits, a
refund) as one ledger line of the right kind, newest first, walked page by page with the opaque cursor; the
balance is always the sum of the lines; bad cursors and limits are 422. And migration 005's backfill of kinds."""

from __future__ import annotations

import asyncio
import base64
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from service.config import Settings
from service.store import SQL_DIR, TaskStore, apply_migrations
from tests.conftest import RUN_ID, Account, ApiServer, _with_database
from tests.service.test_store import new_task
from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def walk_ledger(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    """Every line of the caller's ledger, page by page."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        r = await client.get("/api/v1/me/ledger", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert len(page["items"]) == limit  # only a full page has a next one
        params = {"limit": limit, "cursor": page["next_cursor"]}


async def test_ledger_lists_grants_debits_per_agent_and_refunds_newest_first_page_by_page(
    api: ApiServer, store: TaskStore, worker: None, csv_file: Path
) -> None:
    user_id, key = await store.create_user(f"ledger-{uuid.uuid4().hex[:6]}", credits=1_000)
    for n in (1, 2, 3, 4):
        await store.grant_credits(user_id, n * 10, f"grant: top-up {n}")
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        task = await create_task(client)
        await upload_inputs(client, task["task_id"], {"primary.csv": csv_file})
        assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
        await wait_for_status(client, task["task_id"], {"COMPLETED"})
        refunded = await store.refund_task_credits(user_id, task["task_id"], "refund: goodwill", 1)
        assert refunded > 0

        items = await walk_ledger(client, limit=2)
        assert items == await walk_ledger(client, limit=200)  # the same lines whatever the page size
        me = (await client.get("/api/v1/me")).json()

    ids = [int(i["id"]) for i in items]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)  # newest first, each line once
    oldest_first = items[::-1]
    assert [i["kind"] for i in oldest_first[:5]] == ["grant"] * 5
    assert [i["amount"] for i in oldest_first[:5]] == [1_000, 10, 20, 30, 40]
    assert oldest_first[1]["reason"] == "grant: top-up 1" and "task_id" not in oldest_first[0]
    debits = [i for i in items if i["kind"] == "debit"]
    assert debits and all(d["amount"] < 0 and d["task_id"] == task["task_id"] and d["agent_id"] for d in debits)
    assert set(d["agent_id"] for d in debits) <= set(task["agents"])
    refund = items[0]
    assert refund["kind"] == "refund" and refund["amount"] == refunded and refund["task_id"] == task["task_id"]
    assert refund["reason"] == "refund: goodwill"
    # The balance is grants minus debits plus refunds at every line, and at the end.
    running = 0
    for line in oldest_first:
        running += line["amount"]
        assert line["balance_after"] == running, line
        assert line["created_at"].endswith("Z")
    assert me["credits"] == running == 1_100  # the refund gave back everything the run took


async def test_ledger_is_the_callers_own(client: httpx.AsyncClient, account: Account, store: TaskStore) -> None:
    stranger, _ = await store.create_user("stranger", credits=5)
    await store.grant_credits(stranger, 7)
    items = (await client.get("/api/v1/me/ledger")).json()["items"]
    assert [(i["kind"], i["amount"], i["balance_after"]) for i in items] == [("grant", 100_000, 100_000)]
    assert (await client.get("/api/v1/me/ledger", headers={"Authorization": "Bearer nope"})).status_code == 401


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "%%%"},
        {"cursor": _b64("ledger:abc")},
        {"cursor": _b64("ledger:0")},
        {"cursor": _b64("ledger:-5")},
        {"cursor": _b64("ledger:" + "9" * 5000)},
        {"cursor": _b64("ledger:" + str(2**63))},
        {"cursor": _b64("ledger:²")},
        {"cursor": _b64("tasks:5")},
        {"cursor": "AAAA\x00"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"limit": "9" * 5000},
        {"before": "1"},
    ],
)
async def test_a_bad_cursor_or_limit_is_422(client: httpx.AsyncClient, query: dict[str, str]) -> None:
    r = await client.get("/api/v1/me/ledger", params=query)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_the_ledger_route_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/api/v1/me/ledger"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"limit", "cursor"}
    assert set(op["responses"]) >= {"200", "401", "422"}
    entry = doc["components"]["schemas"]["LedgerEntry"]
    assert entry["properties"]["kind"]["enum"] == ["debit", "refund", "grant", "cache_hit"]
    assert doc["components"]["schemas"]["Ledger"]["required"] == ["items", "next_cursor"]


async def test_migration_005_backfills_the_kind_of_existing_lines(settings: Settings, tmp_path: Path) -> None:
    """A database at migration 004 with lines of every kind the code wrote then gets the right kinds."""
    for path in sorted((SQL_DIR / "migrations").glob("00[1-4]_*.sql")):
        (tmp_path / path.name).write_text(path.read_text())
    database = f"agensium_test_{RUN_ID}_backfill"
    admin = await asyncpg.connect(_with_database(settings.database_url, "postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = _with_database(settings.database_url, database)
    try:
        await apply_migrations(url, tmp_path)
        conn = await asyncpg.connect(url)
        try:
            user_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO users (id, name, api_key_hash, credits) VALUES ($1, 'old', '\\x00'::bytea, 100)", user_id
            )
            lines = [(100, "grant"), (-30, "agent run"), (30, "refund: worker lost"), (5, "grant")]
            await conn.executemany(
                "INSERT INTO credit_ledger (user_id, amount, balance, reason) VALUES ($1, $2, 0, $3)",
                [(user_id, amount, reason) for amount, reason in lines],
            )
            await apply_migrations(url)
            kinds = await conn.fetch("SELECT kind FROM credit_ledger ORDER BY id")
            assert [r["kind"] for r in kinds] == ["grant", "debit", "refund", "grant"]
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def test_concurrent_grants_and_debits_keep_every_balance_after_right(store: TaskStore) -> None:
    user_id, _ = await store.create_user("busy-payer", credits=500)
    task_ids = [await new_task(store, user_id) for _ in range(5)]  # debits name a task
    await asyncio.gather(
        *(store.grant_credits(user_id, 3) for _ in range(10)),
        *(store.debit_credits(user_id, task_id, [("a", 7), ("b", 11)], 1) for task_id in task_ids),
    )
    rows = await store.list_ledger(user_id, before_id=None, limit=100)
    running = 0
    for row in reversed(rows):
        running += row["amount"]
        assert row["balance"] == running
    user = await store.get_user(user_id)
    assert user is not None and running == 500 + 30 - 5 * 18 == user["credits"]


async def test_a_failed_agent_is_refunded_once_whatever_came_first(store: TaskStore) -> None:
    """The worker refunds an agent that failed; a cancel or the reaper may have refunded the whole run first. Either
    order gives back exactly what the run was charged (before: the agent refund after a run refund paid twice)."""
    for first in ("run", "agent"):
        user_id, _ = await store.create_user(f"refund-{first}-{uuid.uuid4().hex[:6]}", credits=500)
        task_id = await new_task(store, user_id)
        assert await store.debit_credits(user_id, task_id, [("a", 30), ("b", 90)], 1) == 380
        if first == "run":
            assert await store.refund_task_credits(user_id, task_id, "refund: cancelled while running", 1) == 120
            assert await store.refund_agent_credits(user_id, task_id, "b", "refund: b failed", 1) == 0
        else:
            assert await store.refund_agent_credits(user_id, task_id, "b", "refund: b failed", 1) == 90
            assert await store.refund_agent_credits(user_id, task_id, "b", "refund: b failed", 1) == 0  # idempotent
            assert await store.refund_task_credits(user_id, task_id, "refund: cancelled while running", 1) == 30
        assert await store.credits(user_id) == 500
