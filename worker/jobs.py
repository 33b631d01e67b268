"""The arq job functions: thin wrappers over the runner and lifecycle."""

from __future__ import annotations

import logging
from typing import Any

import structlog

from service import lifecycle
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


async def copy_cache_hit(ctx: dict[str, Any], task_id: str) -> bool:
    """A cache hit's own copies of the outputs it reuses (lifecycle.copy_cache_hit), enqueued by the API that
    answered it; True when this job made them, False when they were made already or the task is gone."""
    with structlog.contextvars.bound_contextvars(task_id=task_id):
        return await lifecycle.copy_cache_hit(ctx["core"], task_id)
