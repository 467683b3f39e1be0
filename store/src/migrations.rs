//! The `migrations/` directory, embedded at compile time so every binary can
//! bring its database up to date without the diesel CLI.

use diesel::Connection;
use diesel::{migration::MigrationSource, pg::Pg};
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Every migration of the workspace, in order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Applies every pending migration and returns the versions it applied
/// (empty when the database was already up to date).
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, StoreError> {
    let url = database_url.to_owned();
    // The migration harness is synchronous; run it on a blocking thread over
    // an async connection wrapped as a sync one (no libpq needed).
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|err| StoreError::Migration(err.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .map_err(|err| StoreError::Migration(format!("migration task failed: {err}")))?
}

/// Applies the pending migrations up to and including the one whose
/// directory is named `last` (e.g. `2026-12-02-000009_notification_kinds_grouping`)
/// and returns their names: a database as an older release left it, for
/// migration tests and the before/after benchmarks.
pub async fn run_until(database_url: &str, last: &str) -> Result<Vec<String>, StoreError> {
    let (url, last) = (database_url.to_owned(), last.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let boxed = |err: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(err.to_string());
        let applied = conn.applied_migrations().map_err(boxed)?;
        let known: Vec<_> = MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(boxed)?;
        if !known.iter().any(|m| m.name().to_string() == last) {
            return Err(StoreError::Migration(format!("no migration is named {last}")));
        }
        let mut ran = Vec::new();
        for migration in known {
            let name = migration.name().to_string();
            if name.as_str() > last.as_str() {
                break;
            }
            if applied.contains(&migration.name().version()) {
                continue;
            }
            conn.run_migration(&migration).map_err(boxed)?;
            ran.push(name);
        }
        Ok(ran)
    })
    .await
    .map_err(|err| StoreError::Migration(format!("migration task failed: {err}")))?
}
