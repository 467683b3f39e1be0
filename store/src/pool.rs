//! The connection pool every process shares its database work through.

use diesel_async::{
    AsyncPgConnection, RunQueryDsl,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
        deadpool::{Object, Pool},
    },
};

use crate::StoreError;

/// A pool of async Postgres connections.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of [`DbPool`]; returned to the pool on drop.
pub type DbConn = Object<AsyncPgConnection>;

/// Builds a pool of at most `max_size` connections. Connections are opened
/// lazily, so this succeeds even while the database is down; use [`ping`] to
/// find out whether it answers.
pub fn connect(database_url: &str, max_size: usize) -> Result<DbPool, StoreError> {
    // Fast recycling skips the `SELECT 1` deadpool would otherwise run on every
    // checkout (doubling round trips); a connection that broke is still
    // detected and dropped, and the request that met it fails once.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|err| StoreError::Unavailable(err.to_string()))
}

/// Runs `SELECT 1`: succeeds only while the database answers.
pub async fn ping(pool: &DbPool) -> Result<(), StoreError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}
