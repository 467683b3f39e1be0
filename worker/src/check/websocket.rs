//! The WebSocket check (RFC 6455): the upgrade, optionally a text message
//! sent, and, when the job expects something, the first text or binary
//! message judged by `expect_contains` and `expect_regex`. Healthy when
//! the upgrade succeeds and every expectation holds.
//!
//! The worker connects itself ([`connect::connect`], past the blocklist),
//! does TLS for `wss` with its own configurations (ALPN `http/1.1`: the
//! upgrade is an HTTP/1.1 exchange), and hands the stream to
//! tokio-tungstenite for the handshake and the frames. The job's headers
//! go with the upgrade request, the URL's userinfo as Basic credentials
//! (as for HTTP checks); neither is ever logged. Pings and pongs are not
//! replies; a close frame before a reply fails the check.

use std::io;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use monitor_proto::v1::{AssertionResult, CheckOutcome, CheckResult, WebSocketCheck, WebSocketResult, check_result};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Url;

use super::assertions::{clipped, quoted};
use super::{Failure, Shared, connect, tls};

/// ALPN of `wss` connections: the upgrade needs HTTP/1.1.
pub(super) const ALPN: &[&[u8]] = &[b"http/1.1"];

/// The part of the reply kept in the result.
const MAX_RECEIVED_BYTES: usize = 4096;

/// Largest message (and frame) accepted: expectations are judged on the
/// whole message, which must fit in memory.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// A byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// What the check saw before it ended, however it ended.
#[derive(Default)]
struct Seen {
    /// Status of the upgrade answer; 0 until one arrives.
    status_code: u16,
    /// Start of the check until the upgrade completed.
    connect_time: Option<Duration>,
    /// The reply, whole (judged) and as kept (at most 4 KiB).
    reply: Option<String>,
    /// Message sent (or upgrade completed) until the reply arrived.
    reply_time: Option<Duration>,
    /// The open WebSocket, closed politely once the check is judged.
    socket: Option<Socket>,
}

pub(super) async fn run(shared: &Shared, check: &WebSocketCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = Seen::default();
    let ended = tokio::time::timeout_at(deadline, session(shared, check, started, &mut seen)).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(())) => {
            let results = expectations(check, seen.reply.as_deref().unwrap_or(""), shared);
            let failure = super::first_failed(&results);
            (failure, results)
        }
    };
    // Housekeeping, not part of the judgement: bounded by the same deadline.
    if let Some(mut socket) = seen.socket.take() {
        let _ = tokio::time::timeout_at(deadline, socket.close(None)).await;
    }
    let (outcome, error) = failure.map_or((CheckOutcome::Ok, String::new()), |failure| {
        (failure.outcome, failure.error)
    });
    let received = seen.reply.as_deref().map(kept).unwrap_or_default();
    CheckResult {
        duration: Some(duration.into()),
        outcome: outcome.into(),
        error,
        assertions,
        detail: Some(check_result::Detail::Websocket(WebSocketResult {
            status_code: u32::from(seen.status_code),
            connect_time: seen.connect_time.map(Into::into),
            received,
            reply_time: seen.reply_time.map(Into::into),
        })),
        ..CheckResult::default()
    }
}

fn expects_reply(check: &WebSocketCheck) -> bool {
    !check.expect_contains.is_empty() || !check.expect_regex.is_empty()
}

/// The expectations set, in the contract's order.
fn expectations(check: &WebSocketCheck, reply: &str, shared: &Shared) -> Vec<AssertionResult> {
    let mut results = Vec::new();
    if !check.expect_contains.is_empty() {
        let passed = reply.contains(&check.expect_contains);
        let verb = if passed { "contains" } else { "does not contain" };
        results.push(AssertionResult {
            name: "expect_contains".to_owned(),
            passed,
            detail: format!("reply {verb} {}", quoted(&check.expect_contains)),
        });
    }
    if !check.expect_regex.is_empty() {
        let pattern = &check.expect_regex;
        let (passed, detail) = match shared.regexes.get(pattern) {
            Ok(regex) => {
                let passed = regex.is_match(reply);
                let verb = if passed { "matches" } else { "does not match" };
                (passed, format!("reply {verb} /{}/", clipped(pattern)))
            }
            Err(error) => (false, format!("invalid regex /{}/: {error}", clipped(pattern))),
        };
        results.push(AssertionResult {
            name: "expect_regex".to_owned(),
            passed,
            detail,
        });
    }
    results
}

/// The upgrade, the message sent and the reply, recorded in `seen`.
async fn session(shared: &Shared, check: &WebSocketCheck, started: Instant, seen: &mut Seen) -> Result<(), Failure> {
    let url = parse_url(&check.url)?;
    let secure = url.scheme() == "wss";
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| Failure::new(CheckOutcome::Connect, "the URL has no host"))?
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(if secure { 443 } else { 80 });
    let request = upgrade_request(&url, check, &shared.user_agent)?;

    let connected = connect::connect(&shared.blocklist, &host, port).await?;
    let stream: Box<dyn Io> = if secure {
        let config = shared.websocket_tls.get(check.insecure_skip_tls_verify);
        Box::new(tls::connect(config, &host, connected.stream, connected.address).await?)
    } else {
        Box::new(connected.stream)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    let (socket, response) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|error| upgrade_failure(error, seen))?;
    seen.status_code = response.status().as_u16();
    seen.connect_time = Some(started.elapsed());
    let socket = seen.socket.insert(socket);

    if !check.send.is_empty() {
        socket
            .send(Message::text(check.send.as_str()))
            .await
            .map_err(|error| frame_failure(&error, "sending the message"))?;
    }
    if !expects_reply(check) {
        return Ok(());
    }
    let waiting = Instant::now();
    let reply = first_message(socket).await?;
    seen.reply_time = Some(waiting.elapsed());
    seen.reply = Some(reply);
    Ok(())
}

/// The first text or binary message (binary as lossy UTF-8).
async fn first_message(socket: &mut Socket) -> Result<String, Failure> {
    loop {
        let message = match socket.next().await {
            None => return Err(closed("connection closed before replying")),
            Some(Err(error)) => return Err(frame_failure(&error, "waiting for the reply")),
            Some(Ok(message)) => message,
        };
        match message {
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            Message::Binary(bytes) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Message::Close(frame) => {
                let code = frame.map_or_else(
                    || "no code".to_owned(),
                    |frame| format!("code {}", u16::from(frame.code)),
                );
                return Err(closed(&format!("closed before replying ({code})")));
            }
            // tungstenite answers pings itself; neither is a reply.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

fn closed(message: &str) -> Failure {
    Failure::new(CheckOutcome::ProtocolError, message)
}

/// At most [`MAX_RECEIVED_BYTES`], cut at a character boundary.
fn kept(reply: &str) -> String {
    if reply.len() <= MAX_RECEIVED_BYTES {
        return reply.to_owned();
    }
    let mut end = MAX_RECEIVED_BYTES;
    while !reply.is_char_boundary(end) {
        end -= 1;
    }
    reply[..end].to_owned()
}

fn parse_url(raw: &str) -> Result<Url, Failure> {
    let redacted = || monitor_proto::secret::redact_userinfo(raw).into_owned();
    let url = Url::parse(raw)
        .map_err(|error| Failure::new(CheckOutcome::Connect, format!("invalid URL {:?}: {error}", redacted())))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(Failure::new(
            CheckOutcome::Connect,
            format!("unsupported URL scheme {:?} (use ws or wss)", url.scheme()),
        ));
    }
    Ok(url)
}

/// The upgrade request: the URL without its userinfo, the job's headers
/// (the first of a name replaces a generated one, as `Host` may), the
/// userinfo as Basic credentials and the worker's `User-Agent` unless the
/// job sets those headers itself.
fn upgrade_request(url: &Url, check: &WebSocketCheck, user_agent: &str) -> Result<Request, Failure> {
    let invalid = |error: tungstenite::Error| {
        Failure::new(
            CheckOutcome::Connect,
            format!(
                "invalid URL {:?}: {error}",
                monitor_proto::secret::redact_userinfo(url.as_str())
            ),
        )
    };
    let mut target = url.clone();
    // Both succeed: ws and wss URLs have a host.
    let _ = target.set_username("");
    let _ = target.set_password(None);
    let mut request = target.as_str().into_client_request().map_err(invalid)?;

    let headers = request.headers_mut();
    let mut written: Vec<HeaderName> = Vec::new();
    for header in &check.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            Failure::new(
                CheckOutcome::ProtocolError,
                format!("invalid header name {:?}", header.name),
            )
        })?;
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            Failure::new(
                CheckOutcome::ProtocolError,
                format!("invalid value for header {:?}", header.name),
            )
        })?;
        if written.contains(&name) {
            headers.append(name, value);
        } else {
            headers.insert(name.clone(), value);
            written.push(name);
        }
    }
    if !written.contains(&AUTHORIZATION)
        && let Some(credentials) = basic_credentials(url)
    {
        headers.insert(AUTHORIZATION, credentials);
    }
    if !written.contains(&USER_AGENT)
        && let Ok(value) = HeaderValue::from_str(user_agent)
    {
        headers.insert(USER_AGENT, value);
    }
    Ok(request)
}

type Request = tungstenite::handshake::client::Request;

/// `Basic base64(user:password)` of the URL's userinfo (percent-decoded),
/// marked sensitive; `None` without userinfo.
fn basic_credentials(url: &Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |text: &str| percent_encoding::percent_decode_str(text).collect::<Vec<u8>>();
    let mut pair = decode(url.username());
    pair.push(b':');
    pair.extend(decode(url.password().unwrap_or("")));
    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The upgrade did not complete: refused (not 101), or the answer was not
/// a WebSocket upgrade, or the connection broke.
fn upgrade_failure(error: tungstenite::Error, seen: &mut Seen) -> Failure {
    match error {
        tungstenite::Error::Http(response) => {
            seen.status_code = response.status().as_u16();
            Failure::new(
                CheckOutcome::ProtocolError,
                format!("upgrade refused: HTTP {}", response.status().as_u16()),
            )
        }
        tungstenite::Error::Protocol(problem) => Failure::new(
            CheckOutcome::ProtocolError,
            format!("not a WebSocket upgrade: {problem}"),
        ),
        other => frame_failure(&other, "during the upgrade"),
    }
}

/// A failure on an open connection (or during the upgrade), `when` saying
/// what the check was doing.
fn frame_failure(error: &tungstenite::Error, when: &str) -> Failure {
    let message = match error {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            format!("connection closed {when}")
        }
        tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            format!("connection closed without a close frame {when}")
        }
        tungstenite::Error::Io(io) => match io.kind() {
            io::ErrorKind::ConnectionReset => format!("connection reset by the server {when}"),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe => {
                format!("connection closed by the server {when}")
            }
            _ => format!("connection failed {when}: {io}"),
        },
        tungstenite::Error::Capacity(_) => {
            format!("message larger than {} KiB {when}", MAX_MESSAGE_BYTES / 1024)
        }
        other => format!("WebSocket error {when}: {other}"),
    };
    Failure::new(CheckOutcome::ProtocolError, message)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::HttpHeader;

    use super::*;

    fn check(url: &str, headers: &[(&str, &str)]) -> WebSocketCheck {
        WebSocketCheck {
            url: url.into(),
            headers: headers
                .iter()
                .map(|(name, value)| HttpHeader {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
            ..WebSocketCheck::default()
        }
    }

    fn upgrade(url: &str, headers: &[(&str, &str)]) -> Result<Request, Failure> {
        let check = check(url, headers);
        upgrade_request(&parse_url(&check.url)?, &check, "monitor-worker/1")
    }

    #[test]
    fn the_upgrade_request_carries_the_jobs_headers_and_the_user_agent() {
        let request = upgrade(
            "ws://chat.example:8080/ws?room=1",
            &[("X-Tenant", "a"), ("x-tenant", "b"), ("Host", "other.example")],
        )
        .unwrap();
        assert_eq!(request.uri().to_string(), "ws://chat.example:8080/ws?room=1");
        let headers = request.headers();
        let tenants: Vec<_> = headers.get_all("x-tenant").iter().collect();
        assert_eq!(tenants, ["a", "b"]);
        assert_eq!(headers.get_all("host").iter().collect::<Vec<_>>(), ["other.example"]);
        assert_eq!(headers["user-agent"], "monitor-worker/1");
        assert!(headers.contains_key("sec-websocket-key"));
        assert!(!headers.contains_key("authorization"));
    }

    #[test]
    fn userinfo_becomes_basic_credentials_and_leaves_the_url() {
        let request = upgrade("wss://us%40er:p%3Ass@chat.example/ws", &[]).unwrap();
        assert_eq!(request.uri().to_string(), "wss://chat.example/ws");
        let authorization = &request.headers()["authorization"];
        assert!(authorization.is_sensitive());
        // base64("us@er:p:ss")
        assert_eq!(authorization, "Basic dXNAZXI6cDpzcw==");
        // The job's own Authorization wins.
        let own = upgrade("ws://u:p@chat.example/", &[("Authorization", "Bearer t")]).unwrap();
        assert_eq!(own.headers()["authorization"], "Bearer t");
    }

    #[test]
    fn bad_specs_fail_without_connecting_and_hide_credentials() {
        let failure = upgrade("http://chat.example/", &[]).unwrap_err();
        assert_eq!(failure.error, "unsupported URL scheme \"http\" (use ws or wss)");
        let failure = upgrade("ws://user:hunter2@", &[]).unwrap_err();
        assert!(!failure.error.contains("hunter2"), "{}", failure.error);
        let failure = upgrade("ws://chat.example/", &[("bad name", "v")]).unwrap_err();
        assert_eq!(failure.error, "invalid header name \"bad name\"");
        let failure = upgrade("ws://chat.example/", &[("x-a", "line\nbreak")]).unwrap_err();
        assert_eq!(failure.error, "invalid value for header \"x-a\"");
    }

    #[test]
    fn replies_are_kept_up_to_4_kib_on_a_character_boundary() {
        assert_eq!(kept("short"), "short");
        let long = "é".repeat(3000);
        let stored = kept(&long);
        assert!(stored.len() <= MAX_RECEIVED_BYTES && stored.len() >= MAX_RECEIVED_BYTES - 1);
        assert!(long.starts_with(&stored));
    }

    #[test]
    fn broken_connections_say_when() {
        let reset = tungstenite::Error::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(
            frame_failure(&reset, "waiting for the reply").error,
            "connection reset by the server waiting for the reply"
        );
        let mut seen = Seen::default();
        let refused = upgrade_failure(
            tungstenite::Error::Http(Box::new(http::Response::builder().status(404).body(None).unwrap())),
            &mut seen,
        );
        assert_eq!(refused.outcome, CheckOutcome::ProtocolError);
        assert_eq!(refused.error, "upgrade refused: HTTP 404");
        assert_eq!(seen.status_code, 404);
    }
}
