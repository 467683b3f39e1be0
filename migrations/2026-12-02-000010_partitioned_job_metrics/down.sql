-- Back to one plain job_metrics table with every row.
CREATE TABLE job_metrics_plain (
    job_id       uuid             NOT NULL,
    location     text             NOT NULL,
    granularity  text             NOT NULL,
    dt           timestamptz      NOT NULL,
    rt_min       double precision,
    rt_max       double precision,
    rt_sum       double precision NOT NULL DEFAULT 0,
    rt_count     bigint           NOT NULL DEFAULT 0,
    rt_histogram jsonb            NOT NULL DEFAULT '{}'::jsonb,
    checks       bigint           NOT NULL,
    passed       bigint           NOT NULL,
    data         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    errors       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT job_metrics_plain_pkey PRIMARY KEY (job_id, location, granularity, dt)
);
INSERT INTO job_metrics_plain SELECT * FROM job_metrics;
DROP TABLE job_metrics;
DROP FUNCTION monitor_drop_metric_partitions(text, timestamptz);
DROP FUNCTION monitor_metric_partitions(text);
DROP FUNCTION monitor_ensure_metric_partitions(text, timestamptz, timestamptz);
DROP FUNCTION monitor_metric_partition_unit(text);
ALTER TABLE job_metrics_plain RENAME TO job_metrics;
ALTER TABLE job_metrics RENAME CONSTRAINT job_metrics_plain_pkey TO job_metrics_pkey;
CREATE INDEX job_metrics_granularity_dt_idx ON job_metrics (granularity, dt);
