//! ListJobSummaries (what the dashboard's job list calls) over gRPC and
//! REST, against rollups written with the aggregators' own flush, and the
//! dashboard files served at `/ui/`.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use monitor_proto::v1::{JobPhase, JobState, ListJobSummariesRequest, StartJobRequest};
use monitor_server::{server::ServerOptions, ui::UiSource};
use monitor_store::rollup::{Rollup, RollupKey};
use monitor_testkit::server::{READ_TOKEN, TestServer};
use reqwest::{Client, StatusCode, header};
use serde_json::Value;
use tonic::Code;
use uuid::Uuid;

use crate::harness::{http_job, write_rollups};

/// A rollup of `passed` passing checks answering in `rt_ms` and `failed`
/// timeouts (which measure no response time).
fn rollup(passed: i64, failed: i64, rt_ms: f64) -> Rollup {
    let mut rollup = Rollup::default();
    for _ in 0..passed {
        rollup.add(Some(rt_ms), true, Some(200), None);
    }
    for _ in 0..failed {
        rollup.add(None, false, None, Some("CHECK_OUTCOME_TIMEOUT"));
    }
    rollup
}

fn key(job_id: &str, location: &str, granularity: &str, dt: DateTime<Utc>) -> RollupKey {
    RollupKey {
        job_id: Uuid::parse_str(job_id).unwrap(),
        location: location.into(),
        granularity: granularity.into(),
        dt,
    }
}

#[tokio::test]
async fn summaries_carry_status_and_the_last_day_and_hour_of_rollups() {
    let server = TestServer::start().await;
    let busy = server.create(http_job("summary-busy")).await;
    let quiet = server.create(http_job("summary-quiet")).await;
    let failing = server.create(http_job("summary-failing")).await;
    server
        .jobs
        .clone()
        .start_job(StartJobRequest { id: busy.id.clone() })
        .await
        .unwrap();

    let minute = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap();
    let ago = |minutes: i64| minute - TimeDelta::minutes(minutes);
    write_rollups(
        &server.pool,
        &[
            // In the last hour: counted, and in the sparkline.
            (key(&busy.id, "", "1m", ago(30)), rollup(9, 1, 100.0)),
            (key(&busy.id, "", "1m", ago(5)), rollup(4, 0, 40.0)),
            // In the last day but not the last hour.
            (key(&busy.id, "", "1m", ago(180)), rollup(5, 5, 10.0)),
            // Older than a day: not counted.
            (key(&busy.id, "", "1m", ago(25 * 60)), rollup(100, 0, 1.0)),
            // Per-location and coarser rows repeat the same checks: ignored.
            (key(&busy.id, "eu-1", "1m", ago(5)), rollup(4, 0, 40.0)),
            (
                key(&busy.id, "", "1h", minute.duration_trunc(TimeDelta::hours(1)).unwrap()),
                rollup(13, 1, 80.0),
            ),
            // Only timeouts: checks, but no response time to plot.
            (key(&failing.id, "", "1m", ago(2)), rollup(0, 3, 0.0)),
        ],
    )
    .await;

    let response = server
        .jobs
        .clone()
        .list_job_summaries(ListJobSummariesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.total_size, 3);
    assert!(response.next_page_token.is_empty());
    let names: Vec<_> = response
        .summaries
        .iter()
        .map(|s| s.job.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    let find = |id: &str| {
        response
            .summaries
            .iter()
            .find(|s| s.job.as_ref().unwrap().id == id)
            .unwrap()
    };

    let summary = find(&busy.id);
    assert_eq!((summary.checks_24h, summary.passed_24h), (24, 18));
    assert_eq!(summary.uptime_24h, Some(0.75));
    let sparkline: Vec<_> = summary
        .latency_1h
        .iter()
        .map(|s| (DateTime::<Utc>::try_from(s.dt.unwrap()).unwrap(), s.rt_avg))
        .collect();
    assert_eq!(sparkline, vec![(ago(30), 100.0), (ago(5), 40.0)]);
    let status = summary.status.as_ref().unwrap();
    assert_eq!(status.job_id, busy.id);
    assert_eq!(status.desired_state, JobState::Running as i32);
    assert_eq!(status.phase, JobPhase::Pending as i32, "no worker is connected");

    let summary = find(&quiet.id);
    assert_eq!((summary.checks_24h, summary.passed_24h), (0, 0));
    assert_eq!(summary.uptime_24h, None);
    assert!(summary.latency_1h.is_empty());
    assert_eq!(summary.status.as_ref().unwrap().phase, JobPhase::Stopped as i32);

    let summary = find(&failing.id);
    assert_eq!((summary.checks_24h, summary.passed_24h), (3, 0));
    assert_eq!(summary.uptime_24h, Some(0.0));
    assert!(summary.latency_1h.is_empty());

    // REST: the same figures in proto3 JSON (int64 as strings).
    let body: Value = Client::new()
        .get(server.url("/v1/job-summaries?nameContains=busy&state=running"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["totalSize"], "1", "{body}");
    let summary = &body["summaries"][0];
    assert_eq!(summary["job"]["id"], busy.id.as_str());
    assert_eq!(summary["checks24h"], "24");
    assert_eq!(summary["passed24h"], "18");
    assert_eq!(summary["uptime24h"], 0.75);
    assert_eq!(summary["latency1h"].as_array().unwrap().len(), 2);
    assert_eq!(summary["latency1h"][1]["rtAvg"], 40.0);
    assert_eq!(summary["status"]["phase"], "JOB_PHASE_PENDING");
}

#[tokio::test]
async fn summaries_page_and_filter_like_list_jobs() {
    let server = TestServer::start().await;
    for i in 0..5 {
        let mut job = http_job(&format!("paged-{i}"));
        job.labels
            .insert("team".into(), if i % 2 == 0 { "a" } else { "b" }.into());
        server.create(job).await;
    }
    let mut client = server.jobs.clone();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_job_summaries(ListJobSummariesRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 5);
        assert!(page.summaries.len() <= 2);
        seen.extend(page.summaries.into_iter().map(|s| s.job.unwrap().name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"]);

    let team_b = client
        .list_job_summaries(ListJobSummariesRequest {
            label_selector: vec!["team=b".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(team_b.total_size, 2);
}

#[tokio::test]
async fn bad_summary_requests_name_what_is_wrong() {
    let server = TestServer::start().await;
    let status = server
        .jobs
        .clone()
        .list_job_summaries(ListJobSummariesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("page_size"), "{status:?}");

    let status = server
        .jobs
        .clone()
        .list_job_summaries(ListJobSummariesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let client = Client::new();
    for (query, field) in [
        ("?pageSize=many", "page_size"),
        ("?state=paused", "state"),
        ("?color=blue", "color"),
        ("?labelSelector=nolabel", "label_selector"),
    ] {
        let response = client
            .get(server.url(&format!("/v1/job-summaries{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 3, "{body}");
        assert!(
            body.to_string().contains(field),
            "{query}: the error names {field}: {body}"
        );
    }
}

#[tokio::test]
async fn summaries_need_a_read_token_when_tokens_are_on() {
    let server = TestServer::builder().api_tokens().start().await;
    let client = Client::new();
    let url = server.url("/v1/job-summaries");
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let response = client.get(&url).bearer_auth(READ_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let status = server
        .jobs_as(None)
        .list_job_summaries(ListJobSummariesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    server
        .jobs_as(Some(READ_TOKEN))
        .list_job_summaries(ListJobSummariesRequest::default())
        .await
        .unwrap();

    // The dashboard itself is public: it asks for the token.
    let response = client.get(server.url("/ui/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary() {
    let server = TestServer::start().await;
    let client = no_redirects();

    let response = client.get(server.url("/ui")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()[header::LOCATION], "/ui/");

    let response = client.get(server.url("/ui/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("app.js"), "{page}");

    let response = client.get(server.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let etag = response.headers()[header::ETAG].clone();
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        include_bytes!("../../ui/dist/app.js")
    );

    // An unchanged file costs a 304.
    let response = client
        .get(server.url("/ui/app.js"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::ETAG], etag);

    // Compressed when the browser accepts it.
    let response = client
        .get(server.url("/ui/app.css"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");

    for path in ["/ui/nope.js", "/ui/..%2FCargo.toml", "/ui/dist/app.js"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 5, "{path}: {body}");
    }
}

#[tokio::test]
async fn ui_dir_serves_the_dashboard_from_disk() {
    let dir = std::env::temp_dir().join(format!("monitor-ui-{}-{}", std::process::id(), line!()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>from disk</p><script src=app.js></script>").unwrap();
    assert_eq!(UiSource::Directory(dir.clone()).check(), Ok(()));

    let options = ServerOptions {
        ui: UiSource::Directory(dir.clone()),
        ..ServerOptions::default()
    };
    let server = TestServer::builder().api_tokens().options(options).start().await;
    let client = Client::new();
    let page = client.get(server.url("/ui/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.text().await.unwrap(),
        "<p>from disk</p><script src=app.js></script>"
    );
    // A file of the app that the directory lacks is a 404, not the embedded copy.
    let missing = client.get(server.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    std::fs::remove_dir_all(&dir).unwrap();
}
