"""QA pass 7, #5, as a user runs it: `agensium search TASK --filter grp=` against the live test service prints the
rows whose grp is empty (it printed none: the empty value matched no cell), and a search that matches nothing prints
"no rows match" (it printed "rows 0 of 0, page 1 of 0")."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Account, ApiServer
from tests.e2e.test_cli_more import cli_env, run_cli
from tests.e2e.test_cli_search import table_rows
from tests.support import run_to_completion

live = pytest.mark.asyncio(loop_scope="session")

GROUPS = "id,grp,n\n1,A,10\n2,,20\n3,B,\n4,,40\n"
TIMEOUT = 120


@pytest.fixture
def env(api: ApiServer, account: Account, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key)


@pytest_asyncio.fixture(loop_scope="session")
async def profiled(client: httpx.AsyncClient, worker: None, tmp_path: Path) -> str:
    path = tmp_path / "groups.csv"
    path.write_text(GROUPS)
    task = await run_to_completion(client, {"primary.csv": path}, agents=["unified-profiler"])
    assert task["status"] == "COMPLETED", task
    return str(task["task_id"])


@live
async def test_an_empty_filter_value_prints_the_rows_whose_column_is_empty(env: dict[str, str], profiled: str) -> None:
    empty = [row for row in csv.DictReader(io.StringIO(GROUPS)) if row["grp"] == ""]
    assert [row["id"] for row in empty] == ["2", "4"]  # the fixture is what this test thinks it is
    code, out, err = await run_cli(env, "search", profiled, "--filter", "grp=", "--columns", "id,n", timeout=TIMEOUT)
    assert code == 0, err
    assert table_rows(out, 2) == [[row["id"], row["n"]] for row in empty], out
    assert "rows 1–2 of 2, page 1 of 1" in out, out

    code, out, err = await run_cli(env, "search", profiled, "--filter", "grp=Z", timeout=TIMEOUT)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == "no rows match", out
    assert "of 0" not in out, out
