//! The HTTP sender of every channel kind.
//!
//! A channel URL is user input sent from inside someone's network, like a
//! probe target, so it goes through the same [`Blocklist`]: an IP literal
//! is judged before anything is sent, a host name's addresses when it is
//! resolved (blocked ones dropped). No proxy (it would resolve names past
//! the blocklist), no redirects (a redirect could lead anywhere, and a
//! webhook that moved should be edited), a timeout on the whole exchange.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use monitor_core::blocklist::Blocklist;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls_platform_verifier::BuilderVerifierExt as _;
use url::{Host, Url};

use crate::{
    DELIVERY_HEADER, SIGNATURE_HEADER,
    email::{Mail, incident_mail},
    kinds::{Reply, interpret_reply},
    message,
    payload::IncidentNotice,
    retry::{Answer, parse_retry_after},
    settings::{ChannelSettings, EmailSettings},
    signature,
};

/// The most of an answer's body kept (for the attempt log and TestNotificationChannel).
pub const BODY_EXCERPT_BYTES: usize = 1024;

/// Why a URL may not be sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not an absolute URL: {0}")]
    Unparsable(String),
    #[error("must be http:// or https://, not {0}://")]
    Scheme(String),
    #[error("has no host")]
    NoHost,
    #[error("must not carry a user name or password (put credentials in a header)")]
    Userinfo,
    #[error(transparent)]
    Blocked(#[from] Blocked),
}

/// A blocked address, named with the flag that opens it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} is in blocked network {network} (started with --notify-allow-net {network} it may be contacted)")]
pub struct Blocked {
    /// "address 127.0.0.1" or "host.example resolves to 10.0.0.1, which".
    pub(crate) what: String,
    pub(crate) network: IpNet,
}

/// The error of a name whose addresses are all blocked or that does not resolve.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error(transparent)]
    Blocked(Blocked),
    #[error("could not resolve {0}")]
    Dns(String),
}

/// Parses a channel URL and refuses what can never be sent to: not
/// http(s), no host, userinfo, or an IP literal in a blocked network.
pub fn check_url(blocklist: &Blocklist, raw: &str) -> Result<Url, UrlError> {
    let url = Url::parse(raw).map_err(|err| UrlError::Unparsable(err.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(UrlError::Scheme(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Userinfo);
    }
    let address: IpAddr = match url.host() {
        None => return Err(UrlError::NoHost),
        Some(Host::Domain(_)) => return Ok(url),
        Some(Host::Ipv4(v4)) => v4.into(),
        Some(Host::Ipv6(v6)) => v6.into(),
    };
    if let Some(network) = blocklist.network_of(address) {
        return Err(Blocked {
            what: format!("address {address}"),
            network,
        }
        .into());
    }
    Ok(url)
}

/// Resolves names and drops blocked addresses.
struct FilteringResolver {
    blocklist: Arc<Blocklist>,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let blocklist = Arc::clone(&self.blocklist);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| ResolveError::Dns(host.clone()))?;
            let mut allowed: Vec<SocketAddr> = Vec::new();
            let mut blocked = None;
            for address in resolved {
                match blocklist.network_of(address.ip()) {
                    None => allowed.push(address),
                    Some(network) => {
                        blocked.get_or_insert(Blocked {
                            what: format!("{host} resolves to {}, which", address.ip()),
                            network,
                        });
                    }
                }
            }
            if allowed.is_empty() {
                return Err(Box::new(match blocked {
                    Some(blocked) => ResolveError::Blocked(blocked),
                    None => ResolveError::Dns(host),
                }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// What one send saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub answer: Answer,
    /// The first [`BODY_EXCERPT_BYTES`] of the answer's body, lossily
    /// UTF-8; for email, the SMTP server's last reply.
    pub body_excerpt: String,
    /// Why it failed, for people ("" when a 2xx came back).
    pub error: String,
    pub duration: Duration,
}

impl Sent {
    /// The far end's status, if it answered (Telegram's `error_code` when
    /// it answered 2xx with `ok` false: see `kinds::telegram`).
    pub fn status(&self) -> Option<u16> {
        match self.answer {
            Answer::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The SMTP server's last reply code, if an SMTP server answered.
    pub fn smtp_code(&self) -> Option<u16> {
        match self.answer {
            Answer::Mail { code } => Some(code),
            _ => None,
        }
    }
}

/// Could not build the HTTP client (TLS roots missing).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the notification HTTP client: {0}")]
pub struct SetupError(String);

/// Sends channel requests; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    blocklist: Arc<Blocklist>,
    /// Longest one exchange may take (HTTP or SMTP).
    timeout: Duration,
}

impl Sender {
    /// A sender refusing `blocklist`'s networks, giving up on an exchange
    /// after `timeout`.
    pub fn new(blocklist: Blocklist, timeout: Duration) -> Result<Sender, SetupError> {
        let blocklist = Arc::new(blocklist);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| SetupError(err.to_string()))?
            .with_platform_verifier()
            .map_err(|err| SetupError(err.to_string()))?
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .user_agent(concat!("monitor-notify/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(FilteringResolver {
                blocklist: Arc::clone(&blocklist),
            })
            .tls_backend_preconfigured(tls)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|err| SetupError(err.to_string()))?;
        Ok(Sender {
            client,
            blocklist,
            timeout,
        })
    }

    /// The blocklist this sender applies.
    pub fn blocklist(&self) -> &Blocklist {
        &self.blocklist
    }

    /// Sends the one message `notices` (at least one) make for the channel:
    /// an email lists them all in one mail, the HTTP kinds post
    /// [`message::body`].
    pub async fn deliver(
        &self,
        settings: &ChannelSettings,
        notices: &[IncidentNotice],
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Sent {
        match settings {
            ChannelSettings::Email(email) => self.send_mail(email, &incident_mail(notices), delivery_id).await,
            _ => {
                self.send(settings, &message::body(settings, notices), delivery_id, now)
                    .await
            }
        }
    }

    /// Mails `mail` to an email channel's recipients over SMTP
    /// ([`crate::smtp`]), with a Message-ID made from `delivery_id`.
    pub async fn send_mail(&self, settings: &EmailSettings, mail: &Mail, delivery_id: &str) -> Sent {
        crate::smtp::send(&self.blocklist, self.timeout, settings, mail, delivery_id).await
    }

    /// POSTs `body` to the channel with the delivery id header (and the
    /// signature when the channel has a signing secret), signed at `now`.
    pub async fn send(
        &self,
        settings: &ChannelSettings,
        body: &serde_json::Value,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Sent {
        let started = Instant::now();
        let refused = |error: String| Sent {
            answer: Answer::Refused,
            body_excerpt: String::new(),
            error,
            duration: started.elapsed(),
        };
        if let ChannelSettings::Email(_) = settings {
            return refused("email channels are sent over SMTP (Sender::send_mail), not posted".into());
        }
        let url = match check_url(&self.blocklist, &settings.url()) {
            Ok(url) => url,
            Err(err) => return refused(format!("url {err}")),
        };
        let body = serde_json::to_vec(body).expect("JSON serializes");
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(DELIVERY_HEADER, delivery_id);
        if let ChannelSettings::Webhook(webhook) = settings {
            for header in &webhook.headers {
                request = request.header(header.name.as_str(), header.value.as_str());
            }
            if !webhook.signing_secret.is_empty() {
                request = request.header(
                    SIGNATURE_HEADER,
                    signature::sign(&webhook.signing_secret, now.timestamp(), &body),
                );
            }
        }
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(err) => {
                let error = describe(&err);
                if let Some(blocked) = blocked_in(&err) {
                    return refused(blocked.to_string());
                }
                return Sent {
                    answer: Answer::NoAnswer,
                    body_excerpt: String::new(),
                    error,
                    duration: started.elapsed(),
                };
            }
        };
        let code = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let body_excerpt = excerpt(response).await;
        let Reply {
            code,
            retry_after,
            error,
        } = interpret_reply(settings, code, retry_after, &body_excerpt);
        Sent {
            answer: Answer::Status { code, retry_after },
            body_excerpt,
            error,
            duration: started.elapsed(),
        }
    }
}

/// The start of the body; whatever arrived before an error or the timeout.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < BODY_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(BODY_EXCERPT_BYTES);
    String::from_utf8_lossy(&kept).into_owned()
}

/// The blocked address somewhere in `err`'s causes.
fn blocked_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut cause: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(ResolveError::Blocked(blocked)) = current.downcast_ref::<ResolveError>() {
            return Some(blocked);
        }
        cause = current.source();
    }
    None
}

/// A reqwest error in words: its kind and innermost cause.
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut innermost: &dyn std::error::Error = err;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    format!("{kind}: {innermost}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_and_not_blocked() {
        let blocklist = Blocklist::default();
        assert!(check_url(&blocklist, "https://hooks.example.com/x").is_ok());
        assert!(matches!(
            check_url(&blocklist, "/relative"),
            Err(UrlError::Unparsable(_))
        ));
        assert_eq!(
            check_url(&blocklist, "ftp://example.com/"),
            Err(UrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            check_url(&blocklist, "https://u:p@example.com/"),
            Err(UrlError::Userinfo)
        );
        let blocked = check_url(&blocklist, "http://169.254.169.254/latest").unwrap_err();
        assert_eq!(
            blocked.to_string(),
            "address 169.254.169.254 is in blocked network 169.254.169.254/32 (started with --notify-allow-net 169.254.169.254/32 it may be contacted)"
        );
        assert!(matches!(
            check_url(&blocklist, "http://[::1]:8/"),
            Err(UrlError::Blocked(_))
        ));
        let open = Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(check_url(&open, "http://127.0.0.1:9/").is_ok());
    }
}
