"""API request rate against a bare Starlette JSON endpoint, under the same uvicorn settings (wrk).

Drives, one server at a time so they never share the CPU:
  bare  POST /bare                 (parse a small JSON body, 201 JSON)     -- bench/bare_app.py
  bare  GET  /bare/{id}            (small JSON object)
  real  POST /api/v1/tasks         {"tool_id": "profile-my-data"} with a Bearer key
  real  GET  /api/v1/tasks/{id}    of a task created beforehand
with wrk (64 connections, 2 threads, ~10 s each, after a short warm-up), for 1 and 2 uvicorn
workers, and reports requests/s, p99 latency and the real/bare ratios against PRODUCT.md's
targets: POST >= 35 % and GET >= 50 % of bare, p99 < 50 ms.

Both servers run with uvloop, httptools and no access log. The real API is started with
`agensium api --workers N` (or, with --api-app, under exactly the bare app's uvicorn command line)
against the local PostgreSQL/Redis/S3 that `agensium dev` would use (embedded ones where none run),
with a fresh user created by `agensium users create`. With --url/--api-key an API that is already
running is measured instead (then give --workers as the number of workers it runs).

Needs wrk: `apt-get install -y wrk`. Prints a table; writes bench/results/api-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BENCH_DIR,
    LOCALHOST,
    ChildProcess,
    LocalService,
    add_service_arguments,
    agensium_command,
    check_service_arguments,
    free_port,
    machine_info,
    parse_env_pairs,
    uvicorn_command,
    wait_until_http_ok,
    write_results,
)
from rich.console import Console
from rich.table import Table

TARGET_POST_RATIO = 0.35
TARGET_GET_RATIO = 0.50
TARGET_P99_MS = 50.0
CREATE_BODY = json.dumps({"tool_id": "profile-my-data"})

# wrk's Lua hooks: the request, and a machine-readable summary line (latencies in microseconds).
LUA_TEMPLATE = """
wrk.method = {method}
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth_line}

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {{\\"requests\\": %.0f, \\"duration_us\\": %.0f, \\"non_2xx_3xx\\": %.0f, " ..
    "\\"connect_errors\\": %.0f, \\"read_errors\\": %.0f, \\"write_errors\\": %.0f, \\"timeouts\\": %.0f, " ..
    "\\"mean_us\\": %.1f, \\"max_us\\": %.0f, \\"p50_us\\": %.0f, \\"p90_us\\": %.0f, \\"p99_us\\": %.0f}}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(method: str, body: str | None, api_key: str | None) -> str:
    auth_line = f'wrk.headers["Authorization"] = {lua_string("Bearer " + api_key)}' if api_key else ""
    return LUA_TEMPLATE.format(
        method=lua_string(method), body=lua_string(body) if body is not None else "nil", auth_line=auth_line
    )


@dataclass
class WrkRun:
    label: str
    url: str
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx_3xx: int
    socket_errors: int
    raw_output: str

    @property
    def clean(self) -> bool:
        return self.non_2xx_3xx == 0 and self.socket_errors == 0


def parse_wrk_output(label: str, url: str, output: str) -> WrkRun:
    line = next((x for x in output.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"no summary line in wrk's output:\n{output}")
    summary = json.loads(line.removeprefix("WRKJSON "))
    duration_s = summary["duration_us"] / 1e6
    return WrkRun(
        label=label,
        url=url,
        requests=int(summary["requests"]),
        duration_s=duration_s,
        requests_per_s=summary["requests"] / duration_s if duration_s else 0.0,
        p50_ms=summary["p50_us"] / 1000,
        p90_ms=summary["p90_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        mean_ms=summary["mean_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        non_2xx_3xx=int(summary["non_2xx_3xx"]),
        socket_errors=int(
            summary["connect_errors"] + summary["read_errors"] + summary["write_errors"] + summary["timeouts"]
        ),
        raw_output=output,
    )


@dataclass(frozen=True)
class WrkSettings:
    connections: int
    threads: int
    duration_s: int
    warmup_s: int
    script_dir: Path


def run_wrk(label: str, url: str, script: str, settings: WrkSettings, duration_s: int) -> WrkRun:
    script_path = settings.script_dir / f"{label.replace(' ', '-').replace('/', '_')}.lua"
    script_path.write_text(script)
    command = [
        "wrk", "--threads", str(settings.threads), "--connections", str(settings.connections),
        "--duration", f"{duration_s}s", "--timeout", "5s", "--latency", "--script", str(script_path), url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    return parse_wrk_output(label, url, done.stdout)


@dataclass(frozen=True)
class Endpoints:
    name: str  # "bare" | "real"
    base_url: str
    post_path: str
    get_path: str
    api_key: str | None


async def check_endpoints(endpoints: Endpoints) -> None:
    """One POST and one GET by hand first: a 401 or 404 should stop the run, not be benchmarked."""
    headers = {"Content-Type": "application/json"}
    if endpoints.api_key:
        headers["Authorization"] = f"Bearer {endpoints.api_key}"
    async with httpx.AsyncClient(base_url=endpoints.base_url, headers=headers, timeout=10) as http:
        for method, path, expected in (("POST", endpoints.post_path, 201), ("GET", endpoints.get_path, 200)):
            response = await http.request(method, path, content=CREATE_BODY if method == "POST" else None)
            if response.status_code != expected:
                raise RuntimeError(
                    f"{endpoints.name}: {method} {path} answered {response.status_code}, expected {expected}: "
                    f"{response.text[:300]}"
                )


async def measure(endpoints: Endpoints, workers: int, settings: WrkSettings) -> dict[str, WrkRun]:
    await check_endpoints(endpoints)
    post_url = endpoints.base_url + endpoints.post_path
    get_url = endpoints.base_url + endpoints.get_path
    post_script = lua_script("POST", CREATE_BODY, endpoints.api_key)
    get_script = lua_script("GET", None, endpoints.api_key)
    label = f"{endpoints.name} w{workers}"
    if settings.warmup_s:
        await asyncio.to_thread(run_wrk, f"{label} warmup", post_url, post_script, settings, settings.warmup_s)
    post = await asyncio.to_thread(run_wrk, f"{label} POST", post_url, post_script, settings, settings.duration_s)
    get = await asyncio.to_thread(run_wrk, f"{label} GET", get_url, get_script, settings, settings.duration_s)
    return {"post": post, "get": get}


async def create_task_id(base_url: str, api_key: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        response = await http.post("/api/v1/tasks", content=CREATE_BODY, headers={"Authorization": f"Bearer {api_key}"})
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/v1/tasks answered {response.status_code}: {response.text[:300]}")
    return str(response.json()["task_id"])


async def measure_bare(workers: int, settings: WrkSettings, service: LocalService | None, log_dir: Path) -> Any:
    from harness import start_child

    port = free_port()
    command = uvicorn_command("bare_app:app", LOCALHOST, port, workers) + ["--app-dir", str(BENCH_DIR)]
    child = service.start("bare", command) if service else start_child("bare", command, _plain_env(), log_dir)
    try:
        base_url = f"http://{LOCALHOST}:{port}"
        await wait_until_http_ok(f"{base_url}/bare/ready", child)
        endpoints = Endpoints("bare", base_url, "/bare", "/bare/00000000-0000-0000-0000-000000000000", None)
        return await measure(endpoints, workers, settings), command
    finally:
        _stop(child, service)


async def measure_real_started(
    workers: int, settings: WrkSettings, service: LocalService, api_key: str, api_app: str | None
) -> Any:
    port = free_port()
    if api_app:
        command = uvicorn_command(api_app, LOCALHOST, port, workers, factory=True)
    else:
        command = [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port), "--workers", str(workers)]
    child = service.start("api", command)
    try:
        base_url = f"http://{LOCALHOST}:{port}"
        await wait_until_http_ok(f"{base_url}/healthz", child)
        task_id = await create_task_id(base_url, api_key)
        endpoints = Endpoints("real", base_url, "/api/v1/tasks", f"/api/v1/tasks/{task_id}", api_key)
        return await measure(endpoints, workers, settings), command
    finally:
        _stop(child, service)


async def measure_real_external(workers: int, settings: WrkSettings, url: str, api_key: str) -> Any:
    base_url = url.rstrip("/")
    task_id = await create_task_id(base_url, api_key)
    endpoints = Endpoints("real", base_url, "/api/v1/tasks", f"/api/v1/tasks/{task_id}", api_key)
    return await measure(endpoints, workers, settings), ["(external)", base_url]


def _plain_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _stop(child: ChildProcess, service: LocalService | None) -> None:
    if service is not None:
        service.stop(child)
    else:
        child.stop()


def compare(workers: int, bare: dict[str, WrkRun], real: dict[str, WrkRun]) -> list[dict[str, Any]]:
    rows = []
    for route, target in (("post", TARGET_POST_RATIO), ("get", TARGET_GET_RATIO)):
        ratio = real[route].requests_per_s / bare[route].requests_per_s if bare[route].requests_per_s else 0.0
        rows.append(
            {
                "workers": workers,
                "route": route.upper(),
                "bare_rps": round(bare[route].requests_per_s, 1),
                "real_rps": round(real[route].requests_per_s, 1),
                "ratio": round(ratio, 3),
                "ratio_target": target,
                "ratio_met": ratio >= target,
                "bare_p99_ms": round(bare[route].p99_ms, 2),
                "real_p99_ms": round(real[route].p99_ms, 2),
                "p99_target_ms": TARGET_P99_MS,
                "p99_met": real[route].p99_ms < TARGET_P99_MS,
                "clean": bare[route].clean and real[route].clean,
                "real_non_2xx": real[route].non_2xx_3xx,
                "real_socket_errors": real[route].socket_errors,
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="API vs bare Starlette (wrk)")
    for column in ("workers", "route", "bare req/s", "real req/s", "real/bare", "target", "bare p99", "real p99",
                   "p99 < 50 ms", "errors"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        errors = "-" if row["clean"] else f"[red]{row['real_non_2xx']} non-2xx, {row['real_socket_errors']} sock"
        table.add_row(
            str(row["workers"]),
            row["route"],
            f"{row['bare_rps']:,.0f}",
            f"{row['real_rps']:,.0f}",
            f"{row['ratio']:.0%}",
            ("[green]" if row["ratio_met"] else "[red]") + f">= {row['ratio_target']:.0%}",
            f"{row['bare_p99_ms']:.1f} ms",
            f"{row['real_p99_ms']:.1f} ms",
            "[green]yes" if row["p99_met"] else "[red]no",
            errors,
        )
    console.print(table)


async def run(args: argparse.Namespace) -> int:
    console = Console()
    if shutil.which("wrk") is None:
        console.print("[red]wrk is not installed[/red]: apt-get install -y wrk")
        return 2
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        settings = WrkSettings(args.connections, args.threads, args.duration, args.warmup, Path(scratch))
        async with AsyncExitStack() as stack:
            service: LocalService | None = None
            api_key = args.api_key
            if args.url is None:
                service = await stack.enter_async_context(
                    LocalService(args.data_dir, args.embedded, parse_env_pairs(args.env))
                )
                api_key = await service.create_user()
                console.print(f"services ready; logs in {service.log_dir}")
            for workers in args.workers:
                console.print(f"[bold]{workers} worker(s)[/bold]: bare app ...")
                bare, bare_command = await measure_bare(workers, settings, service, Path(scratch))
                console.print(f"[bold]{workers} worker(s)[/bold]: real API ...")
                if service is not None:
                    real, real_command = await measure_real_started(workers, settings, service, api_key, args.api_app)
                else:
                    real, real_command = await measure_real_external(workers, settings, args.url, api_key)
                rows += compare(workers, bare, real)
                runs.append(
                    {
                        "workers": workers,
                        "bare_command": bare_command,
                        "real_command": real_command,
                        "bare": {k: asdict(v) for k, v in bare.items()},
                        "real": {k: asdict(v) for k, v in real.items()},
                    }
                )
    print_table(rows, console)
    if not all(row["clean"] for row in rows):
        console.print("[red]some runs had non-2xx answers or socket errors: their figures are not comparable")
    path = write_results(
        "api",
        {
            "machine": machine_info(),
            "wrk": {"connections": args.connections, "threads": args.threads, "duration_s": args.duration},
            "targets": {"post_ratio": TARGET_POST_RATIO, "get_ratio": TARGET_GET_RATIO, "p99_ms": TARGET_P99_MS},
            "rows": rows,
            "runs": runs,
        },
    )
    console.print(f"results: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_api.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_service_arguments(parser, "measure this running API instead of starting one (needs --api-key)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts to measure (default: 1 2)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of POST warm-up per server (default: 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default: %(default)s)")
    parser.add_argument(
        "--api-app",
        metavar="MODULE:FACTORY",
        help="run the real API as `uvicorn --factory MODULE:FACTORY` with the bare app's exact flags "
        "instead of `agensium api` (e.g. service.api.app:create_app)",
    )
    args = parser.parse_args(argv)
    check_service_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
