//! Retention: deleting rollups older than their granularity's configured
//! age. A task of its own beside the consuming loop, since it only needs
//! the database and runs on its own clock.

use std::{collections::BTreeMap, time::Duration};

use chrono::Utc;
use monitor_store::{DbPool, models::job_metrics};

/// Applies retention every `every` until aborted.
pub async fn retention_loop(pool: DbPool, retention: BTreeMap<String, Duration>, every: Duration) {
    loop {
        for (granularity, keep) in &retention {
            let before = Utc::now() - chrono::Duration::from_std(*keep).unwrap_or(chrono::Duration::MAX);
            let deleted = async {
                let mut conn = pool.get().await?;
                job_metrics::apply_retention(&mut conn, granularity, before).await
            }
            .await;
            match deleted {
                Ok(0) => {}
                Ok(n) => tracing::info!(granularity, deleted = n, "retention applied"),
                Err(err) => tracing::warn!(granularity, error = %err, "retention failed; retrying later"),
            }
        }
        tokio::time::sleep(every).await;
    }
}
