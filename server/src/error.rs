//! The one error type of the API and its mapping to gRPC status codes.
//!
//! Every service and gateway turns a domain failure into a client-visible
//! error here and nowhere else, so the same mistake gets the same code and
//! message on every surface.

use monitor_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request, named by its path (e.g. `job.http.url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Why a request failed, in terms a client can act on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ApiError {
    /// The request itself is wrong; each violation names a field.
    #[error("{}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource changed since the client read it (optimistic concurrency).
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A dependency (the database) does not answer; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A server-side fault; the message says what without leaking internals.
    #[error("{0}")]
    Internal(String),
    /// No or unknown credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the needed role.
    #[error("{0}")]
    PermissionDenied(String),
    /// REST: the body is not JSON (HTTP 415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// REST: the body is over the size limit (HTTP 413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A bounded resource is full (e.g. the worker registry); HTTP 429.
    #[error("{0}")]
    ResourceExhausted(String),
    /// REST: the route exists but not with this method (HTTP 405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request took longer than the server allows.
    #[error("{0}")]
    DeadlineExceeded(String),
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    format!("invalid request: {}", listed.join("; "))
}

impl ApiError {
    /// A single-field INVALID_ARGUMENT.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// The gRPC code of this error; the HTTP status is derived from it.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::UnsupportedMediaType(_) => Code::InvalidArgument,
            ApiError::PayloadTooLarge(_) | ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::MethodNotAllowed(_) => Code::Unimplemented,
            ApiError::DeadlineExceeded(_) => Code::DeadlineExceeded,
        }
    }

    /// The HTTP status of this error: derived from the gRPC code, except for
    /// the REST transport errors that have their own status.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ApiError::UnsupportedMediaType(_) => S::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => S::PAYLOAD_TOO_LARGE,
            ApiError::MethodNotAllowed(_) => S::METHOD_NOT_ALLOWED,
            other => http_status_of(other.code()),
        }
    }

    /// The field violations carried by an INVALID_ARGUMENT (empty otherwise).
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            ApiError::InvalidArgument(violations) => violations,
            _ => &[],
        }
    }

    /// Prefixes every violation's field path, e.g. with `job.`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            ApiError::InvalidArgument(violations) => ApiError::InvalidArgument(
                violations
                    .into_iter()
                    .map(|v| FieldViolation::new(format!("{prefix}{}", v.field), v.description))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Maps a store failure that is not specific to one resource.
    pub fn from_store(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::NotFound("not found".into()),
            StoreError::VersionConflict { current } => ApiError::Aborted(format!(
                "changed concurrently (now at version {current}); read it again and retry"
            )),
            StoreError::UniqueViolation { constraint } => {
                ApiError::AlreadyExists(format!("violates uniqueness ({constraint})"))
            }
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                ApiError::Internal("database error; see the server log".into())
            }
            StoreError::Migration(reason) => ApiError::Internal(format!("migration failed: {reason}")),
        }
    }
}

/// The HTTP status for a gRPC code (the mapping grpc-gateway uses).
pub fn http_status_of(code: Code) -> http::StatusCode {
    use http::StatusCode as S;
    match code {
        Code::Ok => S::OK,
        Code::Cancelled => S::from_u16(499).unwrap_or(S::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => S::BAD_REQUEST,
        Code::DeadlineExceeded => S::GATEWAY_TIMEOUT,
        Code::NotFound => S::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => S::CONFLICT,
        Code::PermissionDenied => S::FORBIDDEN,
        Code::Unauthenticated => S::UNAUTHORIZED,
        Code::ResourceExhausted => S::TOO_MANY_REQUESTS,
        Code::Unimplemented => S::NOT_IMPLEMENTED,
        Code::Unavailable => S::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => S::INTERNAL_SERVER_ERROR,
    }
}

/// The error as JSON in the google.rpc.Status shape (canonical proto3 JSON):
/// `{"code": 3, "message": "...", "details": [{"@type": ".../google.rpc.BadRequest", "fieldViolations": [...]}]}`.
pub fn status_json(err: &ApiError) -> serde_json::Value {
    let mut details = Vec::new();
    if !err.violations().is_empty() {
        let violations: Vec<_> = err
            .violations()
            .iter()
            .map(|v| serde_json::json!({"field": v.field, "description": v.description}))
            .collect();
        details.push(serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        }));
    }
    serde_json::json!({"code": err.code() as i32, "message": err.to_string(), "details": details})
}

/// The HTTP response for an error on a REST route.
pub fn http_response(err: ApiError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = err.http_status();
    if status.is_server_error() {
        tracing::warn!(%status, error = %err, "request failed");
    }
    let mut response = (status, axum::Json(status_json(&err))).into_response();
    if matches!(err, ApiError::Unauthenticated(_)) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
    }
    response
}

/// A trailers-only gRPC response for an error raised before a service ran
/// (authentication).
pub fn grpc_response(err: ApiError) -> axum::response::Response {
    Status::from(err).into_http()
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        http_response(self)
    }
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        let message = err.to_string();
        match &err {
            ApiError::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            other => Status::new(other.code(), message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_bad_request_details() {
        let err = ApiError::InvalidArgument(vec![
            FieldViolation::new("name", "must not be empty"),
            FieldViolation::new("interval", "must be at least 1s"),
        ])
        .within("job.");
        let status = Status::from(err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid request: job.name: must not be empty; job.interval: must be at least 1s"
        );
        let bad_request = status.get_details_bad_request().expect("BadRequest details");
        let fields: Vec<_> = bad_request.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["job.name", "job.interval"]);
    }

    #[test]
    fn store_errors_map_to_codes() {
        assert_eq!(ApiError::from_store(StoreError::NotFound).code(), Code::NotFound);
        assert_eq!(
            ApiError::from_store(StoreError::VersionConflict { current: 3 }).code(),
            Code::Aborted
        );
        assert_eq!(
            ApiError::from_store(StoreError::UniqueViolation { constraint: "x".into() }).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            ApiError::from_store(StoreError::Unavailable("down".into())).code(),
            Code::Unavailable
        );
        assert_eq!(
            ApiError::from_store(StoreError::Migration("m".into())).code(),
            Code::Internal
        );
        assert_eq!(
            ApiError::from_store(StoreError::Database(diesel_not_found())).code(),
            Code::Internal
        );
        assert_eq!(ApiError::invalid("a", "b").violations().len(), 1);
        assert!(ApiError::Internal("x".into()).violations().is_empty());
    }

    #[test]
    fn http_statuses_follow_the_grpc_code() {
        use http::StatusCode as S;
        let cases = [
            (ApiError::invalid("f", "d"), S::BAD_REQUEST),
            (ApiError::NotFound(String::new()), S::NOT_FOUND),
            (ApiError::AlreadyExists(String::new()), S::CONFLICT),
            (ApiError::Aborted(String::new()), S::CONFLICT),
            (ApiError::FailedPrecondition(String::new()), S::BAD_REQUEST),
            (ApiError::Unavailable(String::new()), S::SERVICE_UNAVAILABLE),
            (ApiError::Internal(String::new()), S::INTERNAL_SERVER_ERROR),
            (ApiError::Unauthenticated(String::new()), S::UNAUTHORIZED),
            (ApiError::PermissionDenied(String::new()), S::FORBIDDEN),
            (ApiError::UnsupportedMediaType(String::new()), S::UNSUPPORTED_MEDIA_TYPE),
            (ApiError::PayloadTooLarge(String::new()), S::PAYLOAD_TOO_LARGE),
            (ApiError::MethodNotAllowed(String::new()), S::METHOD_NOT_ALLOWED),
            (ApiError::DeadlineExceeded(String::new()), S::GATEWAY_TIMEOUT),
        ];
        for (err, status) in cases {
            assert_eq!(err.http_status(), status, "{err:?}");
        }
        let json = status_json(&ApiError::invalid("job.name", "must not be empty"));
        assert_eq!(json["code"], 3);
        assert_eq!(json["details"][0]["fieldViolations"][0]["field"], "job.name");
        assert_eq!(http_status_of(Code::Cancelled).as_u16(), 499);
    }

    fn diesel_not_found() -> monitor_store::diesel_error::Error {
        monitor_store::diesel_error::Error::RollbackTransaction
    }
}
