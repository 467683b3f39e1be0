//! The `alert_rules` table: when an incident opens for a job, and whom it
//! tells. The server writes rules (validated first); the alert evaluator
//! reads the enabled ones.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{StoreError, schema::alert_rules};

/// Severities as stored.
pub const SEVERITY_CRITICAL: &str = "critical";
pub const SEVERITY_WARNING: &str = "warning";
pub const SEVERITY_INFO: &str = "info";

/// A stored rule. Arrays hold no NULLs (the server never writes one).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = alert_rules, check_for_backend(diesel::pg::Pg))]
pub struct AlertRuleRow {
    pub id: Uuid,
    pub name: String,
    /// Jobs covered by id (with `label_selector`: the union; both empty:
    /// every job).
    pub job_ids: Vec<Option<Uuid>>,
    /// JSON object of string labels a covered job carries, all of them.
    pub label_selector: serde_json::Value,
    pub failure_threshold: i32,
    pub success_threshold: i32,
    pub min_failing_locations: i32,
    /// 0: `min_failing_locations` applies.
    pub min_failing_percent: i32,
    pub no_data: bool,
    /// [`SEVERITY_CRITICAL`], [`SEVERITY_WARNING`] or [`SEVERITY_INFO`].
    pub severity: String,
    pub channel_ids: Vec<Option<Uuid>>,
    /// 0: no reminders.
    pub repeat_interval_ms: i64,
    pub notify_on_resolve: bool,
    /// 0: flapping is not detected.
    pub flap_threshold: i32,
    pub flap_window_ms: i64,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every enabled rule (the evaluator's view).
pub async fn load_enabled(conn: &mut AsyncPgConnection) -> Result<Vec<AlertRuleRow>, StoreError> {
    Ok(alert_rules::table
        .filter(alert_rules::enabled.eq(true))
        .order(alert_rules::id)
        .select(AlertRuleRow::as_select())
        .load(conn)
        .await?)
}
