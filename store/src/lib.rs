//! PostgreSQL persistence shared by the control plane and the aggregators.
//!
//! - [`pool`]: the diesel-async connection pool (deadpool) and a liveness ping.
//! - [`migrations`]: the `migrations/` directory embedded in the binary.
//! - [`schema`]: the diesel table definitions, exactly what `diesel
//!   print-schema` gives for `migrations/` and never edited by hand. To
//!   regenerate it (diesel_cli: `cargo install diesel_cli
//!   --no-default-features --features postgres --locked`), against an empty
//!   database `$URL`: `diesel migration run --migration-dir migrations
//!   --database-url $URL && diesel print-schema --database-url $URL
//!   --except-tables '^job_metrics_.+' > store/src/schema.rs` (the
//!   partitions of `job_metrics` are tables too; the schema names only the
//!   partitioned parent every query goes through).
//! - [`models`]: one module per table with its rows and queries
//!   (`consumer_offsets` holds the fenced offset writes any consumer that
//!   keeps its state in PostgreSQL shares).
//! - [`rollup`]: the rollup maths and the mergeable latency histogram, no I/O.
//! - [`testing`] (feature `testing`): a fresh database per test.

pub mod error;
pub mod migrations;
pub mod models;
pub mod pool;
pub mod rollup;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;

/// diesel's error type, for callers matching on [`StoreError::Database`].
pub use diesel::result as diesel_error;
/// diesel-async, for callers that run transactions over store queries.
pub use diesel_async;
pub use error::StoreError;
pub use pool::{DbConn, DbPool, connect};
