//! The optional HTTPS listener, with a self-signed certificate made at
//! start-up whose validity window is configurable, so the monitor's checks
//! for untrusted and expired certificates have something real to fail on.
//!
//! rustls with the ring provider, no OpenSSL. The certificate is its own
//! issuer: a client that trusts it (as a root) accepts the mock, any other
//! client sees an unknown issuer, and a window in the past makes it expired.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why the TLS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-not-before-days ({not_before}) must be earlier than --tls-not-after-days ({not_after})")]
    EmptyValidity { not_before: i64, not_after: i64 },
    #[error("--tls-san must name at least one host or IP address")]
    NoSubjectAltNames,
    #[error("could not generate the certificate (check --tls-san): {0}")]
    Generate(#[from] rcgen::Error),
    #[error("could not configure TLS: {0}")]
    Configure(#[from] rustls::Error),
}

/// A freshly generated certificate and its key.
pub struct SelfSignedCertificate {
    /// The certificate, for clients to trust as a root.
    pub der: CertificateDer<'static>,
    /// The same certificate in PEM, as served on `/__cert.pem`.
    pub pem: String,
    /// Start of the validity window.
    pub not_before: OffsetDateTime,
    /// End of the validity window; in the past for an expired certificate.
    pub not_after: OffsetDateTime,
    /// The private key, PKCS#8 DER.
    key: PrivatePkcs8KeyDer<'static>,
    /// The same key in PEM, for tonic's TLS (the gRPC listener).
    key_pem: String,
}

impl SelfSignedCertificate {
    /// Generates a P-256 certificate valid from now + `tls_not_before_days`
    /// to now + `tls_not_after_days`, for the names in `tls_san`.
    pub fn generate(config: &TlsConfig) -> Result<Self, TlsError> {
        let (not_before_days, not_after_days) = (config.tls_not_before_days, config.tls_not_after_days);
        if not_before_days >= not_after_days {
            return Err(TlsError::EmptyValidity {
                not_before: not_before_days,
                not_after: not_after_days,
            });
        }
        if config.tls_san.is_empty() {
            return Err(TlsError::NoSubjectAltNames);
        }
        // Whole seconds: X.509 times carry no fractions.
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut params = CertificateParams::new(config.tls_san.clone())?;
        params.not_before = now + Duration::days(not_before_days);
        params.not_after = now + Duration::days(not_after_days);
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "monitor-mock");
        params.distinguished_name = name;
        let key_pair = KeyPair::generate()?;
        let certificate = params.self_signed(&key_pair)?;
        Ok(Self {
            der: certificate.der().clone(),
            pem: certificate.pem(),
            not_before: params.not_before,
            not_after: params.not_after,
            key: PrivatePkcs8KeyDer::from(key_pair.serialize_der()),
            key_pem: key_pair.serialize_pem(),
        })
    }
}

/// A bound listener whose connections speak TLS with one certificate,
/// offering HTTP/2 and HTTP/1.1 by ALPN.
pub struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    /// Served on `/__cert.pem`.
    certificate_pem: String,
    /// The key, for [`TlsListener::into_grpc`].
    key_pem: String,
}

impl TlsListener {
    pub fn new(listener: TcpListener, certificate: &SelfSignedCertificate) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der.clone()],
                PrivateKeyDer::Pkcs8(certificate.key.clone_key()),
            )?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_pem: certificate.pem.clone(),
            key_pem: certificate.key_pem.clone(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub(crate) async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.listener.accept().await
    }

    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    pub(crate) fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The listener and the certificate as tonic takes them: the gRPC
    /// server does its own TLS (ALPN h2).
    pub(crate) fn into_grpc(self) -> (TcpListener, tonic::transport::Identity) {
        let identity = tonic::transport::Identity::from_pem(&self.certificate_pem, &self.key_pem);
        (self.listener, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(not_before: i64, not_after: i64, sans: &[&str]) -> TlsConfig {
        TlsConfig {
            tls_not_before_days: not_before,
            tls_not_after_days: not_after,
            tls_san: sans.iter().map(|san| san.to_string()).collect(),
            tls_cert_out: None,
        }
    }

    #[test]
    fn validity_window_follows_the_configured_days() {
        let certificate = SelfSignedCertificate::generate(&config(-3, 7, &["localhost"])).unwrap();
        let now = OffsetDateTime::now_utc();
        let days = |offset: OffsetDateTime| (offset - now).whole_hours() as f64 / 24.0;
        assert!((days(certificate.not_before) + 3.0).abs() < 0.1);
        assert!((days(certificate.not_after) - 7.0).abs() < 0.1);
        assert!(certificate.pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn an_empty_window_names_both_flags() {
        let error = SelfSignedCertificate::generate(&config(5, 5, &["localhost"]))
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(message.contains("--tls-not-before-days"), "{message}");
        assert!(message.contains("--tls-not-after-days"), "{message}");
    }

    #[test]
    fn names_must_be_given_and_valid() {
        let error = SelfSignedCertificate::generate(&config(-1, 1, &[])).err().unwrap();
        assert!(error.to_string().contains("--tls-san"), "{error}");
        let error = SelfSignedCertificate::generate(&config(-1, 1, &["bad name ü"]))
            .err()
            .unwrap();
        assert!(error.to_string().contains("--tls-san"), "{error}");
    }
}
