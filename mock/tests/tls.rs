//! The HTTPS listener: served with the generated certificate, trusted only
//! by clients that trust that certificate, and expired when asked to be.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use monitor_mock::{SelfSignedCertificate, TlsConfig};
use monitor_testkit::mock::{MockServer, tls_config};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Starts a mock with a TLS listener; returns it, the TLS port and the cert.
async fn start(config: &TlsConfig) -> (MockServer, std::net::SocketAddr, SelfSignedCertificate) {
    let (mock, certificate) = MockServer::start_with_tls(&["--latency-ms=0"], config).await;
    let tls_address = mock.tls_address.expect("started with TLS");
    (mock, tls_address, certificate)
}

fn client_config(roots: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add((*root).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

async fn connect(address: std::net::SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// The rustls error behind a failed handshake.
fn rustls_error(error: &std::io::Error) -> &rustls::Error {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {error:?}"))
}

#[tokio::test]
async fn serves_https_with_the_generated_certificate() {
    let (mock, address, certificate) = start(&tls_config(-1, 30)).await;
    let stream = connect(address, client_config(&[&certificate.der], &[b"http/1.1"]))
        .await
        .expect("a client trusting the certificate connects");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let served = stream.get_ref().1.peer_certificates().unwrap();
    assert_eq!(served, std::slice::from_ref(&certificate.der));

    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/status/201")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "201 Created\n");

    // HTTPS traffic lands in the same stats, and the PEM is served for clients.
    assert_eq!(mock.stats().await.by_route["status"].total, 1);
    let pem = mock.get("/__cert.pem").await.text().await.unwrap();
    assert_eq!(pem, certificate.pem);
}

#[tokio::test]
async fn negotiates_http2_by_alpn() {
    let (_mock, address, certificate) = start(&tls_config(-1, 30)).await;
    let stream = connect(address, client_config(&[&certificate.der], &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("https://localhost/__ping")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
}

#[tokio::test]
async fn a_client_without_the_certificate_sees_an_unknown_issuer() {
    let (mock, address, _certificate) = start(&tls_config(-1, 30)).await;
    let error = connect(address, client_config(&[], &[])).await.unwrap_err();
    assert_eq!(
        rustls_error(&error),
        &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    // The failed handshake is not a request: nothing counted, mock still up.
    assert_eq!(mock.stats().await.total, 0);
}

#[tokio::test]
async fn an_expired_configuration_serves_an_expired_certificate() {
    let (_mock, address, certificate) = start(&tls_config(-30, -2)).await;

    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate.der).unwrap();
    let now = x509_parser::time::ASN1Time::now();
    assert!(
        parsed.validity().not_after < now,
        "notAfter {:?}",
        parsed.validity().not_after
    );
    assert!(parsed.validity().not_before < parsed.validity().not_after);
    let days_ago = (now.timestamp() - parsed.validity().not_after.timestamp()) / 86_400;
    assert_eq!(days_ago, 2);

    // A client that trusts the certificate still refuses it: it has expired.
    let error = connect(address, client_config(&[&certificate.der], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
                | rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_future_window_serves_a_not_yet_valid_certificate() {
    let (_mock, address, certificate) = start(&tls_config(2, 30)).await;
    let error = connect(address, client_config(&[&certificate.der], &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            rustls_error(&error),
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidYetContext { .. })
                | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidYet)
        ),
        "{error:?}"
    );
}

#[test]
fn certificate_names_the_configured_hosts() {
    let certificate = SelfSignedCertificate::generate(&tls_config(-1, 1)).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&certificate.der).unwrap();
    let names = parsed.subject_alternative_name().unwrap().unwrap();
    use x509_parser::extensions::GeneralName;
    let names = &names.value.general_names;
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&GeneralName::DNSName("localhost")), "{names:?}");
    assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])), "{names:?}");
}
