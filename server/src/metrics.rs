//! Prometheus metrics of the control plane, served at `/metrics` in the
//! OpenMetrics text format: requests by protocol, route and code, request
//! duration, connected workers, assignments per worker, jobs by state.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::jobs::JobCatalog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `grpc`, `grpc-web` or `http`.
    pub protocol: String,
    /// The matched route (`/v1/jobs/:id`) or gRPC method path.
    pub route: String,
    /// HTTP status, or the gRPC status code when the response carries one.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub protocol: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerLabels {
    pub worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// The server's metrics; cheap to clone.
#[derive(Clone)]
pub struct ServerMetrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    connected_workers: Gauge,
    assignments: Family<WorkerLabels, Gauge>,
    jobs: Family<StateLabels, Gauge>,
    /// When the job gauges were last read from the database: at most one
    /// query per [`JOB_COUNTS_MAX_AGE`], however often strangers scrape.
    jobs_read_at: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

/// How old the job gauges of `/metrics` may be.
pub const JOB_COUNTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(10);

impl Default for ServerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("monitor");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "API requests by protocol, route and code", requests.clone());
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "request_duration_seconds",
            "API request duration until the response head",
            duration.clone(),
        );
        let connected_workers = Gauge::default();
        registry.register(
            "connected_workers",
            "Probe workers with an open stream",
            connected_workers.clone(),
        );
        let assignments = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "worker_assignments",
            "Assignments each probe worker holds",
            assignments.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register("jobs", "Jobs by desired state", jobs.clone());
        ServerMetrics {
            registry: Arc::new(registry),
            requests,
            duration,
            connected_workers,
            assignments,
            jobs,
            jobs_read_at: Arc::default(),
        }
    }
}

/// A bounded route label for a request path.
fn route_of(request: &Request) -> (String, String) {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = request.uri().path();
    if content_type.starts_with("application/grpc") {
        let protocol = if content_type.starts_with("application/grpc-web") {
            "grpc-web"
        } else {
            "grpc"
        };
        // Only the methods of the access policy become labels; any other
        // path is one label, so random paths add no series.
        let known = crate::auth::policy::operation(path).is_some_and(|op| op.name.starts_with('/'));
        return (
            protocol.into(),
            if known { path.to_owned() } else { "unmatched".into() },
        );
    }
    // `/v1/jobs/{id}` is written `/v1/jobs/:id`: some exposition parsers
    // stumble over braces inside label values.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().replace('{', ":").replace('}', ""));
    ("http".into(), route.unwrap_or_else(|| "unmatched".into()))
}

/// Middleware: counts and times every request.
pub async fn track(State(metrics): State<ServerMetrics>, request: Request, next: Next) -> Response {
    let (protocol, route) = route_of(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if protocol == "http" {
                response.status().as_u16().to_string()
            } else {
                "0".into()
            }
        });
    metrics
        .duration
        .get_or_create(&RouteLabels {
            protocol: protocol.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels { protocol, route, code })
        .inc();
    response
}

/// `GET /metrics`: refreshes the gauges and renders everything.
pub async fn render(metrics: &ServerMetrics, catalog: &JobCatalog) -> Response {
    let workers = catalog.workers().list();
    metrics
        .connected_workers
        .set(catalog.workers().connected_count() as i64);
    metrics.assignments.clear();
    for worker in &workers {
        metrics
            .assignments
            .get_or_create(&WorkerLabels {
                worker: worker.id.clone(),
            })
            .set(worker.assigned_jobs);
    }
    {
        // One scrape at a time refreshes; the others wait and reuse it.
        let mut read_at = metrics.jobs_read_at.lock().await;
        if read_at.is_none_or(|at| at.elapsed() >= JOB_COUNTS_MAX_AGE)
            && let Ok(counts) = catalog.counts().await
        {
            *read_at = Some(Instant::now());
            metrics
                .jobs
                .get_or_create(&StateLabels {
                    state: "running".into(),
                })
                .set(counts.running);
            metrics
                .jobs
                .get_or_create(&StateLabels {
                    state: "stopped".into(),
                })
                .set(counts.stopped);
        }
    }
    let mut text = String::new();
    if encode(&mut text, &metrics.registry).is_err() {
        return crate::error::ApiError::Internal("metrics could not be encoded".into()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
