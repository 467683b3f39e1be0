//! The one message a channel gets for a batch of notices: a single event's
//! own body, or, when the dispatcher grouped several events due to the
//! channel within its `group_wait`, one body listing them all.

use serde_json::Value;

use crate::{
    payload::{IncidentNotice, slack_group_body, webhook_group_body},
    settings::ChannelSettings,
};

/// The body sent to a channel of `settings`' kind for `notices` (at least one).
pub fn body(settings: &ChannelSettings, notices: &[IncidentNotice]) -> Value {
    match (settings, notices) {
        (ChannelSettings::Webhook(_), [notice]) => notice.webhook_body(),
        (ChannelSettings::Webhook(_), notices) => webhook_group_body(notices),
        (ChannelSettings::Slack(_), [notice]) => notice.slack_body(),
        (ChannelSettings::Slack(_), notices) => slack_group_body(notices),
        // Not JSON and not posted: `Sender::deliver` mails
        // `email::incident_mail(notices)` instead.
        (ChannelSettings::Email(_), _) => Value::Null,
    }
}
