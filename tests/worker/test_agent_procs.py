"""Agent processes with real spawned processes and the diagnostics sleeper: a cancelled or runaway run is
killed without touching the run next to it, a process that dies is reported and replaced, soft limits,
progress and errors come back as the chain gives them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from agents.chain import SOFT_LIMIT_MESSAGE
from agents.errors import InvalidParametersError
from agents.options import RunOptions
from worker.agent_procs import AgentProcessDied, AgentProcesses, ProgressMessage, resident_bytes

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEADLINE_S = 2.0  # a killed process is gone, its replacement started, within this
WARM_S = 60.0  # a fresh process imports every agent before its first run


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agent-procs") / "primary.csv"
    path.write_text("id,value\n1,a\n2,b\n3,c\n")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def procs() -> AsyncIterator[AgentProcesses]:
    pool = AgentProcesses(2)
    try:
        await asyncio.wait_for(pool.warm(), WARM_S)
        yield pool
    finally:
        await pool.aclose()


async def sleep(
    pool: AgentProcesses,
    primary: Path,
    out_dir: Path,
    progress: asyncio.Queue[ProgressMessage] | None = None,
    soft_deadline: float | None = None,
    **params: Any,
) -> dict[str, Any]:
    return await pool.run(
        "diagnostics",
        ["sleeper"],
        {"primary.csv": primary},
        {"sleeper": {"step_s": 0.05, **params}},
        out_dir,
        progress if progress is not None else asyncio.Queue(),
        soft_deadline=soft_deadline,
        options=RunOptions(diagnostics=True),  # sent with the job, as the worker sends its settings'
    )


async def sleeper_pid(progress: asyncio.Queue[ProgressMessage]) -> int:
    """The pid the sleeper names as it starts."""
    async with asyncio.timeout(WARM_S):
        while True:
            _, _, agent, message = await progress.get()
            found = re.search(r"in process (\d+)", message)
            if agent == "sleeper" and found:
                return int(found.group(1))


async def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE_S) -> float:
    """Seconds until ``condition`` held (polled with a deadline); fails past ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def gone(pid: int) -> bool:
    return not psutil.pid_exists(pid)


async def test_progress_messages_arrive_in_order(procs: AgentProcesses, primary: Path, tmp_path: Path) -> None:
    progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    result = await sleep(procs, primary, tmp_path, progress, seconds=0.4)
    assert result["status"] == "success" and result["tool_id"] == "diagnostics"
    data = result["agents"]["sleeper"]["data"]
    assert data["rows"] == 3 and data["seconds_slept"] >= 0.4 and data["pid"] in procs.pids()
    messages = [progress.get_nowait() for _ in range(progress.qsize())]  # all in before the result
    assert len({run_id for run_id, *_ in messages}) == 1
    percents = [percent for _, percent, _, _ in messages]
    assert percents == sorted(percents) and percents[-1] == 100
    assert sum(agent == "sleeper" for _, _, agent, _ in messages) >= 5  # one per step of 0.05 s
    assert [o["name"] for o in result["outputs"]] == [
        "diagnostics.json", "diagnostics.xlsx", "row_level_issues.parquet", "row_level_issues.csv",
    ]  # fmt: skip
    assert (tmp_path / "diagnostics.json").stat().st_size > 0


async def test_cancelled_run_is_killed_and_the_other_run_completes(
    procs: AgentProcesses, primary: Path, tmp_path: Path
) -> None:
    before = set(procs.pids())
    doomed_progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    doomed = asyncio.create_task(sleep(procs, primary, tmp_path / "doomed", doomed_progress, seconds=60))
    survivor_progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    survivor = asyncio.create_task(sleep(procs, primary, tmp_path / "survivor", survivor_progress, seconds=1.5))
    doomed_pid = await sleeper_pid(doomed_progress)
    survivor_pid = await sleeper_pid(survivor_progress)
    assert {doomed_pid, survivor_pid} == before

    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await wait_until(lambda: gone(doomed_pid)) < DEADLINE_S
    assert doomed_pid not in procs.pids()
    assert len(procs.pids()) == 2  # with its replacement, warming up
    assert survivor_pid in procs.pids()

    result = await survivor
    assert result["status"] == "success" and result["agents"]["sleeper"]["data"]["pid"] == survivor_pid
    # Once warm, the replacement takes runs: two at once run side by side.
    await asyncio.wait_for(procs.warm(), WARM_S)
    pids = await asyncio.gather(*(sleep(procs, primary, tmp_path / f"after{i}", seconds=0.3) for i in range(2)))
    assert {r["agents"]["sleeper"]["data"]["pid"] for r in pids} == set(procs.pids()) > {survivor_pid}


async def test_cancelled_while_waiting_for_a_process_kills_nothing(
    procs: AgentProcesses, primary: Path, tmp_path: Path
) -> None:
    before = set(procs.pids())
    queues: list[asyncio.Queue[ProgressMessage]] = [asyncio.Queue(), asyncio.Queue()]
    busy = [asyncio.create_task(sleep(procs, primary, tmp_path / str(i), q, seconds=1.0)) for i, q in enumerate(queues)]
    for q in queues:
        await sleeper_pid(q)
    waiting = asyncio.create_task(sleep(procs, primary, tmp_path / "waiting", seconds=0.1))
    await asyncio.sleep(0)  # one loop turn: the task runs up to its wait for a process (both are busy)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    results = await asyncio.gather(*busy)
    assert all(result["status"] == "success" for result in results)
    assert set(procs.pids()) == before
    # Both processes are free again: the cancelled wait kept neither.
    again = await asyncio.gather(*(sleep(procs, primary, tmp_path / f"again{i}", seconds=0.3) for i in range(2)))
    assert {result["agents"]["sleeper"]["data"]["pid"] for result in again} == before


async def test_soft_deadline_stops_the_agent_with_a_partial_result(
    procs: AgentProcesses, primary: Path, tmp_path: Path
) -> None:
    progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    started = time.monotonic()
    result = await sleep(procs, primary, tmp_path, progress, soft_deadline=time.time() + 0.5, seconds=30)
    assert time.monotonic() - started < 10
    assert result["status"] == "partial"
    envelope = result["agents"]["sleeper"]
    assert envelope["status"] == "error" and SOFT_LIMIT_MESSAGE in envelope["error"]
    assert (tmp_path / "diagnostics.json").exists()  # the reports of what ran are still written


async def test_runaway_run_is_killed_by_a_hard_timeout(procs: AgentProcesses, primary: Path, tmp_path: Path) -> None:
    before = set(procs.pids())
    progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.0):
            # The soft limit passes while it runs, and cannot stop it: it never reports progress.
            await sleep(procs, primary, tmp_path, progress, soft_deadline=time.time() + 0.5, seconds=120, runaway=True)
    killed = before - set(procs.pids())
    assert len(killed) == 1
    pid = killed.pop()
    assert await wait_until(lambda: gone(pid)) < DEADLINE_S
    assert len(procs.pids()) == 2  # with its replacement, warming up


async def test_process_that_dies_raises_and_is_replaced(procs: AgentProcesses, primary: Path, tmp_path: Path) -> None:
    progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    run = asyncio.create_task(sleep(procs, primary, tmp_path / "dies", progress, seconds=60))
    pid = await sleeper_pid(progress)
    os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
    with pytest.raises(AgentProcessDied) as died:
        await asyncio.wait_for(run, DEADLINE_S)
    assert died.value.exitcode == -signal.SIGKILL
    await wait_until(lambda: len(procs.pids()) == 2 and pid not in procs.pids())
    await asyncio.wait_for(procs.warm(), WARM_S)
    results = await asyncio.gather(*(sleep(procs, primary, tmp_path / f"next{i}", seconds=0.3) for i in range(2)))
    assert {r["agents"]["sleeper"]["data"]["pid"] for r in results} == set(procs.pids())


async def test_errors_come_back_as_the_chain_raised_them(procs: AgentProcesses, primary: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParametersError) as raised:
        await sleep(procs, primary, tmp_path / "bad", seconds="long")
    assert raised.value.code == "INVALID_PARAMETERS" and raised.value.details["agent_id"] == "sleeper"
    assert "sleeper.seconds" in raised.value.message
    # An agent's own failure is its envelope's error; the chain goes on to a partial result.
    result = await sleep(procs, primary, tmp_path / "fails", seconds=0, fail=True)
    assert result["status"] == "partial"
    assert "failed on purpose" in result["agents"]["sleeper"]["error"]


async def test_process_is_recycled_when_a_run_leaves_it_grown(primary: Path, tmp_path: Path) -> None:
    """Memory hygiene by size: a growth allowance below any real size recycles after every run; the default one
    keeps a process whose memory stayed as it was (warming up again costs 1-2 s of CPU per process)."""
    recycling = AgentProcesses(1, recycle_growth_bytes=-(10**15))
    keeping = AgentProcesses(1)
    try:
        for pool, name in ((recycling, "recycling"), (keeping, "keeping")):
            pids = []
            for index in range(3):
                result = await asyncio.wait_for(sleep(pool, primary, tmp_path / f"{name}{index}", seconds=0), WARM_S)
                pids.append(result["agents"]["sleeper"]["data"]["pid"])
            if pool is recycling:
                assert len(set(pids)) == 3
            else:
                assert len(set(pids)) == 1
                assert pool.pids() == pids[:1]
    finally:
        await recycling.aclose()
        await keeping.aclose()


async def test_resident_bytes() -> None:
    assert resident_bytes(os.getpid()) > 10 * 1024**2  # this interpreter with pytest loaded
    assert resident_bytes(2**31 - 1) == 0  # no such process


async def test_process_is_recycled_after_max_runs(primary: Path, tmp_path: Path) -> None:
    pool = AgentProcesses(1, max_runs_per_process=2)
    try:
        pids = []
        for index in range(3):
            result = await asyncio.wait_for(sleep(pool, primary, tmp_path / str(index), seconds=0), WARM_S)
            pids.append(result["agents"]["sleeper"]["data"]["pid"])
        assert pids[0] == pids[1] != pids[2]
        await wait_until(lambda: gone(pids[0]))
        assert pool.pids() == [pids[2]]
    finally:
        await pool.aclose()
    assert await wait_until(lambda: gone(pids[2])) < DEADLINE_S
    with pytest.raises(RuntimeError, match="shut down"):
        await sleep(pool, primary, tmp_path / "closed", seconds=0)
