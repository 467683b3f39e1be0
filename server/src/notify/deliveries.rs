//! The delivery history (ListNotificationDeliveries) and channel health:
//! the dispatchers' log (`outbox_deliveries`, `notification_deliveries`)
//! as the API shows it. Channel names and kinds only, never settings.

use std::collections::HashMap;

use monitor_proto::v1::{
    DeliveryAttempt, DeliveryOutcome, DeliveryState, ListNotificationDeliveriesRequest,
    ListNotificationDeliveriesResponse, NotificationChannel, NotificationDelivery,
};
use monitor_store::models::{
    incident, notification_channel,
    notification_delivery::{self, AttemptRow, ChannelHealth, LogCursor, LogEntry, LogFilter},
};
use tracing::instrument;
use uuid::Uuid;

use super::{ChannelCatalog, store_error};
use crate::{
    error::{ApiError, FieldViolation},
    jobs::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_token},
};

/// A logged attempt as the API shows it.
pub fn attempt_to_proto(row: &AttemptRow) -> DeliveryAttempt {
    let outcome = match row.outcome.as_str() {
        notification_delivery::OUTCOME_DELIVERED => DeliveryOutcome::Delivered,
        notification_delivery::OUTCOME_RETRY => DeliveryOutcome::Retry,
        notification_delivery::OUTCOME_GIVEN_UP => DeliveryOutcome::GivenUp,
        _ => DeliveryOutcome::Unspecified,
    };
    DeliveryAttempt {
        attempt: row.attempt,
        time: Some(row.at.into()),
        http_status: row
            .http_status
            .and_then(|status| u32::try_from(status).ok())
            .unwrap_or(0),
        reply: row.reply.clone(),
        error: row.error.clone(),
        duration: Some(monitor_proto::duration::from_millis(row.duration_ms)),
        outcome: outcome.into(),
    }
}

/// Fills the channel's output-only health fields.
pub fn apply_health(channel: &mut NotificationChannel, health: &ChannelHealth) {
    channel.last_attempt = health.last_attempt.as_ref().map(attempt_to_proto);
    channel.consecutive_failures = i32::try_from(health.consecutive_failures).unwrap_or(i32::MAX);
    channel.healthy = health.healthy();
}

fn delivery_to_proto(entry: LogEntry, attempts: Vec<DeliveryAttempt>) -> NotificationDelivery {
    let (state, finished) = match (entry.delivered_at, entry.given_up_at) {
        (Some(at), _) => (DeliveryState::Delivered, Some(at)),
        (None, Some(at)) => (DeliveryState::GivenUp, Some(at)),
        (None, None) => (DeliveryState::Pending, None),
    };
    NotificationDelivery {
        outbox_id: entry.outbox_id,
        event: entry.event,
        dedup_key: entry.dedup_key,
        incident_id: entry.incident_id.to_string(),
        job_name: entry.job_name,
        channel_id: entry.channel_id.to_string(),
        channel_name: entry.channel_name,
        channel_kind: entry.channel_kind,
        state: state.into(),
        next_attempt_time: (state == DeliveryState::Pending).then(|| entry.next_attempt_at.into()),
        batch_id: entry.batch_id.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(entry.created_at.into()),
        finish_time: finished.map(Into::into),
        attempts,
    }
}

/// An optional id filter: empty is none.
fn optional_id(field: &str, raw: &str, what: &str, v: &mut Vec<FieldViolation>) -> Option<Uuid> {
    if raw.is_empty() {
        return None;
    }
    match Uuid::parse_str(raw) {
        Ok(id) => Some(id),
        Err(_) => {
            v.push(FieldViolation::new(field, format!("{raw:?} is not {what} (a UUID)")));
            None
        }
    }
}

fn encode_cursor(cursor: LogCursor, fingerprint: &str) -> String {
    page_token::encode_key(&format!("{}/{}", cursor.outbox_id, cursor.channel_id), fingerprint)
}

fn decode_cursor(token: &str, fingerprint: &str) -> Result<LogCursor, ApiError> {
    let key = page_token::decode_key(token, fingerprint)?;
    let invalid = || ApiError::invalid("page_token", "is not a page token issued by this server");
    let (outbox_id, channel_id) = key.split_once('/').ok_or_else(invalid)?;
    Ok(LogCursor {
        outbox_id: outbox_id.parse().map_err(|_| invalid())?,
        channel_id: channel_id.parse().map_err(|_| invalid())?,
    })
}

impl ChannelCatalog {
    /// A page of the deliveries of an incident and/or to a channel, each
    /// with its attempts (two queries for the page, whatever its size).
    #[instrument(skip_all)]
    pub async fn deliveries(
        &self,
        request: ListNotificationDeliveriesRequest,
    ) -> Result<ListNotificationDeliveriesResponse, ApiError> {
        let mut v = Vec::new();
        let incident_id = optional_id("incident_id", &request.incident_id, "an incident id", &mut v);
        let channel_id = optional_id("channel_id", &request.channel_id, "a notification channel id", &mut v);
        if request.incident_id.is_empty() && request.channel_id.is_empty() {
            v.push(FieldViolation::new(
                "incident_id",
                "is required unless channel_id is set: list an incident's deliveries or a channel's",
            ));
        }
        let size = match i64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => {
                v.push(FieldViolation::new("page_size", "must not be negative"));
                0
            }
            n => n.min(MAX_PAGE_SIZE),
        };
        if !v.is_empty() {
            return Err(ApiError::InvalidArgument(v));
        }
        let fingerprint =
            page_token::fingerprint(&["notification-deliveries", &request.incident_id, &request.channel_id]);
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(decode_cursor(&request.page_token, &fingerprint)?)
        };
        let mut conn = self.conn().await?;
        if let Some(id) = incident_id
            && incident::get(&mut conn, id)
                .await
                .map_err(ApiError::from_store)?
                .is_none()
        {
            return Err(ApiError::NotFound(format!("incident {id} not found")));
        }
        if let Some(id) = channel_id {
            notification_channel::get(&mut conn, id)
                .await
                .map_err(|err| store_error(err, Some(id), None))?;
        }
        let filter = LogFilter {
            incident_id,
            channel_id,
        };
        let mut entries = notification_delivery::log(&mut conn, filter, after, size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let mut next_page_token = String::new();
        if entries.len() as i64 > size {
            entries.truncate(size as usize);
            if let Some(last) = entries.last() {
                next_page_token = encode_cursor(last.cursor(), &fingerprint);
            }
        }
        let keys: Vec<LogCursor> = entries.iter().map(LogEntry::cursor).collect();
        let mut attempts: HashMap<LogCursor, Vec<DeliveryAttempt>> = HashMap::new();
        for row in notification_delivery::attempts_of(&mut conn, &keys)
            .await
            .map_err(ApiError::from_store)?
        {
            let key = LogCursor {
                outbox_id: row.outbox_id,
                channel_id: row.channel_id,
            };
            attempts.entry(key).or_default().push(attempt_to_proto(&row));
        }
        let total_size = notification_delivery::log_count(&mut conn, filter)
            .await
            .map_err(ApiError::from_store)?;
        let deliveries = entries
            .into_iter()
            .map(|entry| {
                let mine = attempts.remove(&entry.cursor()).unwrap_or_default();
                delivery_to_proto(entry, mine)
            })
            .collect();
        Ok(ListNotificationDeliveriesResponse {
            deliveries,
            next_page_token,
            total_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn attempt(id: i64, outcome: &str) -> AttemptRow {
        AttemptRow {
            id,
            outbox_id: 1,
            channel_id: Uuid::nil(),
            attempt: 1,
            at: Utc::now(),
            http_status: Some(500),
            error: "HTTP 500".into(),
            duration_ms: 12,
            outcome: outcome.into(),
            reply: "oops".into(),
        }
    }

    #[test]
    fn health_follows_the_rule_in_the_proto() {
        let mut channel = NotificationChannel::default();
        apply_health(&mut channel, &ChannelHealth::default());
        assert!(channel.healthy, "no attempt yet: healthy");
        assert_eq!(channel.last_attempt, None);

        let failing = |failures, given_up| ChannelHealth {
            last_attempt: Some(attempt(7, "retry")),
            consecutive_failures: failures,
            given_up_since_delivered: given_up,
        };
        apply_health(&mut channel, &failing(2, false));
        assert!(channel.healthy);
        assert_eq!(channel.consecutive_failures, 2);
        let last = channel.last_attempt.clone().unwrap();
        assert_eq!(last.outcome(), DeliveryOutcome::Retry);
        assert_eq!(
            (last.http_status, last.error.as_str(), last.reply.as_str()),
            (500, "HTTP 500", "oops")
        );
        apply_health(&mut channel, &failing(3, false));
        assert!(!channel.healthy, "three failures in a row");
        apply_health(&mut channel, &failing(1, true));
        assert!(!channel.healthy, "a give-up since the last delivery");
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_filters() {
        let cursor = LogCursor {
            outbox_id: 42,
            channel_id: Uuid::now_v7(),
        };
        let token = encode_cursor(cursor, "abc");
        assert_eq!(decode_cursor(&token, "abc").unwrap(), cursor);
        assert!(decode_cursor(&token, "def").is_err());
        assert!(decode_cursor(&page_token::encode_key("nonsense", "abc"), "abc").is_err());
    }
}
