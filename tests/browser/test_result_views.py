"""Each tool's result view on the page (service/web/tool_views.js, results.js) in a real Chromium, through the
public API only: the headline card of every tool, its figures compared with the task's own output files; a clean's
changed cells before and after and its quarantined rows with their original values, read from quarantine.csv by
bounded Range requests and paged; a failed agent's error said once; the alerts readable on a 390 px wide phone.

Tasks run over HTTP, then open from the History (the form is tested elsewhere). Each headline is saved, at
1280×900, as result-<tool>.png (to docs/screenshots for the README with AGENSIUM_README_SCREENSHOTS=1).
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import polars as pl
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, Route, ViewportSize, expect

from tests.browser.conftest import REPO, Tab, WebServer, artifacts_dir
from tests.browser.test_page import sign_in
from tests.conftest import Account
from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOTS = REPO / "docs" / "screenshots"
RANGE_BYTES = 64 * 1024  # tool_views.js: one read of quarantine.csv
PAGE_ROWS = 20  # tool_views.js
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


async def run_task(
    http: httpx.AsyncClient, tool_id: str, files: dict[str, Path], parameters: dict[str, Any] | None = None
) -> str:
    """Create, upload, process and wait for COMPLETED over HTTP; the task id."""
    task = await create_task(http, tool_id=tool_id)
    await upload_inputs(http, task["task_id"], files, parameters)
    assert (await http.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    final = await wait_for_status(http, task["task_id"], {"COMPLETED", "FAILED", "CANCELLED"}, timeout=120)
    assert final["status"] == "COMPLETED", final
    return str(task["task_id"])


async def outputs(http: httpx.AsyncClient, task_id: str) -> dict[str, bytes]:
    """Every output file of the task, as the downloads list links them."""
    files = (await http.get(f"/api/v1/tasks/{task_id}/downloads")).json()["files"]
    async with httpx.AsyncClient(timeout=30) as store:
        return {f["name"]: (await store.get(f["url"])).content for f in files}


def csv_rows(content: bytes) -> list[list[str]]:
    """The data rows of a CSV file (header left out), parsed as any CSV reader would."""
    return list(csv.reader(io.StringIO(content.decode())))[1:]


async def open_result(tab: Tab, account: Account, http: httpx.AsyncClient, task_id: str, tool_id: str) -> Locator:
    """Sign in, open the task from the History; its headline card once shown."""
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id(f"view-{task_id}").click()
    card = page.get_by_test_id("headline")
    await expect(card).to_have_attribute("data-tool", tool_id, timeout=30_000)
    return card


async def figure(card: Locator, key: str, attribute: str) -> str:
    value = await card.get_by_test_id(f"headline-{key}").get_attribute(f"data-{attribute}")
    assert value is not None, (key, attribute)
    return value


async def save_screenshot(page: Page, name: str, top: str = "#summary") -> None:
    """result-<name>.png: a 1280×900 viewport with the element `top` (a CSS selector; the result's summary, its
    headline card first) near its top. In the test artifacts; in docs/screenshots, for the README, only when
    AGENSIUM_README_SCREENSHOTS=1 (a test run leaves the checkout as it was)."""
    directory = SCREENSHOTS if os.environ.get("AGENSIUM_README_SCREENSHOTS") == "1" else artifacts_dir()
    directory.mkdir(parents=True, exist_ok=True)
    await page.locator(top).evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -40); }")
    await page.screenshot(path=directory / f"result-{name}.png")


async def cell_texts(table: Locator) -> list[list[str]]:
    rows: list[list[str]] = await table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


# --- clean ------------------------------------------------------------------------------------------


def messy_csv(path: Path, rows: int, duplicates: int) -> Path:
    """Rows with known defects: prices as text ("$1,234.50"), city names with a trailing space, a comment holding a
    comma, quotes and a line break, and the first `duplicates` rows repeated at the end (the duplicate resolver
    removes those: they are the quarantined rows, with their values as they were when removed)."""
    rng = random.Random(7)
    cities = ["Paris", "lyon ", "Nice", "LILLE"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "city", "price", "comment"])
    body = [
        [
            str(i),
            rng.choice(cities),
            f"${rng.uniform(1, 5000):,.2f}",
            'says "hi", then\nleaves' if i % 3 == 0 else f"note {i}",
        ]
        for i in range(1, rows + 1)
    ]
    writer.writerows(body + body[:duplicates])
    path.write_text(out.getvalue())
    return path


async def test_clean_headline_agrees_with_its_files_and_shows_changed_cells_and_quarantined_rows(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    page = tab.page
    rows, duplicates = 2400, 1800
    primary = messy_csv(tmp_path / "orders.csv", rows, duplicates)
    # Prices with a currency symbol are converted on request only (a judgement call: the unit is lost).
    parameters = {"type-fixer": {"convert_currency": True}}
    task_id = await run_task(http, "clean-my-data", {"primary.csv": primary}, parameters)
    result = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()
    files = await outputs(http, task_id)
    cleaned, quarantined = csv_rows(files["cleaned_data.csv"]), csv_rows(files["quarantine.csv"])
    assert len(files["quarantine.csv"]) > 2 * RANGE_BYTES  # so a whole-file read would show

    card = await open_result(tab, account, http, task_id, "clean-my-data")
    # The headline's figures are the files': rows out are cleaned_data.csv's, quarantined rows quarantine.csv's.
    assert await figure(card, "rows", "in") == str(rows + duplicates)
    assert await figure(card, "rows", "out") == str(len(cleaned)) == str(rows)
    assert await figure(card, "quarantined", "count") == str(len(quarantined)) == str(duplicates)
    await expect(card.get_by_test_id("headline-quarantined")).to_contain_text(f"{duplicates:,}")
    await expect(card.get_by_test_id("headline-rows")).to_contain_text(f"{rows + duplicates:,} → {rows:,}")
    # The quarantine agent's own card counts only the rows its rules moved (none here); the headline counts all.
    quarantine_agent = result["agents"]["quarantine-agent"]["summary_metrics"]["quarantined_records"]
    assert quarantine_agent == 0 and len(quarantined) == duplicates
    changed = sum(step["cells_changed_total"] for step in result["steps"])
    assert changed > 0 and await figure(card, "cells", "count") == str(changed)
    kinds = card.get_by_test_id("headline-cells").locator("li")
    by_agent = {s["agent_id"]: s["cells_changed_total"] for s in result["steps"] if s["cells_changed_total"]}
    await expect(kinds).to_have_count(len(by_agent))
    await expect(card.get_by_test_id("headline-cells").locator('li[data-agent="type-fixer"]')).to_contain_text(
        f"{by_agent['type-fixer']:,} converted to their type"
    )
    await expect(page.get_by_test_id("summary-cards").locator(".card")).to_have_count(
        sum(len(e["executive_summary"]) for e in result["agents"].values())
    )

    # Changed cells before and after: a city's trailing space trimmed, at its input row; a price read as a number.
    await page.get_by_test_id("changed-cells-details").locator("summary").click()
    changes = page.get_by_test_id("changed-cells")
    await expect(changes).to_be_visible()
    first_lyon = next(i for i, line in enumerate(csv_rows(primary.read_bytes()), 1) if line[1] == "lyon ")
    shown = await cell_texts(changes)
    assert len(shown) == PAGE_ROWS
    assert any(r[1] == "price" and r[3].startswith("$") and r[4] == r[3].lstrip("$").replace(",", "") for r in shown)
    assert all(r[3] != r[4] for r in shown), "a change shows its before and after apart"
    while not any(r[0] == f"{first_lyon:,}" for r in shown):
        await page.get_by_test_id("changed-cells-next").click()
        await expect(changes.locator("caption")).not_to_contain_text(f"{len(shown)}–")
        shown = await cell_texts(changes)
        if await page.get_by_test_id("changed-cells-next").is_disabled():
            break
    lyon = next(r for r in shown if r[0] == f"{first_lyon:,}")
    assert lyon[1:] == ["city", "Field Standardization", "lyon␣", "lyon"], lyon  # the trailing space made visible

    # The quarantined rows with their values when removed, read a bounded range at a time and paged.
    store_reads: list[dict[str, str]] = []
    page.on(
        "request", lambda r: store_reads.append(r.headers) if urlsplit(r.url).path.endswith("/quarantine.csv") else None
    )
    await page.get_by_test_id("quarantine").locator("summary").click()
    table = page.get_by_test_id("quarantine-rows")
    await expect(table.locator("caption")).to_contain_text(f"1–{PAGE_ROWS} of {duplicates:,}")
    names = {agent_id: e["agent_name"] for agent_id, e in result["agents"].items()}
    expected = [[f"{int(r[0]):,}", names[r[1]], r[2], *r[3:]] for r in quarantined]
    assert await cell_texts(table) == expected[:PAGE_ROWS]
    assert any('says "hi", then' in c for row in expected[:PAGE_ROWS] for c in row)  # quotes and a comma
    await page.get_by_test_id("quarantine-rows-next").click()
    await expect(table.locator("caption")).to_contain_text(f"{PAGE_ROWS + 1}–{2 * PAGE_ROWS} of")
    assert await cell_texts(table) == expected[PAGE_ROWS : 2 * PAGE_ROWS]
    # Never the whole file: every read of it was a Range of at most RANGE_BYTES.
    assert store_reads, "quarantine.csv was not read"
    for headers in store_reads:
        first, last = map(int, headers["range"].removeprefix("bytes=").split("-"))
        assert last - first + 1 <= RANGE_BYTES, headers["range"]
    await page.get_by_test_id("quarantine").locator("summary").click()  # folded: the picture shows the changes
    await save_screenshot(page, "clean")
    await page.get_by_test_id("changed-cells-details").locator("summary").click()
    await page.get_by_test_id("quarantine").locator("summary").click()
    await save_screenshot(page, "clean-quarantine", top='[data-testid="quarantine"]')
    assert not tab.errors


# --- profile, master, transform, search -------------------------------------------------------------


def sales_csv(path: Path, rows: int) -> Path:
    rng = random.Random(3)
    lines = ["id,amount,qty,city"]
    for i in range(1, rows + 1):
        amount = "" if rng.random() < 0.3 else f"{rng.gauss(100, 12):.2f}"
        lines.append(f"{i},{amount},{rng.randint(0, 40)},{rng.choice(['paris', 'lyon', 'nice'])}")
    lines += lines[1:6]  # duplicates
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_profile_headline_gives_grade_shape_and_alerts_by_severity(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    primary = sales_csv(tmp_path / "sales.csv", 300)
    task_id = await run_task(http, "profile-my-data", {"primary.csv": primary})
    result = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()
    card = await open_result(tab, account, http, task_id, "profile-my-data")

    frame = pl.read_csv(primary)
    assert await figure(card, "shape", "rows") == str(frame.height)
    assert await figure(card, "shape", "columns") == str(frame.width)
    await expect(card.get_by_test_id("headline-shape")).to_contain_text(f"{frame.height} × {frame.width}")
    grade = result["summary"]["quality_grade"]
    assert grade and await figure(card, "grade", "grade") == grade
    await expect(card.get_by_test_id("headline-grade").locator("dd").first).to_have_text(grade)
    severities = [a["severity"] for e in result["agents"].values() for a in e["alerts"]]
    assert severities
    for severity in ("critical", "high", "medium", "low"):
        assert await figure(card, "alerts", severity) == str(severities.count(severity))
    badges = card.get_by_test_id("headline-alerts").locator(".badge")
    await expect(badges).to_have_count(len(set(severities)))
    await expect(tab.page.get_by_test_id("alerts-table").locator("tbody tr")).to_have_count(len(severities))
    await save_screenshot(tab.page, "profile")
    assert not tab.errors


async def test_master_headline_agrees_with_master_data_crosswalk_and_queue(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    from tests.agents.master.people import people

    primary = tmp_path / "people.csv"
    people(40, seed=1).drop("entity", "corruptions").write_csv(primary)
    task_id = await run_task(http, "master-my-data", {"primary.csv": primary})
    files = await outputs(http, task_id)
    card = await open_result(tab, account, http, task_id, "master-my-data")

    golden, crosswalk, queue = (
        csv_rows(files[n]) for n in ("master_data.csv", "crosswalk.csv", "stewardship_queue.csv")
    )
    assert await figure(card, "golden", "records") == str(len(crosswalk)) == str(pl.read_csv(primary).height)
    assert await figure(card, "golden", "golden") == str(len(golden))
    assert len(golden) < len(crosswalk)  # the planted duplicates merged
    assert await figure(card, "queue", "count") == str(len(queue))
    result = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()
    clusters = result["agents"]["golden-record-builder"]["summary_metrics"]["clusters_formed"]
    assert clusters > 0 and await figure(card, "clusters", "count") == str(clusters)
    await expect(card.get_by_test_id("headline-golden")).to_contain_text(f"{len(crosswalk)} → {len(golden)}")
    await save_screenshot(tab.page, "master")
    assert not tab.errors


PEOPLE = """\
id,name,email,country
1,ann,ann@example.com,us
2,bob,,ca
3,cat,cat@example.com,
4,dan,,us
5,eve,eve@x.org,gb
"""


async def test_transform_headline_gives_rows_affected_per_step(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    primary = tmp_path / "people.csv"
    primary.write_text(PEOPLE)
    commands = ["remove rows where email is null", "uppercase country"]
    task_id = await run_task(
        http, "transform-my-data", {"primary.csv": primary}, {"transformer": {"commands": commands}}
    )
    files = await outputs(http, task_id)
    card = await open_result(tab, account, http, task_id, "transform-my-data")

    assert await figure(card, "rows", "in") == "5"
    assert await figure(card, "rows", "out") == str(len(csv_rows(files["transformed_data.csv"]))) == "3"
    steps = card.get_by_test_id("headline-steps").locator("li")
    await expect(steps).to_have_count(2)
    # Step 1 dropped 2 rows; step 2 uppercased the 2 countries left (one of the 3 rows has none).
    assert await steps.evaluate_all("items => items.map(li => li.dataset.rowsAffected)") == ["2", "2"]
    await expect(steps.first).to_contain_text("Dropped 2 rows where email was null")
    await save_screenshot(tab.page, "transform")
    assert not tab.errors


async def test_search_headline_gives_the_matches_of_search_result_csv(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    primary = sales_csv(tmp_path / "sales.csv", 120)
    parameters = {"searcher": {"keywords": ["lyon"]}}
    task_id = await run_task(http, "search-my-data", {"primary.csv": primary}, parameters)
    files = await outputs(http, task_id)
    card = await open_result(tab, account, http, task_id, "search-my-data")

    lyon = sum(1 for row in csv_rows(primary.read_bytes()) if row[3] == "lyon")
    assert await figure(card, "matches", "count") == str(len(csv_rows(files["search_result.csv"]))) == str(lyon)
    assert await figure(card, "matches", "rows") == str(pl.read_csv(primary).height)
    await expect(card.get_by_test_id("headline-matches")).to_contain_text(f"of {pl.read_csv(primary).height} rows")
    await save_screenshot(tab.page, "search")
    assert not tab.errors


# --- a failed agent, and the alerts on a phone -------------------------------------------------------


async def test_a_failed_agents_error_is_said_once(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    """The chain's envelope of a failed agent carries its error twice (`error` and its one card's description):
    the page says it once. The result is rewritten on its way to the page, as an agent's crash would leave it."""
    page = tab.page
    message = "Drift Detector failed: ValueError: the baseline has no column in common"

    async def failed(route: Route) -> None:
        response = await route.fetch()
        result = await response.json()
        result["agents"]["readiness-rater"] = {
            **result["agents"]["readiness-rater"],
            "status": "error",
            "error": message,
            "executive_summary": [
                {
                    "id": "x-error",
                    "title": "Readiness failed",
                    "value": "error",
                    "status": "critical",
                    "description": message,
                }
            ],
        }
        await route.fulfill(response=response, json=result)

    task_id = await run_task(http, "profile-my-data", {"primary.csv": sales_csv(tmp_path / "s.csv", 50)})
    await page.route(lambda url: urlsplit(url).path.endswith("/result"), failed)
    await open_result(tab, account, http, task_id, "profile-my-data")
    await expect(page.get_by_test_id("agent-details")).to_have_attribute("open", "")  # a failure is not folded away
    await expect(page.get_by_test_id("agent-details").locator("summary")).to_contain_text("1 failed")
    summary = page.locator("#summary")
    assert (await summary.text_content() or "").count(message) == 1


async def test_alerts_stack_readably_on_a_phone(
    browser: Browser,
    web: WebServer,
    account: Account,
    http: httpx.AsyncClient,
    worker: None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """At 390 px the alerts table's text gets the phone's width, not a fifth of it (one word per line)."""
    task_id = await run_task(http, "profile-my-data", {"primary.csv": sales_csv(tmp_path / "s.csv", 200)})
    context = await browser.new_context(base_url=web.url, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = await context.new_page()
        tab = Tab(page, context, request.node.name)
        await open_result(tab, account, http, task_id, "profile-my-data")
        alerts = page.get_by_test_id("alerts-table")
        await alerts.scroll_into_view_if_needed()
        widths = await alerts.locator("tbody tr td:nth-child(4)").evaluate_all(
            "cells => cells.map(c => c.getBoundingClientRect().width)"
        )
        assert widths and min(widths) > 0.7 * PHONE["width"], widths
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, overflow
        await alerts.screenshot(path=artifacts_dir() / f"{tab.name}-alerts.png")
    finally:
        await context.close()
