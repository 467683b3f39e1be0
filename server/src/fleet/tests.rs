//! The registry through its handle: sessions opened from hellos, passes
//! run, and what the views then show.

use std::{collections::HashMap, sync::Arc, time::Instant};

use monitor_proto::v1::{AssignmentRef, ConnectResponse, Job, Revoke, WorkerHello, WorkerState, connect_response};
use tokio::sync::mpsc;
use uuid::Uuid;

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
    registry.lock().state.workers.get_mut("worker-a").unwrap().last_heard = Instant::now() - limit / 2;
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
    registry.lock().state.workers.get_mut("worker-a").unwrap().last_heard = Instant::now() - limit - limit / 10;
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
        let mut shared = registry.lock();
        let state = &mut shared.state;
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
    registry.lock().state.jobs.insert(job, running.clone());
    registry.reconcile(true);
    assert_eq!(registry.placements(job, &[])[0].epoch, 1, "assigned to worker-a");
    // Stopped: worker-a is asked to give it back and never answers.
    registry.lock().state.jobs.clear();
    registry.reconcile(true);
    assert_eq!(revokes(&mut a_inbox).len(), 1);
    // Started again: while the revoke is pending nobody else gets it.
    registry.lock().state.jobs.insert(job, running);
    registry.reconcile(true);
    assert_eq!(registry.placements(job, &[])[0].epoch, 1, "still held, revoking");
    // A whole lease later (worker-a still heartbeating) it is taken back
    // and handed out again at a new epoch.
    let limit = registry.config().lease + registry.config().heartbeat_interval;
    {
        let mut shared = registry.lock();
        let state = &mut shared.state;
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
        let mut shared = registry.lock();
        let state = &mut shared.state;
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
    registry.lock().state.epoch_ceiling = Some(10);
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
