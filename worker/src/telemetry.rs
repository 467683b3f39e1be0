//! The workers' own HTTP port: `/metrics` (OpenMetrics text), `/healthz`
//! (the process answers) and `/readyz` (the role's dependencies work: the
//! probe's control-plane stream is up and a broker answers; the
//! aggregator's database and a broker answer). A `/readyz` that fails names
//! the failing dependencies, e.g. `not ready: broker unreachable`.

use std::{
    future::Future,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
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

/// One partition of a topic, as the consumer-lag gauges are labelled.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
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
    /// SQL statements run by committed flushes.
    pub flush_statements: Counter,
    pub fenced: Counter,
    pub flush_duration: Histogram,
    /// Per owned partition: messages on the broker not yet in the rollups
    /// (high watermark − committed offset); absent while unknown.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
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
            flush_statements: Counter::default(),
            fenced: Counter::default(),
            flush_duration: seconds_buckets(),
            consumer_lag: Family::default(),
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
            "aggregator_flush_statements",
            "SQL statements run by committed flushes",
            metrics.flush_statements.clone(),
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
        registry.register(
            "aggregator_consumer_lag",
            "Messages of an owned partition not yet rolled up and committed (high watermark minus committed offset)",
            metrics.consumer_lag.clone(),
        );
        metrics
    }
}

/// Metrics of the alert role.
#[derive(Clone)]
pub struct AlertMetrics {
    pub consumed: Counter,
    pub skipped_duplicates: Counter,
    /// Undecodable messages skipped (the aggregators dead-letter them).
    pub skipped_poison: Counter,
    pub flushes: Counter,
    pub fenced: Counter,
    /// Flushes not written after their retries (their partitions re-read).
    pub failed_flushes: Counter,
    pub incidents_opened: Counter,
    pub incidents_resolved: Counter,
    pub notifications: Counter,
    pub flush_duration: Histogram,
    /// Per owned partition: messages on the broker not yet evaluated and
    /// committed; absent while unknown.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
}

impl Default for AlertMetrics {
    /// Unregistered metrics: they count, but no /metrics shows them.
    fn default() -> Self {
        AlertMetrics {
            consumed: Counter::default(),
            skipped_duplicates: Counter::default(),
            skipped_poison: Counter::default(),
            flushes: Counter::default(),
            fenced: Counter::default(),
            failed_flushes: Counter::default(),
            incidents_opened: Counter::default(),
            incidents_resolved: Counter::default(),
            notifications: Counter::default(),
            flush_duration: seconds_buckets(),
            consumer_lag: Family::default(),
        }
    }
}

impl AlertMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = AlertMetrics::default();
        let counters = [
            ("alert_consumed", "Results evaluated", &metrics.consumed),
            (
                "alert_skipped_duplicates",
                "Messages already evaluated (replays)",
                &metrics.skipped_duplicates,
            ),
            (
                "alert_skipped_poison",
                "Undecodable messages skipped",
                &metrics.skipped_poison,
            ),
            ("alert_flushes", "Committed flushes", &metrics.flushes),
            (
                "alert_fenced_flushes",
                "Flushes refused because another member moved a partition",
                &metrics.fenced,
            ),
            (
                "alert_failed_flushes",
                "Flushes not written after retries",
                &metrics.failed_flushes,
            ),
            (
                "alert_incidents_opened",
                "Incidents opened (committed)",
                &metrics.incidents_opened,
            ),
            (
                "alert_incidents_resolved",
                "Incidents resolved (committed)",
                &metrics.incidents_resolved,
            ),
            (
                "alert_notifications",
                "Notification intents written (committed)",
                &metrics.notifications,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "alert_flush_duration_seconds",
            "Time to write one flush",
            metrics.flush_duration.clone(),
        );
        registry.register(
            "alert_consumer_lag",
            "Messages of an owned partition not yet evaluated and committed",
            metrics.consumer_lag.clone(),
        );
        metrics
    }
}

/// Whether the role is ready, as `/readyz` reports it: ready while every
/// registered [`Dependency`] is up.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Mutex<Vec<Dependency>>>);

impl Readiness {
    /// Registers a dependency, down until first set up. `failing` is what
    /// `/readyz` says while it is down, e.g. `broker unreachable`.
    pub fn dependency(&self, failing: &'static str) -> Dependency {
        let dependency = Dependency {
            failing,
            up: Arc::new(AtomicBool::new(false)),
        };
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dependency.clone());
        dependency
    }

    /// What is failing, in registration order (empty: ready).
    pub fn failing(&self) -> Vec<&'static str> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|d| !d.get())
            .map(|d| d.failing)
            .collect()
    }

    pub fn get(&self) -> bool {
        self.failing().is_empty()
    }
}

/// One thing the role needs, set up or down by whoever watches it.
#[derive(Clone, Debug)]
pub struct Dependency {
    /// What `/readyz` says while this is down.
    failing: &'static str,
    up: Arc<AtomicBool>,
}

impl Dependency {
    /// Records the state; a change is logged once, not every check.
    pub fn set(&self, up: bool) {
        let was = self.up.swap(up, Ordering::Relaxed);
        match (was, up) {
            (true, false) => tracing::warn!(reason = self.failing, "not ready"),
            (false, true) => tracing::info!(cleared = self.failing, "dependency answers"),
            _ => {}
        }
    }

    pub fn get(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// Sets `dependency` from `check` every `every`, forever (abort the task to
/// stop); a check still running after `timeout` counts as down.
pub async fn watch<F, Fut>(dependency: Dependency, every: Duration, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        let up = tokio::time::timeout(timeout, check()).await.unwrap_or(false);
        dependency.set(up);
        tokio::time::sleep(every).await;
    }
}

/// How often, and how patiently, `/readyz` asks the database.
const DATABASE_CHECK_EVERY: Duration = Duration::from_secs(2);
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The telemetry of a role that consumes the results topic into
/// PostgreSQL (aggregate, alert): ready while the database answers and a
/// broker does (both clients retry by themselves; readiness only reports),
/// and the telemetry port when one is configured.
pub struct StoreConsumerTelemetry {
    /// The database and broker watches and the telemetry server.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StoreConsumerTelemetry {
    pub fn spawn(
        pool: &monitor_store::DbPool,
        kafka: &crate::kafka::KafkaArgs,
        listen: Option<SocketAddr>,
        registry: Registry,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let ready = Readiness::default();
        let database = {
            let (pool, dependency) = (pool.clone(), ready.dependency("database unreachable"));
            tokio::spawn(watch(
                dependency,
                DATABASE_CHECK_EVERY,
                DATABASE_CHECK_TIMEOUT,
                move || {
                    let pool = pool.clone();
                    async move { monitor_store::pool::ping(&pool).await.is_ok() }
                },
            ))
        };
        let broker = crate::kafka::BrokerCheck::spawn_watch(kafka, ready.dependency("broker unreachable"))?;
        let mut tasks = vec![database, broker];
        if let Some(address) = listen {
            let mut stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let served = serve(address, registry, ready, async move {
                    let _ = stop.wait_for(|done| *done).await;
                })
                .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "the telemetry port failed");
                }
            }));
        }
        Ok(StoreConsumerTelemetry { tasks })
    }

    /// Stops the watches and the telemetry server.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
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
    let failing = shared.ready.failing();
    if failing.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", failing.join(", ")),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_fails() {
        let ready = Readiness::default();
        assert!(ready.get(), "nothing to wait for");
        let database = ready.dependency("database unreachable");
        let broker = ready.dependency("broker unreachable");
        assert_eq!(ready.failing(), ["database unreachable", "broker unreachable"]);
        database.set(true);
        assert_eq!(ready.failing(), ["broker unreachable"]);
        broker.set(true);
        assert!(ready.get());
        database.set(false);
        assert_eq!(ready.failing(), ["database unreachable"]);
    }
}
