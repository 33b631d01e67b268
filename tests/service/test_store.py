"""TaskStore against a real PostgreSQL: transitions legal and illegal, events, the claim race, deletion."""

from __future__ import annotations

import asyncio
import json
import math
import uuid

import pytest

from service import lifecycle
from service.config import Settings
from service.lifecycle import Core
from service.models import task_view
from service.storage import Storage
from service.store import Event, TaskStore
from tests.support import task_spec

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.calls: list[list[str]] = []  # each publish call's event types

    async def __call__(self, *events: Event) -> None:
        self.events.extend(events)
        self.calls.append([e.type for e in events])


async def new_task(store: TaskStore, user_id: str, *, key: str | None = None) -> str:
    row, created = await store.insert_task(task_spec(user_id, labels={"project": "x"}, idempotency_key=key))
    return str(row["id"])


async def to_queued(store: TaskStore, task_id: str, user_id: str, publish: Recorder) -> None:
    inputs = [{"name": "primary.csv", "role": "primary", "content_type": "text/csv", "size": 3}]
    r = await store.transition("mark_uploading", task_id, [inputs, False, ["CREATED", "UPLOADING"]], publish, user_id)
    assert r.row is not None and r.row["status"] == "UPLOADING"
    r = await store.transition("mark_queued", task_id, [["UPLOADING"], None, None, None], publish, user_id)
    assert r.row is not None and r.row["status"] == "QUEUED"


async def to_dispatched(store: TaskStore, task_id: str, user_id: str, publish: Recorder) -> str:
    """QUEUED with its arq job, as lifecycle.dispatch_user leaves it; returns the job id its worker claims with."""
    await to_queued(store, task_id, user_id, publish)
    jobs = {task: job for task, job, _ in await store.dispatch_user(user_id, 100, {})}
    return jobs[task_id]


async def no_queue(*args: object) -> None:
    """The tests here enqueue nothing: no worker serves these tasks."""


async def test_create_is_idempotent_and_writes_no_event(store: TaskStore) -> None:
    user_id, _ = await store.create_user("u1")
    rec = Recorder()
    first = await new_task(store, user_id, key="k-1")
    again, created = await store.insert_task(task_spec(user_id, priority="high", idempotency_key="k-1"))
    assert not created and str(again["id"]) == first and again["priority"] == "normal"
    assert rec.events == [] and await store.task_events_after(first, 0) == []


async def test_full_happy_path_and_done_event(store: TaskStore) -> None:
    user_id, _ = await store.create_user("u2")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    claim = await store.transition("claim_job", task_id, ["w1", job_id], rec)
    assert claim.row is not None and claim.row["attempts"] == 1 and claim.row["worker_id"] == "w1"
    assert await store.set_progress(task_id, 40, "unified-profiler", "half", rec)
    assert not await store.set_progress(task_id, 30, "unified-profiler", "back", rec), "progress never goes down"
    done = await store.transition("complete_task", task_id, [[{"name": "a.json"}], {"k": 1}, "ok", None, None], rec)
    assert done.row is not None and done.row["status"] == "COMPLETED" and done.row["progress"] == 100
    types = [e.type for e in rec.events]
    assert types == ["status", "status", "status", "progress", "status", "done"]
    assert rec.calls[-1] == ["status", "done"], "a transaction's events go out in one publish"
    ids = [e.id for e in rec.events]
    assert ids == sorted(ids)
    assert [e.id for e in await store.task_events_after(task_id, 0)] == ids


async def test_a_runs_last_progress_commits_with_its_completion(store: TaskStore) -> None:
    """The worker writes a run's last progress in its completion's transaction: the same events, in the same order,
    as two transactions wrote them (progress, then status and done), published together."""
    user_id, _ = await store.create_user("u-last-progress")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    await store.transition("claim_job", task_id, ["w1", job_id], rec)
    rec.events.clear()
    args = [[{"name": "a.json"}], {"k": 1}, "ok", job_id, None]
    done = await store.transition("complete_task", task_id, args, rec, progress=(99, None, "Done", job_id))
    assert done.row is not None and done.row["status"] == "COMPLETED" and done.row["progress"] == 100
    assert [e.type for e in rec.events] == ["progress", "status", "done"] and rec.calls[-1] == [
        "progress",
        "status",
        "done",
    ]
    progress = rec.events[0].payload
    assert progress["progress"] == 99 and progress["message"] == "Done" and progress["current_agent"] is None
    assert progress["task_id"] == task_id and progress["at"].endswith("Z")
    assert [e.id for e in await store.task_events_after(task_id, rec.events[0].id - 1)] == [e.id for e in rec.events]


async def test_a_refused_completion_keeps_the_progress_set_progress_would_write(store: TaskStore) -> None:
    """The completion refused (here: it names a task whose files are gone, `copy_from`), the progress written with it
    stands alone, as set_progress would have written it; a run that no longer holds its task writes neither."""
    user_id, _ = await store.create_user("u-refused-completion")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    await store.transition("claim_job", task_id, ["w1", job_id], rec)
    rec.events.clear()
    gone = uuid.uuid4()  # no such task: the completion's copy_from condition fails
    refused = await store.transition(
        "complete_task", task_id, [[], {}, "ok", job_id, gone], rec, progress=(90, "a", "late", job_id)
    )
    assert refused.row is None and refused.current_status == "PROCESSING"
    assert [e.type for e in rec.events] == ["progress"] and rec.events[0].payload["message"] == "late"
    row = await store.get_task(task_id)
    assert row["progress"] == 90 and row["message"] == "late"

    rec.events.clear()
    stale = await store.transition(
        "complete_task", task_id, [[], {}, "ok", "task:other-job", None], rec, progress=(95, "a", "x", "task:other")
    )
    assert stale.row is None and stale.current_status == "PROCESSING" and rec.events == []
    assert (await store.get_task(task_id))["progress"] == 90


async def test_a_result_holding_infinity_or_nan_completes_with_nulls(store: TaskStore) -> None:
    """A profile of a column holding `inf` has an infinite maximum: JSON has no spelling for it, and PostgreSQL's
    jsonb refused the `Infinity` token (the task ended INTERNAL_ERROR). Stored, and published, as null."""
    user_id, _ = await store.create_user("u-inf")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    await store.transition("claim_job", task_id, ["w1", job_id], rec)
    result = {"max": math.inf, "min": -math.inf, "mean": math.nan, "nested": [{"x": math.inf}], "rows": 3}
    done = await store.transition("complete_task", task_id, [[{"name": "a.json"}], result, "ok", None, None], rec)
    assert done.row is not None and done.row["status"] == "COMPLETED"
    stored = (await store.get_task_result(task_id, user_id))["result"]
    assert stored == {"max": None, "min": None, "mean": None, "nested": [{"x": None}], "rows": 3}
    for event in rec.events:
        json.loads(event.to_message(), parse_constant=lambda token: pytest.fail(f"{token} in an event message"))
    assert json.loads(Event(1, task_id, user_id, "done", {"v": math.inf, "s": "é"}).to_message())["payload"] == {
        "v": None,
        "s": "é",
    }


async def test_illegal_transitions_report_current_status(store: TaskStore) -> None:
    user_id, _ = await store.create_user("u3")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    claim = await store.transition("claim_job", task_id, ["w", "task:no-such-job"], rec)
    assert claim.row is None and claim.current_status == "CREATED"
    done = await store.transition("complete_task", task_id, [[], {}, "x", None, None], rec)
    assert done.row is None and done.current_status == "CREATED"
    queued = await store.transition("mark_queued", task_id, [["UPLOADING"], None, None, None], rec, user_id)
    assert queued.row is None and queued.current_status == "CREATED"
    cancelled = await store.transition(
        "cancel_task", task_id, [["CREATED", "UPLOADING", "QUEUED", "PROCESSING"]], rec, user_id
    )
    assert cancelled.row is not None and cancelled.row["status"] == "CANCELLED"
    again = await store.transition(
        "cancel_task", task_id, [["CREATED", "UPLOADING", "QUEUED", "PROCESSING"]], rec, user_id
    )
    assert again.row is None and again.current_status == "CANCELLED"
    assert [e.type for e in rec.events][-2:] == ["status", "done"]


async def test_other_user_sees_nothing(store: TaskStore) -> None:
    owner, _ = await store.create_user("owner")
    stranger, _ = await store.create_user("stranger")
    rec = Recorder()
    task_id = await new_task(store, owner)
    assert await store.get_task(task_id, stranger) is None
    r = await store.transition("cancel_task", task_id, [["CREATED"]], rec, stranger)
    assert r.row is None and r.current_status is None
    assert await store.get_task(str(uuid.uuid4()), owner) is None
    assert await store.get_task("not-a-uuid", owner) is None


async def test_claim_race_exactly_one_winner(store: TaskStore, settings: Settings, storage: Storage) -> None:
    """The worker's own claim (lifecycle.claim_task with the task's job id, as worker/runner.py does): of eight
    workers racing for the same job, one gets the task, once; a job of an earlier queueing gets nothing."""
    user_id, _ = await store.create_user("racer")
    rec = Recorder()
    core = Core(settings, store, storage, rec, no_queue)
    for _ in range(5):
        task_id = await new_task(store, user_id)
        job_id = await to_dispatched(store, task_id, user_id, rec)
        rec.events.clear()
        claimers = [lifecycle.claim_task(core, task_id, f"w{i}", job_id) for i in range(8)]
        stale = lifecycle.claim_task(core, task_id, "w-stale", f"task:{task_id}:earlier")
        *claims, stale_claim = await asyncio.gather(*claimers, stale)
        winners = [row for row in claims if row is not None]
        assert len(winners) == 1 and stale_claim is None
        task = await store.get_task(task_id)
        assert task is not None and task["status"] == "PROCESSING" and task["attempts"] == 1
        assert task["worker_id"] == winners[0]["worker_id"] and task["job_id"] == job_id
        assert [(e.type, e.payload["status"]) for e in rec.events] == [("status", "PROCESSING")]


async def test_event_ids_commit_in_order_per_user(store: TaskStore) -> None:
    """Concurrent writers for one user: every event is in the table, ids in publish order."""
    user_id, _ = await store.create_user("busy")
    rec = Recorder()
    task_ids = [await new_task(store, user_id) for _ in range(6)]
    for t in task_ids:
        job_id = await to_dispatched(store, t, user_id, rec)
        await store.transition("claim_job", t, ["w", job_id], rec)
    rec.events.clear()
    await asyncio.gather(*(store.set_progress(t, p, "a", f"{p}", rec) for t in task_ids for p in range(1, 20)))
    ids = [e.id for e in rec.events]
    assert ids == sorted(ids), "publish order follows id order within a user"
    assert [e.id for e in await store.user_events_after(user_id, ids[0] - 1)] == ids


async def test_credits_debit_all_or_nothing(store: TaskStore) -> None:
    user_id, _ = await store.create_user("payer", credits=50)
    task_id = await new_task(store, user_id)
    assert await store.debit_credits(user_id, task_id, [("a", 30), ("b", 30)], 1) is None
    assert (await store.get_user(user_id))["credits"] == 50
    assert await store.debit_credits(user_id, task_id, [("a", 30), ("b", 20)], 1) == 0


async def test_an_agent_is_debited_once_per_run_and_only_while_the_run_holds_its_task(store: TaskStore) -> None:
    """store.debit_agent: a retried debit (its COMMIT's answer lost) finds its line instead of charging again; a
    debit of a run that no longer holds its task (not PROCESSING, or another attempt) charges nothing."""
    user_id, _ = await store.create_user("debited", credits=100)
    rec = Recorder()
    task_id = await new_task(store, user_id)
    assert await store.debit_agent(user_id, task_id, "a", 30, 1) == "gone"  # CREATED: no run holds it
    job_id = await to_dispatched(store, task_id, user_id, rec)
    assert (await store.transition("claim_job", task_id, ["w", job_id], rec)).row["attempts"] == 1
    assert await store.debit_agent(user_id, task_id, "a", 30, 1) == "debited"
    assert await store.debit_agent(user_id, task_id, "a", 30, 1) == "debited"  # the retry: no second charge
    assert await store.debit_agent(user_id, task_id, "a", 30, 2) == "gone"  # not this run's attempt
    assert await store.debit_agent(user_id, task_id, "b", 80, 1) == "short"
    assert (await store.get_user(user_id))["credits"] == 70
    cancelled = await store.transition("cancel_task", task_id, [["PROCESSING"]], rec, user_id)
    assert cancelled.row is not None
    assert await store.debit_agent(user_id, task_id, "b", 10, 1) == "gone"
    assert (await store.get_user(user_id))["credits"] == 70


async def test_concurrent_tries_of_one_debit_charge_once(store: TaskStore) -> None:
    """The same agent run's debit sent several times at once (a retry racing its first try): one charge, one ledger
    line, and every try answers "debited"."""
    user_id, _ = await store.create_user("racer", credits=100)
    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    assert (await store.transition("claim_job", task_id, ["w", job_id], rec)).row["attempts"] == 1
    outcomes = await asyncio.gather(*(store.debit_agent(user_id, task_id, "a", 30, 1) for _ in range(8)))
    assert outcomes == ["debited"] * 8
    assert (await store.get_user(user_id))["credits"] == 70
    lines = await store.pool.fetchval("SELECT count(*) FROM credit_ledger WHERE task_id = $1", uuid.UUID(task_id))
    assert lines == 1


async def test_a_refund_gives_back_its_own_run_only(store: TaskStore) -> None:
    """A task whose first run was charged and kept (it ran: AGENT_FAILED), retried, and whose second run is
    refunded (cancelled while running) gets the second run back, never the first; refunds are idempotent."""
    user_id, _ = await store.create_user("retrier", credits=500)
    task_id = await new_task(store, user_id)
    assert await store.debit_credits(user_id, task_id, [("a", 30), ("b", 90)], 1) == 380
    assert await store.debit_credits(user_id, task_id, [("a", 30), ("b", 90)], 2) == 260
    assert await store.refund_task_credits(user_id, task_id, "refund: cancelled while running", 2) == 120
    assert await store.refund_task_credits(user_id, task_id, "refund: cancelled while running", 2) == 0
    assert (await store.get_user(user_id))["credits"] == 380
    assert await store.refund_task_credits(user_id, task_id, "refund: worker lost", 3) == 0


async def test_list_tasks_paginates_and_filters(store: TaskStore) -> None:
    user_id, _ = await store.create_user("lister")
    created = [await new_task(store, user_id) for _ in range(5)]
    page1 = await store.list_tasks(user_id, statuses=None, tool_id=None, labels=None, after=None, limit=3)
    assert [str(r["id"]) for r in page1] == created[::-1][:3]
    last = page1[-1]
    page2 = await store.list_tasks(
        user_id, statuses=None, tool_id=None, labels=None, after=(last["created_at"], str(last["id"])), limit=3
    )
    assert [str(r["id"]) for r in page2] == created[::-1][3:]
    assert await store.list_tasks(user_id, statuses=["QUEUED"], tool_id=None, labels=None, after=None, limit=9) == []
    assert (
        len(await store.list_tasks(user_id, statuses=None, tool_id=None, labels={"project": "x"}, after=None, limit=9))
        == 5
    )
    assert (
        await store.list_tasks(user_id, statuses=None, tool_id=None, labels={"project": "y"}, after=None, limit=9) == []
    )


async def test_events_are_published_only_once_committed(store: TaskStore) -> None:
    """A client told of a change (e.g. `done`) and reading right away sees that change."""
    user_id, _ = await store.create_user("reader")
    seen: list[tuple[str, str]] = []

    async def check(*events: Event) -> None:
        for event in events:
            row = await store.get_task(event.task_id)  # another pooled connection
            if event.type == "progress":
                seen.append((str(event.payload["progress"]), str(row["progress"])))
            else:
                seen.append((event.payload["status"], row["status"]))

    rec = Recorder()
    task_id = await new_task(store, user_id)
    job_id = await to_dispatched(store, task_id, user_id, rec)
    await store.transition("claim_job", task_id, ["w", job_id], check)
    await store.set_progress(task_id, 55, "a", "m", check)
    await store.transition("complete_task", task_id, [[], {}, "ok", None, None], check)
    assert seen == [("PROCESSING", "PROCESSING"), ("55", "55"), ("COMPLETED", "COMPLETED"), ("COMPLETED", "COMPLETED")]


async def test_delete_writes_one_event_that_outlives_the_task(store: TaskStore) -> None:
    """Deleting a terminal task removes it and its history, and writes one last `status` event of it with
    `"deleted": true`; that event stays in the user's log once the task row is gone."""
    user_id, _ = await store.create_user("deleter")
    stranger, _ = await store.create_user("not-the-owner")
    rec = Recorder()
    task_id = await new_task(store, user_id)
    refused = await store.delete_task(task_id, user_id, lifecycle.TERMINAL, rec)
    assert refused.row is None and refused.current_status == "CREATED" and rec.events == []
    cancelled = await store.transition("cancel_task", task_id, [["CREATED"]], rec, user_id)
    assert cancelled.row is not None
    not_mine = await store.delete_task(task_id, stranger, lifecycle.TERMINAL, rec)
    assert not_mine.row is None and not_mine.current_status is None
    rec.events.clear()

    deleted = await store.delete_task(task_id, user_id, lifecycle.TERMINAL, rec)

    assert deleted.current_status == "DELETED" and deleted.row is not None and deleted.row["status"] == "CANCELLED"
    [event] = rec.events
    assert (event.type, event.task_id, event.user_id) == ("status", task_id, user_id)
    assert event.payload == {**task_view(cancelled.row), "message": "Deleted", "deleted": True}
    assert await store.get_task(task_id) is None
    logged = [(e.id, e.task_id, e.type, e.payload) for e in await store.user_events_after(user_id, 0)]
    assert logged == [(event.id, task_id, "status", event.payload)], "the history went, the deletion stays"
    assert [e.id for e in await store.task_events_after(task_id, 0)] == [event.id]
    again = await store.delete_task(task_id, user_id, lifecycle.TERMINAL, rec)
    assert again.row is None and again.current_status is None and len(rec.events) == 1
