//! NotificationService over REST and gRPC: channel CRUD, every bad field
//! named, secrets never answered (and kept by the marker only on the same
//! origin), access by role, rules naming unknown channels refused, and the
//! test send against the mock.

use monitor_core::blocklist::Blocklist;
use monitor_proto::v1::{AlertRule, CreateAlertRuleRequest, GetNotificationChannelRequest};
use monitor_server::{notify::NotifyOptions, server::ServerOptions};
use monitor_testkit::{
    mock::MockServer,
    server::{READ_TOKEN, TestServer, WRITE_TOKEN},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

/// A server with API tokens whose channels may point at loopback (the mock).
pub(crate) async fn server() -> TestServer {
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

pub(crate) async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
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

pub(crate) fn violated(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|detail| detail["fieldViolations"].as_array().cloned().unwrap_or_default())
        .map(|violation| violation["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn webhook(name: &str, url: &str) -> Value {
    json!({
        "name": name,
        "webhook": {
            "url": url,
            "headers": [
                {"name": "Authorization", "value": "Bearer top-secret-token"},
                {"name": "x-team", "value": "web"}
            ],
            "signingSecret": "0123456789abcdef-signing"
        }
    })
}

#[tokio::test]
async fn channels_round_trip_without_ever_showing_a_secret() {
    let server = server().await;
    let (status, created) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(webhook("ops hook", "https://hooks.example.com/in")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let channel = &created["channel"];
    let id = channel["id"].as_str().unwrap().to_owned();
    assert_eq!(channel["version"], "1");
    assert_eq!(channel["enabled"], true);
    assert_eq!(channel["webhook"]["headers"][0]["value"], "***");
    assert_eq!(channel["webhook"]["headers"][1]["value"], "web");
    assert_eq!(channel["webhook"]["signingSecret"], "***");

    let (status, slack) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(json!({"name": "chat", "slack": {"webhookUrl": "https://hooks.slack.com/services/T0/B0/secretpart"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{slack}");
    assert_eq!(slack["channel"]["slack"]["webhookUrl"], "***");

    let (status, listed) = call(&server, "GET", "/v1/notification-channels?pageSize=1", READ_TOKEN, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["totalSize"], "2");
    assert_eq!(listed["channels"][0]["name"], "chat");
    let next = listed["nextPageToken"].as_str().unwrap();
    let (_, page2) = call(
        &server,
        "GET",
        &format!("/v1/notification-channels?pageSize=1&pageToken={next}"),
        READ_TOKEN,
        None,
    )
    .await;
    assert_eq!(page2["channels"][0]["name"], "ops hook");
    let everything = format!("{created}{slack}{listed}{page2}");
    for secret in ["top-secret-token", "abcdef-signing", "secretpart"] {
        assert!(!everything.contains(secret), "{secret} shown: {everything}");
    }

    // Sending the answer back with another field changed keeps the secrets.
    let mut back = json!({"version": "1", "name": "ops hook 2", "webhook": channel["webhook"].clone()});
    let (status, updated) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(back.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["channel"]["version"], "2");
    let mut conn = server.pool.get().await.unwrap();
    let row = monitor_store::models::notification_channel::get(&mut conn, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(row.settings["headers"][0]["value"], "Bearer top-secret-token");
    assert_eq!(row.settings["signing_secret"], "0123456789abcdef-signing");

    // A new origin needs the secrets again.
    back["version"] = json!("2");
    back["webhook"]["url"] = json!("https://attacker.example.net/in");
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(back),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        violated(&refused),
        ["channel.webhook.headers[0].value", "channel.webhook.signingSecret"]
            .map(|f| f.replace("signingSecret", "signing_secret"))
    );

    // Stale version, then delete.
    let (status, _) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(json!({"version": "1", "enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &server,
        "DELETE",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &server,
        "GET",
        &format!("/v1/notification-channels/{id}"),
        READ_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Over gRPC too, the secret is the marker (and Debug hides it).
    let mut grpc = server.notifications_as(Some(READ_TOKEN));
    let got = grpc
        .get_notification_channel(GetNotificationChannelRequest {
            id: slack["channel"]["id"].as_str().unwrap().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{got:?}").contains("secretpart"));
}

#[tokio::test]
async fn each_bad_field_is_named_and_nothing_stored() {
    let server = server().await;
    let cases = [
        (
            json!({"name": "", "webhook": {"url": "https://a.example.com/"}}),
            "channel.name",
        ),
        (
            json!({"name": "x".repeat(129), "webhook": {"url": "https://a.example.com/"}}),
            "channel.name",
        ),
        (json!({"name": "n"}), "channel.webhook"),
        (json!({"name": "n", "webhook": {"url": ""}}), "channel.webhook.url"),
        (
            json!({"name": "n", "webhook": {"url": "/relative"}}),
            "channel.webhook.url",
        ),
        (
            json!({"name": "n", "webhook": {"url": "ftp://a.example.com/"}}),
            "channel.webhook.url",
        ),
        (
            json!({"name": "n", "webhook": {"url": "http://169.254.169.254/latest"}}),
            "channel.webhook.url",
        ),
        (
            json!({"name": "n", "webhook": {"url": "http://10.1.2.3/"}}),
            "channel.webhook.url",
        ),
        (
            json!({"name": "n", "webhook": {"url": "https://a.example.com/", "headers": [{"name": "bad name", "value": "v"}]}}),
            "channel.webhook.headers[0].name",
        ),
        (
            json!({"name": "n", "webhook": {"url": "https://a.example.com/", "headers": [{"name": "X-Monitor-Signature", "value": "v"}]}}),
            "channel.webhook.headers[0].name",
        ),
        (
            json!({"name": "n", "webhook": {"url": "https://a.example.com/", "headers": [{"name": "authorization", "value": "***"}]}}),
            "channel.webhook.headers[0].value",
        ),
        (
            json!({"name": "n", "webhook": {"url": "https://a.example.com/", "signingSecret": "short"}}),
            "channel.webhook.signing_secret",
        ),
        (
            json!({"name": "n", "slack": {"webhookUrl": "***"}}),
            "channel.slack.webhook_url",
        ),
        (
            json!({"name": "n", "slack": {"webhookUrl": "not a url"}}),
            "channel.slack.webhook_url",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = call(
            &server,
            "POST",
            "/v1/notification-channels",
            WRITE_TOKEN,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(violated(&answer), [field], "{body} -> {answer}");
    }
    let (_, listed) = call(&server, "GET", "/v1/notification-channels", READ_TOKEN, None).await;
    // Zero is omitted in proto3 JSON.
    assert_eq!(listed.get("totalSize"), None, "{listed}");

    let ok = webhook("taken", "https://a.example.com/");
    assert_eq!(
        call(
            &server,
            "POST",
            "/v1/notification-channels",
            WRITE_TOKEN,
            Some(ok.clone())
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (status, answer) = call(&server, "POST", "/v1/notification-channels", WRITE_TOKEN, Some(ok)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
}

#[tokio::test]
async fn reading_needs_read_and_changing_or_testing_needs_write() {
    let server = server().await;
    let (status, _) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        READ_TOKEN,
        Some(webhook("ops", "https://a.example.com/")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, created) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(webhook("ops", "https://a.example.com/")),
    )
    .await;
    let id = created["channel"]["id"].as_str().unwrap();
    assert_eq!(
        call(&server, "GET", "/v1/notification-channels", READ_TOKEN, None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &server,
            "GET",
            "/v1/notification-channels",
            "no-such-token-at-all",
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    for (method, path) in [
        ("POST", format!("/v1/notification-channels/{id}/test")),
        ("DELETE", format!("/v1/notification-channels/{id}")),
    ] {
        assert_eq!(
            call(&server, method, &path, READ_TOKEN, None).await.0,
            StatusCode::FORBIDDEN,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn rules_must_name_existing_channels() {
    let server = server().await;
    let mut alerts = server.alerts_as(Some(WRITE_TOKEN));
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = alerts
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(AlertRule {
                name: "r".into(),
                channel_ids: vec![unknown.clone()],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(crate::harness::violated_fields(&err), ["rule.channel_ids[0]"]);
    assert!(err.message().contains("CreateNotificationChannel"), "{}", err.message());

    let (_, created) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(webhook("ops", "https://a.example.com/")),
    )
    .await;
    let id = created["channel"]["id"].as_str().unwrap().to_owned();
    alerts
        .create_alert_rule(CreateAlertRuleRequest {
            rule: Some(AlertRule {
                name: "r".into(),
                channel_ids: vec![id],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn test_send_reports_the_far_ends_answer() {
    let server = server().await;
    let mock = MockServer::start(&[]).await;
    let mut results = Vec::new();
    for (name, path) in [("ok", "/status/202"), ("refusing", "/status/410")] {
        let (status, created) = call(
            &server,
            "POST",
            "/v1/notification-channels",
            WRITE_TOKEN,
            Some(json!({"name": name, "webhook": {"url": mock.url(path)}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["channel"]["id"].as_str().unwrap();
        let (status, tested) = call(
            &server,
            "POST",
            &format!("/v1/notification-channels/{id}/test"),
            WRITE_TOKEN,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{tested}");
        results.push(tested["result"].clone());
    }
    assert_eq!(results[0]["delivered"], true, "{}", results[0]);
    assert_eq!(results[0]["statusCode"], 202);
    assert_eq!(results[1]["delivered"], Value::Null, "{}", results[1]);
    assert_eq!(results[1]["statusCode"], 410);
    assert_eq!(results[1]["error"], "HTTP 410");

    // A server without --notify-allow-net refuses the loopback URL outright.
    let strict = TestServer::builder().api_tokens().start().await;
    let (status, answer) = call(
        &strict,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(json!({"name": "n", "webhook": {"url": mock.url("/status/200")}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer.to_string().contains("--notify-allow-net 127.0.0.0/8"),
        "{answer}"
    );
}

#[tokio::test]
async fn group_wait_defaults_to_ten_seconds_is_bounded_and_can_change_alone() {
    let server = server().await;
    let (status, created) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(webhook("grouped", "https://hooks.example.com/in")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["channel"]["groupWait"], "10s");
    let id = created["channel"]["id"].as_str().unwrap().to_owned();

    let mut alone = webhook("alone", "https://hooks.example.com/in");
    alone["groupWait"] = json!("0s");
    let (status, created) = call(&server, "POST", "/v1/notification-channels", WRITE_TOKEN, Some(alone)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["channel"]["groupWait"], "0s");

    for bad in ["3601s", "0.0005s"] {
        let mut channel = webhook("bad", "https://hooks.example.com/in");
        channel["groupWait"] = json!(bad);
        let (status, answer) = call(&server, "POST", "/v1/notification-channels", WRITE_TOKEN, Some(channel)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert_eq!(violated(&answer), ["channel.group_wait"], "{bad}: {answer}");
    }

    let (status, updated) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(json!({"version": "1", "groupWait": "1.5s"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["channel"]["groupWait"], "1.500s");
    assert_eq!(updated["channel"]["name"], "grouped");
    let mut conn = server.pool.get().await.unwrap();
    let row = monitor_store::models::notification_channel::get(&mut conn, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(row.group_wait_ms, 1500);
    assert_eq!(row.settings["signing_secret"], "0123456789abcdef-signing");
}
