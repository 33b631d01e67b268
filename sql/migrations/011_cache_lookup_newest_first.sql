-- The result cache's lookup (query cached_task) takes the user's newest COMPLETED task of a key. Every cache hit is
-- itself a COMPLETED task of that key, so with an index on (user_id, cache_key) alone the lookup read and sorted all
-- of them (and their results) on every hit: it grew with the hits. In finished_at order it reads the newest first.
CREATE INDEX tasks_by_cache_key_newest ON tasks (user_id, cache_key, finished_at DESC) WHERE status = 'COMPLETED';
DROP INDEX tasks_by_cache_key;
