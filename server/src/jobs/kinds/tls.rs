//! The TLS check: where to connect, the name to present and match, how to
//! upgrade, and what the certificate must satisfy.

use monitor_proto::v1::{TlsCheck, TlsStartTls};

use super::super::validate::{spec_unless_violated, validate_host, validate_port};
use crate::error::FieldViolation;

/// Longest `min_days_remaining` taken: ten years (no certificate lives
/// longer in practice; a larger bound is a typo).
pub const MAX_MIN_DAYS_REMAINING: u32 = 3650;

pub(in crate::jobs) fn validate(tls: &TlsCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    validate_host("tls.host", &tls.host, v);
    validate_port("tls.port", tls.port, v);
    if !tls.server_name.is_empty() {
        validate_host("tls.server_name", &tls.server_name, v);
    }
    if TlsStartTls::try_from(tls.starttls).is_err() {
        v.push(FieldViolation::new(
            "tls.starttls",
            format!(
                "unknown upgrade {}; use TLS_START_TLS_NONE or TLS_START_TLS_SMTP",
                tls.starttls
            ),
        ));
    }
    if let Some(assertions) = &tls.assertions
        && assertions.min_days_remaining > MAX_MIN_DAYS_REMAINING
    {
        v.push(FieldViolation::new(
            "tls.assertions.min_days_remaining",
            format!(
                "must be at most {MAX_MIN_DAYS_REMAINING} days (got {})",
                assertions.min_days_remaining
            ),
        ));
    }
    spec_unless_violated(tls, before, v)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{TlsAssertions, job::Check};

    use super::super::{pairs, violations_of};
    use super::*;

    fn valid() -> TlsCheck {
        TlsCheck {
            host: "mail.example".into(),
            port: 587,
            server_name: "smtp.example".into(),
            starttls: TlsStartTls::Smtp as i32,
            assertions: Some(TlsAssertions {
                allow_untrusted_chain: true,
                allow_hostname_mismatch: false,
                min_days_remaining: MAX_MIN_DAYS_REMAINING,
            }),
        }
    }

    fn violations(change: impl FnOnce(&mut TlsCheck)) -> Vec<crate::error::FieldViolation> {
        let mut tls = valid();
        change(&mut tls);
        violations_of(Check::Tls(tls))
    }

    #[test]
    fn valid_specs_are_accepted() {
        assert_eq!(violations(|_| {}), []);
        assert_eq!(
            violations(|t| {
                t.host = "[2001:db8::1]".into();
                t.server_name.clear();
                t.starttls = TlsStartTls::Unspecified as i32;
                t.assertions = None;
            }),
            []
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let found = violations(|t| {
            t.host.clear();
            t.port = 0;
            t.server_name = "bad name".into();
            t.starttls = 7;
            t.assertions.as_mut().unwrap().min_days_remaining = 3651;
        });
        assert_eq!(
            pairs(&found),
            [
                ("tls.host", "is required"),
                ("tls.port", "must be 1 to 65535"),
                ("tls.server_name", "\"bad name\" is not a host name or IP address"),
                (
                    "tls.starttls",
                    "unknown upgrade 7; use TLS_START_TLS_NONE or TLS_START_TLS_SMTP"
                ),
                (
                    "tls.assertions.min_days_remaining",
                    "must be at most 3650 days (got 3651)"
                ),
            ]
        );
    }
}
