//! Settings of the `alert` role.

use std::time::Duration;

use clap::Args;

use crate::{kafka::KafkaArgs, stream::StoreConsumerArgs};

#[derive(Debug, Clone, Args)]
pub struct AlertArgs {
    /// Consumer group shared by every evaluator (not the aggregators' one:
    /// each group reads every result).
    #[arg(long = "group-id", env = "MONITOR_ALERT_GROUP_ID", default_value = "monitor-alert")]
    pub group_id: String,
    /// Write state, incidents and notification intents at least this often
    /// (milliseconds): the detection latency's main part.
    #[arg(long, env = "MONITOR_ALERT_FLUSH_INTERVAL_MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub flush_interval_ms: u64,
    /// Re-read rules, jobs, silences and acknowledgements this often
    /// (milliseconds): how soon a change made through the API applies.
    #[arg(long, env = "MONITOR_ALERT_RELOAD_INTERVAL_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub reload_interval_ms: u64,
    /// Check the time-based conditions (no data, reminders, silences
    /// ending, flapping) this often (milliseconds).
    #[arg(long, env = "MONITOR_ALERT_TICK_INTERVAL_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub tick_interval_ms: u64,
    /// A running job is silent (no data) after max(3 x its interval, this)
    /// without a result (milliseconds).
    #[arg(long, env = "MONITOR_ALERT_NO_DATA_MIN_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1_000..=86_400_000))]
    pub no_data_min_ms: u64,
    /// Database, session timeout, future skew, telemetry.
    #[command(flatten)]
    pub consumer: StoreConsumerArgs,
    /// Run the notification dispatcher beside the evaluator
    /// (`--dispatch false`: evaluate only, e.g. when dispatchers run apart).
    #[arg(long, env = "MONITOR_DISPATCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub dispatch: bool,
    /// Look for due notifications this often.
    #[arg(long, env = "MONITOR_DISPATCH_POLL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub dispatch_poll_ms: u64,
    /// A claimed notification is due again after this long when its
    /// dispatcher died before recording the attempt (more than the timeout).
    #[arg(long, env = "MONITOR_DISPATCH_LEASE_MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1_000..=3_600_000))]
    pub dispatch_lease_ms: u64,
    /// Longest one delivery attempt may take.
    #[arg(long, env = "MONITOR_NOTIFY_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub notify_timeout_ms: u64,
    /// The wait before the first retry (doubling, with jitter, up to --retry-max-ms).
    #[arg(long, env = "MONITOR_NOTIFY_RETRY_BASE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub retry_base_ms: u64,
    /// The longest wait between two attempts.
    #[arg(long, env = "MONITOR_NOTIFY_RETRY_MAX_MS", default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(10..=86_400_000))]
    pub retry_max_ms: u64,
    /// A notification still failing this long after it was due is given up
    /// (the incident's timeline says so).
    #[arg(long, env = "MONITOR_NOTIFY_GIVE_UP_MS", default_value_t = 86_400_000, value_parser = clap::value_parser!(u64).range(1_000..=604_800_000))]
    pub give_up_ms: u64,
    /// Networks channel URLs may not reach besides the default blocklist.
    #[arg(long, env = "MONITOR_NOTIFY_BLOCKLIST", value_delimiter = ',')]
    pub notify_blocklist: Vec<ipnet::IpNet>,
    /// Networks channel URLs may reach although blocked (e.g. 127.0.0.0/8).
    #[arg(long, env = "MONITOR_NOTIFY_ALLOW_NET", value_delimiter = ',')]
    pub notify_allow_net: Vec<ipnet::IpNet>,
    /// The dashboard's address, for incident links in notifications, e.g.
    /// https://monitor.example.com/ui/ (none: no links).
    #[arg(long, env = "MONITOR_DASHBOARD_URL")]
    pub dashboard_url: Option<String>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

impl AlertArgs {
    /// The dispatcher's settings from the flags.
    pub fn dispatch_config(&self) -> crate::notify::DispatchConfig {
        crate::notify::DispatchConfig {
            poll: Duration::from_millis(self.dispatch_poll_ms),
            lease: Duration::from_millis(self.dispatch_lease_ms),
            send_timeout: Duration::from_millis(self.notify_timeout_ms),
            retry: monitor_notify::retry::RetryPolicy {
                base: Duration::from_millis(self.retry_base_ms),
                max: Duration::from_millis(self.retry_max_ms),
                give_up_after: Duration::from_millis(self.give_up_ms),
            },
            blocklist: monitor_core::blocklist::Blocklist::with_defaults(
                self.notify_blocklist.iter().copied(),
                self.notify_allow_net.clone(),
            ),
            dashboard_url: self.dashboard_url.clone(),
            ..crate::notify::DispatchConfig::default()
        }
    }
}

/// The role's flags on their own, for [`AlertArgs::from_flags`].
#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    args: AlertArgs,
}

impl AlertArgs {
    /// Parses flags exactly as `monitor-worker alert` does (the first item
    /// is the program name): for tests, benchmarks and embedding.
    pub fn from_flags<I, T>(flags: I) -> Result<AlertArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        Ok(Flags::try_parse_from(flags)?.args)
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    pub fn reload_interval(&self) -> Duration {
        Duration::from_millis(self.reload_interval_ms)
    }

    pub fn tick_interval(&self) -> Duration {
        Duration::from_millis(self.tick_interval_ms)
    }

    pub fn no_data_min(&self) -> Duration {
        Duration::from_millis(self.no_data_min_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        for (flag, value) in [
            ("--flush-interval-ms", "5"),
            ("--reload-interval-ms", "50"),
            ("--tick-interval-ms", "0"),
            ("--session-timeout-ms", "100"),
            ("--no-data-min-ms", "999"),
        ] {
            let err = AlertArgs::from_flags(["alert", flag, value]).unwrap_err().to_string();
            assert!(err.contains(flag), "{err}");
        }
        let args = AlertArgs::from_flags(["alert"]).unwrap();
        assert_eq!(args.group_id, "monitor-alert");
        assert_eq!(args.flush_interval(), Duration::from_millis(200));
    }
}
