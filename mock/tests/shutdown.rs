//! Graceful shutdown: requests in flight finish, hung ones don't hold the
//! mock up, the grace period is a real bound, and the binary stops cleanly
//! on SIGTERM and SIGINT.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::Command;
use std::time::Duration;

use monitor_testkit::{http_client, mock::MockServer};

/// Generous bound for "stops promptly": far above the expected few ms.
const STOP_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test]
async fn requests_in_flight_finish_before_the_mock_stops() {
    let mut mock = MockServer::start(&["--shutdown-grace-ms=30000"]).await;
    let in_flight = tokio::spawn(http_client().get(mock.url("/delay/400")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = mock.begin_shutdown();

    let response = in_flight.await.unwrap().expect("the delayed request is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "delayed 400 ms\n");
    tokio::time::timeout(STOP_WITHIN, stopped).await.unwrap().unwrap();

    // Stopped means stopped: the port no longer accepts connections.
    let refused = http_client().get(mock.url("/__ping")).send().await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[tokio::test]
async fn a_hung_request_does_not_hold_up_shutdown() {
    let mut mock = MockServer::start(&["--shutdown-grace-ms=60000"]).await;
    let hung = tokio::spawn(http_client().get(mock.url("/hang")).send());
    while mock.stats().await.by_route["hang"].total == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = mock.begin_shutdown();
    tokio::time::timeout(STOP_WITHIN, stopped)
        .await
        .expect("shutdown does not wait for /hang")
        .unwrap();
    // The hung client gets its connection closed, still without a response.
    let error = hung.await.unwrap().unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain() {
    let mut mock = MockServer::start(&["--shutdown-grace-ms=200"]).await;
    let slow = tokio::spawn(http_client().get(mock.url("/delay/60000")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = mock.begin_shutdown();
    tokio::time::timeout(STOP_WITHIN, stopped)
        .await
        .expect("the drain ends with the grace period")
        .unwrap();
    assert!(slow.await.unwrap().is_err(), "the cut request gets no answer");
}

/// Starts the binary on a free port and returns it with its address, read
/// from its start-up log line.
fn spawn_binary() -> (std::process::Child, String) {
    let mut child = common::spawn_binary(&["--latency-ms=0"], &[]);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the binary logs before exiting")
            .expect("log lines are UTF-8");
        if let Some(rest) = line.split("http=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, address)
}

async fn stops_cleanly_on(signal: &str) {
    let (mut child, address) = spawn_binary();
    let response = http_client()
        .get(format!("http://{address}/website_mock"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-mock-sequence"], "0");

    let killed = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let pid = child.id();
    let waited = tokio::time::timeout(STOP_WITHIN, tokio::task::spawn_blocking(move || child.wait())).await;
    let Ok(status) = waited else {
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        panic!("the binary did not stop within {STOP_WITHIN:?} of {signal}");
    };
    let status = status.unwrap().unwrap();
    assert!(status.success(), "exit status after {signal}: {status}");
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigterm() {
    stops_cleanly_on("-TERM").await;
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigint() {
    stops_cleanly_on("-INT").await;
}
