"""What search-my-data keeps with a dataset (worker/search_keep.py), through the API and the real worker: the first
search of a profiled upload converts it and keeps its matches under the profiled task; page 2 of that search is
served from the kept matches (the page an independent computation gives, search_result.csv a copy of the first's);
another search reads the kept conversion; deleting the profiled task deletes what was kept."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from service.config import Settings
from service.storage import Storage
from tests.conftest import Account
from tests.e2e.test_tools import fetch
from tests.support import create_task, poll, stored_keys
from tests.worker.test_dataset_versions import downloads, run, upload
from worker.search_keep import SEARCH_TOOL

pytestmark = pytest.mark.asyncio(loop_scope="session")

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
        return keys if any(key.endswith("/meta.json") for key in keys) else None

    keys = await poll(kept_objects, "the first search's keep stored")  # stored once the task completed
    assert any(key.endswith("/dataset.parquet") for key in keys)

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
