"""What search-my-data keeps with a dataset (worker/search_keep.py), through the API and the real worker: the first
search of a profiled upload converts it and keeps its matches under the profiled task; page 2 of that search is
served from the kept matches (the page an independent computation gives, search_result.csv a copy of the first's);
another search reads the kept conversion; deleting the profiled task deletes what was kept."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from agents.search import kept
from service.config import Settings
from service.lifecycle import Core
from service.storage import Storage
from service.store import TaskStore
from service.versions import DatasetVersion, with_version_options
from tests.conftest import Account
from tests.e2e.test_tools import fetch
from tests.support import create_task, poll, stored_keys
from tests.worker.test_dataset_versions import downloads, run, upload
from worker import search_keep
from worker.runner import RunHandle, working_runs
from worker.search_keep import SEARCH_TOOL, Keep, keep_prefix

live = pytest.mark.asyncio(loop_scope="session")  # the async tests only: the others are plain functions

ROWS = 240


def data() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [f"{i:05d}" for i in range(ROWS)],  # text: leading zeros
            "city": [["Paris", "Lyon", "Nice"][i % 3] for i in range(ROWS)],
            "amount": [(i * 37) % 500 + 0.25 for i in range(ROWS)],
            "signed": [f"{(i % 28) + 1:02d}/03/2024" for i in range(ROWS)],  # a date in its own layout
        }
    )


async def search(client: httpx.AsyncClient, source: str, searcher: dict[str, Any], **more: Any) -> dict[str, Any]:
    task = await create_task(
        client, tool_id=SEARCH_TOOL, source_task_id=source, agents=["searcher"], parameters={"searcher": searcher}
    )
    return {"task_id": task["task_id"], "result": await run(client, task["task_id"]), **more}


@live
async def test_pages_come_from_the_kept_matches_and_the_keep_goes_with_its_dataset(
    client: httpx.AsyncClient, worker: None, tmp_path: Path, storage: Storage, settings: Settings, account: Account
) -> None:
    path = tmp_path / "primary.csv"
    data().write_csv(path)
    profile = await create_task(client, tool_id="profile-my-data")
    await upload(client, profile["task_id"], path, "contracts.csv", {})
    await run(client, profile["task_id"])
    task_prefix = settings.object_prefix(account.user_id, profile["task_id"])

    selection = {"filters": {"city": ["Paris", "Nice"]}, "sort": [{"column": "amount", "descending": True}]}
    first = await search(client, profile["task_id"], {**selection, "page_size": 25})
    assert first["result"]["summary"]["inputs"]["primary"].get("kept") is None  # the file itself: nothing kept yet

    async def kept_objects() -> list[str] | None:
        keys = await stored_keys(storage, task_prefix + "search/")
        stored = {key.rsplit("/", 1)[-1] for key in keys}
        return keys if {"meta.json", "dataset.parquet", "search_result.csv"} <= stored else None

    # Stored once the task completed: the matches first, the dataset last.
    keys = await poll(kept_objects, "the first search's keep stored")
    assert sum(key.endswith(".parquet") and "/part-" in key for key in keys) == 1  # 160 matches: one part

    second = await search(client, profile["task_id"], {**selection, "page_size": 25, "page": 2})
    result = second["result"]
    assert result["summary"]["inputs"]["primary"]["kept"] == "matches"
    page = result["agents"]["searcher"]["data"]
    expected = (
        data()
        .filter(pl.col("city").is_in(["Paris", "Nice"]))
        .sort("amount", descending=True, maintain_order=True)
        .slice(25, 25)
    )
    assert [row["id"] for row in page["rows"]] == expected["id"].to_list()
    assert [row["signed"] for row in page["rows"]] == expected["signed"].to_list()  # in the file's layout
    assert page["total_rows"] == 160 and page["pages"] == 7
    first_files, second_files = await downloads(client, first["task_id"]), await downloads(client, second["task_id"])
    first_csv = await fetch(first_files["search_result.csv"])
    assert await fetch(second_files["search_result.csv"]) == first_csv
    assert pl.read_csv(io.BytesIO(first_csv), schema_overrides={"id": pl.String}).height == 160

    other = await search(
        client, profile["task_id"], {"filters": {"city": ["Lyon"]}, "ranges": [{"column": "amount", "min": 400}]}
    )
    result = other["result"]
    assert result["summary"]["inputs"]["primary"]["kept"] == "dataset"
    lyon = data().filter((pl.col("city") == "Lyon") & (pl.col("amount") >= 400))
    assert result["agents"]["searcher"]["data"]["total_rows"] == lyon.height > 0
    csv = await fetch((await downloads(client, other["task_id"]))["search_result.csv"])
    assert pl.read_csv(io.BytesIO(csv), schema_overrides={"id": pl.String})["id"].to_list() == lyon["id"].to_list()

    for task in (first, second, other):
        assert (await client.delete(f"/api/v1/tasks/{task['task_id']}")).status_code == 204
    assert await stored_keys(storage, task_prefix + "search/")  # the keep is the dataset's, not the searches'
    assert (await client.delete(f"/api/v1/tasks/{profile['task_id']}")).status_code == 204
    assert await stored_keys(storage, task_prefix) == []


def test_the_keep_is_the_dataset_as_the_run_reads_it(settings: Settings) -> None:
    """Another XLSX sheet is another keep (the task's own reading options over the version's); the display name is
    not a reading; a cache hit's version keeps its keep when its own copies move its key (same sha256)."""
    core = Core(settings, None, None, None, None)  # type: ignore[arg-type]  # keep_prefix reads the settings only
    book = DatasetVersion("t1", "primary.xlsx", "k/inputs/primary.xlsx", {"sheet": "Sales"}, {"size": 9, "sha256": "a"})

    def prefix(version: DatasetVersion, own: dict[str, Any] | None = None) -> str:
        return keep_prefix(
            core, "u1", version, with_version_options({"inputs": {"primary": own}} if own else {}, version)
        )

    sales = prefix(book)
    assert prefix(book, {"sheet": "Costs"}) != sales  # the run reads another sheet
    assert prefix(book, {"sheet": "Sales", "display_name": "budget.xlsx"}) == sales
    assert sales.startswith(settings.object_prefix("u1", "t1") + "search/")
    hit = DatasetVersion("t2", "cleaned_data.csv", "k/t1/outputs/1/cleaned_data.csv", {}, {"size": 5, "sha256": "b"})
    copied = DatasetVersion("t2", "cleaned_data.csv", "k/t2/outputs/cache-x/cleaned_data.csv", {}, dict(hit.record))
    assert prefix(hit) == prefix(copied)
    unhashed = DatasetVersion("t3", "primary.csv", "k/t3/inputs/primary.csv", {}, {"size": 5})
    assert prefix(unhashed) != prefix(DatasetVersion("t3", "primary.csv", "k/t3/inputs/other.csv", {}, {"size": 5}))


@live
async def test_a_keep_stored_after_its_dataset_was_deleted_is_deleted_again(
    settings: Settings, store: TaskStore, storage: Storage, tmp_path: Path
) -> None:
    """The dataset's task deleted during a search: what the search then stores under it would outlive it."""
    core = Core(settings, store, storage, None, None)  # type: ignore[arg-type]
    gone = str(uuid.uuid4())
    prefix = settings.object_prefix("00000000-0000-0000-0000-000000000000", gone) + "search/x/"
    (tmp_path / kept.DATASET_NAME).write_bytes(b"PAR1 data PAR1")
    keep = Keep("00000000-0000-0000-0000-000000000000", gone, prefix, tmp_path, False)
    await search_keep.store(core, keep, {"written": [kept.DATASET_NAME]}, [])
    assert await stored_keys(storage, prefix) == []


async def test_the_kept_dataset_waits_for_the_workers_other_runs_and_not_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first search's dataset upload yields to the pages asked for meanwhile (runner: the worker's other runs),
    up to YIELD_MAX_SECONDS in all."""
    release = asyncio.Event()
    other = asyncio.create_task(release.wait())
    hook = search_keep._yielding(lambda: [] if other.done() else [other])
    before_part = asyncio.create_task(hook())
    done, _ = await asyncio.wait({before_part}, timeout=0.05)
    assert not done  # still waiting for the other run
    release.set()
    await asyncio.wait_for(before_part, 10)

    # A run that starts during the quiet moment after the others ended is waited for too.
    monkeypatch.setattr(search_keep, "QUIET_SECONDS", 0.01)
    later_release = asyncio.Event()
    later = asyncio.create_task(later_release.wait())
    answers = iter([[], [later]])  # none running now; one started while the hook kept quiet

    def other_runs() -> list[asyncio.Task[Any]]:
        return next(answers, [] if later.done() else [later])

    before_part = asyncio.create_task(search_keep._yielding(other_runs)())
    done, _ = await asyncio.wait({before_part}, timeout=0.2)
    assert not done  # waiting for the run that started meanwhile
    later_release.set()
    await asyncio.wait_for(before_part, 10)

    monkeypatch.setattr(search_keep, "YIELD_MAX_SECONDS", 0.0)
    never = asyncio.create_task(asyncio.Event().wait())
    try:
        await asyncio.wait_for(search_keep._yielding(lambda: [never])(), 10)  # past its deadline: goes on
    finally:
        never.cancel()


async def test_a_keep_yields_to_other_runs_but_not_to_other_keeps() -> None:
    """Two searches storing their keeps at once must not wait for each other; any other run is waited for."""
    blocked = asyncio.Event()
    runs = {name: RunHandle(name, None, 1, 1) for name in ("storing", "other_storing", "working", "ended")}
    for handle in runs.values():
        handle.body = asyncio.create_task(blocked.wait())
    runs["storing"].background = runs["other_storing"].background = True
    runs["working"].finishing = True  # writing its outcome: still waited for
    runs["ended"].body = asyncio.create_task(asyncio.sleep(0))
    await runs["ended"].body
    try:
        assert working_runs(runs, runs["storing"]) == [runs["working"].body]
        assert working_runs(runs, runs["other_storing"]) == [runs["working"].body]
        runs["working"].background = True
        assert working_runs(runs, runs["storing"]) == []
    finally:
        blocked.set()


@live
async def test_an_upload_awaits_its_hook_before_each_part(settings: Settings, storage: Storage, tmp_path: Path) -> None:
    path = tmp_path / "two_parts.bin"
    path.write_bytes(b"x" * settings.multipart_part_bytes + b"tail")
    calls: list[int] = []

    async def before_part() -> None:
        calls.append(len(calls))

    key = settings.object_prefix("00000000-0000-0000-0000-000000000000", str(uuid.uuid4())) + "two_parts.bin"
    assert (
        await storage.upload_file(path, key, "application/octet-stream", before_part=before_part) == path.stat().st_size
    )
    assert calls == [0, 1]
    assert await storage.get_bytes(key, path.stat().st_size) == path.read_bytes()


BORROWED = "SELECT copy_from, outputs FROM tasks WHERE id = $1"


async def searched(
    client: httpx.AsyncClient,
    storage: Storage,
    settings: Settings,
    account: Account,
    tmp_path: Path,
    selection: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A profiled upload of data() and a first search of it whose matches are kept: (the profiled task, the search,
    the profiled task's object prefix)."""
    path = tmp_path / "primary.csv"
    data().write_csv(path)
    profile = await create_task(client, tool_id="profile-my-data")
    await upload(client, profile["task_id"], path, "contracts.csv", {})
    await run(client, profile["task_id"])
    task_prefix = settings.object_prefix(account.user_id, profile["task_id"])
    first = await search(client, profile["task_id"], selection)

    async def matches_kept() -> bool:
        return any(key.endswith("/meta.json") for key in await stored_keys(storage, task_prefix + "search/"))

    await poll(matches_kept, "the first search's matches kept")
    return profile, first, task_prefix


@live
async def test_a_page_borrows_the_kept_csv_until_it_has_its_own_copy(
    client: httpx.AsyncClient,
    worker: None,
    tmp_path: Path,
    storage: Storage,
    settings: Settings,
    account: Account,
    store: TaskStore,
) -> None:
    """A later page completes with its dataset's kept search_result.csv itself (copy_from: the dataset's task), and
    deleting that task first gives the page its own copy: the page's file stays downloadable, byte for byte."""
    selection = {"filters": {"city": ["Lyon"]}, "sort": [{"column": "id", "descending": True}], "page_size": 10}
    profile, first, task_prefix = await searched(client, storage, settings, account, tmp_path, selection)
    page = await search(client, profile["task_id"], {**selection, "page": 3})
    assert page["result"]["summary"]["inputs"]["primary"]["kept"] == "matches"
    row = await store.pool.fetchrow(BORROWED, uuid.UUID(page["task_id"]))
    assert row is not None and str(row["copy_from"]) == profile["task_id"]
    borrowed = {o["name"]: o["key"] for o in row["outputs"]}
    assert borrowed["search_result.csv"].startswith(task_prefix + "search/")
    own_prefix = settings.object_prefix(account.user_id, page["task_id"])
    assert all(key.startswith(own_prefix) for name, key in borrowed.items() if name != "search_result.csv")
    expected = await fetch((await downloads(client, first["task_id"]))["search_result.csv"])

    assert (await client.delete(f"/api/v1/tasks/{profile['task_id']}")).status_code == 204
    assert await stored_keys(storage, task_prefix) == []
    row = await store.pool.fetchrow(BORROWED, uuid.UUID(page["task_id"]))
    assert row is not None and row["copy_from"] is None
    copied = {o["name"]: o["key"] for o in row["outputs"]}
    assert copied["search_result.csv"].startswith(own_prefix)
    assert {name: key for name, key in copied.items() if name != "search_result.csv"} == {
        name: key for name, key in borrowed.items() if name != "search_result.csv"
    }
    assert await fetch((await downloads(client, page["task_id"]))["search_result.csv"]) == expected


@live
async def test_a_page_whose_dataset_files_are_going_gets_its_own_copy(
    client: httpx.AsyncClient,
    worker: None,
    tmp_path: Path,
    storage: Storage,
    settings: Settings,
    account: Account,
    store: TaskStore,
) -> None:
    """Once a delete or retention has claimed the dataset task's files (artifacts_claimed_at: it then lists the
    tasks reading them), a page no longer borrows its kept CSV: it completes with a copy of its own."""
    selection = {"filters": {"city": ["Nice"]}, "page_size": 10}
    profile, first, _ = await searched(client, storage, settings, account, tmp_path, selection)
    claimed = "UPDATE tasks SET artifacts_claimed_at = now() WHERE id = $1"
    await store.pool.execute(claimed, uuid.UUID(profile["task_id"]))
    page = await search(client, profile["task_id"], {**selection, "page": 2})
    assert page["result"]["summary"]["inputs"]["primary"]["kept"] == "matches"
    row = await store.pool.fetchrow(BORROWED, uuid.UUID(page["task_id"]))
    assert row is not None and row["copy_from"] is None
    own_prefix = settings.object_prefix(account.user_id, page["task_id"])
    assert all(o["key"].startswith(own_prefix) for o in row["outputs"])
    expected = await fetch((await downloads(client, first["task_id"]))["search_result.csv"])
    assert await fetch((await downloads(client, page["task_id"]))["search_result.csv"]) == expected
