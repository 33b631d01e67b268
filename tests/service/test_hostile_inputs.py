"""What a hostile (or careless) client sends, against the real API on real PostgreSQL, Redis and S3: bodies
too big to hold, sizes without bounds, strings PostgreSQL cannot store, ids that are not ids. Each answer is
the 4xx of API.md -- never a 5xx, a stream that opens and dies, or a silent WebSocket -- and every presigned
URL lets the store take no more than was declared or allowed."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import pytest_asyncio
import websockets

from service.client import AgensiumClient
from service.config import Settings
from service.errors import ServiceError
from service.lifecycle import _call_part_size
from service.models import MAX_UPLOAD_FILES
from service.storage import MAX_PART_BYTES
from tests.conftest import Account, ApiServer, serve_api
from tests.support import create_task, upload_inputs, wait_for_status

pytestmark = pytest.mark.asyncio(loop_scope="session")

MiB = 1024**2
INT64_MAX = 2**63 - 1


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return dict(error)


# --- bodies are counted as they arrive ---------------------------------------------------------------


def _peak_rss_kib() -> int:
    """This process's peak resident set size since the last reset (Linux: VmHWM)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures peak RSS through Linux's /proc")
async def test_a_streamed_body_is_refused_at_the_limit_without_being_held(api: ApiServer, client: httpx.AsyncClient):
    """200 MB streamed at a JSON route: 413 at the limit (16 MiB), and the API holds no more than the limit. The
    session's API runs in this process (tests/conftest.py serve_api), so the process's peak RSS is the API's plus
    a client that sends one reused 64 KiB chunk over and over (bigger chunks cost the client copies)."""
    chunk = b" " * 65536

    async def body() -> AsyncIterator[bytes]:
        for _ in range(200 * 16):
            yield chunk

    assert (await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})).status_code == 201  # warm
    gc.collect()
    _reset_peak_rss()
    before = _peak_rss_kib()
    r = await client.post("/api/v1/tasks", content=body(), headers={"Content-Type": "application/json"})
    grown_mib = (_peak_rss_kib() - before) / 1024
    assert grown_mib < 20, f"the API's memory grew {grown_mib:.0f} MiB for a refused body"
    error = assert_error(r, 413, "INPUT_TOO_LARGE")
    assert error["details"]["limit"] == api.settings.max_json_body_bytes == 16 * MiB


async def test_a_declared_length_over_the_limit_is_refused_before_the_body(api: ApiServer, account: Account):
    """Content-Length: 1 TB and then only a few bytes: the answer comes without waiting for the rest."""
    url = urlsplit(api.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(
            b"POST /api/v1/tasks HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {account.api_key}\r\nContent-Length: {10**12}\r\n\r\n".encode()
            + b'{"tool_id": '
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    assert status_line.split()[1] == b"413", status_line


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def small_api(settings: Settings, storage: object) -> AsyncIterator[ApiServer]:
    """An API with small limits, so that going over them is cheap."""
    small = settings.model_copy(
        update={
            "max_json_body_bytes": 64 * 1024,
            "max_parameters_bytes": 4096,
            "max_upload_parts_per_call": 20,
            "multipart_threshold_bytes": 10 * MiB,
            "multipart_part_bytes": 5 * MiB,
        }
    )
    async with serve_api(small) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def small(small_api: ApiServer, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=small_api.url, headers=account.headers, timeout=60) as c:
        yield c


async def test_the_json_body_limit_is_a_setting(small: httpx.AsyncClient) -> None:
    labels = {f"k{i}": "v" * 200 for i in range(40)}
    ok = await small.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "labels": labels})
    assert ok.status_code == 201, ok.text
    padded = json.dumps({"tool_id": "profile-my-data"}) + " " * 64 * 1024
    error = assert_error(await small.post("/api/v1/tasks", content=padded), 413, "INPUT_TOO_LARGE")
    assert error["details"]["limit"] == 64 * 1024


async def test_inline_parameters_count_against_the_parameters_limit(small: httpx.AsyncClient) -> None:
    big = {"unified-profiler": {"null_tokens": ["x" * 60] * 100}}  # ~6 KB as JSON, limit 4096
    error = assert_error(
        await small.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "parameters": big}),
        413,
        "INPUT_TOO_LARGE",
    )
    assert error["details"] == {"name": "parameters", "limit": 4096}
    fits = {"unified-profiler": {"null_tokens": ["x" * 60] * 30}}
    ok = await small.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "parameters": fits})
    assert ok.status_code == 201, ok.text


# --- labels, agents, NUL -----------------------------------------------------------------------------


async def test_labels_are_bounded_and_printable(client: httpx.AsyncClient) -> None:
    widest = {f"{i:02d}" + "k" * 62: "v" * 256 for i in range(50)}
    ok = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "labels": widest})
    assert ok.status_code == 201, ok.text
    assert ok.json()["labels"] == widest
    for labels in (
        {**widest, "one-more": "x"},
        {"k" * 65: "v"},
        {"key": "v" * 257},
        {"": "v"},
        {"key": "line\nbreak"},
        {"tab\tkey": "v"},
        {"key": "bell\x07"},
        {"key": "c1\x85"},
    ):
        r = await client.post("/api/v1/tasks", json={"tool_id": "profile-my-data", "labels": labels})
        assert_error(r, 422, "VALIDATION_ERROR")


async def test_nul_characters_are_refused_wherever_they_would_be_stored(client: httpx.AsyncClient) -> None:
    """PostgreSQL refuses NUL in text and jsonb: each of these was a 500."""
    creates = [
        {"tool_id": "profile-my-data", "labels": {"key": "a\u0000b"}},
        {"tool_id": "profile-my-data", "labels": {"a\u0000": "b"}},
        {"tool_id": "profile-my-data", "parameters": {"unified-profiler": {"null_tokens": ["NA\u0000"]}}},
        {"tool_id": "profile-my-data", "parameters": {"test-coverage-agent": {"unique_columns": ["id\u0000"]}}},
    ]
    for body in creates:
        error = assert_error(await client.post("/api/v1/tasks", json=body), 422, "VALIDATION_ERROR")
        assert "NUL" in error["message"] or "control" in error["message"], error
    task = await create_task(client)
    spec = {"name": "primary.csv", "content_type": "text/csv;charset=utf-8\u0000", "size": 10}
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": [spec]})
    assert_error(r, 422, "VALIDATION_ERROR")
    for params in ({"tool_id": "x\u0000"}, {"label": "a:\u0000"}, {"label": "\u0000:b"}):
        assert_error(await client.get("/api/v1/tasks", params=params), 422, "VALIDATION_ERROR")


async def test_agents_may_not_repeat(client: httpx.AsyncClient) -> None:
    body = {"tool_id": "profile-my-data", "agents": ["unified-profiler"] * 50}
    error = assert_error(await client.post("/api/v1/tasks", json=body), 422, "VALIDATION_ERROR")
    assert error["message"].startswith("agents"), error


# --- upload-urls: files, parts, every URL size-bound -------------------------------------------------


async def test_upload_urls_takes_at_most_eleven_files(client: httpx.AsyncClient) -> None:
    """Eleven: master-my-data's primary, nine sources and a contract."""
    task = await create_task(client)
    files = [{"name": f"source_{i}.csv", "content_type": "text/csv", "size": 10} for i in range(MAX_UPLOAD_FILES + 1)]
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": files})
    error = assert_error(r, 422, "VALIDATION_ERROR")
    assert error["message"].startswith("files"), error


async def test_big_files_get_bigger_parts_within_the_part_cap(small: httpx.AsyncClient) -> None:
    """Two 1 GiB files at 5 MiB parts would be 410 part URLs; the cap of 20 raises the part size instead."""
    task = await create_task(small)
    files = [
        {"name": "primary.csv", "content_type": "text/csv", "size": 1024 * MiB},
        {"name": "baseline.csv", "content_type": "text/csv", "size": 1024 * MiB + 1},
    ]
    r = await small.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": files})
    assert r.status_code == 200, r.text
    uploads = {u["name"]: u for u in r.json()["uploads"]}
    assert sum(len(u["parts"]) for u in uploads.values()) <= 20
    for spec in files:
        upload = uploads[spec["name"]]
        assert upload["method"] == "MULTIPART" and upload["part_size"] >= 5 * MiB
        assert len(upload["parts"]) == -(-spec["size"] // upload["part_size"])
        assert all("content-length" in p["url"].split("X-Amz-SignedHeaders=")[1] for p in upload["parts"])


async def test_the_part_size_of_a_call_keeps_its_parts_under_the_cap(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_upload_parts_per_call": 1000, "multipart_part_bytes": 8 * MiB})
    ten_huge = [5 * 1024**3] * 10
    part = _call_part_size(capped, ten_huge)
    assert sum(-(-size // part) for size in ten_huge) <= 1000 and part <= MAX_PART_BYTES
    assert _call_part_size(capped, [200 * MiB]) == 8 * MiB  # small files keep the preferred part size
    with pytest.raises(ServiceError) as refused:
        _call_part_size(capped.model_copy(update={"max_upload_parts_per_call": 2}), [200 * MiB] * 3)
    assert refused.value.code == "INPUT_TOO_LARGE" and refused.value.http_status == 413


async def test_a_part_url_takes_exactly_its_part(small: httpx.AsyncClient) -> None:
    task = await create_task(small)
    size = 11 * MiB  # parts of 5, 5 and 1 MiB
    spec = {"name": "primary.csv", "content_type": "text/csv", "size": size}
    r = await small.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": [spec]})
    assert r.status_code == 200, r.text
    (upload,) = r.json()["uploads"]
    last = upload["parts"][-1]
    assert last["part_number"] == 3
    async with httpx.AsyncClient(timeout=60) as s3:
        too_much = await s3.put(last["url"], content=b"x" * (2 * MiB))
        assert too_much.status_code == 403, too_much.text
        exact = await s3.put(last["url"], content=b"x" * MiB)
        assert exact.status_code == 200, exact.text


async def test_parameters_json_without_a_size_is_capped_by_the_store(client: httpx.AsyncClient) -> None:
    """The presigned upload of a parameters.json of undeclared size: the store refuses 30 MB (limit 10 MiB)."""
    task = await create_task(client)
    spec = {"name": "primary.csv", "content_type": "text/csv", "size": 10}
    r = await client.post(
        f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": [spec], "has_parameters": True}
    )
    assert r.status_code == 200, r.text
    upload = next(u for u in r.json()["uploads"] if u["name"] == "parameters.json")

    async def send(content: bytes) -> httpx.Response:
        async with httpx.AsyncClient(timeout=120) as s3:
            if upload.get("fields"):
                files = {"file": ("parameters.json", content, "application/json")}
                return await s3.post(upload["url"], data=upload["fields"], files=files)
            return await s3.request(upload["method"], upload["url"], headers=upload["headers"], content=content)

    huge = b'{"unified-profiler": {"null_tokens": ["' + b"x" * (30 * 1000 * 1000) + b'"]}}'
    refused = await send(huge)
    assert refused.status_code in (400, 403), refused.status_code
    assert "EntityTooLarge" in refused.text
    fits = json.dumps({"unified-profiler": {"top_n_values": 5}}).encode()
    assert (await send(fits)).status_code in (200, 201, 204)


async def test_the_cli_client_sends_parameters_json_through_its_form_upload(
    api: ApiServer, account: Account, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """service/client.py (the CLI) declares parameters.json without a size: it gets, and sends, the form."""
    task = await create_task(client)
    params = tmp_path / "parameters.json"
    params.write_text(json.dumps({"unified-profiler": {"top_n_values": 3}}))
    csv = tmp_path / "primary.csv"
    csv.write_text("id,name\n1,a\n2,b\n")
    async with AgensiumClient(api.url, account.api_key) as cli:
        spec = {"name": "primary.csv", "content_type": "text/csv", "size": csv.stat().st_size}
        uploads = {u["name"]: u for u in await cli.upload_urls(task["task_id"], [spec], has_parameters=True)}
        assert uploads["parameters.json"]["method"] == "POST"
        await cli.upload_input(task["task_id"], uploads["parameters.json"], params)
        await cli.upload_input(task["task_id"], uploads["primary.csv"], csv)
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/process")
    assert r.status_code == 202, r.text


# --- ids that are not ids ----------------------------------------------------------------------------


async def test_a_cursor_that_is_not_one_is_a_422(client: httpx.AsyncClient) -> None:
    """A cursor is `<microseconds since 1970>.<task id hex>` (the pattern OpenAPI documents): every string of
    that shape is a cursor, nothing else reaches the query."""
    task_hex = uuid.uuid4().hex
    old_style = base64.urlsafe_b64encode(json.dumps(["2026-01-01T00:00:00+00:00", task_hex]).encode()).decode()
    for cursor in (old_style, f"1.{'z' * 32}", f"{'9' * 18}.{task_hex}", f"-1.{task_hex}", "e30", "1.2", ""):
        assert_error(await client.get("/api/v1/tasks", params={"cursor": cursor}), 422, "VALIDATION_ERROR")
    far = await client.get("/api/v1/tasks", params={"cursor": f"{'9' * 17}.{task_hex}"})  # the year 5138
    assert far.status_code == 200, far.text
    assert (await client.get("/api/v1/tasks", params={"cursor": f"0.{task_hex}"})).json()["items"] == []


BAD_EVENT_IDS = ["²", "1" * 5000, str(INT64_MAX + 1), "-1", "1.5", "0x10"]


async def test_a_last_event_id_that_is_not_one_is_a_422_before_the_stream_opens(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    for path in ("/api/v1/events", f"/api/v1/tasks/{task['task_id']}/events"):
        for raw in BAD_EVENT_IDS:
            # A header is latin-1 on the wire: "²" is the one byte 0xB2, as the hostile test sent it.
            r = await client.get(path, headers={"Last-Event-ID": raw.encode("latin-1")})
            assert_error(r, 422, "VALIDATION_ERROR")
            r = await client.get(path, params={"last_event_id": raw})
            assert_error(r, 422, "VALIDATION_ERROR")
        # Both sent: each is checked, the header wins (its documented pattern: at most 18 digits).
        r = await client.get(path, headers={"Last-Event-ID": "0"}, params={"last_event_id": str(INT64_MAX + 1)})
        assert_error(r, 422, "VALIDATION_ERROR")
        assert_error(await client.get(path, headers={"Last-Event-ID": "1" * 19}), 422, "VALIDATION_ERROR")
    async with client.stream("GET", "/api/v1/events", params={"last_event_id": str(INT64_MAX)}) as ok:
        assert ok.status_code == 200
    async with client.stream("GET", "/api/v1/events", headers={"Last-Event-ID": "9" * 18}) as ok:
        assert ok.status_code == 200


async def test_an_empty_cursor_is_not_a_cursor(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/tasks", "/api/v1/me/ledger"):
        assert_error(await client.get(path, params={"cursor": ""}), 422, "VALIDATION_ERROR")


async def test_inline_input_options_must_be_an_object(client: httpx.AsyncClient) -> None:
    for bad in ([], 0, "", False):
        r = await client.post("/api/v1/tasks", json={"tool_id": "clean-my-data", "parameters": {"inputs": bad}})
        assert_error(r, 422, "INVALID_PARAMETERS")
    ok = await client.post("/api/v1/tasks", json={"tool_id": "clean-my-data", "parameters": {"inputs": None}})
    assert ok.status_code == 201, ok.text


async def test_an_upload_id_that_is_not_one_never_reaches_the_store(client: httpx.AsyncClient) -> None:
    task = await create_task(client)
    spec = {"name": "primary.csv", "content_type": "text/csv", "size": 10}
    r = await client.post(f"/api/v1/tasks/{task['task_id']}/upload-urls", json={"files": [spec]})
    assert r.status_code == 200, r.text
    base = f"/api/v1/tasks/{task['task_id']}/inputs/primary.csv"
    for upload_id in ("a/b", "a?b", "..", "../x", "a b", "x" * 1025):
        assert_error(await client.get(f"{base}/parts", params={"upload_id": upload_id}), 422, "VALIDATION_ERROR")
        body = {"upload_id": upload_id, "parts": [{"part_number": 1, "etag": "e"}]}
        assert_error(await client.post(f"{base}/complete", json=body), 422, "VALIDATION_ERROR")
    unknown = await client.get(f"{base}/parts", params={"upload_id": "abc_def"})
    assert_error(unknown, 422, "INPUT_MISSING")


# --- the WebSocket closes with a reason ----------------------------------------------------------------


async def _close_of(url: str, first_frame: str | None = None) -> tuple[int, str]:
    """The close code and reason the server answers `url` (and a first frame) with."""
    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(url) as ws:
            if first_frame is not None:
                await ws.send(first_frame)
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_the_websocket_refuses_bad_input_with_a_close_reason(api: ApiServer, client: httpx.AsyncClient) -> None:
    ws_url = api.url.replace("http://", "ws://") + "/api/v1/ws"

    async def token() -> str:
        r = await client.post("/api/v1/events/token")
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    for raw in BAD_EVENT_IDS:
        code, reason = await _close_of(f"{ws_url}?token={await token()}&last_event_id={quote(raw)}")
        assert (code, reason.split(":")[0]) == (4400, "VALIDATION_ERROR"), (raw, code, reason)
    for value in (INT64_MAX + 1, -1, 1.5, "²", True, [1]):
        code, reason = await _close_of(f"{ws_url}?token={await token()}", json.dumps({"last_event_id": value}))
        assert (code, reason.split(":")[0]) == (4400, "VALIDATION_ERROR"), (value, code, reason)
    for url in (ws_url, f"{ws_url}?token=", f"{ws_url}?token=a.b.c", f"{ws_url}?token={quote('²')}"):
        code, reason = await _close_of(url)
        assert (code, reason.split(":")[0]) == (4401, "UNAUTHORIZED"), (url, code, reason)


async def test_a_nul_deep_in_the_data_completes_the_task(
    client: httpx.AsyncClient, worker: None, tmp_path: Path
) -> None:
    """A NUL character past the head of a file (the binary check reads the head) reaches the result (a top
    value): PostgreSQL cannot store it in jsonb, so it is stored as U+FFFD instead of ending INTERNAL_ERROR."""
    rows = [f"{n},city{n % 3}" for n in range(20_000)] + ["20000,cit\x00y"] * 5000
    path = tmp_path / "primary.csv"
    path.write_text("id,city\n" + "\n".join(rows) + "\n")
    task = await create_task(client, agents=["unified-profiler"])
    await upload_inputs(client, task["task_id"], {"primary.csv": path})
    assert (await client.post(f"/api/v1/tasks/{task['task_id']}/process")).status_code == 202
    done = await wait_for_status(client, task["task_id"], {"COMPLETED", "FAILED"})
    assert done["status"] == "COMPLETED", done["error"]
    result = (await client.get(f"/api/v1/tasks/{task['task_id']}/result")).json()
    assert "cit\ufffdy" in json.dumps(result, ensure_ascii=False)
