-- Until when probe workers may still be running assignments handed out by
-- the server process that wrote it. That process pushes it forward (now +
-- lease + heartbeat interval + a margin) while it has running jobs, and
-- releases it when every worker has left; a server process that starts
-- later waits until then before handing out assignments nobody has
-- reclaimed, so a job never runs on two workers at once across a restart.
-- One row at most.
CREATE TABLE assignment_lease (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    held_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
