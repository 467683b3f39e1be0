//! Probe workers end to end: the real server (in-process, over a fresh
//! database), real `monitor-worker probe` processes, the real broker (Apache
//! Kafka at KAFKA_BROKERS, a fresh topic per test) and the real mock.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::SocketAddr,
    time::{Duration, Instant},
};

mod common;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, GetJobStatusRequest, HttpCheck, JobPhase, StopJobRequest, UpdateJobRequest, job::Check,
};
use monitor_server::fleet::{AssignmentKey, placement};
use monitor_testkit::{
    free_port, fresh,
    jobs::running_http_job,
    kafka::{reader, shared_brokers},
    metrics,
    mock::MockServer,
    server::{TestServer, TestServerBuilder},
    wait_until,
    worker::WorkerProcess,
};
use prost::Message as _;
use rdkafka::{Message as _, consumer::Consumer};
use tokio::net::TcpListener;

const WORKER_TOKEN: &str = "worker-token-for-tests-0001";

/// The mock these tests check: seeded, answering at once.
async fn start_mock() -> MockServer {
    MockServer::start(&["--seed", "7", "--latency-ms", "0"]).await
}

/// The control plane with worker tokens for `worker-*` and a short
/// `lease`, over a fresh database unless given one.
fn control_plane(lease: Duration) -> TestServerBuilder {
    TestServer::builder()
        .worker_tokens(&format!("worker-*:{WORKER_TOKEN}"))
        .lease(lease)
}

async fn start_server(lease: Duration) -> TestServer {
    control_plane(lease).start().await
}

/// Creates a job checking `url` every second and returns its id.
async fn create_running(server: &TestServer, name: &str, url: String) -> String {
    create_running_every(server, name, url, 1).await
}

async fn create_running_every(server: &TestServer, name: &str, url: String, interval_secs: i64) -> String {
    server.create(running_http_job(name, &url, interval_secs)).await.id
}

async fn workers(server: &TestServer) -> Vec<monitor_proto::v1::Worker> {
    server.workers().await.unwrap()
}

/// Waits until every worker holds exactly the jobs rendezvous hashing
/// gives it among `workers` (all of equal capacity), and returns the
/// worker of each job and the count per worker. Job ids are random, so a
/// fixed split would be a coin toss.
async fn wait_placed(
    server: &TestServer,
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
    wait_workers(server, &format!("the placement {counts:?}"), |w| {
        w.len() == workers.len() && w.iter().all(|w| counts.get(&w.id) == Some(&w.assigned_jobs))
    })
    .await;
    (placed, counts)
}

/// Waits until `ready` holds for the worker list.
async fn wait_workers(server: &TestServer, what: &str, ready: impl Fn(&[monitor_proto::v1::Worker]) -> bool) {
    wait_workers_for(server, what, Duration::from_secs(20), ready).await;
}

async fn wait_workers_for(
    server: &TestServer,
    what: &str,
    limit: Duration,
    ready: impl Fn(&[monitor_proto::v1::Worker]) -> bool,
) {
    wait_until(what, limit, || async {
        let workers = workers(server).await;
        match ready(&workers) {
            true => Ok(()),
            false => Err(format!("{workers:#?}")),
        }
    })
    .await;
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

/// A worker with the default blocklist and `flags`, logging its own
/// decisions too.
fn spawn_probe(server: SocketAddr, topic: &str, id: &str, token: &str, flags: &[&str]) -> WorkerProcess {
    let (server, brokers) = (format!("http://{server}"), shared_brokers());
    let args = [
        &[
            "--server",
            &server,
            "--worker-id",
            id,
            "--token",
            token,
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            topic,
            "--topic-partitions",
            "3",
        ][..],
        flags,
    ]
    .concat();
    common::spawn_worker_env("probe", &args, &[("RUST_LOG", "info,monitor_worker=debug")])
}

/// Every result on `topic`, read by an independent consumer until `expected`
/// arrived or nothing new came for `idle`.
fn consume(topic: &str, expected: Option<usize>, idle: Duration) -> Vec<CheckResult> {
    let consumer = reader(&shared_brokers());
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
    let topic = fresh("checks");
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            create_running(
                &server,
                &format!("site-{i}"),
                format!("http://{}/website_mock", mock.address),
            )
            .await,
        );
    }
    let a = spawn_worker(server.addr, &topic, "worker-a", WORKER_TOKEN);
    let b = spawn_worker(server.addr, &topic, "worker-b", WORKER_TOKEN);
    let (placed, _) = wait_placed(&server, &ids, &["worker-a", "worker-b"]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Status shows the placement and the reported outcome.
    let status = server
        .jobs
        .clone()
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
    server.stop_jobs(&ids).await;
    wait_workers(&server, "all jobs released", |w| w.iter().all(|w| w.assigned_jobs == 0)).await;
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
    let group = fresh("e2e");
    let dlq = format!("{topic}.dlq");
    let args = monitor_worker::aggregate::AggregateArgs::from_flags([
        "aggregate",
        "--database-url",
        &server.db.url,
        "--kafka-brokers",
        &shared_brokers(),
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
    let rolled_up = wait_until("every served request rolled up", Duration::from_secs(60), || async {
        let mut merged = monitor_store::rollup::Rollup::default();
        for row in common::stored_rows(&server.db).await {
            if row.location.is_empty() {
                merged.merge(&row.rollup());
            }
        }
        match merged.checks as u64 >= served {
            true => Ok(merged),
            false => Err(format!("{} of {served} rolled up", merged.checks)),
        }
    })
    .await;
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
    let topic = fresh("checks");
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            create_running(
                &server,
                &format!("job-{i}"),
                format!("http://{}/website_mock", mock.address),
            )
            .await,
        );
    }
    let a = spawn_worker(server.addr, &topic, "worker-a", WORKER_TOKEN);
    let b = spawn_worker(server.addr, &topic, "worker-b", WORKER_TOKEN);
    let (_, placed) = wait_placed(&server, &ids, &["worker-a", "worker-b"]).await;
    // Kill the one holding more, so jobs really move (hashing may give one all 10).
    let ((victim, _), (survivor, survivor_id)) = if placed["worker-a"] >= placed["worker-b"] {
        ((a, "worker-a"), (b, "worker-b"))
    } else {
        ((b, "worker-b"), (a, "worker-a"))
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    victim.kill_9().await;
    let killed_at = Instant::now();
    wait_workers(&server, &format!("{survivor_id} holding all 10 jobs"), |w| {
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
    let topic = fresh("checks");
    let stopped = create_running(&server, "to-stop", format!("http://{}/status/200", mock.address)).await;
    let updated = create_running(&server, "to-update", format!("http://{}/status/201", mock.address)).await;
    let worker = spawn_worker(server.addr, &topic, "worker-u", WORKER_TOKEN);
    wait_workers(&server, "the worker with both jobs", |w| {
        w.len() == 1 && w[0].assigned_jobs == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    server
        .jobs
        .clone()
        .stop_job(StopJobRequest { id: stopped.clone() })
        .await
        .unwrap();
    let stop_effective = chrono::Utc::now().timestamp_millis() + 1000;
    let current = server
        .jobs
        .clone()
        .get_job(monitor_proto::v1::GetJobRequest { id: updated.clone() })
        .await
        .unwrap();
    let mut change = current.into_inner().job.unwrap();
    change.check = Some(Check::Http(HttpCheck {
        url: format!("http://{}/status/204", mock.address),
        ..Default::default()
    }));
    server
        .jobs
        .clone()
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
    let worker = spawn_worker(server.addr, &fresh("checks"), "worker-bad", "not-the-worker-token-000");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(workers(&server).await.is_empty(), "a refused worker is not registered");
    let log = worker.terminate().await;
    assert!(log.contains("refused this worker's token"), "clear error: {log}");
    let attempts = log.matches("refused this worker's token").count();
    assert!(attempts <= 3, "{attempts} attempts in 4 s is a retry storm: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_the_server_connects_when_it_comes_up() {
    // Reserve a port, start the worker against it, then start the server there.
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let worker = spawn_worker(addr, &fresh("checks"), "worker-early", WORKER_TOKEN);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(worker.log().contains("control plane unreachable"), "{}", worker.log());

    let server = TestServer::builder()
        .worker_tokens(&format!("worker-*:{WORKER_TOKEN}"))
        .listener(TcpListener::bind(addr).await.unwrap())
        .start()
        .await;
    wait_workers(&server, "the early worker", |w| w.len() == 1).await;
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
    let id = create_running_every(&server, "every-15s", format!("http://{}/status/200", mock.address), 15).await;
    let worker = spawn_worker(server.addr, &fresh("checks"), "worker-r", WORKER_TOKEN);
    let last_check = |server: &TestServer| {
        let mut jobs = server.jobs.clone();
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
    let before = wait_until("a check reported", Duration::from_secs(25), || async {
        last_check(&server).await.ok_or("no check reported yet".to_owned())
    })
    .await;
    assert_eq!(before.2, CheckOutcome::Ok as i32);

    // Restart the control plane on the same address and database.
    let addr = server.addr;
    let db = server.stop();
    let listener = wait_until(
        &format!("listening on {addr} again"),
        Duration::from_secs(10),
        || async { TcpListener::bind(addr).await.map_err(|err| err.to_string()) },
    )
    .await;
    let server = control_plane(lease).database(db).listener(listener).start().await;
    let after = wait_until(
        "the restarted server to know the outcome within 8 s",
        Duration::from_secs(8),
        || async { last_check(&server).await.ok_or("no outcome known".to_owned()) },
    )
    .await;
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
    let topic = fresh("checks");
    create_running(&first, "restarted", format!("http://{}/website_mock", mock.address)).await;
    let one = spawn_worker(first.addr, &topic, "worker-1", WORKER_TOKEN);
    wait_workers(&first, "worker-1 with the job", |w| {
        w.len() == 1 && w[0].assigned_jobs == 1
    })
    .await;

    // The first server stops and another starts on the same database at
    // another address. worker-1 knows only the first's address, so it runs
    // the job until its lease runs out; worker-2 reaches the new server at
    // once, and the job must not reach it before worker-1 has paused.
    let second = control_plane(lease).database(first.stop()).start().await;
    let two = spawn_worker(second.addr, &topic, "worker-2", WORKER_TOKEN);
    wait_workers_for(&second, "worker-2 with the job", Duration::from_secs(40), |w| {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_metrics_move_and_readiness_follows_the_control_plane() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let topic = fresh("checks");
    create_running(&server, "metered", format!("http://{}/website_mock", mock.address)).await;
    let worker = spawn_worker(server.addr, &topic, "worker-m", WORKER_TOKEN);
    wait_workers(&server, "the metered worker with its job", |w| {
        w.len() == 1 && w[0].assigned_jobs == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(worker.get("/healthz").await.unwrap().0, 200);
    assert_eq!(worker.readyz().await.unwrap().0, 200);
    let scrape = worker.metrics().await.unwrap();
    let checks = metrics::sum(&scrape, "monitor_probe_checks_total", &[]);
    assert!(checks >= 2.0, "checks counted: {checks}");
    assert!(metrics::sum(&scrape, "monitor_probe_kafka_delivered_total", &[]) >= 1.0);
    assert_eq!(metrics::sum(&scrape, "monitor_probe_assignments", &[]), 1.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("monitor_probe_schedule_lateness_seconds"))
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = metrics::sum(&worker.metrics().await.unwrap(), "monitor_probe_checks_total", &[]);
    assert!(later > checks, "the counter moves: {checks} -> {later}");

    // Without the control plane the worker is no longer ready.
    drop(server);
    wait_until("readyz to turn 503", Duration::from_secs(10), || async {
        match worker.readyz().await? {
            (503, _) => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await;
    worker.terminate().await;
}

/// Without `--allow-net` a worker refuses the mock on 127.0.0.1: the job's
/// outcome is BLOCKED and the mock never sees a request. Needs no broker:
/// outcomes reach the control plane over the worker's stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_allow_net_reports_a_job_on_loopback_blocked() {
    let mock = start_mock().await;
    let server = start_server(Duration::from_secs(4)).await;
    let id = create_running(&server, "loopback", format!("http://{}/status/200", mock.address)).await;
    let worker = spawn_probe(server.addr, &fresh("checks"), "worker-default", WORKER_TOKEN, &[]);
    let outcome = wait_until("a check reported", Duration::from_secs(20), || async {
        let status = server
            .jobs
            .clone()
            .get_job_status(GetJobStatusRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        match status.last_check_time {
            Some(_) => Ok(status.last_outcome),
            None => Err(format!("none yet; log:\n{}", worker.log())),
        }
    })
    .await;
    assert_eq!(outcome, CheckOutcome::Blocked as i32);
    assert_eq!(mock.stats().await.total, 0, "no request reached the mock");
    // Killed, not drained: without a broker the drain waits for the flush.
    worker.kill_9().await;
}
