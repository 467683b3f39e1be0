//! The `jobs` table: rows, filters and every query the control plane runs.

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, OptionalExtension, PgJsonbExpressionMethods, PgTextExpressionMethods, QueryDsl,
    SelectableHelper, prelude::*,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{StoreError, schema::jobs};

/// Desired state stored for a job that should be checked.
pub const STATE_RUNNING: &str = "running";
/// Desired state stored for a job that is kept but not checked.
pub const STATE_STOPPED: &str = "stopped";

/// The channel on which every committed change to a job is announced (a
/// trigger, migration 4): the payload is the job id, or `*` after a TRUNCATE.
pub const CHANGES_CHANNEL: &str = "monitor_jobs";

/// Subscribes `conn` to [`CHANGES_CHANNEL`]; read the announcements with
/// `conn.notifications_stream()`.
pub async fn listen_for_changes(conn: &mut AsyncPgConnection) -> Result<(), StoreError> {
    diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether both triggers that announce job changes (migration 4) exist and
/// fire: without them no change would ever be announced.
pub async fn change_triggers_enabled(conn: &mut AsyncPgConnection) -> Result<bool, StoreError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        enabled: i64,
    }
    let found: Count = diesel::sql_query(
        "SELECT count(*) AS enabled FROM pg_trigger \
         WHERE tgrelid = 'jobs'::regclass \
           AND tgname IN ('jobs_notify_change', 'jobs_notify_truncate') \
           AND tgenabled IN ('O', 'A')",
    )
    .get_result(conn)
    .await?;
    Ok(found.enabled == 2)
}

/// A stored job, as read back from the database.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct JobRow {
    pub id: Uuid,
    pub name: String,
    /// JSON object of string labels.
    pub labels: serde_json::Value,
    /// Which check kind `check_spec` describes ("http", ...).
    pub check_kind: String,
    /// The check in canonical proto3 JSON.
    pub check_spec: serde_json::Value,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    /// [`STATE_RUNNING`] or [`STATE_STOPPED`].
    pub desired_state: String,
    /// Starts at 1 and grows by one with every change.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub state_changed_at: DateTime<Utc>,
    /// JSON array of location names; empty: any worker.
    pub locations: serde_json::Value,
}

/// The caller-controlled fields of a job: what create writes and what an
/// update replaces. Validation happens before this point.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct JobFields {
    pub name: String,
    pub labels: serde_json::Value,
    pub check_kind: String,
    pub check_spec: serde_json::Value,
    pub interval_ms: i64,
    pub timeout_ms: i64,
    pub desired_state: String,
    pub locations: serde_json::Value,
}

/// Which jobs a listing returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    /// Only this desired state.
    pub desired_state: Option<String>,
    /// Only jobs whose labels contain every key/value of this JSON object.
    pub labels: Option<serde_json::Value>,
    /// Only names containing this text, case-insensitively.
    pub name_contains: Option<String>,
}

/// Job counts by desired state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub running: i64,
    pub stopped: i64,
}

/// What [`set_desired_state`] left in the table: the stored row, and
/// whether it had to change to get there.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStateUpdate {
    pub job: JobRow,
    /// False when the job already was in that state (nothing was written).
    pub changed: bool,
}

/// Inserts a new job with a fresh time-ordered id (so id order is creation order).
pub async fn insert(conn: &mut AsyncPgConnection, fields: &JobFields) -> Result<JobRow, StoreError> {
    let row = diesel::insert_into(jobs::table)
        .values((jobs::id.eq(Uuid::now_v7()), fields))
        .returning(JobRow::as_returning())
        .get_result(conn)
        .await?;
    Ok(row)
}

/// Reads one job; [`StoreError::NotFound`] when no job has this id.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<JobRow, StoreError> {
    Ok(jobs::table
        .find(id)
        .select(JobRow::as_select())
        .get_result(conn)
        .await?)
}

/// Reads one job by its unique name.
pub async fn find_by_name(conn: &mut AsyncPgConnection, name: &str) -> Result<Option<JobRow>, StoreError> {
    Ok(jobs::table
        .filter(jobs::name.eq(name))
        .select(JobRow::as_select())
        .get_result(conn)
        .await
        .optional()?)
}

fn filtered(filter: &JobFilter) -> jobs::BoxedQuery<'static, diesel::pg::Pg> {
    let mut query = jobs::table.into_boxed();
    if let Some(state) = &filter.desired_state {
        query = query.filter(jobs::desired_state.eq(state.clone()));
    }
    if let Some(labels) = &filter.labels {
        query = query.filter(jobs::labels.contains(labels.clone()));
    }
    if let Some(text) = &filter.name_contains {
        query = query.filter(jobs::name.ilike(format!("%{}%", escape_like(text))));
    }
    query
}

/// Escapes `%`, `_` and `\` so user text matches literally inside LIKE.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Lists at most `limit` jobs matching `filter` with an id after `after`, in id
/// (creation) order: keyset paging, stable while jobs are added or removed.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &JobFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<JobRow>, StoreError> {
    let mut query = filtered(filter);
    if let Some(after) = after {
        query = query.filter(jobs::id.gt(after));
    }
    Ok(query
        .order(jobs::id.asc())
        .limit(limit)
        .select(JobRow::as_select())
        .load(conn)
        .await?)
}

/// Counts the jobs matching `filter`.
pub async fn count(conn: &mut AsyncPgConnection, filter: &JobFilter) -> Result<i64, StoreError> {
    Ok(filtered(filter).count().get_result(conn).await?)
}

/// Counts jobs by desired state.
pub async fn counts(conn: &mut AsyncPgConnection) -> Result<JobCounts, StoreError> {
    let rows: Vec<(String, i64)> = jobs::table
        .group_by(jobs::desired_state)
        .select((jobs::desired_state, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    let mut counts = JobCounts::default();
    for (state, n) in rows {
        match state.as_str() {
            STATE_RUNNING => counts.running = n,
            STATE_STOPPED => counts.stopped = n,
            _ => {}
        }
    }
    Ok(counts)
}

/// Replaces a job's fields if it is still at `expected_version`, bumping the
/// version. [`StoreError::VersionConflict`] when someone changed it since,
/// [`StoreError::NotFound`] when it is gone.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected_version: i64,
    fields: &JobFields,
) -> Result<JobRow, StoreError> {
    let fields = fields.clone();
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?;
        if current.version != expected_version {
            return Err(StoreError::VersionConflict {
                current: current.version,
            });
        }
        let now = Utc::now();
        // Only a real change of desired state moves state_changed_at.
        let state_changed_at = if current.desired_state == fields.desired_state {
            current.state_changed_at
        } else {
            now
        };
        let row = diesel::update(jobs::table.find(id))
            .set((
                &fields,
                jobs::version.eq(current.version + 1),
                jobs::updated_at.eq(now),
                jobs::state_changed_at.eq(state_changed_at),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)
            .await?;
        Ok(row)
    })
    .await
}

/// Locks the row for the rest of the transaction and returns it.
async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> Result<JobRow, StoreError> {
    Ok(jobs::table
        .find(id)
        .select(JobRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}

/// Sets the desired state; idempotent (a job already in that state is
/// returned unchanged, with the same version).
pub async fn set_desired_state(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    state: &str,
) -> Result<DesiredStateUpdate, StoreError> {
    let now = Utc::now();
    let updated = diesel::update(jobs::table.find(id).filter(jobs::desired_state.ne(state)))
        .set((
            jobs::desired_state.eq(state),
            jobs::version.eq(jobs::version + 1),
            jobs::updated_at.eq(now),
            jobs::state_changed_at.eq(now),
        ))
        .returning(JobRow::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    match updated {
        Some(job) => Ok(DesiredStateUpdate { job, changed: true }),
        None => Ok(DesiredStateUpdate {
            job: get(conn, id).await?,
            changed: false,
        }),
    }
}

/// Deletes a job; when `expected_version` is given, only at that version.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid, expected_version: Option<i64>) -> Result<(), StoreError> {
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if let Some(expected) = expected_version
            && expected != current
        {
            return Err(StoreError::VersionConflict { current });
        }
        diesel::delete(jobs::table.find(id)).execute(conn).await?;
        Ok(())
    })
    .await
}

/// Deletes every job and returns how many there were.
pub async fn delete_all(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    let deleted = diesel::delete(jobs::table).execute(conn).await?;
    Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
}

/// Ids and versions of every job whose desired state is running: the cheap
/// query the assignment loop polls to notice changes.
pub async fn running_versions(conn: &mut AsyncPgConnection) -> Result<Vec<(Uuid, i64)>, StoreError> {
    Ok(jobs::table
        .filter(jobs::desired_state.eq(STATE_RUNNING))
        .select((jobs::id, jobs::version))
        .load(conn)
        .await?)
}

/// Reads the given jobs (missing ids are skipped).
pub async fn get_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<JobRow>, StoreError> {
    Ok(jobs::table
        .filter(jobs::id.eq_any(ids))
        .select(JobRow::as_select())
        .load(conn)
        .await?)
}

/// Every job (the alert evaluator's view: names, labels, locations,
/// intervals and desired states).
pub async fn load_all(conn: &mut AsyncPgConnection) -> Result<Vec<JobRow>, StoreError> {
    Ok(jobs::table
        .order(jobs::id)
        .select(JobRow::as_select())
        .load(conn)
        .await?)
}
