//! Every rule an alert rule or a silence must satisfy, checked before
//! anything is written, with the proto's defaults resolved into the row.
//! Violations are collected, each naming its field relative to the message
//! (`failure_threshold`, `recurrence.days`); callers prefix `rule.` or
//! `silence.`.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use monitor_core::recurrence::WeeklyWindow;
use monitor_proto::{
    v1::{AlertRule, Severity, Silence, WeeklyRecurrence},
    wkt::Timestamp,
};
use monitor_store::models::{
    alert_rule::{AlertRuleFields, SEVERITY_CRITICAL, SEVERITY_INFO, SEVERITY_WARNING},
    silence::{SilenceFields, StoredRecurrence},
};
use uuid::Uuid;

use crate::{
    error::{ApiError, FieldViolation},
    jobs::validate::{to_std_duration, validate_label_map, validate_name},
};

/// Most jobs a rule or silence names by id.
pub const MAX_JOB_IDS: usize = 1000;
/// Most notification channels of a rule.
pub const MAX_CHANNEL_IDS: usize = 20;

/// Defaults of unset (zero) rule fields, as the proto states them.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
pub const DEFAULT_SUCCESS_THRESHOLD: u32 = 2;
pub const DEFAULT_MIN_FAILING_LOCATIONS: u32 = 1;
pub const DEFAULT_FLAP_WINDOW: Duration = Duration::from_secs(10 * 60);

pub const MAX_THRESHOLD: u32 = 100;
pub const MAX_MIN_FAILING_LOCATIONS: u32 = 64;
pub const MIN_REPEAT_INTERVAL: Duration = Duration::from_secs(60);
pub const MAX_REPEAT_INTERVAL: Duration = Duration::from_secs(7 * 86_400);
pub const MIN_FLAP_WINDOW: Duration = Duration::from_secs(60);
pub const MAX_FLAP_WINDOW: Duration = Duration::from_secs(86_400);

/// Longest silence, from start to end.
pub const MAX_SILENCE_SPAN: chrono::TimeDelta = chrono::TimeDelta::days(400);
/// Longest comment on a silence, an acknowledgement or a resolve.
pub const MAX_COMMENT_CHARS: usize = 1024;

/// The stored severity of an API one (unspecified: critical).
pub fn severity_name(severity: i32) -> Option<&'static str> {
    match Severity::try_from(severity).ok()? {
        Severity::Unspecified | Severity::Critical => Some(SEVERITY_CRITICAL),
        Severity::Warning => Some(SEVERITY_WARNING),
        Severity::Info => Some(SEVERITY_INFO),
    }
}

/// Checks a rule and turns it into the columns to store, defaults
/// resolved. Output-only fields (id, version, times) are ignored.
pub fn validate_rule(rule: &AlertRule) -> Result<AlertRuleFields, ApiError> {
    let mut v = Vec::new();
    validate_name(&rule.name, &mut v);
    let job_ids = ids("job_ids", &rule.job_ids, MAX_JOB_IDS, &mut v);
    validate_label_map("label_selector", &rule.label_selector, &mut v);
    let channel_ids = ids("channel_ids", &rule.channel_ids, MAX_CHANNEL_IDS, &mut v);
    let failure_threshold = count(
        "failure_threshold",
        rule.failure_threshold,
        DEFAULT_FAILURE_THRESHOLD,
        MAX_THRESHOLD,
        &mut v,
    );
    let success_threshold = count(
        "success_threshold",
        rule.success_threshold,
        DEFAULT_SUCCESS_THRESHOLD,
        MAX_THRESHOLD,
        &mut v,
    );
    let min_failing_locations = count(
        "min_failing_locations",
        rule.min_failing_locations,
        DEFAULT_MIN_FAILING_LOCATIONS,
        MAX_MIN_FAILING_LOCATIONS,
        &mut v,
    );
    if rule.min_failing_percent > 100 {
        v.push(FieldViolation::new(
            "min_failing_percent",
            format!("must be 0 to 100 (got {})", rule.min_failing_percent),
        ));
    } else if rule.min_failing_percent > 0 && rule.min_failing_locations > 1 {
        v.push(FieldViolation::new(
            "min_failing_percent",
            "cannot be set together with min_failing_locations above 1; choose a count or a percentage",
        ));
    }
    let severity = severity_name(rule.severity).unwrap_or_else(|| {
        v.push(FieldViolation::new(
            "severity",
            format!("{} is not a severity; use CRITICAL, WARNING or INFO", rule.severity),
        ));
        SEVERITY_CRITICAL
    });
    let repeat_interval = optional_duration("repeat_interval", rule.repeat_interval.as_ref(), &mut v);
    if let Some(interval) = repeat_interval
        && !interval.is_zero()
        && !(MIN_REPEAT_INTERVAL..=MAX_REPEAT_INTERVAL).contains(&interval)
    {
        v.push(FieldViolation::new(
            "repeat_interval",
            "must be 0 (no reminders) or between 1 min (60s) and 7 days (604800s)",
        ));
    }
    if rule.flap_threshold == 1 || rule.flap_threshold > MAX_THRESHOLD {
        v.push(FieldViolation::new(
            "flap_threshold",
            format!("must be 0 (off) or 2 to 100 (got {})", rule.flap_threshold),
        ));
    }
    let flap_window = optional_duration("flap_window", rule.flap_window.as_ref(), &mut v)
        .filter(|window| !window.is_zero())
        .unwrap_or(DEFAULT_FLAP_WINDOW);
    if !(MIN_FLAP_WINDOW..=MAX_FLAP_WINDOW).contains(&flap_window) {
        v.push(FieldViolation::new(
            "flap_window",
            "must be between 1 min (60s) and 24 h (86400s); unset: 10 min",
        ));
    }
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    Ok(AlertRuleFields {
        name: rule.name.clone(),
        job_ids,
        label_selector: selector_json(&rule.label_selector),
        failure_threshold,
        success_threshold,
        min_failing_locations,
        min_failing_percent: rule.min_failing_percent as i32,
        no_data: rule.no_data.unwrap_or(true),
        severity: severity.to_owned(),
        channel_ids,
        repeat_interval_ms: millis(repeat_interval.unwrap_or_default()),
        notify_on_resolve: rule.notify_on_resolve.unwrap_or(true),
        flap_threshold: rule.flap_threshold as i32,
        flap_window_ms: millis(flap_window),
        enabled: rule.enabled.unwrap_or(true),
    })
}

/// Whether a silence is being created (its end may not be past) or
/// changed (ending one early, at once, is how it is expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceWrite {
    Create,
    Update,
}

/// Checks a silence and turns it into the columns to store. An unset start
/// is `now`.
pub fn validate_silence(silence: &Silence, now: DateTime<Utc>, write: SilenceWrite) -> Result<SilenceFields, ApiError> {
    let mut v = Vec::new();
    let job_ids = ids("job_ids", &silence.job_ids, MAX_JOB_IDS, &mut v);
    validate_label_map("label_selector", &silence.label_selector, &mut v);
    let starts_at = match &silence.start_time {
        None => Some(now),
        Some(at) => timestamp("start_time", at, &mut v),
    };
    let ends_at = match &silence.end_time {
        None => {
            v.push(FieldViolation::new("end_time", "is required"));
            None
        }
        Some(at) => timestamp("end_time", at, &mut v),
    };
    if let (Some(start), Some(end)) = (starts_at, ends_at) {
        if end <= start {
            v.push(FieldViolation::new("end_time", "must be after start_time"));
        } else if end - start > MAX_SILENCE_SPAN {
            v.push(FieldViolation::new(
                "end_time",
                "must be at most 400 days after start_time",
            ));
        } else if write == SilenceWrite::Create && end <= now {
            v.push(FieldViolation::new("end_time", "is in the past"));
        }
    }
    let recurrence = silence.recurrence.as_ref().and_then(|r| recurrence(r, &mut v));
    comment("comment", &silence.comment, &mut v);
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
        unreachable!("a missing time is a violation");
    };
    Ok(SilenceFields {
        job_ids,
        label_selector: selector_json(&silence.label_selector),
        starts_at,
        ends_at,
        recurrence: recurrence.map(|r| serde_json::to_value(r).expect("a recurrence serialises")),
        comment: silence.comment.clone(),
    })
}

/// Checks a weekly recurrence with `monitor_core::recurrence` (the rules
/// the evaluator applies) and returns it as stored.
fn recurrence(recurrence: &WeeklyRecurrence, v: &mut Vec<FieldViolation>) -> Option<StoredRecurrence> {
    let length = match &recurrence.duration {
        None => {
            v.push(FieldViolation::new("recurrence.duration", "is required (e.g. \"2h\")"));
            return None;
        }
        Some(duration) => to_std_duration("recurrence.duration", duration, v)?,
    };
    match WeeklyWindow::parse(&recurrence.days, &recurrence.start, length, &recurrence.time_zone) {
        Ok(window) => Some(StoredRecurrence {
            days: window.day_names(),
            start: window.start(),
            duration_ms: millis(window.length()),
            time_zone: window.time_zone().to_owned(),
        }),
        Err(err) => {
            // Each error begins with the field it is about.
            let text = err.to_string();
            let (field, description) = text.split_once(": ").unwrap_or(("", text.as_str()));
            v.push(FieldViolation::new(format!("recurrence.{field}"), description));
            None
        }
    }
}

/// The weekly window of a stored recurrence (None: always within the
/// silence's range; also None, logged, if the stored JSON is unreadable).
pub fn stored_window(recurrence: &StoredRecurrence) -> Option<WeeklyWindow> {
    let length = Duration::from_millis(u64::try_from(recurrence.duration_ms).unwrap_or(0));
    WeeklyWindow::parse(&recurrence.days, &recurrence.start, length, &recurrence.time_zone).ok()
}

/// A comment under `field`: at most [`MAX_COMMENT_CHARS`] characters.
pub fn comment(field: &str, text: &str, v: &mut Vec<FieldViolation>) {
    let chars = text.chars().count();
    if chars > MAX_COMMENT_CHARS {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_COMMENT_CHARS} characters (got {chars})"),
        ));
    }
}

/// Parses a required id under `field`: INVALID_ARGUMENT when empty or not
/// a UUID (`what` says what kind of id, e.g. "an alert rule id").
pub fn parse_id(field: &str, id: &str, what: &str) -> Result<Uuid, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Uuid::parse_str(id).map_err(|_| ApiError::invalid(field, format!("{id:?} is not {what} (a UUID)")))
}

/// A list of ids under `field`: UUIDs, at most `max`, none twice.
fn ids(field: &str, ids: &[String], max: usize, v: &mut Vec<FieldViolation>) -> Vec<Option<Uuid>> {
    if ids.len() > max {
        v.push(FieldViolation::new(
            field,
            format!("at most {max} ids (got {})", ids.len()),
        ));
        return Vec::new();
    }
    let mut parsed = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        match Uuid::parse_str(id) {
            Err(_) => v.push(FieldViolation::new(
                format!("{field}[{i}]"),
                format!("{id:?} is not a UUID"),
            )),
            Ok(uuid) if parsed.contains(&Some(uuid)) => v.push(FieldViolation::new(
                format!("{field}[{i}]"),
                format!("{id:?} is listed twice"),
            )),
            Ok(uuid) => parsed.push(Some(uuid)),
        }
    }
    parsed
}

/// A count with a default for 0 and the range 1..=`max`.
fn count(field: &str, value: u32, default: u32, max: u32, v: &mut Vec<FieldViolation>) -> i32 {
    let value = if value == 0 { default } else { value };
    if value > max {
        v.push(FieldViolation::new(
            field,
            format!("must be 1 to {max} (got {value}; 0 or unset: {default})"),
        ));
    }
    value.min(max) as i32
}

fn optional_duration(
    field: &str,
    value: Option<&pbjson_types::Duration>,
    v: &mut Vec<FieldViolation>,
) -> Option<Duration> {
    value.and_then(|d| to_std_duration(field, d, v))
}

/// A timestamp to the microsecond, as PostgreSQL keeps it.
fn timestamp(field: &str, at: &Timestamp, v: &mut Vec<FieldViolation>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::<Utc>::try_from(*at)
        .ok()
        .and_then(|at| DateTime::from_timestamp_micros(at.timestamp_micros()));
    if parsed.is_none() {
        v.push(FieldViolation::new(field, "is not a valid timestamp"));
    }
    parsed
}

fn selector_json(selector: &HashMap<String, String>) -> serde_json::Value {
    serde_json::to_value(selector).expect("a string map serialises")
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use monitor_proto::duration;

    use super::*;

    fn fields_of(result: Result<impl std::fmt::Debug, ApiError>) -> Vec<String> {
        match result {
            Err(ApiError::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn rule() -> AlertRule {
        AlertRule {
            name: "web down".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_empty_rule_gets_the_documented_defaults() {
        let fields = validate_rule(&rule()).unwrap();
        assert_eq!(
            (
                fields.failure_threshold,
                fields.success_threshold,
                fields.min_failing_locations
            ),
            (3, 2, 1)
        );
        assert_eq!((fields.repeat_interval_ms, fields.flap_window_ms), (0, 600_000));
        assert!(fields.no_data && fields.notify_on_resolve && fields.enabled);
        assert_eq!(fields.severity, "critical");
        assert_eq!(fields.label_selector, serde_json::json!({}));
        let explicit = AlertRule {
            no_data: Some(false),
            enabled: Some(false),
            severity: Severity::Info as i32,
            repeat_interval: Some(duration::from_millis(3_600_000)),
            flap_threshold: 2,
            flap_window: Some(duration::from_millis(60_000)),
            min_failing_percent: 50,
            ..rule()
        };
        let fields = validate_rule(&explicit).unwrap();
        assert!(!fields.no_data && !fields.enabled);
        assert_eq!(
            (
                fields.severity.as_str(),
                fields.repeat_interval_ms,
                fields.flap_window_ms
            ),
            ("info", 3_600_000, 60_000)
        );
    }

    #[test]
    fn each_bad_rule_field_is_named() {
        let id = Uuid::now_v7().to_string();
        let cases: Vec<(AlertRule, &str)> = vec![
            (
                AlertRule {
                    name: String::new(),
                    ..rule()
                },
                "name",
            ),
            (
                AlertRule {
                    name: "n".repeat(129),
                    ..rule()
                },
                "name",
            ),
            (
                AlertRule {
                    job_ids: vec!["x".into()],
                    ..rule()
                },
                "job_ids[0]",
            ),
            (
                AlertRule {
                    job_ids: vec![id.clone(), id.clone()],
                    ..rule()
                },
                "job_ids[1]",
            ),
            (
                AlertRule {
                    job_ids: vec![id.clone(); 1001],
                    ..rule()
                },
                "job_ids",
            ),
            (
                AlertRule {
                    channel_ids: vec![id.clone(); 21],
                    ..rule()
                },
                "channel_ids",
            ),
            (
                AlertRule {
                    channel_ids: vec!["c".into()],
                    ..rule()
                },
                "channel_ids[0]",
            ),
            (
                AlertRule {
                    label_selector: HashMap::from([("-x".into(), "v".into())]),
                    ..rule()
                },
                "label_selector[\"-x\"]",
            ),
            (
                AlertRule {
                    label_selector: HashMap::from([("x".into(), "a\nb".into())]),
                    ..rule()
                },
                "label_selector[\"x\"]",
            ),
            (
                AlertRule {
                    failure_threshold: 101,
                    ..rule()
                },
                "failure_threshold",
            ),
            (
                AlertRule {
                    success_threshold: 101,
                    ..rule()
                },
                "success_threshold",
            ),
            (
                AlertRule {
                    min_failing_locations: 65,
                    ..rule()
                },
                "min_failing_locations",
            ),
            (
                AlertRule {
                    min_failing_percent: 101,
                    ..rule()
                },
                "min_failing_percent",
            ),
            (
                AlertRule {
                    min_failing_percent: 50,
                    min_failing_locations: 2,
                    ..rule()
                },
                "min_failing_percent",
            ),
            (AlertRule { severity: 9, ..rule() }, "severity"),
            (
                AlertRule {
                    repeat_interval: Some(duration::from_millis(59_000)),
                    ..rule()
                },
                "repeat_interval",
            ),
            (
                AlertRule {
                    repeat_interval: Some(duration::from_millis(604_800_001)),
                    ..rule()
                },
                "repeat_interval",
            ),
            (
                AlertRule {
                    flap_threshold: 1,
                    ..rule()
                },
                "flap_threshold",
            ),
            (
                AlertRule {
                    flap_threshold: 101,
                    ..rule()
                },
                "flap_threshold",
            ),
            (
                AlertRule {
                    flap_window: Some(duration::from_millis(59_000)),
                    ..rule()
                },
                "flap_window",
            ),
            (
                AlertRule {
                    flap_window: Some(duration::from_millis(86_400_001)),
                    ..rule()
                },
                "flap_window",
            ),
        ];
        for (bad, field) in cases {
            assert_eq!(fields_of(validate_rule(&bad)), [field], "{bad:?}");
        }
    }

    fn silence(now: DateTime<Utc>) -> Silence {
        Silence {
            start_time: Some(now.into()),
            end_time: Some((now + chrono::TimeDelta::hours(2)).into()),
            ..Default::default()
        }
    }

    #[test]
    fn silences_need_an_ordered_bounded_future_window() {
        let now = Utc::now();
        let ok = validate_silence(&silence(now), now, SilenceWrite::Create).unwrap();
        assert_eq!(ok.recurrence, None);
        let unset_start = Silence {
            start_time: None,
            ..silence(now)
        };
        assert_eq!(
            validate_silence(&unset_start, now, SilenceWrite::Create)
                .unwrap()
                .starts_at,
            now
        );
        let at = |delta: chrono::TimeDelta| Some((now + delta).into());
        let cases: Vec<(Silence, &str)> = vec![
            (
                Silence {
                    end_time: None,
                    ..silence(now)
                },
                "end_time",
            ),
            (
                Silence {
                    end_time: Some(now.into()),
                    ..silence(now)
                },
                "end_time",
            ),
            (
                Silence {
                    end_time: at(chrono::TimeDelta::days(401)),
                    ..silence(now)
                },
                "end_time",
            ),
            (
                Silence {
                    start_time: at(chrono::TimeDelta::hours(-3)),
                    end_time: at(chrono::TimeDelta::hours(-1)),
                    ..silence(now)
                },
                "end_time",
            ),
            (
                Silence {
                    comment: "c".repeat(1025),
                    ..silence(now)
                },
                "comment",
            ),
            (
                Silence {
                    job_ids: vec!["nope".into()],
                    ..silence(now)
                },
                "job_ids[0]",
            ),
        ];
        for (bad, field) in cases {
            assert_eq!(
                fields_of(validate_silence(&bad, now, SilenceWrite::Create)),
                [field],
                "{bad:?}"
            );
        }
        // Ending one in the past is how an update expires it.
        let ended = Silence {
            start_time: at(chrono::TimeDelta::hours(-3)),
            end_time: at(chrono::TimeDelta::hours(-1)),
            ..silence(now)
        };
        assert!(validate_silence(&ended, now, SilenceWrite::Update).is_ok());
    }

    #[test]
    fn recurrences_are_checked_by_the_shared_parser() {
        let now = Utc::now();
        let weekly = |days: &[&str], start: &str, ms: Option<i64>, zone: &str| Silence {
            recurrence: Some(WeeklyRecurrence {
                days: days.iter().map(|d| d.to_string()).collect(),
                start: start.into(),
                duration: ms.map(duration::from_millis),
                time_zone: zone.into(),
            }),
            ..silence(now)
        };
        let ok = validate_silence(
            &weekly(&["sun", "mon"], "02:00", Some(7_200_000), ""),
            now,
            SilenceWrite::Create,
        )
        .unwrap();
        assert_eq!(
            ok.recurrence,
            Some(
                serde_json::json!({"days": ["mon", "sun"], "start": "02:00", "duration_ms": 7_200_000, "time_zone": "UTC"})
            )
        );
        for (bad, field) in [
            (weekly(&[], "02:00", Some(7_200_000), ""), "recurrence.days"),
            (weekly(&["sun", "sun"], "02:00", Some(7_200_000), ""), "recurrence.days"),
            (weekly(&["sun"], "25:00", Some(7_200_000), ""), "recurrence.start"),
            (weekly(&["sun"], "02:00", Some(1_000), ""), "recurrence.duration"),
            (weekly(&["sun"], "02:00", None, ""), "recurrence.duration"),
            (
                weekly(&["sun"], "02:00", Some(7_200_000), "Mars/Base"),
                "recurrence.time_zone",
            ),
        ] {
            assert_eq!(fields_of(validate_silence(&bad, now, SilenceWrite::Create)), [field]);
        }
    }
}
