//! Probe workers end to end: the real server (in-process, over a fresh
//! database), real `monitor-worker probe` processes, the real broker (tansu
//! or Kafka at KAFKA_BROKERS, a fresh topic per test) and the real mock.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    process::Stdio,
    sync::Arc,
    time::{Duration, Instant},
};

mod common;

use common::start_mock;
use monitor_proto::v1::{
    CheckOutcome, CheckResult, CreateJobRequest, GetJobStatusRequest, HttpCheck, Job, JobPhase, JobState,
    ListWorkersRequest, StopJobRequest, UpdateJobRequest, job::Check, job_service_client::JobServiceClient,
    worker_service_client::WorkerServiceClient,
};
use monitor_server::{
    fleet::{AssignmentKey, RegistryConfig, placement},
    server::ServerOptions,
};
use monitor_store::testing::TestDb;
use prost::Message as _;
use rdkafka::{
    ClientConfig, Message as _,
    consumer::{BaseConsumer, Consumer},
};
use tokio::{net::TcpListener, process::Child, sync::oneshot};
use tonic::transport::Channel;

const WORKER_TOKEN: &str = "worker-token-for-tests-0001";

fn brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

fn fresh_topic() -> String {
    format!("monitor.checks.test-{}", uuid::Uuid::now_v7().simple())
}

/// The control plane, in-process over a fresh database, with short leases.
struct Server {
    addr: SocketAddr,
    channel: Channel,
    _stop: oneshot::Sender<()>,
    /// Shared by replicas of the control plane.
    db: Arc<TestDb>,
}

async fn start_server(lease: Duration) -> Server {
    serve(
        Arc::new(TestDb::new().await),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        lease,
    )
    .await
}

/// The control plane over `db` on `listener`.
async fn serve(db: Arc<TestDb>, listener: TcpListener, lease: Duration) -> Server {
    let pool = db.pool();
    let addr = listener.local_addr().unwrap();
    let tokens = monitor_server::auth::Tokens::default()
        .with_worker_tokens("test", &format!("worker-*:{WORKER_TOKEN}"))
        .unwrap();
    let options = ServerOptions {
        tokens,
        workers: RegistryConfig {
            lease,
            heartbeat_interval: lease / 4,
            reconcile_interval: Duration::from_millis(200),
            ..RegistryConfig::default()
        },
        ..ServerOptions::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(monitor_server::server::run(listener, pool, options, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Server {
        addr,
        channel,
        _stop: stop,
        db,
    }
}

impl Server {
    fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel.clone())
    }

    async fn create_running(&self, name: &str, url: String) -> String {
        self.create_running_every(name, url, 1).await
    }

    async fn create_running_every(&self, name: &str, url: String, interval_secs: i64) -> String {
        let job = Job {
            name: name.into(),
            interval: Some(pbjson_types::Duration {
                seconds: interval_secs,
                nanos: 0,
            }),
            timeout: Some(pbjson_types::Duration { seconds: 1, nanos: 0 }),
            desired_state: JobState::Running as i32,
            check: Some(Check::Http(HttpCheck {
                url,
                ..Default::default()
            })),
            ..Default::default()
        };
        self.jobs()
            .create_job(CreateJobRequest { job: Some(job) })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap()
            .id
    }

    async fn workers(&self) -> Vec<monitor_proto::v1::Worker> {
        WorkerServiceClient::new(self.channel.clone())
            .list_workers(ListWorkersRequest {})
            .await
            .unwrap()
            .into_inner()
            .workers
    }

    /// Waits until every worker holds exactly the jobs rendezvous hashing
    /// gives it among `workers` (all of equal capacity), and returns the
    /// worker of each job and the count per worker. Job ids are random, so a
    /// fixed split would be a coin toss.
    async fn wait_placed(
        &self,
        job_ids: &[String],
        workers: &[&str],
    ) -> (HashMap<String, String>, HashMap<String, i64>) {
        let mut counts: HashMap<String, i64> = workers.iter().map(|w| ((*w).to_owned(), 0)).collect();
        let mut placed = HashMap::new();
        for id in job_ids {
            let key = AssignmentKey {
                job_id: id.parse().unwrap(),
                location: String::new(),
            };
            let winner = placement::choose(&key.hash_key(), workers.iter().map(|w| (*w, 100))).unwrap();
            *counts.get_mut(winner).unwrap() += 1;
            placed.insert(id.clone(), winner.to_owned());
        }
        self.wait_workers(&format!("the placement {counts:?}"), |w| {
            w.len() == workers.len() && w.iter().all(|w| counts.get(&w.id) == Some(&w.assigned_jobs))
        })
        .await;
        (placed, counts)
    }

    /// Waits until `ready` holds for the worker list.
    async fn wait_workers(&self, what: &str, ready: impl Fn(&[monitor_proto::v1::Worker]) -> bool) {
        self.wait_workers_for(what, Duration::from_secs(20), ready).await;
    }

    async fn wait_workers_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&[monitor_proto::v1::Worker]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        loop {
            let workers = self.workers().await;
            if ready(&workers) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {workers:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A `monitor-worker probe` process.
struct WorkerProcess {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn_worker(server: SocketAddr, topic: &str, id: &str, token: &str) -> WorkerProcess {
    spawn_worker_with(server, topic, id, token, &[])
}

/// A worker whose checks may reach the mock: it listens on 127.0.0.1,
/// blocked unless opened.
fn spawn_worker_with(server: SocketAddr, topic: &str, id: &str, token: &str, extra: &[&str]) -> WorkerProcess {
    let mut flags = vec!["--allow-net", "127.0.0.0/8"];
    flags.extend_from_slice(extra);
    spawn_probe(server, topic, id, token, &flags)
}

/// A worker with the default blocklist and `flags`.
fn spawn_probe(server: SocketAddr, topic: &str, id: &str, token: &str, flags: &[&str]) -> WorkerProcess {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(format!("{id}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_monitor-worker"))
        .args([
            "probe",
            "--server",
            &format!("http://{server}"),
            "--worker-id",
            id,
            "--token",
            token,
        ])
        .args([
            "--kafka-brokers",
            &brokers(),
            "--kafka-topic",
            topic,
            "--topic-partitions",
            "3",
        ])
        .args(flags)
        .env("RUST_LOG", "info,monitor_worker=debug")
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    WorkerProcess { child, log, _dir: dir }
}

impl WorkerProcess {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    async fn terminate(mut self) -> String {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "worker exited with {status}: {}", self.log());
        self.log()
    }

    async fn kill_9(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Every result on `topic`, read by an independent consumer until `expected`
/// arrived or nothing new came for `idle`.
fn consume(topic: &str, expected: Option<usize>, idle: Duration) -> Vec<CheckResult> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("test-reader-{}", uuid::Uuid::now_v7().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut results = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < idle && expected.is_none_or(|n| results.len() < n) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let result = CheckResult::decode(message.payload().unwrap()).unwrap();
                assert_eq!(message.key().unwrap(), result.job_id.as_bytes(), "key is the job id");
                results.push(result);
                last = Instant::now();
            }
            Some(Err(err)) => panic!("consumer error: {err}"),
            None => {}
        }
    }
    results
}

fn millis(ts: &Option<monitor_proto::wkt::Timestamp>) -> i64 {
    let ts = ts.as_ref().unwrap();
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

/// A job's results in schedule order, as (worker, epoch) per stretch on one
/// worker.
fn worker_runs<'a>(results: &[&'a CheckResult]) -> Vec<(&'a str, u64)> {
    let mut ordered = results.to_vec();
    ordered.sort_by_key(|r| millis(&r.scheduled_time));
    let mut runs: Vec<(&str, u64)> = Vec::new();
    for r in ordered {
        if runs.last().map(|(w, _)| *w) != Some(r.worker_id.as_str()) {
            runs.push((r.worker_id.as_str(), r.epoch));
        }
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_jobs_and_every_check_reaches_the_topic() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let topic = fresh_topic();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            server
                .create_running(&format!("site-{i}"), format!("http://{}/website_mock", mock.addr))
                .await,
        );
    }
    let a = spawn_worker(server.addr, &topic, "worker-a", WORKER_TOKEN);
    let b = spawn_worker(server.addr, &topic, "worker-b", WORKER_TOKEN);
    let (placed, _) = server.wait_placed(&ids, &["worker-a", "worker-b"]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Status shows the placement and the reported outcome.
    let status = server
        .jobs()
        .get_job_status(GetJobStatusRequest { id: ids[0].clone() })
        .await
        .unwrap()
        .into_inner();
    let status = status.status.unwrap();
    assert_eq!(status.phase, JobPhase::Active as i32, "{status:?}");
    assert_eq!(status.assigned_workers.len(), 1);
    assert!(status.checks >= 1, "{status:?}");
    assert!(status.last_check_time.is_some());

    // Stop every job, then let the workers drain and flush.
    for id in &ids {
        server.jobs().stop_job(StopJobRequest { id: id.clone() }).await.unwrap();
    }
    server
        .wait_workers("all jobs released", |w| w.iter().all(|w| w.assigned_jobs == 0))
        .await;
    let stopped_at = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.terminate().await;
    b.terminate().await;

    let stats = mock.stats().await;
    let served = stats.by_route.get("website_mock").map(|r| r.total).unwrap_or(0);
    let results = consume(&topic, Some(served as usize), Duration::from_secs(10));
    assert!(served >= 20 * 3, "at least three rounds ran: {served}");
    assert_eq!(results.len() as u64, served, "one result per request the mock served");

    let mut per_job: HashMap<&str, Vec<&CheckResult>> = HashMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for result in &results {
        assert_eq!(result.schema_version, monitor_proto::SCHEMA_VERSION);
        assert!(ids.contains(&result.job_id), "unknown job {}", result.job_id);
        assert!(["worker-a", "worker-b"].contains(&result.worker_id.as_str()));
        assert!(result.epoch >= 1);
        assert!(uuid::Uuid::parse_str(&result.check_id).is_ok());
        assert!(
            millis(&result.start_time) >= millis(&result.scheduled_time) - 5,
            "starts at or after its slot"
        );
        assert!(
            millis(&result.scheduled_time) <= stopped_at + 1000,
            "no check scheduled after the stop took effect"
        );
        let Some(monitor_proto::v1::check_result::Detail::Http(http)) = &result.detail else {
            panic!("http detail")
        };
        *by_status.entry(http.status_code.to_string()).or_default() += 1;
        let expected = if (200..400).contains(&http.status_code) {
            CheckOutcome::Ok
        } else {
            CheckOutcome::AssertionFailed
        };
        assert_eq!(result.outcome, expected as i32, "{result:?}");
        per_job.entry(&result.job_id).or_default().push(result);
    }
    assert_eq!(by_status, stats.by_status, "status counts equal what the mock served");

    // The aggregator rolls the same results up: its status counters equal
    // what the mock served, per status code.
    let (stop_aggregator, aggregator_stopped) = tokio::sync::watch::channel(false);
    let group = format!("e2e-{}", uuid::Uuid::now_v7().simple());
    let dlq = format!("{topic}.dlq");
    let args = monitor_worker::aggregate::AggregateArgs::from_flags([
        "aggregate",
        "--database-url",
        &server.db.url,
        "--kafka-brokers",
        &brokers(),
        "--kafka-topic",
        &topic,
        "--group-id",
        &group,
        "--dlq-topic",
        &dlq,
        "--flush-interval-ms",
        "200",
        "--granularities",
        "1h",
    ])
    .unwrap();
    let aggregator = monitor_worker::aggregate::Aggregator::new(args, server.db.pool()).unwrap();
    let aggregated = tokio::spawn(aggregator.run(aggregator_stopped));
    let deadline = Instant::now() + Duration::from_secs(60);
    let rolled_up = loop {
        use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
        use monitor_store::diesel_async::RunQueryDsl;
        let pool = server.db.pool();
        let mut conn = pool.get().await.unwrap();
        let rows: Vec<monitor_store::models::job_metrics::MetricRow> = monitor_store::schema::job_metrics::table
            .filter(monitor_store::schema::job_metrics::location.eq(""))
            .select(monitor_store::models::job_metrics::MetricRow::as_select())
            .load(&mut conn)
            .await
            .unwrap();
        let mut merged = monitor_store::rollup::Rollup::default();
        for row in &rows {
            merged.merge(&row.rollup());
        }
        if merged.checks as u64 >= served || Instant::now() > deadline {
            break merged;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop_aggregator.send(true).unwrap();
    aggregated.await.unwrap().unwrap();
    assert_eq!(
        rolled_up.checks as u64, served,
        "every served request is rolled up once"
    );
    let rolled_status: BTreeMap<String, u64> = rolled_up.status.iter().map(|(k, v)| (k.clone(), *v as u64)).collect();
    assert_eq!(
        rolled_status, stats.by_status,
        "rollup status counters equal the mock's /__stats"
    );
    for (job, results) in &per_job {
        let slots: HashSet<i64> = results.iter().map(|r| millis(&r.scheduled_time)).collect();
        assert_eq!(slots.len(), results.len(), "job {job} ran twice in one slot");
        // The first worker to connect may run everything until the second
        // one's hello: a job moves at most once, to the worker hashing picks.
        let runs = worker_runs(results);
        assert!(runs.len() <= 2, "job {job} moved more than once: {runs:?}");
        assert_eq!(runs.last().unwrap().0, placed[*job], "job {job} ends on its placement");
        assert!(
            runs.windows(2).all(|w| w[0].1 < w[1].1),
            "a move bumps the epoch: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_jobs_move_after_its_lease_and_never_overlap() {
    let mock = start_mock().await;
    let lease = Duration::from_secs(3);
    let server = start_server(lease).await;
    let topic = fresh_topic();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            server
                .create_running(&format!("job-{i}"), format!("http://{}/website_mock", mock.addr))
                .await,
        );
    }
    let a = spawn_worker(server.addr, &topic, "worker-a", WORKER_TOKEN);
    let b = spawn_worker(server.addr, &topic, "worker-b", WORKER_TOKEN);
    let (_, placed) = server.wait_placed(&ids, &["worker-a", "worker-b"]).await;
    // Kill the one holding more, so jobs really move (hashing may give one all 10).
    let ((victim, _), (survivor, survivor_id)) = if placed["worker-a"] >= placed["worker-b"] {
        ((a, "worker-a"), (b, "worker-b"))
    } else {
        ((b, "worker-b"), (a, "worker-a"))
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    victim.kill_9().await;
    let killed_at = Instant::now();
    server
        .wait_workers(&format!("{survivor_id} holding all 10 jobs"), |w| {
            w.len() == 1 && w[0].id == survivor_id && w[0].assigned_jobs == 10
        })
        .await;
    let moved_after = killed_at.elapsed();
    // The server waits lease + one heartbeat (3 s + 0.75 s) of silence.
    assert!(moved_after >= lease, "moved too early: {moved_after:?}");
    assert!(
        moved_after <= lease + Duration::from_secs(3),
        "moved too late: {moved_after:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    survivor.terminate().await;

    let results = consume(&topic, None, Duration::from_secs(5));
    let mut per_job: HashMap<&str, Vec<&CheckResult>> = HashMap::new();
    for result in &results {
        per_job.entry(&result.job_id).or_default().push(result);
    }
    assert_eq!(per_job.len(), 10);
    for (job, mut results) in per_job {
        results.sort_by_key(|r| millis(&r.scheduled_time));
        let slots: HashSet<i64> = results.iter().map(|r| millis(&r.scheduled_time)).collect();
        assert_eq!(slots.len(), results.len(), "job {job} ran twice in one slot");
        // At most: the first worker to connect, its placement, and after
        // the kill the survivor; every move bumps the epoch.
        let runs = worker_runs(&results);
        assert!(runs.len() <= 3, "job {job} moved too often: {runs:?}");
        assert_eq!(runs.last().unwrap().0, survivor_id, "job {job} ends on the survivor");
        assert!(
            runs.windows(2).all(|w| w[0].1 < w[1].1),
            "a move bumps the epoch: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_update_reach_the_worker_within_a_second() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let topic = fresh_topic();
    let stopped = server
        .create_running("to-stop", format!("http://{}/status/200", mock.addr))
        .await;
    let updated = server
        .create_running("to-update", format!("http://{}/status/201", mock.addr))
        .await;
    let worker = spawn_worker(server.addr, &topic, "worker-u", WORKER_TOKEN);
    server
        .wait_workers("the worker with both jobs", |w| w.len() == 1 && w[0].assigned_jobs == 2)
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    server
        .jobs()
        .stop_job(StopJobRequest { id: stopped.clone() })
        .await
        .unwrap();
    let stop_effective = chrono::Utc::now().timestamp_millis() + 1000;
    let current = server
        .jobs()
        .get_job(monitor_proto::v1::GetJobRequest { id: updated.clone() })
        .await
        .unwrap();
    let mut change = current.into_inner().job.unwrap();
    change.check = Some(Check::Http(HttpCheck {
        url: format!("http://{}/status/204", mock.addr),
        ..Default::default()
    }));
    server
        .jobs()
        .update_job(UpdateJobRequest {
            job: Some(change),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["http".into()],
            }),
        })
        .await
        .unwrap();
    let update_effective = chrono::Utc::now().timestamp_millis() + 1000;
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.terminate().await;

    let results = consume(&topic, None, Duration::from_secs(5));
    let after_stop = results
        .iter()
        .filter(|r| r.job_id == stopped && millis(&r.start_time) > stop_effective)
        .count();
    assert_eq!(after_stop, 0, "the stopped job ran after the stop took effect");
    let status_of = |r: &CheckResult| match &r.detail {
        Some(monitor_proto::v1::check_result::Detail::Http(h)) => h.status_code,
        _ => 0,
    };
    let late: Vec<u32> = results
        .iter()
        .filter(|r| r.job_id == updated && millis(&r.start_time) > update_effective)
        .map(status_of)
        .collect();
    assert!(!late.is_empty(), "the updated job kept running");
    assert!(
        late.iter().all(|s| *s == 204),
        "runs after the update use the new URL: {late:?}"
    );
    assert!(
        results.iter().any(|r| r.job_id == updated && status_of(r) == 201),
        "it ran the old spec before"
    );
    let stats = mock.stats().await;
    assert!(stats.by_status.get("204").copied().unwrap_or(0) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_without_a_retry_storm() {
    let server = start_server(Duration::from_secs(4)).await;
    let worker = spawn_worker(server.addr, &fresh_topic(), "worker-bad", "not-the-worker-token-000");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server.workers().await.is_empty(), "a refused worker is not registered");
    let log = worker.terminate().await;
    assert!(log.contains("refused this worker's token"), "clear error: {log}");
    let attempts = log.matches("refused this worker's token").count();
    assert!(attempts <= 3, "{attempts} attempts in 4 s is a retry storm: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_the_server_connects_when_it_comes_up() {
    // Reserve a port, start the worker against it, then start the server there.
    let probe_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe_listener.local_addr().unwrap();
    drop(probe_listener);
    let worker = spawn_worker(addr, &fresh_topic(), "worker-early", WORKER_TOKEN);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(worker.log().contains("control plane unreachable"), "{}", worker.log());

    let db = TestDb::new().await;
    let pool = db.pool();
    let listener = TcpListener::bind(addr).await.unwrap();
    let tokens = monitor_server::auth::Tokens::default()
        .with_worker_tokens("test", &format!("worker-*:{WORKER_TOKEN}"))
        .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(monitor_server::server::run(
        listener,
        pool,
        ServerOptions {
            tokens,
            ..Default::default()
        },
        async {
            let _ = stopped.await;
        },
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let server = Server {
        addr,
        channel,
        _stop: stop,
        db: Arc::new(db),
    };
    server.wait_workers("the early worker", |w| w.len() == 1).await;
    let log = worker.terminate().await;
    assert!(log.contains("reconnecting after backoff"), "{log}");
    assert!(log.contains("connected to the control plane"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_learns_the_last_outcomes_at_once() {
    let mock = start_mock().await;
    let lease = Duration::from_secs(8);
    let server = start_server(lease).await;
    // Checks 15 s apart: after a restart, waiting for the next check would
    // leave the job's outcome unknown for up to 15 s.
    let id = server
        .create_running_every("every-15s", format!("http://{}/status/200", mock.addr), 15)
        .await;
    let worker = spawn_worker(server.addr, &fresh_topic(), "worker-r", WORKER_TOKEN);
    let last_check = |server: &Server| {
        let mut jobs = server.jobs();
        let id = id.clone();
        async move {
            let status = jobs
                .get_job_status(GetJobStatusRequest { id })
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap();
            status
                .last_check_time
                .map(|t| (t.seconds, t.nanos, status.last_outcome))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(25);
    let before = loop {
        if let Some(seen) = last_check(&server).await {
            break seen;
        }
        assert!(Instant::now() < deadline, "no check reported within 25 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(before.2, CheckOutcome::Ok as i32);

    // Restart the control plane on the same address and database.
    let Server { addr, _stop, db, .. } = server;
    drop(_stop);
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => break listener,
            Err(err) => {
                assert!(Instant::now() < deadline, "cannot listen on {addr} again: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let server = serve(db, listener, lease).await;
    let restarted = Instant::now();
    let after = loop {
        if let Some(seen) = last_check(&server).await {
            break seen;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(8),
            "the restarted server still knows no outcome after 8 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after, before, "the outcome known before the restart, re-reported");
    worker.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_server_process_waits_out_the_previous_ones_lease() {
    let mock = start_mock().await;
    // Long enough that worker-1 is still running the job when worker-2
    // reaches the new server.
    let lease = Duration::from_secs(8);
    let first = start_server(lease).await;
    let topic = fresh_topic();
    first
        .create_running("restarted", format!("http://{}/website_mock", mock.addr))
        .await;
    let one = spawn_worker(first.addr, &topic, "worker-1", WORKER_TOKEN);
    first
        .wait_workers("worker-1 with the job", |w| w.len() == 1 && w[0].assigned_jobs == 1)
        .await;

    // The first server stops and another starts on the same database at
    // another address. worker-1 knows only the first's address, so it runs
    // the job until its lease runs out; worker-2 reaches the new server at
    // once, and the job must not reach it before worker-1 has paused.
    let Server { _stop, db, .. } = first;
    drop(_stop);
    let second = serve(db, TcpListener::bind("127.0.0.1:0").await.unwrap(), lease).await;
    let two = spawn_worker(second.addr, &topic, "worker-2", WORKER_TOKEN);
    second
        .wait_workers_for("worker-2 with the job", Duration::from_secs(40), |w| {
            w.len() == 1 && w[0].id == "worker-2" && w[0].assigned_jobs == 1
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    one.terminate().await;
    two.terminate().await;

    let results = consume(&topic, None, Duration::from_secs(5));
    let starts = |worker: &str| -> Vec<i64> {
        results
            .iter()
            .filter(|r| r.worker_id == worker)
            .map(|r| millis(&r.start_time))
            .collect()
    };
    let (by_one, by_two) = (starts("worker-1"), starts("worker-2"));
    assert!(
        !by_one.is_empty() && !by_two.is_empty(),
        "both ran the job: {} and {}",
        by_one.len(),
        by_two.len()
    );
    let (last_one, first_two) = (*by_one.iter().max().unwrap(), *by_two.iter().min().unwrap());
    assert!(
        last_one < first_two,
        "worker-1 ran the job until {last_one}, worker-2 from {first_two}: they overlapped"
    );
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sample(scrape: &prometheus_parse::Scrape, name: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn scrape(url: &str) -> prometheus_parse::Scrape {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|err| panic!("not valid exposition ({err}):\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_metrics_move_and_readiness_follows_the_control_plane() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let topic = fresh_topic();
    server
        .create_running("metered", format!("http://{}/website_mock", mock.addr))
        .await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let worker = spawn_worker_with(
        server.addr,
        &topic,
        "worker-m",
        WORKER_TOKEN,
        &["--metrics-listen", &listen],
    );
    server
        .wait_workers("the metered worker with its job", |w| {
            w.len() == 1 && w[0].assigned_jobs == 1
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let base = format!("http://{listen}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status(), 200);
    let metrics = scrape(&format!("{base}/metrics")).await;
    let checks = sample(&metrics, "monitor_probe_checks_total");
    assert!(checks >= 2.0, "checks counted: {checks}");
    assert!(sample(&metrics, "monitor_probe_kafka_delivered_total") >= 1.0);
    assert_eq!(sample(&metrics, "monitor_probe_assignments"), 1.0);
    assert!(
        metrics
            .samples
            .iter()
            .any(|s| s.metric.starts_with("monitor_probe_schedule_lateness_seconds"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = sample(&scrape(&format!("{base}/metrics")).await, "monitor_probe_checks_total");
    assert!(later > checks, "the counter moves: {checks} -> {later}");

    // Without the control plane the worker is no longer ready.
    drop(server);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if reqwest::get(format!("{base}/readyz")).await.unwrap().status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    worker.terminate().await;
}

/// Without `--allow-net` a worker refuses the mock on 127.0.0.1: the job's
/// outcome is BLOCKED and the mock never sees a request. Needs no broker:
/// outcomes reach the control plane over the worker's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_allow_net_reports_a_job_on_loopback_blocked() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let id = server
        .create_running("loopback", format!("http://{}/status/200", mock.addr))
        .await;
    let worker = spawn_probe(server.addr, &fresh_topic(), "worker-default", WORKER_TOKEN, &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = loop {
        let status = server
            .jobs()
            .get_job_status(GetJobStatusRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        if status.last_check_time.is_some() {
            break status.last_outcome;
        }
        assert!(
            Instant::now() < deadline,
            "no check reported within 20 s: {}",
            worker.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(outcome, CheckOutcome::Blocked as i32);
    assert_eq!(mock.stats().await.total, 0, "no request reached the mock");
    // Killed, not drained: without a broker the drain waits for the flush.
    worker.kill_9().await;
}
