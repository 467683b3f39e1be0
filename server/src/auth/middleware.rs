//! The access middleware: finds the operation a request will reach (from
//! the route the router matched, never from the content type), checks the
//! credentials against [`super::policy`], then the content type, and only
//! then lets the request through. A worker stream carries on the worker
//! identities its token may use; an API call carries on its [`Actor`] (the
//! token's name), which tonic hands on in the request's extensions too.

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::Response,
};

use super::{
    Actor, Tokens,
    policy::{self, Grant, Target},
};
use crate::error::{self, ApiError};

/// Middleware: decides every request before it reaches a service. Refusals
/// take the form of what the request reaches: gRPC statuses on gRPC
/// methods (UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED), JSON errors
/// (401, 403) on REST routes, whatever the client's content type; 405 and
/// 415 are HTTP statuses for everyone, as the gRPC spec has it for
/// transport errors.
pub async fn require_token(State(tokens): State<Tokens>, mut request: Request, next: Next) -> Response {
    match decide(&tokens, &request) {
        Ok(Some(Grant::Worker(identities))) => {
            request.extensions_mut().insert(identities);
        }
        Ok(Some(Grant::Api(actor))) => {
            request.extensions_mut().insert(actor);
        }
        Ok(None) => {}
        Err(refusal) => return *refusal,
    }
    next.run(request).await
}

/// The decision for one request: let it through (with the worker
/// identities a worker stream may use, or the actor of an API call), or
/// the answer that refuses it. None: unrouted, the fallback answers.
/// Borrows the request, so nothing is copied on the way through.
fn decide(tokens: &Tokens, request: &Request) -> Result<Option<Grant>, Box<Response>> {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let method = request.method();
    let path = request.uri().path();
    let refuse = |err: ApiError, as_grpc: bool| {
        tracing::info!(%method, path, code = ?err.code(), "request refused");
        Box::new(if as_grpc {
            error::grpc_response(err)
        } else {
            error::http_response(err)
        })
    };
    let operation = match policy::target(method, route, path) {
        Target::Operation(operation) => operation,
        // The fallback answers 404 / UNIMPLEMENTED.
        Target::Unrouted => return Ok(None),
        Target::MethodNotAllowed => {
            let hint = if path == "/db/init" { " (use POST)" } else { "" };
            return Err(refuse(
                ApiError::MethodNotAllowed(format!("method {method} is not allowed on {path}{hint}")),
                false,
            ));
        }
        Target::UnknownGrpcMethod => {
            tracing::info!(%method, path, "unknown gRPC method refused");
            return Err(Box::new(
                tonic::Status::unimplemented(format!("unknown method {path}")).into_http(),
            ));
        }
        Target::Unlisted => {
            return Err(refuse(
                ApiError::PermissionDenied(format!(
                    "{method} {path} has no access rule; refusing it (a server bug: please report it)"
                )),
                false,
            ));
        }
    };
    let grpc_method = operation.payload == policy::Payload::Grpc;
    let credential = tokens.credential(request.headers());
    let grant =
        policy::authorize(operation.requirement, &credential, tokens).map_err(|err| refuse(err, grpc_method))?;
    policy::check_content_type(operation.payload, content_type).map_err(|err| refuse(err, false))?;
    Ok(Some(grant))
}

/// REST handlers take the [`Actor`] the middleware put in the request (the
/// anonymous one if it put none: a public route).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Actor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Actor>()
            .cloned()
            .unwrap_or_else(Actor::anonymous))
    }
}
