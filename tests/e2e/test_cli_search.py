"""`agensium search` and `agensium aggregate` as subprocesses against the live test service, as a user runs them,
on a small known file profiled first (its primary input is the dataset version searched): filters (two values of
one column), a keyword, a sort and a page print exactly the rows an independent computation over the file gives,
with the page's position; ranges and a date range select the right rows; totals per contractor are right and
charted; a typo'd column exits 1 with the suggestion; the same search again is served from the result cache and
says "(cached)" (and --no-cache runs it again). The options become the agents' parameters as documented."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from service.cli import _sort_values_joined, build_parser
from service.client import ApiError
from service.search_client import _process_refused, aggregator_parameters, searcher_parameters
from tests.conftest import Account, ApiServer
from tests.e2e.test_cli_more import cli_env, run_cli
from tests.support import run_to_completion

live = pytest.mark.asyncio(loop_scope="session")

SEARCH_TOOL = "search-my-data"
CONTRACTS = (
    "id,city,contractor,amount,date,note\n"
    "1,Paris,Acme,100,2024-01-05,road repair\n"
    "2,Lyon,Bolt,250,2024-01-20,bridge paint\n"
    "3,Paris,Bolt,75,2024-02-03,road sign\n"
    "4,Nice,Acme,300,2024-02-14,tunnel light\n"
    "5,Paris,Acme,50,2024-03-01,Road marking\n"
    "6,Lyon,Cobra,125,2024-03-15,road repair\n"
    "7,Paris,Cobra,400,2024-03-28,park bench\n"
    "8,Nice,Bolt,20,2024-04-02,road cones\n"
    "9,Lille,Acme,60,2024-04-10,ROADWORKS sign\n"
    "10,Lyon,Bolt,90,2024-04-22,fountain\n"
)
ROWS: list[dict[str, Any]] = [
    {**row, "id": int(row["id"]), "amount": int(row["amount"])} for row in csv.DictReader(io.StringIO(CONTRACTS))
]
TIMEOUT = 120


@pytest.fixture
def env(api: ApiServer, account: Account, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key)


@pytest_asyncio.fixture(loop_scope="session")
async def profiled(client: httpx.AsyncClient, worker: None, tmp_path: Path) -> str:
    """A COMPLETED profile of CONTRACTS: its primary input is the dataset version the commands search."""
    path = tmp_path / "contracts.csv"
    path.write_text(CONTRACTS)
    task = await run_to_completion(client, {"primary.csv": path}, agents=["unified-profiler"])
    assert task["status"] == "COMPLETED", task
    return str(task["task_id"])


def table_rows(out: str, width: int) -> list[list[str]]:
    """The data lines of a printed table: `width` cells separated by runs of spaces, the first a row id."""
    found = []
    for line in out.splitlines():
        cells = line.split()
        if len(cells) == width and cells[0].isdigit():
            found.append(cells)
    return found


def expected(keep: Any, key: Any, descending: bool) -> list[dict[str, Any]]:
    return sorted((row for row in ROWS if keep(row)), key=key, reverse=descending)


async def search_tasks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/tasks", params={"tool_id": SEARCH_TOOL, "limit": 200})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@live
async def test_search_prints_the_page_of_the_filtered_sorted_rows_with_its_position(
    env: dict[str, str], client: httpx.AsyncClient, profiled: str
) -> None:
    args = ["--filter", "city=Paris", "--filter", "city=Lyon", "--keyword", "road", "--sort", "-amount"]
    args += ["--page", "2", "--page-size", "2", "--columns", "id,city,amount"]
    code, out, err = await run_cli(env, "search", profiled, *args, timeout=TIMEOUT)
    assert code == 0, err

    # Paris or Lyon, "road" in any text column whatever its case, the largest amounts first: page 2 of size 2.
    matching = expected(
        lambda r: r["city"] in ("Paris", "Lyon") and "road" in f"{r['city']} {r['contractor']} {r['note']}".lower(),
        lambda r: r["amount"],
        descending=True,
    )
    assert [r["id"] for r in matching] == [6, 1, 3, 5]  # the fixture is what this test thinks it is
    page = matching[2:4]
    assert table_rows(out, 3) == [[str(r["id"]), r["city"], str(r["amount"])] for r in page], out
    header = next(line for line in out.splitlines() if "city" in line)
    assert header.split() == ["id", "city", "amount"], out  # the projection, in its order
    assert "rows 3–4 of 4, page 2 of 2" in out, out
    assert "(cached)" not in out, out

    tasks = await search_tasks(client)
    made = tasks[0]
    assert (made["status"], made["source_task_id"], made["agents"]) == ("COMPLETED", profiled, ["searcher"]), made
    assert len(err.strip().splitlines()) <= 1, err  # quiet: one status line at most


@live
async def test_search_json_with_ranges_and_a_date_range(env: dict[str, str], profiled: str) -> None:
    args = ["--range", "amount=50..125", "--from", "date=2024-02-01", "--to", "date=2024-03-31", "--sort", "amount"]
    code, out, err = await run_cli(env, "search", profiled, *args, "--json", timeout=TIMEOUT)
    assert code == 0, err
    document = json.loads(out)
    result = document["result"]
    matching = expected(
        lambda r: 50 <= r["amount"] <= 125 and "2024-02-01" <= r["date"] <= "2024-03-31", lambda r: r["amount"], False
    )
    assert [r["id"] for r in matching] == [5, 3, 6]
    assert [int(row["id"]) for row in result["rows"]] == [r["id"] for r in matching], result
    assert (result["total_rows"], result["page"], result["pages"]) == (3, 1, 1), result
    assert document["task"]["status"] == "COMPLETED"


@live
async def test_aggregate_prints_the_totals_per_group_and_a_bar_chart(env: dict[str, str], profiled: str) -> None:
    code, out, err = await run_cli(env, "aggregate", profiled, "--by", "contractor", "--sum", "amount", timeout=TIMEOUT)
    assert code == 0, err
    totals: dict[str, int] = {}
    for row in ROWS:
        totals[row["contractor"]] = totals.get(row["contractor"], 0) + row["amount"]
    assert totals == {"Acme": 510, "Bolt": 435, "Cobra": 525}
    printed = {
        cells[0]: int(cells[1])
        for cells in (line.split() for line in out.splitlines())
        if len(cells) == 2 and cells[0] in totals and cells[1].isdigit()
    }
    assert printed == totals, out
    assert "groups 1–3 of 3, page 1 of 1" in out, out
    # The chart of the first metric: one bar per group, the largest total the longest bar.
    bars = {m.group(1): len(m.group(2)) for m in re.finditer(r"^(\w+)\s+(█+) \d+$", out, re.M)}
    assert set(bars) == set(totals), out
    assert max(bars, key=lambda name: bars[name]) == "Cobra", out


@live
async def test_a_typo_in_a_column_exits_1_with_the_suggestion(env: dict[str, str], profiled: str) -> None:
    # Too far from any column to be read as one (a one-edit typo in a longer name would be read, and said so).
    code, out, err = await run_cli(env, "search", profiled, "--filter", "cty=Paris", timeout=TIMEOUT)
    assert code == 1, (out, err)
    assert "cty" in err and "city" in err, err
    assert "rows" not in out, out

    code, out, err = await run_cli(env, "aggregate", profiled, "--by", "city", "--sum", "amnt", timeout=TIMEOUT)
    assert code == 1, (out, err)
    assert "amnt" in err and "amount" in err, err
    assert "groups" not in out, out


@live
async def test_the_same_search_again_is_served_from_the_cache(env: dict[str, str], profiled: str) -> None:
    args = ["--filter", "contractor=Acme", "--sort", "-amount"]
    code, first, err = await run_cli(env, "search", profiled, *args, timeout=TIMEOUT)
    assert code == 0, err
    assert "rows 1–4 of 4, page 1 of 1" in first and "(cached)" not in first, first

    # The same search with its options in another order: the same parameters, the same key.
    code, again, err = await run_cli(env, "search", profiled, "--sort", "-amount", *args[:2], timeout=TIMEOUT)
    assert code == 0, err
    assert "rows 1–4 of 4, page 1 of 1 (cached)" in again, again
    acme = [line for line in first.splitlines() if "Acme" in line]
    assert len(acme) == 4 and [line for line in again.splitlines() if "Acme" in line] == acme, (first, again)

    code, forced, err = await run_cli(env, "search", profiled, *args, "--no-cache", timeout=TIMEOUT)
    assert code == 0, err
    assert "rows 1–4 of 4, page 1 of 1" in forced and "(cached)" not in forced, forced


def parsed(*argv: str) -> Any:
    return build_parser().parse_args(_sort_values_joined(argv))


def test_the_options_become_the_searchers_parameters() -> None:
    args = parsed(
        "search", "T", "--filter", "city=Paris", "--filter", "city=Lyon", "--filter", "city=Paris",
        "--filter", "zip=01234", "--keyword", "road", "--keyword", "sign", "--range", "amount=10..",
        "--from", "date=2024-01-01", "--to", "date=2024-03-31", "--sort", "-amount", "--sort", "id,-date",
        "--page", "2", "--page-size", "10", "--columns", "id, amount",
    )  # fmt: skip
    assert searcher_parameters(args) == {
        "filters": {"city": ["Paris", "Lyon"], "zip": ["01234"]},  # a repeat adds a value once; text as written
        "keywords": ["road", "sign"],
        "time_ranges": [{"column": "date", "from": "2024-01-01", "to": "2024-03-31"}],
        "ranges": [{"column": "amount", "min": 10, "max": None}],
        "sort": [
            {"column": "amount", "descending": True},
            {"column": "id", "descending": False},
            {"column": "date", "descending": True},
        ],
        "page": 2,
        "page_size": 10,
        "columns": ["id", "amount"],
    }
    assert searcher_parameters(parsed("search", "T")) == {}  # the agent's defaults


def test_the_options_become_the_aggregators_parameters_with_the_metrics_in_their_order() -> None:
    args = parsed(
        "aggregate", "T", "--by", "contractor", "--bucket", "month:date", "--sum", "amount", "--count",
        "--distinct", "city", "--top", "5", "--sort", "-sum_amount",
    )  # fmt: skip
    assert aggregator_parameters(args) == {
        "group_by": ["contractor"],
        "bucket": {"column": "date", "unit": "month"},
        "metrics": [{"fn": "sum", "column": "amount"}, {"fn": "count"}, {"fn": "distinct", "column": "city"}],
        "top": 5,
        "sort": [{"column": "sum_amount", "descending": True}],
    }


def test_an_api_without_process_on_create_is_recognised() -> None:
    """The fallback to create-then-process is taken only for the refused `process` field itself."""
    refused = ApiError(422, "VALIDATION_ERROR", "process: Extra inputs are not permitted", {
        "errors": [{"loc": ["process"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}],
    })  # fmt: skip
    other = ApiError(422, "VALIDATION_ERROR", "tool_id: Field required", {"errors": [{"loc": ["tool_id"]}]})
    assert _process_refused(refused) and not _process_refused(other)
    assert not _process_refused(ApiError(422, "INVALID_PARAMETERS", "no column 'cty'", {}))
