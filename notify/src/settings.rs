//! Each channel kind's settings as stored in `notification_channels.settings`
//! (JSON). They hold secrets (the Slack webhook URL, secret header values,
//! the signing secret, the SMTP password), so their `Debug` shows none of them; the API
//! answers with the redaction marker instead (the server's
//! `notify::secrets`).

use serde::{Deserialize, Serialize};

/// The stored kind names.
pub const KIND_WEBHOOK: &str = "webhook";
pub const KIND_SLACK: &str = "slack";
pub const KIND_EMAIL: &str = "email";

/// A channel's settings, by kind.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelSettings {
    Webhook(WebhookSettings),
    Slack(SlackSettings),
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
        }
    }

    /// Where requests go (HTTP kinds; empty for email, which is sent by
    /// `Sender::send_mail` to its host instead).
    pub fn url(&self) -> &str {
        match self {
            ChannelSettings::Webhook(webhook) => &webhook.url,
            ChannelSettings::Slack(slack) => &slack.webhook_url,
            ChannelSettings::Email(_) => "",
        }
    }

    /// The JSON stored in `settings`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            ChannelSettings::Webhook(webhook) => serde_json::to_value(webhook),
            ChannelSettings::Slack(slack) => serde_json::to_value(slack),
            ChannelSettings::Email(email) => serde_json::to_value(email),
        };
        value.expect("settings serialize")
    }

    /// Decodes stored settings of `kind`.
    pub fn from_stored(kind: &str, settings: &serde_json::Value) -> Result<Self, SettingsError> {
        match kind {
            KIND_WEBHOOK => serde_json::from_value(settings.clone())
                .map(ChannelSettings::Webhook)
                .map_err(|source| SettingsError::Decode {
                    kind: KIND_WEBHOOK,
                    source,
                }),
            KIND_SLACK => serde_json::from_value(settings.clone())
                .map(ChannelSettings::Slack)
                .map_err(|source| SettingsError::Decode {
                    kind: KIND_SLACK,
                    source,
                }),
            KIND_EMAIL => serde_json::from_value(settings.clone())
                .map(ChannelSettings::Email)
                .map_err(|source| SettingsError::Decode {
                    kind: KIND_EMAIL,
                    source,
                }),
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
        assert!(ChannelSettings::from_stored("pigeon", &stored).is_err());
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
        let email = email();
        let shown = format!("{webhook:?} {slack:?} {email:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("whsec") && !shown.contains("services"));
        assert!(!shown.contains("smtp-pass-w0rd"), "{shown}");
        assert!(shown.contains("smtp.example.com"), "{shown}");
    }
}
