"""One settings class, read once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENSIUM_", extra="ignore", populate_by_name=True)

    # --- dependencies -------------------------------------------------------------------------
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/agensium",
        validation_alias=AliasChoices("DATABASE_URL", "AGENSIUM_DATABASE_URL"),
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "AGENSIUM_REDIS_URL"))
    s3_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AGENSIUM_S3_ENDPOINT_URL")
    )
    # Endpoint put into presigned URLs, when clients reach the store under another name (docker).
    s3_public_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("S3_PUBLIC_ENDPOINT_URL", "AGENSIUM_S3_PUBLIC_ENDPOINT_URL")
    )
    s3_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AGENSIUM_S3_REGION"))
    s3_access_key_id: str = Field(
        "agensium", validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "AGENSIUM_S3_ACCESS_KEY_ID")
    )
    s3_secret_access_key: str = Field(
        "agensium-secret",
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "AGENSIUM_S3_SECRET_ACCESS_KEY"),
    )
    s3_bucket: str = Field("agensium", validation_alias=AliasChoices("S3_BUCKET", "AGENSIUM_S3_BUCKET"))

    # Prefix for every Redis key/channel/queue and every object key: lets test runs share servers.
    key_prefix: str = ""

    # --- limits and lifetimes -----------------------------------------------------------------
    upload_url_ttl_s: int = 3600
    download_url_ttl_s: int = 3600
    task_upload_ttl_s: int = 24 * 3600  # CREATED/UPLOADING tasks expire after this
    max_input_bytes: int = 5 * 1024**3
    max_parameters_bytes: int = 10 * 1024**2
    multipart_part_bytes: int = 8 * 1024**2
    # A JSON request body: counted as it arrives and refused (413) at this size, never read whole first.
    max_json_body_bytes: int = 16 * 1024**2
    # Presigned part URLs one upload-urls call may sign (all of its files together): bigger files get bigger
    # parts instead (S3 allows 10,000 parts of up to 5 GiB each).
    max_upload_parts_per_call: int = 1000
    # A user (not an admin) with this many unfinished tasks (CREATED, UPLOADING, QUEUED, PROCESSING) gets
    # 429 RATE_LIMITED on the next create.
    max_unfinished_tasks: int = 1_000

    # --- worker -------------------------------------------------------------------------------
    worker_concurrency: int = 4
    agent_processes: int = 2
    poll_delay_s: float = 0.005
    progress_min_interval_s: float = 0.25
    job_timeout_s: int = 3600
    work_dir: Path | None = None  # temp dirs for task inputs/outputs; None = system temp
    # Recovery (worker/recovery.py): heartbeats, the reaper of lost workers' tasks, the queue reconciler.
    heartbeat_interval_s: float = 5.0  # a worker refreshes itself and its running tasks this often
    stale_after_s: float = 20.0  # a PROCESSING task without a heartbeat for this long has lost its worker
    reaper_interval_s: float = 5.0  # every worker runs the reaper and the reconciler this often (lost task: <= 25 s)
    reconcile_after_s: float = 10.0  # a QUEUED task's job must be in Redis this long after it was enqueued
    max_attempts: int = 3  # runs a task gets (lost workers, transient faults) before it ends FAILED
    retry_backoff_s: float = 2.0  # transient faults: retry after backoff * 2**(run - 1), +-50 % jitter...
    retry_backoff_max_s: float = 60.0  # ...at most this
    # Time limits of a run's agents: soft (the chain stops between steps; the result is partial) and hard (the
    # agent process is killed; TIMEOUT). `tool_time_limits_s` overrides per tool: {"clean-my-data": [600, 900]}.
    soft_time_limit_s: float = 1800.0
    hard_time_limit_s: float = 3600.0
    tool_time_limits_s: dict[str, tuple[float, float]] = {}
    write_retry_s: float = 300.0  # a worker retries a write this long while PostgreSQL is away
    drain_s: float = 30.0  # on SIGTERM a worker takes no new task and lets running ones finish this long
    # Scheduling: a task starts before queued tasks that are less urgent by more than its head start, so waiting
    # low tasks age past a stream of newer normal ones; at most `user_max_active_tasks` tasks of one user run or
    # wait in the Redis queue at once, the rest wait in PostgreSQL (one user's backlog holds nobody else back).
    priority_head_start_s: dict[str, float] = {"low": 0.0, "normal": 300.0, "high": 1800.0, "urgent": 86400.0}
    user_max_active_tasks: int = 4

    # --- agents: sent to the agent process with each job (agents.options.RunOptions) ----------
    max_columns: int = 20_000  # an input with more columns ends INVALID_FILE as it is read (a CSV: from its header)
    # profile-my-data and search-my-data stream a CSV/TSV primary larger than this (bounded memory; the
    # tools listed in agents.chain.STREAMED_TOOLS); None: the agent process's
    # memory limit (cgroup, else RAM) / 6
    streaming_threshold_bytes: int | None = None
    # The hidden `diagnostics` tool (agent `sleeper`: tests and operators); the API lists and accepts it, the
    # workers run it: set it for both.
    diagnostics: bool = False

    # --- maintenance --------------------------------------------------------------------------
    # Expiry and retention (worker/maintenance.py, an arq cron): the stored objects of a task finished this long
    # ago are deleted (the task stays, with artifacts_deleted).
    retention_s: int = 7 * 24 * 3600

    # --- API ----------------------------------------------------------------------------------
    # Signs the event-stream tokens of browsers (service/api/tokens.py), the same for every API process of a
    # deployment. Required: the API refuses to start without it; `agensium dev` generates one in its data dir.
    secret_key: str | None = None
    # Where browsers open the page (e.g. https://agensium.example.com): the object store's CORS rule allows
    # uploads from this origin only. Unset: from any origin.
    public_url: str | None = None
    events_token_ttl_s: int = 300
    # Uploads above this size get presigned multipart (one URL per part), resumable part by part.
    multipart_threshold_bytes: int = 100 * 1024**2
    sse_ping_s: float = 15.0
    # Live events an event stream may have waiting to be written: a client that falls further behind is
    # resumed from the `task_events` table instead (service/events.py Subscription), nothing lost.
    sse_buffer_events: int = 64
    # An API process keeps a key it has checked this long; a rotated key or a disabled user is dropped from every
    # process's cache at once (PostgreSQL NOTIFY), this TTL only covers a notification missed while disconnected.
    auth_cache_ttl_s: float = 10.0
    db_pool_min: int = 2
    # An API process's connections: asyncpg hands a freed connection to whichever request asks first, so with 64
    # requests in flight on 10 some waited behind newcomers (GET p99 124 ms; 52 ms with 24, bench_api.py). Two
    # uvicorn workers (docker-compose) and a worker's 6 stay well under PostgreSQL's default 100.
    db_pool_max: int = 24
    # Request rate per user (not admins), shared by every API process through Redis (service/ratelimit.py): a
    # token bucket refilled at `rate_limit_per_s` requests/s holding at most `rate_limit_burst`; over it, 429
    # RATE_LIMITED with Retry-After. 0 in either turns it off. Redis slower than `rate_limit_timeout_s` or down:
    # the request passes (a warning is logged).
    rate_limit_per_s: float = 20.0
    rate_limit_burst: int = 100
    rate_limit_timeout_s: float = 0.1

    # --- logs and metrics (service/logs.py, worker/metrics.py) -------------------------------
    # `json`: one JSON object per line (request_id, task_id, user_id bound); `console`: for people. None: json
    # for `agensium api` and `agensium worker` (console when their stderr is a terminal, e.g. under `agensium
    # dev`), console for the other commands (dev's own lines, users, the client).
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"
    access_log: bool = True  # one INFO line per API request (method, route, status, duration, ids)
    # The API's /metrics reads its task and queue gauges from PostgreSQL at most once per this many seconds, in
    # one read shared by all scrapes meanwhile: a scrape loop from anyone cannot fill the database pool.
    metrics_db_refresh_s: float = 15.0
    # The worker serves its own Prometheus /metrics (task and agent durations) on this port; 0 = off.
    worker_metrics_port: int = 0
    worker_metrics_host: str = "127.0.0.1"

    @property
    def arq_queue_name(self) -> str:
        return f"{self.key_prefix}agensium:queue"

    @property
    def control_channel(self) -> str:
        """API -> workers: `cancel <task id>` (workers also notice through their heartbeat)."""
        return f"{self.key_prefix}agensium:control"

    def browser_origins(self) -> list[str]:
        """The origin of `public_url` (scheme://host[:port]), as CORS rules name it; [] when unset."""
        if not self.public_url:
            return []
        parts = urlsplit(self.public_url)
        return [f"{parts.scheme}://{parts.netloc}"]

    def time_limits(self, tool_id: str) -> tuple[float, float]:
        """(soft, hard) seconds for a run of `tool_id`'s agents."""
        soft, hard = self.tool_time_limits_s.get(tool_id, (self.soft_time_limit_s, self.hard_time_limit_s))
        return float(soft), float(hard)

    @property
    def events_channel_prefix(self) -> str:
        return f"{self.key_prefix}agensium:events:"

    def object_prefix(self, user_id: str, task_id: str) -> str:
        return f"{self.key_prefix}users/{user_id}/tasks/{task_id}/"
