-- Users, tasks and the durable task event log behind SSE.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    api_key_hash  bytea NOT NULL UNIQUE,
    is_admin      boolean NOT NULL DEFAULT false,
    credits       bigint NOT NULL DEFAULT 0 CHECK (credits >= 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id                 uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool_id            text NOT NULL,
    agents             text[] NOT NULL,
    status             text NOT NULL CHECK (status IN ('CREATED', 'UPLOADING', 'QUEUED', 'PROCESSING',
                                                       'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED')),
    priority           text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    progress           smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    current_agent      text,
    message            text,
    error              jsonb,
    attempts           integer NOT NULL DEFAULT 0,
    cached             boolean NOT NULL DEFAULT false,
    source_task_id     uuid REFERENCES tasks (id) ON DELETE SET NULL,
    labels             jsonb NOT NULL DEFAULT '{}'::jsonb,
    parameters         jsonb,                                  -- inline parameters, keyed by agent id
    has_parameters     boolean NOT NULL DEFAULT false,         -- parameters.json is expected in the store
    inputs             jsonb NOT NULL DEFAULT '[]'::jsonb,     -- [{name, role, content_type, size, sha256?}]
    outputs            jsonb NOT NULL DEFAULT '[]'::jsonb,     -- [{name, content_type, size}]
    result             jsonb,                                  -- the result summary served by /result
    worker_id          text,
    heartbeat_at       timestamptz,
    job_id             text,
    idempotency_key    text,
    artifacts_deleted  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    upload_started_at  timestamptz,
    queued_at          timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    expires_at         timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);

CREATE INDEX tasks_user_newest ON tasks (user_id, created_at DESC, id DESC);
CREATE INDEX tasks_active ON tasks (status, priority) WHERE status IN ('QUEUED', 'PROCESSING');

CREATE TABLE task_events (
    id          bigserial PRIMARY KEY,
    task_id     uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    type        text NOT NULL CHECK (type IN ('status', 'progress', 'done')),
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX task_events_by_task ON task_events (task_id, id);
CREATE INDEX task_events_by_user ON task_events (user_id, id);

CREATE TABLE credit_ledger (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    task_id     uuid REFERENCES tasks (id) ON DELETE SET NULL,
    agent_id    text,
    amount      bigint NOT NULL,            -- negative = debit, positive = grant
    balance     bigint NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX credit_ledger_by_user ON credit_ledger (user_id, id);
