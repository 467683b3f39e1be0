//! The SMTP sender of email channels (lettre over tokio + rustls).
//!
//! The SMTP host is user input contacted from inside someone's network, like
//! a webhook URL, so it goes through the same [`Blocklist`]: the name is
//! resolved here, blocked addresses are dropped, and the connection goes to
//! an allowed address while TLS still verifies the certificate against the
//! host *name* (SNI too). TLS is never optional: implicit TLS from the
//! first byte, or STARTTLS, which the server must offer (a server that does
//! not is refused, never sent to in plain text). Certificates are verified
//! against the system roots plus the channel's CA, if it has one. One
//! timeout bounds the whole exchange.
//!
//! What the server said is kept: its last reply (`250 2.0.0 Ok: queued as
//! …`, or the refusal) is the attempt's excerpt, and its code the
//! [`Answer::Mail`] that [`crate::retry::decide`] judges.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use lettre::{
    Message,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, TlsParameters},
        extension::{ClientId, Extension},
    },
};
use monitor_core::blocklist::Blocklist;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};

use crate::{
    email::{Mail, message_id},
    retry::Answer,
    send::{BODY_EXCERPT_BYTES, Blocked, Sent},
    settings::{EmailSettings, EmailTls},
};

/// The name this sender gives in EHLO.
const HELLO_NAME: &str = "monitor";

/// Why an SMTP host may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("is required")]
    Empty,
    #[error("{0:?} is not a host name or IP address")]
    Invalid(String),
    #[error(transparent)]
    Blocked(#[from] Blocked),
}

/// Refuses what can never be connected to: an empty or malformed host, or
/// an IP literal in a blocked network (names are judged when resolved).
pub fn check_host(blocklist: &Blocklist, host: &str) -> Result<(), HostError> {
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.len() > 253 || ServerName::try_from(host).is_err() {
        return Err(HostError::Invalid(host.to_owned()));
    }
    if let Ok(address) = host.parse::<IpAddr>()
        && let Some(network) = blocklist.network_of(address)
    {
        return Err(Blocked {
            what: format!("address {address}"),
            network,
        }
        .into());
    }
    Ok(())
}

/// An address as a From or To header takes it: "Name <a@b.example>" or a
/// bare address.
pub fn parse_mailbox(raw: &str) -> Result<Mailbox, String> {
    raw.parse::<Mailbox>()
        .map_err(|err| format!("{raw:?} is not an email address ({err})"))
}

/// The certificates of a PEM CA bundle: at least one, each usable as a
/// trust anchor.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("is not PEM ({err})"))?;
    if certificates.is_empty() {
        return Err("holds no \"-----BEGIN CERTIFICATE-----\" block".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, certificate) in certificates.iter().enumerate() {
        roots
            .add(certificate.clone())
            .map_err(|err| format!("certificate {} is not a usable CA certificate ({err})", i + 1))?;
    }
    Ok(certificates)
}

/// How an exchange ended, before it becomes a [`Sent`].
enum Ending {
    /// The server replied `code` (`reply` is its whole reply); `error` is
    /// empty when that is the message's acceptance.
    Replied { code: u16, reply: String, error: String },
    /// No (usable) answer: DNS, connect, TLS, reset, timeout.
    NoAnswer(String),
    /// Never sent, and never will be as things stand.
    Refused(String),
}

/// The server's reply carried by an error, as "550 5.1.1 <x>: unknown".
fn reply_of(err: &lettre::transport::smtp::Error) -> Option<(u16, String)> {
    let code = u16::from(err.status()?);
    let text = std::error::Error::source(err)
        .map(|source| source.to_string())
        .unwrap_or_default();
    Some((code, format!("{code} {text}").trim_end().to_owned()))
}

/// An error at `step`: the server's refusal when it replied, else no answer.
fn failed(step: &str, err: lettre::transport::smtp::Error) -> Ending {
    match reply_of(&err) {
        Some((code, reply)) => Ending::Replied {
            code,
            error: format!("the SMTP server refused {step}: {reply}"),
            reply,
        },
        None => Ending::NoAnswer(format!("{step} failed: {err}")),
    }
}

/// Sends `mail` to the channel's recipients, at most `timeout` in all.
pub(crate) async fn send(
    blocklist: &Blocklist,
    timeout: Duration,
    settings: &EmailSettings,
    mail: &Mail,
    delivery_id: &str,
) -> Sent {
    let started = Instant::now();
    let ending = match tokio::time::timeout(timeout, exchange(blocklist, timeout, settings, mail, delivery_id)).await {
        Ok(ending) => ending,
        Err(_) => Ending::NoAnswer(format!(
            "timed out after {} ms talking to {}:{}",
            timeout.as_millis(),
            settings.host,
            settings.port
        )),
    };
    let (answer, body_excerpt, error) = match ending {
        Ending::Replied { code, reply, error } => (Answer::Mail { code }, reply, error),
        Ending::NoAnswer(error) => (Answer::NoAnswer, String::new(), error),
        Ending::Refused(error) => (Answer::Refused, String::new(), error),
    };
    Sent {
        answer,
        body_excerpt: truncate(body_excerpt, BODY_EXCERPT_BYTES),
        error,
        duration: started.elapsed(),
    }
}

/// At most `limit` bytes, cut on a character boundary.
fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut end = limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The message as it goes on the wire.
fn message(settings: &EmailSettings, mail: &Mail, delivery_id: &str) -> Result<Message, String> {
    let from = parse_mailbox(&settings.from).map_err(|err| format!("email.from {err}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(mail.subject.clone())
        .message_id(Some(message_id(delivery_id)))
        .date_now();
    for (i, to) in settings.to.iter().enumerate() {
        builder = builder.to(parse_mailbox(to).map_err(|err| format!("email.to[{i}] {err}"))?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(mail.text.clone(), mail.html.clone()))
        .map_err(|err| format!("the message cannot be built: {err}"))
}

fn tls_parameters(settings: &EmailSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if !settings.ca_certificate_pem.is_empty() {
        for der in
            parse_ca_pem(&settings.ca_certificate_pem).map_err(|err| format!("email.ca_certificate_pem {err}"))?
        {
            let certificate = Certificate::from_der(der.to_vec())
                .map_err(|err| format!("email.ca_certificate_pem is not usable: {err}"))?;
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build_rustls()
        .map_err(|err| format!("cannot set up TLS for {}: {err}", settings.host))
}

/// The host's addresses outside the blocklist.
async fn allowed_addresses(blocklist: &Blocklist, host: &str, port: u16) -> Result<Vec<SocketAddr>, Ending> {
    if let Err(err) = check_host(blocklist, host) {
        return Err(Ending::Refused(format!("email.host {err}")));
    }
    if let Ok(address) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(address, port)]);
    }
    let resolved = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| Ending::NoAnswer(format!("could not resolve {host}: {err}")))?;
    let mut allowed = Vec::new();
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
    match (allowed.is_empty(), blocked) {
        (false, _) => Ok(allowed),
        (true, Some(blocked)) => Err(Ending::Refused(blocked.to_string())),
        (true, None) => Err(Ending::NoAnswer(format!("{host} resolves to no address"))),
    }
}

async fn exchange(
    blocklist: &Blocklist,
    timeout: Duration,
    settings: &EmailSettings,
    mail: &Mail,
    delivery_id: &str,
) -> Ending {
    let message = match message(settings, mail, delivery_id) {
        Ok(message) => message,
        Err(err) => return Ending::Refused(err),
    };
    let tls = match tls_parameters(settings) {
        Ok(tls) => tls,
        Err(err) => return Ending::Refused(err),
    };
    let (host, port) = (settings.host.as_str(), settings.port);
    let addresses = match allowed_addresses(blocklist, host, port).await {
        Ok(addresses) => addresses,
        Err(ending) => return ending,
    };
    let hello = ClientId::Domain(HELLO_NAME.to_owned());
    let implicit = settings.tls == EmailTls::Implicit;
    let mut connection = None;
    let mut last = None;
    for address in addresses {
        match AsyncSmtpConnection::connect_tokio1(address, Some(timeout), &hello, implicit.then(|| tls.clone()), None)
            .await
        {
            Ok(connected) => {
                connection = Some(connected);
                break;
            }
            Err(err) => last = Some((address, err)),
        }
    }
    let mut connection = match (connection, last) {
        (Some(connection), _) => connection,
        (None, Some((address, err))) => {
            let step = if implicit {
                format!("connecting with TLS to {host}:{port} ({address})")
            } else {
                format!("connecting to {host}:{port} ({address})")
            };
            return failed(&step, err);
        }
        (None, None) => return Ending::NoAnswer(format!("{host} resolves to no address")),
    };
    if !implicit {
        if !connection.server_info().supports_feature(Extension::StartTls) {
            connection.abort().await;
            return Ending::Refused(format!(
                "the SMTP server at {host}:{port} does not offer STARTTLS, which this channel requires \
                 (nothing was sent in plain text); if it speaks TLS from the first byte, choose implicit TLS"
            ));
        }
        if let Err(err) = connection.starttls(tls, &hello).await {
            // Dropped, not aborted: after a failed handshake lettre has no
            // stream left, and `abort` (which sends QUIT) would panic.
            drop(connection);
            return failed("STARTTLS", err);
        }
    }
    if !settings.username.is_empty() {
        let credentials = Credentials::new(settings.username.clone(), settings.password.clone());
        if let Err(err) = connection
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .await
        {
            connection.abort().await;
            if err.is_client() {
                return Ending::Refused(format!(
                    "the SMTP server at {host}:{port} offers no login mechanism this sender speaks (PLAIN, LOGIN)"
                ));
            }
            return failed(&format!("the login as {:?}", settings.username), err);
        }
    }
    let reply = match connection.send(message.envelope(), &message.formatted()).await {
        Ok(reply) => reply,
        // `send` has already closed the connection.
        Err(err) => return failed("the message", err),
    };
    let _ = connection.quit().await;
    let code = u16::from(reply.code());
    let text: Vec<&str> = reply.message().collect();
    Ending::Replied {
        code,
        reply: format!("{code} {}", text.join(" ")).trim_end().to_owned(),
        error: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_must_be_names_or_addresses_outside_the_blocklist() {
        let blocklist = Blocklist::default();
        assert_eq!(check_host(&blocklist, "smtp.example.com"), Ok(()));
        assert_eq!(check_host(&blocklist, "192.0.2.10"), Ok(()));
        assert_eq!(check_host(&blocklist, ""), Err(HostError::Empty));
        for bad in ["smtp example.com", "smtp.example.com:587", "a/b", "[::1]"] {
            assert!(
                matches!(check_host(&blocklist, bad), Err(HostError::Invalid(_))),
                "{bad}"
            );
        }
        let blocked = check_host(&blocklist, "127.0.0.1").unwrap_err();
        assert!(
            blocked.to_string().contains("--notify-allow-net 127.0.0.0/8"),
            "{blocked}"
        );
        let open = Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(check_host(&open, "127.0.0.1"), Ok(()));
    }

    #[test]
    fn mailboxes_take_a_name_or_not() {
        assert_eq!(
            parse_mailbox("Monitor <monitor@example.com>")
                .unwrap()
                .email
                .to_string(),
            "monitor@example.com"
        );
        assert!(parse_mailbox("ops@example.com").is_ok());
        for bad in ["", "ops", "ops@", "a@b@c", "Monitor <monitor@example.com"] {
            assert!(parse_mailbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_pem_needs_a_certificate() {
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        assert_eq!(parse_ca_pem(&issued.cert.pem()).unwrap().len(), 1);
        assert!(parse_ca_pem("hello").unwrap_err().contains("BEGIN CERTIFICATE"));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_ca_pem(garbage).is_err());
    }

    #[test]
    fn replies_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("250 ok".into(), 100), "250 ok");
        assert_eq!(truncate("ééé".into(), 3), "é");
    }

    fn settings(host: &str) -> EmailSettings {
        EmailSettings {
            host: host.into(),
            port: 25,
            tls: EmailTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: "monitor@example.com".into(),
            to: vec!["ops@example.com".into()],
            ca_certificate_pem: String::new(),
        }
    }

    #[tokio::test]
    async fn a_blocked_host_is_refused_before_connecting() {
        let mail = crate::email::test_mail("ops", chrono::Utc::now());
        let sent = send(
            &Blocklist::default(),
            Duration::from_secs(5),
            &settings("127.0.0.1"),
            &mail,
            "d",
        )
        .await;
        assert_eq!(sent.answer, Answer::Refused);
        assert!(sent.error.contains("blocked network 127.0.0.0/8"), "{}", sent.error);
        // "localhost" resolves only to blocked addresses.
        let sent = send(
            &Blocklist::default(),
            Duration::from_secs(5),
            &settings("localhost"),
            &mail,
            "d",
        )
        .await;
        assert_eq!(sent.answer, Answer::Refused);
        assert!(sent.error.contains("localhost resolves to"), "{}", sent.error);
    }

    #[tokio::test]
    async fn a_bad_stored_recipient_is_refused_naming_it() {
        let mut bad = settings("smtp.example.com");
        bad.to.push("not an address".into());
        let mail = crate::email::test_mail("ops", chrono::Utc::now());
        let sent = send(&Blocklist::default(), Duration::from_secs(5), &bad, &mail, "d").await;
        assert_eq!(sent.answer, Answer::Refused);
        assert!(sent.error.starts_with("email.to[1] "), "{}", sent.error);
    }
}
