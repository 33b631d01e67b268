"""The OpenAPI document against the API it describes: schemathesis, all phases (examples, coverage, fuzzing,
stateful), every check, a fixed seed, against the real API of this run (real PostgreSQL, Redis, object store).

Zero failures of any check: a 5xx from generated input, a status code or response the document does not
describe, a schema-valid request refused or an invalid one accepted, a 405 without `Allow`, ... all fail it.
The two event streams are left out: they stream until the client leaves (tests/e2e cover them); their
format is described in the document (text/event-stream) and checked by test_openapi_describes_event_streams.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, ApiServer, serve_api

SEED = 20261206
# The budget of the whole run: past the coverage phase, fuzzing and the stateful phase repeat (from the fixed seed)
# until it is spent. Examples per operation in each fuzzing round: MAX_EXAMPLES.
MAX_TIME_S = int(os.environ.get("AGENSIUM_SCHEMATHESIS_S", "120"))
MAX_EXAMPLES = 30


# Requests the document admits but the task's state refuses: a task without its upload cannot be processed or
# retried (422 INPUT_MISSING); an input name or content type this task's tool does not take (422
# INVALID_FILE_NAME, 415) or a size over the limit (413); a multipart upload that was never started (422).
# Those answers depend on the task, which no schema can say; every other check runs unchanged on them.
STATEFUL_REFUSALS = [
    # Parameter relations JSON Schema cannot state; schemathesis_hooks.py checks these 422s are exactly those.
    ("post_api_v1_tasks", ["422"]),
    ("post_api_v1_tasks_task_id_process", ["422"]),
    ("post_api_v1_tasks_task_id_retry", ["422"]),
    ("post_api_v1_tasks_task_id_upload_urls", ["413", "415", "422"]),
    ("put_api_v1_tasks_task_id_inputs_name", ["413", "415", "422"]),
    ("get_api_v1_tasks_task_id_inputs_name_parts", ["422"]),
    ("post_api_v1_tasks_task_id_inputs_name_complete", ["422"]),
]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]  # schemathesis' default for schema-valid requests
# NUL characters are left out of generated strings: PostgreSQL cannot store them, the API answers 422 to any NUL
# in a body (tests/service/test_hostile_inputs.py), and the document cannot say "no NUL" for every string.
CONFIG = (
    "generation.allow-x00 = false\n"
    # No example database carried between runs (.schemathesis/): each run is its seed's run.
    + 'generation.database = "none"\n'
    + "".join(
        f"""
[[operations]]
include-operation-id = "{operation_id}"
checks.positive_data_acceptance.expected-statuses = {ACCEPTED + statuses}
"""
        for operation_id, statuses in STATEFUL_REFUSALS
    )
    + """
[[operations]]
include-path-regex = "/events$"
max-stream-events = 2
"""
)


@pytest.fixture
async def admin_account(store) -> Account:  # type: ignore[no-untyped-def]
    user_id, key = await store.create_user("schemathesis-admin", is_admin=True, credits=1_000_000)
    return Account(user_id, key)


async def test_schemathesis_finds_nothing(api: ApiServer, admin_account: Account, tmp_path: Path) -> None:
    # An admin key: the request-rate limit does not apply (schemathesis sends thousands of requests).
    async with serve_api(api.settings) as server:
        report = tmp_path / "report"
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG)
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-time",
            str(MAX_TIME_S),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--header",
            f"Authorization: Bearer {admin_account.api_key}",
            "--report",
            "junit",
            "--report-dir",
            str(report),
            "--no-color",
        ]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={
                **os.environ,
                "NO_COLOR": "1",
                "SCHEMATHESIS_HOOKS": "tests.service.schemathesis_hooks",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            },
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20_000:]
    assert "passed" in text.lower(), text[-5_000:]


async def test_openapi_describes_event_streams(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/api/v1/tasks/{task_id}/events", "/api/v1/events"):
        ok = document["paths"][path]["get"]["responses"]["200"]
        stream = ok["content"]["text/event-stream"]
        assert "id:" in stream["schema"]["description"] and "event:" in stream["schema"]["description"]
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert {"Last-Event-ID", "token", "last_event_id"} <= names
