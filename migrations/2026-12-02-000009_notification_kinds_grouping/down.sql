ALTER TABLE notification_deliveries DROP COLUMN reply;
DROP INDEX outbox_deliveries_channel_due_idx;
DROP INDEX outbox_deliveries_batch_idx;
ALTER TABLE outbox_deliveries DROP COLUMN batch_id;
ALTER TABLE notification_channels DROP CONSTRAINT notification_channels_group_wait_range;
ALTER TABLE notification_channels DROP COLUMN group_wait_ms;
ALTER TABLE notification_channels DROP CONSTRAINT notification_channels_kind_known;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_kind_known CHECK (kind IN ('webhook', 'slack'));
