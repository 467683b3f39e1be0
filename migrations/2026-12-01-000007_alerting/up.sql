-- Alerting: rules over jobs, silences, incidents with their timeline, the
-- evaluator's state per (rule, job), and the outbox of notification intents
-- that dispatchers deliver. The evaluator (the `alert` worker role) writes
-- its state, incidents, timeline events and outbox rows in one transaction
-- with its consumer group's offsets (consumer_offsets), so a crash, a replay
-- or a rebalance never opens an incident twice or loses a resolve. The
-- server writes rules and silences, and acknowledges or resolves incidents.

CREATE TABLE alert_rules (
    id                     uuid        PRIMARY KEY,
    name                   text        NOT NULL,
    -- The jobs it covers: these ids, and/or every job carrying all of these
    -- labels; both empty: every job.
    job_ids                uuid[]      NOT NULL DEFAULT '{}',
    label_selector         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- A location is failing after this many consecutive failed checks and
    -- recovered after success_threshold consecutive passed ones.
    failure_threshold      integer     NOT NULL DEFAULT 3,
    success_threshold      integer     NOT NULL DEFAULT 2,
    -- The job is down when at least this many of its locations fail, or
    -- (when min_failing_percent > 0) at least this share of them.
    min_failing_locations  integer     NOT NULL DEFAULT 1,
    min_failing_percent    integer     NOT NULL DEFAULT 0,
    -- Whether a running job without results for max(3 x interval, 60 s)
    -- opens an incident.
    no_data                boolean     NOT NULL DEFAULT true,
    severity               text        NOT NULL DEFAULT 'critical',
    -- Notification channels (ids; the channels themselves arrive with
    -- notifications).
    channel_ids            uuid[]      NOT NULL DEFAULT '{}',
    -- Reminders while open and unacknowledged (0: none).
    repeat_interval_ms     bigint      NOT NULL DEFAULT 0,
    notify_on_resolve      boolean     NOT NULL DEFAULT true,
    -- Flapping: more than flap_threshold changes between down and up within
    -- flap_window_ms (flap_threshold 0: not detected).
    flap_threshold         integer     NOT NULL DEFAULT 0,
    flap_window_ms         bigint      NOT NULL DEFAULT 600000,
    enabled                boolean     NOT NULL DEFAULT true,
    version                bigint      NOT NULL DEFAULT 1,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_rules_name_key UNIQUE (name),
    CONSTRAINT alert_rules_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT alert_rules_failure_threshold_range CHECK (failure_threshold BETWEEN 1 AND 100),
    CONSTRAINT alert_rules_success_threshold_range CHECK (success_threshold BETWEEN 1 AND 100),
    CONSTRAINT alert_rules_min_failing_locations_range CHECK (min_failing_locations BETWEEN 1 AND 64),
    CONSTRAINT alert_rules_min_failing_percent_range CHECK (min_failing_percent BETWEEN 0 AND 100),
    CONSTRAINT alert_rules_severity_known CHECK (severity IN ('critical', 'warning', 'info')),
    CONSTRAINT alert_rules_repeat_interval_range CHECK (repeat_interval_ms = 0 OR repeat_interval_ms BETWEEN 60000 AND 604800000),
    CONSTRAINT alert_rules_flap_threshold_range CHECK (flap_threshold BETWEEN 0 AND 100),
    CONSTRAINT alert_rules_flap_window_range CHECK (flap_window_ms BETWEEN 60000 AND 86400000),
    CONSTRAINT alert_rules_version_positive CHECK (version > 0)
);

-- Silences and maintenance windows: while one matching a job is active, its
-- incidents still open (recorded as silenced) but notify nobody.
CREATE TABLE silences (
    id             uuid        PRIMARY KEY,
    -- The jobs it covers, as for rules (both empty: every job).
    job_ids        uuid[]      NOT NULL DEFAULT '{}',
    label_selector jsonb       NOT NULL DEFAULT '{}'::jsonb,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    -- NULL: active for all of [starts_at, ends_at). Else a weekly window
    -- within it: {"days": ["mon", ...], "start": "HH:MM", "duration_ms": n,
    -- "time_zone": "Europe/Berlin"}.
    recurrence     jsonb,
    comment        text        NOT NULL DEFAULT '',
    -- The name of the API token that made it.
    created_by     text        NOT NULL DEFAULT '',
    version        bigint      NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT silences_window_order CHECK (starts_at < ends_at),
    CONSTRAINT silences_comment_length CHECK (char_length(comment) <= 1024),
    CONSTRAINT silences_version_positive CHECK (version > 0)
);

-- One per (job, rule) episode. rule and job survive as names when their
-- rows are deleted.
CREATE TABLE incidents (
    id                uuid        PRIMARY KEY,
    rule_id           uuid        REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name         text        NOT NULL,
    job_id            uuid        NOT NULL,
    job_name          text        NOT NULL,
    severity          text        NOT NULL,
    -- What opened it: 'down' (enough failing locations) or 'no_data'.
    cause             text        NOT NULL,
    opened_at         timestamptz NOT NULL,
    acknowledged_at   timestamptz,
    acknowledged_by   text,
    resolved_at       timestamptz,
    -- 'evaluator' when the job recovered, else the token name that resolved it.
    resolved_by       text,
    failing_locations text[]      NOT NULL DEFAULT '{}',
    -- The first failed result: outcome, status_code, error, worker_id,
    -- location, check_id, start_time.
    first_failure     jsonb,
    -- When the check that crossed the threshold ended (its start plus its
    -- duration): what detection latency is measured from.
    detected_check_end timestamptz,
    silenced          boolean     NOT NULL DEFAULT false,
    flapping          boolean     NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT incidents_cause_known CHECK (cause IN ('down', 'no_data')),
    CONSTRAINT incidents_severity_known CHECK (severity IN ('critical', 'warning', 'info'))
);

-- At most one open incident per (rule, job): the database refuses a second.
CREATE UNIQUE INDEX incidents_one_open_idx ON incidents (rule_id, job_id) WHERE resolved_at IS NULL;
CREATE INDEX incidents_opened_at_idx ON incidents (opened_at DESC, id);
CREATE INDEX incidents_job_id_idx ON incidents (job_id, opened_at DESC);

-- Each incident's timeline.
CREATE TABLE incident_events (
    id          bigserial   PRIMARY KEY,
    incident_id uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    -- opened, location_failed, location_recovered, data_missing,
    -- data_resumed, acknowledged, silenced, unsilenced, reminder, flapping,
    -- flapping_ended, resolved.
    kind        text        NOT NULL,
    location    text        NOT NULL DEFAULT '',
    detail      text        NOT NULL DEFAULT '',
    -- Who did it: a token name, or '' for the evaluator.
    actor       text        NOT NULL DEFAULT ''
);

CREATE INDEX incident_events_incident_idx ON incident_events (incident_id, id);

-- The evaluator's state per (rule, job): per-location counters, whether the
-- job is down, its open incident, flapping history. Loaded by the owner of
-- `partition` (the results topic partition the job's results are on).
CREATE TABLE alert_state (
    rule_id    uuid        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    job_id     uuid        NOT NULL,
    partition  integer     NOT NULL,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule_id, job_id)
);

CREATE INDEX alert_state_partition_idx ON alert_state (partition);

-- Notification intents: written in the transaction that decides them, with
-- a dedup key (incident id and event) so a replay or a failover never asks
-- twice; delivered by the dispatchers.
CREATE TABLE notification_outbox (
    id          bigserial   PRIMARY KEY,
    dedup_key   text        NOT NULL,
    incident_id uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    -- opened, reminder, acknowledged, resolved, flapping, flapping_ended.
    event       text        NOT NULL,
    channel_ids uuid[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    due_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT notification_outbox_dedup_key UNIQUE (dedup_key)
);

CREATE INDEX notification_outbox_due_idx ON notification_outbox (due_at, id);
