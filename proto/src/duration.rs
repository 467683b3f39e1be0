//! `google.protobuf.Duration` ([`pbjson_types::Duration`]) to and from
//! milliseconds and std durations: the one place the server and the workers
//! convert. A std duration becomes a protobuf one with pbjson-types' own
//! `From<std::time::Duration>` (`.into()`), and a strict protobuf → std
//! conversion is its `TryFrom` (refusing negative parts); these cover what
//! it does not: milliseconds as the database stores them, and the lenient
//! readings a worker applies to what the server sends.

use pbjson_types::Duration;

/// A protobuf Duration of `ms` milliseconds (negative: both parts negative,
/// as the protobuf sign rule asks). The database stores intervals and
/// timeouts as milliseconds.
pub fn from_millis(ms: i64) -> Duration {
    Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// The std duration of `d`, reading a negative part as zero, so a peer's
/// malformed value cannot panic or wrap.
pub fn to_std_saturating(d: &Duration) -> std::time::Duration {
    std::time::Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
}

/// Whole milliseconds of `d`, negative parts read as zero, saturating at
/// `u64::MAX`.
pub fn as_millis_saturating(d: &Duration) -> u64 {
    u64::try_from(to_std_saturating(d).as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds of `d` with their fraction, as response times are
/// aggregated.
pub fn as_millis_f64(d: &Duration) -> f64 {
    d.seconds as f64 * 1000.0 + f64::from(d.nanos) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(seconds: i64, nanos: i32) -> Duration {
        Duration { seconds, nanos }
    }

    #[test]
    fn milliseconds_become_seconds_and_nanos() {
        assert_eq!(from_millis(0), proto(0, 0));
        assert_eq!(from_millis(1), proto(0, 1_000_000));
        assert_eq!(from_millis(1_500), proto(1, 500_000_000));
        assert_eq!(from_millis(60_000), proto(60, 0));
        assert_eq!(from_millis(-1_500), proto(-1, -500_000_000));
        assert_eq!(from_millis(i64::MAX), proto(i64::MAX / 1000, 807_000_000));
    }

    #[test]
    fn std_durations_round_trip_through_pbjson_types() {
        let std = std::time::Duration::from_millis(1_234);
        let wire: Duration = std.into();
        assert_eq!(wire, proto(1, 234_000_000));
        assert_eq!(to_std_saturating(&wire), std);
        assert_eq!(std::time::Duration::try_from(wire), Ok(std));
        assert!(
            std::time::Duration::try_from(proto(-1, 0)).is_err(),
            "the strict reading refuses"
        );
    }

    #[test]
    fn negative_parts_read_as_zero_and_large_values_saturate() {
        assert_eq!(to_std_saturating(&proto(-5, 0)), std::time::Duration::ZERO);
        assert_eq!(to_std_saturating(&proto(2, -1)), std::time::Duration::from_secs(2));
        assert_eq!(
            to_std_saturating(&proto(-1, 300_000_000)),
            std::time::Duration::from_millis(300)
        );
        // Nanos of a second or more carry into the seconds.
        assert_eq!(
            to_std_saturating(&proto(1, 1_500_000_000)),
            std::time::Duration::from_millis(2_500)
        );
        assert_eq!(as_millis_saturating(&proto(3, 999_999)), 3_000);
        assert_eq!(as_millis_saturating(&proto(-3, -5)), 0);
        assert_eq!(as_millis_saturating(&proto(i64::MAX, 999_999_999)), u64::MAX);
    }

    #[test]
    fn fractional_milliseconds_are_kept() {
        assert_eq!(as_millis_f64(&proto(0, 0)), 0.0);
        assert_eq!(as_millis_f64(&proto(1, 500_000)), 1_000.5);
        assert_eq!(as_millis_f64(&proto(0, 20_000_000)), 20.0);
        assert_eq!(as_millis_f64(&proto(-1, -500_000_000)), -1_500.0);
    }
}
