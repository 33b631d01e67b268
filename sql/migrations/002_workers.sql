-- Worker registry and heartbeats (recovery of tasks whose worker vanished).

CREATE TABLE workers (
    worker_id      text PRIMARY KEY,
    host           text NOT NULL,
    pid            integer NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    running_tasks  text[] NOT NULL DEFAULT '{}'
);

-- When the task's current arq job was last put in Redis by the reconciler (queued_at stays the time
-- the task entered QUEUED, which priorities and aging read).
ALTER TABLE tasks ADD COLUMN enqueued_at timestamptz;

CREATE INDEX tasks_processing_heartbeat ON tasks (heartbeat_at) WHERE status = 'PROCESSING';
