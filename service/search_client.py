"""`agensium search` and `agensium aggregate`: seed 002's search and aggregates of a dataset version from the
command line, as a `search-my-data` task (agent `searcher`, or `aggregator`) on TASK_ID's dataset version.

The command builds the agent's parameters from its options (API.md, the searcher's and aggregator's parameters),
creates the task with `"process": true` (one call; an API without it: create, then `POST .../process`), follows
it quietly (one transient status line on stderr) unless the result cache answered at once, and prints the page
as a table with its position ("rows 51–100 of 1,234, page 2 of 25") and "(cached)" when the cache served it.
A refusal (a column the dataset does not have, a bad value) prints the API's sentence and its suggestions and
exits 1.

Values are sent as written: the agents type a filter's values by their column (text as written, numbers, ISO
dates, true/false), so "01234" stays text for a text column. An empty value (`--filter grp=`) selects the empty
cells (missing values, as a JSON null does). A search that matches nothing prints "no rows match".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.table import Table

from service.client import (
    EXIT_OK,
    EXIT_TASK_FAILED,
    PRIORITIES,
    TERMINAL_STATUSES,
    AgensiumClient,
    ApiError,
    UsageError,
    _connection_options,
    _print_json,
    run_command,
)

SEARCH_TOOL = "search-my-data"
METRIC_FUNCTIONS = ("count", "sum", "mean", "min", "max", "distinct")
BUCKET_UNITS = ("day", "week", "month", "year")
MAX_PAGE_SIZE = 1000
CHART_WIDTH = 40  # characters of the longest bar
CHART_MAX_BARS = 30


# --- options -> parameters ----------------------------------------------------------------------


def join_sort_values(argv: Sequence[str]) -> list[str]:
    """`--sort -amount` as `--sort=-amount`: argparse would read the '-amount' as an unknown option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        item = argv[index]
        if item == "--sort" and index + 1 < len(argv) and argv[index + 1].startswith("-"):
            joined.append(f"--sort={argv[index + 1]}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def _split_pair(raw: str, option: str, example: str) -> tuple[str, str]:
    """`column=value` -> (column, value); the column is non-empty, the value may be."""
    column, sep, value = raw.partition("=")
    if not sep or not column.strip():
        raise UsageError(f"{option} {raw!r}: expected COLUMN=VALUE, e.g. {option} {example}")
    return column.strip(), value


def parse_filters(raw: Sequence[str]) -> dict[str, list[str]]:
    """Repeated `--filter col=value`: one entry per column, its values in the order given (a repeat adds one)."""
    filters: dict[str, list[str]] = {}
    for item in raw:
        column, value = _split_pair(item, "--filter", "city=Paris")
        values = filters.setdefault(column, [])
        if value not in values:
            values.append(value)
    return filters


def _number(text: str, raw: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--range {raw!r}: {text!r} is not a number") from None


def parse_ranges(raw: Sequence[str]) -> list[dict[str, Any]]:
    """`--range amount=10..100` (either end may be left out: `amount=10..`, `amount=..100`)."""
    ranges: list[dict[str, Any]] = []
    for item in raw:
        column, bounds = _split_pair(item, "--range", "amount=10..100")
        low, sep, high = bounds.partition("..")
        if not sep:
            raise UsageError(f"--range {item!r}: expected COLUMN=MIN..MAX, e.g. --range amount=10..100")
        minimum, maximum = _number(low, item), _number(high, item)
        if minimum is None and maximum is None:
            raise UsageError(f"--range {item!r}: give a minimum, a maximum or both")
        ranges.append({"column": column, "min": minimum, "max": maximum})
    return ranges


def parse_time_ranges(starts: Sequence[str], ends: Sequence[str]) -> list[dict[str, Any]]:
    """`--from date=2024-01-01` and `--to date=2024-03-31`, joined by column (both ends included)."""
    by_column: dict[str, dict[str, Any]] = {}
    for option, end, items in (("--from", "from", starts), ("--to", "to", ends)):
        for item in items:
            column, value = _split_pair(item, option, "date=2024-01-01")
            if not value.strip():
                raise UsageError(f"{option} {item!r}: expected a date, e.g. {option} {column}=2024-01-01")
            entry = by_column.setdefault(column, {"column": column, "from": None, "to": None})
            entry[end] = value.strip()
    return list(by_column.values())


def parse_sort(raw: Sequence[str]) -> list[dict[str, Any]]:
    """`--sort -amount --sort name` or `--sort -amount,name`: a leading '-' sorts that column descending."""
    sort: list[dict[str, Any]] = []
    for item in raw:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            descending = part.startswith("-")
            column = part[1:].strip() if descending or part.startswith("+") else part
            if not column:
                raise UsageError(f"--sort {item!r}: name a column, e.g. --sort -amount")
            sort.append({"column": column, "descending": descending})
    return sort


def parse_columns(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    columns = [c.strip() for c in raw.split(",") if c.strip()]
    if not columns:
        raise UsageError("--columns needs at least one column, e.g. --columns name,amount")
    return columns


def parse_bucket(raw: str | None) -> dict[str, str] | None:
    """`--bucket month:date` -> {"column": "date", "unit": "month"}."""
    if raw is None:
        return None
    unit, sep, column = raw.partition(":")
    if not sep or unit.strip().lower() not in BUCKET_UNITS or not column.strip():
        raise UsageError(f"--bucket {raw!r}: expected UNIT:COLUMN with UNIT one of {', '.join(BUCKET_UNITS)}")
    return {"column": column.strip(), "unit": unit.strip().lower()}


def _selection(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters the searcher and the aggregator share: which rows (filters, keywords, ranges)."""
    parameters: dict[str, Any] = {}
    filters = parse_filters(args.filter)
    if filters:
        parameters["filters"] = filters
    keywords = [k for k in args.keyword if k.strip()]
    if keywords:
        parameters["keywords"] = keywords
    keyword_columns = parse_columns(args.keyword_columns)
    if keyword_columns is not None:
        parameters["keyword_columns"] = keyword_columns
    time_ranges = parse_time_ranges(args.date_from, args.date_to)
    if time_ranges:
        parameters["time_ranges"] = time_ranges
    ranges = parse_ranges(args.range)
    if ranges:
        parameters["ranges"] = ranges
    sort = parse_sort(args.sort)
    if sort:
        parameters["sort"] = sort
    if args.page is not None:
        parameters["page"] = args.page
    if args.page_size is not None:
        parameters["page_size"] = args.page_size
    return parameters


def searcher_parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters = _selection(args)
    columns = parse_columns(args.columns)
    if columns is not None:
        parameters["columns"] = columns
    return parameters


def aggregator_parameters(args: argparse.Namespace) -> dict[str, Any]:
    parameters = _selection(args)
    group_by = [c for item in args.by for c in (p.strip() for p in item.split(",")) if c]
    if group_by:
        parameters["group_by"] = group_by
    bucket = parse_bucket(args.bucket)
    if bucket is not None:
        parameters["bucket"] = bucket
    if args.metrics:
        parameters["metrics"] = args.metrics
    if args.top is not None:
        parameters["top"] = args.top
    return parameters


class _Metric(argparse.Action):
    """--count / --sum COL / --mean COL ...: one metric each, kept in the order given."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option: str | None = None) -> None:
        metrics = list(getattr(namespace, self.dest) or [])
        fn = str(self.const)
        column = values if isinstance(values, str) else None
        metrics.append({"fn": fn, "column": column} if fn != "count" else {"fn": "count"})
        setattr(namespace, self.dest, metrics)


def _bounded(low: int, high: int) -> Any:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


# --- the parsers --------------------------------------------------------------------------------


def _selection_options(parser: argparse.ArgumentParser) -> None:
    rows = parser.add_argument_group("which rows")
    rows.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="COL=VALUE",
        help="keep rows whose COL is VALUE; repeat it for one column to accept several values; an empty VALUE "
        "(COL=) keeps the rows whose COL is empty (a missing value)",
    )
    rows.add_argument(
        "--keyword", action="append", default=[], metavar="WORD", help="every WORD must appear (any case)"
    )
    rows.add_argument("--keyword-columns", metavar="A,B", help="where keywords are looked for (default: text columns)")
    rows.add_argument("--range", action="append", default=[], metavar="COL=MIN..MAX", help="numbers, ends included")
    rows.add_argument(
        "--from", dest="date_from", action="append", default=[], metavar="COL=DATE", help="COL on or after DATE"
    )
    rows.add_argument("--to", dest="date_to", action="append", default=[], metavar="COL=DATE", help="COL on or before")
    page = parser.add_argument_group("the page")
    page.add_argument(
        "--sort", action="append", default=[], metavar="[-]COL", help="sort by COL, descending with a leading '-'"
    )
    page.add_argument("--page", type=_bounded(1, 10**9), metavar="N", help="page number, from 1 (default 1)")
    page.add_argument(
        "--page-size", type=_bounded(1, MAX_PAGE_SIZE), metavar="N", help=f"1..{MAX_PAGE_SIZE} (default 50)"
    )
    parser.add_argument("--priority", choices=PRIORITIES, help="queue priority (default: the server's)")
    parser.add_argument(
        "--no-cache", action="store_true", help="run it again even when an identical earlier search has the answer"
    )
    parser.add_argument("--json", action="store_true", help="print one compact JSON document: {task, result}")


def add_search_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "search",
        parents=[_connection_options()],
        help="search a task's dataset: agensium search TASK_ID --filter city=Paris --keyword road --sort -amount",
        description=(
            "Run the searcher (search-my-data) on TASK_ID's dataset version and print one page of the matching "
            "rows: rows X–Y of TOTAL, page P of PAGES, and (cached) when an identical earlier search answered. "
            "Every matching row is in the new task's search_result.csv, itself a dataset version. Exit status: "
            "0 done, 1 refused or failed (a column the dataset lacks is explained with suggestions), 2 usage."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID", help="the task whose dataset version is searched")
    _selection_options(parser)
    parser.add_argument("--columns", metavar="A,B", help="only these columns, in this order")
    parser.set_defaults(func=lambda args: run_command(args, search_command))
    return parser


def add_aggregate_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "aggregate",
        parents=[_connection_options()],
        help="aggregate a task's dataset: agensium aggregate TASK_ID --by contractor --sum amount",
        description=(
            "Run the aggregator (search-my-data) on TASK_ID's dataset version: groups by --by columns and/or a "
            "--bucket of a date column, with the metrics asked for in their order (default: --count), over the "
            "rows the filters keep. Prints the groups of one page and a text bar chart of the first metric. "
            "Sort by a key or a metric's name (count, sum_amount, ...)."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID", help="the task whose dataset version is aggregated")
    groups = parser.add_argument_group("groups and metrics")
    groups.add_argument("--by", action="append", default=[], metavar="COL", help="group by COL (repeat for more)")
    groups.add_argument("--bucket", metavar="UNIT:COL", help="group by COL's day, week, month or year")
    groups.add_argument("--top", type=_bounded(1, 10**6), metavar="N", help="only the first N groups")
    groups.add_argument("--count", dest="metrics", action=_Metric, nargs=0, const="count", help="rows per group")
    for fn in METRIC_FUNCTIONS[1:]:
        groups.add_argument(
            f"--{fn}", dest="metrics", action=_Metric, const=fn, metavar="COL", help=f"{fn} of COL per group"
        )
    _selection_options(parser)
    parser.set_defaults(func=lambda args: run_command(args, aggregate_command), metrics=None)
    return parser


def add_search_parsers(subparsers: Any) -> None:
    add_search_parser(subparsers)
    add_aggregate_parser(subparsers)


# --- running one search task --------------------------------------------------------------------


def _process_refused(error: ApiError) -> bool:
    """The API does not take `"process": true` on create yet (its body model forbids the field)."""
    if error.code != "VALIDATION_ERROR":
        return False
    return any(list(e.get("loc") or [])[-1:] == ["process"] for e in error.details.get("errors") or [])


async def _create(
    client: AgensiumClient, source_id: str, agent: str, parameters: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Create the search task and queue it (or have it completed from the cache) in one call where the API
    can; otherwise create, then process. Each create is resent on a network failure under one Idempotency-Key.
    --no-cache is the top-level `"cache": false` of the inline parameters."""
    body: dict[str, Any] = {agent: parameters}
    if args.no_cache:
        body["cache"] = False
    priority = args.priority

    async def create(process: bool) -> dict[str, Any]:
        key = str(uuid.uuid4())
        for attempt in range(1, 4):
            try:
                return await client.create_task(
                    SEARCH_TOOL,
                    agents=[agent],
                    parameters=body,
                    priority=priority,
                    idempotency_key=key,
                    source_task_id=source_id,
                    process=process,
                )
            except httpx.TransportError:
                if attempt == 3:
                    raise
                await asyncio.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    try:
        task = await create(True)
    except ApiError as error:
        if not _process_refused(error):
            raise
        task = await create(False)
    if task["status"] in ("CREATED", "UPLOADING"):
        task = await client.process(task["task_id"])
    return task


async def _wait(client: AgensiumClient, task: dict[str, Any], console: Console) -> dict[str, Any]:
    """Follow the task to its end over its event stream with one transient status line."""
    if task["status"] in TERMINAL_STATUSES:
        return task
    with console.status(f"{task['status'].lower()}…") as status:
        async with aclosing(client.events(task["task_id"])) as events:
            async for event in events:
                if event.event not in ("status", "progress", "done"):
                    continue
                payload = event.json()
                if event.event != "progress":
                    task = payload
                status.update(f"{(task.get('status') or '').lower()} {payload.get('progress') or 0}%")
                if event.event == "done" or task.get("status") in TERMINAL_STATUSES:
                    break
    if task.get("status") not in TERMINAL_STATUSES:
        task = await client.get_task(task["task_id"])
    return task


def _print_refusal(error: Mapping[str, Any], console: Console) -> None:
    """The API's (or the failed task's) sentence and, when it has them, the suggestions."""
    console.print(f"error: {error.get('code')}: {error.get('message')}", style="red", markup=False, highlight=False)
    details = error.get("details") or {}
    suggestions = [str(s) for s in details.get("suggestions") or []] if isinstance(details, Mapping) else []
    if suggestions:
        console.print(f"did you mean: {', '.join(suggestions)}", markup=False, highlight=False, soft_wrap=True)


async def run_search_task(
    client: AgensiumClient, args: argparse.Namespace, agent: str, parameters: dict[str, Any], console: Console
) -> tuple[dict[str, Any], dict[str, Any] | None, int]:
    """(task, the agent's result data or None, exit status): the task created, followed and read; a refusal or a
    failure printed on stderr (and, with --json, its error on stdout)."""
    try:
        task = await _create(client, args.task_id, agent, parameters, args)
    except ApiError as error:
        if error.status != 422:
            raise
        _print_refusal({"code": error.code, "message": error.message, "details": error.details}, console)
        if args.json:
            _print_json({"error": {"code": error.code, "message": error.message, "details": error.details}}, True)
        return {}, None, EXIT_TASK_FAILED
    task = await _wait(client, task, console)
    if task["status"] != "COMPLETED":
        _print_refusal(task.get("error") or {"code": task["status"], "message": f"task {task['task_id']}"}, console)
        if args.json:
            _print_json({"task": task}, compact=True)
        return task, None, EXIT_TASK_FAILED
    return task, agent_data(await client.result(task["task_id"]), agent), EXIT_OK


def agent_data(result: Mapping[str, Any], agent: str) -> dict[str, Any]:
    """The `data` of one agent's envelope in a task's result (agents keyed by id, or a list of envelopes)."""
    agents = result.get("agents") or {}
    envelopes = agents.values() if isinstance(agents, Mapping) else agents
    envelope = (agents.get(agent) if isinstance(agents, Mapping) else None) or next(
        (e for e in envelopes if isinstance(e, Mapping) and e.get("agent_id") == agent), {}
    )
    return dict(envelope.get("data") or {})


# --- printing -----------------------------------------------------------------------------------


def _stdout() -> Console:
    """Tables on stdout: as wide as the terminal, or as wide as they need in a pipe (nothing cut)."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if tty else 100_000, highlight=False, soft_wrap=not tty)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _is_number(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)


def table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Table:
    """One row per record, numbers right-aligned; an empty cell for null."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        numeric = _is_number([row.get(column) for row in rows])
        grid.add_column(column, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(row.get(column)) for column in columns))
    return grid


def position(first_label: str, total: int, page: int, pages: int, shown: int, page_size: int) -> str:
    """ "rows 51–100 of 1,234, page 2 of 25" (the rows of this page, then where the page is); "no rows match" when
    none does (there is no page)."""
    if not total:
        return f"no {first_label} match"
    if not shown:
        return f"{first_label} 0 of {total:,}, page {page} of {pages}"
    first = (page - 1) * page_size + 1
    return f"{first_label} {first:,}–{first + shown - 1:,} of {total:,}, page {page} of {pages}"


def format_bars(chart: Mapping[str, Any]) -> list[str]:
    """A text bar chart of the chart's first series, when it is simple: non-negative numbers, few labels."""
    labels = list(chart.get("labels") or [])
    series = list(chart.get("series") or [])
    if not labels or not series or len(labels) > CHART_MAX_BARS:
        return []
    values = list(series[0].get("values") or [])
    if len(values) != len(labels) or not _is_number(values) or any(v is None or v < 0 for v in values):
        return []
    top = max(values) or 1
    names = [_cell(label) for label in labels]
    width = min(max(len(n) for n in names), 30)
    lines = [str(series[0].get("name") or "")]
    for name, value in zip(names, values, strict=True):
        bar = "█" * round(CHART_WIDTH * value / top)
        lines.append(f"{name[:width].ljust(width)}  {bar} {_cell(value)}".rstrip())
    return lines


def print_page(data: Mapping[str, Any], cached: bool) -> None:
    rows = list(data.get("rows") or [])
    columns = list(data.get("columns") or (list(rows[0]) if rows else []))
    out = _stdout()
    if rows:
        out.print(table(columns, rows))
    line = position(
        "rows",
        int(data.get("total_rows") or 0),
        int(data.get("page") or 1),
        int(data.get("pages") or 0),
        len(rows),
        int(data.get("page_size") or len(rows) or 1),
    )
    out.print(line + (" (cached)" if cached else ""), markup=False)


def print_groups(data: Mapping[str, Any], cached: bool) -> None:
    groups = list(data.get("groups") or [])
    named = [*(data.get("group_keys") or []), *(data.get("metrics") or [])]  # the keys, then the metrics as asked
    columns = list(dict.fromkeys([*named, *(key for group in groups for key in group)]))
    out = _stdout()
    if groups:
        out.print(table(columns, groups))
    line = position(
        "groups",
        int(data.get("total_groups") or 0),
        int(data.get("page") or 1),
        int(data.get("pages") or 1),
        len(groups),
        int(data.get("page_size") or len(groups) or 1),
    )
    out.print(line + (" (cached)" if cached else ""), markup=False)
    bars = format_bars(data.get("chart") or {})
    if bars:
        out.print()
        for bar in bars:
            out.print(bar, markup=False)


# --- the commands -------------------------------------------------------------------------------


async def search_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    task, data, status = await run_search_task(client, args, "searcher", searcher_parameters(args), console)
    if data is None:
        return status
    if args.json:
        _print_json({"task": task, "result": data}, compact=True)
    else:
        print_page(data, bool(task.get("cached")))
    return EXIT_OK


async def aggregate_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    task, data, status = await run_search_task(client, args, "aggregator", aggregator_parameters(args), console)
    if data is None:
        return status
    if args.json:
        _print_json({"task": task, "result": data}, compact=True)
    else:
        print_groups(data, bool(task.get("cached")))
    return EXIT_OK
