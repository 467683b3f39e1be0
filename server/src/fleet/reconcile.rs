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
