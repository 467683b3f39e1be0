//! The notification dispatcher's figures, against the shared PostgreSQL and
//! a webhook receiver on loopback that records when each request arrived:
//!
//! 1. Latency: L incidents (default 200), one every 25 ms, each with its
//!    `opened` outbox row to a channel without grouping; for each, from the
//!    outbox row's `created_at` (PostgreSQL's clock at the insert, same
//!    machine) to the receiver's receipt: p50, p99, max, with the
//!    dispatcher's default poll (500 ms) unless `--poll-ms` says otherwise.
//!    Reference: the same receiver answering bare reqwest POSTs of a body
//!    of the same size, one after another.
//! 2. Burst: B incidents (default 1 000) committed at once to one channel
//!    with the default `group_wait` (10 s): how many messages arrived (one,
//!    or the run fails), how many events they listed (B), and the time from
//!    the commit to the receipt.
//! 3. The same burst to a channel without grouping: B messages, the time
//!    from the commit to the last receipt and the rate, against bare
//!    reqwest sending B POSTs 50 at a time (the dispatcher's batch).
//!
//! `cargo bench -p monitor-worker --bench notify_load -- [--latency 200] [--burst 1000] [--poll-ms 500]`

mod outbox;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use chrono::{DateTime, Utc};
use monitor_core::blocklist::Blocklist;
use monitor_store::{
    DbPool,
    diesel_async::RunQueryDsl,
    models::notification_channel::{self, ChannelFields},
    testing::TestDb,
};
use monitor_testkit::bench_number;
use monitor_worker::notify::{DispatchConfig, DispatchMetrics, Dispatcher};
use outbox::{incidents, ms_between, summary};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

/// One request as the receiver saw it: when, its delivery id, its body.
#[derive(Clone)]
struct Receipt {
    at: DateTime<Utc>,
    delivery: String,
    body: Value,
}

type Receipts = Arc<Mutex<Vec<Receipt>>>;

async fn receiver() -> (String, Receipts) {
    let receipts: Receipts = Arc::default();
    let app = {
        let receipts = Arc::clone(&receipts);
        Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let receipts = Arc::clone(&receipts);
                async move {
                    let at = Utc::now();
                    let delivery = headers
                        .get("x-monitor-delivery")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    receipts.lock().unwrap().push(Receipt { at, delivery, body });
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receipts)
}

async fn channel(pool: &DbPool, name: &str, url: &str, group_wait_ms: i32) -> Uuid {
    let fields = ChannelFields {
        name: name.into(),
        kind: "webhook".into(),
        settings: json!({"url": url}),
        enabled: true,
        group_wait_ms,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

/// Waits until `receipts` holds `n` requests (at most `limit`).
async fn wait_receipts(receipts: &Receipts, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while receipts.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} requests arrived",
            receipts.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let latency_n = bench_number("--latency", 200);
    let burst = bench_number("--burst", 1000);
    let poll_ms = bench_number("--poll-ms", 500) as u64;
    let db = TestDb::new().await;
    let pool = db.pool();
    let config = DispatchConfig {
        poll: Duration::from_millis(poll_ms),
        blocklist: Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]),
        ..DispatchConfig::default()
    };
    let dispatcher = Dispatcher::new(pool.clone(), config, DispatchMetrics::default()).unwrap();
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(dispatcher.run(stopped));

    // 1. Latency, and the bare reference.
    let (url, receipts) = receiver().await;
    let single = channel(&pool, "single", &url, 0).await;
    let mut written = Vec::new();
    for _ in 0..latency_n {
        written.extend(incidents(&pool, single, 1).await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_receipts(&receipts, latency_n, Duration::from_secs(60)).await;
    let arrived = receipts.lock().unwrap().clone();
    let latencies: Vec<f64> = written
        .iter()
        .map(|(_, dedup_key, created_at)| {
            let receipt = arrived
                .iter()
                .find(|receipt| receipt.delivery == format!("{dedup_key}:{single}"))
                .expect("every row arrived");
            ms_between(*created_at, receipt.at)
        })
        .collect();
    println!(
        "latency, outbox row to receipt, {latency_n} incidents, poll {poll_ms} ms: {}",
        summary(latencies)
    );
    let body = serde_json::to_vec(&arrived[0].body).unwrap();
    let client = reqwest::Client::new();
    let mut bare = Vec::new();
    for _ in 0..latency_n {
        let started = Instant::now();
        let response = client.post(&url).body(body.clone()).send().await.unwrap();
        assert!(response.status().is_success());
        bare.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    println!("reference, bare reqwest POST of the same body: {}", summary(bare));

    // 2. A burst to a grouping channel.
    let (url, receipts) = receiver().await;
    let grouped = channel(&pool, "grouped", &url, 10_000).await;
    let written = incidents(&pool, grouped, burst).await;
    let committed = written.iter().map(|(_, _, at)| *at).max().unwrap();
    wait_receipts(&receipts, 1, Duration::from_secs(60)).await;
    // Anything else would come at once: give it a poll to show up.
    tokio::time::sleep(Duration::from_millis(poll_ms * 2)).await;
    let arrived = receipts.lock().unwrap().clone();
    assert_eq!(arrived.len(), 1, "one grouped message");
    let listed = arrived[0].body["events"].as_array().map(Vec::len).unwrap_or(1);
    assert_eq!(listed, burst, "every event in it");
    println!(
        "burst of {burst} to one channel with group_wait 10 s: {} message listing {listed} events, {:.0} ms from commit to receipt",
        arrived.len(),
        ms_between(committed, arrived[0].at)
    );

    // 3. The same burst, one message each, against bare reqwest.
    let (url, receipts) = receiver().await;
    let alone = channel(&pool, "alone", &url, 0).await;
    let written = incidents(&pool, alone, burst).await;
    let committed = written.iter().map(|(_, _, at)| *at).max().unwrap();
    wait_receipts(&receipts, burst, Duration::from_secs(120)).await;
    let last = receipts.lock().unwrap().iter().map(|receipt| receipt.at).max().unwrap();
    let dispatched = ms_between(committed, last) / 1000.0;
    let started = Instant::now();
    let sends = (0..burst).map(|_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move { client.post(&url).body(body).send().await.unwrap().status() }
    });
    use futures::StreamExt as _;
    let statuses: Vec<_> = futures::stream::iter(sends).buffer_unordered(50).collect().await;
    assert!(statuses.iter().all(|status| status.is_success()));
    let reference = started.elapsed().as_secs_f64();
    println!(
        "burst of {burst} to one channel without grouping: {burst} messages in {dispatched:.2} s = {:.0} msgs/s; bare reqwest, 50 at a time: {reference:.2} s = {:.0} msgs/s; ratio {:.2}",
        burst as f64 / dispatched,
        burst as f64 / reference,
        reference / dispatched
    );

    stop.send(true).unwrap();
    running.await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let undelivered: i64 = {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let rows: Vec<Count> =
            diesel::sql_query("SELECT count(*) AS n FROM outbox_deliveries WHERE delivered_at IS NULL")
                .load(&mut conn)
                .await
                .unwrap();
        rows[0].n
    };
    assert_eq!(undelivered, 0, "every delivery recorded as delivered");
    println!(
        "every one of {} deliveries recorded as delivered",
        latency_n + 2 * burst
    );
}
