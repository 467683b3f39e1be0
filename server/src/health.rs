//! `grpc.health.v1`: SERVING only while PostgreSQL answers.

use std::time::Duration;

use monitor_proto::v1::{admin_service_server::AdminServiceServer, job_service_server::JobServiceServer};
use monitor_store::{DbPool, pool::ping};
use tonic_health::server::HealthReporter;

use crate::grpc::{admin_service::AdminServiceImpl, job_service::JobServiceImpl, worker_service::WorkerServiceImpl};
use monitor_proto::v1::worker_service_server::WorkerServiceServer;

/// How often the database is pinged.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// A ping slower than this counts as a failure.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets the overall status ("") and every service's to match the database.
pub async fn report(reporter: &HealthReporter, database_up: bool) {
    let status = if database_up {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    reporter.set_service_status("", status).await;
    if database_up {
        reporter.set_serving::<JobServiceServer<JobServiceImpl>>().await;
        reporter.set_serving::<AdminServiceServer<AdminServiceImpl>>().await;
        reporter.set_serving::<WorkerServiceServer<WorkerServiceImpl>>().await;
    } else {
        reporter.set_not_serving::<JobServiceServer<JobServiceImpl>>().await;
        reporter.set_not_serving::<AdminServiceServer<AdminServiceImpl>>().await;
        reporter
            .set_not_serving::<WorkerServiceServer<WorkerServiceImpl>>()
            .await;
    }
}

/// Pings the database forever, updating the health status on every change.
pub async fn watch_database(pool: DbPool, reporter: HealthReporter) {
    let mut last = None;
    loop {
        let up = matches!(tokio::time::timeout(PROBE_TIMEOUT, ping(&pool)).await, Ok(Ok(())));
        if last != Some(up) {
            if up {
                tracing::info!("database reachable: health SERVING");
            } else {
                tracing::warn!("database unreachable: health NOT_SERVING");
            }
            report(&reporter, up).await;
            last = Some(up);
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
