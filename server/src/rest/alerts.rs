//! The alerting routes of the REST gateway: rules, silences and incidents,
//! thin over [`crate::alerts::AlertCatalog`] like the job routes over the
//! job catalog.

use axum::{
    Json,
    extract::{RawQuery, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use monitor_proto::v1::{
    AcknowledgeIncidentRequest, AcknowledgeIncidentResponse, AlertRule, CreateAlertRuleRequest,
    CreateAlertRuleResponse, CreateSilenceRequest, CreateSilenceResponse, DeleteAlertRuleRequest,
    DeleteAlertRuleResponse, DeleteSilenceRequest, DeleteSilenceResponse, GetAlertRuleResponse, GetIncidentRequest,
    GetIncidentResponse, GetSilenceResponse, IncidentState, ListAlertRulesRequest, ListIncidentsRequest,
    ListSilencesRequest, ResolveIncidentResponse, Silence, UpdateAlertRuleRequest, UpdateAlertRuleResponse,
    UpdateSilenceRequest, UpdateSilenceResponse,
};

use super::{
    JobId as PathId, RestState, Result,
    body::{decode, decode_value, query_pairs, read_json_bytes, snake_case},
    json_body, patch_body, same_id, version_query,
};
use crate::{auth::Actor, error::ApiError};

/// The alerting routes and their handlers.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<RestState>)> {
    vec![
        ("/v1/alert-rules", get(list_rules).post(create_rule)),
        (
            "/v1/alert-rules/{id}",
            get(get_rule).patch(update_rule).delete(delete_rule),
        ),
        ("/v1/silences", get(list_silences).post(create_silence)),
        (
            "/v1/silences/{id}",
            get(get_silence).patch(update_silence).delete(delete_silence),
        ),
        ("/v1/incidents", get(list_incidents)),
        ("/v1/incidents/{id}", get(get_incident)),
        ("/v1/incidents/{id}/acknowledge", post(acknowledge_incident)),
        ("/v1/incidents/{id}/resolve", post(resolve_incident)),
    ]
}

/// A whole-number query parameter.
fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(key, format!("{value:?} is not a whole number")))
}

/// `pageSize` and `pageToken`, plus whatever `other` accepts; `accepted`
/// lists every parameter for the error.
fn paging(
    query: Option<&str>,
    accepted: &str,
    mut other: impl FnMut(&str, String) -> Result<bool>,
) -> Result<(i32, String)> {
    let (mut size, mut token) = (0, String::new());
    for (key, value) in query_pairs(query) {
        match snake_case(&key).as_str() {
            "page_size" => size = number("page_size", &value)?,
            "page_token" => token = value,
            name => {
                if !other(name, value)? {
                    return Err(ApiError::invalid(
                        key.clone(),
                        format!("unknown query parameter; use {accepted}"),
                    ));
                }
            }
        }
    }
    Ok((size, token))
}

async fn list_rules(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let (page_size, page_token) = paging(query.as_deref(), "pageSize or pageToken", |_, _| Ok(false))?;
    let request = ListAlertRulesRequest { page_size, page_token };
    Ok(Json(state.alerts.list_rules(request).await?).into_response())
}

/// `POST /v1/alert-rules`: the body is the AlertRule.
async fn create_rule(State(state): State<RestState>, request: Request) -> Result<Response> {
    let rule: AlertRule = json_body(&state, request).await?;
    let rule = state
        .alerts
        .create_rule(CreateAlertRuleRequest { rule: Some(rule) })
        .await?;
    Ok((StatusCode::CREATED, Json(CreateAlertRuleResponse { rule: Some(rule) })).into_response())
}

async fn get_rule(State(state): State<RestState>, PathId(id): PathId) -> Result<Response> {
    let rule = state.alerts.get_rule(&id).await?;
    Ok(Json(GetAlertRuleResponse { rule: Some(rule) }).into_response())
}

/// `PATCH /v1/alert-rules/{id}`: `version` and the fields to change, as for jobs.
async fn update_rule(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let (value, update_mask) = patch_body(&state, query.as_deref(), request, "the rule's").await?;
    let mut rule: AlertRule = decode_value(value)?;
    rule.id = same_id(id, &rule.id)?;
    let rule = state
        .alerts
        .update_rule(UpdateAlertRuleRequest {
            rule: Some(rule),
            update_mask,
        })
        .await?;
    Ok(Json(UpdateAlertRuleResponse { rule: Some(rule) }).into_response())
}

/// `DELETE /v1/alert-rules/{id}?version=N` (version optional).
async fn delete_rule(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let version = version_query(query.as_deref())?;
    state.alerts.delete_rule(DeleteAlertRuleRequest { id, version }).await?;
    Ok(Json(DeleteAlertRuleResponse {}).into_response())
}

/// `GET /v1/silences?includeExpired=true`: also those that ended.
async fn list_silences(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let mut include_expired = false;
    let (page_size, page_token) = paging(
        query.as_deref(),
        "pageSize, pageToken or includeExpired",
        |name, value| {
            if name != "include_expired" {
                return Ok(false);
            }
            include_expired = match value.as_str() {
                "true" | "1" | "" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ApiError::invalid(
                        "include_expired",
                        format!("{value:?} is not true or false"),
                    ));
                }
            };
            Ok(true)
        },
    )?;
    let request = ListSilencesRequest {
        page_size,
        page_token,
        include_expired,
    };
    Ok(Json(state.alerts.list_silences(request).await?).into_response())
}

/// `POST /v1/silences`: the body is the Silence; created by the caller.
async fn create_silence(State(state): State<RestState>, actor: Actor, request: Request) -> Result<Response> {
    let silence: Silence = json_body(&state, request).await?;
    let silence = state
        .alerts
        .create_silence(CreateSilenceRequest { silence: Some(silence) }, &actor)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateSilenceResponse { silence: Some(silence) }),
    )
        .into_response())
}

async fn get_silence(State(state): State<RestState>, PathId(id): PathId) -> Result<Response> {
    let silence = state.alerts.get_silence(&id).await?;
    Ok(Json(GetSilenceResponse { silence: Some(silence) }).into_response())
}

async fn update_silence(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let (value, update_mask) = patch_body(&state, query.as_deref(), request, "the silence's").await?;
    let mut silence: Silence = decode_value(value)?;
    silence.id = same_id(id, &silence.id)?;
    let silence = state
        .alerts
        .update_silence(UpdateSilenceRequest {
            silence: Some(silence),
            update_mask,
        })
        .await?;
    Ok(Json(UpdateSilenceResponse { silence: Some(silence) }).into_response())
}

async fn delete_silence(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let version = version_query(query.as_deref())?;
    state
        .alerts
        .delete_silence(DeleteSilenceRequest { id, version })
        .await?;
    Ok(Json(DeleteSilenceResponse {}).into_response())
}

/// Builds a ListIncidents request from query parameters (camelCase or
/// snake_case): `state` (`open`, `acknowledged`, `resolved`, or the enum
/// name), `jobId`, `ruleId`, `pageSize`, `pageToken`.
fn incidents_request(query: Option<&str>) -> Result<ListIncidentsRequest> {
    let mut request = ListIncidentsRequest::default();
    let (page_size, page_token) = paging(query, "pageSize, pageToken, state, jobId or ruleId", |name, value| {
        match name {
            "state" => {
                let upper = value.to_ascii_uppercase();
                let name = if upper.starts_with("INCIDENT_STATE_") {
                    upper
                } else {
                    format!("INCIDENT_STATE_{upper}")
                };
                request.state = IncidentState::from_str_name(&name).ok_or_else(|| {
                    ApiError::invalid(
                        "state",
                        format!("{value:?} is not a state; use open, acknowledged or resolved"),
                    )
                })? as i32;
            }
            "job_id" => request.job_id = value,
            "rule_id" => request.rule_id = value,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    request.page_size = page_size;
    request.page_token = page_token;
    Ok(request)
}

async fn list_incidents(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let request = incidents_request(query.as_deref())?;
    Ok(Json(state.alerts.list_incidents(request).await?).into_response())
}

async fn get_incident(State(state): State<RestState>, PathId(id): PathId) -> Result<Response> {
    let incident = state.alerts.get_incident(GetIncidentRequest { id }).await?;
    Ok(Json(GetIncidentResponse {
        incident: Some(incident),
    })
    .into_response())
}

/// The optional `{"comment": ...}` body of acknowledge and resolve (an
/// `id` in it must be the path's).
async fn comment_body(state: &RestState, id: &str, request: Request) -> Result<String> {
    let (parts, body) = request.into_parts();
    if parts.headers.get(axum::http::header::CONTENT_TYPE).is_none() {
        super::no_body(body).await?;
        return Ok(String::new());
    }
    let bytes = read_json_bytes(&parts.headers, body, state.max_body_bytes).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(String::new());
    }
    let request: AcknowledgeIncidentRequest = decode(&bytes)?;
    same_id(id.to_owned(), &request.id)?;
    Ok(request.comment)
}

/// `POST /v1/incidents/{id}/acknowledge`, as the caller.
async fn acknowledge_incident(
    State(state): State<RestState>,
    PathId(id): PathId,
    actor: Actor,
    request: Request,
) -> Result<Response> {
    let comment = comment_body(&state, &id, request).await?;
    let change = state.alerts.acknowledge(&id, &comment, &actor).await?;
    Ok(Json(AcknowledgeIncidentResponse {
        incident: Some(change.incident),
        changed: change.changed,
    })
    .into_response())
}

/// `POST /v1/incidents/{id}/resolve`, as the caller.
async fn resolve_incident(
    State(state): State<RestState>,
    PathId(id): PathId,
    actor: Actor,
    request: Request,
) -> Result<Response> {
    let comment = comment_body(&state, &id, request).await?;
    let change = state.alerts.resolve(&id, &comment, &actor).await?;
    Ok(Json(ResolveIncidentResponse {
        incident: Some(change.incident),
        changed: change.changed,
    })
    .into_response())
}
