"""The `agensium` client commands as subprocesses against the live test service: submit --follow
--download, tasks list/show/cancel/retry/delete, download, watch, where the URL and key come from,
exit statuses; and multipart uploads through an API with a small multipart threshold."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from service.client import AgensiumClient
from service.storage import Storage
from tests.conftest import Account, ApiServer, free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

MiB = 1024 * 1024


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any agensium setting, with an empty HOME (no config file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENSIUM_") and k != "XDG_CONFIG_HOME"}
    return {**env, "HOME": str(home), **extra}


async def run_cli(env: Mapping[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def env(api: ApiServer, account: Account, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path, AGENSIUM_URL=api.url, AGENSIUM_API_KEY=account.api_key)


async def wait_for_status(api: ApiServer, account: Account, task_id: str, statuses: set[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        async with asyncio.timeout(30):
            while True:
                task = (await client.get(f"/api/v1/tasks/{task_id}")).json()
                if task["status"] in statuses:
                    return dict(task)
                await asyncio.sleep(0.05)


# --- submit, download ---------------------------------------------------------------------------


async def test_submit_follow_download_saves_every_output_and_download_fetches_them_again(
    env: dict[str, str], worker: None, csv_file: Path, tmp_path: Path
) -> None:
    baseline = tmp_path / "baseline.csv"
    baseline.write_text("id,name,amount\n1,alice,10.5\n2,bob,4\n")
    out_dir = tmp_path / "out"
    code, out, err = await run_cli(
        env, "submit", str(csv_file), "--baseline", str(baseline), "--follow", "--download", str(out_dir), "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["task"]["status"] == "COMPLETED"
    sizes = {d["name"]: d["size"] for d in doc["downloads"]}
    assert {"data_profile_report.json", "data_profile_report.xlsx"} <= set(sizes)
    assert {d["name"]: d["size"] for d in doc["downloaded"]} == sizes
    assert {p.name: p.stat().st_size for p in out_dir.iterdir()} == sizes  # no .part file left behind
    # the progress display: the overall bar and one bar per agent of the chain, all done
    for agent in doc["task"]["agents"]:
        assert f"✓ {agent}" in err

    again = tmp_path / "again"
    code, out, err = await run_cli(env, "download", doc["task"]["task_id"], str(again), "--json")
    assert code == 0, err
    saved = json.loads(out)["files"]
    assert {f["name"]: f["size"] for f in saved} == sizes
    for name in sizes:
        assert (again / name).read_bytes() == (out_dir / name).read_bytes()


async def test_download_of_a_task_without_outputs_exits_1(
    env: dict[str, str], api: ApiServer, account: Account, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        task = (await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).json()
    code, out, err = await run_cli(env, "download", task["task_id"], str(tmp_path / "d"), "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "NOT_READY"
    assert "CREATED" in err


# --- tasks --------------------------------------------------------------------------------------


async def test_tasks_show_retry_delete_round_trip_of_a_failed_task(
    env: dict[str, str], api: ApiServer, account: Account, worker: None, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"")
    code, out, err = await run_cli(env, "submit", str(bad), "--follow", "--json")
    assert code == 1, err
    task_id = json.loads(out)["task"]["task_id"]

    code, out, _ = await run_cli(env, "tasks", "show", task_id, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "FAILED" and json.loads(out)["error"]["code"] == "INVALID_FILE"
    code, out, _ = await run_cli(env, "tasks", "show", task_id)
    assert code == 0 and task_id in out and "INVALID_FILE" in out

    code, out, err = await run_cli(env, "tasks", "retry", task_id, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "QUEUED"
    await wait_for_status(api, account, task_id, {"FAILED"})

    code, out, err = await run_cli(env, "tasks", "delete", task_id, "--json")
    assert (code, json.loads(out)) == (0, {"task_id": task_id, "deleted": True}), err
    code, out, err = await run_cli(env, "tasks", "show", task_id, "--json")
    assert code == 1
    assert json.loads(out)["error"]["code"] == "TASK_NOT_FOUND"
    assert "TASK_NOT_FOUND" in err


async def test_tasks_list_filters_pages_and_cancel(env: dict[str, str], api: ApiServer, account: Account) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        created = [(await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).json() for _ in range(3)]
    ids = [t["task_id"] for t in reversed(created)]  # newest first

    code, out, err = await run_cli(env, "tasks", "cancel", ids[0], "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "CANCELLED"
    code, _, err = await run_cli(env, "tasks", "cancel", ids[0])
    assert code == 1 and "INVALID_STATE" in err

    code, out, err = await run_cli(env, "tasks", "list", "--limit", "1", "--json")
    assert code == 0, err
    page = json.loads(out)
    assert [t["task_id"] for t in page["items"]] == ids[:1] and page["next_cursor"]
    code, out, _ = await run_cli(env, "tasks", "list", "--limit", "1", "--all", "--json")
    assert json.loads(out) == {"items": json.loads(out)["items"], "next_cursor": None}
    assert [t["task_id"] for t in json.loads(out)["items"]] == ids
    code, out, _ = await run_cli(env, "tasks", "list", "--status", "created", "--json")
    assert [t["task_id"] for t in json.loads(out)["items"]] == ids[1:]
    code, out, err = await run_cli(env, "tasks", "list", "--limit", "2")
    assert code == 0
    assert ids[0] in out and ids[1] in out and ids[2] not in out and "CANCELLED" in out
    assert "--cursor" in err


# --- watch --------------------------------------------------------------------------------------


async def start_watch(env: Mapping[str, str], *args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service.cli",
        "watch",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    async with asyncio.timeout(15):  # connected and the task list read: events from now on are seen
        while b"watching" not in (line := await proc.stderr.readline()):
            assert line, "watch ended before it started watching"
    return proc


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """Ctrl-C, as a user stops `watch`."""
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    out = await asyncio.wait_for(proc.stdout.read(), 15)
    return await asyncio.wait_for(proc.wait(), 15), out.decode()


async def test_watch_shows_a_task_from_queued_to_done_and_exits_0_on_ctrl_c(
    env: dict[str, str], worker: None, csv_file: Path
) -> None:
    as_json = await start_watch(env, "--json")
    as_table = await start_watch(env)
    try:
        code, out, err = await run_cli(env, "submit", str(csv_file), "--json")
        assert code == 0, err
        task_id = json.loads(out)["task"]["task_id"]
        lines: list[dict[str, Any]] = []
        assert as_json.stdout is not None
        async with asyncio.timeout(30):
            while not any(e["event"] == "done" for e in lines):
                line = await as_json.stdout.readline()
                assert line, "watch --json ended"
                lines.append(json.loads(line))
    finally:
        code_json, _ = await stop(as_json)
        code_table, table = await stop(as_table)
    mine = [e for e in lines if e["data"]["task_id"] == task_id]
    assert mine[-1]["event"] == "done" and mine[-1]["data"]["status"] == "COMPLETED"
    assert {"status", "progress"} <= {e["event"] for e in mine}
    ids = [int(e["id"]) for e in lines]
    assert ids == sorted(set(ids))  # each event once, in order
    assert code_json == 0 and code_table == 0
    assert task_id[:8] in table and "COMPLETED" in table and "profile-my-data" in table
    assert "watching 0 running task(s)" in table  # the count agrees with the rows: this one has ended


# --- where the URL and key come from; exit statuses ---------------------------------------------


async def test_connection_from_flag_then_environment_then_config_file(
    api: ApiServer, account: Account, tmp_path: Path
) -> None:
    good_file = tmp_path / "good.toml"
    good_file.write_text(f'url = "{api.url}"\napi_key = "{account.api_key}"\n')
    dead_url_file = tmp_path / "dead-url.toml"
    dead_url_file.write_text(f'url = "http://127.0.0.1:9"\napi_key = "{account.api_key}"\n')
    default_file = tmp_path / ".config" / "agensium" / "config.toml"
    default_file.parent.mkdir(parents=True)
    default_file.write_text(f'url = "{api.url}"\napi_key = "{account.api_key}"\n')
    home = tmp_path / "empty-home"
    home.mkdir()
    listing = ("tasks", "list", "--json")
    runs = {
        "default file": (cli_env(tmp_path), ()),
        "named file": (cli_env(home, AGENSIUM_CONFIG=str(good_file)), ()),
        "env key over file": (cli_env(home, AGENSIUM_CONFIG=str(good_file), AGENSIUM_API_KEY="nope"), ()),
        "flag key over env": (
            cli_env(home, AGENSIUM_CONFIG=str(good_file), AGENSIUM_API_KEY="nope"),
            ("--api-key", account.api_key),
        ),
        "env url over file": (cli_env(home, AGENSIUM_CONFIG=str(dead_url_file), AGENSIUM_URL=api.url), ()),
        "flag url over env": (
            cli_env(home, AGENSIUM_CONFIG=str(good_file), AGENSIUM_URL=api.url),
            ("--url", "http://127.0.0.1:9"),
        ),
        "missing named file": (cli_env(home, AGENSIUM_CONFIG=str(tmp_path / "none.toml")), ()),
        "no key anywhere": (cli_env(home, AGENSIUM_URL=api.url), ()),
    }
    results = await asyncio.gather(*(run_cli(e, *listing, *flags) for e, flags in runs.values()))
    got = dict(zip(runs, results, strict=True))
    assert {name: code for name, (code, _, _) in got.items()} == {
        "default file": 0,
        "named file": 0,
        "env key over file": 1,
        "flag key over env": 0,
        "env url over file": 0,
        "flag url over env": 1,
        "missing named file": 2,
        "no key anywhere": 2,
    }
    assert json.loads(got["env key over file"][1])["error"]["code"] == "UNAUTHORIZED"
    assert "cannot reach the API" in got["flag url over env"][2]
    assert "no such file" in got["missing named file"][2]
    assert "no API key" in got["no key anywhere"][2]


@pytest.mark.parametrize(
    "argv",
    [
        ("tasks",),
        ("tasks", "list", "--limit", "0"),
        ("tasks", "show"),
        ("download", "some-task"),
        ("submit", "missing.csv", "--follow"),
        ("watch", "--bogus"),
    ],
)
async def test_usage_errors_exit_2(env: dict[str, str], argv: tuple[str, ...]) -> None:
    code, out, err = await run_cli(env, *argv)
    assert code == 2, (out, err)
    assert out == ""


async def test_a_broken_config_file_is_a_usage_error(tmp_path: Path) -> None:
    broken = tmp_path / "config.toml"
    broken.write_text('url = "http://x\n')
    code, _, err = await run_cli(cli_env(tmp_path, AGENSIUM_CONFIG=str(broken)), "tasks", "list")
    assert code == 2 and str(broken) in err


# --- multipart uploads --------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def multipart_api(api: ApiServer, storage: Storage) -> AsyncIterator[ApiServer]:
    """A second API on the run's database and bucket whose multipart threshold is 1 MiB (5 MiB parts)."""
    from service.api.app import create_app

    settings = api.settings.model_copy(update={"multipart_threshold_bytes": MiB, "multipart_part_bytes": 5 * MiB})
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
    yield ApiServer(f"http://127.0.0.1:{port}", settings)
    server.should_exit = True
    await task


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    """A CSV of a bit over 11 MiB: three parts of 5, 5 and ~1 MiB."""
    path = tmp_path / "big.csv"
    rows = "".join(f"{i},name-{i % 97},{i * 0.25}\n" for i in range(520_000))
    path.write_text("id,name,amount\n" + rows)
    assert 10 * MiB < path.stat().st_size < 15 * MiB
    return path


class FlakyStore(httpx.AsyncHTTPTransport):
    """The real object store, except that the first attempt at part 2 fails like a dropped connection."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        part = int(request.url.params.get("partNumber", "0"))
        self.sent.append(part)
        if part == 2 and self.sent.count(2) == 1:
            raise httpx.WriteError("connection reset by peer")
        return await super().handle_async_request(request)


async def test_multipart_upload_resumes_after_stored_parts_and_retries_a_failed_part(
    multipart_api: ApiServer, account: Account, big_csv: Path
) -> None:
    size = big_csv.stat().st_size
    store = FlakyStore()
    async with AgensiumClient(multipart_api.url, account.api_key, storage_transport=store) as client:
        task = await client.create_task("profile-my-data")
        declared = [{"name": "primary.csv", "content_type": "text/csv", "size": size}]
        (upload,) = await client.upload_urls(task["task_id"], declared, has_parameters=False)
        assert upload["method"] == "MULTIPART" and upload["part_size"] == 5 * MiB
        assert [p["part_number"] for p in upload["parts"]] == [1, 2, 3]
        # an earlier, interrupted run sent part 1
        async with httpx.AsyncClient() as plain:
            with big_csv.open("rb") as source:
                first = await plain.put(upload["parts"][0]["url"], content=source.read(5 * MiB))
            assert first.status_code == 200
        progress: list[int] = []
        await client.upload_input(task["task_id"], upload, big_csv, progress.append)
        queued = await client.process(task["task_id"])
    assert store.sent == [2, 2, 3]  # part 1 skipped, part 2 sent again after the failure
    assert sum(progress) == size  # the failed attempt's bytes were taken back
    assert queued["status"] == "QUEUED"


async def test_submit_of_a_file_over_the_threshold_goes_multipart_and_completes(
    multipart_api: ApiServer, account: Account, worker: None, big_csv: Path, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, AGENSIUM_URL=multipart_api.url, AGENSIUM_API_KEY=account.api_key)
    code, out, err = await run_cli(env, "submit", str(big_csv), "--follow", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["task"]["status"] == "COMPLETED"
    assert doc["result"]["agents"]["unified-profiler"]["summary_metrics"]["total_rows"] == 520_000
