//! The settings every consumer of the results topic that keeps its state
//! in PostgreSQL takes (the aggregate and alert roles flatten them into
//! theirs, so the flags, variables and ranges are the same).

use std::time::Duration;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StoreConsumerArgs {
    /// PostgreSQL connection URL (the control plane's database, migrated).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/monitor"
    )]
    /// `Debug` shows it with the userinfo redacted.
    pub database_url: monitor_proto::secret::SecretUrl,
    /// Consumer-group session timeout (milliseconds): a crashed member's
    /// partitions move to the others after this long.
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(3_000..=300_000))]
    pub session_timeout_ms: u64,
    /// Results starting more than this far in the future are refused
    /// (dead-lettered by the aggregators, skipped by the alert evaluators)
    /// (milliseconds).
    #[arg(long, env = "MONITOR_MAX_FUTURE_SKEW_MS", default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub max_future_skew_ms: u64,
    /// Address of this worker's /metrics, /healthz and /readyz (off when unset).
    #[arg(long, env = "MONITOR_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl StoreConsumerArgs {
    pub fn max_future_skew(&self) -> Duration {
        Duration::from_millis(self.max_future_skew_ms)
    }
}
