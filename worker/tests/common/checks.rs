//! Running one check in-process: a `CheckRunner` that may contact the
//! loopback servers tests start, jobs of one check, and reading results.

use std::time::Duration;

use monitor_proto::v1::{CheckResult, Job, job};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};

/// Long enough that only the checks meant to time out do.
pub const GENEROUS: Duration = Duration::from_secs(10);

/// The mock's flags for check tests: no latency, no grace at shutdown.
pub const MOCK_FLAGS: &[&str] = &["--latency-ms=0", "--shutdown-grace-ms=0"];

/// A runner with loopback opened, as `--allow-net 127.0.0.0/8,::1/128`
/// does: the mock and the test servers listen there.
pub fn runner() -> CheckRunner {
    let allowed = ["127.0.0.0/8", "::1/128"].map(|net| net.parse().unwrap());
    CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults([], allowed.to_vec()),
        ..CheckConfig::default()
    })
    .expect("runner builds")
}

/// A worker started without `--allow-net`.
pub fn default_runner() -> CheckRunner {
    CheckRunner::new(CheckConfig::default()).expect("runner builds")
}

/// A job of `check` with `timeout`.
pub fn job(check: job::Check, timeout: Duration) -> Job {
    Job {
        timeout: Some(timeout.into()),
        check: Some(check),
        ..Job::default()
    }
}

/// Each assertion's name and whether it passed, in order.
pub fn assertion_names(result: &CheckResult) -> Vec<(&str, bool)> {
    result
        .assertions
        .iter()
        .map(|assertion| (assertion.name.as_str(), assertion.passed))
        .collect()
}

/// A listener on loopback that accepts connections and holds them open
/// without a byte, until the test ends: a server that never answers.
pub async fn silent_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}
