//! A worker's hello, as plain decisions over the registry's state: its
//! bounds ([`validate_hello`]), then its admission ([`admit`]): what it
//! claims to run is checked against the epochs the servers issued and
//! adopted, fenced, or taken over from a stale holder.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use monitor_proto::v1::{AssignmentRef, Revoke, Welcome, WorkerHello, connect_response};

use super::{
    AssignmentKey, LOCATION_LABEL, MAX_HELD, RegistryConfig, parse_key,
    state::{ControlMessage, Held, Outgoing, State, WorkerEntry},
};
use crate::{
    error::{ApiError, FieldViolation},
    jobs::validate::is_label_key,
};

/// Bounds of a worker's hello.
const MAX_LABELS: usize = 32;
const MAX_LABEL_VALUE_CHARS: usize = 256;
const MAX_VERSION_CHARS: usize = 64;
/// Largest capacity a worker may announce.
const MAX_CAPACITY: u32 = 10_000;

/// Revoke reasons of a claim the server does not accept.
pub(super) const STALE_EPOCH: &str = "stale epoch: the assignment moved to another worker";
pub(super) const INVENTED_EPOCH: &str = "unknown epoch: no server issued it";
pub(super) const NOT_YOURS: &str = "the job is not running here, or not in this worker's location";

/// The Revoke that fences a claimed assignment.
pub(super) fn fence(key: &AssignmentKey, epoch: u64, reason: &str) -> ControlMessage {
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

/// Registers the worker of a (validated) hello under a new session at
/// `now` and checks what it claims to run. Returns the session's id and the
/// messages to send: the Welcome and its fenced claims to the worker, and a
/// Revoke to each holder its newer claims displace.
pub(super) fn admit(
    state: &mut State,
    hello: &WorkerHello,
    config: &RegistryConfig,
    now: Instant,
    now_at: DateTime<Utc>,
) -> Result<(u64, Vec<Outgoing>), ApiError> {
    state.next_session += 1;
    let session_id = state.next_session;
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
    } = state;
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
    let entry = workers
        .entry(worker_id.clone())
        .or_insert_with(|| WorkerEntry::new(now, now_at));
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
    entry.session = Some(session_id);
    let mut sent = vec![(
        worker_id.clone(),
        connect_response::Kind::Welcome(Welcome {
            lease: Some(to_duration(config.lease)),
            heartbeat_interval: Some(to_duration(config.heartbeat_interval)),
            server_version: env!("CARGO_PKG_VERSION").into(),
        }),
    )];
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
        if (jobs_loaded && !jobs.contains_key(&key.job_id)) || (!key.location.is_empty() && key.location != location) {
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
                entry.held.insert(key.clone(), Held::new(claim.epoch, 0));
                epochs.insert(key.clone(), claim.epoch);
            }
            _ => fenced.push(((*key).clone(), STALE_EPOCH)),
        }
    }
    // Assignments we thought it held but it no longer runs are gone.
    entry.held.retain(|key, _| claimed.contains_key(key));
    for (key, reason) in &fenced {
        tracing::info!(worker_id, job_id = %key.job_id, location = key.location, reason, "fencing a claimed assignment");
        sent.push((worker_id.clone(), fence(key, claimed[key].epoch, reason)));
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
            held.revoked_at = Some(now);
            sent.push((
                holder,
                connect_response::Kind::Revoke(Revoke {
                    job_id: key.job_id.to_string(),
                    location: key.location.clone(),
                    epoch,
                    reason: "stale epoch: another worker holds a newer assignment".into(),
                }),
            ));
        }
    }
    Ok((session_id, sent))
}

/// Checks a hello before anything is registered: every field bounded, so
/// a stranger with a worker token cannot grow the registry without limit.
pub(super) fn validate_hello(hello: &WorkerHello) -> Result<(), ApiError> {
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
