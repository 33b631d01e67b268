"""Billing over HTTP, as a user sees it: drift-detector leaves the default chain when there is no baseline
(the task's `agents` omit it, nothing is charged for it, the catalog says so); with a baseline it runs and
is charged; chosen without one it runs free and says it was skipped; the balance needed is the chain's
cost without it, and a run short of credits fails INSUFFICIENT_CREDITS without any debit."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from agents import registry
from service.store import TaskStore
from tests.conftest import ApiServer
from tests.support import run_to_completion

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROFILE_CHAIN = ["unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"]
WITHOUT_DRIFT = [agent for agent in PROFILE_CHAIN if agent != "drift-detector"]


async def balance(client: httpx.AsyncClient) -> int:
    return int((await client.get("/api/v1/me")).json()["credits"])


async def charged(store: TaskStore, task_id: str) -> list[tuple[str | None, int]]:
    """(agent id, amount) of the task's ledger lines, oldest first."""
    rows = await store.pool.fetch(
        "SELECT agent_id, amount FROM credit_ledger WHERE task_id = $1 ORDER BY id", uuid.UUID(task_id)
    )
    return [(r["agent_id"], r["amount"]) for r in rows]


def debits(agent_ids: list[str]) -> list[tuple[str | None, int]]:
    return [(agent_id, -registry.chain_cost([agent_id])) for agent_id in agent_ids]


async def test_without_a_baseline_drift_detector_leaves_the_default_chain(
    client: httpx.AsyncClient, store: TaskStore, worker: None, csv_file: Path
) -> None:
    before = await balance(client)
    done = await run_to_completion(client, {"primary.csv": csv_file})
    assert done["status"] == "COMPLETED", done["error"]
    assert done["agents"] == WITHOUT_DRIFT
    result = (await client.get(f"/api/v1/tasks/{done['task_id']}/result")).json()
    assert sorted(result["agents"]) == sorted(WITHOUT_DRIFT) and result["status"] == "success"
    assert await charged(store, done["task_id"]) == debits(WITHOUT_DRIFT)  # one debit per agent, as it started
    assert await balance(client) == before - registry.chain_cost(WITHOUT_DRIFT) == before - 120

    tools = (await client.get("/api/v1/tools")).json()["tools"]
    profile = next(t for t in tools if t["tool_id"] == "profile-my-data")
    assert profile["default_chain_without_baseline"] == WITHOUT_DRIFT
    assert profile["default_chain_without_baseline_credits"] == 120
    drift = next(a for a in profile["agents"] if a["agent_id"] == "drift-detector")
    assert drift["needs_baseline"] and "only when a baseline" in drift["description"]


async def test_with_a_baseline_drift_detector_runs_and_is_charged(
    client: httpx.AsyncClient, store: TaskStore, worker: None, csv_file: Path, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.csv"
    baseline.write_text("id,name,amount\n1,alice,11\n2,bob,12\n3,carol,\n")
    before = await balance(client)
    done = await run_to_completion(client, {"primary.csv": csv_file, "baseline.csv": baseline})
    assert done["status"] == "COMPLETED", done["error"]
    assert done["agents"] == PROFILE_CHAIN
    result = (await client.get(f"/api/v1/tasks/{done['task_id']}/result")).json()
    assert not result["agents"]["drift-detector"]["data"].get("skipped")
    assert await charged(store, done["task_id"]) == debits(PROFILE_CHAIN)
    assert await balance(client) == before - registry.chain_cost(PROFILE_CHAIN) == before - 160


async def test_a_chosen_drift_detector_without_baseline_is_skipped_free(
    client: httpx.AsyncClient, store: TaskStore, worker: None, csv_file: Path
) -> None:
    chosen = ["unified-profiler", "drift-detector"]
    before = await balance(client)
    done = await run_to_completion(client, {"primary.csv": csv_file}, agents=chosen)
    assert done["status"] == "COMPLETED", done["error"]
    assert done["agents"] == chosen  # the user's chain is kept
    result = (await client.get(f"/api/v1/tasks/{done['task_id']}/result")).json()
    assert result["agents"]["drift-detector"]["data"]["skipped"]
    assert await charged(store, done["task_id"]) == debits(["unified-profiler"])
    assert await balance(client) == before - registry.chain_cost(["unified-profiler"])


async def test_the_balance_needed_is_the_chain_that_runs(
    api: ApiServer, store: TaskStore, worker: None, csv_file: Path
) -> None:
    """120 credits run a default profile without a baseline (the whole default chain costs 160); 119 do
    not, and the refusal debits nothing."""
    for credits, status in ((120, "COMPLETED"), (119, "FAILED")):
        _, key = await store.create_user(f"billing-{credits}-{uuid.uuid4().hex[:6]}", credits=credits)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as c:
            done = await run_to_completion(c, {"primary.csv": csv_file})
            assert done["status"] == status, done["error"]
            if status == "COMPLETED":
                assert await balance(c) == 0
                assert await charged(store, done["task_id"]) == debits(WITHOUT_DRIFT)
            else:
                assert done["error"]["code"] == "INSUFFICIENT_CREDITS"
                assert "120" in done["error"]["message"]
                assert await balance(c) == credits
                assert await charged(store, done["task_id"]) == []
