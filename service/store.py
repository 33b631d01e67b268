"""TaskStore: the only code that speaks SQL. Queries live in sql/queries.sql, migrations in sql/migrations."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from pydantic_core import PydanticSerializationError, from_json, to_json

from service.models import TERMINAL_STATUSES, iso_utc, task_view

log = logging.getLogger("agensium.store")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"

# The database is away (down, restarting, out of connections): the API answers 503, workers retry.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    ConnectionError,
    TimeoutError,
)
_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(path: Path = SQL_DIR / "queries.sql") -> dict[str, str]:
    text = path.read_text()
    parts = _NAME_LINE.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


# The task object of API.md (models.task_view without `credits`) built in SQL from a `tasks` row `t`: the events'
# payload of a one-statement transition. Written into the statement (a function is planned again on every call).
TASK_VIEW_SQL = """jsonb_build_object(
    'task_id', t.id::text, 'tool_id', t.tool_id, 'agents', to_jsonb(t.agents), 'status', t.status,
    'priority', t.priority, 'progress', t.progress, 'current_agent', t.current_agent, 'message', t.message,
    'error', t.error, 'attempts', t.attempts, 'cached', t.cached, 'source_task_id', t.source_task_id::text,
    'labels', t.labels,
    'inputs', CASE jsonb_typeof(t.inputs) WHEN 'array' THEN coalesce((
        SELECT jsonb_agg(
            jsonb_build_object(
                'name', i -> 'name', 'role', i -> 'role', 'display_name', i -> 'display_name', 'size', i -> 'size'
            ) ORDER BY n
        )
        FROM jsonb_array_elements(t.inputs) WITH ORDINALITY AS e(i, n)
        WHERE (i ->> 'role') IS DISTINCT FROM 'parameters'
    ), '[]'::jsonb) ELSE '[]'::jsonb END,
    'created_at', iso_utc(t.created_at), 'upload_started_at', iso_utc(t.upload_started_at),
    'queued_at', iso_utc(t.queued_at), 'started_at', iso_utc(t.started_at), 'finished_at', iso_utc(t.finished_at),
    'expires_at', iso_utc(t.expires_at)
)"""

# A transition query (an UPDATE of one task ... RETURNING *) with its status (+ done) events in the same statement:
# one round trip. The user's SESSION-level event lock (query insert_events) is taken before the events' ids are
# drawn and released by unlock_user_events once they are published, as a transaction's events are. The row comes
# with its events' payload (`event_view`, published as stored) and the user's balance (`user_credits`, as the
# statement began): a claimed run checks it without another round trip.
_AT_ONCE = """WITH moved AS (
{update}
), locked AS (
    SELECT pg_advisory_lock(hashtextextended(m.user_id::text, 0)) FROM moved m
), viewed AS (
    SELECT t.id, t.user_id, t.status, {view} AS view FROM moved t
), logged AS (
    INSERT INTO task_events (task_id, user_id, type, payload)
    SELECT v.id, v.user_id, k.type, v.view
    FROM locked, viewed v, unnest(
        CASE WHEN v.status IN ({terminal}) THEN ARRAY['status', 'done'] ELSE ARRAY['status'] END
    ) WITH ORDINALITY AS k(type, position)
    ORDER BY k.position
    RETURNING id
)
SELECT moved.*, ARRAY(SELECT id FROM logged ORDER BY id) AS event_ids, (SELECT view FROM viewed) AS event_view,
       (SELECT credits FROM users WHERE users.id = moved.user_id) AS user_credits
FROM moved"""


def at_once_transitions(queries: dict[str, str]) -> dict[str, str]:
    """The one-statement form of every query that is a single `UPDATE tasks ... RETURNING *` (by name); the others
    (a query with data-modifying CTEs of its own cannot be nested) take a transaction."""
    terminal = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
    forms = {}
    for name, sql in queries.items():
        lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
        update = "\n".join(lines).strip().removesuffix(";").rstrip()
        if re.match(r"UPDATE tasks\b", update) and update.endswith("RETURNING *") and ";" not in update:
            forms[name] = _AT_ONCE.format(update=update, view=TASK_VIEW_SQL, terminal=terminal)
    return forms


def hash_api_key(api_key: str) -> bytes:
    # Keys are 256-bit random tokens, so a fast hash is enough (as for GitHub or Stripe tokens).
    return hashlib.sha256(api_key.encode()).digest()


def new_api_key() -> str:
    return "agk_" + secrets.token_urlsafe(32)


def _encode_json(value: Any) -> str:
    """jsonb's text. PostgreSQL cannot store a NUL character: requests with one are refused (422), and one that
    comes out of a user's data (a result's top values, a parameter echoed from parameters.json) is stored as
    U+FFFD instead of failing the task. JSON has no infinity nor NaN (a profile's maximum of a column holding
    `inf`): stored as null, as the JSON report writes them (agents.reports.sheets.finite)."""
    text = to_json(value, inf_nan_mode="null").decode()
    if "\\u0000" in text:
        text = to_json(_without_nul(value), inf_nan_mode="null").decode()
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_encode_json, decoder=from_json, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: our connections never change session state (no SET, no LISTEN, only
    transaction-scoped advisory locks), so skip asyncpg's RESET ALL round trip on every release.
    asyncpg still rolls back a transaction left open."""


async def apply_migrations(dsn: str, migrations_dir: Path = SQL_DIR / "migrations") -> list[str]:
    """Apply pending sql/migrations/NNN_name.sql files in order; returns the names applied."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock(715517)")  # one migrator at a time
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for path in sorted(await asyncio.to_thread(lambda: list(migrations_dir.glob("[0-9][0-9][0-9]_*.sql")))):
            if path.stem in done:
                continue
            sql = await asyncio.to_thread(path.read_text)
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.stem)
            applied.append(path.stem)
        return applied
    finally:
        await conn.close()


@dataclass(frozen=True)
class Event:
    id: int
    task_id: str
    user_id: str
    type: str
    payload: dict[str, Any]

    def to_message(self, **extra: Any) -> str:
        """The pub/sub message; `extra` rides along (the publisher's `committed_at`, for the lag metric). Infinity
        and NaN as null, as stored (_encode_json): a browser's JSON.parse refuses them."""
        message = {
            "id": self.id,
            "task_id": self.task_id,
            "user_id": self.user_id,
            "type": self.type,
            "payload": self.payload,
            **extra,
        }
        try:
            return to_json(message, inf_nan_mode="null").decode()
        except PydanticSerializationError:  # a lone surrogate (not from the database): escaped as json.dumps does
            return json.dumps(message)


class Publish(Protocol):
    """Publishes a transaction's events, in order, once they are committed (service/events.py EventPublisher)."""

    async def __call__(self, *events: Event) -> None: ...


# A run's progress as set_progress takes it: (percent, current agent, message, job id or None).
ProgressUpdate = tuple[int, str | None, str, str | None]


@dataclass(frozen=True)
class Transition:
    """Outcome of a conditional state change: the new row, or the status that refused it."""

    row: asyncpg.Record | None
    current_status: str | None  # None with row None: the task does not exist (for this user)
    # (task id, job id, priority) of the user's tasks the transition's `dispatch` gave jobs to; None when it made none
    dispatched: list[tuple[str, str, str]] | None = None


@dataclass(frozen=True)
class NewTask:
    """A task to create (TaskStore.insert_task, insert_task_under_cap)."""

    user_id: str
    tool_id: str
    agents: list[str]
    priority: str
    parameters: dict[str, Any] | None
    source_task_id: str | None
    labels: dict[str, str]
    idempotency_key: str | None
    upload_ttl_s: int
    request_hash: bytes | None = None

    def insert_args(self) -> tuple[Any, ...]:
        """insert_task's parameters $1-$11 (insert_task_under_cap takes the same, then the cap), with a new task id."""
        return (
            uuid.uuid4(),
            uuid.UUID(self.user_id),
            self.tool_id,
            self.agents,
            self.priority,
            self.parameters,
            uuid.UUID(self.source_task_id) if self.source_task_id else None,
            self.labels,
            self.idempotency_key,
            float(self.upload_ttl_s),
            self.request_hash,
        )


class TaskStore:
    def __init__(self, pool: asyncpg.Pool, queries: dict[str, str]) -> None:
        self.pool = pool
        self.q = queries
        self.at_once = at_once_transitions(queries)

    @classmethod
    async def connect(cls, dsn: str, min_size: int = 2, max_size: int = 10) -> TaskStore:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
        )
        return cls(pool, load_queries())

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    # --- users ---------------------------------------------------------------------------------

    async def create_user(self, name: str, is_admin: bool = False, credits: int = 0) -> tuple[str, str]:
        """Returns (user_id, api_key); only the key's hash is stored."""
        api_key = new_api_key()
        user_id = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self.q["create_user"], user_id, name, hash_api_key(api_key), is_admin, credits)
            if credits:
                await conn.execute(
                    self.q["record_ledger"], user_id, None, None, credits, credits, "grant", "grant", None
                )
        return str(user_id), api_key

    async def user_by_api_key(self, api_key: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(self.q["user_by_key_hash"], hash_api_key(api_key))

    async def get_user(self, user_id: str) -> asyncpg.Record | None:
        """The user, or None when there is none or it is disabled."""
        return await self.pool.fetchrow(self.q["get_user"], uuid.UUID(user_id))

    async def list_users(self) -> list[asyncpg.Record]:
        """Every user, disabled ones too (disabled_at set), oldest first."""
        return await self.pool.fetch(self.q["list_users"])

    async def find_users(self, name_or_id: str) -> list[asyncpg.Record]:
        """The users, disabled ones too, named `name_or_id` or whose id it is (names need not be unique)."""
        return await self.pool.fetch(self.q["find_users"], _uuid_or_none(name_or_id), name_or_id)

    async def rotate_api_key(self, user_id: str) -> str | None:
        """A new API key for the user (the old one no longer matches, in every API process at once: see
        listen_user_changes); None when there is no such user."""
        api_key = new_api_key()
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(self.q["set_api_key_hash"], uuid.UUID(user_id), hash_api_key(api_key))
            await conn.execute(self.q["notify_user_changed"], user_id)
        return api_key if updated is not None else None

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        """Disable a user (its key and stream tokens are refused, in every API process at once) or enable it
        again; False: no such user."""
        query = self.q["disable_user" if disabled else "enable_user"]
        async with self.pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(query, uuid.UUID(user_id)) is not None
            await conn.execute(self.q["notify_user_changed"], user_id)
        return changed

    async def grant_credits(self, user_id: str, amount: int, reason: str = "grant") -> int | None:
        """Add `amount` (> 0) credits with a grant line in the ledger; the new balance, None: no such user."""
        if amount <= 0:
            raise ValueError("a grant is a positive number of credits")
        uid = uuid.UUID(user_id)
        async with self.pool.acquire() as conn, conn.transaction():
            balance = await conn.fetchval(self.q["credit_user"], uid, amount)
            if balance is None:
                return None
            await conn.execute(self.q["record_ledger"], uid, None, None, amount, balance, reason, "grant", None)
            return int(balance)

    async def list_ledger(self, user_id: str, *, before_id: int | None, limit: int) -> list[asyncpg.Record]:
        """The user's ledger lines newest first, those older than line `before_id` when given."""
        return await self.pool.fetch(self.q["list_ledger"], uuid.UUID(user_id), before_id, limit)

    async def debit_credits(
        self, user_id: str, task_id: str, costs: Sequence[tuple[str, int]], attempt: int
    ) -> int | None:
        """Debit every (agent_id, cost) of run `attempt` of the task in one transaction; None (nothing debited)
        if the balance is short."""
        total = sum(cost for _, cost in costs)
        uid, tid = uuid.UUID(user_id), uuid.UUID(task_id)
        async with self.pool.acquire() as conn, conn.transaction():
            balance = await conn.fetchval(self.q["debit_credits"], uid, total)
            if balance is None:
                return None
            running = balance + total
            for agent_id, cost in costs:
                running -= cost
                await conn.execute(
                    self.q["record_ledger"], uid, tid, agent_id, -cost, running, "agent run", "debit", attempt
                )
            return int(balance)

    async def debit_agent(self, user_id: str, task_id: str, agent_id: str, cost: int, attempt: int) -> str:
        """Debit one agent of run `attempt` of a task as it starts: "debited" (now, or by an earlier try of this
        same debit), "short" (the balance is below `cost`: nothing debited) or "gone" (the run no longer holds
        the task: cancelled or re-queued meanwhile; nothing debited)."""
        try:
            row = await self.pool.fetchrow(
                self.q["debit_agent"], uuid.UUID(user_id), uuid.UUID(task_id), agent_id, cost, attempt
            )
        except asyncpg.UniqueViolationError:  # the same debit, committed while this one waited for the user's row
            return "debited"
        if not row["holds"]:
            return "gone"
        if row["debited"] or row["balance"] is not None:
            return "debited"
        return "short"

    async def credits(self, user_id: str) -> int | None:
        """The user's balance (disabled or not); None: no such user."""
        value = await self.pool.fetchval(self.q["user_credits"], uuid.UUID(user_id))
        return None if value is None else int(value)

    async def refund_task_credits(self, user_id: str, task_id: str, reason: str, attempt: int) -> int:
        """Give back what run `attempt` of the task was charged (net of its earlier refunds): idempotent, and
        never what another run was charged. Returns the amount."""
        uid, tid = uuid.UUID(user_id), uuid.UUID(task_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchval(self.q["lock_user_credits"], uid)
            owed = -int(await conn.fetchval(self.q["task_credit_net"], tid, attempt))
            if owed <= 0:
                return 0
            balance = await conn.fetchval(self.q["credit_user"], uid, owed)
            await conn.execute(self.q["record_ledger"], uid, tid, None, owed, balance, reason, "refund", attempt)
            return owed

    async def refund_agent_credits(self, user_id: str, task_id: str, agent_id: str, reason: str, attempt: int) -> int:
        """Give back what agent `agent_id` of run `attempt` of the task was charged (net of its earlier refunds), and
        never more than the run still owes (a refund of the whole run, by a cancel or the reaper, may have come
        first): idempotent; a ledger line naming the agent. Returns the amount."""
        uid, tid = uuid.UUID(user_id), uuid.UUID(task_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.fetchval(self.q["lock_user_credits"], uid)
            agent_owed = -int(await conn.fetchval(self.q["agent_credit_net"], tid, attempt, agent_id))
            owed = min(agent_owed, -int(await conn.fetchval(self.q["task_credit_net"], tid, attempt)))
            if owed <= 0:
                return 0
            balance = await conn.fetchval(self.q["credit_user"], uid, owed)
            await conn.execute(self.q["record_ledger"], uid, tid, agent_id, owed, balance, reason, "refund", attempt)
            return owed

    # --- tasks ---------------------------------------------------------------------------------

    async def insert_task(self, new: NewTask) -> tuple[asyncpg.Record, bool]:
        """Insert a CREATED task; returns (row, created). An existing task with the same
        idempotency key is returned with created=False (the caller compares its request_hash).

        A concurrent create with the same key waits on the unique index until the first commits, then
        finds its row; if that task is deleted in between, the key is free again and the insert retried.

        Creation writes no event: nobody can follow a task before it exists, and an event here
        would put every create of a user behind that user's event lock (one commit at a time).
        Streams see a task from its first transition on; the task itself says CREATED."""
        insert_args = new.insert_args()
        while True:
            row = await self.pool.fetchrow(self.q["insert_task"], *insert_args)
            if row is not None:
                return row, True
            earlier = await self.task_by_idempotency_key(new.user_id, new.idempotency_key)
            if earlier is not None:  # idempotency key seen before
                return earlier, False

    async def insert_task_under_cap(self, new: NewTask, cap: int) -> tuple[asyncpg.Record | None, bool, int | None]:
        """insert_task and the cap on unfinished tasks in one statement (one round trip): (row, True, n) for the
        new task; (the earlier task with the same idempotency key, False, n); (None, False, n) when the user has
        `cap` unfinished tasks already. n: the user's unfinished tasks before this one, None for an admin (no cap).
        As with insert_task, a key freed by a delete in between is tried again."""
        insert_args = new.insert_args()
        while True:
            row = await self.pool.fetchrow(self.q["insert_task_under_cap"], *insert_args, cap)
            unfinished = row["unfinished"] if row is not None else None
            if row is not None and row["id"] is not None:
                return row, True, unfinished
            if row is None or new.idempotency_key is None or (unfinished is not None and unfinished >= cap):
                return None, False, unfinished  # at the cap, or nothing inserted for a reason the caller looks into
            earlier = await self.task_by_idempotency_key(new.user_id, new.idempotency_key)
            if earlier is not None:  # idempotency key seen before
                return earlier, False, unfinished

    async def task_by_idempotency_key(self, user_id: str, idempotency_key: str | None) -> asyncpg.Record | None:
        """The task an earlier create of the user made with this Idempotency-Key (with its request_hash)."""
        if idempotency_key is None:
            return None
        return await self.pool.fetchrow(self.q["task_by_idempotency_key"], uuid.UUID(user_id), idempotency_key)

    async def unfinished_tasks(self, user_id: str) -> int | None:
        """How many of the user's tasks are not terminal; None for an admin, to whom no cap applies."""
        return await self.pool.fetchval(self.q["unfinished_tasks"], uuid.UUID(user_id))

    async def get_task(self, task_id: str, user_id: str | None = None) -> asyncpg.Record | None:
        tid = _uuid_or_none(task_id)
        if tid is None:
            return None
        if user_id is None:
            return await self.pool.fetchrow(self.q["get_task_by_id"], tid)
        return await self.pool.fetchrow(self.q["get_task"], tid, uuid.UUID(user_id))

    async def get_task_view(self, task_id: str, user_id: str) -> asyncpg.Record | None:
        tid = _uuid_or_none(task_id)
        if tid is None:
            return None
        return await self.pool.fetchrow(self.q["get_task_view"], tid, uuid.UUID(user_id))

    async def get_task_result(self, task_id: str, user_id: str) -> asyncpg.Record | None:
        tid = _uuid_or_none(task_id)
        if tid is None:
            return None
        return await self.pool.fetchrow(self.q["get_task_result"], tid, uuid.UUID(user_id))

    async def task_dataset(self, task_id: str, user_id: str) -> asyncpg.Record | None:
        """(status, artifacts_deleted, dataset) of the user's task: `dataset` its dataset version's recorded schema,
        None when not recorded."""
        tid = _uuid_or_none(task_id)
        if tid is None:
            return None
        return await self.pool.fetchrow(self.q["task_dataset"], tid, uuid.UUID(user_id))

    async def task_lineage(self, task_id: str, user_id: str, max_depth: int) -> list[asyncpg.Record]:
        """The user's task and its ancestors (source_task_id), root first and the task last, at most `max_depth`
        links up, in one recursive query; [] when the user has no such task."""
        tid = _uuid_or_none(task_id)
        if tid is None:
            return []
        return await self.pool.fetch(self.q["task_lineage"], tid, uuid.UUID(user_id), max_depth)

    async def task_children(self, task_id: str, user_id: str) -> list[asyncpg.Record]:
        """The user's tasks chained on this one (source_task_id), oldest first."""
        tid = _uuid_or_none(task_id)
        if tid is None:
            return []
        return await self.pool.fetch(self.q["task_children"], tid, uuid.UUID(user_id))

    async def list_tasks(
        self,
        user_id: str,
        *,
        statuses: list[str] | None,
        tool_id: str | None,
        labels: dict[str, str] | None,
        after: tuple[Any, str] | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        created_at, after_id = after if after else (None, None)
        return await self.pool.fetch(
            self.q["list_tasks"],
            uuid.UUID(user_id),
            statuses,
            tool_id,
            labels,
            created_at,
            uuid.UUID(after_id) if after_id else None,
            limit,
        )

    async def transition(
        self,
        query: str,
        task_id: str,
        args: Sequence[Any],
        publish: Publish,
        user_id: str | None = None,
        *,
        progress: ProgressUpdate | None = None,
        dispatch: tuple[int, dict[str, float]] | None = None,
    ) -> Transition:
        """Run one conditional UPDATE ... RETURNING * by name with its status (+ done) event in the
        same transaction. `args` follow the task id (and the user id when the query takes one).

        `dispatch` (the cap and head starts of `dispatch_user`): once the transition's events are published, the
        statement that releases the user's event lock also dispatches the user's waiting tasks (query
        unlock_and_dispatch: one round trip less); `dispatched` says which. Only a one-statement transition that
        moved its task does it: otherwise `dispatched` is None and the caller dispatches.

        `progress`: a run's last progress, written first in the same transaction, as `set_progress` writes it
        (its event before the status event): one transaction instead of two at the end of a run. It is
        written, or not, as `set_progress` would; when the transition itself is refused it is kept alone."""
        tid = _uuid_or_none(task_id)
        if tid is None:
            return Transition(None, None)
        uid = uuid.UUID(user_id) if user_id else None
        params = (tid, uid, *args) if uid else (tid, *args)
        if progress is None and query in self.at_once:
            return await self._transition_at_once(self.at_once[query], tid, uid, params, publish, dispatch)
        status: str | None = None
        async with self.pool.acquire() as conn:
            events: list[Event] = []
            locked: uuid.UUID | None = None
            try:
                async with conn.transaction():
                    pending: list[tuple[str, dict[str, Any]]] = []
                    if progress is not None:
                        written = await self._write_progress(conn, tid, task_id, progress)
                        if written is not None:
                            locked, payload = written
                            pending.append(("progress", payload))
                    row = await conn.fetchrow(self.q[query], *params)
                    if row is None:
                        status = await conn.fetchval(self.q["task_status"], tid, uid)
                        if locked is not None:  # the progress stands alone, as set_progress would have written it
                            events = await self._insert_events(conn, locked, tid, pending)
                    else:
                        view = task_view(row)
                        locked = row["user_id"]
                        kinds = ("status", "done") if row["status"] in TERMINAL_STATUSES else ("status",)
                        pending.extend((kind, view) for kind in kinds)
                        events = await self._insert_events(conn, locked, tid, pending)
                await self._publish(events, publish)
            finally:
                await self._unlock_events(conn, locked)
            if row is None:
                return Transition(None, status)
            return Transition(row, row["status"])

    async def _transition_at_once(
        self,
        sql: str,
        tid: uuid.UUID,
        uid: uuid.UUID | None,
        params: Sequence[Any],
        publish: Publish,
        dispatch: tuple[int, dict[str, float]] | None = None,
    ) -> Transition:
        """`transition` in one statement (at_once_transitions): the same row, events and publishing. A cancel waits
        for it: once sent, the statement may commit whatever the caller does (a cancel request can come too late),
        and what committed is published and its lock released before the cancel goes on."""
        work = asyncio.ensure_future(self._at_once(sql, tid, uid, params, publish, dispatch))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            await asyncio.wait({work})
            if not work.cancelled():
                work.exception()  # retrieved: its error, if any, goes no further than the cancel
            raise

    async def _at_once(
        self,
        sql: str,
        tid: uuid.UUID,
        uid: uuid.UUID | None,
        params: Sequence[Any],
        publish: Publish,
        dispatch: tuple[int, dict[str, float]] | None = None,
    ) -> Transition:
        async with self.pool.acquire() as conn:
            try:
                row = await conn.fetchrow(sql, *params)
            except BaseException:  # it may have taken the user's event lock: the connection never goes back
                conn.terminate()
                raise
            if row is None:
                return Transition(None, await conn.fetchval(self.q["task_status"], tid, uid))
            try:  # the payload stored is the payload published: no code between the commit and the publish
                view = row["event_view"]
                kinds = ("status", "done") if row["status"] in TERMINAL_STATUSES else ("status",)
                events = [
                    Event(i, str(tid), str(row["user_id"]), kind, view)
                    for i, kind in zip(row["event_ids"], kinds, strict=True)
                ]
                await self._publish(events, publish)
            except BaseException:
                await self._unlock_events(conn, row["user_id"])
                raise
            if dispatch is None:
                await self._unlock_events(conn, row["user_id"])
                return Transition(row, row["status"])
            dispatched = await self._unlock_and_dispatch(conn, row["user_id"], *dispatch)
        return Transition(row, row["status"], dispatched)

    async def _unlock_and_dispatch(
        self, conn: asyncpg.Connection, user_id: uuid.UUID, cap: int, head_start_s: dict[str, float]
    ) -> list[tuple[str, str, str]] | None:
        """`_unlock_events`, then `dispatch_user`, in one statement (query unlock_and_dispatch). When it fails the
        connection is dropped, which releases the lock, and None says the dispatch is still to be made: the
        transition stands whatever this statement does."""
        try:
            rows = await conn.fetch(self.q["unlock_and_dispatch"], user_id, cap, head_start_s)
        except Exception as exc:  # noqa: BLE001 - the transition is committed: the caller dispatches instead
            conn.terminate()
            log.warning("unlock and dispatch of user %s failed (%s); dispatching apart", user_id, exc)
            return None
        except BaseException:
            conn.terminate()
            raise
        return [(str(r["id"]), r["job_id"], r["priority"]) for r in rows]

    # --- result cache (service/cache.py) -----------------------------------------------------------

    async def set_own_copies(self, task_id: str, copy_from: str, outputs: list[dict[str, Any]]) -> bool:
        """The cache hit's own copies replace the outputs it took from task `copy_from`; False when it is gone or
        another call made them first."""
        row = await self.pool.fetchval(self.q["set_own_copies"], uuid.UUID(task_id), uuid.UUID(copy_from), outputs)
        return row is not None

    async def pending_copies(self, user_id: str, task_id: str) -> list[asyncpg.Record]:
        """(id, outputs) of the user's cache hits whose outputs are still task `task_id`'s stored objects."""
        return await self.pool.fetch(self.q["pending_copies"], uuid.UUID(user_id), uuid.UUID(task_id))

    async def cache_hit_to_copy(self, task_id: str) -> asyncpg.Record | None:
        """(id, user_id, copy_from, outputs) of cache hit `task_id` while its own copies are not made; else None."""
        tid = _uuid_or_none(task_id)
        return None if tid is None else await self.pool.fetchrow(self.q["cache_hit_to_copy"], tid)

    async def cache_hits_to_copy(self, older_than_s: float, limit: int) -> list[asyncpg.Record]:
        """(id, user_id, copy_from, outputs) of up to `limit` cache hits completed more than `older_than_s` ago
        whose own copies are still not made, oldest first."""
        return await self.pool.fetch(self.q["cache_hits_to_copy"], older_than_s, limit)

    async def complete_from_cache(
        self,
        task_id: str,
        user_id: str,
        args: Sequence[Any],
        message: str,
        reason: str,
        identities: dict[str, Any] | None,
        publish: Publish,
    ) -> Transition:
        """A cache hit, lookup included: the task COMPLETED at once from the user's latest COMPLETED task of its key
        (query complete_from_cache, `args` after the user id) with its `status` and `done` events and, in the same
        statement, a ledger line of kind cache_hit and amount 0 saying which task it reused (`message` and `reason`
        are formats of that task's id), and its uploads' `identities` kept (as mark_queued keeps them). No row on a
        miss: its current status then says whether it is still processable."""
        return await self.transition(
            "complete_from_cache", task_id, [*args, message, reason, identities], publish, user_id
        )

    async def count_cache_hits(self, user_id: str) -> int:
        return int(await self.pool.fetchval(self.q["count_cache_hits"], uuid.UUID(user_id)))

    async def set_progress(
        self,
        task_id: str,
        progress: int,
        current_agent: str | None,
        message: str,
        publish: Publish,
        job_id: str | None = None,
    ) -> bool:
        """Record progress; False when the task is not PROCESSING under job `job_id` (when given)."""
        tid = uuid.UUID(task_id)
        async with self.pool.acquire() as conn:
            events: list[Event] = []
            locked: uuid.UUID | None = None
            try:
                async with conn.transaction():
                    written = await self._write_progress(conn, tid, task_id, (progress, current_agent, message, job_id))
                    if written is None:
                        return False
                    locked, payload = written
                    events = await self._insert_events(conn, locked, tid, [("progress", payload)])
                await self._publish(events, publish)
            finally:
                await self._unlock_events(conn, locked)
            return True

    async def _write_progress(
        self, conn: asyncpg.Connection, tid: uuid.UUID, task_id: str, update: ProgressUpdate
    ) -> tuple[uuid.UUID, dict[str, Any]] | None:
        """The progress row update (query set_progress): (the task's user, the progress event's payload), None when
        the task is not PROCESSING under the job, or the progress would go down."""
        progress, current_agent, message, job_id = update
        row = await conn.fetchrow(self.q["set_progress"], tid, progress, current_agent, message, job_id)
        if row is None:
            return None
        payload = {
            "task_id": task_id,
            "progress": row["progress"],
            "current_agent": current_agent,
            "message": message,
            "at": iso_utc(row["updated_at"]),  # when: a replayed log shows each line's own time
        }
        return row["user_id"], payload

    async def claim_for_delete(self, task_id: str, user_id: str) -> None:
        """Task `task_id`'s files are about to go with it: no task starts reading them from now on (query's doc)."""
        tid = _uuid_or_none(task_id)
        if tid is not None:
            await self.pool.execute(self.q["claim_for_delete"], tid, uuid.UUID(user_id))

    async def delete_task(self, task_id: str, user_id: str, allowed: Sequence[str], publish: Publish) -> Transition:
        """Delete a task in `allowed` with its events, and tell the user's streams in the same transaction: a
        `status` event of the task as it was, with `"deleted": true` (the event names of API.md are fixed;
        the row outlives the task, so a stream that was away replays it). Returns the deleted row and
        "DELETED", or no row and the status that refused."""
        tid = _uuid_or_none(task_id)
        if tid is None:
            return Transition(None, None)
        uid = uuid.UUID(user_id)
        async with self.pool.acquire() as conn:
            events: list[Event] = []
            locked: uuid.UUID | None = None
            try:
                async with conn.transaction():
                    row = await conn.fetchrow(self.q["delete_task"], tid, uid, list(allowed))
                    if row is None:
                        return Transition(None, await conn.fetchval(self.q["task_status"], tid, uid))
                    payload = {**task_view(row), "message": "Deleted", "deleted": True}
                    locked = uid
                    events = await self._insert_events(conn, uid, tid, [("status", payload)])
                await self._publish(events, publish)
            finally:
                await self._unlock_events(conn, locked)
            return Transition(row, "DELETED")

    # --- events --------------------------------------------------------------------------------

    async def _insert_events(
        self,
        conn: asyncpg.Connection,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        events: Sequence[tuple[str, dict[str, Any]]],
    ) -> list[Event]:
        """A transaction's events (type, payload), in order, in one statement that first takes the user's event
        lock (query insert_events)."""
        types, payloads = [type_ for type_, _ in events], [payload for _, payload in events]
        ids = sorted(r["id"] for r in await conn.fetch(self.q["insert_events"], task_id, user_id, types, payloads))
        return [Event(i, str(task_id), str(user_id), t, p) for i, (t, p) in zip(ids, events, strict=True)]

    @staticmethod
    async def _publish(events: list[Event], publish: Publish) -> None:
        if events:  # after COMMIT, still under the user's event lock
            await publish(*events)

    async def _unlock_events(self, conn: asyncpg.Connection, user_id: uuid.UUID | None) -> None:
        """Release the user's event lock (a no-op with a server warning if it was never taken). A
        session lock must never go back to the pool: if the unlock fails, drop the connection."""
        if user_id is None:
            return
        try:
            await conn.execute(self.q["unlock_user_events"], user_id)
        except BaseException:
            conn.terminate()
            raise

    async def task_events_after(self, task_id: str, after_id: int, limit: int = 1000) -> list[Event]:
        rows = await self.pool.fetch(self.q["task_events_after"], uuid.UUID(task_id), after_id, limit)
        return [_event(r, None) for r in rows]

    async def user_events_after(self, user_id: str, after_id: int, limit: int = 1000) -> list[Event]:
        rows = await self.pool.fetch(self.q["user_events_after"], uuid.UUID(user_id), after_id, limit)
        return [_event(r, user_id) for r in rows]

    async def latest_user_event_id(self, user_id: str) -> int:
        return int(await self.pool.fetchval(self.q["latest_user_event_id"], uuid.UUID(user_id)))

    async def task_snapshot_event_ids(self, task_id: str) -> asyncpg.Record:
        return await self.pool.fetchrow(self.q["task_snapshot_event_ids"], uuid.UUID(task_id))

    # --- workers and recovery ------------------------------------------------------------------

    async def worker_heartbeat(self, worker_id: str, host: str, pid: int, running: Sequence[str]) -> set[str]:
        """Register or refresh a worker and the heartbeat of its running tasks; returns the ids that beat
        (a running task missing from them is no longer this worker's: cancelled or re-queued)."""
        task_ids = [tid for tid in map(_uuid_or_none, running) if tid is not None]
        rows = await self.pool.fetch(self.q["worker_heartbeat"], worker_id, task_ids, host, pid)
        return {str(r["id"]) for r in rows}

    async def dispatch_user(self, user_id: str, cap: int, head_start_s: dict[str, float]) -> list[tuple[str, str, str]]:
        """Give jobs to the user's waiting QUEUED tasks up to the running cap; returns (task id, job id,
        priority) of each, for the caller to enqueue."""
        uid = uuid.UUID(user_id)
        rows = await self.pool.fetch(self.q["dispatch_user"], uid, cap, head_start_s)
        return [(str(r["id"]), r["job_id"], r["priority"]) for r in rows]

    async def users_waiting_dispatch(self, limit: int = 500) -> list[str]:
        return [str(r["user_id"]) for r in await self.pool.fetch(self.q["users_waiting_dispatch"], limit)]

    async def list_workers(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(self.q["list_workers"])

    async def deregister_worker(self, worker_id: str) -> None:
        await self.pool.execute(self.q["deregister_worker"], worker_id)

    async def forget_silent_workers(self, silent_s: float) -> list[str]:
        return [r["worker_id"] for r in await self.pool.fetch(self.q["forget_silent_workers"], float(silent_s))]

    async def stale_tasks(self, stale_after_s: float, limit: int = 100) -> list[tuple[str, int, int]]:
        """(task id, attempts, runs since the user last queued it) of PROCESSING tasks whose heartbeat is
        older than `stale_after_s`."""
        rows = await self.pool.fetch(self.q["stale_tasks"], float(stale_after_s), limit)
        return [(str(r["id"]), r["attempts"], r["runs"]) for r in rows]

    async def queued_tasks_to_check(self, older_than_s: float, limit: int = 500) -> list[tuple[str, str | None]]:
        """(task id, job id) of QUEUED tasks whose job was enqueued more than `older_than_s` ago."""
        rows = await self.pool.fetch(self.q["queued_tasks_to_check"], float(older_than_s), limit)
        return [(str(r["id"]), r["job_id"]) for r in rows]

    # --- stats ---------------------------------------------------------------------------------

    async def counts_by_status(self, user_id: str | None) -> dict[str, int]:
        if user_id is None:
            rows = await self.pool.fetch(self.q["count_all_by_status"])
        else:
            rows = await self.pool.fetch(self.q["count_by_status"], uuid.UUID(user_id))
        return {r["status"]: r["n"] for r in rows}

    async def counts_by_tool_and_status(self) -> list[tuple[str, str, int]]:
        """(tool id, status, tasks) over all users."""
        rows = await self.pool.fetch(self.q["count_all_by_tool_and_status"])
        return [(r["tool_id"], r["status"], r["n"]) for r in rows]

    async def queued_by_priority(self) -> dict[str, dict[str, int]]:
        """Per priority: QUEUED tasks, and how many of them wait for their user's running cap."""
        rows = await self.pool.fetch(self.q["queued_by_priority"])
        return {r["priority"]: {"queued": r["n"], "waiting_for_user_cap": r["waiting"]} for r in rows}

    async def processing_health(self, stale_after_s: float) -> dict[str, int]:
        row = await self.pool.fetchrow(self.q["processing_health"], float(stale_after_s))
        return {"running": row["running"], "stuck": row["stuck"]}

    # --- maintenance ---------------------------------------------------------------------------

    async def tasks_to_expire(self, limit: int) -> list[str]:
        """Ids of CREATED/UPLOADING tasks past their upload deadline, earliest deadline first."""
        return [str(r["id"]) for r in await self.pool.fetch(self.q["tasks_to_expire"], limit)]

    async def claim_artifacts_to_delete(self, retention_s: float, lease_s: float, limit: int) -> list[tuple[str, str]]:
        """(task id, user id) of terminal tasks finished more than `retention_s` ago whose stored objects are
        still there, leased for `lease_s` to the caller: racing callers get different tasks."""
        rows = await self.pool.fetch(self.q["claim_artifacts_to_delete"], float(retention_s), float(lease_s), limit)
        return [(str(r["id"]), str(r["user_id"])) for r in rows]

    async def mark_artifacts_deleted(self, task_id: str, retention_s: float) -> bool:
        """Flag a claimed task's objects as deleted; False when it ran again since (or is gone)."""
        row = await self.pool.fetchval(self.q["mark_artifacts_deleted"], uuid.UUID(task_id), float(retention_s))
        return row is not None


USER_CHANGES_CHANNEL = "agensium_users"  # notify_user_changed
_LISTENER_FAULTS: tuple[type[BaseException], ...] = (*DATABASE_UNAVAILABLE, OSError)


async def listen_user_changes(dsn: str, on_change: Callable[[str], None], retry_s: float = 2.0) -> None:
    """Call `on_change(user_id)` for every user whose key or access changes (rotate-key, disable), on a
    LISTEN connection of its own, reconnecting after `retry_s` whenever it is lost; runs until cancelled. A
    change missed while disconnected is covered by the auth cache's TTL."""
    while True:
        lost = asyncio.Event()
        try:
            conn = await asyncpg.connect(dsn)
        except _LISTENER_FAULTS as exc:
            log.warning("user-change listener: cannot connect (%s); retrying in %.0f s", exc, retry_s)
            await asyncio.sleep(retry_s)
            continue
        try:
            conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await conn.add_listener(USER_CHANGES_CHANNEL, lambda _c, _pid, _channel, payload: on_change(payload))
            await lost.wait()
            log.warning("user-change listener: connection lost; reconnecting")
        except _LISTENER_FAULTS as exc:
            log.warning("user-change listener failed (%s); reconnecting in %.0f s", exc, retry_s)
            await asyncio.sleep(retry_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=1))


def _event(row: asyncpg.Record, user_id: str | None) -> Event:
    return Event(row["id"], str(row["task_id"]), user_id or "", row["type"], row["payload"])


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
