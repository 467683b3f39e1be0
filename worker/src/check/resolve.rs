//! Turning a host into addresses the worker may contact.
//!
//! Resolution goes through the system resolver (getaddrinfo, like curl and
//! reqwest's default), and then every blocklisted address is dropped, so
//! DNS cannot point a check at a metadata endpoint. The same code serves
//! the TCP check and, as a [`reqwest::dns::Resolve`], the HTTP clients.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use monitor_proto::v1::CheckOutcome;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::Failure;
use super::blocklist::Blocklist;

/// Why a host or address cannot be contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AddressError {
    #[error("could not resolve {host}{}", detail_suffix(.detail))]
    Dns { host: String, detail: String },
    #[error("{host} resolves to {address}, in blocked network {network}{}", open_hint(.network))]
    BlockedName {
        host: String,
        address: IpAddr,
        network: IpNet,
    },
    #[error("address {address} is in blocked network {network}{}", open_hint(.network))]
    BlockedAddress { address: IpAddr, network: IpNet },
}

/// How an operator opens `network`, for people reading a `BLOCKED` result.
fn open_hint(network: &IpNet) -> String {
    format!(" (a worker started with --allow-net {network} may contact it)")
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl AddressError {
    pub(super) fn to_failure(&self) -> Failure {
        let outcome = match self {
            AddressError::Dns { .. } => CheckOutcome::Dns,
            AddressError::BlockedName { .. } | AddressError::BlockedAddress { .. } => CheckOutcome::Blocked,
        };
        Failure::new(outcome, self.to_string())
    }
}

/// Refuses `address` when it is blocklisted.
pub(super) fn check_address(blocklist: &Blocklist, address: IpAddr) -> Result<(), AddressError> {
    match blocklist.network_of(address) {
        Some(network) => Err(AddressError::BlockedAddress { address, network }),
        None => Ok(()),
    }
}

/// Resolves `host` and keeps the addresses that are not blocklisted; fails
/// with [`AddressError::BlockedName`] when none is left.
pub(super) async fn lookup(blocklist: &Blocklist, host: &str, port: u16) -> Result<Vec<SocketAddr>, AddressError> {
    let resolved = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| AddressError::Dns {
            host: host.to_owned(),
            detail: dns_detail(&error),
        })?;
    let mut allowed = Vec::new();
    let mut first_blocked = None;
    for address in resolved {
        match blocklist.network_of(address.ip()) {
            None => allowed.push(address),
            Some(network) => {
                first_blocked.get_or_insert((address.ip(), network));
            }
        }
    }
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    Err(match first_blocked {
        Some((address, network)) => AddressError::BlockedName {
            host: host.to_owned(),
            address,
            network,
        },
        None => AddressError::Dns {
            host: host.to_owned(),
            detail: "no addresses".to_owned(),
        },
    })
}

/// getaddrinfo's reason without the prefix every lookup error carries.
fn dns_detail(error: &std::io::Error) -> String {
    let text = error.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&text)
        .to_owned()
}

/// The HTTP clients' resolver: [`lookup`] with the clients' blocklist.
/// Errors are [`AddressError`]s, found again when classifying a failure.
pub(super) struct FilteringResolver {
    pub(super) blocklist: Arc<Blocklist>,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let blocklist = Arc::clone(&self.blocklist);
        Box::pin(async move {
            super::phases::dns_started();
            // Port 0: reqwest puts in the URL's port.
            let addresses = lookup(&blocklist, name.as_str(), 0).await;
            super::phases::dns_ended();
            Ok(Box::new(addresses?.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocklist(networks: &[&str]) -> Blocklist {
        Blocklist::new(networks.iter().map(|net| net.parse().unwrap()).collect(), Vec::new())
    }

    #[tokio::test]
    async fn blocked_addresses_are_dropped_and_all_blocked_is_refused() {
        let addresses = lookup(&blocklist(&["169.254.0.0/16"]), "127.0.0.1", 80).await.unwrap();
        assert_eq!(addresses, ["127.0.0.1:80".parse().unwrap()]);

        let error = lookup(&blocklist(&["127.0.0.0/8"]), "127.0.0.1", 80).await.unwrap_err();
        assert_eq!(error.to_failure().outcome, CheckOutcome::Blocked);
        assert_eq!(
            error.to_string(),
            "127.0.0.1 resolves to 127.0.0.1, in blocked network 127.0.0.0/8 \
             (a worker started with --allow-net 127.0.0.0/8 may contact it)"
        );
    }

    #[tokio::test]
    async fn an_unknown_name_is_a_dns_failure() {
        let error = lookup(&blocklist(&[]), "nonexistent.invalid", 80).await.unwrap_err();
        let failure = error.to_failure();
        assert_eq!(failure.outcome, CheckOutcome::Dns);
        assert!(
            failure.error.starts_with("could not resolve nonexistent.invalid"),
            "{}",
            failure.error
        );
    }

    #[test]
    fn literal_addresses_are_checked() {
        let blocklist = blocklist(&["169.254.0.0/16"]);
        assert_eq!(check_address(&blocklist, "10.1.2.3".parse().unwrap()), Ok(()));
        let error = check_address(&blocklist, "169.254.169.254".parse().unwrap()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "address 169.254.169.254 is in blocked network 169.254.0.0/16 \
             (a worker started with --allow-net 169.254.0.0/16 may contact it)"
        );
        assert_eq!(error.to_failure().outcome, CheckOutcome::Blocked);
    }
}
