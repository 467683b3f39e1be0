//! Stored rows back into API messages: rules, silences (whether active
//! now) and incidents (their state, downtime and first failure).

use chrono::{DateTime, Utc};
use monitor_proto::{
    duration,
    v1::{
        AlertRule, CheckOutcome, FailedCheck, Incident, IncidentCause, IncidentEvent, IncidentState, Severity, Silence,
        WeeklyRecurrence,
    },
};
use monitor_store::models::{
    alert_rule::{AlertRuleRow, SEVERITY_INFO, SEVERITY_WARNING},
    incident::{CAUSE_NO_DATA, FirstFailure, IncidentEventRow, IncidentRow},
    silence::{SilenceRow, StoredRecurrence},
};
use uuid::Uuid;

use super::validate::stored_window;
use crate::error::ApiError;

/// The API severity of a stored one.
pub fn severity(stored: &str) -> Severity {
    match stored {
        SEVERITY_WARNING => Severity::Warning,
        SEVERITY_INFO => Severity::Info,
        _ => Severity::Critical,
    }
}

fn ids(ids: &[Option<Uuid>]) -> Vec<String> {
    ids.iter().flatten().map(Uuid::to_string).collect()
}

fn unreadable(what: &str, id: Uuid, err: serde_json::Error) -> ApiError {
    tracing::error!(%id, %what, error = %err, "stored alerting row is unreadable");
    ApiError::Internal(format!("stored {what} of {id} is unreadable"))
}

pub fn rule_from_row(row: AlertRuleRow) -> Result<AlertRule, ApiError> {
    let label_selector =
        serde_json::from_value(row.label_selector.clone()).map_err(|err| unreadable("label selector", row.id, err))?;
    Ok(AlertRule {
        id: row.id.to_string(),
        name: row.name,
        job_ids: ids(&row.job_ids),
        label_selector,
        failure_threshold: row.failure_threshold.unsigned_abs(),
        success_threshold: row.success_threshold.unsigned_abs(),
        min_failing_locations: row.min_failing_locations.unsigned_abs(),
        min_failing_percent: row.min_failing_percent.unsigned_abs(),
        no_data: Some(row.no_data),
        severity: severity(&row.severity) as i32,
        channel_ids: ids(&row.channel_ids),
        repeat_interval: Some(duration::from_millis(row.repeat_interval_ms)),
        notify_on_resolve: Some(row.notify_on_resolve),
        flap_threshold: row.flap_threshold.unsigned_abs(),
        flap_window: Some(duration::from_millis(row.flap_window_ms)),
        enabled: Some(row.enabled),
        version: row.version,
        create_time: Some(row.created_at.into()),
        update_time: Some(row.updated_at.into()),
    })
}

/// A silence as the API shows it, `active` as of `now`.
pub fn silence_from_row(row: SilenceRow, now: DateTime<Utc>) -> Result<Silence, ApiError> {
    let label_selector =
        serde_json::from_value(row.label_selector.clone()).map_err(|err| unreadable("label selector", row.id, err))?;
    let recurrence: Option<StoredRecurrence> = row
        .recurrence
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|err| unreadable("recurrence", row.id, err))?;
    let in_range = row.starts_at <= now && now < row.ends_at;
    let active = in_range
        && match &recurrence {
            None => true,
            Some(stored) => stored_window(stored).is_some_and(|window| window.is_active(now)),
        };
    Ok(Silence {
        id: row.id.to_string(),
        job_ids: ids(&row.job_ids),
        label_selector,
        start_time: Some(row.starts_at.into()),
        end_time: Some(row.ends_at.into()),
        recurrence: recurrence.map(|stored| WeeklyRecurrence {
            days: stored.days,
            start: stored.start,
            duration: Some(duration::from_millis(stored.duration_ms)),
            time_zone: stored.time_zone,
        }),
        comment: row.comment,
        created_by: row.created_by,
        version: row.version,
        create_time: Some(row.created_at.into()),
        update_time: Some(row.updated_at.into()),
        active,
    })
}

/// The state an incident is in, from its marks.
pub fn incident_state(row: &IncidentRow) -> IncidentState {
    if row.resolved_at.is_some() {
        IncidentState::Resolved
    } else if row.acknowledged_at.is_some() {
        IncidentState::Acknowledged
    } else {
        IncidentState::Open
    }
}

/// An incident as the API shows it, with `timeline` (empty in listings).
pub fn incident_from_row(row: IncidentRow, timeline: Vec<IncidentEventRow>) -> Result<Incident, ApiError> {
    let first_failure: Option<FirstFailure> = row
        .first_failure
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|err| unreadable("first failure", row.id, err))?;
    let state = incident_state(&row);
    let downtime = row
        .resolved_at
        .map(|resolved| duration::from_millis((resolved - row.opened_at).num_milliseconds().max(0)));
    let cause = if row.cause == CAUSE_NO_DATA {
        IncidentCause::NoData
    } else {
        IncidentCause::Down
    };
    Ok(Incident {
        id: row.id.to_string(),
        rule_id: row.rule_id.map(|id| id.to_string()).unwrap_or_default(),
        rule_name: row.rule_name,
        job_id: row.job_id.to_string(),
        job_name: row.job_name,
        severity: severity(&row.severity) as i32,
        cause: cause as i32,
        state: state as i32,
        open_time: Some(row.opened_at.into()),
        acknowledge_time: row.acknowledged_at.map(Into::into),
        acknowledged_by: row.acknowledged_by.unwrap_or_default(),
        resolve_time: row.resolved_at.map(Into::into),
        resolved_by: row.resolved_by.unwrap_or_default(),
        failing_locations: row.failing_locations.into_iter().flatten().collect(),
        first_failure: first_failure.map(failed_check),
        downtime,
        silenced: row.silenced,
        flapping: row.flapping,
        timeline: timeline.into_iter().map(event).collect(),
    })
}

fn failed_check(stored: FirstFailure) -> FailedCheck {
    FailedCheck {
        check_id: stored.check_id,
        worker_id: stored.worker_id,
        location: stored.location,
        start_time: Some(stored.start_time.into()),
        outcome: CheckOutcome::from_str_name(&stored.outcome).unwrap_or(CheckOutcome::Unspecified) as i32,
        status_code: stored.status_code,
        error: stored.error,
    }
}

fn event(row: IncidentEventRow) -> IncidentEvent {
    IncidentEvent {
        time: Some(row.at.into()),
        kind: row.kind,
        location: row.location,
        detail: row.detail,
        actor: row.actor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(opened_at: DateTime<Utc>) -> IncidentRow {
        IncidentRow {
            id: Uuid::now_v7(),
            rule_id: None,
            rule_name: "r".into(),
            job_id: Uuid::now_v7(),
            job_name: "j".into(),
            severity: "warning".into(),
            cause: "no_data".into(),
            opened_at,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            failing_locations: vec![Some("eu".into())],
            first_failure: Some(serde_json::json!({
                "check_id": "c1", "worker_id": "w1", "location": "eu",
                "start_time": "2026-12-01T10:00:00Z", "outcome": "CHECK_OUTCOME_TIMEOUT",
                "status_code": 0, "error": "timed out"
            })),
            detected_check_end: None,
            silenced: false,
            flapping: true,
            updated_at: opened_at,
        }
    }

    #[test]
    fn incidents_derive_state_downtime_and_first_failure() {
        let opened = DateTime::from_timestamp(1_764_583_200, 0).unwrap();
        let open = incident_from_row(incident(opened), Vec::new()).unwrap();
        assert_eq!(open.state, IncidentState::Open as i32);
        assert_eq!(open.downtime, None);
        assert_eq!(open.rule_id, "", "the rule was deleted");
        assert_eq!(
            (open.cause, open.severity),
            (IncidentCause::NoData as i32, Severity::Warning as i32)
        );
        let failure = open.first_failure.unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Timeout as i32);
        assert_eq!(failure.worker_id, "w1");

        let acknowledged = IncidentRow {
            acknowledged_at: Some(opened),
            acknowledged_by: Some("alice".into()),
            ..incident(opened)
        };
        let acknowledged = incident_from_row(acknowledged, Vec::new()).unwrap();
        assert_eq!(acknowledged.state, IncidentState::Acknowledged as i32);
        assert_eq!(acknowledged.acknowledged_by, "alice");

        let resolved = IncidentRow {
            acknowledged_at: Some(opened),
            resolved_at: Some(opened + chrono::TimeDelta::milliseconds(90_500)),
            resolved_by: Some("evaluator".into()),
            ..incident(opened)
        };
        let resolved = incident_from_row(resolved, Vec::new()).unwrap();
        assert_eq!(resolved.state, IncidentState::Resolved as i32);
        assert_eq!(resolved.downtime, Some(duration::from_millis(90_500)));

        let unknown_outcome = IncidentRow {
            first_failure: Some(serde_json::json!({
                "check_id": "", "worker_id": "", "location": "", "start_time": "2026-12-01T10:00:00Z",
                "outcome": "CHECK_OUTCOME_FROM_THE_FUTURE", "status_code": 503, "error": ""
            })),
            ..incident(opened)
        };
        let failure = incident_from_row(unknown_outcome, Vec::new())
            .unwrap()
            .first_failure
            .unwrap();
        assert_eq!(
            (failure.outcome, failure.status_code),
            (CheckOutcome::Unspecified as i32, 503)
        );

        let broken = IncidentRow {
            first_failure: Some(serde_json::json!([1])),
            ..incident(opened)
        };
        assert!(matches!(
            incident_from_row(broken, Vec::new()),
            Err(ApiError::Internal(_))
        ));
    }

    #[test]
    fn silences_are_active_within_their_range_and_window() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let row = SilenceRow {
            id: Uuid::now_v7(),
            job_ids: Vec::new(),
            label_selector: serde_json::json!({"team": "web"}),
            starts_at: at("2026-12-01T00:00:00Z"),
            ends_at: at("2026-12-31T00:00:00Z"),
            recurrence: None,
            comment: String::new(),
            created_by: "alice".into(),
            version: 1,
            created_at: at("2026-11-30T00:00:00Z"),
            updated_at: at("2026-11-30T00:00:00Z"),
        };
        assert!(
            silence_from_row(row.clone(), at("2026-12-01T00:00:00Z"))
                .unwrap()
                .active
        );
        assert!(
            !silence_from_row(row.clone(), at("2026-12-31T00:00:00Z"))
                .unwrap()
                .active
        );
        assert!(
            !silence_from_row(row.clone(), at("2026-11-30T23:59:59Z"))
                .unwrap()
                .active
        );
        // Sundays 02:00 to 04:00 UTC; 2026-12-06 is a Sunday.
        let weekly = SilenceRow {
            recurrence: Some(
                serde_json::json!({"days": ["sun"], "start": "02:00", "duration_ms": 7_200_000, "time_zone": "UTC"}),
            ),
            ..row
        };
        assert!(
            silence_from_row(weekly.clone(), at("2026-12-06T03:00:00Z"))
                .unwrap()
                .active
        );
        assert!(
            !silence_from_row(weekly.clone(), at("2026-12-06T04:00:00Z"))
                .unwrap()
                .active
        );
        let shown = silence_from_row(weekly, at("2026-12-07T03:00:00Z")).unwrap();
        assert!(!shown.active);
        assert_eq!(
            shown.recurrence.unwrap().duration,
            Some(duration::from_millis(7_200_000))
        );
        assert_eq!(shown.label_selector["team"], "web");
    }
}
