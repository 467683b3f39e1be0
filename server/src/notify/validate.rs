//! What a notification channel may be, and its write-only secrets (the
//! Discord, Teams, Telegram and PagerDuty rules are in `notify::kinds`,
//! email's in [`super::email`]).
//!
//! A write is checked field by field (every violation named, e.g.
//! `webhook.headers[1].name`) and turned into the stored settings. Secrets
//! (the values of secret headers, the signing secret, Slack's webhook URL)
//! are answered as [`REDACTED`]; a write that sends the marker back keeps
//! the stored value, but only while the URL's origin (scheme, host, port)
//! is the stored one, as for job header secrets (`jobs::secrets`): else a
//! writer could send the stored secret to a server of their own.

use monitor_core::blocklist::Blocklist;
use monitor_notify::{
    DELIVERY_HEADER, SIGNATURE_HEADER,
    send::check_url,
    settings::{ChannelSettings, Header, SlackSettings, WebhookSettings},
};
use monitor_proto::{
    secret::{REDACTED, is_secret_header},
    v1::{NotificationChannel, SlackChannel, WebhookChannel, WebhookHeader, notification_channel::Kind},
};
use monitor_store::models::notification_channel::ChannelFields;

use super::kinds;
use crate::error::{ApiError, FieldViolation};

/// Longest channel name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Most extra headers of a webhook.
pub const MAX_HEADERS: usize = 20;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Signing secrets: long enough to resist guessing, short enough to type.
pub const SIGNING_SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;
/// `group_wait` when a write leaves it unset.
pub const DEFAULT_GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest `group_wait`.
pub const MAX_GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// Headers the sender sets itself, which a channel may not override.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
];

/// The channel as every answer shows it: secrets replaced by [`REDACTED`].
pub fn redact(settings: &ChannelSettings) -> Kind {
    match settings {
        ChannelSettings::Webhook(webhook) => Kind::Webhook(WebhookChannel {
            url: webhook.url.clone(),
            headers: webhook
                .headers
                .iter()
                .map(|header| WebhookHeader {
                    name: header.name.clone(),
                    value: if is_secret_header(&header.name, &webhook.secret_headers) {
                        REDACTED.to_owned()
                    } else {
                        header.value.clone()
                    },
                })
                .collect(),
            secret_headers: webhook.secret_headers.clone(),
            signing_secret: if webhook.signing_secret.is_empty() {
                String::new()
            } else {
                REDACTED.to_owned()
            },
        }),
        ChannelSettings::Slack(_) => Kind::Slack(SlackChannel {
            webhook_url: REDACTED.to_owned(),
        }),
        ChannelSettings::Email(email) => Kind::Email(super::email::redact(email)),
        other => super::kinds::redact(other).expect("every other kind is redacted in notify::kinds"),
    }
}

/// Checks a written channel and gives the fields to store. `stored` is the
/// channel's current settings on an update (None on create), where the
/// marker keeps a secret.
pub fn validate_channel(
    channel: &NotificationChannel,
    stored: Option<&ChannelSettings>,
    blocklist: &Blocklist,
) -> Result<ChannelFields, ApiError> {
    let mut v = Vec::new();
    let chars = channel.name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        v.push(FieldViolation::new(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters (got {chars})"),
        ));
    } else if channel.name.trim() != channel.name || channel.name.chars().any(char::is_control) {
        v.push(FieldViolation::new(
            "name",
            "must not start or end with spaces or hold control characters",
        ));
    }
    let settings = match &channel.kind {
        None => {
            v.push(FieldViolation::new(
                "webhook",
                "a channel is a webhook or slack: set one",
            ));
            None
        }
        Some(Kind::Webhook(webhook)) => {
            let stored = match stored {
                Some(ChannelSettings::Webhook(stored)) => Some(stored),
                Some(other) => {
                    v.push(FieldViolation::new(
                        "webhook",
                        format!(
                            "the channel is a {} channel; its kind cannot change (delete it and create another)",
                            other.kind()
                        ),
                    ));
                    None
                }
                None => None,
            };
            Some(ChannelSettings::Webhook(webhook_settings(
                webhook, stored, blocklist, &mut v,
            )))
        }
        Some(Kind::Slack(slack)) => {
            let stored = match stored {
                Some(ChannelSettings::Slack(stored)) => Some(stored),
                Some(other) => {
                    v.push(FieldViolation::new(
                        "slack",
                        format!(
                            "the channel is a {} channel; its kind cannot change (delete it and create another)",
                            other.kind()
                        ),
                    ));
                    None
                }
                None => None,
            };
            let mut webhook_url = slack.webhook_url.clone();
            if webhook_url == REDACTED {
                match stored {
                    Some(stored) => webhook_url = stored.webhook_url.clone(),
                    None => v.push(FieldViolation::new(
                        "slack.webhook_url",
                        format!("is the redaction marker {REDACTED:?}, but there is no stored URL to keep: send the webhook URL"),
                    )),
                }
            }
            if webhook_url != REDACTED {
                url(&mut v, "slack.webhook_url", &webhook_url, blocklist);
            }
            Some(ChannelSettings::Slack(SlackSettings { webhook_url }))
        }
        Some(Kind::Discord(discord)) => Some(kinds::discord(discord, stored, blocklist, &mut v)),
        Some(Kind::Teams(teams)) => Some(kinds::teams(teams, stored, blocklist, &mut v)),
        Some(Kind::Telegram(telegram)) => Some(kinds::telegram(telegram, stored, blocklist, &mut v)),
        Some(Kind::Pagerduty(pagerduty)) => Some(kinds::pagerduty(pagerduty, stored, blocklist, &mut v)),
        Some(Kind::Email(email)) => {
            let stored = match stored {
                Some(ChannelSettings::Email(stored)) => Some(stored),
                Some(other) => {
                    v.push(FieldViolation::new(
                        "email",
                        format!(
                            "the channel is a {} channel; its kind cannot change (delete it and create another)",
                            other.kind()
                        ),
                    ));
                    None
                }
                None => None,
            };
            Some(ChannelSettings::Email(super::email::email_settings(
                email, stored, blocklist, &mut v,
            )))
        }
    };
    let group_wait_ms = match &channel.kind {
        Some(Kind::Pagerduty(_)) => kinds::ungrouped_wait(channel.group_wait.as_ref(), &mut v),
        _ => group_wait(channel.group_wait.as_ref(), &mut v),
    };
    match settings {
        Some(settings) if v.is_empty() => Ok(ChannelFields {
            name: channel.name.clone(),
            kind: settings.kind().to_owned(),
            settings: settings.to_json(),
            enabled: channel.enabled.unwrap_or(true),
            group_wait_ms,
        }),
        _ => Err(ApiError::InvalidArgument(v)),
    }
}

/// The stored `group_wait_ms` of a written `group_wait` (unset: the default).
fn group_wait(written: Option<&pbjson_types::Duration>, v: &mut Vec<FieldViolation>) -> i32 {
    let Some(written) = written else {
        return DEFAULT_GROUP_WAIT.as_millis() as i32;
    };
    match std::time::Duration::try_from(*written) {
        Ok(wait) if wait <= MAX_GROUP_WAIT && wait.subsec_micros() % 1000 == 0 => wait.as_millis() as i32,
        Ok(wait) if wait <= MAX_GROUP_WAIT => {
            v.push(FieldViolation::new("group_wait", "must be whole milliseconds"));
            0
        }
        _ => {
            v.push(FieldViolation::new(
                "group_wait",
                format!("must be between 0s and {}s", MAX_GROUP_WAIT.as_secs()),
            ));
            0
        }
    }
}

/// The field name of a channel kind, as update masks and errors name it.
pub fn kind_field(kind: &Kind) -> &'static str {
    match kind {
        Kind::Webhook(_) => "webhook",
        Kind::Slack(_) => "slack",
        Kind::Discord(_) => "discord",
        Kind::Teams(_) => "teams",
        Kind::Telegram(_) => "telegram",
        Kind::Pagerduty(_) => "pagerduty",
        Kind::Email(_) => "email",
    }
}

pub(super) fn url(v: &mut Vec<FieldViolation>, field: &str, raw: &str, blocklist: &Blocklist) {
    if raw.is_empty() {
        v.push(FieldViolation::new(field, "is required"));
    } else if raw.len() > 2048 {
        v.push(FieldViolation::new(field, "must be at most 2048 bytes"));
    } else if let Err(err) = check_url(blocklist, raw) {
        v.push(FieldViolation::new(field, err.to_string()));
    }
}

/// scheme://host:port of a URL, to tell whether secrets may be kept.
pub(super) fn origin(raw: &str) -> Option<String> {
    url::Url::parse(raw).ok().map(|url| url.origin().ascii_serialization())
}

fn webhook_settings(
    webhook: &WebhookChannel,
    stored: Option<&WebhookSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> WebhookSettings {
    url(v, "webhook.url", &webhook.url, blocklist);
    let same_origin =
        stored.is_some_and(|stored| origin(&stored.url).is_some() && origin(&stored.url) == origin(&webhook.url));
    let keep_hint = |what: &str| match stored {
        None => format!("is the redaction marker {REDACTED:?}, but there is no stored {what} to keep: send the value"),
        Some(_) => format!(
            "is the redaction marker {REDACTED:?}, but the URL's origin changed, so the stored {what} is not kept: send the value again"
        ),
    };
    if webhook.headers.len() > MAX_HEADERS {
        v.push(FieldViolation::new(
            "webhook.headers",
            format!("at most {MAX_HEADERS} headers (got {})", webhook.headers.len()),
        ));
    }
    for (i, name) in webhook.secret_headers.iter().enumerate() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("webhook.secret_headers[{i}]"),
                format!("{name:?} is not a valid header name"),
            ));
        }
    }
    let mut headers = Vec::with_capacity(webhook.headers.len());
    for (i, header) in webhook.headers.iter().enumerate() {
        let mut value = header.value.clone();
        if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("webhook.headers[{i}].name"),
                format!("{:?} is not a valid header name", header.name),
            ));
        } else if RESERVED_HEADERS
            .iter()
            .any(|reserved| header.name.eq_ignore_ascii_case(reserved))
        {
            v.push(FieldViolation::new(
                format!("webhook.headers[{i}].name"),
                format!("{:?} is set by the sender and cannot be overridden", header.name),
            ));
        }
        if value == REDACTED {
            let secret = is_secret_header(&header.name, &webhook.secret_headers);
            let same_name = |h: &&Header| h.name.eq_ignore_ascii_case(&header.name);
            let occurrence = webhook.headers[..i]
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(&header.name))
                .count();
            let kept = stored
                .filter(|_| same_origin && secret)
                .and_then(|stored| stored.headers.iter().filter(same_name).nth(occurrence));
            match kept {
                Some(kept) => value = kept.value.clone(),
                None if !secret => v.push(FieldViolation::new(
                    format!("webhook.headers[{i}].value"),
                    format!(
                        "is the redaction marker {REDACTED:?}, but {:?} is not a secret header here: send its value",
                        header.name
                    ),
                )),
                None => v.push(FieldViolation::new(
                    format!("webhook.headers[{i}].value"),
                    keep_hint("value"),
                )),
            }
        } else if value.len() > MAX_HEADER_VALUE_BYTES {
            v.push(FieldViolation::new(
                format!("webhook.headers[{i}].value"),
                format!("must be at most {MAX_HEADER_VALUE_BYTES} bytes"),
            ));
        } else if http::HeaderValue::from_str(&value).is_err() {
            v.push(FieldViolation::new(
                format!("webhook.headers[{i}].value"),
                "must be visible ASCII, spaces or tabs (no line breaks)",
            ));
        }
        headers.push(Header {
            name: header.name.clone(),
            value,
        });
    }
    let mut signing_secret = webhook.signing_secret.clone();
    if signing_secret == REDACTED {
        match stored.filter(|stored| same_origin && !stored.signing_secret.is_empty()) {
            Some(stored) => signing_secret = stored.signing_secret.clone(),
            None => v.push(FieldViolation::new(
                "webhook.signing_secret",
                keep_hint("signing secret"),
            )),
        }
    } else if !signing_secret.is_empty() && !SIGNING_SECRET_CHARS.contains(&signing_secret.chars().count()) {
        v.push(FieldViolation::new(
            "webhook.signing_secret",
            format!(
                "must be {} to {} characters, or empty for unsigned requests",
                SIGNING_SECRET_CHARS.start(),
                SIGNING_SECRET_CHARS.end()
            ),
        ));
    }
    WebhookSettings {
        url: webhook.url.clone(),
        headers,
        secret_headers: webhook.secret_headers.clone(),
        signing_secret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Blocklist {
        Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
    }

    fn webhook(url: &str) -> NotificationChannel {
        NotificationChannel {
            name: "ops".into(),
            kind: Some(Kind::Webhook(WebhookChannel {
                url: url.into(),
                headers: vec![
                    WebhookHeader {
                        name: "Authorization".into(),
                        value: "Bearer s3cret".into(),
                    },
                    WebhookHeader {
                        name: "x-team".into(),
                        value: "web".into(),
                    },
                ],
                secret_headers: vec![],
                signing_secret: "0123456789abcdef".into(),
            })),
            ..Default::default()
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        err.violations().iter().map(|v| v.field.clone()).collect()
    }

    #[test]
    fn redacted_secrets_are_kept_on_the_same_origin_only() {
        let stored = validate_channel(&webhook("https://hooks.example.com/a"), None, &loopback()).unwrap();
        let stored = ChannelSettings::from_stored(&stored.kind, &stored.settings).unwrap();
        let Kind::Webhook(shown) = redact(&stored) else {
            panic!()
        };
        assert_eq!(shown.headers[0].value, REDACTED);
        assert_eq!(shown.headers[1].value, "web");
        assert_eq!(shown.signing_secret, REDACTED);

        let mut back = webhook("https://hooks.example.com/b");
        back.kind = Some(Kind::Webhook(WebhookChannel {
            url: "https://hooks.example.com/b".into(),
            ..shown.clone()
        }));
        let kept = validate_channel(&back, Some(&stored), &loopback()).unwrap();
        assert_eq!(kept.settings["headers"][0]["value"], "Bearer s3cret");
        assert_eq!(kept.settings["signing_secret"], "0123456789abcdef");

        back.kind = Some(Kind::Webhook(WebhookChannel {
            url: "https://elsewhere.example.com/b".into(),
            ..shown
        }));
        let refused = validate_channel(&back, Some(&stored), &loopback()).unwrap_err();
        assert_eq!(fields(refused), ["webhook.headers[0].value", "webhook.signing_secret"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let channel = NotificationChannel {
            name: String::new(),
            kind: Some(Kind::Webhook(WebhookChannel {
                url: "ftp://x".into(),
                headers: vec![
                    WebhookHeader {
                        name: "bad name".into(),
                        value: "v".into(),
                    },
                    WebhookHeader {
                        name: "x-a".into(),
                        value: "line\nbreak".into(),
                    },
                    WebhookHeader {
                        name: "Content-Type".into(),
                        value: "text/plain".into(),
                    },
                    WebhookHeader {
                        name: "x-b".into(),
                        value: REDACTED.into(),
                    },
                ],
                secret_headers: vec!["no way".into()],
                signing_secret: "short".into(),
            })),
            ..Default::default()
        };
        assert_eq!(
            fields(validate_channel(&channel, None, &loopback()).unwrap_err()),
            [
                "name",
                "webhook.url",
                "webhook.secret_headers[0]",
                "webhook.headers[0].name",
                "webhook.headers[1].value",
                "webhook.headers[2].name",
                "webhook.headers[3].value",
                "webhook.signing_secret",
            ]
        );
        let none = NotificationChannel {
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            fields(validate_channel(&none, None, &loopback()).unwrap_err()),
            ["webhook"]
        );
    }

    #[test]
    fn blocked_urls_are_refused_unless_opened() {
        let channel = webhook("http://127.0.0.1:9/hook");
        let err = validate_channel(&channel, None, &Blocklist::default()).unwrap_err();
        assert_eq!(err.violations().len(), 1);
        assert_eq!(err.violations()[0].field, "webhook.url");
        assert!(
            err.violations()[0]
                .description
                .contains("--notify-allow-net 127.0.0.0/8")
        );
        assert!(validate_channel(&channel, None, &loopback()).is_ok());
    }

    #[test]
    fn slack_url_is_the_secret_and_the_kind_is_fixed() {
        let slack = NotificationChannel {
            name: "chat".into(),
            kind: Some(Kind::Slack(SlackChannel {
                webhook_url: "https://hooks.slack.com/services/T/B/X".into(),
            })),
            ..Default::default()
        };
        let stored = validate_channel(&slack, None, &loopback()).unwrap();
        let stored = ChannelSettings::from_stored(&stored.kind, &stored.settings).unwrap();
        let Kind::Slack(shown) = redact(&stored) else { panic!() };
        assert_eq!(shown.webhook_url, REDACTED);
        let back = NotificationChannel {
            kind: Some(Kind::Slack(shown)),
            ..slack.clone()
        };
        assert_eq!(
            validate_channel(&back, Some(&stored), &loopback()).unwrap().settings["webhook_url"],
            "https://hooks.slack.com/services/T/B/X"
        );
        assert_eq!(
            fields(validate_channel(&back, None, &loopback()).unwrap_err()),
            ["slack.webhook_url"]
        );
        let changed = validate_channel(&webhook("https://x.example.com/"), Some(&stored), &loopback()).unwrap_err();
        assert_eq!(fields(changed), ["webhook"]);
    }
}
