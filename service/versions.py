"""Dataset versions (API.md) and a task's parameters as its run reads them: one implementation for the worker, which
runs the task, and the result cache, which must key the very same work (service/cache.py).

A task's dataset version is its main data output (registry.MAIN_DATA_OUTPUTS), else its uploaded primary input in
whichever format it was uploaded (CSV, TSV, XLSX, Parquet, JSON, NDJSON) with that upload's reading options, else,
for a task that was itself chained (a profile of a cleaned dataset), its source's version, and so on up the chain.
Row-level issue files and reports never are one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents import registry
from agents.errors import InvalidParametersError
from agents.params.inputs import INPUTS_KEY, OPTION_ROLES

if TYPE_CHECKING:
    from service.lifecycle import Core

MAX_DEPTH = 10_000  # links followed up a chain of versions: sources are older tasks, so the walk ends anyway


class VersionGone(Exception):
    """The chain of versions is broken (a task deleted, its stored files gone after the retention period): the
    message says which task and why."""


@dataclass(frozen=True)
class DatasetVersion:
    """A task's dataset version: the object a task chained on it takes as its primary input."""

    task_id: str  # the task whose output or upload it is
    name: str  # the object's own name: cleaned_data.csv, primary.parquet, ...
    key: str
    # Reading options of an uploaded primary (its XLSX sheet, the user's file name): they go with it.
    options: dict[str, Any]
    # The task's own record of the object (name, size, sha256 when known): its content identity.
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def local_name(self) -> str:
        """The chained task's primary input: primary.<the version's format>."""
        return "primary" + Path(self.name).suffix


async def dataset_version(core: Core, user_id: str, task_id: str, *, reader: str | None = None) -> DatasetVersion:
    """The user's task `task_id`'s dataset version (module docstring). VersionGone when the chain is broken;
    `reader`: the task about to read it (chained_version), whose message then says its source was deleted."""
    current, previous = task_id, None
    for _ in range(MAX_DEPTH):
        row = await core.store.get_task(current, user_id)
        if row is None:
            if previous is not None:  # a task up the chain (its children keep its id: migration 015)
                raise VersionGone(
                    f"The source version {current} was deleted before this task read it (task {previous}, chained "
                    "on it, holds no dataset of its own)."
                )
            if reader is not None:
                raise VersionGone(f"The source version {current} was deleted before this task read it.")
            raise VersionGone(f"Source task {current} no longer exists: its dataset is gone.")
        if row["artifacts_deleted"]:
            raise VersionGone(
                f"The stored files of source task {current} were deleted after the retention period; "
                "run it again to get its dataset back."
            )
        version = await _own_version(core, user_id, row)
        if version is not None:
            return version
        if row["source_task_id"] is None:
            raise VersionGone(
                f"Source task {current} has no dataset of its own (no data output, no primary upload) and the task "
                "it was chained on was deleted."
            )
        current, previous = str(row["source_task_id"]), current
    raise VersionGone(f"The chain of versions above task {task_id} is longer than {MAX_DEPTH} tasks.")


async def _own_version(core: Core, user_id: str, task: Any) -> DatasetVersion | None:
    """The version a task holds itself: its main data output, else its uploaded primary (with its reading
    options); None when it has neither."""
    from service.lifecycle import inputs_prefix, output_key

    task_id, settings = str(task["id"]), core.settings
    main = next((o for o in task["outputs"] or [] if o["name"] in registry.MAIN_DATA_OUTPUTS), None)
    if main is not None:
        return DatasetVersion(task_id, main["name"], output_key(settings, user_id, task_id, main), {}, dict(main))
    primary = next((i for i in task["inputs"] if i["role"] == "primary"), None)
    if primary is None:
        return None
    options = (await load_parameters(core, task)).get(INPUTS_KEY)
    file_options = options.get("primary") if isinstance(options, dict) else None
    key = inputs_prefix(settings, user_id, task_id) + primary["name"]
    own = file_options if isinstance(file_options, dict) else {}
    return DatasetVersion(task_id, primary["name"], key, own, dict(primary))


async def chained_version(core: Core, task: Any) -> DatasetVersion | None:
    """The version a task chained on an earlier one (`source_task_id`) takes as its primary; None for a task that
    uploaded its own (a chained master-my-data task may upload its other sources and its contract)."""
    if task["source_task_id"] is None or any(i["role"] == "primary" for i in task["inputs"]):
        return None
    return await dataset_version(core, str(task["user_id"]), str(task["source_task_id"]), reader=str(task["id"]))


async def load_parameters(core: Core, task: Any) -> dict[str, Any]:
    """The task's parameters as its run reads them: parameters.json from the store, the inline ones over it (per
    agent), then the users' file names as the inputs' `display_name` reading option. InvalidParametersError when
    parameters.json is not a JSON object."""
    from service.lifecycle import PARAMETERS_NAME, inputs_prefix

    parameters: dict[str, Any] = {}
    if task["has_parameters"] or any(i["name"] == PARAMETERS_NAME for i in task["inputs"]):
        key = inputs_prefix(core.settings, str(task["user_id"]), str(task["id"])) + PARAMETERS_NAME
        raw = await core.storage.get_bytes(key, core.settings.max_parameters_bytes)
        try:
            loaded = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidParametersError(f"parameters.json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidParametersError("parameters.json must be an object keyed by agent id.")
        parameters = loaded
    conflicts: list[str] = []
    for agent_id, values in (task["parameters"] or {}).items():  # merged per agent: a key set in both must agree
        base = parameters.get(agent_id)
        if isinstance(base, dict) and isinstance(values, dict):
            conflicts += [f"{agent_id}.{key}" for key in values if key in base and base[key] != values[key]]
            parameters[agent_id] = {**base, **values}
        else:
            if agent_id in parameters and base != values:
                conflicts.append(agent_id)
            parameters[agent_id] = values
    if conflicts:
        raise InvalidParametersError(
            f"{', '.join(conflicts[:5])}: set differently inline and in parameters.json; give each parameter once "
            "(the two are merged per agent, and neither silently wins)."
        )
    return _with_display_names(parameters, task["inputs"])


def _with_display_names(parameters: dict[str, Any], inputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The users' own file names (upload-urls' display_name) as the inputs' `display_name` reading option,
    which the reports show instead of primary.csv; one the parameters set themselves wins."""
    named = {i["role"]: i["display_name"] for i in inputs if i.get("display_name") and i["role"] in OPTION_ROLES}
    options = parameters.get(INPUTS_KEY)
    if not named or (options is not None and not isinstance(options, dict)):
        return parameters  # nothing to add, or not an object: validation says so
    options = dict(options or {})
    for role, display_name in named.items():
        file_options = options.get(role)
        if file_options is None or isinstance(file_options, dict):
            options[role] = {"display_name": display_name, **(file_options or {})}
    return {**parameters, INPUTS_KEY: options}


def with_version_options(parameters: dict[str, Any], version: DatasetVersion | None) -> dict[str, Any]:
    """The version's reading options (an XLSX upload's sheet, the user's file name) as the chained task's primary
    options, under those the task's own parameters set."""
    if version is None or not version.options:
        return parameters
    options = parameters.get(INPUTS_KEY)
    if options is not None and not isinstance(options, dict):
        return parameters  # not an object: validation says so
    own = (options or {}).get("primary")
    if own is not None and not isinstance(own, dict):
        return parameters
    return {**parameters, INPUTS_KEY: {**(options or {}), "primary": {**version.options, **(own or {})}}}
