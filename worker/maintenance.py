"""Expiry and retention: the upkeep every worker runs from an arq cron.

- Expiry: CREATED/UPLOADING tasks past their upload deadline (`expires_at`) become EXPIRED, with
  their status and done events, and their uploaded inputs are deleted (lifecycle.expire_task: a state
  change like any other goes through lifecycle).
- Retention: every stored object of a task finished more than `retention_s` ago is deleted; the
  task stays, flagged `artifacts_deleted`.
- Multipart uploads under the service's keys left unfinished for longer than an upload URL lives
  are aborted.
- Cache hits whose own copies of the outputs they reuse were not made a while after they completed
  (their copy job lost with Redis, or failed) get them (lifecycle.copy_cache_hit); until then the
  task they reuse keeps its objects past its retention.
Many workers may run it at once. Expiry is a conditional UPDATE, so one worker expires a task and
only that worker deletes its inputs. Retention leases its tasks (racing workers take different
ones, a dead worker's are taken again once the lease runs out) and flags a task only after its
objects are gone; deleting twice is harmless, a flag before the delete would not be. Aborting an
upload twice is harmless too, and of two racing copies of a cache hit's outputs one is kept. Each
step handles at most BATCH items a run, so a tick stays short.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from service import lifecycle
from service.lifecycle import Core

log = logging.getLogger("agensium.worker")

BATCH = 200
# How long a worker owns a task's deletion before another may take it over (and delete again).
ARTIFACTS_LEASE_S = 600.0
# How long after a cache hit its copy job is left to make its copies before the sweep makes them.
COPY_JOB_GRACE_S = 300.0


async def expire_tasks(core: Core, limit: int = BATCH) -> int:
    """Expire up to `limit` tasks past their upload deadline (lifecycle.expire_task); returns how many
    this call expired, not counting those another worker expired or that were processed in time."""
    expired = 0
    for task_id in await core.store.tasks_to_expire(limit):
        if await lifecycle.expire_task(core, task_id) is not None:
            expired += 1
    return expired


async def delete_old_artifacts(core: Core, retention_s: float, limit: int = BATCH) -> int:
    """Delete the stored objects of up to `limit` tasks finished more than `retention_s` ago; returns
    how many tasks this call flagged `artifacts_deleted`."""
    deleted = 0
    for task_id, user_id in await core.store.claim_artifacts_to_delete(retention_s, ARTIFACTS_LEASE_S, limit):
        await core.storage.delete_prefix(core.settings.object_prefix(user_id, task_id))
        if await core.store.mark_artifacts_deleted(task_id, retention_s):
            deleted += 1
    return deleted


async def abort_stale_uploads(core: Core, older_than: datetime, limit: int = BATCH) -> int:
    """Abort up to `limit` multipart uploads under the service's task keys initiated before `older_than`."""
    prefix = core.settings.key_prefix + "users/"
    return await core.storage.abort_stale_multipart_uploads(prefix, older_than, limit=limit)


async def copy_cache_hits(core: Core, older_than_s: float = COPY_JOB_GRACE_S, limit: int = BATCH) -> int:
    """Make the own copies of up to `limit` cache hits that completed more than `older_than_s` ago without them;
    returns how many this call made. One that fails is logged and taken again next time."""
    made = 0
    for hit in await core.store.cache_hits_to_copy(older_than_s, limit):
        try:
            if await lifecycle.copy_cache_hit(core, str(hit["id"])):
                made += 1
        except Exception as exc:  # noqa: BLE001 - one hit's failure must not stop the sweep
            log.warning("cache hit %s: its own copies were not made: %r", hit["id"], exc)
    return made


async def run_maintenance(core: Core) -> dict[str, int]:
    """One round of expiry, retention and multipart clean-up; returns what this call did."""
    settings = core.settings
    # A multipart upload may resume (browser) as long as its task may still be uploaded to, and a worker's
    # output upload lasts at most a job: only uploads older than both are surely abandoned.
    stale_after_s = max(settings.upload_url_ttl_s, settings.task_upload_ttl_s, settings.job_timeout_s)
    upload_deadline = datetime.now(UTC) - timedelta(seconds=stale_after_s)
    counts = {
        "expired": await expire_tasks(core),
        "artifacts_deleted": await delete_old_artifacts(core, settings.retention_s),
        "multipart_aborted": await abort_stale_uploads(core, upload_deadline),
    }
    if any(counts.values()):
        log.info(
            "maintenance: %(expired)d tasks expired, artifacts of %(artifacts_deleted)d tasks deleted, "
            "%(multipart_aborted)d stale multipart uploads aborted",
            counts,
        )
    return counts


async def maintenance_cron(ctx: dict[str, Any]) -> dict[str, int]:
    """The arq cron job: a round of upkeep, and the sweep of cache hits still without their own copies."""
    counts = await run_maintenance(ctx["core"])
    counts["cache_copies_made"] = await copy_cache_hits(ctx["core"])
    if counts["cache_copies_made"]:
        log.info("maintenance: own copies of %d cache hits made by the sweep", counts["cache_copies_made"])
    return counts
