//! The notification channel catalog: the domain operations behind
//! NotificationService, shared by the gRPC service and the REST gateway.
//! Channel rules and secrets live in [`validate`]; sending (the test
//! message) in `monitor_notify`, the same code the dispatchers use.

pub mod deliveries;
pub mod email;
pub mod kinds;
pub mod validate;

use std::time::Duration;

use chrono::Utc;
use monitor_core::blocklist::Blocklist;
use monitor_notify::{delivery_id, email::test_mail, payload::test_body, send::Sender, settings::ChannelSettings};
use monitor_proto::v1::{
    ChannelTestResult, CreateNotificationChannelRequest, DeleteNotificationChannelRequest,
    ListNotificationChannelsRequest, ListNotificationChannelsResponse, NotificationChannel,
    UpdateNotificationChannelRequest,
};
use monitor_store::{
    DbConn, DbPool, StoreError,
    models::{
        notification_channel::{self, ChannelRow},
        notification_delivery::{self, ChannelHealth},
    },
};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    alerts::validate::parse_id,
    error::ApiError,
    jobs::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_token},
};
use validate::{redact, validate_channel};

/// Fields UpdateNotificationChannel may name in its update mask.
pub const CHANNEL_UPDATABLE_FIELDS: &[&str] = &[
    "name",
    "enabled",
    "group_wait",
    "webhook",
    "slack",
    "discord",
    "teams",
    "telegram",
    "pagerduty",
    "email",
];

/// How the server reaches channels (test sends and URL checks).
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// The networks channel URLs may not point into (`--notify-blocklist`,
    /// `--notify-allow-net`), as for probes.
    pub blocklist: Blocklist,
    /// Longest a test send may take.
    pub send_timeout: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        NotifyOptions {
            blocklist: Blocklist::default(),
            send_timeout: Duration::from_secs(10),
        }
    }
}

/// Channels in PostgreSQL, behind the API's rules.
#[derive(Clone)]
pub struct ChannelCatalog {
    pool: DbPool,
    sender: Sender,
}

/// A stored row as the API shows it (secrets redacted), with its health.
fn channel_from_row(row: ChannelRow, health: &ChannelHealth) -> Result<NotificationChannel, ApiError> {
    let settings = stored_settings(&row)?;
    let mut channel = NotificationChannel {
        id: row.id.to_string(),
        name: row.name,
        enabled: Some(row.enabled),
        kind: Some(redact(&settings)),
        version: row.version,
        create_time: Some(row.created_at.into()),
        update_time: Some(row.updated_at.into()),
        group_wait: Some(monitor_proto::duration::from_millis(i64::from(row.group_wait_ms))),
        ..Default::default()
    };
    deliveries::apply_health(&mut channel, health);
    Ok(channel)
}

fn stored_settings(row: &ChannelRow) -> Result<ChannelSettings, ApiError> {
    ChannelSettings::from_stored(&row.kind, &row.settings)
        .map_err(|err| ApiError::Internal(format!("notification channel {} is unreadable: {err}", row.id)))
}

fn store_error(err: StoreError, id: Option<Uuid>, name: Option<&str>) -> ApiError {
    let shown = id.map(|id| format!(" {id}")).unwrap_or_default();
    match err {
        StoreError::NotFound => ApiError::NotFound(format!("notification channel{shown} not found")),
        StoreError::UniqueViolation { constraint } if constraint == "notification_channels_name_key" => {
            ApiError::AlreadyExists(format!(
                "a notification channel named {:?} already exists",
                name.unwrap_or_default()
            ))
        }
        StoreError::VersionConflict { current } => ApiError::Aborted(format!(
            "notification channel{shown} was changed concurrently and is now at version {current}; read it again and retry"
        )),
        other => ApiError::from_store(other),
    }
}

impl ChannelCatalog {
    pub fn new(pool: DbPool, options: &NotifyOptions) -> Result<Self, ApiError> {
        let sender = Sender::new(options.blocklist.clone(), options.send_timeout)
            .map_err(|err| ApiError::Internal(err.to_string()))?;
        Ok(ChannelCatalog { pool, sender })
    }

    async fn conn(&self) -> Result<DbConn, ApiError> {
        self.pool.get().await.map_err(|err| ApiError::from_store(err.into()))
    }

    /// One stored channel as the API shows it, health included.
    async fn shown(&self, conn: &mut DbConn, row: ChannelRow) -> Result<NotificationChannel, ApiError> {
        let health = notification_delivery::channel_health(conn, &[row.id])
            .await
            .map_err(ApiError::from_store)?
            .remove(&row.id)
            .unwrap_or_default();
        channel_from_row(row, &health)
    }

    #[instrument(skip_all)]
    pub async fn create(&self, request: CreateNotificationChannelRequest) -> Result<NotificationChannel, ApiError> {
        let channel = request
            .channel
            .ok_or_else(|| ApiError::invalid("channel", "is required"))?;
        let fields = validate_channel(&channel, None, self.sender.blocklist()).map_err(|err| err.within("channel."))?;
        let mut conn = self.conn().await?;
        let row = notification_channel::insert(&mut conn, &fields)
            .await
            .map_err(|err| store_error(err, None, Some(&channel.name)))?;
        tracing::info!(channel_id = %row.id, name = %row.name, kind = %row.kind, "notification channel created");
        // A new channel has no attempts: healthy.
        channel_from_row(row, &ChannelHealth::default())
    }

    #[instrument(skip_all)]
    pub async fn get(&self, id: &str) -> Result<NotificationChannel, ApiError> {
        let id = parse_id("id", id, "a notification channel id")?;
        let mut conn = self.conn().await?;
        let row = notification_channel::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, Some(id), None))?;
        self.shown(&mut conn, row).await
    }

    #[instrument(skip_all)]
    pub async fn list(
        &self,
        request: ListNotificationChannelsRequest,
    ) -> Result<ListNotificationChannelsResponse, ApiError> {
        let size = match i64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(ApiError::invalid("page_size", "must not be negative")),
            n => n.min(MAX_PAGE_SIZE),
        };
        let fingerprint = page_token::fingerprint(&["notification-channels"]);
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(page_token::decode_key(&request.page_token, &fingerprint)?)
        };
        let mut conn = self.conn().await?;
        let mut rows = notification_channel::list(&mut conn, after.as_deref(), size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let mut next_page_token = String::new();
        if rows.len() as i64 > size {
            rows.truncate(size as usize);
            if let Some(last) = rows.last() {
                next_page_token = page_token::encode_key(&last.name, &fingerprint);
            }
        }
        let total_size = notification_channel::count(&mut conn)
            .await
            .map_err(ApiError::from_store)?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut health = notification_delivery::channel_health(&mut conn, &ids)
            .await
            .map_err(ApiError::from_store)?;
        Ok(ListNotificationChannelsResponse {
            channels: rows
                .into_iter()
                .map(|row| {
                    let health = health.remove(&row.id).unwrap_or_default();
                    channel_from_row(row, &health)
                })
                .collect::<Result<_, _>>()?,
            next_page_token,
            total_size,
        })
    }

    #[instrument(skip_all)]
    pub async fn update(&self, request: UpdateNotificationChannelRequest) -> Result<NotificationChannel, ApiError> {
        let changes = request
            .channel
            .ok_or_else(|| ApiError::invalid("channel", "is required"))?;
        let id = parse_id("channel.id", &changes.id, "a notification channel id")?;
        if changes.version <= 0 {
            return Err(ApiError::invalid(
                "channel.version",
                "is required: send the version you read (optimistic concurrency)",
            ));
        }
        let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        for (i, path) in paths.iter().enumerate() {
            if !CHANNEL_UPDATABLE_FIELDS.contains(&path.as_str()) {
                return Err(ApiError::invalid(
                    format!("update_mask.paths[{i}]"),
                    format!(
                        "{path:?} cannot be updated; use one of {}",
                        CHANNEL_UPDATABLE_FIELDS.join(", ")
                    ),
                ));
            }
        }
        let mut conn = self.conn().await?;
        let current = notification_channel::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, Some(id), None))?;
        if current.version != changes.version {
            return Err(store_error(
                StoreError::VersionConflict {
                    current: current.version,
                },
                Some(id),
                None,
            ));
        }
        let stored = stored_settings(&current)?;
        let merged = merge(
            channel_from_row(current.clone(), &ChannelHealth::default())?,
            changes,
            &paths,
        );
        let fields =
            validate_channel(&merged, Some(&stored), self.sender.blocklist()).map_err(|err| err.within("channel."))?;
        if fields == current.fields() {
            return self.shown(&mut conn, current).await;
        }
        let row = notification_channel::update(&mut conn, id, current.version, &fields)
            .await
            .map_err(|err| store_error(err, Some(id), Some(&merged.name)))?;
        tracing::info!(channel_id = %id, version = row.version, "notification channel updated");
        self.shown(&mut conn, row).await
    }

    #[instrument(skip_all)]
    pub async fn delete(&self, request: DeleteNotificationChannelRequest) -> Result<(), ApiError> {
        let id = parse_id("id", &request.id, "a notification channel id")?;
        if request.version < 0 {
            return Err(ApiError::invalid("version", "must not be negative"));
        }
        let mut conn = self.conn().await?;
        notification_channel::delete(&mut conn, id, (request.version > 0).then_some(request.version))
            .await
            .map_err(|err| store_error(err, Some(id), None))?;
        tracing::info!(channel_id = %id, "notification channel deleted");
        Ok(())
    }

    /// Sends the test message to a stored channel (enabled or not) and
    /// reports what came back; a failed send is a result, not an error.
    #[instrument(skip_all)]
    pub async fn test(&self, id: &str) -> Result<ChannelTestResult, ApiError> {
        let id = parse_id("id", id, "a notification channel id")?;
        let row = {
            let mut conn = self.conn().await?;
            notification_channel::get(&mut conn, id)
                .await
                .map_err(|err| store_error(err, Some(id), None))?
        };
        let settings = stored_settings(&row)?;
        let now = Utc::now();
        let delivery = delivery_id(&format!("test:{}", Uuid::now_v7()), id);
        let sent = match &settings {
            ChannelSettings::Email(email) => {
                self.sender
                    .send_mail(email, &test_mail(&row.name, now), &delivery)
                    .await
            }
            _ => {
                let body = test_body(&settings, &row.name, now);
                self.sender.send(&settings, &body, &delivery, now).await
            }
        };
        tracing::info!(channel_id = %id, status = ?sent.status(), smtp_code = ?sent.smtp_code(), error = %sent.error, "notification channel tested");
        Ok(ChannelTestResult {
            delivered: sent.error.is_empty(),
            status_code: sent.status().or(sent.smtp_code()).map(u32::from).unwrap_or(0),
            body_excerpt: sent.body_excerpt,
            error: sent.error,
            duration: Some(monitor_proto::duration::from_millis(
                i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
            )),
        })
    }
}

/// `current` with the fields `paths` names (all when empty) taken from
/// `changes`.
fn merge(mut current: NotificationChannel, changes: NotificationChannel, paths: &[String]) -> NotificationChannel {
    let all = paths.is_empty();
    let named = |field: &str| all || paths.iter().any(|path| path == field);
    if named("name") {
        current.name = changes.name;
    }
    if named("enabled") {
        current.enabled = changes.enabled;
    }
    if named("group_wait") {
        current.group_wait = changes.group_wait;
    }
    let kind_named = match &changes.kind {
        Some(kind) => named(validate::kind_field(kind)),
        None => all,
    };
    if kind_named {
        current.kind = changes.kind;
    }
    current
}
