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

pub mod placement;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use monitor_proto::v1::{
    Assign, AssignmentRef, ConnectRequest, ConnectResponse, Job, JobPlacement, JobReport, Revoke, ServerHeartbeat,
    Welcome, Worker, WorkerHello, WorkerState, connect_request, connect_response,
};
use monitor_store::{
    DbPool,
    models::{assignment_lease, job},
};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::{error::ApiError, jobs::convert::job_from_row, jobs::validate::is_label_key};

/// Extra time on the assignment lease written to the database.
const LEASE_MARGIN: Duration = Duration::from_secs(3);
/// How often the assignment lease is pushed forward.
const LEASE_REWRITE: Duration = Duration::from_secs(1);
/// Epochs reserved in the database at a time.
const EPOCH_BLOCK: u64 = 10_000;

/// Bounds of a worker's hello.
const MAX_LABELS: usize = 32;
const MAX_LABEL_VALUE_CHARS: usize = 256;
const MAX_VERSION_CHARS: usize = 64;
/// More assignments than one worker may claim (the registry itself holds
/// at most as many as there are running jobs × locations).
pub const MAX_HELD: usize = 100_000;
/// Largest capacity a worker may announce.
const MAX_CAPACITY: u32 = 10_000;

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

/// What a worker holds for one assignment.
#[derive(Debug, Clone)]
struct Held {
    epoch: u64,
    job_version: i64,
    /// A Revoke was sent; the worker has not confirmed yet.
    revoking: bool,
    /// When the Revoke was sent: past `lease + heartbeat` the assignment is
    /// taken back without the worker's word.
    revoked_at: Option<Instant>,
    report: Option<JobReport>,
}

type Outbox = mpsc::UnboundedSender<Result<ConnectResponse, tonic::Status>>;

/// The live stream of a connected worker.
struct Session {
    id: u64,
    outbox: Outbox,
}

struct WorkerEntry {
    /// The hello's labels; `location` places jobs that name locations.
    labels: HashMap<String, String>,
    /// The worker's build, for ListWorkers.
    version: String,
    /// Relative share of jobs (weighted rendezvous hashing).
    capacity: u32,
    /// When the current (or last) session said hello.
    connect_time: DateTime<Utc>,
    /// Last message of any kind, for the silence limit.
    last_heard: Instant,
    /// The same moment on the wall clock, for ListWorkers.
    last_heard_at: DateTime<Utc>,
    /// None while disconnected (lost, within its lease).
    session: Option<Session>,
    /// The worker is handing its jobs back before it exits.
    draining: bool,
    /// What it runs (or is being asked to give back), at which epoch.
    held: HashMap<AssignmentKey, Held>,
}

impl WorkerEntry {
    fn send(&self, message: connect_response::Kind) {
        if let Some(session) = &self.session {
            // A closed outbox means the stream is going away; the close path
            // handles the rest.
            let _ = session.outbox.send(Ok(ConnectResponse { kind: Some(message) }));
        }
    }

    fn state(&self) -> WorkerState {
        match (&self.session, self.draining) {
            (None, _) => WorkerState::Lost,
            (Some(_), true) => WorkerState::Draining,
            (Some(_), false) => WorkerState::Connected,
        }
    }

    /// Whether new assignments may go to this worker.
    fn eligible_for(&self, location: &str) -> bool {
        self.session.is_some()
            && !self.draining
            && (location.is_empty() || self.labels.get(LOCATION_LABEL).is_some_and(|l| l == location))
    }
}

#[derive(Default)]
struct State {
    workers: HashMap<String, WorkerEntry>,
    /// Last epoch handed out (or adopted) per assignment.
    epochs: HashMap<AssignmentKey, u64>,
    /// Epochs this process may issue: `next_epoch..=epochs_end`, reserved
    /// in the database. Empty (next > end) until a block is reserved.
    next_epoch: u64,
    epochs_end: u64,
    /// The highest epoch any server process reserved: a claim above it was
    /// never issued. None until read from the database; claims adopted
    /// before that are checked when it is known.
    epoch_ceiling: Option<u64>,
    /// The ceiling as read at start (what earlier processes reserved):
    /// above it, epochs are this process's own, and a claim must carry
    /// exactly the epoch issued for its assignment.
    inherited_ceiling: Option<u64>,
    /// Whether the running jobs have been read once: from then on a claim
    /// for a job that is not running is fenced, not adopted.
    jobs_loaded: bool,
    /// Running jobs as last read from the database.
    jobs: HashMap<Uuid, Arc<Job>>,
    /// Until then, assignments nobody holds are not handed out and nothing
    /// moves: workers of the previous server process may still run them
    /// (the assignment lease it left in the database). None until read.
    grace_until: Option<Instant>,
    /// When the assignment lease in the database was last pushed forward.
    lease_written: Option<Instant>,
    next_session: u64,
}

/// Handle to the registry; cheap to clone.
#[derive(Clone)]
pub struct WorkerRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    wake: Notify,
    config: RegistryConfig,
}

/// A connected worker's session, as the gRPC stream holds it.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub worker_id: String,
    id: u64,
}

fn parse_key(assignment: &AssignmentRef) -> Option<AssignmentKey> {
    Some(AssignmentKey {
        job_id: Uuid::parse_str(&assignment.job_id).ok()?,
        location: assignment.location.clone(),
    })
}

impl WorkerRegistry {
    pub fn new(config: RegistryConfig) -> Self {
        WorkerRegistry {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                config,
            }),
        }
    }

    pub fn config(&self) -> RegistryConfig {
        self.inner.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough data; keep serving.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the grace period and the epoch ceiling are known: on the
    /// first call that reaches the database, reads how long workers of the
    /// previous server process may still run their assignments (unclaimed
    /// ones wait that long) and the highest epoch ever reserved; claims
    /// adopted before then at a higher epoch are fenced now.
    async fn grace_known(&self, pool: &DbPool) -> bool {
        if self.lock().grace_until.is_some() {
            return true;
        }
        let read = async {
            let mut conn = pool.get().await?;
            let grace = assignment_lease::remaining(&mut conn).await?;
            let ceiling = assignment_lease::epochs_reserved(&mut conn).await?;
            Ok::<_, monitor_store::StoreError>((grace, ceiling))
        }
        .await;
        let Ok((grace, ceiling)) = read else { return false };
        if !grace.is_zero() {
            tracing::info!(
                grace_ms = grace.as_millis() as u64,
                "workers of the previous server process may still run jobs: unclaimed assignments wait"
            );
        }
        let mut state = self.lock();
        state.grace_until = Some(Instant::now() + grace);
        state.epoch_ceiling = Some(ceiling);
        state.inherited_ceiling = Some(ceiling);
        state.next_epoch = ceiling.saturating_add(1);
        state.epochs_end = ceiling;
        let State { workers, epochs, .. } = &mut *state;
        for (worker_id, w) in workers.iter_mut() {
            let invented: Vec<(AssignmentKey, u64)> = w
                .held
                .iter()
                .filter(|(_, h)| h.epoch > ceiling)
                .map(|(key, h)| (key.clone(), h.epoch))
                .collect();
            for (key, epoch) in invented {
                tracing::warn!(worker_id, job_id = %key.job_id, epoch, ceiling, "fencing a claim at an epoch no server issued");
                w.held.remove(&key);
                epochs.remove(&key);
                w.send(fence(&key, epoch, INVENTED_EPOCH));
            }
        }
        true
    }

    /// Makes sure epochs are available for `wanted` new assignments,
    /// reserving a block in the database when the current one runs low.
    /// False when none is left and none could be reserved.
    async fn keep_epochs(&self, pool: &DbPool, wanted: u64) -> bool {
        let left = {
            let state = self.lock();
            (state.epochs_end + 1).saturating_sub(state.next_epoch)
        };
        if left >= wanted.max(1) {
            return true;
        }
        let count = EPOCH_BLOCK.max(wanted.saturating_mul(2));
        let reserved = async {
            let mut conn = pool.get().await?;
            assignment_lease::reserve_epochs(&mut conn, count).await
        }
        .await;
        match reserved {
            Ok(end) => {
                let mut state = self.lock();
                // Another process may have reserved meanwhile: ours is the
                // block just below what the database returned, above every
                // epoch issued before (what is left of the old block is
                // dropped).
                state.next_epoch = end.saturating_sub(count).saturating_add(1);
                state.epochs_end = end;
                state.epoch_ceiling = Some(state.epoch_ceiling.unwrap_or(0).max(end));
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot reserve assignment epochs");
                left > 0
            }
        }
    }

    /// Asks the assignment loop to run now (after a job change).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Workers with an open stream.
    pub fn connected_count(&self) -> usize {
        self.lock().workers.values().filter(|w| w.session.is_some()).count()
    }

    /// Registers a worker's session from its hello. Returns the session and
    /// the stream of control messages to send it.
    pub fn open(
        &self,
        hello: WorkerHello,
    ) -> Result<
        (
            SessionHandle,
            mpsc::UnboundedReceiver<Result<ConnectResponse, tonic::Status>>,
        ),
        ApiError,
    > {
        validate_hello(&hello)?;
        let config = self.inner.config;
        let (outbox, inbox) = mpsc::unbounded_channel();
        let mut state = self.lock();
        state.next_session += 1;
        let session_id = state.next_session;
        let now = Instant::now();
        let now_at = Utc::now();
        let worker_id = hello.worker_id.clone();
        if !state.workers.contains_key(&worker_id) && state.workers.len() >= config.max_workers {
            return Err(ApiError::ResourceExhausted(format!(
                "the registry already knows {} workers (MONITOR_MAX_WORKERS); a new worker id is refused until one leaves",
                state.workers.len()
            )));
        }
        let State {
            workers,
            epochs,
            epoch_ceiling,
            inherited_ceiling,
            jobs,
            jobs_loaded,
            ..
        } = &mut *state;
        let (ceiling, inherited, jobs_loaded) = (*epoch_ceiling, *inherited_ceiling, *jobs_loaded);
        // Who else holds what, at which epoch (not counting revokes in flight).
        let held_elsewhere: HashMap<AssignmentKey, (String, u64)> = workers
            .iter()
            .filter(|(id, _)| **id != worker_id)
            .flat_map(|(id, w)| {
                w.held
                    .iter()
                    .filter(|(_, h)| !h.revoking)
                    .map(|(key, h)| (key.clone(), (id.clone(), h.epoch)))
            })
            .collect();
        let entry = workers.entry(worker_id.clone()).or_insert_with(|| WorkerEntry {
            labels: HashMap::new(),
            version: String::new(),
            capacity: 1,
            connect_time: now_at,
            last_heard: now,
            last_heard_at: now_at,
            session: None,
            draining: false,
            held: HashMap::new(),
        });
        if entry.session.is_some() {
            tracing::warn!(
                worker_id,
                "worker reconnected while its previous stream was open; replacing it"
            );
        }
        entry.labels = hello.labels.clone();
        entry.version = hello.version.clone();
        entry.capacity = hello.capacity.clamp(1, MAX_CAPACITY);
        entry.connect_time = now_at;
        entry.last_heard = now;
        entry.last_heard_at = now_at;
        entry.draining = false;
        entry.session = Some(Session { id: session_id, outbox });
        entry.send(connect_response::Kind::Welcome(Welcome {
            lease: Some(to_duration(config.lease)),
            heartbeat_interval: Some(to_duration(config.heartbeat_interval)),
            server_version: env!("CARGO_PKG_VERSION").into(),
        }));
        // Reconcile what the worker says it runs with what we think it runs.
        let claimed: HashMap<AssignmentKey, &AssignmentRef> =
            hello.held.iter().filter_map(|a| parse_key(a).map(|k| (k, a))).collect();
        let mut fenced = Vec::new();
        let mut displaced = Vec::new();
        let location = hello.labels.get(LOCATION_LABEL).map(String::as_str).unwrap_or("");
        for (key, claim) in &claimed {
            // Never issued: zero, above every reserved epoch, or in this
            // process's own blocks but above the epoch it issued for this
            // assignment (an older one is stale, below).
            let invented = claim.epoch == 0
                || ceiling.is_some_and(|ceiling| claim.epoch > ceiling)
                || inherited.is_some_and(|inherited| {
                    claim.epoch > inherited && epochs.get(key).is_none_or(|issued| claim.epoch > *issued)
                });
            if invented {
                fenced.push(((*key).clone(), INVENTED_EPOCH));
                continue;
            }
            if (jobs_loaded && !jobs.contains_key(&key.job_id))
                || (!key.location.is_empty() && key.location != location)
            {
                fenced.push(((*key).clone(), NOT_YOURS));
                continue;
            }
            let ours = entry.held.get(key).map(|h| h.epoch);
            let latest = epochs.get(key).copied().unwrap_or(0);
            // Unknown to us (e.g. this server restarted): adopt it if nobody
            // holds it at a newer epoch (a holder at an older one, adopted
            // first, is the stale one: it gets revoked); the assignment loop
            // re-checks placement.
            let other = held_elsewhere.get(key);
            match ours {
                Some(epoch) if epoch == claim.epoch => {}
                None if claim.epoch >= latest && other.is_none_or(|(_, epoch)| *epoch < claim.epoch) => {
                    if let Some((holder, epoch)) = other {
                        displaced.push((holder.clone(), key.clone(), *epoch));
                    }
                    entry.held.insert(
                        key.clone(),
                        Held {
                            epoch: claim.epoch,
                            job_version: 0,
                            revoking: false,
                            revoked_at: None,
                            report: None,
                        },
                    );
                    epochs.insert(key.clone(), claim.epoch);
                }
                _ => fenced.push(((*key).clone(), STALE_EPOCH)),
            }
        }
        // Assignments we thought it held but it no longer runs are gone.
        entry.held.retain(|key, _| claimed.contains_key(key));
        for (key, reason) in &fenced {
            tracing::info!(worker_id, job_id = %key.job_id, location = key.location, reason, "fencing a claimed assignment");
            entry.send(fence(key, claimed[key].epoch, reason));
        }
        // Confirm the ones it keeps (a paused worker resumes on Assign); the
        // version check in the loop resends the spec when it changed.
        for held in entry.held.values_mut() {
            held.job_version = 0;
        }
        tracing::info!(worker_id, capacity = entry.capacity, labels = ?entry.labels, held = entry.held.len(), "worker connected");
        for (holder, key, epoch) in displaced {
            if let Some(w) = workers.get_mut(&holder)
                && let Some(held) = w.held.get_mut(&key)
            {
                tracing::info!(worker_id = holder, job_id = %key.job_id, epoch, "revoking an assignment a newer epoch claims");
                held.revoking = true;
                held.revoked_at = Some(Instant::now());
                w.send(connect_response::Kind::Revoke(Revoke {
                    job_id: key.job_id.to_string(),
                    location: key.location.clone(),
                    epoch,
                    reason: "stale epoch: another worker holds a newer assignment".into(),
                }));
            }
        }
        drop(state);
        self.wake();
        Ok((
            SessionHandle {
                worker_id,
                id: session_id,
            },
            inbox,
        ))
    }

    /// Handles one message of an open session.
    pub fn handle(&self, session: &SessionHandle, message: ConnectRequest) {
        let mut state = self.lock();
        let Some(entry) = state.workers.get_mut(&session.worker_id) else {
            return;
        };
        if entry.session.as_ref().map(|s| s.id) != Some(session.id) {
            return; // a replaced session
        }
        entry.last_heard = Instant::now();
        entry.last_heard_at = Utc::now();
        let mut wake = false;
        match message.kind {
            Some(connect_request::Kind::Heartbeat(_)) | None => {}
            Some(connect_request::Kind::Hello(_)) => {
                tracing::warn!(worker_id = session.worker_id, "ignoring a second hello on one stream");
            }
            Some(connect_request::Kind::Reports(reports)) => {
                for report in reports.reports {
                    let Some(key) = report.assignment.as_ref().and_then(parse_key) else {
                        continue;
                    };
                    if let Some(held) = entry.held.get_mut(&key)
                        && report.assignment.as_ref().is_some_and(|a| a.epoch == held.epoch)
                    {
                        held.report = Some(report);
                    }
                }
            }
            Some(connect_request::Kind::Released(released)) => {
                for assignment in &released.assignments {
                    let Some(key) = parse_key(assignment) else { continue };
                    if entry.held.get(&key).is_some_and(|h| h.epoch == assignment.epoch) {
                        entry.held.remove(&key);
                        wake = true;
                    }
                }
            }
            Some(connect_request::Kind::Draining(_)) => {
                tracing::info!(worker_id = session.worker_id, "worker draining");
                entry.draining = true;
                wake = true;
            }
        }
        drop(state);
        if wake {
            self.wake();
        }
    }

    /// Ends every worker stream (server shutdown): workers reconnect, to this
    /// server when it is back or to another one, and keep their jobs running
    /// within their lease meanwhile.
    pub fn disconnect_all(&self) {
        let mut state = self.lock();
        for entry in state.workers.values_mut() {
            entry.session = None;
        }
    }

    /// The session's stream ended: the worker is lost until its lease expires.
    pub fn close(&self, session: &SessionHandle) {
        let mut state = self.lock();
        if let Some(entry) = state.workers.get_mut(&session.worker_id)
            && entry.session.as_ref().map(|s| s.id) == Some(session.id)
        {
            entry.session = None;
            if entry.draining && entry.held.is_empty() {
                state.workers.remove(&session.worker_id);
                tracing::info!(worker_id = session.worker_id, "worker left after draining");
            } else {
                tracing::warn!(
                    worker_id = session.worker_id,
                    "worker stream closed; its jobs wait for its lease"
                );
            }
        }
        drop(state);
        self.wake();
    }

    /// Replaces the running-job cache from the database, reading only jobs
    /// that are new or changed.
    async fn refresh_jobs(&self, pool: &DbPool) -> Result<(), monitor_store::StoreError> {
        let mut conn = pool.get().await?;
        let versions = job::running_versions(&mut conn).await?;
        let stale: Vec<Uuid> = {
            let state = self.lock();
            versions
                .iter()
                .filter(|(id, version)| state.jobs.get(id).is_none_or(|j| j.version != *version))
                .map(|(id, _)| *id)
                .collect()
        };
        let fresh = if stale.is_empty() {
            Vec::new()
        } else {
            job::get_many(&mut conn, &stale).await?
        };
        let running: HashSet<Uuid> = versions.iter().map(|(id, _)| *id).collect();
        let mut state = self.lock();
        state.jobs_loaded = true;
        state.jobs.retain(|id, _| running.contains(id));
        for row in fresh {
            let id = row.id;
            match job_from_row(row) {
                Ok(job) => {
                    state.jobs.insert(id, Arc::new(job));
                }
                Err(err) => tracing::error!(job_id = %id, error = %err, "cannot schedule an unreadable job"),
            }
        }
        Ok(())
    }

    /// How long workers may run assignments after the last word from this
    /// process: their lease, this side's silence limit, and a margin for the
    /// rewrite period.
    pub fn assignment_lease(&self) -> Duration {
        let config = self.inner.config;
        config.lease + config.heartbeat_interval + LEASE_MARGIN
    }

    /// Pushes the assignment lease in the database forward (at most every
    /// [`LEASE_REWRITE`]) while there is anything to protect. False when it
    /// could not be written: then nothing new may be handed out.
    /// When every worker has left (drained, or lost past its lease), the
    /// lease is released instead, so the next server process does not wait;
    /// never during the grace period, whose protection is owed to the
    /// previous process's workers.
    async fn keep_lease(&self, pool: &DbPool) -> bool {
        let (due, release) = {
            let state = self.lock();
            let in_grace = state.grace_until.is_none_or(|until| Instant::now() < until);
            if state.workers.is_empty() {
                (false, state.lease_written.is_some() && !in_grace)
            } else {
                let protecting = !state.jobs.is_empty() || state.workers.values().any(|w| !w.held.is_empty());
                let stale = state.lease_written.is_none_or(|at| at.elapsed() >= LEASE_REWRITE);
                (protecting && stale, false)
            }
        };
        if release {
            let released = async {
                let mut conn = pool.get().await?;
                assignment_lease::release(&mut conn).await
            }
            .await;
            if released.is_ok() {
                self.lock().lease_written = None;
            }
            // Nobody to assign to anyway; a worker that arrived meanwhile
            // waits for the next pass, which writes the lease first.
            return false;
        }
        if !due {
            return true;
        }
        // The database stamps the lease at some moment after this one.
        let started = Instant::now();
        let written = async {
            let mut conn = pool.get().await?;
            assignment_lease::extend(&mut conn, self.assignment_lease()).await
        }
        .await;
        match written {
            Ok(()) => {
                self.lock().lease_written = Some(started);
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot record the assignment lease; handing out nothing new");
                false
            }
        }
    }

    /// One assignment pass; hands out new assignments only when
    /// `may_assign`. Returns how many messages it sent.
    pub fn reconcile(&self, may_assign: bool) -> usize {
        let config = self.inner.config;
        let silence_limit = config.lease + config.heartbeat_interval;
        let mut state = self.lock();
        let now = Instant::now();
        let in_grace = !may_assign || state.grace_until.is_some_and(|until| now < until);
        let State {
            workers,
            epochs,
            jobs,
            next_epoch,
            epochs_end,
            ..
        } = &mut *state;

        // A holder that ignored a Revoke for a whole lease loses it anyway.
        for (id, w) in workers.iter_mut() {
            w.held.retain(|key, held| {
                let overdue = held.revoked_at.is_some_and(|at| now.duration_since(at) > silence_limit);
                if overdue {
                    tracing::warn!(worker_id = id, job_id = %key.job_id, epoch = held.epoch, "worker ignored a revoke for its lease; taking the assignment back");
                }
                !overdue
            });
        }

        // A stream that looks open but has carried nothing (workers
        // heartbeat every interval) for as long is as good as closed: a
        // frozen peer or a connection that stopped carrying packets.
        for (id, w) in workers.iter_mut() {
            if w.session.is_some() && now.duration_since(w.last_heard) > silence_limit {
                tracing::warn!(
                    worker_id = id,
                    "nothing heard on the worker's open stream; treating it as lost"
                );
                w.session = None;
            }
        }
        // Lost workers whose lease expired give up everything they held.
        workers.retain(|id, w| {
            let expired = w.session.is_none() && now.duration_since(w.last_heard) > silence_limit;
            if expired {
                tracing::warn!(
                    worker_id = id,
                    jobs = w.held.len(),
                    "worker lease expired; moving its jobs"
                );
            }
            !expired
        });

        let mut desired: HashMap<AssignmentKey, Arc<Job>> = HashMap::new();
        for (id, job) in jobs.iter() {
            if job.locations.is_empty() {
                desired.insert(
                    AssignmentKey {
                        job_id: *id,
                        location: String::new(),
                    },
                    job.clone(),
                );
            } else {
                for location in &job.locations {
                    desired.insert(
                        AssignmentKey {
                            job_id: *id,
                            location: location.clone(),
                        },
                        job.clone(),
                    );
                }
            }
        }
        // Where each assignment should run, by rendezvous over eligible workers.
        let target = |workers: &HashMap<String, WorkerEntry>, key: &AssignmentKey| -> Option<String> {
            let hash_key = key.hash_key();
            placement::choose(
                &hash_key,
                workers
                    .iter()
                    .filter(|(_, w)| w.eligible_for(&key.location))
                    .map(|(id, w)| (id.as_str(), w.capacity)),
            )
            .map(str::to_owned)
        };
        let targets: HashMap<AssignmentKey, String> = desired
            .keys()
            .filter_map(|key| target(workers, key).map(|t| (key.clone(), t)))
            .collect();

        let mut sent = 0;
        // Revoke what should not run where it runs; refresh changed specs.
        for (worker_id, w) in workers.iter_mut() {
            if w.session.is_none() {
                continue;
            }
            let mut messages = Vec::new();
            for (key, held) in w.held.iter_mut() {
                if held.revoking {
                    continue;
                }
                let job = desired.get(key);
                // In the grace period nothing moves: a revoked assignment
                // could not be handed out again until it ends.
                let stays = job.is_some() && (in_grace || targets.get(key) == Some(worker_id));
                match job {
                    // In the grace period a claimed assignment is not
                    // (re)confirmed: a worker that paused it stays paused
                    // until no other worker can be running it.
                    Some(job) if stays => {
                        if held.job_version != job.version && !in_grace {
                            held.job_version = job.version;
                            messages.push(connect_response::Kind::Assign(Assign {
                                job: Some((**job).clone()),
                                location: key.location.clone(),
                                epoch: held.epoch,
                            }));
                        }
                    }
                    _ => {
                        held.revoking = true;
                        held.revoked_at = Some(now);
                        let reason = if job.is_none() {
                            "job stopped or deleted"
                        } else {
                            "rebalanced to another worker"
                        };
                        messages.push(connect_response::Kind::Revoke(Revoke {
                            job_id: key.job_id.to_string(),
                            location: key.location.clone(),
                            epoch: held.epoch,
                            reason: reason.into(),
                        }));
                    }
                }
            }
            sent += messages.len();
            for message in messages {
                w.send(message);
            }
        }

        // Assign what nobody holds (a revoking or lost holder still holds),
        // once the previous server process's workers can no longer run it.
        let held: HashSet<AssignmentKey> = workers.values().flat_map(|w| w.held.keys().cloned()).collect();
        for (key, job) in &desired {
            if held.contains(key) || in_grace {
                continue;
            }
            let Some(worker_id) = targets.get(key) else { continue };
            let Some(w) = workers.get_mut(worker_id) else { continue };
            // Epochs come only from the reserved block; when it is used up
            // the rest waits for the next pass (which reserves more).
            if *next_epoch > *epochs_end {
                tracing::debug!("no reserved epochs left; assigning the rest on the next pass");
                break;
            }
            let epoch = *next_epoch;
            *next_epoch = next_epoch.saturating_add(1);
            epochs.insert(key.clone(), epoch);
            w.held.insert(
                key.clone(),
                Held {
                    epoch,
                    job_version: job.version,
                    revoking: false,
                    revoked_at: None,
                    report: None,
                },
            );
            w.send(connect_response::Kind::Assign(Assign {
                job: Some((**job).clone()),
                location: key.location.clone(),
                epoch,
            }));
            sent += 1;
        }
        // Forget epochs of assignments that no longer exist and nobody holds.
        if epochs.len() > desired.len() + held.len() {
            epochs.retain(|key, _| desired.contains_key(key) || held.contains(key));
        }
        sent
    }

    /// How many assignments the running jobs make (an upper bound of the
    /// epochs the next pass may issue).
    fn assignments_wanted(&self) -> u64 {
        let state = self.lock();
        state.jobs.values().map(|job| job.locations.len().max(1) as u64).sum()
    }

    /// Sends every connected worker a heartbeat.
    fn heartbeat(&self) {
        let state = self.lock();
        for w in state.workers.values() {
            w.send(connect_response::Kind::Heartbeat(ServerHeartbeat {}));
        }
    }

    /// Runs the assignment loop and the heartbeats until the task is aborted.
    pub async fn run(self, pool: DbPool) {
        let config = self.inner.config;
        let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A timer of its own (not a sleep made anew each turn), so frequent
        // heartbeats cannot keep putting the pass off.
        let mut pass = tokio::time::interval(config.reconcile_interval);
        pass.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut db_ok = true;
        loop {
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = pass.tick() => {}
                _ = heartbeat.tick() => { self.heartbeat(); continue; }
            }
            match self.refresh_jobs(&pool).await {
                Ok(()) => {
                    if !db_ok {
                        tracing::info!("assignment loop reads the database again");
                    }
                    db_ok = true;
                }
                Err(err) => {
                    // Keep the last known jobs; workers keep running them.
                    if db_ok {
                        tracing::warn!(error = %err, "assignment loop cannot read jobs; keeping the last known set");
                    }
                    db_ok = false;
                }
            }
            // Nothing is handed out before the previous process's lease is
            // known (retried while the database is down).
            let wanted = self.assignments_wanted();
            let may_assign =
                self.grace_known(&pool).await && self.keep_lease(&pool).await && self.keep_epochs(&pool, wanted).await;
            self.reconcile(may_assign);
        }
    }

    /// The workers, for ListWorkers.
    pub fn list(&self) -> Vec<Worker> {
        let state = self.lock();
        let mut workers: Vec<Worker> = state
            .workers
            .iter()
            .map(|(id, w)| Worker {
                id: id.clone(),
                labels: w.labels.clone(),
                version: w.version.clone(),
                capacity: w.capacity,
                state: w.state() as i32,
                connect_time: Some(w.connect_time.into()),
                last_heartbeat_time: Some(w.last_heard_at.into()),
                assigned_jobs: w.held.len() as i64,
            })
            .collect();
        workers.sort_by(|a, b| a.id.cmp(&b.id));
        workers
    }

    /// Where a job runs and its latest reported outcome per location.
    pub fn placements(&self, job_id: Uuid, locations: &[String]) -> Vec<JobPlacement> {
        let state = self.lock();
        let wanted: Vec<String> = if locations.is_empty() {
            vec![String::new()]
        } else {
            locations.to_vec()
        };
        wanted
            .into_iter()
            .map(|location| {
                let key = AssignmentKey {
                    job_id,
                    location: location.clone(),
                };
                // The newest epoch: a revoked holder may not have let go yet.
                let holder = state
                    .workers
                    .iter()
                    .filter_map(|(id, w)| w.held.get(&key).map(|h| (id, h)))
                    .max_by_key(|(_, h)| h.epoch);
                let mut placement = JobPlacement {
                    location,
                    ..Default::default()
                };
                if let Some((worker_id, held)) = holder {
                    placement.worker_id = worker_id.clone();
                    placement.epoch = held.epoch;
                    if let Some(report) = &held.report {
                        placement.last_check_time = report.last_check_time;
                        placement.last_outcome = report.last_outcome;
                        placement.checks = report.checks;
                        placement.failures = report.failures;
                    }
                }
                placement
            })
            .collect()
    }
}

/// Revoke reasons of a claim the server does not accept.
const STALE_EPOCH: &str = "stale epoch: the assignment moved to another worker";
const INVENTED_EPOCH: &str = "unknown epoch: no server issued it";
const NOT_YOURS: &str = "the job is not running here, or not in this worker's location";

/// The Revoke that fences a claimed assignment.
fn fence(key: &AssignmentKey, epoch: u64, reason: &str) -> connect_response::Kind {
    connect_response::Kind::Revoke(Revoke {
        job_id: key.job_id.to_string(),
        location: key.location.clone(),
        epoch,
        reason: reason.into(),
    })
}

fn to_duration(duration: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: duration.as_secs() as i64,
        nanos: duration.subsec_nanos() as i32,
    }
}

/// Checks a hello before anything is registered: every field bounded, so
/// a stranger with a worker token cannot grow the registry without limit.
fn validate_hello(hello: &WorkerHello) -> Result<(), ApiError> {
    use crate::error::FieldViolation;
    let mut violations = Vec::new();
    if hello.worker_id.is_empty()
        || hello.worker_id.chars().count() > 128
        || hello.worker_id.chars().any(char::is_control)
    {
        violations.push(FieldViolation::new(
            "hello.worker_id",
            "must be 1 to 128 printable characters",
        ));
    }
    if hello.capacity > MAX_CAPACITY {
        violations.push(FieldViolation::new(
            "hello.capacity",
            format!("must be at most {MAX_CAPACITY} (0 means 1)"),
        ));
    }
    if hello.version.chars().count() > MAX_VERSION_CHARS || hello.version.chars().any(char::is_control) {
        violations.push(FieldViolation::new(
            "hello.version",
            format!("must be at most {MAX_VERSION_CHARS} printable characters"),
        ));
    }
    if hello.labels.len() > MAX_LABELS {
        violations.push(FieldViolation::new(
            "hello.labels",
            format!("at most {MAX_LABELS} labels (got {})", hello.labels.len()),
        ));
    } else {
        for (key, value) in &hello.labels {
            if !is_label_key(key) {
                violations.push(FieldViolation::new(
                    format!("hello.labels[{key:?}]"),
                    "is not a valid label key",
                ));
            }
            if value.chars().count() > MAX_LABEL_VALUE_CHARS || value.chars().any(char::is_control) {
                violations.push(FieldViolation::new(
                    format!("hello.labels[{key:?}]"),
                    format!("value must be at most {MAX_LABEL_VALUE_CHARS} printable characters"),
                ));
            }
        }
    }
    if hello.held.len() > MAX_HELD {
        violations.push(FieldViolation::new(
            "hello.held",
            format!("at most {MAX_HELD} assignments (got {})", hello.held.len()),
        ));
    } else {
        for (i, held) in hello.held.iter().enumerate() {
            if parse_key(held).is_none() {
                violations.push(FieldViolation::new(
                    format!("hello.held[{i}].job_id"),
                    "is not a job id",
                ));
            }
            if held.location.chars().count() > MAX_LABEL_VALUE_CHARS {
                violations.push(FieldViolation::new(
                    format!("hello.held[{i}].location"),
                    format!("must be at most {MAX_LABEL_VALUE_CHARS} characters"),
                ));
            }
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(worker_id: &str, job_id: Uuid, epoch: u64) -> WorkerHello {
        WorkerHello {
            worker_id: worker_id.into(),
            version: "test".into(),
            capacity: 1,
            labels: HashMap::new(),
            held: vec![AssignmentRef {
                job_id: job_id.to_string(),
                location: String::new(),
                epoch,
                job_version: 1,
            }],
        }
    }

    /// The Revokes waiting in a session's stream.
    fn revokes(inbox: &mut mpsc::UnboundedReceiver<Result<ConnectResponse, tonic::Status>>) -> Vec<Revoke> {
        let mut found = Vec::new();
        while let Ok(Ok(message)) = inbox.try_recv() {
            if let Some(connect_response::Kind::Revoke(revoke)) = message.kind {
                found.push(revoke);
            }
        }
        found
    }

    #[test]
    fn a_silent_open_stream_is_lost_and_its_jobs_move() {
        let registry = WorkerRegistry::new(RegistryConfig::default());
        let job = Uuid::now_v7();
        let (_a, mut a_inbox) = registry.open(hello("worker-a", job, 1)).unwrap();
        let (_b, _b_inbox) = registry.open(hello("worker-b", Uuid::now_v7(), 1)).unwrap();
        let limit = registry.config().lease + registry.config().heartbeat_interval;
        // worker-b heartbeats; worker-a has said nothing for a moment: kept.
        registry.lock().workers.get_mut("worker-a").unwrap().last_heard = Instant::now() - limit / 2;
        registry.reconcile(true);
        let states: Vec<_> = registry.list().iter().map(|w| (w.id.clone(), w.state)).collect();
        assert_eq!(
            states,
            [
                ("worker-a".to_owned(), WorkerState::Connected as i32),
                ("worker-b".to_owned(), WorkerState::Connected as i32)
            ]
        );
        // Silent for longer than lease + heartbeat: its stream is dropped and,
        // its lease being over, what it held is free.
        registry.lock().workers.get_mut("worker-a").unwrap().last_heard = Instant::now() - limit - limit / 10;
        registry.reconcile(true);
        let listed: Vec<_> = registry.list().iter().map(|w| w.id.clone()).collect();
        assert_eq!(listed, ["worker-b"]);
        while let Ok(Ok(_)) = a_inbox.try_recv() {}
        assert_eq!(
            a_inbox.try_recv().unwrap_err(),
            mpsc::error::TryRecvError::Disconnected,
            "the silent stream is ended"
        );
        let placements = registry.placements(job, &[]);
        assert!(placements[0].worker_id.is_empty(), "{placements:?}");
    }

    #[test]
    fn a_holder_that_ignores_a_revoke_loses_the_assignment_at_its_lease() {
        let registry = WorkerRegistry::new(RegistryConfig::default());
        let job = Uuid::now_v7();
        {
            let mut state = registry.lock();
            state.grace_until = Some(Instant::now());
            state.epoch_ceiling = Some(100);
            (state.next_epoch, state.epochs_end) = (1, 100);
        }
        let mut fresh = hello("worker-a", job, 1);
        fresh.held.clear();
        let (_a, mut a_inbox) = registry.open(fresh).unwrap();
        let running = Arc::new(Job {
            id: job.to_string(),
            version: 1,
            ..Default::default()
        });
        registry.lock().jobs.insert(job, running.clone());
        registry.reconcile(true);
        assert_eq!(registry.placements(job, &[])[0].epoch, 1, "assigned to worker-a");
        // Stopped: worker-a is asked to give it back and never answers.
        registry.lock().jobs.clear();
        registry.reconcile(true);
        assert_eq!(revokes(&mut a_inbox).len(), 1);
        // Started again: while the revoke is pending nobody else gets it.
        registry.lock().jobs.insert(job, running);
        registry.reconcile(true);
        assert_eq!(registry.placements(job, &[])[0].epoch, 1, "still held, revoking");
        // A whole lease later (worker-a still heartbeating) it is taken back
        // and handed out again at a new epoch.
        let limit = registry.config().lease + registry.config().heartbeat_interval;
        {
            let mut state = registry.lock();
            let a = state.workers.get_mut("worker-a").unwrap();
            a.last_heard = Instant::now();
            a.held
                .get_mut(&AssignmentKey {
                    job_id: job,
                    location: String::new(),
                })
                .unwrap()
                .revoked_at = Some(Instant::now() - limit - limit / 10);
        }
        registry.reconcile(true);
        assert_eq!(registry.placements(job, &[])[0].epoch, 2);
    }

    #[test]
    fn a_claim_inside_the_own_block_must_be_the_issued_epoch() {
        let registry = WorkerRegistry::new(RegistryConfig::default());
        let job = Uuid::now_v7();
        {
            let mut state = registry.lock();
            state.grace_until = Some(Instant::now());
            (state.epoch_ceiling, state.inherited_ceiling) = (Some(100), Some(0));
            (state.next_epoch, state.epochs_end) = (1, 100);
            state.jobs_loaded = true;
            state.jobs.insert(
                job,
                Arc::new(Job {
                    id: job.to_string(),
                    version: 1,
                    locations: vec!["eu".into()],
                    ..Default::default()
                }),
            );
        }
        let in_eu = |id: &str, epoch: u64| {
            let mut hello = hello(id, job, epoch);
            hello.held[0].location = "eu".into();
            hello.labels.insert(LOCATION_LABEL.into(), "eu".into());
            hello
        };
        let mut a = in_eu("worker-a", 1);
        a.held.clear();
        let (_a, _a_inbox) = registry.open(a).unwrap();
        registry.reconcile(true);
        assert_eq!(registry.placements(job, &["eu".into()])[0].epoch, 1);
        // worker-b claims it at an epoch of the block nobody was given.
        let (_b, mut b_inbox) = registry.open(in_eu("worker-b", 50)).unwrap();
        let fenced = revokes(&mut b_inbox);
        assert!(
            fenced.len() == 1 && fenced[0].reason.contains("unknown epoch"),
            "{fenced:?}"
        );
        assert_eq!(registry.placements(job, &["eu".into()])[0].worker_id, "worker-a");
        // Elsewhere, or for a job that is not running: fenced too.
        let mut elsewhere = in_eu("worker-c", 1);
        elsewhere.labels.insert(LOCATION_LABEL.into(), "us".into());
        let (_c, mut c_inbox) = registry.open(elsewhere).unwrap();
        assert_eq!(revokes(&mut c_inbox).len(), 1);
        let mut other_job = in_eu("worker-d", 1);
        other_job.held[0].job_id = Uuid::now_v7().to_string();
        let (_d, mut d_inbox) = registry.open(other_job).unwrap();
        assert_eq!(revokes(&mut d_inbox).len(), 1);
        assert_eq!(registry.placements(job, &["eu".into()])[0].worker_id, "worker-a");
    }

    #[test]
    fn claims_above_the_reserved_epochs_are_fenced() {
        let registry = WorkerRegistry::new(RegistryConfig::default());
        registry.lock().epoch_ceiling = Some(10);
        let job = Uuid::now_v7();
        let (_a, mut a_inbox) = registry.open(hello("worker-a", job, 11)).unwrap();
        let fenced = revokes(&mut a_inbox);
        assert_eq!(fenced.len(), 1, "{fenced:?}");
        assert!(fenced[0].reason.contains("unknown epoch"), "{fenced:?}");
        let (_b, mut b_inbox) = registry.open(hello("worker-b", job, 10)).unwrap();
        assert!(revokes(&mut b_inbox).is_empty(), "an issued epoch is adopted");
        assert_eq!(registry.placements(job, &[])[0].worker_id, "worker-b");
    }

    #[test]
    fn after_a_restart_the_newest_epoch_claim_wins() {
        let registry = WorkerRegistry::new(RegistryConfig::default());
        let job = Uuid::now_v7();
        // A stale holder (paused, epoch 1) reaches the new process first.
        let (_a, mut a_inbox) = registry.open(hello("worker-a", job, 1)).unwrap();
        assert!(revokes(&mut a_inbox).is_empty(), "adopted");
        // The worker that really runs it (epoch 2) comes next: it keeps it,
        // and the stale holder is told to stop.
        let (_b, mut b_inbox) = registry.open(hello("worker-b", job, 2)).unwrap();
        assert!(revokes(&mut b_inbox).is_empty(), "the newer claim is adopted");
        let revoked = revokes(&mut a_inbox);
        assert_eq!(revoked.len(), 1, "{revoked:?}");
        assert_eq!(
            (revoked[0].job_id.as_str(), revoked[0].epoch),
            (job.to_string().as_str(), 1)
        );
        // A claim older than the one held is fenced, not adopted.
        let (_c, mut c_inbox) = registry.open(hello("worker-c", job, 1)).unwrap();
        let fenced = revokes(&mut c_inbox);
        assert_eq!(fenced.len(), 1, "{fenced:?}");
        assert!(fenced[0].reason.contains("stale epoch"), "{fenced:?}");
        let placements = registry.placements(job, &[]);
        assert_eq!(placements[0].worker_id, "worker-b");
        assert_eq!(placements[0].epoch, 2);
    }
}
