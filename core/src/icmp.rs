//! ICMP ping check limits both ends follow: the server refuses a job
//! outside them, the worker fills in the defaults (and clamps, in case a
//! stored job predates a limit).

use std::time::Duration;

/// Echo requests when the job leaves `count` at 0.
pub const DEFAULT_COUNT: u32 = 3;
/// The most echo requests one check sends.
pub const MAX_COUNT: u32 = 10;
/// Time between two requests when the job leaves `interval` unset.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(200);
/// The shortest interval a job may ask for.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest interval a job may ask for.
pub const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// The requests a check sends: `count`, 0 meaning [`DEFAULT_COUNT`], at
/// most [`MAX_COUNT`].
pub fn effective_count(count: u32) -> u32 {
    if count == 0 {
        DEFAULT_COUNT
    } else {
        count.min(MAX_COUNT)
    }
}

/// The time between requests: `interval`, unset meaning
/// [`DEFAULT_INTERVAL`], within [`MIN_INTERVAL`] and [`MAX_INTERVAL`].
pub fn effective_interval(interval: Option<Duration>) -> Duration {
    interval.map_or(DEFAULT_INTERVAL, |interval| interval.clamp(MIN_INTERVAL, MAX_INTERVAL))
}

/// The shortest timeout a job with `count` requests `interval` apart may
/// have: the last request leaves `(count - 1) * interval` after the first,
/// and gets one more interval for its reply.
pub fn min_timeout(count: u32, interval: Duration) -> Duration {
    interval * count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_limits_clamp() {
        assert_eq!(effective_count(0), 3);
        assert_eq!(effective_count(7), 7);
        assert_eq!(effective_count(11), 10);
        assert_eq!(effective_interval(None), Duration::from_millis(200));
        assert_eq!(effective_interval(Some(Duration::from_millis(1))), MIN_INTERVAL);
        assert_eq!(effective_interval(Some(Duration::from_secs(5))), MAX_INTERVAL);
        assert_eq!(min_timeout(3, Duration::from_millis(200)), Duration::from_millis(600));
        assert_eq!(min_timeout(1, Duration::from_secs(1)), Duration::from_secs(1));
    }
}
