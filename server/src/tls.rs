//! TLS on the server's one port: the certificate chain and private key from
//! PEM files (`--tls-cert`, `--tls-key`), offered with ALPN `h2` and
//! `http/1.1`, so gRPC, grpc-web, REST and the dashboard all speak it.

use std::{path::Path, sync::Arc};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

/// Protocols offered in the handshake, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why the certificate or key cannot be used; names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("MONITOR_TLS_CERT / --tls-cert {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("MONITOR_TLS_KEY / --tls-key {path}: {message}")]
    Key { path: String, message: String },
    #[error("MONITOR_TLS_CERT and MONITOR_TLS_KEY do not fit together: {0}")]
    Mismatch(rustls::Error),
}

/// The server's TLS settings, ready for the accept loop.
pub type ServerTls = Arc<rustls::ServerConfig>;

/// Reads the certificate chain (leaf first) and the private key (PKCS#8,
/// PKCS#1 or SEC1), both PEM.
pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
    let cert_error = |message: String| TlsError::Certificate {
        path: cert.display().to_string(),
        message,
    };
    let key_error = |message: String| TlsError::Key {
        path: key.display().to_string(),
        message,
    };
    let cert_pem = std::fs::read(cert).map_err(|err| cert_error(format!("cannot read: {err}")))?;
    let key_pem = std::fs::read(key).map_err(|err| key_error(format!("cannot read: {err}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| cert_error(format!("not PEM certificates: {err}")))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|err| key_error(format!("holds no usable PEM private key: {err}")))?;
    from_pem_parts(chain, key)
}

/// The server configuration for a parsed chain and key.
pub fn from_pem_parts(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<ServerTls, TlsError> {
    // The provider is named: reqwest or other crates may compile in a
    // second one, and then rustls cannot pick a default.
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Mismatch)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_a_certificate_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &issued.cert.pem());
        let key = write(dir.path(), "key.pem", &issued.signing_key.serialize_pem());
        let config = load(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_files_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &issued.cert.pem());
        let key = write(dir.path(), "key.pem", &issued.signing_key.serialize_pem());
        let other_key = write(dir.path(), "other-key.pem", &other.signing_key.serialize_pem());
        let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
        let missing = dir.path().join("missing.pem");
        for (cert, key, says) in [
            (&missing, &key, "MONITOR_TLS_CERT / --tls-cert"),
            (&cert, &missing, "MONITOR_TLS_KEY / --tls-key"),
            (&garbage, &key, "MONITOR_TLS_CERT / --tls-cert"),
            (&cert, &garbage, "MONITOR_TLS_KEY / --tls-key"),
            // A key where the certificate belongs, and the other way round.
            (&key, &key, "MONITOR_TLS_CERT / --tls-cert"),
            (&cert, &cert, "MONITOR_TLS_KEY / --tls-key"),
            (&cert, &other_key, "do not fit together"),
        ] {
            let err = load(cert, key).unwrap_err().to_string();
            assert!(err.contains(says), "{cert:?} {key:?}: {err}");
        }
    }
}
