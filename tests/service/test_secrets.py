"""Stream tokens are signed with the configured secret key and nothing else: the API refuses to start
without one, and a token made from the key an earlier version derived from public defaults is refused.
(`agensium dev`'s generated key, kept in its data dir: tests/service/test_dev.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.api.tokens import SecretKeyMissing, make_token, signing_key
from service.config import Settings
from service.dev import settings_variable_names
from service.embedded import find_free_port
from tests.conftest import Account, ApiServer

ROOT = Path(__file__).resolve().parents[2]
# What `make run` used to sign with when no secret key was set: both inputs are public defaults there.
PUBLIC_DEFAULTS = ("agensium-secret", "postgresql://postgres@127.0.0.1:5432/agensium")


def old_derivation_token(s3_secret: str, database_url: str, user_id: str) -> str:
    """A 30-year stream token signed with the key of the old fallback, as an attacker would mint it."""
    key = hashlib.sha256(f"agensium-event-token\0{s3_secret}\0{database_url}".encode()).digest()
    body = f"{user_id}.{int(time.time()) + 30 * 365 * 86400}".encode()
    signature = hmac.new(key, body, hashlib.sha256).digest()
    return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (body, signature))


def test_there_is_no_signing_key_without_a_secret_key() -> None:
    with pytest.raises(SecretKeyMissing, match="AGENSIUM_SECRET_KEY is not set"):
        signing_key(Settings(secret_key=None))
    with pytest.raises(SecretKeyMissing):
        signing_key(Settings(secret_key=""))


def test_the_api_refuses_to_start_without_a_secret_key() -> None:
    environment = {name: value for name, value in os.environ.items() if name not in settings_variable_names()}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "api", "--port", str(find_free_port())],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "agensium api: SecretKeyMissing: AGENSIUM_SECRET_KEY is not set; generate one with "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` and set it for every API process"
    ]


@pytest.mark.asyncio(loop_scope="session")
async def test_a_token_of_the_old_derived_key_is_refused(api: ApiServer, account: Account) -> None:
    settings = api.settings
    forged = [
        old_derivation_token(*PUBLIC_DEFAULTS, account.user_id),
        old_derivation_token(settings.s3_secret_access_key, settings.database_url, account.user_id),
    ]
    good, _ = make_token(signing_key(settings), account.user_id, 60)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as anonymous:
        for token in forged:
            refused = await anonymous.get(f"/api/v1/events?token={token}")
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        async with anonymous.stream("GET", f"/api/v1/events?token={good}") as accepted:
            assert accepted.status_code == 200
