"""Small HTTP helpers shared by the route modules: JSON in and out, the error body, state access."""

from __future__ import annotations

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


def error_response(error: ServiceError, headers: dict[str, str] | None = None) -> JSON:
    return JSON(error.body(), status_code=error.http_status, headers=headers)


def validation_error(exc: ValidationError) -> ServiceError:
    errors = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return ServiceError("VALIDATION_ERROR", f"{where}: {first['msg']}", {"errors": errors})


async def parse_body(request: Request, model: type[M]) -> M:
    body = await request.body()
    if len(body) > 16 * 1024 * 1024:
        raise ServiceError("INPUT_TOO_LARGE", "Request body over 16 MiB.")
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise validation_error(exc) from None


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
