//! Telegram's Bot API `sendMessage` (<https://core.telegram.org/bots/api#sendmessage>):
//! `chat_id`, `text` with `parse_mode` HTML (the job's name and every
//! other value escaped, so `<`, `>` and `&` show as written), no link
//! previews. At most 4096 characters of text.
//!
//! Telegram answers `{"ok": true, "result": …}` or `{"ok": false,
//! "error_code": 400, "description": "Bad Request: chat not found"}`,
//! normally with the HTTP status matching `error_code`; a 2xx with `ok`
//! false is judged by its `error_code` (400 when it has none). A flood
//! limit is a 429 with `parameters.retry_after` (seconds) in the body,
//! which is waited as a `Retry-After` header would be.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Reply, icon, listed, status_error, truncate};
use crate::payload::{IncidentNotice, first_failure_words, group_summary, time};
use crate::settings::TelegramSettings;

/// Longest message text Telegram takes.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The body for `notices` to the channel's chat.
pub fn body(settings: &TelegramSettings, notices: &[IncidentNotice]) -> Value {
    let text = match notices {
        [one] => {
            let mut text = format!(
                "{} <b>[{}] {}</b>\nRule: {}\nOpened: {}",
                icon(one),
                escape(&one.severity.to_uppercase()),
                escape(&truncate(&one.headline(), 1000)),
                escape(&truncate(&one.rule_name, 500)),
                time(one.opened_at)
            );
            if let Some(failure) = one.first_failure.as_ref().and_then(first_failure_words) {
                text.push_str(&format!("\nFirst failure: {}", escape(&truncate(&failure, 500))));
            }
            if let Some(url) = &one.dashboard_url {
                text.push_str(&format!("\n<a href=\"{}\">View incident</a>", escape(url)));
            }
            text
        }
        many => {
            // The HTML is longer than the text Telegram counts, so a list
            // within the budget in HTML is within it as text too.
            let header = format!("<b>{}</b>", escape(&group_summary(many)));
            let lines = listed(many, MAX_TEXT_CHARS - header.chars().count() - 1, |notice| {
                let mut line = format!(
                    "{} [{}] {}",
                    icon(notice),
                    escape(&notice.severity.to_uppercase()),
                    escape(&truncate(&notice.headline(), 150))
                );
                if let Some(url) = &notice.dashboard_url {
                    line.push_str(&format!(" (<a href=\"{}\">view</a>)", escape(url)));
                }
                line
            });
            format!("{header}\n{}", lines.join("\n"))
        }
    };
    message(settings, text)
}

fn message(settings: &TelegramSettings, text: String) -> Value {
    json!({
        "chat_id": settings.chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": { "is_disabled": true },
    })
}

/// Telegram's HTML escaping: `&`, `<`, `>` and (inside attributes) `"`.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The test message.
pub fn test_body(settings: &TelegramSettings, text: &str, at: DateTime<Utc>) -> Value {
    message(
        settings,
        format!("<b>Test notification</b>\n{}\n<i>{}</i>", escape(text), time(at)),
    )
}

/// Telegram's verdict: `ok` false is a refusal whatever the status, and
/// `parameters.retry_after` a wait.
pub(crate) fn interpret(code: u16, retry_after: Option<Duration>, body: &str) -> Reply {
    let Ok(answer) = serde_json::from_str::<Value>(body) else {
        return Reply {
            code,
            retry_after,
            error: status_error(code),
        };
    };
    let asked = answer
        .pointer("/parameters/retry_after")
        .and_then(Value::as_u64)
        .map(Duration::from_secs);
    if answer.get("ok") != Some(&Value::Bool(false)) {
        return Reply {
            code,
            retry_after: retry_after.or(asked),
            error: status_error(code),
        };
    }
    let error_code = answer
        .get("error_code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c));
    let judged = match error_code {
        Some(error_code) => error_code,
        None if !(200..300).contains(&code) => code,
        None => 400,
    };
    let description = answer
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("no description");
    Reply {
        code: judged,
        retry_after: retry_after.or(asked),
        error: format!(
            "HTTP {code}, Telegram refused (error_code {judged}): {}",
            truncate(description, 300)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::fixtures::{many, notice};

    fn settings() -> TelegramSettings {
        TelegramSettings {
            bot_token: "123:ABC".into(),
            chat_id: "-1001234567890".into(),
            api_url: String::new(),
        }
    }

    #[test]
    fn one_notice_is_escaped_html() {
        let body = body(&settings(), &[notice("opened")]);
        assert_eq!(body["chat_id"], "-1001234567890");
        assert_eq!(body["parse_mode"], "HTML");
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with("\u{1F534} <b>[CRITICAL] shop &lt;eu&gt; &amp; *co* is down (eu-1)</b>"),
            "{text}"
        );
        assert!(text.contains("First failure: HTTP 500 from eu-1"), "{text}");
        assert!(
            text.ends_with("<a href=\"https://monitor.example.com/ui/#/incidents/0190a0a0-0000-7000-8000-000000000001\">View incident</a>"),
            "{text}"
        );
    }

    #[test]
    fn five_hundred_notices_stay_within_the_limit() {
        let body = body(&settings(), &many(500));
        let text = body["text"].as_str().unwrap();
        assert!(text.chars().count() <= MAX_TEXT_CHARS, "{}", text.chars().count());
        assert!(text.starts_with("<b>500 incident events: 500 opened</b>\n"), "{text}");
        assert!(text.ends_with("… and 480 more"), "{text}");
        let mut long = many(30);
        for notice in &mut long {
            notice.job_name = "<&>".repeat(400);
        }
        let text = super::body(&settings(), &long)["text"].as_str().unwrap().to_owned();
        assert!(text.chars().count() <= MAX_TEXT_CHARS, "{}", text.chars().count());
        assert!(text.contains("more"), "{text}");
    }

    #[test]
    fn ok_false_is_a_refusal_even_with_200() {
        let refused = r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#;
        let reply = interpret(200, None, refused);
        assert_eq!(reply.code, 400);
        assert_eq!(
            reply.error,
            "HTTP 200, Telegram refused (error_code 400): Bad Request: chat not found"
        );
        assert_eq!(interpret(403, None, r#"{"ok":false}"#).code, 403);
        assert_eq!(interpret(200, None, r#"{"ok":false}"#).code, 400);
        assert_eq!(interpret(200, None, r#"{"ok":false,"error_code":502}"#).code, 502);
    }

    #[test]
    fn flood_limits_wait_what_the_body_asks() {
        let limited = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        let reply = interpret(429, None, limited);
        assert_eq!(reply.code, 429);
        assert_eq!(reply.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            interpret(429, Some(Duration::from_secs(3)), limited).retry_after,
            Some(Duration::from_secs(3))
        );
    }

    #[test]
    fn ok_true_and_non_json_answers_go_by_status() {
        let sent = r#"{"ok":true,"result":{"message_id":1}}"#;
        assert_eq!(
            interpret(200, None, sent),
            Reply {
                code: 200,
                retry_after: None,
                error: String::new()
            }
        );
        assert_eq!(interpret(502, None, "<html>bad gateway</html>").error, "HTTP 502");
    }
}
