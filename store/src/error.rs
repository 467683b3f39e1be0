//! The one error type of the store.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Why a store operation failed. Callers map each variant to an API error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row has the given id.
    #[error("not found")]
    NotFound,
    /// The row exists but its version differs from the one the caller read.
    #[error("version conflict: the row is at version {current}")]
    VersionConflict {
        /// The version the row has now.
        current: i64,
    },
    /// A unique constraint rejected the write; holds the constraint name.
    #[error("unique constraint {constraint} violated")]
    UniqueViolation {
        /// Name of the violated constraint, e.g. `jobs_name_key`.
        constraint: String,
    },
    /// No connection could be taken from the pool (database down or pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] DieselError),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<DieselError> for StoreError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => StoreError::UniqueViolation {
                constraint: info.constraint_name().unwrap_or_default().to_owned(),
            },
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}
