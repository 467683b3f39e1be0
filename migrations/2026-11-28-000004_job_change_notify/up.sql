-- Every committed change to a job is announced on the channel monitor_jobs
-- (payload: the job id, both ids when an UPDATE changes it; '*' after a
-- TRUNCATE), so each control-plane replica drops that job from its read
-- cache. NOTIFY is delivered at commit, and not at all for a transaction
-- that rolls back.
CREATE FUNCTION monitor_notify_job_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('monitor_jobs', OLD.id::text);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id <> OLD.id) THEN
        PERFORM pg_notify('monitor_jobs', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION monitor_notify_job_change();

CREATE FUNCTION monitor_notify_jobs_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('monitor_jobs', '*');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify_truncate
    AFTER TRUNCATE ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION monitor_notify_jobs_truncated();
