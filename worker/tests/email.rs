//! Email channels through the dispatcher in process, against a real
//! PostgreSQL and a real SMTP server (aiosmtpd, `monitor_testkit::smtp`):
//! an incident's email over STARTTLS with a login reaches the server
//! from and to the configured addresses with both bodies; implicit TLS
//! works; a wrong password, a refused recipient and a server without
//! STARTTLS are given up with errors saying so; an unreachable port, an
//! untrusted certificate and a 451 are retried (a batch as one email with
//! the same Message-ID); a blocked address is refused before
//! any connection. Tests needing the SMTP server have `smtp` in their name
//! (scripts/test skips only those when aiosmtpd cannot be installed).

use std::time::Duration;

use chrono::Utc;
use monitor_core::blocklist::Blocklist;
use monitor_notify::retry::RetryPolicy;
use monitor_store::{
    DbPool,
    diesel_async::RunQueryDsl,
    models::{
        incident::{self, IncidentRow, NewOutboxEntry},
        notification_channel::{self, ChannelFields},
        notification_delivery::{self, AttemptRow},
    },
    schema::incidents,
    testing::TestDb,
};
use monitor_testkit::{
    smtp::{SMTP_PASSWORD, SMTP_USER, SmtpServer},
    wait_until,
};
use monitor_worker::notify::{DispatchConfig, DispatchMetrics, Dispatcher};
use serde_json::{Value, json};
use uuid::Uuid;

/// The settings of an email channel to `host:port`, logging in as the
/// test server's user and trusting its certificate.
fn email(host: &str, port: u16, tls: &str, smtp: &SmtpServer) -> Value {
    json!({
        "host": host,
        "port": port,
        "tls": tls,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "from": "Monitor <monitor@example.com>",
        "to": ["ops@example.com", "Oncall <oncall@example.com>"],
        "ca_certificate_pem": smtp.ca_pem,
    })
}

async fn channel(pool: &DbPool, name: &str, settings: Value) -> Uuid {
    grouping_channel(pool, name, settings, 0).await
}

async fn grouping_channel(pool: &DbPool, name: &str, settings: Value, group_wait_ms: i32) -> Uuid {
    let fields = ChannelFields {
        name: name.into(),
        kind: "email".into(),
        settings,
        enabled: true,
        group_wait_ms,
    };
    notification_channel::insert(&mut pool.get().await.unwrap(), &fields)
        .await
        .unwrap()
        .id
}

/// An open incident of job `shop <eu>` and its `opened` outbox row to
/// `channel`: (incident id, outbox id).
async fn incident_to(pool: &DbPool, channel: Uuid) -> (Uuid, i64) {
    incident_of(pool, channel, "shop <eu>").await
}

/// An open incident of job `job_name` and its `opened` outbox row to `channel`.
async fn incident_of(pool: &DbPool, channel: Uuid, job_name: &str) -> (Uuid, i64) {
    let mut conn = pool.get().await.unwrap();
    let id = Uuid::now_v7();
    let now = Utc::now();
    let row = IncidentRow {
        id,
        rule_id: None,
        rule_name: "web down".into(),
        job_id: Uuid::now_v7(),
        job_name: job_name.into(),
        severity: "critical".into(),
        cause: "down".into(),
        opened_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        failing_locations: vec![Some("eu-1".into())],
        first_failure: Some(
            json!({"outcome": "CHECK_OUTCOME_HTTP_STATUS", "status_code": 503, "error": "", "location": "eu-1"}),
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
            channel_ids: vec![Some(channel)],
        },
    )
    .await
    .unwrap();
    let outbox = incident::outbox(&mut conn, id).await.unwrap();
    (id, outbox[0].id)
}

/// A dispatcher whose retries wait a minute (so a test sees exactly the
/// first attempt of a retried delivery).
fn dispatcher(pool: &DbPool, blocklist: Blocklist) -> Dispatcher {
    dispatcher_retrying(pool, blocklist, Duration::from_secs(60))
}

fn dispatcher_retrying(pool: &DbPool, blocklist: Blocklist, wait: Duration) -> Dispatcher {
    let config = DispatchConfig {
        retry: RetryPolicy {
            base: wait,
            max: wait,
            give_up_after: Duration::from_secs(3600),
        },
        send_timeout: Duration::from_secs(10),
        blocklist,
        dashboard_url: Some("https://monitor.example.com/ui/".into()),
        ..DispatchConfig::default()
    };
    Dispatcher::new(pool.clone(), config, DispatchMetrics::default()).unwrap()
}

fn loopback() -> Blocklist {
    Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()])
}

/// One dispatch; the attempts of `outbox_id` then.
async fn dispatch(pool: &DbPool, blocklist: Blocklist, outbox_id: i64) -> Vec<AttemptRow> {
    let claimed = dispatcher(pool, blocklist).dispatch_once().await.unwrap();
    assert_eq!(claimed, 1);
    notification_delivery::attempts(&mut pool.get().await.unwrap(), outbox_id)
        .await
        .unwrap()
}

#[tokio::test]
async fn smtp_starttls_with_login_delivers_both_bodies() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    // "localhost": resolved here (::1 dropped by the blocklist), the
    // certificate verified against the name.
    let mail = channel(
        &pool,
        "ops mail",
        email("localhost", smtp.starttls_port, "starttls", &smtp),
    )
    .await;
    let (incident_id, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;

    let received = smtp.received();
    assert_eq!(received.len(), 1, "{}", smtp.log());
    let got = &received[0];
    assert_eq!(got.listener, "starttls");
    assert!(got.tls, "sent after STARTTLS");
    assert_eq!(got.login.as_deref(), Some(SMTP_USER));
    assert_eq!(got.mail_from, "monitor@example.com");
    assert_eq!(got.rcpt_tos, ["ops@example.com", "oncall@example.com"]);
    assert_eq!(got.from, "Monitor <monitor@example.com>");
    assert!(got.to.contains("ops@example.com") && got.to.contains("oncall@example.com"));
    assert_eq!(got.subject, "[monitor] [CRITICAL] shop <eu> is down (eu-1)");
    assert_eq!(
        got.message_id,
        format!("<{incident_id}.opened.{mail}@monitor>"),
        "the delivery id is the Message-ID"
    );
    let text = got.text.as_deref().expect("a plain-text part");
    assert!(text.contains("[CRITICAL] shop <eu> is down (eu-1)"), "{text}");
    assert!(text.contains("Event: opened at "), "{text}");
    assert!(text.contains("First failure: HTTP 503 from eu-1"), "{text}");
    assert!(
        text.contains(&format!("https://monitor.example.com/ui/#/incidents/{incident_id}")),
        "{text}"
    );
    let html = got.html.as_deref().expect("an HTML part");
    assert!(html.contains("shop &lt;eu&gt; is down (eu-1)"), "{html}");
    assert!(html.contains("Event: opened at "), "{html}");
    assert!(!html.contains("<eu>"), "escaped: {html}");

    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "delivered");
    assert_eq!(attempts[0].http_status, None, "no HTTP status for email");
    assert_eq!(attempts[0].error, "");
    assert!(
        attempts[0].reply.starts_with("250 2.0.0 Ok: queued as starttls-"),
        "the server's reply is kept: {}",
        attempts[0].reply
    );
    let deliveries = notification_delivery::deliveries(&mut pool.get().await.unwrap(), outbox_id)
        .await
        .unwrap();
    assert!(deliveries[0].delivered_at.is_some());
}

#[tokio::test]
async fn smtp_implicit_tls_delivers() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    // An IP literal: the certificate must name 127.0.0.1.
    let mail = channel(
        &pool,
        "tls mail",
        email("127.0.0.1", smtp.implicit_port, "implicit", &smtp),
    )
    .await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert_eq!(attempts[0].outcome, "delivered", "{}", attempts[0].error);
    assert!(attempts[0].reply.starts_with("250 2.0.0 Ok: queued as implicit-"));
    let received = smtp.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].listener, "implicit");
    assert!(received[0].tls);
    assert_eq!(received[0].login.as_deref(), Some(SMTP_USER));
    assert!(received[0].text.as_deref().unwrap().contains("shop <eu>"));
}

#[tokio::test]
async fn smtp_wrong_password_is_given_up_naming_the_login() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    let mut settings = email("localhost", smtp.starttls_port, "starttls", &smtp);
    settings["password"] = json!("not-the-password");
    let mail = channel(&pool, "bad login", settings).await;
    let (incident_id, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert!(smtp.received().is_empty());
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "given_up");
    assert_eq!(attempts[0].http_status, None);
    assert!(
        attempts[0].error.contains("refused the login as \"monitor-test\": 535"),
        "{}",
        attempts[0].error
    );
    assert!(!attempts[0].error.contains("not-the-password"));
    assert!(attempts[0].reply.starts_with("535 "), "{}", attempts[0].reply);
    let timeline = incident::timeline(&mut pool.get().await.unwrap(), incident_id)
        .await
        .unwrap();
    let given_up: Vec<_> = timeline
        .iter()
        .filter(|event| event.kind == "notification_given_up")
        .collect();
    assert_eq!(given_up.len(), 1);
    let detail = &given_up[0].detail;
    assert!(detail.contains("\"bad login\""), "{detail}");
    assert!(detail.contains("refused the login (535)"), "{detail}");
    assert!(detail.contains("username and password"), "{detail}");
}

#[tokio::test]
async fn smtp_unreachable_port_is_retried() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    let port = monitor_testkit::free_port();
    let mail = channel(&pool, "nobody home", email("127.0.0.1", port, "implicit", &smtp)).await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, "retry");
    assert!(
        attempts[0]
            .error
            .contains(&format!("connecting with TLS to 127.0.0.1:{port}")),
        "{}",
        attempts[0].error
    );
    let deliveries = notification_delivery::deliveries(&mut pool.get().await.unwrap(), outbox_id)
        .await
        .unwrap();
    assert!(deliveries[0].delivered_at.is_none() && deliveries[0].given_up_at.is_none());
    assert!(deliveries[0].next_attempt_at > Utc::now(), "due again later");
}

#[tokio::test]
async fn smtp_untrusted_certificate_is_retried_naming_tls() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    let mut settings = email("localhost", smtp.starttls_port, "starttls", &smtp);
    settings["ca_certificate_pem"] = json!("");
    let mail = channel(&pool, "untrusted", settings).await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert!(smtp.received().is_empty());
    assert_eq!(attempts[0].outcome, "retry");
    assert!(
        attempts[0].error.starts_with("STARTTLS failed"),
        "{}",
        attempts[0].error
    );
    assert!(attempts[0].error.contains("certificate"), "{}", attempts[0].error);
}

#[tokio::test]
async fn smtp_refused_recipient_is_given_up() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&["oncall@example.com"]).await;
    let mail = channel(
        &pool,
        "one unknown",
        email("localhost", smtp.starttls_port, "starttls", &smtp),
    )
    .await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert!(smtp.received().is_empty(), "nothing accepted");
    assert_eq!(attempts[0].outcome, "given_up");
    assert!(
        attempts[0]
            .error
            .contains("550 5.1.1 <oncall@example.com>: Recipient address rejected"),
        "{}",
        attempts[0].error
    );
    assert!(attempts[0].reply.starts_with("550 5.1.1"), "{}", attempts[0].reply);
}

#[tokio::test]
async fn smtp_starttls_not_offered_is_refused() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start(&[]).await;
    let mail = channel(
        &pool,
        "no starttls",
        email("localhost", smtp.plain_port, "starttls", &smtp),
    )
    .await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    let attempts = dispatch(&pool, loopback(), outbox_id).await;
    assert!(smtp.received().is_empty(), "never sent in plain text");
    assert_eq!(attempts[0].outcome, "given_up");
    assert!(
        attempts[0]
            .error
            .contains("does not offer STARTTLS, which this channel requires"),
        "{}",
        attempts[0].error
    );
}

#[tokio::test]
async fn email_to_a_blocked_address_is_refused_before_connecting() {
    let db = TestDb::new().await;
    let pool = db.pool();
    // A listener that would see any connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = json!({
        "host": "127.0.0.1", "port": port, "tls": "starttls",
        "from": "monitor@example.com", "to": ["ops@example.com"],
    });
    let mail = channel(&pool, "loopback mail", settings).await;
    let (_, outbox_id) = incident_to(&pool, mail).await;
    // This dispatcher was not told to open loopback.
    let attempts = dispatch(&pool, Blocklist::default(), outbox_id).await;
    assert_eq!(attempts[0].outcome, "given_up");
    assert!(
        attempts[0].error.contains("blocked network 127.0.0.0/8"),
        "{}",
        attempts[0].error
    );
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "no connection was made");
}

#[tokio::test]
async fn smtp_a_batch_is_one_email_listing_every_event_and_a_451_is_retried() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let smtp = SmtpServer::start_failing(&[], 1).await;
    let settings = email("localhost", smtp.starttls_port, "starttls", &smtp);
    let mail = grouping_channel(&pool, "grouped mail", settings, 300).await;
    let mut outbox_ids = Vec::new();
    for i in 0..30 {
        outbox_ids.push(incident_of(&pool, mail, &format!("job-{i:02}")).await.1);
    }
    let dispatcher = dispatcher_retrying(&pool, loopback(), Duration::from_millis(50));
    wait_until("the batch delivered", Duration::from_secs(60), || async {
        dispatcher.dispatch_once().await.map_err(|err| err.to_string())?;
        let mut conn = pool.get().await.map_err(|err| err.to_string())?;
        for outbox_id in &outbox_ids {
            let rows = notification_delivery::deliveries(&mut conn, *outbox_id)
                .await
                .map_err(|err| err.to_string())?;
            if rows[0].delivered_at.is_none() {
                return Err(format!("{outbox_id} pending: {:?}", rows[0].last_error));
            }
        }
        Ok(())
    })
    .await;

    let mut conn = pool.get().await.unwrap();
    let mut batches = Vec::new();
    for outbox_id in &outbox_ids {
        let rows = notification_delivery::deliveries(&mut conn, *outbox_id).await.unwrap();
        batches.push(rows[0].batch_id.expect("sent in a batch"));
        let attempts = notification_delivery::attempts(&mut conn, *outbox_id).await.unwrap();
        let seen: Vec<_> = attempts.iter().map(|a| (a.attempt, a.outcome.as_str())).collect();
        assert_eq!(seen, [(1, "retry"), (2, "delivered")]);
        assert!(attempts[0].reply.starts_with("451 4.3.0"), "{}", attempts[0].reply);
        assert_eq!(attempts[0].http_status, None);
    }
    batches.dedup();
    assert_eq!(batches.len(), 1, "all 30 in one batch");

    let received = smtp.received();
    assert_eq!(
        received.len(),
        2,
        "one email for the batch, refused once and sent again"
    );
    assert!(received[0].reply.starts_with("451 "), "{}", received[0].reply);
    assert!(received[1].reply.starts_with("250 "), "{}", received[1].reply);
    assert_eq!(
        received[0].message_id, received[1].message_id,
        "the same Message-ID on the retry"
    );
    assert_eq!(received[0].text, received[1].text, "the same batch both times");
    let got = &received[1];
    assert_eq!(got.message_id, format!("<group.{}.{mail}@monitor>", batches[0]));
    assert_eq!(
        got.subject,
        "[monitor] 30 incidents: 30 opened (job-00, job-01, job-02 and 27 more)"
    );
    let text = got.text.as_deref().unwrap();
    let html = got.html.as_deref().unwrap();
    assert!(text.starts_with("30 incidents: 30 opened."), "{text}");
    for i in 0..30 {
        assert!(
            text.contains(&format!("[CRITICAL] job-{i:02} is down (eu-1)")),
            "job-{i:02}: {text}"
        );
        assert!(
            html.contains(&format!("[CRITICAL] job-{i:02} is down (eu-1)")),
            "job-{i:02}"
        );
    }
    assert_eq!(html.matches("<li>").count(), 30);
}
