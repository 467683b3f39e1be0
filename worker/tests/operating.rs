//! Operating the workers: `/readyz` follows the broker and the database, and
//! the aggregator's consumer-lag gauges follow what is not yet rolled up.
//!
//! Real processes throughout: `monitor-worker` binaries, a private Apache
//! Kafka broker per broker-outage test (started here, killed -9 and started
//! again on the same port and data; the shared broker at KAFKA_BROKERS is
//! never stopped), the real PostgreSQL behind a small TCP proxy the tests cut
//! and restore (PostgreSQL itself keeps running), and the in-process control
//! plane for the probe, over TLS or behind the same proxy frozen (bytes stop,
//! sockets stay open) to see a silent connection expire.
//! Every wait polls with a generous deadline; nothing asserts on timing.

mod common;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use common::{spawn_aggregator, spawn_probe, spawn_probe_with};
use monitor_proto::v1::{CheckOutcome, CheckResult};
use monitor_store::testing::TestDb;
use monitor_testkit::{
    fresh,
    jobs::running_http_job,
    kafka::{KafkaCluster, KafkaOptions, create_topic, producer, shared_brokers},
    metrics::value,
    server::{TestCertificate, TestServer},
    wait_until,
};
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    process::Command,
    sync::watch,
    task::JoinHandle,
};
use uuid::Uuid;

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
        let what = format!("port {} to be free again", self.port);
        let listener = wait_until(&what, Duration::from_secs(30), || async {
            TcpListener::bind(("127.0.0.1", self.port))
                .await
                .map_err(|err| err.to_string())
        })
        .await;
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

/// The broker killed -9 and started again on its data: the aggregator says
/// so on /readyz and goes on fetching from the same topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_readiness_follows_the_broker() {
    let mut broker = KafkaCluster::single().await;
    let topic = fresh("checks");
    create_topic(&broker.bootstrap(), &topic, 1, 1).await;
    let db = TestDb::new().await;
    let mut aggregator = spawn_aggregator(&db.url, &broker.bootstrap(), &topic);
    aggregator.wait_ready(200, "ready").await;

    broker.kill(1).await;
    aggregator.wait_ready(503, "not ready: broker unreachable").await;
    let (_, body) = aggregator.readyz().await.unwrap();
    assert!(!body.contains("database"), "only the broker is failing: {body}");

    broker.restart(1).await;
    aggregator.wait_ready(200, "ready").await;
    aggregator.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_readiness_follows_the_database() {
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, 1, 1).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_readiness_follows_the_broker_and_the_control_plane() {
    let mut broker = KafkaCluster::single().await;
    let server = TestServer::start().await;
    let mut probe = spawn_probe(server.addr, &broker.bootstrap(), "probe-readiness");
    probe.wait_ready(200, "ready").await;

    broker.kill(1).await;
    probe.wait_ready(503, "not ready: broker unreachable").await;
    let (_, body) = probe.readyz().await.unwrap();
    assert!(!body.contains("control-plane"), "the stream is still up: {body}");
    broker.restart(1).await;
    probe.wait_ready(200, "ready").await;

    // Both dependencies are named when both fail.
    broker.kill(1).await;
    let _db = server.stop();
    probe
        .wait_ready(503, "not ready: control-plane stream down, broker unreachable")
        .await;
    probe.terminate().await;
}

#[tokio::test]
async fn a_probe_started_before_its_broker_waits_for_it_quietly() {
    let mut broker = KafkaCluster::reserve(KafkaOptions::default());
    let server = TestServer::start().await;
    let mut probe = spawn_probe(server.addr, &broker.bootstrap(), "probe-before-broker");
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

    broker.restart(1).await;
    probe.wait_ready(200, "ready").await;
    probe.terminate().await;
}

// ---------------------------------------------------------------------------
// The control-plane connection: TLS, and silent connections

/// Creates a running job (its target does not matter here) and returns its id.
async fn create_running_job(server: &TestServer, name: &str) -> String {
    server.create(running_http_job(name, "http://127.0.0.1:9/", 5)).await.id
}

/// The control plane's worker list (empty while it does not answer).
async fn list_workers(server: &TestServer) -> Vec<monitor_proto::v1::Worker> {
    server.workers().await.unwrap_or_default()
}

/// Where the job runs ("" when nowhere).
async fn placed_on(server: &TestServer, job_id: &str) -> String {
    let status = server
        .jobs
        .clone()
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
    let certificate = TestCertificate::new();
    let server = TestServer::builder().tls(&certificate).start().await;
    let job = create_running_job(&server, "over-tls").await;
    let url = server.url("");
    let cert = certificate.cert_path();
    let cert_arg = cert.to_str().unwrap();
    let probe = spawn_probe_with(&url, &shared_brokers(), "probe-tls", &["--server-ca-file", cert_arg]);
    wait_until("the probe to hold the job", Duration::from_secs(60), || async {
        let workers = list_workers(&server).await;
        let placed = placed_on(&server, &job).await;
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
    let other_certificate = TestCertificate::new();
    let other_cert = other_certificate.cert_path();
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
        !list_workers(&server).await.iter().any(|w| w.id == "probe-wrong-ca"),
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
        let out = Command::new(common::binary())
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
    let server = TestServer::builder().lease(Duration::from_secs(4)).start().await;
    let job = create_running_job(&server, "behind-a-proxy").await;
    let proxy = Proxy::start(server.addr).await;
    let frozen = spawn_probe_with(
        &format!("http://127.0.0.1:{}", proxy.port),
        &shared_brokers(),
        "probe-frozen",
        &[],
    );
    wait_until("the job on the proxied probe", Duration::from_secs(60), || async {
        match placed_on(&server, &job).await.as_str() {
            "probe-frozen" => Ok(()),
            other => Err(format!("placed on {other:?}; log:\n{}", frozen.log())),
        }
    })
    .await;

    proxy.freeze();
    // Started after the freeze, so the job was the frozen probe's alone.
    let direct = spawn_probe(server.addr, &shared_brokers(), "probe-direct");
    let state_of = |workers: &[monitor_proto::v1::Worker]| {
        workers
            .iter()
            .find(|w| w.id == "probe-frozen")
            .map(|w| monitor_proto::v1::WorkerState::try_from(w.state).unwrap())
    };
    wait_until("the frozen probe listed LOST", Duration::from_secs(60), || async {
        let workers = list_workers(&server).await;
        match state_of(&workers) {
            Some(monitor_proto::v1::WorkerState::Lost) => Ok(()),
            state => Err(format!("{state:?}")),
        }
    })
    .await;
    wait_until("the job moved to the direct probe", Duration::from_secs(60), || async {
        match placed_on(&server, &job).await.as_str() {
            "probe-direct" => Ok(()),
            other => Err(format!("placed on {other:?}; direct probe's log:\n{}", direct.log())),
        }
    })
    .await;
    let workers = list_workers(&server).await;
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

/// Produces `count` results to `partition` as a probe does (batched, lz4),
/// and waits until the broker has them all.
async fn produce(topic: &str, partition: i32, count: usize) {
    let producer = producer(&shared_brokers());
    let job = Uuid::now_v7().to_string();
    let mut pending = Vec::new();
    for _ in 0..count {
        let result = CheckResult {
            schema_version: monitor_proto::SCHEMA_VERSION,
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
        pending.push(producer.send_result(record).map_err(|(err, _)| err).unwrap());
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_counts_what_is_not_yet_rolled_up() {
    const PARTITIONS: i32 = 2;
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, PARTITIONS, 1).await;
    let db = TestDb::new().await;
    let (mut proxy, url) = proxied(&db).await;

    // Some results wait before the aggregator starts, more arrive while it runs.
    for partition in 0..PARTITIONS {
        produce(&topic, partition, 10).await;
    }
    let aggregator = spawn_aggregator(&url, &shared_brokers(), &topic);
    for partition in 0..PARTITIONS {
        produce(&topic, partition, 10).await;
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
        produce(&topic, partition, 5).await;
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
