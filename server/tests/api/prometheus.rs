//! `/metrics` parses as Prometheus exposition and moves with the traffic.

use monitor_proto::v1::{GetJobRequest, ListJobsRequest};
use monitor_testkit::{metrics, server::TestServer};

use crate::harness::http_job;

async fn scrape(server: &TestServer) -> prometheus_parse::Scrape {
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    metrics::parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_and_count_requests_and_jobs() {
    let server = TestServer::start().await;
    let job = server.create(http_job("counted")).await;
    let mut jobs = server.jobs.clone();
    for _ in 0..3 {
        jobs.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap();
    }
    jobs.get_job(GetJobRequest {
        id: uuid::Uuid::now_v7().to_string(),
    })
    .await
    .unwrap_err();
    jobs.list_jobs(ListJobsRequest::default()).await.unwrap();
    reqwest::get(server.url(&format!("/v1/jobs/{}", job.id))).await.unwrap();
    reqwest::get(server.url("/no/such/route")).await.unwrap();

    let scrape = scrape(&server).await;
    let get_ok = [
        ("protocol", "grpc"),
        ("route", "/monitor.v1.JobService/GetJob"),
        ("code", "0"),
    ];
    assert_eq!(metrics::sum(&scrape, "monitor_requests_total", &get_ok), 3.0);
    let get_missing = [
        ("protocol", "grpc"),
        ("route", "/monitor.v1.JobService/GetJob"),
        ("code", "5"),
    ];
    assert_eq!(
        metrics::sum(&scrape, "monitor_requests_total", &get_missing),
        1.0,
        "NOT_FOUND counted by its gRPC code"
    );
    let rest = [("protocol", "http"), ("route", "/v1/jobs/:id"), ("code", "200")];
    let rest_samples: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "monitor_requests_total")
        .collect();
    assert_eq!(
        metrics::sum(&scrape, "monitor_requests_total", &rest),
        1.0,
        "REST routes are labelled by their pattern: {rest_samples:?}"
    );
    let unmatched = [("protocol", "http"), ("route", "unmatched"), ("code", "404")];
    assert_eq!(metrics::sum(&scrape, "monitor_requests_total", &unmatched), 1.0);
    assert_eq!(metrics::sum(&scrape, "monitor_jobs", &[("state", "stopped")]), 1.0);
    assert_eq!(metrics::sum(&scrape, "monitor_jobs", &[("state", "running")]), 0.0);
    assert_eq!(metrics::sum(&scrape, "monitor_connected_workers", &[]), 0.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("monitor_request_duration_seconds"))
    );

    // The counters move: three more GetJobs.
    for _ in 0..3 {
        jobs.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap();
    }
    let again = crate::prometheus::scrape(&server).await;
    assert_eq!(metrics::sum(&again, "monitor_requests_total", &get_ok), 6.0);
}

#[tokio::test]
async fn metrics_stay_open_when_tokens_are_configured() {
    let server = TestServer::builder().api_tokens().start().await;
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200, "scrapers need no API token");
}
