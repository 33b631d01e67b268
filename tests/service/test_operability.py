"""Operability: the API's and the worker's /metrics, the JSON logs of `agensium api` and `agensium worker`,
and the admin-only part of /api/v1/stats.

The metrics and logs are read from a live API and a live worker, each an `agensium` subprocess with its
stderr kept in a file, after a real task ran through them."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from service import logs
from service.config import Settings
from service.dev import settings_environment
from service.storage import Storage
from service.store import TaskStore
from tests.conftest import Account, ApiServer, free_port
from tests.processes import wait_for
from tests.support import upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEADLINE_S = 90.0


# --- a live API and worker --------------------------------------------------------------------


@dataclass
class Live:
    api_url: str
    worker_metrics_url: str
    api_log: Path
    worker_log: Path


def _start(arguments: list[str], environment: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", *arguments],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _up_or_exited(process: subprocess.Popen[bytes], url: str) -> bool:
    return process.poll() is not None or _answers(url)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def live(settings: Settings, storage: Storage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`agensium api` and `agensium worker` on a key prefix of their own, with the default log format."""
    logs_dir = tmp_path_factory.mktemp("operability")
    api_port, metrics_port = free_port(), free_port()
    own = settings.model_copy(
        update={
            "key_prefix": f"{settings.key_prefix}ops-{uuid.uuid4().hex[:6]}/",
            "worker_metrics_port": metrics_port,
            "agent_processes": 1,
            "worker_concurrency": 2,
            "drain_s": 5.0,
        }
    )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AGENSIUM_")},
        **settings_environment(own),
    }
    live = Live(
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{metrics_port}/metrics",
        logs_dir / "api.log",
        logs_dir / "worker.log",
    )
    api = _start(["api", "--port", str(api_port)], environment, live.api_log)
    worker = _start(["worker"], environment, live.worker_log)
    try:
        for process, url, log_file in (
            (api, f"{live.api_url}/healthz", live.api_log),
            (worker, live.worker_metrics_url, live.worker_log),
        ):
            wait_for(functools.partial(_up_or_exited, process, url), DEADLINE_S, f"{url} to answer")
            assert process.poll() is None, log_file.read_text()[-3000:]
        yield live
    finally:
        _stop(worker)
        _stop(api)


@dataclass
class Run:
    account: Account
    task_id: str
    request_id: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ran(live: Live, store: TaskStore, csv_file_module: Path) -> Run:
    """One profile task run to COMPLETED through the live API and worker, its creation under a known request id."""
    user_id, key = await store.create_user(f"ops-{uuid.uuid4().hex[:6]}", credits=100_000)
    account = Account(user_id, key)
    request_id = f"ops-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=live.api_url, headers=account.headers, timeout=30) as client:
        created = await client.post(
            "/api/v1/tasks", json={"tool_id": "profile-my-data"}, headers={"X-Request-ID": request_id}
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["task_id"]
        await upload_inputs(client, task_id, {"primary.csv": csv_file_module})
        assert (await client.post(f"/api/v1/tasks/{task_id}/process")).status_code == 202
        task = await wait_for_status(client, task_id, {"COMPLETED", "FAILED"}, timeout=DEADLINE_S)
        assert task["status"] == "COMPLETED", task
    return Run(account, task_id, request_id)


@pytest.fixture(scope="module")
def csv_file_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ops-input") / "primary.csv"
    path.write_text("id,name,amount\n1,alice,10.5\n2,bob,\n3,carol,7.25\n4,dave,3\n")
    return path


def samples(metrics_text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page: (name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"{name}{labels} not exported; have {sorted({n for n, _ in found})}"
    return found[key]


# --- metrics ----------------------------------------------------------------------------------


async def test_api_metrics_after_a_task(live: Live, ran: Run) -> None:
    async with httpx.AsyncClient(base_url=live.api_url, headers=ran.account.headers, timeout=30) as client:
        # An open event stream shows in the gauge while it is open.
        async with client.stream("GET", "/api/v1/events") as stream:
            assert stream.status_code == 200
            page = samples((await client.get("/metrics")).text)
        assert value(page, "agensium_open_streams", kind="sse") >= 1
        assert value(page, "agensium_open_streams", kind="websocket") >= 0

        assert value(page, "agensium_tasks", tool_id="profile-my-data", status="COMPLETED") >= 1
        for priority in ("urgent", "high", "normal", "low"):
            assert value(page, "agensium_queue_depth", priority=priority) >= 0
        assert value(page, "agensium_cache_hits_total") == 0  # no result cache yet
        assert value(page, "agensium_rate_limited_requests_total") == 0
        assert value(page, "agensium_http_requests_total", method="POST", route="/api/v1/tasks", status="201") >= 1

        # The task's events passed through this API's event hub: commit -> hub lag, a few ms, well under a minute.
        count = value(page, "agensium_event_publish_lag_seconds_count")
        assert count >= 3  # QUEUED, PROCESSING, progress..., COMPLETED, done
        assert 0 <= value(page, "agensium_event_publish_lag_seconds_sum") / count < 60


async def test_worker_metrics_after_a_task(live: Live, ran: Run) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(live.worker_metrics_url)
    assert response.status_code == 200
    page = samples(response.text)
    tasks = value(page, "agensium_task_duration_seconds_count", tool_id="profile-my-data", status="COMPLETED")
    assert tasks >= 1
    took = value(page, "agensium_task_duration_seconds_sum", tool_id="profile-my-data", status="COMPLETED")
    assert 0 < took / tasks < DEADLINE_S
    profiler = value(page, "agensium_agent_duration_seconds_count", agent_id="unified-profiler", status="success")
    assert profiler >= 1
    assert 0 <= value(page, "agensium_agent_duration_seconds_sum", agent_id="unified-profiler", status="success")


# --- logs -------------------------------------------------------------------------------------


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a process's stderr, each of which must be one JSON object."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path.name} is empty"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line in {path.name}: {line!r}") from None
    for entry in parsed:
        assert {"timestamp", "level", "logger", "event"} <= entry.keys(), entry
    return parsed


async def test_json_logs_carry_request_user_and_task_ids(live: Live, ran: Run) -> None:
    api_lines = json_lines(live.api_log)
    created = [e for e in api_lines if e.get("request_id") == ran.request_id]
    assert created, "no API line with the request's id"
    assert all(e.get("user_id") == ran.account.user_id for e in created)
    assert any(e.get("route") == "/api/v1/tasks" and e.get("status") == 201 for e in created)
    access = [e for e in created if e["logger"] == "agensium.access"]  # one access line per request
    assert len(access) == 1 and access[0]["method"] == "POST" and access[0]["duration_ms"] >= 0, access
    assert any(e["logger"].startswith("uvicorn") for e in api_lines)  # uvicorn's own lines are JSON too

    # The worker's lines about the task carry its id (bound while it runs).
    deadline = asyncio.get_running_loop().time() + 30
    while True:  # the worker logs the run's end just after the task's COMPLETED commit
        found = [e for e in json_lines(live.worker_log) if e.get("task_id") == ran.task_id]
        if any("COMPLETED" in e["event"] for e in found):
            break
        assert asyncio.get_running_loop().time() < deadline, f"no worker line ends task {ran.task_id}: {found}"
        await asyncio.sleep(0.1)

    for path in (live.api_log, live.worker_log):
        text = path.read_text()
        assert ran.account.api_key not in text
        assert "X-Amz-Signature" not in text and "X-Amz-Credential" not in text


async def test_secrets_never_reach_a_log_line() -> None:
    """The formatter every handler uses masks keys, secret fields and presigned query strings, in the
    message, in extra fields and in tracebacks."""
    key = "agk_" + uuid.uuid4().hex
    presigned = (
        "http://127.0.0.1:8333/agensium/users/u/tasks/t/inputs/primary.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=deadbeefcafe"
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger(f"agensium.test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.warning("upload to %s with Authorization: Bearer %s", presigned, key)
    logger.info("token url", extra={"url": "/api/v1/events?token=tok-secret&last_event_id=3", "api_key": key})
    logger.info("headers", extra={"headers": {"Authorization": f"Bearer {key}", "Accept": "text/csv"}})
    try:
        raise RuntimeError(f"store refused {presigned}")
    except RuntimeError:
        logger.exception("failed for %s", key)

    text = stream.getvalue()
    entries = [json.loads(line) for line in text.splitlines()]
    assert len(entries) == 4
    for secret in (key, "deadbeefcafe", "AKID", "tok-secret"):
        assert secret not in text
    assert entries[0]["event"].startswith(
        "upload to http://127.0.0.1:8333/agensium/users/u/tasks/t/inputs/primary.csv?"
    )
    assert entries[1]["api_key"] == logs.REDACTED
    assert entries[1]["url"] == f"/api/v1/events?token={logs.REDACTED}&last_event_id=3"
    assert entries[2]["headers"] == {"Authorization": logs.REDACTED, "Accept": "text/csv"}
    assert "RuntimeError" in entries[3]["exception"]


# --- admin-only stats ---------------------------------------------------------------------------


async def test_global_stats_are_admin_only(api: ApiServer, account: Account, store: TaskStore) -> None:
    admin_id, admin_key = await store.create_user(f"admin-{uuid.uuid4().hex[:6]}", is_admin=True)
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as user:
        refused = await user.get("/api/v1/stats", params={"scope": "global"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "FORBIDDEN"
        own = await user.get("/api/v1/stats")  # API.md: the caller's counts for everyone
        assert own.status_code == 200 and "tasks_by_status" in own.json() and "global" not in own.json()
        bad = await user.get("/api/v1/stats", params={"scope": "everything"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
        everything = await admin.get("/api/v1/stats", params={"scope": "global"})
        assert everything.status_code == 200 and "global" in everything.json()
        assert "global" in (await admin.get("/api/v1/stats")).json()  # unchanged for admins without a scope
        assert "global" not in (await admin.get("/api/v1/stats", params={"scope": "own"})).json()
