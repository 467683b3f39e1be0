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

/// How long workers may still run assignments of the replica that held the
/// assignment lock (migration 5): zero when that time has passed or was
/// never recorded. Measured on the database's clock, like the writes.
pub async fn assignment_lease_remaining(conn: &mut AsyncPgConnection) -> Result<std::time::Duration, StoreError> {
    use diesel::{dsl::sql, sql_types::BigInt};
    let millis: i64 = diesel::select(sql::<BigInt>(
        "COALESCE((SELECT (EXTRACT(EPOCH FROM held_until - now()) * 1000)::int8 FROM assignment_lease), 0)",
    ))
    .get_result(conn)
    .await?;
    Ok(std::time::Duration::from_millis(millis.max(0) as u64))
}

/// Records that workers may run assignments for `lease` from now (never
/// moves the recorded time back).
pub async fn extend_assignment_lease(
    conn: &mut AsyncPgConnection,
    lease: std::time::Duration,
) -> Result<(), StoreError> {
    diesel::sql_query(
        "INSERT INTO assignment_lease (held_until) VALUES (now() + $1 * interval '1 millisecond') \
         ON CONFLICT (singleton) DO UPDATE \
         SET held_until = GREATEST(assignment_lease.held_until, EXCLUDED.held_until), updated_at = now()",
    )
    .bind::<diesel::sql_types::BigInt, _>(lease.as_millis() as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that no worker runs assignments any more (the holder saw every
/// worker leave): the next holder need not wait.
pub async fn release_assignment_lease(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query("UPDATE assignment_lease SET held_until = LEAST(held_until, now()), updated_at = now()")
        .execute(conn)
        .await?;
    Ok(())
}
