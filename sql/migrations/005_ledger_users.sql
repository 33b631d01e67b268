-- Accounts and honest billing: the kind of every ledger line (GET /api/v1/me/ledger), disabled users, the request
-- hash that tells an Idempotency-Key replay from a conflicting reuse, and the index behind the per-user cap on
-- unfinished tasks.

ALTER TABLE credit_ledger ADD COLUMN kind text;
UPDATE credit_ledger SET kind = CASE
    WHEN amount < 0 THEN 'debit'
    WHEN reason LIKE 'refund%' THEN 'refund'
    WHEN reason LIKE 'cache%' THEN 'cache_hit'
    ELSE 'grant'
END;
ALTER TABLE credit_ledger
    ALTER COLUMN kind SET NOT NULL,
    ADD CONSTRAINT credit_ledger_kind CHECK (kind IN ('debit', 'refund', 'grant', 'cache_hit'));

-- A disabled user's key and stream tokens are refused (user_by_key_hash and get_user skip the row); its data stays.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
CREATE INDEX users_by_name ON users (name);  -- the CLI names users by name

-- sha256 of the create request's normalised body (lifecycle.create_task); NULL for tasks created before this
-- migration, whose replays are not checked.
ALTER TABLE tasks ADD COLUMN request_hash bytea;

-- Statuses spelled out as the query unfinished_tasks spells them, so that the planner uses this index.
CREATE INDEX tasks_unfinished_by_user ON tasks (user_id)
    WHERE status IN ('CREATED', 'UPLOADING', 'QUEUED', 'PROCESSING');
