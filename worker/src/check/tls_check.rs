//! The TLS check: connect, optionally upgrade an SMTP session (STARTTLS,
//! RFC 3207), complete a handshake with SNI whatever the certificate, and
//! then judge the chain the server sent: trusted by the system roots
//! ("chain"), valid for the name ("hostname"), and not expiring too soon
//! ("cert_days_remaining").
//!
//! The handshake accepts any chain (still checking the handshake's
//! signatures) so that an untrusted or mismatched certificate is reported
//! with everything else the server showed; the outcome TLS is kept for a
//! handshake that did not complete (not TLS, no common version or cipher,
//! an alert). The chain is then verified by webpki once with the checked
//! name: webpki checks the chain before the name, so a name error means
//! the chain itself was trusted; the name is also checked on its own, so
//! an untrusted chain still says whether the name matches.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use monitor_proto::v1::{
    AssertionResult, CertificateInfo, CheckOutcome, CheckResult, TlsAssertions, TlsCheck, TlsResult, TlsStartTls,
    check_result,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, ProtocolVersion};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::blocklist::Blocklist;
use super::connect::{self, ip_literal};
use super::{Failure, certificate, starttls, tls};

/// How TLS checks shake hands and judge chains; built once per runner.
pub(super) struct Inspector {
    /// Accepts any certificate, offers no ALPN ([`tls::inspecting_config`]).
    config: Arc<ClientConfig>,
    /// Judges the chain afterwards: webpki over the system roots.
    verifier: Arc<dyn ServerCertVerifier>,
}

impl Inspector {
    pub(super) fn new() -> Result<Self, rustls::Error> {
        Ok(Self::with_verifier(tls::system_roots_verifier()?))
    }

    /// With another judge of chains (tests trust their own CA).
    fn with_verifier(verifier: Arc<dyn ServerCertVerifier>) -> Self {
        let config = tls::inspecting_config().expect("the inspecting configuration builds with the ring provider");
        Self {
            config: Arc::new(config),
            verifier,
        }
    }
}

/// What the check saw before it ended, however it ended.
#[derive(Default)]
struct Seen {
    address: String,
    connect_time: Option<Duration>,
    handshake_time: Option<Duration>,
    protocol_version: String,
    cipher_suite: String,
    /// As the server sent it, leaf first.
    chain: Vec<CertificateDer<'static>>,
}

pub(super) async fn run(
    blocklist: &Blocklist,
    inspector: &Inspector,
    check: &TlsCheck,
    started: Instant,
    deadline: Instant,
) -> CheckResult {
    let mut seen = Seen::default();
    let ended = tokio::time::timeout_at(deadline, handshake(blocklist, inspector, check, &mut seen)).await;
    let duration = started.elapsed();
    let mut detail = TlsResult {
        address: std::mem::take(&mut seen.address),
        protocol_version: std::mem::take(&mut seen.protocol_version),
        cipher_suite: std::mem::take(&mut seen.cipher_suite),
        connect_time: seen.connect_time.map(Into::into),
        handshake_time: seen.handshake_time.map(Into::into),
        ..TlsResult::default()
    };
    let (failure, assertions) = match ended {
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(server_name)) => {
            let now = SystemTime::now();
            let results = judge(
                inspector.verifier.as_ref(),
                &seen.chain,
                &server_name,
                check.assertions.as_ref(),
                now,
                &mut detail,
            );
            let failure = super::first_failed(&results);
            (failure, results)
        }
    };
    let result = match failure {
        Some(failure) => failure.into_result(duration),
        None => CheckResult {
            duration: Some(duration.into()),
            outcome: CheckOutcome::Ok.into(),
            ..CheckResult::default()
        },
    };
    CheckResult {
        assertions,
        detail: Some(check_result::Detail::Tls(detail)),
        ..result
    }
}

/// The name the certificate must match and SNI carries (SNI is not sent
/// for an IP address).
fn server_name(check: &TlsCheck) -> Result<ServerName<'static>, Failure> {
    let name = if check.server_name.trim().is_empty() {
        check.host.trim()
    } else {
        check.server_name.trim()
    };
    if let Some(address) = ip_literal(name) {
        return Ok(ServerName::from(address));
    }
    ServerName::try_from(name.to_owned())
        .map_err(|_| Failure::new(CheckOutcome::Tls, format!("{name:?} cannot be a TLS server name")))
}

/// Connect, STARTTLS if asked, and the handshake, recording progress in
/// `seen`; returns the name the chain is judged for.
async fn handshake(
    blocklist: &Blocklist,
    inspector: &Inspector,
    check: &TlsCheck,
    seen: &mut Seen,
) -> Result<ServerName<'static>, Failure> {
    let port = connect::port(check.port)?;
    let server_name = server_name(check)?;
    let connected = connect::connect(blocklist, &check.host, port).await?;
    seen.address = connected.address.to_string();
    seen.connect_time = Some(connected.connect_time);
    let mut stream: TcpStream = connected.stream;
    if check.starttls() == TlsStartTls::Smtp {
        starttls::smtp(&mut stream).await?;
    }

    let handshake_started = Instant::now();
    let connector = TlsConnector::from(Arc::clone(&inspector.config));
    let tls = connector
        .connect(server_name.clone(), stream)
        .await
        .map_err(|error| handshake_failure(&error, &server_name))?;
    seen.handshake_time = Some(handshake_started.elapsed());
    let (_, connection) = tls.get_ref();
    seen.protocol_version = connection.protocol_version().map(version_name).unwrap_or_default();
    seen.cipher_suite = connection
        .negotiated_cipher_suite()
        .map(|suite| suite_name(suite.suite()))
        .unwrap_or_default();
    seen.chain = connection.peer_certificates().map(<[_]>::to_vec).unwrap_or_default();
    if seen.chain.is_empty() {
        return Err(Failure::new(CheckOutcome::Tls, "the server sent no certificate"));
    }
    // Dropped without close_notify: waiting for the peer's could outlast
    // the deadline, and the check has what it came for.
    Ok(server_name)
}

/// A handshake that did not complete, in words: rustls' reason when it
/// has one, else the connection's fate.
fn handshake_failure(error: &std::io::Error, server_name: &ServerName<'_>) -> Failure {
    if let Some(tls_error) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return Failure::new(CheckOutcome::Tls, tls::describe(tls_error, &server_name.to_str()));
    }
    let what = match error.kind() {
        std::io::ErrorKind::UnexpectedEof => "connection closed by the server".to_owned(),
        std::io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        _ => error.to_string(),
    };
    Failure::new(CheckOutcome::Tls, format!("TLS handshake failed: {what}"))
}

fn version_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The IANA name (rustls prefixes TLS 1.3 suites with `TLS13_`).
fn suite_name(suite: rustls::CipherSuite) -> String {
    match suite.as_str() {
        Some(name) => match name.strip_prefix("TLS13_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_owned(),
        },
        None => format!("{suite:?}"),
    }
}

/// The chain's verdicts into `detail` (chain, trust, name, days) and the
/// assertions: "chain", "hostname", "cert_days_remaining".
fn judge(
    verifier: &dyn ServerCertVerifier,
    chain: &[CertificateDer<'static>],
    server_name: &ServerName<'_>,
    assertions: Option<&TlsAssertions>,
    now: SystemTime,
    detail: &mut TlsResult,
) -> Vec<AssertionResult> {
    let default = TlsAssertions::default();
    let assertions = assertions.unwrap_or(&default);
    let name = server_name.to_str();
    let (leaf, intermediates) = chain
        .split_first()
        .expect("a chain has a leaf (checked after the handshake)");
    let unix_now = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let verified = verifier.verify_server_cert(
        leaf,
        intermediates,
        server_name,
        &[],
        UnixTime::since_unix_epoch(unix_now),
    );
    let chain_error = match verified {
        Ok(_) => None,
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => None,
        Err(error) => Some(tls::describe(&error, &name)),
    };
    let hostname_matches = ParsedCertificate::try_from(leaf)
        .and_then(|parsed| rustls::client::verify_server_name(&parsed, server_name))
        .is_ok();

    detail.chain = chain.iter().map(|der| certificate::describe(der)).collect();
    detail.chain_trusted = chain_error.is_none();
    detail.chain_error = chain_error.clone().unwrap_or_default();
    detail.hostname_matches = hostname_matches;
    let now_secs = i64::try_from(unix_now.as_secs()).unwrap_or(i64::MAX);
    let leaf_info = &detail.chain[0];
    if let Some(not_after) = leaf_info.not_after {
        detail.days_remaining = certificate::days_remaining(not_after.seconds, now_secs);
    }

    vec![
        chain_assertion(chain_error.as_deref(), assertions.allow_untrusted_chain),
        hostname_assertion(hostname_matches, &name, leaf_info, assertions.allow_hostname_mismatch),
        certificate::days_assertion(assertions.min_days_remaining, leaf_info, now_secs),
    ]
}

fn chain_assertion(chain_error: Option<&str>, allow_untrusted: bool) -> AssertionResult {
    let (passed, detail) = match chain_error {
        None => (true, "the system roots trust the chain".to_owned()),
        Some(error) if allow_untrusted => (true, format!("{error}; allowed by allow_untrusted_chain")),
        Some(error) => (false, error.to_owned()),
    };
    AssertionResult {
        name: "chain".to_owned(),
        passed,
        detail,
    }
}

fn hostname_assertion(matches: bool, name: &str, leaf: &CertificateInfo, allow_mismatch: bool) -> AssertionResult {
    let (passed, detail) = if matches {
        (true, format!("certificate valid for {name}"))
    } else {
        let names = if leaf.subject_alt_names.is_empty() {
            "no subject alternative names".to_owned()
        } else {
            leaf.subject_alt_names.join(", ")
        };
        let seen = format!("certificate not valid for {name} (it names {names})");
        if allow_mismatch {
            (true, format!("{seen}; allowed by allow_hostname_mismatch"))
        } else {
            (false, seen)
        }
    };
    AssertionResult {
        name: "hostname".to_owned(),
        passed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::RootCertStore;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::net::TcpListener;

    use super::*;

    /// A CA named `ca_name` and a leaf for `names` it signed, valid for
    /// `hours` from now.
    struct Pki {
        ca: CertificateDer<'static>,
        leaf: CertificateDer<'static>,
        leaf_key: PrivatePkcs8KeyDer<'static>,
    }

    fn pki(ca_name: &str, names: &[&str], hours: i64) -> Pki {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params =
            CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap();
        leaf_params.distinguished_name.push(DnType::CommonName, names[0]);
        leaf_params.not_before = now - time::Duration::days(1);
        leaf_params.not_after = now + time::Duration::hours(hours);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        Pki {
            ca: ca.der().clone(),
            leaf: leaf.der().clone(),
            leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
        }
    }

    fn trusting(ca: &CertificateDer<'static>) -> Inspector {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        Inspector::with_verifier(tls::roots_verifier(roots).unwrap())
    }

    /// Serves one TLS handshake with the leaf and the CA as its chain.
    async fn serve_once(pki: &Pki) -> std::net::SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.leaf.clone(), pki.ca.clone()],
                PrivateKeyDer::Pkcs8(pki.leaf_key.clone_key()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            // Held until the client goes away.
            if let Ok(mut tls) = acceptor.accept(stream).await {
                let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut [0_u8; 1]).await;
            }
        });
        address
    }

    fn loopback() -> Blocklist {
        Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
    }

    async fn check_against(pki: &Pki, server_name: &str, assertions: TlsAssertions) -> CheckResult {
        let address = serve_once(pki).await;
        let check = TlsCheck {
            host: "127.0.0.1".to_owned(),
            port: u32::from(address.port()),
            server_name: server_name.to_owned(),
            assertions: Some(assertions),
            ..TlsCheck::default()
        };
        let started = Instant::now();
        run(
            &loopback(),
            &trusting(&pki.ca),
            &check,
            started,
            started + Duration::from_secs(10),
        )
        .await
    }

    fn tls_detail(result: &CheckResult) -> &TlsResult {
        match &result.detail {
            Some(check_result::Detail::Tls(detail)) => detail,
            other => panic!("not a TLS result: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_chain_from_a_trusted_ca_passes_for_its_name() {
        // 90 days and a half: whole days are 90 whatever the clock's fraction.
        let pki = pki("Test CA", &["shop.test"], 90 * 24 + 12);
        let result = check_against(&pki, "shop.test", TlsAssertions::default()).await;
        assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
        let detail = tls_detail(&result);
        assert!(detail.chain_trusted);
        assert_eq!(detail.chain_error, "");
        assert!(detail.hostname_matches);
        assert_eq!(detail.chain.len(), 2);
        assert_eq!(detail.chain[0].subject, "CN=shop.test");
        assert_eq!(detail.chain[0].issuer, "CN=Test CA");
        assert_eq!(detail.chain[1].subject, "CN=Test CA");
        assert_eq!(detail.days_remaining, 90);
        assert_eq!(detail.protocol_version, "TLSv1.3");
        assert!(detail.cipher_suite.starts_with("TLS_"), "{}", detail.cipher_suite);
        let names: Vec<_> = result.assertions.iter().map(|a| (a.name.as_str(), a.passed)).collect();
        assert_eq!(
            names,
            [("chain", true), ("hostname", true), ("cert_days_remaining", true)]
        );
    }

    #[tokio::test]
    async fn a_trusted_chain_for_another_name_fails_only_the_hostname() {
        let pki = pki("Test CA", &["shop.test"], 90 * 24);
        let result = check_against(&pki, "other.test", TlsAssertions::default()).await;
        assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
        assert_eq!(
            result.error,
            "certificate not valid for other.test (it names shop.test)"
        );
        let detail = tls_detail(&result);
        assert!(detail.chain_trusted, "{detail:?}");
        assert!(!detail.hostname_matches);
        let names: Vec<_> = result.assertions.iter().map(|a| (a.name.as_str(), a.passed)).collect();
        assert_eq!(
            names,
            [("chain", true), ("hostname", false), ("cert_days_remaining", true)]
        );

        let allowed = TlsAssertions {
            allow_hostname_mismatch: true,
            ..TlsAssertions::default()
        };
        let result = check_against(&pki, "other.test", allowed).await;
        assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
        assert!(
            result.assertions[1]
                .detail
                .ends_with("allowed by allow_hostname_mismatch")
        );
    }

    #[tokio::test]
    async fn an_unknown_ca_is_untrusted_and_the_name_still_judged() {
        let pki = pki("Test CA", &["shop.test"], 90 * 24);
        let stranger = pki_ca_only();
        let address = serve_once(&pki).await;
        let check = TlsCheck {
            host: "127.0.0.1".to_owned(),
            port: u32::from(address.port()),
            server_name: "shop.test".to_owned(),
            ..TlsCheck::default()
        };
        let started = Instant::now();
        let result = run(
            &loopback(),
            &trusting(&stranger),
            &check,
            started,
            started + Duration::from_secs(10),
        )
        .await;
        assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
        assert_eq!(result.error, "certificate not trusted (unknown issuer)");
        let detail = tls_detail(&result);
        assert!(!detail.chain_trusted);
        assert_eq!(detail.chain_error, "certificate not trusted (unknown issuer)");
        assert!(detail.hostname_matches);
    }

    fn pki_ca_only() -> CertificateDer<'static> {
        pki("Another CA", &["unrelated.test"], 30 * 24).ca
    }

    #[tokio::test]
    async fn the_days_assertion_uses_the_minimum() {
        let pki = pki("Test CA", &["shop.test"], 9 * 24 + 12);
        let assertions = TlsAssertions {
            min_days_remaining: 14,
            ..TlsAssertions::default()
        };
        let result = check_against(&pki, "shop.test", assertions).await;
        assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
        assert!(
            result.error.starts_with("certificate expires in 9 days ("),
            "{}",
            result.error
        );
        assert!(result.error.ends_with("), expected more than 14"), "{}", result.error);
    }

    #[test]
    fn names_and_suites_read_as_iana_writes_them() {
        assert_eq!(version_name(ProtocolVersion::TLSv1_2), "TLSv1.2");
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256),
            "TLS_AES_128_GCM_SHA256"
        );
        assert_eq!(
            suite_name(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }

    #[test]
    fn the_server_name_defaults_to_the_host() {
        let check = |host: &str, server_name: &str| TlsCheck {
            host: host.to_owned(),
            server_name: server_name.to_owned(),
            ..TlsCheck::default()
        };
        assert_eq!(server_name(&check("shop.test", "")).unwrap().to_str(), "shop.test");
        assert_eq!(
            server_name(&check("10.0.0.1", "shop.test")).unwrap().to_str(),
            "shop.test"
        );
        assert_eq!(server_name(&check("[::1]", "")).unwrap().to_str(), "::1");
        assert_eq!(
            server_name(&check("bad name", "")).unwrap_err().outcome,
            CheckOutcome::Tls
        );
    }
}
