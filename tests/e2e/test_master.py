"""master-my-data end to end through the API: a primary in every main format with a second source and a data
contract (outputs fetched through their presigned URLs and checked against what went in, the six agents
charged as they ran), a chained task whose primary is a clean-my-data task's cleaned data, and the inputs
the API refuses (a contract that is not a mapping, two files of one source, an eleventh source counting the
primary)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import polars as pl
import pytest

from agents import registry
from tests.agents.master.people import people
from tests.e2e.test_tools import fetch, write
from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOOL = "master-my-data"
CHAIN = list(registry.tool(TOOL).default_chain)
FORMATS = ("csv", "xlsx", "parquet", "json")
OUTPUTS = {"master_data.csv", "crosswalk.csv", "stewardship_queue.csv", "master_report.json", "master_report.xlsx"}
BAD_POSTCODE_ROW = 4  # 1-based row of the primary whose postcode breaks the contract's pattern
CONTRACT = """\
name: people
required_columns: [given_name, surname, email]
column_types:
  street_number: integer
value_constraints:
  postcode:
    pattern: "^[0-9]{4}$"
"""


def sources(entities: int = 60, seed: int = 7) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(primary, shop, entities): people with planted duplicates split in two files; the shop file ends with
    a copy of the primary's first row (identical rows always share a golden record), and the primary's row
    ``BAD_POSTCODE_ROW`` has a postcode the contract refuses."""
    frame = people(entities, seed=seed).drop("entity", "corruptions")
    frame = frame.with_columns(pl.col("street_number").cast(pl.String))
    cut = frame.height // 2
    primary, shop = frame.slice(0, cut), frame.slice(cut)
    shop = pl.concat([shop, primary.slice(0, 1)])
    bad = pl.int_range(1, pl.len() + 1) == BAD_POSTCODE_ROW
    primary = primary.with_columns(pl.when(bad).then(pl.lit("ABCD")).otherwise(pl.col("postcode")).alias("postcode"))
    return primary, shop, entities


async def ledger(client: httpx.AsyncClient, task_id: str) -> list[tuple[str | None, int]]:
    """(agent id, amount) of the task's ledger lines, oldest first, as the caller's ledger shows them."""
    items = (await client.get("/api/v1/me/ledger", params={"limit": 200})).json()["items"]
    return [(item.get("agent_id"), item["amount"]) for item in reversed(items) if item.get("task_id") == task_id]


async def balance(client: httpx.AsyncClient) -> int:
    return int((await client.get("/api/v1/me")).json()["credits"])


async def run_master(
    client: httpx.AsyncClient, files: dict[str, Path], **body: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(final task, result, downloads by name) of a master-my-data task over `files`."""
    task = await create_task(client, tool_id=TOOL, **body)
    if files:
        await upload_inputs(client, task["task_id"], files)
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/process")
    assert r.status_code == 202, r.text
    final = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=180)
    if final["status"] != "COMPLETED":
        return final, {}, {}
    result = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()
    downloads = (await client.get(f"/api/v1/tasks/{task['task_id']}/downloads")).json()["files"]
    return final, result, {d["name"]: d for d in downloads}


async def table(download: dict[str, Any]) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(await fetch(download)), infer_schema_length=None)


def source_rows(label: str, height: int) -> set[tuple[str, int]]:
    return {(label, row) for row in range(1, height + 1)}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_master_my_data_with_two_sources_and_a_contract(
    client: httpx.AsyncClient, worker: None, tmp_path: Path, fmt: str
) -> None:
    primary, shop, entities = sources()
    files = {
        f"primary.{fmt}": write(primary, tmp_path / f"primary.{fmt}"),
        "source_shop.parquet": write(shop, tmp_path / "source_shop.parquet"),
        "schema.yaml": tmp_path / "schema.yaml",
    }
    files["schema.yaml"].write_text(CONTRACT)
    before = await balance(client)
    final, result, downloads = await run_master(client, files)
    assert final["status"] == "COMPLETED", final
    assert final["agents"] == CHAIN
    assert OUTPUTS <= set(downloads)

    # Every agent ran and succeeded, and each was charged its own credits once.
    assert sorted(result["agents"]) == sorted(CHAIN) and result["status"] == "success"  # JSONB: keys unordered
    failed = {agent_id: e.get("error") for agent_id, e in result["agents"].items() if e["status"] != "success"}
    assert not failed, failed
    assert await ledger(client, final["task_id"]) == [(agent, -registry.chain_cost([agent])) for agent in CHAIN]
    assert await balance(client) == before - registry.chain_cost(CHAIN) == before - 460

    # The crosswalk names every input row of both sources exactly once.
    crosswalk = await table(downloads["crosswalk.csv"])
    assert crosswalk.columns == ["source", "source_row", "golden_id", "match_probability", "rule"]
    keys = list(zip(crosswalk["source"].to_list(), crosswalk["source_row"].to_list(), strict=True))
    assert len(keys) == len(set(keys)) == primary.height + shop.height
    assert set(keys) == source_rows("primary", primary.height) | source_rows("shop", shop.height)
    golden_of = dict(zip(keys, crosswalk["golden_id"].to_list(), strict=True))
    assert golden_of[("primary", 1)] == golden_of[("shop", shop.height)]  # the copied row

    # Golden records: fewer than the rows (duplicates were planted), one per golden id of the crosswalk.
    master = await table(downloads["master_data.csv"])
    assert master.columns[0] == "golden_id" and {"trust_score", "source_count"} <= set(master.columns)
    assert master["golden_id"].n_unique() == master.height
    assert set(master["golden_id"]) == set(crosswalk["golden_id"])
    assert entities * 0.9 <= master.height < primary.height + shop.height
    members = crosswalk.group_by("golden_id").agg(pl.len().alias("rows"), pl.col("source").n_unique().alias("n"))
    joined = master.join(members, on="golden_id")
    assert joined["source_count"].to_list() == joined["n"].to_list()
    assert int(joined.filter(pl.col("golden_id") == golden_of[("primary", 1)])["source_count"].item()) == 2
    assert master["trust_score"].is_between(0, 1).all()
    builder = result["agents"]["golden-record-builder"]["summary_metrics"]
    assert builder["input_records"] == primary.height + shop.height
    assert builder["golden_records_created"] == master.height

    # The contract was read from schema.yaml: the bad postcode is reported and proposed, never changed.
    contract = result["agents"]["contract-enforcer"]["data"]
    violations = {(v["type"], v["column"]): v["count"] for v in contract["violations"]}
    assert violations[("pattern_mismatch", "postcode")] == 1
    assert ("missing_required_column", "email") not in violations
    proposals = {item["proposal_id"] for item in result["summary"]["proposals"]}
    assert "contract-enforcer:null_invalid_values" in proposals
    step = next(step for step in result["steps"] if step["agent_id"] == "contract-enforcer")
    postcode = step["columns"]["postcode"]
    assert postcode["cells_changed"] == 0 and postcode["nulls_after"] == postcode["nulls_before"]
    assert step["rows_removed"] == 0

    queue = await table(downloads["stewardship_queue.csv"])
    assert queue.height == result["agents"]["stewardship-flagger"]["summary_metrics"]["tasks_created"]
    report = json.loads(await fetch(downloads["master_report.json"]))
    assert report["tool_id"] == TOOL
    workbook = openpyxl.load_workbook(io.BytesIO(await fetch(downloads["master_report.xlsx"])), read_only=True)
    assert {"Summary", "Golden Record Builder", "Merged Clusters"} <= set(workbook.sheetnames)


async def test_a_chained_task_masters_cleaned_data_with_another_source(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    """`source_task_id`: a clean-my-data task's cleaned_data.csv is the primary; the chained task still
    uploads its second source (no primary upload)."""
    primary, shop, _ = sources(entities=40, seed=11)
    dirty = pl.concat([primary, primary.slice(0, 3)])  # three exact duplicates for the cleaner to drop
    clean = await create_task(client, tool_id="clean-my-data")
    await upload_inputs(client, clean["task_id"], {"primary.csv": write(dirty, tmp_path / "primary.csv")})
    assert (await client.post(f"/api/v1/tasks/{clean['task_id']}/process")).status_code == 202
    cleaned = await wait_for_status(client, clean["task_id"], {"COMPLETED", "FAILED"}, timeout=180)
    assert cleaned["status"] == "COMPLETED", cleaned
    rows_out = (await client.get(f"/api/v1/tasks/{clean['task_id']}/result")).json()["summary"]["rows_out"]
    assert rows_out == dirty.unique().height  # exact duplicates only

    shop_file = write(shop, tmp_path / "source_shop.csv")
    final, result, downloads = await run_master(client, {"source_shop.csv": shop_file}, source_task_id=clean["task_id"])
    assert final["status"] == "COMPLETED", final
    assert final["source_task_id"] == clean["task_id"]
    assert set(result["summary"]["inputs"]) == {"primary", "source_shop"}
    assert result["agents"]["golden-record-builder"]["summary_metrics"]["input_records"] == rows_out + shop.height
    crosswalk = await table(downloads["crosswalk.csv"])
    keys = set(zip(crosswalk["source"].to_list(), crosswalk["source_row"].to_list(), strict=True))
    assert crosswalk.height == len(keys) == rows_out + shop.height
    assert keys == source_rows("primary", rows_out) | source_rows("shop", shop.height)

    # Chained with nothing uploaded at all: the cleaned data alone.
    alone, result, _ = await run_master(client, {}, source_task_id=clean["task_id"])
    assert alone["status"] == "COMPLETED", alone
    assert result["agents"]["golden-record-builder"]["summary_metrics"]["input_records"] == rows_out


async def test_a_contract_that_is_not_a_mapping_ends_invalid_file_and_costs_nothing(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    primary, shop, _ = sources(entities=10)
    contract = tmp_path / "schema.yaml"
    contract.write_text("- given_name\n- surname\n")  # a YAML list
    files = {"primary.csv": write(primary, tmp_path / "primary.csv"), "schema.yaml": contract}
    before = await balance(client)
    final, _, _ = await run_master(client, files)
    assert final["status"] == "FAILED"
    assert final["error"]["code"] == "INVALID_FILE"
    assert final["error"]["message"].startswith("schema.yaml: a data contract is a mapping of required_columns")
    assert await ledger(client, final["task_id"]) == []
    assert await balance(client) == before


def spec(name: str, content_type: str = "text/csv") -> dict[str, Any]:
    return {"name": name, "content_type": content_type, "size": 100}


async def test_upload_urls_takes_one_file_per_source_and_at_most_nine_sources(client: httpx.AsyncClient) -> None:
    task = await create_task(client, tool_id=TOOL)
    url = f"/api/v1/tasks/{task['task_id']}/upload-urls"
    same_label = [spec("primary.csv"), spec("source_shop.csv"), spec("source_shop.parquet", "application/x-parquet")]
    r = await client.post(url, json={"files": same_label})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_FILE_NAME"
    assert "both source 'shop'" in error["message"]

    ten_sources = [spec("primary.csv"), *(spec(f"source_s{i}.csv") for i in range(10))]
    r = await client.post(url, json={"files": ten_sources})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "INVALID_FILE_NAME" and "at most 9 sources" in error["message"]

    # Another tool takes no source, and a contract is not data.
    profile = await create_task(client)
    r = await client.post(f"/api/v1/tasks/{profile['task_id']}/upload-urls", json={"files": [spec("source_a.csv")]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_FILE_NAME", r.text
    r = await client.post(url, json={"files": [spec("primary.csv"), spec("schema.yaml", "text/csv")]})
    assert r.status_code == 415 and r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE", r.text

    # The most a master task takes, in one call: the primary, nine sources and the contract.
    most = [spec("primary.csv"), *(spec(f"source_s{i}.csv") for i in range(9)), spec("schema.yaml", "application/yaml")]
    r = await client.post(url, json={"files": most})
    assert r.status_code == 200, r.text
    assert {u["name"] for u in r.json()["uploads"]} == {item["name"] for item in most}
