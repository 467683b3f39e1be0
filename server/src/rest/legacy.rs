//! The proof of concept's routes, kept as aliases of the new ones:
//! `GET /` (server info), `GET /job`, `GET /job/{id}`, `GET|POST
//! /job/{id}/start` and `/stop` (GET kept because the old clients used it),
//! and `POST /db/init` (database reset; admin only, disabled until an admin
//! token is configured).

use axum::{
    Json,
    extract::{Request, State},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get, post},
};
use monitor_proto::v1::ResetDatabaseRequest;

use super::{RestState, get_job, list_jobs, no_body, server_info, start_job, stop_job};
use crate::error::ApiError;

/// The legacy routes and their handlers (merged into [`super::routes`]).
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<RestState>)> {
    vec![
        ("/", get(server_info)),
        ("/job", get(list_jobs)),
        ("/job/{id}", get(get_job)),
        ("/job/{id}/start", get(start_job).post(start_job)),
        ("/job/{id}/stop", get(stop_job).post(stop_job)),
        ("/db/init", post(db_init)),
    ]
}

/// The POST itself (with an admin token) is the confirmation.
async fn db_init(State(state): State<RestState>, request: Request) -> Result<Response, ApiError> {
    no_body(request.into_body()).await?;
    Ok(Json(state.admin.reset(ResetDatabaseRequest { confirm: true }).await?).into_response())
}
