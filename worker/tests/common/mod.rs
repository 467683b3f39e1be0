//! What the worker crate's integration tests share: the shared broker's
//! address, fresh names, `monitor-worker` processes with their telemetry
//! (`/readyz`, `/metrics`), and the control plane in-process.
//!
//! Each test binary includes this module (`mod common;`) and uses a part of
//! it, so unused items are expected.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use monitor_store::testing::TestDb;
use monitor_testkit::free_port;
use tokio::{
    net::TcpListener,
    process::{Child, Command},
    sync::oneshot,
};
use uuid::Uuid;

/// The shared broker (Apache Kafka, or tansu with KAFKA_IMPL=tansu), for
/// tests that never stop it.
pub fn shared_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

/// Creates `topic` on `brokers` (plaintext), replication factor 1.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_replicated_topic(brokers, topic, partitions, 1).await;
}

/// Creates `topic` on `brokers` (plaintext) with `replication` copies.
pub async fn create_replicated_topic(brokers: &str, topic: &str, partitions: i32, replication: i32) {
    let config = monitor_worker::kafka::KafkaArgs::plaintext(brokers, topic)
        .client_config()
        .unwrap();
    monitor_worker::kafka::ensure_topic(&config, topic, partitions, replication)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// Worker processes and their telemetry

pub struct Worker {
    pub child: Child,
    /// Address of /metrics, /healthz and /readyz.
    pub telemetry: String,
    /// Its standard error: the tracing log.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn spawn_worker(role: &str, args: &[&str]) -> Worker {
    spawn_worker_env(role, args, &[])
}

/// A `monitor-worker ROLE` with `args` and the environment variables `env`
/// (as an operator sets KAFKA_* settings).
pub fn spawn_worker_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(format!("{role}.log"));
    let telemetry = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_monitor-worker"))
        .arg(role)
        .args(args)
        .args(["--metrics-listen", &telemetry])
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Worker {
        child,
        telemetry,
        log,
        _dir: dir,
    }
}

/// An aggregator of `topic` on `brokers` (plaintext) in a fresh group,
/// rolling up by the minute.
pub fn spawn_aggregator(database_url: &str, brokers: &str, topic: &str) -> Worker {
    spawn_aggregator_with(database_url, topic, &fresh("group"), &["--kafka-brokers", brokers])
}

/// An aggregator of `topic` in `group`, reaching Kafka with the `kafka`
/// flags (brokers, TLS, SASL).
pub fn spawn_aggregator_with(database_url: &str, topic: &str, group: &str, kafka: &[&str]) -> Worker {
    let dlq = fresh("dlq");
    let args = [
        &[
            "--database-url",
            database_url,
            "--kafka-topic",
            topic,
            "--group-id",
            group,
            "--dlq-topic",
            &dlq,
            "--flush-interval-ms",
            "200",
            "--granularities",
            "1m",
        ][..],
        kafka,
    ]
    .concat();
    spawn_worker("aggregate", &args)
}

pub fn http() -> reqwest::Client {
    // reqwest is built without a default TLS provider in this crate.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Worker {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// /readyz's status and body, or why it could not be asked.
    pub async fn readyz(&self) -> Result<(u16, String), String> {
        let response = http()
            .get(format!("http://{}/readyz", self.telemetry))
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.map_err(|err| err.to_string())?))
    }

    /// Waits until /readyz answers `status` with a body containing `says`;
    /// fails at once, with the worker's log, if the worker exits.
    pub async fn wait_ready(&mut self, status: u16, says: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let last = match self.readyz().await {
                Ok((got, body)) if got == status && body.contains(says) => return,
                Ok((got, body)) => format!("{got} {body:?}"),
                Err(err) => err,
            };
            if let Some(exit) = self.child.try_wait().unwrap() {
                panic!(
                    "the worker exited ({exit}) while waiting for /readyz {status}: {}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for /readyz {status} saying {says:?}; last: {last}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn metrics(&self) -> Result<prometheus_parse::Scrape, String> {
        let text = http()
            .get(format!("http://{}/metrics", self.telemetry))
            .send()
            .await
            .map_err(|err| err.to_string())?
            .text()
            .await
            .map_err(|err| err.to_string())?;
        Ok(prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .unwrap_or_else(|err| panic!("not valid exposition ({err}):\n{text}")))
    }

    /// SIGTERM, then a clean exit.
    pub async fn terminate(mut self) {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the worker did not stop: {}", self.log()))
            .unwrap();
        assert!(status.success(), "the worker exited with {status}: {}", self.log());
    }
}

pub fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The control plane, in-process over a fresh database; no worker tokens
/// (dev mode), so any worker may connect. Dropping the sender stops it; the
/// database must outlive it.
pub async fn start_control_plane() -> (SocketAddr, oneshot::Sender<()>, TestDb) {
    start_control_plane_with(monitor_server::server::ServerOptions::default()).await
}

pub async fn start_control_plane_with(
    options: monitor_server::server::ServerOptions,
) -> (SocketAddr, oneshot::Sender<()>, TestDb) {
    let db = TestDb::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    tokio::spawn(monitor_server::server::run(listener, db.pool(), options, async {
        let _ = server_stopped.await;
    }));
    (server, stop_server, db)
}

/// A probe worker of `server` producing to a fresh topic on `brokers`.
pub fn spawn_probe(server: SocketAddr, brokers: &str, worker_id: &str) -> Worker {
    spawn_probe_with(&format!("http://{server}"), brokers, worker_id, &[])
}

/// A probe worker of the control plane at `url`, with `extra` flags.
pub fn spawn_probe_with(url: &str, brokers: &str, worker_id: &str, extra: &[&str]) -> Worker {
    let topic = fresh("checks");
    let args = [
        &[
            "--server",
            url,
            "--worker-id",
            worker_id,
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            &topic,
            "--topic-partitions",
            "1",
        ][..],
        extra,
    ]
    .concat();
    spawn_worker("probe", &args)
}

impl Worker {
    /// SIGKILL: no drain, no goodbye.
    pub async fn kill_9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The mock website, in-process on port 0, with latency 0.
pub struct Mock {
    pub addr: SocketAddr,
    /// Dropping it stops the mock.
    _stop: oneshot::Sender<()>,
}

pub async fn start_mock() -> Mock {
    use clap::Parser as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = monitor_mock::Config::try_parse_from(["monitor-mock", "--seed", "7", "--latency-ms", "0"])
        .unwrap()
        .mock;
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(monitor_mock::run(listener, config, async {
        let _ = stopped.await;
    }));
    Mock { addr, _stop: stop }
}

impl Mock {
    /// What the mock has served so far.
    pub async fn stats(&self) -> monitor_mock::StatsSnapshot {
        http()
            .get(format!("http://{}/__stats", self.addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Every rollup row in `db`.
pub async fn stored_rows(db: &TestDb) -> Vec<monitor_store::models::job_metrics::MetricRow> {
    use diesel::{QueryDsl, SelectableHelper};
    use monitor_store::{diesel_async::RunQueryDsl, models::job_metrics::MetricRow};
    let pool = db.pool();
    let mut conn = pool.get().await.unwrap();
    monitor_store::schema::job_metrics::table
        .select(MetricRow::as_select())
        .load(&mut conn)
        .await
        .unwrap()
}
