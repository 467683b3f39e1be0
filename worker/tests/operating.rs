//! Operating the workers: `/readyz` follows the broker and the database, and
//! the aggregator's consumer-lag gauges follow what is not yet rolled up.
//!
//! Real processes throughout: `monitor-worker` binaries, a private tansu
//! broker per broker-outage test (started here, then killed and restarted on
//! the same port, or frozen and thawed; the shared broker at KAFKA_BROKERS is
//! never stopped), the real PostgreSQL behind a small TCP proxy the tests cut
//! and restore (PostgreSQL itself keeps running), and the in-process control
//! plane for the probe, over TLS or behind the same proxy frozen (bytes stop,
//! sockets stay open) to see a silent connection expire.
//! Every wait polls with a generous deadline; nothing asserts on timing.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use monitor_proto::v1::{CheckOutcome, CheckResult};
use monitor_store::testing::TestDb;
use prost::Message as _;
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    sync::{oneshot, watch},
    task::JoinHandle,
};
use uuid::Uuid;

/// The shared broker (tansu or Kafka), for tests that never stop it.
fn shared_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn accepts(address: &str) -> bool {
    TcpStream::connect(address).await.is_ok()
}

/// Polls `condition` every 200 ms until it holds; panics with `what` after
/// `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match condition().await {
            Ok(()) => return,
            Err(last) => assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {last}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------
// A private broker

/// The tansu binary: `TANSU_BIN`, else `tansu` on PATH, else cargo's bin
/// directory (where scripts/lib.sh's ensure_tansu installs it).
fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file());
    let in_cargo = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin/tansu"));
    on_path
        .or(in_cargo.filter(|candidate| candidate.is_file()))
        .expect("these tests start a private tansu broker: install it with `cargo install --locked tansu --features dynostore,postgres` (scripts/test does) or set TANSU_BIN")
}

/// A tansu broker with memory storage that only this test uses, so the test
/// may stop it.
struct PrivateBroker {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateBroker {
    async fn start() -> PrivateBroker {
        let mut broker = PrivateBroker::reserve();
        broker.resume().await;
        broker
    }

    /// A broker address with nothing listening yet ([`Self::resume`] starts it).
    fn reserve() -> PrivateBroker {
        let dir = tempfile::tempdir().unwrap();
        PrivateBroker {
            port: free_port(),
            child: None,
            log: dir.path().join("tansu.log"),
            _dir: dir,
        }
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker on its port (again), as scripts/lib.sh's
    /// broker_command does for KAFKA_IMPL=tansu, and waits until it accepts
    /// connections.
    async fn resume(&mut self) {
        assert!(self.child.is_none(), "the broker runs already");
        let url = format!("tcp://{}", self.address());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap();
            let mut child = Command::new(tansu_binary())
                .args(["broker", "--storage-engine", "memory://tansu/"])
                .args(["--listener-url", &url, "--advertised-listener-url", &url])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            loop {
                if accepts(&self.address()).await {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Exited (the port may still be held by the old process for a
            // moment) or never listened: try again until the deadline.
            let _ = child.kill().await;
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {}: {}",
                self.address(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing answers.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen broker go on (SIGCONT), with everything it held.
    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the broker runs").id().unwrap();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {signal} {pid}");
    }

    /// Kills the broker (SIGKILL: no goodbye to the clients).
    async fn stop(&mut self) {
        let mut child = self.child.take().expect("the broker runs");
        child.kill().await.unwrap();
        wait_until("the broker's port to close", Duration::from_secs(30), || async {
            if accepts(&self.address()).await {
                Err("still accepting".into())
            } else {
                Ok(())
            }
        })
        .await;
    }
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let config = monitor_worker::kafka::KafkaArgs::plaintext(brokers, topic)
        .client_config()
        .unwrap();
    monitor_worker::kafka::ensure_topic(&config, topic, partitions, 1)
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// A TCP proxy in front of PostgreSQL or the control plane

/// Forwards a local port to `upstream` until cut (restored on the same
/// port) or frozen (thawed).
struct Proxy {
    port: u16,
    upstream: SocketAddr,
    /// The accept loop; aborting it drops every connection it forwards.
    task: Option<JoinHandle<()>>,
    /// While true no byte moves either way and no socket closes.
    frozen: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, _) = watch::channel(false);
        Proxy {
            port,
            upstream,
            task: Some(tokio::spawn(Self::forward(listener, upstream, frozen.subscribe()))),
            frozen,
        }
    }

    async fn forward(listener: TcpListener, upstream: SocketAddr, frozen: watch::Receiver<bool>) {
        let mut pipes = tokio::task::JoinSet::new();
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            let frozen = frozen.clone();
            pipes.spawn(async move {
                if let Ok(server) = TcpStream::connect(upstream).await {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        Self::pipe(client_read, server_write, frozen.clone()),
                        Self::pipe(server_read, client_write, frozen),
                    );
                }
            });
            while pipes.try_join_next().is_some() {}
        }
    }

    /// Copies one direction, holding still while frozen: nothing is read
    /// (so the kernel's buffers fill and the sender's pings go unanswered)
    /// and nothing is closed.
    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: watch::Receiver<bool>,
    ) {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            if frozen.wait_for(|f| !*f).await.is_err() {
                return;
            }
            let read = tokio::select! {
                read = from.read(&mut buffer) => read,
                _ = frozen.wait_for(|f| *f) => continue,
            };
            let n = match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            };
            if frozen.wait_for(|f| !*f).await.is_err() || to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    /// Stops every byte in both directions; connections stay open.
    fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Closes the port and every forwarded connection: PostgreSQL "stops
    /// answering" for whoever goes through the proxy.
    async fn cut(&mut self) {
        let task = self.task.take().expect("the proxy runs");
        task.abort();
        let _ = task.await;
    }

    /// Listens on the same port again.
    async fn restore(&mut self) {
        assert!(self.task.is_none(), "the proxy runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(err) => assert!(Instant::now() < deadline, "rebinding port {}: {err}", self.port),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.task = Some(tokio::spawn(Self::forward(
            listener,
            self.upstream,
            self.frozen.subscribe(),
        )));
    }
}

/// The test database reached through a fresh proxy: (proxy, URL through it).
async fn proxied(db: &TestDb) -> (Proxy, String) {
    let mut url = url::Url::parse(&db.url).unwrap();
    let host = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap_or(5432);
    let upstream = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    (proxy, url.to_string())
}

// ---------------------------------------------------------------------------
// Worker processes and their telemetry

struct Worker {
    child: Child,
    /// Address of /metrics, /healthz and /readyz.
    telemetry: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn_worker(role: &str, args: &[&str]) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(format!("{role}.log"));
    let telemetry = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_monitor-worker"))
        .arg(role)
        .args(args)
        .args(["--metrics-listen", &telemetry])
        .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
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

fn spawn_aggregator(database_url: &str, brokers: &str, topic: &str) -> Worker {
    spawn_worker(
        "aggregate",
        &[
            "--database-url",
            database_url,
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            topic,
            "--group-id",
            &fresh("group"),
            "--dlq-topic",
            &fresh("dlq"),
            "--flush-interval-ms",
            "200",
            "--granularities",
            "1m",
        ],
    )
}

fn http() -> reqwest::Client {
    // reqwest is built without a default TLS provider in this crate.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Worker {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// /readyz's status and body, or why it could not be asked.
    async fn readyz(&self) -> Result<(u16, String), String> {
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
    async fn wait_ready(&mut self, status: u16, says: &str) {
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

    async fn metrics(&self) -> Result<prometheus_parse::Scrape, String> {
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
    async fn terminate(mut self) {
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

fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The lag gauges of `topic`, by partition.
fn lag(scrape: &prometheus_parse::Scrape, topic: &str) -> BTreeMap<i32, f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "monitor_aggregator_consumer_lag")
        .filter(|s| s.labels.get("topic") == Some(topic))
        .map(|s| (s.labels.get("partition").unwrap().parse().unwrap(), value(s)))
        .collect()
}

fn consumed(scrape: &prometheus_parse::Scrape) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "monitor_aggregator_consumed_total")
        .map(value)
        .sum()
}

// ---------------------------------------------------------------------------
// Readiness

/// The aggregator's broker outage is a frozen broker (SIGSTOP, then SIGCONT)
/// rather than a killed one: tansu keeps topics in memory, so a restarted
/// tansu has lost the topic the aggregator fetches from, and librdkafka
/// 2.12.1 then sometimes crashes (SIGSEGV in `rd_kafka_metadata_update_op`,
/// on a leader update naming neither topic name nor id) on tansu's answer to
/// the fetch. A real Kafka keeps its topics across a restart. The killed and
/// restarted broker is covered by the probe's test below (a producer does not
/// fetch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_readiness_follows_the_broker() {
    let broker = PrivateBroker::start().await;
    let topic = fresh("checks");
    create_topic(&broker.address(), &topic, 1).await;
    let db = TestDb::new().await;
    let mut aggregator = spawn_aggregator(&db.url, &broker.address(), &topic);
    aggregator.wait_ready(200, "ready").await;

    broker.freeze();
    aggregator.wait_ready(503, "not ready: broker unreachable").await;
    let (_, body) = aggregator.readyz().await.unwrap();
    assert!(!body.contains("database"), "only the broker is failing: {body}");

    broker.thaw();
    aggregator.wait_ready(200, "ready").await;
    aggregator.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_readiness_follows_the_database() {
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, 1).await;
    let db = TestDb::new().await;
    let (mut proxy, url) = proxied(&db).await;
    let mut aggregator = spawn_aggregator(&url, &shared_brokers(), &topic);
    aggregator.wait_ready(200, "ready").await;

    proxy.cut().await;
    aggregator.wait_ready(503, "not ready: database unreachable").await;
    let (_, body) = aggregator.readyz().await.unwrap();
    assert!(!body.contains("broker"), "only the database is failing: {body}");

    proxy.restore().await;
    aggregator.wait_ready(200, "ready").await;
    aggregator.terminate().await;
}

/// The control plane, in-process over a fresh database; no worker tokens
/// (dev mode), so any worker may connect. Dropping the sender stops it; the
/// database must outlive it.
async fn start_control_plane() -> (SocketAddr, oneshot::Sender<()>, TestDb) {
    start_control_plane_with(monitor_server::server::ServerOptions::default()).await
}

async fn start_control_plane_with(
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
fn spawn_probe(server: SocketAddr, brokers: &str, worker_id: &str) -> Worker {
    spawn_probe_with(&format!("http://{server}"), brokers, worker_id, &[])
}

/// A probe worker of the control plane at `url`, with `extra` flags.
fn spawn_probe_with(url: &str, brokers: &str, worker_id: &str, extra: &[&str]) -> Worker {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_readiness_follows_the_broker_and_the_control_plane() {
    let mut broker = PrivateBroker::start().await;
    let (server, stop_server, _db) = start_control_plane().await;
    let mut probe = spawn_probe(server, &broker.address(), "probe-readiness");
    probe.wait_ready(200, "ready").await;

    broker.stop().await;
    probe.wait_ready(503, "not ready: broker unreachable").await;
    let (_, body) = probe.readyz().await.unwrap();
    assert!(!body.contains("control-plane"), "the stream is still up: {body}");
    broker.resume().await;
    probe.wait_ready(200, "ready").await;

    // Both dependencies are named when both fail.
    broker.stop().await;
    drop(stop_server);
    probe
        .wait_ready(503, "not ready: control-plane stream down, broker unreachable")
        .await;
    probe.terminate().await;
}

#[tokio::test]
async fn a_probe_started_before_its_broker_waits_for_it_quietly() {
    let mut broker = PrivateBroker::reserve();
    let (server, _stop_server, _db) = start_control_plane().await;
    let mut probe = spawn_probe(server, &broker.address(), "probe-before-broker");
    // It runs, connected to the control plane, and says what it lacks.
    probe.wait_ready(503, "not ready: broker unreachable").await;
    // Let librdkafka retry its connections for a while: each kind of client
    // error is logged once per client, not at every attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let warnings = probe.log().matches("Kafka client error").count();
    assert!(
        (1..=12).contains(&warnings),
        "{warnings} Kafka client error lines while the broker was absent:\n{}",
        probe.log()
    );

    broker.resume().await;
    probe.wait_ready(200, "ready").await;
    probe.terminate().await;
}

// ---------------------------------------------------------------------------
// The control-plane connection: TLS, and silent connections

/// A certificate for 127.0.0.1 and localhost, made by rcgen: (its files'
/// directory, certificate path, key path, certificate PEM).
fn certificate() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.signing_key.serialize_pem()).unwrap();
    (dir, cert, key, issued.cert.pem())
}

/// A gRPC channel to the control plane at `addr`, over TLS trusting `ca`.
async fn control_plane_channel(addr: SocketAddr, ca: Option<&str>) -> tonic::transport::Channel {
    let endpoint = match ca {
        None => tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap(),
        Some(ca) => tonic::transport::Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            )
            .unwrap(),
    };
    endpoint.connect().await.unwrap()
}

/// Creates a running job (its target does not matter here) and returns its id.
async fn create_running_job(channel: &tonic::transport::Channel, name: &str) -> String {
    use monitor_proto::v1::{CreateJobRequest, HttpCheck, Job, JobState, job::Check};
    let job = Job {
        name: name.into(),
        interval: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
        timeout: Some(pbjson_types::Duration { seconds: 1, nanos: 0 }),
        desired_state: JobState::Running as i32,
        check: Some(Check::Http(HttpCheck {
            url: "http://127.0.0.1:9/".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    monitor_proto::v1::job_service_client::JobServiceClient::new(channel.clone())
        .create_job(CreateJobRequest { job: Some(job) })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id
}

/// The control plane's worker list.
async fn list_workers(channel: &tonic::transport::Channel) -> Vec<monitor_proto::v1::Worker> {
    monitor_proto::v1::worker_service_client::WorkerServiceClient::new(channel.clone())
        .list_workers(monitor_proto::v1::ListWorkersRequest {})
        .await
        .map(|r| r.into_inner().workers)
        .unwrap_or_default()
}

/// Where the job runs ("" when nowhere).
async fn placed_on(channel: &tonic::transport::Channel, job_id: &str) -> String {
    let status = monitor_proto::v1::job_service_client::JobServiceClient::new(channel.clone())
        .get_job_status(monitor_proto::v1::GetJobStatusRequest { id: job_id.into() })
        .await
        .unwrap()
        .into_inner();
    status
        .status
        .and_then(|s| s.assigned_workers.into_iter().next())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_trusting_the_servers_ca_gets_its_assignment_over_tls() {
    let (_files, cert, key, ca) = certificate();
    let options = monitor_server::server::ServerOptions {
        tls: Some(monitor_server::tls::load(&cert, &key).unwrap()),
        ..Default::default()
    };
    let (server, _stop_server, _db) = start_control_plane_with(options).await;
    let channel = control_plane_channel(server, Some(&ca)).await;
    let job = create_running_job(&channel, "over-tls").await;
    let url = format!("https://{server}");
    let cert_arg = cert.to_str().unwrap();
    let probe = spawn_probe_with(&url, &shared_brokers(), "probe-tls", &["--server-ca-file", cert_arg]);
    wait_until("the probe to hold the job", Duration::from_secs(60), || async {
        let workers = list_workers(&channel).await;
        let placed = placed_on(&channel, &job).await;
        match workers.iter().find(|w| w.id == "probe-tls") {
            Some(w) if w.assigned_jobs == 1 && placed == "probe-tls" => Ok(()),
            _ => Err(format!("{workers:?}, placed on {placed:?}; log:\n{}", probe.log())),
        }
    })
    .await;
    assert!(
        probe.log().contains("connected to the control plane"),
        "{}",
        probe.log()
    );
    // The stream is up (the broker may or may not be there).
    let (_, body) = probe.readyz().await.unwrap();
    assert!(!body.contains("control-plane"), "{body}");
    // Killed, not drained: with no broker its results would wait 30 s.
    drop(probe);

    // Trusting another CA, the probe is refused and says what to fix.
    let (_other_files, other_cert, _, _) = certificate();
    let other = other_cert.to_str().unwrap();
    let mut wrong = spawn_probe_with(&url, &shared_brokers(), "probe-wrong-ca", &["--server-ca-file", other]);
    wrong.wait_ready(503, "control-plane stream down").await;
    wait_until(
        "the probe to name the untrusted certificate",
        Duration::from_secs(30),
        || async {
            let log = wrong.log();
            if log.contains("TLS certificate is not trusted") && log.contains("MONITOR_SERVER_CA_FILE") {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
    assert!(
        !list_workers(&channel).await.iter().any(|w| w.id == "probe-wrong-ca"),
        "never connected"
    );
    wrong.terminate().await;
}

#[tokio::test]
async fn a_bad_server_ca_file_stops_the_probe_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let garbage = garbage.to_str().unwrap();
    for (server, says) in [
        ("https://127.0.0.1:1", "no PEM CERTIFICATE"),
        ("http://127.0.0.1:1", "is not https://"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_monitor-worker"))
            .args(["probe", "--server", server, "--server-ca-file", garbage])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("MONITOR_SERVER_CA_FILE") && stderr.contains(says),
            "{stderr}"
        );
    }
}

/// A probe whose connection stops carrying packets without closing (the
/// proxy between it and the server frozen) is expired: listed LOST once
/// the keepalive ping goes unanswered, its job moved to another probe
/// after lease + heartbeat, and it pauses the job itself after its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_behind_a_frozen_connection_is_lost_and_its_job_moves() {
    let lease = Duration::from_secs(4);
    let options = monitor_server::server::ServerOptions {
        workers: monitor_server::fleet::RegistryConfig {
            lease,
            heartbeat_interval: lease / 4,
            reconcile_interval: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    };
    let (server, _stop_server, _db) = start_control_plane_with(options).await;
    let channel = control_plane_channel(server, None).await;
    let job = create_running_job(&channel, "behind-a-proxy").await;
    let proxy = Proxy::start(server).await;
    let frozen = spawn_probe_with(
        &format!("http://127.0.0.1:{}", proxy.port),
        &shared_brokers(),
        "probe-frozen",
        &[],
    );
    wait_until("the job on the proxied probe", Duration::from_secs(60), || async {
        match placed_on(&channel, &job).await.as_str() {
            "probe-frozen" => Ok(()),
            other => Err(format!("placed on {other:?}; log:\n{}", frozen.log())),
        }
    })
    .await;

    proxy.freeze();
    // Started after the freeze, so the job was the frozen probe's alone.
    let direct = spawn_probe(server, &shared_brokers(), "probe-direct");
    let state_of = |workers: &[monitor_proto::v1::Worker]| {
        workers
            .iter()
            .find(|w| w.id == "probe-frozen")
            .map(|w| monitor_proto::v1::WorkerState::try_from(w.state).unwrap())
    };
    wait_until("the frozen probe listed LOST", Duration::from_secs(60), || async {
        let workers = list_workers(&channel).await;
        match state_of(&workers) {
            Some(monitor_proto::v1::WorkerState::Lost) => Ok(()),
            state => Err(format!("{state:?}")),
        }
    })
    .await;
    wait_until("the job moved to the direct probe", Duration::from_secs(60), || async {
        match placed_on(&channel, &job).await.as_str() {
            "probe-direct" => Ok(()),
            other => Err(format!("placed on {other:?}; direct probe's log:\n{}", direct.log())),
        }
    })
    .await;
    let workers = list_workers(&channel).await;
    assert_ne!(
        state_of(&workers),
        Some(monitor_proto::v1::WorkerState::Connected),
        "{workers:?}"
    );
    wait_until("the frozen probe to pause its job", Duration::from_secs(60), || async {
        let log = frozen.log();
        if log.contains("lease expired without the control plane: pausing jobs") {
            Ok(())
        } else {
            Err(log)
        }
    })
    .await;
    direct.terminate().await;
}

// ---------------------------------------------------------------------------
// Consumer lag

/// Produces `count` results to `partition`, one record per batch: tansu
/// 0.6.0 reports a partition's high watermark as its last batch's base
/// offset + 1, too low after a multi-record batch (see DESIGN.md), so lag
/// is only right against tansu when every batch holds one record.
async fn produce_one_per_batch(topic: &str, partition: i32, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", shared_brokers())
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    let job = Uuid::now_v7().to_string();
    for _ in 0..count {
        let result = CheckResult {
            schema_version: 1,
            check_id: Uuid::now_v7().to_string(),
            job_id: job.clone(),
            start_time: Some(chrono::Utc::now().into()),
            duration: Some(pbjson_types::Duration {
                seconds: 0,
                nanos: 5_000_000,
            }),
            outcome: CheckOutcome::Ok as i32,
            ..Default::default()
        };
        let payload = result.encode_to_vec();
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(job.as_bytes())
            .payload(&payload);
        // One at a time: the next record is not even queued before the
        // broker has the previous one, so no batch holds two.
        producer.send(record, Duration::from_secs(30)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_counts_what_is_not_yet_rolled_up() {
    const PARTITIONS: i32 = 2;
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, PARTITIONS).await;
    let db = TestDb::new().await;
    let (mut proxy, url) = proxied(&db).await;

    // Some results wait before the aggregator starts, more arrive while it runs.
    for partition in 0..PARTITIONS {
        produce_one_per_batch(&topic, partition, 10).await;
    }
    let aggregator = spawn_aggregator(&url, &shared_brokers(), &topic);
    for partition in 0..PARTITIONS {
        produce_one_per_batch(&topic, partition, 10).await;
    }
    let caught_up = |total: f64| {
        let (aggregator, topic) = (&aggregator, &topic);
        move || async move {
            let scrape = aggregator.metrics().await?;
            let (lag, consumed) = (lag(&scrape, topic), consumed(&scrape));
            let zero: BTreeMap<i32, f64> = (0..PARTITIONS).map(|p| (p, 0.0)).collect();
            if lag == zero && consumed == total {
                Ok(())
            } else {
                Err(format!("lag {lag:?}, consumed {consumed}"))
            }
        }
    };
    wait_until(
        "lag 0 on every partition after 40 results",
        Duration::from_secs(90),
        caught_up(40.0),
    )
    .await;

    // Without the database nothing is flushed, so nothing is committed: the
    // new results are consumed but count as lag until the database is back.
    proxy.cut().await;
    for partition in 0..PARTITIONS {
        produce_one_per_batch(&topic, partition, 5).await;
    }
    wait_until(
        "lag 5 per partition while the database is away",
        Duration::from_secs(90),
        || async {
            let scrape = aggregator.metrics().await?;
            let lag = lag(&scrape, &topic);
            let five: BTreeMap<i32, f64> = (0..PARTITIONS).map(|p| (p, 5.0)).collect();
            if lag == five {
                Ok(())
            } else {
                Err(format!("lag {lag:?}"))
            }
        },
    )
    .await;
    proxy.restore().await;
    wait_until(
        "lag 0 again once the database is back",
        Duration::from_secs(90),
        caught_up(50.0),
    )
    .await;
    aggregator.terminate().await;
}
