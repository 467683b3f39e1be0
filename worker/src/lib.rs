//! Monitor workers.
//!
//! - [`check`]: running one check (HTTP, TCP) and classifying its outcome.
//! - [`probe`]: the probe role: control-plane session, scheduler, Kafka producer.
//! - [`telemetry`]: the workers' `/metrics`, `/healthz` and `/readyz`.
//! - [`kafka`]: Kafka settings (brokers, topic, TLS, SASL) shared by both roles.
//! - [`aggregate`]: the aggregate role: exactly-once rollups from Kafka into
//!   PostgreSQL (pending rollups, the flush pipeline, retention, wiring).
//! - [`notify`]: the notification dispatcher the alert role runs beside
//!   its evaluator (outbox to channels, retries, the attempt log).
//! - [`stream`]: reading the results topic with offsets kept in PostgreSQL
//!   (the fenced consumer, its callbacks and lag, decoding, the dead-letter
//!   queue), the part of the aggregate role another consumer reuses.
//!
//! Rules the server follows too live in `monitor-core` (granularities and
//! buckets, label keys, `.env`, logging and signals, used by `main.rs`) and
//! `monitor-proto` (`SCHEMA_VERSION`, protobuf `Duration` conversions).
pub mod aggregate;
pub mod alert;
pub mod check;
pub mod kafka;
pub mod notify;
pub mod probe;
pub mod stream;
pub mod telemetry;
