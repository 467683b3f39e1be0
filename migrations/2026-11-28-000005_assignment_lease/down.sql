DROP TABLE assignment_lease;
