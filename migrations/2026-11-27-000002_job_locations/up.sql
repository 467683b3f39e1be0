-- Locations a job runs in (matched against the probe workers' location
-- label); an empty array means once, on any worker.
ALTER TABLE jobs ADD COLUMN locations jsonb NOT NULL DEFAULT '[]'::jsonb;
