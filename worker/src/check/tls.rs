//! TLS for the checks: rustls with the ring provider (like the mock; no
//! OpenSSL), the client configurations, and certificate errors in words.
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

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_platform_verifier::BuilderVerifierExt as _;

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
