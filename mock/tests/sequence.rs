//! `/website_mock` over HTTP: the n-th request gets draw `(seed, n)`,
//! overrides replace single fields, and `/__reset` restarts the sequence.

mod common;

use monitor_testkit::mock::{MockServer, mock_config};

const FLAGS: &[&str] = &[
    "--codes=200:50,404:25,500:15,204:10",
    "--latency-ms=0",
    "--body-bytes=0..=512",
];

/// (status, sequence header, body) of `count` sequential requests.
async fn observe(mock: &MockServer, count: u64) -> Vec<(u16, u64, bytes::Bytes)> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let response = mock.get("/website_mock").await;
        let status = response.status().as_u16();
        let sequence = response.headers()["x-mock-sequence"].to_str().unwrap().parse().unwrap();
        seen.push((status, sequence, response.bytes().await.unwrap()));
    }
    seen
}

#[tokio::test]
async fn responses_follow_the_seeded_draws_exactly() {
    let mock = MockServer::start(&[FLAGS, &["--seed=77"]].concat()).await;
    let plan = mock_config(FLAGS).plan();
    let seen = observe(&mock, 300).await;
    for (n, (status, sequence, body)) in seen.iter().enumerate() {
        let expected = plan.draw(77, n as u64);
        assert_eq!(*sequence, n as u64);
        assert_eq!(*status, expected.status.as_u16(), "request {n}");
        assert_eq!(body.len() as u64, expected.body_len, "request {n}");
        assert_eq!(*body, expected.body(), "request {n}");
    }
    // The configured mix shows up, including the bodiless 204.
    for code in [200, 404, 500, 204] {
        assert!(seen.iter().any(|(status, ..)| *status == code), "{code} never drawn");
    }
    assert!(
        seen.iter()
            .filter(|(status, ..)| *status == 204)
            .all(|(_, _, body)| body.is_empty())
    );
}

#[tokio::test]
async fn same_seed_same_answers_different_seed_different_answers() {
    let first = MockServer::start(&[FLAGS, &["--seed=5"]].concat()).await;
    let second = MockServer::start(&[FLAGS, &["--seed=5"]].concat()).await;
    let other = MockServer::start(&[FLAGS, &["--seed=6"]].concat()).await;
    let (a, b, c) = tokio::join!(observe(&first, 200), observe(&second, 200), observe(&other, 200));
    assert_eq!(a, b);
    let summary = |seen: &[(u16, u64, bytes::Bytes)]| -> Vec<(u16, usize)> {
        seen.iter().map(|(status, _, body)| (*status, body.len())).collect()
    };
    assert_ne!(summary(&a), summary(&c));
}

#[tokio::test]
async fn reset_restarts_the_sequence_and_zeroes_the_counts() {
    let mock = MockServer::start(&[FLAGS, &["--seed=11"]].concat()).await;
    let before = observe(&mock, 20).await;
    assert_eq!(mock.stats().await.sequence, 20);

    let response = mock.client.post(mock.url("/__reset")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let stats = mock.stats().await;
    assert_eq!((stats.total, stats.sequence), (0, 0));
    assert!(stats.by_status.is_empty());

    assert_eq!(observe(&mock, 20).await, before);
}

#[tokio::test]
async fn overrides_replace_one_field_and_still_take_a_number() {
    let mock = MockServer::start(&[FLAGS, &["--seed=3"]].concat()).await;
    let plan = mock_config(FLAGS).plan();

    let response = mock.get("/website_mock?status=418&size=5&delay_ms=20").await;
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-mock-sequence"], "0");
    assert_eq!(response.headers()["x-mock-delay-ms"], "20");
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), 5);
    // The characters still come from draw 0: only the length was overridden.
    let content_seed = plan.draw(3, 0).content_seed;
    assert_eq!(body, monitor_mock::draw::text_body(5, content_seed));

    // The next request gets draw 1, untouched by the override before it.
    let response = mock.get("/website_mock").await;
    assert_eq!(response.headers()["x-mock-sequence"], "1");
    assert_eq!(response.status().as_u16(), plan.draw(3, 1).status.as_u16());
}

#[tokio::test]
async fn local_draws_do_not_consume_the_sequence() {
    let mock = MockServer::start(&[FLAGS, &["--seed=3"]].concat()).await;
    let plan = mock_config(FLAGS).plan();

    // ?seed= and ?n= name a draw directly: repeatable, and no number taken.
    for _ in 0..3 {
        let response = mock.get("/website_mock?seed=1000&n=42").await;
        assert!(response.headers().get("x-mock-sequence").is_none());
        assert_eq!(response.headers()["x-mock-seed"], "1000");
        let expected = plan.draw(1000, 42);
        assert_eq!(response.status().as_u16(), expected.status.as_u16());
        assert_eq!(response.bytes().await.unwrap(), expected.body());
    }
    // ?n= alone replays the global seed's n-th draw.
    let response = mock.get("/website_mock?n=7").await;
    assert_eq!(response.bytes().await.unwrap(), plan.draw(3, 7).body());

    let stats = mock.stats().await;
    assert_eq!(stats.sequence, 0);
    assert_eq!(stats.by_route["website_mock"].total, 4);
    let response = mock.get("/website_mock").await;
    assert_eq!(response.headers()["x-mock-sequence"], "0");
}

#[tokio::test]
async fn head_requests_get_headers_of_the_same_draw() {
    let flags = ["--codes=200:1", "--latency-ms=0", "--body-bytes=1..=512"];
    let mock = MockServer::start(&[&flags[..], &["--seed=8"]].concat()).await;
    let plan = mock_config(&flags).plan();
    let response = mock.client.head(mock.url("/website_mock")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"],
        plan.draw(8, 0).body_len.to_string().as_str()
    );
    assert!(response.bytes().await.unwrap().is_empty());
    assert_eq!(mock.stats().await.by_method["HEAD"], 1);
}
