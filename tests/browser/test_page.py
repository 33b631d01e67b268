"""The page at `/` in a real Chromium, through the public API only: a profile with a baseline watched to
100 % over the page's one event stream, its alerts and Excel report; a refused upload explained with the
API's own message; a task deleted elsewhere leaving the page; the stream cut mid-run and resumed from the last
event id without a loss or a repeat; a big file sent part by part, its upload cut after the first part and
resumed without sending that part again."""

from __future__ import annotations

import asyncio
import io
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openpyxl
import pytest
import pytest_asyncio
from playwright.async_api import FilePayload, Page, Request, Response, Route, expect

from service.storage import MIN_PART_BYTES
from tests.browser.conftest import Tab, WebServer
from tests.conftest import Account
from tests.support import collect_until_done

pytestmark = pytest.mark.asyncio(loop_scope="session")

EVENTS = "/api/v1/events"
RUN_TIMEOUT_MS = 60_000
PROGRESS_LINE = re.compile(r"(\d+% .*)$", re.S)


def write_csv(path: Path, rows: int, shift: float, seed: int) -> Path:
    """Numeric and text columns; `shift` moves the amounts and the city mix, so drift has something to say."""
    rng = random.Random(seed)
    cities = ["paris", "lyon", "nice", "lille"]
    weights = [0.4, 0.3, 0.2, 0.1] if shift == 0 else [0.1, 0.2, 0.3, 0.4]
    lines = ["id,amount,qty,city,comment"]
    for i in range(rows):
        amount = "" if rng.random() < 0.08 else f"{rng.gauss(100 + shift, 12):.2f}"
        city = rng.choices(cities, weights)[0]
        lines.append(f"{i + 1},{amount},{rng.randint(0, 40)},{city},note {rng.randint(0, 9)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_big_csv(path: Path, size: int, seed: int) -> Path:
    """A CSV of about `size` bytes, fast: write_csv's rows without their ids, repeated under fresh ids."""
    rows = write_csv(path, 4096, 0.0, seed).read_text().splitlines()
    header, bodies = rows[0], [row.split(",", 1)[1] for row in rows[1:]]
    lines, total, i = [header], len(header) + 1, 0
    while total < size:
        i += 1
        lines.append(f"{i},{bodies[i % len(bodies)]}")
        total += len(lines[-1]) + 1
    path.write_text("\n".join(lines) + "\n")
    return path


def part_number(url: str) -> int | None:
    """The part a presigned multipart PUT URL is for (`?partNumber=N&uploadId=...`), else None."""
    query = parse_qs(urlsplit(url).query)
    return int(query["partNumber"][0]) if "uploadId" in query and "partNumber" in query else None


def part_puts(requests: list[Request]) -> list[int]:
    """The part numbers of the multipart PUTs among `requests`, in order (tries included)."""
    return [n for r in requests if r.method == "PUT" and (n := part_number(r.url)) is not None]


def events_requests(tab: Tab) -> list[Request]:
    return [r for r in tab.requests if urlsplit(r.url).path == EVENTS]


def token_requests(tab: Tab) -> list[Request]:
    return [r for r in tab.requests if r.method == "POST" and urlsplit(r.url).path == EVENTS + "/token"]


def is_task_creation(response: Response) -> bool:
    return bool(response.request.method == "POST" and urlsplit(response.url).path == "/api/v1/tasks")


async def sign_in(tab: Tab, account: Account, http: httpx.AsyncClient) -> None:
    page = tab.page
    await page.goto("/")
    await tab.shot("page")
    await page.get_by_test_id("api-key").fill(account.api_key)
    await page.get_by_test_id("sign-in").click()
    me = (await http.get("/api/v1/me")).json()
    await expect(page.get_by_test_id("user-name")).to_contain_text(me["name"])
    await expect(page.get_by_test_id("user-name")).to_contain_text("credits")
    await expect(page.get_by_test_id("connection-state")).to_have_text("live")
    await tab.shot("signed-in")


async def submit(page: Page) -> str:
    """Click Run; the id of the task the page created."""
    async with page.expect_response(is_task_creation) as created:
        await page.get_by_test_id("submit").click()
    response = await created.value
    assert response.status == 201, await response.text()
    return str((await response.json())["task_id"])


async def page_progress_lines(page: Page) -> list[str]:
    """The progress lines of the messages list ("<n>% <message>"), in order, with their time left off."""
    texts: list[str] = await page.eval_on_selector_all(
        '[data-testid="messages"] li', "items => items.map(li => li.textContent)"
    )
    return [m.group(1) for m in map(PROGRESS_LINE.search, texts) if m]


async def progress_value(page: Page) -> int:
    return int(await page.get_by_test_id("overall-progress").evaluate("bar => bar.value"))


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


async def test_profile_with_a_baseline_live_to_the_excel_report(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    page = tab.page
    primary = write_csv(tmp_path / "sales.csv", 400, 0.0, seed=1)
    baseline = write_csv(tmp_path / "sales-last-year.csv", 400, 40.0, seed=2)
    await sign_in(tab, account, http)

    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await expect(page.get_by_test_id("agent-drift-detector")).to_be_checked()
    await page.get_by_test_id("file-primary").set_input_files(primary)
    await page.get_by_test_id("file-baseline").set_input_files(baseline)
    await tab.shot("form")
    task_id = await submit(page)

    for role, path in (("primary", primary), ("baseline", baseline)):
        bar = page.get_by_test_id(f"upload-progress-{role}")
        await expect(bar).to_have_js_property("max", path.stat().st_size)
        await expect(bar).to_have_js_property("value", path.stat().st_size)
    await expect(page.get_by_test_id("overall-progress")).to_have_js_property("value", 100, timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED")
    await tab.shot("completed")

    # Everything came over the page's one stream, progress events included.
    assert len(events_requests(tab)) == 1, [r.url for r in events_requests(tab)]
    assert await page_progress_lines(page), "no progress event reached the messages"
    task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
    for agent_id in task["agents"]:
        await expect(page.get_by_test_id(f"timeline-{agent_id}")).to_have_attribute("data-state", "done")

    # The results, as the API has them.
    result = (await http.get(f"/api/v1/tasks/{task_id}/result")).json()
    agents = result["agents"].values() if isinstance(result["agents"], dict) else result["agents"]
    severities = sorted(a["severity"] for e in agents for a in e.get("alerts") or [])
    cards = sum(len(e.get("executive_summary") or []) for e in agents)
    assert severities and cards, "the data should raise alerts and summary cards"
    await expect(page.get_by_test_id("summary-cards").locator(".card")).to_have_count(cards)
    badges = page.get_by_test_id("alerts-table").locator("tbody tr .badge")
    await expect(badges).to_have_count(len(severities))
    shown = await badges.evaluate_all("items => items.map(b => [b.textContent, b.className])")
    assert all(cls == f"badge severity-{text}" for text, cls in shown), shown
    assert sorted(text for text, _ in shown) == severities
    await page.get_by_test_id("alerts-table").scroll_into_view_if_needed()
    await tab.shot("results")

    async with page.expect_download() as downloading:
        await page.get_by_test_id("download-data_profile_report.xlsx").click()
    download = await downloading.value
    assert download.suggested_filename == "data_profile_report.xlsx"
    report = Path(await download.path()).read_bytes()
    assert report[:2] == b"PK"
    workbook = openpyxl.load_workbook(io.BytesIO(report), read_only=True)
    assert workbook.sheetnames
    assert not tab.errors


async def test_a_file_of_the_wrong_type_is_refused_with_the_apis_message(
    tab: Tab, account: Account, http: httpx.AsyncClient
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    # A file the tool cannot read by its name: refused by the page as soon as it is chosen, beside the field.
    await page.get_by_test_id("file-primary").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": png}
    )
    await expect(page.get_by_test_id("file-error-primary")).to_contain_text("photo.png is a .png file")
    await tab.shot("refused-on-choice")
    # A CSV by its name that the browser says is an image: the API's refusal, with its message, beside the field.
    file: FilePayload = {"name": "data.csv", "mimeType": "image/png", "buffer": b"id,x\n1,2\n"}
    await page.get_by_test_id("file-primary").set_input_files(file)
    async with page.expect_response(lambda r: urlsplit(r.url).path.endswith("/upload-urls")) as refused:
        await page.get_by_test_id("submit").click()
    response = await refused.value
    error = (await response.json())["error"]
    assert (response.status, error["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE"), error
    beside = page.get_by_test_id("file-error-primary")
    await expect(beside).to_be_visible()
    await expect(beside).to_have_text(error["message"])
    await tab.shot("unsupported_media_type")

    assert not [r for r in tab.requests if r.method == "PUT"], "nothing may reach the object store"
    # A refused file leaves no task behind (the page cancels and deletes what it created).
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        items = (await http.get("/api/v1/tasks")).json()["items"]
        if not items or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert items == []
    assert not tab.errors


async def test_a_task_deleted_elsewhere_leaves_the_page(tab: Tab, account: Account, http: httpx.AsyncClient) -> None:
    """The page learns of a deletion from its event stream (the task's last status event, `"deleted": true`)
    and drops the task's row, as when it deletes a task itself."""
    page = tab.page
    await sign_in(tab, account, http)
    created = await http.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})
    assert created.status_code == 201, created.text
    task_id = created.json()["task_id"]
    assert (await http.post(f"/api/v1/tasks/{task_id}/cancel")).status_code == 202
    row = page.get_by_test_id(f"history-row-{task_id}")
    await expect(row).to_have_attribute("data-status", "CANCELLED")

    assert (await http.delete(f"/api/v1/tasks/{task_id}")).status_code == 204
    await expect(row).to_have_count(0)
    assert not tab.errors


async def test_the_stream_cut_mid_run_resumes_without_losing_or_repeating_events(
    tab: Tab, account: Account, http: httpx.AsyncClient, web: WebServer, worker: None, csv_file: Path
) -> None:
    page = tab.page
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("diagnostics")
    await expect(page.get_by_test_id("agent-sleeper")).to_be_checked()
    await page.get_by_test_id("advanced-summary").click()
    await page.get_by_test_id("params-sleeper").fill('{"seconds": 6, "step_s": 0.2}')
    await expect(page.get_by_test_id("params-error-sleeper")).to_be_hidden()
    await page.get_by_test_id("file-primary").set_input_files(csv_file)
    task_id = await submit(page)

    # Mid-run: several progress steps shown, more to come.
    await page.wait_for_function(
        """n => [...document.querySelectorAll('[data-testid="messages"] li')]
            .filter(li => li.textContent.includes("Slept")).length >= n""",
        arg=3,
        timeout=RUN_TIMEOUT_MS,
    )
    await tab.shot("running")
    first_stream = events_requests(tab)
    assert len(first_stream) == 1 and "last_event_id" not in first_stream[0].url

    # Hold the page's reconnection until the run has moved on without it, so that resuming has to replay.
    release = asyncio.Event()
    held: list[str] = []

    async def hold(route: Route) -> None:
        held.append(route.request.url)
        await release.wait()
        await route.continue_()

    await page.route(lambda url: urlsplit(url).path == EVENTS, hold)
    assert web.drop_connections(EVENTS) == 1
    await expect(page.get_by_test_id("connection-state")).to_have_text("reconnecting")
    seen_before_cut = await progress_value(page)  # read once cut: events in flight at the cut have landed
    await tab.shot("reconnecting")
    deadline = asyncio.get_running_loop().time() + 10
    while not held or (await http.get(f"/api/v1/tasks/{task_id}")).json()["progress"] <= seen_before_cut + 5:
        assert asyncio.get_running_loop().time() < deadline, (held, seen_before_cut)
        await asyncio.sleep(0.05)
    assert await progress_value(page) == seen_before_cut  # nothing arrives while cut off
    release.set()

    await expect(page.get_by_test_id("connection-state")).to_have_text("live")
    await expect(page.get_by_test_id("overall-progress")).to_have_js_property("value", 100, timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED")
    await expect(page.get_by_test_id("timeline-sleeper")).to_have_attribute("data-state", "done")
    await tab.shot("resumed-completed")

    # One reopened stream, after a fresh token, resuming after an event of this run.
    streams = events_requests(tab)
    assert len(streams) == 2, [r.url for r in streams]
    assert len(token_requests(tab)) == 2
    resumed = parse_qs(urlsplit(streams[1].url).query)
    assert "last_event_id" in resumed, f"the page reopened {streams[1].url} without last_event_id"
    (resumed_from,) = resumed["last_event_id"]

    # Every progress event of the task, each once, in order: the task's full log is the reference.
    log = await collect_until_done(http, f"/api/v1/tasks/{task_id}/events", last_event_id=0, timeout=30)
    progress_ids = [e.id for e in log if e.event == "progress" and e.id is not None]
    assert int(resumed_from) in {e.id for e in log}
    assert int(resumed_from) < max(progress_ids)  # events came after the cut: the replay had work to do
    expected = [f"{e.data['progress']}% {e.data['message'] or ''}" for e in log if e.event == "progress"]
    assert await page_progress_lines(page) == expected
    shown_ids = await page.eval_on_selector_all(
        '[data-testid="messages"] li[data-event-id]', "items => items.map(li => Number(li.dataset.eventId))"
    )
    assert [i for i in shown_ids if i in set(progress_ids)] == progress_ids  # by id: none lost, none twice
    assert not tab.errors


async def test_a_big_file_goes_up_part_by_part_and_resumes_after_the_parts_the_store_has(
    multipart_tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    tab, page = multipart_tab, multipart_tab.page
    primary = write_big_csv(tmp_path / "big.csv", 11 * 1024**2, seed=3)
    size = primary.stat().st_size
    assert 2 * MIN_PART_BYTES < size < 3 * MIN_PART_BYTES, size  # three parts: 5, 5 and about 1 MiB
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await page.get_by_test_id("advanced-summary").click()
    boxes = page.locator('input[type="checkbox"][data-testid^="agent-"]')
    for testid in await boxes.evaluate_all("items => items.map(box => box.dataset.testid)"):
        await page.get_by_test_id(testid).set_checked(testid == "agent-unified-profiler")
    await page.get_by_test_id("file-primary").set_input_files(primary)
    await tab.shot("form")

    # The network fails once part 1 is through: every try of the other parts is cut.
    async def outage(route: Route) -> None:
        if part_number(route.request.url) == 1:
            await route.continue_()
        else:
            await route.abort()

    def is_part(url: str) -> bool:
        return part_number(url) is not None

    await page.route(is_part, outage)
    task_id = await submit(page)
    resume = page.get_by_test_id("resume-upload")
    await expect(resume).to_be_visible(timeout=15_000)  # after 3 tries of a part, 1 s then 2 s apart
    await expect(page.get_by_test_id("submit-error")).to_contain_text("Upload interrupted")
    bar = page.get_by_test_id("upload-progress-primary")
    await expect(bar).to_have_js_property("max", size)
    await expect(bar).to_have_js_property("value", MIN_PART_BYTES)
    await tab.shot("interrupted")
    assert Counter(part_puts(tab.requests)) == {1: 1, 2: 3, 3: 3}
    (upload_id,) = {parse_qs(urlsplit(r.url).query)["uploadId"][0] for r in tab.requests if is_part(r.url)}
    base = f"/api/v1/tasks/{task_id}/inputs/primary.csv"
    stored = (await http.get(f"{base}/parts", params={"upload_id": upload_id})).json()["parts"]
    assert [p["part_number"] for p in stored] == [1]

    await page.unroute(is_part, outage)
    before_resume = len(tab.requests)
    async with page.expect_response(lambda r: urlsplit(r.url).path == f"{base}/complete") as completing:
        await resume.click()
    completed = await completing.value
    assert completed.status == 200, await completed.text()
    assert (await completed.json())["size"] == size
    await expect(bar).to_have_js_property("value", size)
    await expect(resume).to_be_hidden()
    await tab.shot("resumed")
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    await tab.shot("completed")

    # The resume asked the store what it had, then sent only the rest, each once, and completed once.
    resumed = tab.requests[before_resume:]
    asked = [r for r in resumed if r.method == "GET" and urlsplit(r.url).path == f"{base}/parts"]
    assert [parse_qs(urlsplit(r.url).query)["upload_id"] for r in asked] == [[upload_id]]
    assert sorted(part_puts(resumed)) == [2, 3]
    assert part_puts(tab.requests).count(1) == 1  # part 1 went up once in the whole test
    completes = [r for r in tab.requests if r.method == "POST" and urlsplit(r.url).path == f"{base}/complete"]
    assert len(completes) == 1
    task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
    assert (task["status"], task["agents"]) == ("COMPLETED", ["unified-profiler"])
    assert not tab.errors
