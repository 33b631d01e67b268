"""Seed 002's search on the page (service/web/search.js) in a real Chromium, through the public API only, on a
profiled file of 100 known rows: a filter chip picked from the profile's top values shows the first page of the
matching rows and the page count; Next shows the last page and Prev the first again (from the result cache); a
click on a header sorts; the chart draws one bar per group with the right totals; and the panel is usable on a
390 px wide phone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Response, expect

from tests.browser.conftest import Tab, WebServer, artifacts_dir
from tests.browser.test_page import RUN_TIMEOUT_MS, sign_in
from tests.browser.test_transform_page import PHONE
from tests.conftest import Account
from tests.support import run_to_completion

pytestmark = pytest.mark.asyncio(loop_scope="session")

SEARCH_TOOL = "search-my-data"
CITIES = ("Paris", "Lyon", "Nice", "Lille")
CONTRACTORS = ("Acme", "Bolt", "Cobra")
ROWS: list[dict[str, Any]] = [
    {
        "id": i,
        "city": CITIES[i % 4],
        "contractor": CONTRACTORS[i % 3],
        "amount": (i * 37) % 997,
        "date": (date(2024, 1, 1) + timedelta(days=i)).isoformat(),
        "note": "road work" if i % 2 else "bench",
        "price": round(i * 1237.37 % 9999.99, 2 + i % 3),  # 4,757.03, 0.1235: shown whole, never rounded
    }
    for i in range(1, 101)
]
PAGE_SIZE = 20  # the page's


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, web: WebServer, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    context = await browser.new_context(
        base_url=web.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = await context.new_page()
    tab = Tab(page, context, request.node.name)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def profiled(http: httpx.AsyncClient, worker: None, tmp_path: Path) -> str:
    """A COMPLETED profile of ROWS: its result has the columns and their top values; its primary is the version."""
    path = tmp_path / "contracts.csv"
    lines = [",".join(ROWS[0])] + [",".join(str(v) for v in row.values()) for row in ROWS]
    path.write_text("\n".join(lines) + "\n")
    task = await run_to_completion(http, {"primary.csv": path}, agents=["unified-profiler"])
    assert task["status"] == "COMPLETED", task
    return str(task["task_id"])


def is_search_creation(response: Response) -> bool:
    path = urlsplit(response.url).path
    return response.request.method == "POST" and path == "/api/v1/tasks"


async def panel_shot(tab: Tab, step: str) -> None:
    """The search panel alone (the page's full screenshots are too tall to read it in)."""
    await tab.page.get_by_test_id("search-panel").screenshot(path=artifacts_dir() / f"{tab.name}-panel-{step}.png")


async def view(page: Page, task_id: str) -> None:
    await page.get_by_test_id(f"view-{task_id}").click()
    await expect(page.get_by_test_id("search-panel")).to_be_visible()


async def shown_rows(page: Page) -> list[dict[str, str]]:
    """The results table as {column: text} per row."""
    head = await page.locator("#search-table thead th").all_text_contents()
    names = [text.rstrip(" ▲▼") for text in head]
    cells: list[list[str]] = await page.get_by_test_id("search-row").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return [dict(zip(names, row, strict=True)) for row in cells]


async def filter_by_top_value(page: Page, column: str, value: str) -> Response:
    """Choose the column, click one of its frequent values (a chip; the search runs): the create's answer."""
    await page.get_by_test_id("search-filter-column").select_option(column)
    top = page.get_by_test_id("search-top-value").filter(has_text=value)
    async with page.expect_response(is_search_creation) as created:
        await top.click()
    return await created.value


async def test_a_filter_shows_the_rows_and_pages_sorts_and_charts(
    tab: Tab, account: Account, http: httpx.AsyncClient, profiled: str
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await view(page, profiled)
    await tab.shot("panel")

    # The city's values come from the profile's top values; one click filters on it.
    await page.get_by_test_id("search-filter-column").select_option("city")
    await expect(page.get_by_test_id("search-top-value")).to_have_count(len(CITIES))
    answer = await filter_by_top_value(page, "city", "Paris")
    assert answer.status == 201, await answer.text()
    created = await answer.json()
    assert (created["tool_id"], created["source_task_id"], created["agents"]) == (SEARCH_TOOL, profiled, ["searcher"])
    await expect(page.get_by_test_id("search-chip")).to_have_text(["city = Paris×"])

    paris = [row for row in ROWS if row["city"] == "Paris"]
    assert len(paris) == 25  # two pages of 20
    status = page.get_by_test_id("search-status")
    await expect(status).to_have_text("rows 1–20 of 25, page 1 of 2", timeout=RUN_TIMEOUT_MS)
    rows = await shown_rows(page)
    assert [r["id"] for r in rows] == [str(r["id"]) for r in paris[:PAGE_SIZE]], rows  # the data's order
    assert {r["city"] for r in rows} == {"Paris"}
    assert [r["price"] for r in rows] == [f"{r['price']:,}" for r in paris[:PAGE_SIZE]], rows
    await expect(page.get_by_test_id("search-prev")).to_be_disabled()
    await tab.shot("page-1")

    # Next: the last five rows; Prev: the first page again, which the result cache answers at once.
    await page.get_by_test_id("search-next").click()
    await expect(status).to_have_text("rows 21–25 of 25, page 2 of 2", timeout=RUN_TIMEOUT_MS)
    assert [r["id"] for r in await shown_rows(page)] == [str(r["id"]) for r in paris[PAGE_SIZE:]]
    await expect(page.get_by_test_id("search-next")).to_be_disabled()
    await page.get_by_test_id("search-prev").click()
    await expect(status).to_have_text("rows 1–20 of 25, page 1 of 2 (cached)", timeout=RUN_TIMEOUT_MS)

    # A click on a header sorts by it, a second one the other way.
    await page.get_by_test_id("search-sort-amount").click()
    ascending = sorted(paris, key=lambda r: r["amount"])
    await expect(page.get_by_test_id("search-row").first.locator("td").nth(0)).to_have_text(
        str(ascending[0]["id"]), timeout=RUN_TIMEOUT_MS
    )
    assert [r["id"] for r in await shown_rows(page)] == [str(r["id"]) for r in ascending[:PAGE_SIZE]]
    await page.get_by_test_id("search-sort-amount").click()
    await expect(page.get_by_test_id("search-row").first.locator("td").nth(0)).to_have_text(
        str(ascending[-1]["id"]), timeout=RUN_TIMEOUT_MS
    )
    await expect(page.locator("#search-table th[aria-sort=descending]")).to_contain_text("amount")
    await tab.shot("sorted")

    # The chart: the total amount per contractor of the Paris rows, one bar each, the longest the largest.
    await page.get_by_test_id("chart-group").select_option("contractor")
    await page.get_by_test_id("chart-metric").select_option("sum")
    await page.get_by_test_id("chart-column").select_option("amount")
    await page.get_by_test_id("chart-run").click()
    bars = page.get_by_test_id("chart-bar")
    totals: dict[str, int] = {}
    for row in paris:
        totals[row["contractor"]] = totals.get(row["contractor"], 0) + row["amount"]
    await expect(bars).to_have_count(len(totals), timeout=RUN_TIMEOUT_MS)
    drawn = await bars.evaluate_all(
        "items => items.map(b => [b.dataset.label, Number(b.dataset.value), b.querySelector('.bar').offsetWidth])"
    )
    assert {label: value for label, value, _ in drawn} == totals, drawn
    widths = {label: width for label, _, width in drawn}
    assert max(widths, key=lambda label: widths[label]) == max(totals, key=lambda name: totals[name]), drawn
    assert all(width > 0 for width in widths.values()), drawn
    await tab.shot("chart")
    await panel_shot(tab, "chart")

    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    await expect(page.get_by_test_id("search-error")).to_be_hidden()
    assert not tab.errors


async def test_a_typo_in_a_typed_filter_value_is_explained_in_the_panel(
    tab: Tab, account: Account, http: httpx.AsyncClient, profiled: str
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await view(page, profiled)
    # A free text value (no top value offered for it): a number on a numeric column that is not a number.
    await page.get_by_test_id("search-filter-column").select_option("amount")
    await page.get_by_test_id("search-filter-value").fill("lots")
    await page.get_by_test_id("search-filter-add").click()
    await expect(page.get_by_test_id("search-error")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("search-error-message")).to_contain_text("amount")
    await expect(page.get_by_test_id("error-banner")).to_be_hidden()
    assert not tab.errors


async def test_the_search_is_usable_on_a_390_px_phone(
    phone: Tab, account: Account, http: httpx.AsyncClient, profiled: str
) -> None:
    tab, page = phone, phone.page
    await sign_in(tab, account, http)
    await view(page, profiled)
    await page.get_by_test_id("search-filter-column").select_option("contractor")
    await page.get_by_test_id("search-filter-value").tap()
    await page.get_by_test_id("search-filter-value").fill("Bolt")
    await page.get_by_test_id("search-run").tap()
    bolt = [row for row in ROWS if row["contractor"] == "Bolt"]
    await expect(page.get_by_test_id("search-status")).to_have_text(
        f"rows 1–20 of {len(bolt)}, page 1 of 2", timeout=RUN_TIMEOUT_MS
    )
    await page.get_by_test_id("chart-group").select_option("city")
    await page.get_by_test_id("chart-run").tap()
    await expect(page.get_by_test_id("chart-bar")).to_have_count(len(CITIES), timeout=RUN_TIMEOUT_MS)
    await page.get_by_test_id("search-panel").scroll_into_view_if_needed()
    await tab.shot("phone-search")
    await panel_shot(tab, "phone")

    for testid in ("search-filter-value", "search-run", "search-keyword", "search-next", "chart-run", "search-chart"):
        rect = await page.get_by_test_id(testid).bounding_box()
        assert rect is not None, testid
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE["width"], (testid, rect)
    rect = await page.get_by_test_id("search-filter-value").bounding_box()
    assert rect is not None and rect["width"] >= 120, rect  # room to type a value
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    assert not tab.errors
