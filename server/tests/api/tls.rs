//! The one port over TLS (a certificate made by rcgen for 127.0.0.1 and
//! localhost): native gRPC with grpcurl and tonic, grpc-web, REST and the
//! dashboard over https, and nothing in plaintext.

use std::time::Duration;

use monitor_proto::v1::ListJobsRequest;
use monitor_testkit::{
    server::{TestCertificate, TestServer},
    wait_until,
};

use crate::{
    grpcurl::{call, grpcurl},
    harness::http_job,
};

/// An HTTPS client trusting `ca` (PEM) and nothing else.
fn https_client(ca: Option<&str>) -> reqwest::Client {
    // reqwest and the server each bring a rustls provider; name one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn grpcurl_trusting_the_ca_calls_health_and_job_service_over_tls() {
    let certificate = TestCertificate::new();
    let server = TestServer::builder().tls(&certificate).start().await;
    let created = server.create(http_job("over-tls")).await;

    // Health turns SERVING once the database probe has answered.
    wait_until("grpcurl to see health SERVING", Duration::from_secs(30), || async {
        let health = call(&server, "grpc.health.v1.Health/Check", "{}").await;
        match health["status"] == "SERVING" {
            true => Ok(()),
            false => Err(format!("health {health}")),
        }
    })
    .await;
    let list = call(&server, "monitor.v1.JobService/ListJobs", "{}").await;
    assert_eq!(list["jobs"][0]["id"], created.id, "{list}");
    let list = grpcurl(&server, &["list"]).await;
    assert!(
        list.success && list.stdout.contains("monitor.v1.JobService"),
        "{}",
        list.stderr
    );

    // Without the CA the certificate is refused; in plaintext nothing answers.
    let mut untrusted = tokio::process::Command::new(crate::grpcurl::grpcurl_binary());
    let out = untrusted
        .args([&server.addr.to_string(), "grpc.health.v1.Health/Check"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("certificate"), "{stderr}");
    let mut plaintext = tokio::process::Command::new(crate::grpcurl::grpcurl_binary());
    let out = plaintext
        .args([
            "-plaintext",
            "-max-time",
            "5",
            &server.addr.to_string(),
            "grpc.health.v1.Health/Check",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "plaintext gRPC must fail on the TLS port");
}

#[tokio::test]
async fn rest_grpc_web_and_the_dashboard_answer_over_https_only() {
    let certificate = TestCertificate::new();
    let server = TestServer::builder().tls(&certificate).start().await;
    let created = server.create(http_job("rest-over-tls")).await;
    let client = https_client(Some(&certificate.cert_pem));

    // REST, negotiated to HTTP/2 by ALPN.
    let response = client.get(server.url("/v1/jobs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN h2");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["jobs"][0]["id"], created.id, "{body}");
    // HTTP/1.1 clients are served too.
    let http1 = reqwest::Client::builder()
        .http1_only()
        .tls_certs_only([reqwest::Certificate::from_pem(certificate.cert_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let response = http1.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (response.status().as_u16(), response.version()),
        (200, reqwest::Version::HTTP_11)
    );
    // The dashboard.
    let response = client.get(server.url("/ui/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("<html"), "the dashboard's page");
    // grpc-web: one empty HealthCheckRequest frame.
    let response = client
        .post(server.url("/grpc.health.v1.Health/Check"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("grpc-status:0"),
        "grpc-web answered OK: {body:?}"
    );
    // And the tonic client of the harness speaks TLS as well.
    let listed = server.jobs.clone().list_jobs(ListJobsRequest::default()).await.unwrap();
    assert_eq!(listed.into_inner().jobs.len(), 1);

    // Plain HTTP on the TLS port fails; so does a client without the CA.
    let plain = https_client(None)
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    assert!(plain.is_err(), "plain http must fail: {plain:?}");
    let untrusted = https_client(None).get(server.url("/healthz")).send().await;
    assert!(untrusted.is_err(), "an untrusted certificate must fail: {untrusted:?}");
}
