"""One logging setup for every process: `agensium api`, `agensium worker`, and the children of `agensium dev`.

Every line goes through structlog's ProcessorFormatter on the stdlib root logger, so the code's plain
`logging.getLogger(...).info(...)` calls (and uvicorn's, arq's) come out the same way:
- `json`: one JSON object per line with `timestamp` (RFC 3339 UTC), `level`, `logger`, `event`, the `extra`
  fields of the call, and the context bound with structlog.contextvars: `request_id` (the API's request
  middleware), `user_id` (authentication), `task_id` (the worker, while it runs a task);
- `console`: the same, aligned and coloured for a person at a terminal.

Secrets never reach a line: `redact` masks API keys (`agk_...`, `Bearer ...`), fields named like a secret
(`authorization`, `api_key`, `token`, ...) and the query string of presigned URLs (`X-Amz-Signature`, ...),
in the message, in every field and in formatted tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.config
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

REDACTED = "[REDACTED]"
SECRET_FIELDS = frozenset(
    {
        "authorization",
        "api_key",
        "apikey",
        "token",
        "secret",
        "secret_key",
        "password",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "aws_secret_access_key",
        "s3_secret_access_key",
    }
)
# (pattern, replacement) applied to every string a line carries.
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A presigned URL: keep scheme, host and path (which object), drop the whole query string.
    (re.compile(r"(https?://[^\s?#'\"<>]+)\?[^\s'\"<>]*X-Amz-[^\s'\"<>]*", re.IGNORECASE), rf"\1?{REDACTED}"),
    # Signature parts met outside a full URL (a header dump, a form field list).
    (
        re.compile(r"((?:X-Amz-(?:Signature|Credential|Security-Token)|Signature)[=:]\s*)[^&\s'\",]+", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(\bBearer\s+)[^\s'\",]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"\bagk_[A-Za-z0-9_\-]+"), f"agk_{REDACTED}"),
    (re.compile(r"([?&](?:token|api_key)=)[^&\s'\"]+", re.IGNORECASE), rf"\1{REDACTED}"),
)


# Something SECRET_PATTERNS may match: one search per string, the substitutions only for the few that hit.
_SUSPECT_WORDS = ("agk_", "bearer", "x-amz-", "signature", "token=", "api_key=")
_SUSPECT = re.compile("|".join(map(re.escape, _SUSPECT_WORDS)), re.IGNORECASE)


def _suspect(text: str) -> bool:
    """Whether ``text`` holds one of _SUSPECT_WORDS in any case: for ASCII text by substring search of its lower
    case (the same answer, ~20 times faster than the case-insensitive pattern), else by the pattern."""
    if text.isascii():
        lowered = text.lower()
        return any(word in lowered for word in _SUSPECT_WORDS)
    return _SUSPECT.search(text) is not None


def redact_text(text: str) -> str:
    if not _suspect(text):
        return text
    for pattern, replacement in SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """The structlog processor that keeps secrets out of every line (see the module's docstring)."""
    return {
        key: REDACTED if key.lower() in SECRET_FIELDS and value is not None else _redact(value)
        for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    """What every line gets, from structlog and stdlib loggers alike, before it is rendered."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(log_format: LogFormat = "json") -> structlog.stdlib.ProcessorFormatter:
    """The logging.Formatter of every handler (also named by `dict_config`, for uvicorn's worker processes)."""
    renderer: Processor
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())  # the handlers write to stderr
    else:
        renderer = structlog.processors.JSONRenderer()
    made = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # tracebacks as text, so `redact` sees them too
            redact,
            renderer,
        ],
    )
    made.agensium_log_format = log_format  # type: ignore[attr-defined]  # how json_line_writer knows its lines
    return made


def dict_config(log_format: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """The logging.config.dictConfig of this setup: `configure` applies it, and uvicorn applies it again in
    each of its worker processes (`uvicorn.run(log_config=...)`), whose loggers then propagate to the root."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"agensium": {"()": formatter, "log_format": log_format}},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "agensium", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own config would give these handlers of their own; ours go to the root's.
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            "httpx": {"level": "WARNING"},  # one line per request of the API client otherwise
        },
    }


def configure(log_format: LogFormat = "json", level: str = "INFO") -> None:
    """Set up logging for this process: stdlib and structlog loggers alike write through `formatter`."""
    logging.config.dictConfig(dict_config(log_format, level))
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- the API's access log, formatted directly ---------------------------------------------------------------

_STAMP = structlog.processors.TimeStamper(fmt="iso", utc=True)


def access_line(method: str, path: str, route: str, status: int, duration_ms: float) -> str:
    """The API's access line (logger `agensium.access`) exactly as `formatter("json")` writes the record
    `access_log.info("%s %s %d %.1f ms", ..., extra={method, route, status, duration_ms})`: the same keys in the same
    order (event, the bound context, level, logger, the extra fields, timestamp), redacted the same way, without a
    LogRecord and the formatter's processor chain (a tenth of the API's time per request under load)."""
    event: dict[str, Any] = {"event": f"{method} {path} {status} {duration_ms:.1f} ms"}
    for key, value in structlog.contextvars.get_contextvars().items():
        event.setdefault(key, value)
    event.setdefault("level", "info")
    event.setdefault("logger", "agensium.access")
    event.update(method=method, route=route, status=status, duration_ms=duration_ms)
    stamped = _STAMP(None, "info", event)
    return json.dumps(stamped if _nothing_to_redact(stamped) else redact(None, "info", stamped))


_SCALARS = (str, int, float, bool, type(None))


def _nothing_to_redact(event: Mapping[str, Any]) -> bool:
    """Whether :func:`redact` would leave ``event`` as it is: no secret-named field, no nested value, and no text
    that a secret pattern might match (one search over all of it: no suspect word spans a line break)."""
    texts: list[str] = []
    for key, value in event.items():
        if key.lower() in SECRET_FIELDS or not isinstance(value, _SCALARS):
            return False
        if isinstance(value, str):
            texts.append(value)
    return not _suspect("\n".join(texts))


def json_line_writer(logger: logging.Logger) -> Callable[[str], None] | None:
    """A function writing a finished JSON line to every handler an INFO record of `logger` would reach, when every
    one of them is a plain stream handler formatting with `formatter("json")` and nothing on the way filters; else
    None (console format, a test's capture handler, a filter...): then log the record the usual way."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        handlers += [h for h in current.handlers if h.level <= logging.INFO]
        current = current.parent if current.propagate else None
    streams: list[logging.StreamHandler[Any]] = []
    for handler in handlers:
        if type(handler) is not logging.StreamHandler or handler.filters or handler.terminator != "\n":
            return None
        if getattr(handler.formatter, "agensium_log_format", None) != "json":
            return None
        streams.append(handler)
    if not streams:
        return None
    pending: list[str] = []

    def flush() -> None:
        text = "".join(pending)
        pending.clear()
        for handler in streams:
            with handler.lock or contextlib.nullcontext(), contextlib.suppress(OSError, ValueError):
                handler.stream.write(text)
                handler.stream.flush()

    def write(line: str) -> None:
        """Lines written in one turn of the event loop go out together at its end: one write(2) for the requests
        that turn finished instead of one each (without a running loop, at once)."""
        pending.append(line + "\n")
        if len(pending) > 1:
            return
        try:
            asyncio.get_running_loop().call_soon(flush)
        except RuntimeError:
            flush()

    return write
