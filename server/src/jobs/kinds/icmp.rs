//! What an ICMP ping check must be: a host, at most
//! [`MAX_COUNT`] requests an interval of [`MIN_INTERVAL`] to
//! [`MAX_INTERVAL`] apart that fit in the job's timeout, and assertions
//! within range.

use std::time::Duration;

use monitor_core::icmp::{MAX_COUNT, MAX_INTERVAL, MIN_INTERVAL, effective_count, effective_interval, min_timeout};
use monitor_proto::v1::IcmpCheck;

use super::super::validate::{spec_unless_violated, to_std_duration, validate_host};
use crate::error::FieldViolation;

pub(in crate::jobs) fn validate(
    icmp: &IcmpCheck,
    timeout: Option<Duration>,
    v: &mut Vec<FieldViolation>,
) -> Option<serde_json::Value> {
    let before = v.len();
    validate_host("icmp.host", &icmp.host, v);
    let count_valid = icmp.count <= MAX_COUNT;
    if !count_valid {
        v.push(FieldViolation::new(
            "icmp.count",
            format!("must be at most {MAX_COUNT} (0 means 3)"),
        ));
    }
    let mut interval_valid = true;
    if let Some(interval) = &icmp.interval {
        match to_std_duration("icmp.interval", interval, v) {
            Some(interval) if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) => {
                interval_valid = false;
                v.push(FieldViolation::new("icmp.interval", "must be 10ms to 1s"));
            }
            Some(_) => {}
            None => interval_valid = false,
        }
    }
    if count_valid
        && interval_valid
        && let Some(timeout) = timeout
    {
        let count = effective_count(icmp.count);
        let interval = effective_interval(icmp.interval.and_then(|interval| Duration::try_from(interval).ok()));
        let needed = min_timeout(count, interval);
        if timeout < needed {
            v.push(FieldViolation::new(
                "timeout",
                format!(
                    "must be at least {}ms for the ICMP check: {count} echo requests {}ms apart, each with an \
                     interval to be answered (or lower icmp.count or icmp.interval)",
                    needed.as_millis(),
                    interval.as_millis()
                ),
            ));
        }
    }
    if let Some(assertions) = &icmp.assertions {
        if let Some(max) = assertions.max_loss_percent
            && !(max.is_finite() && (0.0..=100.0).contains(&max))
        {
            v.push(FieldViolation::new(
                "icmp.assertions.max_loss_percent",
                "must be a number from 0 to 100",
            ));
        }
        if let Some(max) = &assertions.max_avg_rtt {
            let field = "icmp.assertions.max_avg_rtt";
            if max.seconds < 0 || max.nanos < 0 {
                v.push(FieldViolation::new(field, "must not be negative"));
            } else if max.nanos >= 1_000_000_000 {
                v.push(FieldViolation::new(field, "nanos must be below 1e9"));
            } else if max.seconds == 0 && max.nanos == 0 {
                v.push(FieldViolation::new(field, "must be greater than zero"));
            } else if let Some(timeout) = timeout
                && Duration::try_from(*max).is_ok_and(|max| max > timeout)
            {
                v.push(FieldViolation::new(field, "must not exceed the timeout"));
            }
        }
    }
    spec_unless_violated(icmp, before, v)
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{IcmpAssertions, Job, JobState, job::Check};

    use super::*;
    use crate::error::ApiError;
    use crate::jobs::validate::validate_job;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn valid() -> IcmpCheck {
        IcmpCheck {
            host: "gateway.example".into(),
            count: 10,
            interval: Some(Duration::from_millis(100).into()),
            assertions: Some(IcmpAssertions {
                max_loss_percent: Some(20.0),
                max_avg_rtt: Some(Duration::from_micros(500).into()),
            }),
        }
    }

    fn violations_within(timeout: Duration, change: impl FnOnce(&mut IcmpCheck)) -> Vec<FieldViolation> {
        let mut icmp = valid();
        change(&mut icmp);
        let mut v = Vec::new();
        let spec = validate(&icmp, Some(timeout), &mut v);
        assert_eq!(spec.is_none(), !v.is_empty());
        v
    }

    fn violations(change: impl FnOnce(&mut IcmpCheck)) -> Vec<FieldViolation> {
        violations_within(TIMEOUT, change)
    }

    fn one(field: &str, description: &str) -> Vec<FieldViolation> {
        vec![FieldViolation::new(field, description)]
    }

    fn proto(duration: Duration) -> Option<pbjson_types::Duration> {
        Some(duration.into())
    }

    #[test]
    fn valid_checks_are_accepted() {
        assert!(violations(|_| {}).is_empty());
        // Only a host: 3 requests 200 ms apart, failing only without replies.
        assert!(
            violations(|icmp| *icmp = IcmpCheck {
                host: "192.0.2.1".into(),
                ..IcmpCheck::default()
            })
            .is_empty()
        );
        // The bounds themselves; 10 requests a second apart fill a 10 s timeout.
        assert!(violations_within(Duration::from_secs(10), |icmp| icmp.interval = proto(MAX_INTERVAL)).is_empty());
        assert!(violations(|icmp| icmp.interval = proto(MIN_INTERVAL)).is_empty());
        for max in [0.0, 100.0] {
            assert!(
                violations(|icmp| icmp.assertions.as_mut().unwrap().max_loss_percent = Some(max)).is_empty(),
                "{max}"
            );
        }
    }

    #[test]
    fn an_icmp_job_goes_through_validate_job() {
        let job = Job {
            name: "gateway".into(),
            interval: Some(pbjson_types::Duration { seconds: 30, nanos: 0 }),
            timeout: Some(pbjson_types::Duration { seconds: 5, nanos: 0 }),
            desired_state: JobState::Running as i32,
            check: Some(Check::Icmp(valid())),
            ..Job::default()
        };
        assert_eq!(validate_job(&job).unwrap().fields.check_kind, "icmp");
        let mut bad = job;
        bad.check = Some(Check::Icmp(IcmpCheck::default()));
        assert_eq!(
            validate_job(&bad),
            Err(ApiError::InvalidArgument(one("icmp.host", "is required")))
        );
    }

    #[test]
    fn the_host_is_required_and_valid() {
        assert_eq!(violations(|icmp| icmp.host.clear()), one("icmp.host", "is required"));
        assert_eq!(
            violations(|icmp| icmp.host = "bad host".into()),
            one("icmp.host", "\"bad host\" is not a host name or IP address")
        );
    }

    #[test]
    fn count_and_interval_are_bounded() {
        assert_eq!(
            violations(|icmp| icmp.count = 11),
            one("icmp.count", "must be at most 10 (0 means 3)")
        );
        for interval in [Duration::from_millis(9), Duration::from_millis(1001)] {
            assert_eq!(
                violations(|icmp| icmp.interval = proto(interval)),
                one("icmp.interval", "must be 10ms to 1s"),
                "{interval:?}"
            );
        }
        assert_eq!(
            violations(|icmp| icmp.interval = Some(pbjson_types::Duration { seconds: -1, nanos: 0 })),
            one("icmp.interval", "must not be negative")
        );
    }

    #[test]
    fn the_requests_must_fit_in_the_timeout() {
        assert_eq!(
            violations_within(Duration::from_millis(999), |icmp| icmp.assertions = None),
            one(
                "timeout",
                "must be at least 1000ms for the ICMP check: 10 echo requests 100ms apart, each with an interval \
                 to be answered (or lower icmp.count or icmp.interval)"
            )
        );
        // The defaults: 3 requests 200 ms apart.
        assert_eq!(
            violations_within(Duration::from_millis(500), |icmp| *icmp = IcmpCheck {
                host: "192.0.2.1".into(),
                ..IcmpCheck::default()
            }),
            one(
                "timeout",
                "must be at least 600ms for the ICMP check: 3 echo requests 200ms apart, each with an interval \
                 to be answered (or lower icmp.count or icmp.interval)"
            )
        );
        assert!(violations_within(Duration::from_secs(1), |icmp| icmp.assertions = None).is_empty());
    }

    #[test]
    fn assertions_are_within_range() {
        let assertions = |change: fn(&mut IcmpAssertions)| violations(|icmp| change(icmp.assertions.as_mut().unwrap()));
        for max in [-1.0, 100.5, f64::NAN, f64::INFINITY] {
            let mut icmp = valid();
            icmp.assertions.as_mut().unwrap().max_loss_percent = Some(max);
            let mut v = Vec::new();
            validate(&icmp, Some(TIMEOUT), &mut v);
            assert_eq!(
                v,
                one("icmp.assertions.max_loss_percent", "must be a number from 0 to 100"),
                "{max}"
            );
        }
        assert_eq!(
            assertions(|a| a.max_avg_rtt = Some(pbjson_types::Duration::default())),
            one("icmp.assertions.max_avg_rtt", "must be greater than zero")
        );
        assert_eq!(
            assertions(|a| a.max_avg_rtt = Some(pbjson_types::Duration { seconds: 0, nanos: -5 })),
            one("icmp.assertions.max_avg_rtt", "must not be negative")
        );
        assert_eq!(
            assertions(|a| a.max_avg_rtt = Some(pbjson_types::Duration { seconds: 6, nanos: 0 })),
            one("icmp.assertions.max_avg_rtt", "must not exceed the timeout")
        );
    }
}
