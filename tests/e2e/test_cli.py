"""`agensium submit` as a subprocess against the live test service, exactly as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from service.store import SQL_DIR
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
    """`agensium migrate` on a fresh empty database applies every migration, then, run again, applies none; the
    schema it leaves is the one the test run's own database was given."""
    server, _, _ = api.settings.database_url.rpartition("/")
    database = f"agensium_test_migrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        env = {**os.environ, "DATABASE_URL": f"{server}/{database}"}
        said = []
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
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            said.append(out.decode().strip())
        migrations = sorted(path.stem for path in (SQL_DIR / "migrations").glob("[0-9][0-9][0-9]_*.sql"))
        assert said == [f"applied {len(migrations)} migration(s): {', '.join(migrations)}", "applied 0 migration(s)"]
        fresh = await schema(f"{server}/{database}")
        assert fresh["migrations"] == migrations
        tables = {table for table, *_ in fresh["columns"]}
        assert {"users", "tasks", "task_events", "credit_ledger", "workers", "schema_migrations"} <= tables
        assert fresh == await schema(api.settings.database_url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def schema(url: str) -> dict[str, list]:
    """What the migrations made of a database: columns, constraints, indexes, and the migrations recorded."""
    conn = await asyncpg.connect(url)
    try:
        return {
            "columns": [
                tuple(row)
                for row in await conn.fetch(
                    "SELECT table_name, column_name, data_type, is_nullable, column_default"
                    " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
                )
            ],
            "constraints": [
                tuple(row)
                for row in await conn.fetch(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
                )
            ],
            "indexes": [
                tuple(row)
                for row in await conn.fetch(
                    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
                )
            ],
            "migrations": [row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations ORDER BY 1")],
        }
    finally:
        await conn.close()
