//! The WebSocket check against the mock's WebSocket routes (`/ws/echo`,
//! `/ws/greet`, `/ws/silent`, `/ws/close`) over ws and wss, and its
//! refusals: a plain HTTP path, a closed port, a blocked address.

use std::time::Duration;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, HttpHeader, Job, WebSocketCheck, WebSocketResult, check_result, job,
};
use monitor_testkit::free_port;
use monitor_testkit::mock::{MockServer, WEBSOCKET_GREETING, tls_config};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

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

fn check(url: String) -> WebSocketCheck {
    WebSocketCheck {
        url,
        ..WebSocketCheck::default()
    }
}

async fn run_with(runner: &CheckRunner, check: WebSocketCheck, timeout: Duration) -> CheckResult {
    let job = Job {
        timeout: Some(timeout.into()),
        check: Some(job::Check::Websocket(check)),
        ..Job::default()
    };
    runner.run(&job).await
}

async fn run(check: WebSocketCheck) -> CheckResult {
    run_with(&runner(), check, GENEROUS).await
}

fn detail(result: &CheckResult) -> &WebSocketResult {
    match &result.detail {
        Some(check_result::Detail::Websocket(detail)) => detail,
        other => panic!("not a WebSocket result: {other:?}"),
    }
}

async fn mock() -> MockServer {
    MockServer::start(MOCK_FLAGS).await
}

#[tokio::test]
async fn the_echo_route_returns_what_was_sent() {
    let mock = mock().await;
    let result = run(WebSocketCheck {
        send: "ping 42".into(),
        expect_contains: "ping".into(),
        expect_regex: "^ping [0-9]+$".into(),
        ..check(mock.ws_url("/ws/echo"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    assert_eq!(result.error, "");
    let detail = detail(&result);
    assert_eq!(detail.status_code, 101);
    assert_eq!(detail.received, "ping 42");
    assert!(detail.connect_time.is_some() && detail.reply_time.is_some());
    let names: Vec<_> = result.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["expect_contains", "expect_regex"]);
    assert!(result.assertions.iter().all(|a| a.passed));
    assert_eq!(result.assertions[0].detail, "reply contains \"ping\"");
    assert_eq!(result.assertions[1].detail, "reply matches /^ping [0-9]+$/");
}

#[tokio::test]
async fn a_greeting_is_a_reply_without_sending() {
    let mock = mock().await;
    let result = run(WebSocketCheck {
        expect_contains: "hello".into(),
        ..check(mock.ws_url("/ws/greet"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    assert_eq!(detail(&result).received, WEBSOCKET_GREETING);
}

#[tokio::test]
async fn without_an_expectation_the_upgrade_is_the_check() {
    let mock = mock().await;
    // /ws/silent never sends: nothing is awaited, so nothing times out.
    let result = run(WebSocketCheck {
        send: "anyone?".into(),
        ..check(mock.ws_url("/ws/silent"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    let detail = detail(&result);
    assert_eq!(detail.status_code, 101);
    assert!(detail.connect_time.is_some());
    assert_eq!((detail.received.as_str(), detail.reply_time), ("", None));
    assert!(result.assertions.is_empty());
    assert_eq!(mock.stats().await.by_route["websocket"].by_status["101"], 1);
}

#[tokio::test]
async fn a_reply_that_does_not_match_fails_the_assertions() {
    let mock = mock().await;
    let result = run(WebSocketCheck {
        send: "pong".into(),
        expect_contains: "ping".into(),
        expect_regex: "^[0-9]+$".into(),
        ..check(mock.ws_url("/ws/echo"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed);
    assert_eq!(result.error, "reply does not contain \"ping\"");
    assert_eq!(detail(&result).received, "pong");
    let passed: Vec<_> = result.assertions.iter().map(|a| a.passed).collect();
    assert_eq!(passed, [false, false]);
    assert_eq!(result.assertions[1].detail, "reply does not match /^[0-9]+$/");
}

#[tokio::test]
async fn a_silent_server_times_out_after_the_upgrade() {
    let mock = mock().await;
    let result = run_with(
        &runner(),
        WebSocketCheck {
            send: "anyone?".into(),
            expect_contains: "yes".into(),
            ..check(mock.ws_url("/ws/silent"))
        },
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout);
    assert_eq!(result.error, "timed out after 300ms");
    let detail = detail(&result);
    assert_eq!(detail.status_code, 101, "the upgrade was seen");
    assert!(detail.connect_time.is_some());
    assert_eq!(detail.received, "");
}

#[tokio::test]
async fn a_close_before_the_reply_is_a_protocol_error_with_its_code() {
    let mock = mock().await;
    let result = run(WebSocketCheck {
        expect_contains: "anything".into(),
        ..check(mock.ws_url("/ws/close"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    assert_eq!(result.error, "closed before replying (code 1000)");
    assert_eq!(detail(&result).status_code, 101);
    assert!(result.assertions.is_empty());
}

#[tokio::test]
async fn a_plain_http_path_refuses_the_upgrade() {
    let mock = mock().await;
    let result = run(check(mock.ws_url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    assert_eq!(result.error, "upgrade refused: HTTP 200");

    let result = run(check(mock.ws_url("/no/such/page"))).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError);
    assert_eq!(result.error, "upgrade refused: HTTP 404");
    assert_eq!(detail(&result).status_code, 404);
    assert_eq!(detail(&result).connect_time, None);
}

/// An in-test WebSocket server records the upgrade request's headers.
#[tokio::test]
async fn headers_and_userinfo_go_with_the_upgrade() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (seen, mut requests) = mpsc::unbounded_channel::<http::HeaderMap>();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // The signature is tungstenite's callback's (its error is a response).
        #[allow(clippy::result_large_err)]
        let record = |request: &Request, response: Response| {
            let _ = seen.send(request.headers().clone());
            Ok(response)
        };
        let _socket = tokio_tungstenite::accept_hdr_async(stream, record).await;
    });
    let result = run(WebSocketCheck {
        headers: vec![
            HttpHeader {
                name: "X-Tenant".into(),
                value: "shop".into(),
            },
            HttpHeader {
                name: "Origin".into(),
                value: "https://shop.example".into(),
            },
        ],
        ..check(format!("ws://us%40er:p%3Ass@{address}/live?room=1"))
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    let headers = requests.recv().await.expect("the upgrade reached the server");
    assert_eq!(headers["x-tenant"], "shop");
    assert_eq!(headers["origin"], "https://shop.example");
    // base64("us@er:p:ss"): the userinfo, percent-decoded, as Basic credentials.
    assert_eq!(headers["authorization"], "Basic dXNAZXI6cDpzcw==");
    assert_eq!(headers["host"], address.to_string());
    let user_agent = headers["user-agent"].to_str().unwrap();
    assert!(user_agent.starts_with("monitor-worker/"), "{user_agent}");
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_needs_insecure_skip_tls_verify() {
    let (mock, _certificate) = MockServer::start_with_tls(MOCK_FLAGS, &tls_config(-1, 30)).await;
    let spec = WebSocketCheck {
        send: "over tls".into(),
        expect_contains: "over tls".into(),
        ..check(mock.wss_url("/ws/echo"))
    };
    let result = run(spec.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls);
    assert_eq!(result.error, "certificate not trusted (unknown issuer)");
    assert_eq!(detail(&result).status_code, 0);

    let result = run(WebSocketCheck {
        insecure_skip_tls_verify: true,
        ..spec
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{}", result.error);
    assert_eq!(detail(&result).received, "over tls");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let port = free_port();
    let result = run(check(format!("ws://127.0.0.1:{port}/ws/echo"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect);
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));
    assert_eq!(detail(&result).status_code, 0);
}

#[tokio::test]
async fn loopback_is_blocked_without_allow_net_and_bad_names_do_not_resolve() {
    let mock = mock().await;
    let default = CheckRunner::new(CheckConfig::default()).unwrap();
    let result = run_with(&default, check(mock.ws_url("/ws/echo")), GENEROUS).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked);
    assert!(result.error.contains("--allow-net 127.0.0.0/8"), "{}", result.error);
    assert_eq!(mock.stats().await.by_route["websocket"].total, 0, "not contacted");

    let result = run(check("ws://nonexistent.invalid/ws".into())).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns);
}
