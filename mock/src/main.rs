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
    let certificate = match config.tls_listen {
        Some(_) => Some(SelfSignedCertificate::generate(&config.tls)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on --listen {}", config.listen))?;
    let tls = match (config.tls_listen, certificate) {
        (Some(address), Some(certificate)) => {
            if let Some(path) = &config.tls.tls_cert_out {
                std::fs::write(path, &certificate.pem)
                    .with_context(|| format!("cannot write --tls-cert-out {}", path.display()))?;
            }
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on --tls-listen {address}"))?;
            Some(TlsListener::new(listener, &certificate)?)
        }
        _ => None,
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
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on --ssh-listen {address}"))?,
        ),
        None => None,
    };
    let socks5 = match config.socks5_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on --socks5-listen {address}"))?,
        ),
        None => None,
    };
    let listeners = Listeners {
        tls,
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
    monitor_mock::run_with(listener, listeners, config.mock, shutdown.cancelled()).await;
    if let Some(dns) = dns {
        dns.await.context("the DNS responder failed")?;
    }
    Ok(())
}
