"""Small HTTP helpers shared by the route modules: JSON in and out, the error body, state access."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response

from service.errors import ServiceError

M = TypeVar("M", bound=BaseModel)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return to_json(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Starlette's headers of a JSON body (content-length, content-type, in that order), built directly when
        no other header is given: the hot routes' answers."""
        status = self.status_code
        if headers is None and self.media_type == "application/json" and status >= 200 and status not in (204, 304):
            self.raw_headers = [(b"content-length", b"%d" % len(self.body)), (b"content-type", b"application/json")]
            return
        super().init_headers(headers)


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> JSON:
    return JSON(error.body(), status_code=error.http_status, headers={**(error.headers or {}), **(headers or {})})


def validation_error(exc: ValidationError) -> ServiceError:
    errors = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ServiceError("VALIDATION_ERROR", f"{where}: {first['msg']}", {"errors": errors})


def _body_too_large(limit: int) -> ServiceError:
    return ServiceError("INPUT_TOO_LARGE", f"The request body is over {limit} bytes.", {"limit": limit})


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, counted as it arrives: a body over `limit` bytes is refused as soon as it says so
    (Content-Length) or gets there, never held whole. Kept on the request, so `request.body()` still works."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 20 or int(declared) > limit):
        raise _body_too_large(limit)
    chunks: list[bytes] = []  # joined once complete: a growing buffer would over-allocate as it went
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _body_too_large(limit)
        chunks.append(chunk)
    request._body = b"".join(chunks)  # Starlette's cache of the body: what request.body() returns from now on
    return request._body


def nul_location(value: Any) -> list[str | int] | None:
    """Where the first NUL character is in a parsed request (strings, dict keys, lists, models), or None.
    PostgreSQL stores no NUL in text or jsonb: such input is refused up front instead of failing there."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, BaseModel):
            stack += [([*path, name], getattr(item, name)) for name in type(item).model_fields]
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return [*path, key]
                stack.append(([*path, key], child))
        elif isinstance(item, list | tuple):
            stack += [([*path, index], child) for index, child in enumerate(item)]
    return None


def reject_nul(value: Any) -> None:
    """422 VALIDATION_ERROR when `value` holds a NUL character anywhere (see nul_location)."""
    path = nul_location(value)
    if path is not None:
        where = ".".join(str(p) for p in path) or "body"
        raise ServiceError("VALIDATION_ERROR", f"{where}: the NUL character (\\u0000) is not allowed.", {"loc": path})


async def parse_body(request: Request, model: type[M]) -> M:
    body = await read_body(request, request.app.state.settings.max_json_body_bytes)
    try:
        parsed = model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise validation_error(exc) from None
    reject_nul(parsed)
    return parsed


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError("VALIDATION_ERROR", f"{name} must be an integer.", {"field": name}) from None
    if not low <= value <= high:
        raise ServiceError("VALIDATION_ERROR", f"{name} must be between {low} and {high}.", {"field": name})
    return value


def reject_unknown_params(request: Request, allowed: set[str]) -> None:
    """422 for a query parameter the route does not take."""
    unknown = set(request.query_params) - allowed
    if unknown:
        raise ServiceError("VALIDATION_ERROR", f"Unknown query parameter(s): {', '.join(sorted(unknown))}.")


def bad_cursor() -> ServiceError:
    return ServiceError("VALIDATION_ERROR", "cursor is not one this API returned.", {"field": "cursor"})
