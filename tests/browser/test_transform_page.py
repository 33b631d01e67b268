"""Seed 003's chat on the page (service/web/versions.js) in a real Chromium, through the public API only: a
cleaned dataset transformed by a typed command, followed live over the page's one event stream to its sentence
and row counts, the new version in the history beside the box; an earlier version picked to continue from it;
a typo'd column refused beside the box (never in the top banner) with the offending word marked and the
suggestion as a one-click fix; and the box usable on a 390 px wide phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Response, ViewportSize, expect

from tests.browser.conftest import Tab, WebServer
from tests.browser.test_page import RUN_TIMEOUT_MS, events_requests, sign_in, submit
from tests.conftest import Account
from tests.support import run_to_completion

pytestmark = pytest.mark.asyncio(loop_scope="session")

TRANSFORM_TOOL = "transform-my-data"
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
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, web: WebServer, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    """A tab as a phone shows the page: 390 px wide, touch, the page's own viewport meta honoured."""
    context = await browser.new_context(
        base_url=web.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = await context.new_page()
    tab = Tab(page, context, request.node.name)
    page.on("request", lambda r: tab.requests.append(r))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
    finally:
        await context.close()


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE)
    return path


def is_transform(response: Response) -> bool:
    path = urlsplit(response.url).path
    return bool(response.request.method == "POST" and path.startswith("/api/v1/tasks/") and path.endswith("/transform"))


async def run_command(page: Page, command: str) -> Response:
    """Type `command` in the box and press Enter; the API's answer to the page's POST .../transform."""
    box = page.get_by_test_id("transform-command")
    await box.fill(command)
    async with page.expect_response(is_transform) as answered:
        await box.press("Enter")
    return await answered.value


async def clean_over_http(http: httpx.AsyncClient, people: Path) -> str:
    task = await run_to_completion(http, {"primary.csv": people}, tool_id="clean-my-data")
    assert task["status"] == "COMPLETED", task
    return str(task["task_id"])


async def view(page: Page, task_id: str) -> None:
    """Open a task of the history in the live view: its versions panel shows once it is COMPLETED."""
    await page.get_by_test_id(f"view-{task_id}").click()
    await expect(page.get_by_test_id("versions")).to_be_visible()
    await expect(page.get_by_test_id(f"version-{task_id}")).to_have_attribute("data-role", "this")


async def lineage(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    answer = await http.get(f"/api/v1/tasks/{task_id}/lineage")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_command_makes_a_new_version_followed_live_and_shown_in_the_history(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, people: Path
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("clean-my-data")
    await page.get_by_test_id("file-primary").set_input_files(people)
    clean_id = await submit(page)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)

    # A completed task with a dataset: the box, its examples, and the history with this one version.
    await expect(page.get_by_test_id("versions")).to_be_visible()
    this = page.get_by_test_id(f"version-{clean_id}")
    await expect(this).to_have_attribute("data-role", "this")
    await expect(page.get_by_test_id(f"version-rows-{clean_id}")).to_have_text("6 rows")
    await expect(page.get_by_test_id(f"version-choice-{clean_id}")).to_be_checked()
    await expect(page.get_by_test_id("transform-target")).to_contain_text("v1 · clean-my-data · 6 rows")
    # The examples are written on this version's own columns (its result lists them), so a click gives a command
    # that runs.
    examples = await page.get_by_test_id("transform-example").all_text_contents()
    assert "fill missing amount with median" in examples and "deduplicate on email keeping last" in examples, examples
    example = page.get_by_test_id("transform-example").filter(has_text=SEED_COMMAND)
    await example.click()
    await expect(page.get_by_test_id("transform-command")).to_have_value(SEED_COMMAND)
    await expect(page.get_by_test_id("transform-command")).to_be_focused()
    await tab.shot("box")

    answer = await run_command(page, SEED_COMMAND)
    assert answer.status == 202, await answer.text()
    new_id = (await answer.json())["task_id"]
    await expect(page.get_by_test_id("transform-command")).to_have_value("")

    # Followed like any task, in the live view, over the page's one stream.
    await expect(page.locator("#live-id")).to_contain_text(new_id)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("timeline-transformer")).to_have_attribute("data-state", "done")
    assert len(events_requests(tab)) == 1, [r.url for r in events_requests(tab)]

    # Its sentence and rows beside the box; the history now goes from the cleaned data to the new version.
    sentences = (await lineage(http, new_id))["task"]["transformations"]
    assert len(sentences) == 1 and "2" in sentences[0] and "email" in sentences[0], sentences
    await expect(page.get_by_test_id("transform-rows")).to_have_text("6 → 4 rows · 2 rows affected")
    await expect(page.get_by_test_id("transform-sentences").locator(".sentence")).to_have_text(sentences)
    versions = page.get_by_test_id("version-list").locator(":scope > li")
    await expect(versions).to_have_count(2)
    assert await versions.evaluate_all("items => items.map(li => li.dataset.testid)") == [
        f"version-{clean_id}",
        f"version-{new_id}",
    ]
    await expect(page.get_by_test_id(f"version-{clean_id}")).to_have_attribute("data-role", "ancestor")
    await expect(page.get_by_test_id(f"version-{new_id}")).to_have_attribute("data-role", "this")
    await expect(page.get_by_test_id(f"version-rows-{new_id}")).to_have_text("4 rows")
    await expect(page.get_by_test_id(f"version-sentences-{new_id}").locator("li")).to_have_text(sentences)
    await expect(page.get_by_test_id("transform-target")).to_contain_text("v2 · transform-my-data · 4 rows")
    await tab.shot("new-version")

    # Continue from the first version instead (undo is continuing from the parent): the command goes there.
    await page.get_by_test_id(f"version-choice-{clean_id}").check()
    await expect(page.get_by_test_id("transform-target")).to_contain_text("v1 · clean-my-data")
    answer = await run_command(page, "keep rows where amount >= 30")
    assert answer.status == 202, await answer.text()
    branch = await answer.json()
    assert branch["source_task_id"] == clean_id
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id(f"version-rows-{branch['task_id']}")).to_have_text("4 rows")
    await expect(page.get_by_test_id(f"version-{new_id}")).to_have_count(0)  # not on this branch
    await expect(page.get_by_test_id("version-list").locator(":scope > li")).to_have_count(2)

    # From the cleaned version, both versions made from it are its children.
    await page.get_by_test_id(f"version-open-{clean_id}").click()
    for child in (new_id, branch["task_id"]):
        await expect(page.get_by_test_id(f"version-{child}")).to_have_attribute("data-role", "child")
    await tab.shot("children")
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert not tab.errors


async def test_a_typo_is_refused_beside_the_box_with_the_suggestion_as_a_fix(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, people: Path
) -> None:
    page = tab.page
    clean_id = await clean_over_http(http, people)
    await sign_in(tab, account, http)
    await view(page, clean_id)

    answer = await run_command(page, "remove rows where mial is null")
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert error["code"] == "INVALID_PARAMETERS" and "email" in error["details"]["suggestions"], error

    refusal = page.get_by_test_id("transform-error")
    await expect(refusal).to_be_visible()
    await expect(page.get_by_test_id("transform-error-message")).to_have_text(error["message"])
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()  # beside the box, not on top
    await expect(page.get_by_test_id("transform-error-mark")).to_have_text("mial")
    await expect(page.get_by_test_id("transform-command")).to_have_attribute("aria-invalid", "true")
    fix = page.get_by_test_id("transform-suggestion").filter(has_text="email").first
    await expect(fix).to_be_visible()
    # Beside the box: right under it, in the same column.
    box_rect = await page.get_by_test_id("transform-command").bounding_box()
    refusal_rect = await refusal.bounding_box()
    assert box_rect and refusal_rect
    assert 0 <= refusal_rect["y"] - (box_rect["y"] + box_rect["height"]) < 120, (box_rect, refusal_rect)
    await tab.shot("refused")

    await fix.click()
    await expect(page.get_by_test_id("transform-command")).to_have_value(SEED_COMMAND)
    await expect(refusal).to_be_hidden()
    await expect(page.get_by_test_id("transform-command")).to_be_focused()
    listed = (await http.get("/api/v1/tasks", params={"tool_id": TRANSFORM_TOOL})).json()["items"]
    assert listed == []  # the refused command made no task

    # The fixed command runs.
    answer = await run_command(page, await page.get_by_test_id("transform-command").input_value())
    assert answer.status == 202, await answer.text()
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("transform-rows")).to_contain_text("6 → 4 rows")
    assert not tab.errors


async def test_the_box_and_the_history_are_usable_on_a_390_px_phone(
    phone: Tab, account: Account, http: httpx.AsyncClient, worker: None, people: Path
) -> None:
    tab, page = phone, phone.page
    clean_id = await clean_over_http(http, people)
    await sign_in(tab, account, http)
    await view(page, clean_id)
    box = page.get_by_test_id("transform-command")
    await box.scroll_into_view_if_needed()
    await tab.shot("phone-box")

    for testid in ("transform-command", "transform-run", f"version-{clean_id}"):
        rect = await page.get_by_test_id(testid).bounding_box()
        assert rect is not None, testid
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE["width"], (testid, rect)
    box_rect = await box.bounding_box()
    assert box_rect is not None and box_rect["width"] >= 250  # room to type a command
    for example in await page.get_by_test_id("transform-example").all():
        rect = await example.bounding_box()
        assert rect is not None and rect["x"] + rect["width"] <= PHONE["width"], rect
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], scroll_width  # no sideways scrolling

    # Tapping Run (no Enter key on a phone's keyboard needed).
    await box.tap()
    await box.fill(SEED_COMMAND)
    async with page.expect_response(is_transform) as answered:
        await page.get_by_test_id("transform-run").tap()
    answer = await answered.value
    assert answer.status == 202, await answer.text()
    new_id = (await answer.json())["task_id"]
    await expect(page.get_by_test_id(f"version-rows-{new_id}")).to_have_text("4 rows", timeout=RUN_TIMEOUT_MS)
    await page.get_by_test_id(f"version-{new_id}").scroll_into_view_if_needed()
    await tab.shot("phone-new-version")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not tab.errors
