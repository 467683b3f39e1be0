//! Each channel kind's settings as stored in `notification_channels.settings`
//! (JSON). They hold secrets (the Slack webhook URL, secret header values,
//! the signing secret), so their `Debug` shows none of them; the API
//! answers with the redaction marker instead (the server's
//! `notify::secrets`).

use serde::{Deserialize, Serialize};

/// The stored kind names.
pub const KIND_WEBHOOK: &str = "webhook";
pub const KIND_SLACK: &str = "slack";

/// A channel's settings, by kind.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelSettings {
    Webhook(WebhookSettings),
    Slack(SlackSettings),
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
        }
    }

    /// Where requests go.
    pub fn url(&self) -> &str {
        match self {
            ChannelSettings::Webhook(webhook) => &webhook.url,
            ChannelSettings::Slack(slack) => &slack.webhook_url,
        }
    }

    /// The JSON stored in `settings`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            ChannelSettings::Webhook(webhook) => serde_json::to_value(webhook),
            ChannelSettings::Slack(slack) => serde_json::to_value(slack),
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
        let shown = format!("{webhook:?} {slack:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("whsec") && !shown.contains("services"));
    }
}
