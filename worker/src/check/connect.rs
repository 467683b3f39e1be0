//! Opening a TCP connection for a check: the host resolved (or the IP
//! literal checked) through the blocklist, then the addresses tried in
//! resolver order until one accepts. Shared by every kind that speaks over
//! a plain TCP connection (TCP, TLS, SSH, SOCKS5 to reach the proxy); the
//! caller bounds it by the check's deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use monitor_proto::v1::CheckOutcome;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Failure;
use super::blocklist::Blocklist;
use super::resolve::{check_address, lookup};

/// An open connection and how it was made.
pub(super) struct Connected {
    pub(super) stream: TcpStream,
    /// The address that accepted.
    pub(super) address: SocketAddr,
    /// The successful connect alone (not DNS, not earlier addresses).
    pub(super) connect_time: Duration,
}

/// A job's port as a TCP port: 1 to 65535.
pub(super) fn port(port: u32) -> Result<u16, Failure> {
    u16::try_from(port)
        .ok()
        .filter(|port| *port != 0)
        .ok_or_else(|| Failure::new(CheckOutcome::Connect, format!("invalid port {port}")))
}

/// `host` as an IP address when it is a literal (an IPv6 one may come
/// bracketed, as in URLs).
pub(super) fn ip_literal(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
}

/// Connects to `host:port`. Fails with DNS or BLOCKED when no address may
/// be contacted, CONNECT when none accepts (naming the last one tried).
pub(super) async fn connect(blocklist: &Blocklist, host: &str, port: u16) -> Result<Connected, Failure> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Failure::new(CheckOutcome::Connect, "no host to connect to"));
    }
    let addresses = match ip_literal(host) {
        Some(address) => {
            check_address(blocklist, address).map_err(|error| error.to_failure())?;
            vec![SocketAddr::new(address, port)]
        }
        None => lookup(blocklist, host, port)
            .await
            .map_err(|error| error.to_failure())?,
    };

    let mut last_error = None;
    for address in addresses {
        let attempt = Instant::now();
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Checks write short requests and wait for the answer.
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

/// A failed connect in a few words, naming the address.
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
            let failure = port(port_number).err().unwrap();
            assert_eq!(failure.outcome, CheckOutcome::Connect);
            assert_eq!(failure.error, message);
        }
        let failure = connect(&blocklist, " ", 80).await.err().unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Connect);
        assert_eq!(failure.error, "no host to connect to");
        let failure = connect(&blocklist, "[fe80::1]", 80).await.err().unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Blocked);
    }

    #[test]
    fn literals_may_be_bracketed() {
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("example.com"), None);
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
