"""Wide and deep files through the API (issue 9): a 10,000-column CSV is profiled, a JSON file nested 5,000
levels deep ends FAILED with INVALID_FILE at once, and the worker takes the next task as if nothing
happened."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import create_task, run_to_completion, upload_inputs, wait_for_status
from tests.wide_files import deep_json, write_wide_csv

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_wide_file_completes_a_deep_one_fails_invalid_and_the_next_task_completes(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    wide = tmp_path / "primary.csv"
    write_wide_csv(wide, 10_000, 20)
    task = await create_task(client, tool_id="profile-my-data")
    await upload_inputs(client, task["task_id"], {"primary.csv": wide})
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202

    deep = tmp_path / "primary.json"
    deep.write_text(deep_json(5_000))
    failed = await run_to_completion(client, {"primary.json": deep}, tool_id="profile-my-data")
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "INVALID_FILE", failed
    assert failed["error"]["message"].startswith("primary.json: nested deeper than 100 levels"), failed["error"]

    completed = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=300)
    assert completed["status"] == "COMPLETED", completed
    result = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()
    body = result.get("result", result)
    assert body["summary"]["columns"] == 10_000 and body["summary"]["rows"] == 20
    assert body["status"] == "success", {agent: e.get("error") for agent, e in body["agents"].items()}
    assert len(body["agents"]["unified-profiler"]["data"]["fields"]) == 10_000

    small = tmp_path / "small.csv"
    small.write_text("id,name\n1,a\n2,b\n3,\n")
    after = await run_to_completion(client, {"primary.csv": small}, tool_id="profile-my-data")
    assert after["status"] == "COMPLETED", after
