//! `monitor-mock`: parses the configuration, binds the listeners and runs
//! the mock website until SIGINT or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use monitor_mock::{Config, LogFormat, SelfSignedCertificate, TlsListener};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Reads `.env` when present (variables already set win); a malformed file
/// stops start-up naming the problem.
fn load_dotenv() -> anyhow::Result<()> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(err) if err.not_found() => Ok(()),
        Err(err) => Err(anyhow::anyhow!(".env: {err}")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    load_dotenv()?;
    let config = Config::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

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
    monitor_mock::run_with_tls(listener, tls, config.mock, monitor_mock::shutdown_signal()).await;
    Ok(())
}
