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

    fn diesel_not_found() -> monitor_store::diesel_error::Error {
        monitor_store::diesel_error::Error::RollbackTransaction
    }
}
