"""What search-my-data keeps with a dataset version in the object store (agents.search.kept says what and why): the
worker fetches what a run can use into the run's keep directory before it, and stores what the run added after
the task is COMPLETED (so that the first search's answer does not wait for it).

Where: under the task whose object the dataset version is (`search/<digest>/`), so that deleting that task, or the
retention period, takes it along; the digest covers the version's object and its identity, its reading options
and the agents' code version, so a new version or new search code never reads an old keep. Only a search chained on
an earlier task has one: a file uploaded with the search itself is read once anyway.

A keep is an optimisation: a failure to fetch or store it is logged and the run reads the dataset itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import registry
from agents.params.inputs import INPUTS_KEY
from agents.params.searcher import SearcherParams
from agents.search import kept
from service.cache import code_version
from service.lifecycle import Core
from service.storage import ObjectNotFound, StorageError
from service.versions import DatasetVersion

log = logging.getLogger("agensium.worker")


class InputMissing(Exception):
    """The dataset a search reads went away during the run (the runner fails the task INPUT_MISSING)."""


SEARCH_TOOL = "search-my-data"
MAX_META_BYTES = 16 << 20  # a selection's meta.json: its parameters as understood and the read reports
YIELD_MAX_SECONDS = 30.0
"""The kept dataset's upload (tens of MB) waits between its parts while other runs of this worker are in progress
or were a moment ago (QUIET_SECONDS: the pages a user asks for right after a first search), at most this long in
all: then it goes on regardless."""
QUIET_SECONDS = 0.5


@dataclass(frozen=True)
class Keep:
    user_id: str
    task_id: str  # the task whose dataset version is kept, and under whose prefix
    prefix: str  # the keep's object prefix
    dir: Path  # the run's local mirror (RunOptions.keep_dir)
    has_data: bool  # the run needs no other copy of the dataset: it is kept as Parquet, or the page's matches are


def keep_prefix(core: Core, user_id: str, version: DatasetVersion, parameters: dict[str, Any]) -> str:
    """The keep of the version as the run reads it: its object by content (sha256 and size when recorded, else its
    key: a cache hit's version changes key when its own copies are made, not content), the reading options the run
    applies (the version's, under the task's own: another XLSX sheet is another dataset; the display name is not a
    reading) and the agents' code."""
    options = parameters.get(INPUTS_KEY, {}).get("primary") if isinstance(parameters.get(INPUTS_KEY), dict) else None
    reading = {k: v for k, v in (options or {}).items() if k != "display_name"} if isinstance(options, dict) else {}
    sha256 = version.record.get("sha256")
    identity = {
        "object": {"sha256": sha256, "size": version.record.get("size")} if sha256 else {"key": version.key},
        "options": reading,
        "code": code_version(),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"{core.settings.object_prefix(user_id, version.task_id)}search/{digest}/"


async def fetch(
    core: Core, task: Any, user_id: str, version: DatasetVersion | None, parameters: dict[str, Any], work_dir: Path
) -> Keep | None:
    """The run's keep directory with what is kept that it can use: a later page's matches (meta and the page's
    parts), else the dataset as Parquet. None for a run that keeps nothing."""
    if task["tool_id"] != SEARCH_TOOL or version is None:
        return None
    prefix, local = keep_prefix(core, user_id, version, parameters), work_dir / "keep"
    local.mkdir()
    try:
        if list(task["agents"]) == ["searcher"] and await _fetch_matches(core, prefix, local, parameters):
            return Keep(user_id, version.task_id, prefix, local, True)
        await core.storage.download_to_file(prefix + kept.DATASET_NAME, local / kept.DATASET_NAME)
        return Keep(user_id, version.task_id, prefix, local, True)
    except (StorageError, OSError, ValueError) as exc:  # not kept (ObjectNotFound), or not readable now
        if not isinstance(exc, ObjectNotFound):
            log.warning("search keep %s not read: %r", prefix, exc)
        shutil.rmtree(local)  # nothing half-fetched is read
        local.mkdir()
        return Keep(user_id, version.task_id, prefix, local, False)


async def _fetch_matches(core: Core, prefix: str, local: Path, parameters: dict[str, Any]) -> bool:
    params = registry.parse_parameters("searcher", parameters.get("searcher"))
    assert isinstance(params, SearcherParams)
    directory = kept.matches_dir(params)
    try:
        raw = await core.storage.get_bytes(f"{prefix}{directory}/{kept.META_NAME}", MAX_META_BYTES)
    except ObjectNotFound:
        return False
    meta = json.loads(raw)
    if "csv" not in meta:
        return False
    (local / directory).mkdir(parents=True)
    (local / directory / kept.META_NAME).write_bytes(raw)
    for index in kept.page_parts(params, meta["parts"]):
        name = f"{directory}/{kept.part_name(index)}"
        await core.storage.download_to_file(prefix + name, local / name)
    return True


async def borrow_output(core: Core, keep: Keep, name: str, reused: dict[str, Any]) -> dict[str, Any]:
    """A later page's `name` (search_result.csv): the kept one itself, borrowed. The task completes with it at once
    (a copy of every matching row took a page most of its time) and its copy job gives it its own copy right after,
    as a cache hit's (the runner completes it with `copy_from` = the keep's task; deleting that task makes the copy
    first). InputMissing when the kept one is gone (its dataset's task was deleted during the run)."""
    key = keep.prefix + reused["path"]
    if await core.storage.head(key) is None:
        raise InputMissing(missing_message(keep))
    content_type = registry.output_content_type(name)
    return {"name": name, "content_type": content_type, "size": reused["size"], "sha256": reused["sha256"], "key": key}


async def own_copy(core: Core, keep: Keep, output: dict[str, Any], out_prefix: str) -> dict[str, Any]:
    """An output of the run as its own: as it is when it is (under `out_prefix`), else a server-side copy of the
    borrowed one (borrow_output) there, for a page whose dataset's files started going before it completed.
    InputMissing when they are gone already."""
    if output["key"].startswith(out_prefix):
        return output
    key = out_prefix + output["name"]
    try:
        await core.storage.copy(output["key"], key, output["size"], output["content_type"])
    except ObjectNotFound:
        raise InputMissing(missing_message(keep)) from None
    return {**output, "key": key}


def missing_message(keep: Keep) -> str:
    return f"The dataset searched (task {keep.task_id}) was deleted during the search."


async def store(
    core: Core,
    keep: Keep,
    added: dict[str, Any],
    outputs: list[dict[str, Any]],
    other_runs: Callable[[], list[asyncio.Task[Any]]] = list,
) -> None:
    """Store what the run added to the keep (agents.chain: `written`, and `matches`, whose search_result.csv is a
    server-side copy of the run's output and whose meta.json goes last, naming that copy: a selection with a meta
    is whole). The dataset goes last, in the background: before each of its parts it waits for the runs
    `other_runs()` gives, the worker's other runs in progress (see YIELD_MAX_SECONDS). Failures are logged: the
    next search reads the dataset itself."""
    matches = added.get("matches")
    meta_name = f"{matches}/{kept.META_NAME}" if matches else None
    # The matches first (a next page is likely soon), the dataset last (the largest).
    written = sorted(added.get("written", []), key=lambda name: name == kept.DATASET_NAME)
    try:
        for name in written:
            if name == kept.DATASET_NAME or name == meta_name:
                continue
            await core.storage.upload_file(keep.dir / name, keep.prefix + name, "application/octet-stream")
        csv = next((o for o in outputs if o["name"] == kept.CSV_NAME), None)
        if meta_name is not None and csv is not None:
            to = f"{keep.prefix}{matches}/{kept.CSV_NAME}"
            await core.storage.copy(csv["key"], to, csv["size"], csv["content_type"])
            meta = json.loads((keep.dir / meta_name).read_text(encoding="utf-8"))
            meta["csv"] = {"size": csv["size"], "sha256": csv["sha256"]}
            await core.storage.put_bytes(keep.prefix + meta_name, json.dumps(meta).encode(), "application/json")
        if kept.DATASET_NAME in written:
            await core.storage.upload_file(
                keep.dir / kept.DATASET_NAME,
                keep.prefix + kept.DATASET_NAME,
                "application/octet-stream",
                before_part=_yielding(other_runs),
            )
    except (StorageError, OSError) as exc:
        log.warning("search keep %s not stored: %r", keep.prefix, exc)
    if not await _dataset_still_there(core, keep):  # deleted meanwhile: what was just stored would outlive it
        await core.storage.delete_prefix(keep.prefix)


def stores_dataset(added: dict[str, Any]) -> bool:
    """Whether `store` uploads a kept dataset of what the run added (the upload that yields to the worker's other
    runs)."""
    return kept.DATASET_NAME in added.get("written", [])


def _yielding(other_runs: Callable[[], list[asyncio.Task[Any]]]) -> Callable[[], Awaitable[None]]:
    """A `before_part` hook: wait until `other_runs()` have ended and none started for QUIET_SECONDS (a user paging
    through results asks for the next page within that), up to YIELD_MAX_SECONDS over the whole upload."""
    deadline = time.monotonic() + YIELD_MAX_SECONDS

    async def before_part() -> None:
        while (left := deadline - time.monotonic()) > 0:
            if runs := other_runs():
                await asyncio.wait(runs, timeout=left)
                continue
            await asyncio.sleep(min(QUIET_SECONDS, left))
            if not other_runs():
                return

    return before_part


async def _dataset_still_there(core: Core, keep: Keep) -> bool:
    row = await core.store.get_task(keep.task_id, keep.user_id)
    return row is not None and not row["artifacts_deleted"]
