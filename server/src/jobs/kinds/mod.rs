//! Validation of the check kinds beyond HTTP and TCP, one file per kind,
//! on the shared rules of [`super::validate`] (hosts, ports, URLs,
//! headers, assertion texts and regexes).

pub(super) mod grpc_health;
pub(super) mod websocket;
