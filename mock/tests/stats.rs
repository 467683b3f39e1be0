//! `/__stats` under a concurrent burst: exactly what the clients counted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use monitor_testkit::mock::{MockServer, mock_config};
use tokio::sync::Mutex;

const FLAGS: &[&str] = &["--seed=2024", "--latency-ms=0..=3", "--body-bytes=0..=256"];
const TASKS: usize = 50;
const REQUESTS_PER_TASK: usize = 40;

/// What the clients saw, to compare with what the mock says it served.
#[derive(Default)]
struct Tally {
    total: u64,
    by_status: BTreeMap<String, u64>,
    by_method: BTreeMap<String, u64>,
    by_route: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// x-mock-sequence of every /website_mock answer.
    sequences: BTreeSet<u64>,
}

/// Request `i` of a task: a mix of routes and methods.
fn request_for(i: usize) -> (reqwest::Method, String, &'static str) {
    match i % 8 {
        0..=3 => (reqwest::Method::GET, "/website_mock".into(), "website_mock"),
        4 => (
            reqwest::Method::POST,
            format!("/status/{}", 200 + (i % 5) * 100),
            "status",
        ),
        5 => (reqwest::Method::GET, "/flaky?fail_every=4".into(), "flaky"),
        6 => (reqwest::Method::HEAD, "/bytes/32".into(), "bytes"),
        _ => (reqwest::Method::DELETE, "/no/such/page".into(), "not_found"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_equal_the_clients_own_count_after_a_concurrent_burst() {
    let mock = Arc::new(MockServer::start(FLAGS).await);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (mock, tally) = (mock.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..REQUESTS_PER_TASK {
                let (method, path, route) = request_for(task + i);
                let response = mock
                    .client
                    .request(method.clone(), mock.url(&path))
                    .send()
                    .await
                    .expect("request succeeds");
                let status = response.status().as_u16().to_string();
                let sequence = response
                    .headers()
                    .get("x-mock-sequence")
                    .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
                let mut tally = tally.lock().await;
                tally.total += 1;
                *tally.by_status.entry(status.clone()).or_default() += 1;
                *tally.by_method.entry(method.to_string()).or_default() += 1;
                *tally.by_route.entry(route).or_default().entry(status).or_default() += 1;
                if let Some(sequence) = sequence {
                    assert!(tally.sequences.insert(sequence), "sequence {sequence} served twice");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client task");
    }

    let tally = tally.lock().await;
    let stats = mock.stats().await;
    assert_eq!(tally.total, (TASKS * REQUESTS_PER_TASK) as u64);
    assert_eq!(stats.total, tally.total);
    assert_eq!(stats.by_status, tally.by_status);
    assert_eq!(stats.by_method, tally.by_method);
    for (route, by_status) in &tally.by_route {
        assert_eq!(&stats.by_route[*route].by_status, by_status, "{route}");
        assert_eq!(stats.by_route[*route].total, by_status.values().sum::<u64>(), "{route}");
    }
    let untouched = stats
        .by_route
        .iter()
        .filter(|(route, _)| !tally.by_route.contains_key(route.as_str()));
    for (route, counts) in untouched {
        assert_eq!(counts.total, 0, "{route}");
    }

    // Every number 0..N of the sequence was handed out exactly once, so the
    // statuses served are exactly those of the first N draws, in some order.
    let mock_requests = stats.by_route["website_mock"].total;
    assert_eq!(stats.sequence, mock_requests);
    assert_eq!(tally.sequences, (0..mock_requests).collect());
    let plan = mock_config(FLAGS).plan();
    let mut expected = BTreeMap::<String, u64>::new();
    for n in 0..mock_requests {
        *expected
            .entry(plan.draw(2024, n).status.as_u16().to_string())
            .or_default() += 1;
    }
    assert_eq!(stats.by_route["website_mock"].by_status, expected);

    // And /flaky failed exactly every 4th of its requests.
    let flaky = &stats.by_route["flaky"];
    assert_eq!(stats.flaky_requests, flaky.total);
    assert_eq!(flaky.by_status.get("503").copied().unwrap_or(0), flaky.total / 4);
}
