//! The aggregator against the real broker and PostgreSQL: every rollup is
//! compared with sums computed independently here, after crashes, a second
//! group member, poison messages and lost database connections.

mod common;

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use common::stored_rows;
use monitor_proto::v1::{CheckOutcome, CheckResult, HttpResult, check_result::Detail};
use monitor_store::{models::job_metrics::MetricRow, testing::TestDb};
use monitor_testkit::{
    fresh,
    kafka::{KafkaCluster, create_topic, producer, reader, shared_brokers},
    metrics, wait_until,
    worker::WorkerProcess,
};
use monitor_worker::aggregate::{AggregateArgs, Aggregator};
use prost::Message as _;
use rdkafka::{
    Message as _,
    consumer::Consumer,
    message::Headers,
    producer::{FutureProducer, FutureRecord},
};
use tokio::sync::watch;
use uuid::Uuid;

/// A deterministic stream of results: `n` checks over `jobs` jobs, spread
/// over three hours, some in two locations, with every outcome kind.
fn results(n: usize, jobs: &[Uuid]) -> Vec<CheckResult> {
    let base = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let job = jobs[i % jobs.len()];
            let start = base + chrono::Duration::milliseconds((i as i64 * 7_919) % (3 * 3_600_000));
            let outcome = match i % 10 {
                0 => CheckOutcome::Timeout,
                1 => CheckOutcome::AssertionFailed,
                2 => CheckOutcome::Connect,
                _ => CheckOutcome::Ok,
            };
            let status = match outcome {
                CheckOutcome::Timeout | CheckOutcome::Connect => 0,
                CheckOutcome::AssertionFailed => 500,
                _ => [200, 200, 204, 301][i % 4],
            };
            let ms = 5 + (i * 37 % 400) as i32;
            CheckResult {
                schema_version: monitor_proto::SCHEMA_VERSION,
                check_id: Uuid::now_v7().to_string(),
                job_id: job.to_string(),
                job_version: 1,
                worker_id: "w".into(),
                epoch: 1,
                location: if i % 3 == 0 {
                    "eu-1".into()
                } else if i % 3 == 1 {
                    "us-2".into()
                } else {
                    String::new()
                },
                scheduled_time: Some(start.into()),
                start_time: Some(start.into()),
                duration: Some(pbjson_types::Duration {
                    seconds: 0,
                    nanos: ms * 1_000_000,
                }),
                outcome: outcome as i32,
                detail: Some(Detail::Http(HttpResult {
                    status_code: status,
                    ..Default::default()
                })),
                ..Default::default()
            }
        })
        .collect()
}

/// Produces values (results or raw poison) and returns the end offset per partition.
async fn produce(topic: &str, values: &[(String, Vec<u8>)]) -> HashMap<i32, i64> {
    produce_on(&shared_brokers(), topic, values).await
}

/// [`produce`] to `brokers`, batched and compressed as a probe produces
/// ([`producer`]), so records share batches and a consumer resuming after
/// a crash may start inside one.
async fn produce_on(brokers: &str, topic: &str, values: &[(String, Vec<u8>)]) -> HashMap<i32, i64> {
    send_all(&producer(brokers), topic, values).await
}

/// Sends `values` with `producer` and waits until the broker has them all.
async fn send_all(producer: &FutureProducer, topic: &str, values: &[(String, Vec<u8>)]) -> HashMap<i32, i64> {
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut pending = Vec::new();
    for (key, value) in values {
        let record = FutureRecord::to(topic).key(key.as_bytes()).payload(value.as_slice());
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for delivery in pending {
        let delivered = delivery.await.unwrap().unwrap();
        let end = ends.entry(delivered.partition).or_default();
        *end = (*end).max(delivered.offset + 1);
    }
    ends
}

/// Raises each partition's end in `ends` to the one in `more`.
fn extend_ends(ends: &mut HashMap<i32, i64>, more: HashMap<i32, i64>) {
    for (partition, end) in more {
        let e = ends.entry(partition).or_insert(0);
        *e = (*e).max(end);
    }
}

fn args(db: &TestDb, topic: &str, group: &str, dlq: &str) -> AggregateArgs {
    args_with(db, topic, group, dlq, "200", &[])
}

/// [`args`] with another flush interval and `extra` flags.
fn args_with(db: &TestDb, topic: &str, group: &str, dlq: &str, flush_ms: &str, extra: &[&str]) -> AggregateArgs {
    let base = [
        "aggregate",
        "--database-url",
        &db.url,
        "--kafka-brokers",
        &shared_brokers(),
        "--kafka-topic",
        topic,
        "--group-id",
        group,
        "--dlq-topic",
        dlq,
        "--granularities",
        "1m,5m,1h",
        "--flush-interval-ms",
        flush_ms,
    ];
    AggregateArgs::from_flags(base.into_iter().chain(extra.iter().copied())).unwrap()
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    checks: i64,
    passed: i64,
    rt_count: i64,
    rt_sum: f64,
    rt_min: Option<f64>,
    rt_max: Option<f64>,
    status: BTreeMap<String, i64>,
    errors: BTreeMap<String, i64>,
}

type Key = (Uuid, String, String, DateTime<Utc>);

/// The rollups the results must produce, computed without the aggregator's code.
fn expected(results: &[CheckResult], widths: &[(&str, i64)]) -> HashMap<Key, Expected> {
    let mut out: HashMap<Key, Expected> = HashMap::new();
    for r in results {
        let start = r.start_time.as_ref().unwrap();
        let ms = start.seconds * 1000 + i64::from(start.nanos) / 1_000_000;
        let job = Uuid::parse_str(&r.job_id).unwrap();
        let outcome = CheckOutcome::try_from(r.outcome).unwrap();
        let Some(Detail::Http(http)) = &r.detail else {
            unreachable!()
        };
        let rt = r
            .duration
            .as_ref()
            .map(|d| d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1e6);
        let answered = matches!(outcome, CheckOutcome::Ok | CheckOutcome::AssertionFailed);
        let mut locations = vec![String::new()];
        if !r.location.is_empty() {
            locations.push(r.location.clone());
        }
        for (label, width_ms) in widths {
            let dt = Utc.timestamp_millis_opt(ms - ms % width_ms).unwrap();
            for location in &locations {
                let e = out.entry((job, location.clone(), label.to_string(), dt)).or_default();
                e.checks += 1;
                if outcome == CheckOutcome::Ok {
                    e.passed += 1;
                } else {
                    *e.errors.entry(outcome.as_str_name().to_owned()).or_default() += 1;
                }
                if http.status_code > 0 {
                    *e.status.entry(http.status_code.to_string()).or_default() += 1;
                }
                if answered && let Some(rt) = rt {
                    e.rt_count += 1;
                    e.rt_sum += rt;
                    e.rt_min = Some(e.rt_min.map_or(rt, |m| m.min(rt)));
                    e.rt_max = Some(e.rt_max.map_or(rt, |m| m.max(rt)));
                }
            }
        }
    }
    out
}

fn assert_exact(rows: &[MetricRow], expected: &HashMap<Key, Expected>) {
    assert_eq!(
        rows.len(),
        expected.len(),
        "one row per (job, location, granularity, bucket)"
    );
    for row in rows {
        let key = (row.job_id, row.location.clone(), row.granularity.clone(), row.dt);
        let want = expected.get(&key).unwrap_or_else(|| panic!("unexpected row {key:?}"));
        let got = row.rollup();
        assert_eq!(
            (got.checks, got.passed, got.rt_count),
            (want.checks, want.passed, want.rt_count),
            "{key:?}"
        );
        assert!(
            (got.rt_sum - want.rt_sum).abs() < 1e-6,
            "{key:?}: sum {} != {}",
            got.rt_sum,
            want.rt_sum
        );
        assert_eq!((got.rt_min, got.rt_max), (want.rt_min, want.rt_max), "{key:?}");
        assert_eq!(got.status, want.status, "{key:?}");
        assert_eq!(got.errors, want.errors, "{key:?}");
        assert_eq!(
            got.rt_histogram.values().sum::<i64>(),
            want.rt_count,
            "{key:?}: histogram holds every timed check"
        );
    }
}

/// Messages accounted for in the database over all partitions.
async fn accounted(db: &TestDb, group: &str, topic: &str) -> i64 {
    let pool = db.pool();
    let mut conn = pool.get().await.unwrap();
    let stored =
        monitor_store::models::consumer_offsets::stored_offsets(&mut conn, group, topic, &[0, 1, 2, 3, 4, 5, 6, 7])
            .await
            .unwrap();
    stored.values().sum()
}

/// Waits until the stored offsets reach `ends` (every message accounted for).
async fn wait_accounted(db: &TestDb, group: &str, topic: &str, ends: &HashMap<i32, i64>, limit: Duration) {
    let pool = db.pool();
    let partitions: Vec<i32> = ends.keys().copied().collect();
    wait_until(&format!("the stored offsets to reach {ends:?}"), limit, || async {
        let mut conn = pool.get().await.unwrap();
        let stored = monitor_store::models::consumer_offsets::stored_offsets(&mut conn, group, topic, &partitions)
            .await
            .unwrap();
        match ends.iter().all(|(p, end)| stored.get(p) == Some(end)) {
            true => Ok(()),
            false => Err(format!("stored offsets {stored:?}")),
        }
    })
    .await;
}

fn encode_all(results: &[CheckResult]) -> Vec<(String, Vec<u8>)> {
    results.iter().map(|r| (r.job_id.clone(), r.encode_to_vec())).collect()
}

const WIDTHS: &[(&str, i64)] = &[("1m", 60_000), ("5m", 300_000), ("1h", 3_600_000)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_are_exact_and_poison_goes_to_the_dlq() {
    let db = TestDb::new().await;
    let (topic, group, dlq) = (fresh("checks"), fresh("group"), fresh("dlq"));
    create_topic(&shared_brokers(), &topic, 3, 1).await;
    let jobs: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
    let good = results(3000, &jobs);
    let mut values = encode_all(&good);
    // Poison interleaved with good messages.
    let mut future = good[0].clone();
    future.start_time = Some((Utc::now() + chrono::Duration::days(3)).into());
    let mut v9 = good[1].clone();
    v9.schema_version = 9;
    let poison = [
        (
            jobs[0].to_string(),
            b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ),
        (jobs[1].to_string(), v9.encode_to_vec()),
        (jobs[2].to_string(), future.encode_to_vec()),
    ];
    for (i, p) in poison.iter().enumerate() {
        values.insert(500 * (i + 1), p.clone());
    }
    let ends = produce(&topic, &values).await;

    let (stop, stopped) = watch::channel(false);
    let pool = db.pool();
    let aggregator = Aggregator::new(args(&db, &topic, &group, &dlq), pool).unwrap();
    let stats = aggregator.stats.clone();
    let task = tokio::spawn(aggregator.run(stopped));
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    assert_exact(&stored_rows(&db).await, &expected(&good, WIDTHS));
    assert_eq!(stats.dead_lettered.get(), 3);

    // The refused messages are on the DLQ with their reasons.
    let consumer = reader(&shared_brokers());
    consumer.subscribe(&[&dlq]).unwrap();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while reasons.len() < 3 && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let headers = message.headers().unwrap();
            let reason = headers
                .iter()
                .find(|h| h.key == "reason")
                .and_then(|h| h.value)
                .unwrap();
            reasons.push(String::from_utf8_lossy(reason).into_owned());
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.starts_with("undecodable")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("unknown schema version 9")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("future")), "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_of_concepts_example_adds_up() {
    // One hour row and two minute rows whose counters add up.
    let db = TestDb::new().await;
    let (topic, group, dlq) = (fresh("checks"), fresh("group"), fresh("dlq"));
    create_topic(&shared_brokers(), &topic, 1, 1).await;
    let job = Uuid::now_v7();
    let at = |minute: u32, second: u32| Utc.with_ymd_and_hms(2026, 11, 27, 10, minute, second).unwrap();
    let check = |start: DateTime<Utc>, status: u32, ms: i32| CheckResult {
        schema_version: monitor_proto::SCHEMA_VERSION,
        job_id: job.to_string(),
        start_time: Some(start.into()),
        duration: Some(pbjson_types::Duration {
            seconds: 0,
            nanos: ms * 1_000_000,
        }),
        outcome: if status < 400 {
            CheckOutcome::Ok
        } else {
            CheckOutcome::AssertionFailed
        } as i32,
        detail: Some(Detail::Http(HttpResult {
            status_code: status,
            ..Default::default()
        })),
        ..Default::default()
    };
    let sent = vec![
        check(at(1, 5), 200, 120),
        check(at(1, 35), 404, 80),
        check(at(2, 5), 200, 95),
        check(at(2, 35), 500, 310),
        check(at(2, 50), 200, 101),
    ];
    let ends = produce(&topic, &encode_all(&sent)).await;
    let (stop, stopped) = watch::channel(false);
    let mut a = args(&db, &topic, &group, &dlq);
    a.granularities = vec![
        monitor_worker::aggregate::Granularity::parse("1m").unwrap(),
        monitor_worker::aggregate::Granularity::parse("1h").unwrap(),
    ];
    let task = tokio::spawn(Aggregator::new(a, db.pool()).unwrap().run(stopped));
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(30)).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    let rows = stored_rows(&db).await;
    let find = |granularity: &str, dt: DateTime<Utc>| {
        rows.iter()
            .find(|r| r.granularity == granularity && r.dt == dt)
            .unwrap_or_else(|| panic!("{granularity} {dt}"))
    };
    let m1 = find("1m", at(1, 0));
    let m2 = find("1m", at(2, 0));
    let h = find("1h", Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap());
    assert_eq!(m1.data, serde_json::json!({"200": 1, "404": 1}));
    assert_eq!(m2.data, serde_json::json!({"200": 2, "500": 1}));
    assert_eq!(h.data, serde_json::json!({"200": 3, "404": 1, "500": 1}));
    assert_eq!((m1.rt_min, m1.rt_max), (Some(80.0), Some(120.0)));
    assert_eq!((m2.rt_min, m2.rt_max), (Some(95.0), Some(310.0)));
    assert_eq!((h.rt_min, h.rt_max), (Some(80.0), Some(310.0)));
    assert_eq!(h.checks, m1.checks + m2.checks);
    assert_eq!(h.passed, 3);
}

/// `monitor-worker aggregate` processes of one group, logging at the level
/// AGGREGATOR_LOG names (`warn` by default); MONITOR_TEST_KEEP_LOGS keeps
/// their logs.
struct Aggregators {
    database_url: String,
    brokers: String,
    topic: String,
    group: String,
    dlq: String,
}

impl Aggregators {
    fn new(db: &TestDb, brokers: &str, topic: &str) -> Aggregators {
        Aggregators {
            database_url: db.url.clone(),
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            group: fresh("group"),
            dlq: fresh("dlq"),
        }
    }

    /// A new member, with a 6 s session timeout.
    fn spawn(&self) -> WorkerProcess {
        let args = [
            ["--database-url", &self.database_url].as_slice(),
            &["--kafka-brokers", &self.brokers, "--kafka-topic", &self.topic],
            &["--group-id", &self.group, "--dlq-topic", &self.dlq],
            &["--granularities", "1m,5m,1h", "--flush-interval-ms", "150"],
            &["--max-pending-keys", "500", "--session-timeout-ms", "6000"],
        ]
        .concat();
        let log = std::env::var("AGGREGATOR_LOG").unwrap_or_else(|_| "warn".into());
        common::spawn_worker_env("aggregate", &args, &[("RUST_LOG", &log)])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_aggregators_and_a_second_member_never_change_a_total() {
    let db = TestDb::new().await;
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, 4, 1).await;
    let jobs: Vec<Uuid> = (0..13).map(|_| Uuid::now_v7()).collect();
    let all = results(8000, &jobs);
    let members = Aggregators::new(&db, &shared_brokers(), &topic);
    let group = members.group.clone();
    // Produce in chunks; each round an aggregator works until it has
    // committed some progress, then is killed -9 at a varying point.
    let mut ends = HashMap::new();
    let mut progressed = 0;
    for (round, chunk) in all.chunks(1600).enumerate() {
        let victim = members.spawn();
        extend_ends(&mut ends, produce(&topic, &encode_all(chunk)).await);
        let before = accounted(&db, &group, &topic).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while accounted(&db, &group, &topic).await == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if accounted(&db, &group, &topic).await > before {
            progressed += 1;
        }
        tokio::time::sleep(Duration::from_millis(40 * round as u64 + 20)).await;
        victim.kill_9().await;
    }
    assert!(
        progressed >= 4,
        "most killed aggregators had committed work: {progressed}"
    );
    // Two members finish the job; one leaves halfway.
    let first = members.spawn();
    let mut second = members.spawn();
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.stop().await;
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(120)).await;
    first.kill_9().await;
    assert_exact(&stored_rows(&db).await, &expected(&all, WIDTHS));
}

/// Restarts as Kubernetes does them: the only aggregator is killed -9 during
/// a steady stream and a new process starts 1 s later, three times. The new
/// member's group rebalances once the dead member's session (6 s) expires,
/// it resumes from the offsets stored with the rollups, and every rollup
/// equals what was produced, per status code and per error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_killed_and_back_within_two_seconds_three_times_misses_nothing() {
    let db = TestDb::new().await;
    let topic = fresh("checks");
    create_topic(&shared_brokers(), &topic, 4, 1).await;
    let jobs: Vec<Uuid> = (0..13).map(|_| Uuid::now_v7()).collect();
    let members = Aggregators::new(&db, &shared_brokers(), &topic);
    let group = members.group.clone();

    // The stream: 50 results every 100 ms until told to stop.
    let (stop_stream, mut stopped) = watch::channel(false);
    let stream = tokio::spawn({
        let (topic, all) = (topic.clone(), results(60_000, &jobs));
        async move {
            let producer = producer(&shared_brokers());
            let mut ends = HashMap::new();
            let mut sent = 0;
            for chunk in all.chunks(50) {
                if *stopped.borrow_and_update() {
                    break;
                }
                extend_ends(&mut ends, send_all(&producer, &topic, &encode_all(chunk)).await);
                sent += chunk.len();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (ends, all[..sent].to_vec())
        }
    });

    let mut member = members.spawn();
    let mut recoveries = Vec::new();
    for kill in 0..3 {
        let before = accounted(&db, &group, &topic).await;
        wait_progress(&db, &group, &topic, before, &format!("member {kill} to commit")).await;
        member.kill_9().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let restarted = Instant::now();
        member = members.spawn();
        let at_restart = accounted(&db, &group, &topic).await;
        wait_progress(&db, &group, &topic, at_restart, "the restarted member to commit").await;
        recoveries.push(restarted.elapsed());
    }
    stop_stream.send(true).unwrap();
    let (ends, produced) = stream.await.unwrap();
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(120)).await;
    member.kill_9().await;
    eprintln!(
        "{} results produced over {} partitions, all rolled up; from each restart to the new member's first commit: {recoveries:?} (session timeout 6 s)",
        produced.len(),
        ends.len()
    );
    assert_exact(&stored_rows(&db).await, &expected(&produced, WIDTHS));
}

/// Waits until the group has accounted for more than `before` messages.
async fn wait_progress(db: &TestDb, group: &str, topic: &str, before: i64, what: &str) {
    wait_until(what, Duration::from_secs(90), || async {
        match accounted(db, group, topic).await {
            now if now > before => Ok(()),
            now => Err(format!("{now} accounted for")),
        }
    })
    .await;
}

/// A broker killed -9 and started again on its data (a private Apache
/// Kafka): the running aggregator goes on without a restart, and an
/// aggregator killed while the broker was away is replaced by one that
/// resumes from the offsets stored with the rollups; nothing is lost or
/// counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_on_its_data_loses_and_repeats_nothing() {
    let mut broker = KafkaCluster::single().await;
    let bootstrap = broker.bootstrap();
    let db = TestDb::new().await;
    let topic = fresh("checks");
    create_topic(&bootstrap, &topic, 2, 1).await;
    let jobs: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
    let all = results(3000, &jobs);
    let members = Aggregators::new(&db, &bootstrap, &topic);
    let group = members.group.clone();

    let first = members.spawn();
    let mut ends = produce_on(&bootstrap, &topic, &encode_all(&all[..1000])).await;
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(90)).await;

    broker.kill(1).await;
    let restarting = Instant::now();
    broker.restart(1).await;
    let restarted = restarting.elapsed();
    extend_ends(
        &mut ends,
        produce_on(&bootstrap, &topic, &encode_all(&all[1000..2000])).await,
    );
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(90)).await;
    let caught_up = restarting.elapsed();

    // The aggregator dies while the broker is away; its successor starts
    // after the broker is back.
    broker.kill(1).await;
    first.kill_9().await;
    broker.restart(1).await;
    extend_ends(
        &mut ends,
        produce_on(&bootstrap, &topic, &encode_all(&all[2000..])).await,
    );
    let second = members.spawn();
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(90)).await;
    second.kill_9().await;
    eprintln!(
        "3000 results, 3000 rolled up; broker back {restarted:?} after kill -9, the running aggregator caught up {caught_up:?} after it"
    );
    assert_exact(&stored_rows(&db).await, &expected(&all, WIDTHS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_flushes_what_was_revoked() {
    let db = TestDb::new().await;
    let (topic, group, dlq) = (fresh("checks"), fresh("group"), fresh("dlq"));
    create_topic(&shared_brokers(), &topic, 4, 1).await;
    let jobs: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let all = results(400, &jobs);
    let ends = produce(&topic, &encode_all(&all)).await;
    // Timed flushes ten minutes apart: within this test only a rebalance (or
    // the shutdown) writes anything.
    let slow = || args_with(&db, &topic, &group, &dlq, "600000", &["--session-timeout-ms", "6000"]);
    let (stop, stopped) = watch::channel(false);
    let first = Aggregator::new(slow(), db.pool()).unwrap();
    let first_stats = first.stats.clone();
    let first = tokio::spawn(first.run(stopped.clone()));
    wait_until(
        "the first member to read every message",
        Duration::from_secs(60),
        || async {
            match first_stats.consumed.get() {
                read if read >= all.len() as u64 => Ok(()),
                read => Err(format!("read {read}")),
            }
        },
    )
    .await;
    assert_eq!(
        accounted(&db, &group, &topic).await,
        0,
        "nothing is flushed before the rebalance"
    );

    // A second member joins: the (eager) rebalance revokes every partition
    // of the first, which writes them at once instead of a minute later.
    let second = Aggregator::new(slow(), db.pool()).unwrap();
    let second = tokio::spawn(second.run(stopped));
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(30)).await;
    assert_exact(&stored_rows(&db).await, &expected(&all, WIDTHS));
    assert_eq!(first_stats.fenced.get(), 0);

    // The new owners resume where the first stopped: nothing counted twice.
    stop.send(true).unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_exact(&stored_rows(&db).await, &expected(&all, WIDTHS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_database_connections_are_retried_without_loss() {
    let db = TestDb::new().await;
    let (topic, group, dlq) = (fresh("checks"), fresh("group"), fresh("dlq"));
    create_topic(&shared_brokers(), &topic, 2, 1).await;
    let jobs: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let all = results(4000, &jobs);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(
        Aggregator::new(args(&db, &topic, &group, &dlq), db.pool())
            .unwrap()
            .run(stopped),
    );
    let mut ends = HashMap::new();
    let admin = monitor_store::connect(
        &monitor_store::testing::with_database(&monitor_store::testing::base_url(), "postgres"),
        1,
    )
    .unwrap();
    for chunk in all.chunks(1000) {
        for (p, end) in produce(&topic, &encode_all(chunk)).await {
            let e = ends.entry(p).or_insert(0);
            *e = (*e).max(end);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Kill every connection to the test database mid-run.
        let mut conn = admin.get().await.unwrap();
        use monitor_store::diesel_async::RunQueryDsl;
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name()
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    wait_accounted(&db, &group, &topic, &ends, Duration::from_secs(60)).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_exact(&stored_rows(&db).await, &expected(&all, WIDTHS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregator_metrics_count_what_it_did() {
    let db = TestDb::new().await;
    let (topic, group, dlq) = (fresh("checks"), fresh("group"), fresh("dlq"));
    create_topic(&shared_brokers(), &topic, 2, 1).await;
    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut values = encode_all(&results(200, &jobs));
    values.push((jobs[0].to_string(), b"\xff\xff".to_vec()));
    produce(&topic, &values).await;
    let brokers = shared_brokers();
    let args = [
        "--database-url",
        &db.url,
        "--kafka-brokers",
        &brokers,
        "--kafka-topic",
        &topic,
    ];
    let args = [
        &args[..],
        &["--group-id", &group, "--dlq-topic", &dlq, "--flush-interval-ms", "200"],
    ]
    .concat();
    let aggregator = common::spawn_worker("aggregate", &args);
    let scrape = wait_until("the aggregator to report its work", Duration::from_secs(60), || async {
        let scrape = aggregator.metrics().await?;
        let consumed = metrics::sum(&scrape, "monitor_aggregator_consumed_total", &[]);
        let flushes = metrics::sum(&scrape, "monitor_aggregator_flushes_total", &[]);
        match consumed >= 201.0 && flushes >= 1.0 {
            true => Ok(scrape),
            false => Err(format!("consumed {consumed}, flushes {flushes}")),
        }
    })
    .await;
    assert_eq!(
        metrics::sum(&scrape, "monitor_aggregator_dead_lettered_total", &[]),
        1.0
    );
    assert!(metrics::sum(&scrape, "monitor_aggregator_rows_upserted_total", &[]) >= 1.0);
    assert_eq!(aggregator.readyz().await.unwrap().0, 200);
    assert_eq!(aggregator.get("/healthz").await.unwrap().0, 200);
    aggregator.terminate().await;
}

/// The retention task's pass with the default flags (`1m=14d,1h=400d`, day
/// rows kept): every configured granularity gets its current and next two
/// partitions, and rows past their age go with their whole partition.
#[tokio::test]
async fn the_retention_pass_creates_partitions_ahead_and_drops_old_ones_by_default() {
    use monitor_store::{
        models::{
            consumer_offsets::PartitionProgress,
            job_metrics,
            metric_partitions::{self, MetricPartitions},
        },
        rollup::{Rollup, RollupKey},
    };
    use monitor_worker::aggregate::retention::retention_pass;

    let db = TestDb::new().await;
    let pool = db.pool();
    let args = AggregateArgs::from_flags(["aggregate"]).unwrap();
    let granularities: Vec<String> = args.granularities.iter().map(|g| g.label().to_owned()).collect();
    let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
    let job = Uuid::now_v7();
    let days_ago = |d: i64| now - chrono::Duration::days(d);
    let mut rollup = Rollup::default();
    rollup.add(Some(20.0), true, Some(200), None);
    let rows: Vec<(RollupKey, Rollup)> = [
        ("1m", days_ago(15)),   // 2026-11-17: its day lies before the cutoff 11-18T12:00
        ("1m", days_ago(13)),   // kept
        ("1h", days_ago(450)),  // 2025-09-08: September is before the cutoff 2025-10-28T12:00
        ("1h", days_ago(390)),  // kept
        ("1d", days_ago(1000)), // day rows are kept
    ]
    .into_iter()
    .map(|(granularity, dt)| {
        let key = RollupKey {
            job_id: job,
            location: String::new(),
            granularity: granularity.into(),
            dt,
        };
        (key, rollup.clone())
    })
    .collect();
    let mut conn = pool.get().await.unwrap();
    let progress = [PartitionProgress {
        partition: 0,
        expected: None,
        next_offset: 1,
    }];
    job_metrics::flush(&mut conn, "retention-test", "t", &rows, &progress)
        .await
        .unwrap();

    let partitions = MetricPartitions::default();
    let removed = retention_pass(&pool, &partitions, &granularities, &args.retention, now).await;
    assert_eq!(removed["1m"].partitions_dropped, ["job_metrics_1m_20261117"]);
    assert_eq!(removed["1h"].partitions_dropped, ["job_metrics_1h_202509"]);
    assert_eq!(removed["1m"].rows_deleted + removed["1h"].rows_deleted, 0);
    assert!(!removed.contains_key("1d"));
    let names =
        |list: Vec<metric_partitions::MetricPartition>| -> Vec<String> { list.into_iter().map(|p| p.name).collect() };
    let minutes = names(metric_partitions::list(&mut conn, "1m").await.unwrap());
    assert_eq!(
        minutes,
        [
            "job_metrics_1m_20261119",
            "job_metrics_1m_20261202",
            "job_metrics_1m_20261203",
            "job_metrics_1m_20261204"
        ]
    );
    let days = names(metric_partitions::list(&mut conn, "1d").await.unwrap());
    assert_eq!(days.len(), 4, "{days:?}");
    assert_eq!(
        days[1..],
        [
            "job_metrics_1d_202612",
            "job_metrics_1d_202701",
            "job_metrics_1d_202702"
        ]
    );
    let left: Vec<(String, DateTime<Utc>)> = stored_rows(&db)
        .await
        .into_iter()
        .map(|r| (r.granularity, r.dt))
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&("1d".into(), days_ago(1000))));
}
