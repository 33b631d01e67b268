"""`agensium dev`: find or start PostgreSQL, Redis and S3, then run the API and a worker, started again
with backoff whenever they exit, until Ctrl-C/SIGTERM.

Services come from, in order: the settings (environment variables such as DATABASE_URL), servers
already listening on their default local ports (PostgreSQL 5432, Redis 6379; S3 has no usual local
port), or embedded servers started from pip packages with their data under one data dir. The data dir
also keeps the stream-token `secret_key` and the embedded S3's credentials, random on the first start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import AliasChoices

from service import embedded
from service.cli import command_path
from service.config import Settings
from service.embedded import LOCALHOST, EmbeddedServer

log = logging.getLogger(__name__)

# Embedded servers prefer these ports (a browser or a script keeps working across restarts) and take
# free ones when they are taken.
DEFAULT_EMBEDDED_PORTS: Mapping[str, int] = {"postgres": 54329, "valkey": 63799, "seaweedfs": 8333}
LOCAL_POSTGRES_PORT = 5432
LOCAL_REDIS_PORT = 6379
DEV_ADMIN_NAME = "dev-admin"
DEV_ADMIN_CREDITS = 1_000_000
SECRET_KEY_FILE = "secret_key"
CHILD_STOP_GRACE_S = 15.0
# A crashed API or worker is started again after RESTART_DELAY_S, doubling with each crash in a row up to
# RESTART_DELAY_MAX_S; a child that stayed up RESTART_RESET_AFTER_S starts over from the first delay.
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 30.0
RESTART_RESET_AFTER_S = 60.0
SUPERVISE_INTERVAL_S = 0.1
API_START_TIMEOUT_S = 60.0

T = TypeVar("T")


# --- resolving services ------------------------------------------------------------------------


@dataclass
class ServiceStack:
    """Settings with every service URL filled in, and the embedded servers started to get there."""

    settings: Settings
    servers: list[EmbeddedServer] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # service -> "settings" | "local" | "embedded"

    def close(self) -> None:
        """Stop the servers this stack started, last started first."""
        while self.servers:
            server = self.servers.pop()
            try:
                server.stop()
            except Exception:
                log.exception("could not stop %s", server.name)

    def describe(self) -> list[str]:
        return [
            f"PostgreSQL  {_without_password(self.settings.database_url)}  ({self.sources['postgres']})",
            f"Redis       {_without_password(self.settings.redis_url)}  ({self.sources['redis']})",
            f"S3          {self.settings.s3_endpoint_url}  bucket {self.settings.s3_bucket}  ({self.sources['s3']})",
        ]

    def __enter__(self) -> ServiceStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def resolve_services(
    settings: Settings,
    data_dir: Path,
    force_embedded: bool = False,
    *,
    ephemeral: bool = False,
    preferred_ports: Mapping[str, int] = DEFAULT_EMBEDDED_PORTS,
) -> ServiceStack:
    """Fill in the URLs of PostgreSQL, Redis and S3, starting embedded servers where needed.

    A URL counts as configured when it was set explicitly (environment variable, or passed to
    Settings). `force_embedded` starts all three embedded servers regardless. An embedded S3 gets the
    random credentials of the data dir (embedded.seaweedfs_credentials). `ephemeral` trades
    crash safety for speed (test runs). Call from the main thread: embedded servers die with the
    thread that started them. The caller owns the stack and must `close()` it.
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    configured = settings.model_fields_set
    stack = ServiceStack(settings=settings)
    updates: dict[str, Any] = {}
    try:
        if not force_embedded and "database_url" in configured:
            stack.sources["postgres"] = "settings"
        elif not force_embedded and _local_postgres_answers():
            updates["database_url"] = _postgres_url(LOCAL_POSTGRES_PORT, settings.database_url)
            stack.sources["postgres"] = "local"
        else:
            port = _embedded_port(data_dir, "postgres", preferred_ports["postgres"])
            server = embedded.start_postgres(data_dir, port, ephemeral=ephemeral)
            stack.servers.append(server)
            updates["database_url"] = _postgres_url(port, settings.database_url)
            stack.sources["postgres"] = "embedded"

        if not force_embedded and "redis_url" in configured:
            stack.sources["redis"] = "settings"
        elif not force_embedded and embedded.redis_answers(LOCAL_REDIS_PORT, timeout_s=1):
            updates["redis_url"] = f"redis://{LOCALHOST}:{LOCAL_REDIS_PORT}/0"
            stack.sources["redis"] = "local"
        else:
            port = _embedded_port(data_dir, "valkey", preferred_ports["valkey"])
            server = embedded.start_valkey(data_dir, port, ephemeral=ephemeral)
            stack.servers.append(server)
            updates["redis_url"] = server.url
            stack.sources["redis"] = "embedded"

        if not force_embedded and settings.s3_endpoint_url:
            stack.sources["s3"] = "settings"
        else:
            access_key, secret_key = embedded.seaweedfs_credentials(data_dir)
            server = embedded.start_seaweedfs(
                data_dir,
                _embedded_port(data_dir, "seaweedfs", preferred_ports["seaweedfs"]),
                access_key,
                secret_key,
            )
            stack.servers.append(server)
            updates["s3_endpoint_url"] = server.url
            updates["s3_access_key_id"], updates["s3_secret_access_key"] = access_key, secret_key
            updates["s3_public_endpoint_url"] = None
            stack.sources["s3"] = "embedded"
    except BaseException:
        stack.close()
        raise
    stack.settings = settings.model_copy(update=updates)
    return stack


def _embedded_port(data_dir: Path, name: str, preferred: int) -> int:
    """The preferred port when free (after stopping a stale server of ours that may hold it)."""
    embedded.kill_stale_server(data_dir, name)
    return preferred if preferred and embedded.port_is_free(preferred) else embedded.find_free_port()


def _postgres_url(port: int, configured_url: str) -> str:
    """postgres@127.0.0.1:port with the database name of the configured URL (default `agensium`)."""
    database = urlsplit(configured_url).path.lstrip("/") or "agensium"
    return f"postgresql://postgres@{LOCALHOST}:{port}/{database}"


def _local_postgres_answers() -> bool:
    if not embedded.tcp_open(LOCAL_POSTGRES_PORT, timeout_s=1):
        return False

    async def connect() -> bool:
        import asyncpg

        try:
            conn = await asyncpg.connect(_postgres_url(LOCAL_POSTGRES_PORT, "/postgres"), timeout=3)
        # Whatever listens there but will not let `postgres` in without a password (or is no
        # PostgreSQL at all) is not ours to use: embedded then, rather than a crash at start.
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
            return False
        await conn.close()
        return True

    return run_coroutine(connect())


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when this thread already runs a loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- preparing the services ------------------------------------------------------------------------


async def ensure_database(database_url: str) -> None:
    """Create the URL's database when the server is reachable but the database does not exist."""
    import asyncpg

    try:
        conn = await asyncpg.connect(database_url, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(database_url)
        database = parts.path.lstrip("/")
        maintenance_url = urlunsplit(parts._replace(path="/postgres"))
        conn = await asyncpg.connect(maintenance_url, timeout=10)
        try:
            await conn.execute(f'CREATE DATABASE "{database.replace(chr(34), "")}"')
        except asyncpg.DuplicateDatabaseError:
            pass
        finally:
            await conn.close()
        return
    await conn.close()


async def prepare_services(settings: Settings, cors_origins: list[str] | None = None) -> None:
    """Create the database if needed, apply migrations, create the bucket with its CORS rule."""
    from service.storage import Storage
    from service.store import apply_migrations

    await ensure_database(settings.database_url)
    applied = await apply_migrations(settings.database_url)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    async with Storage(settings) as storage:
        await storage.ensure_bucket(cors_origins)


async def ensure_dev_admin(settings: Settings, data_dir: Path) -> tuple[str, str]:
    """The dev admin's (user_id, api_key): read from data_dir/dev-admin.json, created when missing.

    The key is checked against the database, so a new database (another DATABASE_URL) gets a new admin.
    """
    from service.store import TaskStore

    key_file = data_dir / "dev-admin.json"
    store = await TaskStore.connect(settings.database_url, min_size=1, max_size=1)
    try:
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
            saved = json.loads(key_file.read_text())
            if await store.user_by_api_key(saved["api_key"]) is not None:
                return str(saved["user_id"]), str(saved["api_key"])
        user_id, api_key = await store.create_user(name=DEV_ADMIN_NAME, is_admin=True, credits=DEV_ADMIN_CREDITS)
    finally:
        await store.close()
    _write_private_json(key_file, {"user_id": str(user_id), "api_key": api_key})
    return str(user_id), api_key


def dev_secret_key(data_dir: Path) -> str:
    """The data dir's `secret_key`: random on the first start, kept in `data_dir/secret_key` (mode 0600) and the
    same on every later one, so stream tokens stay good across a restart."""
    return embedded.read_or_create_private_file(data_dir / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(32))


def _write_private_json(path: Path, document: Mapping[str, str]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(document, file, indent=2)
    path.chmod(0o600)


# --- settings to environment -------------------------------------------------------------------------


def settings_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that rebuild `settings` in a child process (unset values are left out)."""
    prefix = settings.model_config.get("env_prefix", "")
    environment = {}
    for name, info in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            variable = alias.choices[0]
        else:
            variable = f"{prefix}{name}".upper()
        # Complex values (dicts, tuples) travel as JSON, which is how pydantic-settings reads them back.
        environment[variable] = json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)
    return environment


def settings_variable_names() -> set[str]:
    """Every environment variable Settings reads, so a child's environment can be rebuilt cleanly."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = set()
    for name, info in Settings.model_fields.items():
        names.add(f"{prefix}{name}".upper())
        if isinstance(info.validation_alias, AliasChoices):
            names.update(choice for choice in info.validation_alias.choices if isinstance(choice, str))
    return names


# --- running the API and the worker ------------------------------------------------------------------------


@dataclass
class ChildProcess:
    name: str
    process: subprocess.Popen[bytes]
    # The command, to run it again after a crash (`restart`).
    arguments: list[str] = field(default_factory=list)
    environment: Mapping[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def restart(self) -> None:
        """The same command again, in place of the process that exited. Call from the thread that started
        it: the new process dies with that thread (PR_SET_PDEATHSIG)."""
        self.process = _popen_child(self.arguments, self.environment)
        self.started_at = time.monotonic()

    def stop(self, grace_s: float = CHILD_STOP_GRACE_S) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs; killing it", self.name, grace_s)
            self.process.kill()
            self.process.wait(timeout=10)


def start_child(name: str, arguments: list[str], environment: Mapping[str, str]) -> ChildProcess:
    """`python -m service.cli ARGS` in its own session, killed when this process (thread) dies."""
    return ChildProcess(name, _popen_child(arguments, environment), list(arguments), dict(environment))


def _popen_child(arguments: list[str], environment: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # SIGKILL, not SIGTERM: with its launcher gone a worker must not drain its runs against servers that are
    # going too (the reaper re-queues them); its agent processes die with it (worker/agent_procs.py).
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", *arguments],
        env={**_environment_without_settings(), **environment},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=embedded.die_with_parent(os.getpid(), signal.SIGKILL),
    )


def _environment_without_settings() -> dict[str, str]:
    settings_variables = settings_variable_names()
    return {name: value for name, value in os.environ.items() if name not in settings_variables}


def wait_for_healthz(
    url: str,
    children: list[ChildProcess],
    timeout_s: float = API_START_TIMEOUT_S,
    cancelled: threading.Event | None = None,
) -> bool:
    """True once the API answers /healthz; False when `cancelled` is set first."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2) as client:
        while cancelled is None or not cancelled.is_set():
            for child in children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with code {child.process.returncode} while starting")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/healthz").status_code == 200:
                    return True
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not answer {url}/healthz within {timeout_s:.0f}s")
            time.sleep(0.1)
    return False


@contextlib.contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `agensium dev` per data dir; the lock goes away with the process, even on kill -9."""
    with (data_dir / "dev.lock").open("w") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"agensium dev: another `agensium dev` is running on {data_dir}") from None
        yield


class _StopRequested:
    """Turns SIGINT/SIGTERM into an event the supervising loop waits on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()


def run_dev(data_dir: Path | str = ".agensium", port: int = 8000, embedded_only: bool = False) -> int:
    """The `agensium dev` command; returns the exit status (0 after Ctrl-C/SIGTERM, 1 on failure)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = _StopRequested()
    stop.install()
    with _data_dir_lock(data_dir):
        if not embedded.port_is_free(port):
            print(f"agensium dev: port {port} on {LOCALHOST} is taken; pass --port N", file=sys.stderr)
            return 1
        settings = Settings()
        if not settings.secret_key:
            settings = settings.model_copy(update={"secret_key": dev_secret_key(data_dir)})
        with resolve_services(settings, data_dir, force_embedded=embedded_only) as stack:
            return _serve(stack, data_dir, port, stop)


def _serve(stack: ServiceStack, data_dir: Path, port: int, stop: _StopRequested) -> int:
    settings = stack.settings
    for line in stack.describe():
        print(f"  {line}", flush=True)
    # The page's origin, as a browser may write it: only it may upload to the store.
    origins = settings.browser_origins() or [f"http://{host}:{port}" for host in (LOCALHOST, "localhost")]
    run_coroutine(prepare_services(settings, origins))
    _user_id, api_key = run_coroutine(ensure_dev_admin(settings, data_dir))
    if stop.event.is_set():
        return 0

    environment = settings_environment(settings)
    url = f"http://{LOCALHOST}:{port}"
    children = [
        start_child("api", ["api", "--host", LOCALHOST, "--port", str(port)], environment),
        start_child("worker", ["worker"], environment),
    ]
    try:
        if wait_for_healthz(url, children, cancelled=stop.event):
            print(banner(url, api_key, data_dir), flush=True)
            _supervise(children, stop)
    except RuntimeError as error:  # a child that cannot even start (a port, a setting) is not restarted
        print(f"agensium dev: {error}", file=sys.stderr)
        return 1
    finally:
        for child in children:  # API and worker first; the servers stop when the stack closes
            child.stop()
    return 0


@dataclass
class _Backoff:
    """When a crashed child starts again: the delay doubles with each crash in a row, and goes back to the
    first once the child has stayed up `RESTART_RESET_AFTER_S`."""

    delay_s: float = RESTART_DELAY_S
    due: float | None = None  # monotonic time of the pending restart

    def schedule(self, now: float) -> float:
        """Plan a restart; returns its delay."""
        delay, self.due = self.delay_s, now + self.delay_s
        self.delay_s = min(self.delay_s * 2, RESTART_DELAY_MAX_S)
        return delay

    def running(self, up_s: float) -> None:
        """The child is running and has been up `up_s`: long enough, and its next crash waits the first delay."""
        if up_s >= RESTART_RESET_AFTER_S:
            self.delay_s = RESTART_DELAY_S


def _supervise(children: list[ChildProcess], stop: _StopRequested) -> None:
    """Until Ctrl-C/SIGTERM: a child that exits (a crash, an OOM kill, a `kill -9`) is started again after
    its backoff, the others running on meanwhile. The worker that comes back re-queues the tasks the dead
    one was running (worker/recovery.py)."""
    backoffs = {child.name: _Backoff() for child in children}
    while not stop.event.wait(timeout=SUPERVISE_INTERVAL_S):
        now = time.monotonic()
        for child in children:
            backoff = backoffs[child.name]
            if child.process.poll() is None:
                backoff.running(now - child.started_at)
            elif backoff.due is None:
                delay = backoff.schedule(now)
                log.warning("%s exited with %s; restarting in %.1f s", child.name, child.process.returncode, delay)
            elif now >= backoff.due:
                backoff.due = None
                child.restart()
                log.info("%s restarted (pid %d)", child.name, child.process.pid)
    print(f"agensium dev: {stop.signal_name} received, stopping", file=sys.stderr, flush=True)


def banner(url: str, api_key: str, data_dir: Path) -> str:
    """What `agensium dev` prints once the API answers. Its example command runs as printed in a new shell, from
    any directory: the `agensium` it names is an absolute path (.venv/bin is on no PATH of a new shell)."""
    return (
        f"\nAgensium is running at {url}  (OpenAPI: {url}/openapi.json)\n"
        f"  dev admin API key: {api_key}   (saved in {data_dir / 'dev-admin.json'})\n"
        f"  try: AGENSIUM_URL={url} AGENSIUM_API_KEY={api_key} {command_path()} submit data.csv --follow\n"
        "  Ctrl-C stops everything.\n"
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
