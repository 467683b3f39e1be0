//! Rules more than one monitor binary follows, so they are written once and
//! cannot drift apart (wire-format rules, such as `CheckResult`'s schema
//! version and protobuf `Duration` conversions, live in `monitor-proto`).
//!
//! - [`granularity`]: rollup widths (`1m`, `5m`, `1h`, `1d`): parsing, the
//!   widest allowed, and the UTC-aligned bucket a time falls in. The
//!   aggregator writes rollups with it, the server checks queries with it.
//! - [`labels`]: what a label key may be and how long a value, for job
//!   labels and locations (server) and worker labels (worker flag and the
//!   server's hello check).
//! - [`recurrence`]: weekly windows in a time zone (recurring maintenance
//!   silences), checked by the server and asked by the alert evaluator.
//! - [`blocklist`]: the networks never contacted on a user's say-so (cloud
//!   metadata, loopback, private networks), and the ones an operator opens:
//!   probe targets (worker) and notification channel URLs (server and the
//!   alert role's dispatcher) go through the same rule.
//! - [`dns`] and [`icmp`]: what the DNS and ICMP checks accept (response
//!   code names, server addresses, echo counts and intervals), refused
//!   by the server and applied by the worker.
//! - [`process`]: start-up and shutdown every binary does the same way:
//!   `.env`, `--log-format` and tracing, SIGINT/SIGTERM.

pub mod blocklist;
pub mod dns;
pub mod granularity;
pub mod icmp;
pub mod labels;
pub mod process;
pub mod recurrence;
