"""Pydantic models of the HTTP contract (API.md): requests, the task object, errors.

Request models are strict and forbid unknown fields; response models describe what the API
returns and feed the OpenAPI document.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


TERMINAL = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED)
Priority = Literal["low", "normal", "high", "urgent"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- requests ---------------------------------------------------------------------------------


class CreateTaskRequest(StrictModel):
    tool_id: str = Field(min_length=1, max_length=100)
    agents: list[str] | None = Field(None, max_length=50)
    priority: Priority = "normal"
    parameters: dict[str, Any] | None = None
    source_task_id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)


class UploadFileSpec(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=0)


class UploadUrlsRequest(StrictModel):
    files: list[UploadFileSpec] = Field(min_length=1, max_length=20)
    has_parameters: bool = False
    # Content length of parameters.json when has_parameters; signed into its URL like any input.
    parameters_size: int | None = Field(None, ge=0)


# --- responses --------------------------------------------------------------------------------


class TaskError(BaseModel):
    code: str
    message: str


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
    """`method` PUT: one `url`. `method` MULTIPART (above the multipart threshold): PUT each of `parts`
    (`part_size` bytes each, the last one shorter), then POST .../inputs/{name}/complete."""

    name: str
    key: str
    method: str
    url: str | None = None
    headers: dict[str, str]
    expires_at: datetime
    upload_id: str | None = None
    part_size: int | None = None
    parts: list[UploadPart] | None = None


class CompletedPart(StrictModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUploadRequest(StrictModel):
    upload_id: str = Field(min_length=1, max_length=1024)
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
    """The task object of API.md from a `tasks` row, ready for JSON."""
    return {
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
        "created_at": _iso(row["created_at"]),
        "upload_started_at": _iso(row["upload_started_at"]),
        "queued_at": _iso(row["queued_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
        "expires_at": _iso(row["expires_at"]),
    }
