"""The profiler's views on the page (service/web/profile_views.js and the column cards of results.js): the
correlations, missing values, samples and duplicate rows of a profile, and each column's semantic type,
extremes and datetime profile.

Two tests: one checks the rendering alone, against hand-made keys put into the profiler's envelope of a real
result (Playwright rewrites the page's GET .../result), caps included; the other profiles a generated CSV
whose strongest pair, co-missing patterns, duplicate rows and date range are known, end to end.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
import pytest_asyncio
from playwright.async_api import Locator, Page, Route, expect

from tests.browser.conftest import Tab, WebServer
from tests.browser.test_page import RUN_TIMEOUT_MS, sign_in, submit
from tests.conftest import Account

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROFILER = "unified-profiler"
MAX_HEATMAP = 30  # profile_views.js


@pytest_asyncio.fixture(loop_scope="session")
async def http(web: WebServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers, timeout=30) as client:
        yield client


async def run_profile(tab: Tab, csv: Path) -> str:
    """Profile `csv` with the profiler alone, through the form; waits for COMPLETED; the task id."""
    page = tab.page
    await page.get_by_test_id("tool-select").select_option("profile-my-data")
    await page.get_by_test_id("advanced-summary").click()
    boxes = page.locator('input[type="checkbox"][data-testid^="agent-"]')
    for testid in await boxes.evaluate_all("items => items.map(box => box.dataset.testid)"):
        await page.get_by_test_id(testid).set_checked(testid == f"agent-{PROFILER}")
    await page.get_by_test_id("file-primary").set_input_files(csv)
    task_id = await submit(page)
    await expect(page.get_by_test_id("task-status")).to_have_text("COMPLETED", timeout=RUN_TIMEOUT_MS)
    await expect(page.get_by_test_id("profile-views")).to_be_attached()
    return task_id


async def cell_texts(table: Locator) -> list[list[str]]:
    """The text of each body row's cells (th and td), row by row."""
    rows: list[list[str]] = await table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows


def js_number(text: str) -> str:
    """A CSV number as the page writes a value of the result: JavaScript's shortest form of the float."""
    value = float(text)
    return str(int(value)) if value.is_integer() else repr(value)


def envelope(result: dict[str, Any]) -> dict[str, Any]:
    agents = result["agents"]
    found = agents[PROFILER] if isinstance(agents, dict) else next(e for e in agents if e["agent_id"] == PROFILER)
    assert isinstance(found, dict)
    return found


# --- the rendering alone, of hand-made keys ---------------------------------------------------------


def canned_keys() -> dict[str, Any]:
    """Hand-made `data` keys of the profiler, in the shapes of the profile modules."""
    wide = [f"w{i:02d}" for i in range(40)]
    return {
        "correlations": {
            "rows_used": 100,
            "sampled": False,
            "pearson": {
                "columns": ["a", "b", "c"],
                "matrix": [[1.0, 0.95, -0.4], [0.95, 1.0, None], [-0.4, None, 1.0]],
            },
            "spearman": {
                "columns": wide,
                "matrix": [[1.0 if i == j else 0.1 for j in range(40)] for i in range(40)],
            },
            "cramers_v": {"columns": ["x", "y"], "matrix": [[1.0, 0.5], [0.5, 1.0]]},
            "strongest_pairs": [
                {"column_a": "a", "column_b": "b", "method": "pearson", "value": 0.95, "rows": 100},
                {"column_a": "x", "column_b": "y", "method": "cramers_v", "value": 0.5, "rows": 90},
                {"column_a": "a", "column_b": "c", "method": "pearson", "value": -0.4, "rows": 100},
            ],
            "near_duplicates": [
                {"column_a": "a", "column_b": "b", "method": "pearson", "value": 0.95, "rows": 100},
                {"column_a": "b", "column_b": "d", "method": "spearman", "value": -0.93, "rows": 80},
            ],
            "threshold": 0.9,
            "skipped": {"name": "more than 100 distinct values", "flag": "constant"},
        },
        "missing_patterns": {
            "columns": [
                {"column": "a", "null_count": 0, "null_percentage": 0.0},
                {"column": "b", "null_count": 10, "null_percentage": 10.0},
                {"column": "c", "null_count": 25, "null_percentage": 25.0},
            ],
            "rows": 100,
            "rows_with_missing": 30,
            "rows_complete": 70,
            "rows_all_missing": 0,
            "patterns": [
                {"columns": ["c"], "rows": 20, "percentage": 20.0},
                {"columns": ["b", "c"], "rows": 5, "percentage": 5.0},
                {"columns": ["b"], "rows": 5, "percentage": 5.0},
                {"columns": [f"n{i}" for i in range(15)], "rows": 1, "percentage": 1.0},
            ],
            "distinct_patterns": 4,
            "nullity_correlation": {"columns": ["b", "c"], "matrix": [[1.0, 0.27], [0.27, 1.0]]},
        },
        "samples": {
            "head": [{"row_index": 1, "a": 1, "b": "x", "c": None}, {"row_index": 2, "a": 2, "b": "y", "c": 3.5}],
            "tail": [{"row_index": 99, "a": 99, "b": "z", "c": 1.0}, {"row_index": 100, "a": 100, "b": "x", "c": None}],
            "random": [{"row_index": 17, "a": 17, "b": "q", "c": 2.25}],
            "seed": 0,
            "columns": ["a", "b", "c"],
            "columns_truncated": False,
        },
        "duplicate_rows_sample": {
            "duplicate_rows": 3,
            "groups_total": 2,
            "groups": [
                {"count": 3, "row_indexes": [4, 9, 17], "row": {"a": 4, "b": "x", "c": None}},
                {"count": 2, "row_indexes": [5, 6], "row": {"a": 5, "b": "y", "c": 1.5}},
            ],
        },
    }


CANNED_DATETIME: dict[str, Any] = {
    "min": "2013-01-01T10:00:00Z",
    "max": "2013-01-04T04:00:00Z",
    "time_zone": "UTC",
    "range_seconds": 237600.0,
    "range": "2 days 18:00:00",
    "distinct": 45,
    "future_count": 0,
    "extremes": {"lowest": [], "highest": []},
    "step": {"median_seconds": 3600.0, "most_common_seconds": 3600.0},
    "gaps": [
        {
            "after": "2013-01-03T14:00:00Z",
            "before": "2013-01-04T02:00:00Z",
            "seconds": 43200.0,
            "text": "0 days 12:00:00",
        }
    ],
    "gaps_total": 1,
    "gap_threshold_seconds": 10800.0,
    "counts_by_year": [{"period": 2013, "count": 2000}],
    "years_per_period": 1,
    "counts_by_month": [{"period": m, "label": f"M{m}", "count": 2000 if m == 1 else 0} for m in range(1, 13)],
    "counts_by_weekday": [{"period": d, "label": f"D{d}", "count": 100 * d} for d in range(1, 8)],
    "counts_by_hour": [{"period": h, "count": h} for h in range(24)],
}


def inject(result: dict[str, Any]) -> dict[str, Any]:
    """`result` with the hand-made keys in its profiler's envelope (the lead's own ones replaced)."""
    data = envelope(result)["data"]
    data.update(canned_keys())
    for field in data["fields"]:
        if field["field_name"] == "amount":
            field["semantic_type"] = "continuous"
            field["properties"]["semantic_reason"] = "3 distinct numbers from 3 to 10.5: continuous"
            field["statistics"]["extremes"] = {
                "lowest": [{"value": 3, "count": 1}, {"value": 7.25, "count": 2}],
                "highest": [{"value": 10.5, "count": 1}],
            }
        if field["field_name"] == "name":
            field["datetime_profile"] = CANNED_DATETIME
    return result


async def test_the_profile_views_render_the_profilers_keys(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, csv_file: Path
) -> None:
    page = tab.page

    async def canned(route: Route) -> None:
        response = await route.fetch()
        await route.fulfill(response=response, json=inject(await response.json()))

    await page.route(lambda url: urlsplit(url).path.endswith("/result"), canned)
    await sign_in(tab, account, http)
    await run_profile(tab, csv_file)
    await page.get_by_test_id("correlations").scroll_into_view_if_needed()
    await tab.shot("canned")

    # Correlations: the strongest pairs by |value|, the near duplicates (one beyond the strongest) marked.
    correlations = page.get_by_test_id("correlations")
    await expect(correlations.get_by_test_id("correlations-note")).to_contain_text("Over 100 rows")
    await expect(correlations.get_by_test_id("correlations-note")).to_contain_text("2 near-duplicate pairs")
    pairs = correlations.get_by_test_id("strongest-pairs")
    assert await cell_texts(pairs) == [
        ["a", "b", "Pearson", "0.95near duplicate", "100"],
        ["b", "d", "Spearman", "-0.93near duplicate", "80"],
        ["x", "y", "Cramér's V", "0.50", "90"],
        ["a", "c", "Pearson", "-0.40", "100"],
    ]
    marked = await pairs.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.nearDuplicate)")
    assert marked == ["true", "true", "false", "false"]
    assert await pairs.locator("tr.near-duplicate").count() == 2

    heatmap = correlations.get_by_test_id("correlation-heatmap")
    await expect(heatmap.locator("caption")).to_have_text("Pearson correlation (3 columns)")
    assert await cell_texts(heatmap) == [
        ["a", "1.00", "0.95", "-0.40"],
        ["b", "0.95", "1.00", "—"],
        ["c", "-0.40", "—", "1.00"],
    ]
    assert await heatmap.locator("thead th[scope=col]").count() == 3
    assert await heatmap.locator("tbody th[scope=row]").count() == 3
    tints = await heatmap.locator("td.heat").evaluate_all(
        "cells => cells.map(c => getComputedStyle(c).backgroundColor)"
    )
    assert len(set(tints)) == 4, tints  # 1, 0.95, -0.4 and undefined each have their own colour
    # Another matrix, capped at MAX_HEATMAP of its 40 columns.
    await correlations.get_by_test_id("correlation-method").select_option("spearman")
    await expect(heatmap.locator("caption")).to_have_text(f"Spearman correlation (first {MAX_HEATMAP} of 40 columns)")
    assert await heatmap.locator("thead th").count() == MAX_HEATMAP
    assert await heatmap.locator("tbody tr").count() == MAX_HEATMAP
    skipped = correlations.get_by_test_id("correlations-skipped")
    await expect(skipped.locator("summary")).to_have_text("2 columns left out")
    await expect(skipped).to_contain_text("name: more than 100 distinct values")

    # Missing values: per-column bars (columns with nulls, most first), the co-missing patterns.
    missing = page.get_by_test_id("missing-values")
    await expect(missing.get_by_test_id("missing-summary")).to_contain_text("30 of 100 rows miss a value (30%)")
    await expect(missing.get_by_test_id("missing-summary")).to_contain_text(
        "70 complete, 0 entirely empty; 4 distinct patterns"
    )
    bars = missing.get_by_test_id("nullity-bars")
    assert [row[:3] for row in await cell_texts(bars)] == [["c", "25", "25%"], ["b", "10", "10%"]]
    widths = await bars.locator(".bar").evaluate_all("bars => bars.map(b => b.style.width)")
    assert widths == ["25%", "10%"]
    patterns = await cell_texts(missing.get_by_test_id("missing-patterns"))
    assert patterns[:3] == [["c", "1", "20", "20%"], ["b, c", "2", "5", "5%"], ["b", "1", "5", "5%"]]
    assert patterns[3] == ["n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n11 and 3 more", "15", "1", "1%"]
    nullity = missing.get_by_test_id("nullity-heatmap")
    assert await cell_texts(nullity) == [["b", "1.00", "0.27"], ["c", "0.27", "1.00"]]

    # Samples: three tabs, one panel shown at a time; arrow keys move between them.
    samples = page.get_by_test_id("samples")
    first = samples.get_by_test_id("sample-tab-head")
    await expect(first).to_have_attribute("aria-selected", "true")
    await expect(samples.get_by_test_id("sample-head")).to_be_visible()
    await expect(samples.get_by_test_id("sample-tail")).to_be_hidden()
    assert await cell_texts(samples.get_by_test_id("sample-head")) == [["1", "1", "x", "null"], ["2", "2", "y", "3.5"]]
    await samples.get_by_test_id("sample-tab-tail").click()
    await expect(samples.get_by_test_id("sample-tail")).to_be_visible()
    await expect(samples.get_by_test_id("sample-head")).to_be_hidden()
    assert await cell_texts(samples.get_by_test_id("sample-tail")) == [
        ["99", "99", "z", "1"],
        ["100", "100", "x", "null"],
    ]
    await samples.get_by_test_id("sample-tab-tail").press("ArrowRight")
    await expect(samples.get_by_test_id("sample-tab-random")).to_be_focused()
    await expect(samples.get_by_test_id("sample-random").locator("caption")).to_have_text("Random rows (seed 0) (1)")
    assert await cell_texts(samples.get_by_test_id("sample-random")) == [["17", "17", "q", "2.25"]]
    await expect(samples.get_by_test_id("duplicates-summary")).to_have_text(
        "3 rows repeat an earlier row, in 2 groups."
    )
    assert await cell_texts(samples.get_by_test_id("duplicate-groups")) == [
        ["3", "4, 9, 17", "4", "x", "null"],
        ["2", "5, 6", "5", "y", "1.5"],
    ]

    # A column's semantic type with its reason, its extremes; a datetime column's profile.
    amount = page.locator('[data-column="amount"]')
    await expect(amount.get_by_test_id("semantic-type")).to_have_text(re.compile(r"· continuous$"))
    await expect(amount.get_by_test_id("semantic-reason")).to_have_text("3 distinct numbers from 3 to 10.5: continuous")
    assert await cell_texts(amount.get_by_test_id("extremes")) == [["3 ×1", "10.5 ×1"], ["7.25 ×2", ""]]
    when = page.locator('[data-column="name"]').get_by_test_id("datetime-profile")
    await expect(when.get_by_test_id("datetime-min")).to_have_text("2013-01-01T10:00:00Z")
    await expect(when.get_by_test_id("datetime-max")).to_have_text("2013-01-04T04:00:00Z")
    await expect(when.get_by_test_id("datetime-range")).to_have_text("2 days 18:00:00")
    assert await cell_texts(when.get_by_test_id("datetime-gaps")) == [
        ["2013-01-03T14:00:00Z", "2013-01-04T02:00:00Z", "0 days 12:00:00"]
    ]
    for testid, counts in (
        ("chart-year", CANNED_DATETIME["counts_by_year"]),
        ("chart-month", CANNED_DATETIME["counts_by_month"]),
        ("chart-weekday", CANNED_DATETIME["counts_by_weekday"]),
        ("chart-hour", CANNED_DATETIME["counts_by_hour"]),
    ):
        assert await chart_counts(when.get_by_test_id(testid)) == {c["period"]: c["count"] for c in counts}
    label = await when.get_by_test_id("chart-weekday").locator("svg").get_attribute("aria-label")
    assert label == "Rows of name by weekday: " + ", ".join(f"D{d}: {100 * d:,}" for d in range(1, 8))
    await when.scroll_into_view_if_needed()
    await tab.shot("canned-columns")
    assert not tab.errors


async def chart_counts(chart: Locator) -> dict[int, int]:
    """A period chart's bars: {period: count}, and each bar's height proportional to its count."""
    bars: list[dict[str, float]] = await chart.locator("rect").evaluate_all(
        """rects => rects.map(r => ({
            period: +r.dataset.period, count: +r.dataset.count, height: +r.getAttribute("height"),
        }))"""
    )
    top = max(b["count"] for b in bars)
    tallest = max(b["height"] for b in bars)
    for bar in bars:
        assert math.isclose(bar["height"], tallest * bar["count"] / top if top else 0, abs_tol=1e-6), bar
    return {int(b["period"]): int(b["count"]) for b in bars}


# --- end to end: a generated CSV with known answers -------------------------------------------------

START = datetime(2021, 1, 1, 8)
GAP_AT = 100  # days 100..109 are left out: one gap of 11 days
BASE_ROWS = 198
DUPLICATED_ROW = 5  # 1-based; copied twice at the end (rows 199 and 200)


def write_known_csv(path: Path, seed: int) -> pd.DataFrame:
    """x and y nearly equal (the strongest pair), z independent; m1 and m2 missing together on every 10th row
    and m1 alone on every 20th from the 6th; `when` daily at 08:00 with one gap; row 5 repeated twice. The
    frame as written, text as text."""
    rng = random.Random(seed)
    rows = []
    for i in range(BASE_ROWS):
        x = rng.gauss(0, 1)
        day = i if i < GAP_AT else i + 10
        rows.append(
            {
                "x": f"{x:.4f}",
                "y": f"{x + rng.gauss(0, 0.15):.4f}",
                "z": f"{rng.gauss(5, 2):.4f}",
                "m1": "" if i % 10 == 0 or i % 20 == 5 else f"{rng.uniform(0, 100):.4f}",
                "m2": "" if i % 10 == 0 else f"{rng.uniform(0, 100):.4f}",
                "colour": rng.choice(["red", "green", "blue"]),
                "when": (START + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%S"),
            }
        )
    rows += [rows[DUPLICATED_ROW - 1]] * 2
    frame = pd.DataFrame(rows)
    path.write_text(frame.to_csv(index=False))
    return frame


def strongest_pair(frame: pd.DataFrame) -> tuple[set[str], str, float]:
    """The pair of numeric columns and the method (Pearson or Spearman) of the largest |correlation|, by pandas."""
    numbers = frame[["x", "y", "z", "m1", "m2"]].replace("", None).astype(float)
    best: tuple[set[str], str, float] = (set(), "", 0.0)
    for method in ("pearson", "spearman"):
        matrix = numbers.corr(method=method)
        for a, b in combinations(numbers.columns, 2):
            if abs(matrix.loc[a, b]) > abs(best[2]):
                best = ({a, b}, method, float(matrix.loc[a, b]))
    return best


async def test_a_profiled_csv_shows_its_correlations_missing_values_samples_and_dates(
    tab: Tab, account: Account, http: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    page: Page = tab.page
    frame = write_known_csv(tmp_path / "known.csv", seed=7)
    await sign_in(tab, account, http)
    task_id = await run_profile(tab, tmp_path / "known.csv")
    await page.get_by_test_id("correlations").scroll_into_view_if_needed()
    await tab.shot("completed")
    data = envelope((await http.get(f"/api/v1/tasks/{task_id}/result")).json())["data"]
    for key in ("correlations", "missing_patterns", "samples", "duplicate_rows_sample"):
        assert key in data, f"the profiler's data has no {key!r} yet"

    # The strongest pair, as pandas has it, first and marked as a near duplicate.
    columns, method, value = strongest_pair(frame)
    pairs = page.get_by_test_id("strongest-pairs")
    first = (await cell_texts(pairs))[0]
    assert {first[0], first[1]} == columns
    assert first[2] == {"pearson": "Pearson", "spearman": "Spearman"}[method]
    assert first[3] == f"{value:.2f}near duplicate"
    assert first[4] == "200"
    await expect(pairs.locator("tbody tr").first).to_have_attribute("data-near-duplicate", "true")
    heatmap = page.get_by_test_id("correlation-heatmap")
    await expect(heatmap.locator("caption")).to_contain_text("Pearson correlation")
    pearson = frame[["x", "y"]].astype(float).corr().loc["x", "y"]
    x_row = next(row for row in await cell_texts(heatmap) if row[0] == "x")
    headers = await heatmap.locator("thead th").all_text_contents()
    assert x_row[1 + headers.index("y")] == f"{pearson:.2f}"

    # Missing values: m1 on 30 rows, m2 on 20; together on 20 rows, m1 alone on 10.
    missing = page.get_by_test_id("missing-values")
    await expect(missing.get_by_test_id("missing-summary")).to_contain_text("30 of 200 rows miss a value (15%)")
    bars = await cell_texts(missing.get_by_test_id("nullity-bars"))
    assert [row[:3] for row in bars] == [["m1", "30", "15%"], ["m2", "20", "10%"]]
    patterns = await cell_texts(missing.get_by_test_id("missing-patterns"))
    assert patterns == [["m1, m2", "2", "20", "10%"], ["m1", "1", "10", "5%"]]

    # Samples: the first and last rows as written; row 5 three times.
    samples = page.get_by_test_id("samples")
    head = await cell_texts(samples.get_by_test_id("sample-head"))
    header = await samples.get_by_test_id("sample-head").locator("thead th").all_text_contents()
    assert header[0] == "Row" and header[1:] == list(frame.columns)
    assert head[0][0] == "1" and head[0][header.index("x")] == js_number(frame["x"][0])
    assert head[0][header.index("when")].startswith(frame["when"][0])
    await samples.get_by_test_id("sample-tab-tail").click()
    tail = await cell_texts(samples.get_by_test_id("sample-tail"))
    assert tail[-1][0] == "200" and tail[-1][header.index("colour")] == frame["colour"][DUPLICATED_ROW - 1]
    await expect(samples.get_by_test_id("duplicates-summary")).to_have_text("2 rows repeat an earlier row, in 1 group.")
    (group,) = await cell_texts(samples.get_by_test_id("duplicate-groups"))
    assert group[:2] == ["3", f"{DUPLICATED_ROW}, 199, 200"]

    # x's extremes: its 5 lowest and highest values with their counts.
    xs = frame["x"].astype(float)
    extremes = await cell_texts(page.locator('[data-column="x"]').get_by_test_id("extremes"))
    lowest = sorted(Counter(xs).items())[:5]
    highest = sorted(Counter(xs).items(), reverse=True)[:5]
    assert [row[0] for row in extremes] == [f"{js_number(str(v))} ×{c}" for v, c in lowest]
    assert [row[1] for row in extremes] == [f"{js_number(str(v))} ×{c}" for v, c in highest]
    await expect(page.locator('[data-column="x"]').get_by_test_id("semantic-reason")).not_to_be_empty()

    # The dates: range, the one gap, counts by month and weekday as pandas has them.
    when = page.locator('[data-column="when"]').get_by_test_id("datetime-profile")
    stamps = pd.to_datetime(frame["when"])
    await expect(when.get_by_test_id("datetime-min")).to_have_text(re.compile(r"^2021-01-01T08:00:00"))
    last = START + timedelta(days=BASE_ROWS - 1 + 10)
    await expect(when.get_by_test_id("datetime-max")).to_have_text(re.compile("^" + last.strftime("%Y-%m-%dT%H:%M:%S")))
    await expect(when.get_by_test_id("datetime-range")).to_have_text(f"{(last - START).days} days 00:00:00")
    (gap,) = await cell_texts(when.get_by_test_id("datetime-gaps"))
    assert gap[0].startswith((START + timedelta(days=GAP_AT - 1)).isoformat())
    assert gap[1].startswith((START + timedelta(days=GAP_AT + 10)).isoformat())
    assert gap[2] == "11 days 00:00:00"
    months = Counter(stamps.dt.month)
    assert await chart_counts(when.get_by_test_id("chart-month")) == {m: months.get(m, 0) for m in range(1, 13)}
    weekdays = Counter(stamps.dt.day_of_week + 1)
    assert await chart_counts(when.get_by_test_id("chart-weekday")) == {d: weekdays.get(d, 0) for d in range(1, 8)}
    hours = await chart_counts(when.get_by_test_id("chart-hour"))
    assert hours == {h: (len(frame) if h == 8 else 0) for h in range(24)}
    await when.scroll_into_view_if_needed()
    await tab.shot("columns")
    assert not tab.errors
