"""`agensium submit` as a subprocess against the live test service, exactly as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import Account, ApiServer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def run_cli(api: ApiServer, account: Account, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "AGENSIUM_URL": api.url, "AGENSIUM_API_KEY": account.api_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_submit_wait_completes_and_prints_result(
    api: ApiServer, account: Account, worker, csv_file: Path
) -> None:
    code, out, err = await run_cli(api, account, "submit", str(csv_file), "--wait", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["task"]["status"] == "COMPLETED"
    assert doc["result"]["agents"]["unified-profiler"]["status"] == "success"
    assert {d["name"] for d in doc["downloads"]} >= {"data_profile_report.json", "data_profile_report.xlsx"}


async def test_submit_of_a_bad_file_exits_1_with_the_error(
    api: ApiServer, account: Account, worker, tmp_path: Path
) -> None:
    bad = tmp_path / "data.csv"
    bad.write_bytes(b"")
    code, _, err = await run_cli(api, account, "submit", str(bad), "--wait")
    assert code == 1
    assert "INVALID_FILE" in err


async def test_submit_usage_error_exits_2(api: ApiServer, account: Account, tmp_path: Path) -> None:
    code, _, _ = await run_cli(api, account, "submit", str(tmp_path / "missing.csv"))
    assert code == 2


async def test_users_create_prints_a_working_key(api: ApiServer) -> None:
    import httpx

    env = {**os.environ, "DATABASE_URL": api.settings.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "users",
        "create",
        "cli-made",
        "--credits",
        "77",
        "--admin",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    made = json.loads(out)
    assert set(made) >= {"user_id", "api_key"}
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {made['api_key']}"}) as c:
        me = (await c.get("/api/v1/me")).json()
    assert me == {"user_id": made["user_id"], "name": "cli-made", "credits": 77, "is_admin": True}


async def test_migrate_is_idempotent(api: ApiServer) -> None:
    env = {**os.environ, "DATABASE_URL": api.settings.database_url}
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
