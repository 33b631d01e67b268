"""`process` reads what the store holds of a task's uploads from one listing of its inputs prefix, sent while the
task row is read (service.lifecycle._listed_inputs): the same checks and the same recorded identities as a HEAD of
each upload, and the HEADs again when the store refuses to list (a bucket policy without s3:ListBucket)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from botocore.exceptions import ClientError

from service import lifecycle
from service.config import Settings
from service.errors import ServiceError
from service.lifecycle import Core
from service.models import UploadUrlsRequest
from service.storage import Storage
from tests.worker.scheduling_support import get_task, open_core, private_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = b"id,city\n1,paris\n2,lyon\n"
PARAMETERS = b'{"unified-profiler": {}}'


@pytest.fixture(scope="module")
def listing_settings(settings: Settings) -> Iterator[Settings]:
    with private_settings(settings, "listing") as private:
        yield private


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def core(listing_settings: Settings, storage: Storage) -> AsyncIterator[Core]:
    pool: ArqRedis = await create_pool(RedisSettings.from_dsn(listing_settings.redis_url))
    try:
        async with open_core(listing_settings, pool) as opened:
            yield opened
    finally:
        await pool.delete(listing_settings.arq_queue_name)
        await pool.aclose()


async def declared_task(
    core: Core, files: dict[str, tuple[str, int]], *, has_parameters: bool = False
) -> tuple[str, str]:
    """(user, task) with `files` ({name: (content type, size)}) declared for presigned uploads, none stored yet."""
    user_id, _ = await core.store.create_user(f"listing-{uuid.uuid4().hex[:6]}", credits=1000)
    task, _ = await lifecycle.create_task(
        core,
        user_id,
        tool_id="profile-my-data",
        agents=["unified-profiler"],
        priority="normal",
        parameters={"cache": False},
        source_task_id=None,
        labels={},
        idempotency_key=None,
    )
    task_id = str(task["id"])
    request: dict[str, Any] = {
        "files": [{"name": name, "content_type": kind, "size": size} for name, (kind, size) in files.items()]
    }
    if has_parameters:
        request["has_parameters"] = True
    await lifecycle.request_upload_urls(core, user_id, task_id, UploadUrlsRequest.model_validate(request))
    return user_id, task_id


async def store(core: Core, user_id: str, task_id: str, name: str, data: bytes, content_type: str) -> None:
    """The object a client's presigned PUT would leave."""
    key = lifecycle.inputs_prefix(core.settings, user_id, task_id) + name
    await core.storage.put_bytes(key, data, content_type)


def recorded(task: Any) -> dict[str, tuple[Any, Any]]:
    return {entry["name"]: (entry.get("etag"), entry.get("stored_size")) for entry in task["inputs"]}


async def test_process_records_what_a_head_of_each_upload_says(core: Core) -> None:
    user_id, task_id = await declared_task(
        core, {"primary.csv": ("text/csv", len(CSV)), "baseline.csv": ("text/csv", len(CSV) - 1)}
    )
    await store(core, user_id, task_id, "primary.csv", CSV, "text/csv")
    await store(core, user_id, task_id, "baseline.csv", CSV[:-1], "text/csv")
    queued = await lifecycle.process_task(core, user_id, task_id)
    assert queued["status"] == "QUEUED"
    prefix = lifecycle.inputs_prefix(core.settings, user_id, task_id)
    heads = {name: await core.storage.head(prefix + name) for name in ("primary.csv", "baseline.csv")}
    assert recorded(await get_task(core, task_id)) == {
        name: (head.etag, head.size) for name, head in heads.items() if head is not None
    }
    assert heads["primary.csv"] is not None and heads["primary.csv"].etag == hashlib.md5(CSV).hexdigest()  # noqa: S324


async def test_a_missing_upload_and_a_wrong_size_are_refused_as_before(core: Core) -> None:
    user_id, task_id = await declared_task(
        core, {"primary.csv": ("text/csv", len(CSV)), "baseline.csv": ("text/csv", len(CSV))}
    )
    await store(core, user_id, task_id, "primary.csv", CSV, "text/csv")
    with pytest.raises(ServiceError) as missing:
        await lifecycle.process_task(core, user_id, task_id)
    assert (missing.value.code, missing.value.details) == ("INPUT_MISSING", {"missing": ["baseline.csv"]})
    await store(core, user_id, task_id, "baseline.csv", CSV + b"3,nice\n", "text/csv")
    with pytest.raises(ServiceError) as wrong:
        await lifecycle.process_task(core, user_id, task_id)
    assert wrong.value.code == "INPUT_MISSING"
    assert wrong.value.details == {
        "size_mismatch": [{"name": "baseline.csv", "declared": len(CSV), "stored": len(CSV) + 7}]
    }


async def test_parameters_json_over_the_limit_is_refused_from_the_listing(core: Core) -> None:
    user_id, task_id = await declared_task(core, {"primary.csv": ("text/csv", len(CSV))}, has_parameters=True)
    await store(core, user_id, task_id, "primary.csv", CSV, "text/csv")
    oversized = b" " * (core.settings.max_parameters_bytes + 1)
    await store(core, user_id, task_id, lifecycle.PARAMETERS_NAME, oversized, "application/json")
    with pytest.raises(ServiceError) as refused:
        await lifecycle.process_task(core, user_id, task_id)
    assert refused.value.code == "INPUT_TOO_LARGE"


async def test_a_store_that_refuses_to_list_is_asked_with_heads(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    async def refused(prefix: str) -> dict[str, Any]:
        asked.append(prefix)
        error = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
        raise ClientError(error, "ListObjectsV2")  # type: ignore[arg-type]

    user_id, task_id = await declared_task(core, {"primary.csv": ("text/csv", len(CSV))}, has_parameters=True)
    await store(core, user_id, task_id, "primary.csv", CSV, "text/csv")
    await store(core, user_id, task_id, lifecycle.PARAMETERS_NAME, PARAMETERS, "application/json")
    monkeypatch.setattr(core.storage, "list_objects", refused)
    queued = await lifecycle.process_task(core, user_id, task_id)
    assert asked == [lifecycle.inputs_prefix(core.settings, user_id, task_id)]
    assert queued["status"] == "QUEUED"
    assert recorded(await get_task(core, task_id))["primary.csv"] == (hashlib.md5(CSV).hexdigest(), len(CSV))  # noqa: S324


async def test_another_users_task_is_not_found_and_its_listing_is_not_left_running(core: Core) -> None:
    owner, task_id = await declared_task(core, {"primary.csv": ("text/csv", len(CSV))})
    await store(core, owner, task_id, "primary.csv", CSV, "text/csv")
    stranger, _ = await core.store.create_user(f"listing-{uuid.uuid4().hex[:6]}", credits=1000)
    before = {task for task in asyncio.all_tasks() if not task.done()}
    with pytest.raises(ServiceError) as refused:
        await lifecycle.process_task(core, stranger, task_id)
    assert refused.value.code == "TASK_NOT_FOUND"
    left = {task for task in asyncio.all_tasks() if not task.done()} - before - {asyncio.current_task()}
    assert not left
    assert (await get_task(core, task_id))["status"] == "UPLOADING"
