DROP FUNCTION monitor_jsonb_add(jsonb, jsonb);
DROP TABLE consumer_offsets;
DROP TABLE job_metrics;
