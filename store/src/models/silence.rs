//! The `silences` table: silences and maintenance windows. The server
//! writes them; the alert evaluator reads those not yet ended.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
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

/// The caller-controlled fields of a silence: what create writes (with
/// `created_by`) and what an update replaces.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = silences, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub struct SilenceFields {
    pub job_ids: Vec<Option<Uuid>>,
    pub label_selector: serde_json::Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// None clears the recurrence (an update writes NULL).
    pub recurrence: Option<serde_json::Value>,
    pub comment: String,
}

impl SilenceRow {
    /// The row's caller-controlled fields, for comparing with a change.
    pub fn fields(&self) -> SilenceFields {
        SilenceFields {
            job_ids: self.job_ids.clone(),
            label_selector: self.label_selector.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            recurrence: self.recurrence.clone(),
            comment: self.comment.clone(),
        }
    }
}

/// Where a silence listing continues: after this (end, id), latest end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceCursor {
    pub ends_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Inserts a new silence made by `created_by` (a token name).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    fields: &SilenceFields,
    created_by: &str,
) -> Result<SilenceRow, StoreError> {
    Ok(diesel::insert_into(silences::table)
        .values((
            silences::id.eq(Uuid::now_v7()),
            silences::created_by.eq(created_by),
            fields,
        ))
        .returning(SilenceRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Reads one silence; [`StoreError::NotFound`] when no silence has this id.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<SilenceRow, StoreError> {
    Ok(silences::table
        .find(id)
        .select(SilenceRow::as_select())
        .get_result(conn)
        .await?)
}

/// Silences ending after `ended_before` (None: all of them).
fn current(ended_before: Option<DateTime<Utc>>) -> silences::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = silences::table.into_boxed();
    if let Some(now) = ended_before {
        query = query.filter(silences::ends_at.gt(now));
    }
    query
}

/// At most `limit` silences, latest end first (then newest id first),
/// after `after`; only those ending after `ended_before` when given.
pub async fn list(
    conn: &mut AsyncPgConnection,
    ended_before: Option<DateTime<Utc>>,
    after: Option<SilenceCursor>,
    limit: i64,
) -> Result<Vec<SilenceRow>, StoreError> {
    let mut query = current(ended_before);
    if let Some(after) = after {
        query = query.filter(
            silences::ends_at
                .lt(after.ends_at)
                .or(silences::ends_at.eq(after.ends_at).and(silences::id.lt(after.id))),
        );
    }
    Ok(query
        .order((silences::ends_at.desc(), silences::id.desc()))
        .limit(limit)
        .select(SilenceRow::as_select())
        .load(conn)
        .await?)
}

/// How many silences end after `ended_before` (None: all).
pub async fn count(conn: &mut AsyncPgConnection, ended_before: Option<DateTime<Utc>>) -> Result<i64, StoreError> {
    Ok(current(ended_before).count().get_result(conn).await?)
}

/// Replaces a silence's fields if it is still at `expected_version`.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected_version: i64,
    fields: &SilenceFields,
) -> Result<SilenceRow, StoreError> {
    let fields = fields.clone();
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if current != expected_version {
            return Err(StoreError::VersionConflict { current });
        }
        Ok(diesel::update(silences::table.find(id))
            .set((
                &fields,
                silences::version.eq(current + 1),
                silences::updated_at.eq(Utc::now()),
            ))
            .returning(SilenceRow::as_returning())
            .get_result(conn)
            .await?)
    })
    .await
}

/// Deletes a silence; when `expected_version` is given, only at that version.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid, expected_version: Option<i64>) -> Result<(), StoreError> {
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if let Some(expected) = expected_version
            && expected != current
        {
            return Err(StoreError::VersionConflict { current });
        }
        diesel::delete(silences::table.find(id)).execute(conn).await?;
        Ok(())
    })
    .await
}

async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> Result<SilenceRow, StoreError> {
    Ok(silences::table
        .find(id)
        .select(SilenceRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}
