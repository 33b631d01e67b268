"""The task form and the History of the page (service/web/app.js) in a real Chromium, through the public API
only: the file field first, above the fold at 1280×900 and on a phone, its `accept` from the catalog's formats;
a file of a type the tool cannot read refused beside the field as soon as it is chosen; invalid parameter JSON
refused beside its editor and an API refusal after Run beside the file field; the live panel scrolled into
view on Run; a History row with the task's duration and credits; an earlier task's stored events replayed with
their own times; no Retry after a failure that a retry would repeat; a dataset's searches folded under one
line of its versions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from tests.browser.conftest import Tab, WebServer, artifacts_dir
from tests.browser.test_page import RUN_TIMEOUT_MS, sign_in, submit
from tests.browser.test_transform_page import PHONE
from tests.conftest import Account
from tests.support import collect_until_done, run_to_completion, sleeper, submit_over_http, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSV = b"id,amount,city\n1,10.5,paris\n2,,lyon\n3,7.25,nice\n"
FOLD = 900  # the height of the tab's viewport (tests/browser/conftest.py)


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


def task_creations(tab: Tab) -> list[str]:
    return [r.url for r in tab.requests if r.method == "POST" and r.url.endswith("/api/v1/tasks")]


async def bottom(page: Page, testid: str) -> float:
    box = await page.get_by_test_id(testid).bounding_box()
    assert box is not None, f"{testid} is not rendered"
    return float(box["y"] + box["height"])


def as_duration(ms: float) -> str:
    """The page's fmtDuration (service/web/dom.js)."""
    if ms < 1000:
        return f"{round(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    s = round(ms / 1000)
    return f"{s // 60} min {s % 60:02d} s" if s < 3600 else f"{s // 3600} h {s % 3600 // 60:02d} min"


def ms_of(iso: str) -> int:
    """An RFC 3339 time to whole milliseconds (the page's Date keeps no finer)."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


async def charged(http: httpx.AsyncClient, task_id: str) -> int:
    """The credits the ledger says a task was charged: its debits less its refunds."""
    lines = (await http.get("/api/v1/me/ledger", params={"limit": 200})).json()["items"]
    return -sum(
        line["amount"] for line in lines if line.get("task_id") == task_id and line["kind"] in ("debit", "refund")
    )


async def test_the_file_field_comes_first_and_a_wrong_type_is_refused_beside_it(
    tab: Tab, account: Account, http: httpx.AsyncClient
) -> None:
    page = tab.page
    await sign_in(tab, account, http)

    # `accept` is each tool's primary formats as the catalog gives them.
    for tool in (await http.get("/api/v1/tools")).json()["tools"]:
        await page.get_by_test_id("tool-select").select_option(tool["tool_id"])
        primary = next((i for i in tool["inputs"] if i["role"] == "primary"), None)
        accept = ",".join("." + f for f in primary["formats"]) if primary else ""
        await expect(page.get_by_test_id("file-primary")).to_have_attribute("accept", accept)

    # The file and Run above the fold, before the agents (folded under Advanced) of a five-agent tool.
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await expect(page.get_by_test_id("agent-unified-profiler")).to_be_hidden()
    await expect(page.get_by_test_id("file-primary")).to_be_in_viewport(ratio=1)
    assert await bottom(page, "file-primary") < await bottom(page, "advanced-summary")
    assert await bottom(page, "submit") <= FOLD

    # A PDF: refused at once, beside the field, in view, without the API's file-naming advice.
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.7\n"}
    )
    refusal = page.get_by_test_id("file-error-primary")
    await expect(refusal).to_be_visible()
    await expect(refusal).to_be_in_viewport(ratio=1)
    await expect(refusal).to_contain_text("invoice.pdf is a .pdf file")
    await expect(refusal).to_contain_text(".csv")
    await expect(refusal).not_to_contain_text("primary.")
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert await page.get_by_test_id("file-primary").evaluate("input => input.files.length") == 0
    await page.screenshot(path=artifacts_dir() / "form-1280x900.png")

    # Run without a file says so beside the field; nothing was created.
    await page.get_by_test_id("submit").click()
    await expect(refusal).to_have_text("Choose the primary file.")
    assert task_creations(tab) == []

    # A phone: the file field still in the first screen.
    await page.set_viewport_size(PHONE)
    await page.evaluate("window.scrollTo(0, 0)")
    await expect(page.get_by_test_id("file-primary")).to_be_in_viewport(ratio=1)
    assert not tab.errors


async def test_refusals_are_shown_beside_the_control_they_concern(
    tab: Tab, account: Account, http: httpx.AsyncClient
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "sales.csv", "mimeType": "text/csv", "buffer": CSV}
    )

    # Invalid parameter JSON: refused beside its editor, which Run opens and focuses; nothing is created.
    await page.get_by_test_id("advanced-summary").click()
    editor = page.get_by_test_id("params-unified-profiler")
    await editor.fill('{"top_k": ')
    await page.get_by_test_id("advanced-summary").click()  # folded again: Run unfolds it
    await page.get_by_test_id("submit").click()
    beside = page.get_by_test_id("params-error-unified-profiler")
    await expect(beside).to_be_visible()
    await expect(beside).to_contain_text("Invalid JSON")
    await expect(editor).to_be_focused()
    await expect(editor).to_be_in_viewport(ratio=1)
    await expect(beside).to_be_in_viewport(ratio=1)
    await expect(page.get_by_test_id("submit-error")).to_contain_text("Unified Profiler")
    assert task_creations(tab) == []
    await editor.fill("{}")
    await expect(beside).to_be_hidden()

    # The API's refusal after Run (a CSV the browser types as an image): its own message beside the file field.
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "data.csv", "mimeType": "image/png", "buffer": CSV}
    )
    async with page.expect_response(lambda r: r.url.endswith("/upload-urls")) as refused:
        await page.get_by_test_id("submit").click()
    error = (await (await refused.value).json())["error"]
    assert error["code"] == "UNSUPPORTED_MEDIA_TYPE", error
    refusal = page.get_by_test_id("file-error-primary")
    await expect(refusal).to_have_text(error["message"])
    await expect(refusal).to_be_in_viewport(ratio=1)
    await expect(page.get_by_test_id("submit-error")).to_be_hidden()
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    await tab.shot("api-refusal")
    assert not tab.errors


async def test_run_shows_the_live_panel_and_the_history_row_tells_duration_and_credits(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None
) -> None:
    page = tab.page
    await page.set_viewport_size(PHONE)  # the live panel is below the form
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("diagnostics")
    await page.get_by_test_id("advanced-summary").click()
    await page.get_by_test_id("params-sleeper").fill('{"seconds": 1.2, "step_s": 0.2}')
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "readings.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    task_id = await submit(page)
    await expect(page.locator("#h-live")).to_be_in_viewport(ratio=1)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)

    task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
    took = ms_of(task["finished_at"]) - ms_of(task["started_at"])
    await expect(page.get_by_test_id(f"history-duration-{task_id}")).to_have_text(as_duration(took))
    credits = await charged(http, task_id)
    assert credits > 0
    await expect(page.get_by_test_id(f"history-credits-{task_id}")).to_have_text(f"{credits:,}")
    assert not tab.errors


async def test_the_history_row_names_the_file_and_its_size(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("diagnostics")
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "readings.csv", "mimeType": "text/csv", "buffer": CSV}
    )
    task_id = await submit(page)
    await expect(page.get_by_test_id(f"history-file-{task_id}")).to_have_text("readings.csv", timeout=5000)
    await expect(page.get_by_test_id(f"history-size-{task_id}")).to_have_text(f"{len(CSV)} B")


async def test_view_replays_an_earlier_tasks_stored_events_with_their_own_times(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None
) -> None:
    page = tab.page
    body = {"tool_id": "diagnostics", "parameters": sleeper(seconds=0.6, step_s=0.1)}
    task_id = await submit_over_http(http, body, CSV)
    stored = await collect_until_done(http, f"/api/v1/tasks/{task_id}/events", last_event_id=0)
    assert [e.event for e in stored].count("progress") >= 3, [e.event for e in stored]
    task = await wait_for_status(http, task_id, {"COMPLETED"})

    await sign_in(tab, account, http)  # a page that saw none of it live
    await page.get_by_test_id(f"view-{task_id}").click()
    shown = page.get_by_test_id("messages").locator("li[data-event-id]")
    expected = [e for e in stored if e.event != "done"]  # the done repeats the COMPLETED status
    await expect(shown).to_have_count(len(expected))
    lines: list[dict[str, Any]] = await shown.evaluate_all(
        """items => items.map(li => ({id: Number(li.dataset.eventId), text: li.textContent,
                                      at: li.querySelector('time') && li.querySelector('time').dateTime}))"""
    )
    assert [line["id"] for line in lines] == [e.id for e in expected]
    stamp = {"UPLOADING": "upload_started_at", "QUEUED": "queued_at", "PROCESSING": "started_at"}
    for line, event in zip(lines, expected, strict=True):
        if event.event == "progress":
            assert f"{event.data['progress']}% {event.data['message']}" in line["text"]
            assert ms_of(line["at"]) == ms_of(event.data["at"]), (line, event.data)  # its own time, stored with it
            assert ms_of(task["started_at"]) <= ms_of(line["at"]) <= ms_of(task["finished_at"])
        else:
            status = event.data["status"]
            assert status in line["text"], line
            field = stamp.get(status, "finished_at")
            assert ms_of(line["at"]) == ms_of(event.data[field]), (line, event.data[field])
    assert ms_of(lines[-1]["at"]) == ms_of(task["finished_at"])
    await tab.shot("replayed")
    assert not tab.errors


async def test_retry_is_offered_only_where_it_can_succeed(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None
) -> None:
    page = tab.page
    malformed = await submit_over_http(http, {"tool_id": "diagnostics", "parameters": sleeper()}, b"id,value\n")
    assert (await wait_for_status(http, malformed, {"FAILED"}))["error"]["code"] == "INVALID_FILE"
    completed = await submit_over_http(http, {"tool_id": "diagnostics", "parameters": sleeper(seconds=0.4)}, CSV)
    await wait_for_status(http, completed, {"COMPLETED"})
    # A cancelled run can be run again.
    stopped = await submit_over_http(http, {"tool_id": "diagnostics", "parameters": sleeper(seconds=30)}, CSV)
    await wait_for_status(http, stopped, {"PROCESSING"})
    assert (await http.post(f"/api/v1/tasks/{stopped}/cancel")).status_code == 202
    await wait_for_status(http, stopped, {"CANCELLED"})

    await sign_in(tab, account, http)
    await expect(page.get_by_test_id(f"history-row-{malformed}")).to_contain_text("INVALID_FILE")
    await expect(page.get_by_test_id(f"retry-{malformed}")).to_be_disabled()
    await expect(page.get_by_test_id(f"retry-{malformed}")).to_have_attribute("title", re.compile("fail the same way"))
    await expect(page.get_by_test_id(f"retry-{stopped}")).to_be_enabled()
    await page.get_by_test_id("history-table").scroll_into_view_if_needed()
    await page.screenshot(path=artifacts_dir() / "history-1280x900.png")
    assert not tab.errors


async def test_the_searches_of_a_dataset_fold_under_one_line_of_its_versions(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    page = tab.page
    path = tmp_path / "sales.csv"
    path.write_bytes(CSV)
    profiled = await run_to_completion(http, {"primary.csv": path}, agents=["unified-profiler"])
    assert profiled["status"] == "COMPLETED", profiled
    searches = []
    for size in (1, 2, 3):
        body = {
            "tool_id": "search-my-data",
            "source_task_id": profiled["task_id"],
            "parameters": {"searcher": {"page_size": size}},
            "process": True,
        }
        created = await http.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        searches.append(created.json()["task_id"])
    for task_id in searches:
        assert (await wait_for_status(http, task_id, {"COMPLETED", "FAILED"}))["status"] == "COMPLETED"

    await sign_in(tab, account, http)
    await page.get_by_test_id(f"view-{profiled['task_id']}").click()
    versions = page.get_by_test_id("version-list").locator(":scope > li")
    await expect(versions).to_have_count(2)  # this version, and one line for its searches
    await expect(page.get_by_test_id("version-searches-summary")).to_have_text("3 searches of this version")
    for task_id in searches:
        await expect(page.get_by_test_id(f"version-{task_id}")).to_be_hidden()
    await page.get_by_test_id("version-searches-summary").click()
    for task_id in searches:
        await expect(page.get_by_test_id(f"version-{task_id}")).to_be_visible()
    assert not tab.errors
