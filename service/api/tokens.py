"""Short-lived signed tokens for event streams, which browsers open without an Authorization header
(EventSource and WebSocket cannot send one). A token names its user and expiry, signed with HMAC-SHA256;
it is accepted only by the stream routes, as `?token=`, and only when the stream opens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from service.config import Settings


class SecretKeyMissing(RuntimeError):
    """The API has no `secret_key` to sign stream tokens with: it must not start."""


def signing_key(settings: Settings) -> bytes:
    """The key that signs and checks stream tokens, from the configured `secret_key`, which every API process
    of a deployment shares. Nothing else may stand in for it: a key derived from other settings (defaults a
    public README names) would let anyone mint a token for any user."""
    if not settings.secret_key:
        raise SecretKeyMissing(
            "AGENSIUM_SECRET_KEY is not set; generate one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` and set it for every API process"
        )
    return hashlib.sha256(settings.secret_key.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    expires: int  # epoch seconds
    issued_ms: int  # epoch milliseconds: a token issued before its user's key was rotated is refused


def make_token(key: bytes, user_id: str, ttl_s: int, now: float | None = None) -> tuple[str, int]:
    """(token, expiry as epoch seconds)."""
    now = time.time() if now is None else now
    expires = int(now + ttl_s)
    body = f"{user_id}.{expires}.{int(now * 1000)}".encode()
    signature = hmac.new(key, body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(signature)}", expires


def read_token(key: bytes, token: str, now: float | None = None) -> str | None:
    """The user id of a valid, unexpired token; None otherwise."""
    claims = read_token_claims(key, token, now)
    return claims.user_id if claims is not None else None


def read_token_claims(key: bytes, token: str, now: float | None = None) -> TokenClaims | None:
    """What a valid, unexpired token says; None otherwise."""
    try:
        body_part, signature_part = token.split(".")
        body = base64.urlsafe_b64decode(body_part + "=" * (-len(body_part) % 4))
        signature = base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4))
        if not hmac.compare_digest(signature, hmac.new(key, body, hashlib.sha256).digest()):
            return None
        user_id, expires, issued_ms = body.decode().split(".")
        if int(expires) < (time.time() if now is None else now):
            return None
        return TokenClaims(user_id, int(expires), int(issued_ms))
    except (ValueError, UnicodeDecodeError):
        return None
