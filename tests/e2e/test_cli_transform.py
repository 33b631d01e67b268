"""`agensium transform` and `agensium lineage` as subprocesses against the live test service, as a user runs
them: seed 003's command on a cleaned dataset followed to its sentence and row counts; the versions of a
chain and a branch listed root first with the task marked; a typo'd column refused with the suggestion, an
exit status of 1 and no task made."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Account, ApiServer
from tests.e2e.test_cli_more import cli_env, run_cli
from tests.support import run_to_completion, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSFORM_TOOL = "transform-my-data"
# Six people, two without an e-mail: seed 003's command drops exactly those two.
PEOPLE = (
    "id,name,email,amount\n"
    "1,alice,alice@example.com,10\n"
    "2,bob,,20\n"
    "3,carol,carol@example.com,30\n"
    "4,dave,,40\n"
    "5,erin,erin@example.com,50\n"
    "6,frank,frank@example.com,60\n"
)
SEED_COMMAND = "remove rows where email is null"


@pytest.fixture
def env(api: ApiServer, account: Account, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key)


@pytest_asyncio.fixture(loop_scope="session")
async def cleaned(client: httpx.AsyncClient, worker: None, tmp_path: Path) -> dict[str, Any]:
    """A COMPLETED clean-my-data task of PEOPLE: its cleaned data is the version the commands transform."""
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE)
    task = await run_to_completion(client, {"primary.csv": path}, tool_id="clean-my-data")
    assert task["status"] == "COMPLETED", task
    lineage = (await client.get(f"/api/v1/tasks/{task['task_id']}/lineage")).json()
    assert lineage["task"]["rows"] == 6, lineage  # cleaning keeps every row of PEOPLE
    return task


async def transform_over_http(client: httpx.AsyncClient, source_id: str, command: str) -> dict[str, Any]:
    """A transform made through the API directly, run to its end."""
    created = await client.post(f"/api/v1/tasks/{source_id}/transform", json={"command": command})
    assert created.status_code == 202, created.text
    task = await wait_for_status(client, created.json()["task_id"], {"COMPLETED", "FAILED", "CANCELLED"})
    assert task["status"] == "COMPLETED", task
    return task


def version_lines(out: str) -> dict[str, str]:
    """The table lines of `agensium lineage` by task id (sentence lines left out)."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        match = re.search(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", line)
        if match:
            found[match.group(0)] = line
    return found


async def test_transform_follow_prints_the_new_id_the_row_counts_and_the_sentence(
    env: dict[str, str], client: httpx.AsyncClient, cleaned: dict[str, Any]
) -> None:
    code, out, err = await run_cli(env, "transform", cleaned["task_id"], SEED_COMMAND, "--follow", timeout=120)
    assert code == 0, err
    lines = out.splitlines()
    task_id = lines[0]
    assert str(uuid.UUID(task_id)) == task_id, out  # the new task's id first, alone on its line
    task = (await client.get(f"/api/v1/tasks/{task_id}")).json()
    assert (task["tool_id"], task["status"], task["source_task_id"]) == (
        TRANSFORM_TOOL,
        "COMPLETED",
        cleaned["task_id"],
    )

    # A short summary: the rows before and after, then the sentences the API has for this version.
    assert "rows: 6 → 4 (2 affected)" in lines, out
    sentences = (await client.get(f"/api/v1/tasks/{task_id}/lineage")).json()["task"]["transformations"]
    assert len(sentences) == 1 and "2" in sentences[0] and "email" in sentences[0], sentences
    assert lines[2:] == [f"  - {sentence}" for sentence in sentences], out
    assert "{" not in out  # not the result's JSON
    assert task_id in err  # what happens meanwhile goes to stderr


async def test_transform_without_follow_prints_only_the_id_and_json_carries_the_summary(
    env: dict[str, str], client: httpx.AsyncClient, cleaned: dict[str, Any]
) -> None:
    code, out, err = await run_cli(env, "transform", cleaned["task_id"], SEED_COMMAND)
    assert code == 0, err
    task_id = out.strip()
    assert str(uuid.UUID(task_id)) == task_id, out
    task = await wait_for_status(client, task_id, {"COMPLETED", "FAILED", "CANCELLED"})
    assert task["status"] == "COMPLETED", task

    code, out, err = await run_cli(
        env, "transform", task_id, "sort by amount descending", "lowercase NAME", "--follow", "--json", timeout=120
    )
    assert code == 0, err
    document = json.loads(out)
    assert document["task"]["status"] == "COMPLETED"
    assert document["task"]["source_task_id"] == task_id
    summary = document["summary"]
    assert (summary["rows_before"], summary["rows_after"]) == (4, 4), summary
    assert len(summary["transformations"]) == 2, summary  # one sentence per command
    # Nothing read silently: the column written NAME was read as name, and the summary says so.
    assert summary["readings"][0] == [], summary
    assert len(summary["readings"][1]) == 1 and "'NAME'" in summary["readings"][1][0], summary
    assert "'name'" in summary["readings"][1][0], summary


async def test_lineage_lists_the_versions_root_first_with_the_task_marked_and_its_children(
    env: dict[str, str], client: httpx.AsyncClient, cleaned: dict[str, Any]
) -> None:
    root = cleaned["task_id"]
    first = await transform_over_http(client, root, SEED_COMMAND)
    second = await transform_over_http(client, first["task_id"], "keep rows where amount >= 30")
    branch = await transform_over_http(client, root, "sort by amount descending")  # "undo": from the root again

    code, out, err = await run_cli(env, "lineage", first["task_id"])
    assert code == 0, err
    rows = version_lines(out)
    assert list(rows) == [root, first["task_id"], second["task_id"]], out  # root first, then the task, its child
    assert rows[root].split()[:1] == ["v1"] and "clean-my-data" in rows[root] and " 6 " in rows[root], out
    assert rows[first["task_id"]].startswith(">"), out  # the task asked for is marked
    assert "v2" in rows[first["task_id"]] and " 4 " in rows[first["task_id"]], out
    assert "child" in rows[second["task_id"]] and "v3" in rows[second["task_id"]], out
    for task in (first, second):
        lineage = (await client.get(f"/api/v1/tasks/{task['task_id']}/lineage")).json()
        for sentence in lineage["task"]["transformations"]:
            assert f"  - {sentence}" in out, (sentence, out)
    assert out.index(rows[first["task_id"]]) < out.index(rows[second["task_id"]])

    # From the root: itself, then both versions made from it; the branch knows nothing of the discarded one.
    code, out, err = await run_cli(env, "lineage", root)
    assert code == 0, err
    rows = version_lines(out)
    assert list(rows)[0] == root and rows[root].startswith(">"), out
    assert set(list(rows)[1:]) == {first["task_id"], branch["task_id"]}, out
    code, out, err = await run_cli(env, "lineage", branch["task_id"], "--json")
    assert code == 0, err
    lineage = json.loads(out)
    assert [a["task_id"] for a in lineage["ancestors"]] == [root]
    assert lineage["task"]["rows"] == 6 and lineage["children"] == []


async def test_a_typo_in_a_column_is_refused_with_the_suggestion_and_exit_status_1(
    env: dict[str, str], client: httpx.AsyncClient, cleaned: dict[str, Any]
) -> None:
    typo = "remove rows where mial is null"
    code, out, err = await run_cli(env, "transform", cleaned["task_id"], typo, "--follow")
    assert code == 1, (out, err)
    assert out == ""  # no task id: no task
    assert "INVALID_PARAMETERS" in err and "mial" in err, err
    lines = err.splitlines()
    shown = lines.index(f"  {typo}")
    assert lines[shown + 1] == "  " + " " * typo.index("mial") + "^" * len("mial"), err  # where, underlined
    assert re.search(r"did you mean: .*\bemail\b", err), err

    code, out, _ = await run_cli(env, "transform", cleaned["task_id"], typo, "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "INVALID_PARAMETERS" and "email" in error["details"]["suggestions"], error
    listed = (await client.get("/api/v1/tasks", params={"tool_id": TRANSFORM_TOOL})).json()["items"]
    assert listed == [], listed  # a refused command makes no task


async def test_usage_errors_exit_2_before_anything_is_sent(env: dict[str, str], tmp_path: Path) -> None:
    task_id = str(uuid.uuid4())
    assert (await run_cli(env, "transform", task_id))[0] == 2  # no command
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"operations": [{"op": "drop_columns", "columns": ["email"]}]}')
    assert (await run_cli(env, "transform", task_id, SEED_COMMAND, "--recipe", str(recipe)))[0] == 2  # both
    recipe.write_text("not json")
    code, _, err = await run_cli(env, "transform", task_id, "--recipe", str(recipe))
    assert code == 2 and "not a JSON file" in " ".join(err.split()), err  # the console wraps long lines
