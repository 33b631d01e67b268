"""SSE fan-out on ONE API process: N open streams, one event, how fast every stream gets it.

Starts PostgreSQL/Redis/S3 (as the other benchmarks do, with a key prefix of its own) and one API
process (`agensium api --workers 1`; no worker: the triggering call needs none), a new one for each N of
--streams, and:
  1. reads the API's RSS, opens N user-wide streams (`GET /api/v1/events`) of one user on raw
     asyncio sockets (httpx would cost more than the server), reads the RSS again:
     RSS per idle stream = (after - before) / N;
  2. measures ordinary GETs (`GET /api/v1/tasks/{id}`, --get-clients keep-alive connections in a
     loop, from a process of their own) while the N streams are idle: the baseline;
  3. --rounds times: creates a task (untimed), takes the time and POSTs its `cancel`, which commits
     a `status` and a `done` event to the user; records when each stream receives the `status`
     event: p50/p99/max over every stream and round, and each round's first and last stream, with
     the GETs still running (their latency during the fan-out, from the POST until the last stream
     got the event, is kept apart). This process's garbage collector is off during the rounds: a
     collection over its N streams' objects delayed its reading, and so the arrival times;
  4. checks every stream received every event once, in order (events lost / duplicated).

Needs file descriptors: raise `ulimit -n` above N (the API inherits the limit; so does this client).
Prints a table; writes bench/results/sse-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import re
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    LOCALHOST,
    LocalService,
    agensium_command,
    default_data_dir,
    free_port,
    machine_info,
    parse_env_pairs,
    percentile,
    wait_until_http_ok,
    write_results,
)
from rich.console import Console
from rich.table import Table

TARGET_STREAMS = 10_000
TARGET_P99_MS = 250.0
TARGET_RSS_KB = 16.0
OPEN_CONCURRENCY = 200  # connections being opened at once: below uvicorn's listen backlog (2048)
_EVENT = re.compile(rb"id: ([0-9]+)\nevent: ([a-z_]+)\n")
console = Console(width=170)


class StreamClient(asyncio.Protocol):
    """One SSE connection, read as raw bytes: the ids of its events and when each first arrived. Reading
    only keeps the chunks and their time (the client must not be what delays 10,000 streams); `digest`
    parses them later."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.chunks: list[tuple[float, bytes]] = []
        self.last_data_at = 0.0
        self.headers_seen = asyncio.get_running_loop().create_future()
        self.ids: list[int] = []
        self.arrivals: dict[int, float] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.last_data_at = now
        if self.headers_seen.done():
            self.chunks.append((now, data))
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
        if b" 200 " not in status:
            self.headers_seen.set_exception(RuntimeError(f"stream refused: {status!r}"))
            return
        self.headers_seen.set_result(None)
        rest = bytes(self.buffer[end + 4 :])
        self.buffer.clear()
        if rest:
            self.chunks.append((now, rest))

    def digest(self) -> None:
        """The events of the chunks read so far; an event's time is that of the chunk that completed it."""
        for at, data in self.chunks:
            self.buffer += data
            consumed = 0
            for match in _EVENT.finditer(self.buffer):
                event_id = int(match.group(1))
                self.ids.append(event_id)
                self.arrivals.setdefault(event_id, at)
                consumed = match.end()
            if consumed:
                del self.buffer[:consumed]
        self.chunks.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.headers_seen.done():
            self.headers_seen.set_exception(ConnectionError(f"closed before the headers: {exc!r}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_streams(host: str, port: int, api_key: str, count: int) -> list[StreamClient]:
    request = (
        f"GET /api/v1/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {api_key}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> StreamClient:
        async with gate:
            _, stream = await loop.create_connection(lambda: StreamClient(request), host, port)
            await asyncio.wait_for(stream.headers_seen, 60)
            return stream

    return list(await asyncio.gather(*(one() for _ in range(count))))


@dataclass
class GetProbe:
    """Keep-alive GETs of one task in a loop on a few connections, from a process of their own (this one is
    busy reading the N streams: its loop would delay the GETs' answers): (start time, latency) of each.
    perf_counter is the system's monotonic clock on Linux, the same in both processes."""

    url: str
    api_key: str
    task_id: str
    clients: int
    samples: list[tuple[float, float]] = field(default_factory=list)

    async def _loop(self, http: httpx.AsyncClient) -> None:
        path = f"/api/v1/tasks/{self.task_id}"
        while True:
            started = time.perf_counter()
            response = await http.get(path)
            response.raise_for_status()
            self.samples.append((started, time.perf_counter() - started))
            await asyncio.sleep(0.005)  # a steady trickle, not a load test

    async def run_until_eof(self) -> None:
        """The child's side: GET until stdin closes, then print the samples as JSON."""
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with contextlib.AsyncExitStack() as stack:
            tasks = []
            for _ in range(self.clients):
                http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
                await stack.enter_async_context(http)
                tasks.append(asyncio.create_task(self._loop(http)))
            await stdin.read()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        print(json.dumps(self.samples))

    @contextlib.asynccontextmanager
    async def running(self) -> Any:
        command = [sys.executable, __file__, "--probe", self.url, self.api_key, self.task_id, str(self.clients)]
        child = await asyncio.create_subprocess_exec(*command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            yield self
        finally:
            stdout, _ = await child.communicate(b"")
            if child.returncode != 0:
                raise RuntimeError(f"the GET probe failed ({child.returncode})")
            self.samples = [(started, latency) for started, latency in json.loads(stdout)]

    def between(self, windows: list[tuple[float, float]], inside: bool) -> list[float]:
        def within(t: float) -> bool:
            return any(a <= t <= b for a, b in windows)

        return [latency for started, latency in self.samples if within(started) == inside]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2) if values else float("nan"),
    }


@dataclass
class Row:
    streams: int
    rss_before_kb: int
    rss_after_kb: int
    rss_per_stream_kb: float
    first_event: dict[str, float]
    # Each round's first and last stream (ms): when the fan-out began (the cancel's commit and publish) and ended;
    # the p99 is the slowest round's tail.
    round_first_ms: list[float]
    round_last_ms: list[float]
    trigger_answer: dict[str, float]
    get_idle: dict[str, float]
    get_fanout: dict[str, float]
    events_expected: int
    events_lost: int
    events_duplicated: int
    out_of_order_streams: int


async def wait_all(streams: list[StreamClient], since: float, seen_before: int, timeout_s: float) -> int:
    """Wait until every stream got the first event after the `seen_before` events of the first stream (its
    id is returned): first until each stream read something after `since` (cheap), then parsing."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if all(s.last_data_at >= since for s in streams):
            for stream in streams:
                stream.digest()
            ids = streams[0].ids
            if len(ids) > seen_before and all(ids[seen_before] in s.arrivals for s in streams):
                return ids[seen_before]
        await asyncio.sleep(0.005)
    raise RuntimeError(f"not every stream got the event within {timeout_s:.0f} s")


async def measure(url: str, api_key: str, pid: int, count: int, rounds: int, get_clients: int, settle_s: float) -> Row:
    host, port = LOCALHOST, int(url.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:

        async def new_task() -> str:
            response = await http.post("/api/v1/tasks", json={"tool_id": "profile-my-data"})
            response.raise_for_status()
            return str(response.json()["task_id"])

        probe_task = await new_task()
        gc.collect()
        await asyncio.sleep(settle_s)
        before = rss_kb(pid)
        streams = await open_streams(host, port, api_key, count)
        await asyncio.sleep(settle_s)
        after = rss_kb(pid)
        console.print(f"{count} streams open: API RSS {before} -> {after} KB")
        first_latencies: list[float] = []
        round_first: list[float] = []
        round_last: list[float] = []
        answers: list[float] = []
        windows: list[tuple[float, float]] = []
        reference: list[int] = []  # the ids a stream must get: from the first stream, checked against all
        probe = GetProbe(url, api_key, probe_task, get_clients)
        # This process's own garbage collector stays out of the rounds: a full collection over its N streams' objects
        # paused its reading (~100 ms; a stream's arrival is when this process reads it) in the middle of fan-outs.
        gc.collect()
        gc.disable()
        async with probe.running():
            await asyncio.sleep(max(1.0, settle_s))  # the idle baseline, streams open
            for _ in range(rounds):
                task_id = await new_task()
                streams[0].digest()
                seen_before = len(streams[0].ids)
                started = time.perf_counter()
                response = await http.post(f"/api/v1/tasks/{task_id}/cancel")
                answers.append(time.perf_counter() - started)
                response.raise_for_status()
                got = await wait_all(streams, started, seen_before, timeout_s=60)
                last = max(s.arrivals[got] for s in streams)
                windows.append((started, last))
                first_latencies += [s.arrivals[got] - started for s in streams]
                round_first.append(round((min(s.arrivals[got] for s in streams) - started) * 1000, 1))
                round_last.append(round((last - started) * 1000, 1))
                await asyncio.sleep(0.5)  # the `done` event and the GETs settle between rounds
        gc.enable()
        await asyncio.sleep(1.0)
        for stream in streams:
            stream.digest()
        reference = sorted(set().union(*(set(s.ids) for s in streams)))
        lost = sum(len(set(reference) - set(s.ids)) for s in streams)
        duplicated = sum(len(s.ids) - len(set(s.ids)) for s in streams)
        unordered = sum(1 for s in streams if s.ids != sorted(s.ids))
        for stream in streams:
            stream.close()
        await asyncio.sleep(settle_s)
    return Row(
        streams=count,
        rss_before_kb=before,
        rss_after_kb=after,
        rss_per_stream_kb=round((after - before) / count, 2),
        first_event=ms(first_latencies),
        round_first_ms=round_first,
        round_last_ms=round_last,
        trigger_answer=ms(answers),
        get_idle=ms(probe.between(windows, inside=False)),
        get_fanout=ms(probe.between(windows, inside=True)),
        events_expected=len(reference),
        events_lost=lost,
        events_duplicated=duplicated,
        out_of_order_streams=unordered,
    )


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < needed:
        raise SystemExit(f"ulimit -n is {soft}; {needed} streams need more (raise the hard limit)")


def show(rows: list[Row]) -> None:
    table = Table(title="SSE fan-out, one API process (user-wide streams)")
    for column in ("streams", "KB/idle stream", "first event p50/p99/max ms", "cancel answer p50/max ms"):
        table.add_column(column, justify="right")
    table.add_column("GET idle p50/p99 ms", justify="right")
    table.add_column("GET in fan-out p50/p99 (n)", justify="right")
    table.add_column("rounds' first-last ms", justify="right")
    table.add_column("lost/dup/unordered", justify="right")
    for r in rows:
        f, a, gi, gf = r.first_event, r.trigger_answer, r.get_idle, r.get_fanout
        table.add_row(
            str(r.streams),
            f"{r.rss_per_stream_kb:.1f}",
            f"{f['p50_ms']:.0f} / {f['p99_ms']:.0f} / {f['max_ms']:.0f}",
            f"{a['p50_ms']:.0f} / {a['max_ms']:.0f}",
            f"{gi['p50_ms']:.1f} / {gi['p99_ms']:.1f}",
            f"{gf['p50_ms']:.1f} / {gf['p99_ms']:.1f} ({gf['n']})",
            " ".join(f"{first:.0f}-{last:.0f}" for first, last in zip(r.round_first_ms, r.round_last_ms, strict=True)),
            f"{r.events_lost}/{r.events_duplicated}/{r.out_of_order_streams}",
        )
    console.print(table)
    console.print(
        f"goals: {TARGET_STREAMS} streams, first event p99 <= {TARGET_P99_MS:.0f} ms, <= {TARGET_RSS_KB:.0f} KB "
        "per idle stream, GETs during the fan-out like GETs without"
    )


async def run(args: argparse.Namespace) -> int:
    raise_fd_limit(max(args.streams) + 1000)  # before the API starts: it inherits the limit
    async with LocalService(args.data_dir, args.embedded, parse_env_pairs(args.env)) as service:
        api_key = await service.create_user()
        rows = []
        for count in args.streams:
            # A new API process per row: the memory a larger row frees is not reused by the next one's streams.
            port = free_port()
            command = [*agensium_command(), "api", "--host", LOCALHOST, "--port", str(port), "--workers", "1"]
            api = service.start(f"api-{count}", command)
            url = f"http://{LOCALHOST}:{port}"
            await wait_until_http_ok(f"{url}/healthz", api)
            console.print(f"API {url} (pid {api.popen.pid}); logs in {service.log_dir}")
            rows.append(await measure(url, api_key, api.popen.pid, count, args.rounds, args.get_clients, args.settle))
            api.check_alive()
            service.stop(api)
    show(rows)
    path = write_results(
        "sse",
        {
            "label": args.label,
            "settings": {"rounds": args.rounds, "get_clients": args.get_clients, "env": args.env},
            "machine": machine_info(),
            "rows": [asdict(r) for r in rows],
        },
    )
    console.print(f"results: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench_sse.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000, 10000], help="open streams per row")
    parser.add_argument("--rounds", type=int, default=5, help="triggering calls per row (%(default)s)")
    parser.add_argument("--get-clients", type=int, default=2, help="keep-alive GET loops (%(default)s)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before each RSS reading (%(default)s)")
    parser.add_argument("--label", default="", help="a note stored with the results (e.g. before/after)")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where embedded services keep their data"
    )
    parser.add_argument("--embedded", action="store_true", help="force embedded PostgreSQL/Redis/S3")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the API")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import uvloop  # the client reads N sockets too: the faster loop keeps its own delay small

    argv = sys.argv[1:] if argv is None else argv
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if argv[:1] == ["--probe"]:  # the GET probe's own process (GetProbe.running)
            url, api_key, task_id, clients = argv[1:5]
            runner.run(GetProbe(url, api_key, task_id, int(clients)).run_until_eof())
            return 0
        return runner.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
