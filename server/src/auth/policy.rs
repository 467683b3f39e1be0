//! The access policy: one table naming every operation the server serves
//! and what it needs, and the decision for one request.
//!
//! An operation is what the router will run, never what the client says it
//! is: a gRPC method by its path (`/monitor.v1.JobService/GetJob`), a REST or
//! legacy route by method and route pattern (`GET /v1/jobs/{id}`). Anything
//! not in [`POLICY`] is refused. `HEAD` is allowed only where `GET` is safe
//! (public or read); elsewhere it is 405. Tests walk the descriptor set and
//! the router's routes and fail when one is missing here.

use std::{collections::HashMap, sync::LazyLock};

use axum::http::Method;

use super::tokens::{Actor, Credential, Role, Tokens, WorkerGrant};
use crate::error::ApiError;

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone: health, reflection, the API description, the dashboard's
    /// files, metrics.
    Public,
    /// An API token with at least this role (open while no API token is
    /// configured: dev mode).
    Role(Role),
    /// An admin token; refused outright while none is configured, dev mode
    /// included.
    Reset,
    /// A probe worker's token (open while no worker token is configured).
    Worker,
}

/// What an operation's request body is, which decides the content types
/// accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// gRPC framing: `application/grpc…` (grpc-web arrives translated).
    Grpc,
    /// No body (REST and legacy routes that take none).
    Empty,
    /// A JSON body: `application/json`.
    Json,
    /// An optional JSON body: none (no content type) or `application/json`.
    OptionalJson,
}

/// One row of the policy.
#[derive(Debug, PartialEq, Eq)]
pub struct Operation {
    /// `/package.Service/Method` for gRPC, `METHOD /route/{param}` for REST.
    pub name: &'static str,
    pub requirement: Requirement,
    pub payload: Payload,
}

const fn grpc(name: &'static str, requirement: Requirement) -> Operation {
    Operation {
        name,
        requirement,
        payload: Payload::Grpc,
    }
}

const fn rest(name: &'static str, requirement: Requirement, payload: Payload) -> Operation {
    Operation {
        name,
        requirement,
        payload,
    }
}

use Payload::{Empty, Json, OptionalJson};
use Requirement::{Public, Reset, Worker};
const READ: Requirement = Requirement::Role(Role::Read);
const WRITE: Requirement = Requirement::Role(Role::Write);

/// Every operation the server serves and what it needs.
pub static POLICY: &[Operation] = &[
    // monitor.v1.JobService
    grpc("/monitor.v1.JobService/CreateJob", WRITE),
    grpc("/monitor.v1.JobService/GetJob", READ),
    grpc("/monitor.v1.JobService/ListJobs", READ),
    grpc("/monitor.v1.JobService/UpdateJob", WRITE),
    grpc("/monitor.v1.JobService/DeleteJob", WRITE),
    grpc("/monitor.v1.JobService/StartJob", WRITE),
    grpc("/monitor.v1.JobService/StopJob", WRITE),
    grpc("/monitor.v1.JobService/GetJobStatus", READ),
    grpc("/monitor.v1.JobService/QueryMetrics", READ),
    grpc("/monitor.v1.JobService/ListJobSummaries", READ),
    // monitor.v1.WorkerService
    grpc("/monitor.v1.WorkerService/Connect", Worker),
    grpc("/monitor.v1.WorkerService/ListWorkers", READ),
    // monitor.v1.AdminService
    grpc("/monitor.v1.AdminService/GetServerInfo", READ),
    // monitor.v1.AlertService
    grpc("/monitor.v1.AlertService/CreateAlertRule", WRITE),
    grpc("/monitor.v1.AlertService/GetAlertRule", READ),
    grpc("/monitor.v1.AlertService/ListAlertRules", READ),
    grpc("/monitor.v1.AlertService/UpdateAlertRule", WRITE),
    grpc("/monitor.v1.AlertService/DeleteAlertRule", WRITE),
    grpc("/monitor.v1.AlertService/CreateSilence", WRITE),
    grpc("/monitor.v1.AlertService/GetSilence", READ),
    grpc("/monitor.v1.AlertService/ListSilences", READ),
    grpc("/monitor.v1.AlertService/UpdateSilence", WRITE),
    grpc("/monitor.v1.AlertService/DeleteSilence", WRITE),
    grpc("/monitor.v1.AlertService/ListIncidents", READ),
    grpc("/monitor.v1.AlertService/GetIncident", READ),
    grpc("/monitor.v1.AlertService/AcknowledgeIncident", WRITE),
    grpc("/monitor.v1.AlertService/ResolveIncident", WRITE),
    // monitor.v1.NotificationService
    grpc("/monitor.v1.NotificationService/CreateNotificationChannel", WRITE),
    grpc("/monitor.v1.NotificationService/GetNotificationChannel", READ),
    grpc("/monitor.v1.NotificationService/ListNotificationChannels", READ),
    grpc("/monitor.v1.NotificationService/UpdateNotificationChannel", WRITE),
    grpc("/monitor.v1.NotificationService/DeleteNotificationChannel", WRITE),
    // A test send reaches out to the far end: a change's weight.
    grpc("/monitor.v1.NotificationService/TestNotificationChannel", WRITE),
    grpc("/monitor.v1.NotificationService/ListNotificationDeliveries", READ),
    grpc("/monitor.v1.AdminService/ResetDatabase", Reset),
    // Health and reflection stay open, as load balancers and grpcurl expect.
    grpc("/grpc.health.v1.Health/Check", Public),
    grpc("/grpc.health.v1.Health/Watch", Public),
    grpc("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Public),
    grpc("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Public),
    // REST gateway
    rest("GET /v1/jobs", READ, Empty),
    rest("POST /v1/jobs", WRITE, Json),
    rest("GET /v1/jobs/{id}", READ, Empty),
    rest("PATCH /v1/jobs/{id}", WRITE, Json),
    rest("DELETE /v1/jobs/{id}", WRITE, Empty),
    rest("POST /v1/jobs/{id}/start", WRITE, Empty),
    rest("POST /v1/jobs/{id}/stop", WRITE, Empty),
    rest("GET /v1/jobs/{id}/status", READ, Empty),
    rest("GET /v1/jobs/{id}/metrics", READ, Empty),
    rest("GET /v1/job-summaries", READ, Empty),
    rest("GET /v1/alert-rules", READ, Empty),
    rest("POST /v1/alert-rules", WRITE, Json),
    rest("GET /v1/alert-rules/{id}", READ, Empty),
    rest("PATCH /v1/alert-rules/{id}", WRITE, Json),
    rest("DELETE /v1/alert-rules/{id}", WRITE, Empty),
    rest("GET /v1/silences", READ, Empty),
    rest("POST /v1/silences", WRITE, Json),
    rest("GET /v1/silences/{id}", READ, Empty),
    rest("PATCH /v1/silences/{id}", WRITE, Json),
    rest("DELETE /v1/silences/{id}", WRITE, Empty),
    rest("GET /v1/notification-channels", READ, Empty),
    rest("POST /v1/notification-channels", WRITE, Json),
    rest("GET /v1/notification-channels/{id}", READ, Empty),
    rest("PATCH /v1/notification-channels/{id}", WRITE, Json),
    rest("DELETE /v1/notification-channels/{id}", WRITE, Empty),
    rest("POST /v1/notification-channels/{id}/test", WRITE, Empty),
    rest("GET /v1/notification-deliveries", READ, Empty),
    rest("GET /v1/incidents", READ, Empty),
    rest("GET /v1/incidents/{id}", READ, Empty),
    rest("POST /v1/incidents/{id}/acknowledge", WRITE, OptionalJson),
    rest("POST /v1/incidents/{id}/resolve", WRITE, OptionalJson),
    rest("GET /v1/info", READ, Empty),
    rest("GET /v1/workers", READ, Empty),
    rest("POST /v1/admin/reset", Reset, Json),
    rest("GET /v1/openapi.json", Public, Empty),
    rest("GET /healthz", Public, Empty),
    rest("GET /readyz", Public, Empty),
    rest("GET /metrics", Public, Empty),
    // The proof of concept's routes (GET start/stop kept for its clients).
    rest("GET /", READ, Empty),
    rest("GET /job", READ, Empty),
    rest("GET /job/{id}", READ, Empty),
    rest("GET /job/{id}/start", WRITE, Empty),
    rest("POST /job/{id}/start", WRITE, Empty),
    rest("GET /job/{id}/stop", WRITE, Empty),
    rest("POST /job/{id}/stop", WRITE, Empty),
    rest("POST /db/init", Reset, Empty),
    // The dashboard's files.
    rest("GET /ui", Public, Empty),
    rest("GET /ui/", Public, Empty),
    rest("GET /ui/{file}", Public, Empty),
];

static BY_NAME: LazyLock<HashMap<&'static str, &'static Operation>> =
    LazyLock::new(|| POLICY.iter().map(|op| (op.name, op)).collect());

/// The REST rows by (method, route pattern), so a request is looked up
/// without building its name.
static BY_ROUTE: LazyLock<HashMap<(&'static str, &'static str), &'static Operation>> = LazyLock::new(|| {
    POLICY
        .iter()
        .filter_map(|op| op.name.split_once(' ').map(|key| (key, op)))
        .collect()
});

/// The operation with this name, if the policy lists it.
pub fn operation(name: &str) -> Option<&'static Operation> {
    BY_NAME.get(name).copied()
}

/// What a request will reach, as far as access is concerned.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Operation(&'static Operation),
    /// A route that exists, with a method the policy does not allow on it
    /// (including `HEAD` where `GET` changes something).
    MethodNotAllowed,
    /// A method of a gRPC service that the policy does not list.
    UnknownGrpcMethod,
    /// A served route the policy does not list: refused (a server bug, and
    /// a test catches it).
    Unlisted,
    /// No route: the router's fallback answers 404 / UNIMPLEMENTED, which
    /// reveals and changes nothing.
    Unrouted,
}

/// The gRPC service of a route pattern `/{package.Service}/{*rest}` (as
/// tonic registers services), if it is one.
fn grpc_service(route: &str) -> Option<&str> {
    let service = route.strip_prefix('/')?.strip_suffix("/{*rest}")?;
    (service.contains('.') && !service.contains('/')).then_some(service)
}

/// The target of a request: `route` is the pattern the router matched
/// (axum's `MatchedPath`), `path` the request's path.
pub fn target(method: &Method, route: Option<&str>, path: &str) -> Target {
    let Some(route) = route else {
        return Target::Unrouted;
    };
    if let Some(service) = grpc_service(route) {
        let in_service = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(service))
            .is_some_and(|p| p.starts_with('/'));
        return match operation(path) {
            Some(op) if in_service && method == Method::POST => Target::Operation(op),
            Some(_) if in_service => Target::MethodNotAllowed,
            _ => Target::UnknownGrpcMethod,
        };
    }
    if let Some(op) = BY_ROUTE.get(&(method.as_str(), route)).copied() {
        return Target::Operation(op);
    }
    if method == Method::HEAD
        && let Some(get) = BY_ROUTE.get(&("GET", route)).copied()
    {
        return if matches!(get.requirement, Requirement::Public | Requirement::Role(Role::Read)) {
            Target::Operation(get)
        } else {
            Target::MethodNotAllowed
        };
    }
    let listed = BY_ROUTE.keys().any(|(_, listed)| *listed == route);
    if listed {
        Target::MethodNotAllowed
    } else {
        Target::Unlisted
    }
}

/// What an allowed request carries on to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An API call (or a public one), and who it acts as.
    Api(Actor),
    /// A worker stream, and the identities it may say hello as.
    Worker(WorkerGrant),
}

/// Whether `credential` meets `requirement` under the configured `tokens`.
pub fn authorize(requirement: Requirement, credential: &Credential, tokens: &Tokens) -> Result<Grant, ApiError> {
    let needed = match requirement {
        Requirement::Public => return Ok(Grant::Api(Actor::anonymous())),
        Requirement::Worker => return authorize_worker(credential, tokens),
        Requirement::Reset if !tokens.has_admin() => {
            return Err(ApiError::PermissionDenied(
                "database reset is disabled: configure an admin token (MONITOR_API_TOKENS) to enable it".into(),
            ));
        }
        Requirement::Reset => Role::Admin,
        Requirement::Role(role) => role,
    };
    if tokens.is_empty() {
        return Ok(Grant::Api(Actor::anonymous()));
    }
    match credential {
        Credential::Api(caller) if caller.role >= needed => Ok(Grant::Api(Actor(caller.name.clone()))),
        Credential::Api(caller) => Err(ApiError::PermissionDenied(format!(
            "this needs the {} role; the token has {}",
            needed.as_str(),
            caller.role.as_str()
        ))),
        Credential::Worker(_) => Err(ApiError::PermissionDenied(
            "a worker token grants nothing on the API; use an API token".into(),
        )),
        other => Err(unauthenticated(other, "authorization: Bearer <token>")),
    }
}

fn authorize_worker(credential: &Credential, tokens: &Tokens) -> Result<Grant, ApiError> {
    if !tokens.has_worker_tokens() {
        return Ok(Grant::Worker(WorkerGrant::Any));
    }
    match credential {
        Credential::Worker(grant) => Ok(Grant::Worker(grant.clone())),
        Credential::Api(_) => Err(ApiError::PermissionDenied(
            "API tokens cannot connect as a probe worker; use a worker token (MONITOR_WORKER_TOKENS)".into(),
        )),
        other => Err(unauthenticated(other, "authorization: Bearer <worker token>")),
    }
}

fn unauthenticated(credential: &Credential, expected: &str) -> ApiError {
    ApiError::Unauthenticated(match credential {
        Credential::Missing => format!("missing credentials: send the header '{expected}'"),
        Credential::Malformed => format!("the authorization header must be '{expected}'"),
        _ => "unknown token".into(),
    })
}

/// The essence of a content type (`application/json; charset=utf-8` →
/// `application/json`), lowercased.
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Whether a content type is gRPC's (native or, before translation, grpc-web).
pub fn is_grpc_content_type(content_type: &str) -> bool {
    essence(content_type).starts_with("application/grpc")
}

/// Refuses a body of the wrong kind for `payload` (HTTP 415), naming what
/// to send. `content_type` is "" when the request has none.
pub fn check_content_type(payload: Payload, content_type: &str) -> Result<(), ApiError> {
    let grpc = is_grpc_content_type(content_type);
    let shown = if content_type.is_empty() {
        "missing content-type".to_owned()
    } else {
        format!("content-type {content_type:?}")
    };
    match payload {
        Payload::Grpc if !grpc => Err(ApiError::UnsupportedMediaType(format!(
            "{shown} is not gRPC: gRPC methods take 'content-type: application/grpc' (or grpc-web); \
             the REST routes are listed at /v1/openapi.json"
        ))),
        Payload::Empty if grpc => Err(ApiError::UnsupportedMediaType(format!(
            "{shown}: this is a REST route; gRPC clients call /package.Service/Method"
        ))),
        Payload::Json if essence(content_type) != "application/json" => Err(ApiError::UnsupportedMediaType(format!(
            "{shown} is not supported: send 'content-type: application/json'"
        ))),
        Payload::OptionalJson if !content_type.is_empty() && essence(content_type) != "application/json" => {
            Err(ApiError::UnsupportedMediaType(format!(
                "{shown} is not supported: send no body, or one with 'content-type: application/json'"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokens::tests::{ADMIN, READ, WORKER, WRITE, bearer_header, tokens};
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_well_formed() {
        assert_eq!(BY_NAME.len(), POLICY.len(), "a name is listed twice");
        for op in POLICY {
            match op.payload {
                Payload::Grpc => assert!(
                    op.name.starts_with('/') && op.name.matches('/').count() == 2,
                    "{}",
                    op.name
                ),
                _ => {
                    let (method, route) = op.name.split_once(' ').expect("METHOD /route");
                    assert!(Method::from_bytes(method.as_bytes()).is_ok() && route.starts_with('/'));
                    assert_ne!(method, "HEAD", "HEAD follows GET");
                }
            }
        }
    }

    #[test]
    fn whatever_changes_something_needs_write_or_more() {
        const READ_ONLY_GRPC: [&str; 4] = ["Get", "List", "Query", "Check"];
        for op in POLICY {
            let changes = match op.payload {
                Payload::Grpc => {
                    let method = op.name.rsplit('/').next().unwrap();
                    !READ_ONLY_GRPC.iter().any(|p| method.starts_with(p))
                        && !matches!(method, "Watch" | "ServerReflectionInfo" | "Connect")
                }
                _ => !op.name.starts_with("GET ") || op.name.ends_with("/start") || op.name.ends_with("/stop"),
            };
            if changes {
                assert!(
                    matches!(op.requirement, Requirement::Role(Role::Write | Role::Admin) | Reset),
                    "{} changes something but needs only {:?}",
                    op.name,
                    op.requirement
                );
            }
            if op.name.contains("Reset") || op.name.contains("/reset") || op.name.ends_with("/db/init") {
                assert_eq!(op.requirement, Reset, "{}", op.name);
            }
        }
        assert_eq!(
            operation("/monitor.v1.WorkerService/Connect").unwrap().requirement,
            Worker
        );
    }

    #[test]
    fn targets_come_from_the_route_not_the_client() {
        let post = Method::POST;
        let grpc_route = Some("/monitor.v1.JobService/{*rest}");
        assert_eq!(
            target(&post, grpc_route, "/monitor.v1.JobService/GetJob"),
            Target::Operation(operation("/monitor.v1.JobService/GetJob").unwrap())
        );
        assert_eq!(
            target(&post, grpc_route, "/monitor.v1.JobService/DropEverything"),
            Target::UnknownGrpcMethod
        );
        assert_eq!(
            target(&Method::GET, grpc_route, "/monitor.v1.JobService/GetJob"),
            Target::MethodNotAllowed
        );
        // A listed method reached through another service's route is not it.
        assert_eq!(
            target(
                &post,
                Some("/monitor.v1.Other/{*rest}"),
                "/monitor.v1.JobService/GetJob"
            ),
            Target::UnknownGrpcMethod
        );
        assert_eq!(
            target(&post, Some("/db/init"), "/db/init"),
            Target::Operation(operation("POST /db/init").unwrap())
        );
        assert_eq!(
            target(&Method::HEAD, Some("/job/{id}/stop"), "/job/x/stop"),
            Target::MethodNotAllowed
        );
        assert_eq!(
            target(&Method::HEAD, Some("/v1/jobs"), "/v1/jobs"),
            Target::Operation(operation("GET /v1/jobs").unwrap())
        );
        assert_eq!(
            target(&Method::PUT, Some("/v1/jobs"), "/v1/jobs"),
            Target::MethodNotAllowed
        );
        assert_eq!(
            target(&Method::GET, Some("/v1/new-route"), "/v1/new-route"),
            Target::Unlisted
        );
        assert_eq!(target(&Method::GET, None, "/anything"), Target::Unrouted);
    }

    #[test]
    fn credentials_meet_requirements() {
        let t = tokens();
        let none = Credential::Missing;
        let cred = |token: &str| t.credential(&bearer_header(token));
        let read = Requirement::Role(Role::Read);
        let write = Requirement::Role(Role::Write);
        assert!(authorize(read, &cred(READ), &t).is_ok());
        assert!(authorize(read, &cred(ADMIN), &t).is_ok());
        assert!(authorize(write, &cred(WRITE), &t).is_ok());
        assert!(matches!(
            authorize(write, &cred(READ), &t),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            authorize(Reset, &cred(WRITE), &t),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(authorize(Reset, &cred(ADMIN), &t).is_ok());
        assert!(matches!(authorize(read, &none, &t), Err(ApiError::Unauthenticated(_))));
        assert!(matches!(
            authorize(read, &cred(WORKER), &t),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            authorize(Worker, &cred(ADMIN), &t),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            authorize(Worker, &none, &t),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            authorize(Worker, &cred(WORKER), &t),
            Ok(Grant::Worker(WorkerGrant::Ids(_)))
        ));
        assert_eq!(authorize(Public, &none, &t), Ok(Grant::Api(Actor::anonymous())));
        assert_eq!(
            authorize(write, &cred(WRITE), &t),
            Ok(Grant::Api(Actor("write#2".into()))),
            "a call acts as its token's name"
        );
    }

    #[test]
    fn dev_mode_is_open_but_reset_stays_disabled() {
        let open = Tokens::default();
        let none = Credential::Missing;
        assert_eq!(
            authorize(Requirement::Role(Role::Admin), &none, &open),
            Ok(Grant::Api(Actor::anonymous()))
        );
        assert_eq!(authorize(Worker, &none, &open), Ok(Grant::Worker(WorkerGrant::Any)));
        assert!(matches!(
            authorize(Reset, &none, &open),
            Err(ApiError::PermissionDenied(_))
        ));
    }

    #[test]
    fn content_types_fit_the_payload() {
        assert!(check_content_type(Payload::Grpc, "application/grpc").is_ok());
        assert!(check_content_type(Payload::Grpc, "application/grpc+proto").is_ok());
        assert!(check_content_type(Payload::Grpc, "application/json").is_err());
        assert!(check_content_type(Payload::Grpc, "").is_err());
        assert!(check_content_type(Payload::Empty, "").is_ok());
        assert!(check_content_type(Payload::Empty, "application/json").is_ok());
        assert!(check_content_type(Payload::Empty, "Application/GRPC").is_err());
        assert!(check_content_type(Payload::Json, "application/json; charset=utf-8").is_ok());
        assert!(check_content_type(Payload::OptionalJson, "").is_ok());
        assert!(check_content_type(Payload::OptionalJson, "application/json").is_ok());
        assert!(check_content_type(Payload::OptionalJson, "application/grpc").is_err());
        assert!(check_content_type(Payload::OptionalJson, "text/plain").is_err());
        let err = check_content_type(Payload::Json, "").unwrap_err();
        assert!(err.to_string().contains("missing content-type"), "{err}");
        assert_eq!(err.http_status(), axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
