//! The evaluator's decisions: plain functions of a rule, a job, the state
//! kept per (rule, job), and either a check result ([`on_result`]) or the
//! time ([`on_tick`]). They change the state and return the [`Effect`]s to
//! write (incidents, timeline events, notification intents); the async
//! shell around them only reads and writes.
//!
//! A location is failing after `failure_threshold` consecutive failed
//! checks and recovers after `success_threshold` passed ones. The job has a
//! problem while enough of its locations fail ([`DownWhen`]) or while it is
//! running and silent (no data); an incident opens when a problem starts
//! and resolves when it ends, one per episode.
//!
//! Notifications: "opened" when an incident opens, unless a silence covers
//! the job (then when the silence ends with the incident still open) or the
//! job is flapping; "reminder" every `repeat_interval` while open, notified
//! and unacknowledged; "resolved" (when the rule asks for it) only for an
//! incident whose opening was notified; "flapping" once when a job starts
//! flapping and "flapping_ended" when it has been stable for the window.
//! Nothing goes out while a silence covers the job. Every intent carries a
//! dedup key (incident id and event), so writing it twice sends it once.
//!
//! [`DownWhen`]: super::catalog::DownWhen

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use monitor_store::models::incident::{CAUSE_DOWN, CAUSE_NO_DATA, FirstFailure, dedup_key};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::catalog::{JobInfo, Rule};

/// One location's counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocationState {
    /// Consecutive failed checks (0 after a pass).
    pub failures: u32,
    /// Consecutive passed checks (0 after a failure).
    pub successes: u32,
    /// Crossed `failure_threshold` and not yet `success_threshold` back.
    pub failing: bool,
    /// Start of the latest check counted: an older or equal one is ignored.
    pub last_start: Option<DateTime<Utc>>,
    /// The first failed check of the current run of failures.
    pub first_failure: Option<FirstFailure>,
}

/// The incident open for this (rule, job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIncident {
    pub id: Uuid,
    pub opened_at: DateTime<Utc>,
    /// Someone acknowledged it (reminders stop).
    pub acknowledged: bool,
    /// Its "opened" notification went out (or is written).
    pub notified: bool,
    /// When the latest notification about it was written.
    pub last_notified_at: Option<DateTime<Utc>>,
    /// Reminders written so far (the next one's dedup key).
    pub reminders: u32,
}

/// What the evaluator keeps per (rule, job), stored as JSON in
/// `alert_state.state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    #[serde(default)]
    pub locations: BTreeMap<String, LocationState>,
    /// End of the latest check seen (start plus duration).
    #[serde(default)]
    pub last_result_end: Option<DateTime<Utc>>,
    /// Running, and no result for the job's no-data time.
    #[serde(default)]
    pub no_data: bool,
    #[serde(default)]
    pub open: Option<OpenIncident>,
    /// The latest incident (open or not): flapping notifications name it.
    #[serde(default)]
    pub last_incident: Option<Uuid>,
    /// Times the job changed between up and down within the flap window.
    #[serde(default)]
    pub changes: Vec<DateTime<Utc>>,
    #[serde(default)]
    pub flapping: bool,
}

/// A check result, as far as alerting cares.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub location: String,
    pub start: DateTime<Utc>,
    /// Start plus duration.
    pub end: DateTime<Utc>,
    /// None: the check passed. Else what the incident records if this
    /// failure starts the run that opens it.
    pub failure: Option<FirstFailure>,
}

/// An incident to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIncident {
    pub id: Uuid,
    pub rule_id: Uuid,
    pub rule_name: String,
    pub job_id: Uuid,
    pub job_name: String,
    pub severity: String,
    /// `CAUSE_DOWN` or `CAUSE_NO_DATA`.
    pub cause: &'static str,
    pub opened_at: DateTime<Utc>,
    pub failing_locations: Vec<String>,
    pub first_failure: Option<FirstFailure>,
    /// End of the check that crossed the threshold (down only).
    pub detected_check_end: Option<DateTime<Utc>>,
    pub silenced: bool,
}

/// What a decision asks to write.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Open(Box<NewIncident>),
    /// A timeline entry.
    Event {
        incident: Uuid,
        at: DateTime<Utc>,
        kind: &'static str,
        location: String,
        detail: String,
    },
    /// The incident's failing locations changed.
    Failing {
        incident: Uuid,
        locations: Vec<String>,
    },
    /// The incident's flapping mark changed.
    Flapping {
        incident: Uuid,
        flapping: bool,
    },
    Resolve {
        incident: Uuid,
        at: DateTime<Utc>,
        failing_locations: Vec<String>,
    },
    /// A notification intent for the rule's channels.
    Notify {
        incident: Uuid,
        event: &'static str,
        dedup_key: String,
        channel_ids: Vec<Uuid>,
    },
}

/// What a decision is made for.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub rule: &'a Rule,
    pub job: &'a JobInfo,
    /// Whether a silence covers the job now.
    pub silenced: bool,
}

impl Subject<'_> {
    fn notify(&self, incident: Uuid, event: &'static str, dedup_key: String) -> Effect {
        Effect::Notify {
            incident,
            event,
            dedup_key,
            channel_ids: self.rule.channel_ids.clone(),
        }
    }
}

fn event(incident: Uuid, at: DateTime<Utc>, kind: &'static str, location: &str, detail: String) -> Effect {
    Effect::Event {
        incident,
        at,
        kind,
        location: location.to_owned(),
        detail,
    }
}

/// Counts one check result.
pub fn on_result(subject: Subject<'_>, state: &mut AlertState, observed: &Observed) -> Vec<Effect> {
    let rule = subject.rule;
    let location = state.locations.entry(observed.location.clone()).or_default();
    if location.last_start.is_some_and(|last| observed.start <= last) {
        return Vec::new();
    }
    location.last_start = Some(observed.start);
    let mut changed = None;
    if let Some(failure) = &observed.failure {
        location.successes = 0;
        location.failures = location.failures.saturating_add(1);
        if location.first_failure.is_none() {
            location.first_failure = Some(failure.clone());
        }
        if !location.failing && location.failures >= rule.failure_threshold {
            location.failing = true;
            changed = Some((
                "location_failed",
                format!("{} failed checks: {}", location.failures, failure.error),
            ));
        }
    } else {
        location.failures = 0;
        location.first_failure = None;
        location.successes = location.successes.saturating_add(1);
        if location.failing && location.successes >= rule.success_threshold {
            location.failing = false;
            changed = Some(("location_recovered", format!("{} passed checks", location.successes)));
        }
    }
    state.last_result_end = state.last_result_end.max(Some(observed.end));
    let resumed = std::mem::take(&mut state.no_data);
    let mut effects = Vec::new();
    if let Some(open) = &state.open {
        if resumed {
            effects.push(event(
                open.id,
                observed.end,
                "data_resumed",
                &observed.location,
                String::new(),
            ));
        }
        if let Some((kind, detail)) = changed {
            effects.push(event(open.id, observed.end, kind, &observed.location, detail));
            effects.push(Effect::Failing {
                incident: open.id,
                locations: failing(subject.job, state),
            });
        }
    }
    effects.extend(settle(subject, state, observed.end, Some(observed.end)));
    effects
}

/// Applies the time: no data, the job stopping, a silence ending,
/// reminders, the end of flapping. `watching_since` is when this evaluator
/// started reading the job's partition up to date: silence is measured
/// from then at the earliest, so a restart never mistakes its own absence
/// for the job's.
pub fn on_tick(
    subject: Subject<'_>,
    state: &mut AlertState,
    now: DateTime<Utc>,
    watching_since: DateTime<Utc>,
) -> Vec<Effect> {
    let (rule, job) = (subject.rule, subject.job);
    let mut effects = Vec::new();
    match job.running_since {
        None if state.open.is_some() || state.no_data || !state.locations.is_empty() => {
            // Stopped: nothing will be checked, so nothing stays open.
            if let Some(open) = &state.open {
                effects.push(event(open.id, now, "job_stopped", "", String::new()));
            }
            state.locations.clear();
            state.no_data = false;
            effects.extend(settle(subject, state, now, None));
        }
        Some(since) if rule.no_data && !state.no_data => {
            let last = [state.last_result_end, Some(since), Some(watching_since)]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(now);
            let silent_for = (now - last).to_std().unwrap_or_default();
            if silent_for >= job.no_data_after {
                state.no_data = true;
                let detail = format!("no result for {} s", silent_for.as_secs());
                if let Some(open) = &state.open {
                    effects.push(event(open.id, now, "data_missing", "", detail));
                }
                effects.extend(settle(subject, state, now, None));
            }
        }
        _ => {}
    }
    if let Some(flapping) = rule.flapping.filter(|_| state.flapping) {
        let stable_since = state.changes.last().copied();
        let window = chrono::Duration::from_std(flapping.window).unwrap_or(chrono::Duration::MAX);
        if stable_since.is_none_or(|last| now - last >= window) {
            effects.extend(end_flapping(subject, state, now));
        }
    } else if rule.flapping.is_none() && state.flapping {
        effects.extend(end_flapping(subject, state, now));
    }
    let flapping = state.flapping;
    if let Some(open) = state.open.as_mut().filter(|_| !subject.silenced && !flapping) {
        if !open.notified {
            // Opened while silenced (or flapping): told now.
            open.notified = true;
            open.last_notified_at = Some(now);
            effects.push(event(open.id, now, "unsilenced", "", String::new()));
            effects.push(subject.notify(open.id, "opened", dedup_key(open.id, "opened")));
        } else if let Some(every) = rule.repeat_interval.filter(|_| !open.acknowledged) {
            let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
            if open.last_notified_at.is_none_or(|last| now - last >= every) {
                open.reminders += 1;
                open.last_notified_at = Some(now);
                let n = open.reminders;
                effects.push(event(open.id, now, "reminder", "", format!("reminder {n}")));
                effects.push(subject.notify(open.id, "reminder", dedup_key(open.id, &format!("reminder:{n}"))));
            }
        }
    }
    effects
}

/// Someone acknowledged the open incident (read from the database).
pub fn acknowledged(state: &mut AlertState, incident: Uuid) -> bool {
    match state
        .open
        .as_mut()
        .filter(|open| open.id == incident && !open.acknowledged)
    {
        Some(open) => {
            open.acknowledged = true;
            true
        }
        None => false,
    }
}

/// Someone resolved the open incident by hand: it is closed, and the
/// counters start again (a job still failing opens a new incident after
/// `failure_threshold` checks).
pub fn resolved_by_hand(state: &mut AlertState, incident: Uuid) -> bool {
    if state.open.as_ref().is_none_or(|open| open.id != incident) {
        return false;
    }
    state.open = None;
    state.locations.clear();
    state.no_data = false;
    true
}

/// The job's failing locations (those it is still checked in), sorted.
fn failing(job: &JobInfo, state: &AlertState) -> Vec<String> {
    let wanted = |name: &str| {
        if job.locations.is_empty() {
            name.is_empty()
        } else {
            job.locations.iter().any(|l| l == name)
        }
    };
    state
        .locations
        .iter()
        .filter(|(name, location)| location.failing && wanted(name))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Opens or resolves according to whether the job has a problem now.
fn settle(
    subject: Subject<'_>,
    state: &mut AlertState,
    at: DateTime<Utc>,
    check_end: Option<DateTime<Utc>>,
) -> Vec<Effect> {
    let (rule, job) = (subject.rule, subject.job);
    let failing_now = failing(job, state);
    let down = failing_now.len() >= rule.down_when.required(job.location_count()) && !failing_now.is_empty();
    let problem = down || state.no_data;
    let mut effects = Vec::new();
    match (&state.open, problem) {
        (None, true) => {
            let id = Uuid::now_v7();
            let first_failure = failing_now
                .iter()
                .filter_map(|name| state.locations[name].first_failure.clone())
                .min_by_key(|failure| failure.start_time);
            let cause = if down { CAUSE_DOWN } else { CAUSE_NO_DATA };
            effects.push(Effect::Open(Box::new(NewIncident {
                id,
                rule_id: rule.id,
                rule_name: rule.name.clone(),
                job_id: job.id,
                job_name: job.name.clone(),
                severity: rule.severity.clone(),
                cause,
                opened_at: at,
                failing_locations: failing_now.clone(),
                first_failure: if down { first_failure } else { None },
                detected_check_end: if down { check_end } else { None },
                silenced: subject.silenced,
            })));
            let detail = if down {
                format!("{} of {} locations failing", failing_now.len(), job.location_count())
            } else {
                format!("no result for {} s", job.no_data_after.as_secs())
            };
            effects.push(event(id, at, "opened", "", detail));
            state.last_incident = Some(id);
            effects.extend(register_change(subject, state, at, id));
            let mut open = OpenIncident {
                id,
                opened_at: at,
                acknowledged: false,
                notified: false,
                last_notified_at: None,
                reminders: 0,
            };
            if subject.silenced {
                effects.push(event(id, at, "silenced", "", String::new()));
            } else if !state.flapping {
                open.notified = true;
                open.last_notified_at = Some(at);
                effects.push(subject.notify(id, "opened", dedup_key(id, "opened")));
            }
            state.open = Some(open);
        }
        (Some(open), false) => {
            let open = open.clone();
            state.open = None;
            effects.push(Effect::Resolve {
                incident: open.id,
                at,
                failing_locations: failing_now,
            });
            let downtime = (at - open.opened_at).to_std().unwrap_or_default();
            effects.push(event(
                open.id,
                at,
                "resolved",
                "",
                format!("down for {} s", downtime.as_secs()),
            ));
            effects.extend(register_change(subject, state, at, open.id));
            if rule.notify_on_resolve && open.notified && !subject.silenced && !state.flapping {
                effects.push(subject.notify(open.id, "resolved", dedup_key(open.id, "resolved")));
            }
        }
        _ => {}
    }
    effects
}

/// Counts a change between up and down for flap detection.
fn register_change(subject: Subject<'_>, state: &mut AlertState, at: DateTime<Utc>, incident: Uuid) -> Vec<Effect> {
    let Some(flapping) = subject.rule.flapping else {
        return Vec::new();
    };
    let window = chrono::Duration::from_std(flapping.window).unwrap_or(chrono::Duration::MAX);
    state.changes.push(at);
    state.changes.retain(|change| at - *change < window);
    if state.flapping || state.changes.len() <= flapping.threshold as usize {
        return Vec::new();
    }
    state.flapping = true;
    let mut effects = vec![
        Effect::Flapping {
            incident,
            flapping: true,
        },
        event(
            incident,
            at,
            "flapping",
            "",
            format!("{} changes within {} s", state.changes.len(), flapping.window.as_secs()),
        ),
    ];
    if !subject.silenced {
        effects.push(subject.notify(
            incident,
            "flapping",
            dedup_key(incident, &format!("flapping:{}", at.timestamp_millis())),
        ));
    }
    effects
}

/// The job has been stable for the flap window (or the rule no longer
/// detects flapping).
fn end_flapping(subject: Subject<'_>, state: &mut AlertState, now: DateTime<Utc>) -> Vec<Effect> {
    state.flapping = false;
    state.changes.clear();
    let Some(incident) = state.open.as_ref().map(|open| open.id).or(state.last_incident) else {
        return Vec::new();
    };
    let mut effects = vec![event(incident, now, "flapping_ended", "", String::new())];
    if let Some(open) = state.open.as_mut() {
        effects.push(Effect::Flapping {
            incident,
            flapping: false,
        });
        if !subject.silenced {
            // The notification says where it ended up: still open.
            open.notified = true;
            open.last_notified_at = Some(now);
        }
    }
    if !subject.silenced {
        effects.push(subject.notify(
            incident,
            "flapping_ended",
            dedup_key(incident, &format!("flapping_ended:{}", now.timestamp_millis())),
        ));
    }
    effects
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::alert::catalog::{DownWhen, Flapping, Scope};

    fn rule() -> Rule {
        Rule {
            id: Uuid::from_u128(1),
            name: "down".into(),
            scope: Scope::default(),
            failure_threshold: 3,
            success_threshold: 2,
            down_when: DownWhen::AtLeast(1),
            no_data: true,
            severity: "critical".into(),
            channel_ids: vec![Uuid::from_u128(9)],
            repeat_interval: None,
            notify_on_resolve: true,
            flapping: None,
        }
    }

    fn job(locations: &[&str]) -> JobInfo {
        JobInfo {
            id: Uuid::from_u128(2),
            name: "shop".into(),
            labels: BTreeMap::new(),
            locations: locations.iter().map(|l| l.to_string()).collect(),
            interval: Duration::from_secs(10),
            running_since: Some(t(0)),
            no_data_after: Duration::from_secs(60),
        }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn check(location: &str, at: i64, passed: bool) -> Observed {
        Observed {
            location: location.into(),
            start: t(at),
            end: t(at) + chrono::Duration::milliseconds(250),
            failure: (!passed).then(|| FirstFailure {
                check_id: format!("check-{at}"),
                worker_id: "w1".into(),
                location: location.into(),
                start_time: t(at),
                outcome: "CHECK_OUTCOME_ASSERTION_FAILED".into(),
                status_code: 500,
                error: "status 500".into(),
            }),
        }
    }

    /// Feeds results; returns the effects of each.
    fn feed(rule: &Rule, job: &JobInfo, state: &mut AlertState, checks: &[Observed]) -> Vec<Vec<Effect>> {
        let subject = Subject {
            rule,
            job,
            silenced: false,
        };
        checks.iter().map(|c| on_result(subject, state, c)).collect()
    }

    fn opens(effects: &[Effect]) -> usize {
        effects.iter().filter(|e| matches!(e, Effect::Open(_))).count()
    }

    fn resolves(effects: &[Effect]) -> usize {
        effects.iter().filter(|e| matches!(e, Effect::Resolve { .. })).count()
    }

    fn notified(effects: &[Effect]) -> Vec<&'static str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notify { event, .. } => Some(*event),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_third_failure_opens_not_the_second_and_the_second_pass_resolves() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        let steps = feed(
            &rule,
            &job,
            &mut state,
            &[
                check("", 10, false),
                check("", 20, false),
                check("", 30, false),
                check("", 40, false),
                check("", 50, true),
                check("", 60, true),
                check("", 70, true),
            ],
        );
        let opened: Vec<usize> = steps.iter().map(|e| opens(e)).collect();
        assert_eq!(opened, [0, 0, 1, 0, 0, 0, 0]);
        let resolved: Vec<usize> = steps.iter().map(|e| resolves(e)).collect();
        assert_eq!(resolved, [0, 0, 0, 0, 0, 1, 0]);
        let Effect::Open(incident) = &steps[2][0] else {
            panic!("{:?}", steps[2])
        };
        assert_eq!(incident.cause, CAUSE_DOWN);
        // The first failure of the run, and the end of the crossing check.
        assert_eq!(incident.first_failure.as_ref().unwrap().check_id, "check-10");
        assert_eq!(
            incident.detected_check_end,
            Some(t(30) + chrono::Duration::milliseconds(250))
        );
        assert_eq!(notified(&steps[2]), ["opened"]);
        assert_eq!(notified(&steps[5]), ["resolved"]);
        assert!(state.open.is_none());
    }

    #[test]
    fn a_pass_between_failures_starts_the_count_again() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        let steps = feed(
            &rule,
            &job,
            &mut state,
            &[
                check("", 10, false),
                check("", 20, false),
                check("", 30, true),
                check("", 40, false),
                check("", 50, false),
            ],
        );
        assert_eq!(steps.iter().map(|e| opens(e)).sum::<usize>(), 0);
    }

    #[test]
    fn a_replayed_or_older_result_changes_nothing() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        feed(&rule, &job, &mut state, &[check("", 10, false), check("", 20, false)]);
        let before = state.clone();
        let steps = feed(&rule, &job, &mut state, &[check("", 20, false), check("", 15, false)]);
        assert!(steps.iter().all(Vec::is_empty));
        assert_eq!(state, before);
    }

    #[test]
    fn two_of_three_locations_must_fail_when_the_rule_says_so() {
        let mut rule = rule();
        rule.down_when = DownWhen::AtLeast(2);
        let job = job(&["eu", "us", "ap"]);
        let mut state = AlertState::default();
        let eu = feed(
            &rule,
            &job,
            &mut state,
            &[check("eu", 10, false), check("eu", 20, false), check("eu", 30, false)],
        );
        assert_eq!(
            eu.iter().map(|e| opens(e)).sum::<usize>(),
            0,
            "one failing location is not enough"
        );
        let us = feed(
            &rule,
            &job,
            &mut state,
            &[check("us", 11, false), check("us", 21, false), check("us", 31, false)],
        );
        assert_eq!(us.iter().map(|e| opens(e)).collect::<Vec<_>>(), [0, 0, 1]);
        let Effect::Open(incident) = &us[2][0] else { panic!() };
        assert_eq!(incident.failing_locations, ["eu", "us"]);
        assert_eq!(incident.first_failure.as_ref().unwrap().location, "eu");
        // One location recovering is enough to be up again (1 of 3 failing).
        let back = feed(&rule, &job, &mut state, &[check("eu", 40, true), check("eu", 50, true)]);
        assert_eq!(back.iter().map(|e| resolves(e)).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn a_location_failing_while_open_is_on_the_timeline() {
        let job = job(&["eu", "us"]);
        let rule = rule();
        let mut state = AlertState::default();
        feed(
            &rule,
            &job,
            &mut state,
            &[check("eu", 10, false), check("eu", 20, false), check("eu", 30, false)],
        );
        let us = feed(
            &rule,
            &job,
            &mut state,
            &[check("us", 11, false), check("us", 21, false), check("us", 31, false)],
        );
        assert!(
            us[2]
                .iter()
                .any(|e| matches!(e, Effect::Event { kind: "location_failed", location, .. } if location == "us"))
        );
        assert!(
            us[2]
                .iter()
                .any(|e| matches!(e, Effect::Failing { locations, .. } if locations == &["eu", "us"]))
        );
        assert_eq!(opens(&us[2]), 0);
    }

    #[test]
    fn no_data_opens_after_three_intervals_or_a_minute_from_when_watching_began() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        feed(&rule, &job, &mut state, &[check("", 10, true)]);
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        // Watching since t(0); last result ended at t(10.25): silent from there.
        assert!(on_tick(subject, &mut state, t(70), t(0)).is_empty());
        let effects = on_tick(subject, &mut state, t(71), t(0));
        assert_eq!(opens(&effects), 1);
        let Effect::Open(incident) = &effects[0] else { panic!() };
        assert_eq!(incident.cause, CAUSE_NO_DATA);
        assert_eq!(notified(&effects), ["opened"]);
        // Only once.
        assert!(on_tick(subject, &mut state, t(200), t(0)).is_empty());
        // A result resolves it (passing: no failing location).
        let back = feed(&rule, &job, &mut state, &[check("", 210, true)]);
        assert_eq!(resolves(&back[0]), 1);
    }

    #[test]
    fn an_evaluator_that_just_started_waits_before_calling_a_job_silent() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        feed(&rule, &job, &mut state, &[check("", 10, true)]);
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        // Started watching at t(500): nothing before t(560).
        assert!(on_tick(subject, &mut state, t(559), t(500)).is_empty());
        assert_eq!(opens(&on_tick(subject, &mut state, t(560), t(500))), 1);
    }

    #[test]
    fn a_job_that_never_reported_is_silent_from_when_it_started_running() {
        let (rule, mut job) = (rule(), job(&[]));
        job.running_since = Some(t(100));
        let mut state = AlertState::default();
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        assert!(on_tick(subject, &mut state, t(159), t(0)).is_empty());
        assert_eq!(opens(&on_tick(subject, &mut state, t(160), t(0))), 1);
    }

    #[test]
    fn a_stopped_job_resolves_and_a_rule_without_no_data_ignores_silence() {
        let (mut rule, mut job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        feed(
            &rule,
            &job,
            &mut state,
            &[check("", 10, false), check("", 20, false), check("", 30, false)],
        );
        assert!(state.open.is_some());
        job.running_since = None;
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        let effects = on_tick(subject, &mut state, t(40), t(0));
        assert_eq!(resolves(&effects), 1);
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Event {
                kind: "job_stopped",
                ..
            }
        )));
        rule.no_data = false;
        job.running_since = Some(t(0));
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        assert!(on_tick(subject, &mut state, t(10_000), t(0)).is_empty());
    }

    #[test]
    fn a_silenced_incident_opens_quietly_and_is_told_once_when_the_silence_ends() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        let quiet = Subject {
            rule: &rule,
            job: &job,
            silenced: true,
        };
        let mut effects = Vec::new();
        for at in [10, 20, 30] {
            effects.extend(on_result(quiet, &mut state, &check("", at, false)));
        }
        assert_eq!(opens(&effects), 1);
        let Effect::Open(incident) = &effects[0] else { panic!() };
        assert!(incident.silenced);
        assert!(notified(&effects).is_empty());
        assert!(on_tick(quiet, &mut state, t(40), t(0)).is_empty());
        let loud = Subject {
            silenced: false,
            ..quiet
        };
        assert_eq!(notified(&on_tick(loud, &mut state, t(50), t(0))), ["opened"]);
        assert!(notified(&on_tick(loud, &mut state, t(51), t(0))).is_empty());
    }

    #[test]
    fn an_incident_opened_and_resolved_within_a_silence_notifies_nobody() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        let quiet = Subject {
            rule: &rule,
            job: &job,
            silenced: true,
        };
        let mut effects = Vec::new();
        for (at, passed) in [(10, false), (20, false), (30, false), (40, true), (50, true)] {
            effects.extend(on_result(quiet, &mut state, &check("", at, passed)));
        }
        assert_eq!((opens(&effects), resolves(&effects)), (1, 1));
        assert!(notified(&effects).is_empty());
    }

    #[test]
    fn reminders_repeat_until_acknowledged() {
        let mut rule = rule();
        rule.repeat_interval = Some(Duration::from_secs(60));
        let job = job(&[]);
        let mut state = AlertState::default();
        feed(
            &rule,
            &job,
            &mut state,
            &[check("", 10, false), check("", 20, false), check("", 30, false)],
        );
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        // Opened (and notified) at t(30.25).
        assert!(notified(&on_tick(subject, &mut state, t(90), t(0))).is_empty());
        let first = on_tick(subject, &mut state, t(91), t(0));
        assert!(
            first
                .iter()
                .any(|e| matches!(e, Effect::Notify { dedup_key, .. } if dedup_key.ends_with(":reminder:1")))
        );
        assert!(notified(&on_tick(subject, &mut state, t(150), t(0))).is_empty());
        assert_eq!(notified(&on_tick(subject, &mut state, t(151), t(0))), ["reminder"]);
        let id = state.open.as_ref().unwrap().id;
        assert!(acknowledged(&mut state, id));
        assert!(!acknowledged(&mut state, id));
        assert!(notified(&on_tick(subject, &mut state, t(1_000), t(0))).is_empty());
    }

    #[test]
    fn a_hand_resolved_incident_needs_the_full_threshold_again() {
        let (rule, job) = (rule(), job(&[]));
        let mut state = AlertState::default();
        feed(
            &rule,
            &job,
            &mut state,
            &[check("", 10, false), check("", 20, false), check("", 30, false)],
        );
        let id = state.open.as_ref().unwrap().id;
        assert!(!resolved_by_hand(&mut state, Uuid::from_u128(99)));
        assert!(resolved_by_hand(&mut state, id));
        let again = feed(
            &rule,
            &job,
            &mut state,
            &[check("", 40, false), check("", 50, false), check("", 60, false)],
        );
        assert_eq!(again.iter().map(|e| opens(e)).collect::<Vec<_>>(), [0, 0, 1]);
    }

    #[test]
    fn flapping_is_told_once_then_quiet_until_stable_for_the_window() {
        let mut rule = rule();
        rule.failure_threshold = 1;
        rule.success_threshold = 1;
        rule.no_data = false;
        rule.flapping = Some(Flapping {
            threshold: 3,
            window: Duration::from_secs(300),
        });
        let job = job(&[]);
        let mut state = AlertState::default();
        let checks: Vec<Observed> = (0..10).map(|i| check("", 10 * (i + 1), i % 2 == 1)).collect();
        let steps = feed(&rule, &job, &mut state, &checks);
        let all: Vec<Effect> = steps.concat();
        // Every change opens or resolves an incident.
        assert_eq!((opens(&all), resolves(&all)), (5, 5));
        // Changes 1..=3 are told (opened, resolved, opened); the 4th makes it
        // flapping (told once); then nothing.
        assert_eq!(notified(&all), ["opened", "resolved", "opened", "flapping"]);
        assert!(state.flapping);
        let subject = Subject {
            rule: &rule,
            job: &job,
            silenced: false,
        };
        // Last change at t(100.25): stable for 300 s from there.
        assert!(on_tick(subject, &mut state, t(400), t(0)).is_empty());
        let ended = on_tick(subject, &mut state, t(401), t(0));
        assert_eq!(notified(&ended), ["flapping_ended"]);
        assert!(!state.flapping);
    }
}
