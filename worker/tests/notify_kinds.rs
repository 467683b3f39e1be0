//! The Discord, Teams, Telegram and PagerDuty channels delivered by the
//! dispatcher against a real PostgreSQL and the mock's recording receiver,
//! which checks each request's documented shape: the fields arrive; a
//! PagerDuty incident keeps its id as dedup key through opened,
//! acknowledged and resolved and across a retry; a 429's wait (header or
//! Telegram's body) is waited; a receiver that never answers is a timed
//! out attempt and a retry; a refusal in Telegram's form is given up; a
//! batch is one listed message.

use std::time::Duration;

use chrono::Utc;
use diesel::{ExpressionMethods, QueryDsl};
use monitor_core::blocklist::Blocklist;
use monitor_notify::retry::RetryPolicy;
use monitor_store::{
    DbPool,
    diesel_async::{AsyncPgConnection, RunQueryDsl},
    models::{
        incident::{self, IncidentRow, NewOutboxEntry},
        notification_channel::{self, ChannelFields},
        notification_delivery::{self, AttemptRow},
    },
    schema::incidents,
    testing::TestDb,
};
use monitor_testkit::mock::{HookRequest, HookScript, MockServer};
use monitor_worker::notify::{DispatchConfig, DispatchMetrics, Dispatcher};
use serde_json::{Value, json};
use uuid::Uuid;

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn channel(pool: &DbPool, name: &str, kind: &str, settings: Value, group_wait_ms: i32) -> Uuid {
    let fields = ChannelFields {
        name: name.into(),
        kind: kind.into(),
        settings,
        enabled: true,
        group_wait_ms,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

/// The four kinds, each to its own receiver on `mock`, named after the kind.
async fn four_channels(pool: &DbPool, mock: &MockServer) -> [Uuid; 4] {
    [
        channel(
            pool,
            "discord",
            "discord",
            json!({"webhook_url": mock.hook_url("discord", "discord")}),
            0,
        )
        .await,
        channel(
            pool,
            "teams",
            "teams",
            json!({"webhook_url": mock.hook_url("teams", "teams")}),
            0,
        )
        .await,
        channel(
            pool,
            "telegram",
            "telegram",
            json!({"bot_token": TOKEN, "chat_id": "-1001234567890", "api_url": mock.hook_url("telegram", "telegram")}),
            0,
        )
        .await,
        channel(
            pool,
            "pagerduty",
            "pagerduty",
            json!({"routing_key": KEY, "events_url": mock.hook_url("pagerduty", "pagerduty")}),
            0,
        )
        .await,
    ]
}

async fn open_incident(conn: &mut AsyncPgConnection, job: &str) -> Uuid {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let row = IncidentRow {
        id,
        rule_id: None,
        rule_name: "web down".into(),
        job_id: Uuid::now_v7(),
        job_name: job.into(),
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
    id
}

/// Writes `event`'s outbox row for `incident` to `channels`; its id.
async fn notify(conn: &mut AsyncPgConnection, incident: Uuid, event: &str, channels: &[Uuid]) -> i64 {
    incident::enqueue(
        conn,
        &NewOutboxEntry {
            dedup_key: incident::dedup_key(incident, event),
            incident_id: incident,
            event: event.into(),
            channel_ids: channels.iter().copied().map(Some).collect(),
        },
    )
    .await
    .unwrap();
    let outbox = incident::outbox(conn, incident).await.unwrap();
    outbox.iter().find(|row| row.event == event).unwrap().id
}

fn dispatcher(pool: &DbPool, retry_base: Duration, send_timeout: Duration) -> Dispatcher {
    let config = DispatchConfig {
        retry: RetryPolicy {
            base: retry_base,
            max: retry_base * 2,
            give_up_after: Duration::from_secs(600),
        },
        send_timeout,
        blocklist: Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]),
        dashboard_url: Some("https://monitor.example.com/ui/".into()),
        ..DispatchConfig::default()
    };
    Dispatcher::new(pool.clone(), config, DispatchMetrics::default()).unwrap()
}

fn fast(pool: &DbPool) -> Dispatcher {
    dispatcher(pool, Duration::from_millis(20), Duration::from_secs(5))
}

/// Dispatches until every delivery of `outbox_ids` is delivered or given
/// up; a deadline (`limit`) only ends a test that would hang.
async fn drain(dispatcher: &Dispatcher, pool: &DbPool, outbox_ids: &[i64], limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        dispatcher.dispatch_once().await.unwrap();
        let mut conn = pool.get().await.unwrap();
        let mut done = true;
        for id in outbox_ids {
            let rows = notification_delivery::deliveries(&mut conn, *id).await.unwrap();
            done &= rows.iter().all(|r| r.delivered_at.is_some() || r.given_up_at.is_some());
        }
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries of {outbox_ids:?} still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn attempts(pool: &DbPool, outbox_id: i64, channel: Uuid) -> Vec<AttemptRow> {
    notification_delivery::attempts(&mut pool.get().await.unwrap(), outbox_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.channel_id == channel)
        .collect()
}

fn accepted(requests: &[HookRequest]) {
    for request in requests {
        assert_eq!(
            request.problem, None,
            "the mock refused {}: {}",
            request.path, request.body
        );
    }
}

#[tokio::test]
async fn each_kind_arrives_in_its_documented_shape() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    let channels = four_channels(&pool, &mock).await;
    let mut conn = pool.get().await.unwrap();
    let incident = open_incident(&mut conn, "shop <eu>").await;
    let outbox = notify(&mut conn, incident, "opened", &channels).await;
    drain(&fast(&pool), &pool, &[outbox], Duration::from_secs(20)).await;

    let link = format!("https://monitor.example.com/ui/#/incidents/{incident}");
    let discord = mock.received("discord").await.received;
    accepted(&discord);
    assert_eq!(discord.len(), 1);
    assert_eq!(discord[0].status, Some(204));
    assert!(
        discord[0].body["content"]
            .as_str()
            .unwrap()
            .contains("shop <eu> is down (eu-1)")
    );
    assert_eq!(discord[0].body["embeds"][0]["url"], link.as_str());
    assert_eq!(discord[0].body["allowed_mentions"]["parse"], json!([]));

    let teams = mock.received("teams").await.received;
    accepted(&teams);
    assert_eq!(teams[0].status, Some(202));
    let card = &teams[0].body["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["version"], "1.4");
    assert_eq!(card["content"]["actions"][0]["url"], link.as_str());

    let telegram = mock.received("telegram").await.received;
    accepted(&telegram);
    assert_eq!(telegram[0].status, Some(200));
    assert_eq!(
        telegram[0].path,
        format!("/hooks/telegram/telegram/bot{TOKEN}/sendMessage")
    );
    assert_eq!(telegram[0].body["chat_id"], "-1001234567890");
    assert_eq!(telegram[0].body["parse_mode"], "HTML");
    assert!(
        telegram[0].body["text"]
            .as_str()
            .unwrap()
            .contains("shop &lt;eu&gt; is down")
    );

    let pagerduty = mock.received("pagerduty").await.received;
    accepted(&pagerduty);
    assert_eq!(pagerduty[0].status, Some(202));
    let event = &pagerduty[0].body;
    assert_eq!(event["routing_key"], KEY);
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], incident.to_string());
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["payload"]["source"], "shop <eu>");
    assert_eq!(event["payload"]["custom_details"]["first_failure"]["status_code"], 500);
    assert_eq!(event["links"][0]["href"], link.as_str());

    // Every request carries the delivery id, and every attempt is logged delivered.
    for (channel, request) in channels
        .iter()
        .zip([&discord[0], &teams[0], &telegram[0], &pagerduty[0]])
    {
        assert_eq!(
            request.headers["x-monitor-delivery"],
            [format!("{incident}:opened:{channel}")]
        );
        let logged = attempts(&pool, outbox, *channel).await;
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].outcome, "delivered");
    }
}

#[tokio::test]
async fn pagerduty_keeps_the_incident_id_through_its_life_and_a_retry() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    let pagerduty = four_channels(&pool, &mock).await[3];
    mock.script_hook(
        "pagerduty",
        &HookScript {
            fail_first: 1,
            status: Some(500),
            retry_after: None,
            hang: false,
        },
    )
    .await;
    let dispatcher = fast(&pool);
    let mut conn = pool.get().await.unwrap();
    let incident = open_incident(&mut conn, "shop").await;
    let opened = notify(&mut conn, incident, "opened", &[pagerduty]).await;
    drain(&dispatcher, &pool, &[opened], Duration::from_secs(20)).await;

    diesel::update(incidents::table.find(incident))
        .set((
            incidents::acknowledged_at.eq(Some(Utc::now())),
            incidents::acknowledged_by.eq(Some("alice")),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    let acknowledged = notify(&mut conn, incident, "acknowledged", &[pagerduty]).await;
    drain(&dispatcher, &pool, &[acknowledged], Duration::from_secs(20)).await;

    diesel::update(incidents::table.find(incident))
        .set(incidents::resolved_at.eq(Some(Utc::now())))
        .execute(&mut conn)
        .await
        .unwrap();
    let resolved = notify(&mut conn, incident, "resolved", &[pagerduty]).await;
    // A reminder decided before the resolve but sent after it must not
    // trigger a second PagerDuty incident: it resolves too.
    let late = notify(&mut conn, incident, "reminder", &[pagerduty]).await;
    drain(&dispatcher, &pool, &[resolved, late], Duration::from_secs(20)).await;

    let received = mock.received("pagerduty").await.received;
    accepted(&received);
    let seen: Vec<_> = received
        .iter()
        .map(|r| {
            (
                r.body["event_action"].as_str().unwrap().to_owned(),
                r.status,
                r.scripted,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("trigger".to_owned(), Some(500), true),
            ("trigger".to_owned(), Some(202), false),
            ("acknowledge".to_owned(), Some(202), false),
            ("resolve".to_owned(), Some(202), false),
            ("resolve".to_owned(), Some(202), false),
        ]
    );
    for request in &received {
        assert_eq!(request.body["dedup_key"], incident.to_string(), "{}", request.body);
    }
    assert_eq!(received[0].body, received[1].body, "the retry sends the same event");
    let logged: Vec<_> = attempts(&pool, opened, pagerduty)
        .await
        .iter()
        .map(|a| (a.http_status, a.outcome.clone()))
        .collect();
    assert_eq!(
        logged,
        [(Some(500), "retry".to_owned()), (Some(202), "delivered".to_owned())]
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for_in_a_header_or_telegrams_body() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    let [discord, _, telegram, _] = four_channels(&pool, &mock).await;
    const ASKED: u64 = 2;
    for name in ["discord", "telegram"] {
        mock.script_hook(
            name,
            &HookScript {
                fail_first: 1,
                status: Some(429),
                retry_after: Some(ASKED),
                hang: false,
            },
        )
        .await;
    }
    // Backoff alone would wait 30 to 60 s: only the asked wait lets the
    // retry come within the deadline.
    let dispatcher = dispatcher(&pool, Duration::from_secs(60), Duration::from_secs(5));
    let mut conn = pool.get().await.unwrap();
    let incident = open_incident(&mut conn, "shop").await;
    let outbox = notify(&mut conn, incident, "opened", &[discord, telegram]).await;
    drain(&dispatcher, &pool, &[outbox], Duration::from_secs(25)).await;

    let asked = chrono::Duration::seconds(ASKED as i64);
    let delivery = notification_delivery::deliveries(&mut conn, outbox).await.unwrap();
    for (channel, name) in [(discord, "discord"), (telegram, "telegram")] {
        let logged = attempts(&pool, outbox, channel).await;
        let seen: Vec<_> = logged.iter().map(|a| (a.http_status, a.outcome.as_str())).collect();
        assert_eq!(seen[0], (Some(429), "retry"), "{name}");
        assert_eq!(seen[1].1, "delivered", "{name}");
        // The retry was scheduled the asked wait after the first attempt
        // ended, so it started at least that long after the first started.
        assert!(
            logged[1].at - logged[0].at >= asked,
            "{name}: {:?}",
            logged[1].at - logged[0].at
        );
        let received = mock.received(name).await.received;
        assert_eq!(received.len(), 2, "{name}");
        accepted(&received[1..]);
        assert!(
            received[1].at_unix_ms - received[0].at_unix_ms >= ASKED as i64 * 1000,
            "{name}: {} ms apart",
            received[1].at_unix_ms - received[0].at_unix_ms
        );
        assert!(
            delivery
                .iter()
                .any(|d| d.channel_id == channel && d.delivered_at.is_some())
        );
    }
    let telegram_attempt = &attempts(&pool, outbox, telegram).await[0];
    assert!(
        telegram_attempt.error.contains("Telegram refused (error_code 429)"),
        "{}",
        telegram_attempt.error
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_a_timed_out_attempt_and_a_retry() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    let teams = four_channels(&pool, &mock).await[1];
    mock.script_hook(
        "teams",
        &HookScript {
            fail_first: 1,
            status: None,
            retry_after: None,
            hang: true,
        },
    )
    .await;
    let dispatcher = dispatcher(&pool, Duration::from_millis(20), Duration::from_millis(500));
    let mut conn = pool.get().await.unwrap();
    let incident = open_incident(&mut conn, "shop").await;
    let outbox = notify(&mut conn, incident, "opened", &[teams]).await;
    drain(&dispatcher, &pool, &[outbox], Duration::from_secs(20)).await;

    let logged = attempts(&pool, outbox, teams).await;
    assert_eq!(logged.len(), 2);
    assert_eq!((logged[0].http_status, logged[0].outcome.as_str()), (None, "retry"));
    assert!(logged[0].error.starts_with("timed out"), "{}", logged[0].error);
    assert_eq!(
        (logged[1].http_status, logged[1].outcome.as_str()),
        (Some(202), "delivered")
    );
    let received = mock.received("teams").await.received;
    assert_eq!(received.iter().map(|r| r.status).collect::<Vec<_>>(), [None, Some(202)]);
    accepted(&received);
}

#[tokio::test]
async fn a_refusal_in_telegrams_form_is_given_up_with_its_description() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    // Written around the API's checks: a chat id Telegram does not know.
    let telegram = channel(
        &pool,
        "wrong chat",
        "telegram",
        json!({"bot_token": TOKEN, "chat_id": "ops", "api_url": mock.hook_url("telegram", "wrong")}),
        0,
    )
    .await;
    let mut conn = pool.get().await.unwrap();
    let incident = open_incident(&mut conn, "shop").await;
    let outbox = notify(&mut conn, incident, "opened", &[telegram]).await;
    drain(&fast(&pool), &pool, &[outbox], Duration::from_secs(20)).await;
    let logged = attempts(&pool, outbox, telegram).await;
    assert_eq!(logged.len(), 1, "a 400 is not retried");
    assert_eq!(logged[0].outcome, "given_up");
    assert!(logged[0].error.contains("chat not found"), "{}", logged[0].error);
    assert!(!logged[0].error.contains(TOKEN), "the token stays out of the log");
    assert_eq!(mock.received("wrong").await.received.len(), 1);
}

#[tokio::test]
async fn a_batch_to_a_chat_kind_is_one_listed_message() {
    use monitor_store::diesel_async::AsyncConnection;
    let db = TestDb::new().await;
    let pool = db.pool();
    let mock = MockServer::start(&[]).await;
    let discord = channel(
        &pool,
        "grouped",
        "discord",
        json!({"webhook_url": mock.hook_url("discord", "grouped")}),
        300,
    )
    .await;
    let mut conn = pool.get().await.unwrap();
    let outbox_ids = conn
        .transaction::<_, diesel::result::Error, _>(async move |conn| {
            let mut ids = Vec::new();
            for i in 0..30 {
                let incident = open_incident(conn, &format!("job-{i}")).await;
                ids.push(notify(conn, incident, "opened", &[discord]).await);
            }
            Ok(ids)
        })
        .await
        .unwrap();
    drain(&fast(&pool), &pool, &outbox_ids, Duration::from_secs(20)).await;
    let received = mock.received("grouped").await.received;
    accepted(&received);
    assert_eq!(received.len(), 1, "one message for the batch");
    assert_eq!(received[0].body["content"], "30 incident events: 30 opened");
    let description = received[0].body["embeds"][0]["description"].as_str().unwrap();
    assert_eq!(description.lines().count(), 21, "{description}");
    assert!(description.ends_with("… and 10 more"), "{description}");
}
