//! One server replica assigns work: the one holding a PostgreSQL advisory
//! lock on a connection of its own. The others serve the API but refuse
//! worker streams (UNAVAILABLE), so workers retry until they reach the
//! holder. Two replicas each assigning every job to their own workers would
//! run every job twice.
//!
//! The lock belongs to the database session: when the holder stops or
//! loses its connection, PostgreSQL releases it and another replica takes
//! it within [`RETRY_EVERY`]. A holder that cannot prove its session for
//! [`CHECK_TIMEOUT`] gives up leadership and ends its worker streams first.
//!
//! While it has running jobs, the holder keeps a time in the database
//! (`assignment_lease`, migration 5) until which its workers may still run
//! them if it vanished: written before it hands anything out and every
//! second after, as now plus the workers' lease, its silence limit and a
//! margin ([`WorkerRegistry::assignment_lease`]). The next holder (another
//! replica, or this one restarted) hands out assignments nobody reclaimed
//! only after that time, so a job never runs on two workers at once across
//! a restart or a failover; on a fresh start there is nothing to wait for.

use std::time::Duration;

use monitor_store::{
    DbConn, DbPool, StoreError,
    diesel_async::AsyncPgConnection,
    pool::{assignment_lease_remaining, ping_connection, try_advisory_lock},
};

use super::WorkerRegistry;

/// The advisory lock's key ("monitor" and a 1, as bytes). Advisory locks
/// are per database, so replicas on one database compete for it.
pub const LOCK_KEY: i64 = 0x6d6f_6e69_746f_7201;

/// How often a replica without the lock tries to take it.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// How often the holder proves its session is alive.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long the holder waits for that proof.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Competes for the lock until aborted, keeping `registry`'s leadership
/// up to date.
pub async fn compete(registry: WorkerRegistry, pool: DbPool) {
    let mut told_follower = false;
    loop {
        match pool.get().await {
            // Out of the pool for good: the lock lives as long as it does.
            Ok(pooled) => {
                if let Err(reason) = hold(&registry, DbConn::take(pooled), &mut told_follower).await {
                    tracing::warn!(reason, "lost the assignment lock's database session");
                }
            }
            Err(err) => tracing::debug!(error = %err, "no database connection for the assignment lock"),
        }
        registry.follow();
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

/// Takes the lock when free and keeps it while the session answers.
/// Returns why the session stopped working.
async fn hold(registry: &WorkerRegistry, mut conn: AsyncPgConnection, told_follower: &mut bool) -> Result<(), String> {
    loop {
        let taken = within(try_advisory_lock(&mut conn, LOCK_KEY)).await?;
        if taken {
            let grace = within(assignment_lease_remaining(&mut conn)).await?;
            tracing::info!("this replica holds the assignment lock: it assigns jobs to workers");
            *told_follower = false;
            registry.lead(grace);
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                if let Err(reason) = within(ping_connection(&mut conn)).await {
                    registry.follow();
                    return Err(reason);
                }
            }
        }
        if !*told_follower {
            tracing::info!(
                "another replica holds the assignment lock: this one serves the API and refuses worker streams"
            );
            *told_follower = true;
        }
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

async fn within<T>(query: impl Future<Output = Result<T, StoreError>>) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, query).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}
