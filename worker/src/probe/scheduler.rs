//! The local scheduler: one timer task per assignment, firing on a fixed
//! grid of the Unix clock. A job with interval `i` runs at `phase + k·i`,
//! where `phase` is derived from the job id and location, so 10 000 jobs of
//! the same interval spread evenly, a restarted task lands on the same grid
//! (no gap when a job is re-sent), and nothing drifts over hours.
//!
//! A semaphore caps checks in flight; each check is bounded by its timeout
//! (inside the check runner). A tick whose previous check still runs is
//! skipped rather than queued.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::Utc;
use hdrhistogram::Histogram;
use monitor_proto::{
    SCHEMA_VERSION, duration,
    v1::{AssignmentRef, CheckOutcome, CheckResult, Job, JobReport},
    wkt::Timestamp,
};
use tokio::{sync::Semaphore, task::JoinHandle};

use super::producer::ResultProducer;
use crate::{
    check::CheckRunner,
    telemetry::{CheckLabels, KindLabels, ProbeMetrics},
};

/// One assignment: a job in one location.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub job_id: String,
    pub location: String,
}

/// Counters of one assignment, for reports.
#[derive(Debug, Default)]
struct Counters {
    checks: AtomicU64,
    failures: AtomicU64,
    last_check_ms: AtomicU64,
    last_outcome: std::sync::atomic::AtomicI32,
    /// The latest result, without the fields the report's assignment names.
    last_result: std::sync::Mutex<Option<CheckResult>>,
    /// Checks since the last report.
    unreported: AtomicBool,
}

struct Running {
    job: Arc<Job>,
    epoch: u64,
    task: JoinHandle<()>,
    /// False while paused (lease expired) until the server confirms again.
    active: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

/// Lateness of check starts against their schedule, in microseconds.
pub type Lateness = Arc<Mutex<Histogram<u64>>>;

/// What the scheduler needs to run checks.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    worker_id: String,
    runner: CheckRunner,
    producer: ResultProducer,
    limit: Arc<Semaphore>,
    running: Mutex<HashMap<Key, Running>>,
    lateness: Lateness,
    in_flight: Arc<AtomicU64>,
    completed: Arc<AtomicU64>,
    metrics: ProbeMetrics,
}

/// Milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stable hash of the assignment, for its phase.
fn phase_hash(key: &Key) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.job_id.bytes().chain([0xff]).chain(key.location.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The first grid slot strictly after `now_ms` for `interval_ms` and `phase_ms`.
pub fn next_slot(now_ms: u64, interval_ms: u64, phase_ms: u64) -> u64 {
    let interval_ms = interval_ms.max(1);
    let phase_ms = phase_ms % interval_ms;
    if now_ms < phase_ms {
        return phase_ms;
    }
    let k = (now_ms - phase_ms) / interval_ms + 1;
    phase_ms + k * interval_ms
}

impl Scheduler {
    pub fn new(
        worker_id: String,
        runner: CheckRunner,
        producer: ResultProducer,
        max_in_flight: usize,
        metrics: ProbeMetrics,
    ) -> Self {
        Scheduler {
            inner: Arc::new(Inner {
                worker_id,
                runner,
                producer,
                limit: Arc::new(Semaphore::new(max_in_flight.max(1))),
                running: Mutex::new(HashMap::new()),
                lateness: Arc::new(Mutex::new(
                    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("bounds"),
                )),
                in_flight: Arc::default(),
                completed: Arc::default(),
                metrics,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lateness histogram (µs), for the benchmark and metrics.
    pub fn lateness(&self) -> Lateness {
        self.inner.lateness.clone()
    }

    pub fn in_flight(&self) -> u64 {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    pub fn completed(&self) -> u64 {
        self.inner.completed.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts (or updates) an assignment. An unchanged job at the same epoch
    /// just becomes active again (a confirmation after a reconnect).
    pub fn assign(&self, key: Key, job: Job, epoch: u64) {
        let mut running = self.lock();
        if let Some(current) = running.get(&key)
            && current.epoch == epoch
            && *current.job == job
        {
            current.active.store(true, Ordering::Relaxed);
            return;
        }
        let counters = match running.remove(&key) {
            Some(previous) => {
                previous.task.abort();
                if previous.epoch == epoch {
                    previous.counters
                } else {
                    Arc::default()
                }
            }
            None => Arc::default(),
        };
        let job = Arc::new(job);
        let active = Arc::new(AtomicBool::new(true));
        let task = tokio::spawn(run_job(
            self.inner.clone(),
            key.clone(),
            job.clone(),
            epoch,
            active.clone(),
            counters.clone(),
        ));
        tracing::debug!(job_id = key.job_id, location = key.location, epoch, "assigned");
        running.insert(
            key,
            Running {
                job,
                epoch,
                task,
                active,
                counters,
            },
        );
    }

    /// Stops an assignment; returns what was released.
    pub fn revoke(&self, key: &Key) -> Option<AssignmentRef> {
        let removed = self.lock().remove(key)?;
        removed.task.abort();
        Some(AssignmentRef {
            job_id: key.job_id.clone(),
            location: key.location.clone(),
            epoch: removed.epoch,
            job_version: removed.job.version,
        })
    }

    /// Stops everything (draining); returns what was released.
    pub fn revoke_all(&self) -> Vec<AssignmentRef> {
        let keys: Vec<Key> = self.lock().keys().cloned().collect();
        keys.iter().filter_map(|key| self.revoke(key)).collect()
    }

    /// Pauses every assignment until the server confirms it again.
    pub fn pause_all(&self) {
        for running in self.lock().values() {
            running.active.store(false, Ordering::Relaxed);
        }
    }

    /// What this worker runs, for the hello of a new session.
    pub fn held(&self) -> Vec<AssignmentRef> {
        self.lock()
            .iter()
            .map(|(key, r)| AssignmentRef {
                job_id: key.job_id.clone(),
                location: key.location.clone(),
                epoch: r.epoch,
                job_version: r.job.version,
            })
            .collect()
    }

    /// Marks every assignment that has checked at least once as unreported,
    /// so a new session's first report brings the control plane (perhaps a
    /// restarted one, which knows no outcomes) up to date at once instead of
    /// after each job's next check.
    pub fn report_all_again(&self) {
        for running in self.lock().values() {
            if running.counters.last_check_ms.load(Ordering::Relaxed) > 0 {
                running.counters.unreported.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Reports of assignments that ran checks since the last call.
    pub fn reports(&self) -> Vec<JobReport> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.counters.unreported.swap(false, Ordering::Relaxed))
            .map(|(key, r)| {
                let ms = r.counters.last_check_ms.load(Ordering::Relaxed);
                JobReport {
                    assignment: Some(AssignmentRef {
                        job_id: key.job_id.clone(),
                        location: key.location.clone(),
                        epoch: r.epoch,
                        job_version: r.job.version,
                    }),
                    last_check_time: Some(Timestamp::from_unix_millis(ms)),
                    last_outcome: r.counters.last_outcome.load(Ordering::Relaxed),
                    checks: r.counters.checks.load(Ordering::Relaxed),
                    failures: r.counters.failures.load(Ordering::Relaxed),
                    last_result: r.counters.last_result.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }
            })
            .collect()
    }

    /// Waits (at most `timeout`) for checks in flight to finish.
    pub async fn wait_idle(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The timer loop of one assignment.
async fn run_job(
    inner: Arc<Inner>,
    key: Key,
    job: Arc<Job>,
    epoch: u64,
    active: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let interval_ms = job
        .interval
        .as_ref()
        .map_or(0, duration::as_millis_saturating)
        .max(1000);
    let phase_ms = phase_hash(&key) % interval_ms;
    let busy = Arc::new(AtomicBool::new(false));
    loop {
        let now_ms = unix_ms();
        let slot = next_slot(now_ms, interval_ms, phase_ms);
        tokio::time::sleep(Duration::from_millis(slot - now_ms)).await;
        if !active.load(Ordering::Relaxed) || busy.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(permit) = inner.limit.clone().acquire_owned().await else {
            return;
        };
        busy.store(true, Ordering::Relaxed);
        inner.in_flight.fetch_add(1, Ordering::Relaxed);
        let (inner, key, job, counters, busy) =
            (inner.clone(), key.clone(), job.clone(), counters.clone(), busy.clone());
        tokio::spawn(async move {
            let started_ms = unix_ms();
            let late_us = started_ms.saturating_sub(slot) * 1000;
            if let Ok(mut histogram) = inner.lateness.lock() {
                let _ = histogram.record(late_us.max(1));
            }
            inner.metrics.lateness.observe(late_us as f64 / 1e6);
            let mut result = inner.runner.run(&job).await;
            fill(&mut result, &inner.worker_id, &key, &job, epoch, slot);
            let kind = job.check.as_ref().map_or("none", crate::check::kind_name);
            let outcome = CheckOutcome::try_from(result.outcome).unwrap_or(CheckOutcome::Unspecified);
            inner
                .metrics
                .checks
                .get_or_create(&CheckLabels {
                    kind: kind.into(),
                    outcome: outcome.as_str_name().into(),
                })
                .inc();
            if let Some(d) = &result.duration {
                let seconds = duration::as_millis_f64(d) / 1e3;
                inner
                    .metrics
                    .check_duration
                    .get_or_create(&KindLabels { kind: kind.into() })
                    .observe(seconds);
            }
            let failed = result.outcome != CheckOutcome::Ok as i32;
            counters.checks.fetch_add(1, Ordering::Relaxed);
            if failed {
                counters.failures.fetch_add(1, Ordering::Relaxed);
            }
            counters.last_check_ms.store(started_ms, Ordering::Relaxed);
            counters.last_outcome.store(result.outcome, Ordering::Relaxed);
            inner.producer.publish(&result).await;
            *counters.last_result.lock().unwrap_or_else(|p| p.into_inner()) = Some(reported(result));
            counters.unreported.store(true, Ordering::Relaxed);
            inner.completed.fetch_add(1, Ordering::Relaxed);
            inner.in_flight.fetch_sub(1, Ordering::Relaxed);
            busy.store(false, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// A result as a report carries it: what the assignment already names
/// (job, location, epoch, worker) is left out.
fn reported(result: CheckResult) -> CheckResult {
    CheckResult {
        check_id: String::new(),
        job_id: String::new(),
        worker_id: String::new(),
        location: String::new(),
        ..result
    }
}

/// Fills in what the check runner does not know.
fn fill(result: &mut CheckResult, worker_id: &str, key: &Key, job: &Job, epoch: u64, slot_ms: u64) {
    result.schema_version = SCHEMA_VERSION;
    result.check_id = uuid::Uuid::now_v7().to_string();
    result.job_id = key.job_id.clone();
    result.job_version = job.version;
    result.worker_id = worker_id.to_owned();
    result.epoch = epoch;
    result.location = key.location.clone();
    result.scheduled_time = Some(Timestamp::from_unix_millis(slot_ms));
    if result.start_time.is_none() {
        result.start_time = Some(Utc::now().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_grid() {
        assert_eq!(next_slot(0, 1000, 250), 250);
        assert_eq!(next_slot(250, 1000, 250), 1250, "strictly after now");
        assert_eq!(next_slot(1249, 1000, 250), 1250);
        assert_eq!(next_slot(10_000_000_123, 60_000, 1_500), 10_000_021_500);
        // Hours later, the slots are still on the same grid: no drift.
        let later = next_slot(3_600_000 * 5 + 7, 1000, 250);
        assert_eq!((later - 250) % 1000, 0);
    }

    #[test]
    fn phases_spread_evenly() {
        let interval = 1000;
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let key = Key {
                job_id: uuid::Uuid::now_v7().to_string(),
                location: format!("{}", i % 3),
            };
            buckets[(phase_hash(&key) % interval / 100) as usize] += 1;
        }
        for (i, n) in buckets.iter().enumerate() {
            assert!((850..=1150).contains(n), "bucket {i} of 100 ms holds {n} of 10000 jobs");
        }
    }
}
