//! Rollup granularities: a label `<N><s|m|h|d>` (`1m`, `5m`, `1h`, `1d`)
//! naming a fixed bucket width, and the bucket a time falls in. Buckets are
//! aligned to the Unix epoch, so days start at UTC midnight and every
//! aggregator cuts time at the same instants.
//!
//! The aggregator parses `--granularities` and `--retention` with
//! [`parse_width`] and files each result under
//! [`Granularity::bucket_start_ms`]; the server checks a QueryMetrics
//! granularity with the same parser, so a width one accepts the other
//! accepts too. Each caller words its own error messages from
//! [`GranularityError`].

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

/// The widest granularity, in days: about ten years, which keeps every
/// millisecond sum over bucket starts and widths far inside `i64`.
pub const MAX_DAYS: u64 = 3_650;

/// The widest granularity (and retention age), [`MAX_DAYS`] days.
pub const MAX_WIDTH: Duration = Duration::from_secs(MAX_DAYS * SECONDS_PER_DAY);

const SECONDS_PER_DAY: u64 = 86_400;

/// Why a text is not a granularity. Callers turn it into their own message
/// (the server's QueryMetrics field violation, the worker's flag error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranularityError {
    /// `N` is missing, not a whole number, zero, or starts with `0` (or a
    /// sign): only `1`, `15`, `300`... name a width.
    BadCount,
    /// The unit after `N` is not `s`, `m`, `h` or `d`.
    BadUnit,
    /// Wider than [`MAX_WIDTH`] (also when `N` is too large for any integer).
    TooWide,
}

/// The width a label `<N><s|m|h|d>` names: `N` a positive whole number
/// without leading zeros or sign, at most [`MAX_WIDTH`]. The count is checked
/// before the unit, so `x5m` is a [`GranularityError::BadCount`].
pub fn parse_width(label: &str) -> Result<Duration, GranularityError> {
    let Some(unit) = label.chars().last() else {
        return Err(GranularityError::BadCount);
    };
    let digits = &label[..label.len() - unit.len_utf8()];
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GranularityError::BadCount);
    }
    let unit_seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => SECONDS_PER_DAY,
        _ => return Err(GranularityError::BadUnit),
    };
    // Digits only, so parsing fails only when N does not fit: too wide too.
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
        .filter(|&seconds| seconds <= MAX_WIDTH.as_secs())
        .map(Duration::from_secs)
        .ok_or(GranularityError::TooWide)
}

/// A rollup width with the label rows are stored under
/// (`job_metrics.granularity`). Only [`Granularity::parse`] makes one, so the
/// width is always 1 s to [`MAX_WIDTH`] and the bucket maths cannot divide by
/// zero or overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granularity {
    /// As written, e.g. `5m`: the stored label.
    label: String,
    /// The bucket width the label names.
    width: Duration,
}

impl Granularity {
    /// Parses a label (see [`parse_width`]); the label is kept as written.
    pub fn parse(label: &str) -> Result<Granularity, GranularityError> {
        Ok(Granularity {
            label: label.to_owned(),
            width: parse_width(label)?,
        })
    }

    /// The label rows of this granularity are stored under.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The bucket width.
    pub fn width(&self) -> Duration {
        self.width
    }

    /// The bucket width in milliseconds (at most [`MAX_WIDTH`], so it fits).
    pub fn width_ms(&self) -> i64 {
        self.width.as_millis() as i64
    }

    /// The start of the bucket holding `at_ms` (milliseconds since the Unix
    /// epoch; times before it round down too). Saturates at the ends of
    /// `i64`, which no `DateTime` reaches.
    pub fn bucket_start_ms(&self, at_ms: i64) -> i64 {
        at_ms.saturating_sub(at_ms.rem_euclid(self.width_ms()))
    }

    /// The start of the bucket holding `at`.
    pub fn bucket_start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.bucket_start_ms(at.timestamp_millis()))
            .single()
            .unwrap_or(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn widths_in_every_unit_parse() {
        for (label, seconds) in [
            ("1s", 1),
            ("15s", 15),
            ("1m", 60),
            ("5m", 300),
            ("2h", 7_200),
            ("1d", 86_400),
            ("90d", 90 * 86_400),
        ] {
            assert_eq!(parse_width(label), Ok(Duration::from_secs(seconds)), "{label}");
        }
    }

    #[test]
    fn the_widest_granularity_is_3650_days_in_any_unit() {
        assert_eq!(MAX_WIDTH, Duration::from_secs(3_650 * 86_400));
        assert_eq!(parse_width("3650d"), Ok(MAX_WIDTH));
        assert_eq!(parse_width("87600h"), Ok(MAX_WIDTH));
        assert_eq!(parse_width("315360000s"), Ok(MAX_WIDTH));
        for label in ["3651d", "87601h", "5256001m", "315360001s"] {
            assert_eq!(parse_width(label), Err(GranularityError::TooWide), "{label}");
        }
    }

    #[test]
    fn counts_whose_product_overflows_are_too_wide_not_a_panic() {
        // u64::MAX / 86_400 + 1 days: the multiplication overflows u64.
        let overflowing = format!("{}d", u64::MAX / 86_400 + 1);
        assert_eq!(parse_width(&overflowing), Err(GranularityError::TooWide));
        assert_eq!(parse_width("18446744073709551615m"), Err(GranularityError::TooWide));
        // More digits than any integer holds.
        assert_eq!(parse_width("99999999999999999999s"), Err(GranularityError::TooWide));
    }

    #[test]
    fn malformed_counts_are_refused() {
        for label in [
            "", "1", "m", "0m", "00m", "05m", "-1h", "+5m", "1.5h", " 1m", "1m ", "1ms", "x5m", "é", "١m",
        ] {
            assert_eq!(parse_width(label), Err(GranularityError::BadCount), "{label:?}");
        }
    }

    #[test]
    fn unknown_units_are_refused_even_when_not_ascii() {
        for label in ["10", "1w", "1M", "1H", "5x", "1é", "1\u{0}"] {
            assert_eq!(parse_width(label), Err(GranularityError::BadUnit), "{label:?}");
        }
    }

    #[test]
    fn a_granularity_keeps_its_label_as_written() {
        let five = Granularity::parse("5m").unwrap();
        assert_eq!(
            (five.label(), five.width(), five.width_ms()),
            ("5m", Duration::from_secs(300), 300_000)
        );
        assert_eq!(Granularity::parse("60s").unwrap().label(), "60s");
        assert_eq!(Granularity::parse("5x"), Err(GranularityError::BadUnit));
    }

    #[test]
    fn buckets_start_on_the_epoch_grid_in_utc() {
        let t = at("2026-11-27T10:07:59.999Z");
        let bucket = |label: &str| Granularity::parse(label).unwrap().bucket_start(t);
        assert_eq!(bucket("1s"), at("2026-11-27T10:07:59Z"));
        assert_eq!(bucket("1m"), at("2026-11-27T10:07:00Z"));
        assert_eq!(bucket("5m"), at("2026-11-27T10:05:00Z"));
        assert_eq!(bucket("1h"), at("2026-11-27T10:00:00Z"));
        assert_eq!(bucket("1d"), at("2026-11-27T00:00:00Z"));
        // 7 days from Thursday 1970-01-01: weeks start on Thursdays.
        assert_eq!(bucket("7d"), at("2026-11-26T00:00:00Z"));
        assert_eq!(bucket("3650d"), at("2019-12-20T00:00:00Z"));
    }

    #[test]
    fn a_bucket_holds_its_start_and_not_its_end() {
        let minute = Granularity::parse("1m").unwrap();
        assert_eq!(minute.bucket_start_ms(120_000), 120_000);
        assert_eq!(minute.bucket_start_ms(179_999), 120_000);
        assert_eq!(minute.bucket_start_ms(180_000), 180_000);
        assert_eq!(minute.bucket_start_ms(0), 0);
    }

    #[test]
    fn times_before_the_epoch_round_down_and_the_extremes_saturate() {
        let minute = Granularity::parse("1m").unwrap();
        assert_eq!(minute.bucket_start_ms(-1), -60_000);
        assert_eq!(minute.bucket_start_ms(-60_000), -60_000);
        assert_eq!(
            minute.bucket_start(at("1969-12-31T23:59:30Z")),
            at("1969-12-31T23:59:00Z")
        );
        assert_eq!(minute.bucket_start_ms(i64::MIN), i64::MIN);
        assert_eq!(minute.bucket_start_ms(i64::MAX), i64::MAX - i64::MAX % 60_000);
    }
}
