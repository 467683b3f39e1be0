//! Where a job stands (GetJobStatus, and each row of ListJobSummaries): its
//! phase from where the fleet placed it, and the latest outcome over its
//! placements. Plain functions of the job and its placements.

use monitor_proto::{
    v1::{CheckOutcome, Job, JobPhase, JobPlacement, JobState, JobStatus},
    wkt::Timestamp,
};

/// The checks of a job over all its placements, as its status shows them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckSummary {
    /// When the newest check reported on any placement ran.
    pub last_check_time: Option<Timestamp>,
    /// That check's outcome (unspecified before any report).
    pub last_outcome: CheckOutcome,
    /// Checks run, over every placement.
    pub checks: u64,
    /// Of them, the ones that failed.
    pub failures: u64,
}

/// The latest outcome over placements, for the job status summary.
pub fn summarize(placements: &[JobPlacement]) -> CheckSummary {
    let latest = placements
        .iter()
        .filter(|p| p.last_check_time.is_some())
        .max_by_key(|p| p.last_check_time);
    let last_outcome = latest.map_or(CheckOutcome::Unspecified, |p| {
        CheckOutcome::try_from(p.last_outcome).unwrap_or(CheckOutcome::Unspecified)
    });
    CheckSummary {
        last_check_time: latest.and_then(|p| p.last_check_time),
        last_outcome,
        checks: placements.iter().map(|p| p.checks).sum(),
        failures: placements.iter().map(|p| p.failures).sum(),
    }
}

/// Where a job read from the store stands, given where the fleet placed it
/// (one placement per location, an empty worker id where none runs it).
pub fn status_of(job: &Job, placements: Vec<JobPlacement>) -> JobStatus {
    let running = job.desired_state == JobState::Running as i32;
    let mut assigned_workers: Vec<String> = placements
        .iter()
        .filter(|p| !p.worker_id.is_empty())
        .map(|p| p.worker_id.clone())
        .collect();
    assigned_workers.dedup();
    let (phase, message) = match (running, assigned_workers.is_empty()) {
        (false, true) => (JobPhase::Stopped, "job is stopped".to_owned()),
        (false, false) => (
            JobPhase::Active,
            "job is stopping: its worker has not released it yet".to_owned(),
        ),
        (true, true) => (
            JobPhase::Pending,
            "job should run but no probe worker has it yet".to_owned(),
        ),
        (true, false) => {
            let unplaced = placements.iter().filter(|p| p.worker_id.is_empty()).count();
            if unplaced == 0 {
                (JobPhase::Active, format!("running on {}", assigned_workers.join(", ")))
            } else {
                let missing: Vec<_> = placements
                    .iter()
                    .filter(|p| p.worker_id.is_empty())
                    .map(|p| p.location.as_str())
                    .collect();
                (
                    JobPhase::Active,
                    format!("running, but no worker in location(s) {}", missing.join(", ")),
                )
            }
        }
    };
    let summary = summarize(&placements);
    JobStatus {
        job_id: job.id.clone(),
        desired_state: job.desired_state,
        phase: phase as i32,
        version: job.version,
        state_change_time: job.state_change_time,
        assigned_workers,
        message,
        placements: if running || !placements.iter().all(|p| p.worker_id.is_empty()) {
            placements
        } else {
            Vec::new()
        },
        last_check_time: summary.last_check_time,
        last_outcome: summary.last_outcome as i32,
        checks: summary.checks,
        failures: summary.failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn placed(location: &str, worker_id: &str) -> JobPlacement {
        JobPlacement {
            location: location.into(),
            worker_id: worker_id.into(),
            ..Default::default()
        }
    }

    /// A placement on `worker_id` whose newest check ran at `seconds`.
    fn reported(
        location: &str,
        worker_id: &str,
        seconds: i64,
        outcome: CheckOutcome,
        checks: u64,
        failures: u64,
    ) -> JobPlacement {
        JobPlacement {
            last_check_time: at(seconds),
            last_outcome: outcome as i32,
            checks,
            failures,
            ..placed(location, worker_id)
        }
    }

    fn job(state: JobState, locations: &[&str]) -> Job {
        Job {
            id: "job-1".into(),
            version: 4,
            desired_state: state as i32,
            state_change_time: at(100),
            locations: locations.iter().map(|l| (*l).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_summary_takes_the_newest_outcome_and_adds_the_counts() {
        assert_eq!(
            summarize(&[placed("", "")]),
            CheckSummary {
                last_check_time: None,
                last_outcome: CheckOutcome::Unspecified,
                checks: 0,
                failures: 0,
            }
        );
        let reports = [
            reported("eu", "a", 20, CheckOutcome::Timeout, 5, 2),
            reported("us", "b", 10, CheckOutcome::Ok, 7, 0),
            placed("ap", ""),
        ];
        assert_eq!(
            summarize(&reports),
            CheckSummary {
                last_check_time: at(20),
                last_outcome: CheckOutcome::Timeout,
                checks: 12,
                failures: 2,
            }
        );
        let unknown = JobPlacement {
            last_check_time: at(1),
            last_outcome: 999,
            ..placed("", "a")
        };
        assert_eq!(summarize(&[unknown]).last_outcome, CheckOutcome::Unspecified);
    }

    #[test]
    fn each_phase_with_its_message() {
        let cases = [
            (
                JobState::Stopped,
                vec![placed("", "")],
                JobPhase::Stopped,
                "job is stopped",
            ),
            (
                JobState::Stopped,
                vec![placed("", "a")],
                JobPhase::Active,
                "job is stopping: its worker has not released it yet",
            ),
            (
                JobState::Running,
                vec![placed("", "")],
                JobPhase::Pending,
                "job should run but no probe worker has it yet",
            ),
            (
                JobState::Running,
                vec![placed("eu", "a"), placed("us", "b")],
                JobPhase::Active,
                "running on a, b",
            ),
            (
                JobState::Running,
                vec![placed("eu", "a"), placed("us", ""), placed("ap", "")],
                JobPhase::Active,
                "running, but no worker in location(s) us, ap",
            ),
        ];
        for (state, placements, phase, message) in cases {
            let status = status_of(&job(state, &[]), placements);
            assert_eq!(
                (JobPhase::try_from(status.phase), status.message.as_str()),
                (Ok(phase), message)
            );
        }
    }

    #[test]
    fn a_status_carries_the_job_its_workers_and_placements_while_they_matter() {
        let running = job(JobState::Running, &["eu", "us"]);
        let placements = vec![reported("eu", "a", 30, CheckOutcome::Ok, 3, 1), placed("us", "a")];
        assert_eq!(
            status_of(&running, placements.clone()),
            JobStatus {
                job_id: "job-1".into(),
                desired_state: JobState::Running as i32,
                phase: JobPhase::Active as i32,
                version: 4,
                state_change_time: at(100),
                assigned_workers: vec!["a".into()],
                message: "running on a".into(),
                placements,
                last_check_time: at(30),
                last_outcome: CheckOutcome::Ok as i32,
                checks: 3,
                failures: 1,
            }
        );
        // A stopped job nobody runs shows no placements.
        let stopped = status_of(&job(JobState::Stopped, &["eu"]), vec![placed("eu", "")]);
        assert!(stopped.placements.is_empty(), "{stopped:?}");
    }
}
