"""arq worker settings: the job table, start-up/shutdown of the resources a worker holds, and the two
changes to arq's worker loop that priorities and outages need (AgensiumWorker)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import socket
import uuid
from typing import Any

import redis.exceptions
import uvloop
from arq import cron
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker, get_kwargs

from service.config import Settings
from service.events import EventPublisher
from service.lifecycle import Core
from service.queueing import make_enqueue
from service.storage import Storage
from service.store import TaskStore
from worker import metrics, recovery
from worker.agent_procs import AgentProcesses
from worker.job_log import correct_start_delays
from worker.jobs import copy_cache_hit, run_task
from worker.maintenance import maintenance_cron

log = logging.getLogger("agensium.worker")
arq_log = logging.getLogger("arq.worker")

# arq's start of a job in one round trip instead of five: Worker.start_jobs' transaction (WATCH, EXISTS, ZSCORE,
# MULTI/PSETEX/EXEC: that no worker has the job in progress and that it is in the queue and due, then its in-progress
# key) and the first step of Worker.run_job (a MULTI/EXEC reading the job and counting the try), atomically.
# KEYS: in-progress key, queue, job key, retry key; ARGV: job id, now (ms), in-progress timeout (ms), retry key expiry
# (s). Returns {score, job or false, try}, else nothing (false: running elsewhere, gone from the queue, or not due).
START_JOB_SCRIPT = """
if redis.call('exists', KEYS[1]) == 1 then return false end
local score = redis.call('zscore', KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
redis.call('psetex', KEYS[1], ARGV[3], '1')
local job = redis.call('get', KEYS[3])
local try = redis.call('incr', KEYS[4])
redis.call('expire', KEYS[4], ARGV[4])
return {score, job, try}
"""
RETRY_KEY_EXPIRY_S = 88400  # arq's Worker.run_job

# (job bytes or None, try) of the job whose run_job starts in this context, read by START_JOB_SCRIPT: run_job's own
# first pipeline returns them instead of asking Redis (_Prefetched).
_PREFETCHED: contextvars.ContextVar[tuple[bytes | None, int] | None] = contextvars.ContextVar(
    "agensium_prefetched_job", default=None
)


class _PrefetchedPipeline:
    """run_job's first pipeline (GET job, INCR try, EXPIRE), answered with what START_JOB_SCRIPT read."""

    def __init__(self, job: bytes | None, job_try: int) -> None:
        self._results = [job, job_try, True]
        self._commands = 0

    async def __aenter__(self) -> _PrefetchedPipeline:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def get(self, key: str) -> None:
        self._commands += 1

    def incr(self, key: str) -> None:
        self._commands += 1

    def expire(self, key: str, seconds: int) -> None:
        self._commands += 1

    async def execute(self) -> list[Any]:
        if self._commands != len(self._results):
            raise RuntimeError("arq's run_job asked its first pipeline for other commands than START_JOB_SCRIPT read")
        return self._results


class _Prefetched:
    """The worker's Redis pool as run_job sees it while its job's start was read ahead: its first `pipeline()`
    is answered from that read, everything else goes to the pool."""

    def __init__(self, pool: Any, job: bytes | None, job_try: int) -> None:
        self._pool = pool
        self._job = job
        self._job_try = job_try

    def pipeline(self, transaction: bool = True) -> Any:
        _PREFETCHED.set(None)
        return _PrefetchedPipeline(self._job, self._job_try)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class AgensiumWorker(Worker):
    """arq's Worker, with four changes:
    - it takes from the queue only as many jobs as it has free slots, each poll: arq reads a batch of
      ready job ids and then waits for slots with that stale batch in hand, so a job enqueued later with
      a better score (an urgent task) would wait behind the whole batch;
    - it passes over the ids of the jobs it is running itself: a job stays in the queue until it ends, so the
      running ones are the first ids a poll reads, and arq learns that each is taken from Redis (three round
      trips per id: with 16 jobs running, ~45 to start the 16th);
    - it starts a job in one round trip (START_JOB_SCRIPT), where arq takes five;
    - a Redis outage does not end the worker: a failing poll is logged and tried again with backoff,
      while the running tasks go on (their state is in PostgreSQL)."""

    _outage_delay_s = 0.0

    _start_job_script: Any = None

    @property
    def pool(self) -> Any:
        prefetched = _PREFETCHED.get()
        if prefetched is None:
            return self._pool
        return _Prefetched(self._pool, *prefetched)

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        for job_id_b in job_ids:
            if self.sem.locked():  # no free slot: the next poll reads the queue afresh
                return
            job_id = job_id_b.decode()
            running = self.tasks.get(job_id)
            if running is not None and not running.done():  # ours, running: its in-progress key says so too
                continue
            await self._start_job(job_id)

    async def _start_job(self, job_id: str) -> None:
        """arq's Worker.start_jobs for one job, its Redis transaction and run_job's first read as one script
        (START_JOB_SCRIPT). A worker that may abort jobs reads more at a job's start: arq's own start then."""
        if self.allow_abort_jobs:
            await super().start_jobs([job_id.encode()])
            return
        await self.sem.acquire()
        if self.job_counter >= self.max_jobs:
            self.sem.release()
            return
        self.job_counter = self.job_counter + 1
        if self._start_job_script is None:
            self._start_job_script = self.pool.register_script(START_JOB_SCRIPT)
        keys = [in_progress_key_prefix + job_id, self.queue_name, job_key_prefix + job_id, retry_key_prefix + job_id]
        args = [job_id, timestamp_ms(), int(self.in_progress_timeout_s * 1000), RETRY_KEY_EXPIRY_S]
        try:
            started = await self._start_job_script(keys=keys, args=args)
        except BaseException:
            self._release_sem_dec_counter_on_complete()
            raise
        if started is None:  # running elsewhere, or finished and gone from the queue, or re-queued for later
            self._release_sem_dec_counter_on_complete()
            arq_log.debug("job %s already running elsewhere", job_id)
            return
        score, job, job_try = started
        context = contextvars.copy_context()
        context.run(_PREFETCHED.set, (job, int(job_try)))
        task = self.loop.create_task(self.run_job(job_id, int(float(score))), context=context)
        task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
        self.tasks[job_id] = task

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
            self._outage_delay_s = 0.0
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            self._outage_delay_s = min(max(self._outage_delay_s * 2, 0.1), 5.0)
            log.warning("Redis unavailable (%s); polling again in %.1f s", exc, self._outage_delay_s)
            await asyncio.sleep(self._outage_delay_s)


async def startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    if settings.worker_metrics_port:
        ctx["metrics_server"], _ = metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
    store = await TaskStore.connect(settings.database_url, 1, max(4, settings.worker_concurrency + 2))
    storage = Storage(settings)
    await storage.__aenter__()
    redis = ctx["redis"]
    publish = EventPublisher(redis, settings.events_channel_prefix + "all")
    # A worker's enqueue (re-queues, retries, dispatch) raises when Redis is away: the caller's write to
    # PostgreSQL stands, and the reconciler enqueues the task once Redis is back.
    enqueue = make_enqueue(redis, settings, swallow_errors=True)
    ctx["core"] = Core(settings, store, storage, publish, enqueue)
    ctx["agent_pool"] = AgentProcesses(settings.agent_processes)
    ctx["worker_id"] = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    ctx["running_tasks"] = {}  # task id -> RunHandle of the runs on this worker: heartbeats, cancels
    recovery.start(ctx)
    log.info("worker %s ready (queue %s)", ctx["worker_id"], settings.arq_queue_name)


async def shutdown(ctx: dict[str, Any]) -> None:
    if "metrics_server" in ctx:
        await asyncio.to_thread(ctx["metrics_server"].shutdown)  # waits for its serving loop's next poll
        ctx["metrics_server"].server_close()
    await recovery.stop(ctx)
    if "agent_pool" in ctx:
        await ctx["agent_pool"].aclose()
    if "core" in ctx:
        await ctx["core"].storage.__aexit__(None, None, None)
        await ctx["core"].store.close()


class WorkerSettings:
    functions = [run_task, copy_cache_hit]
    # Expiry and retention: every worker runs the cron; arq's unique cron job ids make one of them act
    # per tick, and the work itself is conditional UPDATEs, safe to overlap.
    cron_jobs = [cron(maintenance_cron, minute=None, second=0, run_at_startup=False, max_tries=1)]
    on_startup = startup
    on_shutdown = shutdown
    max_tries = 1  # retries of transient faults are decided by the runner, not by re-running jobs
    retry_jobs = False
    keep_result = 60
    handle_signals = True


def worker_options(settings: Settings) -> dict[str, Any]:
    longest_hard_limit = max([settings.hard_time_limit_s] + [hard for _, hard in settings.tool_time_limits_s.values()])
    return {
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.arq_queue_name,
        "poll_delay": settings.poll_delay_s,
        "max_jobs": settings.worker_concurrency,
        # Our own limits stop the agents; arq's timeout only bounds a stuck transfer around them.
        "job_timeout": max(settings.job_timeout_s, int(longest_hard_limit) + 3600),
        # SIGTERM: take no new job, let running ones finish for `drain_s`, then cancel them (re-queued).
        "job_completion_wait": settings.drain_s,
        "ctx": {"settings": settings},
    }


def build_worker(settings: Settings, **overrides: Any) -> Worker:
    correct_start_delays()  # arq's `delayed=` would count the priority head start (worker/job_log.py)
    return AgensiumWorker(**{**get_kwargs(WorkerSettings), **worker_options(settings), **overrides})  # type: ignore[arg-type]


def run(settings: Settings) -> None:
    # uvloop, as the API runs: arq's Worker takes the current loop when built. A task's path is mostly small
    # database and Redis round trips, whose event-loop and socket overhead uvloop roughly halves.
    asyncio.set_event_loop(uvloop.new_event_loop())
    build_worker(settings).run()
