//! Thin tonic adapters over the domain: unwrap the request, call, convert the
//! result. No SQL and no rules live here.

pub mod admin_service;
pub mod alert_service;
pub mod job_service;
pub mod notification_service;
pub mod worker_service;
