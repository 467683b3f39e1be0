//! Publishes check results to Kafka: key = job id, value = the protobuf
//! `CheckResult`. Idempotent producer (acks=all), small linger, lz4.
//!
//! Queue limits: librdkafka buffers up to `queue.buffering.max.messages`
//! (100 000) results / `queue.buffering.max.kbytes` (1 GiB) while brokers
//! are unreachable, and retries each for `message.timeout.ms` (5 minutes)
//! before reporting it lost. A full queue makes `publish` wait instead of
//! dropping (back-pressure on the scheduler).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use monitor_proto::v1::CheckResult;
use prost::Message as _;
use rdkafka::{
    ClientConfig, ClientContext,
    error::{KafkaError, RDKafkaErrorCode},
    message::DeliveryResult,
    producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer},
};

/// Delivery counters.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub delivered: AtomicU64,
    /// Results the client gave up on after its retries.
    pub failed: AtomicU64,
}

/// Counts deliveries as the client reports them.
pub struct DeliveryCounter {
    stats: Arc<DeliveryStats>,
    metrics: Option<crate::telemetry::ProbeMetrics>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.delivered.inc();
                }
            }
            Err((err, message)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(metrics) = &self.metrics {
                    metrics.delivery_failures.inc();
                }
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
    pub stats: Arc<DeliveryStats>,
}

impl ResultProducer {
    pub fn new(
        mut config: ClientConfig,
        topic: &str,
        metrics: Option<crate::telemetry::ProbeMetrics>,
    ) -> Result<Self, KafkaError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "300000");
        let stats = Arc::new(DeliveryStats::default());
        let producer = config.create_with_context(DeliveryCounter {
            stats: stats.clone(),
            metrics,
        })?;
        Ok(ResultProducer {
            producer: Arc::new(producer),
            topic: topic.into(),
            stats,
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
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
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
