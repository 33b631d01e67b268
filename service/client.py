"""HTTP client of the public API (v1) and the `agensium submit` command.

Everything here goes through the documented HTTP contract only (API.md), exactly as a
third-party client would: no import of the service's internals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
UPLOAD_CHUNK_BYTES = 1024 * 1024
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"})
PRIORITIES = ("low", "normal", "high", "urgent")
# Gateway hiccups worth reconnecting a dropped event stream for; anything else is the caller's error.
RETRYABLE_STREAM_STATUSES = frozenset({502, 503, 504})

CONTENT_TYPES: Mapping[str, str] = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".ndjson": "application/x-ndjson",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ProgressCallback = Callable[[int], None]


# --- errors -------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer of the API (or of the object store behind a presigned URL)."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None):
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class UsageError(Exception):
    """A command-line mistake: exit code 2, nothing sent."""


class StreamLostError(Exception):
    """The event stream kept dropping and could not be resumed."""


_S3_CODE = re.compile(rb"<Code>([^<]*)</Code>")
_S3_MESSAGE = re.compile(rb"<Message>([^<]*)</Message>")


def error_from_response(status: int, body: bytes, content_type: str | None = None) -> ApiError:
    """Map an error answer to `ApiError`.

    The API answers `{"error": {"code", "message", "details"?}}`; an S3 server answers XML with
    `<Code>` and `<Message>`; anything else (a proxy's HTML page) becomes `HTTP_<status>`.
    """
    try:
        document = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        details = error.get("details")
        return ApiError(
            status,
            str(error.get("code") or f"HTTP_{status}"),
            str(error.get("message") or ""),
            details if isinstance(details, dict) else None,
        )
    code_match = _S3_CODE.search(body)
    if code_match:
        message_match = _S3_MESSAGE.search(body)
        message = message_match.group(1).decode("utf-8", "replace") if message_match else ""
        return ApiError(status, code_match.group(1).decode("utf-8", "replace"), message)
    text = body[:200].decode("utf-8", "replace").strip()
    return ApiError(status, f"HTTP_{status}", text or httpx.codes.get_reason_phrase(status))


# --- Server-Sent Events -------------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseParser:
    """Incremental parser of a `text/event-stream`, one line (without its line ending) at a time.

    Follows the WHATWG rules: `:` lines are comments (`: ping`), one optional space after the
    colon is dropped, `data:` lines are joined with newlines, a blank line dispatches, an event
    without data is dropped, and the last `id:` persists across events. `last_event_id` only
    moves when an event is complete, so a cut mid-event resumes from the last whole one.
    """

    last_event_id: str | None = None
    retry_ms: int | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _pending_id: str | None = None  # an `id:` seen in the event being read; counts once dispatched

    def __post_init__(self) -> None:
        self._pending_id = self.last_event_id

    def feed_line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._pending_id = value
        elif name == "retry":
            if value.isdigit():
                self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        self.last_event_id = self._pending_id
        if not data:
            return None
        return SseEvent(event=event or "message", data="\n".join(data), id=self.last_event_id)


# --- the client ---------------------------------------------------------------------------------


class AgensiumClient:
    """Async client of the v1 API. Use as `async with AgensiumClient(url, key) as client: ...`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        stream_read_timeout: float = 45.0,
        max_reconnects: int = 10,
        reconnect_delay_s: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
        storage_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "agensium-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        # Presigned URLs carry their own signature: never send them our API key.
        self._storage_http = httpx.AsyncClient(timeout=timeout, transport=storage_transport)
        # A ping comes at least every 15 s, so silence for longer than this is a dead connection.
        self._stream_timeout = httpx.Timeout(timeout, read=stream_read_timeout)
        self._max_reconnects = max_reconnects
        self._reconnect_delay_s = reconnect_delay_s

    async def __aenter__(self) -> AgensiumClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._storage_http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        response = await self._http.request(
            method, f"{API_PREFIX}{path}", json=json_body, headers=headers, params=params
        )
        if response.is_error:
            raise error_from_response(response.status_code, response.content, response.headers.get("content-type"))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- tasks ----------------------------------------------------------------------------------

    async def create_task(
        self,
        tool_id: str,
        agents: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        priority: str | None = None,
        labels: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        source_task_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"tool_id": tool_id}
        if agents is not None:
            body["agents"] = list(agents)
        if parameters is not None:
            body["parameters"] = dict(parameters)
        if priority is not None:
            body["priority"] = priority
        if labels is not None:
            body["labels"] = dict(labels)
        if source_task_id is not None:
            body["source_task_id"] = source_task_id
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self._request("POST", "/tasks", json_body=body, headers=headers)

    async def upload_urls(
        self, task_id: str, files: Sequence[Mapping[str, Any]], has_parameters: bool
    ) -> list[dict[str, Any]]:
        body = {"files": [dict(f) for f in files], "has_parameters": has_parameters}
        answer = await self._request("POST", f"/tasks/{task_id}/upload-urls", json_body=body)
        return list(answer["uploads"])

    async def upload_presigned(
        self, upload: Mapping[str, Any], path: Path, on_progress: ProgressCallback | None = None
    ) -> None:
        """Send `path` to the object store with one presigned upload, streamed from disk.

        A streamed body would go out chunked, which S3 refuses for a presigned PUT: the explicit
        Content-Length header makes httpx frame it by length instead.
        """
        size = (await anyio.Path(path).stat()).st_size
        method = str(upload.get("method", "PUT")).upper()
        headers = {str(k): str(v) for k, v in (upload.get("headers") or {}).items()}
        if method == "POST":
            await self._upload_presigned_form(upload, path, headers)
            if on_progress:
                on_progress(size)
            return
        signed_length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        if signed_length is not None and int(signed_length) != size:
            raise UsageError(f"{path} is {size} bytes but its upload was signed for {signed_length}")
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        headers["Content-Length"] = str(size)
        response = await self._storage_http.request(
            method, str(upload["url"]), content=_read_chunks(path, on_progress), headers=headers
        )
        if response.is_error:
            raise error_from_response(response.status_code, response.content)

    async def _upload_presigned_form(self, upload: Mapping[str, Any], path: Path, headers: Mapping[str, str]) -> None:
        # A presigned POST: form fields first, the file last. httpx reads the file in chunks and
        # knows its length, so the multipart body is neither held in memory nor chunked.
        fields = {str(k): str(v) for k, v in (upload.get("fields") or {}).items()}
        content_type = fields.get("Content-Type", "application/octet-stream")
        with path.open("rb") as handle:  # noqa: ASYNC230 - httpx reads it lazily while sending
            response = await self._storage_http.post(
                str(upload["url"]),
                data=fields,
                files={"file": (path.name, handle, content_type)},
                headers=dict(headers),
            )
        if response.is_error:
            raise error_from_response(response.status_code, response.content)

    async def put_input(
        self,
        task_id: str,
        name: str,
        path: Path,
        on_progress: ProgressCallback | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Stream one input through the API (`PUT /tasks/{id}/inputs/{name}`): `{name, size, sha256}`."""
        headers = {
            "Content-Length": str((await anyio.Path(path).stat()).st_size),
            "Content-Type": content_type or content_type_for(path),
        }
        response = await self._http.put(
            f"{API_PREFIX}/tasks/{task_id}/inputs/{name}",
            content=_read_chunks(path, on_progress),
            headers=headers,
        )
        if response.is_error:
            raise error_from_response(response.status_code, response.content)
        return dict(response.json())

    async def process(self, task_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/tasks/{task_id}/process")

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/tasks/{task_id}")

    async def list_tasks(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return await self._request("GET", "/tasks", params=params)

    async def result(self, task_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/tasks/{task_id}/result")

    async def downloads(self, task_id: str) -> list[dict[str, Any]]:
        answer = await self._request("GET", f"/tasks/{task_id}/downloads")
        return list(answer["files"])

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/tasks/{task_id}/cancel")

    async def retry(self, task_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/tasks/{task_id}/retry")

    async def delete(self, task_id: str) -> None:
        await self._request("DELETE", f"/tasks/{task_id}")

    async def me(self) -> dict[str, Any]:
        return await self._request("GET", "/me")

    async def tools(self) -> Any:
        return await self._request("GET", "/tools")

    # --- events ---------------------------------------------------------------------------------

    def events(self, task_id: str, last_event_id: str | None = None) -> AsyncGenerator[SseEvent, None]:
        """The task's events, resumed with `Last-Event-ID` after a dropped connection; ends after `done`."""
        return self._follow(f"{API_PREFIX}/tasks/{task_id}/events", last_event_id, until_done=True)

    def user_events(self, last_event_id: str | None = None) -> AsyncGenerator[SseEvent, None]:
        """Events of all the caller's tasks (`GET /events`); never ends on its own."""
        return self._follow(f"{API_PREFIX}/events", last_event_id, until_done=False)

    async def _follow(self, path: str, last_event_id: str | None, until_done: bool) -> AsyncGenerator[SseEvent, None]:
        failures = 0
        retry_ms: int | None = None
        while True:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = last_event_id
            parser = SseParser(last_event_id=last_event_id)
            try:
                async with self._http.stream("GET", path, headers=headers, timeout=self._stream_timeout) as response:
                    if response.is_error:
                        body = await response.aread()
                        error = error_from_response(response.status_code, body)
                        if response.status_code not in RETRYABLE_STREAM_STATUSES:
                            raise error
                    else:
                        async for line in response.aiter_lines():
                            event = parser.feed_line(line)
                            if event is None:
                                continue
                            failures = 0
                            last_event_id = parser.last_event_id
                            yield event
                            if until_done and event.event == "done":
                                return
            except httpx.TransportError:
                pass  # dropped, timed out or refused: resume below
            last_event_id = parser.last_event_id
            retry_ms = parser.retry_ms or retry_ms
            failures += 1
            if failures > self._max_reconnects:
                raise StreamLostError(f"event stream {path} lost after {failures - 1} reconnects")
            base_delay = retry_ms / 1000 if retry_ms is not None else self._reconnect_delay_s
            await asyncio.sleep(min(base_delay * 2 ** (failures - 1), 5.0))


async def _read_chunks(path: Path, on_progress: ProgressCallback | None) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(UPLOAD_CHUNK_BYTES):
            if on_progress:
                on_progress(len(chunk))
            yield chunk


# --- `agensium submit` --------------------------------------------------------------------------


def content_type_for(path: Path) -> str:
    """The Content-Type an input is declared with, from its extension."""
    try:
        return CONTENT_TYPES[path.suffix.lower()]
    except KeyError:
        accepted = ", ".join(sorted(CONTENT_TYPES))
        raise UsageError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; accepted: {accepted}") from None


def input_name(role: str, path: Path) -> str:
    """The upload name of an input file, e.g. `primary.csv`, `baseline.tsv`."""
    content_type_for(path)
    return f"{role}{path.suffix.lower()}"


@dataclass(frozen=True)
class SubmitPlan:
    """What `submit` will send, checked before anything goes over the network."""

    inputs: dict[str, Path]  # upload name -> local file (data inputs only)
    declared: list[dict[str, Any]]  # the `files` of upload-urls
    parameters_file: Path | None
    agents: list[str] | None


def plan_submit(args: argparse.Namespace) -> SubmitPlan:
    inputs: dict[str, Path] = {}
    declared: list[dict[str, Any]] = []
    for role, raw in (("primary", args.file), ("baseline", args.baseline)):
        if raw is None:
            continue
        path = Path(raw)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        name = input_name(role, path)
        inputs[name] = path
        declared.append({"name": name, "content_type": content_type_for(path), "size": path.stat().st_size})
    parameters_file = None
    if args.params is not None:
        parameters_file = Path(args.params)
        if not parameters_file.is_file():
            raise UsageError(f"no such file: {parameters_file}")
    agents = parse_agents(args.agents)
    return SubmitPlan(inputs, declared, parameters_file, agents)


def parse_agents(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    agents = [a.strip() for a in raw.split(",") if a.strip()]
    if not agents:
        raise UsageError("--agents needs at least one agent id")
    return agents


def resolve_connection(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The API URL and key: the flags first, then AGENSIUM_URL / AGENSIUM_API_KEY."""
    url = args.url or environ.get("AGENSIUM_URL") or DEFAULT_URL
    api_key = args.api_key or environ.get("AGENSIUM_API_KEY")
    if not api_key:
        raise UsageError("no API key: pass --api-key or set AGENSIUM_API_KEY")
    return url, api_key


def add_submit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `submit` on an argparse subparsers object; the handler is `args.func(args) -> int`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "submit",
        help="submit a file to a tool through the HTTP API and optionally follow it",
        description=(
            "Create a task, upload FILE (and --baseline/--params) through presigned URLs, and queue it. "
            "With --wait, follow its progress live and print the result summary as JSON on stdout "
            "(download links go to stderr). Exit status: 0 completed (or queued without --wait), "
            "1 failed/cancelled/expired or an API error, 2 usage error."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the primary input (.csv, .tsv, .json, ...)")
    parser.add_argument("--tool", default="profile-my-data", help="tool id (default: %(default)s)")
    parser.add_argument("--baseline", metavar="FILE", help="baseline input, for drift detection")
    parser.add_argument("--params", metavar="FILE", help="parameters.json keyed by agent id")
    parser.add_argument("--agents", metavar="A,B", help="comma-separated agent chain (default: the tool's)")
    parser.add_argument("--priority", choices=PRIORITIES, help="queue priority (default: the server's)")
    parser.add_argument("--wait", action="store_true", help="follow progress until the task ends")
    parser.add_argument("--url", help=f"API base URL (default: $AGENSIUM_URL or {DEFAULT_URL})")
    parser.add_argument("--api-key", help="API key (default: $AGENSIUM_API_KEY)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one compact JSON document on stdout: {task, result?, downloads?}",
    )
    parser.set_defaults(func=run_submit)
    return parser


def run_submit(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of `agensium submit`: returns the process exit status."""
    console = Console(stderr=True)
    try:
        url, api_key = resolve_connection(args, os.environ if environ is None else environ)
        plan = plan_submit(args)
        return asyncio.run(_submit_with_new_client(args, plan, url, api_key, console))
    except UsageError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return EXIT_USAGE
    except ApiError as exc:
        console.print(f"[red]error:[/red] {exc.code}: {exc.message}", highlight=False)
        return EXIT_TASK_FAILED
    except (httpx.HTTPError, StreamLostError) as exc:
        console.print(f"[red]error:[/red] cannot reach the API: {exc!r}", highlight=False)
        return EXIT_TASK_FAILED
    except KeyboardInterrupt:
        console.print("interrupted; the task goes on on the server", highlight=False)
        return EXIT_INTERRUPTED


async def _submit_with_new_client(
    args: argparse.Namespace, plan: SubmitPlan, url: str, api_key: str, console: Console
) -> int:
    async with AgensiumClient(url, api_key) as client:
        return await submit(client, args, plan, console)


async def submit(client: AgensiumClient, args: argparse.Namespace, plan: SubmitPlan, console: Console) -> int:
    """The `submit` flow over an open client; returns the exit status and prints the outcome."""
    task = await _create_with_retries(client, args.tool, plan.agents, args.priority)
    task_id = task["task_id"]
    console.print(f"task {task_id} created", highlight=False)
    uploads = await client.upload_urls(task_id, plan.declared, has_parameters=plan.parameters_file is not None)
    await _upload_all(client, uploads, plan, console)
    task = await client.process(task_id)
    console.print(f"task {task_id} {task['status']}", highlight=False)
    if not args.wait:
        _print_json({"task": task} if args.json else task, compact=args.json)
        return EXIT_OK
    task = await _follow_task(client, task_id, console)
    if task["status"] != "COMPLETED":
        error = task.get("error") or {}
        console.print(
            f"[red]task {task_id} {task['status']}[/red]: "
            f"{error.get('code', task['status'])}: {error.get('message', '')}",
            highlight=False,
        )
        if args.json:
            _print_json({"task": task}, compact=True)
        return EXIT_TASK_FAILED
    result = await client.result(task_id)
    files = await client.downloads(task_id)
    if args.json:
        _print_json({"task": task, "result": result, "downloads": files}, compact=True)
    else:
        _print_json(result, compact=False)
        for entry in files:
            console.print(
                f"{entry['name']} ({entry.get('size', '?')} bytes): {entry['url']}",
                highlight=False,
                soft_wrap=True,
            )
    return EXIT_OK


async def _create_with_retries(
    client: AgensiumClient, tool_id: str, agents: list[str] | None, priority: str | None, attempts: int = 3
) -> dict[str, Any]:
    """Create the task, resending on a network failure: one Idempotency-Key makes that safe."""
    idempotency_key = str(uuid.uuid4())
    for attempt in range(1, attempts + 1):
        try:
            return await client.create_task(tool_id, agents=agents, priority=priority, idempotency_key=idempotency_key)
        except httpx.TransportError:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


async def _upload_all(
    client: AgensiumClient, uploads: list[dict[str, Any]], plan: SubmitPlan, console: Console
) -> None:
    local_files = dict(plan.inputs)
    if plan.parameters_file is not None:
        local_files["parameters.json"] = plan.parameters_file
    by_name = {u["name"]: u for u in uploads}
    missing = sorted(set(local_files) - set(by_name))
    if missing:
        raise ApiError(0, "UPLOAD_URLS_MISSING", f"the server returned no upload for {', '.join(missing)}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bars:
        for name, path in local_files.items():
            bar = bars.add_task(f"upload {name}", total=(await anyio.Path(path).stat()).st_size)
            await client.upload_presigned(by_name[name], path, _advancer(bars, bar))


def _advancer(bars: Progress, bar: TaskID) -> ProgressCallback:
    def advance(sent: int) -> None:
        bars.advance(bar, sent)

    return advance


async def _follow_task(client: AgensiumClient, task_id: str, console: Console) -> dict[str, Any]:
    """Show the task's progress from its event stream until it ends; return the final task."""
    columns = (
        TextColumn("{task.fields[status]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[agent]}"),
        TextColumn("[dim]{task.fields[message]}"),
    )
    task: dict[str, Any] = {}
    with Progress(*columns, console=console) as bars:
        bar = bars.add_task("task", total=100, status="", agent="", message="")
        async with aclosing(client.events(task_id)) as events:
            async for event in events:
                if event.event not in ("status", "progress", "done"):
                    continue
                payload = event.json()
                if event.event in ("status", "done"):
                    task = payload
                bars.update(
                    bar,
                    completed=payload.get("progress") or 0,
                    status=task.get("status", ""),
                    agent=payload.get("current_agent") or "",
                    message=payload.get("message") or "",
                )
                if event.event == "done" or task.get("status") in TERMINAL_STATUSES:
                    break
    if task.get("status") not in TERMINAL_STATUSES:
        task = await client.get_task(task_id)
    return task


def _print_json(document: Any, compact: bool) -> None:
    text = json.dumps(document, separators=(",", ":")) if compact else json.dumps(document, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m service.client submit ...`, for use without the `agensium` dispatcher."""
    parser = argparse.ArgumentParser(prog="agensium")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_submit_parser(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
