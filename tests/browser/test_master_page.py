"""master-my-data from the page in a real Chromium, through the public API only: a primary, two other sources
(each labelled from its file name, uploaded as source_<label>.<ext> with its own bar) and a data contract; the
task's inputs as the API stores them and a crosswalk that names every row of every source. A bad or repeated
label is refused beside its field and Run creates nothing; the fields are shown only for the tool that takes
them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import expect

from tests.browser.conftest import Tab, WebServer
from tests.browser.test_page import RUN_TIMEOUT_MS, sign_in, submit
from tests.conftest import Account

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOOL = "master-my-data"
HEADER = "given_name,surname,email,phone,postcode\n"
# Three files of a few people each; Alice, Bob and Carol appear in more than one, spelled slightly differently.
PRIMARY = (
    HEADER + "Alice,Martin,alice.martin@example.com,0298765432,2000\n"
    "Bob,Durand,bob.durand@example.com,0287654321,3000\n"
    "Dan,Petit,dan.petit@example.com,0276543210,4000\n"
)
CRM = (
    HEADER + "Alicia,Martin,alice.martin@example.com,(02) 9876-5432,2000\n"
    "Erin,Moreau,erin.moreau@example.com,0265432109,5000\n"
)
SHOP = (
    HEADER + "Bob,Durant,BOB.DURAND@example.com,02 8765 4321,3000\n"
    "Carol,Leroy,carol.leroy@example.com,0254321098,6000\n"
    "Carole,Leroy,carol.leroy@example.com,0254321098,6000\n"
)
CONTRACT = {"required_columns": ["given_name", "surname", "email"]}


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rows(text: str) -> int:
    return text.count("\n") - 1


async def crosswalk(http: httpx.AsyncClient, task_id: str) -> list[dict[str, str]]:
    """The task's crosswalk.csv, fetched through the presigned URL the downloads list gives."""
    files = {f["name"]: f for f in (await http.get(f"/api/v1/tasks/{task_id}/downloads")).json()["files"]}
    async with httpx.AsyncClient(timeout=30) as store:
        content = (await store.get(files["crosswalk.csv"]["url"])).text
    return list(csv.DictReader(io.StringIO(content)))


async def test_master_data_with_two_sources_and_a_contract_from_the_page(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    page = tab.page
    primary = write(tmp_path / "people.csv", PRIMARY)
    crm = write(tmp_path / "CRM.csv", CRM)
    shop = write(tmp_path / "Web Shop.csv", SHOP)
    contract = write(tmp_path / "contract.json", json.dumps(CONTRACT))
    await sign_in(tab, account, http)

    # Another tool shows neither field; master-my-data shows both, with the formats its catalog lists.
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await expect(page.get_by_test_id("sources-field")).to_be_hidden()
    await expect(page.get_by_test_id("schema-field")).to_be_hidden()
    await page.get_by_test_id("tool-select").select_option(TOOL)
    await expect(page.get_by_test_id("sources-field")).to_be_visible()
    await expect(page.get_by_test_id("schema-field")).to_be_visible()
    tool = next(t for t in (await http.get("/api/v1/tools")).json()["tools"] if t["tool_id"] == TOOL)
    formats = {i["role"]: i["formats"] for i in tool["inputs"]}
    accept = ",".join("." + f for f in formats["source"])
    await expect(page.get_by_test_id("file-source")).to_have_attribute("accept", accept)
    await expect(page.get_by_test_id("file-schema")).to_have_attribute(
        "accept", ",".join("." + f for f in formats["schema"])
    )

    await page.get_by_test_id("file-primary").set_input_files(primary)
    await page.get_by_test_id("file-source").set_input_files([crm, shop])
    # Each source's label comes from its file name, in the labels' alphabet.
    await expect(page.get_by_test_id("source-label-1")).to_have_value("crm")
    await expect(page.get_by_test_id("source-label-2")).to_have_value("web_shop")
    await page.get_by_test_id("source-label-2").fill("shop")
    await expect(page.get_by_test_id("source-label-error-2")).to_be_hidden()
    await page.get_by_test_id("file-schema").set_input_files(contract)
    await tab.shot("sources")

    task_id = await submit(page)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    # Every source had its own bar, filled to its size.
    for key, path in ((1, crm), (2, shop)):
        bar = page.get_by_test_id(f"upload-progress-source-{key}")
        assert await bar.evaluate("b => [b.value, b.max]") == [path.stat().st_size] * 2
    await tab.shot("completed")

    task = (await http.get(f"/api/v1/tasks/{task_id}")).json()
    inputs = {i["name"]: (i["role"], i["display_name"], i["size"]) for i in task["inputs"]}
    assert inputs == {
        "primary.csv": ("primary", "people.csv", primary.stat().st_size),
        "source_crm.csv": ("source", "CRM.csv", crm.stat().st_size),
        "source_shop.csv": ("source", "Web Shop.csv", shop.stat().st_size),
        "schema.json": ("schema", "contract.json", contract.stat().st_size),
    }

    # The crosswalk names every row of every source once.
    walk = await crosswalk(http, task_id)
    keys = [(r["source"], int(r["source_row"])) for r in walk]
    expected = {
        (label, n)
        for label, text in (("primary", PRIMARY), ("crm", CRM), ("shop", SHOP))
        for n in range(1, rows(text) + 1)
    }
    assert len(keys) == len(expected) and set(keys) == expected
    assert not tab.errors


async def test_a_bad_or_repeated_label_is_refused_beside_its_field_and_run_creates_nothing(
    tab: Tab, account: Account, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    page = tab.page
    primary = write(tmp_path / "people.csv", PRIMARY)
    crm = write(tmp_path / "crm.csv", CRM)
    shop = write(tmp_path / "shop.csv", SHOP)
    await sign_in(tab, account, http)
    await page.get_by_test_id("tool-select").select_option(TOOL)
    await page.get_by_test_id("file-primary").set_input_files(primary)
    await page.get_by_test_id("file-source").set_input_files([crm, shop])

    label, error = page.get_by_test_id("source-label-1"), page.get_by_test_id("source-label-error-1")
    await label.fill("CRM data!")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text('"CRM data!" is not a valid label')
    await expect(label).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_test_id("source-label-error-2")).to_be_hidden()
    await tab.shot("bad-label")

    # Run refuses before anything is created, and takes the user to the field.
    await page.get_by_test_id("submit").click()
    await expect(page.get_by_test_id("submit-error")).to_contain_text("label is not valid")
    await expect(label).to_be_focused()
    assert not [r for r in tab.requests if r.method == "POST" and r.url.endswith("/api/v1/tasks")]

    # A label another source has is refused too; a fix clears both.
    await label.fill("shop")
    await expect(error).to_contain_text('"shop" is already the label of another source')
    await expect(page.get_by_test_id("source-label-error-2")).to_contain_text("already the label")
    await label.fill("crm")
    await expect(error).to_be_hidden()
    await expect(page.get_by_test_id("source-label-error-2")).to_be_hidden()

    # A file of a type the tool does not read is left out, said beside the picker; a removed source goes.
    pdf = tmp_path / "notes.pdf"
    pdf.write_bytes(b"%PDF-1.4\n")
    await page.get_by_test_id("file-source").set_input_files(pdf)
    await expect(page.get_by_test_id("file-error-source")).to_contain_text("notes.pdf is not a")
    await expect(page.get_by_test_id("source-row-3")).to_have_count(0)
    await page.get_by_test_id("source-remove-2").click()
    await expect(page.get_by_test_id("source-row-2")).to_have_count(0)
    assert not tab.errors
