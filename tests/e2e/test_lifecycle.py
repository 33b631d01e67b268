"""End to end through HTTP only: create -> upload-urls -> presigned PUT -> process -> SSE until done
-> downloads -> both reports fetched through their URLs and checked against an independent
computation; SSE resume with Last-Event-ID; malformed inputs."""

from __future__ import annotations

import asyncio
import io
import json
import math
from contextlib import aclosing
from pathlib import Path

import httpx
import numpy as np
import openpyxl
import pytest

from tests.conftest import ApiServer
from tests.support import (
    SseEvent,
    collect_until_done,
    create_task,
    run_to_completion,
    sse_events,
    upload_inputs,
    wait_for_status,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def write_dataset(path: Path, rows: int, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    amount = rng.normal(100, 15, rows).round(3)
    amount_missing = rng.random(rows) < 0.1
    qty = rng.integers(0, 50, rows)
    city = rng.choice(["paris", "lyon", "nice", "lille"], rows, p=[0.4, 0.3, 0.2, 0.1])
    with path.open("w") as f:
        f.write("id,amount,qty,city\n")
        for i in range(rows):
            a = "" if amount_missing[i] else repr(float(amount[i]))
            f.write(f"{i + 1},{a},{qty[i]},{city[i]}\n")
    return {"amount": np.where(amount_missing, np.nan, amount), "qty": qty, "city": city}


def field(report: dict, name: str) -> dict:
    agents = report["agents"]
    envelope = (
        agents["unified-profiler"]
        if isinstance(agents, dict)
        else next(a for a in agents if a["agent_id"] == "unified-profiler")
    )
    return next(f for f in envelope["data"]["fields"] if f["field_name"] == name)


async def test_end_to_end_over_http(client: httpx.AsyncClient, worker, tmp_path: Path) -> None:
    data_path = tmp_path / "primary.csv"
    truth = write_dataset(data_path, 5000)
    task = await create_task(client)
    tid = task["task_id"]
    await upload_inputs(client, tid, {"primary.csv": data_path})

    connected = asyncio.Event()
    stream = asyncio.create_task(collect_until_done(client, f"/api/v1/tasks/{tid}/events", connected=connected))
    await asyncio.wait_for(connected.wait(), 30)
    r = await client.post(f"/api/v1/tasks/{tid}/process")
    assert r.status_code == 202
    events = await stream

    assert events[0].event == "status" and events[0].data["status"] == "UPLOADING", "the snapshot, then every change"
    assert events[-1].event == "done" and events[-1].data["status"] == "COMPLETED"
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    statuses = [e.data["status"] for e in events if e.event == "status"]
    assert statuses[-1] == "COMPLETED" and "PROCESSING" in statuses
    progress = [e.data["progress"] for e in events if e.event == "progress"]
    assert progress == sorted(progress) and progress, "progress events arrive and never go down"
    last_progress = [e.data for e in events if e.event == "progress"][-1]
    assert last_progress["message"] == "Done", "the run's last message is not lost to throttling"

    final = (await client.get(f"/api/v1/tasks/{tid}")).json()
    assert final["status"] == "COMPLETED" and final["progress"] == 100 and final["attempts"] == 1
    assert final["started_at"] and final["finished_at"]

    result = (await client.get(f"/api/v1/tasks/{tid}/result")).json()
    assert result["status"] == "success"

    files = {f["name"]: f for f in (await client.get(f"/api/v1/tasks/{tid}/downloads")).json()["files"]}
    async with httpx.AsyncClient(timeout=60) as s3:
        report = (await s3.get(files["data_profile_report.json"]["url"])).json()
        xlsx = await s3.get(files["data_profile_report.xlsx"]["url"])
        manifest = (await s3.get(files["manifest.json"]["url"])).json()
    assert xlsx.status_code == 200 and len(xlsx.content) == files["data_profile_report.xlsx"]["size"]
    assert {o["name"] for o in manifest["outputs"]} >= {"data_profile_report.json", "data_profile_report.xlsx"}
    import hashlib

    stored_xlsx = next(o for o in manifest["outputs"] if o["name"] == "data_profile_report.xlsx")
    assert stored_xlsx["sha256"] == hashlib.sha256(xlsx.content).hexdigest()

    # The profile's numbers against an independent computation on the same file.
    amount = truth["amount"]
    valid = amount[~np.isnan(amount)]
    f_amount = field(report, "amount")
    assert f_amount["properties"]["null_count"] == int(np.isnan(amount).sum())
    stats = f_amount["statistics"]
    assert math.isclose(stats["mean"], valid.mean(), rel_tol=1e-9)
    assert math.isclose(stats["std"], valid.std(ddof=1), rel_tol=1e-9)
    assert math.isclose(stats["min"], valid.min()) and math.isclose(stats["max"], valid.max())
    assert math.isclose(stats["median"], float(np.median(valid)), rel_tol=1e-9)
    f_qty = field(report, "qty")
    assert f_qty["properties"]["unique_count"] == len(np.unique(truth["qty"]))
    f_city = field(report, "city")
    top = f_city["distribution"]["top_values"][0]
    values, counts = np.unique(truth["city"], return_counts=True)
    assert top["value"] == values[counts.argmax()] and top["count"] == counts.max()

    book = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    assert {"Summary", "Findings", "Row-Level Issues"} <= set(book.sheetnames)
    assert len(book.sheetnames) >= 4


async def test_sse_resume_gets_exactly_the_missed_events(client: httpx.AsyncClient, worker, tmp_path: Path) -> None:
    data_path = tmp_path / "primary.csv"
    write_dataset(data_path, 60_000, seed=3)
    task = await create_task(client)
    tid = task["task_id"]
    await upload_inputs(client, tid, {"primary.csv": data_path})
    url = f"/api/v1/tasks/{tid}/events"

    reference_connected, interrupted_connected = asyncio.Event(), asyncio.Event()
    reference = asyncio.create_task(collect_until_done(client, url, connected=reference_connected))
    first_part: list = []

    async def until_first_progress() -> None:
        async for event in sse_events(client, url, connected=interrupted_connected):
            first_part.append(event)
            if event.event in ("progress", "done"):
                return  # drop the connection mid-run

    interrupted = asyncio.create_task(until_first_progress())
    await asyncio.wait_for(asyncio.gather(reference_connected.wait(), interrupted_connected.wait()), 30)
    assert (await client.post(f"/api/v1/tasks/{tid}/process")).status_code == 202
    await asyncio.wait_for(interrupted, 60)
    resumed = await collect_until_done(client, url, last_event_id=first_part[-1].id)
    full = await reference

    got = first_part + resumed
    assert [(e.id, e.event) for e in got] == [(e.id, e.event) for e in full]
    assert [e.data for e in got] == [e.data for e in full]


async def test_user_stream_carries_all_my_tasks(client: httpx.AsyncClient, worker, csv_file: Path) -> None:
    seen: list = []
    task_ids: set[str] = set()

    connected = asyncio.Event()

    async def follow() -> None:
        async for event in sse_events(client, "/api/v1/events", connected=connected):
            seen.append(event)
            done = {e.data["task_id"] for e in seen if e.event == "done"}
            if task_ids and task_ids <= done:
                return

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(connected.wait(), 30)
    for _ in range(2):
        task = await create_task(client)
        task_ids.add(task["task_id"])
        await upload_inputs(client, task["task_id"], {"primary.csv": csv_file})
        assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    await asyncio.wait_for(follower, 120)
    ids = [e.id for e in seen]
    assert ids == sorted(ids)
    assert {e.data["task_id"] for e in seen} >= task_ids
    # Resume the user stream from the middle: exactly the rest, from the table.
    middle = seen[len(seen) // 2].id
    rest: list = []

    async def replay() -> None:
        async for event in sse_events(client, "/api/v1/events", last_event_id=middle):
            rest.append(event)
            if event.id == seen[-1].id:
                return

    await asyncio.wait_for(replay(), 30)
    assert [e.id for e in rest] == [e.id for e in seen if e.id > middle]


async def test_deleting_a_task_tells_the_streams(client: httpx.AsyncClient, worker, csv_file: Path) -> None:
    """DELETE writes a last `status` event of the task with `"deleted": true`: the user's stream gets it live, a
    per-task stream waiting past the task's `done` gets it and ends, and a stream resuming from before the
    deletion replays it (and none of the deleted task's history, which went with it). The task FAILED: past a
    COMPLETED task's `done` a resumed stream does not wait at all (204, tests/e2e/test_replay.py)."""
    not_text = csv_file.with_name("not_text.csv")
    not_text.write_bytes(b"a,b\n1,\x002\n")
    done = await run_to_completion(client, {"primary.csv": not_text})
    assert done["status"] == "FAILED", done
    tid = done["task_id"]
    done_id = (await collect_until_done(client, f"/api/v1/tasks/{tid}/events"))[-1].id
    user_connected, task_connected = asyncio.Event(), asyncio.Event()

    async def first_user_event() -> SseEvent:
        async with aclosing(sse_events(client, "/api/v1/events", connected=user_connected)) as events:
            async for event in events:
                return event
        raise AssertionError("the user stream ended")

    async def rest_of_task_stream() -> list[SseEvent]:
        return [e async for e in sse_events(client, f"/api/v1/tasks/{tid}/events", done_id, connected=task_connected)]

    live = asyncio.create_task(asyncio.wait_for(first_user_event(), 30))
    waiting = asyncio.create_task(asyncio.wait_for(rest_of_task_stream(), 30))
    await asyncio.wait_for(asyncio.gather(user_connected.wait(), task_connected.wait()), 30)
    assert (await client.delete(f"/api/v1/tasks/{tid}")).status_code == 204

    deleted = await live
    assert deleted.event == "status" and deleted.id is not None and deleted.id > done_id
    as_event = {k: v for k, v in done.items() if k != "credits"}  # GET's own field (README "Using it")
    assert deleted.data == {**as_event, "message": "Deleted", "deleted": True}
    assert [(e.id, e.event, e.data) for e in await waiting] == [(deleted.id, "status", deleted.data)]

    async def replay_from_start() -> SseEvent:
        async with aclosing(sse_events(client, "/api/v1/events", last_event_id=0)) as events:
            async for event in events:
                return event
        raise AssertionError("the user stream ended")

    replayed = await asyncio.wait_for(replay_from_start(), 30)
    assert (replayed.id, replayed.event, replayed.data) == (deleted.id, "status", deleted.data)
    assert (await client.get(f"/api/v1/tasks/{tid}")).status_code == 404
    assert (await client.get(f"/api/v1/tasks/{tid}/events")).status_code == 404


MALFORMED = {
    "empty": b"",
    "header_only": b"id,name,amount\n",
    "binary": bytes(range(256)) * 40,
    "ragged": b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
async def test_malformed_input_fails_cleanly_and_next_task_runs(
    client: httpx.AsyncClient, worker, tmp_path: Path, csv_file: Path, kind: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(MALFORMED[kind])
    failed = await run_to_completion(client, {"primary.csv": bad})
    assert failed["status"] == "FAILED", failed
    assert failed["error"]["code"] == "INVALID_FILE"
    if kind == "ragged":
        assert "line 4" in failed["error"]["message"], failed["error"]["message"]
    ok = await run_to_completion(client, {"primary.csv": csv_file})
    assert ok["status"] == "COMPLETED", ok


async def test_parameters_json_and_invalid_parameters(client: httpx.AsyncClient, worker, csv_file: Path) -> None:
    task = await create_task(client)
    await upload_inputs(
        client, task["task_id"], {"primary.csv": csv_file}, parameters={"unified-profiler": {"top_n_values": 3}}
    )
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    result = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()
    assert result["agents"]["unified-profiler"]["data"]["parameters"]["top_n_values"] == 3

    bad = await create_task(client)
    await upload_inputs(
        client, bad["task_id"], {"primary.csv": csv_file}, parameters={"unified-profiler": {"no_such_field": 1}}
    )
    assert (await client.post(f"/api/v1/tasks/{bad['task_id']}/process")).status_code == 202
    failed = await wait_for_status(client, bad["task_id"], {"COMPLETED", "FAILED"})
    assert failed["status"] == "FAILED" and failed["error"]["code"] == "INVALID_PARAMETERS"
    assert "no_such_field" in failed["error"]["message"]


async def test_insufficient_credits(api: ApiServer, store, worker, csv_file: Path) -> None:
    _, key = await store.create_user("poor", credits=5)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        done = await run_to_completion(c, {"primary.csv": csv_file})
        assert done["status"] == "FAILED" and done["error"]["code"] == "INSUFFICIENT_CREDITS"
        assert (await c.get("/api/v1/me")).json()["credits"] == 5


async def test_retry_after_failure_runs_again(client: httpx.AsyncClient, worker, tmp_path: Path) -> None:
    bad = tmp_path / "primary.csv"
    bad.write_bytes(b"")
    failed = await run_to_completion(client, {"primary.csv": bad})
    assert failed["status"] == "FAILED"
    r = await client.post(f"/api/v1/tasks/{failed['task_id']}/retry")
    assert r.status_code == 202 and r.json()["status"] == "QUEUED" and r.json()["error"] is None
    again = await wait_for_status(client, failed["task_id"], {"FAILED", "COMPLETED"})
    assert again["status"] == "FAILED" and again["attempts"] == 2


async def test_result_json_is_plain_json(client: httpx.AsyncClient, worker, csv_file: Path) -> None:
    done = await run_to_completion(client, {"primary.csv": csv_file})
    assert done["status"] == "COMPLETED"
    body = (await client.get(f"/api/v1/tasks/{done['task_id']}/result")).text
    parsed = json.loads(body)
    envelope = parsed["agents"]["unified-profiler"]
    for key in (
        "status",
        "agent_id",
        "agent_name",
        "execution_time_ms",
        "summary_metrics",
        "data",
        "alerts",
        "issues",
        "recommendations",
        "executive_summary",
        "issue_summary",
    ):
        assert key in envelope


async def test_chained_task_takes_the_source_tasks_data_output(
    client: httpx.AsyncClient, worker, tmp_path: Path, csv_file: Path
) -> None:
    """`source_task_id`: no upload; a real clean-my-data task's cleaned data, where its run stored it, becomes
    the chained task's primary input."""
    dirty = tmp_path / "dirty.csv"
    dirty.write_text(csv_file.read_text() + "2,bob,\n2,bob,\n")  # two exact duplicates for the cleaner to drop
    cleaned = await run_to_completion(client, {"primary.csv": dirty}, tool_id="clean-my-data")
    assert cleaned["status"] == "COMPLETED", cleaned
    sid = cleaned["task_id"]
    summary = (await client.get(f"/api/v1/tasks/{sid}/result")).json()["summary"]
    assert (summary["rows"], summary["rows_out"]) == (6, 4)

    chained = await create_task(client, source_task_id=sid)
    assert chained["source_task_id"] == sid
    r = await client.post(f"/api/v1/tasks/{chained['task_id']}/process")
    assert r.status_code == 202, r.text
    done = await wait_for_status(client, chained["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    result = (await client.get(f"/api/v1/tasks/{chained['task_id']}/result")).json()
    profiled = result["agents"]["unified-profiler"]["summary_metrics"]
    assert profiled["total_rows"] == 4, "the source's cleaned data, not its 6-row input"

    # A source without a data output (a profile): its own primary upload is its dataset version.
    profile_only = await run_to_completion(client, {"primary.csv": csv_file})
    on_profile = await create_task(client, source_task_id=profile_only["task_id"])
    assert (await client.post(f"/api/v1/tasks/{on_profile['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, on_profile["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done
    result = (await client.get(f"/api/v1/tasks/{on_profile['task_id']}/result")).json()
    assert result["agents"]["unified-profiler"]["summary_metrics"]["total_rows"] == 4, "the profile's own 4-row upload"


async def test_source_task_must_be_mine_and_completed(api: ApiServer, client: httpx.AsyncClient, other_account) -> None:
    pending = await create_task(client)
    r = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "source_task_id": pending["task_id"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_STATE"
    async with httpx.AsyncClient(base_url=api.url, headers=other_account.headers) as other:
        r = await other.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "source_task_id": pending["task_id"]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "TASK_NOT_FOUND"
