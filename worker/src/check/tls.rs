//! TLS for the checks: rustls with the ring provider (like the mock; no
//! OpenSSL), the client configurations, and certificate errors in words.
//! Checks that speak TLS themselves (gRPC health, WebSocket) keep the two
//! configurations with their own ALPN in [`ClientConfigs`] and shake hands
//! with [`connect`].
//!
//! - Verifying (HTTPS): the platform verifier (on Linux, the system's CA
//!   bundle checked by webpki), so a target is trusted exactly when the
//!   host's other tools would trust it.
//! - Not verifying (`insecure_skip_tls_verify`): any certificate is
//!   accepted, but the handshake signatures are still checked, so the
//!   connection is at least to whoever holds the presented key.
//! - Inspecting (the TLS check): not verifying and without ALPN, so the
//!   handshake completes whatever the chain; the chain the server sent is
//!   then judged by [`system_roots_verifier`], webpki over the same system
//!   roots, which tells an untrusted chain from a name that does not match.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use monitor_proto::v1::CheckOutcome;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Failure;

/// HTTP/2 when the server offers it, else HTTP/1.1, as browsers do.
fn alpn_protocols() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The configuration that verifies certificates against the system roots.
pub(super) fn verifying_config() -> Result<ClientConfig, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = alpn_protocols();
    Ok(config)
}

/// The configuration for `insecure_skip_tls_verify`.
pub(super) fn insecure_config() -> Result<ClientConfig, rustls::Error> {
    let provider = provider();
    let verifier = AnyCertificate {
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn_protocols();
    Ok(config)
}

/// The configuration of the TLS check: any certificate, no ALPN (the
/// protocol spoken after the handshake is none of the check's business).
pub(super) fn inspecting_config() -> Result<ClientConfig, rustls::Error> {
    let mut config = insecure_config()?;
    config.alpn_protocols.clear();
    Ok(config)
}

/// webpki over the system's CA certificates (as the platform verifier
/// loads them on Linux), for judging a chain after the handshake.
pub(super) fn system_roots_verifier() -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if ignored > 0 {
        tracing::warn!(ignored, "system CA certificates that do not parse are ignored");
    }
    if roots.is_empty() {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(rustls::Error::General(format!(
            "no CA certificates were loaded from the system ({})",
            errors.join("; ")
        )));
    }
    roots_verifier(roots)
}

/// webpki over `roots`.
pub(super) fn roots_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|error| rustls::Error::General(error.to_string()))
}

/// Both configurations offering one set of ALPN protocols, built once and
/// shared by every check of a kind.
pub(super) struct ClientConfigs {
    verifying: Arc<ClientConfig>,
    insecure: Arc<ClientConfig>,
}

impl ClientConfigs {
    /// `alpn`: the protocols offered, most wanted first (`h2` for gRPC,
    /// `http/1.1` for the WebSocket upgrade).
    pub(super) fn new(alpn: &[&[u8]]) -> Result<Self, rustls::Error> {
        let with_alpn = |mut config: ClientConfig| {
            config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
            Arc::new(config)
        };
        Ok(Self {
            verifying: with_alpn(verifying_config()?),
            insecure: with_alpn(insecure_config()?),
        })
    }

    pub(super) fn get(&self, insecure_skip_tls_verify: bool) -> Arc<ClientConfig> {
        if insecure_skip_tls_verify {
            Arc::clone(&self.insecure)
        } else {
            Arc::clone(&self.verifying)
        }
    }
}

/// The TLS handshake over a connected `stream`, with SNI `host` (no SNI
/// for an IP address, whose certificate must name the address). A failure
/// is a `TLS` outcome in words; `address` names the peer in messages.
pub(super) async fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    stream: TcpStream,
    address: SocketAddr,
) -> Result<TlsStream<TcpStream>, Failure> {
    let bare = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    let server_name = ServerName::try_from(bare.to_owned())
        .map_err(|_| Failure::new(CheckOutcome::Tls, format!("{host:?} is not a valid TLS server name")))?;
    TlsConnector::from(config)
        .connect(server_name, stream)
        .await
        .map_err(|error| handshake_failure(&error, bare, address))
}

/// A failed handshake: the rustls error inside, or how the connection broke.
fn handshake_failure(error: &io::Error, host: &str, address: SocketAddr) -> Failure {
    if let Some(tls) = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return Failure::new(CheckOutcome::Tls, describe(tls, host));
    }
    let message = match error.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
            format!("TLS handshake failed: connection closed by the server ({address})")
        }
        io::ErrorKind::ConnectionReset => format!("TLS handshake failed: connection reset by the server ({address})"),
        _ => format!("TLS handshake failed: {error} ({address})"),
    };
    Failure::new(CheckOutcome::Tls, message)
}

/// Accepts every certificate; checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A failed handshake in a few words; `host` is the name the certificate
/// had to match.
pub(super) fn describe(error: &rustls::Error, host: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "certificate expired".to_owned(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not yet valid".to_owned()
            }
            CertificateError::UnknownIssuer => "certificate not trusted (unknown issuer)".to_owned(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate not valid for {host}")
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            other => format!("invalid certificate: {other}"),
        },
        rustls::Error::AlertReceived(alert) => format!("TLS handshake failed: the server sent alert {alert:?}"),
        rustls::Error::InvalidMessage(_) => format!("TLS handshake failed: the server does not speak TLS ({error})"),
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_build_and_offer_h2() {
        let verifying = verifying_config().unwrap();
        let insecure = insecure_config().unwrap();
        assert_eq!(verifying.alpn_protocols, alpn_protocols());
        assert_eq!(insecure.alpn_protocols, alpn_protocols());
    }

    #[test]
    fn the_inspecting_configuration_offers_no_protocol() {
        assert!(inspecting_config().unwrap().alpn_protocols.is_empty());
    }

    #[test]
    fn shared_configurations_offer_their_own_protocols() {
        let configs = ClientConfigs::new(&[b"h2"]).unwrap();
        assert_eq!(configs.get(false).alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(configs.get(true).alpn_protocols, [b"h2".to_vec()]);
        assert!(!Arc::ptr_eq(&configs.get(false), &configs.get(true)));
    }

    #[test]
    fn broken_handshakes_say_how() {
        let address = "127.0.0.1:443".parse().unwrap();
        let closed = handshake_failure(&io::Error::from(io::ErrorKind::UnexpectedEof), "h", address);
        assert_eq!(closed.outcome, CheckOutcome::Tls);
        assert_eq!(
            closed.error,
            "TLS handshake failed: connection closed by the server (127.0.0.1:443)"
        );
        let untrusted = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            handshake_failure(&untrusted, "h", address).error,
            "certificate not trusted (unknown issuer)"
        );
    }

    #[test]
    fn certificate_errors_read_naturally() {
        let invalid = |error| rustls::Error::InvalidCertificate(error);
        assert_eq!(
            describe(&invalid(CertificateError::Expired), "example.com"),
            "certificate expired"
        );
        assert_eq!(
            describe(
                &invalid(CertificateError::ExpiredContext {
                    time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(10)),
                    not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(5)),
                }),
                "example.com"
            ),
            "certificate expired"
        );
        assert_eq!(
            describe(&invalid(CertificateError::UnknownIssuer), "example.com"),
            "certificate not trusted (unknown issuer)"
        );
        assert_eq!(
            describe(&invalid(CertificateError::NotValidForName), "example.com"),
            "certificate not valid for example.com"
        );
        assert!(
            describe(
                &rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                "example.com"
            )
            .starts_with("TLS handshake failed")
        );
    }
}
