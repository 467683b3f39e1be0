//! The alert evaluator's figures, against the shared broker and PostgreSQL:
//!
//! 1. Throughput and exactness: J jobs (default 10 000) with C results each
//!    (default 30) on a fresh 6-partition topic, where F jobs (default 500)
//!    fail their last three checks at once. A bare rdkafka `BaseConsumer`
//!    that only counts reads the topic first (the reference), then the
//!    evaluator, with one rule over every job, from its first message to
//!    its last offset committed; prints both rates, the ratio, and how many
//!    incidents it opened (exactly F, or the run says it failed).
//! 2. Detection latency: with the evaluator up to date, L jobs (default
//!    200) fail three times, the third check ending as it is produced, one
//!    job every 50 ms; for each incident, from that check's end
//!    (`incidents.detected_check_end`) to its committed outbox row
//!    (`notification_outbox.created_at`, the database's clock at the insert):
//!    p50, p99 and max.
//!
//! `cargo bench -p monitor-worker --bench alert_load -- [--jobs 10000] [--checks 30] [--failing 500] [--latency-jobs 200]`

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use monitor_proto::v1::{CheckOutcome, CheckResult, HttpResult, check_result::Detail};
use monitor_store::{diesel_async::RunQueryDsl, testing::TestDb};
use monitor_testkit::{
    bench_number, fresh,
    kafka::{bare_consume, bulk_producer, create_topic, send_waiting, shared_brokers},
};
use monitor_worker::alert::{AlertArgs, Evaluator};
use prost::Message as _;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::watch;
use uuid::Uuid;

fn result(job: &str, passed: bool, start: DateTime<Utc>, duration_ms: i32) -> CheckResult {
    CheckResult {
        schema_version: monitor_proto::SCHEMA_VERSION,
        check_id: Uuid::now_v7().to_string(),
        job_id: job.to_owned(),
        worker_id: "bench".into(),
        start_time: Some(start.into()),
        duration: Some(pbjson_types::Duration {
            seconds: 0,
            nanos: duration_ms * 1_000_000,
        }),
        outcome: if passed {
            CheckOutcome::Ok
        } else {
            CheckOutcome::AssertionFailed
        } as i32,
        detail: Some(Detail::Http(HttpResult {
            status_code: if passed { 200 } else { 500 },
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, result: &CheckResult) {
    send_waiting(producer, topic, result.job_id.as_bytes(), &result.encode_to_vec());
}

/// Sums of the stored offsets of `group` on `topic`.
async fn stored(db: &TestDb, group: &str, topic: &str) -> i64 {
    let mut conn = db.pool().get().await.unwrap();
    let partitions: Vec<i32> = (0..6).collect();
    let stored: HashMap<i32, i64> =
        monitor_store::models::consumer_offsets::stored_offsets(&mut conn, group, topic, &partitions)
            .await
            .unwrap();
    stored.values().sum()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Latency {
    #[diesel(sql_type = diesel::sql_types::Double)]
    ms: f64,
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query(sql).get_result::<Count>(&mut conn).await.unwrap().n
}

#[tokio::main]
async fn main() {
    let jobs = bench_number("--jobs", 10_000);
    let checks = bench_number("--checks", 30).max(3);
    let failing = bench_number("--failing", 500).min(jobs);
    let latency_jobs = bench_number("--latency-jobs", 200);
    let brokers = shared_brokers();
    let topic = fresh("monitor.checks.alert-bench");
    create_topic(&brokers, &topic, 6, 1).await;
    let config = monitor_worker::kafka::KafkaArgs::plaintext(&brokers, &topic)
        .client_config()
        .unwrap();
    let db = TestDb::new().await;
    let job_ids: Vec<String> = {
        let mut conn = db.pool().get().await.unwrap();
        let ids: Vec<Id> = diesel::sql_query(format!(
            "INSERT INTO jobs (id, name, check_kind, check_spec, interval_ms, timeout_ms, desired_state) \
             SELECT gen_random_uuid(), 'bench-' || i, 'http', '{{\"url\": \"http://bench.example/\"}}', 60000, 1000, 'running' \
             FROM generate_series(1, {}) AS i RETURNING id",
            jobs + latency_jobs
        ))
        .load(&mut conn)
        .await
        .unwrap();
        diesel::sql_query(
            "INSERT INTO alert_rules (id, name, no_data) VALUES (gen_random_uuid(), 'bench: any failure', false)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        ids.into_iter().map(|row| row.id.to_string()).collect()
    };
    let (bulk_jobs, latency_ids) = job_ids.split_at(jobs);

    // Fill: every job `checks` results a minute apart, in time order; the
    // first `failing` jobs fail their last three.
    let producer = bulk_producer(&config);
    let base = Utc::now() - chrono::Duration::minutes(checks as i64 + 1);
    let fill = Instant::now();
    for k in 0..checks {
        for (j, job) in bulk_jobs.iter().enumerate() {
            let passed = !(j < failing && k + 3 >= checks);
            let start = base + chrono::Duration::minutes(k as i64) + chrono::Duration::milliseconds(j as i64);
            send(&producer, &topic, &result(job, passed, start, 40));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let messages = jobs * checks;
    println!(
        "filled {topic} with {messages} results over {jobs} jobs ({failing} failing their last 3) in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    // Reference: a bare consumer that only counts.
    let (counted, bare_elapsed) = bare_consume(&config, &topic, messages);
    let bare_rate = counted as f64 / bare_elapsed.as_secs_f64();

    // The evaluator, from its first message to its last offset committed.
    let group = fresh("alert-bench");
    let args = AlertArgs::from_flags([
        "alert",
        "--database-url",
        &db.url,
        "--kafka-brokers",
        &brokers,
        "--kafka-topic",
        &topic,
        "--group-id",
        &group,
    ])
    .unwrap();
    let evaluator = Evaluator::new(args, db.pool()).unwrap();
    let stats = evaluator.stats.clone();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(evaluator.run(stopped));
    let started = Instant::now();
    let mut first_message = None;
    loop {
        if first_message.is_none() && stats.consumed.get() > 0 {
            first_message = Some(Instant::now());
        }
        if stored(&db, &group, &topic).await as usize >= messages {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the evaluator did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = first_message.map(|f| f.elapsed()).unwrap_or_else(|| started.elapsed());
    let rate = messages as f64 / elapsed.as_secs_f64();
    let incidents = count(&db, "SELECT count(*) AS n FROM incidents").await;
    let outbox = count(&db, "SELECT count(*) AS n FROM notification_outbox").await;
    println!(
        "bare BaseConsumer (reference)  {counted} msgs in {:.2} s = {bare_rate:>9.0} msgs/s",
        bare_elapsed.as_secs_f64()
    );
    println!(
        "evaluator (1 rule, state, incidents and offsets committed)  {messages} msgs in {:.2} s = {rate:>9.0} msgs/s",
        elapsed.as_secs_f64()
    );
    println!("ratio evaluator / bare        {:.2} (target >= 0.80)", rate / bare_rate);
    println!(
        "flushes {}, incidents {incidents} (expected exactly {failing}), outbox rows {outbox}",
        stats.flushes.get()
    );
    assert_eq!(incidents as usize, failing, "exactly one incident per failing job");

    // Detection latency, with the evaluator up to date.
    let producer: ThreadedProducer<DefaultProducerContext> = config.clone().set("linger.ms", "0").create().unwrap();
    for job in latency_ids {
        let now = Utc::now();
        send(
            &producer,
            &topic,
            &result(job, false, now - chrono::Duration::seconds(20), 40),
        );
        send(
            &producer,
            &topic,
            &result(job, false, now - chrono::Duration::seconds(10), 40),
        );
        // The third check ends now: started 40 ms ago and took 40 ms.
        send(
            &producer,
            &topic,
            &result(job, false, Utc::now() - chrono::Duration::milliseconds(40), 40),
        );
        producer.flush(Duration::from_secs(10)).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let want = (failing + latency_ids.len()) as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(
        &db,
        "SELECT count(*) AS n FROM notification_outbox WHERE event = 'opened'",
    )
    .await
        < want
    {
        assert!(Instant::now() < deadline, "the latency incidents did not all open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let mut conn = db.pool().get().await.unwrap();
    let ids: Vec<String> = latency_ids.iter().map(|id| format!("'{id}'")).collect();
    let mut latencies: Vec<f64> = diesel::sql_query(format!(
        "SELECT extract(epoch FROM o.created_at - i.detected_check_end)::float8 * 1000 AS ms \
         FROM notification_outbox o JOIN incidents i ON i.id = o.incident_id \
         WHERE o.event = 'opened' AND i.job_id IN ({})",
        ids.join(",")
    ))
    .load::<Latency>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|l| l.ms)
    .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!(
        "detection latency over {} incidents (check end -> committed outbox row): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 <= 1000 ms)",
        latencies.len(),
        at(0.50),
        at(0.99),
        latencies.last().copied().unwrap_or_default()
    );
}
