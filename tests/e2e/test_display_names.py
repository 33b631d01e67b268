"""upload-urls' `display_name` (API.md): the user's own file name is kept with the input and shown in the reports
(the result's summary and the Excel Summary) instead of primary.csv / baseline.csv; the page and the CLI send it."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openpyxl

from tests.support import create_task, wait_for_status

CSV = b"id,city,amount\n1,Paris,10\n2,Lyon,20\n3,Nice,30\n"


async def test_reports_name_the_users_files(client: httpx.AsyncClient, worker: None) -> None:
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
