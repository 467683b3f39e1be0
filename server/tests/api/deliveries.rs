//! The delivery history (ListNotificationDeliveries over REST and gRPC) and
//! channel health, over attempts scripted through the store's own claim and
//! finish (what the dispatchers call): deliveries of an incident and of a
//! channel with their attempts in order, paging, bad and missing filters
//! named, access, and the health fields Get and List answer.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use monitor_core::blocklist::Blocklist;
use monitor_proto::v1::{
    DeliveryState, GetNotificationChannelRequest, ListNotificationDeliveriesRequest, UpdateNotificationChannelRequest,
};
use monitor_server::{notify::NotifyOptions, server::ServerOptions};
use monitor_store::{
    DbPool,
    diesel_async::RunQueryDsl,
    models::{
        incident::{self, IncidentRow, NewOutboxEntry},
        notification_delivery::{self, Attempt, Next},
    },
    schema::{incidents, outbox_deliveries},
};
use monitor_testkit::server::{READ_TOKEN, TestServer, WRITE_TOKEN};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;
use uuid::Uuid;

async fn server() -> TestServer {
    TestServer::builder()
        .api_tokens()
        .options(ServerOptions {
            tokens: monitor_testkit::server::api_tokens(),
            notify: NotifyOptions {
                blocklist: Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]),
                ..NotifyOptions::default()
            },
            ..ServerOptions::default()
        })
        .start()
        .await
}

async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client.request(method.parse().unwrap(), server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn get(server: &TestServer, path: &str) -> Value {
    let (status, body) = call(server, "GET", path, Some(READ_TOKEN), None).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

fn violated(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|detail| detail["fieldViolations"].as_array().cloned().unwrap_or_default())
        .map(|violation| violation["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A webhook channel made through the API (with secrets the log must never show).
async fn channel(server: &TestServer, name: &str) -> Uuid {
    let (status, created) = call(
        server,
        "POST",
        "/v1/notification-channels",
        Some(WRITE_TOKEN),
        Some(json!({
            "name": name,
            // Each delivery claimed alone (no batches), as `attempt` scripts them.
            "groupWait": "0s",
            "webhook": {
                "url": format!("https://hooks.example.com/{name}"),
                "headers": [{"name": "Authorization", "value": "Bearer never-shown-token"}],
                "signingSecret": "never-shown-signing-secret"
            }
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["channel"]["id"].as_str().unwrap().parse().unwrap()
}

/// An open incident of job `job_name`, inserted as the evaluator would.
async fn incident(pool: &DbPool, job_name: &str) -> Uuid {
    let opened_at = Utc::now() - TimeDelta::minutes(5);
    let row = IncidentRow {
        id: Uuid::now_v7(),
        rule_id: None,
        rule_name: "web down".into(),
        job_id: Uuid::now_v7(),
        job_name: job_name.into(),
        severity: "critical".into(),
        cause: "down".into(),
        opened_at,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        failing_locations: vec![Some("eu".into())],
        first_failure: None,
        detected_check_end: Some(opened_at),
        silenced: false,
        flapping: false,
        updated_at: opened_at,
    };
    diesel::insert_into(incidents::table)
        .values(&row)
        .execute(&mut pool.get().await.unwrap())
        .await
        .unwrap();
    row.id
}

/// Writes the incident's `event` outbox row to `channels` (the trigger
/// makes one delivery per channel); its outbox id.
async fn notify(pool: &DbPool, incident_id: Uuid, event: &str, channels: &[Uuid]) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let dedup_key = incident::dedup_key(incident_id, event);
    assert!(
        incident::enqueue(
            &mut conn,
            &NewOutboxEntry {
                dedup_key: dedup_key.clone(),
                incident_id,
                event: event.into(),
                channel_ids: channels.iter().copied().map(Some).collect(),
            },
        )
        .await
        .unwrap()
    );
    let rows = incident::outbox(&mut conn, incident_id).await.unwrap();
    rows.iter().find(|row| row.dedup_key == dedup_key).unwrap().id
}

/// What a scripted attempt answers.
enum Answer {
    /// Delivered with this status.
    Ok(i32),
    /// Failed with this status, tried again (in an hour: not due meanwhile).
    Retry(i32),
    /// Failed with this status, given up.
    GiveUp(i32),
}

/// One attempt of the delivery (outbox_id, channel_id), through the store's
/// claim and finish as a dispatcher makes it. The delivery is made due and
/// every other pending one is pushed 100 years out meanwhile (and back
/// exactly after), so the claim takes exactly it.
async fn attempt(pool: &DbPool, outbox_id: i64, channel_id: Uuid, answer: Answer) {
    use diesel::{ExpressionMethods, QueryDsl};
    let mut conn = pool.get().await.unwrap();
    diesel::update(outbox_deliveries::table.find((outbox_id, channel_id)))
        .set(outbox_deliveries::next_attempt_at.eq(Utc::now() - TimeDelta::days(1)))
        .execute(&mut conn)
        .await
        .unwrap();
    const AWAY: &str = "interval '876000 hours'";
    diesel::sql_query(format!(
        "UPDATE outbox_deliveries SET next_attempt_at = next_attempt_at + {AWAY} \
         WHERE NOT (outbox_id = {outbox_id} AND channel_id = '{channel_id}') \
           AND delivered_at IS NULL AND given_up_at IS NULL"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let claims = notification_delivery::claim(&mut conn, Duration::from_secs(3600), 1)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE outbox_deliveries SET next_attempt_at = next_attempt_at - {AWAY} \
         WHERE NOT (outbox_id = {outbox_id} AND channel_id = '{channel_id}') \
           AND delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at > now() + interval '438000 hours'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].outbox_ids(), claims[0].channel_id),
        (vec![outbox_id], channel_id)
    );
    let (status, next) = match answer {
        Answer::Ok(status) => (status, Next::Delivered),
        Answer::Retry(status) => (status, Next::Retry(Duration::from_secs(3600))),
        Answer::GiveUp(status) => (
            status,
            Next::GiveUp {
                detail: "given up".into(),
            },
        ),
    };
    let delivered = matches!(next, Next::Delivered);
    let recorded = notification_delivery::finish(
        &mut conn,
        &claims[0],
        &Attempt {
            at: Utc::now(),
            http_status: Some(status),
            error: if delivered {
                String::new()
            } else {
                format!("HTTP {status}")
            },
            reply: format!("answer {status}"),
            duration_ms: 7,
        },
        &next,
    )
    .await
    .unwrap();
    assert!(recorded);
}

/// (attempt, httpStatus, outcome) of a delivery's attempts.
fn attempts_of(delivery: &Value) -> Vec<(i64, i64, String)> {
    delivery["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["httpStatus"].as_i64().unwrap_or(0),
                a["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deliveries_are_listed_for_an_incident_and_for_a_channel_with_attempts_in_order() {
    let server = server().await;
    let alpha = channel(&server, "alpha").await;
    let beta = channel(&server, "beta").await;
    let first = incident(&server.pool, "shop").await;
    let second = incident(&server.pool, "blog").await;
    let opened = notify(&server.pool, first, "opened", &[alpha, beta]).await;
    let later = notify(&server.pool, second, "opened", &[alpha]).await;
    attempt(&server.pool, opened, alpha, Answer::Retry(500)).await;
    attempt(&server.pool, opened, beta, Answer::GiveUp(410)).await;
    attempt(&server.pool, opened, alpha, Answer::Ok(200)).await;
    attempt(&server.pool, later, alpha, Answer::Retry(503)).await;

    let listed = get(&server, &format!("/v1/notification-deliveries?incidentId={first}")).await;
    assert_eq!(listed["totalSize"], "2", "{listed}");
    let deliveries = listed["deliveries"].as_array().unwrap();
    // One outbox row's channels by channel id (alpha was made first).
    assert_eq!(deliveries[0]["channelId"], alpha.to_string());
    assert_eq!(deliveries[1]["channelId"], beta.to_string());
    let to_alpha = &deliveries[0];
    assert_eq!(to_alpha["outboxId"], opened.to_string());
    assert_eq!(to_alpha["event"], "opened");
    assert_eq!(to_alpha["dedupKey"], format!("{first}:opened"));
    assert_eq!(to_alpha["incidentId"], first.to_string());
    assert_eq!(to_alpha["jobName"], "shop");
    assert_eq!(to_alpha["channelName"], "alpha");
    assert_eq!(to_alpha["channelKind"], "webhook");
    assert_eq!(to_alpha["state"], "DELIVERY_STATE_DELIVERED");
    assert_eq!(to_alpha.get("nextAttemptTime"), None, "only pending ones have one");
    assert!(to_alpha["finishTime"].is_string());
    assert_eq!(
        attempts_of(to_alpha),
        [
            (1, 500, "DELIVERY_OUTCOME_RETRY".to_owned()),
            (2, 200, "DELIVERY_OUTCOME_DELIVERED".to_owned())
        ]
    );
    let retried = &to_alpha["attempts"][0];
    assert_eq!(retried["error"], "HTTP 500");
    assert_eq!(retried["reply"], "answer 500");
    assert_eq!(retried["duration"], "0.007s");
    assert!(retried["time"].is_string());
    let to_beta = &deliveries[1];
    assert_eq!(to_beta["state"], "DELIVERY_STATE_GIVEN_UP");
    assert_eq!(to_beta["channelName"], "beta");
    assert_eq!(attempts_of(to_beta), [(1, 410, "DELIVERY_OUTCOME_GIVEN_UP".to_owned())]);

    // A channel's deliveries: the newest notification first; the pending one says when it is due.
    let listed = get(&server, &format!("/v1/notification-deliveries?channelId={alpha}")).await;
    let deliveries = listed["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{listed}");
    assert_eq!(deliveries[0]["outboxId"], later.to_string());
    assert_eq!(deliveries[0]["jobName"], "blog");
    assert_eq!(deliveries[0]["state"], "DELIVERY_STATE_PENDING");
    let due: chrono::DateTime<Utc> = deliveries[0]["nextAttemptTime"].as_str().unwrap().parse().unwrap();
    assert!(due > Utc::now(), "retried in an hour: {due}");
    assert_eq!(deliveries[0].get("finishTime"), None);
    assert_eq!(
        attempts_of(&deliveries[0]),
        [(1, 503, "DELIVERY_OUTCOME_RETRY".to_owned())]
    );
    assert_eq!(deliveries[1]["outboxId"], opened.to_string());

    // Both filters: the incident's deliveries to that channel.
    let both = get(
        &server,
        &format!("/v1/notification-deliveries?incidentId={first}&channelId={beta}"),
    )
    .await;
    assert_eq!(both["deliveries"].as_array().unwrap().len(), 1, "{both}");
    assert_eq!(both["deliveries"][0]["channelId"], beta.to_string());
    let unrelated = channel(&server, "gamma").await;
    let none = get(&server, &format!("/v1/notification-deliveries?channelId={unrelated}")).await;
    assert_eq!(none.get("deliveries"), None, "{none}");

    // The channels' settings never appear.
    let everything = format!("{listed}{both}");
    for secret in ["never-shown", "hooks.example.com", "signingSecret", "\"webhook\":"] {
        assert!(!everything.contains(secret), "{secret} in {everything}");
    }

    // gRPC answers the same.
    let mut grpc = server.notifications_as(Some(READ_TOKEN));
    let answer = grpc
        .list_notification_deliveries(ListNotificationDeliveriesRequest {
            incident_id: first.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.total_size, 2);
    assert_eq!(answer.deliveries[0].state(), DeliveryState::Delivered);
    assert_eq!(answer.deliveries[1].state(), DeliveryState::GivenUp);
    assert_eq!(
        answer.deliveries[0]
            .attempts
            .iter()
            .map(|a| a.http_status)
            .collect::<Vec<_>>(),
        [500, 200]
    );
}

#[tokio::test]
async fn deliveries_page_newest_first_without_repeats() {
    let server = server().await;
    let hook = channel(&server, "hook").await;
    let mut outbox_ids = Vec::new();
    for i in 0..5 {
        let id = incident(&server.pool, &format!("job-{i}")).await;
        outbox_ids.push(notify(&server.pool, id, "opened", &[hook]).await.to_string());
    }
    outbox_ids.reverse();
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = get(
            &server,
            &format!("/v1/notification-deliveries?channelId={hook}&pageSize=2&pageToken={token}"),
        )
        .await;
        pages += 1;
        assert_eq!(page["totalSize"], "5");
        for delivery in page["deliveries"].as_array().unwrap() {
            assert_eq!(delivery["state"], "DELIVERY_STATE_PENDING");
            assert_eq!(delivery.get("attempts"), None, "not attempted yet");
            seen.push(delivery["outboxId"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => break,
        }
        // A token continues only the listing it was issued for.
        let incident_id = Uuid::now_v7();
        let (status, refused) = call(
            &server,
            "GET",
            &format!("/v1/notification-deliveries?incidentId={incident_id}&pageToken={token}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(violated(&refused), ["page_token"]);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, outbox_ids, "newest first, each once");
}

#[tokio::test]
async fn bad_or_missing_filters_are_named_and_reading_needs_a_read_token() {
    let server = server().await;
    let hook = channel(&server, "hook").await;
    let cases = [
        (String::new(), vec!["incident_id"]),
        ("?pageSize=5".into(), vec!["incident_id"]),
        ("?incidentId=nope".into(), vec!["incident_id"]),
        ("?channelId=nope".into(), vec!["channel_id"]),
        ("?incidentId=x&channelId=y".into(), vec!["incident_id", "channel_id"]),
        (format!("?channelId={hook}&pageSize=-1"), vec!["page_size"]),
        (format!("?channelId={hook}&pageSize=lots"), vec!["page_size"]),
        (format!("?channelId={hook}&pageToken=garbage"), vec!["page_token"]),
        (format!("?channelId={hook}&jobId=x"), vec!["jobId"]),
    ];
    for (query, fields) in cases {
        let (status, answer) = call(
            &server,
            "GET",
            &format!("/v1/notification-deliveries{query}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert_eq!(violated(&answer), fields, "{query}: {answer}");
    }
    // Unknown ids are not found, not an empty page.
    for query in [
        format!("incidentId={}", Uuid::now_v7()),
        format!("channelId={}", Uuid::now_v7()),
    ] {
        let (status, answer) = call(
            &server,
            "GET",
            &format!("/v1/notification-deliveries?{query}"),
            Some(READ_TOKEN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}: {answer}");
    }
    // gRPC names the same fields.
    let mut grpc = server.notifications_as(Some(READ_TOKEN));
    let err = grpc
        .list_notification_deliveries(ListNotificationDeliveriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(crate::harness::violated_fields(&err), ["incident_id"]);

    // Access: read is enough; no token or an unknown one is refused.
    let path = format!("/v1/notification-deliveries?channelId={hook}");
    assert_eq!(
        call(&server, "GET", &path, Some(READ_TOKEN), None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&server, "GET", &path, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&server, "GET", &path, Some("not-a-token-of-this-server"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut anonymous = server.notifications_as(None);
    let err = anonymous
        .list_notification_deliveries(ListNotificationDeliveriesRequest {
            channel_id: hook.to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn channel_health_follows_the_attempts() {
    let server = server().await;
    let flaky = channel(&server, "flaky").await;
    let refused = channel(&server, "refused").await;
    let quiet = channel(&server, "quiet").await;
    let health = |channel: &Value| {
        (
            channel["healthy"].as_bool().unwrap_or(false),
            channel["consecutiveFailures"].as_i64().unwrap_or(0),
            channel["lastAttempt"]["httpStatus"].as_i64().unwrap_or(0),
            channel["lastAttempt"]["outcome"].as_str().unwrap_or("").to_owned(),
        )
    };
    let of = |id: Uuid| {
        let server = &server;
        async move { get(server, &format!("/v1/notification-channels/{id}")).await["channel"].clone() }
    };
    let fresh = of(quiet).await;
    assert_eq!(health(&fresh), (true, 0, 0, String::new()), "{fresh}");
    assert_eq!(fresh.get("lastAttempt"), None);

    let incident_id = incident(&server.pool, "shop").await;
    let opened = notify(&server.pool, incident_id, "opened", &[flaky, refused]).await;
    let reminder = notify(&server.pool, incident_id, "reminder:1", &[flaky]).await;
    attempt(&server.pool, opened, flaky, Answer::Ok(200)).await;
    attempt(&server.pool, reminder, flaky, Answer::Retry(500)).await;
    attempt(&server.pool, reminder, flaky, Answer::Retry(502)).await;
    let flaky_now = of(flaky).await;
    assert_eq!(
        health(&flaky_now),
        (true, 2, 502, "DELIVERY_OUTCOME_RETRY".into()),
        "{flaky_now}"
    );
    assert_eq!(flaky_now["lastAttempt"]["error"], "HTTP 502");
    assert!(flaky_now["lastAttempt"]["time"].is_string());
    attempt(&server.pool, reminder, flaky, Answer::Retry(503)).await;
    assert_eq!(
        health(&of(flaky).await),
        (false, 3, 503, "DELIVERY_OUTCOME_RETRY".into())
    );

    // One give-up is enough.
    attempt(&server.pool, opened, refused, Answer::GiveUp(404)).await;
    assert_eq!(
        health(&of(refused).await),
        (false, 1, 404, "DELIVERY_OUTCOME_GIVEN_UP".into())
    );

    // The list answers the same, for the whole page in one go.
    let listed = get(&server, "/v1/notification-channels").await;
    let by_name: Vec<_> = listed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), health(c)))
        .collect();
    assert_eq!(
        by_name,
        [
            ("flaky".to_owned(), (false, 3, 503, "DELIVERY_OUTCOME_RETRY".to_owned())),
            ("quiet".to_owned(), (true, 0, 0, String::new())),
            (
                "refused".to_owned(),
                (false, 1, 404, "DELIVERY_OUTCOME_GIVEN_UP".to_owned())
            ),
        ]
    );

    // A delivered attempt makes it healthy again.
    attempt(&server.pool, reminder, flaky, Answer::Ok(204)).await;
    assert_eq!(
        health(&of(flaky).await),
        (true, 0, 204, "DELIVERY_OUTCOME_DELIVERED".into())
    );

    // Writes answer the health too, and ignore the output-only fields (gRPC
    // with no mask: every settable field; the health sent back is not one).
    let version = of(refused).await["version"].clone();
    let (status, updated) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{refused}"),
        Some(WRITE_TOKEN),
        Some(json!({"version": version, "enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["channel"]["enabled"], false);
    assert_eq!(
        health(&updated["channel"]),
        (false, 1, 404, "DELIVERY_OUTCOME_GIVEN_UP".into())
    );
    let mut grpc = server.notifications_as(Some(WRITE_TOKEN));
    let mut read = grpc
        .get_notification_channel(GetNotificationChannelRequest {
            id: refused.to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    assert!(!read.healthy);
    read.healthy = true;
    read.consecutive_failures = 0;
    read.last_attempt = None;
    read.name = "refused again".into();
    let saved = grpc
        .update_notification_channel(UpdateNotificationChannelRequest {
            channel: Some(read),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .channel
        .unwrap();
    assert_eq!(saved.name, "refused again");
    assert_eq!((saved.healthy, saved.consecutive_failures), (false, 1));
    assert_eq!(saved.last_attempt.map(|a| a.http_status), Some(404));
}
