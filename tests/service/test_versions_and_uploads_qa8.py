"""QA pass 8 (D5, D7, D10, D12, D13) against the real API (uvicorn) on real PostgreSQL, Redis and S3:

- D5: a streamed PUT of a primary (or baseline) in another format replaces the earlier one (its input row and its
  stored object), so a user who re-uploads in the right format does not end with a task that can only fail;
- D7: deleting a version in the middle of a chain keeps its descendants' lineage to the surviving root (the deleted
  version listed as deleted, with its sentences), and processing a task whose source was deleted says so;
- D10: a version of no rows is refused by /transform and by a create on it, naming the version;
- D12: a chained task whose source version is deleted before the worker reads it fails INPUT_MISSING naming that
  version (not INVALID_FILE "the primary input ... is missing"), whether the delete comes before the worker resolves
  the version or while it copies it (worker.runner staging);
- D13: processing transform-my-data with nothing to do is refused (422 INVALID_PARAMETERS) instead of queued.

Source tasks are COMPLETED by writing their result as a worker would (tests/service/test_transform_api.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from service import lifecycle
from service.config import Settings
from service.lifecycle import Core
from service.storage import Storage
from service.store import Event, TaskStore
from tests.conftest import Account
from tests.support import create_task
from worker.runner import execute_task

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = b"id,v\n1,5\n2,50\n"
TSV = b"id\tv\n1\t5\n2\t50\n3\t70\n"


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return dict(error)


async def completed(
    client: httpx.AsyncClient,
    store: TaskStore,
    *,
    tool_id: str = "clean-my-data",
    source_task_id: str | None = None,
    summary: dict[str, Any] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> str:
    """A task of the client's user COMPLETED with `summary` as its stored result's summary, as a worker writes it."""
    body: dict[str, Any] = {"tool_id": tool_id}
    if source_task_id is not None:
        body["source_task_id"] = source_task_id
        if tool_id == "transform-my-data":
            body["parameters"] = {"transformer": {"commands": ["sort by v"]}}
    task = await create_task(client, **body)
    await store.pool.execute(
        "UPDATE tasks SET status = 'COMPLETED', progress = 100, finished_at = now(), result = $2, outputs = $3"
        " WHERE id = $1",
        uuid.UUID(task["task_id"]),
        {"status": "success", "summary": summary if summary is not None else {"rows": 3, "rows_out": 2}},
        outputs or [],
    )
    return str(task["task_id"])


async def put(client: httpx.AsyncClient, task_id: str, name: str, data: bytes, content_type: str) -> httpx.Response:
    return await client.put(
        f"/api/v1/tasks/{task_id}/inputs/{name}", content=data, headers={"Content-Type": content_type}
    )


# --- D5: a PUT of the same role in another format replaces the earlier upload -----------------------------------


async def test_a_streamed_primary_in_another_format_replaces_the_earlier_one(
    client: httpx.AsyncClient, settings: Settings, storage: Storage, account: Account
) -> None:
    task = await create_task(client, tool_id="profile-my-data")  # it takes a baseline too
    task_id = task["task_id"]
    assert (await put(client, task_id, "primary.csv", CSV, "text/csv")).status_code == 201
    assert (await put(client, task_id, "baseline.csv", CSV, "text/csv")).status_code == 201
    assert (await put(client, task_id, "primary.tsv", TSV, "text/tab-separated-values")).status_code == 201
    assert (await put(client, task_id, "baseline.tsv", TSV, "text/tab-separated-values")).status_code == 201

    view = (await client.get(f"/api/v1/tasks/{task_id}")).json()
    assert [(i["name"], i["role"], i["size"]) for i in view["inputs"]] == [
        ("primary.tsv", "primary", len(TSV)),
        ("baseline.tsv", "baseline", len(TSV)),
    ]
    prefix = lifecycle.inputs_prefix(settings, account.user_id, task_id)
    assert await storage.head(prefix + "primary.csv") is None  # the replaced upload is gone from the store too
    assert await storage.head(prefix + "baseline.csv") is None
    assert await storage.head(prefix + "primary.tsv") is not None

    # The same name again replaces in place; another role stays.
    assert (await put(client, task_id, "primary.tsv", TSV, "text/tab-separated-values")).status_code == 201
    view = (await client.get(f"/api/v1/tasks/{task_id}")).json()
    assert sorted(i["name"] for i in view["inputs"]) == ["baseline.tsv", "primary.tsv"]

    queued = await client.post(f"/api/v1/tasks/{task_id}/process")
    assert queued.status_code == 202, queued.text


# --- D7: lineage survives deleting a version in the middle --------------------------------------------------------


async def test_deleting_an_intermediate_version_keeps_the_chain_to_the_root(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    root = await completed(client, store)
    c1 = await completed(
        client,
        store,
        tool_id="transform-my-data",
        source_task_id=root,
        summary={"rows": 4, "rows_out": 2, "transformations": ["Kept 2 rows where v > 10"]},
    )
    c2 = await completed(
        client,
        store,
        tool_id="transform-my-data",
        source_task_id=c1,
        summary={"rows": 2, "rows_out": 2, "transformations": ["Added column w = v * 2"]},
    )
    before = (await client.get(f"/api/v1/tasks/{c2}/lineage")).json()
    assert [a["task_id"] for a in before["ancestors"]] == [root, c1]

    assert (await client.delete(f"/api/v1/tasks/{c1}")).status_code == 204
    lineage = await client.get(f"/api/v1/tasks/{c2}/lineage")
    assert lineage.status_code == 200, lineage.text
    ancestors = lineage.json()["ancestors"]
    assert [a["task_id"] for a in ancestors] == [root, c1]
    assert "deleted" not in ancestors[0]
    assert ancestors[1]["deleted"] is True
    assert ancestors[1]["transformations"] == ["Kept 2 rows where v > 10"] and ancestors[1]["rows"] == 2
    assert ancestors[1]["source_task_id"] == root
    assert (await client.get(f"/api/v1/tasks/{c2}")).json()["source_task_id"] == c1  # kept, not null
    assert (await client.get(f"/api/v1/tasks/{c1}/lineage")).status_code == 404  # a deleted task has none

    # The root deleted too: both stay in the chain, as deleted.
    assert (await client.delete(f"/api/v1/tasks/{root}")).status_code == 204
    ancestors = (await client.get(f"/api/v1/tasks/{c2}/lineage")).json()["ancestors"]
    assert [(a["task_id"], a.get("deleted")) for a in ancestors] == [(root, True), (c1, True)]


async def test_a_task_never_chained_on_leaves_no_tombstone(client: httpx.AsyncClient, store: TaskStore) -> None:
    lone = await completed(client, store)
    assert (await client.delete(f"/api/v1/tasks/{lone}")).status_code == 204
    assert await store.pool.fetchval("SELECT count(*) FROM deleted_versions WHERE id = $1", uuid.UUID(lone)) == 0


async def test_processing_a_task_whose_source_was_deleted_names_the_source(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    source = await completed(client, store)
    child = await create_task(client, tool_id="profile-my-data", source_task_id=source)
    assert (await client.delete(f"/api/v1/tasks/{source}")).status_code == 204
    error = error_of(await client.post(f"/api/v1/tasks/{child['task_id']}/process"), 422, "INPUT_MISSING")
    assert source in error["message"] and "deleted" in error["message"]
    assert "upload URLs" not in error["message"]
    assert (await client.get(f"/api/v1/tasks/{child['task_id']}")).json()["status"] == "CREATED"


# --- D10: a version of no rows ---------------------------------------------------------------------------------

EMPTY = {
    "rows": 2,
    "rows_out": 0,
    "transformations": ["Kept 0 rows where v > 100"],
    "dataset": {"name": "transformed_data.csv", "rows": 0, "columns": [{"name": "id", "dtype": "Int64"}]},
}


async def test_a_version_of_no_rows_is_refused_up_front(client: httpx.AsyncClient, store: TaskStore) -> None:
    source = await completed(client, store)
    empty = await completed(client, store, tool_id="transform-my-data", source_task_id=source, summary=EMPTY)
    count = await store.pool.fetchval("SELECT count(*) FROM tasks")

    refused = await client.post(f"/api/v1/tasks/{empty}/transform", json={"command": "sort by id"})
    error = error_of(refused, 422, "INPUT_MISSING")
    assert f"Version {empty} has no rows" in error["message"] and "transform" in error["message"]
    assert error["details"] == {"source_task_id": empty, "rows": 0}

    for body in (
        {"tool_id": "search-my-data", "source_task_id": empty, "process": True},
        {"tool_id": "profile-my-data", "source_task_id": empty},
    ):
        error = error_of(await client.post("/api/v1/tasks", json=body), 422, "INPUT_MISSING")
        assert f"Version {empty} has no rows" in error["message"]
    assert await store.pool.fetchval("SELECT count(*) FROM tasks") == count  # nothing was made

    # rows_out alone (no recorded dataset) says so too; a version of rows is taken.
    bare = await completed(client, store, summary={"rows": 5, "rows_out": 0})
    error_of(await client.post(f"/api/v1/tasks/{bare}/transform", json={"command": "sort by id"}), 422, "INPUT_MISSING")
    taken = await client.post(f"/api/v1/tasks/{source}/transform", json={"command": "sort by v"})
    assert taken.status_code == 202, taken.text


# --- D13: transform-my-data with nothing to do -----------------------------------------------------------------


async def test_transform_my_data_with_no_commands_is_refused_at_process(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    source = await completed(client, store)
    count = await store.pool.fetchval("SELECT count(*) FROM tasks")
    at_once = {"tool_id": "transform-my-data", "source_task_id": source, "process": True}
    error = error_of(await client.post("/api/v1/tasks", json=at_once), 422, "INVALID_PARAMETERS")
    assert "nothing to do" in error["message"]
    assert await store.pool.fetchval("SELECT count(*) FROM tasks") == count  # refused before it was made

    task = await create_task(client, tool_id="transform-my-data")
    assert (await put(client, task["task_id"], "primary.csv", CSV, "text/csv")).status_code == 201
    error = error_of(await client.post(f"/api/v1/tasks/{task['task_id']}/process"), 422, "INVALID_PARAMETERS")
    assert "nothing to do" in error["message"] and error["details"]["agent"] == "transformer"
    assert (await client.get(f"/api/v1/tasks/{task['task_id']}")).json()["status"] == "UPLOADING"

    given = await create_task(
        client, tool_id="transform-my-data", parameters={"transformer": {"commands": ["sort by v"]}}
    )
    assert (await put(client, given["task_id"], "primary.csv", CSV, "text/csv")).status_code == 201
    assert (await client.post(f"/api/v1/tasks/{given['task_id']}/process")).status_code == 202

    in_file = await create_task(client, tool_id="transform-my-data")  # parameters.json: the worker reads it
    assert (await put(client, in_file["task_id"], "primary.csv", CSV, "text/csv")).status_code == 201
    params = b'{"transformer": {"commands": ["sort by v"]}}'
    assert (await put(client, in_file["task_id"], "parameters.json", params, "application/json")).status_code == 201
    assert (await client.post(f"/api/v1/tasks/{in_file['task_id']}/process")).status_code == 202


# --- D12: the worker reading a source version deleted before it did ---------------------------------------------


async def _no_publish(*events: Event) -> None:
    return None


class _NoEnqueue:
    async def __call__(self, *args: Any) -> None:
        return None

    async def copies(self, task_id: str) -> None:
        return None


async def _queued_child(store: TaskStore, client: httpx.AsyncClient, source: str) -> tuple[str, str]:
    """A profile task chained on `source`, QUEUED under a job no worker was given (this test runs it)."""
    child = await create_task(client, tool_id="profile-my-data", source_task_id=source)
    job_id = f"task:{child['task_id']}:qa8test"
    await store.pool.execute(
        "UPDATE tasks SET status = 'QUEUED', queued_at = now(), job_id = $2 WHERE id = $1",
        uuid.UUID(child["task_id"]),
        job_id,
    )
    return str(child["task_id"]), job_id


@pytest.mark.parametrize("when", ["before the worker resolves it", "while the worker copies it"])
async def test_a_source_deleted_before_the_worker_read_it_is_input_missing_naming_it(
    client: httpx.AsyncClient, store: TaskStore, storage: Storage, settings: Settings, account: Account, when: str
) -> None:
    core = Core(settings, store, storage, _no_publish, _NoEnqueue())  # type: ignore[arg-type]
    source = await completed(client, store)
    key = lifecycle.attempt_outputs_prefix(settings, account.user_id, source, 1) + "cleaned_data.csv"
    output = {"name": "cleaned_data.csv", "content_type": "text/csv", "size": len(CSV), "key": key}
    await store.pool.execute("UPDATE tasks SET outputs = $2 WHERE id = $1", uuid.UUID(source), [output])
    await storage.put_bytes(key, CSV, "text/csv")
    child, job_id = await _queued_child(store, client, source)

    if when == "before the worker resolves it":
        assert (await client.delete(f"/api/v1/tasks/{source}")).status_code == 204
    else:  # the version resolved (its task row still there) but its file already gone: the delete in flight
        await storage.delete_prefix(key)

    # No agent runs: the run fails while staging its inputs, before it would need an agent process.
    state = await execute_task(core, None, child, "qa8-test-worker", job_id)  # type: ignore[arg-type]
    assert state == "FAILED"
    row = await store.get_task(child)
    assert row is not None and row["status"] == "FAILED"
    assert row["error"]["code"] == "INPUT_MISSING", row["error"]
    assert f"The source version {source} was deleted before this task read it" in row["error"]["message"]
