"""Putting task jobs in the arq queue: priorities as queue scores, dispatch under the per-user cap.

arq runs the ready job with the lowest score first (scores are enqueue times in ms). A job's score is
its enqueue time minus its priority's head start, so an urgent job goes before every normal job queued
in the last day, and a low job only waits behind normal jobs queued within five minutes after it
(aging). Retries after a backoff are deferred: their score is the time they become due.

The same queue carries a cache hit's copy job: its own server-side copies of the outputs it reuses, made by a
worker rather than by the API process that answered the hit.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Protocol

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms

from service.config import Settings

log = logging.getLogger("agensium.queue")

JOB_FUNCTION = "run_task"
COPY_FUNCTION = "copy_cache_hit"  # worker/jobs.py: a cache hit's own copies of its outputs
JOB_EXPIRES = timedelta(days=2)  # arq drops a job not started by then; the reconciler enqueues it again
# A cache hit's copy job waits this long: a burst of hits (a page re-running its searches) is answered before their
# copies compete with it for the CPU and the object store. Meanwhile the hit reads the objects of the task it reused.
COPY_JOB_DEFER = timedelta(seconds=10)

# arq's enqueue_job in one round trip instead of three (WATCH, EXISTS, MULTI/EXEC): the same check, that neither the
# job nor a result of it is held, and the same writes, the job (with its expiry) and its queue entry, atomically.
# KEYS: job key, result key, queue; ARGV: expiry ms, serialized job, score, job id. 1 when enqueued, 0 when held.
ENQUEUE_SCRIPT = """
if redis.call('exists', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('psetex', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


def job_score_ms(settings: Settings, priority: str, defer_s: float = 0.0, now_s: float | None = None) -> int:
    now = time.time() if now_s is None else now_s
    if defer_s > 0:
        return int((now + defer_s) * 1000)
    return int((now - settings.priority_head_start_s.get(priority, 0.0)) * 1000)


class Enqueue(Protocol):
    """The Core's job queue: called, it enqueues a task's run; `copies` enqueues a cache hit's copy job."""

    async def __call__(self, task_id: str, job_id: str, priority: str = "normal", defer_s: float = 0.0) -> None: ...

    async def copies(self, task_id: str) -> None: ...


class JobQueue:
    """The arq queue behind the Core's enqueue. With `swallow_errors` a Redis outage is logged and the task stays
    QUEUED in PostgreSQL, where the reconciler finds it and enqueues it once Redis is back (the API's choice:
    `process` still succeeds)."""

    def __init__(self, redis: ArqRedis, settings: Settings, *, swallow_errors: bool) -> None:
        self.redis = redis
        self.settings = settings
        self.swallow_errors = swallow_errors
        self._enqueue_script = redis.register_script(ENQUEUE_SCRIPT)

    async def __call__(self, task_id: str, job_id: str, priority: str = "normal", defer_s: float = 0.0) -> None:
        score = job_score_ms(self.settings, priority, defer_s)
        try:
            await self.enqueue_job(JOB_FUNCTION, task_id, job_id, score)
        except Exception as exc:
            if not self.swallow_errors:
                raise
            log.warning("enqueue of task %s failed; it stays QUEUED and is enqueued again later: %s", task_id, exc)

    async def copies(self, task_id: str) -> None:
        """Enqueue cache hit `task_id`'s copy job, due after COPY_JOB_DEFER (one id per hit: arq refuses a second
        while it holds the first). Redis is only its transport: when the job is lost, the maintenance sweep makes
        the copies later, and deleting the reused task makes them first; so a failure here is only logged, whatever
        `swallow_errors`."""
        try:
            await self.redis.enqueue_job(
                COPY_FUNCTION,
                task_id,
                _job_id=f"copies:{task_id}",
                _queue_name=self.settings.arq_queue_name,
                _defer_by=COPY_JOB_DEFER,
                _expires=JOB_EXPIRES,
            )
        except Exception as exc:  # noqa: BLE001 - transport only (docstring)
            log.warning("copy job of cache hit %s not enqueued; the maintenance sweep makes them: %s", task_id, exc)

    async def enqueue_job(self, function: str, argument: str, job_id: str, score_ms: int) -> bool:
        """arq's `enqueue_job(function, argument, _job_id=job_id, _defer_until=<score_ms>, _expires=JOB_EXPIRES)` in
        one round trip (ENQUEUE_SCRIPT): the same job bytes, expiry and score; False when arq holds the job id
        already (queued, or a kept result), as arq returns None then."""
        redis = self.redis
        job = serialize_job(function, (argument,), {}, None, timestamp_ms(), serializer=redis.job_serializer)
        keys = [job_key_prefix + job_id, result_key_prefix + job_id, self.settings.arq_queue_name]
        expires_ms = int(JOB_EXPIRES.total_seconds() * 1000)
        return bool(await self._enqueue_script(keys=keys, args=[expires_ms, job, score_ms, job_id]))


def make_enqueue(redis: ArqRedis, settings: Settings, *, swallow_errors: bool) -> JobQueue:
    """The Core's enqueue (JobQueue)."""
    return JobQueue(redis, settings, swallow_errors=swallow_errors)
