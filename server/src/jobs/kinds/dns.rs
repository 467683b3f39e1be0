//! What a DNS check must be: a domain name to ask, a known record type and
//! transport, a server written as "ip" or "ip:port", and assertions the
//! worker can evaluate (a known rcode name, bounded answer lists, a regex
//! that compiles).

use monitor_core::dns::{RCODE_RULE, is_rcode_name, parse_server};
use monitor_proto::v1::{DnsCheck, DnsRecordType, DnsTransport};

use super::super::validate::{MAX_ASSERTION_TEXT_CHARS, spec_unless_violated, validate_regex};
use crate::error::FieldViolation;

/// The longest domain name, without its trailing dot (RFC 1035 2.3.4).
pub const MAX_DOMAIN_NAME_CHARS: usize = 253;
/// The longest label of a domain name.
pub const MAX_LABEL_CHARS: usize = 63;
/// Entries of `answers_contain` or `answers_equal`.
pub const MAX_ANSWERS: usize = 32;

pub(in crate::jobs) fn validate(dns: &DnsCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    if let Err(reason) = domain_name(&dns.name) {
        v.push(FieldViolation::new("dns.name", reason));
    }
    if DnsRecordType::try_from(dns.record_type).is_err() {
        v.push(FieldViolation::new(
            "dns.record_type",
            format!(
                "unknown record type {}; use DNS_RECORD_TYPE_A, AAAA, CNAME, MX, TXT, NS or SOA",
                dns.record_type
            ),
        ));
    }
    if !dns.server.is_empty()
        && let Err(error) = parse_server(&dns.server)
    {
        v.push(FieldViolation::new("dns.server", error.to_string()));
    }
    if DnsTransport::try_from(dns.transport).is_err() {
        v.push(FieldViolation::new(
            "dns.transport",
            format!(
                "unknown transport {}; use DNS_TRANSPORT_UDP or DNS_TRANSPORT_TCP",
                dns.transport
            ),
        ));
    }
    if let Some(assertions) = &dns.assertions {
        if !assertions.rcode.is_empty() && !is_rcode_name(&assertions.rcode) {
            v.push(FieldViolation::new(
                "dns.assertions.rcode",
                format!("{:?} is not {RCODE_RULE}", assertions.rcode),
            ));
        }
        answer_list("dns.assertions.answers_contain", &assertions.answers_contain, v);
        answer_list("dns.assertions.answers_equal", &assertions.answers_equal, v);
        validate_regex("dns.assertions.answer_regex", &assertions.answer_regex, v);
    }
    spec_unless_violated(dns, before, v)
}

/// `name` as a query name: printable labels of 1 to 63 characters, at most
/// 253 characters in all, a trailing dot allowed ("." alone is the root).
fn domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is required".to_owned());
    }
    if name == "." {
        return Ok(());
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    let chars = bare.chars().count();
    if chars > MAX_DOMAIN_NAME_CHARS {
        return Err(format!(
            "must be at most {MAX_DOMAIN_NAME_CHARS} characters (got {chars})"
        ));
    }
    if bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{name:?} is not a domain name: it contains spaces or control characters"
        ));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} is not a domain name: it has an empty label"));
        }
        if label.len() > MAX_LABEL_CHARS {
            return Err(format!(
                "{name:?} is not a domain name: a label is longer than {MAX_LABEL_CHARS} characters"
            ));
        }
    }
    Ok(())
}

/// At most [`MAX_ANSWERS`] entries, each 1 to [`MAX_ASSERTION_TEXT_CHARS`]
/// characters.
fn answer_list(field: &str, answers: &[String], v: &mut Vec<FieldViolation>) {
    if answers.len() > MAX_ANSWERS {
        v.push(FieldViolation::new(
            field,
            format!("at most {MAX_ANSWERS} answers (got {})", answers.len()),
        ));
    }
    for (i, answer) in answers.iter().enumerate() {
        if answer.trim().is_empty() {
            v.push(FieldViolation::new(format!("{field}[{i}]"), "must not be empty"));
        } else if answer.chars().count() > MAX_ASSERTION_TEXT_CHARS {
            v.push(FieldViolation::new(
                format!("{field}[{i}]"),
                format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use monitor_proto::v1::{DnsAssertions, Job, JobState, job::Check};

    use super::*;
    use crate::error::ApiError;
    use crate::jobs::validate::validate_job;

    fn valid() -> DnsCheck {
        DnsCheck {
            name: "www.example.com".into(),
            record_type: DnsRecordType::Aaaa as i32,
            server: "[2001:db8::53]:5353".into(),
            transport: DnsTransport::Tcp as i32,
            assertions: Some(DnsAssertions {
                rcode: "nxdomain".into(),
                answers_contain: vec!["2001:db8::1".into()],
                answers_equal: vec!["2001:db8::1".into(), "2001:db8::2".into()],
                answer_regex: "^2001:db8::".into(),
            }),
        }
    }

    fn violations(change: impl FnOnce(&mut DnsCheck)) -> Vec<FieldViolation> {
        let mut dns = valid();
        change(&mut dns);
        let mut v = Vec::new();
        let spec = validate(&dns, &mut v);
        assert_eq!(spec.is_none(), !v.is_empty());
        v
    }

    fn one(field: &str, description: &str) -> Vec<FieldViolation> {
        vec![FieldViolation::new(field, description)]
    }

    fn assertions(change: impl FnOnce(&mut DnsAssertions)) -> Vec<FieldViolation> {
        violations(|dns| change(dns.assertions.as_mut().unwrap()))
    }

    #[test]
    fn valid_checks_are_stored_as_their_proto_json() {
        let mut v = Vec::new();
        let spec = validate(&valid(), &mut v).unwrap();
        assert!(v.is_empty());
        assert_eq!(spec["name"], "www.example.com");
        assert_eq!(spec["recordType"], "DNS_RECORD_TYPE_AAAA");

        // Only a name: the system resolver, A over UDP, NOERROR expected.
        let minimal = DnsCheck {
            name: "example.com.".into(),
            ..DnsCheck::default()
        };
        assert!(validate(&minimal, &mut v).is_some() && v.is_empty());
        for name in [
            ".",
            "_dmarc.example.com",
            "xn--bcher-kva.example",
            &format!("{}.example", "a".repeat(63)),
        ] {
            assert_eq!(domain_name(name), Ok(()), "{name}");
        }
        for server in ["192.0.2.53", "192.0.2.53:53", "2001:db8::53", "[::1]:5353"] {
            assert!(violations(|dns| dns.server = server.into()).is_empty(), "{server}");
        }
    }

    #[test]
    fn a_dns_job_goes_through_validate_job() {
        let job = Job {
            name: "resolver".into(),
            labels: HashMap::new(),
            interval: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
            timeout: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
            desired_state: JobState::Running as i32,
            check: Some(Check::Dns(valid())),
            ..Job::default()
        };
        let stored = validate_job(&job).unwrap();
        assert_eq!(stored.fields.check_kind, "dns");
        let mut bad = job;
        bad.check = Some(Check::Dns(DnsCheck::default()));
        assert_eq!(
            validate_job(&bad),
            Err(ApiError::InvalidArgument(one("dns.name", "is required")))
        );
    }

    #[test]
    fn the_name_must_be_a_domain_name() {
        let name = |name: String| violations(|dns| dns.name = name);
        assert_eq!(name(String::new()), one("dns.name", "is required"));
        let long = format!("{}.example", "a.".repeat(125));
        assert_eq!(
            name(long.clone()),
            one(
                "dns.name",
                &format!("must be at most 253 characters (got {})", long.len())
            )
        );
        assert_eq!(
            name("www..example.com".into()),
            one(
                "dns.name",
                "\"www..example.com\" is not a domain name: it has an empty label"
            )
        );
        assert_eq!(
            name(format!("{}.com", "a".repeat(64))),
            one(
                "dns.name",
                &format!(
                    "\"{}.com\" is not a domain name: a label is longer than 63 characters",
                    "a".repeat(64)
                )
            )
        );
        assert_eq!(
            name("www example.com".into()),
            one(
                "dns.name",
                "\"www example.com\" is not a domain name: it contains spaces or control characters"
            )
        );
    }

    #[test]
    fn record_type_transport_and_server_must_be_known() {
        assert_eq!(
            violations(|dns| dns.record_type = 99),
            one(
                "dns.record_type",
                "unknown record type 99; use DNS_RECORD_TYPE_A, AAAA, CNAME, MX, TXT, NS or SOA"
            )
        );
        assert_eq!(
            violations(|dns| dns.transport = 3),
            one(
                "dns.transport",
                "unknown transport 3; use DNS_TRANSPORT_UDP or DNS_TRANSPORT_TCP"
            )
        );
        assert_eq!(
            violations(|dns| dns.server = "dns.example".into()),
            one(
                "dns.server",
                "\"dns.example\" is not an IP address or ip:port (IPv6 with a port as \"[::1]:53\")"
            )
        );
        for server in ["192.0.2.53:0", "192.0.2.53:65536"] {
            assert_eq!(
                violations(|dns| dns.server = server.into()),
                one("dns.server", "port must be 1 to 65535"),
                "{server}"
            );
        }
    }

    #[test]
    fn assertions_must_be_evaluable() {
        assert_eq!(
            assertions(|a| a.rcode = "NOPE".into()),
            one(
                "dns.assertions.rcode",
                "\"NOPE\" is not a response code name such as NOERROR, NXDOMAIN, SERVFAIL or REFUSED (or RCODE<n>)"
            )
        );
        assert_eq!(
            assertions(|a| a.answers_contain = vec!["192.0.2.1".into(); 33]),
            one("dns.assertions.answers_contain", "at most 32 answers (got 33)")
        );
        assert_eq!(
            assertions(|a| a.answers_equal = vec!["192.0.2.1".into(), " ".into()]),
            one("dns.assertions.answers_equal[1]", "must not be empty")
        );
        assert_eq!(
            assertions(|a| a.answers_equal = vec!["x".repeat(1025)]),
            one("dns.assertions.answers_equal[0]", "must be at most 1024 characters")
        );
        assert_eq!(
            assertions(|a| a.answer_regex = "(unclosed".into()),
            one(
                "dns.assertions.answer_regex",
                "is not a valid regular expression: error: unclosed group"
            )
        );
        assert_eq!(
            assertions(|a| a.answer_regex = "r".repeat(1025)),
            one("dns.assertions.answer_regex", "must be at most 1024 characters")
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let found = violations(|dns| {
            dns.name = String::new();
            dns.record_type = 99;
            dns.server = "nowhere".into();
            dns.transport = 9;
            dns.assertions = Some(DnsAssertions {
                rcode: "x".into(),
                ..DnsAssertions::default()
            });
        });
        let fields: Vec<_> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "dns.name",
                "dns.record_type",
                "dns.server",
                "dns.transport",
                "dns.assertions.rcode"
            ]
        );
    }
}
