//! The one message a channel gets for a batch of notices: a single event's
//! own body, or, when the dispatcher grouped several events due to the
//! channel within its `group_wait`, one body listing them all.
//!
//! PagerDuty takes one event per request and its channels are never
//! grouped (the server keeps their `group_wait` at 0), so its batches hold
//! one notice; were a stored channel given a wait anyway, the batch's
//! first notice is sent (each incident's later events bring PagerDuty to
//! its state again: see `kinds::pagerduty`).

use serde_json::Value;

use crate::{
    kinds,
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
        (ChannelSettings::Discord(_), notices) => kinds::discord::body(notices),
        (ChannelSettings::Teams(_), notices) => kinds::teams::body(notices),
        (ChannelSettings::Telegram(telegram), notices) => kinds::telegram::body(telegram, notices),
        (ChannelSettings::PagerDuty(pagerduty), notices) => match notices.first() {
            Some(notice) => kinds::pagerduty::event(pagerduty, notice),
            None => Value::Null,
        },
        // Not JSON and not posted: `Sender::deliver` mails
        // `email::incident_mail(notices)` instead.
        (ChannelSettings::Email(_), _) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kinds::fixtures::{many, notice},
        settings::{DiscordSettings, PagerDutySettings, TeamsSettings, TelegramSettings},
    };

    #[test]
    fn chat_kinds_list_a_batch_and_pagerduty_sends_one_event() {
        let batch = many(3);
        let discord = body(&ChannelSettings::Discord(DiscordSettings::default()), &batch);
        assert_eq!(discord["content"], "3 incident events: 3 opened");
        let teams = body(&ChannelSettings::Teams(TeamsSettings::default()), &batch);
        assert_eq!(teams["attachments"][0]["content"]["body"].as_array().unwrap().len(), 4);
        let telegram = ChannelSettings::Telegram(TelegramSettings {
            chat_id: "@ops_channel".into(),
            ..TelegramSettings::default()
        });
        assert!(body(&telegram, &batch)["text"].as_str().unwrap().contains("job-2"));
        let pagerduty = ChannelSettings::PagerDuty(PagerDutySettings::default());
        let event = body(&pagerduty, &[notice("opened")]);
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], notice("opened").incident_id.to_string());
    }
}
