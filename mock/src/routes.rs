//! The mock website's routes: the seeded `/website_mock`, the scenario
//! routes for the monitor's error paths, and the `/__*` control routes.
//!
//! | route | answer |
//! |---|---|
//! | `/website_mock` | the next seeded draw; `?status=`, `?delay_ms=`, `?size=` override one field; `?seed=`/`?n=` ask for draw `(seed, n)` without taking a number of the global sequence |
//! | `/status/{code}` | that status |
//! | `/delay/{ms}` | 200 after `ms` milliseconds |
//! | `/bytes/{n}` | `n` deterministic bytes (`?seed=`, default the global seed; a shorter body is a prefix of a longer one) |
//! | `/redirect/{n}` | 302 to `/redirect/{n-1}`; `/redirect/0` answers 200 |
//! | `/flaky?fail_every=N` | the k-th request since start or reset fails (`fail_status`, default 503) when k is a multiple of N, else 200 |
//! | `/hang` | never answers (the connection closes when the mock shuts down) |
//! | `/reset` | closes the connection with a TCP reset, no response bytes (on HTTP/2 this ends every stream of the connection) |
//! | `/echo` | the method, URI, version, headers and body it received, as JSON |
//! | `/ws/echo`, `/ws/greet`, `/ws/silent`, `/ws/close` | WebSocket routes (see [`crate::websocket`]) |
//! | `GET /__ping` | 200 `ok`, for health checks |
//! | `GET /__stats` | [`StatsSnapshot`] as JSON |
//! | `POST /__reset` | zeroes the stats, restarts both sequences, forgets the hook receivers and the gRPC health statuses set; 204 |
//! | `GET /__cert.pem` | the TLS listener's certificate (404 without `--tls-listen`) |
//! | `POST /hooks/{kind}/{name}`, `/__hooks/...` | the recording receiver of notifications (see [`crate::hooks`]) |
//! | `/__grpc/health/...` | what the gRPC health service answers (see [`crate::grpc`]) |
//!
//! Every traffic route takes any method (but `/hooks`, POST only); none
//! takes a query parameter it does not name (except `/echo`, which
//! reflects whatever it gets, and `/hooks`, which records it).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::draw::{self, DrawPlan};
use crate::error::RequestError;
use crate::limits::{self, InvalidValue, MAX_BODY_BYTES, MAX_DELAY_MS, MAX_REDIRECT_HOPS};
use crate::query::{Query, path_segment};
use crate::server::ConnectionControl;
use crate::stats::{Route, Stats, StatsSnapshot};

/// Every response body is built whole: the largest is 16 MiB.
pub(crate) type Body = Full<Bytes>;

/// The seed the answer was drawn under.
const SEED_HEADER: HeaderName = HeaderName::from_static("x-mock-seed");
/// The `n` of the answer's draw in the global sequence; absent for
/// request-local draws (`?seed=` or `?n=`).
const SEQUENCE_HEADER: HeaderName = HeaderName::from_static("x-mock-sequence");
/// The delay the answer waited, in milliseconds.
const DELAY_HEADER: HeaderName = HeaderName::from_static("x-mock-delay-ms");
/// The 1-based ordinal of a `/flaky` request since start or reset.
const FLAKY_HEADER: HeaderName = HeaderName::from_static("x-mock-flaky-request");

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

const WEBSITE_MOCK_PARAMETERS: &[&str] = &["status", "delay_ms", "size", "seed", "n"];
const FLAKY_PARAMETERS: &[&str] = &["fail_every", "fail_status"];
const BYTES_PARAMETERS: &[&str] = &["seed"];
const NO_PARAMETERS: &[&str] = &[];

/// The mock website: what every connection shares.
pub(crate) struct Site {
    /// The distributions `/website_mock` draws from.
    pub(crate) plan: DrawPlan,
    /// The global seed.
    pub(crate) seed: u64,
    /// Served counts and the request sequences.
    pub(crate) stats: Stats,
    /// Cancelled when the mock starts shutting down; `/hang` waits on it.
    pub(crate) shutdown: CancellationToken,
    /// PEM of the TLS certificate, when the TLS listener runs.
    pub(crate) certificate_pem: Option<String>,
    /// The recording receivers' logs and scripts.
    pub(crate) hooks: crate::hooks::Hooks,
    /// What the gRPC health service answers (served by the gRPC listeners).
    pub(crate) grpc_health: crate::grpc::GrpcHealth,
}

/// Where a request path leads; path arguments are still unparsed text.
enum Target<'a> {
    WebsiteMock,
    Status(&'a str),
    Delay(&'a str),
    Bytes(&'a str),
    Redirect(&'a str),
    Flaky,
    Hang,
    Reset,
    Echo,
    /// `/hooks/<rest>`: a delivery to a recording receiver.
    Hook(&'a str),
    /// `/__hooks` and `/__hooks/<rest>`: the receivers' control routes.
    HookControl(&'a str),
    /// `/__grpc/health` and `/__grpc/health/<service>`: the gRPC health
    /// service's control route (`rest` is empty or starts with `/`).
    GrpcControl(&'a str),
    Ping,
    Stats,
    ResetStats,
    Certificate,
    Unknown,
}

impl<'a> Target<'a> {
    fn of(path: &'a str) -> Self {
        match path {
            "/website_mock" => Target::WebsiteMock,
            "/flaky" => Target::Flaky,
            "/hang" => Target::Hang,
            "/reset" => Target::Reset,
            "/echo" => Target::Echo,
            "/__ping" => Target::Ping,
            "/__stats" => Target::Stats,
            "/__reset" => Target::ResetStats,
            "/__cert.pem" => Target::Certificate,
            "/__hooks" => Target::HookControl(""),
            _ if path.starts_with("/__grpc/health") && matches!(path.as_bytes().get(14), None | Some(b'/')) => {
                Target::GrpcControl(&path["/__grpc/health".len()..])
            }
            _ if path.starts_with("/hooks/") => Target::Hook(&path["/hooks/".len()..]),
            _ if path.starts_with("/__hooks/") => Target::HookControl(&path["/__hooks/".len()..]),
            _ => match path.strip_prefix('/').and_then(|rest| rest.split_once('/')) {
                Some((name, argument)) if !argument.is_empty() && !argument.contains('/') => match name {
                    "status" => Target::Status(argument),
                    "delay" => Target::Delay(argument),
                    "bytes" => Target::Bytes(argument),
                    "redirect" => Target::Redirect(argument),
                    _ => Target::Unknown,
                },
                _ => Target::Unknown,
            },
        }
    }

    /// The stats route, or `None` for control routes, which are not counted.
    fn counted_route(&self) -> Option<Route> {
        Some(match self {
            Target::WebsiteMock => Route::WebsiteMock,
            Target::Status(_) => Route::Status,
            Target::Delay(_) => Route::Delay,
            Target::Bytes(_) => Route::Bytes,
            Target::Redirect(_) => Route::Redirect,
            Target::Flaky => Route::Flaky,
            Target::Hang => Route::Hang,
            Target::Reset => Route::Reset,
            Target::Echo => Route::Echo,
            Target::Hook(_) => Route::Hooks,
            Target::Unknown => Route::NotFound,
            Target::Ping
            | Target::Stats
            | Target::ResetStats
            | Target::Certificate
            | Target::HookControl(_)
            | Target::GrpcControl(_) => {
                return None;
            }
        })
    }
}

/// Answers one request (or, for `/hang` and `/reset`, never does).
pub(crate) async fn handle(request: Request<Incoming>, site: &Site, connection: &ConnectionControl) -> Response<Body> {
    if let Some(behaviour) = crate::websocket::Behaviour::of(request.uri().path()) {
        // The upgrade needs the request itself, not its parts.
        let method = request.method().clone();
        let response = crate::websocket::upgrade(request, behaviour, site.shutdown.clone())
            .unwrap_or_else(RequestError::into_response);
        site.stats.record_response(Route::WebSocket, &method, response.status());
        return response;
    }
    let (parts, body) = request.into_parts();
    let target = Target::of(parts.uri.path());
    if let Target::HookControl(rest) = target {
        return crate::hooks::control(rest, &parts, body, site)
            .await
            .unwrap_or_else(RequestError::into_response);
    }
    if let Target::GrpcControl(rest) = target {
        return crate::grpc::control(rest, &parts, body, &site.grpc_health)
            .await
            .unwrap_or_else(RequestError::into_response);
    }
    let Some(route) = target.counted_route() else {
        return control(target, &parts, site)
            .await
            .unwrap_or_else(RequestError::into_response);
    };
    let response = serve(target, &parts, body, site, connection)
        .await
        .unwrap_or_else(RequestError::into_response);
    site.stats.record_response(route, &parts.method, response.status());
    debug!(
        method = %parts.method,
        uri = %parts.uri,
        status = response.status().as_u16(),
        "served"
    );
    response
}

async fn serve(
    target: Target<'_>,
    parts: &Parts,
    body: Incoming,
    site: &Site,
    connection: &ConnectionControl,
) -> Result<Response<Body>, RequestError> {
    let query = parts.uri.query();
    match target {
        Target::WebsiteMock => website_mock(query, site).await,
        Target::Status(code) => status(code, query),
        Target::Delay(ms) => delay(ms, query).await,
        Target::Bytes(len) => bytes(len, query, site),
        Target::Redirect(hops) => redirect(hops, query),
        Target::Flaky => flaky(query, site),
        Target::Hang => hang(&parts.method, query, site, connection).await,
        Target::Reset => reset(&parts.method, query, site, connection).await,
        Target::Echo => echo(parts, body).await,
        Target::Hook(rest) => crate::hooks::deliver(rest, parts, body, site, connection).await,
        _ => Err(RequestError::NotFound {
            path: parts.uri.path().to_owned(),
        }),
    }
}

async fn website_mock(query: Option<&str>, site: &Site) -> Result<Response<Body>, RequestError> {
    let query = Query::parse(query, WEBSITE_MOCK_PARAMETERS)?;
    let status = query.get("status", limits::final_status)?;
    let delay_ms = query.get("delay_ms", |value| limits::capped(value, MAX_DELAY_MS))?;
    let size = query.get("size", |value| limits::capped(value, MAX_BODY_BYTES))?;
    let local_seed = query.get("seed", limits::whole_number)?;
    let local_n = query.get("n", limits::whole_number)?;

    // Only a valid request takes a number, so a 400 never shifts the sequence.
    let (seed, sequence) = if local_seed.is_none() && local_n.is_none() {
        (site.seed, Some(site.stats.next_sequence()))
    } else {
        (local_seed.unwrap_or(site.seed), None)
    };
    let mut draw = site.plan.raw_draw(seed, sequence.or(local_n).unwrap_or(0));
    draw.status = status.unwrap_or(draw.status);
    draw.delay_ms = delay_ms.unwrap_or(draw.delay_ms);
    draw.body_len = size.unwrap_or(draw.body_len);
    let draw = draw.without_forbidden_body();

    if draw.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(draw.delay_ms)).await;
    }
    let mut response = text_response(draw.status, draw.body());
    let headers = response.headers_mut();
    headers.insert(SEED_HEADER, HeaderValue::from(seed));
    if let Some(sequence) = sequence {
        headers.insert(SEQUENCE_HEADER, HeaderValue::from(sequence));
    }
    headers.insert(DELAY_HEADER, HeaderValue::from(draw.delay_ms));
    Ok(response)
}

fn status(code: &str, query: Option<&str>) -> Result<Response<Body>, RequestError> {
    Query::parse(query, NO_PARAMETERS)?;
    let status = path_segment("code", code, limits::final_status)?;
    let body = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    Ok(text_response(status, body))
}

async fn delay(ms: &str, query: Option<&str>) -> Result<Response<Body>, RequestError> {
    Query::parse(query, NO_PARAMETERS)?;
    let ms = path_segment("ms", ms, |value| limits::capped(value, MAX_DELAY_MS))?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    let mut response = text_response(StatusCode::OK, format!("delayed {ms} ms\n"));
    response.headers_mut().insert(DELAY_HEADER, HeaderValue::from(ms));
    Ok(response)
}

fn bytes(len: &str, query: Option<&str>, site: &Site) -> Result<Response<Body>, RequestError> {
    let query = Query::parse(query, BYTES_PARAMETERS)?;
    let len = path_segment("n", len, |value| limits::capped(value, MAX_BODY_BYTES))?;
    let seed = query.get("seed", limits::whole_number)?.unwrap_or(site.seed);
    let mut response = Response::new(Full::new(draw::binary_body(len, seed)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(SEED_HEADER, HeaderValue::from(seed));
    Ok(response)
}

fn redirect(hops: &str, query: Option<&str>) -> Result<Response<Body>, RequestError> {
    Query::parse(query, NO_PARAMETERS)?;
    let hops = path_segment("n", hops, |value| limits::capped(value, MAX_REDIRECT_HOPS))?;
    if hops == 0 {
        return Ok(text_response(StatusCode::OK, "redirect chain complete\n"));
    }
    let next = format!("/redirect/{}", hops - 1);
    let mut response = text_response(StatusCode::FOUND, format!("redirecting to {next}\n"));
    let location = HeaderValue::from_str(&next).expect("a path of digits is a valid header value");
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

fn flaky(query: Option<&str>, site: &Site) -> Result<Response<Body>, RequestError> {
    let query = Query::parse(query, FLAKY_PARAMETERS)?;
    let fail_every = query.require("fail_every", |value| {
        let every = limits::whole_number(value)?;
        if every == 0 {
            return Err(InvalidValue::BelowMinimum { value: 0, min: 1 });
        }
        Ok(every)
    })?;
    let fail_status = query
        .get("fail_status", limits::final_status)?
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let ordinal = site.stats.next_flaky();
    let mut response = if ordinal % fail_every == 0 {
        text_response(fail_status, format!("flaky failure (request {ordinal})\n"))
    } else {
        text_response(StatusCode::OK, format!("ok (request {ordinal})\n"))
    };
    response.headers_mut().insert(FLAKY_HEADER, HeaderValue::from(ordinal));
    Ok(response)
}

async fn hang(
    method: &Method,
    query: Option<&str>,
    site: &Site,
    connection: &ConnectionControl,
) -> Result<Response<Body>, RequestError> {
    Query::parse(query, NO_PARAMETERS)?;
    site.stats.record_unanswered(Route::Hang, method);
    // Still never answer, but don't hold up shutdown: close the connection.
    site.shutdown.cancelled().await;
    connection.close();
    std::future::pending().await
}

async fn reset(
    method: &Method,
    query: Option<&str>,
    site: &Site,
    connection: &ConnectionControl,
) -> Result<Response<Body>, RequestError> {
    Query::parse(query, NO_PARAMETERS)?;
    site.stats.record_unanswered(Route::Reset, method);
    connection.reset();
    // The connection task drops this future along with the connection.
    std::future::pending().await
}

/// What `/echo` received, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoReport {
    pub method: String,
    /// The request target as received (origin form over HTTP/1.1, absolute
    /// over HTTP/2).
    pub uri: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every header, lower-case name to values in the order received.
    /// Values that are not UTF-8 are decoded lossily.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body, when it is UTF-8.
    pub body: Option<String>,
    /// The body, always, in standard base64.
    pub body_base64: String,
    pub body_len: u64,
}

async fn echo(parts: &Parts, body: Incoming) -> Result<Response<Body>, RequestError> {
    let limit = usize::try_from(MAX_BODY_BYTES).unwrap_or(usize::MAX);
    let body = Limited::new(body, limit)
        .collect()
        .await
        .map_err(|error| {
            if error.is::<LengthLimitError>() {
                RequestError::BodyTooLarge { limit: MAX_BODY_BYTES }
            } else {
                RequestError::BodyUnreadable {
                    detail: error.to_string(),
                }
            }
        })?
        .to_bytes();
    let mut headers = BTreeMap::<String, Vec<String>>::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let report = EchoReport {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        version: format!("{:?}", parts.version),
        headers,
        body: std::str::from_utf8(&body).ok().map(str::to_owned),
        body_base64: base64::engine::general_purpose::STANDARD.encode(&body),
        body_len: body.len() as u64,
    };
    Ok(json_response(StatusCode::OK, &report))
}

async fn control(target: Target<'_>, parts: &Parts, site: &Site) -> Result<Response<Body>, RequestError> {
    Query::parse(parts.uri.query(), NO_PARAMETERS)?;
    let read_only = parts.method == Method::GET || parts.method == Method::HEAD;
    let not_allowed = |path: &'static str, allowed: &'static str| RequestError::MethodNotAllowed {
        method: parts.method.to_string(),
        path,
        allowed,
    };
    match target {
        Target::Ping if read_only => Ok(text_response(StatusCode::OK, "ok\n")),
        Target::Ping => Err(not_allowed("/__ping", "GET, HEAD")),
        Target::Stats if read_only => {
            let snapshot: StatsSnapshot = site.stats.snapshot(site.seed);
            Ok(json_response(StatusCode::OK, &snapshot))
        }
        Target::Stats => Err(not_allowed("/__stats", "GET, HEAD")),
        Target::ResetStats if parts.method == Method::POST => {
            site.stats.reset();
            site.hooks.reset();
            site.grpc_health.reset().await;
            debug!("stats, sequences, hook receivers and gRPC health statuses reset");
            Ok(text_response(StatusCode::NO_CONTENT, Bytes::new()))
        }
        Target::ResetStats => Err(not_allowed("/__reset", "POST")),
        Target::Certificate if read_only => match &site.certificate_pem {
            Some(pem) => {
                let mut response = text_response(StatusCode::OK, pem.clone());
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
                Ok(response)
            }
            None => Err(RequestError::Unavailable {
                detail: "TLS is off: start the mock with --tls-listen to get a certificate",
            }),
        },
        Target::Certificate => Err(not_allowed("/__cert.pem", "GET, HEAD")),
        _ => Err(RequestError::NotFound {
            path: parts.uri.path().to_owned(),
        }),
    }
}

fn text_response(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
    response
}

fn json_response(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(json) => {
            let mut response = Response::new(Full::new(Bytes::from(json)));
            *response.status_mut() = status;
            response.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
            response
        }
        Err(error) => text_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode the response: {error}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_targets() {
        assert!(matches!(Target::of("/website_mock"), Target::WebsiteMock));
        assert!(matches!(Target::of("/status/503"), Target::Status("503")));
        assert!(matches!(Target::of("/delay/x"), Target::Delay("x")));
        assert!(matches!(Target::of("/bytes/10"), Target::Bytes("10")));
        assert!(matches!(Target::of("/redirect/3"), Target::Redirect("3")));
        for unknown in ["/", "/status", "/status/", "/status/200/x", "/nope/1", "/website_mock/"] {
            assert!(matches!(Target::of(unknown), Target::Unknown), "{unknown}");
        }
        assert!(Target::of("/__stats").counted_route().is_none());
        assert!(matches!(Target::of("/hooks/slack/ops"), Target::Hook("slack/ops")));
        assert!(matches!(
            Target::of("/__hooks/ops/received"),
            Target::HookControl("ops/received")
        ));
        assert!(matches!(Target::of("/__hooks"), Target::HookControl("")));
        assert!(Target::of("/__hooks/ops").counted_route().is_none());
        assert_eq!(Target::of("/hooks/x").counted_route(), Some(Route::Hooks));
        assert_eq!(Target::of("/elsewhere").counted_route(), Some(Route::NotFound));
    }
}
