//! The access policy from outside: a walk that fails when an operation the
//! server serves is missing from the policy table (or the table names one it
//! does not serve), a matrix of every operation × credential × content type
//! × method against the exact answer, and the requests that used to get
//! through.

use std::{collections::BTreeSet, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode, header},
};
use monitor_proto::v1::{GetJobRequest, JobState, StartJobRequest};
use monitor_server::{
    auth::{
        Role, Tokens,
        policy::{self, Operation, POLICY, Payload, Requirement},
    },
    server::ServerOptions,
};
use monitor_testkit::server::{ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN, api_tokens};
use prost::Message as _;
use tower::ServiceExt as _;

use crate::harness::http_job;

const WORKER_TOKEN: &str = "worker-token-for-tests-0004";

/// Every `/package.Service/Method` in the descriptor sets the server
/// registers (its own services, health, reflection v1 and v1alpha).
fn served_grpc_methods() -> BTreeSet<String> {
    let sets = [
        monitor_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = BTreeSet::new();
    for bytes in sets {
        let set = prost_types::FileDescriptorSet::decode(bytes).unwrap();
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                }
            }
        }
    }
    methods
}

fn grpc_policy() -> BTreeSet<String> {
    POLICY
        .iter()
        .filter(|op| op.payload == Payload::Grpc)
        .map(|op| op.name.to_owned())
        .collect()
}

#[test]
fn every_grpc_method_has_an_access_rule() {
    let served = served_grpc_methods();
    assert!(served.len() >= 18, "{served:?}");
    let listed = grpc_policy();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "gRPC methods without an access rule: {missing:?}");
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(stale.is_empty(), "access rules for methods nobody serves: {stale:?}");
}

/// A path for a route pattern (`{id}` → a job id that does not exist).
fn path_of(pattern: &str) -> String {
    pattern
        .replace("{id}", "0190a1b2-0000-7000-8000-000000000000")
        .replace("{file}", "index.html")
}

/// The methods the bare routers (no access middleware) answer on each
/// route pattern with something other than 405.
async fn served_rest_operations(server: &TestServer) -> BTreeSet<String> {
    let (rest, ui) = bare_routers(server);
    let mut served = BTreeSet::new();
    for (router, patterns) in [
        (rest, monitor_server::rest::route_patterns()),
        (ui, monitor_server::ui::route_patterns()),
    ] {
        for pattern in patterns {
            for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(path_of(pattern))
                    .body(Body::empty())
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                if response.status() != StatusCode::METHOD_NOT_ALLOWED {
                    served.insert(format!("{method} {pattern}"));
                }
            }
        }
    }
    served
}

/// The REST and dashboard routers as the server builds them, without the
/// access middleware around them.
fn bare_routers(server: &TestServer) -> (Router, Router) {
    let registry = monitor_server::fleet::WorkerRegistry::new(Default::default());
    let catalog = monitor_server::jobs::JobCatalog::new(server.pool.clone(), registry);
    let state = monitor_server::rest::RestState {
        admin: monitor_server::admin::Admin::new(catalog.clone()),
        alerts: monitor_server::alerts::AlertCatalog::new(server.pool.clone()),
        channels: monitor_server::notify::ChannelCatalog::new(server.pool.clone(), &Default::default()).unwrap(),
        catalog,
        metrics: Default::default(),
        max_body_bytes: 1024 * 1024,
        openapi: std::sync::Arc::new(monitor_server::rest::openapi::document(
            monitor_proto::FILE_DESCRIPTOR_SET,
        )),
    };
    (
        monitor_server::rest::router(state, Duration::from_secs(30)),
        monitor_server::ui::router(Default::default()),
    )
}

#[tokio::test]
async fn every_route_the_router_serves_has_an_access_rule() {
    let server = TestServer::start().await;
    let served = served_rest_operations(&server).await;
    assert!(served.len() >= 25, "{served:?}");
    let listed: BTreeSet<String> = POLICY
        .iter()
        .filter(|op| op.payload != Payload::Grpc)
        .map(|op| op.name.to_owned())
        .collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "routes without an access rule: {missing:?}");
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(stale.is_empty(), "access rules for routes nobody serves: {stale:?}");
}

/// The credential a matrix request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    Nothing,
    Api(Role),
    Worker,
}

impl Presented {
    const ALL: [Presented; 5] = [
        Presented::Nothing,
        Presented::Api(Role::Read),
        Presented::Api(Role::Write),
        Presented::Api(Role::Admin),
        Presented::Worker,
    ];

    fn token(self) -> Option<&'static str> {
        match self {
            Presented::Nothing => None,
            Presented::Api(Role::Read) => Some(READ_TOKEN),
            Presented::Api(Role::Write) => Some(WRITE_TOKEN),
            Presented::Api(Role::Admin) => Some(ADMIN_TOKEN),
            Presented::Worker => Some(WORKER_TOKEN),
        }
    }
}

/// What an answer amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The request reached its handler (whatever the handler then said).
    Reached,
    Unauthenticated,
    PermissionDenied,
    MethodNotAllowed,
    UnsupportedMediaType,
}

const CONTENT_TYPES: [&str; 4] = ["application/grpc", "application/grpc-web+proto", "application/json", ""];

/// The answer the policy promises, worked out from the table and the rules
/// in the README (never from what the server answered).
fn expected(
    operation: Option<&Operation>,
    presented: Presented,
    content_type: &str,
    method: &Method,
    tokens_configured: bool,
) -> Answer {
    // tonic-web answers a grpc-web request that is not a POST itself.
    if content_type.starts_with("application/grpc-web") && method != Method::POST {
        return Answer::MethodNotAllowed;
    }
    let Some(operation) = operation else {
        return Answer::MethodNotAllowed;
    };
    let api_open = !tokens_configured;
    let denial = match operation.requirement {
        Requirement::Public => None,
        Requirement::Reset if !tokens_configured => Some(Answer::PermissionDenied),
        Requirement::Role(_) | Requirement::Reset if api_open => None,
        Requirement::Role(_) | Requirement::Reset => {
            let needed = match operation.requirement {
                Requirement::Role(role) => role,
                _ => Role::Admin,
            };
            match presented {
                Presented::Nothing => Some(Answer::Unauthenticated),
                Presented::Api(role) if role >= needed => None,
                Presented::Api(_) | Presented::Worker => Some(Answer::PermissionDenied),
            }
        }
        Requirement::Worker if !tokens_configured => None,
        Requirement::Worker => match presented {
            Presented::Worker => None,
            Presented::Nothing => Some(Answer::Unauthenticated),
            Presented::Api(_) => Some(Answer::PermissionDenied),
        },
    };
    if let Some(denial) = denial {
        return denial;
    }
    let grpc = content_type.starts_with("application/grpc");
    let fits = match operation.payload {
        Payload::Grpc => grpc,
        Payload::Empty => !grpc,
        Payload::Json => content_type == "application/json",
        Payload::OptionalJson => content_type.is_empty() || content_type == "application/json",
    };
    if fits {
        Answer::Reached
    } else {
        Answer::UnsupportedMediaType
    }
}

/// What a response amounts to: gRPC refusals by their status code, the
/// rest by the HTTP status.
fn classify(status: StatusCode, grpc_status: Option<&str>) -> Answer {
    match (status, grpc_status) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => Answer::MethodNotAllowed,
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, _) => Answer::UnsupportedMediaType,
        (StatusCode::UNAUTHORIZED, _) | (_, Some("16")) => Answer::Unauthenticated,
        (StatusCode::FORBIDDEN, _) | (_, Some("7")) => Answer::PermissionDenied,
        _ => Answer::Reached,
    }
}

/// Every operation the matrix sends: gRPC methods by path, REST routes by
/// pattern (the method is a matrix dimension).
fn matrix_targets() -> Vec<(String, Option<&'static str>)> {
    let mut targets: Vec<(String, Option<&'static str>)> = POLICY
        .iter()
        .filter(|op| op.payload == Payload::Grpc)
        .map(|op| (op.name.to_owned(), None))
        .collect();
    let patterns: BTreeSet<&'static str> = POLICY
        .iter()
        .filter_map(|op| op.name.split_once(' ').map(|(_, route)| route))
        .collect();
    targets.extend(patterns.into_iter().map(|route| (path_of(route), Some(route))));
    targets
}

/// The policy's operation for `method` on a target, as the README states
/// it: gRPC methods take POST; REST routes their listed methods, and HEAD
/// where GET is public or read.
fn operation_for(name: &str, route: Option<&str>, method: &Method) -> Option<&'static Operation> {
    match route {
        None => (method == Method::POST).then(|| policy::operation(name)).flatten(),
        Some(route) => policy::operation(&format!("{method} {route}")).or_else(|| {
            (method == Method::HEAD)
                .then(|| policy::operation(&format!("GET {route}")))
                .flatten()
                .filter(|get| matches!(get.requirement, Requirement::Public | Requirement::Role(Role::Read)))
        }),
    }
}

/// Sends the whole matrix to `app` and returns the mismatches.
async fn run_matrix(app: Router, tokens_configured: bool) -> (usize, Vec<String>) {
    let mut sent = 0;
    let mut mismatches = Vec::new();
    for (path, route) in matrix_targets() {
        for presented in Presented::ALL {
            for content_type in CONTENT_TYPES {
                for method in [Method::GET, Method::HEAD, Method::POST] {
                    let mut request = Request::builder().method(method.clone()).uri(&path);
                    if !content_type.is_empty() {
                        request = request.header(header::CONTENT_TYPE, content_type);
                    }
                    if let Some(token) = presented.token() {
                        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                    }
                    let request = request.body(Body::empty()).unwrap();
                    let response = tokio::time::timeout(Duration::from_secs(20), app.clone().oneshot(request))
                        .await
                        .unwrap_or_else(|_| panic!("{method} {path} as {presented:?} with {content_type:?} hung"))
                        .unwrap();
                    let grpc_status = response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let got = classify(response.status(), grpc_status.as_deref());
                    let want = expected(
                        operation_for(&path, route, &method),
                        presented,
                        content_type,
                        &method,
                        tokens_configured,
                    );
                    sent += 1;
                    if got != want {
                        mismatches.push(format!(
                            "{method} {path} as {presented:?} with {content_type:?}: want {want:?}, got {got:?} \
                             (HTTP {}, grpc-status {grpc_status:?})",
                            response.status()
                        ));
                    }
                }
            }
        }
    }
    (sent, mismatches)
}

fn options_with_worker_tokens() -> ServerOptions {
    ServerOptions {
        tokens: api_tokens()
            .with_worker_tokens("tests", &format!("matrix-*:{WORKER_TOKEN}"))
            .unwrap(),
        ..ServerOptions::default()
    }
}

/// Runs the whole matrix against a server with `options` and asserts every
/// answer is the promised one.
async fn assert_matrix(options: ServerOptions, tokens_configured: bool) {
    let server = TestServer::start().await;
    let (app, _tasks) = monitor_server::server::app(server.pool.clone(), options).await.unwrap();
    let (sent, mismatches) = run_matrix(app, tokens_configured).await;
    assert_eq!(
        sent,
        matrix_targets().len() * Presented::ALL.len() * CONTENT_TYPES.len() * 3
    );
    assert!(
        mismatches.is_empty(),
        "{} of {sent} answers differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test]
async fn the_matrix_of_operations_credentials_content_types_and_methods() {
    assert_matrix(options_with_worker_tokens(), true).await;
}

#[tokio::test]
async fn the_matrix_in_dev_mode() {
    let options = ServerOptions {
        tokens: Tokens::default(),
        ..ServerOptions::default()
    };
    assert_matrix(options, false).await;
}

/// The requests of the security report, over the network: each is refused
/// and changes nothing.
#[tokio::test]
async fn the_reported_requests_are_refused_and_change_nothing() {
    let server = TestServer::builder().api_tokens().start().await;
    let admin = server.jobs_as(Some(ADMIN_TOKEN));
    let job = admin
        .clone()
        .create_job(monitor_proto::v1::CreateJobRequest {
            job: Some(http_job("kept")),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let http = reqwest::Client::new();
    let grpc_type = [(header::CONTENT_TYPE.as_str(), "application/grpc")];

    let mut post_init = http.post(server.url("/db/init"));
    for (name, value) in grpc_type {
        post_init = post_init.header(name, value);
    }
    assert_eq!(post_init.send().await.unwrap().status(), 401);

    let mut list = http.get(server.url("/v1/jobs"));
    let mut start = http.post(server.url(&format!("/v1/jobs/{}/start", job.id)));
    for (name, value) in grpc_type {
        list = list.header(name, value);
        start = start.header(name, value);
    }
    assert_eq!(list.send().await.unwrap().status(), 401);
    assert_eq!(start.send().await.unwrap().status(), 401);
    let stored = |jobs: monitor_proto::v1::job_service_client::JobServiceClient<_>| {
        let id = job.id.clone();
        async move {
            let mut jobs = jobs;
            jobs.get_job(GetJobRequest { id })
                .await
                .unwrap()
                .into_inner()
                .job
                .unwrap()
        }
    };
    assert_eq!(
        stored(admin.clone()).await.desired_state,
        JobState::Stopped as i32,
        "not started"
    );

    admin
        .clone()
        .start_job(StartJobRequest { id: job.id.clone() })
        .await
        .unwrap();
    let head_stop = http
        .head(server.url(&format!("/job/{}/stop", job.id)))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head_stop.status(), 405);
    assert_eq!(
        stored(admin.clone()).await.desired_state,
        JobState::Running as i32,
        "not stopped"
    );
    let head_stop_as_writer = http
        .head(server.url(&format!("/job/{}/stop", job.id)))
        .bearer_auth(WRITE_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(head_stop_as_writer.status(), 405, "HEAD never changes anything");
    assert_eq!(stored(admin.clone()).await.desired_state, JobState::Running as i32);

    // An unknown method of a known service is not read: it is refused.
    let unknown = http
        .post(server.url("/monitor.v1.JobService/DropEverything"))
        .header(header::CONTENT_TYPE, "application/grpc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.headers().get("grpc-status").and_then(|v| v.to_str().ok()),
        Some("12"),
        "UNIMPLEMENTED"
    );
    let count = admin
        .clone()
        .list_jobs(monitor_proto::v1::ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs
        .len();
    assert_eq!(count, 1, "the database was not reset");
}
