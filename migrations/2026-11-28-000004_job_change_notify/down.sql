DROP TRIGGER jobs_notify_truncate ON jobs;
DROP FUNCTION monitor_notify_jobs_truncated();
DROP TRIGGER jobs_notify_change ON jobs;
DROP FUNCTION monitor_notify_job_change();
