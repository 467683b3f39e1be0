//! Rules of a gRPC health check: a host and port, a bounded service name,
//! metadata like HTTP headers but as gRPC has them (lower-case-able ASCII
//! names that gRPC and HTTP/2 do not reserve, printable ASCII values), and
//! certificate checks skipped only over TLS.

use monitor_proto::v1::GrpcHealthCheck;

use super::super::validate::{HeaderNaming, spec_unless_violated, validate_headers, validate_host, validate_port};
use crate::error::FieldViolation;

/// Longest service name (gRPC names are `package.Service`).
pub const MAX_SERVICE_CHARS: usize = 256;

/// Names gRPC or HTTP/2 set or forbid: the call's own headers, and the
/// connection-specific headers HTTP/2 refuses.
const RESERVED_METADATA: &[&str] = &[
    "content-type",
    "te",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

pub(in crate::jobs) fn validate(grpc: &GrpcHealthCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    validate_host("grpc_health.host", &grpc.host, v);
    validate_port("grpc_health.port", grpc.port, v);
    let service_chars = grpc.service.chars().count();
    if service_chars > MAX_SERVICE_CHARS {
        v.push(FieldViolation::new(
            "grpc_health.service",
            format!("must be at most {MAX_SERVICE_CHARS} characters (got {service_chars})"),
        ));
    } else if grpc.service.chars().any(char::is_control) {
        v.push(FieldViolation::new(
            "grpc_health.service",
            "must not contain control characters",
        ));
    }
    validate_headers(
        &HeaderNaming::GRPC_METADATA.at("grpc_health"),
        &grpc.metadata,
        &grpc.secret_metadata,
        v,
    );
    for (i, entry) in grpc.metadata.iter().enumerate() {
        if let Some(problem) = metadata_name_problem(&entry.name) {
            v.push(FieldViolation::new(format!("grpc_health.metadata[{i}].name"), problem));
        }
        // HTTP headers may carry tabs; gRPC's ASCII values may not.
        if entry.value.contains('\t') {
            v.push(FieldViolation::new(
                format!("grpc_health.metadata[{i}].value"),
                "must be printable ASCII (no tabs or line breaks)",
            ));
        }
    }
    if grpc.insecure_skip_tls_verify && !grpc.tls {
        v.push(FieldViolation::new(
            "grpc_health.insecure_skip_tls_verify",
            "applies only with tls (a plaintext call has no certificate to check)",
        ));
    }
    spec_unless_violated(grpc, before, v)
}

/// Why a (syntactically valid) metadata name cannot be sent, if it cannot.
fn metadata_name_problem(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("grpc-") {
        Some(format!("{name:?} is reserved: grpc- names belong to gRPC itself"))
    } else if lower.ends_with("-bin") {
        Some(format!(
            "{name:?} is binary metadata (-bin), which is not supported: use a text name"
        ))
    } else if RESERVED_METADATA.contains(&lower.as_str()) {
        Some(format!("{name:?} is set by gRPC and HTTP/2 themselves"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{HttpHeader, Job, JobState, job::Check};

    use super::*;
    use crate::error::ApiError;
    use crate::jobs::validate::{MAX_HEADER_VALUE_BYTES, MAX_HEADERS, validate_job};

    fn valid_check() -> GrpcHealthCheck {
        GrpcHealthCheck {
            host: "grpc.shop.example".into(),
            port: 443,
            service: "shop.v1.Cart".into(),
            tls: true,
            metadata: vec![entry("authorization", "Bearer t0ken"), entry("X-Tenant", "shop")],
            secret_metadata: vec!["x-session".into()],
            ..GrpcHealthCheck::default()
        }
    }

    fn entry(name: &str, value: &str) -> HttpHeader {
        HttpHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    fn job(check: GrpcHealthCheck) -> Job {
        Job {
            name: "cart".into(),
            interval: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
            timeout: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
            desired_state: JobState::Running as i32,
            check: Some(Check::GrpcHealth(check)),
            ..Job::default()
        }
    }

    /// The violations of the valid check after `change`.
    fn violations(change: impl FnOnce(&mut GrpcHealthCheck)) -> Vec<(String, String)> {
        let mut check = valid_check();
        change(&mut check);
        match validate_job(&job(check)) {
            Ok(_) => Vec::new(),
            Err(ApiError::InvalidArgument(v)) => v.into_iter().map(|v| (v.field, v.description)).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn one(field: &str, description: &str) -> Vec<(String, String)> {
        vec![(field.to_owned(), description.to_owned())]
    }

    #[test]
    fn valid_checks_are_stored_as_their_proto_json() {
        let valid = validate_job(&job(valid_check())).unwrap();
        assert_eq!(valid.fields.check_kind, "grpc_health");
        assert_eq!(valid.fields.check_spec["service"], "shop.v1.Cart");
        assert_eq!(valid.fields.check_spec["metadata"][1]["name"], "X-Tenant");
        // The server as a whole, plaintext, no metadata.
        let plain = GrpcHealthCheck {
            host: "10.0.0.5".into(),
            port: 50051,
            ..GrpcHealthCheck::default()
        };
        assert!(validate_job(&job(plain)).is_ok());
        let bracketed = GrpcHealthCheck {
            host: "[::1]".into(),
            port: 50051,
            service: "s".repeat(MAX_SERVICE_CHARS),
            tls: true,
            insecure_skip_tls_verify: true,
            ..GrpcHealthCheck::default()
        };
        assert!(validate_job(&job(bracketed)).is_ok());
    }

    #[test]
    fn host_port_and_service_are_checked() {
        assert_eq!(violations(|c| c.host.clear()), one("grpc_health.host", "is required"));
        assert_eq!(
            violations(|c| c.host = "bad host".into()),
            one("grpc_health.host", "\"bad host\" is not a host name or IP address")
        );
        assert_eq!(
            violations(|c| c.port = 0),
            one("grpc_health.port", "must be 1 to 65535")
        );
        assert_eq!(
            violations(|c| c.service = "s".repeat(257)),
            one("grpc_health.service", "must be at most 256 characters (got 257)")
        );
        assert_eq!(
            violations(|c| c.service = "shop\n".into()),
            one("grpc_health.service", "must not contain control characters")
        );
    }

    #[test]
    fn metadata_follows_the_header_rules_and_grpcs_own() {
        assert_eq!(
            violations(|c| c.metadata = vec![entry("x-a", "1"); MAX_HEADERS + 1]),
            one("grpc_health.metadata", "at most 32 entries (got 33)")
        );
        assert_eq!(
            violations(|c| c.metadata = vec![entry("bad name", "1")]),
            one(
                "grpc_health.metadata[0].name",
                "\"bad name\" is not a valid metadata name"
            )
        );
        assert_eq!(
            violations(|c| c.metadata = vec![entry("x-a", &"v".repeat(MAX_HEADER_VALUE_BYTES + 1))]),
            one("grpc_health.metadata[0].value", "must be at most 4096 bytes")
        );
        assert_eq!(
            violations(|c| c.metadata = vec![entry("x-a", "1\r\nx-b: 2")]),
            one(
                "grpc_health.metadata[0].value",
                "must be visible ASCII, spaces or tabs (no line breaks)"
            )
        );
        assert_eq!(
            violations(|c| c.metadata = vec![entry("x-a", "a\tb")]),
            one(
                "grpc_health.metadata[0].value",
                "must be printable ASCII (no tabs or line breaks)"
            )
        );
        for (name, problem) in [
            (
                "grpc-timeout",
                "\"grpc-timeout\" is reserved: grpc- names belong to gRPC itself",
            ),
            (
                "Grpc-Status",
                "\"Grpc-Status\" is reserved: grpc- names belong to gRPC itself",
            ),
            (
                "x-trace-bin",
                "\"x-trace-bin\" is binary metadata (-bin), which is not supported: use a text name",
            ),
            ("Content-Type", "\"Content-Type\" is set by gRPC and HTTP/2 themselves"),
            ("te", "\"te\" is set by gRPC and HTTP/2 themselves"),
            ("connection", "\"connection\" is set by gRPC and HTTP/2 themselves"),
        ] {
            assert_eq!(
                violations(|c| c.metadata = vec![entry(name, "v")]),
                one("grpc_health.metadata[0].name", problem),
                "{name}"
            );
        }
        assert_eq!(
            violations(|c| c.secret_metadata = vec!["x-token".into(), "x token".into()]),
            one(
                "grpc_health.secret_metadata[1]",
                "\"x token\" is not a valid metadata name"
            )
        );
        assert_eq!(
            violations(|c| c.secret_metadata = vec!["x-token".into(); 33]),
            one("grpc_health.secret_metadata", "at most 32 names (got 33)")
        );
        let total = 5 * (3 + 4000) + "x-session".len();
        assert_eq!(
            violations(|c| c.metadata = vec![entry("x-a", &"v".repeat(4000)); 5]),
            one(
                "grpc_health.metadata",
                &format!("names and values (with secret_metadata) must total at most 16384 bytes (got {total})")
            )
        );
    }

    #[test]
    fn skipping_certificate_checks_needs_tls() {
        assert_eq!(
            violations(|c| {
                c.tls = false;
                c.insecure_skip_tls_verify = true;
            }),
            one(
                "grpc_health.insecure_skip_tls_verify",
                "applies only with tls (a plaintext call has no certificate to check)"
            )
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let found = violations(|c| {
            c.host.clear();
            c.port = 70_000;
            c.metadata = vec![entry("grpc-x", "v")];
        });
        let fields: Vec<_> = found.iter().map(|(field, _)| field.as_str()).collect();
        assert_eq!(
            fields,
            ["grpc_health.host", "grpc_health.port", "grpc_health.metadata[0].name"]
        );
    }
}
