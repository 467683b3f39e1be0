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
//!
//! Read side: [`log`] pages the deliveries of an incident or a channel (the
//! API's delivery history, with [`attempts_of`] for the page's attempts) and
//! [`channel_health`] sums a page of channels' recent attempts up.

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

/// Which deliveries the delivery log lists (at least one is set by the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub incident_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
}

/// Where a page of the delivery log ends: the log is ordered by outbox id,
/// newest first, then channel id. Also the key of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogCursor {
    pub outbox_id: i64,
    pub channel_id: Uuid,
}

/// One delivery as the log shows it: its state, the outbox row's event and
/// incident, and the channel's name and kind (never its settings).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct LogEntry {
    pub outbox_id: i64,
    pub channel_id: Uuid,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    pub batch_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub event: String,
    pub dedup_key: String,
    pub incident_id: Uuid,
    pub job_name: String,
    pub channel_name: String,
    pub channel_kind: String,
}

impl LogEntry {
    /// The cursor a page ending with this entry continues from.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            outbox_id: self.outbox_id,
            channel_id: self.channel_id,
        }
    }
}

macro_rules! log_query {
    ($filter:expr) => {{
        use crate::schema::{incidents, notification_channels, notification_outbox};
        let filter: LogFilter = $filter;
        let mut query = outbox_deliveries::table
            .inner_join(notification_outbox::table.inner_join(incidents::table))
            .inner_join(notification_channels::table)
            .into_boxed();
        if let Some(incident_id) = filter.incident_id {
            query = query.filter(notification_outbox::incident_id.eq(incident_id));
        }
        if let Some(channel_id) = filter.channel_id {
            query = query.filter(outbox_deliveries::channel_id.eq(channel_id));
        }
        query
    }};
}

/// At most `limit` deliveries matching `filter` after `after`, newest
/// outbox row first (one row's channels by id).
pub async fn log(
    conn: &mut AsyncPgConnection,
    filter: LogFilter,
    after: Option<LogCursor>,
    limit: i64,
) -> Result<Vec<LogEntry>, StoreError> {
    use crate::schema::{incidents, notification_channels, notification_outbox};
    let mut query = log_query!(filter);
    if let Some(after) = after {
        query = query.filter(
            outbox_deliveries::outbox_id
                .lt(after.outbox_id)
                .or(outbox_deliveries::outbox_id
                    .eq(after.outbox_id)
                    .and(outbox_deliveries::channel_id.gt(after.channel_id))),
        );
    }
    Ok(query
        .order((outbox_deliveries::outbox_id.desc(), outbox_deliveries::channel_id.asc()))
        .limit(limit)
        .select((
            outbox_deliveries::outbox_id,
            outbox_deliveries::channel_id,
            outbox_deliveries::attempts,
            outbox_deliveries::next_attempt_at,
            outbox_deliveries::delivered_at,
            outbox_deliveries::given_up_at,
            outbox_deliveries::batch_id,
            outbox_deliveries::created_at,
            notification_outbox::event,
            notification_outbox::dedup_key,
            notification_outbox::incident_id,
            incidents::job_name,
            notification_channels::name,
            notification_channels::kind,
        ))
        .load(conn)
        .await?)
}

/// How many deliveries match `filter`.
pub async fn log_count(conn: &mut AsyncPgConnection, filter: LogFilter) -> Result<i64, StoreError> {
    Ok(log_query!(filter).count().get_result(conn).await?)
}

/// The attempts of the deliveries `keys` ((outbox id, channel id) pairs),
/// oldest first: one query for a page of the log.
pub async fn attempts_of(conn: &mut AsyncPgConnection, keys: &[LogCursor]) -> Result<Vec<AttemptRow>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let outbox_ids: Vec<i64> = keys.iter().map(|key| key.outbox_id).collect();
    let channel_ids: Vec<Uuid> = keys.iter().map(|key| key.channel_id).collect();
    // Pairs: unnest the two arrays side by side and join on both columns.
    Ok(diesel::sql_query(
        "SELECT d.id, d.outbox_id, d.channel_id, d.attempt, d.at, d.http_status, d.error, d.duration_ms, \
                d.outcome, d.reply \
         FROM notification_deliveries d \
         JOIN unnest($1::bigint[], $2::uuid[]) AS k(outbox_id, channel_id) \
           ON d.outbox_id = k.outbox_id AND d.channel_id = k.channel_id \
         ORDER BY d.id",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(outbox_ids)
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(channel_ids)
    .load::<AttemptByName>(conn)
    .await?
    .into_iter()
    .map(AttemptRow::from)
    .collect())
}

/// [`AttemptRow`] as a raw query reads it.
#[derive(QueryableByName)]
struct AttemptByName {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    outbox_id: i64,
    #[diesel(sql_type = SqlUuid)]
    channel_id: Uuid,
    #[diesel(sql_type = Integer)]
    attempt: i32,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
    http_status: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    error: String,
    #[diesel(sql_type = BigInt)]
    duration_ms: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    reply: String,
}

impl From<AttemptByName> for AttemptRow {
    fn from(row: AttemptByName) -> Self {
        AttemptRow {
            id: row.id,
            outbox_id: row.outbox_id,
            channel_id: row.channel_id,
            attempt: row.attempt,
            at: row.at,
            http_status: row.http_status,
            error: row.error,
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            reply: row.reply,
        }
    }
}

/// Consecutive failed attempts at which a channel is unhealthy.
pub const UNHEALTHY_AFTER_FAILURES: i64 = 3;

/// A channel's health, from its delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelHealth {
    /// Its latest attempt (by the order attempts were recorded).
    pub last_attempt: Option<AttemptRow>,
    /// Failed attempts since the last delivered one (all, when none was).
    pub consecutive_failures: i64,
    /// Whether one of those failures gave its delivery up.
    pub given_up_since_delivered: bool,
}

impl ChannelHealth {
    /// False once [`UNHEALTHY_AFTER_FAILURES`] attempts in a row failed or a
    /// delivery was given up since the last delivered attempt.
    pub fn healthy(&self) -> bool {
        self.consecutive_failures < UNHEALTHY_AFTER_FAILURES && !self.given_up_since_delivered
    }
}

#[derive(QueryableByName)]
struct HealthByName {
    #[diesel(sql_type = SqlUuid)]
    channel_id: Uuid,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    given_up: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    outbox_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
    attempt: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
    http_status: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    error: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    duration_ms: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    outcome: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    reply: Option<String>,
}

/// The health of each of `channel_ids` in one query (a page of channels):
/// per channel, its latest attempt and the failures after its latest
/// delivered attempt, both read backwards along
/// `notification_deliveries_channel_idx`. Channels without attempts are
/// answered with the default (healthy).
pub async fn channel_health(
    conn: &mut AsyncPgConnection,
    channel_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, ChannelHealth>, StoreError> {
    if channel_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<HealthByName> = diesel::sql_query(
        "SELECT c.id AS channel_id, \
                coalesce(f.failures, 0) AS failures, coalesce(f.given_up, false) AS given_up, \
                l.id, l.outbox_id, l.attempt, l.at, l.http_status, l.error, l.duration_ms, l.outcome, l.reply \
         FROM unnest($1::uuid[]) AS c(id) \
         LEFT JOIN LATERAL (SELECT d.id FROM notification_deliveries d \
                            WHERE d.channel_id = c.id AND d.outcome = 'delivered' \
                            ORDER BY d.id DESC LIMIT 1) ok ON true \
         LEFT JOIN LATERAL (SELECT count(*) AS failures, bool_or(d.outcome = 'given_up') AS given_up \
                            FROM notification_deliveries d \
                            WHERE d.channel_id = c.id AND d.id > coalesce(ok.id, 0)) f ON true \
         LEFT JOIN LATERAL (SELECT d.id, d.outbox_id, d.attempt, d.at, d.http_status, d.error, d.duration_ms, \
                                   d.outcome, d.reply FROM notification_deliveries d \
                            WHERE d.channel_id = c.id ORDER BY d.id DESC LIMIT 1) l ON true",
    )
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(channel_ids)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let last_attempt = match (row.id, row.outbox_id, row.attempt, row.at, row.duration_ms, row.outcome) {
                (Some(id), Some(outbox_id), Some(attempt), Some(at), Some(duration_ms), Some(outcome)) => {
                    Some(AttemptRow {
                        id,
                        outbox_id,
                        channel_id: row.channel_id,
                        attempt,
                        at,
                        http_status: row.http_status,
                        error: row.error.unwrap_or_default(),
                        duration_ms,
                        outcome,
                        reply: row.reply.unwrap_or_default(),
                    })
                }
                _ => None,
            };
            (
                row.channel_id,
                ChannelHealth {
                    last_attempt,
                    consecutive_failures: row.failures,
                    given_up_since_delivered: row.given_up,
                },
            )
        })
        .collect())
}
