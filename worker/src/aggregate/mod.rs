//! The `aggregate` role: consumes `CheckResult`s as a consumer group and
//! rolls them up into `job_metrics` with an exactly-once effect.
//!
//! Per partition the aggregator keeps pending rollups and the next offset to
//! read. Every flush is one transaction: it locks the partitions (advisory
//! locks, which also hold where no offset is stored yet), checks their stored
//! offsets are still the ones this aggregator started from (else another
//! group member took the partition: the flush is fenced and the pending
//! state dropped), upserts all rollups with one set-based
//! statement and stores the new offsets. Only then are offsets committed to
//! Kafka (advisory, for lag). On (re)assignment, reading resumes from the
//! stored offset: a crash or replay never counts a check twice or loses one.
//!
//! On a revocation the pending state of the revoked partitions is flushed at
//! once, then dropped. librdkafka has already unassigned them by then, so
//! this races the new owner: if the new owner reads the stored offset first,
//! its first flush is fenced and it re-reads from where this one stopped;
//! if the revoke flush cannot be written, the new owner re-reads those
//! messages. Either way nothing is lost or counted twice.
//!
//! - [`config`]: the role's settings.
//! - [`pending`]: the rollups consumed but not yet flushed, per partition.
//! - `flush`: taking, writing (fenced, retried) and applying a flush.
//! - [`retention`]: creating `job_metrics` partitions ahead and dropping
//!   those past their granularity's age.
//! - here: [`Aggregator`] with its consuming loop, and [`run`], the wiring.
//!
//! The consumer itself (the group member with its offsets in PostgreSQL,
//! decoding, the dead-letter queue) is [`crate::stream`], shared with any
//! other consumer of the results topic.

pub mod config;
mod flush;
pub mod pending;
pub mod retention;

use std::{sync::Arc, time::Duration};

use monitor_store::{
    DbPool,
    models::{job_metrics::FlushOutcome, metric_partitions::MetricPartitions},
};
use rdkafka::{Message, error::KafkaError, message::OwnedMessage};
use tokio::sync::{mpsc, watch};

pub use config::{AggregateArgs, RtField};
pub use monitor_core::granularity::Granularity;

use self::{flush::InFlight, pending::Pending, retention::retention_loop};
use crate::{
    stream::{Admission, DeadLetters, FencedConsumer, decode},
    telemetry::{AggregatorMetrics, StoreConsumerTelemetry},
};

/// What woke the consuming loop.
enum Event {
    /// `shutdown` flipped: drain and return.
    Shutdown,
    /// These partitions were revoked: flush their state at once.
    Revoked(Vec<i32>),
    /// The flush timer ticked.
    Flush,
    /// The flush in flight finished (None: not written).
    Flushed(Option<FlushOutcome>),
    /// The consumer's next message, or its error.
    Message(Result<OwnedMessage, KafkaError>),
}

/// A running aggregator.
pub struct Aggregator {
    /// The role's settings: topics, group, granularities, flush and limits.
    args: AggregateArgs,
    /// Where flushes are written.
    pool: DbPool,
    /// The `job_metrics` partitions known to exist (shared with the
    /// retention task), so a flush creates only those of new buckets.
    partitions: Arc<MetricPartitions>,
    /// The results topic's group member, with its offsets in PostgreSQL.
    stream: FencedConsumer,
    /// Revocations from the consumer's callbacks (apart from `stream`, so
    /// the loop waits on both at once): their state is flushed at once.
    revoked: mpsc::UnboundedReceiver<Vec<i32>>,
    /// Where refused messages go.
    dead_letters: DeadLetters,
    /// Rollups consumed since the last flush taken.
    pending: Pending,
    /// What it did: exported at /metrics, read by tests and the benchmark.
    pub stats: AggregatorMetrics,
}

impl Aggregator {
    /// Joins the consumer group (nothing is read before [`Self::run`]).
    pub fn new(args: AggregateArgs, pool: DbPool) -> anyhow::Result<Self> {
        let base = args.kafka.client_config()?;
        let stats = AggregatorMetrics::default();
        let (stream, revoked) = FencedConsumer::subscribe(
            &base,
            &args.kafka.kafka_topic,
            &args.group_id,
            args.consumer.session_timeout_ms,
            false,
            pool.clone(),
            stats.consumer_lag.clone(),
        )?;
        let dead_letters = DeadLetters::new(&base, &args.kafka, &args.dlq_topic)?;
        Ok(Aggregator {
            args,
            pool,
            partitions: Arc::default(),
            stream,
            revoked,
            dead_letters,
            pending: Pending::default(),
            stats,
        })
    }

    /// Shares `partitions` (what the retention task created or dropped)
    /// instead of a cache of its own.
    pub fn with_partitions(mut self, partitions: Arc<MetricPartitions>) -> Self {
        self.partitions = partitions;
        self
    }

    /// Counts into these (registered) metrics instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: AggregatorMetrics) -> Self {
        self.stream.report_lag_to(metrics.consumer_lag.clone());
        self.stats = metrics;
        self
    }

    /// Consumes until `shutdown` flips to true; then flushes and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<AggregatorMetrics> {
        // The dead-letter topic must exist before the first poison message;
        // a shutdown meanwhile ends the wait (no broker may be answering).
        tokio::select! {
            created = self.dead_letters.ensure_topic() => created?,
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
        let mut flush_timer = tokio::time::interval(self.args.flush_interval());
        flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // At most one flush is written at a time, while consuming goes on.
        let mut in_flight: Option<InFlight> = None;
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Event::Shutdown,
                Some(revoked) = self.revoked.recv() => Event::Revoked(revoked),
                done = async { (&mut in_flight.as_mut().expect("guarded").task).await }, if in_flight.is_some() => {
                    Event::Flushed(done.ok().flatten())
                }
                _ = flush_timer.tick() => Event::Flush,
                message = self.stream.recv() => Event::Message(message),
            };
            match event {
                Event::Shutdown => break,
                Event::Revoked(revoked) => {
                    if let Some(done) = in_flight.take() {
                        self.finish_in_flight(done).await;
                    }
                    self.flush_revoked(&revoked, &shutdown).await;
                }
                Event::Flushed(outcome) => {
                    let done = in_flight.take().expect("a flush was in flight");
                    self.finish_flush(&done.progress, outcome, done.started);
                }
                Event::Flush => {
                    if in_flight.is_none()
                        && let Some(flush) = self.take_flush()
                    {
                        in_flight = Some(self.spawn_flush(flush, &shutdown));
                    }
                }
                Event::Message(Ok(message)) => {
                    self.handle(&message).await;
                    if self.pending.keys() >= self.args.max_pending_keys {
                        // Back-pressure: wait for the flush in flight first.
                        // The consumer is not polled meanwhile, so librdkafka's
                        // statistics stop: drop the lag samples rather than
                        // show figures that no longer move (the next
                        // statistics after the wait bring them back).
                        if let Some(done) = in_flight.take() {
                            self.stats.consumer_lag.clear();
                            let outcome = done.task.await.ok().flatten();
                            self.finish_flush(&done.progress, outcome, done.started);
                        }
                        if let Some(flush) = self.take_flush() {
                            in_flight = Some(self.spawn_flush(flush, &shutdown));
                        }
                    }
                }
                Event::Message(Err(err)) => {
                    tracing::warn!(error = %err, "consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        if let Some(done) = in_flight.take() {
            let outcome = done.task.await.ok().flatten();
            self.finish_flush(&done.progress, outcome, done.started);
        }
        tracing::info!("shutting down: final flush");
        self.flush(&shutdown).await;
        let stats = self.stats.clone();
        tracing::info!(
            consumed = stats.consumed.get(),
            dead_lettered = stats.dead_lettered.get(),
            flushes = stats.flushes.get(),
            rows_upserted = stats.rows_upserted.get(),
            fenced = stats.fenced.get(),
            "aggregator summary"
        );
        Ok(stats)
    }

    /// Accounts for one message: adds it to the pending rollups, or
    /// dead-letters it; a replayed one is skipped.
    async fn handle(&mut self, message: &OwnedMessage) {
        let (partition, offset) = (message.partition(), message.offset());
        match self.stream.admit(message).await {
            Admission::Next => {}
            Admission::Duplicate => {
                self.stats.skipped_duplicates.inc();
                return;
            }
            Admission::SoughtBack => return,
            Admission::Dropped => {
                self.pending.forget(&[partition]);
                return;
            }
        }
        self.stats.consumed.inc();
        match decode(message.payload(), self.args.consumer.max_future_skew()) {
            Ok((job_id, start, result)) => {
                self.pending.add(
                    partition,
                    &self.args.granularities,
                    self.args.rt_field,
                    job_id,
                    start,
                    &result,
                );
            }
            Err(poison) => {
                self.stats.dead_lettered.inc();
                let payload = message.payload().map(<[u8]>::to_vec);
                let key = message.key().map(<[u8]>::to_vec);
                self.dead_letters.send(partition, offset, key, payload, &poison).await;
            }
        }
    }
}

/// Runs the aggregate role until `shutdown`.
pub async fn run(args: AggregateArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pool = monitor_store::connect(args.consumer.database_url.expose(), 4)?;
    let partitions = Arc::new(MetricPartitions::default());
    let retention = tokio::spawn(retention_loop(
        pool.clone(),
        partitions.clone(),
        args.granularities.iter().map(|g| g.label().to_owned()).collect(),
        args.retention.clone(),
        Duration::from_secs(600),
    ));
    let mut registry = prometheus_client::registry::Registry::with_prefix("monitor");
    let metrics = AggregatorMetrics::register(&mut registry);
    let telemetry =
        StoreConsumerTelemetry::spawn(&pool, &args.kafka, args.consumer.metrics_listen, registry, &shutdown)?;
    let aggregator = Aggregator::new(args, pool)?
        .with_partitions(partitions)
        .with_metrics(metrics);
    let result = aggregator.run(shutdown).await;
    retention.abort();
    telemetry.stop();
    result.map(|_| ())
}
