-- When a user's API key was last rotated: stream tokens issued before it are refused (a token got with a leaked
-- key dies with that key).
ALTER TABLE users ADD COLUMN key_rotated_at timestamptz;

-- An agent is debited at most once per run of its task: a debit retried after its COMMIT's answer was lost
-- (durable_write) finds its line instead of charging again. Lines from before migration 006 have no attempt
-- and stay out of it.

CREATE UNIQUE INDEX credit_ledger_one_debit_per_agent_run ON credit_ledger (task_id, attempt, agent_id)
    WHERE kind = 'debit' AND attempt IS NOT NULL;
