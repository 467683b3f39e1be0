//! Settings of the `aggregate` role: which rollups to keep and for how long.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use clap::{Args, ValueEnum};

use crate::kafka::KafkaArgs;

/// A fixed bucket width, aligned to the Unix epoch (so days start at UTC
/// midnight), e.g. `1m`, `5m`, `1h`, `1d`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granularity {
    /// As written, and as stored in `job_metrics.granularity`.
    pub label: String,
    pub width: Duration,
}

impl Granularity {
    /// Parses `<N><s|m|h|d>` with N ≥ 1, at least one second and at most 366 days.
    pub fn parse(text: &str) -> Result<Granularity, String> {
        let width = parse_width(text)?;
        Ok(Granularity {
            label: text.to_owned(),
            width,
        })
    }

    /// The start of the bucket holding `at`.
    pub fn bucket_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        let width = self.width.as_millis() as i64;
        let ms = at.timestamp_millis();
        Utc.timestamp_millis_opt(ms - ms.rem_euclid(width))
            .single()
            .unwrap_or(at)
    }
}

fn parse_width(text: &str) -> Result<Duration, String> {
    let (digits, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = digits
        .parse()
        .ok()
        .filter(|n| *n >= 1 && !digits.starts_with('0'))
        .ok_or_else(|| format!("{text:?} must be <N><s|m|h|d>, e.g. 1m, 5m, 1h, 1d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{text:?} must end in s, m, h or d")),
    };
    if seconds > 366 * 86_400 {
        return Err(format!("{text:?} is longer than 366 days"));
    }
    Ok(Duration::from_secs(seconds))
}

fn parse_granularity(text: &str) -> Result<Granularity, String> {
    Granularity::parse(text.trim())
}

/// `<granularity>=<age>` pairs.
fn parse_retention(text: &str) -> Result<(String, Duration), String> {
    let (granularity, age) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} must be granularity=age, e.g. 1m=7d"))?;
    Granularity::parse(granularity.trim())?;
    Ok((granularity.trim().to_owned(), parse_width(age.trim())?))
}

/// Which time of a result the response-time aggregates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RtField {
    /// The whole check (`CheckResult.duration`).
    Duration,
    /// Until the response headers (HTTP) or the connection (TCP).
    FirstByte,
}

#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// PostgreSQL connection URL (the control plane's database).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/monitor"
    )]
    /// `Debug` shows it with the userinfo redacted.
    pub database_url: monitor_proto::secret::SecretUrl,
    /// Consumer group shared by every aggregator.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "monitor-aggregator")]
    pub group_id: String,
    /// Topic refused messages go to, with the reason in a header.
    #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = "monitor.checks.dlq")]
    pub dlq_topic: String,
    /// Rollup widths, comma-separated.
    #[arg(long, env = "MONITOR_GRANULARITIES", value_delimiter = ',', default_value = "1m,1h,1d", value_parser = parse_granularity)]
    pub granularities: Vec<Granularity>,
    /// How long rows are kept per granularity, comma-separated granularity=age
    /// (granularities not listed are kept forever).
    #[arg(long = "retention", env = "MONITOR_RETENTION", value_delimiter = ',', default_value = "1m=7d,1h=90d", value_parser = parse_retention)]
    pub retention_pairs: Vec<(String, Duration)>,
    #[arg(skip)]
    pub retention: BTreeMap<String, Duration>,
    /// Which time the response-time aggregates (min, max, avg, percentiles) use.
    #[arg(long, env = "MONITOR_RT_FIELD", value_enum, default_value_t = RtField::Duration)]
    pub rt_field: RtField,
    /// Flush at least this often (milliseconds).
    #[arg(long, env = "MONITOR_FLUSH_INTERVAL_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub flush_interval_ms: u64,
    /// Flush early when this many rollup rows are pending.
    #[arg(long = "max-pending-keys", env = "MONITOR_MAX_PENDING_KEYS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_pending_keys_arg: u64,
    #[arg(skip)]
    pub max_pending_keys: usize,
    /// Consumer-group session timeout (milliseconds): a crashed aggregator's
    /// partitions move to the others after this long.
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(3_000..=300_000))]
    pub session_timeout_ms: u64,
    /// Results starting more than this far in the future are refused (milliseconds).
    #[arg(long, env = "MONITOR_MAX_FUTURE_SKEW_MS", default_value_t = 3_600_000, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub max_future_skew_ms: u64,
    /// Address of this worker's /metrics, /healthz and /readyz (off when unset).
    #[arg(long, env = "MONITOR_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// The role's flags on their own, for [`AggregateArgs::from_flags`].
#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    args: AggregateArgs,
}

impl AggregateArgs {
    /// Parses flags exactly as `monitor-worker aggregate` does (the first
    /// item is the program name) and completes the derived fields: for tests,
    /// benchmarks and embedding.
    pub fn from_flags<I, T>(flags: I) -> Result<AggregateArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser as _;
        Ok(Flags::try_parse_from(flags)?.args.finish())
    }

    /// Completes the derived fields after parsing.
    pub fn finish(mut self) -> Self {
        self.retention = self.retention_pairs.iter().cloned().collect();
        self.max_pending_keys = self.max_pending_keys_arg as usize;
        self
    }

    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    pub fn max_future_skew(&self) -> Duration {
        Duration::from_millis(self.max_future_skew_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_database_and_sasl_passwords() {
        let args = AggregateArgs::from_flags([
            "aggregate",
            "--database-url",
            "postgres://monitor:db-hunter2@db:5432/monitor",
            "--kafka-sasl-mechanism",
            "PLAIN",
            "--kafka-sasl-username",
            "monitor",
            "--kafka-sasl-password",
            "sasl-hunter2",
        ])
        .unwrap();
        let shown = format!("{args:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://***@db:5432/monitor"), "{shown}");
        assert!(args.database_url.expose().contains("db-hunter2"));
    }

    #[test]
    fn granularities_parse_and_align() {
        let five = Granularity::parse("5m").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 10, 7, 59).unwrap();
        assert_eq!(
            five.bucket_start(at),
            Utc.with_ymd_and_hms(2026, 11, 27, 10, 5, 0).unwrap()
        );
        let day = Granularity::parse("1d").unwrap();
        assert_eq!(
            day.bucket_start(at),
            Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap()
        );
        for bad in ["", "m", "0m", "05m", "5x", "-1h", "400d", "1.5h"] {
            assert!(Granularity::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_retention("1m=7d").unwrap(),
            ("1m".into(), Duration::from_secs(7 * 86_400))
        );
        assert!(parse_retention("1m").is_err());
        assert!(parse_retention("1m=forever").is_err());
    }

    #[test]
    fn flags_parse_and_bad_values_name_the_flag() {
        let args = AggregateArgs::from_flags(["x", "--retention", "1m=1d,5m=30d", "--max-pending-keys", "7"]).unwrap();
        assert_eq!(args.retention["5m"], Duration::from_secs(30 * 86_400));
        assert_eq!(args.max_pending_keys, 7);
        assert_eq!(args.granularities.len(), 3);
        for (flag, value) in [
            ("--granularities", "1m,7x"),
            ("--retention", "1m"),
            ("--max-pending-keys", "0"),
            ("--flush-interval-ms", "1"),
            ("--rt-field", "ttl"),
        ] {
            let err = AggregateArgs::from_flags(["x", flag, value]).err().unwrap().to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
