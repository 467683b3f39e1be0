//! The one test kit: how the crates' integration tests and the benches
//! start the parts of the system and look at them (a dev-dependency only;
//! nothing here is shipped):
//!
//! - [`server`]: the control plane in-process on port 0 (or a given
//!   listener) over a fresh database, built with the options a test needs
//!   (API and worker tokens, TLS, registry timing, a given pool or
//!   database), with tonic clients; a throw-away TLS certificate.
//! - [`mock`]: the mock website in-process, plain or with an HTTPS listener;
//!   [`mock_dns`]: the mock's DNS responder.
//! - [`jobs`]: valid jobs for the API and for workers.
//! - [`kafka`]: the shared broker's address, topics, a producer and a
//!   reader; [`kafka::cluster`]: private Apache Kafka brokers a test may
//!   kill -9 and restart with their data, three-node KRaft clusters, and
//!   TLS/SASL listeners laid out as managed Kafka services hand them out.
//! - [`worker`]: `monitor-worker` processes with their log and telemetry
//!   (`/readyz`, `/metrics`), stopped by SIGTERM or kill -9.
//! - [`metrics`]: reading Prometheus exposition and its samples.
//! - [`smtp`]: a real SMTP server (aiosmtpd) with STARTTLS, implicit TLS
//!   and a login, recording what it accepts.
//! - [`wait_until`]: polling with a deadline, the one way tests wait;
//!   [`free_port`], [`fresh`] names and an [`http_client`].

pub mod jobs;
pub mod kafka;
pub mod metrics;
pub mod mock;
pub mod mock_dns;
pub mod server;
pub mod smtp;
pub mod worker;

use std::time::{Duration, Instant};

/// Polls `condition` every 200 ms until it holds and returns what it
/// returned; panics naming `what` and the condition's last complaint after
/// `limit`. A deadline, not a timing assertion: `limit` is generous and only
/// ends a test that would hang.
pub async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match condition().await {
            Ok(done) => return done,
            Err(last) => assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {last}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port on 127.0.0.1 nothing listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding 127.0.0.1:0")
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// `prefix-<uuid v7>`: a topic, group or worker name no other test uses.
pub fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// An HTTP client for talking to test servers: no proxy from the
/// environment, a 30 s deadline per request, and rustls's ring provider
/// installed (reqwest is built without a default one here).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// The number after `flag` on a bench's command line (`-- --messages
/// 100000`), or `default`; panics naming the flag when it is not a number.
pub fn bench_number(flag: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{flag} needs a number")))
        .unwrap_or(default)
}
