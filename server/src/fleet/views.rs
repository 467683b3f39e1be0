//! What the registry shows: the worker list (ListWorkers, `/metrics`), the
//! connected count, and where a job runs with its latest reported outcome
//! (job status). Read-only functions of the state.

use monitor_proto::v1::{JobPlacement, Worker};
use uuid::Uuid;

use super::{AssignmentKey, WorkerRegistry, state::State};

impl WorkerRegistry {
    /// Workers with an open stream.
    pub fn connected_count(&self) -> usize {
        connected_count(&self.lock().state)
    }

    /// The workers, for ListWorkers.
    pub fn list(&self) -> Vec<Worker> {
        list(&self.lock().state)
    }

    /// Where a job runs and its latest reported outcome per location.
    pub fn placements(&self, job_id: Uuid, locations: &[String]) -> Vec<JobPlacement> {
        placements(&self.lock().state, job_id, locations)
    }
}

fn connected_count(state: &State) -> usize {
    state.workers.values().filter(|w| w.session.is_some()).count()
}

fn list(state: &State) -> Vec<Worker> {
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

/// One placement per location of the job (one without a location when it
/// names none).
pub(super) fn placements(state: &State, job_id: Uuid, locations: &[String]) -> Vec<JobPlacement> {
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
                    placement.last_result = report.last_result.clone();
                }
            }
            placement
        })
        .collect()
}
