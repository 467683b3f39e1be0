DROP TABLE notification_outbox;
DROP TABLE alert_state;
DROP TABLE incident_events;
DROP TABLE incidents;
DROP TABLE silences;
DROP TABLE alert_rules;
