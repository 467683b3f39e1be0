//! The flush pipeline: taking the pending rollups and the partitions'
//! progress as one [`Flush`], writing it in one fenced transaction
//! (`job_metrics::flush_with`, which first creates the `job_metrics`
//! partitions of buckets not seen yet; in the background while consuming goes on, or in
//! the foreground on a revocation and at shutdown), retrying while the
//! database is down, and applying how it ended to the pending state, the
//! consumer's positions and the metrics.

use std::time::{Duration, Instant};

use monitor_store::{
    DbPool, StoreError,
    models::{
        consumer_offsets::PartitionProgress,
        job_metrics::{self, FlushOutcome},
        metric_partitions::MetricPartitions,
    },
    rollup::{Rollup, RollupKey},
};
use tokio::sync::watch;

use super::Aggregator;

/// One flush's rows and offsets.
pub(super) struct Flush {
    /// The pending rollups, merged by stored row.
    rows: Vec<(RollupKey, Rollup)>,
    /// Where each flushed partition's reading stands: fenced on, then stored.
    progress: Vec<PartitionProgress>,
}

/// A flush being written in the background.
pub(super) struct InFlight {
    /// The flushed partitions' progress, applied when the write ends.
    pub(super) progress: Vec<PartitionProgress>,
    /// The write; None: not written (gave up, or aborted).
    pub(super) task: tokio::task::JoinHandle<Option<FlushOutcome>>,
    /// When it started, for the flush duration metric.
    pub(super) started: Instant,
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
    partitions: &MetricPartitions,
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
            job_metrics::flush_with(&mut conn, partitions, group, topic, &flush.rows, &flush.progress).await
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

impl Aggregator {
    /// Waits a bounded time for the flush in flight (the consumer is not
    /// polled meanwhile, so an endless wait while the database is down would
    /// get this member thrown out of the group). On timeout the flush is
    /// aborted and its partitions re-read from their stored offsets: whether
    /// or not it committed, the fence keeps that exact.
    pub(super) async fn finish_in_flight(&mut self, mut done: InFlight) {
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
    pub(super) async fn flush_revoked(&mut self, revoked: &[i32], shutdown: &watch::Receiver<bool>) {
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

    /// Drops the state of partitions this aggregator no longer owns, or
    /// whose flush did not commit: they are re-read from the stored offsets.
    fn forget(&mut self, partitions: &[i32]) {
        self.pending.forget(partitions);
        self.stream.forget(partitions);
    }

    /// Takes the pending rollups and offsets as one flush and starts a fresh
    /// pending state that assumes the flush will commit (if it does not, the
    /// partitions are dropped and re-read from their stored offsets).
    pub(super) fn take_flush(&mut self) -> Option<Flush> {
        self.take_flush_of(|_| true)
    }

    /// [`Self::take_flush`] of the `wanted` partitions only.
    fn take_flush_of(&mut self, wanted: impl Fn(i32) -> bool) -> Option<Flush> {
        let progress = self.stream.take_progress(&wanted);
        if progress.is_empty() {
            return None;
        }
        let rows = self.pending.take(&wanted, &self.args.granularities);
        Some(Flush { rows, progress })
    }

    /// Starts writing a flush in the background, so consuming goes on.
    pub(super) fn spawn_flush(&mut self, flush: Flush, shutdown: &watch::Receiver<bool>) -> InFlight {
        let (pool, partitions, group, topic) = (
            self.pool.clone(),
            self.partitions.clone(),
            self.args.group_id.clone(),
            self.args.kafka.kafka_topic.clone(),
        );
        let progress = flush.progress.clone();
        let shutdown = shutdown.clone();
        let task =
            tokio::spawn(
                async move { write(&pool, &partitions, &group, &topic, &flush, until_shutdown(&shutdown)).await },
            );
        InFlight {
            progress,
            task,
            started: Instant::now(),
        }
    }

    /// Applies the result of a finished flush.
    pub(super) fn finish_flush(
        &mut self,
        progress: &[PartitionProgress],
        outcome: Option<FlushOutcome>,
        started: Instant,
    ) {
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
                self.stream.committed(progress);
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
    pub(super) async fn flush(&mut self, shutdown: &watch::Receiver<bool>) {
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
            &self.partitions,
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
