"""Scale-out: tiny tasks end to end with one API process and one worker, then with two API processes and two
worker processes on the same PostgreSQL/Redis/S3, the same number of tasks each time.

For each layout it starts the processes (`agensium api --workers 1` on a port of its own per API process,
`agensium worker` per worker) under a key prefix of its own, creates a user, warms the workers up, then
prepares `--tasks` tasks beforehand (create + presigned PUT of a 3-line CSV, spread over the API processes) and
measures: the user's event stream (`GET /api/v1/events`) is opened on API A, every task is POSTed `process`
through the API process it was prepared on (so half of them through API B in the second layout), and the clock
stops at the last task's `done` on API A's stream.

Reported per layout: tasks/s, the `done` events API A's stream saw of tasks processed through each API process
(all of them: a stream on A carries the events of tasks processed through B), and the CPU seconds each process
used while measuring (psutil; an API or worker counts its child processes, e.g. the agent pool), the
PostgreSQL/Redis/S3 servers' (by process name) and the machine's in total. Then the ratio of the two layouts'
tasks/s against the goal of 1.7x. The second layout needs the CPU the first left idle: on a 2-core machine the
ratio is bounded by the cores, which the CPU columns show.

Prints tables; writes bench/results/scaleout-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from harness import (
    LOCALHOST,
    ChildProcess,
    LocalService,
    agensium_command,
    default_data_dir,
    free_port,
    machine_info,
    parse_env_pairs,
    wait_until_http_ok,
    write_results,
)
from rich.console import Console
from rich.table import Table

from service.client import AgensiumClient

TARGET_RATIO = 1.7
TINY_CSV = "id,name,score\n1,alpha,0.5\n2,beta,0.75\n"
PREPARE_CONCURRENCY = 8
PROCESS_CONCURRENCY = 32
WORKER_READY = " ready (queue "  # worker/settings.py logs it once its start-up is done
# What the shared servers' processes are called (the system's or the embedded ones).
SERVER_PROCESS_NAMES = {
    "postgres": "PostgreSQL",
    "redis-server": "Redis",
    "valkey-server": "Redis",
    "weed": "S3 (SeaweedFS)",
}


@dataclass(frozen=True)
class Layout:
    name: str
    apis: int
    workers: int


@dataclass
class Running:
    """The processes of one layout, and clients of its API processes (index 0 is API A)."""

    apis: list[ChildProcess]
    workers: list[ChildProcess]
    clients: list[AgensiumClient]


@dataclass
class TaskSpec:
    tool: str
    agents: list[str] | None
    parameters: dict[str, Any]


# --- CPU accounting -----------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of `process`, its live descendants and the children it reaped."""
    total = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL/Redis/S3 processes, by server (a postmaster counts its reaped
    backends, so connections that came and went are not lost)."""
    totals: dict[str, float] = {}
    for process in psutil.process_iter(["name"]):
        label = SERVER_PROCESS_NAMES.get(process.info["name"] or "")
        if label is None:
            continue
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        used = times.user + times.system + times.children_user + times.children_system
        totals[label] = totals.get(label, 0.0) + used
    return totals


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every core)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@dataclass
class CpuSnapshot:
    processes: dict[str, float]
    servers: dict[str, float]
    machine: float

    @classmethod
    def take(cls, children: dict[str, ChildProcess]) -> CpuSnapshot:
        """`children` by role ("API A", "worker 0", ...); the benchmark's own process counts without them."""
        processes = {role: cpu_seconds(psutil.Process(child.popen.pid)) for role, child in children.items()}
        own = psutil.Process(os.getpid()).cpu_times()
        processes["bench client (this script)"] = own.user + own.system
        return cls(processes, server_cpu_seconds(), machine_busy_seconds())

    def used_since(self, before: CpuSnapshot) -> dict[str, float]:
        """CPU seconds per process and server between `before` and this snapshot, and the machine's total."""
        used = {name: self.processes[name] - before.processes.get(name, 0.0) for name in self.processes}
        used |= {name: self.servers[name] - before.servers.get(name, 0.0) for name in self.servers}
        machine = self.machine - before.machine
        used["anything else on the machine"] = machine - sum(used.values())
        used["machine (all processes)"] = machine
        return {name: round(seconds, 2) for name, seconds in used.items()}


# --- the service's processes ------------------------------------------------------------------------


async def start_layout(service: LocalService, layout: Layout, user_name: str, timeout_s: float) -> Running:
    """API processes on ports of their own and worker processes, all answering / ready; clients for a new user."""
    apis, urls = [], []
    for index in range(layout.apis):
        port = free_port()
        command = [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port), "--workers", "1"]
        apis.append(service.start(f"{layout.name}-{api_label(index).replace(' ', '-')}", command))
        urls.append(f"http://{LOCALHOST}:{port}")
    workers = [
        service.start(f"{layout.name}-worker-{i}", [*agensium_command(), "worker"]) for i in range(layout.workers)
    ]
    for api, url in zip(apis, urls, strict=True):
        await wait_until_http_ok(f"{url}/healthz", api)
    await asyncio.gather(*(wait_ready(worker) for worker in workers))
    api_key = await service.create_user(user_name)
    clients = [AgensiumClient(url, api_key, timeout=timeout_s) for url in urls]
    return Running(apis, workers, clients)


async def wait_ready(worker: ChildProcess, timeout_s: float = 120.0) -> None:
    """Until the worker's log says its start-up is done (its queue polling begins then)."""
    deadline = time.monotonic() + timeout_s
    while WORKER_READY not in worker.log_tail(400):
        worker.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{worker.name} not ready after {timeout_s:.0f} s\n{worker.log_tail()}")
        await asyncio.sleep(0.1)


def pin_pairs(running: Running) -> dict[str, list[int]]:
    """Pin API process i and worker process i (with their child processes) to core i (modulo the cores), so that
    each API + worker pair has one core and the shared servers float: what the second pair adds is then a core's
    worth of CPU, as on a machine with a core to spare. Returns the cores by process."""
    cores = os.cpu_count() or 1
    pinned: dict[str, list[int]] = {}
    for index, child in [*enumerate(running.apis), *enumerate(running.workers)]:
        root = psutil.Process(child.popen.pid)
        for member in [root, *root.children(recursive=True)]:
            member.cpu_affinity([index % cores])
        pinned[child.name] = [index % cores]
    return pinned


async def stop_layout(service: LocalService, running: Running) -> None:
    for client in running.clients:
        await client.aclose()
    for child in [*running.workers, *running.apis]:
        await asyncio.to_thread(service.stop, child)


# --- tasks --------------------------------------------------------------------------------------------


async def prepare_task(client: AgensiumClient, csv_path: Path, spec: TaskSpec) -> str:
    """Create a task and upload its input through the presigned PUT; it is then ready to process."""
    # Every task uploads the same bytes: without `cache: false` all but the first would be result-cache hits,
    # completed at once without a worker.
    task = await client.create_task(spec.tool, agents=spec.agents, parameters={**spec.parameters, "cache": False})
    size = len(TINY_CSV.encode())
    uploads = await client.upload_urls(
        task["task_id"], [{"name": "primary.csv", "content_type": "text/csv", "size": size}], has_parameters=False
    )
    await client.upload_presigned(uploads[0], csv_path)
    return str(task["task_id"])


async def prepare_tasks(
    clients: list[AgensiumClient], csv_path: Path, count: int, spec: TaskSpec
) -> list[tuple[int, str]]:
    """`count` tasks ready to process, as (index of the API process it goes through, task id), spread evenly."""
    gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def one(index: int) -> tuple[int, str]:
        via = index % len(clients)
        async with gate:
            return via, await prepare_task(clients[via], csv_path, spec)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def process_all(clients: list[AgensiumClient], tasks: list[tuple[int, str]], timeout_s: float) -> dict[str, Any]:
    """Open the user's stream on API A, queue every task through its API process, and wait for each `done` on
    API A's stream: the elapsed time, and which API process each `done` seen came through."""
    via = dict((task_id, index) for index, task_id in tasks)
    pending = set(via)
    by_status: Counter[str] = Counter()
    seen_via: Counter[int] = Counter()
    opened = asyncio.Event()
    finished_at: float | None = None

    async def follow() -> None:
        nonlocal finished_at
        async with aclosing(clients[0].user_events(on_open=opened.set)) as stream:
            async for event in stream:
                if event.event != "done":
                    continue
                data = event.json()
                if data.get("task_id") in pending:
                    pending.discard(data["task_id"])
                    by_status[str(data.get("status"))] += 1
                    seen_via[via[data["task_id"]]] += 1
                    if not pending:
                        finished_at = time.perf_counter()
                        return

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(opened.wait(), 30)  # the stream follows from now on: no done can be missed
    gate = asyncio.Semaphore(PROCESS_CONCURRENCY)

    async def queue(index: int, task_id: str) -> None:
        async with gate:
            await clients[index].process(task_id)

    started = time.perf_counter()
    await asyncio.gather(*(queue(index, task_id) for index, task_id in tasks))
    queued_at = time.perf_counter()
    try:
        await asyncio.wait_for(follower, timeout_s)
    except TimeoutError:
        pass
    elapsed = (finished_at or time.perf_counter()) - started
    finished = len(tasks) - len(pending)
    queued_via = Counter(index for index, _ in tasks)
    return {
        "tasks": len(tasks),
        "finished": finished,
        "by_status": dict(by_status),
        "queue_all_s": round(queued_at - started, 3),
        "elapsed_s": round(elapsed, 3),
        "tasks_per_s": round(finished / elapsed, 2) if elapsed else 0.0,
        "processed_via": {api_label(i): queued_via[i] for i in sorted(queued_via)},
        "done_seen_on_A_via": {api_label(i): seen_via[i] for i in sorted(queued_via)},
    }


def api_label(index: int) -> str:
    return f"API {'AB'[index]}" if index < 2 else f"API {index}"


async def measure_layout(
    service: LocalService, layout: Layout, args: argparse.Namespace, csv_path: Path, spec: TaskSpec, console: Console
) -> dict[str, Any]:
    running = await start_layout(service, layout, f"scaleout-{layout.name}", args.timeout)
    pinned = pin_pairs(running) if args.pin else {}
    try:
        console.print(
            f"[bold]{layout.name}[/]: {layout.apis} API + {layout.workers} worker process(es) up; "
            f"warming up with {args.warmup} task(s) ..."
        )
        warmup = await prepare_tasks(running.clients, csv_path, args.warmup, spec)
        await process_all(running.clients, warmup, timeout_s=args.timeout)
        console.print(f"  preparing {args.tasks} tasks ...")
        tasks = await prepare_tasks(running.clients, csv_path, args.tasks, spec)
        console.print("  processing them ...")
        children = {api_label(i): child for i, child in enumerate(running.apis)}
        children |= {f"worker {i}": child for i, child in enumerate(running.workers)}
        before = CpuSnapshot.take(children)
        outcome = await process_all(running.clients, tasks, timeout_s=max(args.timeout, args.tasks / 2))
        outcome["cpu_s"] = CpuSnapshot.take(children).used_since(before)
        outcome["layout"] = {"apis": layout.apis, "workers": layout.workers, "pinned_to_cores": pinned}
        outcome["commands"] = {role: " ".join(child.command) for role, child in children.items()}
        return outcome
    finally:
        await stop_layout(service, running)


# --- report -------------------------------------------------------------------------------------------


def print_report(results: dict[str, dict[str, Any]], ratio: float, console: Console) -> None:
    table = Table(title="tiny tasks end to end, counted on API A's user stream")
    for column in ("layout", "tasks", "done", "elapsed s", "tasks/s", "processed via", "done seen on A"):
        table.add_column(column, justify="right")
    for name, outcome in results.items():
        table.add_row(
            name,
            str(outcome["tasks"]),
            str(outcome["finished"]),
            f"{outcome['elapsed_s']:.2f}",
            f"{outcome['tasks_per_s']:.1f}",
            ", ".join(f"{k}: {v}" for k, v in outcome["processed_via"].items()),
            ", ".join(f"{k}: {v}" for k, v in outcome["done_seen_on_A_via"].items()),
        )
    console.print(table)

    cpu = Table(title="CPU seconds while processing (user + system)")
    cpu.add_column("process")
    for name in results:
        cpu.add_column(name, justify="right")
    names: list[str] = []
    for outcome in results.values():
        names += [n for n in outcome["cpu_s"] if n not in names]
    for process in names:
        cpu.add_row(process, *(f"{o['cpu_s'].get(process, 0.0):.2f}" for o in results.values()))
    cpu.add_row(
        "elapsed x cores (available)", *(f"{o['elapsed_s'] * (os.cpu_count() or 1):.2f}" for o in results.values())
    )
    console.print(cpu)
    verdict = "[green]met" if ratio >= TARGET_RATIO else "[red]not met"
    console.print(f"scale-out ratio {ratio:.2f}x (goal >= {TARGET_RATIO}x on {os.cpu_count()} cores): {verdict}")


def cross_api_check(outcome: dict[str, Any]) -> bool:
    """Whether API A's stream saw the `done` of every task processed through every API process."""
    return bool(outcome["done_seen_on_A_via"] == outcome["processed_via"] and outcome["finished"] == outcome["tasks"])


async def run(args: argparse.Namespace) -> int:
    console = Console()
    spec = TaskSpec(
        args.tool, [a for a in args.agents.split(",") if a] if args.agents else None, json.loads(args.parameters)
    )
    layouts = [Layout("one", 1, 1), Layout("scaled", args.apis, args.workers)]
    results: dict[str, dict[str, Any]] = {}
    async with AsyncExitStack() as stack:
        service = await stack.enter_async_context(LocalService(args.data_dir, args.embedded, parse_env_pairs(args.env)))
        console.print(f"services ready; logs in {service.log_dir}")
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scaleout-")))
        csv_path = scratch / "tiny.csv"
        csv_path.write_text(TINY_CSV)
        for layout in layouts:
            results[layout.name] = await measure_layout(service, layout, args, csv_path, spec, console)

    one, scaled = results["one"]["tasks_per_s"], results["scaled"]["tasks_per_s"]
    ratio = scaled / one if one else 0.0
    print_report(results, ratio, console)
    crossed = cross_api_check(results["scaled"])
    console.print(
        "stream on API A saw every done of the tasks processed through API B: "
        + ("[green]yes" if crossed else "[red]NO")
    )
    path = write_results(
        "scaleout",
        {
            "machine": machine_info(),
            "tool": spec.tool,
            "agents": spec.agents,
            "parameters": spec.parameters,
            "env": parse_env_pairs(args.env),
            "layouts": results,
            "ratio": round(ratio, 3),
            "target_ratio": TARGET_RATIO,
            "ratio_met": ratio >= TARGET_RATIO,
            "stream_on_A_saw_B": crossed,
        },
    )
    console.print(f"results: {path}")
    return 0 if crossed else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_scaleout.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=300, help="tasks measured per layout (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=16, help="unmeasured tasks first (default: %(default)s)")
    parser.add_argument("--apis", type=int, default=2, help="API processes of the scaled layout (default: 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the scaled layout (default: 2)")
    parser.add_argument("--tool", default="profile-my-data", help="tool of the tiny tasks (default: %(default)s)")
    parser.add_argument(
        "--agents", default="unified-profiler", metavar="A,B", help="agent chain (default: %(default)s)"
    )
    parser.add_argument(
        "--parameters",
        default="{}",
        metavar="JSON",
        help='parameters of the tiny tasks, e.g. \'{"sleeper": {"seconds": 0}}\' with --tool diagnostics '
        "--agents '' --env AGENSIUM_DIAGNOSTICS=true",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per batch (default: 120)")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where embedded services keep their data"
    )
    parser.add_argument("--embedded", action="store_true", help="force embedded PostgreSQL/Redis/S3")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin each API + worker pair to a core of its own (pair i on core i); the servers float",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the APIs and workers"
    )
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.warmup < 1 or args.apis < 1 or args.workers < 1:
        parser.error("--tasks, --warmup, --apis and --workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
