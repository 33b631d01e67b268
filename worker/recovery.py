"""Recovery: worker heartbeats, the reaper of tasks whose worker was lost, the queue reconciler, and
the control channel that stops cancelled runs.

PostgreSQL is the truth; Redis and workers may vanish. Every worker runs three loops:
- the heartbeat registers the worker and refreshes `heartbeat_at` of each task it runs; a run whose
  task did not beat is no longer this worker's (cancelled, or re-queued while it looked dead) and
  is stopped;
- recovery re-queues (or, after `max_attempts` runs, fails) PROCESSING tasks whose heartbeat went
  stale, enqueues again QUEUED tasks whose arq job is missing from Redis, and dispatches tasks
  waiting for their user's running cap (normally dispatched as soon as a slot frees);
- the control listener stops a run as soon as the API says its task was cancelled.
Both recovery steps are conditional UPDATEs (lifecycle.recover_stale_task, replace_lost_job), so
many workers run them at once and a task is re-queued by one of them only. Each re-queue has a
fresh job id, and a job claims its task only while it is the task's current job: a stale job that
surfaces later (a dead worker's arq job, once its in-progress key expires) claims nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix

from service import lifecycle
from service.lifecycle import Core
from worker.runner import RunHandle

log = logging.getLogger("agensium.worker")


async def heartbeat_once(core: Core, worker_id: str, running: dict[str, RunHandle]) -> int:
    """Beat for the worker and its runs; stop the runs whose task is no longer theirs. Returns how many beat."""
    handles = list(running.values())
    beaten = await core.store.worker_heartbeat(
        worker_id, socket.gethostname(), os.getpid(), [h.task_id for h in handles]
    )
    for handle in handles:
        # A run that ended meanwhile left `running`; one still there whose task did not beat lost it.
        if handle.task_id not in beaten and running.get(handle.task_id) is handle and not handle.finishing:
            log.warning("task %s is no longer this worker's (cancelled or re-queued): stopping its run", handle.task_id)
            handle.stop("lost")
    return len(beaten)


async def reap_stale_tasks(core: Core) -> int:
    """Re-queue or fail the PROCESSING tasks whose worker stopped beating; returns how many this
    reaper took (another reaper may take some of the same candidates first)."""
    settings = core.settings
    recovered = 0
    for task_id, attempts, runs in await core.store.stale_tasks(settings.stale_after_s):
        row = await lifecycle.recover_stale_task(core, task_id, attempts, runs)
        if row is not None:
            recovered += 1
            log.warning("task %s lost its worker after attempt %d: now %s", task_id, attempts, row["status"])
    await core.store.forget_silent_workers(max(settings.stale_after_s, 3 * settings.heartbeat_interval_s))
    return recovered


async def missing_jobs(redis: ArqRedis, queue_name: str, jobs: list[tuple[str, str | None]]) -> list[int]:
    """Indexes of `jobs` ((task id, job id)) that arq will never run: not in the queue, or without
    their job key (arq drops such an entry). A running job is in both until it finishes."""
    if not jobs:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for _, job_id in jobs:
            pipe.zscore(queue_name, job_id or "")
            pipe.exists(job_key_prefix + (job_id or ""))
        answers = await pipe.execute()
    return [
        i
        for i, (score, exists) in enumerate(zip(answers[::2], answers[1::2], strict=True))
        if jobs[i][1] is None or score is None or not exists
    ]


async def reconcile_queue(core: Core, redis: ArqRedis) -> int:
    """Enqueue again the QUEUED tasks whose job is not in Redis; returns how many this reconciler did.
    Tasks enqueued less than `reconcile_after_s` ago are left alone (their enqueue may be in flight)."""
    settings = core.settings
    candidates = await core.store.queued_tasks_to_check(settings.reconcile_after_s)
    replaced = 0
    for i in await missing_jobs(redis, settings.arq_queue_name, candidates):
        task_id, old_job_id = candidates[i]
        if await lifecycle.replace_lost_job(core, task_id, old_job_id) is not None:
            replaced += 1
            log.warning("task %s was QUEUED without a job in Redis (%s): enqueued again", task_id, old_job_id)
    return replaced


async def _every(interval_s: float, step: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run `step` every `interval_s` until cancelled; a failing step (database or Redis away) is logged
    and tried again at the next tick."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep the loop alive; the next tick retries
            log.warning("%s failed: %s", name, exc)
        await asyncio.sleep(interval_s)


async def dispatch_waiting(core: Core) -> int:
    """Dispatch the tasks waiting for their user's running cap (a safety net: a run's end dispatches the
    next one at once, unless its worker died first)."""
    return sum([await lifecycle.dispatch_user(core, user_id) for user_id in await core.store.users_waiting_dispatch()])


async def _recover(core: Core, redis: ArqRedis) -> None:
    await reap_stale_tasks(core)
    await reconcile_queue(core, redis)
    await dispatch_waiting(core)


async def listen_control(core: Core, redis: ArqRedis, running: dict[str, RunHandle]) -> None:
    """Stop runs of cancelled tasks as the API announces them; reconnects while Redis is away (the
    heartbeat covers the gap)."""
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(core.settings.control_channel)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                verb, _, task_id = message["data"].decode().partition(" ")
                handle = running.get(task_id)
                if verb == "cancel" and handle is not None:
                    log.info("task %s cancelled: stopping its run", task_id)
                    handle.stop("cancelled")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis away: listen again shortly
            log.warning("control channel lost: %s; reconnecting", exc)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        await asyncio.sleep(1.0)


def start(ctx: dict[str, Any]) -> None:
    """Start the heartbeat and recovery loops of a worker (after its first heartbeat registered it)."""
    core: Core = ctx["core"]
    settings = core.settings
    running: dict[str, RunHandle] = ctx["running_tasks"]
    worker_id: str = ctx["worker_id"]
    ctx["recovery_loops"] = [
        asyncio.create_task(
            _every(settings.heartbeat_interval_s, lambda: heartbeat_once(core, worker_id, running), "heartbeat"),
            name="worker-heartbeat",
        ),
        asyncio.create_task(
            _every(settings.reaper_interval_s, lambda: _recover(core, ctx["redis"]), "recovery"),
            name="worker-recovery",
        ),
        asyncio.create_task(listen_control(core, ctx["redis"], running), name="worker-control"),
    ]


async def stop(ctx: dict[str, Any]) -> None:
    """Stop the loops and leave the registry (a clean shutdown)."""
    loops: list[asyncio.Task[None]] = ctx.pop("recovery_loops", [])
    for loop in loops:
        loop.cancel()
    for loop in loops:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await loop
    if "core" in ctx:
        with contextlib.suppress(Exception):
            await ctx["core"].store.deregister_worker(ctx["worker_id"])
