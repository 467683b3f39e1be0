//! Opening a TCP connection to a check's host and port, past the
//! blocklist: an IP literal is checked as written, a name is resolved and
//! its blocklisted addresses dropped; the addresses left are tried in
//! resolver order until one accepts. The TCP check stops there; the gRPC
//! health and WebSocket checks speak their protocol over the stream.

use std::io;
use std::net::{IpAddr, SocketAddr};

use monitor_proto::v1::CheckOutcome;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Failure;
use super::blocklist::Blocklist;
use super::resolve::{check_address, lookup};

/// A connection and where it went.
pub(super) struct Connected {
    pub(super) stream: TcpStream,
    /// The address that accepted.
    pub(super) address: SocketAddr,
    /// The successful connect alone (not DNS, not earlier addresses).
    pub(super) connect_time: std::time::Duration,
}

/// A port of the contract's `uint32`, 1 to 65535.
pub(super) fn port(port: u32) -> Result<u16, Failure> {
    u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| Failure::new(CheckOutcome::Connect, format!("invalid port {port}")))
}

/// Connects to `host` (a name or an IP address, an IPv6 one maybe
/// bracketed as in URLs) on `port`. Not bounded here: callers run it
/// under their deadline.
pub(super) async fn open(blocklist: &Blocklist, host: &str, port: u16) -> Result<Connected, Failure> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Failure::new(CheckOutcome::Connect, "no host to connect to"));
    }
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
            Ok(stream) => {
                // Requests go out in one write; don't let Nagle hold them back.
                let _ = stream.set_nodelay(true);
                return Ok(Connected {
                    stream,
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

    #[tokio::test]
    async fn bad_targets_are_refused_without_connecting() {
        let blocklist = Blocklist::default();
        for (port_number, message) in [(0, "invalid port 0"), (70_000, "invalid port 70000")] {
            let failure = port(port_number).unwrap_err();
            assert_eq!(failure.outcome, CheckOutcome::Connect);
            assert_eq!(failure.error, message);
        }
        let failure = open(&blocklist, " ", 80).await.err().unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Connect);
        assert_eq!(failure.error, "no host to connect to");
        let failure = open(&blocklist, "[fe80::1]", 80).await.err().unwrap();
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
