//! The networks a worker never contacts.
//!
//! A job's URL is user input, and the worker runs inside someone's cloud: a
//! check of `http://169.254.169.254/` would hand out the instance's
//! credentials. Every address is checked here before a connection is made:
//! IP literals in URLs and redirect targets, and every address a host name
//! resolves to.

use std::net::IpAddr;

use ipnet::IpNet;

/// A set of blocked networks.
#[derive(Debug, Clone)]
pub struct Blocklist {
    /// Searched linearly: a handful of entries, faster than anything clever.
    networks: Vec<IpNet>,
}

impl Blocklist {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    /// Link-local IPv4 (the cloud metadata endpoints live there), link-local
    /// IPv6, and the IPv6 metadata endpoint of AWS.
    pub fn default_networks() -> Vec<IpNet> {
        ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"]
            .into_iter()
            .map(|net| net.parse().expect("the default blocklist parses"))
            .collect()
    }

    /// The blocked network `address` falls in, if any. IPv4 addresses
    /// written as IPv6 (`::ffff:169.254.169.254`) count as IPv4.
    pub fn network_of(&self, address: IpAddr) -> Option<IpNet> {
        let canonical = address.to_canonical();
        self.networks
            .iter()
            .find(|net| net.contains(&address) || net.contains(&canonical))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(blocklist: &Blocklist, address: &str) -> Option<String> {
        blocklist
            .network_of(address.parse().unwrap())
            .map(|net| net.to_string())
    }

    #[test]
    fn default_networks_block_metadata_and_link_local() {
        let blocklist = Blocklist::new(Blocklist::default_networks());
        assert_eq!(
            blocked(&blocklist, "169.254.169.254").as_deref(),
            Some("169.254.0.0/16")
        );
        assert_eq!(blocked(&blocklist, "169.254.0.1").as_deref(), Some("169.254.0.0/16"));
        assert_eq!(
            blocked(&blocklist, "::ffff:169.254.169.254").as_deref(),
            Some("169.254.0.0/16")
        );
        assert_eq!(blocked(&blocklist, "fe80::1").as_deref(), Some("fe80::/10"));
        assert_eq!(blocked(&blocklist, "febf::1").as_deref(), Some("fe80::/10"));
        assert_eq!(
            blocked(&blocklist, "fd00:ec2::254").as_deref(),
            Some("fd00:ec2::254/128")
        );
        for allowed in [
            "127.0.0.1",
            "10.0.0.1",
            "169.255.0.1",
            "::1",
            "fd00:ec2::253",
            "2001:db8::1",
        ] {
            assert_eq!(blocked(&blocklist, allowed), None, "{allowed}");
        }
    }

    #[test]
    fn an_empty_blocklist_blocks_nothing() {
        assert_eq!(blocked(&Blocklist::new(Vec::new()), "169.254.169.254"), None);
    }
}
