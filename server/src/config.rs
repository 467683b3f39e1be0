//! Command line and environment configuration of `monitor-server`.
//!
//! Secret settings (tokens, the database URL's password) are [`Secret`] and
//! [`SecretUrl`], so the derived `Debug` impls never print them.

use std::{net::SocketAddr, path::PathBuf};

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};
use monitor_core::process::LogFormat;
use monitor_proto::secret::{Secret, SecretUrl};

/// The monitor control plane: stores jobs and serves the API.
#[derive(Debug, Parser)]
#[command(name = "monitor-server", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/monitor",
        value_parser = parse_database_url
    )]
    pub database_url: SecretUrl,
    /// Log format.
    #[arg(long, env = "MONITOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address for gRPC (and, later, REST, grpc-web and the dashboard).
    #[arg(long, env = "MONITOR_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest number of database connections.
    #[arg(long, env = "MONITOR_DB_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub db_pool_size: u16,
    /// Do not apply pending migrations at start (run `monitor-server migrate` instead).
    #[arg(long, env = "MONITOR_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Jobs to import at start, idempotently by name (e.g. jobs.json).
    #[arg(long, env = "MONITOR_JOBS_FILE")]
    pub jobs_file: Option<PathBuf>,
    /// API tokens as role:token or role/name:token entries separated by commas (roles: read,
    /// write, admin). The name is who the API records as acting (acknowledged_by, ...); an
    /// unnamed entry is called role#position, e.g. write#2. Without any token the server runs
    /// open (dev mode, actor "anonymous") and the database reset is disabled.
    #[arg(long, env = "MONITOR_API_TOKENS", hide_env_values = true)]
    pub api_tokens: Option<Secret>,
    /// File with one role:token or role/name:token per line (# comments); merged with --api-tokens.
    #[arg(long, env = "MONITOR_API_TOKENS_FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Origins browsers may call the API from (CORS), comma-separated, e.g. https://ops.example.com.
    #[arg(long, env = "MONITOR_CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Longest a REST request may take, in milliseconds.
    #[arg(long, env = "MONITOR_REQUEST_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub request_timeout_ms: u64,
    /// Tokens probe workers must present, as WORKER_ID_PATTERN:TOKEN entries
    /// separated by commas (probe-eu-1:…, probe-*:…, *:… for any id; tokens
    /// ≥ 16 characters). Without any, every client may connect as any worker.
    #[arg(long, env = "MONITOR_WORKER_TOKENS", hide_env_values = true)]
    pub worker_tokens: Option<Secret>,
    /// Serve on a non-loopback address without API tokens or without worker
    /// tokens (anyone who reaches the port may then use the API or connect
    /// as a worker). Without it such a start is refused.
    #[arg(long, env = "MONITOR_INSECURE_OPEN")]
    pub insecure_open: bool,
    /// Most probe workers the server knows at once (connected, draining, or
    /// lost within their lease); a hello under a new worker id beyond it is
    /// refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "MONITOR_MAX_WORKERS", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_workers: u32,
    /// Worker lease in milliseconds: a worker pauses its jobs after this long
    /// without hearing the server; the server moves a silent worker's jobs
    /// after the lease plus one heartbeat interval.
    #[arg(long, env = "MONITOR_WORKER_LEASE_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(1_000..=600_000))]
    pub worker_lease_ms: u64,
    /// Heartbeat interval of the worker streams in milliseconds (at most a third of the lease).
    #[arg(long, env = "MONITOR_WORKER_HEARTBEAT_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(100..=200_000))]
    pub worker_heartbeat_ms: u64,
    /// Largest REST request body in bytes.
    #[arg(long, env = "MONITOR_MAX_BODY_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..=64 * 1024 * 1024))]
    pub max_body_bytes: u64,
    /// Serve the dashboard (/ui/) from this directory instead of the copy
    /// built into the binary, e.g. server/ui/dist while working on it.
    #[arg(long, env = "MONITOR_UI_DIR")]
    pub ui_dir: Option<PathBuf>,
    /// Certificate chain (PEM, leaf first): the port speaks TLS (gRPC,
    /// grpc-web, REST and the dashboard). Requires --tls-key.
    #[arg(long, env = "MONITOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "MONITOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Networks (CIDRs, comma-separated) notification channel URLs may not
    /// point into, in addition to the probes' default blocklist.
    #[arg(long, env = "MONITOR_NOTIFY_BLOCKLIST", value_delimiter = ',')]
    pub notify_blocklist: Vec<ipnet::IpNet>,
    /// Networks channel URLs may point into although a blocked network
    /// holds them (e.g. 127.0.0.0/8 for a receiver on this machine).
    #[arg(long, env = "MONITOR_NOTIFY_ALLOW_NET", value_delimiter = ',')]
    pub notify_allow_net: Vec<ipnet::IpNet>,
    /// Longest a TestNotificationChannel send may take, in milliseconds.
    #[arg(long, env = "MONITOR_NOTIFY_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub notify_timeout_ms: u64,
}

/// An origin is scheme://host[:port], nothing more.
fn parse_origin(raw: &str) -> Result<HeaderValue, String> {
    let raw = raw.trim();
    let url = url::Url::parse(raw)
        .map_err(|err| format!("{raw:?} is not an origin ({err}); expected e.g. https://ops.example.com"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be http(s)://host[:port]"));
    }
    if url.path() != "/" || url.query().is_some() || raw.ends_with('/') {
        return Err(format!(
            "{raw:?} must not have a path: an origin is scheme://host[:port]"
        ));
    }
    HeaderValue::from_str(raw).map_err(|err| err.to_string())
}

/// Accepts only postgres:// or postgresql:// URLs naming a host.
fn parse_database_url(raw: &str) -> Result<SecretUrl, String> {
    let url =
        url::Url::parse(raw).map_err(|err| format!("not a URL ({err}); expected postgres://user@host:port/db"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "scheme must be postgres or postgresql (got {:?})",
            url.scheme()
        ));
    }
    if url.path().trim_start_matches('/').is_empty() {
        return Err("must name a database, e.g. postgres://postgres@127.0.0.1:5432/monitor".into());
    }
    Ok(SecretUrl::new(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_subcommands() {
        let cli = Cli::try_parse_from(["monitor-server"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.to_string(), "127.0.0.1:8080");
        let cli = Cli::try_parse_from(["monitor-server", "migrate", "--database-url", "postgres://h/db"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Migrate(args)) if args.database_url.expose() == "postgres://h/db"));
        let cli = Cli::try_parse_from([
            "monitor-server",
            "--cors-allowed-origins",
            "http://localhost:3000,https://ops.example.com",
        ])
        .unwrap();
        assert_eq!(cli.serve.cors_allowed_origins.len(), 2);
        let cli = Cli::try_parse_from(["monitor-server", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]).unwrap();
        assert_eq!(cli.serve.tls_cert.unwrap().to_str(), Some("cert.pem"));
        assert_eq!(cli.serve.tls_key.unwrap().to_str(), Some("key.pem"));
    }

    #[test]
    fn debug_output_hides_tokens_and_the_database_password() {
        let cli = Cli::try_parse_from([
            "monitor-server",
            "--database-url",
            "postgres://monitor:db-hunter2@db:5432/monitor",
            "--api-tokens",
            "read:api-hunter2-0123456789",
            "--worker-tokens",
            "worker-hunter2-0123456789",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://***@db:5432/monitor"), "{shown}");
        assert_eq!(
            cli.serve.database.database_url.expose(),
            "postgres://monitor:db-hunter2@db:5432/monitor"
        );
        assert_eq!(
            cli.serve.api_tokens.as_ref().map(Secret::expose),
            Some("read:api-hunter2-0123456789")
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (vec!["--listen", "nowhere"], "--listen"),
            (vec!["--database-url", "mysql://h/db"], "--database-url"),
            (vec!["--database-url", "postgres://h"], "--database-url"),
            (vec!["--db-pool-size", "0"], "--db-pool-size"),
            (vec!["--log-format", "xml"], "--log-format"),
            (
                vec!["--cors-allowed-origins", "https://a.example/path"],
                "--cors-allowed-origins",
            ),
            (
                vec!["--cors-allowed-origins", "ftp://a.example"],
                "--cors-allowed-origins",
            ),
            (vec!["--request-timeout-ms", "0"], "--request-timeout-ms"),
            (vec!["--max-body-bytes", "10"], "--max-body-bytes"),
            (vec!["--max-workers", "0"], "--max-workers"),
            (vec!["--tls-cert", "cert.pem"], "--tls-key"),
            (vec!["--tls-key", "key.pem"], "--tls-cert"),
        ] {
            let err = Cli::try_parse_from(std::iter::once("monitor-server").chain(args))
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
