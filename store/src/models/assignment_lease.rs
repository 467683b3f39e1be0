//! `assignment_lease` (migration 5): until when probe workers may still run
//! the assignments of the server process that last wrote it. Every time is
//! taken on the database's clock, so server clocks do not matter.

use std::time::Duration;

use diesel::{dsl::sql, sql_types::BigInt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;

/// How long from now workers may still run assignments: zero when that time
/// has passed or was never recorded.
pub async fn remaining(conn: &mut AsyncPgConnection) -> Result<Duration, StoreError> {
    let millis: i64 = diesel::select(sql::<BigInt>(
        "COALESCE((SELECT (EXTRACT(EPOCH FROM held_until - now()) * 1000)::int8 FROM assignment_lease), 0)",
    ))
    .get_result(conn)
    .await?;
    Ok(Duration::from_millis(millis.max(0) as u64))
}

/// Records that workers may run assignments for `lease` from now (never
/// moves the recorded time back).
pub async fn extend(conn: &mut AsyncPgConnection, lease: Duration) -> Result<(), StoreError> {
    diesel::sql_query(
        "INSERT INTO assignment_lease (held_until) VALUES (now() + $1 * interval '1 millisecond') \
         ON CONFLICT (singleton) DO UPDATE \
         SET held_until = GREATEST(assignment_lease.held_until, EXCLUDED.held_until), updated_at = now()",
    )
    .bind::<BigInt, _>(lease.as_millis() as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that no worker runs assignments any more (every worker left):
/// a server process starting later need not wait.
pub async fn release(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query("UPDATE assignment_lease SET held_until = LEAST(held_until, now()), updated_at = now()")
        .execute(conn)
        .await?;
    Ok(())
}

/// The highest assignment epoch any server process reserved (0 when none):
/// no epoch above it was ever issued.
pub async fn epochs_reserved(conn: &mut AsyncPgConnection) -> Result<u64, StoreError> {
    let reserved: i64 = diesel::select(sql::<BigInt>(
        "COALESCE((SELECT epochs_reserved FROM assignment_lease), 0)",
    ))
    .get_result(conn)
    .await?;
    Ok(reserved.max(0) as u64)
}

/// Reserves `count` more epochs for this process and returns the new
/// highest reserved one: the block is `(returned - count, returned]`, also
/// when other processes reserve at the same time.
pub async fn reserve_epochs(conn: &mut AsyncPgConnection, count: u64) -> Result<u64, StoreError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX).clamp(1, 1 << 40);
    let reserved: i64 = diesel::sql_query(
        "INSERT INTO assignment_lease (held_until, epochs_reserved) VALUES (now(), $1) \
         ON CONFLICT (singleton) DO UPDATE \
         SET epochs_reserved = assignment_lease.epochs_reserved + EXCLUDED.epochs_reserved \
         RETURNING epochs_reserved",
    )
    .bind::<BigInt, _>(count)
    .get_result::<Reserved>(conn)
    .await?
    .epochs_reserved;
    Ok(reserved.max(0) as u64)
}

#[derive(diesel::QueryableByName)]
struct Reserved {
    #[diesel(sql_type = BigInt)]
    epochs_reserved: i64,
}
