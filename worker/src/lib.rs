//! Monitor workers.
//!
//! - [`check`]: running one check (HTTP, TCP) and classifying its outcome.
//! - [`probe`]: the probe role: control-plane session, scheduler, Kafka producer.
//! - [`telemetry`]: the workers' `/metrics`, `/healthz` and `/readyz`.
//! - [`kafka`]: Kafka settings (brokers, topic, TLS, SASL) shared by both roles.
//! - [`aggregate`]: the aggregate role: exactly-once rollups from Kafka into PostgreSQL.
pub mod aggregate;
pub mod check;
pub mod kafka;
pub mod probe;
pub mod telemetry;
