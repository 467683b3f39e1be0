//! Publishes check results to Kafka: key = job id, value = the protobuf
//! `CheckResult`. Idempotent producer (acks=all), lz4, a 50 ms linger:
//! results wait that long at most to share a produce request (with 5 ms,
//! librdkafka's broker thread was a quarter of the probe's CPU).
//!
//! Queue limits: librdkafka buffers up to `queue.buffering.max.messages`
//! (100 000) results / `queue.buffering.max.kbytes` (1 GiB) while brokers
//! are unreachable, and retries each for `message.timeout.ms` (5 minutes)
//! before reporting it lost. A full queue makes `publish` wait instead of
//! dropping (back-pressure on the scheduler).

use std::{sync::Arc, time::Duration};

use monitor_proto::v1::CheckResult;

use crate::telemetry::ProbeMetrics;
use prost::Message as _;
use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    message::DeliveryResult,
    producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer},
};

/// Counts deliveries as the client reports them.
pub struct DeliveryCounter {
    metrics: ProbeMetrics,
    errors: crate::kafka::ErrorLog,
}

impl ClientContext for DeliveryCounter {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.metrics.delivered.inc();
            }
            Err((err, message)) => {
                self.metrics.delivery_failures.inc();
                use rdkafka::Message as _;
                tracing::error!(error = %err, partition = message.partition(), "check result lost after retries");
            }
        }
    }
}

/// The results' way out.
#[derive(Clone)]
pub struct ResultProducer {
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    topic: Arc<str>,
    /// Counts deliveries and results lost after the client's retries.
    metrics: ProbeMetrics,
}

impl ResultProducer {
    pub fn new(mut config: ClientConfig, topic: &str, metrics: ProbeMetrics) -> Result<Self, KafkaError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "50")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "300000");
        let producer = config.create_with_context(DeliveryCounter {
            metrics: metrics.clone(),
            errors: crate::kafka::ErrorLog::default(),
        })?;
        Ok(ResultProducer {
            producer: Arc::new(producer),
            topic: topic.into(),
            metrics,
        })
    }

    /// Enqueues one result; waits while the client's queue is full.
    pub async fn publish(&self, result: &CheckResult) {
        let payload = result.encode_to_vec();
        loop {
            let record = BaseRecord::to(&self.topic)
                .key(result.job_id.as_bytes())
                .payload(&payload);
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((err, _)) => {
                    self.metrics.delivery_failures.inc();
                    tracing::error!(error = %err, job_id = result.job_id, "check result could not be queued");
                    return;
                }
            }
        }
    }

    /// Results queued but not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Waits until everything queued is delivered (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}
