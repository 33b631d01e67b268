"""Errors raised by agents, readers and the tool registry.

Each carries an API error code (API.md), a sentence a user can act on and a details dict. They cross the
worker's process-pool boundary, so every one of them pickles with all of its attributes.
"""

from __future__ import annotations

from typing import Any


class AgentError(Exception):
    code: str = "AGENT_FAILED"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.details))

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidFileError(AgentError):
    """An input file is unreadable or malformed (empty, binary, ragged, unsupported format)."""

    code = "INVALID_FILE"


class InvalidParametersError(AgentError):
    """Parameters do not fit an agent's schema; details name ``agent_id`` and ``field``."""

    code = "INVALID_PARAMETERS"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        agent_id: str | None = None,
        field: str | None = None,
    ) -> None:
        merged = dict(details or {})
        if agent_id is not None:
            merged["agent_id"] = agent_id
        if field is not None:
            merged["field"] = field
        super().__init__(message, merged)

    @property
    def agent_id(self) -> str | None:
        return self.details.get("agent_id")

    @property
    def field(self) -> str | None:
        return self.details.get("field")


class UnknownToolError(AgentError):
    code = "UNKNOWN_TOOL"


class UnknownAgentError(AgentError):
    code = "UNKNOWN_AGENT"
