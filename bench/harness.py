"""Plumbing shared by the service benchmarks: local services, child processes, a user, results.

The benchmarks talk to the service over HTTP only; this module merely starts it the way an
operator would (`agensium api`, `agensium worker`, `agensium users create`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import inspect
import json
import os
import platform
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import AliasChoices

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOCALHOST = "127.0.0.1"

# The scripts run as `python bench/<name>.py`: make the project importable without installing it.
if str(REPO_DIR) not in sys.path:
    sys.path.insert(1, str(REPO_DIR))

# The server settings every HTTP benchmark uses, for the real API and the bare baseline alike.
UVICORN_FLAGS = ("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def agensium_command() -> list[str]:
    """The `agensium` console script of this interpreter's environment, or its module equivalent."""
    script = Path(sys.executable).parent / "agensium"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "service.cli"]


def uvicorn_command(app: str, host: str, port: int, workers: int, factory: bool = False) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), *UVICORN_FLAGS]
    if factory:
        command.append("--factory")
    return command


@dataclass
class ChildProcess:
    """A server the benchmark started; stopped with SIGTERM to its own process group."""

    name: str
    command: list[str]
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}; command: {shlex.join(self.command)}\n"
                f"--- last lines of {self.log_path} ---\n{self.log_tail()}"
            )

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout_s)


def _die_with_parent() -> None:
    # A `kill -9` of the benchmark must not leave servers behind (Linux PR_SET_PDEATHSIG).
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def start_child(name: str, command: Sequence[str], env: Mapping[str, str], log_dir: Path) -> ChildProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=REPO_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: uvicorn's worker processes stop with it
            preexec_fn=_die_with_parent,
        )
    return ChildProcess(name, list(command), popen, log_path)


async def wait_until_http_ok(url: str, child: ChildProcess | None = None, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers 2xx, failing early if the child process died."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if child is not None:
                child.check_alive()
            try:
                response = await http.get(url)
                if response.is_success:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            await asyncio.sleep(0.1)
    tail = f"\n--- {child.log_path} ---\n{child.log_tail()}" if child else ""
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s ({last_error}){tail}")


def settings_env(settings: Any) -> dict[str, str]:
    """Environment variables that rebuild `settings` in a child process (every alias is set, so a
    stray DATABASE_URL in the parent's environment cannot win over the resolved one)."""
    env: dict[str, str] = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or not isinstance(value, str | int | float | bool | Path):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        alias = info.validation_alias
        names = [str(a) for a in alias.choices] if isinstance(alias, AliasChoices) else []
        for env_name in names or [f"AGENSIUM_{name.upper()}"]:
            env[env_name] = text
    return env


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@dataclass
class LocalService:
    """PostgreSQL/Redis/S3 from `service.dev.resolve_services`, and the service's own processes on top."""

    data_dir: Path
    force_embedded: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    children: list[ChildProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    _services: Any = None

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "bench-logs" / self.run_id

    async def __aenter__(self) -> LocalService:
        from service.config import Settings
        from service.dev import prepare_services, resolve_services

        # A key prefix of our own: the bench's queue and objects never mix with a dev server's.
        overrides: dict[str, Any] = {
            "key_prefix": f"bench-{self.run_id}-",
            "secret_key": secrets.token_urlsafe(32),  # the API refuses to start without one
            # The request-rate limiter runs on every request, as in production, but never refuses the load.
            "rate_limit_per_s": 1e9,
            "rate_limit_burst": 10**9,
            # Nor does the cap on a user's unfinished tasks (a create benchmark leaves every task CREATED).
            "max_unfinished_tasks": 10**9,
        }
        settings = Settings(**overrides)
        self._services = await maybe_await(resolve_services(settings, self.data_dir, self.force_embedded))
        resolved = self._services.settings
        await prepare_services(resolved)  # database, migrations (store.apply_migrations), bucket
        self.env = {**os.environ, **settings_env(resolved), **self.extra_env}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self._services is not None:
            await maybe_await(self._services.close())

    def start(self, name: str, command: Sequence[str]) -> ChildProcess:
        child = start_child(name, command, self.env, self.log_dir)
        self.children.append(child)
        return child

    def stop(self, child: ChildProcess) -> None:
        child.stop()
        self.children.remove(child)

    async def create_user(self, name: str = "bench", credits: int = 100_000_000) -> str:
        """`agensium users create` with a unique name; returns the new API key."""
        command = [*agensium_command(), "users", "create", f"{name}-{self.run_id}", "--credits", str(credits)]
        process = await asyncio.create_subprocess_exec(
            *command, env=self.env, cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        if process.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed ({process.returncode}):\n{stderr.decode()}")
        return str(json.loads(stdout.decode().strip().splitlines()[-1])["api_key"])


async def api_and_worker(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    say: Callable[[str], Any],
    started: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """(url, api key) of the service to measure: ``args.url``/``args.api_key`` when given, else a LocalService
    (entered on ``stack``) with a new user, one API process and one worker, started and answering. ``started``,
    when given, receives the LocalService ("service") and the worker's ChildProcess ("worker")."""
    if args.url is not None:
        return args.url, args.api_key
    service = await stack.enter_async_context(LocalService(args.data_dir, args.embedded, parse_env_pairs(args.env)))
    api_key = await service.create_user()
    port = free_port()
    api = service.start("api", [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port), "--workers", "1"])
    url = f"http://{LOCALHOST}:{port}"
    await wait_until_http_ok(f"{url}/healthz", api)
    worker = service.start("worker", [*agensium_command(), "worker"])
    if started is not None:
        started.update(service=service, worker=worker)
    say(f"API {url} and one worker started; logs in {service.log_dir}")
    return url, api_key


def add_service_arguments(parser: argparse.ArgumentParser, url_help: str) -> None:
    """The options every benchmark shares: a running API (--url/--api-key) or services to start."""
    parser.add_argument("--url", help=url_help)
    parser.add_argument("--api-key", help="API key for --url")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where embedded services keep their data"
    )
    parser.add_argument("--embedded", action="store_true", help="force embedded PostgreSQL/Redis/S3")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the API and worker"
    )


def check_service_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.url and not args.api_key:
        parser.error("--url needs --api-key")


def default_data_dir() -> Path:
    return Path(tempfile.gettempdir()) / "agensium-bench"


def parse_env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def machine_info() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported figure is a measured sample)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def write_results(kind: str, document: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{kind}-{stamp}.json"
    path.write_text(json.dumps({"benchmark": kind, "finished_at": stamp, **document}, indent=2) + "\n")
    return path
