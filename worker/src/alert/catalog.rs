//! What the evaluator evaluates against: the enabled rules, the jobs they
//! cover and the current silences, read from PostgreSQL every few seconds
//! and turned from rows into checked, ready-to-use values. A row the
//! server would never write (an unknown severity, a bad recurrence) is
//! skipped with a warning naming it, never a panic.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use monitor_core::recurrence::WeeklyWindow;
use monitor_store::models::{
    alert_rule::AlertRuleRow,
    job::{JobRow, STATE_RUNNING},
    silence::{SilenceRow, StoredRecurrence},
};
use uuid::Uuid;

/// Which jobs a rule or a silence covers: the listed ids, and every job
/// carrying all of `labels`; both empty: every job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub job_ids: Vec<Uuid>,
    pub labels: BTreeMap<String, String>,
}

impl Scope {
    fn from_row(job_ids: &[Option<Uuid>], labels: &serde_json::Value) -> Result<Scope, String> {
        let labels: BTreeMap<String, String> =
            serde_json::from_value(labels.clone()).map_err(|err| format!("label_selector: {err}"))?;
        Ok(Scope {
            job_ids: job_ids.iter().flatten().copied().collect(),
            labels,
        })
    }

    /// Whether it covers `job`.
    pub fn covers(&self, job: &JobInfo) -> bool {
        if self.job_ids.is_empty() && self.labels.is_empty() {
            return true;
        }
        self.job_ids.contains(&job.id)
            || (!self.labels.is_empty() && self.labels.iter().all(|(k, v)| job.labels.get(k) == Some(v)))
    }
}

/// When a job is down: at least this many failing locations, or this
/// percentage of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownWhen {
    AtLeast(u32),
    Percent(u32),
}

impl DownWhen {
    /// How many failing locations make a job with `locations` down: at
    /// least one, and never more than it has (a rule asking for 3 of a
    /// 2-location job fires when both fail).
    pub fn required(self, locations: usize) -> usize {
        let locations = locations.max(1);
        let wanted = match self {
            DownWhen::AtLeast(n) => n as usize,
            DownWhen::Percent(p) => (p as usize * locations).div_ceil(100),
        };
        wanted.clamp(1, locations)
    }
}

/// Flap detection: more than `threshold` changes within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flapping {
    pub threshold: u32,
    pub window: Duration,
}

/// An enabled rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub scope: Scope,
    pub failure_threshold: u32,
    pub success_threshold: u32,
    pub down_when: DownWhen,
    /// Whether silence from a running job opens an incident.
    pub no_data: bool,
    pub severity: String,
    pub channel_ids: Vec<Uuid>,
    /// Reminders while open and unacknowledged.
    pub repeat_interval: Option<Duration>,
    pub notify_on_resolve: bool,
    pub flapping: Option<Flapping>,
}

impl Rule {
    pub fn from_row(row: &AlertRuleRow) -> Result<Rule, String> {
        let positive = |value: i32, field: &str| {
            u32::try_from(value)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| format!("{field} is {value}"))
        };
        let down_when = if row.min_failing_percent > 0 {
            DownWhen::Percent(positive(row.min_failing_percent, "min_failing_percent")?.min(100))
        } else {
            DownWhen::AtLeast(positive(row.min_failing_locations, "min_failing_locations")?)
        };
        let millis = |value: i64, field: &str| {
            u64::try_from(value)
                .map(Duration::from_millis)
                .map_err(|_| format!("{field} is {value}"))
        };
        let repeat = millis(row.repeat_interval_ms, "repeat_interval_ms")?;
        let flapping = match row.flap_threshold {
            0 => None,
            n => Some(Flapping {
                threshold: positive(n, "flap_threshold")?,
                window: millis(row.flap_window_ms, "flap_window_ms")?.max(Duration::from_secs(1)),
            }),
        };
        Ok(Rule {
            id: row.id,
            name: row.name.clone(),
            scope: Scope::from_row(&row.job_ids, &row.label_selector)?,
            failure_threshold: positive(row.failure_threshold, "failure_threshold")?,
            success_threshold: positive(row.success_threshold, "success_threshold")?,
            down_when,
            no_data: row.no_data,
            severity: row.severity.clone(),
            channel_ids: row.channel_ids.iter().flatten().copied().collect(),
            repeat_interval: (!repeat.is_zero()).then_some(repeat),
            notify_on_resolve: row.notify_on_resolve,
            flapping,
        })
    }
}

/// What the evaluator needs of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: Uuid,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Where it runs; empty: once, anywhere (one location, "").
    pub locations: Vec<String>,
    pub interval: Duration,
    /// Since when it should be running (None: stopped).
    pub running_since: Option<DateTime<Utc>>,
    /// How long without a result means no data: max(3 x interval, the
    /// role's floor, 60 s by default).
    pub no_data_after: Duration,
}

impl JobInfo {
    pub fn from_row(row: &JobRow, no_data_floor: Duration) -> Result<JobInfo, String> {
        let labels = serde_json::from_value(row.labels.clone()).map_err(|err| format!("labels: {err}"))?;
        let locations = serde_json::from_value(row.locations.clone()).map_err(|err| format!("locations: {err}"))?;
        let interval = Duration::from_millis(u64::try_from(row.interval_ms).unwrap_or(60_000));
        Ok(JobInfo {
            id: row.id,
            name: row.name.clone(),
            labels,
            locations,
            interval,
            running_since: (row.desired_state == STATE_RUNNING).then_some(row.state_changed_at),
            no_data_after: (interval * 3).max(no_data_floor),
        })
    }

    /// How many locations it is checked in.
    pub fn location_count(&self) -> usize {
        self.locations.len().max(1)
    }
}

/// A silence or maintenance window not yet ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: Uuid,
    pub scope: Scope,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub weekly: Option<WeeklyWindow>,
}

impl Silence {
    pub fn from_row(row: &SilenceRow) -> Result<Silence, String> {
        let weekly = match &row.recurrence {
            None => None,
            Some(value) => {
                let stored: StoredRecurrence =
                    serde_json::from_value(value.clone()).map_err(|err| format!("recurrence: {err}"))?;
                let length = Duration::from_millis(u64::try_from(stored.duration_ms).unwrap_or(0));
                Some(
                    WeeklyWindow::parse(&stored.days, &stored.start, length, &stored.time_zone)
                        .map_err(|err| format!("recurrence: {err}"))?,
                )
            }
        };
        Ok(Silence {
            id: row.id,
            scope: Scope::from_row(&row.job_ids, &row.label_selector)?,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            weekly,
        })
    }

    /// Whether it silences `job` at `at`.
    pub fn silences(&self, job: &JobInfo, at: DateTime<Utc>) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && self.weekly.as_ref().is_none_or(|weekly| weekly.is_active(at))
            && self.scope.covers(job)
    }
}

/// Rules, jobs and silences as last read.
#[derive(Debug, Default)]
pub struct Catalog {
    pub rules: BTreeMap<Uuid, Rule>,
    pub jobs: BTreeMap<Uuid, JobInfo>,
    pub silences: Vec<Silence>,
}

impl Catalog {
    /// Builds it from rows, skipping (and naming) unreadable ones; no data
    /// is max(3 x interval, `no_data_floor`).
    pub fn from_rows(
        rules: &[AlertRuleRow],
        jobs: &[JobRow],
        silences: &[SilenceRow],
        no_data_floor: Duration,
    ) -> Catalog {
        let mut catalog = Catalog::default();
        for row in rules {
            match Rule::from_row(row) {
                Ok(rule) => {
                    catalog.rules.insert(rule.id, rule);
                }
                Err(problem) => tracing::warn!(rule_id = %row.id, %problem, "skipping an unreadable alert rule"),
            }
        }
        for row in jobs {
            match JobInfo::from_row(row, no_data_floor) {
                Ok(job) => {
                    catalog.jobs.insert(job.id, job);
                }
                Err(problem) => tracing::warn!(job_id = %row.id, %problem, "skipping an unreadable job"),
            }
        }
        for row in silences {
            match Silence::from_row(row) {
                Ok(silence) => catalog.silences.push(silence),
                Err(problem) => tracing::warn!(silence_id = %row.id, %problem, "skipping an unreadable silence"),
            }
        }
        catalog
    }

    /// The rules covering `job`.
    pub fn rules_of<'a>(&'a self, job: &'a JobInfo) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.values().filter(move |rule| rule.scope.covers(job))
    }

    /// Whether a silence covers `job` at `at`.
    pub fn silenced(&self, job: &JobInfo, at: DateTime<Utc>) -> bool {
        self.silences.iter().any(|silence| silence.silences(job, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(labels: &[(&str, &str)]) -> JobInfo {
        JobInfo {
            id: Uuid::from_u128(7),
            name: "j".into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            locations: vec![],
            interval: Duration::from_secs(10),
            running_since: None,
            no_data_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_scope_covers_its_ids_and_its_labels_and_an_empty_one_everything() {
        let everything = Scope::default();
        assert!(everything.covers(&job(&[])));
        let by_id = Scope {
            job_ids: vec![Uuid::from_u128(7)],
            labels: BTreeMap::new(),
        };
        assert!(by_id.covers(&job(&[])));
        let by_label = Scope {
            job_ids: vec![Uuid::from_u128(8)],
            labels: [("team".to_string(), "pay".to_string())].into(),
        };
        assert!(by_label.covers(&job(&[("team", "pay"), ("env", "prod")])));
        assert!(!by_label.covers(&job(&[("team", "web")])));
        assert!(!by_label.covers(&job(&[])));
    }

    #[test]
    fn required_failing_locations_round_up_and_stay_within_the_job() {
        assert_eq!(DownWhen::AtLeast(1).required(0), 1);
        assert_eq!(DownWhen::AtLeast(2).required(3), 2);
        assert_eq!(DownWhen::AtLeast(3).required(2), 2);
        assert_eq!(DownWhen::Percent(50).required(3), 2);
        assert_eq!(DownWhen::Percent(50).required(4), 2);
        assert_eq!(DownWhen::Percent(1).required(4), 1);
        assert_eq!(DownWhen::Percent(100).required(5), 5);
        assert_eq!(DownWhen::Percent(34).required(3), 2);
    }

    #[test]
    fn no_data_waits_three_intervals_and_at_least_the_floor() {
        let row = |interval_ms: i64| JobRow {
            id: Uuid::from_u128(1),
            name: "j".into(),
            labels: serde_json::json!({"team": "pay"}),
            check_kind: "http".into(),
            check_spec: serde_json::json!({}),
            interval_ms,
            timeout_ms: 1_000,
            desired_state: STATE_RUNNING.into(),
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            state_changed_at: Utc::now(),
            locations: serde_json::json!(["eu"]),
        };
        let minute = Duration::from_secs(60);
        assert_eq!(JobInfo::from_row(&row(10_000), minute).unwrap().no_data_after, minute);
        assert_eq!(
            JobInfo::from_row(&row(300_000), minute).unwrap().no_data_after,
            Duration::from_secs(900)
        );
        let job = JobInfo::from_row(&row(1_000), Duration::from_secs(2)).unwrap();
        assert_eq!(job.no_data_after, Duration::from_secs(3));
        assert_eq!(job.locations, ["eu"]);
        assert!(job.running_since.is_some());
        let mut bad = row(1_000);
        bad.labels = serde_json::json!(["not", "an", "object"]);
        assert!(JobInfo::from_row(&bad, minute).unwrap_err().starts_with("labels"));
    }
}
