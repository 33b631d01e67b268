"""POST /api/v1/tasks/{id}/transform and GET /api/v1/tasks/{id}/lineage against the real API (uvicorn) on real
PostgreSQL, Redis and S3: the body's shapes, the source's owner and state, commands resolved against the source's
recorded schema before answering (position, reason, suggestions), Idempotency-Key replays, the lineage's shape
and its scoping to the caller; and the API process never loading Polars.

Source tasks here are COMPLETED by writing their result as a worker would (its stored summary, with or without
the dataset's recorded schema): what the API reads of them. tests/e2e/test_transform.py runs the real chain.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.store import TaskStore
from tests.conftest import Account, ApiServer
from tests.support import create_task

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOOL = "transform-my-data"
DATASET = {
    "name": "cleaned_data.csv",
    "rows": 4,
    "columns": [
        {"name": "id", "dtype": "Int64"},
        {"name": "email", "dtype": "String"},
        {"name": "zip", "dtype": "String"},
        {"name": "amount", "dtype": "Float64"},
    ],
}
ROOT = Path(__file__).resolve().parents[2]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return dict(body["error"])


async def completed(
    client: httpx.AsyncClient,
    store: TaskStore,
    *,
    tool_id: str = "clean-my-data",
    summary: dict[str, Any] | None = None,
    source_task_id: str | None = None,
) -> str:
    """A task of the client's user COMPLETED with `summary` as its stored result's summary, as a worker
    writes it (a cleaned dataset of four rows with its recorded schema unless told otherwise)."""
    body: dict[str, Any] = {"tool_id": tool_id}
    if source_task_id is not None:
        body["source_task_id"] = source_task_id
    task = await create_task(client, **body)
    if summary is None:
        summary = {"rows": 6, "rows_out": 4, "dataset": DATASET}
    await store.pool.execute(
        "UPDATE tasks SET status = 'COMPLETED', progress = 100, finished_at = now(), result = $2, outputs = '[]'"
        " WHERE id = $1",
        uuid.UUID(task["task_id"]),
        {"status": "success", "summary": summary},
    )
    return str(task["task_id"])


async def transform(
    client: httpx.AsyncClient, task_id: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(f"/api/v1/tasks/{task_id}/transform", json=body, headers=headers)


async def transform_tasks(client: httpx.AsyncClient) -> list[str]:
    page = (await client.get("/api/v1/tasks", params={"tool_id": TOOL, "limit": 200})).json()
    return [item["task_id"] for item in page["items"]]


async def test_a_command_becomes_a_queued_transform_task_on_the_source(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    source = await completed(client, store)
    r = await transform(client, source, {"command": "remove rows where email is null", "labels": {"chat": "1"}})
    assert r.status_code == 202, r.text
    task = r.json()
    assert (task["tool_id"], task["source_task_id"], task["status"]) == (TOOL, source, "QUEUED")
    assert task["agents"] == ["transformer"] and task["labels"] == {"chat": "1"} and task["priority"] == "normal"
    row = await store.get_task(task["task_id"])
    assert row is not None and row["parameters"] == {"transformer": {"commands": ["remove rows where email is null"]}}

    many = await transform(client, source, {"commands": ["rename column zip to postcode", "lowercase email"]})
    assert many.status_code == 202, many.text
    row = await store.get_task(many.json()["task_id"])
    assert row is not None
    assert row["parameters"] == {"transformer": {"commands": ["rename column zip to postcode", "lowercase email"]}}

    operations = [{"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}}]
    ops = await transform(client, source, {"operations": operations, "priority": "high"})
    assert ops.status_code == 202, ops.text
    assert ops.json()["priority"] == "high"
    row = await store.get_task(ops.json()["task_id"])
    assert row is not None and row["parameters"] == {"transformer": {"operations": operations}}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"priority": "high"},
        {"command": "lowercase email", "commands": ["lowercase email"]},
        {"command": None, "commands": ["lowercase email"]},
        {"command": None},
        {"command": ""},
        {"commands": []},
        {"commands": ["x" * 501]},
        {"operations": []},
        {"operations": ["filter"]},
        {"command": "lowercase email", "bogus": 1},
        {"command": "lowercase email", "priority": "asap"},
        {"command": "lowercase email", "labels": {"a": "\x01"}},
        {"command": "lowercase\x00email"},
    ],
)
async def test_a_body_outside_the_schema_is_a_validation_error(
    client: httpx.AsyncClient, store: TaskStore, body: dict[str, Any]
) -> None:
    source = await completed(client, store)
    before = await transform_tasks(client)
    assert_error(await transform(client, source, body), 422, "VALIDATION_ERROR")
    assert await transform_tasks(client) == before


async def test_operations_outside_the_transformers_model_are_invalid_parameters(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    source = await completed(client, store, summary={"rows": 4})  # no schema: the model alone
    before = await transform_tasks(client)
    for operations in (
        [{"op": "explode", "columns": ["email"]}],  # no such operation
        [{"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "like"}}],
        [{"op": "drop_columns"}],
        [{"op": "sort", "by": [{"column": "id"}], "extra": True}],
    ):
        error = assert_error(await transform(client, source, {"operations": operations}), 422, "INVALID_PARAMETERS")
        assert error["details"]["agent_id"] == "transformer" and "operations" in error["details"]["field"]
    assert await transform_tasks(client) == before


async def test_the_source_must_be_the_callers_and_completed(
    api: ApiServer, client: httpx.AsyncClient, store: TaskStore, other_account: Account
) -> None:
    body = {"command": "remove rows where email is null"}
    assert_error(await transform(client, str(uuid.uuid4()), body), 404, "TASK_NOT_FOUND")
    assert_error(await transform(client, "not-a-task", body), 404, "TASK_NOT_FOUND")
    mine = await completed(client, store)
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers) as other:
        assert_error(await transform(other, mine, body), 404, "TASK_NOT_FOUND")
    pending = await create_task(client, tool_id="clean-my-data")
    error = assert_error(await transform(client, pending["task_id"], body), 409, "INVALID_STATE")
    assert error["details"] == {"status": "CREATED"}
    await store.pool.execute("UPDATE tasks SET artifacts_deleted = true WHERE id = $1", uuid.UUID(mine))
    error = assert_error(await transform(client, mine, body), 409, "INVALID_STATE")
    assert error["details"] == {"status": "COMPLETED", "artifacts_deleted": True}


async def test_commands_are_resolved_against_the_sources_recorded_schema(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    """A column that is not there is refused before any task is made, with where it is in the command and what
    was meant; the same command on a source without a recorded schema is left to the worker."""
    source = await completed(client, store)
    before = await transform_tasks(client)
    command = "remove rows where emailaddress is null"
    error = assert_error(await transform(client, source, {"command": command}), 422, "INVALID_PARAMETERS")
    details = error["details"]
    assert details["command"] == command and details["reason"] == "unknown_column"
    assert details["position"] == command.index("emailaddress")
    assert details["suggestions"] == ["email"] and "did you mean 'email'" in error["message"]

    later = ["rename column zip to postcode", "remove rows where zip is null"]  # zip is gone by then
    error = assert_error(await transform(client, source, {"commands": later}), 422, "INVALID_PARAMETERS")
    assert error["details"]["command"] == later[1] and error["details"]["field"] == "commands[1]"
    assert error["details"]["position"] == later[1].index("zip")

    operations = [{"op": "drop_columns", "columns": ["nope"]}]
    error = assert_error(await transform(client, source, {"operations": operations}), 422, "INVALID_PARAMETERS")
    assert error["details"]["field"].startswith("operations[0]")
    assert await transform_tasks(client) == before

    # The one close spelling is read where nothing is removed (the worker notes it in its report); a command that
    # removes rows takes the exact name; a source without a schema: the worker's.
    assert (await transform(client, source, {"command": "sort by emial"})).status_code == 202
    assert (await transform(client, source, {"command": "remove rows where emial is null"})).status_code == 422
    unknown_schema = await completed(client, store, summary={"rows": 6, "rows_out": 4})
    r = await transform(client, unknown_schema, {"command": command})
    assert r.status_code == 202, r.text


async def test_text_commands_on_a_cleaned_datasets_categorical_columns_are_accepted(
    client: httpx.AsyncClient, store: TaskStore
) -> None:
    """clean-my-data's type-fixer records repeated text as Categorical: text commands on it are queued (QA: 'contains',
    lowercase, trim, replace and lower() were refused with 422 "works on text")."""
    columns = [*DATASET["columns"], {"name": "maker", "dtype": "Categorical"}]  # type: ignore[misc]
    source = await completed(
        client, store, summary={"rows": 6, "rows_out": 4, "dataset": {**DATASET, "columns": columns}}
    )
    for command in (
        "keep rows where maker contains BOEING",
        "lowercase maker",
        "trim maker",
        "replace text INDUSTRIE with IND in maker",
        "add column m = lower(maker)",
    ):
        r = await transform(client, source, {"command": command})
        assert r.status_code == 202, (command, r.text)


async def test_idempotency_key_replays_the_same_task(client: httpx.AsyncClient, store: TaskStore) -> None:
    source = await completed(client, store)
    key = uuid.uuid4().hex
    body = {"command": "remove rows where email is null"}
    first = await transform(client, source, body, key)
    second = await transform(client, source, body, key)
    assert (first.status_code, second.status_code) == (202, 200), (first.text, second.text)
    assert first.json()["task_id"] == second.json()["task_id"] and second.json()["status"] == "QUEUED"
    assert (await transform(client, source, {"commands": [body["command"]]}, key)).status_code == 200  # the same

    conflict = assert_error(
        await transform(client, source, {"command": "lowercase email"}, key), 409, "IDEMPOTENCY_CONFLICT"
    )
    assert conflict["details"]["task_id"] == first.json()["task_id"]
    other_source = await completed(client, store)
    assert_error(await transform(client, other_source, body, key), 409, "IDEMPOTENCY_CONFLICT")
    assert_error(await transform(client, source, body, ""), 422, "VALIDATION_ERROR")

    # A replay is answered before the source is looked at: it keeps its task once the source is gone.
    assert (await client.delete(f"/api/v1/tasks/{source}")).status_code == 204
    again = await transform(client, source, body, key)
    assert again.status_code == 200 and again.json()["task_id"] == first.json()["task_id"]
    assert_error(await transform(client, source, body), 404, "TASK_NOT_FOUND")


async def test_lineage_lists_ancestors_root_first_and_children(client: httpx.AsyncClient, store: TaskStore) -> None:
    root = await completed(client, store)  # a cleaning: rows_out 4
    first = await completed(
        client,
        store,
        tool_id=TOOL,
        source_task_id=root,
        summary={"rows": 4, "rows_out": 3, "transformations": ["Dropped 1 row where email was null"]},
    )
    profile = await completed(client, store, tool_id="profile-my-data", source_task_id=first, summary={"rows": 3})
    second = await completed(
        client,
        store,
        tool_id=TOOL,
        source_task_id=first,
        summary={"rows": 3, "dataset": {"rows": 3}, "transformations": ["Renamed zip to postcode"]},
    )
    queued = (await transform(client, second, {"command": "lowercase email"})).json()

    r = await client.get(f"/api/v1/tasks/{first}/lineage")
    assert r.status_code == 200, r.text
    lineage = r.json()
    assert set(lineage) == {"task_id", "task", "ancestors", "children"} and lineage["task_id"] == first
    assert [a["task_id"] for a in lineage["ancestors"]] == [root]
    assert [c["task_id"] for c in lineage["children"]] == [profile, second]  # oldest first
    entry = lineage["task"]
    assert set(entry) == {"task_id", "tool_id", "status", "rows", "transformations", "created_at", "source_task_id"}
    assert entry == {
        "task_id": first,
        "tool_id": TOOL,
        "status": "COMPLETED",
        "rows": 3,
        "transformations": ["Dropped 1 row where email was null"],
        "created_at": entry["created_at"],
        "source_task_id": root,
    }
    assert entry["created_at"].endswith("Z")
    assert lineage["ancestors"][0] | {"created_at": None} == {
        "task_id": root,
        "tool_id": "clean-my-data",
        "status": "COMPLETED",
        "rows": 4,
        "transformations": [],
        "created_at": None,
        "source_task_id": None,
    }
    assert [(c["rows"], c["transformations"]) for c in lineage["children"]] == [
        (3, []),
        (3, ["Renamed zip to postcode"]),
    ]

    deepest = (await client.get(f"/api/v1/tasks/{queued['task_id']}/lineage")).json()
    assert [a["task_id"] for a in deepest["ancestors"]] == [root, first, second]
    # A worker of the session may have taken it (its fabricated source has no stored data: it fails): no rows yet.
    assert deepest["task"]["status"] in {"QUEUED", "PROCESSING", "FAILED"}, deepest["task"]
    assert deepest["task"]["rows"] is None and deepest["children"] == []
    assert (await client.get(f"/api/v1/tasks/{root}/lineage")).json()["ancestors"] == []

    # A master run's version is master_data.csv: 6 rows read, 3 golden records (a result stored before its rows_out
    # said so still shows the dataset's rows).
    master = await completed(
        client,
        store,
        tool_id="master-my-data",
        source_task_id=root,
        summary={"rows": 6, "rows_out": 6, "dataset": {"name": "master_data.csv", "rows": 3, "columns": []}},
    )
    master_lineage = (await client.get(f"/api/v1/tasks/{master}/lineage")).json()
    assert master_lineage["task"]["rows"] == 3 and [a["rows"] for a in master_lineage["ancestors"]] == [4]
    assert [(c["task_id"], c["rows"]) for c in (await client.get(f"/api/v1/tasks/{root}/lineage")).json()["children"]][
        -1
    ] == (master, 3)


async def test_lineage_never_shows_another_users_tasks(
    api: ApiServer, client: httpx.AsyncClient, store: TaskStore, other_account: Account
) -> None:
    mine = await completed(client, store)
    child = await completed(client, store, tool_id=TOOL, source_task_id=mine, summary={"rows_out": 2})
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers) as other:
        assert_error(await other.get(f"/api/v1/tasks/{mine}/lineage"), 404, "TASK_NOT_FOUND")
        theirs = await completed(other, store)
        their_child = await completed(other, store, tool_id=TOOL, source_task_id=theirs)
        # Links across users cannot be made through the API; forged in the database, neither query follows them.
        await store.pool.execute(
            "UPDATE tasks SET source_task_id = $2 WHERE id = $1", uuid.UUID(their_child), uuid.UUID(mine)
        )
        await store.pool.execute(
            "UPDATE tasks SET source_task_id = $2 WHERE id = $1", uuid.UUID(mine), uuid.UUID(theirs)
        )
        theirs_seen = (await other.get(f"/api/v1/tasks/{their_child}/lineage")).json()
    assert theirs_seen["ancestors"] == []
    lineage = (await client.get(f"/api/v1/tasks/{mine}/lineage")).json()
    assert lineage["ancestors"] == [] and [c["task_id"] for c in lineage["children"]] == [child]
    assert_error(await client.get(f"/api/v1/tasks/{uuid.uuid4()}/lineage"), 404, "TASK_NOT_FOUND")
    assert_error(await client.get("/api/v1/tasks/not-a-task/lineage"), 404, "TASK_NOT_FOUND")


async def test_openapi_documents_transform_and_lineage(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    post = document["paths"]["/api/v1/tasks/{task_id}/transform"]["post"]
    assert {"200", "202", "404", "409", "422"} <= set(post["responses"])
    assert "details.position" in post["description"] and "details.suggestions" in post["description"]
    shapes = document["components"]["schemas"]["TransformRequest"]["oneOf"]
    assert [shape["required"] for shape in shapes] == [["command"], ["commands"], ["operations"]]
    get = document["paths"]["/api/v1/tasks/{task_id}/lineage"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Lineage"}


async def test_the_api_process_never_loads_polars() -> None:
    """The API resolves commands with pure Python: building the app and its document, validating a transform and
    resolving commands against a schema leave Polars unloaded (it costs the API memory and start-up time)."""
    script = textwrap.dedent(
        """
        import sys
        from service.api.app import create_app
        from service.api.openapi import build_openapi
        from service.config import Settings
        from service.lifecycle import _check_transform

        create_app(Settings(secret_key="x" * 43))
        build_openapi()
        _check_transform(
            {"commands": ["remove rows where email is null", "rename column zip to postcode"]},
            {"columns": [{"name": "email", "dtype": "String"}, {"name": "zip", "dtype": "String"}]},
        )
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("polars", "numpy", "pandas"))
        assert not loaded, loaded
        print("clean")
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0 and stdout.decode().strip() == "clean", stderr.decode()[-3000:]
