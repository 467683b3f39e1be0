//! What the registry keeps in the database: the assignment lease (how long
//! workers may run assignments after this process's last word, which a
//! successor waits out) and the blocks of epochs reserved before any is
//! issued. Each async method reads or writes the database; what follows
//! from the answer is a plain function of the state.

use std::time::{Duration, Instant};

use monitor_store::{DbPool, models::assignment_lease};

use super::{
    AssignmentKey, WorkerRegistry,
    hello::{INVENTED_EPOCH, fence},
    state::{Outgoing, State},
};

/// Extra time on the assignment lease written to the database.
const LEASE_MARGIN: Duration = Duration::from_secs(3);
/// How often the assignment lease is pushed forward.
const LEASE_REWRITE: Duration = Duration::from_secs(1);
/// Epochs reserved in the database at a time.
const EPOCH_BLOCK: u64 = 10_000;

/// What the assignment lease in the database needs on this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseDuty {
    /// Every worker has left: release it, so the next process does not wait.
    Release,
    /// It protects assignments and is due to be pushed forward.
    Extend,
    /// Written recently enough, or nothing to protect.
    Keep,
}

impl WorkerRegistry {
    /// Whether the grace period and the epoch ceiling are known: on the
    /// first call that reaches the database, reads how long workers of the
    /// previous server process may still run their assignments (unclaimed
    /// ones wait that long) and the highest epoch ever reserved; claims
    /// adopted before then at a higher epoch are fenced now.
    pub(super) async fn grace_known(&self, pool: &DbPool) -> bool {
        if self.lock().state.grace_until.is_some() {
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
        let mut shared = self.lock();
        let fenced = learn_lease(&mut shared.state, Instant::now() + grace, ceiling);
        shared.deliver(fenced);
        true
    }

    /// Makes sure epochs are available for `wanted` new assignments,
    /// reserving a block in the database when the current one runs low.
    /// False when none is left and none could be reserved.
    pub(super) async fn keep_epochs(&self, pool: &DbPool, wanted: u64) -> bool {
        let left = epochs_left(&self.lock().state);
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
                take_block(&mut self.lock().state, end, count);
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot reserve assignment epochs");
                left > 0
            }
        }
    }

    /// How long workers may run assignments after the last word from this
    /// process: their lease, this side's silence limit, and a margin for the
    /// rewrite period.
    pub fn assignment_lease(&self) -> Duration {
        self.inner.config.silence_limit() + LEASE_MARGIN
    }

    /// Pushes the assignment lease in the database forward (at most every
    /// [`LEASE_REWRITE`]) while there is anything to protect. False when it
    /// could not be written: then nothing new may be handed out.
    /// When every worker has left (drained, or lost past its lease), the
    /// lease is released instead, so the next server process does not wait;
    /// never during the grace period, whose protection is owed to the
    /// previous process's workers.
    pub(super) async fn keep_lease(&self, pool: &DbPool) -> bool {
        let duty = lease_duty(&self.lock().state, Instant::now());
        if duty == LeaseDuty::Release {
            let released = async {
                let mut conn = pool.get().await?;
                assignment_lease::release(&mut conn).await
            }
            .await;
            if released.is_ok() {
                self.lock().state.lease_written = None;
            }
            // Nobody to assign to anyway; a worker that arrived meanwhile
            // waits for the next pass, which writes the lease first.
            return false;
        }
        if duty == LeaseDuty::Keep {
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
                self.lock().state.lease_written = Some(started);
                true
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot record the assignment lease; handing out nothing new");
                false
            }
        }
    }
}

/// Takes what the database says the previous processes left: their
/// workers' grace period (until `grace_until`) and the highest epoch they
/// reserved. Epochs this process issues start above it; claims adopted
/// before it was known at an epoch above it were never issued: they are
/// dropped, and the Revokes fencing them returned.
fn learn_lease(state: &mut State, grace_until: Instant, ceiling: u64) -> Vec<Outgoing> {
    state.grace_until = Some(grace_until);
    state.epoch_ceiling = Some(ceiling);
    state.inherited_ceiling = Some(ceiling);
    state.next_epoch = ceiling.saturating_add(1);
    state.epochs_end = ceiling;
    let mut sent = Vec::new();
    let State { workers, epochs, .. } = state;
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
            sent.push((worker_id.clone(), fence(&key, epoch, INVENTED_EPOCH)));
        }
    }
    sent
}

/// How many epochs the reserved block still has.
fn epochs_left(state: &State) -> u64 {
    (state.epochs_end + 1).saturating_sub(state.next_epoch)
}

/// Takes the block of `count` epochs the database reserved, ending at `end`.
fn take_block(state: &mut State, end: u64, count: u64) {
    // Another process may have reserved meanwhile: ours is the
    // block just below what the database returned, above every
    // epoch issued before (what is left of the old block is
    // dropped).
    state.next_epoch = end.saturating_sub(count).saturating_add(1);
    state.epochs_end = end;
    state.epoch_ceiling = Some(state.epoch_ceiling.unwrap_or(0).max(end));
}

/// What the assignment lease needs at `now`.
fn lease_duty(state: &State, now: Instant) -> LeaseDuty {
    let in_grace = state.grace_until.is_none_or(|until| now < until);
    if state.workers.is_empty() {
        if state.lease_written.is_some() && !in_grace {
            LeaseDuty::Release
        } else {
            LeaseDuty::Keep
        }
    } else {
        let protecting = !state.jobs.is_empty() || state.workers.values().any(|w| !w.held.is_empty());
        let stale = state
            .lease_written
            .is_none_or(|at| now.duration_since(at) >= LEASE_REWRITE);
        if protecting && stale {
            LeaseDuty::Extend
        } else {
            LeaseDuty::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::fleet::state::{
        Held,
        fixtures::{job, key, worker},
    };

    #[test]
    fn learning_the_lease_fences_claims_adopted_above_the_ceiling() {
        let now = Instant::now();
        let mut state = State::default();
        state.workers.insert(
            "a".into(),
            worker(now, 1, None)
                .holding(key(1, ""), Held::new(10, 0))
                .holding(key(2, ""), Held::new(11, 0)),
        );
        state.epochs = HashMap::from([(key(1, ""), 10), (key(2, ""), 11)]);

        let sent = learn_lease(&mut state, now + Duration::from_secs(5), 10);

        assert_eq!(sent, [("a".to_owned(), fence(&key(2, ""), 11, INVENTED_EPOCH))]);
        assert_eq!(state.workers["a"].held.keys().collect::<Vec<_>>(), [&key(1, "")]);
        assert_eq!(state.epochs, HashMap::from([(key(1, ""), 10)]));
        assert_eq!(
            (state.grace_until, state.epoch_ceiling, state.inherited_ceiling),
            (Some(now + Duration::from_secs(5)), Some(10), Some(10))
        );
        assert_eq!((state.next_epoch, state.epochs_end, epochs_left(&state)), (11, 10, 0));
    }

    #[test]
    fn a_reserved_block_is_the_one_just_below_what_the_database_returned() {
        let mut state = State {
            next_epoch: 5,
            epochs_end: 8,
            epoch_ceiling: Some(8),
            ..State::default()
        };
        assert_eq!(epochs_left(&state), 4);

        // Another process reserved 9..=20 meanwhile; ours is 21..=30.
        take_block(&mut state, 30, 10);

        assert_eq!(
            (state.next_epoch, state.epochs_end, state.epoch_ceiling),
            (21, 30, Some(30))
        );
        assert_eq!(epochs_left(&state), 10);
    }

    #[test]
    fn the_lease_is_extended_while_it_protects_something_and_is_due() {
        let now = Instant::now();
        let mut state = State {
            grace_until: Some(now),
            ..State::default()
        };
        state.workers.insert("a".into(), worker(now, 1, None));
        assert_eq!(lease_duty(&state, now), LeaseDuty::Keep, "nothing to protect");
        state.jobs.insert(uuid::Uuid::from_u128(1), job(1, 1, &[]));
        assert_eq!(lease_duty(&state, now), LeaseDuty::Extend, "never written");
        state.lease_written = Some(now);
        assert_eq!(lease_duty(&state, now + LEASE_REWRITE / 2), LeaseDuty::Keep);
        assert_eq!(lease_duty(&state, now + LEASE_REWRITE), LeaseDuty::Extend);
        // A held assignment protects as much as a running job.
        state.jobs.clear();
        state
            .workers
            .get_mut("a")
            .unwrap()
            .held
            .insert(key(1, ""), Held::new(1, 1));
        assert_eq!(lease_duty(&state, now + LEASE_REWRITE), LeaseDuty::Extend);
    }

    #[test]
    fn the_lease_is_released_when_every_worker_left_but_never_in_the_grace_period() {
        let now = Instant::now();
        let mut state = State {
            grace_until: Some(now + Duration::from_secs(5)),
            lease_written: Some(now),
            ..State::default()
        };
        assert_eq!(lease_duty(&state, now), LeaseDuty::Keep, "in the grace period");
        assert_eq!(lease_duty(&state, now + Duration::from_secs(5)), LeaseDuty::Release);
        state.grace_until = None;
        assert_eq!(lease_duty(&state, now), LeaseDuty::Keep, "grace not known yet");
        state.grace_until = Some(now);
        state.lease_written = None;
        assert_eq!(lease_duty(&state, now), LeaseDuty::Keep, "nothing written to release");
    }
}
