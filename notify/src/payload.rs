//! What an incident event looks like on the wire.
//!
//! The webhook payload is a documented, versioned JSON document (README,
//! "Notifications"): `version` is 1, and fields are only ever added to
//! version 1; a change that breaks a reader becomes version 2. Everything
//! in it comes from the outbox row and the incident, so every attempt of a
//! delivery sends the same body. Slack gets `text` (what notifications and
//! old clients show) plus `blocks`; Discord, Teams, Telegram and PagerDuty
//! bodies are in `kinds`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{kinds, settings::ChannelSettings};

/// The payload version webhooks receive.
pub const PAYLOAD_VERSION: u32 = 1;

/// The event a notification tells of, with the incident as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentNotice {
    /// opened, reminder, acknowledged, resolved, flapping, flapping_ended.
    pub event: String,
    /// The outbox row's dedup key.
    pub dedup_key: String,
    /// When the outbox row was written: when it was decided.
    pub occurred_at: DateTime<Utc>,
    pub incident_id: Uuid,
    /// "down" or "no_data".
    pub cause: String,
    pub severity: String,
    pub job_id: Uuid,
    pub job_name: String,
    pub rule_id: Option<Uuid>,
    pub rule_name: String,
    pub failing_locations: Vec<String>,
    /// The first failed check (outcome, status_code, error, location, ...),
    /// as stored; None for no-data incidents.
    pub first_failure: Option<Value>,
    pub opened_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    /// The incident's page on the dashboard (None: no dashboard URL set).
    pub dashboard_url: Option<String>,
}

pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl IncidentNotice {
    /// From opening to resolving, or to when the event was decided while
    /// it is open; whole seconds.
    pub fn downtime_seconds(&self) -> i64 {
        let end = self.resolved_at.unwrap_or(self.occurred_at);
        (end - self.opened_at).num_seconds().max(0)
    }

    /// The webhook body (version 1).
    pub fn webhook_body(&self) -> Value {
        json!({
            "version": PAYLOAD_VERSION,
            "event": self.event,
            "dedup_key": self.dedup_key,
            "occurred_at": time(self.occurred_at),
            "incident": {
                "id": self.incident_id,
                "cause": self.cause,
                "severity": self.severity,
                "state": if self.resolved_at.is_some() { "resolved" } else if self.acknowledged_at.is_some() { "acknowledged" } else { "open" },
                "opened_at": time(self.opened_at),
                "acknowledged_at": self.acknowledged_at.map(time),
                "acknowledged_by": self.acknowledged_by,
                "resolved_at": self.resolved_at.map(time),
                "resolved_by": self.resolved_by,
                "downtime_seconds": self.downtime_seconds(),
                "failing_locations": self.failing_locations,
                "first_failure": self.first_failure,
                "url": self.dashboard_url,
            },
            "job": { "id": self.job_id, "name": self.job_name },
            "rule": { "id": self.rule_id, "name": self.rule_name },
        })
    }

    /// One line saying what happened.
    pub fn headline(&self) -> String {
        let job = &self.job_name;
        let problem = if self.cause == "no_data" {
            "sends no results".to_owned()
        } else if self.failing_locations.is_empty() {
            "is down".to_owned()
        } else {
            format!("is down ({})", self.failing_locations.join(", "))
        };
        match self.event.as_str() {
            "opened" => format!("{job} {problem}"),
            "reminder" => format!("Still open: {job} {problem}"),
            "acknowledged" => format!(
                "{job}: acknowledged by {}",
                self.acknowledged_by.as_deref().unwrap_or("someone")
            ),
            "resolved" => format!("{job} recovered after {}", words(self.downtime_seconds())),
            "flapping" => format!("{job} is flapping between down and up"),
            "flapping_ended" => format!("{job} stopped flapping"),
            other => format!("{job}: {other}"),
        }
    }

    /// Slack's emoji for the event.
    fn slack_icon(&self) -> &'static str {
        match self.event.as_str() {
            "resolved" | "flapping_ended" => ":large_green_circle:",
            "acknowledged" => ":eyes:",
            _ if self.severity == "critical" => ":red_circle:",
            _ => ":large_orange_circle:",
        }
    }

    /// The Slack incoming-webhook body: `text` plus `blocks`.
    pub fn slack_body(&self) -> Value {
        let icon = self.slack_icon();
        let text = format!("{icon} [{}] {}", self.severity.to_uppercase(), self.headline());
        let mut context = format!(
            "rule {} · opened {}",
            slack_escape(&self.rule_name),
            time(self.opened_at)
        );
        if let Some(failure) = self.first_failure.as_ref().and_then(first_failure_words) {
            context.push_str(&format!(" · first failure: {}", slack_escape(&failure)));
        }
        let mut headline = format!("{icon} *{}*", slack_escape(&self.headline()));
        if let Some(url) = &self.dashboard_url {
            headline.push_str(&format!(" <{url}|View incident>"));
        }
        json!({
            "text": text,
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": headline } },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] },
            ],
        })
    }
}

/// Most events a grouped chat message lists one by one; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// The webhook body of several events sent together (`event: "group"`):
/// `events` holds each one's own version-1 body, oldest first.
pub fn webhook_group_body(notices: &[IncidentNotice]) -> Value {
    json!({
        "version": PAYLOAD_VERSION,
        "event": "group",
        "count": notices.len(),
        "occurred_at": notices.iter().map(|notice| notice.occurred_at).max().map(time),
        "events": notices.iter().map(IncidentNotice::webhook_body).collect::<Vec<_>>(),
    })
}

/// "3 incident events: 2 opened, 1 resolved" (events counted in the order
/// they first appear).
pub fn group_summary(notices: &[IncidentNotice]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for notice in notices {
        match counts.iter_mut().find(|(event, _)| *event == notice.event) {
            Some((_, count)) => *count += 1,
            None => counts.push((&notice.event, 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(event, count)| format!("{count} {}", event.replace('_', " ")))
        .collect();
    format!("{} incident events: {}", notices.len(), parts.join(", "))
}

/// The Slack body of several events: the summary as `text`, then a line
/// for each of the first [`MAX_LISTED`] and a count of the rest.
pub fn slack_group_body(notices: &[IncidentNotice]) -> Value {
    let summary = group_summary(notices);
    let mut blocks = vec![
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}*", slack_escape(&summary)) } }),
    ];
    for notice in notices.iter().take(MAX_LISTED) {
        let mut line = format!(
            "{} [{}] {}",
            notice.slack_icon(),
            notice.severity.to_uppercase(),
            slack_escape(&notice.headline())
        );
        if let Some(url) = &notice.dashboard_url {
            line.push_str(&format!(" <{url}|View>"));
        }
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": line } }));
    }
    if notices.len() > MAX_LISTED {
        blocks.push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": format!("and {} more", notices.len() - MAX_LISTED) } ] }));
    }
    json!({ "text": summary, "blocks": blocks })
}

/// The first failure in a few words: "HTTP 500 from eu-1" or the error.
pub(crate) fn first_failure_words(failure: &Value) -> Option<String> {
    let location = failure.get("location").and_then(Value::as_str).unwrap_or_default();
    let status = failure.get("status_code").and_then(Value::as_u64).unwrap_or(0);
    let error = failure.get("error").and_then(Value::as_str).unwrap_or_default();
    let what = if status > 0 {
        format!("HTTP {status}")
    } else if !error.is_empty() {
        error.to_owned()
    } else {
        failure.get("outcome").and_then(Value::as_str)?.to_owned()
    };
    Some(if location.is_empty() {
        what
    } else {
        format!("{what} from {location}")
    })
}

/// A duration in the largest units that fit: "3m 20s", "2h 5m", "45s".
fn words(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{}h {}m", s / 3600, (s % 3600) / 60),
    }
}

/// Slack's mrkdwn control characters escaped as Slack asks.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The body a test send posts: a webhook gets `event: "test"` with no
/// incident, the chat kinds a line saying it works, PagerDuty an `info`
/// trigger (`kinds::pagerduty::test_body`). Email is not posted: its test
/// is `email::test_mail`, and its body here is null.
pub fn test_body(settings: &ChannelSettings, channel_name: &str, at: DateTime<Utc>) -> Value {
    let text = format!("Test notification from monitor for channel {channel_name:?}: it works.");
    match settings {
        ChannelSettings::Slack(_) => json!({
            "text": text,
            "blocks": [ { "type": "section", "text": { "type": "mrkdwn", "text": slack_escape(&text) } } ],
        }),
        ChannelSettings::Discord(_) => kinds::discord::test_body(&text, at),
        ChannelSettings::Teams(_) => kinds::teams::test_body(&text, at),
        ChannelSettings::Telegram(telegram) => kinds::telegram::test_body(telegram, &text, at),
        ChannelSettings::PagerDuty(pagerduty) => kinds::pagerduty::test_body(pagerduty, channel_name, &text, at),
        ChannelSettings::Email(_) => Value::Null,
        ChannelSettings::Webhook(_) => json!({
            "version": PAYLOAD_VERSION,
            "event": "test",
            "occurred_at": time(at),
            "message": text,
            "incident": null,
            "job": null,
            "rule": null,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event: &str) -> IncidentNotice {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        IncidentNotice {
            event: event.into(),
            dedup_key: format!("0190a0a0-0000-7000-8000-000000000001:{event}"),
            occurred_at: at("2026-12-01T10:05:00Z"),
            incident_id: Uuid::parse_str("0190a0a0-0000-7000-8000-000000000001").unwrap(),
            cause: "down".into(),
            severity: "critical".into(),
            job_id: Uuid::parse_str("0190a0a0-0000-7000-8000-000000000002").unwrap(),
            job_name: "shop <eu>".into(),
            rule_id: Some(Uuid::parse_str("0190a0a0-0000-7000-8000-000000000003").unwrap()),
            rule_name: "web down".into(),
            failing_locations: vec!["eu-1".into(), "us-1".into()],
            first_failure: Some(
                json!({"outcome": "CHECK_OUTCOME_HTTP_STATUS", "status_code": 500, "error": "", "location": "eu-1"}),
            ),
            opened_at: at("2026-12-01T10:00:00Z"),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            dashboard_url: Some(
                "https://monitor.example.com/ui/#/incidents/0190a0a0-0000-7000-8000-000000000001".into(),
            ),
        }
    }

    #[test]
    fn webhook_body_has_the_documented_shape() {
        let body = notice("opened").webhook_body();
        assert_eq!(body["version"], 1);
        assert_eq!(body["event"], "opened");
        assert_eq!(body["occurred_at"], "2026-12-01T10:05:00.000Z");
        assert_eq!(body["incident"]["id"], "0190a0a0-0000-7000-8000-000000000001");
        assert_eq!(body["incident"]["state"], "open");
        assert_eq!(body["incident"]["downtime_seconds"], 300);
        assert_eq!(body["incident"]["failing_locations"], json!(["eu-1", "us-1"]));
        assert_eq!(body["incident"]["first_failure"]["status_code"], 500);
        assert_eq!(body["incident"]["resolved_at"], Value::Null);
        assert_eq!(body["job"]["name"], "shop <eu>");
        assert_eq!(body["rule"]["name"], "web down");
    }

    #[test]
    fn resolved_downtime_runs_to_the_resolve() {
        let mut resolved = notice("resolved");
        resolved.resolved_at = Some(resolved.opened_at + chrono::Duration::seconds(200));
        assert_eq!(resolved.downtime_seconds(), 200);
        assert_eq!(resolved.webhook_body()["incident"]["state"], "resolved");
        assert_eq!(resolved.headline(), "shop <eu> recovered after 3m 20s");
    }

    #[test]
    fn slack_body_has_text_and_escaped_blocks() {
        let body = notice("opened").slack_body();
        assert_eq!(body["text"], ":red_circle: [CRITICAL] shop <eu> is down (eu-1, us-1)");
        let section = body["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("shop &lt;eu&gt;"), "{section}");
        assert!(section.contains("|View incident>"), "{section}");
        let context = body["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains("HTTP 500 from eu-1"), "{context}");
    }

    #[test]
    fn headlines_name_the_event() {
        assert_eq!(
            notice("reminder").headline(),
            "Still open: shop <eu> is down (eu-1, us-1)"
        );
        let mut no_data = notice("opened");
        no_data.cause = "no_data".into();
        assert_eq!(no_data.headline(), "shop <eu> sends no results");
        assert_eq!(words(7500), "2h 5m");
    }

    #[test]
    fn groups_list_every_event_for_webhooks_and_the_first_twenty_for_slack() {
        let mut notices: Vec<IncidentNotice> = (0..25).map(|_| notice("opened")).collect();
        notices[3].event = "resolved".into();
        notices[3].resolved_at = Some(notices[3].occurred_at);
        let body = webhook_group_body(&notices);
        assert_eq!(body["event"], "group");
        assert_eq!(body["count"], 25);
        assert_eq!(body["events"].as_array().unwrap().len(), 25);
        assert_eq!(body["events"][3], notices[3].webhook_body());
        assert_eq!(group_summary(&notices), "25 incident events: 24 opened, 1 resolved");
        let slack = slack_group_body(&notices);
        assert_eq!(slack["text"], "25 incident events: 24 opened, 1 resolved");
        let blocks = slack["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1 + MAX_LISTED + 1);
        assert_eq!(blocks[21]["elements"][0]["text"], "and 5 more");
        assert!(blocks[4]["text"]["text"].as_str().unwrap().contains("recovered"));
    }

    #[test]
    fn test_bodies() {
        use crate::settings::*;
        let at = Utc::now();
        let webhook = ChannelSettings::Webhook(WebhookSettings::default());
        assert_eq!(test_body(&webhook, "ops", at)["event"], "test");
        let slack = ChannelSettings::Slack(SlackSettings::default());
        assert!(
            test_body(&slack, "ops", at)["text"]
                .as_str()
                .unwrap()
                .contains("\"ops\"")
        );
        let telegram = ChannelSettings::Telegram(TelegramSettings {
            chat_id: "@ops".into(),
            ..TelegramSettings::default()
        });
        let sent = test_body(&telegram, "<ops>", at);
        assert_eq!(sent["chat_id"], "@ops");
        assert!(
            sent["text"].as_str().unwrap().contains("&quot;&lt;ops&gt;&quot;"),
            "{sent}"
        );
        let pagerduty = ChannelSettings::PagerDuty(PagerDutySettings {
            routing_key: "k".repeat(32),
            events_url: String::new(),
        });
        let sent = test_body(&pagerduty, "ops", at);
        assert_eq!(sent["event_action"], "trigger");
        assert_eq!(sent["dedup_key"], "monitor-test:ops");
        assert_eq!(sent["payload"]["severity"], "info");
        let discord = ChannelSettings::Discord(DiscordSettings::default());
        assert!(
            test_body(&discord, "ops", at)["content"]
                .as_str()
                .unwrap()
                .contains("ops")
        );
        let teams = ChannelSettings::Teams(TeamsSettings::default());
        assert_eq!(test_body(&teams, "ops", at)["type"], "message");
    }
}
