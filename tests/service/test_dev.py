"""`agensium dev --embedded`: starts everything on 127.0.0.1, stops everything, survives `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from service.config import Settings
from service.dev import resolve_services, settings_environment, settings_variable_names
from service.embedded import find_free_port, server_processes
from tests.processes import alive, wait_for

ROOT = Path(__file__).resolve().parents[2]
# Anything that would point `agensium dev` at other servers.
CONFIG_VARIABLES = (
    "DATABASE_URL", "REDIS_URL", "S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL",
    "AGENSIUM_DATABASE_URL", "AGENSIUM_REDIS_URL", "AGENSIUM_S3_ENDPOINT_URL", "AGENSIUM_S3_PUBLIC_ENDPOINT_URL",
)  # fmt: skip
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0


class DevLauncher:
    """`agensium dev --embedded` in a subprocess, with the config variables removed from its env."""

    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARIABLES}
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
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, START_TIMEOUT_S, f"{self.url}/healthz")
        # The launcher prints its banner once it has seen the API answer itself: that is "started".
        wait_for(lambda: "Agensium is running at" in self.log(), START_TIMEOUT_S, "the dev banner")

    def descendants(self) -> set[int]:
        return {child.pid for child in psutil.Process(self.process.pid).children(recursive=True)}

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
        process.kill()


def start(launchers: list[DevLauncher], tmp_path: Path, port: int) -> DevLauncher:
    launcher = DevLauncher(tmp_path / "data", port, tmp_path / f"dev-{len(launchers)}.log")
    launchers.append(launcher)
    launcher.wait_healthy()
    return launcher


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

    # 2. SIGTERM: everything it started exits, the launcher with status 0.
    started_pids = first.descendants()
    assert len(started_pids) >= 5  # api, worker, postgres (+ helpers), valkey, weed
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=STOP_TIMEOUT_S) == 0, first.log()
    wait_for(lambda: not alive(started_pids), STOP_TIMEOUT_S, "processes started by agensium dev to exit")
    assert not alive({p.pid for p in server_processes(data_dir)})

    # 3. Start again (same data: same admin key), then kill -9 the launcher: no orphan is left.
    second = start(launchers, tmp_path, port)
    assert json.loads(key_file.read_text())["api_key"] == api_key
    started_pids = second.descendants()
    second.kill()
    wait_for(lambda: not alive(started_pids), STOP_TIMEOUT_S, "children of a killed agensium dev to exit")

    # 4. And the next start works.
    third = start(launchers, tmp_path, port)
    third.process.send_signal(signal.SIGTERM)
    assert third.process.wait(timeout=STOP_TIMEOUT_S) == 0, third.log()


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
