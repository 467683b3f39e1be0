//! Each channel kind's settings as stored in `notification_channels.settings`
//! (JSON). They hold secrets (the Slack, Discord and Teams webhook URLs,
//! secret header values, the signing secret, the Telegram bot token, the
//! PagerDuty routing key, the SMTP password), so their `Debug` shows none
//! of them; the API
//! answers with the redaction marker instead (the server's
//! `notify::secrets`).

use serde::{Deserialize, Serialize};

/// The stored kind names.
pub const KIND_WEBHOOK: &str = "webhook";
pub const KIND_SLACK: &str = "slack";
pub const KIND_DISCORD: &str = "discord";
pub const KIND_TEAMS: &str = "teams";
pub const KIND_TELEGRAM: &str = "telegram";
pub const KIND_PAGERDUTY: &str = "pagerduty";

/// Telegram's Bot API, when a channel names no other.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";
/// PagerDuty's Events API v2 endpoint, when a channel names no other.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const KIND_EMAIL: &str = "email";

/// A channel's settings, by kind.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelSettings {
    Webhook(WebhookSettings),
    Slack(SlackSettings),
    Discord(DiscordSettings),
    Teams(TeamsSettings),
    Telegram(TelegramSettings),
    PagerDuty(PagerDutySettings),
    Email(EmailSettings),
}

impl std::fmt::Debug for ChannelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelSettings::Webhook(webhook) => f
                .debug_struct("Webhook")
                .field("url", &webhook.url)
                .field("headers", &webhook.headers.len())
                .field("signed", &!webhook.signing_secret.is_empty())
                .finish(),
            ChannelSettings::Slack(_) => f.write_str("Slack"),
            ChannelSettings::Discord(_) => f.write_str("Discord"),
            ChannelSettings::Teams(_) => f.write_str("Teams"),
            ChannelSettings::Telegram(telegram) => f
                .debug_struct("Telegram")
                .field("chat_id", &telegram.chat_id)
                .field("api_url", &telegram.api_url)
                .finish_non_exhaustive(),
            ChannelSettings::PagerDuty(pagerduty) => f
                .debug_struct("PagerDuty")
                .field("events_url", &pagerduty.events_url)
                .finish_non_exhaustive(),
            ChannelSettings::Email(email) => email.fmt(f),
        }
    }
}

/// A generic webhook: the payload POSTed as JSON to `url`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: String,
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Header names whose values are secret besides the ones always secret
    /// (`monitor_proto::secret::SECRET_HEADERS`).
    #[serde(default)]
    pub secret_headers: Vec<String>,
    /// Empty: requests are not signed.
    #[serde(default)]
    pub signing_secret: String,
}

/// An extra request header.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A Slack incoming webhook; its URL is the secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlackSettings {
    pub webhook_url: String,
}

/// A Discord webhook; its URL (which holds the webhook's token) is the secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiscordSettings {
    pub webhook_url: String,
}

/// A Teams Workflows webhook; its URL carries the workflow's signature
/// (`sig=`), so it is the secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TeamsSettings {
    pub webhook_url: String,
}

/// A Telegram chat reached through a bot.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TelegramSettings {
    /// The bot's token (secret); it is part of the request path.
    pub bot_token: String,
    /// A numeric chat id or `@channelusername`.
    pub chat_id: String,
    /// The Bot API's base URL; empty: [`TELEGRAM_API_URL`].
    #[serde(default)]
    pub api_url: String,
}

impl TelegramSettings {
    /// The base URL requests go to (the default when none is set).
    pub fn base_url(&self) -> &str {
        if self.api_url.is_empty() {
            TELEGRAM_API_URL
        } else {
            &self.api_url
        }
    }

    /// `<api_url>/bot<token>/sendMessage`: it holds the token, so it is
    /// never logged or answered.
    pub fn send_message_url(&self) -> String {
        format!(
            "{}/bot{}/sendMessage",
            self.base_url().trim_end_matches('/'),
            self.bot_token
        )
    }
}

/// A PagerDuty Events API v2 integration.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PagerDutySettings {
    /// The integration's routing key (secret), sent in the body.
    pub routing_key: String,
    /// Where events go; empty: [`PAGERDUTY_EVENTS_URL`].
    #[serde(default)]
    pub events_url: String,
}

impl PagerDutySettings {
    /// Where events are POSTed (the default when none is set).
    pub fn url(&self) -> &str {
        if self.events_url.is_empty() {
            PAGERDUTY_EVENTS_URL
        } else {
            &self.events_url
        }
    }
}

/// How an SMTP connection is secured; plain text is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Plain text upgraded with STARTTLS, which the server must offer.
    #[default]
    Starttls,
    /// TLS from the first byte.
    Implicit,
}

impl EmailTls {
    /// The port used when a channel names none: 587 (submission) for
    /// STARTTLS, 465 (submissions) for implicit TLS.
    pub fn default_port(self) -> u16 {
        match self {
            EmailTls::Starttls => 587,
            EmailTls::Implicit => 465,
        }
    }
}

/// Email over SMTP; the password is the secret.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmailSettings {
    /// The SMTP server's host name or IP address.
    pub host: String,
    /// Never 0 once stored (the server stores the default port).
    pub port: u16,
    #[serde(default)]
    pub tls: EmailTls,
    /// Empty: no login.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// The sender ("Monitor <monitor@example.com>" or a bare address).
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A PEM CA trusted besides the system roots; empty: none.
    #[serde(default)]
    pub ca_certificate_pem: String,
}

impl std::fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("from", &self.from)
            .field("to", &self.to)
            .field("ca_certificate", &!self.ca_certificate_pem.is_empty())
            .finish()
    }
}

/// Stored settings that do not decode as their kind.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown channel kind {0:?}")]
    UnknownKind(String),
    #[error("stored {kind} settings do not decode: {source}")]
    Decode {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl ChannelSettings {
    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelSettings::Webhook(_) => KIND_WEBHOOK,
            ChannelSettings::Slack(_) => KIND_SLACK,
            ChannelSettings::Email(_) => KIND_EMAIL,
            ChannelSettings::Discord(_) => KIND_DISCORD,
            ChannelSettings::Teams(_) => KIND_TEAMS,
            ChannelSettings::Telegram(_) => KIND_TELEGRAM,
            ChannelSettings::PagerDuty(_) => KIND_PAGERDUTY,
        }
    }

    /// Where requests go. It may hold a secret (a Slack, Discord or Teams
    /// URL, a Telegram token; empty for email, which `Sender::send_mail`
    /// sends to its host): never log or answer it.
    pub fn url(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            ChannelSettings::Webhook(webhook) => Cow::Borrowed(&webhook.url),
            ChannelSettings::Slack(slack) => Cow::Borrowed(&slack.webhook_url),
            ChannelSettings::Discord(discord) => Cow::Borrowed(&discord.webhook_url),
            ChannelSettings::Teams(teams) => Cow::Borrowed(&teams.webhook_url),
            ChannelSettings::Telegram(telegram) => Cow::Owned(telegram.send_message_url()),
            ChannelSettings::PagerDuty(pagerduty) => Cow::Borrowed(pagerduty.url()),
            ChannelSettings::Email(_) => Cow::Borrowed(""),
        }
    }

    /// The JSON stored in `settings`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            ChannelSettings::Webhook(webhook) => serde_json::to_value(webhook),
            ChannelSettings::Slack(slack) => serde_json::to_value(slack),
            ChannelSettings::Discord(discord) => serde_json::to_value(discord),
            ChannelSettings::Teams(teams) => serde_json::to_value(teams),
            ChannelSettings::Telegram(telegram) => serde_json::to_value(telegram),
            ChannelSettings::PagerDuty(pagerduty) => serde_json::to_value(pagerduty),
            ChannelSettings::Email(email) => serde_json::to_value(email),
        };
        value.expect("settings serialize")
    }

    /// Decodes stored settings of `kind`.
    pub fn from_stored(kind: &str, settings: &serde_json::Value) -> Result<Self, SettingsError> {
        fn decode<T: serde::de::DeserializeOwned>(
            kind: &'static str,
            settings: &serde_json::Value,
        ) -> Result<T, SettingsError> {
            serde_json::from_value(settings.clone()).map_err(|source| SettingsError::Decode { kind, source })
        }
        match kind {
            KIND_WEBHOOK => decode(KIND_WEBHOOK, settings).map(ChannelSettings::Webhook),
            KIND_SLACK => decode(KIND_SLACK, settings).map(ChannelSettings::Slack),
            KIND_DISCORD => decode(KIND_DISCORD, settings).map(ChannelSettings::Discord),
            KIND_TEAMS => decode(KIND_TEAMS, settings).map(ChannelSettings::Teams),
            KIND_TELEGRAM => decode(KIND_TELEGRAM, settings).map(ChannelSettings::Telegram),
            KIND_PAGERDUTY => decode(KIND_PAGERDUTY, settings).map(ChannelSettings::PagerDuty),
            KIND_EMAIL => decode(KIND_EMAIL, settings).map(ChannelSettings::Email),
            other => Err(SettingsError::UnknownKind(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_their_stored_form() {
        let webhook = ChannelSettings::Webhook(WebhookSettings {
            url: "https://hooks.example.com/in".into(),
            headers: vec![Header {
                name: "authorization".into(),
                value: "Bearer s3cret".into(),
            }],
            secret_headers: vec![],
            signing_secret: "whsec".into(),
        });
        let stored = webhook.to_json();
        assert_eq!(ChannelSettings::from_stored("webhook", &stored).unwrap(), webhook);
        let slack = ChannelSettings::Slack(SlackSettings {
            webhook_url: "https://hooks.slack.com/services/T/B/X".into(),
        });
        assert_eq!(ChannelSettings::from_stored("slack", &slack.to_json()).unwrap(), slack);
        assert!(ChannelSettings::from_stored("email", &stored).is_err());
        assert!(ChannelSettings::from_stored("telegram", &stored).is_err());
        for settings in [
            ChannelSettings::Discord(DiscordSettings {
                webhook_url: "https://discord.com/api/webhooks/1/tok".into(),
            }),
            ChannelSettings::Teams(TeamsSettings {
                webhook_url: "https://prod.westeurope.logic.azure.com/workflows/x?sig=abc".into(),
            }),
            ChannelSettings::Telegram(TelegramSettings {
                bot_token: "123:ABC".into(),
                chat_id: "-100".into(),
                api_url: String::new(),
            }),
            ChannelSettings::PagerDuty(PagerDutySettings {
                routing_key: "0123456789abcdef0123456789abcdef".into(),
                events_url: String::new(),
            }),
        ] {
            assert_eq!(
                ChannelSettings::from_stored(settings.kind(), &settings.to_json()).unwrap(),
                settings
            );
        }
    }

    #[test]
    fn default_urls_apply_when_none_is_set() {
        let mut telegram = TelegramSettings {
            bot_token: "123:ABC".into(),
            chat_id: "@ops".into(),
            api_url: String::new(),
        };
        assert_eq!(
            ChannelSettings::Telegram(telegram.clone()).url(),
            "https://api.telegram.org/bot123:ABC/sendMessage"
        );
        telegram.api_url = "http://127.0.0.1:8081/hooks/telegram/ops/".into();
        assert_eq!(
            telegram.send_message_url(),
            "http://127.0.0.1:8081/hooks/telegram/ops/bot123:ABC/sendMessage"
        );
        let pagerduty = PagerDutySettings::default();
        assert_eq!(pagerduty.url(), PAGERDUTY_EVENTS_URL);
    }

    fn email() -> ChannelSettings {
        ChannelSettings::Email(EmailSettings {
            host: "smtp.example.com".into(),
            port: 465,
            tls: EmailTls::Implicit,
            username: "monitor".into(),
            password: "smtp-pass-w0rd".into(),
            from: "Monitor <monitor@example.com>".into(),
            to: vec!["ops@example.com".into(), "oncall@example.com".into()],
            ca_certificate_pem: String::new(),
        })
    }

    #[test]
    fn email_settings_round_trip_and_read_their_stored_names() {
        let email = email();
        let stored = email.to_json();
        assert_eq!(stored["tls"], "implicit");
        assert_eq!(stored["port"], 465);
        assert_eq!(ChannelSettings::from_stored("email", &stored).unwrap(), email);
        // Optional fields may be absent; STARTTLS is the default.
        let minimal = serde_json::json!({"host": "h", "port": 587, "from": "a@b.c", "to": ["d@e.f"]});
        let ChannelSettings::Email(minimal) = ChannelSettings::from_stored("email", &minimal).unwrap() else {
            panic!("not email")
        };
        assert_eq!(minimal.tls, EmailTls::Starttls);
        assert!(minimal.username.is_empty() && minimal.password.is_empty());
        assert_eq!(EmailTls::Starttls.default_port(), 587);
        assert_eq!(EmailTls::Implicit.default_port(), 465);
    }

    #[test]
    fn debug_shows_no_secret() {
        let webhook = ChannelSettings::Webhook(WebhookSettings {
            url: "https://hooks.example.com/in".into(),
            headers: vec![Header {
                name: "authorization".into(),
                value: "Bearer s3cret".into(),
            }],
            secret_headers: vec![],
            signing_secret: "whsec".into(),
        });
        let slack = ChannelSettings::Slack(SlackSettings {
            webhook_url: "https://hooks.slack.com/services/T/B/X".into(),
        });
        let others = [
            ChannelSettings::Discord(DiscordSettings {
                webhook_url: "https://discord.com/api/webhooks/1/discordtok".into(),
            }),
            ChannelSettings::Teams(TeamsSettings {
                webhook_url: "https://x.logic.azure.com/workflows/x?sig=teamssig".into(),
            }),
            ChannelSettings::Telegram(TelegramSettings {
                bot_token: "123:telegramtok".into(),
                chat_id: "@ops".into(),
                api_url: String::new(),
            }),
            ChannelSettings::PagerDuty(PagerDutySettings {
                routing_key: "routingkey0123456789abcdef012345".into(),
                events_url: String::new(),
            }),
        ];
        let email = email();
        let shown = format!("{webhook:?} {slack:?} {others:?} {email:?}");
        for secret in [
            "s3cret",
            "whsec",
            "services",
            "discordtok",
            "teamssig",
            "telegramtok",
            "routingkey",
            "smtp-pass-w0rd",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("@ops"), "{shown}");
        assert!(shown.contains("smtp.example.com"), "{shown}");
    }
}
