"""API-key authentication: keys are stored hashed and compared in constant time."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from service.api.tokens import read_token
from service.errors import ServiceError
from service.store import TaskStore, hash_api_key


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    is_admin: bool


class Authenticator:
    """Resolves `Authorization: Bearer <key>` to a user, with a short in-process cache so the hot
    routes do not pay a database round trip for every request."""

    def __init__(self, store: TaskStore, ttl_s: float = 10.0, max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, User]] = {}

    async def authenticate(self, request: HTTPConnection) -> User:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ServiceError("UNAUTHORIZED", "Send your API key as 'Authorization: Bearer <key>'.")
        digest = hash_api_key(key.strip())
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self.store.user_by_api_key(key.strip())
        if row is None or not hmac.compare_digest(bytes(row["api_key_hash"]), digest):
            raise ServiceError("UNAUTHORIZED", "Unknown API key.")
        user = User(str(row["id"]), row["name"], row["is_admin"])
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, user)
        return user


async def authenticate_stream(request: HTTPConnection) -> User:
    """For the event streams only: the API key, or a `?token=` from POST /api/v1/events/token (browsers'
    EventSource and WebSocket cannot send an Authorization header)."""
    token = request.query_params.get("token")
    if token is None:
        auth: Authenticator = request.app.state.auth
        return await auth.authenticate(request)
    return await user_from_token(request, token)


async def user_from_token(request: HTTPConnection, token: str) -> User:
    user_id = read_token(request.app.state.token_key, token)
    row = await request.app.state.core.store.get_user(user_id) if user_id else None
    if row is None:
        raise ServiceError("UNAUTHORIZED", "The stream token is invalid or expired; get a new one.")
    return User(str(row["id"]), row["name"], row["is_admin"])


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise ServiceError("FORBIDDEN", "This route needs an admin API key.")
