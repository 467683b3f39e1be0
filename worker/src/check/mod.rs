//! Running one check (of any kind) and classifying how it ended.
//!
//! The probe scheduler owns one [`CheckRunner`] and calls
//! [`CheckRunner::run`] for every check it is due; the runner never fails,
//! every way a target can misbehave becomes a [`CheckOutcome`] with a short
//! message for people. It refuses to contact blocklisted networks (cloud
//! metadata, link-local, loopback, private), unless the operator opened
//! them, whether the address is written in the URL, resolved from a host
//! name or reached by a redirect.
//!
//! Modules:
//! - [`blocklist`]: the networks the worker does not contact, and the
//!   exceptions (`monitor_core::blocklist`, shared with the notification
//!   dispatcher and the server's channel checks).
//! - `resolve`: DNS resolution that drops blocklisted addresses.
//! - `tls`: the rustls configurations (verifying and not) and certificate errors in words.
//! - `http`: the HTTP check: request, redirects, body, and failure classification.
//! - `phases`: where an HTTP check's time went (DNS, connect, TLS, first byte, transfer).
//! - `assertions`: what a healthy answer is, and the compiled-regex cache.
//! - `dns`: the DNS query check (hickory-proto messages over our own UDP/TCP).
//! - `icmp`: the ICMP ping check (surge-ping, unprivileged or raw sockets).
//! - `certificate`: X.509 certificates as results show them, and the
//!   `cert_days_remaining` assertion (TLS and HTTPS checks).
//! - `connect`: the TCP connect every kind over TCP shares.
//! - `tcp`: the TCP check: connect (directly or through SOCKS5), send, expect.
//! - `tls_check`: the TLS check: handshake, chain, name and expiry;
//!   `starttls` upgrades an SMTP session first.
//! - `ssh`: the SSH check: the server's identification line.
//! - `socks5`: the SOCKS5 client (for checks through a proxy) and check.
//! - `grpc_health`: the gRPC health check (`grpc.health.v1.Health/Check`).
//! - `websocket`: the WebSocket check: upgrade, send, expect a reply.

pub use monitor_core::blocklist;

mod assertions;
mod certificate;
mod connect;
mod dns;
mod grpc_health;
mod http;
mod icmp;
mod phases;
mod resolve;
mod socks5;
mod ssh;
mod starttls;
mod tcp;
mod tls;
mod tls_check;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use monitor_proto::v1::{AssertionResult, CheckOutcome, CheckResult, Job, check_result, job};
use tokio::time::Instant;

pub use blocklist::Blocklist;

/// A job without a timeout (or with one out of the contract's range) gets this.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The contract caps a job's timeout at 60 s; a larger value is clamped.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// How the worker runs checks; fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    /// Networks not contacted (cloud metadata endpoints, loopback, private
    /// ranges) and the exceptions the operator opened.
    pub blocklist: Blocklist,
    /// Sent as `User-Agent` unless the job sets its own.
    pub user_agent: String,
    /// Body bytes kept for body assertions; the rest is counted, not stored.
    pub max_body_bytes: usize,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            blocklist: Blocklist::default(),
            user_agent: concat!("monitor-worker/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Why a [`CheckRunner`] could not be built (the worker cannot start).
#[derive(Debug, thiserror::Error)]
pub enum CheckSetupError {
    #[error("cannot set up TLS certificate verification (are the system CA certificates installed?): {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// Runs checks. Cheap to clone and share between tasks: the HTTP clients
/// (with their connection pools), the blocklist and the regex cache are
/// built once and shared.
#[derive(Clone)]
pub struct CheckRunner {
    inner: Arc<Shared>,
}

/// What every check shares.
struct Shared {
    /// One client per (follow_redirects, insecure_skip_tls_verify).
    clients: http::Clients,
    /// Consulted for IP literals, resolved names and redirect targets.
    blocklist: Arc<Blocklist>,
    /// Compiled `body_regex` patterns, by pattern text.
    regexes: assertions::RegexCache,
    /// How TLS checks shake hands and judge chains.
    tls_inspector: tls_check::Inspector,
    /// See [`CheckConfig::max_body_bytes`].
    max_body_bytes: usize,
    /// The name server DNS checks without a server ask.
    dns_system: dns::SystemNameserver,
    /// The ICMP sockets every ping check shares, opened on first use.
    pingers: icmp::Pingers,
    /// See [`CheckConfig::user_agent`]; the HTTP clients have their own copy.
    user_agent: String,
    /// TLS of gRPC health checks (ALPN h2), by insecure_skip_tls_verify.
    grpc_tls: tls::ClientConfigs,
    /// TLS of wss checks (ALPN http/1.1), by insecure_skip_tls_verify.
    websocket_tls: tls::ClientConfigs,
}

impl CheckRunner {
    /// Builds the HTTP clients and TLS configurations; fails only when the
    /// system's TLS roots or the client cannot be set up.
    pub fn new(config: CheckConfig) -> Result<Self, CheckSetupError> {
        let blocklist = Arc::new(config.blocklist);
        let clients = http::Clients::new(&config.user_agent, &blocklist)?;
        Ok(Self {
            inner: Arc::new(Shared {
                clients,
                blocklist,
                regexes: assertions::RegexCache::default(),
                tls_inspector: tls_check::Inspector::new()?,
                max_body_bytes: config.max_body_bytes,
                dns_system: dns::SystemNameserver::new(dns::RESOLV_CONF),
                pingers: icmp::Pingers::default(),
                user_agent: config.user_agent,
                grpc_tls: tls::ClientConfigs::new(grpc_health::ALPN)?,
                websocket_tls: tls::ClientConfigs::new(websocket::ALPN)?,
            }),
        })
    }

    /// Runs the job's check once, bounded by the job's timeout (the whole
    /// check, body included). Never panics and never fails: every failure
    /// is an outcome. The caller fills the identifying fields
    /// (`schema_version`, `check_id`, `job_id`, `job_version`, `worker_id`,
    /// `epoch`, `location`, `scheduled_time`).
    pub async fn run(&self, job: &Job) -> CheckResult {
        let start_time = Utc::now();
        let started = Instant::now();
        let deadline = started + job_timeout(job.timeout.as_ref());
        // Each kind's future is boxed: inline, the largest kind's state
        // would make every check's task that size (9 KB, copied and zeroed
        // on each spawn; the probe's profile showed it).
        let mut result = match &job.check {
            Some(job::Check::Http(check)) => Box::pin(http::run(&self.inner, check, started, deadline)).await,
            Some(job::Check::Tcp(check)) => Box::pin(tcp::run(&self.inner, check, started, deadline)).await,
            Some(job::Check::Dns(check)) => Box::pin(dns::run(&self.inner, check, started, deadline)).await,
            Some(job::Check::Icmp(check)) => Box::pin(icmp::run(&self.inner, check, started, deadline)).await,
            Some(job::Check::Tls(check)) => {
                let inner = &self.inner;
                Box::pin(tls_check::run(
                    &inner.blocklist,
                    &inner.tls_inspector,
                    check,
                    started,
                    deadline,
                ))
                .await
            }
            Some(job::Check::Ssh(check)) => Box::pin(ssh::run(&self.inner, check, started, deadline)).await,
            Some(job::Check::Socks5(check)) => {
                Box::pin(socks5::run(&self.inner.blocklist, check, started, deadline)).await
            }
            Some(job::Check::GrpcHealth(check)) => {
                Box::pin(grpc_health::run(&self.inner, check, started, deadline)).await
            }
            Some(job::Check::Websocket(check)) => Box::pin(websocket::run(&self.inner, check, started, deadline)).await,
            None => Failure::new(CheckOutcome::Unspecified, "the job has no check").into_result(started.elapsed()),
        };
        result.start_time = Some(start_time.into());
        result
    }
}

/// The first assertion that failed, as the check's failure.
fn first_failed(results: &[AssertionResult]) -> Option<Failure> {
    results
        .iter()
        .find(|result| !result.passed)
        .map(|result| Failure::new(CheckOutcome::AssertionFailed, result.detail.clone()))
}

/// A check's result: OK unless `failure`, with the assertions evaluated
/// and the kind's detail.
fn finished(
    duration: Duration,
    failure: Option<Failure>,
    assertions: Vec<AssertionResult>,
    detail: check_result::Detail,
) -> CheckResult {
    let (outcome, error) = failure.map_or((CheckOutcome::Ok, String::new()), |failure| {
        (failure.outcome, failure.error)
    });
    CheckResult {
        duration: Some(duration.into()),
        outcome: outcome.into(),
        error,
        assertions,
        detail: Some(detail),
        ..CheckResult::default()
    }
}

/// The kind's name as the API spells it (the oneof field's name).
pub fn kind_name(check: &job::Check) -> &'static str {
    match check {
        job::Check::Http(_) => "http",
        job::Check::Tcp(_) => "tcp",
        job::Check::Dns(_) => "dns",
        job::Check::Icmp(_) => "icmp",
        job::Check::Tls(_) => "tls",
        job::Check::GrpcHealth(_) => "grpc_health",
        job::Check::Websocket(_) => "websocket",
        job::Check::Ssh(_) => "ssh",
        job::Check::Socks5(_) => "socks5",
    }
}

/// The job's timeout, or [`DEFAULT_TIMEOUT`] when unset or not positive,
/// clamped to [`MAX_TIMEOUT`].
fn job_timeout(timeout: Option<&pbjson_types::Duration>) -> Duration {
    timeout
        .and_then(|timeout| Duration::try_from(*timeout).ok())
        .filter(|timeout| !timeout.is_zero())
        .map_or(DEFAULT_TIMEOUT, |timeout| timeout.min(MAX_TIMEOUT))
}

/// A check that did not pass, with its message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    outcome: CheckOutcome,
    error: String,
}

impl Failure {
    fn new(outcome: CheckOutcome, error: impl Into<String>) -> Self {
        Self {
            outcome,
            error: error.into(),
        }
    }

    fn timeout(limit: Duration) -> Self {
        Self::new(
            CheckOutcome::Timeout,
            format!("timed out after {}", human_duration(limit)),
        )
    }

    /// A result with this outcome and error and nothing else.
    fn into_result(self, duration: Duration) -> CheckResult {
        CheckResult {
            duration: Some(duration.into()),
            outcome: self.outcome.into(),
            error: self.error,
            ..CheckResult::default()
        }
    }
}

/// `300ms`, `2s`, `1.5s`: short, for messages.
fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if duration.subsec_millis() == 0 {
        format!("{}s", millis / 1000)
    } else {
        let text = format!("{:.3}", duration.as_secs_f64());
        format!("{}s", text.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_millis(1234)), "1.234s");
        assert_eq!(human_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn timeouts_default_and_clamp() {
        let proto = |seconds, nanos| pbjson_types::Duration { seconds, nanos };
        assert_eq!(job_timeout(None), DEFAULT_TIMEOUT);
        assert_eq!(job_timeout(Some(&proto(0, 0))), DEFAULT_TIMEOUT);
        assert_eq!(job_timeout(Some(&proto(-1, 0))), DEFAULT_TIMEOUT);
        assert_eq!(job_timeout(Some(&proto(0, 300_000_000))), Duration::from_millis(300));
        assert_eq!(job_timeout(Some(&proto(3600, 0))), MAX_TIMEOUT);
    }

    #[test]
    fn the_runner_is_cheap_to_share_between_tasks() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<CheckRunner>();
    }

    #[tokio::test]
    async fn a_job_without_a_check_is_reported_not_run() {
        let runner = CheckRunner::new(CheckConfig::default()).unwrap();
        let result = runner.run(&Job::default()).await;
        assert_eq!(result.outcome(), CheckOutcome::Unspecified);
        assert_eq!(result.error, "the job has no check");
        assert!(result.start_time.is_some() && result.duration.is_some());
    }

    /// Every check is a task of its own: the run future is what each
    /// spawn allocates and copies, so it must not grow with the largest
    /// kind (it was 9 KB before the kinds were boxed).
    #[test]
    fn a_checks_future_stays_small_whatever_the_kinds() {
        let runner = CheckRunner::new(CheckConfig::default()).unwrap();
        let job = Job::default();
        let run = runner.run(&job);
        assert!(
            std::mem::size_of_val(&run) <= 256,
            "{} bytes",
            std::mem::size_of_val(&run)
        );
    }
}
