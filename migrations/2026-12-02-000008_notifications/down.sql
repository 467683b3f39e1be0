DROP TRIGGER notification_outbox_fan_out ON notification_outbox;
DROP FUNCTION notification_outbox_fan_out();
DROP TABLE notification_deliveries;
DROP TABLE outbox_deliveries;
DROP TABLE notification_channels;
