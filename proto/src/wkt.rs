//! `google.protobuf.Timestamp` with the canonical proto3 JSON form.
//!
//! pbjson-types prints timestamps with a `+00:00` offset; the proto3 JSON
//! mapping (and grpcurl) use `Z` with 0, 3, 6 or 9 fractional digits. This
//! type is wire-compatible with the well-known type and replaces it in the
//! generated code, so REST and gRPC clients see the same text.

use chrono::{DateTime, SecondsFormat, Utc};

/// A point in time, UTC (wire-compatible with `google.protobuf.Timestamp`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Non-negative fractions of a second at nanosecond resolution.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl ::prost::Name for Timestamp {
    const NAME: &'static str = "Timestamp";
    const PACKAGE: &'static str = "google.protobuf";
}

impl Timestamp {
    /// The time `ms` milliseconds after the Unix epoch: the worker's
    /// schedule clock counts in milliseconds.
    pub fn from_unix_millis(ms: u64) -> Timestamp {
        Timestamp {
            // At most u64::MAX / 1000, which fits i64.
            seconds: (ms / 1000) as i64,
            nanos: ((ms % 1000) * 1_000_000) as i32,
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Timestamp {
            seconds: at.timestamp(),
            nanos: at.timestamp_subsec_nanos() as i32,
        }
    }
}

impl TryFrom<Timestamp> for DateTime<Utc> {
    type Error = &'static str;

    fn try_from(value: Timestamp) -> Result<Self, Self::Error> {
        let nanos = u32::try_from(value.nanos).map_err(|_| "negative nanos")?;
        DateTime::from_timestamp(value.seconds, nanos).ok_or("timestamp out of range")
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at: DateTime<Utc> = (*self).try_into().map_err(serde::ser::Error::custom)?;
        let digits = if self.nanos == 0 {
            SecondsFormat::Secs
        } else if self.nanos % 1_000_000 == 0 {
            SecondsFormat::Millis
        } else if self.nanos % 1_000 == 0 {
            SecondsFormat::Micros
        } else {
            SecondsFormat::Nanos
        };
        serializer.serialize_str(&at.to_rfc3339_opts(digits, true))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let at = DateTime::parse_from_rfc3339(&text)
            .map_err(|err| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp: {err}")))?;
        Ok(at.with_timezone(&Utc).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_round_trips() {
        for (ts, text) in [
            (Timestamp { seconds: 0, nanos: 0 }, "\"1970-01-01T00:00:00Z\""),
            (
                Timestamp {
                    seconds: 1,
                    nanos: 500_000_000,
                },
                "\"1970-01-01T00:00:01.500Z\"",
            ),
            (
                Timestamp {
                    seconds: 1,
                    nanos: 1_000,
                },
                "\"1970-01-01T00:00:01.000001Z\"",
            ),
            (Timestamp { seconds: 1, nanos: 7 }, "\"1970-01-01T00:00:01.000000007Z\""),
        ] {
            assert_eq!(serde_json::to_string(&ts).unwrap(), text);
            assert_eq!(serde_json::from_str::<Timestamp>(text).unwrap(), ts);
        }
        let offset: Timestamp = serde_json::from_str("\"1970-01-01T01:00:00+01:00\"").unwrap();
        assert_eq!(offset, Timestamp { seconds: 0, nanos: 0 });
        assert!(
            serde_json::from_str::<Timestamp>("\"yesterday\"")
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
        assert!(serde_json::to_string(&Timestamp { seconds: 0, nanos: -1 }).is_err());
    }

    #[test]
    fn unix_milliseconds_become_seconds_and_nanos() {
        assert_eq!(Timestamp::from_unix_millis(0), Timestamp { seconds: 0, nanos: 0 });
        assert_eq!(
            Timestamp::from_unix_millis(1_764_237_600_123),
            Timestamp {
                seconds: 1_764_237_600,
                nanos: 123_000_000
            }
        );
        let latest = Timestamp::from_unix_millis(u64::MAX);
        assert_eq!((latest.seconds, latest.nanos), ((u64::MAX / 1000) as i64, 615_000_000));
        assert!(latest.seconds > 0, "no wrap into the past");
    }
}
