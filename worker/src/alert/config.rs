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
    #[command(flatten)]
    pub kafka: KafkaArgs,
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
