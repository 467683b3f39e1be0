//! PostgreSQL persistence shared by the control plane and the aggregators.
//!
//! - [`pool`]: the diesel-async connection pool (deadpool) and a liveness ping.
//! - [`migrations`]: the `migrations/` directory embedded in the binary.
//! - [`schema`]: the diesel table definitions (`diesel print_schema` output).
//! - [`models`]: one module per table with its rows and queries.
//! - [`testing`] (feature `testing`): a fresh database per test.

pub mod error;
pub mod migrations;
pub mod models;
pub mod pool;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;

/// diesel's error type, for callers matching on [`StoreError::Database`].
pub use diesel::result as diesel_error;
/// diesel-async, for callers that run transactions over store queries.
pub use diesel_async;
pub use error::StoreError;
pub use pool::{DbConn, DbPool, connect};
