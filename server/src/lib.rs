//! The monitor control plane.
//!
//! - [`config`]: flags and environment.
//! - [`jobs`]: the job catalog (domain rules over the store), shared by every API
//!   surface: validation, list filters, job status and summaries, metrics queries.
//! - [`jobs_file`]: idempotent import of `jobs.json`.
//! - [`alerts`]: the alert catalog (rules, silences, incidents) behind
//!   AlertService and its REST routes.
//! - [`notify`]: notification channels (NotificationService): their
//!   validation, write-only secrets and test sends.
//! - [`admin`]: server info and database reset.
//! - [`grpc`]: thin tonic adapters over the domain.
//! - [`rest`]: the REST/JSON gateway, legacy routes and OpenAPI document, over the same domain.
//! - [`auth`]: bearer tokens and roles for every surface.
//! - [`fleet`]: the probe-worker registry (not the `monitor-worker` crate, the
//!   probe and aggregator binary): sessions, the database lease and epochs,
//!   placement and reconcile as plain functions of state and time, the
//!   assignment loop.
//! - [`health`]: `grpc.health.v1` driven by database reachability.
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`ui`]: the web dashboard at `/ui/`, embedded in the binary.
//! - [`error`]: the API error and its mapping to gRPC codes.
//! - [`server`]: wiring onto one listener; [`server::run`] takes a bound
//!   listener and a shutdown future, so tests run the real server on port 0.
//! - [`transport`]: the listener's connections (TLS, HTTP/1.1 and HTTP/2,
//!   keepalive pings, graceful shutdown); [`tls`]: the certificate and key.
//!
//! Rules the workers follow too live in `monitor-core` (granularities, label
//! keys and value lengths, `.env`, logging and signals, used by `main.rs`)
//! and `monitor-proto` (protobuf `Duration` and `Timestamp` conversions).

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod config;
pub mod error;
pub mod fleet;
pub mod grpc;
pub mod health;
pub mod jobs;
pub mod jobs_file;
pub mod metrics;
pub mod notify;
pub mod rest;
pub mod server;
pub mod tls;
pub mod transport;
pub mod ui;
