//! Delivering the outbox: `outbox_deliveries` (the state of each (outbox
//! row, channel), made by a trigger when the outbox row is written) and
//! `notification_deliveries` (one row per attempt).
//!
//! A dispatcher [`claim`]s what is due (it locks the channels with `FOR
//! UPDATE SKIP LOCKED`, so several dispatchers never take the same
//! delivery), which counts the attempt and moves the rows' due time past a
//! lease; it sends, then [`finish`]es the attempt. A dispatcher that dies
//! in between leaves the rows to become due again when the lease ends. The
//! attempt count is the fencing token: only the claim that set it records
//! an outcome. A channel with a `group_wait` gets its deliveries in
//! batches: one message for all of them, attempt after attempt.
//!
//! Read side: [`log`] pages the deliveries of an incident or a channel (the
//! API's delivery history, with [`attempts_of`] for the page's attempts) and
//! [`channel_health`] sums a page of channels' recent attempts up.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, QueryDsl, SelectableHelper,
    prelude::*,
    sql_types::{Array, BigInt, Bool, Integer, Interval, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    schema::{notification_deliveries, outbox_deliveries},
};

/// Timeline kind written when a notification is given up.
pub const EVENT_NOTIFICATION_GIVEN_UP: &str = "notification_given_up";

/// Attempt outcomes as stored.
pub const OUTCOME_DELIVERED: &str = "delivered";
pub const OUTCOME_RETRY: &str = "retry";
pub const OUTCOME_GIVEN_UP: &str = "given_up";

/// An outbox row in a claim.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Member {
    #[diesel(sql_type = BigInt)]
    pub outbox_id: i64,
    /// When the delivery was first due: what the give-up time counts from.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// One message a dispatcher has claimed: a single delivery, or a batch of
/// a channel's deliveries sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub channel_id: Uuid,
    /// Set when the members are a batch (a channel with a `group_wait`);
    /// every attempt of a batch sends the same members.
    pub batch_id: Option<Uuid>,
    /// This attempt's number (1 for the first), the claim's fencing token.
    pub attempt: i32,
    /// Oldest first (by outbox id); at least one.
    pub members: Vec<Member>,
}

impl Claim {
    /// When the first member was first due.
    pub fn first_due(&self) -> DateTime<Utc> {
        self.members
            .iter()
            .map(|member| member.created_at)
            .min()
            .unwrap_or_else(Utc::now)
    }

    /// The members' outbox ids.
    pub fn outbox_ids(&self) -> Vec<i64> {
        self.members.iter().map(|member| member.outbox_id).collect()
    }
}

/// Most deliveries one batch sends together.
pub const MAX_BATCH: i64 = 1000;

fn interval(duration: std::time::Duration) -> diesel::pg::data_types::PgInterval {
    diesel::pg::data_types::PgInterval::from_microseconds(i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
}

/// A channel with something due, as [`claim`] locks it.
#[derive(QueryableByName)]
struct DueChannel {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    /// Its oldest ungrouped delivery has waited out the `group_wait`.
    #[diesel(sql_type = Bool)]
    group_ready: bool,
}

/// A claimed delivery row.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    outbox_id: i64,
    #[diesel(sql_type = SqlUuid)]
    channel_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    batch_id: Option<Uuid>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// Not delivered and not given up (on the row being updated, so a row a
/// concurrent `finish` just closed is re-checked and left alone).
const OPEN: &str = "d.delivered_at IS NULL AND d.given_up_at IS NULL";

/// Claims what is due for at most `channels` channels, for `lease`: each
/// claimed delivery's attempt is counted and it is not due again before
/// the lease ends.
///
/// Channels are locked (`FOR UPDATE SKIP LOCKED`) for the transaction, so
/// one dispatcher at a time claims a channel's deliveries and batches are
/// never split between dispatchers. What is claimed for a locked channel:
/// - single deliveries due (a channel without `group_wait`, or a delivery
///   first tried before the channel had one): one claim each, at most
///   `channels` in all;
/// - batches due again (a retry, or a lease that ran out): the whole batch;
/// - once the channel's oldest ungrouped delivery has been due for its
///   `group_wait`, every ungrouped delivery due by now (at most
///   [`MAX_BATCH`]) becomes one new batch.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    lease: std::time::Duration,
    channels: i64,
) -> Result<Vec<Claim>, StoreError> {
    conn.transaction(async move |conn| {
        let due: Vec<DueChannel> = diesel::sql_query(format!(
            "SELECT c.id, EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.channel_id = c.id AND {OPEN} \
                 AND d.attempts = 0 AND d.batch_id IS NULL AND c.group_wait_ms > 0 \
                 AND d.next_attempt_at + c.group_wait_ms * interval '1 millisecond' <= clock_timestamp()) AS group_ready \
             FROM notification_channels c \
             WHERE EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.channel_id = c.id AND {OPEN} \
                 AND d.next_attempt_at + CASE WHEN d.attempts = 0 AND d.batch_id IS NULL \
                     THEN c.group_wait_ms * interval '1 millisecond' ELSE interval '0' END <= clock_timestamp()) \
             ORDER BY c.id LIMIT $1 FOR UPDATE OF c SKIP LOCKED"
        ))
        .bind::<BigInt, _>(channels)
        .load(conn)
        .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = due.iter().map(|channel| channel.id).collect();
        // Singles: each claimed alone.
        let singles: Vec<Claimed> = diesel::sql_query(format!(
            "UPDATE outbox_deliveries d SET attempts = d.attempts + 1, next_attempt_at = clock_timestamp() + $1 \
             FROM (SELECT x.outbox_id, x.channel_id FROM outbox_deliveries x \
                   JOIN notification_channels c ON c.id = x.channel_id \
                   WHERE x.channel_id = ANY($2) AND x.delivered_at IS NULL AND x.given_up_at IS NULL \
                     AND x.batch_id IS NULL AND x.next_attempt_at <= clock_timestamp() \
                     AND (x.attempts > 0 OR c.group_wait_ms = 0) \
                   ORDER BY x.next_attempt_at LIMIT $3) due \
             WHERE d.outbox_id = due.outbox_id AND d.channel_id = due.channel_id AND {OPEN} AND d.batch_id IS NULL \
             RETURNING d.outbox_id, d.channel_id, d.batch_id, d.attempts, d.created_at"
        ))
        .bind::<Interval, _>(interval(lease))
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<BigInt, _>(channels)
        .load(conn)
        .await?;
        // Batches due again: all their members.
        let mut batched: Vec<Claimed> = diesel::sql_query(format!(
            "UPDATE outbox_deliveries d SET attempts = d.attempts + 1, next_attempt_at = clock_timestamp() + $1 \
             WHERE d.channel_id = ANY($2) AND {OPEN} AND d.batch_id IN \
                 (SELECT x.batch_id FROM outbox_deliveries x WHERE x.channel_id = ANY($2) AND x.batch_id IS NOT NULL \
                  AND x.delivered_at IS NULL AND x.given_up_at IS NULL AND x.next_attempt_at <= clock_timestamp()) \
             RETURNING d.outbox_id, d.channel_id, d.batch_id, d.attempts, d.created_at"
        ))
        .bind::<Interval, _>(interval(lease))
        .bind::<Array<SqlUuid>, _>(&ids)
        .load(conn)
        .await?;
        // New batches.
        for channel in due.iter().filter(|channel| channel.group_ready) {
            let formed: Vec<Claimed> = diesel::sql_query(format!(
                "UPDATE outbox_deliveries d SET attempts = 1, batch_id = $1, next_attempt_at = clock_timestamp() + $2 \
                 FROM (SELECT x.outbox_id FROM outbox_deliveries x WHERE x.channel_id = $3 \
                       AND x.delivered_at IS NULL AND x.given_up_at IS NULL AND x.attempts = 0 AND x.batch_id IS NULL \
                       AND x.next_attempt_at <= clock_timestamp() ORDER BY x.next_attempt_at, x.outbox_id LIMIT $4) due \
                 WHERE d.channel_id = $3 AND d.outbox_id = due.outbox_id AND {OPEN} AND d.attempts = 0 AND d.batch_id IS NULL \
                 RETURNING d.outbox_id, d.channel_id, d.batch_id, d.attempts, d.created_at"
            ))
            .bind::<SqlUuid, _>(Uuid::now_v7())
            .bind::<Interval, _>(interval(lease))
            .bind::<SqlUuid, _>(channel.id)
            .bind::<BigInt, _>(MAX_BATCH)
            .load(conn)
            .await?;
            batched.extend(formed);
        }
        let mut claims: Vec<Claim> = singles
            .into_iter()
            .map(|row| Claim {
                channel_id: row.channel_id,
                batch_id: None,
                attempt: row.attempts,
                members: vec![Member {
                    outbox_id: row.outbox_id,
                    created_at: row.created_at,
                }],
            })
            .collect();
        let mut batches: std::collections::BTreeMap<(Uuid, Uuid, i32), Vec<Member>> = Default::default();
        for row in batched {
            let batch_id = row.batch_id.expect("batched rows carry their batch");
            batches
                .entry((batch_id, row.channel_id, row.attempts))
                .or_default()
                .push(Member {
                    outbox_id: row.outbox_id,
                    created_at: row.created_at,
                });
        }
        for ((batch_id, channel_id, attempt), mut members) in batches {
            members.sort_by_key(|member| member.outbox_id);
            claims.push(Claim {
                channel_id,
                batch_id: Some(batch_id),
                attempt,
                members,
            });
        }
        Ok(claims)
    })
    .await
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
    /// No more attempts; the timeline of every member's incident says so
    /// with this detail.
    GiveUp {
        detail: String,
    },
}

/// Records `attempt` of `claim` (in every member's log) and what follows,
/// in one transaction; false when the claim was fenced (its lease ran out
/// and another dispatcher claimed the delivery since): the attempt is
/// logged, the state left to the newer claim.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    attempt: &Attempt,
    next: &Next,
) -> Result<bool, StoreError> {
    Ok(finish_all(conn, &[(claim, attempt, next)]).await?[0])
}

/// [`finish`] of several claims in one transaction (one commit): whether
/// each was recorded, in order. Fails whole.
pub async fn finish_all(
    conn: &mut AsyncPgConnection,
    finishes: &[(&Claim, &Attempt, &Next)],
) -> Result<Vec<bool>, StoreError> {
    let finishes: Vec<(Claim, Attempt, Next)> = finishes
        .iter()
        .map(|(claim, attempt, next)| ((*claim).clone(), (*attempt).clone(), (*next).clone()))
        .collect();
    conn.transaction(async move |conn| {
        let mut recorded = Vec::with_capacity(finishes.len());
        for (claim, attempt, next) in finishes {
            recorded.push(finish_in(conn, claim, attempt, next).await?);
        }
        Ok(recorded)
    })
    .await
}

/// [`finish`] inside the caller's transaction.
async fn finish_in(
    conn: &mut AsyncPgConnection,
    claim: Claim,
    attempt: Attempt,
    next: Next,
) -> Result<bool, StoreError> {
    let outcome = match next {
        Next::Delivered => OUTCOME_DELIVERED,
        Next::Retry(_) => OUTCOME_RETRY,
        Next::GiveUp { .. } => OUTCOME_GIVEN_UP,
    };
    let outbox_ids = claim.outbox_ids();
    let logged: Vec<_> = outbox_ids
        .iter()
        .map(|outbox_id| {
            (
                notification_deliveries::outbox_id.eq(*outbox_id),
                notification_deliveries::channel_id.eq(claim.channel_id),
                notification_deliveries::attempt.eq(claim.attempt),
                notification_deliveries::at.eq(attempt.at),
                notification_deliveries::http_status.eq(attempt.http_status),
                notification_deliveries::error.eq(&attempt.error),
                notification_deliveries::reply.eq(&attempt.reply),
                notification_deliveries::duration_ms.eq(attempt.duration_ms),
                notification_deliveries::outcome.eq(outcome),
            )
        })
        .collect();
    diesel::insert_into(notification_deliveries::table)
        .values(logged)
        .execute(conn)
        .await?;
    // The claim's rows, still at its attempt.
    let (next_attempt_in, delivered, given_up) = match &next {
        Next::Delivered => (None, true, false),
        Next::Retry(delay) => (Some(interval(*delay)), false, false),
        Next::GiveUp { .. } => (None, false, true),
    };
    let updated = diesel::sql_query(
        "UPDATE outbox_deliveries SET \
             next_attempt_at = COALESCE(clock_timestamp() + $1, next_attempt_at), \
             delivered_at = CASE WHEN $2 THEN now() END, \
             given_up_at = CASE WHEN $3 THEN now() END, \
             last_error = $4 \
         WHERE channel_id = $5 AND attempts = $6 AND delivered_at IS NULL AND given_up_at IS NULL \
           AND (CASE WHEN $7::uuid IS NULL THEN batch_id IS NULL AND outbox_id = ANY($8) ELSE batch_id = $7 END)",
    )
    .bind::<Nullable<Interval>, _>(next_attempt_in)
    .bind::<Bool, _>(delivered)
    .bind::<Bool, _>(given_up)
    .bind::<Text, _>(if delivered { "" } else { attempt.error.as_str() })
    .bind::<SqlUuid, _>(claim.channel_id)
    .bind::<Integer, _>(claim.attempt)
    .bind::<Nullable<SqlUuid>, _>(claim.batch_id)
    .bind::<Array<BigInt>, _>(&outbox_ids)
    .execute(conn)
    .await?;
    if updated == 0 {
        return Ok(false);
    }
    if let Next::GiveUp { detail } = next {
        diesel::sql_query(
            "INSERT INTO incident_events (incident_id, at, kind, detail) \
             SELECT DISTINCT o.incident_id, $1, $2, $3 FROM notification_outbox o WHERE o.id = ANY($4)",
        )
        .bind::<Timestamptz, _>(attempt.at)
        .bind::<Text, _>(EVENT_NOTIFICATION_GIVEN_UP)
        .bind::<Text, _>(&detail)
        .bind::<Array<BigInt>, _>(&outbox_ids)
        .execute(conn)
        .await?;
    }
    Ok(true)
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
    /// The batch it was sent in (a channel with a `group_wait`).
    pub batch_id: Option<Uuid>,
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
