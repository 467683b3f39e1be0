//! `monitor-mock`: parses the configuration, binds the listeners and runs
//! the mock website (and its DNS responder) until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use monitor_core::process::{self, LogOutput, Signal};
use monitor_mock::{Config, DnsListener, Listeners, SelfSignedCertificate, TlsListener};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Completes on the first SIGINT or SIGTERM, saying which.
async fn shutdown_signal() {
    match process::shutdown_signal().await {
        Signal::Interrupt => tracing::info!("SIGINT received"),
        Signal::Terminate => tracing::info!("SIGTERM received"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::load_dotenv()?;
    let config = Config::parse();
    process::init_tracing(config.log_format, LogOutput::Stdout);

    // Generate the certificate first: a bad TLS setting should stop start-up
    // before anything listens.
    let certificate = if config.tls_listen.is_some() || config.grpc_tls_listen.is_some() {
        let certificate = SelfSignedCertificate::generate(&config.tls)?;
        if let Some(path) = &config.tls.tls_cert_out {
            std::fs::write(path, &certificate.pem)
                .with_context(|| format!("cannot write --tls-cert-out {}", path.display()))?;
        }
        Some(certificate)
    } else {
        None
    };
    let http = bind(config.listen, "--listen").await?;
    let tls_listener = |address: std::net::SocketAddr, flag: &'static str| {
        let certificate = certificate.as_ref();
        async move {
            let certificate = certificate.expect("generated when a TLS address is set");
            anyhow::Ok(TlsListener::new(bind(address, flag).await?, certificate)?)
        }
    };
    let tls = match config.tls_listen {
        Some(address) => Some(tls_listener(address, "--tls-listen").await?),
        None => None,
    };
    let grpc = match config.grpc_listen {
        Some(address) => Some(bind(address, "--grpc-listen").await?),
        None => None,
    };
    let grpc_tls = match config.grpc_tls_listen {
        Some(address) => Some(tls_listener(address, "--grpc-tls-listen").await?),
        None => None,
    };
    let dns = match config.dns_port {
        0 => None,
        port => Some(
            DnsListener::bind(config.listen.ip(), port)
                .await
                .with_context(|| format!("cannot listen on --dns-port {port} (UDP and TCP)"))?,
        ),
    };
    let ssh = match config.ssh_listen {
        Some(address) => Some(bind(address, "--ssh-listen").await?),
        None => None,
    };
    let socks5 = match config.socks5_listen {
        Some(address) => Some(bind(address, "--socks5-listen").await?),
        None => None,
    };
    let listeners = Listeners {
        http,
        tls,
        grpc,
        grpc_tls,
        ssh,
        socks5,
        socks5_login: config.socks5.login(),
    };

    // One signal stops every listener.
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown_signal().await;
            shutdown.cancel();
        }
    });
    let dns = dns.map(|dns| tokio::spawn(monitor_mock::dns::serve(dns, shutdown.clone().cancelled_owned())));
    monitor_mock::run_listeners(listeners, config.mock, shutdown.cancelled()).await;
    if let Some(dns) = dns {
        dns.await.context("the DNS responder failed")?;
    }
    Ok(())
}

async fn bind(address: std::net::SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {flag} {address}"))
}
