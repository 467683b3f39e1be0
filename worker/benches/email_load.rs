//! The email channel's figures, against the shared PostgreSQL and the real
//! SMTP test server (aiosmtpd, `monitor_testkit::smtp`: STARTTLS required,
//! then AUTH PLAIN), which records when it accepted each message:
//!
//! 1. Latency: L incidents (default 200), one every 25 ms, each with its
//!    `opened` outbox row to an email channel without grouping; for each,
//!    from the outbox row's `created_at` (PostgreSQL's clock, same machine)
//!    to the SMTP server's acceptance (its clock): p50, p99, max, with the
//!    dispatcher's default poll (500 ms) unless `--poll-ms` says otherwise;
//!    and the SMTP exchange alone (connect, STARTTLS, login, message, as
//!    the attempt log times it).
//! 2. Burst: B incidents (default 500) committed at once to one email
//!    channel with a 2 s `group_wait`: one email listing B events, its
//!    size, and the time from the commit to its acceptance.
//!
//! `cargo bench -p monitor-worker --bench email_load -- [--latency 200] [--burst 500] [--poll-ms 500]`

mod outbox;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use monitor_core::blocklist::Blocklist;
use monitor_store::{
    DbPool,
    models::{
        notification_channel::{self, ChannelFields},
        notification_delivery,
    },
    testing::TestDb,
};
use monitor_testkit::{
    bench_number,
    smtp::{ReceivedMail, SMTP_PASSWORD, SMTP_USER, SmtpServer},
};
use monitor_worker::notify::{DispatchConfig, DispatchMetrics, Dispatcher};
use outbox::{incidents, ms_between, summary};
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

async fn channel(pool: &DbPool, smtp: &SmtpServer, name: &str, group_wait_ms: i32) -> Uuid {
    let fields = ChannelFields {
        name: name.into(),
        kind: "email".into(),
        settings: json!({
            "host": "localhost", "port": smtp.starttls_port, "tls": "starttls",
            "username": SMTP_USER, "password": SMTP_PASSWORD,
            "from": "Monitor <monitor@example.com>", "to": ["ops@example.com"],
            "ca_certificate_pem": smtp.ca_pem,
        }),
        enabled: true,
        group_wait_ms,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

fn accepted_at(mail: &ReceivedMail) -> DateTime<Utc> {
    Utc.timestamp_micros((mail.received_at * 1e6) as i64).unwrap()
}

#[tokio::main]
async fn main() {
    let latency_n = bench_number("--latency", 200);
    let burst = bench_number("--burst", 500);
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

    // 1. Latency.
    let smtp = SmtpServer::start(&[]).await;
    let single = channel(&pool, &smtp, "single", 0).await;
    let mut written = Vec::new();
    for _ in 0..latency_n {
        written.extend(incidents(&pool, single, 1).await);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let received = smtp.wait_for(latency_n, Duration::from_secs(120)).await;
    let mut latencies = Vec::new();
    let mut exchanges = Vec::new();
    let mut conn = pool.get().await.unwrap();
    for (outbox_id, dedup_key, created_at) in &written {
        let message_id = format!("<{}.{single}@monitor>", dedup_key.replace(':', "."));
        let mail = received
            .iter()
            .find(|mail| mail.message_id == message_id)
            .expect("every row arrived");
        latencies.push(ms_between(*created_at, accepted_at(mail)));
        let attempts = notification_delivery::attempts(&mut conn, *outbox_id).await.unwrap();
        assert_eq!(attempts.len(), 1, "delivered at the first attempt");
        exchanges.push(attempts[0].duration_ms as f64);
    }
    println!(
        "email latency, outbox row to SMTP acceptance, {latency_n} incidents, poll {poll_ms} ms: {}",
        summary(latencies)
    );
    println!(
        "the SMTP exchange alone (connect, STARTTLS, login, message; the attempt log, whole ms): {}",
        summary(exchanges)
    );

    // 2. A burst to a grouping channel: one email.
    let smtp = SmtpServer::start(&[]).await;
    let grouped = channel(&pool, &smtp, "grouped", 2_000).await;
    let written = incidents(&pool, grouped, burst).await;
    let committed = written.iter().map(|(_, _, at)| *at).max().unwrap();
    let received = smtp.wait_for(1, Duration::from_secs(60)).await;
    // Anything else would come at once: give it two polls to show up.
    tokio::time::sleep(Duration::from_millis(poll_ms * 2)).await;
    let received_all = smtp.received();
    assert_eq!(received_all.len(), 1, "one grouped email");
    let text = received[0].text.as_deref().unwrap_or_default();
    let listed = text.matches("[CRITICAL] job-").count();
    assert_eq!(listed, burst, "every event in it");
    println!(
        "burst of {burst} to one email channel with group_wait 2 s: 1 email listing {listed} events ({} KiB raw), {:.0} ms from commit to acceptance; subject {:?}",
        received[0].raw.len() / 1024,
        ms_between(committed, accepted_at(&received[0])),
        received[0].subject
    );

    stop.send(true).unwrap();
    running.await.unwrap();
}
