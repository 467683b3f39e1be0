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

pub mod config;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use monitor_proto::v1::{CheckOutcome, CheckResult, check_result::Detail};
use monitor_store::{
    DbPool, StoreError,
    models::{
        consumer_offsets::{self, PartitionProgress},
        job_metrics::{self, FlushOutcome},
    },
    rollup::{Rollup, RollupKey},
};
use prometheus_client::metrics::{family::Family, gauge::Gauge};
use prost::Message as _;
use rdkafka::{
    ClientConfig, ClientContext, Message, Offset, Statistics, TopicPartitionList,
    consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    message::{Header, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

pub use config::{AggregateArgs, Granularity, RtField};

use crate::{
    kafka::BrokerCheck,
    telemetry::{AggregatorMetrics, PartitionLabels, Readiness},
};

/// The `CheckResult` layout this aggregator understands.
pub const SCHEMA_VERSION: u32 = 1;

/// How often librdkafka reports its statistics, from which the lag gauges
/// are set.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// The consumer's callbacks: forwards revocations to the consuming loop and
/// turns librdkafka's statistics into the per-partition lag gauges.
///
/// Lag comes from the statistics' `consumer_lag` rather than from our own
/// `fetch_watermarks` calls: librdkafka already learns each fetched
/// partition's high watermark from every fetch response, so reading it costs
/// no request, and the statistics arrive on the consumer's own queue
/// (served by `recv`), so nothing blocks the runtime. `consumer_lag` is the
/// high watermark (the last stable offset under the default
/// `isolation.level=read_committed`, the same for our non-transactional
/// producers) minus the committed offset. This aggregator commits to Kafka
/// only after a flush has stored the rollups and offsets in PostgreSQL, so
/// it counts exactly the messages not yet in the rollups, and it is the
/// number Kafka's own tools (kafka-consumer-groups, Burrow) show for the
/// group. librdkafka reports -1 while either end is unknown (no commit yet,
/// no fetch answered yet): the gauge is then left out rather than guessed.
struct ConsumerEvents {
    /// Where revocations go: the consuming loop flushes their pending state.
    revoked: mpsc::UnboundedSender<Vec<i32>>,
    /// The results topic, the only one subscribed (and the gauges' label).
    topic: String,
    /// Partitions this member owns now, maintained from the rebalances.
    owned: Mutex<BTreeSet<i32>>,
    /// Where the lag goes: replaced when the aggregator gets registered metrics.
    lag: Mutex<Family<PartitionLabels, Gauge>>,
    errors: crate::kafka::ErrorLog,
}

impl ConsumerEvents {
    fn labels(&self, partition: i32) -> PartitionLabels {
        PartitionLabels {
            topic: self.topic.clone(),
            partition,
        }
    }
}

impl ClientContext for ConsumerEvents {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let partitions = statistics.topics.get(&self.topic).map(|topic| &topic.partitions);
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        for partition in owned {
            let known = partitions
                .and_then(|partitions| partitions.get(&partition))
                .map(|p| p.consumer_lag)
                .filter(|lag| *lag >= 0);
            match known {
                Some(value) => {
                    lag.get_or_create(&self.labels(partition)).set(value);
                }
                None => {
                    lag.remove(&self.labels(partition));
                }
            }
        }
    }
}

impl ConsumerEvents {
    /// The partitions of the results topic in a rebalance's list.
    fn ours(&self, partitions: &TopicPartitionList) -> Vec<i32> {
        partitions
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

impl ConsumerContext for ConsumerEvents {
    fn pre_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked = self.ours(partitions);
            tracing::info!(?revoked, "partitions revoked: flushing their state");
            let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
            let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
            for partition in &revoked {
                owned.remove(partition);
                lag.remove(&self.labels(*partition));
            }
            let _ = self.revoked.send(revoked);
        }
    }

    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned = self.ours(partitions);
            tracing::info!(?assigned, "partitions assigned");
            // Added, not replaced: with a cooperative assignor the list is
            // only the increment (with the default eager one, everything
            // was revoked first).
            self.owned.lock().unwrap_or_else(|p| p.into_inner()).extend(assigned);
        }
    }
}

/// What woke the consuming loop.
enum Event {
    Shutdown,
    Revoked(Vec<i32>),
    Flush,
    /// The flush in flight finished (None: not written).
    Flushed(Option<FlushOutcome>),
    Message(Result<OwnedMessage, rdkafka::error::KafkaError>),
}

/// Pending work of one partition.
#[derive(Debug)]
struct PartitionState {
    /// The offset stored in the database when this state started (None:
    /// nothing stored yet); the flush checks it is unchanged.
    expected: Option<i64>,
    /// The next offset to account for.
    next_offset: i64,
    rollups: HashMap<PendingKey, Rollup>,
}

/// Why a message is refused (dead-lettered).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Poison {
    #[error("undecodable value: {0}")]
    Undecodable(String),
    #[error("unknown schema version {0} (this aggregator reads {SCHEMA_VERSION})")]
    UnknownSchema(u32),
    #[error("job id {0:?} is not a UUID")]
    BadJobId(String),
    #[error("missing start time")]
    MissingStartTime,
    #[error("start time {0} is more than the allowed skew in the future")]
    FutureStartTime(String),
}

/// Decodes and checks one message value.
pub fn decode(payload: Option<&[u8]>, max_future_skew: Duration) -> Result<(Uuid, DateTime<Utc>, CheckResult), Poison> {
    let payload = payload.ok_or_else(|| Poison::Undecodable("no value".into()))?;
    let result = CheckResult::decode(payload).map_err(|err| Poison::Undecodable(err.to_string()))?;
    if result.schema_version != SCHEMA_VERSION {
        return Err(Poison::UnknownSchema(result.schema_version));
    }
    let job_id = Uuid::parse_str(&result.job_id).map_err(|_| Poison::BadJobId(result.job_id.clone()))?;
    let start = result.start_time.as_ref().ok_or(Poison::MissingStartTime)?;
    let start = Utc
        .timestamp_opt(start.seconds, start.nanos.max(0) as u32)
        .single()
        .ok_or_else(|| Poison::FutureStartTime(format!("{}s", start.seconds)))?;
    if start > Utc::now() + chrono::Duration::from_std(max_future_skew).unwrap_or(chrono::Duration::hours(1)) {
        return Err(Poison::FutureStartTime(start.to_rfc3339()));
    }
    Ok((job_id, start, result))
}

fn duration_ms(d: &pbjson_types::Duration) -> f64 {
    d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1_000_000.0
}

/// A pending rollup's key: cheap to build and hash for every message (the
/// location is interned, the granularity an index); turned into a
/// [`RollupKey`] once per row at flush time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingKey {
    pub job_id: Uuid,
    pub location: Arc<str>,
    /// Index into the configured granularities.
    pub granularity: usize,
    /// Bucket start, milliseconds since the Unix epoch.
    pub dt_ms: i64,
}

impl PendingKey {
    pub fn to_rollup_key(&self, granularities: &[Granularity]) -> RollupKey {
        RollupKey {
            job_id: self.job_id,
            location: self.location.to_string(),
            granularity: granularities[self.granularity].label.clone(),
            dt: Utc.timestamp_millis_opt(self.dt_ms).single().unwrap_or_default(),
        }
    }
}

/// Interned location names, so a message allocates none.
#[derive(Debug, Default)]
pub struct Locations(HashMap<Box<str>, Arc<str>>);

impl Locations {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(found) = self.0.get(name) {
            return found.clone();
        }
        let interned: Arc<str> = Arc::from(name);
        self.0.insert(name.into(), interned.clone());
        interned
    }
}

/// Adds one result to the rollups of every granularity, overall and (when
/// the check ran for a location) per location.
pub fn add_to(
    rollups: &mut HashMap<PendingKey, Rollup>,
    locations: &mut Locations,
    granularities: &[Granularity],
    rt_field: RtField,
    job_id: Uuid,
    start: DateTime<Utc>,
    result: &CheckResult,
) {
    let outcome = CheckOutcome::try_from(result.outcome).unwrap_or(CheckOutcome::Unspecified);
    let answered = matches!(outcome, CheckOutcome::Ok | CheckOutcome::AssertionFailed);
    let rt = if answered {
        match rt_field {
            RtField::Duration => result.duration.as_ref().map(duration_ms),
            RtField::FirstByte => match &result.detail {
                Some(Detail::Http(http)) => http.first_byte_time.as_ref().map(duration_ms),
                Some(Detail::Tcp(tcp)) => tcp.connect_time.as_ref().map(duration_ms),
                None => None,
            },
        }
    } else {
        None
    };
    let status = match &result.detail {
        Some(Detail::Http(http)) if http.status_code > 0 => Some(http.status_code),
        _ => None,
    };
    let error = (outcome != CheckOutcome::Ok).then(|| outcome.as_str_name());
    let overall = locations.get("");
    let own = (!result.location.is_empty()).then(|| locations.get(&result.location));
    let start_ms = start.timestamp_millis();
    for (index, granularity) in granularities.iter().enumerate() {
        let width = granularity.width.as_millis() as i64;
        let dt_ms = start_ms - start_ms.rem_euclid(width);
        for location in std::iter::once(&overall).chain(own.as_ref()) {
            let key = PendingKey {
                job_id,
                location: location.clone(),
                granularity: index,
                dt_ms,
            };
            rollups
                .entry(key)
                .or_default()
                .add(rt, outcome == CheckOutcome::Ok, status, error);
        }
    }
}

/// A running aggregator.
pub struct Aggregator {
    args: AggregateArgs,
    pool: DbPool,
    consumer: StreamConsumer<ConsumerEvents>,
    revoked: mpsc::UnboundedReceiver<Vec<i32>>,
    dlq: FutureProducer,
    partitions: HashMap<i32, PartitionState>,
    /// Stored offsets of partitions seen since their assignment.
    stored: HashMap<i32, Option<i64>>,
    pending_keys: usize,
    locations: Locations,
    /// What it did: exported at /metrics, read by tests and the benchmark.
    pub stats: AggregatorMetrics,
}

impl Aggregator {
    pub fn new(args: AggregateArgs, pool: DbPool) -> anyhow::Result<Self> {
        let base: ClientConfig = args.kafka.client_config()?;
        let (revoked_tx, revoked) = mpsc::unbounded_channel();
        let stats = AggregatorMetrics::default();
        let events = ConsumerEvents {
            revoked: revoked_tx,
            topic: args.kafka.kafka_topic.clone(),
            owned: Mutex::new(BTreeSet::new()),
            lag: Mutex::new(stats.consumer_lag.clone()),
            errors: crate::kafka::ErrorLog::default(),
        };
        let consumer: StreamConsumer<ConsumerEvents> = base
            .clone()
            .set("group.id", &args.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", args.session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (args.session_timeout_ms / 3).to_string())
            .set("statistics.interval.ms", STATISTICS_INTERVAL.as_millis().to_string())
            .create_with_context(events)?;
        consumer.subscribe(&[&args.kafka.kafka_topic])?;
        let dlq: FutureProducer = base
            .clone()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create()?;
        Ok(Aggregator {
            args,
            pool,
            consumer,
            revoked,
            dlq,
            partitions: HashMap::new(),
            stored: HashMap::new(),
            pending_keys: 0,
            locations: Locations::default(),
            stats,
        })
    }

    /// Counts into these (registered) metrics instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: AggregatorMetrics) -> Self {
        *self.consumer.context().lag.lock().unwrap_or_else(|p| p.into_inner()) = metrics.consumer_lag.clone();
        self.stats = metrics;
        self
    }

    /// Consumes until `shutdown` flips to true; then flushes and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<AggregatorMetrics> {
        // The dead-letter topic must exist before the first poison message;
        // a broker that is down now is retried when one arrives.
        let config = self.args.kafka.client_config()?;
        if let Err(err) = crate::kafka::ensure_topic(&config, &self.args.dlq_topic, 1, 1).await {
            tracing::warn!(topic = self.args.dlq_topic, error = %err, "cannot create the dead-letter topic yet");
        }
        let mut flush_timer = tokio::time::interval(self.args.flush_interval());
        flush_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // At most one flush is written at a time, while consuming goes on.
        let mut in_flight: Option<InFlight> = None;
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.changed() => Event::Shutdown,
                Some(revoked) = self.revoked.recv() => Event::Revoked(revoked),
                done = async { (&mut in_flight.as_mut().expect("guarded").task).await }, if in_flight.is_some() => {
                    Event::Flushed(done.ok().flatten())
                }
                _ = flush_timer.tick() => Event::Flush,
                message = self.consumer.recv() => Event::Message(message.map(|m| m.detach())),
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
                    if self.pending_keys >= self.args.max_pending_keys {
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

    /// Waits a bounded time for the flush in flight (the consumer is not
    /// polled meanwhile, so an endless wait while the database is down would
    /// get this member thrown out of the group). On timeout the flush is
    /// aborted and its partitions re-read from their stored offsets: whether
    /// or not it committed, the fence keeps that exact.
    async fn finish_in_flight(&mut self, mut done: InFlight) {
        let outcome = match tokio::time::timeout(IN_FLIGHT_WAIT, &mut done.task).await {
            Ok(joined) => joined.ok().flatten(),
            Err(_) => {
                tracing::warn!("the flush in flight is still retrying; abandoning it for the rebalance");
                done.task.abort();
                None
            }
        };
        self.finish_flush(&done.progress, outcome, done.started);
    }

    /// Writes what was consumed from revoked partitions, so their next owner
    /// resumes where this one stopped, then drops their state. The flush is
    /// fenced like any other (if the new owner already stored an offset, it
    /// is not written), and it gives up after a few attempts while the
    /// database is down (the consumer is not polled meanwhile); either way
    /// the new owner re-reads from the stored offset, so nothing is lost or
    /// counted twice.
    async fn flush_revoked(&mut self, revoked: &[i32], shutdown: &watch::Receiver<bool>) {
        if let Some(flush) = self.take_flush_of(|partition| revoked.contains(&partition))
            && !self
                .write_now(flush, |attempts| {
                    attempts >= REVOKE_FLUSH_ATTEMPTS || *shutdown.borrow()
                })
                .await
        {
            tracing::warn!(
                ?revoked,
                "could not flush revoked partitions; their next owner re-reads them"
            );
        }
        self.forget(revoked);
    }

    /// Drops the state of partitions this aggregator no longer owns.
    fn forget(&mut self, partitions: &[i32]) {
        for partition in partitions {
            if let Some(state) = self.partitions.remove(partition) {
                self.pending_keys = self.pending_keys.saturating_sub(state.rollups.len());
            }
            self.stored.remove(partition);
        }
    }

    /// The stored offset of `partition`, read once per assignment; retries
    /// while the database is down (the consumer waits meanwhile).
    async fn stored_offset(&mut self, partition: i32) -> Option<i64> {
        if let Some(stored) = self.stored.get(&partition) {
            return *stored;
        }
        let mut wait = Duration::from_millis(100);
        loop {
            let read = async {
                let mut conn = self.pool.get().await?;
                consumer_offsets::stored_offsets(
                    &mut conn,
                    &self.args.group_id,
                    &self.args.kafka.kafka_topic,
                    &[partition],
                )
                .await
            };
            match read.await {
                Ok(offsets) => {
                    let stored = offsets.get(&partition).copied();
                    self.stored.insert(partition, stored);
                    return stored;
                }
                Err(err) => {
                    tracing::warn!(partition, error = %err, "cannot read stored offsets; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn handle(&mut self, message: &OwnedMessage) {
        let (partition, offset) = (message.partition(), message.offset());
        let stored = self.stored_offset(partition).await;
        if !self.partitions.contains_key(&partition)
            && let Some(stored) = stored.filter(|stored| offset < *stored)
        {
            // Normal after a crash (a replay); after the topic was deleted and
            // created again it means the stored offsets are stale (README).
            tracing::info!(
                partition,
                offset,
                stored,
                "skipping messages below the offset stored with the rollups (already counted)"
            );
        }
        let state = self.partitions.entry(partition).or_insert_with(|| PartitionState {
            expected: stored,
            next_offset: stored.unwrap_or(offset),
            rollups: HashMap::new(),
        });
        if offset < state.next_offset {
            // Already accounted for (replay after a crash or a seek).
            self.stats.skipped_duplicates.inc();
            return;
        }
        if offset > state.next_offset {
            // Kafka resumed past what the database accounts for: go back to
            // the stored offset (retrying while the fetcher settles).
            let target = state.next_offset;
            tracing::warn!(
                partition,
                offset,
                target,
                "reading resumed past the stored offset; seeking back"
            );
            let topic = self.args.kafka.kafka_topic.clone();
            for attempt in 1..=50 {
                match self
                    .consumer
                    .seek(&topic, partition, Offset::Offset(target), Duration::from_secs(5))
                {
                    Ok(()) => return,
                    Err(err) => {
                        tracing::warn!(partition, attempt, error = %err, "seek failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            tracing::error!(
                partition,
                "could not seek back; dropping the partition's state to reload it"
            );
            self.forget(&[partition]);
            return;
        }
        self.stats.consumed.inc();
        match decode(message.payload(), self.args.max_future_skew()) {
            Ok((job_id, start, result)) => {
                let before = state.rollups.len();
                add_to(
                    &mut state.rollups,
                    &mut self.locations,
                    &self.args.granularities,
                    self.args.rt_field,
                    job_id,
                    start,
                    &result,
                );
                self.pending_keys += state.rollups.len() - before;
                state.next_offset = offset + 1;
            }
            Err(poison) => {
                state.next_offset = offset + 1;
                let payload = message.payload().map(<[u8]>::to_vec);
                let key = message.key().map(<[u8]>::to_vec);
                self.dead_letter(partition, offset, key, payload, &poison).await;
            }
        }
    }

    /// Sends a refused message to the DLQ topic, waiting until the broker
    /// has it, so the offset moves past it only once it is safe there.
    async fn dead_letter(
        &self,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        poison: &Poison,
    ) {
        self.stats.dead_lettered.inc();
        tracing::warn!(partition, offset, reason = %poison, "dead-lettering a message");
        let reason = poison.to_string();
        let (partition_text, offset_text) = (partition.to_string(), offset.to_string());
        let mut wait = Duration::from_millis(100);
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reason",
                    value: Some(reason.as_str()),
                })
                .insert(Header {
                    key: "source-topic",
                    value: Some(self.args.kafka.kafka_topic.as_str()),
                })
                .insert(Header {
                    key: "source-partition",
                    value: Some(partition_text.as_str()),
                })
                .insert(Header {
                    key: "source-offset",
                    value: Some(offset_text.as_str()),
                });
            let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> =
                FutureRecord::to(&self.args.dlq_topic).headers(headers);
            if let Some(key) = &key {
                record = record.key(key);
            }
            if let Some(payload) = &payload {
                record = record.payload(payload);
            }
            match self.dlq.send(record, Duration::from_secs(10)).await {
                Ok(_) => return,
                Err((err, _)) => {
                    tracing::warn!(error = %err, "dead-letter topic unavailable; retrying");
                    if let Ok(config) = self.args.kafka.client_config() {
                        let _ = crate::kafka::ensure_topic(&config, &self.args.dlq_topic, 1, 1).await;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Takes the pending rollups and offsets as one flush and starts a fresh
    /// pending state that assumes the flush will commit (if it does not, the
    /// partitions are dropped and re-read from their stored offsets).
    fn take_flush(&mut self) -> Option<Flush> {
        self.take_flush_of(|_| true)
    }

    /// [`Self::take_flush`] of the `wanted` partitions only.
    fn take_flush_of(&mut self, wanted: impl Fn(i32) -> bool) -> Option<Flush> {
        let progress: Vec<PartitionProgress> = self
            .partitions
            .iter()
            .filter(|(p, s)| wanted(**p) && s.expected != Some(s.next_offset))
            .map(|(p, s)| PartitionProgress {
                partition: *p,
                expected: s.expected,
                next_offset: s.next_offset,
            })
            .collect();
        if progress.is_empty() {
            return None;
        }
        let mut merged: HashMap<RollupKey, Rollup> = HashMap::new();
        for (_, state) in self.partitions.iter_mut().filter(|(p, _)| wanted(**p)) {
            self.pending_keys = self.pending_keys.saturating_sub(state.rollups.len());
            for (key, rollup) in state.rollups.drain() {
                merged
                    .entry(key.to_rollup_key(&self.args.granularities))
                    .or_default()
                    .merge(&rollup);
            }
            state.expected = Some(state.next_offset);
        }
        Some(Flush {
            rows: merged.into_iter().collect(),
            progress,
        })
    }

    /// Starts writing a flush in the background, so consuming goes on.
    fn spawn_flush(&mut self, flush: Flush, shutdown: &watch::Receiver<bool>) -> InFlight {
        let (pool, group, topic) = (
            self.pool.clone(),
            self.args.group_id.clone(),
            self.args.kafka.kafka_topic.clone(),
        );
        let progress = flush.progress.clone();
        let shutdown = shutdown.clone();
        let task = tokio::spawn(async move { write(&pool, &group, &topic, &flush, until_shutdown(&shutdown)).await });
        InFlight {
            progress,
            task,
            started: Instant::now(),
        }
    }

    /// Applies the result of a finished flush.
    fn finish_flush(&mut self, progress: &[PartitionProgress], outcome: Option<FlushOutcome>, started: Instant) {
        match outcome {
            None => {
                // Not written: the fresh state assumed it was; re-read instead.
                let partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
                self.forget(&partitions);
            }
            Some(FlushOutcome::Committed {
                rows: written,
                statements,
            }) => {
                self.stats.flushes.inc();
                self.stats.rows_upserted.inc_by(written as u64);
                self.stats.flush_statements.inc_by(statements as u64);
                self.stats.flush_duration.observe(started.elapsed().as_secs_f64());
                // Kafka offsets only for partitions still owned: a late
                // commit of a revoked one could move the group's offset back
                // behind the new owner's.
                let owned = self.consumer.context().owned.lock().unwrap_or_else(|p| p.into_inner());
                let mut commit = TopicPartitionList::new();
                for p in progress {
                    self.stored.insert(p.partition, Some(p.next_offset));
                    if !owned.contains(&p.partition) {
                        continue;
                    }
                    let _ = commit.add_partition_offset(
                        &self.args.kafka.kafka_topic,
                        p.partition,
                        Offset::Offset(p.next_offset),
                    );
                }
                drop(owned);
                if commit.count() > 0
                    && let Err(err) = self.consumer.commit(&commit, CommitMode::Async)
                {
                    tracing::debug!(error = %err, "Kafka offset commit failed (advisory; the database holds the truth)");
                }
                tracing::debug!(
                    rows = written,
                    partitions = progress.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "flushed"
                );
            }
            Some(FlushOutcome::Fenced { partitions: moved }) => {
                self.stats.fenced.inc();
                tracing::warn!(
                    ?moved,
                    "another aggregator moved partitions; nothing was written, dropping the flushed partitions' state"
                );
                // The transaction wrote nothing, also for the partitions that
                // were not moved: re-read those from their stored offsets too.
                let partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
                self.forget(&partitions);
            }
        }
    }

    /// Flushes now and waits for it (used at shutdown).
    async fn flush(&mut self, shutdown: &watch::Receiver<bool>) {
        if let Some(flush) = self.take_flush() {
            self.write_now(flush, until_shutdown(shutdown)).await;
        }
    }

    /// Writes `flush` in the foreground and applies the result; false when
    /// `give_up` ended the retries (nothing written).
    async fn write_now(&mut self, flush: Flush, give_up: impl Fn(u32) -> bool) -> bool {
        let started = Instant::now();
        let outcome = write(
            &self.pool,
            &self.args.group_id,
            &self.args.kafka.kafka_topic,
            &flush,
            give_up,
        )
        .await;
        let written = outcome.is_some();
        self.finish_flush(&flush.progress, outcome, started);
        written
    }
}

/// One flush's rows and offsets.
struct Flush {
    rows: Vec<(RollupKey, Rollup)>,
    progress: Vec<PartitionProgress>,
}

/// A flush being written in the background.
struct InFlight {
    progress: Vec<PartitionProgress>,
    task: tokio::task::JoinHandle<Option<FlushOutcome>>,
    started: Instant,
}

/// Retrying a flush while the database is down stops after 5 attempts
/// once shutdown began (nothing is lost: the offsets were not stored).
fn until_shutdown(shutdown: &watch::Receiver<bool>) -> impl Fn(u32) -> bool + '_ {
    |attempts| *shutdown.borrow() && attempts >= 5
}

/// Attempts at flushing revoked partitions before leaving them to their
/// next owner.
const REVOKE_FLUSH_ATTEMPTS: u32 = 4;

/// How long a rebalance waits for the flush in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// Writes one flush in one transaction, retrying with backoff while the
/// database is down. None when `give_up(attempts so far)` said so after a
/// failure (nothing written).
async fn write(
    pool: &DbPool,
    group: &str,
    topic: &str,
    flush: &Flush,
    give_up: impl Fn(u32) -> bool,
) -> Option<FlushOutcome> {
    let mut wait = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result: Result<FlushOutcome, StoreError> = async {
            let mut conn = pool.get().await?;
            job_metrics::flush(&mut conn, group, topic, &flush.rows, &flush.progress).await
        }
        .await;
        match result {
            Ok(outcome) => return Some(outcome),
            Err(err) => {
                tracing::warn!(error = %err, attempts, rows = flush.rows.len(), "flush failed; keeping the state and retrying");
                if give_up(attempts) {
                    // Nothing is lost: the offsets were not stored either.
                    tracing::error!(
                        "giving up the flush; the partitions' next reader re-reads from the stored offsets"
                    );
                    return None;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Applies retention every `every` until aborted.
pub async fn retention_loop(pool: DbPool, retention: BTreeMap<String, Duration>, every: Duration) {
    loop {
        for (granularity, keep) in &retention {
            let before = Utc::now() - chrono::Duration::from_std(*keep).unwrap_or(chrono::Duration::MAX);
            let deleted = async {
                let mut conn = pool.get().await?;
                job_metrics::apply_retention(&mut conn, granularity, before).await
            }
            .await;
            match deleted {
                Ok(0) => {}
                Ok(n) => tracing::info!(granularity, deleted = n, "retention applied"),
                Err(err) => tracing::warn!(granularity, error = %err, "retention failed; retrying later"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// How often, and how patiently, `/readyz` asks the database.
const DATABASE_CHECK_EVERY: Duration = Duration::from_secs(2);
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs the aggregate role until `shutdown`.
pub async fn run(args: AggregateArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pool = monitor_store::connect(args.database_url.expose(), 4)?;
    let retention = tokio::spawn(retention_loop(
        pool.clone(),
        args.retention.clone(),
        Duration::from_secs(600),
    ));
    let mut registry = prometheus_client::registry::Registry::with_prefix("monitor");
    let metrics = AggregatorMetrics::register(&mut registry);
    // Ready while the database answers and a broker does (both clients
    // retry by themselves; readiness only reports).
    let ready = Readiness::default();
    let database = {
        let (pool, dependency) = (pool.clone(), ready.dependency("database unreachable"));
        tokio::spawn(crate::telemetry::watch(
            dependency,
            DATABASE_CHECK_EVERY,
            DATABASE_CHECK_TIMEOUT,
            move || {
                let pool = pool.clone();
                async move { monitor_store::pool::ping(&pool).await.is_ok() }
            },
        ))
    };
    let broker = BrokerCheck::spawn_watch(&args.kafka, ready.dependency("broker unreachable"))?;
    let telemetry = args.metrics_listen.map(|address| {
        let mut stop = shutdown.clone();
        tokio::spawn(crate::telemetry::serve(address, registry, ready.clone(), async move {
            let _ = stop.wait_for(|done| *done).await;
        }))
    });
    let aggregator = Aggregator::new(args, pool)?.with_metrics(metrics);
    let result = aggregator.run(shutdown).await;
    retention.abort();
    database.abort();
    broker.abort();
    if let Some(telemetry) = telemetry {
        telemetry.abort();
    }
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::HttpResult;

    use super::*;

    fn result(
        job: Uuid,
        location: &str,
        outcome: CheckOutcome,
        ms: i32,
        status: u32,
        start: DateTime<Utc>,
    ) -> CheckResult {
        CheckResult {
            schema_version: 1,
            job_id: job.to_string(),
            location: location.into(),
            start_time: Some(start.into()),
            duration: Some(pbjson_types::Duration {
                seconds: 0,
                nanos: ms * 1_000_000,
            }),
            outcome: outcome as i32,
            detail: Some(Detail::Http(HttpResult {
                status_code: status,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn results_land_in_the_bucket_of_their_start_per_location_and_overall() {
        let job = Uuid::now_v7();
        let grans = vec![Granularity::parse("1m").unwrap(), Granularity::parse("1h").unwrap()];
        let mut pending = HashMap::new();
        let mut names = Locations::default();
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 10, 1, 30).unwrap();
        add_to(
            &mut pending,
            &mut names,
            &grans,
            RtField::Duration,
            job,
            t,
            &result(job, "eu", CheckOutcome::Ok, 20, 200, t),
        );
        let t2 = t + chrono::Duration::seconds(45);
        add_to(
            &mut pending,
            &mut names,
            &grans,
            RtField::Duration,
            job,
            t2,
            &result(job, "us", CheckOutcome::Timeout, 1000, 0, t2),
        );
        let rollups: HashMap<RollupKey, Rollup> = pending
            .iter()
            .map(|(k, v)| (k.to_rollup_key(&grans), v.clone()))
            .collect();
        // 2 locations + overall, in 2 minute buckets and 1 hour bucket.
        let minute = |loc: &str, m: u32| RollupKey {
            job_id: job,
            location: loc.into(),
            granularity: "1m".into(),
            dt: Utc.with_ymd_and_hms(2026, 11, 27, 10, m, 0).unwrap(),
        };
        assert_eq!(rollups[&minute("", 1)].checks, 1);
        assert_eq!(rollups[&minute("eu", 1)].rt_min, Some(20.0));
        assert_eq!(rollups[&minute("", 2)].errors["CHECK_OUTCOME_TIMEOUT"], 1);
        assert_eq!(rollups[&minute("", 2)].rt_count, 0, "a timeout has no response time");
        let hour = RollupKey {
            job_id: job,
            location: String::new(),
            granularity: "1h".into(),
            dt: Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap(),
        };
        assert_eq!((rollups[&hour].checks, rollups[&hour].passed), (2, 1));
        assert_eq!(rollups[&hour].status["200"], 1);
        // Minutes: overall and eu at 10:01, overall and us at 10:02; hour: overall, eu, us.
        assert_eq!(rollups.len(), 4 + 3);
    }

    #[test]
    fn poison_is_recognised() {
        let skew = Duration::from_secs(3600);
        let job = Uuid::now_v7();
        let now = Utc::now();
        let good = result(job, "", CheckOutcome::Ok, 5, 200, now).encode_to_vec();
        assert!(decode(Some(&good), skew).is_ok());
        assert!(matches!(
            decode(Some(b"\xff\xff\xff"), skew),
            Err(Poison::Undecodable(_))
        ));
        assert!(matches!(decode(None, skew), Err(Poison::Undecodable(_))));
        let mut v2 = result(job, "", CheckOutcome::Ok, 5, 200, now);
        v2.schema_version = 2;
        assert_eq!(decode(Some(&v2.encode_to_vec()), skew), Err(Poison::UnknownSchema(2)));
        let mut bad_id = result(job, "", CheckOutcome::Ok, 5, 200, now);
        bad_id.job_id = "x".into();
        assert!(matches!(
            decode(Some(&bad_id.encode_to_vec()), skew),
            Err(Poison::BadJobId(_))
        ));
        let future = result(job, "", CheckOutcome::Ok, 5, 200, now + chrono::Duration::days(2));
        assert!(matches!(
            decode(Some(&future.encode_to_vec()), skew),
            Err(Poison::FutureStartTime(_))
        ));
        let mut no_start = result(job, "", CheckOutcome::Ok, 5, 200, now);
        no_start.start_time = None;
        assert_eq!(
            decode(Some(&no_start.encode_to_vec()), skew),
            Err(Poison::MissingStartTime)
        );
    }
}
