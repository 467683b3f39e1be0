//! The `incidents` table with its timeline (`incident_events`) and the
//! notification outbox: what the alert evaluator opens and resolves (in its
//! fenced flush, `alert_state::flush`), and what the server lists,
//! acknowledges and resolves by hand.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    schema::{incident_events, incidents},
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
