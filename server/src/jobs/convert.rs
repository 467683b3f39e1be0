//! Stored rows back into API messages.

use monitor_proto::{
    duration,
    v1::{Job, JobState, job::Check},
};
use monitor_store::models::job::{JobRow, STATE_RUNNING};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The `check_kind` column's value for a check: the oneof field's proto
/// name, which [`job_from_row`] reads back.
pub fn check_kind(check: &Check) -> &'static str {
    match check {
        Check::Http(_) => "http",
        Check::Tcp(_) => "tcp",
        Check::Dns(_) => "dns",
        Check::Icmp(_) => "icmp",
        Check::Tls(_) => "tls",
        Check::GrpcHealth(_) => "grpc_health",
        Check::Websocket(_) => "websocket",
        Check::Ssh(_) => "ssh",
        Check::Socks5(_) => "socks5",
    }
}

/// The API state for a stored desired state.
pub fn job_state(stored: &str) -> JobState {
    if stored == STATE_RUNNING {
        JobState::Running
    } else {
        JobState::Stopped
    }
}

/// Turns a stored row into the API's `Job`. Fails only if the row was
/// written by something other than this server and cannot be read back.
pub fn job_from_row(row: JobRow) -> Result<Job, ApiError> {
    let unreadable = |what: &str, err: serde_json::Error| {
        tracing::error!(job_id = %row.id, %what, error = %err, "stored job is unreadable");
        ApiError::Internal(format!("stored job {} has an unreadable {what}", row.id))
    };
    let labels = serde_json::from_value(row.labels.clone()).map_err(|err| unreadable("labels", err))?;
    fn spec<T: DeserializeOwned>(row: &JobRow) -> Result<T, serde_json::Error> {
        serde_json::from_value(row.check_spec.clone())
    }
    let check = match row.check_kind.as_str() {
        "http" => spec(&row).map(Check::Http),
        "tcp" => spec(&row).map(Check::Tcp),
        "dns" => spec(&row).map(Check::Dns),
        "icmp" => spec(&row).map(Check::Icmp),
        "tls" => spec(&row).map(Check::Tls),
        "grpc_health" => spec(&row).map(Check::GrpcHealth),
        "websocket" => spec(&row).map(Check::Websocket),
        "ssh" => spec(&row).map(Check::Ssh),
        "socks5" => spec(&row).map(Check::Socks5),
        other => {
            return Err(ApiError::Internal(format!(
                "stored job {} has unknown check kind {other:?}",
                row.id
            )));
        }
    }
    .map_err(|err| unreadable("check", err))?;
    let locations = serde_json::from_value(row.locations.clone()).map_err(|err| unreadable("locations", err))?;
    Ok(Job {
        id: row.id.to_string(),
        name: row.name,
        labels,
        interval: Some(duration::from_millis(row.interval_ms)),
        timeout: Some(duration::from_millis(row.timeout_ms)),
        desired_state: job_state(&row.desired_state) as i32,
        version: row.version,
        create_time: Some(row.created_at.into()),
        update_time: Some(row.updated_at.into()),
        state_change_time: Some(row.state_changed_at.into()),
        locations,
        check: Some(check),
    })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    #[test]
    fn rows_keep_their_milliseconds_and_times() {
        let at = chrono::DateTime::from_timestamp(1_764_237_600, 123_000_000).unwrap();
        let row = JobRow {
            id: uuid::Uuid::now_v7(),
            name: "x".into(),
            labels: serde_json::json!({"team": "web"}),
            check_kind: "tcp".into(),
            check_spec: serde_json::json!({"host": "example.com", "port": 443}),
            interval_ms: 1_500,
            timeout_ms: 60_000,
            desired_state: "running".into(),
            version: 3,
            created_at: at,
            updated_at: at,
            state_changed_at: at,
            locations: serde_json::json!(["eu"]),
        };
        let job = job_from_row(row).unwrap();
        assert_eq!(
            (job.interval, job.timeout),
            (Some(duration::from_millis(1_500)), Some(duration::from_millis(60_000)))
        );
        assert_eq!(job.create_time, Some(at.into()));
        assert_eq!(job.desired_state, JobState::Running as i32);
        assert_eq!(
            (job.labels["team"].as_str(), job.locations),
            ("web", vec!["eu".to_owned()])
        );
    }

    #[test]
    fn unreadable_rows_are_internal_errors_not_panics() {
        let now = Utc::now();
        let row = JobRow {
            id: uuid::Uuid::now_v7(),
            name: "x".into(),
            labels: serde_json::json!({}),
            check_kind: "smtp".into(),
            check_spec: serde_json::json!({}),
            interval_ms: 1000,
            timeout_ms: 1000,
            desired_state: "stopped".into(),
            version: 1,
            created_at: now,
            updated_at: now,
            state_changed_at: now,
            locations: serde_json::json!([]),
        };
        assert!(matches!(job_from_row(row.clone()), Err(ApiError::Internal(m)) if m.contains("unknown check kind")));
        let bad_spec = JobRow {
            check_kind: "http".into(),
            check_spec: serde_json::json!({"url": 5}),
            ..row.clone()
        };
        assert!(matches!(job_from_row(bad_spec), Err(ApiError::Internal(m)) if m.contains("unreadable check")));
        let bad_labels = JobRow {
            labels: serde_json::json!([1]),
            check_kind: "http".into(),
            ..row
        };
        assert!(matches!(job_from_row(bad_labels), Err(ApiError::Internal(m)) if m.contains("unreadable labels")));
    }
}
