"""The API's access line formatted directly (service/logs.py access_line, issue 14) is the line the JSON formatter
writes for the same record: same fields in the same order, redacted the same way; and it is only written directly
where that formatter would have written it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from service import logs

_STAMP = re.compile(r'"timestamp": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z)"')


@pytest.fixture
def bound() -> Iterator[None]:
    structlog.contextvars.bind_contextvars(request_id="5f1c0a2b9e", user_id="4f9a5c7e-0000-4000-8000-000000000001")
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "user_id")


def formatted(method: str, path: str, route: str, status: int, duration_ms: float) -> str:
    """What the access logger's call used to write through `formatter("json")`."""
    record = logging.getLogger("agensium.access").makeRecord(
        "agensium.access",
        logging.INFO,
        __file__,
        1,
        "%s %s %d %.1f ms",
        (method, path, status, duration_ms),
        None,
        extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
    )
    return logs.formatter("json").format(record)


def without_time(line: str) -> str:
    assert _STAMP.search(line), line
    return _STAMP.sub('"timestamp": "<time>"', line)


@pytest.mark.usefixtures("bound")
@pytest.mark.parametrize(
    ("method", "path", "route", "status", "duration_ms"),
    [
        ("GET", "/api/v1/tasks/0b6d", "/api/v1/tasks/{task_id}", 200, 0.4321),
        ("POST", "/api/v1/tasks", "/api/v1/tasks", 201, 12.05),
        ("GET", "/nowhere/é", "unmatched", 404, 1000.0),
        ("GET", "/api/v1/tasks/agk_leaked-key", "/api/v1/tasks/{task_id}", 404, 3.0),  # a key in the path
    ],
)
def test_the_direct_line_is_the_formatters_line(
    method: str, path: str, route: str, status: int, duration_ms: float
) -> None:
    direct = logs.access_line(method, path, route, status, duration_ms)
    assert without_time(direct) == without_time(formatted(method, path, route, status, duration_ms))
    assert "agk_leaked" not in direct


def test_a_secret_in_the_request_id_is_redacted_as_before() -> None:
    structlog.contextvars.bind_contextvars(request_id="Bearer agk_secret")
    try:
        direct = logs.access_line("GET", "/healthz", "/healthz", 200, 0.1)
        assert without_time(direct) == without_time(formatted("GET", "/healthz", "/healthz", 200, 0.1))
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    assert "agk_secret" not in direct and json.loads(direct)["request_id"] == "Bearer [REDACTED]"


def configured_logger(name: str, log_format: logs.LogFormat) -> tuple[logging.Logger, io.StringIO]:
    """A logger of its own writing through one stream handler with the project's formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate, logger.filters = [handler], False, []
    return logger, stream


def test_the_writer_writes_to_the_json_handlers_only() -> None:
    logger, stream = configured_logger("test.access.json", "json")
    write = logs.json_line_writer(logger)
    assert write is not None
    write('{"event": "x"}')
    assert stream.getvalue() == '{"event": "x"}\n'

    console, _ = configured_logger("test.access.console", "console")
    assert logs.json_line_writer(console) is None  # a person's terminal: the formatter's own rendering

    captured, _ = configured_logger("test.access.captured", "json")
    captured.addHandler(logging.NullHandler())  # e.g. a test's capture handler: records must reach it
    assert logs.json_line_writer(captured) is None

    filtered, _ = configured_logger("test.access.filtered", "json")
    filtered.addFilter(lambda record: False)
    assert logs.json_line_writer(filtered) is None


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.asyncio(loop_scope="session")
async def test_lines_of_one_loop_turn_go_out_in_one_write() -> None:
    logger, _ = configured_logger("test.access.batched", "json")
    stream = CountingStream()
    logger.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    write = logs.json_line_writer(logger)
    assert write is not None
    for n in range(3):
        write(f'{{"n": {n}}}')
    assert stream.getvalue() == ""  # not yet: at the end of this turn of the loop
    await asyncio.sleep(0)
    assert stream.getvalue() == '{"n": 0}\n{"n": 1}\n{"n": 2}\n' and stream.writes == 1
    write('{"n": 3}')
    await asyncio.sleep(0)
    assert stream.getvalue().endswith('{"n": 2}\n{"n": 3}\n') and stream.writes == 2


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="agkAGK_bearBEAR xX-mzMZsignatureSIGNATUREtoknTOKN=pi_yPIY/é\u212aſıİ", max_size=40))
def test_the_fast_suspect_check_answers_as_the_case_insensitive_pattern(text: str) -> None:
    assert logs._suspect(text) == (logs._SUSPECT.search(text) is not None)


@pytest.mark.usefixtures("bound")
@pytest.mark.parametrize("path", ["/api/v1/tasks/x?API_KEY=agk_abc", "/é/Bearer agk_abc", "/a?X-Amz-Signature=abc"])
def test_a_secret_in_any_case_or_beside_non_ascii_text_is_redacted(path: str) -> None:
    direct = logs.access_line("GET", path, "unmatched", 404, 1.0)
    assert without_time(direct) == without_time(formatted("GET", path, "unmatched", 404, 1.0))
    assert "abc" not in direct
