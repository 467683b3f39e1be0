//! Secrets that must never reach an API answer, a log line or Debug output,
//! shared by the server and the workers: the one redaction marker, which
//! headers of an HTTP check are secret, how a URL's userinfo is hidden, and
//! wrappers for secret settings (tokens, passwords, database URLs).
//!
//! The generated `HttpCheck` and `HttpHeader` print their secrets redacted
//! too (their `Debug` impls are here, see `build.rs`).

use std::{borrow::Cow, fmt};

use crate::v1::{HttpCheck, HttpHeader};

/// What a secret is shown as, everywhere. The API also takes it back: a
/// header value or URL userinfo sent as the marker keeps the stored one.
/// (Characters that URLs carry unencoded, so `https://***@host/` reads as
/// it is written.)
pub const REDACTED: &str = "***";

/// Headers whose values are always secret, lower-case.
pub const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie", "x-api-key"];

/// Whether the header `name` carries a secret: always for [`SECRET_HEADERS`],
/// otherwise when `marked` (an HTTP check's `secret_headers`) names it; both
/// case-insensitively.
pub fn is_secret_header(name: &str, marked: &[String]) -> bool {
    SECRET_HEADERS.iter().any(|secret| name.eq_ignore_ascii_case(secret))
        || marked.iter().any(|secret| name.eq_ignore_ascii_case(secret))
}

/// Whether `raw` is a URL with a user name or password.
pub fn has_userinfo(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|url| !url.username().is_empty() || url.password().is_some())
}

/// `raw` with its whole userinfo (user name and password) replaced by
/// [`REDACTED`]: `https://user:pw@host/` becomes `https://***@host/`. The
/// user name goes too because it is often the secret itself (an API token
/// sent as `https://<token>@host/`). A URL without userinfo is returned as
/// it is; text that does not parse as a URL with a host but holds an `@`
/// is replaced whole, since where its secret ends cannot be told.
pub fn redact_userinfo(raw: &str) -> Cow<'_, str> {
    // `user:pw@host` parses too, as scheme `user` and path `pw@host`.
    let parsed = url::Url::parse(raw).ok().filter(url::Url::has_host);
    let Some(mut url) = parsed else {
        return if raw.contains('@') {
            Cow::Borrowed(REDACTED)
        } else {
            Cow::Borrowed(raw)
        };
    };
    if url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(raw);
    }
    if url.set_password(None).is_err() || url.set_username(REDACTED).is_err() {
        return Cow::Borrowed(REDACTED);
    }
    Cow::Owned(url.into())
}

/// A secret setting (a token, a password). `Debug` shows [`REDACTED`] and
/// there is no `Display`, so it cannot end up in a log line by accident;
/// [`Secret::expose`] hands the value to the one place that uses it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the client that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A URL that may carry a password in its userinfo (`DATABASE_URL`,
/// `postgres://user:pass@host/db`). `Debug` and `Display` show it with the
/// userinfo redacted ([`redact_userinfo`]), so the host and database stay
/// visible in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(value: impl Into<String>) -> Self {
        SecretUrl(value.into())
    }

    /// The URL itself, for the client that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        SecretUrl(value)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_userinfo(&self.0), f)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_userinfo(&self.0))
    }
}

/// A header as Debug shows it: the value redacted when the header is secret.
struct ShownHeader<'a> {
    header: &'a HttpHeader,
    marked: &'a [String],
}

impl fmt::Debug for ShownHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HttpHeader { name, value } = self.header;
        let mut out = f.debug_struct("HttpHeader");
        out.field("name", name);
        if is_secret_header(name, self.marked) {
            out.field("value", &format_args!("{REDACTED}"));
        } else {
            out.field("value", value);
        }
        out.finish()
    }
}

/// On its own a header knows only the always-secret names.
impl fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ShownHeader {
            header: self,
            marked: &[],
        }
        .fmt(f)
    }
}

/// Like the derived impl, with the URL's userinfo and the secret headers'
/// values redacted. The destructuring names every field, so a new field
/// does not compile until it is decided how it is shown.
impl fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HttpCheck {
            url,
            method,
            headers,
            body,
            follow_redirects,
            insecure_skip_tls_verify,
            assertions,
            secret_headers,
            proxy,
        } = self;
        let shown = shown_headers(headers, secret_headers);
        f.debug_struct("HttpCheck")
            .field("url", &redact_userinfo(url))
            .field("method", method)
            .field("headers", &shown)
            .field("body", body)
            .field("follow_redirects", follow_redirects)
            .field("insecure_skip_tls_verify", insecure_skip_tls_verify)
            .field("assertions", assertions)
            .field("secret_headers", secret_headers)
            .field("proxy", proxy)
            .finish()
    }
}

fn shown_headers<'a>(headers: &'a [HttpHeader], marked: &'a [String]) -> Vec<ShownHeader<'a>> {
    headers.iter().map(|header| ShownHeader { header, marked }).collect()
}

/// The password is never shown.
impl fmt::Debug for crate::v1::Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let crate::v1::Socks5Proxy {
            host,
            port,
            username,
            password: _,
        } = self;
        f.debug_struct("Socks5Proxy")
            .field("host", host)
            .field("port", port)
            .field("username", username)
            .field("password", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// Secret metadata values redacted, as for HTTP headers.
impl fmt::Debug for crate::v1::GrpcHealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let crate::v1::GrpcHealthCheck {
            host,
            port,
            service,
            tls,
            insecure_skip_tls_verify,
            metadata,
            secret_metadata,
        } = self;
        f.debug_struct("GrpcHealthCheck")
            .field("host", host)
            .field("port", port)
            .field("service", service)
            .field("tls", tls)
            .field("insecure_skip_tls_verify", insecure_skip_tls_verify)
            .field("metadata", &shown_headers(metadata, secret_metadata))
            .field("secret_metadata", secret_metadata)
            .finish()
    }
}

/// The URL's userinfo and secret header values redacted, as for HTTP checks.
impl fmt::Debug for crate::v1::WebSocketCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let crate::v1::WebSocketCheck {
            url,
            headers,
            send,
            expect_contains,
            expect_regex,
            insecure_skip_tls_verify,
            secret_headers,
        } = self;
        f.debug_struct("WebSocketCheck")
            .field("url", &redact_userinfo(url))
            .field("headers", &shown_headers(headers, secret_headers))
            .field("send", send)
            .field("expect_contains", expect_contains)
            .field("expect_regex", expect_regex)
            .field("insecure_skip_tls_verify", insecure_skip_tls_verify)
            .field("secret_headers", secret_headers)
            .finish()
    }
}

/// Notification channels hold secrets too: Debug shows the webhook's URL and
/// header names but no values and no signing secret, and nothing of a Slack
/// channel's URL (it is the secret).
impl fmt::Debug for crate::v1::WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &redact_userinfo(&self.url))
            .field("headers", &self.headers)
            .field("secret_headers", &self.secret_headers)
            .field("signing_secret", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl fmt::Debug for crate::v1::WebhookHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookHeader")
            .field("name", &self.name)
            .field("value", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl fmt::Debug for crate::v1::SlackChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackChannel")
            .field("webhook_url", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl fmt::Debug for crate::v1::DiscordChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordChannel")
            .field("webhook_url", &format_args!("{REDACTED}"))
            .finish()
    }
}

impl fmt::Debug for crate::v1::TeamsChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsChannel")
            .field("webhook_url", &format_args!("{REDACTED}"))
            .finish()
    }
}

/// The chat id and API URL are not secret; the bot token is.
impl fmt::Debug for crate::v1::TelegramChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramChannel")
            .field("bot_token", &format_args!("{REDACTED}"))
            .field("chat_id", &self.chat_id)
            .field("api_url", &redact_userinfo(&self.api_url))
            .finish()
    }
}

impl fmt::Debug for crate::v1::PagerDutyChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutyChannel")
            .field("routing_key", &format_args!("{REDACTED}"))
            .field("events_url", &redact_userinfo(&self.events_url))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers_are_the_fixed_ones_and_the_marked_ones_in_any_case() {
        for name in ["Authorization", "proxy-authorization", "COOKIE", "X-Api-Key"] {
            assert!(is_secret_header(name, &[]), "{name}");
        }
        assert!(!is_secret_header("X-Token", &[]));
        assert!(is_secret_header("x-token", &["X-Token".into()]));
        assert!(!is_secret_header("Accept", &["X-Token".into()]));
    }

    #[test]
    fn userinfo_is_redacted_whole() {
        assert_eq!(
            redact_userinfo("https://user:pw@host.example/p?q=1"),
            "https://***@host.example/p?q=1"
        );
        assert_eq!(
            redact_userinfo("https://token@host.example/"),
            "https://***@host.example/"
        );
        assert_eq!(
            redact_userinfo("https://:pw@host.example/"),
            "https://***@host.example/"
        );
        assert_eq!(
            redact_userinfo("postgres://monitor:s3cret@db:5432/monitor"),
            "postgres://***@db:5432/monitor"
        );
        // Nothing to hide: the text stays as written (not normalised).
        assert_eq!(redact_userinfo("https://Host.example"), "https://Host.example");
        assert_eq!(redact_userinfo("https://host.example/a@b"), "https://host.example/a@b");
        // Not a URL: an @ may end a secret, so all of it goes.
        assert_eq!(redact_userinfo("user:pw@host"), REDACTED);
        assert_eq!(redact_userinfo("not a url"), "not a url");
        assert!(has_userinfo("https://u@h/") && has_userinfo("https://:p@h/") && !has_userinfo("https://h/"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), REDACTED);
        assert_eq!(secret.expose(), "hunter2");
        let url = SecretUrl::new("postgres://monitor:hunter2@db/monitor");
        assert_eq!(format!("{url:?}"), "\"postgres://***@db/monitor\"");
        assert_eq!(url.to_string(), "postgres://***@db/monitor");
        assert!(url.expose().contains("hunter2"));

        let check = HttpCheck {
            url: "https://user:hunter2@host.example/".into(),
            headers: vec![
                HttpHeader {
                    name: "Authorization".into(),
                    value: "Bearer hunter2".into(),
                },
                HttpHeader {
                    name: "x-custom".into(),
                    value: "hunter2-too".into(),
                },
                HttpHeader {
                    name: "Accept".into(),
                    value: "text/plain".into(),
                },
            ],
            secret_headers: vec!["X-Custom".into()],
            ..Default::default()
        };
        let shown = format!("{check:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("text/plain") && shown.contains("https://***@host.example/"),
            "{shown}"
        );
        let header = format!("{:?}", check.headers[0]);
        assert!(
            !header.contains("hunter2") && header.contains("Authorization"),
            "{header}"
        );
    }

    #[test]
    fn channel_debug_hides_the_secrets() {
        use crate::v1::{DiscordChannel, PagerDutyChannel, TeamsChannel, TelegramChannel};
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            DiscordChannel {
                webhook_url: "https://discord.com/api/webhooks/1/discordtok".into()
            },
            TeamsChannel {
                webhook_url: "https://x.logic.azure.com/w?sig=teamssig".into()
            },
            TelegramChannel {
                bot_token: "1:telegramtok".into(),
                chat_id: "@ops".into(),
                api_url: String::new()
            },
            PagerDutyChannel {
                routing_key: "routingkey".into(),
                events_url: String::new()
            },
        );
        for secret in ["discordtok", "teamssig", "telegramtok", "routingkey"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("@ops"), "{shown}");
    }
}
