//! The notification dispatcher in process against a real PostgreSQL and a
//! recording receiver on loopback: an incident's outbox row reaches the
//! webhook with the documented shape, a valid signature and the delivery
//! id; a 500 is retried with the same id; a 400 is given up at once, logged
//! and put on the incident's timeline; a blocked address is refused; a
//! channel's `group_wait` makes one message of many events, retried whole;
//! and a dispatcher process killed -9 while sending is followed by exactly
//! one more send with the same delivery id.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use chrono::Utc;
use monitor_core::blocklist::Blocklist;
use monitor_notify::{retry::RetryPolicy, signature};
use monitor_store::{
    DbPool,
    diesel_async::RunQueryDsl,
    models::{
        incident::{self, IncidentRow, NewOutboxEntry},
        notification_channel::{self, ChannelFields},
        notification_delivery,
    },
    schema::incidents,
    testing::TestDb,
};
use monitor_testkit::{
    fresh,
    kafka::{create_topic, shared_brokers},
    wait_until,
};
use monitor_worker::notify::{ChannelLabels, DispatchConfig, DispatchMetrics, Dispatcher};
use serde_json::{Value, json};
use uuid::Uuid;

/// What the receiver got: (delivery id, signature, body).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

/// [`receiver`]'s answer meaning: record the request, never answer it.
const HANG: u16 = 0;

/// A receiver answering the statuses of `answers` in turn (then 200;
/// [`HANG`]: no answer at all).
async fn receiver(answers: Vec<u16>) -> (String, Received) {
    let received: Received = Arc::default();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = {
        let received = Arc::clone(&received);
        Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let received = Arc::clone(&received);
                let answers = Arc::clone(&answers);
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .unwrap_or_default()
                    };
                    let body_text = String::from_utf8(body.to_vec()).unwrap();
                    received.lock().unwrap().push((
                        header("x-monitor-delivery"),
                        header("x-monitor-signature"),
                        json!({"raw": body_text, "json": serde_json::from_slice::<Value>(&body).unwrap()}),
                    ));
                    let code = answers.lock().unwrap().next().unwrap_or(200);
                    if code == HANG {
                        std::future::pending::<()>().await;
                    }
                    (StatusCode::from_u16(code).unwrap(), "ok")
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn channel(pool: &DbPool, name: &str, url: &str) -> Uuid {
    grouping_channel(pool, name, url, 0).await
}

/// A signed webhook channel sending what is due within `group_wait_ms` together.
async fn grouping_channel(pool: &DbPool, name: &str, url: &str, group_wait_ms: i32) -> Uuid {
    let fields = ChannelFields {
        name: name.into(),
        kind: "webhook".into(),
        settings: json!({"url": url, "signing_secret": "0123456789abcdef"}),
        enabled: true,
        group_wait_ms,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

/// An open incident and its `opened` outbox row to `channels`; the outbox id.
async fn incident_to(pool: &DbPool, channels: &[Uuid]) -> (Uuid, i64) {
    incident_in(&mut pool.get().await.unwrap(), channels).await
}

/// `n` open incidents and their outbox rows to `channels`, written in one
/// transaction: committed together, so whatever claims the first after a
/// `group_wait` finds them all due.
async fn incidents_to(pool: &DbPool, channels: &[Uuid], n: usize) -> Vec<(Uuid, i64)> {
    use monitor_store::diesel_async::AsyncConnection;
    let channels = channels.to_vec();
    let mut conn = pool.get().await.unwrap();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let mut written = Vec::new();
        for _ in 0..n {
            written.push(incident_in(conn, &channels).await);
        }
        Ok(written)
    })
    .await
    .unwrap()
}

async fn incident_in(conn: &mut monitor_store::diesel_async::AsyncPgConnection, channels: &[Uuid]) -> (Uuid, i64) {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let row = IncidentRow {
        id,
        rule_id: None,
        rule_name: "web down".into(),
        job_id: Uuid::now_v7(),
        job_name: "shop".into(),
        severity: "critical".into(),
        cause: "down".into(),
        opened_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        failing_locations: vec![Some("eu-1".into())],
        first_failure: Some(
            json!({"outcome": "CHECK_OUTCOME_HTTP_STATUS", "status_code": 500, "error": "", "location": "eu-1"}),
        ),
        detected_check_end: Some(now),
        silenced: false,
        flapping: false,
        updated_at: now,
    };
    diesel::insert_into(incidents::table)
        .values(&row)
        .execute(conn)
        .await
        .unwrap();
    incident::enqueue(
        conn,
        &NewOutboxEntry {
            dedup_key: incident::dedup_key(id, "opened"),
            incident_id: id,
            event: "opened".into(),
            channel_ids: channels.iter().copied().map(Some).collect(),
        },
    )
    .await
    .unwrap();
    let outbox = incident::outbox(conn, id).await.unwrap();
    (id, outbox[0].id)
}

fn dispatcher(pool: &DbPool, blocklist: Blocklist) -> Dispatcher {
    dispatcher_counting(pool, blocklist, DispatchMetrics::default())
}

/// A dispatcher counting into `metrics` (a clone shares the families).
fn dispatcher_counting(pool: &DbPool, blocklist: Blocklist, metrics: DispatchMetrics) -> Dispatcher {
    let config = DispatchConfig {
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            max: Duration::from_millis(40),
            give_up_after: Duration::from_secs(60),
        },
        send_timeout: Duration::from_secs(5),
        blocklist,
        dashboard_url: Some("https://monitor.example.com/ui/".into()),
        ..DispatchConfig::default()
    };
    Dispatcher::new(pool.clone(), config, metrics).unwrap()
}

/// The consecutive-failures gauge of webhook channel `channel`.
fn consecutive_failures(metrics: &DispatchMetrics, channel: Uuid) -> i64 {
    metrics
        .consecutive_failures
        .get_or_create(&ChannelLabels {
            channel_id: channel.to_string(),
            kind: "webhook".into(),
        })
        .get()
}

fn loopback() -> Blocklist {
    Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
}

/// Dispatches until nothing is pending for `outbox_id` (at most 5 s).
async fn drain(dispatcher: &Dispatcher, pool: &DbPool, outbox_id: i64) {
    for _ in 0..100 {
        dispatcher.dispatch_once().await.unwrap();
        let rows = notification_delivery::deliveries(&mut pool.get().await.unwrap(), outbox_id)
            .await
            .unwrap();
        if rows
            .iter()
            .all(|row| row.delivered_at.is_some() || row.given_up_at.is_some())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries of {outbox_id} still pending");
}

#[tokio::test]
async fn an_opened_incident_reaches_the_webhook_signed_after_a_retry() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![500]).await;
    let hook = channel(&pool, "hook", &url).await;
    let (incident_id, outbox_id) = incident_to(&pool, &[hook]).await;
    let metrics = DispatchMetrics::default();
    let dispatcher = dispatcher_counting(&pool, loopback(), metrics.clone());
    dispatcher.dispatch_once().await.unwrap();
    assert_eq!(consecutive_failures(&metrics, hook), 1, "the 500");
    drain(&dispatcher, &pool, outbox_id).await;
    assert_eq!(consecutive_failures(&metrics, hook), 0, "delivered since");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "one 500, then delivered");
    let delivery = format!("{incident_id}:opened:{hook}");
    for (id, sig, body) in &received {
        assert_eq!(id, &delivery, "the same delivery id on every attempt");
        assert!(signature::verify(
            "0123456789abcdef",
            sig,
            body["raw"].as_str().unwrap().as_bytes()
        ));
    }
    assert_eq!(
        received[0].2["raw"], received[1].2["raw"],
        "the same body on every attempt"
    );
    let body = &received[1].2["json"];
    assert_eq!(body["version"], 1);
    assert_eq!(body["event"], "opened");
    assert_eq!(body["incident"]["id"], incident_id.to_string());
    assert_eq!(body["incident"]["failing_locations"], json!(["eu-1"]));
    assert_eq!(body["incident"]["first_failure"]["status_code"], 500);
    assert_eq!(
        body["incident"]["url"],
        format!("https://monitor.example.com/ui/#/incidents/{incident_id}")
    );
    assert_eq!(body["job"]["name"], "shop");

    let attempts = notification_delivery::attempts(&mut pool.get().await.unwrap(), outbox_id)
        .await
        .unwrap();
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt, a.http_status, a.outcome.as_str()))
        .collect();
    assert_eq!(seen, [(1, Some(500), "retry"), (2, Some(200), "delivered")]);
}

#[tokio::test]
async fn a_400_is_given_up_at_once_and_the_timeline_says_so() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![400, 400]).await;
    let hook = channel(&pool, "refusing hook", &url).await;
    let metrics = DispatchMetrics::default();
    let dispatcher = dispatcher_counting(&pool, loopback(), metrics.clone());
    let (incident_id, outbox_id) = incident_to(&pool, &[hook]).await;
    let (_, second) = incident_to(&pool, &[hook]).await;
    drain(&dispatcher, &pool, outbox_id).await;
    drain(&dispatcher, &pool, second).await;
    assert_eq!(received.lock().unwrap().len(), 2, "neither retried");
    assert_eq!(consecutive_failures(&metrics, hook), 2, "two failures in a row");
    let mut conn = pool.get().await.unwrap();
    let rows = notification_delivery::deliveries(&mut conn, outbox_id).await.unwrap();
    assert!(rows[0].given_up_at.is_some());
    assert_eq!(rows[0].last_error, "HTTP 400");
    let timeline = incident::timeline(&mut conn, incident_id).await.unwrap();
    let given_up: Vec<_> = timeline
        .iter()
        .filter(|event| event.kind == "notification_given_up")
        .collect();
    assert_eq!(given_up.len(), 1);
    assert!(
        given_up[0].detail.contains("\"refusing hook\""),
        "{}",
        given_up[0].detail
    );
}

#[tokio::test]
async fn a_blocked_address_is_refused_without_a_request() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![]).await;
    let hook = channel(&pool, "loopback", &url).await;
    let (_, outbox_id) = incident_to(&pool, &[hook]).await;
    // This dispatcher was not told to open loopback.
    drain(&dispatcher(&pool, Blocklist::default()), &pool, outbox_id).await;
    assert!(received.lock().unwrap().is_empty());
    let mut conn = pool.get().await.unwrap();
    let attempts = notification_delivery::attempts(&mut conn, outbox_id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "given_up");
    assert!(
        attempts[0].error.contains("blocked network 127.0.0.0/8"),
        "{}",
        attempts[0].error
    );
}

#[tokio::test]
async fn two_dispatchers_never_send_a_row_twice() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![]).await;
    let hook = channel(&pool, "hook", &url).await;
    let mut outbox_ids = Vec::new();
    for _ in 0..40 {
        outbox_ids.push(incident_to(&pool, &[hook]).await.1);
    }
    let (a, b) = (dispatcher(&pool, loopback()), dispatcher(&pool, loopback()));
    for _ in 0..5 {
        let (x, y) = tokio::join!(a.dispatch_once(), b.dispatch_once());
        x.unwrap();
        y.unwrap();
    }
    let received = received.lock().unwrap().clone();
    let mut ids: Vec<_> = received.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, 40, "every row sent");
    assert_eq!(ids.len(), 40, "none twice");
}

/// Dispatches until every delivery of `outbox_ids` is done (at most 10 s).
async fn drain_all(dispatcher: &Dispatcher, pool: &DbPool, outbox_ids: &[i64]) {
    for _ in 0..200 {
        dispatcher.dispatch_once().await.unwrap();
        if all_done(pool, outbox_ids).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries still pending");
}

async fn all_done(pool: &DbPool, outbox_ids: &[i64]) -> bool {
    let mut conn = pool.get().await.unwrap();
    for outbox_id in outbox_ids {
        let rows = notification_delivery::deliveries(&mut conn, *outbox_id).await.unwrap();
        if rows
            .iter()
            .any(|row| row.delivered_at.is_none() && row.given_up_at.is_none())
        {
            return false;
        }
    }
    true
}

/// The incident ids a webhook body tells of (one, or a group's).
fn incident_ids(body: &Value) -> Vec<String> {
    match body["event"].as_str() {
        Some("group") => body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["incident"]["id"].as_str().unwrap().to_owned())
            .collect(),
        _ => vec![body["incident"]["id"].as_str().unwrap().to_owned()],
    }
}

#[tokio::test]
async fn events_due_within_the_group_wait_go_out_as_one_message_retried_whole() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![500]).await;
    let hook = grouping_channel(&pool, "grouped", &url, 300).await;
    let written = incidents_to(&pool, &[hook], 30).await;
    let outbox_ids: Vec<i64> = written.iter().map(|(_, outbox)| *outbox).collect();
    drain_all(&dispatcher(&pool, loopback()), &pool, &outbox_ids).await;

    let mut conn = pool.get().await.unwrap();
    let mut batches = Vec::new();
    for outbox_id in &outbox_ids {
        let rows = notification_delivery::deliveries(&mut conn, *outbox_id).await.unwrap();
        batches.push(rows[0].batch_id.expect("sent in a batch"));
        let attempts = notification_delivery::attempts(&mut conn, *outbox_id).await.unwrap();
        let seen: Vec<_> = attempts
            .iter()
            .map(|a| (a.attempt, a.http_status, a.outcome.as_str()))
            .collect();
        assert_eq!(seen, [(1, Some(500), "retry"), (2, Some(200), "delivered")]);
    }
    batches.dedup();
    assert_eq!(batches.len(), 1, "all 30 in one batch");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "one message, failed once and sent again");
    let delivery = format!("group:{}:{hook}", batches[0]);
    for (id, sig, body) in &received {
        assert_eq!(id, &delivery);
        assert!(signature::verify(
            "0123456789abcdef",
            sig,
            body["raw"].as_str().unwrap().as_bytes()
        ));
    }
    assert_eq!(received[0].2["raw"], received[1].2["raw"], "the same batch both times");
    let body = &received[1].2["json"];
    assert_eq!(body["event"], "group");
    assert_eq!(body["count"], 30);
    let mut told = incident_ids(body);
    told.sort();
    let mut expected: Vec<String> = written.iter().map(|(id, _)| id.to_string()).collect();
    expected.sort();
    assert_eq!(told, expected);
}

#[tokio::test]
async fn events_after_a_batch_went_out_make_the_next_one_and_a_lone_event_its_own_body() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![]).await;
    let hook = grouping_channel(&pool, "grouped", &url, 200).await;
    let dispatcher = dispatcher(&pool, loopback());
    let mut sent_counts = Vec::new();
    for n in [5, 3, 1] {
        let written = incidents_to(&pool, &[hook], n).await;
        let outbox_ids: Vec<i64> = written.iter().map(|(_, outbox)| *outbox).collect();
        drain_all(&dispatcher, &pool, &outbox_ids).await;
        let received = received.lock().unwrap().clone();
        let (id, _, last) = received.last().unwrap();
        sent_counts.push(incident_ids(&last["json"]).len());
        if n == 1 {
            assert_eq!(
                last["json"]["event"], "opened",
                "a batch of one is the event's own body"
            );
            assert_eq!(id, &format!("{}:opened:{hook}", written[0].0));
        }
    }
    assert_eq!(sent_counts, [5, 3, 1]);
    assert_eq!(received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_channel_without_group_wait_gets_each_event_alone() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![]).await;
    let hook = channel(&pool, "single", &url).await;
    let written = incidents_to(&pool, &[hook], 4).await;
    let outbox_ids: Vec<i64> = written.iter().map(|(_, outbox)| *outbox).collect();
    drain_all(&dispatcher(&pool, loopback()), &pool, &outbox_ids).await;
    let received = received.lock().unwrap().clone();
    let mut ids: Vec<String> = received.iter().map(|(id, _, _)| id.clone()).collect();
    ids.sort();
    let mut expected: Vec<String> = written
        .iter()
        .map(|(incident, _)| format!("{incident}:opened:{hook}"))
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
}

/// Kills -9 a dispatcher process while the receiver holds its request for
/// `n` events open (to a channel with `group_wait_ms`), starts another and
/// checks the message went out exactly once more, the same.
async fn kill_drill(group_wait_ms: i32, n: usize) {
    let db = TestDb::new().await;
    let pool = db.pool();
    // The first request is held open until the dispatcher dies.
    let (url, received) = receiver(vec![HANG]).await;
    let hook = grouping_channel(&pool, "hook", &url, group_wait_ms).await;
    let topic = fresh("notify-checks");
    create_topic(&shared_brokers(), &topic, 1, 1).await;
    let group = fresh("notify");
    let brokers = shared_brokers();
    let flags = [
        "--database-url",
        &db.url,
        "--kafka-brokers",
        &brokers,
        "--kafka-topic",
        &topic,
        "--group-id",
        &group,
        "--dispatch-poll-ms",
        "50",
        "--dispatch-lease-ms",
        "1000",
        "--notify-timeout-ms",
        "500",
        "--notify-allow-net",
        "127.0.0.0/8",
    ];
    let first = common::spawn_worker("alert", &flags);
    let written = incidents_to(&pool, &[hook], n).await;
    let outbox_ids: Vec<i64> = written.iter().map(|(_, outbox)| *outbox).collect();
    wait_until(
        "the first attempt reaches the receiver",
        Duration::from_secs(30),
        || async {
            if received.lock().unwrap().is_empty() {
                Err("nothing received".to_string())
            } else {
                Ok(())
            }
        },
    )
    .await;
    first.kill_9().await;

    let second = common::spawn_worker("alert", &flags);
    wait_until("the deliveries are recorded", Duration::from_secs(30), || async {
        if all_done(&pool, &outbox_ids).await {
            Ok(())
        } else {
            Err("still pending".to_string())
        }
    })
    .await;
    let log = second.terminate().await;

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "sent once more after the crash, not again: {log}");
    let mut conn = pool.get().await.unwrap();
    let delivery = match n {
        1 => format!("{}:opened:{hook}", written[0].0),
        _ => {
            let rows = notification_delivery::deliveries(&mut conn, outbox_ids[0])
                .await
                .unwrap();
            format!("group:{}:{hook}", rows[0].batch_id.unwrap())
        }
    };
    assert!(received.iter().all(|(id, _, _)| id == &delivery));
    assert_eq!(received[0].2["raw"], received[1].2["raw"]);
    assert_eq!(incident_ids(&received[1].2["json"]).len(), n);
    for outbox_id in &outbox_ids {
        let attempts = notification_delivery::attempts(&mut conn, *outbox_id).await.unwrap();
        let seen: Vec<_> = attempts
            .iter()
            .map(|a| (a.attempt, a.http_status, a.outcome.as_str()))
            .collect();
        // The killed attempt was never recorded; the second claim's was.
        assert_eq!(seen, [(2, Some(200), "delivered")]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_while_sending_is_followed_by_one_more_send_with_the_same_id() {
    kill_drill(0, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_while_sending_a_batch_is_followed_by_the_same_batch_once_more() {
    kill_drill(200, 12).await;
}

#[tokio::test]
async fn two_dispatchers_never_split_or_repeat_a_batch() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let (url, received) = receiver(vec![]).await;
    let hook = grouping_channel(&pool, "grouped", &url, 200).await;
    let written = incidents_to(&pool, &[hook], 40).await;
    let outbox_ids: Vec<i64> = written.iter().map(|(_, outbox)| *outbox).collect();
    let (a, b) = (dispatcher(&pool, loopback()), dispatcher(&pool, loopback()));
    while !all_done(&pool, &outbox_ids).await {
        let (x, y) = tokio::join!(a.dispatch_once(), b.dispatch_once());
        x.unwrap();
        y.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "one message");
    assert_eq!(incident_ids(&received[0].2["json"]).len(), 40);
}
