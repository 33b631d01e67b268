"""The runner's progress forwarding (worker/runner.py `_forward_progress`) against a real PostgreSQL: which of an
agent process's messages become progress events, and the last one handed back to be written with the outcome."""

from __future__ import annotations

import asyncio

import pytest

from service.config import Settings
from service.lifecycle import Core
from service.store import Event, TaskStore
from tests.support import task_spec
from worker.agent_procs import ProgressMessage
from worker.runner import FLUSH, RunHandle, _forward_progress

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, *events: Event) -> None:
        self.events.extend(events)


async def no_queue(*args: object) -> None:
    """Nothing is enqueued here: no worker serves these tasks."""


async def processing_task(store: TaskStore, publish: Recorder) -> tuple[str, str]:
    """A task PROCESSING under its job, as a worker's claim leaves it: (task id, job id)."""
    user_id, _ = await store.create_user("forwarding")
    row, _ = await store.insert_task(task_spec(user_id))
    task_id = str(row["id"])
    inputs = [{"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 3}]
    await store.transition("mark_uploading", task_id, [inputs, False, ["CREATED", "UPLOADING"]], publish, user_id)
    await store.transition("mark_queued", task_id, [["UPLOADING"], None, None, None], publish, user_id)
    job_id = next(job for task, job, _ in await store.dispatch_user(user_id, 100, {}) if task == task_id)
    claim = await store.transition("claim_job", task_id, ["w1", job_id], publish)
    assert claim.row is not None
    return task_id, job_id


async def test_progress_goes_out_when_the_agent_changes_and_the_last_message_comes_back(
    settings: Settings, store: TaskStore
) -> None:
    """Within one interval (an hour here: no timing decides it) only a change of agent is written at once; steps
    outside any agent (None) are no change among themselves. The run's last message, unsent, comes back on FLUSH
    with the highest percentage seen (at most 99) for the run to write with its outcome."""
    publish = Recorder()
    task_id, job_id = await processing_task(store, publish)
    core = Core(settings.model_copy(update={"progress_min_interval_s": 3600.0}), store, None, publish, no_queue)  # type: ignore[arg-type]
    publish.events.clear()
    queue: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    messages: list[tuple[int, str | None, str]] = [
        (1, None, "Reading primary.csv"),
        (10, None, "Inputs parsed"),
        (10, "unified-profiler", "Running Unified Profiler"),
        (58, "unified-profiler", "Computing outliers"),
        (90, "unified-profiler", "Profile complete"),
        (90, None, "Unified Profiler done"),
        (90, None, "Writing reports"),
        (100, None, "Done"),
    ]
    for percent, agent, message in messages:
        queue.put_nowait(("run", percent, agent, message))
    queue.put_nowait(FLUSH)
    handle = RunHandle(task_id, job_id, 1, 1)

    last = await _forward_progress(core, handle, queue)

    assert last == (99, None, "Done")
    written = [(e.payload["progress"], e.payload["current_agent"], e.payload["message"]) for e in publish.events]
    assert written == [(10, "unified-profiler", "Running Unified Profiler"), (90, None, "Unified Profiler done")]
    assert all(e.type == "progress" for e in publish.events)
