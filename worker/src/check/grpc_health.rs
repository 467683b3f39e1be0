//! The gRPC health check: one `grpc.health.v1.Health/Check` call for the
//! job's service, plaintext (HTTP/2 prior knowledge) or over TLS (ALPN
//! `h2`), healthy when the answer is `SERVING`.
//!
//! The worker opens the connection itself ([`connect::connect`], so the
//! blocklist applies to names and literals alike) and speaks HTTP/2 over it
//! with hyper; tonic-health's generated client encodes the call and reads
//! the status. One connection per check, driven inside the check's future:
//! when the check ends (answer, failure or deadline) the connection goes
//! with it. Errors of the connection, and answers that are not gRPC (an
//! HTTP error page), are [`Transport`] errors on the way into tonic, so a
//! status the server sent is told apart from a connection that broke,
//! never spoke HTTP/2 or reached a plain web server.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use http::header::CONTENT_TYPE;
use http::uri::{Authority, Scheme};
use http::{StatusCode, Uri};
use http_body_util::BodyExt as _;
use http_body_util::combinators::MapErr;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use monitor_proto::v1::{AssertionResult, CheckOutcome, CheckResult, GrpcHealthCheck, GrpcHealthResult, check_result};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tonic::Code;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{Failure, Shared, connect, tls};

/// Largest answer accepted: a `HealthCheckResponse` is a few bytes.
const MAX_RESPONSE_BYTES: usize = 4096;

/// ALPN of the TLS connections: gRPC is HTTP/2 only.
pub(super) const ALPN: &[&[u8]] = &[b"h2"];

/// What the check saw before it ended, however it ended.
#[derive(Default)]
struct Seen {
    /// The address connected to; empty until connected.
    address: String,
    /// The serving status answered; empty without an answer.
    status: String,
    /// The code of a failed call that the server (or its HTTP answer)
    /// gave; empty otherwise.
    grpc_code: String,
}

pub(super) async fn run(shared: &Shared, check: &GrpcHealthCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = Seen::default();
    let ended = tokio::time::timeout_at(deadline, call(shared, check, deadline, &mut seen)).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(())) => {
            let serving = serving(&seen.status);
            let failure =
                (!serving.passed).then(|| Failure::new(CheckOutcome::AssertionFailed, serving.detail.clone()));
            (failure, vec![serving])
        }
    };
    super::finished(
        duration,
        failure,
        assertions,
        check_result::Detail::GrpcHealth(GrpcHealthResult {
            status: seen.status,
            grpc_code: seen.grpc_code,
            response_time: Some(duration.into()),
            address: seen.address,
        }),
    )
}

/// The one assertion: the service is `SERVING`.
fn serving(status: &str) -> AssertionResult {
    let passed = status == ServingStatus::Serving.as_str_name();
    let detail = if passed {
        format!("status {status}")
    } else {
        format!("status {status}, expected SERVING")
    };
    AssertionResult {
        name: "serving".to_owned(),
        passed,
        detail,
    }
}

/// Connects and makes the call, recording what it sees in `seen`.
async fn call(shared: &Shared, check: &GrpcHealthCheck, deadline: Instant, seen: &mut Seen) -> Result<(), Failure> {
    let port = connect::port(check.port)?;
    let metadata = metadata(check, &shared.user_agent)?;
    let host = check.host.trim();
    let origin = origin(host, port, check.tls)?;

    let connected = connect::connect(&shared.blocklist, host, port).await?;
    let address = connected.address;
    seen.address = address.to_string();
    if check.tls {
        let config = shared.grpc_tls.get(check.insecure_skip_tls_verify);
        let stream = tls::connect(config, host, connected.stream, address).await?;
        exchange(stream, origin, metadata, &check.service, deadline, seen).await
    } else {
        exchange(connected.stream, origin, metadata, &check.service, deadline, seen).await
    }
}

/// HTTP/2 over `stream` and the call, the connection driven here.
async fn exchange<S>(
    stream: S,
    origin: Uri,
    metadata: MetadataMap,
    service: &str,
    deadline: Instant,
    seen: &mut Seen,
) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .map_err(|error| transport_failure(&Transport::Http2(error), seen))?;
    let mut client =
        HealthClient::with_origin(Http2Service { sender }, origin).max_decoding_message_size(MAX_RESPONSE_BYTES);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    *request.metadata_mut() = metadata;
    // The server may give up when the check will (grpc-timeout).
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));

    let mut answer = pin!(client.check(request));
    let mut connection = pin!(connection);
    let mut connection_ended = false;
    // The connection must be polled for the call to make progress; if it
    // ends first, the call fails with its error right after.
    let answer = loop {
        tokio::select! {
            answer = &mut answer => break answer,
            _ended = &mut connection, if !connection_ended => connection_ended = true,
        }
    };
    match answer {
        Ok(response) => {
            let status = response.into_inner().status;
            seen.status = ServingStatus::try_from(status)
                .map_or_else(|_| status.to_string(), |status| status.as_str_name().to_owned());
            Ok(())
        }
        Err(status) => {
            if let Some(transport) = status.source().and_then(|source| source.downcast_ref::<Transport>()) {
                return Err(transport_failure(transport, seen));
            }
            seen.grpc_code = code_name(status.code()).to_owned();
            Err(status_failure(&status))
        }
    }
}

/// The job's metadata and the worker's `user-agent` (unless the job sets
/// one). Invalid names or values are refused on create; one stored before
/// that rule fails the check rather than the worker.
fn metadata(check: &GrpcHealthCheck, user_agent: &str) -> Result<MetadataMap, Failure> {
    let mut metadata = MetadataMap::new();
    for entry in &check.metadata {
        let key = AsciiMetadataKey::from_bytes(entry.name.to_ascii_lowercase().as_bytes()).map_err(|_| {
            Failure::new(
                CheckOutcome::ProtocolError,
                format!("invalid metadata name {:?}", entry.name),
            )
        })?;
        let value = AsciiMetadataValue::try_from(entry.value.as_str()).map_err(|_| {
            Failure::new(
                CheckOutcome::ProtocolError,
                format!("invalid value for metadata {:?}", entry.name),
            )
        })?;
        metadata.append(key, value);
    }
    if !metadata.contains_key("user-agent")
        && let Ok(value) = AsciiMetadataValue::try_from(user_agent)
    {
        metadata.insert("user-agent", value);
    }
    Ok(metadata)
}

/// `http(s)://host:port`: the `:scheme` and `:authority` of the call.
fn origin(host: &str, port: u16, tls: bool) -> Result<Uri, Failure> {
    let bare = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    let authority = if bare.contains(':') {
        format!("[{bare}]:{port}")
    } else {
        format!("{bare}:{port}")
    };
    let authority = Authority::try_from(authority)
        .map_err(|_| Failure::new(CheckOutcome::Connect, format!("{host:?} is not a valid host")))?;
    let scheme = if tls { Scheme::HTTPS } else { Scheme::HTTP };
    Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|_| Failure::new(CheckOutcome::Connect, format!("{host:?} is not a valid host")))
}

/// A failed call with the status the server gave.
fn status_failure(status: &tonic::Status) -> Failure {
    let code = code_name(status.code());
    let message = status.message();
    let error = if message.is_empty() {
        format!("gRPC status {code}")
    } else {
        format!("gRPC status {code}: {}", clipped(message))
    };
    let outcome = match status.code() {
        Code::DeadlineExceeded => CheckOutcome::Timeout,
        _ => CheckOutcome::ProtocolError,
    };
    Failure::new(outcome, error)
}

/// The connection failed under the call (closed, reset, not HTTP/2), or
/// the answer was not gRPC; the latter gets the code the gRPC spec
/// derives from its HTTP status.
fn transport_failure(transport: &Transport, seen: &mut Seen) -> Failure {
    let error = match transport {
        Transport::Http2(error) => error,
        Transport::NotGrpc { status, content_type } => {
            seen.grpc_code = code_name(code_of_http_status(*status)).to_owned();
            let content_type = if content_type.is_empty() {
                "no content-type".to_owned()
            } else {
                format!("content-type {content_type}")
            };
            return Failure::new(
                CheckOutcome::ProtocolError,
                format!("not a gRPC answer: HTTP {} ({content_type})", status.as_u16()),
            );
        }
    };
    let mut io_kind = None;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = current.source();
    }
    let message = match io_kind {
        Some(io::ErrorKind::ConnectionReset) => "connection reset by the server".to_owned(),
        Some(io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe) => {
            "connection closed by the server".to_owned()
        }
        _ if error.is_closed() || error.is_canceled() || error.is_incomplete_message() => {
            "connection closed by the server before answering".to_owned()
        }
        _ => format!("no gRPC answer (HTTP/2 failed: {})", causes(error)),
    };
    Failure::new(CheckOutcome::ProtocolError, message)
}

/// The gRPC spec's code for an HTTP answer without a gRPC status
/// (`http-grpc-status-mapping.md`).
fn code_of_http_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// An answer is gRPC when it carries a gRPC status, or is a 200 of a gRPC
/// content type (the status then comes in the trailers).
fn is_grpc(response: &http::Response<Incoming>) -> bool {
    let headers = response.headers();
    headers.contains_key("grpc-status")
        || (response.status() == StatusCode::OK
            && headers
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("application/grpc")))
}

/// An error and its causes, `: `-separated, without repeats (hyper's
/// messages often repeat their source's).
fn causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let next = current.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = current.source();
    }
    text
}

/// A server's status message is its own text: keep it short.
fn clipped(message: &str) -> String {
    const MAX_CHARS: usize = 200;
    match message.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message.to_owned(),
    }
}

/// The code as the gRPC spec spells it (`NOT_FOUND`).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Not a status the server sent: the HTTP/2 connection failed, or the
/// answer was not gRPC.
#[derive(Debug, thiserror::Error)]
enum Transport {
    #[error(transparent)]
    Http2(hyper::Error),
    #[error("not a gRPC answer: HTTP {status}")]
    NotGrpc { status: StatusCode, content_type: String },
}

type ResponseBody = MapErr<Incoming, fn(hyper::Error) -> Transport>;

/// hyper's HTTP/2 sender as the service tonic's client calls.
struct Http2Service {
    sender: http2::SendRequest<tonic::body::Body>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Http2Service {
    type Response = http::Response<ResponseBody>;
    type Error = Transport;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Transport>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Transport>> {
        self.sender.poll_ready(cx).map_err(Transport::Http2)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.sender.send_request(request);
        Box::pin(async move {
            let response = response.await.map_err(Transport::Http2)?;
            if !is_grpc(&response) {
                let content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                    .unwrap_or_default();
                return Err(Transport::NotGrpc {
                    status: response.status(),
                    content_type,
                });
            }
            Ok(response.map(|body| body.map_err(Transport::Http2 as fn(hyper::Error) -> Transport)))
        })
    }
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::HttpHeader;

    use super::*;

    fn check(metadata: &[(&str, &str)]) -> GrpcHealthCheck {
        GrpcHealthCheck {
            host: "127.0.0.1".into(),
            port: 50051,
            metadata: metadata
                .iter()
                .map(|(name, value)| HttpHeader {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
            ..GrpcHealthCheck::default()
        }
    }

    #[test]
    fn serving_is_the_only_healthy_status() {
        let ok = serving("SERVING");
        assert!(ok.passed);
        assert_eq!((ok.name.as_str(), ok.detail.as_str()), ("serving", "status SERVING"));
        for status in ["NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN", "7"] {
            let failed = serving(status);
            assert!(!failed.passed, "{status}");
            assert_eq!(failed.detail, format!("status {status}, expected SERVING"));
        }
    }

    #[test]
    fn metadata_is_lower_cased_and_the_user_agent_added_unless_set() {
        let metadata = metadata(&check(&[("X-Tenant", "a"), ("x-tenant", "b")]), "monitor-worker/1").unwrap();
        let tenants: Vec<_> = metadata
            .get_all("x-tenant")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(tenants, ["a", "b"]);
        assert_eq!(metadata.get("user-agent").unwrap(), "monitor-worker/1");
        let own = metadata_of(&[("User-Agent", "mine")]);
        assert_eq!(own.get("user-agent").unwrap(), "mine");
    }

    fn metadata_of(entries: &[(&str, &str)]) -> MetadataMap {
        metadata(&check(entries), "monitor-worker/1").unwrap()
    }

    #[test]
    fn bad_metadata_fails_the_check_without_panicking() {
        for (entry, message) in [
            (("bad name", "v"), "invalid metadata name \"bad name\""),
            (("x-data-bin", "v"), "invalid metadata name \"x-data-bin\""),
            (("x-a", "line\nbreak"), "invalid value for metadata \"x-a\""),
        ] {
            let failure = metadata(&check(&[entry]), "ua").unwrap_err();
            assert_eq!(failure.outcome, CheckOutcome::ProtocolError);
            assert_eq!(failure.error, message);
        }
    }

    #[test]
    fn origins_bracket_ipv6_and_follow_tls() {
        assert_eq!(origin("::1", 50051, false).unwrap().to_string(), "http://[::1]:50051/");
        assert_eq!(origin("[::1]", 443, true).unwrap().to_string(), "https://[::1]:443/");
        assert_eq!(
            origin("grpc.example", 8443, true).unwrap().to_string(),
            "https://grpc.example:8443/"
        );
        assert_eq!(origin("bad host", 1, false).unwrap_err().outcome, CheckOutcome::Connect);
    }

    #[test]
    fn statuses_are_protocol_errors_but_deadlines_are_timeouts() {
        let failure = status_failure(&tonic::Status::not_found("service not registered"));
        assert_eq!(failure.outcome, CheckOutcome::ProtocolError);
        assert_eq!(failure.error, "gRPC status NOT_FOUND: service not registered");
        let failure = status_failure(&tonic::Status::new(Code::Unimplemented, ""));
        assert_eq!(failure.error, "gRPC status UNIMPLEMENTED");
        let failure = status_failure(&tonic::Status::deadline_exceeded("too slow"));
        assert_eq!(failure.outcome, CheckOutcome::Timeout);
        let long = status_failure(&tonic::Status::internal("x".repeat(500)));
        assert!(long.error.chars().count() < 250, "{}", long.error);
    }

    #[test]
    fn http_answers_get_the_specs_codes() {
        for (status, code) in [
            (400, "INTERNAL"),
            (404, "UNIMPLEMENTED"),
            (503, "UNAVAILABLE"),
            (200, "UNKNOWN"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(code_name(code_of_http_status(status)), code);
        }
        let mut seen = Seen::default();
        let failure = transport_failure(
            &Transport::NotGrpc {
                status: StatusCode::NOT_FOUND,
                content_type: "text/html".into(),
            },
            &mut seen,
        );
        assert_eq!(failure.outcome, CheckOutcome::ProtocolError);
        assert_eq!(failure.error, "not a gRPC answer: HTTP 404 (content-type text/html)");
        assert_eq!(seen.grpc_code, "UNIMPLEMENTED");
    }

    #[test]
    fn every_code_has_its_spec_name() {
        for (number, name) in [
            (0, "OK"),
            (5, "NOT_FOUND"),
            (12, "UNIMPLEMENTED"),
            (16, "UNAUTHENTICATED"),
        ] {
            assert_eq!(code_name(Code::from_i32(number)), name);
        }
    }
}
