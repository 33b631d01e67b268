"""The service's error codes (API.md) and the one exception that carries them."""

from __future__ import annotations

from typing import Any

HTTP_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 422,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "TASK_NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "INVALID_STATE": 409,
    "IDEMPOTENCY_CONFLICT": 409,
    "NOT_READY": 409,
    "UNKNOWN_TOOL": 422,
    "UNKNOWN_AGENT": 422,
    "INVALID_PARAMETERS": 422,
    "INVALID_FILE_NAME": 422,
    "INPUT_MISSING": 422,
    "INPUT_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}


class ServiceError(Exception):
    """A failure a client can act on; the API renders it as the one error body of API.md."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers  # sent with the error response, e.g. Retry-After of a 429

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 400)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def task_not_found() -> ServiceError:
    return ServiceError("TASK_NOT_FOUND", "No such task.")


def invalid_state(status: str, action: str) -> ServiceError:
    return ServiceError("INVALID_STATE", f"Cannot {action} a task that is {status}.", {"status": status})


def rate_limited(message: str, retry_after_s: int, details: dict[str, Any] | None = None) -> ServiceError:
    """429 RATE_LIMITED with the Retry-After API.md promises."""
    return ServiceError("RATE_LIMITED", message, details, headers={"Retry-After": str(max(1, retry_after_s))})
