//! `monitor-server`: parses configuration, prepares the database and serves.

use anyhow::Context as _;
use clap::Parser as _;
use monitor_core::process::{self, LogFormat, LogOutput};
use monitor_proto::secret::Secret;
use monitor_server::{
    auth::Tokens,
    config::{Cli, Command, ServeArgs},
    fleet::RegistryConfig,
    jobs_file,
    server::{self, ServerOptions},
    ui::UiSource,
};
use std::time::Duration;
use tokio::net::TcpListener;

fn init_tracing(format: LogFormat) {
    process::init_tracing(format, LogOutput::Stdout);
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    process::shutdown_signal().await;
    tracing::info!("shutdown requested; finishing in-flight requests");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Refuse bad configuration before touching the database.
    let tokens = Tokens::load(
        args.api_tokens.as_ref().map(Secret::expose),
        args.api_tokens_file.as_deref(),
    )?
    .with_worker_tokens(
        "MONITOR_WORKER_TOKENS",
        args.worker_tokens.as_ref().map_or("", Secret::expose),
    )?;
    monitor_server::auth::check_exposure(args.listen, &tokens, args.insecure_open).map_err(anyhow::Error::msg)?;
    let ui_source = args.ui_dir.clone().map_or(UiSource::Embedded, UiSource::Directory);
    ui_source
        .check()
        .map_err(|err| anyhow::anyhow!("MONITOR_UI_DIR / --ui-dir: {err}"))?;
    // Both or neither (clap enforces it); a bad file names its variable.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(monitor_server::tls::load(cert, key)?),
        _ => None,
    };
    if args.worker_heartbeat_ms * 3 > args.worker_lease_ms {
        anyhow::bail!(
            "MONITOR_WORKER_HEARTBEAT_MS ({}) must be at most a third of MONITOR_WORKER_LEASE_MS ({})",
            args.worker_heartbeat_ms,
            args.worker_lease_ms
        );
    }
    let url = args.database.database_url.expose();
    if !args.no_migrate {
        let applied = monitor_store::migrations::run_pending(url)
            .await
            .context("applying migrations")?;
        tracing::info!(applied = ?applied, "database schema up to date");
    }
    let pool = monitor_store::connect(url, usize::from(args.db_pool_size)).context("database pool")?;
    if let Some(path) = &args.jobs_file {
        let report = jobs_file::import_file(&pool, path).await?;
        tracing::info!(
            created = ?report.created, updated = ?report.updated, unchanged = report.unchanged.len(),
            "imported {}", path.display()
        );
    }
    let options = ServerOptions {
        tokens,
        workers: RegistryConfig {
            lease: Duration::from_millis(args.worker_lease_ms),
            heartbeat_interval: Duration::from_millis(args.worker_heartbeat_ms),
            max_workers: args.max_workers as usize,
            ..RegistryConfig::default()
        },
        cors_allowed_origins: args.cors_allowed_origins.clone(),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        max_body_bytes: usize::try_from(args.max_body_bytes).unwrap_or(usize::MAX),
        ui: ui_source,
        tls,
        notify: monitor_server::notify::NotifyOptions {
            blocklist: monitor_core::blocklist::Blocklist::with_defaults(
                args.notify_blocklist.iter().copied(),
                args.notify_allow_net.clone(),
            ),
            send_timeout: Duration::from_millis(args.notify_timeout_ms),
        },
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        tls = options.tls.is_some(),
        "serving gRPC, grpc-web and REST"
    );
    server::run(listener, pool, options, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::load_dotenv()?;
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Migrate(args)) => {
            init_tracing(args.log_format);
            let applied = monitor_store::migrations::run_pending(args.database_url.expose()).await?;
            if applied.is_empty() {
                println!("database is up to date");
            } else {
                println!("applied {} migration(s): {}", applied.len(), applied.join(", "));
            }
            Ok(())
        }
        Some(Command::Serve(args)) => {
            init_tracing(args.database.log_format);
            serve(*args).await
        }
        None => {
            init_tracing(cli.serve.database.log_format);
            serve(cli.serve).await
        }
    }
}
