//! Server information and the database reset (the old `/db/init`).

use std::time::Instant;

use chrono::{DateTime, Utc};

use monitor_proto::v1::{GetServerInfoResponse, JobCounts, ResetDatabaseRequest, ResetDatabaseResponse};
use tracing::instrument;

use crate::{error::ApiError, jobs::JobCatalog};

/// Name reported by GetServerInfo.
pub const SERVER_NAME: &str = "monitor-server";

/// Administrative operations of one running server.
#[derive(Clone)]
pub struct Admin {
    catalog: JobCatalog,
    /// Wall-clock start, reported to clients.
    started_at: DateTime<Utc>,
    /// Monotonic start, for the uptime.
    started: Instant,
}

impl Admin {
    pub fn new(catalog: JobCatalog) -> Self {
        Admin {
            catalog,
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    #[instrument(skip_all)]
    pub async fn info(&self) -> Result<GetServerInfoResponse, ApiError> {
        let counts = self.catalog.counts().await?;
        let uptime = self.started.elapsed();
        Ok(GetServerInfoResponse {
            name: SERVER_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            start_time: Some(self.started_at.into()),
            uptime: Some(uptime.into()),
            jobs: Some(JobCounts {
                total: counts.running + counts.stopped,
                running: counts.running,
                stopped: counts.stopped,
            }),
            connected_workers: self.catalog.workers().connected_count() as i64,
        })
    }

    #[instrument(skip_all)]
    pub async fn reset(&self, request: ResetDatabaseRequest) -> Result<ResetDatabaseResponse, ApiError> {
        if !request.confirm {
            return Err(ApiError::invalid(
                "confirm",
                "must be true: this deletes every job and all metrics",
            ));
        }
        let deleted = self.catalog.delete_all().await?;
        Ok(ResetDatabaseResponse {
            deleted_jobs: deleted.jobs,
            deleted_rollups: deleted.rollups,
        })
    }
}
