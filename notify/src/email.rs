//! What an email notification says: a subject, and the same list of events
//! as plain text and as HTML (every piece of text escaped), so a batch of
//! 500 events reads as one message listing them ("[monitor] 500 incidents:
//! 480 opened, 20 resolved (shop, api, web and 497 more)").
//!
//! Everything comes from the notices, so every attempt of a delivery sends
//! the same message; the SMTP exchange is [`crate::smtp`].

use chrono::{DateTime, SecondsFormat, Utc};

use crate::payload::{IncidentNotice, first_failure_words};

/// Subjects start with this, for mail filters.
pub const SUBJECT_PREFIX: &str = "[monitor]";
/// Job names a batch's subject names before "and N more".
const SUBJECT_JOBS: usize = 3;

/// One email's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The words an event is counted under in a batch's summary.
fn event_words(event: &str) -> &str {
    match event {
        "reminder" => "still open",
        "flapping_ended" => "stopped flapping",
        other => other,
    }
}

/// "480 opened, 20 resolved": events counted in the order they first appear.
fn event_counts(notices: &[IncidentNotice]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for notice in notices {
        let words = event_words(&notice.event);
        match counts.iter_mut().find(|(seen, _)| *seen == words) {
            Some((_, count)) => *count += 1,
            None => counts.push((words, 1)),
        }
    }
    counts
        .iter()
        .map(|(words, count)| format!("{count} {words}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "3 incidents" or "1 incident", counting each incident once.
fn incidents(notices: &[IncidentNotice]) -> String {
    let mut ids: Vec<_> = notices.iter().map(|notice| notice.incident_id).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.len() {
        1 => "1 incident".to_owned(),
        n => format!("{n} incidents"),
    }
}

/// The notice's first line: "[CRITICAL] shop is down (eu-1)".
fn title(notice: &IncidentNotice) -> String {
    format!("[{}] {}", notice.severity.to_uppercase(), notice.headline())
}

/// The facts under a notice's title, as (label, value) pairs.
fn facts(notice: &IncidentNotice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Job", notice.job_name.clone()),
        ("Event", format!("{} at {}", notice.event, time(notice.occurred_at))),
        ("Rule", notice.rule_name.clone()),
        ("Opened", time(notice.opened_at)),
    ];
    if let Some(failure) = notice.first_failure.as_ref().and_then(first_failure_words) {
        facts.push(("First failure", failure));
    }
    if let Some(at) = notice.resolved_at {
        facts.push(("Resolved", time(at)));
    }
    facts.push(("Incident", notice.incident_id.to_string()));
    facts
}

/// The message telling of `notices` (one or a batch).
pub fn incident_mail(notices: &[IncidentNotice]) -> Mail {
    let subject = match notices {
        [] => format!("{SUBJECT_PREFIX} no events"),
        [one] => format!("{SUBJECT_PREFIX} {}", title(one)),
        many => {
            let mut jobs: Vec<&str> = Vec::new();
            for notice in many {
                if !jobs.contains(&notice.job_name.as_str()) {
                    jobs.push(&notice.job_name);
                }
            }
            let named = jobs[..jobs.len().min(SUBJECT_JOBS)].join(", ");
            let more = match jobs.len().saturating_sub(SUBJECT_JOBS) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!(
                "{SUBJECT_PREFIX} {}: {} ({named}{more})",
                incidents(many),
                event_counts(many)
            )
        }
    };
    let summary = (notices.len() > 1).then(|| format!("{}: {}.", incidents(notices), event_counts(notices)));

    let mut text = String::new();
    if let Some(summary) = &summary {
        text.push_str(summary);
        text.push_str("\n\n");
    }
    for notice in notices {
        text.push_str(&title(notice));
        text.push('\n');
        for (label, value) in facts(notice) {
            text.push_str(&format!("  {label}: {value}\n"));
        }
        if let Some(url) = &notice.dashboard_url {
            text.push_str(&format!("  {url}\n"));
        }
        text.push('\n');
    }
    text.push_str("-- \nSent by monitor.\n");

    let mut html = String::from("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n");
    if let Some(summary) = &summary {
        html.push_str(&format!("<p><strong>{}</strong></p>\n", escape(summary)));
    }
    html.push_str("<ul>\n");
    for notice in notices {
        html.push_str(&format!("<li><p><strong>{}</strong>", escape(&title(notice))));
        if let Some(url) = &notice.dashboard_url {
            html.push_str(&format!(" <a href=\"{}\">View incident</a>", escape(url)));
        }
        html.push_str("<br>\n");
        let facts: Vec<String> = facts(notice)
            .into_iter()
            .map(|(label, value)| format!("{label}: {}", escape(&value)))
            .collect();
        html.push_str(&facts.join("<br>\n"));
        html.push_str("</p></li>\n");
    }
    html.push_str("</ul>\n<p style=\"color: #666\">Sent by monitor.</p>\n</body></html>\n");
    Mail { subject, text, html }
}

/// The message a test send mails.
pub fn test_mail(channel_name: &str, at: DateTime<Utc>) -> Mail {
    let line = format!("Test notification from monitor for channel {channel_name:?}: it works.");
    Mail {
        subject: format!("{SUBJECT_PREFIX} Test notification for channel {channel_name:?}"),
        text: format!("{line}\nSent at {}.\n", time(at)),
        html: format!(
            "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n<p>{}</p>\n<p>Sent at {}.</p>\n</body></html>\n",
            escape(&line),
            time(at)
        ),
    }
}

/// Text made safe for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The Message-ID of a delivery: `<delivery-id@monitor>` with the
/// characters a message id may not hold (the delivery id's colons) as
/// dots, so every attempt of a delivery sends the same Message-ID and a
/// reader (or a mail system's duplicate filter) sees one message.
pub fn message_id(delivery_id: &str) -> String {
    let mut left = String::with_capacity(delivery_id.len());
    for c in delivery_id.chars() {
        let keep = c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        if keep {
            left.push(c);
        } else if !left.is_empty() && !left.ends_with('.') {
            left.push('.');
        }
    }
    let left = left.trim_end_matches('.');
    let left = if left.is_empty() { "delivery" } else { left };
    format!("<{left}@monitor>")
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn notice(event: &str, job: &str, incident: u128) -> IncidentNotice {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        IncidentNotice {
            event: event.into(),
            dedup_key: format!("{}:{event}", Uuid::from_u128(incident)),
            occurred_at: at("2026-12-01T10:05:00Z"),
            incident_id: Uuid::from_u128(incident),
            cause: "down".into(),
            severity: "critical".into(),
            job_id: Uuid::from_u128(incident + 1000),
            job_name: job.into(),
            rule_id: None,
            rule_name: "web <down>".into(),
            failing_locations: vec!["eu-1".into()],
            first_failure: Some(json!({"status_code": 500, "location": "eu-1"})),
            opened_at: at("2026-12-01T10:00:00Z"),
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: (event == "resolved").then(|| at("2026-12-01T10:05:00Z")),
            resolved_by: None,
            dashboard_url: Some(format!("https://monitor.example.com/ui/#/incidents/{incident}?a=1&b=2")),
        }
    }

    #[test]
    fn one_event_names_itself_in_both_bodies() {
        let mail = incident_mail(&[notice("opened", "shop <eu> & co", 1)]);
        assert_eq!(mail.subject, "[monitor] [CRITICAL] shop <eu> & co is down (eu-1)");
        assert!(
            mail.text.contains("[CRITICAL] shop <eu> & co is down (eu-1)\n"),
            "{}",
            mail.text
        );
        assert!(
            mail.text.contains("  Event: opened at 2026-12-01T10:05:00.000Z\n"),
            "{}",
            mail.text
        );
        assert!(
            mail.text.contains("  First failure: HTTP 500 from eu-1\n"),
            "{}",
            mail.text
        );
        assert!(
            mail.text
                .contains("https://monitor.example.com/ui/#/incidents/1?a=1&b=2")
        );
        // HTML: every piece of text escaped, the link's attribute too.
        assert!(mail.html.contains("shop &lt;eu&gt; &amp; co is down"), "{}", mail.html);
        assert!(mail.html.contains("Rule: web &lt;down&gt;"), "{}", mail.html);
        assert!(
            mail.html
                .contains("href=\"https://monitor.example.com/ui/#/incidents/1?a=1&amp;b=2\"")
        );
        assert!(!mail.html.contains("<eu>") && !mail.html.contains("<down>"));
    }

    #[test]
    fn a_batch_of_500_is_one_readable_message() {
        let mut notices: Vec<_> = (0..480).map(|i| notice("opened", &format!("job-{i}"), i)).collect();
        notices.extend((480..500).map(|i| notice("resolved", &format!("job-{i}"), i)));
        let mail = incident_mail(&notices);
        assert_eq!(
            mail.subject,
            "[monitor] 500 incidents: 480 opened, 20 resolved (job-0, job-1, job-2 and 497 more)"
        );
        assert!(mail.text.starts_with("500 incidents: 480 opened, 20 resolved.\n\n"));
        for i in [0, 250, 499] {
            assert!(mail.text.contains(&format!("[CRITICAL] job-{i} ")), "job-{i}");
            assert!(mail.html.contains(&format!("<strong>[CRITICAL] job-{i} ")), "job-{i}");
        }
        assert_eq!(mail.html.matches("<li>").count(), 500);
        assert!(mail.text.contains("job-499 recovered after 5m 0s"));
    }

    #[test]
    fn two_events_of_one_incident_count_it_once() {
        let mail = incident_mail(&[notice("opened", "shop", 7), notice("reminder", "shop", 7)]);
        assert_eq!(mail.subject, "[monitor] 1 incident: 1 opened, 1 still open (shop)");
    }

    #[test]
    fn message_ids_are_stable_and_well_formed() {
        let id = "0190a0a0-0000-7000-8000-000000000001:opened:0191b0b0-0000-7000-8000-000000000002";
        assert_eq!(
            message_id(id),
            "<0190a0a0-0000-7000-8000-000000000001.opened.0191b0b0-0000-7000-8000-000000000002@monitor>"
        );
        assert_eq!(message_id(id), message_id(id));
        assert_eq!(message_id("::a  b::"), "<a.b@monitor>");
        assert_eq!(message_id(":::"), "<delivery@monitor>");
    }

    #[test]
    fn the_test_mail_names_the_channel() {
        let mail = test_mail("ops <mail>", Utc::now());
        assert!(mail.subject.contains("\"ops <mail>\""));
        assert!(mail.text.contains("it works"));
        assert!(mail.html.contains("ops &lt;mail&gt;"));
    }
}
