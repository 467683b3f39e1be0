//! Retention and partition upkeep of `job_metrics`: a task of its own
//! beside the consuming loop, since it only needs the database and runs on
//! its own clock. Each pass creates every configured granularity's
//! partitions ahead of time (the current and the next [`AHEAD`] days or
//! months, so flushes rarely create one), then drops the partitions
//! entirely older than their granularity's age (see
//! `job_metrics::apply_retention` for when rows of the partition straddling
//! the cutoff are deleted too).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use monitor_store::{
    DbPool, StoreError,
    models::{
        job_metrics::{self, Retained},
        metric_partitions::MetricPartitions,
    },
};

/// Partitions (days or months) created beyond the current one.
pub const AHEAD: i32 = 2;

/// Runs [`retention_pass`] every `every` until aborted.
pub async fn retention_loop(
    pool: DbPool,
    partitions: Arc<MetricPartitions>,
    granularities: Vec<String>,
    retention: BTreeMap<String, Duration>,
    every: Duration,
) {
    loop {
        retention_pass(&pool, &partitions, &granularities, &retention, Utc::now()).await;
        tokio::time::sleep(every).await;
    }
}

/// One pass at `now`: partitions ahead for `granularities`, then
/// `retention`. Failures are logged and retried on the next pass; returns
/// what retention removed per granularity that succeeded.
pub async fn retention_pass(
    pool: &DbPool,
    partitions: &MetricPartitions,
    granularities: &[String],
    retention: &BTreeMap<String, Duration>,
    now: DateTime<Utc>,
) -> BTreeMap<String, Retained> {
    for granularity in granularities {
        let created = async {
            let mut conn = pool.get().await?;
            partitions.ensure_ahead(&mut conn, granularity, now, AHEAD).await
        }
        .await;
        if let Err(err) = created {
            tracing::warn!(granularity, error = %err, "creating partitions ahead failed; retrying later");
        }
    }
    let mut removed = BTreeMap::new();
    for (granularity, keep) in retention {
        let retained: Result<Retained, StoreError> = async {
            let mut conn = pool.get().await?;
            job_metrics::apply_retention(&mut conn, partitions, granularity, *keep, now).await
        }
        .await;
        match retained {
            Ok(retained) => {
                if retained != Retained::default() {
                    tracing::info!(
                        granularity,
                        partitions_dropped = retained.partitions_dropped.len(),
                        rows_deleted = retained.rows_deleted,
                        dropped = ?retained.partitions_dropped,
                        "retention applied"
                    );
                }
                removed.insert(granularity.clone(), retained);
            }
            Err(err) => tracing::warn!(granularity, error = %err, "retention failed; retrying later"),
        }
    }
    removed
}
