-- Until when probe workers may still be running assignments handed out by
-- the replica that holds the assignment lock. That replica pushes it forward
-- (now + lease + heartbeat interval) while any worker holds an assignment; a
-- replica that takes the lock over waits until then before handing out
-- assignments nobody has reclaimed, so a job never runs on two workers at
-- once across a restart or a failover. One row at most.
CREATE TABLE assignment_lease (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    held_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
