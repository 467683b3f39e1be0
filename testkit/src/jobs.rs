//! Valid jobs, as the API takes them: one a test edits for the API's rules,
//! one running often enough for a worker test to see its checks.

use monitor_proto::v1::{HttpCheck, Job, JobState, job::Check};

/// `seconds` as a proto duration.
pub fn secs(seconds: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds, nanos: 0 })
}

/// `ms` milliseconds as a proto duration.
pub fn millis(ms: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// A valid, stopped HTTP job checking `url` every 30 s (timeout 5 s).
pub fn http_job(name: &str, url: &str) -> Job {
    Job {
        name: name.to_owned(),
        interval: secs(30),
        timeout: secs(5),
        check: Some(Check::Http(HttpCheck {
            url: url.to_owned(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A running HTTP job checking `url` every `interval_secs` (timeout 1 s),
/// as worker tests run them.
pub fn running_http_job(name: &str, url: &str, interval_secs: i64) -> Job {
    Job {
        interval: secs(interval_secs),
        timeout: secs(1),
        desired_state: JobState::Running as i32,
        ..http_job(name, url)
    }
}
