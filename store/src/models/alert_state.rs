//! The `alert_state` table (the evaluator's state per (rule, job), as JSON
//! the evaluator defines) and the evaluator's flush: its state, the
//! incidents it opens and resolves, their timeline and the notification
//! outbox, written in one transaction fenced on, and storing, its consumer
//! group's offsets ([`super::consumer_offsets`]). A crash, a replay or a
//! rebalance so never opens an incident twice or loses a resolve.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, QueryDsl,
    prelude::*,
    sql_types::{Array, Bool, Jsonb, Text, Timestamptz, Uuid as SqlUuid},
    upsert::excluded,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{
    consumer_offsets::{self, PartitionProgress},
    incident::{IncidentRow, NewIncidentEvent, NewOutboxEntry, RESOLVED_BY_EVALUATOR},
    job_metrics::FlushOutcome,
};
use crate::{
    StoreError,
    schema::{alert_state, incident_events, incidents, notification_outbox},
};

/// Rows per statement for batched inserts (PostgreSQL takes at most 65 535
/// parameters in one).
const CHUNK: usize = 2_000;

/// One (rule, job)'s state row.
#[derive(Debug, Clone, PartialEq, Queryable, Insertable)]
#[diesel(table_name = alert_state, check_for_backend(diesel::pg::Pg))]
pub struct AlertStateRow {
    pub rule_id: Uuid,
    pub job_id: Uuid,
    /// The results-topic partition the job's results are on.
    pub partition: i32,
    pub state: serde_json::Value,
}

/// Everything one evaluator flush writes besides offsets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertWrites {
    /// State rows to insert or replace.
    pub states: Vec<AlertStateRow>,
    /// (rule, job) whose state is dropped (job or rule gone).
    pub dropped_states: Vec<(Uuid, Uuid)>,
    /// Incidents to open.
    pub opened: Vec<IncidentRow>,
    /// Open incidents' failing locations, one entry per incident.
    pub failing: Vec<(Uuid, Vec<String>)>,
    /// Incidents' flapping marks, one entry per incident.
    pub flapping: Vec<(Uuid, bool)>,
    /// Incidents the evaluator resolves, with when (already resolved ones,
    /// by hand, are left as they are).
    pub resolved: Vec<(Uuid, DateTime<Utc>)>,
    pub events: Vec<NewIncidentEvent>,
    /// Deduplicated by key: written twice, kept once.
    pub notifications: Vec<NewOutboxEntry>,
}

/// The state rows of `partition` (loaded when the evaluator takes it).
pub async fn load_partition(conn: &mut AsyncPgConnection, partition: i32) -> Result<Vec<AlertStateRow>, StoreError> {
    Ok(alert_state::table
        .filter(alert_state::partition.eq(partition))
        .select((
            alert_state::rule_id,
            alert_state::job_id,
            alert_state::partition,
            alert_state::state,
        ))
        .load(conn)
        .await?)
}

const UPDATE_FAILING: &str = "
UPDATE incidents AS i SET failing_locations = ARRAY(SELECT jsonb_array_elements_text(u.locations)), updated_at = now()
FROM UNNEST($1::uuid[], $2::jsonb[]) AS u(id, locations) WHERE i.id = u.id";

const UPDATE_FLAPPING: &str = "
UPDATE incidents AS i SET flapping = u.flapping, updated_at = now()
FROM UNNEST($1::uuid[], $2::bool[]) AS u(id, flapping) WHERE i.id = u.id";

const RESOLVE: &str = "
UPDATE incidents AS i SET resolved_at = u.at, resolved_by = $3, updated_at = now()
FROM UNNEST($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE i.id = u.id AND i.resolved_at IS NULL";

const DROP_STATES: &str = "
DELETE FROM alert_state AS s USING UNNEST($1::uuid[], $2::uuid[]) AS d(rule_id, job_id)
WHERE s.rule_id = d.rule_id AND s.job_id = d.job_id";

/// Writes one evaluator flush in one transaction: fences on `fence` (every
/// partition whose state it writes), then the writes, then stores the next
/// offsets of `store` (those partitions that moved). Fenced: nothing
/// written.
pub async fn flush(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    fence: &[PartitionProgress],
    store: &[PartitionProgress],
    writes: &AlertWrites,
) -> Result<FlushOutcome, StoreError> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    let (fence, store, writes) = (fence.to_vec(), store.to_vec(), writes.clone());
    conn.transaction(async move |conn| {
        let fenced = consumer_offsets::fence(conn, &group, &topic, &fence).await?;
        if !fenced.is_empty() {
            return Ok(FlushOutcome::Fenced { partitions: fenced });
        }
        let mut statements = 2;
        // Resolves first: a new episode of the same rule and job may be
        // opened below (the database holds at most one open).
        if !writes.resolved.is_empty() {
            let ids: Vec<Uuid> = writes.resolved.iter().map(|(id, _)| *id).collect();
            let at: Vec<DateTime<Utc>> = writes.resolved.iter().map(|(_, at)| *at).collect();
            diesel::sql_query(RESOLVE)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Timestamptz>, _>(&at)
                .bind::<Text, _>(RESOLVED_BY_EVALUATOR)
                .execute(conn)
                .await?;
            statements += 1;
        }
        for chunk in writes.opened.chunks(CHUNK) {
            diesel::insert_into(incidents::table)
                .values(chunk)
                .execute(conn)
                .await?;
            statements += 1;
        }
        if !writes.failing.is_empty() {
            let ids: Vec<Uuid> = writes.failing.iter().map(|(id, _)| *id).collect();
            let locations: Vec<serde_json::Value> = writes.failing.iter().map(|(_, l)| serde_json::json!(l)).collect();
            diesel::sql_query(UPDATE_FAILING)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Jsonb>, _>(&locations)
                .execute(conn)
                .await?;
            statements += 1;
        }
        if !writes.flapping.is_empty() {
            let ids: Vec<Uuid> = writes.flapping.iter().map(|(id, _)| *id).collect();
            let marks: Vec<bool> = writes.flapping.iter().map(|(_, f)| *f).collect();
            diesel::sql_query(UPDATE_FLAPPING)
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Array<Bool>, _>(&marks)
                .execute(conn)
                .await?;
            statements += 1;
        }
        for chunk in writes.events.chunks(CHUNK) {
            diesel::insert_into(incident_events::table)
                .values(chunk)
                .execute(conn)
                .await?;
            statements += 1;
        }
        for chunk in writes.notifications.chunks(CHUNK) {
            diesel::insert_into(notification_outbox::table)
                .values(chunk)
                .on_conflict(notification_outbox::dedup_key)
                .do_nothing()
                .execute(conn)
                .await?;
            statements += 1;
        }
        for chunk in writes.states.chunks(CHUNK) {
            diesel::insert_into(alert_state::table)
                .values(chunk)
                .on_conflict((alert_state::rule_id, alert_state::job_id))
                .do_update()
                .set((
                    alert_state::partition.eq(excluded(alert_state::partition)),
                    alert_state::state.eq(excluded(alert_state::state)),
                    alert_state::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            statements += 1;
        }
        if !writes.dropped_states.is_empty() {
            let rules: Vec<Uuid> = writes.dropped_states.iter().map(|(r, _)| *r).collect();
            let jobs: Vec<Uuid> = writes.dropped_states.iter().map(|(_, j)| *j).collect();
            diesel::sql_query(DROP_STATES)
                .bind::<Array<SqlUuid>, _>(&rules)
                .bind::<Array<SqlUuid>, _>(&jobs)
                .execute(conn)
                .await?;
            statements += 1;
        }
        if !store.is_empty() {
            consumer_offsets::store_next(conn, &group, &topic, &store).await?;
        }
        Ok(FlushOutcome::Committed {
            rows: writes.states.len(),
            statements,
        })
    })
    .await
}
