//! Validation of the check kinds beyond HTTP and TCP, one file per kind,
//! each called from `validate::validate_check` with the job's violations
//! to add to (field paths relative to the job: `dns.name`), on the shared
//! rules of [`super::validate`] (hosts, ports, URLs, headers, assertion
//! texts and regexes).

pub(super) mod dns;
pub(super) mod grpc_health;
pub(super) mod icmp;
pub(super) mod socks5;
pub(super) mod ssh;
pub(super) mod tls;
pub(super) mod websocket;

/// The violations of a valid job whose check is `check` (empty when the
/// job is accepted), for the kinds' tests.
#[cfg(test)]
fn violations_of(check: monitor_proto::v1::job::Check) -> Vec<crate::error::FieldViolation> {
    let job = monitor_proto::v1::Job {
        name: "kind".into(),
        interval: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
        timeout: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
        check: Some(check),
        ..Default::default()
    };
    match super::validate::validate_job(&job) {
        Ok(_) => Vec::new(),
        Err(crate::error::ApiError::InvalidArgument(violations)) => violations,
        Err(other) => panic!("not a validation error: {other:?}"),
    }
}

/// `(field, description)` pairs, for comparing violations.
#[cfg(test)]
fn pairs(violations: &[crate::error::FieldViolation]) -> Vec<(&str, &str)> {
    violations
        .iter()
        .map(|violation| (violation.field.as_str(), violation.description.as_str()))
        .collect()
}
