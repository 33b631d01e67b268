-- Scheduling: per-user dispatch (a QUEUED task with job_id NULL waits in PostgreSQL until its user is under the
-- running cap), attempts counted per queueing (a user's retry starts a fresh budget).

ALTER TABLE tasks ADD COLUMN attempt_base integer NOT NULL DEFAULT 0;  -- attempts when last queued by the user

CREATE INDEX tasks_waiting_by_user ON tasks (user_id, queued_at) WHERE status = 'QUEUED' AND job_id IS NULL;
CREATE INDEX tasks_active_by_user ON tasks (user_id) WHERE status IN ('QUEUED', 'PROCESSING');
