"""Pydantic models of the HTTP contract (API.md): requests, the task object, errors.

Request models are strict and forbid unknown fields; response models describe what the API
returns and feed the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict

from agents.params.transformer import MAX_COMMAND_CHARS, MAX_OPERATIONS

INPUT_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$"


class TaskStatus(StrEnum):
    CREATED = "CREATED"
    UPLOADING = "UPLOADING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED})

Priority = Literal["low", "normal", "high", "urgent"]


def _whole_number(value: Any) -> Any:
    """`7.0` is a JSON Schema integer: take it as 7 (the strict models take no other float)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- requests ---------------------------------------------------------------------------------


def _printable(value: str) -> str:
    """Refuse control characters (C0, DEL, C1): they end up in every copy of the task, in reports and logs."""
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# What _printable lets through, for the OpenAPI document (the validator's message is the clearer one).
PRINTABLE: JsonDict = {"pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}
# Labels are copied into every status event of their task: small and printable.
MAX_LABELS = 50
LabelKey = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
LabelValue = Annotated[str, Field(max_length=256, json_schema_extra=PRINTABLE), AfterValidator(_printable)]
# Files one upload-urls call may declare: master-my-data's most, a primary, 9 source_<label> files and a schema.
MAX_UPLOAD_FILES = 11
# A multipart upload id as stores issue them (AWS, MinIO, SeaweedFS, B2, R2): never a path or a query.
UPLOAD_ID_PATTERN = r"^[A-Za-z0-9._~+=-]{1,1024}$"
_UPLOAD_ID = re.compile(UPLOAD_ID_PATTERN)


def is_upload_id(value: str) -> bool:
    """Whether `value` can be a store's multipart upload id: checked before it reaches the store."""
    return _UPLOAD_ID.fullmatch(value) is not None and ".." not in value


def _upload_id(value: str) -> str:
    if not is_upload_id(value):
        raise ValueError("not an upload id upload-urls returned")
    return value


def _unique(values: list[str] | None) -> list[str] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("each agent may appear once")
    return values


class CreateTaskRequest(StrictModel):
    tool_id: str = Field(min_length=1, max_length=100)
    agents: Annotated[list[str] | None, AfterValidator(_unique)] = Field(None, max_length=50)
    priority: Priority = "normal"
    parameters: dict[str, Any] | None = None
    source_task_id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        json_schema_extra={"propertyNames": {"minLength": 1, "maxLength": 64, **PRINTABLE}},
    )
    process: bool = Field(
        False,
        description="Process the task in the same call (only with a source_task_id: nothing to upload): 201 with the"
        " task QUEUED, or COMPLETED with cached true when the result cache holds the same work",
    )


TRANSFORM_ACTIONS = ("command", "commands", "operations")


class TransformRequest(StrictModel):
    """POST /tasks/{id}/transform: exactly one of `command`, `commands` or `operations` (the transformer's
    parameters, agents/params/transformer.py; operations are checked against its model as parameters, 422
    INVALID_PARAMETERS), on the task's dataset version."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"command": "remove rows where email is null"},
                {"commands": ["rename column zip to postcode", "sort by signup_date descending"]},
                {"operations": [{"op": "filter", "action": "remove", "where": {"column": "email", "cmp": "is_null"}}]},
            ]
        },
    )

    command: str | None = Field(None, min_length=1, max_length=MAX_COMMAND_CHARS)
    commands: list[Annotated[str, Field(min_length=1, max_length=MAX_COMMAND_CHARS)]] | None = Field(
        None, min_length=1, max_length=MAX_OPERATIONS
    )
    operations: list[dict[str, Any]] | None = Field(None, min_length=1, max_length=MAX_OPERATIONS)
    priority: Priority = "normal"
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=MAX_LABELS,
        json_schema_extra={"propertyNames": {"minLength": 1, "maxLength": 64, **PRINTABLE}},
    )

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_action(cls, data: Any) -> Any:
        """One of the three, given and not null (the document says so with a oneOf of three shapes)."""
        if isinstance(data, dict):
            given = [key for key in TRANSFORM_ACTIONS if key in data]
            if len(given) != 1 or data[given[0]] is None:
                raise ValueError("give exactly one of command, commands or operations")
        return data

    def transformer_parameters(self) -> dict[str, Any]:
        """The transformer's parameters of the new task: {"commands": [...]} or {"operations": [...]}."""
        if self.operations is not None:
            return {"operations": self.operations}
        return {"commands": [self.command] if self.command is not None else list(self.commands or [])}


class UploadFileSpec(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    content_type: Annotated[str, AfterValidator(_printable)] = Field(
        min_length=1, max_length=200, json_schema_extra=PRINTABLE
    )
    size: WholeNumber = Field(ge=0)
    # The user's own name of the file (e.g. flights.csv), shown in the reports, the page and the CLI.
    display_name: Annotated[str, AfterValidator(_printable)] | None = Field(
        None, min_length=1, max_length=255, json_schema_extra=PRINTABLE
    )


class UploadUrlsRequest(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"files": [{"name": "primary.csv", "content_type": "text/csv", "size": 1024}]},
                {
                    "files": [
                        {"name": "primary.parquet", "content_type": "application/vnd.apache.parquet", "size": 9000},
                        {"name": "baseline.csv", "content_type": "text/csv", "size": 2048},
                    ],
                    "has_parameters": True,
                    "parameters_size": 120,
                },
            ]
        },
    )

    files: list[UploadFileSpec] = Field(min_length=1, max_length=MAX_UPLOAD_FILES)
    has_parameters: bool = False
    # Content length of parameters.json when has_parameters; signed into its URL like any input.
    parameters_size: WholeNumber | None = Field(None, ge=0)


# --- responses --------------------------------------------------------------------------------


class TaskError(BaseModel):
    code: str
    message: str


class TaskInput(BaseModel):
    """One of a task's declared or stored inputs (not parameters.json): `display_name` is the user's own file name
    (upload-urls' `display_name`), `size` the declared size in bytes."""

    name: str
    role: str
    display_name: str | None = None
    size: int | None = None


class Task(BaseModel):
    task_id: str
    tool_id: str
    agents: list[str]
    status: TaskStatus
    priority: Priority
    progress: int = Field(ge=0, le=100)
    current_agent: str | None
    message: str | None
    error: TaskError | None
    attempts: int
    cached: bool
    source_task_id: str | None
    labels: dict[str, str]
    inputs: list[TaskInput] = []
    credits: int | None = Field(
        default=None, description="credits the task cost, net of refunds (GET and list only, not in events)"
    )
    created_at: datetime
    upload_started_at: datetime | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None


class UploadPart(BaseModel):
    part_number: int
    url: str


class Upload(BaseModel):
    """`method` PUT: one `url`. `method` POST (parameters.json without a declared size): a form upload to
    `url`, `fields` first and the file last, at most the parameters limit. `method` MULTIPART (above the
    multipart threshold): PUT each of `parts` (`part_size` bytes each, the last one shorter), then POST
    .../inputs/{name}/complete."""

    name: str
    key: str
    method: str
    url: str | None = None
    headers: dict[str, str]
    fields: dict[str, str] | None = None
    expires_at: datetime
    upload_id: str | None = None
    part_size: int | None = None
    parts: list[UploadPart] | None = None


class CompletedPart(StrictModel):
    part_number: WholeNumber = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUploadRequest(StrictModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"upload_id": "2~aBc-123", "parts": [{"part_number": 1, "etag": '"9b2cf5"'}]}]},
    )

    upload_id: Annotated[str, AfterValidator(_upload_id)] = Field(pattern=UPLOAD_ID_PATTERN)
    parts: list[CompletedPart] = Field(min_length=1, max_length=10_000)


class UploadedParts(BaseModel):
    parts: list[dict[str, Any]]


class CompletedUpload(BaseModel):
    name: str
    size: int | None


class EventsToken(BaseModel):
    token: str
    expires_at: datetime
    expires_in: int


class UploadUrlsResponse(BaseModel):
    uploads: list[Upload]


class StoredInput(BaseModel):
    name: str
    size: int
    sha256: str


class Download(BaseModel):
    name: str
    size: int
    content_type: str
    url: str
    expires_at: datetime


class DownloadsResponse(BaseModel):
    files: list[Download]


class TaskList(BaseModel):
    items: list[Task]
    next_cursor: str | None


class Me(BaseModel):
    user_id: str
    name: str
    credits: int
    is_admin: bool


LedgerKind = Literal["debit", "refund", "grant", "cache_hit"]


class LedgerEntry(BaseModel):
    """One line of the caller's credit ledger: `amount` is negative for a debit, `balance_after` the balance
    once it was applied; `task_id` and `agent_id` name what a debit or refund was for."""

    id: str
    kind: LedgerKind
    amount: int
    balance_after: int
    task_id: str | None = None
    agent_id: str | None = None
    reason: str
    created_at: datetime


class Ledger(BaseModel):
    items: list[LedgerEntry]
    next_cursor: str | None


class LineageEntry(BaseModel):
    """One dataset version: the task, its tool and status, the rows of its version (None until known) and the
    sentences of its transformations, oldest first."""

    task_id: str
    tool_id: str
    status: TaskStatus
    rows: int | None
    transformations: list[str]
    created_at: datetime
    source_task_id: str | None
    deleted: bool | None = Field(
        None,
        description="true for an ancestor the user deleted, listed as it was (its children keep its id); absent for "
        "the others",
    )


class Lineage(BaseModel):
    """GET /tasks/{id}/lineage: `ancestors` root first (the task itself excluded: it is `task`), `children` the
    tasks chained on it, oldest first. Undo is continuing from an ancestor: nothing is copied."""

    task_id: str
    task: LineageEntry
    ancestors: list[LineageEntry]
    children: list[LineageEntry]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- task rows -> API objects -----------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """A timestamp as API.md writes it: ISO 8601 in UTC with a Z."""
    return value.isoformat().replace("+00:00", "Z")


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def task_view(row: Any) -> dict[str, Any]:
    """The task object of API.md from a `tasks` row, ready for JSON; `credits` when the row has it (the queries of
    GET /tasks/{id} and the list compute it from the ledger)."""
    view = {
        "task_id": str(row["id"]),
        "tool_id": row["tool_id"],
        "agents": list(row["agents"]),
        "status": row["status"],
        "priority": row["priority"],
        "progress": row["progress"],
        "current_agent": row["current_agent"],
        "message": row["message"],
        "error": _json(row["error"]),
        "attempts": row["attempts"],
        "cached": row["cached"],
        "source_task_id": str(row["source_task_id"]) if row["source_task_id"] else None,
        "labels": _json(row["labels"]),
        "inputs": [_input_view(i) for i in _json(row["inputs"]) or [] if i.get("role") != "parameters"],
        "created_at": _iso(row["created_at"]),
        "upload_started_at": _iso(row["upload_started_at"]),
        "queued_at": _iso(row["queued_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "expires_at": _iso(row["expires_at"]),
    }
    if "credits" in row.keys():  # GET and the list (an event's task object goes without: ask the task)
        view["credits"] = row["credits"]
    return view


def _input_view(record: dict[str, Any]) -> dict[str, Any]:
    """An input as the task object shows it: its stored name, role, the user's own file name and declared size."""
    return {
        "name": record.get("name"),
        "role": record.get("role"),
        "display_name": record.get("display_name"),
        "size": record.get("size"),
    }


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def lineage_entry(row: Any) -> dict[str, Any]:
    """A LineageEntry from a task_lineage / task_children row, ready for JSON: `rows` the rows of its dataset
    version as its result summary says (the recorded dataset's rows: a data tool's main output, master_data.csv's
    golden records not the master run's input rows; else rows_out of a result without one; else the rows it
    read), `transformations` the summary's sentences."""
    rows = next((n for n in map(_whole, (row["dataset_rows"], row["rows_out"], row["rows"])) if n is not None), None)
    sentences = row["transformations"]
    return {
        "task_id": str(row["id"]),
        "tool_id": row["tool_id"],
        "status": row["status"],
        "rows": rows,
        "transformations": [s for s in sentences if isinstance(s, str)] if isinstance(sentences, list) else [],
        "created_at": iso_utc(row["created_at"]),
        "source_task_id": str(row["source_task_id"]) if row["source_task_id"] else None,
    }


def ledger_entry(row: Any) -> dict[str, Any]:
    """A LedgerEntry from a `credit_ledger` row, ready for JSON (task_id and agent_id only when set)."""
    entry: dict[str, Any] = {
        "id": str(row["id"]),
        "kind": row["kind"],
        "amount": row["amount"],
        "balance_after": row["balance"],
        "reason": row["reason"],
        "created_at": iso_utc(row["created_at"]),
    }
    if row["task_id"] is not None:
        entry["task_id"] = str(row["task_id"])
    if row["agent_id"] is not None:
        entry["agent_id"] = row["agent_id"]
    return entry
