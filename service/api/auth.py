"""API-key authentication: keys are stored hashed and compared in constant time. Every authenticated request
then passes the caller's request-rate limit (service/ratelimit.py) and binds `user_id` to its log lines."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import structlog
from starlette.requests import HTTPConnection

from service.api.tokens import read_token_claims
from service.errors import ServiceError, rate_limited
from service.ratelimit import RateLimiter
from service.store import TaskStore, hash_api_key


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    is_admin: bool


class Authenticator:
    """Resolves `Authorization: Bearer <key>` to a user, with a short in-process cache so the hot
    routes do not pay a database round trip for every request. With a `limiter`, a non-admin over its
    request rate gets 429 RATE_LIMITED."""

    def __init__(
        self, store: TaskStore, ttl_s: float = 10.0, max_entries: int = 10_000, limiter: RateLimiter | None = None
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: dict[bytes, tuple[float, User]] = {}

    async def authenticate(self, request: HTTPConnection) -> User:
        scheme, _, key = _authorization(request).partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ServiceError("UNAUTHORIZED", "Send your API key as 'Authorization: Bearer <key>'.")
        digest = hash_api_key(key.strip())
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return await self.admit(cached[1])
        row = await self.store.user_by_api_key(key.strip())
        if row is None or not hmac.compare_digest(bytes(row["api_key_hash"]), digest):
            raise ServiceError("UNAUTHORIZED", "Unknown API key.")
        user = User(str(row["id"]), row["name"], row["is_admin"])
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, user)
        return await self.admit(user)

    def forget(self, user_id: str) -> None:
        """Drop the user's cached keys (its key was rotated or it was disabled): the next request reads the
        database again."""
        for digest in [d for d, (_, user) in self._cache.items() if user.user_id == user_id]:
            self._cache.pop(digest, None)

    async def charge(self, user: User, requests: int) -> None:
        """Count a costly call as `requests` more requests against the user's rate (429 when over it)."""
        if requests > 0:
            await self.admit(user, requests)

    async def admit(self, user: User, cost: int = 1) -> User:
        """The authenticated `user`, once within its request rate (admins always are)."""
        structlog.contextvars.bind_contextvars(user_id=user.user_id)
        if self.limiter is None or user.is_admin:
            return user
        decision = await self.limiter.check(user.user_id, cost)
        if not decision.allowed:
            raise rate_limited(
                f"Over {self.limiter.rate_per_s:g} requests/s (bursts of {self.limiter.burst}); "
                f"retry in {decision.retry_after_s} s.",
                decision.retry_after_s,
                {
                    "limit": self.limiter.rate_per_s,
                    "burst": self.limiter.burst,
                    "retry_after_s": decision.retry_after_s,
                },
            )
        return user


def _authorization(request: HTTPConnection) -> str:
    """The Authorization header, read from the ASGI scope: what `request.headers.get` answers, without building
    the Headers object on every request."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


async def authenticate_stream(request: HTTPConnection) -> User:
    """For the event streams only: the API key, or a `?token=` from POST /api/v1/events/token (browsers'
    EventSource and WebSocket cannot send an Authorization header)."""
    token = request.query_params.get("token")
    if token is None:
        auth: Authenticator = request.app.state.auth
        return await auth.authenticate(request)
    return await user_from_token(request, token)


async def user_from_token(request: HTTPConnection, token: str) -> User:
    """The user of a valid stream token, unless the user is disabled or rotated its key after the token was
    issued (a token got with a leaked key dies with that key)."""
    claims = read_token_claims(request.app.state.token_key, token)
    row = await request.app.state.core.store.get_user(claims.user_id) if claims is not None else None
    rotated = row["key_rotated_at"] if row is not None else None
    if claims is None or row is None or (rotated is not None and claims.issued_ms < rotated.timestamp() * 1000):
        raise ServiceError("UNAUTHORIZED", "The stream token is invalid or expired; get a new one.")
    auth: Authenticator = request.app.state.auth
    return await auth.admit(User(str(row["id"]), row["name"], row["is_admin"]))


def require_admin(user: User) -> None:
    if not user.is_admin:
        raise ServiceError("FORBIDDEN", "This route needs an admin API key.")
