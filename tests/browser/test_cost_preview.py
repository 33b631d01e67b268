"""The page's cost preview charges as the service does: drift-detector joins profile-my-data's chain (and its
cost) only once a baseline file is chosen, and says so until then."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser.conftest import Tab
from tests.conftest import Account

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_drift_detector_is_counted_only_with_a_baseline(tab: Tab, account: Account, tmp_path: Path) -> None:
    page = tab.page
    await page.goto("/")
    await page.get_by_test_id("api-key").fill(account.api_key)
    await page.get_by_test_id("sign-in").click()
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    drift = page.get_by_test_id("agent-drift-detector")
    await expect(drift).to_be_checked()  # the default chain, as the catalog has it
    await expect(page.locator("label[for='agent-drift-detector']")).to_contain_text("only with a baseline")

    cost = page.locator("#cost")
    await expect(cost).to_contain_text("Cost: 120 credits")  # 30 + 35 + 30 + 25: no drift-detector (40)
    await expect(cost).to_contain_text("Drift Detector: only with a baseline file, not charged without one.")
    await tab.shot("without-baseline")

    baseline = tmp_path / "baseline.csv"
    baseline.write_text("id,amount\n1,10\n2,20\n")
    await page.get_by_test_id("file-baseline").set_input_files(baseline)
    await expect(cost).to_contain_text("Cost: 160 credits")
    await expect(cost).not_to_contain_text("only with a baseline")
    await tab.shot("with-baseline")
    assert not tab.errors
