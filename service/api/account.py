"""The caller's account routes of API.md: the credit ledger (GET /api/v1/me/ledger)."""

from __future__ import annotations

import re

from starlette.requests import Request

from service.api.http import JSON, bad_cursor, query_int, reject_unknown_params
from service.models import ledger_entry

LEDGER_CURSOR_PATTERN = r"^[1-9][0-9]{0,17}$"  # OpenAPI documents it: every string it admits is a cursor
_LEDGER_CURSOR = re.compile(LEDGER_CURSOR_PATTERN)


def _encode_cursor(entry_id: int) -> str:
    return str(entry_id)


def _decode_cursor(cursor: str) -> int:
    """The id the next page starts below; 422 for anything this API did not hand out."""
    if _LEDGER_CURSOR.fullmatch(cursor) is None:
        raise bad_cursor()
    return int(cursor)


async def ledger(request: Request) -> JSON:
    """The caller's ledger lines, newest first, `limit` per page; `next_cursor` is null on the last page."""
    user = await request.app.state.auth.authenticate(request)
    reject_unknown_params(request, {"limit", "cursor"})
    limit = query_int(request, "limit", 50, 1, 200)
    cursor = request.query_params.get("cursor")
    rows = await request.app.state.core.store.list_ledger(
        user.user_id, before_id=_decode_cursor(cursor) if cursor is not None else None, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]["id"]) if len(rows) > limit else None
    return JSON({"items": [ledger_entry(r) for r in page], "next_cursor": next_cursor})
