//! The scenario routes, each against the real server over HTTP.

mod common;

use std::time::{Duration, Instant};

use monitor_mock::EchoReport;
use monitor_testkit::{http_client, mock::MockServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::test]
async fn status_route_answers_the_code_asked_for() {
    let mock = MockServer::start(&[]).await;
    for code in [200u16, 201, 204, 301, 404, 418, 500, 503, 599] {
        let response = mock.get(&format!("/status/{code}")).await;
        assert_eq!(response.status().as_u16(), code);
    }
    let response = mock.client.post(mock.url("/status/202")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.text().await.unwrap(), "202 Accepted\n");
    let stats = mock.stats().await;
    assert_eq!(stats.by_route["status"].total, 10);
    assert_eq!(stats.by_route["status"].by_status["418"], 1);
}

#[tokio::test]
async fn delay_route_waits_at_least_that_long() {
    let mock = MockServer::start(&[]).await;
    let started = Instant::now();
    let response = mock.get("/delay/250").await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(response.headers()["x-mock-delay-ms"], "250");

    // A client that gives up first sees a timeout.
    let impatient = mock
        .client
        .get(mock.url("/delay/5000"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(impatient.is_timeout(), "{impatient:?}");
}

#[tokio::test]
async fn bytes_route_returns_deterministic_bytes() {
    let mock = MockServer::start(&["--seed=4"]).await;
    let body = mock.get("/bytes/1000").await.bytes().await.unwrap();
    assert_eq!(body.len(), 1000);
    assert_eq!(body, monitor_mock::draw::binary_body(1000, 4));
    assert_eq!(mock.get("/bytes/1000").await.bytes().await.unwrap(), body);
    // A shorter body is a prefix of a longer one; another seed differs.
    assert_eq!(mock.get("/bytes/10").await.bytes().await.unwrap(), body[..10]);
    let other = mock.get("/bytes/1000?seed=5").await.bytes().await.unwrap();
    assert_ne!(other, body);
    assert_eq!(mock.get("/bytes/0").await.bytes().await.unwrap().len(), 0);
}

#[tokio::test]
async fn redirect_chain_lands_on_200_after_n_hops() {
    let mock = MockServer::start(&[]).await;

    // Followed by the client: ends on /redirect/0 with 200.
    let response = mock.get("/redirect/3").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/redirect/0");

    // Walked by hand: exactly 3 redirects, each to the next hop.
    let manual = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut path = "/redirect/3".to_owned();
    let mut hops = 0;
    loop {
        let response = manual.get(mock.url(&path)).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 302);
        path = response.headers()["location"].to_str().unwrap().to_owned();
        hops += 1;
    }
    assert_eq!(hops, 3);
    assert_eq!(path, "/redirect/0");

    let stats = mock.stats().await;
    assert_eq!(stats.by_route["redirect"].by_status["302"], 6);
    assert_eq!(stats.by_route["redirect"].by_status["200"], 2);
}

#[tokio::test]
async fn flaky_route_fails_every_nth_request() {
    let mock = MockServer::start(&[]).await;
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(mock.get("/flaky?fail_every=3").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200, 200, 503]);

    let response = mock.get("/flaky?fail_every=2&fail_status=500").await;
    assert_eq!(response.status(), 500, "request 10 is a multiple of 2");
    assert_eq!(response.headers()["x-mock-flaky-request"], "10");

    // The count restarts with /__reset.
    mock.client.post(mock.url("/__reset")).send().await.unwrap();
    let response = mock.get("/flaky?fail_every=1").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-mock-flaky-request"], "1");
}

#[tokio::test]
async fn hang_never_answers_until_the_client_gives_up() {
    let mock = MockServer::start(&[]).await;
    let started = Instant::now();
    let error = mock
        .client
        .get(mock.url("/hang"))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(500));

    // The mock itself is fine, and counted the hang without a status.
    let stats = mock.stats().await;
    assert_eq!(stats.by_route["hang"].total, 1);
    assert!(stats.by_route["hang"].by_status.is_empty());
    assert_eq!(stats.total, 1);
}

#[tokio::test]
async fn hang_sends_no_bytes_on_a_raw_connection() {
    let mock = MockServer::start(&[]).await;
    let mut stream = TcpStream::connect(mock.address).await.unwrap();
    stream
        .write_all(b"GET /hang HTTP/1.1\r\nHost: mock\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_millis(700), stream.read(&mut buffer)).await;
    assert!(read.is_err(), "expected silence, got {read:?}");
}

#[tokio::test]
async fn reset_route_resets_the_connection_without_a_response() {
    let mock = MockServer::start(&[]).await;

    // At the TCP level: no response bytes, and a reset (RST), not a clean close.
    let mut stream = TcpStream::connect(mock.address).await.unwrap();
    stream
        .write_all(b"GET /reset HTTP/1.1\r\nHost: mock\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the mock acts at once");
    match read {
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
        Ok(bytes) => panic!("expected a reset, read {bytes} bytes: {:?}", &buffer[..bytes]),
    }

    // An HTTP client sees a connection error, not a response and not a timeout.
    let error = http_client()
        .get(mock.url("/reset"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout(), "{error:?}");
    assert!(error.status().is_none(), "{error:?}");

    let stats = mock.stats().await;
    assert_eq!(stats.by_route["reset"].total, 2);
    assert!(stats.by_route["reset"].by_status.is_empty());
    // Other connections are untouched.
    assert_eq!(mock.get("/status/200").await.status(), 200);
}

#[tokio::test]
async fn echo_reflects_method_headers_and_body() {
    let mock = MockServer::start(&[]).await;
    let response = mock
        .client
        .put(mock.url("/echo?job=7&x=%20y"))
        .header("x-check", "first")
        .header("user-agent", "monitor-probe/0.1")
        .body("hello, mock")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let echo: EchoReport = response.json().await.unwrap();
    assert_eq!(echo.method, "PUT");
    assert_eq!(echo.uri, "/echo?job=7&x=%20y");
    assert_eq!(echo.version, "HTTP/1.1");
    assert_eq!(echo.headers["x-check"], ["first"]);
    assert_eq!(echo.headers["user-agent"], ["monitor-probe/0.1"]);
    assert_eq!(echo.headers["content-length"], ["11"]);
    assert_eq!(echo.body.as_deref(), Some("hello, mock"));
    assert_eq!(echo.body_base64, "aGVsbG8sIG1vY2s=");
    assert_eq!(echo.body_len, 11);

    // A body that is not UTF-8 comes back in base64 only.
    let response = mock
        .client
        .post(mock.url("/echo"))
        .body(vec![0xff, 0x00, 0xfe])
        .send()
        .await
        .unwrap();
    let echo: EchoReport = response.json().await.unwrap();
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.body, None);
    assert_eq!(echo.body_base64, "/wD+");
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let mock = MockServer::start(&["--latency-ms=0"]).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(mock.url("/echo")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let echo: EchoReport = response.json().await.unwrap();
    assert_eq!(echo.version, "HTTP/2.0");

    // Many streams on one connection, all counted.
    let requests = (0..100).map(|_| h2.get(mock.url("/website_mock")).send());
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.unwrap().version(), reqwest::Version::HTTP_2);
    }
    assert_eq!(mock.stats().await.sequence, 100);
}

#[tokio::test]
async fn ping_answers_and_is_not_counted() {
    let mock = MockServer::start(&[]).await;
    let response = mock.get("/__ping").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    assert_eq!(mock.stats().await.total, 0);
}
