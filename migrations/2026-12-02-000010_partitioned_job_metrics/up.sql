-- job_metrics becomes a declaratively partitioned table, keeping its rows:
-- LIST by granularity (one partition per label, `job_metrics_1m`), each of
-- those RANGE by dt: a partition per UTC day for widths under an hour
-- (`job_metrics_1m_20261202`, 1 440 rows a day per job and location at 1m)
-- and per UTC month otherwise (`job_metrics_1h_202612`). Retention then drops
-- whole partitions instead of deleting rows, and a read over one job's hour
-- rows touches only that granularity's months.
--
-- There is no DEFAULT partition: a row whose partition is missing fails
-- the flush, which creates it (monitor_ensure_metric_partitions) and
-- retries; a default partition would instead block creating the range
-- partition its rows belong to.
--
-- The old table is renamed first so the new parent has the name every query
-- uses, and so the same function creates the partitions for the existing
-- rows, for the aggregators' new buckets and ahead of time.

ALTER TABLE job_metrics RENAME TO job_metrics_plain;
ALTER TABLE job_metrics_plain RENAME CONSTRAINT job_metrics_pkey TO job_metrics_plain_pkey;
-- Served retention's DELETE; retention now drops partitions, and the
-- primary key serves every read.
DROP INDEX job_metrics_granularity_dt_idx;

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
    -- Holds both partition keys, so the aggregator's ON CONFLICT upsert
    -- works unchanged.
    PRIMARY KEY (job_id, location, granularity, dt)
) PARTITION BY LIST (granularity);

-- 'day' for a granularity label narrower than an hour, else 'month': the
-- span of one of its partitions. The one home of that rule (Rust asks here).
-- Refuses anything but <N><s|m|h|d> (N without leading zero, at most ten
-- digits) with invalid_parameter_value, so a label only ever reaches a
-- partition name (also quoted with %I) in that shape.
CREATE FUNCTION monitor_metric_partition_unit(p_granularity text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    seconds numeric;
BEGIN
    IF p_granularity IS NULL OR p_granularity !~ '^[1-9][0-9]{0,9}[smhd]$' THEN
        RAISE EXCEPTION 'invalid granularity %: must be <N><s|m|h|d>', coalesce(quote_literal(p_granularity), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    seconds := left(p_granularity, -1)::numeric
        * CASE right(p_granularity, 1) WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END;
    RETURN CASE WHEN seconds < 3600 THEN 'day' ELSE 'month' END;
END $$;

-- Creates whatever is missing of the partitions of `p_granularity` that hold
-- the instants from `p_from` to `p_to` (both included; pass one time twice
-- for one bucket's partition), and the granularity's own list partition,
-- and returns every partition of that span with its [range_from, range_to).
-- Safe to run from several aggregators at once: creation is serialised by a
-- transaction-scoped advisory lock, and a partition another session created
-- meanwhile (duplicate_table, or unique_violation in the catalog) counts as
-- created. Boundaries are UTC midnights and UTC month starts whatever the
-- session's TimeZone.
CREATE FUNCTION monitor_ensure_metric_partitions(p_granularity text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    unit   text := monitor_metric_partition_unit(p_granularity);
    parent text := 'job_metrics_' || p_granularity;
    start  timestamp;
    child  text;
    made   integer := 0;
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_to < p_from THEN
        RAISE EXCEPTION 'partition span % to % is empty', p_from, p_to USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('monitor_job_metrics_partitions'));
    IF to_regclass(format('%I', parent)) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE %I PARTITION OF job_metrics FOR VALUES IN (%L) PARTITION BY RANGE (dt)',
                           parent, p_granularity);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;
        END;
    END IF;
    start := date_trunc(unit, p_from AT TIME ZONE 'UTC');
    WHILE start <= p_to AT TIME ZONE 'UTC' LOOP
        made := made + 1;
        IF made > 1000 THEN
            RAISE EXCEPTION 'partition span % to % of % needs more than 1000 partitions', p_from, p_to, p_granularity
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        child := parent || '_' || to_char(start, CASE unit WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END);
        partition_name := child;
        range_from := start AT TIME ZONE 'UTC';
        range_to := (start + ('1 ' || unit)::interval) AT TIME ZONE 'UTC';
        IF to_regclass(format('%I', child)) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               child, parent, range_from, range_to);
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;
            END;
        END IF;
        RETURN NEXT;
        start := start + ('1 ' || unit)::interval;
    END LOOP;
END $$;

-- The time-range partitions of `p_granularity` with their bounds, oldest
-- first (none when the granularity has no list partition yet).
CREATE FUNCTION monitor_metric_partitions(p_granularity text)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, bounds[1]::timestamptz, bounds[2]::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid,
    LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS bounds
    WHERE i.inhparent = to_regclass(format('%I', 'job_metrics_' || p_granularity))
    ORDER BY 2
$$;

-- Detaches and drops every partition of `p_granularity` that lies entirely
-- before `p_before`; returns their names. Under the same advisory lock as
-- creation, so a partition is never dropped while it is being created.
CREATE FUNCTION monitor_drop_metric_partitions(p_granularity text, p_before timestamptz)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    parent text := 'job_metrics_' || p_granularity;
    old    record;
BEGIN
    PERFORM monitor_metric_partition_unit(p_granularity);
    PERFORM pg_advisory_xact_lock(hashtext('monitor_job_metrics_partitions'));
    FOR old IN SELECT * FROM monitor_metric_partitions(p_granularity) WHERE range_to <= p_before LOOP
        EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, old.partition_name);
        EXECUTE format('DROP TABLE %I', old.partition_name);
        RETURN NEXT old.partition_name;
    END LOOP;
END $$;

-- Partitions for every existing row, then today's and the next two days'
-- (months') for the granularities already in use.
SELECT monitor_ensure_metric_partitions(granularity, bucket, bucket)
FROM (SELECT DISTINCT granularity,
             date_trunc(monitor_metric_partition_unit(granularity), dt AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket
      FROM job_metrics_plain) AS used;
SELECT monitor_ensure_metric_partitions(granularity, now(),
           ((now() AT TIME ZONE 'UTC') + 2 * ('1 ' || monitor_metric_partition_unit(granularity))::interval) AT TIME ZONE 'UTC')
FROM (SELECT DISTINCT granularity FROM job_metrics_plain) AS used;

INSERT INTO job_metrics SELECT * FROM job_metrics_plain;
DROP TABLE job_metrics_plain;
