-- dispatch_user (sql/queries.sql) read every waiting task of the user on every call: the count of active tasks went
-- through tasks_active_by_user (every QUEUED task, its job looked up in the row), and the pick sorted all waiting
-- tasks by their head-start expression (a jsonb lookup per row): ~0.9 ms of PostgreSQL CPU with 250 waiting, 1.8 ms
-- with 1,000, on every completion. Both now read indexes bounded by the cap: the active tasks have an index of their
-- own, and the pick takes, for each priority, its oldest waiting tasks in index order (queued_at, id: the head-start
-- order within one priority) and sorts only those.

-- The user's active tasks (dispatch_waiting's count): PROCESSING, or QUEUED with a job. It replaces
-- tasks_active_by_user, which only that count read (it has all QUEUED tasks too): one index entry fewer to write
-- on a task's way through the queue.
CREATE INDEX tasks_running_by_user ON tasks (user_id)
    WHERE status = 'PROCESSING' OR (status = 'QUEUED' AND job_id IS NOT NULL);
DROP INDEX tasks_active_by_user;

-- The user's waiting tasks per priority, oldest first (dispatch_waiting's pick). Its leading column serves what
-- tasks_waiting_by_user served (users_waiting_dispatch: the users with waiting tasks), so that one goes.
CREATE INDEX tasks_waiting_by_user_priority ON tasks (user_id, priority, queued_at, id)
    WHERE status = 'QUEUED' AND job_id IS NULL;
DROP INDEX tasks_waiting_by_user;

-- dispatch_user of migration 013 with the same result: the user's dispatch lock, then up to `cap` minus the active
-- tasks of the waiting ones get a job, most urgent first (queue time minus the priority's head start, then queue
-- time, then id). The candidates are each priority's oldest `room + 16` waiting tasks (tasks_priority_check names
-- the four priorities): the first `room` of all waiting tasks are among them, unless more than 16 of one priority
-- are locked by another transaction at that moment (SKIP LOCKED passes over them, as before); the tasks missed then
-- are dispatched by the next call (every completion, cancel and queueing of the user's, and the recovery loop).
-- migration 013's dispatch_user stays for code that still calls it.
CREATE FUNCTION dispatch_waiting(uid uuid, cap integer, head_start jsonb)
RETURNS TABLE (task_id uuid, job text, task_priority text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    room integer;
    candidates uuid[];
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('dispatch:' || uid::text, 0));
    SELECT cap - count(*) INTO room FROM tasks a
    WHERE a.user_id = uid AND (a.status = 'PROCESSING' OR (a.status = 'QUEUED' AND a.job_id IS NOT NULL));
    IF room <= 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(c.id) INTO candidates
    FROM unnest(ARRAY['urgent', 'high', 'normal', 'low']) AS p(priority)
    CROSS JOIN LATERAL (
        SELECT w.id FROM tasks w
        WHERE w.user_id = uid AND w.priority = p.priority AND w.status = 'QUEUED' AND w.job_id IS NULL
        ORDER BY w.queued_at, w.id
        LIMIT room + 16
    ) c;
    IF candidates IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH pick AS (
        SELECT w.id FROM tasks w
        WHERE w.id = ANY (candidates) AND w.status = 'QUEUED' AND w.job_id IS NULL
        ORDER BY extract(epoch FROM w.queued_at) - coalesce((head_start ->> w.priority)::float8, 0), w.queued_at, w.id
        LIMIT room
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks t
    SET job_id = 'task:' || t.id || ':' || substr(md5(random()::text || clock_timestamp()::text), 1, 12),
        enqueued_at = now(), updated_at = now()
    FROM pick WHERE t.id = pick.id
    RETURNING t.id, t.job_id, t.priority;
END
$$;

-- The end of a run (service/store.py `transition` with `dispatch`): the user's event lock, held while the run's
-- completion events are published, is released by the statement that then dispatches the user's waiting tasks (one
-- round trip less). The lock goes first: the dispatch writes no event.
CREATE FUNCTION unlock_and_dispatch(uid uuid, cap integer, head_start jsonb)
RETURNS TABLE (task_id uuid, job text, task_priority text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_unlock(hashtextextended(uid::text, 0));
    RETURN QUERY SELECT * FROM dispatch_waiting(uid, cap, head_start);
END
$$;
