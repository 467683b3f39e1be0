//! Delivering the outbox: `outbox_deliveries` (the state of each (outbox
//! row, channel), made by a trigger when the outbox row is written) and
//! `notification_deliveries` (one row per attempt).
//!
//! A dispatcher [`claim`]s due deliveries in one statement (`FOR UPDATE SKIP
//! LOCKED`, so several dispatchers never take the same one), which counts
//! the attempt and moves the row's due time past a lease; it sends, then
//! [`finish`]es the attempt. A dispatcher that dies in between leaves the
//! row to become due again when the lease ends. The attempt count is the
//! fencing token: only the claim that set it records an outcome.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, QueryDsl, SelectableHelper,
    prelude::*,
    sql_types::{BigInt, Integer, Interval, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    schema::{incident_events, notification_deliveries, outbox_deliveries},
};

/// Timeline kind written when a notification is given up.
pub const EVENT_NOTIFICATION_GIVEN_UP: &str = "notification_given_up";

/// Attempt outcomes as stored.
pub const OUTCOME_DELIVERED: &str = "delivered";
pub const OUTCOME_RETRY: &str = "retry";
pub const OUTCOME_GIVEN_UP: &str = "given_up";

/// A delivery a dispatcher has claimed.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Claim {
    #[diesel(sql_type = BigInt)]
    pub outbox_id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub channel_id: Uuid,
    /// This attempt's number (1 for the first), the claim's fencing token.
    #[diesel(sql_type = Integer)]
    pub attempt: i32,
    /// When the delivery was first due: what the give-up time counts from.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

fn interval(duration: std::time::Duration) -> diesel::pg::data_types::PgInterval {
    diesel::pg::data_types::PgInterval::from_microseconds(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
}

/// Claims at most `limit` due deliveries, oldest due first, for `lease`:
/// each one's attempt is counted and it is not due again before the lease
/// ends. Rows another dispatcher holds locked are skipped.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    lease: std::time::Duration,
    limit: i64,
) -> Result<Vec<Claim>, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE outbox_deliveries d \
         SET attempts = d.attempts + 1, next_attempt_at = clock_timestamp() + $1 \
         FROM (SELECT outbox_id, channel_id FROM outbox_deliveries \
               WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= clock_timestamp() \
               ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) due \
         WHERE d.outbox_id = due.outbox_id AND d.channel_id = due.channel_id \
         RETURNING d.outbox_id, d.channel_id, d.attempts AS attempt, d.created_at",
    )
    .bind::<Interval, _>(interval(lease))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// What one attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// The far end's status, None when it did not answer.
    pub http_status: Option<i32>,
    /// Why it failed ("" when it was delivered).
    pub error: String,
    /// What the far end answered (at most 1 KiB; "" when it did not).
    pub reply: String,
    pub duration_ms: i64,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Due again after this long.
    Retry(std::time::Duration),
    /// No more attempts; the incident's timeline says so with this detail.
    GiveUp {
        incident_id: Uuid,
        detail: String,
    },
}

/// Records `attempt` of `claim` and what follows, in one transaction; false
/// when the claim was fenced (its lease ran out and another dispatcher
/// claimed the delivery since): the attempt is logged, the state left to
/// the newer claim.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    attempt: &Attempt,
    next: &Next,
) -> Result<bool, StoreError> {
    let (claim, attempt, next) = (claim.clone(), attempt.clone(), next.clone());
    conn.transaction(async move |conn| {
        let outcome = match next {
            Next::Delivered => OUTCOME_DELIVERED,
            Next::Retry(_) => OUTCOME_RETRY,
            Next::GiveUp { .. } => OUTCOME_GIVEN_UP,
        };
        diesel::insert_into(notification_deliveries::table)
            .values((
                notification_deliveries::outbox_id.eq(claim.outbox_id),
                notification_deliveries::channel_id.eq(claim.channel_id),
                notification_deliveries::attempt.eq(claim.attempt),
                notification_deliveries::at.eq(attempt.at),
                notification_deliveries::http_status.eq(attempt.http_status),
                notification_deliveries::error.eq(&attempt.error),
                notification_deliveries::reply.eq(&attempt.reply),
                notification_deliveries::duration_ms.eq(attempt.duration_ms),
                notification_deliveries::outcome.eq(outcome),
            ))
            .execute(conn)
            .await?;
        let row = outbox_deliveries::table
            .find((claim.outbox_id, claim.channel_id))
            .filter(outbox_deliveries::attempts.eq(claim.attempt));
        let updated = match &next {
            Next::Delivered => {
                diesel::update(row)
                    .set((
                        outbox_deliveries::delivered_at.eq(diesel::dsl::now),
                        outbox_deliveries::last_error.eq(""),
                    ))
                    .execute(conn)
                    .await?
            }
            Next::Retry(delay) => {
                diesel::sql_query(
                    "UPDATE outbox_deliveries SET next_attempt_at = clock_timestamp() + $1, last_error = $2 \
                     WHERE outbox_id = $3 AND channel_id = $4 AND attempts = $5",
                )
                .bind::<Interval, _>(interval(*delay))
                .bind::<diesel::sql_types::Text, _>(&attempt.error)
                .bind::<BigInt, _>(claim.outbox_id)
                .bind::<SqlUuid, _>(claim.channel_id)
                .bind::<Integer, _>(claim.attempt)
                .execute(conn)
                .await?
            }
            Next::GiveUp { .. } => {
                diesel::update(row)
                    .set((
                        outbox_deliveries::given_up_at.eq(diesel::dsl::now),
                        outbox_deliveries::last_error.eq(&attempt.error),
                    ))
                    .execute(conn)
                    .await?
            }
        };
        if updated == 0 {
            return Ok(false);
        }
        if let Next::GiveUp { incident_id, detail } = next {
            diesel::insert_into(incident_events::table)
                .values((
                    incident_events::incident_id.eq(incident_id),
                    incident_events::at.eq(attempt.at),
                    incident_events::kind.eq(EVENT_NOTIFICATION_GIVEN_UP),
                    incident_events::detail.eq(detail),
                ))
                .execute(conn)
                .await?;
        }
        Ok(true)
    })
    .await
}

/// The state of one (outbox row, channel).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = outbox_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct DeliveryRow {
    pub outbox_id: i64,
    pub channel_id: Uuid,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
}

/// An outbox row's deliveries, by channel.
pub async fn deliveries(conn: &mut AsyncPgConnection, outbox_id: i64) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(outbox_deliveries::table
        .filter(outbox_deliveries::outbox_id.eq(outbox_id))
        .order(outbox_deliveries::channel_id)
        .select(DeliveryRow::as_select())
        .load(conn)
        .await?)
}

/// One logged attempt.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = notification_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct AttemptRow {
    pub id: i64,
    pub outbox_id: i64,
    pub channel_id: Uuid,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub http_status: Option<i32>,
    pub error: String,
    pub duration_ms: i64,
    pub outcome: String,
    pub reply: String,
}

/// An outbox row's attempts, oldest first.
pub async fn attempts(conn: &mut AsyncPgConnection, outbox_id: i64) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(notification_deliveries::table
        .filter(notification_deliveries::outbox_id.eq(outbox_id))
        .order(notification_deliveries::id)
        .select(AttemptRow::as_select())
        .load(conn)
        .await?)
}
