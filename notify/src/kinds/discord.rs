//! Discord webhook bodies (<https://discord.com/developers/docs/resources/webhook#execute-webhook>):
//! `content` (what notifications show, at most 2000 characters) and one
//! embed (title at most 256, description at most 4096, at most 25 fields
//! of at most 1024, 6000 characters in all). `allowed_mentions` is empty,
//! so a job named `@everyone` pings nobody.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Reply, icon, listed, status_error, truncate};
use crate::payload::{IncidentNotice, first_failure_words, group_summary, time};

/// Discord's limits that the bodies keep to.
pub const MAX_CONTENT_CHARS: usize = 2000;
pub const MAX_TITLE_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 4096;
pub const MAX_FIELD_VALUE_CHARS: usize = 1024;

/// The body for `notices` (one: the incident; several: a list).
pub fn body(notices: &[IncidentNotice]) -> Value {
    match notices {
        [one] => json!({
            "content": truncate(&format!("{} [{}] {}", icon(one), one.severity.to_uppercase(), escape(&one.headline())), MAX_CONTENT_CHARS),
            "embeds": [embed(one)],
            "allowed_mentions": { "parse": [] },
        }),
        many => {
            let lines = listed(many, MAX_DESCRIPTION_CHARS, |notice| {
                let mut line = format!(
                    "{} **[{}]** {}",
                    icon(notice),
                    notice.severity.to_uppercase(),
                    escape(&truncate(&notice.headline(), 200))
                );
                if let Some(url) = &notice.dashboard_url {
                    line.push_str(&format!(" ([view]({url}))"));
                }
                line
            });
            let summary = group_summary(many);
            json!({
                "content": truncate(&summary, MAX_CONTENT_CHARS),
                "embeds": [{
                    "title": truncate(&summary, MAX_TITLE_CHARS),
                    "description": truncate(&lines.join("\n"), MAX_DESCRIPTION_CHARS),
                    "color": color(&many[0]),
                    "timestamp": many.last().map(|notice| time(notice.occurred_at)),
                }],
                "allowed_mentions": { "parse": [] },
            })
        }
    }
}

fn embed(notice: &IncidentNotice) -> Value {
    let mut fields = vec![
        field("Severity", &notice.severity, true),
        field("Job", &escape(&notice.job_name), true),
        field("Rule", &escape(&notice.rule_name), true),
        field("Opened", &time(notice.opened_at), true),
    ];
    if !notice.failing_locations.is_empty() {
        fields.push(field("Failing locations", &notice.failing_locations.join(", "), true));
    }
    if let Some(failure) = notice.first_failure.as_ref().and_then(first_failure_words) {
        fields.push(field("First failure", &escape(&failure), false));
    }
    let mut embed = json!({
        "title": truncate(&notice.headline(), MAX_TITLE_CHARS),
        "color": color(notice),
        "timestamp": time(notice.occurred_at),
        "fields": fields,
        "footer": { "text": format!("incident {}", notice.incident_id) },
    });
    if let Some(url) = &notice.dashboard_url {
        embed["url"] = json!(url);
    }
    embed
}

/// A field; Discord refuses empty names and values.
fn field(name: &str, value: &str, inline: bool) -> Value {
    let value = if value.is_empty() { "—" } else { value };
    json!({ "name": name, "value": truncate(value, MAX_FIELD_VALUE_CHARS), "inline": inline })
}

fn color(notice: &IncidentNotice) -> u32 {
    match notice.event.as_str() {
        "resolved" | "flapping_ended" => 0x2EB67D,
        "acknowledged" => 0x36C5F0,
        _ if notice.severity == "critical" => 0xE01E5A,
        _ => 0xECB22E,
    }
}

/// Discord markdown's control characters escaped with a backslash.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The test message.
pub fn test_body(text: &str, at: DateTime<Utc>) -> Value {
    json!({
        "content": truncate(&escape(text), MAX_CONTENT_CHARS),
        "embeds": [{ "title": "Test notification", "description": escape(text), "timestamp": time(at), "color": 0x36C5F0 }],
        "allowed_mentions": { "parse": [] },
    })
}

/// A 429's wait from the body's `retry_after` (seconds, fractional) when
/// the `Retry-After` header gave none.
pub(crate) fn interpret(code: u16, retry_after: Option<Duration>, body: &str) -> Reply {
    let from_body = || {
        let seconds = serde_json::from_str::<Value>(body).ok()?.get("retry_after")?.as_f64()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
    };
    Reply {
        code,
        retry_after: retry_after.or_else(|| if code == 429 { from_body() } else { None }),
        error: status_error(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::fixtures::{many, notice};

    #[test]
    fn one_notice_is_content_and_an_embed_within_limits() {
        let body = body(&[notice("opened")]);
        let content = body["content"].as_str().unwrap();
        assert!(
            content.starts_with("\u{1F534} [CRITICAL] shop <eu> & \\*co\\* is down"),
            "{content}"
        );
        let embed = &body["embeds"][0];
        assert_eq!(embed["color"], 0xE01E5A);
        assert_eq!(
            embed["url"],
            "https://monitor.example.com/ui/#/incidents/0190a0a0-0000-7000-8000-000000000001"
        );
        assert_eq!(embed["timestamp"], "2026-12-01T10:05:00.000Z");
        let fields = embed["fields"].as_array().unwrap();
        assert!(fields.iter().all(|f| !f["value"].as_str().unwrap().is_empty()));
        assert_eq!(fields.last().unwrap()["value"], "HTTP 500 from eu-1");
        assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn many_notices_are_one_listed_embed() {
        let body = body(&many(500));
        assert_eq!(body["embeds"].as_array().unwrap().len(), 1);
        assert_eq!(body["content"], "500 incident events: 500 opened");
        let description = body["embeds"][0]["description"].as_str().unwrap();
        assert!(description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert_eq!(description.lines().count(), 21, "{description}");
        assert!(description.ends_with("… and 480 more"), "{description}");
        assert!(description.contains("job-0"), "{description}");
    }

    #[test]
    fn long_names_are_cut_to_the_limits() {
        let mut long = notice("opened");
        long.job_name = "x".repeat(5000);
        long.rule_name = String::new();
        let body = body(&[long]);
        assert!(body["content"].as_str().unwrap().chars().count() <= MAX_CONTENT_CHARS);
        assert!(body["embeds"][0]["title"].as_str().unwrap().chars().count() <= MAX_TITLE_CHARS);
        assert_eq!(body["embeds"][0]["fields"][2]["value"], "—");
    }

    #[test]
    fn retry_after_comes_from_the_body_when_the_header_has_none() {
        let limited = r#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#;
        assert_eq!(
            interpret(429, None, limited).retry_after,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            interpret(429, Some(Duration::from_secs(2)), limited).retry_after,
            Some(Duration::from_secs(2))
        );
        assert_eq!(interpret(429, None, "not json").retry_after, None);
        assert_eq!(interpret(204, None, "").error, "");
        assert_eq!(interpret(404, None, "").error, "HTTP 404");
    }
}
