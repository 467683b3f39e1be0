//! Starts the real mock in-process on port 0, one per test, so tests run in
//! parallel without sharing counters or sequences.

#![allow(dead_code)] // each test binary uses a different part of this

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser as _;
use monitor_mock::{Config, MockConfig, StatsSnapshot, TlsListener};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running mock and the means to stop it.
pub struct MockServer {
    pub address: SocketAddr,
    /// Fires the shutdown future given to `run`.
    stop: Option<oneshot::Sender<()>>,
    /// The task running `run`; it ends when the mock has drained.
    task: Option<JoinHandle<()>>,
    pub client: reqwest::Client,
}

/// Parses mock flags as the binary would (defaults included).
pub fn mock_config(args: &[&str]) -> MockConfig {
    Config::try_parse_from(std::iter::once("monitor-mock").chain(args.iter().copied()))
        .expect("test flags parse")
        .mock
}

impl MockServer {
    /// Starts a plain-HTTP mock configured by `args` (flags of the binary).
    pub async fn start(args: &[&str]) -> Self {
        Self::start_with_tls(args, None).await
    }

    pub async fn start_with_tls(args: &[&str], tls: Option<TlsListener>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let address = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let config = mock_config(args);
        let task = tokio::spawn(monitor_mock::run_with_tls(listener, tls, config, async {
            let _ = stopped.await;
        }));
        Self {
            address,
            stop: Some(stop),
            task: Some(task),
            client: client(),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.address)
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request succeeds")
    }

    pub async fn stats(&self) -> StatsSnapshot {
        let response = self.get("/__stats").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("stats are JSON")
    }

    /// Begins shutdown and returns the task that ends when the mock has.
    pub fn begin_shutdown(&mut self) -> JoinHandle<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("shutdown begins once")
    }

    /// Shuts down and waits until `run` returns.
    pub async fn shutdown(mut self) {
        let task = self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the mock stops")
            .expect("the mock task does not panic");
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that ignores proxy settings in the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// The JSON error body of a refused request.
#[derive(Debug, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub parameter: Option<String>,
}
