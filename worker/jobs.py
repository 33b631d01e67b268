"""The arq job functions: thin wrappers over the runner."""

from __future__ import annotations

from typing import Any

from worker.runner import execute_task


async def run_task(ctx: dict[str, Any], task_id: str) -> str:
    return str(
        await execute_task(
            ctx["core"], ctx["agent_pool"], task_id, ctx["worker_id"], ctx.get("job_id"), ctx["running_tasks"]
        )
    )
