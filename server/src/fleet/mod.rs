//! The probe-worker registry: who is connected, what each runs, and the
//! assignment loop that keeps every running job on exactly one worker per
//! location.
//!
//! Safety rules (a job never runs on two workers at once):
//! - An assignment moves only after its holder released it (answering a
//!   Revoke, or draining), or after the holder's lease expired: the server
//!   waits `lease + heartbeat interval` of silence, while a silent worker
//!   pauses its jobs after `lease` without hearing the server.
//! - Every move bumps the assignment's epoch; a worker that reconnects with
//!   a stale epoch is told to stop (fenced).
//! - Epochs are issued by the server only, from blocks reserved in the
//!   database before use: a claim at an epoch no server process reserved
//!   (one the worker invented) is fenced, and a new process issues epochs
//!   above every earlier one.
//! - A holder that ignores a Revoke loses the assignment after
//!   `lease + heartbeat interval` anyway.
//!
//! The loop wakes on every job change made through this server, on worker
//! events, and at least every `reconcile_interval` (which also picks up
//! changes other processes made in the database).
//!
//! Pure cores, thin shells: every decision is a plain function of the
//! registry's state (`state`) and the time, returning the messages to send:
//! placement and reconcile (`reconcile`, over [`placement`]), the claims of
//! a hello (`hello`), fencing once the reserved epochs are known (`lease`),
//! and the read views (`views`). The [`WorkerRegistry`] around them takes
//! the lock, reads the clock, talks to the database (`lease`,
//! `assignment_loop`) and delivers messages on the workers' streams
//! (`session`).

mod assignment_loop;
mod hello;
mod lease;
pub mod placement;
mod reconcile;
mod session;
mod state;
mod views;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use monitor_proto::v1::{AssignmentRef, ConnectResponse};
use tokio::sync::Notify;
use uuid::Uuid;

use session::Session;
pub use session::SessionHandle;
use state::{Outgoing, State, WorkerId};

/// More assignments than one worker may claim (the registry itself holds
/// at most as many as there are running jobs × locations).
pub const MAX_HELD: usize = 100_000;

/// Label naming a worker's location.
pub const LOCATION_LABEL: &str = "location";

/// Timing of the assignment protocol.
#[derive(Debug, Clone, Copy)]
pub struct RegistryConfig {
    /// A worker pauses after this long without hearing the server; the server
    /// moves a silent worker's jobs after `lease + heartbeat_interval`.
    pub lease: Duration,
    /// How often both sides send heartbeats.
    pub heartbeat_interval: Duration,
    /// Longest time between two assignment passes.
    pub reconcile_interval: Duration,
    /// Most workers the registry knows at once (connected, draining or lost
    /// within their lease); a hello under a new id beyond it is refused.
    pub max_workers: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            lease: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(3),
            reconcile_interval: Duration::from_millis(500),
            max_workers: 1_000,
        }
    }
}

impl RegistryConfig {
    /// How long a worker may be silent before the server moves its jobs.
    fn silence_limit(&self) -> Duration {
        self.lease + self.heartbeat_interval
    }
}

/// One assignment: a job in one location ("" when the job names none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AssignmentKey {
    pub job_id: Uuid,
    pub location: String,
}

impl AssignmentKey {
    /// The key rendezvous hashing places ([`placement::choose`]).
    pub fn hash_key(&self) -> String {
        format!("{}/{}", self.job_id, self.location)
    }
}

fn parse_key(assignment: &AssignmentRef) -> Option<AssignmentKey> {
    Some(AssignmentKey {
        job_id: Uuid::parse_str(&assignment.job_id).ok()?,
        location: assignment.location.clone(),
    })
}

/// Handle to the registry; cheap to clone.
#[derive(Clone)]
pub struct WorkerRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Mutex<Shared>,
    wake: Notify,
    config: RegistryConfig,
}

/// What the lock guards: the state the decisions read and change, and the
/// streams their messages go out on.
#[derive(Default)]
struct Shared {
    state: State,
    /// The current session of each connected worker: the outbox of its
    /// stream. Dropping one ends that stream.
    streams: HashMap<WorkerId, Session>,
}

impl Shared {
    /// Sends each message on its worker's current stream; a worker without
    /// one (lost, or its session replaced) gets nothing.
    fn deliver(&self, messages: impl IntoIterator<Item = Outgoing>) {
        for (worker_id, message) in messages {
            let current = self.state.workers.get(&worker_id).and_then(|w| w.session);
            if let Some(session) = self.streams.get(&worker_id)
                && current == Some(session.id)
            {
                // A closed outbox means the stream is going away; the close
                // path handles the rest.
                let _ = session.outbox.send(Ok(ConnectResponse { kind: Some(message) }));
            }
        }
    }

    /// Ends the streams of sessions the state no longer has (a worker found
    /// silent, gone, or disconnected).
    fn end_stale_streams(&mut self) {
        let Shared { state, streams } = self;
        streams.retain(|id, session| state.workers.get(id).and_then(|w| w.session) == Some(session.id));
    }
}

impl WorkerRegistry {
    pub fn new(config: RegistryConfig) -> Self {
        WorkerRegistry {
            inner: Arc::new(Inner {
                shared: Mutex::new(Shared::default()),
                wake: Notify::new(),
                config,
            }),
        }
    }

    pub fn config(&self) -> RegistryConfig {
        self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves consistent-enough data; keep serving.
        self.inner
            .shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the assignment loop to run now (after a job change).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }
}
