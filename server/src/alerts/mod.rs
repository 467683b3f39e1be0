//! The alert catalog: the domain operations behind AlertService (rules,
//! silences, incidents), shared by the gRPC service and the REST gateway.
//!
//! Methods take and return `monitor.v1` messages; SQL stays in
//! `monitor_store` (`alert_rule`, `silence`, `incident`), rules in
//! [`validate`], row conversion in [`convert`]. Writes that people make
//! (silences, acknowledgements, manual resolves) record the caller's
//! [`Actor`], the API token's name. Incidents themselves are opened and
//! resolved on recovery by the alert evaluator, not here.

pub mod convert;
pub mod validate;

use chrono::{DateTime, Utc};
use monitor_proto::v1::{
    AlertRule, CreateAlertRuleRequest, CreateSilenceRequest, DeleteAlertRuleRequest, DeleteSilenceRequest,
    GetIncidentRequest, Incident, IncidentState, ListAlertRulesRequest, ListAlertRulesResponse, ListIncidentsRequest,
    ListIncidentsResponse, ListSilencesRequest, ListSilencesResponse, Silence, UpdateAlertRuleRequest,
    UpdateSilenceRequest,
};
use monitor_store::{
    DbConn, DbPool, StoreError,
    models::{
        alert_rule,
        incident::{self, IncidentCursor, IncidentFilter, Marked},
        notification_channel,
        silence::{self, SilenceCursor},
    },
};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    auth::Actor,
    error::{ApiError, FieldViolation},
    jobs::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_token},
};
use convert::{incident_from_row, rule_from_row, silence_from_row};
use validate::{SilenceWrite, parse_id, validate_rule, validate_silence};

/// Fields UpdateAlertRule may name in its update mask.
pub const RULE_UPDATABLE_FIELDS: &[&str] = &[
    "name",
    "job_ids",
    "label_selector",
    "failure_threshold",
    "success_threshold",
    "min_failing_locations",
    "min_failing_percent",
    "no_data",
    "severity",
    "channel_ids",
    "repeat_interval",
    "notify_on_resolve",
    "flap_threshold",
    "flap_window",
    "enabled",
];

/// Fields UpdateSilence may name in its update mask.
pub const SILENCE_UPDATABLE_FIELDS: &[&str] = &[
    "job_ids",
    "label_selector",
    "start_time",
    "end_time",
    "recurrence",
    "comment",
];

/// Rules, silences and incidents in PostgreSQL, behind the API's rules.
#[derive(Clone)]
pub struct AlertCatalog {
    pool: DbPool,
}

/// What AcknowledgeIncident and ResolveIncident answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentChange {
    pub incident: Incident,
    /// False when it already was acknowledged (resolved): nothing changed.
    pub changed: bool,
}

fn page_size(requested: i32) -> Result<i64, ApiError> {
    match i64::from(requested) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(ApiError::invalid("page_size", "must not be negative")),
        n => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Keeps the first `size` of `rows` (fetched with one extra) and the token
/// that continues after the last one kept, if more follow.
fn page<T>(mut rows: Vec<T>, size: i64, token: impl Fn(&T) -> String) -> (Vec<T>, String) {
    if rows.len() as i64 > size {
        rows.truncate(size as usize);
        let next = rows.last().map(token).unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

/// The fields an update mask names, refusing unknown ones; empty: all.
fn mask_paths(mask: Option<pbjson_types::FieldMask>, updatable: &[&str]) -> Result<Vec<String>, ApiError> {
    let paths = mask.map(|mask| mask.paths).unwrap_or_default();
    for (i, path) in paths.iter().enumerate() {
        if !updatable.contains(&path.as_str()) {
            return Err(ApiError::invalid(
                format!("update_mask.paths[{i}]"),
                format!("{path:?} cannot be updated; use one of {}", updatable.join(", ")),
            ));
        }
    }
    Ok(paths)
}

/// The required, positive version of an update.
fn expected_version(field: &str, version: i64) -> Result<i64, ApiError> {
    if version <= 0 {
        return Err(ApiError::invalid(
            field,
            "is required: send the version you read (optimistic concurrency)",
        ));
    }
    Ok(version)
}

/// The version a delete must match (None: any).
fn delete_version(version: i64) -> Result<Option<i64>, ApiError> {
    if version < 0 {
        return Err(ApiError::invalid("version", "must not be negative"));
    }
    Ok((version > 0).then_some(version))
}

/// Maps a store error about an alerting resource: `what` ("alert rule",
/// "silence", "incident") and its id.
fn store_error(err: StoreError, what: &str, id: Option<Uuid>, name: Option<&str>) -> ApiError {
    let shown = id.map(|id| format!(" {id}")).unwrap_or_default();
    match err {
        StoreError::NotFound => ApiError::NotFound(format!("{what}{shown} not found")),
        StoreError::UniqueViolation { constraint } if constraint == "alert_rules_name_key" => ApiError::AlreadyExists(
            format!("an alert rule named {:?} already exists", name.unwrap_or_default()),
        ),
        StoreError::VersionConflict { current } => ApiError::Aborted(format!(
            "{what}{shown} was changed concurrently and is now at version {current}; read it again and retry"
        )),
        other => ApiError::from_store(other),
    }
}

fn silence_key(row: &silence::SilenceRow) -> String {
    format!("{}/{}", row.ends_at.timestamp_micros(), row.id)
}

fn parse_silence_key(key: &str) -> Option<SilenceCursor> {
    let (micros, id) = key.split_once('/')?;
    Some(SilenceCursor {
        ends_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

fn incident_key(row: &incident::IncidentRow) -> String {
    let cursor = IncidentCursor::after(row);
    format!(
        "{}/{}/{}",
        u8::from(cursor.open),
        cursor.opened_at.timestamp_micros(),
        cursor.id
    )
}

fn parse_incident_key(key: &str) -> Option<IncidentCursor> {
    let mut parts = key.splitn(3, '/');
    let open = match parts.next()? {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    Some(IncidentCursor {
        open,
        opened_at: DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?,
        id: Uuid::parse_str(parts.next()?).ok()?,
    })
}

/// A page token's key decoded by `parse`, or the error for a forged one.
fn cursor<T>(token: &str, fingerprint: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let key = page_token::decode_key(token, fingerprint)?;
    parse(&key)
        .map(Some)
        .ok_or_else(|| ApiError::invalid("page_token", "is not a page token issued by this server"))
}

/// Refuses a rule naming channels that do not exist, of those it did not
/// name before (`kept`: a channel deleted since does not block other
/// changes; deliveries simply skip it). Violations name `rule.channel_ids[i]`.
async fn known_channels(conn: &mut DbConn, ids: &[Option<Uuid>], kept: &[Option<Uuid>]) -> Result<(), ApiError> {
    let new: Vec<Uuid> = ids
        .iter()
        .flatten()
        .copied()
        .filter(|id| !kept.contains(&Some(*id)))
        .collect();
    let missing = notification_channel::missing(conn, &new)
        .await
        .map_err(ApiError::from_store)?;
    let v: Vec<FieldViolation> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let id = (*id)?;
            missing.contains(&id).then(|| {
                FieldViolation::new(
                    format!("rule.channel_ids[{i}]"),
                    format!("no notification channel has id {id}: create it first (CreateNotificationChannel)"),
                )
            })
        })
        .collect();
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(v))
    }
}

fn comment(text: &str) -> Result<(), ApiError> {
    let mut v: Vec<FieldViolation> = Vec::new();
    validate::comment("comment", text, &mut v);
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(v))
    }
}

impl AlertCatalog {
    pub fn new(pool: DbPool) -> Self {
        AlertCatalog { pool }
    }

    async fn conn(&self) -> Result<DbConn, ApiError> {
        self.pool.get().await.map_err(|err| ApiError::from_store(err.into()))
    }

    #[instrument(skip_all)]
    pub async fn create_rule(&self, request: CreateAlertRuleRequest) -> Result<AlertRule, ApiError> {
        let rule = request.rule.ok_or_else(|| ApiError::invalid("rule", "is required"))?;
        let fields = validate_rule(&rule).map_err(|err| err.within("rule."))?;
        let mut conn = self.conn().await?;
        known_channels(&mut conn, &fields.channel_ids, &[]).await?;
        let row = alert_rule::insert(&mut conn, &fields)
            .await
            .map_err(|err| store_error(err, "alert rule", None, Some(&rule.name)))?;
        tracing::info!(rule_id = %row.id, name = %row.name, "alert rule created");
        rule_from_row(row)
    }

    #[instrument(skip_all)]
    pub async fn get_rule(&self, id: &str) -> Result<AlertRule, ApiError> {
        let id = parse_id("id", id, "an alert rule id")?;
        let mut conn = self.conn().await?;
        let row = alert_rule::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, "alert rule", Some(id), None))?;
        rule_from_row(row)
    }

    #[instrument(skip_all)]
    pub async fn list_rules(&self, request: ListAlertRulesRequest) -> Result<ListAlertRulesResponse, ApiError> {
        let size = page_size(request.page_size)?;
        let fingerprint = page_token::fingerprint(&["alert-rules"]);
        let after = cursor(&request.page_token, &fingerprint, |key| Some(key.to_owned()))?;
        let mut conn = self.conn().await?;
        let rows = alert_rule::list(&mut conn, after.as_deref(), size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let (rows, next_page_token) = page(rows, size, |row| page_token::encode_key(&row.name, &fingerprint));
        let total_size = alert_rule::count(&mut conn).await.map_err(ApiError::from_store)?;
        Ok(ListAlertRulesResponse {
            rules: rows.into_iter().map(rule_from_row).collect::<Result<_, _>>()?,
            next_page_token,
            total_size,
        })
    }

    #[instrument(skip_all)]
    pub async fn update_rule(&self, request: UpdateAlertRuleRequest) -> Result<AlertRule, ApiError> {
        let changes = request.rule.ok_or_else(|| ApiError::invalid("rule", "is required"))?;
        let id = parse_id("rule.id", &changes.id, "an alert rule id")?;
        let version = expected_version("rule.version", changes.version)?;
        let paths = mask_paths(request.update_mask, RULE_UPDATABLE_FIELDS)?;
        let mut conn = self.conn().await?;
        let current = alert_rule::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, "alert rule", Some(id), None))?;
        if current.version != version {
            return Err(store_error(
                StoreError::VersionConflict {
                    current: current.version,
                },
                "alert rule",
                Some(id),
                None,
            ));
        }
        let merged = merge_rule(rule_from_row(current.clone())?, changes, &paths);
        let fields = validate_rule(&merged).map_err(|err| err.within("rule."))?;
        if fields == current.fields() {
            return rule_from_row(current);
        }
        known_channels(&mut conn, &fields.channel_ids, &current.channel_ids).await?;
        let row = alert_rule::update(&mut conn, id, version, &fields)
            .await
            .map_err(|err| store_error(err, "alert rule", Some(id), Some(&merged.name)))?;
        tracing::info!(rule_id = %id, version = row.version, "alert rule updated");
        rule_from_row(row)
    }

    #[instrument(skip_all)]
    pub async fn delete_rule(&self, request: DeleteAlertRuleRequest) -> Result<(), ApiError> {
        let id = parse_id("id", &request.id, "an alert rule id")?;
        let expected = delete_version(request.version)?;
        let mut conn = self.conn().await?;
        alert_rule::delete(&mut conn, id, expected)
            .await
            .map_err(|err| store_error(err, "alert rule", Some(id), None))?;
        tracing::info!(rule_id = %id, "alert rule deleted");
        Ok(())
    }

    #[instrument(skip_all)]
    pub async fn create_silence(&self, request: CreateSilenceRequest, actor: &Actor) -> Result<Silence, ApiError> {
        let silence = request
            .silence
            .ok_or_else(|| ApiError::invalid("silence", "is required"))?;
        let now = Utc::now();
        let fields = validate_silence(&silence, now, SilenceWrite::Create).map_err(|err| err.within("silence."))?;
        let mut conn = self.conn().await?;
        let row = silence::insert(&mut conn, &fields, actor.as_str())
            .await
            .map_err(|err| store_error(err, "silence", None, None))?;
        tracing::info!(silence_id = %row.id, created_by = %row.created_by, "silence created");
        silence_from_row(row, now)
    }

    #[instrument(skip_all)]
    pub async fn get_silence(&self, id: &str) -> Result<Silence, ApiError> {
        let id = parse_id("id", id, "a silence id")?;
        let mut conn = self.conn().await?;
        let row = silence::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, "silence", Some(id), None))?;
        silence_from_row(row, Utc::now())
    }

    #[instrument(skip_all)]
    pub async fn list_silences(&self, request: ListSilencesRequest) -> Result<ListSilencesResponse, ApiError> {
        let size = page_size(request.page_size)?;
        let fingerprint = page_token::fingerprint(&["silences", &request.include_expired.to_string()]);
        let after = cursor(&request.page_token, &fingerprint, parse_silence_key)?;
        let now = Utc::now();
        let ended_before = (!request.include_expired).then_some(now);
        let mut conn = self.conn().await?;
        let rows = silence::list(&mut conn, ended_before, after, size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let (rows, next_page_token) = page(rows, size, |row| {
            page_token::encode_key(&silence_key(row), &fingerprint)
        });
        let total_size = silence::count(&mut conn, ended_before)
            .await
            .map_err(ApiError::from_store)?;
        Ok(ListSilencesResponse {
            silences: rows
                .into_iter()
                .map(|row| silence_from_row(row, now))
                .collect::<Result<_, _>>()?,
            next_page_token,
            total_size,
        })
    }

    #[instrument(skip_all)]
    pub async fn update_silence(&self, request: UpdateSilenceRequest) -> Result<Silence, ApiError> {
        let changes = request
            .silence
            .ok_or_else(|| ApiError::invalid("silence", "is required"))?;
        let id = parse_id("silence.id", &changes.id, "a silence id")?;
        let version = expected_version("silence.version", changes.version)?;
        let paths = mask_paths(request.update_mask, SILENCE_UPDATABLE_FIELDS)?;
        let now = Utc::now();
        let mut conn = self.conn().await?;
        let current = silence::get(&mut conn, id)
            .await
            .map_err(|err| store_error(err, "silence", Some(id), None))?;
        if current.version != version {
            return Err(store_error(
                StoreError::VersionConflict {
                    current: current.version,
                },
                "silence",
                Some(id),
                None,
            ));
        }
        let merged = merge_silence(silence_from_row(current.clone(), now)?, changes, &paths);
        let fields = validate_silence(&merged, now, SilenceWrite::Update).map_err(|err| err.within("silence."))?;
        if fields == current.fields() {
            return silence_from_row(current, now);
        }
        let row = silence::update(&mut conn, id, version, &fields)
            .await
            .map_err(|err| store_error(err, "silence", Some(id), None))?;
        tracing::info!(silence_id = %id, version = row.version, "silence updated");
        silence_from_row(row, now)
    }

    #[instrument(skip_all)]
    pub async fn delete_silence(&self, request: DeleteSilenceRequest) -> Result<(), ApiError> {
        let id = parse_id("id", &request.id, "a silence id")?;
        let expected = delete_version(request.version)?;
        let mut conn = self.conn().await?;
        silence::delete(&mut conn, id, expected)
            .await
            .map_err(|err| store_error(err, "silence", Some(id), None))?;
        tracing::info!(silence_id = %id, "silence deleted");
        Ok(())
    }

    #[instrument(skip_all)]
    pub async fn list_incidents(&self, request: ListIncidentsRequest) -> Result<ListIncidentsResponse, ApiError> {
        let size = page_size(request.page_size)?;
        let state = IncidentState::try_from(request.state)
            .map_err(|_| ApiError::invalid("state", format!("{} is not an incident state", request.state)))?;
        let optional_id = |field: &str, id: &str| -> Result<Option<Uuid>, ApiError> {
            if id.is_empty() {
                Ok(None)
            } else {
                parse_id(field, id, "an id").map(Some)
            }
        };
        let job_id = optional_id("job_id", &request.job_id)?;
        let rule_id = optional_id("rule_id", &request.rule_id)?;
        let filter = IncidentFilter {
            resolved: match state {
                IncidentState::Unspecified => None,
                IncidentState::Resolved => Some(true),
                IncidentState::Open | IncidentState::Acknowledged => Some(false),
            },
            acknowledged: match state {
                IncidentState::Open => Some(false),
                IncidentState::Acknowledged => Some(true),
                _ => None,
            },
            job_id,
            rule_id,
        };
        let fingerprint =
            page_token::fingerprint(&["incidents", state.as_str_name(), &request.job_id, &request.rule_id]);
        let after = cursor(&request.page_token, &fingerprint, parse_incident_key)?;
        let mut conn = self.conn().await?;
        let rows = incident::list(&mut conn, &filter, after, size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let (rows, next_page_token) = page(rows, size, |row| {
            page_token::encode_key(&incident_key(row), &fingerprint)
        });
        let total_size = incident::count(&mut conn, &filter)
            .await
            .map_err(ApiError::from_store)?;
        Ok(ListIncidentsResponse {
            incidents: rows
                .into_iter()
                .map(|row| incident_from_row(row, Vec::new()))
                .collect::<Result<_, _>>()?,
            next_page_token,
            total_size,
        })
    }

    #[instrument(skip_all)]
    pub async fn get_incident(&self, request: GetIncidentRequest) -> Result<Incident, ApiError> {
        let id = parse_id("id", &request.id, "an incident id")?;
        let mut conn = self.conn().await?;
        self.with_timeline(&mut conn, id).await
    }

    async fn with_timeline(&self, conn: &mut DbConn, id: Uuid) -> Result<Incident, ApiError> {
        let row = incident::get(conn, id)
            .await
            .map_err(ApiError::from_store)?
            .ok_or_else(|| ApiError::NotFound(format!("incident {id} not found")))?;
        let timeline = incident::timeline(conn, id).await.map_err(ApiError::from_store)?;
        incident_from_row(row, timeline)
    }

    /// AcknowledgeIncident: the mark, its timeline event and notification
    /// intent in one transaction; FAILED_PRECONDITION when resolved.
    #[instrument(skip_all)]
    pub async fn acknowledge(&self, id: &str, text: &str, actor: &Actor) -> Result<IncidentChange, ApiError> {
        let id = parse_id("id", id, "an incident id")?;
        comment(text)?;
        let mut conn = self.conn().await?;
        let marked = incident::acknowledge(&mut conn, id, actor.as_str(), text)
            .await
            .map_err(|err| store_error(err, "incident", Some(id), None))?;
        let changed = match marked {
            Marked::Changed(_) => true,
            Marked::Unchanged(_) => false,
            Marked::Resolved(row) => {
                return Err(ApiError::FailedPrecondition(format!(
                    "incident {id} was resolved by {} and cannot be acknowledged",
                    row.resolved_by.as_deref().unwrap_or("someone")
                )));
            }
        };
        if changed {
            tracing::info!(incident_id = %id, actor = actor.as_str(), "incident acknowledged");
        }
        Ok(IncidentChange {
            incident: self.with_timeline(&mut conn, id).await?,
            changed,
        })
    }

    /// ResolveIncident by hand: the mark, its timeline event and (if the
    /// rule notifies on resolve) notification intent in one transaction.
    #[instrument(skip_all)]
    pub async fn resolve(&self, id: &str, text: &str, actor: &Actor) -> Result<IncidentChange, ApiError> {
        let id = parse_id("id", id, "an incident id")?;
        comment(text)?;
        let mut conn = self.conn().await?;
        let marked = incident::resolve(&mut conn, id, actor.as_str(), text)
            .await
            .map_err(|err| store_error(err, "incident", Some(id), None))?;
        let changed = matches!(marked, Marked::Changed(_));
        if changed {
            tracing::info!(incident_id = %id, actor = actor.as_str(), "incident resolved by hand");
        }
        Ok(IncidentChange {
            incident: self.with_timeline(&mut conn, id).await?,
            changed,
        })
    }
}

/// The stored rule with the fields `paths` names taken from `changes`
/// (empty `paths`: every settable field).
fn merge_rule(stored: AlertRule, changes: AlertRule, paths: &[String]) -> AlertRule {
    let all = paths.is_empty();
    let wants = |field: &str| all || paths.iter().any(|p| p == field);
    let mut merged = stored;
    if wants("name") {
        merged.name = changes.name;
    }
    if wants("job_ids") {
        merged.job_ids = changes.job_ids;
    }
    if wants("label_selector") {
        merged.label_selector = changes.label_selector;
    }
    if wants("failure_threshold") {
        merged.failure_threshold = changes.failure_threshold;
    }
    if wants("success_threshold") {
        merged.success_threshold = changes.success_threshold;
    }
    if wants("min_failing_locations") {
        merged.min_failing_locations = changes.min_failing_locations;
    }
    if wants("min_failing_percent") {
        merged.min_failing_percent = changes.min_failing_percent;
    }
    if wants("no_data") {
        merged.no_data = changes.no_data;
    }
    if wants("severity") {
        merged.severity = changes.severity;
    }
    if wants("channel_ids") {
        merged.channel_ids = changes.channel_ids;
    }
    if wants("repeat_interval") {
        merged.repeat_interval = changes.repeat_interval;
    }
    if wants("notify_on_resolve") {
        merged.notify_on_resolve = changes.notify_on_resolve;
    }
    if wants("flap_threshold") {
        merged.flap_threshold = changes.flap_threshold;
    }
    if wants("flap_window") {
        merged.flap_window = changes.flap_window;
    }
    if wants("enabled") {
        merged.enabled = changes.enabled;
    }
    merged
}

/// The stored silence with the fields `paths` names taken from `changes`
/// (empty `paths`: every settable field).
fn merge_silence(stored: Silence, changes: Silence, paths: &[String]) -> Silence {
    let all = paths.is_empty();
    let wants = |field: &str| all || paths.iter().any(|p| p == field);
    let mut merged = stored;
    if wants("job_ids") {
        merged.job_ids = changes.job_ids;
    }
    if wants("label_selector") {
        merged.label_selector = changes.label_selector;
    }
    if wants("start_time") {
        merged.start_time = changes.start_time;
    }
    if wants("end_time") {
        merged.end_time = changes.end_time;
    }
    if wants("recurrence") {
        merged.recurrence = changes.recurrence;
    }
    if wants("comment") {
        merged.comment = changes.comment;
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let at = DateTime::from_timestamp_micros(1_764_583_200_123_456).unwrap();
        let id = Uuid::now_v7();
        let silence = parse_silence_key(&format!("{}/{id}", at.timestamp_micros())).unwrap();
        assert_eq!((silence.ends_at, silence.id), (at, id));
        let incident = parse_incident_key(&format!("1/{}/{id}", at.timestamp_micros())).unwrap();
        assert_eq!(
            incident,
            IncidentCursor {
                open: true,
                opened_at: at,
                id
            }
        );
        for bad in ["", "x", "2/1/x", "1/abc/00000000-0000-0000-0000-000000000000"] {
            assert!(parse_incident_key(bad).is_none(), "{bad}");
        }
        assert!(parse_silence_key("1").is_none());
    }

    #[test]
    fn masks_name_settable_fields_only() {
        let mask = |paths: &[&str]| {
            Some(pbjson_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            })
        };
        assert_eq!(mask_paths(None, RULE_UPDATABLE_FIELDS).unwrap(), Vec::<String>::new());
        let err = mask_paths(mask(&["name", "version"]), RULE_UPDATABLE_FIELDS).unwrap_err();
        assert_eq!(err.violations()[0].field, "update_mask.paths[1]");
        let merged = merge_rule(
            AlertRule {
                name: "old".into(),
                failure_threshold: 5,
                ..Default::default()
            },
            AlertRule {
                name: "new".into(),
                ..Default::default()
            },
            &["name".to_owned()],
        );
        assert_eq!((merged.name.as_str(), merged.failure_threshold), ("new", 5));
    }
}
