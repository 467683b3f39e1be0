//! The recording receiver over HTTP: each kind's good request is recorded
//! and answered as the real service answers, a bad one refused with the
//! reason; scripted failures (500, 429 with Retry-After, a hang) come
//! first; the log is bounded and reset.

mod common;

use std::time::Duration;

use monitor_mock::{HookScript, hooks::MAX_RECORDED_PER_RECEIVER};
use monitor_testkit::mock::MockServer;
use serde_json::{Value, json};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn post(mock: &MockServer, path: &str, body: &Value) -> (u16, String) {
    let response = mock.client.post(mock.url(path)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn script(fail_first: u32, status: Option<u16>, retry_after: Option<u64>, hang: bool) -> HookScript {
    HookScript {
        fail_first,
        status,
        retry_after,
        hang,
    }
}

#[tokio::test]
async fn every_kind_accepts_its_shape_and_answers_like_the_service() {
    let mock = MockServer::start(&[]).await;
    let card = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "down"}]}}]});
    let cases = [
        ("/hooks/slack/chat", json!({"text": "down"}), 200, "ok"),
        ("/hooks/discord/chat", json!({"content": "down"}), 204, ""),
        ("/hooks/teams/chat", card, 202, ""),
        (
            "/hooks/pagerduty/chat",
            json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "inc-1"}),
            202,
            r#"{"dedup_key":"inc-1","message":"Event processed","status":"success"}"#,
        ),
    ];
    for (path, body, status, answer) in &cases {
        assert_eq!(post(&mock, path, body).await, (*status, (*answer).to_owned()), "{path}");
    }
    let (status, answer) = post(
        &mock,
        &format!("/hooks/telegram/chat/bot{TOKEN}/sendMessage"),
        &json!({"chat_id": "-100123", "text": "<b>down</b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["result"]["chat"]["id"], "-100123");

    let log = mock.received("chat").await;
    assert_eq!(log.received.len(), 5);
    let kinds: Vec<_> = log
        .received
        .iter()
        .map(|r| serde_json::to_value(r.kind).unwrap())
        .collect();
    assert_eq!(kinds, ["slack", "discord", "teams", "pagerduty", "telegram"]);
    assert!(log.received.iter().all(|r| r.problem.is_none() && !r.scripted));
    assert_eq!(log.received[0].body, json!({"text": "down"}));
    assert_eq!(log.received[0].headers["content-type"], ["application/json"]);
    assert_eq!(log.received.iter().map(|r| r.n).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert!(log.received.windows(2).all(|w| w[0].at_unix_ms <= w[1].at_unix_ms));
    assert_eq!(mock.stats().await.by_route["hooks"].total, 5);
}

#[tokio::test]
async fn bad_shapes_are_refused_with_the_reason() {
    let mock = MockServer::start(&[]).await;
    let cases = [
        ("/hooks/webhook/bad", json!({"version": 2}), 400, "`version` must be 1"),
        ("/hooks/slack/bad", json!({"blocks": []}), 400, "no_text"),
        (
            "/hooks/discord/bad",
            json!({"content": "x".repeat(2001)}),
            400,
            "`content` is 2001 characters",
        ),
        (
            "/hooks/teams/bad",
            json!({"@type": "MessageCard", "type": "message", "attachments": [{"contentType": "application/vnd.microsoft.teams.card.o365connector"}]}),
            400,
            "contentType",
        ),
        (
            "/hooks/pagerduty/bad",
            json!({"routing_key": "short", "event_action": "trigger"}),
            400,
            "32 characters",
        ),
        (
            &format!("/hooks/telegram/bad/bot{TOKEN}/sendMessage") as &str,
            json!({"chat_id": 1, "text": "shop <eu>", "parse_mode": "HTML"}),
            400,
            "can't parse entities",
        ),
        (
            "/hooks/telegram/bad/botnotatoken/sendMessage",
            json!({"chat_id": 1, "text": "x"}),
            401,
            "Unauthorized",
        ),
    ];
    for (path, body, status, reason) in cases {
        let (got, answer) = post(&mock, path, &body).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer.contains(reason), "{path}: {answer}");
    }
    let log = mock.received("bad").await;
    assert_eq!(log.received.len(), 7);
    assert!(
        log.received
            .iter()
            .all(|r| r.problem.is_some() && r.status.is_some_and(|s| s >= 400))
    );

    // Not JSON at all.
    let response = mock
        .client
        .post(mock.url("/hooks/slack/text"))
        .body("text=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(mock.received("text").await.received[0].body, "text=hi");
    // Unknown kinds and paths, other methods, bad names.
    assert_eq!(post(&mock, "/hooks/email/x", &json!({})).await.0, 404);
    assert_eq!(post(&mock, "/hooks/telegram/x", &json!({})).await.0, 404);
    assert_eq!(mock.get("/hooks/slack/x").await.status(), 405);
    assert_eq!(
        post(&mock, "/hooks/slack/bad%20name", &json!({"text": "x"})).await.0,
        400
    );
}

#[tokio::test]
async fn scripted_failures_come_first_then_the_shape_check() {
    let mock = MockServer::start(&[]).await;
    mock.script_hook("flaky", &script(2, Some(500), None, false)).await;
    let body = json!({"text": "down"});
    assert_eq!(post(&mock, "/hooks/slack/flaky", &body).await.0, 500);
    assert_eq!(post(&mock, "/hooks/slack/flaky", &body).await.0, 500);
    assert_eq!(post(&mock, "/hooks/slack/flaky", &body).await.0, 200);
    let log = mock.received("flaky").await;
    assert_eq!(
        log.received.iter().map(|r| (r.status, r.scripted)).collect::<Vec<_>>(),
        [(Some(500), true), (Some(500), true), (Some(200), false)]
    );
    assert_eq!(log.failures_left, 0);

    mock.script_hook("limited", &script(1, Some(429), Some(7), false)).await;
    let response = mock
        .client
        .post(mock.url("/hooks/discord/limited"))
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    // Telegram asks for the wait in the body, not a header.
    mock.script_hook("tg", &script(1, Some(429), Some(3), false)).await;
    let response = mock
        .client
        .post(mock.url(&format!("/hooks/telegram/tg/bot{TOKEN}/sendMessage")))
        .json(&json!({"chat_id": 1, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["parameters"]["retry_after"], 3);
    assert_eq!(answer["ok"], false);

    // A hang never answers: the client gives up, and the request is recorded.
    mock.script_hook("stuck", &script(1, None, None, true)).await;
    let gave_up = mock
        .client
        .post(mock.url("/hooks/teams/stuck"))
        .json(&json!({}))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(gave_up.is_timeout(), "{gave_up:?}");
    let log = mock.received("stuck").await;
    assert_eq!(log.received.len(), 1);
    assert_eq!(log.received[0].status, None);
    assert!(log.received[0].problem.is_some(), "the empty body was still checked");
}

#[tokio::test]
async fn bad_scripts_are_refused() {
    let mock = MockServer::start(&[]).await;
    for bad in [
        json!({"fail_first": 1}),
        json!({"fail_first": 0, "status": 500}),
        json!({"fail_first": 1, "status": 302}),
        json!({"fail_first": 1, "status": 500, "hang": true}),
        json!({"fail_first": 1, "status": 500, "retries": 2}),
        json!("nonsense"),
    ] {
        let response = mock
            .client
            .put(mock.url("/__hooks/x/script"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let error: common::ErrorBody = response.json().await.unwrap();
        assert!(!error.error.is_empty());
    }
    assert_eq!(
        mock.client
            .post(mock.url("/__hooks/x/script"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(mock.received("x").await.script, None);
}

#[tokio::test]
async fn the_log_is_bounded_and_reset() {
    let mock = MockServer::start(&[]).await;
    for _ in 0..MAX_RECORDED_PER_RECEIVER + 5 {
        post(&mock, "/hooks/slack/busy", &json!({"text": "x"})).await;
    }
    let log = mock.received("busy").await;
    assert_eq!(log.received.len(), MAX_RECORDED_PER_RECEIVER);
    assert_eq!(log.dropped, 5);
    assert_eq!(log.received[0].n, 6, "the oldest went first");

    let big = json!({"text": "x", "attachments_note": "y".repeat(100 * 1024)});
    assert_eq!(post(&mock, "/hooks/slack/big", &big).await.0, 200);
    let kept = &mock.received("big").await.received[0];
    assert!(kept.body_truncated);
    assert_eq!(
        kept.body.as_str().unwrap().len(),
        monitor_mock::hooks::MAX_RECORDED_BODY_BYTES
    );
    let huge = json!({"text": "x".repeat(monitor_mock::hooks::MAX_HOOK_BODY_BYTES)});
    assert_eq!(post(&mock, "/hooks/slack/big", &huge).await.0, 413);

    let response = mock.client.delete(mock.url("/__hooks/busy")).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(mock.received("busy").await.received.is_empty());
    assert_eq!(mock.received("big").await.received.len(), 1);
    assert_eq!(
        mock.client.delete(mock.url("/__hooks")).send().await.unwrap().status(),
        204
    );
    assert!(mock.received("big").await.received.is_empty());
    post(&mock, "/hooks/slack/again", &json!({"text": "x"})).await;
    mock.client.post(mock.url("/__reset")).send().await.unwrap();
    assert!(
        mock.received("again").await.received.is_empty(),
        "POST /__reset forgets receivers too"
    );
}
