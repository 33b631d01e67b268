-- Named queries: every block starts with "-- name: <name>", then a description, then the SQL.
-- State changes are single conditional UPDATEs: WHERE status = ANY(<allowed>) ... RETURNING *.

-- name: create_user
-- A user with a hashed API key.
INSERT INTO users (id, name, api_key_hash, is_admin, credits)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: user_by_key_hash
-- Authenticate: the user whose API key hashes to $1.
SELECT id, name, api_key_hash, is_admin, credits, created_at FROM users WHERE api_key_hash = $1;

-- name: get_user
-- One user by id.
SELECT id, name, is_admin, credits, created_at FROM users WHERE id = $1;

-- name: debit_credits
-- Take $2 credits from user $1 if the balance allows it; no row when it does not.
UPDATE users SET credits = credits - $2 WHERE id = $1 AND credits >= $2 RETURNING credits;

-- name: record_ledger
-- One line of the credit ledger.
INSERT INTO credit_ledger (user_id, task_id, agent_id, amount, balance, reason)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: insert_task
-- A new task in CREATED.
INSERT INTO tasks (id, user_id, tool_id, agents, status, priority, parameters, source_task_id, labels,
                   idempotency_key, expires_at, message)
VALUES ($1, $2, $3, $4, 'CREATED', $5, $6, $7, $8, $9, now() + make_interval(secs => $10), 'Waiting for uploads')
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING *;

-- name: task_by_idempotency_key
-- The task an earlier create with the same Idempotency-Key made.
SELECT * FROM tasks WHERE user_id = $1 AND idempotency_key = $2;

-- name: get_task
-- A task of one user: every column but the result summary (large; read by get_task_result).
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, parameters, has_parameters, inputs, outputs, worker_id, heartbeat_at, job_id,
       idempotency_key, artifacts_deleted, created_at, upload_started_at, queued_at, started_at, finished_at,
       expires_at, updated_at
FROM tasks WHERE id = $1 AND user_id = $2;

-- name: get_task_view
-- The columns of the task object only (no inputs, parameters or result): status polling.
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, created_at, upload_started_at, queued_at, started_at, finished_at, expires_at
FROM tasks WHERE id = $1 AND user_id = $2;

-- name: get_task_result
-- The stored result summary of a task.
SELECT status, result FROM tasks WHERE id = $1 AND user_id = $2;

-- name: get_task_by_id
-- A task by id alone (workers), without the result summary.
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, parameters, has_parameters, inputs, outputs, worker_id, heartbeat_at, job_id,
       idempotency_key, artifacts_deleted, created_at, upload_started_at, queued_at, started_at, finished_at,
       expires_at, updated_at
FROM tasks WHERE id = $1;

-- name: list_tasks
-- A user's tasks, newest first, keyset-paginated on (created_at, id).
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, created_at, upload_started_at, queued_at, started_at, finished_at, expires_at
FROM tasks
WHERE user_id = $1
  AND ($2::text[] IS NULL OR status = ANY($2))
  AND ($3::text IS NULL OR tool_id = $3)
  AND ($4::jsonb IS NULL OR labels @> $4)
  AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $7;

-- name: mark_uploading
-- Record the declared inputs and move to UPLOADING.
UPDATE tasks
SET status = 'UPLOADING', inputs = $3, has_parameters = $4,
    upload_started_at = coalesce(upload_started_at, now()), message = 'Waiting for uploads', updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($5)
RETURNING *;

-- name: record_input
-- Add or replace one input in the manifest (streamed upload) and move to UPLOADING.
UPDATE tasks
SET status = 'UPLOADING',
    inputs = (SELECT coalesce(jsonb_agg(e), '[]'::jsonb) FROM jsonb_array_elements(inputs) e
              WHERE e ->> 'name' <> $3::jsonb ->> 'name') || jsonb_build_array($3::jsonb),
    upload_started_at = coalesce(upload_started_at, now()), updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($4)
RETURNING *;

-- name: mark_queued
-- process / retry: move to QUEUED with a fresh job id and a clean slate for progress.
UPDATE tasks
SET status = 'QUEUED', job_id = $3, queued_at = now(), progress = 0, current_agent = NULL,
    message = 'Queued', error = NULL, started_at = NULL, finished_at = NULL, worker_id = NULL,
    heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($4)
RETURNING *;

-- name: claim_task
-- A worker takes a QUEUED task; exactly one of several racing workers gets the row.
UPDATE tasks
SET status = 'PROCESSING', attempts = attempts + 1, worker_id = $2, started_at = now(), heartbeat_at = now(),
    message = 'Starting', updated_at = now()
WHERE id = $1 AND status = 'QUEUED'
RETURNING *;

-- name: set_progress
-- Progress of a running task; never goes down.
UPDATE tasks
SET progress = greatest(progress, $2), current_agent = $3, message = $4, heartbeat_at = now(), updated_at = now()
WHERE id = $1 AND status = 'PROCESSING' AND progress <= $2
RETURNING id, user_id, progress, current_agent, message;

-- name: complete_task
-- PROCESSING -> COMPLETED with outputs and the result summary.
UPDATE tasks
SET status = 'COMPLETED', progress = 100, current_agent = NULL, message = $4, outputs = $2, result = $3,
    finished_at = now(), heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND status = 'PROCESSING'
RETURNING *;

-- name: fail_task
-- -> FAILED with an error {code, message}.
UPDATE tasks
SET status = 'FAILED', error = $2, message = $2::jsonb ->> 'message', finished_at = now(), heartbeat_at = NULL,
    updated_at = now()
WHERE id = $1 AND status = ANY($3)
RETURNING *;

-- name: cancel_task
-- -> CANCELLED from any non-terminal state.
UPDATE tasks
SET status = 'CANCELLED', error = '{"code": "CANCELLED", "message": "Cancelled by the user"}'::jsonb,
    message = 'Cancelled', finished_at = now(), heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($3)
RETURNING *;

-- name: delete_task
-- Remove a terminal task (its events go with it).
DELETE FROM tasks WHERE id = $1 AND user_id = $2 AND status = ANY($3) RETURNING id;

-- name: task_status
-- Current status of a task, to explain a refused transition.
SELECT status FROM tasks WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2);

-- name: insert_first_event
-- The first event row of a transaction. It first takes the user's SESSION-level event lock, held
-- past COMMIT until the events are published (then released by unlock_user_events): event ids
-- commit, and are published, in id order within every stream of that user, and a client never
-- hears of a change before it is committed.
WITH user_lock AS (SELECT pg_advisory_lock(hashtextextended($2::uuid::text, 0)))
INSERT INTO task_events (task_id, user_id, type, payload)
SELECT $1::uuid, $2::uuid, $3::text, $4::jsonb FROM user_lock
RETURNING id;

-- name: insert_event
-- A further event row in a transaction that already holds the user's event lock.
INSERT INTO task_events (task_id, user_id, type, payload) VALUES ($1, $2, $3, $4) RETURNING id;

-- name: unlock_user_events
-- Release the user's event lock once the transaction's events are committed and published.
SELECT pg_advisory_unlock(hashtextextended($1::uuid::text, 0));

-- name: task_events_after
-- A task's events after an id, in order.
SELECT id, task_id, type, payload FROM task_events WHERE task_id = $1 AND id > $2 ORDER BY id LIMIT $3;

-- name: user_events_after
-- A user's events after an id, in order.
SELECT id, task_id, type, payload FROM task_events WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3;

-- name: latest_user_event_id
-- Where a fresh per-user stream starts.
SELECT coalesce(max(id), 0) FROM task_events WHERE user_id = $1;

-- name: task_snapshot_event_ids
-- The ids a fresh per-task stream starts from: the latest event, the latest status and the done event.
SELECT max(id) AS last_id,
       max(id) FILTER (WHERE type = 'status') AS last_status_id,
       max(id) FILTER (WHERE type = 'done') AS done_id
FROM task_events WHERE task_id = $1;

-- name: count_by_status
-- A user's tasks per status.
SELECT status, count(*) AS n FROM tasks WHERE user_id = $1 GROUP BY status;

-- name: count_all_by_status
-- All tasks per status (admin).
SELECT status, count(*) AS n FROM tasks GROUP BY status;

-- name: queued_by_priority
-- Queue depth per priority (admin).
SELECT priority, count(*) AS n FROM tasks WHERE status = 'QUEUED' GROUP BY priority;

-- name: running_workers
-- Workers holding PROCESSING tasks, with their freshest heartbeat (admin).
SELECT worker_id, count(*) AS running, max(heartbeat_at) AS last_heartbeat
FROM tasks WHERE status = 'PROCESSING' AND worker_id IS NOT NULL GROUP BY worker_id;

-- name: lock_user_credits
-- The user's balance, locked until the end of the transaction.
SELECT credits FROM users WHERE id = $1 FOR UPDATE;

-- name: task_credit_net
-- What task $1 has cost so far, net of refunds (negative: credits taken).
SELECT COALESCE(SUM(amount), 0)::bigint FROM credit_ledger WHERE task_id = $1;

-- name: credit_user
-- Give $2 credits back to user $1.
UPDATE users SET credits = credits + $2 WHERE id = $1 RETURNING credits;
