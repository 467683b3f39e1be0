//! The SSH check against the mock's SSH-like banner listener, servers
//! that are not SSH (an HTTP error, the mock's HTTPS port) and a listener
//! that never speaks.

mod common;

use std::time::Duration;

use common::checks::{GENEROUS, MOCK_FLAGS, assertion_names, default_runner, job, runner, silent_server};
use monitor_proto::v1::{CheckOutcome, CheckResult, SshCheck, SshResult, check_result, job::Check};
use monitor_testkit::{
    free_port,
    mock::{MockServer, tls_config},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const BANNER: &str = "SSH-2.0-MonitorMock_1.0";

async fn ssh_mock() -> MockServer {
    let flags = [MOCK_FLAGS, &["--ssh-listen=127.0.0.1:0"]].concat();
    MockServer::start(&flags).await
}

fn check(host: &str, port: u16) -> SshCheck {
    SshCheck {
        host: host.to_owned(),
        port: u32::from(port),
        ..SshCheck::default()
    }
}

fn to_mock(mock: &MockServer) -> SshCheck {
    check("127.0.0.1", mock.ssh_address.unwrap().port())
}

async fn run(check: SshCheck) -> CheckResult {
    runner().run(&job(Check::Ssh(check), GENEROUS)).await
}

fn ssh_detail(result: &CheckResult) -> &SshResult {
    match &result.detail {
        Some(check_result::Detail::Ssh(detail)) => detail,
        other => panic!("not an SSH result: {other:?}"),
    }
}

#[tokio::test]
async fn the_banner_is_read_and_reported() {
    let mock = ssh_mock().await;
    let result = run(to_mock(&mock)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    assert!(result.assertions.is_empty());
    let detail = ssh_detail(&result);
    assert_eq!(detail.banner, BANNER);
    assert_eq!(detail.address, mock.ssh_address.unwrap().to_string());
    assert!(detail.connect_time.is_some() && detail.banner_time.is_some());
}

#[tokio::test]
async fn banner_assertions_pass_and_fail() {
    let mock = ssh_mock().await;
    let result = run(SshCheck {
        banner_contains: "MonitorMock".to_owned(),
        banner_regex: r"^SSH-2\.0-\w+_1\.\d$".to_owned(),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(assertion_names(&result), [("banner", true), ("banner", true)]);

    let result = run(SshCheck {
        banner_contains: "OpenSSH".to_owned(),
        banner_regex: r"^SSH-2\.0-".to_owned(),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        result.error,
        format!("banner \"{BANNER}\" does not contain \"OpenSSH\"")
    );
    assert_eq!(assertion_names(&result), [("banner", false), ("banner", true)]);
    assert_eq!(ssh_detail(&result).banner, BANNER);

    let result = run(SshCheck {
        banner_regex: "^SSH-1\\.99-".to_owned(),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        result.error,
        format!("banner \"{BANNER}\" does not match /^SSH-1\\.99-/")
    );
}

/// A server that answers with an HTTP error and closes, as nginx does to
/// a line it cannot parse.
async fn http_error_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // The worker's line first: closing with it unread would reset.
            let mut line = Vec::new();
            let mut byte = [0_u8; 1];
            while !line.ends_with(b"\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                line.push(byte[0]);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    address
}

#[tokio::test]
async fn a_server_that_is_not_ssh_is_a_protocol_error() {
    let address = http_error_server().await;
    let result = run(check("127.0.0.1", address.port())).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
    assert_eq!(
        result.error,
        "not SSH: the server closed the connection without an identification line \
         (it began with \"HTTP/1.1 400 Bad Request\")"
    );
    let detail = ssh_detail(&result);
    assert_eq!(detail.banner, "");
    assert!(detail.connect_time.is_some());

    // The mock's HTTPS port: TLS refuses the worker's identification line
    // with an alert record and closes.
    let (mock, _) = MockServer::start_with_tls(MOCK_FLAGS, &tls_config(-1, 30)).await;
    let result = run(check("127.0.0.1", mock.tls_address.unwrap().port())).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
    assert!(
        result
            .error
            .starts_with("not SSH: the server closed the connection without an identification line (it sent "),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_server_that_never_speaks_times_out() {
    let address = silent_server().await;
    let result = runner()
        .run(&job(
            Check::Ssh(check("127.0.0.1", address.port())),
            Duration::from_millis(300),
        ))
        .await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout, "{result:?}");
    assert_eq!(
        result.error,
        "connected, but no SSH identification line arrived within 300ms"
    );
    let detail = ssh_detail(&result);
    assert_eq!(detail.address, address.to_string());
    assert!(detail.connect_time.is_some() && detail.banner_time.is_none());
}

#[tokio::test]
async fn unreachable_blocked_and_unknown_hosts_fail_to_connect() {
    let port = free_port();
    let result = run(check("127.0.0.1", port)).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));

    let result = run(check("nonexistent.invalid", 22)).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns, "{result:?}");

    let mock = ssh_mock().await;
    let result = default_runner().run(&job(Check::Ssh(to_mock(&mock)), GENEROUS)).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
}
