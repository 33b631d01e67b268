"""arq worker settings: the job table, start-up/shutdown of the resources a worker holds."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

from arq import run_worker
from arq.connections import RedisSettings
from arq.worker import Worker, create_worker

from service.config import Settings
from service.events import EventPublisher
from service.lifecycle import Core
from service.storage import Storage
from service.store import TaskStore
from worker import recovery
from worker.jobs import run_task
from worker.runner import AgentPool

log = logging.getLogger("agensium.worker")


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    store = await TaskStore.connect(settings.database_url, 1, max(4, settings.worker_concurrency + 2))
    storage = Storage(settings)
    await storage.__aenter__()
    redis = ctx["redis"]
    publish = EventPublisher(redis, settings.events_channel_prefix + "all")

    async def enqueue(task_id: str, job_id: str) -> None:
        await redis.enqueue_job("run_task", task_id, _job_id=job_id, _queue_name=settings.arq_queue_name)

    ctx["core"] = Core(settings, store, storage, publish, enqueue)
    ctx["agent_pool"] = AgentPool(settings.agent_processes)
    ctx["worker_id"] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    ctx["running_tasks"] = set()  # ids of the tasks this worker runs: their heartbeat is refreshed
    recovery.start(ctx)
    log.info("worker %s ready (queue %s)", ctx["worker_id"], settings.arq_queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    await recovery.stop(ctx)
    if "agent_pool" in ctx:
        ctx["agent_pool"].close()
    if "core" in ctx:
        await ctx["core"].storage.__aexit__(None, None, None)
        await ctx["core"].store.close()


class WorkerSettings:
    functions = [run_task]
    on_startup = startup
    on_shutdown = shutdown
    max_tries = 1  # retries of transient faults are decided by the runner, not by re-running jobs
    keep_result = 60
    handle_signals = True


def worker_options(settings: Settings) -> dict[str, Any]:
    return {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.arq_queue_name,
        "poll_delay": settings.poll_delay_s,
        "max_jobs": settings.worker_concurrency,
        "job_timeout": settings.job_timeout_s,
        "ctx": {"settings": settings},
    }


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    return create_worker(WorkerSettings, **{**worker_options(settings), **overrides})  # type: ignore[arg-type]


def run(settings: Settings) -> None:
    run_worker(WorkerSettings, **worker_options(settings))  # type: ignore[arg-type]
