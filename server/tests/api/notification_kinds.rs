//! The Discord, Teams, Telegram and PagerDuty channels over REST: created,
//! read, listed and changed without a secret ever in an answer (and the
//! marker keeping it only on the same origin), every bad field named,
//! PagerDuty never grouped, blocked URLs refused, and the test send to the
//! mock's shape-checking receiver.

use monitor_core::blocklist::Blocklist;
use monitor_server::{notify::NotifyOptions, server::ServerOptions};
use monitor_testkit::{
    mock::{HookScript, MockServer},
    server::{READ_TOKEN, TestServer, WRITE_TOKEN},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const KEY: &str = "R0UT1NGkey0123456789abcdefABCDEF";

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

async fn call(server: &TestServer, method: &str, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn create(server: &TestServer, body: Value) -> (StatusCode, Value) {
    call(server, "POST", "/v1/notification-channels", WRITE_TOKEN, Some(body)).await
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

/// A channel of each kind, with the secret each holds.
fn channels() -> [(Value, &'static str, &'static str); 4] {
    [
        (
            json!({"name": "discord", "discord": {"webhookUrl": "https://discord.com/api/webhooks/1/discord-secret-part"}}),
            "discord-secret-part",
            "discord",
        ),
        (
            json!({"name": "teams", "teams": {"webhookUrl": "https://x.logic.azure.com/workflows/1?sig=teams-secret-sig"}}),
            "teams-secret-sig",
            "teams",
        ),
        (
            json!({"name": "telegram", "telegram": {"botToken": TOKEN, "chatId": "-1001234567890"}}),
            "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            "telegram",
        ),
        (
            json!({"name": "pagerduty", "pagerduty": {"routingKey": KEY}}),
            "R0UT1NGkey",
            "pagerduty",
        ),
    ]
}

#[tokio::test]
async fn each_kind_round_trips_without_showing_its_secret() {
    let server = server().await;
    let mut answers = String::new();
    let mut ids = Vec::new();
    for (body, _, kind) in channels() {
        let (status, created) = create(&server, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let channel = &created["channel"];
        let shown = &channel[kind];
        match kind {
            "discord" | "teams" => assert_eq!(shown["webhookUrl"], "***"),
            "telegram" => {
                assert_eq!(shown["botToken"], "***");
                assert_eq!(shown["chatId"], "-1001234567890");
            }
            _ => {
                assert_eq!(shown["routingKey"], "***");
                assert_eq!(channel["groupWait"], "0s", "pagerduty is never grouped");
            }
        }
        if kind != "pagerduty" {
            assert_eq!(channel["groupWait"], "10s");
        }
        answers.push_str(&created.to_string());
        let id = channel["id"].as_str().unwrap().to_owned();
        let (status, got) = call(
            &server,
            "GET",
            &format!("/v1/notification-channels/{id}"),
            READ_TOKEN,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        answers.push_str(&got.to_string());
        ids.push((id, kind, channel.clone()));
    }
    let (_, listed) = call(&server, "GET", "/v1/notification-channels", READ_TOKEN, None).await;
    assert_eq!(listed["totalSize"], "4");
    answers.push_str(&listed.to_string());

    // The answer sent back with the name changed keeps every secret.
    for (id, kind, channel) in &ids {
        let back = json!({"version": "1", "name": format!("{kind} 2"), *kind: channel[*kind].clone()});
        let (status, updated) = call(
            &server,
            "PATCH",
            &format!("/v1/notification-channels/{id}"),
            WRITE_TOKEN,
            Some(back),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["channel"]["version"], "2");
        answers.push_str(&updated.to_string());
    }
    for (_, secret, _) in channels() {
        assert!(!answers.contains(secret), "{secret} answered: {answers}");
    }
    let mut conn = server.pool.get().await.unwrap();
    let stored: Vec<_> = monitor_store::models::notification_channel::list(&mut conn, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.settings.to_string())
        .collect();
    let stored = stored.join(" ");
    for (_, secret, _) in channels() {
        assert!(stored.contains(secret), "{secret} kept: {stored}");
    }

    // A mask naming the kind changes only the kind's fields.
    let (telegram_id, _, _) = &ids[2];
    let (status, moved) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{telegram_id}?updateMask=telegram"),
        WRITE_TOKEN,
        Some(json!({"version": "2", "name": "ignored", "telegram": {"botToken": "***", "chatId": "@ops_channel"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["channel"]["name"], "telegram 2");
    assert_eq!(moved["channel"]["telegram"]["chatId"], "@ops_channel");
    // Another API origin needs the token again.
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{telegram_id}"),
        WRITE_TOKEN,
        Some(json!({"version": "3", "name": "telegram 2", "telegram": {"botToken": "***", "chatId": "@ops_channel", "apiUrl": "https://tg.elsewhere.example"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(violated(&refused), ["channel.telegram.bot_token"]);
    let (pagerduty_id, _, _) = &ids[3];
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{pagerduty_id}?updateMask=group_wait"),
        WRITE_TOKEN,
        Some(json!({"version": "2", "groupWait": "5s"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(violated(&refused), ["channel.group_wait"]);
    // The kind cannot change.
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{pagerduty_id}"),
        WRITE_TOKEN,
        Some(json!({"version": "2", "name": "pd", "discord": {"webhookUrl": "https://discord.com/api/webhooks/2/x"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(violated(&refused), ["channel.discord"]);
}

#[tokio::test]
async fn each_bad_field_is_named_and_nothing_stored() {
    let server = server().await;
    let cases = [
        (json!({"name": "n", "discord": {}}), "channel.discord.webhook_url"),
        (
            json!({"name": "n", "discord": {"webhookUrl": "***"}}),
            "channel.discord.webhook_url",
        ),
        (
            json!({"name": "n", "discord": {"webhookUrl": "discord.com/api/webhooks/1/x"}}),
            "channel.discord.webhook_url",
        ),
        (
            json!({"name": "n", "teams": {"webhookUrl": "ftp://x.example.com/"}}),
            "channel.teams.webhook_url",
        ),
        (
            json!({"name": "n", "teams": {"webhookUrl": "http://10.0.0.8/hook"}}),
            "channel.teams.webhook_url",
        ),
        (
            json!({"name": "n", "telegram": {"chatId": "1"}}),
            "channel.telegram.bot_token",
        ),
        (
            json!({"name": "n", "telegram": {"botToken": "not-a-token", "chatId": "1"}}),
            "channel.telegram.bot_token",
        ),
        (
            json!({"name": "n", "telegram": {"botToken": "***", "chatId": "1"}}),
            "channel.telegram.bot_token",
        ),
        (
            json!({"name": "n", "telegram": {"botToken": TOKEN}}),
            "channel.telegram.chat_id",
        ),
        (
            json!({"name": "n", "telegram": {"botToken": TOKEN, "chatId": "#general"}}),
            "channel.telegram.chat_id",
        ),
        (
            json!({"name": "n", "telegram": {"botToken": TOKEN, "chatId": "1", "apiUrl": "http://169.254.169.254/"}}),
            "channel.telegram.api_url",
        ),
        (json!({"name": "n", "pagerduty": {}}), "channel.pagerduty.routing_key"),
        (
            json!({"name": "n", "pagerduty": {"routingKey": "tooshort"}}),
            "channel.pagerduty.routing_key",
        ),
        (
            json!({"name": "n", "pagerduty": {"routingKey": "***"}}),
            "channel.pagerduty.routing_key",
        ),
        (
            json!({"name": "n", "pagerduty": {"routingKey": KEY, "eventsUrl": "/v2/enqueue"}}),
            "channel.pagerduty.events_url",
        ),
        (
            json!({"name": "n", "pagerduty": {"routingKey": KEY}, "groupWait": "10s"}),
            "channel.group_wait",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = create(&server, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(violated(&answer), [field], "{body} -> {answer}");
    }
    let (_, listed) = call(&server, "GET", "/v1/notification-channels", READ_TOKEN, None).await;
    assert_eq!(listed.get("totalSize"), None, "nothing stored: {listed}");
    // Zero is the one group_wait a PagerDuty channel takes.
    let (status, created) = create(
        &server,
        json!({"name": "pd", "pagerduty": {"routingKey": KEY}, "groupWait": "0s"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // A server not told to open loopback refuses the mock's URLs.
    let strict = TestServer::builder().api_tokens().start().await;
    let mock = MockServer::start(&[]).await;
    for body in [
        json!({"name": "d", "discord": {"webhookUrl": mock.hook_url("discord", "d")}}),
        json!({"name": "t", "telegram": {"botToken": TOKEN, "chatId": "1", "apiUrl": mock.hook_url("telegram", "t")}}),
        json!({"name": "p", "pagerduty": {"routingKey": KEY, "eventsUrl": mock.hook_url("pagerduty", "p")}}),
    ] {
        let (status, answer) = create(&strict, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer.to_string().contains("--notify-allow-net 127.0.0.0/8"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn test_sends_reach_the_mock_in_each_kinds_shape() {
    let server = server().await;
    let mock = MockServer::start(&[]).await;
    let bodies = [
        json!({"name": "discord", "discord": {"webhookUrl": mock.hook_url("discord", "discord")}}),
        json!({"name": "teams", "teams": {"webhookUrl": mock.hook_url("teams", "teams")}}),
        json!({"name": "telegram", "telegram": {"botToken": TOKEN, "chatId": "@ops_channel", "apiUrl": mock.hook_url("telegram", "telegram")}}),
        json!({"name": "pagerduty", "pagerduty": {"routingKey": KEY, "eventsUrl": mock.hook_url("pagerduty", "pagerduty")}}),
    ];
    let mut ids = Vec::new();
    for (body, status) in bodies.into_iter().zip([204, 202, 200, 202]) {
        let name = body["name"].as_str().unwrap().to_owned();
        let (created_status, created) = create(&server, body).await;
        assert_eq!(created_status, StatusCode::CREATED, "{created}");
        let id = created["channel"]["id"].as_str().unwrap().to_owned();
        let (code, tested) = call(
            &server,
            "POST",
            &format!("/v1/notification-channels/{id}/test"),
            WRITE_TOKEN,
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{tested}");
        assert_eq!(tested["result"]["delivered"], true, "{name}: {tested}");
        assert_eq!(tested["result"]["statusCode"], status, "{name}: {tested}");
        let received = mock.received(&name).await.received;
        assert_eq!(received.len(), 1, "{name}");
        assert_eq!(received[0].problem, None, "{name}: {}", received[0].body);
        ids.push((name, id));
    }
    let pagerduty = &mock.received("pagerduty").await.received[0].body;
    assert_eq!(pagerduty["dedup_key"], "monitor-test:pagerduty");
    assert_eq!(pagerduty["payload"]["severity"], "info");
    assert_eq!(
        mock.received("telegram").await.received[0].body["chat_id"],
        "@ops_channel"
    );

    // A Telegram flood limit is a failed test that says why.
    mock.script_hook(
        "telegram",
        &HookScript {
            fail_first: 1,
            status: Some(429),
            retry_after: Some(5),
            hang: false,
        },
    )
    .await;
    let (_, telegram_id) = &ids[2];
    let (_, tested) = call(
        &server,
        "POST",
        &format!("/v1/notification-channels/{telegram_id}/test"),
        WRITE_TOKEN,
        None,
    )
    .await;
    assert_eq!(tested["result"]["delivered"], Value::Null, "{tested}");
    assert_eq!(tested["result"]["statusCode"], 429);
    assert!(
        tested["result"]["error"]
            .as_str()
            .unwrap()
            .contains("Telegram refused (error_code 429)"),
        "{tested}"
    );
    assert!(!tested.to_string().contains(TOKEN), "the token is not answered");
}
