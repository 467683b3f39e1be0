//! PagerDuty Events API v2 (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>).
//!
//! One incident is one PagerDuty alert: every event carries `dedup_key` =
//! the incident id, so a retry, a restart or a second dispatcher never
//! opens a second alert. The action follows the incident as it is when the
//! event is sent, not only the event's name, because PagerDuty turns a
//! `trigger` for a resolved key into a *new* alert:
//!
//! | incident now | event | `event_action` |
//! |---|---|---|
//! | resolved | any (a late `opened`, `reminder`, `flapping`, `flapping_ended`, `resolved`) | `resolve` |
//! | open | `acknowledged` | `acknowledge` |
//! | open | `opened`, `reminder`, `flapping`, `flapping_ended` | `trigger` |
//!
//! A `trigger` for a key already open only adds to that alert's log (an
//! acknowledged one stays acknowledged and quiet), so a reminder is a no-op
//! upstream; `flapping_ended` on an open incident triggers, which is the
//! first PagerDuty hears of an incident whose opening was held back while
//! it flapped. Severity: critical, warning and info as they are, anything
//! else `error`. PagerDuty is never grouped: one event per notice.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::truncate;
use crate::payload::{IncidentNotice, time};
use crate::settings::PagerDutySettings;

/// Longest `payload.summary` PagerDuty keeps.
pub const MAX_SUMMARY_CHARS: usize = 1024;

/// The `event_action` for a notice (see the module's table).
pub fn event_action(notice: &IncidentNotice) -> &'static str {
    if notice.resolved_at.is_some() {
        "resolve"
    } else if notice.event == "acknowledged" {
        "acknowledge"
    } else {
        "trigger"
    }
}

/// PagerDuty's severity for ours.
pub fn severity(ours: &str) -> &'static str {
    match ours {
        "critical" => "critical",
        "warning" => "warning",
        "info" => "info",
        _ => "error",
    }
}

/// The event for one notice.
pub fn event(settings: &PagerDutySettings, notice: &IncidentNotice) -> Value {
    let action = event_action(notice);
    let mut event = json!({
        "routing_key": settings.routing_key,
        "event_action": action,
        "dedup_key": notice.incident_id.to_string(),
    });
    if action != "trigger" {
        return event;
    }
    let source = if notice.job_name.is_empty() {
        "monitor"
    } else {
        &notice.job_name
    };
    event["client"] = json!("monitor");
    event["payload"] = json!({
        "summary": truncate(&notice.headline(), MAX_SUMMARY_CHARS),
        "source": truncate(source, 255),
        "severity": severity(&notice.severity),
        "timestamp": time(notice.occurred_at),
        "component": truncate(source, 255),
        "group": notice.rule_name,
        "class": notice.cause,
        "custom_details": {
            "event": notice.event,
            "incident_id": notice.incident_id,
            "job_id": notice.job_id,
            "job": notice.job_name,
            "rule": notice.rule_name,
            "cause": notice.cause,
            "severity": notice.severity,
            "failing_locations": notice.failing_locations,
            "first_failure": notice.first_failure,
            "opened_at": time(notice.opened_at),
            "acknowledged_by": notice.acknowledged_by,
            "downtime_seconds": notice.downtime_seconds(),
        },
    });
    if let Some(url) = &notice.dashboard_url {
        event["client_url"] = json!(url);
        event["links"] = json!([{ "href": url, "text": "View incident in monitor" }]);
    }
    event
}

/// The test event: an `info` trigger with the dedup key
/// `monitor-test:<channel name>` (so repeated tests add to one alert),
/// which someone resolves in PagerDuty.
pub fn test_body(settings: &PagerDutySettings, channel_name: &str, text: &str, at: DateTime<Utc>) -> Value {
    json!({
        "routing_key": settings.routing_key,
        "event_action": "trigger",
        "dedup_key": truncate(&format!("monitor-test:{channel_name}"), 255),
        "client": "monitor",
        "payload": {
            "summary": truncate(text, MAX_SUMMARY_CHARS),
            "source": "monitor",
            "severity": "info",
            "timestamp": time(at),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::fixtures::notice;

    fn settings() -> PagerDutySettings {
        PagerDutySettings {
            routing_key: "0123456789abcdef0123456789abcdef".into(),
            events_url: String::new(),
        }
    }

    #[test]
    fn an_opened_incident_triggers_with_its_id_as_dedup_key() {
        let event = event(&settings(), &notice("opened"));
        assert_eq!(event["routing_key"], "0123456789abcdef0123456789abcdef");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["dedup_key"], "0190a0a0-0000-7000-8000-000000000001");
        let payload = &event["payload"];
        assert_eq!(payload["summary"], "shop <eu> & *co* is down (eu-1)");
        assert_eq!(payload["source"], "shop <eu> & *co*");
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["timestamp"], "2026-12-01T10:05:00.000Z");
        assert_eq!(payload["custom_details"]["first_failure"]["status_code"], 500);
        assert_eq!(
            event["links"][0]["href"],
            "https://monitor.example.com/ui/#/incidents/0190a0a0-0000-7000-8000-000000000001"
        );
    }

    #[test]
    fn actions_follow_the_incident_as_it_is() {
        let mut acknowledged = notice("acknowledged");
        acknowledged.acknowledged_at = Some(acknowledged.occurred_at);
        assert_eq!(event_action(&acknowledged), "acknowledge");
        let ack = event(&settings(), &acknowledged);
        assert_eq!(ack["dedup_key"], "0190a0a0-0000-7000-8000-000000000001");
        assert_eq!(ack.get("payload"), None);
        for open in ["opened", "reminder", "flapping", "flapping_ended"] {
            assert_eq!(event_action(&notice(open)), "trigger", "{open}");
        }
        let mut reminder_after_ack = notice("reminder");
        reminder_after_ack.acknowledged_at = Some(reminder_after_ack.occurred_at);
        assert_eq!(event_action(&reminder_after_ack), "trigger");
        for late in ["opened", "reminder", "acknowledged", "flapping_ended", "resolved"] {
            let mut resolved = notice(late);
            resolved.resolved_at = Some(resolved.occurred_at);
            assert_eq!(event_action(&resolved), "resolve", "{late}");
        }
    }

    #[test]
    fn severities_map_onto_pagerdutys() {
        assert_eq!(severity("critical"), "critical");
        assert_eq!(severity("warning"), "warning");
        assert_eq!(severity("info"), "info");
        assert_eq!(severity("major"), "error");
        let mut long = notice("opened");
        long.job_name = "j".repeat(2000);
        let event = event(&settings(), &long);
        assert!(event["payload"]["summary"].as_str().unwrap().chars().count() <= MAX_SUMMARY_CHARS);
        assert!(event["payload"]["source"].as_str().unwrap().chars().count() <= 255);
    }
}
