//! WebSocket routes (RFC 6455, the HTTP/1.1 upgrade) on the HTTP and HTTPS
//! listeners, for the monitor's WebSocket checks:
//!
//! | route | what it does once upgraded |
//! |---|---|
//! | `/ws/echo` | echoes every text and binary message |
//! | `/ws/greet` | sends [`GREETING`] at once, then echoes |
//! | `/ws/silent` | never sends a message (pings are still answered) |
//! | `/ws/close` | closes at once (code 1000, reason `bye`) |
//!
//! A request that is not a WebSocket upgrade (a plain GET, or HTTP/2, which
//! has no upgrade) gets 426 Upgrade Required. hyper answers 101 and hands
//! over the connection; the WebSocket then runs in its own task, which ends
//! when the peer closes or the mock shuts down (close code 1001).

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::RequestError;
use crate::routes::Body;

/// What `/ws/greet` sends first.
pub const GREETING: &str = "hello from monitor-mock";

/// Largest message a WebSocket route accepts.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What a route does with its WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Echo,
    Greet,
    Silent,
    Close,
}

impl Behaviour {
    /// The behaviour of a `/ws/...` path; `None` for any other path.
    pub(crate) fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/ws/echo" => Behaviour::Echo,
            "/ws/greet" => Behaviour::Greet,
            "/ws/silent" => Behaviour::Silent,
            "/ws/close" => Behaviour::Close,
            _ => return None,
        })
    }
}

/// Answers the upgrade (101) and starts the WebSocket, or refuses a
/// request that is not one.
pub(crate) fn upgrade(
    request: Request<Incoming>,
    behaviour: Behaviour,
    shutdown: CancellationToken,
) -> Result<Response<Body>, RequestError> {
    if request.method() != Method::GET {
        return Err(RequestError::MethodNotAllowed {
            method: request.method().to_string(),
            path: "/ws/{route}",
            allowed: "GET",
        });
    }
    let Some(key) = upgrade_key(request.headers()).filter(|_| request.version() == http::Version::HTTP_11) else {
        return Ok(upgrade_required());
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(MAX_MESSAGE_BYTES))
                    .max_frame_size(Some(MAX_MESSAGE_BYTES));
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                run(socket, behaviour, shutdown).await;
            }
            Err(error) => debug!(%error, "the WebSocket upgrade did not complete"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(response)
}

/// The client's key when the headers ask for a version 13 upgrade.
fn upgrade_key(headers: &HeaderMap) -> Option<&str> {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|value| value.split(',').any(|item| item.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(CONNECTION, "upgrade") || !has_token(UPGRADE, "websocket") {
        return None;
    }
    if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|version| version != "13") {
        return None;
    }
    headers
        .get(SEC_WEBSOCKET_KEY)?
        .to_str()
        .ok()
        .filter(|key| !key.is_empty())
}

fn upgrade_required() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(
        b"this route speaks WebSocket: send an HTTP/1.1 upgrade (Connection: Upgrade, Upgrade: websocket, Sec-WebSocket-Version: 13)\n",
    )));
    *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
    response
}

async fn run<S>(mut socket: WebSocketStream<S>, behaviour: Behaviour, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let closing = |code, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    match behaviour {
        Behaviour::Close => {
            let _ = socket.send(closing(CloseCode::Normal, "bye")).await;
        }
        Behaviour::Greet => {
            if socket.send(Message::text(GREETING)).await.is_err() {
                return;
            }
        }
        Behaviour::Echo | Behaviour::Silent => {}
    }
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => {
                let _ = socket.send(closing(CloseCode::Away, "the mock is shutting down")).await;
                return;
            }
            message = socket.next() => message,
        };
        let echo = match message {
            // Closed, or broken: the task ends either way.
            None | Some(Err(_)) => return,
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
            // tungstenite answers pings and close frames itself.
            Some(Ok(_)) => continue,
        };
        if behaviour != Behaviour::Silent && socket.send(echo).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (http::HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    }

    #[test]
    fn routes_are_the_four_behaviours() {
        assert_eq!(Behaviour::of("/ws/echo"), Some(Behaviour::Echo));
        assert_eq!(Behaviour::of("/ws/greet"), Some(Behaviour::Greet));
        assert_eq!(Behaviour::of("/ws/silent"), Some(Behaviour::Silent));
        assert_eq!(Behaviour::of("/ws/close"), Some(Behaviour::Close));
        assert_eq!(Behaviour::of("/ws/other"), None);
        assert_eq!(Behaviour::of("/ws"), None);
    }

    #[test]
    fn only_a_version_13_upgrade_has_a_key() {
        let upgrade = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(upgrade_key(&headers(&upgrade)), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        for missing in 0..upgrade.len() {
            let mut partial = upgrade.to_vec();
            partial.remove(missing);
            assert_eq!(upgrade_key(&headers(&partial)), None, "without {}", upgrade[missing].0);
        }
        let mut old = upgrade.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(upgrade_key(&headers(&old)), None);
        // RFC 6455's example: the accept key of the sample nonce.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
