//! `monitor-worker`: parses configuration and runs one role.

use clap::{Parser, Subcommand};
use monitor_core::process::{self, LogFormat, LogOutput};
use monitor_worker::{
    aggregate::{self, AggregateArgs},
    alert::{self, AlertArgs},
    probe::{self, ProbeArgs},
};
use tokio::sync::watch;

// Every check allocates its request, answer and result; glibc's malloc was
// the top of the probe's profile (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

#[derive(Debug, Subcommand)]
enum Role {
    /// Run checks assigned by the control plane and publish results to Kafka.
    Probe(ProbeArgs),
    /// Roll check results up from Kafka into PostgreSQL (exactly once).
    Aggregate(AggregateArgs),
    /// Evaluate alert rules on the results from Kafka: incidents, their
    /// timeline and notification intents in PostgreSQL (exactly once).
    Alert(AlertArgs),
}

/// Flips to true on SIGINT or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        process::shutdown_signal().await;
        tracing::info!("shutdown requested: draining");
        let _ = tx.send(true);
    });
    rx
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::load_dotenv()?;
    let cli = Cli::parse();
    process::init_tracing(cli.log_format, LogOutput::Stderr);
    match cli.role {
        Role::Probe(args) => probe::run(args, shutdown_signal()).await,
        Role::Aggregate(args) => aggregate::run(args.finish(), shutdown_signal()).await,
        Role::Alert(args) => alert::run(args, shutdown_signal()).await,
    }
}
