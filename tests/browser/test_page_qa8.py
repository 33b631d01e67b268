"""QA pass 8 on the page, in a real Chromium through the public API:

- D9: a refused transform command with no suggestions (and so no "Did you mean") shows its message and the marked
  command, and nothing else: no stray "null" text (DOM replaceChildren writes a null child as that text);
- D13: choosing "Transform My Data" shows a Commands box; Run with it empty is refused beside it before anything is
  created or uploaded; its commands are sent as the transformer's, and the task runs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import Tab
from tests.browser.test_page import RUN_TIMEOUT_MS, sign_in, submit
from tests.browser.test_transform_page import clean_over_http, http, people, run_command, view  # noqa: F401
from tests.conftest import Account

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEXT_NODES = "box => Array.from(box.childNodes).filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent)"


async def test_a_refusal_without_suggestions_shows_no_stray_null(
    tab: Tab,
    account: Account,
    http: httpx.AsyncClient,  # noqa: F811
    worker: None,
    people: Path,  # noqa: F811
) -> None:
    page = tab.page
    clean_id = await clean_over_http(http, people)
    await sign_in(tab, account, http)
    await view(page, clean_id)

    for command in ("sort by nope", "keep rows where amount > abc"):
        answer = await run_command(page, command)
        assert answer.status == 422, await answer.text()
        error = (await answer.json())["error"]
        assert not error["details"].get("suggestions"), error  # the case: nothing to suggest
        refusal = page.get_by_test_id("transform-error")
        await expect(page.get_by_test_id("transform-error-message")).to_have_text(error["message"])
        await expect(page.get_by_test_id("transform-error-command")).to_be_visible()
        assert await refusal.evaluate(TEXT_NODES) == []
        assert "null" not in await refusal.inner_text()
        await expect(page.get_by_test_id("transform-suggestion")).to_have_count(0)
    assert not tab.errors


async def test_transform_my_data_asks_for_its_commands_beside_the_box(
    tab: Tab,
    account: Account,
    http: httpx.AsyncClient,  # noqa: F811
    worker: None,
    people: Path,  # noqa: F811
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    box = page.get_by_test_id("form-commands")
    await expect(page.get_by_test_id("commands-field")).to_be_hidden()  # the first tool is not the transform
    await page.get_by_test_id("tool-select").select_option("transform-my-data")
    await expect(box).to_be_visible()
    await page.get_by_test_id("file-primary").set_input_files(people)

    await page.get_by_test_id("submit").click()
    refusal = page.get_by_test_id("form-commands-error")
    await expect(refusal).to_be_visible()
    await expect(refusal).to_contain_text("one command a line")
    await expect(box).to_have_attribute("aria-invalid", "true")
    await expect(box).to_be_focused()
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    listed = (await http.get("/api/v1/tasks", params={"tool_id": "transform-my-data"})).json()["items"]
    assert listed == []  # nothing created, nothing uploaded

    await box.fill("remove rows where email is null\n\nsort by amount descending\n")
    async with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/v1/tasks")) as sent:
        task_id = await submit(page)
    body = json.loads((await sent.value).post_data or "{}")
    assert body["parameters"]["transformer"] == {
        "commands": ["remove rows where email is null", "sort by amount descending"]
    }
    await expect(refusal).to_be_hidden()
    await expect(box).not_to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    result = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()
    assert result["summary"]["rows_out"] == 4

    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await expect(page.get_by_test_id("commands-field")).to_be_hidden()
    assert not tab.errors
