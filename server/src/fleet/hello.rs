//! A worker's hello, as plain decisions over the registry's state: its
//! bounds ([`validate_hello`]), then its admission ([`admit`]): what it
//! claims to run is checked against the epochs the servers issued and
//! adopted, fenced, or taken over from a stale holder.

use std::{collections::HashMap, time::Instant};

use chrono::{DateTime, Utc};
use monitor_core::labels::{MAX_LABEL_VALUE_CHARS, MAX_WORKER_LABELS, is_label_key, is_label_value};
use monitor_proto::v1::{AssignmentRef, Revoke, Welcome, WorkerHello, connect_response};

use super::{
    AssignmentKey, LOCATION_LABEL, MAX_HELD, RegistryConfig, parse_key,
    state::{ControlMessage, Held, Outgoing, State, WorkerEntry},
};
use crate::error::{ApiError, FieldViolation};

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
            lease: Some(config.lease.into()),
            heartbeat_interval: Some(config.heartbeat_interval.into()),
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
    if hello.labels.len() > MAX_WORKER_LABELS {
        violations.push(FieldViolation::new(
            "hello.labels",
            format!("at most {MAX_WORKER_LABELS} labels (got {})", hello.labels.len()),
        ));
    } else {
        for (key, value) in &hello.labels {
            if !is_label_key(key) {
                violations.push(FieldViolation::new(
                    format!("hello.labels[{key:?}]"),
                    "is not a valid label key",
                ));
            }
            if !is_label_value(value) {
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
    use std::sync::Arc;

    use uuid::Uuid;

    use super::*;
    use crate::fleet::state::fixtures::{job, key, worker};

    const AT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

    /// A hello of `worker_id` in `location` claiming `(job, location, epoch)`s.
    fn hello(worker_id: &str, location: Option<&str>, claims: &[(u128, &str, u64)]) -> WorkerHello {
        WorkerHello {
            worker_id: worker_id.into(),
            version: "test".into(),
            capacity: 0,
            labels: location
                .map(|l| HashMap::from([(LOCATION_LABEL.to_owned(), l.to_owned())]))
                .unwrap_or_default(),
            held: claims
                .iter()
                .map(|(id, location, epoch)| AssignmentRef {
                    job_id: Uuid::from_u128(*id).to_string(),
                    location: (*location).into(),
                    epoch: *epoch,
                    job_version: 1,
                })
                .collect(),
        }
    }

    fn welcome() -> Outgoing {
        (
            "a".to_owned(),
            connect_response::Kind::Welcome(Welcome {
                lease: Some(pbjson_types::Duration { seconds: 15, nanos: 0 }),
                heartbeat_interval: Some(pbjson_types::Duration { seconds: 3, nanos: 0 }),
                server_version: env!("CARGO_PKG_VERSION").into(),
            }),
        )
    }

    /// Epochs up to `ceiling` reserved, those above `inherited` by this
    /// process; `jobs` running (and read).
    fn state(inherited: u64, ceiling: u64, jobs: &[Arc<monitor_proto::v1::Job>]) -> State {
        State {
            epoch_ceiling: Some(ceiling),
            inherited_ceiling: Some(inherited),
            jobs_loaded: true,
            jobs: jobs
                .iter()
                .map(|job| (Uuid::parse_str(&job.id).unwrap(), job.clone()))
                .collect(),
            ..State::default()
        }
    }

    /// Job 1 running, and held by worker "b" at `epoch`, the latest issued.
    fn held_by_b(now: Instant, epoch: u64) -> State {
        let mut state = state(100, 100, &[job(1, 1, &[])]);
        state.workers.insert(
            "b".into(),
            worker(now, 1, None).holding(key(1, ""), Held::new(epoch, 1)),
        );
        state.epochs.insert(key(1, ""), epoch);
        state
    }

    fn admitted(state: &mut State, hello: &WorkerHello, now: Instant) -> Vec<Outgoing> {
        admit(state, hello, &RegistryConfig::default(), now, AT).unwrap().1
    }

    /// The fences sent to "a" after its Welcome, in a fixed order.
    fn fences_after_welcome(mut sent: Vec<Outgoing>) -> Vec<Outgoing> {
        assert_eq!(sent.first(), Some(&welcome()));
        sent.remove(0);
        sent.sort_by_key(|(_, message)| format!("{message:?}"));
        sent
    }

    fn fenced(id: u128, location: &str, epoch: u64, reason: &str) -> Outgoing {
        ("a".to_owned(), fence(&key(id, location), epoch, reason))
    }

    #[test]
    fn a_first_hello_is_welcomed_and_registered_connected() {
        let now = Instant::now();
        let mut state = State::default();

        let (session, sent) = admit(
            &mut state,
            &hello("a", Some("eu"), &[]),
            &RegistryConfig::default(),
            now,
            AT,
        )
        .unwrap();

        assert_eq!((session, sent), (1, vec![welcome()]));
        let a = &state.workers["a"];
        assert_eq!(
            (a.session, a.capacity, a.last_heard),
            (Some(1), 1, now),
            "capacity 0 means 1"
        );
        assert_eq!(a.labels[LOCATION_LABEL], "eu");
    }

    #[test]
    fn claims_at_epochs_no_server_issued_are_fenced() {
        let now = Instant::now();
        let jobs: Vec<_> = (1..=4).map(|id| job(id, 1, &[])).collect();
        let mut state = state(50, 100, &jobs);
        state.epochs.insert(key(1, ""), 60);
        // Zero; above every reserved epoch; in this process's block above
        // the one issued for it; in the block, for one it never issued.
        let claims = [(1, "", 61), (2, "", 0), (3, "", 101), (4, "", 55)];

        let sent = admitted(&mut state, &hello("a", None, &claims), now);

        assert_eq!(
            fences_after_welcome(sent),
            [
                fenced(1, "", 61, INVENTED_EPOCH),
                fenced(2, "", 0, INVENTED_EPOCH),
                fenced(3, "", 101, INVENTED_EPOCH),
                fenced(4, "", 55, INVENTED_EPOCH),
            ]
        );
        assert!(state.workers["a"].held.is_empty());
        assert_eq!(state.epochs, HashMap::from([(key(1, ""), 60)]));
    }

    #[test]
    fn an_issued_epoch_is_adopted_unconfirmed() {
        let now = Instant::now();
        let mut state = state(50, 100, &[job(1, 1, &[]), job(2, 1, &[])]);
        state.epochs.insert(key(1, ""), 60);

        // 60 was issued by this process, 7 by an earlier one.
        let sent = admitted(&mut state, &hello("a", None, &[(1, "", 60), (2, "", 7)]), now);

        assert_eq!(sent, [welcome()]);
        let held = &state.workers["a"].held;
        assert_eq!(
            (held[&key(1, "")].clone(), held[&key(2, "")].clone()),
            (Held::new(60, 0), Held::new(7, 0))
        );
        assert_eq!(state.epochs[&key(2, "")], 7);
    }

    #[test]
    fn claims_for_jobs_not_running_or_in_another_location_are_fenced() {
        let now = Instant::now();
        let mut state = state(100, 100, &[job(1, 1, &["eu", "us"])]);

        let claims = [(9, "", 1), (1, "us", 1), (1, "eu", 2)];
        let sent = admitted(&mut state, &hello("a", Some("eu"), &claims), now);

        assert_eq!(
            fences_after_welcome(sent),
            [fenced(1, "us", 1, NOT_YOURS), fenced(9, "", 1, NOT_YOURS)]
        );
        assert_eq!(state.workers["a"].held.keys().collect::<Vec<_>>(), [&key(1, "eu")]);
    }

    #[test]
    fn before_the_jobs_are_read_a_claim_for_any_job_is_adopted() {
        let now = Instant::now();
        let mut state = state(100, 100, &[]);
        state.jobs_loaded = false;

        let sent = admitted(&mut state, &hello("a", None, &[(9, "", 1)]), now);

        assert_eq!(sent, [welcome()]);
        assert!(state.workers["a"].held.contains_key(&key(9, "")));
    }

    #[test]
    fn a_claim_older_than_the_latest_epoch_is_stale() {
        let now = Instant::now();
        let mut state = held_by_b(now, 5);

        let sent = admitted(&mut state, &hello("a", None, &[(1, "", 4)]), now);

        assert_eq!(fences_after_welcome(sent), [fenced(1, "", 4, STALE_EPOCH)]);
        assert_eq!(state.workers["b"].held[&key(1, "")], Held::new(5, 1));
    }

    #[test]
    fn a_newer_claim_displaces_the_holder_which_is_revoked() {
        let now = Instant::now();
        let mut state = held_by_b(now, 4);

        let sent = admitted(&mut state, &hello("a", None, &[(1, "", 5)]), now);

        assert_eq!(
            sent,
            [
                welcome(),
                (
                    "b".to_owned(),
                    connect_response::Kind::Revoke(Revoke {
                        job_id: Uuid::from_u128(1).to_string(),
                        location: String::new(),
                        epoch: 4,
                        reason: "stale epoch: another worker holds a newer assignment".into(),
                    })
                ),
            ]
        );
        let old = &state.workers["b"].held[&key(1, "")];
        assert_eq!((old.revoking, old.revoked_at), (true, Some(now)));
        assert_eq!(state.workers["a"].held[&key(1, "")], Held::new(5, 0));
        assert_eq!(state.epochs[&key(1, "")], 5);
    }

    #[test]
    fn a_reconnect_keeps_what_it_still_claims_and_drops_the_rest() {
        let now = Instant::now();
        let mut state = state(100, 100, &[job(1, 1, &[]), job(2, 1, &[])]);
        let mut a = worker(now, 1, None)
            .holding(key(1, ""), Held::new(5, 3))
            .holding(key(2, ""), Held::new(6, 3));
        a.draining = true;
        state.workers.insert("a".into(), a);
        state.next_session = 1;

        let (session, sent) = admit(
            &mut state,
            &hello("a", None, &[(1, "", 5)]),
            &RegistryConfig::default(),
            now,
            AT,
        )
        .unwrap();

        assert_eq!((session, sent), (2, vec![welcome()]));
        let a = &state.workers["a"];
        assert_eq!((a.session, a.draining), (Some(2), false));
        assert_eq!(
            a.held,
            HashMap::from([(key(1, ""), Held::new(5, 0))]),
            "to be confirmed again"
        );
    }

    #[test]
    fn a_full_registry_refuses_a_new_worker_id_but_not_a_known_one() {
        let now = Instant::now();
        let config = RegistryConfig {
            max_workers: 1,
            ..RegistryConfig::default()
        };
        let mut state = State::default();
        admit(&mut state, &hello("a", None, &[]), &config, now, AT).unwrap();

        assert_eq!(
            admit(&mut state, &hello("b", None, &[]), &config, now, AT),
            Err(ApiError::ResourceExhausted(
                "the registry already knows 1 workers (MONITOR_MAX_WORKERS); a new worker id is refused until one leaves"
                    .into()
            ))
        );
        assert_eq!(
            admit(&mut state, &hello("a", None, &[]), &config, now, AT).map(|(id, _)| id),
            Ok(3)
        );
        assert!(!state.workers.contains_key("b"));
    }

    #[test]
    fn a_bounded_hello_is_valid() {
        let mut full = hello(
            "w".repeat(128).as_str(),
            Some("eu"),
            &[(1, "l".repeat(256).as_str(), 1)],
        );
        full.capacity = MAX_CAPACITY;
        full.version = "v".repeat(MAX_VERSION_CHARS);
        full.labels
            .extend((1..MAX_WORKER_LABELS).map(|i| (format!("k{i}"), "v".repeat(256))));
        assert_eq!(full.labels.len(), MAX_WORKER_LABELS);
        assert_eq!(validate_hello(&full), Ok(()));
    }

    #[test]
    fn each_unbounded_hello_field_is_named() {
        let check = |change: &dyn Fn(&mut WorkerHello), field: &str, description: &str| {
            let mut hello = hello("a", None, &[(1, "", 1)]);
            change(&mut hello);
            assert_eq!(
                validate_hello(&hello),
                Err(ApiError::InvalidArgument(vec![FieldViolation::new(field, description)])),
                "{field}"
            );
        };
        let worker_id = "must be 1 to 128 printable characters";
        check(&|h| h.worker_id.clear(), "hello.worker_id", worker_id);
        check(&|h| h.worker_id = "w".repeat(129), "hello.worker_id", worker_id);
        check(&|h| h.worker_id = "a\nb".into(), "hello.worker_id", worker_id);
        check(
            &|h| h.capacity = 10_001,
            "hello.capacity",
            "must be at most 10000 (0 means 1)",
        );
        let version = "must be at most 64 printable characters";
        check(&|h| h.version = "v".repeat(65), "hello.version", version);
        check(&|h| h.version = "1\t2".into(), "hello.version", version);
        check(
            &|h| h.labels = (0..33).map(|i| (format!("k{i}"), String::new())).collect(),
            "hello.labels",
            "at most 32 labels (got 33)",
        );
        check(
            &|h| {
                h.labels.insert("-bad".into(), String::new());
            },
            "hello.labels[\"-bad\"]",
            "is not a valid label key",
        );
        let value = "value must be at most 256 printable characters";
        for bad in ["v".repeat(257), "\u{7}".to_owned()] {
            check(
                &|h| {
                    h.labels.insert("k".into(), bad.clone());
                },
                "hello.labels[\"k\"]",
                value,
            );
        }
        check(
            &|h| h.held = vec![h.held[0].clone(); MAX_HELD + 1],
            "hello.held",
            "at most 100000 assignments (got 100001)",
        );
        check(
            &|h| h.held[0].job_id = "job-1".into(),
            "hello.held[0].job_id",
            "is not a job id",
        );
        check(
            &|h| h.held[0].location = "l".repeat(257),
            "hello.held[0].location",
            "must be at most 256 characters",
        );
    }

    #[test]
    fn every_violation_of_a_hello_is_reported() {
        let mut hello = hello("", None, &[(1, "", 1)]);
        hello.capacity = u32::MAX;
        hello.held[0].job_id.clear();
        let Err(ApiError::InvalidArgument(violations)) = validate_hello(&hello) else {
            panic!("invalid");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["hello.worker_id", "hello.capacity", "hello.held[0].job_id"]);
    }
}
