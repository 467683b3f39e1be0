//! The workers' own HTTP port: `/metrics` (OpenMetrics text), `/healthz`
//! (the process answers) and `/readyz` (the role's dependencies work: the
//! probe's control-plane stream is up; the aggregator's database answers).

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// `http` or `tcp`.
    pub kind: String,
    /// The CheckOutcome name, e.g. `CHECK_OUTCOME_OK`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Metrics of the probe role.
#[derive(Clone)]
pub struct ProbeMetrics {
    pub checks: Family<CheckLabels, Counter>,
    pub check_duration: Family<KindLabels, Histogram>,
    pub lateness: Histogram,
    pub delivered: Counter,
    pub delivery_failures: Counter,
    pub queue_depth: Gauge,
    pub assignments: Gauge,
    pub in_flight: Gauge,
}

fn seconds_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

impl ProbeMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ProbeMetrics {
            checks: Family::default(),
            check_duration: Family::new_with_constructor(seconds_buckets),
            lateness: seconds_buckets(),
            delivered: Counter::default(),
            delivery_failures: Counter::default(),
            queue_depth: Gauge::default(),
            assignments: Gauge::default(),
            in_flight: Gauge::default(),
        };
        registry.register("checks", "Checks run, by kind and outcome", metrics.checks.clone());
        registry.register(
            "check_duration_seconds",
            "Duration of checks",
            metrics.check_duration.clone(),
        );
        registry.register(
            "schedule_lateness_seconds",
            "Check start after its scheduled slot",
            metrics.lateness.clone(),
        );
        registry.register(
            "kafka_delivered",
            "Results the broker acknowledged",
            metrics.delivered.clone(),
        );
        registry.register(
            "kafka_delivery_failures",
            "Results lost after the client's retries",
            metrics.delivery_failures.clone(),
        );
        registry.register(
            "kafka_queue_depth",
            "Results queued in the producer",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "assignments",
            "Assignments this worker runs",
            metrics.assignments.clone(),
        );
        registry.register("checks_in_flight", "Checks running now", metrics.in_flight.clone());
        metrics
    }
}

/// Metrics of the aggregate role.
#[derive(Clone)]
pub struct AggregatorMetrics {
    pub consumed: Counter,
    pub skipped_duplicates: Counter,
    pub dead_lettered: Counter,
    pub flushes: Counter,
    pub rows_upserted: Counter,
    pub fenced: Counter,
    pub flush_duration: Histogram,
}

impl Default for AggregatorMetrics {
    /// Unregistered metrics: they count, but no /metrics shows them.
    fn default() -> Self {
        AggregatorMetrics {
            consumed: Counter::default(),
            skipped_duplicates: Counter::default(),
            dead_lettered: Counter::default(),
            flushes: Counter::default(),
            rows_upserted: Counter::default(),
            fenced: Counter::default(),
            flush_duration: seconds_buckets(),
        }
    }
}

impl AggregatorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AggregatorMetrics::default();
        registry.register("aggregator_consumed", "Results consumed", metrics.consumed.clone());
        registry.register(
            "aggregator_skipped_duplicates",
            "Messages already accounted for (replays)",
            metrics.skipped_duplicates.clone(),
        );
        registry.register(
            "aggregator_dead_lettered",
            "Messages sent to the dead-letter topic",
            metrics.dead_lettered.clone(),
        );
        registry.register("aggregator_flushes", "Committed flushes", metrics.flushes.clone());
        registry.register(
            "aggregator_rows_upserted",
            "Rollup rows upserted",
            metrics.rows_upserted.clone(),
        );
        registry.register(
            "aggregator_fenced_flushes",
            "Flushes refused because another member moved a partition",
            metrics.fenced.clone(),
        );
        registry.register(
            "aggregator_flush_duration_seconds",
            "Time to write one flush",
            metrics.flush_duration.clone(),
        );
        metrics
    }
}

/// Whether the role is ready, as `/readyz` reports it.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    ready: Readiness,
}

/// Serves the telemetry routes on `address` until `shutdown` completes.
pub async fn serve(
    address: SocketAddr,
    registry: Registry,
    ready: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "alive\n" }))
        .route("/readyz", get(readyz))
        .with_state(Shared {
            registry: Arc::new(registry),
            ready,
        });
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

async fn metrics(State(shared): State<Shared>) -> axum::response::Response {
    let mut text = String::new();
    if encode(&mut text, &shared.registry).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics could not be encoded\n").into_response();
    }
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn readyz(State(shared): State<Shared>) -> axum::response::Response {
    if shared.ready.get() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
