-- Dataset versions (API.md /lineage) survive deleting a version in the middle of a chain. Until now deleting a task
-- set its children's source_task_id to NULL (the foreign key's ON DELETE SET NULL): R -> C1 -> C2, delete C1, and C2
-- no longer descended from anything, and a child still QUEUED lost the version it was to read (it then failed as if
-- it had no primary input at all).
--
-- Now a child keeps the id of the version it was chained on (no foreign key: the id may name a deleted task), and a
-- deleted task that some task descends from leaves a tombstone here (sql/queries.sql delete_task): its id, the
-- version it was chained on and what /lineage showed of it, so that the walk up from C2 goes on through C1 to R.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_source_task_id_fkey;

CREATE TABLE deleted_versions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool_id         text NOT NULL,
    status          text NOT NULL,
    created_at      timestamptz NOT NULL,
    deleted_at      timestamptz NOT NULL DEFAULT now(),
    source_task_id  uuid,
    rows_out        jsonb,
    dataset_rows    jsonb,
    rows            jsonb,
    transformations jsonb
);

-- delete_task asks whether a tombstone descends from the task it deletes (then that one needs a tombstone too).
CREATE INDEX deleted_versions_by_source ON deleted_versions (source_task_id) WHERE source_task_id IS NOT NULL;
