//! The Discord, Teams, Telegram and PagerDuty channels: their rules and
//! their write-only secrets, beside `validate` (webhook, Slack and what
//! every channel shares).
//!
//! | kind | secret | the marker keeps the stored secret |
//! |---|---|---|
//! | `discord`, `teams` | `webhook_url` (the URL is the credential) | always (the URL is then unchanged) |
//! | `telegram` | `bot_token` | while the origin of `api_url` (or its default) is unchanged |
//! | `pagerduty` | `routing_key` | while the origin of `events_url` (or its default) is unchanged |
//!
//! A PagerDuty channel is never grouped: `group_wait` unset is 0, any other
//! value is refused ([`ungrouped_wait`]).

use monitor_core::blocklist::Blocklist;
use monitor_notify::settings::{
    ChannelSettings, DiscordSettings, PAGERDUTY_EVENTS_URL, PagerDutySettings, TELEGRAM_API_URL, TeamsSettings,
    TelegramSettings,
};
use monitor_proto::{
    secret::REDACTED,
    v1::{DiscordChannel, PagerDutyChannel, TeamsChannel, TelegramChannel, notification_channel::Kind},
};

use super::validate::{origin, url};
use crate::error::FieldViolation;

/// Characters after the colon of a Telegram bot token (BotFather's are 35).
const BOT_TOKEN_SECRET_CHARS: std::ops::RangeInclusive<usize> = 20..=100;
/// A PagerDuty routing (integration) key's length.
pub const ROUTING_KEY_CHARS: usize = 32;

/// The answer form of one of these kinds (None for the others).
pub fn redact(settings: &ChannelSettings) -> Option<Kind> {
    Some(match settings {
        ChannelSettings::Discord(_) => Kind::Discord(DiscordChannel {
            webhook_url: REDACTED.to_owned(),
        }),
        ChannelSettings::Teams(_) => Kind::Teams(TeamsChannel {
            webhook_url: REDACTED.to_owned(),
        }),
        ChannelSettings::Telegram(telegram) => Kind::Telegram(TelegramChannel {
            bot_token: REDACTED.to_owned(),
            chat_id: telegram.chat_id.clone(),
            api_url: telegram.api_url.clone(),
        }),
        ChannelSettings::PagerDuty(pagerduty) => Kind::Pagerduty(PagerDutyChannel {
            routing_key: REDACTED.to_owned(),
            events_url: pagerduty.events_url.clone(),
        }),
        _ => return None,
    })
}

/// The stored settings of the same kind, or a violation on `field` when the
/// write would change the kind.
fn same_kind<'a, T>(
    field: &str,
    stored: Option<&'a ChannelSettings>,
    pick: impl Fn(&'a ChannelSettings) -> Option<&'a T>,
    v: &mut Vec<FieldViolation>,
) -> Option<&'a T> {
    let stored = stored?;
    let picked = pick(stored);
    if picked.is_none() {
        v.push(FieldViolation::new(
            field,
            format!(
                "the channel is a {} channel; its kind cannot change (delete it and create another)",
                stored.kind()
            ),
        ));
    }
    picked
}

/// A webhook URL that is itself the secret (Discord, Teams): the marker
/// keeps the stored one.
fn secret_url(
    field: &str,
    written: &str,
    stored: Option<&String>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> String {
    if written != REDACTED {
        url(v, field, written, blocklist);
        return written.to_owned();
    }
    match stored {
        Some(stored) => stored.clone(),
        None => {
            v.push(FieldViolation::new(
                field,
                format!(
                    "is the redaction marker {REDACTED:?}, but there is no stored URL to keep: send the webhook URL"
                ),
            ));
            String::new()
        }
    }
}

pub fn discord(
    written: &DiscordChannel,
    stored: Option<&ChannelSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> ChannelSettings {
    let stored = same_kind(
        "discord",
        stored,
        |s| match s {
            ChannelSettings::Discord(d) => Some(d),
            _ => None,
        },
        v,
    );
    ChannelSettings::Discord(DiscordSettings {
        webhook_url: secret_url(
            "discord.webhook_url",
            &written.webhook_url,
            stored.map(|s| &s.webhook_url),
            blocklist,
            v,
        ),
    })
}

pub fn teams(
    written: &TeamsChannel,
    stored: Option<&ChannelSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> ChannelSettings {
    let stored = same_kind(
        "teams",
        stored,
        |s| match s {
            ChannelSettings::Teams(t) => Some(t),
            _ => None,
        },
        v,
    );
    ChannelSettings::Teams(TeamsSettings {
        webhook_url: secret_url(
            "teams.webhook_url",
            &written.webhook_url,
            stored.map(|s| &s.webhook_url),
            blocklist,
            v,
        ),
    })
}

/// An optional base URL: empty takes `default`; else checked like every
/// channel URL, and without a query or fragment (a path is appended).
fn base_url(field: &str, written: &str, blocklist: &Blocklist, v: &mut Vec<FieldViolation>) {
    if written.is_empty() {
        return;
    }
    url(v, field, written, blocklist);
    if let Ok(parsed) = url::Url::parse(written)
        && (parsed.query().is_some() || parsed.fragment().is_some())
    {
        v.push(FieldViolation::new(field, "must not have a query or fragment"));
    }
}

/// A secret kept by the marker only while the origin it is sent to stays.
fn origin_bound_secret(
    field: &str,
    written: &str,
    stored: Option<(&str, &str)>,
    new_url: &str,
    v: &mut Vec<FieldViolation>,
) -> Option<String> {
    if written != REDACTED {
        return Some(written.to_owned());
    }
    match stored {
        Some((secret, stored_url)) if origin(stored_url).is_some() && origin(stored_url) == origin(new_url) => {
            Some(secret.to_owned())
        }
        Some(_) => {
            v.push(FieldViolation::new(
                field,
                format!("is the redaction marker {REDACTED:?}, but the URL's origin changed, so the stored value is not kept: send it again"),
            ));
            None
        }
        None => {
            v.push(FieldViolation::new(
                field,
                format!("is the redaction marker {REDACTED:?}, but there is no stored value to keep: send it"),
            ));
            None
        }
    }
}

fn or_default<'a>(written: &'a str, default: &'a str) -> &'a str {
    if written.is_empty() { default } else { written }
}

/// Whether `token` looks like BotFather's `<bot id>:<secret>`.
fn is_bot_token(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && BOT_TOKEN_SECRET_CHARS.contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `chat` is a numeric chat id or `@username` (5 to 32 letters,
/// digits or underscores, starting with a letter).
fn is_chat_id(chat: &str) -> bool {
    if let Some(name) = chat.strip_prefix('@') {
        return (5..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    }
    let digits = chat.strip_prefix('-').unwrap_or(chat);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

pub fn telegram(
    written: &TelegramChannel,
    stored: Option<&ChannelSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> ChannelSettings {
    let stored = same_kind(
        "telegram",
        stored,
        |s| match s {
            ChannelSettings::Telegram(t) => Some(t),
            _ => None,
        },
        v,
    );
    base_url("telegram.api_url", &written.api_url, blocklist, v);
    let bot_token = origin_bound_secret(
        "telegram.bot_token",
        &written.bot_token,
        stored.map(|s| (s.bot_token.as_str(), s.base_url())),
        or_default(&written.api_url, TELEGRAM_API_URL),
        v,
    );
    if let Some(token) = &bot_token {
        if token.is_empty() {
            v.push(FieldViolation::new(
                "telegram.bot_token",
                "is required (the token @BotFather gave the bot)",
            ));
        } else if !is_bot_token(token) {
            v.push(FieldViolation::new(
                "telegram.bot_token",
                "must be <bot id>:<secret> as @BotFather gives it (digits, a colon, 20 to 100 letters, digits, - or _)",
            ));
        }
    }
    if written.chat_id.is_empty() {
        v.push(FieldViolation::new("telegram.chat_id", "is required"));
    } else if !is_chat_id(&written.chat_id) {
        v.push(FieldViolation::new(
            "telegram.chat_id",
            format!(
                "{:?} is neither a numeric chat id (e.g. -1001234567890) nor @channelusername",
                written.chat_id
            ),
        ));
    }
    ChannelSettings::Telegram(TelegramSettings {
        bot_token: bot_token.unwrap_or_default(),
        chat_id: written.chat_id.clone(),
        api_url: written.api_url.clone(),
    })
}

pub fn pagerduty(
    written: &PagerDutyChannel,
    stored: Option<&ChannelSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> ChannelSettings {
    let stored = same_kind(
        "pagerduty",
        stored,
        |s| match s {
            ChannelSettings::PagerDuty(p) => Some(p),
            _ => None,
        },
        v,
    );
    base_url("pagerduty.events_url", &written.events_url, blocklist, v);
    let routing_key = origin_bound_secret(
        "pagerduty.routing_key",
        &written.routing_key,
        stored.map(|s| (s.routing_key.as_str(), s.url())),
        or_default(&written.events_url, PAGERDUTY_EVENTS_URL),
        v,
    );
    if let Some(key) = &routing_key {
        if key.is_empty() {
            v.push(FieldViolation::new(
                "pagerduty.routing_key",
                "is required (the Events API v2 integration key of the service)",
            ));
        } else if key.len() != ROUTING_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            v.push(FieldViolation::new(
                "pagerduty.routing_key",
                format!("must be the {ROUTING_KEY_CHARS} letters and digits of an Events API v2 integration key"),
            ));
        }
    }
    ChannelSettings::PagerDuty(PagerDutySettings {
        routing_key: routing_key.unwrap_or_default(),
        events_url: written.events_url.clone(),
    })
}

/// A PagerDuty channel's `group_wait_ms`: 0, since every incident is its
/// own PagerDuty event; a non-zero write is refused.
pub fn ungrouped_wait(written: Option<&pbjson_types::Duration>, v: &mut Vec<FieldViolation>) -> i32 {
    if let Some(wait) = written
        && (wait.seconds != 0 || wait.nanos != 0)
    {
        v.push(FieldViolation::new(
            "group_wait",
            "must be 0s or unset for pagerduty channels: PagerDuty gets one event per incident (its dedup key), never a group",
        ));
    }
    0
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::NotificationChannel;

    use super::*;
    use crate::{error::ApiError, notify::validate::validate_channel};

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    const KEY: &str = "0123456789abcdef0123456789ABCDEF";

    fn loopback() -> Blocklist {
        Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
    }

    fn channel(kind: Kind) -> NotificationChannel {
        NotificationChannel {
            name: "ops".into(),
            kind: Some(kind),
            ..Default::default()
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        err.violations().iter().map(|v| v.field.clone()).collect()
    }

    fn stored(channel: &NotificationChannel) -> ChannelSettings {
        let fields = validate_channel(channel, None, &loopback()).unwrap();
        ChannelSettings::from_stored(&fields.kind, &fields.settings).unwrap()
    }

    #[test]
    fn webhook_urls_are_secret_and_kept_by_the_marker() {
        for kind in [
            Kind::Discord(DiscordChannel {
                webhook_url: "https://discord.com/api/webhooks/1/tok".into(),
            }),
            Kind::Teams(TeamsChannel {
                webhook_url: "https://x.logic.azure.com/workflows/1?sig=s".into(),
            }),
        ] {
            let written = channel(kind);
            let settings = stored(&written);
            let shown = redact(&settings).unwrap();
            assert!(format!("{shown:?}").contains(REDACTED));
            let back = validate_channel(&channel(shown.clone()), Some(&settings), &loopback()).unwrap();
            assert_eq!(back.settings, settings.to_json());
            let field = format!("{}.webhook_url", settings.kind());
            assert_eq!(
                fields(validate_channel(&channel(shown), None, &loopback()).unwrap_err()),
                std::slice::from_ref(&field)
            );
            let blank = match settings {
                ChannelSettings::Discord(_) => Kind::Discord(DiscordChannel::default()),
                _ => Kind::Teams(TeamsChannel::default()),
            };
            assert_eq!(
                fields(validate_channel(&channel(blank), None, &loopback()).unwrap_err()),
                [field]
            );
        }
    }

    #[test]
    fn telegram_fields_are_each_named() {
        let good = TelegramChannel {
            bot_token: TOKEN.into(),
            chat_id: "-1001234567890".into(),
            api_url: String::new(),
        };
        assert!(validate_channel(&channel(Kind::Telegram(good.clone())), None, &loopback()).is_ok());
        for chat in ["@ops_channel", "42"] {
            let ok = TelegramChannel {
                chat_id: chat.into(),
                ..good.clone()
            };
            assert!(
                validate_channel(&channel(Kind::Telegram(ok)), None, &loopback()).is_ok(),
                "{chat}"
            );
        }
        for (bad, field) in [
            (
                TelegramChannel {
                    bot_token: String::new(),
                    ..good.clone()
                },
                "telegram.bot_token",
            ),
            (
                TelegramChannel {
                    bot_token: "nocolon".into(),
                    ..good.clone()
                },
                "telegram.bot_token",
            ),
            (
                TelegramChannel {
                    bot_token: "12:short".into(),
                    ..good.clone()
                },
                "telegram.bot_token",
            ),
            (
                TelegramChannel {
                    bot_token: "12:AAHdqTcvCH1vGWJxfSeofSAs0K5/ALDsaw".into(),
                    ..good.clone()
                },
                "telegram.bot_token",
            ),
            (
                TelegramChannel {
                    bot_token: REDACTED.into(),
                    ..good.clone()
                },
                "telegram.bot_token",
            ),
            (
                TelegramChannel {
                    chat_id: String::new(),
                    ..good.clone()
                },
                "telegram.chat_id",
            ),
            (
                TelegramChannel {
                    chat_id: "@ab".into(),
                    ..good.clone()
                },
                "telegram.chat_id",
            ),
            (
                TelegramChannel {
                    chat_id: "12a".into(),
                    ..good.clone()
                },
                "telegram.chat_id",
            ),
            (
                TelegramChannel {
                    api_url: "ftp://x".into(),
                    ..good.clone()
                },
                "telegram.api_url",
            ),
            (
                TelegramChannel {
                    api_url: "http://10.0.0.1/".into(),
                    ..good.clone()
                },
                "telegram.api_url",
            ),
            (
                TelegramChannel {
                    api_url: "https://tg.example.com/?x=1".into(),
                    ..good.clone()
                },
                "telegram.api_url",
            ),
        ] {
            let err = validate_channel(&channel(Kind::Telegram(bad.clone())), None, &loopback()).unwrap_err();
            assert_eq!(fields(err), [field], "{bad:?}");
        }
    }

    #[test]
    fn telegram_token_is_kept_only_for_the_same_api_origin() {
        let written = channel(Kind::Telegram(TelegramChannel {
            bot_token: TOKEN.into(),
            chat_id: "@ops_channel".into(),
            api_url: String::new(),
        }));
        let settings = stored(&written);
        let Some(Kind::Telegram(shown)) = redact(&settings) else {
            panic!()
        };
        assert_eq!(shown.bot_token, REDACTED);
        assert_eq!(shown.chat_id, "@ops_channel");
        let same = TelegramChannel {
            api_url: "https://api.telegram.org/".into(),
            ..shown.clone()
        };
        let kept = validate_channel(&channel(Kind::Telegram(same)), Some(&settings), &loopback()).unwrap();
        assert_eq!(kept.settings["bot_token"], TOKEN);
        let moved = TelegramChannel {
            api_url: "https://tg.attacker.example/".into(),
            ..shown
        };
        let err = validate_channel(&channel(Kind::Telegram(moved)), Some(&settings), &loopback()).unwrap_err();
        assert_eq!(fields(err), ["telegram.bot_token"]);
    }

    #[test]
    fn pagerduty_key_is_checked_kept_on_the_same_origin_and_never_grouped() {
        let good = PagerDutyChannel {
            routing_key: KEY.into(),
            events_url: String::new(),
        };
        let created = validate_channel(&channel(Kind::Pagerduty(good.clone())), None, &loopback()).unwrap();
        assert_eq!(created.group_wait_ms, 0, "unset group_wait is 0 for pagerduty");
        for (bad, field) in [
            (
                PagerDutyChannel {
                    routing_key: String::new(),
                    ..good.clone()
                },
                "pagerduty.routing_key",
            ),
            (
                PagerDutyChannel {
                    routing_key: "short".into(),
                    ..good.clone()
                },
                "pagerduty.routing_key",
            ),
            (
                PagerDutyChannel {
                    routing_key: format!("{}!", &KEY[..31]),
                    ..good.clone()
                },
                "pagerduty.routing_key",
            ),
            (
                PagerDutyChannel {
                    routing_key: REDACTED.into(),
                    ..good.clone()
                },
                "pagerduty.routing_key",
            ),
            (
                PagerDutyChannel {
                    events_url: "not a url".into(),
                    ..good.clone()
                },
                "pagerduty.events_url",
            ),
            (
                PagerDutyChannel {
                    events_url: "http://169.254.169.254/".into(),
                    ..good.clone()
                },
                "pagerduty.events_url",
            ),
        ] {
            let err = validate_channel(&channel(Kind::Pagerduty(bad.clone())), None, &loopback()).unwrap_err();
            assert_eq!(fields(err), [field], "{bad:?}");
        }
        let mut grouped = channel(Kind::Pagerduty(good.clone()));
        grouped.group_wait = Some(pbjson_types::Duration { seconds: 10, nanos: 0 });
        assert_eq!(
            fields(validate_channel(&grouped, None, &loopback()).unwrap_err()),
            ["group_wait"]
        );
        grouped.group_wait = Some(pbjson_types::Duration::default());
        assert!(validate_channel(&grouped, None, &loopback()).is_ok());

        let settings = stored(&channel(Kind::Pagerduty(good)));
        let Some(Kind::Pagerduty(shown)) = redact(&settings) else {
            panic!()
        };
        assert_eq!(shown.routing_key, REDACTED);
        let kept = validate_channel(&channel(Kind::Pagerduty(shown.clone())), Some(&settings), &loopback()).unwrap();
        assert_eq!(kept.settings["routing_key"], KEY);
        let moved = PagerDutyChannel {
            events_url: "http://127.0.0.1:9/enqueue".into(),
            ..shown
        };
        let err = validate_channel(&channel(Kind::Pagerduty(moved)), Some(&settings), &loopback()).unwrap_err();
        assert_eq!(fields(err), ["pagerduty.routing_key"]);
    }

    #[test]
    fn the_kind_cannot_change() {
        let settings = stored(&channel(Kind::Discord(DiscordChannel {
            webhook_url: "https://discord.com/api/webhooks/1/tok".into(),
        })));
        let other = channel(Kind::Teams(TeamsChannel {
            webhook_url: "https://x.logic.azure.com/w".into(),
        }));
        assert_eq!(
            fields(validate_channel(&other, Some(&settings), &loopback()).unwrap_err()),
            ["teams"]
        );
    }
}
