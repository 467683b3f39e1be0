//! The `alert` role: evaluates alert rules on the results topic as a
//! consumer group of its own, and opens and resolves incidents exactly once.
//!
//! Results are keyed by job id, so one evaluator owns every location of a
//! job and "N of M locations" is exact. Per owned partition it keeps the
//! state of each (rule, job) whose results are there; every flush is one
//! transaction that fences on the partitions' stored offsets, writes the
//! changed state, the incidents opened and resolved, their timeline and the
//! notification intents, and stores the new offsets
//! (`monitor_store::models::alert_state::flush`). A flush that is fenced or
//! not written drops those partitions' state; they are reloaded from the
//! database and re-read from the stored offsets, so a crash, a replay or a
//! rebalance never opens an incident twice, never misses one and never
//! loses a resolve.
//!
//! Time-based conditions (no data, reminders, silences ending, flapping
//! ending) run on a tick, for the jobs whose partition this evaluator owns
//! and reads up to date (it reached the partition's end since taking it).
//! A job that never produced a result is placed with the partitioner the
//! probes' producer uses (CRC-32 of the key, librdkafka's default).
//!
//! - [`config`]: the role's settings.
//! - [`catalog`]: rules, jobs and silences as read from PostgreSQL.
//! - [`evaluate`]: the decisions, pure functions of state and a result or
//!   the time.
//! - [`partition`]: the state held per owned partition and its writes.
//! - here: [`Evaluator`], its loop, and [`run`], the wiring.
//!
//! The consumer is [`crate::stream`], shared with the aggregate role.
//! Undecodable messages are skipped (counted): the aggregators already send
//! them to the dead-letter topic.

pub mod catalog;
pub mod config;
pub mod evaluate;
pub mod partition;

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use monitor_proto::v1::{CheckOutcome, CheckResult, check_result::Detail};
use monitor_store::{
    DbPool, StoreError,
    models::{
        alert_rule, alert_state,
        alert_state::AlertWrites,
        consumer_offsets::PartitionProgress,
        incident::{self, FirstFailure},
        job,
        job_metrics::FlushOutcome,
        silence,
    },
};
use rdkafka::{Message, error::KafkaError, message::OwnedMessage};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

pub use config::AlertArgs;

use self::{
    catalog::Catalog,
    evaluate::{Effect, Observed, Subject},
    partition::PartitionState,
};
use crate::{
    stream::{Admission, FencedConsumer, decode},
    telemetry::{AlertMetrics, StoreConsumerTelemetry},
};

/// Attempts at writing one flush before its partitions are re-read instead.
const FLUSH_ATTEMPTS: u32 = 5;

/// The partition librdkafka's default partitioner (consistent_random)
/// puts a keyed message on: CRC-32 of the key modulo the partition count.
pub fn partition_of(key: &[u8], partitions: usize) -> i32 {
    (crc32fast::hash(key) as usize % partitions.max(1)) as i32
}

/// What woke the loop.
enum Wake {
    Shutdown,
    Revoked(Vec<i32>),
    Flush,
    Tick,
    Reload,
    Message(Result<OwnedMessage, KafkaError>),
}

/// A running evaluator.
pub struct Evaluator {
    /// The role's settings.
    args: AlertArgs,
    /// Where state, incidents and offsets are written.
    pool: DbPool,
    /// The results topic's group member, with its offsets in PostgreSQL.
    stream: FencedConsumer,
    /// Revocations from the consumer's callbacks: those partitions are
    /// flushed at once, then dropped.
    revoked: mpsc::UnboundedReceiver<Vec<i32>>,
    /// Rules, jobs and silences as last read.
    catalog: Catalog,
    /// When the catalog was last read (an unknown job reads it again, at
    /// most once a second).
    reloaded_at: Option<Instant>,
    /// The results topic's partition count (for jobs never seen yet).
    partition_count: Option<usize>,
    /// State of the partitions loaded (owned, or being flushed on a revoke).
    partitions: HashMap<i32, PartitionState>,
    /// The partition each job's results were seen on.
    job_partition: HashMap<Uuid, i32>,
    /// What it did: exported at /metrics, read by tests and the benchmark.
    pub stats: AlertMetrics,
}

impl Evaluator {
    /// Joins the consumer group (nothing is read before [`Self::run`]).
    pub fn new(args: AlertArgs, pool: DbPool) -> anyhow::Result<Self> {
        let base = args.kafka.client_config()?;
        let stats = AlertMetrics::default();
        let (stream, revoked) = FencedConsumer::subscribe(
            &base,
            &args.kafka.kafka_topic,
            &args.group_id,
            args.consumer.session_timeout_ms,
            true,
            pool.clone(),
            stats.consumer_lag.clone(),
        )?;
        Ok(Evaluator {
            args,
            pool,
            stream,
            revoked,
            catalog: Catalog::default(),
            reloaded_at: None,
            partition_count: None,
            partitions: HashMap::new(),
            job_partition: HashMap::new(),
            stats,
        })
    }

    /// Counts into these (registered) metrics instead of unregistered ones.
    pub fn with_metrics(mut self, metrics: AlertMetrics) -> Self {
        self.stream.report_lag_to(metrics.consumer_lag.clone());
        self.stats = metrics;
        self
    }

    /// Evaluates until `shutdown` flips to true; then flushes and returns.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<AlertMetrics> {
        // Nothing is evaluated before the rules are known.
        while !*shutdown.borrow() && !self.reload().await {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
        let timer = |every: Duration| {
            let mut timer = tokio::time::interval(every);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        };
        let mut flush_timer = timer(self.args.flush_interval());
        let mut tick_timer = timer(self.args.tick_interval());
        let mut reload_timer = timer(self.args.reload_interval());
        while !*shutdown.borrow() {
            let wake = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => Wake::Shutdown,
                Some(revoked) = self.revoked.recv() => Wake::Revoked(revoked),
                _ = flush_timer.tick() => Wake::Flush,
                _ = tick_timer.tick() => Wake::Tick,
                _ = reload_timer.tick() => Wake::Reload,
                message = self.stream.recv() => Wake::Message(message),
            };
            match wake {
                Wake::Shutdown => break,
                Wake::Revoked(revoked) => {
                    self.flush(|p| revoked.contains(&p)).await;
                    for partition in &revoked {
                        self.partitions.remove(partition);
                    }
                    self.stream.forget(&revoked);
                }
                Wake::Flush => self.flush(|_| true).await,
                Wake::Tick => self.tick(Utc::now()),
                Wake::Reload => {
                    self.reload().await;
                }
                Wake::Message(Ok(message)) => self.handle(&message).await,
                Wake::Message(Err(KafkaError::PartitionEOF(partition))) => self.caught_up(partition).await,
                Wake::Message(Err(err)) => {
                    tracing::warn!(error = %err, "consumer error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tracing::info!("shutting down: final flush");
        self.flush(|_| true).await;
        let stats = self.stats.clone();
        tracing::info!(
            consumed = stats.consumed.get(),
            flushes = stats.flushes.get(),
            incidents_opened = stats.incidents_opened.get(),
            incidents_resolved = stats.incidents_resolved.get(),
            notifications = stats.notifications.get(),
            fenced = stats.fenced.get(),
            "evaluator summary"
        );
        Ok(stats)
    }

    /// Reads rules, jobs, silences and what people did to open incidents;
    /// false when the database did not answer (the old catalog stays).
    async fn reload(&mut self) -> bool {
        let now = Utc::now();
        let open: Vec<Uuid> = self
            .partitions
            .values()
            .flat_map(|p| p.states.values())
            .filter_map(|state| state.open.as_ref().map(|open| open.id))
            .collect();
        let read = async {
            let mut conn = self.pool.get().await?;
            let rules = alert_rule::load_enabled(&mut conn).await?;
            let jobs = job::load_all(&mut conn).await?;
            let silences = silence::load_current(&mut conn, now).await?;
            let marks = incident::human_marks(&mut conn, &open).await?;
            Ok::<_, StoreError>((rules, jobs, silences, marks))
        };
        let (rules, jobs, silences, marks) = match read.await {
            Ok(read) => read,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read rules and jobs; keeping the last ones");
                return false;
            }
        };
        self.catalog = Catalog::from_rows(&rules, &jobs, &silences, self.args.no_data_min());
        self.reloaded_at = Some(Instant::now());
        let marks: HashMap<Uuid, (bool, bool)> = marks
            .into_iter()
            .map(|(id, acknowledged, resolved)| (id, (acknowledged.is_some(), resolved.is_some())))
            .collect();
        for partition in self.partitions.values_mut() {
            for (key, state) in partition.states.iter_mut() {
                let Some(open) = state.open.as_ref().map(|open| open.id) else {
                    continue;
                };
                let changed = match marks.get(&open) {
                    Some((_, true)) => evaluate::resolved_by_hand(state, open),
                    Some((true, false)) => evaluate::acknowledged(state, open),
                    _ => false,
                };
                if changed {
                    partition.dirty.insert(*key);
                }
            }
        }
        if self.partition_count.is_none() {
            self.partition_count = self.stream.partition_count();
        }
        true
    }

    /// Loads `partition`'s stored state unless held (retrying while the
    /// database is down: the consumer waits meanwhile).
    async fn load(&mut self, partition: i32) -> &mut PartitionState {
        if !self.partitions.contains_key(&partition) {
            let mut wait = Duration::from_millis(100);
            let rows = loop {
                let read = async {
                    let mut conn = self.pool.get().await?;
                    alert_state::load_partition(&mut conn, partition).await
                };
                match read.await {
                    Ok(rows) => break rows,
                    Err(err) => {
                        tracing::warn!(partition, error = %err, "cannot read alert state; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(10));
                    }
                }
            };
            for row in &rows {
                self.job_partition.insert(row.job_id, partition);
            }
            self.partitions.insert(partition, PartitionState::from_rows(rows));
        }
        self.partitions.get_mut(&partition).expect("inserted above")
    }

    /// Reading reached the end of `partition`: from now on its time-based
    /// conditions apply.
    async fn caught_up(&mut self, partition: i32) {
        if !self.stream.owned().contains(&partition) {
            return;
        }
        self.stream.stored_offset(partition).await;
        let state = self.load(partition).await;
        if state.caught_up_at.is_none() {
            state.caught_up_at = Some(Utc::now());
            tracing::debug!(partition, "up to date");
        }
    }

    /// Evaluates one message.
    async fn handle(&mut self, message: &OwnedMessage) {
        let partition = message.partition();
        match self.stream.admit(message).await {
            Admission::Next => {}
            Admission::Duplicate => {
                self.stats.skipped_duplicates.inc();
                return;
            }
            Admission::SoughtBack => return,
            Admission::Dropped => {
                self.partitions.remove(&partition);
                return;
            }
        }
        self.stats.consumed.inc();
        // Loaded before anything else, so the partition's progress is
        // flushed even when it only held messages that are skipped.
        self.load(partition).await;
        let (job_id, start, result) = match decode(message.payload(), self.args.consumer.max_future_skew()) {
            Ok(decoded) => decoded,
            Err(poison) => {
                self.stats.skipped_poison.inc();
                tracing::debug!(partition, offset = message.offset(), %poison, "skipping an undecodable result");
                return;
            }
        };
        if !self.catalog.jobs.contains_key(&job_id)
            && self.reloaded_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            // A job created since the last read.
            self.reload().await;
        }
        let Some(job) = self.catalog.jobs.get(&job_id) else {
            return;
        };
        self.job_partition.insert(job_id, partition);
        let observed = observed(start, &result);
        let now = Utc::now();
        let silenced = self.catalog.silenced(job, now);
        let state = self.partitions.get_mut(&partition).expect("loaded above");
        for rule in self.catalog.rules_of(job) {
            let key = (rule.id, job_id);
            let subject = Subject { rule, job, silenced };
            let entry = state.states.entry(key).or_default();
            let effects = evaluate::on_result(subject, entry, &observed);
            state.dirty.insert(key);
            state.effects.extend(effects);
        }
    }

    /// Applies the time to every (rule, job) on the owned, up-to-date
    /// partitions, and drops the state of rules and jobs that are gone.
    fn tick(&mut self, now: DateTime<Utc>) {
        let owned = self.stream.owned();
        let live = |p: &i32| owned.contains(p);
        for job in self.catalog.jobs.values() {
            let partition = match (self.job_partition.get(&job.id), self.partition_count) {
                (Some(partition), _) => *partition,
                (None, Some(count)) => partition_of(job.id.to_string().as_bytes(), count),
                (None, None) => continue,
            };
            if !live(&partition) {
                continue;
            }
            let Some(state) = self.partitions.get_mut(&partition) else {
                continue;
            };
            let Some(watching_since) = state.caught_up_at else {
                continue;
            };
            if self.stream.held(partition).is_none() {
                continue;
            }
            let silenced = self.catalog.silenced(job, now);
            for rule in self.catalog.rules_of(job) {
                let key = (rule.id, job.id);
                let mut entry = state.states.get(&key).cloned().unwrap_or_default();
                let before = entry.clone();
                let effects = evaluate::on_tick(Subject { rule, job, silenced }, &mut entry, now, watching_since);
                if entry != before || !effects.is_empty() {
                    state.states.insert(key, entry);
                    state.dirty.insert(key);
                    state.effects.extend(effects);
                }
            }
        }
        // Rules deleted or disabled, jobs deleted, or a rule that no longer
        // covers a job: their open incidents resolve, their state goes.
        for (partition, state) in self.partitions.iter_mut() {
            if !live(partition) {
                continue;
            }
            let gone: Vec<(partition::Key, &'static str)> = state
                .states
                .keys()
                .filter_map(|key| {
                    let (Some(rule), Some(job)) = (self.catalog.rules.get(&key.0), self.catalog.jobs.get(&key.1))
                    else {
                        let why = if self.catalog.jobs.contains_key(&key.1) {
                            "the rule was deleted or disabled"
                        } else {
                            "the job was deleted"
                        };
                        return Some((*key, why));
                    };
                    (!rule.scope.covers(job)).then_some((*key, "the rule no longer covers the job"))
                })
                .collect();
            for (key, why) in gone {
                let Some(removed) = state.states.remove(&key) else {
                    continue;
                };
                if let Some(open) = removed.open {
                    state.effects.push(Effect::Event {
                        incident: open.id,
                        at: now,
                        kind: "resolved",
                        location: String::new(),
                        detail: why.to_owned(),
                    });
                    state.effects.push(Effect::Resolve {
                        incident: open.id,
                        at: now,
                        failing_locations: Vec::new(),
                    });
                }
                state.dirty.remove(&key);
                state.dropped.insert(key);
            }
        }
    }

    /// Writes the changes of the `wanted` loaded partitions in one fenced
    /// transaction; a flush that is fenced or not written drops their state
    /// and re-reads them from the stored offsets.
    async fn flush(&mut self, wanted: impl Fn(i32) -> bool) {
        let loaded: BTreeSet<i32> = self.partitions.keys().copied().filter(|p| wanted(*p)).collect();
        let store = self.stream.take_progress(|p| loaded.contains(&p));
        let mut fence = store.clone();
        for partition in &loaded {
            if fence.iter().any(|p| p.partition == *partition) || !self.partitions[partition].has_changes() {
                continue;
            }
            // Changed by the clock only: fenced on what is stored, nothing stored anew.
            if let Some(expected) = self.stream.held(*partition) {
                fence.push(PartitionProgress {
                    partition: *partition,
                    expected,
                    next_offset: expected.unwrap_or(0),
                });
            }
        }
        if fence.is_empty() {
            return;
        }
        let mut writes = AlertWrites::default();
        let mut effects = Vec::new();
        for progress in &fence {
            if let Some(state) = self.partitions.get_mut(&progress.partition) {
                state.take_writes(progress.partition, &mut writes, &mut effects);
            }
        }
        partition::add_effects(effects, &mut writes);
        let started = Instant::now();
        let outcome = self.write(&fence, &store, &writes).await;
        match outcome {
            Some(FlushOutcome::Committed { .. }) => {
                self.stats.flushes.inc();
                self.stats.flush_duration.observe(started.elapsed().as_secs_f64());
                self.stats.incidents_opened.inc_by(writes.opened.len() as u64);
                let resolved = writes.resolved.len() + writes.opened.iter().filter(|i| i.resolved_at.is_some()).count();
                self.stats.incidents_resolved.inc_by(resolved as u64);
                self.stats.notifications.inc_by(writes.notifications.len() as u64);
                self.stream.committed(&store);
                if !writes.opened.is_empty() || resolved > 0 {
                    tracing::info!(
                        opened = writes.opened.len(),
                        resolved,
                        notifications = writes.notifications.len(),
                        "incidents written"
                    );
                }
            }
            fenced_or_failed => {
                if matches!(fenced_or_failed, Some(FlushOutcome::Fenced { .. })) {
                    self.stats.fenced.inc();
                    tracing::warn!("another evaluator moved partitions; nothing was written, re-reading them");
                } else {
                    self.stats.failed_flushes.inc();
                }
                let partitions: Vec<i32> = fence.iter().map(|p| p.partition).collect();
                for partition in &partitions {
                    self.partitions.remove(partition);
                }
                self.stream.rewind(&partitions).await;
            }
        }
    }

    /// Writes one flush, retrying a few times; None when it was not written.
    async fn write(
        &self,
        fence: &[PartitionProgress],
        store: &[PartitionProgress],
        writes: &AlertWrites,
    ) -> Option<FlushOutcome> {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=FLUSH_ATTEMPTS {
            let result = async {
                let mut conn = self.pool.get().await?;
                alert_state::flush(
                    &mut conn,
                    &self.args.group_id,
                    &self.args.kafka.kafka_topic,
                    fence,
                    store,
                    writes,
                )
                .await
            }
            .await;
            match result {
                Ok(outcome) => return Some(outcome),
                Err(err) => {
                    tracing::warn!(error = %err, attempt, "alert flush failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::error!("giving up the alert flush; its partitions are re-read from the stored offsets");
        None
    }
}

/// What alerting needs of a result: the failure record is built only for
/// a failed check (most results pass).
fn observed(start: DateTime<Utc>, result: &CheckResult) -> Observed {
    let duration = result
        .duration
        .as_ref()
        .map(monitor_proto::duration::to_std_saturating)
        .unwrap_or_default();
    let end = start + chrono::Duration::from_std(duration).unwrap_or_default();
    let outcome = CheckOutcome::try_from(result.outcome).unwrap_or(CheckOutcome::Unspecified);
    let failure = (outcome != CheckOutcome::Ok).then(|| FirstFailure {
        check_id: result.check_id.clone(),
        worker_id: result.worker_id.clone(),
        location: result.location.clone(),
        start_time: start,
        outcome: outcome.as_str_name().to_owned(),
        status_code: match &result.detail {
            Some(Detail::Http(http)) => http.status_code,
            _ => 0,
        },
        error: result.error.clone(),
    });
    Observed {
        location: result.location.clone(),
        start,
        end,
        failure,
    }
}

/// Runs the alert role until `shutdown`.
pub async fn run(args: AlertArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let pool = monitor_store::connect(args.consumer.database_url.expose(), 4)?;
    let mut registry = prometheus_client::registry::Registry::with_prefix("monitor");
    let metrics = AlertMetrics::register(&mut registry);
    let dispatcher = if args.dispatch {
        let metrics = crate::notify::DispatchMetrics::register(&mut registry);
        let dispatcher = crate::notify::Dispatcher::new(pool.clone(), args.dispatch_config(), metrics)?;
        Some(tokio::spawn(dispatcher.run(shutdown.clone())))
    } else {
        None
    };
    let telemetry =
        StoreConsumerTelemetry::spawn(&pool, &args.kafka, args.consumer.metrics_listen, registry, &shutdown)?;
    let evaluator = Evaluator::new(args, pool)?.with_metrics(metrics);
    let result = evaluator.run(shutdown).await;
    if let Some(dispatcher) = dispatcher {
        // It stops on the same signal, after the attempts in flight.
        let _ = dispatcher.await;
    }
    telemetry.stop();
    result.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_placed_as_librdkafka_places_them() {
        // librdkafka's consistent partitioner: crc32(key) % partitions;
        // crc32("123456789") is the standard check value 0xCBF43926.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(partition_of(b"123456789", 7), (0xCBF4_3926u64 % 7) as i32);
        assert_eq!(partition_of(b"anything", 1), 0);
        assert_eq!(partition_of(b"anything", 0), 0);
    }
}
