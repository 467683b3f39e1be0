//! The gRPC health control route and the WebSocket routes' refusals over
//! plain HTTP (the worker's tests speak gRPC and WebSocket to them).

mod common;

use monitor_testkit::mock::MockServer;

async fn send(mock: &MockServer, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let response = mock
        .client
        .request(method, mock.url(path))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn statuses_are_set_read_forgotten_and_reset() {
    use reqwest::Method;
    let mock = MockServer::start(&[]).await;
    assert_eq!(
        send(&mock, Method::GET, "/__grpc/health", "").await,
        (200, "SERVING\n".into())
    );
    assert_eq!(send(&mock, Method::GET, "/__grpc/health/shop.Cart", "").await.0, 404);

    assert_eq!(
        send(&mock, Method::PUT, "/__grpc/health/shop.Cart", "NOT_SERVING")
            .await
            .0,
        204
    );
    assert_eq!(
        send(&mock, Method::GET, "/__grpc/health/shop.Cart", "").await,
        (200, "NOT_SERVING\n".into())
    );
    assert_eq!(
        send(&mock, Method::PUT, "/__grpc/health/shop.Cart", "SERVICE_UNKNOWN")
            .await
            .0,
        204
    );
    assert_eq!(send(&mock, Method::GET, "/__grpc/health/shop.Cart", "").await.0, 404);

    assert_eq!(send(&mock, Method::PUT, "/__grpc/health", "NOT_SERVING").await.0, 204);
    assert_eq!(
        send(&mock, Method::PUT, "/__grpc/health/shop.Cart", "SERVING").await.0,
        204
    );
    assert_eq!(send(&mock, Method::DELETE, "/__grpc/health/shop.Cart", "").await.0, 204);
    assert_eq!(send(&mock, Method::GET, "/__grpc/health/shop.Cart", "").await.0, 404);
    assert_eq!(
        send(&mock, Method::PUT, "/__grpc/health/shop.Cart", "SERVING").await.0,
        204
    );
    assert_eq!(send(&mock, Method::POST, "/__reset", "").await.0, 204);
    assert_eq!(
        send(&mock, Method::GET, "/__grpc/health", "").await,
        (200, "SERVING\n".into())
    );
    assert_eq!(send(&mock, Method::GET, "/__grpc/health/shop.Cart", "").await.0, 404);
}

#[tokio::test]
async fn bad_control_requests_are_refused_with_the_reason() {
    use reqwest::Method;
    let mock = MockServer::start(&[]).await;
    let (status, body) = send(&mock, Method::PUT, "/__grpc/health/shop.Cart", "serving").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN"),
        "{body}"
    );
    assert_eq!(
        send(&mock, Method::POST, "/__grpc/health/shop.Cart", "SERVING").await.0,
        405
    );
    assert_eq!(send(&mock, Method::PUT, "/__grpc/health/a%20b", "SERVING").await.0, 400);
    // Not the control route: an unknown path.
    assert_eq!(send(&mock, Method::GET, "/__grpc/healthz", "").await.0, 404);
}

#[tokio::test]
async fn websocket_routes_refuse_what_is_not_an_upgrade() {
    use reqwest::Method;
    let mock = MockServer::start(&[]).await;
    let response = mock.get("/ws/echo").await;
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["upgrade"], "websocket");
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    assert_eq!(send(&mock, Method::POST, "/ws/echo", "").await.0, 405);
    assert_eq!(mock.get("/ws/nothing").await.status(), 404);
    let stats = mock.stats().await;
    assert_eq!(stats.by_route["websocket"].by_status["426"], 1);
    assert_eq!(stats.by_route["websocket"].by_status["405"], 1);
}
