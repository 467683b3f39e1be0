//! Monitor workers.
//!
//! - [`check`]: running one check (HTTP, TCP) and classifying its outcome.
//! - [`probe`]: the probe role: control-plane session, scheduler, Kafka producer.
//! - [`kafka`]: Kafka settings (brokers, topic, TLS, SASL) shared by both roles.
pub mod check;
pub mod kafka;
pub mod probe;
