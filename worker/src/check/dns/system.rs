//! The server a DNS check asks when the job names none: the first usable
//! `nameserver` of the worker's resolver configuration (/etc/resolv.conf).
//! It is the worker's own configuration, not the job's say-so, so the
//! blocklist does not apply to it (it is often a private or loopback
//! address: a VPC resolver, systemd-resolved's 127.0.0.53).
//!
//! The file is read at most every [`REREAD_AFTER`], so thousands of DNS
//! checks do not read it thousands of times, while an edit (DHCP, a
//! container runtime) is seen within that time.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use monitor_core::dns::DNS_PORT;
use tokio::time::Instant;

/// Where the system resolver's configuration lives.
pub(in crate::check) const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How long a reading of the file is used before it is read again.
const REREAD_AFTER: Duration = Duration::from_secs(30);

/// The system's name server, read from a resolv.conf file and cached.
pub(in crate::check) struct SystemNameserver {
    /// The file read ([`RESOLV_CONF`] outside tests).
    path: PathBuf,
    /// The last reading and when it was made.
    cached: Mutex<Option<(Instant, Result<SocketAddr, String>)>>,
}

impl SystemNameserver {
    pub(in crate::check) fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cached: Mutex::new(None),
        }
    }

    /// The first name server of the file, or why there is none.
    pub(in crate::check) fn get(&self) -> Result<SocketAddr, String> {
        let now = Instant::now();
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((read_at, server)) = cached.as_ref()
            && now.duration_since(*read_at) < REREAD_AFTER
        {
            return server.clone();
        }
        // A small local file: reading it under the lock, once per
        // REREAD_AFTER, costs less than coordinating concurrent readers.
        let server = match std::fs::read_to_string(&self.path) {
            Ok(text) => first_nameserver(&text).ok_or_else(|| {
                format!(
                    "no usable nameserver in {} (set the check's server)",
                    self.path.display()
                )
            }),
            Err(error) => Err(format!(
                "cannot read {} for the system resolver: {error} (set the check's server)",
                self.path.display()
            )),
        };
        *cached = Some((now, server.clone()));
        server
    }
}

/// The first `nameserver` line with an IP address, on port 53. An IPv6
/// address with a zone (`fe80::1%eth0`) is skipped: the zone names an
/// interface, which a plain address cannot carry.
fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines()
        .map(|line| line.split(['#', ';']).next().unwrap_or_default())
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        .find_map(|address| address.parse::<IpAddr>().ok())
        .map(|address| SocketAddr::new(address, DNS_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_usable_nameserver_is_taken() {
        let text = "# generated\nsearch example.com\noptions ndots:5\n\
                    nameserver fe80::1%eth0\nnameserver 10.0.0.2 # VPC\nnameserver 10.0.0.3\n";
        assert_eq!(first_nameserver(text), Some("10.0.0.2:53".parse().unwrap()));
        assert_eq!(
            first_nameserver("nameserver 2001:db8::53\n"),
            Some("[2001:db8::53]:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("; nameserver 10.0.0.9\nsearch x\n"), None);
        assert_eq!(first_nameserver(""), None);
    }

    #[tokio::test]
    async fn the_file_is_read_and_a_missing_one_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.53\n").unwrap();
        let system = SystemNameserver::new(&path);
        assert_eq!(system.get(), Ok("127.0.0.53:53".parse().unwrap()));
        // Cached: an edit is seen only after REREAD_AFTER.
        std::fs::write(&path, "nameserver 10.0.0.2\n").unwrap();
        assert_eq!(system.get(), Ok("127.0.0.53:53".parse().unwrap()));

        let missing = SystemNameserver::new(dir.path().join("absent"));
        let error = missing.get().unwrap_err();
        assert!(error.starts_with("cannot read "), "{error}");
        assert!(error.ends_with("(set the check's server)"), "{error}");

        std::fs::write(&path, "search example.com\n").unwrap();
        let empty = SystemNameserver::new(&path);
        assert_eq!(
            empty.get(),
            Err(format!(
                "no usable nameserver in {} (set the check's server)",
                path.display()
            ))
        );
    }
}
