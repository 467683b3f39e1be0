//! The REST/JSON gateway under `/v1` (alerting's routes in `alerts`) and the
//! proof of concept's routes, as
//! thin handlers over the same domain code as the gRPC services. Bodies are
//! the proto messages in canonical proto3 JSON (pbjson), exactly what grpcurl
//! prints; errors are google.rpc.Status JSON ([`crate::error::http_response`]).

mod alerts;
pub mod body;
pub mod legacy;
mod notifications;
pub mod openapi;

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    body::Body,
    extract::{Path, RawQuery, Request, State},
    http::{HeaderMap, Method, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use monitor_proto::v1::{
    CreateJobRequest, CreateJobResponse, DeleteJobRequest, DeleteJobResponse, GetJobRequest, GetJobResponse,
    GetJobStatusResponse, Job, JobState, ListJobsRequest, QueryMetricsRequest, ResetDatabaseRequest, StartJobResponse,
    StopJobResponse, UpdateJobRequest, UpdateJobResponse,
};
use monitor_proto::wkt::Timestamp;

use crate::{admin::Admin, alerts::AlertCatalog, error::ApiError, jobs::JobCatalog, notify::ChannelCatalog};
use body::{decode, decode_value, query_pairs, read_json_bytes, snake_case};

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    pub catalog: JobCatalog,
    pub alerts: AlertCatalog,
    pub channels: ChannelCatalog,
    pub admin: Admin,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The OpenAPI document, built once from the proto descriptors.
    pub openapi: Arc<serde_json::Value>,
    pub metrics: crate::metrics::ServerMetrics,
}

type Result<T> = std::result::Result<T, ApiError>;

/// Every REST route and its handlers: `/v1`, health, metrics and the
/// legacy aliases. The one list both the router and the access-policy walk
/// ([`route_patterns`]) read.
fn routes() -> Vec<(&'static str, MethodRouter<RestState>)> {
    let mut routes = vec![
        ("/v1/jobs", get(list_jobs).post(create_job)),
        ("/v1/jobs/{id}", get(get_job).patch(update_job).delete(delete_job)),
        ("/v1/jobs/{id}/start", post(start_job)),
        ("/v1/jobs/{id}/stop", post(stop_job)),
        ("/v1/jobs/{id}/status", get(job_status)),
        ("/v1/jobs/{id}/metrics", get(query_metrics)),
        ("/v1/job-summaries", get(list_job_summaries)),
        ("/v1/info", get(server_info)),
        ("/v1/workers", get(list_workers)),
        ("/v1/admin/reset", post(reset_database)),
        ("/v1/openapi.json", get(openapi_document)),
        ("/healthz", get(alive)),
        ("/metrics", get(prometheus)),
        ("/readyz", get(ready)),
    ];
    routes.extend(alerts::routes());
    routes.extend(notifications::routes());
    routes.extend(legacy::routes());
    routes
}

/// The patterns of every REST and legacy route, as the router matches them.
pub fn route_patterns() -> Vec<&'static str> {
    routes().into_iter().map(|(pattern, _)| pattern).collect()
}

/// The `/v1` routes and the legacy aliases, with the request timeout.
pub fn router(state: RestState, request_timeout: Duration) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (pattern, handlers)| {
            router.route(pattern, handlers)
        })
        .with_state(state)
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| async move {
                match tokio::time::timeout(request_timeout, next.run(request)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::DeadlineExceeded(format!(
                        "the request took longer than {} ms",
                        request_timeout.as_millis()
                    ))
                    .into_response(),
                }
            },
        ))
}

/// Unknown routes: JSON 404 for REST clients, UNIMPLEMENTED for gRPC ones.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let grpc = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::auth::policy::is_grpc_content_type);
    if grpc {
        return tonic::Status::unimplemented(format!("unknown method {}", uri.path())).into_http();
    }
    ApiError::NotFound(format!(
        "no route for {method} {}; the routes are listed at /v1/openapi.json",
        uri.path()
    ))
    .into_response()
}

/// Known route, wrong method: JSON 405.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let hint = if uri.path() == "/db/init" { " (use POST)" } else { "" };
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}{hint}", uri.path())).into_response()
}

/// The `{id}` of a route; a path that does not decode is a JSON 400, not
/// axum's plain-text rejection.
pub struct JobId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JobId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(JobId(id)),
            Err(rejection) => Err(ApiError::invalid("id", rejection.body_text())),
        }
    }
}

/// Reads and decodes a JSON body of type `T`.
async fn json_body<T: serde::de::DeserializeOwned>(state: &RestState, request: Request) -> Result<T> {
    let (parts, body) = request.into_parts();
    let bytes = read_json_bytes(&parts.headers, body, state.max_body_bytes).await?;
    decode(&bytes)
}

/// Builds a ListJobs request from query parameters (camelCase or snake_case):
/// `pageSize`, `pageToken`, `state` (`JOB_STATE_RUNNING` or `running`),
/// repeated `labelSelector=key=value`, `nameContains`.
fn list_request(query: Option<&str>) -> Result<ListJobsRequest> {
    let mut request = ListJobsRequest::default();
    for (key, value) in query_pairs(query) {
        match snake_case(&key).as_str() {
            "page_size" => {
                request.page_size = value
                    .parse()
                    .map_err(|_| ApiError::invalid("page_size", format!("{value:?} is not a whole number")))?;
            }
            "page_token" => request.page_token = value,
            "state" => {
                let upper = value.to_ascii_uppercase();
                let name = if upper.starts_with("JOB_STATE_") {
                    upper
                } else {
                    format!("JOB_STATE_{upper}")
                };
                request.state = JobState::from_str_name(&name).ok_or_else(|| {
                    ApiError::invalid("state", format!("{value:?} is not a state; use running or stopped"))
                })? as i32;
            }
            "label_selector" => request.label_selector.push(value),
            "name_contains" => request.name_contains = value,
            _ => {
                return Err(ApiError::invalid(
                    key.clone(),
                    "unknown query parameter; use pageSize, pageToken, state, labelSelector or nameContains",
                ));
            }
        }
    }
    Ok(request)
}

pub(crate) async fn list_jobs(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let request = list_request(query.as_deref())?;
    Ok(Json(state.catalog.list(request).await?).into_response())
}

/// `GET /v1/job-summaries`: ListJobSummaries, with ListJobs' query parameters.
async fn list_job_summaries(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let request = list_request(query.as_deref())?;
    Ok(Json(state.catalog.list_summaries(request).await?).into_response())
}

/// `POST /v1/jobs`: the body is the Job.
async fn create_job(State(state): State<RestState>, request: Request) -> Result<Response> {
    let job: Job = json_body(&state, request).await?;
    let job = state.catalog.create(CreateJobRequest { job: Some(job) }).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(CreateJobResponse { job: Some(job) }),
    )
        .into_response())
}

pub(crate) async fn get_job(State(state): State<RestState>, JobId(id): JobId) -> Result<Response> {
    let job = state.catalog.get(GetJobRequest { id }).await?;
    Ok(Json(GetJobResponse { job: Some(job) }).into_response())
}

/// `PATCH /v1/jobs/{id}`: the body holds `version` and the fields to change.
/// Without `?updateMask=a,b` the fields present in the body are the mask.
async fn update_job(
    State(state): State<RestState>,
    JobId(id): JobId,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let (value, update_mask) = patch_body(&state, query.as_deref(), request, "the job's").await?;
    let mut job: Job = decode_value(value)?;
    job.id = same_id(id, &job.id)?;
    let job = state
        .catalog
        .update(UpdateJobRequest {
            job: Some(job),
            update_mask,
        })
        .await?;
    Ok(Json(UpdateJobResponse { job: Some(job) }).into_response())
}

/// The JSON object of a PATCH and its update mask: `?updateMask=a,b`, or
/// else the fields present in the body (but `id` and `version`). `whose`
/// names the resource in errors ("the job's").
pub(crate) async fn patch_body(
    state: &RestState,
    query: Option<&str>,
    request: Request,
    whose: &str,
) -> Result<(serde_json::Value, Option<pbjson_types::FieldMask>)> {
    let mut mask = None;
    for (key, value) in query_pairs(query) {
        match snake_case(&key).as_str() {
            "update_mask" => {
                mask = Some(
                    value
                        .split(',')
                        .map(|p| snake_case(p.trim()))
                        .filter(|p| !p.is_empty())
                        .collect(),
                )
            }
            _ => {
                return Err(ApiError::invalid(
                    key,
                    "unknown query parameter; only updateMask is accepted",
                ));
            }
        }
    }
    let (parts, body) = request.into_parts();
    let bytes = read_json_bytes(&parts.headers, body, state.max_body_bytes).await?;
    let value: serde_json::Value = decode(&bytes)?;
    let serde_json::Value::Object(fields) = &value else {
        return Err(ApiError::invalid(
            "body",
            format!("must be a JSON object with {whose} fields and its version"),
        ));
    };
    let paths: Vec<String> = match mask {
        Some(paths) => paths,
        None => fields
            .keys()
            .map(|k| snake_case(k))
            .filter(|k| k != "id" && k != "version")
            .collect(),
    };
    if paths.is_empty() {
        return Err(ApiError::invalid("body", "names no field to change"));
    }
    Ok((value, Some(pbjson_types::FieldMask { paths })))
}

/// The path's id, refusing a different one in the body.
pub(crate) fn same_id(path_id: String, body_id: &str) -> Result<String> {
    if !body_id.is_empty() && body_id != path_id {
        return Err(ApiError::invalid(
            "id",
            "the id in the body differs from the id in the path",
        ));
    }
    Ok(path_id)
}

/// The `?version=N` of a DELETE (0 when absent).
pub(crate) fn version_query(query: Option<&str>) -> Result<i64> {
    let mut version = 0;
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "version" => {
                version = value
                    .parse()
                    .map_err(|_| ApiError::invalid("version", format!("{value:?} is not a whole number")))?;
            }
            _ => {
                return Err(ApiError::invalid(
                    key,
                    "unknown query parameter; only version is accepted",
                ));
            }
        }
    }
    Ok(version)
}

/// `DELETE /v1/jobs/{id}?version=N` (version optional).
async fn delete_job(State(state): State<RestState>, JobId(id): JobId, RawQuery(query): RawQuery) -> Result<Response> {
    let version = version_query(query.as_deref())?;
    state.catalog.delete(DeleteJobRequest { id, version }).await?;
    Ok(Json(DeleteJobResponse {}).into_response())
}

pub(crate) async fn start_job(State(state): State<RestState>, JobId(id): JobId) -> Result<Response> {
    let change = state.catalog.set_running(&id, true).await?;
    Ok(Json(StartJobResponse {
        job: Some(change.job),
        changed: change.changed,
        message: change.message,
    })
    .into_response())
}

pub(crate) async fn stop_job(State(state): State<RestState>, JobId(id): JobId) -> Result<Response> {
    let change = state.catalog.set_running(&id, false).await?;
    Ok(Json(StopJobResponse {
        job: Some(change.job),
        changed: change.changed,
        message: change.message,
    })
    .into_response())
}

async fn job_status(State(state): State<RestState>, JobId(id): JobId) -> Result<Response> {
    let status = state.catalog.status(&id).await?;
    Ok(Json(GetJobStatusResponse { status: Some(status) }).into_response())
}

/// Builds a QueryMetrics request from query parameters (camelCase or
/// snake_case): `granularity`, `start` and `end` (RFC 3339; also `startTime`,
/// `endTime`), `location`, and `aggregates` (comma-separated, or repeated).
/// Empty values mean the default.
pub fn metrics_request(job_id: String, query: Option<&str>) -> Result<QueryMetricsRequest> {
    let mut request = QueryMetricsRequest {
        job_id,
        ..Default::default()
    };
    for (key, value) in query_pairs(query) {
        match snake_case(&key).as_str() {
            "granularity" => request.granularity = value,
            "start" | "start_time" => request.start_time = rfc3339(&key, &value)?,
            "end" | "end_time" => request.end_time = rfc3339(&key, &value)?,
            "location" => request.location = value,
            "aggregates" => request.aggregates.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned),
            ),
            _ => {
                return Err(ApiError::invalid(
                    key,
                    "unknown query parameter; use granularity, start, end, location or aggregates",
                ));
            }
        }
    }
    Ok(request)
}

/// A timestamp query parameter; empty is unset.
fn rfc3339(key: &str, value: &str) -> Result<Option<Timestamp>> {
    if value.is_empty() {
        return Ok(None);
    }
    // A `+hh:mm` offset arrives as a space unless the client encoded the `+`.
    let parsed = chrono::DateTime::parse_from_rfc3339(value)
        .or_else(|err| chrono::DateTime::parse_from_rfc3339(&value.replace(' ', "+")).map_err(|_| err));
    match parsed {
        Ok(at) => Ok(Some(at.with_timezone(&chrono::Utc).into())),
        Err(err) => Err(ApiError::invalid(
            key,
            format!("{value:?} is not an RFC 3339 timestamp such as 2026-11-27T10:00:00Z ({err})"),
        )),
    }
}

/// `GET /v1/jobs/{id}/metrics`: QueryMetrics.
async fn query_metrics(
    State(state): State<RestState>,
    JobId(id): JobId,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let request = metrics_request(id, query.as_deref())?;
    Ok(Json(state.catalog.query_metrics(request).await?).into_response())
}

async fn list_workers(State(state): State<RestState>) -> Response {
    Json(monitor_proto::v1::ListWorkersResponse {
        workers: state.catalog.workers().list(),
    })
    .into_response()
}

pub(crate) async fn server_info(State(state): State<RestState>) -> Result<Response> {
    Ok(Json(state.admin.info().await?).into_response())
}

async fn reset_database(State(state): State<RestState>, request: Request) -> Result<Response> {
    let reset: ResetDatabaseRequest = json_body(&state, request).await?;
    Ok(Json(state.admin.reset(reset).await?).into_response())
}

async fn prometheus(State(state): State<RestState>) -> Response {
    crate::metrics::render(&state.metrics, &state.catalog).await
}

/// Liveness: the process answers.
async fn alive() -> Response {
    Json(serde_json::json!({"status": "alive"})).into_response()
}

/// Readiness: PostgreSQL answers (503 with the reason otherwise).
async fn ready(State(state): State<RestState>) -> Response {
    let probe = tokio::time::timeout(Duration::from_secs(2), monitor_store::pool::ping(state.catalog.pool())).await;
    match probe {
        Ok(Ok(())) => Json(serde_json::json!({"status": "ready", "checks": {"database": "ok"}})).into_response(),
        Ok(Err(err)) => not_ready(&err.to_string()),
        Err(_) => not_ready("no answer within 2 s"),
    }
}

fn not_ready(reason: &str) -> Response {
    let body = serde_json::json!({"status": "not ready", "checks": {"database": reason}});
    (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn openapi_document(State(state): State<RestState>) -> Response {
    Json(state.openapi.as_ref().clone()).into_response()
}

/// Reads the whole body of a request that should have none, refusing one.
pub(crate) async fn no_body(body: Body) -> Result<()> {
    let bytes = axum::body::to_bytes(body, 1024)
        .await
        .map_err(|_| ApiError::invalid("body", "this route takes no body"))?;
    if bytes.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(ApiError::invalid("body", "this route takes no body"));
    }
    Ok(())
}
