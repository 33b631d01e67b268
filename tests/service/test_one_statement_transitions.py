"""A transition and its events in one statement (service/store.py at_once_transitions, migration 013): the events
stored are the events published, the SQL task object equals models.task_view, and a user's events still commit and
go out in id order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.models import iso_utc, task_view
from service.store import TASK_VIEW_SQL, Event, TaskStore, at_once_transitions, load_queries
from tests.support import task_spec

ON_THE_SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, *events: Event) -> None:
        self.events.extend(events)


def test_every_single_update_of_a_task_has_a_one_statement_form() -> None:
    forms = at_once_transitions(load_queries())
    expected = {"mark_uploading", "record_input", "mark_queued", "claim_job", "complete_task", "fail_task"}
    expected |= {"cancel_task", "requeue_task", "expire_task", "fail_stale_task", "requeue_stale_task"}
    assert expected <= set(forms)
    assert "complete_from_cache" not in forms, "a query with CTEs of its own cannot be nested: a transaction"


async def _stored_payloads(store: TaskStore, user_id: str) -> dict[int, dict]:
    return {e.id: e.payload for e in await store.user_events_after(user_id, 0)}


@ON_THE_SESSION_LOOP
async def test_the_events_stored_are_the_events_published(store: TaskStore) -> None:
    user_id, _ = await store.create_user("one-statement")
    rec = Recorder()
    source, _ = await store.insert_task(task_spec(user_id))
    labels = {"project": "Zürich ✓", "nested": {"a": [1, 2.5, None, True]}, "quote": 'say "hi"\n'}
    row, _ = await store.insert_task(task_spec(user_id, labels=labels, source_task_id=str(source["id"])))
    task_id = str(row["id"])
    inputs = [
        {"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 3, "display_name": "Q1 é.csv"},
        {"name": "parameters.json", "role": "parameters", "content_type": "application/json", "size": 2},
        {"name": "baseline.csv", "role": "baseline", "content_type": "text/csv", "size": 12345678901},
    ]
    moved = await store.transition("mark_uploading", task_id, [inputs, True, ["CREATED"]], rec, user_id)
    assert moved.row is not None
    record = {"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 4, "sha256": "ab"}
    assert (await store.transition("record_input", task_id, [record, ["UPLOADING"], []], rec, user_id)).row is not None
    assert (await store.transition("mark_queued", task_id, [["UPLOADING"], None, None, None], rec, user_id)).row
    [(_, job_id, _)] = await store.dispatch_user(user_id, 5, {})
    assert (await store.transition("claim_job", task_id, ["w1", job_id], rec)).row is not None
    requeued = await store.transition("requeue_task", task_id, ["job-2", job_id, "again", False, 0.0], rec)
    assert requeued.row is not None
    assert (await store.transition("claim_job", task_id, ["w2", "job-2"], rec)).row is not None
    error = {"code": "INVALID_FILE", "message": "Ligne 3: «;» attendu\twith a tab"}
    failed = await store.transition("fail_task", task_id, [error, ["PROCESSING"], None], rec)
    assert failed.row is not None and failed.row["status"] == "FAILED"

    other, _ = await store.insert_task(task_spec(user_id))
    cancelled = await store.transition("cancel_task", str(other["id"]), [["CREATED"]], rec, user_id)
    assert cancelled.row is not None

    stored = await _stored_payloads(store, user_id)
    assert [e.type for e in rec.events] == ["status"] * 6 + ["status", "done", "status", "done"]
    for event in rec.events:
        assert stored[event.id] == event.payload, event.type
    assert rec.events[-3].payload == task_view(failed.row)
    assert sorted(rec.events[-3].payload["inputs"], key=lambda i: i["name"]) == [
        {"name": "baseline.csv", "role": "baseline", "display_name": None, "size": 12345678901},
        {"name": "primary.csv", "role": "primary", "display_name": None, "size": 4},  # as record_input wrote it
    ], "the parameters are not an input of the task object"
    assert rec.events[0].payload["inputs"][0]["display_name"] == "Q1 é.csv"
    assert rec.events[-3].payload["source_task_id"] == str(source["id"])


@ON_THE_SESSION_LOOP
async def test_the_sql_task_object_equals_task_view_for_every_row(store: TaskStore) -> None:
    """Over every task the session's tests left in the database, whatever their state (and one of its own)."""
    user_id, _ = await store.create_user("views")
    await store.insert_task(task_spec(user_id, labels={"k": ["ä", 1, {"x": None}]}))
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {TASK_VIEW_SQL} AS sql_view, t.* FROM tasks t")
    for row in rows:
        assert row["sql_view"] == task_view(row)


@ON_THE_SESSION_LOOP
async def test_timestamps_are_written_as_iso_utc_writes_them(store: TaskStore) -> None:
    base = datetime(2026, 12, 7, 11, 59, 59, tzinfo=UTC)
    moments = [base, base + timedelta(microseconds=1), base + timedelta(microseconds=500000), base.replace(year=1999)]
    moments.append(datetime(2026, 3, 29, 3, 0, tzinfo=UTC) + timedelta(microseconds=123456))
    async with store.pool.acquire() as conn:
        for zone in ("UTC", "Europe/Paris", "America/St_Johns"):  # the session's zone does not matter
            await conn.execute(f"SET TIME ZONE '{zone}'")
            for moment in moments:
                assert await conn.fetchval("SELECT iso_utc($1)", moment) == iso_utc(moment), (zone, moment)
        await conn.execute("RESET TIME ZONE")


@ON_THE_SESSION_LOOP
@pytest.mark.usefixtures("no_background_recovery")  # its own dispatch must find every task still waiting
async def test_concurrent_transitions_of_one_user_go_out_in_id_order(store: TaskStore) -> None:
    user_id, _ = await store.create_user("many-at-once")
    rec = Recorder()
    task_ids = [str((await store.insert_task(task_spec(user_id)))[0]["id"]) for _ in range(12)]
    for task_id in task_ids:
        inputs = [{"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 3}]
        await store.transition("mark_uploading", task_id, [inputs, False, ["CREATED"]], rec, user_id)
    rec.events.clear()
    await asyncio.gather(
        *(store.transition("mark_queued", t, [["UPLOADING"], None, None, None], rec, user_id) for t in task_ids),
        *(store.set_progress(t, 5, "a", "m", rec) for t in task_ids),  # no row moves: PROCESSING only
    )
    jobs = dict((t, j) for t, j, _ in await store.dispatch_user(user_id, 100, {}))
    await asyncio.gather(*(store.transition("claim_job", t, ["w", jobs[t]], rec) for t in task_ids))
    await asyncio.gather(
        *(store.transition("complete_task", t, [[], {}, "ok", None, None], rec) for t in task_ids),
        *(store.set_progress(t, 50, "a", "half", rec) for t in task_ids),
    )
    ids = [e.id for e in rec.events]
    assert ids == sorted(ids), "publish order follows id order within a user"
    assert [e.id for e in await store.user_events_after(user_id, ids[0] - 1)] == ids
    assert sum(e.type == "done" for e in rec.events) == 12


@ON_THE_SESSION_LOOP
async def test_a_refused_transition_takes_no_lock_and_says_why(store: TaskStore) -> None:
    user_id, _ = await store.create_user("refused")
    rec = Recorder()
    row, _ = await store.insert_task(task_spec(user_id))
    refused = await store.transition("claim_job", str(row["id"]), ["w", "no-such-job"], rec)
    assert refused.row is None and refused.current_status == "CREATED" and rec.events == []
    missing = await store.transition("cancel_task", str(uuid.uuid4()), [["CREATED"]], rec, user_id)
    assert missing.row is None and missing.current_status is None
    async with store.pool.acquire() as conn:  # no session lock is left behind on any pooled connection
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    assert held == 0


@ON_THE_SESSION_LOOP
async def test_odd_inputs_give_the_same_task_object_in_sql_and_python(store: TaskStore) -> None:
    user_id, _ = await store.create_user("odd-inputs")
    rec = Recorder()
    row, _ = await store.insert_task(task_spec(user_id))
    inputs = [
        {"name": "no-role.csv"},
        {"name": "null-role.csv", "role": None, "size": "12", "display_name": "ß €.csv"},
        {"name": "primary.csv", "role": "primary", "size": 0, "content_type": "text/csv", "etag": '"x"'},
        {"name": "parameters.json", "role": "parameters"},
    ]
    moved = await store.transition("mark_uploading", str(row["id"]), [inputs, True, ["CREATED"]], rec, user_id)
    assert moved.row is not None
    [event] = rec.events
    assert event.payload == task_view(moved.row)
    assert [i["name"] for i in event.payload["inputs"]] == ["no-role.csv", "null-role.csv", "primary.csv"]
    assert (await _stored_payloads(store, user_id))[event.id] == event.payload


@ON_THE_SESSION_LOOP
async def test_a_transition_cancelled_while_it_waits_still_publishes_what_it_committed(store: TaskStore) -> None:
    """Once sent, the statement may commit however its caller is cancelled: what commits is published and the user's
    event lock released before the cancel goes on (the statement here waits for that lock, held elsewhere)."""
    user_id, _ = await store.create_user("cancelled-caller")
    rec = Recorder()
    row, _ = await store.insert_task(task_spec(user_id))
    task_id = str(row["id"])
    async with store.pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock(hashtextextended($1::text, 0))", user_id)
        transition = asyncio.ensure_future(store.transition("cancel_task", task_id, [["CREATED"]], rec, user_id))
        deadline = asyncio.get_running_loop().time() + 10
        waiting = 0
        while not waiting:  # until the statement waits for the lock
            assert asyncio.get_running_loop().time() < deadline, "the transition never waited for the lock"
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            await asyncio.sleep(0.01)
        transition.cancel()
        await holder.execute("SELECT pg_advisory_unlock(hashtextextended($1::text, 0))", user_id)
        with pytest.raises(asyncio.CancelledError):
            await transition
    task = await store.get_task(task_id)
    assert task is not None and task["status"] == "CANCELLED", "the statement committed"
    stored = await _stored_payloads(store, user_id)
    assert [e.type for e in rec.events] == ["status", "done"], "and what it committed was published"
    assert all(stored[e.id] == e.payload for e in rec.events)
    async with store.pool.acquire() as conn:
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    assert held == 0
