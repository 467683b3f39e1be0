//! Validation of the check kinds beyond HTTP and TCP, one file per kind,
//! each called from `validate::validate_check` with the job's violations
//! to add to (field paths relative to the job: `dns.name`).

pub(super) mod dns;
pub(super) mod icmp;
