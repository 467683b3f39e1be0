//! Aggregator throughput: fills a fresh topic with N results over J jobs,
//! then times (1) a bare rdkafka `BaseConsumer` that only counts the
//! messages, as the reference, and (2) the aggregator from its first message
//! to its last rollup committed, in the same run. Prints msgs/s for both,
//! the ratio, flushes, SQL statements per flush and rows upserted per flush.
//! The aggregator runs with a 500 ms flush interval (default 10 s), so the
//! wait for the flush after the last message does not dominate the figure.
//!
//! `cargo bench -p monitor-worker --bench aggregate_load -- [--messages 1000000] [--jobs 1000]`

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use monitor_proto::v1::{CheckOutcome, CheckResult, HttpResult, check_result::Detail};
use monitor_store::testing::TestDb;
use monitor_testkit::{
    bench_number, fresh,
    kafka::{bare_consume, bulk_producer, create_topic, send_waiting, shared_brokers},
};
use monitor_worker::aggregate::{AggregateArgs, Aggregator};
use prost::Message as _;
use rdkafka::producer::Producer;
use tokio::sync::watch;

#[tokio::main]
async fn main() {
    let messages = bench_number("--messages", 1_000_000);
    let jobs = bench_number("--jobs", 1000);
    let brokers = shared_brokers();
    let topic = fresh("monitor.checks.bench");
    create_topic(&brokers, &topic, 6, 1).await;
    // The clients here are configured as the aggregator's are.
    let config = monitor_worker::kafka::KafkaArgs::plaintext(&brokers, &topic)
        .client_config()
        .unwrap();

    // Fill the topic.
    let job_ids: Vec<String> = (0..jobs).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let producer = bulk_producer(&config);
    let base = chrono::Utc::now() - chrono::Duration::hours(2);
    let fill = Instant::now();
    for i in 0..messages {
        let start = base + chrono::Duration::milliseconds((i as i64 * 7) % 7_200_000);
        let result = CheckResult {
            schema_version: monitor_proto::SCHEMA_VERSION,
            job_id: job_ids[i % jobs].clone(),
            start_time: Some(start.into()),
            duration: Some(pbjson_types::Duration {
                seconds: 0,
                nanos: ((i % 500) as i32 + 1) * 1_000_000,
            }),
            outcome: if i % 20 == 0 {
                CheckOutcome::AssertionFailed
            } else {
                CheckOutcome::Ok
            } as i32,
            detail: Some(Detail::Http(HttpResult {
                status_code: if i % 20 == 0 { 500 } else { 200 },
                ..Default::default()
            })),
            ..Default::default()
        };
        send_waiting(&producer, &topic, result.job_id.as_bytes(), &result.encode_to_vec());
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    println!(
        "filled {topic} with {messages} results over {jobs} jobs in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    // Reference: a bare consumer that only counts.
    let (counted, bare_elapsed) = bare_consume(&config, &topic, messages);
    let bare_rate = counted as f64 / bare_elapsed.as_secs_f64();

    // The aggregator, from its first message to its last commit.
    let db = TestDb::new().await;
    let group = fresh("agg-bench");
    let args = AggregateArgs::from_flags([
        "aggregate",
        "--database-url",
        &db.url,
        "--kafka-brokers",
        &brokers,
        "--kafka-topic",
        &topic,
        "--group-id",
        &group,
        "--dlq-topic",
        &format!("{topic}.dlq"),
        // The last rows commit at the first flush after the last message:
        // a short interval keeps that tail out of the throughput figure.
        "--flush-interval-ms",
        "500",
    ])
    .unwrap();
    let aggregator = Aggregator::new(args, db.pool()).unwrap();
    let stats = aggregator.stats.clone();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(aggregator.run(stopped));
    let started = Instant::now();
    let mut first_message = None;
    let partitions: Vec<i32> = (0..6).collect();
    loop {
        if first_message.is_none() && stats.consumed.get() > 0 {
            first_message = Some(Instant::now());
        }
        let mut conn = db.pool().get().await.unwrap();
        let stored: HashMap<i32, i64> =
            monitor_store::models::consumer_offsets::stored_offsets(&mut conn, &group, &topic, &partitions)
                .await
                .unwrap();
        if stats.consumed.get() as usize >= messages && stored.values().sum::<i64>() as usize >= messages {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "aggregator did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let agg_elapsed = first_message.map(|f| f.elapsed()).unwrap_or_else(|| started.elapsed());
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let agg_rate = messages as f64 / agg_elapsed.as_secs_f64();
    let flushes = stats.flushes.get().max(1);
    let rows = stats.rows_upserted.get();
    println!(
        "bare BaseConsumer (reference)  {counted} msgs in {:.2} s = {bare_rate:>9.0} msgs/s",
        bare_elapsed.as_secs_f64()
    );
    println!(
        "aggregator                     {messages} msgs in {:.2} s = {agg_rate:>9.0} msgs/s",
        agg_elapsed.as_secs_f64()
    );
    println!(
        "ratio aggregator / bare        {:.2} (target >= 0.80)",
        agg_rate / bare_rate
    );
    println!(
        "flushes {flushes}, SQL statements per flush {:.1} (lock partitions, read offsets, one rollup upsert, one offsets upsert), rows upserted {rows} ({:.0} per flush)",
        stats.flush_statements.get() as f64 / flushes as f64,
        rows as f64 / flushes as f64
    );
}
