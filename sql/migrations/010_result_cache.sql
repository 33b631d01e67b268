-- The result cache (API.md "Result cache"): a task's cache key, set when it is queued (service/cache.py), and the
-- index behind the lookup of the user's own COMPLETED task with the same key (query cached_task). The ledger index
-- counts a user's cache hits for GET /api/v1/stats.
ALTER TABLE tasks ADD COLUMN cache_key text;
CREATE INDEX tasks_by_cache_key ON tasks (user_id, cache_key) WHERE status = 'COMPLETED';
CREATE INDEX credit_ledger_cache_hits ON credit_ledger (user_id) WHERE kind = 'cache_hit';

-- A cache hit completes at once, its outputs still the stored objects of task `copy_from`, and makes its own
-- server-side copies right after (lifecycle.make_own_copies), which clears `copy_from`. Until then, deleting task
-- `copy_from` first makes them (query pending_copies, by this index), and retention keeps its objects.
ALTER TABLE tasks ADD COLUMN copy_from uuid;
CREATE INDEX tasks_by_copy_from ON tasks (copy_from) WHERE copy_from IS NOT NULL;
