//! Validation of the check kinds beyond HTTP and TCP, one file per kind,
//! each called from `validate::validate_check` with the job's violations
//! to add to (field paths relative to the job: `dns.name`), on the shared
//! rules of [`super::validate`] (hosts, ports, URLs, headers, assertion
//! texts and regexes).

pub(super) mod dns;
pub(super) mod grpc_health;
pub(super) mod icmp;
pub(super) mod websocket;
