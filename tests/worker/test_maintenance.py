"""Expiry, retention and multipart clean-up against real PostgreSQL and SeaweedFS, including racing runs.

These tests run in a database and key prefix of their own: counts of what a run did are exact, and no
other test's tasks or uploads are touched (nor a session worker's cron touches these)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import RedisSettings

from service import lifecycle
from service.config import Settings
from service.errors import ServiceError
from service.events import EventPublisher
from service.lifecycle import Core
from service.storage import Storage
from service.store import TaskStore
from tests import support
from tests.conftest import private_database
from worker import maintenance
from worker.maintenance import run_maintenance

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEADLINE_S = 10.0
DAY_S = 24 * 3600


@pytest.fixture(scope="module")
def maintenance_settings(settings: Settings) -> Iterator[Settings]:
    with private_database(settings, "maintenance") as url:
        yield settings.model_copy(update={"database_url": url, "key_prefix": f"{settings.key_prefix}maintenance/"})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(maintenance_settings: Settings, storage: Storage) -> AsyncIterator[Core]:
    settings = maintenance_settings
    store = await TaskStore.connect(settings.database_url, 1, 8)
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))

    async def enqueue(*args: Any) -> None:
        raise AssertionError("maintenance never enqueues")

    publish = EventPublisher(redis, settings.events_channel_prefix + "all")
    yield Core(settings, store, storage, publish, enqueue)
    await storage.delete_prefix(settings.key_prefix)
    await redis.aclose()
    await store.close()


@pytest_asyncio.fixture(loop_scope="session")
async def user_id(core: Core) -> str:
    uid, _ = await core.store.create_user(f"maintenance-{uuid.uuid4().hex[:6]}")
    return uid


async def new_task(core: Core, user_id: str, upload: bool = True) -> str:
    """A CREATED task, or an UPLOADING one with primary.csv stored (streamed as the API does it)."""
    task, _ = await lifecycle.create_task(
        core,
        user_id,
        tool_id="profile-my-data",
        agents=None,
        priority="normal",
        parameters=None,
        source_task_id=None,
        labels={},
        idempotency_key=None,
    )
    task_id = str(task["id"])
    if upload:
        data = b"id,amount\n1,10.5\n2,7\n"

        async def body() -> AsyncIterator[bytes]:
            yield data

        await lifecycle.stream_input(core, user_id, task_id, "primary.csv", "text/csv", len(data), body())
    return task_id


async def past_deadline(core: Core, task_ids: list[str]) -> None:
    await core.store.pool.execute(
        "UPDATE tasks SET expires_at = now() - interval '1 minute' WHERE id = ANY($1::uuid[])", task_ids
    )


async def finished(core: Core, user_id: str, task_id: str, seconds_ago: float) -> None:
    """The task as if it had COMPLETED `seconds_ago`, with an output stored next to its input."""
    output = lifecycle.outputs_prefix(core.settings, user_id, task_id) + "report.json"
    await core.storage.put_bytes(output, b"{}", "application/json")
    await core.store.pool.execute(
        "UPDATE tasks SET status = 'COMPLETED', finished_at = now() - make_interval(secs => $2), outputs = $3"
        " WHERE id = $1",
        uuid.UUID(task_id),
        float(seconds_ago),
        [{"name": "report.json", "content_type": "application/json", "size": 2, "key": output}],
    )


async def stored_keys(core: Core, user_id: str, task_id: str) -> list[str]:
    """The task's stored objects, relative to its prefix."""
    prefix = core.settings.object_prefix(user_id, task_id)
    return [key.removeprefix(prefix) for key in await support.stored_keys(core.storage, prefix)]


async def event_types(core: Core, task_id: str) -> list[tuple[str, str | None]]:
    """(type, status) of the task's events, in order."""
    return [(e.type, e.payload.get("status")) for e in await core.store.task_events_after(task_id, 0)]


async def test_a_task_past_its_upload_deadline_expires_and_loses_its_inputs(core: Core, user_id: str) -> None:
    late, fresh = await new_task(core, user_id), await new_task(core, user_id)
    await past_deadline(core, [late])

    counts = await run_maintenance(core)
    assert counts == {"expired": 1, "artifacts_deleted": 0, "multipart_aborted": 0}

    task = await core.store.get_task(late)
    assert task is not None and task["status"] == "EXPIRED"
    assert task["error"]["code"] == "EXPIRED" and task["message"] == task["error"]["message"]
    assert task["finished_at"] is not None and not task["artifacts_deleted"]
    assert await event_types(core, late) == [("status", "UPLOADING"), ("status", "EXPIRED"), ("done", "EXPIRED")]
    assert await stored_keys(core, user_id, late) == []

    kept = await core.store.get_task(fresh)
    assert kept is not None and kept["status"] == "UPLOADING"
    assert await stored_keys(core, user_id, fresh) == ["inputs/primary.csv"]
    assert (await run_maintenance(core))["expired"] == 0


async def test_racing_runs_expire_each_task_once(core: Core, user_id: str) -> None:
    task_ids = [await new_task(core, user_id, upload=i % 2 == 0) for i in range(8)]
    await past_deadline(core, task_ids)

    runs = await asyncio.gather(*(run_maintenance(core) for _ in range(4)))
    assert sum(r["expired"] for r in runs) == len(task_ids)
    for task_id in task_ids:
        events = await event_types(core, task_id)
        assert events.count(("status", "EXPIRED")) == 1 and events.count(("done", "EXPIRED")) == 1, events
        assert await stored_keys(core, user_id, task_id) == []


async def test_a_task_processed_in_time_does_not_expire(core: Core, user_id: str) -> None:
    task_id = await new_task(core, user_id)
    await past_deadline(core, [task_id])
    assert await core.store.tasks_to_expire(10) == [task_id]
    # Processed between a worker's listing and its transition: the conditional UPDATE refuses.
    await core.store.pool.execute("UPDATE tasks SET status = 'QUEUED' WHERE id = $1", uuid.UUID(task_id))
    assert await lifecycle.expire_task(core, task_id) is None
    assert await maintenance.expire_tasks(core) == 0
    assert await stored_keys(core, user_id, task_id) == ["inputs/primary.csv"]
    assert await event_types(core, task_id) == [("status", "UPLOADING")]


async def test_retention_deletes_the_objects_of_old_tasks_and_keeps_the_row(core: Core, user_id: str) -> None:
    retention_s = core.settings.retention_s
    old, recent = await new_task(core, user_id), await new_task(core, user_id)
    await finished(core, user_id, old, retention_s + 60)
    await finished(core, user_id, recent, retention_s - DAY_S)

    counts = await run_maintenance(core)
    assert counts == {"expired": 0, "artifacts_deleted": 1, "multipart_aborted": 0}

    task = await core.store.get_task(old)
    assert task is not None and task["status"] == "COMPLETED" and task["artifacts_deleted"]
    assert await stored_keys(core, user_id, old) == []
    kept = await core.store.get_task(recent)
    assert kept is not None and not kept["artifacts_deleted"]
    assert await stored_keys(core, user_id, recent) == ["inputs/primary.csv", "outputs/report.json"]
    assert (await run_maintenance(core))["artifacts_deleted"] == 0

    # Download links of deleted files would only 404 at the store: the API says why instead.
    with pytest.raises(ServiceError) as refused:
        await lifecycle.task_downloads(core, user_id, old)
    assert refused.value.code == "INVALID_STATE" and "retention" in refused.value.message
    assert [d["name"] for d in await lifecycle.task_downloads(core, user_id, recent)] == ["report.json"]


async def test_racing_retention_runs_take_different_tasks(core: Core, user_id: str) -> None:
    retention_s = core.settings.retention_s
    task_ids = [await new_task(core, user_id) for _ in range(6)]
    for task_id in task_ids:
        await finished(core, user_id, task_id, 2 * retention_s)

    runs = await asyncio.gather(*(maintenance.delete_old_artifacts(core, retention_s, limit=2) for _ in range(3)))
    assert runs == [2, 2, 2]  # each claimed two of its own: SKIP LOCKED and the lease keep them apart
    for task_id in task_ids:
        task = await core.store.get_task(task_id)
        assert task is not None and task["artifacts_deleted"]
        assert await stored_keys(core, user_id, task_id) == []


async def test_a_claim_is_flagged_only_while_the_task_stays_finished(core: Core, user_id: str) -> None:
    """A worker that died after its claim leaves the task unflagged, to be taken again after the lease; a
    task retried after the claim is not flagged (its next run's objects get their own retention)."""
    retention_s = core.settings.retention_s
    dead, retried = await new_task(core, user_id), await new_task(core, user_id)
    for task_id in (dead, retried):
        await finished(core, user_id, task_id, 2 * retention_s)
    claimed = await core.store.claim_artifacts_to_delete(retention_s, 600.0, 10)
    assert sorted(t for t, _ in claimed) == sorted([dead, retried])
    assert await core.store.claim_artifacts_to_delete(retention_s, 600.0, 10) == []  # leased

    await core.store.pool.execute(
        "UPDATE tasks SET status = 'QUEUED', finished_at = NULL WHERE id = $1", uuid.UUID(retried)
    )
    assert not await core.store.mark_artifacts_deleted(retried, retention_s)

    await core.store.pool.execute(
        "UPDATE tasks SET artifacts_claimed_at = now() - interval '1 hour' WHERE id = $1", uuid.UUID(dead)
    )
    assert await maintenance.delete_old_artifacts(core, retention_s) == 1
    task = await core.store.get_task(dead)
    assert task is not None and task["artifacts_deleted"]
    assert await stored_keys(core, user_id, dead) == []
    again = await core.store.get_task(retried)
    assert again is not None and not again["artifacts_deleted"]
    assert await stored_keys(core, user_id, retried) == ["inputs/primary.csv", "outputs/report.json"]


async def open_uploads(storage: Storage, prefix: str) -> dict[str, datetime]:
    """Upload id -> initiated, of the unfinished multipart uploads under `prefix`."""
    response = await storage.client.list_multipart_uploads(Bucket=storage.bucket, Prefix=prefix)
    return {u["UploadId"]: u["Initiated"] for u in response.get("Uploads", [])}


async def start_upload(storage: Storage, key: str) -> tuple[str, datetime]:
    upload_id = (await storage.client.create_multipart_upload(Bucket=storage.bucket, Key=key))["UploadId"]
    return upload_id, (await open_uploads(storage, key))[upload_id]


async def start_upload_after(storage: Storage, key: str, after: datetime) -> tuple[str, datetime]:
    """An upload initiated strictly after `after` (the store keeps whole seconds): poll with a deadline."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while True:
        upload_id, initiated = await start_upload(storage, key)
        if initiated > after:
            return upload_id, initiated
        await storage.client.abort_multipart_upload(Bucket=storage.bucket, Key=key, UploadId=upload_id)
        assert asyncio.get_running_loop().time() < deadline, "the store's clock did not move on"
        await asyncio.sleep(0.05)


async def test_stale_multipart_uploads_are_aborted_and_fresh_ones_kept(core: Core, user_id: str) -> None:
    settings, storage = core.settings, core.storage
    task_prefix = settings.object_prefix(user_id, str(uuid.uuid4()))
    outside = f"{settings.key_prefix}elsewhere/{uuid.uuid4().hex}"
    stale, first = await start_upload(storage, task_prefix + "inputs/primary.csv")
    other_stale, second = await start_upload(storage, task_prefix + "outputs/report.xlsx")
    not_ours, third = await start_upload(storage, outside)
    # After the last of them: the store's second may turn between two of them (CI: the second stale one was then
    # as new as the fresh one, and not aborted).
    fresh, cut_off = await start_upload_after(storage, task_prefix + "inputs/baseline.csv", max(first, second, third))

    assert await maintenance.abort_stale_uploads(core, cut_off) == 2
    assert set(await open_uploads(storage, task_prefix)) == {fresh}
    assert set(await open_uploads(storage, outside)) == {not_ours}
    assert other_stale not in await open_uploads(storage, settings.key_prefix)
    # The cron's own cut-off (an upload URL's lifetime ago) keeps the fresh upload.
    assert (await run_maintenance(core))["multipart_aborted"] == 0
    assert set(await open_uploads(storage, task_prefix)) == {fresh}

    assert await maintenance.abort_stale_uploads(core, cut_off) == 0
    for key, upload_id in ((outside, not_ours), (task_prefix + "inputs/baseline.csv", fresh)):
        await storage.client.abort_multipart_upload(Bucket=storage.bucket, Key=key, UploadId=upload_id)


async def test_a_run_aborts_at_most_its_limit(core: Core, user_id: str) -> None:
    storage = core.storage
    prefix = core.settings.object_prefix(user_id, str(uuid.uuid4()))
    started = [await start_upload(storage, f"{prefix}inputs/part-{i}.csv") for i in range(3)]
    later = max(initiated for _, initiated in started) + timedelta(days=1)
    assert await storage.abort_stale_multipart_uploads(prefix, later, limit=2) == 2
    assert len(await open_uploads(storage, prefix)) == 1
    assert await storage.abort_stale_multipart_uploads(prefix, later, limit=2) == 1
    assert await open_uploads(storage, prefix) == {}
