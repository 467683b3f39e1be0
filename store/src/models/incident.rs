//! The `incidents` table with its timeline (`incident_events`) and the
//! notification outbox: what the alert evaluator opens and resolves (in its
//! fenced flush, `alert_state::flush`), and what the server lists,
//! acknowledges and resolves by hand.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    schema::{alert_rules, incident_events, incidents, notification_outbox},
};

/// Causes as stored.
pub const CAUSE_DOWN: &str = "down";
pub const CAUSE_NO_DATA: &str = "no_data";

/// Who resolved an incident when the job recovered.
pub const RESOLVED_BY_EVALUATOR: &str = "evaluator";

/// A stored incident.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = incidents, check_for_backend(diesel::pg::Pg))]
pub struct IncidentRow {
    pub id: Uuid,
    /// None once the rule was deleted.
    pub rule_id: Option<Uuid>,
    pub rule_name: String,
    pub job_id: Uuid,
    pub job_name: String,
    pub severity: String,
    /// [`CAUSE_DOWN`] or [`CAUSE_NO_DATA`].
    pub cause: String,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The acknowledging API token's name.
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// [`RESOLVED_BY_EVALUATOR`] or an API token's name.
    pub resolved_by: Option<String>,
    pub failing_locations: Vec<Option<String>>,
    /// A [`FirstFailure`] in JSON (None for no-data incidents).
    pub first_failure: Option<serde_json::Value>,
    /// When the check that crossed the threshold ended.
    pub detected_check_end: Option<DateTime<Utc>>,
    pub silenced: bool,
    pub flapping: bool,
    pub updated_at: DateTime<Utc>,
}

/// The first failed result of an episode, as stored in
/// `incidents.first_failure`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FirstFailure {
    pub check_id: String,
    pub worker_id: String,
    pub location: String,
    pub start_time: DateTime<Utc>,
    /// The `CheckOutcome` name, e.g. "CHECK_OUTCOME_TIMEOUT".
    pub outcome: String,
    /// 0: no HTTP status.
    pub status_code: u32,
    pub error: String,
}

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = incident_events, check_for_backend(diesel::pg::Pg))]
pub struct IncidentEventRow {
    pub id: i64,
    pub incident_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub location: String,
    pub detail: String,
    pub actor: String,
}

/// A timeline entry to write.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = incident_events, check_for_backend(diesel::pg::Pg))]
pub struct NewIncidentEvent {
    pub incident_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub location: String,
    pub detail: String,
    pub actor: String,
}

/// Of `ids`, the incidents' acknowledgement and resolution times (the
/// evaluator learns so what people did through the API).
pub async fn human_marks(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>, StoreError> {
    Ok(incidents::table
        .filter(incidents::id.eq_any(ids))
        .select((incidents::id, incidents::acknowledged_at, incidents::resolved_at))
        .load(conn)
        .await?)
}

/// One incident (None: unknown id).
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<IncidentRow>, StoreError> {
    Ok(incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// An incident's timeline, oldest first.
pub async fn timeline(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<IncidentEventRow>, StoreError> {
    Ok(incident_events::table
        .filter(incident_events::incident_id.eq(id))
        .order(incident_events::id)
        .select(IncidentEventRow::as_select())
        .load(conn)
        .await?)
}

/// Timeline kinds and outbox events the API writes.
pub const EVENT_ACKNOWLEDGED: &str = "acknowledged";
pub const EVENT_RESOLVED: &str = "resolved";

/// The outbox dedup key of `event` for `incident`: one notification per
/// incident and event, whoever (the API or the evaluator) decides it.
pub fn dedup_key(incident: Uuid, event: &str) -> String {
    format!("{incident}:{event}")
}

/// A notification intent to write.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = notification_outbox, check_for_backend(diesel::pg::Pg))]
pub struct NewOutboxEntry {
    pub dedup_key: String,
    pub incident_id: Uuid,
    pub event: String,
    pub channel_ids: Vec<Option<Uuid>>,
}

/// A stored notification intent.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = notification_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: i64,
    pub dedup_key: String,
    pub incident_id: Uuid,
    pub event: String,
    pub channel_ids: Vec<Option<Uuid>>,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

/// Writes `entry` unless its dedup key is already in the outbox; true when
/// it was written.
pub async fn enqueue(conn: &mut AsyncPgConnection, entry: &NewOutboxEntry) -> Result<bool, StoreError> {
    let written = diesel::insert_into(notification_outbox::table)
        .values(entry)
        .on_conflict(notification_outbox::dedup_key)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(written > 0)
}

/// An incident's outbox rows, oldest first.
pub async fn outbox(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(notification_outbox::table
        .filter(notification_outbox::incident_id.eq(id))
        .order(notification_outbox::id)
        .select(OutboxRow::as_select())
        .load(conn)
        .await?)
}

/// Which incidents a listing returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only open (unresolved) ones, or only resolved ones.
    pub resolved: Option<bool>,
    /// Only open ones that are (or are not) acknowledged.
    pub acknowledged: Option<bool>,
    pub job_id: Option<Uuid>,
    pub rule_id: Option<Uuid>,
}

/// Where an incident listing continues: open ones first, then by opening
/// time and id, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentCursor {
    pub open: bool,
    pub opened_at: DateTime<Utc>,
    pub id: Uuid,
}

impl IncidentCursor {
    /// The cursor just after `row`.
    pub fn after(row: &IncidentRow) -> IncidentCursor {
        IncidentCursor {
            open: row.resolved_at.is_none(),
            opened_at: row.opened_at,
            id: row.id,
        }
    }
}

fn filtered(filter: &IncidentFilter) -> incidents::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = incidents::table.into_boxed();
    match filter.resolved {
        Some(true) => query = query.filter(incidents::resolved_at.is_not_null()),
        Some(false) => query = query.filter(incidents::resolved_at.is_null()),
        None => {}
    }
    match filter.acknowledged {
        Some(true) => query = query.filter(incidents::acknowledged_at.is_not_null()),
        Some(false) => query = query.filter(incidents::acknowledged_at.is_null()),
        None => {}
    }
    if let Some(job_id) = filter.job_id {
        query = query.filter(incidents::job_id.eq(job_id));
    }
    if let Some(rule_id) = filter.rule_id {
        query = query.filter(incidents::rule_id.eq(rule_id));
    }
    query
}

/// At most `limit` incidents matching `filter` after `after`: open ones
/// first, then by opening time, newest first (keyset paging).
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &IncidentFilter,
    after: Option<IncidentCursor>,
    limit: i64,
) -> Result<Vec<IncidentRow>, StoreError> {
    let mut query = filtered(filter);
    if let Some(after) = after {
        let older = incidents::opened_at
            .lt(after.opened_at)
            .or(incidents::opened_at.eq(after.opened_at).and(incidents::id.lt(after.id)));
        query = if after.open {
            query.filter(
                incidents::resolved_at
                    .is_not_null()
                    .or(incidents::resolved_at.is_null().and(older)),
            )
        } else {
            query.filter(incidents::resolved_at.is_not_null().and(older))
        };
    }
    Ok(query
        .order((
            incidents::resolved_at.is_null().desc(),
            incidents::opened_at.desc(),
            incidents::id.desc(),
        ))
        .limit(limit)
        .select(IncidentRow::as_select())
        .load(conn)
        .await?)
}

/// How many incidents match `filter`.
pub async fn count(conn: &mut AsyncPgConnection, filter: &IncidentFilter) -> Result<i64, StoreError> {
    Ok(filtered(filter).count().get_result(conn).await?)
}

/// What acknowledging or resolving by hand found.
#[derive(Debug, Clone, PartialEq)]
pub enum Marked {
    /// Done now: the incident as it is after.
    Changed(IncidentRow),
    /// It already was: nothing written.
    Unchanged(IncidentRow),
    /// Acknowledging a resolved incident: nothing written.
    Resolved(IncidentRow),
}

/// Locks one incident for the rest of the transaction.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> Result<IncidentRow, StoreError> {
    Ok(incidents::table
        .find(id)
        .select(IncidentRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}

/// The channels and resolve setting of an incident's rule (None: the rule
/// is gone).
async fn rule_settings(
    conn: &mut AsyncPgConnection,
    rule_id: Option<Uuid>,
) -> Result<Option<(Vec<Option<Uuid>>, bool)>, StoreError> {
    let Some(rule_id) = rule_id else {
        return Ok(None);
    };
    Ok(alert_rules::table
        .find(rule_id)
        .select((alert_rules::channel_ids, alert_rules::notify_on_resolve))
        .get_result(conn)
        .await
        .optional()?)
}

/// Acknowledges an open, unacknowledged incident as `actor`, in one
/// transaction: the mark, an "acknowledged" timeline event with `comment`,
/// and the notification intent (dedup key `{id}:acknowledged`, to the
/// rule's channels). [`StoreError::NotFound`] for an unknown id.
pub async fn acknowledge(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    actor: &str,
    comment: &str,
) -> Result<Marked, StoreError> {
    let (actor, comment) = (actor.to_owned(), comment.to_owned());
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?;
        if current.resolved_at.is_some() {
            return Ok(Marked::Resolved(current));
        }
        if current.acknowledged_at.is_some() {
            return Ok(Marked::Unchanged(current));
        }
        let row: IncidentRow = diesel::update(incidents::table.find(id))
            .set((
                incidents::acknowledged_at.eq(diesel::dsl::now),
                incidents::acknowledged_by.eq(&actor),
                incidents::updated_at.eq(diesel::dsl::now),
            ))
            .returning(IncidentRow::as_returning())
            .get_result(conn)
            .await?;
        let at = row.acknowledged_at.unwrap_or_else(Utc::now);
        record(conn, id, at, EVENT_ACKNOWLEDGED, &comment, &actor).await?;
        let channel_ids = rule_settings(conn, row.rule_id)
            .await?
            .map(|(channels, _)| channels)
            .unwrap_or_default();
        enqueue(
            conn,
            &NewOutboxEntry {
                dedup_key: dedup_key(id, EVENT_ACKNOWLEDGED),
                incident_id: id,
                event: EVENT_ACKNOWLEDGED.into(),
                channel_ids,
            },
        )
        .await?;
        Ok(Marked::Changed(row))
    })
    .await
}

/// Resolves an open incident by hand as `actor`, in one transaction: the
/// mark, a "resolved" timeline event with `comment`, and (when the rule
/// notifies on resolve, or is gone) the notification intent with dedup key
/// `{id}:resolved`, the key the evaluator uses too, so at most one resolve
/// notification ever goes out. A resolved incident is
/// [`Marked::Unchanged`].
pub async fn resolve(conn: &mut AsyncPgConnection, id: Uuid, actor: &str, comment: &str) -> Result<Marked, StoreError> {
    let (actor, comment) = (actor.to_owned(), comment.to_owned());
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?;
        if current.resolved_at.is_some() {
            return Ok(Marked::Unchanged(current));
        }
        let row: IncidentRow = diesel::update(incidents::table.find(id).filter(incidents::resolved_at.is_null()))
            .set((
                incidents::resolved_at.eq(diesel::dsl::now),
                incidents::resolved_by.eq(&actor),
                incidents::updated_at.eq(diesel::dsl::now),
            ))
            .returning(IncidentRow::as_returning())
            .get_result(conn)
            .await?;
        let at = row.resolved_at.unwrap_or_else(Utc::now);
        record(conn, id, at, EVENT_RESOLVED, &comment, &actor).await?;
        let (channel_ids, notify) = rule_settings(conn, row.rule_id).await?.unwrap_or((Vec::new(), true));
        if notify {
            enqueue(
                conn,
                &NewOutboxEntry {
                    dedup_key: dedup_key(id, EVENT_RESOLVED),
                    incident_id: id,
                    event: EVENT_RESOLVED.into(),
                    channel_ids,
                },
            )
            .await?;
        }
        Ok(Marked::Changed(row))
    })
    .await
}

/// Appends one event to an incident's timeline.
async fn record(
    conn: &mut AsyncPgConnection,
    incident_id: Uuid,
    at: DateTime<Utc>,
    kind: &str,
    detail: &str,
    actor: &str,
) -> Result<(), StoreError> {
    diesel::insert_into(incident_events::table)
        .values(NewIncidentEvent {
            incident_id,
            at,
            kind: kind.to_owned(),
            location: String::new(),
            detail: detail.to_owned(),
            actor: actor.to_owned(),
        })
        .execute(conn)
        .await?;
    Ok(())
}
