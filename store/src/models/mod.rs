//! One module per table: its row types and the queries over it.

pub mod assignment_lease;
pub mod consumer_offsets;
pub mod job;
pub mod job_metrics;
