//! DNS check rules both ends follow: the names of response codes (the
//! worker reports them, the server accepts them in `assertions.rcode`) and
//! how a check's `server` is written ("ip" or "ip:port").

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// The port a DNS server listens on unless the check names another.
pub const DNS_PORT: u16 = 53;

/// Response codes by number, with their IANA mnemonics (RFC 1035, 2136,
/// 6891, 2845, 2930, 4635, 7873). 16 is both BADVERS and BADSIG; a reply
/// carries it as BADVERS (only TSIG records say BADSIG).
const RCODES: &[(u16, &str)] = &[
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (6, "YXDOMAIN"),
    (7, "YXRRSET"),
    (8, "NXRRSET"),
    (9, "NOTAUTH"),
    (10, "NOTZONE"),
    (11, "DSOTYPENI"),
    (16, "BADVERS"),
    (16, "BADSIG"),
    (17, "BADKEY"),
    (18, "BADTIME"),
    (19, "BADMODE"),
    (20, "BADNAME"),
    (21, "BADALG"),
    (22, "BADTRUNC"),
    (23, "BADCOOKIE"),
];

/// The mnemonic of response code `code`, or `RCODE<n>` for one without a
/// name (the form dig prints).
pub fn rcode_name(code: u16) -> Cow<'static, str> {
    match RCODES.iter().find(|(number, _)| *number == code) {
        Some((_, name)) => Cow::Borrowed(name),
        None => Cow::Owned(format!("RCODE{code}")),
    }
}

/// Whether `name` is a response code's mnemonic (any case) or the
/// `RCODE<n>` form of a code 0 to 4095 (the 12 bits a reply can carry).
pub fn is_rcode_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if RCODES.iter().any(|(_, known)| *known == upper) {
        return true;
    }
    upper
        .strip_prefix("RCODE")
        .filter(|digits| !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && digits.len() <= 4)
        .and_then(|digits| digits.parse::<u16>().ok())
        .is_some_and(|code| code <= 4095)
}

/// What `assertions.rcode` accepts, for error messages.
pub const RCODE_RULE: &str = "a response code name such as NOERROR, NXDOMAIN, SERVFAIL or REFUSED (or RCODE<n>)";

/// Why a check's `server` is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerAddressError {
    #[error("{0:?} is not an IP address or ip:port (IPv6 with a port as \"[::1]:53\")")]
    NotAnAddress(String),
    #[error("port must be 1 to 65535")]
    BadPort,
}

/// Reads a DNS check's `server`: `192.0.2.53`, `192.0.2.53:5353`,
/// `2001:db8::53`, `[2001:db8::53]` or `[2001:db8::53]:5353`; the port is
/// [`DNS_PORT`] when omitted.
pub fn parse_server(text: &str) -> Result<SocketAddr, ServerAddressError> {
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(address, DNS_PORT));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))
        && let Ok(address) = inner.parse::<std::net::Ipv6Addr>()
    {
        return Ok(SocketAddr::new(address.into(), DNS_PORT));
    }
    // "ip:port": the port is the part after the last colon.
    let not_an_address = || ServerAddressError::NotAnAddress(text.to_owned());
    let (host, port) = text.rsplit_once(':').ok_or_else(not_an_address)?;
    let address = match host.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        Some(inner) => inner.parse::<std::net::Ipv6Addr>().map(IpAddr::V6),
        None => host.parse::<std::net::Ipv4Addr>().map(IpAddr::V4),
    }
    .map_err(|_| not_an_address())?;
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(not_an_address());
    }
    match port.parse::<u16>() {
        Ok(port) if port != 0 => Ok(SocketAddr::new(address, port)),
        _ => Err(ServerAddressError::BadPort),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_their_mnemonics() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(5), "REFUSED");
        assert_eq!(rcode_name(16), "BADVERS");
        assert_eq!(rcode_name(12), "RCODE12");
    }

    #[test]
    fn names_are_known_in_any_case_and_rcode_numbers_too() {
        for name in [
            "NOERROR",
            "nxdomain",
            "ServFail",
            "REFUSED",
            "BADSIG",
            "RCODE12",
            "rcode4095",
        ] {
            assert!(is_rcode_name(name), "{name}");
        }
        for name in [
            "",
            "OK",
            "NOERR",
            "RCODE",
            "RCODE4096",
            "RCODE-1",
            "RCODE99999",
            "RCODE1x",
        ] {
            assert!(!is_rcode_name(name), "{name}");
        }
    }

    #[test]
    fn servers_are_addresses_with_an_optional_port() {
        let parsed = |text: &str| parse_server(text).map(|address| address.to_string());
        assert_eq!(parsed("192.0.2.53"), Ok("192.0.2.53:53".to_owned()));
        assert_eq!(parsed("192.0.2.53:5353"), Ok("192.0.2.53:5353".to_owned()));
        assert_eq!(parsed("2001:db8::53"), Ok("[2001:db8::53]:53".to_owned()));
        assert_eq!(parsed("[2001:db8::53]"), Ok("[2001:db8::53]:53".to_owned()));
        assert_eq!(parsed("[::1]:5353"), Ok("[::1]:5353".to_owned()));
    }

    #[test]
    fn bad_servers_say_why() {
        for text in [
            "",
            "dns.example",
            "dns.example:53",
            "192.0.2.53:",
            "192.0.2.53:x",
            "::1:53x",
            "[::1]:+53",
        ] {
            assert_eq!(
                parse_server(text),
                Err(ServerAddressError::NotAnAddress(text.to_owned())),
                "{text}"
            );
        }
        for text in ["192.0.2.53:0", "192.0.2.53:65536", "[::1]:99999"] {
            assert_eq!(parse_server(text), Err(ServerAddressError::BadPort), "{text}");
        }
    }
}
