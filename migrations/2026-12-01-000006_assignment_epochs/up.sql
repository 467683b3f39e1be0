-- Assignment epochs are issued by the server only, from blocks reserved
-- here: a server process reserves a block before handing out any epoch in
-- it, so every epoch ever issued is at most epochs_reserved. A worker's
-- claim at a higher epoch (after a restart the registry is empty) was never
-- issued and is fenced; new epochs start above every reserved one, so they
-- are monotonic across restarts.
ALTER TABLE assignment_lease
    ADD COLUMN epochs_reserved bigint NOT NULL DEFAULT 0 CHECK (epochs_reserved >= 0);
