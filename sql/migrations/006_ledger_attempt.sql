-- Which run of a task a ledger line belongs to: a refund gives back what that run was charged, never what an
-- earlier run of the same task was (a FAILED task retried, then cancelled, is refunded its second run only).

ALTER TABLE credit_ledger ADD COLUMN attempt integer;  -- tasks.attempts of the run; NULL: grants, older lines

CREATE INDEX credit_ledger_by_task ON credit_ledger (task_id, attempt) WHERE task_id IS NOT NULL;
