//! ListJobSummaries: a page of jobs as ListJobs pages them, each with its
//! status and its figures over the last day and hour from the rollups.

use std::collections::HashMap;

use monitor_proto::v1::{JobSummary, LatencySample, ListJobSummariesResponse, ListJobsRequest};
use monitor_store::models::job_metrics;
use tracing::instrument;
use uuid::Uuid;

use super::{JobCatalog, parse_id};
use crate::error::ApiError;

/// The rollup width job summaries read: the finest the aggregators write by
/// default, so the last day and hour are exact to the minute.
pub const SUMMARY_GRANULARITY: &str = "1m";

impl JobCatalog {
    /// A page of jobs (ListJobs' filters and paging, which ListJobSummaries
    /// shares), each with its status and its figures over the last day and
    /// hour from the 1-minute rollups: two grouped queries for the whole
    /// page, never one per job.
    #[instrument(skip_all)]
    pub async fn list_summaries(&self, page: ListJobsRequest) -> Result<ListJobSummariesResponse, ApiError> {
        let page = self.list(page).await?;
        let ids = page
            .jobs
            .iter()
            .map(|job| parse_id("id", &job.id))
            .collect::<Result<Vec<_>, _>>()?;
        let now = chrono::Utc::now();
        let (totals, latencies) = if ids.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let mut conn = self.conn().await?;
            let totals =
                job_metrics::check_totals(&mut conn, &ids, SUMMARY_GRANULARITY, now - chrono::TimeDelta::hours(24))
                    .await
                    .map_err(ApiError::from_store)?;
            let latencies = job_metrics::average_response_times(
                &mut conn,
                &ids,
                SUMMARY_GRANULARITY,
                now - chrono::TimeDelta::hours(1),
            )
            .await
            .map_err(ApiError::from_store)?;
            (totals, latencies)
        };
        let totals: HashMap<Uuid, job_metrics::CheckTotals> = totals.into_iter().map(|t| (t.job_id, t)).collect();
        let mut samples: HashMap<Uuid, Vec<LatencySample>> = HashMap::new();
        for (job_id, dt, rt_avg) in latencies {
            samples.entry(job_id).or_default().push(LatencySample {
                dt: Some(dt.into()),
                rt_avg,
            });
        }
        let summaries = page
            .jobs
            .into_iter()
            .zip(ids)
            .map(|(job, id)| {
                let total = totals.get(&id).copied().unwrap_or_default();
                JobSummary {
                    status: Some(self.status_of(&job, id)),
                    job: Some(job),
                    checks_24h: total.checks,
                    passed_24h: total.passed,
                    uptime_24h: (total.checks > 0).then(|| total.passed as f64 / total.checks as f64),
                    latency_1h: samples.remove(&id).unwrap_or_default(),
                }
            })
            .collect();
        Ok(ListJobSummariesResponse {
            summaries,
            next_page_token: page.next_page_token,
            total_size: page.total_size,
        })
    }
}
