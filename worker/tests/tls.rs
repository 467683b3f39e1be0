//! The TLS check against real servers: the mock's HTTPS listener (a
//! self-signed certificate with a chosen validity window), the mock's
//! plain HTTP port (not TLS), a silent listener, and the aiosmtpd test
//! server for STARTTLS (tests named `smtp` need it).
//!
//! A chain the system roots trust cannot be served here without changing
//! the machine's roots; the check's unit tests cover it with their own CA
//! (`check::tls_check`).

mod common;

use std::time::Duration;

use common::checks::{GENEROUS, MOCK_FLAGS, assertion_names, default_runner, job, runner, silent_server};
use monitor_proto::v1::{
    CheckOutcome, CheckResult, TlsAssertions, TlsCheck, TlsResult, TlsStartTls, check_result, job::Check,
};
use monitor_testkit::{
    free_port,
    mock::{MockServer, tls_config},
    smtp::SmtpServer,
};

const DAY: i64 = 24 * 3600;

/// A mock whose certificate is valid from `not_before` to `not_after`
/// days from now, for localhost and 127.0.0.1.
async fn https_mock(not_before: i64, not_after: i64) -> MockServer {
    MockServer::start_with_tls(MOCK_FLAGS, &tls_config(not_before, not_after))
        .await
        .0
}

fn check(host: &str, port: u16) -> TlsCheck {
    TlsCheck {
        host: host.to_owned(),
        port: u32::from(port),
        ..TlsCheck::default()
    }
}

fn to_mock(mock: &MockServer) -> TlsCheck {
    check("127.0.0.1", mock.tls_address.unwrap().port())
}

fn untrusted_allowed() -> Option<TlsAssertions> {
    Some(TlsAssertions {
        allow_untrusted_chain: true,
        ..TlsAssertions::default()
    })
}

async fn run(check: TlsCheck) -> CheckResult {
    runner().run(&job(Check::Tls(check), GENEROUS)).await
}

fn tls_detail(result: &CheckResult) -> &TlsResult {
    match &result.detail {
        Some(check_result::Detail::Tls(detail)) => detail,
        other => panic!("not a TLS result: {other:?}"),
    }
}

/// The whole days a certificate had left at some moment of the check:
/// between the values at its start and at its end (whole seconds, as the
/// check counts).
fn assert_days_within_the_check(result: &CheckResult, detail: &TlsResult) {
    let not_after = detail.chain[0].not_after.unwrap().seconds;
    let start = result.start_time.unwrap().seconds;
    let duration = result.duration.unwrap();
    let end = start + duration.seconds + 1;
    let days = |now: i64| (not_after - now).div_euclid(DAY);
    assert!(
        (days(end)..=days(start)).contains(&detail.days_remaining),
        "{} not within {}..={}",
        detail.days_remaining,
        days(end),
        days(start)
    );
}

#[tokio::test]
async fn the_handshake_reports_the_chain_version_and_times() {
    let mock = https_mock(-1, 30).await;
    let result = run(TlsCheck {
        assertions: untrusted_allowed(),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    let detail = tls_detail(&result);
    assert_eq!(detail.address, mock.tls_address.unwrap().to_string());
    assert_eq!(detail.protocol_version, "TLSv1.3");
    assert!(detail.cipher_suite.starts_with("TLS_"), "{}", detail.cipher_suite);
    assert!(detail.connect_time.is_some() && detail.handshake_time.is_some());
    assert_eq!(detail.chain.len(), 1);
    let leaf = &detail.chain[0];
    assert_eq!(leaf.subject, "CN=monitor-mock");
    assert_eq!(leaf.issuer, "CN=monitor-mock");
    assert_eq!(leaf.subject_alt_names, ["localhost", "127.0.0.1"]);
    assert_eq!(leaf.sha256_fingerprint.len(), 64);
    assert!(!leaf.serial.is_empty());
    let validity = leaf.not_after.unwrap().seconds - leaf.not_before.unwrap().seconds;
    assert_eq!(validity, 31 * DAY);
    assert!(!detail.chain_trusted);
    assert_eq!(detail.chain_error, "certificate not trusted (unknown issuer)");
    assert!(detail.hostname_matches);
    assert_days_within_the_check(&result, detail);
    assert_eq!(
        assertion_names(&result),
        [("chain", true), ("hostname", true), ("cert_days_remaining", true)]
    );
    assert_eq!(
        result.assertions[0].detail,
        "certificate not trusted (unknown issuer); allowed by allow_untrusted_chain"
    );
    assert_eq!(result.assertions[1].detail, "certificate valid for 127.0.0.1");
}

#[tokio::test]
async fn a_self_signed_chain_fails_unless_allowed() {
    let mock = https_mock(-1, 30).await;
    let result = run(to_mock(&mock)).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "certificate not trusted (unknown issuer)");
    assert_eq!(
        assertion_names(&result),
        [("chain", false), ("hostname", true), ("cert_days_remaining", true)]
    );
    // The handshake completed: everything else is reported.
    assert_eq!(tls_detail(&result).chain.len(), 1);
}

#[tokio::test]
async fn another_name_fails_the_hostname_unless_allowed() {
    let mock = https_mock(-1, 30).await;
    let mismatched = TlsCheck {
        server_name: "shop.example".to_owned(),
        assertions: untrusted_allowed(),
        ..to_mock(&mock)
    };
    let result = run(mismatched.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        result.error,
        "certificate not valid for shop.example (it names localhost, 127.0.0.1)"
    );
    assert!(!tls_detail(&result).hostname_matches);
    assert_eq!(
        assertion_names(&result),
        [("chain", true), ("hostname", false), ("cert_days_remaining", true)]
    );

    let allowed = TlsCheck {
        assertions: Some(TlsAssertions {
            allow_hostname_mismatch: true,
            allow_untrusted_chain: true,
            ..TlsAssertions::default()
        }),
        ..mismatched
    };
    let result = run(allowed).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert!(!tls_detail(&result).hostname_matches);

    // By name: the certificate names localhost.
    let by_name = TlsCheck {
        host: "localhost".to_owned(),
        assertions: untrusted_allowed(),
        ..to_mock(&mock)
    };
    let result = run(by_name).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert!(tls_detail(&result).hostname_matches);
}

#[tokio::test]
async fn a_certificate_expiring_soon_fails_the_minimum_days() {
    let mock = https_mock(-1, 10).await;
    let result = run(TlsCheck {
        assertions: Some(TlsAssertions {
            allow_untrusted_chain: true,
            min_days_remaining: 14,
            ..TlsAssertions::default()
        }),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    let detail = tls_detail(&result);
    assert_days_within_the_check(&result, detail);
    let date = chrono::DateTime::from_timestamp(detail.chain[0].not_after.unwrap().seconds, 0)
        .unwrap()
        .format("%Y-%m-%d");
    assert_eq!(
        result.error,
        format!(
            "certificate expires in {} days ({date}), expected more than 14",
            detail.days_remaining
        )
    );
    assert_eq!(
        assertion_names(&result),
        [("chain", true), ("hostname", true), ("cert_days_remaining", false)]
    );
}

#[tokio::test]
async fn an_expired_certificate_always_fails_the_days() {
    let mock = https_mock(-30, -2).await;
    let result = run(TlsCheck {
        assertions: untrusted_allowed(),
        ..to_mock(&mock)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    let detail = tls_detail(&result);
    assert!(detail.days_remaining < 0, "{detail:?}");
    assert_days_within_the_check(&result, detail);
    assert_eq!(detail.chain_error, "certificate expired");
    assert!(result.error.starts_with("certificate expired on "), "{}", result.error);
    assert_eq!(
        assertion_names(&result),
        [("chain", true), ("hostname", true), ("cert_days_remaining", false)]
    );
}

#[tokio::test]
async fn a_server_that_is_not_tls_fails_the_handshake() {
    let mock = MockServer::start(MOCK_FLAGS).await;
    let result = run(check("127.0.0.1", mock.address.port())).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls, "{result:?}");
    assert!(
        result
            .error
            .starts_with("TLS handshake failed: the server does not speak TLS"),
        "{}",
        result.error
    );
    let detail = tls_detail(&result);
    assert_eq!(detail.address, mock.address.to_string());
    assert!(detail.connect_time.is_some());
    assert!(detail.handshake_time.is_none() && detail.chain.is_empty());
    assert!(result.assertions.is_empty());
}

/// A server that answers every ClientHello with a fatal TLS alert
/// (handshake_failure, as a server with no cipher suite or version in
/// common sends), then closes.
async fn refusing_tls_server() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut hello = [0u8; 512];
            if stream.read(&mut hello).await.is_ok_and(|n| n > 0) {
                // Record type alert (21), TLS 1.2, length 2: fatal (2), handshake_failure (40).
                let _ = stream.write_all(&[21, 3, 3, 0, 2, 2, 40]).await;
            }
        }
    });
    address
}

#[tokio::test]
async fn a_server_alert_fails_the_handshake_with_the_alert_named() {
    let address = refusing_tls_server().await;
    let result = run(check("127.0.0.1", address.port())).await;
    assert_eq!(result.outcome(), CheckOutcome::Tls, "{result:?}");
    assert_eq!(
        result.error,
        "TLS handshake failed: the server sent alert HandshakeFailure"
    );
    let detail = tls_detail(&result);
    assert!(detail.connect_time.is_some());
    assert!(detail.handshake_time.is_none() && detail.chain.is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out_after_connecting() {
    let address = silent_server().await;
    let result = runner()
        .run(&job(
            Check::Tls(check("127.0.0.1", address.port())),
            Duration::from_millis(300),
        ))
        .await;
    assert_eq!(result.outcome(), CheckOutcome::Timeout, "{result:?}");
    assert_eq!(result.error, "timed out after 300ms");
    assert!(tls_detail(&result).connect_time.is_some());
}

#[tokio::test]
async fn unreachable_blocked_and_unknown_targets_fail_before_tls() {
    let port = free_port();
    let result = run(check("127.0.0.1", port)).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (127.0.0.1:{port})"));

    let result = run(check("nonexistent.invalid", 443)).await;
    assert_eq!(result.outcome(), CheckOutcome::Dns, "{result:?}");

    let mock = https_mock(-1, 30).await;
    let result = default_runner().run(&job(Check::Tls(to_mock(&mock)), GENEROUS)).await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert!(result.error.contains("127.0.0.0/8"), "{}", result.error);
}

fn smtp_check(port: u16) -> TlsCheck {
    TlsCheck {
        starttls: TlsStartTls::Smtp.into(),
        assertions: untrusted_allowed(),
        ..check("127.0.0.1", port)
    }
}

#[tokio::test]
async fn smtp_starttls_upgrades_before_the_handshake() {
    let smtp = SmtpServer::start(&[]).await;
    let result = run(smtp_check(smtp.starttls_port)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}\n{}", smtp.log());
    let detail = tls_detail(&result);
    assert!(detail.hostname_matches);
    assert!(!detail.chain_trusted);
    assert_eq!(detail.chain.len(), 1);
    assert!(detail.protocol_version.starts_with("TLSv1."), "{detail:?}");
}

#[tokio::test]
async fn smtp_without_starttls_offered_is_a_protocol_error() {
    let smtp = SmtpServer::start(&[]).await;
    let result = run(smtp_check(smtp.plain_port)).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
    assert!(
        result
            .error
            .starts_with("the SMTP server does not offer STARTTLS (EHLO: 250 "),
        "{}",
        result.error
    );
    assert!(tls_detail(&result).connect_time.is_some());
}

#[tokio::test]
async fn smtp_spoken_where_tls_is_expected_fails_the_handshake() {
    let smtp = SmtpServer::start(&[]).await;
    let result = run(TlsCheck {
        starttls: TlsStartTls::None.into(),
        ..smtp_check(smtp.starttls_port)
    })
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Tls, "{result:?}");
    assert!(result.error.starts_with("TLS handshake failed"), "{}", result.error);
}
