"""Billing with real worker processes: each agent is debited as it starts and only if it runs. A soft time
limit or the large-file path charges only the agents that started; a debit refused mid-run (another task
spent the balance) stops the run, FAILED `INSUFFICIENT_CREDITS`, charged for what ran; and after a mix of
runs the ledger adds up: balance = grants - debits + refunds, line by line.

The module starts one worker on its own database and arq queue, with a soft limit of the diagnostics tool
(the sleeper) and a streaming threshold low enough to send a small profile down the large-file path."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from agents import registry
from agents.options import RunOptions
from service import lifecycle
from service.config import Settings
from service.dev import ChildProcess
from service.lifecycle import Core
from service.storage import Storage
from tests.support import SLEEPER_CSV, poll, sleeper, wait_registered
from tests.worker.scheduling_support import (
    cancel_unfinished,
    get_task,
    open_core,
    private_settings,
    start_worker,
    wait_finished,
    wait_status,
)
from worker.agent_procs import AgentProcesses, ProgressMessage
from worker.runner import RunHandle, TaskFailure, _retry_later, _run_chain

pytestmark = pytest.mark.asyncio(loop_scope="session")

SOFT_LIMIT_S = 6.0  # of the diagnostics tool: a sleeper of 60 s is stopped, one of 3 s is not
STREAMING_THRESHOLD = 1000  # bytes: a profile primary above it takes the large-file path
PROFILE_CHAIN = ["unified-profiler", "drift-detector", "score-risk", "test-coverage-agent", "readiness-rater"]
WITHOUT_DRIFT = [agent for agent in PROFILE_CHAIN if agent != "drift-detector"]
SMALL_CSV = b"id,amount,city\n1,10.5,paris\n2,,lyon\n3,7.25,nice\n4,3,paris\n"
SLEEPER_THEN_RATER = ["sleeper", "readiness-rater"]


@pytest.fixture(scope="module")
def billing_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    work_dir = tmp_path_factory.mktemp("billing-work")
    updates = {
        "worker_concurrency": 4,
        "agent_processes": 2,
        "work_dir": work_dir,
        "tool_time_limits_s": {"diagnostics": (SOFT_LIMIT_S, 120.0)},
        "streaming_threshold_bytes": STREAMING_THRESHOLD,
    }
    with private_settings(settings, "billing", **updates) as private:
        yield private


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def redis(billing_settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(billing_settings.redis_url))
    await pool.delete(billing_settings.arq_queue_name)
    yield pool
    await pool.delete(billing_settings.arq_queue_name)
    await pool.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(billing_settings: Settings, storage: Storage, redis: ArqRedis) -> AsyncIterator[Core]:
    async with open_core(billing_settings, redis) as opened:
        yield opened


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def worker(core: Core) -> AsyncIterator[ChildProcess]:
    started: list[ChildProcess] = []
    child = start_worker(core.settings, started)
    try:
        await wait_registered(core.store, [child])
        yield child
    finally:
        await cancel_unfinished(core)
        await asyncio.to_thread(child.stop)


async def new_user(core: Core, credits: int) -> str:
    user_id, _ = await core.store.create_user(f"billing-{uuid.uuid4().hex[:6]}", credits=credits)
    return user_id


async def create(
    core: Core, user_id: str, tool_id: str, agents: list[str] | None, parameters: dict[str, Any] | None
) -> str:
    task, _ = await lifecycle.create_task(
        core,
        user_id,
        tool_id=tool_id,
        agents=agents,
        priority="normal",
        parameters=parameters,
        source_task_id=None,
        labels={},
        idempotency_key=None,
    )
    return str(task["id"])


async def submit_chain(
    core: Core,
    user_id: str,
    *,
    tool_id: str = "profile-my-data",
    agents: list[str] | None = None,
    parameters: dict[str, Any] | None = None,
    files: dict[str, bytes] | None = None,
) -> str:
    """tests.support.submit with a chosen chain and several inputs: create -> streamed uploads -> process,
    through lifecycle as the API does it; a small profile unless told otherwise."""
    task_id = await create(core, user_id, tool_id, agents, parameters)
    for name, data in (files or {"primary.csv": SMALL_CSV}).items():

        async def body(data: bytes = data) -> AsyncIterator[bytes]:
            yield data

        await lifecycle.stream_input(core, user_id, task_id, name, "text/csv", len(data), body())
    await lifecycle.process_task(core, user_id, task_id)
    return task_id


async def ledger(core: Core, task_id: str) -> list[tuple[str | None, int, str]]:
    """(agent id, amount, kind) of the task's ledger lines, oldest first."""
    rows = await core.store.pool.fetch(
        "SELECT agent_id, amount, kind FROM credit_ledger WHERE task_id = $1 ORDER BY id", uuid.UUID(task_id)
    )
    return [(r["agent_id"], r["amount"], r["kind"]) for r in rows]


def debits(agent_ids: list[str]) -> list[tuple[str | None, int, str]]:
    return [(agent_id, -registry.chain_cost([agent_id]), "debit") for agent_id in agent_ids]


async def balance(core: Core, user_id: str) -> int:
    return await lifecycle.credit_balance(core, user_id)


async def test_a_soft_limit_stop_charges_only_the_agents_that_started(core: Core, worker: ChildProcess) -> None:
    user_id = await new_user(core, 1_000)
    task_id = await submit_chain(
        core, user_id, tool_id="diagnostics", agents=SLEEPER_THEN_RATER, parameters=sleeper(60.0, 0.2)
    )
    task = await wait_status(core, task_id, lifecycle.TERMINAL, timeout_s=90)
    assert task["status"] == "COMPLETED", task["error"]
    result = await lifecycle.task_result(core, user_id, task_id)
    assert result["status"] == "partial"
    assert "did not run" in result["agents"]["readiness-rater"]["error"]
    # The sleeper started (and was stopped by the soft limit): charged; the readiness-rater never started.
    assert await ledger(core, task_id) == debits(["sleeper"])
    assert await balance(core, user_id) == 1_000 - registry.chain_cost(["sleeper"])


async def test_an_agent_that_fails_is_given_back_its_credits(core: Core, worker: ChildProcess) -> None:
    """An agent that fails by an error of its own (a bug: no input makes one fail) gave the user nothing: its debit
    is refunded, in a ledger line naming it, and the agents after it that ran are charged. Before: charged."""
    user_id = await new_user(core, 1_000)
    parameters = sleeper(0.0, 0.1, fail=True)
    task_id = await submit_chain(core, user_id, tool_id="diagnostics", agents=SLEEPER_THEN_RATER, parameters=parameters)
    task = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert task["status"] == "COMPLETED", task["error"]
    result = await lifecycle.task_result(core, user_id, task_id)
    assert result["status"] == "partial" and "failed on purpose" in result["agents"]["sleeper"]["error"]
    assert "failed_agents" not in result
    sleeper_cost = registry.chain_cost(["sleeper"])
    assert await ledger(core, task_id) == [*debits(SLEEPER_THEN_RATER), ("sleeper", sleeper_cost, "refund")]
    assert await balance(core, user_id) == 1_000 - registry.chain_cost(["readiness-rater"])
    reason = await core.store.pool.fetchval(
        "SELECT reason FROM credit_ledger WHERE task_id = $1 AND kind = 'refund'", uuid.UUID(task_id)
    )
    assert reason == "refund: sleeper failed"


async def test_the_large_file_path_charges_only_the_streaming_profiler(core: Core, worker: ChildProcess) -> None:
    rows = b"".join(b"%d,%d.5,city%d\n" % (i, i, i % 7) for i in range(200))
    primary = b"id,amount,city\n" + rows
    assert len(primary) > STREAMING_THRESHOLD
    user_id = await new_user(core, 1_000)
    task_id = await submit_chain(core, user_id, files={"primary.csv": primary, "baseline.csv": SMALL_CSV})
    task = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert task["status"] == "COMPLETED", task["error"]
    assert list(task["agents"]) == PROFILE_CHAIN  # with a baseline, drift-detector stays in the chain
    result = await lifecycle.task_result(core, user_id, task_id)
    assert result["status"] == "partial" and result["summary"]["inputs"]["primary"]["streamed"]
    assert await ledger(core, task_id) == debits(["unified-profiler"])
    assert await balance(core, user_id) == 1_000 - registry.chain_cost(["unified-profiler"])


async def test_a_debit_refused_mid_run_fails_the_run_charged_for_what_ran(core: Core, worker: ChildProcess) -> None:
    """The balance covers the whole chain when the run starts; while the sleeper runs, another task of the
    user spends one credit, so the readiness-rater's debit is refused."""
    cost = registry.chain_cost(SLEEPER_THEN_RATER)
    user_id = await new_user(core, cost)
    other_id = await create(core, user_id, "profile-my-data", None, None)
    task_id = await submit_chain(
        core, user_id, tool_id="diagnostics", agents=SLEEPER_THEN_RATER, parameters=sleeper(3.0, 0.1)
    )

    async def sleeper_charged() -> bool:
        return await ledger(core, task_id) == debits(["sleeper"])

    await poll(sleeper_charged, "the sleeper's debit")
    assert (await get_task(core, task_id))["status"] == "PROCESSING"
    assert await core.store.debit_credits(user_id, other_id, [("unified-profiler", 1)], 1) is not None

    task = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert task["status"] == "FAILED" and task["error"]["code"] == "INSUFFICIENT_CREDITS", task["error"]
    assert "readiness-rater" in task["error"]["message"]
    assert await ledger(core, task_id) == debits(["sleeper"])  # charged for what ran, nothing refunded
    assert await balance(core, user_id) == cost - registry.chain_cost(["sleeper"]) - 1
    assert task["outputs"] in (None, [])


async def test_a_refused_debit_stops_the_agent_at_once(core: Core, tmp_path: Path) -> None:
    """The chain runner itself, with a real agent process: the sleeper (60 s) starts, its debit is refused
    (the balance is empty), and its process is killed without waiting for it."""
    user_id = await new_user(core, 0)
    task_id = await create(core, user_id, "diagnostics", None, sleeper(60.0))
    # As a worker's claim leaves it: run 1 holds the task (a debit for a run that does not is no charge at all).
    await core.store.pool.execute(
        "UPDATE tasks SET status = 'PROCESSING', attempts = 1 WHERE id = $1", uuid.UUID(task_id)
    )
    primary = tmp_path / "primary.csv"
    primary.write_bytes(SLEEPER_CSV)
    (tmp_path / "out").mkdir()
    pool = AgentProcesses(1)
    try:
        await asyncio.wait_for(pool.warm(), 60)
        [pid] = pool.pids()
        progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
        task = {"tool_id": "diagnostics", "agents": ["sleeper"]}
        with pytest.raises(TaskFailure) as refused:
            await _run_chain(
                core,
                pool,
                RunHandle(task_id, None, 1, 1),
                user_id,
                task,
                {"primary.csv": primary},
                sleeper(60.0),
                tmp_path / "out",
                progress,
                RunOptions(diagnostics=True),
            )
        assert refused.value.code == "INSUFFICIENT_CREDITS" and "sleeper" in refused.value.message
        assert pid not in pool.pids()  # killed (and replaced), not left to sleep
        assert await ledger(core, task_id) == []
    finally:
        await pool.aclose()


async def test_a_cancelled_run_is_refunded_even_when_its_worker_never_hears(core: Core, worker: ChildProcess) -> None:
    """The cancel itself gives the running attempt's charges back (the control message may be lost: the worker
    then only notices at its next heartbeat), and from then on that run can debit nothing more."""
    user_id = await new_user(core, 1_000)
    task_id = await submit_chain(
        core, user_id, tool_id="diagnostics", agents=SLEEPER_THEN_RATER, parameters=sleeper(60.0, 0.1)
    )

    async def sleeper_charged() -> bool:
        return await ledger(core, task_id) == debits(["sleeper"])

    await poll(sleeper_charged, "the sleeper's debit")

    async def lost(message: str) -> None:
        raise ConnectionError("the control channel is down")

    await lifecycle.cancel_task(dataclasses.replace(core, control=lost), user_id, task_id)
    assert sum(amount for _, amount, _ in await ledger(core, task_id)) == 0  # refunded by the cancel itself
    assert await balance(core, user_id) == 1_000
    assert await lifecycle.debit_agent(core, user_id, task_id, "readiness-rater", 1, 1) == "gone"
    assert await balance(core, user_id) == 1_000


async def test_the_ledger_adds_up_after_a_mix_of_runs(core: Core, worker: ChildProcess) -> None:
    grant = 2_000
    user_id = await new_user(core, grant)
    # Successes: a default profile without a baseline (drift-detector leaves the chain), one with a baseline.
    plain = await submit_chain(core, user_id)
    with_baseline = await submit_chain(core, user_id, files={"primary.csv": SMALL_CSV, "baseline.csv": SMALL_CSV})
    # A failure found only once the data is read: the agents debited so far are refunded.
    bad_column = {"quarantine-agent": {"required_fields": ["nope"]}}
    refunded = await submit_chain(core, user_id, tool_id="clean-my-data", parameters=bad_column)
    # A cancel mid-run: refunded.
    cancelled = await submit_chain(core, user_id, tool_id="diagnostics", parameters=sleeper(60.0, 0.1))

    async def sleeping() -> bool:
        return (await get_task(core, cancelled))["progress"] > 0 and bool(await ledger(core, cancelled))

    await poll(sleeping, "the sleeper to run")
    await lifecycle.cancel_task(core, user_id, cancelled)
    first = {t["id"]: t for t in await wait_finished(core, [plain, with_baseline, refunded, cancelled], 90)}
    assert [first[uuid.UUID(t)]["status"] for t in (plain, with_baseline, refunded, cancelled)] == [
        "COMPLETED", "COMPLETED", "FAILED", "CANCELLED",
    ]  # fmt: skip
    assert list(first[uuid.UUID(plain)]["agents"]) == WITHOUT_DRIFT
    # A retry runs (and charges) again: the refunded failure fails and is refunded again.
    await lifecycle.retry_task(core, user_id, refunded)
    again = await wait_status(core, refunded, lifecycle.TERMINAL)
    assert again["status"] == "FAILED" and again["error"]["code"] == "INVALID_PARAMETERS", again["error"]

    assert await ledger(core, plain) == debits(WITHOUT_DRIFT)
    assert await ledger(core, with_baseline) == debits(PROFILE_CHAIN)
    refunded_lines = await ledger(core, refunded)
    assert refunded_lines[:2] == debits(["cleanse-previewer", "quarantine-agent"])
    assert (
        sum(amount for _, amount, _ in refunded_lines) == 0 and [k for _, _, k in refunded_lines].count("refund") == 2
    )
    assert sum(amount for _, amount, _ in await ledger(core, cancelled)) == 0

    lines = await core.store.pool.fetch(
        "SELECT kind, amount, balance FROM credit_ledger WHERE user_id = $1 ORDER BY id", uuid.UUID(user_id)
    )
    assert_ledger_adds_up(lines, await balance(core, user_id))
    assert await balance(core, user_id) == grant - registry.chain_cost(WITHOUT_DRIFT) - registry.chain_cost(
        PROFILE_CHAIN
    )


def assert_ledger_adds_up(lines: list[asyncpg.Record], credits: int) -> None:
    """Each line's balance is the one before plus its amount, and the user's balance is grants - debits +
    refunds."""
    running = 0
    for line in lines:
        running += line["amount"]
        assert line["balance"] == running, dict(line)
    by_kind: dict[str, int] = {}
    for line in lines:
        by_kind[line["kind"]] = by_kind.get(line["kind"], 0) + line["amount"]
    assert set(by_kind) <= {"grant", "debit", "refund"}
    assert credits == by_kind.get("grant", 0) + by_kind.get("debit", 0) + by_kind.get("refund", 0) == running


async def test_a_service_only_run_is_the_lifecycle_alone_charged_as_a_run(core: Core, worker: ChildProcess) -> None:
    """`sleeper.noop` (bench_dispatch's measure of the service alone): claimed, debited agent by agent, completed
    with no files (not even a manifest), and the task's events as any run's; nothing is stored under its outputs."""
    user_id = await new_user(core, 1_000)
    parameters = {"sleeper": {"noop": True, "seconds": 600}}  # a real run would sleep past the soft limit
    task_id = await submit_chain(core, user_id, tool_id="diagnostics", agents=SLEEPER_THEN_RATER, parameters=parameters)
    task = await wait_status(core, task_id, lifecycle.TERMINAL)
    assert task["status"] == "COMPLETED", task["error"]
    assert task["outputs"] == []
    result = await lifecycle.task_result(core, user_id, task_id)
    assert result["noop"] is True and result["status"] == "success"
    assert set(result["agents"]) == set(SLEEPER_THEN_RATER)
    assert await ledger(core, task_id) == debits(SLEEPER_THEN_RATER)
    statuses = [e.payload["status"] for e in await core.store.task_events_after(task_id, 0) if e.type == "status"]
    assert statuses[-3:] == ["QUEUED", "PROCESSING", "COMPLETED"]
    listed = await core.storage.client.list_objects_v2(
        Bucket=core.storage.bucket, Prefix=lifecycle.outputs_prefix(core.settings, user_id, task_id)
    )
    assert listed.get("KeyCount", 0) == 0


async def test_a_run_whose_last_attempt_hits_a_transient_fault_is_refunded(core: Core) -> None:
    """The attempts used up by a fault of ours (the object store, the network): FAILED `INTERNAL_ERROR`, and the
    last run's debits come back as the earlier runs' did (before: the user paid for the run that failed)."""
    user_id = await new_user(core, 100)
    task_id = await create(core, user_id, "profile-my-data", None, None)
    await core.store.pool.execute(
        "UPDATE tasks SET status = 'PROCESSING', attempts = 3, job_id = 'last-run' WHERE id = $1", uuid.UUID(task_id)
    )
    for agent_id in ("unified-profiler", "drift-detector"):
        assert await lifecycle.debit_agent(core, user_id, task_id, agent_id, registry.chain_cost([agent_id]), 3) == (
            "debited"
        )
    handle = RunHandle(task_id, "last-run", 3, core.settings.max_attempts)
    outcome = await _retry_later(core, handle, user_id, OSError(28, "No space left on device"))
    assert outcome == "FAILED"
    row = await get_task(core, task_id)
    assert row["status"] == "FAILED" and row["error"]["code"] == "INTERNAL_ERROR"
    assert "kept failing" in row["error"]["message"]
    lines = await ledger(core, task_id)
    assert lines[:2] == debits(["unified-profiler", "drift-detector"])
    assert [kind for _, _, kind in lines[2:]] == ["refund"] and sum(amount for _, amount, _ in lines) == 0
    assert await balance(core, user_id) == 100
