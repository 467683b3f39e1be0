//! `monitor-worker`: parses configuration and runs one role.

use clap::{Parser, Subcommand, ValueEnum};
use monitor_worker::{
    aggregate::{self, AggregateArgs},
    probe::{self, ProbeArgs},
};
use tokio::sync::watch;

/// Monitor workers.
#[derive(Debug, Parser)]
#[command(name = "monitor-worker", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, env = "MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Run checks assigned by the control plane and publish results to Kafka.
    Probe(ProbeArgs),
    /// Roll check results up from Kafka into PostgreSQL (exactly once).
    Aggregate(AggregateArgs),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Flips to true on SIGINT or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested: draining");
        let _ = tx.send(true);
    });
    rx
}

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
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.role {
        Role::Probe(args) => probe::run(args, shutdown_signal()).await,
        Role::Aggregate(args) => aggregate::run(args.finish(), shutdown_signal()).await,
    }
}
