ALTER TABLE assignment_lease DROP COLUMN epochs_reserved;
