//! A fake website with predictable results, for testing the monitor.
//!
//! `/website_mock` answers with a status, delay and body drawn from
//! configured distributions by a seeded, counter-based generator: request
//! `n` (counting from 0 since start or the last `POST /__reset`) gets draw
//! `(seed, n)`, so a test that knows the seed knows every answer, and
//! `GET /__stats` says exactly what was served. Scenario routes exercise
//! the monitor's error paths (timeouts, resets, redirects, flaky servers,
//! bad and expired certificates).
//!
//! Modules:
//! - [`config`]: the command line and environment, parsed into domain types.
//! - [`dns`]: the DNS responder (`--dns-port`): fixed records of the zone
//!   mock.test., NXDOMAIN, REFUSED, and names that never answer, answer
//!   garbage or answer with the wrong id.
//! - [`draw`]: the seeded generator and what it draws.
//! - [`grpc`]: the gRPC health service, its listeners and control route.
//! - [`hooks`]: the recording receiver of notifications (webhook, Slack,
//!   Discord, Teams, Telegram, PagerDuty): shape checks, scripted failures.
//! - [`limits`]: the bounds every flag and parameter is checked against.
//! - [`routes`]: what each route answers (the route table is there).
//! - [`stats`]: the served counts behind `/__stats`.
//! - [`tls`]: the self-signed certificate and the HTTPS listener.
//! - [`ssh`]: the SSH-like banner listener (`--ssh-listen`).
//! - [`socks5`]: the SOCKS5 proxy listener (`--socks5-listen`).
//! - [`websocket`]: the WebSocket routes (echo, greet, silent, close).
//! - `server`: accepting, serving HTTP/1.1 and HTTP/2, shutdown.
//! - `error` and `query`: refusing bad requests with the parameter named.
//!
//! `.env`, `--log-format` and the SIGINT/SIGTERM signal are
//! `monitor_core::process`, as in the server and the workers (`main.rs`).

pub mod config;
pub mod dns;
pub mod draw;
pub mod error;
pub mod grpc;
pub mod hooks;
pub mod limits;
mod query;
pub mod routes;
mod server;
pub mod socks5;
pub mod ssh;
pub mod stats;
pub mod tls;
pub mod websocket;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{Config, MockConfig, Socks5Config, TlsConfig};
pub use dns::DnsListener;
pub use draw::{Draw, DrawPlan};
pub use hooks::{HookLog, HookRequest, Script as HookScript};
pub use routes::EchoReport;
pub use socks5::Socks5Login;
pub use stats::{RouteSnapshot, StatsSnapshot};
pub use tls::{SelfSignedCertificate, TlsError, TlsListener};

/// Where the mock listens: HTTP always, the rest when given.
pub struct Listeners {
    /// Plain HTTP/1.1 and HTTP/2 (prior knowledge).
    pub http: TcpListener,
    /// HTTPS with the self-signed certificate.
    pub tls: Option<TlsListener>,
    /// The gRPC health service over plaintext HTTP/2.
    pub grpc: Option<TcpListener>,
    /// The gRPC health service over TLS, with the listener's certificate.
    pub grpc_tls: Option<TlsListener>,
    /// The SSH-like banner ([`ssh`]).
    pub ssh: Option<TcpListener>,
    /// The SOCKS5 proxy ([`socks5`]).
    pub socks5: Option<TcpListener>,
    /// The login the SOCKS5 proxy requires; none when `None`.
    pub socks5_login: Option<Socks5Login>,
}

impl Listeners {
    /// Plain HTTP alone.
    pub fn http(http: TcpListener) -> Self {
        Self {
            http,
            tls: None,
            grpc: None,
            grpc_tls: None,
            ssh: None,
            socks5: None,
            socks5_login: None,
        }
    }
}

/// Serves plain HTTP on `listener` until `shutdown` completes, then drains
/// requests in flight for at most the configured grace period.
pub async fn run(listener: TcpListener, config: MockConfig, shutdown: impl Future<Output = ()>) {
    run_listeners(Listeners::http(listener), config, shutdown).await;
}

/// Like [`run`], and also serves HTTPS on `tls` when given.
pub async fn run_with_tls(
    listener: TcpListener,
    tls: Option<TlsListener>,
    config: MockConfig,
    shutdown: impl Future<Output = ()>,
) {
    let listeners = Listeners {
        tls,
        ..Listeners::http(listener)
    };
    run_listeners(listeners, config, shutdown).await;
}

/// Serves every listener given until `shutdown` completes, then drains
/// for at most the configured grace period.
pub async fn run_listeners(listeners: Listeners, config: MockConfig, shutdown: impl Future<Output = ()>) {
    // tonic's TLS (the gRPC TLS listener) takes the process's default
    // provider; the binary builds rustls with ring only.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Listeners {
        http: listener,
        tls,
        grpc,
        grpc_tls,
        ssh,
        socks5,
        socks5_login,
    } = listeners;
    let site = Arc::new(routes::Site {
        plan: config.plan(),
        seed: config.seed,
        stats: stats::Stats::new(),
        shutdown: CancellationToken::new(),
        certificate_pem: tls
            .as_ref()
            .or(grpc_tls.as_ref())
            .map(|tls| tls.certificate_pem().to_owned()),
        hooks: hooks::Hooks::default(),
        grpc_health: grpc::GrpcHealth::default(),
    });
    let address = |address: std::io::Result<std::net::SocketAddr>| {
        address.map_or_else(|_| "unknown".to_owned(), |address| address.to_string())
    };
    let optional = |listener: Option<&TcpListener>| {
        listener.map_or_else(|| "off".to_owned(), |listener| address(listener.local_addr()))
    };
    info!(
        http = %address(listener.local_addr()),
        https = %tls.as_ref().map_or_else(|| "off".to_owned(), |tls| address(tls.local_addr())),
        grpc = %optional(grpc.as_ref()),
        grpc_tls = %grpc_tls.as_ref().map_or_else(|| "off".to_owned(), |tls| address(tls.local_addr())),
        ssh = %optional(ssh.as_ref()),
        socks5 = %optional(socks5.as_ref()),
        seed = config.seed,
        codes = %config.codes,
        latency_ms = %config.latency_ms,
        body_bytes = %config.body_bytes,
        "mock website listening"
    );
    let grace = config.shutdown_grace();
    let grpc_servers = async {
        let plain = async {
            if let Some(listener) = grpc {
                grpc::serve(listener, None, &site.grpc_health, site.shutdown.clone(), grace).await;
            }
        };
        let secure = async {
            if let Some(tls) = grpc_tls {
                let (listener, identity) = tls.into_grpc();
                grpc::serve(
                    listener,
                    Some(identity),
                    &site.grpc_health,
                    site.shutdown.clone(),
                    grace,
                )
                .await;
            }
        };
        tokio::join!(plain, secure);
    };
    // `serve` cancels the site's token when shutdown begins; the other
    // listeners stop on it.
    let stopping = site.shutdown.clone();
    let ssh = async {
        if let Some(listener) = ssh {
            ssh::serve(listener, stopping.clone()).await;
        }
    };
    let socks5 = async {
        if let Some(listener) = socks5 {
            socks5::serve(listener, socks5_login, stopping.clone()).await;
        }
    };
    let http_server = server::serve(listener, tls, site.clone(), shutdown, grace);
    tokio::join!(http_server, grpc_servers, ssh, socks5);
}
