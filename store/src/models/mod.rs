//! One module per table: its row types and the queries over it.

pub mod alert_rule;
pub mod alert_state;
pub mod assignment_lease;
pub mod consumer_offsets;
pub mod incident;
pub mod job;
pub mod job_metrics;
pub mod metric_partitions;
pub mod notification_channel;
pub mod notification_delivery;
pub mod silence;
