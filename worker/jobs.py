"""The arq job functions: thin wrappers over the runner."""

from __future__ import annotations

import logging
from typing import Any

import structlog

from worker.runner import execute_task

log = logging.getLogger("agensium.worker")


async def run_task(ctx: dict[str, Any], task_id: str) -> str:
    # Every log line of the run (and of the tasks it starts) carries the task id.
    with structlog.contextvars.bound_contextvars(task_id=task_id):
        outcome = str(
            await execute_task(
                ctx["core"], ctx["agent_pool"], task_id, ctx["worker_id"], ctx["job_id"], ctx["running_tasks"]
            )
        )
        log.info("task run ended: %s", outcome, extra={"outcome": outcome})
        return outcome
