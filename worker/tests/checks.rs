//! The check engine against the real mock website, started in-process on
//! port 0 by each test (so tests run in parallel and share nothing).

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, HttpAssertions, HttpCheck, HttpHeader, HttpMethod, HttpResult, Job, StatusRange,
    TcpCheck, TcpResult, check_result, job,
};
use monitor_testkit::{
    free_port,
    mock::{MockServer, tls_config},
};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};

/// Long enough that only the checks meant to time out do.
const GENEROUS: Duration = Duration::from_secs(10);

/// The mock's flags here: no latency, no grace at shutdown.
const MOCK_FLAGS: &[&str] = &["--latency-ms=0", "--shutdown-grace-ms=0"];

async fn start_mock() -> MockServer {
    MockServer::start(MOCK_FLAGS).await
}

/// With an HTTPS listener whose self-signed certificate is valid from
/// `not_before` to `not_after` days from now.
async fn start_https_mock(not_before: i64, not_after: i64) -> MockServer {
    MockServer::start_with_tls(MOCK_FLAGS, &tls_config(not_before, not_after))
        .await
        .0
}

fn networks(list: &[&str]) -> Vec<ipnet::IpNet> {
    list.iter().map(|net| net.parse().unwrap()).collect()
}

/// The default configuration with loopback opened, as `--allow-net
/// 127.0.0.0/8,::1/128` does: the mock and the test servers listen there.
fn config() -> CheckConfig {
    CheckConfig {
        blocklist: Blocklist::with_defaults([], networks(&["127.0.0.0/8", "::1/128"])),
        ..CheckConfig::default()
    }
}

fn runner() -> CheckRunner {
    CheckRunner::new(config()).expect("runner builds")
}

/// A worker started without `--allow-net`.
fn default_runner() -> CheckRunner {
    CheckRunner::new(CheckConfig::default()).expect("runner builds")
}

fn get(url: &str) -> HttpCheck {
    HttpCheck {
        url: url.to_owned(),
        ..HttpCheck::default()
    }
}

fn job(check: job::Check, timeout: Duration) -> Job {
    Job {
        timeout: Some(timeout.into()),
        check: Some(check),
        ..Job::default()
    }
}

async fn run_http(runner: &CheckRunner, check: HttpCheck) -> CheckResult {
    runner.run(&job(job::Check::Http(check), GENEROUS)).await
}

async fn run_tcp(runner: &CheckRunner, host: &str, port: u16) -> CheckResult {
    let check = TcpCheck {
        host: host.to_owned(),
        port: u32::from(port),
        ..TcpCheck::default()
    };
    runner.run(&job(job::Check::Tcp(check), GENEROUS)).await
}

fn http_detail(result: &CheckResult) -> &HttpResult {
    match &result.detail {
        Some(check_result::Detail::Http(detail)) => detail,
        other => panic!("not an HTTP result: {other:?}"),
    }
}

fn tcp_detail(result: &CheckResult) -> &TcpResult {
    match &result.detail {
        Some(check_result::Detail::Tcp(detail)) => detail,
        other => panic!("not a TCP result: {other:?}"),
    }
}

fn assertion_names(result: &CheckResult) -> Vec<(&str, bool)> {
    result
        .assertions
        .iter()
        .map(|assertion| (assertion.name.as_str(), assertion.passed))
        .collect()
}

/// A one-shot server that reads a request's head, writes `response` as
/// is, and closes the connection.
fn answer_once_with(response: String) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = Vec::new();
            let mut buffer = [0_u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            let _ = stream.write_all(response.as_bytes());
        }
    });
    address
}

/// A one-shot server that answers with a 302 to `location`.
fn redirect_once_to(location: &str) -> SocketAddr {
    answer_once_with(format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ))
}

#[tokio::test]
async fn status_200_is_ok() {
    let mock = start_mock().await;
    let result = run_http(&runner(), get(&mock.url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    assert_eq!(assertion_names(&result), [("status", true)]);
    assert!(result.start_time.is_some());
    assert!(result.duration.is_some());
    let detail = http_detail(&result);
    assert_eq!(detail.status_code, 200);
    assert_eq!(detail.body_bytes, "200 OK\n".len() as u64);
    assert_eq!(detail.final_url, mock.url("/status/200"));
    assert_eq!(detail.redirects, 0);
    assert!(detail.first_byte_time.is_some());
}

#[tokio::test]
async fn status_500_fails_the_status_assertion() {
    let mock = start_mock().await;
    let mut check = get(&mock.url("/status/500"));
    check.assertions = Some(HttpAssertions {
        accepted_status: vec![StatusRange { min: 200, max: 299 }],
        ..HttpAssertions::default()
    });
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "status 500, expected 200..=299");
    assert_eq!(assertion_names(&result), [("status", false)]);
    assert_eq!(http_detail(&result).status_code, 500);
}

#[tokio::test]
async fn body_assertions_pass_and_fail() {
    let mock = start_mock().await;
    let runner = runner();
    let with_body_assertions = |contains: &str, regex: &str| {
        let mut check = get(&mock.url("/echo?probe=abc"));
        check.assertions = Some(HttpAssertions {
            body_contains: contains.to_owned(),
            body_regex: regex.to_owned(),
            ..HttpAssertions::default()
        });
        check
    };

    let passing = run_http(&runner, with_body_assertions("probe=abc", r#""method":"GET""#)).await;
    assert_eq!(passing.outcome(), CheckOutcome::Ok, "{passing:?}");
    assert_eq!(
        assertion_names(&passing),
        [("status", true), ("body_contains", true), ("body_regex", true)]
    );

    let failing = run_http(&runner, with_body_assertions("not-there", r#""method":"POST""#)).await;
    assert_eq!(failing.outcome(), CheckOutcome::AssertionFailed, "{failing:?}");
    assert_eq!(failing.error, r#"body does not contain "not-there""#);
    assert_eq!(
        assertion_names(&failing),
        [("status", true), ("body_contains", false), ("body_regex", false)]
    );

    let regex_only = run_http(&runner, with_body_assertions("", "^[0-9]+$")).await;
    assert_eq!(regex_only.outcome(), CheckOutcome::AssertionFailed);
    assert_eq!(regex_only.error, "body does not match /^[0-9]+$/");
}

#[tokio::test]
async fn website_mock_body_is_matched() {
    let mock = start_mock().await;
    let mut check = get(&mock.url("/website_mock?seed=7&status=200&size=64"));
    check.assertions = Some(HttpAssertions {
        body_regex: "(?s).+".to_owned(),
        ..HttpAssertions::default()
    });
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(http_detail(&result).body_bytes, 64);
}

#[tokio::test]
async fn only_max_body_bytes_are_kept_but_all_are_counted() {
    let mock = start_mock().await;
    let runner = CheckRunner::new(CheckConfig {
        max_body_bytes: 100,
        ..config()
    })
    .unwrap();
    let mut check = get(&mock.url("/bytes/5000"));
    check.assertions = Some(HttpAssertions {
        body_contains: "\u{1}never".to_owned(),
        ..HttpAssertions::default()
    });
    let result = run_http(&runner, check).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(http_detail(&result).body_bytes, 5000);
    assert!(
        result
            .error
            .starts_with("body (first 100 of 5000 bytes) does not contain"),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_slow_answer_fails_max_response_time() {
    let mock = start_mock().await;
    let mut check = get(&mock.url("/delay/300"));
    check.assertions = Some(HttpAssertions {
        max_response_time: Some(Duration::from_millis(100).into()),
        ..HttpAssertions::default()
    });
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        assertion_names(&result),
        [("status", true), ("max_response_time", false)]
    );
    assert!(result.error.ends_with("more than 100ms"), "{}", result.error);
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let mock = start_mock().await;
    let check = job(job::Check::Http(get(&mock.url("/hang"))), Duration::from_millis(300));
    let result = runner().run(&check).await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout, "{result:?}");
    assert_eq!(result.error, "timed out after 300ms");
    assert!(result.assertions.is_empty());
    let duration = Duration::try_from(result.duration.unwrap()).unwrap();
    assert!(duration >= Duration::from_millis(300), "{duration:?}");
    assert_eq!(http_detail(&result).status_code, 0);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_failure() {
    let port = free_port();
    let result = run_http(&runner(), get(&format!("http://127.0.0.1:{port}/"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));
}

#[tokio::test]
async fn an_unknown_host_is_a_dns_failure() {
    let result = run_http(&runner(), get("http://nonexistent.invalid/")).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns, "{result:?}");
    assert!(
        result.error.starts_with("could not resolve nonexistent.invalid"),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_self_signed_certificate_is_a_tls_failure_unless_verification_is_skipped() {
    let mock = start_https_mock(-1, 30).await;
    let runner = runner();
    let result = run_http(&runner, get(&mock.https_url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls, "{result:?}");
    assert_eq!(result.error, "certificate not trusted (unknown issuer)");

    let mut insecure = get(&mock.https_url("/status/200"));
    insecure.insecure_skip_tls_verify = true;
    let result = run_http(&runner, insecure).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(http_detail(&result).status_code, 200);
}

#[tokio::test]
async fn an_expired_certificate_says_so() {
    let mock = start_https_mock(-30, -1).await;
    let result = run_http(&runner(), get(&mock.https_url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls, "{result:?}");
    assert!(result.error.contains("expired"), "{}", result.error);
}

#[tokio::test]
async fn redirects_are_followed_and_counted_when_asked() {
    let mock = start_mock().await;
    let runner = runner();
    let mut follow = get(&mock.url("/redirect/3"));
    follow.follow_redirects = true;
    let result = run_http(&runner, follow).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    let detail = http_detail(&result);
    assert_eq!(detail.status_code, 200);
    assert_eq!(detail.redirects, 3);
    assert_eq!(detail.final_url, mock.url("/redirect/0"));

    // Without following, the 302 is the answer; the status assertion decides.
    let result = run_http(&runner, get(&mock.url("/redirect/3"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(http_detail(&result).status_code, 302);
    assert_eq!(http_detail(&result).redirects, 0);
    let mut strict = get(&mock.url("/redirect/3"));
    strict.assertions = Some(HttpAssertions {
        accepted_status: vec![StatusRange { min: 200, max: 200 }],
        ..HttpAssertions::default()
    });
    let result = run_http(&runner, strict).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "status 302, expected 200");
}

#[tokio::test]
async fn ten_redirects_are_followed_and_eleven_are_too_many() {
    let mock = start_mock().await;
    let runner = runner();
    let mut ten = get(&mock.url("/redirect/10"));
    ten.follow_redirects = true;
    let result = run_http(&runner, ten).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(http_detail(&result).redirects, 10);

    let mut eleven = get(&mock.url("/redirect/11"));
    eleven.follow_redirects = true;
    let result = run_http(&runner, eleven).await;
    assert_eq!(result.outcome(), CheckOutcome::HttpError, "{result:?}");
    assert_eq!(result.error, "too many redirects (more than 10)");
}

#[tokio::test]
async fn concurrent_checks_count_their_own_redirects() {
    let mock = start_mock().await;
    let runner = runner();
    let checks = (0..40_u32).map(|n| {
        let runner = runner.clone();
        let hops = n % 4;
        let mut check = get(&mock.url(&format!("/redirect/{hops}")));
        check.follow_redirects = true;
        async move { (hops, run_http(&runner, check).await) }
    });
    // Half in one task (joined), half spread over tasks (spawned).
    let (joined, spawned): (Vec<_>, Vec<_>) = checks.enumerate().partition(|(index, _)| index % 2 == 0);
    let spawned: Vec<_> = spawned.into_iter().map(|(_, check)| tokio::spawn(check)).collect();
    let mut results = futures::future::join_all(joined.into_iter().map(|(_, check)| check)).await;
    for handle in spawned {
        results.push(handle.await.unwrap());
    }
    assert_eq!(results.len(), 40);
    for (hops, result) in results {
        assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
        assert_eq!(http_detail(&result).redirects, hops);
    }
}

#[tokio::test]
async fn a_reset_connection_is_an_http_error() {
    let mock = start_mock().await;
    let result = run_http(&runner(), get(&mock.url("/reset"))).await;
    assert_eq!(result.outcome(), CheckOutcome::HttpError, "{result:?}");
    assert!(
        ["connection reset by the server", "connection closed by the server"].contains(&result.error.as_str()),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_body_cut_short_is_an_http_error() {
    let server = answer_once_with("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_owned());
    let result = run_http(&runner(), get(&format!("http://{server}/"))).await;
    assert_eq!(result.outcome(), CheckOutcome::HttpError, "{result:?}");
    assert!(result.error.starts_with("reading the body: "), "{}", result.error);
    let detail = http_detail(&result);
    assert_eq!(detail.status_code, 200);
    assert_eq!(detail.body_bytes, "only this".len() as u64);
}

#[tokio::test]
async fn an_answer_that_is_not_http_is_an_http_error() {
    let server = answer_once_with("SSH-2.0-OpenSSH_9.6\r\n\r\n".to_owned());
    let result = run_http(&runner(), get(&format!("http://{server}/"))).await;
    assert_eq!(result.outcome(), CheckOutcome::HttpError, "{result:?}");
    assert_eq!(http_detail(&result).status_code, 0);
}

#[tokio::test]
async fn the_metadata_address_is_blocked() {
    let result = run_http(&runner(), get("http://169.254.169.254/latest/meta-data/")).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "address 169.254.169.254 is in blocked network 169.254.169.254/32 \
         (a worker started with --allow-net 169.254.169.254/32 may contact it)"
    );
    let result = run_http(&runner(), get("http://[::ffff:169.254.169.254]/")).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    // Opening link-local leaves the metadata address closed.
    let link_local = CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults([], networks(&["169.254.0.0/16"])),
        ..CheckConfig::default()
    })
    .unwrap();
    let result = run_http(&link_local, get("http://169.254.169.254/latest/meta-data/")).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
}

/// A worker without `--allow-net` refuses the mock on 127.0.0.1 however it
/// is written, over HTTP and TCP, and never sends it a request.
#[tokio::test]
async fn without_allow_net_a_mock_on_loopback_is_blocked() {
    let mock = start_mock().await;
    let runner = default_runner();
    let port = mock.address.port();
    let result = run_http(&runner, get(&mock.url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "address 127.0.0.1 is in blocked network 127.0.0.0/8 \
         (a worker started with --allow-net 127.0.0.0/8 may contact it)"
    );
    for url in [
        format!("http://[::ffff:127.0.0.1]:{port}/status/200"),
        format!("http://2130706433:{port}/status/200"),
        format!("http://0.0.0.0:{port}/status/200"),
    ] {
        let result = run_http(&runner, get(&url)).await;
        assert_eq!(result.outcome(), CheckOutcome::Blocked, "{url}: {result:?}");
    }
    let result = run_http(&runner, get(&format!("http://localhost:{port}/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert!(result.error.starts_with("localhost resolves to "), "{}", result.error);
    assert!(result.error.contains("--allow-net"), "{}", result.error);

    let result = run_tcp(&runner, "127.0.0.1", port).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    let result = run_tcp(&runner, "::ffff:127.0.0.1", port).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    let result = run_tcp(&runner, "localhost", port).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");

    assert_eq!(mock.stats().await.total, 0, "no request reached the mock");
}

/// `--blocklist` adds to what `--allow-net` opens: the more specific wins.
#[tokio::test]
async fn a_listed_network_inside_an_allowed_one_is_blocked() {
    let mock = start_mock().await;
    let runner = CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults(networks(&["127.0.0.1/32"]), networks(&["127.0.0.0/8"])),
        ..CheckConfig::default()
    })
    .unwrap();
    let result = run_http(&runner, get(&mock.url("/status/200"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert!(
        result.error.contains("blocked network 127.0.0.1/32"),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_redirect_into_a_blocked_address_is_refused() {
    let server = redirect_once_to("http://169.254.169.254/latest/meta-data/");
    let mut check = get(&format!("http://{server}/"));
    check.follow_redirects = true;
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "redirect refused: address 169.254.169.254 is in blocked network 169.254.169.254/32 \
         (a worker started with --allow-net 169.254.169.254/32 may contact it)"
    );
}

#[tokio::test]
async fn post_sends_headers_in_order_and_the_body() {
    let mock = start_mock().await;
    let check = HttpCheck {
        url: mock.url("/echo"),
        method: HttpMethod::Post.into(),
        headers: vec![
            HttpHeader {
                name: "X-Order".to_owned(),
                value: "first".to_owned(),
            },
            HttpHeader {
                name: "Content-Type".to_owned(),
                value: "text/plain".to_owned(),
            },
            HttpHeader {
                name: "X-Order".to_owned(),
                value: "second".to_owned(),
            },
        ],
        body: b"hello echo".to_vec(),
        assertions: Some(HttpAssertions {
            body_contains: r#""x-order":["first","second"]"#.to_owned(),
            body_regex: r#""method":"POST".*"content-type":\["text/plain"\].*"body":"hello echo""#.to_owned(),
            ..HttpAssertions::default()
        }),
        ..HttpCheck::default()
    };
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(
        assertion_names(&result),
        [("status", true), ("body_contains", true), ("body_regex", true)]
    );
}

#[tokio::test]
async fn the_configured_user_agent_is_sent() {
    let mock = start_mock().await;
    let runner = CheckRunner::new(CheckConfig {
        user_agent: "probe-test/1".to_owned(),
        ..config()
    })
    .unwrap();
    let mut check = get(&mock.url("/echo"));
    check.assertions = Some(HttpAssertions {
        body_contains: r#""user-agent":["probe-test/1"]"#.to_owned(),
        ..HttpAssertions::default()
    });
    let result = run_http(&runner, check).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
}

#[tokio::test]
async fn head_gets_the_status_without_a_body() {
    let mock = start_mock().await;
    let check = HttpCheck {
        method: HttpMethod::Head.into(),
        ..get(&mock.url("/status/200"))
    };
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    let detail = http_detail(&result);
    assert_eq!(detail.status_code, 200);
    assert_eq!(detail.body_bytes, 0);
}

#[tokio::test]
async fn tcp_connects_to_the_mock() {
    let mock = start_mock().await;
    let result = run_tcp(&runner(), "127.0.0.1", mock.address.port()).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    let detail = tcp_detail(&result);
    assert_eq!(detail.address, mock.address.to_string());
    assert!(detail.connect_time.is_some());
    assert!(result.start_time.is_some() && result.duration.is_some());
}

#[tokio::test]
async fn tcp_to_a_closed_port_is_a_connect_failure() {
    let port = free_port();
    let result = run_tcp(&runner(), "127.0.0.1", port).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));
}

#[tokio::test]
async fn tcp_to_the_metadata_address_is_blocked() {
    let result = run_tcp(&runner(), "169.254.169.254", 80).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "address 169.254.169.254 is in blocked network 169.254.169.254/32 \
         (a worker started with --allow-net 169.254.169.254/32 may contact it)"
    );
}

#[tokio::test]
async fn tcp_resolves_names_through_the_blocklist() {
    let mock = start_mock().await;
    let result = run_tcp(&runner(), "nonexistent.invalid", 80).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns, "{result:?}");
    let result = run_tcp(&default_runner(), "localhost", mock.address.port()).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    let result = run_tcp(&runner(), "localhost", mock.address.port()).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
}

#[tokio::test]
async fn many_checks_share_one_runner() {
    let mock = start_mock().await;
    let runner = runner();
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let runner = runner.clone();
            let check = get(&mock.url("/status/200"));
            tokio::spawn(async move { run_http(&runner, check).await })
        })
        .collect();
    for handle in handles {
        let result = handle.await.unwrap();
        assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    }
}

fn whole_millis(duration: Option<&pbjson_types::Duration>) -> Option<i64> {
    duration.map(|duration| duration.seconds * 1000 + i64::from(duration.nanos) / 1_000_000)
}

#[tokio::test]
async fn an_https_answer_shows_its_version_phases_and_certificate() {
    let mock = start_https_mock(-1, 5).await;
    let runner = runner();
    // By name, so the DNS phase happens (localhost is in /etc/hosts).
    let url = mock.https_url("/status/200").replace("127.0.0.1", "localhost");
    let mut check = get(&url);
    check.insecure_skip_tls_verify = true;
    let result = run_http(&runner, check.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    let http = http_detail(&result);
    // The mock offers h2 by ALPN, as reqwest does.
    assert_eq!(http.http_version, "HTTP/2");
    assert!(!http.connection_reused);
    let timing = http.timing.as_ref().expect("timing");
    for (phase, value) in [
        ("dns", &timing.dns),
        ("connect", &timing.connect),
        ("tls_handshake", &timing.tls_handshake),
        ("first_byte", &timing.first_byte),
        ("transfer", &timing.transfer),
    ] {
        assert!(value.is_some(), "{phase} missing: {timing:?}");
    }
    // The phases of a new connection add up to no more than the check.
    let total: i64 = [
        &timing.dns,
        &timing.connect,
        &timing.tls_handshake,
        &timing.first_byte,
        &timing.transfer,
    ]
    .into_iter()
    .filter_map(|phase| whole_millis(phase.as_ref()))
    .sum();
    assert!(
        total <= whole_millis(result.duration.as_ref()).unwrap(),
        "{timing:?} vs {:?}",
        result.duration
    );
    let certificate = http.certificate.as_ref().expect("certificate");
    assert!(
        certificate
            .subject_alt_names
            .iter()
            .any(|name| name == "localhost" || name == "127.0.0.1"),
        "{certificate:?}"
    );
    assert_eq!(certificate.sha256_fingerprint.len(), 64);
    let days_left = (certificate.not_after.unwrap().seconds - chrono::Utc::now().timestamp()) / 86_400;
    assert!((4..=5).contains(&days_left), "{certificate:?}");

    // The same client again: the pooled connection is reused, so only the
    // request's own phases are there.
    let again = run_http(&runner, check.clone()).await;
    let http = http_detail(&again);
    assert!(http.connection_reused, "{http:?}");
    let timing = http.timing.as_ref().unwrap();
    assert_eq!((timing.dns, timing.connect, timing.tls_handshake), (None, None, None));
    assert!(timing.first_byte.is_some());
    assert!(
        http.certificate.is_some(),
        "the connection's certificate is still known"
    );

    // Expiry: the certificate has less than 14 days left.
    check.assertions = Some(HttpAssertions {
        cert_min_days_remaining: 14,
        ..HttpAssertions::default()
    });
    let result = run_http(&runner, check.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    let expiry = result
        .assertions
        .iter()
        .find(|a| a.name == "cert_days_remaining")
        .unwrap();
    assert!(!expiry.passed);
    assert!(
        expiry
            .detail
            .starts_with(&format!("certificate expires in only {days_left} days (")),
        "{}",
        expiry.detail
    );
    check.assertions = Some(HttpAssertions {
        cert_min_days_remaining: 3,
        ..HttpAssertions::default()
    });
    assert_eq!(run_http(&runner, check).await.outcome(), CheckOutcome::Ok);
}

#[tokio::test]
async fn a_plain_http_answer_has_no_tls_phase_or_certificate() {
    let mock = start_mock().await;
    let mut check = get(&mock.url("/status/200"));
    check.assertions = Some(HttpAssertions {
        cert_min_days_remaining: 1,
        ..HttpAssertions::default()
    });
    let result = run_http(&runner(), check).await;
    let http = http_detail(&result);
    assert_eq!(http.http_version, "HTTP/1.1");
    let timing = http.timing.as_ref().unwrap();
    // An address literal: no DNS either.
    assert_eq!((timing.dns, timing.tls_handshake), (None, None));
    assert!(timing.connect.is_some() && timing.first_byte.is_some());
    assert!(http.certificate.is_none());
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed);
    assert_eq!(result.error, "no certificate: the answer did not come over HTTPS");
}

#[tokio::test]
async fn header_and_json_body_assertions_pass_and_fail_with_what_was_seen() {
    use monitor_proto::v1::{HeaderAssertion, HeaderCondition, JsonCondition, JsonPathAssertion};
    let mock = start_mock().await;
    let header = |name: &str, condition: HeaderCondition, value: &str| HeaderAssertion {
        name: name.into(),
        condition: condition as i32,
        value: value.into(),
    };
    let json = |path: &str, condition: JsonCondition, value: &str| JsonPathAssertion {
        path: path.into(),
        condition: condition as i32,
        value: value.into(),
    };
    let mut check = get(&mock.url("/echo"));
    check.method = HttpMethod::Post as i32;
    check.body = br#"{"status":"ok","count":3}"#.to_vec();
    check.headers = vec![HttpHeader {
        name: "X-Probe".into(),
        value: "42".into(),
    }];
    check.assertions = Some(HttpAssertions {
        headers: vec![
            header("Content-Type", HeaderCondition::Regex, "^application/json"),
            header("Set-Cookie", HeaderCondition::Absent, ""),
        ],
        json_path: vec![
            json("$.method", JsonCondition::Equals, "POST"),
            json("$.headers['x-probe'][0]", JsonCondition::Equals, "\"42\""),
            json("$.body_len", JsonCondition::GreaterThan, "10"),
        ],
        ..HttpAssertions::default()
    });
    let result = run_http(&runner(), check.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{:#?}", result.assertions);
    let names: Vec<&str> = result.assertions.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        ["status", "header", "header", "json_path", "json_path", "json_path"]
    );

    let assertions = check.assertions.as_mut().unwrap();
    assertions.headers = vec![header("Content-Type", HeaderCondition::Equals, "text/plain")];
    assertions.json_path = vec![json("$.body_len", JsonCondition::LessOrEqual, "10")];
    let result = run_http(&runner(), check).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed);
    let failed: Vec<&str> = result
        .assertions
        .iter()
        .filter(|a| !a.passed)
        .map(|a| a.detail.as_str())
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].starts_with("header Content-Type is \"application/json"),
        "{}",
        failed[0]
    );
    assert!(failed[0].ends_with("expected \"text/plain\""), "{}", failed[0]);
    assert_eq!(failed[1], "$.body_len is 25, expected <= 10");
    assert_eq!(result.error, failed[0]);
}
