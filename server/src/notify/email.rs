//! What an email channel may be, and its write-only password.
//!
//! Every field is checked by name (`email.host`, `email.to[2]`, ...) with
//! the same rules the SMTP sender applies (`monitor_notify::smtp`), so a
//! stored channel can always be sent to. The password is answered as
//! [`REDACTED`]; a write that sends the marker back keeps the stored one
//! only while host and port stay the stored ones, as webhook secrets stay
//! with their URL's origin: else a writer could send it to a server of
//! their own.

use monitor_core::blocklist::Blocklist;
use monitor_notify::{
    settings::{EmailSettings, EmailTls},
    smtp::{check_host, parse_ca_pem, parse_mailbox},
};
use monitor_proto::{
    secret::REDACTED,
    v1::{EmailChannel, EmailTls as ProtoTls},
};

use crate::error::FieldViolation;

/// Most recipients of one channel.
pub const MAX_RECIPIENTS: usize = 50;
/// Longest user name and password, in bytes.
pub const MAX_CREDENTIAL_BYTES: usize = 512;
/// Longest sender or recipient, in bytes.
pub const MAX_ADDRESS_BYTES: usize = 320;
/// Longest CA bundle, in bytes.
pub const MAX_CA_PEM_BYTES: usize = 64 * 1024;

/// The channel as answers show it: the password replaced by [`REDACTED`].
pub fn redact(email: &EmailSettings) -> EmailChannel {
    EmailChannel {
        host: email.host.clone(),
        port: u32::from(email.port),
        tls: match email.tls {
            EmailTls::Starttls => ProtoTls::Starttls,
            EmailTls::Implicit => ProtoTls::Implicit,
        } as i32,
        username: email.username.clone(),
        password: if email.password.is_empty() {
            String::new()
        } else {
            REDACTED.to_owned()
        },
        from: email.from.clone(),
        to: email.to.clone(),
        ca_certificate_pem: email.ca_certificate_pem.clone(),
    }
}

/// Checks a written email channel into the settings to store (violations
/// into `v`); `stored` is the channel's current settings on an update.
pub fn email_settings(
    email: &EmailChannel,
    stored: Option<&EmailSettings>,
    blocklist: &Blocklist,
    v: &mut Vec<FieldViolation>,
) -> EmailSettings {
    if let Err(err) = check_host(blocklist, &email.host) {
        v.push(FieldViolation::new("email.host", err.to_string()));
    }
    let tls = match ProtoTls::try_from(email.tls) {
        Ok(ProtoTls::Unspecified | ProtoTls::Starttls) => EmailTls::Starttls,
        Ok(ProtoTls::Implicit) => EmailTls::Implicit,
        Err(_) => {
            v.push(FieldViolation::new(
                "email.tls",
                format!("{} is not an EmailTls value (STARTTLS or IMPLICIT)", email.tls),
            ));
            EmailTls::Starttls
        }
    };
    let port = match email.port {
        0 => tls.default_port(),
        port => u16::try_from(port).unwrap_or_else(|_| {
            v.push(FieldViolation::new(
                "email.port",
                format!("must be 1 to 65535, or 0 for 587 with STARTTLS and 465 with implicit TLS (got {port})"),
            ));
            0
        }),
    };

    if email.username.len() > MAX_CREDENTIAL_BYTES {
        v.push(FieldViolation::new(
            "email.username",
            format!("must be at most {MAX_CREDENTIAL_BYTES} bytes"),
        ));
    } else if email.username.chars().any(char::is_control) {
        v.push(FieldViolation::new(
            "email.username",
            "must not hold control characters",
        ));
    }
    let mut password = email.password.clone();
    if password == REDACTED {
        let same_server = stored.filter(|stored| stored.host == email.host && stored.port == port);
        match same_server.filter(|stored| !stored.password.is_empty()) {
            Some(stored) => password = stored.password.clone(),
            None if stored.is_some_and(|stored| !stored.password.is_empty()) => v.push(FieldViolation::new(
                "email.password",
                format!(
                    "is the redaction marker {REDACTED:?}, but the host or port changed, so the stored password is not kept: send the password again"
                ),
            )),
            None => v.push(FieldViolation::new(
                "email.password",
                format!("is the redaction marker {REDACTED:?}, but there is no stored password to keep: send the password"),
            )),
        }
    } else if password.len() > MAX_CREDENTIAL_BYTES {
        v.push(FieldViolation::new(
            "email.password",
            format!("must be at most {MAX_CREDENTIAL_BYTES} bytes"),
        ));
    }
    match (email.username.is_empty(), email.password.is_empty()) {
        (false, true) => v.push(FieldViolation::new(
            "email.password",
            "is required with a username (log in with both, or set neither)",
        )),
        (true, false) => v.push(FieldViolation::new(
            "email.username",
            "is required with a password (log in with both, or set neither)",
        )),
        _ => {}
    }

    if email.from.is_empty() {
        v.push(FieldViolation::new("email.from", "is required"));
    } else if email.from.len() > MAX_ADDRESS_BYTES {
        v.push(FieldViolation::new(
            "email.from",
            format!("must be at most {MAX_ADDRESS_BYTES} bytes"),
        ));
    } else if let Err(err) = parse_mailbox(&email.from) {
        v.push(FieldViolation::new("email.from", err));
    }
    if email.to.is_empty() || email.to.len() > MAX_RECIPIENTS {
        v.push(FieldViolation::new(
            "email.to",
            format!("must name 1 to {MAX_RECIPIENTS} recipients (got {})", email.to.len()),
        ));
    }
    for (i, to) in email.to.iter().enumerate() {
        let field = format!("email.to[{i}]");
        if to.len() > MAX_ADDRESS_BYTES {
            v.push(FieldViolation::new(
                field,
                format!("must be at most {MAX_ADDRESS_BYTES} bytes"),
            ));
        } else if let Err(err) = parse_mailbox(to) {
            v.push(FieldViolation::new(field, err));
        }
    }

    if email.ca_certificate_pem.len() > MAX_CA_PEM_BYTES {
        v.push(FieldViolation::new(
            "email.ca_certificate_pem",
            format!("must be at most {MAX_CA_PEM_BYTES} bytes"),
        ));
    } else if !email.ca_certificate_pem.is_empty()
        && let Err(err) = parse_ca_pem(&email.ca_certificate_pem)
    {
        v.push(FieldViolation::new("email.ca_certificate_pem", err));
    }

    EmailSettings {
        host: email.host.clone(),
        port,
        tls,
        username: email.username.clone(),
        password,
        from: email.from.clone(),
        to: email.to.clone(),
        ca_certificate_pem: email.ca_certificate_pem.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> Blocklist {
        Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
    }

    fn written() -> EmailChannel {
        EmailChannel {
            host: "smtp.example.com".into(),
            port: 0,
            tls: ProtoTls::Starttls as i32,
            username: "monitor".into(),
            password: "smtp-s3cret".into(),
            from: "Monitor <monitor@example.com>".into(),
            to: vec!["ops@example.com".into(), "Oncall <oncall@example.com>".into()],
            ca_certificate_pem: String::new(),
        }
    }

    fn check(email: &EmailChannel, stored: Option<&EmailSettings>) -> (EmailSettings, Vec<String>) {
        let mut v = Vec::new();
        let settings = email_settings(email, stored, &loopback(), &mut v);
        (settings, v.into_iter().map(|v| v.field).collect())
    }

    #[test]
    fn a_valid_channel_gets_its_default_port() {
        let (settings, violations) = check(&written(), None);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!((settings.port, settings.tls), (587, EmailTls::Starttls));
        let implicit = EmailChannel {
            tls: ProtoTls::Implicit as i32,
            ..written()
        };
        assert_eq!(check(&implicit, None).0.port, 465);
        let unspecified = EmailChannel {
            tls: 0,
            port: 2525,
            ..written()
        };
        let (settings, _) = check(&unspecified, None);
        assert_eq!((settings.port, settings.tls), (2525, EmailTls::Starttls));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = EmailChannel {
            host: "smtp example.com".into(),
            port: 70_000,
            tls: 9,
            username: String::new(),
            password: "lonely".into(),
            from: "nobody".into(),
            to: vec!["ok@example.com".into(), "ok2@example.com".into(), "broken@".into()],
            ca_certificate_pem: "not a pem".into(),
        };
        assert_eq!(
            check(&bad, None).1,
            [
                "email.host",
                "email.tls",
                "email.port",
                "email.username",
                "email.from",
                "email.to[2]",
                "email.ca_certificate_pem"
            ]
        );
        let no_password = EmailChannel {
            password: String::new(),
            ..written()
        };
        assert_eq!(check(&no_password, None).1, ["email.password"]);
        let nobody = EmailChannel {
            to: vec![],
            from: String::new(),
            ..written()
        };
        assert_eq!(check(&nobody, None).1, ["email.from", "email.to"]);
        let blocked = EmailChannel {
            host: "10.1.2.3".into(),
            ..written()
        };
        assert_eq!(check(&blocked, None).1, ["email.host"]);
        // A line break cannot smuggle a header in.
        let injected = EmailChannel {
            to: vec!["ops@example.com\r\nBcc: x@evil.example".into()],
            ..written()
        };
        assert_eq!(check(&injected, None).1, ["email.to[0]"]);
    }

    #[test]
    fn the_password_is_redacted_and_kept_on_the_same_host_and_port_only() {
        let (stored, _) = check(&written(), None);
        let shown = redact(&stored);
        assert_eq!(shown.password, REDACTED);
        assert_eq!(shown.port, 587);
        assert!(!format!("{shown:?}{stored:?}").contains("smtp-s3cret"));

        // Back as answered, port 587 spelled out or left 0: kept.
        for port in [587, 0] {
            let back = EmailChannel { port, ..shown.clone() };
            let (kept, violations) = check(&back, Some(&stored));
            assert!(violations.is_empty(), "{violations:?}");
            assert_eq!(kept.password, "smtp-s3cret");
        }
        for moved in [
            EmailChannel {
                host: "smtp.attacker.example".into(),
                ..shown.clone()
            },
            EmailChannel {
                port: 2525,
                ..shown.clone()
            },
        ] {
            assert_eq!(check(&moved, Some(&stored)).1, ["email.password"]);
        }
        assert_eq!(check(&shown, None).1, ["email.password"]);
        let no_login = EmailChannel {
            username: String::new(),
            password: String::new(),
            ..written()
        };
        assert_eq!(redact(&check(&no_login, None).0).password, "");
    }
}
