//! HTTP/2 keepalive of the worker stream, derived from the lease and the
//! heartbeat interval that both sides agree on (the server's `Welcome`).
//!
//! A connection that stops carrying packets without closing (a frozen
//! proxy, a dropped NAT entry) is noticed by neither TCP nor the stream
//! for minutes. Pings on both sides close it instead: a side that has read
//! nothing for one heartbeat interval pings, and gives the connection up
//! when no answer came within half a lease. That is before the lease ends
//! (the heartbeat is at most a third of it), so the server shows the worker
//! as lost while it still waits out the lease, and the worker reconnects.

use std::time::Duration;

/// When to ping and how long to wait for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Ping after this long without reading anything.
    pub interval: Duration,
    /// Close the connection when a ping is not answered within this.
    pub timeout: Duration,
}

impl Keepalive {
    /// The keepalive for a stream with this `lease` and `heartbeat` interval.
    pub fn for_lease(lease: Duration, heartbeat: Duration) -> Keepalive {
        Keepalive {
            interval: heartbeat.max(Duration::from_millis(100)),
            timeout: (lease / 2).max(Duration::from_millis(100)),
        }
    }

    /// How long a connection may be silent before it is closed.
    pub fn silence_limit(&self) -> Duration {
        self.interval + self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_connection_closes_before_the_lease_ends() {
        for (lease_ms, heartbeat_ms) in [(15_000, 3_000), (15_000, 5_000), (1_000, 100), (600_000, 200_000)] {
            let (lease, heartbeat) = (Duration::from_millis(lease_ms), Duration::from_millis(heartbeat_ms));
            let keepalive = Keepalive::for_lease(lease, heartbeat);
            assert!(keepalive.silence_limit() < lease + heartbeat, "{keepalive:?}");
            // A healthy stream carries a heartbeat every interval: no ping
            // is needed, and a late answer has half a lease.
            assert!(keepalive.interval >= heartbeat);
            assert!(keepalive.timeout >= heartbeat);
        }
        let default = Keepalive::for_lease(Duration::from_secs(15), Duration::from_secs(3));
        assert_eq!(
            (default.interval, default.timeout),
            (Duration::from_secs(3), Duration::from_millis(7_500))
        );
    }
}
