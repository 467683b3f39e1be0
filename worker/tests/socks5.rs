//! SOCKS5 against the mock's proxy listener, which CONNECTs for real (to
//! the mock's own HTTP port, or a closed one): the SOCKS5 check, its
//! failures (login refused, target refused, proxy down, not a proxy), and
//! the TCP check through the proxy.

mod common;

use common::checks::{GENEROUS, MOCK_FLAGS, default_runner, job, runner};
use monitor_proto::v1::{
    CheckOutcome, CheckResult, Socks5Check, Socks5Proxy, Socks5Result, TcpCheck, TcpResult, check_result, job::Check,
};
use monitor_testkit::{free_port, mock::MockServer};

const USER: &str = "probe";
const PASSWORD: &str = "s0cks-secret";

/// A mock with an open SOCKS5 proxy.
async fn proxy_mock() -> MockServer {
    MockServer::start(&[MOCK_FLAGS, &["--socks5-listen=127.0.0.1:0"]].concat()).await
}

/// A mock whose proxy requires [`USER`] and [`PASSWORD`].
async fn login_mock() -> MockServer {
    let login = [
        "--socks5-listen=127.0.0.1:0",
        &format!("--socks5-user={USER}"),
        &format!("--socks5-password={PASSWORD}"),
    ]
    .map(str::to_owned);
    let flags: Vec<&str> = MOCK_FLAGS
        .iter()
        .copied()
        .chain(login.iter().map(String::as_str))
        .collect();
    MockServer::start(&flags).await
}

fn proxy_of(mock: &MockServer) -> Socks5Proxy {
    Socks5Proxy {
        host: "127.0.0.1".to_owned(),
        port: u32::from(mock.socks5_address.unwrap().port()),
        ..Socks5Proxy::default()
    }
}

fn with_login(proxy: Socks5Proxy, user: &str, password: &str) -> Socks5Proxy {
    Socks5Proxy {
        username: user.to_owned(),
        password: password.to_owned(),
        ..proxy
    }
}

fn socks5(proxy: Socks5Proxy, target_host: &str, target_port: u16) -> Socks5Check {
    Socks5Check {
        proxy: Some(proxy),
        target_host: target_host.to_owned(),
        target_port: u32::from(target_port),
    }
}

async fn run(check: Socks5Check) -> CheckResult {
    runner().run(&job(Check::Socks5(check), GENEROUS)).await
}

fn socks5_detail(result: &CheckResult) -> &Socks5Result {
    match &result.detail {
        Some(check_result::Detail::Socks5(detail)) => detail,
        other => panic!("not a SOCKS5 result: {other:?}"),
    }
}

fn tcp_detail(result: &CheckResult) -> &TcpResult {
    match &result.detail {
        Some(check_result::Detail::Tcp(detail)) => detail,
        other => panic!("not a TCP result: {other:?}"),
    }
}

#[tokio::test]
async fn the_proxy_reaches_the_target() {
    let mock = proxy_mock().await;
    let result = run(socks5(proxy_of(&mock), "127.0.0.1", mock.address.port())).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    let detail = socks5_detail(&result);
    assert_eq!(detail.proxy_address, mock.socks5_address.unwrap().to_string());
    assert_eq!(detail.reply, "succeeded");
    assert!(detail.connect_time.is_some() && detail.handshake_time.is_some());
}

#[tokio::test]
async fn a_target_name_is_resolved_by_the_proxy() {
    let mock = proxy_mock().await;
    let result = run(socks5(proxy_of(&mock), "localhost", mock.address.port())).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    // Not a DNS failure of the worker: the proxy could not resolve it.
    let result = run(socks5(proxy_of(&mock), "nonexistent.invalid", 80)).await;
    assert_eq!(result.outcome(), CheckOutcome::Proxy, "{result:?}");
    assert_eq!(
        result.error,
        "the proxy could not reach nonexistent.invalid:80: host unreachable"
    );
    assert_eq!(socks5_detail(&result).reply, "host unreachable");
}

#[tokio::test]
async fn the_login_is_sent_and_a_wrong_one_refused() {
    let mock = login_mock().await;
    let target = mock.address.port();
    let result = run(socks5(with_login(proxy_of(&mock), USER, PASSWORD), "127.0.0.1", target)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");

    let result = run(socks5(with_login(proxy_of(&mock), USER, "wrong"), "127.0.0.1", target)).await;
    assert_eq!(result.outcome(), CheckOutcome::Proxy, "{result:?}");
    assert_eq!(result.error, "the proxy refused the login of user \"probe\"");
    let detail = socks5_detail(&result);
    assert_eq!(detail.proxy_address, mock.socks5_address.unwrap().to_string());
    assert!(detail.connect_time.is_some());
    assert_eq!(detail.reply, "");

    let result = run(socks5(proxy_of(&mock), "127.0.0.1", target)).await;
    assert_eq!(result.outcome(), CheckOutcome::Proxy, "{result:?}");
    assert_eq!(
        result.error,
        "the proxy requires authentication (set a user name and password)"
    );
}

#[tokio::test]
async fn a_refused_target_is_named_in_the_reply() {
    let mock = proxy_mock().await;
    let port = free_port();
    let result = run(socks5(proxy_of(&mock), "127.0.0.1", port)).await;
    assert_eq!(result.outcome(), CheckOutcome::Proxy, "{result:?}");
    assert_eq!(
        result.error,
        format!("the proxy could not reach 127.0.0.1:{port}: connection refused")
    );
    let detail = socks5_detail(&result);
    assert_eq!(detail.reply, "connection refused");
    assert!(detail.handshake_time.is_none());
}

#[tokio::test]
async fn a_proxy_that_is_down_is_a_connect_failure() {
    let port = free_port();
    let proxy = Socks5Proxy {
        host: "127.0.0.1".to_owned(),
        port: u32::from(port),
        ..Socks5Proxy::default()
    };
    let result = run(socks5(proxy, "127.0.0.1", 80)).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("proxy: connection refused (127.0.0.1:{port})"));
    assert_eq!(socks5_detail(&result).proxy_address, "");
}

#[tokio::test]
async fn a_server_that_is_not_a_proxy_is_a_protocol_error() {
    let mock = MockServer::start(MOCK_FLAGS).await;
    let proxy = Socks5Proxy {
        host: "127.0.0.1".to_owned(),
        port: u32::from(mock.address.port()),
        ..Socks5Proxy::default()
    };
    let result = run(socks5(proxy, "127.0.0.1", 80)).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
    // The mock's HTTP side answers the greeting with a 400.
    assert_eq!(result.error, "not a SOCKS5 proxy: its answer starts with \"H\"");
}

#[tokio::test]
async fn blocked_proxies_and_targets_are_not_contacted() {
    let mock = proxy_mock().await;
    // Without --allow-net the proxy on loopback is blocked.
    let result = default_runner()
        .run(&job(
            Check::Socks5(socks5(proxy_of(&mock), "localhost", mock.address.port())),
            GENEROUS,
        ))
        .await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert!(result.error.starts_with("proxy: address 127.0.0.1"), "{}", result.error);
    // A target literal in a blocked network is refused before the proxy.
    let result = run(socks5(proxy_of(&mock), "169.254.169.254", 80)).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(socks5_detail(&result).proxy_address, "");
}

#[tokio::test]
async fn a_tcp_check_goes_through_the_proxy() {
    let mock = login_mock().await;
    let check = TcpCheck {
        host: "127.0.0.1".to_owned(),
        port: u32::from(mock.address.port()),
        send: "GET /__ping HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n".to_owned(),
        expect_regex: r"^HTTP/1\.1 200 OK\r\n(?s:.*)\r\n\r\nok\n$".to_owned(),
        proxy: Some(with_login(proxy_of(&mock), USER, PASSWORD)),
        ..TcpCheck::default()
    };
    let result = runner().run(&job(Check::Tcp(check.clone()), GENEROUS)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    let detail = tcp_detail(&result);
    // The address connected to is the proxy's.
    assert_eq!(detail.address, mock.socks5_address.unwrap().to_string());
    assert!(detail.connect_time.is_some() && detail.response_time.is_some());
    assert!(detail.received.ends_with("\r\n\r\nok\n"), "{}", detail.received);

    let port = free_port();
    let refused = TcpCheck {
        port: u32::from(port),
        ..check
    };
    let result = runner().run(&job(Check::Tcp(refused), GENEROUS)).await;
    assert_eq!(result.outcome(), CheckOutcome::Proxy, "{result:?}");
    assert_eq!(
        result.error,
        format!("the proxy could not reach 127.0.0.1:{port}: connection refused")
    );
}

fn http_through(proxy: Socks5Proxy, url: String) -> monitor_proto::v1::HttpCheck {
    monitor_proto::v1::HttpCheck {
        url,
        proxy: Some(proxy),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_http_check_goes_through_the_proxy_with_its_login() {
    let mock = login_mock().await;
    let runner = runner();
    let proxy = with_login(proxy_of(&mock), USER, PASSWORD);
    let before = mock.stats().await.total;
    let result = runner
        .run(&job(
            Check::Http(http_through(proxy.clone(), mock.url("/status/204"))),
            GENEROUS,
        ))
        .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    let Some(check_result::Detail::Http(http)) = &result.detail else {
        panic!("{result:?}")
    };
    assert_eq!(http.status_code, 204);
    // The connect phase is the proxy's (TCP plus the SOCKS5 exchange).
    assert!(http.timing.as_ref().unwrap().connect.is_some(), "{http:?}");
    assert_eq!(
        mock.stats().await.total,
        before + 1,
        "the request reached the mock through the proxy"
    );

    // A wrong password is the proxy refusing, not the target.
    let wrong = with_login(proxy_of(&mock), USER, "wrong");
    let refused = runner
        .run(&job(
            Check::Http(http_through(wrong, mock.url("/status/204"))),
            GENEROUS,
        ))
        .await;
    assert_eq!(refused.outcome(), CheckOutcome::Proxy, "{refused:?}");
    assert!(refused.error.starts_with("SOCKS5 proxy: "), "{}", refused.error);

    // The proxy's own address is subject to the blocklist.
    let blocked = default_runner()
        .run(&job(
            Check::Http(http_through(proxy, mock.url("/status/204"))),
            GENEROUS,
        ))
        .await;
    assert_eq!(blocked.outcome(), CheckOutcome::Blocked, "{blocked:?}");
}
