"""What browsers need from the API: stream tokens (EventSource and WebSocket send no headers), the
WebSocket event stream with resume, presigned multipart uploads that resume, and the page itself."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from service.api.tokens import make_token, read_token, signing_key
from service.config import Settings
from tests.conftest import Account, ApiServer, serve_api
from tests.support import create_task, upload_inputs

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def new_token(client: httpx.AsyncClient) -> str:
    r = await client.post("/api/v1/events/token")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_in"] == 300 and body["expires_at"].endswith("Z")
    return str(body["token"])


async def test_tokens_are_signed_expiring_and_bound_to_a_user(settings: Settings) -> None:
    key = signing_key(settings)
    token, _ = make_token(key, "u-1", 60, now=1000.0)
    assert read_token(key, token, now=1059.0) == "u-1"
    assert read_token(key, token, now=1061.0) is None  # expired
    assert read_token(signing_key(settings.model_copy(update={"secret_key": "other"})), token, now=1000.0) is None
    body, signature = token.split(".")
    forged, _ = make_token(key, "u-2", 60, now=1000.0)
    assert read_token(key, f"{forged.split('.')[0]}.{signature}", now=1000.0) is None  # another user's body
    assert read_token(key, "garbage", now=1000.0) is None


async def test_a_token_opens_the_streams_and_nothing_else(client: httpx.AsyncClient, api: ApiServer) -> None:
    token = await new_token(client)
    task = await create_task(client)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as anonymous:
        async with anonymous.stream("GET", f"/api/v1/tasks/{task['task_id']}/events?token={token}") as stream:
            assert stream.status_code == 200
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    assert json.loads(line[5:])["task_id"] == task["task_id"]
                    break
        for path in ("/api/v1/me", f"/api/v1/tasks/{task['task_id']}", "/api/v1/tasks"):
            r = await anonymous.get(f"{path}?token={token}")
            assert r.status_code == 401, (path, r.text)
        r = await anonymous.get(f"/api/v1/events?token={token}x")
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"


async def test_websocket_carries_the_users_events_and_resumes(
    client: httpx.AsyncClient, api: ApiServer, csv_file: Path
) -> None:
    ws_url = api.url.replace("http://", "ws://") + "/api/v1/ws"
    task = await create_task(client)
    await upload_inputs(client, task["task_id"], {"primary.csv": csv_file})

    async def next_of_task(ws: websockets.ClientConnection) -> dict:
        while True:  # the account's other tasks have events too
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["data"]["task_id"] == task["task_id"]:
                return dict(frame)

    async with websockets.connect(f"{ws_url}?token={await new_token(client)}&last_event_id=0") as ws:
        first = await next_of_task(ws)  # replayed from the durable log
        assert first["event"] == "status" and first["data"]["status"] == "UPLOADING" and isinstance(first["id"], int)
        r = await client.post(f"/api/v1/tasks/{task['task_id']}/cancel")
        assert r.status_code == 202
        live = [await next_of_task(ws), await next_of_task(ws)]  # and then live
    assert [(m["event"], m["data"]["status"]) for m in live] == [("status", "CANCELLED"), ("done", "CANCELLED")]

    # Resume after an id: what happened since arrives, in order, once.
    async with websockets.connect(f"{ws_url}?token={await new_token(client)}&last_event_id={first['id']}") as ws:
        missed = [await next_of_task(ws), await next_of_task(ws)]
    assert missed == live

    # The resume point may also come as the first frame.
    async with websockets.connect(f"{ws_url}?token={await new_token(client)}") as ws:
        await ws.send(json.dumps({"last_event_id": first["id"]}))
        assert await next_of_task(ws) == live[0]

    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        async with websockets.connect(f"{ws_url}?token=forged") as ws:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_big_files_upload_by_presigned_multipart_and_resume(
    settings: Settings, account: Account, worker: None, tmp_path: Path
) -> None:
    part = 5 * 1024**2  # the store's smallest part
    small = settings.model_copy(update={"multipart_threshold_bytes": 1024**2, "multipart_part_bytes": part})
    rows = ["id,amount,city"] + [f"{i},{i * 0.5:.1f},city{i % 7}" for i in range(700_000)]
    data = ("\n".join(rows) + "\n").encode()
    assert len(data) > 2 * part
    async with serve_api(small) as api, httpx.AsyncClient(base_url=api.url, headers=account.headers, timeout=60) as c:
        task = await create_task(c)
        tid = task["task_id"]
        spec = {"name": "primary.csv", "content_type": "text/csv", "size": len(data)}
        r = await c.post(f"/api/v1/tasks/{tid}/upload-urls", json={"files": [spec]})
        assert r.status_code == 200, r.text
        (upload,) = r.json()["uploads"]
        assert upload["method"] == "MULTIPART" and upload["part_size"] == part and upload.get("url") is None
        parts = upload["parts"]
        assert [p["part_number"] for p in parts] == list(range(1, len(data) // part + 2))

        async with httpx.AsyncClient(timeout=60) as s3:

            async def put(number: int) -> str:
                body = data[(number - 1) * part : number * part]
                r = await s3.put(parts[number - 1]["url"], content=body)
                assert r.status_code == 200, r.text
                return str(r.headers["etag"])

            etag_1 = await put(1)  # ... and then the upload is interrupted
            parts_url = f"/api/v1/tasks/{tid}/inputs/primary.csv/parts"
            have = (await c.get(parts_url, params={"upload_id": upload["upload_id"]})).json()["parts"]
            assert [(p["part_number"], p["etag"], p["size"]) for p in have] == [(1, etag_1, part)]
            etags = [(1, etag_1)] + [(n, await put(n)) for n in range(2, len(parts) + 1)]

        complete = f"/api/v1/tasks/{tid}/inputs/primary.csv/complete"
        wrong = await c.post(
            complete, json={"upload_id": upload["upload_id"], "parts": [{"part_number": 1, "etag": '"0"'}]}
        )
        assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "VALIDATION_ERROR"
        body = {"upload_id": upload["upload_id"], "parts": [{"part_number": n, "etag": e} for n, e in etags]}
        r = await c.post(complete, json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"name": "primary.csv", "size": len(data)}
        gone = await c.get(parts_url, params={"upload_id": upload["upload_id"]})
        assert gone.status_code == 422 and gone.json()["error"]["code"] == "INPUT_MISSING"

        r = await c.post(f"/api/v1/tasks/{tid}/process")
        assert r.status_code == 202, r.text


async def test_the_page_and_its_assets_are_served(api: ApiServer) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        page = await anonymous.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/static/" in page.text
        missing = await anonymous.get("/static/no-such-file.js")
        assert missing.status_code == 404
