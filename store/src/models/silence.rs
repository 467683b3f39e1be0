//! The `silences` table: silences and maintenance windows. The server
//! writes them; the alert evaluator reads those not yet ended.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{StoreError, schema::silences};

/// A stored silence.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = silences, check_for_backend(diesel::pg::Pg))]
pub struct SilenceRow {
    pub id: Uuid,
    /// Jobs covered by id (with `label_selector`: the union; both empty:
    /// every job).
    pub job_ids: Vec<Option<Uuid>>,
    pub label_selector: serde_json::Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// None: active for all of [starts_at, ends_at); else a
    /// [`StoredRecurrence`] in JSON.
    pub recurrence: Option<serde_json::Value>,
    pub comment: String,
    pub created_by: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A weekly window as stored in `silences.recurrence` (checked by
/// `monitor_core::recurrence::WeeklyWindow::parse` before it is written).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredRecurrence {
    /// "mon" .. "sun".
    pub days: Vec<String>,
    /// "HH:MM", local time.
    pub start: String,
    pub duration_ms: i64,
    /// IANA name; "" is UTC.
    pub time_zone: String,
}

/// Silences that have not ended at `now` (the evaluator's view).
pub async fn load_current(conn: &mut AsyncPgConnection, now: DateTime<Utc>) -> Result<Vec<SilenceRow>, StoreError> {
    Ok(silences::table
        .filter(silences::ends_at.gt(now))
        .order(silences::id)
        .select(SilenceRow::as_select())
        .load(conn)
        .await?)
}
