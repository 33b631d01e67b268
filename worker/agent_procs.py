"""The agent processes: each runs one tool chain at a time, so that one task's run can be killed (cancel,
hard time limit, shutdown) without touching the others. A ``ProcessPoolExecutor`` cannot do that: killing
one of its children breaks the whole pool and every task's future with it.

Each process is spawned warm (the agents imported, as for the first task) and talks to the worker over its
own duplex pipe: a job in, progress and agent-start messages (the worker debits an agent's cost as it
starts) and then one result or exception out. A thread per process
reads its pipe (a blocking read: no polling) and hands each message to the event loop; when the pipe ends
the process has exited, and the same thread reaps it. A process is replaced when it is killed, when it
dies on its own, and for memory hygiene: when a run leaves it holding more than ``recycle_growth_bytes``
over its warm size, or after ``max_runs_per_process`` runs. A run only goes to a process that has finished
warming up. (Warming up imports Polars, SciPy and the agents: 1-2 s of CPU. Retiring a process after a fixed,
small number of runs made that a third of the worker's CPU on tiny tasks; a process whose memory stays as it
was has nothing to give back.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import pickle
import random
import signal
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil

from agents.options import RunOptions
from service.embedded import die_with_parent

log = logging.getLogger("agensium.worker")

ProgressMessage = tuple[str, int, str | None, str]  # (run_id, percent, agent, message)

# Polars' allocator (jemalloc) keeps freed pages resident ~10 s by default; agent processes (spawned, so
# they inherit this) give them back after 100 ms: 18-23 % lower peak RSS at no measured cost.
AGENT_MALLOC_CONF = "dirty_decay_ms:100,muzzy_decay_ms:0"
STOP_GRACE_S = 2.0
MAX_RUNS_PER_PROCESS = 1000
RECYCLE_GROWTH_BYTES = 512 * 1024**2
RESPAWN_DELAY_S = 1.0  # after a failed start or a death while warming up (a broken import): no tight loop


class AgentProcessDied(Exception):
    """The agent process exited without a result (killed for memory, crashed)."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the agent process died (exit code {exitcode})")
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.exitcode,))


class AgentTraceback(Exception):
    """The traceback of an exception raised in an agent process, set as that exception's ``__cause__``."""

    def __str__(self) -> str:
        return f"\n\n{self.args[0]}" if self.args else ""


def _child_main(conn: Connection, worker_pid: int) -> None:
    """An agent process: warm up, then run one job at a time until told to stop or the pipe ends."""
    # SIGKILL as soon as the worker dies, however it dies: the end of the pipe tells an idle process only, a busy
    # one would run its job to the end for nobody, holding memory and CPU its replacement worker needs.
    die_with_parent(worker_pid, signal.SIGKILL)()
    # The worker decides when its agent processes stop: a Ctrl-C or a SIGTERM sent to the whole process group
    # must not kill a run the worker is still draining.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from agents import registry
    from agents.chain import run_tool

    registry.preload()
    # The imported modules, the catalog and the agents' tables stay for the process's life: out of the collector's
    # scans, a full collection during a run walks only what runs create (it was ~50 ms, sometimes inside a report).
    gc.collect()
    gc.freeze()
    send_lock = threading.Lock()  # agents may report progress from their own threads

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        tool_id, agent_ids, inputs, parameters, out_dir, soft_deadline, options = job

        def progress(percent: int, agent: str | None, message: str) -> None:
            send(("progress", int(percent), agent, message))

        def agent_start(agent_id: str) -> None:
            send(("agent_start", agent_id))

        try:
            result = run_tool(
                tool_id, agent_ids, inputs, parameters, out_dir, progress, soft_deadline, options, agent_start
            )
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the worker (Polars panics too)
            send(("error", _portable(error), traceback.format_exc()))
        else:
            send(("result", result))


def resident_bytes(pid: int) -> int:
    """The resident set size of process ``pid`` in bytes (0 when it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, ValueError):
        return 0


def _portable(error: BaseException) -> Exception:
    """``error`` if it is an Exception that survives pickling with its type, else a RuntimeError saying what
    it was (a Polars panic, say: a BaseException must not reach the worker's event loop)."""
    if isinstance(error, Exception):
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 - any failure to pickle or unpickle
            pass
        else:
            return error
    return RuntimeError(f"{type(error).__name__}: {error}")


@dataclass
class _Run:
    run_id: str
    done: asyncio.Future[dict[str, Any]]
    progress: asyncio.Queue[ProgressMessage]
    on_agent_start: Callable[[str], None] | None = None  # called in the event loop, before the result


class _Process:
    """One agent process, its end of the pipe and the run it is doing. ``state``: warming (not yet ready),
    idle, busy, or gone (killed, retired or exited: no longer ours to use)."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.state = "warming"
        self.runs = 0
        self.max_runs = 1
        self.warm_rss = 0  # resident bytes once warm (0: unknown)
        self.run: _Run | None = None

    @property
    def pid(self) -> int:
        return self.process.pid or 0


class AgentProcesses:
    """``processes`` agent processes, at most one run in each. Create it in the event loop that awaits
    ``run``: the processes' messages are delivered to that loop."""

    def __init__(
        self,
        processes: int,
        max_runs_per_process: int = MAX_RUNS_PER_PROCESS,
        recycle_growth_bytes: int = RECYCLE_GROWTH_BYTES,
    ) -> None:
        if processes < 1 or max_runs_per_process < 1:
            raise ValueError("processes and max_runs_per_process must be at least 1")
        self.max_runs_per_process = max_runs_per_process
        self.recycle_growth_bytes = recycle_growth_bytes
        os.environ.setdefault("_RJEM_MALLOC_CONF", AGENT_MALLOC_CONF)
        self._ctx = multiprocessing.get_context("spawn")
        self._loop = asyncio.get_running_loop()
        self._processes: set[_Process] = set()
        self._idle: deque[_Process] = deque()
        self._waiters: deque[asyncio.Future[_Process]] = deque()
        self._readers: list[threading.Thread] = []
        self._all_warm = asyncio.Event()
        self._closed = False
        for _ in range(processes):  # they warm up in parallel
            self._start_process()

    def pids(self) -> list[int]:
        return [p.pid for p in self._processes]

    async def warm(self) -> None:
        """Until no process is warming up (tests; a worker that wants its first task to start at once)."""
        await self._all_warm.wait()

    async def run(
        self,
        tool_id: str,
        agent_ids: list[str],
        inputs: dict[str, Path],
        parameters: dict[str, Any],
        out_dir: Path,
        progress: asyncio.Queue[ProgressMessage],
        *,
        soft_deadline: float | None = None,
        soft_limit_s: float | None = None,
        hard_limit_s: float | None = None,
        options: RunOptions | None = None,
        on_agent_start: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Run a chain (``agents.chain.run_tool``) in a free process: its result, or the exception it raised,
        or ``AgentProcessDied``. Cancelled, the process is killed at once and replaced. ``options``: the
        service's limits and switches for the run (``agents.options.RunOptions``). ``on_agent_start`` is
        called in this loop with each agent the chain starts, all of them before the result is set.

        The limits count from the moment a process takes the run (not the wait for a free one): past
        ``soft_limit_s`` the chain stops between steps (its result is partial); past ``hard_limit_s`` the
        process is killed and TimeoutError raised."""
        proc = await self._acquire()
        run = _Run(uuid.uuid4().hex, self._loop.create_future(), progress, on_agent_start)
        proc.state, proc.run = "busy", run
        if soft_limit_s is not None:
            soft_deadline = min(soft_deadline or float("inf"), time.time() + soft_limit_s)
        try:
            with contextlib.suppress(OSError):  # the process is gone: its reader reports the death
                proc.conn.send((tool_id, agent_ids, inputs, parameters, out_dir, soft_deadline, options))
            async with asyncio.timeout(hard_limit_s):
                return await run.done
        except BaseException:
            if proc.run is run:  # still running it (cancelled, or the job could not be sent): stop it now
                self._kill(proc)
            raise

    async def aclose(self) -> None:
        """Stop every process: ask it to leave (an idle one returns at once), then SIGKILL whatever still runs
        after ``STOP_GRACE_S``."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("the agent processes are shut down"))
        processes = []
        for proc in list(self._processes):
            if proc.run is not None and not proc.run.done.done():
                proc.run.done.set_exception(AgentProcessDied(None))
            proc.run = None
            self._retire(proc, replace=False)
            with contextlib.suppress(OSError):
                proc.conn.send(None)
            processes.append(proc.process)
        sentinels = {process.sentinel for process in processes}  # readable once the process has exited
        deadline = time.monotonic() + STOP_GRACE_S
        while sentinels and (left := deadline - time.monotonic()) > 0:
            sentinels.difference_update(await asyncio.to_thread(wait, list(sentinels), left))
        for process in processes:
            if process.sentinel in sentinels:
                process.kill()
        for reader in self._readers:
            await asyncio.to_thread(reader.join, STOP_GRACE_S)

    async def _acquire(self) -> _Process:
        while True:
            if self._closed:
                raise RuntimeError("the agent processes are shut down")
            if self._idle:
                proc = self._idle.popleft()
            else:
                waiter: asyncio.Future[_Process] = self._loop.create_future()
                self._waiters.append(waiter)
                try:
                    proc = await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled():  # handed a process as we were cancelled
                        self._release(waiter.result())
                    raise
            if proc.state == "idle":
                return proc

    def _release(self, proc: _Process) -> None:
        """``proc`` is free: to the first live waiter, else to the idle ones."""
        proc.state = "idle"
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(proc)
                return
        self._idle.append(proc)

    def _start_process(self) -> None:
        if self._closed:
            return
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_child_main, args=(child_end, os.getpid()), name="agensium-agent", daemon=True
        )
        try:
            process.start()
        except OSError:  # out of memory or file descriptors, for now: never fail the caller over a spare
            log.exception("could not start an agent process; trying again in %s s", RESPAWN_DELAY_S)
            parent_end.close()
            child_end.close()
            self._loop.call_later(RESPAWN_DELAY_S, self._start_process)
            return
        child_end.close()  # the pipe ends (EOF for the reader) when the process exits
        proc = _Process(process, parent_end)
        # Each process retires after its own number of runs (the last quarter of the range drawn at random):
        # processes that share the work evenly would otherwise all restart at once and stall the worker.
        proc.max_runs = self.max_runs_per_process - random.randrange(max(1, self.max_runs_per_process // 4))
        self._processes.add(proc)
        self._all_warm.clear()
        reader = threading.Thread(target=self._read, args=(proc,), name=f"agent-{process.pid}", daemon=True)
        self._readers = [r for r in self._readers if r.is_alive()] + [reader]
        reader.start()

    def _read(self, proc: _Process) -> None:
        """The reader thread of one process: its messages to the loop, in order, then its exit once the pipe ends.
        The messages already in the pipe go together, in one wake-up of the loop (a chain reports its steps in
        bursts: a dozen messages for a small file)."""
        ended = False
        while not ended:
            messages: list[tuple[Any, ...]] = []
            try:
                messages.append(proc.conn.recv())
                while proc.conn.poll():
                    messages.append(proc.conn.recv())
            except (EOFError, OSError):
                ended = True
            except Exception as error:  # noqa: BLE001 - a result that cannot be unpickled here
                messages.append(("error", RuntimeError(f"unreadable result: {type(error).__name__}: {error}"), ""))
            if messages:
                self._deliver(self._on_messages, proc, messages)
        proc.process.join()
        self._deliver(self._on_exit, proc, proc.process.exitcode)

    def _deliver(self, callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_messages(self, proc: _Process, messages: list[tuple[Any, ...]]) -> None:
        for message in messages:
            self._on_message(proc, message)

    def _on_message(self, proc: _Process, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if proc.state == "gone":
            return
        if kind == "ready":
            proc.warm_rss = resident_bytes(proc.pid)
            self._release(proc)
            self._note_warm()
            return
        run = proc.run
        if run is None:
            return
        if kind == "progress":
            run.progress.put_nowait((run.run_id, *message[1:]))
            return
        if kind == "agent_start":
            if run.on_agent_start is not None:
                run.on_agent_start(message[1])
            return
        proc.run = None
        proc.runs += 1
        if not run.done.done():
            if kind == "result":
                run.done.set_result(message[1])
            else:
                error: BaseException = message[1]
                if message[2]:
                    error.__cause__ = AgentTraceback(message[2])
                run.done.set_exception(error)
        if proc.runs >= proc.max_runs or self._grown(proc):
            with contextlib.suppress(OSError):
                proc.conn.send(None)  # exits after this; its reader reaps it
            self._retire(proc)
        else:
            self._release(proc)

    def _grown(self, proc: _Process) -> bool:
        """Whether ``proc`` holds more than ``recycle_growth_bytes`` over its warm size as its run ends (memory
        Polars' allocator or a leak keeps): a fresh process gives it back. Read at once, so a large run's pages not
        yet returned (jemalloc's 100 ms decay) count too: such a run cost far more than warming a new process."""
        rss = resident_bytes(proc.pid)
        return bool(proc.warm_rss and rss and rss - proc.warm_rss > self.recycle_growth_bytes)

    def _on_exit(self, proc: _Process, exitcode: int | None) -> None:
        proc.conn.close()  # here, not in the reader: the loop thread is the one that writes to it
        if proc.state == "gone":
            return
        log.warning("agent process %s exited unexpectedly (exit code %s) while %s", proc.pid, exitcode, proc.state)
        warming = proc.state == "warming"
        self._retire(proc, replace=False)
        if proc.run is not None and not proc.run.done.done():
            proc.run.done.set_exception(AgentProcessDied(exitcode))
        proc.run = None
        if warming:
            self._loop.call_later(RESPAWN_DELAY_S, self._start_process)
        else:
            self._start_process()

    def _kill(self, proc: _Process) -> None:
        """SIGKILL: the run may be deep in Polars code, which no signal handler can interrupt."""
        proc.process.kill()
        proc.run = None
        if proc.state != "gone":
            self._retire(proc)

    def _retire(self, proc: _Process, replace: bool = True) -> None:
        proc.state = "gone"
        self._processes.discard(proc)
        with contextlib.suppress(ValueError):
            self._idle.remove(proc)
        if replace:
            self._start_process()
        self._note_warm()

    def _note_warm(self) -> None:
        if all(p.state != "warming" for p in self._processes):
            self._all_warm.set()
