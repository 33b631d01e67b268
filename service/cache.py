"""The result cache's key (API.md "Result cache"): what makes two tasks the same work.

A task's key is the sha256 (hex) of a canonical JSON (keys sorted, no spaces) of everything its run depends on:
- the tool and the chain as queued;
- each agent's parameters parsed by its model, defaults filled (a model's `cache_form()` puts equivalent lists in
  one order; otherwise its `model_dump(mode="json")`), so key order and spelled-out defaults do not matter;
- the reserved `inputs` reading options, as the worker applies them (the users' file names from upload-urls, a
  chained task's source options under its own);
- each input's content identity: its sha256 when the API streamed it, else the object store's size and ETag;
  for a task chained on an earlier one (`source_task_id`), its source's dataset version: the sha256 its run
  recorded for it, else the size and ETag the store gave when the source was processed (kept in its inputs
  entry), else the store's size and ETag now;
- the agents' code version: a sha256 over the source of the `agents` package, computed once per process.

The hidden diagnostics tool is never cached: its sleeper exists to exercise the run machinery.

The parameters and the source's version are read by the worker's own functions (service/versions.py). A task whose
parameters do not validate, or whose source's dataset is gone, has no key: it is queued and its run says why.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents import registry
from agents.errors import AgentError, InvalidParametersError
from service import versions
from service.storage import ObjectInfo

if TYPE_CHECKING:
    from service.lifecycle import Core

KEY_FORMAT = 1  # bumped whenever what goes into the key changes: older keys then never match
AGENTS_DIR = Path(registry.__file__).resolve().parent


@functools.cache
def _agents_source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(AGENTS_DIR.rglob("*.py")):
        digest.update(path.relative_to(AGENTS_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_version() -> str:
    """sha256 over the agents package's *.py files (their paths and bytes), read once per process: a deploy
    that changes any agent changes every key, so no result of the old code is served for the new."""
    return _agents_source_hash()


@dataclass(frozen=True)
class CacheKey:
    """A task's key, and whether this process may look it up (`"cache": false` among the parameters says no: the
    task still gets its key, so that later identical tasks reuse its fresh result)."""

    key: str
    lookup: bool


async def task_cache_key(core: Core, task: Any, chain: list[str], heads: dict[str, ObjectInfo]) -> CacheKey | None:
    """The key of `task` queued with `chain`; `heads` the stored inputs by name (as process verified them). None
    when it has none: a diagnostic tool's (its agents exist to exercise runs: sleep, fail, run away), invalid
    parameters, an input or a source dataset gone (the run will say so)."""
    if registry.tool_spec(task["tool_id"]).diagnostic:
        return None
    files = [_file_identity(i, heads.get(i["name"])) for i in task["inputs"] if i["role"] != "parameters"]
    if any(f is None for f in files):
        return None
    source: dict[str, Any] | None = None
    try:
        version = await versions.chained_version(core, task)
    except (versions.VersionGone, InvalidParametersError):
        return None
    if version is not None:
        source = await _stored_identity(core, version.key, version.record)
        if source is None:
            return None
    try:
        parameters = versions.with_version_options(await versions.load_parameters(core, task), version)
        lookup = registry.cache_option(parameters)
        body = {
            "format": KEY_FORMAT,
            "tool_id": task["tool_id"],
            "agents": chain,
            "parameters": {agent_id: _normalised(agent_id, parameters.get(agent_id)) for agent_id in chain},
            "inputs": registry.input_options(parameters).model_dump(mode="json"),
            "files": sorted(files, key=lambda f: f["name"]),  # type: ignore[index]
            "source": source,
            "code": code_version(),
        }
    except AgentError:
        return None
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return CacheKey(hashlib.sha256(text.encode()).hexdigest(), lookup)


def _normalised(agent_id: str, raw: Any) -> Any:
    """The agent's parameters as its model reads them, defaults filled, in one form however they were spelled."""
    model = registry.parse_parameters(agent_id, raw)
    cache_form = getattr(model, "cache_form", None)
    return cache_form() if callable(cache_form) else model.model_dump(mode="json")


def _file_identity(record: dict[str, Any], head: ObjectInfo | None) -> dict[str, Any] | None:
    """An input's content identity: the sha256 the API computed while streaming it, else (a presigned upload) the
    store's size and ETag; None when it is not stored."""
    identity: dict[str, Any] = {"name": record["name"], "role": record["role"]}
    if record.get("sha256"):
        return {**identity, "size": record["size"], "sha256": record["sha256"]}
    if head is None:
        return None
    return {**identity, "size": head.size, "etag": head.etag}


def upload_identities(heads: dict[str, ObjectInfo]) -> dict[str, dict[str, Any]] | None:
    """What the store said of a task's uploads when process verified them, by name, for their inputs entries
    (`etag`, `stored_size`): a task chained on it later keys its version by them without a HEAD (_stored_identity).
    None when the store gave no ETag."""
    known = {name: {"etag": h.etag, "stored_size": h.size} for name, h in heads.items() if h.etag}
    return known or None


async def _stored_identity(core: Core, key: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The identity of a stored object its task recorded (an output, an input): the recorded sha256, else the size
    and ETag the store gave when the task was processed (an upload's; upload_identities), else the store's now;
    None when it is gone."""
    if record.get("sha256"):
        return {"name": record["name"], "size": record["size"], "sha256": record["sha256"]}
    if record.get("etag") and record.get("stored_size") is not None:
        return {"name": record["name"], "size": record["stored_size"], "etag": record["etag"]}
    head = await core.storage.head(key)
    return None if head is None else {"name": record["name"], "size": head.size, "etag": head.etag}
