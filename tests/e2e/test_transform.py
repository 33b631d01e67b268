"""transform-my-data end to end through the API (issue 11's proof): upload -> clean-my-data -> transform twice
-> the lineage of the last shows the three versions with their rows and sentences -> transform the first version
again (undo is continuing from the parent) -> that result is independent of the discarded branch. Every
transformed_data.csv fetched through its presigned URL equals an independent pandas computation of the same steps
on the version it came from, and seed 003's example comes back as promised: "Dropped N rows where email was null"
with the rows affected. A command naming a column that is not there is refused before any task is made, with
what was meant, from the schema the clean task's run recorded.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import polars as pl
import pytest

from tests.e2e.test_tools import fetch
from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = 200
NULL_EMAIL_EVERY = 10  # ids 10, 20, ...: 20 rows without an email
DROP_NULL_EMAILS = "remove rows where email is null"
RENAME_ZIP = "rename column zip to postcode"
SORT_BY_AMOUNT = "sort by amount descending"


def people() -> pl.DataFrame:
    """Clean enough that the cleaning keeps every row and value (unique ids and amounts, valid emails, no
    outliers), with emails missing on every tenth row."""
    ids = list(range(1, ROWS + 1))
    return pl.DataFrame(
        {
            "id": ids,
            "email": [None if i % NULL_EMAIL_EVERY == 0 else f"user{i}@example.com" for i in ids],
            "zip": [str(75001 + (i * 37) % 900) for i in ids],
            "city": [("Paris", "Lyon", "Nice", "Lille")[i % 4] for i in ids],
            "amount": [round(20 + i * 0.37, 2) for i in ids],
        }
    )


def as_text(content: bytes) -> pd.DataFrame:
    """A CSV as pandas reads it when told to guess nothing: every cell its text, an empty cell ''."""
    return pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False)


async def transform(client: httpx.AsyncClient, task_id: str, command: str) -> dict[str, Any]:
    r = await client.post(f"/api/v1/tasks/{task_id}/transform", json={"command": command})
    assert r.status_code == 202, r.text
    task = r.json()
    assert (task["tool_id"], task["source_task_id"], task["status"]) == ("transform-my-data", task_id, "QUEUED")
    return dict(task)


async def finished(client: httpx.AsyncClient, task_id: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(result, downloads by name) of the task once COMPLETED."""
    done = await wait_for_status(client, task_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
    assert done["status"] == "COMPLETED", done
    result = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()
    files = (await client.get(f"/api/v1/tasks/{task_id}/downloads")).json()["files"]
    return result, {f["name"]: f for f in files}


async def test_transform_twice_then_undo_from_the_first_version(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    primary = tmp_path / "primary.csv"
    people().write_csv(primary)
    clean = await create_task(client, tool_id="clean-my-data")
    # The null handler would fill the missing emails: the cleaning is asked to leave them for the transform.
    await upload_inputs(
        client, clean["task_id"], {"primary.csv": primary}, {"null-handler": {"apply_suggested_strategies": False}}
    )
    assert (await client.post(f"/api/v1/tasks/{clean['task_id']}/process")).status_code == 202
    _, clean_files = await finished(client, clean["task_id"])
    cleaned = as_text(await fetch(clean_files["cleaned_data.csv"]))
    missing = int((cleaned["email"] == "").sum())
    assert len(cleaned) == ROWS and missing == ROWS // NULL_EMAIL_EVERY  # the cleaning kept what the test needs

    # A column that is not there: refused before any task is made, from the schema the cleaning recorded.
    typo = "remove rows where emailaddress is null"
    refused = await client.post(f"/api/v1/tasks/{clean['task_id']}/transform", json={"command": typo})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["position"] == typo.index("emailaddress")
    assert error["details"]["suggestions"] == ["email"]

    # Seed 003: "remove rows where email is null" -> the rows affected and the sentence, a new version.
    first = await transform(client, clean["task_id"], DROP_NULL_EMAILS)
    first_result, first_files = await finished(client, first["task_id"])
    summary = first_result["summary"]
    assert summary["transformations"] == [f"Dropped {missing} rows where email was null"]
    assert summary["rows_affected"] == missing and summary["rows_out"] == ROWS - missing
    first_data = as_text(await fetch(first_files["transformed_data.csv"]))
    expected_first = cleaned[cleaned["email"] != ""].reset_index(drop=True)
    pd.testing.assert_frame_equal(first_data, expected_first)

    second = await transform(client, first["task_id"], RENAME_ZIP)
    second_result, second_files = await finished(client, second["task_id"])
    second_data = as_text(await fetch(second_files["transformed_data.csv"]))
    pd.testing.assert_frame_equal(second_data, first_data.rename(columns={"zip": "postcode"}))
    (sentence,) = second_result["summary"]["transformations"]
    assert "zip" in sentence and "postcode" in sentence

    # The lineage of the last: the three versions, root first, with their rows and sentences.
    lineage = (await client.get(f"/api/v1/tasks/{second['task_id']}/lineage")).json()
    versions = [*lineage["ancestors"], lineage["task"]]
    assert [(v["task_id"], v["tool_id"], v["rows"]) for v in versions] == [
        (clean["task_id"], "clean-my-data", ROWS),
        (first["task_id"], "transform-my-data", ROWS - missing),
        (second["task_id"], "transform-my-data", ROWS - missing),
    ]
    assert [v["transformations"] for v in versions[1:]] == [
        [f"Dropped {missing} rows where email was null"],
        [sentence],
    ]
    assert all(v["status"] == "COMPLETED" for v in versions) and lineage["children"] == []

    # Undo the rename: continue from the first version. Nothing of the discarded branch is in the result.
    third = await transform(client, first["task_id"], SORT_BY_AMOUNT)
    _, third_files = await finished(client, third["task_id"])
    third_data = as_text(await fetch(third_files["transformed_data.csv"]))
    assert "zip" in third_data.columns and "postcode" not in third_data.columns and len(third_data) == ROWS - missing
    amounts = pd.to_numeric(first_data["amount"])
    expected_third = first_data.loc[amounts.sort_values(ascending=False, kind="stable").index].reset_index(drop=True)
    pd.testing.assert_frame_equal(third_data, expected_third)

    branches = (await client.get(f"/api/v1/tasks/{first['task_id']}/lineage")).json()
    assert [c["task_id"] for c in branches["children"]] == [second["task_id"], third["task_id"]]
    assert [a["task_id"] for a in branches["ancestors"]] == [clean["task_id"]]
