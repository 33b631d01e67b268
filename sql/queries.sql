-- Named queries: every block starts with "-- name: <name>", then a description, then the SQL.
-- State changes are single conditional UPDATEs: WHERE status = ANY(<allowed>) ... RETURNING *.

-- name: create_user
-- A user with a hashed API key.
INSERT INTO users (id, name, api_key_hash, is_admin, credits)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: user_by_key_hash
-- Authenticate: the user whose API key hashes to $1, unless disabled.
SELECT id, name, api_key_hash, is_admin, credits, created_at FROM users WHERE api_key_hash = $1 AND disabled_at IS NULL;

-- name: get_user
-- One user by id, unless disabled (stream tokens and /me of a disabled user are refused).
SELECT id, name, is_admin, credits, created_at, key_rotated_at FROM users WHERE id = $1 AND disabled_at IS NULL;

-- name: debit_credits
-- Take $2 credits from user $1 if the balance allows it; no row when it does not.
UPDATE users SET credits = credits - $2 WHERE id = $1 AND credits >= $2 RETURNING credits;

-- name: record_ledger
-- One line of the credit ledger; $7 its kind: debit, refund, grant or cache_hit; $8 the task's run (attempt).
INSERT INTO credit_ledger (user_id, task_id, agent_id, amount, balance, reason, kind, attempt)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: list_ledger
-- A user's ledger lines, newest first, keyset-paginated on id (those below $2 when set).
SELECT id, kind, amount, balance, task_id, agent_id, reason, created_at FROM credit_ledger
WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3;

-- name: list_users
-- Every user, disabled ones too, oldest first (the CLI).
SELECT id, name, is_admin, credits, created_at, disabled_at FROM users ORDER BY created_at, id;

-- name: find_users
-- The users, disabled ones too, whose id is $1 or whose name is $2: how the CLI names a user.
SELECT id, name, is_admin, credits, created_at, disabled_at FROM users
WHERE id = $1 OR name = $2
ORDER BY created_at, id;

-- name: notify_user_changed
-- Tell every API process (LISTEN agensium_users) that user $1's key or access changed: their auth caches drop
-- the user at once. Sent inside the changing transaction, so it is delivered only if that commits.
SELECT pg_notify('agensium_users', $1::text);

-- name: set_api_key_hash
-- Rotate user $1's API key: the old key stops matching at once.
UPDATE users SET api_key_hash = $2, key_rotated_at = clock_timestamp() WHERE id = $1 RETURNING id;

-- name: disable_user
-- Refuse user $1's key and stream tokens from now on (the first disable time is kept).
UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1 RETURNING disabled_at;

-- name: enable_user
-- Undo disable_user.
UPDATE users SET disabled_at = NULL WHERE id = $1 RETURNING id;

-- name: unfinished_tasks
-- The cap on unfinished tasks: how many of user $1's tasks are not terminal, NULL for an admin (no cap). The
-- statuses are spelled out as in the partial index tasks_unfinished_by_user.
SELECT CASE WHEN u.is_admin THEN NULL ELSE (
    SELECT count(*) FROM tasks t
    WHERE t.user_id = u.id AND t.status IN ('CREATED', 'UPLOADING', 'QUEUED', 'PROCESSING')
) END
FROM users u WHERE u.id = $1;

-- name: insert_task
-- A new task in CREATED; $11 the hash of its create request (an Idempotency-Key replay is compared with it).
INSERT INTO tasks (id, user_id, tool_id, agents, status, priority, parameters, source_task_id, labels,
                   idempotency_key, expires_at, message, request_hash)
VALUES ($1, $2, $3, $4, 'CREATED', $5, $6, $7, $8, $9, now() + make_interval(secs => $10), 'Waiting for uploads',
        $11)
ON CONFLICT (user_id, idempotency_key) DO NOTHING
RETURNING *;

-- name: task_by_idempotency_key
-- The task an earlier create with the same Idempotency-Key made (no result summary: a replay shows the task).
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, parameters, has_parameters, inputs, outputs, worker_id, heartbeat_at, job_id,
       idempotency_key, artifacts_deleted, created_at, upload_started_at, queued_at, started_at, finished_at,
       expires_at, updated_at, request_hash
FROM tasks WHERE user_id = $1 AND idempotency_key = $2;

-- name: get_task
-- A task of one user: every column but the result summary (large; read by get_task_result).
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, parameters, has_parameters, inputs, outputs, worker_id, heartbeat_at, job_id,
       idempotency_key, artifacts_deleted, created_at, upload_started_at, queued_at, started_at, finished_at,
       expires_at, updated_at
FROM tasks WHERE id = $1 AND user_id = $2;

-- name: get_task_view
-- The columns of the task object only (no parameters or result): status polling. credits: what the task cost,
-- net of refunds, every run (index credit_ledger_by_task).
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, inputs, created_at, upload_started_at, queued_at, started_at, finished_at, expires_at,
       (SELECT -COALESCE(SUM(amount), 0) FROM credit_ledger WHERE task_id = tasks.id)::bigint AS credits
FROM tasks WHERE id = $1 AND user_id = $2;

-- name: get_task_result
-- The stored result summary of a task.
SELECT status, result FROM tasks WHERE id = $1 AND user_id = $2;

-- name: task_dataset
-- Status of task $1 of user $2, whether retention deleted its files, and the schema of its dataset version as its
-- run recorded it (result.summary.dataset: {name, rows, columns: [{name, dtype}]}; NULL when not recorded):
-- POST /transform resolves commands against it before answering. With rows_out and rows (what /lineage shows
-- of the version's rows when no dataset is recorded): a version of no rows is refused before a task reads it.
SELECT status, artifacts_deleted, result #> '{summary,dataset}' AS dataset,
       result #> '{summary,rows_out}' AS rows_out, result #> '{summary,rows}' AS rows
FROM tasks WHERE id = $1 AND user_id = $2;

-- name: task_lineage
-- Task $1 of user $2 and its ancestors through source_task_id, root first (the task itself last, depth 0), at most
-- $3 links up; each with what /lineage shows of its dataset version (result.summary: dataset.rows, else rows_out
-- of a tool that writes data, else rows read; the transformation sentences). Every link is the user's. A deleted
-- version in the chain is read from its tombstone (deleted_versions, migration 015; `deleted` true) and the walk
-- goes on to the version it was chained on.
WITH RECURSIVE chain AS (
    SELECT id, source_task_id, 0 AS depth, false AS deleted FROM tasks WHERE id = $1 AND user_id = $2
    UNION ALL
    SELECT coalesce(t.id, d.id), coalesce(t.source_task_id, d.source_task_id), chain.depth + 1, t.id IS NULL
    FROM chain
    LEFT JOIN tasks t ON t.id = chain.source_task_id AND t.user_id = $2
    LEFT JOIN deleted_versions d ON t.id IS NULL AND d.id = chain.source_task_id AND d.user_id = $2
    WHERE chain.depth < $3 AND (t.id IS NOT NULL OR d.id IS NOT NULL)
)
SELECT t.id, t.tool_id, t.status, t.created_at, t.source_task_id,
       t.result #> '{summary,rows_out}' AS rows_out, t.result #> '{summary,dataset,rows}' AS dataset_rows,
       t.result #> '{summary,rows}' AS rows, t.result #> '{summary,transformations}' AS transformations,
       false AS deleted, chain.depth
FROM chain JOIN tasks t ON t.id = chain.id AND NOT chain.deleted
UNION ALL
SELECT d.id, d.tool_id, d.status, d.created_at, d.source_task_id, d.rows_out, d.dataset_rows, d.rows,
       d.transformations, true AS deleted, chain.depth
FROM chain JOIN deleted_versions d ON d.id = chain.id AND chain.deleted
ORDER BY depth DESC;

-- name: task_children
-- The tasks of user $2 chained on task $1 (source_task_id, index tasks_by_source), oldest first, with the same
-- columns as task_lineage.
SELECT id, tool_id, status, created_at, source_task_id,
       result #> '{summary,rows_out}' AS rows_out, result #> '{summary,dataset,rows}' AS dataset_rows,
       result #> '{summary,rows}' AS rows, result #> '{summary,transformations}' AS transformations
FROM tasks WHERE source_task_id = $1 AND user_id = $2
ORDER BY created_at, id;

-- name: get_task_by_id
-- A task by id alone (workers), without the result summary.
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, parameters, has_parameters, inputs, outputs, worker_id, heartbeat_at, job_id,
       idempotency_key, artifacts_deleted, created_at, upload_started_at, queued_at, started_at, finished_at,
       expires_at, updated_at
FROM tasks WHERE id = $1;

-- name: list_tasks
-- A user's tasks, newest first, keyset-paginated on (created_at, id); credits as get_task_view's.
SELECT id, user_id, tool_id, agents, status, priority, progress, current_agent, message, error, attempts, cached,
       source_task_id, labels, inputs, created_at, upload_started_at, queued_at, started_at, finished_at, expires_at,
       (SELECT -COALESCE(SUM(amount), 0) FROM credit_ledger WHERE task_id = tasks.id)::bigint AS credits
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
-- Add or replace one input in the manifest (streamed upload) and move to UPLOADING; the inputs named in $5 (the
-- same role's upload in another format: primary.csv after primary.tsv) go.
UPDATE tasks
SET status = 'UPLOADING',
    inputs = (SELECT coalesce(jsonb_agg(e), '[]'::jsonb) FROM jsonb_array_elements(inputs) e
              WHERE e ->> 'name' <> $3::jsonb ->> 'name' AND NOT (e ->> 'name' = ANY ($5::text[])))
             || jsonb_build_array($3::jsonb),
    upload_started_at = coalesce(upload_started_at, now()), updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($4)
RETURNING *;

-- name: mark_queued
-- process / retry: move to QUEUED, waiting for dispatch (job_id NULL; dispatch_user gives it a job when its user
-- is under the running cap), with a clean slate for progress and a fresh attempt budget. $4: the chain as queued
-- (lifecycle.queued_chain: a default chain without a baseline input loses drift-detector), NULL keeps it. $5: its
-- result-cache key (service/cache.py; NULL: it has none): once COMPLETED, a later identical task of the user reuses
-- its result (complete_from_cache). $6: what the store said of the uploads as process (or retry) verified them,
-- merged into their inputs entries by name (migration 012); NULL: nothing to add.
UPDATE tasks
SET status = 'QUEUED', agents = coalesce($4::text[], agents), job_id = NULL, enqueued_at = NULL, queued_at = now(),
    progress = 0, current_agent = NULL, artifacts_deleted = false,
    message = 'Queued', error = NULL, started_at = NULL, finished_at = NULL, worker_id = NULL,
    heartbeat_at = NULL, attempt_base = attempts, cache_key = $5, inputs = inputs_merged(inputs, $6::jsonb),
    updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($3)
RETURNING *;

-- name: complete_from_cache
-- process on a result-cache hit, lookup included: user $2's task $1 in $3 -> COMPLETED at once, never queued nor run
-- (attempts stay 0), with the chain as queued ($4) and its cache key ($5), when the user has a COMPLETED task of that
-- key (index tasks_by_cache_key_newest: the newest) other than $1, whose stored files are still there and not being
-- deleted, whose every agent succeeded (a partial result runs again), which is not a run borrowing another's
-- objects (a search page: a hit has one owner) and whose every output names its object. The hit takes that task's
-- outputs (the stored objects of `copy_from`, the task whose objects they still are, until set_own_copies gives it
-- its own), its result (copied here, not through the API) and message format($6, its id); and, in the same
-- statement, its ledger line: kind cache_hit, 0 credits, the balance as it is, reason format($7, its id). $8: as
-- mark_queued's $6. No row on a miss or when $1 left $3. Returns the columns of the task object, not the result.
WITH reused AS (
    SELECT id, outputs, coalesce(copy_from, id) AS owner, result FROM tasks
    WHERE id = (  -- the newest qualifying task of the key, looked up once (index tasks_by_cache_key_newest)
        SELECT id FROM tasks
        WHERE user_id = $2 AND cache_key = $5 AND status = 'COMPLETED' AND id <> $1 AND NOT artifacts_deleted
          AND coalesce(result ->> 'status', 'success') = 'success'
          AND (copy_from IS NULL OR cached)
        ORDER BY finished_at DESC
        LIMIT 1
    ) AND status = 'COMPLETED' AND NOT artifacts_deleted AND artifacts_claimed_at IS NULL
      AND NOT jsonb_path_exists(coalesce(outputs, '[]'::jsonb), '$[*] ? (!exists(@.key))')
    FOR SHARE  -- as complete_task's owner: a delete or retention claim waits for this hit, and then sees it
), hit AS (
    UPDATE tasks
    SET status = 'COMPLETED', agents = $4, cache_key = $5, outputs = reused.outputs, message = format($6, reused.id),
        cached = true, copy_from = reused.owner, inputs = inputs_merged(inputs, $8::jsonb),
        result = reused.result, progress = 100, current_agent = NULL, error = NULL, job_id = NULL,
        enqueued_at = NULL, worker_id = NULL, heartbeat_at = NULL, queued_at = now(), started_at = now(),
        finished_at = now(), updated_at = now()
    FROM reused
    WHERE tasks.id = $1 AND tasks.user_id = $2 AND tasks.status = ANY($3)
    RETURNING tasks.id, tasks.user_id, tool_id, agents, status, priority, progress, current_agent, message, error,
              attempts, cached, source_task_id, labels, inputs, created_at, upload_started_at, queued_at, started_at,
              finished_at, expires_at, reused.id AS reused_id
), ledger AS (
    INSERT INTO credit_ledger (user_id, task_id, agent_id, amount, balance, reason, kind, attempt)
    SELECT users.id, hit.id, NULL, 0, users.credits, format($7, hit.reused_id), 'cache_hit', NULL
    FROM hit JOIN users ON users.id = hit.user_id
)
SELECT * FROM hit;

-- name: set_own_copies
-- Cache hit $1 has its own copies of the outputs it took from task $2: they replace them ($3). No row when it is
-- gone, or another call made its copies first (the caller then deletes its own).
UPDATE tasks SET outputs = $3, copy_from = NULL, updated_at = now()
WHERE id = $1 AND copy_from = $2
RETURNING id;

-- name: pending_copies
-- User $1's cache hits whose outputs are still task $2's stored objects: deleting $2 makes their copies first.
SELECT id, outputs FROM tasks WHERE copy_from = $2 AND user_id = $1;

-- name: cache_hit_to_copy
-- Cache hit $1 while its outputs are still the stored objects of task copy_from (its own copies not made yet).
SELECT id, user_id, copy_from, outputs FROM tasks WHERE id = $1 AND copy_from IS NOT NULL;

-- name: cache_hits_to_copy
-- Up to $2 cache hits completed more than $1 seconds ago, and less than a day ago, whose own copies are still not
-- made (their copy job was lost), oldest first (index tasks_by_copy_from). A day on, a hit whose copies still
-- fail (the objects it reads are gone) is left as it is: retried every minute for ever, the oldest of them would
-- take the whole batch and starve the newer ones.
SELECT id, user_id, copy_from, outputs FROM tasks
WHERE copy_from IS NOT NULL AND finished_at < now() - make_interval(secs => $1)
  AND finished_at > now() - interval '1 day'
ORDER BY finished_at
LIMIT $2;

-- name: count_cache_hits
-- How many of user $1's tasks the result cache completed (their ledger lines outlive the tasks).
SELECT count(*) FROM credit_ledger WHERE user_id = $1 AND kind = 'cache_hit';

-- name: dispatch_user
-- Give jobs to user $1's waiting QUEUED tasks while fewer than $2 of the user's tasks are active (PROCESSING, or
-- QUEUED with a job). Most urgent first: queue time minus the priority's head start ($3: {priority: seconds}),
-- so a waiting low task ages past newer normal ones. Serialised per user (the function of migration 014 takes the
-- user's dispatch lock first, in a statement of its own; it reads only indexes bounded by the cap).
SELECT task_id AS id, job AS job_id, task_priority AS priority FROM dispatch_waiting($1, $2, $3);

-- name: unlock_and_dispatch
-- unlock_user_events for user $1, then dispatch_user($1, $2, $3), in one statement: the end of a run whose completion
-- events are published (one round trip less than the two).
SELECT task_id AS id, job AS job_id, task_priority AS priority FROM unlock_and_dispatch($1, $2, $3);

-- name: users_waiting_dispatch
-- Users with QUEUED tasks waiting for dispatch (the recovery loop dispatches them as a safety net).
SELECT DISTINCT user_id FROM tasks WHERE status = 'QUEUED' AND job_id IS NULL LIMIT $1;

-- name: claim_job
-- A worker running arq job $3 takes its QUEUED task: exactly one of several racing workers gets the row, and a
-- stale job of an earlier queueing (its id is no longer the task's) claims nothing. The run fetches its inputs
-- first: the PROCESSING event says so (a progress event of its own cost the run a transaction).
UPDATE tasks
SET status = 'PROCESSING', attempts = attempts + 1, worker_id = $2, started_at = now(), heartbeat_at = now(),
    message = 'Fetching inputs', updated_at = now()
WHERE id = $1 AND status = 'QUEUED' AND job_id = $3
RETURNING *;

-- name: set_progress
-- Progress of a running task; never goes down. Only the run holding the task's current job ($5) reports.
UPDATE tasks
SET progress = greatest(progress, $2), current_agent = $3, message = $4, heartbeat_at = now(), updated_at = now()
WHERE id = $1 AND status = 'PROCESSING' AND progress <= $2 AND ($5::text IS NULL OR job_id = $5)
RETURNING id, user_id, progress, current_agent, message, updated_at;

-- name: complete_task
-- PROCESSING -> COMPLETED with outputs and the result summary. $6: the task whose stored objects some of the outputs
-- still are (a later search page's search_result.csv is its dataset's kept one until its copy job copies it, as a
-- cache hit's are): no row when that task is gone or its files are going (retention or a delete claimed them,
-- artifacts_claimed_at: both claim before they list the tasks reading their files, pending_copies). The owner's row
-- is share-locked: a claim waits for this completion, and then sees it.
UPDATE tasks
SET status = 'COMPLETED', progress = 100, current_agent = NULL, message = $4, outputs = $2, result = $3,
    finished_at = now(), heartbeat_at = NULL, updated_at = now(), copy_from = $6
WHERE id = $1 AND status = 'PROCESSING' AND ($5::text IS NULL OR job_id = $5)
  AND ($6::uuid IS NULL OR EXISTS (
      SELECT 1 FROM tasks owner
      WHERE owner.id = $6 AND NOT owner.artifacts_deleted AND owner.artifacts_claimed_at IS NULL
      FOR SHARE))
RETURNING *;

-- name: fail_task
-- -> FAILED with an error {code, message}.
UPDATE tasks
SET status = 'FAILED', error = $2, message = $2::jsonb ->> 'message', finished_at = now(), heartbeat_at = NULL,
    updated_at = now()
WHERE id = $1 AND status = ANY($3) AND ($4::text IS NULL OR job_id = $4)
RETURNING *;

-- name: requeue_task
-- The run holding job $3 gives its task back to the queue under a fresh job $2 (a transient fault to retry after
-- a backoff, or a worker shutting down). $5: true when this run does not count against the attempt limit.
UPDATE tasks
SET status = 'QUEUED', job_id = $2, queued_at = now(), enqueued_at = now() + make_interval(secs => $6),
    progress = 0, current_agent = NULL, message = $4, started_at = NULL, worker_id = NULL, heartbeat_at = NULL,
    attempt_base = attempt_base + CASE WHEN $5 THEN 1 ELSE 0 END, updated_at = now()
WHERE id = $1 AND status = 'PROCESSING' AND job_id = $3
RETURNING *;

-- name: cancel_task
-- -> CANCELLED from any non-terminal state.
UPDATE tasks
SET status = 'CANCELLED', error = '{"code": "CANCELLED", "message": "Cancelled by the user"}'::jsonb,
    message = 'Cancelled', finished_at = now(), heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND user_id = $2 AND status = ANY($3)
RETURNING *;

-- name: claim_for_delete
-- Task $1's files are about to go with it (lifecycle.delete_task): claimed first, as retention claims them, so that
-- no task starts reading them (complete_task's and complete_from_cache's owner check) after the delete has listed
-- those that do (pending_copies). Waits for such a completion in flight (its share lock on this row).
UPDATE tasks SET artifacts_claimed_at = now() WHERE id = $1 AND user_id = $2;

-- name: delete_task
-- Remove a terminal task and its events; returns the task as it was. The deletion event written next in the same
-- transaction outlives it (task_events has no foreign key to tasks since 007_delete_event). A task some task (or
-- tombstone) was chained on leaves a tombstone (deleted_versions, migration 015): /lineage walks on through it.
WITH gone AS (
    DELETE FROM tasks WHERE id = $1 AND user_id = $2 AND status = ANY($3) RETURNING *
), history AS (
    DELETE FROM task_events WHERE task_id IN (SELECT id FROM gone)
), tombstone AS (
    INSERT INTO deleted_versions (id, user_id, tool_id, status, created_at, source_task_id, rows_out, dataset_rows,
                                  rows, transformations)
    SELECT g.id, g.user_id, g.tool_id, g.status, g.created_at, g.source_task_id, g.result #> '{summary,rows_out}',
           g.result #> '{summary,dataset,rows}', g.result #> '{summary,rows}', g.result #> '{summary,transformations}'
    FROM gone g
    WHERE EXISTS (SELECT 1 FROM tasks c WHERE c.source_task_id = g.id AND c.user_id = g.user_id)
       OR EXISTS (SELECT 1 FROM deleted_versions v WHERE v.source_task_id = g.id AND v.user_id = g.user_id)
    ON CONFLICT (id) DO NOTHING
)
SELECT * FROM gone;

-- name: task_status
-- Current status of a task, to explain a refused transition.
SELECT status FROM tasks WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2);

-- name: insert_events
-- A transaction's event rows ($3 their types, $4 their payloads, in order), after taking the user's SESSION-level
-- event lock, held past COMMIT until the events are published (then released by unlock_user_events): event ids
-- commit, and are published, in id order within every stream of that user, and a client never hears of a change
-- before it is committed. Ids are drawn in the order given (the ORDER BY), so the caller pairs them sorted.
WITH user_lock AS (SELECT pg_advisory_lock(hashtextextended($2::uuid::text, 0)))
INSERT INTO task_events (task_id, user_id, type, payload)
SELECT $1::uuid, $2::uuid, e.type, e.payload
FROM user_lock, unnest($3::text[], $4::jsonb[]) WITH ORDINALITY AS e(type, payload, position)
ORDER BY e.position
RETURNING id;

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

-- name: count_all_by_tool_and_status
-- All tasks per tool and status (/metrics, at each scrape).
SELECT tool_id, status, count(*) AS n FROM tasks GROUP BY tool_id, status;

-- name: queued_by_priority
-- Queue depth per priority (admin): all QUEUED tasks, and those of them waiting for their user's running cap.
SELECT priority, count(*) AS n, count(*) FILTER (WHERE job_id IS NULL) AS waiting
FROM tasks WHERE status = 'QUEUED' GROUP BY priority;

-- name: processing_health
-- PROCESSING tasks, and those whose heartbeat is older than $1 seconds (stuck: the reaper will take them).
SELECT count(*) AS running, count(*) FILTER (WHERE heartbeat_at < now() - make_interval(secs => $1)) AS stuck
FROM tasks WHERE status = 'PROCESSING';

-- name: lock_user_credits
-- The user's balance, locked until the end of the transaction.
SELECT credits FROM users WHERE id = $1 FOR UPDATE;

-- name: task_credit_net
-- What run $2 of task $1 has cost so far, net of its refunds (negative: credits taken). Lines written before
-- runs were recorded (attempt NULL, migration 006) count with whichever run is refunded first.
SELECT COALESCE(SUM(amount), 0)::bigint FROM credit_ledger WHERE task_id = $1 AND (attempt = $2 OR attempt IS NULL);

-- name: agent_credit_net
-- What agent $3 of run $2 of task $1 has cost, net of its refunds (negative: credits taken).
SELECT COALESCE(SUM(amount), 0)::bigint FROM credit_ledger WHERE task_id = $1 AND attempt = $2 AND agent_id = $3;

-- name: debit_agent
-- Debit agent $3 of run $5 of task $2 as it starts, $4 credits from user $1, in one statement (one round trip; a
-- transaction of four statements took six). Returns: holds (the run still holds its task: PROCESSING under attempt
-- $5, its row share-locked until the end, so that a cancel or a reaper's requeue waits for the debit in flight and
-- refunds it after), debited (by an earlier try of this same debit) and the balance after the debit (NULL when
-- nothing was debited: gone, debited before, or the balance is short).
-- Its snapshot is taken when it starts: a debit of the same agent run committed while this one waited for the user's
-- row (the UPDATE's lock) is not seen by `earlier`, and is refused by credit_ledger_one_debit_per_agent_run instead
-- (UniqueViolation, the whole statement undone).
WITH run AS (
    SELECT 1 FROM tasks WHERE id = $2 AND status = 'PROCESSING' AND attempts = $5 FOR SHARE
), earlier AS (
    SELECT 1 FROM credit_ledger WHERE task_id = $2 AND attempt = $5 AND agent_id = $3 AND kind = 'debit'
), debit AS (
    UPDATE users SET credits = credits - $4
    WHERE id = $1 AND credits >= $4 AND EXISTS (SELECT 1 FROM run) AND NOT EXISTS (SELECT 1 FROM earlier)
    RETURNING credits
), line AS (
    INSERT INTO credit_ledger (user_id, task_id, agent_id, amount, balance, reason, kind, attempt)
    SELECT $1, $2, $3, -$4, credits, 'agent run', 'debit', $5 FROM debit
)
SELECT EXISTS (SELECT 1 FROM run) AS holds, EXISTS (SELECT 1 FROM earlier) AS debited,
       (SELECT credits FROM debit) AS balance;

-- name: user_credits
-- A user's balance, disabled or not (a disabled user's queued tasks still run).
SELECT credits FROM users WHERE id = $1;

-- name: credit_user
-- Give $2 credits back to user $1.
UPDATE users SET credits = credits + $2 WHERE id = $1 RETURNING credits;


-- name: worker_heartbeat
-- Register worker $1 or refresh it, and the heartbeat of the tasks it runs ($2: their ids). A worker the
-- reaper forgot (a long pause) registers again.
WITH beat AS (
    UPDATE tasks SET heartbeat_at = now()
    WHERE id = ANY($2::uuid[]) AND status = 'PROCESSING' AND worker_id = $1
    RETURNING id
), registered AS (
    INSERT INTO workers (worker_id, host, pid, running_tasks)
    VALUES ($1, $3, $4, $2::text[])
    ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now(), running_tasks = excluded.running_tasks
)
SELECT id FROM beat;

-- name: list_workers
-- The worker registry, most recently seen first.
SELECT worker_id, host, pid, started_at, last_seen_at, running_tasks FROM workers ORDER BY last_seen_at DESC;

-- name: deregister_worker
-- A worker leaving cleanly.
DELETE FROM workers WHERE worker_id = $1;

-- name: forget_silent_workers
-- Registry rows of workers not seen for $1 seconds (gone without deregistering).
DELETE FROM workers WHERE last_seen_at < now() - make_interval(secs => $1) RETURNING worker_id;

-- name: stale_tasks
-- PROCESSING tasks whose heartbeat is older than $1 seconds: their worker is presumed lost.
SELECT id, attempts, attempts - attempt_base AS runs FROM tasks
WHERE status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => $1)
ORDER BY heartbeat_at LIMIT $2;

-- name: requeue_stale_task
-- A lost worker's task back to QUEUED under a fresh job id ($2). Conditional on the heartbeat still being
-- stale ($3 s) and the attempt count read ($4): of several reapers racing, one gets the row.
UPDATE tasks
SET status = 'QUEUED', job_id = $2, queued_at = now(), enqueued_at = NULL, progress = 0, current_agent = NULL,
    message = $5, started_at = NULL, worker_id = NULL, heartbeat_at = NULL, updated_at = now()
WHERE id = $1 AND status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => $3) AND attempts = $4
RETURNING *;

-- name: fail_stale_task
-- A lost worker's task that has used its attempts: FAILED with error $2. Same conditions as requeue_stale_task.
UPDATE tasks
SET status = 'FAILED', error = $2, message = $2::jsonb ->> 'message', finished_at = now(), heartbeat_at = NULL,
    updated_at = now()
WHERE id = $1 AND status = 'PROCESSING' AND heartbeat_at < now() - make_interval(secs => $3) AND attempts = $4
RETURNING *;

-- name: queued_tasks_to_check
-- QUEUED tasks whose job was put in Redis more than $1 seconds ago: the reconciler checks their job exists.
SELECT id, job_id FROM tasks
WHERE status = 'QUEUED' AND job_id IS NOT NULL AND greatest(queued_at, enqueued_at) < now() - make_interval(secs => $1)
ORDER BY queued_at LIMIT $2;

-- name: replace_lost_job
-- A QUEUED task whose job ($3) is not in Redis gets a fresh job id ($2). Conditional on the old job id, so
-- of several reconcilers racing, one enqueues.
UPDATE tasks
SET job_id = $2, enqueued_at = now(), message = $4, updated_at = now()
WHERE id = $1 AND status = 'QUEUED' AND job_id = $3
RETURNING *;

-- ===== maintenance (worker/maintenance.py) =====

-- name: tasks_to_expire
-- CREATED/UPLOADING tasks past their upload deadline, earliest first (statuses spelled out: tasks_upload_expiry).
SELECT id FROM tasks
WHERE status IN ('CREATED', 'UPLOADING') AND expires_at < now()
ORDER BY expires_at LIMIT $1;

-- name: expire_task
-- A task in $2 (CREATED/UPLOADING) past its upload deadline -> EXPIRED with error $3. Of several workers racing,
-- one expires it; a process or cancel that got in first keeps the task.
UPDATE tasks
SET status = 'EXPIRED', error = $3, message = $3::jsonb ->> 'message', finished_at = now(), updated_at = now()
WHERE id = $1 AND status = ANY($2) AND expires_at < now()
RETURNING *;

-- name: claim_artifacts_to_delete
-- Up to $3 terminal tasks finished more than $1 seconds ago whose stored objects are still there, leased for $2
-- seconds: racing workers take different tasks, and a task whose worker died mid-deletion is taken again once
-- the lease runs out. artifacts_deleted is set only after the objects are gone (mark_artifacts_deleted).
UPDATE tasks t
SET artifacts_claimed_at = now()
FROM (
    SELECT id FROM tasks
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') AND NOT artifacts_deleted
      AND finished_at < now() - make_interval(secs => $1)
      AND (artifacts_claimed_at IS NULL OR artifacts_claimed_at < now() - make_interval(secs => $2))
      AND NOT EXISTS (SELECT 1 FROM tasks hit WHERE hit.copy_from = tasks.id)  -- a cache hit still reads them
    ORDER BY finished_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) due
WHERE t.id = due.id
RETURNING t.id, t.user_id;

-- name: mark_artifacts_deleted
-- The stored objects of claimed task $1 are deleted. Not when it has been retried since the claim (no longer
-- terminal, or finished within the last $2 seconds): its new objects are kept until their own retention ends. A
-- cache hit whose own copies were never made (copy_from) no longer holds its source's objects.
UPDATE tasks SET artifacts_deleted = true, copy_from = NULL, updated_at = now()
WHERE id = $1 AND status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') AND NOT artifacts_deleted
  AND finished_at < now() - make_interval(secs => $2)
RETURNING id;

-- name: insert_task_under_cap
-- create in one round trip (issue 14): insert_task unless user $2 already has $12 unfinished tasks (the cap;
-- admins have none), counted as unfinished_tasks does. One row: the new task's columns with `unfinished` (the count
-- before it, NULL for an admin); every task column NULL when nothing was inserted, because of the cap
-- (unfinished >= $12) or an earlier task with the same Idempotency-Key.
WITH cap AS (
    SELECT CASE WHEN u.is_admin THEN NULL ELSE (
        SELECT count(*) FROM tasks t
        WHERE t.user_id = u.id AND t.status IN ('CREATED', 'UPLOADING', 'QUEUED', 'PROCESSING')
    ) END AS unfinished
    FROM users u WHERE u.id = $2
), inserted AS (
    INSERT INTO tasks (id, user_id, tool_id, agents, status, priority, parameters, source_task_id, labels,
                       idempotency_key, expires_at, message, request_hash)
    SELECT $1, $2, $3, $4, 'CREATED', $5, $6, $7, $8, $9, now() + make_interval(secs => $10), 'Waiting for uploads',
           $11
    FROM cap WHERE cap.unfinished IS NULL OR cap.unfinished < $12
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING *
)
SELECT inserted.*, cap.unfinished FROM cap LEFT JOIN inserted ON true;

