//! X.509 certificates as checks report them ([`CertificateInfo`]), and the
//! `cert_days_remaining` assertion the TLS and HTTPS checks share.
//!
//! Names are RFC 4514 strings as `openssl x509 -nameopt RFC2253` prints
//! them (last RDN first, short attribute names where one is known, `#` and
//! the DER in hex otherwise), the serial is upper-case hex as openssl
//! prints it, the fingerprint lower-case hex of the DER's SHA-256.

use std::fmt::Write as _;
use std::net::IpAddr;

use chrono::DateTime;
use monitor_proto::v1::{AssertionResult, CertificateInfo};
use monitor_proto::wkt::Timestamp;
use sha2::{Digest as _, Sha256};
use x509_parser::asn1_rs::{Any, Tag, ToDer as _};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

const SECONDS_PER_DAY: i64 = 24 * 3600;

/// What a check shows of the certificate `der`. A certificate that does
/// not parse still gets its fingerprint (everything else stays empty).
pub(super) fn describe(der: &[u8]) -> CertificateInfo {
    let sha256_fingerprint = lower_hex(&Sha256::digest(der));
    let Ok((_, certificate)) = X509Certificate::from_der(der) else {
        return CertificateInfo {
            sha256_fingerprint,
            ..CertificateInfo::default()
        };
    };
    let validity = certificate.validity();
    CertificateInfo {
        subject: rfc4514(certificate.subject()),
        issuer: rfc4514(certificate.issuer()),
        subject_alt_names: subject_alt_names(&certificate),
        not_before: Some(timestamp(validity.not_before.timestamp())),
        not_after: Some(timestamp(validity.not_after.timestamp())),
        serial: serial(certificate.raw_serial()),
        sha256_fingerprint,
    }
}

/// Whole days from `now_unix_secs` to `not_after_unix_secs`, rounded down:
/// 0 in the last day, negative once expired.
pub(super) fn days_remaining(not_after_unix_secs: i64, now_unix_secs: i64) -> i64 {
    not_after_unix_secs
        .saturating_sub(now_unix_secs)
        .div_euclid(SECONDS_PER_DAY)
}

/// `cert_days_remaining`: passes when more than `min_days` days are left
/// until the leaf's not-after (with 0, when it has not expired).
pub(super) fn days_assertion(min_days: u32, leaf: &CertificateInfo, now_unix_secs: i64) -> AssertionResult {
    let (passed, detail) = match leaf.not_after {
        None => (false, "the certificate's expiry date could not be read".to_owned()),
        Some(not_after) => {
            let left = not_after.seconds.saturating_sub(now_unix_secs);
            let date = DateTime::from_timestamp(not_after.seconds, 0)
                .map_or_else(|| not_after.seconds.to_string(), |at| at.format("%Y-%m-%d").to_string());
            let passed = left > i64::from(min_days) * SECONDS_PER_DAY;
            let seen = if left <= 0 {
                format!("certificate expired on {date}")
            } else {
                let days = days_remaining(not_after.seconds, now_unix_secs);
                format!("certificate expires in {days} {} ({date})", plural(days, "day", "days"))
            };
            (passed, format!("{seen}, expected more than {min_days}"))
        }
    };
    AssertionResult {
        name: "cert_days_remaining".to_owned(),
        passed,
        detail,
    }
}

fn plural(count: i64, one: &'static str, many: &'static str) -> &'static str {
    if count == 1 { one } else { many }
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn lower_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The serial's magnitude in upper-case hex, without the sign byte DER
/// adds to positive numbers whose top bit is set (as `openssl x509 -serial`).
fn serial(raw: &[u8]) -> String {
    let digits = match raw.iter().position(|byte| *byte != 0) {
        Some(first) => &raw[first..],
        None => return "00".to_owned(),
    };
    digits
        .iter()
        .fold(String::with_capacity(digits.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02X}");
            text
        })
}

/// DNS names and IP addresses of the subject alternative name extension,
/// in certificate order.
fn subject_alt_names(certificate: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(extension)) = certificate.subject_alternative_name() else {
        return Vec::new();
    };
    extension
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            GeneralName::IPAddress(bytes) => ip_address(bytes).map(|address| address.to_string()),
            _ => None,
        })
        .collect()
}

fn ip_address(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// RFC 4514: the RDNs last to first, separated by ",", the attributes of a
/// multi-valued RDN by "+".
fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    rdns.iter()
        .rev()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `type=value`; a type without a short name is written as its dotted OID
/// with the value's DER in hex (RFC 4514 2.4).
fn attribute(attribute: &AttributeTypeAndValue<'_>) -> String {
    let oid = attribute.attr_type();
    let short = short_name(&oid.to_id_string());
    let registered = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry()).ok();
    match (short.or(registered), string_value(attribute.attr_value())) {
        (Some(name), Some(value)) => format!("{name}={}", escape(&value)),
        (Some(name), None) => format!("{name}={}", hex_value(attribute.attr_value())),
        (None, _) => format!("{}={}", oid.to_id_string(), hex_value(attribute.attr_value())),
    }
}

/// The names RFC 4514 and RFC 4519 give, plus `emailAddress` as openssl
/// writes it.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "givenName",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// The text of a string-typed value; `None` for other types.
fn string_value(value: &Any<'_>) -> Option<String> {
    let data = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::GeneralString
        | Tag::GraphicString => std::str::from_utf8(data).ok().map(str::to_owned),
        // Teletex is in practice Latin-1.
        Tag::T61String => Some(data.iter().map(|byte| char::from(*byte)).collect()),
        Tag::BmpString if data.len().is_multiple_of(2) => {
            let units = data.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        Tag::UniversalString if data.len().is_multiple_of(4) => data
            .chunks_exact(4)
            .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
            .collect(),
        _ => None,
    }
}

fn hex_value(value: &Any<'_>) -> String {
    match value.to_der_vec() {
        Ok(der) => format!("#{}", lower_hex(&der)),
        Err(_) => format!("#{}", lower_hex(value.data)),
    }
}

/// RFC 4514 2.4: `"+,;<>\` and NUL anywhere, `#` or a space first, a space
/// last are escaped with a backslash (NUL as `\00`).
fn escape(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut escaped = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                escaped.push('\\');
                escaped.push(c);
            }
            '\0' => escaped.push_str("\\00"),
            '#' if i == 0 => escaped.push_str("\\#"),
            ' ' if i == 0 || i == last => escaped.push_str("\\ "),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType, SerialNumber};
    use time::OffsetDateTime;

    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn certificate(params: CertificateParams) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn a_certificate_is_described_field_by_field() {
        let mut params = CertificateParams::new(vec!["shop.example".to_owned(), "*.shop.example".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("192.0.2.7".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::IpAddress("2001:db8::1".parse().unwrap()));
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("ops@shop.example".try_into().unwrap()));
        let mut name = DistinguishedName::new();
        name.push(DnType::CountryName, "DE");
        name.push(DnType::OrganizationName, "Shop, Inc.");
        name.push(DnType::CommonName, "shop.example");
        params.distinguished_name = name;
        params.not_before = at(NOW - 10 * SECONDS_PER_DAY);
        params.not_after = at(NOW + 90 * SECONDS_PER_DAY);
        params.serial_number = Some(SerialNumber::from_slice(&[0x00, 0x8f, 0x01, 0xab]));
        let der = certificate(params);

        let info = describe(&der);
        assert_eq!(info.subject, "CN=shop.example,O=Shop\\, Inc.,C=DE");
        // Self-signed: the issuer is the subject.
        assert_eq!(info.issuer, info.subject);
        assert_eq!(
            info.subject_alt_names,
            ["shop.example", "*.shop.example", "192.0.2.7", "2001:db8::1"]
        );
        assert_eq!(info.not_before, Some(timestamp(NOW - 10 * SECONDS_PER_DAY)));
        assert_eq!(info.not_after, Some(timestamp(NOW + 90 * SECONDS_PER_DAY)));
        assert_eq!(info.serial, "8F01AB");
        assert_eq!(info.sha256_fingerprint, lower_hex(&Sha256::digest(&der)));
        assert_eq!(info.sha256_fingerprint.len(), 64);
    }

    #[test]
    fn garbage_gets_only_a_fingerprint() {
        let info = describe(b"not a certificate");
        assert_eq!(info.subject, "");
        assert_eq!(info.not_after, None);
        assert_eq!(
            info.sha256_fingerprint,
            lower_hex(&Sha256::digest(b"not a certificate"))
        );
    }

    #[test]
    fn rfc4514_escapes_special_characters() {
        assert_eq!(escape("a,b+c;d<e>f\"g\\h"), "a\\,b\\+c\\;d\\<e\\>f\\\"g\\\\h");
        assert_eq!(escape("#lead"), "\\#lead");
        assert_eq!(escape("mid#dle"), "mid#dle");
        assert_eq!(escape(" both "), "\\ both\\ ");
        assert_eq!(escape("nul\0"), "nul\\00");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn serials_drop_the_sign_byte_only() {
        assert_eq!(serial(&[0x00, 0x80]), "80");
        assert_eq!(serial(&[0x0a, 0x00]), "0A00");
        assert_eq!(serial(&[0x00]), "00");
    }

    #[test]
    fn days_round_down_and_go_negative_once_expired() {
        assert_eq!(days_remaining(NOW + 10 * SECONDS_PER_DAY, NOW), 10);
        assert_eq!(days_remaining(NOW + 10 * SECONDS_PER_DAY - 1, NOW), 9);
        assert_eq!(days_remaining(NOW + 1, NOW), 0);
        assert_eq!(days_remaining(NOW, NOW), 0);
        assert_eq!(days_remaining(NOW - 1, NOW), -1);
        assert_eq!(days_remaining(NOW - SECONDS_PER_DAY - 1, NOW), -2);
        assert_eq!(days_remaining(i64::MIN, i64::MAX), i64::MIN.div_euclid(SECONDS_PER_DAY));
    }

    fn leaf_expiring_at(not_after: i64) -> CertificateInfo {
        CertificateInfo {
            not_after: Some(timestamp(not_after)),
            ..CertificateInfo::default()
        }
    }

    #[test]
    fn the_days_assertion_needs_more_than_the_minimum() {
        // NOW is 2026-09-21T14:13:20Z.
        let soon = leaf_expiring_at(NOW + 9 * SECONDS_PER_DAY + 60);
        let result = days_assertion(14, &soon, NOW);
        assert_eq!(result.name, "cert_days_remaining");
        assert!(!result.passed);
        assert_eq!(
            result.detail,
            "certificate expires in 9 days (2026-09-30), expected more than 14"
        );

        let later = leaf_expiring_at(NOW + 30 * SECONDS_PER_DAY);
        let result = days_assertion(14, &later, NOW);
        assert!(result.passed);
        assert_eq!(
            result.detail,
            "certificate expires in 30 days (2026-10-21), expected more than 14"
        );

        // Exactly the minimum left is not more than it.
        assert!(!days_assertion(14, &leaf_expiring_at(NOW + 14 * SECONDS_PER_DAY), NOW).passed);
        assert!(days_assertion(14, &leaf_expiring_at(NOW + 14 * SECONDS_PER_DAY + 1), NOW).passed);
        let one = days_assertion(0, &leaf_expiring_at(NOW + SECONDS_PER_DAY + 1), NOW);
        assert_eq!(
            one.detail,
            "certificate expires in 1 day (2026-09-22), expected more than 0"
        );
    }

    #[test]
    fn an_expired_certificate_always_fails_the_days_assertion() {
        let expired = leaf_expiring_at(NOW - 3 * SECONDS_PER_DAY);
        let result = days_assertion(0, &expired, NOW);
        assert!(!result.passed);
        assert_eq!(result.detail, "certificate expired on 2026-09-18, expected more than 0");
        assert!(!days_assertion(0, &leaf_expiring_at(NOW), NOW).passed);
        assert!(days_assertion(0, &leaf_expiring_at(NOW + 1), NOW).passed);
        let unknown = days_assertion(0, &CertificateInfo::default(), NOW);
        assert!(!unknown.passed);
        assert_eq!(unknown.detail, "the certificate's expiry date could not be read");
    }
}
