-- Monitoring jobs: what to check, how often, and whether it should run.
CREATE TABLE jobs (
    id               uuid        PRIMARY KEY,
    name             text        NOT NULL,
    labels           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Which member of the Job.check oneof is set ("http", later "tcp", ...).
    check_kind       text        NOT NULL,
    -- That member in canonical proto3 JSON.
    check_spec       jsonb       NOT NULL,
    interval_ms      bigint      NOT NULL,
    timeout_ms       bigint      NOT NULL,
    desired_state    text        NOT NULL,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state_changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT jobs_name_key UNIQUE (name),
    CONSTRAINT jobs_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT jobs_interval_range CHECK (interval_ms BETWEEN 1000 AND 86400000),
    CONSTRAINT jobs_timeout_range CHECK (timeout_ms > 0 AND timeout_ms <= 60000 AND timeout_ms <= interval_ms),
    CONSTRAINT jobs_desired_state_known CHECK (desired_state IN ('running', 'stopped')),
    CONSTRAINT jobs_version_positive CHECK (version > 0)
);

-- ListJobs filters by desired state and pages by id.
CREATE INDEX jobs_desired_state_id_idx ON jobs (desired_state, id);
-- Label selectors use jsonb containment (labels @> '{"k":"v"}').
CREATE INDEX jobs_labels_idx ON jobs USING gin (labels jsonb_path_ops);
