//! The `alert_rules` table: when an incident opens for a job, and whom it
//! tells. The server writes rules (validated first); the alert evaluator
//! reads the enabled ones.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
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

/// The caller-controlled fields of a rule, defaults resolved: what create
/// writes and what an update replaces. Validation happens before this point.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = alert_rules, check_for_backend(diesel::pg::Pg))]
pub struct AlertRuleFields {
    pub name: String,
    pub job_ids: Vec<Option<Uuid>>,
    pub label_selector: serde_json::Value,
    pub failure_threshold: i32,
    pub success_threshold: i32,
    pub min_failing_locations: i32,
    pub min_failing_percent: i32,
    pub no_data: bool,
    pub severity: String,
    pub channel_ids: Vec<Option<Uuid>>,
    pub repeat_interval_ms: i64,
    pub notify_on_resolve: bool,
    pub flap_threshold: i32,
    pub flap_window_ms: i64,
    pub enabled: bool,
}

impl AlertRuleRow {
    /// The row's caller-controlled fields, for comparing with a change.
    pub fn fields(&self) -> AlertRuleFields {
        AlertRuleFields {
            name: self.name.clone(),
            job_ids: self.job_ids.clone(),
            label_selector: self.label_selector.clone(),
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
            min_failing_locations: self.min_failing_locations,
            min_failing_percent: self.min_failing_percent,
            no_data: self.no_data,
            severity: self.severity.clone(),
            channel_ids: self.channel_ids.clone(),
            repeat_interval_ms: self.repeat_interval_ms,
            notify_on_resolve: self.notify_on_resolve,
            flap_threshold: self.flap_threshold,
            flap_window_ms: self.flap_window_ms,
            enabled: self.enabled,
        }
    }
}

/// Inserts a new rule with a fresh time-ordered id.
pub async fn insert(conn: &mut AsyncPgConnection, fields: &AlertRuleFields) -> Result<AlertRuleRow, StoreError> {
    Ok(diesel::insert_into(alert_rules::table)
        .values((alert_rules::id.eq(Uuid::now_v7()), fields))
        .returning(AlertRuleRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Reads one rule; [`StoreError::NotFound`] when no rule has this id.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<AlertRuleRow, StoreError> {
    Ok(alert_rules::table
        .find(id)
        .select(AlertRuleRow::as_select())
        .get_result(conn)
        .await?)
}

/// At most `limit` rules with a name after `after`, by name (keyset paging:
/// names are unique).
pub async fn list(
    conn: &mut AsyncPgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AlertRuleRow>, StoreError> {
    let mut query = alert_rules::table.into_boxed();
    if let Some(after) = after {
        query = query.filter(alert_rules::name.gt(after.to_owned()));
    }
    Ok(query
        .order(alert_rules::name.asc())
        .limit(limit)
        .select(AlertRuleRow::as_select())
        .load(conn)
        .await?)
}

/// How many rules there are.
pub async fn count(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    Ok(alert_rules::table.count().get_result(conn).await?)
}

/// Replaces a rule's fields if it is still at `expected_version`, bumping
/// the version. [`StoreError::VersionConflict`] when someone changed it
/// since, [`StoreError::NotFound`] when it is gone.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected_version: i64,
    fields: &AlertRuleFields,
) -> Result<AlertRuleRow, StoreError> {
    let fields = fields.clone();
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if current != expected_version {
            return Err(StoreError::VersionConflict { current });
        }
        Ok(diesel::update(alert_rules::table.find(id))
            .set((
                &fields,
                alert_rules::version.eq(current + 1),
                alert_rules::updated_at.eq(Utc::now()),
            ))
            .returning(AlertRuleRow::as_returning())
            .get_result(conn)
            .await?)
    })
    .await
}

/// Deletes a rule; when `expected_version` is given, only at that version.
/// Its incidents stay (their `rule_id` becomes NULL), its evaluator state
/// goes with it.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid, expected_version: Option<i64>) -> Result<(), StoreError> {
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if let Some(expected) = expected_version
            && expected != current
        {
            return Err(StoreError::VersionConflict { current });
        }
        diesel::delete(alert_rules::table.find(id)).execute(conn).await?;
        Ok(())
    })
    .await
}

/// Locks the row for the rest of the transaction and returns it.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> Result<AlertRuleRow, StoreError> {
    Ok(alert_rules::table
        .find(id)
        .select(AlertRuleRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}
