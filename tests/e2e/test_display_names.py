"""upload-urls' `display_name` (API.md): the user's own file name is kept with the input and shown in the reports
(the result's summary and the Excel Summary) instead of primary.csv / baseline.csv; the page and the CLI send it."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openpyxl

from tests.conftest import Account, ApiServer
from tests.e2e.test_cli_more import cli_env, run_cli
from tests.support import collect_until_done, create_task, wait_for_status

CSV = b"id,city,amount\n1,Paris,10\n2,Lyon,20\n3,Nice,30\n"


async def test_reports_name_the_users_files(
    client: httpx.AsyncClient, worker: None, api: ApiServer, account: Account, tmp_path: Path
) -> None:
    task = await create_task(client)
    files = [
        {"name": "primary.csv", "content_type": "text/csv", "size": len(CSV), "display_name": "flights 2013.csv"},
        {"name": "baseline.csv", "content_type": "text/csv", "size": len(CSV), "display_name": "flights-2012.csv"},
    ]
    reply = await client.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": files})
    assert reply.status_code == 200, reply.text
    async with httpx.AsyncClient(timeout=60) as s3:
        for upload in reply.json()["uploads"]:
            put = await s3.request(upload["method"], upload["url"], headers=upload["headers"], content=CSV)
            assert put.status_code in (200, 201, 204), put.text
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done["error"]
    # The task object names its inputs as the user did, with their sizes: GET, the list, the events' task.
    inputs = [
        {"name": "primary.csv", "role": "primary", "display_name": "flights 2013.csv", "size": len(CSV)},
        {"name": "baseline.csv", "role": "baseline", "display_name": "flights-2012.csv", "size": len(CSV)},
    ]
    assert done["inputs"] == inputs
    listed = (await client.get("/api/v1/tasks", params={"limit": 5})).json()["items"]
    assert next(t for t in listed if t["task_id"] == task["task_id"])["inputs"] == inputs
    events = await collect_until_done(client, f"/api/v1/tasks/{task['task_id']}/events", last_event_id=0)
    assert [e.data["inputs"] for e in events if e.event == "done"] == [inputs]
    # What it cost, net of refunds, as the ledger says; and the CLI's list shows the file, its size and that cost.
    ledger = (await client.get("/api/v1/me/ledger", params={"limit": 100})).json()["items"]
    cost = -sum(line["amount"] for line in ledger if line.get("task_id") == task["task_id"])
    assert done["credits"] == cost > 0
    code, out, err = await run_cli(
        cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key, COLUMNS="250"), "tasks", "list"
    )
    assert code == 0, err
    row = next(line for line in out.splitlines() if task["task_id"] in line)
    assert "flights 2013.csv" in row and f"{len(CSV)} bytes" in row and f" {cost:,} " in f"{row} ", row

    summary = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()["summary"]
    assert (summary["primary"], summary["primary_input"]) == ("flights 2013.csv", "primary.csv")
    assert (summary["baseline"], summary["baseline_input"]) == ("flights-2012.csv", "baseline.csv")
    downloads = {d["name"]: d for d in (await client.get(f"/api/v1/tasks/{task['task_id']}/downloads")).json()["files"]}
    async with httpx.AsyncClient(timeout=60) as s3:
        workbook_bytes = (await s3.get(downloads["data_profile_report.xlsx"]["url"])).content
    sheet = openpyxl.load_workbook(io.BytesIO(workbook_bytes), read_only=True)["Summary"]
    cells = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row and row[0] in {"File", "Baseline"}}
    assert cells == {"File": "flights 2013.csv", "Baseline": "flights-2012.csv"}


async def test_a_display_name_is_bounded_and_printable(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    for bad in ("", "x" * 256, "bad\nname.csv", "nul\u0000.csv"):
        spec = {"name": "primary.csv", "content_type": "text/csv", "size": 3, "display_name": bad}
        reply = await client.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": [spec]})
        assert reply.status_code == 422 and reply.json()["error"]["code"] == "VALIDATION_ERROR", (bad, reply.text)


def test_the_cli_declares_the_users_file_name(tmp_path: Path) -> None:
    import argparse

    from service.client import add_submit_parser, plan_submit

    parser = argparse.ArgumentParser()
    add_submit_parser(parser.add_subparsers(dest="command"))
    data = tmp_path / "Sales Q3.csv"
    data.write_bytes(CSV)
    plan = plan_submit(parser.parse_args(["submit", str(data), "--url", "http://h:1", "--api-key", "k"]))
    assert plan.declared == [
        {"name": "primary.csv", "content_type": "text/csv", "size": len(CSV), "display_name": "Sales Q3.csv"}
    ]
