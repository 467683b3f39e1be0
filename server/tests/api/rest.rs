//! The REST gateway and the legacy routes through a real HTTP client:
//! every route, positive and negative, and the auth cases per route class.

use monitor_testkit::server::{ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

fn job_json(name: &str) -> Value {
    json!({"name": name, "interval": "30s", "timeout": "5s", "labels": {"team": "web"},
           "http": {"url": "http://127.0.0.1:8081/website_mock"}})
}

async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new().request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: body is not JSON ({err}): {text:?}"));
    (status, value)
}

async fn create(server: &TestServer, name: &str, token: Option<&str>) -> Value {
    let (status, body) = send(server, Method::POST, "/v1/jobs", token, Some(job_json(name))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["job"].clone()
}

/// Asserts a google.rpc.Status JSON error.
fn assert_error(status: StatusCode, body: &Value, want: StatusCode, code: i64, text: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(text), "{message:?} lacks {text:?}");
}

#[tokio::test]
async fn job_lifecycle_over_rest() {
    let server = TestServer::start().await;
    let job = create(&server, "rest-1", None).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(job["version"], "1");
    assert_eq!(job["desiredState"], "JOB_STATE_STOPPED");
    assert!(
        job["createTime"].as_str().unwrap().ends_with('Z'),
        "canonical timestamp: {job}"
    );

    let (status, got) = send(&server, Method::GET, &format!("/v1/jobs/{id}"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["job"], job);

    let (status, started) = send(&server, Method::POST, &format!("/v1/jobs/{id}/start"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(started["changed"], true);
    let (_, again) = send(&server, Method::POST, &format!("/v1/jobs/{id}/start"), None, None).await;
    assert_eq!(again.get("changed"), None, "false is omitted in proto3 JSON");
    assert!(again["message"].as_str().unwrap().contains("already running"));
    let (_, status_body) = send(&server, Method::GET, &format!("/v1/jobs/{id}/status"), None, None).await;
    assert_eq!(status_body["status"]["phase"], "JOB_PHASE_PENDING");
    let (_, stopped) = send(&server, Method::POST, &format!("/v1/jobs/{id}/stop"), None, None).await;
    assert_eq!(stopped["job"]["desiredState"], "JOB_STATE_STOPPED");

    // PATCH: the fields present form the mask.
    let (status, patched) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        None,
        Some(json!({"version": "3", "interval": "60s", "labels": {"team": "db"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["job"]["interval"], "60s");
    assert_eq!(patched["job"]["labels"], json!({"team": "db"}));
    assert_eq!(patched["job"]["name"], "rest-1", "fields not sent are kept");
    assert_eq!(patched["job"]["version"], "4");
    // An explicit updateMask wins over the body's keys.
    let (status, masked) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}?updateMask=name"),
        None,
        Some(json!({"version": "4", "name": "rest-renamed", "interval": "90s"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{masked}");
    assert_eq!(masked["job"]["name"], "rest-renamed");
    assert_eq!(masked["job"]["interval"], "60s");

    let (status, listed) = send(
        &server,
        Method::GET,
        "/v1/jobs?labelSelector=team%3Ddb&state=stopped",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["totalSize"], "1");

    let (status, _) = send(&server, Method::DELETE, &format!("/v1/jobs/{id}?version=5"), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&server, Method::GET, &format!("/v1/jobs/{id}"), None, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, 5, "not found");
}

#[tokio::test]
async fn list_pages_and_query_errors() {
    let server = TestServer::start().await;
    for i in 0..3 {
        create(&server, &format!("page-{i}"), None).await;
    }
    let (_, first) = send(&server, Method::GET, "/v1/jobs?pageSize=2", None, None).await;
    assert_eq!(first["jobs"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().unwrap();
    let (_, second) = send(
        &server,
        Method::GET,
        &format!("/v1/jobs?page_size=2&page_token={token}"),
        None,
        None,
    )
    .await;
    assert_eq!(second["jobs"].as_array().unwrap().len(), 1);
    assert!(second.get("nextPageToken").is_none());

    for (query, field) in [
        ("pageSize=ten", "page_size"),
        ("state=paused", "state"),
        ("colour=red", "colour"),
        ("pageToken=bogus", "page_token"),
        ("labelSelector=novalue", "label_selector[0]"),
        ("pageSize=-1", "page_size"),
    ] {
        let (status, body) = send(&server, Method::GET, &format!("/v1/jobs?{query}"), None, None).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, 3, field);
        assert_eq!(body["details"][0]["fieldViolations"][0]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn malformed_requests_get_clear_json_errors() {
    let server = TestServer::start().await;
    let client = Client::new();
    let post = |body: &'static str, content_type: &'static str| {
        client
            .post(server.url("/v1/jobs"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let check = |response: reqwest::Response| async move {
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };

    let (status, body) = check(
        post("{\"name\": \"x\",\n  \"interval\": ", "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "line 2 column");
    let (status, body) = check(post(r#"{"nmae": "x"}"#, "application/json").await.unwrap()).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "unknown field `nmae`");
    let (status, body) = check(post(r#"{"name": 5}"#, "application/json; charset=utf-8").await.unwrap()).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "name");
    let (status, body) = check(post(r#"{"name": "x"}"#, "text/plain").await.unwrap()).await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE, 3, "content-type");
    let (status, body) = check(client.post(server.url("/v1/jobs")).body("{}").send().await.unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        3,
        "missing content-type",
    );
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let response = client
        .post(server.url("/v1/jobs"))
        .header("content-type", "application/json")
        .body(huge)
        .send();
    let (status, body) = check(response.await.unwrap()).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        8,
        "larger than 1048576 bytes",
    );

    // Validation errors carry the field violations.
    let (status, body) = send(
        &server,
        Method::POST,
        "/v1/jobs",
        None,
        Some(json!({"name": "", "http": {"url": "ftp://x"}})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "job.name");
    let fields: Vec<_> = body["details"][0]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["job.name", "job.interval", "job.timeout", "job.http.url"]);
    assert_eq!(body["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");

    // Unknown route, wrong method, bad id, conflicts.
    let (status, body) = send(&server, Method::GET, "/v2/jobs", None, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, 5, "no route for GET /v2/jobs");
    let (status, body) = send(&server, Method::PUT, "/v1/jobs", None, None).await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        12,
        "method PUT is not allowed",
    );
    let (status, body) = send(&server, Method::GET, "/v1/jobs/not-a-uuid", None, None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "not a job id");
    let job = create(&server, "taken", None).await;
    let (status, body) = send(&server, Method::POST, "/v1/jobs", None, Some(job_json("taken"))).await;
    assert_error(status, &body, StatusCode::CONFLICT, 6, "already exists");
    let id = job["id"].as_str().unwrap();
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        None,
        Some(json!({"version": "9", "name": "n"})),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, 10, "version 1");
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        None,
        Some(json!({"version": "1"})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "names no field");
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        None,
        Some(json!([1])),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "JSON object");
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        None,
        Some(json!({"id": uuid::Uuid::now_v7().to_string(), "version": "1", "name": "n"})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "differs");
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}?mask=x"),
        None,
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "mask");
    let (status, body) = send(&server, Method::DELETE, &format!("/v1/jobs/{id}?version=x"), None, None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "version");
    let (status, body) = send(&server, Method::DELETE, &format!("/v1/jobs/{id}?force=1"), None, None).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "force");
    let (status, body) = send(&server, Method::DELETE, &format!("/v1/jobs/{id}?version=7"), None, None).await;
    assert_error(status, &body, StatusCode::CONFLICT, 10, "version 1");
}

#[tokio::test]
async fn info_openapi_and_legacy_routes() {
    let server = TestServer::start().await;
    let job = create(&server, "legacy", None).await;
    let id = job["id"].as_str().unwrap();

    let (status, info) = send(&server, Method::GET, "/v1/info", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["name"], "monitor-server");
    assert_eq!(info["jobs"]["total"], "1");
    let (_, root) = send(&server, Method::GET, "/", None, None).await;
    assert_eq!(root["name"], "monitor-server");
    assert!(root["uptime"].as_str().unwrap().ends_with('s'));

    let (_, listed) = send(&server, Method::GET, "/job", None, None).await;
    assert_eq!(listed["jobs"][0]["id"], id);
    let (_, got) = send(&server, Method::GET, &format!("/job/{id}"), None, None).await;
    assert_eq!(got["job"], job);
    let (_, started) = send(&server, Method::GET, &format!("/job/{id}/start"), None, None).await;
    assert_eq!(started["job"]["desiredState"], "JOB_STATE_RUNNING");
    let (_, stopped) = send(&server, Method::POST, &format!("/job/{id}/stop"), None, None).await;
    assert_eq!(stopped["job"]["desiredState"], "JOB_STATE_STOPPED");

    let (status, body) = send(&server, Method::GET, "/db/init", None, None).await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, 12, "use POST");
    let (status, body) = send(&server, Method::POST, "/db/init", None, None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, 7, "disabled");

    let (status, doc) = send(&server, Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    // Every documented route exists: it may refuse the empty request, but never
    // with "no route" or 405. An unknown id keeps this from changing anything.
    let missing = uuid::Uuid::now_v7().to_string();
    for (method, path) in monitor_server::rest::openapi::documented_routes() {
        let concrete = path.replace("{id}", &missing);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = Client::new()
            .request(method.clone(), server.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains("no route"),
            "{method} {path} is documented but not routed: {body}"
        );
    }
}

#[tokio::test]
async fn db_init_resets_with_an_admin_token() {
    let server = TestServer::builder().api_tokens().start().await;
    create(&server, "a", Some(WRITE_TOKEN)).await;
    let (status, body) = send(&server, Method::POST, "/db/init", Some(WRITE_TOKEN), None).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, 7, "admin");
    let (status, body) = send(&server, Method::POST, "/db/init", Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deletedJobs"], "1");
    let (status, body) = send(
        &server,
        Method::POST,
        "/v1/admin/reset",
        Some(ADMIN_TOKEN),
        Some(json!({})),
    )
    .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, 3, "confirm");
    let (status, body) = send(
        &server,
        Method::POST,
        "/v1/admin/reset",
        Some(ADMIN_TOKEN),
        Some(json!({"confirm": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Each route class against each credential: none, unknown, too weak, enough.
#[tokio::test]
async fn auth_matrix_on_every_route_class() {
    let server = TestServer::builder().api_tokens().start().await;
    let job = create(&server, "guarded", Some(WRITE_TOKEN)).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let read_routes = [
        (Method::GET, "/v1/jobs".to_owned()),
        (Method::GET, format!("/v1/jobs/{id}")),
        (Method::GET, format!("/v1/jobs/{id}/status")),
        (Method::GET, "/v1/info".to_owned()),
        (Method::GET, "/".to_owned()),
        (Method::GET, "/job".to_owned()),
        (Method::GET, format!("/job/{id}")),
    ];
    let write_routes = [
        (Method::POST, format!("/v1/jobs/{id}/start")),
        (Method::POST, format!("/v1/jobs/{id}/stop")),
        (Method::GET, format!("/job/{id}/start")),
        (Method::POST, format!("/job/{id}/stop")),
    ];
    for (method, path) in read_routes.iter().chain(&write_routes) {
        let (status, body) = send(&server, method.clone(), path, None, None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, 16, "missing credentials");
        let (status, body) = send(&server, method.clone(), path, Some("not-a-configured-token"), None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, 16, "unknown token");
    }
    for (method, path) in &read_routes {
        for token in [READ_TOKEN, WRITE_TOKEN, ADMIN_TOKEN] {
            let (status, body) = send(&server, method.clone(), path, Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}: {body}");
        }
    }
    for (method, path) in &write_routes {
        let (status, body) = send(&server, method.clone(), path, Some(READ_TOKEN), None).await;
        assert_error(status, &body, StatusCode::FORBIDDEN, 7, "needs the write role");
        for token in [WRITE_TOKEN, ADMIN_TOKEN] {
            let (status, body) = send(&server, method.clone(), path, Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{method} {path}: {body}");
        }
    }
    // Write routes with bodies.
    let (status, body) = send(&server, Method::POST, "/v1/jobs", Some(READ_TOKEN), Some(job_json("x"))).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, 7, "write");
    let patch = json!({"version": "5", "name": "renamed"});
    let (status, _) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        Some(READ_TOKEN),
        Some(patch.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(
        &server,
        Method::PATCH,
        &format!("/v1/jobs/{id}"),
        Some(WRITE_TOKEN),
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = send(
        &server,
        Method::DELETE,
        &format!("/v1/jobs/{id}"),
        Some(READ_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Admin class.
    for token in [None, Some(READ_TOKEN), Some(WRITE_TOKEN)] {
        let (status, _) = send(
            &server,
            Method::POST,
            "/v1/admin/reset",
            token,
            Some(json!({"confirm": true})),
        )
        .await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
            "{token:?}: {status}"
        );
    }
    // Public class.
    let (status, _) = send(&server, Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        &server,
        Method::DELETE,
        &format!("/v1/jobs/{id}"),
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The same token rules on native gRPC.
#[tokio::test]
async fn auth_matrix_on_grpc() {
    use monitor_proto::v1::{CreateJobRequest, GetServerInfoRequest, ListJobsRequest, ResetDatabaseRequest};
    use tonic::Code;

    let server = TestServer::builder().api_tokens().start().await;
    let err = server
        .jobs_as(None)
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = server
        .jobs_as(Some("wrong-token-wrong-token"))
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    server
        .jobs_as(Some(READ_TOKEN))
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap();
    server
        .admin_as(Some(READ_TOKEN))
        .get_server_info(GetServerInfoRequest {})
        .await
        .unwrap();
    let job = crate::harness::http_job("g");
    let err = server
        .jobs_as(Some(READ_TOKEN))
        .create_job(CreateJobRequest { job: Some(job.clone()) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("needs the write role"));
    server
        .jobs_as(Some(WRITE_TOKEN))
        .create_job(CreateJobRequest { job: Some(job) })
        .await
        .unwrap();
    let err = server
        .admin_as(Some(WRITE_TOKEN))
        .reset_database(ResetDatabaseRequest { confirm: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Health and reflection stay open.
    let health = tonic_health::pb::health_client::HealthClient::new(server.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(health.is_ok());
}

#[tokio::test]
async fn cors_preflight_and_exposed_headers() {
    let options = monitor_server::server::ServerOptions {
        cors_allowed_origins: vec!["http://ui.example:3000".parse().unwrap()],
        ..Default::default()
    };
    let server = TestServer::builder().options(options).start().await;
    let client = Client::new();
    let preflight = client
        .request(Method::OPTIONS, server.url("/monitor.v1.JobService/ListJobs"))
        .header("origin", "http://ui.example:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "http://ui.example:3000");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("x-grpc-web") && allowed.contains("authorization"),
        "{allowed}"
    );

    let response = client
        .get(server.url("/v1/jobs"))
        .header("origin", "http://ui.example:3000")
        .send()
        .await
        .unwrap();
    let exposed = response.headers()["access-control-expose-headers"].to_str().unwrap();
    assert!(
        exposed.contains("grpc-status") && exposed.contains("grpc-message"),
        "{exposed}"
    );

    let foreign = client
        .get(server.url("/v1/jobs"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn grpc_web_calls_reach_the_same_service() {
    // A grpc-web (binary) ListJobs frame by hand: 0x00 flag, 4-byte length, empty message.
    let server = TestServer::start().await;
    create(&server, "web", None).await;
    let response = Client::new()
        .post(server.url("/monitor.v1.JobService/ListJobs"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/grpc-web")
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(body[0], 0, "first frame is data");
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let list = <monitor_proto::v1::ListJobsResponse as prost::Message>::decode(&body[5..5 + length]).unwrap();
    assert_eq!(list.jobs[0].name, "web");
    let trailers = String::from_utf8_lossy(&body[5 + length + 5..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
}
