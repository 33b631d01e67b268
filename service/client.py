"""HTTP client of the public API (v1) and the `agensium` commands built on it: submit, tasks, download, watch,
transform and lineage (search and aggregate: service/search_client.py).

Everything here goes through the documented HTTP contract only (API.md), exactly as a
third-party client would: no import of the service's internals.

Exit status of every command: 0 success (a followed task COMPLETED), 1 a followed task FAILED,
CANCELLED or EXPIRED, or an API error, 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import math
import mimetypes
import os
import re
import sys
import tomllib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
from rich.console import Console
from rich.filesize import decimal
from rich.live import Live
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
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

DEFAULT_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v1"
UPLOAD_CHUNK_BYTES = 1024 * 1024
TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "EXPIRED"})
ACTIVE_STATUSES = "QUEUED,PROCESSING"  # what `watch` starts from (the list filter takes a comma list)
PRIORITIES = ("low", "normal", "high", "urgent")
# Gateway hiccups worth reconnecting a dropped event stream for; anything else is the caller's error.
RETRYABLE_STREAM_STATUSES = frozenset({502, 503, 504})
# A presigned transfer (upload, upload part, download) is sent again after these answers or a network error.
RETRYABLE_TRANSFER_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
TRANSFER_ATTEMPTS = 4
TRANSFER_RETRY_DELAY_S = 0.5
CONFIG_ENV = "AGENSIUM_CONFIG"
WATCH_MAX_ROWS = 50  # finished tasks leave `watch`'s table, oldest first, past this many rows
OCTET_STREAM = "application/octet-stream"
SEVERITIES = ("critical", "high", "medium", "low")
SUMMARY_TOP_ALERTS = 5  # the most severe alerts `submit --follow` names in its summary
# Master data sources: `source_<label>.<ext>`, as the API names them (API.md, "Roles by name").
SOURCE_PREFIX = "source_"
MAX_SOURCES = 9
MAX_LABEL_CHARS = 32
SOURCE_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ProgressCallback = Callable[[int], None]
T = TypeVar("T")


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
        process: bool = False,
    ) -> dict[str, Any]:
        """`POST /tasks`; with `process` (a `source_task_id`, nothing to upload) it is queued in the same call, or
        completed at once from the result cache."""
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
        if process:
            body["process"] = True
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
        """Send `path` to the object store with one presigned upload, streamed from disk."""
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
        await self._send_range(method, str(upload["url"]), path, 0, size, headers, on_progress)

    async def upload_input(
        self, task_id: str, upload: Mapping[str, Any], path: Path, on_progress: ProgressCallback | None = None
    ) -> None:
        """Send one input the way upload-urls said: one presigned request, or part by part (MULTIPART)."""
        if str(upload.get("method", "PUT")).upper() == "MULTIPART":
            await self.upload_multipart(task_id, upload, path, on_progress)
        else:
            await self.upload_presigned(upload, path, on_progress)

    async def upload_multipart(
        self, task_id: str, upload: Mapping[str, Any], path: Path, on_progress: ProgressCallback | None = None
    ) -> dict[str, Any]:
        """Send `path` to the presigned part URLs one part at a time, then assemble it: `{name, size}`.

        The parts the store already has (same size) are skipped, so sending the same upload again
        resumes it. Each part is streamed from disk and sent again after a network error or a 5xx.
        """
        size = (await anyio.Path(path).stat()).st_size
        name, upload_id, part_size = str(upload["name"]), str(upload["upload_id"]), int(upload["part_size"])
        parts = sorted(upload["parts"], key=lambda p: int(p["part_number"]))
        if len(parts) != max(1, math.ceil(size / part_size)):
            raise UsageError(f"{path} is {size} bytes but its upload was planned as {len(parts)} x {part_size} bytes")
        stored = {int(p["part_number"]): p for p in await self.uploaded_parts(task_id, name, upload_id)}
        completed: list[dict[str, Any]] = []
        for part in parts:
            number = int(part["part_number"])
            offset = (number - 1) * part_size
            length = min(part_size, size - offset)
            have = stored.get(number)
            if have is not None and int(have["size"]) == length:
                etag = str(have["etag"])
                if on_progress:
                    on_progress(length)
            else:
                # No Content-Type: the part URL is signed without one.
                response = await self._send_range("PUT", str(part["url"]), path, offset, length, {}, on_progress)
                etag = response.headers.get("etag", "")
                if not etag:
                    raise ApiError(0, "ETAG_MISSING", f"the object store sent no ETag for part {number} of {name}")
            completed.append({"part_number": number, "etag": etag})
        return await self.complete_upload(task_id, name, upload_id, completed)

    async def _send_range(
        self,
        method: str,
        url: str,
        path: Path,
        offset: int,
        length: int,
        headers: Mapping[str, str],
        on_progress: ProgressCallback | None,
    ) -> httpx.Response:
        """Send bytes [offset, offset + length) of `path` streamed from disk to a presigned URL.

        A streamed body would go out chunked, which S3 refuses for a presigned PUT: the explicit
        Content-Length header makes httpx frame it by length instead.
        """
        headers = {**headers, "Content-Length": str(length)}

        async def send(report: ProgressCallback) -> httpx.Response:
            body = _read_chunks(path, report, offset, length)
            response = await self._storage_http.request(method, url, content=body, headers=headers)
            if response.is_error:
                raise error_from_response(response.status_code, response.content)
            return response

        return await _retrying(send, on_progress)

    async def uploaded_parts(self, task_id: str, name: str, upload_id: str) -> list[dict[str, Any]]:
        """The parts of a multipart upload the store already has: `[{part_number, etag, size}]`."""
        answer = await self._request("GET", f"/tasks/{task_id}/inputs/{name}/parts", params={"upload_id": upload_id})
        return list(answer["parts"])

    async def complete_upload(
        self, task_id: str, name: str, upload_id: str, parts: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        body = {"upload_id": upload_id, "parts": [dict(p) for p in parts]}
        return await self._request("POST", f"/tasks/{task_id}/inputs/{name}/complete", json_body=body)

    async def download(
        self, entry: Mapping[str, Any], directory: Path, on_progress: ProgressCallback | None = None
    ) -> Path:
        """Stream one output of `GET /downloads` to `directory/<name>` and check its size.

        It is written under a hidden `.part` name first, so a cut transfer never leaves a file
        that looks complete.
        """
        name = str(entry["name"])
        if Path(name).name != name or name.startswith("."):
            raise ApiError(0, "INVALID_FILE_NAME", f"refusing to write output {name!r} outside {directory}")
        partial = anyio.Path(directory / f".{name}.part")

        async def fetch(report: ProgressCallback) -> int:
            written = 0
            async with self._storage_http.stream("GET", str(entry["url"])) as response:
                if response.is_error:
                    raise error_from_response(response.status_code, await response.aread())
                async with await anyio.open_file(partial, "wb") as out:
                    async for chunk in response.aiter_bytes(UPLOAD_CHUNK_BYTES):
                        await out.write(chunk)
                        written += len(chunk)
                        report(len(chunk))
            return written

        try:
            written = await _retrying(fetch, on_progress)
            expected = entry.get("size")
            if expected is not None and written != int(expected):
                raise ApiError(0, "DOWNLOAD_INCOMPLETE", f"{name}: received {written} bytes of {expected}")
        except BaseException:
            await partial.unlink(missing_ok=True)
            raise
        return Path(await partial.rename(directory / name))

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

    async def iter_tasks(self, page_size: int = 200, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every task matching `filters`, newest first, following `next_cursor` page by page."""
        cursor: str | None = None
        while True:
            page = await self.list_tasks(limit=page_size, cursor=cursor, **filters)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

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

    async def transform(
        self,
        task_id: str,
        commands: Sequence[str] = (),
        operations: Sequence[Mapping[str, Any]] | None = None,
        priority: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A transform-my-data task on this task's dataset version, queued (`POST /tasks/{id}/transform`):
        English `commands` (one is sent as `command`) or JSON `operations`, not both."""
        body: dict[str, Any]
        if operations is not None:
            body = {"operations": [dict(op) for op in operations]}
        elif len(commands) == 1:
            body = {"command": commands[0]}
        else:
            body = {"commands": list(commands)}
        if priority is not None:
            body["priority"] = priority
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self._request("POST", f"/tasks/{task_id}/transform", json_body=body, headers=headers)

    async def lineage(self, task_id: str) -> dict[str, Any]:
        """`{task_id, task, ancestors (root first), children}`, each entry with tool, status, rows and sentences."""
        return await self._request("GET", f"/tasks/{task_id}/lineage")

    # --- events ---------------------------------------------------------------------------------

    def events(self, task_id: str, last_event_id: str | None = None) -> AsyncGenerator[SseEvent, None]:
        """The task's events, resumed with `Last-Event-ID` after a dropped connection; ends after `done`."""
        return self._follow(f"{API_PREFIX}/tasks/{task_id}/events", last_event_id, until_done=True)

    def user_events(
        self, last_event_id: str | None = None, on_open: Callable[[], None] | None = None
    ) -> AsyncGenerator[SseEvent, None]:
        """Events of all the caller's tasks (`GET /events`); never ends on its own.

        A fresh stream starts from "now": `on_open` is called once the server answered (on each
        reconnect too), after which the task list is at least as new as the stream.
        """
        return self._follow(f"{API_PREFIX}/events", last_event_id, until_done=False, on_open=on_open)

    async def _follow(
        self,
        path: str,
        last_event_id: str | None,
        until_done: bool,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncGenerator[SseEvent, None]:
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
                    elif response.status_code == 204:  # a finished task's stream resumed after its done: no more
                        return
                    else:
                        if on_open:
                            on_open()
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


async def _read_chunks(
    path: Path, on_progress: ProgressCallback | None, offset: int = 0, length: int | None = None
) -> AsyncIterator[bytes]:
    """`length` bytes of `path` from `offset` (to the end when None), one chunk in memory at a time."""
    async with await anyio.open_file(path, "rb") as handle:
        if offset:
            await handle.seek(offset)
        left = math.inf if length is None else length
        while left > 0 and (chunk := await handle.read(int(min(UPLOAD_CHUNK_BYTES, left)))):
            left -= len(chunk)
            if on_progress:
                on_progress(len(chunk))
            yield chunk


class _Reported:
    """Counts the bytes one transfer attempt reported, so a failed attempt can take them back."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self._on_progress = on_progress
        self.total = 0

    def __call__(self, count: int) -> None:
        self.total += count
        if self._on_progress:
            self._on_progress(count)

    def take_back(self) -> None:
        if self._on_progress and self.total:
            self._on_progress(-self.total)
        self.total = 0


async def _retrying(send: Callable[[ProgressCallback], Awaitable[T]], on_progress: ProgressCallback | None) -> T:
    """Run one presigned transfer, again after a network error or a 408/429/5xx answer (up to
    TRANSFER_ATTEMPTS in all, backing off); the progress of a failed attempt is taken back."""
    reported = _Reported(on_progress)
    for attempt in range(1, TRANSFER_ATTEMPTS + 1):
        try:
            return await send(reported)
        except (httpx.TransportError, ApiError) as error:
            retryable = not isinstance(error, ApiError) or error.status in RETRYABLE_TRANSFER_STATUSES
            if not retryable or attempt == TRANSFER_ATTEMPTS:
                raise
            reported.take_back()
        await asyncio.sleep(TRANSFER_RETRY_DELAY_S * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


# --- connection settings ------------------------------------------------------------------------


def config_path(environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The config file and whether it was named explicitly ($AGENSIUM_CONFIG) rather than the default
    `$XDG_CONFIG_HOME/agensium/config.toml` (`~/.config/...`)."""
    explicit = environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser(), True
    if environ.get("XDG_CONFIG_HOME"):
        return Path(environ["XDG_CONFIG_HOME"]) / "agensium" / "config.toml", False
    if environ.get("HOME"):
        return Path(environ["HOME"]) / ".config" / "agensium" / "config.toml", False
    return None, False


def load_config(environ: Mapping[str, str]) -> dict[str, str]:
    """`url` and `api_key` from the config file; a missing default file is no error, a broken one is."""
    path, explicit = config_path(environ)
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise UsageError(f"{CONFIG_ENV}={path}: no such file") from None
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"config file {path}: {exc}") from None
    config: dict[str, str] = {}
    for key in ("url", "api_key"):
        value = document.get(key)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"config file {path}: {key} must be a string")
        if value:
            config[key] = value
    return config


def resolve_connection(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The API URL and key: the flags first, then AGENSIUM_URL / AGENSIUM_API_KEY, then the config file.

    The file is read only when a flag and the environment leave something unset.
    """
    url = args.url or environ.get("AGENSIUM_URL")
    api_key = args.api_key or environ.get("AGENSIUM_API_KEY")
    if not url or not api_key:
        config = load_config(environ)
        url = url or config.get("url")
        api_key = api_key or config.get("api_key")
    if not api_key:
        raise UsageError(f"no API key: pass --api-key, set AGENSIUM_API_KEY or api_key in the {CONFIG_ENV} file")
    return url or DEFAULT_URL, api_key


# --- commands: shared plumbing ------------------------------------------------------------------

Command = Callable[[AgensiumClient, argparse.Namespace, Console], Awaitable[int]]


def _print_error(console: Console, message: str) -> None:
    """`error: message` on one line however long (a path is not broken in two), the message as written (no
    markup read from it)."""
    console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True, highlight=False)


def run_command(
    args: argparse.Namespace,
    command: Command,
    environ: Mapping[str, str] | None = None,
    interrupted_status: int = EXIT_INTERRUPTED,
) -> int:
    """Run one command with a client from the resolved connection; map errors to exit statuses.

    Messages and progress go to stderr, results to stdout; with --json an API error is also
    printed on stdout as the API's error body.
    """
    console = Console(stderr=True)
    try:
        url, api_key = resolve_connection(args, os.environ if environ is None else environ)
        return asyncio.run(_with_client(url, api_key, command, args, console))
    except UsageError as exc:
        _print_error(console, str(exc))
        return EXIT_USAGE
    except ApiError as exc:
        _print_error(console, f"{exc.code}: {exc.message}")
        if getattr(args, "json", False):
            _print_json({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, compact=True)
        return EXIT_TASK_FAILED
    except (httpx.HTTPError, StreamLostError) as exc:
        _print_error(console, f"cannot reach the API: {exc!r}")
        return EXIT_TASK_FAILED
    except KeyboardInterrupt:
        return interrupted_status


async def _with_client(url: str, api_key: str, command: Command, args: argparse.Namespace, console: Console) -> int:
    async with AgensiumClient(url, api_key) as client:
        return await command(client, args, console)


def _print_json(document: Any, compact: bool) -> None:
    text = json.dumps(document, separators=(",", ":")) if compact else json.dumps(document, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _transfer_bars(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _advancer(bars: Progress, bar: TaskID) -> ProgressCallback:
    def advance(sent: int) -> None:
        bars.advance(bar, sent)

    return advance


# --- `agensium submit` --------------------------------------------------------------------------


def content_type_for(path: Path) -> str:
    """The Content-Type an input is declared with: the usual one of its extension, else octet-stream. Whether
    the server takes the extension is its catalog's say (ToolCatalog.check)."""
    return mimetypes.guess_type(path.name.lower())[0] or OCTET_STREAM


def input_name(role: str, path: Path) -> str:
    """The upload name of an input file, e.g. `primary.csv`, `baseline.tsv`, `source_crm.csv`, `schema.yaml`."""
    return f"{role}{path.suffix.lower()}"


def input_role(name: str) -> str:
    """The catalog role of an upload name: `source` for `source_<label>.<ext>`, else the name's stem."""
    stem = name.partition(".")[0]
    return "source" if stem.startswith(SOURCE_PREFIX) else stem


def label_from_name(path: Path) -> str:
    """A source label from a file name, in the labels' alphabet: `CRM Export.csv` -> `crm_export`."""
    return re.sub(r"[^a-z0-9_-]+", "_", path.stem.lower()).strip("_-")[:MAX_LABEL_CHARS]


def parse_source(raw: str) -> tuple[str, Path]:
    """(label, file) of one `--source LABEL=FILE` (or `--source FILE`: the label from the file name); a
    UsageError for a label the server would refuse."""
    label, sep, file = raw.partition("=")
    path = Path(file) if sep else Path(raw)
    if not sep:
        label = label_from_name(path)
    if not SOURCE_LABEL.fullmatch(label) or label == "primary":
        raise UsageError(
            f"--source {raw}: the label {label!r} is not valid: up to {MAX_LABEL_CHARS} lowercase letters, digits, "
            "_ and -, starting with a letter or digit, and not 'primary' (write --source LABEL=FILE)"
        )
    return label, path


@dataclass(frozen=True)
class SubmitPlan:
    """What `submit` will send, checked before anything goes over the network."""

    inputs: dict[str, Path]  # upload name -> local file (data inputs only)
    declared: list[dict[str, Any]]  # the `files` of upload-urls
    parameters_file: Path | None
    agents: list[str] | None
    parameters: dict[str, Any] | None = None  # sent inline with the task (--sheet), in place of parameters_file
    parameter_keys: tuple[str, ...] = ()  # the top-level keys of --params FILE (agent ids, inputs, cache)


def planned_inputs(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """(role or `source_<label>`, file) of every data input the command line names; a UsageError for a bad,
    repeated or surplus source label."""
    named: list[tuple[str, Path]] = [("primary", Path(args.file))]
    if args.baseline is not None:
        named.append(("baseline", Path(args.baseline)))
    labels: dict[str, str] = {}
    for raw in args.source or []:
        label, path = parse_source(raw)
        if label in labels:
            raise UsageError(
                f"--source {raw}: the label {label!r} is already --source {labels[label]}: give each its own"
            )
        labels[label] = raw
        named.append((f"{SOURCE_PREFIX}{label}", path))
    if len(labels) > MAX_SOURCES:
        raise UsageError(f"{len(labels)} --source files: at most {MAX_SOURCES} besides the primary")
    if args.schema is not None:
        named.append(("schema", Path(args.schema)))
    return named


def plan_submit(args: argparse.Namespace) -> SubmitPlan:
    inputs: dict[str, Path] = {}
    declared: list[dict[str, Any]] = []
    for role, path in planned_inputs(args):
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        name = input_name(role, path)
        inputs[name] = path
        declared.append(
            {
                "name": name,
                "content_type": content_type_for(path),
                "size": path.stat().st_size,
                "display_name": path.name[:255],  # the user's own file name, which the reports show
            }
        )
    parameters_file = None
    parameter_keys: tuple[str, ...] = ()
    if args.params is not None:
        parameters_file = Path(args.params)
        if not parameters_file.is_file():
            raise UsageError(f"no such file: {parameters_file}")
        parameter_keys = tuple(read_parameters_file(parameters_file))
    agents = parse_agents(args.agents)
    sheets = {
        role: (sheet, file)
        for role, sheet, file in (
            ("primary", getattr(args, "sheet", None), args.file),
            ("baseline", getattr(args, "baseline_sheet", None), getattr(args, "baseline", None)),
        )
        if sheet is not None
    }
    if not sheets:
        return SubmitPlan(inputs, declared, parameters_file, agents, parameter_keys=parameter_keys)
    for role, (sheet, file) in sheets.items():
        option = "--sheet" if role == "primary" else "--baseline-sheet"
        if file is None:
            raise UsageError(f"{option} {sheet}: there is no --baseline file to read it from")
        if Path(file).suffix.lower() != ".xlsx":
            raise UsageError(f"{option} {sheet}: a sheet is read from an .xlsx workbook only, not {file}")
    return SubmitPlan(
        inputs,
        declared,
        None,
        agents,
        with_sheets(parameters_file, {role: s for role, (s, _) in sheets.items()}),
        parameter_keys,
    )


def read_parameters_file(path: Path) -> dict[str, Any]:
    """`--params FILE` as the server will read it: a UsageError, before anything is created, for a file that is not
    JSON or not an object keyed by agent id (the task could only fail: INVALID_PARAMETERS)."""
    try:
        parameters = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UsageError(f"--params {path}: not valid JSON ({error}); nothing was created") from None
    except OSError as error:
        raise UsageError(f"--params {path}: cannot read it ({error.strerror or error})") from None
    if not isinstance(parameters, dict):
        raise UsageError(
            f'--params {path}: parameters must be a JSON object keyed by agent id, e.g. {{"unified-profiler": {{}}}}'
        )
    return parameters


def with_sheets(parameters_file: Path | None, sheets: dict[str, str]) -> dict[str, Any]:
    """The parameters of `--params` (none: {}) with `--sheet` / `--baseline-sheet`: each input's reading option
    `inputs.<role>.sheet` (API.md: a name, which the server matches ignoring case). A UsageError for a parameters
    file that is not a JSON object, or whose `inputs.<role>` is not one."""
    parameters: Any = {}
    if parameters_file is not None:
        try:
            parameters = json.loads(parameters_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"{parameters_file}: not JSON ({error}), so --sheet cannot be added to it") from None
    inputs = parameters.get("inputs", {}) if isinstance(parameters, dict) else None
    if not isinstance(inputs, dict):
        raise UsageError(f"{parameters_file}: --sheet needs a JSON object with an object inputs, if any")
    inputs = dict(inputs)
    for role, sheet in sheets.items():
        options = inputs.get(role, {})
        if not isinstance(options, dict):
            raise UsageError(f"{parameters_file}: --sheet needs a JSON object with an object inputs.{role}, if any")
        inputs[role] = {**options, "sheet": sheet}
    return {**parameters, "inputs": inputs}


def unknown_choice(what: str, given: str, valid: Sequence[str]) -> str:
    """`unknown tool 'clean-my-dta' (did you mean 'clean-my-data'?); valid: profile-my-data, clean-my-data, ...`"""
    close = difflib.get_close_matches(given, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {given!r}{hint}; valid: {', '.join(valid)}"


@dataclass(frozen=True)
class ToolCatalog:
    """The server's catalog (`GET /tools`): its tools, their agents and the extensions and content types each
    input accepts. `submit` checks its plan against it before creating anything, so the client accepts exactly
    what this server does."""

    tools: dict[str, dict[str, Any]]

    @classmethod
    def from_api(cls, document: Mapping[str, Any]) -> ToolCatalog:
        return cls({str(tool["tool_id"]): dict(tool) for tool in document["tools"]})

    def tool(self, tool_id: str) -> dict[str, Any]:
        tool = self.tools.get(tool_id)
        if tool is None:
            raise UsageError(unknown_choice("tool", tool_id, list(self.tools)))
        return tool

    def check(self, plan: SubmitPlan, tool_id: str) -> SubmitPlan:
        """The plan with the content types this server accepts; UsageError, naming what is valid, for an unknown
        tool or agent, or an input the tool does not take."""
        tool = self.tool(tool_id)
        agents = [str(agent["agent_id"]) for agent in tool.get("agents") or []]
        for agent in plan.agents or []:
            if agent not in agents:
                raise UsageError(unknown_choice(f"{tool_id} agent", agent, agents))
        for key in plan.parameter_keys:  # the server's reserved top-level keys, else the tool's agents
            if key not in agents and key not in PARAMETER_KEYS:
                raise UsageError("--params: " + unknown_choice(f"{tool_id} agent", key, agents))
        inputs = {str(item["role"]): item for item in tool.get("inputs") or []}
        declared = []
        for entry in plan.declared:
            role, extension = input_role(str(entry["name"])), str(entry["name"]).partition(".")[2]
            if role not in inputs:
                raise UsageError(f"{tool_id} takes no {role} input; it takes: {', '.join(inputs)}")
            accepted: dict[str, list[str]] = inputs[role].get("content_types") or {}
            if extension not in accepted:
                path = plan.inputs[entry["name"]]
                listed = ", ".join(f".{ext}" for ext in accepted)
                raise UsageError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; accepted: {listed}")
            if entry["content_type"] not in accepted[extension]:
                fallback = OCTET_STREAM if OCTET_STREAM in accepted[extension] else accepted[extension][0]
                entry = {**entry, "content_type": fallback}
            declared.append(entry)
        return replace(plan, declared=declared)


PARAMETER_KEYS = ("inputs", "cache")  # top-level parameters that are no agent's (API.md): reading options, the cache


def parse_agents(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    agents = [a.strip() for a in raw.split(",") if a.strip()]
    if not agents:
        raise UsageError("--agents needs at least one agent id")
    return agents


def _connection_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--url", help=f"API base URL (default: $AGENSIUM_URL, the config file, or {DEFAULT_URL})")
    options.add_argument("--api-key", help="API key (default: $AGENSIUM_API_KEY, or api_key in the config file)")
    return options


def add_submit_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `submit` on an argparse subparsers object; the handler is `args.func(args) -> int`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "submit",
        parents=[_connection_options()],
        help="submit a file to a tool through the HTTP API and optionally follow it",
        description=(
            "Create a task, upload FILE and the other inputs through presigned URLs (part by part for "
            "big files), and queue it. With --follow, show its progress per agent live, then a short summary on "
            "stdout: status, rows in and out, the outcome (grade, readiness, golden records, matches, ...), alerts "
            "by severity and the outputs (--json: the whole result as JSON instead); --download DIR also saves "
            "every output there. The tool, its agents and the file types are checked against the server's "
            "catalog before anything is created. Exit status: 0 completed (or queued without --follow), 1 "
            "failed/cancelled/expired or an API error, 2 usage error."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the primary input (.csv, .tsv, .json, ...)")
    parser.add_argument("--tool", default="profile-my-data", help="tool id (default: %(default)s)")
    parser.add_argument("--baseline", metavar="FILE", help="baseline input, for drift detection")
    parser.add_argument(
        "--source",
        action="append",
        metavar="LABEL=FILE",
        help=f"another source to master with the primary (master-my-data; repeat up to {MAX_SOURCES} times); "
        "without LABEL= the label is the file name's",
    )
    parser.add_argument("--schema", metavar="FILE", help="a data contract, .json or .yaml (master-my-data)")
    parser.add_argument("--params", metavar="FILE", help="parameters.json keyed by agent id")
    parser.add_argument(
        "--sheet",
        metavar="NAME",
        help="the worksheet of an .xlsx FILE to read (default: the first): the reading option inputs.primary.sheet",
    )
    parser.add_argument(
        "--baseline-sheet",
        metavar="NAME",
        help="the worksheet of an .xlsx --baseline to read (default: the first): inputs.baseline.sheet",
    )
    parser.add_argument("--agents", metavar="A,B", help="comma-separated agent chain (default: the tool's)")
    parser.add_argument("--priority", choices=PRIORITIES, help="queue priority (default: the server's)")
    parser.add_argument(
        "--follow", "--wait", dest="wait", action="store_true", help="follow progress until the task ends"
    )
    parser.add_argument("--download", metavar="DIR", help="save every output to DIR once completed (implies --follow)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one compact JSON document on stdout: {task, result?, downloads?, downloaded?}",
    )
    parser.set_defaults(func=run_submit)
    return parser


def run_submit(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """Entry point of `agensium submit`: returns the process exit status."""
    return run_command(args, _submit_command, environ)


async def _submit_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    plan = plan_submit(args)
    try:
        return await submit(client, args, plan, console)
    except asyncio.CancelledError:
        console.print("interrupted; the task goes on on the server", highlight=False)
        raise


async def submit(client: AgensiumClient, args: argparse.Namespace, plan: SubmitPlan, console: Console) -> int:
    """The `submit` flow over an open client; returns the exit status and prints the outcome."""
    download_dir = Path(args.download) if getattr(args, "download", None) else None
    if download_dir is not None:
        await _check_directory(download_dir)
    plan = ToolCatalog.from_api(await client.tools()).check(plan, args.tool)
    task = await _create_with_retries(client, args.tool, plan.agents, args.priority, parameters=plan.parameters)
    task_id = task["task_id"]
    console.print(f"task {task_id} created", highlight=False)
    uploads = await client.upload_urls(task_id, plan.declared, has_parameters=plan.parameters_file is not None)
    await _upload_all(client, task_id, uploads, plan, console)
    task = await client.process(task_id)
    console.print(f"task {task_id} {task['status']}", highlight=False)
    if not args.wait and download_dir is None:
        _print_json({"task": task} if args.json else task, compact=args.json)
        return EXIT_OK
    task = await _follow_task(client, task, console)
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
    saved = await _download_all(client, files, download_dir, console) if download_dir is not None else None
    if args.json:
        document = {"task": task, "result": result, "downloads": files}
        if saved is not None:
            document["downloaded"] = saved
        _print_json(document, compact=True)
        return EXIT_OK
    sys.stdout.write(format_submit_summary(task, result, files, download_dir, saved))
    return EXIT_OK


def format_submit_summary(
    task: Mapping[str, Any],
    result: Mapping[str, Any],
    files: Sequence[Mapping[str, Any]],
    download_dir: Path | None = None,
    saved: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """What a completed task did, in a screenful at most: its status and time, rows in and out, the outcome
    (grade, readiness, golden records, matches, ...), alerts by severity with the most severe ones, and the
    outputs: where they were saved, or how to save them. The whole result is `--json`'s."""
    summary = result.get("summary") or {}
    envelopes = result.get("agents") or {}
    metrics = {agent: envelope.get("summary_metrics") or {} for agent, envelope in envelopes.items()}
    primary = f" on {summary['primary']}" if summary.get("primary") else ""
    took = _duration(task)
    cached = " (from the result cache)" if task.get("cached") else ""
    lines = [f"{task['status']}: {task.get('tool_id', '')}{primary}{took}{cached}, task {task['task_id']}"]
    lines.append(_rows_line(summary))
    lines += _outcome_lines(summary, metrics)
    failed = [agent for agent, envelope in envelopes.items() if envelope.get("status") != "success"]
    if failed:
        lines.append(f"agents: {len(envelopes) - len(failed)} of {len(envelopes)} succeeded; not: {', '.join(failed)}")
    lines += _alert_lines(summary, envelopes)
    lines += _output_lines(task, files, download_dir, saved)
    return "\n".join(lines) + "\n"


def _duration(task: Mapping[str, Any]) -> str:
    start, end = task.get("started_at") or task.get("created_at"), task.get("finished_at")
    if not start or not end:
        return ""
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f" in {seconds:.1f} s"


def _rows_line(summary: Mapping[str, Any]) -> str:
    """`rows: 1,000 × 12 columns`, or for a tool that writes data `rows: 1,000 in → 950 out (40 quarantined, ...)`."""
    line = f"rows: {_count(summary.get('rows'))} × {_count(summary.get('columns'))} columns"
    if summary.get("rows_out") is None:
        return line
    line = f"rows: {_count(summary.get('rows'))} in → {_count(summary['rows_out'])} out"
    if summary.get("columns_out") not in (None, summary.get("columns")):
        line += f", columns {_count(summary.get('columns'))} → {_count(summary['columns_out'])}"
    changes = [
        f"{_count(summary[key])} {label}"
        for key, label in (("rows_quarantined", "quarantined"), ("cells_changed", "cells changed"))
        if summary.get(key)
    ]
    return line + (f" ({', '.join(changes)})" if changes else "")


def _outcome_lines(summary: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The tool's own figures: grade and readiness; golden records and the stewardship queue; matches and
    groups; rows affected and the sentences of a transform."""
    parts = []
    if summary.get("quality_grade"):
        parts.append(f"grade {summary['quality_grade']} (quality {summary.get('quality_score')}/100)")
    readiness = metrics.get("readiness-rater") or {}
    if readiness.get("readiness_status"):
        parts.append(f"readiness {readiness['readiness_status']} ({readiness.get('readiness_score')}/100)")
    if summary.get("data_ready_for_pipeline") is not None:
        parts.append(f"ready for the pipeline: {'yes' if summary['data_ready_for_pipeline'] else 'no'}")
    golden = metrics.get("golden-record-builder") or {}
    if golden.get("golden_records_created") is not None:
        parts.append(
            f"{_count(golden.get('input_records'))} records → {_count(golden['golden_records_created'])} golden "
            f"records in {_count(golden.get('clusters_formed'))} clusters"
        )
    stewardship = metrics.get("stewardship-flagger") or {}
    if stewardship.get("tasks_created") is not None:
        parts.append(f"stewardship queue: {_count(stewardship['tasks_created'])}")
    for key, label in (("rows_matched", "matches"), ("total_groups", "groups"), ("rows_affected", "rows affected")):
        if summary.get(key) is not None:
            parts.append(f"{label}: {_count(summary[key])}")
    lines = [f"outcome: {'; '.join(parts)}"] if parts else []
    return lines + [f"  - {sentence}" for sentence in summary.get("transformations") or []]


def _alert_lines(summary: Mapping[str, Any], envelopes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """`alerts: 1 critical, 3 high, 0 medium, 2 low`, then the most severe few, one line each."""
    by_severity = summary.get("alerts_by_severity") or {}
    if not any(by_severity.values()):
        return ["alerts: none"]
    lines = ["alerts: " + ", ".join(f"{by_severity.get(severity, 0)} {severity}" for severity in SEVERITIES)]
    alerts = [(agent, alert) for agent, envelope in envelopes.items() for alert in envelope.get("alerts") or []]
    rank = {severity: index for index, severity in enumerate(SEVERITIES)}
    alerts.sort(key=lambda item: rank.get(str(item[1].get("severity")), len(SEVERITIES)))
    for agent, alert in alerts[:SUMMARY_TOP_ALERTS]:
        message = " ".join(str(alert.get("message", "")).split())
        message = message if len(message) <= 100 else message[:99] + "…"
        lines.append(f"  {alert.get('severity', ''):<8}  {agent}: {message}")
    if len(alerts) > SUMMARY_TOP_ALERTS:
        lines.append(f"  … {len(alerts) - SUMMARY_TOP_ALERTS} more in the reports")
    return lines


def _output_lines(
    task: Mapping[str, Any],
    files: Sequence[Mapping[str, Any]],
    download_dir: Path | None,
    saved: Sequence[Mapping[str, Any]] | None,
) -> list[str]:
    if saved is not None and download_dir is not None:
        return [f"saved in {download_dir}/:", *_file_lines(saved)]
    if not files:
        return ["outputs: none"]
    from service.cli import command_path

    return [f"outputs (save them with: {command_path()} download {task['task_id']} DIR):", *_file_lines(files)]


def _file_lines(files: Sequence[Mapping[str, Any]]) -> list[str]:
    width = max((len(str(entry["name"])) for entry in files), default=0)
    return [f"  {str(entry['name']).ljust(width)}  {decimal(int(entry.get('size') or 0))}" for entry in files]


async def _create_with_retries(
    client: AgensiumClient,
    tool_id: str,
    agents: list[str] | None,
    priority: str | None,
    attempts: int = 3,
    *,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Create the task, resending on a network failure: one Idempotency-Key makes that safe."""
    idempotency_key = str(uuid.uuid4())
    for attempt in range(1, attempts + 1):
        try:
            return await client.create_task(
                tool_id, agents=agents, parameters=parameters, priority=priority, idempotency_key=idempotency_key
            )
        except httpx.TransportError:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


async def _upload_all(
    client: AgensiumClient, task_id: str, uploads: list[dict[str, Any]], plan: SubmitPlan, console: Console
) -> None:
    local_files = dict(plan.inputs)
    if plan.parameters_file is not None:
        local_files["parameters.json"] = plan.parameters_file
    by_name = {u["name"]: u for u in uploads}
    missing = sorted(set(local_files) - set(by_name))
    if missing:
        raise ApiError(0, "UPLOAD_URLS_MISSING", f"the server returned no upload for {', '.join(missing)}")
    with _transfer_bars(console) as bars:
        for name, path in local_files.items():
            bar = bars.add_task(f"upload {name}", total=(await anyio.Path(path).stat()).st_size)
            await client.upload_input(task_id, by_name[name], path, _advancer(bars, bar))


async def _check_directory(directory: Path) -> None:
    """A usage error, before anything is sent, when the download directory is an existing file."""
    if await anyio.Path(directory).exists() and not await anyio.Path(directory).is_dir():
        raise UsageError(f"{directory}: not a directory")


async def _download_all(
    client: AgensiumClient, files: list[dict[str, Any]], directory: Path, console: Console
) -> list[dict[str, Any]]:
    """Save every output to `directory`, one bar per file: `[{name, path, size}]`."""
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    saved: list[dict[str, Any]] = []
    with _transfer_bars(console) as bars:
        for entry in files:
            bar = bars.add_task(f"download {entry['name']}", total=entry.get("size"))
            path = await client.download(entry, directory, _advancer(bars, bar))
            saved.append({"name": entry["name"], "path": str(path), "size": (await anyio.Path(path).stat()).st_size})
    return saved


@dataclass
class ChainProgress:
    """Per-agent progress of a task, estimated from its events for one bar per agent.

    The API reports one overall percentage and the running agent. The agents before the running
    one are done; the running one's share is estimated by splitting what was left when the first
    agent was seen evenly between it and the agents after it.
    """

    agents: list[str]
    fractions: dict[str, float] = field(default_factory=dict)  # 0..1 per agent
    running: str | None = None
    failed: str | None = None
    _first_seen: tuple[int, float] | None = None  # (index, overall progress) of the first agent seen running
    _starts: dict[str, float] = field(default_factory=dict)

    def update(self, progress: float, current_agent: str | None, status: str | None = None) -> None:
        if status == "COMPLETED":
            self.fractions = dict.fromkeys(self.agents, 1.0)
            self.running = None
            return
        if status in TERMINAL_STATUSES:
            self.failed, self.running = self.running, None
            return
        if current_agent is None:
            if self.running is not None:  # between agents: the one that ran is done
                self.fractions[self.running] = 1.0
                self.running = None
            return
        if current_agent not in self.agents:
            self.agents.append(current_agent)
        index = self.agents.index(current_agent)
        for before in self.agents[:index]:
            self.fractions[before] = 1.0
        if self._first_seen is None:
            self._first_seen = (index, progress)
        first_index, first_progress = self._first_seen
        span = max((100 - first_progress) / (len(self.agents) - first_index), 1.0)
        start = self._starts.setdefault(current_agent, progress)
        estimate = min((progress - start) / span, 0.99)
        self.fractions[current_agent] = max(self.fractions.get(current_agent, 0.0), estimate)
        self.running = current_agent

    def state(self, agent: str) -> str:
        if agent == self.failed:
            return "failed"
        if agent == self.running:
            return "running"
        return "done" if self.fractions.get(agent, 0.0) >= 1.0 else "pending"


AGENT_MARKS = {
    "pending": "[dim]·[/dim]",
    "running": "[cyan]▶[/cyan]",
    "done": "[green]✓[/green]",
    "failed": "[red]✗[/red]",
}


async def _follow_task(client: AgensiumClient, task: dict[str, Any], console: Console) -> dict[str, Any]:
    """Show the task's progress from its event stream (overall, then one bar per agent of its chain)
    until it ends; return the final task."""
    task_id = task["task_id"]
    chain = ChainProgress(list(task.get("agents") or []))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("[dim]{task.fields[message]}"),
    )
    with Progress(*columns, console=console) as bars:
        overall = bars.add_task("overall", total=100, message="")
        agent_bars: dict[str, TaskID] = {}

        def show(progress: int, message: str) -> None:
            bars.update(overall, completed=progress, description=f"overall {task.get('status', '')}", message=message)
            for agent in chain.agents:
                if agent not in agent_bars:
                    agent_bars[agent] = bars.add_task(agent, total=100, message="")
                state = chain.state(agent)
                bars.update(
                    agent_bars[agent],
                    completed=100 * chain.fractions.get(agent, 0.0),
                    description=f"{AGENT_MARKS[state]} {agent}",
                    message=state,
                )

        show(task.get("progress") or 0, task.get("message") or "")
        async with aclosing(client.events(task_id)) as events:
            async for event in events:
                if event.event not in ("status", "progress", "done"):
                    continue
                payload = event.json()
                if event.event in ("status", "done"):
                    task = payload
                progress = payload.get("progress") or 0
                status = task.get("status") if event.event != "progress" else None
                chain.update(progress, payload.get("current_agent"), status)
                show(progress, payload.get("message") or "")
                if event.event == "done" or task.get("status") in TERMINAL_STATUSES:
                    break
    if task.get("status") not in TERMINAL_STATUSES:
        task = await client.get_task(task_id)
    return task


# --- `agensium tasks list|show|cancel|retry|delete` ---------------------------------------------

STATUS_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "EXPIRED": "yellow",
    "PROCESSING": "cyan",
    "QUEUED": "blue",
}


def _output_console() -> Console:
    """The console a table is printed on: the terminal's width; piped (`| grep`, `> file`) without COLUMNS, wide
    enough for whole rows (rich would fit them in 80 columns and cut every cell to `…`)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPED_WIDTH)


PIPED_WIDTH = 1000


def _status_text(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _page_size(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an integer") from None
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("must be between 1 and 200")
    return value


def add_tasks_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser("tasks", help="list, show, cancel, retry or delete tasks")
    commands = parser.add_subparsers(dest="tasks_command", required=True, metavar="COMMAND")
    options = _connection_options()

    listing = commands.add_parser("list", parents=[options], help="the caller's tasks, newest first")
    listing.add_argument("--status", help="only these statuses, comma-separated (e.g. QUEUED,PROCESSING)")
    listing.add_argument("--tool", help="only tasks of this tool id")
    listing.add_argument("--limit", type=_page_size, default=20, help="tasks per page, 1-200 (default: %(default)s)")
    listing.add_argument("--cursor", help="the page after this cursor (printed when there are more)")
    listing.add_argument("--all", action="store_true", help="every page, not only the first")
    listing.add_argument("--json", action="store_true", help="print {items, next_cursor} as JSON")
    listing.set_defaults(func=lambda args: run_command(args, tasks_list))

    for name, command, help_text in (
        ("show", tasks_show, "one task's status"),
        ("cancel", tasks_cancel, "cancel a task that has not ended; a running agent is stopped"),
        ("retry", tasks_retry, "queue a FAILED, CANCELLED or EXPIRED task again"),
        ("delete", tasks_delete, "delete an ended task and all of its stored files"),
    ):
        sub = commands.add_parser(name, parents=[options], help=help_text)
        sub.add_argument("task_id", metavar="ID")
        sub.add_argument("--json", action="store_true", help="print the task as JSON")
        sub.set_defaults(func=lambda args, command=command: run_command(args, command))
    return parser


async def tasks_list(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    filters = {"status": args.status.upper() if args.status else None, "tool_id": args.tool}
    if args.all:
        items = [task async for task in client.iter_tasks(page_size=args.limit, **filters)]
        next_cursor = None
    else:
        page = await client.list_tasks(limit=args.limit, cursor=args.cursor, **filters)
        items, next_cursor = page["items"], page.get("next_cursor")
    if args.json:
        _print_json({"items": items, "next_cursor": next_cursor}, compact=True)
        return EXIT_OK
    table = Table(box=None, header_style="bold")
    table.add_column("task", no_wrap=True, min_width=36)  # whole ids: they are what the other commands take
    for column in ("tool", "status", "progress", "file", "size", "took", "credits", "created"):
        table.add_column(column, no_wrap=column in {"status", "progress"}, justify="right" if column in {
            "size", "took", "credits"} else "left")  # fmt: skip
    for task in items:
        primary = next((i for i in task.get("inputs") or [] if i.get("role") == "primary"), None)
        table.add_row(
            task["task_id"],
            task.get("tool_id", ""),
            _status_text(task["status"])
            + (f" {task['error']['code']}" if (task.get("error") or {}).get("code") else ""),
            f"{task.get('progress') or 0}%" + (f" {task['current_agent']}" if task.get("current_agent") else ""),
            Text((primary.get("display_name") or primary.get("name") or "") if primary else ""),  # as named: no markup
            decimal(int(primary["size"])) if primary and primary.get("size") is not None else "",
            _duration(task).removeprefix(" in "),
            f"{task['credits']:,}" if task.get("credits") is not None else "",
            (task.get("created_at") or "")[:19].replace("T", " "),
        )
    _output_console().print(table)
    if next_cursor:
        console.print(f"more: --cursor {next_cursor} (or --all)", highlight=False)
    return EXIT_OK


async def tasks_show(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    _print_task(await client.get_task(args.task_id), args.json)
    return EXIT_OK


async def tasks_cancel(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    _print_task(await client.cancel(args.task_id), args.json)
    return EXIT_OK


async def tasks_retry(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    _print_task(await client.retry(args.task_id), args.json)
    return EXIT_OK


async def tasks_delete(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    await client.delete(args.task_id)
    if args.json:
        _print_json({"task_id": args.task_id, "deleted": True}, compact=True)
    else:
        Console().print(f"task {args.task_id} deleted", highlight=False)
    return EXIT_OK


def _print_task(task: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(task, compact=True)
        return
    table = Table(show_header=False, box=None)
    for key, value in task.items():
        if value is None or value == {} or value == []:
            continue
        if key == "status":
            text = _status_text(value)
        elif key == "error":
            text = f"[red]{value.get('code')}[/red]: {value.get('message', '')}"
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = json.dumps(value)
        else:
            text = str(value)
        table.add_row(f"[bold]{key}[/bold]", text)
    Console().print(table)


# --- `agensium download` ------------------------------------------------------------------------


def add_download_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "download",
        parents=[_connection_options()],
        help="save every output of a completed task to a directory",
        description="Stream each output of GET /downloads to DIR/<name>, checking its size.",
    )
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("dir", metavar="DIR", help="created if missing; existing files of the same name are replaced")
    parser.add_argument("--json", action="store_true", help="print {task_id, files: [{name, path, size}]} as JSON")
    parser.set_defaults(func=lambda args: run_command(args, download_command))
    return parser


async def download_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    directory = Path(args.dir)
    await _check_directory(directory)
    files = await client.downloads(args.task_id)
    if not files:
        task = await client.get_task(args.task_id)
        if task["status"] != "COMPLETED":
            raise ApiError(409, "NOT_READY", f"task {args.task_id} is {task['status']}: it has no outputs yet")
    saved = await _download_all(client, files, directory, console)
    if args.json:
        _print_json({"task_id": args.task_id, "files": saved}, compact=True)
    else:
        for entry in saved:
            sys.stdout.write(f"{entry['path']}\n")
    return EXIT_OK


# --- `agensium watch` ---------------------------------------------------------------------------


def add_watch_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        parents=[_connection_options()],
        help="show all of your running tasks live, until Ctrl-C",
        description=(
            "One event stream (GET /api/v1/events) for all of your tasks: starts from the tasks QUEUED or "
            "PROCESSING, then follows every task's status and progress. Ctrl-C stops it (exit status 0)."
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON line per event: {"id", "event", "data"} (first a "snapshot" per running task)',
    )
    parser.set_defaults(func=lambda args: run_command(args, watch, interrupted_status=EXIT_OK))
    return parser


@dataclass
class WatchBoard:
    """The rows of `agensium watch`: every task seen in flight, kept current from the events."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_rows: int = WATCH_MAX_ROWS

    def apply(self, event: SseEvent) -> bool:
        """Apply one event; False when it is a progress event of a task the board has no row for."""
        payload = event.json()
        task_id = str(payload.get("task_id"))
        if payload.get("deleted"):  # the task's last status event: it was deleted
            self.rows.pop(task_id, None)
        elif event.event in ("status", "done"):
            self.rows[task_id] = {**self.rows.get(task_id, {}), **payload}
        elif event.event == "progress":
            row = self.rows.get(task_id)
            if row is None:
                return False
            # Events queued before the task list was read may be older than it: progress only rises.
            row["progress"] = max(row.get("progress") or 0, payload.get("progress") or 0)
            row["current_agent"] = payload.get("current_agent")
            row["message"] = payload.get("message")
        self._trim()
        return True

    def _trim(self) -> None:
        ended = [task_id for task_id, row in self.rows.items() if row.get("status") in TERMINAL_STATUSES]
        for task_id in ended[: max(0, len(self.rows) - self.max_rows)]:
            del self.rows[task_id]

    def running(self) -> int:
        """The rows QUEUED or PROCESSING now: the count in the table's title, kept current with its rows."""
        return sum(row.get("status") in ACTIVE_STATUSES.split(",") for row in self.rows.values())

    def render(self) -> Table:
        table = Table(
            "task",
            "tool",
            "status",
            "progress",
            "",
            "agent",
            "message",
            box=None,
            header_style="bold",
            title=f"watching {self.running()} running task(s)",
            title_justify="left",
        )
        for task_id, row in self.rows.items():
            progress = int(row.get("progress") or 0)
            table.add_row(
                task_id[:8],
                row.get("tool_id") or "",
                _status_text(row.get("status") or ""),
                ProgressBar(total=100, completed=progress, width=24),
                f"{progress:>3}%",
                row.get("current_agent") or "",
                row.get("message") or "",
            )
        if not self.rows:
            table.add_row("[dim]no task running[/dim]", "", "", "", "", "", "")
        return table


async def watch(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    """Follow all of the caller's tasks from one event stream until cancelled (Ctrl-C)."""
    opened = asyncio.Event()
    queue: asyncio.Queue[SseEvent] = asyncio.Queue()

    async def pump() -> None:
        async with aclosing(client.user_events(on_open=opened.set)) as events:
            async for event in events:
                queue.put_nowait(event)

    reader = asyncio.create_task(pump())
    try:
        # Stream first, list second: a fresh stream starts from "now", so the list is never older than it.
        await _unless_stream_ends(opened.wait(), reader)
        board = WatchBoard()
        async for task in client.iter_tasks(status=ACTIVE_STATUSES):
            board.rows[task["task_id"]] = task
            if args.json:
                _print_json({"id": None, "event": "snapshot", "data": task}, compact=True)
        console.print("watching your tasks; Ctrl-C to stop", highlight=False)
        if args.json:
            while True:
                event = await _unless_stream_ends(queue.get(), reader)
                _print_json({"id": event.id, "event": event.event, "data": event.json()}, compact=True)
        with Live(board.render(), console=Console(), refresh_per_second=4) as live:
            while True:
                event = await _unless_stream_ends(queue.get(), reader)
                if event.event not in ("status", "progress", "done"):
                    continue
                if not board.apply(event):  # a task started before the list was read
                    try:
                        task = await client.get_task(str(event.json()["task_id"]))
                    except ApiError as exc:
                        if exc.code != "TASK_NOT_FOUND":  # deleted since: nothing to show
                            raise
                        continue
                    board.rows[task["task_id"]] = task
                    board.apply(event)
                live.update(board.render())
    finally:
        reader.cancel()
        with suppress(asyncio.CancelledError):
            await reader


async def _unless_stream_ends(step: Awaitable[T], reader: asyncio.Task[None]) -> T:
    """Await `step`, unless the event stream's reader ends first: then raise what ended it."""
    future = asyncio.ensure_future(step)
    await asyncio.wait({future, reader}, return_when=asyncio.FIRST_COMPLETED)
    if future.done():
        return future.result()
    future.cancel()
    reader.result()
    raise StreamLostError("the event stream ended")


# --- `agensium transform` and `agensium lineage` ------------------------------------------------


def add_transform_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "transform",
        parents=[_connection_options()],
        help='transform a task\'s dataset: agensium transform TASK_ID "remove rows where email is null"',
        description=(
            "Create a transform-my-data task on TASK_ID's dataset version (its cleaned, master, transformed or "
            "search output, else its primary input) and queue it; prints the new task's id. Commands are short "
            "English lines, applied in order; --recipe replays the operations of a recipe.json instead. With "
            "--follow, show its progress, then the rows before and after and one sentence per step. A refused "
            "command is explained (where, and what was meant) with exit status 1."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID", help="the task whose dataset version is transformed")
    parser.add_argument("commands", metavar="COMMAND", nargs="*", help='e.g. "remove rows where email is null"')
    parser.add_argument("--recipe", metavar="FILE", help="JSON operations instead of commands: a recipe.json or a list")
    parser.add_argument("--priority", choices=PRIORITIES, help="queue priority (default: the server's)")
    parser.add_argument(
        "--follow", "--wait", dest="wait", action="store_true", help="follow progress until the task ends"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one compact JSON document: {task, summary?} or the API's error"
    )
    parser.set_defaults(func=lambda args: run_command(args, transform_command))
    return parser


def add_lineage_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "lineage",
        parents=[_connection_options()],
        help="a task's dataset versions: its ancestors from the root upload, itself (>), its children",
        description=(
            "GET /tasks/{id}/lineage as a table, root first: version, task, tool, status, rows, and under each "
            "version the sentences of its transformations. The task asked for is marked with '>'; the versions "
            "made from it follow as children. To undo a transform, continue from its parent: "
            "agensium transform PARENT_ID ..."
        ),
    )
    parser.add_argument("task_id", metavar="TASK_ID")
    parser.add_argument("--json", action="store_true", help="print the API's lineage document as JSON")
    parser.set_defaults(func=lambda args: run_command(args, lineage_command))
    return parser


def recipe_operations(path: Path) -> list[dict[str, Any]]:
    """The operations of a recipe file: a recipe.json (`{"operations": [...]}`) or a bare list."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a JSON file: {exc}") from None
    operations = document.get("operations") if isinstance(document, dict) else document
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations) or not operations:
        raise UsageError(f"{path}: expected a list of operations, or an object with one under 'operations'")
    return operations


async def transform_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    commands = [c.strip() for c in args.commands if c.strip()]
    if args.recipe is not None and commands:
        raise UsageError("give commands or --recipe, not both")
    operations = recipe_operations(Path(args.recipe)) if args.recipe is not None else None
    if operations is None and not commands:
        raise UsageError('no command: e.g. agensium transform TASK_ID "remove rows where email is null"')
    try:
        task = await _transform_with_retries(client, args.task_id, commands, operations, args.priority)
    except ApiError as exc:
        if exc.code != "INVALID_PARAMETERS":
            raise
        _print_refusal(exc, commands, console)
        if args.json:
            _print_json({"error": {"code": exc.code, "message": exc.message, "details": exc.details}}, compact=True)
        return EXIT_TASK_FAILED
    task_id = task["task_id"]
    if not args.json:
        sys.stdout.write(f"{task_id}\n")
        sys.stdout.flush()
    if not args.wait:
        if args.json:
            _print_json({"task": task}, compact=True)
        return EXIT_OK
    console.print(f"task {task_id} {task['status']}", highlight=False)
    task = await _follow_task(client, task, console)
    if task["status"] != "COMPLETED":
        error = task.get("error") or {}
        console.print(
            f"task {task_id} {task['status']}: {error.get('code', task['status'])}: {error.get('message', '')}",
            style="red",
            markup=False,
            highlight=False,
        )
        if args.json:
            _print_json({"task": task}, compact=True)
        return EXIT_TASK_FAILED
    summary = transform_summary(await client.result(task_id), await client.lineage(task_id))
    if args.json:
        _print_json({"task": task, "summary": summary}, compact=True)
    else:
        sys.stdout.write(format_transform_summary(summary))
    return EXIT_OK


async def _transform_with_retries(
    client: AgensiumClient,
    task_id: str,
    commands: Sequence[str],
    operations: Sequence[Mapping[str, Any]] | None,
    priority: str | None,
    attempts: int = 3,
) -> dict[str, Any]:
    """POST /transform, resent on a network failure: one Idempotency-Key makes that safe (as for submit)."""
    idempotency_key = str(uuid.uuid4())
    for attempt in range(1, attempts + 1):
        try:
            return await client.transform(task_id, commands, operations, priority, idempotency_key=idempotency_key)
        except httpx.TransportError:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _refused_span(command: str, position: Any) -> tuple[int, int] | None:
    """[start, end) of the word (or quoted name) at `position` in `command`, or None."""
    if not isinstance(position, int) or not 0 <= position < len(command):
        return None
    if command[position] in "'\"`":
        close = command.find(command[position], position + 1)
        return position, len(command) if close < 0 else close + 1
    end = position
    while end < len(command) and not (command[end].isspace() or command[end] in ",()=<>!"):
        end += 1
    return position, max(end, position + 1)


def _print_refusal(error: ApiError, commands: Sequence[str], console: Console) -> None:
    """The API's sentence, the refused command with the offending part underlined, and the suggestions."""
    details = error.details
    console.print(f"error: {error.code}: {error.message}", style="red", markup=False, highlight=False)
    command = details.get("command")
    if command is None and len(commands) == 1:
        command = commands[0]
    if isinstance(command, str):
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
        span = _refused_span(command, details.get("position"))
        if span is not None:
            console.print("  " + " " * span[0] + "^" * (span[1] - span[0]), markup=False, highlight=False)
    suggestions = [str(s) for s in details.get("suggestions") or []]
    if suggestions:
        console.print(f"did you mean: {', '.join(suggestions)}", markup=False, highlight=False, soft_wrap=True)


def transform_summary(result: Mapping[str, Any], lineage: Mapping[str, Any]) -> dict[str, Any]:
    """Rows before and after, rows affected, the sentences of a completed transform and, per sentence, how its
    columns were read when not exactly as written (`readings`): from its result (the chain's summary, else the
    transformer's envelope), the rest from its lineage (the parent's rows)."""
    summary = result.get("summary") or {}
    agents = result.get("agents") or {}
    envelope = agents.get("transformer") if isinstance(agents, dict) else None
    metrics = (envelope or {}).get("summary_metrics") or {}
    data = (envelope or {}).get("data") or {}

    def pick(key: str) -> Any:
        return next((source[key] for source in (summary, metrics, data) if source.get(key) is not None), None)

    entry = lineage.get("task") or {}
    parent = (lineage.get("ancestors") or [{}])[-1]
    sentences = list(pick("transformations") or entry.get("transformations") or [])
    steps = data.get("steps") or []
    readings = [list(step.get("notes") or []) for step in steps] if len(steps) == len(sentences) else []
    return {
        "rows_before": next(
            (v for v in (pick("rows_before"), summary.get("rows"), parent.get("rows")) if v is not None), None
        ),
        "rows_after": next(
            (v for v in (pick("rows_after"), summary.get("rows_out"), entry.get("rows")) if v is not None), None
        ),
        "rows_affected": pick("rows_affected"),
        "transformations": sentences,
        "readings": readings or [[] for _ in sentences],
    }


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def format_transform_summary(summary: Mapping[str, Any]) -> str:
    """`rows: 1,000 → 850 (150 affected)`, one line per sentence, and under it how a column was read when not
    exactly as written."""
    affected = summary.get("rows_affected")
    lines = [f"rows: {_count(summary.get('rows_before'))} → {_count(summary.get('rows_after'))}"]
    if affected is not None:
        lines[0] += f" ({_count(affected)} affected)"
    readings = summary.get("readings") or []
    for index, sentence in enumerate(summary.get("transformations") or []):
        lines.append(f"  - {sentence}")
        lines += [f"    ({note})" for note in (readings[index] if index < len(readings) else [])]
    return "\n".join(lines) + "\n"


async def lineage_command(client: AgensiumClient, args: argparse.Namespace, console: Console) -> int:
    lineage = await client.lineage(args.task_id)
    if args.json:
        _print_json(lineage, compact=True)
    else:
        sys.stdout.write(format_lineage(lineage))
    return EXIT_OK


def format_lineage(lineage: Mapping[str, Any]) -> str:
    """The versions root first, the task asked for marked `>`, its children after it; each version's
    transformation sentences on the lines below it. Plain text: it reads the same in a pipe."""
    ancestors = list(lineage.get("ancestors") or [])
    children = list(lineage.get("children") or [])
    depth = len(ancestors)
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("", "root" if i == 0 else "", entry) for i, entry in enumerate(ancestors)
    ]
    rows.append((">", "this task" + (" (root)" if not ancestors else ""), dict(lineage.get("task") or {})))
    rows += [("", "child", entry) for entry in children]
    header = ["", "VERSION", "TASK", "TOOL", "STATUS", "ROWS", ""]
    table = [
        [
            mark,
            f"v{min(i, depth + 1) + 1}",  # ancestors 1..depth, this task depth + 1, every child depth + 2
            str(entry.get("task_id", "")),
            str(entry.get("tool_id", "")),
            str(entry.get("status", "")),
            _count(entry.get("rows")) if entry.get("rows") is not None else "-",
            note,
        ]
        for i, (mark, note, entry) in enumerate(rows)
    ]
    widths = [max(len(row[c]) for row in [header, *table]) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    indent = " " * (widths[0] + widths[1] + 2)  # the sentences under the TASK column
    for cells, (_, _, entry) in zip(table, rows, strict=True):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
        lines += [f"{indent}  - {sentence}" for sentence in entry.get("transformations") or []]
    if not children:
        lines.append(f"{indent}(no version made from this one yet)")
    return "\n".join(lines) + "\n"


# --- registration -------------------------------------------------------------------------------


def add_client_parsers(subparsers: Any) -> None:
    """Register the API client's commands: submit, tasks, download, watch, transform, lineage, search, aggregate."""
    add_submit_parser(subparsers)
    add_tasks_parser(subparsers)
    add_download_parser(subparsers)
    add_watch_parser(subparsers)
    add_transform_parser(subparsers)
    add_lineage_parser(subparsers)
    from service.search_client import add_search_parsers  # it builds on this module

    add_search_parsers(subparsers)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m service.client COMMAND ...`, for use without the `agensium` dispatcher."""
    parser = argparse.ArgumentParser(prog="agensium")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_client_parsers(subparsers)
    from service.search_client import join_sort_values

    args = parser.parse_args(join_sort_values(sys.argv[1:] if argv is None else argv))
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
