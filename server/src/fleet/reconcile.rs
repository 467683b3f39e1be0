//! One assignment pass as a plain function of the registry's state and the
//! time: drop what silent or overdue workers held, work out where every
//! running job's assignments should run, and return the Revokes and Assigns
//! that get there. Nothing here sends, sleeps or reads the clock.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use monitor_proto::v1::{Assign, Job, Revoke, connect_response};

use super::{
    AssignmentKey, placement,
    state::{Held, Outgoing, State, WorkerEntry},
};

/// One assignment pass at `now`: `silence_limit` is how long a worker may
/// be silent (or ignore a Revoke) before what it holds is taken back; new
/// assignments are handed out only when `may_assign` (the lease and the
/// epochs are in the database). Returns the messages to send, each worker's
/// in the order they must arrive.
pub(super) fn reconcile(state: &mut State, now: Instant, silence_limit: Duration, may_assign: bool) -> Vec<Outgoing> {
    let in_grace = !may_assign || state.grace_until.is_some_and(|until| now < until);
    let State {
        workers,
        epochs,
        jobs,
        next_epoch,
        epochs_end,
        ..
    } = state;

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
        if w.session.is_some() && w.silent(now, silence_limit) {
            tracing::warn!(
                worker_id = id,
                "nothing heard on the worker's open stream; treating it as lost"
            );
            w.session = None;
        }
    }
    // Lost workers whose lease expired give up everything they held.
    workers.retain(|id, w| {
        let expired = w.session.is_none() && w.silent(now, silence_limit);
        if expired {
            tracing::warn!(
                worker_id = id,
                jobs = w.held.len(),
                "worker lease expired; moving its jobs"
            );
        }
        !expired
    });

    let desired = desired(jobs);
    let targets: HashMap<AssignmentKey, String> = desired
        .keys()
        .filter_map(|key| target(workers, key).map(|t| (key.clone(), t)))
        .collect();

    let mut sent = Vec::new();
    // Revoke what should not run where it runs; refresh changed specs.
    for (worker_id, w) in workers.iter_mut() {
        if w.session.is_none() {
            continue;
        }
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
                        sent.push((
                            worker_id.clone(),
                            connect_response::Kind::Assign(Assign {
                                job: Some((**job).clone()),
                                location: key.location.clone(),
                                epoch: held.epoch,
                            }),
                        ));
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
                    sent.push((
                        worker_id.clone(),
                        connect_response::Kind::Revoke(Revoke {
                            job_id: key.job_id.to_string(),
                            location: key.location.clone(),
                            epoch: held.epoch,
                            reason: reason.into(),
                        }),
                    ));
                }
            }
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
        w.held.insert(key.clone(), Held::new(epoch, job.version));
        sent.push((
            worker_id.clone(),
            connect_response::Kind::Assign(Assign {
                job: Some((**job).clone()),
                location: key.location.clone(),
                epoch,
            }),
        ));
    }
    // Forget epochs of assignments that no longer exist and nobody holds.
    if epochs.len() > desired.len() + held.len() {
        epochs.retain(|key, _| desired.contains_key(key) || held.contains(key));
    }
    sent
}

/// The assignments the running jobs make: one per location a job names,
/// or one with no location.
fn desired(jobs: &HashMap<uuid::Uuid, Arc<Job>>) -> HashMap<AssignmentKey, Arc<Job>> {
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
    desired
}

/// Where an assignment should run, by rendezvous over eligible workers.
fn target(workers: &HashMap<String, WorkerEntry>, key: &AssignmentKey) -> Option<String> {
    let hash_key = key.hash_key();
    placement::choose(
        &hash_key,
        workers
            .iter()
            .filter(|(_, w)| w.eligible_for(&key.location))
            .map(|(id, w)| (id.as_str(), w.capacity)),
    )
    .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::connect_response::Kind;

    use super::*;
    use crate::fleet::state::{
        ControlMessage,
        fixtures::{job, key, ready, worker},
    };

    const LIMIT: Duration = Duration::from_secs(18);

    fn assign(job: &Arc<Job>, location: &str, epoch: u64) -> ControlMessage {
        Kind::Assign(Assign {
            job: Some((**job).clone()),
            location: location.into(),
            epoch,
        })
    }

    fn revoke(key: &AssignmentKey, epoch: u64, reason: &str) -> ControlMessage {
        Kind::Revoke(Revoke {
            job_id: key.job_id.to_string(),
            location: key.location.clone(),
            epoch,
            reason: reason.into(),
        })
    }

    /// Messages in a fixed order (a pass walks hash maps).
    fn sorted(mut messages: Vec<Outgoing>) -> Vec<Outgoing> {
        messages.sort_by_key(|(worker_id, message)| (worker_id.clone(), format!("{message:?}")));
        messages
    }

    /// A job id whose assignment (without location) `want` wins among
    /// `workers` by rendezvous hashing.
    fn job_won_by(want: &str, workers: &[(&str, u32)]) -> u128 {
        (1..)
            .find(|id| placement::choose(&key(*id, "").hash_key(), workers.iter().copied()) == Some(want))
            .unwrap()
    }

    #[test]
    fn a_new_job_goes_to_the_capacity_weighted_rendezvous_winner_at_the_next_epoch() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 7, 100, std::slice::from_ref(&running));
        for (id, capacity) in [("a", 1), ("b", 3), ("c", 5)] {
            state.workers.insert(id.into(), worker(now, capacity, None));
        }
        let winner = placement::choose(&key(1, "").hash_key(), [("a", 1), ("b", 3), ("c", 5)]).unwrap();

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent, [(winner.to_owned(), assign(&running, "", 7))]);
        assert_eq!(state.workers[winner].held[&key(1, "")], Held::new(7, 1));
        assert_eq!((state.next_epoch, state.epochs[&key(1, "")]), (8, 7));
        // Placed and confirmed: the next pass says nothing.
        assert_eq!(reconcile(&mut state, now, LIMIT, true), []);
    }

    #[test]
    fn each_location_goes_to_a_worker_labelled_with_it() {
        let now = Instant::now();
        let running = job(1, 1, &["eu", "us", "ap"]);
        let mut state = ready(now, 1, 100, std::slice::from_ref(&running));
        state.workers.insert("eu-1".into(), worker(now, 1, Some("eu")));
        state.workers.insert("us-1".into(), worker(now, 1, Some("us")));
        state.workers.insert("anywhere".into(), worker(now, 1, None));

        let sent = sorted(reconcile(&mut state, now, LIMIT, true));

        // "ap" has no worker: it waits. The unlabelled worker takes no
        // job that names locations.
        let epoch = |worker: &str, location: &str| state.workers[worker].held[&key(1, location)].epoch;
        assert_eq!(
            sent,
            [
                ("eu-1".to_owned(), assign(&running, "eu", epoch("eu-1", "eu"))),
                ("us-1".to_owned(), assign(&running, "us", epoch("us-1", "us"))),
            ]
        );
        let mut epochs = [epoch("eu-1", "eu"), epoch("us-1", "us")];
        epochs.sort();
        assert_eq!(epochs, [1, 2]);
        assert!(state.workers["anywhere"].held.is_empty());
    }

    #[test]
    fn draining_and_lost_workers_get_nothing_new() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 1, 100, std::slice::from_ref(&running));
        let mut draining = worker(now, 10_000, None);
        draining.draining = true;
        let mut lost = worker(now, 10_000, None);
        lost.session = None;
        state.workers.insert("draining".into(), draining);
        state.workers.insert("lost".into(), lost);
        state.workers.insert("open".into(), worker(now, 1, None));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent, [("open".to_owned(), assign(&running, "", 1))]);
        assert_eq!(state.workers.len(), 3, "a lost worker within its lease is kept");
    }

    #[test]
    fn jobs_of_a_worker_whose_lease_expired_move_at_a_new_epoch() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&running));
        let mut gone = worker(now - LIMIT - Duration::from_millis(1), 1, None);
        gone.session = None;
        gone.held.insert(key(1, ""), Held::new(5, 1));
        state.epochs.insert(key(1, ""), 5);
        state.workers.insert("gone".into(), gone);
        state.workers.insert("b".into(), worker(now, 1, None));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent, [("b".to_owned(), assign(&running, "", 10))]);
        assert!(!state.workers.contains_key("gone"));
        assert_eq!(state.epochs[&key(1, "")], 10);
    }

    #[test]
    fn a_lost_worker_keeps_its_jobs_within_its_lease() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&running));
        let mut lost = worker(now - LIMIT, 1, None);
        lost.session = None;
        lost.held.insert(key(1, ""), Held::new(5, 1));
        state.workers.insert("lost".into(), lost);
        state.workers.insert("b".into(), worker(now, 1, None));

        assert_eq!(reconcile(&mut state, now, LIMIT, true), []);
        assert_eq!(state.workers["lost"].held[&key(1, "")], Held::new(5, 1));
    }

    #[test]
    fn a_silent_open_stream_counts_as_lost_and_its_jobs_move() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&running));
        state.workers.insert(
            "silent".into(),
            worker(now - LIMIT - Duration::from_millis(1), 1, None).holding(key(1, ""), Held::new(5, 1)),
        );
        state.workers.insert("b".into(), worker(now, 1, None));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent, [("b".to_owned(), assign(&running, "", 10))]);
        assert!(!state.workers.contains_key("silent"));
    }

    #[test]
    fn a_stopped_job_is_revoked_once_and_not_handed_out_again() {
        let now = Instant::now();
        let mut state = ready(now, 10, 100, &[]);
        state
            .workers
            .insert("a".into(), worker(now, 1, None).holding(key(1, ""), Held::new(5, 1)));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(
            sent,
            [("a".to_owned(), revoke(&key(1, ""), 5, "job stopped or deleted"))]
        );
        let held = &state.workers["a"].held[&key(1, "")];
        assert_eq!((held.revoking, held.revoked_at), (true, Some(now)));
        // Started again while the Revoke is pending: still held, nothing sent.
        state.jobs.insert(uuid::Uuid::from_u128(1), job(1, 1, &[]));
        assert_eq!(reconcile(&mut state, now, LIMIT, true), []);
    }

    #[test]
    fn a_newcomer_that_wins_gets_the_job_only_after_the_holder_released_it() {
        let now = Instant::now();
        let id = job_won_by("new", &[("old", 1), ("new", 1)]);
        let running = job(id, 1, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&running));
        state
            .workers
            .insert("old".into(), worker(now, 1, None).holding(key(id, ""), Held::new(5, 1)));
        state.workers.insert("new".into(), worker(now, 1, None));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(
            sent,
            [(
                "old".to_owned(),
                revoke(&key(id, ""), 5, "rebalanced to another worker")
            )]
        );
        // The holder answers with Released.
        state.workers.get_mut("old").unwrap().held.clear();
        let sent = reconcile(&mut state, now, LIMIT, true);
        assert_eq!(sent, [("new".to_owned(), assign(&running, "", 10))]);
    }

    #[test]
    fn a_changed_spec_is_sent_again_at_the_same_epoch() {
        let now = Instant::now();
        let changed = job(1, 2, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&changed));
        state
            .workers
            .insert("a".into(), worker(now, 1, None).holding(key(1, ""), Held::new(5, 1)));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent, [("a".to_owned(), assign(&changed, "", 5))]);
        assert_eq!(state.workers["a"].held[&key(1, "")].job_version, 2);
        assert_eq!(state.next_epoch, 10, "no epoch is spent");
    }

    #[test]
    fn in_the_grace_period_or_without_the_lease_only_stopped_jobs_are_revoked() {
        let now = Instant::now();
        let id = job_won_by("new", &[("old", 1), ("new", 1)]);
        let jobs = [job(id, 2, &[]), job(id + 1, 1, &[])];
        for (grace_until, may_assign) in [(now + LIMIT, true), (now, false)] {
            let mut state = ready(now, 10, 100, &jobs);
            state.grace_until = Some(grace_until);
            let mut old = worker(now, 1, None);
            // Held where it would not be placed, at an older spec.
            old.held.insert(key(id, ""), Held::new(5, 1));
            old.held.insert(key(999_999, ""), Held::new(6, 1));
            state.workers.insert("old".into(), old);
            state.workers.insert("new".into(), worker(now, 1, None));

            let sent = reconcile(&mut state, now, LIMIT, may_assign);

            assert_eq!(
                sent,
                [("old".to_owned(), revoke(&key(999_999, ""), 6, "job stopped or deleted"))],
                "grace until {grace_until:?}, may_assign {may_assign}"
            );
            assert!(state.workers["new"].held.is_empty());
            assert_eq!(state.workers["old"].held[&key(id, "")].job_version, 1);
        }
    }

    #[test]
    fn an_ignored_revoke_is_taken_back_after_the_silence_limit() {
        let now = Instant::now();
        let running = job(1, 1, &[]);
        let mut state = ready(now, 10, 100, std::slice::from_ref(&running));
        let mut deaf = worker(now, 1, None);
        let mut revoked = Held::new(5, 1);
        revoked.revoking = true;
        revoked.revoked_at = Some(now - LIMIT);
        deaf.held.insert(key(1, ""), revoked);
        state.workers.insert("deaf".into(), deaf);

        assert_eq!(reconcile(&mut state, now, LIMIT, true), [], "not yet overdue");
        let later = now + Duration::from_millis(1);
        state.workers.get_mut("deaf").unwrap().last_heard = later;
        let sent = reconcile(&mut state, later, LIMIT, true);
        assert_eq!(sent, [("deaf".to_owned(), assign(&running, "", 10))]);
    }

    #[test]
    fn assigning_stops_when_the_reserved_epochs_run_out() {
        let now = Instant::now();
        let jobs = [job(1, 1, &[]), job(2, 1, &[])];
        let mut state = ready(now, 10, 10, &jobs);
        state.workers.insert("a".into(), worker(now, 1, None));

        let sent = reconcile(&mut state, now, LIMIT, true);

        assert_eq!(sent.len(), 1, "{sent:?}");
        let first = if state.workers["a"].held.contains_key(&key(1, "")) {
            0
        } else {
            1
        };
        assert_eq!(sent, [("a".to_owned(), assign(&jobs[first], "", 10))]);
        assert_eq!(reconcile(&mut state, now, LIMIT, true), [], "the block is used up");
        // A new block (reserved by the loop) lets the other one out.
        (state.next_epoch, state.epochs_end) = (20, 29);
        let sent = reconcile(&mut state, now, LIMIT, true);
        assert_eq!(sent, [("a".to_owned(), assign(&jobs[1 - first], "", 20))]);
    }

    #[test]
    fn epochs_of_gone_assignments_are_forgotten() {
        let now = Instant::now();
        let mut state = ready(now, 10, 100, &[]);
        state.epochs.insert(key(1, ""), 3);
        let mut a = worker(now, 1, None);
        let mut revoking = Held::new(4, 1);
        revoking.revoking = true;
        revoking.revoked_at = Some(now);
        a.held.insert(key(2, ""), revoking);
        state.epochs.insert(key(2, ""), 4);
        state.workers.insert("a".into(), a);

        assert_eq!(reconcile(&mut state, now, LIMIT, true), []);
        assert_eq!(state.epochs, HashMap::from([(key(2, ""), 4)]), "a held one is kept");
    }
}
