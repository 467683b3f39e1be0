//! The TCP check's Telnet-style send and expect against real servers: the
//! mock's HTTP port (a request sent, the answer expected), its SSH-like
//! banner port (an answer without sending), and in-test servers that talk
//! and hold or never speak. (Plain connects are in `checks.rs`, through a
//! proxy in `socks5.rs`.)

mod common;

use std::time::Duration;

use common::checks::{GENEROUS, MOCK_FLAGS, assertion_names, job, runner, silent_server};
use monitor_proto::v1::{CheckOutcome, CheckResult, TcpCheck, TcpResult, check_result, job::Check};
use monitor_testkit::mock::MockServer;
use tokio::io::AsyncWriteExt as _;

const PING: &str = "GET /__ping HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n";

fn check(port: u16) -> TcpCheck {
    TcpCheck {
        host: "127.0.0.1".to_owned(),
        port: u32::from(port),
        ..TcpCheck::default()
    }
}

async fn run(check: TcpCheck, timeout: Duration) -> CheckResult {
    runner().run(&job(Check::Tcp(check), timeout)).await
}

fn tcp_detail(result: &CheckResult) -> &TcpResult {
    match &result.detail {
        Some(check_result::Detail::Tcp(detail)) => detail,
        other => panic!("not a TCP result: {other:?}"),
    }
}

/// A server that writes `text` to each connection and holds it open.
async fn talk_and_hold(text: &'static str) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(text.as_bytes()).await;
            held.push(stream);
        }
    });
    address
}

#[tokio::test]
async fn a_request_sent_gets_the_expected_answer() {
    let mock = MockServer::start(MOCK_FLAGS).await;
    let result = run(
        TcpCheck {
            send: PING.to_owned(),
            expect_contains: "\r\n\r\nok\n".to_owned(),
            expect_regex: r"^HTTP/1\.1 200 OK\r\n".to_owned(),
            ..check(mock.address.port())
        },
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(
        assertion_names(&result),
        [("expect_contains", true), ("expect_regex", true)]
    );
    let detail = tcp_detail(&result);
    assert!(
        detail.received.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        detail.received
    );
    assert!(detail.received.ends_with("\r\n\r\nok\n"), "{}", detail.received);
    assert_eq!(detail.address, mock.address.to_string());
    assert!(detail.connect_time.is_some() && detail.response_time.is_some());
}

#[tokio::test]
async fn a_banner_is_expected_without_sending() {
    let mock = MockServer::start(&[MOCK_FLAGS, &["--ssh-listen=127.0.0.1:0"]].concat()).await;
    let result = run(
        TcpCheck {
            expect_contains: "SSH-2.0-".to_owned(),
            ..check(mock.ssh_address.unwrap().port())
        },
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    // The banner matched at once; the mock still waits for a line.
    assert_eq!(tcp_detail(&result).received, "SSH-2.0-MonitorMock_1.0\r\n");
}

#[tokio::test]
async fn an_answer_that_ends_without_the_expected_text_fails() {
    let mock = MockServer::start(MOCK_FLAGS).await;
    let result = run(
        TcpCheck {
            send: PING.to_owned(),
            expect_contains: "pong".to_owned(),
            ..check(mock.address.port())
        },
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert!(
        result.error.starts_with("the answer \"HTTP/1.1 200 OK\\r\\n"),
        "{}",
        result.error
    );
    assert!(result.error.ends_with(" does not contain \"pong\""), "{}", result.error);
    assert_eq!(assertion_names(&result), [("expect_contains", false)]);
    // The server closed: the answer is complete.
    assert!(tcp_detail(&result).response_time.is_some());
}

#[tokio::test]
async fn the_deadline_judges_what_arrived() {
    let address = talk_and_hold("220 busy\r\n").await;
    let result = run(
        TcpCheck {
            expect_regex: "^220 ready".to_owned(),
            ..check(address.port())
        },
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        result.error,
        "the answer \"220 busy\\r\\n\" does not match /^220 ready/"
    );
    let detail = tcp_detail(&result);
    assert_eq!(detail.received, "220 busy\r\n");
    // Never complete.
    assert!(detail.response_time.is_none());
}

#[tokio::test]
async fn silence_after_connecting_is_a_timeout() {
    let address = silent_server().await;
    let result = run(
        TcpCheck {
            send: "hello\r\n".to_owned(),
            expect_contains: "hi".to_owned(),
            ..check(address.port())
        },
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout, "{result:?}");
    assert_eq!(result.error, "connected, but no answer arrived within 300ms");
    let detail = tcp_detail(&result);
    assert_eq!(detail.address, address.to_string());
    assert!(detail.connect_time.is_some());
    assert_eq!(detail.received, "");
}

#[tokio::test]
async fn at_most_4_kib_are_read() {
    let mock = MockServer::start(MOCK_FLAGS).await;
    let result = run(
        TcpCheck {
            send: "GET /website_mock?status=200&size=20000 HTTP/1.1\r\nHost: mock\r\n\r\n".to_owned(),
            expect_contains: "never there".to_owned(),
            ..check(mock.address.port())
        },
        GENEROUS,
    )
    .await;
    // Judged once 4 KiB arrived: the connection (kept alive) stays open.
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    let detail = tcp_detail(&result);
    assert_eq!(detail.received.len(), 4096);
    assert!(detail.response_time.is_some());
}

#[tokio::test]
async fn sending_alone_needs_no_answer() {
    let address = silent_server().await;
    let result = run(
        TcpCheck {
            send: "QUIT\r\n".to_owned(),
            ..check(address.port())
        },
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert!(result.assertions.is_empty());
    let detail = tcp_detail(&result);
    assert_eq!(detail.received, "");
    assert!(detail.response_time.is_none());
}
