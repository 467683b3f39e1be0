-- Notifications: the channels people are told on, and the delivery of the
-- outbox's intents to them. Each outbox row gets one `outbox_deliveries`
-- row per channel it names (written by a trigger in the transaction that
-- writes the outbox row, so every writer, evaluator and server alike, is
-- covered); the dispatchers (`monitor-worker alert --dispatch`) claim due
-- ones with FOR UPDATE SKIP LOCKED and log every attempt in
-- `notification_deliveries`.

CREATE TABLE notification_channels (
    id          uuid        PRIMARY KEY,
    name        text        NOT NULL,
    -- 'webhook' or 'slack'; settings holds that kind's settings.
    kind        text        NOT NULL,
    -- The kind's settings as the API validated them, secrets included
    -- (webhook: url, headers, secret_headers, signing_secret; slack:
    -- webhook_url). The API never answers with the secret values.
    settings    jsonb       NOT NULL,
    enabled     boolean     NOT NULL DEFAULT true,
    version     bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_channels_name_key UNIQUE (name),
    CONSTRAINT notification_channels_name_length CHECK (char_length(name) BETWEEN 1 AND 128),
    CONSTRAINT notification_channels_kind_known CHECK (kind IN ('webhook', 'slack')),
    CONSTRAINT notification_channels_version_positive CHECK (version > 0)
);

-- The delivery state of one (outbox row, channel).
CREATE TABLE outbox_deliveries (
    outbox_id       bigint      NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    channel_id      uuid        NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    -- Attempts started; also the fencing token of the attempt in flight: an
    -- outcome is recorded only by the dispatcher whose claim set it.
    attempts        integer     NOT NULL DEFAULT 0,
    -- When it is due. A claim moves it past the lease, so the row of a
    -- dispatcher that died while sending becomes due again by itself.
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at    timestamptz,
    -- Set when the far end refused for good (a 4xx other than 408 and 429)
    -- or the retries ran past the dispatcher's give-up time.
    given_up_at     timestamptz,
    last_error      text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (outbox_id, channel_id)
);

CREATE INDEX outbox_deliveries_due_idx ON outbox_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- One row per attempt.
CREATE TABLE notification_deliveries (
    id          bigserial   PRIMARY KEY,
    outbox_id   bigint      NOT NULL REFERENCES notification_outbox (id) ON DELETE CASCADE,
    channel_id  uuid        NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    -- The far end's HTTP status (NULL: no answer, see error).
    http_status integer,
    error       text        NOT NULL DEFAULT '',
    duration_ms bigint      NOT NULL,
    -- 'delivered', 'retry' (will be tried again) or 'given_up'.
    outcome     text        NOT NULL,
    CONSTRAINT notification_deliveries_outcome_known CHECK (outcome IN ('delivered', 'retry', 'given_up'))
);

CREATE INDEX notification_deliveries_outbox_idx ON notification_deliveries (outbox_id, id);
CREATE INDEX notification_deliveries_channel_idx ON notification_deliveries (channel_id, id DESC);

-- Every outbox row is delivered to each enabled channel it names that
-- exists when it is written (a rule may name channels deleted since).
CREATE FUNCTION notification_outbox_fan_out() RETURNS trigger AS $$
BEGIN
    INSERT INTO outbox_deliveries (outbox_id, channel_id, next_attempt_at)
    SELECT NEW.id, c.id, NEW.due_at
    FROM notification_channels c
    WHERE c.id = ANY (NEW.channel_ids) AND c.enabled
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER notification_outbox_fan_out AFTER INSERT ON notification_outbox
    FOR EACH ROW EXECUTE FUNCTION notification_outbox_fan_out();
