"""`agensium submit --tool master-my-data` with other sources and a data contract, as a subprocess against the
live test service: `--source LABEL=FILE` and `--source FILE` (the label from the file name) uploaded as
source_<label>.<ext> under the user's file names, the contract read by contract-enforcer, a crosswalk that
names every row of every source; a bad or repeated label, or a source for a tool that takes none, refused as
a usage error before any task is made."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import polars as pl
import pytest
import yaml

from tests.conftest import Account, ApiServer
from tests.e2e.test_cli_more import cli_env, run_cli
from tests.e2e.test_master import sources

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOOL = "master-my-data"
# The contract of tests/e2e/test_master.py (written as YAML): the primary's row BAD_POSTCODE_ROW breaks its pattern.
CONTRACT = {
    "name": "people",
    "required_columns": ["given_name", "surname", "email"],
    "value_constraints": {"postcode": {"pattern": "^[0-9]{4}$"}},
}


@pytest.fixture
def env(api: ApiServer, account: Account, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """people.csv (the primary), crm.csv and `Web Shop.parquet`: test_master's people with planted duplicates,
    the second of its sources cut in two; and contract.yaml."""
    primary, shop, _ = sources()
    paths = {name: tmp_path / name for name in ("people.csv", "crm.csv", "Web Shop.parquet", "contract.yaml")}
    primary.write_csv(paths["people.csv"])
    shop.slice(0, shop.height // 2).write_csv(paths["crm.csv"])
    shop.slice(shop.height // 2).write_parquet(paths["Web Shop.parquet"])
    paths["contract.yaml"].write_text(yaml.safe_dump(CONTRACT))
    return paths


async def task_count(api: ApiServer, account: Account) -> int:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        return len((await client.get("/api/v1/tasks")).json()["items"])


async def test_submit_with_two_sources_and_a_contract_masters_every_row_of_every_source(
    env: dict[str, str], api: ApiServer, account: Account, worker: None, files: dict[str, Path]
) -> None:
    code, out, err = await run_cli(
        env,
        "submit",
        str(files["people.csv"]),
        "--tool",
        TOOL,
        "--source",
        f"crm={files['crm.csv']}",
        "--source",
        str(files["Web Shop.parquet"]),
        "--schema",
        str(files["contract.yaml"]),
        "--follow",
        "--json",
        timeout=180,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["task"]["status"] == "COMPLETED", doc["task"]
    for name in ("source_crm.csv", "source_web_shop.parquet", "schema.yaml"):
        assert f"upload {name}" in err

    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        task = (await client.get(f"/api/v1/tasks/{doc['task']['task_id']}")).json()
    inputs = {i["name"]: (i["role"], i["display_name"], i["size"]) for i in task["inputs"]}
    url = next(f["url"] for f in doc["downloads"] if f["name"] == "crosswalk.csv")
    async with httpx.AsyncClient() as store:
        crosswalk = (await store.get(url)).text
    assert inputs == {
        "primary.csv": ("primary", "people.csv", files["people.csv"].stat().st_size),
        "source_crm.csv": ("source", "crm.csv", files["crm.csv"].stat().st_size),
        "source_web_shop.parquet": ("source", "Web Shop.parquet", files["Web Shop.parquet"].stat().st_size),
        "schema.yaml": ("schema", "contract.yaml", files["contract.yaml"].stat().st_size),
    }

    # Every row of every source, once, under its label; the contract was read (its pattern broken once).
    heights = {
        "primary": pl.read_csv(files["people.csv"]).height,
        "crm": pl.read_csv(files["crm.csv"]).height,
        "web_shop": pl.read_parquet(files["Web Shop.parquet"]).height,
    }
    keys = [(row["source"], int(row["source_row"])) for row in csv.DictReader(io.StringIO(crosswalk))]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(label, n) for label, height in heights.items() for n in range(1, height + 1)}
    violations = {
        (v["type"], v["column"]): v["count"] for v in doc["result"]["agents"]["contract-enforcer"]["data"]["violations"]
    }
    assert violations[("pattern_mismatch", "postcode")] == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("CRM=crm.csv", "the label 'CRM' is not valid"),
        ("primary=crm.csv", "the label 'primary' is not valid"),
        ("__.csv", "the label '' is not valid"),
    ],
)
async def test_a_bad_source_label_is_a_usage_error_and_creates_nothing(
    env: dict[str, str], api: ApiServer, account: Account, tmp_path: Path, source: str, message: str
) -> None:
    primary, crm = tmp_path / "people.csv", tmp_path / "crm.csv"
    for path in (primary, crm, tmp_path / "__.csv"):
        path.write_text("given_name,surname\nalice,martin\n")
    source = source.replace("crm.csv", str(crm)).replace("__.csv", str(tmp_path / "__.csv"))
    code, out, err = await run_cli(env, "submit", str(primary), "--tool", TOOL, "--source", source, "--json")
    assert code == 2, err
    assert message in err and "lowercase letters, digits, _ and -" in err
    assert out == ""
    assert await task_count(api, account) == 0


async def test_a_repeated_label_or_a_source_for_another_tool_is_a_usage_error(
    env: dict[str, str], api: ApiServer, account: Account, tmp_path: Path
) -> None:
    primary, crm = tmp_path / "people.csv", tmp_path / "crm.csv"
    for path in (primary, crm):
        path.write_text("given_name,surname\nalice,martin\n")
    code, _, err = await run_cli(
        env, "submit", str(primary), "--tool", TOOL, "--source", f"crm={crm}", "--source", str(crm)
    )
    assert code == 2 and "the label 'crm' is already --source" in err, err
    code, _, err = await run_cli(env, "submit", str(primary), "--tool", "profile-my-data", "--source", str(crm))
    assert code == 2 and "profile-my-data takes no source input" in err, err
    code, _, err = await run_cli(env, "submit", str(primary), "--tool", TOOL, "--source", f"shop={tmp_path / 'x.pdf'}")
    assert code == 2 and "no such file" in err, err
    assert await task_count(api, account) == 0
