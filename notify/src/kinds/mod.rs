//! The chat and paging kinds' request bodies, each in its own file:
//! [`discord`] (`content` + `embeds`), [`teams`] (an Adaptive Card in a
//! Workflows message envelope), [`telegram`] (`sendMessage` with HTML) and
//! [`pagerduty`] (Events API v2). The webhook and Slack bodies are in
//! `payload`.
//!
//! A chat message lists the notices it carries: one reads as the incident,
//! several as a list of at most [`MAX_LISTED`] lines and "… and N
//! more", so an outage that downs 500 jobs stays one readable message
//! within every service's size limit.
//!
//! Also here: what a kind's answer means when the status alone does not
//! say ([`interpret_reply`]): Telegram's `{"ok": false}` and its
//! `parameters.retry_after`, Discord's `retry_after` in the body.

pub mod discord;
pub mod pagerduty;
pub mod teams;
pub mod telegram;

use std::time::Duration;

use crate::{
    payload::{IncidentNotice, MAX_LISTED},
    settings::ChannelSettings,
};

/// An emoji for what a notice says (the chat kinds have no Slack emoji codes).
pub(crate) fn icon(notice: &IncidentNotice) -> &'static str {
    match notice.event.as_str() {
        "resolved" | "flapping_ended" => "\u{1F7E2}",
        "acknowledged" => "\u{1F440}",
        _ if notice.severity == "critical" => "\u{1F534}",
        _ => "\u{1F7E0}",
    }
}

/// `text` cut to at most `max` characters, ending in "…" when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The lines of a list message: one per notice while they fit in
/// `budget` characters (at most [`MAX_LISTED`]), then "… and N more".
pub(crate) fn listed(
    notices: &[IncidentNotice],
    budget: usize,
    line: impl Fn(&IncidentNotice) -> String,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut used = 0;
    for notice in notices.iter().take(MAX_LISTED) {
        let next = line(notice);
        // Room is kept for the "more" line.
        if used + next.chars().count() + 1 > budget.saturating_sub(40) {
            break;
        }
        used += next.chars().count() + 1;
        lines.push(next);
    }
    if lines.len() < notices.len() {
        lines.push(format!("… and {} more", notices.len() - lines.len()));
    }
    lines
}

/// What an answer means once its body is read: the status the retry
/// schedule judges, its wait, and an error for people ("" when delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub retry_after: Option<Duration>,
    pub error: String,
}

/// Reads a kind's answer: Telegram may refuse with `{"ok": false}` and
/// asks for a wait in `parameters.retry_after`; Discord gives
/// `retry_after` in the body of a 429 too. Every other kind is judged by
/// its status and `Retry-After` header.
pub fn interpret_reply(settings: &ChannelSettings, code: u16, retry_after: Option<Duration>, body: &str) -> Reply {
    match settings {
        ChannelSettings::Telegram(_) => telegram::interpret(code, retry_after, body),
        ChannelSettings::Discord(_) => discord::interpret(code, retry_after, body),
        _ => Reply {
            code,
            retry_after,
            error: status_error(code),
        },
    }
}

/// "" for a 2xx, else "HTTP <code>".
pub(crate) fn status_error(code: u16) -> String {
    if (200..300).contains(&code) {
        String::new()
    } else {
        format!("HTTP {code}")
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::{DateTime, Utc};
    use serde_json::json;
    use uuid::Uuid;

    use crate::payload::IncidentNotice;

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// An open critical incident of job "shop <eu>" (a name to escape).
    pub fn notice(event: &str) -> IncidentNotice {
        let id = Uuid::parse_str("0190a0a0-0000-7000-8000-000000000001").unwrap();
        IncidentNotice {
            event: event.into(),
            dedup_key: format!("{id}:{event}"),
            occurred_at: at("2026-12-01T10:05:00Z"),
            incident_id: id,
            cause: "down".into(),
            severity: "critical".into(),
            job_id: Uuid::parse_str("0190a0a0-0000-7000-8000-0000000000aa").unwrap(),
            job_name: "shop <eu> & *co*".into(),
            rule_id: None,
            rule_name: "web down".into(),
            failing_locations: vec!["eu-1".into()],
            first_failure: Some(
                json!({"outcome": "CHECK_OUTCOME_HTTP_STATUS", "status_code": 500, "location": "eu-1"}),
            ),
            opened_at: at("2026-12-01T10:00:00Z"),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            dashboard_url: Some(format!("https://monitor.example.com/ui/#/incidents/{id}")),
        }
    }

    /// `count` opened notices of distinct jobs.
    pub fn many(count: usize) -> Vec<IncidentNotice> {
        (0..count)
            .map(|i| {
                let mut n = notice("opened");
                n.job_name = format!("job-{i}");
                n.incident_id = Uuid::now_v7();
                n
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{fixtures::*, *};

    #[test]
    fn lists_stop_at_twenty_or_the_budget_and_count_the_rest() {
        let lines = listed(&many(500), 100_000, |n| n.job_name.clone());
        assert_eq!(lines.len(), MAX_LISTED + 1);
        assert_eq!(lines.last().unwrap(), "… and 480 more");
        let short = listed(&many(5), 100, |_| "x".repeat(25));
        assert_eq!(short, ["x".repeat(25), "x".repeat(25), "… and 3 more".into()]);
        assert_eq!(listed(&many(2), 1000, |n| n.job_name.clone()), ["job-0", "job-1"]);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 6), "héllo…");
    }
}
