//! The TCP check: healthy when a connection to host:port is established
//! before the deadline. Addresses are tried in resolver order until one
//! accepts; the connection is closed at once.

use monitor_proto::v1::{CheckOutcome, CheckResult, TcpCheck, TcpResult, check_result};
use tokio::time::Instant;

use super::Failure;
use super::blocklist::Blocklist;
use super::connect::{self, Connected};

pub(super) async fn run(blocklist: &Blocklist, check: &TcpCheck, started: Instant, deadline: Instant) -> CheckResult {
    let ended = tokio::time::timeout_at(deadline, connect(blocklist, check)).await;
    let duration = started.elapsed();
    let connected = match ended {
        Err(_elapsed) => Err(Failure::timeout(deadline - started)),
        Ok(connected) => connected,
    };
    match connected {
        Ok(connected) => CheckResult {
            duration: Some(duration.into()),
            outcome: CheckOutcome::Ok.into(),
            detail: Some(check_result::Detail::Tcp(TcpResult {
                connect_time: Some(connected.connect_time.into()),
                address: connected.address.to_string(),
                ..TcpResult::default()
            })),
            ..CheckResult::default()
        },
        Err(failure) => CheckResult {
            detail: Some(check_result::Detail::Tcp(TcpResult::default())),
            ..failure.into_result(duration)
        },
    }
}

async fn connect(blocklist: &Blocklist, check: &TcpCheck) -> Result<Connected, Failure> {
    let port = connect::port(check.port)?;
    // The connection is closed at once (dropped with the result).
    connect::open(blocklist, &check.host, port).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: &str, port: u32) -> TcpCheck {
        TcpCheck {
            host: host.to_owned(),
            port,
            ..TcpCheck::default()
        }
    }

    #[tokio::test]
    async fn bad_targets_are_refused_without_connecting() {
        let blocklist = Blocklist::default();
        for (target, message) in [
            (check("127.0.0.1", 0), "invalid port 0"),
            (check("127.0.0.1", 70_000), "invalid port 70000"),
            (check(" ", 80), "no host to connect to"),
        ] {
            let failure = connect(&blocklist, &target).await.err().unwrap();
            assert_eq!(failure.outcome, CheckOutcome::Connect);
            assert_eq!(failure.error, message);
        }
        let failure = connect(&blocklist, &check("[fe80::1]", 80)).await.err().unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Blocked);
    }
}
