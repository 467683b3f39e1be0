//! Which answers are retried and when: pure functions of the attempt
//! number, the far end's answer, the time since the delivery was first due
//! and a jitter draw, so the schedule is tested without a clock.
//!
//! - 2xx: delivered.
//! - No answer (connection refused, timeout, a blocked address is *not*
//!   this: see [`Answer::Refused`]), 408, 429 and 5xx: retried. The n-th
//!   retry waits `min(max, base × 2^(n-1))`, of which a random half is
//!   dropped ("equal jitter": between half and all of it), so dispatchers
//!   that failed together do not retry together. A 429's `Retry-After`
//!   (seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]) is waited
//!   instead, even when shorter: the far end knows when it can take more.
//! - Any other status (a 4xx, or a redirect, which is not followed): given
//!   up at once, since sending the same request again gets the same answer.
//! - SMTP (email channels) answers with reply codes, not HTTP statuses
//!   ([`Answer::Mail`], the reply that ended the exchange): 2xx is
//!   delivered, 4xx (transient by RFC 5321: a full mailbox, greylisting,
//!   a server shutting down) is retried like a 5xx HTTP status, 5xx
//!   (permanent: an unknown recipient, a refused sender) is given up,
//!   535 with a reason naming the login.
//! - A retry that would fall after `give_up_after` from the first due time
//!   is not made: the delivery is given up.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Longest `Retry-After` honoured (a far end asking for a day waits an hour).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The dispatcher's schedule settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the first retry (before jitter).
    pub base: Duration,
    /// The longest wait between two attempts (before jitter).
    pub max: Duration,
    /// No attempt is made later than this after the delivery was due.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The far end answered with this status (and maybe a Retry-After).
    Status { code: u16, retry_after: Option<Duration> },
    /// The SMTP server's reply code that ended the exchange: the
    /// message's acceptance, or the command it refused.
    Mail { code: u16 },
    /// No answer: connect error, reset, timeout.
    NoAnswer,
    /// Never sent, and never will be as things stand (a blocked address, a
    /// URL that does not parse): given up at once.
    Refused,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Try again after this long.
    Retry(Duration),
    /// No more attempts, and why.
    GiveUp(String),
}

/// The wait before retry number `retry` (1 for the first), with `jitter`
/// in [0, 1) choosing where in the upper half of the window it falls.
pub fn backoff(policy: &RetryPolicy, retry: u32, jitter: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(31);
    let window = policy.base.saturating_mul(1u32 << exponent).min(policy.max);
    let half = window / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// What follows attempt number `attempt` (1 for the first) that ended with
/// `answer`, `elapsed` after the delivery was first due.
pub fn decide(policy: &RetryPolicy, attempt: u32, answer: &Answer, elapsed: Duration, jitter: f64) -> Decision {
    let wait = match answer {
        Answer::Status { code, .. } if (200..300).contains(code) => return Decision::Delivered,
        Answer::Status { code: 429, retry_after } => {
            retry_after.map_or_else(|| backoff(policy, attempt, jitter), |asked| asked.min(MAX_RETRY_AFTER))
        }
        Answer::Status { code, .. } if *code == 408 || (500..600).contains(code) => backoff(policy, attempt, jitter),
        Answer::Status { code, .. } => {
            return Decision::GiveUp(format!("HTTP {code} is not retried (only 408, 429 and 5xx are)"));
        }
        Answer::Mail { code } if (200..300).contains(code) => return Decision::Delivered,
        Answer::Mail { code: 535 } => {
            return Decision::GiveUp(
                "the SMTP server refused the login (535): check the channel's username and password".into(),
            );
        }
        Answer::Mail { code } if (400..500).contains(code) => backoff(policy, attempt, jitter),
        Answer::Mail { code } if (500..600).contains(code) => {
            return Decision::GiveUp(format!(
                "SMTP {code} is a permanent refusal (only 4xx replies are retried)"
            ));
        }
        Answer::Mail { code } => {
            return Decision::GiveUp(format!(
                "SMTP {code} does not end an exchange (the server is not speaking SMTP)"
            ));
        }
        Answer::NoAnswer => backoff(policy, attempt, jitter),
        Answer::Refused => return Decision::GiveUp("the request cannot be sent".into()),
    };
    if elapsed.saturating_add(wait) > policy.give_up_after {
        return Decision::GiveUp(format!(
            "still failing after {attempt} attempts, and the next would fall past the give-up time of {}s",
            policy.give_up_after.as_secs()
        ));
    }
    Decision::Retry(wait)
}

/// A `Retry-After` value: seconds, or an HTTP date (the wait until then;
/// zero when it is past). None when it is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        }
    }

    fn status(code: u16) -> Answer {
        Answer::Status {
            code,
            retry_after: None,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_within_the_upper_half() {
        let p = policy();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_secs(1));
        assert!(backoff(&p, 1, 0.999_999) < Duration::from_secs(2));
        assert!(backoff(&p, 1, 0.999_999) > Duration::from_millis(1999));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_secs(6));
        assert_eq!(backoff(&p, 5, 0.0), Duration::from_secs(16));
        // 2 s × 2^5 = 64 s is over the 60 s cap.
        assert_eq!(backoff(&p, 6, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(&p, 1000, 1.0), Duration::from_secs(60));
        assert_eq!(backoff(&p, 0, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn success_is_delivered() {
        for code in [200, 201, 202, 204, 299] {
            assert_eq!(
                decide(&policy(), 1, &status(code), Duration::ZERO, 0.0),
                Decision::Delivered
            );
        }
    }

    #[test]
    fn server_errors_timeouts_and_no_answer_are_retried() {
        for answer in [
            status(500),
            status(502),
            status(503),
            status(599),
            status(408),
            Answer::NoAnswer,
        ] {
            assert_eq!(
                decide(&policy(), 2, &answer, Duration::from_secs(10), 0.0),
                Decision::Retry(Duration::from_secs(2)),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn other_client_errors_and_redirects_are_not_retried() {
        for code in [400, 401, 403, 404, 410, 422, 301, 302, 100] {
            assert!(matches!(
                decide(&policy(), 1, &status(code), Duration::ZERO, 0.0),
                Decision::GiveUp(reason) if reason.contains(&code.to_string())
            ));
        }
        assert!(matches!(
            decide(&policy(), 1, &Answer::Refused, Duration::ZERO, 0.0),
            Decision::GiveUp(_)
        ));
    }

    #[test]
    fn too_many_requests_waits_what_it_asks() {
        let asked = |seconds| Answer::Status {
            code: 429,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(
            decide(&policy(), 1, &asked(30), Duration::ZERO, 0.0),
            Decision::Retry(Duration::from_secs(30))
        );
        // Shorter than the backoff: the far end knows best, it is waited.
        assert_eq!(
            decide(&policy(), 4, &asked(1), Duration::ZERO, 0.0),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&policy(), 1, &asked(86_400), Duration::ZERO, 0.0),
            Decision::Retry(MAX_RETRY_AFTER)
        );
        assert_eq!(
            decide(&policy(), 1, &status(429), Duration::ZERO, 0.0),
            Decision::Retry(Duration::from_secs(1))
        );
    }

    #[test]
    fn smtp_replies_decide_by_their_class() {
        let mail = |code| Answer::Mail { code };
        for code in [250, 251] {
            assert_eq!(
                decide(&policy(), 1, &mail(code), Duration::ZERO, 0.0),
                Decision::Delivered
            );
        }
        // Transient: greylisting, a full mailbox, a server going down.
        for code in [421, 450, 451, 452, 454] {
            assert_eq!(
                decide(&policy(), 2, &mail(code), Duration::from_secs(10), 0.0),
                Decision::Retry(Duration::from_secs(2)),
                "{code}"
            );
        }
        // Permanent: unknown recipient, refused sender, login required.
        for code in [550, 551, 553, 554, 530] {
            assert!(matches!(
                decide(&policy(), 1, &mail(code), Duration::ZERO, 0.0),
                Decision::GiveUp(reason) if reason.contains(&format!("SMTP {code}")) && reason.contains("permanent")
            ));
        }
        assert!(matches!(
            decide(&policy(), 1, &mail(535), Duration::ZERO, 0.0),
            Decision::GiveUp(reason) if reason.contains("refused the login") && reason.contains("password")
        ));
        assert!(matches!(
            decide(&policy(), 1, &mail(354), Duration::ZERO, 0.0),
            Decision::GiveUp(reason) if reason.contains("354")
        ));
        // A transient reply still gives up past the deadline.
        assert!(matches!(
            decide(&policy(), 3, &mail(451), Duration::from_secs(3597), 0.0),
            Decision::GiveUp(reason) if reason.contains("3 attempts")
        ));
    }

    #[test]
    fn gives_up_when_the_next_attempt_falls_past_the_deadline() {
        let p = policy();
        assert_eq!(
            decide(&p, 3, &status(500), Duration::from_secs(3596), 0.0),
            Decision::Retry(Duration::from_secs(4))
        );
        assert!(matches!(
            decide(&p, 3, &status(500), Duration::from_secs(3597), 0.0),
            Decision::GiveUp(reason) if reason.contains("3 attempts")
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
