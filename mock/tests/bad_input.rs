//! Every bad input is refused with a message naming the parameter or flag,
//! and none of them takes the mock down.

mod common;

use std::process::Command;

use common::ErrorBody;
use monitor_testkit::mock::MockServer;

/// (path and query, parameter the error must name)
const BAD_REQUESTS: &[(&str, &str)] = &[
    ("/website_mock?status=99", "status"),
    ("/website_mock?status=600", "status"),
    ("/website_mock?status=101", "status"),
    ("/website_mock?status=abc", "status"),
    ("/website_mock?status=", "status"),
    ("/website_mock?delay_ms=-1", "delay_ms"),
    ("/website_mock?delay_ms=300001", "delay_ms"),
    ("/website_mock?delay_ms=99999999999999999999999", "delay_ms"),
    ("/website_mock?delay_ms=1.5", "delay_ms"),
    ("/website_mock?size=16777217", "size"),
    ("/website_mock?size=-3", "size"),
    ("/website_mock?seed=-1", "seed"),
    ("/website_mock?n=x", "n"),
    ("/website_mock?stauts=500", "stauts"),
    ("/website_mock?status=200&status=500", "status"),
    ("/status/99", "code"),
    ("/status/600", "code"),
    ("/status/100", "code"),
    ("/status/abc", "code"),
    ("/status/-200", "code"),
    ("/status/200?delay_ms=5", "delay_ms"),
    ("/delay/-5", "ms"),
    ("/delay/300001", "ms"),
    ("/delay/soon", "ms"),
    ("/bytes/16777217", "n"),
    ("/bytes/-1", "n"),
    ("/bytes/10?seed=x", "seed"),
    ("/redirect/101", "n"),
    ("/redirect/-1", "n"),
    ("/flaky", "fail_every"),
    ("/flaky?fail_every=0", "fail_every"),
    ("/flaky?fail_every=-2", "fail_every"),
    ("/flaky?fail_every=x", "fail_every"),
    ("/flaky?fail_every=2&fail_status=700", "fail_status"),
    ("/hang?for=ever", "for"),
    ("/reset?now=1", "now"),
];

#[tokio::test]
async fn bad_parameters_get_400_naming_the_parameter() {
    let mock = MockServer::start(&[]).await;
    for (path, parameter) in BAD_REQUESTS {
        let response = mock.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json", "{path}");
        let body: ErrorBody = response.json().await.unwrap();
        assert_eq!(body.parameter.as_deref(), Some(*parameter), "{path}: {}", body.error);
        assert!(body.error.contains(&format!("`{parameter}`")), "{path}: {}", body.error);
    }
    // Refusals are served responses, counted, and consume nothing.
    let stats = mock.stats().await;
    assert_eq!(stats.by_status["400"], BAD_REQUESTS.len() as u64);
    assert_eq!(stats.sequence, 0);
    assert_eq!(stats.flaky_requests, 0);
    // And the mock is still fine.
    assert_eq!(mock.get("/status/200").await.status(), 200);
}

#[tokio::test]
async fn messages_say_what_is_wrong() {
    let mock = MockServer::start(&[]).await;
    let message = |path: &'static str| {
        let mock = &mock;
        async move { mock.get(path).await.json::<ErrorBody>().await.unwrap().error }
    };
    assert_eq!(
        message("/website_mock?delay_ms=300001").await,
        "invalid parameter `delay_ms`: 300001 is above the cap of 300000"
    );
    assert_eq!(
        message("/website_mock?size=-3").await,
        "invalid parameter `size`: '-3' is negative; only 0 and above are allowed"
    );
    assert_eq!(
        message("/status/600").await,
        "invalid parameter `code`: status 600 is outside 100..=599"
    );
    assert_eq!(
        message("/flaky?fail_every=0").await,
        "invalid parameter `fail_every`: 0 is below the minimum of 1"
    );
    assert_eq!(message("/flaky").await, "missing query parameter `fail_every`");
    assert_eq!(
        message("/website_mock?stauts=500").await,
        "unknown query parameter `stauts`; this route accepts: status, delay_ms, size, seed, n"
    );
}

#[tokio::test]
async fn unknown_routes_are_404_and_counted() {
    let mock = MockServer::start(&[]).await;
    for path in [
        "/",
        "/nope",
        "/status",
        "/status/",
        "/status/200/extra",
        "/website_mock/x",
    ] {
        let response = mock.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body: ErrorBody = response.json().await.unwrap();
        assert!(body.error.starts_with("no route for /"), "{}", body.error);
    }
    assert_eq!(mock.stats().await.by_route["not_found"].total, 6);
}

#[tokio::test]
async fn control_routes_refuse_other_methods() {
    let mock = MockServer::start(&[]).await;
    let response = mock.client.post(mock.url("/__stats")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let response = mock.get("/__reset").await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let response = mock.get("/__stats?verbose=1").await;
    assert_eq!(response.status(), 400);
    // Without --tls-listen there is no certificate to hand out.
    let response = mock.get("/__cert.pem").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("--tls-listen"));
}

#[tokio::test]
async fn oversized_echo_bodies_are_refused() {
    let mock = MockServer::start(&[]).await;
    let body = vec![b'x'; 16 * 1024 * 1024 + 1];
    let response = mock.client.post(mock.url("/echo")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, "request body is larger than 16777216 bytes");
}

/// Runs the real binary with `args` and returns (exit success, stderr).
fn run_binary(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_monitor-mock"))
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_binary_refuses_bad_flags_naming_them() {
    for (args, flag) in [
        (&["--codes", "200:0,500:0"][..], "--codes"),
        (&["--codes", "200"], "--codes"),
        (&["--codes", "42:1"], "--codes"),
        (&["--latency-ms", "0..=300001"], "--latency-ms"),
        (&["--latency-ms", "-5..5"], "--latency-ms"),
        (&["--latency-ms", "9..3"], "--latency-ms"),
        (&["--body-bytes", "0..=16777217"], "--body-bytes"),
        (&["--seed", "-1"], "--seed"),
        (&["--listen", "localhost"], "--listen"),
        (&["--tls-not-after-days", "forever"], "--tls-not-after-days"),
        (
            &[
                "--listen=127.0.0.1:0",
                "--tls-listen=127.0.0.1:0",
                "--tls-not-before-days=3",
                "--tls-not-after-days=1",
            ],
            "--tls-not-after-days",
        ),
    ] {
        let (succeeded, stderr) = run_binary(args);
        assert!(!succeeded, "{args:?} was accepted");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
    }
}

#[test]
fn the_binary_refuses_bad_environment_values_naming_the_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_monitor-mock"))
        .env_clear()
        .env("MOCK_CODES", "200:x")
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--codes"), "{stderr}");
}
