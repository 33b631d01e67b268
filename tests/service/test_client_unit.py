"""The client's pure parts, plus its HTTP behaviour against in-process fakes (no service needed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from service.client import (
    AgensiumClient,
    ApiError,
    SseEvent,
    SseParser,
    StreamLostError,
    UsageError,
    WatchBoard,
    _create_with_retries,
    add_submit_parser,
    content_type_for,
    error_from_response,
    input_name,
    plan_submit,
    resolve_connection,
    run_submit,
    submit,
)

# --- SSE parsing --------------------------------------------------------------------------------


def feed(lines: list[str], parser: SseParser | None = None) -> list[SseEvent]:
    parser = parser or SseParser()
    return [event for line in lines if (event := parser.feed_line(line)) is not None]


def test_sse_parser_reads_id_event_and_json_data() -> None:
    events = feed(["id: 7", "event: progress", 'data: {"progress": 42}', ""])
    assert events == [SseEvent(event="progress", data='{"progress": 42}', id="7")]
    assert events[0].json() == {"progress": 42}


def test_sse_parser_joins_multi_line_data_with_newlines() -> None:
    events = feed(["event: status", "data: {", 'data:  "a": 1', "data: }", ""])
    assert events[0].data == '{\n "a": 1\n}'  # only the first space after the colon is dropped
    assert events[0].json() == {"a": 1}


def test_sse_parser_ignores_comments_and_pings() -> None:
    events = feed([": ping", "", "id: 1", ": a comment inside an event", "data: x", "", ": ping", ""])
    assert [(e.id, e.data) for e in events] == [("1", "x")]


def test_sse_parser_defaults_event_name_and_keeps_last_id() -> None:
    parser = SseParser()
    events = feed(["id: 3", "data: a", "", "data: b", ""], parser)
    assert [(e.event, e.id, e.data) for e in events] == [("message", "3", "a"), ("message", "3", "b")]
    assert parser.last_event_id == "3"


def test_sse_parser_drops_events_without_data_but_records_their_id_and_retry() -> None:
    parser = SseParser()
    assert feed(["id: 9", "event: status", "retry: 1500", ""], parser) == []
    assert parser.last_event_id == "9"
    assert parser.retry_ms == 1500
    # the event name does not leak into the next event
    assert feed(["data:no-space", ""], parser)[0] == SseEvent(event="message", data="no-space", id="9")


def test_sse_parser_handles_field_without_colon_and_unknown_fields() -> None:
    events = feed(["data", "foo: bar", "data", ""])
    assert events[0].data == "\n"


# --- errors -------------------------------------------------------------------------------------


def test_error_body_maps_code_message_and_details() -> None:
    body = json.dumps(
        {"error": {"code": "INVALID_STATE", "message": "Task is QUEUED", "details": {"status": "QUEUED"}}}
    ).encode()
    error = error_from_response(409, body, "application/json")
    assert (error.status, error.code, error.message, error.details) == (
        409,
        "INVALID_STATE",
        "Task is QUEUED",
        {"status": "QUEUED"},
    )
    assert "INVALID_STATE" in str(error)


def test_error_body_without_details() -> None:
    error = error_from_response(401, b'{"error": {"code": "UNAUTHORIZED", "message": "no key"}}')
    assert (error.code, error.message, error.details) == ("UNAUTHORIZED", "no key", {})


def test_s3_xml_error_is_mapped() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
        b"<Message>The request signature we calculated does not match</Message></Error>"
    )
    error = error_from_response(403, body)
    assert error.code == "SignatureDoesNotMatch"
    assert error.message.startswith("The request signature")


def test_unstructured_error_body_falls_back_to_http_status() -> None:
    assert error_from_response(502, b"<html>Bad Gateway</html>").code == "HTTP_502"
    error = error_from_response(500, b"")
    assert (error.code, error.message) == ("HTTP_500", "Internal Server Error")
    assert error_from_response(400, b'{"detail": "x"}').code == "HTTP_400"


# --- content types and names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [
        ("data.csv", "text/csv"),
        ("DATA.CSV", "text/csv"),
        ("x.tsv", "text/tab-separated-values"),
        ("p.json", "application/json"),
        ("notes.txt", "text/plain"),
        ("rows.jsonl", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
    ],
)
def test_content_type_from_extension(file_name: str, content_type: str) -> None:
    """The usual type of the extension, else octet-stream; which extensions a tool takes is the server's say
    (its catalog, checked by submit: tests/service/test_client_summary.py)."""
    assert content_type_for(Path(file_name)) == content_type


def test_input_names_keep_the_lowercased_extension() -> None:
    assert input_name("primary", Path("/tmp/Sales.CSV")) == "primary.csv"
    assert input_name("baseline", Path("old.tsv")) == "baseline.tsv"


# --- argument parsing ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agensium")
    add_submit_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_submit_arguments_with_defaults() -> None:
    args = build_parser().parse_args(["submit", "data.csv"])
    assert (args.file, args.tool, args.baseline, args.params, args.agents) == (
        "data.csv",
        "profile-my-data",
        None,
        None,
        None,
    )
    assert (args.priority, args.wait, args.url, args.api_key, args.json) == (None, False, None, None, False)
    assert args.func is run_submit


def test_submit_arguments_all_given(tmp_path: Path) -> None:
    primary, baseline, params = (tmp_path / n for n in ("a.csv", "b.tsv", "p.json"))
    primary.write_text("x,y\n1,2\n")
    baseline.write_text("x\ty\n1\t2\n")
    params.write_text("{}")
    args = build_parser().parse_args(
        ["submit", str(primary), "--tool", "clean-my-data", "--baseline", str(baseline),
         "--params", str(params), "--agents", "unified-profiler, drift-detector", "--priority", "high",
         "--wait", "--url", "http://h:1", "--api-key", "k", "--json"]
    )  # fmt: skip
    assert (args.tool, args.priority, args.wait, args.json) == ("clean-my-data", "high", True, True)
    plan = plan_submit(args)
    assert plan.agents == ["unified-profiler", "drift-detector"]
    assert plan.inputs == {"primary.csv": primary, "baseline.tsv": baseline}
    assert plan.declared == [
        {"name": "primary.csv", "content_type": "text/csv", "size": 8, "display_name": primary.name},
        {"name": "baseline.tsv", "content_type": "text/tab-separated-values", "size": 8, "display_name": baseline.name},
    ]
    assert plan.parameters_file == params


def test_unknown_priority_is_rejected_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["submit", "a.csv", "--priority", "asap"])
    assert exit_info.value.code == 2


def test_connection_flags_win_over_environment() -> None:
    args = build_parser().parse_args(["submit", "a.csv", "--url", "http://flag", "--api-key", "flag-key"])
    env = {"AGENSIUM_URL": "http://env", "AGENSIUM_API_KEY": "env-key"}
    assert resolve_connection(args, env) == ("http://flag", "flag-key")
    args = build_parser().parse_args(["submit", "a.csv"])
    assert resolve_connection(args, env) == ("http://env", "env-key")
    assert resolve_connection(args, {"AGENSIUM_API_KEY": "k"}) == ("http://127.0.0.1:8000", "k")
    with pytest.raises(UsageError, match="API key"):
        resolve_connection(args, {})


@pytest.mark.parametrize(
    ("argv", "files", "message"),
    [
        (["submit", "{tmp}/missing.csv", "--api-key", "k"], [], "no such file"),
        (["submit", "{tmp}/a.csv"], ["a.csv"], "no API key"),
        (["submit", "{tmp}/a.csv", "--api-key", "k", "--params", "{tmp}/none.json"], ["a.csv"], "no such"),
        (["submit", "{tmp}/a.csv", "--api-key", "k", "--agents", " , "], ["a.csv"], "at least one agent"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], files: list[str], message: str
) -> None:
    for name in files:
        (tmp_path / name).write_text("a\n1\n")
    # port 9 (discard) on loopback: any request would fail with exit 1, not 2
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--url", "http://127.0.0.1:9"]
    args = build_parser().parse_args(argv)
    assert run_submit(args, environ={}) == 2
    assert message in " ".join(capsys.readouterr().err.split())  # the console wraps long lines (a long tmp path)


def test_unreachable_api_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.csv").write_text("a\n1\n")
    args = build_parser().parse_args(["submit", str(tmp_path / "a.csv"), "--url", "http://127.0.0.1:9"])
    assert run_submit(args, environ={"AGENSIUM_API_KEY": "k"}) == 1
    assert "cannot reach the API" in capsys.readouterr().err


# --- uploads on the wire ------------------------------------------------------------------------


async def test_presigned_put_streams_with_content_length_not_chunked(tmp_path: Path) -> None:
    """S3 refuses chunked presigned PUTs: the body must be framed by Content-Length."""
    payload = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MB: several read chunks
    source = tmp_path / "primary.csv"
    source.write_bytes(payload)
    seen: dict[str, Any] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        seen["request_line"] = lines[0]
        seen["headers"] = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        seen["body"] = await reader.readexactly(int(seen["headers"].get("content-length", "0")))
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: "x"\r\n\r\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    progress: list[int] = []
    upload = {
        "name": "primary.csv",
        "method": "PUT",
        "url": f"http://127.0.0.1:{port}/bucket/key?X-Amz-Signature=abc",
        "headers": {"Content-Type": "text/csv"},
    }
    async with server, AgensiumClient("http://127.0.0.1:9", "secret-key") as client:
        await client.upload_presigned(upload, source, progress.append)
    headers = seen["headers"]
    assert seen["request_line"] == "PUT /bucket/key?X-Amz-Signature=abc HTTP/1.1"
    assert headers["content-length"] == str(len(payload))
    assert "transfer-encoding" not in headers
    assert headers["content-type"] == "text/csv"
    assert "authorization" not in headers  # the API key never goes to the object store
    assert seen["body"] == payload
    assert sum(progress) == len(payload) and len(progress) > 1


async def test_presigned_put_refuses_a_file_of_another_size_than_signed(tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_text("a\n1\n")
    upload = {"method": "PUT", "url": "http://127.0.0.1:9/x", "headers": {"Content-Length": "999"}}
    async with AgensiumClient("http://127.0.0.1:9", "k") as client:
        with pytest.raises(UsageError, match="signed for 999"):
            await client.upload_presigned(upload, source)


async def test_presigned_put_maps_s3_refusal(tmp_path: Path) -> None:
    source = tmp_path / "a.csv"
    source.write_text("a\n1\n")

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")

    upload = {"method": "PUT", "url": "http://store/x", "headers": {}}
    async with AgensiumClient("http://api", "k", storage_transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ApiError) as error:
            await client.upload_presigned(upload, source)
    assert (error.value.status, error.value.code) == (403, "AccessDenied")


async def test_put_input_streams_through_the_api_with_auth(tmp_path: Path) -> None:
    source = tmp_path / "data.tsv"
    source.write_text("a\tb\n1\t2\n")
    seen: list[httpx.Request] = []

    async def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        return httpx.Response(201, json={"name": "primary.tsv", "size": len(body), "sha256": "s"})

    async with AgensiumClient("http://api", "key-1", transport=httpx.MockTransport(api)) as client:
        answer = await client.put_input("t1", "primary.tsv", source)
    request = seen[0]
    assert (request.method, request.url.path) == ("PUT", "/api/v1/tasks/t1/inputs/primary.tsv")
    assert request.headers["authorization"] == "Bearer key-1"
    assert request.headers["content-length"] == "8"
    assert request.headers["content-type"] == "text/tab-separated-values"
    assert "transfer-encoding" not in request.headers
    assert answer == {"name": "primary.tsv", "size": 8, "sha256": "s"}


# --- event stream resume ------------------------------------------------------------------------


class DroppingStream(httpx.AsyncByteStream):
    """Sends some bytes, then fails like a connection cut mid-stream."""

    def __init__(self, data: bytes, fail: bool) -> None:
        self._data, self._fail = data, fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        if self._fail:
            raise httpx.ReadError("connection reset")


def sse(*events: tuple[int, str, dict[str, Any]]) -> bytes:
    return b"".join(
        f"id: {i}\nevent: {name}\ndata: {json.dumps(data)}\n\n: ping\n\n".encode() for i, name, data in events
    )


async def test_events_resume_with_last_event_id_until_done() -> None:
    requests: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            body = sse((1, "status", {"status": "QUEUED"}), (2, "progress", {"progress": 10}))
            # a half-sent event before the cut must not be delivered
            return httpx.Response(200, stream=DroppingStream(body + b"id: 3\nevent: prog", fail=True))
        if len(requests) == 2:  # the server closes without `done`: also resumed
            return httpx.Response(200, stream=DroppingStream(sse((3, "progress", {"progress": 50})), False))
        return httpx.Response(200, stream=DroppingStream(sse((4, "done", {"status": "COMPLETED"})), False))

    client = AgensiumClient("http://api", "k", transport=httpx.MockTransport(api), reconnect_delay_s=0)
    async with client:
        events = [event async for event in client.events("t1")]
    assert [(e.id, e.event) for e in events] == [
        ("1", "status"),
        ("2", "progress"),
        ("3", "progress"),
        ("4", "done"),
    ]
    assert [r.headers.get("last-event-id") for r in requests] == [None, "2", "3"]
    assert all(r.url.path == "/api/v1/tasks/t1/events" for r in requests)
    assert requests[0].headers["accept"] == "text/event-stream"


async def test_events_start_from_a_given_last_event_id() -> None:
    requests: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, stream=DroppingStream(sse((8, "done", {"status": "FAILED"})), False))

    async with AgensiumClient("http://api", "k", transport=httpx.MockTransport(api)) as client:
        events = [event async for event in client.events("t1", last_event_id="7")]
    assert requests[0].headers["last-event-id"] == "7"
    assert events[0].json() == {"status": "FAILED"}


async def test_events_end_when_the_server_says_nothing_follows() -> None:
    # The connection dropped after `done` was sent but before it was read: the resume answers 204 (a COMPLETED
    # task's stream after its done), and the client ends instead of reconnecting until it gives up.
    requests: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            return httpx.Response(200, stream=DroppingStream(sse((5, "progress", {"progress": 90})), fail=True))
        return httpx.Response(204)

    client = AgensiumClient("http://api", "k", transport=httpx.MockTransport(api), reconnect_delay_s=0)
    async with client:
        events = [event async for event in client.events("t1")]
    assert [(e.id, e.event) for e in events] == [("5", "progress")]
    assert [r.headers.get("last-event-id") for r in requests] == [None, "5"]


async def test_events_raise_api_errors_without_retrying() -> None:
    calls = 0

    def api(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(404, json={"error": {"code": "TASK_NOT_FOUND", "message": "no such task"}})

    async with AgensiumClient("http://api", "k", transport=httpx.MockTransport(api)) as client:
        with pytest.raises(ApiError) as error:
            [event async for event in client.events("t1")]
    assert (error.value.code, calls) == ("TASK_NOT_FOUND", 1)


async def test_events_give_up_after_repeated_failures() -> None:
    calls = 0

    def api(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise httpx.ConnectError("refused")
        return httpx.Response(503, json={"error": {"code": "SERVICE_UNAVAILABLE", "message": "down"}})

    client = AgensiumClient(
        "http://api", "k", transport=httpx.MockTransport(api), reconnect_delay_s=0, max_reconnects=3
    )
    async with client:
        with pytest.raises(StreamLostError):
            [event async for event in client.events("t1")]
    assert calls == 4


# --- the whole submit flow against a fake API ---------------------------------------------------


CSV_TYPES = {"csv": ["application/octet-stream", "text/csv"]}
TOOLS = {
    "tools": [
        {
            "tool_id": "profile-my-data",
            "agents": [{"agent_id": "unified-profiler"}, {"agent_id": "drift-detector"}],
            "inputs": [
                {"role": "primary", "content_types": CSV_TYPES},
                {"role": "parameters", "content_types": {"json": ["application/json"]}},
            ],
        }
    ]
}


class FakeApi:
    """Just enough of API.md to drive `submit`; records what the client sent."""

    def __init__(self, final_status: str) -> None:
        self.final_status = final_status
        self.requests: list[tuple[str, str, Any]] = []
        self.stored: dict[str, bytes] = {}
        self.task = {"task_id": "t-1", "status": "CREATED", "progress": 0, "error": None}

    def api(self, request: httpx.Request) -> httpx.Response:
        body: Any = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        route = (request.method, request.url.path)
        if route == ("GET", "/api/v1/tools"):
            return httpx.Response(200, json=TOOLS)
        if route == ("POST", "/api/v1/tasks"):
            uuid.UUID(request.headers["idempotency-key"])
            return httpx.Response(201, json=self.task)
        if route == ("POST", "/api/v1/tasks/t-1/upload-urls"):
            names = [f["name"] for f in body["files"]] + (["parameters.json"] if body["has_parameters"] else [])
            uploads = [{"name": n, "key": n, "method": "PUT", "url": f"http://store/{n}", "headers": {}} for n in names]
            return httpx.Response(200, json={"uploads": uploads})
        if route == ("POST", "/api/v1/tasks/t-1/process"):
            return httpx.Response(202, json={**self.task, "status": "QUEUED"})
        if route == ("GET", "/api/v1/tasks/t-1/events"):
            error = {"code": "INVALID_FILE", "message": "line 3 is ragged"} if self.final_status == "FAILED" else None
            final = {**self.task, "status": self.final_status, "progress": 100, "error": error}
            events = sse(
                (1, "status", {**self.task, "status": "QUEUED"}),
                (2, "status", {**self.task, "status": "PROCESSING"}),
                (3, "progress", {"task_id": "t-1", "progress": 60, "current_agent": "unified-profiler",
                                 "message": "profiling"}),
                (4, "done", final),
            )  # fmt: skip
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events)
        if route == ("GET", "/api/v1/tasks/t-1/result"):
            return httpx.Response(200, json={"task_id": "t-1", "agents": {"unified-profiler": {"status": "success"}}})
        if route == ("GET", "/api/v1/tasks/t-1/downloads"):
            files = [{"name": "data_profile_report.json", "size": 5, "url": "http://store/r.json"}]
            return httpx.Response(200, json={"files": files})
        return httpx.Response(404, json={"error": {"code": "NOT_FOUND", "message": str(route)}})

    def store(self, request: httpx.Request) -> httpx.Response:
        assert "transfer-encoding" not in request.headers
        self.stored[request.url.path.lstrip("/")] = request.read()
        return httpx.Response(200)


def submit_args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "params.json").write_text('{"unified-profiler": {}}')
    argv = ["submit", str(tmp_path / "data.csv"), "--params", str(tmp_path / "params.json"), *extra]
    return build_parser().parse_args(argv)


async def run_fake_submit(fake: FakeApi, args: argparse.Namespace) -> int:
    client = AgensiumClient(
        "http://api",
        "k",
        transport=httpx.MockTransport(fake.api),
        storage_transport=httpx.MockTransport(fake.store),
    )
    async with client:
        return await submit(client, args, plan_submit(args), Console(stderr=True))


async def test_submit_wait_prints_the_result_and_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeApi("COMPLETED")
    assert await run_fake_submit(fake, submit_args(tmp_path, "--wait", "--agents", "unified-profiler")) == 0
    create, upload_urls = fake.requests[1], fake.requests[2]
    assert create[2] == {"tool_id": "profile-my-data", "agents": ["unified-profiler"]}
    assert upload_urls[2] == {
        "files": [{"name": "primary.csv", "content_type": "text/csv", "size": 12, "display_name": "data.csv"}],
        "has_parameters": True,
    }
    assert fake.stored == {"primary.csv": b"a,b\n1,2\n3,4\n", "parameters.json": b'{"unified-profiler": {}}'}
    assert fake.requests[0][:2] == ("GET", "/api/v1/tools")  # the catalog first: nothing is created before it
    assert [r[:2] for r in fake.requests[3:]] == [
        ("POST", "/api/v1/tasks/t-1/process"),
        ("GET", "/api/v1/tasks/t-1/events"),
        ("GET", "/api/v1/tasks/t-1/result"),
        ("GET", "/api/v1/tasks/t-1/downloads"),
    ]
    out = capsys.readouterr().out
    assert out.startswith("COMPLETED: ") and "data_profile_report.json" in out
    assert "http://store/" not in out  # a short summary, not the presigned links


async def test_submit_wait_json_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_fake_submit(FakeApi("COMPLETED"), submit_args(tmp_path, "--wait", "--json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["task"]["status"] == "COMPLETED"
    assert document["downloads"][0]["name"] == "data_profile_report.json"
    assert "result" in document


async def test_submit_wait_on_failed_task_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeApi("FAILED")
    assert await run_fake_submit(fake, submit_args(tmp_path, "--wait")) == 1
    err = capsys.readouterr().err
    assert "INVALID_FILE" in err and "line 3 is ragged" in err
    assert not any(path.endswith("/result") for _, path, _ in fake.requests)


async def test_submit_without_wait_prints_the_queued_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeApi("COMPLETED")
    assert await run_fake_submit(fake, submit_args(tmp_path)) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "QUEUED"
    assert fake.requests[-1][:2] == ("POST", "/api/v1/tasks/t-1/process")


async def test_create_is_resent_with_the_same_idempotency_key_after_a_network_failure() -> None:
    keys: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            raise httpx.ReadError("connection reset before the answer")
        return httpx.Response(201, json={"task_id": "t-9", "status": "CREATED"})

    async with AgensiumClient("http://api", "k", transport=httpx.MockTransport(api)) as client:
        task = await _create_with_retries(client, "profile-my-data", None, "high")
    assert task["task_id"] == "t-9"
    assert len(keys) == 2 and keys[0] == keys[1]
    uuid.UUID(keys[0])


def test_watch_board_drops_a_deleted_task() -> None:
    """A deleted task's last status event (`"deleted": true`) removes its row instead of keeping it."""
    board = WatchBoard()
    task = {"task_id": "t-1", "tool_id": "profile-my-data", "status": "COMPLETED", "progress": 100}
    assert board.apply(SseEvent("done", json.dumps(task), "7"))
    assert list(board.rows) == ["t-1"]
    assert board.apply(SseEvent("status", json.dumps({**task, "message": "Deleted", "deleted": True}), "9"))
    assert board.rows == {}


async def test_tasks_list_shows_a_file_named_with_brackets_as_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's file name is shown as written: rich reads `[...]` as markup (`a[/b].csv` raised MarkupError)."""
    from service.client import tasks_list

    task = {
        "task_id": "t-1", "tool_id": "profile-my-data", "status": "COMPLETED", "progress": 100,
        "created_at": "2026-12-06T10:00:00+00:00", "started_at": "2026-12-06T10:00:01+00:00",
        "finished_at": "2026-12-06T10:00:03+00:00", "credits": 120,
        "inputs": [{"name": "primary.csv", "role": "primary", "display_name": "Q3 [draft] a[/b].csv", "size": 2048}],
    }  # fmt: skip

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [task], "next_cursor": None})

    monkeypatch.setenv("COLUMNS", "250")  # the whole row on one line
    args = argparse.Namespace(status=None, tool=None, all=False, limit=20, cursor=None, json=False)
    async with AgensiumClient("http://api", "k", transport=httpx.MockTransport(api)) as client:
        assert await tasks_list(client, args, Console(stderr=True)) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "t-1" in line)
    assert "Q3 [draft] a[/b].csv" in row and "2.0 kB" in row and " 120 " in row and "2.0 s" in row, row


async def test_tasks_list_piped_shows_whole_rows_and_the_error_code(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agensium tasks list | grep …`: without a terminal (and without COLUMNS) rich fitted the table in 80 columns and
    cut every cell to `…`; a FAILED task says why in a word."""
    from service.client import tasks_list

    task = {
        "task_id": "3f1c2a9e-0000-4000-8000-000000000001", "tool_id": "clean-my-data", "status": "FAILED",
        "progress": 10, "created_at": "2026-12-06T10:00:00+00:00", "credits": 0,
        "error": {"code": "INVALID_FILE", "message": "primary.csv: not text"},
        "inputs": [{"name": "primary.csv", "role": "primary", "display_name": "quarterly sales export.csv",
                    "size": 123456}],
    }  # fmt: skip

    def api(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [task], "next_cursor": None})

    monkeypatch.delenv("COLUMNS", raising=False)
    args = argparse.Namespace(status=None, tool=None, all=False, limit=20, cursor=None, json=False)
    async with AgensiumClient("http://api", "k", transport=httpx.MockTransport(api)) as client:
        assert await tasks_list(client, args, Console(stderr=True)) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if task["task_id"] in line)
    assert "…" not in row and "clean-my-data" in row and "quarterly sales export.csv" in row, row
    assert "FAILED INVALID_FILE" in row, row
