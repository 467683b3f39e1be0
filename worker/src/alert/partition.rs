//! What the evaluator holds per owned partition: the state of each (rule,
//! job) whose results are on it, what changed since the last flush, and
//! since when it reads the partition up to date.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use monitor_store::models::{
    alert_state::{AlertStateRow, AlertWrites},
    incident::{FirstFailure, IncidentRow, NewIncidentEvent, NewOutboxEntry, RESOLVED_BY_EVALUATOR},
};
use uuid::Uuid;

use super::evaluate::{AlertState, Effect};

/// A (rule, job) pair.
pub type Key = (Uuid, Uuid);

/// One partition's evaluator state.
#[derive(Debug, Default)]
pub struct PartitionState {
    /// Per (rule, job) whose results are on this partition.
    pub states: HashMap<Key, AlertState>,
    /// Changed since the last flush taken.
    pub dirty: BTreeSet<Key>,
    /// Dropped since the last flush taken (rule or job gone).
    pub dropped: BTreeSet<Key>,
    /// Decided since the last flush taken, in order.
    pub effects: Vec<Effect>,
    /// When reading first reached the partition's end since it was loaded:
    /// time-based conditions apply from then (None: still catching up).
    pub caught_up_at: Option<DateTime<Utc>>,
}

impl PartitionState {
    /// Loaded from its stored rows; unreadable ones start afresh (named).
    pub fn from_rows(rows: Vec<AlertStateRow>) -> PartitionState {
        let mut partition = PartitionState::default();
        for row in rows {
            match serde_json::from_value::<AlertState>(row.state) {
                Ok(state) => {
                    partition.states.insert((row.rule_id, row.job_id), state);
                }
                Err(err) => tracing::warn!(
                    rule_id = %row.rule_id, job_id = %row.job_id, error = %err,
                    "unreadable alert state; starting it afresh"
                ),
            }
        }
        partition
    }

    /// Whether a flush has anything of this partition to write.
    pub fn has_changes(&self) -> bool {
        !self.dirty.is_empty() || !self.dropped.is_empty() || !self.effects.is_empty()
    }

    /// Takes what changed: state rows into `writes` (serialised now), the
    /// decided effects onto `effects` (turned into rows by [`add_effects`]
    /// once the flush has every partition's).
    pub fn take_writes(&mut self, partition: i32, writes: &mut AlertWrites, effects: &mut Vec<Effect>) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(state) = self.states.get(&key) {
                writes.states.push(AlertStateRow {
                    rule_id: key.0,
                    job_id: key.1,
                    partition,
                    state: serde_json::to_value(state).unwrap_or_default(),
                });
            }
        }
        writes.dropped_states.extend(std::mem::take(&mut self.dropped));
        effects.append(&mut self.effects);
    }
}

/// Turns one flush's effects (of every partition it writes) into rows,
/// merging updates of one incident (the last wins).
pub fn add_effects(effects: Vec<Effect>, writes: &mut AlertWrites) {
    let now = Utc::now();
    let mut failing: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
    let mut flapping: BTreeMap<Uuid, bool> = BTreeMap::new();
    let mut resolved: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
    for effect in effects {
        match effect {
            Effect::Open(new) => writes.opened.push(IncidentRow {
                id: new.id,
                rule_id: Some(new.rule_id),
                rule_name: new.rule_name,
                job_id: new.job_id,
                job_name: new.job_name,
                severity: new.severity,
                cause: new.cause.to_owned(),
                opened_at: new.opened_at,
                acknowledged_at: None,
                acknowledged_by: None,
                resolved_at: None,
                resolved_by: None,
                failing_locations: new.failing_locations.into_iter().map(Some).collect(),
                first_failure: new.first_failure.as_ref().map(first_failure_json),
                detected_check_end: new.detected_check_end,
                silenced: new.silenced,
                flapping: false,
                updated_at: now,
            }),
            Effect::Event {
                incident,
                at,
                kind,
                location,
                detail,
            } => writes.events.push(NewIncidentEvent {
                incident_id: incident,
                at,
                kind: kind.to_owned(),
                location,
                detail,
                actor: String::new(),
            }),
            Effect::Failing { incident, locations } => {
                failing.insert(incident, locations);
            }
            Effect::Flapping {
                incident,
                flapping: mark,
            } => {
                flapping.insert(incident, mark);
            }
            Effect::Resolve {
                incident,
                at,
                failing_locations,
            } => {
                resolved.insert(incident, at);
                failing.insert(incident, failing_locations);
            }
            Effect::Notify {
                incident,
                event,
                dedup_key,
                channel_ids,
            } => writes.notifications.push(NewOutboxEntry {
                dedup_key,
                incident_id: incident,
                event: event.to_owned(),
                channel_ids: channel_ids.into_iter().map(Some).collect(),
            }),
        }
    }
    // An incident opened in this flush is inserted as it ends up, resolved
    // included: each episode's row is complete before the next one's is
    // inserted (at most one open per rule and job, the database checks).
    for row in &mut writes.opened {
        if let Some(locations) = failing.remove(&row.id) {
            row.failing_locations = locations.into_iter().map(Some).collect();
        }
        if let Some(mark) = flapping.remove(&row.id) {
            row.flapping = mark;
        }
        if let Some(at) = resolved.remove(&row.id) {
            row.resolved_at = Some(at);
            row.resolved_by = Some(RESOLVED_BY_EVALUATOR.to_owned());
        }
    }
    writes.resolved = resolved.into_iter().collect();
    writes.failing = failing.into_iter().collect();
    writes.flapping = flapping.into_iter().collect();
}

fn first_failure_json(failure: &FirstFailure) -> serde_json::Value {
    serde_json::to_value(failure).unwrap_or_default()
}
