-- Rollups of check results: one row per (job, location, granularity, bucket
-- start). location '' is the job over all its locations; a job that runs in
-- several locations also has one row per location. Every column is
-- additive (or LEAST/GREATEST), so rows merge exactly on upsert.
CREATE TABLE job_metrics (
    job_id       uuid             NOT NULL,
    location     text             NOT NULL,
    -- Bucket width: '1m', '5m', '1h', '1d', ...
    granularity  text             NOT NULL,
    -- Bucket start (UTC) of the time the checks started.
    dt           timestamptz      NOT NULL,
    -- Response-time aggregates in milliseconds over checks that measured one.
    rt_min       double precision,
    rt_max       double precision,
    rt_sum       double precision NOT NULL DEFAULT 0,
    rt_count     bigint           NOT NULL DEFAULT 0,
    -- Sparse counts per fixed log-scale response-time bucket,
    -- {"<bucket index>": count} (see monitor_store::models::job_metrics::histogram),
    -- merged key by key.
    rt_histogram jsonb            NOT NULL DEFAULT '{}'::jsonb,
    -- Every check, and those whose outcome was OK (uptime = passed / checks).
    checks       bigint           NOT NULL,
    passed       bigint           NOT NULL,
    -- HTTP status counters, {"200": 12, "404": 1}, as in the proof of concept.
    data         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    -- Outcome counters of failed checks, by CheckOutcome name,
    -- {"CHECK_OUTCOME_TIMEOUT": 2, "CHECK_OUTCOME_ASSERTION_FAILED": 1}.
    errors       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, location, granularity, dt)
);

CREATE INDEX job_metrics_granularity_dt_idx ON job_metrics (granularity, dt);

-- The next Kafka offset to read per partition, written in the same
-- transaction as the rollups it accounts for.
CREATE TABLE consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Key-by-key sum of two JSON objects of counters.
CREATE FUNCTION monitor_jsonb_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
    FROM (
        SELECT key, sum(value::bigint) AS total
        FROM (SELECT * FROM jsonb_each_text(coalesce(a, '{}'::jsonb))
              UNION ALL
              SELECT * FROM jsonb_each_text(coalesce(b, '{}'::jsonb))) AS both_sides
        GROUP BY key
    ) AS summed
$$;
