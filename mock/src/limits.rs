//! The bounds every input is checked against, in one place, so a start-up
//! flag and a query parameter reject the same value with the same words.
//!
//! Parsers here return [`InvalidValue`], which says what is wrong with a
//! value but not where it came from: the caller adds the flag or parameter
//! name (clap does it for flags, [`crate::error::RequestError`] for requests).

use std::fmt;
use std::num::IntErrorKind;
use std::str::FromStr;

use http::StatusCode;

use crate::draw::SplitMix64;

/// Longest delay a request may ask for: five minutes is past any sane
/// monitor timeout, and a cap keeps a typo from parking a task for days.
pub const MAX_DELAY_MS: u64 = 300_000;

/// Largest body the mock generates or accepts (16 MiB), so one request
/// cannot make it allocate without bound.
pub const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Most hops `/redirect/{n}` will chain; clients give up far earlier.
pub const MAX_REDIRECT_HOPS: u64 = 100;

/// What is wrong with one value, named by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("'{0}' is not a whole number")]
    NotANumber(String),
    #[error("'{0}' is negative; only 0 and above are allowed")]
    Negative(String),
    #[error("{value} is above the cap of {cap}")]
    AboveCap { value: String, cap: u64 },
    #[error("{value} is below the minimum of {min}")]
    BelowMinimum { value: u64, min: u64 },
    #[error("status {0} is outside 100..=599")]
    StatusOutOfRange(String),
    #[error("status {0} is informational (1xx), which HTTP cannot send as a final response; use 200..=599")]
    InformationalStatus(u16),
    #[error("'{0}' is not a range; write N, MIN..=MAX or MIN..MAX")]
    MalformedRange(String),
    #[error("range '{0}' is empty")]
    EmptyRange(String),
    #[error("'{0}' is not a distribution; write CODE:WEIGHT[,CODE:WEIGHT...], e.g. 200:70,404:20,500:10")]
    MalformedDistribution(String),
    #[error("status {0} appears more than once in the distribution")]
    RepeatedStatus(u16),
    #[error("the weights of distribution '{0}' sum to zero; at least one must be positive")]
    ZeroTotalWeight(String),
    #[error("the weights of distribution '{0}' overflow a 64-bit sum")]
    WeightOverflow(String),
}

/// Parses a non-negative whole number, telling "negative" and "too big"
/// apart from "not a number" so the message says what to fix.
pub fn whole_number(text: &str) -> Result<u64, InvalidValue> {
    let text = text.trim();
    text.parse::<u64>().map_err(|error| match error.kind() {
        IntErrorKind::PosOverflow => InvalidValue::AboveCap {
            value: text.to_owned(),
            cap: u64::MAX,
        },
        _ if text.starts_with('-') && text[1..].parse::<u64>().is_ok() => InvalidValue::Negative(text.to_owned()),
        _ => InvalidValue::NotANumber(text.to_owned()),
    })
}

/// Parses a whole number no larger than `cap`.
pub fn capped(text: &str, cap: u64) -> Result<u64, InvalidValue> {
    let value = whole_number(text)?;
    if value > cap {
        return Err(InvalidValue::AboveCap {
            value: value.to_string(),
            cap,
        });
    }
    Ok(value)
}

/// Parses a status code a server can actually send as a final response.
///
/// 1xx codes are rejected even though they lie inside 100..=599: hyper
/// (and HTTP itself) cannot end an exchange with one, so accepting them
/// would mean silently answering something else.
pub fn final_status(text: &str) -> Result<StatusCode, InvalidValue> {
    let code = match whole_number(text) {
        Ok(code) => code,
        Err(InvalidValue::Negative(text) | InvalidValue::AboveCap { value: text, .. }) => {
            return Err(InvalidValue::StatusOutOfRange(text));
        }
        Err(other) => return Err(other),
    };
    let code = u16::try_from(code)
        .ok()
        .filter(|code| (100..=599).contains(code))
        .ok_or_else(|| InvalidValue::StatusOutOfRange(code.to_string()))?;
    if code < 200 {
        return Err(InvalidValue::InformationalStatus(code));
    }
    StatusCode::from_u16(code).map_err(|_| InvalidValue::StatusOutOfRange(code.to_string()))
}

/// An inclusive range of whole numbers whose upper end is at most `CAP`.
///
/// Written `N`, `MIN..=MAX` or `MIN..MAX` (Rust's meaning: the last one
/// excludes MAX). Displayed as `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedRange<const CAP: u64> {
    /// Smallest value a draw can return.
    min: u64,
    /// Largest value a draw can return.
    max: u64,
}

/// Latency of `/website_mock` in milliseconds.
pub type LatencyRange = BoundedRange<MAX_DELAY_MS>;

/// Body size of `/website_mock` in bytes.
pub type BodySizeRange = BoundedRange<MAX_BODY_BYTES>;

impl<const CAP: u64> BoundedRange<CAP> {
    /// A range holding exactly `min..=max`, checked against `CAP`.
    pub fn new(min: u64, max: u64) -> Result<Self, InvalidValue> {
        if min > max {
            return Err(InvalidValue::EmptyRange(format!("{min}..={max}")));
        }
        if max > CAP {
            return Err(InvalidValue::AboveCap {
                value: max.to_string(),
                cap: CAP,
            });
        }
        Ok(Self { min, max })
    }

    /// A range of one value.
    pub fn fixed(value: u64) -> Result<Self, InvalidValue> {
        Self::new(value, value)
    }

    pub fn min(&self) -> u64 {
        self.min
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// A uniform draw from the range.
    pub(crate) fn pick(&self, rng: &mut SplitMix64) -> u64 {
        // max <= CAP < u64::MAX, so the width cannot overflow.
        self.min + rng.below(self.max - self.min + 1)
    }
}

impl<const CAP: u64> FromStr for BoundedRange<CAP> {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bound = |part: &str| match whole_number(part) {
            Err(InvalidValue::NotANumber(_)) => Err(InvalidValue::MalformedRange(text.to_owned())),
            other => other,
        };
        if let Some((min, max)) = text.split_once("..=") {
            Self::new(bound(min)?, bound(max)?)
        } else if let Some((min, max)) = text.split_once("..") {
            let (min, end) = (bound(min)?, bound(max)?);
            if end <= min {
                return Err(InvalidValue::EmptyRange(text.to_owned()));
            }
            Self::new(min, end - 1)
        } else {
            Self::fixed(bound(text)?)
        }
    }
}

impl<const CAP: u64> fmt::Display for BoundedRange<CAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..={}", self.min, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_number_names_the_problem() {
        assert_eq!(whole_number(" 42 "), Ok(42));
        assert_eq!(whole_number("-5"), Err(InvalidValue::Negative("-5".into())));
        assert_eq!(whole_number("abc"), Err(InvalidValue::NotANumber("abc".into())));
        assert_eq!(whole_number(""), Err(InvalidValue::NotANumber("".into())));
        assert!(matches!(
            whole_number("99999999999999999999999"),
            Err(InvalidValue::AboveCap { .. })
        ));
    }

    #[test]
    fn capped_rejects_values_over_the_cap() {
        assert_eq!(capped("300000", MAX_DELAY_MS), Ok(300_000));
        assert_eq!(
            capped("300001", MAX_DELAY_MS),
            Err(InvalidValue::AboveCap {
                value: "300001".into(),
                cap: MAX_DELAY_MS
            })
        );
    }

    #[test]
    fn final_status_accepts_200_to_599_only() {
        assert_eq!(final_status("200"), Ok(StatusCode::OK));
        assert_eq!(final_status("599").map(|s| s.as_u16()), Ok(599));
        for bad in ["99", "600", "0", "-1", "70000", "99999999999999999999999"] {
            assert!(
                matches!(final_status(bad), Err(InvalidValue::StatusOutOfRange(_))),
                "{bad} accepted"
            );
        }
        assert_eq!(final_status("101"), Err(InvalidValue::InformationalStatus(101)));
        assert_eq!(final_status("ok"), Err(InvalidValue::NotANumber("ok".into())));
    }

    #[test]
    fn ranges_parse_in_all_three_forms() {
        let range: LatencyRange = "0..=50".parse().unwrap();
        assert_eq!((range.min(), range.max()), (0, 50));
        let range: LatencyRange = "10..20".parse().unwrap();
        assert_eq!((range.min(), range.max()), (10, 19));
        let range: LatencyRange = "7".parse().unwrap();
        assert_eq!((range.min(), range.max()), (7, 7));
        assert_eq!(range.to_string(), "7..=7");
    }

    #[test]
    fn bad_ranges_are_rejected() {
        assert_eq!(
            "5..5".parse::<LatencyRange>(),
            Err(InvalidValue::EmptyRange("5..5".into()))
        );
        assert!(matches!(
            "9..=3".parse::<LatencyRange>(),
            Err(InvalidValue::EmptyRange(_))
        ));
        assert!(matches!(
            "0..=300001".parse::<LatencyRange>(),
            Err(InvalidValue::AboveCap { cap: MAX_DELAY_MS, .. })
        ));
        assert!(matches!(
            "-5..10".parse::<LatencyRange>(),
            Err(InvalidValue::Negative(_))
        ));
        assert!(matches!(
            "a..b".parse::<BodySizeRange>(),
            Err(InvalidValue::MalformedRange(_))
        ));
        assert!(matches!(
            "0..=16777217".parse::<BodySizeRange>(),
            Err(InvalidValue::AboveCap { .. })
        ));
    }
}
