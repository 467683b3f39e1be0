//! Decoding a results-topic message into a `CheckResult`, and [`Poison`],
//! why one is refused. Every consumer of the topic reads the same layout
//! and refuses the same messages (to its dead-letter topic), so the rules
//! live here once.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use monitor_proto::{SCHEMA_VERSION, v1::CheckResult};
use prost::Message as _;
use uuid::Uuid;

/// Why a message is refused (dead-lettered).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Poison {
    #[error("undecodable value: {0}")]
    Undecodable(String),
    #[error("unknown schema version {0} (this aggregator reads {SCHEMA_VERSION})")]
    UnknownSchema(u32),
    #[error("job id {0:?} is not a UUID")]
    BadJobId(String),
    #[error("missing start time")]
    MissingStartTime,
    #[error("start time {0} is more than the allowed skew in the future")]
    FutureStartTime(String),
}

/// Decodes and checks one message value.
pub fn decode(payload: Option<&[u8]>, max_future_skew: Duration) -> Result<(Uuid, DateTime<Utc>, CheckResult), Poison> {
    let payload = payload.ok_or_else(|| Poison::Undecodable("no value".into()))?;
    let result = CheckResult::decode(payload).map_err(|err| Poison::Undecodable(err.to_string()))?;
    if result.schema_version != SCHEMA_VERSION {
        return Err(Poison::UnknownSchema(result.schema_version));
    }
    let job_id = Uuid::parse_str(&result.job_id).map_err(|_| Poison::BadJobId(result.job_id.clone()))?;
    let start = result.start_time.as_ref().ok_or(Poison::MissingStartTime)?;
    let start = Utc
        .timestamp_opt(start.seconds, start.nanos.max(0) as u32)
        .single()
        .ok_or_else(|| Poison::FutureStartTime(format!("{}s", start.seconds)))?;
    if start > Utc::now() + chrono::Duration::from_std(max_future_skew).unwrap_or(chrono::Duration::hours(1)) {
        return Err(Poison::FutureStartTime(start.to_rfc3339()));
    }
    Ok((job_id, start, result))
}

#[cfg(test)]
pub(crate) mod tests {
    use monitor_proto::v1::{CheckOutcome, HttpResult, check_result::Detail};

    use super::*;

    /// An HTTP check result (also the aggregator's unit tests' input).
    pub(crate) fn result(
        job: Uuid,
        location: &str,
        outcome: CheckOutcome,
        ms: i32,
        status: u32,
        start: DateTime<Utc>,
    ) -> CheckResult {
        CheckResult {
            schema_version: SCHEMA_VERSION,
            job_id: job.to_string(),
            location: location.into(),
            start_time: Some(start.into()),
            duration: Some(monitor_proto::duration::from_millis(ms.into())),
            outcome: outcome as i32,
            detail: Some(Detail::Http(HttpResult {
                status_code: status,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn poison_is_recognised() {
        let skew = Duration::from_secs(3600);
        let job = Uuid::now_v7();
        let now = Utc::now();
        let good = result(job, "", CheckOutcome::Ok, 5, 200, now).encode_to_vec();
        assert!(decode(Some(&good), skew).is_ok());
        assert!(matches!(
            decode(Some(b"\xff\xff\xff"), skew),
            Err(Poison::Undecodable(_))
        ));
        assert!(matches!(decode(None, skew), Err(Poison::Undecodable(_))));
        let mut v2 = result(job, "", CheckOutcome::Ok, 5, 200, now);
        v2.schema_version = 2;
        assert_eq!(decode(Some(&v2.encode_to_vec()), skew), Err(Poison::UnknownSchema(2)));
        let mut bad_id = result(job, "", CheckOutcome::Ok, 5, 200, now);
        bad_id.job_id = "x".into();
        assert!(matches!(
            decode(Some(&bad_id.encode_to_vec()), skew),
            Err(Poison::BadJobId(_))
        ));
        let future = result(job, "", CheckOutcome::Ok, 5, 200, now + chrono::Duration::days(2));
        assert!(matches!(
            decode(Some(&future.encode_to_vec()), skew),
            Err(Poison::FutureStartTime(_))
        ));
        let mut no_start = result(job, "", CheckOutcome::Ok, 5, 200, now);
        no_start.start_time = None;
        assert_eq!(
            decode(Some(&no_start.encode_to_vec()), skew),
            Err(Poison::MissingStartTime)
        );
    }
}
