"""`agensium dev --embedded`: starts everything on 127.0.0.1 with secrets of its own, restarts a crashed
worker, stops everything, survives `kill -9`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from service.config import Settings
from service.dev import resolve_services, settings_environment, settings_variable_names
from service.embedded import find_free_port, server_processes
from tests.processes import alive, wait_for
from tests.service.test_secrets import PUBLIC_DEFAULTS, old_derivation_token

ROOT = Path(__file__).resolve().parents[2]
# Anything that would point `agensium dev` at other servers, or give it a secret key it should make itself.
CONFIG_VARIABLES = (
    "DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL",
    "AGENSIUM_DATABASE_URL", "AGENSIUM_REDIS_URL", "AGENSIUM_S3_ENDPOINT_URL", "AGENSIUM_S3_PUBLIC_ENDPOINT_URL",
    "AGENSIUM_SECRET_KEY",
)  # fmt: skip
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0
TASK_TIMEOUT_S = 120.0
# SIGKILL on parent death ends a process at once; the margin is for a loaded machine's scheduler only (a
# worker that drained its runs, as before, took 8 s or more).
DEATH_TIMEOUT_S = 5.0
# A stack that notices a lost worker quickly, with the hidden diagnostics tool for tasks that take a while.
HEALING_ENVIRONMENT = {
    "AGENSIUM_DIAGNOSTICS": "1",
    "AGENSIUM_AGENT_PROCESSES": "1",
    "AGENSIUM_HEARTBEAT_INTERVAL_S": "0.25",
    "AGENSIUM_STALE_AFTER_S": "4",
    "AGENSIUM_REAPER_INTERVAL_S": "0.25",
    "AGENSIUM_RETRY_BACKOFF_S": "0.2",
}


class DevLauncher:
    """`agensium dev --embedded` in a subprocess, with the config variables removed from its env."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, environment: dict[str, str] | None = None) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES} | (environment or {})
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "dev", "--embedded",
                 "--data-dir", str(data_dir), "--port", str(port)],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_healthy(self) -> None:
        def healthy() -> bool:
            assert self.process.poll() is None, f"agensium dev exited early:\n{self.log()}"
            return api_answers(self.url)

        wait_for(healthy, START_TIMEOUT_S, f"{self.url}/healthz")
        # The launcher prints its banner once it has seen the API answer itself: that is "started".
        wait_for(lambda: "Agensium is running at" in self.log(), START_TIMEOUT_S, "the dev banner")

    def descendants(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}

    def child_pid(self, command: str) -> int | None:
        """The running `agensium COMMAND` (api, worker) the launcher started, if any."""
        for child in psutil.Process(self.process.pid).children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline()[1:4] == ["-m", "service.cli", command] and child.status() != psutil.STATUS_ZOMBIE:
                    return child.pid
        return None

    def service_url(self, service: str) -> str:
        """The URL of an embedded service, as the launcher's banner describes it (PostgreSQL, Redis, S3)."""
        found = re.search(rf"^  {service} +(\S+) ", self.log_path.read_text(), re.MULTILINE)
        assert found, f"no {service} line in:\n{self.log()}"
        return found.group(1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def launchers(tmp_path: Path) -> Iterator[list[DevLauncher]]:
    started: list[DevLauncher] = []
    yield started
    for launcher in started:
        launcher.kill()
    # Whatever a failed test left behind must not outlive it.
    for process in server_processes(tmp_path / "data"):
        with contextlib.suppress(psutil.NoSuchProcess):  # exiting on its own meanwhile
            process.kill()


def start(
    launchers: list[DevLauncher], tmp_path: Path, port: int, environment: dict[str, str] | None = None
) -> DevLauncher:
    launcher = DevLauncher(tmp_path / "data", port, tmp_path / f"dev-{len(launchers)}.log", environment)
    launchers.append(launcher)
    launcher.wait_healthy()
    return launcher


def admin_client(launcher: DevLauncher) -> httpx.Client:
    """The API as the dev admin, whose key the launcher saved."""
    api_key = json.loads((launcher.data_dir / "dev-admin.json").read_text())["api_key"]
    return httpx.Client(base_url=launcher.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)


def api_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stream_status(url: str, token: str) -> int:
    """The status with which the event stream of all the token's user's tasks opens."""
    with httpx.stream("GET", f"{url}/api/v1/events?token={token}", timeout=10) as response:
        return response.status_code


def s3_lists_buckets(url: str, access_key: str, secret_key: str) -> bool:
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name="us-east-1"
    )
    try:
        client.list_buckets()
        return True
    except ClientError:
        return False
    finally:
        client.close()


def test_dev_starts_embedded_services_stops_on_sigterm_and_survives_kill_9(
    tmp_path: Path, launchers: list[DevLauncher]
) -> None:
    data_dir = tmp_path / "data"
    port = find_free_port()

    # 1. Start: three embedded servers on 127.0.0.1, the API answers, the dev admin key is saved.
    first = start(launchers, tmp_path, port)
    servers = server_processes(data_dir)
    assert {process.name() for process in servers} >= {"postgres", "valkey-server", "weed"}
    listening = {
        conn.laddr.ip
        for process in servers
        for conn in process.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert listening == {"127.0.0.1"}
    key_file = data_dir / "dev-admin.json"
    assert key_file.stat().st_mode & 0o777 == 0o600
    api_key = json.loads(key_file.read_text())["api_key"]
    assert api_key in first.log()
    me = httpx.get(f"{first.url}/api/v1/me", headers={"Authorization": f"Bearer {api_key}"}, timeout=5)
    assert me.status_code == 200, me.text

    # Its secrets are random, private, in the data dir: a token made from the key the launcher used to derive
    # from public defaults opens nothing, and the well-known S3 credentials open nothing either.
    secret_file, s3_file = data_dir / "secret_key", data_dir / "s3-credentials.json"
    assert secret_file.stat().st_mode & 0o777 == 0o600 and s3_file.stat().st_mode & 0o777 == 0o600
    secret_key, s3_credentials = secret_file.read_text(), json.loads(s3_file.read_text())
    assert len(secret_key) >= 43
    admin_id = me.json()["user_id"]
    database_url, s3_url = first.service_url("PostgreSQL"), first.service_url("S3")
    for forged in (
        old_derivation_token(*PUBLIC_DEFAULTS, admin_id),
        old_derivation_token(PUBLIC_DEFAULTS[0], database_url, admin_id),  # what `make run` signed with
        old_derivation_token(s3_credentials["secret_access_key"], database_url, admin_id),
    ):
        assert stream_status(first.url, forged) == 401
    with admin_client(first) as admin:
        minted = admin.post("/api/v1/events/token")
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]
    assert stream_status(first.url, token) == 200
    assert not s3_lists_buckets(s3_url, "agensium", PUBLIC_DEFAULTS[0])
    assert s3_lists_buckets(s3_url, s3_credentials["access_key_id"], s3_credentials["secret_access_key"])

    # 2. SIGTERM: everything it started exits, the launcher with status 0.
    started_pids = first.descendants()
    assert len(started_pids) >= 5  # api, worker, postgres (+ helpers), valkey, weed
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=STOP_TIMEOUT_S) == 0, first.log()
    wait_for(lambda: not alive(started_pids), STOP_TIMEOUT_S, "processes started by agensium dev to exit")
    assert not alive({p.pid for p in server_processes(data_dir)})

    # 3. Start again (same data: same admin key, same secrets: the token of the first start is still good),
    # then kill -9 the launcher: no orphan is left.
    second = start(launchers, tmp_path, port)
    assert json.loads(key_file.read_text())["api_key"] == api_key
    assert (secret_file.read_text(), json.loads(s3_file.read_text())) == (secret_key, s3_credentials)
    assert stream_status(second.url, token) == 200
    started_pids = second.descendants()
    second.kill()
    wait_for(lambda: not alive(started_pids), STOP_TIMEOUT_S, "children of a killed agensium dev to exit")

    # 4. And the next start works.
    third = start(launchers, tmp_path, port)
    third.process.send_signal(signal.SIGTERM)
    assert third.process.wait(timeout=STOP_TIMEOUT_S) == 0, third.log()


def submit_sleeper(admin: httpx.Client, seconds: float, runaway: bool = False) -> str:
    """A diagnostics task whose agent sleeps `seconds` (`runaway`: spins without a word), queued; its id."""
    sleeper = {"seconds": seconds, "step_s": 0.1, "runaway": runaway}
    body = {"tool_id": "diagnostics", "parameters": {"sleeper": sleeper}}
    created = admin.post("/api/v1/tasks", json=body)
    assert created.status_code == 201, created.text
    task_id = str(created.json()["task_id"])
    uploaded = admin.put(
        f"/api/v1/tasks/{task_id}/inputs/primary.csv", content=b"id,x\n1,a\n2,b\n", headers={"Content-Type": "text/csv"}
    )
    assert uploaded.status_code == 201, uploaded.text
    queued = admin.post(f"/api/v1/tasks/{task_id}/process")
    assert queued.status_code == 202, queued.text
    return task_id


def wait_for_task(admin: httpx.Client, task_id: str, done: Callable[[dict[str, Any]], bool], what: str) -> dict:
    task: dict[str, Any] = {}

    def reached() -> bool:
        task.update(admin.get(f"/api/v1/tasks/{task_id}").json())
        return done(task)

    wait_for(reached, TASK_TIMEOUT_S, what)
    return task


def sleeping(task: dict[str, Any]) -> bool:
    return bool(task["status"] == "PROCESSING" and task["current_agent"] == "sleeper")


def worker_family(launcher: DevLauncher) -> set[int]:
    """The running worker and its agent processes, once the sleeper runs in one of them."""
    worker_pid = launcher.child_pid("worker")
    assert worker_pid is not None
    family = {worker_pid} | {process.pid for process in psutil.Process(worker_pid).children(recursive=True)}
    assert len(family) >= 2, "the worker has no agent process"
    return family


def test_dev_restarts_a_killed_worker_and_its_children_die_with_the_launcher(
    tmp_path: Path, launchers: list[DevLauncher]
) -> None:
    launcher = start(launchers, tmp_path, find_free_port(), HEALING_ENVIRONMENT)
    api_pid, worker_pid = launcher.child_pid("api"), launcher.child_pid("worker")
    assert api_pid is not None and worker_pid is not None
    with admin_client(launcher) as admin:
        # 1. kill -9 the worker in the middle of a task: its agent process goes with it, the launcher starts
        # another worker (the API runs on), and that worker takes the lost task up again and completes it.
        task_id = submit_sleeper(admin, seconds=6)
        wait_for_task(admin, task_id, sleeping, "the sleeper to run")
        family = worker_family(launcher)
        os.kill(worker_pid, signal.SIGKILL)
        wait_for(lambda: not alive(family), DEATH_TIMEOUT_S, "the killed worker's agent processes to exit")
        wait_for(lambda: "worker exited with -9; restarting in 0.5 s" in launcher.log(), 10, "the restart's log line")
        wait_for(lambda: launcher.child_pid("worker") not in (None, worker_pid), 10, "a new worker")
        task = wait_for_task(admin, task_id, lambda task: task["status"] not in ("QUEUED", "PROCESSING"), "the end")
        assert (task["status"], task["attempts"] >= 2) == ("COMPLETED", True), task
        assert launcher.child_pid("api") == api_pid
        assert admin.get("/healthz").status_code == 200

        # The API too: killed, it is back on its port.
        os.kill(api_pid, signal.SIGKILL)
        wait_for(lambda: launcher.child_pid("api") not in (None, api_pid), 10, "a new API process")
        wait_for(lambda: "api exited with -9; restarting in 0.5 s" in launcher.log(), 10, "the restart's log line")
        wait_for(lambda: api_answers(launcher.url), START_TIMEOUT_S, "the new API to answer")

        # 2. kill -9 the launcher while a run is busy: the worker and its agent processes exit at once, not
        # after draining the run against servers that are gone. The run spins without reporting progress, as a
        # long Polars step does: nothing but a signal stops it (a progress report would fail on the closed pipe).
        task_id = submit_sleeper(admin, seconds=600, runaway=True)
        wait_for_task(admin, task_id, sleeping, "the second sleeper to run")
        family = worker_family(launcher)
    launcher.kill()
    wait_for(lambda: not alive(family), DEATH_TIMEOUT_S, "the worker and its agent processes to exit")


def test_configured_services_are_used_as_they_are(tmp_path: Path) -> None:
    configured = Settings(
        database_url="postgresql://someone@db.example:5432/x",
        redis_url="redis://cache.example:6379/3",
        s3_endpoint_url="https://s3.example",
    )
    with resolve_services(configured, tmp_path) as stack:
        assert stack.servers == []
        assert stack.sources == {"postgres": "settings", "redis": "settings", "s3": "settings"}
        assert stack.settings.model_dump() == configured.model_dump()


def test_settings_environment_rebuilds_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:54329/agensium",
        s3_endpoint_url="http://127.0.0.1:8333",
        key_prefix="run-1:",
        poll_delay_s=0.5,
        work_dir=Path("/tmp/agensium-work"),
    )
    for name in settings_variable_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    assert Settings().model_dump() == settings.model_dump()


def test_nothing_configured_nor_running_means_embedded_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a fresh machine: no URL set, nothing on 5432/6379 -> all three servers embedded, working."""
    import asyncio

    import asyncpg
    from redis import Redis

    from service import dev, embedded

    for name in settings_variable_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dev, "_local_postgres_answers", lambda: False)
    real_redis_answers = embedded.redis_answers  # the embedded Valkey's own readiness check uses it too
    monkeypatch.setattr(
        embedded, "redis_answers", lambda port, timeout_s=0.5: port != dev.LOCAL_REDIS_PORT and real_redis_answers(port)
    )
    ports = {"postgres": find_free_port(), "valkey": find_free_port(), "seaweedfs": find_free_port()}
    with resolve_services(Settings(), tmp_path, ephemeral=True, preferred_ports=ports) as stack:
        assert stack.sources == {"postgres": "embedded", "redis": "embedded", "s3": "embedded"}
        assert {s.port for s in stack.servers} == set(ports.values())
        settings = stack.settings

        async def probe() -> int:
            conn = await asyncpg.connect(settings.database_url.rsplit("/", 1)[0] + "/postgres")
            try:
                return int(await conn.fetchval("SELECT 1"))
            finally:
                await conn.close()

        assert asyncio.run(probe()) == 1
        assert Redis.from_url(settings.redis_url).ping()
        assert settings.s3_endpoint_url == f"http://127.0.0.1:{ports['seaweedfs']}"
    assert server_processes(tmp_path) == []


def test_the_restart_delay_doubles_to_its_cap_and_starts_over_after_a_minute_up() -> None:
    """The launcher's backoff for a crashing child (README: 0.5 s, 1 s, 2 s, ... up to 30 s; back to 0.5 s once
    the child has stayed up a minute)."""
    from service.dev import RESTART_RESET_AFTER_S, _Backoff

    backoff = _Backoff()
    delays = [backoff.schedule(now=float(n)) for n in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff.due == 8.0 + 30.0
    backoff.running(up_s=RESTART_RESET_AFTER_S - 1)
    assert backoff.schedule(now=100.0) == 30.0  # up less than a minute: still backing off
    backoff.running(up_s=RESTART_RESET_AFTER_S)
    assert backoff.schedule(now=200.0) == 0.5
