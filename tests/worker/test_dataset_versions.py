"""Dataset versions (API.md): what a task chained on another (`source_task_id`) takes as its primary input.

A task's version is its main data output (cleaned_data.csv, master_data.csv, transformed_data.csv,
search_result.csv), else its own uploaded primary in whatever format it came (with its reading options: an
XLSX sheet, the user's file name), else, for a task that was itself chained, its source's version, up the
chain; row-level issue files and reports never are one, and a broken chain is a clear INPUT_MISSING.

worker.runner.dataset_version on tasks written as their runs leave them (real PostgreSQL and object store), then
the real worker running chains through the API: a profile of an XLSX sheet, a profile chained on it, a cleaning
chained on that one, and a cleaning chained on a profile of a Parquet or NDJSON upload.
"""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
import xlsxwriter

from agents import registry
from service import lifecycle
from service.config import Settings
from service.lifecycle import Core
from service.storage import Storage
from service.store import Event, TaskStore
from service.versions import DatasetVersion
from service.versions import with_version_options as _with_version_options
from tests.e2e.test_tools import fetch, write
from tests.support import CONTENT_TYPES, create_task, task_spec, wait_for_status
from worker.runner import TaskFailure, dataset_version

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _unused_publish(*events: Event) -> None:
    raise AssertionError("dataset_version writes nothing")


async def _unused_enqueue(*args: Any) -> None:
    raise AssertionError("dataset_version queues nothing")


@pytest.fixture
def core(settings: Settings, store: TaskStore, storage: Storage) -> Core:
    return Core(settings, store, storage, _unused_publish, _unused_enqueue)


@pytest.fixture
async def user_id(store: TaskStore) -> str:
    uid, _ = await store.create_user(f"versions-{uuid.uuid4().hex[:6]}")
    return uid


def output(core: Core, user_id: str, task_id: str, name: str, attempt: int = 1) -> dict[str, Any]:
    key = lifecycle.attempt_outputs_prefix(core.settings, user_id, task_id, attempt) + name
    return {"name": name, "content_type": registry.output_content_type(name), "size": 10, "key": key}


async def finished_task(
    core: Core,
    user_id: str,
    *,
    tool_id: str,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
    source_task_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> str:
    """A COMPLETED task as its run leaves it: its declared inputs and its stored outputs (run 1)."""
    row, _ = await core.store.insert_task(
        task_spec(
            user_id,
            tool_id=tool_id,
            agents=list(registry.tool_spec(tool_id).default_chain),
            parameters=parameters,
            source_task_id=source_task_id,
            upload_ttl_s=3600,
        )
    )
    task_id = str(row["id"])
    await core.store.pool.execute(
        "UPDATE tasks SET status = 'COMPLETED', inputs = $2, outputs = $3, finished_at = now() WHERE id = $1",
        row["id"],
        inputs or [],
        [output(core, user_id, task_id, name) for name in outputs or []],
    )
    return task_id


def primary(name: str, role: str = "primary", **extra: Any) -> dict[str, Any]:
    """An uploaded input as upload-urls declares it."""
    return {"name": name, "role": role, "content_type": CONTENT_TYPES[Path(name).suffix], "size": 10, **extra}


async def test_a_tools_main_data_output_is_its_version(core: Core, user_id: str) -> None:
    outputs = ["row_level_issues.csv", "quarantine.csv", "cleaned_data.csv", "cleaning_report.json"]
    clean = await finished_task(
        core, user_id, tool_id="clean-my-data", inputs=[primary("primary.xlsx")], outputs=outputs
    )
    version = await dataset_version(core, user_id, clean)
    assert version == DatasetVersion(
        clean, "cleaned_data.csv", output(core, user_id, clean, "cleaned_data.csv")["key"], {}
    )
    assert version.local_name == "primary.csv"
    for tool_id, name in (("master-my-data", "master_data.csv"), ("search-my-data", "search_result.csv")):
        task = await finished_task(core, user_id, tool_id=tool_id, inputs=[primary("primary.csv")], outputs=[name])
        assert (await dataset_version(core, user_id, task)).name == name


@pytest.mark.parametrize("name", ["primary.csv", "primary.tsv", "primary.parquet", "primary.json", "primary.ndjson"])
async def test_a_task_without_one_gives_its_primary_upload_in_its_format(core: Core, user_id: str, name: str) -> None:
    """A profile writes reports and row-level issues only: none of them is a dataset, its upload is."""
    outputs = ["data_profile_report.json", "data_profile_report.xlsx", *registry.ROW_LEVEL_ISSUE_OUTPUTS]
    profile = await finished_task(
        core,
        user_id,
        tool_id="profile-my-data",
        inputs=[primary(name), primary("baseline.csv", "baseline")],
        outputs=outputs,
    )
    version = await dataset_version(core, user_id, profile)
    assert (version.name, version.local_name) == (name, name)
    assert version.key == lifecycle.inputs_prefix(core.settings, user_id, profile) + name
    assert version.options == {}


async def test_an_uploads_reading_options_go_with_it(core: Core, user_id: str) -> None:
    """The sheet the profile read (here from its uploaded parameters.json) and the user's file name."""
    profile = await finished_task(
        core,
        user_id,
        tool_id="profile-my-data",
        inputs=[primary("primary.xlsx", display_name="sales 2024.xlsx")],
        parameters={"unified-profiler": {}},
    )
    key = lifecycle.inputs_prefix(core.settings, user_id, profile) + "parameters.json"
    await core.storage.put_bytes(key, json.dumps({"inputs": {"primary": {"sheet": "Q3"}}}).encode(), "application/json")
    await core.store.pool.execute("UPDATE tasks SET has_parameters = true WHERE id = $1", uuid.UUID(profile))
    version = await dataset_version(core, user_id, profile)
    assert version.options == {"sheet": "Q3", "display_name": "sales 2024.xlsx"}

    assert _with_version_options({"transformer": {"commands": ["x"]}}, version) == {
        "transformer": {"commands": ["x"]},
        "inputs": {"primary": {"sheet": "Q3", "display_name": "sales 2024.xlsx"}},
    }
    own = {"inputs": {"primary": {"sheet": 0}, "baseline": {"sheet": 1}}}
    assert _with_version_options(own, version) == {
        "inputs": {"primary": {"sheet": 0, "display_name": "sales 2024.xlsx"}, "baseline": {"sheet": 1}}
    }
    assert _with_version_options(own, None) is own


async def test_a_chained_task_without_one_gives_its_sources_version_up_the_chain(core: Core, user_id: str) -> None:
    clean = await finished_task(
        core, user_id, tool_id="clean-my-data", inputs=[primary("primary.csv")], outputs=["cleaned_data.csv"]
    )
    first = await finished_task(
        core, user_id, tool_id="profile-my-data", source_task_id=clean, outputs=["data_profile_report.json"]
    )
    second = await finished_task(core, user_id, tool_id="profile-my-data", source_task_id=first)
    for task_id in (clean, first, second):
        version = await dataset_version(core, user_id, task_id)
        assert (version.task_id, version.name) == (clean, "cleaned_data.csv")


async def test_a_broken_chain_is_input_missing(core: Core, user_id: str, store: TaskStore) -> None:
    clean = await finished_task(
        core, user_id, tool_id="clean-my-data", inputs=[primary("primary.csv")], outputs=["cleaned_data.csv"]
    )
    profile = await finished_task(core, user_id, tool_id="profile-my-data", source_task_id=clean)
    chained = await finished_task(core, user_id, tool_id="profile-my-data", source_task_id=profile)

    await store.pool.execute("UPDATE tasks SET artifacts_deleted = true WHERE id = $1", uuid.UUID(clean))
    with pytest.raises(TaskFailure) as expired:
        await dataset_version(core, user_id, chained)
    assert expired.value.code == "INPUT_MISSING" and "retention" in expired.value.message

    await store.pool.execute("DELETE FROM tasks WHERE id = $1", uuid.UUID(clean))  # source_task_id: SET NULL
    with pytest.raises(TaskFailure) as broken:
        await dataset_version(core, user_id, chained)
    assert broken.value.code == "INPUT_MISSING" and profile in broken.value.message

    other, _ = await store.create_user("someone-else")
    for missing in (str(uuid.uuid4()), chained):  # no such task, or not this user's
        with pytest.raises(TaskFailure) as gone:
            await dataset_version(core, other if missing == chained else user_id, missing)
        assert gone.value.code == "INPUT_MISSING" and "no longer exists" in gone.value.message


# --- the real worker through the API --------------------------------------------------------------------


async def upload(client: httpx.AsyncClient, task_id: str, path: Path, display_name: str, parameters: dict) -> None:
    spec = {"name": path.name, "content_type": CONTENT_TYPES[path.suffix], "size": path.stat().st_size}
    params = json.dumps(parameters).encode()
    body = {"files": [{**spec, "display_name": display_name}], "has_parameters": True, "parameters_size": len(params)}
    reply = await client.post(f"/api/v1/tasks/{task_id}/upload-urls", json=body)
    assert reply.status_code == 200, reply.text
    async with httpx.AsyncClient(timeout=60) as s3:
        for up in reply.json()["uploads"]:
            content = params if up["name"] == "parameters.json" else path.read_bytes()
            put = await s3.request(up["method"], up["url"], headers=up["headers"], content=content)
            assert put.status_code in (200, 201, 204), put.text


async def run(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """Process the task until it is COMPLETED; its result."""
    assert (await client.post(f"/api/v1/tasks/{task_id}/process")).status_code == 202
    done = await wait_for_status(client, task_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
    assert done["status"] == "COMPLETED", done
    return dict((await client.get(f"/api/v1/tasks/{task_id}/result")).json())


async def downloads(client: httpx.AsyncClient, task_id: str) -> dict[str, dict[str, Any]]:
    files = (await client.get(f"/api/v1/tasks/{task_id}/downloads")).json()["files"]
    return {f["name"]: f for f in files}


def frame(rows: int, seed: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": list(range(1, rows + 1)), "city": [f"city {(i * seed) % 7}" for i in range(rows)]}
    ).with_columns(amount=pl.col("id") * seed + 0.5)


async def test_a_sheet_read_by_a_profile_feeds_a_chain_two_tasks_down(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    """A profile of an XLSX's second sheet, a profile chained on it, a cleaning chained on that one: the cleaning
    reads the same sheet of the same upload, named as the user named it."""
    book = tmp_path / "primary.xlsx"
    first_sheet, second_sheet = frame(5, 3), frame(12, 5)
    with xlsxwriter.Workbook(book) as workbook:
        first_sheet.write_excel(workbook, worksheet="Intro")
        second_sheet.write_excel(workbook, worksheet="Data")
    profile = await create_task(client, tool_id="profile-my-data")
    await upload(client, profile["task_id"], book, "budget.xlsx", {"inputs": {"primary": {"sheet": "Data"}}})
    profiled = await run(client, profile["task_id"])
    assert profiled["agents"]["unified-profiler"]["summary_metrics"]["total_rows"] == 12

    again = await create_task(client, tool_id="profile-my-data", source_task_id=profile["task_id"])
    assert (await run(client, again["task_id"]))["agents"]["unified-profiler"]["summary_metrics"]["total_rows"] == 12
    cleaning = await create_task(client, tool_id="clean-my-data", source_task_id=again["task_id"])
    cleaned = await run(client, cleaning["task_id"])
    assert (cleaned["summary"]["rows"], cleaned["summary"]["primary"]) == (12, "budget.xlsx")
    files = await downloads(client, cleaning["task_id"])
    manifest = json.loads(await fetch(files["manifest.json"]))
    assert manifest["source"] == {"task_id": profile["task_id"], "name": "primary.xlsx"}
    data = pl.read_csv(io.BytesIO(await fetch(files["cleaned_data.csv"])))
    assert sorted(data["id"].to_list()) == second_sheet["id"].to_list()


@pytest.mark.parametrize("fmt", ["parquet", "ndjson"])
async def test_a_profiled_upload_in_any_format_feeds_a_cleaning(
    client: httpx.AsyncClient, worker: None, tmp_path: Path, fmt: str
) -> None:
    data = frame(9, 2)
    path = write(data, tmp_path / f"primary.{fmt}")
    profile = await create_task(client, tool_id="profile-my-data")
    await upload(client, profile["task_id"], path, f"mine.{fmt}", {})
    await run(client, profile["task_id"])
    cleaning = await create_task(client, tool_id="clean-my-data", source_task_id=profile["task_id"])
    cleaned = await run(client, cleaning["task_id"])
    assert cleaned["summary"]["rows"] == 9
    files = await downloads(client, cleaning["task_id"])
    manifest = json.loads(await fetch(files["manifest.json"]))
    assert manifest["source"] == {"task_id": profile["task_id"], "name": f"primary.{fmt}"}
    assert sorted(pl.read_csv(io.BytesIO(await fetch(files["cleaned_data.csv"])))["id"].to_list()) == list(range(1, 10))
