//! The notification dispatcher in process against a real PostgreSQL and a
//! recording receiver on loopback: an incident's outbox row reaches the
//! webhook with the documented shape, a valid signature and the delivery
//! id; a 500 is retried with the same id; a 400 is given up at once, logged
//! and put on the incident's timeline; a blocked address is refused.

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
use monitor_worker::notify::{DispatchConfig, DispatchMetrics, Dispatcher};
use serde_json::{Value, json};
use uuid::Uuid;

/// What the receiver got: (delivery id, signature, body).
type Received = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A receiver answering the statuses of `answers` in turn (then 200).
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
    let fields = ChannelFields {
        name: name.into(),
        kind: "webhook".into(),
        settings: json!({"url": url, "signing_secret": "0123456789abcdef"}),
        enabled: true,
        group_wait_ms: 0,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

/// An open incident and its `opened` outbox row to `channels`; the outbox id.
async fn incident_to(pool: &DbPool, channels: &[Uuid]) -> (Uuid, i64) {
    let mut conn = pool.get().await.unwrap();
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
        .execute(&mut conn)
        .await
        .unwrap();
    incident::enqueue(
        &mut conn,
        &NewOutboxEntry {
            dedup_key: incident::dedup_key(id, "opened"),
            incident_id: id,
            event: "opened".into(),
            channel_ids: channels.iter().copied().map(Some).collect(),
        },
    )
    .await
    .unwrap();
    let outbox = incident::outbox(&mut conn, id).await.unwrap();
    (id, outbox[0].id)
}

fn dispatcher(pool: &DbPool, blocklist: Blocklist) -> Dispatcher {
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
    Dispatcher::new(pool.clone(), config, DispatchMetrics::default()).unwrap()
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
    let dispatcher = dispatcher(&pool, loopback());
    drain(&dispatcher, &pool, outbox_id).await;

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
    let (url, received) = receiver(vec![400]).await;
    let hook = channel(&pool, "refusing hook", &url).await;
    let (incident_id, outbox_id) = incident_to(&pool, &[hook]).await;
    drain(&dispatcher(&pool, loopback()), &pool, outbox_id).await;
    assert_eq!(received.lock().unwrap().len(), 1, "not retried");
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
