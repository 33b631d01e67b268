"""QA pass 8 D15: `agensium submit --params FILE` checks the file before anything is created. A file that is not
JSON, not an object, or keyed by something that is no agent of the tool (nor `inputs` / `cache`) is a usage error
(exit 2), and the server has no new task; a good file is still uploaded as parameters.json."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.client import run_submit
from tests.conftest import Account, ApiServer
from tests.e2e.test_cli import run_cli
from tests.service.test_client_unit import build_parser


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"unified-profiler": {bad json', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        ('["unified-profiler"]', "must be a JSON object keyed by agent id"),
        ("42", "must be a JSON object keyed by agent id"),
    ],
)
def test_a_params_file_that_is_no_json_object_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, message: str
) -> None:
    data = tmp_path / "a.csv"
    data.write_text("a\n1\n")
    params = tmp_path / "bad.json"
    if isinstance(content, bytes):
        params.write_bytes(content)
    else:
        params.write_text(content)
    # port 9 (discard) on loopback: any request would fail with exit 1, not 2
    argv = ["submit", str(data), "--api-key", "k", "--params", str(params), "--url", "http://127.0.0.1:9"]
    assert run_submit(build_parser().parse_args(argv), environ={}) == 2
    assert message in " ".join(capsys.readouterr().err.split())


async def task_count(api: ApiServer, account: Account) -> int:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        page = await client.get("/api/v1/tasks", params={"limit": 200})
        assert page.status_code == 200, page.text
        return len(page.json()["items"])


@pytest.mark.asyncio(loop_scope="session")
async def test_a_params_key_that_is_no_agent_of_the_tool_creates_nothing(
    api: ApiServer, account: Account, tmp_path: Path, csv_file: Path
) -> None:
    for text, exit_code, said in (
        ('{"unified-profilr": {}}', 2, "did you mean 'unified-profiler'"),  # a misspelled agent, and the one meant
        ('{"cleaner": {}}', 2, "unknown profile-my-data agent 'cleaner'"),
        ('{"unified-profiler": {}, "inputs": {}, "cache": false}', 0, "QUEUED"),  # the reserved keys are no agents
    ):
        params = tmp_path / "params.json"
        params.write_text(text)
        before = await task_count(api, account)
        code, out, err = await run_cli(api, account, "submit", str(csv_file), "--params", str(params))
        assert code == exit_code, err
        assert said in " ".join((out + err).split())
        assert await task_count(api, account) == before + (exit_code == 0)
