//! The whole pipeline against private Apache Kafka clusters: probes check
//! the mock on schedule and produce, an aggregator rolls up, and at the end
//! the rollups must equal what the mock served, check for check and per
//! status code, after
//! - a three-node cluster (replication factor 3, `min.insync.replicas=2`)
//!   lost the leader of a results partition to kill -9 while probes
//!   produced, with no probe or aggregator restarted;
//! - probes reached the broker over TLS with a client certificate and the
//!   aggregator over SASL/SCRAM-SHA-512 on TLS, set up with the documented
//!   `KAFKA_*` variables.
//!
//! And a wrong CA or a wrong password is named in the log, with `/readyz`
//! saying the broker is unreachable.

mod common;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{spawn_aggregator_with, spawn_worker_env, stored_rows};
use monitor_store::testing::TestDb;
use monitor_testkit::{
    fresh,
    jobs::running_http_job,
    kafka::{KafkaCluster, KafkaOptions, SCRAM_PASSWORD, SCRAM_USER, create_topic, reader},
    mock::MockServer,
    server::TestServer,
    wait_until,
    worker::WorkerProcess,
};
use rdkafka::consumer::Consumer as _;

/// The mock, the control plane (dev mode) and running jobs checking the
/// mock every second; probes and an aggregator are the test's.
struct Pipeline {
    mock: MockServer,
    server: TestServer,
    ids: Vec<String>,
}

impl Pipeline {
    async fn start(jobs: usize) -> Pipeline {
        let mock = MockServer::start(&["--seed", "7", "--latency-ms", "0"]).await;
        let server = TestServer::start().await;
        let mut ids = Vec::new();
        for i in 0..jobs {
            let job = running_http_job(&format!("site-{i}"), &mock.url("/website_mock"), 1);
            ids.push(server.create(job).await.id);
        }
        Pipeline { mock, server, ids }
    }
}

/// Stops every job and waits until no worker holds one; a check that had
/// started may still finish and be produced after that.
async fn stop_jobs(server: &TestServer, ids: &[String]) {
    server.stop_jobs(ids).await;
    wait_until("every job released", Duration::from_secs(60), || async {
        let workers = server.workers().await.map_err(|status| status.to_string())?;
        if workers.iter().all(|w| w.assigned_jobs == 0) {
            Ok(())
        } else {
            Err(format!("{workers:?}"))
        }
    })
    .await;
}

/// The sum of the high watermarks of `topic`: every record produced to it
/// (no transactions, so no control records).
fn records_in(bootstrap: &str, topic: &str) -> i64 {
    let consumer = reader(bootstrap);
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .unwrap()
                .1
        })
        .sum()
}

/// The all-locations, per-minute rollups summed over every job: (checks,
/// count per status code).
async fn rolled_up(db: &TestDb) -> (i64, BTreeMap<String, i64>) {
    let mut checks = 0;
    let mut status = BTreeMap::new();
    for row in stored_rows(db).await {
        if row.location.is_empty() && row.granularity == "1m" {
            let rollup = row.rollup();
            checks += rollup.checks;
            for (code, count) in rollup.status {
                *status.entry(code).or_insert(0) += count;
            }
        }
    }
    (checks, status)
}

/// Waits until the rollups hold what the mock served on `/website_mock`
/// and the topic holds exactly as many records; returns the count.
async fn assert_rollups_equal_the_mock(db: &TestDb, mock: &MockServer, bootstrap: &str, topic: &str) -> u64 {
    let stats = mock.stats().await;
    let route = stats
        .by_route
        .get("website_mock")
        .cloned()
        .unwrap_or_else(|| panic!("{stats:?}"));
    let served: BTreeMap<String, i64> = route.by_status.iter().map(|(k, v)| (k.clone(), *v as i64)).collect();
    wait_until(
        "the rollups to hold every check served",
        Duration::from_secs(120),
        || async {
            let (checks, status) = rolled_up(db).await;
            if checks == route.total as i64 && status == served {
                Ok(())
            } else {
                Err(format!(
                    "rolled up {checks} {status:?}, served {} {served:?}",
                    route.total
                ))
            }
        },
    )
    .await;
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    let records = tokio::task::spawn_blocking(move || records_in(&bootstrap, &topic))
        .await
        .unwrap();
    assert_eq!(records, route.total as i64, "one record per check the mock served");
    route.total
}

/// A probe of `server` (dev mode, no token) that may check the mock on
/// loopback, with its Kafka settings in `env`.
fn spawn_probe(server: SocketAddr, id: &str, env: &[(&str, &str)]) -> WorkerProcess {
    let url = format!("http://{server}");
    let args = ["--server", &url, "--worker-id", id, "--allow-net", "127.0.0.0/8"];
    spawn_worker_env("probe", &args, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_lose_a_partition_leader_and_no_check_is_lost_or_counted_twice() {
    let mut cluster = KafkaCluster::start(KafkaOptions {
        nodes: 3,
        secure: false,
    })
    .await;
    let bootstrap = cluster.bootstrap();
    let topic = fresh("checks");
    create_topic(&bootstrap, &topic, 3, 3).await;
    let Pipeline { mock, server, ids } = Pipeline::start(20).await;
    let db = &server.db;
    let kafka = [("KAFKA_BROKERS", bootstrap.as_str()), ("KAFKA_TOPIC", topic.as_str())];
    let probes = [
        spawn_probe(server.addr, "probe-1", &kafka),
        spawn_probe(server.addr, "probe-2", &kafka),
    ];
    let aggregator = spawn_aggregator_with(&db.url, &topic, &fresh("group"), &["--kafka-brokers", &bootstrap]);
    wait_until("the first rollups", Duration::from_secs(90), || async {
        match rolled_up(db).await.0 {
            0 => Err(format!("nothing rolled up; aggregator log:\n{}", aggregator.log())),
            _ => Ok(()),
        }
    })
    .await;

    let leader = cluster.leader(&topic, 0).await;
    cluster.kill(leader).await;
    let killed = Instant::now();
    let at_kill = mock.stats().await.total;
    // Checks go on; the rollups move again once a new leader took over.
    let before = rolled_up(db).await.0;
    wait_until("rollups after the leader's death", Duration::from_secs(120), || async {
        let now = rolled_up(db).await.0;
        if now > before + 40 {
            Ok(())
        } else {
            Err(format!("{now} rolled up"))
        }
    })
    .await;
    let recovered = killed.elapsed();
    let new_leader = cluster.leader(&topic, 0).await;
    assert_ne!(new_leader, leader, "another node leads partition 0");
    tokio::time::sleep(Duration::from_secs(5)).await;

    stop_jobs(&server, &ids).await;
    // SIGTERM drains: every result a probe holds reaches the broker first.
    for probe in probes {
        probe.terminate().await;
    }
    let served = assert_rollups_equal_the_mock(db, &mock, &bootstrap, &topic).await;
    aggregator.terminate().await;
    eprintln!(
        "node {leader} (leader of partition 0) killed after {at_kill} checks; rollups moved again {recovered:?} later; node {new_leader} leads now; {served} checks served = produced = rolled up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_over_tls_and_an_aggregator_over_sasl_scram_roll_up_every_check() {
    let cluster = KafkaCluster::start(KafkaOptions { nodes: 1, secure: true }).await;
    let tls = cluster.tls().clone();
    let topic = fresh("checks");
    let (ca, cert, key) = (
        tls.ca.to_str().unwrap(),
        tls.cert.to_str().unwrap(),
        tls.key.to_str().unwrap(),
    );
    let Pipeline { mock, server, ids } = Pipeline::start(5).await;
    let db = &server.db;
    // As a managed Kafka service hands them out: ca.pem, service.cert, service.key.
    let ssl = cluster.ssl_bootstrap();
    let probe_env = [
        ("KAFKA_BROKERS", ssl.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
        ("KAFKA_CA_FILE", ca),
        ("KAFKA_CERT_FILE", cert),
        ("KAFKA_KEY_FILE", key),
    ];
    let mut probe = spawn_probe(server.addr, "probe-tls", &probe_env);
    probe.wait_ready(200, "ready").await;
    let sasl = cluster.sasl_bootstrap();
    let aggregator_env = [
        ("KAFKA_BROKERS", sasl.as_str()),
        ("KAFKA_CA_FILE", ca),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", SCRAM_USER),
        ("KAFKA_SASL_PASSWORD", SCRAM_PASSWORD),
    ];
    let group = fresh("group");
    let args = [
        "--database-url",
        &db.url,
        "--kafka-topic",
        &topic,
        "--group-id",
        &group,
        "--dlq-topic",
        &fresh("dlq"),
        "--flush-interval-ms",
        "200",
        "--granularities",
        "1m",
    ];
    let mut aggregator = spawn_worker_env("aggregate", &args, &aggregator_env);
    aggregator.wait_ready(200, "ready").await;
    assert!(
        !aggregator.log().contains(SCRAM_PASSWORD),
        "the password is never logged"
    );
    wait_until("ten checks rolled up", Duration::from_secs(90), || async {
        match rolled_up(db).await.0 {
            n if n >= 10 => Ok(()),
            n => Err(format!("{n} rolled up")),
        }
    })
    .await;
    stop_jobs(&server, &ids).await;
    probe.terminate().await;
    let served = assert_rollups_equal_the_mock(db, &mock, &cluster.bootstrap(), &topic).await;
    aggregator.terminate().await;
    eprintln!("{served} checks over TLS (client certificate) and SASL_SSL (SCRAM-SHA-512), all rolled up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_password_is_named_in_the_log() {
    let cluster = KafkaCluster::start(KafkaOptions { nodes: 1, secure: true }).await;
    let tls = cluster.tls().clone();
    let (ssl, sasl) = (cluster.ssl_bootstrap(), cluster.sasl_bootstrap());
    let topic = fresh("checks");
    let server = TestServer::start().await;

    let wrong_ca = [
        ("KAFKA_BROKERS", ssl.as_str()),
        ("KAFKA_TOPIC", topic.as_str()),
        ("KAFKA_CA_FILE", tls.other_ca.to_str().unwrap()),
        ("KAFKA_CERT_FILE", tls.cert.to_str().unwrap()),
        ("KAFKA_KEY_FILE", tls.key.to_str().unwrap()),
    ];
    let mut probe = spawn_probe(server.addr, "probe-wrong-ca", &wrong_ca);
    probe.wait_ready(503, "broker unreachable").await;
    wait_for_log(&probe, "KAFKA_CA_FILE").await;

    let wrong_password = [
        ("KAFKA_BROKERS", sasl.as_str()),
        ("KAFKA_CA_FILE", tls.ca.to_str().unwrap()),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_USERNAME", SCRAM_USER),
        ("KAFKA_SASL_PASSWORD", "not-the-password"),
    ];
    let args = ["--database-url", &server.db.url, "--kafka-topic", &topic];
    let mut aggregator = spawn_worker_env("aggregate", &args, &wrong_password);
    aggregator.wait_ready(503, "broker unreachable").await;
    wait_for_log(&aggregator, "KAFKA_SASL_PASSWORD").await;
    assert!(!aggregator.log().contains("not-the-password"), "{}", aggregator.log());
    probe.terminate().await;
    aggregator.terminate().await;
}

/// Waits until the worker's log names `setting` in a Kafka client error.
async fn wait_for_log(worker: &WorkerProcess, setting: &str) {
    wait_until(
        &format!("a log line naming {setting}"),
        Duration::from_secs(60),
        || async {
            let log = worker.log();
            if log
                .lines()
                .any(|l| l.contains("Kafka client error") && l.contains(setting))
            {
                Ok(())
            } else {
                Err(log)
            }
        },
    )
    .await;
}
