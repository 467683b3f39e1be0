//! The networks a worker never contacts, and the ones an operator opens.
//!
//! A job's URL is user input, and the worker runs inside someone's network:
//! a check of `http://169.254.169.254/` would hand out the instance's
//! credentials, one of `http://127.0.0.1:6379/` or `http://10.0.0.5/admin`
//! would reach services that trust whoever is already inside. Every address
//! is checked here before a connection is made: IP literals in URLs and
//! redirect targets, and every address a host name resolves to.
//!
//! Blocked are the [default networks](Blocklist::default_networks) plus any
//! the operator lists (`--blocklist`); opened are the networks the operator
//! allows (`--allow-net`). The most specific network containing an address
//! decides, and an allowed network as specific as a blocked one wins, since
//! someone wrote it on purpose. So `--allow-net 127.0.0.0/8` opens loopback,
//! `--allow-net 0.0.0.0/0` opens nothing that is blocked, and the metadata
//! addresses, blocked on their own, stay closed when the range around them
//! is opened: `--allow-net 100.64.0.0/10` opens carrier-grade NAT but not
//! 100.100.100.200, which only `--allow-net 100.100.100.200/32` opens.
//!
//! An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is the IPv4 address
//! (that is where a connection to it goes), and so is a network written that
//! way (`::ffff:10.0.0.0/104` is `10.0.0.0/8`).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

/// Blocked by default, most of them because they lead back into the
/// worker's own host or network rather than to a public site.
const DEFAULT_NETWORKS: &[&str] = &[
    // Cloud metadata endpoints, each on its own (see the module docs):
    // AWS, GCP, Azure and others; Alibaba Cloud; AWS and GCP over IPv6.
    "169.254.169.254/32",
    "100.100.100.200/32",
    "fd00:ec2::254/128",
    "fd20:ce::254/128",
    // Link-local.
    "169.254.0.0/16",
    "fe80::/10",
    // This host: loopback, and "this network", which Linux connects to the
    // host itself (0.0.0.0, ::).
    "127.0.0.0/8",
    "::1/128",
    "0.0.0.0/8",
    "::/128",
    // Private networks (RFC 1918), carrier-grade NAT, IPv6 unique local.
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
    // NAT64, well-known and local-use prefixes: they reach any IPv4
    // address, the blocked ones included.
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    // 6to4 embeds any IPv4 address; IPv4-compatible IPv6 (deprecated) too.
    "2002::/16",
    "::/96",
    // Azure's WireServer (host agent), multicast and broadcast.
    "168.63.129.16/32",
    "224.0.0.0/4",
    "255.255.255.255/32",
    "ff00::/8",
];

/// Which networks the worker may contact; see the module docs for the rule.
#[derive(Debug, Clone)]
pub struct Blocklist {
    /// Searched linearly: a few dozen entries, faster than anything clever.
    blocked: Vec<IpNet>,
    /// Exceptions to `blocked`, searched the same way.
    allowed: Vec<IpNet>,
}

impl Blocklist {
    /// Exactly these networks blocked and allowed (no defaults).
    pub fn new(blocked: Vec<IpNet>, allowed: Vec<IpNet>) -> Self {
        Self {
            blocked: blocked.into_iter().map(canonical_network).collect(),
            allowed: allowed.into_iter().map(canonical_network).collect(),
        }
    }

    /// The [default networks](Self::default_networks) and `blocked`
    /// blocked, `allowed` opened: what `--blocklist` and `--allow-net` set.
    pub fn with_defaults(blocked: impl IntoIterator<Item = IpNet>, allowed: Vec<IpNet>) -> Self {
        let mut networks = Self::default_networks();
        networks.extend(blocked);
        Self::new(networks, allowed)
    }

    /// Cloud metadata endpoints, link-local, loopback, "this network",
    /// private (RFC 1918, carrier-grade NAT, unique local) and NAT64
    /// prefixes.
    pub fn default_networks() -> Vec<IpNet> {
        DEFAULT_NETWORKS
            .iter()
            .map(|net| net.parse().expect("the default blocklist parses"))
            .collect()
    }

    /// The blocked network that refuses `address`, if any: the most
    /// specific blocked network containing it, unless an allowed network
    /// containing it is at least as specific.
    pub fn network_of(&self, address: IpAddr) -> Option<IpNet> {
        let address = address.to_canonical();
        let most_specific = |networks: &[IpNet]| {
            networks
                .iter()
                .filter(|net| net.contains(&address))
                .max_by_key(|net| net.prefix_len())
                .copied()
        };
        let blocked = most_specific(&self.blocked)?;
        match most_specific(&self.allowed) {
            Some(allowed) if allowed.prefix_len() >= blocked.prefix_len() => None,
            _ => Some(blocked),
        }
    }
}

impl Default for Blocklist {
    /// The default networks blocked, nothing opened.
    fn default() -> Self {
        Self::with_defaults([], Vec::new())
    }
}

/// `net` without host bits, and as IPv4 when written as IPv4-mapped IPv6
/// (`::ffff:10.0.0.0/104` is `10.0.0.0/8`), the form addresses are judged in.
fn canonical_network(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
    {
        let v4 = Ipv4Net::new(v4, v6.prefix_len() - 96).expect("a prefix of at most 32");
        return IpNet::V4(v4);
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn networks(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    fn blocked(blocklist: &Blocklist, address: &str) -> Option<String> {
        blocklist
            .network_of(address.parse().unwrap())
            .map(|net| net.to_string())
    }

    #[test]
    fn default_networks_block_each_listed_range() {
        let blocklist = Blocklist::default();
        for (address, network) in [
            ("169.254.169.254", "169.254.169.254/32"),
            ("100.100.100.200", "100.100.100.200/32"),
            ("fd00:ec2::254", "fd00:ec2::254/128"),
            ("fd20:ce::254", "fd20:ce::254/128"),
            ("169.254.0.1", "169.254.0.0/16"),
            ("fe80::1", "fe80::/10"),
            ("febf::1", "fe80::/10"),
            ("127.0.0.1", "127.0.0.0/8"),
            ("127.255.255.254", "127.0.0.0/8"),
            ("::1", "::1/128"),
            ("0.0.0.0", "0.0.0.0/8"),
            ("0.1.2.3", "0.0.0.0/8"),
            ("::", "::/128"),
            ("10.0.0.1", "10.0.0.0/8"),
            ("172.16.0.1", "172.16.0.0/12"),
            ("172.31.255.255", "172.16.0.0/12"),
            ("192.168.1.1", "192.168.0.0/16"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("100.127.255.255", "100.64.0.0/10"),
            ("fc00::1", "fc00::/7"),
            ("fd12:3456::1", "fc00::/7"),
            ("fd00:ec2::253", "fc00::/7"),
            ("64:ff9b::7f00:1", "64:ff9b::/96"),
            ("2002:7f00:1::1", "2002::/16"),
            ("::7f00:1", "::/96"),
            ("168.63.129.16", "168.63.129.16/32"),
            ("224.0.0.251", "224.0.0.0/4"),
            ("239.255.255.250", "224.0.0.0/4"),
            ("255.255.255.255", "255.255.255.255/32"),
            ("ff02::1", "ff00::/8"),
            ("64:ff9b:1::a00:1", "64:ff9b:1::/48"),
        ] {
            assert_eq!(blocked(&blocklist, address).as_deref(), Some(network), "{address}");
        }
        for public in [
            "1.1.1.1",
            "93.184.215.14",
            "169.255.0.1",
            "172.32.0.1",
            "100.128.0.1",
            "11.0.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "64:ff9b:2::1",
        ] {
            assert_eq!(blocked(&blocklist, public), None, "{public}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_judged_as_its_ipv4_address() {
        let blocklist = Blocklist::default();
        for (address, network) in [
            ("::ffff:127.0.0.1", "127.0.0.0/8"),
            ("::ffff:7f00:1", "127.0.0.0/8"),
            ("::ffff:169.254.169.254", "169.254.169.254/32"),
            ("::ffff:10.1.2.3", "10.0.0.0/8"),
            ("::ffff:0.0.0.0", "0.0.0.0/8"),
        ] {
            assert_eq!(blocked(&blocklist, address).as_deref(), Some(network), "{address}");
        }
        assert_eq!(blocked(&blocklist, "::ffff:1.1.1.1"), None);

        // Allowing the IPv4 network opens its mapped form, and a network
        // written as mapped IPv6 counts as the IPv4 network.
        let loopback = Blocklist::with_defaults([], networks(&["127.0.0.0/8"]));
        assert_eq!(blocked(&loopback, "::ffff:127.0.0.1"), None);
        let mapped = Blocklist::with_defaults(networks(&["::ffff:1.1.1.0/120"]), networks(&["::ffff:7f00:0/104"]));
        assert_eq!(blocked(&mapped, "127.0.0.1"), None);
        assert_eq!(blocked(&mapped, "1.1.1.1").as_deref(), Some("1.1.1.0/24"));
    }

    #[test]
    fn an_allowed_network_as_specific_or_more_wins() {
        let blocklist = Blocklist::with_defaults([], networks(&["127.0.0.0/8", "10.1.0.0/16", "::1/128"]));
        assert_eq!(blocked(&blocklist, "127.0.0.1"), None);
        assert_eq!(blocked(&blocklist, "::1"), None);
        assert_eq!(blocked(&blocklist, "10.1.2.3"), None);
        assert_eq!(blocked(&blocklist, "10.2.0.1").as_deref(), Some("10.0.0.0/8"));
        // Nothing else is opened.
        assert_eq!(blocked(&blocklist, "192.168.0.1").as_deref(), Some("192.168.0.0/16"));
        assert_eq!(
            blocked(&blocklist, "169.254.169.254").as_deref(),
            Some("169.254.169.254/32")
        );
    }

    #[test]
    fn metadata_addresses_stay_blocked_unless_named() {
        let ranges = Blocklist::with_defaults([], networks(&["169.254.0.0/16", "100.64.0.0/10", "fc00::/7"]));
        assert_eq!(blocked(&ranges, "169.254.1.1"), None);
        assert_eq!(blocked(&ranges, "100.64.0.1"), None);
        assert_eq!(blocked(&ranges, "fd00::1"), None);
        assert_eq!(
            blocked(&ranges, "169.254.169.254").as_deref(),
            Some("169.254.169.254/32")
        );
        assert_eq!(
            blocked(&ranges, "100.100.100.200").as_deref(),
            Some("100.100.100.200/32")
        );
        assert_eq!(blocked(&ranges, "fd00:ec2::254").as_deref(), Some("fd00:ec2::254/128"));

        let everything = Blocklist::with_defaults([], networks(&["0.0.0.0/0", "::/0"]));
        assert_eq!(blocked(&everything, "127.0.0.1").as_deref(), Some("127.0.0.0/8"));
        assert_eq!(blocked(&everything, "fe80::1").as_deref(), Some("fe80::/10"));

        let named = Blocklist::with_defaults([], networks(&["169.254.169.254/32", "100.100.100.200/32"]));
        assert_eq!(blocked(&named, "169.254.169.254"), None);
        assert_eq!(blocked(&named, "100.100.100.200"), None);
        assert_eq!(blocked(&named, "169.254.169.253").as_deref(), Some("169.254.0.0/16"));
    }

    #[test]
    fn listed_networks_add_to_the_defaults() {
        let blocklist = Blocklist::with_defaults(networks(&["203.0.113.0/24", "2001:db8::/32"]), Vec::new());
        assert_eq!(blocked(&blocklist, "203.0.113.7").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(blocked(&blocklist, "2001:db8::1").as_deref(), Some("2001:db8::/32"));
        assert_eq!(blocked(&blocklist, "127.0.0.1").as_deref(), Some("127.0.0.0/8"));
        assert_eq!(
            blocked(&blocklist, "169.254.169.254").as_deref(),
            Some("169.254.169.254/32")
        );

        // A listed network inside an allowed one is more specific: blocked.
        let nested = Blocklist::with_defaults(networks(&["127.0.0.53/32"]), networks(&["127.0.0.0/8"]));
        assert_eq!(blocked(&nested, "127.0.0.1"), None);
        assert_eq!(blocked(&nested, "127.0.0.53").as_deref(), Some("127.0.0.53/32"));
        // A listed network equal to an allowed one: allowed wins.
        let equal = Blocklist::with_defaults(networks(&["198.51.100.0/24"]), networks(&["198.51.100.0/24"]));
        assert_eq!(blocked(&equal, "198.51.100.1"), None);
    }

    #[test]
    fn host_bits_are_ignored_and_new_takes_no_defaults() {
        let blocklist = Blocklist::new(networks(&["10.1.2.3/8"]), Vec::new());
        assert_eq!(blocked(&blocklist, "10.200.0.1").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(blocked(&blocklist, "127.0.0.1"), None);
        assert_eq!(
            blocked(&Blocklist::new(Vec::new(), Vec::new()), "169.254.169.254"),
            None
        );
    }
}
