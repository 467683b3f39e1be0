//! The registry's state as plain data: the workers it knows and what each
//! holds at which epoch, the running jobs, and the epochs this process may
//! issue. Decisions over it are functions of this and the time; the
//! streams to the workers are kept beside it (in the registry), not in it,
//! so those functions are tested without one.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use monitor_proto::v1::{Job, JobReport, WorkerState, connect_response};
use uuid::Uuid;

use super::{AssignmentKey, LOCATION_LABEL};

/// A worker's id, as its hello names it.
pub(super) type WorkerId = String;

/// What the server tells a worker: the `kind` of a `ConnectResponse`.
pub(super) type ControlMessage = connect_response::Kind;

/// A message a decision made for one worker, delivered on its current
/// stream (and dropped when it has none).
pub(super) type Outgoing = (WorkerId, ControlMessage);

/// What a worker holds for one assignment.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    /// The epoch it was issued (or adopted) at: its reports and releases,
    /// and a reconnect's claim, must carry it.
    pub(super) epoch: u64,
    /// The job version last sent with an Assign (0: not confirmed yet), so
    /// a changed spec is sent again.
    pub(super) job_version: i64,
    /// A Revoke was sent; the worker has not confirmed yet.
    pub(super) revoking: bool,
    /// When the Revoke was sent: past `lease + heartbeat` the assignment is
    /// taken back without the worker's word.
    pub(super) revoked_at: Option<Instant>,
    /// The worker's latest report of it, for job status.
    pub(super) report: Option<JobReport>,
}

impl Held {
    /// A fresh assignment at `epoch`, confirmed at `job_version`.
    pub(super) fn new(epoch: u64, job_version: i64) -> Self {
        Held {
            epoch,
            job_version,
            revoking: false,
            revoked_at: None,
            report: None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct WorkerEntry {
    /// The hello's labels; `location` places jobs that name locations.
    pub(super) labels: HashMap<String, String>,
    /// The worker's build, for ListWorkers.
    pub(super) version: String,
    /// Relative share of jobs (weighted rendezvous hashing).
    pub(super) capacity: u32,
    /// When the current (or last) session said hello.
    pub(super) connect_time: DateTime<Utc>,
    /// Last message of any kind, for the silence limit.
    pub(super) last_heard: Instant,
    /// The same moment on the wall clock, for ListWorkers.
    pub(super) last_heard_at: DateTime<Utc>,
    /// The id of the current session, so messages of a replaced one are
    /// ignored; None while disconnected (lost, within its lease).
    pub(super) session: Option<u64>,
    /// The worker is handing its jobs back before it exits.
    pub(super) draining: bool,
    /// What it runs (or is being asked to give back), at which epoch.
    pub(super) held: HashMap<AssignmentKey, Held>,
}

impl WorkerEntry {
    /// A worker first heard of at `now` (its hello fills in the rest).
    pub(super) fn new(now: Instant, now_at: DateTime<Utc>) -> Self {
        WorkerEntry {
            labels: HashMap::new(),
            version: String::new(),
            capacity: 1,
            connect_time: now_at,
            last_heard: now,
            last_heard_at: now_at,
            session: None,
            draining: false,
            held: HashMap::new(),
        }
    }

    pub(super) fn state(&self) -> WorkerState {
        match (&self.session, self.draining) {
            (None, _) => WorkerState::Lost,
            (Some(_), true) => WorkerState::Draining,
            (Some(_), false) => WorkerState::Connected,
        }
    }

    /// Whether new assignments may go to this worker.
    pub(super) fn eligible_for(&self, location: &str) -> bool {
        self.session.is_some()
            && !self.draining
            && (location.is_empty() || self.labels.get(LOCATION_LABEL).is_some_and(|l| l == location))
    }

    /// Whether it has been silent for longer than `limit` at `now`.
    pub(super) fn silent(&self, now: Instant, limit: Duration) -> bool {
        now.duration_since(self.last_heard) > limit
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Every worker known: connected, draining, or lost within its lease.
    pub(super) workers: HashMap<WorkerId, WorkerEntry>,
    /// Last epoch handed out (or adopted) per assignment.
    pub(super) epochs: HashMap<AssignmentKey, u64>,
    /// Epochs this process may issue: `next_epoch..=epochs_end`, reserved
    /// in the database. Empty (next > end) until a block is reserved.
    pub(super) next_epoch: u64,
    pub(super) epochs_end: u64,
    /// The highest epoch any server process reserved: a claim above it was
    /// never issued. None until read from the database; claims adopted
    /// before that are checked when it is known.
    pub(super) epoch_ceiling: Option<u64>,
    /// The ceiling as read at start (what earlier processes reserved):
    /// above it, epochs are this process's own, and a claim must carry
    /// exactly the epoch issued for its assignment.
    pub(super) inherited_ceiling: Option<u64>,
    /// Whether the running jobs have been read once: from then on a claim
    /// for a job that is not running is fenced, not adopted.
    pub(super) jobs_loaded: bool,
    /// Running jobs as last read from the database.
    pub(super) jobs: HashMap<Uuid, Arc<Job>>,
    /// Until then, assignments nobody holds are not handed out and nothing
    /// moves: workers of the previous server process may still run them
    /// (the assignment lease it left in the database). None until read.
    pub(super) grace_until: Option<Instant>,
    /// When the assignment lease in the database was last pushed forward.
    pub(super) lease_written: Option<Instant>,
    /// The last session id given out, so each hello's session is told
    /// apart from the one it replaces.
    pub(super) next_session: u64,
}

impl State {
    /// How many assignments the running jobs make (an upper bound of the
    /// epochs the next pass may issue).
    pub(super) fn assignments_wanted(&self) -> u64 {
        self.jobs.values().map(|job| job.locations.len().max(1) as u64).sum()
    }
}

/// States for the unit tests of the decisions: no stream, database or
/// clock, only an `Instant` to count from.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;

    /// A worker connected (session 1) and last heard at `now`, with
    /// `capacity` and, when given, a location label.
    pub(in crate::fleet) fn worker(now: Instant, capacity: u32, location: Option<&str>) -> WorkerEntry {
        let mut worker = WorkerEntry::new(now, DateTime::<Utc>::UNIX_EPOCH);
        worker.capacity = capacity;
        worker.session = Some(1);
        if let Some(location) = location {
            worker.labels.insert(LOCATION_LABEL.into(), location.into());
        }
        worker
    }

    impl WorkerEntry {
        /// The same worker, also holding `key` as `held`.
        pub(in crate::fleet) fn holding(mut self, key: AssignmentKey, held: Held) -> Self {
            self.held.insert(key, held);
            self
        }
    }

    /// A running job at `version`, in `locations` (none: anywhere).
    pub(in crate::fleet) fn job(id: u128, version: i64, locations: &[&str]) -> Arc<Job> {
        Arc::new(Job {
            id: Uuid::from_u128(id).to_string(),
            version,
            locations: locations.iter().map(|l| (*l).to_owned()).collect(),
            ..Default::default()
        })
    }

    /// The assignment of job `id` in `location`.
    pub(in crate::fleet) fn key(id: u128, location: &str) -> AssignmentKey {
        AssignmentKey {
            job_id: Uuid::from_u128(id),
            location: location.into(),
        }
    }

    /// A state past its grace period at `now`, with the epochs
    /// `first..=last` to issue and the ceilings read, running `jobs`.
    pub(in crate::fleet) fn ready(now: Instant, first: u64, last: u64, jobs: &[Arc<Job>]) -> State {
        State {
            next_epoch: first,
            epochs_end: last,
            epoch_ceiling: Some(last),
            inherited_ceiling: Some(first.saturating_sub(1)),
            jobs_loaded: true,
            jobs: jobs
                .iter()
                .map(|job| (Uuid::parse_str(&job.id).unwrap(), job.clone()))
                .collect(),
            grace_until: Some(now),
            ..State::default()
        }
    }
}
