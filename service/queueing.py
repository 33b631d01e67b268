"""Putting task jobs in the arq queue: priorities as queue scores, dispatch under the per-user cap.

arq runs the ready job with the lowest score first (scores are enqueue times in ms). A job's score is
its enqueue time minus its priority's head start, so an urgent job goes before every normal job queued
in the last day, and a low job only waits behind normal jobs queued within five minutes after it
(aging). Retries after a backoff are deferred: their score is the time they become due.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis

from service.config import Settings

log = logging.getLogger("agensium.queue")

Enqueue = Callable[[str, str, str, float], Awaitable[None]]  # (task id, job id, priority, defer seconds)

JOB_FUNCTION = "run_task"
JOB_EXPIRES = timedelta(days=2)  # arq drops a job not started by then; the reconciler enqueues it again


def job_score_ms(settings: Settings, priority: str, defer_s: float = 0.0, now_s: float | None = None) -> int:
    now = time.time() if now_s is None else now_s
    if defer_s > 0:
        return int((now + defer_s) * 1000)
    return int((now - settings.priority_head_start_s.get(priority, 0.0)) * 1000)


def make_enqueue(redis: ArqRedis, settings: Settings, *, swallow_errors: bool) -> Enqueue:
    """The Core's enqueue. With `swallow_errors` a Redis outage is logged and the task stays QUEUED in
    PostgreSQL, where the reconciler finds it and enqueues it once Redis is back (the API's choice:
    `process` still succeeds)."""

    async def enqueue(task_id: str, job_id: str, priority: str = "normal", defer_s: float = 0.0) -> None:
        score = job_score_ms(settings, priority, defer_s)
        try:
            await redis.enqueue_job(
                JOB_FUNCTION,
                task_id,
                _job_id=job_id,
                _queue_name=settings.arq_queue_name,
                _defer_until=datetime.fromtimestamp(score / 1000, UTC),
                _expires=JOB_EXPIRES,
            )
        except Exception as exc:
            if not swallow_errors:
                raise
            log.warning("enqueue of task %s failed; it stays QUEUED and is enqueued again later: %s", task_id, exc)

    return enqueue
