//! Email channels over REST: create and get without the password ever
//! shown, an update that sends the marker back keeps it (on the same host
//! and port only), every bad field named, and TestNotificationChannel
//! mailing through a real SMTP server (aiosmtpd, `monitor_testkit::smtp`)
//! and answering with its reply. Tests needing the SMTP server have `smtp`
//! in their name.

use monitor_store::models::notification_channel;
use monitor_testkit::{
    server::{READ_TOKEN, WRITE_TOKEN},
    smtp::{SMTP_PASSWORD, SMTP_USER, SmtpServer},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::notifications::{call, server, violated};

fn email(name: &str) -> Value {
    json!({
        "name": name,
        "email": {
            "host": "smtp.example.com",
            "tls": "EMAIL_TLS_STARTTLS",
            "username": "monitor",
            "password": "top-secret-smtp-password",
            "from": "Monitor <monitor@example.com>",
            "to": ["ops@example.com", "Oncall <oncall@example.com>"]
        }
    })
}

#[tokio::test]
async fn email_channels_round_trip_without_ever_showing_the_password() {
    let server = server().await;
    let (status, created) = call(
        &server,
        "POST",
        "/v1/notification-channels",
        WRITE_TOKEN,
        Some(email("ops mail")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let channel = &created["channel"];
    let id = channel["id"].as_str().unwrap().to_owned();
    assert_eq!(channel["email"]["password"], "***");
    assert_eq!(channel["email"]["port"], 587, "0 is STARTTLS's 587");
    assert_eq!(channel["email"]["tls"], "EMAIL_TLS_STARTTLS");
    assert_eq!(channel["email"]["username"], "monitor");
    assert_eq!(
        channel["email"]["to"],
        json!(["ops@example.com", "Oncall <oncall@example.com>"])
    );
    let (status, got) = call(
        &server,
        "GET",
        &format!("/v1/notification-channels/{id}"),
        READ_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["channel"]["email"], channel["email"]);

    // The answer sent back with another field changed keeps the password.
    let mut back = json!({"version": "1", "name": "ops mail 2", "email": channel["email"].clone()});
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
    assert_eq!(updated["channel"]["email"]["password"], "***");
    let mut conn = server.pool.get().await.unwrap();
    let row = notification_channel::get(&mut conn, id.parse().unwrap()).await.unwrap();
    assert_eq!(row.kind, "email");
    assert_eq!(row.settings["password"], "top-secret-smtp-password");
    assert_eq!(row.settings["port"], 587);

    // Only the email, by update mask: the rest stays.
    let (status, masked) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}?updateMask=email"),
        WRITE_TOKEN,
        Some(json!({"version": "2", "name": "ignored", "email": {
            "host": "smtp.example.com", "port": 587, "username": "monitor", "password": "***",
            "from": "monitor@example.com", "to": ["ops@example.com"]
        }})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{masked}");
    assert_eq!(masked["channel"]["name"], "ops mail 2");
    assert_eq!(masked["channel"]["email"]["to"], json!(["ops@example.com"]));
    let row = notification_channel::get(&mut conn, id.parse().unwrap()).await.unwrap();
    assert_eq!(row.settings["password"], "top-secret-smtp-password");

    // Another host (or port) needs the password again.
    back["version"] = json!("3");
    back["email"]["host"] = json!("smtp.attacker.example");
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(back.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(violated(&refused), ["channel.email.password"]);
    back["email"]["host"] = json!("smtp.example.com");
    back["email"]["port"] = json!(2525);
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(back),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(violated(&refused), ["channel.email.password"]);

    // A kind does not change.
    let (status, refused) = call(
        &server,
        "PATCH",
        &format!("/v1/notification-channels/{id}"),
        WRITE_TOKEN,
        Some(json!({"version": "3", "webhook": {"url": "https://hooks.example.com/"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(violated(&refused), ["channel.webhook"]);

    let (_, listed) = call(&server, "GET", "/v1/notification-channels", READ_TOKEN, None).await;
    let everything = format!("{created}{got}{updated}{masked}{listed}");
    assert!(!everything.contains("top-secret-smtp-password"), "{everything}");
}

#[tokio::test]
async fn each_bad_email_field_is_named_and_nothing_stored() {
    let server = server().await;
    let with = |change: Value| {
        let mut body = email("n");
        for (key, value) in change.as_object().unwrap() {
            body["email"][key] = value.clone();
        }
        body
    };
    let cases = [
        (with(json!({"host": ""})), "channel.email.host"),
        (with(json!({"host": "smtp example.com"})), "channel.email.host"),
        (with(json!({"host": "10.1.2.3"})), "channel.email.host"),
        (with(json!({"host": "169.254.169.254"})), "channel.email.host"),
        (with(json!({"port": 70000})), "channel.email.port"),
        (with(json!({"password": ""})), "channel.email.password"),
        (with(json!({"username": ""})), "channel.email.username"),
        (with(json!({"password": "***"})), "channel.email.password"),
        (with(json!({"from": ""})), "channel.email.from"),
        (with(json!({"from": "monitor at example.com"})), "channel.email.from"),
        (with(json!({"to": []})), "channel.email.to"),
        (
            with(json!({"to": ["a@example.com", "b@example.com", "c@"]})),
            "channel.email.to[2]",
        ),
        (
            with(json!({"to": ["a@example.com\r\nBcc: x@evil.example"]})),
            "channel.email.to[0]",
        ),
        (
            with(json!({"to": (0..51).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>()})),
            "channel.email.to",
        ),
        (
            with(json!({"caCertificatePem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"})),
            "channel.email.ca_certificate_pem",
        ),
        (
            with(json!({"caCertificatePem": "not a pem"})),
            "channel.email.ca_certificate_pem",
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
    assert_eq!(listed.get("totalSize"), None, "{listed}");
}

#[tokio::test]
async fn smtp_test_send_mails_and_answers_with_the_servers_reply() {
    let server = server().await;
    let smtp = SmtpServer::start(&[]).await;
    let mut results = Vec::new();
    for (name, password) in [("mail ok", SMTP_PASSWORD), ("mail bad login", "wrong-password")] {
        let (status, created) = call(
            &server,
            "POST",
            "/v1/notification-channels",
            WRITE_TOKEN,
            Some(json!({"name": name, "email": {
                "host": "localhost",
                "port": smtp.starttls_port,
                "username": SMTP_USER,
                "password": password,
                "from": "Monitor <monitor@example.com>",
                "to": ["ops@example.com"],
                "caCertificatePem": smtp.ca_pem,
            }})),
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
    assert_eq!(results[0]["statusCode"], 250);
    assert!(
        results[0]["bodyExcerpt"]
            .as_str()
            .unwrap()
            .starts_with("250 2.0.0 Ok: queued as starttls-"),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["delivered"], Value::Null, "{}", results[1]);
    assert_eq!(results[1]["statusCode"], 535);
    assert!(
        results[1]["error"]
            .as_str()
            .unwrap()
            .contains("refused the login as \"monitor-test\": 535"),
        "{}",
        results[1]
    );

    let received = smtp.received();
    assert_eq!(received.len(), 1, "only the good login sent: {}", smtp.log());
    assert_eq!(
        received[0].subject,
        "[monitor] Test notification for channel \"mail ok\""
    );
    assert_eq!(received[0].rcpt_tos, ["ops@example.com"]);
    assert!(received[0].text.as_deref().unwrap().contains("it works"));
    assert!(received[0].html.as_deref().unwrap().contains("it works"));
}
