//! Integration tests of the control plane: the real server on port 0 over a
//! fresh PostgreSQL database per test, driven by tonic clients and grpcurl.

mod access;
mod admin;
mod alerts;
mod deliveries;
mod email_channels;
mod fuzz;
mod grpcurl;
mod harness;
mod health_reflection;
mod job_cache;
mod job_service;
mod jobs_file;
mod metrics;
mod notification_kinds;
mod notifications;
mod prometheus;
mod rest;
mod secrets;
mod summaries;
mod tls;
mod worker_access;
