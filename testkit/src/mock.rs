//! The mock website in-process on port 0, one per test, so tests run in
//! parallel without sharing counters or sequences: the same `run` the
//! `monitor-mock` binary serves with, configured by the binary's flags.

use std::{net::SocketAddr, time::Duration};

use clap::Parser as _;
/// What the mock's `/ws/greet` sends first.
pub use monitor_mock::websocket::GREETING as WEBSOCKET_GREETING;
use monitor_mock::{Config, Listeners, MockConfig, SelfSignedCertificate, StatsSnapshot, TlsConfig, TlsListener};
/// The recording receiver's log and script, for tests that read them.
pub use monitor_mock::{HookLog, HookRequest, HookScript};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A running mock; stops when dropped.
pub struct MockServer {
    /// The plain-HTTP listener.
    pub address: SocketAddr,
    /// The HTTPS listener, when started with one.
    pub tls_address: Option<SocketAddr>,
    /// The SSH-like banner listener, when the flags ask for one
    /// (`--ssh-listen=127.0.0.1:0`).
    pub ssh_address: Option<SocketAddr>,
    /// The SOCKS5 proxy, when the flags ask for one
    /// (`--socks5-listen=127.0.0.1:0`, with `--socks5-user`/`--socks5-password`).
    pub socks5_address: Option<SocketAddr>,
    /// The gRPC health service over plaintext HTTP/2, when started with it.
    pub grpc_address: Option<SocketAddr>,
    /// The gRPC health service over TLS, when started with gRPC and TLS.
    pub grpc_tls_address: Option<SocketAddr>,
    /// Fires the shutdown future given to `run`.
    stop: Option<oneshot::Sender<()>>,
    /// The task running `run`; it ends when the mock has drained.
    task: Option<JoinHandle<()>>,
    /// A client for the test's own requests ([`crate::http_client`]).
    pub client: reqwest::Client,
}

/// Parses mock flags as the binary would (defaults included).
pub fn mock_config(args: &[&str]) -> MockConfig {
    parse(args).mock
}

fn parse(args: &[&str]) -> Config {
    Config::try_parse_from(std::iter::once("monitor-mock").chain(args.iter().copied())).expect("test flags parse")
}

async fn bind_flag(address: Option<SocketAddr>) -> Option<TcpListener> {
    match address {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .expect("binding a listener of the flags"),
        ),
        None => None,
    }
}

/// A certificate for localhost and 127.0.0.1 valid from `not_before_days`
/// to `not_after_days` from now (negative: in the past).
pub fn tls_config(not_before_days: i64, not_after_days: i64) -> TlsConfig {
    TlsConfig {
        tls_not_before_days: not_before_days,
        tls_not_after_days: not_after_days,
        tls_san: vec!["localhost".into(), "127.0.0.1".into()],
        tls_cert_out: None,
    }
}

impl MockServer {
    /// A plain-HTTP mock configured by `args` (flags of the binary).
    pub async fn start(args: &[&str]) -> MockServer {
        MockServer::serve(args, Listeners::http(bind().await)).await
    }

    /// A mock with an HTTPS listener too, serving a certificate generated
    /// from `tls`; returns the certificate for clients to trust.
    pub async fn start_with_tls(args: &[&str], tls: &TlsConfig) -> (MockServer, SelfSignedCertificate) {
        let certificate = SelfSignedCertificate::generate(tls).expect("a certificate generates");
        let listeners = Listeners {
            tls: Some(tls_listener(&certificate).await),
            ..Listeners::http(bind().await)
        };
        (MockServer::serve(args, listeners).await, certificate)
    }

    /// A mock with the gRPC health service on a plaintext listener and,
    /// with `tls`, on a TLS one too (and HTTPS), serving a certificate
    /// generated from `tls`, which is returned.
    pub async fn start_with_grpc(
        args: &[&str],
        tls: Option<&TlsConfig>,
    ) -> (MockServer, Option<SelfSignedCertificate>) {
        let certificate = tls.map(|tls| SelfSignedCertificate::generate(tls).expect("a certificate generates"));
        let (tls, grpc_tls) = match &certificate {
            Some(certificate) => (
                Some(tls_listener(certificate).await),
                Some(tls_listener(certificate).await),
            ),
            None => (None, None),
        };
        let listeners = Listeners {
            tls,
            grpc: Some(bind().await),
            grpc_tls,
            ..Listeners::http(bind().await)
        };
        (MockServer::serve(args, listeners).await, certificate)
    }

    /// Serves `listeners`, plus the SSH and SOCKS5 listeners the flags name
    /// (at the addresses they give).
    async fn serve(args: &[&str], mut listeners: Listeners) -> MockServer {
        let config = parse(args);
        listeners.ssh = bind_flag(config.ssh_listen).await;
        listeners.socks5 = bind_flag(config.socks5_listen).await;
        listeners.socks5_login = config.socks5.login();
        let local =
            |listener: Option<&TcpListener>| listener.map(|listener| listener.local_addr().expect("an address"));
        let ssh_address = local(listeners.ssh.as_ref());
        let socks5_address = local(listeners.socks5.as_ref());
        let address = listeners.http.local_addr().expect("a bound socket has an address");
        let tls_address = listeners
            .tls
            .as_ref()
            .map(|tls| tls.local_addr().expect("the TLS address"));
        let grpc_address = listeners
            .grpc
            .as_ref()
            .map(|grpc| grpc.local_addr().expect("the gRPC address"));
        let grpc_tls_address = listeners
            .grpc_tls
            .as_ref()
            .map(|tls| tls.local_addr().expect("the gRPC TLS address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(monitor_mock::run_listeners(listeners, config.mock, async {
            let _ = stopped.await;
        }));
        MockServer {
            address,
            tls_address,
            ssh_address,
            socks5_address,
            grpc_address,
            grpc_tls_address,
            stop: Some(stop),
            task: Some(task),
            client: crate::http_client(),
        }
    }

    /// Makes the gRPC health service answer `status` (`SERVING`,
    /// `NOT_SERVING`, `UNKNOWN`; `SERVICE_UNKNOWN` forgets it) for `service`.
    pub async fn set_grpc_health(&self, service: &str, status: &str) {
        let path = if service.is_empty() {
            "/__grpc/health".to_owned()
        } else {
            format!("/__grpc/health/{service}")
        };
        let response = self
            .client
            .put(self.url(&path))
            .body(status.to_owned())
            .send()
            .await
            .expect("the mock answers");
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap_or_default());
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.address)
    }

    /// `ws://` on the HTTP listener.
    pub fn ws_url(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.address)
    }

    /// `wss://` on the HTTPS listener.
    pub fn wss_url(&self, path_and_query: &str) -> String {
        format!("wss://{}{path_and_query}", self.tls_address.expect("started with TLS"))
    }

    pub fn https_url(&self, path_and_query: &str) -> String {
        format!(
            "https://{}{path_and_query}",
            self.tls_address.expect("started with TLS")
        )
    }

    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("the mock answers")
    }

    /// What the mock has served so far (`/__stats`).
    pub async fn stats(&self) -> StatsSnapshot {
        let response = self.get("/__stats").await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("stats are JSON")
    }

    /// The URL of recording receiver `name` as `kind` (`/hooks/{kind}/{name}`);
    /// for Telegram, the `api_url` to give a channel.
    pub fn hook_url(&self, kind: &str, name: &str) -> String {
        self.url(&format!("/hooks/{kind}/{name}"))
    }

    /// Makes the next deliveries to receiver `name` fail as `script` says.
    pub async fn script_hook(&self, name: &str, script: &HookScript) {
        let response = self
            .client
            .put(self.url(&format!("/__hooks/{name}/script")))
            .json(script)
            .send()
            .await
            .expect("the mock answers");
        assert_eq!(response.status(), 204, "{}", response.text().await.unwrap_or_default());
    }

    /// What receiver `name` has recorded.
    pub async fn received(&self, name: &str) -> HookLog {
        let response = self.get(&format!("/__hooks/{name}/received")).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("a hook log is JSON")
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

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("binding port 0")
}

async fn tls_listener(certificate: &SelfSignedCertificate) -> TlsListener {
    TlsListener::new(bind().await, certificate).expect("a TLS listener")
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
