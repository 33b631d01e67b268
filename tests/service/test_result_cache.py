"""The result cache (API.md "Result cache", issue 12's proofs) against the real API, PostgreSQL, Redis, S3 and worker.

A second identical request completes from `POST .../process` itself, with `cached: true`, never queued (no job, no
attempt, no QUEUED or PROCESSING event: only the `status` and `done` events of its completion), charged nothing, with
a `cache_hit` ledger line naming the task it reused and the same result; its outputs are its own copies, still
downloadable byte for byte once the original is deleted. Parameters that differ only in key order, in spelled-out
defaults or in being uploaded as parameters.json hit; a changed input byte, parameter, agent list or code version
misses; another user never hits; `Cache-Control: no-cache` and `"cache": false` force a run. `"process": true` on
create processes a chained task in the same call; searches with equivalent filter lists hit. A hit's own copies are
made by a worker's copy job, or, when that job is lost, by the maintenance sweep; retention keeps the objects a hit
still reads meanwhile. And the seed's stress test: 20 concurrent searches from 3 users complete, and a repeat of
all 20 is served from the cache.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job

from service import cache, lifecycle
from service.config import Settings
from service.queueing import JobQueue
from service.storage import Storage
from service.store import TaskStore
from tests.conftest import Account, ApiServer, private_database
from tests.support import create_task, upload_inputs, wait_for_status
from tests.worker.test_maintenance import finished, new_task
from worker.maintenance import copy_cache_hits, run_maintenance

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOOL = "profile-my-data"
DATA = b"id,city,amount\n1,Paris,10.5\n2,Lyon,\n3,Nice,7.25\n4,Paris,3\n5,Lille,12\n"
PARAMS = {"unified-profiler": {"top_n_values": 5, "histogram_bins": 10}}
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


async def streamed(client: httpx.AsyncClient, content: bytes = DATA, **body: Any) -> str:
    """A task whose primary.csv went through the API (its sha256 is recorded); returns its id."""
    task = await create_task(client, **{"tool_id": TOOL, **body})
    r = await client.put(
        f"/api/v1/tasks/{task['task_id']}/inputs/primary.csv", content=content, headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    return str(task["task_id"])


async def process(client: httpx.AsyncClient, task_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await client.post(f"/api/v1/tasks/{task_id}/process", headers=headers or {})
    assert r.status_code == 202, r.text
    return dict(r.json())


async def completed(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task run by the worker to COMPLETED."""
    done = await wait_for_status(client, task_id, FINAL, timeout=180)
    assert done["status"] == "COMPLETED", done
    assert done["cached"] is False and done["attempts"] == 1
    return done


async def original(client: httpx.AsyncClient, content: bytes = DATA, **body: Any) -> str:
    """A first task run to completion: what the later identical tasks reuse."""
    task_id = await streamed(client, content, **body)
    assert (await process(client, task_id))["status"] == "QUEUED"
    await completed(client, task_id)
    return task_id


async def uploaded_original(client: httpx.AsyncClient, tmp_path: Path, **body: Any) -> str:
    """A first task whose primary.csv went up through the presigned PUT (the store's size and ETag identify it),
    run to completion."""
    primary = tmp_path / "primary.csv"
    primary.write_bytes(DATA)
    task_id = str((await create_task(client, **{"tool_id": TOOL, **body}))["task_id"])
    await upload_inputs(client, task_id, {"primary.csv": primary})
    assert (await process(client, task_id))["status"] == "QUEUED"
    await completed(client, task_id)
    return task_id


async def missed(client: httpx.AsyncClient, task_id: str, headers: dict[str, str] | None = None) -> None:
    """Processing the task queues it (no cache hit); it is cancelled: its run is not what is tested."""
    task = await process(client, task_id, headers)
    assert (task["status"], task["cached"]) == ("QUEUED", False)
    assert (await client.post(f"/api/v1/tasks/{task_id}/cancel")).status_code in (202, 409)


async def hit(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    task = await process(client, task_id)
    assert (task["status"], task["cached"], task["progress"]) == ("COMPLETED", True, 100), task
    return task


async def downloads(client: httpx.AsyncClient, task_id: str) -> dict[str, bytes]:
    """Every output of the task by name, fetched through its presigned link."""
    r = await client.get(f"/api/v1/tasks/{task_id}/downloads")
    assert r.status_code == 200, r.text
    files: dict[str, bytes] = {}
    async with httpx.AsyncClient(timeout=60) as s3:
        for file in r.json()["files"]:
            response = await s3.get(file["url"])
            assert response.status_code == 200
            assert len(response.content) == file["size"]
            files[file["name"]] = response.content
    return files


async def result(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/v1/tasks/{task_id}/result")
    assert r.status_code == 200, r.text
    body = dict(r.json())
    assert body.pop("task_id") == task_id
    return body


async def own_copies(store: TaskStore, account: Account, task_id: str, timeout: float = 60) -> None:
    """Waits until the cache hit's outputs are its own copies, made by the worker's copy job after it completed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await store.get_task(task_id, account.user_id)
        assert row is not None and row["outputs"]
        if all(f"/tasks/{task_id}/outputs/cache-" in o["key"] for o in row["outputs"]):
            return
        assert asyncio.get_running_loop().time() < deadline, row["outputs"]
        await asyncio.sleep(0.05)


async def credits(client: httpx.AsyncClient) -> int:
    return int((await client.get("/api/v1/me")).json()["credits"])


async def test_an_identical_request_completes_from_the_cache_without_a_worker_and_free(
    client: httpx.AsyncClient, worker: None, store: TaskStore, account: Account
) -> None:
    first = await original(client, parameters=PARAMS)
    balance = await credits(client)

    second = await streamed(client, parameters=PARAMS)
    task = await hit(client, second)
    assert task["attempts"] == 0 and task["error"] is None
    # Never queued: no job was made for it, no worker claimed it, its only events after the upload its completion.
    row = await store.get_task(second, account.user_id)
    assert row is not None and (row["job_id"], row["worker_id"]) == (None, None)
    events = await store.task_events_after(second, 0)
    assert [(e.type, e.payload["status"], e.payload["cached"]) for e in events] == [
        ("status", "UPLOADING", False),  # its streamed upload
        ("status", "COMPLETED", True),
        ("done", "COMPLETED", True),
    ]
    polled = (await client.get(f"/api/v1/tasks/{second}")).json()
    assert polled.pop("credits", 0) == 0 and polled == task  # GET adds what the task cost: nothing

    assert await result(client, second) == await result(client, first)
    await own_copies(store, account, second)
    copies, originals = await downloads(client, second), await downloads(client, first)
    assert set(copies) == set(originals) and "manifest.json" in copies
    for name, content in originals.items():
        if name != "manifest.json":
            assert copies[name] == content, name
    manifest = json.loads(copies["manifest.json"])
    assert (manifest["task_id"], manifest["cached_from"]) == (second, first)

    assert await credits(client) == balance  # nothing charged
    ledger = (await client.get("/api/v1/me/ledger")).json()["items"]
    line = ledger[0]
    assert (line["kind"], line["amount"], line["balance_after"], line["task_id"]) == ("cache_hit", 0, balance, second)
    assert first in line["reason"]
    assert not [i for i in ledger if i.get("task_id") == second and i["kind"] != "cache_hit"]
    stats = (await client.get("/api/v1/stats")).json()
    assert stats["cache_hits"] == 1 and stats["tasks_by_status"]["COMPLETED"] == 2


async def test_parameters_differing_in_key_order_defaults_or_upload_hit(
    client: httpx.AsyncClient, worker: None, tmp_path: Any
) -> None:
    primary = tmp_path / "primary.csv"  # uploaded_original writes it
    await uploaded_original(client, tmp_path, parameters=PARAMS)

    reordered = {"unified-profiler": {"histogram_bins": 10.0, "top_n_values": 5, "null_alert_threshold": 50.0}}
    with_defaults = {**reordered, "inputs": {"primary": {"sheet": None}}, "cache": True}
    for parameters in (reordered, with_defaults):
        task = await create_task(client, tool_id=TOOL, parameters=parameters)
        await upload_inputs(client, task["task_id"], {"primary.csv": primary})
        await hit(client, task["task_id"])
    in_store = await create_task(client, tool_id=TOOL)  # the same parameters as an uploaded parameters.json
    await upload_inputs(client, in_store["task_id"], {"primary.csv": primary}, reordered)
    await hit(client, in_store["task_id"])
    assert (await client.get("/api/v1/stats")).json()["cache_hits"] == 3


async def test_a_changed_byte_parameter_agent_list_or_code_version_misses(
    client: httpx.AsyncClient, worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    await original(client, parameters=PARAMS)
    await missed(client, await streamed(client, DATA.replace(b"Lille", b"Lilla"), parameters=PARAMS))
    changed = {"unified-profiler": {**PARAMS["unified-profiler"], "top_n_values": 6}}
    await missed(client, await streamed(client, parameters=changed))
    await missed(client, await streamed(client, parameters=PARAMS, agents=["unified-profiler"]))
    monkeypatch.setattr(cache, "code_version", lambda: "0" * 64)
    await missed(client, await streamed(client, parameters=PARAMS))
    monkeypatch.undo()
    await hit(client, await streamed(client, parameters=PARAMS))  # the control: the same request still hits


class HeadsRefused:
    """A store the key must not ask: every HEAD fails the test."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def head(self, key: str) -> None:
        raise AssertionError(f"HEAD {key}: the key should read what process recorded")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


async def test_a_chained_task_is_keyed_by_what_process_recorded_of_its_uploaded_source(
    client: httpx.AsyncClient,
    worker: None,
    store: TaskStore,
    storage: Storage,
    settings: Settings,
    account: Account,
    tmp_path: Any,
) -> None:
    """process keeps what the store said of a presigned upload (its ETag and stored size) in its inputs entry, and the
    key of a task chained on it reads them instead of a HEAD: the same key the store's HEAD gives."""
    source = await uploaded_original(client, tmp_path)
    row = await store.get_task(source, account.user_id)
    assert row is not None
    [entry] = [i for i in row["inputs"] if i["name"] == "primary.csv"]
    head = await storage.head(lifecycle.inputs_prefix(settings, account.user_id, source) + "primary.csv")
    assert head is not None and head.size == len(DATA) and "sha256" not in entry
    assert (entry["etag"], entry["stored_size"]) == (head.etag, head.size)

    chained = (await create_task(client, tool_id=TOOL, source_task_id=source))["task_id"]
    task = await store.get_task(chained, account.user_id)
    assert task is not None
    chain = lifecycle.queued_chain(task)
    no_heads = lifecycle.Core(settings, store, HeadsRefused(storage), no_publish, no_enqueue)  # type: ignore[arg-type]
    recorded = await cache.task_cache_key(no_heads, task, chain, {})
    forgotten = [{k: v for k, v in i.items() if k not in ("etag", "stored_size")} for i in row["inputs"]]
    await store.pool.execute("UPDATE tasks SET inputs = $2 WHERE id = $1", uuid.UUID(source), forgotten)
    asked = await cache.task_cache_key(
        lifecycle.Core(settings, store, storage, no_publish, no_enqueue), task, chain, {}
    )
    assert recorded is not None and recorded == asked


async def test_a_run_reads_only_the_version_of_its_source_that_process_verified(
    client: httpx.AsyncClient, worker: None, storage: Storage, settings: Settings, account: Account, tmp_path: Any
) -> None:
    """The source's primary written again after it was processed (its presigned URL is still valid): a task chained
    on it fails with INPUT_MISSING saying so, rather than run on bytes its key does not name."""
    source = await uploaded_original(client, tmp_path)
    key = lifecycle.inputs_prefix(settings, account.user_id, source) + "primary.csv"
    await storage.put_bytes(key, DATA.replace(b"Paris", b"Rouen"), "text/csv")

    body = {"tool_id": TOOL, "source_task_id": source, "agents": ["unified-profiler"], "process": True}
    r = await client.post("/api/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    failed = await wait_for_status(client, r.json()["task_id"], FINAL, timeout=120)
    assert (failed["status"], failed["error"]["code"]) == ("FAILED", "INPUT_MISSING"), failed
    assert "uploaded again" in failed["error"]["message"]


async def test_another_user_never_hits(
    client: httpx.AsyncClient, worker: None, api: ApiServer, other_account: Account
) -> None:
    await original(client, parameters=PARAMS)
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers, timeout=30) as other:
        await missed(other, await streamed(other, parameters=PARAMS))
        assert (await other.get("/api/v1/stats")).json()["cache_hits"] == 0


@pytest.mark.parametrize("copied", [True, False], ids=["copies-made", "copies-pending"])
async def test_deleting_the_original_keeps_the_copy_downloadable(
    client: httpx.AsyncClient,
    worker: None,
    store: TaskStore,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    copied: bool,
) -> None:
    """Whether the hit made its own copies already or not yet (its copy job never enqueued): deleting the task it
    reused makes them first."""
    first = await original(client)
    before = await downloads(client, first)
    second = await streamed(client)
    if not copied:
        monkeypatch.setattr(JobQueue, "copies", no_copy)
    await hit(client, second)
    if copied:
        await own_copies(store, account, second)
    else:
        row = await store.get_task(second, account.user_id)
        assert row is not None and all(f"/tasks/{first}/outputs/" in o["key"] for o in row["outputs"])
    assert (await client.delete(f"/api/v1/tasks/{first}")).status_code == 204
    await own_copies(store, account, second, timeout=0)
    after = await downloads(client, second)
    assert {name: content for name, content in after.items() if name != "manifest.json"} == {
        name: content for name, content in before.items() if name != "manifest.json"
    }
    # With the original gone, the copy itself is what the next identical request reuses.
    third = await streamed(client)
    await hit(client, third)
    assert second in (await client.get("/api/v1/tasks/" + third)).json()["message"]


@pytest.fixture(scope="module")
def maintenance_settings(settings: Settings) -> Iterator[Settings]:
    """A database and key prefix of their own: a retention run there touches no other test's tasks."""
    with private_database(settings, "cache_retention") as url:
        yield settings.model_copy(update={"database_url": url, "key_prefix": f"{settings.key_prefix}cache-retention/"})


async def test_retention_keeps_the_objects_a_cache_hit_still_reads(
    maintenance_settings: Settings, storage: Storage
) -> None:
    """A task whose objects a cache hit still reads (its own copies not made: `copy_from`) keeps them past its
    retention; once the hit itself is past retention (its files deleted), the task's objects go too."""
    settings = maintenance_settings
    store = await TaskStore.connect(settings.database_url, 1, 4)
    core = lifecycle.Core(settings, store, storage, no_publish, no_enqueue)
    try:
        user_id, _ = await store.create_user("retention")
        ran, reused = await new_task(core, user_id), await new_task(core, user_id)
        await finished(core, user_id, ran, settings.retention_s + 120)
        await finished(core, user_id, reused, settings.retention_s + 60)
        await store.pool.execute("UPDATE tasks SET copy_from = $1 WHERE id = $2", uuid.UUID(ran), uuid.UUID(reused))

        assert (await run_maintenance(core))["artifacts_deleted"] == 1  # the hit's own prefix only
        kept, gone = await store.get_task(ran), await store.get_task(reused)
        assert kept is not None and not kept["artifacts_deleted"]
        assert gone is not None and gone["artifacts_deleted"]
        assert await store.pool.fetchval("SELECT copy_from FROM tasks WHERE id = $1", uuid.UUID(reused)) is None
        assert await run_maintenance(core) == {"expired": 0, "artifacts_deleted": 1, "multipart_aborted": 0}
        done = await store.get_task(ran)
        assert done is not None and done["artifacts_deleted"]
    finally:
        await storage.delete_prefix(settings.key_prefix)
        await store.close()


async def no_publish(*events: Any) -> None:
    """Events of the retention test's tasks go nowhere."""


async def no_enqueue(*args: Any) -> None:
    raise AssertionError("retention never enqueues")


async def no_copy(*args: Any) -> None:
    """A cache hit's copy job never enqueued (as when Redis loses it): its outputs stay the reused task's objects."""


def same_files(copies: dict[str, bytes], originals: dict[str, bytes]) -> None:
    """Every output of the original, byte for byte, but the manifest (which names its own task)."""
    assert set(copies) == set(originals) and "manifest.json" in copies
    assert {n: c for n, c in copies.items() if n != "manifest.json"} == {
        n: c for n, c in originals.items() if n != "manifest.json"
    }


async def test_a_worker_copy_job_makes_the_hits_own_copies_once(
    client: httpx.AsyncClient, worker: None, store: TaskStore, storage: Storage, settings: Settings, account: Account
) -> None:
    """The API that answered the hit enqueues its copy job; a worker runs it, and its result says it made the copies.
    Run again, or for a task that is no cache hit, it does nothing."""
    first = await original(client)
    second = await streamed(client)
    await hit(client, second)
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        job = Job(f"copies:{second}", redis, _queue_name=settings.arq_queue_name)
        assert await job.result(timeout=60, poll_delay=0.05) is True
    finally:
        await redis.aclose()
    await own_copies(store, account, second, timeout=0)
    same_files(await downloads(client, second), await downloads(client, first))
    core = lifecycle.Core(settings, store, storage, no_publish, no_enqueue)
    assert await lifecycle.copy_cache_hit(core, second) is False
    assert await lifecycle.copy_cache_hit(core, first) is False
    assert await lifecycle.copy_cache_hit(core, str(uuid.uuid4())) is False


async def test_the_maintenance_sweep_makes_the_copies_a_lost_job_did_not(
    client: httpx.AsyncClient,
    worker: None,
    store: TaskStore,
    storage: Storage,
    settings: Settings,
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hit whose copy job was lost keeps reading the original's objects until the sweep, which leaves hits
    younger than its grace period to their job, makes its copies; the original can then go."""
    first = await original(client)
    second = await streamed(client)
    monkeypatch.setattr(JobQueue, "copies", no_copy)
    await hit(client, second)
    core = lifecycle.Core(settings, store, storage, no_publish, no_enqueue)
    assert await copy_cache_hits(core, older_than_s=3600) == 0
    row = await store.get_task(second, account.user_id)
    assert row is not None and all(f"/tasks/{first}/outputs/" in o["key"] for o in row["outputs"])
    # A day on, a hit still without its copies is left as it is (its objects may be gone: retried for ever, the
    # oldest would take every batch).
    await store.pool.execute("UPDATE tasks SET finished_at = now() - interval '2 days' WHERE id = $1", UUID(second))
    await copy_cache_hits(core, older_than_s=0)
    row = await store.get_task(second, account.user_id)
    assert row is not None and all(f"/tasks/{first}/outputs/" in o["key"] for o in row["outputs"])
    await store.pool.execute("UPDATE tasks SET finished_at = now() - interval '1 hour' WHERE id = $1", UUID(second))

    assert await copy_cache_hits(core, older_than_s=0) >= 1
    await own_copies(store, account, second, timeout=0)
    originals = await downloads(client, first)
    assert (await client.delete(f"/api/v1/tasks/{first}")).status_code == 204
    copies = await downloads(client, second)
    same_files(copies, originals)
    assert json.loads(copies["manifest.json"])["cached_from"] == first


async def test_no_cache_header_and_cache_false_force_a_run_whose_result_is_cached_in_turn(
    client: httpx.AsyncClient, worker: None
) -> None:
    await original(client, parameters=PARAMS)
    forced = await streamed(client, parameters=PARAMS)
    task = await process(client, forced, {"Cache-Control": "max-age=0, No-Cache"})
    assert (task["status"], task["cached"]) == ("QUEUED", False)
    await completed(client, forced)
    await missed(client, await streamed(client, parameters={**PARAMS, "cache": False}))
    bad = await client.post("/api/v1/tasks", json={"tool_id": TOOL, "parameters": {"cache": "no"}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_PARAMETERS"
    reused = await streamed(client, parameters=PARAMS)
    await hit(client, reused)
    assert forced in (await client.get(f"/api/v1/tasks/{reused}")).json()["message"]  # the latest run is reused


async def test_process_true_on_create_queues_then_completes_from_the_cache(
    client: httpx.AsyncClient, worker: None, store: TaskStore, account: Account
) -> None:
    source = await original(client)
    body = {"tool_id": TOOL, "source_task_id": source, "agents": ["unified-profiler"], "process": True}
    r = await client.post("/api/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["status"], first["source_task_id"]) == ("QUEUED", source)
    await completed(client, first["task_id"])

    key = f"again-{uuid.uuid4().hex}"
    r = await client.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    second = r.json()
    assert (second["status"], second["cached"], second["source_task_id"]) == ("COMPLETED", True, source)
    assert await result(client, second["task_id"]) == await result(client, first["task_id"])
    replay = await client.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": key})
    assert (replay.status_code, replay.json()["task_id"], replay.json()["status"]) == (
        200,
        second["task_id"],
        "COMPLETED",
    )
    without = await client.post("/api/v1/tasks", json={**body, "source_task_id": None})
    assert without.status_code == 422 and without.json()["error"]["code"] == "VALIDATION_ERROR"
    forced = await client.post("/api/v1/tasks", json=body, headers={"Cache-Control": "no-cache"})
    assert (forced.status_code, forced.json()["status"]) == (201, "QUEUED")
    await client.post(f"/api/v1/tasks/{forced.json()['task_id']}/cancel")
    assert (await client.get("/api/v1/stats")).json()["cache_hits"] == 1


async def test_searches_with_equivalent_filter_lists_hit(client: httpx.AsyncClient, worker: None) -> None:
    """The searcher's `cache_form` puts equivalent filter lists in one order: the same search spelled otherwise
    is served from the cache; another filter value is not."""
    source = await original(client)

    async def search(filters: dict[str, list[str]]) -> dict[str, Any]:
        body = {"tool_id": SEARCH_TOOL, "source_task_id": source, "process": True}
        r = await client.post("/api/v1/tasks", json={**body, "parameters": {"searcher": {"filters": filters}}})
        assert r.status_code == 201, r.text
        return dict(r.json())

    first = await search({"city": ["Paris", "Lyon"]})
    assert first["status"] == "QUEUED"
    await completed(client, first["task_id"])
    again = await search({"city": ["Lyon", "Paris", "Paris"]})
    assert (again["status"], again["cached"]) == ("COMPLETED", True)
    other = await search({"city": ["Lyon", "Nice"]})
    assert (other["status"], other["cached"]) == ("QUEUED", False)
    await completed(client, other["task_id"])


async def test_a_search_results_rows_keep_their_columns_order(client: httpx.AsyncClient, worker: None) -> None:
    """/result gives a page's rows and an aggregate's groups with their keys in the columns' order (jsonb, which
    stores the result, orders an object's keys by length: QA saw {zip, name, agent})."""
    source = await original(client)
    parameters = {
        "searcher": {"columns": ["amount", "city", "id"]},
        "aggregator": {"group_by": ["city"], "metrics": [{"fn": "sum", "column": "amount"}, {"fn": "count"}]},
    }
    body = {"tool_id": SEARCH_TOOL, "source_task_id": source, "process": True, "parameters": parameters}
    r = await client.post("/api/v1/tasks", json=body)
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    await completed(client, task_id)
    agents = (await result(client, task_id))["agents"]
    rows = agents["searcher"]["data"]["rows"]
    assert rows and all(list(row) == ["amount", "city", "id"] for row in rows)
    aggregate = agents["aggregator"]["data"]
    order = [*aggregate["group_keys"], *aggregate["metrics"]]
    assert order[0] == "city" and all(list(group) == order for group in aggregate["groups"])


def test_rows_of_other_shapes_are_left_as_stored() -> None:
    stored = {"agents": {"searcher": {"data": {"columns": ["b", "a"], "rows": [{"a": 1, "b": 2}, {"a": 1}, 3]}}}}
    assert lifecycle.in_column_order(stored)["agents"]["searcher"]["data"]["rows"] == [{"b": 2, "a": 1}, {"a": 1}, 3]
    assert list(stored["agents"]["searcher"]["data"]["rows"][0]) == ["b", "a"]
    assert lifecycle.in_column_order({"agents": {"x": {"data": None}}, "status": "success"})["status"] == "success"


def test_objects_keyed_by_columns_come_back_in_the_datasets_order() -> None:
    """As jsonb stores it (keys by length): a profile's sample rows, a step's columns, per-column findings."""
    stored = {
        "summary": {
            "inputs": {"primary": {"columns": 3}},
            "dataset": {"columns": [{"name": "zeta"}, {"name": "alpha"}, {"name": "mid"}]},
        },
        "steps": [{"columns": {"mid": 1, "zeta": 2, "alpha": 3}, "agent_id": "x"}],
        "agents": {
            "unified-profiler": {
                "data": {
                    "samples": {"head": [{"mid": "x", "zeta": 1, "alpha": "a", "row_index": 1}]},
                    "stats": {"mean": 1.0, "zeta": 2},  # not keyed by columns: as stored
                }
            }
        },
    }
    fixed = lifecycle.in_column_order(stored)
    assert list(fixed["steps"][0]["columns"]) == ["zeta", "alpha", "mid"]
    assert list(fixed["steps"][0]) == ["columns", "agent_id"]
    data = fixed["agents"]["unified-profiler"]["data"]
    assert list(data["samples"]["head"][0]) == ["row_index", "zeta", "alpha", "mid"]
    assert list(data["stats"]) == ["mean", "zeta"]


STRESS_USERS = 3
STRESS_SEARCHES = 20
SEARCH_TOOL = "search-my-data"


async def finished_row(store: TaskStore, task_id: str, timeout: float) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await store.get_task(task_id)
        assert row is not None
        if row["status"] in FINAL:
            return row
        assert asyncio.get_running_loop().time() < deadline, f"task {task_id} still {row['status']}"
        await asyncio.sleep(0.1)


def search_parameters(n: int) -> dict[str, Any]:
    """The n-th distinct search of the stress test: a page size and a sort of its own."""
    return {"searcher": {"page_size": 1 + n // 2, "sort": [{"column": "amount", "descending": n % 2 == 1}]}}


async def test_twenty_concurrent_searches_of_three_users_complete_and_their_repeat_is_cached(
    api: ApiServer, worker: None, store: TaskStore
) -> None:
    """The seed's stress test: every search of a first round (20, spread over 3 users, each a distinct request of
    its user) completes; the same 20 again, all at once, are all served from the cache."""
    users = [await store.create_user(f"stress-{uuid.uuid4().hex[:6]}", credits=100_000) for _ in range(STRESS_USERS)]
    clients = [
        httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) for _, key in users
    ]
    try:
        sources = [await original(c) for c in clients]
        requests = [(n % STRESS_USERS, search_parameters(n)) for n in range(STRESS_SEARCHES)]

        async def search(user: int, parameters: dict[str, Any]) -> dict[str, Any]:
            body = {"tool_id": SEARCH_TOOL, "source_task_id": sources[user], "parameters": parameters, "process": True}
            r = await clients[user].post("/api/v1/tasks", json=body)
            assert r.status_code == 201, r.text
            return dict(r.json())

        first = await asyncio.gather(*(search(user, parameters) for user, parameters in requests))
        assert all(not task["cached"] for task in first)
        for task in first:  # waited for in the database: 20 pollers would be over the users' request rates
            done = await finished_row(store, task["task_id"], timeout=300)
            assert done["status"] == "COMPLETED", dict(done)
        again = await asyncio.gather(*(search(user, parameters) for user, parameters in requests))
        assert [(task["status"], task["cached"]) for task in again] == [("COMPLETED", True)] * STRESS_SEARCHES
        for (user, _), task, repeat in zip(requests, first, again, strict=True):
            assert await result(clients[user], repeat["task_id"]) == await result(clients[user], task["task_id"])
            files = (await clients[user].get(f"/api/v1/tasks/{repeat['task_id']}/downloads")).json()["files"]
            assert {"search_result.json", "search_result.csv"} <= {f["name"] for f in files}
        hits = [(await c.get("/api/v1/stats")).json()["cache_hits"] for c in clients]
        assert hits == [len([1 for user, _ in requests if user == n]) for n in range(STRESS_USERS)]
    finally:
        for c in clients:
            await c.aclose()
