//! SOCKS5: the proxy a check goes through (`socks5.proxy`, `tcp.proxy`,
//! `http.proxy`) and the SOCKS5 check's target.

use monitor_proto::v1::{Socks5Check, Socks5Proxy};

use super::super::validate::{spec_unless_violated, validate_host, validate_port};
use crate::error::FieldViolation;

/// RFC 1929: the user name and the password each fit in 255 bytes.
pub const MAX_PROXY_CREDENTIAL_BYTES: usize = 255;

pub(in crate::jobs) fn validate(socks5: &Socks5Check, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    match &socks5.proxy {
        Some(proxy) => validate_proxy("socks5.proxy", proxy, v),
        None => v.push(FieldViolation::new("socks5.proxy", "is required")),
    }
    validate_host("socks5.target_host", &socks5.target_host, v);
    validate_port("socks5.target_port", socks5.target_port, v);
    spec_unless_violated(socks5, before, v)
}

/// A proxy under `field`: host and port, and a login of RFC 1929's size
/// (a password only with a user name).
pub(in crate::jobs) fn validate_proxy(field: &str, proxy: &Socks5Proxy, v: &mut Vec<FieldViolation>) {
    validate_host(&format!("{field}.host"), &proxy.host, v);
    validate_port(&format!("{field}.port"), proxy.port, v);
    if proxy.username.len() > MAX_PROXY_CREDENTIAL_BYTES {
        v.push(FieldViolation::new(
            format!("{field}.username"),
            format!("must be at most {MAX_PROXY_CREDENTIAL_BYTES} bytes"),
        ));
    }
    if proxy.password.len() > MAX_PROXY_CREDENTIAL_BYTES {
        v.push(FieldViolation::new(
            format!("{field}.password"),
            format!("must be at most {MAX_PROXY_CREDENTIAL_BYTES} bytes"),
        ));
    } else if !proxy.password.is_empty() && proxy.username.is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.password"),
            "needs a username (SOCKS5 logs in with both)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{HttpCheck, TcpCheck, job::Check};

    use super::super::{pairs, violations_of};
    use super::*;

    fn proxy() -> Socks5Proxy {
        Socks5Proxy {
            host: "proxy.example".into(),
            port: 1080,
            username: "u".repeat(255),
            password: "p".repeat(255),
        }
    }

    fn violations(change: impl FnOnce(&mut Socks5Check)) -> Vec<crate::error::FieldViolation> {
        let mut socks5 = Socks5Check {
            proxy: Some(proxy()),
            target_host: "example.com".into(),
            target_port: 443,
        };
        change(&mut socks5);
        violations_of(Check::Socks5(socks5))
    }

    #[test]
    fn valid_specs_are_accepted() {
        assert_eq!(violations(|_| {}), []);
        assert_eq!(
            violations(|s| {
                s.proxy = Some(Socks5Proxy {
                    host: "10.0.0.1".into(),
                    port: 1,
                    ..Socks5Proxy::default()
                });
                s.target_host = "[2001:db8::1]".into();
                s.target_port = 65_535;
            }),
            []
        );
        // A user without a password is a valid RFC 1929 login.
        assert_eq!(violations(|s| s.proxy.as_mut().unwrap().password.clear()), []);
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(
            pairs(&violations(|s| s.proxy = None)),
            [("socks5.proxy", "is required")]
        );
        let found = violations(|s| {
            s.proxy = Some(Socks5Proxy {
                host: String::new(),
                port: 70_000,
                username: "u".repeat(256),
                password: "p".repeat(256),
            });
            s.target_host = "bad host".into();
            s.target_port = 0;
        });
        assert_eq!(
            pairs(&found),
            [
                ("socks5.proxy.host", "is required"),
                ("socks5.proxy.port", "must be 1 to 65535"),
                ("socks5.proxy.username", "must be at most 255 bytes"),
                ("socks5.proxy.password", "must be at most 255 bytes"),
                ("socks5.target_host", "\"bad host\" is not a host name or IP address"),
                ("socks5.target_port", "must be 1 to 65535"),
            ]
        );
        let found = violations(|s| s.proxy.as_mut().unwrap().username.clear());
        assert_eq!(
            pairs(&found),
            [("socks5.proxy.password", "needs a username (SOCKS5 logs in with both)")]
        );
    }

    #[test]
    fn tcp_and_http_proxies_are_validated_alike() {
        let bad = Socks5Proxy {
            password: "secret".into(),
            ..Socks5Proxy::default()
        };
        let tcp = violations_of(Check::Tcp(TcpCheck {
            host: "db.example".into(),
            port: 5432,
            proxy: Some(bad.clone()),
            ..TcpCheck::default()
        }));
        assert_eq!(
            pairs(&tcp),
            [
                ("tcp.proxy.host", "is required"),
                ("tcp.proxy.port", "must be 1 to 65535"),
                ("tcp.proxy.password", "needs a username (SOCKS5 logs in with both)"),
            ]
        );
        let http = violations_of(Check::Http(HttpCheck {
            url: "https://shop.example/".into(),
            proxy: Some(bad),
            ..HttpCheck::default()
        }));
        let fields: Vec<_> = http.iter().map(|violation| violation.field.as_str()).collect();
        assert_eq!(fields, ["http.proxy.host", "http.proxy.port", "http.proxy.password"]);
    }
}
