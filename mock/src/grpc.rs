//! The gRPC health service (`grpc.health.v1.Health`, tonic-health's) on
//! its own listeners: plaintext HTTP/2 with `--grpc-listen`, TLS with the
//! mock's certificate with `--grpc-tls-listen`. Tests set what `Check`
//! answers through control routes on the HTTP port:
//!
//! | route | what it does |
//! |---|---|
//! | `PUT /__grpc/health/{service}` (percent-encoded) | body `SERVING`, `NOT_SERVING` or `UNKNOWN`: `Check` answers that for `service`; `SERVICE_UNKNOWN` forgets the service; 204 |
//! | `PUT /__grpc/health` | the same for the server as a whole (service `""`) |
//! | `DELETE /__grpc/health/{service}` | forgets the service: `Check` answers `NOT_FOUND`, as the health spec says for an unknown service; 204 |
//! | `GET /__grpc/health/{service}` | the status as text, 404 when the service is unknown |
//!
//! At start (and after `POST /__reset`) the server as a whole is `SERVING`
//! and no other service is known.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tracing::{info, warn};

use crate::error::RequestError;
use crate::routes::Body;

/// Longest service name the control route takes.
const MAX_SERVICE_CHARS: usize = 256;
/// Largest control body (a status name).
const MAX_CONTROL_BODY_BYTES: usize = 64;

/// The statuses `Check` answers, shared by the control routes and every
/// gRPC listener.
pub(crate) struct GrpcHealth {
    /// The reporter and a copy of what it holds (it cannot be read back),
    /// changed together under one lock.
    state: Mutex<(HealthReporter, BTreeMap<String, ServingStatus>)>,
}

impl Default for GrpcHealth {
    fn default() -> Self {
        let reporter = HealthReporter::new();
        // HealthReporter::new registers the server as a whole as SERVING.
        let known = BTreeMap::from([(String::new(), ServingStatus::Serving)]);
        Self {
            state: Mutex::new((reporter, known)),
        }
    }
}

impl GrpcHealth {
    async fn set(&self, service: &str, status: ServingStatus) {
        let mut state = self.state.lock().await;
        state.0.set_service_status(service, status).await;
        state.1.insert(service.to_owned(), status);
    }

    async fn forget(&self, service: &str) {
        let mut state = self.state.lock().await;
        state.0.clear_service_status(service).await;
        state.1.remove(service);
    }

    async fn get(&self, service: &str) -> Option<ServingStatus> {
        self.state.lock().await.1.get(service).copied()
    }

    /// Back to the start: the server SERVING, no other service known.
    pub(crate) async fn reset(&self) {
        let mut state = self.state.lock().await;
        let (reporter, known) = &mut *state;
        for service in std::mem::take(known).into_keys() {
            reporter.clear_service_status(&service).await;
        }
        reporter.set_service_status("", ServingStatus::Serving).await;
        known.insert(String::new(), ServingStatus::Serving);
    }

    async fn service(&self) -> HealthServer<HealthService> {
        let reporter = self.state.lock().await.0.clone();
        HealthServer::new(HealthService::from_health_reporter(reporter))
    }
}

/// The status names of the control route (the proto's spelling).
fn status_name(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Unknown => "UNKNOWN",
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
    }
}

/// What a `PUT` body asks for: a status, or `None` to forget the service.
fn parse_status(body: &[u8]) -> Result<Option<ServingStatus>, RequestError> {
    let text = std::str::from_utf8(body).unwrap_or("").trim();
    match text {
        "SERVING" => Ok(Some(ServingStatus::Serving)),
        "NOT_SERVING" => Ok(Some(ServingStatus::NotServing)),
        "UNKNOWN" => Ok(Some(ServingStatus::Unknown)),
        "SERVICE_UNKNOWN" => Ok(None),
        _ => Err(RequestError::InvalidBody {
            detail: format!("the body must be SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN (got {text:?})"),
        }),
    }
}

fn check_service(service: &str) -> Result<(), RequestError> {
    if service.chars().count() > MAX_SERVICE_CHARS || !service.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(RequestError::InvalidBody {
            detail: format!("the service name must be at most {MAX_SERVICE_CHARS} visible ASCII characters"),
        });
    }
    Ok(())
}

/// `/__grpc/health` (`rest` empty) and `/__grpc/health/{service}`.
pub(crate) async fn control(
    rest: &str,
    parts: &Parts,
    body: Incoming,
    health: &GrpcHealth,
) -> Result<Response<Body>, RequestError> {
    let raw = rest.strip_prefix('/').unwrap_or(rest);
    let service = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let service = service.as_ref();
    check_service(service)?;
    let no_content = || {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        response
    };
    match parts.method {
        Method::PUT => {
            let body = Limited::new(body, MAX_CONTROL_BODY_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<LengthLimitError>() {
                        RequestError::BodyTooLarge {
                            limit: MAX_CONTROL_BODY_BYTES as u64,
                        }
                    } else {
                        RequestError::BodyUnreadable {
                            detail: error.to_string(),
                        }
                    }
                })?
                .to_bytes();
            match parse_status(&body)? {
                Some(status) => health.set(service, status).await,
                None => health.forget(service).await,
            }
            Ok(no_content())
        }
        Method::DELETE => {
            health.forget(service).await;
            Ok(no_content())
        }
        Method::GET | Method::HEAD => match health.get(service).await {
            Some(status) => {
                let mut response = Response::new(Full::new(Bytes::from(format!("{}\n", status_name(status)))));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Ok(response)
            }
            None => Err(RequestError::NotFound {
                path: parts.uri.path().to_owned(),
            }),
        },
        _ => Err(RequestError::MethodNotAllowed {
            method: parts.method.to_string(),
            path: "/__grpc/health/{service}",
            allowed: "GET, HEAD, PUT, DELETE",
        }),
    }
}

/// Serves the health service on `listener` (over TLS with `identity`)
/// until `shutdown` is cancelled, then lets calls in flight finish for at
/// most `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    identity: Option<Identity>,
    health: &GrpcHealth,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |address| address.to_string());
    let mut builder = Server::builder();
    if let Some(identity) = identity {
        builder = match builder.tls_config(ServerTlsConfig::new().identity(identity)) {
            Ok(builder) => builder,
            Err(error) => {
                warn!(%error, %address, "cannot configure TLS for gRPC: not serving");
                return;
            }
        };
    }
    let service = health.service().await;
    let server = builder
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.clone().cancelled_owned());
    let cut = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => match served {
            Ok(()) => info!(%address, "gRPC listener stopped"),
            Err(error) => warn!(%error, %address, "gRPC listener failed"),
        },
        () = cut => warn!(%address, "grace period over: dropping the gRPC connections still open"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_a_status_or_forget_the_service() {
        assert_eq!(parse_status(b"SERVING\n").unwrap(), Some(ServingStatus::Serving));
        assert_eq!(parse_status(b"NOT_SERVING").unwrap(), Some(ServingStatus::NotServing));
        assert_eq!(parse_status(b"UNKNOWN").unwrap(), Some(ServingStatus::Unknown));
        assert_eq!(parse_status(b"SERVICE_UNKNOWN").unwrap(), None);
        let error = parse_status(b"serving").unwrap_err().to_string();
        assert!(error.contains("SERVING, NOT_SERVING"), "{error}");
    }

    #[test]
    fn service_names_are_bounded_visible_ascii() {
        assert!(check_service("monitor.v1.JobService").is_ok());
        assert!(check_service("").is_ok());
        assert!(check_service("bad name").is_err());
        assert!(check_service(&"s".repeat(257)).is_err());
    }

    #[tokio::test]
    async fn reset_forgets_services_and_serves_the_server() {
        let health = GrpcHealth::default();
        health.set("a", ServingStatus::NotServing).await;
        health.set("", ServingStatus::NotServing).await;
        health.reset().await;
        assert_eq!(health.get("a").await, None);
        assert_eq!(health.get("").await, Some(ServingStatus::Serving));
    }
}
