"""Runs a task: claim, fetch inputs to a temp dir, run the tool's chain in an agent process while
forwarding its progress, store the outputs and manifest, and record the outcome.

Credits: the run is refused (FAILED `INSUFFICIENT_CREDITS`, nothing charged) when the balance is below the
whole chain's cost; then each agent's cost is debited as the agent process reports it starting, so a run cut
short (soft limit, large-file path) is charged for what ran. A debit refused mid-run (another task of the user
spent the balance) stops the agents: FAILED `INSUFFICIENT_CREDITS`, charged for the agents before it. Every
debit is written before the task's outcome.

Every way a run can end is decided here:
- the chain's result: COMPLETED (status `partial` inside when an agent failed or the soft limit hit);
- an input or parameter error: FAILED, credits refunded;
- a transient fault (object store, network, database connection): QUEUED again after an exponential
  backoff with jitter, until `max_attempts` runs, then FAILED; every run it cut short is refunded;
- the hard time limit: the agent process is killed, FAILED `TIMEOUT`;
- a stop (RunHandle.stop): the user cancelled the task or it is no longer this run's (re-queued by a
  reaper while this worker looked dead): the agent process is killed, temp files and this attempt's
  outputs are deleted, nothing is written over the task;
- the worker shutting down (the job coroutine is cancelled after the drain time): QUEUED again, and
  that run is not held against the attempt limit.
The worker's writes name the run's job id, so a run that lost its task changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import botocore.exceptions
import redis.exceptions
from pydantic_core import PydanticSerializationError, to_json

from agents import registry
from agents.errors import AgentError
from agents.options import FAILED_AGENTS_KEY, RunOptions
from service import lifecycle, versions
from service.config import Settings
from service.lifecycle import Core
from service.models import TaskStatus
from service.storage import ObjectChanged, ObjectNotFound, StorageUnavailable
from service.store import DATABASE_UNAVAILABLE, ProgressUpdate
from service.versions import DatasetVersion, load_parameters, with_version_options
from worker import metrics, search_keep
from worker.agent_procs import AgentProcessDied, AgentProcesses, ProgressMessage

log = logging.getLogger("agensium.worker")

T = TypeVar("T")

# Faults worth another run: the dependency may be back by then. Input, parameter and credit errors are not.
TRANSIENT: tuple[type[BaseException], ...] = (
    *DATABASE_UNAVAILABLE,
    StorageUnavailable,
    OSError,
    aiohttp.ClientError,
    botocore.exceptions.HTTPClientError,
    botocore.exceptions.EndpointConnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) and not isinstance(exc, (AgentError, ObjectNotFound))


def run_options(settings: Settings) -> RunOptions:
    """What the agent process needs of the settings, sent with each job (agents read no environment)."""
    return RunOptions(
        max_columns=settings.max_columns,
        streaming_threshold_bytes=settings.streaming_threshold_bytes,
        diagnostics=settings.diagnostics,
    )


def backoff_s(settings: Any, run: int) -> float:
    """Exponential backoff with +-50 % jitter before run `run + 1`."""
    base = min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2 ** max(0, run - 1))
    return base * random.uniform(0.5, 1.5)


@dataclass
class RunHandle:
    """One run of a task on this worker: what its heartbeat refreshes, and how to stop it."""

    task_id: str
    job_id: str | None
    attempt: int
    runs: int  # runs since the user last queued the task, this one included
    stop_reason: str | None = None  # "cancelled" | "lost" | "shutdown"
    finishing: bool = False  # writing its outcome: let it (the write itself is conditional on the job id)
    stored_outputs: bool = False  # storing its outputs: a stop deletes what this attempt stored
    background: bool = False  # answered, uploading a kept dataset (search_keep.store): no one's upload waits for it
    dispatched: bool = False  # its completion dispatched the user's waiting tasks (lifecycle.complete_and_dispatch)
    body: asyncio.Task[str] | None = field(default=None, repr=False)

    def stop(self, reason: str) -> None:
        """Stop the run where it is (its agent process is killed); the first reason wins. A run writing its
        outcome is left to finish: once that write commits, its task no longer beats, which is no loss."""
        if self.finishing:
            return
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.body is not None and not self.body.done():
            self.body.cancel()


def _agent_refund(core: Core, handle: RunHandle, user_id: str, agent_id: str) -> Callable[[], Awaitable[int]]:
    """The refund of a failed agent of the run, as :func:`durable_write` retries it."""
    return lambda: lifecycle.refund_agent_credits(
        core, user_id, handle.task_id, agent_id, f"refund: {agent_id} failed", handle.attempt
    )


async def durable_write(core: Core, what: str, write: Callable[[], Awaitable[T]]) -> T:
    """A worker write that survives a database restart: retried with backoff while PostgreSQL is away,
    for up to `write_retry_s`."""
    deadline = time.monotonic() + core.settings.write_retry_s
    delay = 0.2
    while True:
        try:
            return await write()
        except DATABASE_UNAVAILABLE as exc:
            if time.monotonic() >= deadline:
                raise
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class TaskFailure(Exception):
    """A task-level failure with its API.md error code (agents raise AgentError instead)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


DIAGNOSTICS_TOOL = "diagnostics"
FLUSH: ProgressMessage = ("", -1, None, "")  # the run is over: hand back what is pending, then stop


async def _forward_progress(
    core: Core, handle: RunHandle, q: asyncio.Queue[ProgressMessage]
) -> tuple[int, str | None, str] | None:
    """Throttled, monotonic progress: at most one update per interval, counted from the claim (its status event
    said "Fetching inputs"), except when the agent changes (a step outside any agent, `None`, counts as no agent).
    On FLUSH, once every earlier update is written, it returns the run's last message still unsent (or None): the
    run writes it with its outcome, in the same transaction."""
    interval = core.settings.progress_min_interval_s
    best, sent_agent, sent_at = 0, "", time.monotonic()
    pending: tuple[int, str | None, str] | None = None
    while True:
        timeout = None if pending is None else max(0.0, sent_at + interval - time.monotonic())
        try:
            item = await asyncio.wait_for(q.get(), timeout) if timeout != 0.0 else q.get_nowait()
            if item is FLUSH:
                return pending
            _, percent, agent, message = item
            best = max(best, min(percent, 99))
            pending = (best, agent, message)
        except (TimeoutError, asyncio.QueueEmpty):
            pass
        if pending is not None and ((pending[1] or "") != sent_agent or time.monotonic() - sent_at >= interval):
            await lifecycle.report_progress(core, handle.task_id, *pending, job_id=handle.job_id)
            sent_agent, sent_at, pending = pending[1] or "", time.monotonic(), None


# Parameters validated before, by (tool, chain, diagnostics, their JSON): validation is a pure function of these, and
# most of its time goes to looking the tool's agent modules up on disk (registry.tool: importlib find_spec), on every
# run of a task. At most VALIDATED_MAX sets of at most VALIDATED_MAX_BYTES each are remembered.
_validated: dict[tuple[str, tuple[str, ...], bool, bytes], None] = {}
VALIDATED_MAX = 256
VALIDATED_MAX_BYTES = 16 * 1024


def validate_parameters(tool_id: str, agent_ids: list[str], parameters: dict[str, Any], diagnostics: bool) -> None:
    """registry.validate_parameters (InvalidParametersError, UnknownToolError...), once per set of parameters."""
    try:
        text = to_json(parameters)
    except PydanticSerializationError:  # not JSON as such: validated every time
        text = None
    small = text is not None and len(text) <= VALIDATED_MAX_BYTES
    key = (tool_id, tuple(agent_ids), diagnostics, text) if small and text is not None else None
    if key is not None and key in _validated:
        return
    registry.validate_parameters(tool_id, agent_ids, parameters, diagnostics=diagnostics)
    if key is not None:
        if len(_validated) >= VALIDATED_MAX:
            _validated.clear()
        _validated[key] = None


# Failures an agent can only see in the data (a column a parameter names is missing, a malformed file):
# the credits taken for the chain are given back.
REFUNDED_CODES = frozenset({"INVALID_FILE", "INVALID_PARAMETERS", "INPUT_MISSING"})


async def dataset_version(core: Core, user_id: str, task_id: str) -> DatasetVersion:
    """The user's task `task_id`'s dataset version (service/versions.py); INPUT_MISSING when the chain is broken."""
    try:
        return await versions.dataset_version(core, user_id, task_id)
    except versions.VersionGone as exc:
        raise TaskFailure("INPUT_MISSING", str(exc)) from None


async def _chained_version(core: Core, task: Any) -> DatasetVersion | None:
    try:
        return await versions.chained_version(core, task)
    except versions.VersionGone as exc:
        raise TaskFailure("INPUT_MISSING", str(exc)) from None


def _input_objects(task: Any, in_prefix: str, version: DatasetVersion | None) -> list[tuple[str, str, str | None]]:
    """(local name, object key, ETag) of every input: the uploads, and a chained task's source version as primary.
    The ETag is the one process recorded for an upload (service/cache.py upload_identities), when it did: the run
    reads exactly the bytes process verified, which the result cache keyed."""
    uploaded = [(i["name"], in_prefix + i["name"], i.get("etag")) for i in task["inputs"] if i["role"] != "parameters"]
    if version is None:
        return uploaded
    return [(version.local_name, version.key, version.record.get("etag")), *uploaded]


async def execute_task(
    core: Core,
    pool: AgentProcesses,
    task_id: str,
    worker_id: str,
    job_id: str,
    running: dict[str, RunHandle] | None = None,
) -> str:
    """Run one task to an end; returns the task's state after this run (or SKIPPED when the job had
    nothing to claim). Never raises for a task's own failure. Only job `job_id` claims the task (a job of
    an earlier queueing claims nothing); once claimed, the run is in `running` (the heartbeat refreshes
    it, cancels stop it)."""
    task = await durable_write(core, "claim", lambda: lifecycle.claim_task(core, task_id, worker_id, job_id))
    if task is None:
        log.info("task %s not claimable (taken, cancelled, gone, or job %s is not its job)", task_id, job_id)
        return "SKIPPED"
    handle = RunHandle(task_id, task["job_id"], task["attempts"], task["attempts"] - task["attempt_base"])
    running = {} if running is None else running
    running[task_id] = handle

    def other_runs() -> list[asyncio.Task[Any]]:
        return working_runs(running, handle)

    body = asyncio.create_task(_run_claimed(core, pool, task, worker_id, handle, other_runs), name=f"run-{task_id}")
    handle.body = body
    try:
        # asyncio.wait, not `await body`: a stop cancels `body` alone, a cancel of this coroutine (the
        # worker shutting down) is told apart and handed to `body` as a "shutdown" stop.
        await asyncio.wait({body})
    except asyncio.CancelledError:
        handle.stop("shutdown")
        with contextlib.suppress(asyncio.CancelledError):
            await body
        raise
    finally:
        running.pop(task_id, None)
        if not body.done():
            body.cancel()
    try:  # the run left the user's active set (or was re-queued): their next waiting task may start
        if not handle.dispatched:  # its completion did it already
            await lifecycle.dispatch_user(core, str(task["user_id"]))
    except Exception as exc:  # noqa: BLE001 - the recovery loop dispatches it on its next tick
        log.warning("dispatch after task %s failed: %s", task_id, exc)
    if body.cancelled():
        return handle.stop_reason or "STOPPED"
    return body.result()


def working_runs(running: Mapping[str, RunHandle], handle: RunHandle) -> list[asyncio.Task[Any]]:
    """The runs besides `handle`'s that a background upload of its run yields to: all but those in the background
    themselves (uploading a kept dataset of their own, they would wait for this one in turn)."""
    return [
        run.body
        for run in running.values()
        if run is not handle and not run.background and run.body and not run.body.done()
    ]


async def _run_claimed(
    core: Core,
    pool: AgentProcesses,
    task: Any,
    worker_id: str,
    handle: RunHandle,
    other_runs: Callable[[], list[asyncio.Task[Any]]] = list,
) -> str:
    task_id = handle.task_id
    user_id = str(task["user_id"])
    settings = core.settings
    work_dir: Path | None = None  # the run's temp dir, once it fetches inputs
    progress: asyncio.Queue[ProgressMessage] = asyncio.Queue()
    forwarder = asyncio.create_task(_forward_progress(core, handle, progress))
    out_prefix = lifecycle.attempt_outputs_prefix(settings, user_id, task_id, handle.attempt)
    started = time.monotonic()

    async def fail(code: str, message: str) -> str:
        handle.finishing = True
        await durable_write(
            core,
            f"fail {task_id}",
            lambda: lifecycle.fail_task(core, task_id, code, message, [TaskStatus.PROCESSING], handle.job_id),
        )
        metrics.observe_task(task["tool_id"], TaskStatus.FAILED, time.monotonic() - started)
        return TaskStatus.FAILED

    try:
        agent_ids = list(task["agents"])
        version = await _chained_version(core, task)
        parameters = with_version_options(await load_parameters(core, task), version)
        validate_parameters(task["tool_id"], agent_ids, parameters, settings.diagnostics)

        await _check_credits(core, user_id, task, agent_ids)
        outputs: list[dict[str, Any]] = []
        if service_only(task["tool_id"], parameters):
            result, keep = await _service_only_run(core, handle, user_id, agent_ids), None
        else:
            work_dir = Path(tempfile.mkdtemp(prefix=f"agensium-{task_id[:8]}-", dir=settings.work_dir))
            result, outputs, keep = await _run_and_store(
                core, pool, handle, task, worker_id, version, parameters, work_dir, progress, out_prefix
            )

        progress.put_nowait(FLUSH)
        last: ProgressUpdate | None = None
        with contextlib.suppress(Exception):  # a lost progress message is no reason to fail the run
            if (unsent := await forwarder) is not None:
                last = (*unsent, handle.job_id)
        for agent_id in result.pop(FAILED_AGENTS_KEY, []):  # it gave the user nothing: its credits back
            await durable_write(core, f"refund {task_id} {agent_id}", _agent_refund(core, handle, user_id, agent_id))
        summary = {k: v for k, v in result.items() if k != "outputs"}
        summary["duration_ms"] = round((time.monotonic() - started) * 1000)
        status = result.get("status", "success")
        message = "Completed" if status == "success" else "Completed with agent errors (partial result)"
        handle.finishing = True
        # A search page's borrowed output (search_keep.borrow_output) is its dataset task's object until copied.
        owner = keep.task_id if keep is not None and any(not o["key"].startswith(out_prefix) for o in outputs) else None
        done, handle.dispatched = await durable_write(
            core,
            f"complete {task_id}",
            lambda: lifecycle.complete_and_dispatch(
                core, task_id, outputs, summary, message, handle.job_id, owner, last
            ),
        )
        if done is None and owner is not None and await _still_running(core, handle):
            # The dataset's files started going (a delete, retention) before this run could borrow: its own copy.
            assert keep is not None
            try:
                outputs = await _all_or_none([search_keep.own_copy(core, keep, o, out_prefix) for o in outputs])
            except search_keep.InputMissing as exc:
                raise TaskFailure("INPUT_MISSING", str(exc)) from None
            done = await durable_write(
                core,
                f"complete {task_id}",
                lambda: lifecycle.complete_task(core, task_id, outputs, summary, message, handle.job_id),
            )
        if done is None:  # cancelled or re-queued meanwhile: this run's outputs are nobody's
            await core.storage.delete_prefix(out_prefix)
            return "STOPPED"
        metrics.observe_run(task["tool_id"], result, time.monotonic() - started)
        if keep is not None and result.get("kept"):  # after the answer: the next search of the dataset reads it
            handle.background = search_keep.stores_dataset(result["kept"])  # the one upload that yields to others
            await search_keep.store(core, keep, result["kept"], outputs, other_runs)
        return TaskStatus.COMPLETED
    except (AgentError, TaskFailure) as exc:
        if exc.code in REFUNDED_CODES:  # found only once the data was read: the user got nothing for it
            await lifecycle.refund_task_credits(core, user_id, task_id, f"refund: {exc.code}", handle.attempt)
        return await fail(exc.code, exc.message)
    except asyncio.CancelledError:
        await asyncio.shield(_after_stop(core, handle, user_id, out_prefix if handle.stored_outputs else None))
        raise
    except AgentProcessDied as exc:
        log.error("agent process died on task %s (exit code %s)", task_id, exc)
        return await fail("AGENT_FAILED", "The agent process died (out of memory?); retry it or use a smaller file.")
    except Exception as exc:
        if is_transient(exc):
            return await _retry_later(core, handle, user_id, exc)
        log.exception("task %s failed", task_id)
        return await fail("INTERNAL_ERROR", f"Unexpected error: {type(exc).__name__}: {exc}")
    finally:
        forwarder.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await forwarder
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)


async def _run_and_store(
    core: Core,
    pool: AgentProcesses,
    handle: RunHandle,
    task: Any,
    worker_id: str,
    version: DatasetVersion | None,
    parameters: dict[str, Any],
    work_dir: Path,
    progress: asyncio.Queue[ProgressMessage],
    out_prefix: str,
) -> tuple[dict[str, Any], list[dict[str, Any]], search_keep.Keep | None]:
    """Fetch the inputs, run the chain in an agent process and store its outputs with the run's manifest:
    (the chain's result, the stored outputs, the search keep the run read or wrote, if any)."""
    task_id = handle.task_id
    user_id = str(task["user_id"])
    settings = core.settings
    agent_ids = list(task["agents"])
    in_prefix = lifecycle.inputs_prefix(settings, user_id, task_id)

    in_dir, out_dir = work_dir / "inputs", work_dir / "outputs"
    in_dir.mkdir()
    out_dir.mkdir()
    keep = await search_keep.fetch(core, task, user_id, version, parameters, work_dir)
    inputs: dict[str, Path] = {}
    for name, key, etag in _input_objects(task, in_prefix, None if keep is not None and keep.has_data else version):
        local = in_dir / name
        try:
            await core.storage.download_to_file(key, local, if_match=etag)
        except ObjectNotFound:
            if version is not None and key == version.key:  # the version it is chained on was deleted meanwhile
                gone = f"The source version {version.task_id} was deleted before this task read it."
            else:
                gone = f"The stored input {name} is gone (deleted or expired)."
            raise TaskFailure("INPUT_MISSING", gone) from None
        except ObjectChanged:
            raise TaskFailure(
                "INPUT_MISSING",
                f"The stored input {name} was uploaded again after it was verified; create a new task for the new "
                "file.",
            ) from None
        inputs[name] = local

    options = run_options(settings) if keep is None else replace(run_options(settings), keep_dir=keep.dir)
    result = await _run_chain(core, pool, handle, user_id, task, inputs, parameters, out_dir, progress, options)

    handle.stored_outputs = True  # from here a stop deletes what this attempt stored
    reused = (result.get("kept") or {}).get("reuse", {})

    async def store_output(out: dict[str, Any]) -> dict[str, Any]:
        if keep is not None and out["name"] in reused:  # a later search page's: the kept one, borrowed
            try:
                return await search_keep.borrow_output(core, keep, out["name"], reused[out["name"]])
            except search_keep.InputMissing as exc:
                raise TaskFailure("INPUT_MISSING", str(exc)) from None
        digest = hashlib.sha256()
        key = out_prefix + out["name"]
        size = await core.storage.upload_file(out_dir / out["name"], key, out["content_type"], digest)
        return {
            "name": out["name"],
            "content_type": out["content_type"],
            "size": size,
            "sha256": digest.hexdigest(),
            "key": key,
        }

    outputs = await _all_or_none([store_output(out) for out in result.get("outputs", [])])
    manifest = {
        "task_id": task_id,
        "tool_id": task["tool_id"],
        "agents": agent_ids,
        "status": result.get("status"),
        "attempt": handle.attempt,
        "worker_id": worker_id,
        "inputs": [{k: i.get(k) for k in ("name", "role", "size", "sha256")} for i in task["inputs"]],
        "outputs": [{k: v for k, v in o.items() if k != "key"} for o in outputs],
        "parameters": parameters,
    }
    if version is not None:  # where a chained task's primary came from
        manifest["source"] = {"task_id": version.task_id, "name": version.name}
    manifest_bytes = json.dumps(manifest, indent=2, default=str).encode()
    await core.storage.put_bytes(out_prefix + "manifest.json", manifest_bytes, "application/json")
    outputs.append(
        {
            "name": "manifest.json",
            "content_type": "application/json",
            "size": len(manifest_bytes),
            "sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            "key": out_prefix + "manifest.json",
        }
    )
    return result, outputs, keep


def service_only(tool_id: str, parameters: dict[str, Any]) -> bool:
    """A run of the hidden diagnostics tool with `sleeper.noop`: the task's lifecycle without inputs, agents or
    files (bench_dispatch.py measures the service alone with it)."""
    return tool_id == DIAGNOSTICS_TOOL and bool((parameters.get("sleeper") or {}).get("noop"))


async def _service_only_run(core: Core, handle: RunHandle, user_id: str, agent_ids: list[str]) -> dict[str, Any]:
    """What a run costs the service without agents: each agent's debit, as a real run makes it, and a result."""
    for agent_id in agent_ids:
        cost = registry.chain_cost([agent_id])
        outcome = await durable_write(
            core,
            f"debit {handle.task_id}",
            functools.partial(lifecycle.debit_agent, core, user_id, handle.task_id, agent_id, cost, handle.attempt),
        )
        if outcome == "gone":
            handle.stop("lost")  # cancels this run's body at its next await
            break
        if outcome == "short":
            raise TaskFailure("INSUFFICIENT_CREDITS", f"The balance fell below the {cost} credits of {agent_id}.")
    agents = {agent_id: {"status": "success", "noop": True} for agent_id in agent_ids}
    return {"status": "success", "noop": True, "agents": agents}


async def _still_running(core: Core, handle: RunHandle) -> bool:
    """Whether the run still holds its task (PROCESSING under its job)."""
    row = await core.store.get_task(handle.task_id)
    return row is not None and row["status"] == TaskStatus.PROCESSING and row["job_id"] == handle.job_id


async def _all_or_none(uploads: list[Awaitable[T]]) -> list[T]:
    """The results of `uploads`, run concurrently; when one fails (or this is cancelled), the others are cancelled
    and awaited before the error goes on: none is left writing after the run moved on."""
    tasks = [asyncio.ensure_future(upload) for upload in uploads]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _check_credits(core: Core, user_id: str, task: Any, agent_ids: list[str]) -> None:
    """Refuse the run, charging nothing, when the balance is below what the whole chain would cost (an agent
    that needs a missing baseline runs free)."""
    cost = registry.chain_cost(registry.charged_agents(agent_ids, lifecycle.has_baseline(task)))
    # The claim's row says the balance as its statement began (store.at_once_transitions); short, or a row without
    # it, asks again (a grant committed while the claim waited for a lock counts).
    claimed = task.get("user_credits") if hasattr(task, "get") else None
    balance = claimed if claimed is not None and claimed >= cost else await lifecycle.credit_balance(core, user_id)
    if balance < cost:
        raise TaskFailure("INSUFFICIENT_CREDITS", f"This chain costs {cost} credits; your balance is {balance}.")


async def _run_chain(
    core: Core,
    pool: AgentProcesses,
    handle: RunHandle,
    user_id: str,
    task: Any,
    inputs: dict[str, Path],
    parameters: dict[str, Any],
    out_dir: Path,
    progress: asyncio.Queue[ProgressMessage],
    options: RunOptions,
) -> dict[str, Any]:
    """Run the task's chain in an agent process, debiting each agent's cost as the process reports it
    starting. A refused debit stops the agents (INSUFFICIENT_CREDITS). Every debit is written, or refused,
    before this returns or raises: the task's outcome, and any refund, come after the last of them."""
    settings = core.settings
    soft_s, hard_s = settings.time_limits(task["tool_id"])
    started: asyncio.Queue[str | None] = asyncio.Queue()
    debits = asyncio.create_task(_debit_agents(core, handle, user_id, started))
    run = asyncio.create_task(
        pool.run(
            task["tool_id"],
            list(task["agents"]),
            inputs,
            parameters,
            out_dir,
            progress,
            soft_limit_s=soft_s,
            hard_limit_s=hard_s,
            options=options,
            on_agent_start=started.put_nowait,
        )
    )
    try:
        await asyncio.wait({run, debits}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():  # a debit was refused (or could not be written): stop the agents
            run.cancel()
            await asyncio.wait({run})
        started.put_nowait(None)  # every start came before the result: all of them are queued
        refused = await debits
    finally:  # stopped (cancel, shutdown) or failed: no agent goes on, no debit is left in flight
        run.cancel()
        debits.cancel()
        await asyncio.gather(run, debits, return_exceptions=True)
    error = None if run.cancelled() else run.exception()
    if isinstance(error, TimeoutError):
        raise TaskFailure("TIMEOUT", f"The agents ran past the hard time limit of {hard_s:g} s and were stopped.")
    if error is not None:  # the chain's own failure comes first (an input error is refunded)
        raise error
    if refused is not None:
        raise TaskFailure(
            "INSUFFICIENT_CREDITS",
            f"The balance fell below the {registry.chain_cost([refused])} credits of {refused} during the run "
            "(another task spent it): the run stopped there, charged for the agents that ran before it.",
        )
    return run.result()


async def _debit_agents(core: Core, handle: RunHandle, user_id: str, started: asyncio.Queue[str | None]) -> str | None:
    """Debit each agent's cost as its start comes in, in order, until the run is over (None); returns the agent
    whose debit the balance refused, if one was (nothing is debited after it). A debit the run no longer may
    make (its task was cancelled or re-queued meanwhile) stops the run: it is not this run's any more."""
    while (agent_id := await started.get()) is not None:
        debit = functools.partial(
            lifecycle.debit_agent,
            core,
            user_id,
            handle.task_id,
            agent_id,
            registry.chain_cost([agent_id]),
            handle.attempt,
        )
        outcome = await durable_write(core, f"debit {handle.task_id}", debit)
        if outcome == "gone":
            handle.stop("lost")  # cancels this run's body: nothing below is reached
            return None
        if outcome == "short":
            return agent_id
    return None


async def _retry_later(core: Core, handle: RunHandle, user_id: str, exc: BaseException) -> str:
    """A transient fault: another run after a backoff, or FAILED once the attempts are used."""
    settings = core.settings
    task_id = handle.task_id
    handle.finishing = True
    fault = f"{type(exc).__name__}: {exc}"[:300]
    if handle.runs >= settings.max_attempts:
        message = f"A dependency kept failing ({fault}) on each of {handle.runs} attempts; retry it later."
        failed = await durable_write(
            core,
            f"fail {task_id}",
            lambda: lifecycle.fail_task(
                core, task_id, "INTERNAL_ERROR", message, [TaskStatus.PROCESSING], handle.job_id
            ),
        )
        if failed is not None:  # our dependency failed, not the user's task: the last run is refunded as the others
            await lifecycle.refund_task_credits(
                core, user_id, task_id, "refund: transient fault, attempts used", handle.attempt
            )
        return TaskStatus.FAILED
    delay = backoff_s(settings, handle.runs)
    message = (
        f"Attempt {handle.runs} hit a transient fault ({fault}); retrying in {delay:.1f} s "
        f"(attempt {handle.runs + 1} of {settings.max_attempts})"
    )
    log.warning("task %s: %s", task_id, message)
    row = await durable_write(
        core,
        f"requeue {task_id}",
        lambda: lifecycle.requeue_task(core, task_id, handle.job_id or "", message, counts=True, defer_s=delay),
    )
    if row is not None:  # the next run charges again
        await lifecycle.refund_task_credits(core, user_id, task_id, "refund: transient fault, retried", handle.attempt)
        return TaskStatus.QUEUED
    return "STOPPED"


async def _after_stop(core: Core, handle: RunHandle, user_id: str, out_prefix: str | None) -> None:
    """After the agent process was killed: clean up, and if the worker is shutting down, give the task
    back to the queue (a cancelled or lost task is someone else's business now)."""
    task_id = handle.task_id
    try:
        if out_prefix is not None:
            # A stop can land just after this run's completion was committed: its outputs are the task's then.
            row = await core.store.get_task(task_id)
            ours = row is not None and row["status"] == TaskStatus.COMPLETED and row["job_id"] == handle.job_id
            if ours:
                return
            await core.storage.delete_prefix(out_prefix)
        if handle.stop_reason in ("cancelled", "lost"):
            log.info("task %s stopped (%s)", task_id, handle.stop_reason)
            if handle.stop_reason == "cancelled":
                await lifecycle.refund_task_credits(
                    core, user_id, task_id, "refund: cancelled while running", handle.attempt
                )
            return
        message = "Its worker shut down; queued again"
        row = await lifecycle.requeue_task(core, task_id, handle.job_id or "", message, counts=False)
        if row is not None:
            await lifecycle.refund_task_credits(
                core, user_id, task_id, "refund: worker shut down, re-queued", handle.attempt
            )
    except Exception as exc:  # noqa: BLE001 - the reaper re-queues it once its heartbeat goes stale
        log.warning("cleanup after stopping task %s failed: %s", task_id, exc)
