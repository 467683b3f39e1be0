//! The notification channel routes of the REST gateway, thin over
//! [`crate::notify::ChannelCatalog`].

use axum::{
    Json,
    extract::{RawQuery, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use monitor_proto::v1::{
    CreateNotificationChannelRequest, CreateNotificationChannelResponse, DeleteNotificationChannelRequest,
    DeleteNotificationChannelResponse, GetNotificationChannelResponse, ListNotificationChannelsRequest,
    ListNotificationDeliveriesRequest, NotificationChannel, TestNotificationChannelResponse,
    UpdateNotificationChannelRequest, UpdateNotificationChannelResponse,
};

use super::{
    JobId as PathId, RestState, Result,
    body::{decode_value, query_pairs, snake_case},
    json_body, patch_body, same_id, version_query,
};
use crate::error::ApiError;

/// The channel routes and their handlers.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<RestState>)> {
    vec![
        ("/v1/notification-channels", get(list_channels).post(create_channel)),
        (
            "/v1/notification-channels/{id}",
            get(get_channel).patch(update_channel).delete(delete_channel),
        ),
        ("/v1/notification-channels/{id}/test", post(test_channel)),
        ("/v1/notification-deliveries", get(list_deliveries)),
    ]
}

async fn list_channels(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let mut request = ListNotificationChannelsRequest::default();
    for (key, value) in query_pairs(query.as_deref()) {
        match snake_case(&key).as_str() {
            "page_size" => {
                request.page_size = value
                    .parse()
                    .map_err(|_| ApiError::invalid("page_size", format!("{value:?} is not a whole number")))?
            }
            "page_token" => request.page_token = value,
            _ => {
                return Err(ApiError::invalid(
                    key.clone(),
                    "unknown query parameter; use pageSize or pageToken",
                ));
            }
        }
    }
    Ok(Json(state.channels.list(request).await?).into_response())
}

/// `POST /v1/notification-channels`: the body is the NotificationChannel.
async fn create_channel(State(state): State<RestState>, request: Request) -> Result<Response> {
    let channel: NotificationChannel = json_body(&state, request).await?;
    let channel = state
        .channels
        .create(CreateNotificationChannelRequest { channel: Some(channel) })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreateNotificationChannelResponse { channel: Some(channel) }),
    )
        .into_response())
}

async fn get_channel(State(state): State<RestState>, PathId(id): PathId) -> Result<Response> {
    let channel = state.channels.get(&id).await?;
    Ok(Json(GetNotificationChannelResponse { channel: Some(channel) }).into_response())
}

/// `PATCH /v1/notification-channels/{id}`: `version` and the fields to change.
async fn update_channel(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let (value, update_mask) = patch_body(&state, query.as_deref(), request, "the channel's").await?;
    let mut channel: NotificationChannel = decode_value(value)?;
    channel.id = same_id(id, &channel.id)?;
    let channel = state
        .channels
        .update(UpdateNotificationChannelRequest {
            channel: Some(channel),
            update_mask,
        })
        .await?;
    Ok(Json(UpdateNotificationChannelResponse { channel: Some(channel) }).into_response())
}

/// `DELETE /v1/notification-channels/{id}?version=N` (version optional).
async fn delete_channel(
    State(state): State<RestState>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let version = version_query(query.as_deref())?;
    state
        .channels
        .delete(DeleteNotificationChannelRequest { id, version })
        .await?;
    Ok(Json(DeleteNotificationChannelResponse {}).into_response())
}

/// `POST /v1/notification-channels/{id}/test`: sends the test message.
async fn test_channel(State(state): State<RestState>, PathId(id): PathId) -> Result<Response> {
    let result = state.channels.test(&id).await?;
    Ok(Json(TestNotificationChannelResponse { result: Some(result) }).into_response())
}

/// `GET /v1/notification-deliveries?incidentId=…|channelId=…`.
async fn list_deliveries(State(state): State<RestState>, RawQuery(query): RawQuery) -> Result<Response> {
    let mut request = ListNotificationDeliveriesRequest::default();
    for (key, value) in query_pairs(query.as_deref()) {
        match snake_case(&key).as_str() {
            "incident_id" => request.incident_id = value,
            "channel_id" => request.channel_id = value,
            "page_size" => {
                request.page_size = value
                    .parse()
                    .map_err(|_| ApiError::invalid("page_size", format!("{value:?} is not a whole number")))?
            }
            "page_token" => request.page_token = value,
            _ => {
                return Err(ApiError::invalid(
                    key.clone(),
                    "unknown query parameter; use incidentId, channelId, pageSize or pageToken",
                ));
            }
        }
    }
    Ok(Json(state.channels.deliveries(request).await?).into_response())
}
