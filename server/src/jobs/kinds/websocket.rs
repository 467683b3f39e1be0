//! Rules of a WebSocket check: a ws or wss URL with a host (userinfo is a
//! secret, as for HTTP), headers like HTTP headers but not the ones the
//! upgrade writes itself, a bounded message to send, bounded expectations
//! whose regex compiles, and certificate checks skipped only over wss.

use monitor_proto::v1::WebSocketCheck;

use super::super::validate::{
    HeaderNaming, MAX_BODY_BYTES, spec_unless_violated, validate_assertion_text, validate_headers, validate_regex,
    validate_url,
};
use crate::error::FieldViolation;

/// Largest `send`, as for an HTTP body.
pub const MAX_SEND_BYTES: usize = MAX_BODY_BYTES;

/// Headers the upgrade request writes itself (RFC 6455 section 4.1), and
/// extensions, which the workers do not negotiate.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

pub(in crate::jobs) fn validate(websocket: &WebSocketCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    validate_url("websocket.url", &websocket.url, &["ws", "wss"], v);
    validate_headers(
        &HeaderNaming::HTTP_CHECK.at("websocket"),
        &websocket.headers,
        &websocket.secret_headers,
        v,
    );
    for (i, header) in websocket.headers.iter().enumerate() {
        if UPGRADE_HEADERS
            .iter()
            .any(|name| header.name.eq_ignore_ascii_case(name))
        {
            v.push(FieldViolation::new(
                format!("websocket.headers[{i}].name"),
                format!("{:?} is written by the WebSocket upgrade itself", header.name),
            ));
        }
    }
    if websocket.send.len() > MAX_SEND_BYTES {
        v.push(FieldViolation::new(
            "websocket.send",
            format!("must be at most {MAX_SEND_BYTES} bytes (got {})", websocket.send.len()),
        ));
    }
    validate_assertion_text("websocket.expect_contains", &websocket.expect_contains, v);
    validate_regex("websocket.expect_regex", &websocket.expect_regex, v);
    let secure = url::Url::parse(&websocket.url).is_ok_and(|url| url.scheme() == "wss");
    if websocket.insecure_skip_tls_verify && !secure {
        v.push(FieldViolation::new(
            "websocket.insecure_skip_tls_verify",
            "applies only to wss:// URLs (ws:// has no certificate to check)",
        ));
    }
    spec_unless_violated(websocket, before, v)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{HttpHeader, Job, JobState, job::Check};

    use super::*;
    use crate::error::ApiError;
    use crate::jobs::validate::{MAX_ASSERTION_TEXT_CHARS, MAX_URL_CHARS, validate_job};

    fn valid_check() -> WebSocketCheck {
        WebSocketCheck {
            url: "wss://user:pw@chat.example/live?room=1".into(),
            headers: vec![
                header("Authorization", "Bearer t0ken"),
                header("Origin", "https://chat.example"),
            ],
            send: "ping".into(),
            expect_contains: "pong".into(),
            expect_regex: "^pong [0-9]+$".into(),
            secret_headers: vec!["x-session".into()],
            ..WebSocketCheck::default()
        }
    }

    fn header(name: &str, value: &str) -> HttpHeader {
        HttpHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    fn job(check: WebSocketCheck) -> Job {
        Job {
            name: "chat".into(),
            interval: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
            timeout: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
            desired_state: JobState::Running as i32,
            check: Some(Check::Websocket(check)),
            ..Job::default()
        }
    }

    fn violations(change: impl FnOnce(&mut WebSocketCheck)) -> Vec<(String, String)> {
        let mut check = valid_check();
        change(&mut check);
        match validate_job(&job(check)) {
            Ok(_) => Vec::new(),
            Err(ApiError::InvalidArgument(v)) => v.into_iter().map(|v| (v.field, v.description)).collect(),
            Err(other) => panic!("{other:?}"),
        }
    }

    fn one(field: &str, description: &str) -> Vec<(String, String)> {
        vec![(field.to_owned(), description.to_owned())]
    }

    #[test]
    fn valid_checks_are_stored_as_their_proto_json() {
        let valid = validate_job(&job(valid_check())).unwrap();
        assert_eq!(valid.fields.check_kind, "websocket");
        assert_eq!(valid.fields.check_spec["send"], "ping");
        // The upgrade alone, and the largest values.
        assert!(
            validate_job(&job(WebSocketCheck {
                url: "ws://10.0.0.5:8080/ws".into(),
                ..WebSocketCheck::default()
            }))
            .is_ok()
        );
        let largest = WebSocketCheck {
            url: format!("wss://chat.example/{}", "p".repeat(MAX_URL_CHARS - 19)),
            send: "s".repeat(MAX_SEND_BYTES),
            expect_contains: "c".repeat(MAX_ASSERTION_TEXT_CHARS),
            expect_regex: "r".repeat(MAX_ASSERTION_TEXT_CHARS),
            insecure_skip_tls_verify: true,
            ..WebSocketCheck::default()
        };
        assert_eq!(largest.url.len(), MAX_URL_CHARS);
        assert!(validate_job(&job(largest)).is_ok());
    }

    #[test]
    fn the_url_is_a_ws_or_wss_url_with_a_host() {
        let url = |raw: String| violations(|c| c.url = raw);
        assert_eq!(url(String::new()), one("websocket.url", "is required"));
        assert_eq!(
            url(format!("wss://chat.example/{}", "p".repeat(MAX_URL_CHARS))),
            one("websocket.url", "must be at most 2048 characters")
        );
        assert_eq!(
            url("/live".into()),
            one("websocket.url", "is not an absolute URL: relative URL without a base")
        );
        assert_eq!(
            url("https://chat.example/".into()),
            one("websocket.url", "scheme must be ws or wss (got \"https\")")
        );
        assert_eq!(
            url("ws://".into()),
            one("websocket.url", "is not an absolute URL: empty host")
        );
    }

    #[test]
    fn headers_follow_the_http_rules_but_leave_the_upgrade_alone() {
        assert_eq!(
            violations(|c| c.headers = vec![header("x-a", "1"); 33]),
            one("websocket.headers", "at most 32 headers (got 33)")
        );
        assert_eq!(
            violations(|c| c.headers = vec![header("bad name", "1")]),
            one("websocket.headers[0].name", "\"bad name\" is not a valid header name")
        );
        assert_eq!(
            violations(|c| c.headers = vec![header("x-a", "1\nx")]),
            one(
                "websocket.headers[0].value",
                "must be visible ASCII, spaces or tabs (no line breaks)"
            )
        );
        for name in [
            "Connection",
            "upgrade",
            "Sec-WebSocket-Key",
            "sec-websocket-version",
            "Sec-WebSocket-Extensions",
        ] {
            assert_eq!(
                violations(|c| c.headers = vec![header(name, "x")]),
                one(
                    "websocket.headers[0].name",
                    &format!("{name:?} is written by the WebSocket upgrade itself")
                ),
                "{name}"
            );
        }
        // Sub-protocols and a Host of one's own are fine.
        assert!(
            violations(|c| c.headers = vec![header("Sec-WebSocket-Protocol", "chat"), header("Host", "h")]).is_empty()
        );
        assert_eq!(
            violations(|c| c.secret_headers = vec!["x token".into()]),
            one("websocket.secret_headers[0]", "\"x token\" is not a valid header name")
        );
    }

    #[test]
    fn the_message_and_expectations_are_bounded_and_the_regex_compiles() {
        assert_eq!(
            violations(|c| c.send = "s".repeat(MAX_SEND_BYTES + 1)),
            one("websocket.send", "must be at most 65536 bytes (got 65537)")
        );
        assert_eq!(
            violations(|c| c.expect_contains = "c".repeat(1025)),
            one("websocket.expect_contains", "must be at most 1024 characters")
        );
        assert_eq!(
            violations(|c| c.expect_regex = "r".repeat(1025)),
            one("websocket.expect_regex", "must be at most 1024 characters")
        );
        assert_eq!(
            violations(|c| c.expect_regex = "(unclosed".into()),
            one(
                "websocket.expect_regex",
                "is not a valid regular expression: error: unclosed group"
            )
        );
    }

    #[test]
    fn skipping_certificate_checks_needs_wss() {
        assert_eq!(
            violations(|c| {
                c.url = "ws://chat.example/live".into();
                c.insecure_skip_tls_verify = true;
            }),
            one(
                "websocket.insecure_skip_tls_verify",
                "applies only to wss:// URLs (ws:// has no certificate to check)"
            )
        );
    }
}
