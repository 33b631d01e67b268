-- A task's transition and its events in one statement (service/store.py at_once_transitions), whose events' payload,
-- the task object of API.md, is built in SQL from the updated row exactly as service/models.py task_view builds it
-- in Python (tests/service/test_one_statement_transitions.py compares the two): one round trip instead of four.

-- A timestamp as service/models.py iso_utc writes it (Python's isoformat in UTC with a Z: no fraction when it is
-- a whole second, else six digits). STABLE, as to_char is: a query calling it gets its body inlined (a function
-- that is not inlined is planned again on each statement that calls it).
CREATE FUNCTION iso_utc(ts timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN ts IS NULL THEN NULL
        WHEN extract(microseconds FROM ts) % 1000000 = 0
            THEN to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        ELSE to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    END
$$;

-- dispatch_user (sql/queries.sql) in one round trip: the user's dispatch lock, then the dispatch under it. Each
-- statement of a VOLATILE function takes a fresh snapshot, so the dispatch sees what the lock's previous holder
-- committed, as the two statements of a transaction did; the lock is held until the calling statement ends.
CREATE FUNCTION dispatch_user(uid uuid, cap integer, head_start jsonb)
RETURNS TABLE (task_id uuid, job text, task_priority text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('dispatch:' || uid::text, 0));
    RETURN QUERY
    WITH active AS (
        SELECT count(*) AS n FROM tasks a
        WHERE a.user_id = uid AND (a.status = 'PROCESSING' OR (a.status = 'QUEUED' AND a.job_id IS NOT NULL))
    ), pick AS (
        SELECT w.id FROM tasks w
        WHERE w.user_id = uid AND w.status = 'QUEUED' AND w.job_id IS NULL
        ORDER BY extract(epoch FROM w.queued_at) - coalesce((head_start ->> w.priority)::float8, 0), w.queued_at, w.id
        LIMIT greatest(0, cap - (SELECT n FROM active))
        FOR UPDATE SKIP LOCKED
    )
    UPDATE tasks t
    SET job_id = 'task:' || t.id || ':' || substr(md5(random()::text || clock_timestamp()::text), 1, 12),
        enqueued_at = now(), updated_at = now()
    FROM pick WHERE t.id = pick.id
    RETURNING t.id, t.job_id, t.priority;
END
$$;
