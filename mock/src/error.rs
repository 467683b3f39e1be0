//! Why a request to the mock is refused, and the one function that turns
//! that into an HTTP response: a JSON body naming the parameter at fault.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::limits::InvalidValue;

/// A request the mock will not serve as asked.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("invalid parameter `{parameter}`: {problem}")]
    InvalidParameter {
        /// Query parameter or path segment name, e.g. `delay_ms` or `code`.
        parameter: &'static str,
        problem: InvalidValue,
    },
    #[error("missing query parameter `{parameter}`")]
    MissingParameter { parameter: &'static str },
    #[error("unknown query parameter `{parameter}`; this route accepts: {accepted}")]
    UnknownParameter {
        parameter: String,
        /// The accepted names, comma-separated, or "none".
        accepted: String,
    },
    #[error("query parameter `{parameter}` is given more than once")]
    RepeatedParameter { parameter: &'static str },
    #[error("no route for {path}")]
    NotFound { path: String },
    #[error("{detail}")]
    Unavailable { detail: &'static str },
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: &'static str,
        allowed: &'static str,
    },
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("could not read the request body: {detail}")]
    BodyUnreadable { detail: String },
    #[error("{detail}")]
    InvalidBody { detail: String },
}

/// The JSON body of every error response.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    /// The query parameter or path segment at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'a str>,
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::InvalidParameter { .. }
            | RequestError::MissingParameter { .. }
            | RequestError::UnknownParameter { .. }
            | RequestError::RepeatedParameter { .. }
            | RequestError::BodyUnreadable { .. }
            | RequestError::InvalidBody { .. } => StatusCode::BAD_REQUEST,
            RequestError::NotFound { .. } | RequestError::Unavailable { .. } => StatusCode::NOT_FOUND,
            RequestError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            RequestError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn parameter(&self) -> Option<&str> {
        match self {
            RequestError::InvalidParameter { parameter, .. }
            | RequestError::MissingParameter { parameter }
            | RequestError::RepeatedParameter { parameter } => Some(parameter),
            RequestError::UnknownParameter { parameter, .. } => Some(parameter),
            _ => None,
        }
    }

    /// The response a client gets for this error.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = ErrorBody {
            error: self.to_string(),
            parameter: self.parameter(),
        };
        // Serializing two strings cannot fail; fall back to the bare message anyway.
        let body = serde_json::to_vec(&body).unwrap_or_else(|_| self.to_string().into_bytes());
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let RequestError::MethodNotAllowed { allowed, .. } = self {
            headers.insert(ALLOW, HeaderValue::from_static(allowed));
        }
        response
    }
}
