"""Queue dispatch latency: from `POST /tasks/{id}/process` to the `PROCESSING` event, over HTTP only.

With an API and one worker running (started here against the local PostgreSQL/Redis/S3 unless
--url is given), it creates N tiny tasks (a 3-line CSV each, uploaded through the presigned PUT),
then for each task, one after another so the worker is idle every time:
  1. opens the task's SSE stream and reads the initial `status` event (the stream is live),
  2. takes the time, POSTs `process`,
  3. takes the time again when the `status` event with data.status == "PROCESSING" arrives,
  4. reads on until `done`, so the next task finds the worker idle again.
Reports p50/p90/p99/max of step 2 -> 3 against PRODUCT.md's targets (p50 <= 15 ms, p99 <= 50 ms),
and, for context, the `process` answer time and the end-to-end time until `done`.

With --throughput M it also queues M tiny tasks at once and counts `done` events on the caller's
event stream (`GET /api/v1/events`): tasks/s end to end on one worker (PRODUCT.md's target of
300/s is for no-op tasks; these run the chosen tool, so choose --agents for the lightest chain).

Prints a table; writes bench/results/dispatch-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, aclosing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import (
    add_service_arguments,
    agensium_command,
    api_and_worker,
    check_service_arguments,
    machine_info,
    maybe_await,
    percentile,
    write_results,
)
from rich.console import Console
from rich.table import Table

from service.client import TERMINAL_STATUSES, AgensiumClient

TARGET_P50_MS = 15.0
TARGET_P99_MS = 50.0
TARGET_THROUGHPUT = 300.0
TINY_CSV = "id,name,score\n1,alpha,0.5\n2,beta,0.75\n"
PREPARE_CONCURRENCY = 8


@dataclass
class DispatchSample:
    task_id: str
    dispatch_ms: float  # process POSTed -> PROCESSING event received
    process_answer_ms: float  # process POSTed -> its 202 answer
    done_ms: float  # process POSTed -> done event
    final_status: str


async def prepare_task(
    client: AgensiumClient, csv_path: Path, tool: str, agents: list[str] | None, parameters: dict[str, Any]
) -> str:
    """Create a task and upload its input through the presigned PUT; it is then ready to process."""
    # Every task uploads the same bytes: without `cache: false` all but the first would be result-cache hits,
    # completed at once without a worker.
    task = await client.create_task(tool, agents=agents, parameters={**parameters, "cache": False})
    size = len(TINY_CSV.encode())
    uploads = await client.upload_urls(
        task["task_id"], [{"name": "primary.csv", "content_type": "text/csv", "size": size}], has_parameters=False
    )
    await client.upload_presigned(uploads[0], csv_path)
    return str(task["task_id"])


async def prepare_tasks(
    client: AgensiumClient,
    csv_path: Path,
    count: int,
    tool: str,
    agents: list[str] | None,
    parameters: dict[str, Any],
) -> list[str]:
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def one() -> str:
        async with gate:
            return await prepare_task(client, csv_path, tool, agents, parameters)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def dispatch_once(client: AgensiumClient, task_id: str, timeout_s: float) -> DispatchSample:
    async with asyncio.timeout(timeout_s), aclosing(client.events(task_id)) as stream:
        first = await anext(stream)
        if first.event != "status":
            raise RuntimeError(f"task {task_id}: first event is {first.event!r}, expected the initial status")
        answers: list[float] = []
        started = time.perf_counter()
        process_call = asyncio.create_task(client.process(task_id))
        process_call.add_done_callback(lambda _: answers.append(time.perf_counter()))
        processing_at: float | None = None
        final_status = ""
        async for event in stream:
            if event.event == "status" and processing_at is None and event.json().get("status") == "PROCESSING":
                processing_at = time.perf_counter()
            if event.event == "done":
                final_status = str(event.json().get("status"))
                break
        done_at = time.perf_counter()
        await process_call
    if processing_at is None:
        raise RuntimeError(f"task {task_id} ended {final_status} without a PROCESSING status event")
    return DispatchSample(
        task_id=task_id,
        dispatch_ms=(processing_at - started) * 1000,
        process_answer_ms=(answers[0] - started) * 1000,
        done_ms=(done_at - started) * 1000,
        final_status=final_status,
    )


async def measure_throughput(
    work: list[tuple[AgensiumClient, list[str]]],
    timeout_s: float,
    worker_gap: tuple[Callable[[], Any], Callable[[], Any]] | None = None,
) -> dict[str, Any]:
    """Queue every task at once (each user's through its own client); count their `done` events on each user's
    stream. With `worker_gap` (stop, start), the worker is stopped while the tasks are queued and started again
    after: the rate from the first PROCESSING event to the last done is then the worker's alone (the `process`
    calls are not in it)."""
    task_ids = [task_id for _, ids in work for task_id in ids]
    pending = set(task_ids)
    statuses: dict[str, int] = {}
    finished = asyncio.Event()
    finished_at: float | None = None
    first_processing_at: float | None = None
    done_times: list[float] = []  # when each task's done event came, in order

    async def follow(client: AgensiumClient, subscribed: asyncio.Event, probe: list[str]) -> None:
        nonlocal finished_at, first_processing_at
        async with aclosing(client.user_events()) as stream:
            async for event in stream:
                data = event.json() if event.data.startswith("{") else {}
                if probe and data.get("task_id") == probe[0]:
                    subscribed.set()
                if first_processing_at is None and data.get("status") == "PROCESSING" and data["task_id"] in pending:
                    first_processing_at = time.perf_counter()
                if event.event == "done" and data.get("task_id") in pending:
                    pending.discard(data["task_id"])
                    done_times.append(time.perf_counter())
                    statuses[str(data.get("status"))] = statuses.get(str(data.get("status")), 0) + 1
                    if not pending:
                        finished_at = time.perf_counter()
                        finished.set()
                        return

    async def live_stream(client: AgensiumClient) -> asyncio.Task[None]:
        """The user's stream, once a probe's status change showed it is live (it has no greeting)."""
        subscribed, probe = asyncio.Event(), []
        follower = asyncio.create_task(follow(client, subscribed, probe))
        probe.append((await client.create_task("profile-my-data"))["task_id"])
        await client.upload_urls(probe[0], [{"name": "primary.csv", "content_type": "text/csv", "size": 1}], False)
        try:
            await asyncio.wait_for(subscribed.wait(), 10)
        except TimeoutError:
            print("warning: no event for the probe task on GET /api/v1/events; timing from now", file=sys.stderr)
        return follower

    followers = [await live_stream(client) for client, _ in work]
    gate = asyncio.Semaphore(32)

    async def queue(client: AgensiumClient, task_id: str) -> None:
        async with gate:
            await client.process(task_id)

    if worker_gap is not None:
        await maybe_await(worker_gap[0]())
    started = time.perf_counter()
    await asyncio.gather(*(queue(client, t) for client, ids in work for t in ids))
    queued_at = time.perf_counter()
    if worker_gap is not None:
        await maybe_await(worker_gap[1]())
        started = queued_at
    try:
        await asyncio.wait_for(finished.wait(), timeout_s)
    except TimeoutError:
        pass
    for follower in followers:
        follower.cancel()
    await asyncio.gather(*followers, return_exceptions=True)
    if worker_gap is not None:  # from the first task the new worker took: its start-up is not the service's rate
        started = first_processing_at or started
    elapsed = (finished_at or time.perf_counter()) - started
    completed = len(task_ids) - len(pending)
    # The second half of the tasks alone: a new worker's start-up (its agent processes warming up, 1-2 s of CPU
    # each, while it already runs tasks) is over by then.
    half = len(done_times) // 2
    second_half_s = done_times[-1] - done_times[half - 1] if half >= 2 else 0.0
    return {
        "tasks": len(task_ids),
        "users": len(work),
        "finished": completed,
        "by_status": statuses,
        "worker_alone": worker_gap is not None,
        "queue_all_s": round(queued_at - started, 3) if worker_gap is None else None,
        "elapsed_s": round(elapsed, 3),
        "tasks_per_s": round(completed / elapsed, 1) if elapsed else 0.0,
        "second_half_tasks_per_s": round((len(done_times) - half) / second_half_s, 1) if second_half_s else 0.0,
        "target_tasks_per_s": TARGET_THROUGHPUT,
    }


async def prepare_work(
    clients: list[AgensiumClient],
    csv_path: Path,
    count: int,
    tool: str,
    agents: list[str] | None,
    parameters: dict[str, Any],
) -> list[tuple[AgensiumClient, list[str]]]:
    """`count` tasks ready to process, spread evenly over the users."""
    shares = [count // len(clients) + (index < count % len(clients)) for index in range(len(clients))]
    return [
        (client, await prepare_tasks(client, csv_path, share, tool, agents, parameters))
        for client, share in zip(clients, shares, strict=True)
    ]


def worker_gap(started: dict[str, Any]) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(stop, start) of the benchmark's own worker."""
    service = started["service"]

    def stop() -> None:
        service.stop(started["worker"])

    async def start() -> None:
        started["worker"] = service.start("worker", [*agensium_command(), "worker"])

    return stop, start


def summarise(samples: list[DispatchSample]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(percentile(values, 50), 2),
            "p90_ms": round(percentile(values, 90), 2),
            "p99_ms": round(percentile(values, 99), 2),
            "max_ms": round(max(values), 2),
            "mean_ms": round(statistics.fmean(values), 2),
        }

    dispatch = stats([s.dispatch_ms for s in samples])
    return {
        "tasks": len(samples),
        "dispatch": dispatch,
        "process_answer": stats([s.process_answer_ms for s in samples]),
        "until_done": stats([s.done_ms for s in samples]),
        "final_statuses": {status: sum(s.final_status == status for s in samples) for status in TERMINAL_STATUSES},
        "targets": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
        "p50_met": dispatch["p50_ms"] <= TARGET_P50_MS,
        "p99_met": dispatch["p99_ms"] <= TARGET_P99_MS,
    }


def print_summary(summary: dict[str, Any], throughput: dict[str, Any] | None, console: Console) -> None:
    table = Table(title=f"idle dispatch over {summary['tasks']} tasks (ms from POST process)")
    for column in ("measure", "p50", "p90", "p99", "max", "mean"):
        table.add_column(column, justify="right")
    for key, label in (("dispatch", "-> PROCESSING event"), ("process_answer", "-> 202 answer"),
                       ("until_done", "-> done event")):  # fmt: skip
        row = summary[key]
        table.add_row(label, *(f"{row[k]:.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms")))
    console.print(table)
    verdict = "[green]met" if summary["p50_met"] and summary["p99_met"] else "[red]not met"
    console.print(f"targets p50 <= {TARGET_P50_MS:.0f} ms, p99 <= {TARGET_P99_MS:.0f} ms: {verdict}")
    console.print(f"final statuses: { {k: v for k, v in summary['final_statuses'].items() if v} }")
    if throughput:
        console.print(
            f"throughput: {throughput['finished']}/{throughput['tasks']} tasks done in {throughput['elapsed_s']} s "
            f"= {throughput['tasks_per_s']} tasks/s (target for no-op tasks: {TARGET_THROUGHPUT:.0f}/s); "
            f"{throughput['by_status']}"
        )


async def run(args: argparse.Namespace) -> int:
    console = Console()
    agents = [a for a in args.agents.split(",") if a] if args.agents else None
    parameters = json.loads(args.parameters)
    async with AsyncExitStack() as stack:
        started: dict[str, Any] = {}
        url, api_key = await api_and_worker(stack, args, console.print, started)
        client = await stack.enter_async_context(AgensiumClient(url, api_key, timeout=args.timeout))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dispatch-")))
        csv_path = scratch / "tiny.csv"
        csv_path.write_text(TINY_CSV)

        console.print(f"warming up with {args.warmup} task(s) (also waits for the worker to be up) ...")
        for task_id in await prepare_tasks(client, csv_path, args.warmup, args.tool, agents, parameters):
            await dispatch_once(client, task_id, timeout_s=args.worker_start_timeout)

        console.print(f"preparing {args.tasks} tasks ...")
        task_ids = await prepare_tasks(client, csv_path, args.tasks, args.tool, agents, parameters)
        samples = []
        for index, task_id in enumerate(task_ids, 1):
            samples.append(await dispatch_once(client, task_id, timeout_s=args.timeout))
            if index % 50 == 0:
                console.print(f"  {index}/{len(task_ids)}")
        summary = summarise(samples)

        throughput = drain = None
        if args.throughput:
            clients = [client]
            for _ in range(args.users - 1):  # users of their own: their streams, caps and event locks are apart
                key = await started["service"].create_user()
                clients.append(await stack.enter_async_context(AgensiumClient(url, key, timeout=args.timeout)))
            console.print(f"throughput: preparing {args.throughput} tasks of {len(clients)} user(s) ...")
            work = await prepare_work(clients, csv_path, args.throughput, args.tool, agents, parameters)
            throughput = await measure_throughput(work, timeout_s=max(60.0, args.throughput / 5))
            if "worker" in started:  # a worker of our own: once more with the worker alone
                console.print(f"throughput, worker alone: preparing {args.throughput} tasks ...")
                work = await prepare_work(clients, csv_path, args.throughput, args.tool, agents, parameters)
                drain = await measure_throughput(
                    work, timeout_s=max(60.0, args.throughput / 5), worker_gap=worker_gap(started)
                )

    print_summary(summary, throughput, console)
    if drain:
        console.print(
            f"worker alone (tasks queued while it was stopped): {drain['finished']}/{drain['tasks']} done in "
            f"{drain['elapsed_s']} s from the first PROCESSING = {drain['tasks_per_s']} tasks/s "
            f"(second half of the tasks: {drain['second_half_tasks_per_s']}/s); {drain['by_status']}"
        )
    path = write_results(
        "dispatch",
        {
            "machine": machine_info(),
            "url": url if args.url else "(started by the benchmark)",
            "tool": args.tool,
            "agents": agents,
            "parameters": parameters,
            "summary": summary,
            "throughput": throughput,
            "throughput_worker_alone": drain,
            "samples": [asdict(s) for s in samples],
        },
    )
    console.print(f"results: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_dispatch.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_service_arguments(parser, "use this running API (with a worker behind it) instead of starting both")
    parser.add_argument("--tasks", type=int, default=200, help="tasks measured one by one (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured tasks first (default: %(default)s)")
    parser.add_argument("--throughput", type=int, default=0, metavar="M", help="also queue M tasks at once")
    parser.add_argument(
        "--users",
        type=int,
        default=1,
        help="users the throughput tasks are spread over (needs a service the benchmark starts; default: 1)",
    )
    parser.add_argument("--tool", default="profile-my-data", help="tool of the tiny tasks (default: %(default)s)")
    parser.add_argument("--agents", metavar="A,B", help="agent chain of the tiny tasks (default: the tool's)")
    parser.add_argument(
        "--parameters",
        default="{}",
        metavar="JSON",
        help='parameters of the tiny tasks, e.g. \'{"sleeper": {"seconds": 0}}\' with --tool diagnostics',
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per task (default: 60)")
    parser.add_argument(
        "--worker-start-timeout", type=float, default=120.0, help="seconds allowed per warm-up task (default: 120)"
    )
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    if args.users > 1 and args.url:
        parser.error("--users needs a service the benchmark starts (no --url)")
    if args.tasks < 1 or args.warmup < 1:
        parser.error("--tasks and --warmup must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
