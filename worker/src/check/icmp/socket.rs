//! Which ICMP socket the worker may open, decided once per process and
//! address family, and the echo clients built on it.
//!
//! Linux lets a process open an unprivileged ICMP datagram socket when its
//! group is in `net.ipv4.ping_group_range` (the kernel then owns the echo
//! identifier); otherwise a raw socket needs root or CAP_NET_RAW. The
//! first that opens is used; when neither does, every ping check says why
//! and how to allow one ([`classify`]).

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};

use monitor_proto::v1::CheckOutcome;
use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, ICMP};

use super::super::Failure;

/// The address family of a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "ICMP",
            Family::V6 => "ICMPv6",
        }
    }
}

/// The socket kind a family's pings go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketKind {
    /// Unprivileged ICMP datagram socket (`ping_group_range`).
    Dgram,
    /// Raw socket (root or CAP_NET_RAW).
    Raw,
}

impl SocketKind {
    /// As `IcmpResult.socket` spells it.
    pub(super) fn name(self) -> &'static str {
        match self {
            SocketKind::Dgram => "dgram",
            SocketKind::Raw => "raw",
        }
    }

    fn socket_type(self) -> Type {
        match self {
            SocketKind::Dgram => Type::DGRAM,
            SocketKind::Raw => Type::RAW,
        }
    }
}

/// The kind the kernel allows for `family`, tried once per process (the
/// sysctl and the capabilities do not change under a running worker).
fn socket_kind(family: Family) -> Result<SocketKind, Failure> {
    static V4: OnceLock<Result<SocketKind, Failure>> = OnceLock::new();
    static V6: OnceLock<Result<SocketKind, Failure>> = OnceLock::new();
    let cell = match family {
        Family::V4 => &V4,
        Family::V6 => &V6,
    };
    cell.get_or_init(|| probe(family)).clone()
}

/// Opens (and closes) a datagram socket, else a raw one.
fn probe(family: Family) -> Result<SocketKind, Failure> {
    let (domain, protocol) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let dgram = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(_socket) => return Ok(SocketKind::Dgram),
        Err(error) => error,
    };
    match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(_socket) => {
            tracing::info!(
                family = family.name(),
                %dgram,
                "unprivileged ICMP sockets are not allowed here; pinging with a raw socket"
            );
            Ok(SocketKind::Raw)
        }
        Err(raw) => Err(classify(family, &dgram, &raw)),
    }
}

/// Why no ICMP socket opened, from the errors of the datagram and the raw
/// attempt: NOT_PERMITTED with how to allow one when the kernel refused
/// both (EACCES, EPERM), else the error as it is (an IPv6-less kernel).
pub(super) fn classify(family: Family, dgram: &io::Error, raw: &io::Error) -> Failure {
    let refused = |error: &io::Error| error.kind() == io::ErrorKind::PermissionDenied;
    if refused(dgram) && refused(raw) {
        return Failure::new(
            CheckOutcome::NotPermitted,
            format!(
                "this worker may not open an {} socket: unprivileged ICMP sockets are off for its group \
                 ({dgram}) and raw sockets need root or CAP_NET_RAW ({raw}); allow one with \
                 sysctl net.ipv4.ping_group_range=\"0 2147483647\" (Docker: --sysctl, Kubernetes: \
                 securityContext.sysctls) or by granting CAP_NET_RAW",
                family.name()
            ),
        );
    }
    let error = if refused(dgram) { raw } else { dgram };
    Failure::new(
        CheckOutcome::Connect,
        format!("cannot open an {} socket: {error}", family.name()),
    )
}

/// One echo client per family, opened on first use and shared by every
/// ping check of the runner: one socket, replies dispatched by (address,
/// identifier, sequence), so thousands of checks do not each get a copy of
/// every reply as they would with a raw socket each.
#[derive(Default)]
pub(in crate::check) struct Pingers {
    v4: OnceLock<Result<(Client, SocketKind), Failure>>,
    v6: OnceLock<Result<(Client, SocketKind), Failure>>,
    /// Sequence numbers handed out to echoes. With datagram sockets the
    /// kernel owns the identifier, so replies are told apart by address
    /// and sequence alone, and concurrent checks of one address must not
    /// share a sequence number.
    sequence: AtomicU16,
}

impl Pingers {
    /// The client for `family`; opening it needs a Tokio runtime (its
    /// receiving task is spawned there).
    pub(super) fn client(&self, family: Family) -> Result<(Client, SocketKind), Failure> {
        let cell = match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        };
        cell.get_or_init(|| open(family)).clone()
    }

    /// A sequence number no echo in flight is likely to have (they wrap
    /// after 65536 echoes, long after a reply is due).
    pub(super) fn next_sequence(&self) -> u16 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }
}

fn open(family: Family) -> Result<(Client, SocketKind), Failure> {
    let kind = socket_kind(family)?;
    let config = Config::builder()
        .kind(match family {
            Family::V4 => ICMP::V4,
            Family::V6 => ICMP::V6,
        })
        .sock_type_hint(kind.socket_type())
        .build();
    let client = Client::new(&config).map_err(|error| {
        Failure::new(
            CheckOutcome::Connect,
            format!("cannot open an {} socket: {error}", family.name()),
        )
    })?;
    Ok((client, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// errno values (Linux): EPERM, EACCES, EAFNOSUPPORT.
    const EPERM: i32 = 1;
    const EACCES: i32 = 13;
    const EAFNOSUPPORT: i32 = 97;

    #[test]
    fn both_kinds_refused_is_not_permitted_and_says_how_to_allow_it() {
        let failure = classify(
            Family::V4,
            &io::Error::from_raw_os_error(EACCES),
            &io::Error::from_raw_os_error(EPERM),
        );
        assert_eq!(failure.outcome, CheckOutcome::NotPermitted);
        for needed in [
            "may not open an ICMP socket",
            "net.ipv4.ping_group_range=\"0 2147483647\"",
            "CAP_NET_RAW",
            "Permission denied",
            "Operation not permitted",
        ] {
            assert!(failure.error.contains(needed), "{needed}: {}", failure.error);
        }
    }

    #[test]
    fn other_errors_are_reported_as_they_are() {
        let unsupported = io::Error::from_raw_os_error(EAFNOSUPPORT);
        let failure = classify(Family::V6, &io::Error::from_raw_os_error(EACCES), &unsupported);
        assert_eq!(failure.outcome, CheckOutcome::Connect);
        assert_eq!(failure.error, format!("cannot open an ICMPv6 socket: {unsupported}"));
        let failure = classify(Family::V6, &unsupported, &unsupported);
        assert_eq!(failure.outcome, CheckOutcome::Connect);
    }

    #[test]
    fn the_kind_is_decided_once() {
        assert_eq!(socket_kind(Family::V4), socket_kind(Family::V4));
    }

    #[test]
    fn sequences_advance() {
        let pingers = Pingers::default();
        let first = pingers.next_sequence();
        assert_eq!(pingers.next_sequence(), first.wrapping_add(1));
    }
}
