"""One settings class, read once at start-up and passed down."""

from __future__ import annotations

from pathlib import Path

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
    reaper_interval_s: float = 10.0  # every worker runs the reaper and the reconciler this often
    reconcile_after_s: float = 10.0  # a QUEUED task's job must be in Redis this long after it was enqueued
    max_attempts: int = 3  # runs a task gets before a lost worker ends it FAILED

    # --- API ----------------------------------------------------------------------------------
    sse_ping_s: float = 15.0
    db_pool_min: int = 2
    db_pool_max: int = 10

    @property
    def arq_queue_name(self) -> str:
        return f"{self.key_prefix}agensium:queue"

    @property
    def events_channel_prefix(self) -> str:
        return f"{self.key_prefix}agensium:events:"

    def object_prefix(self, user_id: str, task_id: str) -> str:
        return f"{self.key_prefix}users/{user_id}/tasks/{task_id}/"
