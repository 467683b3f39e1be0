//! X.509 certificates as checks report them ([`CertificateInfo`]), and
//! the expiry assertion HTTPS and TLS checks share.

use monitor_proto::v1::{AssertionResult, CertificateInfo};
use monitor_proto::wkt::Timestamp;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

const SECONDS_PER_DAY: i64 = 86_400;

/// What a certificate says about itself; a certificate that does not parse
/// still gets its fingerprint (and a subject saying why).
pub(super) fn describe(der: &[u8]) -> CertificateInfo {
    let sha256_fingerprint = hex(&Sha256::digest(der));
    let certificate = match X509Certificate::from_der(der) {
        Ok((_, certificate)) => certificate,
        Err(error) => {
            return CertificateInfo {
                subject: format!("(unreadable certificate: {error})"),
                sha256_fingerprint,
                ..CertificateInfo::default()
            };
        }
    };
    let mut subject_alt_names = Vec::new();
    if let Ok(Some(names)) = certificate.subject_alternative_name() {
        for name in &names.value.general_names {
            match name {
                GeneralName::DNSName(dns) => subject_alt_names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(address) = ip_address(bytes) {
                        subject_alt_names.push(address.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let validity = certificate.validity();
    CertificateInfo {
        subject: certificate.subject().to_string(),
        issuer: certificate.issuer().to_string(),
        subject_alt_names,
        not_before: Some(Timestamp {
            seconds: validity.not_before.timestamp(),
            nanos: 0,
        }),
        not_after: Some(Timestamp {
            seconds: validity.not_after.timestamp(),
            nanos: 0,
        }),
        serial: certificate.raw_serial_as_string(),
        sha256_fingerprint,
    }
}

fn ip_address(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Whole days from `now` until `not_after` (rounded down; negative once
/// expired).
pub(super) fn days_remaining(not_after_unix: i64, now_unix: i64) -> i64 {
    (not_after_unix - now_unix).div_euclid(SECONDS_PER_DAY)
}

/// "cert_days_remaining": the leaf must stay valid for more than
/// `min_days` days (an expired certificate always fails).
pub(super) fn days_assertion(min_days: u32, leaf: &CertificateInfo, now_unix: i64) -> AssertionResult {
    let not_after = leaf.not_after.map_or(0, |at| at.seconds);
    let days = days_remaining(not_after, now_unix);
    let date = chrono::DateTime::from_timestamp(not_after, 0)
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let passed = not_after > now_unix && days >= i64::from(min_days);
    let detail = if not_after <= now_unix {
        format!("certificate expired on {date}, expected more than {min_days} days left")
    } else {
        let verb = if passed { "" } else { "only " };
        format!("certificate expires in {verb}{days} days ({date}), expected at least {min_days}")
    };
    AssertionResult {
        name: "cert_days_remaining".to_owned(),
        passed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(days_valid: i64) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(vec!["shop.example".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days_valid);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "shop.example");
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_certificate_is_described() {
        let info = describe(&certificate(30));
        assert_eq!(info.subject, "CN=shop.example");
        assert_eq!(info.issuer, "CN=shop.example");
        assert_eq!(info.subject_alt_names, ["shop.example", "127.0.0.1"]);
        assert_eq!(info.sha256_fingerprint.len(), 64);
        assert!(!info.serial.is_empty());
        assert!(info.not_after.unwrap().seconds > info.not_before.unwrap().seconds);
    }

    #[test]
    fn garbage_is_described_not_refused() {
        let info = describe(b"not a certificate");
        assert!(info.subject.starts_with("(unreadable certificate"), "{}", info.subject);
        assert_eq!(info.sha256_fingerprint.len(), 64);
    }

    #[test]
    fn days_round_down_and_expired_is_negative() {
        assert_eq!(days_remaining(10 * SECONDS_PER_DAY - 1, 0), 9);
        assert_eq!(days_remaining(10 * SECONDS_PER_DAY, 0), 10);
        assert_eq!(days_remaining(-1, 0), -1);
    }

    #[test]
    fn the_expiry_assertion_names_days_and_date() {
        let leaf = CertificateInfo {
            not_after: Some(Timestamp {
                seconds: 1_767_225_600,
                nanos: 0,
            }),
            ..CertificateInfo::default()
        };
        let now = 1_767_225_600 - 9 * SECONDS_PER_DAY - 60;
        let result = days_assertion(14, &leaf, now);
        assert!(!result.passed);
        assert_eq!(
            result.detail,
            "certificate expires in only 9 days (2026-01-01), expected at least 14"
        );
        assert!(days_assertion(9, &leaf, now).passed);
        let expired = days_assertion(0, &leaf, 1_767_225_600 + 1);
        assert!(!expired.passed);
        assert_eq!(
            expired.detail,
            "certificate expired on 2026-01-01, expected more than 0 days left"
        );
    }
}
