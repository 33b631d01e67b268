"""A new user's first commands against the live test service: the command `agensium dev`'s banner prints runs
as printed in a fresh shell (no venv on its PATH), `submit --follow` ends with a short summary, a misspelt
tool or an unreadable file type is answered with the valid choices, and every file type the server reads is
accepted."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from agents.readers import FORMATS
from service.dev import banner
from tests.conftest import Account, ApiServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAX_SUMMARY_LINES = 40
BAR = "━"  # rich's bars, of the uploads and of each agent


def fresh_shell(home: Path) -> dict[str, str]:
    """A new login's environment, as `env -i PATH=/usr/bin:/bin HOME=...`: no venv, no AGENSIUM_* setting."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(home)}


async def shell(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """`sh -c command`, stdout and stderr in one stream as a terminal shows them."""
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def run_cli(api: ApiServer, account: Account, cwd: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "AGENSIUM_URL": api.url, "AGENSIUM_API_KEY": account.api_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service.cli", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def after_the_bars(output: str) -> list[str]:
    lines = output.splitlines()
    last_bar = max(index for index, line in enumerate(lines) if BAR in line)
    return lines[last_bar + 1 :]


async def own_tasks(api: ApiServer, account: Account) -> list[dict]:
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        return list((await client.get("/api/v1/tasks")).json()["items"])


async def test_the_banners_command_runs_as_printed_in_a_fresh_shell_and_ends_with_a_summary(
    api: ApiServer, account: Account, worker: None, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "data.csv").write_text("id,name,amount\n1,alice,10.5\n2,bob,\n3,carol,7.25\n4,dave,3\n")
    (line,) = [line for line in banner(api.url, account.api_key, tmp_path).splitlines() if "try: " in line]
    printed = line.split("try: ", 1)[1]
    assert (await shell("command -v agensium", home, fresh_shell(home)))[0] != 0  # not on a new shell's PATH

    code, output = await shell(printed, home, fresh_shell(home))  # from the user's directory, not the repo's
    assert code == 0, output
    summary = after_the_bars(output)
    assert len(summary) <= MAX_SUMMARY_LINES, output
    assert re.fullmatch(r"COMPLETED: profile-my-data on data\.csv in \d+\.\d s, task [0-9a-f-]{36}", summary[0])
    assert "rows: 4 × 3 columns" in summary
    assert any(re.fullmatch(r"alerts: (none|\d+ critical, \d+ high, \d+ medium, \d+ low)", s) for s in summary)
    assert any(s.startswith("outcome: grade ") for s in summary)

    # The summary's own hint saves the outputs, as printed, from the same fresh shell.
    (hint,) = [s for s in summary if s.startswith("outputs (save them with: ")]
    download = hint.removeprefix("outputs (save them with: ").removesuffix("):")
    names = [s.split()[0] for s in summary[summary.index(hint) + 1 :]]
    assert {"data_profile_report.json", "data_profile_report.xlsx"} <= set(names)
    key = f"AGENSIUM_URL={api.url} AGENSIUM_API_KEY={account.api_key}"
    code, output = await shell(f"{key} {download.removesuffix(' DIR')} saved", home, fresh_shell(home))
    assert code == 0, output
    assert sorted(path.name for path in (home / "saved").iterdir()) == sorted(names)


async def test_submit_follow_download_summary_agrees_with_the_result(
    api: ApiServer, account: Account, worker: None, tmp_path: Path
) -> None:
    data = tmp_path / "orders.csv"
    rows = ["id,email,amount"] + [f"{i},user{i}@example.com,{i * 1.5}" for i in range(1, 41)]
    data.write_text("\n".join([*rows, "7,user7@example.com,10.5", "41,,not a number"]) + "\n")
    out_dir = tmp_path / "out"
    code, out, err = await run_cli(
        api, account, tmp_path, "submit", str(data), "--tool", "clean-my-data", "--follow", "--download", str(out_dir)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) <= MAX_SUMMARY_LINES and not out.lstrip().startswith("{"), out
    task_id = lines[0].rsplit("task ", 1)[1]
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        summary = (await client.get(f"/api/v1/tasks/{task_id}/result")).json()["summary"]
    assert summary["rows_quarantined"] >= 1  # the last row: no email, an amount that is no number
    rows_line = f"rows: {summary['rows']:,} in → {summary['rows_out']:,} out ({summary['rows_quarantined']} quarantined"
    assert next(line for line in lines if line.startswith("rows: ")).startswith(rows_line)
    counts = summary["alerts_by_severity"]
    alerts_line = ", ".join(f"{counts[s]} {s}" for s in ("critical", "high", "medium", "low"))
    assert f"alerts: {alerts_line}" in lines if any(counts.values()) else "alerts: none" in lines
    saved = lines[lines.index(f"saved in {out_dir}/:") + 1 :]
    assert sorted(line.split()[0] for line in saved) == sorted(path.name for path in out_dir.iterdir())
    assert {"cleaned_data.csv", "cleaning_report.xlsx"} <= {path.name for path in out_dir.iterdir()}


async def test_submit_json_is_the_whole_result(api: ApiServer, account: Account, worker: None, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,x\n2,y\n")
    code, out, err = await run_cli(api, account, tmp_path, "submit", str(data), "--follow", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["result"]["summary"]["rows"] == 2 and document["task"]["status"] == "COMPLETED"


async def test_a_misspelt_tool_or_agent_names_the_valid_ones_and_creates_nothing(
    api: ApiServer, account: Account, tmp_path: Path
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    async with httpx.AsyncClient(base_url=api.url, headers=account.headers) as client:
        catalog = (await client.get("/api/v1/tools")).json()["tools"]
    code, _, err = await run_cli(api, account, tmp_path, "submit", str(data), "--tool", "clean-my-dta")
    err = " ".join(err.split())  # the console wraps long lines
    assert code == 2
    assert "unknown tool 'clean-my-dta' (did you mean 'clean-my-data'?); valid: " in err
    assert all(tool["tool_id"] in err for tool in catalog)
    code, _, err = await run_cli(
        api, account, tmp_path, "submit", str(data), "--tool", "clean-my-data", "--agents", "type-fixer,null-handlr"
    )
    assert code == 2 and "did you mean 'null-handler'?" in " ".join(err.split())
    assert await own_tasks(api, account) == []


async def test_every_file_type_the_server_reads_is_accepted_and_others_are_refused_with_the_list(
    api: ApiServer, account: Account, worker: None, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("a,b\n1,x\n2,y\n")
    (tmp_path / "rows.jsonl").write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n")
    runs = await asyncio.gather(
        *(run_cli(api, account, tmp_path, "submit", name, "--follow") for name in ("notes.txt", "rows.jsonl"))
    )
    for code, out, err in runs:
        assert code == 0, err
        assert out.startswith("COMPLETED: profile-my-data on ") and "rows: 2 × 2 columns" in out
    code, _, err = await run_cli(api, account, tmp_path, "submit", "report.pdf")
    assert code == 2
    listed = " ".join(err.split()).split("unsupported file type '.pdf'; accepted: ", 1)[1].split(", ")
    assert set(listed) == set(FORMATS)  # the readers' formats, as the server's catalog serves them
    assert len(await own_tasks(api, account)) == 2  # the refused file created nothing
