//! The gRPC health check against real servers: the mock's health service
//! (plaintext and TLS, statuses set through its control route), and
//! in-test tonic servers for what the mock does not do (no health service,
//! recording metadata), plus listeners that never answer or do not speak
//! HTTP/2.

use std::net::SocketAddr;
use std::time::Duration;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, GrpcHealthCheck, GrpcHealthResult, HttpHeader, Job, check_result, job,
};
use monitor_testkit::free_port;
use monitor_testkit::mock::{MockServer, tls_config};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};

/// Long enough that only the checks meant to time out do.
const GENEROUS: Duration = Duration::from_secs(10);

const MOCK_FLAGS: &[&str] = &["--latency-ms=0", "--shutdown-grace-ms=0"];

/// The default configuration with loopback opened (`--allow-net`).
fn runner() -> CheckRunner {
    let loopback = ["127.0.0.0/8", "::1/128"].map(|net| net.parse().unwrap());
    CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults([], loopback.to_vec()),
        ..CheckConfig::default()
    })
    .expect("runner builds")
}

fn check(address: SocketAddr, service: &str) -> GrpcHealthCheck {
    GrpcHealthCheck {
        host: address.ip().to_string(),
        port: u32::from(address.port()),
        service: service.to_owned(),
        ..GrpcHealthCheck::default()
    }
}

async fn run_with(runner: &CheckRunner, check: GrpcHealthCheck, timeout: Duration) -> CheckResult {
    let job = Job {
        timeout: Some(timeout.into()),
        check: Some(job::Check::GrpcHealth(check)),
        ..Job::default()
    };
    runner.run(&job).await
}

async fn run(check: GrpcHealthCheck) -> CheckResult {
    run_with(&runner(), check, GENEROUS).await
}

fn detail(result: &CheckResult) -> &GrpcHealthResult {
    match &result.detail {
        Some(check_result::Detail::GrpcHealth(detail)) => detail,
        other => panic!("not a gRPC health result: {other:?}"),
    }
}

async fn grpc_mock() -> MockServer {
    MockServer::start_with_grpc(MOCK_FLAGS, None).await.0
}

#[tokio::test]
async fn a_serving_server_passes_with_its_status_and_address() {
    let mock = grpc_mock().await;
    let address = mock.grpc_address.unwrap();
    let result = run(check(address, "")).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    assert_eq!(result.error, "");
    let detail = detail(&result);
    assert_eq!(detail.status, "SERVING");
    assert_eq!(detail.grpc_code, "");
    assert_eq!(detail.address, address.to_string());
    assert!(detail.response_time.is_some());
    assert_eq!(result.assertions.len(), 1);
    assert_eq!(result.assertions[0].name, "serving");
    assert!(result.assertions[0].passed);
    assert_eq!(result.assertions[0].detail, "status SERVING");
}

#[tokio::test]
async fn a_service_set_serving_passes_and_not_serving_fails_the_assertion() {
    let mock = grpc_mock().await;
    let address = mock.grpc_address.unwrap();
    mock.set_grpc_health("shop.Cart", "SERVING").await;
    let result = run(check(address, "shop.Cart")).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);

    mock.set_grpc_health("shop.Cart", "NOT_SERVING").await;
    let result = run(check(address, "shop.Cart")).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed);
    assert_eq!(result.error, "status NOT_SERVING, expected SERVING");
    assert_eq!(detail(&result).status, "NOT_SERVING");
    assert_eq!(detail(&result).grpc_code, "");
    assert!(!result.assertions[0].passed);

    mock.set_grpc_health("shop.Cart", "UNKNOWN").await;
    let result = run(check(address, "shop.Cart")).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed);
    assert_eq!(result.error, "status UNKNOWN, expected SERVING");
}

/// The health spec: Check for a service the server does not know answers
/// the status NOT_FOUND (Watch would say SERVICE_UNKNOWN).
#[tokio::test]
async fn an_unknown_service_is_a_protocol_error_not_found() {
    let mock = grpc_mock().await;
    let address = mock.grpc_address.unwrap();
    mock.set_grpc_health("shop.Cart", "SERVING").await;
    mock.set_grpc_health("shop.Cart", "SERVICE_UNKNOWN").await;
    for service in ["shop.Cart", "no.such.Service"] {
        let result = run(check(address, service)).await;
        assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{service}");
        assert_eq!(result.error, "gRPC status NOT_FOUND: service not registered");
        assert_eq!(detail(&result).grpc_code, "NOT_FOUND");
        assert_eq!(detail(&result).status, "");
        assert!(result.assertions.is_empty());
    }
}

/// A tonic server with no services answers every call UNIMPLEMENTED.
#[tokio::test]
async fn a_server_without_the_health_service_is_unimplemented() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_routes(Routes::default())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let result = run(check(address, "")).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    assert_eq!(detail(&result).grpc_code, "UNIMPLEMENTED");
    assert!(
        result.error.starts_with("gRPC status UNIMPLEMENTED"),
        "{}",
        result.error
    );
    assert_eq!(detail(&result).address, address.to_string());
}

/// The mock's HTTP port speaks HTTP/2 but not gRPC: its 404 maps to
/// UNIMPLEMENTED (the gRPC spec's HTTP-to-gRPC status mapping).
#[tokio::test]
async fn an_http_server_answers_unimplemented_through_its_404() {
    let mock = grpc_mock().await;
    let result = run(check(mock.address, "")).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    assert_eq!(detail(&result).grpc_code, "UNIMPLEMENTED");
    assert_eq!(
        result.error,
        "not a gRPC answer: HTTP 404 (content-type application/json)"
    );
}

/// A server that answers in HTTP/1.1: no HTTP/2, no gRPC status at all.
/// It keeps the connection open (reading on), so the client meets the
/// bytes that are not an HTTP/2 frame rather than a closed socket.
#[tokio::test]
async fn a_server_that_does_not_speak_http2_is_a_protocol_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut preface = [0; 24];
        let _ = stream.read_exact(&mut preface).await;
        let _ = stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    });
    let result = run(check(address, "")).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    // "HTTP/1.1 4" read as a frame header announces a 4.7 MB frame.
    assert_eq!(
        result.error,
        "no gRPC answer (HTTP/2 failed: http2 error: connection error detected: frame with invalid size)"
    );
    assert_eq!(detail(&result).grpc_code, "", "not a status the server sent");
    assert_eq!(detail(&result).status, "");
}

#[tokio::test]
async fn the_metadata_reaches_the_server_with_the_user_agent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, mut received) = mpsc::unbounded_channel::<MetadataMap>();
    let health = HealthService::from_health_reporter(HealthReporter::new());
    let recording = HealthServer::with_interceptor(health, move |request: tonic::Request<()>| {
        let _ = seen.send(request.metadata().clone());
        Ok(request)
    });
    tokio::spawn(
        Server::builder()
            .add_service(recording)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut spec = check(address, "");
    spec.metadata = vec![
        HttpHeader {
            name: "Authorization".into(),
            value: "Bearer t0ken".into(),
        },
        HttpHeader {
            name: "x-tenant".into(),
            value: "shop".into(),
        },
    ];
    let result = run(spec).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    let metadata = received.recv().await.expect("the call reached the server");
    assert_eq!(metadata.get("authorization").unwrap(), "Bearer t0ken");
    assert_eq!(metadata.get("x-tenant").unwrap(), "shop");
    let user_agent = metadata.get("user-agent").unwrap().to_str().unwrap();
    assert!(user_agent.starts_with("monitor-worker/"), "{user_agent}");
    assert!(metadata.get("grpc-timeout").is_some(), "the deadline is sent along");
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_needs_insecure_skip_tls_verify() {
    let (mock, _certificate) = MockServer::start_with_grpc(MOCK_FLAGS, Some(&tls_config(-1, 30))).await;
    let address = mock.grpc_tls_address.unwrap();
    let mut spec = check(address, "");
    spec.tls = true;

    let result = run(spec.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls);
    assert_eq!(result.error, "certificate not trusted (unknown issuer)");
    assert_eq!(detail(&result).address, address.to_string());
    assert_eq!(detail(&result).status, "");

    spec.insecure_skip_tls_verify = true;
    let result = run(spec.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    assert_eq!(detail(&result).status, "SERVING");

    // By name: the certificate is for localhost too, and SNI carries it.
    spec.host = "localhost".into();
    let result = run(spec).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let port = free_port();
    let result = run(check(SocketAddr::from(([127, 0, 0, 1], port)), "")).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect);
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));
    assert_eq!(detail(&result).address, "");
}

/// The server reads but never answers; the check times out, and its
/// connection is closed afterwards (nothing of it is left running).
#[tokio::test]
async fn a_server_that_never_answers_times_out_and_the_connection_is_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (closed, mut closures) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let closed = closed.clone();
            tokio::spawn(async move {
                let mut received = Vec::new();
                let _ = stream.read_to_end(&mut received).await;
                let _ = closed.send(());
            });
        }
    });
    let result = run_with(&runner(), check(address, ""), Duration::from_millis(300)).await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout);
    assert_eq!(result.error, "timed out after 300ms");
    assert_eq!(detail(&result).address, address.to_string(), "connected before waiting");
    assert_eq!(detail(&result).status, "");
    let closure = tokio::time::timeout(GENEROUS, closures.recv()).await;
    assert_eq!(closure, Ok(Some(())), "the worker closes the connection");
}

#[tokio::test]
async fn blocked_and_unresolvable_hosts_are_not_contacted() {
    let mock = grpc_mock().await;
    let address = mock.grpc_address.unwrap();
    let default = CheckRunner::new(CheckConfig::default()).unwrap();
    let result = run_with(&default, check(address, ""), GENEROUS).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked);
    assert!(result.error.contains("--allow-net 127.0.0.0/8"), "{}", result.error);

    let mut unresolvable = check(address, "");
    unresolvable.host = "nonexistent.invalid".into();
    let result = run(unresolvable).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns);
    assert!(
        result.error.starts_with("could not resolve nonexistent.invalid"),
        "{}",
        result.error
    );
}
