//! The `notification_channels` table: where notifications go. The server
//! writes channels (settings validated and secrets kept write-only by the
//! API); the dispatchers read them for every delivery.

use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper, prelude::*};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{StoreError, schema::notification_channels};

/// A stored channel.
#[derive(Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = notification_channels, check_for_backend(diesel::pg::Pg))]
pub struct ChannelRow {
    pub id: Uuid,
    pub name: String,
    /// "webhook" or "slack".
    pub kind: String,
    /// The kind's settings, secrets included (`monitor_notify::ChannelSettings`).
    pub settings: serde_json::Value,
    pub enabled: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Events due within this long of the first are sent together (0: alone).
    pub group_wait_ms: i32,
}

/// Settings hold secrets: never in a log line.
impl std::fmt::Debug for ChannelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The caller-controlled fields: what create writes and update replaces.
#[derive(Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = notification_channels, check_for_backend(diesel::pg::Pg))]
pub struct ChannelFields {
    pub name: String,
    pub kind: String,
    pub settings: serde_json::Value,
    pub enabled: bool,
    pub group_wait_ms: i32,
}

impl std::fmt::Debug for ChannelFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelFields")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl ChannelRow {
    /// The row's caller-controlled fields, for comparing with a change.
    pub fn fields(&self) -> ChannelFields {
        ChannelFields {
            name: self.name.clone(),
            kind: self.kind.clone(),
            settings: self.settings.clone(),
            enabled: self.enabled,
            group_wait_ms: self.group_wait_ms,
        }
    }
}

/// Inserts a new channel.
pub async fn insert(conn: &mut AsyncPgConnection, fields: &ChannelFields) -> Result<ChannelRow, StoreError> {
    Ok(diesel::insert_into(notification_channels::table)
        .values((notification_channels::id.eq(Uuid::now_v7()), fields))
        .returning(ChannelRow::as_returning())
        .get_result(conn)
        .await?)
}

/// Reads one channel; [`StoreError::NotFound`] when none has this id.
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ChannelRow, StoreError> {
    Ok(notification_channels::table
        .find(id)
        .select(ChannelRow::as_select())
        .get_result(conn)
        .await?)
}

/// The channels of `ids` that exist.
pub async fn get_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<ChannelRow>, StoreError> {
    Ok(notification_channels::table
        .filter(notification_channels::id.eq_any(ids))
        .select(ChannelRow::as_select())
        .load(conn)
        .await?)
}

/// Of `ids`, those no channel has (a rule naming them is refused).
pub async fn missing(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<Uuid> = notification_channels::table
        .filter(notification_channels::id.eq_any(ids))
        .select(notification_channels::id)
        .load(conn)
        .await?;
    Ok(ids.iter().copied().filter(|id| !found.contains(id)).collect())
}

/// At most `limit` channels ordered by name, after the name `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<ChannelRow>, StoreError> {
    let mut query = notification_channels::table.into_boxed();
    if let Some(after) = after {
        query = query.filter(notification_channels::name.gt(after.to_owned()));
    }
    Ok(query
        .order(notification_channels::name.asc())
        .limit(limit)
        .select(ChannelRow::as_select())
        .load(conn)
        .await?)
}

/// How many channels there are.
pub async fn count(conn: &mut AsyncPgConnection) -> Result<i64, StoreError> {
    Ok(notification_channels::table.count().get_result(conn).await?)
}

/// Replaces a channel's fields if it is still at `expected_version`.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    expected_version: i64,
    fields: &ChannelFields,
) -> Result<ChannelRow, StoreError> {
    let fields = fields.clone();
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if current != expected_version {
            return Err(StoreError::VersionConflict { current });
        }
        Ok(diesel::update(notification_channels::table.find(id))
            .set((
                &fields,
                notification_channels::version.eq(current + 1),
                notification_channels::updated_at.eq(Utc::now()),
            ))
            .returning(ChannelRow::as_returning())
            .get_result(conn)
            .await?)
    })
    .await
}

/// Deletes a channel (and its pending deliveries); when `expected_version`
/// is given, only at that version.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid, expected_version: Option<i64>) -> Result<(), StoreError> {
    conn.transaction(async move |conn| {
        let current = lock(conn, id).await?.version;
        if let Some(expected) = expected_version
            && expected != current
        {
            return Err(StoreError::VersionConflict { current });
        }
        diesel::delete(notification_channels::table.find(id))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> Result<ChannelRow, StoreError> {
    Ok(notification_channels::table
        .find(id)
        .select(ChannelRow::as_select())
        .for_update()
        .get_result(conn)
        .await?)
}
