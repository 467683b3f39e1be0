//! The TCP check: healthy when a connection to host:port is established
//! before the deadline. Addresses are tried in resolver order until one
//! accepts; the connection is closed at once.

use std::io;
use std::net::{IpAddr, SocketAddr};

use monitor_proto::v1::{CheckOutcome, CheckResult, TcpCheck, TcpResult, check_result};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Failure;
use super::blocklist::Blocklist;
use super::resolve::{check_address, lookup};

/// The address connected to and how long the connect took.
struct Connected {
    /// The address that accepted.
    address: SocketAddr,
    /// The successful connect alone (not DNS, not earlier addresses).
    connect_time: std::time::Duration,
}

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
    let port = u16::try_from(check.port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| Failure::new(CheckOutcome::Connect, format!("invalid port {}", check.port)))?;
    let host = check.host.trim();
    if host.is_empty() {
        return Err(Failure::new(CheckOutcome::Connect, "no host to connect to"));
    }
    // An IPv6 literal may come bracketed, as in URLs.
    let literal = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>();
    let addresses = match literal {
        Ok(address) => {
            check_address(blocklist, address).map_err(|error| error.to_failure())?;
            vec![SocketAddr::new(address, port)]
        }
        Err(_) => lookup(blocklist, host, port)
            .await
            .map_err(|error| error.to_failure())?,
    };

    let mut last_error = None;
    for address in addresses {
        let attempt = Instant::now();
        match TcpStream::connect(address).await {
            Ok(_stream) => {
                return Ok(Connected {
                    address,
                    connect_time: attempt.elapsed(),
                });
            }
            Err(error) => last_error = Some((address, error)),
        }
    }
    let (address, error) = last_error.expect("lookup returns at least one address");
    Err(Failure::new(CheckOutcome::Connect, describe(&error, address)))
}

fn describe(error: &io::Error, address: SocketAddr) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused ({address})"),
        io::ErrorKind::HostUnreachable => format!("host unreachable ({address})"),
        io::ErrorKind::NetworkUnreachable => format!("network unreachable ({address})"),
        io::ErrorKind::TimedOut => format!("connect timed out ({address})"),
        _ => format!("cannot connect to {address}: {error}"),
    }
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

    #[test]
    fn connect_errors_name_the_address() {
        let address = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            describe(&io::Error::from(io::ErrorKind::ConnectionRefused), address),
            "connection refused (127.0.0.1:1)"
        );
    }
}
