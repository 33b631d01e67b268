"""Inline parameters and an uploaded parameters.json (QA pass 8, D20): they merge per agent, and a parameter set
differently in the two fails the task INVALID_PARAMETERS naming it, so a script that templates one and uploads the
other never gets a destructive setting by precedence."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_parameter_set_differently_inline_and_in_the_file_fails_naming_it(
    client: httpx.AsyncClient, worker: None, csv_file: Path
) -> None:
    task = await create_task(client, parameters={"unified-profiler": {"top_n_values": 5}})
    await upload_inputs(
        client, task["task_id"], {"primary.csv": csv_file}, parameters={"unified-profiler": {"top_n_values": 3}}
    )
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "FAILED", done
    assert done["error"]["code"] == "INVALID_PARAMETERS"
    assert "unified-profiler.top_n_values" in done["error"]["message"]


async def test_parameters_given_once_each_merge(client: httpx.AsyncClient, worker: None, csv_file: Path) -> None:
    task = await create_task(client, parameters={"unified-profiler": {"top_n_values": 3}})
    file_parameters = {"unified-profiler": {"top_n_values": 3, "zscore_threshold": 4.0}}
    await upload_inputs(client, task["task_id"], {"primary.csv": csv_file}, parameters=file_parameters)
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    result = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()
    used = result["agents"]["unified-profiler"]["data"]["parameters"]
    assert used["top_n_values"] == 3 and used["zscore_threshold"] == 4.0
