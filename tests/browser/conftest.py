"""A real Chromium (Debian's `chromium`, driven by Playwright) on the page the API serves at `/`.

The page is served by an API of its own here, started with the hidden `diagnostics` tool enabled (the
catalog is read at start-up) and with its uvicorn server at hand, so that a test can cut a stream's
connection server-side as a failing network would; a second one (`multipart_web`) sends files above
1 MiB through presigned multipart, for the big-upload scenario. Screenshots of each step land in
$AGENSIUM_TEST_ARTIFACTS/browser/ (default <repo>/test-artifacts/browser/), named <test>-<nn>-<step>.png.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, Request, async_playwright

from service.config import Settings
from service.storage import MIN_PART_BYTES, Storage
from tests.conftest import serve_api

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
REPO = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    root = os.environ.get("AGENSIUM_TEST_ARTIFACTS")
    path = (Path(root) if root else REPO / "test-artifacts") / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item: the `page` fixture screenshots a failed test."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install Debian's `chromium` package (.ci/run does it when run as root)"
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="package")
def page_settings(settings: Settings) -> Settings:
    """The session's settings with the hidden `diagnostics` tool (a sleeper of a given length) offered by these
    tests' APIs; the session's worker runs it (tests/conftest.py)."""
    return settings.model_copy(update={"diagnostics": True})


@dataclass
class WebServer:
    url: str
    server: uvicorn.Server

    def drop_connections(self, path: str) -> int:
        """Close, server side, every connection now serving `path`, as a proxy or a network failure would;
        returns how many."""
        dropped = 0
        for connection in list(self.server.server_state.connections):
            scope = getattr(connection, "scope", None)
            if scope is not None and scope.get("path") == path:
                connection.transport.close()
                dropped += 1
        return dropped


@contextlib.asynccontextmanager
async def serve_page(settings: Settings) -> AsyncIterator[WebServer]:
    """An API serving the page, in the test loop, with its uvicorn server at hand."""
    async with serve_api(settings) as api:
        assert api.server is not None
        yield WebServer(api.url, api.server)


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def web(page_settings: Settings, storage: Storage) -> AsyncIterator[WebServer]:
    """The API serving the page (storage: the bucket and its CORS rule exist)."""
    async with serve_page(page_settings) as server:
        yield server


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def multipart_web(page_settings: Settings, storage: Storage) -> AsyncIterator[WebServer]:
    """A second API on the same database and bucket (so the session's worker runs its tasks) that sends
    files above 1 MiB through presigned multipart in parts of 5 MiB, the store's smallest."""
    small = page_settings.model_copy(
        update={"multipart_threshold_bytes": 1024**2, "multipart_part_bytes": MIN_PART_BYTES}
    )
    async with serve_page(small) as server:
        yield server


@dataclass
class Tab:
    """One test's browser tab, what it asked the network for, and its screenshots."""

    page: Page
    context: BrowserContext
    name: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shots: int = 0

    async def shot(self, step: str) -> None:
        self.shots += 1
        path = artifacts_dir() / f"{self.name}-{self.shots:02d}-{step}.png"
        await self.page.screenshot(path=path, full_page=True)


@contextlib.asynccontextmanager
async def open_tab(browser: Browser, web: WebServer, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    """A fresh browser context on `web`'s page; screenshots the page when the test failed."""
    name = request.node.name
    for stale in artifacts_dir().glob(f"{name}-*.png"):
        stale.unlink()
    context = await browser.new_context(
        base_url=web.url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    page = await context.new_page()
    tab = Tab(page, context, name)
    page.on("request", lambda r: tab.requests.append(r))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
        report: Any = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            await tab.shot("failure")
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Browser, web: WebServer, request: pytest.FixtureRequest) -> AsyncIterator[Tab]:
    async with open_tab(browser, web, request) as tab:
        yield tab


@pytest_asyncio.fixture(loop_scope="session")
async def multipart_tab(
    browser: Browser, multipart_web: WebServer, request: pytest.FixtureRequest
) -> AsyncIterator[Tab]:
    """A tab on the page of `multipart_web`."""
    async with open_tab(browser, multipart_web, request) as tab:
        yield tab
