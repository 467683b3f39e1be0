//! Settings of the `aggregate` role: which rollups to keep and for how long.

use std::{collections::BTreeMap, time::Duration};

use clap::{Args, ValueEnum};
use monitor_core::granularity::{self, Granularity, GranularityError};

use crate::{kafka::KafkaArgs, stream::StoreConsumerArgs};

/// The flag error for a granularity or age that [`granularity::parse_width`]
/// refuses.
fn flag_error(text: &str, err: GranularityError) -> String {
    match err {
        GranularityError::BadCount => format!("{text:?} must be <N><s|m|h|d>, e.g. 1m, 5m, 1h, 1d"),
        GranularityError::BadUnit => format!("{text:?} must end in s, m, h or d"),
        GranularityError::TooWide => format!("{text:?} is longer than {} days", granularity::MAX_DAYS),
    }
}

fn parse_granularity(text: &str) -> Result<Granularity, String> {
    let text = text.trim();
    Granularity::parse(text).map_err(|err| flag_error(text, err))
}

/// `<granularity>=<age>` pairs; an age is written like a granularity.
fn parse_retention(text: &str) -> Result<(String, Duration), String> {
    let (granularity, age) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} must be granularity=age, e.g. 1m=7d"))?;
    let granularity = parse_granularity(granularity)?;
    let age = age.trim();
    let age = granularity::parse_width(age).map_err(|err| flag_error(age, err))?;
    Ok((granularity.label().to_owned(), age))
}

/// Which time of a result the response-time aggregates use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RtField {
    /// The whole check (`CheckResult.duration`).
    Duration,
    /// The kind's own measure: until the response headers (HTTP), the
    /// connection (TCP), the answer (DNS), the average echo (ICMP), ...
    FirstByte,
}

#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
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
    /// (granularities not listed are kept forever: day rows by default, for
    /// yearly SLAs). Whole partitions are dropped, so a row may outlive its
    /// age by up to one partition (a day for widths under an hour, else a
    /// month).
    #[arg(long = "retention", env = "MONITOR_RETENTION", value_delimiter = ',', default_value = "1m=14d,1h=400d", value_parser = parse_retention)]
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
    /// Database, session timeout, future skew, telemetry.
    #[command(flatten)]
    pub consumer: StoreConsumerArgs,
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
        assert!(args.consumer.database_url.expose().contains("db-hunter2"));
    }

    /// The parsing rules are `monitor_core::granularity`'s (tested there);
    /// this is how the flags word what it refuses.
    #[test]
    fn granularity_and_age_errors_keep_the_flag_wording() {
        assert_eq!(parse_granularity(" 5m ").unwrap().label(), "5m");
        assert_eq!(
            parse_granularity("05m").unwrap_err(),
            "\"05m\" must be <N><s|m|h|d>, e.g. 1m, 5m, 1h, 1d"
        );
        assert_eq!(parse_granularity("5x").unwrap_err(), "\"5x\" must end in s, m, h or d");
        assert!(parse_granularity("3650d").is_ok(), "the server's limit, not 366 days");
        assert_eq!(
            parse_granularity("3651d").unwrap_err(),
            "\"3651d\" is longer than 3650 days"
        );
        assert_eq!(
            parse_granularity("300000000000000d").unwrap_err(),
            "\"300000000000000d\" is longer than 3650 days",
            "n * 86 400 overflowed here once"
        );
        assert_eq!(
            parse_retention("1m=7d").unwrap(),
            ("1m".into(), Duration::from_secs(7 * 86_400))
        );
        assert_eq!(parse_retention(" 1h = 90d ").unwrap().0, "1h");
        assert_eq!(
            parse_retention("1m").unwrap_err(),
            "\"1m\" must be granularity=age, e.g. 1m=7d"
        );
        assert!(parse_retention("1m=forever").is_err());
        assert_eq!(parse_retention("1x=7d").unwrap_err(), "\"1x\" must end in s, m, h or d");
        assert_eq!(
            parse_retention("1m=9999d").unwrap_err(),
            "\"9999d\" is longer than 3650 days"
        );
    }

    #[test]
    fn the_default_retention_keeps_two_weeks_of_minutes_and_day_rows_forever() {
        let args = AggregateArgs::from_flags(["x"]).unwrap();
        assert_eq!(
            args.retention,
            BTreeMap::from([
                ("1m".to_owned(), Duration::from_secs(14 * 86_400)),
                ("1h".to_owned(), Duration::from_secs(400 * 86_400)),
            ])
        );
        assert!(!args.retention.contains_key("1d"));
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
