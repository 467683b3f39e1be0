//! Thousands of malformed or random requests: the server answers every one
//! with a 4xx (never a 5xx, never a dropped connection) and keeps serving.

use monitor_testkit::server::TestServer;
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{Client, Method, StatusCode};

const PATHS: &[&str] = &[
    "/v1/jobs",
    "/v1/jobs/{id}",
    "/v1/jobs/{id}/start",
    "/v1/jobs/{id}/stop",
    "/v1/jobs/{id}/status",
    "/v1/info",
    "/v1/admin/reset",
    "/",
    "/job",
    "/job/{id}",
    "/job/{id}/start",
    "/db/init",
];

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"name\"",
    ":",
    ",",
    "\"interval\"",
    "\"30s\"",
    "\"-5s\"",
    "1e999",
    "null",
    "true",
    "\"http\"",
    "{\"url\":",
    "\"ftp://x\"",
    "\"\\u0000\"",
    "\"version\"",
    "\"9223372036854775808\"",
    "-1",
    "\"desiredState\"",
    "\"JOB_STATE_RUNNING\"",
    "42",
    "\"labels\"",
    "{\"a\":1}",
    "\"timeout\"",
    "\"0s\"",
    "\u{feff}",
    "\"\u{10ffff}\"",
    "\"updateMask\"",
    "\"headers\"",
    "[{\"name\":\"\\r\\n\"}]",
    "\"body\"",
    "\"!!notbase64\"",
    "\"method\"",
    "\"HTTP_METHOD_BREW\"",
    "7",
];

fn random_body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..4) {
        0 => (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        _ => {
            let mut text = String::new();
            for _ in 0..rng.random_range(1..24) {
                text.push_str(FRAGMENTS[rng.random_range(0..FRAGMENTS.len())]);
            }
            text.into_bytes()
        }
    }
}

fn random_path(rng: &mut StdRng, id: &str) -> String {
    let mut path = PATHS[rng.random_range(0..PATHS.len())].replace(
        "{id}",
        match rng.random_range(0..4) {
            0 => id,
            1 => "00000000-0000-0000-0000-000000000000",
            2 => "%FF%FE",
            _ => "..%2F..%2Fetc",
        },
    );
    match rng.random_range(0..5) {
        0 => path.push_str("?pageSize=abc&state=%00"),
        1 => path.push_str("?labelSelector=a%3D&pageToken=%%%"),
        2 => path.push_str("/extra"),
        3 => path = path.replace("/v1/", "/v1//"),
        _ => {}
    }
    path
}

#[tokio::test]
async fn random_requests_never_get_a_5xx() {
    let server = TestServer::start().await;
    let client = Client::new();
    let created: serde_json::Value = client
        .post(server.url("/v1/jobs"))
        .json(
            &serde_json::json!({"name": "target", "interval": "30s", "timeout": "5s",
                                  "http": {"url": "http://127.0.0.1:8081/"}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["job"]["id"].as_str().unwrap().to_owned();
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
        Method::HEAD,
    ];
    let content_types = [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/grpc",
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..3000 {
        let method = methods[rng.random_range(0..methods.len())].clone();
        let path = random_path(&mut rng, &id);
        let mut request = client
            .request(method.clone(), server.url(&path))
            .body(random_body(&mut rng));
        let content_type = content_types[rng.random_range(0..content_types.len())];
        if !content_type.is_empty() {
            request = request.header("content-type", content_type);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{method} {path}: no answer: {err}"));
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "{method} {path} ({content_type}) answered {status}"
        );
        if method != Method::HEAD && content_type != "application/grpc" {
            let text = response.text().await.unwrap();
            if !status.is_success() {
                let body: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path} error is not JSON: {text:?}"));
                assert!(body["message"].is_string(), "{body}");
            }
        }
        *seen.entry(status.as_u16()).or_insert(0) += 1;
    }
    // The fuzzing reached the interesting answers, and the server still works.
    for status in [400, 404, 405, 415] {
        assert!(seen.contains_key(&status), "never saw {status}: {seen:?}");
    }
    let still = client.get(server.url(&format!("/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK);
}
