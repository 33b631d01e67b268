-- Expiry and retention (worker/maintenance.py): a lease on a task's stored objects while a worker deletes
-- them, and partial indexes that find the tasks to expire and the tasks whose objects are due for deletion.

ALTER TABLE tasks ADD COLUMN artifacts_claimed_at timestamptz;  -- when a worker last took the deletion on

CREATE INDEX tasks_upload_expiry ON tasks (expires_at) WHERE status IN ('CREATED', 'UPLOADING');
CREATE INDEX tasks_retention ON tasks (finished_at)
    WHERE NOT artifacts_deleted AND status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');
