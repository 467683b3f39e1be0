//! QueryMetrics over gRPC and REST, against rollups written with the
//! aggregators' own flush. Expected figures are computed here from the raw
//! checks the rollups were built from, not from the rollups.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use monitor_proto::v1::{MetricPoint, MetricSummary, QueryMetricsRequest, QueryMetricsResponse, ResetDatabaseRequest};
use monitor_store::{
    models::{consumer_offsets, job_metrics},
    rollup::{Rollup, RollupKey},
};
use monitor_testkit::server::{ADMIN_TOKEN, READ_TOKEN, TestServer, WRITE_TOKEN};
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tonic::Code;
use uuid::Uuid;

use crate::harness::{ROLLUP_GROUP, ROLLUP_TOPIC, http_job, violated_fields, write_rollups};

/// The histogram reports a bucket's middle: within 2.5 % of the true value.
const PERCENTILE_TOLERANCE: f64 = 0.03;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// One check as a worker would report it.
#[derive(Debug, Clone, Copy)]
struct Check {
    rt_ms: Option<f64>,
    passed: bool,
    status: Option<u32>,
    error: Option<&'static str>,
}

/// `n` checks with seeded response times between `low` and `high` ms: most
/// pass with 200, some fail an assertion with 500, some time out.
fn checks(seed: u64, n: usize, low: f64, high: f64) -> Vec<Check> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| match rng.random_range(0..20) {
            0 | 1 => Check {
                rt_ms: None,
                passed: false,
                status: None,
                error: Some("CHECK_OUTCOME_TIMEOUT"),
            },
            2 => Check {
                rt_ms: Some(rng.random_range(low..high)),
                passed: false,
                status: Some(500),
                error: Some("CHECK_OUTCOME_ASSERTION_FAILED"),
            },
            _ => Check {
                rt_ms: Some(rng.random_range(low..high)),
                passed: true,
                status: Some(200),
                error: None,
            },
        })
        .collect()
}

/// The rollup a worker builds from `checks`.
fn rollup(checks: &[Check]) -> Rollup {
    let mut rollup = Rollup::default();
    for c in checks {
        rollup.add(c.rt_ms, c.passed, c.status, c.error);
    }
    rollup
}

fn key(job_id: &str, location: &str, granularity: &str, dt: &str) -> RollupKey {
    RollupKey {
        job_id: Uuid::parse_str(job_id).unwrap(),
        location: location.into(),
        granularity: granularity.into(),
        dt: at(dt),
    }
}

/// The figures of `checks`, computed directly from them.
struct Expected {
    checks: i64,
    passed: i64,
    min: f64,
    max: f64,
    avg: f64,
    count: i64,
    sorted: Vec<f64>,
    status: HashMap<String, i64>,
    errors: HashMap<String, i64>,
}

impl Expected {
    fn of(checks: &[Check]) -> Expected {
        let mut sorted: Vec<f64> = checks.iter().filter_map(|c| c.rt_ms).collect();
        sorted.sort_by(f64::total_cmp);
        let mut status = HashMap::new();
        let mut errors = HashMap::new();
        for c in checks {
            if let Some(code) = c.status {
                *status.entry(code.to_string()).or_default() += 1;
            }
            if let Some(error) = c.error {
                *errors.entry(error.to_owned()).or_default() += 1;
            }
        }
        Expected {
            checks: checks.len() as i64,
            passed: checks.iter().filter(|c| c.passed).count() as i64,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            avg: sorted.iter().sum::<f64>() / sorted.len() as f64,
            count: sorted.len() as i64,
            sorted,
            status,
            errors,
        }
    }

    /// Nearest-rank percentile of the raw response times.
    fn percentile(&self, q: f64) -> f64 {
        let rank = ((q * self.sorted.len() as f64).ceil() as usize).max(1);
        self.sorted[rank - 1]
    }

    fn uptime(&self) -> f64 {
        self.passed as f64 / self.checks as f64
    }
}

fn assert_close(what: &str, actual: Option<f64>, expected: f64, tolerance: f64) {
    let actual = actual.unwrap_or_else(|| panic!("{what} is unset"));
    assert!(
        (actual - expected).abs() <= tolerance * expected.abs(),
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

/// The aggregates of a point or the summary, as one shape.
struct Figures<'a> {
    checks: i64,
    passed: i64,
    uptime: Option<f64>,
    rt_min: Option<f64>,
    rt_max: Option<f64>,
    rt_avg: Option<f64>,
    rt_count: Option<i64>,
    percentiles: [Option<f64>; 4],
    status_counts: &'a HashMap<String, i64>,
    error_counts: &'a HashMap<String, i64>,
}

impl<'a> From<&'a MetricPoint> for Figures<'a> {
    fn from(p: &'a MetricPoint) -> Self {
        Figures {
            checks: p.checks,
            passed: p.passed,
            uptime: p.uptime,
            rt_min: p.rt_min,
            rt_max: p.rt_max,
            rt_avg: p.rt_avg,
            rt_count: p.rt_count,
            percentiles: [p.p50, p.p90, p.p95, p.p99],
            status_counts: &p.status_counts,
            error_counts: &p.error_counts,
        }
    }
}

impl<'a> From<&'a MetricSummary> for Figures<'a> {
    fn from(s: &'a MetricSummary) -> Self {
        Figures {
            checks: s.checks,
            passed: s.passed,
            uptime: s.uptime,
            rt_min: s.rt_min,
            rt_max: s.rt_max,
            rt_avg: s.rt_avg,
            rt_count: s.rt_count,
            percentiles: [s.p50, s.p90, s.p95, s.p99],
            status_counts: &s.status_counts,
            error_counts: &s.error_counts,
        }
    }
}

fn assert_figures<'a>(what: &str, actual: impl Into<Figures<'a>>, expected: &Expected) {
    let actual = actual.into();
    assert_eq!(actual.checks, expected.checks, "{what}: checks");
    assert_eq!(actual.passed, expected.passed, "{what}: passed");
    assert_close(&format!("{what}: uptime"), actual.uptime, expected.uptime(), 1e-12);
    assert_eq!(actual.rt_min, Some(expected.min), "{what}: min");
    assert_eq!(actual.rt_max, Some(expected.max), "{what}: max");
    assert_close(&format!("{what}: avg"), actual.rt_avg, expected.avg, 1e-9);
    assert_eq!(actual.rt_count, Some(expected.count), "{what}: count");
    for (value, q) in actual.percentiles.into_iter().zip([0.50, 0.90, 0.95, 0.99]) {
        assert_close(
            &format!("{what}: p{}", q * 100.0),
            value,
            expected.percentile(q),
            PERCENTILE_TOLERANCE,
        );
    }
    assert_eq!(actual.status_counts, &expected.status, "{what}: status counts");
    assert_eq!(actual.error_counts, &expected.errors, "{what}: error counts");
}

fn request(job_id: &str, granularity: &str, start: &str, end: &str) -> QueryMetricsRequest {
    QueryMetricsRequest {
        job_id: job_id.to_owned(),
        granularity: granularity.to_owned(),
        start_time: Some(at(start).into()),
        end_time: Some(at(end).into()),
        ..Default::default()
    }
}

/// A response as the REST client reads it: through JSON text, so both sides
/// of a comparison go through the same float parsing.
fn json(response: &QueryMetricsResponse) -> Value {
    serde_json::from_str(&serde_json::to_string(response).unwrap()).unwrap()
}

async fn query(server: &TestServer, request: QueryMetricsRequest) -> QueryMetricsResponse {
    server.jobs.clone().query_metrics(request).await.unwrap().into_inner()
}

async fn query_err(server: &TestServer, request: QueryMetricsRequest) -> tonic::Status {
    server.jobs.clone().query_metrics(request).await.unwrap_err()
}

async fn get(server: &TestServer, path_and_query: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = Client::new().get(server.url(path_and_query));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text:?}"));
    (status, body)
}

/// Asserts a 400 whose field violations name `field`.
fn assert_bad_request(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 3, "{body}");
    let fields: Vec<&str> = body["details"][0]["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&field), "{field} not in {fields:?}: {body}");
}

#[tokio::test]
async fn points_and_summary_match_the_checks_over_grpc_and_rest() {
    let server = TestServer::start().await;
    let id = server.create(http_job("metrics")).await.id;
    let minutes = [
        ("2026-11-27T10:00:00Z", checks(1, 120, 5.0, 80.0)),
        ("2026-11-27T10:01:00Z", checks(2, 90, 20.0, 300.0)),
        ("2026-11-27T10:02:00Z", checks(3, 30, 400.0, 2500.0)),
    ];
    let mut rows: Vec<_> = minutes
        .iter()
        .map(|(dt, checks)| (key(&id, "", "1m", dt), rollup(checks)))
        .collect();
    // Outside the range (before it, and at its exclusive end), another
    // granularity, a location, and another job: none of them is answered.
    let noise = rollup(&checks(9, 50, 1.0, 5000.0));
    for (location, granularity, dt) in [
        ("", "1m", "2026-11-27T09:59:00Z"),
        ("", "1m", "2026-11-27T10:03:00Z"),
        ("", "5m", "2026-11-27T10:00:00Z"),
        ("eu-west", "1m", "2026-11-27T10:01:00Z"),
    ] {
        rows.push((key(&id, location, granularity, dt), noise.clone()));
    }
    let other = server.create(http_job("other")).await.id;
    rows.push((key(&other, "", "1m", "2026-11-27T10:01:00Z"), noise.clone()));
    write_rollups(&server.pool, &rows).await;

    let response = query(
        &server,
        request(&id, "1m", "2026-11-27T10:00:00Z", "2026-11-27T10:03:00Z"),
    )
    .await;
    assert_eq!(response.granularity, "1m");
    assert_eq!(response.start_time, Some(at("2026-11-27T10:00:00Z").into()));
    assert_eq!(response.end_time, Some(at("2026-11-27T10:03:00Z").into()));
    assert_eq!(response.location, "");
    assert_eq!(response.points.len(), 3, "{response:?}");
    for (point, (dt, checks)) in response.points.iter().zip(&minutes) {
        assert_eq!(point.dt, Some(at(dt).into()));
        assert_figures(dt, point, &Expected::of(checks));
    }
    let all: Vec<Check> = minutes.iter().flat_map(|(_, checks)| checks.iter().copied()).collect();
    let summary = response.summary.as_ref().unwrap();
    assert_figures("summary", summary, &Expected::of(&all));
    // The summary's percentiles come from the merged histogram: the mean of
    // the points' medians is far from the median of all checks.
    let mean_of_medians = response.points.iter().map(|p| p.p50.unwrap()).sum::<f64>() / 3.0;
    assert!(
        (mean_of_medians - summary.p50.unwrap()).abs() > 0.5 * summary.p50.unwrap(),
        "{mean_of_medians} vs {:?}",
        summary.p50
    );

    // REST answers the same message in canonical proto3 JSON.
    let (status, body) = get(
        &server,
        &format!("/v1/jobs/{id}/metrics?granularity=1m&start=2026-11-27T10:00:00Z&end=2026-11-27T10:03:00Z&location="),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json(&response));
    assert_eq!(body["points"][0]["dt"], "2026-11-27T10:00:00Z");
    assert_eq!(body["points"][0]["checks"], "120", "int64 is a string");
    assert_eq!(body["summary"]["checks"], "240");
    assert_eq!(
        body["summary"]["statusCounts"]["200"],
        Expected::of(&all).status["200"].to_string()
    );
    assert!(body["summary"]["uptime"].is_f64());
    assert!(body["summary"]["errorCounts"]["CHECK_OUTCOME_TIMEOUT"].is_string());
    // A `+01:00` offset left unencoded (so it arrives as a space) still reads.
    let (status, offset) = get(
        &server,
        &format!(
            "/v1/jobs/{id}/metrics?granularity=1m&startTime=2026-11-27T11:00:00+01:00&endTime=2026-11-27T10:03:00Z"
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{offset}");
    assert_eq!(offset, body);
}

#[tokio::test]
async fn location_filter_selects_one_location() {
    let server = TestServer::start().await;
    let mut job = http_job("located");
    job.locations = vec!["eu-west".into(), "us-east".into()];
    let id = server.create(job).await.id;
    let eu = checks(11, 60, 10.0, 100.0);
    let us = checks(12, 40, 150.0, 400.0);
    let overall: Vec<Check> = eu.iter().chain(&us).copied().collect();
    let dt = "2026-11-27T10:00:00Z";
    write_rollups(
        &server.pool,
        &[
            (key(&id, "", "1m", dt), rollup(&overall)),
            (key(&id, "eu-west", "1m", dt), rollup(&eu)),
            (key(&id, "us-east", "1m", dt), rollup(&us)),
        ],
    )
    .await;
    let (start, end) = ("2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z");
    for (location, expected) in [("", &overall), ("eu-west", &eu), ("us-east", &us)] {
        let mut by_location = request(&id, "1m", start, end);
        by_location.location = location.into();
        let response = query(&server, by_location).await;
        assert_eq!(response.location, location);
        assert_eq!(response.points.len(), 1);
        assert_figures(location, &response.points[0], &Expected::of(expected));
        assert_figures(location, response.summary.as_ref().unwrap(), &Expected::of(expected));
        let (status, body) = get(
            &server,
            &format!("/v1/jobs/{id}/metrics?start={start}&end={end}&location={location}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json(&response));
    }
    // A location without data: no points, an empty summary that says so.
    let mut elsewhere = request(&id, "1m", start, end);
    elsewhere.location = "ap-south".into();
    let response = query(&server, elsewhere).await;
    assert!(response.points.is_empty());
    let summary = response.summary.unwrap();
    assert_eq!((summary.checks, summary.passed), (0, 0));
    assert_eq!(summary.uptime, None, "no checks is no uptime, not 0");
    assert_eq!((summary.rt_min, summary.rt_avg, summary.p50), (None, None, None));
    assert_eq!(summary.rt_count, Some(0));
    let (_, body) = get(
        &server,
        &format!("/v1/jobs/{id}/metrics?start={start}&end={end}&location=ap-south"),
        None,
    )
    .await;
    assert_eq!(body.get("points"), None, "an empty list is omitted");
    assert_eq!(body["summary"].get("uptime"), None);
    assert_eq!(body["summary"]["rtCount"], "0");
}

#[tokio::test]
async fn aggregates_subset_leaves_the_others_unset() {
    let server = TestServer::start().await;
    let id = server.create(http_job("subset")).await.id;
    let sample = checks(21, 200, 10.0, 900.0);
    write_rollups(
        &server.pool,
        &[(key(&id, "", "1h", "2026-11-27T10:00:00Z"), rollup(&sample))],
    )
    .await;
    let expected = Expected::of(&sample);
    let mut subset = request(&id, "1h", "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z");
    subset.aggregates = vec!["p95".into(), "avg".into()];
    let response = query(&server, subset).await;
    for (what, figures) in [
        ("point", Figures::from(&response.points[0])),
        ("summary", Figures::from(response.summary.as_ref().unwrap())),
    ] {
        assert_close(what, figures.rt_avg, expected.avg, 1e-9);
        assert_close(
            what,
            figures.percentiles[2],
            expected.percentile(0.95),
            PERCENTILE_TOLERANCE,
        );
        assert_eq!(
            (figures.rt_min, figures.rt_max, figures.rt_count),
            (None, None, None),
            "{what}"
        );
        assert_eq!(
            [figures.percentiles[0], figures.percentiles[1], figures.percentiles[3]],
            [None; 3],
            "{what}"
        );
        // Counters and uptime do not depend on the aggregates asked for.
        assert_eq!((figures.checks, figures.passed), (expected.checks, expected.passed));
        assert_close(what, figures.uptime, expected.uptime(), 1e-12);
        assert_eq!(figures.status_counts, &expected.status);
    }
    let (status, body) = get(
        &server,
        &format!("/v1/jobs/{id}/metrics?granularity=1h&start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z&aggregates=p95,avg"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json(&response));
    let point = body["points"][0].as_object().unwrap();
    for absent in ["rtMin", "rtMax", "rtCount", "p50", "p90", "p99"] {
        assert!(!point.contains_key(absent), "{absent} in {point:?}");
    }
    for present in ["rtAvg", "p95", "uptime", "checks", "statusCounts"] {
        assert!(point.contains_key(present), "{present} missing from {point:?}");
    }
    // Repeated parameters add up.
    let (_, body) = get(
        &server,
        &format!("/v1/jobs/{id}/metrics?granularity=1h&start=2026-11-27T00:00:00Z&end=2026-11-28T00:00:00Z&aggregates=min&aggregates=count"),
        None,
    )
    .await;
    let summary = body["summary"].as_object().unwrap();
    assert_close("rtMin", summary["rtMin"].as_f64(), expected.min, 1e-12);
    assert_eq!(summary["rtCount"], expected.count.to_string());
    assert!(
        !summary.contains_key("rtAvg") && !summary.contains_key("p95"),
        "{summary:?}"
    );
}

#[tokio::test]
async fn defaults_are_the_last_hour_by_minute() {
    let server = TestServer::start().await;
    let id = server.create(http_job("recent")).await.id;
    let minute = |ago: i64| {
        let t = Utc::now() - TimeDelta::minutes(ago);
        DateTime::from_timestamp(t.timestamp() - t.timestamp() % 60, 0).unwrap()
    };
    let recent = checks(31, 20, 10.0, 50.0);
    let mut rows = Vec::new();
    for (ago, sample) in [(5, recent.clone()), (90, checks(32, 20, 10.0, 50.0))] {
        let dt = minute(ago).to_rfc3339();
        rows.push((key(&id, "", "1m", &dt), rollup(&sample)));
    }
    write_rollups(&server.pool, &rows).await;
    let before = Utc::now();
    let response = query(
        &server,
        QueryMetricsRequest {
            job_id: id.clone(),
            ..Default::default()
        },
    )
    .await;
    let after = Utc::now();
    assert_eq!(response.granularity, "1m");
    let end: DateTime<Utc> = response.end_time.unwrap().try_into().unwrap();
    let start: DateTime<Utc> = response.start_time.unwrap().try_into().unwrap();
    assert!(before <= end && end <= after, "end {end} is not now");
    assert_eq!(end - start, TimeDelta::hours(1));
    assert_eq!(response.points.len(), 1, "only the row of 5 minutes ago: {response:?}");
    assert_figures("recent", &response.points[0], &Expected::of(&recent));
    let (status, body) = get(&server, &format!("/v1/jobs/{id}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["granularity"], "1m");
    assert_eq!(body["points"].as_array().unwrap().len(), 1);
}

/// The proof of concept's example: two minute rows and the hour row they
/// roll up into; the hour equals the sum of its minutes.
#[tokio::test]
async fn hour_row_equals_the_sum_of_its_minutes() {
    let server = TestServer::start().await;
    let id = server.create(http_job("poc")).await.id;
    let first = checks(41, 50, 10.0, 200.0);
    let second = checks(42, 70, 30.0, 600.0);
    let mut hour = rollup(&first);
    hour.merge(&rollup(&second));
    write_rollups(
        &server.pool,
        &[
            (key(&id, "", "1m", "2026-11-27T10:01:00Z"), rollup(&first)),
            (key(&id, "", "1m", "2026-11-27T10:02:00Z"), rollup(&second)),
            (key(&id, "", "1h", "2026-11-27T10:00:00Z"), hour),
        ],
    )
    .await;
    let (start, end) = ("2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z");
    let minutes = query(&server, request(&id, "1m", start, end)).await;
    let hours = query(&server, request(&id, "1h", start, end)).await;
    assert_eq!(minutes.points.len(), 2);
    assert_eq!(hours.points.len(), 1);
    let hour = &hours.points[0];
    assert_eq!(hour.dt, Some(at(start).into()));
    let sum = |f: fn(&MetricPoint) -> i64| minutes.points.iter().map(f).sum::<i64>();
    assert_eq!(hour.checks, sum(|p| p.checks));
    assert_eq!(hour.passed, sum(|p| p.passed));
    assert_eq!(hour.rt_count, Some(sum(|p| p.rt_count.unwrap())));
    let count = |map: &HashMap<String, i64>, key: &str| map.get(key).copied().unwrap_or(0);
    for code in ["200", "500"] {
        let minutes_sum: i64 = minutes.points.iter().map(|p| count(&p.status_counts, code)).sum();
        assert_eq!(count(&hour.status_counts, code), minutes_sum, "status {code}");
    }
    for kind in ["CHECK_OUTCOME_TIMEOUT", "CHECK_OUTCOME_ASSERTION_FAILED"] {
        let minutes_sum: i64 = minutes.points.iter().map(|p| count(&p.error_counts, kind)).sum();
        assert_eq!(count(&hour.error_counts, kind), minutes_sum, "{kind}");
    }
    // The minute query's summary merges the two minutes exactly as the hour
    // row does, percentiles included.
    let summary = minutes.summary.unwrap();
    assert_eq!(
        (
            summary.checks,
            summary.passed,
            summary.rt_min,
            summary.rt_max,
            summary.rt_count
        ),
        (hour.checks, hour.passed, hour.rt_min, hour.rt_max, hour.rt_count)
    );
    assert_eq!(
        [summary.p50, summary.p90, summary.p95, summary.p99],
        [hour.p50, hour.p90, hour.p95, hour.p99]
    );
    assert_eq!(
        (&summary.status_counts, &summary.error_counts),
        (&hour.status_counts, &hour.error_counts)
    );
    let all: Vec<Check> = first.iter().chain(&second).copied().collect();
    assert_figures("hour", hour, &Expected::of(&all));
}

#[tokio::test]
async fn invalid_queries_are_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let id = server.create(http_job("strict")).await.id;
    let (start, end) = ("2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z");

    // gRPC.
    let missing = Uuid::now_v7().to_string();
    let err = query_err(&server, request(&missing, "1m", start, end)).await;
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains(&missing), "{}", err.message());
    let err = query_err(&server, request("not-a-uuid", "1m", start, end)).await;
    assert_eq!(violated_fields(&err), ["job_id"]);
    for bad in ["5x", "0m", "01m", "1.5h", "m", "1 m", "3651d"] {
        let err = query_err(&server, request(&id, bad, start, end)).await;
        assert_eq!(violated_fields(&err), ["granularity"], "{bad:?}");
    }
    let err = query_err(&server, request(&id, "1m", end, start)).await;
    assert_eq!(violated_fields(&err), ["start_time"]);
    assert!(err.message().contains("before end_time"), "{}", err.message());
    let err = query_err(&server, request(&id, "1m", start, start)).await;
    assert_eq!(violated_fields(&err), ["start_time"]);
    let err = query_err(
        &server,
        request(&id, "1s", "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z"),
    )
    .await;
    assert_eq!(violated_fields(&err), ["start_time"]);
    assert!(err.message().contains("86400 buckets"), "{}", err.message());
    let mut unknown = request(&id, "1m", start, end);
    unknown.aggregates = vec!["avg".into(), "median".into()];
    let err = query_err(&server, unknown).await;
    assert_eq!(violated_fields(&err), ["aggregates[1]"]);
    assert!(
        err.message().contains("p99"),
        "lists the valid names: {}",
        err.message()
    );
    let mut located = request(&id, "1m", start, end);
    located.location = "-eu".into();
    let err = query_err(&server, located).await;
    assert_eq!(violated_fields(&err), ["location"]);
    let mut broken = request(&id, "1m", start, end);
    broken.start_time.as_mut().unwrap().nanos = -1;
    let err = query_err(&server, broken).await;
    assert_eq!(violated_fields(&err), ["start_time"]);
    // Several mistakes: every one is named.
    let mut many = request(&id, "7w", end, start);
    many.aggregates = vec!["p42".into()];
    let err = query_err(&server, many).await;
    assert_eq!(violated_fields(&err), ["granularity", "aggregates[0]", "start_time"]);

    // REST.
    let base = format!("/v1/jobs/{id}/metrics");
    let (status, body) = get(&server, &format!("/v1/jobs/{missing}/metrics"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], 5);
    let (status, body) = get(&server, "/v1/jobs/nope/metrics", None).await;
    assert_bad_request(status, &body, "job_id");
    let (status, body) = get(&server, &format!("{base}?granularity=5x"), None).await;
    assert_bad_request(status, &body, "granularity");
    let (status, body) = get(&server, &format!("{base}?start={end}&end={start}"), None).await;
    assert_bad_request(status, &body, "start_time");
    let (status, body) = get(&server, &format!("{base}?start=yesterday"), None).await;
    assert_bad_request(status, &body, "start");
    assert!(body["message"].as_str().unwrap().contains("RFC 3339"), "{body}");
    let (status, body) = get(&server, &format!("{base}?endTime=2026-13-01T00:00:00Z"), None).await;
    assert_bad_request(status, &body, "endTime");
    let (status, body) = get(&server, &format!("{base}?aggregates=p95,median"), None).await;
    assert_bad_request(status, &body, "aggregates[1]");
    let (status, body) = get(&server, &format!("{base}?location=-eu"), None).await;
    assert_bad_request(status, &body, "location");
    let (status, body) = get(&server, &format!("{base}?granularity=1m&from={start}"), None).await;
    assert_bad_request(status, &body, "from");
    assert!(
        body["message"].as_str().unwrap().contains("unknown query parameter"),
        "{body}"
    );
}

#[tokio::test]
async fn a_read_token_is_enough() {
    let server = TestServer::builder().api_tokens().start().await;
    let id = server
        .jobs_as(Some(WRITE_TOKEN))
        .create_job(monitor_proto::v1::CreateJobRequest {
            job: Some(http_job("guarded")),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id;
    let (start, end) = ("2026-11-27T10:00:00Z", "2026-11-27T11:00:00Z");
    for token in [READ_TOKEN, WRITE_TOKEN, ADMIN_TOKEN] {
        server
            .jobs_as(Some(token))
            .query_metrics(request(&id, "1m", start, end))
            .await
            .unwrap_or_else(|err| panic!("{token}: {err:?}"));
        let (status, body) = get(&server, &format!("/v1/jobs/{id}/metrics"), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let err = server
        .jobs_as(None)
        .query_metrics(request(&id, "1m", start, end))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let (status, _) = get(&server, &format!("/v1/jobs/{id}/metrics"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reset_deletes_rollups_and_offsets() {
    let server = TestServer::builder().api_tokens().start().await;
    let id = server
        .jobs_as(Some(WRITE_TOKEN))
        .create_job(monitor_proto::v1::CreateJobRequest {
            job: Some(http_job("reset")),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
        .id;
    let sample = rollup(&checks(51, 10, 1.0, 10.0));
    write_rollups(
        &server.pool,
        &[
            (key(&id, "", "1m", "2026-11-27T10:00:00Z"), sample.clone()),
            (key(&id, "", "1h", "2026-11-27T10:00:00Z"), sample),
        ],
    )
    .await;
    let reset = server
        .admin_as(Some(ADMIN_TOKEN))
        .reset_database(ResetDatabaseRequest { confirm: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reset.deleted_jobs, reset.deleted_rollups), (1, 2));
    let mut conn = server.pool.get().await.unwrap();
    let job_id = Uuid::parse_str(&id).unwrap();
    for granularity in ["1m", "1h"] {
        let rows = job_metrics::query(
            &mut conn,
            job_id,
            "",
            granularity,
            at("2026-11-27T00:00:00Z"),
            at("2026-11-28T00:00:00Z"),
        )
        .await
        .unwrap();
        assert!(rows.is_empty(), "{granularity}: {rows:?}");
    }
    let offsets = consumer_offsets::stored_offsets(&mut conn, ROLLUP_GROUP, ROLLUP_TOPIC, &[0])
        .await
        .unwrap();
    assert!(offsets.is_empty(), "{offsets:?}");
}
